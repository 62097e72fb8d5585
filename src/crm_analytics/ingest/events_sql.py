"""The events table at scale: cleaned, stitched, erased and counted in DuckDB, never in pandas.

A shop's event log is the table that outgrows pandas: tens of millions of rows of text.
:class:`SqlEvents` applies to it the rules that :func:`crm_analytics.ingest.cleaning.clean_table`,
:func:`crm_analytics.ingest.identity.stitch_events` and :func:`crm_analytics.ingest.erasure.apply_erasure` apply
to an in-memory table, with the same results (``tests/test_events_sql.py`` compares both, row by
row, on the ``ci`` world and on hand-made dirt), in DuckDB with a memory cap
(:data:`crm_analytics.ingest.tables.DUCKDB_MEMORY_LIMIT`):

1. Each column is cleaned by a SQL expression that covers the common case exactly: text trimmed
   as ``str.strip`` trims it, ids without a trailing ``.0``, plain ISO 8601 times
   (``YYYY-MM-DD[T ]HH:MM:SS[Z]``, checked by formatting the parsed time back), ASCII labels
   lower-cased, integers. A value outside it (a garbage date, a non-ASCII label, ``12,5``) is
   *residual*: the pandas rule itself (:func:`crm_analytics.ingest.cleaning.clean_column`) cleans each
   distinct residual value once, and the timestamp format is chosen by rows, as in pandas.
2. Rows that are not plainly kept (a reason to reject, a residual value, or a clean event id that
   occurs more than once, found by sorting 64-bit hashes of the ids) are few. They are copied to a
   small table where exact duplicates, key duplicates and the first reason are settled as in pandas.
3. Devices are stitched to customers by one aggregation, erasure requests by one scan
   (:meth:`SqlEvents.stitch`, :meth:`SqlEvents.erase`).
4. :meth:`SqlEvents.write` streams the kept rows in file order (a single-table scan keeps it),
   fills in the stitched customers, drops erased rows and writes the parquet file; the rejects are
   written beside it. Both read back as pandas would have written them. (The writing half is
   :class:`crm_analytics.ingest.sql_output.SqlWriter`.)

Times in another format (``dd/mm/yyyy HH:MM``) are parsed in SQL too (``strptime``): the ``date_format``
hint, or the format the column's numeric dates prove, decided on all rows by one aggregation
(:data:`crm_analytics.ingest.dates.SQL_PROFILE`, the same evidence and rule as pandas); only values outside
that format go to pandas.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crm_analytics.ingest.cleaning import (BLANK_TOKENS, SOURCE_COLS, TEST_ORDER_PATTERN, absent_column_error,
                                           clean_column)
from crm_analytics.ingest.contracts import TABLES, Column
from crm_analytics.ingest.dates import SQL_PROFILE, DateEvidence, decide_order, layout_regex, undecidable_error
from crm_analytics.errors import SourceError
from crm_analytics.ingest.identity import STITCH_RULE
from crm_analytics.ingest.sources import RawParquet, _with_lines
from crm_analytics.ingest.sql_output import BATCH_ROWS, SqlWriter
from crm_analytics.ingest.tables import duckdb_connect, sql_literal, sql_name

__all__ = ["SqlEvents", "SqlTable", "BATCH_ROWS", "SQL_TABLES", "clean_table_sql"]

#: what ``str.strip`` removes (Python's whitespace; pandas' pyarrow strings strip the same set)
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
#: the characters of :data:`WHITESPACE` as a regular-expression class (RE2 syntax, for DuckDB)
_WS_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
#: tables that clean_table cleans by their column types alone (no table-specific rule)
_WITHOUT_TABLE_RULES = {"events", "campaigns", "campaign_assignments", "tickets"}
#: clean_table's table rules as SQL on the clean values (``{column}``), in its order: (condition, reason)
_TABLE_REASONS = {
    "orders": [(f"regexp_matches({{order_id}}, {sql_literal(TEST_ORDER_PATTERN)})", "test_order"),
               ("{order_total} < 0", "negative_order_total")],
    "order_lines": [("{quantity} <= 0", "non_positive_quantity"), ("{unit_price} < 0", "negative_price"),
                    ("{unit_price} = 0", "zero_price")],
}
#: tables SqlEvents cleans exactly as clean_table does (products keep pandas: their labels are canonicalised
#: over the whole column, and a catalogue is small)
SQL_TABLES = _WITHOUT_TABLE_RULES | set(_TABLE_REASONS) | {"customers"}
#: contract types parsed as times (a date is a time normalised to midnight, without time zone)
_TIMES = ("ts", "date")
#: plain ISO dates, parsed in SQL for date columns
_ISO_DAY = {"____-__-__": "%Y-%m-%d"}
_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
#: plain ISO 8601 layouts parsed in SQL: LIKE pattern -> strftime format that renders them back
_ISO_LAYOUTS = {"____-__-__T__:__:__Z": "%Y-%m-%dT%H:%M:%SZ", "____-__-__T__:__:__": "%Y-%m-%dT%H:%M:%S",
                "____-__-__ __:__:__": "%Y-%m-%d %H:%M:%S"}


def _day(c: Column, parsed: str) -> str:
    """The clean value of a parsed time: a date column keeps the day (pandas' ``normalize``)."""
    return f"date_trunc('day', {parsed})" if c.type == "date" else parsed


def _kind(duck_type: str) -> str:
    """The family of a DuckDB type: text, int, float, bool, datetime or other."""
    t = duck_type.upper()
    if t == "VARCHAR":
        return "text"
    if t in _INT_TYPES:
        return "int"
    if t in ("FLOAT", "DOUBLE"):
        return "float"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith("TIMESTAMP"):
        return "datetime"
    return "other"


@dataclass
class _Col:
    """A raw column as SQL sees it, and what pandas would make of it."""

    name: str
    kind: str
    int_as_float: bool = False  # pandas reads an integer column with nulls as float64 ("50.0")
    text_col: str | None = None  # a hidden column holding pandas' text of the value

    @property
    def q(self) -> str:
        return sql_name(self.name)

    def text(self) -> str:
        """The value as text, as ``Series.astype("string")`` writes it."""
        if self.text_col:
            return sql_name(self.text_col)
        if self.kind == "int":
            return f"CAST(CAST({self.q} AS DOUBLE) AS VARCHAR)" if self.int_as_float else f"CAST({self.q} AS VARCHAR)"
        if self.kind == "float":
            return f"CASE WHEN isnan({self.q}) THEN NULL ELSE CAST({self.q} AS VARCHAR) END"
        if self.kind == "bool":
            return f"CASE WHEN {self.q} THEN 'True' WHEN NOT {self.q} THEN 'False' END"
        return f"CAST({self.q} AS VARCHAR)"

    def blank(self) -> str:
        """Whether a number, boolean or time is blank (null or NaN), as ``cleaning._is_blank``."""
        if self.kind == "float":
            return f"({self.q} IS NULL OR isnan({self.q}))"
        return f"({self.q} IS NULL)"


class SqlEvents(SqlWriter):
    """The events table cleaned in DuckDB: counts on creation, then :meth:`stitch`, :meth:`erase`, :meth:`write`.

    Parameters
    ----------
    raw
        The raw events: a DataFrame (as a source adapter returns it) or a :class:`RawParquet` file.
    key
        The pseudonymisation key (for personal columns, if the contract marks any).
    ts_format
        The timestamp format of the export, or ``None`` to detect it (as ``clean_table``).
    workdir
        Where DuckDB may spill and the files are staged; a temporary folder if ``None``.
    name
        The canonical table (``events``; any table without table-specific rules would do).

    Attributes
    ----------
    counts : dict
        As ``clean_table`` counts: ``rows_in``, ``rows_kept``, ``rows_rejected``, ``rows_duplicate``,
        ``rejects_by_reason``, ``timestamp_formats``.
    timings : dict
        Seconds spent per step (scan, settle, stitch, write...), for benchmarks.

    Raises
    ------
    DataContractError
        A required column is absent, or a required timestamp column has no parseable value.
    SourceError
        DuckDB cannot read the file.
    """

    _TABLES = _WITHOUT_TABLE_RULES

    def __init__(self, raw: pd.DataFrame | RawParquet, *, key: bytes, ts_format: str | None = None,
                 workdir: Path | None = None, name: str = "events"):
        if name not in self._TABLES:
            raise ValueError(f"table {name!r} has rules of its own (see clean_table); clean it with pandas"
                             + (" or SqlTable" if name in SQL_TABLES else ""))
        self.name, self.spec, self.key, self.ts_format = name, TABLES[name], key, ts_format
        self.file = raw.file if isinstance(raw, RawParquet) else f"{name} table"
        self._tmp = tempfile.TemporaryDirectory(prefix="crm_events_") if workdir is None else None
        self.workdir = Path(self._tmp.name if self._tmp else workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.con = duckdb_connect(temp_directory=self.workdir / "duckdb_spill")
        self.stitching: dict | None = None
        self.timings: dict[str, float] = {}
        self._devices_table = False
        self._erased: dict | None = None
        try:
            self._register(raw)
            self._settle()
        except (duckdb.IOException, duckdb.InvalidInputException) as exc:
            self.close()
            raise SourceError(f"{self.file}: the {name} table cannot be read ({exc}); "
                              "rebuild the raw data (`make data`) or export the file again") from None
        except BaseException:
            self.close()
            raise

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = round(self.timings.get(step, 0.0) + time.perf_counter() - start, 2)

    # ------------------------------------------------------------------ input
    def _register(self, raw: pd.DataFrame | RawParquet) -> None:
        """Define the view ``raw``: the input with ``_source_file``, ``_source_line``, absent contract
        columns as nulls and ``_row`` (the row number, which orders everything)."""
        if isinstance(raw, RawParquet):
            self.file = raw.file
            scan = f"read_parquet({sql_literal(str(raw.path))}, file_row_number = true)"
            schema = self.con.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()
            names = [r[0] for r in schema if r[0] != "file_row_number"]
            if any(_kind(r[1]) in ("datetime", "other") for r in schema):  # pandas' text of those: read as pandas
                return self._register(_with_lines(pd.read_parquet(raw.path), raw.file, first_line=raw.first_line))
            added = []
            if "_source_file" not in names:
                added.append(f"{sql_literal(raw.file)} AS _source_file")
            if "_source_line" not in names:
                added.append(f"CAST(file_row_number + {int(raw.first_line)} AS BIGINT) AS _source_line")
            columns = names + [c for c in SOURCE_COLS if c not in names]
            select = ", ".join([sql_name(c) for c in names] + added)
            source = f"SELECT {select}, file_row_number AS _row FROM {scan}"
            self.n = int(self.con.execute(f"SELECT count(*) FROM {scan}").fetchall()[0][0])
        else:
            df = raw.reset_index(drop=True)
            self.file = str(df["_source_file"].iloc[0]) if "_source_file" in df and len(df) else f"{self.name} table"
            df = df.copy()
            for col in SOURCE_COLS:
                if col not in df:
                    df[col] = self.file if col == "_source_file" else np.arange(1, len(df) + 1)
            columns = list(df.columns)
            for col in columns:
                dtype = df[col].dtype
                if pd.api.types.is_datetime64_any_dtype(dtype):
                    df[f"__text__{col}"] = df[col].astype("string")
                elif not (pd.api.types.is_numeric_dtype(dtype) or isinstance(dtype, pd.StringDtype)):
                    df[col] = df[col].astype("string")  # object, category: compared and cleaned as text
            df["_row"] = np.arange(len(df), dtype="int64")
            self.con.register("raw_frame", pa.Table.from_pandas(df, preserve_index=False))
            source = "SELECT * FROM raw_frame"
            self.n = len(df)
        absent = []
        for c in self.spec.columns:
            if c.name not in columns:
                if c.required:
                    raise absent_column_error(self.file, self.name, c.name, columns)
                absent.append(f"NULL::VARCHAR AS {sql_name(c.name)}")
                columns.append(c.name)
        self.con.execute(f"CREATE VIEW raw AS SELECT *{''.join(', ' + a for a in absent)} FROM ({source})")
        types = dict(self.con.sql("SELECT column_name, column_type FROM (DESCRIBE raw)").fetchall())
        self.has_reject = "_reject" in columns  # a reason the reader gave (repeated header, line cut short)
        self.reject_columns = [c for c in columns if c != "_reject"]  # the raw columns, in the rejects' order
        self.content = [c for c in columns if not c.startswith("_source") and c != "_reject"
                        and not (self.name == "order_lines" and c == "line_no")]
        if self.name == "order_lines" and any(c.startswith("_") and c not in SOURCE_COLS + ["_reject"] for c in columns):
            raise ValueError("order lines with reader columns (an invoice-line export): clean them with pandas")
        nulls = {}
        ints = [c for c in columns if _kind(types[c]) == "int" and not c.startswith("_source")]
        if ints and isinstance(raw, RawParquet):  # pandas reads an integer column with nulls as float64...
            read_as = pq.read_schema(raw.path).empty_table().to_pandas().dtypes  # ...unless its metadata says Int64
            ints = [c for c in ints if c in read_as and isinstance(read_as[c], np.dtype) and read_as[c].kind in "iu"]
        if ints:
            row = self.con.execute("SELECT " + ", ".join(f"count(*) - count({sql_name(c)})" for c in ints) + " FROM raw").fetchall()[0]
            nulls = dict(zip(ints, row))
        self.cols = {c: _Col(c, _kind(types[c]), int_as_float=bool(nulls.get(c)),
                             text_col=f"__text__{c}" if f"__text__{c}" in types else None) for c in columns}
        self.out_columns = self.spec.column_names + [c for c in columns if c.startswith("attr_")]

    # ------------------------------------------------------------------ SQL rules
    def _rules(self, c: Column, iso_chosen: bool) -> dict:
        """SQL for column *c*: ``v`` value, ``r`` reason, ``x`` residual (left to pandas), ``w`` the value
        the writer takes for rows not set aside, ``inner`` expressions computed first, and for plain ISO
        times ``fast``.

        Every rule first tests a cheap *plain* condition (null, or a value the rule leaves as it is); the
        full rule (trimming, blank tokens, lower-casing) runs only on the other values.
        """
        col = self.cols[c.name]
        q = col.q
        blanks = ", ".join(sql_literal(t) for t in BLANK_TOKENS)
        missing = f"'missing_{c.name}'" if c.required else "NULL"
        rules: dict = {"inner": []}
        plain, vp, rp = "FALSE", "NULL", "NULL"  # plain rows: value and reason
        v_t, why_t, x_t = "NULL", "NULL", "TRUE"  # other non-blank values: value, reason, residual
        if col.kind == "text":  # t: trimmed; as_is: the text itself, for plain values
            t, as_is = f"trim({q}, {sql_literal(WHITESPACE)})", q
            blank = f"({t} IN ({blanks}))"
            plain_text = f"(ascii({q}) BETWEEN 33 AND 126 AND ascii({q}[-1]) BETWEEN 33 AND 126 AND {q} NOT IN ({blanks}))"
        else:  # numbers and booleans have no spaces to trim; datetimes and others go to pandas
            t = as_is = col.text()
            blank = col.blank()
            plain_text = "TRUE" if col.kind in ("int", "float", "bool") else "FALSE"
        textual = col.kind in ("text", "int", "float", "bool")
        if c.type == "id" and textual:
            plain, vp = f"({plain_text} AND NOT suffix({as_is}, '.0'))", as_is
            v_t, x_t = f"CASE WHEN suffix({t}, '.0') THEN left({t}, -2) ELSE {t} END", "FALSE"
        elif c.type == "str" and textual and not c.allowed:
            plain, vp, v_t, x_t = plain_text, as_is, t, "FALSE"
        elif c.type == "str" and textual:
            allowed = ", ".join(sql_literal(a) for a in c.allowed)
            ascii_ok = f"strlen({t}) = length({t})"
            plain, vp = f"({q} IN ({allowed}))" if col.kind == "text" else "FALSE", q
            v_t = f"CASE WHEN {ascii_ok} THEN lower({t}) END"
            why_t = f"CASE WHEN {ascii_ok} AND lower({t}) NOT IN ({allowed}) THEN 'invalid_{c.name}' END"
            x_t = f"NOT ({ascii_ok})"
        elif c.type in ("int", "float") and col.kind == "text":
            sql_type = "BIGINT" if c.type == "int" else "DOUBLE"
            number = f"replace({t}, ',', '.')"
            plain, vp = f"regexp_full_match({q}, '-?[0-9]{{1,15}}')", f"CAST({q} AS {sql_type})"
            ok = f"regexp_full_match({number}, '-?[0-9]{{1,15}}')"
            v_t, x_t = f"CASE WHEN {ok} THEN CAST({number} AS {sql_type}) END", f"NOT ({ok})"
        elif c.type == "bool" and col.kind == "bool":  # typed booleans: as they are (pandas' astype("boolean"))
            plain, vp = "TRUE", q
        elif c.type in ("int", "float") and (col.kind == "int" or col.kind == "float" and c.type == "float"):
            plain, vp = "TRUE", f"CAST({q} AS {'BIGINT' if c.type == 'int' else 'DOUBLE'})"
        elif c.type == "ts" and col.kind == "datetime":
            plain, vp = "TRUE", f"CAST({q} AS TIMESTAMP)"
        elif c.type in _TIMES and col.kind == "text" and self.fast_format.get(c.name, "ISO8601") != "ISO8601":
            fmt = self.fast_format[c.name]  # dd/mm/yyyy and the like: strptime, checked by a regex or rendered back
            p, fast = sql_name("p:" + c.name), sql_name("fast:" + c.name)
            pattern = layout_regex(fmt)
            check = (f"regexp_full_match({q}, {sql_literal(pattern)})" if pattern
                     else f"strftime({p}, {sql_literal(fmt)}) = {q}")
            rules["inner"] = [("p:" + c.name, f"try_strptime({q}, {sql_literal(fmt)})"),
                              ("fast:" + c.name, f"coalesce({p} >= TIMESTAMP '1900-01-01' AND {p} < TIMESTAMP '2100-01-01' "
                                                 f"AND {check}, FALSE)")]
            rules["fast"], rules["w"] = fast, _day(c, p)
            plain = fast
            vp, rp = (_day(c, p), "NULL") if iso_chosen else ("NULL", f"'unparseable_{c.name}'")
        elif c.type in _TIMES and col.kind == "text" and self.ts_format in (None, "ISO8601"):
            p, fast = sql_name("p:" + c.name), sql_name("fast:" + c.name)
            iso = {**_ISO_LAYOUTS, **(_ISO_DAY if c.type == "date" else {})}
            layouts = " ".join(f"WHEN {q} LIKE {sql_literal(like)} THEN strftime({p}, {sql_literal(fmt)}) = {q}"
                               for like, fmt in iso.items())
            rules["inner"] = [("p:" + c.name, f"TRY_CAST({q} AS TIMESTAMP)"),
                              ("fast:" + c.name, f"coalesce({q} >= '1900' AND {q} < '2100' AND CASE {layouts} ELSE FALSE END, FALSE)")]
            rules["fast"], rules["w"] = fast, _day(c, p)  # rows not set aside: plain ISO times or blanks (null)
            plain = fast
            vp, rp = (_day(c, p), "NULL") if iso_chosen else ("NULL", f"'unparseable_{c.name}'")  # another format won
        rules["v"] = f"CASE WHEN {q} IS NULL THEN NULL WHEN {plain} THEN {vp} WHEN {blank} THEN NULL ELSE {v_t} END"
        rules["r"] = "NULL" if (missing, rp, why_t) == ("NULL", "NULL", "NULL") else \
            f"CASE WHEN {q} IS NULL THEN {missing} WHEN {plain} THEN {rp} WHEN {blank} THEN {missing} ELSE {why_t} END"
        rules["x"] = "FALSE" if x_t == "FALSE" else \
            f"CASE WHEN {q} IS NULL OR {plain} OR {blank} THEN FALSE ELSE {x_t} END"
        rules["v"] = self._finish(c, rules["v"])
        if self.name == "customers" and c.name == "email":  # Python's lower() beyond ASCII: pandas decides
            rules["x"] = f"({rules['x']} OR coalesce(strlen({col.text()}) != length({col.text()}), FALSE))"
        return rules

    def _ev_sql(self, source: str) -> str:
        """The row-by-row cleaning of *source* (rows of ``raw``): raw columns, and per contract column
        ``v:`` value, ``r:`` reason, ``x:`` residual flag, ``w:`` written value; ``fast_ok`` when the row
        is plainly kept (no reason, no residual value)."""
        layers: list[list[str]] = [[], [], [], []]  # parsed times, plain flags, values, written values
        reasons, residual = [], []
        for c in self.spec.columns:
            rules = self.rules[c.name]
            for i, (alias, expr) in enumerate(rules["inner"]):
                layers[i].append(f"{expr} AS {sql_name(alias)}")
            layers[2] += [f"{rules['v']} AS {sql_name('v:' + c.name)}", f"{rules['r']} AS {sql_name('r:' + c.name)}",
                          f"{rules['x']} AS {sql_name('x:' + c.name)}"]
            layers[3].append(f"{rules.get('w', sql_name('v:' + c.name))} AS {sql_name('w:' + c.name)}")
            if rules["r"] != "NULL":
                reasons.append(sql_name("r:" + c.name))
            if rules["x"] != "FALSE":
                residual.append(sql_name("x:" + c.name))
        for a in self.out_columns:
            if a.startswith("attr_"):
                layers[2].append(f"{sql_name(a)} AS {sql_name('v:' + a)}")
                layers[3].append(f"{sql_name(a)} AS {sql_name('w:' + a)}")
        if self.has_reject:
            reasons.insert(0, "_reject")
        table_reason = self._table_reason("v:")
        if table_reason != "NULL":
            reasons.append(table_reason)
        ok = [f"coalesce({', '.join(reasons)}) IS NULL"] if reasons else []
        layers[3].append(" AND ".join(ok + [f"NOT {x}" for x in residual] or ["TRUE"]) + " AS fast_ok")
        sql = source
        for layer in layers:
            if layer:
                sql = f"SELECT *, {', '.join(layer)} FROM ({sql})"
        return sql

    def _table_reason(self, prefix: str) -> str:
        """The first reason of the table's own rules (``NULL`` if none), on the values ``<prefix><column>``."""
        rules = _TABLE_REASONS.get(self.name, [])
        if not rules:
            return "NULL"
        cols = {c.name: sql_name(prefix + c.name) for c in self.spec.columns}
        return "CASE " + " ".join(f"WHEN {cond.format(**cols)} THEN '{why}'" for cond, why in rules) + " END"

    def _finish(self, c: Column, expr: str) -> str:
        """The clean value as clean_table leaves it after its table rules (discounts default to 0, e-mails
        lower-cased; an e-mail that is not plain ASCII is left to pandas)."""
        if self.name == "order_lines" and c.name == "discount":
            return f"coalesce({expr}, 0.0)"
        if self.name == "customers" and c.name == "email":
            return f"lower({expr})"
        return expr

    # ------------------------------------------------------------------ cleaning
    def _settle(self) -> None:
        """Find the rows that are not plainly kept, settle them exactly, and count."""
        with self._timed("date_order"):
            self._date_formats()
        self.iso_chosen = {c.name: True for c in self.spec.columns if c.type in _TIMES}  # the fast format won
        self.rules = {c.name: self._rules(c, True) for c in self.spec.columns}
        self.con.execute(f"CREATE VIEW ev AS {self._ev_sql('SELECT * FROM raw')}")
        keys = ", ".join(sql_name("v:" + k) for k in self.spec.key)
        plain_ts = [c for c in self.spec.columns if "fast" in self.rules[c.name]]
        with self._timed("scan"):
            content_h = (f", hash({', '.join(sql_name(c) for c in self.content)}) AS hc"
                         if not set(self.spec.key) <= set(self.content) else "")
            flags = self.con.sql(f"SELECT hash({keys}) AS h{content_h}, fast_ok"
                                 + "".join(f", {sql_name('fast:' + c.name)} AS {sql_name('fast:' + c.name)}" for c in plain_ts)
                                 + " FROM ev").fetchnumpy()
        h = flags["h"]
        if len(h) != self.n:
            raise RuntimeError(f"{self.file}: {len(h)} rows scanned, {self.n} expected")
        with self._timed("duplicate_keys"):
            suspect = ~np.asarray(flags["fast_ok"], dtype=bool)
            sorted_h = np.sort(h)
            repeated = np.unique(sorted_h[1:][sorted_h[1:] == sorted_h[:-1]])
            del sorted_h
            if len(repeated):  # a clean key seen twice (or a hash collision): settled exactly below
                suspect |= pd.Series(h).isin(repeated).to_numpy()
            del h
            if "hc" in flags:  # duplicates by content where the content leaves out part of the key (line_no)
                sorted_h = np.sort(flags["hc"])
                repeated = np.unique(sorted_h[1:][sorted_h[1:] == sorted_h[:-1]])
                del sorted_h
                if len(repeated):
                    suspect |= pd.Series(flags["hc"]).isin(repeated).to_numpy()
        plain = {c.name: np.asarray(flags["fast:" + c.name], dtype=bool) for c in plain_ts}
        del flags
        with self._timed("set_aside"):
            self._suspects(suspect)
        self.formats, self.maps, self.how = {}, {}, {}
        with self._timed("residual"):
            for c in self.spec.columns:
                self._residual(c, preparsed=int(plain[c.name].sum()) if c.name in plain else 0)
        changed = [c for c in plain_ts if plain[c.name].any() and self.formats[c.name] != self.fast_format[c.name]]
        if changed:  # another format won: the plain ISO times are rejects, settled with the others
            for c in changed:
                self.iso_chosen[c.name] = False
                self.rules[c.name] = self._rules(c, False)
                suspect |= plain[c.name]
            self.con.execute(f"CREATE OR REPLACE VIEW ev AS {self._ev_sql('SELECT * FROM raw')}")
            self._suspects(suspect)
        with self._timed("settle"):
            self._resolve()
        by_reason = dict(self.con.sql("SELECT _reason, count(*) FROM resolved WHERE _reason IS NOT NULL "
                                      "GROUP BY 1 ORDER BY 1").fetchall())
        dup = int(by_reason.pop("duplicate", 0))
        rejected = int(sum(by_reason.values()))
        self.counts = {
            "rows_in": self.n,
            "rows_kept": self.n - rejected - dup,
            "rows_rejected": rejected,
            "rows_duplicate": dup,
            "rejects_by_reason": {str(k): int(v) for k, v in by_reason.items()},
            "timestamp_formats": {c.name: self.formats[c.name] for c in self.spec.columns if c.name in self.formats},
            "timestamp_evidence": {c.name: self.how[c.name] for c in self.spec.columns if c.name in self.how},
        }
        self.con.execute(f"""CREATE VIEW kept AS
            SELECT {', '.join(f'{sql_name("v:" + c)} AS {sql_name(c)}' for c in self.out_columns)}
            FROM ev ANTI JOIN suspects USING (_row)
            UNION ALL
            SELECT {', '.join(f'{sql_name("f:" + c)} AS {sql_name(c)}' for c in self.out_columns)}
            FROM resolved WHERE _reason IS NULL""")

    def _date_formats(self) -> None:
        """Per text timestamp column: the date order evidence of all its rows (one aggregation in DuckDB,
        :data:`crm_analytics.ingest.dates.SQL_PROFILE`) and the format the SQL fast path parses with strptime:
        the ``date_format`` hint, the numeric dates' proven format when they are most values, else ISO 8601.

        Raises
        ------
        DataContractError
            Numeric dates are most values and their order is not proven (as the pandas rule raises).
        """
        self.evidence: dict[str, DateEvidence] = {}
        self.fast_format: dict[str, str] = {}
        for c in self.spec.columns:
            if c.type not in _TIMES or self.cols[c.name].kind != "text":
                continue
            if self.ts_format:
                self.fast_format[c.name] = self.ts_format
                continue
            q = self.cols[c.name].q
            # only values that start like a numeric date (a cheap regex, no trim) can be one: profile those
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE date_candidates AS SELECT {q} FROM raw "
                             f"WHERE regexp_matches({q}, '^{_WS_CLASS}*[0-9]{{1,2}}[./-]')")
            profile = self.con.sql(SQL_PROFILE.format(col=q, ws=sql_literal(WHITESPACE), rel="date_candidates")).df()
            self.con.execute("DROP TABLE date_candidates")
            evidence = self.evidence[c.name] = decide_order(profile)
            self.fast_format[c.name] = "ISO8601"
            if not evidence.rows:
                continue
            iso_like = self.con.execute(f"SELECT count(*) FROM raw WHERE regexp_matches({q}, "
                                        f"'^{_WS_CLASS}*[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')").fetchall()[0][0]
            if evidence.rows > iso_like:
                if evidence.order not in ("day first", "month first"):
                    raise undecidable_error(evidence, file=self.file, column=c.name)
                self.fast_format[c.name] = evidence.format()

    def _suspects(self, suspect: np.ndarray) -> None:
        """Copy the rows flagged in *suspect* (raw values and SQL rules) to the table ``suspects``."""
        self.con.register("suspect_rows", pa.table({"_row": pa.array(np.flatnonzero(suspect), pa.int64())}))
        source = "SELECT * FROM raw WHERE _row IN (SELECT _row FROM suspect_rows)"
        self.con.execute(f"CREATE OR REPLACE TABLE suspects AS {self._ev_sql(source)}")
        self.con.unregister("suspect_rows")

    def _residual(self, c: Column, preparsed: int) -> None:
        """Clean the distinct residual values of *c* with the pandas rule (the format of a timestamp column
        is chosen here, by rows); register them as a table ``residual_<n>``: value, clean value, reason."""
        if self.cols[c.name].kind == "datetime" and c.type == "ts":
            self.formats[c.name], self.how[c.name] = "datetime", "already a timestamp"
            return
        if self.rules[c.name]["x"] == "FALSE" and c.type not in _TIMES:
            return
        q = self.cols[c.name].q
        found = self.con.sql(f"SELECT {q} AS value, count(*) AS n, arg_min(_source_line, _row) AS line "
                             f"FROM suspects WHERE {sql_name('x:' + c.name)} GROUP BY {q} "
                             f"ORDER BY min(_row)").to_arrow_table()
        if not found.num_rows and c.type not in _TIMES:
            return
        values = found.column("value").to_pandas()
        v, reasons, fmt = clean_column(c, values, ts_format=self.ts_format, file=self.file,
                                       lines=found.column("line").to_pandas(), counts=found.column("n").to_numpy(),
                                       preparsed=preparsed, preparsed_format=self.fast_format.get(c.name, "ISO8601"),
                                       evidence=self.evidence.get(c.name))
        if fmt is not None and (preparsed or v.notna().any()):  # as in pandas: no date at all proves no format
            self.formats[c.name], self.how[c.name] = fmt.fmt, fmt.how
        if not found.num_rows:
            return
        reason = pd.Series(pd.NA, index=values.index, dtype="string")
        for mask, why in reasons:
            reason[mask.to_numpy(dtype=bool, na_value=False) & reason.isna().to_numpy()] = why
        if self.name == "customers" and c.name == "email":
            v = v.str.lower()
        if isinstance(v.dtype, pd.DatetimeTZDtype):  # SQL holds times as naive UTC
            v = v.dt.tz_convert("UTC").dt.tz_localize(None)
        mapping = pa.table({"value": found.column("value"), "v": pa.array(v.reset_index(drop=True)),
                            "reason": pa.array(reason, pa.string())})
        name = f"residual_{len(self.maps)}"
        self.con.register(name, mapping)
        self.maps[c.name] = name

    def _resolve(self) -> None:
        """The table ``resolved``: the suspects with their residual values filled in (``f:``), exact
        duplicates, key duplicates and the first reason (``_reason``; null when kept)."""
        joins, final = [], []
        for i, c in enumerate(self.spec.columns):
            v, r, x = (sql_name(p + c.name) for p in ("v:", "r:", "x:"))
            if c.name in self.maps:
                m = f"m{i}"
                joins.append(f"LEFT JOIN {sql_name(self.maps[c.name])} {m} ON s.{sql_name(c.name)} = {m}.value")
                final += [f"{self._finish(c, f'CASE WHEN s.{x} THEN {m}.v ELSE s.{v} END')} AS {sql_name('f:' + c.name)}",
                          f"CASE WHEN s.{x} THEN {m}.reason ELSE s.{r} END AS {sql_name('q:' + c.name)}"]
            else:
                final += [f"s.{v} AS {sql_name('f:' + c.name)}", f"s.{r} AS {sql_name('q:' + c.name)}"]
        final += [f"s.{sql_name('v:' + a)} AS {sql_name('f:' + a)}" for a in self.out_columns if a.startswith("attr_")]
        first_reason = "coalesce(" + ", ".join((["_reject"] if self.has_reject else [])
                                               + [sql_name("q:" + c.name) for c in self.spec.columns]
                                               + [self._table_reason("f:")]) + ")"
        not_given = "_reject IS NULL AND " if self.has_reject else ""
        content = ", ".join(sql_name(c) for c in self.content)
        key = ", ".join(sql_name("f:" + k) for k in self.spec.key)
        self.con.execute(f"""CREATE OR REPLACE TABLE resolved AS
            WITH m AS (SELECT s.*, {', '.join(final)} FROM suspects s {' '.join(joins)}),
            d AS (SELECT *, {first_reason} AS _reason0,
                         {not_given}row_number() OVER (PARTITION BY {content} ORDER BY _row) > 1 AS _dup FROM m),
            k AS (SELECT _row, row_number() OVER (PARTITION BY {key} ORDER BY _row) > 1 AS _key_dup
                  FROM d WHERE NOT _dup AND _reason0 IS NULL)
            SELECT d.*, CASE WHEN d._dup THEN 'duplicate' WHEN d._reason0 IS NOT NULL THEN d._reason0
                             WHEN k._key_dup THEN 'duplicate_key' END AS _reason
            FROM d LEFT JOIN k USING (_row)""")
        # rows the writer must not take from the stream: rejected, or kept with a value pandas cleaned
        residual = [sql_name("x:" + c.name) for c in self.spec.columns if c.name in self.maps]
        patched = " OR ".join(residual) if residual else "FALSE"
        self.con.execute("ALTER TABLE resolved ADD COLUMN _patched BOOLEAN DEFAULT FALSE")
        self.con.execute(f"UPDATE resolved SET _patched = _reason IS NULL AND ({patched})")
        drop = self.con.sql("SELECT _row FROM resolved WHERE _reason IS NOT NULL OR _patched").fetchnumpy()["_row"]
        self.dropped = np.zeros(self.n, dtype=bool)
        self.dropped[drop.astype("int64")] = True

    # ------------------------------------------------------------------ stitching and erasure
    def stitch(self) -> dict:
        """Stitch devices to customers (the rule of :func:`crm_analytics.ingest.identity.stitch_events`).

        Returns the same counts as ``stitch_events``; the customer ids are filled in by :meth:`write`.
        """
        with self._timed("stitch"):
            return self._stitch()

    def _stitch(self) -> dict:
        self.con.execute("""CREATE OR REPLACE TABLE devices AS
            WITH pairs AS (SELECT anonymous_id, customer_id, count(*) AS events FROM kept GROUP BY ALL)
            SELECT anonymous_id, count(customer_id) AS n, min(customer_id) AS owner,
                   coalesce(sum(events) FILTER (WHERE customer_id IS NULL), 0) AS anonymous_events
            FROM pairs GROUP BY anonymous_id""")
        self._devices_table = True
        anon, stitched, devices, ambiguous = self.con.execute("""SELECT coalesce(sum(anonymous_events), 0),
                coalesce(sum(anonymous_events) FILTER (WHERE anonymous_id IS NOT NULL AND n = 1), 0),
                count(*) FILTER (WHERE anonymous_id IS NOT NULL AND n = 1),
                count(*) FILTER (WHERE anonymous_id IS NOT NULL AND n > 1) FROM devices""").fetchall()[0]
        events = self.counts["rows_kept"]
        anon, stitched = int(anon), int(stitched)
        self.stitching = {
            "events": events,
            "anonymous_events_before": anon,
            "events_stitched": stitched,
            "devices_stitched": int(devices),
            "devices_ambiguous": int(ambiguous),
            "events_stitched_share": float(stitched / anon) if anon else None,
            "events_attributed_share": float((events - anon + stitched) / events) if events else None,
            "rule": STITCH_RULE,
        }
        owners = self.con.sql("SELECT hash(anonymous_id) AS h, anonymous_id, owner FROM devices "
                              "WHERE anonymous_id IS NOT NULL AND n = 1 ORDER BY h").to_arrow_table()
        self._owner_h = pd.Index(owners.column("h").to_numpy())
        self._owner_anon = owners.column("anonymous_id").combine_chunks()
        self._owner = owners.column("owner").combine_chunks()
        return dict(self.stitching)

    def _stitched_view(self) -> str:
        if not self._devices_table:
            return "kept"
        return ("(SELECT k.* REPLACE (coalesce(k.customer_id, o.owner) AS customer_id) FROM kept k LEFT JOIN "
                "(SELECT anonymous_id, owner FROM devices WHERE anonymous_id IS NOT NULL AND n = 1) o "
                "ON k.customer_id IS NULL AND k.anonymous_id = o.anonymous_id)")

    def erase(self, ids: set[str]) -> tuple[int, set[str]]:
        """Remove customers *ids* (the rule of :func:`crm_analytics.ingest.erasure.apply_erasure`): their events,
        anonymous events on their devices, and their rejects. Applied by :meth:`write`.

        Returns the kept rows removed and the customers found among the events.
        """
        if not ids:
            self._erased = None
            return 0, set()
        self.con.register("erase_ids", pa.table({"id": pa.array(sorted(ids), pa.string())}))
        view = self._stitched_view()
        devices = self.con.sql(f"SELECT DISTINCT anonymous_id FROM {view} WHERE customer_id IN (SELECT id FROM erase_ids) "
                               "AND anonymous_id IS NOT NULL").to_arrow_table().column(0).combine_chunks()
        self.con.register("erase_devices", pa.table({"anonymous_id": devices}))
        n, found = self.con.execute(f"""SELECT count(*), list(DISTINCT customer_id) FILTER (WHERE customer_id IN (SELECT id FROM erase_ids))
            FROM {view} WHERE customer_id IN (SELECT id FROM erase_ids)
                           OR anonymous_id IN (SELECT anonymous_id FROM erase_devices)""").fetchall()[0]
        self._erased = {"ids": pa.array(sorted(ids), pa.string()), "devices": devices, "rows": int(n)}
        return int(n), set(found or [])

    def close(self) -> None:
        """Close the DuckDB connection and remove its spill files (again: nothing happens)."""
        self.con.close()
        shutil.rmtree(self.workdir / "duckdb_spill", ignore_errors=True)
        if self._tmp is not None:
            self._tmp.cleanup()


class SqlTable(SqlEvents):
    """:class:`SqlEvents` for any table of :data:`SQL_TABLES`, the table rules of ``clean_table`` included
    (test orders, negative totals, non-positive quantities and prices, duplicate lines by content, discounts
    defaulting to 0, lower-cased e-mails)."""

    _TABLES = SQL_TABLES


def clean_table_sql(name: str, raw: RawParquet, *, ts_format: str | None = None,
                    workdir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """:func:`crm_analytics.ingest.cleaning.clean_table` of a big raw parquet file, in DuckDB: the same kept
    rows, rejects and counts (not pseudonymised, as clean_table leaves them), in bounded memory (DuckDB
    spills beyond its memory limit); only the clean result is read into pandas.

    Raises
    ------
    ValueError
        *name* is not one of :data:`SQL_TABLES`.
    """
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix=f"crm_{name}_", dir=workdir)
    try:
        work = Path(tmp.name)
        table = SqlTable(raw, key=b"", ts_format=ts_format, workdir=work / "duckdb", name=name)
        try:
            table.write(work / "kept.parquet", work / "rejects.parquet")
        finally:
            table.close()
        kept = pd.read_parquet(work / "kept.parquet")
        rejects = pd.read_parquet(work / "rejects.parquet")
        return kept, rejects, dict(table.counts)
    finally:
        tmp.cleanup()

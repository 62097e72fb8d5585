"""Cleaning: raw canonical tables in, clean typed tables out — nothing lost.

Every input row ends in exactly one place: kept, rejected (with a machine-readable
reason, its source file and line) or merged as an exact duplicate, so that for every
table ``rows_in == rows_kept + rows_rejected + rows_duplicate``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm_analytics import paths
from crm_analytics.ingest.contracts import EVALUATION_TABLES, TABLES, Column, Table
from crm_analytics.ingest.dates import TimestampFormat, parse_timestamps
from crm_analytics.errors import DataContractError
from crm_analytics.ingest.privacy import pseudonymise_table
from crm_analytics.ingest.tables import ParquetTable, isin

__all__ = ["CleanResult", "clean_table", "clean_column", "clean_tables", "parse_timestamps", "write_clean",
           "rejects_frame", "absent_column_error", "TEST_ORDER_PATTERN", "BLANK_TOKENS"]

SOURCE_COLS = ["_source_file", "_source_line"]
#: text that means "no value" once trimmed (besides a real null)
BLANK_TOKENS = ("", "nan", "NaN", "None", "null", "NULL", "N/A", "NA")
TEST_ORDER_PATTERN = r"^TEST"
_TRUE = {"true", "1", "yes", "y", "evet", "t"}
_FALSE = {"false", "0", "no", "n", "hayır", "hayir", "f"}


@dataclass
class CleanResult:
    """Clean tables, their rejects and the row accounting of one dataset.

    A table too big for pandas (the events of a large shop) is a :class:`crm_analytics.ingest.tables.ParquetTable`
    (a parquet file queried with DuckDB) rather than a DataFrame.

    ``evaluation`` holds the clean labelled data of :data:`crm_analytics.ingest.contracts.EVALUATION_TABLES` (the
    Turkish review sentences): counted in ``counts`` and ``rejects`` like any table, written beside the clean
    tables, but kept out of ``tables`` (quality checks, the customer view and erasure concern the shop's data).
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    rejects: dict[str, pd.DataFrame] = field(default_factory=dict)
    counts: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, object] = field(default_factory=dict)
    evaluation: dict[str, pd.DataFrame] = field(default_factory=dict)


def _is_blank(s: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s):
        return s.isna()  # the text of a number or a time is never a blank token (NaN/NaT are nulls)
    return s.isna() | s.astype("string").str.strip().isin(BLANK_TOKENS)


def _parse_bool(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(s):
        return s.astype("boolean"), pd.Series(False, index=s.index)
    low = s.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[low.isin(_TRUE)] = True
    out[low.isin(_FALSE)] = False
    bad = low.notna() & ~low.isin(_TRUE | _FALSE) & (low != "")
    return out, bad


def _canonical_labels(s: pd.Series) -> pd.Series:
    """Merge whitespace and case variants of a label to its most frequent spelling."""
    stripped = s.astype("string").str.strip().str.replace(r"\s+", " ", regex=True)
    key = stripped.str.replace("İ", "i").str.replace("I", "ı").str.lower()
    key = key.str.replace("ı", "i")
    counts = pd.DataFrame({"key": key, "label": stripped}).dropna().value_counts().reset_index()
    counts = counts.sort_values(["key", "count", "label"], ascending=[True, False, True])
    best = counts.drop_duplicates("key").set_index("key")["label"]
    return key.map(best).astype("string")


def absent_column_error(file: str, table: str, column: str, columns: list[str]) -> DataContractError:
    """The error for a required column that an input lacks (names the file, the column and the fix)."""
    return DataContractError(
        f"{file}: required column {column!r} of table {table!r} is absent; columns are "
        f"{[x for x in columns if not x.startswith('_')]} (rename the column or map it in params)"
    )


def clean_column(c: Column, s: pd.Series, *, ts_format: str | None = None, file: str = "", lines: pd.Series | None = None,
                 counts: pd.Series | np.ndarray | None = None, preparsed: int = 0, preparsed_format: str = "ISO8601",
                 evidence=None) -> tuple[pd.Series, list[tuple[pd.Series, str]], TimestampFormat | None]:
    """Clean one column by its contract type (the per-column rules of :func:`clean_table`).

    Parameters
    ----------
    c
        The column's contract.
    s
        Its raw values.
    ts_format, file
        The timestamp format (``None``: detect) and the input file named in errors.
    lines
        The source lines of *s*, named in errors.
    counts, preparsed, preparsed_format, evidence
        When *s* holds the distinct values of a larger column: rows per value and, for timestamps, rows
        parsed elsewhere in *preparsed_format* and the date order evidence of the whole column (see
        :func:`crm_analytics.ingest.dates.parse_timestamps`); the timestamp format is then chosen by rows.
        :mod:`crm_analytics.ingest.events_sql` cleans the rare values outside its SQL rules so.

    Returns
    -------
    values, reasons, format
        The clean values; ``(mask, reason)`` pairs in the order they apply (the first one that applies
        to a row wins); the timestamp format used and how it was decided (``None`` for other types).

    Raises
    ------
    DataContractError
        A required timestamp column has no parseable value at all, or its day/month order is not proven.
    """
    blank = _is_blank(s)
    reasons: list[tuple[pd.Series, str]] = []
    fmt = None
    if c.type == "id":
        v = s.astype("string").str.strip().str.replace(r"\.0$", "", regex=True).mask(blank)
    elif c.type in ("ts", "date"):
        v, fmt = parse_timestamps(s.mask(blank), fmt=ts_format, counts=counts, preparsed=preparsed,
                                  preparsed_format=preparsed_format, evidence=evidence, file=file, column=c.name)
        reasons.append((~blank & v.isna(), f"unparseable_{c.name}"))
        if c.type == "date":
            v = v.dt.tz_localize(None).dt.normalize().astype("datetime64[us]")
        weight = np.ones(len(s), dtype="int64") if counts is None else np.asarray(counts, dtype="int64")
        iso_rows = preparsed if fmt.fmt == preparsed_format else 0
        parsed_rows = int(weight[v.notna().to_numpy()].sum()) + iso_rows
        if (preparsed or not blank.all()) and parsed_rows == 0 and c.required:
            example = s[~blank].iloc[0]
            where = f" on line {lines[~blank].iloc[0]}" if lines is not None else ""
            hint = f"date_format {ts_format!r} does not fit; fix" if ts_format else "set"
            raise DataContractError(f"{file}: column {c.name!r}: no value parses as a date "
                                    f"(e.g. {example!r}{where}); {hint} params.date_format (in params/<dataset>.yaml)")
    elif c.type in ("float", "int"):
        num = s if pd.api.types.is_numeric_dtype(s) else pd.to_numeric(
            s.astype("string").str.strip().str.replace(",", ".", regex=False), errors="coerce")
        reasons.append((~blank & num.isna(), f"non_numeric_{c.name}"))
        v = num.astype("float64") if c.type == "float" else num.round().astype("Int64")
    elif c.type == "bool":
        v, bad = _parse_bool(s)
        reasons.append((bad, f"invalid_{c.name}"))
    else:
        v = s.astype("string").str.strip().mask(blank)
        if c.allowed:
            v = v.str.lower()
            reasons.append((v.notna() & ~v.isin(c.allowed), f"invalid_{c.name}"))
    if c.required:
        reasons.append((blank, f"missing_{c.name}"))
    return v, reasons, fmt


def clean_table(name: str, raw: pd.DataFrame, *, ts_format: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Clean one canonical table (or one of :data:`crm_analytics.ingest.contracts.EVALUATION_TABLES`).

    Returns
    -------
    kept, rejects, counts
        ``rejects`` has the raw values (as text), ``reason``, ``_source_file`` and ``_source_line``;
        ``counts`` has ``rows_in``, ``rows_kept``, ``rows_rejected``, ``rows_duplicate``,
        ``rejects_by_reason`` and ``timestamp_formats``.

    Raises
    ------
    DataContractError
        A required column is absent, or a required column has no parseable value at all.
    """
    spec: Table = TABLES[name] if name in TABLES else EVALUATION_TABLES[name]
    file = str(raw["_source_file"].iloc[0]) if "_source_file" in raw and len(raw) else f"{name} table"
    df = raw.reset_index(drop=True).copy()
    for col in SOURCE_COLS:
        if col not in df:
            df[col] = file if col == "_source_file" else np.arange(1, len(df) + 1)
    for c in spec.columns:
        if c.name not in df.columns:
            if c.required:
                raise absent_column_error(file, name, c.name, list(df.columns))
            df[c.name] = pd.NA
    rows_in = len(df)
    reason = pd.Series(pd.NA, index=df.index, dtype="string")

    def reject(mask: pd.Series, why: str | pd.Series) -> None:
        hit = mask & reason.isna()
        reason[hit] = why if isinstance(why, str) else why[hit]

    source_reject = df.pop("_reject") if "_reject" in df else None  # repeated headers, a cut last line
    if source_reject is not None:
        reject(source_reject.notna(), source_reject)

    # exact duplicates: same content (line numbers aside)
    content = [c for c in df.columns if not c.startswith("_source") and not (name == "order_lines" and c == "line_no")]
    dup = df.duplicated(subset=content, keep="first")
    if source_reject is not None:
        dup &= source_reject.isna()
    out = pd.DataFrame(index=df.index)
    formats: dict[str, str] = {}
    evidence: dict[str, str] = {}
    usable = reason.isna()
    for c in spec.columns:
        v, reasons, fmt = clean_column(c, df[c.name].where(usable), ts_format=ts_format, file=file,
                                       lines=df["_source_line"])
        for mask, why in reasons:
            reject(mask, why)
        if fmt is not None and v.notna().any():  # a column without a single date proves no format
            formats[c.name], evidence[c.name] = fmt.fmt, fmt.how
        if c.required and c.type in ("float", "int"):
            _stop_if_nothing_parses(c, df[c.name], reasons, usable, file=file, table=name,
                                    lines=df["_source_line"], source_name=raw.attrs.get("source_columns", {}).get(c.name))
        out[c.name] = v
    relabelled: dict[str, int] = {}
    extra = [c for c in df.columns if c.startswith("attr_")]
    for c in extra:
        out[c] = df[c]
    # table rules
    if name == "orders":
        reject(out["order_id"].str.contains(TEST_ORDER_PATTERN, regex=True, na=False), "test_order")
        reject(out["order_total"] < 0, "negative_order_total")
    elif name == "order_lines":
        reject(out["quantity"] <= 0, "non_positive_quantity")
        reject(out["unit_price"] < 0, "negative_price")
        if "_non_product" in df:
            reject(df["_non_product"].astype(bool), "non_product_code")
        reject(out["unit_price"] == 0, "zero_price")
        out["discount"] = out["discount"].fillna(0.0)
        for c in [c for c in df.columns if c.startswith("_") and not c.startswith("_source")]:
            out[c] = df[c]
    elif name == "reviews":
        reject(~out["rating"].between(1, 5), "rating_out_of_range")
    elif name == "review_sentences":
        reject(out["rating"].notna() & ~out["rating"].between(1, 5), "rating_out_of_range")
    elif name == "products":
        for col in ("category", "brand"):
            out[col] = _canonical_labels(out[col])
            raw_text = df[col].astype("string")
            relabelled[col] = int((raw_text.notna() & out[col].notna() & (raw_text != out[col])).fillna(False).sum())
    elif name == "customers" and "email" in out:
        out["email"] = out["email"].str.lower()
    # duplicates are not rejects
    reason[dup] = pd.NA
    # same key, different content: keep the first
    key_dup = out.duplicated(subset=list(spec.key), keep="first") & ~dup & reason.isna()
    keyed = ~dup & reason.isna()
    key_dup = out[keyed].duplicated(subset=list(spec.key), keep="first").reindex(out.index, fill_value=False)
    reject(key_dup, "duplicate_key")
    keep = ~dup & reason.isna()
    kept = out[keep].reset_index(drop=True)
    bad = df[(~keep & ~dup) | dup].drop(columns=["_ts"], errors="ignore")
    bad_reason = reason[(~keep & ~dup) | dup].fillna("duplicate")
    rejects = rejects_frame(bad, bad_reason)
    by_reason = bad_reason[bad_reason != "duplicate"].value_counts().sort_index()
    counts = {
        "rows_in": rows_in,
        "rows_kept": int(keep.sum()),
        "rows_rejected": int((~keep & ~dup).sum()),
        "rows_duplicate": int(dup.sum()),
        "rejects_by_reason": {str(k): int(v) for k, v in by_reason.items()},
        "timestamp_formats": formats,
        "timestamp_evidence": evidence,
    }
    if relabelled:
        counts["labels_canonicalised"] = relabelled
    assert counts["rows_in"] == counts["rows_kept"] + counts["rows_rejected"] + counts["rows_duplicate"]
    return kept, rejects.reset_index(drop=True), counts


def _stop_if_nothing_parses(c: Column, raw: pd.Series, reasons: list[tuple[pd.Series, str]], usable: pd.Series, *,
                            file: str, table: str, lines: pd.Series, source_name: str | None) -> None:
    """Raise when a required column holds values but none of them is usable (a Quantity column without
    a single number): the export or its mapping is wrong, and every row would be rejected."""
    own = [mask for mask, why in reasons if why.startswith("non_numeric_")]
    if not own:
        return
    bad = own[0].fillna(False).astype(bool) & usable
    filled = usable & ~_is_blank(raw)
    if not filled.any() or bool((filled & ~bad).any()):
        return
    i = int(np.flatnonzero(bad.to_numpy())[0])
    what = "a number"
    name = f"{source_name!r} ({table}.{c.name})" if source_name and source_name != c.name else f"{c.name!r}"
    raise DataContractError(
        f"{file}: column {name}: no value is {what} (e.g. {raw.iloc[i]!r} on line {lines.iloc[i]}), so every row "
        f"would be rejected; check that the column holds {c.name} (the column mapping in params/<dataset>.yaml, "
        "or the export itself)")


def rejects_frame(bad: pd.DataFrame, reason: pd.Series) -> pd.DataFrame:
    """The rejects of a table: the raw rows *bad* as text, their ``reason``, ``_source_line`` a number."""
    rejects = bad.astype("string").assign(reason=reason.to_numpy())
    rejects["_source_line"] = bad["_source_line"].to_numpy()
    return rejects


def _derive_from_lines(lines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Orders, customers and products from an invoice-line export (Online Retail)."""
    lines = lines.assign(_value=lines["quantity"] * lines["unit_price"])  # _ts: parsed by clean_tables
    g = lines.groupby("order_id", sort=True)
    orders = pd.DataFrame({
        "customer_id": g["_customer_id"].first(),
        "order_ts": g["_ts"].min(),
        "channel": "web",
        "status": np.where(g["_cancelled"].first(), "cancelled", "completed"),
        "order_total": g["_value"].sum().round(2),
    }).reset_index()
    orders["customer_id"] = orders["customer_id"].astype("string").mask(_is_blank(orders["customer_id"]))
    cust = lines.dropna(subset=["_customer_id"]).groupby("_customer_id")
    customers = pd.DataFrame({"region": cust["_country"].agg(lambda s: s.mode().iloc[0]),
                              "signup_ts": cust["_ts"].min()})
    customers.index.name = "customer_id"
    products = lines.groupby("product_id").agg(name=("_description", lambda s: s.mode().iloc[0] if s.notna().any() else None),
                                              price=("unit_price", "median")).reset_index()
    return {"orders": orders, "customers": customers.reset_index(), "products": products}


def clean_tables(raw: dict[str, pd.DataFrame], *, key: bytes, ts_format: str | None = None,
                 workdir: Path | None = None) -> CleanResult:
    """Clean every canonical table in *raw*, derive absent required tables, pseudonymise.

    Lines of rejected orders are rejected too (reason ``order_rejected``). A raw table a reader built from
    another one (the products of a review export) says so in ``attrs["derived_from"]``; its counts then carry
    ``derived_from`` (not counted as input rows, not held to the reject share). Tables of
    :data:`crm_analytics.ingest.contracts.EVALUATION_TABLES` go to ``result.evaluation``. This is the in-memory path;
    :func:`crm_analytics.ingest.collect.collect` cleans the events apart, in DuckDB
    (:class:`crm_analytics.ingest.events_sql.SqlEvents`, the same rules).

    A table given as a raw parquet file (:class:`crm_analytics.ingest.sources.RawParquet`: the orders, lines,
    customers or assignments of a big generated world) is cleaned in DuckDB too, in bounded memory, spilling
    to *workdir* (:func:`crm_analytics.ingest.events_sql.clean_table_sql`: the same kept rows, rejects and
    counts); only its clean rows come into pandas.
    """
    result = CleanResult()
    raw = dict(raw)
    invoice_ts = None
    if isinstance(raw.get("order_lines"), pd.DataFrame) and "_cancelled" in raw["order_lines"]:  # invoice lines
        src = raw["order_lines"]
        raw["order_lines"], invoice_ts = _parse_invoice_dates(src, ts_format)
        result.notes["guest_lines"] = int(_is_blank(src["_customer_id"]).sum())
        result.notes["cancelled_lines"] = int(src["_cancelled"].sum())
        result.notes["cancelled_lines_matched"] = match_cancellations(raw["order_lines"], ts_format=ts_format)
    for name in [n for n in TABLES if n in raw]:
        if not isinstance(raw[name], pd.DataFrame):  # a big raw parquet file: DuckDB, the same rules
            from crm_analytics.ingest.events_sql import clean_table_sql

            kept, rej, counts = clean_table_sql(name, raw[name], ts_format=ts_format, workdir=workdir)
            raw[name] = None  # nothing of it stays in memory
            result.tables[name], result.rejects[name], result.counts[name] = kept, rej, counts
            continue
        derived_from = raw[name].attrs.get("derived_from")
        kept, rej, counts = clean_table(name, raw[name], ts_format=ts_format)
        if derived_from:
            counts["derived_from"] = derived_from
        result.tables[name], result.rejects[name], result.counts[name] = kept, rej, counts
    for name in [n for n in EVALUATION_TABLES if n in raw]:
        kept, rej, counts = clean_table(name, raw[name], ts_format=ts_format)
        result.evaluation[name] = kept[EVALUATION_TABLES[name].column_names]
        result.rejects[name], result.counts[name] = rej, counts
    if invoice_ts is not None:
        result.counts["order_lines"]["timestamp_formats"]["order_ts"] = invoice_ts.fmt
        result.counts["order_lines"]["timestamp_evidence"]["order_ts"] = invoice_ts.how
    if "order_lines" in result.tables and "_order_ts" in result.tables["order_lines"]:
        lines = result.tables["order_lines"]
        derived = _derive_from_lines(lines)
        for name, table in derived.items():
            result.tables.setdefault(name, table)
            result.counts.setdefault(name, {"rows_in": len(table), "rows_kept": len(table), "rows_rejected": 0,
                                            "rows_duplicate": 0, "rejects_by_reason": {}, "derived_from": "order_lines"})
        result.tables["order_lines"] = lines[[c for c in lines.columns if not c.startswith("_")]]
    if "orders" in result.tables and "order_lines" in result.tables and "orders" in raw:
        _cascade_lines(result)
    if "customers" not in result.tables and "orders" in result.tables:
        o = result.tables["orders"].dropna(subset=["customer_id"])
        cust = o.groupby("customer_id")["order_ts"].min().rename("signup_ts").reset_index()
        result.tables["customers"] = cust
        result.counts["customers"] = {"rows_in": len(cust), "rows_kept": len(cust), "rows_rejected": 0,
                                      "rows_duplicate": 0, "rejects_by_reason": {}, "derived_from": "orders"}
    for name in list(result.tables):
        t = result.tables[name]
        for c in TABLES[name].columns:
            if c.name not in t.columns:
                t[c.name] = pd.NA
        cols = TABLES[name].column_names + [c for c in t.columns if c.startswith("attr_")]
        result.tables[name] = pseudonymise_table(name, t[cols], key)
    for name, rej in result.rejects.items():
        result.rejects[name] = pseudonymise_table(name, rej, key)
    return result


def _parse_invoice_dates(lines: pd.DataFrame, ts_format: str | None) -> tuple[pd.DataFrame, TimestampFormat]:
    """The invoice dates of an invoice-line export parsed into ``_ts`` (with the ``date_format`` hint or
    the evidence, as any timestamp column); a line whose date is blank or unparseable gets a ``_reject``.

    Raises
    ------
    DataContractError
        No date parses, or day and month cannot be told apart.
    """
    file = str(lines["_source_file"].iloc[0]) if "_source_file" in lines and len(lines) else "order_lines"
    column = lines.attrs.get("source_columns", {}).get("_order_ts", "InvoiceDate")
    given = lines["_reject"] if "_reject" in lines else pd.Series(pd.NA, index=lines.index, dtype="string")
    text = lines["_order_ts"].where(given.isna())
    blank = _is_blank(text)
    ts, fmt = parse_timestamps(text.mask(blank), fmt=ts_format, file=file, column=column)
    if (~blank).any() and not ts.notna().any():
        i = int(np.flatnonzero((~blank).to_numpy())[0])
        hint = f"date_format {ts_format!r} does not fit; fix" if ts_format else "set"
        raise DataContractError(f"{file}: column {column!r}: no value parses as a date (e.g. {text.iloc[i]!r} on line "
                                f"{lines['_source_line'].iloc[i]}); {hint} params.date_format (in params/<dataset>.yaml)")
    reject = given.copy()
    reject[reject.isna() & blank] = "missing_order_ts"
    reject[reject.isna() & ~blank & ts.isna()] = "unparseable_order_ts"
    out = lines.assign(_ts=ts)
    if reject.notna().any():
        out["_reject"] = reject
    out.attrs = dict(lines.attrs)
    return out, fmt


def match_cancellations(lines: pd.DataFrame, *, ts_format: str | None = None) -> int:
    """Cancellation lines of an invoice-line export that match an earlier purchase line they cancel.

    A cancellation (``_cancelled``) matches the latest earlier non-cancelled line of the same customer
    and product with at least the cancelled quantity. Guest lines cannot be matched.
    """
    ts = lines["_ts"] if "_ts" in lines else parse_timestamps(lines["_order_ts"], fmt=ts_format)[0]
    df = pd.DataFrame({"customer": lines["_customer_id"].astype("string").mask(_is_blank(lines["_customer_id"])),
                       "product": lines["product_id"].astype("string"), "ts": ts,
                       "qty": pd.to_numeric(lines["quantity"], errors="coerce").abs(),
                       "cancelled": lines["_cancelled"].astype(bool)}).dropna(subset=["customer", "ts", "qty"])
    cancels = df[df["cancelled"]].sort_values("ts")
    buys = df[~df["cancelled"]].sort_values("ts").rename(columns={"qty": "bought"})
    if cancels.empty or buys.empty:
        return 0
    m = pd.merge_asof(cancels, buys[["ts", "customer", "product", "bought"]], on="ts", by=["customer", "product"],
                      direction="backward")
    return int((m["bought"] >= m["qty"]).sum())


def _cascade_lines(result: CleanResult) -> None:
    lines, counts = result.tables["order_lines"], result.counts["order_lines"]
    orphan = ~isin(lines["order_id"], result.tables["orders"]["order_id"])
    rejected_orders = result.rejects["orders"].loc[result.rejects["orders"]["reason"] != "duplicate", "order_id"]
    cascade = orphan & isin(lines["order_id"], rejected_orders)
    if cascade.any():
        moved = lines[cascade].astype("string").assign(reason="order_rejected")
        result.rejects["order_lines"] = pd.concat([result.rejects["order_lines"], moved], ignore_index=True)
        result.tables["order_lines"] = lines[~cascade].reset_index(drop=True)
        counts["rows_kept"] -= int(cascade.sum())
        counts["rows_rejected"] += int(cascade.sum())
        counts["rejects_by_reason"]["order_rejected"] = int(cascade.sum())


def _write_table(table: pd.DataFrame | ParquetTable, path: Path) -> None:
    if isinstance(table, ParquetTable):
        table.save(path)
    else:
        table.to_parquet(path, index=False)


def write_clean(result: CleanResult, dataset: str, quality: dict,
                extra: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write clean tables, evaluation tables (``result.evaluation``), rejects and ``quality.json`` to
    ``data/interim/<dataset>/``.

    Writes into a fresh folder and swaps it in at the end, so a failure leaves the
    previous clean tables untouched. A :class:`crm_analytics.ingest.tables.ParquetTable` (a table
    already written by DuckDB) is moved in, not rewritten.
    """
    final = paths.interim_dir(dataset)
    tmp = final.with_name(final.name + ".tmp")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "rejects").mkdir(parents=True)
    files = [(t, tmp / f"{name}.parquet") for name, t in {**result.tables, **result.evaluation,
                                                           **(extra or {})}.items()]
    files += [(r, tmp / "rejects" / f"{name}.parquet") for name, r in result.rejects.items() if len(r)]
    with ThreadPoolExecutor(max_workers=2) as pool:  # pyarrow writes without the GIL: two tables at a time
        list(pool.map(lambda job: _write_table(*job), files))
    (tmp / "quality.json").write_text(json.dumps(quality, indent=2, sort_keys=True, default=str) + "\n")
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final

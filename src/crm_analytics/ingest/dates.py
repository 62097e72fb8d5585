"""Timestamps as shops export them: which format a column uses, decided by evidence, never guessed.

``01/12/2010 08:26`` is 1 December in a British export and 12 January in an American one. A column of
numeric dates (``d/m/y``, ``d.m.y`` or ``d-m-y``, 2- or 4-digit year, with or without a time) is read
in the order its own values prove:

* a first field above 12 (``13/01/2011``) is a day: **day first**;
* a second field above 12 (``01/13/2011``) is a day: **month first**;
* no value with a field above 12, or values proving both orders: **undecidable**. The run stops with
  a :class:`~crm_analytics.errors.DataContractError` naming the file, the column, an example value and
  the ``date_format`` to set in the dataset's params file.

A ``date_format`` hint (``collect(dataset, date_format=...)``) overrides the evidence. ISO 8601 text
and Excel serial numbers need no order. The decision and its evidence are kept
(:attr:`TimestampFormat.how`) for the cleaning report.

Evidence is a small *profile* (rows per layout and per field above 12), computed here from the
distinct values of a column (:func:`date_profile`) or in DuckDB over an event log
(:data:`SQL_PROFILE`); both give the same profile, hence the same decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError

__all__ = ["TimestampFormat", "DateEvidence", "date_profile", "decide_order", "parse_timestamps",
           "layout_regex", "SQL_PROFILE", "PARAMS_FILE"]

#: how the messages name the dataset's params file (collect puts in the dataset's name)
PARAMS_FILE = "params/<dataset>.yaml"
#: a numeric date: field, separator, field, separator, year; optional time (same regex in Python and DuckDB)
NUMERIC_DATE = (r"^([0-9]{1,2})([./-])([0-9]{1,2})([./-])([0-9]{4}|[0-9]{2})"
                r"(?:([ T])([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?)?$")
_PROFILE_COLUMNS = ["sep", "year_digits", "time", "first_big", "second_big", "rows", "example"]
_RE = NUMERIC_DATE.replace("{", "{{").replace("}", "}}")

#: the profile of the text column ``{col}`` of the relation ``{rel}`` in DuckDB (``{ws}``: the whitespace
#: ``str.strip`` removes), as :func:`date_profile` computes it from pandas
SQL_PROFILE = f"""
WITH t AS (SELECT trim({{col}}, {{ws}}) AS v FROM {{rel}} WHERE {{col}} IS NOT NULL),
m AS (SELECT v, regexp_extract(v, '{_RE}', ['a', 's1', 'b', 's2', 'y', 'tsep', 'h', 'mi', 's']) AS g
      FROM t WHERE regexp_full_match(v, '{_RE}'))
SELECT g.s1 AS sep, length(g.y) AS year_digits,
       CASE WHEN g.h = '' THEN '' ELSE g.tsep || CASE WHEN g.s = '' THEN '%H:%M' ELSE '%H:%M:%S' END END AS time,
       CAST(g.a AS INTEGER) > 12 AS first_big, CAST(g.b AS INTEGER) > 12 AS second_big,
       count(*) AS rows, min(v) AS example
FROM m WHERE g.s1 = g.s2 GROUP BY ALL ORDER BY ALL
"""


@dataclass(frozen=True)
class TimestampFormat:
    """The format of a timestamp column and how it was decided.

    Attributes
    ----------
    fmt
        A strftime format, ``"ISO8601"``, ``"excel_serial"`` or ``"datetime"`` (already typed).
    order
        ``"day first"``, ``"month first"``, ``"year first"`` (ISO 8601) or ``""`` (not a date order).
    how
        Plain words: ``"from date_format"`` or the evidence (``"day first: 1,234 values have a day
        above 12, e.g. '13/01/2011 08:26'"``).
    """

    fmt: str
    order: str = ""
    how: str = ""


@dataclass(frozen=True)
class DateEvidence:
    """What the numeric dates of a column say about their order (see :func:`decide_order`)."""

    order: str  # "day first", "month first", "undecided", "contradictory" or "" (no numeric dates)
    rows: int  # rows holding a numeric date (with fields that can be a day and a month)
    day_first_rows: int
    month_first_rows: int
    day_first_example: str | None
    month_first_example: str | None
    layout: tuple[str, int, str]  # separator, year digits, time suffix of the most frequent layout
    example: str | None

    def format(self, order: str | None = None) -> str:
        """The strftime format of the main layout in *order* (default: the decided order)."""
        sep, year_digits, time = self.layout
        year = "%Y" if year_digits == 4 else "%y"
        first, second = ("%d", "%m") if (order or self.order) == "day first" else ("%m", "%d")
        return f"{first}{sep}{second}{sep}{year}{time}"

    @property
    def how(self) -> str:
        if self.order == "day first":
            return (f"day first: {self.day_first_rows:,} values have a day above 12 in the first field, "
                    f"e.g. {self.day_first_example!r}")
        if self.order == "month first":
            return (f"month first: {self.month_first_rows:,} values have a day above 12 in the second field, "
                    f"e.g. {self.month_first_example!r}")
        return ""


def date_profile(text: pd.Series, weight: np.ndarray | None = None) -> pd.DataFrame:
    """The evidence profile of text dates: rows per layout and per field above 12, with the smallest
    value of each group as its example (what :data:`SQL_PROFILE` computes in DuckDB).

    Parameters
    ----------
    text
        Stripped text values (nulls allowed), typically the distinct values of a column.
    weight
        Rows each value stands for (default one each).
    """
    weight = np.ones(len(text), dtype="int64") if weight is None else np.asarray(weight, dtype="int64")
    s = text.astype("string")
    g = s.str.extract(NUMERIC_DATE)
    ok = g[0].notna().to_numpy() & (g[1] == g[3]).fillna(False).to_numpy()
    if not ok.any():
        return pd.DataFrame(columns=_PROFILE_COLUMNS)
    g, v, w = g[ok], s[ok], weight[ok]
    time = np.where(g[6].isna(), "", g[5].fillna("") + np.where(g[8].isna(), "%H:%M", "%H:%M:%S"))
    df = pd.DataFrame({"sep": g[1].to_numpy(dtype=object), "year_digits": g[4].str.len().to_numpy(dtype="int64"),
                       "time": time.astype(object), "first_big": g[0].astype(int).to_numpy() > 12,
                       "second_big": g[2].astype(int).to_numpy() > 12, "rows": w, "example": v.to_numpy(dtype=object)})
    keys = _PROFILE_COLUMNS[:5]
    out = df.groupby(keys, as_index=False).agg(rows=("rows", "sum"), example=("example", "min"))
    return out.sort_values(keys).reset_index(drop=True)


def decide_order(profile: pd.DataFrame) -> DateEvidence:
    """Decide day first or month first from a :func:`date_profile` (evidence only, never a guess).

    Values with both fields above 12 are no date in either order and say nothing. The order is
    ``"undecided"`` when no value has a field above 12 and ``"contradictory"`` when some prove day
    first and others month first.
    """
    p = profile[~(profile["first_big"].astype(bool) & profile["second_big"].astype(bool))]
    if not len(p):
        return DateEvidence("", 0, 0, 0, None, None, ("/", 4, ""), None)
    first, second = p["first_big"].astype(bool), p["second_big"].astype(bool)
    day, month = p[first & ~second], p[second & ~first]
    n_day, n_month = int(day["rows"].sum()), int(month["rows"].sum())
    order = ("contradictory" if n_day and n_month else "day first" if n_day else "month first" if n_month
             else "undecided")
    layouts = p.groupby(["sep", "year_digits", "time"])["rows"].sum().reset_index()
    best = layouts.sort_values(["rows", "sep", "year_digits", "time"], ascending=[False, True, True, True]).iloc[0]
    return DateEvidence(order, int(p["rows"].sum()), n_day, n_month, day["example"].min() if n_day else None,
                        month["example"].min() if n_month else None,
                        (str(best["sep"]), int(best["year_digits"]), str(best["time"])), str(p["example"].min()))


def undecidable_error(evidence: DateEvidence, *, file: str, column: str) -> DataContractError:
    """The error for a column whose numeric dates do not prove their order; names the hint to set."""
    day, month = evidence.format("day first"), evidence.format("month first")
    if evidence.order == "contradictory":
        why = (f"{evidence.day_first_rows:,} values are day first (e.g. {evidence.day_first_example!r}) and "
               f"{evidence.month_first_rows:,} month first (e.g. {evidence.month_first_example!r})")
    else:
        why = (f"no value has a day above 12 that would tell day and month apart "
               f"(e.g. {evidence.example!r}, {evidence.rows:,} values)")
    return DataContractError(
        f"{file}: column {column!r}: the order of day and month cannot be decided: {why}; "
        f'set date_format: "{day}" (day first) or "{month}" (month first) in {PARAMS_FILE}')


_DIRECTIVES = {"%d": "(?:0?[1-9]|[12][0-9]|3[01])", "%m": "(?:0?[1-9]|1[0-2])", "%Y": "[0-9]{4}",
               "%H": "(?:[01]?[0-9]|2[0-3])", "%M": "[0-5][0-9]", "%S": "[0-5][0-9]"}


def layout_regex(fmt: str) -> str | None:
    """A regular expression (RE2 and Python) that values of *fmt* match, for formats made of
    ``%d %m %Y %H %M %S`` and the separators ``. / - : T`` and space; ``None`` for any other format.

    >>> layout_regex("%d/%m/%Y %H:%M") is not None, layout_regex("%d %b %Y")
    (True, None)
    """
    parts = re.split(r"(%.)", fmt)
    out = []
    for part in parts:
        if part.startswith("%"):
            if part not in _DIRECTIVES:
                return None
            out.append(_DIRECTIVES[part])
        elif part and re.fullmatch(r"[./\-: T]+", part):
            out.append(re.escape(part))
        elif part:
            return None
    return "".join(out)


# ----------------------------------------------------------------------------- parsing


def parse_timestamps(values: pd.Series, *, fmt: str | None = None, counts: pd.Series | np.ndarray | None = None,
                     preparsed: int = 0, preparsed_format: str = "ISO8601", evidence: DateEvidence | None = None,
                     file: str = "", column: str = "") -> tuple[pd.Series, TimestampFormat]:
    """Parse text timestamps to UTC microseconds; return the parsed series and the format used.

    With *fmt* (the ``date_format`` hint) every value is read with it. Otherwise the candidates are
    ISO 8601, the numeric dates in the order their evidence proves (see the module) and, when fewer
    than half the rows parse so, Excel serial numbers; the one that parses most rows wins, values in
    another format are NaT (rejected by cleaning).

    Parameters
    ----------
    values
        The text (or datetime) values of one column.
    fmt
        The strftime format of the column, or ``None`` to decide it.
    counts
        When *values* are the distinct values of a larger column: how many rows each stands for.
    preparsed, preparsed_format
        Rows of the same column, not in *values*, already parsed elsewhere in *preparsed_format*
        (DuckDB's fast path): they count for that format only.
    evidence
        The date order evidence of the whole column when *values* are only part of it (DuckDB).
    file, column
        Named in errors.

    Raises
    ------
    DataContractError
        The numeric dates of the column would decide the format, but their order is not proven.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values, utc=True)
        return out.astype("datetime64[us, UTC]"), TimestampFormat("datetime", "", "already a timestamp")
    text = values.astype("string").str.strip()
    weight = np.ones(len(text), dtype="int64") if counts is None else np.asarray(counts, dtype="int64")
    codes, uniq = pd.factorize(text)  # parse each distinct value once
    w = np.bincount(codes[codes >= 0], weights=weight[codes >= 0], minlength=len(uniq)).astype("int64")
    uniq = pd.Series(uniq, dtype="string")

    def expand(parsed: pd.Series) -> pd.Series:
        arr = parsed.astype("datetime64[us, UTC]").array
        out = pd.Series(arr.take(codes, allow_fill=True), index=text.index)
        return out.astype("datetime64[us, UTC]")

    def rows(parsed: pd.Series) -> int:
        return int(w[parsed.notna().to_numpy()].sum())

    if fmt:
        got = _parse_format(uniq, fmt)
        order = _order_of(fmt)
        return expand(got), TimestampFormat(fmt, order, "from date_format")
    if evidence is None:
        evidence = decide_order(date_profile(uniq, w))
    iso = _parse_format(uniq, "ISO8601")
    best = (iso, TimestampFormat("ISO8601", "year first", "ISO 8601"),
            rows(iso) + (preparsed if preparsed_format == "ISO8601" else 0))
    if evidence.order in ("day first", "month first"):
        f = evidence.format()
        got = _parse_format(uniq, f)
        n = rows(got) + (preparsed if preparsed_format == f else 0)
        if n > best[2]:
            best = (got, TimestampFormat(f, evidence.order, evidence.how), n)
    elif evidence.order and evidence.rows > best[2]:
        raise undecidable_error(evidence, file=file or "input", column=column or "timestamp")
    n_text = rows(uniq.notna()) + preparsed
    if best[2] < n_text * 0.5:
        num = pd.to_numeric(uniq, errors="coerce")
        serial = (pd.Timestamp("1899-12-30", tz="UTC") + pd.to_timedelta(num, unit="D")).where(num.between(1, 80000))
        if rows(serial) > best[2]:
            best = (serial, TimestampFormat("excel_serial", "", "Excel serial day numbers"), rows(serial))
    return expand(best[0]), best[1]


def _order_of(fmt: str) -> str:
    d, m = fmt.find("%d"), fmt.find("%m")
    if fmt == "ISO8601" or fmt.startswith("%Y"):
        return "year first"
    if d < 0 or m < 0:
        return ""
    return "day first" if d < m else "month first"


def _parse_format(text: pd.Series, fmt: str) -> pd.Series:
    """``pd.to_datetime(text, format=fmt)``, NaT where a value does not match; values lacking one of the
    format's separators are skipped (they cannot match it)."""
    possible = text.notna()
    if fmt != "ISO8601":
        for char in set(re.sub(r"%.", "", fmt)) - {" "}:
            possible &= text.str.contains(char, regex=False).fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us, UTC]")
    if possible.any():
        out[possible] = pd.to_datetime(text[possible], format=fmt, utc=True,
                                       errors="coerce").astype("datetime64[us, UTC]")
    return out

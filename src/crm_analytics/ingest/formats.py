"""Readers of third-party export formats into raw canonical tables.

``read_online_retail``  UCI Online Retail / Online Retail II (one row per invoice line)
``read_hillstrom``      MineThatData e-mail experiment (one row per customer)
``read_diginetica``     DIGINETICA (CIKM Cup 2016) product-view clickstream (one row per view)
``read_online_shoppers`` UCI Online Shoppers Purchasing Intention (one row per session)

Each returns ``{table: DataFrame}`` with canonical column names, text timestamps as found
and ``_source_file`` / ``_source_line`` on every row; parsing and validation happen in
:mod:`crm_analytics.ingest.cleaning`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, SourceError

__all__ = ["read_online_retail", "read_hillstrom", "read_diginetica", "read_online_shoppers",
           "ONLINE_SHOPPERS_COLUMNS", "NON_PRODUCT_CODES", "read_table_file", "file_kind",
           "number_style", "parse_numbers", "SAMPLE_BYTES"]

#: Online Retail stock codes that are fees, adjustments or samples, not products.
NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "MANUAL", "BANK CHARGES", "D", "S", "AMAZONFEE", "CRUK", "B", "C2", "PADS", "ADJUST",
     "ADJUST2", "TEST001", "TEST002", "GIFT"}
)

_ENCODINGS = ("utf-8", "cp1254", "latin-1")
_ENCODING_NAMES = {"utf-8": "utf-8", "utf-8-sig": "utf-8 with BOM", "cp1254": "cp1254 (Windows Turkish)",
                   "latin-1": "latin-1"}
_DELIMITERS = (",", ";", "\t", "|")
#: bytes read to detect the encoding and delimiter, whatever the size of the file
SAMPLE_BYTES = 1 << 16


def _open_bytes(path: Path, kind: str):
    import gzip

    return gzip.open(path, "rb") if kind == "csv.gz" else open(path, "rb")


def file_kind(path: Path) -> str:
    """``csv``, ``csv.gz``, ``xlsx`` or ``parquet``, by the file's first bytes (a misnamed file is read
    for what it is), else by its suffix."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return "parquet"
    if magic.startswith(b"PK\x03\x04"):
        return "xlsx"
    if magic.startswith(b"\x1f\x8b"):
        return "csv.gz"
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls", ".xlsm"):
        return "xlsx"
    return "csv"


def _sniff_encoding(sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    for enc in _ENCODINGS:
        try:
            sample.decode(enc)
        except UnicodeDecodeError as exc:
            if enc == "utf-8" and exc.start >= len(sample) - 3:  # a character cut by the end of the sample
                return enc
            continue
        return enc
    return "latin-1"


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the sample's lines into the same number (> 1) of fields most often."""
    import csv
    import io

    lines = text.splitlines()[:200]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut
    best, best_score = ",", (0.0, 0)
    for d in _DELIMITERS:
        rows = [len(r) for r in csv.reader(io.StringIO("\n".join(lines)), delimiter=d) if r]
        if not rows or rows[0] < 2:
            continue
        score = (sum(n == rows[0] for n in rows) / len(rows), rows[0])
        if score > best_score:
            best, best_score = d, score
    return best


def read_table_file(path: Path, *, dtype=str) -> tuple[pd.DataFrame, dict]:
    """Read a csv, csv.gz, xlsx or parquet export as text columns; return the frame and what was detected.

    The encoding (utf-8, utf-8 with BOM, cp1254, latin-1) and the delimiter (``,`` ``;`` tab ``|``)
    are detected on the first :data:`SAMPLE_BYTES` of any file, however large. Lines repeating the
    header (concatenated exports) and a last line cut short (a truncated file) are kept with a reason
    in the column ``_reject``, for cleaning to reject.

    Returns
    -------
    frame, detected
        ``detected`` is plain JSON: ``file``, ``format``, ``encoding``, ``delimiter``, ``rows``,
        ``repeated_headers``, ``truncated_last_line``.

    Raises
    ------
    SourceError
        Missing, empty, undecodable or unreadable file.
    DataContractError
        A header and no rows.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file does not exist; check the path in params")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty; export it again")
    kind = file_kind(path)
    detected: dict = {"file": path.name, "format": kind, "encoding": "", "delimiter": ""}
    if kind == "xlsx":
        try:
            df = pd.read_excel(path, dtype=dtype, engine="openpyxl")
        except ImportError:
            raise SourceError(f"{path}: reading Excel files needs openpyxl; `pip install openpyxl` "
                              "or save the sheet as csv") from None
        except Exception as exc:  # zipfile.BadZipFile, KeyError, ValueError: a broken workbook
            raise SourceError(f"{path}: cannot be read as an Excel workbook ({exc}); is the file truncated?") from None
        df = df.astype({c: "string" for c in df.columns}) if dtype is str else df
        df = df.mask(df.isna(), None) if dtype is str else df
    elif kind == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow.ArrowInvalid and friends: a broken file
            raise SourceError(f"{path}: cannot be read as parquet ({exc}); is the file truncated?") from None
    else:
        df = _read_csv(path, kind, dtype, detected)
    df.columns = [str(c).strip() for c in df.columns]
    if not len(df):
        raise DataContractError(f"{path}: the file has a header ({', '.join(map(str, df.columns[:6]))}"
                                f"{', ...' if len(df.columns) > 6 else ''}) but no rows; export it again")
    reject = pd.Series(pd.NA, index=df.index, dtype="string")
    text_cols = [c for c in df.columns if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype)]
    if len(text_cols) == len(df.columns) and len(df.columns):
        first = df.iloc[:, 0].astype("string").str.strip() == str(df.columns[0])
        if first.any():
            same = df[first.fillna(False)].astype("string").apply(lambda s: s.str.strip() == s.name)
            reject[same.all(axis=1).reindex(df.index, fill_value=False)] = "repeated_header"
    detected["repeated_headers"] = int((reject == "repeated_header").sum())
    if detected.pop("_truncated", False):
        reject.iloc[-1] = "truncated_line"
        detected["truncated_last_line"] = True
    else:
        detected["truncated_last_line"] = False
    if reject.notna().any():
        df["_reject"] = reject
    detected["rows"] = int(len(df))
    return df, detected


def _read_csv(path: Path, kind: str, dtype, detected: dict) -> pd.DataFrame:
    try:
        with _open_bytes(path, kind) as fh:
            sample = fh.read(SAMPLE_BYTES)
    except (EOFError, OSError) as exc:
        raise SourceError(f"{path}: cannot be read ({exc}); is the file truncated?") from None
    enc = _sniff_encoding(sample)
    delimiter = _sniff_delimiter(sample.decode(enc, errors="replace"))
    last_error: Exception | None = None
    for candidate in dict.fromkeys([enc, *_ENCODINGS[_ENCODINGS.index(enc) if enc in _ENCODINGS else 0:]]):
        try:
            df = pd.read_csv(path, dtype=dtype, sep=delimiter, encoding=candidate, keep_default_na=False,
                             na_values=[""], compression="gzip" if kind == "csv.gz" else None)
        except UnicodeDecodeError as exc:
            last_error = exc
            continue
        except (pd.errors.ParserError, EOFError, OSError) as exc:
            raise SourceError(f"{path}: cannot be read as a table ({exc}); is the file truncated?") from None
        except pd.errors.EmptyDataError:
            raise SourceError(f"{path}: file is empty; export it again") from None
        detected.update(encoding=candidate, delimiter=delimiter)
        detected["_truncated"] = _last_line_cut(path, kind, candidate, delimiter, len(df.columns)) if len(df) else False
        return df
    raise SourceError(f"{path}: cannot be decoded as {list(_ENCODINGS)} ({last_error}); save it as UTF-8") from None


def _last_line_cut(path: Path, kind: str, encoding: str, delimiter: str, n_columns: int) -> bool:
    """Whether the file ends without a newline in a line with fewer fields than the header (cut short)."""
    import csv
    import io

    tail = b""
    with _open_bytes(path, kind) as fh:
        if kind == "csv":
            fh.seek(max(0, path.stat().st_size - SAMPLE_BYTES))
            tail = fh.read()
        else:
            while block := fh.read(1 << 22):
                tail = (tail + block)[-SAMPLE_BYTES:]
    if not tail or tail.endswith((b"\n", b"\r")):
        return False
    last = tail.splitlines()[-1].decode(encoding, errors="replace")
    fields = next(csv.reader(io.StringIO(last), delimiter=delimiter), [])
    return len(fields) < n_columns


# ----------------------------------------------------------------------------- numbers

_NUMBER = re.compile(r"^[+-]?[0-9][0-9.,' \u00a0\u202f]*$")
_SPACES = " \u00a0\u202f'"


def _number_evidence(value: str) -> tuple[str, str]:
    """``(decimal, thousands)`` that one number proves (``""`` where it proves nothing): the last of two
    different separators is the decimal one; a separator repeated is a thousands one; a lone separator
    is decimal unless exactly three digits follow it (``1,234`` proves nothing)."""
    body = value.lstrip("+-")
    grouped = any(c in body for c in _SPACES)
    seps = [c for c in body if c in ".,"]
    if not seps:
        return "", " " if grouped else ""
    if len(set(seps)) == 2:
        return seps[-1], seps[0]
    if len(seps) > 1:
        return ("," if seps[0] == "." else "."), seps[0]
    digits_after = len(body) - body.rindex(seps[0]) - 1
    if digits_after != 3 or grouped:
        return seps[0], " " if grouped else ""
    return "", ""


def number_style(columns: dict[str, pd.Series], *, file: str, hint: str = "") -> dict:
    """Decide the decimal mark and thousands separator of a file's number columns by evidence.

    Parameters
    ----------
    columns
        Column label -> text values of the columns that hold numbers.
    file
        Named in errors.
    hint
        ``","`` or ``"."``: the ``decimal`` source option, which overrides the evidence.

    Returns
    -------
    dict
        ``decimal``, ``thousands`` (``""``: none seen) and ``how`` (the evidence in words).

    Raises
    ------
    DataContractError
        Values prove both decimal marks, or only ambiguous values (``1,234``) carry separators.
    """
    proofs: dict[str, list[tuple[str, str, int]]] = {".": [], ",": []}
    thousands: dict[str, int] = {}
    ambiguous: list[tuple[str, str]] = []
    for label, s in columns.items():
        text = s.dropna().astype(str).str.strip()
        counts = text[text.str.match(_NUMBER)].value_counts()
        for value, n in counts.items():
            dec, th = _number_evidence(value)
            if dec:
                proofs[dec].append((value, label, int(n)))
            if th:
                thousands[th] = thousands.get(th, 0) + int(n)
            if not dec and not th and ("," in value or "." in value):
                ambiguous.append((value, label))
    n_dot, n_comma = (sum(p[2] for p in proofs[d]) for d in (".", ","))
    option = "set source option decimal: \",\" (e.g. 1.234,56) or decimal: \".\" (e.g. 1,234.56) in params/<dataset>.yaml"
    if hint:
        decimal, how = hint, "from the decimal option"
    elif n_dot and n_comma:
        d, c = proofs["."][0], proofs[","][0]
        raise DataContractError(f"{file}: numbers use both decimal marks: {d[0]!r} in column {d[1]!r} ({n_dot:,} "
                                f"values) and {c[0]!r} in column {c[1]!r} ({n_comma:,} values); fix the export or {option}")
    elif n_dot or n_comma:
        decimal = "." if n_dot else ","
        value, label, _ = proofs[decimal][0]
        how = (f"decimal {'point' if decimal == '.' else 'comma'}: {max(n_dot, n_comma):,} values prove it, "
               f"e.g. {value!r} in column {label!r}")
    elif ambiguous:
        value, label = ambiguous[0]
        raise DataContractError(f"{file}: column {label!r}: {value!r} may be a thousand or a decimal number, and no "
                                f"value tells which; {option}")
    else:
        decimal, how = ".", "whole numbers only" if any(len(s.dropna()) for s in columns.values()) else "no numbers"
    sep = "," if decimal == "." else "."
    seen = [t for t in thousands if t != decimal]
    return {"decimal": decimal, "thousands": sep if sep in seen else (" " if " " in seen else ""), "how": how}


def parse_numbers(s: pd.Series, style: dict) -> pd.Series:
    """Numbers of *s* in the file's *style* (see :func:`number_style`) as floats; a value that is no
    number in that style keeps its text, for cleaning to reject with the value it had."""
    if pd.api.types.is_numeric_dtype(s):
        return s
    text = s.astype("string").str.strip()
    decimal = style["decimal"]
    other = "," if decimal == "." else "."
    d, o = re.escape(decimal), re.escape(other)
    grouped = rf"^[+-]?[0-9]{{1,3}}(?:(?:{o}[0-9]{{3}})+|(?:[ \u00a0\u202f'][0-9]{{3}})+)(?:{d}[0-9]+)?$"
    plain = rf"^[+-]?(?:[0-9]+(?:{d}[0-9]*)?|{d}[0-9]+)$"
    ok_grouped = text.str.match(grouped).fillna(False).astype(bool)
    ok_plain = text.str.match(plain).fillna(False).astype(bool)
    no_sep = ~text.str.contains(r"[.,]", regex=True).fillna(False).astype(bool)
    cleaned = pd.Series(pd.NA, index=s.index, dtype="string")
    cleaned[ok_grouped] = text[ok_grouped].str.replace(rf"[{o} \u00a0\u202f']", "", regex=True)
    cleaned[ok_plain] = text[ok_plain]
    cleaned = cleaned.str.replace(decimal, ".", regex=False)
    cleaned[no_sep & ~ok_plain] = text[no_sep & ~ok_plain]  # 1e3, inf: as pandas reads them
    num = pd.to_numeric(cleaned, errors="coerce").astype("float64")
    bad = num.isna() & text.notna()
    if not bad.any():
        return num
    return num.astype(object).where(~bad, s.astype(object))


def _need(df: pd.DataFrame, path: Path, alternatives: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Map canonical names to the columns present (first alternative found)."""
    found = {}
    for name, options in alternatives.items():
        col = next((c for c in options if c in df.columns), None)
        if col is None:
            raise DataContractError(
                f"{path}: required column {options[0]!r} is absent (looked for {list(options)}); "
                f"columns are {list(df.columns)}"
            )
        found[name] = col
    return found


def read_online_retail(path: Path, *, decimal: str = "") -> dict[str, pd.DataFrame]:
    """Read a UCI Online Retail (or Online Retail II) export: csv, csv.gz, xlsx or parquet.

    Lines of invoices starting with ``C`` are cancellations: their orders get status
    ``cancelled`` and their quantities are made positive. Lines whose stock code is
    in :data:`NON_PRODUCT_CODES` keep ``product_id`` but are marked ``_non_product``.
    Numbers are read in the style the file proves (:func:`number_style`; *decimal* overrides it).

    Returns
    -------
    dict
        ``order_lines`` (invoice dates as text in ``_order_ts``) and ``_inputs`` (what was detected,
        one row).
    """
    path = Path(path)
    raw, detected = read_table_file(path)
    cols = _need(raw, path, {
        "invoice": ("InvoiceNo", "Invoice"),
        "stock": ("StockCode",),
        "description": ("Description",),
        "quantity": ("Quantity",),
        "ts": ("InvoiceDate",),
        "price": ("UnitPrice", "Price"),
        "customer": ("CustomerID", "Customer ID"),
        "country": ("Country",),
    })
    n = len(raw)
    line = np.arange(2, n + 2, dtype="int64") if detected["format"] != "parquet" else np.arange(1, n + 1, dtype="int64")
    style = number_style({cols["quantity"]: raw[cols["quantity"]], cols["price"]: raw[cols["price"]]},
                         file=str(path), hint=decimal)
    detected.update(decimal=style["decimal"], thousands=style["thousands"], numbers_how=style["how"])
    invoice = raw[cols["invoice"]].astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    cancelled = invoice.str.upper().str.startswith("C").fillna(False).astype(bool)
    qty = parse_numbers(raw[cols["quantity"]], style)
    qty_num = pd.to_numeric(qty, errors="coerce")
    qty = qty.where(~cancelled | qty_num.isna(), -qty_num)
    price = parse_numbers(raw[cols["price"]], style)
    customer = raw[cols["customer"]].astype("string").str.strip().str.replace(r"\.0$", "", regex=True)
    stock = raw[cols["stock"]].astype("string").str.strip().str.upper()
    lines = pd.DataFrame({
        "order_id": invoice,
        "line_no": invoice.groupby(invoice).cumcount().add(1).astype("int64"),
        "product_id": stock,
        "quantity": qty,
        "unit_price": price,
        "discount": 0.0,
        "_non_product": stock.isin(NON_PRODUCT_CODES).fillna(False).astype(bool),
        "_cancelled": cancelled,
        "_customer_id": customer,
        "_order_ts": raw[cols["ts"]],
        "_country": raw[cols["country"]],
        "_description": raw[cols["description"]],
        "_source_file": path.name,
        "_source_line": line,
    })
    if "_reject" in raw:
        lines["_reject"] = raw["_reject"]
    lines.attrs["source_columns"] = {"order_id": cols["invoice"], "product_id": cols["stock"],
                                     "quantity": cols["quantity"], "unit_price": cols["price"],
                                     "_order_ts": cols["ts"], "_customer_id": cols["customer"]}
    return {"order_lines": lines, "_inputs": pd.DataFrame([detected])}


def read_hillstrom(path: Path, *, decimal: str = "") -> dict[str, pd.DataFrame]:
    """Read the MineThatData e-mail experiment into customers, campaigns, assignments,
    orders (one per conversion) and events (one ``page_view`` per visit).

    The experiment's dates are not in the file: the campaign is placed at a nominal
    2008-03-03, outcomes within its two-week window.
    """
    path = Path(path)
    df, detected = read_table_file(path)
    _need(df, path, {c: (c,) for c in ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel",
                                         "segment", "visit", "conversion", "spend"]})
    reject = df["_reject"] if "_reject" in df else pd.Series(pd.NA, index=df.index, dtype="string")
    ok = reject.isna().to_numpy()  # repeated headers, a cut last line: rejected customers, no outcomes
    style = number_style({c: df[c] for c in ("history", "spend")}, file=str(path), hint=decimal)
    detected.update(decimal=style["decimal"], thousands=style["thousands"], numbers_how=style["how"])
    spend = parse_numbers(df["spend"], style)
    n = len(df)
    line = np.arange(2, n + 2, dtype="int64")
    cid = pd.Series([f"H{i:05d}" for i in range(1, n + 1)])
    src = {"_source_file": path.name, "_source_line": line}
    arm = df["segment"].map({"Mens E-Mail": "mens", "Womens E-Mail": "womens", "No E-Mail": "control"})
    if (arm.isna() & ok).any():
        i = int(np.flatnonzero(arm.isna() & ok)[0])
        raise DataContractError(f"{path}: column 'segment' row {i + 2}: {df['segment'].iloc[i]!r} is not one of "
                                "['Mens E-Mail', 'Womens E-Mail', 'No E-Mail']")
    start = "2008-03-03T00:00:00Z"
    customers = pd.DataFrame({
        "customer_id": cid,
        "region": df["zip_code"],
        "acquisition_channel": df["channel"],
        "consent_marketing": "true",
        "attr_recency_months": df["recency"],
        "attr_history": df["history"],
        "attr_mens": df["mens"],
        "attr_womens": df["womens"],
        "attr_newbie": df["newbie"],
        "attr_zip_code": df["zip_code"],
        "attr_channel": df["channel"],
        **src,
    })
    assignments_reject = None
    if not ok.all():
        customers["_reject"] = reject
        assignments_reject = reject
    campaigns = pd.DataFrame({
        "campaign_id": ["hillstrom_2008"], "name": ["MineThatData e-mail test (Mens / Womens / No e-mail)"],
        "channel": ["email"], "start_ts": [start], "end_ts": ["2008-03-17T00:00:00Z"], "offer": ["e-mail"],
        "target_segment": ["customers who purchased within the last twelve months"],
        "_source_file": [path.name], "_source_line": [1],
    })
    assignments = pd.DataFrame({
        "campaign_id": "hillstrom_2008", "customer_id": cid,
        "group": np.where(arm == "control", "control", "treatment"), "variant": arm, "sent_ts": start, **src,
    })
    if assignments_reject is not None:
        assignments["_reject"] = assignments_reject
    conv = (pd.to_numeric(df["conversion"], errors="coerce") > 0) & ok
    orders = pd.DataFrame({
        "order_id": "HO" + cid.str[1:], "customer_id": cid, "order_ts": "2008-03-10T00:00:00Z",
        "channel": "web", "status": "completed", "order_total": spend, **src,
    })[conv.to_numpy()]
    visit = (pd.to_numeric(df["visit"], errors="coerce") > 0) & ok
    events = pd.DataFrame({
        "event_id": "HE" + cid.str[1:], "ts": "2008-03-05T00:00:00Z", "customer_id": cid,
        "session_id": "HS" + cid.str[1:], "channel": "web", "event_type": "page_view", **src,
    })[visit.to_numpy()]
    return {"customers": customers, "campaigns": campaigns, "campaign_assignments": assignments,
            "orders": orders.reset_index(drop=True), "events": events.reset_index(drop=True),
            "_inputs": pd.DataFrame([detected])}


def read_diginetica(path: Path) -> dict[str, pd.DataFrame]:
    """Read the DIGINETICA (CIKM Cup 2016) item-view log (``session_id;user_id;item_id;timeframe;eventdate``,
    ``;``-separated: the delimiter is detected as for any file) into canonical ``events``.

    One ``product_view`` event per line: ``ts`` is ``eventdate`` plus ``timeframe`` milliseconds, as ISO 8601
    text (``2016-05-09T00:08:46.309Z``; a line whose date or offset is no date stays as it was, for cleaning to
    reject); ``session_id`` as given; ``customer_id`` from ``user_id`` (``NA`` for most sessions: anonymous
    visitors); ``anonymous_id`` ``"s<session_id>"`` (the log has no device id, so a session is its own device);
    ``product_id`` from ``item_id``; ``channel`` web; ``event_id`` the line number (1-based, zero-padded so that
    text order is line order).

    Views only: conversion, the funnel, cart abandonment and site search need other event types; sessions,
    session length and duration, product views, transitions, paths and next items work.

    Returns
    -------
    dict
        ``events`` and ``_inputs`` (what was detected, one row).

    Raises
    ------
    DataContractError
        A column of the layout is absent.
    """
    path = Path(path)
    raw, detected = read_table_file(path)
    _need(raw, path, {c: (c,) for c in ("session_id", "user_id", "item_id", "timeframe", "eventdate")})
    detected.update(decimal="", thousands="", numbers_how="whole numbers only (milliseconds, ids)")
    text = raw["eventdate"].astype("string").str.strip()
    date = pd.to_datetime(text, format="%Y-%m-%d", utc=True, errors="coerce")
    offset = pd.to_numeric(raw["timeframe"].astype("string").str.strip(), errors="coerce")
    ts = date + pd.to_timedelta(offset, unit="ms")
    iso = ts.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    session = raw["session_id"].astype("string").str.strip()
    user = raw["user_id"].astype("string").str.strip()
    n = len(raw)
    width = max(7, len(str(n)))
    events = pd.DataFrame({
        "event_id": [f"{i:0{width}d}" for i in range(1, n + 1)],
        # a line without a date or offset keeps what it had (a blank date stays blank), for cleaning to reject
        "ts": iso.where(ts.notna(), (text + " + " + raw["timeframe"].astype("string").fillna("") + " ms").mask(
            text.isna() | (text == ""))),
        "customer_id": user.mask(user.isin(["NA", ""])),
        "anonymous_id": ("s" + session).mask(session.isna() | (session == "")),
        "session_id": session,
        "channel": "web",
        "event_type": "product_view",
        "product_id": raw["item_id"].astype("string").str.strip(),
        "_source_file": path.name,
        "_source_line": np.arange(2, n + 2, dtype="int64"),
    })
    if "_reject" in raw:
        events["_reject"] = raw["_reject"]
    events.attrs["source_columns"] = {"session_id": "session_id", "customer_id": "user_id",
                                      "product_id": "item_id", "ts": "eventdate + timeframe"}
    return {"events": events, "_inputs": pd.DataFrame([detected])}


#: canonical ``sessions`` column -> column of the UCI Online Shoppers file (the notebook maps back to these
#: labels; :func:`read_online_shoppers` documents what each means)
ONLINE_SHOPPERS_COLUMNS = {
    "administrative_pages": "Administrative",
    "administrative_seconds": "Administrative_Duration",
    "informational_pages": "Informational",
    "informational_seconds": "Informational_Duration",
    "product_pages": "ProductRelated",
    "product_seconds": "ProductRelated_Duration",
    "bounce_rate": "BounceRates",
    "exit_rate": "ExitRates",
    "page_value": "PageValues",
    "special_day": "SpecialDay",
    "month": "Month",
    "operating_system": "OperatingSystems",
    "browser": "Browser",
    "region": "Region",
    "traffic_type": "TrafficType",
    "visitor_type": "VisitorType",
    "weekend": "Weekend",
    "purchased": "Revenue",
}


def read_online_shoppers(path: Path, *, decimal: str = "") -> dict[str, pd.DataFrame]:
    """Read the UCI Online Shoppers Purchasing Intention file (Sakar et al. 2019; one row per session of one
    year of a shop's Google Analytics) into the canonical ``sessions`` table.

    Columns, canonical name <- the file's column (:data:`ONLINE_SHOPPERS_COLUMNS`; the table's
    ``attrs["source_columns"]`` holds the same mapping):

    ==========================  =========================  =========================================
    session_id                  (none)                     ``OS00001``… in file order
    administrative_pages        Administrative             pages about the account visited
    administrative_seconds      Administrative_Duration    seconds spent on them
    informational_pages         Informational              pages about the site, shipping, contact
    informational_seconds       Informational_Duration     seconds spent on them
    product_pages               ProductRelated             product pages visited
    product_seconds             ProductRelated_Duration    seconds spent on them
    bounce_rate                 BounceRates                mean bounce rate of the pages visited
    exit_rate                   ExitRates                  mean exit rate of the pages visited
    page_value                  PageValues                 mean page value (Google Analytics)
    special_day                 SpecialDay                 closeness to a gift day (0–1)
    month                       Month                      month of the visit (``Feb``…, ``June``; no year)
    operating_system            OperatingSystems           code (no labels published)
    browser                     Browser                    code
    region                      Region                     code
    traffic_type                TrafficType                code of the traffic source
    visitor_type                VisitorType                ``Returning_Visitor``, ``New_Visitor``, ``Other``
    weekend                     Weekend                    ``TRUE`` / ``FALSE``
    purchased                   Revenue                    ``TRUE`` / ``FALSE``: the session bought
    ==========================  =========================  =========================================

    The file has no timestamps, channels, devices or customer ids: ``start_ts``, ``channel``, ``device`` and
    ``customer_id`` are left empty. Numbers are read in the style the file proves (:func:`number_style`;
    *decimal* overrides it).

    Returns
    -------
    dict
        ``sessions`` and ``_inputs`` (what was detected, one row).

    Raises
    ------
    DataContractError
        A column of the layout is absent.
    """
    path = Path(path)
    raw, detected = read_table_file(path)
    cols = _need(raw, path, {canon: (src,) for canon, src in ONLINE_SHOPPERS_COLUMNS.items()})
    numeric = [c for c in cols if c.endswith(("_pages", "_seconds", "_rate", "_value")) or c == "special_day"]
    style = number_style({cols[c]: raw[cols[c]] for c in numeric}, file=str(path), hint=decimal)
    detected.update(decimal=style["decimal"], thousands=style["thousands"], numbers_how=style["how"])
    n = len(raw)
    width = max(5, len(str(n)))
    sessions = pd.DataFrame({"session_id": [f"OS{i:0{width}d}" for i in range(1, n + 1)]})
    for canon, src in cols.items():
        sessions[canon] = parse_numbers(raw[src], style) if canon in numeric else raw[src]
    sessions["_source_file"] = path.name
    sessions["_source_line"] = np.arange(2, n + 2, dtype="int64")
    if "_reject" in raw:
        sessions["_reject"] = raw["_reject"]
    sessions.attrs["source_columns"] = dict(cols)
    return {"sessions": sessions, "_inputs": pd.DataFrame([detected])}

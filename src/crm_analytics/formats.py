"""Readers of third-party export formats into raw canonical tables.

``read_online_retail``  UCI Online Retail / Online Retail II (one row per invoice line)
``read_hillstrom``      MineThatData e-mail experiment (one row per customer)

Each returns ``{table: DataFrame}`` with canonical column names, text timestamps as found
and ``_source_file`` / ``_source_line`` on every row; parsing and validation happen in
:mod:`crm_analytics.cleaning`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, SourceError

__all__ = ["read_online_retail", "read_hillstrom", "NON_PRODUCT_CODES", "read_table_file"]

#: Online Retail stock codes that are fees, adjustments or samples, not products.
NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "MANUAL", "BANK CHARGES", "D", "S", "AMAZONFEE", "CRUK", "B", "C2", "PADS", "ADJUST",
     "ADJUST2", "TEST001", "TEST002", "GIFT"}
)

_ENCODINGS = ("utf-8-sig", "cp1254", "latin-1")


def read_table_file(path: Path, *, dtype=str) -> tuple[pd.DataFrame, dict]:
    """Read a csv (any of utf-8, utf-8 with BOM, Windows-1254/ISO-8859-9; ``,`` ``;`` or tab),
    csv.gz or xlsx export as text columns; return the frame and what was detected.

    Raises
    ------
    SourceError
        Missing, empty or undecodable file.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file does not exist; check the path in params")
    if path.stat().st_size == 0:
        raise SourceError(f"{path}: file is empty; export it again")
    if path.suffix.lower() in (".xlsx", ".xls"):
        return pd.read_excel(path, dtype=dtype), {"format": "excel"}
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path), {"format": "parquet"}
    last_error: Exception | None = None
    for enc in _ENCODINGS:
        try:
            df = pd.read_csv(path, dtype=dtype, sep=None, engine="python", encoding=enc, keep_default_na=False,
                             na_values=[""]) if path.stat().st_size < 5_000_000 else \
                pd.read_csv(path, dtype=dtype, encoding=enc, keep_default_na=False, na_values=[""])
            return df, {"format": "csv", "encoding": enc}
        except UnicodeDecodeError as exc:
            last_error = exc
        except (pd.errors.ParserError, EOFError, OSError) as exc:
            raise SourceError(f"{path}: cannot be read as a table ({exc}); is the file truncated?") from None
    raise SourceError(f"{path}: cannot be decoded as {list(_ENCODINGS)} ({last_error}); "
                      "save it as UTF-8") from None


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


def read_online_retail(path: Path) -> dict[str, pd.DataFrame]:
    """Read a UCI Online Retail (or Online Retail II) export.

    Lines of invoices starting with ``C`` are cancellations: their orders get status
    ``cancelled`` and their quantities are made positive. Lines whose stock code is
    in :data:`NON_PRODUCT_CODES` keep ``product_id`` but are marked ``_non_product``.
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
    line = np.arange(2, n + 2, dtype="int64")
    invoice = raw[cols["invoice"]].astype("str").str.strip()
    cancelled = invoice.str.upper().str.startswith("C")
    qty = pd.to_numeric(raw[cols["quantity"]], errors="coerce")
    price = pd.to_numeric(raw[cols["price"]].str.replace(",", ".", regex=False), errors="coerce")
    customer = raw[cols["customer"]].str.strip().str.replace(r"\.0$", "", regex=True)
    stock = raw[cols["stock"]].str.strip().str.upper()
    lines = pd.DataFrame({
        "order_id": invoice,
        "line_no": invoice.groupby(invoice).cumcount().add(1).astype("int64"),
        "product_id": stock,
        "quantity": qty.where(~cancelled, -qty),
        "unit_price": price,
        "discount": 0.0,
        "_non_product": stock.isin(NON_PRODUCT_CODES),
        "_cancelled": cancelled,
        "_customer_id": customer,
        "_order_ts": raw[cols["ts"]],
        "_country": raw[cols["country"]],
        "_description": raw[cols["description"]],
        "_source_file": path.name,
        "_source_line": line,
    })
    return {"order_lines": lines, "_detected": pd.DataFrame([detected])}


def read_hillstrom(path: Path) -> dict[str, pd.DataFrame]:
    """Read the MineThatData e-mail experiment into customers, campaigns, assignments,
    orders (one per conversion) and events (one ``page_view`` per visit).

    The experiment's dates are not in the file: the campaign is placed at a nominal
    2008-03-03, outcomes within its two-week window.
    """
    path = Path(path)
    df, _ = read_table_file(path)
    _need(df, path, {c: (c,) for c in ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel",
                                         "segment", "visit", "conversion", "spend"]})
    n = len(df)
    line = np.arange(2, n + 2, dtype="int64")
    cid = pd.Series([f"H{i:05d}" for i in range(1, n + 1)])
    src = {"_source_file": path.name, "_source_line": line}
    arm = df["segment"].map({"Mens E-Mail": "mens", "Womens E-Mail": "womens", "No E-Mail": "control"})
    if arm.isna().any():
        i = int(np.flatnonzero(arm.isna())[0])
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
    conv = pd.to_numeric(df["conversion"]) > 0
    orders = pd.DataFrame({
        "order_id": "HO" + cid.str[1:], "customer_id": cid, "order_ts": "2008-03-10T00:00:00Z",
        "channel": "web", "status": "completed", "order_total": df["spend"], **src,
    })[conv.to_numpy()]
    visit = pd.to_numeric(df["visit"]) > 0
    events = pd.DataFrame({
        "event_id": "HE" + cid.str[1:], "ts": "2008-03-05T00:00:00Z", "customer_id": cid,
        "session_id": "HS" + cid.str[1:], "channel": "web", "event_type": "page_view", **src,
    })[visit.to_numpy()]
    return {"customers": customers, "campaigns": campaigns, "campaign_assignments": assignments,
            "orders": orders.reset_index(drop=True), "events": events.reset_index(drop=True)}

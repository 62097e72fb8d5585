"""Data quality: completeness, duplicates, outliers, freshness, referential integrity,
and — on the demo world — dirt found versus dirt planted."""

from __future__ import annotations


import numpy as np
import pandas as pd

from crm_analytics.ingest.contracts import TABLES
from crm_analytics.ingest.tables import ParquetTable, isin, sql_name

__all__ = ["cleaning_metrics", "completeness", "outliers", "freshness", "referential_integrity",
           "dirt_found_vs_planted", "quality_summary", "newest_record"]

_TS_COLUMN = {"orders": "order_ts", "events": "ts", "sessions": "start_ts", "reviews": "ts", "tickets": "opened_ts",
              "customers": "signup_ts", "campaign_assignments": "sent_ts", "campaigns": "start_ts"}


def _newest(t, col: str):
    """The newest value of timestamp column *col* of table *t* (NaT when none)."""
    if isinstance(t, ParquetTable):
        return t.query(f"SELECT max({sql_name(col)}) AS newest FROM t")["newest"].iloc[0] if len(t) else pd.NaT
    return t[col].max() if t is not None and len(t) and col in t else pd.NaT


def newest_record(tables: dict[str, pd.DataFrame]) -> pd.Timestamp | None:
    """The newest timestamp of any table (orders, events, sessions, reviews…), or ``None`` when no table has one:
    what freshness is measured against in a dataset without orders."""
    found = [_newest(tables.get(name), col) for name, col in _TS_COLUMN.items() if name in tables]
    found = [pd.Timestamp(t) for t in found if pd.notna(t)]
    return max(found) if found else None


def completeness(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Share of non-null values per table and contract column (personal columns included: hashes).

    A table may be a :class:`crm_analytics.ingest.tables.ParquetTable` (counted in DuckDB), here and in
    :func:`freshness` and :func:`referential_integrity`.
    """
    rows = []
    for name, t in tables.items():
        cols = TABLES[name].column_names
        if isinstance(t, ParquetTable) and len(t):
            filled = t.query("SELECT " + ", ".join(f"count({sql_name(c)}) AS {sql_name(c)}" for c in cols) + " FROM t")
            shares = {c: int(filled[c].iloc[0]) / len(t) for c in cols}
        else:
            shares = {c: float(t[c].notna().mean()) if len(t) else float("nan") for c in cols}
        rows += [{"table": name, "column": col, "non_null_share": shares[col]} for col in cols]
    return pd.DataFrame(rows)


def outliers(tables: dict[str, pd.DataFrame], *, iqr_factor: float = 3.0) -> pd.DataFrame:
    """Values beyond ``Q3 + iqr_factor·IQR`` of log-values (quantities, prices, order totals)."""
    checks = [("orders", "order_total"), ("order_lines", "quantity"), ("order_lines", "unit_price"),
              ("products", "price")]
    rows = []
    for name, col in checks:
        if name not in tables or not len(tables[name]):
            continue
        v = pd.to_numeric(tables[name][col], errors="coerce").dropna()
        v = v[v > 0]
        if v.empty:
            continue
        lv = np.log(v)
        q1, q3 = np.percentile(lv, [25, 75])
        upper = q3 + iqr_factor * (q3 - q1)
        n = int((lv > upper).sum())
        rows.append({"table": name, "column": col, "rows": len(v), "outliers": n,
                     "threshold": float(np.exp(upper)), "max": float(v.max())})
    return pd.DataFrame(rows, columns=["table", "column", "rows", "outliers", "threshold", "max"])


def freshness(tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp, stale_after_days: int) -> pd.DataFrame:
    """Days from each table's newest record to *as_of*; ``stale`` when more than *stale_after_days*."""
    rows = []
    for name, col in _TS_COLUMN.items():
        newest = _newest(tables.get(name), col)
        if pd.notna(newest):
            days = (as_of - newest).total_seconds() / 86400
            rows.append({"table": name, "newest": newest, "days_old": round(days, 1), "stale": days > stale_after_days})
    return pd.DataFrame(rows, columns=["table", "newest", "days_old", "stale"])


def referential_integrity(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Counts of rows pointing at keys that do not exist in the referenced table."""
    checks = [
        ("orders", "customer_id", "customers", "customer_id", "orders without a known customer"),
        ("order_lines", "order_id", "orders", "order_id", "lines without an order"),
        ("order_lines", "product_id", "products", "product_id", "lines without a known product"),
        ("events", "order_id", "orders", "order_id", "events pointing at unknown orders"),
        ("events", "customer_id", "customers", "customer_id", "events of unknown customers"),
        ("campaign_assignments", "customer_id", "customers", "customer_id", "assignments of unknown customers"),
        ("reviews", "product_id", "products", "product_id", "reviews of unknown products"),
        ("tickets", "customer_id", "customers", "customer_id", "tickets of unknown customers"),
    ]
    checks = [c for c in checks if c[0] in tables and c[2] in tables]
    lazy = {}  # the checks of a table on disk: one DuckDB scan for all of them
    for child in {c[0] for c in checks if isinstance(tables[c[0]], ParquetTable)}:
        mine = [c for c in checks if c[0] == child]
        parts = []
        for i, (_, ccol, _, _, _) in enumerate(mine):
            c = sql_name(ccol)
            parts += [f"count({c}) AS checked_{i}", f"count({c}) FILTER (WHERE {c} NOT IN (SELECT v FROM known_{i})) AS broken_{i}"]
        known = {f"known_{i}": tables[parent][pcol].dropna().to_frame("v") for i, (_, _, parent, pcol, _) in enumerate(mine)}
        counts = tables[child].query(f"SELECT {', '.join(parts)} FROM t", **known).iloc[0]
        lazy.update({check: (int(counts[f"checked_{i}"]), int(counts[f"broken_{i}"])) for i, check in enumerate(mine)})
    rows = []
    for check in checks:
        child, ccol, parent, pcol, label = check
        if check in lazy:
            n_checked, n_bad = lazy[check]
        else:
            vals = tables[child][ccol].dropna()
            n_checked, n_bad = len(vals), int((~isin(vals, tables[parent][pcol].dropna())).sum())
        rows.append({"check": label, "table": child, "column": ccol, "rows_checked": n_checked, "rows_broken": n_bad})
    return pd.DataFrame(rows, columns=["check", "table", "column", "rows_checked", "rows_broken"])


def dirt_found_vs_planted(truth: dict, counts: dict, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Compare what cleaning found with the dirt the demo generator planted (``truth["dirt"]``)."""
    rows = []
    for kind, info in (truth.get("dirt") or {}).items():
        table = info.get("table")
        planted = info.get("rows", info.get("count"))
        found = None
        if table in counts:
            k = kind.lower()
            c = counts[table]
            if "dup" in k:
                found = c["rows_duplicate"]
            elif "timestamp" in k or "unparse" in k:
                found = sum(v for r, v in c["rejects_by_reason"].items() if r.startswith("unparseable"))
            elif "negative" in k or "quantit" in k:
                found = c["rejects_by_reason"].get("non_positive_quantity", 0)
            elif "test" in k:
                found = c["rejects_by_reason"].get("test_order", 0)
            elif "missing_customer" in k or "guest" in k:
                found = int(tables[table]["customer_id"].isna().sum()) if table in tables else None
            elif "categor" in k:
                found = c.get("labels_canonicalised", {}).get("category")
        rows.append({"dirt": kind, "table": table, "planted": planted, "found": found})
    return pd.DataFrame(rows)


def quality_summary(counts: dict, tables: dict[str, pd.DataFrame], *, as_of: pd.Timestamp,
                    stale_after_days: int) -> dict:
    """The machine-readable ``quality.json``."""
    fresh = freshness(tables, as_of=as_of, stale_after_days=stale_after_days)
    return {
        "counts": counts,
        "completeness": completeness(tables).to_dict(orient="records"),
        "outliers": outliers(tables).to_dict(orient="records"),
        "freshness": fresh.assign(newest=fresh["newest"].astype(str)).to_dict(orient="records") if len(fresh) else [],
        "referential_integrity": referential_integrity(tables).to_dict(orient="records"),
    }


def cleaning_metrics(result) -> dict:
    """Headline numbers of notebook 01 (keys are a contract: see the cleaning issue)."""
    tables = {name: {k: c[k] for k in ("rows_in", "rows_kept", "rows_rejected", "rows_duplicate", "rejects_by_reason")}
              for name, c in result.counts.items()}
    orders = result.tables.get("orders")
    customers = result.tables.get("customers")
    if orders is not None:
        customers_identified, identified_in = int(orders["customer_id"].dropna().nunique()), "orders"
    elif customers is not None and len(customers):  # no orders: the customers the events carry
        customers_identified = int(customers["customer_id"].dropna().nunique())
        identified_in = result.counts.get("customers", {}).get("derived_from") or "customers"
    else:
        customers_identified, identified_in = 0, None
    guest = result.notes.get("guest_lines")
    if guest is None and orders is not None:
        guest = int(orders["customer_id"].isna().sum())
    cancelled = result.notes.get("cancelled_lines")
    if cancelled is None and orders is not None:
        cancelled = int((orders["status"] == "cancelled").sum())
    total_in = sum(c["rows_in"] for c in result.counts.values() if not c.get("derived_from"))
    total_kept = sum(c["rows_kept"] for c in result.counts.values() if not c.get("derived_from"))
    return {
        "tables": tables,
        "customers_identified": customers_identified,
        "customers_identified_in": identified_in,
        "guest_lines": guest,
        "cancelled_lines": cancelled,
        "cancelled_lines_matched": result.notes.get("cancelled_lines_matched"),
        "events_stitched_share": result.notes.get("events_stitched_share"),
        "stitching": {k: v for k, v in (result.notes.get("stitching") or {}).items() if k != "rule"} or None,
        "erasure": result.notes.get("erasure"),
        "headline": {
            "input rows": total_in,
            "rows kept": total_kept,
            "share kept": total_kept / total_in if total_in else None,
            "customers identified": customers_identified,
        },
    }

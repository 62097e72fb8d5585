"""Data quality: completeness, duplicates, outliers, freshness, referential integrity,
and — on the demo world — dirt found versus dirt planted."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from crm_analytics import i18n
from crm_analytics.contracts import TABLES
from crm_analytics.report import md
from crm_analytics.tables import ParquetTable, isin, sql_name

__all__ = ["input_formats_table", "accounting_table", "rejects_table", "plot_rejects", "reason_words", "cleaning_metrics",
           "cleaning_summary", "erasure_summary", "completeness", "outliers", "freshness", "referential_integrity",
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

    A table may be a :class:`crm_analytics.tables.ParquetTable` (counted in DuckDB), here and in
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


_DELIMITER_WORDS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "whitespace": "spaces"}
_FORMAT_WORDS = {"csv": "CSV", "csv.gz": "CSV (gzip)", "xlsx": "Excel (xlsx)", "parquet": "Parquet", "text": "text",
                 "csv in zip": "CSV (zip)", "csv.gz in zip": "CSV (gzip, in zip)", "parquet in zip": "Parquet (zip)"}
_ENCODING_WORDS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp1254": "Windows Turkish (cp1254)",
                   "latin-1": "Latin-1", "ascii": "ASCII"}


def _words(text: str) -> str:
    """A phrase made in code (``comma``, ``day first: 3 values have …``) in the report language: an exact
    catalogue entry or a template with fields; a phrase without a translation stays English and is
    recorded as untranslated."""
    if not text or i18n.language() == "en":
        return text
    out = i18n.value(text)
    if out == text and re.search(r"[A-Za-z]{3,}", text):
        i18n.t(text)  # records it as untranslated
    return out


def _how_words(how: str) -> str:
    """How a file's numbers or dates were decided (``order_ts: day first: 3 values …; ts: ISO 8601``), each
    part in the report language (a column name too, when the catalogue knows it)."""
    parts = []
    for part in how.split("; "):
        column, sep, rest = part.partition(": ")
        if sep and i18n.value(part) == part and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
            parts.append(f"{i18n.value(column)}: {_words(rest)}")
        else:
            parts.append(_words(part))
    return "; ".join(parts)


def input_formats_table(notes: dict) -> pd.DataFrame:
    """What was detected in each input file, and how: a report table from ``result.notes["inputs"]``
    (the words in the report language).

    Examples
    --------
    >>> t = input_formats_table({"inputs": [{"file": "orders.csv", "format": "csv", "encoding": "cp1254",
    ...     "delimiter": ";", "decimal": ",", "thousands": ".", "date_order": "day first",
    ...     "date_how": "order_ts: day first: 3 values have a day above 12 in the first field, e.g. '13.01.2024'",
    ...     "numbers_how": "decimal comma: 5 values prove it, e.g. '12,50' in column 'Tutar'"}]})
    >>> t.loc[0, "delimiter"], t.loc[0, "decimal"], t.loc[0, "thousands separator"]
    ('semicolon', 'comma', 'point')
    """
    columns = ["file", "format", "encoding", "delimiter", "decimal", "thousands separator", "date order",
               "how it was decided"]
    rows = []
    mark = {",": "comma", ".": "point", " ": "space", "": "none"}
    for rec in notes.get("inputs") or []:
        how = "; ".join(_how_words(h) for h in (rec.get("numbers_how"), rec.get("date_how")) if h)
        delimiter = rec.get("delimiter") or ""
        rows.append({
            "file": rec.get("file", ""),
            "format": _words(_FORMAT_WORDS.get(rec.get("format", ""), rec.get("format", ""))),
            "encoding": _words(_ENCODING_WORDS.get(rec.get("encoding") or "", rec.get("encoding") or "—")),
            "delimiter": _words(_DELIMITER_WORDS[delimiter]) if delimiter in _DELIMITER_WORDS else delimiter or "—",
            "decimal": _words(mark.get(rec.get("decimal") or "", "—")) if rec.get("decimal") else "—",
            "thousands separator": _words(mark.get(rec.get("thousands") or "", rec.get("thousands") or "")),
            "date order": ", ".join(_words(o) for o in (rec.get("date_order") or "—").split(", ")),
            "how it was decided": how,
        })
    return pd.DataFrame(rows, columns=columns)


def accounting_table(counts: dict) -> pd.DataFrame:
    """Rows in, kept, rejected and duplicates per table (a report table)."""
    rows = [{"table": name, "rows in": c["rows_in"], "kept": c["rows_kept"], "rejected": c["rows_rejected"],
             "duplicates": c["rows_duplicate"],
             "note": i18n.t("derived from {table}", table=c["derived_from"]) if c.get("derived_from") else ""}
            for name, c in counts.items()]
    return pd.DataFrame(rows).set_index("table")


def rejects_table(counts: dict) -> pd.DataFrame:
    """Rejected rows by table and reason, largest first."""
    rows = [{"table": t, "reason": r, "rows": n} for t, c in counts.items() for r, n in c["rejects_by_reason"].items()]
    if not rows:
        return pd.DataFrame(columns=["table", "reason", "rows"])
    return pd.DataFrame(rows).sort_values(["rows", "table", "reason"], ascending=[False, True, True]).reset_index(drop=True)


def plot_rejects(reasons: pd.DataFrame, *, ax=None, **kwargs):
    """Horizontal bars of rejected rows by ``table: reason``; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(reasons) + 1.2))
    labels = [f"{i18n.value(t)}: {reason_words(r)}" for t, r in zip(reasons["table"], reasons["reason"])]
    ax.barh(labels[::-1], reasons["rows"][::-1], color=kwargs.pop("color", "#0072B2"), **kwargs)
    ax.set_xlabel("rejected rows (count)")  # English: the notebook kernel translates every chart's text
    ax.set_title("Rejected rows by table and reason")
    return ax


def reason_words(reason: str) -> str:
    """A reject reason (``non_positive_quantity``, ``unparseable_order_ts``) as the reader says it, in the
    report language (a reason without a translation is shown with spaces for underscores)."""
    if i18n.language() == "en":
        return reason.replace("_", " ")
    out = i18n.value(reason)
    if out == reason:
        i18n.t(reason)  # records it as untranslated
        return reason.replace("_", " ")
    return out


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


def cleaning_summary(metrics: dict, *, source_kind: str):
    """Plain-language summary of the cleaning, for the top of the report (report prose, :func:`report.md`;
    each sentence is its own catalogue entry)."""
    from IPython.display import Markdown

    h = metrics["headline"]
    sentences = ["**{rows_in:,} input rows** from the {kind} source: **{kept:,} kept** ({share:.1%}), {rejected:,} "
                 "rejected with a reason and {dup:,} exact duplicates merged."]
    where = metrics.get("customers_identified_in", "orders")
    if where == "orders":
        sentences.append("**{customers:,} customers** are identified in the orders.")
    elif where == "events":
        sentences.append("This dataset has no orders: **{customers:,} customers** are identified in the web or app "
                         "events (visitors who logged in); the other visitors are anonymous.")
    elif where == "customers":
        sentences.append("This dataset has no orders: **{customers:,} customers** are in its customers table.")
    elif "reviews" in metrics.get("tables", {}) and "events" not in metrics.get("tables", {}) \
            and "sessions" not in metrics.get("tables", {}):
        sentences.append("This dataset has no orders and no customer ids: it holds product reviews, not customers, "
                         "so there is no customer to identify.")
    else:
        sentences.append("This dataset has no orders and no customer ids: it describes visits, not customers, so "
                         "there is no customer to identify.")
    if metrics.get("guest_lines"):
        sentences.append("{guests:,} order rows have no customer (guest purchases): kept for product analyses, left "
                         "out of customer analyses.")
    if metrics.get("cancelled_lines"):
        if metrics.get("cancelled_lines_matched") is not None:
            sentences.append("{cancelled:,} order rows are cancellations, {matched:,} of them matched to the earlier "
                             "purchase line they cancel (same customer and product, enough quantity).")
        else:
            sentences.append("{cancelled:,} order rows are cancellations.")
    values = dict(rows_in=h["input rows"], kind=source_kind, kept=h["rows kept"], share=h["share kept"],
                  rejected=sum(t["rows_rejected"] for t in metrics["tables"].values()),
                  dup=sum(t["rows_duplicate"] for t in metrics["tables"].values()), customers=h["customers identified"],
                  guests=metrics.get("guest_lines"), cancelled=metrics.get("cancelled_lines"),
                  matched=metrics.get("cancelled_lines_matched"))
    return Markdown(" ".join(md(sentence, **values).data for sentence in sentences))


def stitching_table(stats: dict, truth: dict | None = None) -> pd.DataFrame:
    """The stitching counts, with the generated world's truth beside them when there is one."""
    known = (truth or {}).get("stitching", {})
    rows = [
        ("events", stats["events"], None),
        ("anonymous events before stitching", stats["anonymous_events_before"], None),
        ("events stitched to a customer", stats["events_stitched"], known.get("anonymous_events_of_customers_stitchable")),
        ("devices stitched", stats["devices_stitched"], None),
        ("devices seen with several customers (left anonymous)", stats["devices_ambiguous"], None),
        ("share of anonymous events stitched", round(stats["events_stitched_share"] or 0, 4), None),
        ("share of events with a customer after stitching", round(stats["events_attributed_share"] or 0, 4), None),
    ]
    df = pd.DataFrame(rows, columns=["measure", "value", "truth (generated world)"]).astype(object)
    df["value"] = [i18n.percent(v, 1) if m.startswith("share of") else i18n.decimal(v, 0)
                   for m, v in zip(df["measure"], df["value"])]
    df["truth (generated world)"] = [i18n.decimal(v, 0) if v is not None and pd.notna(v) else ""
                                     for v in df["truth (generated world)"]]
    if truth is None:
        return df.drop(columns="truth (generated world)")
    t = known.get("anonymous_events_of_customers_stitchable")
    df["note"] = ""
    if t:
        df.loc[2, "note"] = i18n.t("{difference:+.2%} against the truth (the truth counts events before duplicates "
                                   "and unparseable times were removed)", difference=(stats["events_stitched"] - t) / t)
    return df


def customer_view_summary(view: pd.DataFrame | None) -> pd.DataFrame:
    """Aggregate figures of the customer 360 table (no row-level data)."""
    if view is None or not len(view):
        return pd.DataFrame({"measure": ["customers"], "value": [0]})
    rows = [("customers", len(view))]
    if "orders" in view:  # a dataset without orders says nothing about who bought
        rows.append(("customers who bought", int(view["buyer"].sum())))
    for col, label in (("orders", "median orders of buyers"), ("revenue", "median revenue of buyers")):
        if col in view:
            median = float(view.loc[view["buyer"], col].median()) if view["buyer"].any() else 0.0
            rows.append((label, i18n.money(median) if col == "revenue" else median))
    for col, label in (("events", "customers with web/app events"),
                       ("campaigns_received", "customers reached by a campaign"),
                       ("reviews", "customers who wrote a review"), ("tickets", "customers who opened a ticket")):
        if col in view:
            rows.append((label, int((view[col] > 0).sum())))
    if "consent_marketing" in view and view["consent_marketing"].notna().any():  # no consents in the data: no row
        rows.append(("customers who consented to marketing", int(view["consent_marketing"].fillna(False).sum())))
    return pd.DataFrame([(m, v if isinstance(v, str) else i18n.decimal(v, 0) if float(v).is_integer()
                          else i18n.decimal(v, 1)) for m, v in rows], columns=["measure", "value"])


def erasure_summary(info: dict):
    """One sentence on the erasure requests applied (counts only, never ids), as report prose."""
    if not info or not info.get("requests"):
        return md("No erasure request is recorded for this dataset.")
    removed = "; ".join(f"{i18n.value(t)}: {i18n.decimal(n, 0)}" for t, n in sorted(info["rows_removed"].items()))
    return md("**{requests:,} erasure request(s)** applied ({found:,} of these customers were in the data). Rows "
              "removed per table: {removed}.", requests=info["requests"], found=info["customers_found"],
              removed=removed or "0")

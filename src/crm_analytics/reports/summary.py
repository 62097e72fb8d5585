"""The executive summary's numbers: the dozen figures that run a shop, and the alerts.

:func:`shop_numbers` computes what no notebook publishes by itself — revenue of the last twelve
months, the repeat-purchase rate, customers at high churn risk and the revenue they brought — from
the clean tables and 03's per-customer file, in DuckDB through Ibis, and writes them to
``reports/<dataset>/metrics/summary.json`` beside the notebooks' metrics, so every number on the
summary page is one value of one metrics file (:class:`Tile` names it as ``<file>/<dotted.key>``).
:func:`tiles` picks the figures, :func:`alerts` the things a manager must look at first.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_analytics import paths

__all__ = ["Tile", "Alert", "SUMMARY", "shop_numbers", "write_shop_numbers", "lookup",
           "tiles", "alerts", "campaign_arms"]

#: tables that grow every day in a live shop: one whose newest record is old means a broken feed
ACTIVITY_TABLES = {"orders": "order", "order_lines": "order line", "events": "site visit", "tickets": "support ticket",
                   "reviews": "product review"}
#: the metrics file of the summary's own numbers (reports/<dataset>/metrics/summary.json)
SUMMARY = "summary"


@dataclass
class Tile:
    """One figure of the summary: where it comes from (``source`` = metrics file stem, ``key`` =
    dotted path), how to show it (``kind``: count, money, share, stars, hours, ratio) and the
    English sentence template that explains it (fields filled by :func:`crm_analytics.i18n.t`)."""

    id: str
    title: str
    source: str
    key: str
    value: float
    kind: str
    sentence: str
    values: dict[str, Any] = field(default_factory=dict)
    link: str = ""
    good: str = "up"  # which direction of change is good: up, down or neutral


@dataclass
class Alert:
    """Something to look at first: ``level`` is ``bad`` (act) or ``warn`` (check)."""

    level: str
    text: str
    values: dict[str, Any] = field(default_factory=dict)
    link: str = ""


# --- numbers the notebooks do not publish -------------------------------------------------------

def shop_numbers(dataset: str) -> dict[str, Any]:
    """Revenue, buyers and repeat buyers over the last 365 days of the data and the 365 before,
    and the customers 03 put at high churn risk with their revenue of the last 365 days.

    Computed in DuckDB (through Ibis) over the clean parquet files; ``{}`` when the dataset has no
    clean orders yet. Purchases are orders of a known customer with status completed or returned
    (:data:`crm_analytics.ingest.tables.PURCHASE_STATUSES`), net of nothing: ``order_total`` as recorded.
    """
    import ibis

    from crm_analytics.ingest.tables import PURCHASE_STATUSES

    orders_file = paths.interim_dir(dataset) / "orders.parquet"
    if not orders_file.exists():
        return {}
    con = ibis.duckdb.connect()
    orders = con.read_parquet(str(orders_file))
    purchases = orders.filter(orders.customer_id.notnull() & orders.status.isin(list(PURCHASE_STATUSES)))
    end = purchases.order_ts.max().execute()
    if end is None:
        return {}
    import pandas as pd

    end = pd.Timestamp(end)
    last_start, prev_start = end - pd.Timedelta(days=365), end - pd.Timedelta(days=730)
    out: dict[str, Any] = {"as_of": f"{end:%Y-%m-%d}", "period_start": f"{last_start:%Y-%m-%d}"}
    per_customer = purchases.group_by("customer_id").aggregate(orders=purchases.count())
    totals = per_customer.aggregate(buyers=per_customer.count(),
                                    repeat=(per_customer.orders >= 2).sum()).execute().iloc[0]
    out["buyers_all_time"] = int(totals["buyers"])
    out["repeat_purchase_rate"] = float(totals["repeat"]) / float(totals["buyers"]) if totals["buyers"] else None
    for name, lo, hi in (("last_12_months", last_start, end), ("previous_12_months", prev_start, last_start)):
        window = purchases.filter((purchases.order_ts > lo) & (purchases.order_ts <= hi))
        row = window.aggregate(revenue=window.order_total.sum(), orders=window.count(),
                               buyers=window.customer_id.nunique()).execute().iloc[0]
        out[name] = {"revenue": _num(row["revenue"]), "orders": int(row["orders"]), "buyers": int(row["buyers"])}
    prev = out["previous_12_months"]
    covered = pd.Timestamp(purchases.order_ts.min().execute()) <= prev_start
    out["revenue_growth"] = (out["last_12_months"]["revenue"] / prev["revenue"] - 1
                             if covered and prev["revenue"] else None)
    clv_file = paths.processed_dir(dataset) / "clv.parquet"
    if clv_file.exists():
        clv = con.read_parquet(str(clv_file))
        if "churn_risk" in clv.columns:
            high = clv.filter(clv.churn_risk.cast("string") == "high").select("customer_id")
            recent = purchases.filter(purchases.order_ts > last_start)
            spend = recent.group_by("customer_id").aggregate(revenue=recent.order_total.sum())
            joined = high.left_join(spend, "customer_id")
            row = joined.aggregate(customers=joined.count(), revenue=joined.revenue.sum()).execute().iloc[0]
            scored = clv.count().execute()
            out["churn_risk"] = {"customers": int(row["customers"]), "revenue_last_12_months": _num(row["revenue"]) or 0.0,
                                 "share": int(row["customers"]) / scored if scored else None}
    return out


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def write_shop_numbers(dataset: str) -> Path:
    """Write ``reports/<dataset>/metrics/summary.json`` (:func:`shop_numbers`)."""
    from crm_analytics.reports.report import write_metrics

    return write_metrics(dataset, SUMMARY, shop_numbers(dataset))


def lookup(metrics: dict[str, dict], source: str, key: str) -> Any:
    """The value at dotted *key* of metrics file *source* (``None`` when absent). A key part may
    itself contain dots only when it is a whole key of its mapping (``exports.winback.csv``)."""
    node: Any = metrics.get(source)
    parts = key.split(".")
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            return None
        for j in range(len(parts), i, -1):  # the longest key that exists at this level
            k = ".".join(parts[i:j])
            if k in node:
                node, i = node[k], j
                break
        else:
            return None
    return node


def campaign_arms(metrics: dict[str, dict]) -> list[dict]:
    """Every measured campaign arm of 04 with its ROI estimate and interval and its sample-ratio
    test: ``[{campaign, arm, key, roi, low, high, srm_p}]``."""
    out = []
    for cid, arms in (metrics.get("04_campaign_roi", {}).get("campaigns") or {}).items():
        for arm, m in (arms or {}).items():
            roi = (m or {}).get("roi") or {}
            if roi.get("estimate") is None:
                continue
            out.append({"campaign": cid, "arm": arm, "key": f"campaigns.{cid}.{arm}.roi.estimate",
                        "roi": roi["estimate"], "low": roi.get("ci_low"), "high": roi.get("ci_high"),
                        "srm_p": m.get("srm_p_value")})
    return out


def _arm(code: str) -> str:
    """A test variant as 04 shows it (``free_shipping`` -> ``free shipping`` / ``ücretsiz kargo``)."""
    from crm_analytics.reports.campaign_report import arm_label

    return arm_label(code)


def _campaign_names(dataset: str) -> dict[str, str]:
    path = paths.interim_dir(dataset) / "campaigns.parquet"
    if not path.exists():
        return {}
    import pandas as pd

    frame = pd.read_parquet(path, columns=None)
    if not {"campaign_id", "name"} <= set(frame.columns):
        return {}
    return dict(zip(frame["campaign_id"].astype(str), frame["name"].astype(str)))


# --- the figures ----------------------------------------------------------------------------------

def tiles(dataset: str, metrics: dict[str, dict], *, level: float = 0.95) -> list[Tile]:
    """The summary's figures that this dataset has, in reading order (text in English, as
    templates for :func:`crm_analytics.i18n.t`); *level* is the confidence level of 04's
    intervals (1 − its ``alpha``)."""
    out: list[Tile] = []

    def add(tile_id, title, source, key, kind, sentence, link=None, good="up", **values):
        v = lookup(metrics, source, key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)):
            return
        out.append(Tile(tile_id, title, source, key, v, kind, sentence, values,
                        link if link is not None else (source if source != SUMMARY else ""), good))

    s = metrics.get(SUMMARY, {})
    last = s.get("last_12_months") or {}
    add("customers", "Customers", "02_segmentation", "customers", "count",
        "Customers with at least one purchase up to {as_of}.", as_of=_day(s.get("as_of")))
    add("revenue", "Revenue, last 12 months", SUMMARY, "last_12_months.revenue", "money",
        "{orders:,} orders from {buyers:,} customers between {start} and {end}.",
        orders=last.get("orders") or 0, buyers=last.get("buyers") or 0, start=_day(s.get("period_start")),
        end=_day(s.get("as_of")))
    add("repeat", "Repeat-purchase rate", SUMMARY, "repeat_purchase_rate", "share",
        "Share of customers who ordered more than once.")
    add("clv", "Expected customer value, next 12 months", "03_clv_churn", "clv.mean", "money",
        "Average margin a customer is expected to bring in the next 12 months; {total} for all customers.",
        total=("money", lookup(metrics, "03_clv_churn", "clv.total")))
    risk = s.get("churn_risk") or {}
    add("churn_risk", "Customers at high churn risk", SUMMARY, "churn_risk.customers", "count",
        "{share:.0%} of customers; they spent {revenue} in the last 12 months: the revenue at stake.",
        link="03_clv_churn", good="down", share=risk.get("share") or 0,
        revenue=("money", risk.get("revenue_last_12_months")))
    add("conversion", "Conversion rate", "05_behaviour", "conversion_rate.value", "share",
        "Share of site visits that end in an order.")
    add("cart_abandonment", "Cart abandonment", "05_behaviour", "cart_abandonment_rate.value", "share",
        "Share of visits with something in the cart that end without an order.", good="down")
    arms = campaign_arms(metrics)
    if arms:
        names = _campaign_names(dataset)
        best, worst = max(arms, key=lambda a: a["roi"]), min(arms, key=lambda a: a["roi"])
        for tile_id, title, arm in (("best_campaign", "Best campaign, return on spend", best),
                                    ("worst_campaign", "Weakest campaign, return on spend", worst)):
            if tile_id == "worst_campaign" and len(arms) < 2:
                break
            add(tile_id, title, "04_campaign_roi", arm["key"], "roi",
                "{name} ({arm}): extra margin minus cost, as a share of the cost ({level:.0%} interval {low} to "
                "{high}); above 0% the campaign paid for itself.", level=level,
                name=("data", names.get(arm["campaign"], arm["campaign"])), arm=("data", _arm(arm["arm"])),
                low=("roi", arm["low"]), high=("roi", arm["high"]))
    add("rating", "Average rating", "07_feedback", "mean_rating", "stars",
        "Mean stars of {reviews:,} reviews (out of 5).", reviews=lookup(metrics, "07_feedback", "reviews") or 0)
    add("resolution", "Complaint resolution time (median)", "07_feedback", "tickets.median_resolution_hours",
        "hours", "Half of the complaints are resolved faster; {breach:.0%} took longer than the {sla} hour target.",
        good="down", breach=lookup(metrics, "07_feedback", "tickets.sla_breach_share") or 0,
        sla=lookup(metrics, "07_feedback", "tickets.sla_hours") or 0)
    add("data_kept", "Data rows kept after cleaning", "01_data_cleaning", "headline.share kept", "share",
        "The rest were duplicates, test orders or unreadable rows, each kept aside with its reason.")
    return out


def _day(text: Any) -> Any:
    """An ISO day string as a date for the locale's formatting (``("date", …)``)."""
    return ("date", text) if text else ("text", "–")


# --- alerts ---------------------------------------------------------------------------------------

def alerts(dataset: str, metrics: dict[str, dict], previous: dict[str, dict] | None,
           statuses: dict[str, dict], *, failed: str | None = None, level: float = 0.95) -> list[Alert]:
    """What a manager should look at first: a failed report, a stale source, a broken export,
    falling ratings, rising churn risk, a campaign losing money, a test whose groups are not the
    sizes planned (sample-ratio mismatch). *failed* is the notebook the last run failed in
    (:func:`crm_analytics.reports.history.last_failure`); *level* the confidence level of 04's intervals."""
    out: list[Alert] = []
    for nb, st in statuses.items():
        if nb == failed or st.get("status") == "failed":
            built = st.get("status") == "ok"
            out.append(Alert("bad", "The report {report} did not finish; its numbers are from an earlier run."
                             if built else "The report {report} did not finish and has no earlier run.",
                             {"report": ("data", nb)}, nb if built else ""))
    quality = paths.interim_dir(dataset) / "quality.json"
    if quality.exists():
        for row in json.loads(quality.read_text(encoding="utf-8")).get("freshness", []):
            # the activity streams: campaign and product tables change only when the shop changes them
            if row.get("stale") and row.get("table") in ACTIVITY_TABLES:
                out.append(Alert("warn", "The {table} data is {days:,.0f} days old: the newest record is from {newest}.",
                                 {"table": ("word", ACTIVITY_TABLES[row["table"]]), "days": row.get("days_old") or 0,
                                  "newest": ("date", str(row.get("newest"))[:10])}, "01_data_cleaning"))
    out.extend(_export_alerts(dataset, metrics))
    falling = sum(int(lookup(metrics, "07_feedback", f"falling.{k}") or 0) for k in ("category", "product_id"))
    if falling:
        out.append(Alert("bad", "Ratings are falling for {n} categories or products.", {"n": falling}, "07_feedback"))
    now = lookup(metrics, SUMMARY, "churn_risk.share")
    before = lookup(previous or {}, SUMMARY, "churn_risk.share")
    if isinstance(now, (int, float)) and isinstance(before, (int, float)) and now > before + 0.01:
        out.append(Alert("bad", "More customers are at high churn risk: {now:.1%} against {before:.1%} last run.",
                         {"now": now, "before": before}, "03_clv_churn"))
    names = _campaign_names(dataset)
    for arm in campaign_arms(metrics):
        values = {"name": ("data", names.get(arm["campaign"], arm["campaign"])), "arm": ("data", _arm(arm["arm"])),
                  "roi": ("roi", arm["roi"]), "level": level}
        if arm["high"] is not None and arm["high"] < 0:
            out.append(Alert("bad", "{name} ({arm}) loses money: return on spend {roi}, and below "
                             "break-even even at the top of its {level:.0%} interval.", values, "04_campaign_roi"))
        elif arm["roi"] < 0:
            out.append(Alert("warn", "{name} ({arm}) probably loses money: return on spend {roi} (not certain: "
                             "its {level:.0%} interval includes break-even).", values, "04_campaign_roi"))
        if arm["srm_p"] is not None and arm["srm_p"] < 0.001:
            out.append(Alert("bad", "The test {name} ({arm}) has groups of unplanned sizes (sample-ratio mismatch): "
                             "its result cannot be trusted.", values, "04_campaign_roi"))
    return out


def _export_alerts(dataset: str, metrics: dict[str, dict]) -> list[Alert]:
    """An export list that a report says it wrote but that is missing or has another number of rows."""
    out = []
    exports = paths.reports_dir(dataset) / "exports"
    written = lookup(metrics, "06_personalisation", "offers.exports") or {}
    for name, rows in written.items() if isinstance(written, dict) else []:
        path = exports / name
        if not name.endswith(".csv"):
            continue
        if not path.exists():
            if rows:  # a list with nobody on it is removed on purpose, not broken
                out.append(Alert("bad", "The export {file} is missing.", {"file": ("data", name)},
                                 "06_personalisation"))
            continue
        with open(path, "rb") as fh:
            lines = sum(1 for _ in fh) - 1
        if isinstance(rows, int) and lines != rows:
            out.append(Alert("bad", "The export {file} has {lines:,} rows but the report wrote {rows:,}.",
                             {"file": ("data", name), "lines": lines, "rows": rows}, "06_personalisation"))
    return out

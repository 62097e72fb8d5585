"""Attribution: each campaign assignment joined to what the customer did inside the campaign's
attribution window — the outcome table that campaign effects are measured on.

The window starts at the campaign's start (the send time of the treatment group is not used:
control customers get no send, and starting both groups at the same moment keeps them
comparable) and lasts ``attribution_days``; a campaign with an ``end_ts`` earlier than that
is still measured over the full window, since late purchases are part of the effect.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crm_analytics import compute
from crm_analytics.errors import DataContractError
from crm_analytics.features.customer import TIMESTAMP_COLUMNS, campaign_pre_period, customer_features, pre_period
from crm_analytics.ingest.tables import ParquetTable, columns_of, ibis_table, purchases

__all__ = ["campaign_outcomes", "pre_period_features", "snapshot_features", "uplift_features"]

DAY = pd.Timedelta(days=1)


def _window_join(assign: pd.DataFrame, facts: pd.DataFrame, ts_col: str, days: float) -> pd.DataFrame:
    """Rows of *facts* (customer_id, ts_col, ...) that fall in each assignment's window."""
    j = assign[["campaign_id", "customer_id", "window_start"]].merge(facts, on="customer_id")
    inside = (j[ts_col] >= j["window_start"]) & (j[ts_col] < j["window_start"] + days * DAY)
    return j[inside]


def campaign_outcomes(tables: dict[str, pd.DataFrame], *, attribution_days: float = 14.0) -> pd.DataFrame:
    """One row per (campaign, customer): group, variant, opened, clicked, converted, orders, revenue, visited.

    Raises
    ------
    DataContractError
        When the dataset has no campaigns or assignments.
    """
    campaigns, assign = tables.get("campaigns"), tables.get("campaign_assignments")
    if campaigns is None or assign is None or not len(assign):
        raise DataContractError("this dataset has no campaigns or campaign assignments: campaign effects need the "
                                "campaigns and campaign_assignments tables")
    a = assign.merge(campaigns[["campaign_id", "start_ts"]], on="campaign_id", how="left")
    a = a.rename(columns={"start_ts": "window_start"})
    out = a[["campaign_id", "customer_id", "group", "variant"]].copy()
    out["variant"] = out["variant"].fillna(out["group"])
    out["opened"] = a["opened_ts"].notna().to_numpy()
    out["clicked"] = a["clicked_ts"].notna().to_numpy()
    key = ["campaign_id", "customer_id"]
    bought = purchases(tables["orders"])[["customer_id", "order_ts", "order_total"]]
    w = _window_join(a, bought, "order_ts", attribution_days)
    agg = w.groupby(key).agg(orders=("order_total", "size"), revenue=("order_total", "sum"))
    out = out.merge(agg, left_on=key, right_index=True, how="left")
    out["orders"] = out["orders"].fillna(0).astype("int64")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["converted"] = out["orders"] > 0
    events = tables.get("events")
    if events is not None and len(events):
        v = _visits(a[["campaign_id", "customer_id", "window_start"]], events, attribution_days)
        out = out.merge(v, left_on=key, right_index=True, how="left")
        out["visited"] = out["visits"].fillna(0) > 0
        out = out.drop(columns="visits")
    return out.reset_index(drop=True)


def _visits(windows: pd.DataFrame, events: pd.DataFrame | ParquetTable, days: float) -> pd.Series:
    """Events in sessions of each assigned customer inside the campaign's window, per (campaign_id, customer_id),
    counted by the engine: the events (a DataFrame or, for a large log, a :class:`ParquetTable` read where it
    lies) never come to pandas."""
    import ibis

    missing = [c for c in ("customer_id", "session_id", "ts") if c not in columns_of(events)]
    if missing:
        raise DataContractError(f"events have no column(s) {missing}: visits in the attribution window need the "
                                "clean events table (customer_id, session_id, ts)")
    width = ibis.interval(int(round(days * 86_400_000_000)), unit="us")
    with compute.session() as db:
        ev = ibis_table(db, events, ["customer_id", "session_id", "ts"])
        ev = ev.filter(ev.customer_id.notnull() & ev.session_id.notnull()).select("customer_id", "ts")
        j = db.table(windows.reset_index(drop=True)).join(ev, "customer_id")
        j = j.filter((j.ts >= j.window_start) & (j.ts < j.window_start + width))
        got = j.group_by(["campaign_id", "customer_id"]).aggregate(visits=j.count()).to_pyarrow().to_pandas()
    return got.set_index(["campaign_id", "customer_id"])["visits"]


def pre_period_features(tables: dict[str, pd.DataFrame], *, days: int = 180) -> pd.DataFrame:
    """Per (campaign, customer): orders, revenue and days since last order in the *days* before the start
    (:func:`crm_analytics.features.customer.campaign_pre_period`).

    Used to check that treatment and control were balanced before the campaign.
    """
    return campaign_pre_period(tables, days=days)


def _bought_before(orders: pd.DataFrame, as_of: pd.Timestamp) -> bool:
    """Whether any purchase happened strictly before *as_of*."""
    return bool((purchases(orders)["order_ts"] < as_of).any())


def uplift_features(tables: dict[str, pd.DataFrame], campaign_id: str, *, days: int = 180) -> pd.DataFrame:
    """Features known before *campaign_id* started, one row per assigned customer (index customer_id):
    :func:`snapshot_features` at the campaign's start."""
    assigned = tables["campaign_assignments"]
    ids = assigned.loc[assigned["campaign_id"] == campaign_id, "customer_id"]
    start = tables["campaigns"].set_index("campaign_id").loc[campaign_id, "start_ts"]
    return snapshot_features(tables, ids, start, days=days)


def snapshot_features(tables: dict[str, pd.DataFrame], customer_ids: Any, as_of: pd.Timestamp, *,
                      days: int = 180) -> pd.DataFrame:
    """Features known before *as_of*, one row per customer of *customer_ids* (index customer_id, in that order).

    Purchasing in the *days* before (``pre_orders``, ``pre_revenue``, ``pre_days_since_order``),
    purchasing and browsing behaviour up to *as_of* (:func:`crm_analytics.features.customer.customer_features`,
    without campaign history, orders and revenue), age and gender, and the numeric or low-cardinality
    ``attr_*`` columns a source carries (Hillstrom's history, recency, channel...). The same columns at a
    campaign's start (to learn who responds) and today (to score who would respond now).
    """
    ids = pd.Index(customer_ids, name="customer_id")
    f = pre_period(tables, as_of, ids, days=days)
    if _bought_before(tables["orders"], as_of):
        behaviour = customer_features(tables, as_of - pd.Timedelta(microseconds=1), exclude=["campaign_assignments"])
        f = f.join(behaviour.drop(columns=["orders", "revenue", *TIMESTAMP_COLUMNS]))
    cust = tables.get("customers")
    if cust is not None and len(cust):
        c = cust.drop_duplicates("customer_id").set_index("customer_id").reindex(f.index)
        if "birth_date" in c and c["birth_date"].notna().any():
            born = pd.to_datetime(c["birth_date"]).dt.tz_localize("UTC")
            f["age"] = (as_of - born).dt.days / 365.25
        if "gender" in c and c["gender"].notna().any():
            f["female"] = (c["gender"] == "female").astype(float)
        for col in [x for x in c.columns if x.startswith("attr_")]:
            num = pd.to_numeric(c[col], errors="coerce")
            if num.notna().mean() > 0.95:
                f[col[5:]] = num
            elif c[col].nunique() <= 12:
                f = f.join(pd.get_dummies(c[col], prefix=col[5:], dtype=float))
    return f

"""One customer view: identity stitching and the customer 360 table.

Stitching rule: an ``anonymous_id`` (a browser or app install) that is seen together with a
``customer_id`` (a login, or any event while logged in) belongs to that customer for the
device's whole history, before and after the login. A device seen with two or more customers
(a shared family tablet) is left unstitched and counted, never guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["stitch_events", "customers_360", "STITCH_RULE"]

STITCH_RULE = ("an anonymous_id seen with exactly one customer_id (a login or a logged-in event) belongs to that "
               "customer for the device's whole history; devices seen with several customers stay anonymous")


def stitch_events(events: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Fill ``customer_id`` of anonymous events on devices that identify one customer.

    Returns the events (same rows, same order) and the counts behind the report: events,
    anonymous events before stitching, events stitched, devices stitched, ambiguous devices,
    ``events_stitched_share`` (stitched / anonymous before) and ``events_attributed_share``
    (events with a customer after stitching / events).
    """
    ev = events.copy()
    known = ev.dropna(subset=["anonymous_id", "customer_id"])
    per_device = known.groupby("anonymous_id")["customer_id"].nunique()
    ambiguous = per_device[per_device > 1].index
    owner = known[~known["anonymous_id"].isin(ambiguous)].drop_duplicates("anonymous_id").set_index(
        "anonymous_id")["customer_id"]
    anon = ev["customer_id"].isna()
    fill = ev.loc[anon, "anonymous_id"].map(owner)
    stitched = fill.notna()
    ev.loc[fill.index[stitched], "customer_id"] = fill[stitched].to_numpy()
    n_anon = int(anon.sum())
    stats = {
        "events": int(len(ev)),
        "anonymous_events_before": n_anon,
        "events_stitched": int(stitched.sum()),
        "devices_stitched": int(len(owner)),
        "devices_ambiguous": int(len(ambiguous)),
        "events_stitched_share": float(stitched.sum() / n_anon) if n_anon else None,
        "events_attributed_share": float(ev["customer_id"].notna().mean()) if len(ev) else None,
        "rule": STITCH_RULE,
    }
    return ev, stats


def _count(df: pd.DataFrame | None, name: str) -> pd.Series:
    if df is None or not len(df):
        return pd.Series(dtype="int64", name=name)
    return df.dropna(subset=["customer_id"]).groupby("customer_id").size().rename(name)


def customers_360(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per customer: first and last seen, channels used, orders, revenue, events,
    campaigns received, reviews, tickets and consents (pseudonymous ids only, no personal columns).

    Revenue counts completed and returned orders (a returned order was still bought; the
    refund is not in the data contract); ``orders`` counts the same purchases.
    """
    customers = tables["customers"]
    orders = tables.get("orders")
    events = tables.get("events")
    out = customers[["customer_id", "signup_ts"] + [c for c in ("consent_marketing", "consent_tracking", "region")
                                                     if c in customers]].drop_duplicates("customer_id")
    out = out.set_index("customer_id")
    seen = [out["signup_ts"].rename("ts")]
    channels = []
    if orders is not None and len(orders):
        bought = orders[orders["customer_id"].notna() & orders["status"].isin(["completed", "returned"])]
        g = bought.groupby("customer_id")
        out = out.join(g.size().rename("orders")).join(g["order_total"].sum().rename("revenue"))
        out = out.join(g["order_ts"].min().rename("first_order_ts")).join(g["order_ts"].max().rename("last_order_ts"))
        seen.append(orders.dropna(subset=["customer_id"]).set_index("customer_id")["order_ts"].rename("ts"))
        channels.append(orders.dropna(subset=["customer_id"])[["customer_id", "channel"]])
    if events is not None and len(events):
        out = out.join(_count(events, "events"))
        seen.append(events.dropna(subset=["customer_id"]).set_index("customer_id")["ts"].rename("ts"))
        channels.append(events.dropna(subset=["customer_id"])[["customer_id", "channel"]])
    assign = tables.get("campaign_assignments")
    if assign is not None and len(assign):
        out = out.join(assign[assign["group"] == "treatment"].groupby("customer_id").size().rename("campaigns_received"))
    out = out.join(_count(tables.get("reviews"), "reviews")).join(_count(tables.get("tickets"), "tickets"))
    all_seen = pd.concat(seen)
    all_seen = all_seen[all_seen.index.isin(out.index)]
    gs = all_seen.groupby(level=0)
    out = out.join(gs.min().rename("first_seen")).join(gs.max().rename("last_seen"))
    if channels:
        ch = pd.concat(channels).dropna().drop_duplicates()
        out = out.join(ch.sort_values("channel").groupby("customer_id")["channel"].agg(", ".join).rename("channels_used"))
    for col in ("orders", "events", "campaigns_received", "reviews", "tickets"):
        if col in out:
            out[col] = out[col].fillna(0).astype("int64")
    if "revenue" in out:
        out["revenue"] = out["revenue"].fillna(0.0)
    out["buyer"] = out.get("orders", pd.Series(0, index=out.index)) > 0
    return out.reset_index()

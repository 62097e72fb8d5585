"""One customer view: identity stitching and the customer 360 table.

Stitching rule: an ``anonymous_id`` (a browser or app install) that is seen together with a
``customer_id`` (a login, or any event while logged in) belongs to that customer for the
device's whole history, before and after the login. A device seen with two or more customers
(a shared family tablet) is left unstitched and counted, never guessed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from crm_analytics.ingest.tables import ParquetTable

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


def _positions(ids: pd.Index, values: pd.Series) -> np.ndarray:
    """The row of each value among the customers *ids* (unique), -1 for an unknown or missing customer."""
    if all(isinstance(x.dtype, pd.StringDtype) and x.dtype.storage == "pyarrow" for x in (ids, values)):
        pos = pc.index_in(values.array.__arrow_array__(), value_set=ids.array.__arrow_array__().combine_chunks())
        return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype("int64")
    return ids.get_indexer(values)


def _per_customer(pos: np.ndarray, values: pd.Series | np.ndarray | None, how: str, n: int) -> pd.Series:
    """*values* reduced (``how``: size, sum, min, max) per customer row *pos*; NaN for customers without any.
    ``size`` counts rows (no *values*); ``min`` and ``max`` may come together (``how="minmax"``, a frame)."""
    known = pos >= 0
    if how == "size":
        counts = np.bincount(pos[known], minlength=n)
        return pd.Series(counts, dtype="float64").where(counts > 0)
    values = values.reset_index(drop=True) if isinstance(values, pd.Series) else pd.Series(values)
    grouped = values[known].groupby(pos[known], sort=False)
    return (grouped.agg(["min", "max"]) if how == "minmax" else grouped.agg(how)).reindex(range(n))


def _channels_used(pos: np.ndarray, channel: pd.Series, n: int) -> pd.Series:
    """Per customer row, the distinct channels in alphabetical order joined by ``", "``: one bit per channel
    and one label per combination, not one string join per customer."""
    keep = (pos >= 0) & channel.notna().to_numpy()
    codes, names = pd.factorize(channel[keep], sort=True)  # alphabetical, as sort_values sorts text
    if len(names) > 62:
        pairs = pd.DataFrame({"pos": pos[keep], "channel": channel[keep].to_numpy()}).drop_duplicates()
        used = pairs.sort_values("channel").groupby("pos")["channel"].agg(", ".join).reindex(range(n))
    else:
        combos = np.zeros(n, dtype="int64")
        np.bitwise_or.at(combos, pos[keep], np.left_shift(1, codes.astype("int64")))
        labels = {m: ", ".join(x for i, x in enumerate(names) if m >> i & 1) for m in np.unique(combos) if m}
        used = pd.Series(combos).map(labels)
    return used.astype(channel.dtype) if isinstance(channel.dtype, pd.StringDtype) else used


def customers_360(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per customer: first and last seen, channels used, orders, revenue, events,
    campaigns received, reviews, tickets and consents (pseudonymous ids only, no personal columns).
    The columns of a table the dataset lacks (orders, events, campaigns, reviews, tickets) are left out;
    *tables* may hold an empty customers table (a session export without customer ids): no rows then.

    The events may be a :class:`crm_analytics.ingest.tables.ParquetTable` (counted in DuckDB). Rows of other
    tables are matched to customers by position, so that a million customers take seconds.

    Revenue counts completed and returned orders (a returned order was still bought; the
    refund is not in the data contract); ``orders`` counts the same purchases.

    This view stays in ingest, beside the stitching, rather than in :mod:`crm_analytics.features`: notebook 01
    makes it while cleaning (ingest cannot import features), over every customer of the customers table
    (non-buyers, consents and first/last seen in any table included) and over all of the data, as a check
    of the customer identity, not as model input. Its ``orders`` and ``revenue`` use the definitions of the
    feature vocabulary, so they equal ``orders`` and ``revenue`` of ``customer_features.parquet`` for every
    buyer (``tests/test_features.py`` checks it); model features come from
    :func:`crm_analytics.features.customer.customer_features`.
    """
    customers = tables["customers"]
    orders = tables.get("orders")
    events = tables.get("events")
    out = customers[["customer_id", "signup_ts"] + [c for c in ("consent_marketing", "consent_tracking", "region")
                                                     if c in customers]].drop_duplicates("customer_id")
    out = out.set_index("customer_id")
    n, ids = len(out), out.index
    first = [out["signup_ts"].reset_index(drop=True)]
    last = list(first)
    channel_pos, channels = [], []

    def seen(pos: np.ndarray, ts: pd.Series, channel: pd.Series) -> None:
        """Record a table's rows (at customer rows *pos*) for first/last seen and channels used."""
        span = _per_customer(pos, ts, "minmax", n)
        first.append(span["min"])
        last.append(span["max"])
        channel_pos.append(pos)
        channels.append(channel)

    if orders is not None and len(orders):
        pos = _positions(ids, orders["customer_id"])
        bought = np.where(orders["customer_id"].notna().to_numpy() & orders["status"].isin(["completed", "returned"]).to_numpy(),
                          pos, -1)
        out["orders"] = _per_customer(bought, None, "size", n).set_axis(ids)
        out["revenue"] = _per_customer(bought, orders["order_total"], "sum", n).set_axis(ids)
        span = _per_customer(bought, orders["order_ts"], "minmax", n).set_axis(ids)
        out["first_order_ts"], out["last_order_ts"] = span["min"], span["max"]
        seen(pos, orders["order_ts"], orders["channel"])
    if isinstance(events, ParquetTable) and len(events):  # too big for pandas: per customer and channel in DuckDB
        per = events.query("SELECT customer_id, channel, count(*) AS n, min(ts) AS first, max(ts) AS last "
                           "FROM t WHERE customer_id IS NOT NULL GROUP BY ALL").astype(
            {"customer_id": "string", "channel": "string"})  # as the clean events read back
        pos = _positions(ids, per["customer_id"])
        known = pos >= 0
        counts = np.bincount(pos[known], weights=per["n"].to_numpy()[known], minlength=n)  # exact: integers
        out["events"] = pd.Series(counts, index=ids).where(np.bincount(pos[known], minlength=n) > 0)
        first.append(_per_customer(pos, per["first"], "min", n))
        last.append(_per_customer(pos, per["last"], "max", n))
        channel_pos.append(pos)
        channels.append(per["channel"])
    elif events is not None and len(events):
        pos = _positions(ids, events["customer_id"])
        out["events"] = _per_customer(pos, None, "size", n).set_axis(ids)
        seen(pos, events["ts"], events["channel"])
    assign = tables.get("campaign_assignments")
    if assign is not None and len(assign):
        treated = np.where((assign["group"] == "treatment").to_numpy(dtype=bool, na_value=False),
                           _positions(ids, assign["customer_id"]), -1)
        out["campaigns_received"] = _per_customer(treated, None, "size", n).set_axis(ids)
    for name in ("reviews", "tickets"):  # counted when the dataset has the table (a clickstream has neither)
        t = tables.get(name)
        if t is None:
            continue
        pos = _positions(ids, t["customer_id"]) if len(t) else np.array([], dtype="int64")
        out[name] = _per_customer(pos, None, "size", n).set_axis(ids)
    out["first_seen"] = pd.concat(first, axis=1).min(axis=1).set_axis(ids)
    out["last_seen"] = pd.concat(last, axis=1).max(axis=1).set_axis(ids)
    if channels:
        out["channels_used"] = _channels_used(np.concatenate(channel_pos), pd.concat(channels, ignore_index=True),
                                              n).set_axis(ids)
    for col in ("orders", "events", "campaigns_received", "reviews", "tickets"):
        if col in out:
            out[col] = out[col].fillna(0).astype("int64")
    if "revenue" in out:
        out["revenue"] = out["revenue"].fillna(0.0)
    out["buyer"] = out.get("orders", pd.Series(0, index=out.index)) > 0
    return out.reset_index()

"""Lifecycle stages (the first R of the 4R frame): who is a first-time or returning visitor, a
one-time, repeat or lapsed buyer at a date (:func:`recognise`), and how many are in each stage at the
end of every period (:func:`stage_trend`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.features.rfm import rfm_table
from crm_analytics.ingest.identity import stitch_events
from crm_analytics.models.segmentation._common import _require, _timestamp, _utc_naive

__all__ = ["STAGES", "recognise", "stage_trend"]

#: Lifecycle stages of :func:`recognise`, in funnel order. ``registered_only`` (a known customer
#: with neither a session nor a purchase) appears only when both events and customers are given.
STAGES = ("registered_only", "first_time_visitor", "returning_visitor", "one_time_buyer", "repeat_buyer",
          "lapsed_buyer")


def _sessions(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Sessions per visitor up to *as_of*: ``visitor_type, visitor_id, sessions``.

    Devices are stitched to customers with :func:`crm_analytics.ingest.identity.stitch_events`, using only
    events up to *as_of* (what was known then).
    """
    _require(events, ["ts", "customer_id", "anonymous_id", "session_id"], "events")
    ts = _utc_naive(events["ts"], "events.ts")
    ev = events.loc[(ts <= as_of.tz_localize(None)).to_numpy(), ["customer_id", "anonymous_id", "session_id"]]
    ev, _ = stitch_events(ev)
    known = ev["customer_id"].notna().to_numpy()
    # text stays in Arrow-backed columns: Python string objects for tens of millions of events cost many GB
    ev = pd.DataFrame({
        "visitor_type": pd.Series(np.where(known, "customer", "anonymous"), index=ev.index),
        "visitor_id": ev["customer_id"].astype("string").where(known, ev["anonymous_id"].astype("string")),
        "session_id": ev["session_id"],
    })
    ev = ev[ev["visitor_id"].notna() & ev["session_id"].notna()]
    return ev.groupby(["visitor_type", "visitor_id"], sort=False)["session_id"].nunique().rename("sessions").reset_index()


def recognise(orders: pd.DataFrame, events: pd.DataFrame | None, customers: pd.DataFrame | None, as_of: Any,
              lapsed_after_days: float = 180) -> pd.DataFrame:
    """Lifecycle stage of every known customer and anonymous visitor at *as_of*.

    Stages: ``lapsed_buyer`` (last purchase more than *lapsed_after_days* ago), else ``repeat_buyer``
    (≥ 2 purchases), ``one_time_buyer``; people without a purchase: ``returning_visitor`` (≥ 2
    sessions), ``first_time_visitor`` (one session); with *customers* also ``registered_only``
    (a customer signed up by *as_of* with no session and no purchase).

    Parameters
    ----------
    orders : DataFrame
        Clean orders.
    events : DataFrame or None
        Clean events (``ts, customer_id, anonymous_id, session_id``). ``None``: only buyers are staged.
        Anonymous devices seen with exactly one customer are that customer (identity stitching);
        other anonymous visitors are counted by ``anonymous_id``.
    customers : DataFrame or None
        Clean customers; adds ``registered_only`` customers when events are given.
    as_of : date or timestamp
    lapsed_after_days : float
        A buyer whose last purchase is older than this is lapsed.

    Returns
    -------
    DataFrame
        ``visitor_type`` (customer / anonymous), ``visitor_id``, ``stage`` (categorical, :data:`STAGES`
        order), ``sessions`` (missing when *events* is ``None``), ``purchases``, ``days_since_last_purchase``
        (missing for non-buyers).
    """
    as_of = _timestamp(as_of, "as_of")
    if not np.isfinite(lapsed_after_days) or lapsed_after_days <= 0:
        raise ParamsError(f"lapsed_after_days={lapsed_after_days!r} must be a positive number of days")
    rfm = rfm_table(orders, as_of)
    people = pd.DataFrame({
        "visitor_type": "customer",
        "visitor_id": rfm.index.astype(object),
        "purchases": rfm["orders"].to_numpy(),
        "days_since_last_purchase": rfm["recency_days"].to_numpy(),
    })
    if events is not None:
        people = people.merge(_sessions(events, as_of), on=["visitor_type", "visitor_id"], how="outer")
        if customers is not None:
            _require(customers, ["customer_id"], "customers")
            reg = customers
            if "signup_ts" in customers:
                signup = _utc_naive(customers["signup_ts"], "customers.signup_ts")
                reg = customers.loc[(signup.isna() | (signup <= as_of.tz_localize(None))).to_numpy()]
            ids = pd.Index(reg["customer_id"].dropna().astype(object).unique())
            ids = ids.difference(people.loc[people["visitor_type"] == "customer", "visitor_id"])
            people = pd.concat([people, pd.DataFrame({"visitor_type": "customer", "visitor_id": ids})],
                               ignore_index=True)
    else:
        people["sessions"] = np.nan
    people["purchases"] = people["purchases"].fillna(0).astype("int64")
    sessions = people["sessions"].fillna(0).to_numpy()
    buys = people["purchases"].to_numpy()
    stage = np.select(
        [(buys == 0) & (sessions == 0), (buys == 0) & (sessions == 1), (buys == 0) & (sessions >= 2),
         people["days_since_last_purchase"].to_numpy() > lapsed_after_days, buys >= 2],
        ["registered_only", "first_time_visitor", "returning_visitor", "lapsed_buyer", "repeat_buyer"],
        default="one_time_buyer",
    )
    people["stage"] = pd.Categorical(stage, categories=list(STAGES))
    people["sessions"] = people["sessions"].astype("float64") if events is None else \
        people["sessions"].fillna(0).astype("int64")
    people = people.sort_values(["visitor_type", "visitor_id"], kind="stable", ignore_index=True)
    return people[["visitor_type", "visitor_id", "stage", "sessions", "purchases", "days_since_last_purchase"]]


def stage_trend(orders: pd.DataFrame, events: pd.DataFrame | None = None, freq: str = "M", *,
                customers: pd.DataFrame | None = None, lapsed_after_days: float = 180) -> pd.DataFrame:
    """Number of people in each lifecycle stage at the end of every period.

    Parameters
    ----------
    orders, events, customers
        As for :func:`recognise`.
    freq : str
        A pandas period frequency: ``"M"`` months, ``"Q"`` quarters, ``"W"`` weeks.

    Returns
    -------
    DataFrame
        One row per period (index: period label) with ``as_of`` (period end, or the last
        observed timestamp for the final, unfinished period), ``complete`` (whether the period had
        ended by then) and one count column per stage of :data:`STAGES`.
    """
    _require(orders, ["order_ts"], "orders")
    stamps = [_utc_naive(orders["order_ts"], "orders.order_ts")]
    if events is not None:
        _require(events, ["ts"], "events")
        stamps.append(_utc_naive(events["ts"], "events.ts"))
    ts = pd.concat(stamps).dropna()
    if ts.empty:
        raise DataContractError("stage_trend: orders (and events) hold no timestamps")
    try:
        periods = pd.period_range(ts.min(), ts.max(), freq=freq)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"freq={freq!r} is not a pandas period frequency; use 'M', 'Q' or 'W'") from exc
    last = ts.max()
    rows = []
    for p in periods:  # one vectorised recognise() per period (tens of periods), not per customer
        end = min(p.end_time.floor("us"), last)
        counts = recognise(orders, events, customers, end, lapsed_after_days)["stage"].value_counts()
        rows.append({"period": str(p), "as_of": end.tz_localize("UTC"), "complete": bool(p.end_time <= last),
                     **{s: int(counts.get(s, 0)) for s in STAGES}})
    out = pd.DataFrame(rows).set_index("period")
    if events is None or customers is None:
        out = out.drop(columns=["registered_only"])
    if events is None:
        out = out.drop(columns=["first_time_visitor", "returning_visitor"])
    return out

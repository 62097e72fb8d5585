"""Lifecycle stages (the first R of the 4R frame): who is a first-time or returning visitor, a
one-time, repeat or lapsed buyer at a date (:func:`recognise`), and how many are in each stage at the
end of every period (:func:`stage_trend`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.features.rfm import _require_table, purchase_rows, rfm_table, ts_literal
from crm_analytics.ingest.identity import stitch_events
from crm_analytics.ingest.tables import ParquetTable, ibis_table, local_ibis
from crm_analytics.models.segmentation._common import _require, _timestamp, _utc_naive

__all__ = ["STAGES", "recognise", "stage_trend"]

#: Lifecycle stages of :func:`recognise`, in funnel order. ``registered_only`` (a known customer
#: with neither a session nor a purchase) appears only when both events and customers are given.
STAGES = ("registered_only", "first_time_visitor", "returning_visitor", "one_time_buyer", "repeat_buyer",
          "lapsed_buyer")


def _sessions(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Sessions per visitor up to *as_of*: ``visitor_type, visitor_id, sessions``.

    Devices are stitched to customers with :func:`crm_analytics.ingest.identity.stitch_events`, using only
    events up to *as_of* (what was known then). Events in a
    :class:`~crm_analytics.ingest.tables.ParquetTable` are stitched and counted in the engine.
    """
    if isinstance(events, ParquetTable):
        return _sessions_engine(events, as_of)
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


def _sessions_engine(events: ParquetTable, as_of: pd.Timestamp) -> pd.DataFrame:
    """:func:`_sessions` of events too big for pandas: the same stitching rule (a device seen with exactly
    one customer by *as_of* is that customer's) and distinct sessions per visitor, in the engine."""
    import ibis

    _require_table(events, ["ts", "customer_id", "anonymous_id", "session_id"], "events")
    with local_ibis() as db:
        ev = ibis_table(db, events, ["ts", "customer_id", "anonymous_id", "session_id"])
        ev = ev.filter(ev.ts <= ts_literal(as_of))
        pairs = ev.filter(ev.anonymous_id.notnull() & ev.customer_id.notnull())
        owners = pairs.group_by("anonymous_id").aggregate(n=pairs.customer_id.nunique(), owner=pairs.customer_id.min())
        owners = owners.filter(owners.n == 1).select("anonymous_id", "owner")
        j = ev.left_join(owners, "anonymous_id")
        cust = j.customer_id.coalesce(j.owner)
        j = j.select(visitor_type=ibis.ifelse(cust.notnull(), "customer", "anonymous"),
                     visitor_id=cust.coalesce(j.anonymous_id), session_id=j.session_id)
        j = j.filter(j.visitor_id.notnull() & j.session_id.notnull())
        got = j.group_by(["visitor_type", "visitor_id"]).aggregate(sessions=j.session_id.nunique()).to_pyarrow()
    out = got.to_pandas()
    return out.astype({"visitor_type": "string", "visitor_id": "string", "sessions": "int64"})


def recognise(orders: pd.DataFrame | ParquetTable, events: pd.DataFrame | ParquetTable | None,
              customers: pd.DataFrame | ParquetTable | None, as_of: Any,
              lapsed_after_days: float = 180) -> pd.DataFrame:
    """Lifecycle stage of every known customer and anonymous visitor at *as_of*.

    Stages: ``lapsed_buyer`` (last purchase more than *lapsed_after_days* ago), else ``repeat_buyer``
    (≥ 2 purchases), ``one_time_buyer``; people without a purchase: ``returning_visitor`` (≥ 2
    sessions), ``first_time_visitor`` (one session); with *customers* also ``registered_only``
    (a customer signed up by *as_of* with no session and no purchase).

    Parameters
    ----------
    orders : DataFrame or ParquetTable
        Clean orders (a ParquetTable is aggregated in the engine: :func:`~crm_analytics.features.rfm.rfm_table`).
    events : DataFrame, ParquetTable or None
        Clean events (``ts, customer_id, anonymous_id, session_id``). ``None``: only buyers are staged.
        Anonymous devices seen with exactly one customer are that customer (identity stitching);
        other anonymous visitors are counted by ``anonymous_id``.
    customers : DataFrame, ParquetTable or None
        Clean customers (``customer_id``, ``signup_ts`` when it has it); adds ``registered_only``
        customers when events are given.
    as_of : date or timestamp
    lapsed_after_days : float
        A buyer whose last purchase is older than this is lapsed.

    Returns
    -------
    DataFrame
        ``visitor_type`` (customer / anonymous), ``visitor_id`` (text), ``stage`` (categorical, :data:`STAGES`
        order), ``sessions`` (missing when *events* is ``None``), ``purchases``, ``days_since_last_purchase``
        (missing for non-buyers).
    """
    as_of = _timestamp(as_of, "as_of")
    if not np.isfinite(lapsed_after_days) or lapsed_after_days <= 0:
        raise ParamsError(f"lapsed_after_days={lapsed_after_days!r} must be a positive number of days")
    rfm = rfm_table(orders, as_of)
    # ids stay text in Arrow (not one Python object per customer: 10 M of them cost GBs and minutes to sort)
    people = pd.DataFrame({
        "visitor_type": pd.array(["customer"] * len(rfm), dtype="string"),
        "visitor_id": pd.array(rfm.index, dtype="string"),
        "purchases": rfm["orders"].to_numpy(),
        "days_since_last_purchase": rfm["recency_days"].to_numpy(),
    })
    if events is not None:
        sess = _sessions(events, as_of).astype({"visitor_type": "string", "visitor_id": "string"})
        people = people.merge(sess, on=["visitor_type", "visitor_id"], how="outer")
        if customers is not None:
            _require_table(customers, ["customer_id"], "customers")
            if isinstance(customers, ParquetTable):
                customers = customers.to_pandas([c for c in ("customer_id", "signup_ts") if c in customers.columns])
            reg = customers
            if "signup_ts" in customers:
                signup = _utc_naive(customers["signup_ts"], "customers.signup_ts")
                reg = customers.loc[(signup.isna() | (signup <= as_of.tz_localize(None))).to_numpy()]
            ids = pd.Index(pd.array(reg["customer_id"].dropna().unique(), dtype="string"))
            ids = ids.difference(pd.Index(people.loc[people["visitor_type"] == "customer", "visitor_id"]))
            people = pd.concat([people, pd.DataFrame({"visitor_type": pd.array(["customer"] * len(ids), dtype="string"),
                                                      "visitor_id": pd.array(ids, dtype="string")})],
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


def _index_of(x: Any, bounds: list[pd.Timestamp], *, strict_below: bool = False) -> Any:
    """Ibis: the number of *bounds* (increasing) below *x* — ``#{j: bounds[j] < x}``, or with
    *strict_below* ``#{j: bounds[j] <= x}`` — as one CASE expression (portable; null *x* gives ``len(bounds)``)."""
    import ibis

    if strict_below:  # #{j: b_j <= x}: the first j with x < b_j
        branches = [(x < ts_literal(b, strict_below=True), j) for j, b in enumerate(bounds)]
    else:  # #{j: b_j < x}: the first j with x <= b_j
        branches = [(x <= ts_literal(b), j) for j, b in enumerate(bounds)]
    return ibis.cases(*branches, else_=len(bounds))


def _int(x: Any) -> Any:
    """*x* as int64 (one type for the parts of a union)."""
    return x.cast("int64")


def _spans_to_counts(spans: pd.DataFrame, n: int) -> dict[str, np.ndarray]:
    """Per stage, the number of people in it at each of *n* period ends, from ``stage, lo, hi, people``
    rows (each person counted at every index in ``[lo, hi)``)."""
    out: dict[str, np.ndarray] = {}
    for stage, part in spans.groupby("stage", sort=False):
        lo, hi = part["lo"].to_numpy(dtype="int64"), part["hi"].to_numpy(dtype="int64")
        w = part["people"].to_numpy(dtype="int64")
        keep = lo < hi
        diff = np.zeros(n + 1, dtype="int64")
        np.add.at(diff, lo[keep], w[keep])
        np.add.at(diff, hi[keep], -w[keep])
        out[str(stage)] = np.cumsum(diff[:n])
    return out


def _buyer_spans(db: Any, orders: Any, ends: list[pd.Timestamp], lapsed_after_days: float) -> Any:
    """Ibis: ``stage, lo, hi, people`` of the buyers. Each purchase leaves its customer, until the next
    one, a one-time or repeat buyer (repeat after the first purchase) for *lapsed_after_days*, then lapsed;
    ``[lo, hi)`` are the period ends at which that holds."""
    import ibis

    n = len(ends)
    p = purchase_rows(db, orders)
    p = p.filter(p.order_ts.notnull())
    w = ibis.window(group_by="customer_id", order_by="order_ts")
    p = p.select(ts=p.order_ts, nxt=p.order_ts.lead().over(w), prv=p.order_ts.lag().over(w))
    lapse = [e - pd.Timedelta(days=float(lapsed_after_days)) for e in ends]
    p = p.select(a=_index_of(p.ts, ends), b=_index_of(p.ts, lapse, strict_below=True),
                 c=ibis.ifelse(p.nxt.isnull(), n, _index_of(p.nxt, ends)), repeat=p.prv.notnull())
    active = p.select(stage=ibis.ifelse(p.repeat, "repeat_buyer", "one_time_buyer"), lo=_int(p.a),
                      hi=_int(ibis.least(p.b, p.c)))
    lapsed = p.select(stage=ibis.literal("lapsed_buyer"), lo=_int(p.b), hi=_int(p.c))
    spans = active.union(lapsed)
    spans = spans.filter(spans.lo < spans.hi)
    return spans.group_by(["stage", "lo", "hi"]).aggregate(people=spans.count())


def _visitor_spans(db: Any, orders: Any, events: Any, customers: Any, ends: list[pd.Timestamp]) -> Any:
    """Ibis: ``stage, lo, hi, people`` of the people without a purchase at each period end: first-time and
    returning visitors (1 and ≥ 2 sessions), and with *customers* the registered-only customers.

    At period end j a device belongs to a customer when exactly one customer was seen on it by then
    (:func:`crm_analytics.ingest.identity.stitch_events` on the events up to j): from the first
    customer's first event on it (index j1) until a second customer appears (j2). Every (visitor,
    session) pair holds over a union of index ranges; per visitor the sessions are counted where those
    ranges start and end, so no pass per period is made.
    """
    import ibis

    n = len(ends)
    ev = ibis_table(db, events, ["ts", "customer_id", "anonymous_id", "session_id"])
    ev = ev.filter(ev.ts.notnull())
    # devices: the first two customers seen on each, by their first event together
    pairs = ev.filter(ev.anonymous_id.notnull() & ev.customer_id.notnull())
    pairs = pairs.group_by(["anonymous_id", "customer_id"]).aggregate(first=pairs.ts.min())
    rank = ibis.row_number().over(ibis.window(group_by="anonymous_id", order_by=["first", "customer_id"]))
    pairs = pairs.mutate(rank=rank)
    one = pairs.filter(pairs.rank == 0).select("anonymous_id", owner=pairs.customer_id,
                                                j1=_index_of(pairs.first, ends))
    two = pairs.filter(pairs.rank == 1).select(anonymous_id=pairs.anonymous_id, j2=_index_of(pairs.first, ends))
    devices = one.left_join(two, "anonymous_id").select("anonymous_id", "owner", "j1", j2=ibis.coalesce(ibis._.j2, n))
    # (visitor, session) ranges: a customer's own events from their first; a device's anonymous events
    # as its owner's while it has one, as the device's own before and after
    known = ev.filter(ev.customer_id.notnull() & ev.session_id.notnull())
    known = known.group_by(["customer_id", "session_id"]).aggregate(first=known.ts.min())
    ranges = [known.select(vtype=ibis.literal("customer"), vid=known.customer_id, sid=known.session_id,
                           lo=_int(_index_of(known.first, ends)), hi=_int(ibis.literal(n)))]
    anon = ev.filter(ev.customer_id.isnull() & ev.anonymous_id.notnull() & ev.session_id.notnull())
    anon = anon.group_by(["anonymous_id", "session_id"]).aggregate(first=anon.ts.min())
    anon = anon.mutate(f=_index_of(anon.first, ends)).left_join(devices, "anonymous_id")
    j1, j2 = anon.j1.coalesce(n), anon.j2.coalesce(n)
    ranges += [
        anon.select(vtype=ibis.literal("customer"), vid=anon.owner, sid=anon.session_id,
                    lo=_int(ibis.greatest(anon.f, j1)), hi=_int(j2)),
        anon.select(vtype=ibis.literal("anonymous"), vid=anon.anonymous_id, sid=anon.session_id, lo=_int(anon.f),
                    hi=_int(j1)),
        anon.select(vtype=ibis.literal("anonymous"), vid=anon.anonymous_id, sid=anon.session_id,
                    lo=_int(ibis.greatest(anon.f, j2)), hi=_int(ibis.literal(n))),
    ]
    r = ranges[0].union(ranges[1]).union(ranges[2]).union(ranges[3])
    r = r.filter(r.vid.notnull() & (r.lo < r.hi))
    # level 1: where each (visitor, session) starts and stops counting (overlapping ranges count once)
    steps = r.select("vtype", "vid", "sid", j=r.lo, d=_int(ibis.literal(1))).union(
        r.filter(r.hi < n).select("vtype", "vid", "sid", j=r.hi, d=_int(ibis.literal(-1))))
    steps = steps.group_by(["vtype", "vid", "sid", "j"]).aggregate(d=steps.d.sum())
    w1 = ibis.window(group_by=["vtype", "vid", "sid"], order_by="j")
    upto1 = ibis.cumulative_window(group_by=["vtype", "vid", "sid"], order_by="j")
    steps = steps.mutate(on=ibis.ifelse(steps.d.sum().over(upto1) > 0, 1, 0))
    steps = steps.mutate(change=steps.on - steps.on.lag().over(w1).coalesce(0))
    changes = steps.filter(steps.change != 0).select("vtype", "vid", "j", d=_int(steps.change))
    # level 2: sessions per visitor between its change points; every visitor (and registered customer) from 0
    people = r.select("vtype", "vid").distinct()
    reg = None
    if customers is not None:
        cust = ibis_table(db, customers, ["customer_id", "signup_ts"])
        cust = cust.filter(cust.customer_id.notnull())
        g = _index_of(cust.signup_ts, ends) if "signup_ts" in cust.columns else ibis.literal(0)
        if "signup_ts" in cust.columns:
            g = ibis.ifelse(cust.signup_ts.isnull(), 0, g)
        reg = cust.group_by("customer_id").aggregate(g=g.min()).select(
            vtype=ibis.literal("customer"), vid=ibis._.customer_id, g=ibis._.g)
        people = people.union(reg.select("vtype", "vid"))
    changes = changes.union(people.select("vtype", "vid", j=_int(ibis.literal(0)), d=_int(ibis.literal(0))))
    changes = changes.group_by(["vtype", "vid", "j"]).aggregate(d=changes.d.sum())
    w2 = ibis.window(group_by=["vtype", "vid"], order_by="j")
    upto2 = ibis.cumulative_window(group_by=["vtype", "vid"], order_by="j")
    seg = changes.mutate(sessions=changes.d.sum().over(upto2), until=changes.j.lead().over(w2).coalesce(n))
    # a buyer is staged by the purchases from the first one on (_buyer_spans)
    p = purchase_rows(db, orders)
    firsts = p.group_by("customer_id").aggregate(f=_index_of(p.order_ts.min(), ends)).select(
        vtype=ibis.literal("customer"), vid=ibis._.customer_id, f=ibis._.f)
    seg = seg.left_join(firsts, ["vtype", "vid"])
    hi = ibis.least(seg.until, seg.f.coalesce(n))
    seg = seg.select(lo=_int(seg.j), hi=_int(hi), sessions=seg.sessions, vtype=seg.vtype, vid=seg.vid)
    out = seg.filter(seg.sessions > 0).select(
        stage=ibis.ifelse(seg.sessions >= 2, "returning_visitor", "first_time_visitor"), lo=seg.lo, hi=seg.hi)
    if reg is not None:
        none = seg.filter(seg.sessions == 0).join(reg, ["vtype", "vid"])
        out = out.union(none.select(stage=ibis.literal("registered_only"), lo=_int(ibis.greatest(none.lo, none.g)),
                                    hi=none.hi))
    out = out.filter(out.lo < out.hi)
    return out.group_by(["stage", "lo", "hi"]).aggregate(people=out.count())


def _time_range(db: Any, orders: Any, events: Any) -> tuple[Any, Any]:
    """The first and last timestamp of the orders (and events), naive UTC, or ``(None, None)``."""
    firsts, lasts = [], []
    for data, col in ((orders, "order_ts"), (events, "ts")):
        if data is None:
            continue
        t = ibis_table(db, data, [col])
        got = t.aggregate(lo=t[col].min(), hi=t[col].max()).to_pyarrow().to_pylist()[0]
        if got["lo"] is not None:
            firsts.append(pd.Timestamp(got["lo"]))
            lasts.append(pd.Timestamp(got["hi"]))
    if not firsts:
        return None, None
    naive = [(x.tz_convert("UTC").tz_localize(None) if x.tzinfo is not None else x) for x in (min(firsts), max(lasts))]
    return naive[0], naive[1]


def stage_trend(orders: pd.DataFrame | ParquetTable, events: pd.DataFrame | ParquetTable | None = None,
                freq: str = "M", *, customers: pd.DataFrame | ParquetTable | None = None,
                lapsed_after_days: float = 180) -> pd.DataFrame:
    """Number of people in each lifecycle stage at the end of every period.

    The counts equal :func:`recognise` at each period end (what was known then: purchases, events and
    device stitching up to that moment), computed in one pass in the engine: each purchase says
    over which period ends its customer is a one-time, repeat or lapsed buyer, each (visitor,
    session) over which period ends it counts, so only the counts come back (no full table per period;
    the 29.6 M orders of a 10,000,000-customer shop or tens of millions of events stay in the engine).

    Parameters
    ----------
    orders, events, customers
        As for :func:`recognise` (DataFrames or :class:`~crm_analytics.ingest.tables.ParquetTable`).
    freq : str
        A pandas period frequency: ``"M"`` months, ``"Q"`` quarters, ``"W"`` weeks.
    lapsed_after_days : float
        A buyer whose last purchase is older than this (days) is lapsed.

    Returns
    -------
    DataFrame
        One row per period (index: period label) with ``as_of`` (period end, or the last
        observed timestamp for the final, unfinished period), ``complete`` (whether the period had
        ended by then) and one count column per stage of :data:`STAGES`.
    """
    _require_table(orders, ["customer_id", "order_ts", "status", "order_total"], "orders")
    if events is not None:
        _require_table(events, ["ts", "customer_id", "anonymous_id", "session_id"], "events")
    if customers is not None:
        _require_table(customers, ["customer_id"], "customers")
    if not np.isfinite(lapsed_after_days) or lapsed_after_days <= 0:
        raise ParamsError(f"lapsed_after_days={lapsed_after_days!r} must be a positive number of days")
    if isinstance(orders, pd.DataFrame):
        _utc_naive(orders["order_ts"], "orders.order_ts")
    if isinstance(events, pd.DataFrame):
        _utc_naive(events["ts"], "events.ts")
    with local_ibis() as db:
        first, last = _time_range(db, orders, events)
        if first is None:
            raise DataContractError("stage_trend: orders (and events) hold no timestamps")
        try:
            periods = pd.period_range(first, last, freq=freq)
        except (TypeError, ValueError) as exc:
            raise ParamsError(f"freq={freq!r} is not a pandas period frequency; use 'M', 'Q' or 'W'") from exc
        ends = [min(p.end_time.floor("us"), last).tz_localize("UTC") for p in periods]
        spans = _buyer_spans(db, orders, ends, lapsed_after_days)
        if events is not None:
            spans = spans.union(_visitor_spans(db, orders, events, customers, ends))
        got = spans.to_pyarrow().to_pandas()
    counts = _spans_to_counts(got, len(ends))
    out = pd.DataFrame({"period": [str(p) for p in periods], "as_of": ends,
                        "complete": [bool(p.end_time <= last) for p in periods]})
    for s in STAGES:
        out[s] = counts.get(s, np.zeros(len(ends), dtype="int64")).astype("int64")
    out = out.set_index("period")
    if events is None or customers is None:
        out = out.drop(columns=["registered_only"])
    if events is None:
        out = out.drop(columns=["first_time_visitor", "returning_visitor"])
    return out

"""On-site behaviour: sessions, conversion by breakdown, product interest, paths and the
demo-world truth check. The funnel, time between steps and cart abandonment are in
:mod:`crm_analytics.models.funnel`, site search in :mod:`crm_analytics.models.site_search`.

Every function that reads events takes a clean ``events`` DataFrame or a
:class:`crm_analytics.ingest.tables.ParquetTable` (a large log stays on disk: DuckDB scans the file).
The heavy steps (sessionisation, per-session and per-product counts, transitions, paths) are Ibis
expressions run by the in-process DuckDB of :func:`crm_analytics.ingest.tables.local_ibis`; the same
expressions run on Spark or a warehouse. Results are small pandas frames for the report.

Session rule
------------
- Site events only: ``email_open``, ``email_click`` and ``push_open`` (:data:`MESSAGE_EVENT_TYPES`)
  happen in a mail client or on a lock screen, not on the site, so they start no session and
  belong to none. Every other event type counts (unknown types of a shop's own tracker too).
- The data's ``session_id`` is used as it is when an event has one: the tracker that wrote it knows
  about tabs, app restarts and midnight rules we cannot see, and the shop's own dashboards count
  those sessions. A provided session is **not** split at long gaps (then our counts equal the
  shop's; the demo generator's sessions never hold a 30-minute gap).
- Events without a ``session_id`` (or a log without the column) are grouped per device
  (``anonymous_id``, else ``customer_id``) into sessions that end after ``inactivity_minutes``
  without an event (the Google Analytics rule, 30 minutes by default). Their session ids are
  ``"<device>#<n>"``.
- Events in a session are ordered by ``ts``, then ``event_id``.

Visitors, new and returning
---------------------------
A session's visitor is its customer (``customer_id`` of any of its events, or the customer an
``anonymous_id`` is seen with when it is seen with exactly one: the stitching rule of
:func:`crm_analytics.ingest.identity.stitch_events`), else its ``anonymous_id``. A visitor's first session
*in the data* is ``new``, later ones ``returning``; visitors who came before the data start are
counted as new once (left censoring: look at ``visitor_type`` only well after the data start).
"""

from __future__ import annotations

from typing import Any, Sequence

import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from crm_analytics.models.campaigns import holm, newcombe_interval, wilson_interval
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ParquetTable, local_ibis

__all__ = [
    "FUNNEL_STEPS",
    "MESSAGE_EVENT_TYPES",
    "EVENT_COLUMNS",
    "sessions",
    "add_breakdowns",
    "conversion_rate",
    "conversion_change",
    "product_interest",
    "interest_gaps",
    "rising_interest",
    "transitions",
    "transition_matrix",
    "common_paths",
    "next_items",
    "session_stats",
    "truth_check",
]

#: The purchase funnel, in order. A session *reaches* a step when it holds at least one event of it.
FUNNEL_STEPS = ("product_view", "add_to_cart", "checkout_start", "purchase")

#: Event types that are not site activity (they open no session).
MESSAGE_EVENT_TYPES = ("email_open", "email_click", "push_open")

#: Columns of the canonical events table this module reads (only ``ts`` and ``event_type`` are required).
EVENT_COLUMNS = ("event_id", "ts", "customer_id", "anonymous_id", "session_id", "channel", "device", "event_type",
                 "product_id", "search_query", "results_count", "order_id")

_STRING_COLUMNS = ("event_id", "customer_id", "anonymous_id", "session_id", "channel", "device", "product_id",
                   "search_query", "order_id")

UNKNOWN = "(unknown)"

#: Page types in the order tables and charts show them.
PAGE_ORDER = ("entry", "page_view", "login", "search", "product_view", "add_to_cart", "remove_from_cart",
              "checkout_start", "purchase", "exit")


# --------------------------------------------------------------------------------------------
# the event source and sessionisation (shared with funnel.py and site_search.py)
# --------------------------------------------------------------------------------------------
def _columns_of(events: Any) -> list[str]:
    if isinstance(events, ParquetTable):
        return list(events.columns)
    if isinstance(events, pd.DataFrame):
        return list(events.columns)
    raise DataContractError(f"events must be a pandas DataFrame or a tables.ParquetTable, got {type(events).__name__}")


def _check_minutes(inactivity_minutes: float) -> None:
    if not (isinstance(inactivity_minutes, (int, float)) and np.isfinite(inactivity_minutes) and inactivity_minutes > 0):
        raise ParamsError(f"inactivity_minutes={inactivity_minutes!r} must be a positive number of minutes "
                          "(30 is the usual web-analytics rule)")


def _source(db: Any, events: Any) -> Any:
    """*events* as an Ibis table with every column of :data:`EVENT_COLUMNS` (missing ones null)."""
    import ibis

    have = _columns_of(events)
    missing = [c for c in ("ts", "event_type") if c not in have]
    if missing:
        raise DataContractError(f"events: required column(s) {missing} not found; the table has {have}. "
                                "Map the tracker's columns to the canonical names (params source.tables.events.columns)")
    use = [c for c in EVENT_COLUMNS if c in have]
    if isinstance(events, ParquetTable):
        ts_type = pq.read_schema(str(events.path)).field("ts").type
        if not (pa.types.is_timestamp(ts_type) and ts_type.unit in ("s", "ms", "us")):
            raise DataContractError(f"{events.path}: column 'ts' is {ts_type}, not a timestamp at microsecond "
                                    "precision or coarser; write clean events with notebook 01 (the contract "
                                    "stores microseconds)")
        t = db.parquet(events.path)
    else:
        frame = events[use]
        ts = frame["ts"]
        if not pd.api.types.is_datetime64_any_dtype(ts):
            raise DataContractError(f"events.ts has dtype {ts.dtype}, not timestamps; clean the events first "
                                    "(notebook 01) or parse ts with pd.to_datetime(..., utc=True)")
        if getattr(ts.dt, "tz", None) is None:
            ts = ts.dt.tz_localize("UTC")
        if ts.dt.unit == "ns":  # DuckDB behind Ibis takes microseconds (the contract's precision)
            ts = ts.dt.floor("us").dt.as_unit("us")
        frame = frame.assign(ts=ts)
        t = db.table(pa.Table.from_pandas(frame, preserve_index=False))
    fill = {}
    for c in EVENT_COLUMNS:
        if c not in have:
            fill[c] = ibis.null().cast("int64" if c == "results_count" else "string")
        elif c in _STRING_COLUMNS and not t[c].type().is_string():
            fill[c] = t[c].cast("string")
    if fill:
        t = t.mutate(**fill)
    if "event_id" not in have:
        t = t.mutate(event_id=ibis.row_number().cast("string"))
    return t.select(*EVENT_COLUMNS)


def _session_rows(db: Any, events: Any, inactivity_minutes: float = 30) -> Any:
    """Site events with ``session_key``, ``person`` (known or stitched customer, or null) and
    ``device_key``, as an Ibis table; no ordering within sessions (cheap: a window runs only over
    events that lack a session id)."""
    import ibis

    _check_minutes(inactivity_minutes)
    t = _source(db, events)
    t = t.filter(t.ts.notnull() & t.event_type.notnull() & ~t.event_type.isin(list(MESSAGE_EVENT_TYPES)))
    # stitching: an anonymous_id seen with exactly one customer is that customer
    known = t.filter(t.customer_id.notnull() & t.anonymous_id.notnull())
    owners = known.group_by("anonymous_id").aggregate(n_owner=known.customer_id.nunique(),
                                                      owner=known.customer_id.max())
    owners = owners.filter(owners.n_owner == 1).select(owner_anon="anonymous_id", owner="owner")
    t = t.left_join(owners, t.anonymous_id == owners.owner_anon).drop("owner_anon")
    t = t.mutate(person=ibis.coalesce(t.customer_id, t.owner)).drop("owner")
    # sessions: the data's session_id, else inactivity gaps per device
    t = t.mutate(device_key=ibis.coalesce(t.anonymous_id, t.customer_id, ibis.literal("(no id)")))
    given = t.filter(t.session_id.notnull()).mutate(session_key=t.session_id)
    rest = t.filter(t.session_id.isnull())
    w = ibis.window(group_by=rest.device_key, order_by=[rest.ts, rest.event_id])
    rest = rest.mutate(prev_ts=rest.ts.lag().over(w))
    # compared as timestamps, to the microsecond on every engine (epoch seconds are whole seconds)
    limit = ibis.interval(int(round(inactivity_minutes * 60_000_000)), unit="us")
    rest = rest.mutate(starts=ibis.ifelse(rest.prev_ts.isnull() | (rest.ts > rest.prev_ts + limit), 1, 0))
    rest = rest.mutate(n=rest.starts.sum().over(ibis.window(group_by=rest.device_key, order_by=[rest.ts, rest.event_id],
                                                            rows=(None, 0))))
    rest = rest.mutate(session_key=rest.device_key.concat("#", rest.n.cast("string"))).drop("prev_ts", "starts", "n")
    return given.union(rest)


def _session_events(db: Any, events: Any, inactivity_minutes: float = 30) -> Any:
    """Site events with ``session_key``, ``visitor_id``, ``person`` (known or stitched customer or
    null) and ``seq`` (0, 1, … within the session), as an Ibis table (for paths, searches and
    carts, which need the order of events within a session)."""
    import ibis

    t = _session_rows(db, events, inactivity_minutes)
    ws = ibis.window(group_by=t.session_key)
    t = t.mutate(visitor_id=ibis.coalesce(t.person.max().over(ws), t.anonymous_id.max().over(ws), t.device_key),
                 session_person=t.person.max().over(ws))
    t = t.mutate(seq=ibis.row_number().over(ibis.window(group_by=t.session_key, order_by=[t.ts, t.event_id])))
    return t


#: the order of events within a session: time, then event id (DuckDB's ``arg_min`` over a struct key)
_ORDER_KEY = dt.Struct({"ts": dt.Timestamp(timezone="UTC", scale=6), "id": dt.string})


def _first_last(name: str):
    def by(arg: str, key: _ORDER_KEY) -> str:  # type: ignore[empty-body, valid-type]
        ...

    by.__name__ = f"_{name}"
    by.__doc__ = (f"``{name}(arg, key)`` in DuckDB, Spark and Trino: *arg* on the row with the "
                  f"{'smallest' if name == 'min_by' else 'largest'} *key*, without sorting the group (Ibis's "
                  "``argmin`` is an ordered aggregate on DuckDB).")
    import ibis

    return ibis.udf.agg.builtin(name=name)(by)


_first_by, _last_by = _first_last("min_by"), _first_last("max_by")


def _utc(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamp columns of a DuckDB result as tz-aware UTC."""
    for c in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[c]) and getattr(frame[c].dt, "tz", None) is None:
            frame[c] = frame[c].dt.tz_localize("UTC")
    return frame


# --------------------------------------------------------------------------------------------
# 1. sessions
# --------------------------------------------------------------------------------------------
def sessions(events: Any, *, inactivity_minutes: float = 30, customers: pd.DataFrame | None = None,
             orders: pd.DataFrame | None = None, segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per site session (see the module notes for the session and new/returning rules).

    Parameters
    ----------
    events : DataFrame or ParquetTable
        Clean events (``ts`` and ``event_type`` required; ``session_id``, ``customer_id``,
        ``anonymous_id``, ``channel``, ``device``, ``order_id`` used when present).
    inactivity_minutes : float
        Gap that ends a session, for events without a ``session_id``.
    customers : DataFrame, optional
        Clean customers; adds ``acquisition_channel`` of the session's customer.
    orders : DataFrame, optional
        Clean orders; adds ``order_value`` (``order_total`` of the purchase's ``order_id``).
    segments : DataFrame, optional
        ``customer_id, segment``; adds ``segment`` (see :func:`add_breakdowns`).

    Returns
    -------
    DataFrame
        ``session_id, visitor_id, customer_id`` (known or stitched, else missing), ``channel,
        device`` (of the first event), ``visitor_type`` (new / returning), ``session_number`` (1 for
        the visitor's first), ``landing_type`` and ``exit_type`` (event type of the first and last
        event), ``events, product_views, searches, start_ts, end_ts, duration_seconds``, for each
        step of :data:`FUNNEL_STEPS` ``has_<step>`` and ``first_<step>_ts``, ``converted`` (a
        purchase event), ``order_id`` (of the first purchase), ``order_value`` (with *orders*),
        ``week`` (Monday of the start, a date), ``month`` (``YYYY-MM``), and the columns
        :func:`add_breakdowns` adds. Sorted by ``start_ts, session_id``.

    Examples
    --------
    >>> ev = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01 10:00", "2024-01-01 10:05", "2024-01-01 11:00"], utc=True),
    ...                    "anonymous_id": ["a"] * 3, "event_type": ["page_view", "product_view", "product_view"]})
    >>> s = sessions(ev)
    >>> s[["session_id", "visitor_type", "events", "product_views", "duration_seconds"]].values.tolist()
    [['a#1', 'new', 2, 1, 300.0], ['a#2', 'returning', 1, 1, 0.0]]
    """
    import ibis

    with local_ibis() as db:
        t = _session_rows(db, events, inactivity_minutes)
        et = t.event_type
        order = ibis.struct({"ts": t.ts.cast(_ORDER_KEY["ts"]), "id": t.event_id})
        aggs = dict(
            person=t.person.max(), anon=t.anonymous_id.max(), device_key=t.device_key.max(),
            channel=_first_by(t.channel, order), device=_first_by(t.device, order),
            landing_type=_first_by(et, order), exit_type=_last_by(et, order),
            events=t.count(), product_views=(et == "product_view").cast("int64").sum(),
            searches=(et == "search").cast("int64").sum(),
            start_ts=t.ts.min(), end_ts=t.ts.max(),
            order_id=ibis.ifelse(et == "purchase", t.order_id, None).min(),
        )
        for step in FUNNEL_STEPS:
            aggs[f"first_{step}_ts"] = ibis.ifelse(et == step, t.ts, None).min()
        s = t.group_by(session_id=t.session_key).aggregate(**aggs)
        s = s.mutate(visitor_id=ibis.coalesce(s.person, s.anon, s.device_key), customer_id=s.person)
        s = s.drop("person", "anon", "device_key")
        wv = ibis.window(group_by=s.visitor_id, order_by=[s.start_ts, s.session_id])
        s = s.mutate(session_number=(ibis.row_number().over(wv) + 1).cast("int64"),
                     duration_seconds=(s.end_ts.epoch_seconds() - s.start_ts.epoch_seconds()).cast("float64"))
        out = s.order_by([s.start_ts, s.session_id]).to_pyarrow().to_pandas()
    out = _utc(out)
    out["visitor_type"] = np.where(out["session_number"] == 1, "new", "returning")
    for step in FUNNEL_STEPS:
        out[f"has_{step}"] = out[f"first_{step}_ts"].notna()
    out["converted"] = out["has_purchase"]
    for c in ("events", "product_views", "searches"):
        out[c] = out[c].astype("int64")
    if orders is not None and len(out):
        _need(orders, ["order_id", "order_total"], "orders")
        value = orders.drop_duplicates("order_id").set_index("order_id")["order_total"]
        out["order_value"] = out["order_id"].map(value).astype("float64")
    start = out["start_ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    out["week"] = (start.dt.normalize() - pd.to_timedelta(start.dt.day_of_week, unit="D")).dt.date
    out["month"] = start.dt.strftime("%Y-%m")
    first = ["session_id", "visitor_id", "customer_id", "channel", "device", "visitor_type", "session_number",
             "landing_type", "exit_type", "events", "product_views", "searches", "start_ts", "end_ts",
             "duration_seconds"]
    steps = [f"has_{s}" for s in FUNNEL_STEPS] + [f"first_{s}_ts" for s in FUNNEL_STEPS]
    rest = [c for c in ("converted", "order_id", "order_value", "week", "month") if c in out.columns]
    out = out[first + steps + rest]
    return add_breakdowns(out, customers=customers, segments=segments)


def _need(df: Any, columns: Sequence[str], name: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataContractError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataContractError(f"{name}: column(s) {missing} not found; the frame has {list(df.columns)}")


def add_breakdowns(sessions_df: pd.DataFrame, *, customers: pd.DataFrame | None = None,
                   segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """*sessions_df* with ``acquisition_channel`` (from *customers*) and ``segment`` (from *segments*,
    a frame ``customer_id, segment`` such as the segmentation notebook writes) of the session's
    customer; anonymous sessions and customers without a value get ``"(unknown)"``."""
    out = sessions_df.copy()
    for frame, col, name in ((customers, "acquisition_channel", "customers"), (segments, "segment", "segments")):
        if frame is None:
            continue
        if col not in frame.columns and frame.index.name == "customer_id":
            frame = frame.reset_index()
        _need(frame, ["customer_id", col], name)
        lookup = frame.dropna(subset=["customer_id"]).drop_duplicates("customer_id").set_index("customer_id")[col]
        out[col] = out["customer_id"].map(lookup).astype("object").fillna(UNKNOWN)
    return out


# --------------------------------------------------------------------------------------------
# 2. conversion
# --------------------------------------------------------------------------------------------
def _by_list(by: str | Sequence[str] | None) -> list[str]:
    return [] if by is None else [by] if isinstance(by, str) else list(by)


def _group_sums(frame: pd.DataFrame, by: list[str], flags: dict[str, Any]) -> pd.DataFrame:
    """Rows and sums of boolean expressions per group of *by*, counted by DuckDB (via Ibis).
    *flags* maps output names to functions of the Ibis table returning a boolean column."""
    _need(frame, by, "sessions")
    data = frame[by + sorted({c for c in frame.columns if c not in by})]
    data = data.assign(**{c: data[c].astype("object").where(data[c].notna(), UNKNOWN).astype(str) for c in by})
    keep = [c for c in data.columns if c in by or not pd.api.types.is_object_dtype(data[c])
            or c in ("visitor_id",)]
    with local_ibis() as db:
        t = db.table(data[keep])
        aggs = {"n": t.count()}
        aggs.update({k: f(t).cast("int64").sum() for k, f in flags.items()})
        expr = t.group_by(by).aggregate(**aggs) if by else t.aggregate(**aggs)
        out = expr.to_pyarrow().to_pandas()
    out = out.sort_values(by, ignore_index=True) if by else out
    for c in ["n", *flags]:
        out[c] = out[c].fillna(0).astype("int64")
    return out


def conversion_rate(sessions_df: pd.DataFrame, by: str | Sequence[str] | None = None, *, outcome: str = "converted",
                    alpha: float = 0.05) -> pd.DataFrame:
    """Share of sessions with *outcome* per group, with Wilson score intervals.

    Works on :func:`sessions` (``by`` e.g. ``"channel"``, ``"device"``, ``"visitor_type"``,
    ``"segment"``, ``"acquisition_channel"``, ``"week"``, ``"month"``) and on any one-row-per-session
    frame with a 0/1 or boolean outcome column (e.g. UCI online shoppers: ``outcome="Revenue"``).

    Returns
    -------
    DataFrame
        the *by* columns, ``sessions``, ``conversions``, ``rate``, ``rate_low``, ``rate_high``
        (coverage ``1 - alpha``); a missing group value is ``"(unknown)"``.

    Examples
    --------
    >>> s = pd.DataFrame({"device": ["ios", "ios", "web", "web"], "converted": [True, False, False, False]})
    >>> conversion_rate(s, "device")[["device", "sessions", "conversions", "rate"]].values.tolist()
    [['ios', 2, 1, 0.5], ['web', 2, 0, 0.0]]
    """
    by_cols = _by_list(by)
    _need(sessions_df, by_cols + [outcome], "sessions")
    y = sessions_df[outcome]
    if not (pd.api.types.is_bool_dtype(y) or y.dropna().isin([0, 1]).all()):
        raise DataContractError(f"sessions.{outcome} must be boolean or 0/1, found values "
                                f"{sorted(map(str, y.dropna().unique()))[:5]}")
    frame = sessions_df[by_cols].assign(_y=y.fillna(False).astype(bool))
    counts = _group_sums(frame, by_cols, {"conversions": lambda t: t._y})
    counts = counts.rename(columns={"n": "sessions"})
    counts = counts[counts["sessions"] > 0].reset_index(drop=True)
    low, high = wilson_interval(counts["conversions"], counts["sessions"], alpha)
    counts["rate"] = counts["conversions"] / counts["sessions"]
    counts["rate_low"], counts["rate_high"] = low, high
    return counts[by_cols + ["sessions", "conversions", "rate", "rate_low", "rate_high"]]


def conversion_change(sessions_df: pd.DataFrame, *, period: str = "week", by: str | Sequence[str] | None = None,
                      outcome: str = "converted", alpha: float = 0.05) -> pd.DataFrame:
    """Conversion rate per *period* (``"week"`` or ``"month"``) and its change against the previous
    period of the same group: the difference in percentage points with Newcombe's hybrid score
    interval (:func:`crm_analytics.models.campaigns.newcombe_interval`).

    Returns
    -------
    DataFrame
        the *by* columns, *period*, ``sessions, conversions, rate, rate_low, rate_high``,
        ``previous_rate``, ``change_points`` (100 × difference), ``change_low``, ``change_high``
        (points) and ``change_significant`` (the interval excludes 0). The first period of each
        group has no previous one (missing change).
    """
    if period not in ("week", "month"):
        raise ParamsError(f"period must be one of ['week', 'month'], got {period!r}")
    by_cols = _by_list(by)
    rates = conversion_rate(sessions_df, by_cols + [period], outcome=outcome, alpha=alpha)
    rates = rates.sort_values(by_cols + [period], ignore_index=True)
    prev = rates.groupby(by_cols, sort=False)[["sessions", "conversions", "rate"]].shift(1) if by_cols else \
        rates[["sessions", "conversions", "rate"]].shift(1)
    rates["previous_rate"] = prev["rate"]
    ok = prev["sessions"].notna().to_numpy()
    change, lo, hi = (np.full(len(rates), np.nan) for _ in range(3))
    if ok.any():
        low, high = newcombe_interval(rates.loc[ok, "conversions"], rates.loc[ok, "sessions"],
                                      prev.loc[ok, "conversions"], prev.loc[ok, "sessions"], alpha)
        change[ok] = 100 * (rates.loc[ok, "rate"] - prev.loc[ok, "rate"]).to_numpy()
        lo[ok], hi[ok] = 100 * np.asarray(low), 100 * np.asarray(high)
    rates["change_points"], rates["change_low"], rates["change_high"] = change, lo, hi
    rates["change_significant"] = ok & ((lo > 0) | (hi < 0))
    return rates


# --------------------------------------------------------------------------------------------
# 6. product interest and demand
# --------------------------------------------------------------------------------------------
def _purchase_lines(order_lines: pd.DataFrame, orders: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    _need(order_lines, ["order_id", "product_id"], "order_lines")
    _need(orders, ["order_id", "order_ts", "status"], "orders")
    o = orders[orders["status"].isin(PURCHASE_STATUSES) & orders["order_ts"].between(start, end)]
    lines = order_lines[order_lines["order_id"].isin(o["order_id"])]
    qty = lines["quantity"] if "quantity" in lines else pd.Series(1.0, index=lines.index)
    return pd.DataFrame({"product_id": lines["product_id"].astype(str).to_numpy(), "units": qty.to_numpy(dtype=float),
                         "order_id": lines["order_id"].to_numpy()})


def product_interest(events: Any, *, products: pd.DataFrame | None = None, order_lines: pd.DataFrame | None = None,
                     orders: pd.DataFrame | None = None, level: str = "product",
                     inactivity_minutes: float = 30) -> pd.DataFrame:
    """Views, add-to-carts and purchases per product (or per category).

    Purchases come from *order_lines* of purchase orders (completed or returned) placed while the
    events were recorded (first to last event), when *order_lines* and *orders* are given;
    otherwise from ``purchase`` events that carry a ``product_id`` (the demo's purchase events carry
    an order, not a product: pass the order lines).

    Returns
    -------
    DataFrame
        ``product_id`` (and ``name, category`` with *products*) or ``category``; ``views``,
        ``view_sessions`` (sessions with a view), ``carts`` (add-to-cart events), ``purchases``
        (units), ``orders`` (orders or purchase events with it), ``cart_per_view`` (carts / views),
        ``purchase_per_view`` (purchases / views). Sorted by views, most first.
    """
    if level not in ("product", "category"):
        raise ParamsError(f"level must be one of ['product', 'category'], got {level!r}")
    import ibis

    with local_ibis() as db:
        # sessions without the order inside them (no window over every event), and one pass: the span of the
        # product events is the earliest first and the latest last time of the products
        t = _session_rows(db, events, inactivity_minutes)
        t = t.filter(t.product_id.notnull())
        et = t.event_type
        agg = t.group_by("product_id").aggregate(
            views=(et == "product_view").cast("int64").sum(),
            view_sessions=ibis.ifelse(et == "product_view", t.session_key, None).nunique(),
            carts=(et == "add_to_cart").cast("int64").sum(),
            event_purchases=(et == "purchase").cast("int64").sum(),
            first_ts=t.ts.min(), last_ts=t.ts.max(),
        )
        counts = agg.to_pyarrow().to_pandas()
    span = _utc(pd.DataFrame({"start": [counts["first_ts"].min()], "end": [counts["last_ts"].max()]}))
    counts = counts.drop(columns=["first_ts", "last_ts"])
    counts["product_id"] = counts["product_id"].astype(str)
    if order_lines is not None and orders is not None:
        bought = _purchase_lines(order_lines, orders, span["start"].iloc[0], span["end"].iloc[0])
        per = bought.groupby("product_id").agg(purchases=("units", "sum"), orders=("order_id", "nunique"))
        counts = counts.merge(per, left_on="product_id", right_index=True, how="outer")
    else:
        counts["purchases"] = counts["event_purchases"]
        counts["orders"] = counts["event_purchases"]
    counts = counts.drop(columns="event_purchases")
    for c in ("views", "view_sessions", "carts", "orders"):
        counts[c] = counts[c].fillna(0).astype("int64")
    counts["purchases"] = counts["purchases"].fillna(0).astype("float64")
    keys = ["product_id"]
    if products is not None:
        _need(products, ["product_id"], "products")
        cols = [c for c in ("name", "category") if c in products.columns]
        info = products.drop_duplicates("product_id").assign(product_id=lambda p: p["product_id"].astype(str))
        counts = counts.merge(info[["product_id", *cols]], on="product_id", how="left")
        keys += cols
    if level == "category":
        if "category" not in counts.columns:
            raise DataContractError("product_interest(level='category') needs products with a 'category' column")
        counts["category"] = counts["category"].astype("object").fillna(UNKNOWN)
        counts = counts.groupby("category", as_index=False)[["views", "view_sessions", "carts", "purchases",
                                                              "orders"]].sum()
        keys = ["category"]
    counts["cart_per_view"] = counts["carts"] / counts["views"].where(counts["views"] > 0)
    counts["purchase_per_view"] = counts["purchases"] / counts["views"].where(counts["views"] > 0)
    counts = counts.sort_values(["views", keys[0]], ascending=[False, True], ignore_index=True)
    return counts[keys + ["views", "view_sessions", "carts", "purchases", "orders", "cart_per_view",
                          "purchase_per_view"]]


def interest_gaps(interest: pd.DataFrame, *, min_views: int = 30, n: int = 10) -> dict[str, pd.DataFrame]:
    """Products that get attention but no sales, and products that sell without much attention.

    Rules (on :func:`product_interest`):

    - ``attention_no_sales``: at least *min_views* views, and purchases per view below the median
      of products with at least *min_views* views; the most viewed first.
    - ``sales_without_attention``: at least one purchase, and views in the bottom quarter of
      products with a purchase; the most purchases per view first.

    Returns a dict of the two frames (at most *n* rows each, columns of *interest*).
    """
    _need(interest, ["views", "purchases", "purchase_per_view"], "interest")
    seen = interest[interest["views"] >= min_views]
    bar = seen["purchase_per_view"].median() if len(seen) else np.nan
    attention = seen[seen["purchase_per_view"] < bar].sort_values(["views", "purchase_per_view"],
                                                                  ascending=[False, True])
    sold = interest[interest["purchases"] > 0]
    quiet = sold["views"].quantile(0.25) if len(sold) else np.nan
    ratio = sold["purchases"] / sold["views"].clip(lower=1)
    sales = sold.assign(_r=ratio)[sold["views"] <= quiet].sort_values(["_r", "purchases"], ascending=False).drop(
        columns="_r")
    return {"attention_no_sales": attention.head(n).reset_index(drop=True),
            "sales_without_attention": sales.head(n).reset_index(drop=True)}


def rising_interest(events: Any, *, as_of: Any = None, weeks: int = 4, min_views: int = 20, alpha: float = 0.05,
                    level: str = "product", products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Products (or categories) whose views rise faster than the whole site's.

    Rule: count views in the last *weeks* weeks up to *as_of* (default: the last event) and in the
    *weeks* weeks before. Site-wide, a share ``p0`` of all views of both windows falls in the recent
    one. For a product with ``n = recent + before >= min_views`` views, under "no change relative
    to the site" its recent count is Binomial(n, p0) (two Poisson counts conditioned on their sum).
    ``relative_ratio = (recent / before) / (p0 / (1 - p0))`` (1 = grows like the site), with an
    exact Clopper–Pearson interval carried over from the binomial share; ``p_value`` is the one-sided
    exact test of ``share > p0``, ``p_holm`` its Holm adjustment over the products tested, and
    ``rising`` is ``p_holm < alpha``.

    Returns
    -------
    DataFrame
        ``product_id`` or ``category``, ``views_recent, views_before, ratio`` (raw recent/before),
        ``relative_ratio, ratio_low, ratio_high, p_value, p_holm, rising``; products below
        *min_views* are left out. Most significant first.
    """
    if level not in ("product", "category"):
        raise ParamsError(f"level must be one of ['product', 'category'], got {level!r}")
    if int(weeks) != weeks or weeks < 1:
        raise ParamsError(f"weeks={weeks!r} must be a whole number of weeks >= 1")
    import ibis

    with local_ibis() as db:
        t = _source(db, events)
        t = t.filter((t.event_type == "product_view") & t.product_id.notnull())
        end = t.ts.max().to_pyarrow().as_py() if as_of is None else None
    end = pd.Timestamp(end if as_of is None else as_of)
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    mid, start = end - pd.Timedelta(weeks=weeks), end - pd.Timedelta(weeks=2 * weeks)
    with local_ibis() as db:
        t = _source(db, events)
        t = t.filter((t.event_type == "product_view") & t.product_id.notnull() & (t.ts > start) & (t.ts <= end))
        recent = t.ts > ibis.literal(mid)
        counts = t.group_by("product_id").aggregate(views_recent=recent.cast("int64").sum(),
                                                    views_before=(~recent).cast("int64").sum()).to_pyarrow().to_pandas()
    key = "product_id"
    if level == "category":
        if products is None or "category" not in products.columns:
            raise DataContractError("rising_interest(level='category') needs products with a 'category' column")
        cat = products.drop_duplicates("product_id").set_index(products["product_id"].astype(str).unique())["category"]
        counts["category"] = counts["product_id"].astype(str).map(cat).fillna(UNKNOWN)
        counts = counts.groupby("category", as_index=False)[["views_recent", "views_before"]].sum()
        key = "category"
    total_recent, total = counts["views_recent"].sum(), counts[["views_recent", "views_before"]].to_numpy().sum()
    cols = [key, "views_recent", "views_before", "ratio", "relative_ratio", "ratio_low", "ratio_high", "p_value",
            "p_holm", "rising"]
    if total == 0 or total_recent in (0, total):
        return pd.DataFrame(columns=cols)
    p0 = total_recent / total
    out = counts[(counts["views_recent"] + counts["views_before"]) >= min_views].copy()
    n = (out["views_recent"] + out["views_before"]).to_numpy()
    k = out["views_recent"].to_numpy()
    odds0 = p0 / (1 - p0)
    lo = stats.beta.ppf(alpha / 2, k, n - k + 1)
    hi = stats.beta.ppf(1 - alpha / 2, k + 1, n - k)
    lo, hi = np.where(k == 0, 0.0, lo), np.where(k == n, 1.0, hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = k / np.where(n - k > 0, n - k, np.nan)
        out["relative_ratio"] = out["ratio"] / odds0
        out["ratio_low"] = lo / (1 - lo) / odds0
        out["ratio_high"] = np.where(hi < 1, hi / (1 - hi), np.inf) / odds0
    out["p_value"] = stats.binom.sf(k - 1, n, p0)
    out["p_holm"] = holm(out["p_value"].to_numpy()) if len(out) else []
    out["rising"] = out["p_holm"] < alpha
    return out.sort_values(["p_value", key], ignore_index=True)[cols]


# --------------------------------------------------------------------------------------------
# 7. paths
# --------------------------------------------------------------------------------------------
def transitions(events: Any, *, inactivity_minutes: float = 30, collapse_repeats: bool = False) -> pd.DataFrame:
    """Counts of the next page type after each page type within sessions.

    ``entry`` → the landing type starts every session and the last event → ``exit`` ends it.
    With *collapse_repeats*, consecutive events of one type count once (``product_view`` →
    ``product_view`` disappears).

    Returns
    -------
    DataFrame
        ``from_type, to_type, transitions, share`` (of all transitions out of ``from_type``),
        ordered by from_type (funnel order) and most frequent first.
    """
    import ibis

    with local_ibis() as db:
        t = _session_events(db, events, inactivity_minutes)
        t = _collapsed(t) if collapse_repeats else t
        w = ibis.window(group_by=t.session_key, order_by=t.seq)
        t = t.mutate(from_type=t.event_type.lag().over(w), to_type=t.event_type,
                     nxt=t.event_type.lead().over(w))
        inner = t.select(from_type=ibis.coalesce(t.from_type, ibis.literal("entry")), to_type=t.to_type)
        exits = t.filter(t.nxt.isnull()).select(from_type=t.event_type, to_type=ibis.literal("exit"))
        allt = inner.union(exits)
        counts = allt.group_by(["from_type", "to_type"]).aggregate(transitions=allt.count()).to_pyarrow().to_pandas()
    counts["transitions"] = counts["transitions"].astype("int64")
    counts["share"] = counts["transitions"] / counts.groupby("from_type")["transitions"].transform("sum")
    counts["_o"] = counts["from_type"].map({k: i for i, k in enumerate(PAGE_ORDER)}).fillna(len(PAGE_ORDER))
    return counts.sort_values(["_o", "from_type", "transitions", "to_type"], ascending=[True, True, False, True],
                              ignore_index=True).drop(columns="_o")


def _collapsed(t: Any) -> Any:
    import ibis

    w = ibis.window(group_by=t.session_key, order_by=t.seq)
    t = t.mutate(_prev=t.event_type.lag().over(w))
    t = t.filter(t._prev.isnull() | (t._prev != t.event_type)).drop("_prev")
    return t.mutate(seq=ibis.row_number().over(ibis.window(group_by=t.session_key, order_by=t.seq)))


def transition_matrix(transitions_df: pd.DataFrame, *, value: str = "share") -> pd.DataFrame:
    """:func:`transitions` as a from × to matrix of *value* (``"share"`` or ``"transitions"``) for a
    heatmap: rows ``from_type`` (``entry`` first), columns ``to_type`` (``exit`` last), in funnel
    order, 0 where no transition was seen."""
    if value not in ("share", "transitions"):
        raise ParamsError(f"value must be one of ['share', 'transitions'], got {value!r}")
    m = transitions_df.pivot_table(index="from_type", columns="to_type", values=value, aggfunc="sum", fill_value=0)
    order = {k: i for i, k in enumerate(PAGE_ORDER)}
    rows = sorted(m.index, key=lambda k: (order.get(k, len(order)), k))
    cols = sorted(m.columns, key=lambda k: (order.get(k, len(order)), k))
    return m.loc[rows, cols].rename_axis(index="from_type", columns="to_type")


def common_paths(events: Any, *, outcome: str = "purchase", k: int = 5, n: int = 20,
                 inactivity_minutes: float = 30) -> pd.DataFrame:
    """The most common paths (page types, consecutive repeats collapsed) to a purchase or to an exit.

    ``outcome="purchase"``: in converting sessions, the steps up to and including the first
    purchase; ``outcome="exit"``: in sessions without a purchase, all steps, then ``exit``. Only the
    last *k* steps before the outcome are kept (how people end up there); a longer path starts with
    ``…``.

    Returns
    -------
    DataFrame
        ``path`` (steps joined by `` → ``), ``steps`` (kept), ``sessions``, ``share`` (of the
        sessions with that outcome); the *n* most common.
    """
    if outcome not in ("purchase", "exit"):
        raise ParamsError(f"outcome must be one of ['purchase', 'exit'], got {outcome!r}")
    if int(k) != k or k < 1:
        raise ParamsError(f"k={k!r} must be a whole number of steps >= 1")
    import ibis

    with local_ibis() as db:
        t = _collapsed(_session_events(db, events, inactivity_minutes))
        ws = ibis.window(group_by=t.session_key)
        t = t.mutate(buy_seq=ibis.ifelse(t.event_type == "purchase", t.seq, None).min().over(ws),
                     last_seq=t.seq.max().over(ws))
        if outcome == "purchase":
            t = t.filter(t.buy_seq.notnull() & (t.seq <= t.buy_seq)).mutate(end_seq=t.buy_seq)
        else:
            t = t.filter(t.buy_seq.isnull()).mutate(end_seq=t.last_seq)
        t = t.mutate(cut=t.end_seq - t.seq >= k)
        kept = t.filter(~t.cut)
        # step j = the event j steps before the outcome: k columns, not an ordered list (Spark's
        # collect_list takes no order), so every engine groups the same paths
        back = kept.end_seq - kept.seq
        names = [f"step_{j}" for j in range(int(k))]
        p = kept.group_by("session_key").aggregate(
            long=kept.end_seq.max() >= k,
            **{name: ibis.ifelse(back == j, kept.event_type, None).max() for j, name in enumerate(names)})
        paths = p.group_by([*names, "long"]).aggregate(sessions=p.count()).to_pyarrow().to_pandas()
    if paths.empty:
        return pd.DataFrame(columns=["path", "steps", "sessions", "share"])
    steps = paths[names[::-1]].to_numpy(dtype=object)  # oldest step first
    paths["path"] = [" → ".join(e for e in row if isinstance(e, str)) for row in steps]
    paths["steps"] = paths[names].notna().sum(axis=1).astype("int64")
    paths["path"] = np.where(paths["long"], "… → " + paths["path"], paths["path"])
    if outcome == "exit":
        paths["path"] = paths["path"] + " → exit"
    paths = paths.groupby(["path", "steps"], as_index=False)["sessions"].sum()
    paths["sessions"] = paths["sessions"].astype("int64")
    paths["share"] = paths["sessions"] / paths["sessions"].sum()
    return paths.sort_values(["sessions", "path"], ascending=[False, True], ignore_index=True).head(n)


def next_items(events: Any, *, n: int = 20, inactivity_minutes: float = 30, min_count: int = 1) -> pd.DataFrame:
    """Most common product → next product transitions between consecutive product views in a
    session (a product viewed twice in a row counts once). Works on a views-only log (DIGINETICA).

    Returns
    -------
    DataFrame
        ``product_id, next_product_id, transitions, share`` (of all transitions out of
        ``product_id``), at most *n* rows with at least *min_count* transitions, most frequent first.
    """
    import ibis

    with local_ibis() as db:
        t = _session_events(db, events, inactivity_minutes)
        t = t.filter((t.event_type == "product_view") & t.product_id.notnull())
        w = ibis.window(group_by=t.session_key, order_by=t.seq)
        t = t.mutate(nxt=t.product_id.lead().over(w))
        t = t.filter(t.nxt.notnull() & (t.nxt != t.product_id))
        out = t.group_by(["product_id", "nxt"]).aggregate(transitions=t.count()).to_pyarrow().to_pandas()
    out = out.rename(columns={"nxt": "next_product_id"})
    out["transitions"] = out["transitions"].astype("int64")
    out["share"] = out["transitions"] / out.groupby("product_id")["transitions"].transform("sum")
    out = out[out["transitions"] >= min_count]
    return out.sort_values(["transitions", "product_id", "next_product_id"], ascending=[False, True, True],
                           ignore_index=True).head(n)


def session_stats(sessions_df: pd.DataFrame) -> dict[str, Any]:
    """Headline numbers of :func:`sessions`: ``sessions, visitors, events_median, events_p90,
    duration_median_seconds, duration_p90_seconds, product_views_mean, single_event_share`` (bounces)
    and, when the data hold purchases, ``conversion_rate``."""
    s = sessions_df
    out = {
        "sessions": int(len(s)), "visitors": int(s["visitor_id"].nunique()),
        "events_median": float(s["events"].median()), "events_p90": float(s["events"].quantile(0.9)),
        "duration_median_seconds": float(s["duration_seconds"].median()),
        "duration_p90_seconds": float(s["duration_seconds"].quantile(0.9)),
        "product_views_mean": float(s["product_views"].mean()),
        "single_event_share": float((s["events"] == 1).mean()),
    }
    if "converted" in s and s["converted"].any():
        out["conversion_rate"] = float(s["converted"].mean())
    return out


# --------------------------------------------------------------------------------------------
# 8. the demo world's truth
# --------------------------------------------------------------------------------------------
def truth_check(sessions_df: pd.DataFrame, events: Any, truth: dict) -> pd.DataFrame:
    """Measured funnel numbers beside the demo world's ``truth.json["funnel"]``.

    Measures: ``sessions``; ``share_with.<step>`` (share of sessions with the step);
    ``step_conversion.view_to_cart`` etc. (sessions with both steps / sessions with the first);
    ``cart_abandonment`` (1 − sessions with cart and purchase / sessions with cart);
    ``search_zero_result_share`` (searches with ``results_count == 0`` / searches). The generator
    counts presence of a step in a session, exactly as :func:`crm_analytics.models.funnel.funnel` does.

    Returns
    -------
    DataFrame
        ``measure, measured, true, difference`` (measured − true).
    """
    f = truth.get("funnel", truth)
    missing = [k for k in ("sessions", "share_with", "step_conversion", "cart_abandonment") if k not in f]
    if missing:
        raise DataContractError(f"truth: key(s) {missing} not found under 'funnel'; pass the demo world's "
                                "data/raw/<dataset>/truth.json")
    s = sessions_df
    has = {step: s[f"has_{step}"].to_numpy(bool) for step in FUNNEL_STEPS}
    rows = [("sessions", float(len(s)), float(f["sessions"]))]
    for step in FUNNEL_STEPS:
        rows.append((f"share_with.{step}", float(has[step].mean()), float(f["share_with"][step])))
    names = {"view_to_cart": ("product_view", "add_to_cart"), "cart_to_checkout": ("add_to_cart", "checkout_start"),
             "checkout_to_purchase": ("checkout_start", "purchase")}
    for name, (a, b) in names.items():
        rows.append((f"step_conversion.{name}", float((has[a] & has[b]).sum() / max(has[a].sum(), 1)),
                     float(f["step_conversion"][name])))
    cart = has["add_to_cart"]
    rows.append(("cart_abandonment", float(1 - (cart & has["purchase"]).sum() / max(cart.sum(), 1)),
                 float(f["cart_abandonment"])))
    if "search_zero_result_share" in f:
        with local_ibis() as db:
            t = _source(db, events)
            t = t.filter(t.event_type == "search")
            got = t.aggregate(n=t.count(), zero=(t.results_count == 0).cast("int64").sum()).to_pyarrow().to_pandas()
        n = int(got["n"].iloc[0])
        rows.append(("search_zero_result_share", float(got["zero"].fillna(0).iloc[0]) / n if n else np.nan,
                     float(f["search_zero_result_share"])))
    out = pd.DataFrame(rows, columns=["measure", "measured", "true"])
    out["difference"] = out["measured"] - out["true"]
    return out

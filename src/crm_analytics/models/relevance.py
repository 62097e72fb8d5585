"""Relevance, the third R of the 4R frame for next-best-action: the right channel, the right time, not too often.

* **Channel** — how often a customer opens or clicks messages on each direct contact channel
  (:data:`CONTACT_CHANNELS`), shrunk towards the channel's shop-wide rate (:func:`channel_engagement`);
  the channels that can reach them (:func:`reachable_channels`); the best of those (:func:`preferred_channel`).
* **Time** — the weekday and hour, in the shop's time zone, when they open, click, visit and buy,
  shrunk towards the shop-wide pattern (:func:`activity`, :func:`contact_timing`).
* **Frequency** — messages sent in a recent window, and a cap (:func:`recent_contacts`, :func:`fatigue_capped`).

:func:`relevance_table` puts them together, one row per customer. Consent is applied elsewhere: a channel
is *reachable* when the shop has the means (an address, the app), not the permission. Shrinkage is
empirical Bayes: with shop-wide rate ``p`` and ``m = prior_strength`` pseudo-observations, a customer's
rate is ``(own successes + m·p) / (own trials + m)``.
"""

from __future__ import annotations

import numbers
import zoneinfo
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import numpy as np
import pandas as pd

from crm_analytics.models.behaviour import _columns_of, _need, _session_rows, _source, _utc
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import local_ibis, purchases

__all__ = ["ACTIVITY_SOURCES", "CONTACT_CHANNELS", "TIE_ORDER", "WEEKDAYS", "activity", "channel_engagement",
           "contact_timing", "fatigue_capped", "preferred_channel", "reachable_channels", "recent_contacts",
           "relevance_table"]

#: Channels a message is sent on to one person (``social`` in the campaigns table is not one).
CONTACT_CHANNELS = ("email", "sms", "push")
#: The order that breaks ties between equally engaging channels.
TIE_ORDER = ("email", "push", "sms")
#: ``best_day`` values, in the order that breaks ties (hours break ties towards 0).
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Values of ``source`` in :func:`activity`.
ACTIVITY_SOURCES = ("open", "click", "visit", "purchase")
_TS = dt.Timestamp(timezone="UTC", scale=6)


def _number(value: Any, name: str, what: str, *, whole: bool = False) -> None:
    kind = numbers.Integral if whole else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and np.isfinite(value)
    if not (ok and (value >= 1 if whole else value > 0)):
        raise ParamsError(f"{name}={value!r} must be {what}")


def _zone(timezone: Any) -> str:
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ParamsError(f"timezone={timezone!r} is not a time zone name; use an IANA name such as "
                          "'Europe/Istanbul' (see zoneinfo.available_timezones())") from None
    return str(timezone)


def _timestamp(value: Any, name: str) -> pd.Timestamp:
    """*value* (ISO string or timestamp) in UTC; a naive one is read as UTC."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if pd.isna(ts):
        raise ParamsError(f"{name}={value!r} is not a date or timestamp; give an ISO 8601 string such as '2025-06-30'")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ids(customers: Any) -> pd.Index:
    """Distinct customer ids in their order, from an Index, a Series or a frame (``customer_id`` or its index)."""
    if isinstance(customers, pd.DataFrame):
        customers = customers["customer_id"] if "customer_id" in customers.columns else customers.index
    return pd.Index(customers).dropna().unique().rename("customer_id")


def _flag(s: pd.Series) -> np.ndarray:
    return np.asarray(s.fillna(False), dtype=bool)


def _utc_us(ts: pd.Series, name: str) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataContractError(f"{name} has dtype {ts.dtype}, not timestamps; parse it with "
                                "pd.to_datetime(..., utc=True)")
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    return ts.dt.floor("us").dt.as_unit("us")


# -- right channel --
def channel_engagement(assignments: pd.DataFrame, campaigns: pd.DataFrame, *, customers: Any = None,
                       prior_strength: float = 5.0) -> pd.DataFrame:
    """Per customer and contact channel, the chance they engage with a message, shrunk to the shop's rate.

    ``sent`` counts treatment assignments with a ``sent_ts``; ``engaged`` those opened or clicked (a
    channel that tracks no opens, such as SMS, counts clicks). Channel *c*'s shop-wide rate is
    ``p_c = Σ engaged / Σ sent``; a customer's is ``(engaged + m·p_c) / (sent + m)``, ``m = prior_strength``.

    *customers* (Index, Series or frame) are the rows to return, in order (default: every customer
    in *assignments*, sorted).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``engagement_<channel>`` (float), then ``sent_<channel>`` (int),
        for each of :data:`CONTACT_CHANNELS` some campaign uses (NaN engagement when nothing was sent
        on it). ``attrs["shop_rate"]`` is ``{channel: p_c}``.

    Raises
    ------
    DataContractError
        A table lacks a column. ``ParamsError``: ``prior_strength <= 0``.
    """
    _number(prior_strength, "prior_strength", "a positive number of pseudo-messages (5 is a mild prior)")
    _need(assignments, ["campaign_id", "customer_id", "group", "sent_ts", "opened_ts", "clicked_ts"],
          "campaign_assignments")
    _need(campaigns, ["campaign_id", "channel"], "campaigns")
    channel_of = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["channel"]
    channels = [c for c in CONTACT_CHANNELS if c in set(campaigns["channel"].dropna())]
    a = pd.DataFrame({"customer_id": assignments["customer_id"].to_numpy(),
                      "channel": assignments["campaign_id"].map(channel_of).to_numpy(),
                      "engaged": (assignments["opened_ts"].notna() | assignments["clicked_ts"].notna()).to_numpy(int)})
    sent = (_flag(assignments["group"].eq("treatment")) & assignments["sent_ts"].notna().to_numpy()
            & assignments["customer_id"].notna().to_numpy() & _flag(a["channel"].isin(channels)))
    g = a[sent].groupby(["channel", "customer_id"])["engaged"]
    n, x = g.size(), g.sum()
    ids = _ids(assignments["customer_id"]).sort_values() if customers is None else _ids(customers)
    out, shop_rate = pd.DataFrame(index=ids), {}
    for c in channels:
        n_c, x_c = (s.xs(c) if c in s.index.get_level_values(0) else pd.Series(dtype="int64") for s in (n, x))
        shop_rate[c] = float(x_c.sum() / n_c.sum()) if n_c.sum() else np.nan
        n_c, x_c = (s.reindex(ids, fill_value=0).astype("int64") for s in (n_c, x_c))
        out[f"engagement_{c}"] = (x_c + prior_strength * shop_rate[c]) / (n_c + prior_strength)
        out[f"sent_{c}"] = n_c
    out = out[[f"engagement_{c}" for c in channels] + [f"sent_{c}" for c in channels]]
    out.attrs["shop_rate"] = shop_rate
    return out


def reachable_channels(customers_index: Any, events: Any = None, orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """Contact channels that can reach each customer: e-mail and SMS everyone listed; push only
    customers seen in the app (an event or an order with channel ``app``; *events* may be a
    :class:`crm_analytics.ingest.tables.ParquetTable`).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (*customers_index*, in order): bool ``email, sms, push``.
    """
    ids, users = _ids(customers_index), []
    if events is not None:
        missing = [c for c in ("customer_id", "channel") if c not in _columns_of(events)]
        if missing:
            raise DataContractError(f"events: column(s) {missing} not found; they show who uses the app (push)")
        with local_ibis() as db:
            t = _source(db, events)
            t = t.filter((t.channel == "app") & t.customer_id.notnull()).select("customer_id").distinct()
            users += t.to_pyarrow()["customer_id"].to_pylist()
    if orders is not None:
        _need(orders, ["customer_id", "channel"], "orders")
        users += orders.loc[_flag(orders["channel"].eq("app")), "customer_id"].dropna().astype(str).tolist()
    return pd.DataFrame({"email": True, "sms": True, "push": ids.astype(str).isin(set(users))}, index=ids)


def preferred_channel(engagement: pd.DataFrame, reachable: pd.DataFrame) -> pd.DataFrame:
    """The reachable channel a customer is likeliest to engage with.

    The argmax of ``engagement_<channel>`` over the customer's reachable channels, ties to the first
    of :data:`TIE_ORDER` (email, push, sms). A reachable channel without a rate (NaN or no column: no
    campaign used it) ranks below any with one, so without campaigns the choice is ``"email"`` (when
    reachable) with relevance NaN. Reachable on no channel (or absent from *reachable*): missing.

    Returns
    -------
    DataFrame
        Indexed as *engagement*: ``preferred_channel`` and ``relevance`` (its engagement rate, the
        chance the customer opens or clicks a message on it).

    Examples
    --------
    >>> e = pd.DataFrame({"engagement_email": [0.2, 0.3], "engagement_push": [0.2, 0.5]}, index=["a", "b"])
    >>> r = pd.DataFrame({"email": [True, True], "sms": [True, True], "push": [True, False]}, index=["a", "b"])
    >>> preferred_channel(e, r)["preferred_channel"].tolist()
    ['email', 'email']
    """
    k = len(engagement)
    rate = np.column_stack([engagement[f"engagement_{c}"].to_numpy(float) if f"engagement_{c}" in engagement
                            else np.full(k, np.nan) for c in TIE_ORDER])
    can = np.column_stack([_flag(reachable[c].reindex(engagement.index)) if c in reachable else np.zeros(k, bool)
                           for c in TIE_ORDER])
    best = np.where(can, np.where(np.isnan(rate), -1.0, rate), -np.inf).argmax(axis=1)
    none = ~can.any(axis=1)
    channel = np.asarray(TIE_ORDER, dtype=object)[best]
    channel[none] = None
    relevance = rate[np.arange(k), best]
    relevance[none] = np.nan
    return pd.DataFrame({"preferred_channel": channel, "relevance": relevance}, index=engagement.index)


# -- right time --
def activity(events: Any = None, orders: pd.DataFrame | None = None,
             assignments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Moments each known customer engaged with the shop, one row each, for :func:`contact_timing`.

    ``open``/``click``: ``opened_ts``/``clicked_ts`` of *assignments*. ``visit``: the first event of
    each site session of a customer, sessions as :func:`crm_analytics.models.behaviour.sessions` counts
    them (the data's ``session_id``; a device's anonymous events stitched to the customer who logs
    in on it; message events excluded), grouped in DuckDB, so *events* may be a
    :class:`crm_analytics.ingest.tables.ParquetTable`. ``purchase``: ``order_ts`` of
    :func:`crm_analytics.ingest.tables.purchases`.

    Returns
    -------
    DataFrame
        ``customer_id, ts`` (UTC), ``source`` (:data:`ACTIVITY_SOURCES`), sorted by all three.
    """
    parts = []
    if assignments is not None:
        _need(assignments, ["customer_id", "opened_ts", "clicked_ts"], "campaign_assignments")
        for col, source in (("opened_ts", "open"), ("clicked_ts", "click")):
            a = assignments.loc[assignments["customer_id"].notna() & assignments[col].notna()]
            parts.append(_moments(a["customer_id"], a[col], source, f"campaign_assignments.{col}"))
    if orders is not None:
        _need(orders, ["customer_id", "order_ts", "status"], "orders")
        o = purchases(orders)
        parts.append(_moments(o["customer_id"], o["order_ts"], "purchase", "orders.order_ts"))
    small = pd.concat(parts or [_moments(pd.Series([], dtype=str), pd.Series([], dtype="datetime64[us, UTC]"), "", "")],
                      ignore_index=True)
    with local_ibis() as db:
        u = db.table(small).cast({"customer_id": "string", "ts": _TS, "source": "string"})
        if events is not None:
            t = _session_rows(db, events)
            t = t.filter(t.person.notnull())
            v = t.group_by(customer_id=t.person, session=t.session_key).aggregate(ts=t.ts.min())
            u = u.union(v.select(customer_id=v.customer_id.cast("string"), ts=v.ts.cast(_TS),
                                 source=ibis.literal("visit")))
        out = _utc(u.order_by(["customer_id", "ts", "source"]).to_pyarrow().to_pandas())
    return out.astype({"customer_id": str, "source": str})


def _moments(customer_id: pd.Series, ts: pd.Series, source: str, name: str) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": customer_id.astype(str).array, "ts": _utc_us(ts, name).array,
                         "source": source})


def _best(db: Any, t: Any, key: str, size: int, prior_strength: float, people: Any) -> pd.Series:
    """Per customer of *people*, the bucket (0..size-1) of *t* maximising own rows + m × shop share,
    ties to the lowest. Only buckets the customer used and the shop's mode can win (any other scores
    ``m × share <= m × share(mode)``), so no customers × buckets table is built."""
    total = t.group_by(key).aggregate(n=t.count()).to_pyarrow().to_pandas().set_index(key)["n"]
    share = total.reindex(range(size), fill_value=0).to_numpy(float) / total.sum()
    mode = int(share.argmax())  # the first of equal maxima
    shares = db.table(pd.DataFrame({key: np.arange(size, dtype="int64"), "share": share}))
    c = t.group_by(["customer_id", key]).aggregate(n=t.count())
    c = c.join(shares, key).select("customer_id", key, score=c.n + prior_strength * shares.share)
    c = c.union(people.select("customer_id", **{key: ibis.literal(mode, "int64"),
                                                "score": ibis.literal(prior_strength * share[mode], "float64")}))
    w = ibis.window(group_by=c.customer_id, order_by=[ibis.desc(c.score), c[key]])
    c = c.mutate(rank=ibis.row_number().over(w))
    top = c.filter(c["rank"] == 0).select("customer_id", key).to_pyarrow().to_pandas()
    return top.set_index("customer_id")[key]


def contact_timing(activity: pd.DataFrame, *, timezone: str, prior_strength: float = 5.0, min_events: int = 3,
                   customers: Any = None) -> pd.DataFrame:
    """The weekday and the hour (the shop's local time) each customer is likeliest to be active.

    Each is chosen on its own as the bucket *k* maximising ``own_k + m × share_k``: the customer's
    activity rows in *k* plus ``m = prior_strength`` times the shop-wide share of activity in *k*;
    ties go to the earlier day (Monday first) or hour. The prior mostly breaks ties (one more own row
    outweighs it unless the two buckets' shop-wide shares differ by over ``1/m``). A customer with fewer
    than *min_events* rows gets the shop's busiest day and hour; ``timing_basis`` says which:
    ``"own activity"`` or ``"shop-wide"``.

    *activity* holds ``customer_id, ts`` (e.g. :func:`activity`; bucketed in DuckDB); *timezone* is the
    shop's IANA zone (params ``timezone``, e.g. ``"Europe/Istanbul"``); *customers* are the rows to
    return, in order (default: those in *activity*, sorted).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``best_day`` (``Monday`` … ``Sunday``), ``best_hour`` (0–23),
        ``timing_basis``, ``activity_events``. Without any activity day and hour are missing.

    Raises
    ------
    ParamsError
        An unknown *timezone*, ``prior_strength <= 0`` or ``min_events < 1``.
    """
    zone = _zone(timezone)
    _number(prior_strength, "prior_strength", "a positive number of pseudo-events (5 is a mild prior)")
    _number(min_events, "min_events", "a whole number of activity rows >= 1", whole=True)
    _need(activity, ["customer_id", "ts"], "activity")
    a = activity.loc[activity["customer_id"].notna() & activity["ts"].notna()]
    a = _moments(a["customer_id"], a["ts"], "", "activity.ts")[["customer_id", "ts"]]
    # the shop's wall-clock time, as a naive timestamp (pandas' vectorised time-zone rules: the same
    # on every engine; Spark and DuckDB name and order their conversion functions differently)
    a["local"] = a["ts"].dt.tz_convert(zone).dt.tz_localize(None)
    with local_ibis() as db:
        t = db.table(a)
        n = t.group_by("customer_id").aggregate(n=t.count()).to_pyarrow().to_pandas().set_index("customer_id")["n"]
        ids = pd.Index(n.index.sort_values(), name="customer_id") if customers is None else _ids(customers)
        keys = pd.Index(ids.astype(str))
        out = pd.DataFrame({"best_day": pd.Series(None, index=ids, dtype=object),
                            "best_hour": pd.Series(pd.NA, index=ids, dtype="Int64")})
        if len(a):
            local = t.local
            t = t.select("customer_id", day=local.day_of_week.index().cast("int64"), hour=local.hour().cast("int64"))
            people = db.table(pd.DataFrame({"customer_id": keys}))
            day = _best(db, t, "day", 7, prior_strength, people).reindex(keys).to_numpy(int)
            out["best_day"] = np.asarray(WEEKDAYS, dtype=object)[day]
            out["best_hour"] = _best(db, t, "hour", 24, prior_strength, people).reindex(keys).to_numpy("int64")
    n = n.reindex(keys, fill_value=0).to_numpy("int64")
    few = n < min_events
    if len(a) and few.any():  # too little of their own: the shop's busiest day and hour, as the label says
        local = a["ts"].dt.tz_convert(zone)
        out.loc[few, "best_day"] = WEEKDAYS[int(local.dt.day_of_week.value_counts().sort_index().idxmax())]
        out.loc[few, "best_hour"] = int(local.dt.hour.value_counts().sort_index().idxmax())
    out["timing_basis"] = np.where(few, "shop-wide", "own activity")
    out["activity_events"] = n
    return out


# -- not too often --
def recent_contacts(assignments: pd.DataFrame, *, as_of: Any, period_days: float) -> pd.Series:
    """Messages sent to each customer (treatment rows with a ``sent_ts``) in ``(as_of - period_days, as_of]``,
    as ``recent_contacts`` (int) indexed by ``customer_id``; customers with none are absent."""
    end = _timestamp(as_of, "as_of")
    _number(period_days, "period_days", "a positive number of days (e.g. 7)")
    _need(assignments, ["customer_id", "group", "sent_ts"], "campaign_assignments")
    sent = _utc_us(assignments["sent_ts"], "campaign_assignments.sent_ts")
    inside = (_flag(assignments["group"].eq("treatment")) & _flag(sent > end - pd.Timedelta(days=period_days))
              & _flag(sent <= end) & assignments["customer_id"].notna().to_numpy())
    out = assignments.loc[inside, "customer_id"].value_counts().sort_index().astype("int64")
    return out.rename("recent_contacts").rename_axis("customer_id")


def fatigue_capped(recent: pd.Series, *, max_contacts: int) -> pd.Series:
    """Whether one more message would take a customer past the cap: ``recent + 1 > max_contacts``.

    Examples
    --------
    >>> fatigue_capped(pd.Series({"a": 0, "b": 1, "c": 2}), max_contacts=2).tolist()
    [False, False, True]
    """
    _number(max_contacts, "max_contacts", "a whole number of messages >= 1", whole=True)
    return (recent.fillna(0) + 1 > max_contacts).astype(bool).rename("capped")


def relevance_table(customers_index: Any, *, assignments: pd.DataFrame | None, campaigns: pd.DataFrame | None,
                    events: Any, orders: pd.DataFrame, timezone: str, as_of: Any, fatigue_days: float,
                    max_contacts: int, prior_strength: float = 5.0, reachable: pd.DataFrame | None = None
                    ) -> pd.DataFrame:
    """Channel, time and contact pressure per customer, one row each.

    Without *assignments* or *campaigns* no channel has an engagement rate: every ``engagement_*`` is
    NaN, ``preferred_channel`` is ``"email"`` (reachable for everyone) with ``relevance`` NaN, and
    ``recent_contacts`` is 0. Without *events*, push reaches app buyers only and the timing rests on
    purchases (and opens and clicks). Every row given is used: for a backtest, pass tables cut at *as_of*.

    *customers_index* (e.g. the consented customers) is the result's index, in order; the contact
    window is ``(as_of - fatigue_days, as_of]`` (:func:`recent_contacts`), the cap *max_contacts*.
    *reachable* is :func:`reachable_channels` of the same customers when the caller already has it.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``preferred_channel, relevance, engagement_email, engagement_sms,
        engagement_push, best_day, best_hour, timing_basis, recent_contacts, capped``.
    """
    _zone(timezone)
    _timestamp(as_of, "as_of")
    _number(fatigue_days, "fatigue_days", "a positive number of days (e.g. 7)")
    ids = _ids(customers_index)
    engagement = pd.DataFrame(index=ids)
    if assignments is not None and campaigns is not None:
        engagement = channel_engagement(assignments, campaigns, customers=ids, prior_strength=prior_strength)
    if reachable is None:
        reachable = reachable_channels(ids, events, orders)
    out = preferred_channel(engagement, reachable.reindex(ids))
    for c in CONTACT_CHANNELS:
        out[f"engagement_{c}"] = engagement.get(f"engagement_{c}", np.nan)
    timing = contact_timing(activity(events, orders, assignments), timezone=timezone, prior_strength=prior_strength,
                            customers=ids)
    out[["best_day", "best_hour", "timing_basis"]] = timing[["best_day", "best_hour", "timing_basis"]]
    recent = pd.Series(dtype="int64")
    if assignments is not None:
        recent = recent_contacts(assignments, as_of=as_of, period_days=fatigue_days)
    out["recent_contacts"] = recent.reindex(ids, fill_value=0).astype("int64").to_numpy()
    out["capped"] = fatigue_capped(out["recent_contacts"], max_contacts=max_contacts)
    return out

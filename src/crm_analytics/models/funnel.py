"""The purchase funnel (product view → add to cart → checkout → purchase), time between steps,
where each group leaks most, and cart abandonment with its recovery.

Funnel rule: a session (or visitor) *reaches* a step when it holds at least one event of that step,
in any order (a purchase without a logged checkout still counts as a purchase). The step
conversion of step *k* is ``sessions with step k-1 and step k / sessions with step k-1``; the first
step's is its share of all sessions. This is how the demo generator counts its truth
(``truth.json["funnel"]``), and it does not hide a purchase behind a lost tracking event.

Cart abandonment: a session with an ``add_to_cart`` and no ``purchase`` is abandoned; the rate is
``abandoned / sessions with add_to_cart``. Abandoned items are the products added (minus those
removed) in abandoned sessions; partial abandonment inside a purchase session is not counted.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from crm_analytics.models.behaviour import FUNNEL_STEPS, UNKNOWN, _by_list, _group_sums, _need, _session_events, _utc
from crm_analytics.models.campaigns import newcombe_interval, wilson_interval
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import PURCHASE_STATUSES, local_ibis

__all__ = ["funnel", "step_times", "biggest_leak", "cart_abandonment", "abandoned_items", "abandonment_top",
           "cart_recovery"]

ENTRY = "session_start"


def _visitors(sessions_df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per visitor: reached a step in any session; breakdown values of the first session."""
    cols = ["visitor_id", "start_ts", *by, *[f"has_{s}" for s in FUNNEL_STEPS]]
    _need(sessions_df, cols, "sessions")
    s = sessions_df[cols].sort_values(["visitor_id", "start_ts"], kind="stable")
    agg = {c: "first" for c in by}
    agg.update({f"has_{st}": "max" for st in FUNNEL_STEPS})
    return s.groupby("visitor_id", sort=False).agg(agg).reset_index()


def funnel(sessions_df: pd.DataFrame, by: str | Sequence[str] | None = None, *, level: str = "session",
           alpha: float = 0.05) -> pd.DataFrame:
    """Sessions (or visitors) reaching each funnel step, step conversion with Wilson intervals and drop-off.

    Parameters
    ----------
    sessions_df : DataFrame
        :func:`crm_analytics.models.behaviour.sessions` (``has_<step>`` columns and the *by* columns).
    by : str or list of str, optional
        Breakdown columns (``channel``, ``device``, ``visitor_type``, ``segment``, ``week``…).
    level : {"session", "visitor"}
        ``"visitor"`` counts a visitor once: reached a step in any of their sessions, grouped by the
        breakdown values of their first session.
    alpha : float
        Intervals have coverage ``1 - alpha``.

    Returns
    -------
    DataFrame
        Long: the *by* columns, ``step_no`` (1..4), ``step``, ``from_step`` (``session_start`` for the
        first), ``total`` (sessions or visitors of the group), ``entered`` (reached ``from_step``),
        ``reached``, ``continued`` (reached ``from_step`` and ``step``), ``share`` (reached / total,
        with ``share_low``/``share_high``), ``step_conversion`` (continued / entered, with
        ``conversion_low``/``conversion_high``), ``drop_off`` (1 − step_conversion), ``lost``
        (entered − continued).

    Examples
    --------
    >>> s = pd.DataFrame({"has_product_view": [True, True, True, False], "has_add_to_cart": [True, True, False, False],
    ...                   "has_checkout_start": [True, False, False, False], "has_purchase": [True, False, False, False]})
    >>> funnel(s)[["step", "reached", "step_conversion"]].values.tolist()
    [['product_view', 3, 0.75], ['add_to_cart', 2, 0.6666666666666666], ['checkout_start', 1, 0.5], ['purchase', 1, 1.0]]
    """
    if level not in ("session", "visitor"):
        raise ParamsError(f"level must be one of ['session', 'visitor'], got {level!r}")
    by_cols = _by_list(by)
    frame = _visitors(sessions_df, by_cols) if level == "visitor" else sessions_df
    _need(frame, by_cols + [f"has_{s}" for s in FUNNEL_STEPS], "sessions")
    data = frame[by_cols].copy()
    for st in FUNNEL_STEPS:
        data[st] = frame[f"has_{st}"].fillna(False).astype(bool).to_numpy()
    flags = {f"r{i}": (lambda t, st=st: t[st]) for i, st in enumerate(FUNNEL_STEPS)}
    flags.update({f"b{i}": (lambda t, a=a, b=b: t[a] & t[b])
                  for i, (a, b) in enumerate(zip(FUNNEL_STEPS[:-1], FUNNEL_STEPS[1:]), start=1)})
    counts = _group_sums(data, by_cols, flags)
    rows = []
    for i, st in enumerate(FUNNEL_STEPS):
        part = counts[by_cols].copy()
        part["step_no"], part["step"] = i + 1, st
        part["from_step"] = ENTRY if i == 0 else FUNNEL_STEPS[i - 1]
        part["total"] = counts["n"]
        part["entered"] = counts["n"] if i == 0 else counts[f"r{i - 1}"]
        part["reached"] = counts[f"r{i}"]
        part["continued"] = counts["r0"] if i == 0 else counts[f"b{i}"]
        rows.append(part)
    out = pd.concat(rows, ignore_index=True).sort_values(by_cols + ["step_no"], ignore_index=True)
    out["share"], (out["share_low"], out["share_high"]) = _rate(out["reached"], out["total"], alpha)
    out["step_conversion"], (out["conversion_low"], out["conversion_high"]) = _rate(out["continued"], out["entered"],
                                                                                    alpha)
    out["drop_off"] = 1 - out["step_conversion"]
    out["lost"] = out["entered"] - out["continued"]
    return out


def _rate(x: pd.Series, n: pd.Series, alpha: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    x, n = x.to_numpy(float), n.to_numpy(float)
    ok = n > 0
    rate, low, high = (np.full(len(n), np.nan) for _ in range(3))
    rate[ok] = x[ok] / n[ok]
    if ok.any():
        low[ok], high[ok] = wilson_interval(x[ok], n[ok], alpha)
    return rate, (low, high)


def step_times(sessions_df: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Time from the first event of each funnel step to the first event of the next one, in
    sessions with both (and the later after the earlier), as a distribution, computed in DuckDB.

    Returns
    -------
    DataFrame
        the *by* columns, ``from_step, to_step, sessions, p25_seconds, median_seconds,
        p75_seconds, p90_seconds, mean_seconds``.
    """
    by_cols = _by_list(by)
    cols = [f"first_{s}_ts" for s in FUNNEL_STEPS]
    _need(sessions_df, by_cols + cols, "sessions")
    data = sessions_df[by_cols].copy()
    for c in by_cols:
        data[c] = data[c].astype("object").where(data[c].notna(), UNKNOWN).astype(str)
    for a, b in zip(FUNNEL_STEPS[:-1], FUNNEL_STEPS[1:]):
        data[f"{a}__{b}"] = (sessions_df[f"first_{b}_ts"] - sessions_df[f"first_{a}_ts"]).dt.total_seconds()
    parts = []
    with local_ibis() as db:
        t = db.table(data)
        for a, b in zip(FUNNEL_STEPS[:-1], FUNNEL_STEPS[1:]):
            d = t[f"{a}__{b}"]
            f = t.filter(d.notnull() & (d >= 0))
            d = f[f"{a}__{b}"]
            aggs = dict(sessions=f.count(), p25_seconds=d.quantile(0.25), median_seconds=d.quantile(0.5),
                        p75_seconds=d.quantile(0.75), p90_seconds=d.quantile(0.9), mean_seconds=d.mean())
            expr = f.group_by(by_cols).aggregate(**aggs) if by_cols else f.aggregate(**aggs)
            got = expr.to_pyarrow().to_pandas()
            got.insert(len(by_cols), "from_step", a)
            got.insert(len(by_cols) + 1, "to_step", b)
            parts.append(got)
    out = pd.concat(parts, ignore_index=True)
    out["sessions"] = out["sessions"].astype("int64")
    order = {s: i for i, s in enumerate(FUNNEL_STEPS)}
    out = out.assign(_o=out["from_step"].map(order)).sort_values(by_cols + ["_o"], ignore_index=True)
    return out.drop(columns="_o")


def biggest_leak(funnel_table: pd.DataFrame, *, by: str | Sequence[str] | None = None, rank_by: str = "drop_off",
                 include_entry: bool = False) -> pd.DataFrame:
    """Where each group loses most: the funnel step with the largest drop-off (or the most people
    lost, ``rank_by="lost"``), for the notebook to write as a sentence with ``report.md``.

    Parameters
    ----------
    funnel_table : DataFrame
        :func:`funnel`.
    by : str or list of str, optional
        The breakdown columns *funnel_table* was made with.
    include_entry : bool
        Whether "session start → product view" (left without seeing a product) counts as a step.

    Returns
    -------
    DataFrame
        One row per group: the *by* columns, ``from_step, to_step, entered, continued, lost,
        step_conversion, drop_off, conversion_low, conversion_high``.
    """
    if rank_by not in ("drop_off", "lost"):
        raise ParamsError(f"rank_by must be one of ['drop_off', 'lost'], got {rank_by!r}")
    by_cols = _by_list(by)
    _need(funnel_table, by_cols + ["step", "from_step", "drop_off", "lost"], "funnel_table")
    f = funnel_table if include_entry else funnel_table[funnel_table["from_step"] != ENTRY]
    f = f[f["entered"] > 0].rename(columns={"step": "to_step"})
    f = f.sort_values(by_cols + [rank_by, "step_no"], ascending=[True] * len(by_cols) + [False, True])
    top = f.groupby(by_cols, sort=True).head(1) if by_cols else f.head(1)
    return top[by_cols + ["from_step", "to_step", "entered", "continued", "lost", "step_conversion", "drop_off",
                          "conversion_low", "conversion_high"]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# cart abandonment
# --------------------------------------------------------------------------------------------
def cart_abandonment(sessions_df: pd.DataFrame, by: str | Sequence[str] | None = None, *,
                     alpha: float = 0.05) -> pd.DataFrame:
    """Cart abandonment rate (sessions with an add-to-cart and no purchase / sessions with an
    add-to-cart) per group, with Wilson intervals.

    Returns
    -------
    DataFrame
        the *by* columns, ``cart_sessions, abandoned, abandonment_rate, rate_low, rate_high``.
    """
    by_cols = _by_list(by)
    _need(sessions_df, by_cols + ["has_add_to_cart", "has_purchase"], "sessions")
    data = sessions_df[by_cols].assign(_cart=sessions_df["has_add_to_cart"].astype(bool).to_numpy(),
                                       _buy=sessions_df["has_purchase"].astype(bool).to_numpy())
    c = _group_sums(data, by_cols, {"cart_sessions": lambda t: t._cart, "abandoned": lambda t: t._cart & ~t._buy})
    c = c[c["cart_sessions"] > 0].reset_index(drop=True)
    c["abandonment_rate"], (c["rate_low"], c["rate_high"]) = _rate(c["abandoned"], c["cart_sessions"], alpha)
    return c[by_cols + ["cart_sessions", "abandoned", "abandonment_rate", "rate_low", "rate_high"]]


def abandoned_items(events: Any, *, products: pd.DataFrame | None = None, inactivity_minutes: float = 30
                    ) -> pd.DataFrame:
    """Products left in abandoned carts, one row per (session, product).

    ``items`` = add-to-cart events of the product in the session minus its remove-from-cart events
    (rows with none left are dropped; an event is one item: the events table has no quantity).
    ``value`` = ``items × price`` from *products* (missing without it).

    Returns
    -------
    DataFrame
        ``session_id, visitor_id, customer_id`` (known or stitched; missing for anonymous carts),
        ``product_id, abandoned_ts`` (last add-to-cart), ``items``, ``unit_price, value``
        (with *products*), ``category`` (with *products* holding it).
    """
    import ibis

    with local_ibis() as db:
        t = _session_events(db, events, inactivity_minutes)
        ws = ibis.window(group_by=t.session_key)
        t = t.mutate(buys=(t.event_type == "purchase").cast("int64").sum().over(ws))
        t = t.filter((t.buys == 0) & t.product_id.notnull() & t.event_type.isin(["add_to_cart", "remove_from_cart"]))
        add = t.event_type == "add_to_cart"
        g = t.group_by(session_id=t.session_key, product_id=t.product_id).aggregate(
            visitor_id=t.visitor_id.max(), customer_id=t.session_person.max(),
            abandoned_ts=ibis.ifelse(add, t.ts, None).max(),
            items=ibis.ifelse(add, 1, -1).sum())
        g = g.filter(g.items > 0)
        out = g.order_by([g.abandoned_ts, g.session_id, g.product_id]).to_pyarrow().to_pandas()
    out = _utc(out)
    out["items"] = out["items"].astype("int64")
    if products is not None:
        _need(products, ["product_id", "price"], "products")
        info = products.drop_duplicates("product_id").assign(product_id=lambda p: p["product_id"].astype(str))
        cols = ["product_id", "price"] + (["category"] if "category" in info else []) + (["name"] if "name" in info
                                                                                         else [])
        out = out.merge(info[cols], on="product_id", how="left").rename(columns={"price": "unit_price"})
        out["value"] = out["items"] * out["unit_price"]
    return out


def abandonment_top(items: pd.DataFrame, *, level: str = "product", n: int = 10) -> pd.DataFrame:
    """Products (or categories) most often abandoned, from :func:`abandoned_items`: ``sessions``,
    ``items``, ``value`` (when priced), ``share_of_sessions``; most sessions first."""
    key = {"product": "product_id", "category": "category"}.get(level)
    if key is None:
        raise ParamsError(f"level must be one of ['product', 'category'], got {level!r}")
    _need(items, [key, "session_id", "items"], "items")
    extra = [c for c in ("name", "category") if level == "product" and c in items]
    agg = {"sessions": ("session_id", "nunique"), "items": ("items", "sum")}
    if "value" in items:
        agg["value"] = ("value", "sum")
    out = items.assign(**{key: items[key].astype("object").fillna(UNKNOWN)}).groupby([key], as_index=False).agg(**agg)
    if extra:
        out = out.merge(items.drop_duplicates(key)[[key, *extra]], on=key, how="left")
    out["share_of_sessions"] = out["sessions"] / max(items["session_id"].nunique(), 1)
    return out.sort_values(["sessions", key], ascending=[False, True], ignore_index=True).head(n)


def cart_recovery(items: pd.DataFrame, orders: pd.DataFrame, order_lines: pd.DataFrame, *, recovery_days: float = 7,
                  campaign_assignments: pd.DataFrame | None = None, campaigns: pd.DataFrame | None = None,
                  alpha: float = 0.05) -> dict[str, Any]:
    """Abandoned items bought later by the same customer, and whether a campaign message came between.

    An abandoned item (:func:`abandoned_items` of a known customer) is *recovered* when the customer
    places a purchase order (completed or returned) holding that product after ``abandoned_ts`` and
    within *recovery_days*. With *campaign_assignments*, each item is labelled by the customer's
    assignments whose contact time falls in that window: ``sent`` (treatment with ``sent_ts`` in the
    window), else ``control`` (control group of a campaign whose ``start_ts`` — from *campaigns* —
    is in the window: the randomised comparison), else ``none``. Messages were not sent *because*
    of the cart, so ``sent`` vs ``none`` is descriptive; ``sent`` vs ``control`` is the fair test.

    Returns
    -------
    dict
        ``summary``: DataFrame ``message, items, recovered, recovery_rate, rate_low, rate_high``
        (with a row ``all``); ``sent_vs_control``: ``{difference, low, high}`` (Newcombe) or ``None``;
        ``items``: the known customers' items with ``recovered`` and ``message``; ``recovery_days``.
    """
    if not (isinstance(recovery_days, (int, float)) and recovery_days > 0):
        raise ParamsError(f"recovery_days={recovery_days!r} must be a positive number of days")
    _need(items, ["customer_id", "product_id", "abandoned_ts"], "items")
    _need(orders, ["order_id", "customer_id", "order_ts", "status"], "orders")
    _need(order_lines, ["order_id", "product_id"], "order_lines")
    known = items[items["customer_id"].notna()].reset_index(drop=True).copy()
    known["_item"] = np.arange(len(known))
    window = pd.Timedelta(days=recovery_days)
    o = orders[orders["status"].isin(PURCHASE_STATUSES) & orders["customer_id"].notna()]
    bought = order_lines[["order_id", "product_id"]].merge(o[["order_id", "customer_id", "order_ts"]], on="order_id")
    base = known[["_item", "customer_id", "product_id", "abandoned_ts"]].assign(
        customer_id=lambda d: d["customer_id"].astype(str), product_id=lambda d: d["product_id"].astype(str))
    bought = bought.assign(customer_id=bought["customer_id"].astype(str), product_id=bought["product_id"].astype(str))
    with local_ibis() as db:
        a, b = db.table(base), db.table(bought)
        j = a.join(b, [a.customer_id == b.customer_id, a.product_id == b.product_id,
                       b.order_ts > a.abandoned_ts, b.order_ts <= a.abandoned_ts + window])
        hit = j.select("_item").distinct().to_pyarrow().to_pandas()["_item"]
    known["recovered"] = known["_item"].isin(hit)
    known["message"] = "none"
    if campaign_assignments is not None:
        _need(campaign_assignments, ["campaign_id", "customer_id", "group"], "campaign_assignments")
        ca = campaign_assignments.copy()
        ca["contact_ts"] = ca["sent_ts"] if "sent_ts" in ca else pd.NaT
        if campaigns is not None and "start_ts" in campaigns:
            start = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["start_ts"]
            control = ca["group"].eq("control")
            ca.loc[control, "contact_ts"] = ca.loc[control, "campaign_id"].map(start)
        ca = ca.dropna(subset=["contact_ts", "customer_id"])
        ca = ca.assign(customer_id=ca["customer_id"].astype(str), sent=ca["group"].eq("treatment").astype(int))
        with local_ibis() as db:
            a, c = db.table(base[["_item", "customer_id", "abandoned_ts"]]), db.table(
                ca[["customer_id", "contact_ts", "sent"]])
            j = a.join(c, [a.customer_id == c.customer_id, c.contact_ts > a.abandoned_ts,
                           c.contact_ts <= a.abandoned_ts + window])
            got = j.group_by("_item").aggregate(sent=j.sent.max()).to_pyarrow().to_pandas()
        label = got.set_index("_item")["sent"].map({1: "sent", 0: "control"})
        known["message"] = known["_item"].map(label).fillna("none")
    rows = []
    for name, part in [("all", known), *[(m, known[known["message"] == m]) for m in ("sent", "control", "none")]]:
        if len(part) == 0:
            continue
        x, n = int(part["recovered"].sum()), int(len(part))
        low, high = wilson_interval(x, n, alpha)
        rows.append((name, n, x, x / n, float(low), float(high)))
    summary = pd.DataFrame(rows, columns=["message", "items", "recovered", "recovery_rate", "rate_low", "rate_high"])
    diff = None
    s, c = known[known["message"] == "sent"], known[known["message"] == "control"]
    if len(s) and len(c):
        lo, hi = newcombe_interval(s["recovered"].sum(), len(s), c["recovered"].sum(), len(c), alpha)
        diff = {"difference": float(s["recovered"].mean() - c["recovered"].mean()), "low": float(lo),
                "high": float(hi)}
    if known.empty and len(items):
        raise DataContractError("cart_recovery: every abandoned cart is anonymous (no customer_id), so no later "
                                "purchase can be linked; recovery needs logged-in or stitched carts")
    return {"summary": summary, "sent_vs_control": diff, "items": known.drop(columns="_item"),
            "recovery_days": recovery_days}

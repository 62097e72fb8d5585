"""Return and cancellation risk: rates against the shop's rate, and customers or orders flagged for review.

:func:`return_cancel_rates` gives the cancellation and return rates of each product, category or customer
with Wilson intervals, flagged when the interval lies wholly above the shop's rate.
:func:`flag_anomalies` scores customers (or orders) with an isolation forest on a few interpretable
features and says in words why a flagged row is unusual: the features furthest above the median in
robust z-scores (``returned 9 of 10 orders (shop: 6%)``, ``cancelled 5 orders in 7 days``), in the report
language (:func:`crm_analytics.i18n.t`; money in the shop's currency).

Rates: ``cancel_rate`` = cancelled / all orders; ``return_rate`` = returned / orders not cancelled (a
cancelled order cannot come back). Order status is per order, so a returned order counts as a return
for every product on it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

from crm_analytics import i18n
from crm_analytics.models.campaigns import wilson_interval
from crm_analytics.models.complaints import _need
from crm_analytics.errors import CrmAnalyticsError, DataContractError

__all__ = ["LEVELS", "RATE_GROUPS", "flag_anomalies", "return_cancel_rates", "robust_z"]

#: what :func:`return_cancel_rates` can group by
RATE_GROUPS = ("product_id", "category", "customer_id")
#: what :func:`flag_anomalies` can score
LEVELS = ("customer", "order")
#: the fewest events a reason needs: one return or cancellation is not a pattern
MIN_EVENTS_FOR_REASON = 2
WEEK_SECONDS = 7 * 86_400
_TOPIC = {"return_rate": "return", "cancel_rate": "cancel", "max_cancels_7d": "burst", "cancels_7d": "burst",
          "max_value_ratio": "value", "value_ratio": "value", "order_total": "value", "units_per_order": "units",
          "units": "units"}


def _status(orders: pd.DataFrame) -> pd.DataFrame:
    _need(orders, ["order_id", "customer_id", "order_ts", "status", "order_total"], "orders")
    o = orders.drop_duplicates("order_id")
    return o.assign(cancelled=o["status"].eq("cancelled").to_numpy(), returned=o["status"].eq("returned").to_numpy())


def _wilson(x: pd.Series, n: pd.Series, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    ok = (n > 0).to_numpy()
    lo, hi = np.full(len(n), np.nan), np.full(len(n), np.nan)
    if ok.any():
        lo[ok], hi[ok] = wilson_interval(x.to_numpy()[ok], n.to_numpy()[ok], alpha)
    return lo, hi


def return_cancel_rates(orders: pd.DataFrame, order_lines: pd.DataFrame | None = None,
                        products: pd.DataFrame | None = None, by: str = "product_id", *, min_orders: int = 20,
                        alpha: float = 0.05) -> pd.DataFrame:
    """Cancellation and return rates per product, category or customer, flagged when above the shop's rate.

    Parameters
    ----------
    orders : DataFrame
        Clean canonical orders.
    order_lines : DataFrame, optional
        Needed for ``by="product_id"`` and ``by="category"``: an order counts once for each product on it.
    products : DataFrame, optional
        Needed for ``by="category"``; with ``by="product_id"`` adds ``name`` and ``category``.
    by : {"product_id", "category", "customer_id"}
        Grouping.
    min_orders : int
        Groups with fewer orders are left out (their rates say little).
    alpha : float
        Two-sided level of the Wilson intervals; a rate is flagged when its interval's lower end is above
        the shop's rate (one-sided level ``alpha / 2``, not adjusted for the many groups tested).

    Returns
    -------
    DataFrame
        ``<by>, orders, cancelled, cancel_rate, cancel_low, cancel_high, cancel_flag, kept, returned,
        return_rate, return_low, return_high, return_flag, flagged, shop_cancel_rate, shop_return_rate``
        (``kept`` = orders not cancelled, the base of the return rate); flagged first, then most orders.
    """
    if by not in RATE_GROUPS:
        raise CrmAnalyticsError(f"by must be one of {list(RATE_GROUPS)}, got {by!r}")
    o = _status(orders)
    shop_cancel = float(o["cancelled"].mean())
    shop_return = float(o["returned"].sum() / max(int((~o["cancelled"]).sum()), 1))
    unit = o.loc[o["customer_id"].notna(), ["order_id", "customer_id", "cancelled", "returned"]]
    if by != "customer_id":
        if order_lines is None:
            raise CrmAnalyticsError(f"by={by!r} needs order_lines (which products each order holds)")
        _need(order_lines, ["order_id", "product_id"], "order_lines")
        unit = o[["order_id", "cancelled", "returned"]].merge(order_lines[["order_id", "product_id"]], on="order_id")
        if by == "category" or products is not None:
            if products is None:
                raise CrmAnalyticsError("by='category' needs products (the category of each product)")
            _need(products, ["product_id", "name", "category"], "products")
            unit = unit.merge(products[["product_id", "category"]], on="product_id", how="left")
            unit["category"] = unit["category"].astype(object).where(unit["category"].notna(), "(unknown)")
        unit = unit.drop_duplicates([by, "order_id"])
    g = unit.groupby(by).agg(orders=("order_id", "size"), cancelled=("cancelled", "sum"), returned=("returned", "sum"))
    g = g[g["orders"] >= int(min_orders)].astype("int64")
    g["kept"] = g["orders"] - g["cancelled"]
    g["cancel_rate"] = g["cancelled"] / g["orders"]
    g["cancel_low"], g["cancel_high"] = _wilson(g["cancelled"], g["orders"], alpha)
    g["return_rate"] = g["returned"] / g["kept"].where(g["kept"] > 0)
    g["return_low"], g["return_high"] = _wilson(g["returned"], g["kept"], alpha)
    g["cancel_flag"] = g["cancel_low"] > shop_cancel
    g["return_flag"] = g["return_low"] > shop_return
    g["flagged"] = g["cancel_flag"] | g["return_flag"]
    g["shop_cancel_rate"], g["shop_return_rate"] = shop_cancel, shop_return
    g = g[["orders", "cancelled", "cancel_rate", "cancel_low", "cancel_high", "cancel_flag", "kept", "returned",
           "return_rate", "return_low", "return_high", "return_flag", "flagged", "shop_cancel_rate",
           "shop_return_rate"]].reset_index()
    if by == "product_id" and products is not None:
        info = products.drop_duplicates("product_id").set_index("product_id")
        g.insert(1, "name", g["product_id"].map(info["name"]))
        g.insert(2, "category", g["product_id"].map(info["category"]))
    return g.sort_values(["flagged", "orders", by], ascending=[False, False, True], ignore_index=True)


def robust_z(x: pd.DataFrame) -> pd.DataFrame:
    """Robust z-scores ``(x - median) / (1.4826 MAD)`` per column (Iglewicz & Hoaglin 1993).

    Where the MAD is 0 (most customers never return anything) the scale is ``1.2533 x mean absolute
    deviation from the median``; where that is 0 too, every value equals the median and z is 0.
    """
    med = x.median()
    dev = (x - med).abs()
    scale = (1.4826 * dev.median()).where(lambda s: s > 0, 1.253314 * dev.mean())
    return ((x - med) / scale.where(scale > 0)).fillna(0.0)


def _cancel_bursts(o: pd.DataFrame) -> np.ndarray:
    """For each order of *o*: cancelled orders of its customer in the 7 days up to and including it."""
    code = pd.factorize(o["customer_id"])[0].astype(np.int64)
    sec = ((o["order_ts"] - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
    key = code * 10**10 + sec  # customer first, then time: one sorted key for every customer at once
    ck = np.sort(key[o["cancelled"].to_numpy()])
    return np.searchsorted(ck, key, side="right") - np.searchsorted(ck, key - WEEK_SECONDS, side="right")


def _customer_features(o: pd.DataFrame, lines: pd.DataFrame | None) -> pd.DataFrame:
    g = o.groupby("customer_id")
    f = pd.DataFrame({"orders": g.size(), "cancelled": g["cancelled"].sum(), "returned": g["returned"].sum()})
    f["kept"] = f["orders"] - f["cancelled"]
    f["cancel_rate"] = f["cancelled"] / f["orders"]
    f["return_rate"] = (f["returned"] / f["kept"].where(f["kept"] > 0)).fillna(0.0)
    f["max_cancels_7d"] = o.assign(b=np.where(o["cancelled"], o["burst"], 0)).groupby("customer_id")["b"].max()
    f["max_value_ratio"] = g["value_ratio"].max()
    if lines is not None:
        f["units_per_order"] = o.groupby("customer_id")["units"].mean()
    return f


def _order_features(o: pd.DataFrame) -> pd.DataFrame:
    cols = ["customer_id", "order_total", "value_ratio", "cancelled", "returned", "burst"]
    f = o.set_index("order_id")[cols + (["units"] if "units" in o else [])].rename(columns={"burst": "cancels_7d"})
    return f.astype({"cancelled": int, "returned": int})


def _reasons(f: pd.DataFrame, z: pd.DataFrame, level: str, shop: dict[str, float], med: pd.Series,
             z_threshold: float, max_reasons: int) -> list[str]:
    """The reasons of each row of *f* in words: features with ``z >= z_threshold``, largest z first."""
    def say(name: str, r: pd.Series) -> str | None:
        if name == "return_rate" and r["returned"] >= MIN_EVENTS_FOR_REASON:
            text = ("returned {returned:.0f} of {kept:.0f} orders (shop: {shop:.0%})" if r["cancelled"] == 0 else
                    "returned {returned:.0f} of {kept:.0f} orders not cancelled (shop: {shop:.0%})")
            return i18n.t(text, returned=r["returned"], kept=r["kept"], shop=shop["return"])
        if name == "cancel_rate" and r["cancelled"] >= MIN_EVENTS_FOR_REASON:
            return i18n.t("cancelled {cancelled:.0f} of {orders:.0f} orders (shop: {shop:.0%})",
                          cancelled=r["cancelled"], orders=r["orders"], shop=shop["cancel"])
        if name in ("max_cancels_7d", "cancels_7d") and r[name] >= MIN_EVENTS_FOR_REASON:
            if level == "customer":
                return i18n.t("cancelled {n:.0f} orders in 7 days", n=r[name])
            return i18n.t("the customer cancelled {n:.0f} orders in 7 days", n=r[name])
        if name in ("max_value_ratio", "value_ratio") and r[name] >= 2:
            return i18n.t("order value {ratio:.0f}× the customer's median" if r[name] >= 10 else
                          "order value {ratio:.1f}× the customer's median", ratio=r[name])
        if name == "order_total" and r["value_ratio"] >= 2:
            text = ("order value {ratio:.0f}× the customer's median ({value:money}; median order: {median:money})"
                    if r["value_ratio"] >= 10 else
                    "order value {ratio:.1f}× the customer's median ({value:money}; median order: {median:money})")
            return i18n.t(text, ratio=r["value_ratio"], value=r[name], median=med[name])
        if name == "units_per_order":
            return i18n.t("{units:.1f} units per order (median customer: {median:.1f})", units=r[name],
                          median=med[name])
        if name == "units":
            return i18n.t("{units:.0f} units (median order: {median:.0f})", units=r[name], median=med[name])
        if name == "order_total":
            return i18n.t("order value {value:money} (median order: {median:money})", value=r[name],
                          median=med[name])
        return None

    out = []
    for i in range(len(f)):  # candidates only: about `contamination` of the rows
        row, said = f.iloc[i], {}
        for k, v in z.iloc[i].sort_values(ascending=False).items():
            text = say(k, row) if v >= z_threshold else None
            if text and _TOPIC[k] not in said:  # one sentence per topic: the furthest feature's
                said[_TOPIC[k]] = text
        texts = list(said.values())[:max_reasons]
        if texts and level == "order" and (row["cancelled"] or row["returned"]):
            texts.append(i18n.t("the order was cancelled") if row["cancelled"] else i18n.t("the order was returned"))
        out.append("; ".join(texts))
    return out


def flag_anomalies(orders: pd.DataFrame, order_lines: pd.DataFrame | None = None, *, level: str = "customer",
                   contamination: float = 0.01, seed: int = 0, z_threshold: float = 3.5,
                   max_reasons: int = 3) -> pd.DataFrame:
    """Customers (or orders) with abnormal cancellation or return patterns, flagged for review with reasons.

    Features, computed for every row at once:

    - customer: ``orders, cancelled, returned, kept, cancel_rate, return_rate, max_cancels_7d`` (most
      cancelled orders within 7 days), ``max_value_ratio`` (largest order / the customer's median order)
      and, with *order_lines*, ``units_per_order``;
    - order: ``order_total, value_ratio`` (order / the customer's median order), ``cancelled, returned,
      cancels_7d`` (the customer's cancelled orders in the 7 days up to this one) and ``units``.

    An :class:`sklearn.ensemble.IsolationForest` (``contamination``, ``random_state=seed``) on
    log-scaled counts and ratios gives ``anomaly_score`` (``-score_samples``: higher = more abnormal,
    about 0.5 for ordinary rows). A row is ``flagged`` when the forest calls it an outlier **and** it has
    a reason: a risk feature at least *z_threshold* robust z-scores (:func:`robust_z`) above the median
    (a row isolated only for being unusually good, e.g. many orders and no returns, is not flagged).
    ``reasons`` (for flagged rows) names up to *max_reasons* of them in words, largest first; counts
    need at least two events and value ratios at least 2×. Orders without a customer are left out.

    Returns
    -------
    DataFrame
        ``customer_id`` (or ``order_id, customer_id``), ``anomaly_score, flagged, reasons`` and the
        features; highest score first.
    """
    if level not in LEVELS:
        raise CrmAnalyticsError(f"level must be one of {list(LEVELS)}, got {level!r}")
    if not 0 < contamination <= 0.5:
        raise CrmAnalyticsError(f"contamination must be in (0, 0.5], got {contamination!r}: it is the share flagged")
    o = _status(orders)
    if not isinstance(o["order_ts"].dtype, pd.DatetimeTZDtype):
        raise DataContractError(f"orders: column 'order_ts' must hold tz-aware UTC timestamps, got dtype "
                                f"{o['order_ts'].dtype}; clean the table first or use pd.to_datetime(..., utc=True)")
    shop = {"cancel": float(o["cancelled"].mean()),
            "return": float(o["returned"].sum() / max(int((~o["cancelled"]).sum()), 1))}
    o = o[o["customer_id"].notna()].sort_values(["customer_id", "order_ts", "order_id"], ignore_index=True)
    if len(o) < 2:
        raise CrmAnalyticsError(f"orders: {len(o)} order(s) with a customer; anomalies need at least 2")
    total = o["order_total"].astype(float)
    ratio = total / o.groupby("customer_id")["order_total"].transform("median")
    o["value_ratio"] = ratio.replace([np.inf, -np.inf], np.nan).fillna(1.0)  # median 0 or missing: no signal
    o["burst"] = _cancel_bursts(o)
    if order_lines is not None:
        _need(order_lines, ["order_id", "quantity"], "order_lines")
        o["units"] = o["order_id"].map(order_lines.groupby("order_id")["quantity"].sum()).fillna(0).astype(float)
    if level == "customer":
        f = _customer_features(o, order_lines)
        risk = ["return_rate", "cancel_rate", "max_cancels_7d", "max_value_ratio"]
        model = ["returned", "cancelled", "max_cancels_7d", "return_rate", "cancel_rate", "max_value_ratio"]
    else:
        f = _order_features(o)
        risk = ["value_ratio", "cancels_7d", "order_total"]
        model = ["order_total", "value_ratio", "cancels_7d", "cancelled", "returned"]
    extra = ["units_per_order" if level == "customer" else "units"] if order_lines is not None else []
    risk, model = risk + extra, model + extra
    x = f[model].astype(float).fillna(0.0)
    logged = [c for c in model if not c.endswith("_rate") and not (level == "order" and c in ("cancelled", "returned"))]
    x[logged] = np.log1p(x[logged].clip(lower=0))
    forest = IsolationForest(n_estimators=200, contamination=contamination, random_state=seed).fit(x.to_numpy())
    f.insert(0, "anomaly_score", -forest.score_samples(x.to_numpy()))
    outlier = forest.predict(x.to_numpy()) == -1
    z = robust_z(f[risk].astype(float))
    f.insert(1, "flagged", False)
    f.insert(2, "reasons", "")
    cand = np.flatnonzero(outlier & (z >= z_threshold).any(axis=1).to_numpy())
    said = _reasons(f.iloc[cand], z.iloc[cand], level, shop, f[risk].median(), z_threshold, max_reasons)
    f.iloc[cand, f.columns.get_loc("reasons")] = said
    f["flagged"] = f["reasons"].ne("")
    f = f.reset_index()
    if level == "order":
        f.insert(1, "customer_id", f.pop("customer_id"))
    return f.sort_values("anomaly_score", ascending=False, ignore_index=True)

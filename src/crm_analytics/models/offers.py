"""Recognise, remember and offer: the personal half of the 4R frame (recognise the customer, remember
what they looked at and left in the cart, send promotions that fit their taste).

- Remember: :func:`viewed_not_bought`, :func:`abandoned_carts` (from :func:`crm_analytics.models.funnel.abandoned_items`)
  and :func:`remember`, both as one row per customer.
- Offer: :func:`category_affinity` (shares shrunk towards the segment), :func:`top_category`,
  :func:`segment_offers` (segment × category lift), and the :func:`birthday_list` and :func:`winback_list`.

Rules: a view or cart is a customer's when its event holds their ``customer_id`` or its ``anonymous_id``
is seen with exactly that one customer (the stitching rule of :func:`crm_analytics.ingest.identity.stitch_events`,
which ``abandoned_items`` follows too): recognising a visitor before they log in. A purchase is an order
completed or returned (:data:`crm_analytics.ingest.tables.PURCHASE_STATUSES`). Windows are half-open,
``as_of - days <= ts < as_of``. The grouping over events and order lines runs in DuckDB through Ibis
(:func:`crm_analytics.ingest.tables.local_ibis`); events may be a DataFrame or a :class:`crm_analytics.ingest.tables.ParquetTable`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.models.behaviour import _columns_of, _need, _session_rows, _utc
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.models.funnel import abandoned_items
from crm_analytics.ingest.privacy import marketing_consent
from crm_analytics.ingest.tables import PURCHASE_STATUSES, local_ibis

__all__ = ["NO_SEGMENT", "POOLED", "RISK_LEVELS", "abandoned_carts", "birthday_list", "category_affinity", "remember",
           "segment_offers", "top_category", "viewed_not_bought", "winback_list"]

#: the segment label of small segments pooled by :func:`segment_offers`
POOLED = "other segments"
#: the segment label of customers the segments table does not hold
NO_SEGMENT = "(no segment)"
#: churn-risk levels of ``clv.parquet``
RISK_LEVELS = ("low", "medium", "high")


# --------------------------------------------------------------------------------------------
# checks and shared pieces
# --------------------------------------------------------------------------------------------
def _window(as_of: Any, days: float) -> tuple[pd.Timestamp, pd.Timestamp]:
    try:
        end = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"as_of={as_of!r} is not a date or time (use ISO 8601, e.g. '2025-12-31')") from exc
    if pd.isna(end):
        raise ParamsError("as_of is missing; pass the date the lists are made for, e.g. '2025-12-31'")
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    if isinstance(days, bool) or not (isinstance(days, (int, float)) and np.isfinite(days) and days > 0):
        raise ParamsError(f"days={days!r} must be a positive number of days (30 by default)")
    return end - pd.Timedelta(days=days), end


def _lit(ts: pd.Timestamp) -> Any:
    import ibis

    return ibis.literal(ts.as_unit("us").to_pydatetime())


def _bought(db: Any, orders: pd.DataFrame, order_lines: pd.DataFrame, end: pd.Timestamp) -> Any:
    """Ibis table of purchased lines ``customer_id, product_id, order_ts`` with ``order_ts < end``."""
    _need(orders, ["order_id", "customer_id", "order_ts", "status"], "orders")
    _need(order_lines, ["order_id", "product_id"], "order_lines")
    o = orders[["order_id", "customer_id", "order_ts", "status"]]
    ts = pd.to_datetime(o["order_ts"], utc=True)
    o = o.assign(order_ts=ts.dt.floor("us").dt.as_unit("us") if ts.dt.unit == "ns" else ts)
    ot, lt = db.table(o), db.table(order_lines[["order_id", "product_id"]])
    ot = ot.filter(ot.customer_id.notnull() & ot.status.isin(list(PURCHASE_STATUSES)) & (ot.order_ts < _lit(end)))
    j = lt.filter(lt.product_id.notnull()).join(ot, "order_id")
    return j.select(customer_id=j.customer_id.cast("string"), product_id=j.product_id.cast("string"),
                    order_ts=j.order_ts)


def _not_bought_since(t: Any, bought: Any, since: str) -> Any:
    """Rows of *t* (``customer_id, product_id, <since>``) whose customer did not buy the product at or after *since*."""
    return t.anti_join(bought, [t.customer_id == bought.customer_id, t.product_id == bought.product_id,
                                bought.order_ts >= t[since]])


def _describe(out: pd.DataFrame, products: pd.DataFrame | None) -> pd.DataFrame:
    """*out* with the product's ``name`` and ``category`` (those *products* holds)."""
    if products is None:
        return out
    _need(products, ["product_id"], "products")
    cols = [c for c in ("name", "category") if c in products and c not in out]
    info = products.drop_duplicates("product_id")[["product_id", *cols]]
    return out.merge(info.assign(product_id=info["product_id"].astype(str)), on="product_id", how="left")


# --------------------------------------------------------------------------------------------
# remember
# --------------------------------------------------------------------------------------------
def viewed_not_bought(events: Any, orders: pd.DataFrame, order_lines: pd.DataFrame, *, as_of: Any,
                      days: float = 30, products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Products each known customer viewed in the *days* before *as_of* and did not buy afterwards.

    A (customer, product) pair is kept when the customer (known or stitched, see the module notes) has
    a ``product_view`` of it with ``as_of - days <= ts < as_of`` and no purchase of it from their first
    view in that window up to *as_of* (viewed, bought, viewed again counts as bought).

    Parameters
    ----------
    events : DataFrame or tables.ParquetTable
        Clean events with ``ts, event_type, customer_id, product_id`` (``anonymous_id`` for stitching).
    orders, order_lines, products : DataFrame
        Clean canonical tables; *products* (optional) adds ``name`` and ``category``.
    as_of, days : timestamp-like, float
        The window ends at *as_of* (excluded; a naive value is UTC) and lasts *days* days.

    Returns
    -------
    DataFrame
        ``customer_id, product_id, views, last_viewed_ts`` (+ ``name, category``), by customer and most
        recent view first.

    Raises
    ------
    ParamsError, DataContractError
        *as_of* is not a date or *days* not a positive number; a table lacks a column.

    Examples
    --------
    >>> ev = pd.DataFrame({"ts": pd.to_datetime(["2025-01-10", "2025-01-12"], utc=True),
    ...                    "event_type": "product_view", "customer_id": "C1", "product_id": ["P1", "P2"]})
    >>> orders = pd.DataFrame({"order_id": ["O1"], "customer_id": ["C1"], "order_ts": pd.to_datetime(["2025-01-11"],
    ...                        utc=True), "status": ["completed"]})
    >>> lines = pd.DataFrame({"order_id": ["O1"], "product_id": ["P1"]})
    >>> viewed_not_bought(ev, orders, lines, as_of="2025-01-31")[["customer_id", "product_id", "views"]].values.tolist()
    [['C1', 'P2', 1]]
    """
    start, end = _window(as_of, days)
    missing = [c for c in ("customer_id", "product_id") if c not in _columns_of(events)]
    if missing:
        raise DataContractError(f"events: column(s) {missing} not found; viewed_not_bought needs who viewed which "
                                "product (clean events of notebook 01)")
    with local_ibis() as db:
        t = _session_rows(db, events)
        t = t.filter((t.event_type == "product_view") & t.person.notnull() & t.product_id.notnull()
                     & (t.ts >= _lit(start)) & (t.ts < _lit(end)))
        v = t.group_by(customer_id=t.person, product_id=t.product_id).aggregate(
            views=t.count(), first_viewed_ts=t.ts.min(), last_viewed_ts=t.ts.max())
        v = _not_bought_since(v, _bought(db, orders, order_lines, end), "first_viewed_ts")
        v = v.order_by([v.customer_id, v.last_viewed_ts.desc(), v.product_id])
        out = _utc(v.select("customer_id", "product_id", "views", "last_viewed_ts").to_pyarrow().to_pandas())
    out["views"] = out["views"].astype("int64")
    return _describe(out, products)


def abandoned_carts(events: Any, orders: pd.DataFrame, order_lines: pd.DataFrame, *, as_of: Any,
                    days: float = 30, products: pd.DataFrame | None = None) -> pd.DataFrame:
    """Products each known customer left in abandoned carts in the *days* before *as_of* and did not buy since.

    Abandoned items are :func:`crm_analytics.models.funnel.abandoned_items` (sessions with an add-to-cart and
    no purchase; adds minus removes). A (customer, product) pair is kept when an abandonment falls in
    ``as_of - days <= abandoned_ts < as_of`` and the customer did not buy the product from the first
    such abandonment up to *as_of*.

    Returns
    -------
    DataFrame
        ``customer_id, product_id, items`` (summed over the window's abandoned sessions), ``value``
        (``items × price``; missing without *products*), ``abandoned_ts`` (the last one) and, with
        *products*, ``name, category``; by customer and most recent first.
    """
    start, end = _window(as_of, days)
    items = abandoned_items(events, products=products)
    items = items[items["customer_id"].notna() & (items["abandoned_ts"] >= start) & (items["abandoned_ts"] < end)]
    if "value" not in items:
        items = items.assign(value=np.nan)
    carts = items.assign(customer_id=items["customer_id"].astype(str), product_id=items["product_id"].astype(str))
    carts = carts.groupby(["customer_id", "product_id"], as_index=False).agg(
        items=("items", "sum"), value=("value", lambda s: s.sum(min_count=1)),
        first_ts=("abandoned_ts", "min"), abandoned_ts=("abandoned_ts", "max"))
    with local_ibis() as db:
        c = db.table(carts.assign(first_ts=carts["first_ts"].dt.as_unit("us")))
        kept = _not_bought_since(c, _bought(db, orders, order_lines, end), "first_ts").select(
            "customer_id", "product_id").to_pyarrow().to_pandas()
    out = carts.merge(kept, on=["customer_id", "product_id"])
    out = out.sort_values(["customer_id", "abandoned_ts", "product_id"], ascending=[True, False, True],
                          ignore_index=True)
    out = out[["customer_id", "product_id", "items", "value", "abandoned_ts"]].astype({"items": "int64"})
    return _describe(out, products)


def remember(customers_index: Any, viewed: pd.DataFrame, carts: pd.DataFrame) -> pd.DataFrame:
    """What to remember about each customer, one row per customer of *customers_index*.

    *customers_index* (an Index, array-like, or a DataFrame's ``customer_id``) are the customers to describe
    (others in *viewed* or *carts* are left out); *viewed*, *carts* are :func:`viewed_not_bought` and
    :func:`abandoned_carts`.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``viewed_not_bought`` (number of products), ``last_viewed_product``
        (product id of the most recent view), ``abandoned_cart_items``, ``abandoned_cart_value`` (0 with
        nothing abandoned, missing when abandoned carts are unpriced), ``last_cart_product``.
    """
    _need(viewed, ["customer_id", "product_id", "last_viewed_ts"], "viewed")
    _need(carts, ["customer_id", "product_id", "items", "value", "abandoned_ts"], "carts")
    ids = customers_index["customer_id"] if isinstance(customers_index, pd.DataFrame) else customers_index
    index = pd.Index(pd.unique(pd.Series(ids, dtype=object).dropna()), name="customer_id")
    out = pd.DataFrame(index=index)
    v = viewed.sort_values(["last_viewed_ts", "product_id"], ascending=[False, True])
    c = carts.sort_values(["abandoned_ts", "product_id"], ascending=[False, True])
    out["viewed_not_bought"] = v.groupby("customer_id").size().reindex(index).fillna(0).astype("int64")
    out["last_viewed_product"] = v.drop_duplicates("customer_id").set_index("customer_id")["product_id"].reindex(index)
    g = c.groupby("customer_id")
    out["abandoned_cart_items"] = g["items"].sum().reindex(index).fillna(0).astype("int64")
    value = g["value"].sum(min_count=1).reindex(index)
    out["abandoned_cart_value"] = value.where(value.notna() | (out["abandoned_cart_items"] > 0), 0.0).astype(float)
    out["last_cart_product"] = c.drop_duplicates("customer_id").set_index("customer_id")["product_id"].reindex(index)
    return out


# --------------------------------------------------------------------------------------------
# offers: category affinity
# --------------------------------------------------------------------------------------------
def category_affinity(orders: pd.DataFrame, order_lines: pd.DataFrame, products: pd.DataFrame, *,
                      segments: pd.DataFrame | None = None, prior_strength: float = 5.0) -> pd.DataFrame:
    """Each customer's share of purchased items per category, shrunk towards their segment's share.

    ``share = (n_cat + m · prior_share) / (n + m)`` with ``n_cat`` the customer's items in the category
    (``quantity`` of purchase lines, 1 where missing), ``n`` all their items, ``m`` = *prior_strength*
    and ``prior_share`` the category's share of all items bought by the customer's segment (the shop's
    for customers without one). A customer with few purchases gets their segment's taste; one with many,
    their own. Lines of products without a category are left out.

    Parameters
    ----------
    orders, order_lines, products : DataFrame
        Clean canonical tables; orders completed or returned of known customers count.
    segments : DataFrame, optional
        ``customer_id, segment`` (the segmentation notebook's ``segments.parquet``).
    prior_strength : float
        ``m``, in items: how many of the segment's purchases the prior weighs as (0 = no shrinkage).

    Returns
    -------
    DataFrame
        Long: ``customer_id, category, share``, every category with a positive share (the shares of a
        customer sum to 1), by customer and share descending.

    Examples
    --------
    >>> o = pd.DataFrame({"order_id": ["O1", "O2"], "customer_id": ["A", "B"], "status": "completed",
    ...                   "order_ts": pd.to_datetime(["2025-01-01", "2025-01-02"], utc=True)})
    >>> ol = pd.DataFrame({"order_id": ["O1", "O2"], "product_id": ["P1", "P2"], "quantity": [1.0, 3.0]})
    >>> p = pd.DataFrame({"product_id": ["P1", "P2"], "category": ["books", "toys"]})
    >>> a = category_affinity(o, ol, p, prior_strength=4.0)
    >>> a[a.customer_id == "A"].values.tolist()  # books: (1 + 4 * 1/4) / (1 + 4)
    [['A', 'toys', 0.6], ['A', 'books', 0.4]]
    """
    import ibis

    if isinstance(prior_strength, bool) or not (isinstance(prior_strength, (int, float))
                                                and np.isfinite(prior_strength) and prior_strength >= 0):
        raise ParamsError(f"prior_strength={prior_strength!r} must be a number of items >= 0 (5 by default)")
    _need(orders, ["order_id", "customer_id", "status"], "orders")
    _need(order_lines, ["order_id", "product_id"], "order_lines")
    _need(products, ["product_id", "category"], "products")
    seg = pd.DataFrame({"customer_id": pd.Series(dtype=str), "segment": pd.Series(dtype=str)})
    if segments is not None:
        _need(segments, ["customer_id", "segment"], "segments")
        seg = segments.dropna(subset=["customer_id", "segment"]).drop_duplicates("customer_id")
        seg = pd.DataFrame({"customer_id": seg["customer_id"].astype(str).to_numpy(),
                            "segment": seg["segment"].astype(str).to_numpy()})
    lines = order_lines[["order_id", "product_id"]].assign(
        qty=order_lines["quantity"].astype(float).fillna(1.0) if "quantity" in order_lines else 1.0)
    m = float(prior_strength)
    with local_ibis() as db:
        ot = db.table(orders[["order_id", "customer_id", "status"]])
        ot = ot.filter(ot.customer_id.notnull() & ot.status.isin(list(PURCHASE_STATUSES)))
        pt = db.table(products[["product_id", "category"]].drop_duplicates("product_id"))
        pt = pt.filter(pt.category.notnull())
        lt = db.table(lines)
        j = lt.filter(lt.qty > 0).join(ot, "order_id").join(pt, "product_id")
        own = j.group_by(customer_id=j.customer_id.cast("string"), category=j.category.cast("string")).aggregate(
            n_cat=j.qty.sum())
        st = db.table(seg)
        tot = own.group_by("customer_id").aggregate(n=own.n_cat.sum())
        tot = tot.left_join(st, tot.customer_id == st.customer_id).select("customer_id", "n", "segment")
        ws = own.join(st, "customer_id")
        by_seg = ws.group_by(["segment", "category"]).aggregate(n_cat=ws.n_cat.sum())
        shop = own.group_by("category").aggregate(n_cat=own.n_cat.sum())
        pool = by_seg.union(shop.select(segment=ibis.null("string"), category="category", n_cat="n_cat"))
        pool = pool.mutate(prior=pool.n_cat / pool.n_cat.sum().over(group_by=pool.segment)).drop("n_cat")
        x = tot.join(pool, tot.segment.identical_to(pool.segment)).select(tot.customer_id, tot.n, pool.category,
                                                                          pool.prior)
        x = x.left_join(own, [x.customer_id == own.customer_id, x.category == own.category]).select(
            x.customer_id, x.category, share=(own.n_cat.fill_null(0) + m * x.prior) / (x.n + m))
        x = x.filter(x.share > 0).order_by([x.customer_id, x.share.desc(), x.category])
        return x.to_pyarrow().to_pandas()


def top_category(affinity: pd.DataFrame) -> pd.DataFrame:
    """The category to offer each customer: their highest :func:`category_affinity` share (ties: first by name).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``offer_category``, ``affinity`` (its share).
    """
    _need(affinity, ["customer_id", "category", "share"], "affinity")
    top = affinity.sort_values(["share", "category"], ascending=[False, True]).drop_duplicates("customer_id")
    out = top.set_index("customer_id")[["category", "share"]].sort_index()
    return out.rename(columns={"category": "offer_category", "share": "affinity"})


def segment_offers(affinity: pd.DataFrame, segments: pd.DataFrame, *, min_customers: int = 20) -> pd.DataFrame:
    """Segment × category affinity and the category to promote to each segment.

    ``mean_share`` is the mean of the segment's customers' shares (a missing row counts 0);
    ``lift = mean_share / shop_mean_share``, the shop-wide mean over every customer of *affinity*. The
    category to promote (``promote``) is the one with the highest lift: what the segment likes more
    than the shop does (the biggest category is usually the same for everyone). Segments with fewer
    than *min_customers* customers are pooled as :data:`POOLED` (their names in ``attrs["pooled_segments"]``),
    so a lift of three customers is not read as a taste; customers without a segment are :data:`NO_SEGMENT`.

    Returns
    -------
    DataFrame
        One row per segment and category: ``segment, category, customers, mean_share, shop_mean_share,
        lift, promote`` (bool, one per segment); larger segments first, the pooled group last.
    """
    if isinstance(min_customers, bool) or not isinstance(min_customers, (int, np.integer)) or min_customers < 1:
        raise ParamsError(f"min_customers={min_customers!r} must be a whole number of customers >= 1")
    _need(affinity, ["customer_id", "category", "share"], "affinity")
    _need(segments, ["customer_id", "segment"], "segments")
    seg = segments.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
    seg = pd.Series(seg["segment"].astype(object).to_numpy(), index=seg["customer_id"].astype(str).to_numpy())
    cust = pd.Index(affinity["customer_id"].astype(str).unique())
    group = seg.reindex(cust).fillna(NO_SEGMENT).astype(str)
    sizes = group.value_counts()
    small = sorted(sizes.index[sizes < min_customers])
    group = group.where(~group.isin(small), POOLED)
    n = group.value_counts()
    a = pd.DataFrame({"segment": affinity["customer_id"].astype(str).map(group),
                      "category": affinity["category"].astype(str), "share": affinity["share"].astype(float)})
    grid = pd.MultiIndex.from_product([n.index, sorted(a["category"].unique())], names=["segment", "category"])
    out = a.groupby(["segment", "category"])["share"].sum().reindex(grid, fill_value=0.0).reset_index()
    out["customers"] = out["segment"].map(n).astype("int64")
    out["mean_share"] = out["share"] / out["customers"]
    shop = a.groupby("category")["share"].sum() / max(len(cust), 1)
    out["shop_mean_share"] = out["category"].map(shop).astype(float)
    out["lift"] = out["mean_share"] / out["shop_mean_share"]
    out = out.assign(_pooled=out["segment"].eq(POOLED), _n=-out["customers"]).sort_values(
        ["_pooled", "_n", "segment", "lift", "mean_share", "category"],
        ascending=[True, True, True, False, False, True], ignore_index=True)
    out["promote"] = ~out["segment"].duplicated()
    out = out[["segment", "category", "customers", "mean_share", "shop_mean_share", "lift", "promote"]]
    out.attrs["pooled_segments"] = small
    return out


# --------------------------------------------------------------------------------------------
# contact lists
# --------------------------------------------------------------------------------------------
def _month(month: Any) -> tuple[int | None, int]:
    if isinstance(month, (int, np.integer)) and not isinstance(month, bool) and 1 <= month <= 12:
        return None, int(month)
    if isinstance(month, str) and re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        return int(month[:4]), int(month[5:])
    raise ParamsError(f"month must be an int 1–12 or a 'YYYY-MM' string such as '2026-02', got {month!r}")


def birthday_list(customers: pd.DataFrame, *, month: int | str) -> pd.DataFrame:
    """Consented customers whose birthday falls in *month*, with the day only.

    *month* is an int 1–12 (birthdays recur every year) or a ``'YYYY-MM'`` string (the month the list is
    sent in, as params hold it). Only the year decides Feb 29: in a ``'YYYY-02'`` of a year that is not a
    leap year, customers born on Feb 29 are listed on day 28 so their birthday is not skipped; with an int
    or a leap year they keep day 29. Only customers with marketing consent
    (:func:`crm_analytics.ingest.privacy.marketing_consent`; missing consent is no consent) are listed, and
    neither the birth year nor the date leaves: the list goes to an e-mail tool.

    Returns
    -------
    DataFrame
        ``customer_id, birth_day`` (day of month, int64), by day then customer.

    Raises
    ------
    ParamsError, DataContractError
        *month* is neither; ``customer_id`` or ``birth_date`` is missing, or birth dates are not dates.

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": ["a", "b"], "birth_date": pd.to_datetime(["1992-02-29", "1985-02-03"]),
    ...                   "consent_marketing": [True, True]})
    >>> birthday_list(c, month="2027-02").values.tolist()
    [['b', 3], ['a', 28]]
    """
    year, mon = _month(month)
    _need(customers, ["customer_id", "birth_date"], "customers")
    raw = customers["birth_date"]
    born = raw if pd.api.types.is_datetime64_any_dtype(raw) else pd.to_datetime(raw, errors="coerce", format="ISO8601")
    bad = raw.notna() & born.isna()
    if bad.any():
        raise DataContractError(f"customers.birth_date: {int(bad.sum())} value(s) are not dates (e.g. "
                                f"{raw[bad].iloc[0]!r}); clean the customers table first (notebook 01)")
    consent = marketing_consent(customers)
    ok = customers["customer_id"].isin(consent.index[consent])
    pick = ok & born.notna() & (born.dt.month == mon)
    day = born[pick].dt.day.astype("int64")
    if year is not None and mon == 2 and not pd.Timestamp(year=year, month=1, day=1).is_leap_year:
        day = day.clip(upper=28)
    out = pd.DataFrame({"customer_id": customers.loc[pick, "customer_id"].to_numpy(), "birth_day": day.to_numpy()})
    return out.drop_duplicates("customer_id").sort_values(["birth_day", "customer_id"], ignore_index=True)


def winback_list(clv: pd.DataFrame, *, risk_levels: Sequence[str] = ("high",)) -> pd.DataFrame:
    """Customers the CLV/churn notebook puts at churn risk, most valuable first.

    *clv* is ``clv.parquet`` of ``03_clv_churn``: indexed by ``customer_id`` (or with that column), with
    ``churn_risk`` (one of :data:`RISK_LEVELS`), ``p_alive``, ``clv``; *risk_levels* are the levels to list.

    Returns
    -------
    DataFrame
        ``customer_id, churn_risk, p_alive, clv``, by ``clv`` descending (missing last), then customer.
    """
    levels = [risk_levels] if isinstance(risk_levels, str) else list(risk_levels)
    wrong = [r for r in levels if r not in RISK_LEVELS]
    if not levels or wrong:
        raise ParamsError(f"risk_levels must be a non-empty subset of {list(RISK_LEVELS)}, got {risk_levels!r}")
    if not isinstance(clv, pd.DataFrame):
        raise DataContractError(f"clv must be a pandas DataFrame (clv.parquet), got {type(clv).__name__}")
    frame = clv if "customer_id" in clv.columns else clv.reset_index() if clv.index.name == "customer_id" else None
    if frame is None:
        raise DataContractError(f"clv: no customer_id (index {clv.index.name!r}, columns {list(clv.columns)}); "
                                "pass clv.parquet as read, indexed by customer_id")
    _need(frame, ["customer_id", "churn_risk", "p_alive", "clv"], "clv")
    out = frame.loc[frame["churn_risk"].astype(str).isin(levels), ["customer_id", "churn_risk", "p_alive", "clv"]]
    out = out.assign(churn_risk=out["churn_risk"].astype(str))
    return out.sort_values(["clv", "customer_id"], ascending=[False, True], na_position="last", ignore_index=True)

"""Product recommendations from purchases (and product views) as implicit feedback.

Every per-customer recommender follows one scikit-learn style interface::

    model = EASE(l2=200.0).fit(interactions)
    recs = model.recommend(customer_ids, n=10, exclude_seen=True)

``recs`` has one row per customer and rank: ``customer_id, rank, product_id, score, reason,
source_product_id``. ``reason`` is one of :data:`REASONS`; for ``"because you bought"`` the bought
product that contributed most to the score is in ``source_product_id`` (a notebook joins its name:
:func:`reason_text`). Customers the model never saw, and ranks a model has no evidence for (an
item-to-item model for a customer whose products have few neighbours), are filled with the most
popular products (reason ``"popular"``).

The models
----------
- :class:`Popularity`: products bought by the most distinct customers (the baseline).
- :class:`SegmentPopularity`: the same within the customer's segment ("popular in your segment").
- :class:`ItemKNN`: item-to-item cosine similarity of co-purchases (and co-views), shrunk towards 0
  for rarely bought items, top-k neighbours per item ("customers who bought X also bought").
- :class:`ALS`: ``implicit``'s alternating least squares matrix factorisation (Hu, Koren & Volinsky 2008).
- :class:`EASE`: Steck's closed-form linear item model (2019), often the strongest on shop-sized catalogues.
- "Frequently bought together" rules for a product page are in :mod:`crm_analytics.models.baskets`.

The data
--------
:func:`interaction_counts` counts, per customer and product, the purchase orders (status
completed or returned, known customer) and product views in DuckDB through Ibis
(:func:`crm_analytics.ingest.tables.local_ibis`), optionally within a time window; :func:`build_interactions`
turns the counts into :class:`Interactions`, a sparse customer × product matrix with its id maps.
A bought product counts 1, a product only viewed counts ``view_weight`` (0.25 by default).

References
----------
Steck, H. (2019). Embarrassingly shallow autoencoders for sparse data. WWW '19.
Hu, Y., Koren, Y., & Volinsky, C. (2008). Collaborative filtering for implicit feedback datasets. ICDM '08.
Deshpande, M., & Karypis, G. (2004). Item-based top-N recommendation algorithms. ACM TOIS 22(1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crm_analytics.errors import DataContractError, ModelFitError, ParamsError
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ParquetTable, local_ibis

__all__ = [
    "ALS",
    "EASE",
    "REASONS",
    "RECOMMENDATION_COLUMNS",
    "Interactions",
    "ItemKNN",
    "Popularity",
    "SegmentPopularity",
    "build_interactions",
    "interaction_counts",
    "product_names",
    "reason_text",
]

#: reasons a recommendation carries
REASONS = ("popular", "popular in your segment", "because you bought", "customers like you bought")
#: columns of every ``recommend`` result
RECOMMENDATION_COLUMNS = ("customer_id", "rank", "product_id", "score", "reason", "source_product_id")

#: scores held in memory at once while ranking (customers per batch × products, float32)
_BATCH_CELLS = 16_000_000


# --------------------------------------------------------------------------------------------
# interactions
# --------------------------------------------------------------------------------------------
def _utc_us(ts: pd.Series) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(ts):
        ts = pd.to_datetime(ts, utc=True)
    if getattr(ts.dt, "tz", None) is None:
        ts = ts.dt.tz_localize("UTC")
    if ts.dt.unit == "ns":
        ts = ts.dt.floor("us").dt.as_unit("us")
    return ts


def _need(frame: Any, name: str, columns: tuple[str, ...]) -> None:
    have = list(frame.columns)
    missing = [c for c in columns if c not in have]
    if missing:
        raise DataContractError(f"{name}: required column(s) {missing} not found; the table has {have}. "
                                f"Pass the clean {name} table (tables.read_clean(dataset, {name!r}))")


def _window(t: Any, col: str, start: Any, end: Any) -> Any:
    import ibis

    cond = t[col].notnull()
    if start is not None:
        cond &= t[col] >= ibis.literal(pd.Timestamp(start).tz_convert("UTC").to_pydatetime())
    if end is not None:
        cond &= t[col] < ibis.literal(pd.Timestamp(end).tz_convert("UTC").to_pydatetime())
    return t.filter(cond)


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def purchase_lines_expr(db: Any, orders: pd.DataFrame, order_lines: pd.DataFrame, *, start: Any = None,
                        end: Any = None) -> Any:
    """Ibis table of purchased lines (``customer_id, order_id, order_ts, product_id``): lines of orders
    with status completed or returned and a known customer, ``start <= order_ts < end``."""
    _need(orders, "orders", ("order_id", "customer_id", "order_ts", "status"))
    _need(order_lines, "order_lines", ("order_id", "product_id"))
    o = orders[["order_id", "customer_id", "order_ts", "status"]]
    o = o.assign(order_ts=_utc_us(o["order_ts"]))
    ot = db.table(o)
    ot = ot.filter(ot.customer_id.notnull() & ot.status.isin(list(PURCHASE_STATUSES)))
    ot = _window(ot, "order_ts", _utc(start), _utc(end))
    lt = db.table(order_lines[["order_id", "product_id"]])
    lt = lt.filter(lt.product_id.notnull())
    j = lt.join(ot, "order_id")
    return j.select(j.customer_id.cast("string"), j.order_id.cast("string"), "order_ts",
                    j.product_id.cast("string"))


def interaction_counts(orders: pd.DataFrame, order_lines: pd.DataFrame, events: Any = None, *, start: Any = None,
                       end: Any = None) -> pd.DataFrame:
    """Per customer and product: purchase orders and product views, counted in DuckDB through Ibis.

    Parameters
    ----------
    orders, order_lines : DataFrame
        Clean canonical tables. Orders count when their status is completed or returned and their
        customer is known (guest lines are dropped).
    events : DataFrame or tables.ParquetTable, optional
        Clean events; ``product_view`` events with a customer and a product are counted.
    start, end : timestamp-like, optional
        Count only purchases and views with ``start <= ts < end`` (naive values are UTC).

    Returns
    -------
    DataFrame
        ``customer_id, product_id, n_orders, n_views`` (int64), one row per pair with either count above 0.
    """
    import ibis

    with local_ibis() as db:
        lines = purchase_lines_expr(db, orders, order_lines, start=start, end=end)
        buys = lines.group_by(["customer_id", "product_id"]).aggregate(n_orders=lines.order_id.nunique())
        buys = buys.mutate(n_views=ibis.literal(0, "int64"), n_orders=buys.n_orders.cast("int64"))
        parts = [buys]
        if events is not None:
            _need(events, "events", ("ts", "customer_id", "event_type", "product_id"))
            if isinstance(events, ParquetTable):
                ev = db.parquet(events.path)
            else:
                e = events[["ts", "customer_id", "event_type", "product_id"]]
                ev = db.table(e.assign(ts=_utc_us(e["ts"])))
            ev = ev.filter((ev.event_type == "product_view") & ev.customer_id.notnull() & ev.product_id.notnull())
            ev = _window(ev, "ts", _utc(start), _utc(end))
            views = ev.group_by([ev.customer_id.cast("string").name("customer_id"),
                                 ev.product_id.cast("string").name("product_id")]).aggregate(
                n_views=ev.count().cast("int64"))
            views = views.mutate(n_orders=ibis.literal(0, "int64")).select("customer_id", "product_id", "n_orders",
                                                                           "n_views")
            parts.append(views)
        u = parts[0].select("customer_id", "product_id", "n_orders", "n_views")
        for p in parts[1:]:
            u = u.union(p)
        out = u.group_by(["customer_id", "product_id"]).aggregate(n_orders=u.n_orders.sum().cast("int64"),
                                                                  n_views=u.n_views.sum().cast("int64"))
        out = out.order_by(["customer_id", "product_id"])
        return out.to_pyarrow().to_pandas(types_mapper={pa.string(): pd.StringDtype("pyarrow"),
                                                        pa.large_string(): pd.StringDtype("pyarrow")}.get)


@dataclass
class Interactions:
    """Implicit feedback as a sparse customer × product matrix.

    Attributes
    ----------
    matrix : scipy.sparse.csr_matrix, float32
        1 where the customer bought the product, ``view_weight`` where they only viewed it.
    bought : scipy.sparse.csr_matrix, float32
        1 where the customer bought the product (what ``exclude_seen`` removes).
    customer_ids, product_ids : ndarray of object
        The id of each row and column.
    """

    matrix: sp.csr_matrix
    bought: sp.csr_matrix
    customer_ids: np.ndarray
    product_ids: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_buyers(self) -> np.ndarray:
        """Distinct buying customers per product."""
        return np.asarray(self.bought.sum(axis=0)).ravel()

    def customer_rows(self, customer_ids: Any) -> np.ndarray:
        """Row of each customer id, -1 for ids not in the matrix."""
        index = pd.Index(self.customer_ids)
        return index.get_indexer(pd.Index(np.asarray(customer_ids, dtype=object)))


def build_interactions(counts: pd.DataFrame, *, view_weight: float = 0.25) -> Interactions:
    """:class:`Interactions` from :func:`interaction_counts`.

    Parameters
    ----------
    counts : DataFrame
        ``customer_id, product_id, n_orders`` and optionally ``n_views``.
    view_weight : float
        Value of a product viewed but not bought (a bought product is 1); 0 ignores views.

    Returns
    -------
    Interactions

    Raises
    ------
    ParamsError
        When ``view_weight`` is not in [0, 1].
    DataContractError
        When there are no purchases to learn from.
    """
    if not (0 <= view_weight <= 1):
        raise ParamsError(f"view_weight={view_weight!r} must be between 0 (ignore views) and 1 (a view counts as "
                          "a purchase); 0.25 is the default")
    _need(counts, "counts", ("customer_id", "product_id", "n_orders"))
    n_views = counts["n_views"].to_numpy() if "n_views" in counts else np.zeros(len(counts), np.int64)
    n_orders = counts["n_orders"].to_numpy()
    keep = (n_orders > 0) | ((n_views > 0) & (view_weight > 0))
    c = counts.loc[keep]
    if not (c["n_orders"].to_numpy() > 0).any():
        raise DataContractError("no purchases to learn from: no completed or returned order of a known customer "
                                "with order lines in the period; check the period (eval_cutoff) and the clean tables")
    rows, customers = pd.factorize(c["customer_id"], sort=True)
    cols, products = pd.factorize(c["product_id"], sort=True)
    bought = (c["n_orders"].to_numpy() > 0).astype(np.float32)
    value = np.where(bought > 0, 1.0, view_weight).astype(np.float32)
    shape = (len(customers), len(products))
    matrix = sp.csr_matrix((value, (rows, cols)), shape=shape)
    b = sp.csr_matrix((bought, (rows, cols)), shape=shape)
    b.eliminate_zeros()
    return Interactions(matrix, b, np.asarray(customers, dtype=object), np.asarray(products, dtype=object))


# --------------------------------------------------------------------------------------------
# the common recommender
# --------------------------------------------------------------------------------------------
class _Recommender(BaseEstimator):
    """Scores for known customers come from :meth:`_scores`; everything else is shared."""

    #: reason of a model-scored recommendation
    _reason = "because you bought"
    #: scores of 0 mean "no evidence" (filled by popularity)
    _nonnegative = False

    def fit(self, interactions: Interactions) -> _Recommender:
        """Learn from *interactions* (:func:`build_interactions`); returns ``self``."""
        if not isinstance(interactions, Interactions):
            raise ParamsError(f"{type(self).__name__}.fit takes Interactions (recommend.build_interactions), "
                              f"got {type(interactions).__name__}")
        if interactions.bought.nnz == 0:
            raise ModelFitError(f"{type(self).__name__}: no purchases in the interactions; nothing to learn from")
        self.interactions_ = interactions
        pop = interactions.n_buyers.astype(np.float64)
        self.popularity_ = pop
        # a key in [0, 1) that orders products by popularity, then id (stable ties)
        order = np.lexsort((np.arange(len(pop)), -pop))
        rank = np.empty(len(pop), np.float64)
        rank[order] = np.arange(len(pop))
        self._pop_key = (1.0 - (rank + 1) / (len(pop) + 1)).astype(np.float32)
        self._fit(interactions)
        return self

    def _fit(self, interactions: Interactions) -> None:
        raise NotImplementedError

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _sources(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray | None:
        """Column of the bought product that contributed most to each (row, item), or None."""
        return None

    def recommend(self, customer_ids: Any, n: int = 10, exclude_seen: bool = True, *,
                  batch_size: int | None = None) -> pd.DataFrame:
        """Top-*n* products for each customer.

        Parameters
        ----------
        customer_ids : array-like
            Customers to recommend to; ids the model never saw get the most popular products.
        n : int
            Products per customer.
        exclude_seen : bool
            Leave out products the customer bought in the training data.
        batch_size : int, optional
            Customers scored at once (default: about 16 M scores per batch).

        Returns
        -------
        DataFrame
            :data:`RECOMMENDATION_COLUMNS`, ``rank`` 1…n per customer in the order of *customer_ids*.
        """
        check_is_fitted(self, "interactions_")
        if not (isinstance(n, (int, np.integer)) and n >= 1):
            raise ParamsError(f"n={n!r} must be a positive whole number of products per customer")
        inter = self.interactions_
        ids = np.asarray(pd.Series(customer_ids, dtype=object).to_numpy(), dtype=object)
        rows = inter.customer_rows(ids)
        n_items = inter.shape[1]
        n_take = min(n, n_items)
        size = batch_size or max(1, _BATCH_CELLS // max(n_items, 1))
        top = np.empty((len(ids), n_take), np.int64)
        val = np.empty((len(ids), n_take), np.float32)
        src = np.full((len(ids), n_take), -1, np.int64)
        model_made = np.zeros((len(ids), n_take), bool)
        for lo in range(0, len(ids), size):
            r = rows[lo:lo + size]
            known = r >= 0
            key = np.empty((len(r), n_items), np.float32)
            key[~known] = self._cold_key(r[~known])
            if known.any():
                s = self._scores(r[known]).astype(np.float32, copy=False)
                if self._nonnegative:
                    s = np.where(s > 0, s + 1.0, self._pop_key[None, :])  # evidence first, then popularity
                key[known] = s
            if exclude_seen and known.any():
                b = inter.bought[r[known]]
                kk = key[known]
                kk[np.repeat(np.arange(b.shape[0]), np.diff(b.indptr)), b.indices] = -np.inf
                key[known] = kk
            part = np.argpartition(-key, n_take - 1, axis=1)[:, :n_take] if n_take < n_items else \
                np.tile(np.arange(n_items), (len(r), 1))
            pv = np.take_along_axis(key, part, axis=1)
            order = np.lexsort((part, -pv), axis=1)
            t = np.take_along_axis(part, order, axis=1)
            v = np.take_along_axis(pv, order, axis=1)
            top[lo:lo + size], val[lo:lo + size] = t, v
            made = known[:, None] & np.isfinite(v)
            if self._nonnegative:
                made &= v > 1.0
            model_made[lo:lo + size] = made
            if made.any():
                rr = np.broadcast_to(r[:, None], t.shape)[made]
                got = self._sources(rr, t[made])
                if got is not None:
                    block = src[lo:lo + size]
                    block[made] = got
        return self._frame(ids, rows, top, val, src, model_made)

    def _cold_key(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._pop_key, (len(rows), len(self._pop_key)))

    def _score_out(self, val: np.ndarray, model_made: np.ndarray) -> np.ndarray:
        if self._nonnegative:
            return np.where(model_made, val - 1.0, 0.0)
        return np.where(model_made, val, 0.0)

    def _frame(self, ids, rows, top, val, src, model_made) -> pd.DataFrame:
        inter = self.interactions_
        ok = np.isfinite(val)
        per = ok.sum(axis=1)
        products = inter.product_ids
        reason = np.where(model_made, self._reason, "popular")[ok]
        source = np.where(src >= 0, src, -1)[ok]
        src_ids = np.where(source >= 0, products[np.maximum(source, 0)], None)
        score = self._score_out(val.astype(np.float64), model_made)
        score = np.where(model_made, score, self.popularity_[top] / max(len(inter.customer_ids), 1))[ok]
        rank = np.broadcast_to(np.arange(1, top.shape[1] + 1), top.shape)[ok]
        return pd.DataFrame({
            "customer_id": pd.array(np.repeat(ids, per), dtype="string"),
            "rank": rank.astype(np.int64),
            "product_id": pd.array(products[top[ok]], dtype="string"),
            "score": score,
            "reason": pd.Categorical(reason, categories=list(REASONS)),
            "source_product_id": pd.array(src_ids, dtype="string"),
        })


class Popularity(_Recommender):
    """The products bought by the most distinct customers in training (the baseline).

    Examples
    --------
    >>> import pandas as pd
    >>> counts = pd.DataFrame({"customer_id": ["a", "b", "b", "c"], "product_id": ["x", "x", "y", "y"],
    ...                        "n_orders": [1, 1, 1, 1]})
    >>> Popularity().fit(build_interactions(counts)).recommend(["a"], n=1)[["product_id", "reason"]].values.tolist()
    [['y', 'popular']]
    """

    _reason = "popular"

    def _fit(self, interactions: Interactions) -> None:
        self.scores_ = self.popularity_ / len(interactions.customer_ids)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        # popularity key (not the share) so ties keep the same order as everywhere else
        return np.broadcast_to(self._pop_key, (len(rows), len(self._pop_key)))

    def _score_out(self, val, model_made):
        return val

    def _frame(self, ids, rows, top, val, src, model_made):
        out = super()._frame(ids, rows, top, val, src, np.zeros_like(model_made))
        return out


class SegmentPopularity(_Recommender):
    """Products bought by the most distinct customers of the customer's segment.

    Parameters
    ----------
    segments : DataFrame
        ``customer_id, segment`` (for example from notebook 02). Customers without a segment, and
        segments with fewer than ``min_customers`` buyers in training, get overall popularity.
    min_customers : int
        Smallest segment (buying customers in training) with a popularity list of its own.
    """

    _reason = "popular in your segment"

    def __init__(self, segments: pd.DataFrame | None = None, min_customers: int = 20):
        self.segments = segments
        self.min_customers = min_customers

    def _fit(self, interactions: Interactions) -> None:
        if self.segments is None:
            raise ParamsError("SegmentPopularity needs segments: a DataFrame with customer_id and segment "
                              "(for example segmentation.assign_segments(...)[['customer_id', 'segment']])")
        _need(self.segments, "segments", ("customer_id", "segment"))
        seg = self.segments.drop_duplicates("customer_id").set_index("customer_id")["segment"]
        labels = seg.reindex(pd.Index(interactions.customer_ids)).to_numpy(dtype=object)
        known = pd.notna(labels)
        codes, names = pd.factorize(pd.Series(labels[known], dtype=object))
        rows = np.flatnonzero(known)
        onehot = sp.csr_matrix((np.ones(len(rows), np.float32), (codes, rows)),
                               shape=(len(names), len(interactions.customer_ids)))
        counts = np.asarray((onehot @ interactions.bought).todense())
        size = np.asarray(onehot.sum(axis=1)).ravel()
        self.segment_names_ = np.asarray(names, dtype=object)
        self.segment_scores_ = counts / np.maximum(size, 1)[:, None]
        self.segment_size_ = size
        code_of_row = np.full(len(interactions.customer_ids), -1, np.int64)
        code_of_row[rows] = codes
        code_of_row[(code_of_row >= 0) & (size[np.maximum(code_of_row, 0)] < self.min_customers)] = -1
        self._code_of_row = code_of_row

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        code = self._code_of_row[rows]
        out = np.broadcast_to(self._pop_key - 2.0, (len(rows), len(self._pop_key))).copy()  # below any segment score
        has = code >= 0
        out[has] = self.segment_scores_[code[has]] + 1e-6 * self._pop_key[None, :]
        self._last_has = has
        return out

    def recommend(self, customer_ids: Any, n: int = 10, exclude_seen: bool = True, *,
                  batch_size: int | None = None) -> pd.DataFrame:
        out = super().recommend(customer_ids, n, exclude_seen, batch_size=batch_size)
        rows = self.interactions_.customer_rows(out["customer_id"].to_numpy(dtype=object))
        code = np.where(rows >= 0, self._code_of_row[np.maximum(rows, 0)], -1)
        items = pd.Index(self.interactions_.product_ids).get_indexer(out["product_id"].to_numpy(dtype=object))
        share = self.segment_scores_[np.maximum(code, 0), items]
        no_segment = (code < 0) | (share <= 0)
        out["score"] = np.where(no_segment, self.popularity_[items] / len(self.interactions_.customer_ids), share)
        out.loc[no_segment, "reason"] = "popular"
        return out


def _top_k_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """*m* with only the *k* largest entries of each row kept (vectorised: one sort of all entries)."""
    m = m.tocsr()
    m.sort_indices()
    row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-m.data, row))
    pos = np.arange(len(order)) - m.indptr[row[order]]
    keep = order[pos < k]
    return sp.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)


class _Linear(_Recommender):
    """Scores ``X[u] @ W`` with an item × item weight matrix ``W`` (row: bought item, column: recommended)."""

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        x = self._x[rows]
        s = x @ self.weights_
        return s.toarray() if sp.issparse(s) else np.asarray(s)

    def _sources(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        x = self._x[rows]  # one row per (customer, item) pair
        seen_row = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        w = self.weights_
        c = np.asarray(w[x.indices, items[seen_row]]).ravel() * x.data
        best = np.full(x.shape[0], -np.inf)
        np.maximum.at(best, seen_row, c)
        is_best = c >= best[seen_row]
        first = np.full(x.shape[0], -1, np.int64)
        idx = np.flatnonzero(is_best)[::-1]
        first[seen_row[idx]] = self._cols[x.indices[idx]]
        return first


class ItemKNN(_Linear):
    """Item-to-item co-purchase (and co-view) similarity: "customers who bought X also bought".

    ``sim(i, j) = c_ij / (sqrt(c_ii) * sqrt(c_jj) + shrink)`` with ``c = XᵀX`` over the interaction
    matrix (cosine when ``shrink = 0``; a positive ``shrink`` damps pairs of rarely bought items).
    Each item keeps its ``k`` most similar neighbours; a customer's score for an item sums the
    similarities from what they bought (and viewed, at ``view_weight``). Products without any
    neighbour among the customer's are filled by popularity.

    Parameters
    ----------
    k : int
        Neighbours kept per item.
    shrink : float
        Shrinkage added to the cosine denominator.
    """

    _nonnegative = True

    def __init__(self, k: int = 100, shrink: float = 10.0):
        self.k = k
        self.shrink = shrink

    def _fit(self, interactions: Interactions) -> None:
        if self.k < 1 or self.shrink < 0:
            raise ParamsError(f"ItemKNN: k={self.k!r} must be >= 1 and shrink={self.shrink!r} >= 0")
        x = interactions.matrix
        g = (x.T @ x).tocsr().astype(np.float32)
        norm = np.sqrt(g.diagonal())
        g.setdiag(0)
        g.eliminate_zeros()
        coo = g.tocoo()
        data = coo.data / (norm[coo.row] * norm[coo.col] + self.shrink)
        sim = sp.csr_matrix((data.astype(np.float32), (coo.row, coo.col)), shape=g.shape)
        self.weights_ = _top_k_rows(sim, self.k)
        self._x = x
        self._cols = np.arange(x.shape[1])


class EASE(_Linear):
    """Steck's EASE: a closed-form linear item model.

    ``B = I - P · diag(1 / diag(P))`` with ``P = (XᵀX + l2·I)⁻¹``, so ``diag(B) = 0``; scores are ``X·B``.

    Parameters
    ----------
    l2 : float
        L2 penalty λ (hundreds for shop data; tune it).
    max_items : int
        Items kept: above this the Gram matrix (``max_items²`` float64, 3.2 GB at 20,000) is restricted to
        the most bought items, with a warning; the others are never recommended by the model.

    References
    ----------
    Steck, H. (2019). Embarrassingly shallow autoencoders for sparse data. The Web Conference (WWW '19), 3251–3257.
    """

    def __init__(self, l2: float = 200.0, max_items: int = 20_000):
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, interactions: Interactions) -> None:
        if not self.l2 > 0:
            raise ParamsError(f"EASE: l2={self.l2!r} must be positive (try 100–1000)")
        x = interactions.matrix
        m = x.shape[1]
        cols = np.arange(m)
        if m > self.max_items:
            cols = np.sort(np.argsort(-self.popularity_, kind="stable")[: self.max_items])
            warnings.warn(f"EASE: {m:,} products exceed max_items={self.max_items:,}; the model is fit on the "
                          f"{self.max_items:,} most bought and never recommends the other {m - self.max_items:,} "
                          "(raise max_items if memory allows: it needs about 16·max_items² bytes)", UserWarning,
                          stacklevel=3)
        self.items_ = cols
        xs = x[:, cols].tocsc().tocsr()
        g = (xs.T @ xs).toarray().astype(np.float64)
        g[np.diag_indices_from(g)] += self.l2
        p = np.linalg.inv(g)
        del g
        b = p / (-np.diag(p))[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self._b = b.astype(np.float32)
        self._x = xs
        self._cols = cols
        self.weights_ = self._b

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        s_kept = np.asarray(self._x[rows] @ self._b)
        if len(self._cols) == self.interactions_.shape[1]:
            return s_kept
        out = np.full((len(rows), self.interactions_.shape[1]), -np.inf, np.float32)
        out[:, self._cols] = s_kept
        return out

    def _sources(self, rows: np.ndarray, items: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self._cols, items)
        return super()._sources(rows, pos)


class ALS(_Recommender):
    """Matrix factorisation of implicit feedback by alternating least squares (``implicit``, CPU).

    Parameters
    ----------
    factors : int
        Latent factors.
    regularization : float
        L2 penalty on the factors.
    alpha : float
        Confidence scale: confidence = 1 + alpha · value.
    iterations : int
        ALS sweeps.
    random_state : int
        Seed of the initial factors (the fit is deterministic for a given seed).
    num_threads : int
        Threads of the solver (2, the reference machine's cores).

    References
    ----------
    Hu, Y., Koren, Y., & Volinsky, C. (2008). Collaborative filtering for implicit feedback datasets. ICDM.
    """

    _reason = "customers like you bought"

    def __init__(self, factors: int = 64, regularization: float = 0.05, alpha: float = 10.0, iterations: int = 15,
                 random_state: int = 0, num_threads: int = 2):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, interactions: Interactions) -> None:
        from threadpoolctl import threadpool_limits

        with warnings.catch_warnings():  # tqdm's check for notebook widgets at import; no progress bar is shown
            warnings.filterwarnings("ignore", message="IProgress not found")
            from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads inside would oversubscribe
            model = AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                            alpha=self.alpha, iterations=self.iterations,
                                            random_state=self.random_state, num_threads=self.num_threads,
                                            calculate_training_loss=False)
            model.fit(interactions.matrix.astype(np.float32), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _scores(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] @ self.item_factors_.T


def product_names(products: pd.DataFrame | None) -> pd.Series:
    """Product name by ``product_id`` (empty when there is no products table or no names)."""
    if products is None or "name" not in products:
        return pd.Series(dtype="string", index=pd.Index([], name="product_id"))
    return products.drop_duplicates("product_id").set_index("product_id")["name"]


def reason_text(recs: pd.DataFrame, products: pd.DataFrame | None = None) -> pd.Series:
    """Plain-language reason for each recommendation: ``"because you bought <product name>"`` (the
    product id when *products* has no name for it), otherwise the reason as it is."""
    reason = recs["reason"].astype(str)
    src = recs["source_product_id"]
    names = src.map(product_names(products)).fillna(src)
    because = (reason == "because you bought") & src.notna()
    return reason.where(~because, "because you bought " + names.astype(str))

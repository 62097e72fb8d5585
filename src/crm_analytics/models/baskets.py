"""Baskets: "frequently bought together" for a product page — association rules ``bought X → also
bought Y`` on orders, with support, confidence and lift.

Not a per-customer recommender (those are in :mod:`crm_analytics.models.recommend`): the rules say which
products go together in one basket. Pairs are counted exactly by one sparse product of the basket ×
product matrix, and the rules are made by ``mlxtend``'s ``association_rules``.

References
----------
Agrawal, R., Imieliński, T., & Swami, A. (1993). Mining association rules between sets of items in large databases.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crm_analytics.errors import ParamsError
from crm_analytics.models.recommend import _need, _utc, _utc_us, _window
from crm_analytics.ingest.tables import PURCHASE_STATUSES, local_ibis

__all__ = ["FrequentlyBoughtTogether"]


def _frequent_pairs(onehot: sp.csr_matrix, names: list[str], min_support: float) -> pd.DataFrame:
    """Frequent itemsets of one and two products, as mlxtend's ``apriori``/``fpgrowth`` return them
    (``support``, ``itemsets``) with ``max_len=2``, counted exactly by one sparse product
    ``BᵀB`` of the basket × product matrix (mlxtend's miners take minutes on 20,000 baskets of
    thousands of products; this takes well under a second)."""
    n = onehot.shape[0]
    co = (onehot.T.astype(np.int32) @ onehot.astype(np.int32)).tocoo()
    need = int(np.ceil(min_support * n - 1e-9))
    single = co.row == co.col
    keep1 = single & (co.data >= need)
    upper = (co.row < co.col) & (co.data >= need)
    items1 = [frozenset([names[i]]) for i in co.row[keep1]]
    items2 = [frozenset([names[i], names[j]]) for i, j in zip(co.row[upper], co.col[upper])]
    return pd.DataFrame({"support": np.concatenate([co.data[keep1], co.data[upper]]) / n,
                         "itemsets": items1 + items2})


class FrequentlyBoughtTogether(BaseEstimator):
    """Association rules "bought X → also bought Y" on baskets (orders), for a product page.

    Baskets are purchase orders (completed or returned; guests' orders count too: a basket is a
    basket). Only products in at least ``min_count`` baskets take part (this is what keeps the
    search small); rules have one antecedent and one consequent; the itemsets are counted with one sparse
    product (:func:`_frequent_pairs`) and the rules made by ``mlxtend``'s ``association_rules``
    (FP-growth, then ``association_rules``). Support is the share of *all* baskets.

    Parameters
    ----------
    min_count : int
        Fewest baskets a product must be in.
    min_support : float
        Smallest support of the pair (share of all baskets holding both).
    min_confidence : float
        Smallest confidence P(Y in basket | X in basket).
    top_n : int
        Rules kept per antecedent, by lift (then confidence).

    Attributes
    ----------
    rules_ : DataFrame
        ``antecedent_product_id, consequent_product_id, baskets, support, confidence, lift, rank``.
    n_baskets_ : int
    """

    def __init__(self, min_count: int = 10, min_support: float = 0.0005, min_confidence: float = 0.05,
                 top_n: int = 10):
        self.min_count = min_count
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.top_n = top_n

    def fit(self, orders: pd.DataFrame, order_lines: pd.DataFrame, *, start: Any = None,
            end: Any = None) -> FrequentlyBoughtTogether:
        """Mine the rules from the purchase orders with ``start <= order_ts < end``; returns ``self``."""
        with warnings.catch_warnings():  # importing mlxtend turns every DeprecationWarning on, process-wide
            from mlxtend.frequent_patterns import association_rules

        if not (0 < self.min_support <= 1 and 0 <= self.min_confidence <= 1 and self.min_count >= 1):
            raise ParamsError(f"FrequentlyBoughtTogether: min_support={self.min_support!r} must be in (0, 1], "
                              f"min_confidence={self.min_confidence!r} in [0, 1], min_count={self.min_count!r} >= 1")
        _need(orders, "orders", ("order_id", "order_ts", "status"))
        _need(order_lines, "order_lines", ("order_id", "product_id"))
        with local_ibis() as db:
            o = orders[["order_id", "order_ts", "status"]]
            ot = db.table(o.assign(order_ts=_utc_us(o["order_ts"])))
            ot = _window(ot.filter(ot.status.isin(list(PURCHASE_STATUSES))), "order_ts", _utc(start), _utc(end))
            lt = db.table(order_lines[["order_id", "product_id"]])
            lt = lt.filter(lt.product_id.notnull())
            j = lt.join(ot.select("order_id"), "order_id").select("order_id", "product_id").distinct()
            n_baskets = int(j.order_id.nunique().to_pyarrow().as_py() or 0)
            per = j.group_by("product_id").aggregate(n=j.count())
            kept = per.filter(per.n >= self.min_count).select("product_id")
            jk = j.join(kept, "product_id")
            pairs = jk.to_pyarrow().to_pandas()
        self.n_baskets_ = n_baskets
        cols = ["antecedent_product_id", "consequent_product_id", "baskets", "support", "confidence", "lift", "rank"]
        if n_baskets == 0 or pairs.empty:
            self.rules_ = pd.DataFrame(columns=cols)
            return self
        r, baskets = pd.factorize(pairs["order_id"])
        c, items = pd.factorize(pairs["product_id"], sort=True)
        onehot = sp.csr_matrix((np.ones(len(r), bool), (r, c)), shape=(len(baskets), len(items)))
        share = len(baskets) / n_baskets  # fed baskets (with a kept product) as a share of all baskets
        min_sup_fed = min(1.0, self.min_support / share)
        freq = _frequent_pairs(onehot, [str(i) for i in items], min_sup_fed)
        if (freq["itemsets"].map(len) == 2).sum() == 0:
            self.rules_ = pd.DataFrame(columns=cols)
            return self
        rules = association_rules(freq, metric="confidence", min_threshold=self.min_confidence,
                                  num_itemsets=len(baskets))
        rules = rules[(rules["antecedents"].map(len) == 1) & (rules["consequents"].map(len) == 1)]
        out = pd.DataFrame({
            "antecedent_product_id": rules["antecedents"].map(lambda s: next(iter(s))).astype("string"),
            "consequent_product_id": rules["consequents"].map(lambda s: next(iter(s))).astype("string"),
            "support": rules["support"].to_numpy() * share,
            "confidence": rules["confidence"].to_numpy(),
            "lift": rules["lift"].to_numpy() / share,
        })
        out["baskets"] = np.rint(out["support"] * n_baskets).astype(np.int64)
        out = out.sort_values(["antecedent_product_id", "lift", "confidence", "consequent_product_id"],
                              ascending=[True, False, False, True], kind="stable")
        out["rank"] = out.groupby("antecedent_product_id").cumcount() + 1
        self.rules_ = out[out["rank"] <= self.top_n][cols].reset_index(drop=True)
        return self

    def related(self, product_ids: Any = None, n: int | None = None) -> pd.DataFrame:
        """Rules for the given antecedent products (all when ``None``), at most *n* per product."""
        check_is_fitted(self, "rules_")
        out = self.rules_
        if product_ids is not None:
            out = out[out["antecedent_product_id"].isin(list(np.atleast_1d(product_ids)))]
        if n is not None:
            out = out[out["rank"] <= n]
        return out.reset_index(drop=True)

"""Recommenders on hand-made purchase logs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import baskets
from crm_analytics.models import recommend as rec
from crm_analytics.errors import ParamsError


def _log(rows: list[tuple[str, str, str, str]], status: str = "completed") -> tuple[pd.DataFrame, pd.DataFrame]:
    """orders and order_lines from (order_id, customer_id, day, product_id) rows."""
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "day", "product_id"])
    orders = df.drop_duplicates("order_id")[["order_id", "customer_id", "day"]].assign(
        order_ts=lambda d: pd.to_datetime(d["day"], utc=True), status=status, order_total=1.0).drop(columns="day")
    lines = df[["order_id", "product_id"]].assign(line_no=df.groupby("order_id").cumcount() + 1, quantity=1.0,
                                                  unit_price=1.0, discount=0.0)
    return orders.reset_index(drop=True), lines


def _counts(pairs: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(c, p, 1) for c, ps in pairs.items() for p in ps]
    return pd.DataFrame(rows, columns=["customer_id", "product_id", "n_orders"])


# a small world: x is bought by everyone but d, y by three, z by two, w by one
WORLD = {"a": ["x", "y"], "b": ["x", "y", "z"], "c": ["x", "z"], "d": ["w", "y"], "e": ["x"]}


@pytest.fixture
def inter():
    return rec.build_interactions(_counts(WORLD))


def test_interaction_counts_filters_statuses_guests_and_window():
    orders, lines = _log([("o1", "a", "2024-01-01", "x"), ("o1", "a", "2024-01-01", "y"),
                          ("o2", "a", "2024-01-05", "x"), ("o3", "b", "2024-01-10", "y"),
                          ("o4", None, "2024-01-02", "x"), ("o5", "c", "2024-01-03", "z")])
    orders.loc[orders["order_id"] == "o5", "status"] = "cancelled"
    events = pd.DataFrame({"ts": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-20"], utc=True),
                           "customer_id": ["a", "a", None, "b"], "event_type": ["product_view"] * 3 + ["page_view"],
                           "product_id": ["z", "z", "x", "x"]})
    c = rec.interaction_counts(orders, lines, events, end="2024-01-08")
    got = {(r.customer_id, r.product_id): (r.n_orders, r.n_views) for r in c.itertuples()}
    assert got == {("a", "x"): (2, 0), ("a", "y"): (1, 0), ("a", "z"): (0, 2)}  # o3 after end, guest, cancelled out
    inter = rec.build_interactions(c, view_weight=0.25)
    assert list(inter.product_ids) == ["x", "y", "z"]
    np.testing.assert_allclose(inter.matrix.toarray(), [[1, 1, 0.25]])
    np.testing.assert_allclose(inter.bought.toarray(), [[1, 1, 0]])


def test_view_weight_out_of_range_is_refused():
    with pytest.raises(ParamsError, match="view_weight=2 must be between 0"):
        rec.build_interactions(_counts(WORLD), view_weight=2)


def test_popularity_ranks_by_distinct_buyers_and_excludes_seen(inter):
    r = rec.Popularity().fit(inter).recommend(["a", "e", "new"], n=3)
    by = {c: list(g["product_id"]) for c, g in r.groupby("customer_id", sort=False)}
    assert by == {"a": ["z", "w"], "e": ["y", "z", "w"], "new": ["x", "y", "z"]}
    assert set(r["reason"]) == {"popular"}
    assert r.loc[r["customer_id"] == "new", "score"].tolist() == [4 / 5, 3 / 5, 2 / 5]
    assert list(r.columns) == list(rec.RECOMMENDATION_COLUMNS)
    with_seen = rec.Popularity().fit(inter).recommend(["a"], n=2, exclude_seen=False)
    assert list(with_seen["product_id"]) == ["x", "y"]


def test_item_knn_neighbours_are_shrunk_cosines(inter):
    m = rec.ItemKNN(k=1, shrink=0).fit(inter)
    x = inter.matrix.toarray()
    g = x.T @ x
    cos = g / np.sqrt(np.outer(np.diag(g), np.diag(g)))
    np.fill_diagonal(cos, 0)
    w = m.weights_.toarray()
    assert (np.count_nonzero(w, axis=1) <= 1).all()
    for i in range(len(cos)):  # the one neighbour kept is the most similar item
        assert w[i].max() == pytest.approx(cos[i].max(), rel=1e-6)
    # customer e bought x; x's nearest neighbour is z (cos 2/sqrt(8)), not y (2/sqrt(12))
    r = m.recommend(["e"], n=1)
    ix = list(inter.product_ids).index("x")
    j = int(np.argmax(cos[ix]))
    assert inter.product_ids[j] == "z"
    assert r["product_id"].iloc[0] == inter.product_ids[j]
    assert r["reason"].iloc[0] == "because you bought" and r["source_product_id"].iloc[0] == "x"
    assert r["score"].iloc[0] == pytest.approx(cos[ix, j], rel=1e-6)
    shrunk = rec.ItemKNN(k=5, shrink=10).fit(inter).weights_.toarray()
    assert shrunk[1, 2] == pytest.approx(g[1, 2] / (np.sqrt(g[1, 1] * g[2, 2]) + 10), rel=1e-6)


def test_item_knn_fills_ranks_without_evidence_by_popularity(inter):
    r = rec.ItemKNN(k=1, shrink=0).fit(inter).recommend(["e"], n=3)
    assert list(r["reason"])[1:] == ["popular", "popular"]
    assert r["source_product_id"].iloc[1:].isna().all()


def test_ease_matches_the_closed_form(inter):
    lam = 0.7
    m = rec.EASE(l2=lam).fit(inter)
    x = inter.matrix.toarray().astype(float)
    p = np.linalg.inv(x.T @ x + lam * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p @ np.diag(1 / np.diag(p))
    np.testing.assert_allclose(m.weights_, b, atol=1e-5)
    assert np.allclose(np.diag(m.weights_), 0)
    r = m.recommend(["e"], n=3)
    s = x[inter.customer_rows(["e"])[0]] @ b
    s[x[inter.customer_rows(["e"])[0]] > 0] = -np.inf
    order = np.argsort(-s, kind="stable")[:3]
    assert list(r["product_id"]) == list(inter.product_ids[order])
    np.testing.assert_allclose(r["score"], s[order], rtol=1e-5)
    assert (r["source_product_id"] == "x").all()


def test_ease_caps_items_and_says_so(inter):
    with pytest.warns(UserWarning, match="exceed max_items=2; the model is fit on the 2 most bought"):
        m = rec.EASE(l2=1.0, max_items=2).fit(inter)
    assert list(inter.product_ids[m.items_]) == ["x", "y"]
    r = m.recommend(["c"], n=2)
    assert r["product_id"].iloc[0] == "y" and r["reason"].iloc[0] == "because you bought"


def test_als_is_deterministic_with_a_seed(inter):
    a = rec.ALS(factors=4, iterations=5, random_state=3).fit(inter)
    b = rec.ALS(factors=4, iterations=5, random_state=3).fit(inter)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    ra, rb = a.recommend(list(WORLD), n=2), b.recommend(list(WORLD), n=2)
    pd.testing.assert_frame_equal(ra, rb)
    assert set(ra["reason"]) == {"customers like you bought"}
    seen = {(c, p) for c, ps in WORLD.items() for p in ps}
    assert not any((c, p) in seen for c, p in zip(ra["customer_id"], ra["product_id"]))


def test_segment_popularity_uses_the_segment():
    world = {"a": ["x"], "b": ["x"], "c": ["x"], "d": ["y"], "e": ["y", "z"]}
    inter = rec.build_interactions(_counts(world))
    segs = pd.DataFrame({"customer_id": ["a", "b", "c", "d", "e"], "segment": ["s1", "s1", "s1", "s2", "s2"]})
    r = rec.SegmentPopularity(segments=segs, min_customers=1).fit(inter).recommend(["d", "a", "zz"], n=1)
    assert list(r["product_id"]) == ["z", "y", "x"]
    # a: the only s1 product is bought already, so the next is overall popularity (no segment evidence)
    assert list(r["reason"]) == ["popular in your segment", "popular", "popular"]


def test_fit_and_recommend_refuse_bad_input(inter):
    with pytest.raises(ParamsError, match="takes Interactions"):
        rec.EASE().fit(pd.DataFrame())
    with pytest.raises(ParamsError, match="n=0 must be a positive"):
        rec.Popularity().fit(inter).recommend(["a"], n=0)


def test_frequently_bought_together_against_hand_counts():
    # 10 baskets: {x,y} x4, {x} x2, {y,z} x2, {z} x1, {w} x1
    rows, k = [], 0
    for items, times in [(["x", "y"], 4), (["x"], 2), (["y", "z"], 2), (["z"], 1), (["w"], 1)]:
        for _ in range(times):
            k += 1
            rows += [(f"o{k}", f"c{k}", "2024-01-01", p) for p in items]
    orders, lines = _log(rows)
    fbt = baskets.FrequentlyBoughtTogether(min_count=2, min_support=0.1, min_confidence=0.1, top_n=5).fit(orders, lines)
    assert fbt.n_baskets_ == 10  # w (1 basket) is below min_count but its basket still counts
    r = fbt.rules_.set_index(["antecedent_product_id", "consequent_product_id"])
    # x->y: support 4/10, confidence 4/6, lift (4/10) / (6/10 * 6/10)
    assert r.loc[("x", "y"), "support"] == pytest.approx(0.4)
    assert r.loc[("x", "y"), "confidence"] == pytest.approx(4 / 6)
    assert r.loc[("x", "y"), "lift"] == pytest.approx(0.4 / (0.6 * 0.6))
    assert r.loc[("z", "y"), "confidence"] == pytest.approx(2 / 3)
    assert r.loc[("y", "z"), "lift"] == pytest.approx(0.2 / (0.6 * 0.3))
    assert r.loc[("x", "y"), "baskets"] == 4
    assert ("x", "z") not in r.index  # never together
    related = fbt.related("y")  # y->x and y->z have the same lift (10/9); ranks 1 and 2
    assert set(related["consequent_product_id"]) == {"x", "z"} and list(related["rank"]) == [1, 2]


def test_frequent_pairs_equal_mlxtends_fpgrowth():
    import scipy.sparse as sp
    from mlxtend.frequent_patterns import fpgrowth

    from crm_analytics.models.baskets import _frequent_pairs

    rng = np.random.default_rng(3)
    dense = rng.random((300, 12)) < rng.uniform(0.02, 0.4, 12)
    names = [f"P{i}" for i in range(12)]
    ours = _frequent_pairs(sp.csr_matrix(dense), names, 0.03)
    ref = fpgrowth(pd.DataFrame(dense, columns=names), min_support=0.03, use_colnames=True, max_len=2)
    key = lambda f: dict(zip(f["itemsets"], f["support"].round(12)))  # noqa: E731
    assert key(ours) == key(ref) and len(ours) == len(ref)

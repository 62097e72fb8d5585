"""The evaluation protocol: the split, the evaluated customers, each metric by hand, the bootstrap,
and the whole evaluation on the ci world."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import recommend as rec
from crm_analytics.models import recommend_eval as ev
from crm_analytics.errors import DataContractError, ParamsError


def _log(rows):
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "day", "product_id"])
    orders = df.drop_duplicates("order_id").assign(order_ts=lambda d: pd.to_datetime(d["day"], utc=True),
                                                   status="completed", order_total=1.0)
    orders = orders[["order_id", "customer_id", "order_ts", "status", "order_total"]].reset_index(drop=True)
    lines = df[["order_id", "product_id"]].assign(line_no=1, quantity=1.0, unit_price=1.0, discount=0.0)
    return orders, lines


LOG = [  # cutoff 2024-02-01
    ("o1", "a", "2024-01-05", "x"), ("o1", "a", "2024-01-05", "y"),
    ("o2", "b", "2024-01-06", "x"),
    ("o3", "c", "2024-01-07", "z"),
    ("o4", "a", "2024-02-03", "z"),  # a: new product z in test -> evaluated, relevant {z}
    ("o4", "a", "2024-02-03", "x"),  # a: x again, not relevant
    ("o5", "b", "2024-02-04", "x"),  # b: only a repeat -> not evaluated
    ("o6", "d", "2024-02-05", "y"),  # d: no training purchase -> not evaluated
    ("o7", "c", "2024-02-01", "y"),  # c: on the cutoff belongs to test -> evaluated, relevant {y}
]


def test_time_split_and_the_evaluated_customers():
    orders, lines = _log(LOG)
    s = ev.time_split(orders, lines, eval_cutoff="2024-02-01")
    assert list(s.evaluated) == ["a", "c"]
    assert sorted(map(tuple, s.relevant.astype(str).to_numpy().tolist())) == [("a", "z"), ("c", "y")]
    assert set(s.train_counts["customer_id"]) == {"a", "b", "c"}  # nothing from on or after the cutoff
    assert s.info["train_customers"] == 3
    with pytest.raises(DataContractError, match="move the cutoff earlier"):
        ev.time_split(orders, lines, eval_cutoff="2024-03-01")
    with pytest.raises(ParamsError, match="eval_cutoff='soon' is not a date"):
        ev.time_split(orders, lines, eval_cutoff="soon")


def test_default_eval_cutoff_holds_out_the_last_30_days():
    orders, _ = _log(LOG)
    assert ev.default_eval_cutoff(orders) == pd.Timestamp("2024-01-07", tz="UTC")  # 2024-02-06 - 30 days


def test_metrics_by_hand():
    recs = pd.DataFrame({"customer_id": ["a"] * 3 + ["b"] * 3, "rank": [1, 2, 3] * 2,
                         "product_id": ["p", "q", "r", "s", "t", "u"]})
    relevant = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "product_id": ["q", "z", "v", "p"]})
    n_buyers = pd.Series({"p": 8, "q": 4, "r": 2, "s": 1, "t": 1, "u": 1})
    per, o = ev.score_recommendations(recs, relevant, ["a", "b", "c"], k=3, n_buyers=n_buyers,
                                      n_train_customers=8, catalogue_size=12)
    per = per.set_index("customer_id")
    # a: one hit (q) at rank 2 of 2 relevant; b: none; c: no recommendations at all
    assert per.loc["a", "hit"] == 1 and per.loc["b", "hit"] == 0 and per.loc["c", "hit"] == 0
    assert o["hit_rate"] == pytest.approx(1 / 3)
    assert o["precision"] == pytest.approx((1 / 3) / 3)
    assert o["recall"] == pytest.approx((1 / 2) / 3)
    ndcg_a = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    assert per.loc["a", "ndcg"] == pytest.approx(ndcg_a)
    assert o["ndcg"] == pytest.approx(ndcg_a / 3)
    assert o["coverage"] == pytest.approx(6 / 12)
    shares = np.array([8, 4, 2, 1, 1, 1]) / 8
    assert o["novelty"] == pytest.approx(np.mean(-np.log2(shares)))
    assert o["evaluated_customers"] == 3


def test_bootstrap_intervals_contain_the_estimate_and_are_seeded():
    rng = np.random.default_rng(0)
    a = (rng.random(300) < 0.3).astype(float)
    b = (rng.random(300) < 0.2).astype(float)
    lo, hi = ev.bootstrap_interval(a, n_boot=500, seed=1)
    assert lo <= a.mean() <= hi and hi - lo < 0.2
    assert (lo, hi) == ev.bootstrap_interval(a, n_boot=500, seed=1)
    dlo, dhi = ev.paired_bootstrap_interval(a, b, n_boot=500, seed=1)
    assert dlo <= a.mean() - b.mean() <= dhi
    assert ev.paired_bootstrap_interval(a, a, n_boot=100) == (0.0, 0.0)  # paired: identical models never differ
    with pytest.raises(ParamsError, match="equal-length"):
        ev.paired_bootstrap_interval(a, b[:10])


def test_truth_category_hit_rate_by_hand():
    recs = pd.DataFrame({"customer_id": ["a", "a", "b"], "rank": [1, 2, 1], "product_id": ["p1", "p2", "p3"]})
    products = pd.DataFrame({"product_id": ["p1", "p2", "p3", "p4"], "category": ["Shoes", "Books", "Books", "Toys"]})
    truth = pd.DataFrame({"customer_id": ["a", "b"], "pref_shoes": [0.6, 0.1], "pref_books": [0.3, 0.2],
                          "pref_toys": [0.1, 0.7]})
    got = ev.truth_category_hit_rate(recs, products, truth, top_categories=1)
    assert got["share_in_preferred"] == pytest.approx(1 / 3)  # a: shoes yes, books no; b: books no
    assert got["mean_true_preference"] == pytest.approx((0.6 + 0.3 + 0.2) / 3)
    assert got["chance_share"] == pytest.approx((1 / 4 + 1 / 4) / 2)


def test_tune_never_reads_the_test_period():
    orders, lines = _log(LOG + [("o8", "a", "2024-01-20", "w"), ("o9", "e", "2024-01-02", "w")])
    poisoned = lines.copy()
    # products bought on or after the cutoff may be anything: tuning must give the same answer
    after = orders.loc[orders["order_ts"] >= pd.Timestamp("2024-02-01", tz="UTC"), "order_id"]
    poisoned.loc[poisoned["order_id"].isin(after), "product_id"] = "junk"
    grids = {"ease": (rec.EASE(), {"l2": [0.5, 50.0]})}
    b1, t1 = ev.tune(orders, lines, eval_cutoff="2024-02-01", grids=grids, validation_days=14)
    b2, t2 = ev.tune(orders, poisoned, eval_cutoff="2024-02-01", grids=grids, validation_days=14)
    pd.testing.assert_frame_equal(t1.drop(columns="fit_seconds"), t2.drop(columns="fit_seconds"))
    assert b1["ease"].get_params() == b2["ease"].get_params()
    assert t1.attrs["validation_end"].startswith("2024-02-01")


# --------------------------------------------------------------------------------------------
# the ci world, end to end
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ci_clean(ci_root):
    from crm_analytics.ingest.cleaning import clean_tables
    from crm_analytics.ingest.sources import _with_lines

    raw = {}
    for name in ("orders", "order_lines", "products", "events"):
        path = ci_root / "data" / "raw" / "ci" / f"{name}.parquet"
        raw[name] = _with_lines(pd.read_parquet(path), path.name, first_line=1)
    return clean_tables(raw, key=b"test-key").tables


@pytest.mark.slow
def test_evaluation_runs_on_the_ci_world_and_ease_is_not_worse_than_popularity(ci_clean):
    models = {"popularity": rec.Popularity(), "item_knn": rec.ItemKNN(k=50, shrink=10),
              "als": rec.ALS(factors=16, iterations=5), "ease": rec.EASE(l2=500)}
    metrics, details = ev.evaluate_models(ci_clean["orders"], ci_clean["order_lines"], models=models,
                                          events=ci_clean["events"], n_boot=200, seed=0)
    assert list(metrics.index) == list(models)
    assert (metrics["evaluated_customers"] > 50).all()
    for col in ("hit_rate", "precision", "recall", "ndcg", "coverage"):
        assert metrics[col].between(0, 1).all(), col
    assert (metrics["hit_rate_low"] <= metrics["hit_rate"]).all()
    assert (metrics["hit_rate"] <= metrics["hit_rate_high"]).all()
    assert metrics.loc["ease", "hit_rate"] >= metrics.loc["popularity", "hit_rate"]
    assert metrics.loc["popularity", "hit_rate_diff"] == 0
    chosen, why = ev.choose_model(metrics)
    assert chosen in models and why
    recs = details["recommendations"]["ease"]
    assert recs.groupby("customer_id").size().max() == 10


def test_report_tables_name_the_recommenders_and_label_every_column_in_both_languages():
    from crm_analytics import i18n
    from crm_analytics.reports import personalisation_report as pr

    metrics = pd.DataFrame({"hit_rate": [0.2, 0.3], "hit_rate_low": [0.1, 0.2], "hit_rate_high": [0.3, 0.4],
                            "precision": [0.02, 0.03], "recall": [0.1, 0.2], "ndcg": [0.1, 0.2],
                            "coverage": [0.1, 0.9], "novelty": [4.0, 5.0], "beats_baseline": [False, True]},
                           index=pd.Index(["popularity", "ease"], name="model"))
    tuning = pd.DataFrame({"model": ["ease", "item_knn"], "params": [{"l2": 200.0}, {"k": 50}],
                           "hit_rate": [0.2, 0.3], "precision": [0.02, 0.03], "recall": [0.1, 0.2]})
    recs = pd.DataFrame({"customer_id": ["a", "a"], "rank": [1, 2], "product_id": ["x", "y"],
                         "reason": ["because you bought", "popular"], "source_product_id": ["z", None]})
    try:
        for lang in ("en", "tr"):
            i18n.use(lang)
            shown = pr.metrics_table(metrics, 10)
            assert pd.isna(shown["beats_baseline"].iloc[0]) and shown["beats_baseline"].iloc[1] is True
            frames = [shown, pr.tuning_table(tuning, 10), pr.reason_counts(recs)]
            names = {c for f in frames for c in [*f.columns, *f.index.names]}
            assert all((i18n.COLUMN, c) in i18n.catalog(lang) for c in names), names
        assert list(shown.index) == ["en çok satanlar (temel model)", "EASE: üründen ürüne doğrusal model"]
        assert list(pr.tuning_table(tuning, 10).index.get_level_values("setting")) == [
            "düzenlileştirme (L2) 200", "50 komşu"]
        assert set(pr.reason_counts(recs).index) == {"… aldığınız için", "çok satan"}
    finally:
        i18n.use("en")

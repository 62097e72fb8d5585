"""Machine-learned churn: no look-ahead, honest time split, scores that mean something."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models.churn import (calibration_table, churn_labels, customer_features, fit_churn_model, lift_table,
                                 score_churn)


@pytest.fixture(scope="module")
def ci_tables(ci_clean):
    return ci_clean


def test_features_use_nothing_after_the_feature_date(ci_tables):
    cut = pd.Timestamp("2025-03-01", tz="UTC")
    full = customer_features(ci_tables, cut)
    past_only = {k: v for k, v in ci_tables.items()}
    o = ci_tables["orders"]
    past_only["orders"] = o[o["order_ts"] <= cut]
    ev = ci_tables["events"]
    past_only["events"] = ev[ev["ts"] <= cut]
    pd.testing.assert_frame_equal(full, customer_features(past_only, cut).reindex(columns=full.columns))


def test_labels_match_an_independent_count(ci_tables):
    o = ci_tables["orders"]
    cut = pd.Timestamp("2025-06-30", tz="UTC")
    customers = pd.Index(sorted(o["customer_id"].dropna().unique()))
    y = churn_labels(o, customers, cut, 90)
    bought = o[o["status"].isin(["completed", "returned"]) & (o["order_ts"] > cut)
               & (o["order_ts"] <= cut + pd.Timedelta(days=90))]
    expected = (~customers.isin(bought["customer_id"])).astype(int)
    assert (y.to_numpy() == expected).all()


def test_model_beats_chance_on_the_holdout_and_scores_are_consistent(ci_tables):
    end = ci_tables["orders"]["order_ts"].max()
    m = fit_churn_model(ci_tables, end - pd.Timedelta(days=90), 90, seed=0)
    assert m.metrics["roc_auc"] > 0.65
    assert m.metrics["top_decile_lift"] > 1.0
    assert set(m.importance["feature"]) == set(m.features)
    assert m.importance.iloc[0]["feature"] in ("recency_days", "days_between_orders", "orders_last_90d", "tenure_days")
    lt = lift_table(m.y_test, m.score_test)
    assert lt["customers"].sum() == len(m.y_test) and lt.loc[0, "decile"] == 1
    cal = calibration_table(m.y_test, m.score_test)
    assert cal["predicted"].is_monotonic_increasing


def test_score_churn_on_a_known_case():
    y = pd.Series([0, 0, 1, 1])
    s = pd.Series([0.1, 0.4, 0.35, 0.8])
    r = score_churn(y, s)
    assert r["roc_auc"] == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ordered right
    assert r["brier"] == pytest.approx(np.mean([0.01, 0.16, 0.4225, 0.04]))


def test_features_have_labels_in_both_languages():
    from crm_analytics import i18n
    from crm_analytics.models.churn import feature_label

    try:
        i18n.use("en")
        assert feature_label("tenure_days") == "Days since first order"
        assert feature_label("channel_share_phone") == "Share of orders via phone"
        i18n.use("tr")
        assert feature_label("tenure_days") == "İlk siparişten bu yana gün"
        assert feature_label("channel_share_phone") == "telefon üzerinden sipariş payı"
    finally:
        i18n.use("en")

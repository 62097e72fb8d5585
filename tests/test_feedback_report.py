"""07_feedback's tables and truth checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.reports import feedback_report as fr


def test_rating_table_reads_as_stars_and_never_shows_minus_zero():
    summary = pd.DataFrame({"reviews": [4], "mean_rating": [3.5], "share_1": [0.25], "share_2": [0], "share_3": [0.25],
                            "share_4": [0], "share_5": [0.5], "star_nps": [-0.0]}, index=["all"])
    t = fr.rating_table(summary)
    assert list(t.index) == ["all reviews"] and "{:+.0f}".format(t["star_nps"].iloc[0]) == "+0"


def test_the_reader_sees_labels_with_units_in_english_and_turkish():
    from crm_analytics import i18n
    from crm_analytics.reports import report

    summary = pd.DataFrame({"reviews": [4], "mean_rating": [3.5], "share_1": [0.25], "share_2": [0], "share_3": [0.25],
                            "share_4": [0], "share_5": [0.5], "star_nps": [-0.0]}, index=["all"])
    html = report.styled(fr.rating_table(summary), formats={"share_5": "{:.1%}"}).to_html()
    assert "Mean rating (stars)" in html and "5 ★ (%)" in html and "all reviews" in html and "50.0%" in html
    i18n.use("tr")
    try:
        html = report.styled(fr.rating_table(summary), formats={"share_5": "{:.1%}"}).to_html()
        assert i18n.value(fr.rating_table(summary).index[0]) == "tüm yorumlar"
        bands = fr.satisfaction_table(pd.DataFrame({"band": ["<=4 h", "4-24 h", ">168 h"], "rated": [1, 2, 3],
                                                    "median_hours": [1.0, 5.0, 200.0], "mean": [4.0, 3.0, 2.0],
                                                    "dissatisfied_share": [0.0, 0.1, 0.5]}))
    finally:
        i18n.use("en")
    assert "Ortalama puan (yıldız)" in html and "%50,0" in html
    assert list(bands.index) == ["4 saate kadar", "4–24 saat", "168 saatten uzun"]


def test_ticket_categories_from_code_read_as_words():
    volume = pd.DataFrame({"category": ["delivery_delay", "refund"], "channel": ["chat", "phone"], "tickets": [3, 1],
                           "customers": [3, 1]})
    t = fr.volume_table(volume, "category", "ticket_category")
    assert list(t.index) == ["delivery delay", "refund"] and t.index.name == "ticket_category"
    assert t["share_of_tickets"].tolist() == [0.75, 0.25]


def test_topic_matrix_labels_quarters_as_people_write_them():
    trend = pd.DataFrame({"period": [pd.Period("2025Q1"), pd.Period("2025Q2")], "topic": ["price", "price"],
                          "share_negative": [0.1, 0.2]})
    assert list(fr.topic_matrix(trend).columns) == ["2025 Q1", "2025 Q2"]


def test_mismatch_truth_precision_and_recall():
    truth = pd.DataFrame({"review_id": ["a", "b", "c", "d"], "rating_text_mismatch": [True, True, False, False]})
    got = fr.mismatch_truth(pd.DataFrame({"review_id": ["a", "c"]}), truth)
    assert got == {"planted": 2, "flagged": 2, "precision": 0.5, "recall": 0.5}


def test_sentiment_truth_leaves_out_neutral_and_planted_contradictions():
    reviews = pd.DataFrame({"review_id": ["a", "b", "c", "d"]})
    truth = pd.DataFrame({"review_id": ["a", "b", "c", "d"], "true_sentiment": ["positive", "negative", "neutral",
                                                                                 "negative"],
                          "rating_text_mismatch": [False, False, False, True]})
    proba = pd.DataFrame({"negative": [0.1, 0.2, 0.5, 0.9], "positive": [0.9, 0.8, 0.5, 0.1]})
    got = fr.sentiment_truth(proba, reviews, truth)
    assert got["reviews"] == 2 and got["agreement"] == 0.5


def test_complaint_truth_weights_the_comparable_customers_as_the_comparison_does():
    t0 = pd.Timestamp("2025-01-01", tz="UTC")
    rows = pd.DataFrame({"customer_id": ["c1", "c2", "n1", "n2"], "group": ["complainer", "complainer", "comparable",
                                                                            "comparable"],
                         "reference_ts": [t0] * 4, "matched": True, "weight": [1.0, 1.0, 3.0, 1.0]})
    truth = pd.DataFrame({"customer_id": ["c1", "c2", "n1", "n2"],
                          "dropout_ts": ["2025-02-01T00:00:00Z", None, "2026-01-01T00:00:00Z", "2025-03-01T00:00:00Z"]})
    got = fr.complaint_truth(rows, truth, horizon_days=90)
    assert got["true_dropout_complainers"] == 0.5
    assert got["true_dropout_comparable"] == pytest.approx(1 / 4)  # n2 (weight 1) of 3 + 1
    assert got["true_difference"] == pytest.approx(0.25)


def test_churn_table_puts_the_difference_with_its_interval():
    m = {"complaint_churn_lift": {"value": 0.2, "ci_low": 0.1, "ci_high": 0.3}, "n_complainers": 10,
         "churn_rate_complainers": 0.6, "n_comparable": 40, "churn_rate_comparable": 0.4,
         "resolution_speed": {"split_hours": 48, "n_fast": 6, "churn_fast": 0.5, "n_slow": 4, "churn_slow": 0.75,
                              "diff": 0.25, "diff_low": -0.2, "diff_high": 0.6}}
    t = fr.churn_table(m)
    assert t.loc["difference (complained − comparable)",
                 ["churned_share", "churn_difference_low", "churn_difference_high"]].tolist() == [0.2, 0.1, 0.3]
    assert np.isnan(t.loc["customers who complained", "churn_difference_low"])
    assert t.loc["complaint resolved within 48 hours", "customers"] == 6


def test_topic_truth_counts_found_and_wrongly_tagged_per_planted_topic():
    reviews = pd.DataFrame({"review_id": ["a", "b", "c", "d"]})
    truth = pd.DataFrame({"review_id": ["a", "b", "c", "d"], "topic": ["price", "price", "size", "size"]})
    flags = pd.DataFrame({"price": [True, False, True, False], "size": [False, False, True, True]})
    got = fr.topic_truth(flags, reviews, truth)
    assert got.loc["price", "found"] == 0.5 and got.loc["price", "tagged wrongly"] == 0.5
    assert got.loc["size", "found"] == 1.0 and got.loc["size", "tagged wrongly"] == 0.0 and got.loc["size", "reviews"] == 2

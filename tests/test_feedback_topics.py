"""Tests of crm_analytics.models.feedback_topics: topic roots under Turkish suffixes, topic trends, keywords,
the star-based NPS by hand and falling ratings on planted products."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import feedback_topics as fk
from crm_analytics.errors import DataContractError, ParamsError


@pytest.mark.parametrize("text, topic", [
    ("Kargoya geç verildi", "delivery"), ("kargodan memnunum", "delivery"), ("Teslimat gecikti", "delivery"),
    ("Fiyatı çok uygun", "price"), ("PAHALI ama güzel", "price"), ("Bu paraya değmez", "price"),
    ("Kalitesiz bir ürün", "quality"), ("Kumaşı ince", "quality"), ("İki günde bozuldu", "quality"),
    ("Kalıbı dar", "size"), ("kalibi dar", "size"), ("Bedenler küçük geliyor", "size"), ("ÖLÇÜLERİ doğru", "size"),
    ("Paketlenmesi özenliydi", "packaging"), ("Kutusu ezik geldi", "packaging"),
    ("Satıcıya ulaşamadım", "service"), ("Müşteri hizmetleri ilgilenmedi", "service"),
    ("İadesini yaptım", "returns"),
])
def test_turkish_roots_match_suffixed_words(text, topic):
    flags = fk.topics(pd.Series([text]), "tr")
    assert flags.loc[0, topic], (text, topic)


@pytest.mark.parametrize("text, topic", [
    ("Delivered a week late", "delivery"), ("Great value for the price", "price"), ("Poor quality fabric", "quality"),
    ("It fits true to size", "size"), ("Nicely packaged", "packaging"), ("The seller never replied", "service"),
    ("Returned it for a refund", "returns"),
])
def test_english_words_match(text, topic):
    assert fk.topics(pd.Series([text]), "en").loc[0, topic]


def test_topics_are_not_found_where_they_are_not():
    text = pd.Series(["Çok güzel, bayıldım", "Darıldım ama güzel", "Love it"], index=["a", "b", "c"])
    flags = fk.topics(text, pd.Series(["tr", "tr", "en"], index=text.index))
    assert flags.columns.tolist() == list(fk.TOPICS) and flags.dtypes.eq(bool).all()
    assert not flags.to_numpy().any()  # "dar$" is the whole word only: not "darıldım"


def test_topics_use_both_lexicons_for_other_languages_and_detect_missing_ones():
    text = pd.Series(["Kargo geldi, price ok", "The box was crushed", "Kargo çok geç geldi"])
    flags = fk.topics(text, pd.Series(["other", None, None]))
    assert flags.loc[0, ["delivery", "price"]].all()
    assert flags.loc[1, "packaging"] and flags.loc[2, "delivery"]


def test_topic_trend_counts_reviews_and_negative_share_per_month():
    reviews = pd.DataFrame({"ts": pd.to_datetime(["2024-01-03", "2024-01-20", "2024-01-25", "2024-02-02",
                                                  "2024-02-10"], utc=True)})
    flags = fk.topics(pd.Series(["Kargo geç geldi", "Kargo hızlı", "Kalitesiz", "Kargo gecikti, kalitesiz",
                                 "Harika"]), "tr")
    sentiment = pd.Series(["negative", "positive", "negative", "negative", None])
    got = fk.topic_trend(reviews, flags, sentiment, freq="M")
    assert got.columns.tolist() == ["period", "topic", "reviews", "share_negative"]
    rows = got.set_index(["period", "topic"])
    jan, feb = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01")
    assert rows.loc[(jan, "delivery")].tolist() == [2, 0.5]
    assert rows.loc[(jan, "quality")].tolist() == [1, 1.0]
    assert rows.loc[(feb, "delivery")].tolist() == [1, 1.0]
    assert len(got) == 4  # no row for a topic without reviews in a month


def test_topic_trend_checks_its_inputs():
    reviews = pd.DataFrame({"ts": pd.to_datetime(["2024-01-03"], utc=True)})
    flags = fk.topics(pd.Series(["Kargo"]), "tr")
    with pytest.raises(ParamsError, match="freq must be a pandas period frequency"):
        fk.topic_trend(reviews, flags, pd.Series(["negative"]), freq="fortnight")
    with pytest.raises(DataContractError, match=r"missing column\(s\) \['ts'\]"):
        fk.topic_trend(reviews.rename(columns={"ts": "time"}), flags, pd.Series(["negative"]))


def test_keywords_are_the_words_typical_of_each_side():
    text = pd.Series(["ürün kırık geldi berbat", "kırık ve berbat", "kutu kırık geldi", "berbat kalite",
                      "harika ürün geldi", "harika kalite", "çok harika", "güzel ve harika", "güzel ürün",
                      "Broken and awful", "awful quality", "awful", "Lovely fit", "lovely and soft", "lovely"])
    labels = pd.Series(["negative"] * 4 + ["positive"] * 5 + ["negative"] * 3 + ["positive"] * 3)
    language = pd.Series(["tr"] * 9 + ["en"] * 6)
    got = fk.keywords(text, labels, language, n=2, min_df=2)
    assert got.columns.tolist() == ["language", "sentiment", "rank", "word", "z", "n_negative", "n_positive"]
    top = got[got["rank"] == 1].set_index(["language", "sentiment"])["word"].to_dict()
    assert top[("tr", "negative")] in {"kırık", "berbat"} and top[("tr", "positive")] == "harika"
    assert top[("en", "negative")] == "awful" and top[("en", "positive")] == "lovely"
    assert (got["z"] > 0).all()


def test_rating_summary_computes_the_star_nps_by_hand():
    reviews = pd.DataFrame({"product_id": ["A"] * 8 + ["B"] * 4, "rating": [5, 5, 5, 4, 3, 2, 1, 1, 5, 5, 4, 4]})
    overall = fk.rating_summary(reviews)
    # 5 stars: 5 of 12; 1–3 stars: 4 of 12 → 100 × (5 − 4) / 12
    assert overall.loc["all", "star_nps"] == pytest.approx(100 / 12)
    assert overall.loc["all", "reviews"] == 12 and overall.loc["all", "mean_rating"] == pytest.approx(44 / 12)
    by = fk.rating_summary(reviews, by="product_id")
    assert by.loc["A", "star_nps"] == pytest.approx(100 * (3 / 8 - 4 / 8))
    assert by.loc["B", "star_nps"] == pytest.approx(50.0)
    assert by.loc["A", ["share_1", "share_5"]].tolist() == pytest.approx([2 / 8, 3 / 8])
    with pytest.raises(DataContractError, match="'category'.*join the column first"):
        fk.rating_summary(reviews, by="category")
    with pytest.raises(DataContractError, match="outside whole stars 1–5"):
        fk.rating_summary(pd.DataFrame({"rating": [6]}))


def _ratings_history(seed: int = 3) -> pd.DataFrame:
    """A (drops from ~4.5 to ~2.8 stars in the last 90 days), B (stable at ~4.3), C (too few reviews)."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2024-12-31", tz="UTC")
    rows = []
    for product, n_old, n_new, p_old, p_new in [
            ("A", 60, 40, [0.02, 0.03, 0.05, 0.25, 0.65], [0.25, 0.2, 0.2, 0.2, 0.15]),
            ("B", 60, 40, [0.03, 0.03, 0.09, 0.3, 0.55], [0.03, 0.03, 0.09, 0.3, 0.55]),
            ("C", 10, 5, [0.0, 0.0, 0.0, 0.2, 0.8], [1.0, 0.0, 0.0, 0.0, 0.0])]:
        for n, p, lo, hi in [(n_old, p_old, 100, 400), (n_new, p_new, 1, 89)]:
            days = rng.uniform(lo, hi, n)
            rows.append(pd.DataFrame({"product_id": product, "ts": end - pd.to_timedelta(days, unit="D"),
                                      "rating": rng.choice([1, 2, 3, 4, 5], n, p=p)}))
    return pd.concat(rows, ignore_index=True)


def test_falling_ratings_flags_a_planted_drop_and_not_a_stable_product():
    got = fk.falling_ratings(_ratings_history(), by="product_id", recent_days=90, min_reviews=20)
    assert got.columns.tolist() == ["product_id", "n_before", "mean_before", "n_recent", "mean_recent", "difference",
                                    "difference_low", "difference_high", "p_value", "p_adjusted", "falling"]
    rows = got.set_index("product_id")
    assert set(rows.index) == {"A", "B"}  # C has fewer than 20 reviews in each window
    assert rows.loc["A", "falling"] and not rows.loc["B", "falling"]
    assert rows.loc["A", ["n_before", "n_recent"]].tolist() == [60, 40]
    assert rows.loc["A", "difference_high"] < 0 < rows.loc["B", "difference_high"]
    assert rows.loc["A", "difference"] == pytest.approx(rows.loc["A", "mean_recent"] - rows.loc["A", "mean_before"])
    assert rows.loc["A", "p_value"] < 0.001 and rows.loc["B", "p_value"] > 0.05
    assert got["product_id"].iloc[0] == "A"


def test_falling_ratings_checks_its_inputs():
    history = _ratings_history()
    with pytest.raises(ParamsError, match="recent_days > 0"):
        fk.falling_ratings(history, recent_days=0)
    with pytest.raises(DataContractError, match=r"missing column\(s\) \['category'\]"):
        fk.falling_ratings(history, by="category")
    assert fk.falling_ratings(history, min_reviews=1000).empty


def test_falling_ratings_with_nothing_to_test_is_an_empty_boolean_mask():
    r = pd.DataFrame({"product_id": ["a"] * 3, "rating": [5, 4, 1],
                      "ts": pd.to_datetime(["2025-01-01", "2025-06-01", "2025-06-02"], utc=True)})
    out = fk.falling_ratings(r, by="product_id", min_reviews=20)
    assert out.empty and out["falling"].dtype == bool and out[out["falling"]].columns.tolist() == out.columns.tolist()

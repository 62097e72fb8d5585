"""Tests of crm_analytics.models.site_search: Turkish normalisation and search measures on known logs and the ci world."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from crm_analytics.models import behaviour as bh
from crm_analytics.models import site_search as ss
from crm_analytics.models.campaigns import wilson_interval

T0 = pd.Timestamp("2024-03-01 10:00", tz="UTC")


@pytest.mark.parametrize("raw, want", [
    ("Ayakkabı", "ayakkabi"), ("AYAKKABI", "ayakkabi"), ("ayakkabi", "ayakkabi"), ("  spor   Ayakkabı\t", "spor ayakkabi"),
    ("İPEK EŞARP", "ipek esarp"), ("ıslak mendil", "islak mendil"), ("ÇAĞDAŞ ÖĞÜN", "cagdas ogun"),
    ("Şöyle Üzüm", "soyle uzum"), ("kâğıt havlu", "kagit havlu"), ("Kanaviçe Îmece Ûlfet", "kanavice imece ulfet"),
    ("café", "cafe"), ("   ", None), (None, None),
])
def test_normalise_query_folds_turkish_case_and_accents(raw, want):
    assert ss.normalise_query(raw) == want


def test_normalise_query_on_a_series_keeps_index_and_missing():
    s = pd.Series(["IŞIK", None, "ışık", "Işık"], index=[5, 6, 7, 8], dtype="string")
    got = ss.normalise_query(s)
    assert got.index.tolist() == [5, 6, 7, 8] and got.tolist() == ["isik", None, "isik", "isik"]


def _log():
    rows = [  # minutes, session, event_type, query, results, product
        (0, "S1", "search", "Ayakkabı", 12, None), (1, "S1", "product_view", None, None, "P1"),
        (2, "S1", "purchase", None, None, None),
        (0, "S2", "search", "AYAKKABI", 10, None), (1, "S2", "product_view", None, None, "P1"),
        (0, "S3", "search", "ayakkabı", 8, None),
        (0, "S4", "search", "kazak xq", 0, None),  # zero results, ends the session
        (0, "S5", "search", "Kazak  XQ", 0, None), (1, "S5", "product_view", None, None, "P2"),
        (0, "S6", "page_view", None, None, None), (1, "S6", "purchase", None, None, None),
    ]
    df = pd.DataFrame(rows, columns=["m", "session_id", "event_type", "search_query", "results_count", "product_id"])
    df["ts"] = T0 + pd.to_timedelta(df.pop("m"), unit="min")
    df["anonymous_id"] = "d" + df["session_id"]
    df["results_count"] = df["results_count"].astype("Int64")
    return df


def test_top_and_zero_result_queries_group_spellings():
    se = ss.search_events(_log())
    top = ss.top_queries(se)
    assert top["query_norm"].tolist() == ["ayakkabi", "kazak xq"]
    assert top.iloc[0]["query"] in ("Ayakkabı", "AYAKKABI", "ayakkabı")  # a three-way tie: alphabetical first
    first = top.set_index("query_norm").loc["ayakkabi"]
    assert first["searches"] == 3 and first["spellings"] == 3 and first["view_share"] == pytest.approx(2 / 3)
    zero = ss.zero_result_queries(se).set_index("query_norm").loc["kazak xq"]
    assert zero["searches"] == 2 and zero["lost_searches"] == 1 and zero["ended_share"] == 0.5
    assert zero["query"] in ("kazak xq", "Kazak  XQ")
    summary = ss.search_summary(se)
    assert summary["searches"] == 5 and summary["distinct_queries"] == 2
    assert summary["zero_result_share"] == pytest.approx(2 / 5) and summary["lost_share"] == 0.5


def test_most_frequent_spelling_is_shown():
    log = _log()
    log.loc[log["session_id"] == "S3", "search_query"] = "AYAKKABI"
    top = ss.top_queries(ss.search_events(log))
    assert top.iloc[0]["query"] == "AYAKKABI"


def test_viewed_not_bought_and_search_conversion():
    log = _log()
    se = ss.search_events(log)
    v = ss.viewed_not_bought(se, min_searches=1).set_index("query_norm")
    assert v.loc["ayakkabi", ["searches_viewed", "bought", "not_bought"]].tolist() == [2, 1, 1]
    conv = ss.search_conversion(bh.sessions(log))
    t = conv["table"].set_index("group")
    assert t.loc["with search", ["sessions", "conversions"]].tolist() == [5, 1]
    assert t.loc["without search", ["sessions", "conversions"]].tolist() == [1, 1]
    assert conv["difference"]["difference"] == pytest.approx(1 / 5 - 1)


def test_ci_zero_result_share_matches_pandas_and_truth(ci_root):
    from crm_analytics.ingest.cleaning import clean_tables
    from crm_analytics.ingest.sources import _with_lines

    path = ci_root / "data" / "raw" / "ci" / "events.parquet"
    events = clean_tables({"events": _with_lines(pd.read_parquet(path), path.name, first_line=1)},
                          key=b"test-key").tables["events"]
    summary = ss.search_summary(events)
    searches = events[events["event_type"] == "search"]
    zero = int((searches["results_count"] == 0).sum())
    assert summary["searches"] == len(searches)
    assert summary["zero_result_share"] == pytest.approx(zero / len(searches))
    low, high = wilson_interval(zero, len(searches))
    assert summary["zero_result_share_low"] == pytest.approx(float(low))
    truth = json.loads((ci_root / "data" / "raw" / "ci" / "truth.json").read_text())["funnel"]
    assert summary["zero_result_share"] == pytest.approx(truth["search_zero_result_share"], abs=0.005)
    top = ss.top_queries(events, n=5)
    want = searches["search_query"].map(ss.normalise_query).value_counts()
    assert top["searches"].tolist() == want.head(5).tolist()

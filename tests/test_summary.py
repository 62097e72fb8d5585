"""The executive summary: its own numbers against pandas, its alerts, and the page across two runs."""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd
import pytest

from crm_analytics import i18n, paths
from crm_analytics.reports import history, summary
from crm_analytics.reports.index import render_index, write_index


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.use("en")


def _shop(project, seed=0, n=400):
    """Clean orders and 03's per-customer file of a small shop, written where the pipeline puts them."""
    rng = np.random.default_rng(seed)
    end = pd.Timestamp("2025-12-31 12:00", tz="UTC")
    ts = end - pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    orders = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(n)],
        "customer_id": pd.array([f"C{i % 150}" if i % 37 else None for i in range(n)], dtype="string"),
        "order_ts": ts, "channel": "web",
        "status": rng.choice(["completed", "returned", "cancelled"], n, p=[0.8, 0.1, 0.1]),
        "order_total": rng.gamma(2, 50, n).round(2)})
    interim = paths.interim_dir("shop")
    interim.mkdir(parents=True)
    orders.to_parquet(interim / "orders.parquet")
    clv = pd.DataFrame({"customer_id": [f"C{i}" for i in range(150)],
                        "churn_risk": pd.Categorical(rng.choice(["low", "medium", "high"], 150))})
    paths.processed_dir("shop").mkdir(parents=True)
    clv.to_parquet(paths.processed_dir("shop") / "clv.parquet")
    return orders, clv


def test_shop_numbers_equal_a_pandas_computation(project):
    orders, clv = _shop(project)
    got = summary.shop_numbers("shop")
    buys = orders[orders["customer_id"].notna() & orders["status"].isin(["completed", "returned"])]
    end = buys["order_ts"].max()
    last = buys[(buys["order_ts"] > end - pd.Timedelta(days=365)) & (buys["order_ts"] <= end)]
    prev = buys[(buys["order_ts"] > end - pd.Timedelta(days=730)) & (buys["order_ts"] <= end - pd.Timedelta(days=365))]
    per = buys.groupby("customer_id").size()
    assert got["repeat_purchase_rate"] == pytest.approx((per >= 2).mean())
    assert got["last_12_months"] == {"revenue": pytest.approx(last["order_total"].sum()), "orders": len(last),
                                     "buyers": last["customer_id"].nunique()}
    assert got["revenue_growth"] == pytest.approx(last["order_total"].sum() / prev["order_total"].sum() - 1)
    high = set(clv.loc[clv["churn_risk"] == "high", "customer_id"])
    assert got["churn_risk"]["customers"] == len(high)
    assert got["churn_risk"]["revenue_last_12_months"] == pytest.approx(
        last.loc[last["customer_id"].isin(high), "order_total"].sum())


def test_lookup_reads_dotted_keys_and_keys_with_dots():
    metrics = {"06": {"offers": {"exports": {"winback.csv": 12}}}, "02": {"customers": 5}}
    assert summary.lookup(metrics, "06", "offers.exports.winback.csv") == 12
    assert summary.lookup(metrics, "02", "customers") == 5
    assert summary.lookup(metrics, "02", "missing.key") is None


def _roi(estimate, low, high, srm=0.5):
    return {"roi": {"estimate": estimate, "ci_low": low, "ci_high": high}, "srm_p_value": srm}


def test_alerts_name_a_losing_campaign_a_broken_test_a_stale_feed_and_a_broken_export(project):
    reports = paths.reports_dir("shop")
    (reports / "exports").mkdir(parents=True)
    (reports / "exports" / "winback.csv").write_text("customer_id\nC1\n")
    paths.interim_dir("shop").mkdir(parents=True)
    (paths.interim_dir("shop") / "quality.json").write_text(json.dumps({"freshness": [
        {"table": "events", "newest": "2025-10-01", "days_old": 91.0, "stale": True},
        {"table": "campaigns", "newest": "2025-06-01", "days_old": 200.0, "stale": True}]}))
    metrics = {
        "04_campaign_roi": {"campaigns": {"A": {"x": _roi(-0.5, -0.9, -0.1)}, "B": {"y": _roi(-0.2, -0.8, 0.4)},
                                          "C": {"z": _roi(0.6, 0.1, 1.2, srm=1e-5)}}},
        "06_personalisation": {"offers": {"exports": {"winback.csv": 3, "birthday_month.csv": 1}}},
        "07_feedback": {"falling": {"category": 1, "product_id": 2}},
        "summary": {"churn_risk": {"share": 0.30}}}
    found = summary.alerts("shop", metrics, {"summary": {"churn_risk": {"share": 0.20}}},
                           {"02_segmentation": {"status": "ok"}, "03_clv_churn": {"status": "missing"}},
                           failed="02_segmentation")
    texts = [(a.level, a.text, a.values) for a in found]
    kinds = [t for _, t, _ in texts]
    assert any("loses money" in t and v["name"] == ("data", "A") for lvl, t, v in texts if lvl == "bad")
    assert any("probably loses money" in t and v["name"] == ("data", "B") for lvl, t, v in texts if lvl == "warn")
    assert any("sample-ratio mismatch" in t and v["name"] == ("data", "C") for _, t, v in texts)
    assert sum("days old" in t for t in kinds) == 1  # the events feed; a campaign table is no feed
    assert any("has {lines:,} rows" in t for t in kinds) and any("is missing" in t for t in kinds)
    assert any("Ratings are falling" in t for t in kinds) and any("churn risk" in t for t in kinds)
    assert [v["report"] for _, t, v in texts if "did not finish" in t] == [("data", "02_segmentation")]
    # a list that is empty this run is removed on purpose: no alert for it
    metrics["06_personalisation"]["offers"]["exports"]["next_best_action.csv"] = 0
    assert sum("is missing" in a.text for a in summary.alerts("shop", metrics, None, {})) == 1
    quiet = summary.alerts("shop", {"summary": {"churn_risk": {"share": 0.2}}}, None, {})
    assert [a.text for a in quiet if "days old" not in a.text] == []


def _publish_metrics(dataset, name, metrics):
    folder = paths.metrics_dir(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(metrics))


def test_the_summary_shows_each_figure_and_its_change_since_the_last_run(project):
    _shop(project)
    _publish_metrics("shop", "02_segmentation", {"customers": 140, "as_of": "2026-01-01"})
    _publish_metrics("shop", "05_behaviour", {"conversion_rate": {"value": 0.25},
                                              "cart_abandonment_rate": {"value": 0.40}})
    (project / "params" / "shop.yaml").write_text(
        "description: a test shop\nsource: {kind: files, currency: TRY, tables: {orders: {path: orders.csv}, events: {path: events.csv}}}\nlanguage: tr\nnotebooks: [02_segmentation, 05_behaviour]\n")
    first = html.unescape(write_index("shop").read_text())
    assert "lang='tr'" in first and "Yönetici özeti" in first and "ilk çalıştırma" in first
    assert "%25,0" in first and "140" in first  # Turkish percent and the customers tile
    tiles = dict(re.findall(r"data-metric='([^']+)' data-value='([^']+)'", first))
    assert json.loads(tiles["05_behaviour/conversion_rate.value"]) == 0.25
    assert json.loads(tiles["summary/repeat_purchase_rate"]) == pytest.approx(
        json.loads((paths.metrics_dir("shop") / "summary.json").read_text())["repeat_purchase_rate"])

    _publish_metrics("shop", "05_behaviour", {"conversion_rate": {"value": 0.30},
                                              "cart_abandonment_rate": {"value": 0.40}})
    second = html.unescape(write_index("shop").read_text())
    assert len(history.runs("shop")) == 2
    assert "▲" in second and "5,0 puan arttı" in second  # conversion up 5 points, in Turkish
    assert "neler değişti" in second and "%25,0" in second and "%30,0" in second  # before and now


def test_a_failed_night_leaves_the_last_summary_with_a_banner(project):
    _shop(project)
    _publish_metrics("shop", "02_segmentation", {"customers": 140})
    (project / "params" / "shop.yaml").write_text(
        "description: a test shop\nsource: {kind: files, currency: TRY, tables: {orders: {path: orders.csv}, events: {path: events.csv}}}\nnotebooks: [02_segmentation]\n")
    write_index("shop")
    history.record_failure("shop", "02_segmentation", paths.build_dir("shop") / "logs" / "02.kernel.log",
                           "DataContractError: orders.csv is empty")
    page = html.unescape(render_index("shop").read_text())
    assert "class='banner'" in page and "The last run failed at" in page and "02.kernel.log" in page
    assert "data-metric='02_segmentation/customers' data-value='140'" in page  # yesterday's figures stay
    page = html.unescape(write_index("shop").read_text())
    assert "class='banner'" not in page

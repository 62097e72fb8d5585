"""Attribution windows: a purchase counts for a campaign only inside its window."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analytics.models.attribution import campaign_outcomes, pre_period_features
from crm_analytics.errors import DataContractError

T0 = pd.Timestamp("2024-05-01 10:00", tz="UTC")


def _tables():
    d = pd.Timedelta(days=1)
    return {
        "campaigns": pd.DataFrame({"campaign_id": ["K"], "start_ts": [T0]}),
        "campaign_assignments": pd.DataFrame({
            "campaign_id": ["K"] * 4, "customer_id": ["a", "b", "c", "d"],
            "group": ["treatment", "treatment", "control", "control"], "variant": ["x", "y", None, None],
            "sent_ts": [T0, T0, pd.NaT, pd.NaT], "opened_ts": [T0 + d, pd.NaT, pd.NaT, pd.NaT],
            "clicked_ts": [pd.NaT] * 4}),
        "orders": pd.DataFrame({
            "order_id": list("123456"), "customer_id": ["a", "a", "b", "c", "d", "d"],
            "order_ts": [T0 + 2 * d, T0 + 20 * d, T0 - d, T0 + 13.9 * d, T0 + 3 * d, T0 - 30 * d],
            "status": ["completed", "completed", "completed", "returned", "cancelled", "completed"],
            "order_total": [10.0, 99.0, 5.0, 7.0, 8.0, 4.0]}),
    }


def test_only_purchases_inside_the_window_count():
    o = campaign_outcomes(_tables(), attribution_days=14).set_index("customer_id")
    assert o.loc["a", "revenue"] == 10.0 and o.loc["a", "orders"] == 1   # day 20 is outside
    assert not o.loc["b", "converted"]                                   # bought before the start
    assert o.loc["c", "converted"] and o.loc["c", "revenue"] == 7.0      # returned still counts as bought
    assert not o.loc["d", "converted"]                                   # cancelled does not
    assert o.loc["c", "variant"] == "control" and o.loc["a", "variant"] == "x"
    assert o.loc["a", "opened"] and not o.loc["b", "opened"]


def test_pre_period_features_look_only_backwards():
    f = pre_period_features(_tables(), days=60).set_index("customer_id")
    assert f.loc["b", "pre_orders"] == 1 and f.loc["d", "pre_orders"] == 1 and f.loc["a", "pre_orders"] == 0
    assert f.loc["d", "pre_days_since_order"] == pytest.approx(30)


def test_no_campaigns_is_a_clear_error():
    t = _tables()
    del t["campaigns"]
    with pytest.raises(DataContractError, match="no campaigns"):
        campaign_outcomes(t)


def test_visits_are_counted_in_the_engine_alike_for_a_frame_and_a_parquet_file(ci_clean, tmp_path):
    from crm_analytics.ingest.tables import ParquetTable

    tables = {k: ci_clean[k] for k in ("campaigns", "campaign_assignments", "orders", "events")}
    got = campaign_outcomes(tables, attribution_days=14).set_index(["campaign_id", "customer_id"])
    # independently, in pandas: an event of a session of the customer in [start, start + 14 days)
    a = tables["campaign_assignments"].merge(tables["campaigns"][["campaign_id", "start_ts"]], on="campaign_id")
    ev = tables["events"]
    ev = ev[ev["customer_id"].notna() & ev["session_id"].notna()][["customer_id", "ts"]]
    j = a[["campaign_id", "customer_id", "start_ts"]].merge(ev, on="customer_id")
    j = j[(j["ts"] >= j["start_ts"]) & (j["ts"] < j["start_ts"] + pd.Timedelta(days=14))]
    visited = set(zip(j["campaign_id"], j["customer_id"]))
    expected = pd.Series([k in visited for k in got.index], index=got.index)
    assert 0 < expected.sum() < len(expected)
    assert got["visited"].tolist() == expected.tolist()
    path = tmp_path / "events.parquet"
    tables["events"].to_parquet(path)
    lazy = campaign_outcomes({**tables, "events": ParquetTable(path)}, attribution_days=14)
    pd.testing.assert_frame_equal(lazy.set_index(["campaign_id", "customer_id"]), got)

"""The CLV and churn report on tables too big for pandas: handles on the clean parquet files
(:class:`crm_analytics.ingest.tables.ParquetTable`) give exactly what the DataFrames give, and the
chunked computations (cash flows by segment, the simulated frequency histogram) what the whole-table
ones give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.ingest.tables import ParquetTable, purchases
from crm_analytics.models import churn, clv
from crm_analytics.models.clv import value
from crm_analytics.reports import clv_report

TABLES = ["orders", "order_lines", "events", "customers", "campaign_assignments", "tickets", "reviews"]


@pytest.fixture(scope="module")
def ci_files(ci_clean, tmp_path_factory) -> dict:
    """The `ci` clean tables as parquet files (as notebook 01 writes them) and as handles on them."""
    where = tmp_path_factory.mktemp("ci_files")
    out = {}
    for name in TABLES:
        frame = ci_clean.get(name)
        if frame is None:
            continue
        path = where / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        out[name] = ParquetTable(path)
    return out


@pytest.fixture(scope="module")
def frames(ci_files) -> dict:
    """The same tables read back into pandas: what the notebook read before."""
    return {k: pd.read_parquet(v.path) for k, v in ci_files.items()}


@pytest.mark.parametrize("time_unit", ["day", "week", "month"])
def test_summaries_from_the_file_equal_those_from_pandas(ci_files, frames, time_unit):
    freq, mult = clv_report.time_unit_freq(time_unit)
    bought = purchases(frames["orders"])
    cal, obs = clv_report.periods(bought, "", 180)
    assert clv_report.periods(ci_files["orders"], "", 180) == (cal, obs)
    assert clv_report.purchase_days(ci_files["orders"]) == clv_report.purchase_days(bought)
    want = clv.calibration_holdout(bought, cal, obs, freq=freq, freq_multiplier=mult)
    got = clv.calibration_holdout(ci_files["orders"], cal, obs, freq=freq, freq_multiplier=mult)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs
    pd.testing.assert_frame_equal(clv.rfm_summary(ci_files["orders"], freq=freq, freq_multiplier=mult),
                                  clv.rfm_summary(bought, freq=freq, freq_multiplier=mult), check_exact=True)


def test_tracking_from_the_file_equals_pandas(ci_files, frames):
    bought = purchases(frames["orders"])
    cal, obs = clv_report.periods(bought, "", 180)
    s = clv.calibration_holdout(bought, cal, obs, freq="D", freq_multiplier=7.0)
    fit = clv.fit_bgnbd(s)
    kw = {"freq": "D", "freq_multiplier": 7.0, "end": obs, "bucket": 7, "calibration_end": cal}
    pd.testing.assert_frame_equal(clv.repeat_transactions_over_time(ci_files["orders"], fit, **kw),
                                  clv.repeat_transactions_over_time(bought, fit, **kw))


def test_the_file_handle_picks_the_purchases(ci_files, frames):
    """Cancelled orders and orders without a customer are left out, as purchases() leaves them out."""
    o = frames["orders"]
    assert (~o["status"].isin(["completed", "returned"])).any()
    s = clv.rfm_summary(ci_files["orders"])
    assert set(s.index) == set(purchases(o)["customer_id"])


def test_churn_labels_from_the_file_equal_pandas(ci_files, frames):
    o = frames["orders"]
    cut = pd.Timestamp("2025-06-30 12:00", tz="UTC")
    customers = pd.Index(sorted(o["customer_id"].dropna().unique()), name="customer_id")
    want = churn.churn_labels(o, customers, cut, 90)
    got = churn.churn_labels(ci_files["orders"], customers, cut, 90)
    pd.testing.assert_series_equal(got, want)
    bought = o[o["status"].isin(["completed", "returned"]) & (o["order_ts"] > cut)
               & (o["order_ts"] <= cut + pd.Timedelta(days=90))]
    assert (want.to_numpy() == (~customers.isin(bought["customer_id"])).astype(int)).all()
    assert 0 < want.mean() < 1


def test_churn_model_on_file_handles_equals_pandas(ci_files, frames):
    cut = clv_report.end_of_day_utc(pd.Timestamp("2025-07-04"))
    want = churn.fit_churn_model(frames, cut, 90, seed=0)
    got = churn.fit_churn_model(ci_files, cut, 90, seed=0)
    assert got.features == want.features
    assert got.metrics == want.metrics
    np.testing.assert_array_equal(got.score_test.to_numpy(), want.score_test.to_numpy())
    assert list(got.score_test.index) == list(want.score_test.index)
    pd.testing.assert_series_equal(got.y_test, want.y_test, check_index_type=False)


def _fits(bought):
    full = clv.rfm_summary(bought, freq="D", freq_multiplier=7.0)
    return full, clv.fit_bgnbd(full), clv_report.fit_spend(full)[0]


def test_cashflows_by_segment_in_chunks_equal_one_pass(frames, monkeypatch):
    full, fit, gg = _fits(purchases(frames["orders"]))
    seg = pd.Series(np.where(full["frequency"] > 1, "repeat", "few"), index=full.index, name="segment")
    kw = {"horizon_months": 6, "margin": 0.3, "annual_discount_rate": 0.1, "segment": seg}
    whole = clv.clv_cashflows(fit, gg, full, **kw)
    monkeypatch.setattr(value, "CASHFLOW_CHUNK", 97)
    chunked = clv.clv_cashflows(fit, gg, full, **kw)
    pd.testing.assert_frame_equal(chunked, whole, rtol=1e-12)
    per_customer = clv.clv(fit, gg, full, horizon_months=6, margin=0.3, annual_discount_rate=0.1)
    totals = whole.groupby("segment")["discounted_margin"].sum()
    assert totals.to_dict() == pytest.approx(per_customer["clv"].groupby(seg).sum().to_dict(), rel=1e-9)


def test_frequency_histogram_simulates_in_chunks(frames, monkeypatch):
    full, fit, _ = _fits(purchases(frames["orders"]))
    one = clv_report.frequency_histogram(full, {"bgnbd": fit})
    draws = clv_report.simulate_repeat_purchases(fit, full["T"].to_numpy(), draws=20)
    expected = np.bincount(np.minimum(draws, 7), minlength=8) * (1 / 20)
    np.testing.assert_array_equal(one["bgnbd"].to_numpy(), expected)  # one chunk: the draws of seed 0
    monkeypatch.setattr(clv_report, "SIMULATION_CHUNK", 1000)
    monkeypatch.setattr(clv_report, "MAX_SIMULATED", 5 * len(full))
    chunked = clv_report.frequency_histogram(full, {"bgnbd": fit})
    assert chunked["bgnbd"].sum() == pytest.approx(len(full))  # 5 draws per customer, in chunks
    assert chunked["bgnbd"].to_numpy() == pytest.approx(one["bgnbd"].to_numpy(), rel=0.15, abs=5)


def test_segment_labels_read_two_columns(tmp_path, monkeypatch):
    from crm_analytics import paths

    monkeypatch.setattr(paths, "processed_dir", lambda ds: tmp_path / ds)
    ids = pd.Index(["a", "b", "c"], name="customer_id")
    fallback = pd.Series(pd.Categorical(["high", "low", "low"]), index=ids, name="churn_risk")
    got, from_file = clv_report.segment_labels("x", ids, fallback)
    assert not from_file and got.tolist() == ["high", "low", "low"] and got.name == "segment"
    (tmp_path / "x").mkdir()
    pd.DataFrame({"customer_id": ["b", "a"], "segment": ["Champions", "Lost"], "other": [1, 2]}).to_parquet(
        tmp_path / "x" / "segments.parquet")
    got, from_file = clv_report.segment_labels("x", ids, fallback)
    assert from_file and got.tolist() == ["Lost", "Champions", "not segmented"]

"""The segmentation and cohort functions on clean tables too big for pandas: a
:class:`~crm_analytics.ingest.tables.ParquetTable` (aggregated in the engine) gives the same results as
the DataFrame it holds, on the ``ci`` world's clean tables; and the one-pass :func:`stage_trend` equals
:func:`recognise` run at every period end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from crm_analytics.ingest.tables import ParquetTable
from crm_analytics.models import cohorts
from crm_analytics.models import segmentation as seg
from crm_analytics.models.segmentation.lifecycle import STAGES

CI = REPO / "data" / "interim" / "ci"
AS_OF = pd.Timestamp("2026-01-01", tz="UTC")
EVENT_COLUMNS = ["ts", "customer_id", "anonymous_id", "session_id"]

pytestmark = pytest.mark.skipif(not (CI / "orders.parquet").exists(),
                                reason="the ci world's clean tables are not built (make reports DATASET=ci)")


def _frame(name: str, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.read_parquet(CI / f"{name}.parquet", columns=columns)


def _handle(name: str) -> ParquetTable:
    return ParquetTable(Path(CI / f"{name}.parquet"))


def _trend_by_recognise(orders, events, customers, freq="M", lapsed_after_days=180) -> pd.DataFrame:
    """stage_trend as it was: one full recognise() per period end."""
    stamps = [orders["order_ts"].dt.tz_convert("UTC").dt.tz_localize(None)]
    if events is not None:
        stamps.append(events["ts"].dt.tz_convert("UTC").dt.tz_localize(None))
    ts = pd.concat(stamps).dropna()
    last = ts.max()
    rows = []
    for p in pd.period_range(ts.min(), last, freq=freq):
        end = min(p.end_time.floor("us"), last)
        counts = seg.recognise(orders, events, customers, end, lapsed_after_days)["stage"].value_counts()
        rows.append({"period": str(p), "as_of": end.tz_localize("UTC"), "complete": bool(p.end_time <= last),
                     **{s: int(counts.get(s, 0)) for s in STAGES}})
    out = pd.DataFrame(rows).set_index("period")
    if events is None or customers is None:
        out = out.drop(columns=["registered_only"])
    if events is None:
        out = out.drop(columns=["first_time_visitor", "returning_visitor"])
    return out


def test_rfm_table_of_a_parquet_table_equals_the_dataframe():
    want = seg.rfm_table(_frame("orders"), AS_OF)
    got = seg.rfm_table(_handle("orders"), AS_OF)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    assert got.attrs == want.attrs


@pytest.mark.parametrize("as_of", [AS_OF, pd.Timestamp("2025-03-31 23:59:59.999999", tz="UTC")])
def test_recognise_of_parquet_tables_equals_the_dataframes(as_of):
    want = seg.recognise(_frame("orders"), _frame("events", EVENT_COLUMNS), _frame("customers"), as_of)
    got = seg.recognise(_handle("orders"), _handle("events"), _handle("customers"), as_of)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("with_events,with_customers", [(False, False), (True, False), (True, True)])
def test_stage_trend_in_one_pass_equals_recognise_at_every_month_end(with_events, with_customers):
    orders = _frame("orders")
    events = _frame("events", EVENT_COLUMNS) if with_events else None
    customers = _frame("customers", ["customer_id", "signup_ts"]) if with_customers else None
    want = _trend_by_recognise(orders, events, customers)
    pd.testing.assert_frame_equal(seg.stage_trend(orders, events, customers=customers), want)
    got = seg.stage_trend(_handle("orders"), _handle("events") if with_events else None,
                          customers=_handle("customers") if with_customers else None)
    pd.testing.assert_frame_equal(got, want)


def test_stage_trend_by_quarter_and_short_lapse_equals_recognise():
    orders, events, customers = _frame("orders"), _frame("events", EVENT_COLUMNS), _frame("customers")
    want = _trend_by_recognise(orders, events, customers, "Q", 45)
    pd.testing.assert_frame_equal(seg.stage_trend(orders, events, "Q", customers=customers, lapsed_after_days=45),
                                  want)


def test_stage_trend_follows_a_device_that_becomes_shared():
    """A device stitched to c1 in January is seen with c2 in March: from then on its anonymous sessions
    are the device's again (what was known at each month end), so c1 keeps only the session they
    were logged in for."""
    orders = pd.DataFrame({"order_id": ["o1"], "customer_id": ["c9"], "status": ["completed"], "order_total": [5.0],
                           "order_ts": pd.to_datetime(["2024-01-02"], utc=True)})
    events = pd.DataFrame({
        "ts": pd.to_datetime(["2024-01-05", "2024-01-06", "2024-02-03", "2024-03-04", "2024-04-01"], utc=True),
        "customer_id": [None, "c1", None, "c2", None],
        "anonymous_id": ["D", "D", "D", "D", "E"],
        "session_id": ["s1", "s1", "s2", "s3", "s4"]})
    customers = pd.DataFrame({"customer_id": ["c1", "c2", "c3"],
                              "signup_ts": pd.to_datetime(["2023-12-01", "2024-03-01", None], utc=True)})
    want = _trend_by_recognise(orders, events, customers)
    got = seg.stage_trend(orders, events, customers=customers)
    pd.testing.assert_frame_equal(got, want)
    assert got.loc["2024-02", ["first_time_visitor", "returning_visitor", "registered_only"]].tolist() == [0, 1, 1]
    # March: c1 (s1) and c2 (s3) once; the shared device D with s1 and s2 returning; c3 registered only
    assert got.loc["2024-03", ["first_time_visitor", "returning_visitor", "registered_only"]].tolist() == [2, 1, 1]


def test_behaviour_features_of_parquet_tables_equal_the_dataframes():
    products = _frame("products")
    want = seg.behaviour_features(_frame("orders"), _frame("order_lines"), products,
                                  _frame("events", EVENT_COLUMNS), _frame("tickets"), AS_OF)
    got = seg.behaviour_features(_handle("orders"), _handle("order_lines"), products, _handle("events"),
                                 _handle("tickets"), AS_OF)
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)


def test_migration_of_a_parquet_table_equals_the_dataframe():
    prev = AS_OF - pd.Timedelta(days=90)
    want, got = seg.migration(_frame("orders"), prev, AS_OF), seg.migration(_handle("orders"), prev, AS_OF)
    pd.testing.assert_frame_equal(got.counts, want.counts)
    pd.testing.assert_frame_equal(got.revenue_at_stake, want.revenue_at_stake, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(got.moves, want.moves, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("as_of,freq,partial", [(AS_OF, "M", False), (pd.Timestamp("2025-06-15", tz="UTC"), "Q", False),
                                                (pd.Timestamp("2025-06-15", tz="UTC"), "M", True),
                                                (pd.Timestamp("2025-06-15", tz="UTC"), "W", False)])
def test_cohort_retention_of_a_parquet_table_equals_the_dataframe(as_of, freq, partial):
    want = cohorts.cohort_retention(_frame("orders"), as_of, freq, include_partial=partial)
    got = cohorts.cohort_retention(_handle("orders"), as_of, freq, include_partial=partial)
    for name in ("customers", "active"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name))
    for name in ("revenue", "revenue_amount"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=False, rtol=1e-12)
    pd.testing.assert_series_equal(got.sizes, want.sizes)
    assert (got.freq, got.last_period) == (want.freq, want.last_period)

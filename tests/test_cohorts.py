"""Tests of crm_analytics.models.cohorts on a hand-built example and on the real Online Retail data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import external_file
from crm_analytics.models import cohorts
from crm_analytics.errors import CrmAnalyticsError, DataContractError, ParamsError

NAN = np.nan


def _orders(rows):
    df = pd.DataFrame(rows, columns=["customer_id", "order_ts", "status", "order_total"])
    df["order_ts"] = pd.to_datetime(df["order_ts"], utc=True, format="ISO8601")
    df.insert(0, "order_id", [str(i) for i in range(len(df))])
    return df


HAND = _orders([
    # January cohort: a (Jan, Feb, Mar), b (Jan, Mar), c (Jan only), d (twice in Jan)
    ("a", "2024-01-03", "completed", 10.0), ("a", "2024-02-10", "completed", 7.0), ("a", "2024-03-05", "returned", 14.0),
    ("b", "2024-01-15", "completed", 20.0), ("b", "2024-03-20", "completed", 21.0),
    ("c", "2024-01-20", "completed", 30.0), ("c", "2024-02-11", "cancelled", 99.0),
    ("d", "2024-01-02", "completed", 5.0), ("d", "2024-01-30", "completed", 5.0),
    # February cohort: e (Feb, Mar), f (Feb)
    ("e", "2024-02-01", "completed", 10.0), ("e", "2024-03-01", "completed", 20.0),
    ("f", "2024-02-28", "completed", 30.0),
    # March cohort: g
    ("g", "2024-03-31 23:00", "completed", 8.0),
    # ignored: unknown customer; after as_of
    (None, "2024-01-05", "completed", 50.0),
    ("a", "2024-04-02", "completed", 9.0), ("h", "2024-04-03", "completed", 9.0),
])


def test_hand_built_customer_and_revenue_retention():
    r = cohorts.cohort_retention(HAND, "2024-03-31 23:59:59.999999")
    assert [str(p) for p in r.customers.index] == ["2024-01", "2024-02", "2024-03"]
    assert r.sizes.tolist() == [4, 2, 1]
    want = np.array([[1.0, 0.25, 0.5], [1.0, 0.5, NAN], [1.0, NAN, NAN]])
    np.testing.assert_allclose(r.customers.to_numpy(), want)
    np.testing.assert_allclose(r.active.to_numpy(), [[4, 1, 2], [2, 1, NAN], [1, NAN, NAN]])
    np.testing.assert_allclose(r.revenue.to_numpy(), [[1.0, 7 / 70, 35 / 70], [1.0, 20 / 40, NAN], [1.0, NAN, NAN]])
    np.testing.assert_allclose(r.revenue_amount[0].to_numpy(), [70.0, 40.0, 8.0])
    # averages: weighted by cohort size, over the cohorts observed that long
    curve = r.average()
    np.testing.assert_allclose(curve.to_numpy(), [1.0, (4 * 0.25 + 2 * 0.5) / 6, 0.5])
    assert cohorts.retention_at(r, 1) == pytest.approx(1 / 3)
    assert cohorts.retention_at(r.customers, 1) == pytest.approx((0.25 + 0.5) / 2)  # unweighted
    assert cohorts.retention_at(r.customers, 1, r.sizes) == pytest.approx(1 / 3)
    np.testing.assert_allclose(r.average("revenue").to_numpy(), [1.0, 27 / 110, 35 / 70])
    with pytest.raises(CrmAnalyticsError, match="no cohort has been observed for 3 periods"):
        cohorts.retention_at(r, 3)


def test_unfinished_period_is_missing_not_zero():
    mid_april = cohorts.cohort_retention(HAND, "2024-04-15")
    end_march = cohorts.cohort_retention(HAND, "2024-03-31 23:59:59.999999")
    pd.testing.assert_frame_equal(mid_april.customers, end_march.customers)  # April is not finished
    assert str(mid_april.last_period) == "2024-03"
    partial = cohorts.cohort_retention(HAND, "2024-04-15", include_partial=True)
    assert [str(p) for p in partial.customers.index] == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert partial.customers.loc[pd.Period("2024-01", "M"), 3] == 0.25  # a came back in April
    assert partial.customers.loc[pd.Period("2024-02", "M"), 2] == 0.0  # observed, nobody bought: 0 not NaN
    assert np.isnan(partial.customers.loc[pd.Period("2024-02", "M"), 3])
    # midnight at the start of April: March is over, nothing of April yet
    assert str(cohorts.cohort_retention(HAND, "2024-04-01").last_period) == "2024-03"


def test_quarterly_and_gap_periods():
    o = _orders([("a", "2024-01-05", "completed", 1.0), ("a", "2024-07-05", "completed", 1.0),
                 ("b", "2024-07-09", "completed", 1.0), ("c", "2024-02-01", "completed", 1.0)])
    r = cohorts.cohort_retention(o, "2024-12-31 23:59:59.999999", freq="Q")
    # Q2 had no first purchase: no cohort row; Q1 cohort (a, c): Q2 nobody, Q3 a
    assert [str(p) for p in r.customers.index] == ["2024Q1", "2024Q3"]
    np.testing.assert_allclose(r.customers.iloc[0].to_numpy(), [1.0, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(r.customers.iloc[1].to_numpy(), [1.0, 0.0, NAN, NAN])


def test_errors():
    with pytest.raises(DataContractError, match="status"):
        cohorts.cohort_retention(HAND.drop(columns="status"), "2024-03-31")
    with pytest.raises(ParamsError, match="freq"):
        cohorts.cohort_retention(HAND, "2024-03-31", freq="fortnight")
    with pytest.raises(CrmAnalyticsError, match="include_partial"):
        cohorts.cohort_retention(HAND, "2024-01-20")
    with pytest.raises(DataContractError, match="weights"):
        cohorts.average_curve(pd.DataFrame({0: [1.0]}, index=["x"]), pd.Series({"y": 1.0}))


@pytest.mark.external
def test_online_retail_matches_independent_cohorts():
    lines = pd.read_csv(external_file("online_retail/online_retail.csv.gz"),
                        dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "float64"})
    lines = lines[~lines["InvoiceNo"].str.startswith("C") & lines["CustomerID"].notna() & (lines["Quantity"] > 0)].copy()
    lines["customer"] = lines["CustomerID"].astype("int64").astype(str)
    lines["ts"] = pd.to_datetime(lines["InvoiceDate"])
    lines["value"] = lines["Quantity"] * lines["UnitPrice"]
    inv = lines.groupby("InvoiceNo").agg(customer_id=("customer", "first"), ts=("ts", "min"),
                                         order_total=("value", "sum")).reset_index()
    orders = pd.DataFrame({"order_id": inv["InvoiceNo"], "customer_id": inv["customer_id"],
                           "order_ts": inv["ts"].dt.tz_localize("UTC"), "status": "completed",
                           "order_total": inv["order_total"]})
    r = cohorts.cohort_retention(orders, "2011-12-09 23:59")
    # independent: month index = 12 * year + month, first month per customer, Dec 2011 unfinished
    inv["m"] = inv["ts"].dt.year * 12 + inv["ts"].dt.month
    inv["c"] = inv.groupby("customer_id")["m"].transform("min")
    inv = inv[inv["m"] < 2011 * 12 + 12]
    inv = inv[inv["c"] < 2011 * 12 + 12]
    sizes = inv.groupby("c")["customer_id"].nunique()
    act = inv.assign(k=inv["m"] - inv["c"]).groupby(["c", "k"])["customer_id"].nunique().unstack(fill_value=0)
    want = act.div(sizes, axis=0)
    assert r.sizes.tolist() == sizes.tolist()
    got = r.customers.to_numpy()
    for i, c in enumerate(want.index):
        observed = (2011 * 12 + 11) - c  # last finished month: November 2011
        np.testing.assert_allclose(got[i, : observed + 1], want.loc[c].reindex(range(observed + 1), fill_value=0.0))
        assert np.isnan(got[i, observed + 1:]).all()
    rev0 = inv[inv["m"] == inv["c"]].groupby("c")["order_total"].sum()
    rev1 = inv[inv["m"] == inv["c"] + 1].groupby("c")["order_total"].sum()
    assert r.revenue.iloc[0, 1] == pytest.approx(rev1.iloc[0] / rev0.iloc[0])
    assert r.sizes.iloc[0] == 885 and 0.2 < cohorts.retention_at(r, 1) < 0.4


@pytest.mark.external
def test_online_retail_published_december_cohort():
    """The often-published cohort table (every invoice line with a CustomerID, cancellations included)
    has 948 customers in the December 2010 cohort, 362 of whom (38.2 %) bought again in January 2011."""
    lines = pd.read_csv(external_file("online_retail/online_retail.csv.gz"), dtype={"InvoiceNo": str, "StockCode": str})
    lines = lines[lines["CustomerID"].notna()]
    orders = pd.DataFrame({"order_id": lines["InvoiceNo"], "customer_id": lines["CustomerID"].astype("int64").astype(str),
                           "order_ts": pd.to_datetime(lines["InvoiceDate"]).dt.tz_localize("UTC"),
                           "status": "completed", "order_total": lines["Quantity"] * lines["UnitPrice"]})
    r = cohorts.cohort_retention(orders, "2011-12-09 23:59")
    assert r.sizes.iloc[0] == 948
    assert r.customers.iloc[0, 1] == pytest.approx(362 / 948)

"""Tests of crm_analytics.models.segmentation (and the RFM table of crm_analytics.features.rfm it
re-exports) against independent computations and known truths."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from conftest import external_file
from crm_analytics.features import rfm as rfm_features
from crm_analytics.models import segmentation as seg
from crm_analytics.models.segmentation.demographics import _group_sort_key
from crm_analytics.errors import CrmAnalyticsError, DataContractError, ParamsError

DAY = pd.Timedelta(days=1)


def _orders(rows):
    """Orders from (order_id, customer_id, ts, status, total[, channel]) tuples."""
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "order_ts", "status", "order_total", "channel"][
        : len(rows[0])])
    df["order_ts"] = pd.to_datetime(df["order_ts"], utc=True, format="ISO8601")
    return df


# --------------------------------------------------------------------------------------------
# rfm_table on real data, against a plain groupby written here
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def online_retail():
    path = external_file("online_retail/online_retail.csv.gz")
    lines = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "float64"})
    lines = lines[~lines["InvoiceNo"].str.startswith("C") & lines["CustomerID"].notna() & (lines["Quantity"] > 0)].copy()
    lines["customer"] = lines["CustomerID"].astype("int64").astype(str)
    lines["ts"] = pd.to_datetime(lines["InvoiceDate"], utc=True)
    lines["value"] = lines["Quantity"] * lines["UnitPrice"]
    inv = lines.groupby("InvoiceNo").agg(customer_id=("customer", "first"), order_ts=("ts", "max"),
                                         order_total=("value", "sum")).reset_index()
    orders = pd.DataFrame({"order_id": inv["InvoiceNo"], "customer_id": inv["customer_id"],
                           "order_ts": inv["order_ts"], "channel": "web", "status": "completed",
                           "order_total": inv["order_total"]})
    return lines, orders


@pytest.mark.external
def test_rfm_online_retail_matches_groupby(online_retail):
    lines, orders = online_retail
    as_of = pd.Timestamp("2011-12-10", tz="UTC")
    got = seg.rfm_table(orders, as_of)
    g = lines.groupby("customer")
    want = pd.DataFrame({
        "recency_days": (as_of - g["ts"].max()).dt.total_seconds() / 86400,
        "orders": g["InvoiceNo"].nunique(),
        "revenue": g["value"].sum(),
    })
    assert len(got) == len(want) == 4339  # customers with a valid purchase (UCI description: 4,372 incl. returns-only)
    assert list(got.index) == sorted(want.index)
    want = want.loc[got.index]
    np.testing.assert_allclose(got["recency_days"], want["recency_days"], atol=1e-9)
    np.testing.assert_array_equal(got["orders"], want["orders"])
    np.testing.assert_allclose(got["revenue"], want["revenue"], rtol=1e-9)
    np.testing.assert_allclose(got["aov"], want["revenue"] / want["orders"], rtol=1e-9)


@pytest.mark.external
def test_rfm_online_retail_cut_at_as_of(online_retail):
    lines, orders = online_retail
    as_of = pd.Timestamp("2011-06-30 12:00", tz="UTC")
    got = seg.rfm_table(orders, as_of)
    early = lines[lines["ts"] <= as_of]
    inv_ts = lines.groupby("InvoiceNo")["ts"].max()  # an order counts when its (last) timestamp is by as_of
    early = early[early["InvoiceNo"].map(inv_ts) <= as_of]
    g = early.groupby("customer")
    assert got.index.equals(pd.Index(sorted(g.groups), name="customer_id"))
    np.testing.assert_array_equal(got["orders"], g["InvoiceNo"].nunique().loc[got.index])
    np.testing.assert_allclose(got["revenue"], g["value"].sum().loc[got.index], rtol=1e-9)
    assert (got["last_purchase"] <= as_of).all()


def _cdnow_sample() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or spec.origin is None:
        pytest.skip("lifetimes is not installed (it ships the CDNOW sample)")
    return external_file_or_skip(Path(spec.origin).parent / "datasets" / "CDNOW_sample.txt")


def external_file_or_skip(p: Path) -> Path:
    if not p.exists():
        pytest.skip(f"{p} is absent")
    return p


@pytest.mark.parametrize("as_of", ["1998-07-01", "1997-03-31"])
def test_rfm_cdnow_matches_groupby(as_of):
    raw = pd.read_csv(_cdnow_sample(), sep=r"\s+", header=None,
                      names=["master_id", "sample_id", "yyyymmdd", "cds", "dollars"],
                      dtype={"master_id": str, "sample_id": str, "yyyymmdd": str})
    raw["ts"] = pd.to_datetime(raw["yyyymmdd"], format="%Y%m%d", utc=True)
    orders = pd.DataFrame({"order_id": raw.index.astype(str), "customer_id": raw["master_id"], "order_ts": raw["ts"],
                           "channel": "mail", "status": "completed", "order_total": raw["dollars"]})
    cut = pd.Timestamp(as_of, tz="UTC")
    got = seg.rfm_table(orders, cut)
    sub = raw[raw["ts"] <= cut]
    g = sub.groupby("master_id")
    assert got.index.equals(pd.Index(sorted(g.groups), name="customer_id"))
    np.testing.assert_allclose(got["recency_days"], ((cut - g["ts"].max()) / DAY).loc[got.index])
    np.testing.assert_array_equal(got["orders"], g.size().loc[got.index])
    np.testing.assert_allclose(got["revenue"], g["dollars"].sum().loc[got.index], rtol=1e-12)
    assert (got["first_purchase"] == g["ts"].min().loc[got.index]).all()
    if as_of == "1998-07-01":
        assert len(got) == 2357  # the published size of the CDNOW sample
        assert got["orders"].sum() == 6919


def test_rfm_excludes_cancelled_anonymous_and_later_orders():
    o = _orders([
        ("1", "a", "2024-01-01", "completed", 10.0),
        ("2", "a", "2024-01-11", "returned", 30.0),
        ("3", "a", "2024-01-05", "cancelled", 99.0),
        ("4", None, "2024-01-05", "completed", 99.0),
        ("5", "b", "2024-02-01", "completed", 99.0),  # after as_of
        ("6", "c", "2024-01-20 12:00", "completed", 5.0),
    ])
    r = seg.rfm_table(o, "2024-01-21")
    assert list(r.index) == ["a", "c"]
    assert r.loc["a", "orders"] == 2 and r.loc["a", "revenue"] == 40.0 and r.loc["a", "aov"] == 20.0
    assert r.loc["a", "recency_days"] == 10.0 and r.loc["c", "recency_days"] == 0.5
    assert str(r["last_purchase"].dt.tz) == "UTC"
    assert seg.rfm_table(o, "2023-01-01").empty


def test_rfm_table_speaks_the_feature_vocabulary():
    """One RFM table (features.rfm), re-exported by segmentation, in the names of crm_analytics.features:
    ``orders`` and ``revenue``; ``frequency`` is left to the BTYD summary."""
    assert seg.rfm_table is rfm_features.rfm_table and seg.RFM_COLUMNS is rfm_features.RFM_COLUMNS
    o = _orders([("1", "a", "2024-01-01", "completed", 10.0), ("2", "b", "2024-01-03", "returned", 5.0)])
    r = seg.rfm_table(o, "2024-01-04")
    assert list(r.columns) == seg.RFM_COLUMNS == ["recency_days", "orders", "revenue", "aov", "first_purchase",
                                                  "last_purchase"]
    assert r.attrs["as_of"] == "2024-01-04T00:00:00+00:00"


def test_rfm_table_errors():
    with pytest.raises(DataContractError, match="order_total"):
        seg.rfm_table(pd.DataFrame({"customer_id": ["a"], "order_ts": pd.to_datetime(["2024-01-01"], utc=True),
                                    "status": ["completed"]}), "2024-02-01")
    o = _orders([("1", "a", "2024-01-01", "completed", 1.0)])
    with pytest.raises(ParamsError, match="as_of"):
        seg.rfm_table(o, "not a date")
    with pytest.raises(DataContractError, match="not a timestamp"):
        seg.rfm_table(o.assign(order_ts=o["order_ts"].astype(str)), "2024-02-01")


def test_rfm_table_is_fast():
    rng = np.random.default_rng(1)
    n_c, n_o = 200_000, 560_000
    ids = pd.Series(np.arange(n_c)).map("C{:07d}".format).to_numpy()
    o = pd.DataFrame({
        "order_id": np.arange(n_o).astype(str),
        "customer_id": ids[rng.integers(0, n_c, n_o)],
        "order_ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365 * 86400, n_o), unit="s"),
        "status": rng.choice(["completed", "returned", "cancelled"], n_o),
        "order_total": rng.gamma(2.0, 50.0, n_o),
    })
    start = time.perf_counter()
    r = seg.rfm_table(o, "2024-12-31")
    assert time.perf_counter() - start < 5.0  # ~0.3 s here; 1 M customers / 2.8 M orders take ~1 s
    assert r["orders"].sum() == int((o["status"] != "cancelled").sum())


# --------------------------------------------------------------------------------------------
# scores
# --------------------------------------------------------------------------------------------
def _rfm(rec, freq, mon):
    return pd.DataFrame({"recency_days": rec, "orders": freq, "revenue": mon},
                        index=pd.Index([f"c{i}" for i in range(len(rec))], name="customer_id"))


values = st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(values, st.integers(min_value=2, max_value=7))
def test_scores_properties(vals, bins):
    v = np.array(vals, dtype=float)
    s = seg.rfm_scores(_rfm(v, v, v), bins=bins)
    for col in ("r_score", "f_score", "m_score"):
        assert s[col].between(1, bins).all()
    f, r = s["f_score"].to_numpy(), s["r_score"].to_numpy()
    # ties equal, monotone: a larger value never scores lower (recency reversed)
    assert ((v[:, None] == v[None, :]) <= (f[:, None] == f[None, :])).all()
    assert ((v[:, None] < v[None, :]) <= (f[:, None] <= f[None, :])).all()
    assert ((v[:, None] < v[None, :]) <= (r[:, None] >= r[None, :])).all()
    # the documented rule: 1 + floor(bins * share of customers with a strictly worse value)
    worse = (v[None, :] < v[:, None]).sum(axis=1)
    np.testing.assert_array_equal(f, 1 + np.floor(bins * worse / len(v)))
    assert f[v == v.min()].max() == 1 and r[v == v.max()].max() == 1


def test_scores_distinct_values_fill_all_quintiles():
    v = np.arange(1, 101, dtype=float)
    s = seg.rfm_scores(_rfm(v, v, v))
    assert (s["m_score"].value_counts().sort_index() == 20).all()
    assert s.loc["c0", "r_score"] == 5 and s.loc["c99", "r_score"] == 1  # recent = 5


def test_scores_mostly_single_purchase():
    rng = np.random.default_rng(3)
    freq = np.where(rng.random(1000) < 0.8, 1, rng.integers(2, 6, 1000))
    s = seg.rfm_scores(_rfm(rng.random(1000) * 300, freq, rng.gamma(2, 50, 1000)))
    assert (s.loc[freq == 1, "f_score"] == 1).all()
    assert s["f_score"].between(1, 5).all()
    assert s.groupby(freq)["f_score"].nunique().eq(1).all()
    assert (s.loc[freq > 1, "f_score"] >= 5).all()  # they beat 80 % of customers
    assert set(s["fm_score"]) <= {1, 2, 3, 4, 5}


def test_scores_reject_missing_values():
    with pytest.raises(DataContractError, match="orders"):
        seg.rfm_scores(_rfm([1.0, 2.0], [1, None], [3.0, 4.0]))
    with pytest.raises(ParamsError, match="bins"):
        seg.rfm_scores(_rfm([1.0], [1], [3.0]), bins=1)


# --------------------------------------------------------------------------------------------
# named segments
# --------------------------------------------------------------------------------------------
def _all_cells():
    r, f, m = np.meshgrid(np.arange(1, 6), np.arange(1, 6), np.arange(1, 6), indexing="ij")
    return pd.DataFrame({"r_score": r.ravel(), "f_score": f.ravel(), "m_score": m.ravel()})


def _first_match(mapping, r, f, m):
    fm = int(np.floor((f + m) / 2 + 0.5))
    cell = {"r": r, "f": f, "m": m, "fm": fm}
    for name, rule in mapping.items():
        if all(lo <= cell[ax] <= hi for ax, (lo, hi) in rule.items()):
            return name
    return None


def test_default_map_gives_every_cell_one_segment():
    cells = _all_cells()
    out = seg.assign_segments(cells)
    assert out["segment"].notna().all() and len(out) == 125
    want = [_first_match(seg.DEFAULT_SEGMENT_MAP, *row) for row in cells.itertuples(index=False)]
    assert out["segment"].astype(str).tolist() == want
    assert set(out["segment"]) == set(seg.DEFAULT_SEGMENT_MAP)  # all 11 segments are reachable
    assert len(seg.DEFAULT_SEGMENT_MAP) == 11
    # exactly one rule matches each (r, fm) cell: the grid is a partition, so order does not matter
    for row in cells.itertuples(index=False):
        fm = int(np.floor((row.f_score + row.m_score) / 2 + 0.5))
        hits = [n for n, rule in seg.DEFAULT_SEGMENT_MAP.items()
                if rule["r"][0] <= row.r_score <= rule["r"][1] and rule["fm"][0] <= fm <= rule["fm"][1]]
        assert len(hits) == 1


@pytest.mark.parametrize("r,f,m,name", [
    (5, 5, 5, "Champions"), (5, 1, 1, "New"), (4, 1, 1, "Promising"), (4, 4, 5, "Loyal"), (3, 3, 3, "Need attention"),
    (3, 1, 2, "About to sleep"), (1, 5, 5, "Can't lose them"), (2, 3, 3, "At risk"), (2, 1, 1, "Hibernating"),
    (1, 1, 1, "Lost"), (5, 2, 3, "Potential loyalists"), (5, 3, 4, "Champions"),  # fm = 3.5 → 4
])
def test_default_map_known_cells(r, f, m, name):
    out = seg.assign_segments(pd.DataFrame({"r_score": [r], "f_score": [f], "m_score": [m]}))
    assert out["segment"].iloc[0] == name


def test_params_mapping_on_r_and_f():
    rf_grid = {  # the widely used R × F grid, first match wins
        "Champions": {"r": [5, 5], "f": [4, 5]},
        "Loyal": {"r": [3, 4], "f": [4, 5]},
        "Can't lose them": {"r": [1, 2], "f": [5, 5]},
        "At risk": {"r": [1, 2], "f": [3, 4]},
        "Hibernating": {"r": [1, 2], "f": [1, 2]},
        "Need attention": {"r": [3, 3], "f": [3, 3]},
        "About to sleep": {"r": [3, 3], "f": [1, 2]},
        "New": {"r": [5, 5], "f": [1, 1]},
        "Promising": {"r": [4, 4], "f": [1, 1]},
        "Potential loyalists": {"r": [4, 5], "f": [2, 3]},
    }
    cells = _all_cells()
    out = seg.assign_segments(cells, rf_grid)
    want = [_first_match(rf_grid, *row) for row in cells.itertuples(index=False)]
    assert out["segment"].astype(str).tolist() == want
    assert list(out["segment"].cat.categories) == list(rf_grid)


def test_mapping_validation_lists_every_problem():
    bad = {
        "A": {"r": [4, 6], "q": [1, 2]},
        "B": {"f": [3, 1]},
        "C": {"m": "high"},
        "D": "r=5",
    }
    with pytest.raises(CrmAnalyticsError) as info:
        seg.assign_segments(_all_cells(), bad)
    msg = str(info.value)
    assert "unknown key(s) ['q']" in msg and "outside the scores 1..5" in msg and "lo > hi" in msg
    assert "'C'" in msg and "whole numbers" in msg and "'D'" in msg


def test_mapping_validation_reports_uncovered_cells():
    with pytest.raises(ParamsError, match=r"100 of 125 score cells match no rule, e.g. \(r=1, f=1, m=1\)"):
        seg.validate_segment_map({"Top": {"r": [5, 5]}})
    # a catch-all closes the gap
    rules = seg.validate_segment_map({"Top": {"r": [5, 5]}, "Other": {}})
    assert rules == [("Top", {"r": (5, 5)}), ("Other", {})]
    with pytest.raises(ParamsError, match="non-empty mapping"):
        seg.validate_segment_map({})


def test_assign_segments_rejects_bad_scores():
    with pytest.raises(DataContractError, match="r_score"):
        seg.assign_segments(pd.DataFrame({"r_score": [0], "f_score": [1], "m_score": [1]}))


def test_segment_summary_known_numbers():
    df = pd.DataFrame({
        "segment": pd.Categorical(["B", "A", "A", "B", "B"], categories=["A", "B", "C"]),
        "orders": [1, 2, 4, 1, 2], "revenue": [10.0, 20.0, 40.0, 30.0, 0.0],
        "recency_days": [10.0, 2.0, 4.0, 30.0, 20.0],
    })
    s = seg.segment_summary(df)
    assert list(s.index) == ["A", "B"]
    assert s.loc["A", "customers"] == 2 and s.loc["A", "customer_share"] == pytest.approx(0.4)
    assert s.loc["A", "revenue_share"] == pytest.approx(0.6)
    assert s.loc["A", "aov"] == pytest.approx(60 / 6) and s.loc["B", "aov"] == pytest.approx(40 / 4)
    assert s.loc["B", "orders_per_customer"] == pytest.approx(4 / 3)
    assert s.loc["B", "mean_days_since_last_order"] == pytest.approx(20.0)


# --------------------------------------------------------------------------------------------
# lifecycle stages
# --------------------------------------------------------------------------------------------
AS_OF = pd.Timestamp("2024-07-01", tz="UTC")


def _stage_world():
    orders = _orders([
        ("1", "c1", "2024-06-01", "completed", 10.0),
        ("2", "c1", "2024-06-20", "completed", 10.0),
        ("3", "c2", "2024-06-15", "returned", 10.0),
        ("4", "c3", "2023-12-01", "completed", 10.0),  # 213 days before as_of: lapsed
        ("5", "c4", "2024-06-15", "cancelled", 10.0),
        ("6", "c6", "2024-07-05", "completed", 10.0),  # after as_of
    ])
    ev = pd.DataFrame([
        ("2024-06-01", "c4", None, "s1"), ("2024-06-02", "c4", None, "s2"), ("2024-06-02", "c4", None, "s2"),
        ("2024-06-03", "c5", "V2", "s3"), ("2024-05-01", None, "V2", "s6"),  # V2 is c5's device
        ("2024-06-04", "c6", None, "s8"), ("2024-07-03", "c6", None, "s9"),  # s9 after as_of
        ("2024-06-05", None, "V1", "s4"), ("2024-06-06", None, "V1", "s5"),
        ("2024-06-07", None, "V3", "s10"),
        ("2024-06-07", "c1", None, "s11"),
    ], columns=["ts", "customer_id", "anonymous_id", "session_id"])
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    cust = pd.DataFrame({"customer_id": [f"c{i}" for i in range(1, 9)],
                         "signup_ts": pd.to_datetime(["2023-01-01"] * 7 + ["2024-08-01"], utc=True)})
    return orders, ev, cust


def test_recognise_stages():
    orders, ev, cust = _stage_world()
    r = seg.recognise(orders, ev, cust, AS_OF)
    got = dict(zip(zip(r["visitor_type"], r["visitor_id"]), r["stage"].astype(str)))
    assert got == {
        ("customer", "c1"): "repeat_buyer", ("customer", "c2"): "one_time_buyer", ("customer", "c3"): "lapsed_buyer",
        ("customer", "c4"): "returning_visitor", ("customer", "c5"): "returning_visitor",
        ("customer", "c6"): "first_time_visitor", ("customer", "c7"): "registered_only",
        ("anonymous", "V1"): "returning_visitor", ("anonymous", "V3"): "first_time_visitor",
    }
    c1 = r[r["visitor_id"] == "c1"].iloc[0]
    assert c1["sessions"] == 1 and c1["purchases"] == 2 and c1["days_since_last_purchase"] == pytest.approx(11.0)
    # without customers: no registered_only; without events: buyers only
    assert "c7" not in set(seg.recognise(orders, ev, None, AS_OF)["visitor_id"])
    only = seg.recognise(orders, None, cust, AS_OF)
    assert dict(zip(only["visitor_id"], only["stage"].astype(str))) == {
        "c1": "repeat_buyer", "c2": "one_time_buyer", "c3": "lapsed_buyer"}
    # a shorter lapse window turns c2 lapsed too
    assert seg.recognise(orders, None, None, AS_OF, lapsed_after_days=10).set_index("visitor_id").loc[
        "c2", "stage"] == "lapsed_buyer"


def test_stage_trend_counts_by_month():
    orders = _orders([
        ("1", "c1", "2024-01-10", "completed", 10.0),
        ("2", "c1", "2024-02-10", "completed", 10.0),
        ("3", "c2", "2024-02-20", "completed", 10.0),
    ])
    t = seg.stage_trend(orders, None, "M")
    assert list(t.index) == ["2024-01", "2024-02"]
    assert t.loc["2024-01", ["one_time_buyer", "repeat_buyer", "lapsed_buyer"]].tolist() == [1, 0, 0]
    assert t.loc["2024-02", ["one_time_buyer", "repeat_buyer", "lapsed_buyer"]].tolist() == [1, 1, 0]
    assert bool(t.loc["2024-01", "complete"]) and not bool(t.loc["2024-02", "complete"])
    orders_e, ev, cust = _stage_world()
    tw = seg.stage_trend(orders_e, ev, "M", customers=cust)
    assert "registered_only" in tw and "first_time_visitor" in tw
    with pytest.raises(ParamsError, match="freq"):
        seg.stage_trend(orders, None, "fortnightly")


# --------------------------------------------------------------------------------------------
# behaviour features and clusters
# --------------------------------------------------------------------------------------------
def test_behaviour_features_hand_example():
    orders = _orders([
        ("o1", "c1", "2024-06-01", "completed", 100.0, "web"),
        ("o2", "c1", "2024-06-11", "returned", 300.0, "app"),
        ("o3", "c2", "2024-06-21", "completed", 50.0, "web"),
        ("o4", "c2", "2024-06-22", "cancelled", 500.0, "app"),
    ])
    lines = pd.DataFrame({"order_id": ["o1", "o2", "o3", "o4"], "line_no": [1, 1, 1, 1],
                          "product_id": ["p1", "p2", "p1", "p2"], "quantity": [1.0, 3.0, 1.0, 5.0],
                          "unit_price": [100.0, 100.0, 50.0, 100.0], "discount": [0.0, 10.0, 0.0, 50.0]})
    products = pd.DataFrame({"product_id": ["p1", "p2"], "category": ["Kozmetik", "Ev & Yaşam"]})
    ev = pd.DataFrame({"ts": pd.to_datetime(["2024-06-01", "2024-06-02", "2024-06-02"], utc=True),
                       "customer_id": ["c1", "c1", "c1"], "anonymous_id": [None, None, None],
                       "session_id": ["s1", "s2", "s2"]})
    tickets = pd.DataFrame({"customer_id": ["c1", "c1"],
                            "opened_ts": pd.to_datetime(["2024-06-12", "2024-08-01"], utc=True)})
    f = seg.behaviour_features(orders, lines, products, ev, tickets, "2024-07-01")
    c1, c2 = f.loc["c1"], f.loc["c2"]
    assert c1["log_orders"] == pytest.approx(np.log1p(2)) and c1["log_revenue"] == pytest.approx(np.log1p(400))
    assert c1["log_recency_days"] == pytest.approx(np.log1p(20)) and c1["log_avg_basket"] == pytest.approx(np.log1p(200))
    assert c1["returned_share"] == 0.5 and c2["returned_share"] == 0.0
    assert c1["channel_share_app"] == 0.5 and c2["channel_share_web"] == 1.0 and c2["channel_share_app"] == 0.0
    assert c1["cat_share_kozmetik"] == pytest.approx(0.25) and c1["cat_share_ev_yaşam"] == pytest.approx(0.75)
    assert c2["cat_share_kozmetik"] == 1.0
    assert c1["discount_share"] == 0.5 and c2["discount_share"] == 0.0  # o4 was cancelled
    assert c1["log_sessions"] == pytest.approx(np.log1p(2)) and c2["log_sessions"] == 0.0
    assert c1["complaints"] == 1 and c2["complaints"] == 0  # the August ticket is after as_of
    assert not f.isna().any().any()
    bare = seg.behaviour_features(orders, None, None, None, None, "2024-07-01")
    assert not any(c.startswith(("cat_share", "discount", "log_sessions", "complaints")) for c in bare)
    with pytest.raises(CrmAnalyticsError, match="no purchase"):
        seg.behaviour_features(orders, None, None, None, None, "2020-01-01")


TRUE_CENTRES = np.array([  # log_orders, log_revenue, channel_share_app, cat_share_cosmetics, log_avg_basket
    [0.7, 4.0, 0.1, 0.1, 4.0],
    [2.0, 7.0, 0.8, 0.1, 5.5],
    [0.7, 5.0, 0.2, 0.8, 4.5],
    [1.3, 6.0, 0.5, 0.4, 6.5],
])
SPREAD = np.array([0.12, 0.3, 0.06, 0.06, 0.2])
COLS = ["log_orders", "log_revenue", "channel_share_app", "cat_share_cosmetics", "log_avg_basket"]


def _blobs(n_per=(700, 500, 450, 350), seed=11):
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(4), n_per)
    x = TRUE_CENTRES[truth] + rng.normal(size=(len(truth), 5)) * SPREAD
    return pd.DataFrame(x, columns=COLS, index=pd.Index([f"c{i}" for i in range(len(x))], name="customer_id")), truth


@pytest.mark.parametrize("method", ["kmeans", "gmm"])
def test_clusters_recover_known_blobs(method):
    f, truth = _blobs()
    res = seg.cluster_customers(f, range(2, 8), method=method, seed=0, sample_size=1500)
    assert res.k == 4
    assert res.criterion == ("silhouette" if method == "kmeans" else "bic")
    assert adjusted_rand_score(truth, res.labels.to_numpy()) > 0.9
    assert list(res.curve.index) == list(range(2, 8)) and res.curve["chosen"].sum() == 1
    assert res.labels.index.equals(f.index)
    assert (res.centres["customers"].diff().dropna() <= 0).all()  # cluster 0 is the largest
    # centres in original units: expm1 of the log features, near the truth of the matching blob
    for c in range(4):
        true = truth[res.labels.to_numpy() == c]
        blob = np.bincount(true).argmax()
        assert res.centres.loc[c, "orders"] == pytest.approx(np.expm1(TRUE_CENTRES[blob, 0]), rel=0.05)
        assert res.centres.loc[c, "channel_share_app"] == pytest.approx(TRUE_CENTRES[blob, 2], abs=0.02)


def test_seed_stability_on_blobs():
    f, _ = _blobs()
    assert seg.seed_stability(f, 4, seeds=(0, 1)) >= 0.9
    assert seg.seed_stability(f, 4, seeds=(0, 1, 2), method="gmm") >= 0.9


def test_describe_clusters_in_plain_words():
    f, truth = _blobs()
    res = seg.cluster_customers(f, [4], seed=0)
    texts = res.describe()
    blob_of = {c: np.bincount(truth[res.labels.to_numpy() == c]).argmax() for c in range(4)}
    by_blob = {blob_of[c]: texts[c] for c in range(4)}
    assert "frequent" in by_blob[1] and "app" in by_blob[1] and "high-spending" in by_blob[1]
    assert "cosmetics" in by_blob[2]
    assert "low-spending" in by_blob[0] or "small basket" in by_blob[0]
    z = pd.DataFrame({"log_orders": [1.5, 0.1], "channel_share_app": [1.2, 0.0], "cat_share_cosmetics": [1.0, -0.2],
                      "log_avg_basket": [0.8, 0.3]})
    words = seg.describe_clusters(z, overall=0.0, scale=1.0)
    assert words[0] == "frequent buyers via app of cosmetics; high basket"
    assert words[1] == "close to the average customer"


def test_cluster_input_errors():
    f, _ = _blobs()
    with pytest.raises(DataContractError, match="missing or infinite"):
        seg.cluster_customers(f.assign(log_orders=np.nan), [2])
    with pytest.raises(ParamsError, match="method"):
        seg.cluster_customers(f, [2], method="dbscan")
    with pytest.raises(ParamsError, match="bic"):
        seg.cluster_customers(f, [2], criterion="bic")
    with pytest.raises(ParamsError, match="k_range"):
        seg.cluster_customers(f.iloc[:3], [2, 5])


# --------------------------------------------------------------------------------------------
# demographics
# --------------------------------------------------------------------------------------------
def _demo_world(seed=5, n=3000):
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)]
    region = rng.choice(["North", "South", "East"], n)
    gender = rng.choice(["female", "male"], n)
    # segment depends on region; revenue depends on gender only
    p_top = np.select([region == "North", region == "South"], [0.5, 0.2], 0.35)
    segment = np.where(rng.random(n) < p_top, "Champions", rng.choice(["Lost", "At risk"], n))
    monetary = rng.gamma(2.0, np.where(gender == "female", 150.0, 60.0))
    rfm = pd.DataFrame({"segment": pd.Categorical(segment, categories=["Champions", "At risk", "Lost"]),
                        "revenue": monetary, "orders": rng.integers(1, 5, n)},
                       index=pd.Index(ids, name="customer_id"))
    birth = pd.to_datetime("1960-01-01") + pd.to_timedelta(rng.integers(0, 40 * 365, n), unit="D")
    cust = pd.DataFrame({"customer_id": ids, "region": region, "gender": gender, "birth_date": birth})
    cust.loc[:49, "region"] = None  # unknown region
    return rfm, cust


def test_demographic_profile_adds_up():
    rfm, cust = _demo_world()
    cust.loc[0, "birth_date"] = pd.Timestamp("1990-07-02")
    p = seg.demographic_profile(rfm, cust, as_of="2025-07-01")
    for dim, t in p.groupby("dimension"):
        assert t["customers"].sum() == len(rfm)
        assert t["revenue"].sum() == pytest.approx(rfm["revenue"].sum())
    np.testing.assert_allclose(p["basket"], p["revenue"] / p["orders"])
    assert p.groupby(["dimension", "group"])["share_of_group"].sum().round(12).eq(1).all()
    assert "unknown" in set(p.loc[p["dimension"] == "region", "group"])
    ages = p[p["dimension"] == "age_band"]
    assert set(ages["group"]) <= {"<25", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"}
    one = seg.age_band(pd.Series(pd.to_datetime(["1990-07-02", "1990-07-01", None])), "2025-07-01")
    assert one.tolist() == ["25-34", "35-44", "unknown"]  # 34 the day before the birthday, 35 on it
    with pytest.raises(DataContractError, match="income"):
        seg.demographic_profile(rfm, cust, by=["income"])


def test_difference_test_against_hand_chi_square():
    rfm, cust = _demo_world()
    res = seg.difference_test(rfm, cust, by=["region", "gender"])
    known = cust.set_index("customer_id").join(rfm)
    x = known[known["region"].notna()]
    obs = pd.crosstab(x["region"], x["segment"].astype(str)).to_numpy(dtype=float)
    exp = obs.sum(1, keepdims=True) * obs.sum(0, keepdims=True) / obs.sum()
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert res.loc["region", "n"] == len(rfm) - 50  # the unknown region is left out
    assert res.loc["region", "chi2"] == pytest.approx(chi2)
    assert res.loc["region", "dof"] == 4
    assert res.loc["region", "chi2_p_value"] == pytest.approx(stats.chi2.sf(chi2, 4))
    assert res.loc["region", "chi2_p_value"] < 1e-10  # segments really differ by region
    assert res.loc["gender", "chi2_p_value"] > 0.01  # and not by gender
    assert res.loc["gender", "kruskal_p_value"] < 1e-10  # revenue differs by gender
    assert res.loc["region", "kruskal_p_value"] > 0.01


# --------------------------------------------------------------------------------------------
# migration
# --------------------------------------------------------------------------------------------
R_ONLY = {"Active": {"r": [4, 5]}, "Middle": {"r": [3, 3]}, "Dormant": {"r": [1, 2]}}


def test_migration_hand_built():
    orders = _orders([
        ("1", "A", "2024-06-25", "completed", 100.0),
        ("2", "A", "2023-05-01", "completed", 50.0),  # outside the 12 months before prev
        ("3", "A", "2024-12-01", "completed", 70.0),
        ("4", "B", "2024-06-01", "completed", 200.0),
        ("5", "C", "2024-05-01", "completed", 30.0),
        ("6", "D", "2024-03-01", "returned", 40.0),
        ("7", "E", "2023-09-01", "completed", 10.0),
        ("8", "E", "2022-01-01", "completed", 999.0),
        ("9", "F", "2024-01-01", "cancelled", 500.0),  # F is no customer yet at prev
        ("10", "F", "2024-12-20", "completed", 80.0),
    ])
    m = seg.migration(orders, "2024-06-30", "2024-12-31", R_ONLY)
    # prev recency order (worst→best) E, D, C, B, A → r 1..5; now E, D, C, B, A, F → r 1, 1, 2, 3, 4, 5
    want = pd.DataFrame(0, index=["Active", "Middle", "Dormant", seg.NEW_CUSTOMER_LABEL],
                        columns=["Active", "Middle", "Dormant"])
    want.loc["Active", "Active"] = 1  # A
    want.loc["Active", "Middle"] = 1  # B
    want.loc["Middle", "Dormant"] = 1  # C
    want.loc["Dormant", "Dormant"] = 2  # D, E
    want.loc[seg.NEW_CUSTOMER_LABEL, "Active"] = 1  # F
    pd.testing.assert_frame_equal(m.counts, want, check_names=False, check_dtype=False)
    stake = m.revenue_at_stake
    assert stake.loc["Active", "Active"] == 100.0 and stake.loc["Active", "Middle"] == 200.0
    assert stake.loc["Middle", "Dormant"] == 30.0 and stake.loc["Dormant", "Dormant"] == 50.0
    assert stake.loc[seg.NEW_CUSTOMER_LABEL].sum() == 0.0
    assert stake.to_numpy().sum() == 380.0
    assert m.moves.loc["F", "segment_prev"] == seg.NEW_CUSTOMER_LABEL
    with pytest.raises(ParamsError, match="before"):
        seg.migration(orders, "2024-12-31", "2024-06-30")


def test_migration_default_map_keeps_every_customer():
    rng = np.random.default_rng(2)
    n = 4000
    ts = pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 700 * 86400, n), unit="s")
    orders = pd.DataFrame({"order_id": np.arange(n).astype(str), "customer_id": rng.integers(0, 800, n).astype(str),
                           "order_ts": ts, "status": "completed", "order_total": rng.gamma(2, 40, n)})
    m = seg.migration(orders, "2024-01-01", "2024-12-01")
    now = seg.rfm_table(orders, "2024-12-01")
    assert m.counts.to_numpy().sum() == len(now)
    assert m.counts.loc[seg.NEW_CUSTOMER_LABEL].sum() == len(now) - len(seg.rfm_table(orders, "2024-01-01"))
    early = orders[(orders["order_ts"] > pd.Timestamp("2023-01-01", tz="UTC"))
                   & (orders["order_ts"] <= pd.Timestamp("2024-01-01", tz="UTC"))]
    assert m.revenue_at_stake.to_numpy().sum() == pytest.approx(early["order_total"].sum())


# --------------------------------------------------------------------------------------------
# suppression and exports
# --------------------------------------------------------------------------------------------
def test_demographic_tables_protect_small_groups_and_add_up():
    rfm, cust = _demo_world()
    cust.loc[50:55, "gender"] = "other"  # 6 + 5 customers: merged into one Other row of 11
    cust.loc[56:60, "gender"] = "diverse"
    p = seg.demographic_profile(rfm, cust, as_of="2025-07-01")
    summary, cross, note = seg.demographic_tables(p, "gender", min_group_size=10)
    assert list(summary.index) == ["female", "male", seg.OTHER_LABEL]
    assert summary["customers"].sum() == len(rfm) and summary.loc[seg.OTHER_LABEL, "customers"] == 11
    assert summary["customer_share"].sum() == pytest.approx(1) and summary["revenue_share"].sum() == pytest.approx(1)
    female = rfm[cust.set_index("customer_id")["gender"].reindex(rfm.index).eq("female")]
    assert summary.loc["female", "basket"] == pytest.approx(female["revenue"].sum() / female["orders"].sum())
    assert str(cross.dtypes.iloc[0]) == "Int64"
    assert int(cross.loc[["female", "male"]].sum().sum()) == len(rfm) - 11  # the big groups are all shown
    assert "other" not in cross.index and (cross.fillna(10) >= 10).all().all()  # 3-4 per segment: hidden
    assert "fewer than 10" in note
    ages, _, _ = seg.demographic_tables(p, "age_band")
    assert list(ages.index) == sorted(ages.index, key=_group_sort_key)
    assert list(ages.index)[0] in {"<25", "25-34"}
    with pytest.raises(DataContractError, match="income"):
        seg.demographic_tables(p, "income")


def test_suppress_small_merges_groups():
    df = pd.DataFrame({"segment": ["A", "B", "C", "D"], "customers": [50, 3, 4, 20],
                       "revenue": [500.0, 30.0, 80.0, 100.0], "revenue_share": [500 / 710, 30 / 710, 80 / 710, 100 / 710],
                       "aov": [10.0, 10.0, 20.0, 5.0]})
    out, note = seg.suppress_small(df, "customers", 5, "segment")
    assert out["segment"].tolist() == ["A", "D", seg.OTHER_LABEL]
    other = out.iloc[-1]
    assert other["customers"] == 7 and other["revenue"] == 110.0
    assert other["revenue_share"] == pytest.approx(110 / 710)
    assert other["aov"] == pytest.approx((3 * 10 + 4 * 20) / 7)  # count-weighted mean
    assert "2 group(s) with fewer than 5" in note and "B, C" in note
    # a merged group that is still too small is hidden
    out, note = seg.suppress_small(df, "customers", 10, "segment")
    assert np.isnan(out.iloc[-1]["customers"]) and "hidden" in note
    # nothing to do
    out, note = seg.suppress_small(df, "customers", 2, "segment")
    assert note == "" and out.equals(df)


def test_suppress_small_index_within_hide_and_matrix():
    summary = pd.DataFrame({"customers": [30, 2]}, index=pd.Index(["A", "B"], name="segment"))
    out, _ = seg.suppress_small(summary, "customers", 10, "segment")
    assert out.index.name == "segment" and np.isnan(out.loc[seg.OTHER_LABEL, "customers"])
    long = pd.DataFrame({"dimension": ["g", "g", "g", "r", "r"], "group": ["f", "m", "x", "n", "s"],
                         "customers": [40, 30, 4, 6, 70], "revenue": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out, note = seg.suppress_small(long, "customers", 5, "group", within=["dimension"])
    assert out[out["group"] == seg.OTHER_LABEL]["dimension"].tolist() == ["g"]
    hidden, note = seg.suppress_small(long, "customers", 5)
    assert np.isnan(hidden.loc[2, "revenue"]) and hidden.loc[2, "group"] == "x" and "1 row(s)" in note
    matrix = pd.DataFrame({"A": [0, 3, 12], "B": [25, 9, 10]}, index=["x", "y", "z"])
    out, note = seg.suppress_small(matrix, None, 10)
    assert out.loc["x", "A"] == 0 and np.isnan(out.loc["y", "A"]) and np.isnan(out.loc["y", "B"])
    assert out.loc["z", "B"] == 10 and note.startswith("2 cell(s)")


def test_marketing_exports_only_consented_pseudonymous(tmp_path):
    segs = pd.DataFrame({"segment": pd.Categorical(["Champions", "Lost", "Champions", "Lost", "Champions"],
                                                   categories=["Champions", "Can't lose them", "Lost"])},
                        index=pd.Index(["c1", "c2", "c3", "c4", "c5"], name="customer_id"))
    cust = pd.DataFrame({"customer_id": ["c1", "c2", "c3", "c4", "c6"],
                         "consent_marketing": pd.array([True, True, False, None, True], dtype="boolean"),
                         "email": ["a@x", "b@x", "c@x", "d@x", "e@x"], "full_name": ["A", "B", "C", "D", "E"]})
    counts = seg.marketing_exports(segs, cust, tmp_path / "exports")
    assert counts == {"Champions": 1, "Can't lose them": 0, "Lost": 1}
    files = sorted(p.name for p in (tmp_path / "exports").glob("*.csv"))
    assert files == ["cant_lose_them.csv", "champions.csv", "lost.csv"]
    champ = pd.read_csv(tmp_path / "exports" / "champions.csv")
    assert list(champ.columns) == ["customer_id", "segment"] and champ["customer_id"].tolist() == ["c1"]
    text = "".join(p.read_text() for p in (tmp_path / "exports").iterdir())
    assert "@x" not in text and "c3" not in text and "c4" not in text and "c5" not in text
    with pytest.raises(DataContractError, match="consent_marketing"):
        seg.marketing_exports(segs, cust.drop(columns="consent_marketing"), tmp_path / "x")
    # a segment that no longer exists loses its list; files of other writers stay
    (tmp_path / "exports" / "winback.csv").write_text("customer_id\n")
    renamed = segs.assign(segment=segs["segment"].cat.rename_categories({"Lost": "Gone"}))
    seg.marketing_exports(renamed, cust, tmp_path / "exports")
    assert sorted(p.name for p in (tmp_path / "exports").glob("*.csv")) == [
        "cant_lose_them.csv", "champions.csv", "gone.csv", "winback.csv"]


def test_describe_clusters_and_small_group_notes_in_the_report_language():
    from crm_analytics import i18n

    z = pd.DataFrame({"log_orders": [1.5, 0.1, -1.0], "channel_share_app": [1.2, 0.0, 0.0],
                      "log_avg_basket": [0.8, 0.3, 0.0], "log_revenue": [0.9, 0.0, -0.9]})
    english = seg.describe_clusters(z, overall=0.0, scale=1.0)
    try:
        i18n.use("tr")
        # the metrics and the segments file keep the English words whatever the report language
        assert seg.describe_clusters(z, overall=0.0, scale=1.0).equals(english)
        words = seg.describe_clusters(z, overall=0.0, scale=1.0, in_report_language=True)
        assert words[0] == "sık alışveriş yapan, çok harcayan müşteriler, kanal: uygulama; sepet tutarı yüksek"
        assert words[1] == "ortalama müşteriye yakın"
        assert words[2] == "tek seferlik, az harcayan müşteriler"
        df = pd.DataFrame({"segment": ["Champions", "Lost", "New"], "customers": [50, 3, 4]})
        _, note = seg.suppress_small(df, "customers", 5, "segment")
        assert note == "5 müşteriden az olan 2 grup (Kaybedilenler, Yeni Müşteriler) 'Diğer (küçük gruplar)' " \
                       "satırında birleştirildi."
        assert i18n.value("Can't lose them") == "Kaybedilmemesi Gerekenler"
        assert i18n.label("lapsed_buyer") == "Pasifleşmiş alıcı" and i18n.label("first_time_visitor").startswith("İlk")
    finally:
        i18n.use("en")
    assert seg.describe_clusters(z, overall=0.0, scale=1.0, in_report_language=True).equals(english)
    assert i18n.label("lapsed_buyer") == "Lapsed buyer"


def test_every_default_segment_and_stage_has_a_turkish_name():
    from crm_analytics import i18n

    cat = i18n.catalog("tr")
    names = list(seg.DEFAULT_SEGMENT_MAP) + [seg.NEW_CUSTOMER_LABEL, seg.OTHER_LABEL] + list(seg.STAGES)
    assert [n for n in names if (None, n) not in cat] == []
    assert [s for s in seg.STAGES if (i18n.COLUMN, s) not in i18n.catalog("en")] == []

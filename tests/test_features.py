"""The feature layer: per-customer features as Ibis expressions give the numbers of an independent pandas
computation, use nothing after their date, and ``customer_features.parquet`` is built once, atomically,
without personal data."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crm_analytics import paths
from crm_analytics.errors import DataContractError, ModelFitError
from crm_analytics.features import customer as fc
from crm_analytics.ingest.identity import customers_360
from crm_analytics.ingest.tables import purchases

DAY = pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------------
# an independent computation: the pandas code the features replaced (models/churn.py and
# models/attribution.py before the feature layer), in the vocabulary's names
# --------------------------------------------------------------------------------------------
def _per_customer(df, ts_col, as_of, since=None):
    if df is None or not len(df) or "customer_id" not in df:
        return None
    d = df[df["customer_id"].notna() & (df[ts_col] <= as_of)]
    return d[d[ts_col] > since] if since is not None else d


def reference_features(tables: dict, as_of: pd.Timestamp) -> pd.DataFrame:
    orders = tables["orders"]
    bought = purchases(orders)
    bought = bought[bought["order_ts"] <= as_of]
    g = bought.groupby("customer_id")
    f = pd.DataFrame({
        "recency_days": (as_of - g["order_ts"].max()) / DAY,
        "tenure_days": (as_of - g["order_ts"].min()) / DAY,
        "orders": g.size(),
        "revenue": g["order_total"].sum(),
        "aov": g["order_total"].mean(),
        "returned_share": g["status"].agg(lambda s: (s == "returned").mean()),
        "orders_last_90d": bought[bought["order_ts"] > as_of - 90 * DAY].groupby("customer_id").size(),
    })
    f["orders_last_90d"] = f["orders_last_90d"].fillna(0)
    f["days_between_orders"] = np.where(f["orders"] > 1, f["tenure_days"] / (f["orders"] - 1).clip(lower=1), np.nan)
    if "channel" in bought:
        mix = pd.crosstab(bought["customer_id"], bought["channel"], normalize="index")
        f = f.join(mix.add_prefix("channel_share_"))
    lines = tables.get("order_lines")
    if lines is not None and len(lines) and "discount" in lines:
        lo = lines.merge(bought[["order_id", "customer_id"]], on="order_id")
        discounted = lo.assign(d=lo["discount"].fillna(0) > 0).groupby("customer_id")["d"].mean()
        f = f.join(discounted.rename("discount_share"))
    cancelled = orders[(orders["status"] == "cancelled") & orders["customer_id"].notna()
                       & (orders["order_ts"] <= as_of)]
    f = f.join(cancelled.groupby("customer_id").size().rename("cancellations"))
    ev = _per_customer(tables.get("events"), "ts", as_of, since=as_of - 90 * DAY)
    if ev is not None:
        f = f.join(ev.groupby("customer_id")["session_id"].nunique().rename("sessions_90d"))
        f = f.join(ev[ev["event_type"] == "add_to_cart"].groupby("customer_id").size().rename("cart_adds_90d"))
        f = f.join(ev[ev["event_type"] == "search"].groupby("customer_id").size().rename("searches_90d"))
    tk = _per_customer(tables.get("tickets"), "opened_ts", as_of)
    if tk is not None:
        f = f.join(tk.groupby("customer_id").size().rename("complaints"))
        f = f.join(tk[tk["opened_ts"] > as_of - 90 * DAY].groupby("customer_id").size().rename("complaints_90d"))
    asg = tables.get("campaign_assignments")
    if asg is not None and len(asg):
        a = asg[(asg["group"] == "treatment") & asg["sent_ts"].notna() & (asg["sent_ts"] <= as_of)]
        f = f.join(a.groupby("customer_id").size().rename("campaigns_received"))
        f = f.join(a[a["opened_ts"] <= as_of].groupby("customer_id").size().rename("campaigns_opened"))
        f = f.join(a[a["clicked_ts"] <= as_of].groupby("customer_id").size().rename("campaigns_clicked"))
    rv = _per_customer(tables.get("reviews"), "ts", as_of)
    if rv is not None:
        f = f.join(rv.groupby("customer_id")["rating"].mean().rename("mean_rating"))
    counts = [c for c in f.columns if c in fc.COUNT_COLUMNS]
    f[counts] = f[counts].fillna(0)
    return f.sort_index()


def reference_campaign_pre_period(tables: dict, days: int = 180) -> pd.DataFrame:
    a = tables["campaign_assignments"].merge(tables["campaigns"][["campaign_id", "start_ts"]], on="campaign_id")
    b = purchases(tables["orders"])[["customer_id", "order_ts", "order_total"]]
    j = a[["campaign_id", "customer_id", "start_ts"]].merge(b, on="customer_id")
    before = j[(j["order_ts"] < j["start_ts"]) & (j["order_ts"] >= j["start_ts"] - days * DAY)]
    g = before.groupby(["campaign_id", "customer_id"])
    f = pd.DataFrame({"pre_orders": g.size(), "pre_revenue": g["order_total"].sum()})
    last = j[j["order_ts"] < j["start_ts"]].groupby(["campaign_id", "customer_id"])
    rec = (last["start_ts"].first() - last["order_ts"].max()) / DAY
    key = ["campaign_id", "customer_id"]
    out = a[key + ["group"]].merge(f, left_on=key, right_index=True, how="left")
    out = out.merge(rec.rename("pre_days_since_order"), left_on=key, right_index=True, how="left")
    out[["pre_orders", "pre_revenue"]] = out[["pre_orders", "pre_revenue"]].fillna(0)
    out["pre_days_since_order"] = out["pre_days_since_order"].fillna(np.inf).clip(upper=10 * days)
    return out.reset_index(drop=True)


def _same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same customers, columns and numbers (float sums may differ in the last bits: the engine adds in
    another order)."""
    got = got.drop(columns=[c for c in fc.TIMESTAMP_COLUMNS if c in got])
    assert list(got.columns) == list(want.columns)
    pd.testing.assert_frame_equal(got.astype("float64"), want.astype("float64"), check_index_type=False,
                                  check_column_type=False, check_exact=False, rtol=1e-12, atol=1e-9)


@pytest.fixture(scope="module")
def ci(ci_clean):
    return ci_clean


@pytest.fixture
def ci_on_disk(project, ci):
    """The `ci` clean tables written where notebook 01 writes them, in a temporary project."""
    folder = paths.interim_dir("ci")
    folder.mkdir(parents=True)
    for name, frame in ci.items():
        if isinstance(frame, pd.DataFrame):
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


# --------------------------------------------------------------------------------------------
# same numbers as the pandas code
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("when", ["2025-03-01", "end-180", "end"])
def test_features_equal_the_pandas_computation_on_ci(ci, when):
    end = ci["orders"]["order_ts"].max()
    as_of = {"end": end, "end-180": end - 180 * DAY}[when] if when.startswith("end") else pd.Timestamp(when, tz="UTC")
    got = fc.customer_features(ci, as_of)
    _same(got, reference_features(ci, as_of))
    assert got.index.is_monotonic_increasing and got.index.name == "customer_id"
    assert got.attrs["as_of"] == as_of.isoformat()
    assert all(got[c].dtype == "int64" for c in fc.COUNT_COLUMNS if c in got)
    assert (got["last_purchase"] <= as_of).all() and (got["first_purchase"] <= got["last_purchase"]).all()


def test_features_read_from_the_clean_files_equal_those_from_frames(ci, ci_on_disk):
    as_of = pd.Timestamp("2025-06-30 12:00", tz="UTC")
    pd.testing.assert_frame_equal(fc.customer_features("ci", as_of), fc.customer_features(ci, as_of),
                                  check_index_type=False)


def test_features_use_nothing_after_their_date(ci):
    cut = pd.Timestamp("2025-03-01", tz="UTC")
    past = dict(ci)
    for name, col in [("orders", "order_ts"), ("events", "ts"), ("tickets", "opened_ts"), ("reviews", "ts")]:
        past[name] = ci[name][ci[name][col] <= cut]
    full = fc.customer_features(ci, cut)
    pd.testing.assert_frame_equal(full, fc.customer_features(past, cut).reindex(columns=full.columns))


def _edge_tables() -> dict:
    t0 = pd.Timestamp("2024-06-01", tz="UTC")
    d = DAY
    return {
        "orders": pd.DataFrame({
            "order_id": [f"o{i}" for i in range(9)],
            "customer_id": ["a", "a", "a", "b", "b", None, "c", "d", "a"],
            "order_ts": [t0 - 200 * d, t0 - 50 * d, t0 - 10 * d, t0 - 5 * d, t0 - 4 * d, t0 - 3 * d, t0 + 5 * d,
                         t0 - 20 * d, t0 - 30 * d],
            "channel": ["web", "app", None, "web", "web", "web", "web", "store", "web"],
            "status": ["completed", "returned", "completed", "cancelled", "cancelled", "completed", "completed",
                       "completed", "cancelled"],
            "order_total": [10.0, 20.0, 30.0, 5.0, 6.0, 99.0, 7.0, 8.0, 1.0]}),
        "order_lines": pd.DataFrame({"order_id": ["o0", "o0", "o1", "o7", "o3"], "line_no": [1, 2, 1, 1, 1],
                                     "discount": [0.0, 2.0, None, 1.0, 1.0]}),
        "events": pd.DataFrame({
            "customer_id": ["a", "a", None, "a", "d"], "ts": [t0 - d, t0 - 2 * d, t0 - d, t0 - 100 * d, t0 + d],
            "session_id": ["s1", "s1", "s9", "s2", "s3"], "event_type": ["search", "add_to_cart", "search", "search",
                                                                          "search"]}),
        "tickets": pd.DataFrame({"customer_id": ["a", "a", None, "b"], "opened_ts": [t0 - 100 * d, t0 - d, t0 - d,
                                                                                   t0 - d]}),
        "reviews": pd.DataFrame({"customer_id": ["a", "d", None], "ts": [t0 - d, t0 + d, t0 - d],
                                 "rating": [4, 2, 1]}),
    }, t0


def test_edge_cases_by_hand():
    tables, t0 = _edge_tables()
    f = fc.customer_features(tables, t0)
    _same(f, reference_features(tables, t0))
    # c bought only after as_of, b only cancelled, the null customer never counts
    assert list(f.index) == ["a", "d"]
    a = f.loc["a"]
    assert a["orders"] == 3 and a["revenue"] == 60.0 and a["aov"] == 20.0
    assert a["returned_share"] == pytest.approx(1 / 3)
    assert a["recency_days"] == 10 and a["tenure_days"] == 200 and a["days_between_orders"] == 100
    assert a["orders_last_90d"] == 2 and a["cancellations"] == 1
    assert a["channel_share_web"] == 0.5 and a["channel_share_app"] == 0.5  # the order without a channel left out
    assert a["discount_share"] == pytest.approx(1 / 3)  # 3 bought lines, one discounted (a missing discount is none)
    assert a["sessions_90d"] == 1 and a["searches_90d"] == 1 and a["cart_adds_90d"] == 1
    assert a["complaints"] == 2 and a["complaints_90d"] == 1 and a["mean_rating"] == 4.0
    d = f.loc["d"]
    assert d["searches_90d"] == 0 and np.isnan(d["mean_rating"]) and np.isnan(d["days_between_orders"])
    assert "campaigns_received" not in f  # no assignments table: no campaign columns


def test_missing_optional_tables_leave_their_columns_out():
    tables, t0 = _edge_tables()
    only = {"orders": tables["orders"].drop(columns="channel")}
    f = fc.customer_features(only, t0)
    _same(f, reference_features(only, t0))
    assert list(f.columns) == ["recency_days", "tenure_days", "orders", "revenue", "aov", "returned_share",
                               "orders_last_90d", "days_between_orders", "cancellations", "first_purchase",
                               "last_purchase"]
    empty = {**only, "events": tables["events"].iloc[:0], "reviews": None}
    pd.testing.assert_frame_equal(fc.customer_features(empty, t0), f)


def test_no_purchase_by_the_date_is_a_clear_error():
    tables, t0 = _edge_tables()
    with pytest.raises(ModelFitError, match="no purchase on or before 2023-01-01"):
        fc.customer_features(tables, "2023-01-01")
    with pytest.raises(DataContractError, match="need the orders"):
        fc.customer_features({"events": tables["events"]}, t0)
    with pytest.raises(DataContractError, match="order_total"):
        fc.customer_features({"orders": tables["orders"].drop(columns="order_total")}, t0)


def test_integer_customer_ids_keep_their_type():
    tables, t0 = _edge_tables()
    o = tables["orders"].dropna(subset=["customer_id"])
    o = o.assign(customer_id=o["customer_id"].map({"a": 1, "b": 2, "c": 3, "d": 4}).astype("int64"))
    f = fc.customer_features({"orders": o}, t0)
    assert list(f.index) == [1, 4] and f.index.dtype == "int64"


# --------------------------------------------------------------------------------------------
# before a date: campaign features
# --------------------------------------------------------------------------------------------
def test_campaign_pre_period_equals_the_pandas_computation_on_ci(ci):
    got = fc.campaign_pre_period(ci)
    want = reference_campaign_pre_period(ci)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12)


def test_pre_period_in_the_order_asked_and_capped():
    tables, t0 = _edge_tables()
    f = fc.pre_period(tables, t0, ["zz", "d", "a"], days=60)
    assert list(f.index) == ["zz", "d", "a"]
    assert f.loc["zz"].tolist() == [0.0, 0.0, 600.0]  # never bought: 10 x days
    assert f.loc["a", "pre_orders"] == 2 and f.loc["a", "pre_revenue"] == 50.0  # day -200 is outside 60 days
    assert f.loc["a", "pre_days_since_order"] == 10 and f.loc["d", "pre_days_since_order"] == 20


# --------------------------------------------------------------------------------------------
# customer_features.parquet
# --------------------------------------------------------------------------------------------
def test_build_writes_the_end_of_data_snapshot_without_personal_data(ci, ci_on_disk):
    out = fc.build("ci")
    assert out == paths.processed_dir("ci") / "customer_features.parquet"
    assert [p.name for p in out.parent.iterdir()] == ["customer_features.parquet"]  # no temporary file left
    as_of = fc.read_as_of(out)
    last = purchases(ci["orders"])["order_ts"].max()
    assert as_of == last.normalize() + DAY
    got = pd.read_parquet(out)
    personal = {"email", "phone", "full_name", "city", "birth_date", "gender", "region"}
    assert not personal & set(got.columns) and got["customer_id"].is_unique
    pd.testing.assert_frame_equal(got.set_index("customer_id"), fc.customer_features(ci, as_of),
                                  check_index_type=False, check_like=False)
    # the customer 360 of notebook 01 counts the same orders and revenue (all of the data, same definition)
    view = customers_360(ci).set_index("customer_id")
    buyers = view[view["orders"] > 0]
    assert set(buyers.index) == set(got["customer_id"])
    g = got.set_index("customer_id").loc[buyers.index]
    assert (g["orders"] == buyers["orders"]).all()
    np.testing.assert_allclose(g["revenue"], buyers["revenue"], rtol=1e-12)


def test_build_of_a_dataset_without_orders_writes_an_empty_table(project):
    folder = paths.interim_dir("reviews_en")
    folder.mkdir(parents=True)
    pd.DataFrame({"customer_id": pd.Series([], dtype="string")}).to_parquet(folder / "customers.parquet")
    out = fc.build("reviews_en")
    assert len(pd.read_parquet(out)) == 0 and fc.read_as_of(out) is None


def test_command_line_user_error_is_one_line_and_exit_code_2(project):
    run = subprocess.run([sys.executable, "-m", "crm_analytics.features", "build", "ci"], capture_output=True,
                         text=True)
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr
    assert "make reports DATASET=ci" in run.stderr and run.stderr.count("\n") == 1


def test_command_line_builds(ci_on_disk):
    run = subprocess.run([sys.executable, "-m", "crm_analytics.features", "build", "ci"], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("wrote data/processed/ci/customer_features.parquet (as of ")
    assert pq.read_schema(paths.processed_dir("ci") / "customer_features.parquet").metadata[fc.AS_OF_KEY]

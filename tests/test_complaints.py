"""Complaint tickets: numbers worked out by hand on small frames, and the ci world's planted churn signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crm_analytics.models.campaigns import newcombe_interval, proportion_lift, wilson_interval
from crm_analytics.models.complaints import (complaint_churn, repeat_complainers, repeated_faults, resolution_times,
                                      satisfaction, ticket_volume)
from crm_analytics.errors import CrmAnalyticsError, DataContractError

T0 = pd.Timestamp("2024-03-01 12:00", tz="UTC")
H = pd.Timedelta(hours=1)
D = pd.Timedelta(days=1)


def tickets(rows: list[dict]) -> pd.DataFrame:
    """Canonical tickets from a few fields per row (the rest filled in)."""
    out = []
    for i, r in enumerate(rows):
        out.append({"ticket_id": f"T{i:03d}", "customer_id": r.get("customer_id", f"C{i:03d}"),
                    "order_id": r.get("order_id"), "opened_ts": r["opened_ts"], "resolved_ts": r.get("resolved_ts"),
                    "category": r.get("category", "delivery"), "channel": r.get("channel", "chat"), "text": "",
                    "satisfaction": r.get("satisfaction")})
    df = pd.DataFrame(out)
    for c in ("opened_ts", "resolved_ts"):
        df[c] = pd.to_datetime(df[c], utc=True)
    df["satisfaction"] = df["satisfaction"].astype("Int64")
    return df


def orders(rows: list[tuple]) -> pd.DataFrame:
    """Canonical orders from ``(customer_id, order_ts, status, order_total)`` tuples."""
    df = pd.DataFrame(rows, columns=["customer_id", "order_ts", "status", "order_total"])
    df.insert(0, "order_id", [f"O{i:04d}" for i in range(len(df))])
    df["order_ts"] = pd.to_datetime(df["order_ts"], utc=True)
    df["channel"] = "web"
    return df


# ----------------------------------------------------------------------------------------------
# volume, resolution, repeat complainers, satisfaction
# ----------------------------------------------------------------------------------------------

def test_ticket_volume_counts_and_shares():
    t = tickets([{"opened_ts": T0, "category": "delivery", "channel": "chat"}] * 3
                + [{"opened_ts": T0 + 40 * D, "category": "delivery", "channel": "email"}]
                + [{"opened_ts": T0 + 40 * D, "category": "refund", "channel": "chat", "customer_id": "C999"}] * 2)
    by_cat = ticket_volume(t, by="category")
    assert by_cat["category"].tolist() == ["delivery", "refund"]
    assert by_cat["tickets"].tolist() == [4, 2]
    assert by_cat["share"].tolist() == pytest.approx([4 / 6, 2 / 6])
    assert by_cat["customers"].tolist() == [4, 1]
    both = ticket_volume(t)
    assert both[["category", "channel", "tickets"]].values.tolist()[0] == ["delivery", "chat", 3]
    monthly = ticket_volume(t, by="category", freq="M")
    assert monthly["period"].astype(str).tolist() == ["2024-03", "2024-04", "2024-04"]
    assert monthly.groupby("period")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert monthly["share"].tolist() == pytest.approx([1.0, 2 / 3, 1 / 3])


def resolution_frame() -> tuple[pd.DataFrame, pd.Timestamp]:
    as_of = T0 + 100 * H
    rows = [{"opened_ts": T0, "resolved_ts": T0 + h * H, "category": "delivery"} for h in (1, 2, 3, 4, 10)]
    rows += [{"opened_ts": as_of - 30 * H, "resolved_ts": as_of + 5 * H, "category": "payment"},  # open at as_of
             {"opened_ts": as_of - 2 * H, "category": "payment"},  # open, younger than the SLA: undecided
             {"opened_ts": as_of + 1 * H, "category": "payment"}]  # after as_of: ignored
    return tickets(rows), as_of


def test_resolution_times_by_hand_with_open_tickets_breaching():
    t, as_of = resolution_frame()
    r = resolution_times(t, sla_hours=8, as_of=as_of).iloc[0]
    assert (r["tickets"], r["resolved"], r["open"]) == (7, 5, 2)
    assert r["open_share"] == pytest.approx(2 / 7)
    assert r["median_hours"] == pytest.approx(3.0)
    assert r["p90_hours"] == pytest.approx(4 + 0.6 * (10 - 4))  # linear interpolation at 0.9 * 4 = 3.6
    assert r["mean_hours"] == pytest.approx(4.0)
    # breaches: the 10-hour ticket and the ticket open for 30 hours; the 2-hour-old one is undecided
    assert (r["breached"], r["open_breached"], r["breach_base"]) == (2, 1, 6)
    assert r["breach_share"] == pytest.approx(1 / 3)
    lo, hi = wilson_interval(2, 6)
    assert (r["breach_low"], r["breach_high"]) == pytest.approx((float(lo), float(hi)))


def test_resolution_times_by_group():
    t, as_of = resolution_frame()
    r = resolution_times(t, sla_hours=8, by="category", as_of=as_of).set_index("category")
    assert r.loc["delivery", "breach_share"] == pytest.approx(1 / 5)
    assert r.loc["payment", "resolved"] == 0 and np.isnan(r.loc["payment", "median_hours"])
    assert (r.loc["payment", "breached"], r.loc["payment", "breach_base"]) == (1, 1)


def test_resolution_times_rejects_bad_input():
    t = tickets([{"opened_ts": T0, "resolved_ts": T0 - H}])
    with pytest.raises(DataContractError, match="resolved before they were opened"):
        resolution_times(t, sla_hours=8)
    with pytest.raises(DataContractError, match=r"tickets: column\(s\) \['resolved_ts'\] not found"):
        resolution_times(t.drop(columns="resolved_ts"), sla_hours=8)
    with pytest.raises(CrmAnalyticsError, match="sla_hours must be a positive"):
        resolution_times(t, sla_hours=0)


def test_repeat_complainers():
    t = tickets([{"customer_id": "A", "opened_ts": T0, "category": "delivery"},
                 {"customer_id": "A", "opened_ts": T0 + 10 * D, "category": "refund"},
                 {"customer_id": "A", "opened_ts": T0 + 20 * D, "category": "delivery"},
                 {"customer_id": "B", "opened_ts": T0, "category": "payment"},
                 {"customer_id": "B", "opened_ts": T0 + D, "category": "payment"},
                 {"customer_id": "C", "opened_ts": T0},
                 {"customer_id": None, "opened_ts": T0}])
    r = repeat_complainers(t)
    assert r.customers["customer_id"].tolist() == ["A", "B"]
    a = r.customers.iloc[0]
    assert a[["tickets", "categories", "n_categories", "top_category"]].tolist() == [3, "delivery, refund", 2,
                                                                                   "delivery"]
    assert a["days_first_to_last"] == pytest.approx(20.0)
    s = r.summary
    assert (s["complainers"], s["repeat_complainers"], s["tickets"], s["repeat_tickets"]) == (3, 2, 6, 5)
    assert s["repeat_ticket_share"] == pytest.approx(5 / 6)
    assert s["tickets_without_customer"] == 1
    assert repeat_complainers(t, min_tickets=3).customers["customer_id"].tolist() == ["A"]


def test_satisfaction_means_bands_and_correlation():
    rows = [{"opened_ts": T0, "resolved_ts": T0 + h * H, "satisfaction": s, "category": c}
            for h, s, c in [(2, 5, "x"), (3, 4, "x"), (10, 4, "x"), (30, 2, "y"), (100, 1, "y")]]
    rows += [{"opened_ts": T0, "category": "x"}, {"opened_ts": T0, "resolved_ts": T0 + H, "category": "y"}]
    s = satisfaction(tickets(rows))
    g = s.by_group.set_index("category")
    assert g["rated"].tolist() == [3, 2]
    assert g["mean"].tolist() == pytest.approx([13 / 3, 1.5])
    half = stats.t.ppf(0.975, 2) * np.std([5, 4, 4], ddof=1) / np.sqrt(3)
    assert g.loc["x", "mean_low"] == pytest.approx(13 / 3 - half)
    assert g["dissatisfied_share"].tolist() == pytest.approx([0.0, 1.0])
    dist = s.distribution.set_index("category")
    assert dist.loc["x", [4, 5]].tolist() == pytest.approx([2 / 3, 1 / 3])
    b = s.by_resolution_band.set_index("band")
    assert b["rated"].tolist() == [2, 1, 1, 1, 0]
    assert b["mean"].iloc[:4].tolist() == pytest.approx([4.5, 4.0, 2.0, 1.0])
    assert s.spearman_rho < -0.9


def test_satisfaction_outside_the_scale_is_an_error():
    t = tickets([{"opened_ts": T0, "resolved_ts": T0 + H, "satisfaction": 7}])
    with pytest.raises(DataContractError, match="'satisfaction' has 1 value"):
        satisfaction(t)


# ----------------------------------------------------------------------------------------------
# churn after a complaint
# ----------------------------------------------------------------------------------------------

AS_OF = pd.Timestamp("2025-01-01", tz="UTC")  # horizon 180 days: references up to 2024-07-05 count


def churn_world(two_strata: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """K1-K4 complain at T0 after one order (3 churn: all but K1); N1-N10 bought once too (N9, N10 churn).

    K5 complains too late to be followed for 180 days; K6 complained before buying; N10 complains
    inside its window (after the last reference that counts). With *two_strata*: L1, L2 complain after two
    orders (L1 churns), M1, M2 bought twice and both churn, U1 (five orders) complains with no such control.
    """
    first = "2024-02-20"
    o = [(c, first, "completed", 100.0) for c in ["K1", "K2", "K3", "K4"] + [f"N{i}" for i in range(1, 11)]]
    o += [("K1", T0 + 30 * D, "completed", 80.0), ("K2", T0 + 20 * D, "cancelled", 50.0)]
    o += [(f"N{i}", T0 + 60 * D, "completed", 90.0) for i in range(1, 9)]
    o += [("K6", "2024-04-01", "completed", 70.0)]
    tk = [{"customer_id": "K1", "opened_ts": T0, "resolved_ts": T0 + 2 * H},
          {"customer_id": "K2", "opened_ts": T0, "resolved_ts": T0 + 5 * H},
          {"customer_id": "K3", "opened_ts": T0, "resolved_ts": T0 + 50 * H},
          {"customer_id": "K4", "opened_ts": T0},
          {"customer_id": "K5", "opened_ts": "2024-09-01"},
          {"customer_id": "K6", "opened_ts": T0},
          {"customer_id": "N10", "opened_ts": "2024-08-01"}]
    if two_strata:
        for c in ["L1", "L2", "M1", "M2"]:
            o += [(c, "2024-01-10", "completed", 100.0), (c, first, "completed", 100.0)]
        o += [("L2", T0 + 10 * D, "completed", 100.0)]
        o += [("U1", f"2024-02-{d:02d}", "completed", 100.0) for d in (1, 5, 9, 13, 17)]
        tk += [{"customer_id": c, "opened_ts": T0, "resolved_ts": T0 + H} for c in ["L1", "L2", "U1"]]
    return tickets(tk), orders(o)


def test_complaint_churn_one_stratum_by_hand():
    t, o = churn_world()
    res = complaint_churn(t, o, as_of=AS_OF, horizon_days=180, sla_hours=24)
    m = res.metrics
    assert (m["n_complainers"], m["churned_complainers"], m["n_comparable"]) == (4, 3, 10)
    assert m["churn_rate_complainers"] == pytest.approx(0.75)
    assert m["churn_rate_comparable"] == pytest.approx(0.2)
    assert m["n_comparable_effective"] == pytest.approx(10.0)
    lo, hi = newcombe_interval(3, 4, 2, 10)
    assert m["complaint_churn_lift"] == pytest.approx({"value": 0.55, "ci_low": float(lo), "ci_high": float(hi)})
    assert m["relative_risk"] == pytest.approx(0.75 / 0.2)
    assert (m["complainers_total"], m["complainers_too_recent"], m["complainers_without_history"]) == (7, 2, 1)
    assert m["complainers_unmatched"] == 0 and m["comparable_complaining_in_window"] == 1
    # one order of 100 within the year before: 100 a year; 0.55 extra churners per complainer x 4 complainers
    assert m["mean_annual_revenue_complainers"] == pytest.approx(100.0)
    assert m["revenue_at_risk"]["value"] == pytest.approx(0.55 * 4 * 100)
    # fast (K1 2 h, K2 5 h: one churns) against slow (K3 50 h, K4 still open: both churn)
    sp = m["resolution_speed"]
    assert (sp["n_fast"], sp["n_slow"], sp["churn_fast"], sp["churn_slow"]) == (2, 2, 0.5, 1.0)
    ref = proportion_lift(2, 2, 1, 2)
    assert (sp["diff"], sp["diff_low"], sp["diff_high"]) == pytest.approx(
        (ref["lift_abs"], ref["lift_abs_low"], ref["lift_abs_high"]))
    median_split = complaint_churn(t, o, as_of=AS_OF).metrics["resolution_speed"]  # hours 2, 5, 50, open: (5+50)/2
    assert median_split["split_hours"] == pytest.approx(27.5) and median_split["split_rule"] == "median"
    assert set(res.rows.loc[res.rows["group"] == "comparable", "reference_ts"]) == {T0}


def test_complaint_churn_standardises_to_the_complainers_strata():
    t, o = churn_world(two_strata=True)
    m = complaint_churn(t, o, as_of=AS_OF).metrics
    # stratum "1 order": 4 complainers (3 churn), controls 2/10; stratum "2 orders": 2 complainers (1), controls 2/2
    assert (m["n_complainers"], m["churned_complainers"], m["n_comparable"]) == (6, 4, 12)
    p_c = 4 / 6 * 0.2 + 2 / 6 * 1.0
    assert m["churn_rate_comparable"] == pytest.approx(p_c)
    assert m["churn_rate_non_complainers_crude"] == pytest.approx(4 / 12)
    n_eff = 6**2 / (10 * 0.4**2 + 2 * 1.0**2)  # Kish: weights n_complainers / n_controls per stratum
    assert m["n_comparable_effective"] == pytest.approx(n_eff)
    lo, hi = newcombe_interval(4, 6, p_c * n_eff, n_eff)
    assert m["complaint_churn_lift"] == pytest.approx({"value": 4 / 6 - p_c, "ci_low": float(lo), "ci_high": float(hi)})
    assert m["complainers_unmatched"] == 1  # U1: five orders, nobody comparable
    crude = complaint_churn(t, o, as_of=AS_OF, match_on=()).metrics
    assert crude["churn_rate_comparable"] == pytest.approx(4 / 12)


def test_complaint_churn_rejects_unknown_bands_and_empty_designs():
    t, o = churn_world()
    with pytest.raises(CrmAnalyticsError, match=r"unknown band\(s\) \['age_band'\]; valid are"):
        complaint_churn(t, o, as_of=AS_OF, match_on=("age_band",))
    with pytest.raises(CrmAnalyticsError, match="lower horizon_days or move as_of later"):
        complaint_churn(t, o, as_of=T0 + 10 * D)


# ----------------------------------------------------------------------------------------------
# repeated faults
# ----------------------------------------------------------------------------------------------

def test_repeated_faults_names_recurring_categories_and_products():
    rows = []
    for m in range(6):
        month = T0 + pd.DateOffset(months=m)
        rows += [{"opened_ts": month, "category": "damaged", "order_id": "O1"}] * 2  # 2 a month: stable
        rows += [{"opened_ts": month, "category": "late", "order_id": "O2"}] * (m + 1)  # 1, 2, ... 6: rising
        if m >= 2:
            rows += [{"opened_ts": month, "category": "refund", "order_id": "O2"}] * (8 - 2 * m)  # 4, 2, 0, ..
    rows += [{"opened_ts": T0, "category": "payment", "order_id": "O3"}]  # once
    t = tickets(rows)
    lines = pd.DataFrame({"order_id": ["O1", "O2", "O2"], "product_id": ["P1", "P2", "P3"]})
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3"], "name": ["Mug", "Lamp", "Rug"]})
    out = repeated_faults(t, freq="M", min_periods=3, order_lines=lines, products=products)
    cat = out[out["level"] == "category"].set_index("key")
    assert set(cat.index) == {"damaged", "late"}  # refund is in 2 months only, payment in 1
    assert cat.loc["damaged", "trend"] == "stable" and cat.loc["damaged", "trend_slope"] == pytest.approx(0.0)
    assert cat.loc["late", "trend"] == "rising" and cat.loc["late", "trend_slope"] == pytest.approx(1.0)
    assert cat.loc["late", "periods_present"] == 6 and cat.loc["late", "tickets"] == 21
    assert cat["recurring"].all()
    assert cat.loc["late", "evidence"] == "tickets in 6 of 6 months, 21 in all, trend +1.00 tickets a month (rising)"
    prod = out[out["level"] == "product"].set_index("key")
    assert prod.loc["P2", "tickets"] == 21 + 6 and prod.loc["P2", "name"] == "Lamp"
    assert prod.loc["P1", "tickets"] == 12



def test_repeated_faults_says_its_evidence_in_the_report_language():
    from crm_analytics import i18n

    rows = []
    for m in range(4):
        rows += [{"opened_ts": T0 + pd.DateOffset(months=m), "category": "late", "order_id": "O1"}] * (m + 1)
    i18n.use("tr")
    try:
        out = repeated_faults(tickets(rows), freq="M", min_periods=3)
    finally:
        i18n.use("en")
    assert out.set_index("key").loc["late", "evidence"] == \
        "talep gelen ay: 4/4; toplam 10; eğilim: her ay +1,00 talep (artıyor)"

# ----------------------------------------------------------------------------------------------
# the ci world: complainers churn more than comparable customers (the generator plants it)
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ci_world(ci_clean, ci_root):
    return ci_clean, pd.read_parquet(ci_root / "data" / "raw" / "ci" / "truth_customers.parquet")


def test_ci_world_complainers_churn_more_than_comparable_customers(ci_world):
    tables, truth = ci_world
    o = tables["orders"]
    res = complaint_churn(tables["tickets"], o, as_of=o["order_ts"].max(), horizon_days=180)
    lift = res.metrics["complaint_churn_lift"]
    assert lift["ci_low"] > 0 and lift["value"] > 0.15
    assert res.metrics["relative_risk"] > 1.3
    # the truth agrees: complainers had truly dropped out by the end of their window more often
    rows = res.rows[res.rows["matched"]]
    dropout = pd.to_datetime(rows["customer_id"].map(truth.set_index("customer_id")["dropout_ts"]), utc=True,
                             format="ISO8601")
    dead = (dropout <= rows["reference_ts"] + pd.Timedelta(days=180)).fillna(False)
    comp = rows["group"] == "complainer"
    true_comp = dead[comp].mean()
    true_ctrl = np.average(dead[~comp], weights=rows.loc[~comp, "weight"])
    assert true_comp > true_ctrl + 0.1

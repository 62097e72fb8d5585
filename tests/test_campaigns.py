"""Campaign statistics against known answers: published tables, independent arithmetic, simulation
with a known truth, and the real Hillstrom e-mail experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import external_file
from crm_analytics.models.campaigns import (arms_vs_control, balance_table, best_cutoff, campaign_effect,
                                     class_transformation_uplift, holm, mde_proportion, mean_lift, newcombe_interval,
                                     profit_curve, proportion_lift, qini_coefficient, qini_curve,
                                     sample_size_proportion, srm_test, srm_test_multi, two_model_uplift, uplift_curve,
                                     wilson_interval)
from crm_analytics.errors import CrmAnalyticsError, DataContractError

Z975 = stats.norm.ppf(0.975)


# ------------------------------------------------------------------------------------------------
# proportions
# ------------------------------------------------------------------------------------------------

# Newcombe (1998) Stat Med 17:873, Table II, method 10 (hybrid score, no continuity correction).
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize("counts, published", NEWCOMBE_TABLE_II)
def test_newcombe_interval_matches_the_published_table(counts, published):
    lo, hi = newcombe_interval(*counts)
    assert (round(float(lo), 4), round(float(hi), 4)) == published


def test_proportion_lift_newcombe_example_and_independent_pieces():
    r = proportion_lift(56, 70, 48, 80)
    assert r["ci_method"] == "newcombe"
    assert r["rate_treatment"] == pytest.approx(0.8) and r["rate_control"] == pytest.approx(0.6)
    assert r["lift_abs"] == pytest.approx(0.2)
    assert (round(r["lift_abs_low"], 4), round(r["lift_abs_high"], 4)) == (0.0524, 0.3339)
    # relative lift: log risk ratio by hand
    se = np.sqrt(1 / 56 - 1 / 70 + 1 / 48 - 1 / 80)
    rr = 0.8 / 0.6
    assert r["lift_rel"] == pytest.approx(rr - 1)
    assert r["lift_rel_low"] == pytest.approx(rr * np.exp(-Z975 * se) - 1)
    assert r["lift_rel_high"] == pytest.approx(rr * np.exp(Z975 * se) - 1)
    # pooled z-test p-value = Pearson chi-square without continuity correction
    chi2 = stats.chi2_contingency([[56, 14], [48, 32]], correction=False)
    assert r["test"] == "z_pooled" and r["p_value"] == pytest.approx(chi2.pvalue, rel=1e-9)


def test_wald_interval_and_fisher_fallback():
    r = proportion_lift(56, 70, 48, 80, ci_method="wald")
    half = Z975 * np.sqrt(0.8 * 0.2 / 70 + 0.6 * 0.4 / 80)
    assert (r["lift_abs_low"], r["lift_abs_high"]) == pytest.approx((0.2 - half, 0.2 + half))
    small = proportion_lift(5, 20, 1, 20)  # expected conversions 3 < 5 -> Fisher exact
    assert small["test"] == "fisher_exact"
    assert small["p_value"] == pytest.approx(stats.fisher_exact([[5, 15], [1, 19]])[1])
    zero = proportion_lift(3, 50, 0, 50)
    assert np.isnan(zero["lift_rel"]) and np.isfinite(zero["lift_rel_low"]) and zero["test"] == "fisher_exact"


def test_wilson_interval_solves_the_score_equation():
    # Wilson's limits are the two p with |p_hat - p| = z * sqrt(p (1 - p) / n): roots of a quadratic
    x, n = np.array([81, 0, 7]), np.array([263, 15, 7])
    lo, hi = wilson_interval(x, n)
    for xi, ni, l, h in zip(x, n, lo, hi):
        ph = xi / ni
        roots = np.sort(np.roots([1 + Z975**2 / ni, -(2 * ph + Z975**2 / ni), ph**2]).real)
        assert (l, h) == pytest.approx(tuple(np.clip(roots, 0, 1)), abs=1e-12)


def test_interval_coverage_on_simulated_ab_tests_with_known_lift():
    rng = np.random.default_rng(2024)
    p_c, p_t, n = 0.10, 0.12, 2000
    sims = 1000
    x_t, x_c = rng.binomial(n, p_t, sims), rng.binomial(n, p_c, sims)
    res = pd.DataFrame([proportion_lift(a, n, b, n) for a, b in zip(x_t, x_c)])
    cover_abs = ((res["lift_abs_low"] <= p_t - p_c) & (p_t - p_c <= res["lift_abs_high"])).mean()
    cover_rel = ((res["lift_rel_low"] <= p_t / p_c - 1) & (p_t / p_c - 1 <= res["lift_rel_high"])).mean()
    assert 0.93 <= cover_abs <= 0.97, cover_abs
    assert 0.93 <= cover_rel <= 0.97, cover_rel
    # small groups: the vectorised Newcombe interval keeps its coverage (20,000 simulated tests)
    m, q_t, q_c = 40, 0.45, 0.30
    xt, xc = rng.binomial(m, q_t, 20_000), rng.binomial(m, q_c, 20_000)
    lo, hi = newcombe_interval(xt, m, xc, m)
    assert 0.93 <= np.mean((lo <= q_t - q_c) & (q_t - q_c <= hi)) <= 0.97


def test_p_value_is_calibrated_under_the_null():
    rng = np.random.default_rng(7)
    x_t, x_c = rng.binomial(3000, 0.05, 1000), rng.binomial(3000, 0.05, 1000)
    p = np.array([proportion_lift(a, 3000, b, 3000)["p_value"] for a, b in zip(x_t, x_c)])
    assert 0.03 <= (p < 0.05).mean() <= 0.07


# ------------------------------------------------------------------------------------------------
# means
# ------------------------------------------------------------------------------------------------

def test_mean_lift_welch_matches_scipy():
    rng = np.random.default_rng(3)
    y_t, y_c = rng.normal(10.5, 3, 300), rng.normal(10, 5, 200)
    r = mean_lift(y_t, y_c, bootstrap=0)
    ref = stats.ttest_ind(y_t, y_c, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert r["ci_method"] == "welch" and np.isnan(r["bootstrap_low"])
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert (r["lift_abs_low"], r["lift_abs_high"]) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert r["lift_rel"] == pytest.approx(y_t.mean() / y_c.mean() - 1)


def test_bootstrap_is_close_to_welch_on_normal_data_and_deterministic():
    rng = np.random.default_rng(11)
    y_t, y_c = rng.normal(5.2, 2, 800), rng.normal(5.0, 2, 800)
    a = mean_lift(y_t, y_c, bootstrap=4000, seed=1)
    b = mean_lift(y_t, y_c, bootstrap=4000, seed=1)
    assert a == b
    width = a["welch_high"] - a["welch_low"]
    assert a["ci_method"] == "bootstrap_percentile"
    assert abs(a["bootstrap_low"] - a["welch_low"]) < 0.05 * width
    assert abs(a["bootstrap_high"] - a["welch_high"]) < 0.05 * width
    assert mean_lift(y_t, y_c, bootstrap=None)["ci_method"] == "welch"  # normal, large: no automatic bootstrap


def test_bootstrap_switches_on_for_small_or_very_skewed_data():
    rng = np.random.default_rng(5)
    assert mean_lift(rng.normal(size=12), rng.normal(size=15))["ci_method"] == "bootstrap_percentile"
    # revenue: 2% buyers with log-normal spend -> skewness far above sqrt(n/25)
    spend = lambda n: (rng.random(n) < 0.02) * rng.lognormal(4, 1, n)  # noqa: E731
    r = mean_lift(spend(3000), spend(3000))
    assert r["ci_method"] == "bootstrap_percentile" and "skew" in r["bootstrap_reason"]


def test_welch_coverage_for_revenue_like_data_with_known_difference():
    rng = np.random.default_rng(99)
    n, sims = 4000, 400
    # buyer rates 0.10 vs 0.08, spend log-normal(3, 0.8): true means known in closed form
    mean_spend = np.exp(3 + 0.8**2 / 2)
    true = (0.10 - 0.08) * mean_spend
    hits = 0
    for _ in range(sims):
        y_t = (rng.random(n) < 0.10) * rng.lognormal(3, 0.8, n)
        y_c = (rng.random(n) < 0.08) * rng.lognormal(3, 0.8, n)
        r = mean_lift(y_t, y_c, bootstrap=0)
        hits += r["lift_abs_low"] <= true <= r["lift_abs_high"]
    assert 0.93 <= hits / sims <= 0.97


# ------------------------------------------------------------------------------------------------
# design checks, power, multiple testing
# ------------------------------------------------------------------------------------------------

def test_srm_detects_a_52_48_split_but_not_noise():
    r = srm_test(5200, 4800)
    assert r["statistic"] == pytest.approx(2 * 200**2 / 5000)  # hand chi-square = 16
    assert r["p_value"] == pytest.approx(stats.chi2.sf(16, 1)) and r["p_value"] < 1e-4 and r["srm"]
    assert not srm_test(5020, 4980)["srm"]
    assert not srm_test(9000, 1000, expected_share_t=0.9)["srm"]
    multi = srm_test_multi({"a": 340, "b": 330, "c": 330}, [0.34, 0.33, 0.33])
    assert multi["p_value"] == pytest.approx(1.0) and multi["observed_shares"]["a"] == pytest.approx(0.34)
    m2 = srm_test_multi([100, 150, 250])
    assert m2["statistic"] == pytest.approx(((100 - 500 / 3) ** 2 + (150 - 500 / 3) ** 2 + (250 - 500 / 3) ** 2)
                                            / (500 / 3))
    with pytest.raises(CrmAnalyticsError):
        srm_test_multi([10, 20], [0.5, 0.6])


def test_balance_table_smd_by_hand_and_flags():
    rng = np.random.default_rng(0)
    n = 4000
    g = np.where(rng.random(n) < 0.5, "treatment", "control")
    df = pd.DataFrame({
        "group": g,
        "age": rng.normal(40, 10, n) + np.where(g == "treatment", 3.0, 0.0),  # true SMD 0.3
        "orders": rng.poisson(3, n),
        "city": np.where(rng.random(n) < np.where(g == "treatment", 0.6, 0.4), "Istanbul", "Ankara"),
    })
    b = balance_table(df, "group")
    t, c = df[g == "treatment"], df[g == "control"]
    smd_age = (t["age"].mean() - c["age"].mean()) / np.sqrt((t["age"].var() + c["age"].var()) / 2)
    assert b.loc["age", "smd"] == pytest.approx(smd_age)
    assert 0.2 < b.loc["age", "smd"] < 0.4 and b.loc["age", "imbalanced"]
    assert not b.loc["orders", "imbalanced"]
    pt, pc = (t["city"] == "Istanbul").mean(), (c["city"] == "Istanbul").mean()
    assert b.loc["city=Istanbul", "smd"] == pytest.approx((pt - pc) / np.sqrt((pt * (1 - pt) * len(t) / (len(t) - 1)
                                                                              + pc * (1 - pc) * len(c) / (len(c) - 1))
                                                                             / 2))
    assert b.loc["city=Istanbul", "imbalanced"]
    same = balance_table(df.drop(columns="group"), (g == "treatment").astype(int))
    assert same.loc["age", "smd"] == pytest.approx(smd_age)


def _power_closed_form(n: np.ndarray, p1: float, p2: float, k: float = 1.0) -> np.ndarray:
    """Power of the pooled two-sided z-test with n_c = n, n_t = k n (normal approximation)."""
    n_t = k * n
    pbar = (p1 * n + p2 * n_t) / (n + n_t)
    se0 = np.sqrt(pbar * (1 - pbar) * (1 / n + 1 / n_t))
    se1 = np.sqrt(p1 * (1 - p1) / n + p2 * (1 - p2) / n_t)
    return stats.norm.cdf((abs(p2 - p1) - Z975 * se0) / se1)


def test_sample_size_textbook_value_and_independent_power_scan():
    r = sample_size_proportion(0.10, 0.02, alpha=0.05, power=0.8)
    assert r["n_treatment"] == r["n_control"] == 3841 and "pooled" in r["formula"]
    grid = np.arange(100, 20_000)
    assert grid[np.argmax(_power_closed_form(grid, 0.10, 0.12) >= 0.8)] == 3841
    r2 = sample_size_proportion(0.10, 0.02, ratio=2.0)
    n_c = grid[np.argmax(_power_closed_form(grid.astype(float), 0.10, 0.12, k=2.0) >= 0.8)]
    assert r2["n_control"] == n_c and abs(r2["n_treatment"] - 2 * n_c) <= 2


def test_sample_size_gives_the_promised_power_in_simulation():
    rng = np.random.default_rng(42)
    n, sims = 3841, 6000
    x_t, x_c = rng.binomial(n, 0.12, sims), rng.binomial(n, 0.10, sims)
    pooled = (x_t + x_c) / (2 * n)
    z = (x_t - x_c) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    assert 0.78 <= np.mean(np.abs(z) > Z975) <= 0.82


def test_mde_inverts_the_sample_size():
    m = mde_proportion(0.10, 3841, 3841)
    assert m["mde_abs"] == pytest.approx(0.02, abs=2e-5) and m["mde_rel"] == pytest.approx(0.2, abs=2e-4)
    m2 = mde_proportion(0.05, 10_000, 5_000)
    assert _power_closed_form(np.array([5000.0]), 0.05, 0.05 + m2["mde_abs"], k=2.0)[0] == pytest.approx(0.8, abs=1e-6)
    with pytest.raises(CrmAnalyticsError):
        mde_proportion(0.5, 1, 1)


def test_holm_hand_worked_example():
    # m = 4; sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005=0.02, 3*0.01=0.03, 2*0.03=0.06, max(1*0.04, 0.06)=0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    s = holm(pd.Series([0.5, np.nan, 0.2], index=["x", "y", "z"]))
    assert list(s.index) == ["x", "y", "z"] and np.isnan(s["y"])
    assert s["z"] == pytest.approx(0.4) and s["x"] == pytest.approx(0.5)
    assert holm([0.9, 0.8]).tolist() == [1.0, 1.0]  # capped at 1


# ------------------------------------------------------------------------------------------------
# one campaign
# ------------------------------------------------------------------------------------------------

def _simulated_campaign(n: int = 20_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.random(n) < 0.8
    conv = rng.random(n) < np.where(t, 0.06, 0.04)
    revenue = conv * rng.gamma(2.0, 40.0, n)
    sent = pd.Series(pd.Timestamp("2025-01-01", tz="UTC"), index=range(n)).where(t)
    opened = sent.where(rng.random(n) < 0.3)
    clicked = opened.where(rng.random(n) < 0.2)
    return pd.DataFrame({"group": np.where(t, "treatment", "control"), "converted": conv.astype(int),
                         "revenue": revenue, "sent_ts": sent, "opened_ts": opened, "clicked_ts": clicked})


def test_campaign_effect_matches_independent_arithmetic():
    df = _simulated_campaign()
    res = campaign_effect(df, conversion_col="converted", revenue_col="revenue", margin_rate=0.3,
                          cost_per_contact=0.05, fixed_cost=200.0, n_boot=1000, seed=3)
    g = df.groupby("group")
    n_t, n_c = (df["group"] == "treatment").sum(), (df["group"] == "control").sum()
    rate = g["converted"].mean()
    rpc = g["revenue"].mean()
    lift = rate["treatment"] - rate["control"]
    d_rev = rpc["treatment"] - rpc["control"]
    cost = 0.05 * n_t + 200.0
    assert res["n_treatment"] == n_t and res["n_control"] == n_c and res["reach"] == n_t
    assert res["conversion"]["lift_abs"] == pytest.approx(lift)
    assert res["incremental_conversions"] == pytest.approx(lift * n_t)
    assert res["incremental_revenue"] == pytest.approx(d_rev * n_t)
    assert res["incremental_margin"] == pytest.approx(0.3 * d_rev * n_t)
    assert res["cost"] == pytest.approx(cost)
    assert res["roi"] == pytest.approx((0.3 * d_rev * n_t - cost) / cost)
    assert res["roi_low"] < res["roi"] < res["roi_high"]
    # the ROI interval is the revenue interval pushed through the same linear map
    rev = res["revenue_per_customer"]
    assert res["roi_low"] == pytest.approx((0.3 * rev["lift_abs_low"] * n_t - cost) / cost, rel=1e-9)
    mpc = 0.3 * df.loc[(df["group"] == "treatment") & (df["converted"] == 1), "revenue"].mean()
    assert res["margin_per_conversion"] == pytest.approx(mpc)
    assert res["break_even_lift_abs"] == pytest.approx(cost / (n_t * mpc))
    treated = df[df["group"] == "treatment"]
    assert res["open_rate"] == pytest.approx(treated["opened_ts"].notna().mean())
    assert res["click_to_open_rate"] == pytest.approx(treated["clicked_ts"].notna().sum()
                                                      / treated["opened_ts"].notna().sum())
    # truth of the simulation: +2 points conversion, 0.02 * 80 = 1.6 revenue per customer
    assert res["conversion"]["lift_abs_low"] < 0.02 < res["conversion"]["lift_abs_high"]
    assert rev["lift_abs_low"] < 1.6 < rev["lift_abs_high"]
    again = campaign_effect(df, conversion_col="converted", revenue_col="revenue", margin_rate=0.3,
                            cost_per_contact=0.05, fixed_cost=200.0, n_boot=1000, seed=3)
    assert again == res


def test_campaign_effect_rejects_bad_input():
    df = _simulated_campaign(2000)
    kw = dict(conversion_col="converted", revenue_col="revenue", margin_rate=0.3, cost_per_contact=0.05)
    with pytest.raises(DataContractError, match="missing|not found"):
        campaign_effect(df.drop(columns="revenue"), **kw)
    bad = df.assign(group=df["group"].replace({"control": "holdout"}))
    with pytest.raises(DataContractError, match="holdout"):
        campaign_effect(bad, **kw)
    with pytest.raises(CrmAnalyticsError, match="missing"):
        campaign_effect(df.assign(revenue=df["revenue"].where(df.index > 5)), **kw)


# ------------------------------------------------------------------------------------------------
# Hillstrom: the real MineThatData e-mail experiment
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hillstrom() -> pd.DataFrame:
    return pd.read_csv(external_file("hillstrom/hillstrom.csv"))


PUBLISHED = {  # MineThatData challenge, arm means
    "conversion": {"Mens E-Mail": 0.0125, "Womens E-Mail": 0.0088, "No E-Mail": 0.0057},
    "visit": {"Mens E-Mail": 0.1828, "Womens E-Mail": 0.1514, "No E-Mail": 0.1062},
    "spend": {"Mens E-Mail": 1.4226, "Womens E-Mail": 1.0770, "No E-Mail": 0.6528},
}


@pytest.mark.external
def test_hillstrom_arms_against_groupby_and_published_rates(hillstrom):
    res = arms_vs_control(hillstrom, "segment", "No E-Mail", ["visit", "conversion", "spend"])
    assert len(res) == 6 and res["correction"].str.startswith("holm").all()
    means = hillstrom.groupby("segment")[["visit", "conversion", "spend"]].mean()
    for _, row in res.iterrows():
        assert row["mean_arm"] == pytest.approx(means.loc[row["arm"], row["outcome"]], rel=1e-12)
        assert row["mean_control"] == pytest.approx(means.loc["No E-Mail", row["outcome"]], rel=1e-12)
        tol = 5e-4 if row["outcome"] == "spend" else 5e-5  # spend is published to the cent-tenth ($1.077)
        assert row["mean_arm"] == pytest.approx(PUBLISHED[row["outcome"]][row["arm"]], abs=tol)
        assert row["mean_control"] == pytest.approx(PUBLISHED[row["outcome"]]["No E-Mail"], abs=tol)
    assert res["p_holm"].to_numpy() == pytest.approx(holm(res["p_value"].to_numpy()))
    assert res["significant"].all()  # every e-mail beat no e-mail on every outcome
    per_outcome = arms_vs_control(hillstrom, "segment", "No E-Mail", ["visit", "spend"], family="outcome")
    for _, part in per_outcome.groupby("outcome"):
        assert part["p_holm"].to_numpy() == pytest.approx(holm(part["p_value"].to_numpy()))
    assert set(res.loc[res["outcome"] == "spend", "metric"]) == {"mean"}
    assert set(res.loc[res["outcome"] == "visit", "metric"]) == {"proportion"}
    # a random split: no sample-ratio mismatch
    assert not srm_test_multi(hillstrom["segment"].value_counts().to_dict())["srm"]
    feats = hillstrom.loc[hillstrom["segment"] != "Mens E-Mail",
                          ["recency", "history", "mens", "womens", "newbie", "channel", "segment"]]
    b = balance_table(feats, "segment", treatment="Womens E-Mail")
    assert not b["imbalanced"].any()


@pytest.mark.external
def test_hillstrom_womens_campaign_effect(hillstrom):
    df = hillstrom[hillstrom["segment"] != "Mens E-Mail"]
    res = campaign_effect(df, conversion_col="conversion", revenue_col="spend", group_col="segment",
                          treatment_label="Womens E-Mail", control_label="No E-Mail", margin_rate=0.3,
                          cost_per_contact=0.05, fixed_cost=0.0, n_boot=1000, seed=0)
    w, c = df[df["segment"] == "Womens E-Mail"], df[df["segment"] == "No E-Mail"]
    assert res["n_treatment"] == len(w) == 21387 and res["n_control"] == len(c) == 21306
    d_rev = w["spend"].mean() - c["spend"].mean()
    assert res["incremental_revenue"] == pytest.approx(d_rev * len(w))
    assert res["roi"] == pytest.approx((0.3 * d_rev * len(w) - 0.05 * len(w)) / (0.05 * len(w)))
    assert res["conversion"]["p_value"] < 0.001 and res["revenue_per_customer"]["p_value"] < 0.05
    assert res["roi_low"] < res["roi"] < res["roi_high"]


@pytest.mark.external
def test_hillstrom_two_model_uplift_has_positive_qini_on_held_out_rows(hillstrom):
    from sklearn.model_selection import train_test_split

    df = hillstrom[hillstrom["segment"] != "Mens E-Mail"].reset_index(drop=True)
    X = pd.get_dummies(df[["recency", "history", "mens", "womens", "newbie", "zip_code", "channel"]],
                       dtype=float)
    t = (df["segment"] == "Womens E-Mail").astype(int).to_numpy()
    y = df["visit"].to_numpy()
    idx_train, idx_test = train_test_split(np.arange(len(df)), test_size=0.3, random_state=0)
    score = two_model_uplift(X.iloc[idx_train], y[idx_train], t[idx_train], X.iloc[idx_test], seed=0)
    q = qini_coefficient(y[idx_test], t[idx_test], score)
    rng = np.random.default_rng(0)
    q_random = [qini_coefficient(y[idx_test], t[idx_test], rng.random(len(idx_test))) for _ in range(20)]
    assert q > 0
    assert q > np.mean(q_random) + 2 * np.std(q_random)


# ------------------------------------------------------------------------------------------------
# uplift on simulated data with a known per-customer effect
# ------------------------------------------------------------------------------------------------

def _uplift_world(n: int, share_treated: float, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x1", "x2", "x3", "x4"])
    base = 1 / (1 + np.exp(-(-1.5 + 0.7 * X["x1"])))
    tau = np.where(X["x2"] > 0, 0.15, -0.05) + 0.05 * X["x3"].clip(-1, 1)
    t = (rng.random(n) < share_treated).astype(int)
    y = (rng.random(n) < np.clip(base + tau * t, 0, 1)).astype(int)
    return X, y, t, np.asarray(tau)


def test_qini_curve_hand_example_and_endpoints():
    y = np.array([1, 0, 1, 0, 1, 0])
    t = np.array([1, 1, 0, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    c = qini_curve(y, t, s)
    # Y_t - Y_c * N_t / N_c by hand: k=1,2: 1 (no control yet); k=3: 1 - 1*2/1 = -1; k=4: 1 - 1*2/2 = 0;
    # k=5: 2 - 1*3/2 = 0.5; k=6: 2 - 1*3/3 = 1
    assert c["qini"].tolist() == pytest.approx([0, 1, 1, -1, 0, 0.5, 1])
    assert c["random"].iloc[-1] == pytest.approx(1) and c["share_targeted"].iloc[3] == pytest.approx(0.5)
    u = uplift_curve(y, t, s)
    assert u["uplift_gain"].iloc[-1] == pytest.approx((2 / 3 - 1 / 3) * 6)
    # ties are never split: a constant score gives just the two end points, i.e. the random line
    flat = qini_curve(y, t, np.zeros(6))
    assert len(flat) == 2 and qini_coefficient(y, t, np.zeros(6)) == pytest.approx(0)


def test_qini_orders_true_effect_above_model_above_random():
    X, y, t, tau = _uplift_world(30_000, 0.5, seed=1)
    tr, te = np.arange(21_000), np.arange(21_000, 30_000)
    score = two_model_uplift(X.iloc[tr], y[tr], t[tr], X.iloc[te], seed=0)
    q_true = qini_coefficient(y[te], t[te], tau[te])
    q_model = qini_coefficient(y[te], t[te], score)
    rng = np.random.default_rng(0)
    q_rand = np.array([qini_coefficient(y[te], t[te], rng.random(len(te))) for _ in range(30)])
    assert q_true > q_model > 0
    assert q_model > q_rand.max()
    assert abs(q_rand.mean()) < 3 * q_rand.std() / np.sqrt(len(q_rand)) + 1e-4
    assert abs(q_rand.mean()) < 0.1 * q_true
    # the curve's end point is the overall incremental count, computed independently
    c = qini_curve(y[te], t[te], score)
    yt, yc = y[te][t[te] == 1].sum(), y[te][t[te] == 0].sum()
    nt, nc = (t[te] == 1).sum(), (t[te] == 0).sum()
    assert c["qini"].iloc[-1] == pytest.approx(yt - yc * nt / nc)
    assert np.corrcoef(score, tau[te])[0, 1] > 0.5
    norm = qini_coefficient(y[te], t[te], tau[te], normalize=True)
    assert 0 < norm < 1


def test_class_transformation_weighted_handles_unbalanced_treatment():
    X, y, t, tau = _uplift_world(30_000, 0.8, seed=2)
    tr, te = np.arange(21_000), np.arange(21_000, 30_000)
    score = class_transformation_uplift(X.iloc[tr], y[tr], t[tr], X.iloc[te], seed=0)
    assert np.corrcoef(score, tau[te])[0, 1] > 0.5
    assert qini_coefficient(y[te], t[te], score) > 0.5 * qini_coefficient(y[te], t[te], tau[te])
    # average predicted uplift matches the true average effect
    assert score.mean() == pytest.approx(tau[te].mean(), abs=0.02)
    with pytest.raises(CrmAnalyticsError, match="50/50"):
        class_transformation_uplift(X.iloc[tr], y[tr], t[tr], X.iloc[te], method="jaskowski")


def test_class_transformation_jaskowski_on_a_50_50_split():
    X, y, t, tau = _uplift_world(30_000, 0.5, seed=3)
    tr, te = np.arange(21_000), np.arange(21_000, 30_000)
    score = class_transformation_uplift(X.iloc[tr], y[tr], t[tr], X.iloc[te], method="jaskowski", seed=0)
    assert np.corrcoef(score, tau[te])[0, 1] > 0.5
    assert qini_coefficient(y[te], t[te], score) > 0


def test_profit_curve_and_best_cutoff_find_the_profitable_half():
    # effect +0.10 when x2 > 0, -0.02 otherwise: with margin 10 and cost 0.3 only the x2 > 0 half pays
    rng = np.random.default_rng(4)
    n = 60_000
    x2 = rng.normal(size=n)
    tau = np.where(x2 > 0, 0.10, -0.02)
    t = (rng.random(n) < 0.5).astype(int)
    y = (rng.random(n) < 0.2 + tau * t).astype(int)
    curve = profit_curve(y, t, tau + 1e-3 * x2, margin_per_conversion=10.0, cost_per_contact=0.3)
    u = uplift_curve(y, t, tau + 1e-3 * x2)
    assert curve["profit"].to_numpy() == pytest.approx(u["uplift_gain"].to_numpy() * 10 - 0.3 * u["n_targeted"])
    assert curve["profit"].iloc[0] == 0
    best = best_cutoff(curve)
    assert 0.45 <= best["share_targeted"] <= 0.55
    expected = (0.10 * 10 - 0.3) * n / 2  # true profit of targeting exactly the x2 > 0 half
    assert best["profit"] == pytest.approx(expected, rel=0.2)
    # revenue version with margin_rate, and nothing profitable -> target nobody
    none = best_cutoff(profit_curve(y, t, tau, margin_rate=0.01, cost_per_contact=5.0))
    assert none["share_targeted"] == 0 and none["profit"] == 0
    with pytest.raises(CrmAnalyticsError, match="exactly one"):
        profit_curve(y, t, tau, margin_rate=0.1, margin_per_conversion=1.0)


def test_input_errors_are_clear():
    with pytest.raises(CrmAnalyticsError, match="successes"):
        proportion_lift(11, 10, 1, 10)
    with pytest.raises(CrmAnalyticsError, match="alpha"):
        proportion_lift(1, 10, 1, 10, alpha=5)
    with pytest.raises(CrmAnalyticsError, match="0/1"):
        qini_curve([1, 0], [2, 0], [0.1, 0.2])
    with pytest.raises(CrmAnalyticsError, match="missing"):
        mean_lift([1.0, np.nan, 2.0], [1.0, 2.0])
    with pytest.raises(DataContractError, match="control"):
        arms_vs_control(pd.DataFrame({"arm": ["a", "b"], "y": [0, 1]}), "arm", "ctrl", ["y"])


def test_two_model_uplift_when_one_arm_never_converts():
    # no control customer converted: that arm's model knows one class and predicts no conversion
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.random(400)})
    t = np.r_[np.ones(200, int), np.zeros(200, int)]
    y = np.r_[(rng.random(200) < 0.3).astype(int), np.zeros(200, int)]
    up = two_model_uplift(X, y, t, X.iloc[:10])
    assert np.all((up > 0.1) & (up < 0.5))

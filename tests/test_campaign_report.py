"""Campaign report tables on a simulated campaign whose effects are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.reports.campaign_report import channel_table, design_share, effects_table, segment_lifts


def _simulated(n=20000, seed=1):
    rng = np.random.default_rng(seed)
    variant = rng.choice(["a", "b", "control"], n, p=[0.4, 0.4, 0.2])
    base = 0.10
    p = base + np.select([variant == "a", variant == "b"], [0.03, 0.0], 0.0)
    conv = rng.random(n) < p
    return pd.DataFrame({"campaign_id": "K", "customer_id": [f"c{i}" for i in range(n)],
                         "group": np.where(variant == "control", "control", "treatment"), "variant": variant,
                         "opened": rng.random(n) < 0.3, "clicked": False, "converted": conv,
                         "revenue": np.where(conv, rng.gamma(4, 25, n), 0.0)})


def test_effects_recover_known_lifts_and_the_design_split():
    out = _simulated()
    camps = pd.DataFrame({"campaign_id": ["K"], "name": ["test"], "channel": ["email"], "cost_per_contact": [0.1],
                          "fixed_cost": [100.0]})
    e = effects_table(out, camps, margin_rate=0.3, n_boot=200).set_index("arm")
    assert e.loc["a", "lift_abs_low"] < 0.03 < e.loc["a", "lift_abs_high"]
    assert e.loc["b", "lift_abs_low"] < 0.0 < e.loc["b", "lift_abs_high"]
    assert e.loc["a", "p_holm"] < 0.001 and e.loc["b", "p_holm"] > 0.05
    assert e.loc["a", "srm_p_value"] > 0.001 and e.loc["a", "design_treatment_share"] == pytest.approx(0.8)
    # the fixed cost is split between the arms by their size; contacts cost 0.1 each
    assert e["cost"].sum() == pytest.approx(0.1 * e["n_treatment"].sum() + 100, rel=1e-9)
    ch = channel_table(e.reset_index())
    assert ch.loc[0, "contacts"] == e["n_treatment"].sum()


def test_srm_is_flagged_when_the_split_drifts():
    out = _simulated()
    drop = out.index[(out["variant"] == "control")][:800]  # lose 20 % of the control group
    camps = pd.DataFrame({"campaign_id": ["K"], "name": ["t"], "channel": ["email"], "cost_per_contact": [0.0],
                          "fixed_cost": [0.0]})
    e = effects_table(out.drop(drop), camps, margin_rate=0.3, n_boot=1000)
    assert e["srm"].all()


def test_design_share_and_segment_lifts():
    assert design_share(0.79) == 0.8 and design_share(0.34) == pytest.approx(1 / 3)
    out = _simulated()
    seg = pd.DataFrame({"customer_id": out["customer_id"], "segment": np.where(np.arange(len(out)) % 2, "x", "y")})
    s = segment_lifts(out, seg, campaign_id="K")
    assert set(s["segment"]) == {"x", "y"} and (s["p_holm"] >= s["p_value"]).all()


def test_outcome_tables_show_each_outcome_in_its_own_units():
    from crm_analytics import i18n
    from crm_analytics.models import campaigns
    from crm_analytics.reports.campaign_report import (OUTCOME_TITLES, arm_label, outcome_table, percentage_points,
                                               roi_percent)

    out = _simulated()
    t = campaigns.arms_vs_control(out.assign(converted=out["converted"].astype(float)), "variant", "control",
                                  ["converted", "revenue"]).assign(campaign_id="K")
    conv, formats = outcome_table(t, "converted", {"K": "Spring sale"})
    assert list(conv.index.names) == ["campaign", "arm"] and conv.index[0][0] == "Spring sale"
    assert list(conv.columns) == ["conversion_treatment", "conversion_control", "lift_abs", "lift_abs_low",
                                  "lift_abs_high", "p_holm"]
    assert formats["lift_abs"] is percentage_points
    rev, formats = outcome_table(t, "revenue")
    assert "revenue_lift" in rev.columns and formats["revenue_lift"] == "{:+,.2f}" and rev.index[0][0] == "K"
    assert set(OUTCOME_TITLES) == {"visited", "converted", "revenue"}
    try:
        i18n.use("en")
        assert percentage_points(0.0123) == "+1.23" and percentage_points(float("nan")) == "–"
        assert percentage_points(0.0123, sign=False) == "1.23"
        assert roi_percent(-0.42) == "-42%"
        assert arm_label("free_shipping") == "free shipping" and arm_label("Mens E-Mail") == "Mens E-Mail"
        i18n.use("tr")
        assert percentage_points(0.0123) == "+1,23" and roi_percent(0.5) == "+%50"
        assert arm_label("free_shipping") == "ücretsiz kargo"
    finally:
        i18n.use("en")

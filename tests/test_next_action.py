"""Next best action: the value formula, the choice rules, the params checks and learning uplift from a test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import next_action as na
from crm_analytics.errors import ParamsError
from crm_analytics.ingest.params_rules import RULES


def _action(name, discount=0.0, cost=1.0, audience="everyone"):
    return na.Action(name=name, campaign_id="C1", campaign="test", arm="a", channel="email", discount=discount,
                     cost_per_contact=cost, audience=audience)


def test_value_counts_the_discount_on_orders_that_would_come_anyway():
    uplift = pd.DataFrame({"mail": [0.10, 0.0], "disc": [0.20, 0.20]}, index=["x", "y"])
    actions = [_action("mail", 0.0, 1.0), _action("disc", 0.2, 1.0)]
    s = pd.Series({"x": 100.0, "y": 100.0})
    p0 = pd.Series({"x": 0.0, "y": 0.5})
    v = na.action_values(uplift, actions, s, p0, margin_rate=0.3)
    # mail: 0.1*100*0.3 - 0 - 1 = 2;  disc for x: 0.2*100*(0.3-0.2) - 0 - 1 = 1
    assert v.loc["x", "mail"] == pytest.approx(2.0)
    assert v.loc["x", "disc"] == pytest.approx(1.0)
    # y would order anyway half the time: the discount on that order costs 0.5*100*0.2 = 10
    assert v.loc["y", "disc"] == pytest.approx(0.2 * 100 * 0.1 - 10 - 1)
    assert v.loc["y", "mail"] == pytest.approx(-1.0)


def test_choose_picks_the_best_allowed_positive_action_or_nothing_with_a_reason():
    values = pd.DataFrame({"mail": [2.0, -1.0, 5.0, 3.0], "disc": [1.0, -2.0, 9.0, 1.0]}, index=list("abcd"))
    allowed = pd.DataFrame(True, index=values.index, columns=values.columns)
    allowed.loc["c", "disc"] = False  # c is not relevant for the discount: the e-mail is next best
    allowed.loc["d", :] = False
    capped = pd.Series({"a": False, "b": False, "c": False, "d": False})
    ch = na.choose(values, allowed=allowed, capped=capped)
    assert ch["action"].tolist() == ["mail", "nothing", "mail", "nothing"]
    assert ch["expected_incremental_margin"].tolist() == [2.0, 0.0, 5.0, 0.0]
    assert "pay for itself" in ch.at["b", "reason"]
    assert "not relevant" in ch.at["d", "reason"]
    capped["a"] = True
    ch = na.choose(values, allowed=allowed, capped=capped)
    assert ch.at["a", "action"] == "nothing" and "cap" in ch.at["a", "reason"]
    totals = na.policy_totals(values, ch, allowed)
    assert totals["send_everyone_everything"] == pytest.approx(2 + 1 - 1 - 2 + 5)
    assert totals["best_single_action"] == "mail"
    s = na.summary(ch, ["mail", "disc"])
    assert s["mail"] == {"customers": 1, "expected_incremental_margin": 5.0}
    assert s["nothing"]["customers"] == 3 and s["disc"]["customers"] == 0


def test_truth_check_values_the_chosen_actions_at_their_true_uplift():
    values = pd.DataFrame({"mail": [2.0, -1.0], "disc": [1.0, 3.0]}, index=["a", "b"])
    true = pd.DataFrame({"mail": [-0.5, 4.0], "disc": [0.5, 1.0]}, index=["a", "b"])
    allowed = pd.DataFrame(True, index=values.index, columns=values.columns)
    ch = na.choose(values, allowed=allowed, capped=pd.Series(False, index=values.index))
    up = pd.DataFrame({"mail": [0.1, 0.0], "disc": [0.05, 0.2]}, index=["a", "b"])
    chk = na.truth_check(values, true, ch, allowed, up, up * 0.5)
    assert chk["expected_total"] == pytest.approx(5.0)
    assert chk["true_total"] == pytest.approx(-0.5 + 1.0)  # a got mail (true -0.5), b got disc (true 1.0)
    assert chk["oracle_true_total"] == pytest.approx(0.5 + 4.0)
    assert chk["send_everyone_everything_true"] == pytest.approx(5.0)


def test_order_chance_scales_expected_purchases_to_the_window():
    clv = pd.DataFrame({"expected_purchases_90d": [0.0, 90 / 14]}, index=["a", "b"])
    p = na.order_chance(clv, 14)
    assert p["a"] == 0 and p["b"] == pytest.approx(1 - np.exp(-1))


@pytest.mark.parametrize("spec, fragment", [
    ({"x": {"campaign": "C1"}}, "actions.x.arm"),
    ({"x": {"campaign": "C1", "arm": "a", "discount": 1.5}}, "actions.x.discount"),
    ({"x": {"campaign": "C1", "arm": "a", "audience": "vip"}}, "actions.x.audience"),
    ({"x": {"campaign": "C1", "arm": "a", "colour": "red"}}, "unknown field"),
    ({"Big Deal": {"campaign": "C1", "arm": "a"}}, "snake_case"),
])
def test_bad_actions_are_refused_by_name(spec, fragment):
    with pytest.raises(ParamsError, match=fragment.replace(".", r"\.")):
        na.check_actions(spec)
    assert fragment in RULES["actions"].problem(spec)


def _test_tables(n=600, seed=1):
    rng = np.random.default_rng(seed)
    ids = [f"c{i}" for i in range(n)]
    campaigns = pd.DataFrame({"campaign_id": ["C1", "C2"], "name": ["Spring mail", "No control"],
                              "channel": ["email", "social"], "cost_per_contact": [0.5, 2.0]})
    group = np.where(rng.random(n) < 0.5, "treatment", "control")
    assignments = pd.DataFrame({"campaign_id": "C1", "customer_id": ids, "group": group,
                                "variant": np.where(group == "treatment", "offer", None)})
    assignments = pd.concat([assignments, pd.DataFrame({"campaign_id": "C2", "customer_id": ids[:50],
                                                        "group": "treatment", "variant": "ad"})])
    return campaigns, assignments, ids, group


def test_parse_actions_ties_each_action_to_a_randomised_arm_of_the_data():
    campaigns, assignments, *_ = _test_tables()
    [a] = na.parse_actions({"mail": {"campaign": "Spring mail", "arm": "offer", "discount": 0.1}}, campaigns,
                           assignments)
    assert (a.campaign_id, a.channel, a.cost_per_contact, a.discount) == ("C1", "email", 0.5, 0.1)
    with pytest.raises(ParamsError, match="no treatment arm 'ofer'.*\\['offer'\\]"):
        na.parse_actions({"mail": {"campaign": "C1", "arm": "ofer"}}, campaigns, assignments)
    with pytest.raises(ParamsError, match="no control group"):
        na.parse_actions({"ad": {"campaign": "C2", "arm": "ad"}}, campaigns, assignments)
    with pytest.raises(ParamsError, match="no campaign 'C9'.*C1 \\(Spring mail\\)"):
        na.parse_actions({"mail": {"campaign": "C9", "arm": "offer"}}, campaigns, assignments)
    with pytest.raises(ParamsError, match="no campaigns"):
        na.parse_actions({"mail": {"campaign": "C1", "arm": "offer"}}, None, None)


def test_learn_uplift_finds_who_responds_in_a_test_where_only_the_young_do():
    campaigns, assignments, ids, group = _test_tables(n=4000)
    rng = np.random.default_rng(2)
    young = rng.random(len(ids)) < 0.5
    base = 0.10
    p = base + np.where((group == "treatment") & young, 0.25, 0.0)
    converted = rng.random(len(ids)) < p
    outcomes = assignments[assignments["campaign_id"] == "C1"].assign(converted=converted)
    features = pd.DataFrame({"young": young.astype(float), "noise": rng.random(len(ids))}, index=pd.Index(ids))
    [a] = na.parse_actions({"mail": {"campaign": "C1", "arm": "offer"}}, campaigns, assignments)
    grid = np.linspace(0, 1, 21)
    current = pd.DataFrame({"young": [1.0] * 21 + [0.0] * 21, "noise": np.r_[grid, grid]})
    fit = na.learn_uplift(outcomes, features, a, current, seed=0)
    assert fit["qini"] > 10 * fit["qini_random"]
    by_age = fit["uplift"].groupby(current["young"]).mean()  # true: 0.25 for the young, 0 for the rest
    assert by_age[1.0] > 0.15 and abs(by_age[0.0]) < 0.08
    assert fit["observed_lift"] == pytest.approx(0.125, abs=0.03)

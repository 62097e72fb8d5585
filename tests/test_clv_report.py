"""CLV report helpers: periods, the simulated frequency histogram, published comparison, per-customer values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import clv
from crm_analytics.reports import clv_report
from crm_analytics.errors import ParamsError


def _fit(model, params):
    return clv.FitResult(model=model, params=params, se={}, ci={}, loglik=0.0, n_customers=1, converged=True)


@pytest.mark.parametrize("model, params", [
    ("bgnbd", {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}),
    ("mbgnbd", {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}),
    ("pareto_nbd", {"r": 0.6, "alpha": 10.0, "s": 0.6, "beta": 12.0}),
])
def test_simulated_purchases_have_the_models_closed_form_mean(model, params):
    fit = _fit(model, params)
    T = np.full(20000, 39.0)
    sim = clv_report.simulate_repeat_purchases(fit, T, draws=10, seed=1)
    expected = float(clv.expected_purchases_unconditional(fit, 39.0))
    assert sim.mean() == pytest.approx(expected, rel=0.03)


def test_periods_from_params_or_from_the_last_order():
    b = pd.DataFrame({"order_ts": pd.to_datetime(["1997-01-01", "1997-06-01", "1998-06-30"], utc=True)})
    assert clv_report.periods(b, "1997-09-30", 273) == (pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30"))
    assert clv_report.periods(b, "", 100)[1] == pd.Timestamp("1998-06-30")
    with pytest.raises(ParamsError, match="no calibration period"):
        clv_report.periods(b, "1997-01-02", 30)
    with pytest.raises(ParamsError, match="time_unit must be one of"):
        clv_report.time_unit_freq("fortnight")


def test_customer_values_tiers_and_next_order():
    fit = _fit("bgnbd", {"r": 0.25, "alpha": 4.4, "a": 0.79, "b": 2.43})
    gg = _fit("gamma_gamma", {"p": 6.25, "q": 3.74, "v": 15.44})
    s = pd.DataFrame({"frequency": [0, 5, 5], "recency": [0.0, 30.0, 5.0], "T": [30.0, 31.0, 31.0],
                      "monetary_value": [0.0, 40.0, 40.0]}, index=pd.Index(["a", "b", "c"], name="customer_id"))
    s.attrs.update(time_unit_days=7.0, calibration_end="1997-09-30")
    v = clv_report.customer_values(fit, gg, s, predict_days=90, horizon_months=12, margin=0.3,
                                   annual_discount_rate=0.1)
    assert v.loc["b", "p_alive"] > 0.7 > 0.3 > v.loc["c", "p_alive"]
    assert v.loc["b", "churn_risk"] == "low" and v.loc["c", "churn_risk"] == "high"
    assert pd.isna(v.loc["c", "next_order_date"]) and v.loc["b", "next_order_date"] > pd.Timestamp("1997-09-30")
    assert v.loc["b", "clv"] > v.loc["c", "clv"] > 0


def test_report_tables_name_the_models_for_the_reader():
    fit = clv.FitResult(model="bgnbd", params={"r": 0.5, "alpha": 6.0}, se={"r": 0.1, "alpha": 1.0},
                        ci={"r": (0.3, 0.7), "alpha": (4.0, 8.0)}, loglik=-10.0, n_customers=5, converged=True,
                        n_groups=3)
    par = clv_report.parameter_table({"bgnbd": fit})
    assert par.index.names == ["model", "parameter"] and par.index[0] == ("BG/NBD", "r")
    fits = clv_report.fit_table({"bgnbd": fit})
    assert fits.loc["BG/NBD", "distinct_histories"] == 3 and fits.index.name == "model"
    assert clv_report.period_word(pd.Series(pd.date_range("2024-01-01", periods=4, freq="D"))) == "day"
    assert clv_report.period_word(pd.Series(pd.date_range("2024-01-01", periods=4, freq="W"))) == "week"
    assert clv_report.period_word(pd.Series(pd.date_range("2024-01-01", periods=4, freq="MS"))) == "month"


def test_which_to_trust_is_written_in_the_report_language():
    import html

    from crm_analytics import i18n

    scores = pd.DataFrame({"roc_auc": [0.80, 0.70]}, index=["machine-learned", "BTYD P(no purchase in horizon)"])
    try:
        i18n.use("en")
        assert "the machine-learned model is better" in html.unescape(clv_report.which_to_trust(scores).data)
        i18n.use("tr")
        text = html.unescape(clv_report.which_to_trust(scores).data)
        assert "Hangisine ne için güvenmeli" in text and "makine öğrenmesi modeli daha iyi" in text
    finally:
        i18n.use("en")

"""One campaign's effect and money, and several arms against one control.

:func:`campaign_effect` gives one treatment-vs-control campaign's conversion and revenue lift,
incremental conversions, revenue and margin (currency of the revenue column), cost, ROI with a
bootstrap interval and the break-even lift; :func:`arms_vs_control` compares every arm with the control
on every outcome, Holm-adjusted.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from crm_analytics.errors import CrmAnalyticsError, DataContractError
from crm_analytics.models.campaigns._checks import _columns, _is_binary, _values
from crm_analytics.models.campaigns.means import _mean_lift, mean_lift
from crm_analytics.models.campaigns.multiple_testing import holm
from crm_analytics.models.campaigns.proportions import proportion_lift

__all__ = ["campaign_effect", "arms_vs_control"]


def _flag(s: pd.Series) -> np.ndarray:
    """True where an event column says it happened: a timestamp/value present, or a truthy flag."""
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return s.fillna(0).astype(float).to_numpy() > 0
    return s.notna().to_numpy()


def campaign_effect(assignments_outcomes_df: pd.DataFrame, *, conversion_col: str, revenue_col: str,
                    group_col: str = "group", margin_rate: float, cost_per_contact: float, fixed_cost: float = 0.0,
                    alpha: float = 0.05, n_boot: int = 2000, seed: int | None = 0,
                    treatment_label: Any = "treatment", control_label: Any = "control",
                    sent_col: str = "sent_ts", opened_col: str = "opened_ts",
                    clicked_col: str = "clicked_ts") -> dict[str, Any]:
    """Effect, incremental value and ROI of one campaign with a randomised control group.

    Parameters
    ----------
    assignments_outcomes_df : DataFrame
        One row per assigned customer: the group, a 0/1 conversion outcome, revenue in the outcome
        window (0 for non-buyers) and optionally sent/opened/clicked columns (timestamps or flags).
    conversion_col, revenue_col, group_col : str
        Column names.
    margin_rate : float
        Gross margin as a share of revenue (e.g. 0.3).
    cost_per_contact, fixed_cost : float
        Campaign cost = ``cost_per_contact * reach + fixed_cost``; *reach* is the number of treated
        customers with a non-empty *sent_col* when that column exists, else every treated customer.
    alpha, n_boot, seed
        Interval level, bootstrap resamples and seed (same seed -> same intervals).
    treatment_label, control_label
        Group labels (default ``"treatment"``/``"control"``, as in ``campaign_assignments``).

    Returns
    -------
    dict
        ``n_treatment``, ``n_control``, ``reach``; ``conversion`` (:func:`proportion_lift`) and
        ``revenue_per_customer`` (:func:`mean_lift` with an *n_boot* bootstrap);
        ``incremental_conversions`` = abs. lift × n_treatment, ``incremental_revenue`` = revenue per
        customer lift × n_treatment, ``incremental_margin`` = margin_rate × incremental revenue (each
        with ``_low``/``_high``), ``cost``, ``roi`` = (incremental margin − cost) / cost with
        ``roi_low``/``roi_high`` (percentile bootstrap over customers, resampling each group separately),
        ``margin_per_conversion`` (margin_rate × mean revenue of converted treated customers),
        ``break_even_lift_abs`` = cost / (n_treatment × margin_per_conversion), the conversion lift at
        which ROI would be 0; ``open_rate``, ``click_rate``, ``click_to_open_rate`` among the treated
        (None when the columns are absent).
    """
    df = assignments_outcomes_df
    _columns(df, [group_col, conversion_col, revenue_col], "campaign_effect")
    for name, v in (("margin_rate", margin_rate), ("cost_per_contact", cost_per_contact), ("fixed_cost", fixed_cost)):
        if not np.isfinite(v) or v < 0:
            raise CrmAnalyticsError(f"{name} must be a non-negative number, got {v!r}")
    labels = set(pd.unique(df[group_col]).tolist())
    if labels != {treatment_label, control_label}:
        raise DataContractError(
            f"campaign_effect: column {group_col!r} must hold exactly {treatment_label!r} and {control_label!r}, "
            f"found {sorted(map(str, labels))}; filter to one treatment arm and the control, or use arms_vs_control")
    if not _is_binary(df[conversion_col]) or df[conversion_col].isna().any():
        raise DataContractError(f"campaign_effect: {conversion_col!r} must be 0/1 or boolean without missing values")
    is_t = (df[group_col] == treatment_label).to_numpy()
    conv = df[conversion_col].astype(float).to_numpy()
    rev = _values(df[revenue_col], f"revenue column {revenue_col!r}")
    n_t, n_c = int(is_t.sum()), int((~is_t).sum())

    conversion = proportion_lift(int(conv[is_t].sum()), n_t, int(conv[~is_t].sum()), n_c, alpha)
    if n_t < 2 or n_c < 2:
        raise DataContractError(f"campaign_effect: need at least 2 customers per group, got {n_t} treated, "
                                f"{n_c} control")
    if int(n_boot) < 100:
        raise CrmAnalyticsError(f"n_boot={n_boot!r} is too few for a percentile interval: use at least 1000")
    revenue, diffs = _mean_lift(rev[is_t], rev[~is_t], alpha, int(n_boot), seed)  # diffs: bootstrap draws

    treated = df[is_t]
    reach = int(_flag(treated[sent_col]).sum()) if sent_col in df.columns else n_t
    cost = float(cost_per_contact * reach + fixed_cost)

    def value(lift: float) -> float:  # revenue-per-customer lift -> incremental margin
        return float(margin_rate * lift * n_t)

    margin_draws = margin_rate * diffs * n_t
    roi = (value(revenue["lift_abs"]) - cost) / cost if cost > 0 else float("nan")
    roi_q = np.quantile((margin_draws - cost) / cost, [alpha / 2, 1 - alpha / 2]) if cost > 0 else [np.nan] * 2
    converted_t = conv[is_t] > 0
    mpc = float(margin_rate * rev[is_t][converted_t].mean()) if converted_t.any() else float("nan")
    break_even = cost / (n_t * mpc) if mpc > 0 else float("nan")

    rates: dict[str, float | None] = {"open_rate": None, "click_rate": None, "click_to_open_rate": None}
    if opened_col in df.columns:
        opened = _flag(treated[opened_col])
        rates["open_rate"] = float(opened.mean())
    if clicked_col in df.columns:
        clicked = _flag(treated[clicked_col])
        rates["click_rate"] = float(clicked.mean())
        if opened_col in df.columns and opened.any():
            rates["click_to_open_rate"] = float(clicked[opened].mean())
    return {
        "n_treatment": n_t, "n_control": n_c, "reach": reach,
        "conversion": conversion, "revenue_per_customer": revenue,
        "incremental_conversions": conversion["lift_abs"] * n_t,
        "incremental_conversions_low": conversion["lift_abs_low"] * n_t,
        "incremental_conversions_high": conversion["lift_abs_high"] * n_t,
        "incremental_revenue": revenue["lift_abs"] * n_t,
        "incremental_revenue_low": revenue["lift_abs_low"] * n_t,
        "incremental_revenue_high": revenue["lift_abs_high"] * n_t,
        "incremental_margin": value(revenue["lift_abs"]),
        "incremental_margin_low": value(revenue["lift_abs_low"]),
        "incremental_margin_high": value(revenue["lift_abs_high"]),
        "cost": cost, "roi": float(roi), "roi_low": float(roi_q[0]), "roi_high": float(roi_q[1]),
        "roi_ci_method": f"percentile bootstrap over customers, stratified by group (n_boot={int(n_boot)})",
        "margin_per_conversion": mpc, "break_even_lift_abs": float(break_even),
        **rates,
        "alpha": alpha, "n_boot": int(n_boot), "seed": seed,
    }


def arms_vs_control(df: pd.DataFrame, arm_col: str, control_label: Any, outcome_cols: Sequence[str], *,
                    alpha: float = 0.05, family: str = "all", bootstrap: int | None = 0,
                    seed: int | None = 0) -> pd.DataFrame:
    """Every arm against the control, for every outcome, with Holm-adjusted p-values.

    Binary outcomes (0/1 or boolean) use :func:`proportion_lift` (Newcombe interval); other outcomes
    use :func:`mean_lift` (Welch, or bootstrap when *bootstrap* asks). Intervals are per comparison
    (not adjusted); only the p-values are adjusted.

    Parameters
    ----------
    df : DataFrame
        One row per customer.
    arm_col : str
        Arm label column; *control_label* marks the control.
    outcome_cols : sequence of str
        Outcome columns (e.g. ``["visit", "conversion", "spend"]``).
    family : {"all", "outcome"}
        Holm family: every arm × outcome comparison at once (default, strictest) or each outcome
        separately.
    bootstrap, seed
        Passed to :func:`mean_lift` for non-binary outcomes (default 0: Welch only).

    Returns
    -------
    DataFrame
        One row per (arm, outcome): ``metric`` (proportion/mean), ``n_arm``, ``n_control``,
        ``mean_arm``, ``mean_control``, ``lift_abs``, ``lift_abs_low``, ``lift_abs_high``, ``lift_rel``,
        ``p_value``, ``test``, ``p_holm``, ``significant`` (``p_holm < alpha``) and ``correction``.
    """
    outcome_cols = list(outcome_cols)
    _columns(df, [arm_col, *outcome_cols], "arms_vs_control")
    if family not in ("all", "outcome"):
        raise CrmAnalyticsError(f"family must be 'all' or 'outcome', got {family!r}")
    arms = [a for a in pd.unique(df[arm_col].dropna()) if a != control_label]
    if control_label not in set(df[arm_col].tolist()) or not arms:
        raise DataContractError(f"arms_vs_control: {arm_col!r} needs the control {control_label!r} and at least "
                                f"one other arm; found {sorted(map(str, pd.unique(df[arm_col])))}")
    ctrl = df[df[arm_col] == control_label]
    rows = []
    for outcome in outcome_cols:  # a handful of comparisons, not customers
        binary = _is_binary(df[outcome])
        for arm in sorted(arms, key=str):
            part = df[df[arm_col] == arm]
            if binary:
                r = proportion_lift(int(part[outcome].sum()), len(part), int(ctrl[outcome].sum()), len(ctrl), alpha)
                mean_a, mean_c = r["rate_treatment"], r["rate_control"]
            else:
                r = mean_lift(part[outcome], ctrl[outcome], alpha, bootstrap=bootstrap, seed=seed)
                r["test"] = "welch_t"
                mean_a, mean_c = r["mean_treatment"], r["mean_control"]
            rows.append({"arm": arm, "outcome": outcome, "metric": "proportion" if binary else "mean",
                         "n_arm": len(part), "n_control": len(ctrl), "mean_arm": mean_a, "mean_control": mean_c,
                         "lift_abs": r["lift_abs"], "lift_abs_low": r["lift_abs_low"],
                         "lift_abs_high": r["lift_abs_high"], "lift_rel": r["lift_rel"], "p_value": r["p_value"],
                         "test": r["test"], "ci_method": r["ci_method"]})
    out = pd.DataFrame(rows)
    if family == "all":
        out["p_holm"] = holm(out["p_value"].to_numpy())
        note = f"holm (family-wise over all {len(out)} arm x outcome comparisons)"
    else:
        out["p_holm"] = out.groupby("outcome")["p_value"].transform(lambda p: holm(p.to_numpy()))
        note = f"holm (family-wise within each outcome, {len(arms)} comparisons each)"
    out["significant"] = out["p_holm"] < alpha
    out["correction"] = note
    return out

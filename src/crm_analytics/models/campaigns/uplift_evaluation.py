"""Uplift evaluation: Qini and uplift curves, the Qini coefficient, and the profit of targeting the
top share by score (:func:`profit_curve`, :func:`best_cutoff`; money in the revenue's currency).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.models.campaigns._checks import _columns, _treatment, _values

__all__ = ["qini_curve", "uplift_curve", "qini_coefficient", "profit_curve", "best_cutoff"]


def _ranked_cumulative(y: Any, t: Any, score: Any) -> dict[str, np.ndarray]:
    """Cumulative counts after sorting by descending score, evaluated at the end of each block of tied
    scores (ties are never split), with a leading all-zero point."""
    yv, tv = _values(y, "y"), _treatment(t)
    s = _values(score, "score")
    if not (yv.size == tv.size == s.size):
        raise CrmAnalyticsError(f"y ({yv.size}), t ({tv.size}) and score ({s.size}) must have the same length")
    order = np.argsort(-s, kind="mergesort")
    s, yv, tv = s[order], yv[order], tv[order]
    ends = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    cum = {
        "n_targeted": np.arange(1, s.size + 1),
        "n_treatment": np.cumsum(tv),
        "n_control": np.cumsum(1 - tv),
        "outcome_treatment": np.cumsum(yv * tv),
        "outcome_control": np.cumsum(yv * (1 - tv)),
    }
    out = {k: np.r_[0, v[ends]].astype(float) for k, v in cum.items()}
    out["share_targeted"] = out["n_targeted"] / s.size
    return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


def qini_curve(y: Any, t: Any, uplift_score: Any) -> pd.DataFrame:
    """Radcliffe's Qini curve: incremental outcome among the top share of customers by score.

    At each cut-off (end of a block of tied scores) targeting the top ``share_targeted`` of rows,
    ``qini = Y_t - Y_c * N_t / N_c`` where ``Y_t``/``Y_c`` are the summed outcomes and ``N_t``/``N_c``
    the counts of treated/control rows above the cut-off (the control term is 0 while ``N_c = 0``).
    ``random`` is the straight line from (0, 0) to (1, qini at 100%).

    Returns
    -------
    DataFrame
        ``share_targeted``, ``n_targeted``, ``n_treatment``, ``n_control``, ``outcome_treatment``,
        ``outcome_control``, ``qini``, ``random``; first row is the empty targeting (0, 0).
    """
    c = _ranked_cumulative(y, t, uplift_score)
    c["qini"] = c["outcome_treatment"] - c["outcome_control"] * _ratio(c["n_treatment"], c["n_control"])
    c["random"] = c["share_targeted"] * c["qini"][-1]
    return pd.DataFrame(c)[["share_targeted", "n_targeted", "n_treatment", "n_control", "outcome_treatment",
                            "outcome_control", "qini", "random"]]


def uplift_curve(y: Any, t: Any, uplift_score: Any) -> pd.DataFrame:
    """Uplift (incremental gains) curve: ``(Y_t/N_t - Y_c/N_c) * n_targeted`` for the top share by score.

    The estimated extra outcome if every one of the top ``n_targeted`` customers were treated (0 while
    either group is still empty). ``random`` is the line from (0, 0) to the value at 100%.

    Returns
    -------
    DataFrame
        ``share_targeted``, ``n_targeted``, ``n_treatment``, ``n_control``, ``uplift_rate``,
        ``uplift_gain``, ``random``.
    """
    c = _ranked_cumulative(y, t, uplift_score)
    both = (c["n_treatment"] > 0) & (c["n_control"] > 0)
    rate = np.where(both, _ratio(c["outcome_treatment"], c["n_treatment"])
                    - _ratio(c["outcome_control"], c["n_control"]), 0.0)
    gain = rate * c["n_targeted"]
    return pd.DataFrame({"share_targeted": c["share_targeted"], "n_targeted": c["n_targeted"],
                         "n_treatment": c["n_treatment"], "n_control": c["n_control"], "uplift_rate": rate,
                         "uplift_gain": gain, "random": c["share_targeted"] * gain[-1]})


def _area_above_random(curve: pd.DataFrame, n: int) -> float:
    x = curve["share_targeted"].to_numpy()
    gap = (curve["qini"] - curve["random"]).to_numpy() / n
    return float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(x)))


def qini_coefficient(y: Any, t: Any, score: Any, normalize: bool = False) -> float:
    """Radcliffe's Qini coefficient: area between the model's Qini curve and the random line.

    Definition used here: with ``g(phi) = qini(phi) / N`` (incremental outcome per customer of the
    whole sample when the top share ``phi`` is targeted, see :func:`qini_curve`)::

        q = integral_0^1 [ g(phi) - phi * g(1) ] d phi      (trapezoid rule over the curve's points)

    so ``q > 0`` means the score ranks responsive customers above what random targeting achieves,
    ``q ≈ 0`` a random score, ``q < 0`` a harmful ranking. Its unit is the outcome's (e.g.
    conversions per customer). With ``normalize=True`` it is divided by the same area of the
    observed-outcome oracle ranking (score ``y * (2t - 1)``: treated responders first, control
    responders last), giving a unit-free value at most about 1.

    Returns
    -------
    float
    """
    yv = _values(y, "y")
    q = _area_above_random(qini_curve(yv, t, score), yv.size)
    if not normalize:
        return q
    tv = _treatment(t)
    best = _area_above_random(qini_curve(yv, tv, yv * (2 * tv - 1)), yv.size)
    return q / best if best > 0 else float("nan")


def profit_curve(y_or_revenue: Any, t: Any, score: Any, *, margin_per_conversion: float | None = None,
                 margin_rate: float | None = None, cost_per_contact: float = 0.0,
                 fixed_cost: float = 0.0) -> pd.DataFrame:
    """Expected incremental margin minus contact cost when targeting the top share by score.

    Incremental outcome is the uplift gain of :func:`uplift_curve`; it is turned into money with
    exactly one of *margin_per_conversion* (outcome = 0/1 conversion) or *margin_rate* (outcome =
    revenue). ``cost = cost_per_contact * n_targeted + fixed_cost`` (fixed cost only when someone is
    targeted); ``profit = incremental_margin - cost``.

    Returns
    -------
    DataFrame
        ``share_targeted``, ``n_targeted``, ``incremental_outcome``, ``incremental_margin``, ``cost``,
        ``profit``; the first row is targeting nobody (profit 0).
    """
    if (margin_per_conversion is None) == (margin_rate is None):
        raise CrmAnalyticsError("profit_curve: pass exactly one of margin_per_conversion (conversion outcome) "
                                "or margin_rate (revenue outcome)")
    unit = float(margin_per_conversion if margin_per_conversion is not None else margin_rate)
    if unit < 0 or cost_per_contact < 0 or fixed_cost < 0:
        raise CrmAnalyticsError("profit_curve: margins and costs must be non-negative")
    u = uplift_curve(y_or_revenue, t, score)
    margin = u["uplift_gain"] * unit
    cost = cost_per_contact * u["n_targeted"] + fixed_cost * (u["n_targeted"] > 0)
    return pd.DataFrame({"share_targeted": u["share_targeted"], "n_targeted": u["n_targeted"],
                         "incremental_outcome": u["uplift_gain"], "incremental_margin": margin, "cost": cost,
                         "profit": margin - cost})


def best_cutoff(curve: pd.DataFrame) -> dict[str, float]:
    """The most profitable point of a :func:`profit_curve` (targeting nobody when nothing pays).

    Returns
    -------
    dict
        ``share_targeted``, ``n_targeted``, ``profit``, ``incremental_margin``, ``cost``.
    """
    _columns(curve, ["share_targeted", "n_targeted", "profit", "incremental_margin", "cost"], "best_cutoff")
    if curve.empty or curve["profit"].isna().all():
        raise CrmAnalyticsError("best_cutoff: the profit curve is empty; build it with profit_curve()")
    row = curve.loc[curve["profit"].idxmax()]
    return {"share_targeted": float(row["share_targeted"]), "n_targeted": int(row["n_targeted"]),
            "profit": float(row["profit"]), "incremental_margin": float(row["incremental_margin"]),
            "cost": float(row["cost"])}

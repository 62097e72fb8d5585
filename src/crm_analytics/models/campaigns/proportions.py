"""Conversion rates: Wilson and Newcombe score intervals and the two-group :func:`proportion_lift`
(absolute lift, log risk-ratio relative lift, pooled z-test or Fisher exact).

Rates are shares in [0, 1]; a lift is treatment minus control; ``alpha`` is the two-sided level.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.models.campaigns._checks import _counts, _z

__all__ = ["wilson_interval", "newcombe_interval", "proportion_lift"]


def wilson_interval(x: Any, n: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion (vectorised, no continuity correction).

    Parameters
    ----------
    x, n : int or array-like
        Successes and trials.
    alpha : float
        Two-sided level; coverage is ``1 - alpha``.

    Returns
    -------
    (low, high) : tuple of ndarray
    """
    x_arr, n_arr = _counts(x, n, "wilson_interval")
    z = _z(alpha)
    p = x_arr / n_arr
    denom = 1 + z**2 / n_arr
    centre = (p + z**2 / (2 * n_arr)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / n_arr + z**2 / (4 * n_arr**2))
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def newcombe_interval(x_t: Any, n_t: Any, x_c: Any, n_c: Any, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for ``p_t - p_c`` (Newcombe 1998, method 10; vectorised).

    ``low = d - sqrt((p_t - l_t)^2 + (u_c - p_c)^2)``, ``high = d + sqrt((u_t - p_t)^2 + (p_c - l_c)^2)``
    with ``(l, u)`` the Wilson intervals of each group. Good coverage even for small counts and rates
    near 0 or 1, unlike the Wald interval.
    """
    lt, ut = wilson_interval(x_t, n_t, alpha)
    lc, uc = wilson_interval(x_c, n_c, alpha)
    pt = np.asarray(x_t, float) / np.asarray(n_t, float)
    pc = np.asarray(x_c, float) / np.asarray(n_c, float)
    d = pt - pc
    return d - np.sqrt((pt - lt) ** 2 + (uc - pc) ** 2), d + np.sqrt((ut - pt) ** 2 + (pc - lc) ** 2)


def proportion_lift(x_t: int, n_t: int, x_c: int, n_c: int, alpha: float = 0.05, *,
                    ci_method: str = "newcombe") -> dict[str, Any]:
    """Compare two conversion rates: absolute and relative lift with intervals and a p-value.

    Parameters
    ----------
    x_t, n_t : int
        Converted customers and customers in the treatment group.
    x_c, n_c : int
        The same for the control group.
    alpha : float
        Two-sided level (intervals have coverage ``1 - alpha``).
    ci_method : {"newcombe", "wald"}
        Interval of the absolute lift. ``"newcombe"`` (default) is Newcombe's hybrid Wilson score
        interval (method 10 of Newcombe 1998), recommended for small counts; ``"wald"`` is
        ``d ± z*sqrt(p_t q_t/n_t + p_c q_c/n_c)``.

    Returns
    -------
    dict
        ``rate_treatment``, ``rate_control``, ``lift_abs`` (+ ``_low``/``_high``), ``lift_rel`` =
        ``p_t/p_c - 1`` (+ ``_low``/``_high`` from the log risk-ratio interval
        ``exp(log RR ± z*sqrt(1/x_t - 1/n_t + 1/x_c - 1/n_c)) - 1``; 0.5 is added to every cell for
        the interval when a count is 0, and ``lift_rel`` is NaN when the control rate is 0),
        ``p_value`` (two-sided), ``test`` (``"z_pooled"`` or ``"fisher_exact"`` — Fisher is used when
        any expected cell of the 2×2 table is below 5), ``ci_method``, counts and ``alpha``.
    """
    (xt, nt), (xc, nc) = _counts(x_t, n_t, "treatment"), _counts(x_c, n_c, "control")
    xt, nt, xc, nc = float(xt), float(nt), float(xc), float(nc)
    z = _z(alpha)
    pt, pc = xt / nt, xc / nc
    d = pt - pc
    if ci_method == "newcombe":
        lo, hi = (float(v) for v in newcombe_interval(xt, nt, xc, nc, alpha))
    elif ci_method == "wald":
        se = np.sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc)
        lo, hi = d - z * se, d + z * se
    else:
        raise CrmAnalyticsError(f"ci_method must be 'newcombe' or 'wald', got {ci_method!r}")

    # relative lift: log risk ratio, Haldane-Anscombe correction for the interval when a cell is zero
    a, b, c, e = xt, nt - xt, xc, nc - xc
    if min(a, b, c, e) == 0:
        a, b, c, e = a + 0.5, b + 0.5, c + 0.5, e + 0.5
    log_rr = np.log((a / (a + b)) / (c / (c + e)))
    se_log = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + e))
    rel = pt / pc - 1 if pc > 0 else float("nan")

    # test: pooled z, or Fisher exact for small expected counts
    table = np.array([[xt, nt - xt], [xc, nc - xc]])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    if expected.min() < 5:
        test, p_value = "fisher_exact", float(stats.fisher_exact(table.astype(int))[1])
    else:
        pooled = (xt + xc) / (nt + nc)
        zstat = d / np.sqrt(pooled * (1 - pooled) * (1 / nt + 1 / nc))
        test, p_value = "z_pooled", float(2 * stats.norm.sf(abs(zstat)))
    return {
        "n_treatment": int(nt), "n_control": int(nc),
        "conversions_treatment": int(xt), "conversions_control": int(xc),
        "rate_treatment": pt, "rate_control": pc,
        "lift_abs": d, "lift_abs_low": float(lo), "lift_abs_high": float(hi),
        "lift_rel": float(rel),
        "lift_rel_low": float(np.expm1(log_rr - z * se_log)), "lift_rel_high": float(np.expm1(log_rr + z * se_log)),
        "p_value": p_value, "test": test, "ci_method": ci_method, "alpha": alpha,
    }

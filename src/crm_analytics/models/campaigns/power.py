"""Power of a conversion test: customers needed per group (:func:`sample_size_proportion`) and the
minimum detectable lift of given groups (:func:`mde_proportion`), both from one formula
(:data:`SAMPLE_SIZE_FORMULA`, two-sided pooled-variance z-test).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize, stats

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.models.campaigns._checks import _z

__all__ = ["SAMPLE_SIZE_FORMULA", "sample_size_proportion", "mde_proportion"]

SAMPLE_SIZE_FORMULA = (
    "n_c = [z(1-alpha/2)*sqrt(pbar*(1-pbar)*(1+1/k)) + z(power)*sqrt(p_c(1-p_c) + p_t(1-p_t)/k)]^2 / (p_t-p_c)^2, "
    "n_t = k*n_c, pbar = (p_c + k*p_t)/(1+k): two-sided pooled-variance z-test, no continuity correction "
    "(Fleiss, Levin & Paik 2003)"
)


def _power_terms(p_c: float, p_t: float, n_t: float, n_c: float, alpha: float, power: float) -> float:
    """``z_a*sqrt(pbar qbar (1/n_t+1/n_c)) + z_b*sqrt(p_c q_c/n_c + p_t q_t/n_t)``: the detectable |difference|."""
    z_a, z_b = _z(alpha), float(stats.norm.ppf(power))
    pbar = (n_c * p_c + n_t * p_t) / (n_c + n_t)
    return (z_a * np.sqrt(pbar * (1 - pbar) * (1 / n_t + 1 / n_c))
            + z_b * np.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t))


def _check_power_args(base_rate: float, alpha: float, power: float) -> None:
    if not 0 < base_rate < 1:
        raise CrmAnalyticsError(f"base_rate must be in (0, 1), got {base_rate!r}")
    if not 0.5 <= power < 1:
        raise CrmAnalyticsError(f"power must be in [0.5, 1), got {power!r}: 0.8 is usual")
    _z(alpha)


def sample_size_proportion(base_rate: float, lift_abs: float, alpha: float = 0.05, power: float = 0.8,
                           ratio: float = 1.0) -> dict[str, Any]:
    """Customers needed per group to detect an absolute conversion lift (two-sided z-test).

    Uses the pooled-variance formula without continuity correction (Fleiss, Levin & Paik 2003)::

        n_c = [z_{1-a/2} sqrt(pbar qbar (1 + 1/k)) + z_{power} sqrt(p_c q_c + p_t q_t / k)]^2 / (p_t - p_c)^2
        n_t = k n_c,   pbar = (p_c + k p_t) / (1 + k),   k = ratio = n_t / n_c

    e.g. 10% -> 12%, alpha 0.05, power 0.8, k = 1 gives 3,841 per group.

    Returns
    -------
    dict
        ``n_treatment``, ``n_control`` (rounded up), ``n_total``, ``formula``.
    """
    _check_power_args(base_rate, alpha, power)
    p_t = base_rate + lift_abs
    if lift_abs == 0 or not 0 < p_t < 1:
        raise CrmAnalyticsError(f"lift_abs={lift_abs!r} must be non-zero and keep base_rate + lift_abs in (0, 1)")
    if ratio <= 0:
        raise CrmAnalyticsError(f"ratio = n_treatment / n_control must be positive, got {ratio!r}")
    k = float(ratio)
    pbar = (base_rate + k * p_t) / (1 + k)
    root_n = (_z(alpha) * np.sqrt(pbar * (1 - pbar) * (1 + 1 / k))
              + stats.norm.ppf(power) * np.sqrt(base_rate * (1 - base_rate) + p_t * (1 - p_t) / k))
    n_c = root_n**2 / lift_abs**2
    n_t_, n_c_ = int(np.ceil(k * n_c - 1e-9)), int(np.ceil(n_c - 1e-9))
    return {"n_treatment": n_t_, "n_control": n_c_, "n_total": n_t_ + n_c_, "formula": SAMPLE_SIZE_FORMULA}


def mde_proportion(base_rate: float, n_t: int, n_c: int, alpha: float = 0.05, power: float = 0.8) -> dict[str, Any]:
    """Minimum detectable (upward) absolute lift for given group sizes: the inverse of
    :func:`sample_size_proportion` (same formula), solved numerically for ``p_t - p_c``.

    Returns
    -------
    dict
        ``mde_abs``, ``mde_rel`` (= ``mde_abs / base_rate``), ``rate_treatment``, ``formula``.
    """
    _check_power_args(base_rate, alpha, power)
    if n_t < 2 or n_c < 2:
        raise CrmAnalyticsError(f"group sizes must be at least 2, got n_t={n_t!r}, n_c={n_c!r}")

    def gap(delta: float) -> float:
        return float(_power_terms(base_rate, base_rate + delta, n_t, n_c, alpha, power) - delta)

    top = 1 - base_rate - 1e-12
    if gap(top) > 0:
        raise CrmAnalyticsError(f"with n_t={n_t}, n_c={n_c} no lift up to a 100% rate is detectable at power "
                                f"{power}: use larger groups")
    delta = float(optimize.brentq(gap, 1e-12, top, xtol=1e-12))
    return {"mde_abs": delta, "mde_rel": delta / base_rate, "rate_treatment": base_rate + delta,
            "formula": SAMPLE_SIZE_FORMULA}

"""Differences of means (e.g. revenue per customer, in the outcome's currency): Welch t interval and
a stratified percentile bootstrap (:func:`mean_lift`).

The bootstrap draws are also used by :func:`crm_analytics.models.campaigns.effects.campaign_effect` for
its ROI interval (through the private ``_mean_lift``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.models.campaigns._checks import _values, _z

__all__ = ["mean_lift"]

_BOOT_CELLS = 4_000_000  # resampled values held in memory at once by the bootstrap


def _boot_means(y: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of *n_boot* resamples (with replacement) of *y*, in memory-bounded chunks."""
    n = y.size
    chunk = max(1, _BOOT_CELLS // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):  # loop over chunks of resamples, not over customers
        stop = min(n_boot, start + chunk)
        out[start:stop] = y[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def _boot_mean_diffs(y_t: np.ndarray, y_c: np.ndarray, n_boot: int, seed: int | None) -> np.ndarray:
    """Bootstrap distribution of ``mean(y_t) - mean(y_c)``, resampling each group separately (stratified)."""
    if int(n_boot) < 100:
        raise CrmAnalyticsError(f"n_boot={n_boot!r} is too few for a percentile interval: use at least 1000")
    st, sc = np.random.SeedSequence(seed).spawn(2)
    return _boot_means(y_t, int(n_boot), np.random.default_rng(st)) - _boot_means(y_c, int(n_boot),
                                                                                   np.random.default_rng(sc))


def _needs_bootstrap(y_t: np.ndarray, y_c: np.ndarray) -> str | None:
    """Why the normal approximation is doubtful (small groups or Cochran's rule n < 25*skew^2), else None."""
    if min(y_t.size, y_c.size) < 30:
        return "a group has fewer than 30 customers"
    for name, y in (("treatment", y_t), ("control", y_c)):
        g1 = float(stats.skew(y)) if np.ptp(y) > 0 else 0.0
        if y.size < 25 * g1**2:
            return f"{name} values are very skewed (skewness {g1:.1f}, n={y.size} < 25*skewness^2)"
    return None


def mean_lift(y_t: Any, y_c: Any, alpha: float = 0.05, bootstrap: int | None = None,
              seed: int | None = 0) -> dict[str, Any]:
    """Difference of means (e.g. revenue per customer), Welch t interval and optional bootstrap interval.

    Parameters
    ----------
    y_t, y_c : array-like
        Per-customer outcomes of the treatment and control groups (0 for non-buyers; no NaN).
    alpha : float
        Two-sided level.
    bootstrap : int or None
        ``None`` (default): add a 2,000-resample percentile bootstrap interval automatically when a
        group has fewer than 30 customers or is very skewed (Cochran's rule: ``n < 25*skewness^2``);
        ``0``: never; a positive int: always, with that many resamples. Each group is resampled
        separately.
    seed : int or None
        Seed of the bootstrap; the same seed gives the same interval.

    Returns
    -------
    dict
        ``mean_treatment``, ``mean_control``, ``lift_abs`` with ``lift_abs_low``/``_high`` (the
        bootstrap interval when one was computed, else Welch; ``ci_method`` says which),
        ``welch_low``/``welch_high``, ``bootstrap_low``/``bootstrap_high`` (NaN when not run),
        ``lift_rel`` = ``mean_t/mean_c - 1``, ``p_value`` (Welch t-test, two-sided), ``df``, ``se``,
        ``n_boot``, ``bootstrap_reason`` and group sizes.
    """
    yt, yc = _values(y_t, "y_t", min_n=2), _values(y_c, "y_c", min_n=2)
    return _mean_lift(yt, yc, alpha, bootstrap, seed)[0]


def _mean_lift(yt: np.ndarray, yc: np.ndarray, alpha: float, bootstrap: int | None,
               seed: int | None) -> tuple[dict[str, Any], np.ndarray | None]:
    """:func:`mean_lift` on validated arrays; also returns the bootstrap differences (None when not run)."""
    _z(alpha)
    mt, mc = float(yt.mean()), float(yc.mean())
    d = mt - mc
    vt, vc = yt.var(ddof=1) / yt.size, yc.var(ddof=1) / yc.size
    se = float(np.sqrt(vt + vc))
    if se > 0:
        df = float((vt + vc) ** 2 / (vt**2 / (yt.size - 1) + vc**2 / (yc.size - 1)))
        q = float(stats.t.ppf(1 - alpha / 2, df))
        p_value = float(2 * stats.t.sf(abs(d) / se, df))
    else:  # both groups constant
        df, q, p_value = float(yt.size + yc.size - 2), 0.0, float(d == 0)
    welch = (d - q * se, d + q * se)

    if bootstrap is None:
        reason = _needs_bootstrap(yt, yc)
        n_boot = 2000 if reason else 0
    else:
        if int(bootstrap) < 0:
            raise CrmAnalyticsError(f"bootstrap must be None, 0 or a positive number of resamples, got {bootstrap!r}")
        n_boot, reason = int(bootstrap), ("requested" if int(bootstrap) else None)
    boot, diffs = (float("nan"), float("nan")), None
    if n_boot:
        diffs = _boot_mean_diffs(yt, yc, n_boot, seed)
        boot = tuple(float(v) for v in np.quantile(diffs, [alpha / 2, 1 - alpha / 2]))
    lo, hi = boot if n_boot else welch
    return {
        "n_treatment": int(yt.size), "n_control": int(yc.size),
        "mean_treatment": mt, "mean_control": mc,
        "lift_abs": d, "lift_abs_low": float(lo), "lift_abs_high": float(hi),
        "lift_rel": float(mt / mc - 1) if mc != 0 else float("nan"),
        "welch_low": float(welch[0]), "welch_high": float(welch[1]),
        "bootstrap_low": boot[0], "bootstrap_high": boot[1],
        "p_value": p_value, "df": df, "se": se,
        "ci_method": "bootstrap_percentile" if n_boot else "welch",
        "n_boot": n_boot, "bootstrap_reason": reason, "alpha": alpha,
    }, diffs

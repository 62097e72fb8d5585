"""Campaign effectiveness: lift with confidence intervals, ROI, power, multi-arm tests and uplift.

Everything here is a pure function of arrays or DataFrames (no plotting, no printing); results
are plain dicts of Python floats (ready for ``report.write_metrics``) or DataFrames.

Two-group comparisons
    :func:`proportion_lift` (Newcombe hybrid-score interval, log risk-ratio relative lift,
    pooled z-test or Fisher exact), :func:`mean_lift` (Welch t, optional bootstrap percentile),
    :func:`srm_test` / :func:`srm_test_multi` (sample-ratio mismatch), :func:`balance_table`
    (standardised mean differences), :func:`mde_proportion` / :func:`sample_size_proportion`
    (power), :func:`holm` (Holm–Bonferroni), :func:`campaign_effect` (one campaign's lift, incremental
    revenue and margin, ROI with a bootstrap interval, break-even lift) and :func:`arms_vs_control`
    (several arms against one control, Holm-adjusted).

Uplift
    :func:`two_model_uplift`, :func:`class_transformation_uplift`, :func:`qini_curve`,
    :func:`uplift_curve`, :func:`qini_coefficient`, :func:`profit_curve`, :func:`best_cutoff`.

Conventions: ``t`` is the treatment indicator (1 = treated / contacted, 0 = control); ``alpha`` is the
two-sided level, so intervals have coverage ``1 - alpha``; a lift is treatment minus control.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from crm_analytics.errors import CrmAnalyticsError, DataContractError

__all__ = [
    "wilson_interval",
    "newcombe_interval",
    "proportion_lift",
    "mean_lift",
    "srm_test",
    "srm_test_multi",
    "balance_table",
    "sample_size_proportion",
    "mde_proportion",
    "holm",
    "campaign_effect",
    "arms_vs_control",
    "two_model_uplift",
    "class_transformation_uplift",
    "qini_curve",
    "uplift_curve",
    "qini_coefficient",
    "profit_curve",
    "best_cutoff",
]

SAMPLE_SIZE_FORMULA = (
    "n_c = [z(1-alpha/2)*sqrt(pbar*(1-pbar)*(1+1/k)) + z(power)*sqrt(p_c(1-p_c) + p_t(1-p_t)/k)]^2 / (p_t-p_c)^2, "
    "n_t = k*n_c, pbar = (p_c + k*p_t)/(1+k): two-sided pooled-variance z-test, no continuity correction "
    "(Fleiss, Levin & Paik 2003)"
)

_BOOT_CELLS = 4_000_000  # resampled values held in memory at once by the bootstrap


# ----------------------------------------------------------------------------------------------
# small validators
# ----------------------------------------------------------------------------------------------

def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise CrmAnalyticsError(f"alpha must be in (0, 1), got {alpha!r}: use e.g. alpha=0.05 for 95% intervals")
    return float(stats.norm.ppf(1 - alpha / 2))


def _counts(x: Any, n: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x_arr, n_arr = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    if np.any(n_arr <= 0) or np.any(x_arr < 0) or np.any(x_arr > n_arr) or np.any(~np.isfinite(x_arr + n_arr)):
        raise CrmAnalyticsError(
            f"{name}: need 0 <= successes <= trials and trials > 0, got successes={x!r}, trials={n!r}; "
            "pass counts of converted customers and of customers in the group")
    return x_arr, n_arr


def _values(y: Any, name: str, *, min_n: int = 1) -> np.ndarray:
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size < min_n:
        raise CrmAnalyticsError(f"{name} has {arr.size} values; at least {min_n} are needed")
    if not np.all(np.isfinite(arr)):
        raise CrmAnalyticsError(
            f"{name} has {int((~np.isfinite(arr)).sum())} missing or infinite values: fill revenue of "
            "non-buyers with 0 and drop customers with unknown outcomes before calling")
    return arr


def _treatment(t: Any, name: str = "t") -> np.ndarray:
    arr = np.asarray(t)
    if arr.dtype == bool:
        arr = arr.astype(int)
    arr = np.asarray(arr, dtype=float).ravel()
    if not np.all(np.isin(arr, (0.0, 1.0))):
        raise CrmAnalyticsError(f"{name} must be 0/1 (1 = treated, 0 = control); found values "
                                f"{sorted(set(np.unique(arr).tolist()) - {0.0, 1.0})[:5]}")
    if arr.min() == arr.max():
        raise CrmAnalyticsError(f"{name} has only {'treated' if arr[0] else 'control'} rows: both groups are needed")
    return arr.astype(int)


def _columns(df: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise CrmAnalyticsError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataContractError(f"{where}: column(s) {missing} not found; the frame has {list(df.columns)}")


def _is_binary(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return True
    return bool(pd.api.types.is_numeric_dtype(s) and s.dropna().isin([0, 1]).all())


# ----------------------------------------------------------------------------------------------
# proportions
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# means (revenue per customer)
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# design checks
# ----------------------------------------------------------------------------------------------

def srm_test_multi(counts: Sequence[int] | Mapping[Any, int], expected_shares: Sequence[float] | None = None,
                   threshold: float = 0.001) -> dict[str, Any]:
    """Sample-ratio-mismatch test for *k* arms: chi-square goodness of fit of the arm sizes.

    Parameters
    ----------
    counts : sequence or mapping of int
        Customers per arm (a mapping keeps the arm labels).
    expected_shares : sequence of float, optional
        Designed share of each arm (same order; must sum to 1). Default: equal shares.
    threshold : float
        A p-value below it flags a mismatch (``srm=True``); 0.001 is the usual choice because a
        real mismatch is a bug in assignment, not a subtle effect.

    Returns
    -------
    dict
        ``statistic``, ``df``, ``p_value``, ``srm``, ``observed_shares``, ``expected_shares``, ``n``.
    """
    labels = list(counts.keys()) if isinstance(counts, Mapping) else None
    obs = np.asarray(list(counts.values()) if labels is not None else counts, dtype=float)
    if obs.ndim != 1 or obs.size < 2 or np.any(obs < 0) or obs.sum() <= 0:
        raise CrmAnalyticsError(f"counts must be at least two non-negative arm sizes, got {counts!r}")
    exp_sh = np.full(obs.size, 1 / obs.size) if expected_shares is None else np.asarray(expected_shares, float)
    if exp_sh.shape != obs.shape or np.any(exp_sh <= 0) or abs(exp_sh.sum() - 1) > 1e-6:
        raise CrmAnalyticsError(
            f"expected_shares {expected_shares!r} must give one positive share per arm ({obs.size}) summing to 1")
    n = obs.sum()
    res = stats.chisquare(obs, n * exp_sh)
    obs_sh = obs / n
    name = (lambda v: dict(zip(labels, v.tolist()))) if labels is not None else (lambda v: v.tolist())
    return {"statistic": float(res.statistic), "df": int(obs.size - 1), "p_value": float(res.pvalue),
            "srm": bool(res.pvalue < threshold), "observed_shares": name(obs_sh), "expected_shares": name(exp_sh),
            "n": int(n), "threshold": threshold}


def srm_test(n_t: int, n_c: int, expected_share_t: float = 0.5, threshold: float = 0.001) -> dict[str, Any]:
    """Sample-ratio-mismatch test of a two-group split (chi-square goodness of fit, 1 df).

    Returns
    -------
    dict
        ``statistic``, ``p_value``, ``srm`` (p below *threshold*), ``observed_share_t``,
        ``expected_share_t``, ``n``.
    """
    if not 0 < expected_share_t < 1:
        raise CrmAnalyticsError(f"expected_share_t must be in (0, 1), got {expected_share_t!r}")
    r = srm_test_multi([n_t, n_c], [expected_share_t, 1 - expected_share_t], threshold)
    return {"statistic": r["statistic"], "p_value": r["p_value"], "srm": r["srm"],
            "observed_share_t": r["observed_shares"][0], "expected_share_t": expected_share_t, "n": r["n"],
            "threshold": threshold}


def balance_table(features_df: pd.DataFrame, group: str | Sequence[Any] | pd.Series,
                  treatment: Any = None, threshold: float = 0.1) -> pd.DataFrame:
    """Covariate balance between two groups: standardised mean difference (SMD) per feature.

    ``SMD = (mean_t - mean_c) / sqrt((var_t + var_c) / 2)`` (sample variances). Numeric and boolean
    columns are used as they are; other columns are one-hot encoded, one row per level
    (``"column=level"``). Missing values are skipped.

    Parameters
    ----------
    features_df : DataFrame
        One row per customer.
    group : str or array-like
        Name of the group column in *features_df*, or the group labels aligned with its rows.
    treatment : label, optional
        Which label is the treatment. Default: ``"treatment"`` when the labels are
        treatment/control, ``1``/``True`` when they are 0/1 or boolean.
    threshold : float
        ``imbalanced`` is ``|SMD| > threshold`` (0.1 by convention).

    Returns
    -------
    DataFrame
        Index ``feature``; columns ``mean_treatment``, ``mean_control``, ``smd``, ``imbalanced``.
    """
    if isinstance(group, str):
        _columns(features_df, [group], "balance_table")
        g, feats = features_df[group], features_df.drop(columns=[group])
    else:
        _columns(features_df, [], "balance_table")
        g, feats = pd.Series(np.asarray(group), index=features_df.index), features_df
        if len(g) != len(features_df):
            raise CrmAnalyticsError(f"group has {len(g)} labels for {len(features_df)} rows")
    labels = set(pd.unique(g.dropna()).tolist())
    if len(labels) != 2:
        raise CrmAnalyticsError(f"balance_table needs exactly two groups, found {sorted(map(str, labels))}")
    if treatment is None:
        for cand in ("treatment", 1, True):
            if cand in labels:
                treatment = cand
                break
        else:
            raise CrmAnalyticsError(
                f"cannot tell which of {sorted(map(str, labels))} is the treatment: pass treatment=")
    if treatment not in labels:
        raise CrmAnalyticsError(f"treatment label {treatment!r} not among the groups {sorted(map(str, labels))}")
    numeric = feats.select_dtypes(include=["number", "bool"]).astype(float)
    other = feats.drop(columns=numeric.columns)
    if len(other.columns):
        dummies = pd.get_dummies(other.astype("object"), prefix_sep="=", dtype=float)
        numeric = pd.concat([numeric, dummies], axis=1)
    if numeric.shape[1] == 0:
        raise CrmAnalyticsError("balance_table: features_df has no feature columns besides the group")
    is_t = (g == treatment).to_numpy()
    t_part, c_part = numeric[is_t], numeric[~is_t & g.notna().to_numpy()]
    mt, mc = t_part.mean(), c_part.mean()
    pooled = np.sqrt((t_part.var(ddof=1) + c_part.var(ddof=1)) / 2)
    diff = mt - mc
    smd = (diff / pooled.where(pooled > 0)).where(pooled > 0, np.sign(diff) * np.inf).where(diff != 0, 0.0)
    out = pd.DataFrame({"mean_treatment": mt, "mean_control": mc, "smd": smd.astype(float)})
    out["imbalanced"] = out["smd"].abs() > threshold
    out.index.name = "feature"
    return out


# ----------------------------------------------------------------------------------------------
# power
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# multiple testing
# ----------------------------------------------------------------------------------------------

def holm(pvalues: Any) -> np.ndarray | pd.Series:
    """Holm–Bonferroni adjusted p-values (step-down; controls the family-wise error rate).

    With the *m* p-values sorted ``p_(1) <= ... <= p_(m)``, the adjusted value of ``p_(i)`` is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``. NaNs are kept and do not count in *m*. A Series
    comes back as a Series with the same index.
    """
    is_series = isinstance(pvalues, pd.Series)
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise CrmAnalyticsError("holm expects a one-dimensional list of p-values")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise CrmAnalyticsError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    vals = p[ok]
    m = vals.size
    order = np.argsort(vals, kind="mergesort")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * vals[order]))
    adj = np.empty(m)
    adj[order] = adj_sorted
    out[ok] = adj
    return pd.Series(out, index=pvalues.index, name=pvalues.name) if is_series else out


# ----------------------------------------------------------------------------------------------
# one campaign, several arms
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# uplift models
# ----------------------------------------------------------------------------------------------

def _default_classifier(seed: int | None) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100,
                                          l2_regularization=1.0, random_state=seed)


def _default_regressor(seed: int | None) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100,
                                         l2_regularization=1.0, random_state=seed)


def _predict(model: Any, X: Any) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(X)  # a classifier fitted on one class may still return two columns
        classes = list(model.classes_)
        return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(proba))
    return np.asarray(model.predict(X), dtype=float)


def _uplift_inputs(X_train: Any, y_train: Any, t_train: Any) -> tuple[np.ndarray, np.ndarray]:
    y, t = _values(y_train, "y_train"), _treatment(t_train, "t_train")
    if len(y) != len(t) or len(X_train) != len(y):
        raise CrmAnalyticsError(f"X_train ({len(X_train)} rows), y_train ({len(y)}) and t_train ({len(t)}) "
                                "must have the same length")
    return y, t


def _rows(X: Any, mask: np.ndarray) -> Any:
    return X[mask] if not isinstance(X, (pd.DataFrame, pd.Series)) else X.loc[mask]


def two_model_uplift(X_train: Any, y_train: Any, t_train: Any, X_test: Any, model: Any = None,
                     seed: int | None = 0) -> np.ndarray:
    """Two-model ("T-learner") uplift: ``P(y | x, treated) - P(y | x, control)``.

    One copy of *model* is fitted on the treated rows and one on the control rows. The default is a
    regularised :class:`~sklearn.ensemble.HistGradientBoostingClassifier` for a 0/1 outcome and the
    matching regressor for a numeric one (e.g. revenue). A classifier contributes ``predict_proba[:, 1]``,
    a regressor ``predict``.

    Returns
    -------
    ndarray
        Predicted uplift of each row of *X_test*.
    """
    y, t = _uplift_inputs(X_train, y_train, t_train)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    base = model if model is not None else (_default_classifier(seed) if binary else _default_regressor(seed))
    preds = []
    for arm in (1, 0):
        mask = t == arm
        fitted = clone(base).fit(_rows(X_train, mask), y[mask].astype(int) if binary and hasattr(base, "predict_proba")
                                 else y[mask])
        preds.append(_predict(fitted, X_test))
    return preds[0] - preds[1]


def class_transformation_uplift(X_train: Any, y_train: Any, t_train: Any, X_test: Any, model: Any = None,
                                seed: int | None = 0, *, method: str = "weighted",
                                treatment_share: float | None = None) -> np.ndarray:
    """Single-model uplift through a transformed outcome.

    ``method="weighted"`` (default, any treatment share *p*): regress the transformed outcome
    ``y* = y (t - p) / (p (1 - p))`` on *x*; in a randomised test ``E[y* | x]`` equals the uplift
    ``E[y | x, t=1] - E[y | x, t=0]``, for binary or numeric *y*. The default model is a regularised
    HistGradientBoostingRegressor; *p* is *treatment_share* (the designed share) or the observed
    share of treated training rows.

    ``method="jaskowski"`` (Jaśkowski & Jaroszewicz 2012, binary *y*, 50/50 split only): classify
    ``Z = y t + (1 - y)(1 - t)``; uplift = ``2 P(Z=1 | x) - 1``. Refused when the treated share is
    not within 0.45–0.55, where the identity no longer holds.

    Returns
    -------
    ndarray
        Predicted uplift of each row of *X_test*.
    """
    y, t = _uplift_inputs(X_train, y_train, t_train)
    p = float(t.mean()) if treatment_share is None else float(treatment_share)
    if not 0 < p < 1:
        raise CrmAnalyticsError(f"treatment_share must be in (0, 1), got {treatment_share!r}")
    if method == "weighted":
        y_star = y * (t - p) / (p * (1 - p))
        fitted = clone(model if model is not None else _default_regressor(seed)).fit(X_train, y_star)
        return np.asarray(fitted.predict(X_test), dtype=float)
    if method == "jaskowski":
        if not np.isin(y, (0.0, 1.0)).all():
            raise CrmAnalyticsError("method='jaskowski' needs a 0/1 outcome: use method='weighted' for revenue")
        if abs(p - 0.5) > 0.05:
            raise CrmAnalyticsError(f"method='jaskowski' assumes a 50/50 split but {p:.1%} of rows are treated: "
                                    "use method='weighted'")
        z = (y * t + (1 - y) * (1 - t)).astype(int)
        fitted = clone(model if model is not None else _default_classifier(seed)).fit(X_train, z)
        return 2 * _predict(fitted, X_test) - 1
    raise CrmAnalyticsError(f"method must be 'weighted' or 'jaskowski', got {method!r}")


# ----------------------------------------------------------------------------------------------
# uplift evaluation
# ----------------------------------------------------------------------------------------------

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

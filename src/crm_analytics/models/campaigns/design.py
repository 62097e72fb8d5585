"""Design checks of a randomised test: sample-ratio mismatch (:func:`srm_test`,
:func:`srm_test_multi`) and covariate balance (:func:`balance_table`, standardised mean differences).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.models.campaigns._checks import _columns

__all__ = ["srm_test", "srm_test_multi", "balance_table"]


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

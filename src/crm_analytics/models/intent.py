"""Purchase intention: which sessions will buy, from what a session looked like (pages, durations,
page value, visitor type, month…), scored on a holdout beside a simple baseline.

For session-level exports such as UCI Online Shoppers Purchasing Intention (Sakar et al. 2019),
one row per session; :mod:`crm_analytics.models.behaviour` builds such rows from an event log.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crm_analytics.errors import DataContractError, ParamsError

__all__ = ["intent_model"]


def _auc_interval(auc: float, n_pos: int, n_neg: int, alpha: float) -> tuple[float, float]:
    """Hanley & McNeil (1982) standard error of a ROC AUC, as a normal interval clipped to [0, 1]."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg))
    z = stats.norm.ppf(1 - alpha / 2)
    return float(max(0.0, auc - z * se)), float(min(1.0, auc + z * se))


def intent_model(sessions_frame: pd.DataFrame, *, target: str, features: Sequence[str], seed: int = 0,
                 test_share: float = 0.3, baseline_feature: str | None = "PageValues", alpha: float = 0.05,
                 importance_repeats: int = 3) -> dict[str, Any]:
    """A purchase-intention classifier on one row per session, scored on a holdout.

    Fits scikit-learn's ``HistGradientBoostingClassifier`` (text, boolean and categorical features
    as native categories) on a stratified ``1 - test_share`` of the rows and reports the holdout ROC
    AUC (Hanley–McNeil interval) beside two baselines on *baseline_feature*: the rule
    ``feature > 0`` and a logistic regression on that feature alone. Permutation importance on the
    holdout says which features carry the signal.

    Returns
    -------
    dict
        ``n_train, n_test, positive_rate, roc_auc, roc_auc_low, roc_auc_high``, ``baseline_rule_auc``,
        ``baseline_logistic_auc`` (missing without *baseline_feature*), ``importance`` (list of
        ``{"feature", "importance"}``, largest first), ``seed``, ``features``.

    Raises
    ------
    DataContractError
        When *target* or a feature is missing, or the target is not 0/1 with both classes.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    features = list(features)
    missing = [c for c in [target, *features] if c not in sessions_frame.columns]
    if missing:
        raise DataContractError(f"sessions_frame: column(s) {missing} not found; the frame has "
                                f"{list(sessions_frame.columns)}")
    if not 0 < test_share < 1:
        raise ParamsError(f"test_share={test_share!r} must be between 0 and 1 (e.g. 0.3)")
    y = sessions_frame[target]
    if not (pd.api.types.is_bool_dtype(y) or y.dropna().isin([0, 1]).all()) or y.isna().any():
        raise DataContractError(f"{target} must be boolean or 0/1 without missing values")
    y = y.astype(int).to_numpy()
    if y.min() == y.max():
        raise DataContractError(f"{target} has only one class ({y[0]}); both buyers and non-buyers are needed")
    X = sessions_frame[features].copy()
    for c in features:
        if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]):
            X[c] = X[c].astype(str).astype("category")
    idx_train, idx_test = train_test_split(np.arange(len(X)), test_size=test_share, random_state=seed, stratify=y)
    model = HistGradientBoostingClassifier(random_state=seed, categorical_features="from_dtype")
    model.fit(X.iloc[idx_train], y[idx_train])
    score = model.predict_proba(X.iloc[idx_test])[:, 1]
    yt = y[idx_test]
    auc = float(roc_auc_score(yt, score))
    low, high = _auc_interval(auc, int(yt.sum()), int(len(yt) - yt.sum()), alpha)
    out: dict[str, Any] = {"n_train": int(len(idx_train)), "n_test": int(len(idx_test)),
                           "positive_rate": float(y.mean()), "roc_auc": auc, "roc_auc_low": low,
                           "roc_auc_high": high, "baseline_rule_auc": None, "baseline_logistic_auc": None,
                           "seed": seed, "features": features}
    if baseline_feature is not None and baseline_feature in sessions_frame.columns:
        b = pd.to_numeric(sessions_frame[baseline_feature], errors="coerce").fillna(0).to_numpy(float)
        out["baseline_rule_auc"] = float(roc_auc_score(yt, (b[idx_test] > 0).astype(float)))
        lr = LogisticRegression().fit(np.log1p(np.clip(b[idx_train], 0, None))[:, None], y[idx_train])
        out["baseline_logistic_auc"] = float(roc_auc_score(
            yt, lr.predict_proba(np.log1p(np.clip(b[idx_test], 0, None))[:, None])[:, 1]))
    imp = permutation_importance(model, X.iloc[idx_test], yt, scoring="roc_auc", n_repeats=importance_repeats,
                                 random_state=seed)
    order = np.argsort(-imp.importances_mean)
    out["importance"] = [{"feature": features[i], "importance": float(imp.importances_mean[i])} for i in order]
    return out

"""Uplift models: who responds to the campaign because of it. :func:`two_model_uplift` (T-learner)
and :func:`class_transformation_uplift` (transformed outcome), each returning the predicted uplift of
every test row in the outcome's unit (conversion probability or revenue).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.models.campaigns._checks import _treatment, _values

__all__ = ["two_model_uplift", "class_transformation_uplift"]


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

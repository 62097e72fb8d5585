"""Machine-learned churn: will a customer buy again in the next N days?

Time-split design, so the model is scored on a period it never saw:

- **train**: features as of ``cutoff - horizon``, label = no purchase in the following ``horizon`` days
  (which ends at ``cutoff``);
- **test**: features as of ``cutoff``, label = no purchase in ``(cutoff, cutoff + horizon]`` — the same
  holdout on which BG/NBD's P(alive) is scored.

Features per customer (only what was known at the feature date) come from
:mod:`crm_analytics.features.customer`: RFM (``recency_days, orders, revenue, aov``), tenure, order
channel mix, returns, discount use, web/app sessions and cart adds in the last 90 days,
complaints, campaign messages opened/clicked, review ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from crm_analytics.errors import ModelFitError
from crm_analytics.features import customer as features_customer
from crm_analytics.ingest.tables import purchases

__all__ = ["customer_features", "churn_labels", "ChurnModel", "fit_churn_model", "score_churn", "lift_table",
           "calibration_table", "feature_label"]

DAY = pd.Timedelta(days=1)


def customer_features(tables: dict[str, pd.DataFrame] | str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The churn model's inputs: :func:`crm_analytics.features.customer.customer_features` of every customer
    with a purchase on or before *as_of*, from data up to *as_of* only, without the purchase timestamps
    (``recency_days`` and ``tenure_days`` carry them).

    Raises
    ------
    ModelFitError
        When nobody bought on or before *as_of* (move the churn cutoff later).
    """
    try:
        f = features_customer.customer_features(tables, as_of)
    except ModelFitError as exc:
        raise ModelFitError(f"{exc}: move the churn cutoff later") from None
    return f.drop(columns=features_customer.TIMESTAMP_COLUMNS)


def churn_labels(orders: pd.DataFrame, customers: pd.Index, as_of: pd.Timestamp, horizon_days: int) -> pd.Series:
    """1 = no purchase in ``(as_of, as_of + horizon_days]``, for each customer in *customers*."""
    b = purchases(orders)
    window = b[(b["order_ts"] > as_of) & (b["order_ts"] <= as_of + horizon_days * DAY)]
    active = set(window["customer_id"])
    return pd.Series([0 if c in active else 1 for c in customers], index=customers, name="churned", dtype="int64")


@dataclass
class ChurnModel:
    model: HistGradientBoostingClassifier
    features: list[str]
    train_as_of: pd.Timestamp
    test_as_of: pd.Timestamp
    horizon_days: int
    X_test: pd.DataFrame
    y_test: pd.Series
    score_test: pd.Series  # predicted probability of churn
    metrics: dict
    importance: pd.DataFrame


def score_churn(y: pd.Series, score: pd.Series) -> dict:
    """ROC AUC, PR AUC, Brier score, churn base rate and lift in the top decile of *score*."""
    y = np.asarray(y)
    s = np.asarray(score)
    if len(np.unique(y)) < 2:
        raise ModelFitError("the holdout has only one class (everyone churned or no one did): choose another "
                            "horizon or cutoff")
    top = s >= np.quantile(s, 0.9)
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "brier": float(brier_score_loss(y, np.clip(s, 0, 1))),
        "base_rate": float(y.mean()),
        "top_decile_rate": float(y[top].mean()),
        "top_decile_lift": float(y[top].mean() / y.mean()) if y.mean() else None,
    }


def fit_churn_model(tables: dict[str, pd.DataFrame], cutoff: pd.Timestamp, horizon_days: int = 90,
                    seed: int = 0) -> ChurnModel:
    """Train on features at ``cutoff - horizon`` (labels up to *cutoff*), score on features at *cutoff*."""
    orders = tables["orders"]
    train_as_of = cutoff - horizon_days * DAY
    X_train = customer_features(tables, train_as_of)
    y_train = churn_labels(orders, X_train.index, train_as_of, horizon_days)
    X_test = customer_features(tables, cutoff)
    y_test = churn_labels(orders, X_test.index, cutoff, horizon_days)
    cols = sorted(set(X_train.columns) | set(X_test.columns))
    X_train, X_test = X_train.reindex(columns=cols), X_test.reindex(columns=cols)
    if y_train.nunique() < 2 or len(y_train) < 50:
        raise ModelFitError(f"too little history before {train_as_of:%Y-%m-%d} to learn churn "
                            f"({len(y_train)} customers): shorten churn_horizon_days or move the cutoff later")
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.06, max_leaf_nodes=15,
                                           l2_regularization=1.0, random_state=seed)
    model.fit(X_train, y_train)
    score = pd.Series(model.predict_proba(X_test)[:, 1], index=X_test.index, name="p_churn_ml")
    metrics = score_churn(y_test, score)
    n_imp = min(len(X_test), 5000)
    sample = X_test.sample(n=n_imp, random_state=seed) if len(X_test) > n_imp else X_test
    imp = permutation_importance(model, sample, y_test.loc[sample.index], scoring="roc_auc", n_repeats=5,
                                 random_state=seed)
    importance = pd.DataFrame({"feature": cols, "auc_drop": imp.importances_mean, "sd": imp.importances_std})
    importance = importance.sort_values("auc_drop", ascending=False).reset_index(drop=True)
    return ChurnModel(model, cols, train_as_of, cutoff, horizon_days, X_test, y_test, score, metrics, importance)


def lift_table(y: pd.Series, score: pd.Series, bins: int = 10) -> pd.DataFrame:
    """Churn rate and lift per decile of the score (decile 1 = highest risk)."""
    df = pd.DataFrame({"y": np.asarray(y), "s": np.asarray(score)})
    df["decile"] = bins - pd.qcut(df["s"].rank(method="first"), bins, labels=False)
    t = df.groupby("decile").agg(customers=("y", "size"), churn_rate=("y", "mean"), mean_score=("s", "mean"))
    t["lift"] = t["churn_rate"] / df["y"].mean()
    return t.reset_index()


def calibration_table(y: pd.Series, score: pd.Series, bins: int = 10) -> pd.DataFrame:
    """Mean predicted versus observed churn per score bin (equal-count bins)."""
    df = pd.DataFrame({"y": np.asarray(y), "s": np.asarray(score)})
    df["bin"] = pd.qcut(df["s"].rank(method="first"), bins, labels=False)
    return df.groupby("bin").agg(predicted=("s", "mean"), observed=("y", "mean"), customers=("y", "size")).reset_index()


def feature_label(name: str) -> str:
    """A feature of :func:`customer_features` as a report names it, in the report language
    (``recency_days`` -> ``Days since last order``; ``channel_share_app`` -> ``Share of orders via app``)."""
    from crm_analytics import i18n

    if name.startswith("channel_share_") and (i18n.COLUMN, name) not in i18n.catalog("en"):
        return i18n.t("Share of orders via {channel}", channel=i18n.value(name[len("channel_share_"):]))
    return i18n.label(name)

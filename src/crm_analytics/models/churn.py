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

from crm_analytics import compute
from crm_analytics.errors import ModelFitError
from crm_analytics.features import customer as features_customer
from crm_analytics.features.summary import purchases_expr
from crm_analytics.ingest.tables import ParquetTable, ibis_table, purchases

__all__ = ["customer_features", "churn_labels", "buyers_between", "ChurnModel", "fit_churn_model", "score_churn",
           "lift_table", "calibration_table", "feature_label"]

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


def buyers_between(orders: pd.DataFrame | ParquetTable, after: pd.Timestamp, upto: pd.Timestamp) -> pd.Index:
    """The distinct customers with a purchase (:func:`crm_analytics.ingest.tables.purchases`) in
    ``(after, upto]``. A :class:`~crm_analytics.ingest.tables.ParquetTable` of the clean orders is
    queried on the engine where it lies (only the ids come back); a DataFrame is filtered in pandas."""
    after, upto = pd.Timestamp(after), pd.Timestamp(upto)
    if isinstance(orders, ParquetTable):
        import ibis

        def lit(ts: pd.Timestamp) -> ibis.Value:  # microseconds, the clean tables' precision: x > ts, x <= ts
            ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
            return ibis.literal(ts.floor("us").to_pydatetime(), type="timestamp('UTC')")

        with compute.session() as db:
            b = purchases_expr(ibis_table(db, orders, ["customer_id", "order_ts", "status"]))
            w = b.filter((b.order_ts > lit(after)) & (b.order_ts <= lit(upto)))
            ids = w.select("customer_id").distinct().to_pyarrow()["customer_id"]
        return pd.Index(ids.to_pandas(), name="customer_id")
    b = purchases(orders)
    window = b.loc[(b["order_ts"] > after) & (b["order_ts"] <= upto), "customer_id"]
    return pd.Index(window.unique(), name="customer_id")


def churn_labels(orders: pd.DataFrame | ParquetTable, customers: pd.Index, as_of: pd.Timestamp,
                 horizon_days: int) -> pd.Series:
    """1 = no purchase in ``(as_of, as_of + horizon_days]``, for each customer in *customers*.

    *orders*: the clean orders in pandas, or a :class:`~crm_analytics.ingest.tables.ParquetTable` of them
    (the buyers of the window are found by the engine: :func:`buyers_between`)."""
    active = buyers_between(orders, as_of, as_of + horizon_days * DAY)
    churned = ~np.asarray(customers.isin(active), dtype=bool)
    return pd.Series(churned.astype("int64"), index=customers, name="churned")


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


def fit_churn_model(tables: dict[str, pd.DataFrame | ParquetTable], cutoff: pd.Timestamp, horizon_days: int = 90,
                    seed: int = 0) -> ChurnModel:
    """Train on features at ``cutoff - horizon`` (labels up to *cutoff*), score on features at *cutoff*.

    *tables*: the clean tables as DataFrames or as :class:`~crm_analytics.ingest.tables.ParquetTable`
    handles (:func:`crm_analytics.ingest.tables.clean_table`), which the features and labels read on the
    engine where the files lie; both give the same model."""
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
    del X_train, y_train  # one row per customer: millions of rows in a large shop
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

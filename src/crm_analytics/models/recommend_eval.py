"""Offline evaluation of the recommenders in :mod:`crm_analytics.models.recommend`: one protocol for every model.

Protocol
--------
- **Time split** at ``eval_cutoff``: models learn from purchases (and product views) before it and
  are tested on purchases on or after it (up to ``test_end`` when given).
- **Evaluated customers**: those with a purchase in training and at least one purchase in the test
  period of a product they had not bought in training. Their *relevant* products are exactly those
  new products (a product bought again is not a recommendation's success: recommenders leave out
  what the customer already bought).
- **Metrics at k** (10 by default) over the evaluated customers: hit rate (share with at least one
  relevant product in their top k), precision (hits / k), recall (hits / relevant), NDCG (binary
  gains, ideal ranking of ``min(relevant, k)`` hits), catalogue coverage (share of the training
  catalogue — products bought or viewed before the cutoff — recommended to anyone) and novelty (mean
  ``-log2`` of the share of training customers who bought each recommended product).
- **Intervals**: a percentile bootstrap over customers (seeded) for hit rate, and a *paired* bootstrap
  (the same resampled customers for both models) for each model's hit rate minus the baseline's;
  a model beats the baseline when that interval lies above 0.
- **Tuning** (:func:`tune`) uses a validation split cut from training only: the last
  ``validation_days`` before ``eval_cutoff`` play the test period; the test period is never touched.
- **Default cutoff** (:func:`default_eval_cutoff`): a dataset without one holds out its last 30 days
  (``online_retail``'s published split is 2011-11-09, the last month).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.models.recommend import (
    Interactions,
    Popularity,
    build_interactions,
    interaction_counts,
)

__all__ = [
    "DEFAULT_HOLDOUT_DAYS",
    "Split",
    "bootstrap_interval",
    "choose_model",
    "default_eval_cutoff",
    "evaluate_models",
    "paired_bootstrap_interval",
    "score_recommendations",
    "time_split",
    "truth_category_hit_rate",
    "tune",
]

#: days held out when a dataset names no ``eval_cutoff``
DEFAULT_HOLDOUT_DAYS = 30


def _utc(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"{name}={value!r} is not a date (expected ISO 8601, e.g. '2011-11-09')") from exc
    if ts is pd.NaT:
        raise ParamsError(f"{name} is missing; give a date (ISO 8601) or use default_eval_cutoff(orders)")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def default_eval_cutoff(orders: pd.DataFrame, holdout_days: int = DEFAULT_HOLDOUT_DAYS) -> pd.Timestamp:
    """The cutoff for a dataset without one: midnight (UTC) after the last purchase, minus *holdout_days*.

    Examples
    --------
    >>> o = pd.DataFrame({"customer_id": ["a"], "status": ["completed"],
    ...                   "order_ts": pd.to_datetime(["2024-03-31 15:00"], utc=True)})
    >>> str(default_eval_cutoff(o).date())
    '2024-03-02'
    """
    mask = orders["customer_id"].notna() & orders["status"].isin(["completed", "returned"])
    last = pd.to_datetime(orders.loc[mask, "order_ts"], utc=True).max()
    if pd.isna(last):
        raise DataContractError("orders: no completed or returned order of a known customer; no cutoff to derive")
    return last.normalize() + pd.Timedelta(days=1) - pd.Timedelta(days=holdout_days)


@dataclass
class Split:
    """A time split for evaluation.

    Attributes
    ----------
    eval_cutoff : Timestamp
    train_counts : DataFrame
        :func:`crm_analytics.models.recommend.interaction_counts` before the cutoff (views included when given).
    relevant : DataFrame
        ``customer_id, product_id``: the evaluated customers' test purchases of products they had not
        bought in training.
    evaluated : ndarray
        Evaluated customer ids (sorted).
    """

    eval_cutoff: pd.Timestamp
    train_counts: pd.DataFrame
    relevant: pd.DataFrame
    evaluated: np.ndarray
    test_end: pd.Timestamp | None = None
    info: dict = field(default_factory=dict)


def time_split(orders: pd.DataFrame, order_lines: pd.DataFrame, *, eval_cutoff: Any, events: Any = None,
               test_end: Any = None, train_start: Any = None) -> Split:
    """Split purchases at *eval_cutoff* and find the evaluated customers (see the module's protocol).

    Parameters
    ----------
    orders, order_lines : DataFrame
        Clean canonical tables.
    eval_cutoff : date-like
        Training is ``train_start <= ts < eval_cutoff``; the test period ``eval_cutoff <= ts < test_end``.
    events : DataFrame or tables.ParquetTable, optional
        Product views before the cutoff join the training interactions.
    test_end, train_start : date-like, optional

    Returns
    -------
    Split

    Raises
    ------
    DataContractError
        When no customer qualifies for evaluation (say which side is empty and how to fix it).
    """
    cutoff = _utc(eval_cutoff, "eval_cutoff")
    end = None if test_end is None else _utc(test_end, "test_end")
    start = None if train_start is None else _utc(train_start, "train_start")
    train = interaction_counts(orders, order_lines, events, start=start, end=cutoff)
    test = interaction_counts(orders, order_lines, start=cutoff, end=end)
    bought = train.loc[train["n_orders"] > 0, ["customer_id", "product_id"]]
    buyers = pd.Index(bought["customer_id"].unique())
    test = test.loc[test["customer_id"].isin(buyers), ["customer_id", "product_id"]]
    seen = test.merge(bought.assign(_seen=True), on=["customer_id", "product_id"], how="left")["_seen"].notna()
    relevant = test.loc[~seen.to_numpy()].reset_index(drop=True)
    evaluated = np.sort(relevant["customer_id"].unique().to_numpy(dtype=object))
    info = {"train_customers": len(buyers), "test_customers_with_history": int(test["customer_id"].nunique()),
            "evaluated_customers": len(evaluated), "relevant_pairs": len(relevant)}
    if len(buyers) == 0:
        raise DataContractError(f"no purchases before eval_cutoff={cutoff.date()}; move the cutoff later")
    if len(evaluated) == 0:
        raise DataContractError(f"no customer bought before eval_cutoff={cutoff.date()} and bought a new product "
                                "on or after it; move the cutoff earlier (default_eval_cutoff holds out 30 days)")
    return Split(cutoff, train, relevant, evaluated, end, info)


def score_recommendations(recs: pd.DataFrame, relevant: pd.DataFrame, evaluated: Any, *, k: int = 10,
                          n_buyers: pd.Series | None = None, n_train_customers: int | None = None,
                          catalogue_size: int | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-customer and overall metrics at *k* of *recs* against *relevant* products.

    Parameters
    ----------
    recs : DataFrame
        ``customer_id, rank, product_id`` (ranks from 1).
    relevant : DataFrame
        ``customer_id, product_id``: what each evaluated customer went on to buy (new products only).
    evaluated : array-like
        The customers averaged over (a customer without recommendations scores 0).
    k : int
    n_buyers : Series, optional
        Distinct training buyers per product id (for novelty), with *n_train_customers*.
    catalogue_size : int, optional
        Products that could be recommended (for coverage).

    Returns
    -------
    (per_customer, overall)
        ``per_customer``: ``customer_id, n_relevant, hits, hit, precision, recall, ndcg``;
        ``overall``: ``hit_rate, precision, recall, ndcg, coverage, novelty, evaluated_customers``.
    """
    ev = pd.Index(pd.Series(np.asarray(evaluated, dtype=object)).astype("string"), name="customer_id")
    r = recs.loc[recs["rank"] <= k, ["customer_id", "rank", "product_id"]].copy()
    r["customer_id"] = r["customer_id"].astype("string")
    r["product_id"] = r["product_id"].astype("string")
    r = r[r["customer_id"].isin(ev)]
    rel = relevant[["customer_id", "product_id"]].astype("string").drop_duplicates()
    n_rel = rel.groupby("customer_id").size().reindex(ev, fill_value=0)
    hit_rows = r.merge(rel, on=["customer_id", "product_id"], how="inner")
    hits = hit_rows.groupby("customer_id").size().reindex(ev, fill_value=0)
    dcg = (1.0 / np.log2(hit_rows["rank"].to_numpy() + 1.0))
    dcg = pd.Series(dcg, index=hit_rows["customer_id"].to_numpy()).groupby(level=0).sum().reindex(ev, fill_value=0.0)
    disc = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))]
    idcg = disc[np.minimum(n_rel.to_numpy(), k)]
    per = pd.DataFrame({"customer_id": ev, "n_relevant": n_rel.to_numpy(), "hits": hits.to_numpy()})
    per["hit"] = (per["hits"] > 0).astype(float)
    per["precision"] = per["hits"] / k
    per["recall"] = np.where(per["n_relevant"] > 0, per["hits"] / np.maximum(per["n_relevant"], 1), 0.0)
    per["ndcg"] = np.where(idcg > 0, dcg.to_numpy() / np.where(idcg > 0, idcg, 1.0), 0.0)
    overall = {m: float(per[m].mean()) for m in ("hit", "precision", "recall", "ndcg")}
    overall["hit_rate"] = overall.pop("hit")
    overall["coverage"] = float(r["product_id"].nunique() / catalogue_size) if catalogue_size else float("nan")
    if n_buyers is not None and n_train_customers:
        b = r["product_id"].map(n_buyers).astype(float).fillna(0.0).clip(lower=1.0).to_numpy()
        overall["novelty"] = float(np.mean(-np.log2(b / n_train_customers))) if len(b) else float("nan")
    else:
        overall["novelty"] = float("nan")
    overall["evaluated_customers"] = len(ev)
    return per, overall


def _boot_means(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of *values* (rows: customers, columns: series) over *n_boot* resamples of the rows."""
    rng = np.random.default_rng(seed)
    n = values.shape[0]
    out = np.empty((n_boot, values.shape[1]))
    chunk = max(1, 2_000_000 // max(n, 1))
    for lo in range(0, n_boot, chunk):
        m = min(chunk, n_boot - lo)
        idx = rng.integers(0, n, size=(m, n))
        out[lo:lo + m] = values[idx].mean(axis=1)
    return out


def bootstrap_interval(values: Any, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of *values* (customers resampled with replacement).

    Examples
    --------
    >>> lo, hi = bootstrap_interval([0, 1] * 50, n_boot=200, seed=1)
    >>> lo < 0.5 < hi
    True
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0 or n_boot < 1:
        raise ParamsError(f"bootstrap_interval needs values and n_boot >= 1 (got {v.size} values, n_boot={n_boot})")
    b = _boot_means(v[:, None], n_boot, seed)[:, 0]
    return float(np.quantile(b, alpha / 2)), float(np.quantile(b, 1 - alpha / 2))


def paired_bootstrap_interval(a: Any, b: Any, *, n_boot: int = 1000, seed: int = 0,
                              alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(a) - mean(b)`` with the same customers resampled for both."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.size == 0:
        raise ParamsError(f"paired_bootstrap_interval needs two equal-length, non-empty series (got {a.shape}, {b.shape})")
    d = _boot_means(np.c_[a - b], n_boot, seed)[:, 0]
    return float(np.quantile(d, alpha / 2)), float(np.quantile(d, 1 - alpha / 2))


def _fit_and_score(models: dict[str, Any], inter: Interactions, split: Split, k: int) -> tuple[dict, dict, dict]:
    recs, per, overall = {}, {}, {}
    n_buyers = pd.Series(inter.n_buyers, index=pd.Index(inter.product_ids).astype("string"))
    for name, model in models.items():
        t0 = time.perf_counter()
        model.fit(inter)
        t1 = time.perf_counter()
        r = model.recommend(split.evaluated, n=k, exclude_seen=True)
        t2 = time.perf_counter()
        p, o = score_recommendations(r, split.relevant, split.evaluated, k=k, n_buyers=n_buyers,
                                     n_train_customers=len(inter.customer_ids), catalogue_size=inter.shape[1])
        o.update(fit_seconds=round(t1 - t0, 3), recommend_seconds=round(t2 - t1, 3))
        recs[name], per[name], overall[name] = r, p, o
    return recs, per, overall


def evaluate_models(orders: pd.DataFrame, order_lines: pd.DataFrame, *, eval_cutoff: Any = None,
                    models: dict[str, Any], k: int = 10, n_boot: int = 1000, seed: int = 0, events: Any = None,
                    view_weight: float = 0.25, baseline: str = "popularity", test_end: Any = None,
                    alpha: float = 0.05) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit every model on the training period and score its top-*k* on the test period, side by side.

    Parameters
    ----------
    orders, order_lines : DataFrame
        Clean canonical tables.
    eval_cutoff : date-like, optional
        The split; :func:`default_eval_cutoff` when ``None``.
    models : dict
        Name → unfitted recommender (``fit(interactions)``, ``recommend(ids, n, exclude_seen)``).
        A :class:`~crm_analytics.models.recommend.Popularity` named *baseline* is added when missing.
    k : int
    n_boot : int
        Bootstrap resamples of the customers (hit-rate interval and the paired difference).
    seed : int
        Seed of the bootstrap.
    events : DataFrame or tables.ParquetTable, optional
        Product views before the cutoff join the training interactions at *view_weight*.
    baseline : str
        The model the paired differences are taken against.
    test_end : date-like, optional
        End of the test period (default: the end of the data).
    alpha : float
        Two-sided level of the intervals.

    Returns
    -------
    (metrics, details)
        ``metrics``: one row per model (index ``model``) with ``evaluated_customers, hit_rate, hit_rate_low,
        hit_rate_high, precision, recall, ndcg, coverage, novelty, fit_seconds, recommend_seconds,
        hit_rate_diff, hit_rate_diff_low, hit_rate_diff_high, beats_baseline`` (the paired interval of the
        difference from the baseline lies above 0). ``details``: ``split`` (:class:`Split`),
        ``interactions``, ``recommendations`` and ``per_customer`` (name → DataFrame), ``baseline``.

    Examples
    --------
    >>> from crm_analytics.models.recommend import EASE, Popularity                                # doctest: +SKIP
    >>> metrics, details = evaluate_models(orders, order_lines, eval_cutoff="2011-11-09",
    ...                                    models={"popularity": Popularity(), "ease": EASE()})  # doctest: +SKIP
    """
    if not models:
        raise ParamsError("evaluate_models: models is empty; pass e.g. {'popularity': Popularity(), 'ease': EASE()}")
    cutoff = default_eval_cutoff(orders) if eval_cutoff is None else eval_cutoff
    models = dict(models)
    if baseline not in models:
        models = {baseline: Popularity(), **models}
    split = time_split(orders, order_lines, eval_cutoff=cutoff, events=events, test_end=test_end)
    inter = build_interactions(split.train_counts, view_weight=view_weight)
    recs, per, overall = _fit_and_score(models, inter, split, k)
    base_hits = per[baseline]["hit"].to_numpy()
    rows = []
    for name in models:
        hits = per[name]["hit"].to_numpy()
        lo, hi = bootstrap_interval(hits, n_boot=n_boot, seed=seed, alpha=alpha)
        dlo, dhi = paired_bootstrap_interval(hits, base_hits, n_boot=n_boot, seed=seed, alpha=alpha)
        o = overall[name]
        rows.append({"model": name, "evaluated_customers": o["evaluated_customers"], "hit_rate": o["hit_rate"],
                     "hit_rate_low": lo, "hit_rate_high": hi, "precision": o["precision"], "recall": o["recall"],
                     "ndcg": o["ndcg"], "coverage": o["coverage"], "novelty": o["novelty"],
                     "fit_seconds": o["fit_seconds"], "recommend_seconds": o["recommend_seconds"],
                     "hit_rate_diff": float(hits.mean() - base_hits.mean()), "hit_rate_diff_low": dlo,
                     "hit_rate_diff_high": dhi, "beats_baseline": bool(name != baseline and dlo > 0)})
    metrics = pd.DataFrame(rows).set_index("model")
    details = {"split": split, "interactions": inter, "recommendations": recs, "per_customer": per,
               "baseline": baseline, "eval_cutoff": split.eval_cutoff}
    return metrics, details


def choose_model(metrics: pd.DataFrame, baseline: str = "popularity") -> tuple[str, str]:
    """The model to export and why: the highest hit rate among models whose paired interval beats the
    baseline (ties: NDCG), else the baseline, said plainly."""
    winners = metrics[metrics["beats_baseline"]]
    if winners.empty:
        return baseline, (f"no model beats the {baseline} baseline on hit rate@k with a paired bootstrap interval "
                          "above 0; the exports use the baseline")
    best = winners.sort_values(["hit_rate", "ndcg"], ascending=False).index[0]
    row = metrics.loc[best]
    return best, (f"{best} has the highest hit rate among models that beat {baseline}: {row['hit_rate']:.3f} vs "
                  f"{metrics.loc[baseline, 'hit_rate']:.3f} (difference {row['hit_rate_diff']:+.3f}, 95% paired "
                  f"interval {row['hit_rate_diff_low']:+.3f} to {row['hit_rate_diff_high']:+.3f})")


def tune(orders: pd.DataFrame, order_lines: pd.DataFrame, *, eval_cutoff: Any = None,
         grids: dict[str, tuple[Any, dict[str, list]]], validation_days: int = 28, k: int = 10, events: Any = None,
         view_weight: float = 0.25, metric: str = "hit_rate") -> tuple[dict[str, Any], pd.DataFrame]:
    """Pick each model's hyperparameters on a validation split cut from training only.

    Models learn from purchases before ``eval_cutoff - validation_days`` and are scored on the
    purchases of the ``validation_days`` before ``eval_cutoff``; nothing on or after the cutoff is read.

    Parameters
    ----------
    grids : dict
        Name → ``(estimator, {param: [values]})``; every combination is tried.
    validation_days : int
    metric : str
        ``hit_rate``, ``ndcg``, ``precision`` or ``recall``; ties go to NDCG, then the first combination.

    Returns
    -------
    (best, table)
        ``best``: name → unfitted estimator with the chosen parameters; ``table``: one row per
        combination with ``model, params`` and the validation metrics.
    """
    from sklearn.model_selection import ParameterGrid

    if metric not in ("hit_rate", "ndcg", "precision", "recall"):
        raise ParamsError(f"metric must be one of ['hit_rate', 'ndcg', 'precision', 'recall'], got {metric!r}")
    if not (isinstance(validation_days, (int, np.integer)) and validation_days >= 1):
        raise ParamsError(f"validation_days={validation_days!r} must be a positive whole number of days")
    cutoff = _utc(default_eval_cutoff(orders) if eval_cutoff is None else eval_cutoff, "eval_cutoff")
    val_cut = cutoff - pd.Timedelta(days=validation_days)
    split = time_split(orders, order_lines, eval_cutoff=val_cut, events=events, test_end=cutoff)
    inter = build_interactions(split.train_counts, view_weight=view_weight)
    rows, best = [], {}
    for name, (estimator, grid) in grids.items():
        scored = []
        for params in ParameterGrid(grid or {}):
            model = clone(estimator).set_params(**params)
            _, _, overall = _fit_and_score({name: model}, inter, split, k)
            o = overall[name]
            scored.append((o[metric], o["ndcg"], params))
            rows.append({"model": name, "params": params, **{m: o[m] for m in ("hit_rate", "precision", "recall",
                                                                               "ndcg", "coverage", "fit_seconds")}})
        top = max(range(len(scored)), key=lambda i: (scored[i][0], scored[i][1], -i))
        best[name] = clone(estimator).set_params(**scored[top][2])
    table = pd.DataFrame(rows)
    table.attrs.update(validation_start=str(val_cut), validation_end=str(cutoff),
                       evaluated_customers=split.info["evaluated_customers"])
    return best, table


def _norm(label: Any) -> str:
    return str(label).strip().casefold()


def truth_category_hit_rate(recs: pd.DataFrame, products: pd.DataFrame, truth_customers: pd.DataFrame, *,
                            top_categories: int = 2) -> dict[str, float]:
    """How often recommendations fall in each customer's truly preferred categories (demo world).

    The demo world's ``truth_customers`` holds each customer's true category preferences
    (``pref_<category>``, summing to 1). A customer's *preferred* categories are their
    *top_categories* largest preferences.

    Returns
    -------
    dict
        ``share_in_preferred``: share of recommendations whose product is in one of the customer's
        preferred categories; ``chance_share``: the same share were products drawn uniformly from the
        catalogue; ``mean_true_preference``: mean true preference of the recommended products'
        categories (the chance the customer's next item is of that category); ``recommendations``:
        rows scored (customers in the truth, products with a known category).
    """
    pref_cols = [c for c in truth_customers.columns if c.startswith("pref_")]
    if not pref_cols:
        raise DataContractError("truth_customers: no pref_<category> columns; this check needs the demo world's "
                                "truth (data/raw/<dataset>/truth_customers.parquet)")
    cats = [_norm(c[len("pref_"):]) for c in pref_cols]
    prefs = truth_customers[pref_cols].to_numpy(float)
    order = np.argsort(-prefs, axis=1, kind="stable")[:, :top_categories]
    preferred = np.zeros_like(prefs, dtype=bool)
    np.put_along_axis(preferred, order, True, axis=1)
    cust_row = pd.Index(truth_customers["customer_id"].astype(str)).get_indexer(recs["customer_id"].astype(str))
    cat_of = products.drop_duplicates("product_id").set_index("product_id")["category"].map(_norm)
    cat_idx = pd.Index(cats).get_indexer(recs["product_id"].map(cat_of).astype(object).fillna(""))
    ok = (cust_row >= 0) & (cat_idx >= 0)
    if not ok.any():
        raise DataContractError("truth_category_hit_rate: no recommendation matches a truth customer and a product "
                                f"category among {cats}; pass the same dataset's products and truth")
    cr, ci = cust_row[ok], cat_idx[ok]
    cat_counts = pd.Index(cats).get_indexer(cat_of.astype(object).fillna(""))
    cat_share = np.bincount(cat_counts[cat_counts >= 0], minlength=len(cats)) / max((cat_counts >= 0).sum(), 1)
    chance = (preferred[np.unique(cr)] * cat_share[None, :]).sum(axis=1).mean()
    return {"share_in_preferred": float(preferred[cr, ci].mean()), "chance_share": float(chance),
            "mean_true_preference": float(prefs[cr, ci].mean()), "recommendations": int(ok.sum())}

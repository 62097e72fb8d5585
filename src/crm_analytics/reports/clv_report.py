"""The tables of the CLV and churn report, built on :mod:`crm_analytics.models.clv` and
:mod:`crm_analytics.models.churn`: periods, model choice by holdout error, the expected frequency
histogram, comparisons with published CDNOW results and with a generated world's truth, per
customer values, and churn scores side by side."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from crm_analytics import compute, i18n
from crm_analytics.models import clv
from crm_analytics.reports import report
from crm_analytics.models.churn import calibration_table, score_churn
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.features.summary import purchases_expr
from crm_analytics.ingest.tables import ParquetTable, ibis_table

__all__ = ["TIME_UNITS", "PUBLISHED_CDNOW", "MODEL_NAMES", "time_unit_freq", "bucket", "periods", "purchase_days",
           "simulate_repeat_purchases", "frequency_histogram", "model_choice", "published_comparison",
           "truth_params_table", "truth_customers", "segment_labels", "palive_vs_truth", "spend_check",
           "customer_values", "churn_side_by_side",
           "which_to_trust", "end_of_day_utc", "fit_models", "fit_spend", "parameter_table", "fit_table",
           "period_word"]

#: time unit -> (freq, freq_multiplier) of :func:`crm_analytics.models.clv.rfm_summary`; weeks are days / 7 as in
#: the published CDNOW analyses
TIME_UNITS = {"day": ("D", 1.0), "week": ("D", 7.0), "month": ("M", 1.0)}

#: Fader, Hardie & Lee (2005), "Counting your customers the easy way", CDNOW 1/10th sample, 39-week
#: calibration (weeks); Fader & Hardie (2013), "The Gamma-Gamma model of monetary value" (all 78 weeks)
PUBLISHED_CDNOW = {
    "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "loglik": -9582.4},
    "pareto_nbd": {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669, "loglik": -9595.0},
    "gamma_gamma": {"p": 6.25, "q": 3.74, "v": 15.44},
}
DAY = pd.Timedelta(days=1)

#: a model's key in the code and metrics -> its name in a report (the same in every language)
MODEL_NAMES = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbgnbd": "MBG/NBD", "gamma_gamma": "Gamma-Gamma"}


def time_unit_freq(time_unit: str) -> tuple[str, float]:
    try:
        return TIME_UNITS[time_unit]
    except KeyError:
        raise ParamsError(f"time_unit must be one of {list(TIME_UNITS)}, got {time_unit!r}") from None


def bucket(time_unit: str) -> int:
    """Periods per row of the tracking plot: weeks for daily data (time units ``day`` and ``week``,
    both counted in days), else one period (a month)."""
    return 7 if time_unit_freq(time_unit)[0] == "D" else 1


def purchase_days(bought: pd.DataFrame | ParquetTable) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and the last purchase day (naive UTC midnights) of *bought*: purchases in pandas, or a
    :class:`~crm_analytics.ingest.tables.ParquetTable` of the clean orders (its purchases, read by the
    engine where they lie)."""
    if isinstance(bought, ParquetTable):
        with compute.session() as db:
            t = purchases_expr(ibis_table(db, bought, ["customer_id", "order_ts", "status"]))
            got = t.aggregate(first=t.order_ts.min(), last=t.order_ts.max()).to_pyarrow().to_pylist()[0]
        if got["first"] is None:
            raise DataContractError(f"{bought.path}: no purchase (known customer, status completed or returned)")
        first, last = (pd.Timestamp(got[k]) for k in ("first", "last"))
        first, last = (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
                       for ts in (first, last))
        return first.normalize(), last.normalize()
    days = bought["order_ts"].dt.tz_convert(None).dt.normalize()
    return days.min(), days.max()


def periods(bought: pd.DataFrame | ParquetTable, calibration_end: str,
            holdout_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Calibration end and observation end (naive days): from params, or ``holdout_days`` before the last
    purchase. *bought*: purchases in pandas, or a ParquetTable of the clean orders (:func:`purchase_days`)."""
    first, last = purchase_days(bought)
    if calibration_end:
        try:
            cal = pd.Timestamp(calibration_end)
        except ValueError:
            raise ParamsError(f"calibration_end must be a date like 1997-09-30, got {calibration_end!r}") from None
        obs = min(cal + holdout_days * DAY, last)
    else:
        obs = last
        cal = last - holdout_days * DAY
    if cal <= first + 7 * DAY:
        raise ParamsError(f"calibration_end {cal:%Y-%m-%d} leaves no calibration period (first order {first:%Y-%m-%d}); "
                          "shorten holdout_days or set a later calibration_end")
    if obs <= cal:
        raise ParamsError(f"no holdout after calibration_end {cal:%Y-%m-%d} (last order {last:%Y-%m-%d}); set an "
                          "earlier calibration_end")
    return cal, obs


def simulate_repeat_purchases(fit: clv.FitResult, T: np.ndarray, *, draws: int = 20, seed: int = 0,
                              rng: np.random.Generator | None = None) -> np.ndarray:
    """Repeat purchases of customers observed for ``T`` units, simulated from the fitted model
    (``draws`` worlds per customer, flattened) — the model's expected frequency distribution.
    *rng* (else a generator seeded with *seed*) lets a caller simulate many customers in chunks."""
    rng = np.random.default_rng(seed) if rng is None else rng
    T = np.repeat(np.asarray(T, dtype=float), draws)
    p = fit.params
    lam = rng.gamma(p["r"], 1 / p["alpha"], len(T))
    if fit.model == "pareto_nbd":
        mu = rng.gamma(p["s"], 1 / p["beta"], len(T))
        life = rng.exponential(1 / mu)
        return rng.poisson(lam * np.minimum(life, T))
    drop = np.clip(rng.beta(p["a"], p["b"], len(T)), 1e-12, 1.0)  # a tiny a can underflow to 0
    n = rng.poisson(lam * T)
    j = rng.geometric(drop)  # dies after the j-th repeat purchase (BG/NBD)
    if fit.model == "mbgnbd":
        j = j - 1  # may also leave right after the first purchase
    return np.minimum(j, n)


#: Most simulated customer histories per model in :func:`frequency_histogram` (fewer draws per customer
#: beyond it: 10 M customers get 2 each) and per chunk of the simulation (its arrays take ~0.3 GB).
MAX_SIMULATED = 20_000_000
SIMULATION_CHUNK = 5_000_000


def frequency_histogram(summary: pd.DataFrame, fits: dict[str, clv.FitResult], max_x: int = 7,
                        draws: int = 20) -> pd.DataFrame:
    """Customers by repeat purchases in calibration (0 … ``max_x``+): actual and expected per model.

    The expected counts simulate ``draws`` histories per customer (fewer when that would exceed
    :data:`MAX_SIMULATED` in all, at least one), in chunks of :data:`SIMULATION_CHUNK` histories, so the
    memory stays small for millions of customers; up to one chunk the draws are those of
    :func:`simulate_repeat_purchases` with seed 0."""
    labels = [str(i) for i in range(max_x)] + [f"{max_x}+"]

    def counts(x: np.ndarray, weight: float) -> np.ndarray:
        return np.bincount(np.minimum(x, max_x), minlength=max_x + 1) * weight

    out = pd.DataFrame({"actual": counts(summary["frequency"].to_numpy(int), 1.0)}, index=labels)
    T = summary["T"].to_numpy()
    draws = max(1, min(draws, MAX_SIMULATED // max(len(T), 1)))
    step = max(1, SIMULATION_CHUNK // draws)  # customers per chunk
    for name, fit in fits.items():
        rng = np.random.default_rng(0)
        total = np.zeros(max_x + 1, dtype=np.int64)
        for i in range(0, len(T), step):
            x = simulate_repeat_purchases(fit, T[i:i + step], draws=draws, rng=rng)
            total += np.bincount(np.minimum(x, max_x), minlength=max_x + 1)
        out[name] = total * (1 / draws)
    out.index.name = "repeat_purchases"
    return out


def model_choice(summary: pd.DataFrame, fits: dict[str, clv.FitResult]) -> pd.DataFrame:
    """Holdout error per model, best (lowest mean absolute error per customer) first."""
    actual = summary["frequency_holdout"].to_numpy(float)
    rows = {}
    for name, fit in fits.items():
        e = clv.expected_purchases(fit, summary["duration_holdout"], summary["frequency"], summary["recency"],
                                   summary["T"])
        e = np.asarray(e, dtype=float)
        rows[name] = {"loglik_calibration": fit.loglik, "actual_total": actual.sum(), "expected_total": e.sum(),
                      "total_error_pct": 100 * (e.sum() - actual.sum()) / actual.sum() if actual.sum() else np.nan,
                      "mae_per_customer": float(np.abs(e - actual).mean()),
                      "rmse_per_customer": float(np.sqrt(((e - actual) ** 2).mean()))}
    return pd.DataFrame(rows).T.sort_values("mae_per_customer").rename_axis("model")


def _is_cdnow_sample(dataset: str) -> bool:
    from crm_analytics.ingest.collect import dataset_source

    src = dataset_source(dataset)
    return src["kind"] == "cdnow" and src.get("variant") == "sample"


def published_comparison(dataset: str, fits: dict[str, clv.FitResult]) -> pd.DataFrame | None:
    """Our CDNOW estimates beside Fader, Hardie & Lee (2005), or ``None`` for other datasets."""
    if not _is_cdnow_sample(dataset):
        return None
    rows = []
    for model in ("bgnbd", "pareto_nbd"):
        if model not in fits:
            continue
        ours = {**fits[model].params, "loglik": fits[model].loglik}
        for k, pub in PUBLISHED_CDNOW[model].items():
            rows.append({"model": model, "quantity": k, "ours": ours[k], "published": pub,
                         "difference": ours[k] - pub, "relative": (ours[k] - pub) / abs(pub)})
    return pd.DataFrame(rows).set_index(["model", "quantity"])


def published_as_text(checks: pd.DataFrame) -> pd.DataFrame:
    """*checks* (:func:`published_comparison`) with the log-likelihoods as published: text to one decimal."""
    out = checks.astype(object)
    loglik = checks.index.get_level_values(-1) == "loglik"
    for col in ("ours", "published"):
        out.loc[loglik, col] = checks.loc[loglik, col].map(lambda v: i18n.format_value(v, ",.1f"))
    return out.rename(index=MODEL_NAMES, level=0)


def truth_params_table(fits: dict[str, clv.FitResult], truth: dict, time_unit: str) -> pd.DataFrame:
    """BG/NBD estimates against the generated world's parameters (converted to the report's time unit)."""
    per_week = {"day": 7.0, "week": 1.0, "month": 7.0 / clv.DAYS_PER_MONTH}[time_unit]
    t = dict(truth["btyd"])
    t["alpha"] = t["alpha"] * per_week  # alpha is a time scale: per-day rates need alpha in days
    f = fits["bgnbd"]
    rows = [{"parameter": k, "estimate": f.params[k], "ci_low": f.ci[k][0], "ci_high": f.ci[k][1], "truth": t[k],
             "inside_interval": f.ci[k][0] <= t[k] <= f.ci[k][1]} for k in ("r", "alpha", "a", "b")]
    return pd.DataFrame(rows).set_index("parameter")


def truth_customers(dataset: str, columns: list[str]) -> pd.DataFrame:
    """*columns* of a generated world's true customers (``truth_customers.parquet``), indexed by
    ``customer_id``: only those columns are read (the file of 10 M customers holds dozens)."""
    from crm_analytics import paths

    return pd.read_parquet(paths.raw_dir(dataset) / "truth_customers.parquet",
                           columns=["customer_id", *columns]).set_index("customer_id")


def segment_labels(dataset: str, customers: pd.Index, fallback: pd.Series) -> tuple[pd.Series, bool]:
    """Each customer's RFM segment from ``data/processed/<dataset>/segments.parquet`` (notebook
    02; only its ``customer_id`` and ``segment`` columns are read), ``"not segmented"`` for a customer it
    lacks, and ``True``; without that file *fallback* (e.g. the churn-risk tier) as text, and ``False``."""
    from crm_analytics import paths

    path = paths.processed_dir(dataset) / "segments.parquet"
    if not path.exists():
        return fallback.astype(str).rename("segment"), False
    seg = pd.read_parquet(path, columns=["customer_id", "segment"]).set_index("customer_id")["segment"]
    return seg.reindex(customers).fillna("not segmented"), True


def palive_vs_truth(fits: dict[str, clv.FitResult], summary: pd.DataFrame, truth_customers: pd.DataFrame,
                    calibration_end: pd.Timestamp) -> pd.DataFrame:
    """ROC AUC of each model's P(alive) at the calibration end against each customer's true status then."""
    tc = truth_customers.reindex(summary.index)
    dropout = pd.to_datetime(tc["dropout_ts"], utc=True).dt.tz_convert(None)
    alive = dropout.isna() | (dropout > calibration_end + DAY)
    rows = {}
    for name, fit in fits.items():
        pa = clv.p_alive(fit, summary["frequency"], summary["recency"], summary["T"])
        rows[name] = {"roc_auc": float(roc_auc_score(alive, pa)), "mean_p_alive": float(np.mean(pa)),
                      "true_alive_share": float(alive.mean()), "customers": int(len(pa))}
    return pd.DataFrame(rows).T.rename_axis("model")


def spend_check(gg: clv.FitResult, summary: pd.DataFrame, dataset: str, truth: dict | None,
                full_summary: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Gamma-Gamma against the truth (generated world) or the published CDNOW fit (all 78 weeks)."""
    if truth is not None:
        tc = truth_customers(dataset, ["mean_spend"])
        rep = summary[summary["frequency"] > 0]
        est = pd.Series(clv.expected_spend(gg, rep["frequency"], rep["monetary_value"]), index=rep.index)
        true = tc["mean_spend"].reindex(rep.index)
        t = truth["gamma_gamma"]
        rows = [{"quantity": k, "estimate": gg.params[k], "truth": t[k]} for k in ("p", "q", "v")]
        rows.append({"quantity": "mean expected spend / mean true spend (repeat buyers)",
                     "estimate": float(est.mean() / true.mean()), "truth": 1.0})
        rows.append({"quantity": "correlation of expected and true spend", "estimate": float(est.corr(true)),
                     "truth": 1.0})
        return pd.DataFrame(rows).set_index("quantity")
    if _is_cdnow_sample(dataset) and full_summary is not None:
        full, _ = fit_spend(full_summary)
        return pd.DataFrame([{"quantity": k, "ours_78_weeks": full.params[k], "published": v,
                              "relative": (full.params[k] - v) / v}
                             for k, v in PUBLISHED_CDNOW["gamma_gamma"].items()]).set_index("quantity")
    return None


def customer_values(fit: clv.FitResult, gg: clv.FitResult, summary: pd.DataFrame, *, predict_days: int,
                    horizon_months: int, margin: float, annual_discount_rate: float,
                    scores_dir: str | Path | None = None) -> pd.DataFrame:
    """Per customer: P(alive), expected purchases in ``predict_days``, expected spend, CLV, next order
    date (posterior mean waiting time, for customers more likely alive than not) and churn-risk tier.

    The scores are computed where the data is, partition by partition, on the engine the params
    chose (:func:`crm_analytics.models.clv.score_partitions`: Spark's executors or DuckDB's record
    batches), and written as parquet to *scores_dir* (a temporary folder when ``None``); the fits are
    the few parameters estimated on the compressed statistics.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    unit = float(summary.attrs["time_unit_days"])
    history = ["frequency", "recency", "T", "monetary_value"]
    with tempfile.TemporaryDirectory(prefix="crm_scores_") as tmp:
        where = Path(scores_dir) if scores_dir is not None else Path(tmp) / "scores"
        ids = pa.array(summary.index.astype(str).array).cast(pa.string())
        with compute.session() as s:
            rows = pa.table({"customer_id": ids, **{c: summary[c].to_numpy() for c in history}})
            clv.score_partitions(fit, gg, s.table(rows), where, horizon_months=horizon_months, margin=margin,
                                 annual_discount_rate=annual_discount_rate, time_unit_days=unit,
                                 predict_days=predict_days)
            del rows
        scores = pq.read_table(where)
    # the scores come back in no defined order: put them in the summary's order by matching the ids in
    # Arrow (a hash of the text, no Python string per customer); a customer without a score stays NaN
    at = pc.index_in(scores["customer_id"].cast(pa.string()), value_set=ids).to_numpy(zero_copy_only=False)
    del ids
    found = ~np.isnan(at)
    at = at[found].astype(np.int64)
    out = summary[history].copy()
    for name in scores.column_names:
        if name == "customer_id":
            continue
        values = np.full(len(out), np.nan)
        values[at] = scores[name].to_numpy()[found]
        out[name] = values
    del scores
    as_of = pd.Timestamp(summary.attrs["calibration_end"])
    rate = (fit.params["r"] + summary["frequency"]) / (fit.params["alpha"] + summary["T"])  # per unit
    wait_days = unit / rate
    out["next_order_date"] = (as_of + pd.to_timedelta(wait_days, unit="D")).dt.normalize().where(out["p_alive"] >= 0.5)
    out["churn_risk"] = pd.cut(out["p_alive"], [-0.01, 0.3, 0.7, 1.01], labels=["high", "medium", "low"])
    return out


def churn_side_by_side(ml, fit: clv.FitResult, summary: pd.DataFrame) -> dict:
    """ML churn scores and the BTYD's on the same customers and holdout."""
    common = ml.y_test.index.intersection(summary.index)
    y = ml.y_test.loc[common]
    s = summary.loc[common]
    pa = clv.p_alive(fit, s["frequency"], s["recency"], s["T"])
    h = ml.horizon_days / float(summary.attrs["time_unit_days"])
    r, alpha = fit.params["r"], fit.params["alpha"]
    no_buy = 1 - pa * (1 - ((alpha + s["T"]) / (alpha + s["T"] + h)) ** (r + s["frequency"]))
    scores = {"machine-learned": ml.score_test.loc[common], "BTYD 1 - P(alive)": pd.Series(1 - pa, index=common),
              "BTYD P(no purchase in horizon)": pd.Series(np.asarray(no_buy), index=common)}
    table = pd.DataFrame({k: score_churn(y, v) for k, v in scores.items()}).T
    calib = {"machine-learned": calibration_table(y, scores["machine-learned"]),
             "BTYD P(no purchase in horizon)": calibration_table(y, scores["BTYD P(no purchase in horizon)"])}
    return {"scores": table, "calibration": calib, "y": y}


def which_to_trust(scores: pd.DataFrame):
    """The report's advice on the churn model and the BTYD model, as report prose (:func:`report.md`)."""
    ml = scores.loc["machine-learned", "roc_auc"]
    bt = scores.loc["BTYD P(no purchase in horizon)", "roc_auc"]
    if ml > bt + 0.01:
        ranking = i18n.t("For ranking customers by churn risk the machine-learned model is better here "
                         "(ROC AUC {ml:.3f} against {bt:.3f}).", ml=ml, bt=bt)
    elif bt > ml + 0.01:
        ranking = i18n.t("For ranking customers by churn risk the BTYD model is better here "
                         "(ROC AUC {bt:.3f} against {ml:.3f}).", ml=ml, bt=bt)
    else:
        ranking = i18n.t("For ranking customers by churn risk the two models are equally good here "
                         "(ROC AUC {ml:.3f} and {bt:.3f}).", ml=ml, bt=bt)
    return report.md(
            "**Which to trust for what.** {ranking} The ML model uses behaviour the BTYD model cannot see "
            "(sessions, complaints, campaign responses), so it is the better short-term alarm list for retention "
            "teams; the BTYD model needs only purchase history, extrapolates over any horizon, gives P(alive), "
            "expected purchases and CLV with a probabilistic meaning, and is the one to use for valuation and for "
            "shops without event data.", ranking=ranking)


def end_of_day_utc(day: pd.Timestamp) -> pd.Timestamp:
    """The last microsecond of calendar *day* (naive) in UTC: a cutoff that includes the whole day."""
    return (pd.Timestamp(day).normalize() + DAY).tz_localize("UTC") - pd.Timedelta(microseconds=1)


def fit_models(summary: pd.DataFrame, penalizer: float = 0.0) -> tuple[dict[str, clv.FitResult], dict[str, str]]:
    """Fit BG/NBD, Pareto/NBD and MBG/NBD; a model that does not converge is left out with its message."""
    from crm_analytics.errors import ModelFitError

    fits, failed = {}, {}
    for name, fitter in (("bgnbd", clv.fit_bgnbd), ("pareto_nbd", clv.fit_pareto_nbd), ("mbgnbd", clv.fit_mbgnbd)):
        try:
            fits[name] = fitter(summary, penalizer=penalizer)
        except ModelFitError as exc:
            failed[name] = str(exc)
    if not fits:
        raise ModelFitError("no purchasing model converged: " + " | ".join(failed.values()))
    return fits, failed


def fit_spend(summary: pd.DataFrame, penalizer: float = 0.0) -> tuple[clv.FitResult, int]:
    """Gamma-Gamma on repeat customers with a positive mean spend; returns the fit and how many were left out."""
    rep = summary[summary["frequency"] > 0]
    ok = rep[rep["monetary_value"] > 0]
    return clv.fit_gamma_gamma(ok, penalizer=penalizer), int(len(rep) - len(ok))


def parameter_table(fits: dict[str, clv.FitResult]) -> pd.DataFrame:
    """Every fitted model's parameters (estimate, standard error, 95 % interval), by model name and
    parameter."""
    return pd.concat({MODEL_NAMES.get(n, n): f.table() for n, f in fits.items()}, names=["model"])


def fit_table(fits: dict[str, clv.FitResult]) -> pd.DataFrame:
    """Per model: the log-likelihood on the calibration period, the customers and the distinct
    purchase histories it was fitted on."""
    return pd.DataFrame({MODEL_NAMES.get(n, n): {"loglik": f.loglik, "customers": f.n_customers,
                                                 "distinct_histories": f.n_groups}
                         for n, f in fits.items()}).T.rename_axis("model")


def period_word(starts: pd.Series) -> str:
    """``day``, ``week`` or ``month``: the length of the periods starting at *starts* (a tracking table)."""
    step = pd.Series(pd.to_datetime(starts)).diff().dt.days.median()
    return "day" if step <= 1 else ("week" if step <= 7 else "month")

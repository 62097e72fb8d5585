"""Maximum-likelihood fits: BG/NBD, MBG/NBD and Pareto/NBD on the grouped histories of a summary,
Gamma-Gamma on the repeat customers' mean spends.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analytics.errors import ModelFitError, ParamsError
from crm_analytics.models.clv.histories import _histories, compress_summary
from crm_analytics.models.clv.likelihoods import _BgnbdSums, _ll_bgnbd, _ll_gamma_gamma, _ll_mbgnbd, _ll_pareto
from crm_analytics.models.clv.optimiser import _BTYD_MODELS, FitResult, _maximise, _result

__all__ = ["fit_bgnbd", "fit_mbgnbd", "fit_pareto_nbd", "fit_gamma_gamma"]


_BTYD = {
    "bgnbd": (("r", "alpha", "a", "b"), _ll_bgnbd),
    "mbgnbd": (("r", "alpha", "a", "b"), _ll_mbgnbd),
    "pareto_nbd": (("r", "alpha", "s", "beta"), _ll_pareto),
}
assert tuple(_BTYD) == _BTYD_MODELS
# Log-likelihood with its analytic gradient, where written out (the others use central differences).
_WITH_GRAD = {
    "bgnbd": lambda h, w: _BgnbdSums(h, w, modified=False),
    "mbgnbd": lambda h, w: _BgnbdSums(h, w, modified=True),
}
# Index of the time-scale parameters (alpha, and beta for Pareto/NBD).
_TIME_SCALED = {"bgnbd": (1,), "mbgnbd": (1,), "pareto_nbd": (1, 3)}
_STARTS = {
    "bgnbd": ([0.0, 0.0, 0.0, 0.0], [np.log(0.3), np.log(0.1), np.log(0.8), np.log(2.5)]),
    "mbgnbd": ([0.0, 0.0, 0.0, 0.0], [np.log(0.3), np.log(0.1), np.log(0.8), np.log(2.5)]),
    "pareto_nbd": ([0.0, 0.0, 0.0, 0.0], [np.log(0.5), np.log(0.05), np.log(0.5), np.log(0.05)]),
}


def _fit_btyd(model: str, summary: pd.DataFrame, penalizer: float) -> FitResult:
    if penalizer < 0:
        raise ParamsError(f"penalizer={penalizer} must be >= 0")
    groups = compress_summary(summary)
    x = groups["frequency"].to_numpy(dtype=float)
    tx = groups["recency"].to_numpy(dtype=float)
    T = groups["T"].to_numpy(dtype=float)
    w = groups["weight"].to_numpy(dtype=float)
    names, loglik = _BTYD[model]
    scale = 1.0 / T.max() if T.max() > 0 else 1.0
    hist = _histories(x, tx, T, pairs=model == "pareto_nbd")
    params, cov_log = _maximise(
        model, names, loglik, hist.rescaled(scale), w, _TIME_SCALED[model], scale, penalizer,
        _STARTS[model], int(w[x > 0].sum()), _WITH_GRAD.get(model),
    )
    with np.errstate(all="ignore"):
        total = float(np.dot(w, loglik(params, hist)))
    return _result(model, names, params, cov_log, total, int(w.sum()), len(w), penalizer,
                   summary.attrs.get("time_unit_days"))


def fit_bgnbd(summary: pd.DataFrame, *, penalizer: float = 0.0) -> FitResult:
    """Fit the BG/NBD model (Fader, Hardie & Lee 2005) by maximum likelihood.

    Parameters
    ----------
    summary
        :func:`rfm_summary` output (``frequency``, ``recency``, ``T``); customers are grouped
        by their distinct triple before fitting.
    penalizer
        L2 penalty on the (rescaled) parameters, as lifetimes' ``penalizer_coef``; 0 = plain MLE.

    Returns
    -------
    FitResult
        Parameters ``r, alpha, a, b``; ``alpha`` is in the summary's time unit.

    Raises
    ------
    ModelFitError
        Unusable summary or no convergence; the message says what to try.
    """
    return _fit_btyd("bgnbd", summary, penalizer)


def fit_mbgnbd(summary: pd.DataFrame, *, penalizer: float = 0.0) -> FitResult:
    """Fit the MBG/NBD model (Batislam, Denizel & Filiztekin 2007); see :func:`fit_bgnbd`.

    Unlike BG/NBD, a customer may also drop out right after the first purchase, so one-time
    buyers are not assumed alive.
    """
    return _fit_btyd("mbgnbd", summary, penalizer)


def fit_pareto_nbd(summary: pd.DataFrame, *, penalizer: float = 0.0) -> FitResult:
    """Fit the Pareto/NBD model (Schmittlein, Morrison & Colombo 1987); see :func:`fit_bgnbd`.

    Returns parameters ``r, alpha, s, beta`` (``alpha`` and ``beta`` in the summary's time
    unit). The likelihood is Fader & Hardie's (2005) closed form, evaluated through an
    Euler-transformed Gauss hypergeometric function that stays finite for large frequencies.
    """
    return _fit_btyd("pareto_nbd", summary, penalizer)


def fit_gamma_gamma(summary: pd.DataFrame, *, penalizer: float = 0.0) -> FitResult:
    """Fit the Gamma-Gamma spend model on customers with at least one repeat purchase.

    Parameters
    ----------
    summary
        :func:`rfm_summary` output with ``frequency`` and ``monetary_value`` (the mean repeat
        purchase amount); customers with ``frequency == 0`` are left out.
    penalizer
        L2 penalty on the (rescaled) parameters; 0 = plain MLE.

    Returns
    -------
    FitResult
        Parameters ``p, q, v`` (``v`` in the shop's currency).

    Raises
    ------
    ModelFitError
        No repeat customers, non-positive mean spends, or no convergence.
    """
    if penalizer < 0:
        raise ParamsError(f"penalizer={penalizer} must be >= 0")
    missing = [c for c in ("frequency", "monetary_value") if c not in summary.columns]
    if missing:
        raise ModelFitError(
            f"gamma_gamma: the summary has no column(s) {missing}; build it with rfm_summary(monetary=...)"
        )
    rep = summary[summary["frequency"] > 0]
    if len(rep) < 3:
        raise ModelFitError(f"gamma_gamma: only {len(rep)} customer(s) with a repeat purchase; "
                            "the spend model needs many (use a longer calibration period)")
    m = rep["monetary_value"].to_numpy(dtype=float)
    bad = int(np.sum(~np.isfinite(m) | (m <= 0)))
    if bad:
        raise ModelFitError(
            f"gamma_gamma: {bad} repeat customer(s) have a mean spend <= 0 or missing; the model needs "
            "positive amounts: fit on summary[summary.monetary_value > 0] or fix the order totals"
        )
    groups = rep.groupby(["frequency", "monetary_value"]).size().rename("weight").reset_index()
    x = groups["frequency"].to_numpy(dtype=float)
    mv = groups["monetary_value"].to_numpy(dtype=float)
    w = groups["weight"].to_numpy(dtype=float)
    scale = 1.0 / float(np.average(mv, weights=w))
    names = ("p", "q", "v")
    params, cov_log = _maximise(
        "gamma_gamma", names, _ll_gamma_gamma, (x, mv * scale), w, (2,), scale, penalizer,
        ([0.0, 0.0, 0.0], [np.log(5.0), np.log(3.0), np.log(2.0)]), None,
    )
    total = float(np.dot(w, _ll_gamma_gamma(params, (x, mv))))
    return _result("gamma_gamma", names, params, cov_log, total, int(w.sum()), len(w), penalizer, None)

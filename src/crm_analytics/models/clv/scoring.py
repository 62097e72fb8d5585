"""Scoring customers with a fit: P(alive), expected purchases (conditional on a history, and for a
new customer) and the Gamma-Gamma expected spend. Vectorised over customers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit, hyp2f1

from crm_analytics.errors import ModelFitError, ParamsError
from crm_analytics.models.clv.fit import _BTYD
from crm_analytics.models.clv.likelihoods import _pareto_log_a0
from crm_analytics.models.clv.optimiser import ArrayLike, FitResult

__all__ = ["p_alive", "expected_purchases", "expected_purchases_unconditional", "expected_spend"]


def _model_params(fit: FitResult, allowed: Sequence[str]) -> tuple[float, ...]:
    if not isinstance(fit, FitResult):
        raise ParamsError(f"expected a FitResult from fit_bgnbd/fit_mbgnbd/fit_pareto_nbd, got {type(fit).__name__}")
    if fit.model not in allowed:
        raise ParamsError(f"this needs a {' / '.join(allowed)} fit, got a {fit.model} fit")
    names = _BTYD[fit.model][0] if fit.model in _BTYD else ("p", "q", "v")
    return tuple(fit.params[k] for k in names)


def _arrays(*values: ArrayLike) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v, dtype=float) for v in values)


def _log_scaled_hyp2f1(power: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log[(1 - z)^power * 2F1(a, b; c; z)], falling back on Euler's transformation on overflow."""
    with np.errstate(all="ignore"):
        direct = np.log(hyp2f1(a, b, c, z)) + power * np.log1p(-z)
        euler = np.log(hyp2f1(c - a, c - b, c, z)) + (power + c - a - b) * np.log1p(-z)
    return np.where(np.isfinite(direct), direct, euler)


def p_alive(fit: FitResult, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Probability that a customer with history ``(frequency, recency, T)`` is still alive.

    Parameters
    ----------
    fit
        A BG/NBD, MBG/NBD or Pareto/NBD :class:`FitResult`.
    frequency, recency, T
        Arrays (broadcast together) in the fit's time unit.

    Returns
    -------
    numpy.ndarray
        P(alive) in [0, 1].
    """
    x, tx, T = _arrays(frequency, recency, T)
    if fit.model == "pareto_nbd":
        r, alpha, s, beta = _model_params(fit, ("pareto_nbd",))
        x, tx, T = np.broadcast_arrays(x, tx, T)
        log_a0 = _pareto_log_a0((r, alpha, s, beta), x, tx, T)
        odds = np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T) + log_a0
        return expit(-odds)
    r, alpha, a, b = _model_params(fit, ("bgnbd", "mbgnbd"))
    ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    if fit.model == "mbgnbd":
        return expit(-(np.log(a) - np.log(b + x) + ratio))
    odds = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + ratio
    return np.where(x > 0, expit(-odds), 1.0)


def expected_purchases(fit: FitResult, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike,
                       T: ArrayLike) -> np.ndarray:
    """Expected number of purchases in the next ``t`` time units, given each customer's history.

    Parameters
    ----------
    fit
        A BG/NBD, MBG/NBD or Pareto/NBD :class:`FitResult`.
    t
        Horizon(s) in the fit's time unit; broadcasts with the history arrays (e.g. ``t`` of
        shape ``(1, k)`` against histories of shape ``(n, 1)`` gives an ``(n, k)`` table).
    frequency, recency, T
        Customer histories in the same time unit.

    Returns
    -------
    numpy.ndarray
        Conditional expectations (BG/NBD eq. 10 of Fader, Hardie & Lee 2005; the MBG/NBD and
        Pareto/NBD analogues).
    """
    t, x, tx, T = _arrays(t, frequency, recency, T)
    if fit.model == "pareto_nbd":
        r, alpha, s, beta = _model_params(fit, ("pareto_nbd",))
        alive = p_alive(fit, x, tx, T)
        with np.errstate(all="ignore"):
            lr = np.log((beta + T) / (beta + T + t))
            growth = np.where(abs(s - 1) > 1e-12, -np.expm1((s - 1) * lr) / (s - 1), -lr)
        return (r + x) * (beta + T) / (alpha + T) * growth * alive
    r, alpha, a, b = _model_params(fit, ("bgnbd", "mbgnbd"))
    z = t / (alpha + T + t)
    if fit.model == "bgnbd":
        lead = (a + b + x - 1) / (a - 1)
        log_h = _log_scaled_hyp2f1(r + x, r + x, b + x, a + b + x - 1, z)
        return lead * (-np.expm1(log_h)) * p_alive(fit, x, tx, T)
    lead = (a + b + x) / (a - 1)
    log_h = _log_scaled_hyp2f1(r + x, r + x, b + x + 1, a + b + x, z)
    return lead * (-np.expm1(log_h)) * p_alive(fit, x, tx, T)


def expected_purchases_unconditional(fit: FitResult, t: ArrayLike) -> np.ndarray:
    """Expected repeat purchases of a new customer in the first ``t`` time units after birth.

    Parameters
    ----------
    fit
        A BG/NBD, MBG/NBD or Pareto/NBD :class:`FitResult`.
    t
        Time(s) since the first purchase, in the fit's time unit.

    Returns
    -------
    numpy.ndarray
        E[X(t)] (BG/NBD eq. 9 of Fader, Hardie & Lee 2005; MBG/NBD and Pareto/NBD analogues).
    """
    (t,) = _arrays(t)
    if fit.model == "pareto_nbd":
        r, alpha, s, beta = _model_params(fit, ("pareto_nbd",))
        lr = np.log(beta / (beta + t))
        growth = np.where(abs(s - 1) > 1e-12, -np.expm1((s - 1) * lr) / (s - 1), -lr)
        return r * beta / alpha * growth
    r, alpha, a, b = _model_params(fit, ("bgnbd", "mbgnbd"))
    z = t / (alpha + t)
    if fit.model == "bgnbd":
        log_h = _log_scaled_hyp2f1(np.full_like(z, r), np.full_like(z, r), np.full_like(z, b),
                                   np.full_like(z, a + b - 1), z)
        return (a + b - 1) / (a - 1) * (-np.expm1(log_h))
    log_h = _log_scaled_hyp2f1(np.full_like(z, r), np.full_like(z, r), np.full_like(z, b + 1),
                               np.full_like(z, a + b), z)
    return b / (a - 1) * (-np.expm1(log_h))


def expected_spend(gg_fit: FitResult, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
    """Expected amount of a customer's future purchase under the Gamma-Gamma model.

    Parameters
    ----------
    gg_fit
        A :func:`fit_gamma_gamma` result.
    frequency, monetary_value
        Repeat purchases and mean repeat amount; customers with frequency 0 get the
        population mean ``p v / (q - 1)``.

    Returns
    -------
    numpy.ndarray
        ``p (v + x m) / (p x + q - 1)``.

    Raises
    ------
    ModelFitError
        When ``q <= 1`` (the population mean spend is infinite).
    """
    p, q, v = _model_params(gg_fit, ("gamma_gamma",))
    if q <= 1:
        raise ModelFitError(f"gamma_gamma fit has q={q:.3g} <= 1, so the expected spend is infinite; "
                            "refit with a penalizer or check for extreme order totals")
    x, m = _arrays(frequency, monetary_value)
    m = np.where(x > 0, m, 0.0)
    return p * (v + x * m) / (p * x + q - 1)

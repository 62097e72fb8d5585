"""Fit results and the maximum-likelihood optimiser shared by every model of :mod:`crm_analytics.models.clv`.

:class:`FitResult` holds estimates, standard errors (inverse Hessian, delta method) and 95% intervals;
:func:`_maximise` maximises a weighted log-likelihood over log-parameters of a rescaled problem and
raises :class:`~crm_analytics.errors.ModelFitError` with advice on what to try when it cannot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from crm_analytics.errors import ModelFitError

__all__ = ["FitResult"]

_Z95 = 1.959963984540054
_LOG_BOUND = 18.0  # |log parameter| beyond this (on the rescaled problem) means a degenerate fit
#: The purchase (Buy-Till-You-Die) models, in the order the fit advice names them.
_BTYD_MODELS = ("bgnbd", "mbgnbd", "pareto_nbd")

ArrayLike = float | np.ndarray | pd.Series


@dataclass(frozen=True)
class FitResult:
    """A fitted BTYD or spend model.

    Attributes
    ----------
    model
        ``"bgnbd"``, ``"mbgnbd"``, ``"pareto_nbd"`` or ``"gamma_gamma"``.
    params, se
        Maximum-likelihood estimates and their standard errors (inverse Hessian, delta method).
    ci
        95% intervals ``(low, high)``, computed on the log scale so they stay positive.
    loglik
        Total log-likelihood (not the mean) at the estimates, without the penalty.
    n_customers
        Customers the model was fitted on; ``n_groups`` distinct sufficient statistics.
    converged
        Always ``True`` for a returned result (failures raise :class:`ModelFitError`).
    time_unit_days
        Length of one time unit in days, when the summary recorded it.
    """

    model: str
    params: dict[str, float]
    se: dict[str, float]
    ci: dict[str, tuple[float, float]]
    loglik: float
    n_customers: int
    converged: bool
    n_groups: int = 0
    penalizer: float = 0.0
    time_unit_days: float | None = None

    def table(self) -> pd.DataFrame:
        """Parameters as a table: ``estimate, se, ci_low, ci_high`` indexed by parameter."""
        return pd.DataFrame(
            {
                "estimate": self.params,
                "se": self.se,
                "ci_low": {k: v[0] for k, v in self.ci.items()},
                "ci_high": {k: v[1] for k, v in self.ci.items()},
            }
        ).rename_axis("parameter")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready headline numbers (for ``reports/<dataset>/metrics/*.json``)."""
        return {
            "model": self.model,
            "params": {k: float(v) for k, v in self.params.items()},
            "se": {k: float(v) for k, v in self.se.items()},
            "ci95": {k: [float(v[0]), float(v[1])] for k, v in self.ci.items()},
            "loglik": float(self.loglik),
            "n_customers": int(self.n_customers),
            "n_groups": int(self.n_groups),
            "penalizer": float(self.penalizer),
            "time_unit_days": self.time_unit_days,
        }


def _central_grad(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _hessian(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    k = x.size
    hess = np.empty((k, k))
    f0 = f(x)
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = h
        hess[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h**2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = h
            hess[i, j] = hess[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * h**2)
    return hess


def _fit_advice(model: str, reason: str, n: int, n_groups: int, n_repeat: int | None) -> str:
    who = f"{n} customers ({n_groups} distinct histories"
    who += f", {n_repeat} with a repeat purchase)" if n_repeat is not None else ")"
    if model == "gamma_gamma":
        return (
            f"gamma_gamma fit did not converge on {who}: {reason}. Try: a small penalizer (penalizer=0.001), "
            "dropping extreme order totals, or a longer calibration period (more repeat customers)"
        )
    others = " / ".join(f"fit_{m}" for m in _BTYD_MODELS if m != model)
    return (
        f"{model} fit did not converge on {who}: {reason}. Try: a different time unit "
        "(freq='W', or freq='D' with freq_multiplier=7), a longer or shorter calibration period "
        "(more weeks of history per customer), a small penalizer (penalizer=0.001), or another model "
        f"({others}); check that the summary has enough repeat customers"
    )


def _maximise(
    model: str,
    names: Sequence[str],
    loglik: Callable[[np.ndarray, Any], np.ndarray],
    data: Any,
    weights: np.ndarray,
    scaled: Sequence[int],
    scale: float,
    penalizer: float,
    starts: Sequence[Sequence[float]],
    n_repeat: int | None,
    with_grad: Callable[[Any, np.ndarray], Callable[[np.ndarray], tuple[float, np.ndarray]]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Maximise the weighted log-likelihood over log-parameters of a rescaled problem.

    ``data`` are already rescaled; the parameters at indices ``scaled`` are in the rescaled unit
    (multiply by ``scale`` to go from natural to rescaled). ``with_grad``, when given, builds from
    ``(data, weights)`` a function of the parameters returning the weighted log-likelihood and
    its analytic gradient (one evaluation per step instead of ``2k + 1`` for central differences). Returns the natural parameters and the covariance of the
    log-parameters.
    """
    wsum = float(weights.sum())
    n_groups = int(weights.size)
    sums = with_grad(data, weights) if with_grad is not None else None

    def objective(logp: np.ndarray) -> float:
        params = np.exp(logp)
        with np.errstate(all="ignore"):
            ll = loglik(params, data)
        value = -float(np.dot(weights, ll)) / wsum + penalizer * float(np.sum(params**2))
        return value if np.isfinite(value) else 1e12

    def value_and_grad(logp: np.ndarray) -> tuple[float, np.ndarray]:
        if with_grad is None:
            return objective(logp), _central_grad(objective, logp)
        params = np.exp(logp)
        with np.errstate(all="ignore"):
            ll, g = sums(params)
            value = -ll / wsum + penalizer * float(np.sum(params**2))
            grad = -g / wsum * params + 2.0 * penalizer * params**2  # chain rule: d/d log p
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e12, np.zeros_like(logp)
        return value, grad

    best = None
    for start in starts:
        x0 = np.asarray(start, dtype=float)
        res = minimize(
            value_and_grad, x0, jac=True, method="L-BFGS-B",
            bounds=[(-_LOG_BOUND - 2, _LOG_BOUND + 2)] * x0.size,
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-9, "maxls": 50},
        )
        if best is None or res.fun < best.fun:
            best = res
        grad = np.asarray(best.jac, dtype=float)  # the gradient at the point L-BFGS-B returned
        if best.fun < 1e12 and np.max(np.abs(grad)) <= 1e-5 and np.all(np.abs(best.x) <= _LOG_BOUND):
            break  # converged from this start; further starts are only for failures
    assert best is not None
    if best.fun >= 1e12 or not np.all(np.isfinite(best.x)):
        raise ModelFitError(_fit_advice(model, "the log-likelihood is not finite at any tried start",
                                        int(wsum), n_groups, n_repeat))
    if np.max(np.abs(grad)) > 1e-5:
        reason = f"the optimiser stopped short of a maximum (largest gradient {np.max(np.abs(grad)):.2g})"
        raise ModelFitError(_fit_advice(model, reason, int(wsum), n_groups, n_repeat))
    if np.any(np.abs(best.x) > _LOG_BOUND):
        drifting = [f"{names[i]} -> {'0' if best.x[i] < 0 else 'infinity'}"
                    for i in np.flatnonzero(np.abs(best.x) > _LOG_BOUND)]
        raise ModelFitError(_fit_advice(
            model, f"the estimates run off to the edge ({', '.join(drifting)}): the data cannot identify them",
            int(wsum), n_groups, n_repeat))
    if with_grad is None:
        hess = _hessian(objective, best.x) * wsum
    else:  # central differences of the analytic gradient (error of order step**2)
        step = 1e-4
        cols = [(value_and_grad(best.x + e)[1] - value_and_grad(best.x - e)[1]) / (2 * step)
                for e in np.eye(best.x.size) * step]
        hess = np.column_stack(cols)
        hess = (hess + hess.T) / 2 * wsum
        if not np.all(np.linalg.eigvalsh(hess) > 0):  # a nearly flat ridge: second differences of the value
            hess = _hessian(objective, best.x) * wsum
    eig = np.linalg.eigvalsh(hess)
    if not np.all(eig > 0):
        raise ModelFitError(_fit_advice(model, "the Hessian at the optimum is not positive definite "
                                        "(a flat or saddle likelihood)", int(wsum), n_groups, n_repeat))
    cov_log = np.linalg.inv(hess)
    params = np.exp(best.x)
    params[list(scaled)] /= scale
    return params, cov_log


def _result(model: str, names: Sequence[str], params: np.ndarray, cov_log: np.ndarray, loglik: float,
            n_customers: int, n_groups: int, penalizer: float, time_unit_days: float | None) -> FitResult:
    se_log = np.sqrt(np.diag(cov_log))
    return FitResult(
        model=model,
        params={k: float(v) for k, v in zip(names, params)},
        se={k: float(v * s) for k, v, s in zip(names, params, se_log)},
        ci={k: (float(v * np.exp(-_Z95 * s)), float(v * np.exp(_Z95 * s))) for k, v, s in zip(names, params, se_log)},
        loglik=float(loglik),
        n_customers=int(n_customers),
        converged=True,
        n_groups=int(n_groups),
        penalizer=float(penalizer),
        time_unit_days=time_unit_days,
    )

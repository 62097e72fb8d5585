"""Sufficient statistics of the purchase models: customers grouped by their distinct
``(frequency, recency, T)`` history, so fitting time does not grow with the number of customers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from crm_analytics.errors import ModelFitError
from crm_analytics.models.clv.optimiser import ArrayLike

__all__ = ["compress_summary"]


def _check_rft(summary: pd.DataFrame, model: str) -> None:
    missing = [c for c in ("frequency", "recency", "T") if c not in summary.columns]
    if missing:
        raise ModelFitError(f"{model}: the summary has no column(s) {missing}; build it with rfm_summary()")
    if summary.empty:
        raise ModelFitError(f"{model}: the summary has no customers; check the calibration period")
    x, tx, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    problems = []
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(tx)) and np.all(np.isfinite(T))):
        problems.append("missing or infinite values")
    elif np.any(x < 0) or np.any(x != np.round(x)):
        problems.append("frequency must be a whole number >= 0")
    elif np.any(tx < 0) or np.any(tx > T + 1e-9):
        problems.append("recency must lie between 0 and T")
    elif np.any((x == 0) & (tx != 0)):
        problems.append("recency must be 0 when frequency is 0")
    if problems:
        raise ModelFitError(f"{model}: the summary is not a valid (frequency, recency, T) table: {problems[0]}; "
                            "build it with rfm_summary()")
    if not np.any(x > 0):
        raise ModelFitError(f"{model}: no customer made a repeat purchase in the calibration period, so the "
                            "model cannot be fitted; use a longer calibration period")


def compress_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Distinct ``(frequency, recency, T)`` triples with the number of customers having each.

    Parameters
    ----------
    summary
        Output of :func:`rfm_summary` (any extra columns are ignored).

    Returns
    -------
    pandas.DataFrame
        Columns ``frequency, recency, T, weight``; ``weight`` sums to the number of customers.
    """
    _check_rft(summary, "compress_summary")
    return (
        summary.groupby(["frequency", "recency", "T"], sort=True, observed=True)
        .size()
        .rename("weight")
        .reset_index()
    )


@dataclass(frozen=True)
class _Histories:
    """Grouped (x, t_x, T) histories with the lookups that make a likelihood evaluation cheap.

    Terms that depend on x alone are evaluated once per distinct x (``xu``, ``ix``); the
    hypergeometric terms of the Pareto/NBD likelihood depend on (x, one time point) only and are
    evaluated once per distinct pair (``px``, ``ptau``; ``i_tx``, ``i_T`` map back).
    """

    x: np.ndarray
    tx: np.ndarray
    T: np.ndarray
    xu: np.ndarray
    ix: np.ndarray
    px: np.ndarray | None = None
    ptau: np.ndarray | None = None
    i_tx: np.ndarray | None = None
    i_T: np.ndarray | None = None

    def rescaled(self, k: float) -> _Histories:
        """The same histories with time multiplied by ``k``."""
        return replace(self, tx=self.tx * k, T=self.T * k, ptau=None if self.ptau is None else self.ptau * k)


def _histories(x: ArrayLike, tx: ArrayLike, T: ArrayLike, *, pairs: bool = False) -> _Histories:
    """Build :class:`_Histories` from equal-length 1-d arrays (``pairs`` for Pareto/NBD)."""
    x, tx, T = (np.asarray(v, dtype=float).reshape(-1) for v in (x, tx, T))
    xu, ix = _codes(x)
    h = _Histories(x, tx, T, xu, ix)
    if not pairs:
        return h
    both = np.concatenate([np.c_[x, tx], np.c_[x, T]])
    uniq, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return replace(h, px=uniq[:, 0].copy(), ptau=uniq[:, 1].copy(), i_tx=inverse[: x.size], i_T=inverse[x.size:])


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's index into them (hashing; only the distinct values are sorted)."""
    codes, uniques = pd.factorize(values, sort=True)
    return np.asarray(uniques, dtype=float), codes

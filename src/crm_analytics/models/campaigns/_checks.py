"""Argument checks shared by the campaign modules: a two-sided ``alpha`` to its normal quantile,
success/trial counts, finite outcome arrays, 0/1 treatment indicators, required DataFrame columns.

Private to :mod:`crm_analytics.models.campaigns`; every error names the argument and how to fix it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crm_analytics.errors import CrmAnalyticsError, DataContractError


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise CrmAnalyticsError(f"alpha must be in (0, 1), got {alpha!r}: use e.g. alpha=0.05 for 95% intervals")
    return float(stats.norm.ppf(1 - alpha / 2))


def _counts(x: Any, n: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    x_arr, n_arr = np.asarray(x, dtype=float), np.asarray(n, dtype=float)
    if np.any(n_arr <= 0) or np.any(x_arr < 0) or np.any(x_arr > n_arr) or np.any(~np.isfinite(x_arr + n_arr)):
        raise CrmAnalyticsError(
            f"{name}: need 0 <= successes <= trials and trials > 0, got successes={x!r}, trials={n!r}; "
            "pass counts of converted customers and of customers in the group")
    return x_arr, n_arr


def _values(y: Any, name: str, *, min_n: int = 1) -> np.ndarray:
    arr = np.asarray(y, dtype=float).ravel()
    if arr.size < min_n:
        raise CrmAnalyticsError(f"{name} has {arr.size} values; at least {min_n} are needed")
    if not np.all(np.isfinite(arr)):
        raise CrmAnalyticsError(
            f"{name} has {int((~np.isfinite(arr)).sum())} missing or infinite values: fill revenue of "
            "non-buyers with 0 and drop customers with unknown outcomes before calling")
    return arr


def _treatment(t: Any, name: str = "t") -> np.ndarray:
    arr = np.asarray(t)
    if arr.dtype == bool:
        arr = arr.astype(int)
    arr = np.asarray(arr, dtype=float).ravel()
    if not np.all(np.isin(arr, (0.0, 1.0))):
        raise CrmAnalyticsError(f"{name} must be 0/1 (1 = treated, 0 = control); found values "
                                f"{sorted(set(np.unique(arr).tolist()) - {0.0, 1.0})[:5]}")
    if arr.min() == arr.max():
        raise CrmAnalyticsError(f"{name} has only {'treated' if arr[0] else 'control'} rows: both groups are needed")
    return arr.astype(int)


def _columns(df: pd.DataFrame, cols: Sequence[str], where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise CrmAnalyticsError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataContractError(f"{where}: column(s) {missing} not found; the frame has {list(df.columns)}")


def _is_binary(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return True
    return bool(pd.api.types.is_numeric_dtype(s) and s.dropna().isin([0, 1]).all())

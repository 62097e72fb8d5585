"""Multiple testing: Holm–Bonferroni adjusted p-values (:func:`holm`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import CrmAnalyticsError

__all__ = ["holm"]


def holm(pvalues: Any) -> np.ndarray | pd.Series:
    """Holm–Bonferroni adjusted p-values (step-down; controls the family-wise error rate).

    With the *m* p-values sorted ``p_(1) <= ... <= p_(m)``, the adjusted value of ``p_(i)`` is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``. NaNs are kept and do not count in *m*. A Series
    comes back as a Series with the same index.
    """
    is_series = isinstance(pvalues, pd.Series)
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise CrmAnalyticsError("holm expects a one-dimensional list of p-values")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise CrmAnalyticsError("p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    vals = p[ok]
    m = vals.size
    order = np.argsort(vals, kind="mergesort")
    adj_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * vals[order]))
    adj = np.empty(m)
    adj[order] = adj_sorted
    out[ok] = adj
    return pd.Series(out, index=pvalues.index, name=pvalues.name) if is_series else out

"""RFM scores (quantile scores 1..bins, one tie rule) and the named segments of a segment map.

Score tie rule
--------------
:func:`rfm_scores` gives a value the score ``1 + floor(bins * share of customers with a
strictly worse value)``. Equal values always get the same score, a better value never gets
a lower score, the worst value always scores 1, and a score of *s* means the customer beats
between ``(s-1)/bins`` and ``s/bins`` of all customers. When most customers bought once, all
of them score ``f = 1`` and the next order counts jump straight to the score of the share they
beat (e.g. 1, 4, 5): fewer than ``bins`` distinct scores is the honest answer for heavy ties.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.models.segmentation._common import _require

__all__ = ["SCORE_AXES", "DEFAULT_SEGMENT_MAP", "rfm_scores", "validate_segment_map", "assign_segments",
           "segment_summary"]

#: Keys a segment rule may constrain: the r, f and m scores and ``fm`` (mean of f and m, rounded half up).
SCORE_AXES = ("r", "f", "m", "fm")

#: The standard named RFM segments on the R × FM grid (5 × 5 cells), first match wins.
#: ``fm`` = (f + m) / 2 rounded half up. Every one of the 125 (r, f, m) score cells matches a rule.
#:
#: ======  ==================  ==================  ==============  ==========  ===========
#: r \\ fm  1                   2                   3               4           5
#: ======  ==================  ==================  ==============  ==========  ===========
#: 5       New                 Potential loyalists Potential l.    Champions   Champions
#: 4       Promising           Potential loyalists Potential l.    Loyal       Loyal
#: 3       About to sleep      About to sleep      Need attention  Loyal       Loyal
#: 2       Hibernating         Hibernating         At risk         At risk     Can't lose them
#: 1       Lost                Lost                At risk         At risk     Can't lose them
#: ======  ==================  ==================  ==============  ==========  ===========
DEFAULT_SEGMENT_MAP: dict[str, dict[str, list[int]]] = {
    "Champions": {"r": [5, 5], "fm": [4, 5]},
    "Loyal": {"r": [3, 4], "fm": [4, 5]},
    "Potential loyalists": {"r": [4, 5], "fm": [2, 3]},
    "New": {"r": [5, 5], "fm": [1, 1]},
    "Promising": {"r": [4, 4], "fm": [1, 1]},
    "Need attention": {"r": [3, 3], "fm": [3, 3]},
    "About to sleep": {"r": [3, 3], "fm": [1, 2]},
    "Can't lose them": {"r": [1, 2], "fm": [5, 5]},
    "At risk": {"r": [1, 2], "fm": [3, 4]},
    "Hibernating": {"r": [2, 2], "fm": [1, 2]},
    "Lost": {"r": [1, 1], "fm": [1, 2]},
}


def _score(values: pd.Series, bins: int, higher_is_better: bool = True) -> np.ndarray:
    """``1 + floor(bins * share strictly worse)``: ties equal, monotone, worst value scores 1."""
    v = values.astype("float64")
    if not higher_is_better:
        v = -v
    worse = v.rank(method="min").to_numpy() - 1.0  # number of customers with a strictly worse value
    return (1 + np.floor(bins * worse / len(v))).astype("int64")


def rfm_scores(rfm: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Quantile scores 1..*bins* for recency, number of orders and revenue.

    Parameters
    ----------
    rfm : DataFrame
        Output of :func:`~crm_analytics.features.rfm.rfm_table` (``recency_days, orders, revenue``).
    bins : int
        Number of score levels (5 for the usual RFM grid).

    Returns
    -------
    DataFrame
        *rfm* with ``r_score``, ``f_score``, ``m_score`` (int) and ``fm_score`` (mean of f and m
        rounded half up). Recency is reversed: the most recent buyers score highest.

    Notes
    -----
    Tie rule (see the module notes): score = ``1 + floor(bins * share of customers with a
    strictly worse value)``; equal values always share a score.
    """
    _require(rfm, ["recency_days", "orders", "revenue"], "rfm")
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 2:
        raise ParamsError(f"bins={bins!r} must be a whole number ≥ 2 (5 for the usual RFM grid)")
    for col in ("recency_days", "orders", "revenue"):
        n_bad = int(pd.to_numeric(rfm[col], errors="coerce").isna().sum())
        if n_bad:
            raise DataContractError(f"rfm.{col} has {n_bad} missing or non-numeric value(s); build it with rfm_table()")
    out = rfm.copy()
    if len(out) == 0:
        for col in ("r_score", "f_score", "m_score", "fm_score"):
            out[col] = pd.Series(dtype="int64")
        return out
    out["r_score"] = _score(out["recency_days"], bins, higher_is_better=False)
    out["f_score"] = _score(out["orders"], bins)  # f: how often a customer buys (number of orders)
    out["m_score"] = _score(out["revenue"], bins)  # m: how much (revenue)
    out["fm_score"] = _fm(out["f_score"].to_numpy(), out["m_score"].to_numpy())
    return out


def _fm(f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean of the f and m scores rounded half up (not to even)."""
    return np.floor((np.asarray(f) + np.asarray(m)) / 2 + 0.5).astype("int64")



def _parse_range(value: Any, bins: int) -> tuple[tuple[int, int] | None, str | None]:
    """``[lo, hi]`` (or one number) as a pair, or the reason it is not one."""
    vals = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(vals, (list, tuple)) or len(vals) not in (1, 2) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        return None, f"must be [lo, hi] with whole numbers, e.g. [4, 5]; got {value!r}"
    lo, hi = int(vals[0]), int(vals[-1])
    if lo > hi:
        return None, f"[{lo}, {hi}] has lo > hi"
    if lo < 1 or hi > bins:
        return None, f"[{lo}, {hi}] is outside the scores 1..{bins}"
    return (lo, hi), None


def validate_segment_map(mapping: Mapping[str, Mapping[str, Any]], bins: int = 5
                         ) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """Check a segment map and return it as ordered ``(name, {axis: (lo, hi)})`` rules.

    Parameters
    ----------
    mapping : mapping
        ``{segment name: {axis: [lo, hi], ...}}`` in priority order (first match wins); axes are
        ``r``, ``f``, ``m`` and ``fm``; an axis left out matches any score; ``{}`` matches everyone.
    bins : int
        Score levels of the scores it will be applied to.

    Raises
    ------
    ParamsError
        Listing every problem: not a mapping, unknown keys, bad or out-of-range ranges, and the
        (r, f, m) score cells no rule covers.
    """
    if not isinstance(mapping, Mapping) or not mapping:
        raise ParamsError(
            f"segment map must be a non-empty mapping {{name: {{r: [lo, hi], f: [lo, hi]}}}}, got {mapping!r}"
        )
    problems: list[str] = []
    rules: list[tuple[str, dict[str, tuple[int, int]]]] = []
    for name, rule in mapping.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"segment name {name!r} must be non-empty text")
        if not isinstance(rule, Mapping):
            problems.append(f"segment {name!r}: rule must be a mapping like {{r: [4, 5], f: [4, 5]}}, got {rule!r}")
            continue
        unknown = [k for k in rule if k not in SCORE_AXES]
        if unknown:
            problems.append(f"segment {name!r}: unknown key(s) {unknown}; allowed keys are {list(SCORE_AXES)}")
        parsed: dict[str, tuple[int, int]] = {}
        for axis in SCORE_AXES:
            if axis in rule:
                rng, err = _parse_range(rule[axis], bins)
                if err:
                    problems.append(f"segment {name!r}: {axis} {err}")
                else:
                    parsed[axis] = rng
        rules.append((str(name), parsed))
    if not problems:
        grid = np.array(np.meshgrid(*[np.arange(1, bins + 1)] * 3, indexing="ij")).reshape(3, -1)
        cells = {"r": grid[0], "f": grid[1], "m": grid[2], "fm": _fm(grid[1], grid[2])}
        covered = np.zeros(grid.shape[1], dtype=bool)
        for _, parsed in rules:
            covered |= _rule_mask(parsed, cells)
        if not covered.all():
            miss = grid[:, ~covered].T
            shown = ", ".join(f"(r={r}, f={f}, m={m})" for r, f, m in miss[:8])
            problems.append(
                f"{len(miss)} of {grid.shape[1]} score cells match no rule, e.g. {shown}"
                f"{' …' if len(miss) > 8 else ''}; widen a range or end with a catch-all rule such as Other: {{}}"
            )
    if problems:
        raise ParamsError("segment map is invalid:\n  - " + "\n  - ".join(problems))
    return rules


def _rule_mask(rule: Mapping[str, tuple[int, int]], cells: Mapping[str, np.ndarray]) -> np.ndarray:
    n = len(next(iter(cells.values())))
    mask = np.ones(n, dtype=bool)
    for axis, (lo, hi) in rule.items():
        mask &= (cells[axis] >= lo) & (cells[axis] <= hi)
    return mask


def assign_segments(scores: pd.DataFrame, mapping: Mapping[str, Mapping[str, Any]] | None = None,
                    bins: int = 5) -> pd.DataFrame:
    """Name each customer's segment from the r, f, m scores; the first matching rule wins.

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`rfm_scores` (``r_score, f_score, m_score``).
    mapping : mapping, optional
        A segment map (see :func:`validate_segment_map`), e.g. from params; default
        :data:`DEFAULT_SEGMENT_MAP`.
    bins : int
        Score levels the scores were made with.

    Returns
    -------
    DataFrame
        *scores* with ``fm_score`` and ``segment`` (categorical, categories in map order).
    """
    rules = validate_segment_map(DEFAULT_SEGMENT_MAP if mapping is None else mapping, bins)
    _require(scores, ["r_score", "f_score", "m_score"], "scores")
    out = scores.copy()
    cells: dict[str, np.ndarray] = {}
    for axis in ("r", "f", "m"):
        col = pd.to_numeric(out[f"{axis}_score"], errors="coerce").to_numpy(dtype="float64")
        bad = ~np.isfinite(col) | (col < 1) | (col > bins) | (col != np.round(col))
        if bad.any():
            raise DataContractError(
                f"scores.{axis}_score has {int(bad.sum())} value(s) that are not whole numbers 1..{bins}; "
                "make the scores with rfm_scores()"
            )
        cells[axis] = col.astype("int64")
    cells["fm"] = _fm(cells["f"], cells["m"])
    out["fm_score"] = cells["fm"]
    names = [name for name, _ in rules]
    conds = [_rule_mask(rule, cells) for _, rule in rules]
    seg = np.select(conds, np.array(names, dtype=object), default=None) if len(out) else np.array([], dtype=object)
    out["segment"] = pd.Categorical(seg, categories=list(dict.fromkeys(names)))
    return out


def segment_summary(rfm_with_segment: pd.DataFrame, segment_col: str = "segment") -> pd.DataFrame:
    """Size and value of every segment.

    Returns
    -------
    DataFrame
        Indexed by segment (map order, empty segments left out): ``customers``, ``customer_share``,
        ``revenue``, ``revenue_share``, ``orders``, ``aov`` (revenue / orders), ``orders_per_customer``,
        ``revenue_per_customer`` and ``mean_days_since_last_order``.
    """
    _require(rfm_with_segment, [segment_col, "orders", "revenue", "recency_days"], "rfm_with_segment")
    g = rfm_with_segment.groupby(segment_col, observed=True, sort=True)
    out = pd.DataFrame({
        "customers": g.size(),
        "revenue": g["revenue"].sum(),
        "orders": g["orders"].sum(),
        "mean_days_since_last_order": g["recency_days"].mean(),
    })
    out.insert(1, "customer_share", out["customers"] / out["customers"].sum())
    out.insert(3, "revenue_share", out["revenue"] / out["revenue"].sum() if out["revenue"].sum() else np.nan)
    out["aov"] = out["revenue"] / out["orders"]
    out["orders_per_customer"] = out["orders"] / out["customers"]
    out["revenue_per_customer"] = out["revenue"] / out["customers"]
    out = out[["customers", "customer_share", "revenue", "revenue_share", "orders", "aov", "orders_per_customer",
               "revenue_per_customer", "mean_days_since_last_order"]]
    out.index = out.index.astype(str)
    out.index.name = segment_col
    return out

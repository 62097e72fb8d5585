"""Small-group suppression: merge or hide groups of fewer than ``min_group_size`` customers before a
table is published."""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import pandas as pd

from crm_analytics import i18n
from crm_analytics.errors import ParamsError
from crm_analytics.models.segmentation._common import _require

__all__ = ["OTHER_LABEL", "suppress_small"]

#: Label that :func:`suppress_small` gives merged small groups.
OTHER_LABEL = "Other (small groups)"


def _list(labels: Sequence[Any], n: int = 8) -> str:
    shown = ", ".join(str(x) for x in list(labels)[:n])
    return shown + (", …" if len(labels) > n else "")


def _looks_additive(name: str) -> bool:
    """Totals and shares of a total add up when groups merge; ratios (``_per_``, aov, basket, means) do not."""
    return bool(re.fullmatch(r"revenue|orders|customers|share|revenue_at_stake|(customer|revenue|order)s?_share|"
                             r"share_of_\w+", name))


def suppress_small(df: pd.DataFrame, count_col: str | None, min_group_size: int = 10,
                   label_col: str | None = None, *, within: Sequence[str] | None = None,
                   additive: Sequence[str] | None = None, other_label: str = OTHER_LABEL
                   ) -> tuple[pd.DataFrame, str]:
    """Protect small groups in a table before it is published.

    Three modes:

    - *label_col* given: rows whose *count_col* is between 1 and ``min_group_size - 1`` are merged
      into one row labelled *other_label* (per combination of the *within* columns). Columns in
      *additive* are summed (default: *count_col*, integer columns, and totals or shares of a total:
      ``revenue``, ``orders``, ``customers``, ``share``, ``revenue_at_stake``, ``customer_share``,
      ``revenue_share``, ``order_share``, ``share_of_*``); other numeric columns (ratios such as aov,
      basket or a per-customer channel share) become the count-weighted mean; other text columns are left empty. A merged row that is itself still
      too small is hidden (its numbers set to missing).
    - *label_col* ``None``: such rows keep their labels but all their numbers are hidden.
    - *count_col* ``None``: every numeric cell is a count (a cross table); small cells are hidden.

    *label_col* may also name the index.

    Returns
    -------
    (DataFrame, str)
        The safe table and a note saying what was merged or hidden ("" when nothing was).
    """
    if not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise ParamsError(f"min_group_size={min_group_size!r} must be a whole number ≥ 1")
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    if count_col is None:
        vals = df[num]
        small = (vals > 0) & (vals < min_group_size)
        n_small = int(small.to_numpy().sum())
        out = df.copy()
        out[num] = vals.astype("float64").mask(small)
        note = (i18n.t("{cells:,} cell(s) with fewer than {minimum:,} customers are hidden.", cells=n_small,
                       minimum=min_group_size) if n_small else "")
        return out, note
    on_index = label_col is not None and label_col not in df.columns and df.index.name == label_col
    work = df.reset_index() if on_index else df
    _require(work, [count_col] + ([label_col] if label_col else []) + list(within or []), "table")
    cnt = pd.to_numeric(work[count_col], errors="coerce")
    small = (cnt > 0) & (cnt < min_group_size)
    if not small.any():
        return df.copy(), ""
    if label_col is None:
        out = work.copy()
        out[num] = out[num].astype("float64")
        out.loc[small, num] = np.nan
        return (out.set_index(label_col) if on_index else out), i18n.t(
            "{rows:,} row(s) with fewer than {minimum:,} customers are hidden.", rows=int(small.sum()),
            minimum=min_group_size)
    within = list(within or [])
    add = list(additive) if additive is not None else [count_col] + [
        c for c in num if c != count_col and (pd.api.types.is_integer_dtype(work[c]) or _looks_additive(c))]
    avg = [c for c in num if c not in add and c not in within and c != label_col]
    merged_labels = work.loc[small, label_col].astype(str).tolist()
    sm = work.loc[small].copy()
    w = pd.to_numeric(sm[count_col], errors="coerce").astype("float64")
    for c in avg:
        sm[c] = sm[c].astype("float64") * w
    keys = within if within else (lambda _: 0)
    g = sm.groupby(keys, sort=False, dropna=False)
    merged = g[add + avg].sum(min_count=1)
    for c in avg:
        merged[c] = merged[c] / merged[count_col]
    merged = merged.reset_index() if within else merged.reset_index(drop=True)
    merged[label_col] = other_label
    big = work.loc[~small].copy()
    big[label_col] = big[label_col].astype(object)
    out = pd.concat([big, merged], ignore_index=True)[list(work.columns)]
    names = _list([i18n.value(x) for x in dict.fromkeys(merged_labels)])
    if within:
        note = i18n.t("{groups:,} group(s) across {values:,} {within}s with fewer than {minimum:,} customers "
                      "({names}) were merged into '{other}'.", groups=len(merged_labels), values=len(merged),
                      within="/".join(within), minimum=min_group_size, names=names, other=other_label)
    else:
        note = i18n.t("{groups:,} group(s) with fewer than {minimum:,} customers ({names}) were merged into "
                      "'{other}'.", groups=len(merged_labels), minimum=min_group_size, names=names, other=other_label)
    still = (out[label_col] == other_label) & (pd.to_numeric(out[count_col], errors="coerce") < min_group_size)
    if still.any():
        out[num] = out[num].astype("float64")
        out.loc[still, num] = np.nan
        note += " " + i18n.t("{rows:,} merged row(s) still had fewer than {minimum:,} customers and are hidden.",
                             rows=int(still.sum()), minimum=min_group_size)
    return (out.set_index(label_col) if on_index else out), note

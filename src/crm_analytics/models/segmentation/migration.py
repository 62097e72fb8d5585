"""Segment migration: the transition matrix of RFM segments between two dates and the revenue at stake
in each move."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from crm_analytics.errors import ParamsError
from crm_analytics.features.rfm import purchase_rows, rfm_table, ts_literal
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ParquetTable, local_ibis
from crm_analytics.models.segmentation._common import DAY, _purchase_frame, _timestamp
from crm_analytics.models.segmentation.scores import assign_segments, rfm_scores

__all__ = ["NEW_CUSTOMER_LABEL", "Migration", "migration"]

#: Row label of :func:`migration` for customers who had not bought yet at the earlier date.
NEW_CUSTOMER_LABEL = "New (not yet a customer)"


@dataclass(frozen=True)
class Migration:
    """Segment moves between two dates (:func:`migration`).

    Attributes
    ----------
    counts : DataFrame
        Customers per (segment at *as_of_prev*, row) × (segment at *as_of_now*, column); the last
        row, :data:`NEW_CUSTOMER_LABEL`, holds customers whose first purchase came after *as_of_prev*.
    revenue_at_stake : DataFrame
        Same cells: the customers' revenue in the *window_days* before *as_of_prev*, summed.
    moves : DataFrame
        Per customer: ``segment_prev``, ``segment_now``, ``revenue_before_prev``.
    """

    counts: pd.DataFrame
    revenue_at_stake: pd.DataFrame
    moves: pd.DataFrame


def _segments_at(orders: pd.DataFrame | ParquetTable, as_of: pd.Timestamp, mapping: Mapping | None, bins: int) -> pd.Series:
    return assign_segments(rfm_scores(rfm_table(orders, as_of), bins), mapping, bins)["segment"]


def _window_revenue(orders: pd.DataFrame | ParquetTable, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.Series:
    """Revenue per customer of the purchases in ``(lo, hi]`` (customers without any left out)."""
    if isinstance(orders, ParquetTable):  # summed where the orders lie: only one row per customer comes back
        with local_ibis() as db:
            t = purchase_rows(db, orders, hi)
            t = t.filter(t.order_ts > ts_literal(lo))
            got = t.group_by("customer_id").aggregate(amount=t.order_total.sum()).to_pyarrow().to_pandas()
        return got.set_index("customer_id")["amount"]
    frame = _purchase_frame(orders)
    cut_lo, cut_hi = lo.tz_localize(None), hi.tz_localize(None)
    win = frame[frame["customer_id"].notna() & frame["status"].isin(PURCHASE_STATUSES)
                & (frame["ts"] > cut_lo) & (frame["ts"] <= cut_hi)]
    return win.groupby("customer_id")["amount"].sum()


def migration(orders: pd.DataFrame | ParquetTable, as_of_prev: Any, as_of_now: Any, mapping: Mapping | None = None, *,
              bins: int = 5, window_days: float = 365) -> Migration:
    """Transition matrix of RFM segments between an earlier and a later date.

    Scores are made separately at each date (each customer ranked against the customers of that
    date). Buying history never shrinks, so every customer at *as_of_prev* has a segment now.

    Parameters
    ----------
    orders : DataFrame or ParquetTable
        Clean orders (a :class:`~crm_analytics.ingest.tables.ParquetTable` is aggregated in the engine).
    as_of_prev, as_of_now : date or timestamp
        The earlier and the later date.
    mapping : mapping, optional
        Segment map (default :data:`DEFAULT_SEGMENT_MAP`).
    bins : int
        Score levels.
    window_days : float
        Revenue at stake counts purchases in ``(as_of_prev - window_days, as_of_prev]`` (12 months).

    Returns
    -------
    Migration
    """
    prev, now = _timestamp(as_of_prev, "as_of_prev"), _timestamp(as_of_now, "as_of_now")
    if prev >= now:
        raise ParamsError(f"as_of_prev ({prev:%Y-%m-%d}) must be before as_of_now ({now:%Y-%m-%d})")
    seg_now = _segments_at(orders, now, mapping, bins)
    seg_prev = _segments_at(orders, prev, mapping, bins)
    names = list(seg_now.cat.categories)
    revenue = _window_revenue(orders, prev - window_days * DAY, prev)
    moves = pd.DataFrame({
        "segment_prev": seg_prev.astype(object).reindex(seg_now.index).fillna(NEW_CUSTOMER_LABEL),
        "segment_now": seg_now.astype(object),
    })
    moves["revenue_before_prev"] = revenue.reindex(moves.index).fillna(0.0).to_numpy()
    rows = names + [NEW_CUSTOMER_LABEL]
    moves["segment_prev"] = pd.Categorical(moves["segment_prev"], categories=rows)
    moves["segment_now"] = pd.Categorical(moves["segment_now"], categories=names)
    g = moves.groupby(["segment_prev", "segment_now"], observed=False)
    counts = g.size().unstack(fill_value=0).reindex(index=rows, columns=names, fill_value=0).astype("int64")
    stake = g["revenue_before_prev"].sum().unstack(fill_value=0.0).reindex(index=rows, columns=names,
                                                                          fill_value=0.0)
    for m in (counts, stake):
        m.index = pd.Index([str(i) for i in m.index], name="segment_prev")
        m.columns = pd.Index([str(c) for c in m.columns], name="segment_now")
    return Migration(counts, stake, moves)

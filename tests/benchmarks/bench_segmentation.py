"""Segmentation benchmark on the 1,000,000-customer world, beside a plain pandas groupby reference."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from bench_clv import RUNS, _purchases, _side_by_side, _timed


def _pandas_rfm(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The same table rfm_table returns, as a plain pandas groupby."""
    g = orders.groupby("customer_id")
    last = g["order_ts"].max()
    ref = pd.DataFrame({"recency_days": (as_of - last).dt.total_seconds() / 86400, "orders": g.size(),
                        "revenue": g["order_total"].sum(), "first_purchase": g["order_ts"].min(),
                        "last_purchase": last})
    ref["aov"] = ref["revenue"] / ref["orders"]
    return ref


def rfm_segments_clusters_1m() -> dict:
    """RFM table (timed against a pandas groupby, median of RUNS runs each, both warmed up) and the
    whole step: RFM + scores + named segments + k-means clusters on log RFM (timed against the 30 s goal)."""
    from crm_analytics.models import segmentation

    o = _purchases()
    orders = o.assign(status="completed")
    as_of = orders["order_ts"].max().normalize() + pd.Timedelta(days=1)
    segmentation.rfm_table(orders.head(1000), as_of)  # both sides warmed up (imports, first query)
    _pandas_rfm(orders.head(1000), as_of)
    times, ref_times = [], []
    for _ in range(RUNS):  # alternating, as in clv_summary_1m
        rfm, t = _timed(segmentation.rfm_table, orders, as_of, runs=1)
        ref, r = _timed(_pandas_rfm, orders, as_of, runs=1)
        times += t
        ref_times += r
    t0 = time.perf_counter()
    rfm = segmentation.rfm_table(orders, as_of)
    seg = segmentation.assign_segments(segmentation.rfm_scores(rfm))
    feats = pd.DataFrame({"log_orders": (rfm["orders"]).map(float).pipe(lambda s: s.clip(lower=1)).apply("log"),
                          "log_revenue": rfm["revenue"].clip(lower=0.01).apply("log"),
                          "log_recency_days": rfm["recency_days"].clip(lower=0.01).apply("log")})
    cl = segmentation.cluster_customers(feats, range(3, 7), "kmeans", 0, sample_size=5000)
    seconds = time.perf_counter() - t0
    return {**_side_by_side(times, ref_times),
            "reference": f"the same RFM table: ours (DuckDB via Ibis) vs a plain pandas groupby, median of {RUNS} "
                         "runs each",
            "pipeline_seconds": round(seconds, 2), "pipeline_goal_seconds": 30.0,
            "customers": len(seg), "k": int(cl.k), "segments": int(seg["segment"].nunique()),
            "rfm_equal_reference": bool((ref["orders"].reindex(rfm.index) == rfm["orders"]).all()
                                        and np.allclose(ref["revenue"].reindex(rfm.index), rfm["revenue"]))}

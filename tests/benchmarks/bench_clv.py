"""CLV benchmarks on the 1,000,000-customer world, each beside lifetimes in the same run."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from bench_pipeline import BENCH_ROOT, BIG, big_world, cleaning_1m


def _purchases() -> pd.DataFrame:
    """Purchases of the big world as notebook 03 reads them: the clean orders (sorted by customer),
    purchases only. Cleans the world first if no benchmark has yet."""
    big_world()
    from crm_analytics.ingest.tables import purchases

    clean = BENCH_ROOT / "data" / "interim" / BIG / "orders.parquet"
    if not clean.exists():
        cleaning_1m()
    o = pd.read_parquet(clean, columns=["customer_id", "order_ts", "status", "order_total"])
    return purchases(o)[["customer_id", "order_ts", "order_total"]].reset_index(drop=True)


def _lifetimes_summary(o: pd.DataFrame) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    t = o.assign(order_ts=o["order_ts"].dt.tz_convert(None))
    return summary_data_from_transaction_data(t, "customer_id", "order_ts", monetary_value_col="order_total",
                                              observation_period_end=t["order_ts"].max(), freq="D",
                                              freq_multiplier=7)


RUNS = 5


def _timed(fn, *args, runs: int = RUNS, **kwargs):
    """``fn(*args, **kwargs)`` run ``runs`` times: the last result and each run's seconds."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn(*args, **kwargs)
        times.append(time.perf_counter() - t0)
    return result, times


def _side_by_side(times: list[float], ref_times: list[float]) -> dict:
    """Median seconds of each side (the same number of runs, alternating sides) and every run."""
    return {"seconds": round(float(np.median(times)), 3), "reference_seconds": round(float(np.median(ref_times)), 3),
            "runs": RUNS, "run_seconds": [round(t, 3) for t in times],
            "reference_run_seconds": [round(t, 3) for t in ref_times]}


def clv_summary_1m() -> dict:
    from crm_analytics.models.clv import rfm_summary

    o = _purchases()
    rfm_summary(o.head(1000), freq="D", freq_multiplier=7)  # both sides warmed up (imports, first query)
    _lifetimes_summary(o.head(1000))
    times, ref_times = [], []
    for _ in range(RUNS):  # alternating, so neither side gets a quieter machine or a warmer allocator
        ours, t = _timed(rfm_summary, o, freq="D", freq_multiplier=7, runs=1)
        ref, r = _timed(_lifetimes_summary, o, runs=1)
        times += t
        ref_times += r
    ref = ref.reindex(ours.index)
    cols = ["frequency", "recency", "T", "monetary_value"]
    same = bool(np.allclose(ours[cols].to_numpy(float), ref[cols].to_numpy(float), rtol=1e-9, atol=1e-9))
    # the same rows in random order: customers keyed by hashing their ids instead of by position
    shuffled = o.sample(frac=1.0, random_state=0)
    unsorted, unsorted_times = _timed(rfm_summary, shuffled, freq="D", freq_multiplier=7)
    return {**_side_by_side(times, ref_times),
            "reference": f"lifetimes summary_data_from_transaction_data on the clean orders, median of {RUNS} "
                         "runs each (goal: ours >= 10x faster)",
            "orders": len(o), "customers": len(ours), "equal_to_lifetimes": same,
            "unsorted_input_seconds": round(float(np.median(unsorted_times)), 3),
            "unsorted_input_ratio": round(float(np.median(ref_times) / np.median(unsorted_times)), 2),
            "unsorted_input_same_result": bool(unsorted.index.equals(ours.index) and np.allclose(
                unsorted[cols].to_numpy(float), ours[cols].to_numpy(float), rtol=1e-12, atol=1e-9))}


def bgnbd_fit_1m() -> dict:
    from lifetimes import BetaGeoFitter

    from crm_analytics.models.clv import fit_bgnbd, rfm_summary

    s = rfm_summary(_purchases(), freq="D", freq_multiplier=7)
    t0 = time.perf_counter()
    ours = fit_bgnbd(s)
    seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
    ref_seconds = time.perf_counter() - t0
    rel = {k: abs(ours.params[k] - float(ref.params_[k])) / abs(float(ref.params_[k])) for k in ("r", "alpha", "a", "b")}
    return {"seconds": round(seconds, 2), "reference_seconds": round(ref_seconds, 2),
            "reference": "lifetimes BetaGeoFitter.fit on the same summary (goal: >= 20x faster, params equal to 1e-4)",
            "customers": len(s), "max_relative_param_difference": max(rel.values()),
            "params_equal_1e-4": max(rel.values()) <= 1e-4}


def pareto_fit_1m() -> dict:
    from lifetimes import ParetoNBDFitter

    from crm_analytics.models.clv import fit_pareto_nbd, rfm_summary

    s = rfm_summary(_purchases(), freq="D", freq_multiplier=7)
    t0 = time.perf_counter()
    ours = fit_pareto_nbd(s)
    seconds = time.perf_counter() - t0
    sub = s.sample(n=100_000, random_state=0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ParetoNBDFitter().fit(sub["frequency"], sub["recency"], sub["T"])
    ref_100k = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "reference_seconds": 30.0,
            "reference": "goal: 1,000,000 customers in 30 s", "customers": len(s), "params": ours.params,
            "lifetimes_seconds_on_100k_sample": round(ref_100k, 2)}

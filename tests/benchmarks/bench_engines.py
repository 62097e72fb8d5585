"""The customer summary and the RFM table on the 1,000,000-customer world's clean orders, on DuckDB and
on Spark ``local[2]`` (:mod:`crm_analytics.compute`), each engine in a process of its own.

Each benchmark starts two side processes (``run.py --child bench_engines:_side_<what>_<engine>``): one with
``compute.use("duckdb")``, one with ``compute.use("pyspark", spark_master="local[2]")``. A side reads the clean
orders as notebook 02 and 03 do (a pandas frame, sorted by customer), warms its engine up on 1,000 rows
(imports, the SparkSession, the first query), then times :data:`RUNS` calls and reports the median, rows per
second and its own peak memory. ``seconds`` is DuckDB's, ``reference_seconds`` Spark's, so ``ratio`` is
Spark / DuckDB (above 1: DuckDB is faster). Both sides' results are compared (same customers, same figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_clv import _purchases

HERE = Path(__file__).resolve().parent
RUNS = 3


def _orders() -> pd.DataFrame:
    """The clean purchases of the 1,000,000-customer world (customer_id, order_ts, order_total), as a
    completed-order frame both functions accept."""
    return _purchases().assign(status="completed")


def _side(what: str, engine: str) -> dict:
    from crm_analytics import compute
    from crm_analytics.features.rfm import rfm_table
    from crm_analytics.features.summary import rfm_summary

    if engine == "pyspark":
        compute.use("pyspark", spark_master="local[2]")
    else:
        compute.use("duckdb")
    o = _orders()
    as_of = o["order_ts"].max().normalize() + pd.Timedelta(days=1)
    if what == "summary":
        def fn(frame):
            return rfm_summary(frame, freq="D", freq_multiplier=7)
    else:
        def fn(frame):
            return rfm_table(frame, as_of)
    t0 = time.perf_counter()
    fn(o.head(1000))  # warm-up: imports, the engine (a SparkSession), the first query
    warm = time.perf_counter() - t0
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        result = fn(o)
        times.append(time.perf_counter() - t0)
    out = HERE.parent.parent / "build" / "bench" / f"engine_{what}_{engine}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    result.to_parquet(out)
    seconds = float(np.median(times))
    return {"seconds": round(seconds, 3), "run_seconds": [round(t, 3) for t in times],
            "warm_up_seconds": round(warm, 2), "rows": len(o), "customers": len(result),
            "rows_per_second": round(len(o) / seconds), "result": str(out),
            "children_peak_mb": _children_peak_mb()}


def _children_peak_mb() -> float:
    """The largest peak resident memory (MB) of this process's live children (Spark's JVM), from /proc."""
    peak = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != os.getpid():
                continue
            hwm = [ln for ln in (stat.parent / "status").read_text().splitlines() if ln.startswith("VmHWM:")]
        except (OSError, IndexError, ValueError):
            continue
        if hwm:
            peak = max(peak, int(hwm[0].split()[1]) / 1024)
    return round(peak, 1)


def _side_summary_duckdb() -> dict:
    return _side("summary", "duckdb")


def _side_summary_pyspark() -> dict:
    return _side("summary", "pyspark")


def _side_rfm_duckdb() -> dict:
    return _side("rfm", "duckdb")


def _side_rfm_pyspark() -> dict:
    return _side("rfm", "pyspark")


def _run_side(spec: str) -> dict:
    """Run one side in its own process; its result with its own peak resident memory (MB)."""
    proc = subprocess.Popen([sys.executable, str(HERE / "run.py"), "--child", spec], stdout=subprocess.PIPE,
                            text=True, cwd=HERE.parent.parent)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    lines = [ln for ln in out.splitlines() if ln.startswith("BENCH-RESULT ")]
    if os.waitstatus_to_exitcode(status) != 0 or not lines:
        raise RuntimeError(f"{spec} failed:\n{out[-3000:]}")
    return {**json.loads(lines[-1].split(" ", 1)[1]), "peak_mb": round(usage.ru_maxrss / 1024, 1)}


def _both(what: str, label: str) -> dict:
    duck = _run_side(f"bench_engines:_side_{what}_duckdb")
    spark = _run_side(f"bench_engines:_side_{what}_pyspark")
    a, b = pd.read_parquet(duck["result"]), pd.read_parquet(spark["result"])
    num = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c])]
    same = bool(a.index.equals(b.index) and np.allclose(a[num].to_numpy(float), b[num].to_numpy(float),
                                                         rtol=1e-9, atol=1e-9, equal_nan=True))
    return {"seconds": duck["seconds"], "reference_seconds": spark["seconds"],
            "reference": f"{label}: DuckDB (ours, seconds) vs Spark local[2] (reference), each in its own process, "
                         f"median of {RUNS} runs after a warm-up; ratio = Spark / DuckDB",
            "rows": duck["rows"], "customers": duck["customers"],
            "duckdb_rows_per_second": duck["rows_per_second"], "spark_rows_per_second": spark["rows_per_second"],
            "duckdb_run_seconds": duck["run_seconds"], "spark_run_seconds": spark["run_seconds"],
            "spark_warm_up_seconds": spark["warm_up_seconds"], "peak_mb": duck["peak_mb"],
            "spark_peak_mb": spark["peak_mb"], "spark_jvm_peak_mb": spark["children_peak_mb"],
            "equal_across_engines": same}


def customer_summary_1m() -> dict:
    """features.summary.rfm_summary (BTYD frequency, recency, T, monetary value; weeks) on both engines."""
    return _both("summary", "customer summary (features.summary.rfm_summary)")


def rfm_table_1m() -> dict:
    """features.rfm.rfm_table (recency, orders, revenue, aov, first and last purchase) on both engines."""
    return _both("rfm", "RFM table (features.rfm.rfm_table)")

"""Behaviour benchmark on the 1,000,000-customer world's clean events (about 36 M): sessions, the
funnel and cart abandonment, ours (Ibis on DuckDB over the parquet file) beside the same work in
plain pandas, each in a process of its own so that each peak memory is its own."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from bench_pipeline import BENCH_ROOT, BIG, big_world, cleaning_1m

GOAL_SECONDS = 60.0
GOAL_MB = 6 * 1024
STEPS = ["product_view", "add_to_cart", "checkout_start", "purchase"]


def _events_file() -> Path:
    big_world()
    path = BENCH_ROOT / "data" / "interim" / BIG / "events.parquet"
    if not path.exists():
        cleaning_1m()
    return path


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _ours(path: Path) -> dict:
    from crm_analytics.models import behaviour, funnel
    from crm_analytics.ingest.tables import ParquetTable

    t0 = time.perf_counter()
    sess = behaviour.sessions(ParquetTable(path))
    t_sessions = time.perf_counter() - t0
    fun = funnel.funnel(sess)
    ab = funnel.cart_abandonment(sess)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "sessions_seconds": t_sessions, "sessions": int(len(sess)),
            "reached": dict(zip(fun["step"], fun["reached"].astype(int))),
            "abandonment_rate": float(ab["abandonment_rate"].iloc[0])}


def _pandas(path: Path) -> dict:
    """The same numbers in plain pandas: read the columns, one groupby per session."""
    t0 = time.perf_counter()
    ev = pd.read_parquet(path, columns=["session_id", "ts", "event_type"])
    ev = ev[~ev["event_type"].isin(["email_open", "email_click", "push_open"])]
    flags = pd.DataFrame({f"has_{s}": ev["event_type"].eq(s).to_numpy() for s in STEPS})
    flags["session_id"] = ev["session_id"].to_numpy()
    flags["ts"] = ev["ts"].to_numpy()
    g = flags.groupby("session_id", sort=False)
    sess = g[[f"has_{s}" for s in STEPS]].any()
    sess["start_ts"] = g["ts"].min()
    sess["end_ts"] = g["ts"].max()
    reached = {s: int(sess[f"has_{s}"].sum()) for s in STEPS}
    carted = sess["has_add_to_cart"]
    rate = float((carted & ~sess["has_purchase"]).sum() / carted.sum())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "sessions": int(len(sess)), "reached": reached, "abandonment_rate": rate}


def _side(which: str) -> dict:
    path = _events_file()
    result = (_ours if which == "ours" else _pandas)(path)
    result["peak_mb"] = _peak_mb()
    return result


def _in_own_process(which: str) -> dict:
    """Run one side in a fresh interpreter: its time and its own peak memory."""
    code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_behaviour as b; "
            f"print('SIDE ' + json.dumps(b._side({which!r})))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("SIDE ")]
    if run.returncode != 0 or not lines:
        return {"error": f"exit code {run.returncode}: {run.stderr[-1500:]}"}
    return json.loads(lines[-1][5:])


def behaviour_1m() -> dict:
    """Sessions + funnel + cart abandonment on the 1M world's events: ours against plain pandas."""
    path = _events_file()
    import pyarrow.parquet as pq

    n_events = pq.ParquetFile(path).metadata.num_rows
    ours = _in_own_process("ours")
    ref = _in_own_process("pandas")
    if "error" in ours:
        raise RuntimeError(ours["error"])
    out = {"seconds": round(ours["seconds"], 2), "peak_mb": ours["peak_mb"],
           "events": n_events, "events_per_second": round(n_events / ours["seconds"]),
           "sessions": ours["sessions"], "sessions_seconds": round(ours["sessions_seconds"], 2),
           "goal": f"<= {GOAL_SECONDS:.0f} s and <= {GOAL_MB} MB on 2 cores",
           "goal_met": ours["seconds"] <= GOAL_SECONDS and ours["peak_mb"] <= GOAL_MB}
    if "error" in ref:
        out.update(reference_seconds=None, reference=f"plain pandas failed: {ref['error'][:300]}")
    else:
        out.update(reference_seconds=round(ref["seconds"], 2), reference_peak_mb=ref["peak_mb"],
                   reference="the same sessions, funnel counts and abandonment in plain pandas (own process)",
                   reference_events_per_second=round(n_events / ref["seconds"]),
                   equal_to_reference=(ours["sessions"] == ref["sessions"] and ours["reached"] == ref["reached"]
                                       and abs(ours["abandonment_rate"] - ref["abandonment_rate"]) < 1e-12))
    return out

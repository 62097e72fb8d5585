"""Benchmarks of the foundation: demo generation, cleaning at scale, `make reports` on demo."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
#: a project root of its own for the 1,000,000-customer world, reused by later benchmarks
BENCH_ROOT = ROOT / "build" / "bench"
BIG = "bench_1m"
BIG_PARAMS = """description: "1,000,000-customer demo world for benchmarks"
source:
  kind: demo
  n_customers: 1000000
  seed: 42
date_format: ""
stale_after_days: 30
"""


def big_world() -> Path:
    """The project root holding the 1,000,000-customer world (generated once, then reused)."""
    os.environ["CRM_ANALYTICS_ROOT"] = str(BENCH_ROOT)
    os.environ.setdefault("CRM_ANALYTICS_SECRET", "bench-secret")
    (BENCH_ROOT / "params").mkdir(parents=True, exist_ok=True)
    (BENCH_ROOT / "params" / f"{BIG}.yaml").write_text(BIG_PARAMS)
    if (BENCH_ROOT / "notebooks").exists():
        shutil.rmtree(BENCH_ROOT / "notebooks")
    shutil.copytree(ROOT / "notebooks", BENCH_ROOT / "notebooks")
    return BENCH_ROOT


def demo_generate_20k() -> dict:
    from crm_analytics.ingest.demo import generate

    out = BENCH_ROOT / "tmp_demo_20k"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    truth = generate(out, n_customers=20_000, seed=42)
    seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": round(seconds, 2), "reference_seconds": 30.0, "reference": "goal: 20,000 customers in 30 s",
            "rows": sum(truth["tables"].values())}


def demo_generate_1m() -> dict:
    big_world()
    from crm_analytics.ingest.sources import build_raw

    t0 = time.perf_counter()
    build_raw(BIG, {"kind": "demo", "n_customers": 1_000_000, "seed": 42, "start_date": "2024-01-01",
                    "end_date": "2025-12-31", "locale": "tr_TR", "currency": "TRY", "with_events": True})
    seconds = time.perf_counter() - t0
    import json

    truth = json.loads((BENCH_ROOT / "data" / "raw" / BIG / "truth.json").read_text())
    return {"seconds": round(seconds, 2), "reference_seconds": 600.0,
            "reference": "goal: 1,000,000 customers in 10 min and 8 GB", "tables": truth["tables"]}


def cleaning_1m() -> dict:
    big_world()
    if not (BENCH_ROOT / "data" / "raw" / BIG / "_SUCCESS").exists():
        demo_generate_1m()
    from crm_analytics.ingest.collect import collect

    t0 = time.perf_counter()
    c = collect(BIG)
    seconds = time.perf_counter() - t0
    rows = sum(v["rows_in"] for v in c.result.counts.values() if "derived_from" not in v)
    events = c.result.counts["events"]
    return {"seconds": round(seconds, 2), "reference_seconds": 120.0,
            "reference": "goal: whole cleaning step in 2 min and 8 GB", "rows_in": rows,
            "rows_per_second": round(rows / seconds), "events_rows": events["rows_in"],
            "events_kept": events["rows_kept"],
            # seconds per step of the events in DuckDB (a thread of their own, beside pandas on the other tables)
            "events_steps": c.result.notes.get("events_timings")}


def make_reports_demo() -> dict:
    """`make reports` on demo after set-up, raw data already built: every notebook reruns."""
    env = {k: v for k, v in os.environ.items() if k != "CRM_ANALYTICS_ROOT"}
    subprocess.run(["make", "--no-print-directory", "data", "DATASET=demo"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    shutil.rmtree(ROOT / "reports" / "demo", ignore_errors=True)
    shutil.rmtree(ROOT / "data" / "interim" / "demo", ignore_errors=True)
    shutil.rmtree(ROOT / "data" / "processed" / "demo", ignore_errors=True)
    t0 = time.perf_counter()
    run = subprocess.run(["make", "--no-print-directory", "reports", "DATASET=demo"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise RuntimeError(run.stdout[-2000:] + run.stderr[-2000:])
    return {"seconds": round(seconds, 2), "reference_seconds": 180.0, "reference": "goal: 3 min after set-up",
            "notebooks": run.stdout.count("running ")}

"""`make bench`: run every benchmark in its own process and print it beside its reference.

Each benchmark is a function ``name() -> dict`` in a ``bench_*.py`` module of this folder,
listed in :data:`BENCHES`. It returns ``seconds`` (the timed part), ``reference_seconds`` (a
competitor measured in the same run, or the issue's goal when there is no competitor),
``reference`` (what the reference is) and any extra figures. The runner adds ``peak_mb`` (the
process's peak resident memory, from ``wait4``, unless the benchmark measured its own) and ``ratio`` = reference / ours (above 1: we are
faster), prints a table and writes ``reports/bench/bench.json``.

    python tests/benchmarks/run.py [name ...]      # all, or only the named benchmarks

Benchmarks in :data:`ON_REQUEST` (the 10,000,000-customer run: about an hour) run only when named
(``make bench BENCH=reports_10m``); a run of all of them prints those from their last recorded run,
with its date (``recorded_at``), marked ``(recorded)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: name -> "module:function" (order matters: later benchmarks reuse the 1,000,000-customer world)
BENCHES = {
    "demo_generate_20k": "bench_pipeline:demo_generate_20k",
    "demo_generate_1m": "bench_pipeline:demo_generate_1m",
    "cleaning_1m": "bench_pipeline:cleaning_1m",
    "make_reports_demo": "bench_pipeline:make_reports_demo",
    "clv_summary_1m": "bench_clv:clv_summary_1m",
    "bgnbd_fit_1m": "bench_clv:bgnbd_fit_1m",
    "pareto_fit_1m": "bench_clv:pareto_fit_1m",
    "segmentation_1m": "bench_segmentation:rfm_segments_clusters_1m",
    "behaviour_1m": "bench_behaviour:behaviour_1m",
    "recommend_1m": "bench_recommend:recommend_1m",
    "sentiment_tr": "bench_feedback:sentiment_tr",
    "customer_summary_1m": "bench_engines:customer_summary_1m",
    "rfm_table_1m": "bench_engines:rfm_table_1m",
    "make_reports_1m": "bench_pipeline:make_reports_1m",
    "reports_10m": "bench_pipeline:reports_10m",
}
#: run only when named; otherwise their last recorded figures are printed
ON_REQUEST = ("reports_10m",)


def _child(spec: str) -> None:
    sys.path.insert(0, str(HERE))
    module, func = spec.split(":")
    result = getattr(__import__(module), func)()
    print("BENCH-RESULT " + json.dumps(result))


def _run_one(name: str, spec: str) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", spec], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = [ln for ln in out.splitlines() if ln.startswith("BENCH-RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit code {proc.returncode}", "output": out[-2000:]}
    result = json.loads(lines[-1].split(" ", 1)[1])
    # a benchmark that runs its sides in processes of their own reports its own side's peak
    result.setdefault("peak_mb", round(usage.ru_maxrss / 1024, 1))
    ref = result.get("reference_seconds")
    result["ratio"] = round(ref / result["seconds"], 3) if ref and result.get("seconds") else None
    return result


def _print(name: str, r: dict, *, recorded: bool = False) -> None:
    """One benchmark's line (seconds, peak MB, reference seconds, ratio, reference) and its other figures."""
    if "error" in r:
        print(f"{name:<26}  FAILED ({r['error']})\n{r['output']}")
        return
    ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "-"
    ref = f"{r['reference_seconds']:.2f}" if r.get("reference_seconds") else "-"
    when = f" (recorded {r.get('recorded_at', 'at an unknown date')}; rerun: make bench BENCH={name})" if recorded else ""
    print(f"{name:<26}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{ref:>13}{ratio:>8}  {r.get('reference', '')}{when}")
    for key, value in r.items():
        if key not in {"seconds", "peak_mb", "reference_seconds", "ratio", "reference", "wall_seconds",
                       "recorded_at"}:
            print(f"{'':<28}{key}: {value}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(argv[1])
        return 0
    names = argv or [n for n in BENCHES if n not in ON_REQUEST]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; known: {list(BENCHES)}", file=sys.stderr)
        return 2
    out_file = ROOT / "reports" / "bench" / "bench.json"
    results = json.loads(out_file.read_text()) if out_file.exists() else {}
    print(f"{'benchmark':<26}{'seconds':>10}{'peak MB':>10}{'reference s':>13}{'ratio':>8}  reference")
    failed = False
    for name in names:
        t0 = time.perf_counter()
        r = _run_one(name, BENCHES[name])
        r["wall_seconds"] = round(time.perf_counter() - t0, 2)
        r["recorded_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        results[name] = r
        failed |= "error" in r
        _print(name, r)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    for name in [n for n in ON_REQUEST if n not in names]:
        if name in results:
            _print(name, results[name], recorded=True)
        else:
            print(f"{name:<26}  not run yet (only when asked: make bench BENCH={name})")
    print(f"written {out_file.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

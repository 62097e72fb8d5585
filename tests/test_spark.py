"""Same answers on both engines: `make reports DATASET=ci` on DuckDB and on Spark (local[2]) publish
the same metrics.

Two copies of the project are built side by side, one with `engine: pyspark` in params/ci.yaml; every
reports/ci/metrics/*.json must have the same keys, equal texts and whole numbers, and floats equal to
1e-9 relative (1e-12 absolute for values that are zero up to rounding). The compute logs
(build/ci/logs/<notebook>.compute.json) prove which engine ran the queries.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from conftest import copy_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: notebooks whose heavy work goes through crm_analytics.compute (01 cleans on DuckDB on every engine)
QUERYING = ["02_segmentation", "03_clv_churn", "05_behaviour", "06_personalisation"]


def _start(root: Path) -> subprocess.Popen:
    env = {**os.environ, "CRM_ANALYTICS_ROOT": str(root), "CRM_ANALYTICS_SECRET": "spark-secret"}
    return subprocess.Popen(["make", "--no-print-directory", "reports", "DATASET=ci"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    duck = copy_project(tmp_path_factory.mktemp("duckdb"))
    spark = copy_project(tmp_path_factory.mktemp("pyspark"))
    params = spark / "params" / "ci.yaml"
    params.write_text(params.read_text(encoding="utf-8") + "engine: pyspark\nspark_master: local[2]\n",
                      encoding="utf-8")
    runs = {"duckdb": _start(duck), "pyspark": _start(spark)}  # side by side: Spark waits on its JVM a lot
    for name, run in runs.items():
        out, _ = run.communicate(timeout=1200)
        assert run.returncode == 0, f"make reports DATASET=ci on {name} failed:\n{out}"
    return duck, spark


def _differences(a, b, where: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{where}: keys differ: {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
                and not isinstance(b, bool):
            if a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
                return []
        return [f"{where}: {a!r} (duckdb) != {b!r} (pyspark)"]
    return [] if a == b and type(a) is type(b) else [f"{where}: {a!r} (duckdb) != {b!r} (pyspark)"]


def test_spark_publishes_the_same_metrics_as_duckdb(built):
    duck, spark = built
    files = sorted(p.name for p in (duck / "reports" / "ci" / "metrics").glob("*.json"))
    assert len(files) >= 7, files
    assert files == sorted(p.name for p in (spark / "reports" / "ci" / "metrics").glob("*.json"))
    found = []
    for name in files:
        a = json.loads((duck / "reports" / "ci" / "metrics" / name).read_text(encoding="utf-8"))
        b = json.loads((spark / "reports" / "ci" / "metrics" / name).read_text(encoding="utf-8"))
        found += _differences(a, b, name.removesuffix(".json"))
    assert not found, f"{len(found)} differences:\n" + "\n".join(found[:40])


def test_the_metrics_do_not_name_the_engine(built):
    for root in built:
        for path in (root / "reports" / "ci" / "metrics").glob("*.json"):
            text = path.read_text(encoding="utf-8").lower()
            assert "pyspark" not in text and "duckdb" not in text, path


def test_spark_ran_the_queries(built):
    duck, spark = built
    for root, engine in ((duck, "duckdb"), (spark, "pyspark")):
        for nb in QUERYING:
            log = root / "build" / "ci" / "logs" / f"{nb}.compute.json"
            assert log.exists(), f"{log}: no compute log"
            record = json.loads(log.read_text(encoding="utf-8"))
            assert record["engine"] == engine, record
            assert record["queries"].get(engine, 0) > 0, record
            other = "duckdb" if engine == "pyspark" else "pyspark"
            assert record["queries"].get(other, 0) == 0, record  # nothing fell back to the other engine


def test_sessions_split_at_the_exact_gap_on_spark():
    """Spark's epoch seconds are whole seconds: the inactivity gap is compared as timestamps, so a gap of
    30 minutes and a quarter of a second splits a session on Spark as on DuckDB."""
    import test_behaviour

    from crm_analytics import compute

    compute.use("pyspark", spark_master="local[1]")
    try:
        test_behaviour.test_the_inactivity_gap_is_exact_below_a_second()
        test_behaviour.test_inactivity_splits_sessions_strictly_after_the_gap()
    finally:
        compute.use("duckdb")

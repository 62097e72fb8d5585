"""Tests of crm_analytics.compute: the engine settings, the same answers on DuckDB and Spark, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from crm_analytics import compute
from crm_analytics.errors import ParamsError
from crm_analytics.ingest.params_rules import RULES
from crm_analytics.ingest.tables import local_ibis


@pytest.fixture(autouse=True)
def back_to_duckdb():
    yield
    compute.use("duckdb")


@pytest.fixture(scope="module")
def spark_stopped_after():
    """Spark started by this module's tests is stopped at its end (the JVM holds memory)."""
    yield
    backend = compute._SPARK.get("backend")
    if backend is not None:
        backend._session.stop()
        compute._SPARK.clear()


# ----------------------------------------------------------------------------- settings

@pytest.mark.parametrize(("kwargs", "key"), [
    ({"engine": "spark"}, "engine"),
    ({"spark_master": "local[two]"}, "spark_master"),
    ({"spark_master": "http://cluster"}, "spark_master"),
    ({"spark_conf": {"executor.memory": "8g"}}, "spark_conf"),
    ({"spark_conf": {"spark.executor.memory": ["8g"]}}, "spark_conf"),
    ({"spark_conf": "spark.executor.memory=8g"}, "spark_conf"),
    ({"duckdb_memory_limit": "4 gigs"}, "duckdb_memory_limit"),
    ({"duckdb_memory_limit": 4}, "duckdb_memory_limit"),
])
def test_a_bad_setting_is_refused_naming_its_key(kwargs, key):
    before = compute.settings()
    with pytest.raises(ParamsError, match=key):
        compute.use(**{"engine": "duckdb", **kwargs})
    assert compute.settings() == before  # nothing half-set


def test_use_sets_the_process_choice_and_empty_values_mean_the_defaults():
    compute.use("duckdb", spark_master="", spark_conf={"spark.executor.memory": "8g", "spark.ui.enabled": False},
                duckdb_memory_limit="")
    s = compute.settings()
    assert compute.engine() == "duckdb" and s.spark_master == "local[2]" and s.duckdb_memory_limit == "4GB"
    assert s.spark_conf == (("spark.executor.memory", "8g"), ("spark.ui.enabled", "false"))
    compute.use("duckdb")
    compute.use("duckdb")  # idempotent
    assert compute.settings() == compute.Settings()


@pytest.mark.parametrize(("key", "good", "bad"), [
    ("engine", ["duckdb", "pyspark"], ["spark", ""]),
    ("spark_master", ["local[2]", "local[*]", "local", "yarn", "spark://host:7077", "k8s://https://h:443", ""],
     ["local[two]", "cluster"]),
    ("spark_conf", [{}, {"spark.executor.memory": "8g", "spark.executor.instances": 4}],
     [{"executor.memory": "8g"}]),
    ("duckdb_memory_limit", ["4GB", "500MB", "2GiB", "1.5GB", ""], ["4", "lots"]),
])
def test_params_rules_of_the_engine_keys(key, good, bad):
    rule = RULES[key]
    assert all(rule.problem(v) is None for v in good)
    for v in bad:
        problem = rule.problem(v)
        assert problem and (key in problem or "must be one of" in problem), (v, problem)


def test_the_duckdb_memory_limit_reaches_duckdb():
    compute.use("duckdb", duckdb_memory_limit="1GB")
    with local_ibis() as db:
        limit = db.backend.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert limit.replace(" ", "") in ("1.0GiB", "953.6MiB", "1GB")
    from crm_analytics.ingest.tables import duckdb_connect

    con = duckdb_connect()
    try:
        raw = con.execute("SELECT current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    finally:
        con.close()
    assert raw[0] == limit and raw[1] == str(compute.spill_directory())


# ----------------------------------------------------------------------------- a missing pyspark or Java

def test_a_missing_pyspark_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # `import pyspark` raises ImportError
    with pytest.raises(ParamsError, match=r"engine: pyspark needs the pyspark package.*pip install -e '\.\[spark\]'"):
        compute.use("pyspark")
    assert compute.engine() == "duckdb"


def test_a_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    pytest.importorskip("pyspark")
    monkeypatch.setattr(compute, "_SPARK", {})  # as if no Spark had started in this process
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(ParamsError, match=r"needs Java 17.*JAVA_HOME"):
        compute.use("pyspark")


# ----------------------------------------------------------------------------- the same answers

def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 500
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 400 * 24 * 60, n), unit="min")
    return pd.DataFrame({
        "customer_id": pd.array(rng.choice([f"C{i:03d}" for i in range(40)] + [None], n), dtype="str"),
        "order_ts": ts,
        "order_total": np.round(rng.gamma(2.0, 40.0, n), 2),
        "items": rng.integers(1, 6, n),
    })


def _summary(db, orders, as_of: pd.Timestamp) -> pd.DataFrame:
    t = orders.filter(orders.customer_id.notnull())
    day = t.order_ts.date()
    per = t.group_by("customer_id").aggregate(
        orders=t.count(), revenue=t.order_total.sum(), items=t["items"].sum(), first=t.order_ts.min(),
        last=t.order_ts.max(), days=day.nunique(), mean_total=t.order_total.mean())
    per = per.mutate(recency_days=(as_of.date() - per["last"].date()).cast("int64"))
    return per.order_by("customer_id").to_pandas()


@pytest.mark.slow
def test_both_engines_give_the_same_customer_summary(tmp_path, spark_stopped_after):
    frame = _frame()
    path = tmp_path / "orders.parquet"
    frame.to_parquet(path)
    as_of = pd.Timestamp("2025-03-01", tz="UTC")
    got = {}
    for engine in compute.ENGINES:
        compute.use(engine)
        before = compute.query_counts().get(engine, 0)
        with compute.session() as db:
            got[engine, "frame"] = _summary(db, db.table(frame), as_of)
            got[engine, "arrow"] = _summary(db, db.table(pa.Table.from_pandas(frame)), as_of)
            got[engine, "parquet"] = _summary(db, db.parquet(path), as_of)
        assert compute.query_counts()[engine] == before + 3
    expected = got["duckdb", "frame"]
    assert len(expected) == 40 and expected["last"].dt.tz is not None
    for key, result in got.items():
        pd.testing.assert_frame_equal(result, expected, check_dtype=False, rtol=1e-12, obj=str(key))
        assert str(result["last"].dt.tz) == "UTC", key


@pytest.mark.slow
def test_map_partitions_scores_where_the_data_is_on_both_engines(tmp_path, spark_stopped_after):
    frame = _frame()
    schema = pa.schema([("customer_id", pa.string()), ("score", pa.float64()), ("hour", pa.int32())])

    def score(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": df["customer_id"], "score": df["order_total"] * 2 + df["items"],
                             "hour": df["order_ts"].dt.tz_convert("Europe/Istanbul").dt.hour.astype("int32")})

    out = {}
    for engine in compute.ENGINES:
        compute.use(engine)
        with compute.session() as db:
            t = db.table(frame)
            written = compute.map_partitions(t.filter(t.customer_id.notnull()), score, schema,
                                             tmp_path / f"scores_{engine}")
        out[engine] = (pd.read_parquet(written).sort_values(["customer_id", "score"], ignore_index=True))
    expected = score(frame[frame["customer_id"].notna()]).sort_values(["customer_id", "score"], ignore_index=True)
    for engine, result in out.items():
        pd.testing.assert_frame_equal(result, expected, check_dtype=False, obj=engine)


@pytest.mark.slow
def test_clv_scores_by_partition_equal_the_whole_table_scores_on_both_engines(tmp_path, spark_stopped_after):
    from crm_analytics.models import clv

    rng = np.random.default_rng(5)
    rows = []
    for i in range(400):  # a birth, a lifetime, purchases at a customer's own rate while alive
        birth, life, rate = rng.uniform(0, 300), rng.exponential(200), rng.gamma(2.0, 1 / 40)
        days = birth + np.concatenate([[0.0], np.sort(rng.uniform(0, life, rng.poisson(rate * life)))])
        rows += [(f"C{i:04d}", d, round(float(rng.gamma(3.0, 20.0)), 2)) for d in days[days < 500]]
    orders = pd.DataFrame(rows, columns=["customer_id", "day", "order_total"])
    orders["order_ts"] = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(orders.pop("day"), unit="D")
    summary = clv.rfm_summary(orders, freq="W")
    fit = clv.fit_bgnbd(summary)
    gg = clv.fit_gamma_gamma(summary[summary["frequency"] > 0])
    unit = float(summary.attrs["time_unit_days"])
    expected = clv.clv(fit, gg, summary, horizon_months=12, margin=0.3, annual_discount_rate=0.1)
    expected["expected_purchases_90d"] = clv.expected_purchases(fit, 90 / unit, summary["frequency"],
                                                                summary["recency"], summary["T"])
    for engine in compute.ENGINES:
        compute.use(engine)
        with compute.session() as db:
            t = db.table(summary.reset_index())
            path = clv.score_partitions(fit, gg, t, tmp_path / engine, horizon_months=12, margin=0.3,
                                        annual_discount_rate=0.1, time_unit_days=unit, predict_days=90)
        got = pd.read_parquet(path).set_index("customer_id").sort_index()
        pd.testing.assert_frame_equal(got, expected.rename_axis("customer_id").sort_index(), check_dtype=False,
                                      rtol=1e-12, obj=engine)


@pytest.mark.parametrize("engine", ["duckdb", "pyspark"])
def test_configure_tells_make_the_engine(project, engine):
    """build/<dataset>/dataset.mk says ENGINE, so make installs pyspark before a Spark run."""
    from crm_analytics.pipeline import configure

    text = (project / "params" / "ci.yaml").read_text(encoding="utf-8")
    (project / "params" / "probe.yaml").write_text(text + (f"engine: {engine}\n" if engine == "pyspark" else ""),
                                                   encoding="utf-8")
    resolved = configure("probe")
    assert f"ENGINE := {engine}\n" in (project / "build" / "probe" / "dataset.mk").read_text(encoding="utf-8")
    assert all(values.get("engine", "duckdb") == engine for values in resolved["per_notebook"].values())

"""Where the heavy queries run: DuckDB on this machine, or Spark (a cluster, or ``local[N]``).

Every customer summary, RFM table, session and funnel aggregate, co-purchase count and cohort table
is an Ibis expression built on the tables a :func:`session` hands out. The same expression runs on
either engine; this module only decides which backend the tables are bound to.

* ``duckdb`` (the default): this thread's in-process DuckDB, with at most ``duckdb_memory_limit``
  of memory before it spills to a temporary folder. In-memory frames are scanned in place (Arrow).
* ``pyspark``: Ibis's PySpark backend on one SparkSession per process (master ``spark_master``,
  session time zone UTC, ``spark_conf`` applied, web UI off, logs quiet). Frames go to Spark
  through Arrow; parquet files are read by Spark itself, where they live (shared storage on a
  cluster).

A notebook chooses once, right after its parameters, with
``compute.use(engine, spark_master=..., spark_conf=..., duckdb_memory_limit=...)``; package code
only opens :func:`session` blocks (through :func:`crm_analytics.ingest.tables.local_ibis`).

While the pipeline runs a notebook, the engine and the number of queries it ran are recorded in
``build/<dataset>/logs/<notebook>.compute.json`` (a proof of where the work ran; never in the
metrics).

Examples
--------
>>> import pandas as pd
>>> use("duckdb")
>>> with session() as db:
...     t = db.table(pd.DataFrame({"k": ["a", "b", "a"], "x": [1, 2, 3]}))
...     int(t.x.sum().to_pandas())
6
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_analytics import paths
from crm_analytics.errors import ParamsError

__all__ = ["ENGINES", "ENGINE_KEYS", "DEFAULT_SPARK_MASTER", "DEFAULT_DUCKDB_MEMORY_LIMIT", "DUCKDB_THREADS",
           "Settings", "Session", "use", "engine", "settings", "session", "map_partitions", "query_counts",
           "check_spark_master", "check_spark_conf", "check_memory_limit", "spill_directory"]

#: The engines :func:`use` accepts.
ENGINES = ("duckdb", "pyspark")
#: The params keys every notebook shares to choose and size the engine.
ENGINE_KEYS = ("engine", "spark_master", "spark_conf", "duckdb_memory_limit")
DEFAULT_SPARK_MASTER = "local[2]"
DEFAULT_DUCKDB_MEMORY_LIMIT = "4GB"
#: Threads of the in-process DuckDB behind Ibis: at least 4, even on 2 cores. DuckDB splits a large
#: hash aggregate into more partitions for more threads; grouping the 1,000,000-customer world's
#: 2.8 M orders by customer and day takes 0.10 s with 4 threads and 0.19 s with 2 on the 2-core
#: reference machine (see ``tests/benchmarks``, ``clv_summary_1m``).
DUCKDB_THREADS = max(4, os.cpu_count() or 1)

_MASTER = re.compile(r"local(\[(\d+|\*)(,\s*\d+)?\])?|local-cluster\[\d+,\s*\d+,\s*\d+\]|yarn"
                     r"|(spark|k8s|mesos)://\S+")
_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", re.IGNORECASE)


def check_spark_master(value: Any) -> None:
    """Raise :class:`ParamsError` unless *value* is a Spark master URL: ``local``, ``local[N]``,
    ``local[*]``, ``yarn``, ``spark://host:port``, ``k8s://…`` or ``mesos://…``."""
    if not isinstance(value, str) or not _MASTER.fullmatch(value.strip()):
        raise ParamsError(f"spark_master must be a Spark master URL such as 'local[2]', 'local[*]', 'yarn' or "
                          f"'spark://host:7077', got {value!r}; set spark_master in the params file")


def check_spark_conf(value: Any) -> None:
    """Raise :class:`ParamsError` unless *value* maps Spark setting names (``spark.…``) to a text,
    number or true/false, e.g. ``{"spark.executor.memory": "8g"}``."""
    if not isinstance(value, Mapping):
        raise ParamsError(f"spark_conf must be a mapping of Spark settings to values, e.g. "
                          f"{{spark.executor.memory: 8g}}, got {value!r}")
    for key, setting in value.items():
        if not isinstance(key, str) or not key.startswith("spark."):
            raise ParamsError(f"spark_conf: {key!r} is not a Spark setting (their names start with 'spark.', "
                              f"e.g. spark.executor.memory); fix the key in spark_conf")
        if isinstance(setting, (Mapping, list, tuple)) or setting is None:
            raise ParamsError(f"spark_conf: {key} must be a text, a number or true/false, got {setting!r}")


def check_memory_limit(value: Any) -> None:
    """Raise :class:`ParamsError` unless *value* is a memory size DuckDB reads: ``4GB``, ``500MB``, ``2GiB``."""
    if not isinstance(value, str) or not _SIZE.fullmatch(value):
        raise ParamsError(f"duckdb_memory_limit must be a memory size such as '4GB', '500MB' or '2GiB', "
                          f"got {value!r}; set duckdb_memory_limit in the params file")


@dataclass(frozen=True)
class Settings:
    """The process's engine and how it is sized (see :func:`use`)."""

    engine: str = "duckdb"
    spark_master: str = DEFAULT_SPARK_MASTER
    spark_conf: tuple[tuple[str, str], ...] = ()
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT


_SETTINGS = Settings()
_LOCK = threading.Lock()
_LOCAL = threading.local()  # this thread's DuckDB backend
_SPARK: dict[str, Any] = {}  # the process's SparkSession and Ibis backend, with the settings they started with
_COUNTS: dict[str, int] = {}  # engine -> queries run in this process


def use(engine: str = "duckdb", *, spark_master: str = DEFAULT_SPARK_MASTER, spark_conf: Mapping | None = None,
        duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT) -> None:
    """Choose the engine of every later :func:`session` in this process (idempotent).

    Parameters
    ----------
    engine
        ``"duckdb"`` (this machine) or ``"pyspark"`` (Ibis's PySpark backend).
    spark_master
        The Spark master URL when *engine* is ``pyspark`` (``local[2]``, ``yarn``, ``spark://host:7077``);
        empty means ``local[2]``. Ignored when a SparkSession already runs in the process (a
        Databricks notebook or ``spark-submit`` job): that one is used.
    spark_conf
        Spark settings applied to the session (``{"spark.executor.memory": "8g"}``).
    duckdb_memory_limit
        Memory DuckDB may hold before it spills to :func:`spill_directory` (``"4GB"``); empty means 4GB.

    Raises
    ------
    ParamsError
        A value is not valid (the message names the key); or *engine* is ``pyspark`` and
        pyspark or Java is missing (the message says how to install them).
    """
    global _SETTINGS
    if engine not in ENGINES:
        raise ParamsError(f"engine must be one of {list(ENGINES)}, got {engine!r}; set engine in the params file")
    spark_master = spark_master or DEFAULT_SPARK_MASTER
    duckdb_memory_limit = duckdb_memory_limit or DEFAULT_DUCKDB_MEMORY_LIMIT
    check_spark_master(spark_master)
    check_spark_conf(spark_conf or {})
    check_memory_limit(duckdb_memory_limit)
    if engine == "pyspark":
        _require_spark()
    conf = tuple(sorted((str(k), _conf_text(v)) for k, v in (spark_conf or {}).items()))
    with _LOCK:
        _SETTINGS = Settings(engine, spark_master.strip(), conf, duckdb_memory_limit.strip())


def engine() -> str:
    """The engine chosen with :func:`use`: ``"duckdb"`` or ``"pyspark"``."""
    return _SETTINGS.engine


def settings() -> Settings:
    """The engine and its sizing, as :func:`use` set them."""
    return _SETTINGS


def query_counts() -> dict[str, int]:
    """Queries run in this process so far, per engine."""
    return dict(_COUNTS)


def spill_directory() -> Path:
    """The folder DuckDB spills to beyond its memory limit (in the system's temporary folder)."""
    return Path(tempfile.gettempdir()) / "crm_analytics_duckdb"


def _conf_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _require_spark() -> None:
    """Raise a ParamsError naming the fix when pyspark or Java is not there."""
    try:
        import pyspark  # noqa: F401
        import ibis.backends.pyspark  # noqa: F401
    except ImportError as exc:
        raise ParamsError(f"engine: pyspark needs the pyspark package ({exc}); install it with "
                          f"`.venv/bin/pip install -e '.[spark]'` (make reports does when the params say "
                          f"engine: pyspark), or set engine: duckdb in the params file") from None
    if _SPARK:
        return
    import shutil

    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home) / "bin" / "java" if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise ParamsError("engine: pyspark needs Java 17 or later, and no `java` was found (JAVA_HOME is "
                          f"{java_home or 'not set'}); install a JDK (e.g. `apt-get install openjdk-17-jre-headless`) "
                          "or set JAVA_HOME, or set engine: duckdb in the params file")


# ----------------------------------------------------------------------------- sessions

class Session:
    """Data registered, for one block, on the chosen engine.

    ``table(data)`` returns an Ibis table of a pandas DataFrame or Arrow table; ``parquet(path)``
    one of a parquet file, read by the engine itself; :attr:`backend` is the Ibis backend. What a
    block registered is released when it ends (:func:`session`); the engine stays up for the next.
    """

    def __init__(self, backend: Any, engine: str) -> None:
        self.backend = backend
        self.engine = engine
        self._names: list[str] = []
        self._views: list[str] = []

    def table(self, data: Any) -> Any:
        """*data* (a pandas DataFrame or a pyarrow Table) as an Ibis table.

        DuckDB scans the Arrow columns in place (a DataFrame goes through Arrow first: no copy for
        Arrow-backed or numeric columns, and DuckDB reads Arrow text far faster than pandas text).
        Spark receives the data as Arrow record batches.
        """
        import pandas as pd
        import pyarrow as pa

        name = f"crm_local_{uuid.uuid4().hex}"
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, preserve_index=False)
        if self.engine == "duckdb":
            self.backend.con.register(name, data)
            self._names.append(name)
        else:
            instants = [f.name for f in data.schema if pa.types.is_timestamp(f.type) and f.type.tz]
            return self._spark_view(self.backend._session.createDataFrame(_spark_ready(data)), name, instants)
        return self.backend.table(name)

    def parquet(self, path: str | Path) -> Any:
        """The parquet file *path* as an Ibis table, scanned by the engine's own reader (in
        parallel, only the columns and row groups a query needs), for data too big to load first."""
        name = f"crm_local_{uuid.uuid4().hex}"
        if self.engine == "duckdb":
            self.backend.con.execute(f"CREATE TEMP VIEW {_sql_name(name)} AS SELECT * FROM read_parquet("
                                     f"{_sql_literal(str(path))})")
            self._views.append(name)
            return self.backend.table(name)
        from pyspark.sql.types import TimestampType

        frame = self.backend._session.read.parquet(str(path))
        # parquet's UTC-adjusted timestamps are Spark TIMESTAMPs; its naive ones TIMESTAMP_NTZ
        instants = [f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType)]
        return self._spark_view(frame, name, instants)

    def _spark_view(self, frame: Any, name: str, instants: list[str]) -> Any:
        """The Spark DataFrame *frame* as an Ibis table. The columns *instants* hold UTC instants
        (DuckDB's ``TIMESTAMPTZ``); Spark keeps them as ``TIMESTAMP`` but Ibis reads that as a naive
        timestamp: they are declared UTC here, so the same expression gives UTC-aware timestamps
        on both engines (naive input stays naive on both)."""
        frame.createOrReplaceTempView(name)
        self._views.append(name)
        table = self.backend.table(name)
        return table.cast(dict.fromkeys(instants, "timestamp('UTC')")) if instants else table

    def _release(self) -> None:
        if self.engine == "duckdb":
            for name in self._names:
                self.backend.con.unregister(name)
            for name in self._views:
                self.backend.con.execute(f"DROP VIEW IF EXISTS {_sql_name(name)}")
        else:
            catalog = self.backend._session.catalog
            for name in self._views:
                catalog.dropTempView(name)
        self._names.clear()
        self._views.clear()


def _spark_ready(data: Any) -> Any:
    """An Arrow table Spark's ``createDataFrame`` takes: dictionary columns decoded, large text as
    text, nanosecond timestamps as microseconds (Spark's resolution)."""
    import pyarrow as pa

    fields, columns = [], []
    for f, col in zip(data.schema, data.columns):
        t = f.type
        if pa.types.is_dictionary(t):
            col, t = col.cast(t.value_type), t.value_type
        if pa.types.is_large_string(t):
            col, t = col.cast(pa.string()), pa.string()
        elif pa.types.is_timestamp(t) and t.unit == "ns":
            t = pa.timestamp("us", tz=t.tz)
            col = col.cast(t, safe=False)
        fields.append(pa.field(f.name, t))
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _counting(backend: Any, engine: str) -> Any:
    """*backend* with every query it runs counted (:func:`query_counts`, the compute log)."""
    hook = backend._run_pre_execute_hooks

    def counted(expr: Any) -> Any:
        _COUNTS[engine] = _COUNTS.get(engine, 0) + 1
        return hook(expr)

    backend._run_pre_execute_hooks = counted
    return backend


def _duckdb_backend() -> Any:
    """This thread's DuckDB behind Ibis (UTC, :data:`DUCKDB_THREADS`), kept open between blocks: a
    fresh one starts, reserves its working memory and shuts down again for every query, which adds
    about a quarter to the time of a 2.8 M-order summary. Its memory limit follows :func:`use`."""
    limit = _SETTINGS.duckdb_memory_limit
    backend = getattr(_LOCAL, "backend", None)
    if backend is None:
        import ibis

        spill = spill_directory()
        backend = _LOCAL.backend = _counting(ibis.duckdb.connect(threads=DUCKDB_THREADS, memory_limit=limit,
                                                                 temp_directory=str(spill)), "duckdb")
        backend.con.execute("SET TimeZone = 'UTC'")
        _LOCAL.limit = limit
    elif _LOCAL.limit != limit:
        backend.con.execute(f"SET memory_limit = {_sql_literal(limit)}")
        _LOCAL.limit = limit
    return backend


def _shuffle_partitions(master: str) -> str:
    """Spark's partitions after a shuffle: one per core on this machine (``local[N]``; Spark's 200
    would be 200 tiny tasks per aggregate), Spark's default 200 on a cluster (``spark_conf`` may say
    otherwise)."""
    if not master.startswith("local"):
        return "200"
    n = re.fullmatch(r"local\[(\d+)", master.split(",")[0])
    return n.group(1) if n else str(os.cpu_count() or 2)


def _spark_backend() -> Any:
    """The process's Ibis PySpark backend, started on first use with the settings of :func:`use`
    (one SparkSession per process; a session already running, as in a Databricks job, is reused)."""
    wanted = (_SETTINGS.spark_master, _SETTINGS.spark_conf)
    with _LOCK:
        if _SPARK.get("settings") == wanted:
            return _SPARK["backend"]
        _require_spark()
        import ibis
        from pyspark.sql import SparkSession

        if _SPARK:  # other settings than the running session's: start again
            _SPARK["backend"]._session.stop()
            _SPARK.clear()
        builder = (SparkSession.builder.master(_SETTINGS.spark_master).appName("crm_analytics")
                   .config("spark.sql.session.timeZone", "UTC")
                   .config("spark.ui.enabled", "false")
                   .config("spark.ui.showConsoleProgress", "false")
                   .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                   .config("spark.sql.shuffle.partitions", _shuffle_partitions(_SETTINGS.spark_master)))
        if _SETTINGS.spark_master.startswith("local"):
            # a notebook's JVM lives minutes: the quick compiler alone starts it and runs its first
            # queries about twice as fast (ci's sessions: 11.6 s start and 13.6 s against 22.5 s and
            # 26.5 s); spark_conf's spark.driver.extraJavaOptions replaces this
            builder = builder.config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
            if not os.environ.get("PYSPARK_PYTHON"):
                # this machine's Python workers (mapInPandas) run this interpreter, with its packages
                os.environ["PYSPARK_PYTHON"] = sys.executable
        for key, value in _SETTINGS.spark_conf:
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:  # Java missing or too old: the JVM never started
            raise ParamsError(f"engine: pyspark could not start Spark on {_SETTINGS.spark_master!r} ({exc}); "
                              "check that Java 17+ is installed (JAVA_HOME) and spark_master / spark_conf in "
                              "the params file, or set engine: duckdb") from None
        spark.sparkContext.setLogLevel("ERROR")
        for key, value in _SETTINGS.spark_conf:  # a running session (Databricks) takes the runtime ones here
            try:
                spark.conf.set(key, value)
            except Exception:  # a static setting of a running session: it keeps its own
                pass
        backend = _counting(ibis.pyspark.connect(spark), "pyspark")
        _SPARK.update(settings=wanted, backend=backend)
        return backend


@contextmanager
def session() -> Iterator[Session]:
    """A block on the chosen engine: tables registered with :meth:`Session.table` or
    :meth:`Session.parquet` are released on exit (on error too)."""
    chosen = _SETTINGS.engine
    backend = _spark_backend() if chosen == "pyspark" else _duckdb_backend()
    local = Session(backend, chosen)
    try:
        yield local
    finally:
        local._release()
        _record()


def _record() -> None:
    """Write the engine and query counts of the notebook the pipeline is running to
    ``build/<dataset>/logs/<notebook>.compute.json`` (nothing outside a pipeline run)."""
    staging = os.environ.get("CRM_ANALYTICS_STAGING")
    if not staging or not _COUNTS:
        return
    where = Path(staging)  # reports/<dataset>/.staging/<notebook>/metrics (crm_analytics.pipeline)
    if where.name != "metrics" or where.parent.parent.name != ".staging":
        return
    notebook, dataset = where.parent.name, where.parent.parent.parent.name
    log = paths.build_dir(dataset) / "logs" / f"{notebook}.compute.json"
    record = {"notebook": notebook, "engine": _SETTINGS.engine, "queries": dict(sorted(_COUNTS.items())),
              "pid": os.getpid()}
    if _SETTINGS.engine == "pyspark":
        record["spark_master"] = _SETTINGS.spark_master
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    except OSError:
        pass


# ----------------------------------------------------------------------------- per-partition work

def map_partitions(table: Any, fn: Callable[[Any], Any], schema: Any, out_path: str | Path) -> Path:
    """Run *fn* on *table* one partition at a time, where the data is, and write what it returns to parquet.

    Parameters
    ----------
    table
        An Ibis table from a :func:`session` block (its rows are the input).
    fn
        ``fn(pandas.DataFrame) -> pandas.DataFrame``: called on each partition; must give the
        columns of *schema* and depend on nothing but its rows (per-customer scoring).
        Timestamps reach it as UTC-aware values on both engines.
    schema
        The output's columns: a ``pyarrow.Schema`` or an Ibis schema.
    out_path
        A folder; it is replaced by ``part-*.parquet`` files (``pandas.read_parquet(out_path)``
        reads them all; the rows' order is not defined: sort them).

    Returns
    -------
    Path
        *out_path*.

    DuckDB streams the table's record batches through *fn* on this machine; Spark runs *fn* in
    its executors (``mapInPandas``) and writes the files from there.
    """
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out_path)
    arrow_schema = schema if isinstance(schema, pa.Schema) else schema.to_pyarrow()
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    backend = table._find_backend()
    if getattr(backend, "name", "") == "pyspark":
        from pyspark.sql.pandas.types import from_arrow_schema

        in_schema = table.schema().to_pyarrow()
        tz_columns = [f.name for f in in_schema if pa.types.is_timestamp(f.type) and f.type.tz]
        _COUNTS["pyspark"] = _COUNTS.get("pyspark", 0) + 1
        frame = backend._session.sql(backend.compile(table))

        def run(batches):
            for df in batches:
                for c in tz_columns:
                    if getattr(df[c].dt, "tz", None) is None:
                        df[c] = df[c].dt.tz_localize("UTC")
                yield fn(df)

        frame.mapInPandas(run, schema=from_arrow_schema(arrow_schema)).write.mode("overwrite").parquet(str(out))
        return out
    out.mkdir(parents=True)
    _COUNTS["duckdb"] = _COUNTS.get("duckdb", 0) + 1
    reader = backend.con.sql(str(backend.compile(table))).to_arrow_reader(1_000_000)
    try:  # the batches stream from DuckDB: one in memory at a time
        for i, batch in enumerate(reader):
            result = pa.Table.from_pandas(fn(batch.to_pandas()), schema=arrow_schema, preserve_index=False)
            pq.write_table(result, out / f"part-{i:05d}.parquet")
    finally:
        reader.close()  # the connection takes no other query while a result is open
    if not any(out.iterdir()):
        pq.write_table(arrow_schema.empty_table(), out / "part-00000.parquet")
    return out


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

"""Reading the clean canonical tables that notebook 01 writes to ``data/interim/<dataset>/``,
and :class:`ParquetTable`, a clean table too big for pandas, queried with DuckDB."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_analytics import compute, paths
from crm_analytics.ingest.contracts import TABLES
from crm_analytics.errors import DataContractError

__all__ = ["read_clean", "clean_table", "ibis_table", "columns_of", "read_processed", "has_table", "purchases", "PURCHASE_STATUSES", "ParquetTable",
           "duckdb_connect", "isin", "DUCKDB_MEMORY_LIMIT", "DUCKDB_THREADS",
           "local_ibis", "LocalIbis", "LOCAL_IBIS_THREADS", "LOCAL_IBIS_MEMORY_LIMIT", "by_customer", "sorted_keys",
           "ids_for_keys"]

#: DuckDB's default memory cap (``duckdb_memory_limit`` of the params sets the one in use, see
#: :func:`crm_analytics.compute.use`; it spills to disk beyond it) and threads when it works on
#: tables too big for pandas
DUCKDB_MEMORY_LIMIT = compute.DEFAULT_DUCKDB_MEMORY_LIMIT
DUCKDB_THREADS = 2

#: Threads of the in-process DuckDB that runs Ibis expressions (:data:`crm_analytics.compute.DUCKDB_THREADS`).
LOCAL_IBIS_THREADS = compute.DUCKDB_THREADS
#: The default memory of the in-process DuckDB behind Ibis; the one in use is ``duckdb_memory_limit``.
LOCAL_IBIS_MEMORY_LIMIT = compute.DEFAULT_DUCKDB_MEMORY_LIMIT

#: Order statuses that count as a purchase for customer-level models
#: (a returned order was still bought; cancelled orders never happened).
PURCHASE_STATUSES = ("completed", "returned")


def has_table(dataset: str, table: str) -> bool:
    """Whether the clean table exists for *dataset* (optional tables may be absent)."""
    return (paths.interim_dir(dataset) / f"{table}.parquet").exists()


def read_clean(dataset: str, table: str, *, required: bool | None = None,
               columns: list[str] | None = None) -> pd.DataFrame | None:
    """Read clean table *table* of *dataset* (only *columns*, those of them the table has, when given:
    a large shop's events or order lines need not be read whole).

    Returns ``None`` for an absent optional table; raises for an absent required one.

    Raises
    ------
    DataContractError
        When a required table is missing (run notebook 01 / ``make reports`` first).
    """
    if table not in TABLES:
        raise DataContractError(f"unknown table {table!r}; tables are {sorted(TABLES)}")
    path = paths.interim_dir(dataset) / f"{table}.parquet"
    if not path.exists():
        must = TABLES[table].required if required is None else required
        if must:
            raise DataContractError(
                f"{path}: clean table {table!r} of dataset {dataset!r} does not exist; "
                f"run `make reports DATASET={dataset}` (notebook 01_data_cleaning writes it)"
            )
        return None
    if columns is not None:
        present = set(pq.read_schema(path).names)
        columns = [c for c in columns if c in present]
    return pd.read_parquet(path, columns=columns)


def clean_table(dataset: str, table: str, *, required: bool | None = None) -> ParquetTable | None:
    """Clean table *table* of *dataset* as a :class:`ParquetTable` handle: nothing is read until a query
    needs it (the orders, order lines or customers of a shop with millions of customers).

    ``None`` for an absent optional table; an absent required one raises as in :func:`read_clean`.
    """
    if table not in TABLES:
        raise DataContractError(f"unknown table {table!r}; tables are {sorted(TABLES)}")
    path = paths.interim_dir(dataset) / f"{table}.parquet"
    if not path.exists():
        if TABLES[table].required if required is None else required:
            raise DataContractError(
                f"{path}: clean table {table!r} of dataset {dataset!r} does not exist; "
                f"run `make reports DATASET={dataset}` (notebook 01_data_cleaning writes it)"
            )
        return None
    return ParquetTable(path)


def columns_of(data: pd.DataFrame | ParquetTable) -> list[str]:
    """The column names of a DataFrame or a :class:`ParquetTable`."""
    if isinstance(data, (pd.DataFrame, ParquetTable)):
        return list(data.columns)
    raise DataContractError(f"expected a pandas DataFrame or a tables.ParquetTable, got {type(data).__name__}")


def ibis_table(db: compute.Session, data: pd.DataFrame | ParquetTable, columns: list[str] | None = None):
    """*data* (a DataFrame or a :class:`ParquetTable`) as an Ibis table on the session *db*, with only
    *columns* (those of them it has; all when ``None``). A parquet file is scanned by the engine where
    it lies; a DataFrame is registered through Arrow. Timestamps keep their type (UTC-aware in the
    clean tables)."""
    have = columns_of(data)
    cols = have if columns is None else [c for c in columns if c in have]
    if isinstance(data, ParquetTable):
        return db.parquet(data.path).select(*cols)
    return db.table(data[cols].reset_index(drop=True))


def purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders that count as purchases: a known customer and status completed or returned."""
    mask = orders["customer_id"].notna() & orders["status"].isin(PURCHASE_STATUSES)
    return orders.loc[mask]


def by_customer(orders: pd.DataFrame) -> pd.DataFrame:
    """*orders* sorted by ``customer_id`` (missing last), then ``order_ts`` and ``order_id``: the
    order of the clean orders table. Customer-level models read it often; with the rows grouped
    by customer they key customers by position instead of hashing text
    (:func:`crm_analytics.models.clv.rfm_summary` of 2.8 M orders: 0.33 s instead of 0.57 s)."""
    keys = [c for c in ("customer_id", "order_ts", "order_id") if c in orders.columns]
    return orders.sort_values(keys, na_position="last", kind="stable", ignore_index=True)


def sorted_keys(ids: pa.Array) -> tuple[pa.Array | None, pa.Array | None]:
    """Integer keys for customer ids sorted as :func:`by_customer` leaves them, or ``(None, None)``.

    The keys (int32) count up from 0 at each new id and are null where the id is (missing ids
    come last); the second array holds the distinct ids, so ``distinct.take(key)`` gives the ids
    back. DuckDB groups and sorts integers much faster than text: on the 1,000,000-customer world
    the CLV summary takes 0.33 s instead of 0.57 s. Sorted input makes the keys one comparison of
    neighbours (Arrow compares text by code point, as pandas and DuckDB sort it).
    """
    valid = len(ids) - ids.null_count
    head = ids.slice(0, valid)
    if valid < 2 or head.null_count:
        return None, None
    new = np.asarray(pc.not_equal(head[1:], head[:-1]), dtype=bool)  # the one pass over every row
    distinct = head.take(pa.array(np.flatnonzero(np.r_[True, new])))  # the first id of each run
    if not pc.all(pc.less(distinct[:-1], distinct[1:])).as_py():  # sorted <=> runs strictly increase
        return None, None
    key = np.zeros(len(ids), dtype=np.int32)
    np.cumsum(new, out=key[1:valid])
    mask = None if valid == len(ids) else np.arange(len(ids)) >= valid
    return pa.array(key, mask=mask), distinct


def ids_for_keys(table: pa.Table, ids: pa.Array | None) -> pa.Table:
    """*table* with its ``customer_id`` keys from :func:`sorted_keys` turned back into the ids
    (unchanged when ``ids`` is ``None``: the column holds the ids already)."""
    if ids is None:
        return table
    where = table.schema.get_field_index("customer_id")
    return table.set_column(where, "customer_id", ids.take(table["customer_id"]))


def read_processed(dataset: str, name: str) -> pd.DataFrame | None:
    """A modelling table another notebook wrote to ``data/processed/<dataset>/<name>.parquet``, or ``None``."""
    path = paths.processed_dir(dataset) / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def duckdb_connect(temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the memory limit of :func:`crm_analytics.compute.use`
    (``duckdb_memory_limit``), :data:`DUCKDB_THREADS`, UTC as time zone, spilling to
    *temp_directory* (default :func:`crm_analytics.compute.spill_directory`) beyond the limit."""
    con = duckdb.connect(config={"memory_limit": compute.settings().duckdb_memory_limit, "threads": DUCKDB_THREADS,
                                 "preserve_insertion_order": True})
    con.execute("SET TimeZone = 'UTC'")
    spill = temp_directory if temp_directory is not None else compute.spill_directory()
    con.execute(f"SET temp_directory = {sql_literal(str(spill))}")
    return con


#: The data registered for one block on the chosen engine (:class:`crm_analytics.compute.Session`).
LocalIbis = compute.Session


@contextmanager
def local_ibis() -> Iterator[compute.Session]:
    """A block on the engine chosen with :func:`crm_analytics.compute.use` (DuckDB in this thread by
    default, or Spark): expressions on pandas or Arrow data registered with ``table``, or on parquet
    files with ``parquet``, which are released on exit. See :func:`crm_analytics.compute.session`."""
    with compute.session() as local:
        yield local


def sql_literal(text: str) -> str:
    """*text* as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_name(name: str) -> str:
    """*name* as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def isin(values: pd.Series, candidates: pd.Series) -> np.ndarray:
    """``values.isin(candidates)`` as a boolean array; fast when both hold text (pandas turns every
    candidate into a Python object first, which takes seconds for millions of order ids)."""
    arrow_text = [isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow" for s in (values, candidates)]
    if not all(arrow_text):
        return values.isin(candidates).to_numpy(dtype=bool)
    column = values.array.__arrow_array__()
    value_set = candidates.array.__arrow_array__().combine_chunks().cast(column.type)
    return np.asarray(pc.is_in(column, value_set=value_set), dtype=bool)


class ParquetTable:
    """A clean table kept in a parquet file and queried with DuckDB, for tables too big for pandas
    (the events of a large shop).

    ``len(t)`` and ``t.columns`` work as on a DataFrame; :meth:`query` runs SQL on it (named ``t``);
    :meth:`to_pandas` loads it. :mod:`crm_analytics.ingest.quality` and :func:`crm_analytics.ingest.identity.customers_360`
    accept it wherever they accept a DataFrame.

    Parameters
    ----------
    path
        The parquet file.
    movable
        Whether :meth:`save` may move the file (a staged file) rather than copy it.
    """

    def __init__(self, path: Path, *, movable: bool = False):
        self.path = Path(path)
        self.movable = movable
        meta = pq.ParquetFile(self.path).metadata
        self.rows = int(meta.num_rows)
        self.columns = list(meta.schema.to_arrow_schema().names)

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        return f"ParquetTable({str(self.path)!r}, rows={self.rows:,})"

    def query(self, sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
        """The result of *sql*, where the table is ``t`` and each keyword names a DataFrame."""
        con = duckdb_connect()
        try:
            con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet({sql_literal(str(self.path))})")
            for name, frame in frames.items():
                con.register(name, frame)
            return con.sql(sql).to_arrow_table().to_pandas()
        finally:
            con.close()

    def to_pandas(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The table (or *columns* of it) as a DataFrame, as ``pd.read_parquet`` reads it."""
        return pd.read_parquet(self.path, columns=columns)

    def save(self, dest: Path) -> None:
        """Put the file at *dest* (moved if :attr:`movable`, else copied)."""
        if self.movable:
            shutil.move(str(self.path), dest)
            self.path, self.movable = Path(dest), False
        else:
            shutil.copyfile(self.path, dest)

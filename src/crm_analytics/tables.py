"""Reading the clean canonical tables that notebook 01 writes to ``data/interim/<dataset>/``,
and :class:`ParquetTable`, a clean table too big for pandas, queried with DuckDB."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_analytics import paths
from crm_analytics.contracts import TABLES
from crm_analytics.errors import DataContractError

__all__ = ["read_clean", "read_processed", "has_table", "purchases", "PURCHASE_STATUSES", "ParquetTable",
           "duckdb_connect", "isin", "DUCKDB_MEMORY_LIMIT", "DUCKDB_THREADS"]

#: DuckDB's memory cap and threads when it works on tables too big for pandas (it spills to disk beyond the cap)
DUCKDB_MEMORY_LIMIT = "4GB"
DUCKDB_THREADS = 2

#: Order statuses that count as a purchase for customer-level models
#: (a returned order was still bought; cancelled orders never happened).
PURCHASE_STATUSES = ("completed", "returned")


def has_table(dataset: str, table: str) -> bool:
    """Whether the clean table exists for *dataset* (optional tables may be absent)."""
    return (paths.interim_dir(dataset) / f"{table}.parquet").exists()


def read_clean(dataset: str, table: str, *, required: bool | None = None) -> pd.DataFrame | None:
    """Read clean table *table* of *dataset*.

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
    return pd.read_parquet(path)


def purchases(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders that count as purchases: a known customer and status completed or returned."""
    mask = orders["customer_id"].notna() & orders["status"].isin(PURCHASE_STATUSES)
    return orders.loc[mask]


def read_processed(dataset: str, name: str) -> pd.DataFrame | None:
    """A modelling table another notebook wrote to ``data/processed/<dataset>/<name>.parquet``, or ``None``."""
    path = paths.processed_dir(dataset) / f"{name}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def duckdb_connect(temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with :data:`DUCKDB_MEMORY_LIMIT`, :data:`DUCKDB_THREADS`, UTC
    as time zone and, when given, *temp_directory* to spill to."""
    con = duckdb.connect(config={"memory_limit": DUCKDB_MEMORY_LIMIT, "threads": DUCKDB_THREADS,
                                 "preserve_insertion_order": True})
    con.execute("SET TimeZone = 'UTC'")
    if temp_directory is not None:
        con.execute(f"SET temp_directory = {sql_literal(str(temp_directory))}")
    return con


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
    :meth:`to_pandas` loads it. :mod:`crm_analytics.quality` and :func:`crm_analytics.identity.customers_360`
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

"""Reading the clean canonical tables that notebook 01 writes to ``data/interim/<dataset>/``."""

from __future__ import annotations

import pandas as pd

from crm_analytics import paths
from crm_analytics.contracts import TABLES
from crm_analytics.errors import DataContractError

__all__ = ["read_clean", "read_processed", "has_table", "purchases", "PURCHASE_STATUSES"]

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

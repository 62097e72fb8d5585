"""Small helpers shared by the segmentation modules: timestamps, column checks, the customer index
and file-name slugs."""

from __future__ import annotations

import re

import pandas as pd

from crm_analytics.errors import DataContractError
from crm_analytics.features.rfm import _purchase_frame, _require, _timestamp, _utc_naive

__all__ = ["DAY", "_customer_index", "_purchase_frame", "_require", "_slug", "_timestamp", "_utc_naive"]

DAY = pd.Timedelta(days=1)


def _customer_index(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """*df* indexed by customer_id (from the index or a column)."""
    if df.index.name == "customer_id":
        return df
    if "customer_id" in df.columns:
        return df.set_index("customer_id")
    raise DataContractError(f"{where} needs customer_id as its index or as a column; columns are {list(df.columns)}")


def _slug(text: str) -> str:
    """File-name-safe lower-case slug (letters of any script kept): ``"Can't lose them"`` → ``"cant_lose_them"``."""
    s = re.sub(r"\W+", "_", str(text).lower().replace("'", "").replace("’", "")).strip("_")
    return s or "segment"

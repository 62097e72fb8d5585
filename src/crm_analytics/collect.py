"""Collection: a dataset's raw input through its source adapter and cleaning into
``data/interim/<dataset>/`` — the step notebook ``01_data_cleaning`` runs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from crm_analytics import paths
from crm_analytics.cleaning import CleanResult, clean_tables, write_clean
from crm_analytics.erasure import apply_erasure, load_requests
from crm_analytics.identity import customers_360, stitch_events
from crm_analytics.params import load_params
from crm_analytics.privacy import secret_key
from crm_analytics.quality import quality_summary
from crm_analytics.sources import read_source, validate_source

__all__ = ["dataset_source", "collect", "Collected", "read_truth"]


def dataset_source(dataset: str) -> dict:
    """The validated ``source`` of ``params/<dataset>``."""
    loaded = load_params(dataset)
    return validate_source(dataset, loaded["shared"].get("source") or {}, str(loaded["file"]))


def read_truth(dataset: str) -> dict | None:
    """The demo world's ``truth.json``, or ``None`` for real data."""
    path = paths.raw_dir(dataset) / "truth.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


@dataclass
class Collected:
    result: CleanResult
    quality: dict
    source: dict
    as_of: pd.Timestamp
    raw_dir: object = None
    customers_360: pd.DataFrame | None = None


def collect(dataset: str, *, date_format: str = "", stale_after_days: int = 30, write: bool = True) -> Collected:
    """Read, clean, pseudonymise and (optionally) write the clean tables of *dataset*.

    Events are stitched to customers (:mod:`crm_analytics.identity`), erasure requests are
    applied (:mod:`crm_analytics.erasure`) and ``customers_360.parquet`` is written beside the
    clean tables. Freshness is measured against the newest order (a demo world or a historical export
    has no "now"); ``stale_after_days`` flags tables whose newest record is older than that.
    """
    source = dataset_source(dataset)
    raw = read_source(dataset, source)
    detected = raw.pop("_detected", None)
    result = clean_tables(raw, key=secret_key(), ts_format=date_format or None)
    if detected is not None:
        result.notes["detected"] = detected.iloc[0].to_dict()
    if "events" in result.tables:
        result.tables["events"], stitching = stitch_events(result.tables["events"])
        result.notes["stitching"] = stitching
        result.notes["events_stitched_share"] = stitching["events_stitched_share"]
    result.notes["erasure"] = apply_erasure(result, load_requests(dataset))
    view = customers_360(result.tables)
    orders = result.tables.get("orders")
    as_of = orders["order_ts"].max() if orders is not None and len(orders) else pd.Timestamp.now(tz="UTC")
    quality = quality_summary(result.counts, result.tables, as_of=as_of, stale_after_days=stale_after_days)
    quality["notes"] = {k: v for k, v in result.notes.items()}
    if write:
        write_clean(result, dataset, quality, extra={"customers_360": view})
    return Collected(result=result, quality=quality, source=source, as_of=as_of, raw_dir=paths.raw_dir(dataset),
                     customers_360=view)

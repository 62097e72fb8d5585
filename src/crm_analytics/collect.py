"""Collection: a dataset's raw input through its source adapter and cleaning into
``data/interim/<dataset>/`` — the step notebook ``01_data_cleaning`` runs."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crm_analytics import paths
from crm_analytics.cleaning import CleanResult, clean_tables, write_clean
from crm_analytics.contracts import TABLES
from crm_analytics.erasure import apply_erasure, load_requests
from crm_analytics.events_sql import SqlEvents
from crm_analytics.identity import customers_360
from crm_analytics.params import load_params
from crm_analytics.privacy import secret_key
from crm_analytics.quality import quality_summary
from crm_analytics.sources import RawParquet, read_source, validate_source
from crm_analytics.tables import ParquetTable, by_customer

__all__ = ["dataset_source", "collect", "Collected", "read_truth", "IN_MEMORY_EVENTS"]

#: clean events up to this many rows are handed back in memory (a DataFrame in ``result.tables``);
#: above it they stay in their parquet file (a :class:`crm_analytics.tables.ParquetTable`)
IN_MEMORY_EVENTS = 2_000_000


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


@dataclass
class _Events:
    """The events as cleaned, stitched, erased and written by DuckDB (:mod:`crm_analytics.events_sql`)."""

    table: ParquetTable
    rejects: ParquetTable
    counts: dict
    stitching: dict
    erased: tuple[int, set[str]]
    timings: dict


def _clean_events(raw: pd.DataFrame | RawParquet, *, key: bytes, ts_format: str | None, ids: set[str],
                  staging: Path) -> _Events:
    """Clean, stitch and erase the events in DuckDB and write them (and their rejects) to *staging*."""
    events = SqlEvents(raw, key=key, ts_format=ts_format, workdir=staging)
    try:
        stitching = events.stitch()
        erased = events.erase(ids)
        table, rejects = events.write(staging / "events.parquet", staging / "events.rejects.parquet")
    finally:
        events.close()
    return _Events(table, rejects, dict(events.counts), stitching, erased, events.timings)


def collect(dataset: str, *, date_format: str = "", stale_after_days: int = 30, write: bool = True) -> Collected:
    """Read, clean, pseudonymise and (optionally) write the clean tables of *dataset*.

    Events are stitched to customers (:mod:`crm_analytics.identity`), erasure requests are
    applied (:mod:`crm_analytics.erasure`) and ``customers_360.parquet`` is written beside the
    clean tables. Freshness is measured against the newest order (a demo world or a historical export
    has no "now"); ``stale_after_days`` flags tables whose newest record is older than that.

    The events are cleaned in DuckDB (:class:`crm_analytics.events_sql.SqlEvents`, the rules of
    :func:`crm_analytics.cleaning.clean_table`), while pandas cleans the other tables; they come back
    as a DataFrame up to :data:`IN_MEMORY_EVENTS` rows, else as a :class:`crm_analytics.tables.ParquetTable`.
    """
    source = dataset_source(dataset)
    raw = read_source(dataset, source, lazy={"events"})
    detected = raw.pop("_detected", None)
    raw_events = raw.pop("events", None)
    key, ts_format, ids = secret_key(), date_format or None, load_requests(dataset)
    staging = paths.interim_dir(dataset).with_name(f"{dataset}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="events") as pool:
            pending = None if raw_events is None else pool.submit(
                _clean_events, raw_events, key=key, ts_format=ts_format, ids=ids, staging=staging)
            result = clean_tables(raw, key=key, ts_format=ts_format)  # meanwhile, the other tables in pandas
            events = pending.result() if pending is not None else None
        if detected is not None:
            result.notes["detected"] = detected.iloc[0].to_dict()
        if events is not None:
            _add_events(result, events, order=[n for n in TABLES if n in raw or n == "events"])
        result.notes["erasure"] = apply_erasure(result, ids, erased={"events": events.erased} if events else None)
        if "orders" in result.tables:
            result.tables["orders"] = by_customer(result.tables["orders"])
        orders = result.tables.get("orders")
        as_of = orders["order_ts"].max() if orders is not None and len(orders) else pd.Timestamp.now(tz="UTC")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="view") as pool:  # two readers of the same tables
            pending_view = pool.submit(customers_360, result.tables)
            quality = quality_summary(result.counts, result.tables, as_of=as_of, stale_after_days=stale_after_days)
            view = pending_view.result()
        quality["notes"] = {k: v for k, v in result.notes.items() if k != "events_timings"}
        if write:
            write_clean(result, dataset, quality, extra={"customers_360": view})
        keep_staging = events is not None and _hand_back_events(result, dataset, written=write)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_staging:
        shutil.rmtree(staging, ignore_errors=True)
    return Collected(result=result, quality=quality, source=source, as_of=as_of, raw_dir=paths.raw_dir(dataset),
                     customers_360=view)


def _add_events(result: CleanResult, events: _Events, order: list[str]) -> None:
    """Put the DuckDB-cleaned events into *result*, its tables, rejects and counts in the order pandas gives."""
    result.tables["events"], result.rejects["events"] = events.table, events.rejects
    result.counts["events"] = events.counts
    result.notes["stitching"] = events.stitching
    result.notes["events_stitched_share"] = events.stitching["events_stitched_share"]
    result.notes["events_timings"] = events.timings
    for part in ("tables", "rejects", "counts"):
        d = getattr(result, part)
        setattr(result, part, {**{n: d[n] for n in order if n in d}, **{n: v for n, v in d.items() if n not in order}})


def _hand_back_events(result: CleanResult, dataset: str, *, written: bool) -> bool:
    """Point the events at their clean file, or load them when small; return whether the staged files are still used."""
    table, rejects = result.tables["events"], result.rejects["events"]
    if written:
        interim = paths.interim_dir(dataset)
        table = ParquetTable(interim / "events.parquet")
        moved = interim / "rejects" / "events.parquet"
        rejects = ParquetTable(moved) if moved.exists() else rejects.to_pandas()  # no rejects: no file
    if len(table) <= IN_MEMORY_EVENTS:
        table = table.to_pandas()
        rejects = rejects.to_pandas() if isinstance(rejects, ParquetTable) else rejects
    result.tables["events"], result.rejects["events"] = table, rejects
    return isinstance(table, ParquetTable) and not written

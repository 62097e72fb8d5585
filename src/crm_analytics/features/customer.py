"""Per-customer features: one row per customer who bought by a date, in the vocabulary of
:mod:`crm_analytics.features`, from data up to that date only.

Every notebook's per-customer figures come from here: the churn model's features (at two past
cutoffs), the pre-campaign features of campaign evaluation and uplift models, the complaint-churn
comparison, and ``data/processed/<dataset>/customer_features.parquet`` (:func:`build`, as of the end
of the dataset's last purchase day), which ``make reports`` writes after ``01_data_cleaning`` for anyone
who needs today's figures per customer (an analyst in JupyterLab, a BI tool, the CRM). The notebooks
compute theirs at their own cutoffs with :func:`customer_features` (churn trains at two past dates,
campaigns look at each campaign's start), so the file is not their input.

Conventions
-----------
- A *purchase* is an order of a known customer with status completed or returned
  (:data:`crm_analytics.ingest.tables.PURCHASE_STATUSES`); a cancelled order is counted in
  ``cancellations`` only; rows without a ``customer_id`` are left out everywhere.
- ``as_of`` is a timestamp (a bare date means its midnight UTC; a naive one is taken as UTC). A row
  counts when its time is ``<= as_of``; "the last 90 days" are ``(as_of - 90 days, as_of]``.
- Tables are the clean canonical tables: the files of ``data/interim/<dataset>/`` (read where they
  lie, only the columns and rows a query needs), or a dict of DataFrames (or
  :class:`crm_analytics.ingest.tables.ParquetTable`). An absent or empty optional table, or an
  optional column a table lacks, leaves its features out.

Engine
------
The aggregations are Ibis expressions, executed by :func:`crm_analytics.compute.session` (DuckDB
in-process by default, Spark when the params say ``engine: pyspark``); only the one-row-per-customer
result comes back to pandas, where time differences become days.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crm_analytics import paths
from crm_analytics.errors import DataContractError, ModelFitError
from crm_analytics.features.rfm import _timestamp
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ParquetTable, local_ibis

__all__ = ["FEATURE_COLUMNS", "COUNT_COLUMNS", "TIMESTAMP_COLUMNS", "AS_OF_KEY", "customer_features",
           "pre_period", "campaign_pre_period", "snapshot_as_of", "build", "read_as_of", "features_path"]

DAY = pd.Timedelta(days=1)
#: Days of the "recent" window (``orders_last_90d``, ``sessions_90d``, ``complaints_90d``...).
RECENT_DAYS = 90

#: Columns of :func:`customer_features`, in order; ``channel_share_<channel>`` (one per channel the
#: purchases use, alphabetical) follow ``days_between_orders``. A table the data lack leaves its columns out.
FEATURE_COLUMNS = ["recency_days", "tenure_days", "orders", "revenue", "aov", "returned_share", "orders_last_90d",
                   "days_between_orders", "discount_share", "cancellations", "sessions_90d", "cart_adds_90d",
                   "searches_90d", "complaints", "complaints_90d", "campaigns_received", "campaigns_opened",
                   "campaigns_clicked", "mean_rating", "first_purchase", "last_purchase"]
#: Counts: 0 (not missing) for a customer without any.
COUNT_COLUMNS = ["orders", "orders_last_90d", "cancellations", "sessions_90d", "cart_adds_90d", "searches_90d",
                 "complaints", "complaints_90d", "campaigns_received", "campaigns_opened", "campaigns_clicked"]
#: Timestamp columns (UTC): not model inputs.
TIMESTAMP_COLUMNS = ["first_purchase", "last_purchase"]
#: Parquet metadata key holding the ``as_of`` of ``customer_features.parquet`` (ISO 8601).
AS_OF_KEY = b"crm_analytics.as_of"

#: The columns each table contributes from (the others are never read).
_COLUMNS = {
    "orders": ["order_id", "customer_id", "order_ts", "status", "order_total", "channel"],
    "order_lines": ["order_id", "discount"],
    "events": ["customer_id", "ts", "session_id", "event_type"],
    "tickets": ["customer_id", "opened_ts"],
    "campaign_assignments": ["campaign_id", "customer_id", "group", "sent_ts", "opened_ts", "clicked_ts"],
    "campaigns": ["campaign_id", "start_ts"],
    "reviews": ["customer_id", "ts", "rating"],
}


# --------------------------------------------------------------------------------------------
# reading the tables
# --------------------------------------------------------------------------------------------
def _utc_us(ts: pd.Series) -> pd.Series:
    """A timestamp column as tz-aware UTC at microsecond precision (what the clean parquet files hold)."""
    if not pd.api.types.is_datetime64_any_dtype(ts):
        ts = pd.to_datetime(ts, utc=True)
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    return ts.dt.floor("us").dt.as_unit("us") if ts.dt.unit == "ns" else ts


class _Tables:
    """Ibis tables of a dataset's clean parquet files or of in-memory frames, on one session.

    ``get(name)`` returns the table with the columns of :data:`_COLUMNS` it has, or ``None`` when the
    table is absent, empty, or *excluded*.
    """

    def __init__(self, session: Any, data: str | dict[str, Any], exclude: Sequence[str] = ()) -> None:
        self.session, self.data, self.exclude = session, data, set(exclude)

    def _source(self, name: str) -> tuple[Any, list[str], int] | None:
        if name in self.exclude:
            return None
        if isinstance(self.data, str):
            path = paths.interim_dir(self.data) / f"{name}.parquet"
            if not path.exists():
                return None
            meta = pq.ParquetFile(path).metadata
            return path, list(meta.schema.to_arrow_schema().names), int(meta.num_rows)
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, ParquetTable):
            return value.path, list(value.columns), len(value)
        if not isinstance(value, pd.DataFrame):
            raise DataContractError(f"table {name!r} must be a pandas DataFrame, not {type(value).__name__}")
        return value, list(value.columns), len(value)

    def id_dtype(self, name: str) -> Any:
        """The dtype ``customer_id`` of table *name* has in pandas (as ``pd.read_parquet`` reads a file)."""
        src = self._source(name)
        if src is None or isinstance(src[0], Path):
            return pd.StringDtype("pyarrow", na_value=pd.NA)
        return src[0]["customer_id"].dtype

    def get(self, name: str) -> Any:
        src = self._source(name)
        if src is None or src[2] == 0:
            return None
        value, have, _ = src
        cols = [c for c in _COLUMNS[name] if c in have]
        if isinstance(value, Path):
            return self.session.parquet(value).select(*cols)
        frame = value[cols].reset_index(drop=True)
        for c in cols:
            if c.endswith("_ts") or c == "ts":
                frame[c] = _utc_us(frame[c])
        return self.session.table(frame)


def _lit(ts: pd.Timestamp, *, strict_below: bool = False) -> Any:
    """*ts* (UTC) as an Ibis timestamp literal at the data's precision, microseconds: floored for
    ``x <= ts`` and ``x > ts``, rounded up for ``x < ts`` and ``x >= ts`` (*strict_below*), so that each
    comparison holds for microsecond data exactly when it holds for *ts*."""
    import ibis

    us = ts.ceil("us") if strict_below else ts.floor("us")
    return ibis.literal(us.to_pydatetime(), type="timestamp('UTC')")


def _need_orders(t: Any, name: str = "orders") -> None:
    missing = [c for c in ("customer_id", "order_ts", "status", "order_total") if c not in t.columns]
    if missing:
        raise DataContractError(f"{name} has no column(s) {missing}; pass the clean canonical orders table "
                                "(crm_analytics.ingest.tables.read_clean)")


def _orders(tables: _Tables, data: Any) -> Any:
    orders = tables.get("orders")
    if orders is None:
        if tables._source("orders") is None:
            where = (f"{paths.interim_dir(data) / 'orders.parquet'} does not exist; run `make reports DATASET={data}` "
                     "(notebook 01_data_cleaning writes it)") if isinstance(data, str) else "no orders table given"
            raise DataContractError(f"customer features need the orders: {where}")
        return None
    _need_orders(orders)
    return orders


def _int(x: Any) -> Any:
    import ibis

    return ibis.ifelse(x, 1, 0)


# --------------------------------------------------------------------------------------------
# the features
# --------------------------------------------------------------------------------------------
def _feature_expr(tables: _Tables, orders: Any, as_of: pd.Timestamp) -> tuple[Any, list[str]]:
    """The Ibis expression of one row per buyer, and the channels of its ``channel_share_`` columns."""
    import ibis

    cut, recent = _lit(as_of), _lit(as_of - RECENT_DAYS * DAY)
    known = orders.filter(orders.customer_id.notnull() & (orders.order_ts <= cut))
    bought = known.filter(known.status.isin(list(PURCHASE_STATUSES)))
    aggs = {
        "first_purchase": bought.order_ts.min(), "last_purchase": bought.order_ts.max(), "orders": bought.count(),
        "revenue": bought.order_total.cast("float64").sum(),
        "n_returned": _int(bought.status == "returned").sum(),
        "orders_last_90d": _int(bought.order_ts > recent).sum(),
    }
    channels: list[str] = []
    if "channel" in bought.columns:
        named = bought.filter(bought.channel.notnull())
        channels = sorted(str(c) for c in named.select("channel").distinct().to_pyarrow()["channel"].to_pylist())
        aggs["n_channel_known"] = _int(bought.channel.notnull()).sum()
        for i, c in enumerate(channels):
            aggs[f"n_channel_{i}"] = _int(bought.channel == c).sum()
    base = bought.group_by("customer_id").aggregate(**aggs)
    cols = {
        "orders": base.orders, "revenue": base.revenue.fill_null(0.0),
        "aov": base.revenue.fill_null(0.0) / base.orders.cast("float64"),
        "returned_share": base.n_returned.cast("float64") / base.orders.cast("float64"),
        "orders_last_90d": base.orders_last_90d,
    }
    for i, c in enumerate(channels):
        n_known = base.n_channel_known.cast("float64")
        cols[f"channel_share_{c}"] = ibis.ifelse(base.n_channel_known > 0,
                                                 base[f"n_channel_{i}"].cast("float64") / n_known, ibis.null())
    out = base.select("customer_id", "first_purchase", "last_purchase", **cols)
    parts = []

    lines = tables.get("order_lines")
    if lines is not None and "discount" in lines.columns:
        j = lines.join(bought.select("order_id", "customer_id"), "order_id")
        discounted = _int(j.discount.cast("float64").fill_null(0.0) > 0).cast("float64")
        parts.append(j.group_by("customer_id").aggregate(discount_share=discounted.mean()))
    cancelled = known.filter(known.status == "cancelled")
    parts.append(cancelled.group_by("customer_id").aggregate(cancellations=cancelled.count()))
    ev = tables.get("events")
    if ev is not None and {"customer_id", "ts"} <= set(ev.columns):
        e = ev.filter(ev.customer_id.notnull() & (ev.ts <= cut) & (ev.ts > recent))
        per = {}
        if "session_id" in e.columns:
            per["sessions_90d"] = e.session_id.nunique()
        if "event_type" in e.columns:
            per.update(cart_adds_90d=_int(e.event_type == "add_to_cart").sum(),
                       searches_90d=_int(e.event_type == "search").sum())
        if per:
            parts.append(e.group_by("customer_id").aggregate(**per))
    tk = tables.get("tickets")
    if tk is not None and {"customer_id", "opened_ts"} <= set(tk.columns):
        t = tk.filter(tk.customer_id.notnull() & (tk.opened_ts <= cut))
        parts.append(t.group_by("customer_id").aggregate(complaints=t.count(),
                                                          complaints_90d=_int(t.opened_ts > recent).sum()))
    asg = tables.get("campaign_assignments")
    if asg is not None and {"customer_id", "group", "sent_ts", "opened_ts", "clicked_ts"} <= set(asg.columns):
        a = asg.filter((asg.group == "treatment") & asg.sent_ts.notnull() & (asg.sent_ts <= cut))
        parts.append(a.group_by("customer_id").aggregate(
            campaigns_received=a.count(), campaigns_opened=_int(a.opened_ts <= cut).sum(),
            campaigns_clicked=_int(a.clicked_ts <= cut).sum()))
    rv = tables.get("reviews")
    if rv is not None and {"customer_id", "ts", "rating"} <= set(rv.columns):
        r = rv.filter(rv.customer_id.notnull() & (rv.ts <= cut))
        parts.append(r.group_by("customer_id").aggregate(mean_rating=r.rating.cast("float64").mean()))
    for part in parts:
        out = out.left_join(part, "customer_id").drop("customer_id_right")
    return out, channels


def customer_features(data: str | dict[str, Any], as_of: Any, *, exclude: Sequence[str] = ()) -> pd.DataFrame:
    """Features of every customer with a purchase on or before *as_of*, from data up to *as_of* only.

    Parameters
    ----------
    data : str or dict
        A dataset name (its clean tables in ``data/interim/<dataset>/`` are read where they lie) or
        ``{table name: DataFrame}``: ``orders`` (required), and optionally ``order_lines``, ``events``,
        ``tickets``, ``campaign_assignments``, ``reviews``.
    as_of : date or timestamp
        The feature date (UTC): only rows up to it count, and days are measured to it.
    exclude : sequence of str
        Tables to leave out (e.g. ``["campaign_assignments"]`` for features that must not know the
        campaign history).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted): ``recency_days`` and ``tenure_days`` (float days from the
        last and first purchase to *as_of*), ``orders``, ``revenue`` (shop's currency), ``aov``,
        ``returned_share`` (share of the orders returned), ``orders_last_90d``, ``days_between_orders``
        (``tenure_days / (orders - 1)``, missing for one order), ``channel_share_<channel>`` (share of the
        orders with a known channel), ``discount_share`` (share of the bought order lines with a discount;
        with order lines), ``cancellations``, ``sessions_90d``, ``cart_adds_90d``, ``searches_90d`` (with
        events), ``complaints``, ``complaints_90d`` (tickets), ``campaigns_received``, ``campaigns_opened``,
        ``campaigns_clicked`` (treatment messages sent by *as_of*; with assignments), ``mean_rating``
        (reviews; missing without any), ``first_purchase``, ``last_purchase`` (UTC).
        Counts (:data:`COUNT_COLUMNS`) are int64 and 0 for a customer without any.
        ``attrs["as_of"]`` holds *as_of* (ISO 8601).

    Raises
    ------
    ModelFitError
        When nobody bought on or before *as_of*.
    DataContractError
        When there is no orders table, or it lacks a required column.
    """
    as_of = _timestamp(as_of)
    with local_ibis() as session:
        tables = _Tables(session, data, exclude)
        orders = _orders(tables, data)
        if orders is None:
            raise ModelFitError(f"no purchase on or before {as_of:%Y-%m-%d} (the orders table is empty)")
        expr, channels = _feature_expr(tables, orders, as_of)
        got = expr.to_pyarrow()
        id_dtype = tables.id_dtype("orders")
    if got.num_rows == 0:
        raise ModelFitError(f"no purchase on or before {as_of:%Y-%m-%d}")
    return _finish(got.to_pandas(), channels, as_of, id_dtype)


def _finish(raw: pd.DataFrame, channels: list[str], as_of: pd.Timestamp, id_dtype: Any) -> pd.DataFrame:
    """The executed expression as :func:`customer_features` returns it: days, counts, column order,
    ``customer_id`` of the orders' dtype."""
    raw = raw.astype({"customer_id": id_dtype}).set_index("customer_id").sort_index()
    first, last = (pd.to_datetime(raw[c], utc=True) for c in TIMESTAMP_COLUMNS)
    f = pd.DataFrame(index=raw.index)
    f["recency_days"] = ((as_of - last) / DAY).astype("float64")
    f["tenure_days"] = ((as_of - first) / DAY).astype("float64")
    for c in ("orders", "revenue", "aov", "returned_share", "orders_last_90d"):
        f[c] = raw[c]
    f["days_between_orders"] = (f["tenure_days"] / (f["orders"] - 1).clip(lower=1)).where(f["orders"] > 1)
    for c in channels:
        f[f"channel_share_{c}"] = raw[f"channel_share_{c}"].astype("float64")
    for c in FEATURE_COLUMNS:
        if c not in f and c in raw and c not in TIMESTAMP_COLUMNS:
            f[c] = raw[c]
    for c in COUNT_COLUMNS:
        if c in f:
            f[c] = f[c].fillna(0).astype("int64")
    for c in ("revenue", "aov", "returned_share", "discount_share", "mean_rating"):
        if c in f:
            f[c] = f[c].astype("float64")
    f["first_purchase"], f["last_purchase"] = first, last
    f.index.name = "customer_id"
    f.attrs["as_of"] = as_of.isoformat()
    return f


# --------------------------------------------------------------------------------------------
# before a date: campaign features
# --------------------------------------------------------------------------------------------
def pre_period(data: str | dict[str, Any], as_of: Any, customer_ids: Any, *, days: int = 180) -> pd.DataFrame:
    """Purchasing strictly before *as_of*, one row per customer of *customer_ids* (in that order).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``pre_orders`` and ``pre_revenue`` (purchases in
        ``[as_of - days, as_of)``, 0 without any), ``pre_days_since_order`` (days from the last purchase
        before *as_of* to it; ``10 * days`` for a customer who never bought, or bought longer ago).
    """
    as_of = _timestamp(as_of)
    ids = pd.Index(customer_ids, name="customer_id")
    with local_ibis() as session:
        tables = _Tables(session, data)
        orders = _orders(tables, data)
        got = None
        if orders is not None:
            b = orders.filter(orders.customer_id.notnull() & orders.status.isin(list(PURCHASE_STATUSES))
                              & (orders.order_ts < _lit(as_of, strict_below=True)))
            inside = b.order_ts >= _lit(as_of - days * DAY, strict_below=True)
            import ibis

            got = b.group_by("customer_id").aggregate(
                pre_orders=_int(inside).sum(),
                pre_revenue=ibis.ifelse(inside, b.order_total.cast("float64"), 0.0).sum(),
                last=b.order_ts.max()).to_pyarrow().to_pandas()
    f = pd.DataFrame(index=ids)
    if got is None or got.empty:
        got = pd.DataFrame({"customer_id": pd.Series([], dtype=object), "pre_orders": [], "pre_revenue": [],
                            "last": pd.Series([], dtype="datetime64[us, UTC]")})
    got = got.set_index("customer_id")
    f["pre_orders"] = got["pre_orders"].reindex(ids).fillna(0).to_numpy(dtype=float)
    f["pre_revenue"] = got["pre_revenue"].reindex(ids).fillna(0).to_numpy(dtype=float)
    since = (as_of - pd.to_datetime(got["last"], utc=True)) / DAY
    f["pre_days_since_order"] = since.reindex(ids).fillna(np.inf).clip(upper=10 * days).to_numpy(dtype=float)
    return f


def campaign_pre_period(data: str | dict[str, Any], *, days: int = 180) -> pd.DataFrame:
    """Per (campaign, customer) assigned: purchasing before the campaign's start.

    Used to check that treatment and control were alike before a campaign.

    Returns
    -------
    DataFrame
        One row per assignment whose campaign is known, in the assignments' order: ``campaign_id,
        customer_id, group, pre_orders, pre_revenue`` (purchases in ``[start - days, start)``, 0 without
        any) and ``pre_days_since_order`` (days from the last purchase before the start to it;
        ``10 * days`` for none or longer ago).

    Raises
    ------
    DataContractError
        When the data have no campaigns or campaign assignments.
    """
    import ibis

    with local_ibis() as session:
        tables = _Tables(session, data)
        asg, camp = tables.get("campaign_assignments"), tables.get("campaigns")
        if asg is None or camp is None:
            raise DataContractError("pre-campaign features need the campaigns and campaign_assignments tables")
        a = asg.select("campaign_id", "customer_id", "group").to_pyarrow().to_pandas()
        starts = camp.select("campaign_id", "start_ts").to_pyarrow().to_pandas()
        orders = _orders(tables, data)
        got = pd.DataFrame(columns=["campaign_id", "customer_id", "pre_orders", "pre_revenue", "last"])
        if orders is not None:
            b = orders.filter(orders.customer_id.notnull() & orders.status.isin(list(PURCHASE_STATUSES)))
            pairs = asg.select("campaign_id", "customer_id").join(camp, "campaign_id")
            j = pairs.join(b.select("customer_id", "order_ts", "order_total"), "customer_id")
            j = j.filter(j.order_ts < j.start_ts)
            inside = j.order_ts >= j.start_ts - ibis.interval(days=int(days))
            got = j.group_by(["campaign_id", "customer_id"]).aggregate(
                pre_orders=_int(inside).sum(),
                pre_revenue=ibis.ifelse(inside, j.order_total.cast("float64"), 0.0).sum(),
                last=j.order_ts.max()).to_pyarrow().to_pandas()
    key = ["campaign_id", "customer_id"]
    a = a.merge(starts, on="campaign_id")
    out = a[key + ["group"]].merge(got, on=key, how="left")
    out[["pre_orders", "pre_revenue"]] = out[["pre_orders", "pre_revenue"]].astype("float64").fillna(0)
    since = (pd.to_datetime(a["start_ts"], utc=True) - pd.to_datetime(out["last"], utc=True)) / DAY
    out["pre_days_since_order"] = since.astype("float64").fillna(np.inf).clip(upper=10 * days)
    return out.drop(columns="last")


# --------------------------------------------------------------------------------------------
# customer_features.parquet
# --------------------------------------------------------------------------------------------
def features_path(dataset: str) -> Path:
    """``data/processed/<dataset>/customer_features.parquet``."""
    return paths.processed_dir(dataset) / "customer_features.parquet"


def snapshot_as_of(dataset: str) -> pd.Timestamp | None:
    """The end of the dataset's last purchase day (midnight UTC after it: the reference date of the
    segmentation report's default), or ``None`` without any purchase (or without an orders table: a
    review or session export)."""
    with local_ibis() as session:
        tables = _Tables(session, dataset)
        if tables._source("orders") is None:
            return None
        orders = _orders(tables, dataset)
        if orders is None:
            return None
        b = orders.filter(orders.customer_id.notnull() & orders.status.isin(list(PURCHASE_STATUSES)))
        last = b.order_ts.max().to_pyarrow().as_py()
    if last is None:
        return None
    return pd.Timestamp(last).tz_convert("UTC").normalize() + DAY


def _use_engine(dataset: str) -> None:
    """Choose the engine of the dataset's params (:data:`crm_analytics.compute.ENGINE_KEYS`)."""
    from crm_analytics import compute
    from crm_analytics.ingest.params import load_params

    shared = load_params(dataset)["shared"]
    given = {k: shared[k] for k in compute.ENGINE_KEYS if k in shared and shared[k] not in (None, "", {})}
    engine = given.pop("engine", "duckdb")
    compute.use(engine, **given)


def build(dataset: str) -> Path:
    """Write ``data/processed/<dataset>/customer_features.parquet``: :func:`customer_features` as of
    :func:`snapshot_as_of`, on the engine of the dataset's params.

    The file holds ``customer_id`` (pseudonymous) and the features only, no personal data; its
    ``as_of`` is in the parquet metadata (:data:`AS_OF_KEY`, :func:`read_as_of`). A dataset without
    purchases (a review or session export) gets an empty table with ``as_of`` empty. Written to a
    temporary file and renamed, so a reader never sees half a file.

    Raises
    ------
    DataContractError
        When the clean tables of *dataset* do not exist (run notebook 01 first) or the orders lack a column.
    ParamsError
        When the dataset's params are unreadable or name an unknown engine.
    """
    _use_engine(dataset)
    if not (paths.interim_dir(dataset) / "customers.parquet").exists():
        raise DataContractError(f"{paths.interim_dir(dataset)} holds no clean tables of dataset {dataset!r}; run "
                                f"`make reports DATASET={dataset}` (notebook 01_data_cleaning writes them)")
    as_of = snapshot_as_of(dataset)
    if as_of is None:
        frame = pd.DataFrame({"customer_id": pd.Series([], dtype="string")})
    else:
        frame = customer_features(dataset, as_of).reset_index()
    frame.attrs = {}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           AS_OF_KEY: (as_of.isoformat() if as_of is not None else "").encode()})
    dest = features_path(dataset)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".customer_features.", suffix=".parquet.tmp", dir=dest.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file (mkstemp makes it private)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def read_as_of(path: str | Path) -> pd.Timestamp | None:
    """The ``as_of`` recorded in a ``customer_features.parquet`` (``None`` when empty)."""
    meta = pq.read_schema(path).metadata or {}
    value = meta.get(AS_OF_KEY, b"").decode()
    return pd.Timestamp(value) if value else None

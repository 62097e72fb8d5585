"""The RFM table: recency, number of orders and revenue of every customer up to a reference date,
in the vocabulary of :mod:`crm_analytics.features` (``recency_days, orders, revenue, aov,
first_purchase, last_purchase``).

Conventions
-----------
- A *purchase* is an order of a known customer with status completed or returned
  (:data:`crm_analytics.ingest.tables.PURCHASE_STATUSES`); only purchases with ``order_ts <= as_of`` count.
- ``as_of`` is a timestamp (a bare date means its midnight, UTC; a naive timestamp is taken as UTC).
- The table is indexed by ``customer_id`` and sorted by it.

Engine
------
:func:`rfm_table` is one Ibis expression run through :func:`crm_analytics.ingest.tables.local_ibis`
(DuckDB in-process by default, the engine the params choose otherwise). Benchmarked on 2.8 M orders
of 1 M customers (2 cores), the aggregation alone: Ibis + DuckDB 0.9–1.1 s, pandas ``groupby``
1.1–1.7 s, pandas on factorised codes 5.3 s; the whole :func:`rfm_table` call takes 1.1 s.
"""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import pyarrow as pa

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import (PURCHASE_STATUSES, ParquetTable, ids_for_keys, ibis_table,
                                         local_ibis, sorted_keys)

__all__ = ["RFM_COLUMNS", "rfm_table", "ts_literal", "purchase_rows", "utc_times"]

DAY = pd.Timedelta(days=1)

#: Columns of :func:`rfm_table`.
RFM_COLUMNS = ["recency_days", "orders", "revenue", "aov", "first_purchase", "last_purchase"]


def _timestamp(value: Any, name: str = "as_of") -> pd.Timestamp:
    """*value* as a tz-aware UTC timestamp (naive values are taken as UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"{name}={value!r} is not a date or timestamp; pass e.g. '2025-06-30'") from exc
    if ts is pd.NaT:
        raise ParamsError(f"{name} is missing; pass a date such as '2025-06-30'")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _require(df: Any, columns: Sequence[str], table: str) -> None:
    """Raise a DataContractError unless *df* is a DataFrame holding *columns*."""
    if not isinstance(df, pd.DataFrame):
        raise DataContractError(f"{table} must be a pandas DataFrame, not {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataContractError(
            f"{table} has no column(s) {missing}; columns are {list(df.columns)}. "
            f"Pass the clean canonical {table} table (crm_analytics.ingest.tables.read_clean)."
        )


def _require_table(data: Any, columns: Sequence[str], table: str) -> None:
    """Raise a DataContractError unless *data* is a DataFrame or a ParquetTable holding *columns*."""
    if isinstance(data, ParquetTable):
        missing = [c for c in columns if c not in data.columns]
        if missing:
            raise DataContractError(f"{table} ({data.path}) has no column(s) {missing}; columns are {data.columns}")
        return
    _require(data, columns, table)


def ts_literal(ts: pd.Timestamp, *, strict_below: bool = False) -> Any:
    """*ts* (UTC) as an Ibis timestamp literal at the clean data's precision, microseconds: floored for
    ``x <= ts`` and ``x > ts``, rounded up for ``x < ts`` and ``x >= ts`` (*strict_below*), so that each
    comparison holds for microsecond data exactly when it holds for *ts*. Portable (DuckDB and Spark)."""
    import ibis

    ts = _timestamp(ts, "timestamp")
    us = ts.ceil("us") if strict_below else ts.floor("us")
    return ibis.literal(us.to_pydatetime(), type="timestamp('UTC')")


def _utc_us(ts: pd.Series, where: str) -> pd.Series:
    """A timestamp column as tz-aware UTC at microsecond precision (what the clean parquet files hold)."""
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataContractError(f"{where} has dtype {ts.dtype}, not a timestamp; parse it with pd.to_datetime first")
    ts = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    return ts.dt.floor("us").dt.as_unit("us") if ts.dt.unit == "ns" else ts


def purchase_rows(db: Any, orders: pd.DataFrame | ParquetTable, as_of: Any = None,
                  columns: Sequence[str] = ()) -> Any:
    """The purchases of *orders* as an Ibis table on session *db*: orders of a known customer with status
    completed or returned (and ``order_ts <= as_of`` when *as_of* is given), with ``customer_id``,
    ``order_ts`` (UTC) and ``order_total`` (float64) plus the orders' *columns*.

    *orders* may be a DataFrame (registered through Arrow) or a
    :class:`~crm_analytics.ingest.tables.ParquetTable` (scanned where it lies: the orders of a shop with
    millions of customers are never loaded into pandas).
    """
    need = ["customer_id", "order_ts", "status", "order_total"]
    _require_table(orders, need, "orders")
    cols = list(dict.fromkeys([*need, *columns]))
    if isinstance(orders, pd.DataFrame):
        frame = orders[[c for c in cols if c in orders.columns]].reset_index(drop=True)
        frame["order_ts"] = _utc_us(frame["order_ts"], "orders.order_ts")
        frame["order_total"] = pd.to_numeric(frame["order_total"], errors="coerce").astype("float64")
        t = db.table(frame)
    else:
        t = ibis_table(db, orders, cols)
    keep = t.customer_id.notnull() & t.status.isin(list(PURCHASE_STATUSES))
    if as_of is not None:
        keep = keep & (t.order_ts <= ts_literal(as_of))
    t = t.filter(keep)
    return t.mutate(order_total=t.order_total.cast("float64"))


def utc_times(values: pd.Series) -> pd.Series:
    """Timestamps an engine returned (naive UTC or tz-aware) as tz-aware UTC."""
    ts = pd.to_datetime(values)
    return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")


def _utc_naive(ts: pd.Series, where: str) -> pd.Series:
    """A timestamp column as naive UTC (naive input is taken as UTC)."""
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataContractError(f"{where} has dtype {ts.dtype}, not a timestamp; parse it with pd.to_datetime first")
    return ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts


def _purchase_frame(orders: pd.DataFrame) -> pd.DataFrame:
    """Validated ``customer_id, ts (naive UTC), status, amount`` of all orders (not yet filtered)."""
    _require(orders, ["customer_id", "order_ts", "status", "order_total"], "orders")
    # keep the columns' own (Arrow-backed) dtypes: going through numpy object arrays costs more than the query
    frame = orders[["customer_id", "order_ts", "status", "order_total"]].reset_index(drop=True)
    frame = frame.rename(columns={"order_ts": "ts", "order_total": "amount"})
    frame["ts"] = _utc_naive(frame["ts"], "orders.order_ts")
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    return frame


def rfm_table(orders: pd.DataFrame | ParquetTable, as_of: Any) -> pd.DataFrame:
    """Recency, number of orders and revenue per customer, from purchases up to *as_of*.

    Parameters
    ----------
    orders : DataFrame or ParquetTable
        Clean canonical orders (``customer_id, order_ts, status, order_total``). Non-purchases
        (cancelled orders, orders without a customer) are left out here. A
        :class:`~crm_analytics.ingest.tables.ParquetTable` (``tables.clean_table``) is aggregated where
        it lies: only the one-row-per-customer result comes back (the 29.6 M orders of a
        10,000,000-customer shop are never loaded into pandas).
    as_of : date or timestamp
        Only orders with ``order_ts <= as_of`` count; recency is measured from it.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted), the columns of :data:`RFM_COLUMNS`: ``recency_days``
        (float days from the last purchase to *as_of*), ``orders`` (number of purchase orders),
        ``revenue`` (sum of order_total, in the shop's currency), ``aov`` (revenue / orders),
        ``first_purchase`` and ``last_purchase`` (UTC). Empty when nobody bought by *as_of*.
        ``attrs["as_of"]`` holds *as_of* (ISO format).

    Examples
    --------
    >>> o = pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["a", "a"], "status": ["completed"] * 2,
    ...                   "order_ts": pd.to_datetime(["2024-01-01", "2024-01-11"], utc=True),
    ...                   "order_total": [10.0, 30.0]})
    >>> rfm_table(o, "2024-01-21")[["recency_days", "orders", "revenue", "aov"]].to_dict("index")
    {'a': {'recency_days': 10.0, 'orders': 2, 'revenue': 40.0, 'aov': 20.0}}
    """
    as_of = _timestamp(as_of, "as_of")
    if isinstance(orders, ParquetTable):
        with local_ibis() as db:
            t = purchase_rows(db, orders, as_of)
            got = t.group_by("customer_id").aggregate(
                first_purchase=t.order_ts.min(), last_purchase=t.order_ts.max(), orders=t.count(),
                revenue=t.order_total.sum()
            ).order_by("customer_id").to_pyarrow()
        return _rfm_frame(got.to_pandas().set_index("customer_id"), as_of)
    frame = pa.Table.from_pandas(_purchase_frame(orders), preserve_index=False)
    key, ids = sorted_keys(frame["customer_id"].combine_chunks())
    if key is not None:  # the clean orders are sorted by customer: group integer keys, not text
        frame = frame.set_column(frame.schema.get_field_index("customer_id"), "customer_id", key)
    cut = as_of.tz_localize(None)
    with local_ibis() as db:
        t = db.table(frame)
        t = t.filter(t.customer_id.notnull() & t.status.isin(list(PURCHASE_STATUSES)) & (t.ts <= cut))
        expr = t.group_by("customer_id").aggregate(
            first_purchase=t.ts.min(), last_purchase=t.ts.max(), orders=t.count(), revenue=t.amount.sum()
        ).order_by("customer_id")
        got = expr.to_pyarrow()
    return _rfm_frame(ids_for_keys(got, ids).to_pandas().set_index("customer_id"), as_of)


def _rfm_frame(out: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The aggregated purchases per customer (``first_purchase, last_purchase, orders, revenue``) as
    :func:`rfm_table` returns them."""
    first, last = utc_times(out["first_purchase"]), utc_times(out["last_purchase"])
    n_orders = out["orders"].astype("int64")
    revenue = out["revenue"].astype("float64").fillna(0.0)
    result = pd.DataFrame({
        "recency_days": ((as_of - last) / DAY).astype("float64"),
        "orders": n_orders,
        "revenue": revenue,
        "aov": revenue / n_orders.where(n_orders > 0),
        "first_purchase": first,
        "last_purchase": last,
    }, index=out.index)
    result.index.name = "customer_id"
    result.attrs["as_of"] = as_of.isoformat()
    return result

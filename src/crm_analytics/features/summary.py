"""The Buy-Till-You-Die summary of each customer's purchases: ``frequency``, ``recency``, ``T`` and
``monetary_value`` at a calibration end, and, for a holdout check, what the customer did after it.

These are the only columns of the feature vocabulary (:mod:`crm_analytics.features`) in the field's own
names rather than the shop's: ``frequency`` counts *repeat* purchase periods, not ``orders``, and
``recency`` is the age at the last purchase, not ``recency_days``. The BTYD models
(:mod:`crm_analytics.models.clv`) are fitted on them.

* :func:`rfm_summary`: one row per customer (``frequency``, ``recency``, ``T``, ``monetary_value``).
* :func:`calibration_holdout`: the same at the calibration end, plus ``frequency_holdout``,
  ``monetary_value_holdout`` and ``duration_holdout`` for the days after it.

The aggregation is written as Ibis expressions: a pandas DataFrame runs on this thread's in-process
DuckDB (:func:`crm_analytics.ingest.tables.local_ibis`), an Ibis table on the backend it already lives on.
The period helpers (``_orders``, ``_period_id``, ``_purchase_periods``...) also serve the tracking plot,
:func:`crm_analytics.models.clv.repeat_transactions_over_time`, so both count periods the same way.

Conventions (those of the ``lifetimes`` package and of Fader, Hardie & Lee):

* Purchases in the same period (day, week or month; ``freq``) are merged into one, their
  amounts summed. A customer's first period is their "birth"; ``frequency`` is the number of
  later periods with a purchase (repeat purchases), ``recency`` the time from the first to the
  last purchase period, ``T`` the time from the first period to the calibration end's period,
  all divided by ``freq_multiplier`` (``freq="D", freq_multiplier=7`` gives weeks counted as
  days / 7, the unit of the published CDNOW results).
* ``monetary_value`` is the mean of the repeat-period totals (0 when ``frequency`` is 0), in the
  shop's currency.
* The calibration end and the observation end are calendar days in UTC and are inclusive:
  every order placed on that day belongs to the period before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import (
    PURCHASE_STATUSES,
    LocalIbis,
    ParquetTable,
    ibis_table,
    ids_for_keys,
    local_ibis,
    sorted_keys,
)

__all__ = ["FREQS", "DAYS_PER_MONTH", "rfm_summary", "calibration_holdout", "purchases_expr"]

#: Period lengths ``rfm_summary`` understands: day, week (Monday to Sunday, as pandas' ``W``), month.
FREQS = ("D", "W", "M")
#: Average Gregorian month in days, the month of ``freq="M"`` and of :func:`crm_analytics.models.clv.clv`.
DAYS_PER_MONTH = 365.25 / 12
_FREQ_DAYS = {"D": 1.0, "W": 7.0, "M": DAYS_PER_MONTH}
_EPOCH = pd.Timestamp("1970-01-01")


def _check_freq(freq: str, freq_multiplier: float) -> None:
    if freq not in FREQS:
        raise ParamsError(f"freq={freq!r} is not supported; use one of {list(FREQS)} (day, week, month)")
    if not np.isfinite(freq_multiplier) or freq_multiplier <= 0:
        raise ParamsError(f"freq_multiplier={freq_multiplier!r} must be a positive number (e.g. 7 for weeks from days)")


def _to_day(value: Any, name: str) -> pd.Timestamp:
    """A date, string or timestamp as the naive UTC calendar day (midnight) it falls on."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"{name}={value!r} is not a date; pass e.g. '1997-09-30'") from exc
    if ts is pd.NaT:
        raise ParamsError(f"{name} is missing; pass a date such as '1997-09-30'")
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


def _period_id(day: pd.Timestamp, freq: str) -> int:
    """Integer period number of a naive day; differences are the pandas ``Period`` differences."""
    days = int((day - _EPOCH) / pd.Timedelta(days=1))
    if freq == "D":
        return days
    if freq == "W":  # weeks Monday..Sunday; 1970-01-01 was a Thursday
        return (days + 3) // 7
    return day.year * 12 + day.month - 1


def _period_start(pid: np.ndarray, freq: str) -> pd.DatetimeIndex:
    """First day of each integer period number (inverse of :func:`_period_id`)."""
    pid = np.asarray(pid, dtype=np.int64)
    if freq == "D":
        return pd.DatetimeIndex(_EPOCH + pd.to_timedelta(pid, unit="D"))
    if freq == "W":
        return pd.DatetimeIndex(_EPOCH + pd.to_timedelta(pid * 7 - 3, unit="D"))
    return pd.to_datetime(pd.DataFrame({"year": pid // 12, "month": pid % 12 + 1, "day": 1}))


def _period_id_expr(day: ibis.Value, freq: str, epoch_day: ibis.Value | None = None) -> ibis.Value:
    """Ibis expression of :func:`_period_id` for a date column (``epoch_day``, its day number, if
    at hand: narrow integer keys group faster)."""
    if epoch_day is None:
        epoch_day = day.epoch_days()
    if freq == "D":
        return epoch_day
    if freq == "W":
        return (epoch_day + 3) // 7
    return day.year().cast("int64") * 12 + day.month().cast("int64") - 1


@dataclass
class _Orders:
    """Orders as an Ibis table ``customer_id, order_day`` (date), ``day`` (day number since
    1970-01-01, int32) and ``amount``. With ``ids`` set, ``customer_id`` holds integer keys:
    positions in ``ids``, the customers' ids in ascending order."""

    table: ibis.Table
    ids: pa.Array | None = None
    local: LocalIbis | None = None

    def table_of(self, frame: pd.DataFrame) -> ibis.Table:
        """*frame* as an Ibis table next to the orders (same backend, released with them)."""
        return self.local.table(frame) if self.local is not None else ibis.memtable(frame)


def purchases_expr(orders: ibis.Table) -> ibis.Table:
    """The purchases among clean *orders* (an Ibis table) as :func:`crm_analytics.ingest.tables.purchases`
    picks them: a known customer and, when the table has a ``status``, status completed or returned."""
    keep = orders.customer_id.notnull()
    if "status" in orders.columns:
        keep = keep & orders.status.isin(list(PURCHASE_STATUSES))
    return orders.filter(keep)


@contextmanager
def _orders(orders: pd.DataFrame | ibis.Table | ParquetTable, monetary: str | None, *,
            keyed: bool = True) -> Iterator[_Orders]:
    """Validate the orders and hold them as an Ibis table for the block: an Ibis table stays on its
    own backend; a DataFrame goes to this thread's in-process DuckDB (integer customer keys when
    ``keyed`` and the rows are sorted by customer_id, as the clean orders are); a
    :class:`~crm_analytics.ingest.tables.ParquetTable` of the clean orders is scanned by the engine
    where it lies, its purchases only (:func:`purchases_expr`)."""
    need = ["customer_id", "order_ts"] + ([monetary] if monetary else [])
    if isinstance(orders, ParquetTable):
        missing = [c for c in need if c not in orders.columns]
        if missing:
            raise DataContractError(f"{orders.path}: the orders have no column(s) {missing}; columns are "
                                    f"{list(orders.columns)}")
        with local_ibis() as db:
            t = purchases_expr(ibis_table(db, orders, need + ["status"]))
            with _orders(t, monetary, keyed=keyed) as o:
                yield _Orders(o.table, None, db)
        return
    if isinstance(orders, ibis.Table):
        missing = [c for c in need if c not in orders.columns]
        if missing:
            raise DataContractError(f"orders table has no column(s) {missing}; columns are {list(orders.columns)}")
        ts = orders["order_ts"]
        if ts.type().is_timestamp() and ts.type().timezone is not None:
            ts = ts.cast(ibis.dtype("timestamp"))  # the backend's session time zone should be UTC
        amount = orders[monetary].cast("float64") if monetary else ibis.literal(1.0)
        day = ts.date()
        yield _Orders(orders.select(customer_id=orders["customer_id"], order_day=day,
                                    day=day.epoch_days().cast("int32"), amount=amount))
        return
    frame, ids = _orders_frame(orders, need, monetary, keyed)
    with local_ibis() as db:
        yield _Orders(db.table(frame), ids, db)


def _orders_frame(orders: pd.DataFrame, need: list[str], monetary: str | None,
                  keyed: bool) -> tuple[pa.Table, pa.Array | None]:
    """Checked orders as Arrow columns, and the ids behind integer customer keys (or ``None``)."""
    if not isinstance(orders, pd.DataFrame):
        raise DataContractError(f"orders must be a pandas DataFrame, an Ibis table or a tables.ParquetTable, "
                                f"not {type(orders).__name__}")
    missing = [c for c in need if c not in orders.columns]
    if missing:
        raise DataContractError(
            f"orders has no column(s) {missing}; columns are {list(orders.columns)}. "
            "Pass the clean orders table (customer_id, order_ts, order_total) or name the money column with monetary="
        )
    for col in need:
        n_null = int(orders[col].isna().sum())
        if n_null:
            raise DataContractError(
                f"orders.{col} has {n_null} missing value(s); pass only purchases by known customers "
                "(crm_analytics.ingest.tables.purchases(orders))"
            )
    ts = orders["order_ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataContractError(
            f"orders.order_ts has dtype {ts.dtype}, not a timestamp; parse it (pd.to_datetime) first"
        )
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    ids = pa.array(orders["customer_id"].astype("string").array)
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    key, key_ids = sorted_keys(ids) if keyed else (None, None)
    # Arrow columns go to DuckDB without a copy through Python objects. The day is cut here:
    # numpy floors to whole days (also before 1970) faster than DuckDB casts timestamps to dates.
    days = ts.to_numpy().astype("datetime64[D]")
    frame = pa.table({
        "customer_id": ids if key is None else key,
        "order_day": pa.array(days),
        "day": pa.array(days.astype(np.int32)),
        "amount": pa.array(orders[monetary].to_numpy(dtype="float64") if monetary else np.ones(len(orders))),
    })
    return frame, key_ids


def _in_window(orders_t: ibis.Table, freq: str, *, after: pd.Timestamp | None = None,
               upto: pd.Timestamp | None = None) -> ibis.Table:
    """Purchases after ``after`` up to ``upto`` (days, inclusive), with the columns ``freq`` needs.

    Without bounds this is the orders table itself, which a query can read twice for free; a
    filtered table read twice becomes a common subquery that DuckDB materialises first.
    """
    if after is None and upto is None:
        return orders_t
    t = orders_t
    if upto is not None:
        t = t.filter(t.day <= _period_id(upto, "D"))
    if after is not None:
        t = t.filter(t.day > _period_id(after, "D"))
    return t.select("customer_id", "day", "amount", *(["order_day"] if freq == "M" else []))


def _period_of(t: ibis.Table, freq: str) -> ibis.Value:
    """Period number of each purchase of ``t`` (from :func:`_in_window`)."""
    return _period_id_expr(t.order_day if freq == "M" else None, freq, t.day)


def _purchase_periods(orders_t: ibis.Table, freq: str, *, after: pd.Timestamp | None = None,
                      upto: pd.Timestamp | None = None) -> ibis.Table:
    """Purchases merged per customer and period: ``customer_id, pid, amount`` (amounts summed)."""
    t = _in_window(orders_t, freq, after=after, upto=upto)
    return t.group_by([t.customer_id, _period_of(t, freq).name("pid")]).aggregate(amount=t.amount.sum())


@ibis.udf.agg.builtin(name="min_by")
def _min_by(arg: float, key: int) -> float:  # type: ignore[empty-body]
    """``arg`` on the row with the smallest ``key`` (``min_by`` in DuckDB, Spark, Trino and
    Snowflake). Ibis's ``argmin`` is an ordered aggregate on DuckDB, which sorts every group."""


def _period_stats(t: ibis.Table, freq: str, *, first_amount: bool) -> ibis.Table:
    """Per customer of the purchases ``t`` (from :func:`_in_window`): ``n_periods`` (periods with
    a purchase), ``first_pid``, ``last_pid``, ``total`` and, if asked, ``first_amount`` (the
    first period's total).

    Same-period purchases are merged without grouping every (customer, period) pair: the
    customers' rows are aggregated directly and corrected by the few pairs holding more than one
    purchase. On 2.8 M orders DuckDB takes 0.23 s for this against 0.30 s for grouping twice,
    whose second pass reads the first one's output in hash order instead of the customers' order.
    """
    pid = _period_of(t, freq)
    per_customer = {"n_rows": t.count(), "first_pid": pid.min(), "last_pid": pid.max(), "total": t.amount.sum()}
    if first_amount:  # exact unless the first period holds several purchases: corrected below
        per_customer["first_row_amount"] = _min_by(t.amount, pid)
    a = t.group_by("customer_id").aggregate(**per_customer)
    pairs = t.group_by([t.customer_id, pid.name("pid")]).aggregate(n=t.count(), amount=t.amount.sum())
    shared = pairs.filter(pairs.n > 1)
    extra = {"merged": (shared.n - 1).sum(), "first_shared": shared.pid.min()}
    if first_amount:
        extra["first_shared_amount"] = _min_by(shared.amount, shared.pid)
    d = shared.group_by("customer_id").aggregate(**extra)
    j = a.left_join(d, a.customer_id == d.customer_id)
    cols = {
        "customer_id": j.customer_id,
        "n_periods": j.n_rows - j.merged.fill_null(0),
        "first_pid": j.first_pid,
        "last_pid": j.last_pid,
        "total": j.total,
    }
    if first_amount:
        first_shared = (j.first_shared == j.first_pid).fill_null(False)
        cols["first_amount"] = ibis.ifelse(first_shared, j.first_shared_amount, j.first_row_amount)
    return j.select(**cols)


def _calibration_expr(t: ibis.Table, freq: str, end_pid: int, mult: float, with_monetary: bool) -> ibis.Table:
    """Per-customer frequency, recency, T (and monetary value) of the purchases ``t``."""
    s = _period_stats(t, freq, first_amount=with_monetary)
    cols = {
        "customer_id": s.customer_id,
        "frequency": (s.n_periods - 1).cast("int64"),
        "recency": (s.last_pid - s.first_pid).cast("float64") / mult,
        "T": (ibis.literal(end_pid) - s.first_pid).cast("float64") / mult,
    }
    if with_monetary:  # mean of the repeat periods: all periods but the first
        repeat = s.n_periods - 1
        cols["monetary_value"] = ibis.ifelse(repeat > 0, (s.total - s.first_amount) / repeat.cast("float64"), 0.0)
    return s.select(**cols).order_by("customer_id")


def _finish_summary(table: pa.Table, attrs: dict[str, Any], *, ids: pa.Array | None,
                    sorted_ids: bool) -> pd.DataFrame:
    """Arrow result to the summary frame, indexed by ``customer_id`` in ascending order.

    ``ids`` turns integer keys back into customer ids. ``sorted_ids`` says the in-process DuckDB
    sorted the rows (by key, or by text in code point order, as pandas does); another backend's
    collation may differ, so its order is checked.
    """
    out = ids_for_keys(table, ids).to_pandas().set_index("customer_id")
    if not sorted_ids and not out.index.is_monotonic_increasing:
        out = out.sort_index()
    out["frequency"] = out["frequency"].astype("int64")
    out.attrs.update(attrs)
    return out


def rfm_summary(
    orders: pd.DataFrame | ibis.Table | ParquetTable,
    *,
    calibration_end: Any = None,
    observation_end: Any = None,
    freq: str = "D",
    freq_multiplier: float = 1,
    monetary: str | None = "order_total",
) -> pd.DataFrame:
    """One row per customer: frequency, recency, T and monetary value at the calibration end.

    Parameters
    ----------
    orders
        Purchases (``crm_analytics.ingest.tables.purchases(orders)``) with ``customer_id``,
        ``order_ts`` (UTC; naive timestamps are read as UTC) and the money column; a pandas
        DataFrame (run on an in-process DuckDB) or an Ibis table (run on its backend; there a
        time-zone-aware ``order_ts`` is read in the backend's session time zone, so set that to
        UTC or store UTC wall-clock times). A DataFrame sorted by ``customer_id``, as the clean
        orders are (:func:`crm_analytics.ingest.tables.by_customer`), is summarised faster: its
        customers are keyed by position; any other row order gives the same result. A
        :class:`~crm_analytics.ingest.tables.ParquetTable` of the clean orders
        (:func:`crm_analytics.ingest.tables.clean_table`) is read by the engine where it lies, and
        its purchases are picked there (known customer, status completed or returned): the same
        summary as from ``purchases(orders)`` in pandas, without loading the orders.
    calibration_end
        Last day of the calibration period, inclusive (a date; a time of day is ignored).
        Defaults to the day of the last order.
    observation_end
        If given, the holdout columns of :func:`calibration_holdout` are added for the days
        after ``calibration_end`` up to this day.
    freq
        Period in which purchases are merged: ``"D"``, ``"W"`` (Monday to Sunday) or ``"M"``.
    freq_multiplier
        Divides recency and T: ``freq="D", freq_multiplier=7`` measures time in weeks (days/7).
    monetary
        Money column; ``None`` leaves out ``monetary_value``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (customers with a purchase on or before ``calibration_end``),
        columns ``frequency`` (int), ``recency``, ``T``, ``monetary_value``. ``attrs`` records
        ``freq``, ``freq_multiplier``, ``time_unit_days`` and the period ends.

    Raises
    ------
    DataContractError
        Missing columns or values, or no purchase on or before the calibration end.
    ParamsError
        Unknown ``freq`` or a bad date.
    """
    if observation_end is not None:
        return calibration_holdout(orders, calibration_end, observation_end, freq=freq,
                                   freq_multiplier=freq_multiplier, monetary=monetary)
    _check_freq(freq, freq_multiplier)
    whole = calibration_end is None  # up to the last order: every purchase counts, nothing to filter
    with _orders(orders, monetary) as o:
        t = o.table
        if whole and isinstance(orders, pd.DataFrame):
            calibration_end = orders["order_ts"].max()  # validated above: a timestamp column without gaps
        elif whole:
            calibration_end = t.aggregate(last=t.order_day.max()).to_pandas()["last"].iloc[0]
        cal = _to_day(calibration_end, "calibration_end")
        rows = _in_window(t, freq, upto=None if whole else cal)
        expr = _calibration_expr(rows, freq, _period_id(cal, freq), float(freq_multiplier), monetary is not None)
        df = expr.to_pyarrow()
    if df.num_rows == 0:
        raise DataContractError(
            f"no purchase on or before calibration_end={cal:%Y-%m-%d}; move calibration_end later "
            "or check the orders' dates"
        )
    return _finish_summary(df, ids=o.ids, sorted_ids=isinstance(orders, pd.DataFrame), attrs={
        "freq": freq, "freq_multiplier": float(freq_multiplier),
        "time_unit_days": _FREQ_DAYS[freq] * float(freq_multiplier),
        "calibration_end": f"{cal:%Y-%m-%d}",
    })


def calibration_holdout(
    orders: pd.DataFrame | ibis.Table | ParquetTable,
    calibration_end: Any,
    observation_end: Any,
    *,
    freq: str = "D",
    freq_multiplier: float = 1,
    monetary: str | None = "order_total",
) -> pd.DataFrame:
    """Calibration summary plus what each customer did in the holdout period.

    Same periods and conventions as :func:`rfm_summary` (and as
    ``lifetimes.utils.calibration_and_holdout_data``), for the customers born on or before
    ``calibration_end``.

    Parameters
    ----------
    orders, freq, freq_multiplier, monetary
        As in :func:`rfm_summary`.
    calibration_end
        Last day of the calibration period (inclusive).
    observation_end
        Last day of the holdout period (inclusive); after ``calibration_end``.

    Returns
    -------
    pandas.DataFrame
        The :func:`rfm_summary` columns plus ``frequency_holdout`` (number of holdout periods
        with a purchase), ``monetary_value_holdout`` (mean holdout period total, 0 if none; the
        same per-period definition as ``monetary_value``, where lifetimes averages raw rows)
        and ``duration_holdout`` (holdout length in time units).

    Raises
    ------
    ParamsError
        ``observation_end`` not after ``calibration_end``.
    """
    _check_freq(freq, freq_multiplier)
    cal = _to_day(calibration_end, "calibration_end")
    obs = _to_day(observation_end, "observation_end")
    if obs <= cal:
        raise ParamsError(
            f"observation_end={obs:%Y-%m-%d} must be after calibration_end={cal:%Y-%m-%d}; "
            "the holdout is the days in between"
        )
    mult = float(freq_multiplier)
    cal_pid, obs_pid = _period_id(cal, freq), _period_id(obs, freq)
    with _orders(orders, monetary) as o:
        t = o.table
        summary = _calibration_expr(_in_window(t, freq, upto=cal), freq, cal_pid, mult, monetary is not None)
        h = _period_stats(_in_window(t, freq, after=cal, upto=obs), freq, first_amount=False)
        cols = {"customer_id": h.customer_id, "frequency_holdout": h.n_periods.cast("int64")}
        if monetary is not None:  # mean period total
            cols["monetary_value_holdout"] = h.total / h.n_periods.cast("float64")
        hold = h.select(**cols)
        joined = summary.left_join(hold, "customer_id")
        fill = {"frequency_holdout": joined.frequency_holdout.fill_null(0)}
        if monetary is not None:
            fill["monetary_value_holdout"] = joined.monetary_value_holdout.fill_null(0.0)
        joined = joined.mutate(**fill, duration_holdout=ibis.literal((obs_pid - cal_pid) / mult))
        joined = joined.drop("customer_id_right") if "customer_id_right" in joined.columns else joined
        df = joined.order_by("customer_id").to_pyarrow()
    if df.num_rows == 0:
        raise DataContractError(
            f"no purchase on or before calibration_end={cal:%Y-%m-%d}; move calibration_end later"
        )
    out = _finish_summary(df, ids=o.ids, sorted_ids=isinstance(orders, pd.DataFrame), attrs={
        "freq": freq, "freq_multiplier": mult, "time_unit_days": _FREQ_DAYS[freq] * mult,
        "calibration_end": f"{cal:%Y-%m-%d}", "observation_end": f"{obs:%Y-%m-%d}",
    })
    out["frequency_holdout"] = out["frequency_holdout"].astype("int64")
    return out

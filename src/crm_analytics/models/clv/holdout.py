"""Holdout checks: the model against what customers did in a period it did not see, by calibration
frequency (:func:`holdout_by_frequency`) and period by period (:func:`repeat_transactions_over_time`).
"""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.features.summary import (
    _check_freq,
    _orders,
    _period_id,
    _period_id_expr,
    _period_start,
    _purchase_periods,
    _to_day,
)
from crm_analytics.models.clv.optimiser import ArrayLike, FitResult
from crm_analytics.models.clv.scoring import expected_purchases_unconditional

__all__ = ["holdout_by_frequency", "repeat_transactions_over_time"]


def holdout_by_frequency(summary_with_holdout: pd.DataFrame, expected: ArrayLike | pd.Series,
                         max_freq: int = 7) -> pd.DataFrame:
    """Mean actual vs expected holdout purchases by calibration frequency (0, 1, ..., ``max_freq``+).

    Parameters
    ----------
    summary_with_holdout
        :func:`calibration_holdout` output (``frequency``, ``frequency_holdout``).
    expected
        Expected holdout purchases per customer, e.g.
        ``expected_purchases(fit, s.duration_holdout, s.frequency, s.recency, s.T)``; a Series
        is aligned on the index, an array must follow the summary's row order.
    max_freq
        Calibration frequencies of ``max_freq`` and more share the last row, labelled ``"7+"``.

    Returns
    -------
    pandas.DataFrame
        Index ``frequency`` (``"0"``, ..., ``"7+"``), columns ``n_customers``, ``actual``,
        ``expected`` (means per customer); empty classes have NaN means.
    """
    for col in ("frequency", "frequency_holdout"):
        if col not in summary_with_holdout.columns:
            raise DataContractError(f"summary has no column {col!r}; build it with calibration_holdout()")
    if isinstance(expected, pd.Series):
        exp = expected.reindex(summary_with_holdout.index).to_numpy(dtype=float)
    else:
        exp = np.asarray(expected, dtype=float).reshape(-1)
    if exp.shape[0] != len(summary_with_holdout) or np.isnan(exp).any():
        raise DataContractError("expected must give one value per customer of the summary (same index or order)")
    labels = [str(i) for i in range(max_freq)] + [f"{max_freq}+"]
    cls = np.minimum(summary_with_holdout["frequency"].to_numpy(dtype=int), max_freq)
    df = pd.DataFrame({"cls": cls, "actual": summary_with_holdout["frequency_holdout"].to_numpy(float),
                       "expected": exp})
    g = df.groupby("cls")
    out = pd.DataFrame({"n_customers": g.size(), "actual": g["actual"].mean(), "expected": g["expected"].mean()})
    out = out.reindex(range(max_freq + 1))
    out["n_customers"] = out["n_customers"].fillna(0).astype("int64")
    out.index = pd.Index(labels, name="frequency")
    return out


def repeat_transactions_over_time(
    orders: pd.DataFrame | ibis.Table,
    fit: FitResult,
    first_purchase: pd.Series | None = None,
    *,
    freq: str = "D",
    freq_multiplier: float = 1,
    end: Any = None,
    bucket: int = 1,
    calibration_end: Any = None,
) -> pd.DataFrame:
    """Actual vs expected repeat purchases per period, incremental and cumulative (tracking plot).

    Every customer born (first purchase) in period ``b`` is expected to make
    ``E[X(t - b)]`` repeat purchases by period ``t`` (:func:`expected_purchases_unconditional`);
    the expected total is the convolution of births per period with that curve, so the cost does
    not depend on the number of customers.

    Parameters
    ----------
    orders
        Purchases as for :func:`rfm_summary` (only ``customer_id`` and ``order_ts`` are used).
    fit
        BG/NBD, MBG/NBD or Pareto/NBD fit whose time unit is ``freq`` / ``freq_multiplier``
        (``freq="D", freq_multiplier=7`` for a fit in weeks made from daily data).
    first_purchase
        Optional birth timestamp per customer (indexed by customer_id); limits the plot to these
        customers and counts as repeats only their purchases in later periods. Defaults to
        each customer's first order.
    freq, freq_multiplier
        Period of merging purchases and of the output rows, as in :func:`rfm_summary`.
    end
        Last day to show (inclusive); defaults to the last order.
    bucket
        Periods per output row (``freq="D", bucket=7`` gives weeks counted from the first birth).
    calibration_end
        If given, a boolean ``holdout`` column marks rows starting after this day.

    Returns
    -------
    pandas.DataFrame
        Rows ``period`` (1, 2, ...), ``period_start``, ``actual``, ``expected``,
        ``cumulative_actual``, ``cumulative_expected`` (and ``holdout``).
    """
    _check_freq(freq, freq_multiplier)
    if not isinstance(bucket, (int, np.integer)) or bucket < 1:
        raise ParamsError(f"bucket={bucket!r} must be a whole number of periods >= 1")
    with _orders(orders, None, keyed=first_purchase is None) as o:  # births are keyed by customer_id
        t = o.table
        if end is None:
            end = t.aggregate(last=t.order_day.max()).to_pandas()["last"].iloc[0]
        end_day = _to_day(end, "end")
        periods = _purchase_periods(t, freq, upto=end_day)
        if first_purchase is None:
            births = periods.group_by("customer_id").aggregate(birth=periods.pid.min())
        else:
            b = first_purchase.dropna()
            days = pd.to_datetime(b)
            if getattr(days.dt, "tz", None) is not None:
                days = days.dt.tz_convert("UTC").dt.tz_localize(None)
            bt = o.table_of(
                pd.DataFrame({"customer_id": b.index.to_numpy(), "birth_day": days.dt.normalize().to_numpy()})
            )
            births = bt.select(customer_id=bt.customer_id, birth=_period_id_expr(bt.birth_day.date(), freq))
        joined = periods.inner_join(births, "customer_id")
        later = joined.filter(joined.pid > joined.birth)
        repeats = later.group_by("pid").aggregate(n=later.count())
        born = births.group_by("birth").aggregate(n=births.count())
        rep_df = repeats.to_pandas()
        born_df = born.to_pandas()
    end_pid = _period_id(end_day, freq)
    born_df = born_df[born_df["birth"] <= end_pid]
    if born_df.empty:
        raise DataContractError(f"no customer was born on or before end={end_day:%Y-%m-%d}")
    start = int(born_df["birth"].min())
    length = end_pid - start + 1
    n_born = np.bincount(born_df["birth"].to_numpy(np.int64) - start, weights=born_df["n"].to_numpy(float),
                         minlength=length)
    actual = np.zeros(length)
    rep_df = rep_df[rep_df["pid"] <= end_pid]
    np.add.at(actual, rep_df["pid"].to_numpy(np.int64) - start, rep_df["n"].to_numpy(float))
    curve = expected_purchases_unconditional(fit, np.arange(length) / float(freq_multiplier))
    cum_expected = np.convolve(n_born, curve)[:length]
    cum_actual = np.cumsum(actual)
    row = np.arange(length) // bucket
    last = np.r_[np.flatnonzero(np.diff(row)), length - 1]
    cum_a, cum_e = cum_actual[last], cum_expected[last]
    out = pd.DataFrame({
        "period": np.arange(1, len(last) + 1),
        "period_start": _period_start(start + np.arange(0, length, bucket), freq),
        "actual": np.diff(cum_a, prepend=0.0),
        "expected": np.diff(cum_e, prepend=0.0),
        "cumulative_actual": cum_a,
        "cumulative_expected": cum_e,
    })
    if calibration_end is not None:
        out["holdout"] = out["period_start"] > _to_day(calibration_end, "calibration_end")
    return out

"""Customer lifetime value: discounted expected margin over the next months, per customer
(:func:`clv`) or month by month, per customer or segment (:func:`clv_cashflows`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.features.summary import DAYS_PER_MONTH
from crm_analytics.models.clv.optimiser import FitResult
from crm_analytics.models.clv.scoring import expected_purchases, expected_spend, p_alive

__all__ = ["clv", "clv_cashflows", "score_partitions"]

#: Customers per chunk of :func:`clv_cashflows` by segment: its customer-by-month arrays of a chunk take
#: about 0.1 GB each (12 months), whatever the number of customers.
CASHFLOW_CHUNK = 1_000_000


def _clv_inputs(fit: FitResult, summary: pd.DataFrame, horizon_months: int, margin: float,
                annual_discount_rate: float, time_unit_days: float | None) -> float:
    if not isinstance(horizon_months, (int, np.integer)) or horizon_months < 1:
        raise ParamsError(f"horizon_months={horizon_months!r} must be a whole number of months >= 1")
    if not 0 <= margin <= 1:
        raise ParamsError(f"margin={margin!r} must be a share between 0 and 1 (e.g. 0.3 for a 30% margin)")
    if not annual_discount_rate > -1:
        raise ParamsError(f"annual_discount_rate={annual_discount_rate!r} must be > -1 (e.g. 0.1 for 10% a year)")
    unit = time_unit_days or summary.attrs.get("time_unit_days") or fit.time_unit_days
    if fit.time_unit_days and unit and abs(fit.time_unit_days - unit) > 1e-9:
        raise ParamsError(
            f"the {fit.model} fit counts time in units of {fit.time_unit_days:g} days but the summary / "
            f"time_unit_days says {unit:g}; score with a summary built with the fit's freq and freq_multiplier"
        )
    if unit is None or not unit > 0:
        raise ParamsError("time_unit_days is unknown: pass the length in days of the summary's time unit "
                          "(1 for days, 7 for weeks)")
    for col in ("frequency", "recency", "T", "monetary_value"):
        if col not in summary.columns:
            raise DataContractError(f"summary has no column {col!r}; build it with rfm_summary()")
    return float(unit)


def _monthly_values(fit: FitResult, gg_fit: FitResult, summary: pd.DataFrame, horizon_months: int, margin: float,
                    annual_discount_rate: float, unit_days: float) -> dict[str, np.ndarray]:
    """Per customer and month: expected purchases, spend, margin and discounted margin."""
    hist = summary[["frequency", "recency", "T"]].to_numpy(dtype=float)
    uniq, inverse = np.unique(hist, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    months = np.arange(horizon_months + 1)
    t = months * DAYS_PER_MONTH / unit_days
    cum = expected_purchases(fit, t[None, :], uniq[:, :1], uniq[:, 1:2], uniq[:, 2:3])
    purchases = np.diff(cum, axis=1)[inverse]
    spend = expected_spend(gg_fit, summary["frequency"].to_numpy(float), summary["monetary_value"].to_numpy(float))
    revenue = purchases * spend[:, None]
    discount = (1.0 + annual_discount_rate) ** (-months[1:] / 12.0)
    value = revenue * margin
    return {
        "purchases": purchases, "spend": spend, "revenue": revenue, "margin": value,
        "discount": discount, "discounted": value * discount[None, :],
        "p_alive": p_alive(fit, uniq[:, 0], uniq[:, 1], uniq[:, 2])[inverse],
    }


def clv(
    fit: FitResult,
    gg_fit: FitResult,
    summary: pd.DataFrame,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.0,
    time_unit_days: float | None = None,
) -> pd.DataFrame:
    """Discounted customer lifetime value over the next ``horizon_months`` months.

    Month ``m`` (an average month of 30.44 days) contributes the expected purchases between
    the end of month ``m-1`` and month ``m``, times the Gamma-Gamma expected spend, times the
    margin, discounted by ``(1 + annual_discount_rate) ** (m / 12)`` (end of month).

    Parameters
    ----------
    fit
        BG/NBD, MBG/NBD or Pareto/NBD fit.
    gg_fit
        Gamma-Gamma fit.
    summary
        :func:`rfm_summary` output at the end of the calibration period (or today).
    horizon_months
        Months ahead.
    margin
        Share of revenue that is profit (1 = revenue CLV).
    annual_discount_rate
        Yearly discount rate (0.1 = 10%).
    time_unit_days
        Days per time unit of the summary; defaults to ``summary.attrs["time_unit_days"]``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``summary``: ``p_alive``, ``expected_purchases`` (over the horizon),
        ``expected_spend``, ``clv`` (discounted margin).
    """
    unit = _clv_inputs(fit, summary, horizon_months, margin, annual_discount_rate, time_unit_days)
    vals = _monthly_values(fit, gg_fit, summary, horizon_months, margin, annual_discount_rate, unit)
    return pd.DataFrame(
        {
            "p_alive": vals["p_alive"],
            "expected_purchases": vals["purchases"].sum(axis=1),
            "expected_spend": vals["spend"],
            "clv": vals["discounted"].sum(axis=1),
        },
        index=summary.index,
    )


def clv_cashflows(
    fit: FitResult,
    gg_fit: FitResult,
    summary: pd.DataFrame,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.0,
    time_unit_days: float | None = None,
    segment: pd.Series | None = None,
) -> pd.DataFrame:
    """Month-by-month expected cash flows per customer, or summed per segment.

    Parameters
    ----------
    fit, gg_fit, summary, horizon_months, margin, annual_discount_rate, time_unit_days
        As in :func:`clv`.
    segment
        Optional segment label per customer (indexed by customer_id, covering every customer
        of ``summary``); the flows are then summed per segment and month, computed for
        :data:`CASHFLOW_CHUNK` customers at a time (so memory does not grow with the customers).

    Returns
    -------
    pandas.DataFrame
        Long table with ``customer_id`` (or ``segment`` and ``n_customers``), ``month``,
        ``expected_purchases``, ``expected_revenue``, ``expected_margin``, ``discount_factor``,
        ``discounted_margin`` and ``cumulative_discounted_margin``. Summing
        ``discounted_margin`` per customer gives :func:`clv`.
    """
    unit = _clv_inputs(fit, summary, horizon_months, margin, annual_discount_rate, time_unit_days)
    months = np.arange(1, horizon_months + 1)
    key_name = summary.index.name or "customer_id"
    if segment is not None:
        labels = segment.reindex(summary.index)
        if labels.isna().any():
            raise DataContractError(
                f"segment has no label for {int(labels.isna().sum())} customer(s) of the summary; "
                "give every customer a segment (e.g. fillna('unassigned'))"
            )
        keys, codes = np.unique(labels.to_numpy(), return_inverse=True)
        codes = codes.reshape(-1)
        del labels
        names = ("purchases", "revenue", "margin", "discounted")
        table = {k: np.zeros((len(keys), horizon_months)) for k in names}
        for start in range(0, len(summary), CASHFLOW_CHUNK):  # customer by month arrays of one chunk at a time
            rows = slice(start, start + CASHFLOW_CHUNK)
            vals = _monthly_values(fit, gg_fit, summary.iloc[rows], horizon_months, margin, annual_discount_rate,
                                   unit)
            part = codes[rows]
            for k in names:
                table[k] += np.stack([np.bincount(part, weights=vals[k][:, j], minlength=len(keys))
                                      for j in range(horizon_months)], axis=1)
            del vals
        discount = (1.0 + annual_discount_rate) ** (-months / 12.0)
        index = keys
        key_name = segment.name or "segment"
        counts = np.bincount(codes, minlength=len(keys))
    else:
        vals = _monthly_values(fit, gg_fit, summary, horizon_months, margin, annual_discount_rate, unit)
        discount = vals["discount"]
        table = {k: vals[k] for k in ("purchases", "revenue", "margin", "discounted")}
        index = summary.index.to_numpy()
        counts = None
    k = len(index)
    out = pd.DataFrame({
        key_name: np.repeat(index, horizon_months),
        "month": np.tile(months, k),
        "expected_purchases": table["purchases"].reshape(-1),
        "expected_revenue": table["revenue"].reshape(-1),
        "expected_margin": table["margin"].reshape(-1),
        "discount_factor": np.tile(discount, k),
        "discounted_margin": table["discounted"].reshape(-1),
        "cumulative_discounted_margin": np.cumsum(table["discounted"], axis=1).reshape(-1),
    })
    if counts is not None:
        out.insert(1, "n_customers", np.repeat(counts, horizon_months))
    return out


def score_partitions(
    fit: FitResult,
    gg_fit: FitResult,
    summary: Any,
    out_path: str | Path,
    *,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.0,
    time_unit_days: float,
    predict_days: int | None = None,
) -> Path:
    """Score every customer of *summary* where the data is and write the scores to parquet.

    The fits are small (a few parameters); the customers may be many. Each partition of
    *summary* is scored on its own — in Spark's executors (``mapInPandas``) on
    ``engine: pyspark``, batch by batch on DuckDB (:func:`crm_analytics.compute.map_partitions`)
    — with the same numbers as :func:`clv` and :func:`expected_purchases` on the whole table.

    Parameters
    ----------
    fit, gg_fit
        The purchase model (BG/NBD, MBG/NBD or Pareto/NBD) and the Gamma-Gamma fit.
    summary
        An Ibis table of a :func:`crm_analytics.compute.session` block with ``customer_id``,
        ``frequency``, ``recency``, ``T`` (in the fits' time unit) and ``monetary_value``.
    out_path
        A folder, replaced by the parquet files of the scores.
    horizon_months, margin, annual_discount_rate
        As in :func:`clv`.
    time_unit_days
        Days per time unit of the summary.
    predict_days
        If given, also ``expected_purchases_<predict_days>d``: expected purchases in that many days.

    Returns
    -------
    Path
        *out_path*, holding ``customer_id, p_alive, expected_purchases, expected_spend, clv`` (and
        ``expected_purchases_<n>d``) per customer, in no defined order.
    """
    import pyarrow as pa

    from crm_analytics import compute

    fields = [("customer_id", pa.string()), ("p_alive", pa.float64()), ("expected_purchases", pa.float64()),
              ("expected_spend", pa.float64()), ("clv", pa.float64())]
    extra = f"expected_purchases_{predict_days}d" if predict_days else None
    if extra:
        fields.append((extra, pa.float64()))
    _clv_inputs(fit, pd.DataFrame(columns=["frequency", "recency", "T", "monetary_value"]), horizon_months, margin,
                annual_discount_rate, time_unit_days)

    def score(part: pd.DataFrame) -> pd.DataFrame:
        part = part.astype({"frequency": float, "recency": float, "T": float, "monetary_value": float})
        out = clv(fit, gg_fit, part, horizon_months=horizon_months, margin=margin,
                  annual_discount_rate=annual_discount_rate, time_unit_days=time_unit_days)
        out.insert(0, "customer_id", part["customer_id"].astype(str).to_numpy())
        if extra:
            out[extra] = expected_purchases(fit, predict_days / time_unit_days, part["frequency"], part["recency"],
                                            part["T"])
        return out.reset_index(drop=True)

    columns = summary.select("customer_id", "frequency", "recency", "T", "monetary_value")
    return compute.map_partitions(columns, score, pa.schema(fields), out_path)

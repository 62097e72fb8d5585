"""Cohort retention: customers and revenue of each first-purchase cohort, period by period.

A customer's *cohort* is the period (month by default) of their first purchase; period ``k`` of a
cohort is the k-th period after it (``k = 0`` is the first-purchase period). A purchase is an order
of a known customer with status completed or returned (:func:`crm_analytics.ingest.tables.purchases`),
on or before ``as_of``.

Cells that were not fully observed by ``as_of`` are missing (NaN), never 0: a cohort of March
has no value yet for k = 5 in June. By default the period holding ``as_of`` counts as unfinished
(unless ``as_of`` is its very end), so its cells are NaN too and customers whose first purchase
falls in it form no cohort yet; ``include_partial=True`` keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import CrmAnalyticsError, DataContractError, ParamsError
from crm_analytics.features.rfm import purchase_rows
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ParquetTable, local_ibis

__all__ = ["CohortRetention", "cohort_retention", "average_curve", "retention_at"]


@dataclass(frozen=True)
class CohortRetention:
    """Outcome of :func:`cohort_retention`; every matrix is cohort (rows) × period k (columns).

    Attributes
    ----------
    customers : DataFrame
        Share of the cohort's customers who bought in period k (k = 0 is 1).
    revenue : DataFrame
        The cohort's revenue in period k divided by its revenue in period 0.
    active : DataFrame
        Number of the cohort's customers who bought in period k.
    revenue_amount : DataFrame
        The cohort's revenue in period k.
    sizes : Series
        Customers per cohort.
    freq : str
        Period frequency.
    last_period : pandas.Period
        The last fully observed period (the last one counted).
    """

    customers: pd.DataFrame
    revenue: pd.DataFrame
    active: pd.DataFrame
    revenue_amount: pd.DataFrame
    sizes: pd.Series
    freq: str
    last_period: pd.Period

    def average(self, kind: str = "customers") -> pd.Series:
        """Size-weighted average curve of customer retention, or (``kind="revenue"``) the revenue
        curve weighted by period-0 revenue (= summed revenue in k / summed revenue in 0)."""
        if kind == "customers":
            return average_curve(self.customers, self.sizes)
        if kind == "revenue":
            return average_curve(self.revenue, self.revenue_amount[0])
        raise ParamsError(f"kind={kind!r} must be 'customers' or 'revenue'")


def _as_of(value: Any) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"as_of={value!r} is not a date or timestamp; pass e.g. '2025-06-30'") from exc
    if ts is pd.NaT:
        raise ParamsError("as_of is missing; pass a date such as '2025-06-30'")
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts


#: Period frequencies whose ordinals the engine computes from year and month (others are counted in pandas).
_ENGINE_FREQS = {"M": (12, 1), "ME": (12, 1), "Q": (4, 3), "QE": (4, 3), "QE-DEC": (4, 3), "Q-DEC": (4, 3),
                 "Y": (1, 12), "YE": (1, 12), "A": (1, 12), "Y-DEC": (1, 12), "YE-DEC": (1, 12)}


def _cells_engine(orders: ParquetTable, cut: pd.Timestamp, freq: str, last: pd.Period
                  ) -> tuple[pd.DataFrame, int | None]:
    """``cohort, k, active, amount`` per cohort and period k of the purchases up to *cut*, in the engine
    (the 29.6 M orders of a 10,000,000-customer shop stay where they are), and the first cohort ordinal
    (``None`` when no cohort's first period is observed)."""
    per_year, months = _ENGINE_FREQS[freq]
    with local_ibis() as db:
        t = purchase_rows(db, orders, cut.tz_localize("UTC"))
        t = t.filter(t.order_ts.notnull())
        ordinal = ((t.order_ts.year() - 1970) * per_year + (t.order_ts.month() - 1) // months).cast("int64")
        t = t.select("customer_id", "order_total", ordinal=ordinal)
        per = t.group_by(["customer_id", "ordinal"]).aggregate(amount=t.order_total.sum())
        first = per.group_by("customer_id").aggregate(cohort=per.ordinal.min())
        j = per.join(first, "customer_id")
        j = j.filter((j.cohort <= int(last.ordinal)) & (j.ordinal <= int(last.ordinal)))
        j = j.mutate(k=j.ordinal - j.cohort)
        got = j.group_by(["cohort", "k"]).aggregate(active=j.count(), amount=j.amount.sum()).to_pyarrow().to_pandas()
    if got.empty:
        return got, None
    return got.astype({"cohort": "int64", "k": "int64", "active": "int64", "amount": "float64"}), int(got["cohort"].min())


def cohort_retention(orders: pd.DataFrame | ParquetTable, as_of: Any, freq: str = "M", *,
                     include_partial: bool = False) -> CohortRetention:
    """Customer and revenue retention of first-purchase cohorts.

    Parameters
    ----------
    orders : DataFrame or ParquetTable
        Clean canonical orders (``customer_id, order_ts, status, order_total``). A
        :class:`~crm_analytics.ingest.tables.ParquetTable` (``tables.clean_table``) is aggregated in the
        engine for monthly, quarterly and yearly cohorts: only the cohort × period cells come back.
    as_of : date or timestamp
        Purchases after it are ignored; cells not fully observed by it are NaN.
    freq : str
        Pandas period frequency: ``"M"`` months (default), ``"Q"`` quarters, ``"W"`` weeks.
    include_partial : bool
        Count the unfinished period that holds *as_of* as observed.

    Returns
    -------
    CohortRetention

    Examples
    --------
    >>> o = pd.DataFrame({"customer_id": ["a", "b", "a"], "status": ["completed"] * 3,
    ...                   "order_ts": pd.to_datetime(["2024-01-05", "2024-01-09", "2024-02-02"], utc=True),
    ...                   "order_total": [10.0, 10.0, 5.0]})
    >>> cohort_retention(o, "2024-03-31 23:59:59.999999").customers.round(2).to_dict("list")
    {0: [1.0], 1: [0.5], 2: [0.0]}
    """
    need = ["customer_id", "order_ts", "status", "order_total"]
    if not isinstance(orders, (pd.DataFrame, ParquetTable)):
        raise DataContractError(f"orders must be a pandas DataFrame, not {type(orders).__name__}")
    missing = [c for c in need if c not in orders.columns]
    if missing:
        raise DataContractError(f"orders has no column(s) {missing}; columns are {list(orders.columns)}; "
                                "pass the clean canonical orders table")
    cut = _as_of(as_of)
    try:
        cut_period = pd.Period(cut, freq=freq)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"freq={freq!r} is not a pandas period frequency; use 'M', 'Q' or 'W'") from exc
    finished = cut >= cut_period.end_time.floor("us")
    last = cut_period if (include_partial or finished) else cut_period - 1
    if isinstance(orders, ParquetTable):
        if str(freq).upper() in _ENGINE_FREQS:
            cells, first_cohort = _cells_engine(orders, cut, str(freq).upper(), last)
            return _matrices(cells, first_cohort, cut, last, cut_period, freq, engine=True)
        orders = orders.to_pandas(need)  # weeks and other periods: only the four columns, in pandas
    ts = orders["order_ts"]
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataContractError(f"orders.order_ts has dtype {ts.dtype}, not a timestamp; parse it first")
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    keep = (orders["customer_id"].notna() & orders["status"].isin(PURCHASE_STATUSES)).to_numpy() & (ts <= cut).to_numpy()
    p = pd.DataFrame({
        "customer_id": orders["customer_id"].to_numpy()[keep],
        "ordinal": ts[keep].dt.to_period(freq).array.asi8,
        "amount": pd.to_numeric(orders["order_total"], errors="coerce").to_numpy(dtype="float64")[keep],
    })
    p["cohort"] = p.groupby("customer_id")["ordinal"].transform("min")
    p = p[p["cohort"] <= last.ordinal]
    if p.empty:
        return _matrices(p, None, cut, last, cut_period, freq)
    p = p[p["ordinal"] <= last.ordinal]
    p["k"] = p["ordinal"] - p["cohort"]
    g = p.groupby(["cohort", "k"])
    cells = pd.DataFrame({"active": g["customer_id"].nunique(), "amount": g["amount"].sum()}).reset_index()
    sizes = p.groupby("cohort")["customer_id"].nunique()
    return _matrices(cells, int(p["cohort"].min()), cut, last, cut_period, freq, sizes=sizes)


def _matrices(cells: pd.DataFrame, first_cohort: int | None, cut: pd.Timestamp, last: pd.Period,
              cut_period: pd.Period, freq: str, *, sizes: pd.Series | None = None,
              engine: bool = False) -> CohortRetention:
    """The :class:`CohortRetention` of the ``cohort, k, active, amount`` cells (cohort sizes: *sizes*, or
    the customers active in period 0)."""
    if first_cohort is None:
        raise CrmAnalyticsError(
            f"no cohort has a fully observed first period by {cut:%Y-%m-%d}; move as_of later or pass "
            "include_partial=True"
        )
    cohorts = np.arange(first_cohort, last.ordinal + 1)
    ks = np.arange(0, last.ordinal - cohorts[0] + 1)
    idx = cells.set_index(["cohort", "k"])
    active = idx["active"].unstack(fill_value=0).reindex(index=cohorts, columns=ks, fill_value=0)
    amount = idx["amount"].unstack(fill_value=0.0).reindex(index=cohorts, columns=ks, fill_value=0.0)
    if sizes is None:
        sizes = active[0]
    sizes = sizes.reindex(cohorts, fill_value=0)
    has = sizes.to_numpy() > 0  # periods in which nobody made a first purchase form no cohort
    cohorts, active, amount, sizes = cohorts[has], active[has], amount[has], sizes[has]
    observed = (cohorts[:, None] + ks[None, :]) <= last.ordinal
    active = active.astype("float64").where(observed)
    amount = amount.astype("float64").where(observed)
    index = pd.PeriodIndex.from_ordinals(cohorts, freq=cut_period.freq).rename("cohort")
    cols = pd.Index(ks, name="period")
    for m in (active, amount):
        m.index, m.columns = index, cols
    sizes = pd.Series(sizes.to_numpy(), index=index, name="customers")
    customers = active.div(sizes, axis=0)
    base = amount[0].where(amount[0] != 0)
    revenue = amount.div(base, axis=0)
    return CohortRetention(customers, revenue, active, amount, sizes, str(freq), last)


def average_curve(matrix: pd.DataFrame, weights: pd.Series | None = None) -> pd.Series:
    """Weighted average of a cohort matrix per period k, over the cohorts observed at k.

    Parameters
    ----------
    matrix : DataFrame
        Cohort × period matrix (NaN = not observed).
    weights : Series, optional
        Weight per cohort (e.g. cohort sizes), aligned on the index; default equal weights.

    Returns
    -------
    Series
        Indexed by k; NaN where no cohort is observed.
    """
    if not isinstance(matrix, pd.DataFrame):
        raise DataContractError(f"matrix must be a DataFrame (cohort × period), not {type(matrix).__name__}")
    w = pd.Series(1.0, index=matrix.index) if weights is None else weights.reindex(matrix.index).astype("float64")
    if w.isna().any():
        raise DataContractError("weights do not cover every cohort of the matrix; pass CohortRetention.sizes")
    ok = matrix.notna()
    num = matrix.fillna(0.0).mul(w, axis=0).sum()
    den = ok.mul(w, axis=0).sum()
    return (num / den.where(den > 0)).rename("retention")


def retention_at(matrix: pd.DataFrame | CohortRetention, k: int, weights: pd.Series | None = None) -> float:
    """Weighted average retention at period *k* over the cohorts observed that long.

    Given a :class:`CohortRetention`, uses its customer matrix weighted by cohort sizes.

    Raises
    ------
    CrmAnalyticsError
        When no cohort has been observed for *k* periods.
    """
    if isinstance(matrix, CohortRetention):
        matrix, weights = matrix.customers, (matrix.sizes if weights is None else weights)
    curve = average_curve(matrix, weights)
    if k not in curve.index or pd.isna(curve.loc[k]):
        raise CrmAnalyticsError(
            f"no cohort has been observed for {k} periods (observed up to k={int(curve.dropna().index.max())}); "
            "ask for a smaller k or a later as_of"
        )
    return float(curve.loc[k])

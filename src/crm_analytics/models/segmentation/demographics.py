"""Demographic profiles of the segments: age bands, customers, revenue and basket per group × segment,
the published (small-group-protected) views, and tests of whether segments differ between groups."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crm_analytics import i18n
from crm_analytics.errors import DataContractError
from crm_analytics.models.segmentation._common import _customer_index, _require, _timestamp
from crm_analytics.models.segmentation.suppression import OTHER_LABEL, suppress_small

__all__ = ["AGE_BANDS", "age_band", "demographic_profile", "demographic_tables", "difference_test"]

AGE_BANDS = ((0, 25, "<25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"), (55, 65, "55-64"),
             (65, 200, "65+"))


def age_band(birth_date: pd.Series, as_of: Any) -> pd.Series:
    """Age band (``<25``, ``25-34`` … ``65+``, ``unknown``) at *as_of* from a birth-date column."""
    as_of = _timestamp(as_of, "as_of").tz_localize(None)
    bd = pd.to_datetime(birth_date, errors="coerce")
    if getattr(bd.dt, "tz", None) is not None:
        bd = bd.dt.tz_convert("UTC").dt.tz_localize(None)
    age = as_of.year - bd.dt.year - ((bd.dt.month > as_of.month) |
                                     ((bd.dt.month == as_of.month) & (bd.dt.day > as_of.day))).astype(int)
    bins = [b[0] for b in AGE_BANDS] + [AGE_BANDS[-1][1]]
    band = pd.cut(age, bins=bins, right=False, labels=[b[2] for b in AGE_BANDS])
    return band.astype(object).where(band.notna() & (age >= 0), "unknown").rename("age_band")


def _with_demographics(rfm_seg: pd.DataFrame, customers: pd.DataFrame, by: Sequence[str], as_of: Any,
                       segment_col: str) -> pd.DataFrame:
    rfm_seg = _customer_index(rfm_seg, "rfm_seg")
    _require(rfm_seg, [segment_col, "revenue", "orders"], "rfm_seg")
    _require(customers, ["customer_id"], "customers")
    # only the columns profiled (not the whole customers table: 10 M rows of a dozen columns at scale)
    keep = [c for c in dict.fromkeys(["customer_id", "birth_date", "age_band", *by]) if c in customers.columns]
    cust = customers[keep].drop_duplicates("customer_id").set_index("customer_id")
    if as_of is None:
        as_of = rfm_seg.attrs.get("as_of") or (rfm_seg["last_purchase"].max() if "last_purchase" in rfm_seg
                                                else pd.Timestamp.now(tz="UTC"))
    attrs = {}
    for dim in by:
        if dim == "age_band" and "age_band" not in cust:
            _require(cust, ["birth_date"], "customers")
            attrs[dim] = age_band(cust["birth_date"], as_of)
        elif dim in cust:
            # text stays Arrow-backed: one Python object per customer costs GBs for 10 M customers
            attrs[dim] = cust[dim] if isinstance(cust[dim].dtype, pd.StringDtype) else cust[dim].astype(object)
        else:
            raise DataContractError(f"customers has no column {dim!r} to profile by; columns are "
                                    f"{list(customers.columns)} (age_band is derived from birth_date)")
    demo = pd.DataFrame(attrs, index=cust.index).reindex(rfm_seg.index)
    for dim in by:
        col = demo[dim]
        demo[dim] = col.fillna("unknown") if isinstance(col.dtype, pd.StringDtype) else \
            col.astype(object).where(col.notna(), "unknown")
    out = rfm_seg[[segment_col, "revenue", "orders"]].join(demo)
    out[segment_col] = out[segment_col].astype(str)
    return out


def demographic_profile(rfm_seg: pd.DataFrame, customers: pd.DataFrame,
                        by: Sequence[str] = ("age_band", "gender", "region"), *, as_of: Any = None,
                        segment_col: str = "segment") -> pd.DataFrame:
    """Customers, revenue and basket per demographic group × segment.

    Parameters
    ----------
    rfm_seg : DataFrame
        Segmented RFM table (:func:`assign_segments`), indexed by customer_id.
    customers : DataFrame
        Clean customers; missing attributes become ``"unknown"``.
    by : sequence of str
        Customer columns to profile by; ``age_band`` is derived from ``birth_date`` at *as_of*
        (default: the RFM table's as_of).

    Returns
    -------
    DataFrame
        Long table: ``dimension, group, segment, customers, share_of_group, revenue, orders, basket``
        (basket = revenue / orders). Publish it through :func:`suppress_small`.
    """
    d = _with_demographics(rfm_seg, customers, by, as_of, segment_col)
    frames = []
    for dim in by:  # a few dimensions
        g = d.groupby([dim, segment_col], sort=True)
        t = pd.DataFrame({"customers": g.size(), "revenue": g["revenue"].sum(), "orders": g["orders"].sum()})
        t = t.reset_index().rename(columns={dim: "group", segment_col: "segment"})
        t.insert(0, "dimension", dim)
        frames.append(t)
    out = pd.concat(frames, ignore_index=True)
    out["group"] = out["group"].astype(str)
    out.insert(4, "share_of_group", out["customers"] / out.groupby(["dimension", "group"])["customers"].transform("sum"))
    out["basket"] = out["revenue"] / out["orders"]
    return out


def demographic_tables(profile: pd.DataFrame, dimension: str, min_group_size: int = 10
                       ) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The two published views of one demographic dimension, small groups protected.

    Parameters
    ----------
    profile : DataFrame
        :func:`demographic_profile` output.
    dimension : str
        One of its dimensions (``age_band``, ``gender``, ``region``).
    min_group_size : int
        Groups of fewer customers are merged into :data:`OTHER_LABEL`.

    Returns
    -------
    (summary, crosstab, note)
        ``summary``: one row per group — customers, share of customers, share of revenue, orders per
        customer and basket (revenue / orders). ``crosstab``: customers per group (rows) × segment
        (columns) as whole numbers, with ``<NA>`` where a cell had fewer than *min_group_size*
        customers (those are counted in the Other row of that segment). ``note`` says what was
        merged; groups keep their natural order, ``unknown`` and Other last.
    """
    part = profile[profile["dimension"] == dimension]
    if part.empty:
        raise DataContractError(f"demographic profile has no dimension {dimension!r}; it has "
                                f"{sorted(profile['dimension'].unique())}")
    per_group = part.groupby("group", sort=False)[["customers", "revenue", "orders"]].sum().reset_index()
    per_group["customer_share"] = per_group["customers"] / per_group["customers"].sum()
    per_group["revenue_share"] = per_group["revenue"] / per_group["revenue"].sum()
    summary, note_summary = suppress_small(per_group, "customers", min_group_size, label_col="group")
    summary["orders_per_customer"] = summary["orders"] / summary["customers"]
    summary["basket"] = summary["revenue"] / summary["orders"]

    def order(labels: pd.Index) -> list:
        last = [x for x in ("unknown", OTHER_LABEL) if x in labels]
        return sorted([x for x in labels if x not in last], key=_group_sort_key) + last

    summary = summary.set_index("group").loc[lambda t: order(t.index)]
    summary = summary[["customers", "customer_share", "revenue_share", "orders_per_customer", "basket"]]
    cells, note_cells = suppress_small(part[["group", "segment", "customers"]], "customers", min_group_size,
                                       label_col="group", within=["segment"])
    segments = [str(x) for x in (part["segment"].cat.categories if isinstance(part["segment"].dtype, pd.CategoricalDtype)
                                 else part["segment"].unique())]
    cells = cells.assign(segment=cells["segment"].astype(str))  # (group, segment) pairs are unique here
    cross = cells.pivot(index="group", columns="segment", values="customers").round().astype("Int64")
    cross = cross[[c for c in segments if c in cross.columns]]
    cross = cross[cross.notna().any(axis=1)]  # an Other row hidden in every segment says nothing
    cross = cross.loc[order(cross.index)]
    cross.columns.name = None
    notes = [n for n in (note_summary, note_cells and i18n.t("In the segment table: {note}", note=note_cells)) if n]
    return summary, cross, " ".join(notes)


def _group_sort_key(label: str) -> tuple:
    """Age bands by age (``<25`` first, ``65+`` last), other labels alphabetically."""
    text = str(label)
    if text.startswith("<") and text[1:].isdigit():
        return (0, int(text[1:]), text)
    head = text.split("-")[0].rstrip("+")
    return (1, int(head), text) if head.isdigit() else (2, 0, text)


def difference_test(rfm_seg: pd.DataFrame, customers: pd.DataFrame,
                    by: Sequence[str] = ("age_band", "gender", "region"), *, as_of: Any = None,
                    segment_col: str = "segment", value_col: str = "revenue") -> pd.DataFrame:
    """Do segments differ between demographic groups? One row per dimension.

    - chi-square test of independence of segment × group (``chi2``, ``dof``, ``chi2_p_value``,
      ``cramers_v``, ``low_expected_share`` = share of cells with an expected count below 5, where
      the chi-square approximation is rough);
    - Kruskal-Wallis test of revenue per customer (*value_col*) across groups (``kruskal_h``,
      ``kruskal_p_value``).

    The ``"unknown"`` group (missing attribute) is left out of both tests. Fewer than two groups
    (or segments) give missing statistics.
    """
    d = _with_demographics(rfm_seg, customers, by, as_of, segment_col)
    if value_col != "revenue":
        d[value_col] = _customer_index(rfm_seg, "rfm_seg")[value_col]
    rows = []
    for dim in by:  # a few dimensions
        x = d[d[dim] != "unknown"]
        table = pd.crosstab(x[dim], x[segment_col])
        row: dict[str, Any] = {"dimension": dim, "n": int(len(x)), "groups": int(table.shape[0]),
                               "chi2": np.nan, "dof": np.nan, "chi2_p_value": np.nan, "cramers_v": np.nan,
                               "low_expected_share": np.nan, "kruskal_h": np.nan, "kruskal_p_value": np.nan}
        if table.shape[0] >= 2 and table.shape[1] >= 2:
            chi2, p, dof, expected = stats.chi2_contingency(table.to_numpy(), correction=False)
            row.update(chi2=float(chi2), dof=int(dof), chi2_p_value=float(p),
                       cramers_v=float(np.sqrt(chi2 / (len(x) * (min(table.shape) - 1)))),
                       low_expected_share=float((expected < 5).mean()))
        groups = [v.to_numpy(dtype="float64") for _, v in x.groupby(dim)[value_col]]
        if len(groups) >= 2 and np.ptp(np.concatenate(groups)) > 0:
            h, p = stats.kruskal(*groups)
            row.update(kruskal_h=float(h), kruskal_p_value=float(p))
        rows.append(row)
    return pd.DataFrame(rows).set_index("dimension")

"""Complaint tickets: volume, resolution against an SLA, repeat complainers, satisfaction, churn after a
complaint and faults that keep coming back.

Every function takes the clean canonical ``tickets`` table (timestamps tz-aware UTC, ``resolved_ts`` null
while open; each ticket is a complaint) and returns DataFrames, small dataclasses of them, or dicts of
Python numbers ready for ``report.write_metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crm_analytics import i18n
from crm_analytics.models.campaigns import newcombe_interval, proportion_lift, wilson_interval
from crm_analytics.features.customer import TIMESTAMP_COLUMNS, customer_features
from crm_analytics.errors import CrmAnalyticsError, DataContractError
from crm_analytics.ingest.tables import PURCHASE_STATUSES

__all__ = ["MATCH_BANDS", "ComplaintChurn", "RepeatComplainers", "Satisfaction", "complaint_churn",
           "repeat_complainers", "repeated_faults", "resolution_times", "satisfaction", "ticket_volume"]

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
YEAR_DAYS = 365.25

#: Bands :func:`complaint_churn` can stratify on: name -> (feature of
#: :func:`crm_analytics.features.customer.customer_features`,
#: right-closed bin edges, labels). ``reference_quarter`` (calendar quarter of the reference) is also valid.
MATCH_BANDS: dict[str, tuple[str, list[float], list[str]]] = {
    "frequency_band": ("orders", [0, 1, 2, 4, np.inf], ["1", "2", "3-4", "5+"]),
    "recency_band": ("recency_days", [-np.inf, 30, 90, 180, 365, np.inf],
                     ["<=30d", "30-90d", "90-180d", "180-365d", ">365d"]),
    "tenure_band": ("tenure_days", [-np.inf, 90, 365, 730, np.inf], ["<=90d", "90-365d", "1-2y", ">2y"]),
}
DEFAULT_MATCH = ("frequency_band", "recency_band", "tenure_band")


def _need(df: Any, cols: Sequence[str], table: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise CrmAnalyticsError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataContractError(f"{table}: column(s) {missing} not found (the table has {list(df.columns)}); pass "
                                f"the clean canonical table, e.g. tables.read_clean(dataset, {table!r})")


def _utc(df: pd.DataFrame, col: str, table: str) -> pd.Series:
    s = df[col]
    if not isinstance(s.dtype, pd.DatetimeTZDtype):
        raise DataContractError(f"{table}: column {col!r} must hold tz-aware UTC timestamps, got dtype {s.dtype}; "
                                "clean the table first (notebook 01) or use pd.to_datetime(..., utc=True)")
    return s.dt.tz_convert("UTC")


def _stamp(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _keys(by: str | Sequence[str] | None) -> list[str]:
    return [] if by is None else [by] if isinstance(by, str) else list(by)


def _period(ts: pd.Series, freq: str) -> pd.Series:
    try:
        return ts.dt.tz_localize(None).dt.to_period(freq)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CrmAnalyticsError(f"freq={freq!r} is not a pandas period frequency: use one of "
                                "['D', 'W', 'M', 'Q', 'Y']") from exc


def _labelled(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """*df* with missing values of the grouping *keys* shown as ``"(missing)"`` instead of dropped."""
    return df.assign(**{k: df[k].astype(object).where(df[k].notna(), "(missing)") for k in keys})


def _grouped(df: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, list[str]]:
    return (_labelled(df, keys), keys) if keys else (df.assign(_all="all"), ["_all"])


def ticket_volume(tickets: pd.DataFrame, by: str | Sequence[str] | None = ("category", "channel"),
                  freq: str | None = None) -> pd.DataFrame:
    """Tickets per group (missing values form the group ``"(missing)"``), with share and customers.

    With *freq* (a pandas period frequency: ``"W"``, ``"M"``, ``"Q"``) per period of ``opened_ts`` too,
    shares then within each period. Returns ``[period,] *by, tickets, customers, share``, by period and
    then most tickets first.
    """
    keys = _keys(by)
    _need(tickets, ["ticket_id", "customer_id", "opened_ts", *keys], "tickets")
    t, group = _grouped(tickets, keys)
    if freq is not None:
        t = t.assign(period=_period(_utc(t, "opened_ts", "tickets"), freq))
        group = ["period", *group]
    out = t.groupby(group, sort=True, observed=True).agg(tickets=("ticket_id", "size"),
                                                         customers=("customer_id", "nunique")).reset_index()
    total = out.groupby("period")["tickets"].transform("sum") if freq is not None else out["tickets"].sum()
    out["share"] = out["tickets"] / total
    order = ["period", "tickets"] if freq is not None else ["tickets"]
    out = out.sort_values(order, ascending=[True, False][-len(order):], kind="stable")
    return out.drop(columns="_all", errors="ignore").reset_index(drop=True)


def resolution_times(tickets: pd.DataFrame, *, sla_hours: float, by: str | Sequence[str] | None = None,
                     as_of: Any = None, alpha: float = 0.05) -> pd.DataFrame:
    """Hours from opening to resolution against an SLA, per group (*by* None: one row for all tickets).

    Open tickets are aged at *as_of* (default: the latest timestamp in *tickets*; a ticket resolved after
    it counts as open, one opened after it is ignored). ``median_hours``, ``p90_hours`` (linear
    interpolation) and ``mean_hours`` are over resolved tickets only, so they understate while many are
    open (``open_share``). **A breach is a resolved ticket that took longer than sla_hours, or an open
    ticket already older than sla_hours** (``open_breached``); open tickets younger than the SLA are
    undecided and left out of ``breach_base``. ``breach_low``/``breach_high``: Wilson interval (*alpha*).

    Returns
    -------
    DataFrame
        ``*by, tickets, resolved, open, open_share, median_hours, p90_hours, mean_hours, breached,
        open_breached, breach_base, breach_share, breach_low, breach_high, sla_hours``.

    Raises
    ------
    DataContractError
        When a ticket was resolved before it was opened.
    """
    keys = _keys(by)
    _need(tickets, ["ticket_id", "opened_ts", "resolved_ts", *keys], "tickets")
    if not (np.isscalar(sla_hours) and float(sla_hours) > 0):
        raise CrmAnalyticsError(f"sla_hours must be a positive number of hours, got {sla_hours!r}")
    opened, resolved = _utc(tickets, "opened_ts", "tickets"), _utc(tickets, "resolved_ts", "tickets")
    hours = (resolved - opened) / HOUR
    if (hours < 0).any():
        bad = tickets.loc[hours < 0, "ticket_id"].head(3).tolist()
        raise DataContractError(f"tickets: {int((hours < 0).sum())} ticket(s) resolved before they were opened "
                                f"(e.g. {bad}); fix resolved_ts or drop those tickets")
    as_of = _stamp(as_of) if as_of is not None else max(opened.max(), resolved.max())
    keep = (opened <= as_of).to_numpy()
    is_open = (resolved.isna() | (resolved > as_of))[keep]
    age = ((as_of - opened) / HOUR)[keep]
    hours = hours[keep].where(~is_open)
    d, group = _grouped(tickets.loc[keep, keys], keys)
    d = d.assign(hours=hours, open=is_open, open_breached=is_open & (age > sla_hours),
                 breached=(~is_open & (hours > sla_hours)) | (is_open & (age > sla_hours)),
                 decided=~is_open | (age > sla_hours))
    g = d.groupby(group, sort=True, observed=True)
    out = pd.DataFrame({"tickets": g.size(), "resolved": g.size() - g["open"].sum(), "open": g["open"].sum()})
    out["open_share"] = out["open"] / out["tickets"]
    out["median_hours"], out["p90_hours"] = g["hours"].median(), g["hours"].quantile(0.9)
    out["mean_hours"], out["breached"] = g["hours"].mean(), g["breached"].sum()
    out["open_breached"], out["breach_base"] = g["open_breached"].sum(), g["decided"].sum()
    out["breach_share"] = out["breached"] / out["breach_base"].where(out["breach_base"] > 0)
    lo, hi = wilson_interval(out["breached"], out["breach_base"].clip(lower=1), alpha)
    out["breach_low"], out["breach_high"] = (np.where(out["breach_base"] > 0, v, np.nan) for v in (lo, hi))
    out["sla_hours"] = float(sla_hours)
    return out.reset_index().drop(columns="_all", errors="ignore")


@dataclass(frozen=True)
class RepeatComplainers:
    """Outcome of :func:`repeat_complainers`.

    ``customers``: ``customer_id, tickets, categories`` (distinct, comma-separated), ``n_categories,
    top_category, first_opened, last_opened, days_first_to_last``, most tickets first. ``summary``:
    ``complainers, repeat_complainers, repeat_complainer_share, tickets, repeat_tickets, repeat_ticket_share,
    tickets_without_customer, min_tickets`` (tickets and shares count tickets with a known customer).
    """

    customers: pd.DataFrame
    summary: dict[str, Any]


def repeat_complainers(tickets: pd.DataFrame, *, min_tickets: int = 2) -> RepeatComplainers:
    """Customers with at least *min_tickets* tickets, and the share of all tickets that are theirs."""
    _need(tickets, ["ticket_id", "customer_id", "opened_ts", "category"], "tickets")
    if int(min_tickets) < 1:
        raise CrmAnalyticsError(f"min_tickets must be at least 1, got {min_tickets!r}")
    t = _labelled(tickets[tickets["customer_id"].notna()], ["category"])
    counts = t.groupby("customer_id").size()
    rep = t[t["customer_id"].isin(counts.index[counts >= min_tickets])]
    g = rep.groupby("customer_id")
    per_cat = rep.groupby(["customer_id", "category"]).size().rename("n").reset_index()
    top = per_cat.sort_values(["customer_id", "n", "category"], ascending=[True, False, True]).drop_duplicates(
        "customer_id").set_index("customer_id")["category"]
    cats = per_cat.sort_values(["customer_id", "category"]).groupby("customer_id")["category"]
    out = pd.DataFrame({"tickets": g.size(), "categories": cats.agg(", ".join), "n_categories": cats.size(),
                        "top_category": top, "first_opened": g["opened_ts"].min(), "last_opened": g["opened_ts"].max()})
    out["days_first_to_last"] = (out["last_opened"] - out["first_opened"]) / DAY
    out = out.rename_axis("customer_id").reset_index().sort_values(["tickets", "customer_id"],
                                                                   ascending=[False, True], ignore_index=True)
    n_t, n_r = len(t), int(out["tickets"].sum())
    summary = {"complainers": len(counts), "repeat_complainers": len(out),
               "repeat_complainer_share": len(out) / len(counts) if len(counts) else float("nan"),
               "tickets": n_t, "repeat_tickets": n_r, "repeat_ticket_share": n_r / n_t if n_t else float("nan"),
               "tickets_without_customer": int(tickets["customer_id"].isna().sum()), "min_tickets": int(min_tickets)}
    return RepeatComplainers(out, summary)


@dataclass(frozen=True)
class Satisfaction:
    """Outcome of :func:`satisfaction` (resolved tickets with a 1-5 score only).

    ``by_group``: ``*by, rated, mean, mean_low, mean_high`` (t interval), ``dissatisfied_share`` (1-2),
    ``satisfied_share`` (4-5); ``distribution``: ``*by`` and the share of each score in columns ``1 .. 5``;
    ``by_resolution_band``: ``band, rated, median_hours, mean, dissatisfied_share``; ``spearman_rho``,
    ``spearman_p``: rank correlation of hours to resolution with the score.
    """

    by_group: pd.DataFrame
    distribution: pd.DataFrame
    by_resolution_band: pd.DataFrame
    spearman_rho: float
    spearman_p: float


def satisfaction(tickets: pd.DataFrame, by: str | Sequence[str] | None = "category", *,
                 bands_hours: Sequence[float] = (4, 24, 72, 168), alpha: float = 0.05) -> Satisfaction:
    """Satisfaction after resolution per group, and by resolution-time band (*bands_hours*: inner edges,
    right-closed). Only resolved tickets with a score count; *alpha* is the level of the mean's interval.

    Raises
    ------
    DataContractError
        When a score lies outside 1-5.
    """
    keys = _keys(by)
    _need(tickets, ["opened_ts", "resolved_ts", "satisfaction", *keys], "tickets")
    hours = (_utc(tickets, "resolved_ts", "tickets") - _utc(tickets, "opened_ts", "tickets")) / HOUR
    score = pd.to_numeric(tickets["satisfaction"], errors="coerce").astype(float)
    bad = score.notna() & ~score.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise DataContractError(f"tickets: column 'satisfaction' has {int(bad.sum())} value(s) outside 1-5 "
                                f"(e.g. {score[bad].head(3).tolist()}); map the survey scale to 1-5 first")
    rated = (score.notna() & hours.notna()).to_numpy()
    d, group = _grouped(tickets.loc[rated, keys], keys)
    d = d.assign(score=score[rated], hours=hours[rated], low=score[rated] <= 2, high=score[rated] >= 4)
    g = d.groupby(group, sort=True, observed=True)
    n, mean, sd = g.size(), g["score"].mean(), g["score"].std()
    half = stats.t.ppf(1 - alpha / 2, (n - 1).clip(lower=1)) * sd / np.sqrt(n)
    by_group = pd.DataFrame({"rated": n, "mean": mean, "mean_low": mean - half, "mean_high": mean + half,
                             "dissatisfied_share": g["low"].mean(), "satisfied_share": g["high"].mean()}).reset_index()
    dist = pd.crosstab([d[k] for k in group], d["score"].astype(int), normalize="index")
    dist = dist.reindex(columns=[1, 2, 3, 4, 5], fill_value=0.0).reset_index()
    dist.columns.name = None
    edges = [0.0, *map(float, bands_hours), np.inf]
    inner = [f"{a:g}-{b:g} h" for a, b in pairwise(edges[1:-1])]
    labels = [f"<={edges[1]:g} h", *inner, f">{edges[-2]:g} h"]
    d["band"] = pd.cut(d["hours"], edges, labels=labels, include_lowest=True)
    gb = d.groupby("band", observed=False)
    bands = pd.DataFrame({"rated": gb.size(), "median_hours": gb["hours"].median(), "mean": gb["score"].mean(),
                          "dissatisfied_share": gb["low"].mean()})
    bands = bands.reset_index().assign(band=lambda x: x["band"].astype(str))
    varied = len(d) >= 3 and d["score"].nunique() > 1 and d["hours"].nunique() > 1
    rho, p = stats.spearmanr(d["hours"], d["score"]) if varied else (np.nan, np.nan)
    return Satisfaction(by_group.drop(columns="_all", errors="ignore"), dist.drop(columns="_all", errors="ignore"),
                        bands, float(rho), float(p))


@dataclass(frozen=True)
class ComplaintChurn:
    """Outcome of :func:`complaint_churn`.

    ``metrics``: JSON-ready numbers (listed there); ``strata``: per stratum the bands, ``n_complainers,
    churned_complainers, n_controls, churned_controls, churn_complainers, churn_controls, matched``;
    ``rows``: per reference ``row_id, customer_id, group`` (``complainer``/``comparable``), ``reference_ts,
    ticket_id, ticket_hours, churned, matched, weight, annual_revenue_before``, the bands and the features.
    """

    metrics: dict[str, Any]
    strata: pd.DataFrame
    rows: pd.DataFrame


def _naive(s: pd.Series) -> np.ndarray:
    return s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def _reference_rows(tickets: pd.DataFrame, bought: pd.DataFrame, as_of: pd.Timestamp, last_ref: pd.Timestamp,
                    seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Complainers at their first ticket, and one reference per other buyer drawn from the complainers' ones."""
    tk = tickets[tickets["customer_id"].notna() & (tickets["opened_ts"] <= as_of)]
    first = tk.sort_values(["opened_ts", "ticket_id"], kind="stable").drop_duplicates("customer_id")
    first_buy = bought.groupby("customer_id")["order_ts"].min()
    comp = first[first["opened_ts"] <= last_ref]
    with_history = (first_buy.reindex(comp["customer_id"]).to_numpy() < comp["opened_ts"].to_numpy())
    counts = {"complainers_total": len(first), "complainers_too_recent": len(first) - len(comp),
              "complainers_without_history": int((~with_history).sum())}
    comp = comp[with_history]
    if comp.empty:
        raise CrmAnalyticsError(f"tickets: no customer complained on or before {last_ref:%Y-%m-%d} "
                                "(as_of - horizon_days) after a purchase: lower horizon_days or move as_of later")
    refs = np.sort(_naive(comp["opened_ts"]))
    lo = np.searchsorted(refs, _naive(first_buy), side="right")  # the first reference after the first purchase
    u, has = np.random.default_rng(seed).random(len(first_buy)), lo < len(refs)
    drawn = refs[np.minimum(lo + np.floor(u * (len(refs) - lo)).astype(int), len(refs) - 1)]
    ctrl = pd.DataFrame({"customer_id": first_buy.index[has], "reference_ts": pd.to_datetime(drawn[has], utc=True)})
    ctrl["first_ticket"] = ctrl["customer_id"].map(first.set_index("customer_id")["opened_ts"])
    ctrl = ctrl[~(ctrl["first_ticket"] <= ctrl["reference_ts"])].assign(group="comparable", ticket_id=None)
    resolved = comp["resolved_ts"].where(comp["resolved_ts"] <= as_of)
    hours = ((resolved.fillna(as_of) - comp["opened_ts"]) / HOUR).to_numpy()  # open: age at as_of
    comp = pd.DataFrame({"customer_id": comp["customer_id"], "reference_ts": comp["opened_ts"], "group": "complainer",
                         "ticket_id": comp["ticket_id"], "ticket_hours": hours, "first_ticket": comp["opened_ts"]})
    rows = pd.concat([comp, ctrl], ignore_index=True)
    return rows.assign(row_id=np.arange(len(rows))), counts


def _bands(rows: pd.DataFrame, match_on: Sequence[str]) -> pd.DataFrame:
    for name in match_on:
        if name == "reference_quarter":
            rows[name] = rows["reference_ts"].dt.tz_localize(None).dt.to_period("Q").astype(str)
        else:
            feature, edges, labels = MATCH_BANDS[name]
            rows[name] = pd.cut(rows[feature], edges, labels=labels).astype(str)
    return rows


def complaint_churn(tickets: pd.DataFrame, orders: pd.DataFrame, *, as_of: Any, horizon_days: int = 180,
                    match_on: Sequence[str] = DEFAULT_MATCH, sla_hours: float | None = None, alpha: float = 0.05,
                    seed: int = 0) -> ComplaintChurn:
    """Churn after a complaint against comparable customers without one (risk-set design, exact strata).

    *Complainers*: a customer's first ticket is the reference. *Comparable*: each buyer gets a reference
    drawn (*seed*) from the complainers' references after their first purchase, and counts if they had not
    complained by then (risk-set sampling, Li, Propert & Rosenbaum 2001, JASA 96: 870; some complain later:
    ``comparable_complaining_in_window``). Features: :func:`crm_analytics.features.customer.customer_features` as of
    each row's own reference (earlier orders re-timed so every reference falls on *as_of*; one call); a row
    needs a purchase before its reference. Exact strata on *match_on* (keys of :data:`MATCH_BANDS` or
    ``"reference_quarter"``; ``()``: crude); strata lacking a group are dropped, and the comparable rate is
    standardised to the complainers' strata (weights ``n_complainers / n_controls``). **Churned**: no purchase
    within *horizon_days* after the reference; **only references at least horizon_days before as_of count**.

    Newcombe's interval (Statistics in Medicine 1998, 17: 873) and the log risk ratio's use the comparable
    group's Kish effective size ``(sum w)^2 / sum w^2``. Revenue at risk = ``lift x n_complainers x mean
    annual revenue before the reference`` (purchases per year of tenure, under a year counting as one): a
    year's revenue per extra churner. Resolution speed: complainers' churn when the first ticket took longer
    than *sla_hours* (default: the median; an open ticket counts with its age at *as_of*) minus churn when
    faster (:func:`crm_analytics.models.campaigns.proportion_lift`); descriptive, not causal.

    Returns
    -------
    ComplaintChurn
        ``metrics``: ``complaint_churn_lift`` = ``{value, ci_low, ci_high}`` (complainers' minus comparable
        churn), ``churn_rate_complainers, churn_rate_comparable`` (standardised),
        ``churn_rate_non_complainers_crude, lift_crude, relative_risk`` (+ ``_low``/``_high``),
        ``n_complainers, churned_complainers, n_comparable, n_comparable_effective, strata_matched,
        complainers_total, complainers_too_recent, complainers_without_history, complainers_unmatched,
        comparable_complaining_in_window, mean_annual_revenue_complainers``, ``revenue_at_risk`` =
        ``{value, ci_low, ci_high}``, ``resolution_speed`` = ``{split_hours, split_rule, n_fast, n_slow,
        churn_fast, churn_slow, diff, diff_low, diff_high, p_value}``, and ``as_of, last_reference,
        horizon_days, match_on, alpha, seed``.
    """
    _need(tickets, ["ticket_id", "customer_id", "opened_ts", "resolved_ts"], "tickets")
    _need(orders, ["order_id", "customer_id", "order_ts", "status", "order_total"], "orders")
    valid = [*MATCH_BANDS, "reference_quarter"]
    if unknown := [m for m in match_on if m not in valid]:
        raise CrmAnalyticsError(f"match_on: unknown band(s) {unknown}; valid are {valid}")
    if int(horizon_days) <= 0:
        raise CrmAnalyticsError(f"horizon_days must be a positive number of days, got {horizon_days!r}")
    as_of, horizon = _stamp(as_of), int(horizon_days) * DAY
    last_ref = as_of - horizon
    cols = ["order_id", "customer_id", "order_ts", "status", "order_total"]
    o = orders[cols].assign(order_ts=_utc(orders, "order_ts", "orders"))  # one tz object, so frames concatenate
    o = o[o["customer_id"].notna() & (o["order_ts"] <= as_of)]
    tk = tickets.assign(opened_ts=_utc(tickets, "opened_ts", "tickets"),
                        resolved_ts=_utc(tickets, "resolved_ts", "tickets"))
    rows, counts = _reference_rows(tk, o[o["status"].isin(PURCHASE_STATUSES)], as_of, last_ref, seed)

    j = o.merge(rows[["row_id", "customer_id", "reference_ts"]], on="customer_id")  # a customer has <= 2 rows
    before = j[j["order_ts"] < j["reference_ts"]]
    moved = before["order_ts"] + (as_of - before["reference_ts"])
    feats = customer_features({"orders": before.assign(customer_id=before["row_id"], order_ts=moved)[cols]},
                              as_of).drop(columns=TIMESTAMP_COLUMNS)
    after = j[j["status"].isin(PURCHASE_STATUSES) & (j["order_ts"] > j["reference_ts"])
              & (j["order_ts"] <= j["reference_ts"] + horizon)]
    rows = rows.assign(churned=~rows["row_id"].isin(after["row_id"])).join(feats, on="row_id", how="inner")
    rows["annual_revenue_before"] = rows["revenue"] * YEAR_DAYS / rows["tenure_days"].clip(lower=YEAR_DAYS)
    rows = _bands(rows, match_on)
    keys = list(match_on) or ["_all"]
    is_c = rows["group"].eq("complainer")
    rows = rows.assign(_all="all", _c=is_c, _cc=is_c & rows["churned"], _k=~is_c, _kc=~is_c & rows["churned"])
    strata = rows.groupby(keys, observed=True).agg(
        n_complainers=("_c", "sum"), churned_complainers=("_cc", "sum"),
        n_controls=("_k", "sum"), churned_controls=("_kc", "sum")).reset_index()
    for g, n in (("complainers", "n_complainers"), ("controls", "n_controls")):
        strata[f"churn_{g}"] = strata[f"churned_{g}"] / strata[n].where(strata[n] > 0)
    strata["matched"] = (strata["n_complainers"] > 0) & (strata["n_controls"] > 0)
    ratio = strata["n_complainers"] / strata["n_controls"].where(strata["matched"])
    rows = rows.merge(strata[keys + ["matched"]].assign(_ratio=ratio.fillna(0.0)), on=keys, how="left")
    rows["weight"] = np.where(rows["_c"], rows["matched"].astype(float), rows["_ratio"])

    t = rows[rows["_c"] & rows["matched"]]
    c = rows[~rows["_c"] & rows["matched"]]
    if t.empty:
        raise CrmAnalyticsError(f"no complainer has a comparable customer in the same stratum of "
                                f"{list(match_on)}: stratify on fewer bands (match_on) or use more data")
    n_t, x_t = len(t), int(t["churned"].sum())
    w = c["weight"].to_numpy()
    p_t, p_c = x_t / n_t, float((w * c["churned"]).sum() / w.sum())
    n_eff = float(w.sum() ** 2 / (w**2).sum())
    lo, hi = (float(v) for v in newcombe_interval(x_t, n_t, p_c * n_eff, n_eff, alpha))
    z = stats.norm.ppf(1 - alpha / 2)
    rr = p_t / p_c if p_c > 0 else float("nan")
    se = np.sqrt(1 / x_t - 1 / n_t + 1 / (p_c * n_eff) - 1 / n_eff) if x_t and p_c > 0 else float("nan")
    p_crude = float(rows.loc[~rows["_c"], "churned"].mean())
    revenue = float(t["annual_revenue_before"].mean())
    late = c["first_ticket"] <= c["reference_ts"] + horizon
    metrics = {
        "complaint_churn_lift": {"value": p_t - p_c, "ci_low": lo, "ci_high": hi},
        "churn_rate_complainers": p_t, "churn_rate_comparable": p_c, "churn_rate_non_complainers_crude": p_crude,
        "lift_crude": float(rows.loc[rows["_c"], "churned"].mean()) - p_crude, "relative_risk": rr,
        "relative_risk_low": float(rr * np.exp(-z * se)), "relative_risk_high": float(rr * np.exp(z * se)),
        "n_complainers": n_t, "churned_complainers": x_t, "n_comparable": len(c), "n_comparable_effective": n_eff,
        "strata_matched": int(strata["matched"].sum()), **counts,
        "complainers_unmatched": int((rows["_c"] & ~rows["matched"]).sum()),
        "comparable_complaining_in_window": int(late.sum()), "mean_annual_revenue_complainers": revenue,
        "revenue_at_risk": {k: v * n_t * revenue for k, v in (("value", p_t - p_c), ("ci_low", lo), ("ci_high", hi))},
        "resolution_speed": _resolution_speed(t, sla_hours, alpha),
        "as_of": as_of.isoformat(), "last_reference": last_ref.isoformat(), "horizon_days": int(horizon_days),
        "match_on": list(match_on), "alpha": alpha, "seed": seed,
    }
    rows = rows.drop(columns=["_all", "_c", "_cc", "_k", "_kc", "_ratio", "first_ticket"])
    return ComplaintChurn(metrics, strata.drop(columns="_all", errors="ignore"), rows)


def _resolution_speed(t: pd.DataFrame, sla_hours: float | None, alpha: float) -> dict[str, Any]:
    split = float(sla_hours) if sla_hours is not None else float(t["ticket_hours"].median())
    slow = t["ticket_hours"] > split
    x = {k: (int(t.loc[m, "churned"].sum()), int(m.sum())) for k, m in (("slow", slow), ("fast", ~slow))}
    out: dict[str, Any] = {"split_hours": split, "split_rule": "sla" if sla_hours is not None else "median",
                           "n_fast": x["fast"][1], "n_slow": x["slow"][1],
                           "churn_fast": x["fast"][0] / x["fast"][1] if x["fast"][1] else float("nan"),
                           "churn_slow": x["slow"][0] / x["slow"][1] if x["slow"][1] else float("nan")}
    r = proportion_lift(*x["slow"], *x["fast"], alpha) if x["slow"][1] and x["fast"][1] else {}
    nan = float("nan")
    return out | {"diff": r.get("lift_abs", nan), "diff_low": r.get("lift_abs_low", nan),
                  "diff_high": r.get("lift_abs_high", nan), "p_value": r.get("p_value", nan)}


#: the evidence sentence of :func:`repeated_faults` for each period length (written in the report language)
_EVIDENCE = {
    "D": "tickets on {k} of {n} days, {total:,} in all, trend {slope:+.2f} tickets a day ({trend})",
    "W": "tickets in {k} of {n} weeks, {total:,} in all, trend {slope:+.2f} tickets a week ({trend})",
    "M": "tickets in {k} of {n} months, {total:,} in all, trend {slope:+.2f} tickets a month ({trend})",
    "Q": "tickets in {k} of {n} quarters, {total:,} in all, trend {slope:+.2f} tickets a quarter ({trend})",
    "Y": "tickets in {k} of {n} years, {total:,} in all, trend {slope:+.2f} tickets a year ({trend})",
    "A": "tickets in {k} of {n} years, {total:,} in all, trend {slope:+.2f} tickets a year ({trend})",
}
_EVIDENCE_OTHER = "tickets in {k} of {n} periods, {total:,} in all, trend {slope:+.2f} tickets a period ({trend})"


def repeated_faults(tickets: pd.DataFrame, *, freq: str = "M", min_periods: int = 3,
                    order_lines: pd.DataFrame | None = None, products: pd.DataFrame | None = None,
                    alpha: float = 0.05) -> pd.DataFrame:
    """Ticket categories (and, with *order_lines*, products) that keep coming back, with the evidence.

    Tickets are counted per period from the first ticket's to the last's (zero where none); a ticket counts
    for every product on its order. Items with tickets in at least *min_periods* periods are listed;
    ``trend_slope`` is the least-squares slope of tickets per period, ``trend`` ``rising``/``falling`` when it
    differs from 0 at level *alpha* (t test), else ``stable``; ``recurring`` = listed and not falling; ``evidence``
    says it in a sentence in the report language (:func:`crm_analytics.i18n.t`).
    Returns ``level`` (``category``/``product``), ``key, name, tickets, periods_present, periods,
    first_period, last_period, trend_slope, trend_p, trend, recurring, evidence``: recurring first.
    """
    _need(tickets, ["ticket_id", "order_id", "opened_ts", "category"], "tickets")
    t = _labelled(tickets, ["category"]).assign(period=_period(_utc(tickets, "opened_ts", "tickets"), freq))
    items = [pd.DataFrame({"level": "category", "key": t["category"].astype(str), "period": t["period"]})]
    names = pd.Series(dtype=object)
    if order_lines is not None:
        _need(order_lines, ["order_id", "product_id"], "order_lines")
        lines = order_lines[["order_id", "product_id"]].drop_duplicates()
        p = t[["ticket_id", "order_id", "period"]].merge(lines, on="order_id")
        items.append(pd.DataFrame({"level": "product", "key": p["product_id"].astype(str), "period": p["period"]}))
        if products is not None:
            _need(products, ["product_id", "name"], "products")
            names = products.assign(product_id=products["product_id"].astype(str)).set_index("product_id")["name"]
    it = pd.concat(items, ignore_index=True)
    periods = pd.period_range(t["period"].min(), t["period"].max(), freq=t["period"].dt.freq)
    counts = it.groupby(["level", "key", "period"]).size().unstack("period", fill_value=0)
    counts = counts.reindex(columns=periods, fill_value=0)
    y = counts.to_numpy(dtype=float)
    n_p = y.shape[1]
    x = np.arange(n_p) - (n_p - 1) / 2  # vectorised least squares of every item at once
    sxx = float((x**2).sum()) or 1.0
    slope = (y - y.mean(1, keepdims=True)) @ x / sxx
    resid = y - y.mean(1, keepdims=True) - slope[:, None] * x
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt((resid**2).sum(1) / max(n_p - 2, 1) / sxx)
        p_val = np.where(se > 0, 2 * stats.t.sf(np.abs(slope / se), max(n_p - 2, 1)), np.where(slope == 0, 1.0, 0.0))
    p_val = p_val if n_p > 2 else np.ones_like(slope)
    present = (y > 0).sum(1)
    out = counts.index.to_frame(index=False).assign(
        tickets=y.sum(1).astype(int), periods_present=present, periods=n_p,
        first_period=periods[(y > 0).argmax(1)], last_period=periods[n_p - 1 - (y[:, ::-1] > 0).argmax(1)],
        trend_slope=slope, trend_p=p_val,
        trend=np.where(p_val < alpha, np.where(slope > 0, "rising", "falling"), "stable"))
    out.insert(2, "name", out["key"].map(names).where(out["level"] == "product", out["key"]))
    out = out[out["periods_present"] >= int(min_periods)].copy()
    out["recurring"] = out["trend"] != "falling"
    sentence = _EVIDENCE.get(periods.freqstr[0], _EVIDENCE_OTHER)
    cols = [out[c] for c in ("periods_present", "periods", "tickets", "trend_slope", "trend")]
    out["evidence"] = [i18n.t(sentence, k=int(k), n=int(n), total=int(s), slope=float(b), trend=tr)
                       for k, n, s, b, tr in zip(*cols)]
    return out.sort_values(["level", "recurring", "tickets", "key"], ascending=[True, False, False, True],
                           ignore_index=True)

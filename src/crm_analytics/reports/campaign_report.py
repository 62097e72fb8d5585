"""The tables of the campaign report, built from :mod:`crm_analytics.models.attribution` outcomes with
the statistics of :mod:`crm_analytics.models.campaigns`.

One row per campaign arm against its control: reach, opens and clicks, conversion and revenue
per customer in each group, lifts with 95 % intervals and Holm-adjusted p-values across every
comparison in the report, incremental conversions, revenue and margin, cost, ROI with its
bootstrap interval, break-even lift and the sample-ratio check. Campaigns without a control
group get descriptive before/after numbers only.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from crm_analytics.models import campaigns as stats
from crm_analytics import i18n
from crm_analytics.ingest.tables import purchases

__all__ = ["STANDARD_SPLITS", "OUTCOME_TITLES", "design_share", "effects_table", "uncontrolled_table",
           "channel_table", "segment_lifts", "percentage_points", "roi_percent", "outcome_table", "arm_label"]

#: treatment shares a test is usually designed with; the sample-ratio check compares with the nearest
STANDARD_SPLITS = (0.1, 0.2, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 0.8, 0.9)

#: the outcomes of the arm-by-arm comparison, with the title of each one's table
OUTCOME_TITLES = {"visited": "Visits: share of customers with a web or app session",
                  "converted": "Conversion: share of customers who bought",
                  "revenue": "Revenue per customer"}

#: the columns of each outcome's table, from :func:`crm_analytics.models.campaigns.arms_vs_control`'s names
_OUTCOME_COLUMNS = {
    "visited": {"mean_arm": "visit_rate_treatment", "mean_control": "visit_rate_control", "lift_abs": "visit_lift",
                "lift_abs_low": "visit_lift_low", "lift_abs_high": "visit_lift_high"},
    "converted": {"mean_arm": "conversion_treatment", "mean_control": "conversion_control", "lift_abs": "lift_abs",
                  "lift_abs_low": "lift_abs_low", "lift_abs_high": "lift_abs_high"},
    "revenue": {"mean_arm": "revenue_per_customer_treatment", "mean_control": "revenue_per_customer_control",
                "lift_abs": "revenue_lift", "lift_abs_low": "revenue_lift_low", "lift_abs_high": "revenue_lift_high"},
}


def design_share(observed: float) -> float:
    """The standard split nearest to an *observed* share (the design is not in the data contract)."""
    return min(STANDARD_SPLITS, key=lambda s: abs(s - observed))


def effects_table(outcomes: pd.DataFrame, campaigns: pd.DataFrame, *, margin_rate: float, alpha: float = 0.05,
                  n_boot: int = 1000, seed: int = 0, default_cost_per_contact: float = 0.0,
                  default_fixed_cost: float = 0.0) -> pd.DataFrame:
    """Every arm of every campaign with a control group, against that control."""
    rows = []
    camp = campaigns.set_index("campaign_id")
    for cid, df in outcomes.groupby("campaign_id", sort=True):
        if not (df["group"] == "control").any():
            continue
        arms = sorted(a for a in df["variant"].unique() if a != "control")
        n_arms = df["variant"].value_counts()
        share_obs = (df["group"] == "treatment").mean()
        srm = stats.srm_test_multi(n_arms.reindex(arms + ["control"]).to_numpy(),
                                   _design_shares(n_arms, arms))
        c = camp.loc[cid]
        cpc = c.get("cost_per_contact")
        fixed = c.get("fixed_cost")
        cpc = default_cost_per_contact if cpc is None or pd.isna(cpc) else float(cpc)
        fixed = default_fixed_cost if fixed is None or pd.isna(fixed) else float(fixed)
        for arm in arms:
            part = df[df["variant"].isin([arm, "control"])]
            part = part.assign(group=np.where(part["variant"] == arm, "treatment", "control"))
            n_arm = int((part["group"] == "treatment").sum())
            eff = stats.campaign_effect(part.assign(converted=part["converted"].astype(int)), conversion_col="converted",
                                        revenue_col="revenue", margin_rate=margin_rate, cost_per_contact=cpc,
                                        fixed_cost=fixed * n_arm / max(int((df["group"] == "treatment").sum()), 1),
                                        alpha=alpha, n_boot=n_boot, seed=seed, sent_col="_none",
                                        opened_col="_none", clicked_col="_none")
            conv, rev = eff["conversion"], eff["revenue_per_customer"]
            treated = part[part["group"] == "treatment"]
            rows.append({
                "campaign_id": cid, "campaign": c.get("name"), "channel": c.get("channel"), "arm": arm,
                "n_treatment": eff["n_treatment"], "n_control": eff["n_control"],
                "open_rate": float(treated["opened"].mean()) if treated["opened"].any() else np.nan,
                "click_rate": float(treated["clicked"].mean()) if treated["clicked"].any() else np.nan,
                "conversion_treatment": conv["rate_treatment"], "conversion_control": conv["rate_control"],
                "lift_abs": conv["lift_abs"], "lift_abs_low": conv["lift_abs_low"], "lift_abs_high": conv["lift_abs_high"],
                "lift_rel": conv["lift_rel"], "lift_rel_low": conv["lift_rel_low"], "lift_rel_high": conv["lift_rel_high"],
                "p_value": conv["p_value"],
                "revenue_per_customer_treatment": rev["mean_treatment"], "revenue_per_customer_control": rev["mean_control"],
                "revenue_lift": rev["lift_abs"], "revenue_lift_low": rev["lift_abs_low"],
                "revenue_lift_high": rev["lift_abs_high"], "revenue_p_value": rev["p_value"],
                "incremental_conversions": eff["incremental_conversions"],
                "incremental_revenue": eff["incremental_revenue"],
                "incremental_revenue_low": eff["incremental_revenue_low"],
                "incremental_revenue_high": eff["incremental_revenue_high"],
                "incremental_margin": eff["incremental_margin"], "cost": eff["cost"],
                "roi": eff["roi"], "roi_low": eff["roi_low"], "roi_high": eff["roi_high"],
                "break_even_lift_abs": eff["break_even_lift_abs"],
                "observed_treatment_share": share_obs, "design_treatment_share": design_share(share_obs),
                "srm_p_value": srm["p_value"], "srm": srm["srm"],
            })
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = stats.holm(out["p_value"].to_numpy())
    return out


def _design_shares(n_arms: pd.Series, arms: list[str]) -> np.ndarray:
    """Design shares of the arms and the control: the standard treatment share nearest to the observed
    one, split equally between the arms (the usual design of a multi-arm test)."""
    obs = n_arms.reindex(arms + ["control"]).to_numpy(dtype=float)
    treat = design_share(obs[:-1].sum() / obs.sum())
    return np.array([treat / len(arms)] * len(arms) + [1 - treat])


def uncontrolled_table(outcomes: pd.DataFrame, campaigns: pd.DataFrame, orders: pd.DataFrame, *,
                       attribution_days: float) -> pd.DataFrame:
    """Campaigns without a control group: conversion of the targeted customers in the window before
    versus after the start (descriptive only: seasonality and selection are not removed)."""
    rows = []
    bought = purchases(orders)
    camp = campaigns.set_index("campaign_id")
    for cid, df in outcomes.groupby("campaign_id", sort=True):
        if (df["group"] == "control").any():
            continue
        start = camp.loc[cid, "start_ts"]
        w = pd.Timedelta(days=attribution_days)
        b = bought[bought["customer_id"].isin(df["customer_id"])]
        before = b[(b["order_ts"] >= start - w) & (b["order_ts"] < start)]
        after = b[(b["order_ts"] >= start) & (b["order_ts"] < start + w)]
        n = len(df)
        rows.append({"campaign_id": cid, "campaign": camp.loc[cid, "name"], "channel": camp.loc[cid, "channel"],
                     "customers_targeted": n,
                     "conversion_before": before["customer_id"].nunique() / n,
                     "conversion_after": after["customer_id"].nunique() / n,
                     "revenue_per_customer_before": before["order_total"].sum() / n,
                     "revenue_per_customer_after": after["order_total"].sum() / n})
    return pd.DataFrame(rows)


def channel_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Cost per incremental conversion by channel (only arms whose lift is positive)."""
    if effects.empty:
        return pd.DataFrame()
    g = effects.groupby("channel").agg(arms=("arm", "size"), contacts=("n_treatment", "sum"),
                                       incremental_conversions=("incremental_conversions", "sum"),
                                       incremental_revenue=("incremental_revenue", "sum"), cost=("cost", "sum"))
    g["cost_per_incremental_conversion"] = np.where(g["incremental_conversions"] > 0,
                                                    g["cost"] / g["incremental_conversions"].where(
                                                        g["incremental_conversions"] > 0), np.nan)
    return g.reset_index()


def segment_lifts(outcomes: pd.DataFrame, segments: pd.DataFrame, *, campaign_id: str, segment_col: str = "segment",
                  min_group_size: int = 10, alpha: float = 0.05) -> pd.DataFrame:
    """Conversion lift of *campaign_id* within each segment (all arms pooled as treatment), Holm-adjusted."""
    df = outcomes[outcomes["campaign_id"] == campaign_id].merge(segments[["customer_id", segment_col]],
                                                                on="customer_id", how="left")
    df[segment_col] = df[segment_col].astype("object").fillna("no segment (new since segmentation)")
    rows = []
    for seg, part in df.groupby(segment_col, sort=True):
        t, c = part[part["group"] == "treatment"], part[part["group"] == "control"]
        if len(t) < min_group_size or len(c) < min_group_size:
            continue
        r = stats.proportion_lift(int(t["converted"].sum()), len(t), int(c["converted"].sum()), len(c), alpha)
        rows.append({"segment": seg, "n_treatment": len(t), "n_control": len(c),
                     "conversion_treatment": r["rate_treatment"], "conversion_control": r["rate_control"],
                     "lift_abs": r["lift_abs"], "lift_abs_low": r["lift_abs_low"], "lift_abs_high": r["lift_abs_high"],
                     "p_value": r["p_value"]})
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = stats.holm(out["p_value"].to_numpy())
    return out


def percentage_points(v, sign: bool = True) -> str:
    """A difference of two shares (0.0123) in percentage points, with its sign (``+1.23``) unless
    *sign* is false (a threshold such as a detectable lift), the report language's way; missing as an
    en dash."""
    if v is None or pd.isna(v):
        return "–"
    return i18n.format_value(float(v) * 100, "+.2f" if sign else ".2f")


def roi_percent(v) -> str:
    """A return on investment (-0.42 = 42 % of the cost lost) as a signed percentage."""
    if v is None or pd.isna(v):
        return "–"
    return i18n.format_value(float(v), "+.0%")


def arm_label(arm) -> str:
    """A test variant as a reader sees it: a code name written with underscores reads as words
    (``free_shipping`` -> ``free shipping``), in the report language when the catalogue knows it."""
    text = str(arm)
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", text):
        text = text.replace("_", " ")
    return i18n.value(text)


def outcome_table(arms_table: pd.DataFrame, outcome: str, names: dict | None = None) -> tuple[pd.DataFrame, dict]:
    """One outcome of the arm-by-arm comparison as a report shows it: rows campaign and arm (the
    campaign's name from *names*, ``campaign_id -> name``; the arm by :func:`arm_label`), columns with that outcome's names (shares
    in percent, differences of shares in percentage points, money per customer), and the formats to
    pass to :func:`crm_analytics.reports.report.styled`."""
    part = arms_table[arms_table["outcome"] == outcome]
    cols = _OUTCOME_COLUMNS[outcome]
    frame = part.assign(campaign=part["campaign_id"].map(lambda c: (names or {}).get(c, c)),
                        arm=part["arm"].map(arm_label))
    frame = frame.set_index(["campaign", "arm"])[[*cols, "p_holm"]].rename(columns=cols)
    if outcome == "revenue":
        formats = {cols["mean_arm"]: "{:,.2f}", cols["mean_control"]: "{:,.2f}",
                   **dict.fromkeys([cols["lift_abs"], cols["lift_abs_low"], cols["lift_abs_high"]], "{:+,.2f}")}
    else:
        formats = {cols["mean_arm"]: "{:.2%}", cols["mean_control"]: "{:.2%}",
                   **dict.fromkeys([cols["lift_abs"], cols["lift_abs_low"], cols["lift_abs_high"]], percentage_points)}
    return frame, formats

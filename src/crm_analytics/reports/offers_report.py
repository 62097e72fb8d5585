"""Tables and exports of the offers half of ``06_personalisation``: next best action, relevance and the
contact lists (plain labels for the report; stable column names for the e-mail tool)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics import i18n
from crm_analytics.models.next_action import NOTHING, Action
from crm_analytics.ingest.privacy import marketing_consent

__all__ = ["ACTION_LABELS", "CHANNEL_LABELS", "METHOD_LABELS", "EXPORT_COLUMNS", "actions_table", "choice_table", "customer_actions", "export_offers",
           "label", "reasons_table", "relevance_metrics", "relevance_tables", "remember_metrics", "remember_summary",
           "segment_offers_table", "totals_table", "truth_table"]

#: actions as a reader names them (the report translates these words; the exports keep the codes)
ACTION_LABELS = {"product_email": "product e-mail", "discount": "discount", "winback_offer": "win-back offer",
                 NOTHING: "no message"}
#: contact channels as a reader names them
CHANNEL_LABELS = {"email": "e-mail", "sms": "SMS", "push": "push notification"}
#: the uplift models of :func:`crm_analytics.models.next_action.learn_uplift`, with what they do
METHOD_LABELS = {"two-model": "two-model (one model for test, one for control)",
                 "transformed outcome": "transformed outcome (one model)"}
#: columns of next_best_action.csv, in order: a contract with the e-mail tool
EXPORT_COLUMNS = ["customer_id", "action", "channel", "send_day", "send_hour", "offer_category", "product_id",
                  "product_name", "expected_incremental_margin"]


def label(action: str) -> str:
    """The plain name of an action in the report language (``winback_offer`` → "win-back offer"); an
    action the params name otherwise is shown as its name with spaces."""
    return i18n.t(ACTION_LABELS[action]) if action in ACTION_LABELS else action.replace("_", " ")


def channel_label(channel: Any) -> Any:
    """The plain name of a contact channel in the report language (``push`` → "push notification");
    missing stays missing."""
    return i18n.t(CHANNEL_LABELS[channel]) if channel in CHANNEL_LABELS else channel


def actions_table(actions: list[Action], models: pd.DataFrame, skipped: dict[str, str]) -> pd.DataFrame:
    """One row per action (its plain name): the test it was learnt from, its cost, and how well the
    uplift ranking did on held-out customers of that test (Qini against random targeting). Shares
    (``action_discount``, ``measured_uplift``) are fractions; ``cost_per_contact`` is in the shop's currency."""
    rows = []
    for a in actions:
        m = models.loc[a.name] if a.name in models.index else None
        rows.append({
            "action": label(a.name), "test_campaign": a.campaign, "test_arm": a.arm,
            "action_channel": channel_label(a.channel), "action_discount": a.discount,
            "cost_per_contact": a.cost_per_contact,
            "audience": i18n.t("everyone consented" if a.audience == "everyone" else "customers at high churn risk"),
            "test_customers_treated": int(m["n_treatment"]) if m is not None else np.nan,
            "test_customers_control": int(m["n_control"]) if m is not None else np.nan,
            "measured_uplift": m["observed_lift"] if m is not None else np.nan,
            "uplift_model": (i18n.t(METHOD_LABELS[m["method"]]) if m is not None and m["method"] in METHOD_LABELS
                             else m["method"] if m is not None
                             else i18n.t("not learnt: too few customers in the test or its control group")),
            "qini": m["qini"] if m is not None else np.nan,
            "qini_random": m["qini_random"] if m is not None else np.nan,
            "calibration_slope": m["calibration_slope"] if m is not None else np.nan,
        })
    return pd.DataFrame(rows).set_index("action")


def choice_table(summary: dict[str, dict[str, float]], currency: str = "") -> pd.DataFrame:
    """Customers, their share and the expected incremental margin (in the shop's currency) per chosen
    action. (*currency* is not used: the column's label names the shop's currency.)"""
    rows = [{"action": label(a), "customers": v["customers"], "expected_margin": v["expected_incremental_margin"]}
            for a, v in summary.items()]
    out = pd.DataFrame(rows).set_index("action")
    out["customer_share"] = out["customers"] / max(int(out["customers"].sum()), 1)
    return out


def totals_table(totals: dict[str, Any], currency: str = "") -> pd.DataFrame:
    """The policy against the alternatives a marketer would otherwise pick (expected incremental
    margin in the shop's currency; *currency* is not used)."""
    rows = {
        i18n.t("next best action (one action, or none, per customer)"): totals["next_best_action"],
        i18n.t("send the best single action ({action}) to everyone it may go to",
               action=label(totals["best_single_action"])): totals["best_single_action_total"],
        i18n.t("send everyone every action"): totals["send_everyone_everything"],
    }
    return pd.DataFrame({"expected_margin": rows}).rename_axis("send_policy")


def truth_table(check: dict[str, Any], currency: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The truth check as two tables: totals (expected against true margin, in the shop's currency) and
    per action uplift (shares) and rank correlation. (*currency* is not used.)"""
    totals = pd.DataFrame({
        "expected_value": [check["expected_total"], check["send_everyone_everything_expected"], np.nan],
        "true_value": [check["true_total"], check["send_everyone_everything_true"], check["oracle_true_total"]],
    }, index=pd.Index([i18n.t(p) for p in ("next best action", "send everyone every action",
                                           "best possible (knowing the truth)")], name="send_policy"))
    per = pd.DataFrame(check["by_action"]).assign(action=lambda d: d["action"].map(label)).set_index("action")
    per = per.rename(columns={"predicted_uplift": "chosen_predicted_uplift", "true_uplift": "chosen_true_uplift",
                              "rank_correlation": "uplift_rank_correlation"})
    return totals, per


def customer_actions(chosen: pd.DataFrame, actions: list[Action], relevance: pd.DataFrame, offer: pd.DataFrame,
                     recs: pd.DataFrame | None, products: pd.DataFrame | None) -> pd.DataFrame:
    """The per-customer next-best-action table: :data:`EXPORT_COLUMNS` plus ``reason`` and ``relevance``.

    ``channel`` is the action's channel; ``send_day``/``send_hour`` the customer's best time
    (:func:`crm_analytics.models.relevance.contact_timing`); ``offer_category`` their top category
    (:func:`crm_analytics.models.offers.top_category`); ``product_id``/``product_name`` their first
    recommendation, filled for product e-mails only.
    """
    out = chosen.copy()
    channel = {a.name: a.channel for a in actions}
    out["channel"] = out["action"].map(channel).astype(object)
    rel = relevance.reindex(out.index)
    out["send_day"] = rel.get("best_day")
    out["send_hour"] = rel.get("best_hour")
    out["relevance"] = np.nan
    for ch in out["channel"].dropna().unique():
        if f"engagement_{ch}" in rel:
            on = (out["channel"] == ch).to_numpy()
            out.loc[on, "relevance"] = rel[f"engagement_{ch}"].to_numpy()[on]
    out["offer_category"] = offer.reindex(out.index).get("offer_category")
    out["product_id"] = None
    out["product_name"] = None
    if recs is not None and len(recs):
        first = recs.sort_values("rank").drop_duplicates("customer_id").set_index("customer_id")["product_id"]
        mail = out["action"] == "product_email"
        out.loc[mail, "product_id"] = first.reindex(out.index[mail]).to_numpy()
        if products is not None and "name" in products:
            names = products.drop_duplicates("product_id").set_index("product_id")["name"]
            out.loc[mail, "product_name"] = names.reindex(out.loc[mail, "product_id"]).to_numpy()
    none = out["action"] == NOTHING
    out.loc[none, ["channel", "send_day", "offer_category"]] = None
    out["send_hour"] = pd.array(np.where(none, pd.NA, out["send_hour"]), dtype="Int64")
    out["expected_incremental_margin"] = out["expected_incremental_margin"].round(2)
    out.index.name = "customer_id"
    return out.reset_index()[EXPORT_COLUMNS + ["reason", "relevance"]]


def export_offers(nba: pd.DataFrame | None, birthdays: pd.DataFrame, winback: pd.DataFrame,
                  customers: pd.DataFrame | None, processed_dir: Path, exports_dir: Path) -> dict[str, int]:
    """Write ``next_best_action.parquet`` (every consented customer, with the reason) and the CSV lists
    for the e-mail tool: ``next_best_action.csv`` (customers with an action), ``birthday_month.csv``
    and ``winback.csv`` — consented customers only, pseudonymous ids, stable columns.

    Returns the number of rows written to each, by file name (a list not written counts 0; a stale
    list from an earlier run is removed so it is never sent by mistake).
    """
    consent = marketing_consent(customers)
    ok = set(consent.index[consent])
    processed_dir.mkdir(parents=True, exist_ok=True)
    exports_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    files = {"next_best_action.csv": None, "birthday_month.csv": birthdays, "winback.csv": winback}
    if nba is not None:
        nba = nba[nba["customer_id"].isin(ok)]
        nba.to_parquet(processed_dir / "next_best_action.parquet", index=False)
        written["next_best_action.parquet"] = len(nba)
        files["next_best_action.csv"] = nba.loc[nba["action"] != NOTHING, EXPORT_COLUMNS]
    else:
        (processed_dir / "next_best_action.parquet").unlink(missing_ok=True)
        written["next_best_action.parquet"] = 0
    for name, frame in files.items():
        path = exports_dir / name
        if frame is None:
            path.unlink(missing_ok=True)
            written[name] = 0
            continue
        frame = frame.reset_index() if "customer_id" not in frame else frame
        frame = frame[frame["customer_id"].isin(ok)]
        frame.to_csv(path, index=False)
        written[name] = len(frame)
    return written


def reasons_table(chosen: pd.DataFrame) -> pd.DataFrame:
    """How many customers got each action, and why ("highest expected margin", or why nothing)."""
    g = chosen.assign(action=chosen["action"].map(label), reason=chosen["reason"].map(i18n.t)).groupby(
        ["action", "reason"]).size()
    g.index.names = ["action", "decision_reason"]
    return g.rename("customers").to_frame().sort_values("customers", ascending=False)


def remember_summary(remembered: pd.DataFrame, days: int, currency: str = "") -> pd.DataFrame:
    """Customers with something to remember: viewed-but-not-bought products and abandoned carts
    (``remembered_items``: products viewed or items left; ``cart_value`` in the shop's currency;
    *currency* is not used)."""
    viewed = remembered["viewed_not_bought"].fillna(0)
    items = remembered["abandoned_cart_items"].fillna(0)
    rows = {
        i18n.t("viewed a product in the last {days} days and did not buy it", days=days):
            {"customers": int((viewed > 0).sum()), "remembered_items": float(viewed.sum()), "cart_value": np.nan},
        i18n.t("left products in a cart in the last {days} days and did not buy them", days=days):
            {"customers": int((items > 0).sum()), "remembered_items": float(items.sum()),
             "cart_value": float(remembered["abandoned_cart_value"].fillna(0).sum())},
    }
    return pd.DataFrame(rows).T.rename_axis("remembered")


def remember_metrics(remembered: pd.DataFrame) -> dict[str, float]:
    """The remember part of the metrics: customers with viewed-not-bought products and with abandoned carts."""
    return {"viewed_not_bought_customers": int((remembered["viewed_not_bought"].fillna(0) > 0).sum()),
            "abandoned_cart_customers": int((remembered["abandoned_cart_items"].fillna(0) > 0).sum()),
            "abandoned_cart_value": float(remembered["abandoned_cart_value"].fillna(0).sum())}


_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def relevance_tables(rel: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Preferred channel (customers, share, mean engagement on it) and best day to contact (customers,
    share; with how many have their own record and the most common hour). Shares are fractions;
    channels and days are named for the reader (``push`` → "push notification")."""
    ch = rel.groupby("preferred_channel").agg(customers=("relevance", "size"), mean_engagement=("relevance", "mean"))
    ch["customer_share"] = ch["customers"] / max(len(rel), 1)
    ch = ch[["customers", "customer_share", "mean_engagement"]]
    ch.index = pd.Index([channel_label(c) for c in ch.index], name="preferred_channel")
    days = rel.groupby("best_day").agg(customers=("best_hour", "size"),
                                       own=("timing_basis", lambda s: int((s == "own activity").sum())),
                                       hour=("best_hour", lambda s: int(s.mode().iloc[0]) if len(s) else -1))
    days = days.reindex([d for d in _DAYS if d in days.index])
    days["customer_share"] = days["customers"] / max(len(rel), 1)
    days["most_common_hour"] = days["hour"].map(lambda h: f"{h:02d}:00–{h:02d}:59" if h >= 0 else "")
    days = days.rename(columns={"own": "timed_from_own_activity"})
    days.index = pd.Index([i18n.t(d) for d in days.index], name="best_day")
    return ch, days[["customers", "customer_share", "timed_from_own_activity", "most_common_hour"]]


def relevance_metrics(rel: pd.DataFrame) -> dict[str, Any]:
    """Preferred channel → customers, customers capped, and how many have timing from their own record."""
    return {"preferred_channel": {str(k): int(v) for k, v in rel["preferred_channel"].value_counts().items()},
            "capped_customers": int(rel["capped"].sum()),
            "timing_from_own_activity": int((rel["timing_basis"] == "own activity").sum())}


def segment_offers_table(seg_offers: pd.DataFrame) -> pd.DataFrame:
    """The category to promote to each segment (:func:`crm_analytics.models.offers.segment_offers` rows with
    ``promote``; segment names in the report language): its share of the segment's purchases against
    the shop's (fractions), and the lift."""
    top = seg_offers[seg_offers["promote"]].sort_values("customers", ascending=False)
    out = pd.DataFrame({"offer_segment": [i18n.value(v) for v in top["segment"]],
                        "promote_category": top["category"].to_numpy(),
                        "segment_purchase_share": top["mean_share"].to_numpy(),
                        "shop_purchase_share": top["shop_mean_share"].to_numpy(), "category_lift": top["lift"].to_numpy(),
                        "customers": top["customers"].to_numpy()})
    return out.set_index("offer_segment")

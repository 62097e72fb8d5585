"""Tables and checks of ``07_feedback``: plain labels for the report, the truth checks of the demo world and
the headline numbers (``reports/<dataset>/metrics/07_feedback.json``)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics import i18n

__all__ = ["LANGUAGE_NAMES", "anomaly_table", "churn_table", "complaint_truth", "falling_table", "faults_table",
           "keyword_table", "language_table", "mismatch_table", "mismatch_truth", "rates_table", "rating_table",
           "resolution_table", "satisfaction_table", "sentence_scores", "sentiment_table", "sentiment_truth",
           "tidy_code", "topic_matrix", "topic_table", "topic_truth", "topic_truth_table", "volume_table"]

#: detected language codes as the reader sees them (translated in the report language as words)
LANGUAGE_NAMES = {"tr": "Turkish", "en": "English", "other": "other languages", "unknown": "no text, or too short to tell"}

# Column names of these tables are names with labels in the catalogues (``locale/<lang>/07_feedback.po``,
# context "column"): the reader sees "Mean rating (stars)" / "Ortalama puan (yıldız)". Words from code in
# cells and row labels (topics, sentiments, ticket categories, trends) are English words the catalogue
# translates; sentences with numbers are written through ``i18n.t``.


def tidy_code(value: Any) -> Any:
    """A code word from data such as a ticket category (``delivery_delay``) as words (``delivery delay``);
    anything else unchanged."""
    if isinstance(value, str) and re.fullmatch(r"[a-z]+(_[a-z]+)+", value):
        return value.replace("_", " ")
    return value


def rating_table(summary: pd.DataFrame, label: str | None = None) -> pd.DataFrame:
    """:func:`crm_analytics.models.feedback_topics.rating_summary` for the reader: reviews, mean stars, the share of
    each star and the star NPS (never "-0"); the overall row reads "all reviews", the index is named *label*."""
    out = summary.copy()
    out["star_nps"] = out["star_nps"] + 0.0  # no "-0"
    out.index = out.index.map(lambda k: "all reviews" if k == "all" else k)
    out.index.name = label
    return out


def falling_table(falling: pd.DataFrame, by: str, label: str, names: pd.Series | None = None) -> pd.DataFrame:
    """The falling groups with their evidence (mean stars before and recently, the change and its interval),
    indexed by *label* (product names from *names* where given)."""
    f = falling[falling["falling"].to_numpy(dtype=bool)].copy()
    if names is not None:
        f[by] = f[by].map(lambda k: names.get(k, k))
    out = pd.DataFrame({label: f[by].astype(str).to_numpy(), "reviews_before": f["n_before"].to_numpy(),
                        "mean_stars_before": f["mean_before"].to_numpy(), "reviews_recent": f["n_recent"].to_numpy(),
                        "mean_stars_recent": f["mean_recent"].to_numpy(), "stars_change": f["difference"].to_numpy(),
                        "stars_change_low": f["difference_low"].to_numpy(),
                        "stars_change_high": f["difference_high"].to_numpy(),
                        "p_adjusted": f["p_adjusted"].to_numpy()})
    return out.set_index(label)


def language_table(languages: pd.Series) -> pd.DataFrame:
    """Reviews per detected language, largest first."""
    n = languages.map(lambda x: LANGUAGE_NAMES.get(x, x)).value_counts()
    return pd.DataFrame({"reviews": n, "share_of_reviews": n / max(int(n.sum()), 1)}).rename_axis("language")


def sentiment_table(scores: dict[str, Any], sentences: dict[str, Any] | None) -> pd.DataFrame:
    """Held-out accuracy and macro-F1 beside the majority-class baseline (and the labelled sentences)."""
    rows = {i18n.t("held-out reviews ({n:,}, each scored by a model that did not learn from it)",
                   n=scores["n_labelled"]): {
        "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
        "baseline_accuracy": scores["baseline_accuracy"]}}
    if sentences is not None:
        rows[i18n.t("hand-labelled sentences ({n:,}, never used to learn)", n=sentences["n"])] = {
            "accuracy": sentences["accuracy"], "macro_f1": sentences["macro_f1"],
            "baseline_accuracy": sentences["baseline_accuracy"]}
    return pd.DataFrame(rows).T.rename_axis("evaluated_on")


def sentence_scores(models: list[Any], sentences: pd.DataFrame) -> dict[str, Any]:
    """Accuracy of the fold models' averaged probabilities on hand-labelled sentences (``text, label``)."""
    from crm_analytics.models.feedback_text import label_scores

    proba = sum(m.class_proba(sentences["text"]) for m in models) / len(models)
    return {"n": len(sentences), **label_scores(sentences["label"], proba.idxmax(axis=1))}


def mismatch_table(mm: pd.DataFrame, n: int = 12, max_chars: int = 200) -> pd.DataFrame:
    """The most confident text-contradicts-stars reviews: stars, what the text says (``negative`` for 4–5
    stars, ``positive`` for 1–2), the chance the text is negative, and the text (shortened)."""
    top = mm.head(n)
    text = top["text"].astype(str).map(lambda t: t if len(t) <= max_chars else t[:max_chars - 1] + "…")
    stars = pd.to_numeric(top["rating"], errors="coerce").to_numpy(dtype=float)
    return pd.DataFrame({"stars": top["rating"].to_numpy(),
                         "text_reads_as": np.where(stars >= 4, "negative", "positive"),
                         "p_negative_text": top["p_negative"].to_numpy(), "review_text": text.to_numpy()},
                        index=pd.Index(top["review_id"].astype(str).to_numpy(), name="review_id"))


#: how a quarter is written in each language (Babel date patterns): "2025 Q3", "2025 3. çeyrek"
_QUARTER = {"en": "y QQQ", "tr": "y QQQQ"}


def topic_matrix(trend: pd.DataFrame) -> pd.DataFrame:
    """Share of negative reviews, topic × period, with periods labelled as people write them (``2025 Q3``;
    in Turkish ``2025 3. çeyrek``)."""
    from babel.dates import format_date

    m = trend.pivot_table(index="topic", columns="period", values="share_negative")
    pattern = _QUARTER.get(i18n.language(), "y QQQ")
    m.columns = [format_date(p.to_timestamp().date() if isinstance(p, pd.Period) else p.date(), pattern,
                             locale=i18n.LANGUAGES[i18n.language()])
                 if isinstance(p, (pd.Period, pd.Timestamp)) else str(p) for p in m.columns]
    return m


def topic_table(flags: pd.DataFrame, sentiment: pd.Series) -> pd.DataFrame:
    """Per topic: reviews mentioning it, their share, and the share of those that are negative."""
    neg = sentiment.reindex(flags.index).eq("negative")
    rows = {t: {"reviews": int(flags[t].sum()), "share_of_reviews": float(flags[t].mean()),
                "negative_share": float(neg[flags[t]].mean()) if flags[t].any() else np.nan} for t in flags.columns}
    return pd.DataFrame(rows).T.sort_values("reviews", ascending=False).rename_axis("topic")


def keyword_table(kw: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The words most typical of negative and of positive reviews, one row per language and sentiment."""
    kw = kw[kw["rank"] <= n]
    rows = kw.groupby(["language", "sentiment"])["word"].agg(", ".join)
    out = rows.rename("typical_words").to_frame()
    out.index = out.index.set_levels([[LANGUAGE_NAMES.get(x, x) for x in out.index.levels[0]],
                                      out.index.levels[1]])
    out.index.names = ["language", "sentiment"]
    return out


def volume_table(volume: pd.DataFrame, by: str, label: str) -> pd.DataFrame:
    """Tickets by *by*: count, customers, share; code words shown as words (``delivery delay``)."""
    v = volume.groupby(by)[["tickets", "customers"]].sum().sort_values("tickets", ascending=False)
    v["share_of_tickets"] = v["tickets"] / max(int(v["tickets"].sum()), 1)
    v.index = v.index.map(tidy_code)
    return v.rename_axis(label)


def resolution_table(times: pd.DataFrame, by: str | None, label: str) -> pd.DataFrame:
    """Time to resolution against the service level, per group (*by* None: one row "all tickets")."""
    cols = ["tickets", "median_hours", "p90_hours", "breach_share", "breach_low", "breach_high", "open_share"]
    t = times.set_index(by) if by else times.assign(_all="all tickets").set_index("_all")
    out = t[cols].copy()
    out.index = out.index.map(tidy_code)
    out.index.name = label
    return out


def satisfaction_table(bands: pd.DataFrame) -> pd.DataFrame:
    """:attr:`crm_analytics.models.complaints.Satisfaction.by_resolution_band` for the reader: the bands in words
    ("up to 4 hours", "4–24 hours", "over 168 hours")."""
    def band(text: str) -> str:
        num = r"(\d+(?:\.\d+)?)"
        if m := re.fullmatch(rf"<={num} h", text):
            return i18n.t("up to {hours} hours", hours=_number(m.group(1)))
        if m := re.fullmatch(rf"{num}-{num} h", text):
            return i18n.t("{low}–{high} hours", low=_number(m.group(1)), high=_number(m.group(2)))
        if m := re.fullmatch(rf">{num} h", text):
            return i18n.t("over {hours} hours", hours=_number(m.group(1)))
        return text

    out = bands.assign(band=bands["band"].astype(str).map(band)).set_index("band")
    out = out.rename(columns={"rated": "rated_tickets", "mean": "mean_satisfaction"})
    return out[["rated_tickets", "median_hours", "mean_satisfaction", "dissatisfied_share"]].rename_axis(
        "resolved_within")


def _number(text: str) -> int | float:
    v = float(text)
    return int(v) if v == int(v) else v


def churn_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Churn after a complaint against comparable customers, and slow against fast resolution: customers, the share
    churned and, for the differences, their interval."""
    lift = metrics["complaint_churn_lift"]
    speed = metrics["resolution_speed"]
    hours = speed["split_hours"]

    def row(customers: Any, share: float, low: float = np.nan, high: float = np.nan) -> dict[str, Any]:
        return {"customers": customers, "churned_share": share, "churn_difference_low": low,
                "churn_difference_high": high}

    rows = {
        "customers who complained": row(metrics["n_complainers"], metrics["churn_rate_complainers"]),
        "comparable customers without a complaint": row(metrics["n_comparable"], metrics["churn_rate_comparable"]),
        "difference (complained − comparable)": row(np.nan, lift["value"], lift["ci_low"], lift["ci_high"]),
        i18n.t("complaint resolved within {hours:.0f} hours", hours=hours): row(speed["n_fast"], speed["churn_fast"]),
        i18n.t("complaint resolved after {hours:.0f} hours or still open", hours=hours):
            row(speed["n_slow"], speed["churn_slow"]),
        "difference (slow − fast)": row(np.nan, speed["diff"], speed["diff_low"], speed["diff_high"]),
    }
    return pd.DataFrame(rows).T.rename_axis("customer_group")


def faults_table(faults: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The recurring faults named (ticket categories as words, products by name), with the evidence sentence."""
    f = faults[faults["recurring"].to_numpy(dtype=bool)].head(n)
    level = f["level"].map({"category": "complaint category", "product": "product"}).fillna(f["level"])
    return pd.DataFrame({"fault": f["name"].fillna(f["key"]).astype(str).map(tidy_code).to_numpy(),
                         "fault_kind": level.to_numpy(), "tickets": f["tickets"].to_numpy(),
                         "pattern": f["evidence"].to_numpy()}).set_index("fault")


def rates_table(rates: pd.DataFrame, by: str, label: str, n: int = 10) -> pd.DataFrame:
    """Groups whose cancellation or return rate is above the shop's, with the return rate's interval."""
    r = rates[rates["flagged"].to_numpy(dtype=bool)].sort_values("return_rate", ascending=False).head(n)
    key = r["name"].fillna(r[by]) if "name" in r else r[by]
    return pd.DataFrame({label: key.astype(str).to_numpy(), "orders": r["orders"].to_numpy(),
                         "cancel_rate": r["cancel_rate"].to_numpy(), "return_rate": r["return_rate"].to_numpy(),
                         "return_low": r["return_low"].to_numpy(), "return_high": r["return_high"].to_numpy(),
                         "shop_return_rate": r["shop_return_rate"].to_numpy()}).set_index(label)


def anomaly_table(flags: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """Flagged customers or orders with their anomaly score and the reasons in words."""
    f = flags[flags["flagged"].to_numpy(dtype=bool)].head(n)
    key = "order_id" if "order_id" in f else "customer_id"
    return pd.DataFrame({key: f[key].astype(str).to_numpy(), "anomaly_score": f["anomaly_score"].to_numpy(),
                         "reasons": f["reasons"].astype(str).to_numpy()}).set_index(key)


def topic_truth_table(check: pd.DataFrame) -> pd.DataFrame:
    """:func:`topic_truth` for the reader."""
    return check.rename(columns={"found": "found_share", "tagged wrongly": "wrongly_tagged_share"}).rename_axis(
        "planted_topic")


def sentiment_truth(proba: pd.DataFrame, reviews: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Measured sentiment against the demo world's planted sentiment (positive/negative reviews whose
    text is not planted to contradict the stars): the share that agrees, and the majority share."""
    t = truth.set_index("review_id")
    t = t.reindex(reviews["review_id"]).set_index(reviews.index)
    keep = t["true_sentiment"].isin(["positive", "negative"]) & ~t["rating_text_mismatch"].astype(bool)
    pred = proba.loc[keep[keep].index].idxmax(axis=1)
    agree = float((pred == t.loc[keep, "true_sentiment"]).mean())
    return {"reviews": int(keep.sum()), "agreement": agree,
            "majority_share": float(t.loc[keep, "true_sentiment"].value_counts(normalize=True).max())}


def mismatch_truth(mm: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Flagged mismatches against the planted ones: precision and recall."""
    planted = set(truth.loc[truth["rating_text_mismatch"].astype(bool), "review_id"])
    flagged = set(mm["review_id"])
    hit = len(planted & flagged)
    return {"planted": len(planted), "flagged": len(flagged),
            "precision": hit / len(flagged) if flagged else float("nan"),
            "recall": hit / len(planted) if planted else float("nan")}


def complaint_truth(rows: pd.DataFrame, truth_customers: pd.DataFrame, horizon_days: int) -> dict[str, float]:
    """On the matched rows of :func:`crm_analytics.models.complaints.complaint_churn`, the share that truly dropped
    out (the world's dropout time) by the end of each row's window, complainers against comparable customers
    (weighted as the comparison is)."""
    tc = truth_customers.set_index("customer_id")
    r = rows[rows["matched"]] if "matched" in rows else rows
    dropout = pd.to_datetime(tc["dropout_ts"].reindex(r["customer_id"]).to_numpy(), utc=True, errors="coerce")
    end = pd.to_datetime(r["reference_ts"], utc=True) + pd.Timedelta(days=horizon_days)
    gone = pd.Series(np.asarray(dropout <= end.to_numpy()), index=r.index)
    comp = r["group"] == "complainer"
    w = r["weight"].where(~comp, 1.0)
    p_c = float(gone[comp].mean())
    p_o = float((gone[~comp] * w[~comp]).sum() / w[~comp].sum())
    return {"true_dropout_complainers": p_c, "true_dropout_comparable": p_o, "true_difference": p_c - p_o}


def topic_truth(flags: pd.DataFrame, reviews: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Topic tags against the demo world's planted topic of each review: per planted topic, the share of its
    reviews tagged with it (found) and the share of the other reviews tagged with it (tagged wrongly)."""
    planted = truth.set_index("review_id")["topic"].reindex(reviews["review_id"]).to_numpy()
    rows = {}
    for topic in sorted(set(planted[pd.notna(planted)]) & set(flags.columns)):
        mine = planted == topic
        rows[topic] = {"reviews": int(mine.sum()), "found": float(flags.loc[mine, topic].mean()),
                       "tagged wrongly": float(flags.loc[~mine, topic].mean())}
    return pd.DataFrame(rows).T.rename_axis("planted topic")

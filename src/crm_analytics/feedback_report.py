"""Tables and checks of ``07_feedback``: plain labels for the report, the truth checks of the demo world and
the headline numbers (``reports/<dataset>/metrics/07_feedback.json``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LANGUAGE_NAMES", "anomaly_table", "churn_table", "complaint_truth", "falling_table", "faults_table",
           "keyword_table", "language_table", "mismatch_table", "mismatch_truth", "rates_table", "rating_table",
           "resolution_table", "sentence_scores", "sentiment_table", "sentiment_truth", "topic_matrix", "topic_table", "topic_truth",
           "volume_table"]

LANGUAGE_NAMES = {"tr": "Turkish", "en": "English", "other": "other languages", "unknown": "no text, or too short to tell"}


def rating_table(summary: pd.DataFrame, label: str) -> pd.DataFrame:
    """:func:`crm_analytics.feedback_topics.rating_summary` with plain column names."""
    out = summary.rename(columns={"reviews": "reviews", "mean_rating": "mean stars", "star_nps": "star NPS"})
    out = out.rename(columns={f"share_{s}": f"{s} ★" for s in range(1, 6)})
    out["star NPS"] = out["star NPS"] + 0.0  # no "-0"
    out.index = out.index.map(lambda k: "all reviews" if k == "all" else k)
    out.index.name = label
    return out


def falling_table(falling: pd.DataFrame, by: str, label: str, names: pd.Series | None = None) -> pd.DataFrame:
    """The falling groups with their evidence (mean stars before and recently, the difference and its interval)."""
    f = falling[falling["falling"].to_numpy(dtype=bool)].copy()
    if names is not None:
        f[by] = f[by].map(lambda k: names.get(k, k))
    out = pd.DataFrame({label: f[by].astype(str).to_numpy(), "reviews before": f["n_before"].to_numpy(),
                        "mean stars before": f["mean_before"].to_numpy(), "recent reviews": f["n_recent"].to_numpy(),
                        "recent mean stars": f["mean_recent"].to_numpy(), "change": f["difference"].to_numpy(),
                        "change: low": f["difference_low"].to_numpy(), "change: high": f["difference_high"].to_numpy(),
                        "p-value (adjusted)": f["p_adjusted"].to_numpy()})
    return out.set_index(label)


def language_table(languages: pd.Series) -> pd.DataFrame:
    """Reviews per detected language, largest first."""
    n = languages.map(lambda x: LANGUAGE_NAMES.get(x, x)).value_counts()
    return pd.DataFrame({"reviews": n, "share": n / max(int(n.sum()), 1)}).rename_axis("language")


def sentiment_table(scores: dict[str, Any], sentences: dict[str, Any] | None) -> pd.DataFrame:
    """Held-out accuracy and macro-F1 beside the majority-class baseline (and the labelled sentences)."""
    rows = {f"held-out reviews ({scores['n_labelled']:,}, each scored by a model that did not learn from it)": {
        "accuracy": scores["accuracy"], "macro-F1": scores["macro_f1"],
        "majority-class baseline": scores["baseline_accuracy"]}}
    if sentences is not None:
        rows[f"hand-labelled sentences ({sentences['n']:,}, never used to learn)"] = {
            "accuracy": sentences["accuracy"], "macro-F1": sentences["macro_f1"],
            "majority-class baseline": sentences["baseline_accuracy"]}
    return pd.DataFrame(rows).T.rename_axis("evaluated on")


def sentence_scores(models: list[Any], sentences: pd.DataFrame) -> dict[str, Any]:
    """Accuracy of the fold models' averaged probabilities on hand-labelled sentences (``text, label``)."""
    from crm_analytics.feedback_text import label_scores

    proba = sum(m.class_proba(sentences["text"]) for m in models) / len(models)
    return {"n": len(sentences), **label_scores(sentences["label"], proba.idxmax(axis=1))}


def mismatch_table(mm: pd.DataFrame, n: int = 12, max_chars: int = 200) -> pd.DataFrame:
    """The most confident text-contradicts-stars reviews: stars, what the text says, and the text (shortened)."""
    top = mm.head(n)
    text = top["text"].astype(str).map(lambda t: t if len(t) <= max_chars else t[:max_chars - 1] + "…")
    return pd.DataFrame({"stars": top["rating"].to_numpy(), "contradiction": top["direction"].to_numpy(),
                         "P(negative text)": top["p_negative"].to_numpy(), "review": text.to_numpy()},
                        index=pd.Index(top["review_id"].astype(str).to_numpy(), name="review id"))


def topic_matrix(trend: pd.DataFrame) -> pd.DataFrame:
    """Share of negative reviews, topic × period, with periods labelled as people write them (``2025 Q3``)."""
    m = trend.pivot_table(index="topic", columns="period", values="share_negative")
    m.columns = [f"{p.year} Q{p.quarter}" if isinstance(p, (pd.Period, pd.Timestamp)) else str(p) for p in m.columns]
    return m


def topic_table(flags: pd.DataFrame, sentiment: pd.Series) -> pd.DataFrame:
    """Per topic: reviews mentioning it, their share, and the share of those that are negative."""
    neg = sentiment.reindex(flags.index).eq("negative")
    rows = {t: {"reviews": int(flags[t].sum()), "share of reviews": float(flags[t].mean()),
                "negative": float(neg[flags[t]].mean()) if flags[t].any() else np.nan} for t in flags.columns}
    return pd.DataFrame(rows).T.sort_values("reviews", ascending=False).rename_axis("topic")


def keyword_table(kw: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The words most typical of negative and of positive reviews, one row per language and sentiment."""
    kw = kw[kw["rank"] <= n]
    rows = kw.groupby(["language", "sentiment"])["word"].agg(", ".join)
    out = rows.rename("typical words").to_frame()
    out.index = out.index.set_levels([[LANGUAGE_NAMES.get(x, x) for x in out.index.levels[0]],
                                      out.index.levels[1]])
    out.index.names = ["language", "reviews"]
    return out


def volume_table(volume: pd.DataFrame, by: str, label: str) -> pd.DataFrame:
    """Tickets by *by*: count, customers, share."""
    v = volume.groupby(by)[["tickets", "customers"]].sum().sort_values("tickets", ascending=False)
    v["share"] = v["tickets"] / max(int(v["tickets"].sum()), 1)
    return v.rename_axis(label)


def resolution_table(times: pd.DataFrame, by: str | None, label: str) -> pd.DataFrame:
    """Time to resolution and the SLA in plain words."""
    cols = {"tickets": "tickets", "median_hours": "median hours to resolve", "p90_hours": "90 % resolved within (hours)",
            "breach_share": "past the SLA", "breach_low": "past the SLA: low", "breach_high": "past the SLA: high",
            "open_share": "still open"}
    t = times.set_index(by) if by else times.assign(_all="all tickets").set_index("_all")
    out = t[list(cols)].rename(columns=cols)
    out.index.name = label
    return out


def churn_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Churn after a complaint against comparable customers, and slow against fast resolution."""
    lift = metrics["complaint_churn_lift"]
    speed = metrics["resolution_speed"]
    rows = {
        "customers who complained": {"customers": metrics["n_complainers"], "churned": metrics["churn_rate_complainers"]},
        "comparable customers without a complaint": {"customers": metrics["n_comparable"],
                                                     "churned": metrics["churn_rate_comparable"]},
        "difference (complained − comparable)": {"customers": np.nan, "churned": lift["value"],
                                                 "low": lift["ci_low"], "high": lift["ci_high"]},
        f"complaint resolved within {speed['split_hours']:.0f} h": {"customers": speed["n_fast"],
                                                                   "churned": speed["churn_fast"]},
        f"complaint resolved after {speed['split_hours']:.0f} h or still open": {"customers": speed["n_slow"],
                                                                               "churned": speed["churn_slow"]},
        "difference (slow − fast)": {"customers": np.nan, "churned": speed["diff"], "low": speed["diff_low"],
                                     "high": speed["diff_high"]},
    }
    return pd.DataFrame(rows).T[["customers", "churned", "low", "high"]].rename_axis("group")


def faults_table(faults: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The recurring faults named, with the evidence sentence."""
    f = faults[faults["recurring"].to_numpy(dtype=bool)].head(n)
    return pd.DataFrame({"what": f["name"].fillna(f["key"]).astype(str).to_numpy(),
                         "level": f["level"].to_numpy(), "tickets": f["tickets"].to_numpy(),
                         "evidence": f["evidence"].to_numpy()}).set_index("what")


def rates_table(rates: pd.DataFrame, by: str, label: str, n: int = 10) -> pd.DataFrame:
    """Groups whose cancellation or return rate is above the shop's, with intervals."""
    r = rates[rates["flagged"].to_numpy(dtype=bool)].sort_values("return_rate", ascending=False).head(n)
    key = r["name"].fillna(r[by]) if "name" in r else r[by]
    return pd.DataFrame({label: key.astype(str).to_numpy(), "orders": r["orders"].to_numpy(),
                         "cancelled": r["cancel_rate"].to_numpy(), "returned": r["return_rate"].to_numpy(),
                         "returned: low": r["return_low"].to_numpy(), "returned: high": r["return_high"].to_numpy(),
                         "shop returns": r["shop_return_rate"].to_numpy()}).set_index(label)


def anomaly_table(flags: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """Flagged customers or orders with their anomaly score and the reasons in words."""
    f = flags[flags["flagged"].to_numpy(dtype=bool)].head(n)
    key = "order_id" if "order_id" in f else "customer_id"
    return pd.DataFrame({key.replace("_", " "): f[key].astype(str).to_numpy(),
                         "anomaly score": f["anomaly_score"].to_numpy(),
                         "why": f["reasons"].astype(str).to_numpy()}).set_index(key.replace("_", " "))


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
    """On the matched rows of :func:`crm_analytics.complaints.complaint_churn`, the share that truly dropped
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

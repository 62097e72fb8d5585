"""What reviews talk about and how ratings move: topic lexicons in Turkish and English, topic trends
with their negative share, the words typical of negative and of positive reviews, rating summaries
with a star-based net-promoter-style score, and groups whose ratings are falling.

Text handling (normalisation, language, sentiment) is in :mod:`crm_analytics.models.feedback_text`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.models.feedback_text import _as_series, _languages, normalise
from crm_analytics.models.site_search import normalise_query

__all__ = ["TOPICS", "falling_ratings", "keywords", "rating_summary", "topic_trend", "topics"]

#: topic -> language -> word roots. A root matches at the start of a word with any ending, so Turkish suffixes
#: still match ("kargo": "kargoya", "kargodan"); a root ending in "$" matches the whole word only ("dar$").
#: Roots and text are compared folded (case, Turkish letters and accents: "kalıbı" = "kalibi"); consonant
#: mutation gets both stems ("kalıp", "kalıb").
TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "delivery": {
        "tr": ("kargo", "teslim", "gecik", "geç geldi", "geç ulaş", "hızlı geldi", "erken geldi", "ulaştı",
               "ulaşmadı", "elime", "gönderi", "sevkiyat", "kurye", "ertesi gün"),
        "en": ("deliver", "shipping", "shipped", "ship$", "arriv", "courier", "dispatch", "postage", "late$",
               "took over a week", "next day"),
    },
    "price": {
        "tr": ("fiyat", "pahalı", "ucuz", "indirim", "para", "kampanya", "değmez", "değer mi", "uygun$"),
        "en": ("price", "pricey", "expensive", "cheap$", "cheaper", "value", "worth", "money", "cost", "overpriced",
               "discount", "sale$", "bargain"),
    },
    "quality": {
        "tr": ("kalite", "malzeme", "kumaş", "dayanık", "sağlam", "bozul", "kırık", "kırıl", "yırt", "dikiş",
               "defo", "çürük", "özensiz", "işçilik"),
        "en": ("quality", "material", "fabric", "well made", "cheaply made", "broke", "durab", "flimsy", "stitch",
               "seam", "defect", "sturdy", "ripped", "torn$"),
    },
    "size": {
        "tr": ("beden", "kalıp", "kalıb", "ölçü", "numara", "dar$", "dar gel", "bol gel", "küçük gel", "büyük gel",
               "kısa gel", "uzun gel", "tam oldu", "tam oturdu", "boyu$"),
        "en": ("size", "sizing", "fit", "fitted", "too small", "too big", "too large", "runs small", "runs large",
               "tight", "loose", "petite", "length"),
    },
    "packaging": {
        "tr": ("paket", "ambalaj", "kutu", "poşet", "koli", "balonlu"),
        "en": ("packag", "packed", "packing", "box$", "boxes", "wrapp", "parcel", "bubble wrap"),
    },
    "service": {
        "tr": ("hizmet", "satıcı", "mağaza", "iletişim", "ilgilen", "ilgisiz", "destek", "cevap", "yanıt",
               "müşteri temsilci"),
        "en": ("service", "customer care", "support", "seller", "staff", "helpful", "rude", "respon", "reply",
               "replied"),
    },
    "returns": {
        "tr": ("iade", "değişim", "geri gönder", "değiştir"),
        "en": ("return", "refund", "exchange", "sent it back", "sending it back", "send it back"),
    },
}


def _fold(values: pd.Series) -> pd.Series:
    return normalise_query(values.astype("object")).fillna("")


def _topic_patterns() -> dict[str, dict[str, re.Pattern]]:
    out: dict[str, dict[str, re.Pattern]] = {}
    for topic, by_lang in TOPICS.items():
        out[topic] = {}
        for lang, roots in by_lang.items():
            alts = []
            for root in roots:
                whole = root.endswith("$")
                folded = normalise_query(root.rstrip("$"))
                alts.append(re.escape(folded) + (r"\b" if whole else ""))
            out[topic][lang] = re.compile(r"\b(?:" + "|".join(alts) + ")")
    return out


def topics(text: pd.Series, language: pd.Series | str | None = None) -> pd.DataFrame:
    """Which topics of :data:`TOPICS` each review mentions.

    A review is matched with the lexicon of its language ('tr' or 'en'); a review in another or an
    unknown language with both. Matching is on folded text (:func:`crm_analytics.models.site_search.normalise_query`:
    case, Turkish letters and accents folded), so text typed without Turkish letters matches too.

    Parameters
    ----------
    text : Series of str
    language : Series, str or None
        As in :func:`crm_analytics.models.feedback_text.normalise` (None: detected).

    Returns
    -------
    DataFrame
        One boolean column per topic, on *text*'s index.

    Examples
    --------
    >>> topics(pd.Series(["Kargoya verilmesi gecikti", "Kalıbı dar, beden büyük alın"]), "tr")[["delivery", "size"]]
       delivery   size
    0      True  False
    1     False   True
    """
    text = _as_series(text, "text")
    lang = _languages(text, language).to_numpy()
    folded = _fold(text)
    patterns = _topic_patterns()
    out = pd.DataFrame(False, index=text.index, columns=list(TOPICS))
    for topic, by_lang in patterns.items():
        hit = np.zeros(len(text), dtype=bool)
        for code, pattern in by_lang.items():
            rows = (lang == code) | ~np.isin(lang, list(by_lang))
            if rows.any():
                hit[rows] |= folded[rows].str.contains(pattern, regex=True).to_numpy(dtype=bool)
        out[topic] = hit
    return out


def _need(frame: pd.DataFrame, columns: list[str], fix: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataContractError(f"reviews: missing column(s) {missing}; {fix}")


def topic_trend(reviews: pd.DataFrame, topic_flags: pd.DataFrame, sentiment: pd.Series, *,
                freq: str = "M") -> pd.DataFrame:
    """Reviews per period and topic and the share of them that are negative.

    Parameters
    ----------
    reviews : DataFrame
        With ``ts`` (UTC).
    topic_flags : DataFrame
        :func:`topics` of the reviews' text, on the same index.
    sentiment : Series
        A label per review ('negative', 'positive', 'neutral'; from stars or the model), on the same
        index; reviews with a missing label count in ``reviews`` but not in ``share_negative``.
    freq : str
        A pandas period frequency: 'M' (months), 'W' (weeks), 'Q', 'D'.

    Returns
    -------
    DataFrame
        ``period`` (the period's first day, UTC, tz-naive), ``topic``, ``reviews``, ``share_negative``;
        one row per period and topic with at least one review.
    """
    _need(reviews, ["ts"], "the reviews table needs its review time 'ts'")
    if not topic_flags.index.equals(reviews.index) or not sentiment.index.equals(reviews.index):
        raise ParamsError("topic_flags and sentiment must be on the reviews' index (topics(reviews['text']) and "
                          "a label per review)")
    ts = pd.to_datetime(reviews["ts"], utc=True).dt.tz_convert(None)
    try:
        period = ts.dt.to_period(freq).dt.start_time
    except (ValueError, TypeError) as err:
        raise ParamsError(f"freq must be a pandas period frequency such as 'M', 'W', 'Q' or 'D', got {freq!r}") from err
    labelled = sentiment.notna()
    long = topic_flags.astype(bool).assign(period=period, _neg=(sentiment == "negative") & labelled,
                                           _lab=labelled)
    long = long.melt(id_vars=["period", "_neg", "_lab"], var_name="topic", value_name="hit")
    long = long[long["hit"] & long["period"].notna()]
    g = long.groupby(["period", "topic"], sort=True)
    out = pd.DataFrame({"reviews": g.size(), "negative": g["_neg"].sum(), "labelled": g["_lab"].sum()})
    out["share_negative"] = out["negative"] / out["labelled"].where(out["labelled"] > 0)
    return out.reset_index()[["period", "topic", "reviews", "share_negative"]]


def keywords(text: pd.Series, labels: pd.Series, language: pd.Series | str | None = None, n: int = 15,
             *, min_df: int = 3) -> pd.DataFrame:
    """The words most typical of negative and of positive reviews, per language: the log-odds ratio
    with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008), as a z-score.

    Words are tokens of two or more letters of :func:`crm_analytics.models.feedback_text.normalise`-d text
    (Turkish words keep their suffixes: "kırık" and "kırıktı" are two words). The prior is the pooled
    word counts of the language (both classes), which pulls rare words' log-odds towards zero; a word
    must occur in at least *min_df* reviews.

    Returns
    -------
    DataFrame
        ``language, sentiment`` ('negative' or 'positive'), ``rank`` (1 = most typical), ``word``,
        ``z`` (positive, the larger the more typical), ``n_negative, n_positive`` (occurrences).

    References
    ----------
    Monroe, B. L., Colaresi, M. P. and Quinn, K. M. (2008). Fightin' words: lexical feature selection
    and evaluation for identifying the content of political conflict. Political Analysis 16(4), 372–403.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    text = _as_series(text, "text")
    labels = pd.Series(_as_series(labels, "labels").to_numpy(dtype=object), index=text.index)
    if len(labels) != len(text):
        raise ParamsError(f"labels has {len(labels):,} rows but text has {len(text):,}")
    lang = _languages(text, language)
    norm = normalise(text, lang).fillna("")
    keep = labels.isin(["negative", "positive"]).to_numpy()
    frames = []
    for code in sorted(lang[keep].unique()):
        rows = keep & (lang == code).to_numpy()
        neg = (labels[rows] == "negative").to_numpy()
        if neg.all() or not neg.any():
            continue
        vec = CountVectorizer(token_pattern=r"(?u)\b[^\W\d_]{2,}\b", min_df=min(min_df, int(rows.sum())))
        try:
            X = vec.fit_transform(norm[rows])
        except ValueError:  # no word reaches min_df
            continue
        y_neg = np.asarray(X[neg].sum(axis=0)).ravel().astype(float)
        y_pos = np.asarray(X[~neg].sum(axis=0)).ravel().astype(float)
        alpha = y_neg + y_pos
        a0, n_neg, n_pos = alpha.sum(), y_neg.sum(), y_pos.sum()
        delta = (np.log((y_neg + alpha) / (n_neg + a0 - y_neg - alpha))
                 - np.log((y_pos + alpha) / (n_pos + a0 - y_pos - alpha)))
        z = delta / np.sqrt(1 / (y_neg + alpha) + 1 / (y_pos + alpha))
        words = vec.get_feature_names_out()
        for side, score in (("negative", z), ("positive", -z)):
            top = np.argsort(-score, kind="stable")[:n]
            top = top[score[top] > 0]
            frames.append(pd.DataFrame({"language": code, "sentiment": side, "rank": np.arange(1, len(top) + 1),
                                        "word": words[top], "z": score[top], "n_negative": y_neg[top].astype(int),
                                        "n_positive": y_pos[top].astype(int)}))
    columns = ["language", "sentiment", "rank", "word", "z", "n_negative", "n_positive"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _ratings(reviews: pd.DataFrame) -> pd.Series:
    _need(reviews, ["rating"], "the reviews table needs 'rating' (1–5 stars)")
    r = pd.to_numeric(reviews["rating"], errors="coerce").astype("float64")
    bad = r.notna() & ~r.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise DataContractError(f"reviews: column 'rating' has {int(bad.sum()):,} values outside whole stars 1–5 "
                                f"(e.g. {list(r[bad].unique()[:3])}); clean the table first")
    return r


def _by_list(reviews: pd.DataFrame, by: Any) -> list[str]:
    cols = [] if by is None else [by] if isinstance(by, str) else list(by)
    _need(reviews, cols, "join the column first (e.g. products' 'category' on product_id)")
    return cols


def rating_summary(reviews: pd.DataFrame, by: str | list[str] | None = None) -> pd.DataFrame:
    """Rating distribution, mean and a star-based net-promoter-style score, overall or per group.

    ``star_nps`` = 100 × (share of 5-star reviews − share of 1-, 2- and 3-star reviews), from −100 to
    100: 5 stars are promoters, 4 stars passives, 1–3 stars detractors (the NPS bands 9–10 / 7–8 / 0–6
    mapped onto stars). Reviews without a rating are left out.

    Returns
    -------
    DataFrame
        ``reviews, mean_rating, share_1 … share_5, star_nps``; indexed by *by* (one row ``all`` without).

    Examples
    --------
    >>> rating_summary(pd.DataFrame({"rating": [5, 5, 4, 3, 1]}))[["reviews", "mean_rating", "star_nps"]]
         reviews  mean_rating  star_nps
    all        5          3.6       0.0
    """
    cols = _by_list(reviews, by)
    r = _ratings(reviews)
    frame = reviews[cols].assign(_r=r)[r.notna().to_numpy()]
    if not cols:
        frame = frame.assign(_all="all")
    keys = cols or ["_all"]
    dist = pd.crosstab([frame[k] for k in keys], frame["_r"].astype(int)).reindex(columns=[1, 2, 3, 4, 5],
                                                                                 fill_value=0)
    n = dist.sum(axis=1)
    out = pd.DataFrame({"reviews": n, "mean_rating": frame.groupby(keys)["_r"].mean().reindex(dist.index)})
    for star in range(1, 6):
        out[f"share_{star}"] = dist[star] / n
    out["star_nps"] = 100 * (out["share_5"] - out[["share_1", "share_2", "share_3"]].sum(axis=1))
    if not cols:
        out.index = pd.Index(["all"])
    return out


def falling_ratings(reviews: pd.DataFrame, by: str = "product_id", *, recent_days: float = 90,
                    min_reviews: int = 20, alpha: float = 0.05, as_of: Any = None) -> pd.DataFrame:
    """Groups (products, categories…) whose recent ratings are lower than before, with the evidence.

    Reviews in the last *recent_days* up to *as_of* (default: the newest review) are *recent*, older ones
    *before*. A group is tested when each window has at least *min_reviews* rated reviews: a one-sided
    Mann–Whitney U test (stars are ordinal; ties corrected) of recent < before, with the p-values adjusted
    for the number of groups tested (Benjamini–Hochberg). ``falling`` is ``p_adjusted < alpha`` and a
    lower recent mean. The difference of means has a Welch ``1 − alpha`` interval.

    Returns
    -------
    DataFrame
        ``<by>, n_before, mean_before, n_recent, mean_recent, difference`` (recent − before),
        ``difference_low, difference_high, p_value, p_adjusted, falling``: every tested group, falling ones
        first, then by p-value.

    Raises
    ------
    DataContractError
        When ``ts``, ``rating`` or *by* is missing.
    ParamsError
        When *recent_days*, *min_reviews* or *alpha* is out of range.
    """
    if recent_days <= 0 or min_reviews < 2 or not 0 < alpha < 1:
        raise ParamsError(f"need recent_days > 0, min_reviews ≥ 2 and 0 < alpha < 1; got recent_days={recent_days}, "
                          f"min_reviews={min_reviews}, alpha={alpha}")
    cols = _by_list(reviews, by)
    _need(reviews, ["ts"], "the reviews table needs its review time 'ts'")
    r = _ratings(reviews)
    ts = pd.to_datetime(reviews["ts"], utc=True)
    if as_of is None:
        end = ts.max()
    else:
        end = pd.Timestamp(as_of)
        end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    ok = (r.notna() & ts.notna() & (ts <= end)).to_numpy()
    frame = reviews.loc[ok, cols].assign(_r=r[ok], _recent=(ts[ok] > end - pd.Timedelta(days=recent_days)))
    # only groups with enough reviews in both windows are tested (counted at once, not group by group)
    counts = frame.groupby([*cols, "_recent"]).size().unstack("_recent").reindex(columns=[False, True])
    enough = counts[(counts.fillna(0) >= min_reviews).all(axis=1)].index
    frame = frame[pd.MultiIndex.from_frame(frame[cols]).isin(enough)] if len(cols) > 1 else \
        frame[frame[cols[0]].isin(enough)]
    rows = []
    for key, g in frame.groupby(cols, sort=True):
        old, new = g.loc[~g["_recent"], "_r"].to_numpy(), g.loc[g["_recent"], "_r"].to_numpy()
        diff = new.mean() - old.mean()
        v_old, v_new = old.var(ddof=1) / len(old), new.var(ddof=1) / len(new)
        se = np.sqrt(v_old + v_new)
        same = np.all(old == old[0]) and np.all(new == old[0])  # nothing to test: one rating throughout
        p = 1.0 if same else stats.mannwhitneyu(new, old, alternative="less").pvalue
        dof = (v_old + v_new) ** 2 / (v_old**2 / (len(old) - 1) + v_new**2 / (len(new) - 1)) if se > 0 else np.inf
        half = stats.t.ppf(1 - alpha / 2, dof)
        rows.append({**dict(zip(cols, key if isinstance(key, tuple) else (key,))), "n_before": len(old),
                     "mean_before": old.mean(), "n_recent": len(new), "mean_recent": new.mean(), "difference": diff,
                     "difference_low": diff - half * se, "difference_high": diff + half * se, "p_value": float(p)})
    columns = [*cols, "n_before", "mean_before", "n_recent", "mean_recent", "difference", "difference_low",
               "difference_high", "p_value", "p_adjusted", "falling"]
    if not rows:  # nothing tested: the same columns, ``falling`` still a boolean a mask can use
        return pd.DataFrame(columns=columns).astype({"falling": bool})
    out = pd.DataFrame(rows)
    out["p_adjusted"] = stats.false_discovery_control(out["p_value"].to_numpy(), method="bh")
    out["falling"] = (out["p_adjusted"] < alpha) & (out["difference"] < 0)
    out = out.sort_values(["falling", "p_value"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)[columns]

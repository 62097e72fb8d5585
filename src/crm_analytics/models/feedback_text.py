"""Review text: Turkish-aware normalisation, language detection, star-based sentiment labels, a
TF-IDF + logistic-regression sentiment model, its held-out evaluation and reviews whose text
contradicts their stars.

The flow for a ``reviews`` table (``review_id, customer_id, product_id, order_id, ts, rating,
text, language``):

1. :func:`normalise` lower-cases with Turkish casing rules where the text is Turkish (``İ`` →
   ``i``, ``I`` → ``ı``), so "IŞIK" and "ışık" are one word; :func:`detect_language` fills a
   missing ``language`` from the evidence in the text.
2. :func:`sentiment_labels` turns stars into labels (4–5 positive, 1–2 negative, 3 dropped or
   neutral); :class:`SentimentModel` learns text → label from them, :func:`evaluate` scores it on
   a stratified holdout beside the majority-class baseline.
3. :func:`mismatches` lists reviews whose text the model reads opposite to their stars (the
   "five stars so my review is seen: it arrived broken" reviews); :func:`mismatch_share` counts them.

Topics, keywords and rating summaries are in :mod:`crm_analytics.models.feedback_topics`. Review text is
customers' text: a notebook shows it through :func:`crm_analytics.reports.report.md` / ``styled`` only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from crm_analytics.errors import DataContractError, ParamsError

__all__ = ["LANGUAGES", "SentimentModel", "cross_fitted", "detect_language", "evaluate", "label_scores",
           "mismatch_share", "mismatches", "normalise", "sentiment_labels"]

#: what :func:`detect_language` returns
LANGUAGES = ("tr", "en", "other", "unknown")

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]+")
#: Turkish letters folded to ASCII, so that "cok" and "çok" are the same evidence
_FOLD = str.maketrans({"ı": "i", "ç": "c", "ğ": "g", "ö": "o", "ş": "s", "ü": "u", "â": "a", "î": "i", "û": "u"})
#: letters only Turkish (of the languages a Turkish or English shop meets) writes
_TR_STRONG = frozenset("ğış")
#: letters Turkish shares with German, French, Albanian…: weaker evidence
_TR_WEAK = frozenset("çöü")
_TR_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzçğıöşüâîû")
#: frequent Turkish function words and review words, folded to ASCII (none is an English word)
_TR_WORDS = frozenset({
    "ve", "bir", "bu", "cok", "ama", "icin", "ile", "gibi", "daha", "en", "hic", "ne", "mi", "mu", "degil", "var",
    "yok", "olarak", "ben", "sonra", "kadar", "diye", "cunku", "hem", "veya", "ki", "de", "da", "sey", "biraz",
    "gayet", "tam", "iyi", "guzel", "urun", "urunu", "urunler", "tavsiye", "ederim", "etmem", "ediyorum",
    "tesekkurler", "tesekkur", "ederiz", "kargo", "geldi", "aldim", "begendim", "begenmedim", "oldu", "olmadi",
    "harika", "mukemmel", "kesinlikle", "fiyat", "fiyatina", "kalitesi", "kaliteli", "ayni", "olan", "olmus",
    "bence", "beden", "hizli", "elime", "ulasti", "siparis", "memnun", "kaldim", "guzeldi", "rengi", "bedeni",
    "kullaniyorum", "tek", "ancak", "yani", "hemen", "bi", "buna", "sadece", "gercekten", "idare", "eder", "numara",
    "rahat"
})
#: frequent English function words and review words (none is a Turkish word)
_EN_WORDS = frozenset({
    "the", "and", "is", "it", "its", "this", "that", "to", "of", "in", "for", "with", "was", "were", "are", "but",
    "not", "very", "my", "i", "you", "they", "have", "has", "had", "would", "so", "too", "be", "on", "at", "as",
    "just", "love", "loved", "great", "good", "fit", "fits", "size", "quality", "dress", "wear", "ordered",
    "really", "well", "nice", "perfect", "little", "also", "like", "an", "will", "can", "could", "than", "these",
    "those", "what", "which", "when", "there", "their", "our", "me", "we", "item", "product", "arrived", "delivery",
    "price", "bought", "recommend", "happy", "disappointed", "small", "large"
})
#: frequent function words of other European languages (German, French, Spanish, Italian, Dutch…) that are
#: neither Turkish nor English words
_OTHER_WORDS = frozenset({
    "und", "der", "die", "das", "ist", "nicht", "ich", "sehr", "mit", "ein", "eine", "auch", "sind", "le", "la",
    "les", "est", "très", "pas", "une", "des", "du", "pour", "avec", "los", "las", "es", "muy", "y", "que", "con",
    "por", "pero", "una", "di", "che", "non", "per", "sono", "della", "een", "het", "niet", "zeer", "ook"
})


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _per_unique(text: pd.Series, func: Callable[[Any], Any]) -> pd.Series:
    """*func* applied once per distinct value of *text* (missing values map to ``None``)."""
    codes, uniques = pd.factorize(text, use_na_sentinel=True)
    done = np.array([func(u) for u in uniques] + [None], dtype=object)
    return pd.Series(done[codes], index=text.index, name=text.name, dtype="object")


def _as_series(text: Any, what: str) -> pd.Series:
    if isinstance(text, pd.Series):
        return text
    if isinstance(text, (list, tuple, np.ndarray, pd.Index)):
        return pd.Series(list(text), dtype="object")
    raise ParamsError(f"{what} must be a pandas Series (or a list) of strings, got {type(text).__name__}")


def _languages(text: pd.Series, language: pd.Series | str | None) -> pd.Series:
    """One language per row: *language* where given, detected from the text where missing."""
    if language is None:
        return detect_language(text)
    if isinstance(language, str):
        language = [language] * len(text)
    lang = _as_series(language, "language")
    if len(lang) != len(text):
        raise ParamsError(f"language has {len(lang):,} rows but text has {len(text):,}; pass one language per "
                          "text (or a single string, or None to detect it)")
    lang = pd.Series(lang.to_numpy(dtype=object), index=text.index, dtype="object")
    gap = lang.isna().to_numpy()
    if gap.any():
        lang[gap] = detect_language(text[gap]).to_numpy()
    # "TR", "tr-TR", "tr_TR" all mean Turkish
    return lang.astype(str).str.strip().str.lower().str.split(r"[-_]", regex=True).str[0]


def _lower(s: Any, turkish: bool) -> Any:
    if _missing(s):
        return None
    s = unicodedata.normalize("NFC", str(s))
    # Python lower-cases "İ" to "i" + combining dot above; Turkish (and every language that has the letter)
    # means plain "i". "I" is "ı" in Turkish only.
    s = s.replace("İ", "i")
    if turkish:
        s = s.replace("I", "ı")
    s = unicodedata.normalize("NFC", s.lower())
    return _SPACE.sub(" ", s).strip()


def normalise(text: pd.Series, language: pd.Series | str | None = None) -> pd.Series:
    """Review text lower-cased with the casing rules of its language, in Unicode NFC, with runs of
    whitespace collapsed to one space and the ends trimmed.

    Turkish text (``language == "tr"``) maps ``İ`` → ``i`` and ``I`` → ``ı`` before lower-casing
    ("IŞIK" → "ışık"); other text maps ``İ`` → ``i`` and lower-cases as Unicode does ("I" → "i").
    Letters and punctuation are kept (diacritics carry meaning in Turkish); a missing text stays
    missing. Each distinct (text, Turkish or not) is normalised once.

    Parameters
    ----------
    text : Series of str
    language : Series, str or None
        The language of each text ('tr', 'en', …), one language for all, or None to detect it with
        :func:`detect_language` (as are missing values in a Series).

    Returns
    -------
    Series of str (object dtype), on *text*'s index.

    Examples
    --------
    >>> normalise(pd.Series(["İSTANBUL'a  IŞIK", "I LOVE it"]), pd.Series(["tr", "en"])).tolist()
    ["istanbul'a ışık", 'i love it']
    """
    text = _as_series(text, "text")
    turkish = (_languages(text, language) == "tr").to_numpy()
    out = pd.Series(np.full(len(text), None, dtype=object), index=text.index, name=text.name, dtype="object")
    for flag in (True, False):
        part = turkish == flag
        if part.any():
            out[part] = _per_unique(text[part], lambda s, f=flag: _lower(s, f)).to_numpy()
    return out


def _detect_one(text: Any, fallback: str) -> str:
    if _missing(text):
        return "unknown"
    s = unicodedata.normalize("NFC", str(text)).replace("İ", "i").replace("I", "i").lower()
    words = _WORD.findall(s)
    letters = sum(len(w) for w in words)
    if letters == 0:
        return "unknown"
    latin = sum(ch in _TR_LETTERS or "a" <= unicodedata.normalize("NFD", ch)[0] <= "z" for w in words for ch in w)
    if latin < letters / 2:  # Cyrillic, Arabic, Greek, CJK…
        return "other"
    tr = en = other = 0.0
    for w in words:
        chars = set(w)
        if chars & _TR_STRONG:
            tr += 1.0
        elif chars & _TR_WEAK:
            tr += 0.5
        if not chars <= _TR_LETTERS:  # é, ä, ß, ñ…: letters Turkish and English do not write
            other += 1.0
        tr += w.translate(_FOLD) in _TR_WORDS
        en += w in _EN_WORDS
        other += w in _OTHER_WORDS
    scores = {"tr": tr, "en": en, "other": other}
    best = max(scores, key=scores.__getitem__)
    if scores[best] == 0 or sum(v == scores[best] for v in scores.values()) > 1:
        return fallback
    return best


def detect_language(text: pd.Series, *, fallback: str = "other") -> pd.Series:
    """The language of each text — 'tr', 'en' or 'other' ('unknown' when it has no letters) —
    decided by counting evidence, offline and without a model.

    Each word adds evidence: to Turkish one point if it is a frequent Turkish function or review word
    (matched with and without Turkish letters, so "cok" counts like "çok"), one if it has ``ğ ı ş``
    and half if it has only ``ç ö ü`` (German and French write those too); to English one point if it
    is a frequent English function or review word; to 'other' one point if it is a frequent German,
    French, Spanish, Italian or Dutch function word or has a letter Turkish and English do not write
    (``é ä ß ñ``…). Text mostly in a non-Latin script is 'other'. The language with the most points
    wins; no evidence or a tie gives *fallback*. ``I`` is read as ``i`` here (it is ``ı`` only in
    Turkish, which is what is being decided).

    Parameters
    ----------
    text : Series of str
    fallback : str
        The answer when the text gives no evidence or a tie ("Ok", "Süper!!" is 'tr', "10/10"
        is 'unknown'): 'other' by default; a shop that knows its main language may pass it.

    Returns
    -------
    Series of str on *text*'s index, values in :data:`LANGUAGES`.

    Examples
    --------
    >>> detect_language(pd.Series(["Kargo çok hızlı geldi", "It fits well", "Das ist sehr gut", "!!", None])).tolist()
    ['tr', 'en', 'other', 'unknown', 'unknown']
    """
    text = _as_series(text, "text")
    return _per_unique(text, lambda s: _detect_one(s, fallback)).fillna("unknown")


def sentiment_labels(rating: pd.Series, *, neutral: str = "drop") -> pd.Series:
    """Star ratings as sentiment labels: 4–5 stars 'positive', 1–2 'negative'.

    Three stars are ambiguous (half of them praise, half complain), so by default they are dropped
    (missing label, which :meth:`SentimentModel.fit` and :func:`evaluate` skip): the model learns
    from clear cases and scores every review. ``neutral="keep"`` labels them 'neutral' for a
    three-class model instead. A missing rating gives a missing label.

    Raises
    ------
    ParamsError
        When *neutral* is not 'drop' or 'keep'.
    DataContractError
        When a rating is not a whole number from 1 to 5.

    Examples
    --------
    >>> sentiment_labels(pd.Series([5, 4, 3, 2, 1])).tolist()
    ['positive', 'positive', nan, 'negative', 'negative']
    >>> sentiment_labels(pd.Series([3]), neutral="keep").tolist()
    ['neutral']
    """
    if neutral not in ("drop", "keep"):
        raise ParamsError(f"neutral must be one of ['drop', 'keep'], got {neutral!r}")
    r = pd.to_numeric(_as_series(rating, "rating"), errors="coerce").astype("float64")
    bad = r.notna() & ~r.isin([1, 2, 3, 4, 5])
    bad |= r.isna() & _as_series(rating, "rating").notna().to_numpy()
    if bad.any():
        examples = list(pd.Series(rating)[bad.to_numpy()].unique()[:3])
        raise DataContractError(f"reviews: column 'rating' has {int(bad.sum()):,} values that are not whole stars "
                                f"1–5 (e.g. {examples}); clean or map them before labelling")
    labels = np.select([r >= 4, r <= 2, r == 3], ["positive", "negative", "neutral" if neutral == "keep" else ""],
                       default="")
    out = pd.Series(labels, index=r.index, name="sentiment", dtype="object")
    return out.where(out != "", np.nan)


class SentimentModel(BaseEstimator):
    """Sentiment of review text: TF-IDF over word uni- and bigrams and over character 2–5-grams within
    words (``char_wb``, which catches Turkish stems under their suffixes: "kalitesiz", "kalitesizdi"),
    on :func:`normalise`-d text, stacked side by side and fed to a class-balanced logistic regression.

    Distinct texts are vectorised once (inverse document frequencies count distinct texts), features
    are float32 with sublinear term frequency and capped in number, so all 260,308 reviews of the
    Turkish ShoppingWords corpus train and score in about 70 seconds within 1.6 GB (the ``sentiment_tr``
    benchmark; the goal is 2 minutes on 2 cores).

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the logistic regression.
    word_max_features, char_max_features : int
        Caps on the word and character n-gram vocabularies (the most frequent are kept).
    min_df : int
        Minimum number of distinct texts an n-gram must occur in; taken as 1 when fewer than 1,000
        distinct texts are fitted, so a small shop's reviews still train.
    max_iter : int
        L-BFGS iterations.

    Attributes
    ----------
    classes_ : ndarray of str
        The labels, sorted ('negative', 'positive' or with 'neutral').
    n_features_ : int
        Number of word + character features.
    """

    def __init__(self, *, C: float = 4.0, word_max_features: int = 200_000, char_max_features: int = 300_000,
                 min_df: int = 2, max_iter: int = 500) -> None:
        self.C = C
        self.word_max_features = word_max_features
        self.char_max_features = char_max_features
        self.min_df = min_df
        self.max_iter = max_iter

    def _matrix(self, text: pd.Series, language: pd.Series | str | None, fit: bool = False):
        import scipy.sparse as sp

        norm = normalise(text, language).fillna("")
        codes, uniques = pd.factorize(norm)
        docs = list(uniques)
        if fit:
            from sklearn.feature_extraction.text import TfidfVectorizer

            min_df = self.min_df if len(docs) >= 1000 else 1
            common = {"min_df": min_df, "sublinear_tf": True, "dtype": np.float32}
            self.word_vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), max_features=self.word_max_features,
                                                    **common)
            self.char_vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5),
                                                    max_features=self.char_max_features, **common)
            parts = [self.word_vectorizer_.fit_transform(docs), self.char_vectorizer_.fit_transform(docs)]
        else:
            parts = [self.word_vectorizer_.transform(docs), self.char_vectorizer_.transform(docs)]
        return sp.hstack(parts, format="csr", dtype=np.float32)[codes]

    def fit(self, text: pd.Series, labels: pd.Series, language: pd.Series | str | None = None) -> SentimentModel:
        """Learn from the texts whose label is not missing (:func:`sentiment_labels` drops 3 stars).

        Raises
        ------
        DataContractError
            When *text* and *labels* differ in length or fewer than two labels occur.
        """
        from sklearn.linear_model import LogisticRegression

        text = _as_series(text, "text")
        labels = _as_series(labels, "labels")
        if len(text) != len(labels):
            raise DataContractError(f"reviews: {len(text):,} texts but {len(labels):,} labels; pass one label "
                                    "per text (sentiment_labels(reviews['rating']))")
        keep = labels.notna().to_numpy()
        y = labels.to_numpy(dtype=object)[keep].astype(str)
        if len(np.unique(y)) < 2:
            raise DataContractError(f"reviews: the labels hold {sorted(set(y))}, a sentiment model needs at least "
                                    "two classes (e.g. ratings of 1–2 and of 4–5 stars)")
        if isinstance(language, (pd.Series, list, tuple, np.ndarray)):
            language = _as_series(language, "language")[keep]
        X = self._matrix(text[keep], language, fit=True)
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter)
        self.model_.fit(X, y)
        self.classes_ = self.model_.classes_
        self.n_features_ = X.shape[1]
        return self

    def class_proba(self, text: pd.Series, language: pd.Series | str | None = None) -> pd.DataFrame:
        """The probability of each class, one column per label of :attr:`classes_`, on *text*'s index."""
        check_is_fitted(self, "model_")
        text = _as_series(text, "text")
        p = self.model_.predict_proba(self._matrix(text, language))
        return pd.DataFrame(p, index=text.index, columns=list(self.classes_))

    def predict_proba(self, text: pd.Series, language: pd.Series | str | None = None) -> pd.Series:
        """P('positive') of each text (a Series named ``p_positive`` on *text*'s index).

        Raises
        ------
        ParamsError
            When the model was fitted without a 'positive' label (use :meth:`class_proba`).
        """
        check_is_fitted(self, "model_")
        if "positive" not in self.classes_:
            raise ParamsError(f"predict_proba gives P('positive') but the model's classes are {list(self.classes_)}; "
                              "use class_proba for other labels")
        return self.class_proba(text, language)["positive"].rename("p_positive")

    def predict(self, text: pd.Series, language: pd.Series | str | None = None) -> pd.Series:
        """The most probable label of each text (a Series named ``sentiment`` on *text*'s index)."""
        proba = self.class_proba(text, language)
        return pd.Series(np.asarray(self.classes_)[proba.to_numpy().argmax(axis=1)], index=proba.index,
                         name="sentiment", dtype="object")


def evaluate(model_factory: Callable[[], Any], text: pd.Series, labels: pd.Series, *, test_share: float = 0.2,
             seed: int = 0, language: pd.Series | str | None = None) -> dict[str, Any]:
    """Fit ``model_factory()`` on a stratified ``1 - test_share`` of the labelled texts and score it on
    the rest, beside the baseline that always says the most frequent training label.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``baseline_accuracy``, ``n_train``, ``n_test``, ``per_class``
        (DataFrame indexed by label: ``precision, recall, f1, support``), ``confusion`` (DataFrame:
        rows the true label, columns the predicted one), ``test_index`` (the held-out rows of *text*)
        and ``model`` (the fitted model).

    Raises
    ------
    ParamsError
        When *test_share* is not between 0 and 1.
    """
    from sklearn.model_selection import train_test_split

    if not 0 < test_share < 1:
        raise ParamsError(f"test_share must be between 0 and 1 (exclusive), got {test_share}")
    text = _as_series(text, "text")
    labels = pd.Series(_as_series(labels, "labels").to_numpy(dtype=object), index=text.index)
    lang = _languages(text, language)
    idx = labels.index[labels.notna().to_numpy()]
    train, test = train_test_split(idx, test_size=test_share, random_state=seed,
                                   stratify=labels[idx].astype(str))
    model = model_factory().fit(text[train], labels[train], lang[train])
    truth = labels[test].astype(str).to_numpy()
    pred = model.predict(text[test], lang[test]).astype(str).to_numpy()
    majority = labels[train].astype(str).value_counts().idxmax()
    return {**label_scores(truth, pred, majority), "n_train": len(train), "n_test": len(test),
            "test_index": pd.Index(test), "model": model}


def label_scores(truth: Any, pred: Any, majority: str | None = None) -> dict[str, Any]:
    """Accuracy, macro-F1 (over the true labels), the baseline of always saying *majority* (default: the
    most frequent true label), per-class precision/recall/F1 and the confusion matrix of *pred* against
    *truth*."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    truth, pred = np.asarray(truth).astype(str), np.asarray(pred).astype(str)
    if majority is None:
        majority = pd.Series(truth).value_counts().idxmax()
    classes = sorted(set(truth) | set(pred))
    p, r, f, n = precision_recall_fscore_support(truth, pred, labels=classes, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "macro_f1": float(f1_score(truth, pred, average="macro", labels=sorted(set(truth)), zero_division=0)),
        "baseline_accuracy": float((truth == majority).mean()),
        "per_class": pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": n},
                                  index=pd.Index(classes, name="label")),
        "confusion": pd.DataFrame(confusion_matrix(truth, pred, labels=classes),
                                  index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted")),
    }


def cross_fitted(model_factory: Callable[[], Any], text: pd.Series, labels: pd.Series, *, folds: int = 2,
                 seed: int = 0, language: pd.Series | str | None = None) -> dict[str, Any]:
    """Every review scored by a model that did not learn from it, and the scores of those predictions.

    The labelled texts are split into *folds* stratified parts; a model is fitted on all but one part and
    scores that part (and, for unlabelled rows such as 3-star reviews, each fold's model scores them
    and the probabilities are averaged). Held-out accuracy and macro-F1 then cover every labelled
    review, beside the majority-class baseline, and the probabilities can flag text that contradicts
    its stars without the optimism of scoring what the model learnt from. Repeated texts (a short review
    written hundreds of times) may fall in different parts: reviews to come repeat them too, so the
    accuracy is that of scoring the next review, not of scoring a never-seen wording.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``baseline_accuracy``, ``n_labelled``, ``folds``, ``per_class``,
        ``confusion`` (as :func:`evaluate`), ``proba`` (DataFrame of class probabilities for every row
        of *text*) and ``models`` (the fitted models, one per fold).
    """
    from sklearn.model_selection import StratifiedKFold

    if not (isinstance(folds, int) and folds >= 2):
        raise ParamsError(f"folds must be a whole number >= 2, got {folds!r}")
    text = _as_series(text, "text")
    labels = pd.Series(_as_series(labels, "labels").to_numpy(dtype=object), index=text.index)
    lang = _languages(text, language)
    labelled = labels.notna().to_numpy()
    idx, rest = text.index[labelled], text.index[~labelled]
    y = labels[idx].astype(str)
    parts, models = [], []
    unlabelled = []
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(idx)), y):
        model = model_factory().fit(text[idx[tr]], y.iloc[tr], lang[idx[tr]])
        models.append(model)
        parts.append(model.class_proba(text[idx[te]], lang[idx[te]]))
        if len(rest):
            unlabelled.append(model.class_proba(text[rest], lang[rest]))
    proba = pd.concat(parts)
    if unlabelled:
        proba = pd.concat([proba, sum(unlabelled) / len(unlabelled)])
    proba = proba.reindex(text.index)
    pred = proba.loc[idx].idxmax(axis=1).to_numpy()
    return {**label_scores(y.to_numpy(), pred), "n_labelled": len(idx), "folds": folds, "proba": proba,
            "models": models}


def _same_rows(reviews: pd.DataFrame, proba: pd.Series | pd.DataFrame) -> None:
    absent = reviews.index.difference(proba.index)
    if len(absent):
        raise ParamsError(f"proba has no probability for {len(absent):,} of the {len(reviews):,} reviews (e.g. index "
                          f"{list(absent[:3])}); score the same rows: model.predict_proba(reviews['text'])")


def _p_negative(reviews: pd.DataFrame, proba: Any) -> tuple[np.ndarray, np.ndarray]:
    """(P(negative), P(positive)) aligned with *reviews*' rows."""
    if isinstance(proba, pd.DataFrame):
        missing = [c for c in ("negative", "positive") if c not in proba.columns]
        if missing:
            raise ParamsError(f"proba has columns {list(proba.columns)}, missing {missing}; pass "
                              "SentimentModel.class_proba(...) or predict_proba(...)")
        _same_rows(reviews, proba)
        p = proba.reindex(reviews.index)
        return p["negative"].to_numpy(dtype=float), p["positive"].to_numpy(dtype=float)
    if isinstance(proba, pd.Series):
        _same_rows(reviews, proba)
        pos = proba.reindex(reviews.index).to_numpy(dtype=float)
    else:
        pos = np.asarray(proba, dtype=float)
        if pos.shape != (len(reviews),):
            raise ParamsError(f"proba has shape {pos.shape}, expected one P(positive) per review ({len(reviews):,})")
    return 1 - pos, pos


def _check_reviews(reviews: pd.DataFrame, columns: list[str], threshold: float) -> None:
    missing = [c for c in columns if c not in reviews.columns]
    if missing:
        raise DataContractError(f"reviews: missing column(s) {missing}; the reviews table needs {columns}")
    if not 0.5 < threshold <= 1:
        raise ParamsError(f"threshold must be in (0.5, 1], got {threshold}")


def mismatches(reviews: pd.DataFrame, proba: Any, *, threshold: float = 0.8) -> pd.DataFrame:
    """Reviews whose text contradicts their stars: 4–5 stars with P(negative) ≥ *threshold*, or 1–2
    stars with P(positive) ≥ *threshold* (3 stars never contradict), most confident first.

    Parameters
    ----------
    reviews : DataFrame
        ``review_id, rating, text``.
    proba : Series, DataFrame or array
        P(positive) per review (:meth:`SentimentModel.predict_proba`, aligned on *reviews*' index, so
        P(negative) = 1 − P(positive)), or :meth:`SentimentModel.class_proba`'s frame for a model with
        a neutral class.
    threshold : float
        The probability the text must reach, in (0.5, 1].

    Returns
    -------
    DataFrame
        ``review_id, rating, text, p_negative, direction`` ("5 stars, negative text", "1 star,
        positive text"), on *reviews*' index.
    """
    _check_reviews(reviews, ["review_id", "rating", "text"], threshold)
    p_neg, p_pos = _p_negative(reviews, proba)
    rating = pd.to_numeric(reviews["rating"], errors="coerce").to_numpy(dtype=float)
    neg_text = (rating >= 4) & (p_neg >= threshold)
    pos_text = (rating <= 2) & (p_pos >= threshold)
    hit = neg_text | pos_text
    out = reviews.loc[hit, ["review_id", "rating", "text"]].copy()
    out["p_negative"] = p_neg[hit]
    stars = [f"{int(r)} star{'s' if r != 1 else ''}" for r in rating[hit]]
    out["direction"] = [f"{s}, {'negative' if n else 'positive'} text" for s, n in zip(stars, neg_text[hit])]
    confidence = np.where(neg_text[hit], p_neg[hit], p_pos[hit])
    return out.iloc[np.argsort(-confidence, kind="stable")]


def mismatch_share(reviews: pd.DataFrame, proba: Any, *, threshold: float = 0.8) -> float:
    """The share of reviews with 1, 2, 4 or 5 stars and a probability that :func:`mismatches` lists
    (3-star reviews cannot contradict their stars and are not counted); NaN when there are none."""
    _check_reviews(reviews, ["review_id", "rating", "text"], threshold)
    p_neg, _ = _p_negative(reviews, proba)
    rating = pd.to_numeric(reviews["rating"], errors="coerce").to_numpy(dtype=float)
    eligible = np.isin(rating, [1, 2, 4, 5]) & ~np.isnan(p_neg)
    if not eligible.any():
        return float("nan")
    return len(mismatches(reviews, proba, threshold=threshold)) / int(eligible.sum())

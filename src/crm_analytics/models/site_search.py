"""Site search: Turkish-aware query normalisation, top and zero-result queries, lost demand,
search-to-purchase conversion and queries whose results were viewed but not bought.

Queries are grouped by :func:`normalise_query`, so "Ayakkabı", "AYAKKABI" and "ayakkabi" count as
one; each group is shown with its most frequent original spelling. Queries are shop visitors' text:
a notebook shows them through :func:`crm_analytics.reports.report.md` / ``styled`` only.

Session rule and event sources as in :mod:`crm_analytics.models.behaviour`. A search is *lost demand*
when no product view follows it in its session (the visitor searched, found nothing worth opening,
and left or went elsewhere); ``ended_session`` means the search was the session's last event.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.models.behaviour import _need, _session_events
from crm_analytics.models.campaigns import newcombe_interval, wilson_interval
from crm_analytics.errors import ParamsError
from crm_analytics.ingest.tables import local_ibis

__all__ = ["normalise_query", "search_events", "top_queries", "zero_result_queries", "search_conversion",
           "viewed_not_bought", "search_summary"]

#: Turkish (and circumflexed) letters folded to ASCII for matching, after case folding.
_FOLD = str.maketrans({"ı": "i", "ç": "c", "ğ": "g", "ö": "o", "ş": "s", "ü": "u", "â": "a", "î": "i", "û": "u"})
_SPACE = re.compile(r"\s+")


def _normalise_one(text: Any) -> Any:
    if text is None or text is pd.NA or (isinstance(text, float) and np.isnan(text)):
        return None
    s = str(text).replace("İ", "i").replace("I", "ı").lower().translate(_FOLD)
    s = "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))
    s = _SPACE.sub(" ", s).strip()
    return s or None


def normalise_query(text: Any) -> Any:
    """A search query folded for counting: Turkish case folding (``İ`` → ``i`` and ``I`` → ``ı``
    before lowercasing, then ``ı`` → ``i``), accents stripped (``ç ğ ö ş ü â î û`` → ``c g o s u a i
    u``, and any other combining mark), whitespace collapsed and trimmed; empty becomes missing.

    *text* is a string or a Series; a Series is normalised once per distinct value (vectorised
    over the rows).

    Examples
    --------
    >>> [normalise_query(q) for q in ["Ayakkabı", "AYAKKABI", " ayakkabi  ", "İPEK Eşarp", "ÇAYDANLIK"]]
    ['ayakkabi', 'ayakkabi', 'ayakkabi', 'ipek esarp', 'caydanlik']
    """
    if isinstance(text, pd.Series):
        codes, uniques = pd.factorize(text, use_na_sentinel=True)
        folded = np.array([_normalise_one(u) for u in uniques] + [None], dtype=object)
        return pd.Series(folded[codes], index=text.index, name=text.name, dtype="object")
    return _normalise_one(text)


def search_events(events: Any, *, inactivity_minutes: float = 30) -> pd.DataFrame:
    """One row per search event with its session context (computed in DuckDB).

    Returns
    -------
    DataFrame
        ``session_id, ts, query`` (as typed), ``query_norm``, ``results_count``,
        ``zero_results`` (``results_count == 0``), ``viewed_after`` (a product view follows in the
        session), ``ended_session`` (no event follows), ``session_converted`` (the session has a
        purchase), ``bought_after`` (a purchase follows the search).
    """
    import ibis

    with local_ibis() as db:
        t = _session_events(db, events, inactivity_minutes)
        ws = ibis.window(group_by=t.session_key)
        t = t.mutate(last_view=ibis.ifelse(t.event_type == "product_view", t.seq, None).max().over(ws),
                     last_buy=ibis.ifelse(t.event_type == "purchase", t.seq, None).max().over(ws),
                     last_seq=t.seq.max().over(ws))
        s = t.filter(t.event_type == "search")
        s = s.select(session_id=s.session_key, ts=s.ts, query=s.search_query, results_count=s.results_count,
                     viewed_after=ibis.coalesce(s.last_view > s.seq, False),
                     ended_session=s.seq == s.last_seq,
                     session_converted=s.last_buy.notnull(),
                     bought_after=ibis.coalesce(s.last_buy > s.seq, False))
        out = s.order_by(["ts", "session_id"]).to_pyarrow().to_pandas()
    if getattr(out["ts"].dt, "tz", None) is None:
        out["ts"] = out["ts"].dt.tz_localize("UTC")
    out["query_norm"] = normalise_query(out["query"])
    out["zero_results"] = out["results_count"].eq(0).fillna(False).astype(bool)
    cols = ["session_id", "ts", "query", "query_norm", "results_count", "zero_results", "viewed_after",
            "ended_session", "session_converted", "bought_after"]
    return out[cols]


def _searches(searches: Any) -> pd.DataFrame:
    if isinstance(searches, pd.DataFrame) and "query_norm" in searches.columns:
        return searches
    return search_events(searches)


def _spelling(s: pd.DataFrame) -> pd.Series:
    """The most frequent original spelling of each normalised query (ties: alphabetical)."""
    c = s.groupby(["query_norm", "query"]).size().rename("n").reset_index()
    c = c.sort_values(["query_norm", "n", "query"], ascending=[True, False, True])
    return c.drop_duplicates("query_norm").set_index("query_norm")["query"]


def top_queries(searches: Any, *, n: int = 20) -> pd.DataFrame:
    """The most searched queries.

    Parameters
    ----------
    searches : DataFrame or ParquetTable
        :func:`search_events`, or events (then searched first).

    Returns
    -------
    DataFrame
        ``query`` (most frequent spelling), ``query_norm``, ``searches``, ``sessions``, ``spellings``
        (distinct original spellings), ``zero_result_share``, ``view_share`` (searches followed by a
        product view); most searched first.
    """
    s = _searches(searches)
    s = s[s["query_norm"].notna()]
    g = s.groupby("query_norm").agg(searches=("session_id", "size"), sessions=("session_id", "nunique"),
                                    spellings=("query", "nunique"), zero_result_share=("zero_results", "mean"),
                                    view_share=("viewed_after", "mean"))
    g.insert(0, "query", _spelling(s).reindex(g.index))
    g = g.reset_index().sort_values(["searches", "query_norm"], ascending=[False, True], ignore_index=True)
    return g[["query", "query_norm", "searches", "sessions", "spellings", "zero_result_share", "view_share"]].head(n)


def zero_result_queries(searches: Any, *, n: int = 20, alpha: float = 0.05) -> pd.DataFrame:
    """Queries that found nothing (``results_count == 0``) and the demand lost with them.

    Returns
    -------
    DataFrame
        ``query, query_norm, searches, sessions``, ``lost_searches`` (no product view followed in
        the session), ``lost_share`` (with Wilson ``lost_low``/``lost_high``), ``ended_share`` (the
        search ended the session); most searched first.
    """
    s = _searches(searches)
    z = s[s["zero_results"] & s["query_norm"].notna()]
    cols = ["query", "query_norm", "searches", "sessions", "lost_searches", "lost_share", "lost_low", "lost_high",
            "ended_share"]
    if z.empty:
        return pd.DataFrame(columns=cols)
    g = z.assign(lost=~z["viewed_after"]).groupby("query_norm").agg(
        searches=("session_id", "size"), sessions=("session_id", "nunique"), lost_searches=("lost", "sum"),
        ended_share=("ended_session", "mean"))
    g.insert(0, "query", _spelling(z).reindex(g.index))
    g["lost_searches"] = g["lost_searches"].astype("int64")
    g["lost_share"] = g["lost_searches"] / g["searches"]
    g["lost_low"], g["lost_high"] = wilson_interval(g["lost_searches"], g["searches"], alpha)
    g = g.reset_index().sort_values(["searches", "query_norm"], ascending=[False, True], ignore_index=True)
    return g[cols].head(n)


def search_conversion(sessions_df: pd.DataFrame, *, alpha: float = 0.05) -> dict[str, Any]:
    """Conversion of sessions with a search against sessions without one.

    Parameters
    ----------
    sessions_df : DataFrame
        :func:`crm_analytics.models.behaviour.sessions` (``searches`` and ``converted``).

    Returns
    -------
    dict
        ``table``: DataFrame ``group`` (with search / without search), ``sessions, conversions,
        rate, rate_low, rate_high``; ``difference`` (with − without) with ``low``/``high``
        (Newcombe), or ``None`` when a group is empty. Descriptive: searchers differ from browsers.
    """
    _need(sessions_df, ["searches", "converted"], "sessions")
    has = sessions_df["searches"].to_numpy() > 0
    y = sessions_df["converted"].to_numpy(bool)
    rows = []
    for name, m in (("with search", has), ("without search", ~has)):
        n, x = int(m.sum()), int(y[m].sum())
        low, high = wilson_interval(x, n, alpha) if n else (np.nan, np.nan)
        rows.append((name, n, x, x / n if n else np.nan, float(low), float(high)))
    table = pd.DataFrame(rows, columns=["group", "sessions", "conversions", "rate", "rate_low", "rate_high"])
    diff = None
    if table["sessions"].gt(0).all():
        (xw, nw), (xo, no) = table[["conversions", "sessions"]].to_numpy()
        lo, hi = newcombe_interval(xw, nw, xo, no, alpha)
        diff = {"difference": float(xw / nw - xo / no), "low": float(lo), "high": float(hi)}
    return {"table": table, "difference": diff}


def viewed_not_bought(searches: Any, *, n: int = 20, min_searches: int = 5) -> pd.DataFrame:
    """Queries whose results were looked at (a product view followed) but whose session bought
    nothing afterwards: demand the assortment, price or product page did not convert.

    Returns
    -------
    DataFrame
        ``query, query_norm, searches_viewed`` (searches followed by a view), ``bought`` (of those,
        followed by a purchase), ``not_bought``, ``not_bought_share``; queries with at least
        *min_searches* viewed searches, most not-bought first.
    """
    if min_searches < 1:
        raise ParamsError(f"min_searches={min_searches!r} must be at least 1")
    s = _searches(searches)
    v = s[s["viewed_after"] & s["query_norm"].notna()]
    cols = ["query", "query_norm", "searches_viewed", "bought", "not_bought", "not_bought_share"]
    if v.empty:
        return pd.DataFrame(columns=cols)
    g = v.groupby("query_norm").agg(searches_viewed=("session_id", "size"), bought=("bought_after", "sum"))
    g.insert(0, "query", _spelling(v).reindex(g.index))
    g["bought"] = g["bought"].astype("int64")
    g["not_bought"] = g["searches_viewed"] - g["bought"]
    g["not_bought_share"] = g["not_bought"] / g["searches_viewed"]
    g = g[g["searches_viewed"] >= min_searches].reset_index()
    g = g.sort_values(["not_bought", "query_norm"], ascending=[False, True], ignore_index=True)
    return g[cols].head(n)


def search_summary(searches: Any, *, alpha: float = 0.05) -> dict[str, Any]:
    """Headline numbers: ``searches, search_sessions, distinct_queries`` (normalised),
    ``zero_result_share`` (with ``_low``/``_high``), ``lost_share`` of zero-result searches
    (no product view followed; missing when there are none)."""
    s = _searches(searches)
    n = int(len(s))
    out: dict[str, Any] = {"searches": n, "search_sessions": int(s["session_id"].nunique()),
                           "distinct_queries": int(s["query_norm"].nunique())}
    if n:
        z = int(s["zero_results"].sum())
        low, high = wilson_interval(z, n, alpha)
        out.update(zero_result_share=z / n, zero_result_share_low=float(low), zero_result_share_high=float(high))
        zs = s[s["zero_results"]]
        out["lost_share"] = float((~zs["viewed_after"]).mean()) if len(zs) else None
    return out

"""Behavioural clusters: per-customer behaviour features (:func:`behaviour_features`), k-means or
Gaussian-mixture clusters with k chosen on a curve (:func:`cluster_customers`), plain-words
descriptions (:func:`describe_clusters`) and seed stability (:func:`seed_stability`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from crm_analytics import i18n
from crm_analytics.errors import CrmAnalyticsError, DataContractError, ModelFitError, ParamsError
from crm_analytics.features.customer import customer_features
from crm_analytics.features.rfm import _require_table, purchase_rows
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ParquetTable, columns_of, ibis_table, local_ibis
from crm_analytics.models.segmentation._common import _require, _slug, _timestamp, _utc_naive
from crm_analytics.models.segmentation.lifecycle import _sessions

__all__ = ["behaviour_features", "ClusterResult", "cluster_customers", "describe_clusters", "seed_stability"]


def _label(value: Any) -> str:
    return "unknown" if pd.isna(value) else _slug(value)


def _category_shares_engine(orders: Any, order_lines: Any, products: pd.DataFrame, as_of: pd.Timestamp,
                            top_categories: int) -> pd.DataFrame:
    """The ``cat_share_<category>`` columns of :func:`behaviour_features` computed in the engine: the order
    lines (48 M of them for a 10,000,000-customer shop) are joined with the bought orders and summed per
    customer and category where they lie; only one row per customer comes back."""
    import ibis

    prods = products.drop_duplicates("product_id")
    labels = pd.DataFrame({"product_id": prods["product_id"].reset_index(drop=True),
                           "label": pd.array(prods["category"].map(_label, na_action=None), dtype="string")})
    with local_ibis() as db:
        bought = purchase_rows(db, orders, as_of, columns=["order_id"]).select("order_id", "customer_id")
        lines = ibis_table(db, order_lines, ["order_id", "product_id", "quantity", "unit_price"])
        cats = db.table(labels)
        j = lines.join(bought, "order_id").left_join(cats, "product_id")
        value = (j.quantity.cast("float64") * j.unit_price.cast("float64")).fill_null(0.0)
        j = j.select("customer_id", label=j.label.fill_null("unknown"), value=ibis.greatest(value, 0.0))
        totals = j.group_by("label").aggregate(value=j.value.sum()).to_pyarrow().to_pandas()
        if totals.empty:
            return pd.DataFrame(index=pd.Index([], name="customer_id"))
        by_label = totals.set_index("label")["value"].sort_index()
        top = list(by_label.sort_values(ascending=False, kind="stable").index[:top_categories])
        names = sorted(set(top) | ({"other"} if len(by_label) > len(top) else set()))
        # as pandas: categories outside the top ones become "other" (with a real category of that name)
        conds = {name: (j.label == name) if name != "other" else (j.label == name) | ~j.label.isin(top)
                 for name in names}
        sums = {f"v_{i}": ibis.ifelse(conds[name], j.value, 0.0).sum() for i, name in enumerate(names)}
        per = j.group_by("customer_id").aggregate(total=j.value.sum(), **sums)
        got = per.to_pyarrow().to_pandas().set_index("customer_id")
    total = got["total"]
    val = pd.DataFrame({name: got[f"v_{i}"] for i, name in enumerate(names)}, index=got.index)
    val.columns = pd.Index(names, dtype="string")  # as pandas.crosstab names them
    return val.div(total.where(total > 0), axis=0).add_prefix("cat_share_")


def behaviour_features(orders: pd.DataFrame | ParquetTable, order_lines: pd.DataFrame | ParquetTable | None,
                       products: pd.DataFrame | None, events: pd.DataFrame | ParquetTable | None,
                       tickets: pd.DataFrame | ParquetTable | None, as_of: Any, *,
                       top_categories: int = 6) -> pd.DataFrame:
    """Behavioural features of every customer with a purchase by *as_of* (data up to *as_of* only).

    Columns (optional tables that are ``None`` or lack a column simply leave theirs out):

    - ``log_recency_days``, ``log_orders``, ``log_revenue``, ``log_avg_basket``: ``log1p`` of the
      RFM values (days, number of orders, revenue) and the mean order value;
    - ``returned_share``: share of purchases returned;
    - ``channel_share_<channel>``: share of purchases per order channel (of those with a known channel);
    - ``cat_share_<category>``: share of line value (quantity × unit_price) per product category, the
      *top_categories* largest by value overall, the rest in ``cat_share_other``;
    - ``discount_share``: share of order lines with a discount > 0;
    - ``log_sessions``: ``log1p`` of the number of sessions (events, devices stitched);
    - ``complaints``: number of tickets opened.

    Orders, order lines, events and tickets may be DataFrames or
    :class:`~crm_analytics.ingest.tables.ParquetTable` handles (``tables.clean_table``): handles are
    aggregated in the engine (:func:`crm_analytics.features.customer.customer_features`, the category
    shares, the sessions), so only per-customer figures are loaded.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, all numeric, no missing values.
    """
    as_of = _timestamp(as_of, "as_of")
    cut = as_of.tz_localize(None)
    # the per-customer figures every notebook shares come from the one feature layer
    tables = {"orders": orders, "order_lines": order_lines, "tickets": tickets}
    try:
        shared = customer_features({k: v for k, v in tables.items() if v is not None}, as_of)
    except ModelFitError as exc:
        raise CrmAnalyticsError(f"no purchase on or before {as_of:%Y-%m-%d}; move as_of later") from exc
    f = pd.DataFrame({
        "log_recency_days": np.log1p(shared["recency_days"].clip(lower=0)),
        "log_orders": np.log1p(shared["orders"]),
        "log_revenue": np.log1p(shared["revenue"].clip(lower=0)),
        "log_avg_basket": np.log1p(shared["aov"].clip(lower=0)),
        "returned_share": shared["returned_share"],
    }, index=shared.index)
    f = f.join(shared[[c for c in shared.columns if c.startswith("channel_share_")]])
    if "discount_share" in shared:
        f["discount_share"] = shared["discount_share"]
    engine = isinstance(orders, ParquetTable) or isinstance(order_lines, ParquetTable)
    if engine and order_lines is not None and "order_id" in columns_of(orders):
        _require_table(order_lines, ["order_id"], "order_lines")
        if products is not None and {"product_id", "quantity", "unit_price"} <= set(columns_of(order_lines)):
            _require(products, ["product_id", "category"], "products")
            f = f.join(_category_shares_engine(orders, order_lines, products, as_of, top_categories))
    elif order_lines is not None and "order_id" in orders:
        _require(order_lines, ["order_id"], "order_lines")
        ts = _utc_naive(orders["order_ts"], "orders.order_ts")
        mask = (orders["customer_id"].notna() & orders["status"].isin(PURCHASE_STATUSES)).to_numpy() & (ts <= cut).to_numpy()
        bought = orders.loc[mask]
        lines = order_lines.merge(bought[["order_id", "customer_id"]], on="order_id", how="inner")
        if products is not None and {"product_id", "quantity", "unit_price"} <= set(lines.columns):
            _require(products, ["product_id", "category"], "products")
            cat = lines["product_id"].map(products.drop_duplicates("product_id").set_index("product_id")["category"])
            value = (pd.to_numeric(lines["quantity"], errors="coerce") *
                     pd.to_numeric(lines["unit_price"], errors="coerce")).fillna(0).clip(lower=0)
            cat = cat.map(_label, na_action=None)
            top = value.groupby(cat).sum().sort_values(ascending=False, kind="stable").index[:top_categories]
            cat = cat.where(cat.isin(top), "other")
            val = pd.crosstab(lines["customer_id"], cat, values=value, aggfunc="sum").fillna(0)
            total = val.sum(axis=1)
            f = f.join(val.div(total.where(total > 0), axis=0).add_prefix("cat_share_"))
    if events is not None:
        sess = _sessions(events, as_of)
        sess = sess[sess["visitor_type"] == "customer"].set_index("visitor_id")["sessions"]
        f["log_sessions"] = np.log1p(sess.reindex(f.index).fillna(0).to_numpy(dtype="float64"))
    if "complaints" in shared:
        f["complaints"] = shared["complaints"].to_numpy(dtype="float64")
    f = f.fillna(0.0).astype("float64")
    f.index.name = "customer_id"
    return f


@dataclass(frozen=True)
class ClusterResult:
    """Outcome of :func:`cluster_customers`.

    Attributes
    ----------
    labels : Series
        Cluster per customer (0 = the largest cluster), indexed like the features.
    k : int
        Number of clusters chosen.
    method : str
        ``kmeans`` or ``gmm``.
    criterion : str
        ``silhouette`` (higher is better) or ``bic`` (lower is better).
    curve : DataFrame
        Per candidate k: ``silhouette``, ``inertia`` (k-means) or ``bic`` (GMM), ``chosen``.
    centres : DataFrame
        Per cluster mean of every feature in original units (``log_*`` features back-transformed
        with ``expm1`` and renamed without the prefix), plus ``customers`` and ``share``.
    centres_z : DataFrame
        Per cluster mean of every (input) feature in overall standard deviations from the overall mean.
    features : list of str
        The input feature columns used.
    """

    labels: pd.Series
    k: int
    method: str
    criterion: str
    curve: pd.DataFrame
    centres: pd.DataFrame
    centres_z: pd.DataFrame
    features: list[str]

    def describe(self, **kwargs: Any) -> pd.Series:
        """Plain-words description per cluster (:func:`describe_clusters` on ``centres_z``)."""
        return describe_clusters(self.centres_z, self.features, overall=0.0, scale=1.0, **kwargs)


def _feature_matrix(features: pd.DataFrame, columns: Sequence[str] | None) -> tuple[pd.DataFrame, np.ndarray]:
    if not isinstance(features, pd.DataFrame):
        raise DataContractError(f"features must be a DataFrame, not {type(features).__name__}")
    cols = list(columns) if columns is not None else [c for c in features.columns
                                                       if pd.api.types.is_numeric_dtype(features[c])
                                                       and not pd.api.types.is_bool_dtype(features[c])]
    missing = [c for c in cols if c not in features.columns]
    if missing:
        raise DataContractError(f"features has no column(s) {missing}; columns are {list(features.columns)}")
    if not cols:
        raise DataContractError("features has no numeric column to cluster on; build it with behaviour_features()")
    f = features[cols].apply(pd.to_numeric, errors="coerce").astype("float64")
    bad = [c for c in cols if not np.isfinite(f[c].to_numpy()).all()]
    if bad:
        raise DataContractError(f"features column(s) {bad} hold missing or infinite values; fill or drop them first")
    x = f.to_numpy()
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return f, z


def _fit_model(zs: np.ndarray, k: int, method: str, seed: int) -> tuple[Any, dict[str, float]]:
    """Fit one candidate model on the sample; return it and its curve entries."""
    if method == "kmeans":
        model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(zs)
        return model, {"inertia": float(model.inertia_)}
    model = GaussianMixture(n_components=k, covariance_type="full", n_init=2, reg_covar=1e-4,
                            random_state=seed).fit(zs)
    return model, {"bic": float(model.bic(zs))}


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def cluster_customers(features: pd.DataFrame, k_range: Iterable[int] = range(2, 9), method: str = "kmeans",
                      seed: int = 0, *, criterion: str | None = None, sample_size: int = 20_000,
                      silhouette_size: int = 10_000, columns: Sequence[str] | None = None) -> ClusterResult:
    """Cluster customers on standardised behavioural features and choose k.

    Every candidate k is fitted on the same seeded sample of at most *sample_size* rows; k-means
    models are scored by silhouette (on a seeded subsample of at most *silhouette_size* of those
    rows: its cost grows with the square of the rows), Gaussian mixtures by BIC on the sample. The
    chosen model, fitted on the sample, then labels every row, so 1 M customers take seconds.

    Parameters
    ----------
    features : DataFrame
        One row per customer (e.g. :func:`behaviour_features`); numeric columns are used.
    k_range : iterable of int
        Candidate numbers of clusters (each ≥ 2).
    method : {"kmeans", "gmm"}
    seed : int
        Seeds the sample and the model.
    criterion : {"silhouette", "bic"}, optional
        Default: silhouette for k-means, BIC for GMM (BIC needs ``method="gmm"``).
    sample_size : int
        Rows used to fit and score the candidates.
    silhouette_size : int
        Rows of the sample the silhouette is computed on.
    columns : sequence of str, optional
        Feature columns to use (default: all numeric ones).

    Returns
    -------
    ClusterResult
    """
    if method not in ("kmeans", "gmm"):
        raise ParamsError(f"method={method!r} is not supported; use 'kmeans' or 'gmm'")
    criterion = criterion or ("silhouette" if method == "kmeans" else "bic")
    if criterion not in ("silhouette", "bic") or (criterion == "bic" and method != "gmm"):
        raise ParamsError(f"criterion={criterion!r} does not fit method={method!r}; "
                          "use 'silhouette' (kmeans or gmm) or 'bic' (gmm)")
    f, z = _feature_matrix(features, columns)
    ks = sorted({int(k) for k in k_range})
    n = len(f)
    if not ks or ks[0] < 2 or ks[-1] >= n:
        raise ParamsError(f"k_range={ks} must hold whole numbers from 2 to {n - 1} (fewer than the {n} customers)")
    sample = _sample(n, int(sample_size), seed)
    zs = z[sample]
    sil_n = min(len(zs), int(silhouette_size))
    rows, models = [], {}
    # Single-threaded on purpose: on a 2-core machine OpenMP/BLAS thread contention made k-means
    # and GMM fits 10-20x slower than one thread.
    with threadpool_limits(limits=1):
        for k in ks:  # a handful of candidate k, each one vectorised fit
            model, extra = _fit_model(zs, k, method, seed)
            labels_s = model.predict(zs)
            sil = (float(silhouette_score(zs, labels_s, sample_size=sil_n, random_state=seed))
                   if len(np.unique(labels_s)) > 1 else np.nan)
            rows.append({"k": k, "silhouette": sil, **extra})
            models[k] = model
        curve = pd.DataFrame(rows).set_index("k")
        best = int(curve["bic"].idxmin() if criterion == "bic" else curve["silhouette"].idxmax())
        raw = models[best].predict(z)
    curve["chosen"] = curve.index == best
    sizes = pd.Series(raw).value_counts()
    order = sorted(sizes.index, key=lambda c: (-sizes[c], c))
    relabel = np.empty(max(order) + 1, dtype="int64")
    relabel[order] = np.arange(len(order))
    labels = pd.Series(relabel[raw], index=f.index, name="cluster")
    centres_z = pd.DataFrame(z, index=f.index, columns=f.columns).groupby(labels.to_numpy()).mean()
    centres = f.groupby(labels.to_numpy()).mean()
    logs = [c for c in centres.columns if c.startswith("log_")]
    centres[logs] = np.expm1(centres[logs])
    centres = centres.rename(columns={c: c[4:] for c in logs})
    counts = labels.value_counts().sort_index()
    centres["customers"] = counts
    centres["share"] = counts / n
    centres.index.name = centres_z.index.name = "cluster"
    return ClusterResult(labels, best, method, criterion, curve, centres, centres_z, list(f.columns))


#: Words for a feature far above / below average (None: say nothing). Keys are names without ``log_``.
_WORDS: dict[str, tuple[str | None, str | None, str]] = {
    "recency_days": ("lapsed", "recently active", "adj"),
    "orders": ("frequent", "one-off", "adj"),
    "revenue": ("high-spending", "low-spending", "adj"),
    "avg_basket": ("high basket", "small basket", "other"),
    "sessions": ("browse a lot online", "rarely browse online", "other"),
    "complaints": ("complain often", None, "other"),
    "discount_share": ("discount-driven", "pay full price", "other"),
    "returned_share": ("return often", None, "other"),
}


def _english(text: str, /, **values: Any) -> str:
    return text.format(**values) if values else text


#: catalogue key of the templates that put a cluster description together (``cluster description: {traits}
#: buyers``): a template that starts with a field would match any text of that shape in the catalogue
_DESCRIPTION_KEY = "cluster description: "


def _report_words(text: str, /, **values: Any) -> str:
    """A word or template of :func:`describe_clusters` in the report language (templates under
    :data:`_DESCRIPTION_KEY` in the catalogue)."""
    if i18n.language() == "en":
        return _english(text, **values)
    return i18n.t(_DESCRIPTION_KEY + text, **values) if values else i18n.t(text)


def _phrase(name: str, high: bool, say=_english) -> tuple[str | None, str]:
    base = name[4:] if name.startswith("log_") else name
    if base.startswith("channel_share_"):
        return (say(base[len("channel_share_"):].replace("_", " ")) if high else None), "channel"
    if base.startswith("cat_share_"):
        cat = base[len("cat_share_"):]
        return ((cat.replace("_", " ") if cat != "other" else say("other categories")) if high else None), "category"
    if base in _WORDS:
        hi, lo, kind = _WORDS[base]
        word = hi if high else lo
        return (say(word) if word else None), kind
    return say("high {feature}" if high else "low {feature}", feature=base.replace("_", " ")), "other"


def _and(words: list[str], say=_english) -> str:
    """``a and b`` (``a, b and c``) in the report language."""
    if len(words) == 1:
        return words[0]
    return say("{first} and {last}", first=", ".join(words[:-1]), last=words[-1])


def describe_clusters(centres: pd.DataFrame, feature_names: Sequence[str] | None = None, *,
                      overall: Any = None, scale: Any = None, threshold: float = 0.5, top: int = 4,
                      in_report_language: bool = False) -> pd.Series:
    """Describe each cluster in plain words from how its centre deviates from the overall mean.

    Parameters
    ----------
    centres : DataFrame
        One row per cluster, one column per feature (e.g. ``ClusterResult.centres_z``).
    feature_names : sequence of str, optional
        Columns to describe (default: all but ``customers`` and ``share``).
    overall, scale : scalar, Series or None
        Overall mean and spread per feature. Default: the mean and standard deviation across the
        centres (weighted by ``centres["customers"]`` when present). For ``centres_z`` pass 0 and 1.
    threshold : float
        A feature is mentioned when it is at least this many spreads from the mean.
    top : int
        At most this many features are mentioned per cluster, the largest deviations first.
    in_report_language : bool
        Describe in the report language (:func:`crm_analytics.i18n.use`; a category name, which is data, stays
        as it is); by default English, the words of the metrics and the segments file.

    Returns
    -------
    Series
        Text per cluster, e.g. ``"frequent, high-spending buyers via app of cosmetics; high basket"``.
    """
    say = _report_words if in_report_language else _english
    names = list(feature_names) if feature_names is not None else [
        c for c in centres.columns if c not in ("customers", "share")]
    c = centres[names].astype("float64")
    w = centres["customers"].to_numpy(dtype="float64") if "customers" in centres else np.ones(len(c))
    mean = (c.mul(w, axis=0).sum() / w.sum()) if overall is None else overall
    if scale is None:
        sd = np.sqrt(((c - mean) ** 2).mul(w, axis=0).sum() / w.sum())
        scale = sd.where(sd > 0, 1.0)
    dev = (c - mean) / scale
    texts = {}
    for cluster, row in dev.iterrows():  # one row per cluster (a handful), not per customer
        strong = row[row.abs() >= threshold].abs().sort_values(ascending=False, kind="stable").index[:top]
        parts: dict[str, list[str]] = {"adj": [], "channel": [], "category": [], "other": []}
        for name in strong:
            word, kind = _phrase(name, bool(row[name] > 0), say)
            if word:
                parts[kind].append(word)
        if not any(parts.values()):
            texts[cluster] = say("close to the average customer")
            continue
        text = say("{traits} buyers", traits=", ".join(parts["adj"])) if parts["adj"] else say("buyers")
        if parts["channel"]:
            text = say("{buyers} via {channels}", buyers=text, channels=_and(parts["channel"], say))
        if parts["category"]:
            text = say("{buyers} of {categories}", buyers=text, categories=_and(parts["category"], say))
        if parts["other"]:
            text = say("{buyers}; {traits}", buyers=text, traits=", ".join(parts["other"]))
        texts[cluster] = text
    return pd.Series(texts, name="description").rename_axis(centres.index.name)


def seed_stability(features: pd.DataFrame, k: int, seeds: Sequence[int] = (0, 1), method: str = "kmeans", *,
                   sample_size: int = 20_000, columns: Sequence[str] | None = None) -> float:
    """Smallest adjusted Rand index between the clusterings of *features* with different seeds.

    Each seed draws its own sample and initialisation (as :func:`cluster_customers` with k fixed);
    1.0 means identical partitions, values near 0 mean the clusters are an accident of the seed.
    """
    if len(seeds) < 2:
        raise ParamsError(f"seeds={seeds!r}: give at least two seeds to compare")
    labels = [cluster_customers(features, [k], method, s, sample_size=sample_size, columns=columns).labels.to_numpy()
              for s in seeds]
    return float(min(adjusted_rand_score(labels[i], labels[j])
                     for i in range(len(labels)) for j in range(i + 1, len(labels))))

"""Customer segmentation: RFM scores and named segments, lifecycle stages, behavioural
clusters, demographic profiles, segment migration, small-group suppression and consented
marketing exports.

Conventions
-----------
- A *purchase* is an order of a known customer with status completed or returned
  (:func:`crm_analytics.ingest.tables.purchases`); only purchases with ``order_ts <= as_of`` count.
- ``as_of`` is a timestamp (a bare date means its midnight, UTC; a naive timestamp is taken as UTC).
- Per-customer tables are indexed by ``customer_id`` and sorted by it.

Engine
------
:func:`rfm_table` aggregates with DuckDB through Ibis. Benchmarked on 2.8 M orders of
1 M customers (2 cores), the aggregation alone: Ibis + DuckDB 0.9–1.1 s, pandas ``groupby``
1.1–1.7 s, pandas on factorised codes 5.3 s; the whole :func:`rfm_table` call takes 1.1 s.
DuckDB is the faster one, and the same Ibis expression runs on Spark or a warehouse when a
shop outgrows one machine.

Score tie rule
--------------
:func:`rfm_scores` gives a value the score ``1 + floor(bins * share of customers with a
strictly worse value)``. Equal values always get the same score, a better value never gets
a lower score, the worst value always scores 1, and a score of *s* means the customer beats
between ``(s-1)/bins`` and ``s/bins`` of all customers. When most customers bought once, all
of them score ``f = 1`` and the next frequencies jump straight to the score of the share they
beat (e.g. 1, 4, 5): fewer than ``bins`` distinct scores is the honest answer for heavy ties.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from crm_analytics import i18n
from crm_analytics.errors import CrmAnalyticsError, DataContractError, ParamsError
from crm_analytics.ingest.identity import stitch_events
from crm_analytics.ingest.privacy import marketing_consent
from crm_analytics.ingest.tables import PURCHASE_STATUSES, ids_for_keys, local_ibis, sorted_keys

__all__ = [
    "RFM_COLUMNS",
    "SCORE_AXES",
    "DEFAULT_SEGMENT_MAP",
    "NEW_CUSTOMER_LABEL",
    "OTHER_LABEL",
    "STAGES",
    "rfm_table",
    "rfm_scores",
    "validate_segment_map",
    "assign_segments",
    "segment_summary",
    "recognise",
    "stage_trend",
    "behaviour_features",
    "ClusterResult",
    "cluster_customers",
    "describe_clusters",
    "seed_stability",
    "age_band",
    "demographic_profile",
    "demographic_tables",
    "difference_test",
    "Migration",
    "migration",
    "suppress_small",
    "marketing_exports",
]

DAY = pd.Timedelta(days=1)

#: Columns of :func:`rfm_table`.
RFM_COLUMNS = ["recency_days", "frequency", "monetary", "aov", "first_purchase", "last_purchase"]

#: Keys a segment rule may constrain: the r, f and m scores and ``fm`` (mean of f and m, rounded half up).
SCORE_AXES = ("r", "f", "m", "fm")

#: The standard named RFM segments on the R × FM grid (5 × 5 cells), first match wins.
#: ``fm`` = (f + m) / 2 rounded half up. Every one of the 125 (r, f, m) score cells matches a rule.
#:
#: ======  ==================  ==================  ==============  ==========  ===========
#: r \\ fm  1                   2                   3               4           5
#: ======  ==================  ==================  ==============  ==========  ===========
#: 5       New                 Potential loyalists Potential l.    Champions   Champions
#: 4       Promising           Potential loyalists Potential l.    Loyal       Loyal
#: 3       About to sleep      About to sleep      Need attention  Loyal       Loyal
#: 2       Hibernating         Hibernating         At risk         At risk     Can't lose them
#: 1       Lost                Lost                At risk         At risk     Can't lose them
#: ======  ==================  ==================  ==============  ==========  ===========
DEFAULT_SEGMENT_MAP: dict[str, dict[str, list[int]]] = {
    "Champions": {"r": [5, 5], "fm": [4, 5]},
    "Loyal": {"r": [3, 4], "fm": [4, 5]},
    "Potential loyalists": {"r": [4, 5], "fm": [2, 3]},
    "New": {"r": [5, 5], "fm": [1, 1]},
    "Promising": {"r": [4, 4], "fm": [1, 1]},
    "Need attention": {"r": [3, 3], "fm": [3, 3]},
    "About to sleep": {"r": [3, 3], "fm": [1, 2]},
    "Can't lose them": {"r": [1, 2], "fm": [5, 5]},
    "At risk": {"r": [1, 2], "fm": [3, 4]},
    "Hibernating": {"r": [2, 2], "fm": [1, 2]},
    "Lost": {"r": [1, 1], "fm": [1, 2]},
}

#: Row label of :func:`migration` for customers who had not bought yet at the earlier date.
NEW_CUSTOMER_LABEL = "New (not yet a customer)"

#: Label that :func:`suppress_small` gives merged small groups.
OTHER_LABEL = "Other (small groups)"

#: Lifecycle stages of :func:`recognise`, in funnel order. ``registered_only`` (a known customer
#: with neither a session nor a purchase) appears only when both events and customers are given.
STAGES = ("registered_only", "first_time_visitor", "returning_visitor", "one_time_buyer", "repeat_buyer",
          "lapsed_buyer")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def _timestamp(value: Any, name: str) -> pd.Timestamp:
    """*value* as a tz-aware UTC timestamp (naive values are taken as UTC)."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"{name}={value!r} is not a date or timestamp; pass e.g. '2025-06-30'") from exc
    if ts is pd.NaT:
        raise ParamsError(f"{name} is missing; pass a date such as '2025-06-30'")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _require(df: Any, columns: Sequence[str], table: str) -> None:
    """Raise a DataContractError unless *df* is a DataFrame holding *columns*."""
    if not isinstance(df, pd.DataFrame):
        raise DataContractError(f"{table} must be a pandas DataFrame, not {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataContractError(
            f"{table} has no column(s) {missing}; columns are {list(df.columns)}. "
            f"Pass the clean canonical {table} table (crm_analytics.ingest.tables.read_clean)."
        )


def _utc_naive(ts: pd.Series, where: str) -> pd.Series:
    """A timestamp column as naive UTC (naive input is taken as UTC)."""
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise DataContractError(f"{where} has dtype {ts.dtype}, not a timestamp; parse it with pd.to_datetime first")
    return ts.dt.tz_convert("UTC").dt.tz_localize(None) if ts.dt.tz is not None else ts


def _customer_index(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """*df* indexed by customer_id (from the index or a column)."""
    if df.index.name == "customer_id":
        return df
    if "customer_id" in df.columns:
        return df.set_index("customer_id")
    raise DataContractError(f"{where} needs customer_id as its index or as a column; columns are {list(df.columns)}")


def _slug(text: str) -> str:
    """File-name-safe lower-case slug (letters of any script kept): ``"Can't lose them"`` → ``"cant_lose_them"``."""
    s = re.sub(r"\W+", "_", str(text).lower().replace("'", "").replace("’", "")).strip("_")
    return s or "segment"


# --------------------------------------------------------------------------------------------
# 1. RFM table
# --------------------------------------------------------------------------------------------
def _purchase_frame(orders: pd.DataFrame) -> pd.DataFrame:
    """Validated ``customer_id, ts (naive UTC), status, amount`` of all orders."""
    _require(orders, ["customer_id", "order_ts", "status", "order_total"], "orders")
    # keep the columns' own (Arrow-backed) dtypes: going through numpy object arrays costs more than the query
    frame = orders[["customer_id", "order_ts", "status", "order_total"]].reset_index(drop=True)
    frame = frame.rename(columns={"order_ts": "ts", "order_total": "amount"})
    frame["ts"] = _utc_naive(frame["ts"], "orders.order_ts")
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    return frame


def rfm_table(orders: pd.DataFrame, as_of: Any) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer, from purchases up to *as_of*.

    Parameters
    ----------
    orders : DataFrame
        Clean canonical orders (``customer_id, order_ts, status, order_total``). Non-purchases
        (cancelled orders, orders without a customer) are left out here.
    as_of : date or timestamp
        Only orders with ``order_ts <= as_of`` count; recency is measured from it.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id`` (sorted): ``recency_days`` (float days from the last purchase
        to *as_of*), ``frequency`` (number of purchase orders), ``monetary`` (sum of order_total),
        ``aov`` (monetary / frequency), ``first_purchase`` and ``last_purchase`` (UTC). Empty when
        nobody bought by *as_of*.

    Examples
    --------
    >>> o = pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["a", "a"], "status": ["completed"] * 2,
    ...                   "order_ts": pd.to_datetime(["2024-01-01", "2024-01-11"], utc=True),
    ...                   "order_total": [10.0, 30.0]})
    >>> rfm_table(o, "2024-01-21")[["recency_days", "frequency", "monetary", "aov"]].to_dict("index")
    {'a': {'recency_days': 10.0, 'frequency': 2, 'monetary': 40.0, 'aov': 20.0}}
    """
    as_of = _timestamp(as_of, "as_of")
    frame = pa.Table.from_pandas(_purchase_frame(orders), preserve_index=False)
    key, ids = sorted_keys(frame["customer_id"].combine_chunks())
    if key is not None:  # the clean orders are sorted by customer: group integer keys, not text
        frame = frame.set_column(frame.schema.get_field_index("customer_id"), "customer_id", key)
    cut = as_of.tz_localize(None)
    with local_ibis() as db:
        t = db.table(frame)
        t = t.filter(t.customer_id.notnull() & t.status.isin(list(PURCHASE_STATUSES)) & (t.ts <= cut))
        expr = t.group_by("customer_id").aggregate(
            first_purchase=t.ts.min(), last_purchase=t.ts.max(), frequency=t.count(), monetary=t.amount.sum()
        ).order_by("customer_id")
        got = expr.to_pyarrow()
    out = ids_for_keys(got, ids).to_pandas().set_index("customer_id")
    first = pd.to_datetime(out["first_purchase"]).dt.tz_localize("UTC")
    last = pd.to_datetime(out["last_purchase"]).dt.tz_localize("UTC")
    freq = out["frequency"].astype("int64")
    monetary = out["monetary"].astype("float64").fillna(0.0)
    result = pd.DataFrame({
        "recency_days": ((as_of - last) / DAY).astype("float64"),
        "frequency": freq,
        "monetary": monetary,
        "aov": monetary / freq.where(freq > 0),
        "first_purchase": first,
        "last_purchase": last,
    }, index=out.index)
    result.index.name = "customer_id"
    result.attrs["as_of"] = as_of.isoformat()
    return result


# --------------------------------------------------------------------------------------------
# 2. Scores
# --------------------------------------------------------------------------------------------
def _score(values: pd.Series, bins: int, higher_is_better: bool = True) -> np.ndarray:
    """``1 + floor(bins * share strictly worse)``: ties equal, monotone, worst value scores 1."""
    v = values.astype("float64")
    if not higher_is_better:
        v = -v
    worse = v.rank(method="min").to_numpy() - 1.0  # number of customers with a strictly worse value
    return (1 + np.floor(bins * worse / len(v))).astype("int64")


def rfm_scores(rfm: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Quantile scores 1..*bins* for recency, frequency and monetary value.

    Parameters
    ----------
    rfm : DataFrame
        Output of :func:`rfm_table` (``recency_days, frequency, monetary``).
    bins : int
        Number of score levels (5 for the usual RFM grid).

    Returns
    -------
    DataFrame
        *rfm* with ``r_score``, ``f_score``, ``m_score`` (int) and ``fm_score`` (mean of f and m
        rounded half up). Recency is reversed: the most recent buyers score highest.

    Notes
    -----
    Tie rule (see the module notes): score = ``1 + floor(bins * share of customers with a
    strictly worse value)``; equal values always share a score.
    """
    _require(rfm, ["recency_days", "frequency", "monetary"], "rfm")
    if not isinstance(bins, (int, np.integer)) or isinstance(bins, bool) or bins < 2:
        raise ParamsError(f"bins={bins!r} must be a whole number ≥ 2 (5 for the usual RFM grid)")
    for col in ("recency_days", "frequency", "monetary"):
        n_bad = int(pd.to_numeric(rfm[col], errors="coerce").isna().sum())
        if n_bad:
            raise DataContractError(f"rfm.{col} has {n_bad} missing or non-numeric value(s); build it with rfm_table()")
    out = rfm.copy()
    if len(out) == 0:
        for col in ("r_score", "f_score", "m_score", "fm_score"):
            out[col] = pd.Series(dtype="int64")
        return out
    out["r_score"] = _score(out["recency_days"], bins, higher_is_better=False)
    out["f_score"] = _score(out["frequency"], bins)
    out["m_score"] = _score(out["monetary"], bins)
    out["fm_score"] = _fm(out["f_score"].to_numpy(), out["m_score"].to_numpy())
    return out


def _fm(f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mean of the f and m scores rounded half up (not to even)."""
    return np.floor((np.asarray(f) + np.asarray(m)) / 2 + 0.5).astype("int64")


# --------------------------------------------------------------------------------------------
# 3. Named segments
# --------------------------------------------------------------------------------------------
def _parse_range(value: Any, bins: int) -> tuple[tuple[int, int] | None, str | None]:
    """``[lo, hi]`` (or one number) as a pair, or the reason it is not one."""
    vals = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    if not isinstance(vals, (list, tuple)) or len(vals) not in (1, 2) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        return None, f"must be [lo, hi] with whole numbers, e.g. [4, 5]; got {value!r}"
    lo, hi = int(vals[0]), int(vals[-1])
    if lo > hi:
        return None, f"[{lo}, {hi}] has lo > hi"
    if lo < 1 or hi > bins:
        return None, f"[{lo}, {hi}] is outside the scores 1..{bins}"
    return (lo, hi), None


def validate_segment_map(mapping: Mapping[str, Mapping[str, Any]], bins: int = 5
                         ) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """Check a segment map and return it as ordered ``(name, {axis: (lo, hi)})`` rules.

    Parameters
    ----------
    mapping : mapping
        ``{segment name: {axis: [lo, hi], ...}}`` in priority order (first match wins); axes are
        ``r``, ``f``, ``m`` and ``fm``; an axis left out matches any score; ``{}`` matches everyone.
    bins : int
        Score levels of the scores it will be applied to.

    Raises
    ------
    ParamsError
        Listing every problem: not a mapping, unknown keys, bad or out-of-range ranges, and the
        (r, f, m) score cells no rule covers.
    """
    if not isinstance(mapping, Mapping) or not mapping:
        raise ParamsError(
            f"segment map must be a non-empty mapping {{name: {{r: [lo, hi], f: [lo, hi]}}}}, got {mapping!r}"
        )
    problems: list[str] = []
    rules: list[tuple[str, dict[str, tuple[int, int]]]] = []
    for name, rule in mapping.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"segment name {name!r} must be non-empty text")
        if not isinstance(rule, Mapping):
            problems.append(f"segment {name!r}: rule must be a mapping like {{r: [4, 5], f: [4, 5]}}, got {rule!r}")
            continue
        unknown = [k for k in rule if k not in SCORE_AXES]
        if unknown:
            problems.append(f"segment {name!r}: unknown key(s) {unknown}; allowed keys are {list(SCORE_AXES)}")
        parsed: dict[str, tuple[int, int]] = {}
        for axis in SCORE_AXES:
            if axis in rule:
                rng, err = _parse_range(rule[axis], bins)
                if err:
                    problems.append(f"segment {name!r}: {axis} {err}")
                else:
                    parsed[axis] = rng
        rules.append((str(name), parsed))
    if not problems:
        grid = np.array(np.meshgrid(*[np.arange(1, bins + 1)] * 3, indexing="ij")).reshape(3, -1)
        cells = {"r": grid[0], "f": grid[1], "m": grid[2], "fm": _fm(grid[1], grid[2])}
        covered = np.zeros(grid.shape[1], dtype=bool)
        for _, parsed in rules:
            covered |= _rule_mask(parsed, cells)
        if not covered.all():
            miss = grid[:, ~covered].T
            shown = ", ".join(f"(r={r}, f={f}, m={m})" for r, f, m in miss[:8])
            problems.append(
                f"{len(miss)} of {grid.shape[1]} score cells match no rule, e.g. {shown}"
                f"{' …' if len(miss) > 8 else ''}; widen a range or end with a catch-all rule such as Other: {{}}"
            )
    if problems:
        raise ParamsError("segment map is invalid:\n  - " + "\n  - ".join(problems))
    return rules


def _rule_mask(rule: Mapping[str, tuple[int, int]], cells: Mapping[str, np.ndarray]) -> np.ndarray:
    n = len(next(iter(cells.values())))
    mask = np.ones(n, dtype=bool)
    for axis, (lo, hi) in rule.items():
        mask &= (cells[axis] >= lo) & (cells[axis] <= hi)
    return mask


def assign_segments(scores: pd.DataFrame, mapping: Mapping[str, Mapping[str, Any]] | None = None,
                    bins: int = 5) -> pd.DataFrame:
    """Name each customer's segment from the r, f, m scores; the first matching rule wins.

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`rfm_scores` (``r_score, f_score, m_score``).
    mapping : mapping, optional
        A segment map (see :func:`validate_segment_map`), e.g. from params; default
        :data:`DEFAULT_SEGMENT_MAP`.
    bins : int
        Score levels the scores were made with.

    Returns
    -------
    DataFrame
        *scores* with ``fm_score`` and ``segment`` (categorical, categories in map order).
    """
    rules = validate_segment_map(DEFAULT_SEGMENT_MAP if mapping is None else mapping, bins)
    _require(scores, ["r_score", "f_score", "m_score"], "scores")
    out = scores.copy()
    cells: dict[str, np.ndarray] = {}
    for axis in ("r", "f", "m"):
        col = pd.to_numeric(out[f"{axis}_score"], errors="coerce").to_numpy(dtype="float64")
        bad = ~np.isfinite(col) | (col < 1) | (col > bins) | (col != np.round(col))
        if bad.any():
            raise DataContractError(
                f"scores.{axis}_score has {int(bad.sum())} value(s) that are not whole numbers 1..{bins}; "
                "make the scores with rfm_scores()"
            )
        cells[axis] = col.astype("int64")
    cells["fm"] = _fm(cells["f"], cells["m"])
    out["fm_score"] = cells["fm"]
    names = [name for name, _ in rules]
    conds = [_rule_mask(rule, cells) for _, rule in rules]
    seg = np.select(conds, np.array(names, dtype=object), default=None) if len(out) else np.array([], dtype=object)
    out["segment"] = pd.Categorical(seg, categories=list(dict.fromkeys(names)))
    return out


def segment_summary(rfm_with_segment: pd.DataFrame, segment_col: str = "segment") -> pd.DataFrame:
    """Size and value of every segment.

    Returns
    -------
    DataFrame
        Indexed by segment (map order, empty segments left out): ``customers``, ``customer_share``,
        ``revenue``, ``revenue_share``, ``orders``, ``aov`` (revenue / orders), ``orders_per_customer``,
        ``revenue_per_customer`` and ``mean_days_since_last_order``.
    """
    _require(rfm_with_segment, [segment_col, "frequency", "monetary", "recency_days"], "rfm_with_segment")
    g = rfm_with_segment.groupby(segment_col, observed=True, sort=True)
    out = pd.DataFrame({
        "customers": g.size(),
        "revenue": g["monetary"].sum(),
        "orders": g["frequency"].sum(),
        "mean_days_since_last_order": g["recency_days"].mean(),
    })
    out.insert(1, "customer_share", out["customers"] / out["customers"].sum())
    out.insert(3, "revenue_share", out["revenue"] / out["revenue"].sum() if out["revenue"].sum() else np.nan)
    out["aov"] = out["revenue"] / out["orders"]
    out["orders_per_customer"] = out["orders"] / out["customers"]
    out["revenue_per_customer"] = out["revenue"] / out["customers"]
    out = out[["customers", "customer_share", "revenue", "revenue_share", "orders", "aov", "orders_per_customer",
               "revenue_per_customer", "mean_days_since_last_order"]]
    out.index = out.index.astype(str)
    out.index.name = segment_col
    return out


# --------------------------------------------------------------------------------------------
# 5. Lifecycle stages
# --------------------------------------------------------------------------------------------
def _sessions(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Sessions per visitor up to *as_of*: ``visitor_type, visitor_id, sessions``.

    Devices are stitched to customers with :func:`crm_analytics.ingest.identity.stitch_events`, using only
    events up to *as_of* (what was known then).
    """
    _require(events, ["ts", "customer_id", "anonymous_id", "session_id"], "events")
    ts = _utc_naive(events["ts"], "events.ts")
    ev = events.loc[(ts <= as_of.tz_localize(None)).to_numpy(), ["customer_id", "anonymous_id", "session_id"]]
    ev, _ = stitch_events(ev)
    known = ev["customer_id"].notna()
    ev = pd.DataFrame({
        "visitor_type": np.where(known, "customer", "anonymous"),
        "visitor_id": ev["customer_id"].astype(object).where(known, ev["anonymous_id"].astype(object)).to_numpy(),
        "session_id": ev["session_id"].to_numpy(),
    })
    ev = ev[ev["visitor_id"].notna() & ev["session_id"].notna()]
    return ev.groupby(["visitor_type", "visitor_id"], sort=False)["session_id"].nunique().rename("sessions").reset_index()


def recognise(orders: pd.DataFrame, events: pd.DataFrame | None, customers: pd.DataFrame | None, as_of: Any,
              lapsed_after_days: float = 180) -> pd.DataFrame:
    """Lifecycle stage of every known customer and anonymous visitor at *as_of*.

    Stages: ``lapsed_buyer`` (last purchase more than *lapsed_after_days* ago), else ``repeat_buyer``
    (≥ 2 purchases), ``one_time_buyer``; people without a purchase: ``returning_visitor`` (≥ 2
    sessions), ``first_time_visitor`` (one session); with *customers* also ``registered_only``
    (a customer signed up by *as_of* with no session and no purchase).

    Parameters
    ----------
    orders : DataFrame
        Clean orders.
    events : DataFrame or None
        Clean events (``ts, customer_id, anonymous_id, session_id``). ``None``: only buyers are staged.
        Anonymous devices seen with exactly one customer are that customer (identity stitching);
        other anonymous visitors are counted by ``anonymous_id``.
    customers : DataFrame or None
        Clean customers; adds ``registered_only`` customers when events are given.
    as_of : date or timestamp
    lapsed_after_days : float
        A buyer whose last purchase is older than this is lapsed.

    Returns
    -------
    DataFrame
        ``visitor_type`` (customer / anonymous), ``visitor_id``, ``stage`` (categorical, :data:`STAGES`
        order), ``sessions`` (missing when *events* is ``None``), ``purchases``, ``days_since_last_purchase``
        (missing for non-buyers).
    """
    as_of = _timestamp(as_of, "as_of")
    if not np.isfinite(lapsed_after_days) or lapsed_after_days <= 0:
        raise ParamsError(f"lapsed_after_days={lapsed_after_days!r} must be a positive number of days")
    rfm = rfm_table(orders, as_of)
    people = pd.DataFrame({
        "visitor_type": "customer",
        "visitor_id": rfm.index.astype(object),
        "purchases": rfm["frequency"].to_numpy(),
        "days_since_last_purchase": rfm["recency_days"].to_numpy(),
    })
    if events is not None:
        people = people.merge(_sessions(events, as_of), on=["visitor_type", "visitor_id"], how="outer")
        if customers is not None:
            _require(customers, ["customer_id"], "customers")
            reg = customers
            if "signup_ts" in customers:
                signup = _utc_naive(customers["signup_ts"], "customers.signup_ts")
                reg = customers.loc[(signup.isna() | (signup <= as_of.tz_localize(None))).to_numpy()]
            ids = pd.Index(reg["customer_id"].dropna().astype(object).unique())
            ids = ids.difference(people.loc[people["visitor_type"] == "customer", "visitor_id"])
            people = pd.concat([people, pd.DataFrame({"visitor_type": "customer", "visitor_id": ids})],
                               ignore_index=True)
    else:
        people["sessions"] = np.nan
    people["purchases"] = people["purchases"].fillna(0).astype("int64")
    sessions = people["sessions"].fillna(0).to_numpy()
    buys = people["purchases"].to_numpy()
    stage = np.select(
        [(buys == 0) & (sessions == 0), (buys == 0) & (sessions == 1), (buys == 0) & (sessions >= 2),
         people["days_since_last_purchase"].to_numpy() > lapsed_after_days, buys >= 2],
        ["registered_only", "first_time_visitor", "returning_visitor", "lapsed_buyer", "repeat_buyer"],
        default="one_time_buyer",
    )
    people["stage"] = pd.Categorical(stage, categories=list(STAGES))
    people["sessions"] = people["sessions"].astype("float64") if events is None else \
        people["sessions"].fillna(0).astype("int64")
    people = people.sort_values(["visitor_type", "visitor_id"], kind="stable", ignore_index=True)
    return people[["visitor_type", "visitor_id", "stage", "sessions", "purchases", "days_since_last_purchase"]]


def stage_trend(orders: pd.DataFrame, events: pd.DataFrame | None = None, freq: str = "M", *,
                customers: pd.DataFrame | None = None, lapsed_after_days: float = 180) -> pd.DataFrame:
    """Number of people in each lifecycle stage at the end of every period.

    Parameters
    ----------
    orders, events, customers
        As for :func:`recognise`.
    freq : str
        A pandas period frequency: ``"M"`` months, ``"Q"`` quarters, ``"W"`` weeks.

    Returns
    -------
    DataFrame
        One row per period (index: period label) with ``as_of`` (period end, or the last
        observed timestamp for the final, unfinished period), ``complete`` (whether the period had
        ended by then) and one count column per stage of :data:`STAGES`.
    """
    _require(orders, ["order_ts"], "orders")
    stamps = [_utc_naive(orders["order_ts"], "orders.order_ts")]
    if events is not None:
        _require(events, ["ts"], "events")
        stamps.append(_utc_naive(events["ts"], "events.ts"))
    ts = pd.concat(stamps).dropna()
    if ts.empty:
        raise DataContractError("stage_trend: orders (and events) hold no timestamps")
    try:
        periods = pd.period_range(ts.min(), ts.max(), freq=freq)
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"freq={freq!r} is not a pandas period frequency; use 'M', 'Q' or 'W'") from exc
    last = ts.max()
    rows = []
    for p in periods:  # one vectorised recognise() per period (tens of periods), not per customer
        end = min(p.end_time.floor("us"), last)
        counts = recognise(orders, events, customers, end, lapsed_after_days)["stage"].value_counts()
        rows.append({"period": str(p), "as_of": end.tz_localize("UTC"), "complete": bool(p.end_time <= last),
                     **{s: int(counts.get(s, 0)) for s in STAGES}})
    out = pd.DataFrame(rows).set_index("period")
    if events is None or customers is None:
        out = out.drop(columns=["registered_only"])
    if events is None:
        out = out.drop(columns=["first_time_visitor", "returning_visitor"])
    return out


# --------------------------------------------------------------------------------------------
# 6. Behavioural features and clusters
# --------------------------------------------------------------------------------------------
def _label(value: Any) -> str:
    return "unknown" if pd.isna(value) else _slug(value)


def behaviour_features(orders: pd.DataFrame, order_lines: pd.DataFrame | None, products: pd.DataFrame | None,
                       events: pd.DataFrame | None, tickets: pd.DataFrame | None, as_of: Any, *,
                       top_categories: int = 6) -> pd.DataFrame:
    """Behavioural features of every customer with a purchase by *as_of* (data up to *as_of* only).

    Columns (optional tables that are ``None`` or lack a column simply leave theirs out):

    - ``log_recency_days``, ``log_frequency``, ``log_monetary``, ``log_avg_basket``: ``log1p`` of
      the RFM values and the mean order value;
    - ``returned_share``: share of purchases returned;
    - ``channel_share_<channel>``: share of purchases per order channel;
    - ``cat_share_<category>``: share of line value (quantity × unit_price) per product category, the
      *top_categories* largest by value overall, the rest in ``cat_share_other``;
    - ``discount_share``: share of order lines with a discount > 0;
    - ``log_sessions``: ``log1p`` of the number of sessions (events, devices stitched);
    - ``complaints``: number of tickets opened.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``, all numeric, no missing values.
    """
    as_of = _timestamp(as_of, "as_of")
    cut = as_of.tz_localize(None)
    rfm = rfm_table(orders, as_of)
    if rfm.empty:
        raise CrmAnalyticsError(f"no purchase on or before {as_of:%Y-%m-%d}; move as_of later")
    f = pd.DataFrame({
        "log_recency_days": np.log1p(rfm["recency_days"].clip(lower=0)),
        "log_frequency": np.log1p(rfm["frequency"]),
        "log_monetary": np.log1p(rfm["monetary"].clip(lower=0)),
        "log_avg_basket": np.log1p(rfm["aov"].clip(lower=0)),
    }, index=rfm.index)
    ts = _utc_naive(orders["order_ts"], "orders.order_ts")
    mask = (orders["customer_id"].notna() & orders["status"].isin(PURCHASE_STATUSES)).to_numpy() & (ts <= cut).to_numpy()
    bought = orders.loc[mask]
    f["returned_share"] = (bought["status"] == "returned").groupby(bought["customer_id"]).mean()
    if "channel" in bought:
        ch = bought["channel"].map(_label, na_action=None)
        f = f.join(pd.crosstab(bought["customer_id"], ch, normalize="index").add_prefix("channel_share_"))
    if order_lines is not None and "order_id" in bought:
        _require(order_lines, ["order_id"], "order_lines")
        lines = order_lines.merge(bought[["order_id", "customer_id"]], on="order_id", how="inner")
        if "discount" in lines:
            has_disc = pd.to_numeric(lines["discount"], errors="coerce").fillna(0) > 0
            f["discount_share"] = has_disc.groupby(lines["customer_id"]).mean()
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
    if tickets is not None:
        _require(tickets, ["customer_id"], "tickets")
        tk = tickets[tickets["customer_id"].notna()]
        if "opened_ts" in tk:
            tk = tk.loc[(_utc_naive(tk["opened_ts"], "tickets.opened_ts") <= cut).to_numpy()]
        f["complaints"] = tk.groupby("customer_id").size().reindex(f.index).fillna(0).to_numpy(dtype="float64")
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
    "frequency": ("frequent", "one-off", "adj"),
    "monetary": ("high-spending", "low-spending", "adj"),
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


# --------------------------------------------------------------------------------------------
# 7. Demographics
# --------------------------------------------------------------------------------------------
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
    _require(rfm_seg, [segment_col, "monetary", "frequency"], "rfm_seg")
    _require(customers, ["customer_id"], "customers")
    cust = customers.drop_duplicates("customer_id").set_index("customer_id")
    if as_of is None:
        as_of = rfm_seg.attrs.get("as_of") or (rfm_seg["last_purchase"].max() if "last_purchase" in rfm_seg
                                                else pd.Timestamp.now(tz="UTC"))
    attrs = {}
    for dim in by:
        if dim == "age_band" and "age_band" not in cust:
            _require(cust, ["birth_date"], "customers")
            attrs[dim] = age_band(cust["birth_date"], as_of)
        elif dim in cust:
            attrs[dim] = cust[dim].astype(object)
        else:
            raise DataContractError(f"customers has no column {dim!r} to profile by; columns are "
                                    f"{list(customers.columns)} (age_band is derived from birth_date)")
    demo = pd.DataFrame(attrs, index=cust.index).reindex(rfm_seg.index)
    demo = demo.astype(object).where(demo.notna(), "unknown")
    out = rfm_seg[[segment_col, "monetary", "frequency"]].join(demo)
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
        t = pd.DataFrame({"customers": g.size(), "revenue": g["monetary"].sum(), "orders": g["frequency"].sum()})
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
                    segment_col: str = "segment", value_col: str = "monetary") -> pd.DataFrame:
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
    if value_col != "monetary":
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


# --------------------------------------------------------------------------------------------
# 8. Migration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Migration:
    """Segment moves between two dates (:func:`migration`).

    Attributes
    ----------
    counts : DataFrame
        Customers per (segment at *as_of_prev*, row) × (segment at *as_of_now*, column); the last
        row, :data:`NEW_CUSTOMER_LABEL`, holds customers whose first purchase came after *as_of_prev*.
    revenue_at_stake : DataFrame
        Same cells: the customers' revenue in the *window_days* before *as_of_prev*, summed.
    moves : DataFrame
        Per customer: ``segment_prev``, ``segment_now``, ``revenue_before_prev``.
    """

    counts: pd.DataFrame
    revenue_at_stake: pd.DataFrame
    moves: pd.DataFrame


def _segments_at(orders: pd.DataFrame, as_of: pd.Timestamp, mapping: Mapping | None, bins: int) -> pd.Series:
    return assign_segments(rfm_scores(rfm_table(orders, as_of), bins), mapping, bins)["segment"]


def migration(orders: pd.DataFrame, as_of_prev: Any, as_of_now: Any, mapping: Mapping | None = None, *,
              bins: int = 5, window_days: float = 365) -> Migration:
    """Transition matrix of RFM segments between an earlier and a later date.

    Scores are made separately at each date (each customer ranked against the customers of that
    date). Buying history never shrinks, so every customer at *as_of_prev* has a segment now.

    Parameters
    ----------
    orders : DataFrame
        Clean orders.
    as_of_prev, as_of_now : date or timestamp
        The earlier and the later date.
    mapping : mapping, optional
        Segment map (default :data:`DEFAULT_SEGMENT_MAP`).
    bins : int
        Score levels.
    window_days : float
        Revenue at stake counts purchases in ``(as_of_prev - window_days, as_of_prev]`` (12 months).

    Returns
    -------
    Migration
    """
    prev, now = _timestamp(as_of_prev, "as_of_prev"), _timestamp(as_of_now, "as_of_now")
    if prev >= now:
        raise ParamsError(f"as_of_prev ({prev:%Y-%m-%d}) must be before as_of_now ({now:%Y-%m-%d})")
    seg_now = _segments_at(orders, now, mapping, bins)
    seg_prev = _segments_at(orders, prev, mapping, bins)
    names = list(seg_now.cat.categories)
    frame = _purchase_frame(orders)
    cut_lo, cut_hi = (prev - window_days * DAY).tz_localize(None), prev.tz_localize(None)
    win = frame[frame["customer_id"].notna() & frame["status"].isin(PURCHASE_STATUSES)
                & (frame["ts"] > cut_lo) & (frame["ts"] <= cut_hi)]
    revenue = win.groupby("customer_id")["amount"].sum()
    moves = pd.DataFrame({
        "segment_prev": seg_prev.astype(object).reindex(seg_now.index).fillna(NEW_CUSTOMER_LABEL),
        "segment_now": seg_now.astype(object),
    })
    moves["revenue_before_prev"] = revenue.reindex(moves.index).fillna(0.0).to_numpy()
    rows = names + [NEW_CUSTOMER_LABEL]
    moves["segment_prev"] = pd.Categorical(moves["segment_prev"], categories=rows)
    moves["segment_now"] = pd.Categorical(moves["segment_now"], categories=names)
    g = moves.groupby(["segment_prev", "segment_now"], observed=False)
    counts = g.size().unstack(fill_value=0).reindex(index=rows, columns=names, fill_value=0).astype("int64")
    stake = g["revenue_before_prev"].sum().unstack(fill_value=0.0).reindex(index=rows, columns=names,
                                                                          fill_value=0.0)
    for m in (counts, stake):
        m.index = pd.Index([str(i) for i in m.index], name="segment_prev")
        m.columns = pd.Index([str(c) for c in m.columns], name="segment_now")
    return Migration(counts, stake, moves)


# --------------------------------------------------------------------------------------------
# 9. Small-group suppression
# --------------------------------------------------------------------------------------------
def _list(labels: Sequence[Any], n: int = 8) -> str:
    shown = ", ".join(str(x) for x in list(labels)[:n])
    return shown + (", …" if len(labels) > n else "")


def _looks_additive(name: str) -> bool:
    """Totals and shares of a total add up when groups merge; ratios (``_per_``, aov, basket, means) do not."""
    return bool(re.fullmatch(r"revenue|orders|customers|share|revenue_at_stake|(customer|revenue|order)s?_share|"
                             r"share_of_\w+", name))


def suppress_small(df: pd.DataFrame, count_col: str | None, min_group_size: int = 10,
                   label_col: str | None = None, *, within: Sequence[str] | None = None,
                   additive: Sequence[str] | None = None, other_label: str = OTHER_LABEL
                   ) -> tuple[pd.DataFrame, str]:
    """Protect small groups in a table before it is published.

    Three modes:

    - *label_col* given: rows whose *count_col* is between 1 and ``min_group_size - 1`` are merged
      into one row labelled *other_label* (per combination of the *within* columns). Columns in
      *additive* are summed (default: *count_col*, integer columns, and totals or shares of a total:
      ``revenue``, ``orders``, ``customers``, ``share``, ``revenue_at_stake``, ``customer_share``,
      ``revenue_share``, ``order_share``, ``share_of_*``); other numeric columns (ratios such as aov,
      basket or a per-customer channel share) become the count-weighted mean; other text columns are left empty. A merged row that is itself still
      too small is hidden (its numbers set to missing).
    - *label_col* ``None``: such rows keep their labels but all their numbers are hidden.
    - *count_col* ``None``: every numeric cell is a count (a cross table); small cells are hidden.

    *label_col* may also name the index.

    Returns
    -------
    (DataFrame, str)
        The safe table and a note saying what was merged or hidden ("" when nothing was).
    """
    if not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise ParamsError(f"min_group_size={min_group_size!r} must be a whole number ≥ 1")
    num = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    if count_col is None:
        vals = df[num]
        small = (vals > 0) & (vals < min_group_size)
        n_small = int(small.to_numpy().sum())
        out = df.copy()
        out[num] = vals.astype("float64").mask(small)
        note = (i18n.t("{cells:,} cell(s) with fewer than {minimum:,} customers are hidden.", cells=n_small,
                       minimum=min_group_size) if n_small else "")
        return out, note
    on_index = label_col is not None and label_col not in df.columns and df.index.name == label_col
    work = df.reset_index() if on_index else df
    _require(work, [count_col] + ([label_col] if label_col else []) + list(within or []), "table")
    cnt = pd.to_numeric(work[count_col], errors="coerce")
    small = (cnt > 0) & (cnt < min_group_size)
    if not small.any():
        return df.copy(), ""
    if label_col is None:
        out = work.copy()
        out[num] = out[num].astype("float64")
        out.loc[small, num] = np.nan
        return (out.set_index(label_col) if on_index else out), i18n.t(
            "{rows:,} row(s) with fewer than {minimum:,} customers are hidden.", rows=int(small.sum()),
            minimum=min_group_size)
    within = list(within or [])
    add = list(additive) if additive is not None else [count_col] + [
        c for c in num if c != count_col and (pd.api.types.is_integer_dtype(work[c]) or _looks_additive(c))]
    avg = [c for c in num if c not in add and c not in within and c != label_col]
    merged_labels = work.loc[small, label_col].astype(str).tolist()
    sm = work.loc[small].copy()
    w = pd.to_numeric(sm[count_col], errors="coerce").astype("float64")
    for c in avg:
        sm[c] = sm[c].astype("float64") * w
    keys = within if within else (lambda _: 0)
    g = sm.groupby(keys, sort=False, dropna=False)
    merged = g[add + avg].sum(min_count=1)
    for c in avg:
        merged[c] = merged[c] / merged[count_col]
    merged = merged.reset_index() if within else merged.reset_index(drop=True)
    merged[label_col] = other_label
    big = work.loc[~small].copy()
    big[label_col] = big[label_col].astype(object)
    out = pd.concat([big, merged], ignore_index=True)[list(work.columns)]
    names = _list([i18n.value(x) for x in dict.fromkeys(merged_labels)])
    if within:
        note = i18n.t("{groups:,} group(s) across {values:,} {within}s with fewer than {minimum:,} customers "
                      "({names}) were merged into '{other}'.", groups=len(merged_labels), values=len(merged),
                      within="/".join(within), minimum=min_group_size, names=names, other=other_label)
    else:
        note = i18n.t("{groups:,} group(s) with fewer than {minimum:,} customers ({names}) were merged into "
                      "'{other}'.", groups=len(merged_labels), minimum=min_group_size, names=names, other=other_label)
    still = (out[label_col] == other_label) & (pd.to_numeric(out[count_col], errors="coerce") < min_group_size)
    if still.any():
        out[num] = out[num].astype("float64")
        out.loc[still, num] = np.nan
        note += " " + i18n.t("{rows:,} merged row(s) still had fewer than {minimum:,} customers and are hidden.",
                             rows=int(still.sum()), minimum=min_group_size)
    return (out.set_index(label_col) if on_index else out), note


# --------------------------------------------------------------------------------------------
# 10. Marketing exports
# --------------------------------------------------------------------------------------------
def marketing_exports(segments_df: pd.DataFrame, customers: pd.DataFrame, out_dir: str | Path, *,
                      segment_col: str = "segment") -> dict[str, int]:
    """Write one CSV per segment of the customers who consented to marketing.

    Each file ``<out_dir>/<segment slug>.csv`` has only ``customer_id`` (the shop's id, no contact
    details: ``make contacts`` attaches those outside the reports) and ``segment``: no personal
    column ever leaves. A missing consent counts as no consent. Every segment gets a file, empty
    ones with just the header; the list of a segment that no longer exists (a changed
    ``segment_map``) is removed, so a CRM tool never imports a stale list. ``_segment_lists.txt``
    in *out_dir* names the files this function wrote last.

    Returns
    -------
    dict
        Customers written per segment.
    """
    seg = _customer_index(segments_df, "segments_df")
    _require(seg, [segment_col], "segments_df")
    _require(customers, ["customer_id", "consent_marketing"], "customers")
    ok = marketing_consent(customers).reindex(seg.index, fill_value=False).to_numpy()
    out = pd.DataFrame({"customer_id": seg.index.astype(str), "segment": seg[segment_col].astype(str).to_numpy()})[ok]
    cats = seg[segment_col]
    names = [str(c) for c in cats.cat.categories] if isinstance(cats.dtype, pd.CategoricalDtype) else sorted(
        cats.dropna().astype(str).unique())
    slugs = [_slug(n) for n in names]
    if len(set(slugs)) != len(slugs):
        raise ParamsError(f"segment names {names} give clashing file names {slugs}; rename the segments")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "_segment_lists.txt"
    before = set(manifest.read_text(encoding="utf-8").split()) if manifest.exists() else set()
    counts = {}
    for name, slug in zip(names, slugs):  # one file per segment
        part = out[out["segment"] == name].sort_values("customer_id")
        part.to_csv(folder / f"{slug}.csv", index=False)
        counts[name] = int(len(part))
    written = {f"{slug}.csv" for slug in slugs}
    for stale in sorted(before - written):
        (folder / stale).unlink(missing_ok=True)
    manifest.write_text("\n".join(sorted(written)) + "\n", encoding="utf-8")
    return counts

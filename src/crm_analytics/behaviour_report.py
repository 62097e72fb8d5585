"""What notebook ``05_behaviour`` shows: the analyses of :mod:`crm_analytics.behaviour`,
:mod:`crm_analytics.funnel` and :mod:`crm_analytics.site_search` as tables with plain labels,
sentences, what a dataset can support, and the headline metrics.

Tables keep numbers as numbers (rates as shares, formatted by the notebook with ``report.styled``);
labels are for a marketing reader ("product view", "add to cart", "95 % interval").
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crm_analytics.behaviour import FUNNEL_STEPS
from crm_analytics.report import md

__all__ = ["STEP_LABELS", "BREAKDOWN_LABELS", "SESSION_SUMMARY_BREAKDOWNS", "dataset_mode", "supported_parts", "landing_table", "show", "COLUMN_LABELS",
           "rate_table", "funnel_table", "funnel_by_table", "step_times_table", "leak_sentences", "change_sentence",
           "paths_table", "metrics", "PERCENT", "INTERVAL"]

#: funnel steps and page types as a reader says them
STEP_LABELS = {"session_start": "session start", "entry": "arrival", "exit": "left the site",
               "page_view": "page view", "product_view": "product view", "add_to_cart": "add to cart",
               "remove_from_cart": "remove from cart", "checkout_start": "checkout", "purchase": "purchase",
               "search": "search", "login": "login"}
#: breakdown columns of the sessions table (and of a session-summary export) as a reader says them
BREAKDOWN_LABELS = {"channel": "channel", "device": "device", "visitor_type": "new or returning visitor",
                    "segment": "RFM segment", "acquisition_channel": "acquisition channel", "week": "week",
                    "month": "month", "landing_type": "landing page type", "weekend": "weekend",
                    "traffic_type": "traffic type", "region": "region", "browser": "browser",
                    "operating_system": "operating system"}
#: breakdowns a session-summary export (UCI Online Shoppers) supports
SESSION_SUMMARY_BREAKDOWNS = ["visitor_type", "month", "weekend", "traffic_type", "region"]
PERCENT = "{:.1%}".format
INTERVAL = "95 % interval"
#: column names of the package's tables as a reader says them (:func:`show`)
COLUMN_LABELS = {
    "product_id": "product", "next_product_id": "next product", "name": "name", "category": "category",
    "sessions": "sessions", "cart_sessions": "sessions with a cart", "abandoned": "abandoned",
    "abandonment_rate": "abandonment rate", "rate": "rate", "rate_low": f"{INTERVAL}: low",
    "rate_high": f"{INTERVAL}: high", "items": "items", "value": "value", "share_of_sessions": "share of cart sessions",
    "recovered": "recovered", "recovery_rate": "recovery rate", "message": "message",
    "views": "views", "view_sessions": "sessions with a view", "carts": "add to carts", "purchases": "units bought",
    "orders": "orders", "cart_per_view": "add to carts per view", "purchase_per_view": "units bought per view",
    "query": "query", "searches": "searches", "spellings": "spellings", "zero_result_share": "found nothing",
    "view_share": "followed by a product view", "lost_searches": "lost searches", "lost_share": "lost",
    "lost_low": f"lost, {INTERVAL}: low", "lost_high": f"lost, {INTERVAL}: high", "ended_share": "ended the session",
    "searches_viewed": "searches followed by a view", "bought": "bought", "not_bought": "not bought",
    "not_bought_share": "share not bought", "views_recent": "views, recent weeks", "views_before": "views, weeks before",
    "ratio": "recent / before", "relative_ratio": "against the site's growth",
    "ratio_low": f"{INTERVAL}: low", "ratio_high": f"{INTERVAL}: high", "p_value": "p_value", "p_holm": "p_holm",
    "rising": "rising", "transitions": "moves", "share": "share", "measure": "measure", "measured": "measured",
    "true": "true", "difference": "difference", "device": "device",
}
#: columns shown as percentages
PERCENT_COLUMNS = {"rate", "rate_low", "rate_high", "abandonment_rate", "share_of_sessions", "recovery_rate",
                   "cart_per_view", "purchase_per_view", "zero_result_share", "view_share", "lost_share", "lost_low",
                   "lost_high", "ended_share", "not_bought_share", "share"}


def _step(name: Any) -> str:
    return STEP_LABELS.get(str(name), str(name).replace("_", " "))


def show(table: pd.DataFrame, index: str | list[str] | None = None) -> Any:
    """*table* (a frame of this package's analyses) as the report shows it: *index* as row labels,
    columns under reader's names (:data:`COLUMN_LABELS`), shares as percentages, yes/no for flags."""
    from crm_analytics.report import styled

    frame = table.set_index(index) if index else table
    frame = frame.copy()
    for col in frame.columns:
        if pd.api.types.is_bool_dtype(frame[col]):
            frame[col] = frame[col].map({True: "yes", False: "no"})
    formats = {COLUMN_LABELS.get(c, c.replace("_", " ")): PERCENT for c in frame.columns if c in PERCENT_COLUMNS}
    frame = frame.rename(columns=lambda c: COLUMN_LABELS.get(c, c.replace("_", " ")))
    names = [COLUMN_LABELS.get(n, n.replace("_", " ")) if isinstance(n, str) else n for n in frame.index.names]
    frame.index = frame.index.set_names(names)
    return styled(frame, formats=formats)


def dataset_mode(events: pd.DataFrame | Any | None, sessions_table: pd.DataFrame | None) -> tuple[str, set[str]]:
    """What kind of behaviour data a dataset has: ``("events", event types)`` for a clickstream with
    product views, ``("session summaries", set())`` for one row per session (no events), else
    ``("none", set())``."""
    if events is not None and len(events):
        types = (set(events["event_type"].dropna().unique()) if isinstance(events, pd.DataFrame)
                 else set(events.query("SELECT DISTINCT event_type FROM t")["event_type"].dropna()))
        if "product_view" in types:
            return "events", types
    if sessions_table is not None and len(sessions_table):
        return "session summaries", set()
    return "none", set()


def supported_parts(mode: str, event_types: set[str]) -> pd.DataFrame:
    """Which parts of the report this dataset supports, and why not where it does not."""
    has = event_types.__contains__
    rows = [
        ("Sessions", mode != "none", "no site events or session records"),
        ("Conversion rate", mode == "session summaries" or has("purchase"), "no purchase events"),
        ("Funnel (view → cart → checkout → purchase)", mode == "events" and has("add_to_cart") and has("purchase"),
         "no cart or purchase events" if mode == "events" else "session records carry no steps"),
        ("Cart abandonment", mode == "events" and has("add_to_cart"), "no add-to-cart events"),
        ("Site search", mode == "events" and has("search"), "no search events"),
        ("Product interest", mode == "events", "no product views"),
        ("Paths", mode == "events", "no event sequence"),
        ("Purchase-intention model", mode == "session summaries",
         "built for session records (page counts, page value); event logs get the funnel instead"),
    ]
    return pd.DataFrame([{"part": p, "supported": "yes" if ok else "no", "why not": "" if ok else why}
                         for p, ok, why in rows]).set_index("part")


def landing_table(sessions_df: pd.DataFrame) -> pd.DataFrame:
    """Sessions by landing page type: how many, product views per session and median length."""
    out = sessions_df.groupby("landing_type").agg(sessions=("session_id", "size"),
                                                  views=("product_views", "mean"),
                                                  seconds=("duration_seconds", "median"))
    out = out.sort_values("sessions", ascending=False)
    out.index = [_step(v) for v in out.index]
    return out.rename_axis("landing page type").rename(columns={"views": "product views per session",
                                                                "seconds": "median length (s)"})


def rate_table(rates: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """:func:`crm_analytics.behaviour.conversion_rate` with reader's labels: sessions, conversions,
    conversion rate and its 95 % interval bounds (as shares, for ``report.styled`` formats)."""
    out = rates.rename(columns={"sessions": "sessions", "conversions": "conversions", "rate": "conversion rate",
                                "rate_low": f"{INTERVAL}: low", "rate_high": f"{INTERVAL}: high"})
    if by:
        out = out.set_index(by)
        out = out.iloc[_natural_order(out.index)].rename_axis(BREAKDOWN_LABELS.get(by, by))
        out.index = out.index.map(lambda v: {True: "yes", False: "no", "True": "yes", "False": "no"}.get(v, v)
                                  if isinstance(v, (bool, str)) else v)
    return out


_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _natural_order(labels: pd.Index) -> list[int]:
    """Positions of *labels* in a reader's order: numbers by value, month names by the calendar, else as given."""
    text = [str(v).strip().lower() for v in labels]
    if all(t.lstrip("-").isdigit() for t in text):
        return sorted(range(len(text)), key=lambda i: int(text[i]))
    if all(t[:3] in _MONTHS for t in text):
        return sorted(range(len(text)), key=lambda i: _MONTHS.index(text[i][:3]))
    return list(range(len(text)))


def funnel_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`crm_analytics.funnel.funnel` (no breakdown) as the report shows it: one row per step."""
    out = pd.DataFrame({
        "step": [_step(s) for s in table["step"]],
        "reached": table["reached"].to_numpy(),
        "share of all": table["share"].to_numpy(),
        "from previous step": table["step_conversion"].to_numpy(),
        f"{INTERVAL}: low": table["conversion_low"].to_numpy(),
        f"{INTERVAL}: high": table["conversion_high"].to_numpy(),
        "lost at this step": table["lost"].to_numpy(),
    })
    return out.set_index("step")


def funnel_by_table(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """:func:`crm_analytics.funnel.funnel` by *by* as one row per group: its sessions and the share
    going on at each step (for a compact comparison; the intervals are in the metrics and the
    leak sentences)."""
    wide = table.pivot_table(index=by, columns="step", values="step_conversion", sort=False)
    wide = wide[[s for s in FUNNEL_STEPS if s in wide.columns][1:]]  # every session starts with a view
    wide.columns = [f"→ {_step(s)}" for s in wide.columns]
    total = table.drop_duplicates(by).set_index(by)["total"].rename("sessions")
    out = pd.concat([total, wide], axis=1)
    return out.rename_axis(BREAKDOWN_LABELS.get(by, by))


def step_times_table(times: pd.DataFrame) -> pd.DataFrame:
    """:func:`crm_analytics.funnel.step_times` in minutes and seconds a reader compares."""
    out = pd.DataFrame({
        "from → to": [f"{_step(a)} → {_step(b)}" for a, b in zip(times["from_step"], times["to_step"])],
        "sessions": times["sessions"].to_numpy(),
        "quarter within (s)": times["p25_seconds"].to_numpy(),
        "half within (s)": times["median_seconds"].to_numpy(),
        "three quarters within (s)": times["p75_seconds"].to_numpy(),
        "nine in ten within (s)": times["p90_seconds"].to_numpy(),
    })
    return out.set_index("from → to")


def leak_sentences(leaks: pd.DataFrame, by: str) -> Any:
    """One sentence per group: the funnel step where it loses most (from
    :func:`crm_analytics.funnel.biggest_leak`), as report prose."""
    if leaks.empty:
        return md("Too few sessions in every group to compare.")
    parts, values = [], {}
    for i, row in enumerate(leaks.itertuples(index=False)):
        parts.append(f"- **{{g{i}}}** loses most from {{a{i}}} to {{b{i}}}: {{lost{i}:,}} of {{n{i}:,}} "
                     f"({{drop{i}:.0%}}) do not go on.")
        values.update({f"g{i}": getattr(row, by), f"a{i}": _step(row.from_step), f"b{i}": _step(row.to_step),
                       f"lost{i}": int(row.lost), f"n{i}": int(row.entered), f"drop{i}": float(row.drop_off)})
    return md(f"**By {BREAKDOWN_LABELS.get(by, by)}**\n\n" + "\n".join(parts), **values)


def change_sentence(change: pd.DataFrame, period: str) -> Any:
    """The latest complete period's conversion against the one before, from
    :func:`crm_analytics.behaviour.conversion_change`, as report prose."""
    done = change.dropna(subset=["previous_rate"])
    if done.empty:
        return md("Too little history to compare one {period} with the previous one.", period=period)
    last = done.iloc[-2] if len(done) > 1 else done.iloc[-1]  # the last period may be incomplete
    verdict = "a real change" if bool(last["change_significant"]) else "within chance"
    return md("Conversion in the {period} of {when}: **{rate:.1%}** against {prev:.1%} the {period} before, a change "
              "of {points:+.1f} points (95 % interval {low:+.1f} to {high:+.1f}): {verdict}. (The latest {period} "
              "may be incomplete and is not used.)",
              period=period, when=last[period], rate=last["rate"], prev=last["previous_rate"],
              points=last["change_points"], low=last["change_low"], high=last["change_high"], verdict=verdict)


def paths_table(paths: pd.DataFrame) -> pd.DataFrame:
    """:func:`crm_analytics.behaviour.common_paths` with page types as words."""
    words = paths["path"].map(lambda p: " → ".join(_step(x.strip()) if x.strip() != "…" else "…"
                                                   for x in str(p).split("→")))
    return pd.DataFrame({"path": words, "sessions": paths["sessions"].to_numpy(),
                         "share": paths["share"].to_numpy()}).set_index("path")


def metrics(*, sessions: int, views: int | None, mean_views: float | None, overall: pd.DataFrame | None,
            by_visitor: pd.DataFrame | None, funnel: pd.DataFrame | None, abandonment: pd.DataFrame | None,
            search: dict | None, search_conversion: dict | None, intent: dict | None) -> dict[str, Any]:
    """The headline metrics of ``reports/<dataset>/metrics/05_behaviour.json`` (keys named by issue 15);
    a part the dataset cannot support is ``None``."""
    def interval(frame: pd.DataFrame | None, value: str, low: str, high: str) -> dict | None:
        if frame is None or frame.empty:
            return None
        r = frame.iloc[0]
        return {"value": float(r[value]), "ci_low": float(r[low]), "ci_high": float(r[high])}

    out: dict[str, Any] = {
        "sessions": int(sessions),
        "views": None if views is None else int(views),
        "mean_views_per_session": mean_views,
        "conversion_rate": interval(overall, "rate", "rate_low", "rate_high"),
        "conversion_by_visitor_type": (None if by_visitor is None else
                                       {str(k): float(v) for k, v in zip(by_visitor.iloc[:, 0], by_visitor["rate"])}),
        "funnel": None if funnel is None else {
            r["step"]: {"sessions": int(r["reached"]), "step_conversion": float(r["step_conversion"]),
                        "ci_low": float(r["conversion_low"]), "ci_high": float(r["conversion_high"])}
            for _, r in funnel.iterrows()},
        "cart_abandonment_rate": interval(abandonment, "abandonment_rate", "rate_low", "rate_high"),
        "zero_result_search_share": None if not search else search.get("zero_result_share"),
        "search_conversion_rate": None,
    }
    if search_conversion is not None:
        t = search_conversion["table"].set_index("group")
        out["search_conversion_rate"] = float(t.loc["with search", "rate"]) if "with search" in t.index else None
    if intent is not None:
        out["intent_model"] = {"auc_holdout": intent["roc_auc"], "auc_holdout_low": intent["roc_auc_low"],
                               "auc_holdout_high": intent["roc_auc_high"],
                               "baseline_rule_auc": intent["baseline_rule_auc"],
                               "baseline_logistic_auc": intent["baseline_logistic_auc"]}
    return out


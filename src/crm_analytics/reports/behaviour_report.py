"""What notebook ``05_behaviour`` shows: the analyses of :mod:`crm_analytics.models.behaviour`,
:mod:`crm_analytics.models.funnel` and :mod:`crm_analytics.models.site_search` as tables with plain labels,
sentences, charts over time, what a dataset can support, and the headline metrics.

Tables keep numbers as numbers (rates as shares) under their column names; ``report.styled`` shows
each name as its label with its unit (``locale/<language>/05_behaviour.po``, context ``column``)
and the shares as percentages in the report language. Words this module writes (funnel steps,
page types, devices, channels, recovery groups) are translated here with
:func:`crm_analytics.i18n.t`; data (products, categories, queries) is shown as it is.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from crm_analytics import i18n
from crm_analytics.models.behaviour import FUNNEL_STEPS, UNKNOWN
from crm_analytics.reports.report import md

__all__ = [
    "BY_HEADINGS",
    "MONEY",
    "PERCENT",
    "SESSION_SUMMARY_BREAKDOWNS",
    "STEP_LABELS",
    "VALUE_WORDS",
    "abandoned_table",
    "change_sentence",
    "chart_period",
    "dataset_mode",
    "funnel_by_table",
    "funnel_table",
    "heading",
    "landing_table",
    "leak_sentences",
    "metrics",
    "paths_table",
    "plot_conversion_over_time",
    "plot_funnel",
    "plot_sessions_over_time",
    "rate_table",
    "reader_words",
    "recovery_table",
    "show",
    "step_label",
    "step_times_table",
    "supported_parts",
    "truth_table",
]

#: funnel steps and page types as a reader says them (translated through the catalogue)
STEP_LABELS = {"session_start": "session start", "entry": "arrival", "exit": "left the site",
               "page_view": "page view", "product_view": "product view", "add_to_cart": "add to cart",
               "remove_from_cart": "remove from cart", "checkout_start": "checkout", "purchase": "purchase",
               "search": "search", "login": "login"}
#: codes of the events and customers tables (per breakdown column) as a reader says them
VALUE_WORDS = {
    "device": {"desktop": "desktop", "mobile_web": "mobile web", "ios": "iOS", "android": "Android"},
    "channel": {"web": "web site", "app": "mobile app", "email": "e-mail"},
    "acquisition_channel": {"organic": "organic", "referral": "referral", "paid_search": "paid search",
                            "email": "e-mail", "social": "social media", "app_store": "app store",
                            "marketplace": "marketplace"},
    "visitor_type": {"new": "new visitors", "returning": "returning visitors", "New_Visitor": "new visitors",
                     "Returning_Visitor": "returning visitors", "Other": "other visitors"},
    "weekend": {"True": "weekend", "False": "weekday", "1": "weekend", "0": "weekday"},
    "recovery_group": {"all": "all abandoned items", "sent": "campaign message sent",
                       "control": "campaign control group", "none": "no campaign"},
}
#: the heading over a breakdown's table
BY_HEADINGS = {"channel": "By channel", "device": "By device", "visitor_type": "New and returning visitors",
               "segment": "By RFM segment", "acquisition_channel": "By acquisition channel", "week": "By week",
               "month": "By month", "landing_type": "By landing page type", "weekend": "Weekend or weekday",
               "traffic_type": "By traffic type", "region": "By region", "browser": "By browser",
               "operating_system": "By operating system"}
#: the measures of :func:`crm_analytics.models.behaviour.truth_check` as a reader says them
TRUTH_MEASURES = {
    "share_with.product_view": "sessions with a product view",
    "share_with.add_to_cart": "sessions with an add to cart",
    "share_with.checkout_start": "sessions with a checkout",
    "share_with.purchase": "sessions with a purchase",
    "step_conversion.view_to_cart": "product view → add to cart",
    "step_conversion.cart_to_checkout": "add to cart → checkout",
    "step_conversion.checkout_to_purchase": "checkout → purchase",
    "cart_abandonment": "cart abandonment",
    "search_zero_result_share": "searches finding nothing",
}
#: the parts of the report, and why a dataset may not support one
PARTS = {
    "sessions": ("Sessions", "no site events or session records"),
    "conversion": ("Conversion rate", "no purchase events"),
    "funnel": ("Funnel (view → cart → checkout → purchase)", "no cart or purchase events"),
    "funnel_summaries": ("Funnel (view → cart → checkout → purchase)", "session records carry no steps"),
    "abandonment": ("Cart abandonment", "no add-to-cart events"),
    "search": ("Site search", "no search events"),
    "interest": ("Product interest", "no product views"),
    "paths": ("Paths", "no event sequence"),
    "intent": ("Purchase-intention model",
               "built for session records (page counts, page value); event logs get the funnel instead"),
}
#: breakdowns a session-summary export (UCI Online Shoppers) supports
SESSION_SUMMARY_BREAKDOWNS = ["visitor_type", "month", "weekend", "traffic_type", "region"]
#: format of a share shown as a percentage, and of an amount of money (``report.styled`` formats)
PERCENT = "{:.1%}"
MONEY = "{:money}"
#: column names of the package's tables that :func:`show` gives a name of their own (a label belongs
#: to a name, and these names mean something else in other reports)
RENAME = {"name": "product_name", "value": "abandoned_value", "purchases": "units_bought",
          "orders": "orders_with_product", "share": "move_share", "items": "abandoned_items",
          "transitions": "moves", "measure": "truth_measure"}
#: columns shown as percentages
PERCENT_COLUMNS = {"conversion_rate", "rate_low", "rate_high", "reached_share", "step_conversion",
                   "conversion_low", "conversion_high", "to_add_to_cart", "to_checkout_start", "to_purchase",
                   "abandonment_rate", "share_of_sessions", "recovery_rate", "cart_per_view", "purchase_per_view",
                   "zero_result_share", "view_share", "lost_share", "lost_low", "lost_high", "ended_share",
                   "not_bought_share", "path_share", "move_share", "measured_rate", "true_rate"}
#: columns shown with a fixed number of decimals (ratios two, means one, seconds none)
DECIMALS = {"ratio": 2, "relative_ratio": 2, "ratio_low": 2, "ratio_high": 2, "product_views_per_session": 1,
            "median_duration_seconds": 0, "p25_seconds": 0, "median_seconds": 0, "p75_seconds": 0, "p90_seconds": 0}
#: columns shown as money in the shop's currency
MONEY_COLUMNS = {"abandoned_value"}
#: columns shown first (a product's name before its numbers)
FIRST_COLUMNS = ("product_name", "category")


def step_label(name: Any) -> str:
    """A funnel step or page type (``add_to_cart``) as the reader says it, in the report language."""
    text = str(name)
    if text in STEP_LABELS:
        return i18n.t(STEP_LABELS[text])
    return i18n.value(text.replace("_", " "))


def _word(by: str, v: Any) -> Any:
    """A value of breakdown *by* as the reader sees it: a known code in words, ``(unknown)``
    translated, a segment or other data as it is (translated only when the catalogue knows it)."""
    words = VALUE_WORDS.get(by, {})
    key = str(v)
    if key in words:
        return i18n.t(words[key])
    if key == UNKNOWN:
        return i18n.t(UNKNOWN)
    return i18n.value(v)


def _words(frame: pd.DataFrame) -> pd.DataFrame:
    """*frame* with the codes of known columns (device, channel, …) in words."""
    out = frame.copy()
    for col in out.columns:
        if col in VALUE_WORDS or col in ("segment",):
            out[col] = out[col].map(lambda v, c=col: _word(c, v))
    return out


def reader_words() -> list[str]:
    """Every English word or phrase this module writes into a report (the catalogue must know
    each one: a test checks the Turkish one)."""
    out = list(STEP_LABELS.values()) + [w for m in VALUE_WORDS.values() for w in m.values()]
    out += list(BY_HEADINGS.values()) + list(TRUTH_MEASURES.values()) + [UNKNOWN, "a real change",
                                                                         "within chance"]
    out += [text for pair in PARTS.values() for text in pair]
    return list(dict.fromkeys(out))


def heading(by: str) -> Any:
    """The bold heading over the tables of breakdown *by* (``By device``)."""
    return md("**{heading}**", heading=i18n.t(BY_HEADINGS[by]) if by in BY_HEADINGS else i18n.label(by))


def show(table: pd.DataFrame, index: str | list[str] | None = None, *,
         products: pd.DataFrame | None = None) -> Any:
    """*table* (a frame of this package's analyses) as the report shows it: *index* as row labels,
    column labels with units, shares as percentages, money in the shop's currency, yes/no for
    flags; with *products*, a product's name beside its code."""
    from crm_analytics.reports.report import styled

    frame = table.rename(columns=RENAME)
    keys = [RENAME.get(i, i) for i in ([index] if isinstance(index, str) else list(index or []))]
    if (products is not None and "product_id" in frame.columns and "product_name" not in frame.columns
            and "name" in products.columns):
        known = products.drop_duplicates("product_id")
        names = pd.Series(known["name"].to_numpy(), index=known["product_id"].astype(str).to_numpy())
        frame.insert(1, "product_name", frame["product_id"].astype(str).map(names))
    frame = _words(frame)
    first = [c for c in FIRST_COLUMNS if c in frame.columns and c not in keys]
    frame = frame[keys + first + [c for c in frame.columns if c not in keys and c not in first]]
    if keys:
        frame = frame.set_index(keys)
    formats: dict[str, str] = {c: PERCENT for c in frame.columns if c in PERCENT_COLUMNS}
    formats.update({c: MONEY for c in frame.columns if c in MONEY_COLUMNS})
    formats.update({c: f"{{:,.{DECIMALS[c]}f}}" for c in frame.columns if c in DECIMALS})
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
    """Which parts of the report this dataset supports (``supported``, a flag), and why not
    (``why_not``) where it does not; in the report language."""
    has = event_types.__contains__
    rows = [
        ("sessions", mode != "none"),
        ("conversion", mode == "session summaries" or has("purchase")),
        ("funnel" if mode == "events" else "funnel_summaries", mode == "events" and has("add_to_cart")
         and has("purchase")),
        ("abandonment", mode == "events" and has("add_to_cart")),
        ("search", mode == "events" and has("search")),
        ("interest", mode == "events"),
        ("paths", mode == "events"),
        ("intent", mode == "session summaries"),
    ]
    return pd.DataFrame([{"report_part": i18n.t(PARTS[key][0]), "supported": bool(ok),
                          "why_not": "" if ok else i18n.t(PARTS[key][1])} for key, ok in rows]).set_index(
        "report_part")


def landing_table(sessions_df: pd.DataFrame) -> pd.DataFrame:
    """Sessions by landing page type: how many, product views per session and median length."""
    out = sessions_df.groupby("landing_type").agg(sessions=("session_id", "size"),
                                                  product_views_per_session=("product_views", "mean"),
                                                  median_duration_seconds=("duration_seconds", "median"))
    out = out.sort_values("sessions", ascending=False)
    out.index = pd.Index([step_label(v) for v in out.index], name="landing_type")
    return out


def rate_table(rates: pd.DataFrame, by: str | None = None) -> pd.DataFrame:
    """:func:`crm_analytics.models.behaviour.conversion_rate` for the report: sessions, conversions,
    ``conversion_rate`` and its interval bounds (as shares), one row per group of *by* (in a
    reader's order, codes in words)."""
    out = rates.rename(columns={"rate": "conversion_rate"})
    if by:
        out = out.set_index(by)
        out = out.iloc[_natural_order(out.index, by, out["sessions"])]
        out.index = pd.Index([_word(by, v) for v in out.index], name=by)
    return out


_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _natural_order(labels: pd.Index, by: str | None = None, size: Any = None) -> list[int]:
    """Positions of *labels* in a reader's order: numbers by value, month names by the calendar,
    RFM segments in the segmentation's order, new visitors before returning ones, else the largest
    group (*size*) first, or as given; ``(unknown)`` last."""
    text = [str(v).strip().lower() for v in labels]
    if all(t.lstrip("-").isdigit() for t in text):
        return sorted(range(len(text)), key=lambda i: int(text[i]))
    if all(t[:3] in _MONTHS for t in text):
        return sorted(range(len(text)), key=lambda i: _MONTHS.index(text[i][:3]))
    rank: dict[str, int] = {}
    if by == "segment":
        from crm_analytics.models.segmentation import DEFAULT_SEGMENT_MAP

        rank = {name.lower(): i for i, name in enumerate(DEFAULT_SEGMENT_MAP)}
    elif by == "visitor_type":
        rank = {"new": 0, "new_visitor": 0, "returning": 1, "returning_visitor": 1}
    last = len(rank) + 1
    sizes = [0.0] * len(text) if size is None or rank else [-float(v) for v in size]
    return sorted(range(len(text)), key=lambda i: (last if text[i] == UNKNOWN else rank.get(text[i], len(rank)),
                                                   sizes[i], i))


def funnel_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`crm_analytics.models.funnel.funnel` (no breakdown) as the report shows it: one row per step,
    how many reached it, their share of all, the share that went on from the step before with its
    interval, and how many were lost at the step."""
    out = pd.DataFrame({
        "funnel_step": [step_label(s) for s in table["step"]],
        "reached": table["reached"].to_numpy(),
        "reached_share": table["share"].to_numpy(),
        "step_conversion": table["step_conversion"].to_numpy(),
        "conversion_low": table["conversion_low"].to_numpy(),
        "conversion_high": table["conversion_high"].to_numpy(),
        "lost": table["lost"].to_numpy(),
    })
    return out.set_index("funnel_step")


def funnel_by_table(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """:func:`crm_analytics.models.funnel.funnel` by *by* as one row per group: its sessions and the share
    going on at each step (``to_add_to_cart`` …; for a compact comparison; the intervals are in
    the metrics and the leak sentences)."""
    wide = table.pivot_table(index=by, columns="step", values="step_conversion", sort=False)
    wide = wide[[s for s in FUNNEL_STEPS if s in wide.columns][1:]]  # every session starts with a view
    wide.columns = [f"to_{s}" for s in wide.columns]
    total = table.drop_duplicates(by).set_index(by)["total"].rename("sessions")
    out = pd.concat([total, wide], axis=1)
    out = out.iloc[_natural_order(out.index, by, out["sessions"])]
    out.index = pd.Index([_word(by, v) for v in out.index], name=by)
    return out


def step_times_table(times: pd.DataFrame) -> pd.DataFrame:
    """:func:`crm_analytics.models.funnel.step_times`: seconds within which a quarter, half, three quarters
    and nine in ten of the sessions went from one step to the next."""
    out = pd.DataFrame({
        "step_pair": [f"{step_label(a)} → {step_label(b)}" for a, b in zip(times["from_step"], times["to_step"])],
        "sessions": times["sessions"].to_numpy(),
        "p25_seconds": times["p25_seconds"].to_numpy(),
        "median_seconds": times["median_seconds"].to_numpy(),
        "p75_seconds": times["p75_seconds"].to_numpy(),
        "p90_seconds": times["p90_seconds"].to_numpy(),
    })
    return out.set_index("step_pair")


def abandoned_table(top: pd.DataFrame) -> Any:
    """:func:`crm_analytics.models.funnel.abandonment_top` as the report shows it: per category or product
    the abandoned carts holding it, the items and their value left, and the share of abandoned carts."""
    key = top.columns[0]
    return show(top.rename(columns={"sessions": "abandoned_carts"}), key)


def recovery_table(summary: pd.DataFrame) -> Any:
    """The ``summary`` of :func:`crm_analytics.models.funnel.cart_recovery`: per campaign group the abandoned
    items, how many the customer bought later, and the recovery rate with its interval."""
    return show(summary.rename(columns={"message": "recovery_group", "recovered": "recovered_items"}),
                "recovery_group")


def truth_table(check: pd.DataFrame) -> Any:
    """:func:`crm_analytics.models.behaviour.truth_check` without the session count: each rate measured
    and as generated, and their difference in percentage points."""
    rates = check[check["measure"] != "sessions"]
    out = pd.DataFrame({
        "truth_measure": [i18n.t(TRUTH_MEASURES[m]) if m in TRUTH_MEASURES else m for m in rates["measure"]],
        "measured_rate": rates["measured"].to_numpy(),
        "true_rate": rates["true"].to_numpy(),
        "difference_points": 100 * rates["difference"].to_numpy(),
    }).set_index("truth_measure")
    from crm_analytics.reports.report import styled

    return styled(out, formats={"measured_rate": PERCENT, "true_rate": PERCENT, "difference_points": "{:+.2f}"})


def leak_sentences(leaks: pd.DataFrame, by: str) -> Any:
    """Under the heading of breakdown *by*, one line per group: the funnel step where it loses most
    (from :func:`crm_analytics.models.funnel.biggest_leak`), as report prose."""
    from IPython.display import Markdown

    if leaks.empty:
        return md("Too few sessions in every group to compare.")
    lines = [md("**{group}** loses most from {step} to {next}: {lost:,} of {n:,} sessions ({drop:.0%}) do not "
                "go on.", group=_word(by, getattr(row, by)), step=step_label(row.from_step),
                next=step_label(row.to_step), lost=int(row.lost), n=int(row.entered), drop=float(row.drop_off)).data
             for row in leaks.iloc[_natural_order(pd.Index(leaks[by]), by, leaks["entered"])].itertuples(index=False)]
    return Markdown(heading(by).data + "\n\n" + "\n".join("- " + line for line in lines))


_CHANGE = {
    "week": "Conversion in the week of {when:%Y-%m-%d}: **{rate:.1%}** against {prev:.1%} the week before, a change "
            "of {points:+.1f} percentage points ({level:.0%} confidence interval {low:+.1f} to {high:+.1f}): {verdict}. "
            "The latest week may be incomplete and is not used.",
    "month": "Conversion in {when:%Y-%m}: **{rate:.1%}** against {prev:.1%} the month before, a change of "
             "{points:+.1f} percentage points ({level:.0%} confidence interval {low:+.1f} to {high:+.1f}): "
             "{verdict}. The latest month may be incomplete and is not used.",
}


def change_sentence(change: pd.DataFrame, period: str, *, alpha: float = 0.05) -> Any:
    """The latest complete period's conversion against the one before, from
    :func:`crm_analytics.models.behaviour.conversion_change`, as report prose."""
    done = change.dropna(subset=["previous_rate"])
    if done.empty:
        return md({"week": "Too little history to compare one week with the previous one.",
                   "month": "Too little history to compare one month with the previous one."}[period])
    last = done.iloc[-2] if len(done) > 1 else done.iloc[-1]  # the last period may be incomplete
    verdict = i18n.t("a real change" if bool(last["change_significant"]) else "within chance")
    return md(_CHANGE[period], when=pd.Timestamp(str(last[period])), rate=last["rate"], prev=last["previous_rate"],
              points=last["change_points"], low=last["change_low"], high=last["change_high"], verdict=verdict,
              level=1 - alpha)


def paths_table(paths: pd.DataFrame) -> pd.DataFrame:
    """:func:`crm_analytics.models.behaviour.common_paths` with page types as words."""
    words = paths["path"].map(lambda p: " → ".join(step_label(x.strip()) if x.strip() != "…" else "…"
                                                   for x in str(p).split("→")))
    return pd.DataFrame({"path": words.to_numpy(), "sessions": paths["sessions"].to_numpy(),
                         "path_share": paths["share"].to_numpy()}).set_index("path")


# --- charts ------------------------------------------------------------------------------------

def plot_funnel(table: pd.DataFrame, ax=None):
    """:func:`funnel_table` as horizontal bars: how many reached each step, and their share of all."""
    import matplotlib.pyplot as plt

    from crm_analytics.reports import plots

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 1.4))
    s = table.iloc[::-1]
    ax.barh([str(v) for v in s.index], s["reached"].to_numpy(float), color=plots.PALETTE[0])
    for i, (n, share) in enumerate(zip(s["reached"], s["reached_share"])):
        ax.text(n, i, f" {i18n.decimal(n, 0)} ({i18n.percent(share, 0)})", va="center", fontsize=8)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))  # chart_text localises it
    ax.set_xlim(0, float(table["reached"].max()) * 1.25)
    ax.set_title("Sessions reaching each funnel step (number of sessions, share of all)")
    ax.set_xlabel("Number of sessions")
    return ax


# --- charts over time --------------------------------------------------------------------------

def _dates(values: pd.Series | pd.Index) -> pd.DatetimeIndex:
    """Week (a Monday) or month (``YYYY-MM``) labels as the first day of the period."""
    return pd.DatetimeIndex(pd.to_datetime(pd.Index(values).astype(str)))


def _complete(first_days: pd.DatetimeIndex, period: str, start: Any, end: Any) -> Any:
    """Which periods starting on *first_days* lie wholly between the first and last session."""
    step = pd.DateOffset(weeks=1) if period == "week" else pd.DateOffset(months=1)
    start = pd.Timestamp(start).tz_localize(None) if pd.Timestamp(start).tzinfo else pd.Timestamp(start)
    end = pd.Timestamp(end).tz_localize(None) if pd.Timestamp(end).tzinfo else pd.Timestamp(end)
    return (first_days >= start.normalize()) & (first_days + step <= end.normalize() + pd.Timedelta(days=1))


def _date_axis(ax) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _legend_below(ax) -> None:
    """The legend (the line, its band, the marked days) under the chart, where it hides no data."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=len(handles),
                  frameon=False)


def chart_period(sessions_df: pd.DataFrame, *, min_weekly_sessions: int = 400) -> str:
    """``"week"`` when a typical week has enough sessions for a readable weekly rate (its interval a
    few points wide), else ``"month"``."""
    weekly = sessions_df.groupby("week").size()
    return "week" if len(weekly) and float(weekly.median()) >= min_weekly_sessions else "month"


def plot_sessions_over_time(sessions_df: pd.DataFrame, ax=None):
    """Sessions per complete week (dates on the x axis), public holidays and shopping days marked."""
    import matplotlib.pyplot as plt

    from crm_analytics.reports import plots

    weekly = sessions_df.groupby("week").size()
    x = _dates(weekly.index)
    keep = _complete(x, "week", sessions_df["start_ts"].min(), sessions_df["start_ts"].max())
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    ax.plot(x[keep], weekly.to_numpy()[keep], color=plots.PALETTE[0], lw=1.6)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))  # chart_text localises it
    ax.set_title("Sessions per week (complete weeks)")
    ax.set_ylabel("Number of sessions")
    _date_axis(ax)
    plots.mark_days(ax)
    _legend_below(ax)
    return ax


def plot_conversion_over_time(change: pd.DataFrame, period: str = "week", *, sessions_df: pd.DataFrame | None = None,
                              alpha: float = 0.05, ax=None):
    """Conversion rate per *period* (from :func:`crm_analytics.models.behaviour.conversion_change`) as a
    line with its interval as a band over dates, public holidays and shopping days marked; with
    *sessions_df*, incomplete first and last periods are left out."""
    import matplotlib.pyplot as plt

    from crm_analytics.reports import plots

    x = _dates(change[period])
    keep = (_complete(x, period, sessions_df["start_ts"].min(), sessions_df["start_ts"].max())
            if sessions_df is not None else slice(None))
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.8))
    ax.fill_between(x[keep], change["rate_low"].to_numpy(float)[keep], change["rate_high"].to_numpy(float)[keep],
                    color=plots.PALETTE[0], alpha=0.2, label=i18n.t("{level:.0%} confidence interval",
                                                                     level=1 - alpha))
    ax.plot(x[keep], change["rate"].to_numpy(float)[keep], color=plots.PALETTE[0], lw=1.6,
            marker="o" if period == "month" else None, ms=4, label="conversion rate")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))  # chart_text localises it
    ax.set_title({"week": "Conversion rate per week (share of sessions with a purchase, %)",
                  "month": "Conversion rate per month (share of sessions with a purchase, %)"}[period])
    ax.set_ylabel("Conversion rate (%)")
    _date_axis(ax)
    plots.mark_days(ax)
    _legend_below(ax)
    return ax


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

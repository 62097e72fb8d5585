"""Charts for the reports, in one house style. Every helper takes data and an optional ``ax``
and returns the ``Axes``; none touches global pyplot state beyond creating a figure when no
``ax`` is given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["PALETTE", "SEQUENTIAL", "mark_days", "shopping_days", "style", "plot_forest", "plot_curves", "plot_heatmap", "plot_bars", "plot_actual_vs_expected",
           "plot_calibration", "plot_rate_over_time"]

#: Okabe–Ito colours: told apart with every common kind of colour blindness
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442"]
#: sequential colour map for heatmaps, readable in grey and with colour blindness
SEQUENTIAL = "cividis"


def style() -> None:
    """Apply the report style (call once at the top of a notebook).

    Chart text is shown as written: labels come from data (product, campaign and segment names),
    so ``$…$`` is never read as a formula (``text.parse_math``) and ``usetex`` stays off.
    """
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.figsize": (8, 4.2), "figure.dpi": 96, "axes.titleweight": "bold",
                         "axes.titlesize": 12, "axes.spines.top": False, "axes.spines.right": False,
                         "text.parse_math": False, "text.usetex": False})


def shopping_days(start, end) -> dict:
    """The big shopping days between *start* and *end*: 11.11 (Singles' Day) and Black Friday (the
    Friday after the fourth Thursday of November; Turkish shops call it Efsane Cuma / Muhteşem Cuma)."""
    out = {}
    for year in range(pd.Timestamp(start).year, pd.Timestamp(end).year + 1):
        thursdays = pd.date_range(f"{year}-11-01", f"{year}-11-30", freq="W-THU")
        out[pd.Timestamp(f"{year}-11-11").date()] = "11.11"
        out[(thursdays[3] + pd.Timedelta(days=1)).date()] = "Black Friday"
    return {d: name for d, name in out.items() if pd.Timestamp(start).date() <= d <= pd.Timestamp(end).date()}


def mark_days(ax, country: str | None = None):
    """Mark the public holidays of *country* (default: the one :func:`crm_analytics.i18n.use` set)
    and the big shopping days on a time chart whose x axis holds dates (matplotlib dates: plot with
    ``ax.plot(dates, …)`` or pandas' ``x_compat=True``). Holidays are thin grey lines, shopping days
    dashed orange ones named at the top; both go in the legend. Returns the ``Axes``."""
    import matplotlib.dates as mdates

    from crm_analytics import i18n

    country = i18n.holiday_country() if country is None else country
    if not country:
        return ax
    lo, hi = ax.get_xlim()
    try:
        start, end = mdates.num2date(lo).date(), mdates.num2date(hi).date()
    except (ValueError, OverflowError):
        return ax
    if (end - start).days > 3700 or end < start:  # not a date axis
        return ax
    import holidays

    public = holidays.country_holidays(country, years=range(start.year, end.year + 1))
    days = sorted(d for d in public if start <= d <= end)
    for i, d in enumerate(days):
        ax.axvline(d, color="#999999", lw=0.6, alpha=0.6, zorder=0,
                   label=i18n.t("public holiday") if i == 0 else None)
    for i, (d, name) in enumerate(sorted(shopping_days(start, end).items())):
        ax.axvline(d, color=PALETTE[1], lw=1, ls="--", zorder=0,
                   label=i18n.t("shopping day (11.11, Black Friday)") if i == 0 else None)
        # labels alternate between the top and a little lower, so 11.11 and Black Friday never overlap
        ax.annotate(i18n.value(name), (mdates.date2num(d), 1 if i % 2 == 0 else 0.78),
                    xycoords=("data", "axes fraction"), fontsize=7, color=PALETTE[1], rotation=90, va="top",
                    ha="right")
    ax.set_xlim(lo, hi)
    if days or shopping_days(start, end):
        ax.legend(fontsize=8)
    return ax


def _ax(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_forest(df: pd.DataFrame, *, estimate: str, low: str, high: str, label: str, truth: str | None = None,
                xlabel: str = "", title: str = "", ax=None):
    """Point estimates with interval bars, one row per *label*; an optional *truth* column as markers."""
    ax = _ax(ax, (8, 0.5 * len(df) + 1.2))
    y = np.arange(len(df))[::-1]
    ax.errorbar(df[estimate], y, xerr=[df[estimate] - df[low], df[high] - df[estimate]], fmt="o",
                color=PALETTE[0], capsize=3, label="estimate, 95 % interval")
    if truth is not None and truth in df and df[truth].notna().any():
        ax.scatter(df[truth], y, marker="x", color=PALETTE[1], zorder=3, label="true effect (generated world)")
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(y, df[label])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    return ax


def plot_curves(curves: dict[str, pd.DataFrame], *, x: str, y: str, xlabel: str, ylabel: str, title: str = "",
                ax=None):
    """Several curves (e.g. Qini curves of models and random) on one chart."""
    ax = _ax(ax)
    for i, (name, c) in enumerate(curves.items()):
        ax.plot(c[x], c[y], label=name, color=PALETTE[i % len(PALETTE)], lw=2 if i == 0 else 1.5,
                ls="--" if "random" in name.lower() else "-")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_heatmap(matrix: pd.DataFrame, *, title: str = "", fmt: str = ".0%", cmap: str = SEQUENTIAL, xlabel: str = "",
                 ylabel: str = "", ax=None, annot: bool = True):
    """A labelled heatmap (cohort retention, segment migration)."""
    ax = _ax(ax, (min(1 + 0.55 * matrix.shape[1], 14), min(1 + 0.38 * matrix.shape[0], 10)))
    sns.heatmap(matrix, annot=annot and matrix.size <= 400, fmt=fmt, cmap=cmap, cbar=False, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return ax


def plot_rate_over_time(df: pd.DataFrame, *, x: str, rate: str, low: str, high: str, title: str = "",
                        ylabel: str = "", ax=None):
    """A rate per period as a line with its interval as a band (conversion by week or month)."""
    ax = _ax(ax, (9, 3.8))
    xs = df[x].astype(str).to_numpy()
    ax.fill_between(xs, df[low].to_numpy(float), df[high].to_numpy(float), color=PALETTE[0], alpha=0.2,
                    label="95 % interval")
    ax.plot(xs, df[rate].to_numpy(float), marker="o", color=PALETTE[0], label="rate")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=90, labelsize=7)
    ax.legend(fontsize=8)
    return ax


def plot_bars(series: pd.Series, *, title: str = "", xlabel: str = "", fmt: str = "{:,.0f}", ax=None):
    """Horizontal bars with value labels."""
    ax = _ax(ax, (8, 0.4 * len(series) + 1.2))
    s = series[::-1]
    ax.barh(s.index.astype(str), s.to_numpy(), color=PALETTE[0])
    for i, v in enumerate(s.to_numpy()):
        ax.text(v, i, " " + fmt.format(v), va="center", fontsize=8)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return ax


def plot_actual_vs_expected(df: pd.DataFrame, *, x: str, actual: str = "actual", expected: dict[str, str] | str = "expected",
                            xlabel: str = "", ylabel: str = "", title: str = "", kind: str = "line", vline=None, ax=None):
    """Actual versus one or more model expectations (bars by group, or lines over time)."""
    ax = _ax(ax)
    exp = {"expected": expected} if isinstance(expected, str) else expected
    if kind == "bar":
        n = 1 + len(exp)
        w = 0.8 / n
        xs = np.arange(len(df))
        ax.bar(xs - 0.4 + w / 2, df[actual], w, label="actual", color=PALETTE[0])
        for i, (name, col) in enumerate(exp.items(), start=1):
            ax.bar(xs - 0.4 + w / 2 + i * w, df[col], w, label=name, color=PALETTE[i % len(PALETTE)])
        ax.set_xticks(xs, df[x].astype(str))
    else:
        ax.plot(df[x], df[actual], label="actual", color=PALETTE[0], lw=2)
        for i, (name, col) in enumerate(exp.items(), start=1):
            ax.plot(df[x], df[col], label=name, color=PALETTE[i % len(PALETTE)], ls="--")
    if vline is not None:
        ax.axvline(vline, color="grey", ls=":", lw=1)
        ax.text(vline, ax.get_ylim()[1], " holdout starts", va="top", fontsize=8, color="grey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_calibration(tables: dict[str, pd.DataFrame], *, title: str = "", ax=None):
    """Reliability diagram: mean predicted vs observed per bin, one line per model."""
    ax = _ax(ax, (5, 5))
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfectly calibrated")
    for i, (name, t) in enumerate(tables.items()):
        ax.plot(t["predicted"], t["observed"], marker="o", label=name, color=PALETTE[i % len(PALETTE)])
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed share")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax

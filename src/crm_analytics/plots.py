"""Charts for the reports, in one house style. Every helper takes data and an optional ``ax``
and returns the ``Axes``; none touches global pyplot state beyond creating a figure when no
``ax`` is given."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

__all__ = ["style", "plot_forest", "plot_curves", "plot_heatmap", "plot_bars", "plot_actual_vs_expected",
           "plot_calibration", "plot_rate_over_time"]

PALETTE = ["#2a6f97", "#e07a5f", "#3d405b", "#81b29a", "#f2cc8f", "#8d99ae"]


def style() -> None:
    """Apply the report style (call once at the top of a notebook).

    Chart text is shown as written: labels come from data (product, campaign and segment names),
    so ``$…$`` is never read as a formula (``text.parse_math``) and ``usetex`` stays off.
    """
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    plt.rcParams.update({"figure.figsize": (8, 4.2), "figure.dpi": 96, "axes.titleweight": "bold",
                         "axes.titlesize": 12, "axes.spines.top": False, "axes.spines.right": False,
                         "text.parse_math": False, "text.usetex": False})


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


def plot_heatmap(matrix: pd.DataFrame, *, title: str = "", fmt: str = ".0%", cmap: str = "Blues", xlabel: str = "",
                 ylabel: str = "", ax=None, annot: bool = True):
    """A labelled heatmap (cohort retention, segment migration)."""
    ax = _ax(ax, (min(1 + 0.55 * matrix.shape[1], 14), min(1 + 0.38 * matrix.shape[0], 10)))
    sns.heatmap(matrix, annot=annot and matrix.size <= 400, fmt=fmt, cmap=cmap, cbar=False, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
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

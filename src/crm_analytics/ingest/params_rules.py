"""What a notebook parameter's value may be: one rule per parameter name, checked before any notebook starts.

A parameter has one name and one meaning across notebooks, so one table, :data:`RULES`, keyed by
name, says what every value may be: one of a few words, an ISO date, a strftime format, a number in a
range, a list of known feature names, or whatever a package function accepts. :data:`RELATIONS`
holds the rules between two parameters of the same notebook (``k_min <= k_max``).
``crm_analytics.ingest.params.resolve_notebook_params`` applies both to every value a params file sets;
the test suite checks that every parameter of every pipeline notebook has a rule here and that every
notebook default obeys it, so a notebook that gains a parameter must declare its rule here too.

This module imports nothing heavy: every notebook depends on :mod:`crm_analytics.ingest.params`, and so on
this file. Word lists that a package module also knows (the time units of
``clv_report.TIME_UNITS``, the methods of ``segmentation.cluster_customers``) are repeated here and a
test holds them equal.

Examples
--------
>>> RULES["time_unit"].problem("weak")
"must be one of ['day', 'month', 'week'], got 'weak' (did you mean 'week'?)"
>>> RULES["alpha"].problem(0.05) is None
True
>>> RULES["alpha"].problem(5)
'must be a number in (0, 1), got 5'
"""

from __future__ import annotations

import datetime as _dt
import difflib
import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BEHAVIOUR_FEATURES", "BEHAVIOUR_FEATURE_PREFIXES", "RELATIONS", "RULES", "Relation", "Rule",
           "checked_by", "date_format", "free", "iso_date", "names_from", "number", "one_of", "time_zone"]


@dataclass(frozen=True)
class Rule:
    """What one parameter's value may be.

    Attributes
    ----------
    text : str
        The rule in words, as the error message and the docs show it (``"a number in [0, 1]"``).
    types : tuple of str
        Parameters-cell annotations the rule applies to (``int``, ``float``, ``str``, ``dict``...).
    check : callable
        ``check(value) -> str | None``: what is wrong with *value* (the end of a message that
        starts with "key 'x' "; or, starting with ":", a package function's own message), or ``None``
        when it is fine. Called only on values of the right type.
    """

    text: str
    types: tuple[str, ...]
    check: Callable[[Any], str | None] = field(repr=False)

    def problem(self, value: Any) -> str | None:
        """What is wrong with *value*, or ``None``."""
        return self.check(value)


def _did_you_mean(value: str, options: list[str]) -> str:
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def free(why: str, *types: str) -> Rule:
    """Any value of the declared type; *why* says why nothing more is checked."""
    return Rule(f"any value ({why})", types or ("str", "int", "float", "bool", "dict", "list"), lambda v: None)


def one_of(*values: str, empty: str | None = None) -> Rule:
    """One of *values*; with *empty* (what an empty value means) also ``""``."""
    options = sorted(values)

    def check(v: Any) -> str | None:
        if v in options or (empty is not None and v == ""):
            return None
        tail = f" or empty ({empty})" if empty is not None else ""
        return f"must be one of {options}{tail}, got {v!r}{_did_you_mean(str(v), options)}"

    return Rule(f"one of {options}" + (f", or empty ({empty})" if empty is not None else ""), ("str",), check)


def iso_date(empty: str) -> Rule:
    """A date as ``YYYY-MM-DD`` or empty (*empty* says what empty means)."""

    def check(v: Any) -> str | None:
        if v == "":
            return None
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            return f"must be a date as YYYY-MM-DD (e.g. '2025-06-30') or empty ({empty}), got {v!r}"
        try:
            _dt.date.fromisoformat(v)
        except ValueError as exc:
            return f"must be a date as YYYY-MM-DD or empty ({empty}), got {v!r}: {exc}"
        return None

    return Rule(f"a date as YYYY-MM-DD, or empty ({empty})", ("str",), check)


_DAY, _MONTH, _YEAR = ("d", "j", "e"), ("m", "b", "B", "h"), ("Y", "y", "G")


def date_format() -> Rule:
    """A strftime format with day, month and year directives, ``ISO8601``, or empty (detect)."""
    example = "'%d.%m.%Y %H:%M'"

    def check(v: Any) -> str | None:
        if v in ("", "ISO8601"):
            return None
        directives = set(re.findall(r"%[-#]?([A-Za-z])", v))
        missing = [name for name, letters in (("day", _DAY), ("month", _MONTH), ("year", _YEAR))
                   if not directives & set(letters)]
        if missing:
            return (f"must be a strftime format with day, month and year directives (e.g. {example}), "
                    f"'ISO8601' or empty (detect the format), got {v!r}: no {' or '.join(missing)} directive")
        sample = _dt.datetime(2024, 11, 23, 14, 5, 6)
        try:
            _dt.datetime.strptime(sample.strftime(v), v)
        except ValueError as exc:
            return f"must be a strftime format like {example}, got {v!r}: {exc}"
        return None

    return Rule(f"a strftime format with day, month and year (e.g. {example}), 'ISO8601', or empty (detect it)",
                ("str",), check)


def _fmt(x: float) -> str:
    return f"{x:g}"


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False, whole: bool = False) -> Rule:
    """A number between *low* and *high* (either may be ``None``: unbounded); ``*_open``: bound excluded."""
    if low is not None and high is not None:
        text = f"{'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}{')' if high_open else ']'}"
        text = f"a {'whole ' if whole else ''}number in {text}"
    elif low is not None:
        text = f"a {'whole ' if whole else ''}number {'>' if low_open else '>='} {_fmt(low)}"
    else:
        text = f"a {'whole ' if whole else ''}number {'<' if high_open else '<='} {_fmt(high)}"

    def check(v: Any) -> str | None:
        if isinstance(v, float) and not math.isfinite(v):
            return f"must be {text}, got {v!r}"
        too_low = low is not None and (v <= low if low_open else v < low)
        too_high = high is not None and (v >= high if high_open else v > high)
        return f"must be {text}, got {v!r}" if too_low or too_high else None

    return Rule(text, ("int",) if whole else ("float",), check)


def names_from(names: list[str], prefixes: tuple[str, ...] = (), *, what: str) -> Rule:
    """Comma-separated names, each one of *names* or starting with one of *prefixes*; at least one."""
    shown = sorted(names) + [f"{p}<name>" for p in prefixes]

    def check(v: Any) -> str | None:
        items = [s.strip() for s in v.split(",") if s.strip()]
        if not items:
            return f"must name at least one of the {what} {shown}, got {v!r}"
        unknown = [s for s in items if s not in names and not any(s.startswith(p) and len(s) > len(p)
                                                                   for p in prefixes)]
        if unknown:
            hint = _did_you_mean(unknown[0], sorted(names))
            return (f"names unknown {what} {unknown}{hint}; "
                    f"{what} are {shown} (comma-separated)")
        return None

    return Rule(f"comma-separated {what}, from {shown}", ("str",), check)


def checked_by(target: str, text: str, *types: str) -> Rule:
    """A value checked by the package function *target* (``"module:function"``, imported only when a
    value is checked, raising ``ParamsError``); an empty value means the notebook's default."""

    def check(v: Any) -> str | None:
        from crm_analytics.errors import ParamsError

        if not v:
            return None
        module, function = target.split(":")
        try:
            getattr(importlib.import_module(module), function)(v)
        except ParamsError as exc:
            return f": {exc}"  # the package's message says what is wrong
        return None

    return Rule(text, types or ("dict",), check)


def time_zone() -> Rule:
    """An IANA time zone name (``Europe/Istanbul``), as :mod:`zoneinfo` knows it."""

    def check(v: Any) -> str | None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            near = _did_you_mean(v, sorted(zoneinfo.available_timezones()))
            return f"must be a time zone name such as 'Europe/Istanbul', got {v!r}{near}"
        return None

    return Rule("a time zone name such as Europe/Istanbul (the shop's local time)", ("str",), check)


#: Behaviour features of ``segmentation.behaviour_features`` with a fixed name ...
BEHAVIOUR_FEATURES = ["log_recency_days", "log_orders", "log_revenue", "log_avg_basket", "returned_share",
                      "discount_share", "log_sessions", "complaints"]
#: ... and the prefixes of those named after the data (order channels, product categories).
BEHAVIOUR_FEATURE_PREFIXES = ("channel_share_", "cat_share_")

_SHARE = number(0, 1)

#: parameter name -> rule. Every parameter of every pipeline notebook has one (tests hold this).
RULES: dict[str, Rule] = {
    # every notebook
    "dataset": free("set from the params file's name", "str"),
    "seed": number(0, whole=True),
    "min_group_size": number(1, whole=True),
    "margin_rate": number(0, 1, low_open=True),
    # 01_data_cleaning
    "date_format": date_format(),
    "stale_after_days": number(0, whole=True),
    "max_reject_share": _SHARE,
    # 02_segmentation
    "as_of": iso_date("the day after the last order"),
    "previous_period_days": number(1, whole=True),
    "lapsed_after_days": number(1, whole=True),
    "k_min": number(2, whole=True),
    "k_max": number(2, whole=True),
    "cluster_method": one_of("kmeans", "gmm"),
    "segment_map": checked_by("crm_analytics.models.segmentation:validate_segment_map",
                              "{name: {r: [lo, hi], f: [lo, hi], m: [lo, hi], fm: [lo, hi]}} with scores 1..5 "
                              "covering every customer, or empty (the standard map)"),
    "cluster_features": names_from(BEHAVIOUR_FEATURES, BEHAVIOUR_FEATURE_PREFIXES, what="behaviour features"),
    # 03_clv_churn
    "time_unit": one_of("day", "week", "month"),
    "calibration_end": iso_date("holdout_days before the last order"),
    "holdout_days": number(1, whole=True),
    "predict_days": number(1, whole=True),
    "horizon_months": number(1, whole=True),
    "discount_rate_annual": number(0, 1),
    "churn_horizon_days": number(1, whole=True),
    "penalizer": number(0),
    # 04_campaign_roi
    "attribution_days": number(1, whole=True),
    "alpha": number(0, 1, low_open=True, high_open=True),
    "n_bootstrap": number(1, whole=True),
    "assumed_cost_per_contact": number(0),
    "assumed_fixed_cost": number(0),
    "uplift_campaign": free("a campaign id of the data, known only when the notebook runs; "
                            "empty picks the largest randomised test", "str"),
    "uplift_outcome": one_of("converted", "visited"),
    "uplift_test_share": number(0, 1, low_open=True, high_open=True),
    "next_test_lift": number(0, 1, low_open=True, high_open=True),
    "power": number(0, 1, low_open=True, high_open=True),
    # 05_behaviour
    "inactivity_minutes": number(1, whole=True),
    "recovery_days": number(1, whole=True),
    "rising_weeks": number(1, whole=True),
    "min_views": number(1, whole=True),
    "path_steps": number(2, whole=True),
    "top_n": number(1, whole=True),
    "intent_test_share": number(0, 1, low_open=True, high_open=True),
    # 06_personalisation
    "eval_cutoff": iso_date("the last 30 days are held out"),
    "recommendations_per_customer": number(1, whole=True),
    "view_weight": number(0, 1),
    "validation_days": number(1, whole=True),
    "timezone": time_zone(),
    "actions": checked_by("crm_analytics.models.next_action:check_actions",
                          "{action: {campaign: id or name, arm: treatment arm, discount: share in [0, 1), "
                          "audience: everyone or churn_risk}}, each a randomised campaign arm of the data; "
                          "empty: no next best action"),
    "min_relevance": _SHARE,
    "fatigue_days": number(1, whole=True),
    "max_contacts": number(1, whole=True),
    "remember_days": number(1, whole=True),
    # every notebook: the reader's language and the holidays marked on time charts
    "language": one_of("en", "tr"),
    "holiday_country": checked_by("crm_analytics.i18n:check_holiday_country",
                                  "an ISO country code the holidays package knows (TR, GB, DE, …); empty marks "
                                  "no holidays", "str"),
    # every notebook: where the heavy queries run (crm_analytics.compute; README "Running on a cluster")
    "engine": one_of("duckdb", "pyspark"),
    "spark_master": checked_by("crm_analytics.compute:check_spark_master",
                               "a Spark master URL (local[2], local[*], yarn, spark://host:7077, k8s://…), "
                               "used when engine is pyspark; empty means local[2]", "str"),
    "spark_conf": checked_by("crm_analytics.compute:check_spark_conf",
                             "{spark setting: value}, e.g. {spark.executor.memory: 8g}, applied to the "
                             "SparkSession when engine is pyspark; empty: Spark's defaults", "dict"),
    "duckdb_memory_limit": checked_by("crm_analytics.compute:check_memory_limit",
                                      "a memory size (4GB, 500MB, 2GiB) DuckDB may use before it spills to "
                                      "disk; empty means 4GB", "str"),
    # 07_feedback
    "sla_hours": number(1, whole=True),
    "recent_days": number(1, whole=True),
    "min_reviews": number(1, whole=True),
    "mismatch_threshold": number(0.5, 1, low_open=True),
    "min_orders": number(1, whole=True),
    "contamination": number(0, 0.5, low_open=True),
}


@dataclass(frozen=True)
class Relation:
    """A rule between two parameters of one notebook: ``holds(value_of_first, value_of_second)``."""

    first: str
    second: str
    text: str
    holds: Callable[[Any, Any], bool] = field(repr=False)


#: Rules between two parameters, checked on each notebook's values (its defaults filled in).
RELATIONS: list[Relation] = [
    Relation("k_min", "k_max", "k_min must be <= k_max", lambda lo, hi: lo <= hi),
]

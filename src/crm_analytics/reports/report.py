"""What a pipeline notebook needs to publish: headline metrics, plain-language
captions, tables in reader's numbers and a provenance record.

This module is the one place that renders data-derived text for a report. Product,
campaign and country names, reviews, tickets and search queries are untrusted: they reach
a report only through :func:`escape` (and so through :func:`md` for prose and
:func:`styled` for tables), which shows them as text — never as HTML or Markdown.
Notebooks never build HTML or Markdown from raw strings.

Notebooks call these; the pipeline runner (``crm_analytics.pipeline``) executes the
notebooks and exports sanitised, self-contained HTML (:mod:`crm_analytics.reports.publish`).
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import platform
import re
import string
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from crm_analytics import i18n, paths

__all__ = [
    "escape",
    "md",
    "number",
    "p_value",
    "styled",
    "write_metrics",
    "read_metrics",
    "to_jsonable",
    "provenance",
    "file_sha256",
]


#: characters that Markdown (CommonMark, mistune and JupyterLab's renderer) gives a meaning, or that
#: HTML does: written as numeric character references, they are shown as themselves and do nothing
_MARKUP_CHARS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()<>#+-.!|~$&\"':"}


def escape(value: Any) -> str:
    """*value* as text that HTML and Markdown both show literally.

    Every character that HTML or Markdown gives a meaning (``< > & " '``, ``* _ ` [ ] ( ) # | ~ $``
    and the like) becomes a numeric character reference, so ``<script>`` in a product name is shown
    as ``<script>``, ``**x**`` stays two asterisks, ``$x$`` is no formula and a URL in a review is
    no link (``:`` and ``.`` are escaped too, so Markdown cannot autolink it). Line breaks become
    spaces, so a value cannot start a heading, list or table of its own.

    Examples
    --------
    >>> escape("<b>Çanta</b> *50%*")
    '&#60;b&#62;Çanta&#60;/b&#62; &#42;50%&#42;'
    """
    text = "–" if _missing(value) else str(value)
    text = " ".join(text.split()) if any(ch in text for ch in "\r\n\t\f\v") else text
    return "".join(_MARKUP_CHARS.get(ch, ch) for ch in text)


class _EscapingFormatter(string.Formatter):
    """``str.format`` whose fields are formatted first (``{x:,.0f}`` works) and escaped after."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return escape(i18n.format_value(value, format_spec))


_FORMATTER = _EscapingFormatter()


def md(template: str, /, **values: Any) -> Any:
    """Report prose: Markdown *template* (written in code, trusted) with data *values* shown as text.

    The template is ``str.format`` syntax; every field is formatted with its spec and then passed
    through :func:`escape`, so a campaign called ``<script>…`` or ``**Sale**`` reads as written.
    The template is published in the report language (:func:`crm_analytics.i18n.t`) and numbers,
    money (``{x:money}``) and dates in its locale (:func:`crm_analytics.i18n.format_value`).
    Returns an ``IPython.display.Markdown`` to ``display``.

    Raises
    ------
    ValueError
        A field inside a backtick code span, where Markdown would show the escapes as typed.

    Examples
    --------
    >>> md("Largest segment: **{name}** ({share:.0%})", name="<i>Champions</i>", share=0.25).data
    'Largest segment: **&#60;i&#62;Champions&#60;/i&#62;** (25%)'
    """
    from IPython.display import Markdown

    for i, part in enumerate(template.split("`")):
        if i % 2 and "{" in part:  # inside a code span Markdown shows escapes as typed
            raise ValueError(f"report.md: field in a code span ({part!r}); a code span is for names from code, "
                             "not data: put the field outside the backticks")
    return Markdown(_FORMATTER.vformat(i18n.t(template), (), values))


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def number(value: Any, digits: int = 4) -> str:
    """A number as a reader wants it in a table: whole numbers and values of 1,000 or more with
    thousands separators and no decimals, others to *digits* significant digits, never in
    scientific notation; missing as an en dash."""
    if _missing(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return i18n.yes_no(value)
    if not isinstance(value, (int, float, np.integer, np.floating)):
        return str(i18n.value(value))
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if abs(v) >= 1000 or v == int(v):
        return i18n.decimal(v, 0)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(v))))) if v else 0
    return i18n.decimal(v, decimals)


def p_value(value: Any) -> str:
    """A p-value as published: four decimals, ``<0.0001`` below that, an en dash when missing."""
    if _missing(value):
        return "–"
    return "<" + i18n.decimal(1e-4, 4) if float(value) < 1e-4 else i18n.decimal(float(value), 4)


def _is_p_value(column: Any) -> bool:
    name = str(column[-1] if isinstance(column, tuple) else column).lower()
    return name in {"p", "pvalue", "p_value", "p_holm", "p_adjusted"} or name.endswith("_p_value")


def _label(value: Any) -> Any:
    """A row or column label as HTML text (labels are data too: countries, segments, campaigns)."""
    if isinstance(value, tuple):
        return tuple(_label(v) for v in value)
    return html.escape(value) if isinstance(value, str) else value


def _row_label(value: Any) -> Any:
    """A row label as the reader sees it: a word from code translated, a truth value as yes/no."""
    if isinstance(value, tuple):
        return tuple(_row_label(v) for v in value)
    if isinstance(value, (bool, np.bool_)):
        return i18n.yes_no(value)
    shown = i18n.value(value)
    if shown is value and isinstance(value, str) and re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", value):
        return value.replace("_", " ")  # a code word without a label ("mobile_web") reads as words
    return shown


def _reader_labels(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """*frame* with its column names and index names as labels for a reader
    (:func:`crm_analytics.i18n.label`: ``revenue_share`` -> ``Share of revenue``) and its row labels
    translated; returns the frame and the map from each old column to its new label."""
    out = frame.copy(deep=False)
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = out.columns.set_levels([lvl.map(i18n.label) for lvl in out.columns.levels])
        mapping = dict(zip(frame.columns, out.columns))
    else:
        labels = [i18n.label(c) for c in frame.columns]
        if len(set(map(str, labels))) < len(labels):  # two names, one label: keep the names apart
            labels = [lab if sum(str(x) == str(lab) for x in labels) == 1 else c for c, lab in zip(frame.columns, labels)]
        out.columns = pd.Index(labels, name=i18n.label(frame.columns.name))
        mapping = dict(zip(frame.columns, labels))
    out.columns.names = [i18n.label(n) for n in frame.columns.names]
    if isinstance(out.index, pd.MultiIndex):
        out.index = out.index.set_levels([lvl.map(_row_label) for lvl in out.index.levels])
    elif (out.index.dtype == object or pd.api.types.is_string_dtype(out.index.dtype)
          or isinstance(out.index.dtype, pd.CategoricalDtype) or out.index.dtype == bool):
        out.index = pd.Index([_row_label(v) for v in out.index], name=out.index.name)
    out.index.names = [i18n.label(n) for n in frame.index.names]
    return out, mapping


def _row_numbers(frame: pd.DataFrame) -> bool:
    """True when the row labels are only row numbers (0, 1, 2, … without a name): not shown."""
    idx = frame.index
    return (not isinstance(idx, pd.MultiIndex) and idx.name is None and pd.api.types.is_integer_dtype(idx)
            and (len(idx) == 0 or (idx == pd.RangeIndex(len(idx))).all()))


def _locale_formatter(spec: Any) -> Any:
    """A column format of :func:`styled` (``"{:.1%}"``, ``"{:,.0f}"`` or a function) that writes the
    locale's numbers."""
    if callable(spec):
        return spec
    m = re.fullmatch(r"\{:([^{}]*)\}(.*)", str(spec), re.S)
    if m is None:
        return spec
    inner, suffix = m.groups()

    def fmt(v: Any) -> str:
        if _missing(v):
            return "–"
        return i18n.format_value(v, inner) + i18n.t(suffix) if suffix else i18n.format_value(v, inner)

    return fmt


def _safe_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """*frame* with every text label of its index and columns (values and names) HTML-escaped."""
    out = frame.copy(deep=False)
    for axis in ("index", "columns"):
        labels = getattr(out, axis)
        if isinstance(labels, pd.MultiIndex):
            labels = labels.set_levels([lvl.map(_label) for lvl in labels.levels])
        else:
            labels = labels.map(_label)
        labels.names = [_label(n) for n in getattr(out, axis).names]
        setattr(out, axis, labels)
    return out


def styled(table: pd.DataFrame | pd.Series, formats: Mapping[Any, Any] | None = None) -> Any:
    """*table* as a report shows it: every number through :func:`number`, p-value columns
    (``p``, ``p_value``, ``p_holm``, ``*_p_value``) through :func:`p_value`, text shown as text.

    Cell values, row and column labels and their names are HTML-escaped: a product called
    ``<script>…`` reads as written. *formats* maps a column to its own formatter (a format string
    such as ``"{:.1%}"`` or a function); missing values show as an en dash.

    The reader sees labels, not names: columns and index names through
    :func:`crm_analytics.i18n.label` (with their unit, in the report language), words from code
    translated, ``True``/``False`` as yes/no, numbers in the locale's format (never ``-0``), and no
    row numbers (a plain 0, 1, 2, … index is hidden).
    """
    frame = table.to_frame() if isinstance(table, pd.Series) else table
    hide_index = _row_numbers(frame)
    p_columns = [c for c in frame.columns if _is_p_value(c)]
    frame, mapping = _reader_labels(frame)
    frame = _safe_labels(frame)
    styler = frame.style.format(number, escape="html")
    if p_columns:
        styler = styler.format(p_value, subset=[_label(mapping[c]) for c in p_columns], escape="html")
    for column, formatter in (formats or {}).items():
        styler = styler.format(_locale_formatter(formatter), subset=[_label(mapping.get(column, column))],
                               escape="html", na_rep="–")
    if hide_index:
        styler = styler.hide(axis="index")
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(
        frame[c]) and not pd.api.types.is_datetime64_any_dtype(frame[c])]
    if text and len(frame) <= 5000:  # words read from the left; numbers stay right-aligned to compare
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
    return styler


def to_jsonable(value: Any, *, digits: int = 6) -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON types.

    Floats are rounded to *digits* significant decimals so two runs of the same
    inputs write byte-identical files; NaN and infinities become ``None``.

    Examples
    --------
    >>> to_jsonable({"a": np.float64(1 / 3), "b": [np.int64(2), float("nan")]})
    {'a': 0.333333, 'b': [2, None]}
    """
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, digits=digits) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series, pd.Index)):
        return [to_jsonable(v, digits=digits) for v in list(value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if not math.isfinite(f):
            return None
        return round(f, digits)
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    raise TypeError(f"cannot write {type(value).__name__} to a metrics file: {value!r}")


def write_metrics(dataset: str, notebook: str, metrics: Mapping[str, Any]) -> Path:
    """Write ``reports/<dataset>/metrics/<notebook>.json`` (sorted keys, rounded floats).

    Parameters
    ----------
    dataset : str
        Dataset name, e.g. ``"demo"``.
    notebook : str
        Notebook stem, e.g. ``"01_data_cleaning"``.
    metrics : mapping
        Nested headline numbers; keys are a contract named by the issues.

    Returns
    -------
    Path
        The file written.
    """
    out_dir = paths.metrics_dir(dataset)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{notebook}.json"
    text = json.dumps(to_jsonable(dict(metrics)), indent=2, sort_keys=True, ensure_ascii=False)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_metrics(dataset: str, notebook: str) -> dict:
    """Read a published metrics file (``{}`` when it does not exist yet)."""
    path = paths.reports_dir(dataset) / "metrics" / f"{notebook}.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def file_sha256(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """SHA-256 of a file (or of every file below a folder, in sorted order)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(chunk_bytes), b""):
                h.update(block)
    return h.hexdigest()


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=paths.project_root(),
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=paths.project_root(),
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(params: Mapping[str, Any], inputs: Mapping[str, str | Path] | None = None) -> pd.DataFrame:
    """A table for the last cell of a notebook: params, git commit, input hashes, versions."""
    rows = [("param", k.replace("_", " "), repr(v)) for k, v in params.items()]
    rows.append(("code", "git commit", _git_commit()))
    for name, p in (inputs or {}).items():
        p = Path(p)
        rows.append(("input", name, file_sha256(p)[:16] if p.exists() else "missing"))
    rows.append(("runtime", "python", platform.python_version()))
    for pkg in ["crm-analytics", "pandas", "numpy", "ibis-framework", "duckdb", "scikit-learn", "lifetimes"]:
        try:
            rows.append(("package", pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            pass
    return pd.DataFrame(rows, columns=["kind", "name", "value"]).set_index(["kind", "name"])

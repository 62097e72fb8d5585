"""The reports in the reader's language: Turkish or English words, numbers, money and dates.

A report is written in English in the code (the notebook's Markdown cells, the templates of
:func:`crm_analytics.reports.report.md`, chart titles) and published in the dataset's ``language``
(``en`` or ``tr``). Translations live in gettext catalogues read with Babel,
``locale/<language>/<topic>.po``, one topic per notebook plus ``common``; the English text is the
message id, so a catalogue reads as a side-by-side glossary and a missing translation falls back
to English (and a pipeline run lists it in ``build/<dataset>/logs/<notebook>.untranslated.txt``). Column names of tables (``revenue_share``)
are message ids with the context ``column``: ``locale/en/*.po`` gives their English label with
its unit, ``locale/tr/*.po`` the Turkish one; ``{currency}`` in a label stands for the shop's
currency symbol.

Numbers, percentages, money and dates are formatted by Babel in the language's locale
(``₺1.234,56`` and ``3 Aralık 2026`` in Turkish, ``TRY 1,234.56`` and ``3 December 2026`` in
English), never by hand; a value that rounds to zero is shown as ``0``, never ``-0``.

A notebook calls :func:`use` once (its ``language``, the shop's currency and the country whose
holidays its time charts mark); everything else reads that state. In a notebook kernel every
chart is then shown after its cell in the report language, with its titles as alt text.

Examples
--------
>>> use("tr", currency="TRY")
>>> money(1234.5, decimals=2)
'₺1.234,50'
>>> percent(0.125, 1)
'%12,5'
>>> use("en", currency="TRY")
>>> decimal(-0.0001, 2)
'0.00'
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import os
import re
import string
from pathlib import Path
from typing import Any

__all__ = ["LANGUAGES", "use", "language", "t", "label", "value", "yes_no", "decimal", "percent", "money",
           "date", "month", "format_value", "catalog", "block_ids", "translate_markdown",
           "holiday_country", "currency", "currency_symbol", "check_holiday_country", "notebook_messages", "missing"]

#: the languages a report can be published in, and the Babel locale of each
LANGUAGES = {"en": "en_GB", "tr": "tr_TR"}
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
COLUMN = "column"

_state: dict[str, Any] = {"language": "en", "currency": "", "holidays": ""}
_missing: set[str] = set()


def use(language: str = "en", *, currency: str = "", holidays: str = "") -> None:
    """Publish in *language* (``en``/``tr``) with money in *currency* (ISO code such as ``TRY``) and
    the public holidays of *holidays* (ISO country code, e.g. ``TR``; empty marks none) on time
    charts. Inside a notebook kernel it also makes every chart's text follow the language."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {sorted(LANGUAGES)}, got {language!r}")
    # sources.currency says "money" when the source names no currency: amounts are plain numbers then
    _state.update(language=language, currency="" if currency in (None, "", "money") else currency,
                  holidays=holidays or "")
    _hook_figures()


def check_holiday_country(code: str) -> None:
    """Stop with a message when *code* is not a country the ``holidays`` package knows.

    Raises
    ------
    ParamsError
        Naming the code and a few close ones.
    """
    import difflib

    import holidays

    from crm_analytics.errors import ParamsError

    known = sorted(holidays.list_supported_countries())
    if code not in known:
        near = difflib.get_close_matches(str(code).upper(), known, n=3)
        raise ParamsError(f"{code!r} is not a country code the holidays package knows"
                          + (f" (did you mean {', '.join(near)}?)" if near else " (use ISO codes such as TR or GB)"))


def language() -> str:
    """The language reports are being written in now."""
    return _state["language"]


def currency() -> str:
    """The shop's currency code set by :func:`use` (empty when unknown)."""
    return _state["currency"]


def currency_symbol() -> str:
    """The shop's currency as the reader writes it (``₺`` in Turkish, ``TRY`` in English, ``£``)."""
    from babel.numbers import get_currency_symbol

    code = _state["currency"]
    if not code:
        return t("money")
    return get_currency_symbol(code, locale=_locale())


def holiday_country() -> str:
    """The country whose holidays the time charts mark (empty: none)."""
    return _state["holidays"]


def _locale(lang: str | None = None) -> str:
    return LANGUAGES[lang or _state["language"]]


# --- catalogues -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def catalog(lang: str) -> dict[tuple[str | None, str], str]:
    """Every translation of *lang*: ``(context, English id) -> text`` from ``locale/<lang>/*.po``."""
    from babel.messages.pofile import read_po

    out: dict[tuple[str | None, str], str] = {}
    folder = LOCALE_DIR / lang
    for path in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with open(path, "rb") as fh:
            for msg in read_po(fh):
                if msg.id and msg.string and not msg.fuzzy:
                    out[(msg.context, str(msg.id))] = str(msg.string)
    return out


@functools.lru_cache(maxsize=None)
def _patterns(lang: str) -> list[tuple[re.Pattern, str, list[str], set[str]]]:
    """Catalogue entries with ``{fields}``, as regular expressions that recognise a filled-in text
    (a chart title made with an f-string) and give back the field values."""
    out = []
    for (ctx, msgid), text in catalog(lang).items():
        if ctx is None and "{" in msgid:
            parsed = list(string.Formatter().parse(msgid))
            fields = [f for _, f, _, _ in parsed if f]
            # a template with little text of its own ("{hours} hours", "{note}") would match too much
            if not fields or sum(len(lit.strip()) for lit, _, _, _ in parsed) < 10:
                continue
            rx = "".join(re.escape(lit) + (f"(?P<f{i}>.+?)" if f is not None else "")
                         for i, (lit, f, _, _) in enumerate(string.Formatter().parse(msgid)))
            # a field in quotes ('{example}' in column '{column}') quotes data on purpose
            quoted = {f for (lit, f, _, _), nxt in zip(parsed, parsed[1:] + [("", None, None, None)])
                      if f and lit[-1:] in "'\"‘“" and nxt[0][:1] in "'\"’”"}
            out.append((re.compile(rx + r"\Z", re.S), text, fields, quoted))
    return out


def _note_missing(text: str) -> None:
    if text in _missing or not text.strip():
        return
    _missing.add(text)
    staging = os.environ.get("CRM_ANALYTICS_STAGING")
    if staging:  # a pipeline run: the runner reports what was left in English
        with open(Path(staging).parent / "untranslated.txt", "a", encoding="utf-8") as fh:
            fh.write(" ".join(text.split()) + "\n")


def t(text: str, /, **values: Any) -> str:
    """*text* (English, from code) in the report language, its ``{fields}`` filled with *values*
    formatted for the locale (not escaped: for chart text; prose goes through ``report.md``)."""
    lang = _state["language"]
    out = text
    if lang != "en":
        found = catalog(lang).get((None, text))
        if found is None:
            _note_missing(text)
        else:
            out = found
    return _LocaleFormatter().vformat(out, (), values) if values else out


def label(name: Any) -> Any:
    """A column or index name as the reader sees it: its label (with the unit) in the report
    language, e.g. ``revenue_share`` -> ``Share of revenue`` / ``Gelir payı``; a name without a
    label is shown tidied (``days_old`` -> ``Days old``) and recorded as untranslated."""
    if not isinstance(name, str):
        return name
    lang = _state["language"]
    found = catalog(lang).get((COLUMN, name))
    if found is None and (COLUMN, name) in catalog("en"):
        found = t(catalog("en")[(COLUMN, name)])
    if found is not None:
        return found.replace("{currency}", currency_symbol())
    if re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+|[a-z]+", name):
        if lang != "en" and (None, name) not in catalog(lang):
            _note_missing(name)
        tidy = name.replace("_", " ")
        return t(tidy[:1].upper() + tidy[1:]) if lang == "en" else catalog(lang).get((None, name), tidy)
    return value(name)


def value(text: Any) -> Any:
    """A word from code shown in a table or sentence (a segment, stage, action or reason) in the
    report language when the catalogue knows it; anything else (data) unchanged."""
    if not isinstance(text, str) or _state["language"] == "en":
        return text
    lang = _state["language"]
    found = catalog(lang).get((None, text))
    if found is not None:
        return found
    found = _match_pattern(text, lang, strict=True)
    return text if found is None else found


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|‘[^’]*’|“[^”]*”")  # data quoted on purpose: 'Tutar'
_CODE_VALUE = re.compile(r"[−\-+]?[\d.,%₺$£€ ]*\d[\d.,%₺$£€ ]*|[a-z]+(_[a-z0-9]+)*")


def _match_pattern(text: str, lang: str, strict: bool = False) -> str | None:
    """*text* translated through a catalogue template with fields (``Choosing k: {crit} by …``)
    whose literal parts it matches; the field values are translated as words when known. *strict*
    (text in a table or sentence, which may be data): each field must be a number, a code word or
    a word the catalogue knows, so a product called "Good neighbours" is never half-translated."""
    cat = catalog(lang)
    for rx, template, fields, quoted in _patterns(lang):
        m = rx.match(text)
        if m:
            groups = {f: m.group(f"f{i}") for i, f in enumerate(fields)}
            if strict and not all(f in quoted or _QUOTED.fullmatch(g)
                                  or (_CODE_VALUE.fullmatch(g) and (not g[:1].isalpha() or (None, g) in cat))
                                  for f, g in groups.items()):
                continue
            plain = re.sub(r"\{(\w+)(![rsa])?(:[^}]*)?\}", r"{\1}", template)
            return plain.format(**{f: value(groups.get(f, "")) for f in groups})
    return None


def yes_no(flag: Any) -> str:
    """A truth value in words (``yes``/``no``, ``evet``/``hayır``)."""
    return t("yes") if bool(flag) else t("no")


# --- numbers, money, dates -----------------------------------------------------------------------

def _clean(v: float, decimals: int) -> float:
    """*v* rounded to *decimals*, with a negative zero made plain zero."""
    r = round(float(v), decimals)
    return 0.0 if r == 0 else r


@functools.lru_cache(maxsize=None)
def _number_pattern(pattern: str):
    from babel.numbers import parse_pattern

    return parse_pattern(pattern)


@functools.lru_cache(maxsize=None)
def _locale_object(name: str):
    from babel import Locale

    return Locale.parse(name)


def decimal(v: Any, decimals: int = 0, *, grouping: bool = True) -> str:
    """A number with *decimals* fixed decimals in the locale's format (``1.234,5``)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    pattern = ("#,##0" if grouping else "0") + ("." + "0" * decimals if decimals > 0 else "")
    return _number_pattern(pattern).apply(_clean(v, decimals), _locale_object(_locale()))


def percent(v: Any, decimals: int = 0) -> str:
    """A share (0.125) as a percentage in the locale's form (``12.5%`` / ``%12,5``)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    loc = _locale_object(_locale())
    base = loc.percent_formats[None].pattern
    pattern = base.replace("#,##0", "#,##0" + ("." + "0" * decimals if decimals > 0 else ""), 1)
    return _number_pattern(pattern).apply(_clean(float(v), decimals + 2), loc)


def money(v: Any, decimals: int = 0, currency: str | None = None) -> str:
    """An amount in the shop's currency in the locale's form (``₺1.234``, ``TRY 1,234``); without a
    known currency, the plain number."""
    from babel.numbers import format_currency

    code = currency if currency is not None else _state["currency"]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if not code:
        return decimal(v, decimals)
    from babel import Locale

    base = Locale.parse(_locale()).currency_formats["standard"].pattern.split(";")[0]
    pattern = re.sub(r"#,##0(\.0+)?", "#,##0" + ("." + "0" * decimals if decimals > 0 else ""), base, count=1)
    out = format_currency(_clean(float(v), decimals), code, format=pattern, locale=_locale(),
                          currency_digits=False)
    return re.sub(rf"{code}(?=[\d-])", code + "\u00a0", out)  # 'TRY1,234' reads as 'TRY 1,234'



def _as_date(d: Any) -> _dt.date:
    import pandas as pd

    if isinstance(d, str):
        d = pd.Timestamp(d)
    if isinstance(d, pd.Timestamp):
        return d.date()
    if isinstance(d, _dt.datetime):
        return d.date()
    return d


def date(d: Any) -> str:
    """A day in the locale's long form (``3 Aralık 2026``, ``3 December 2026``)."""
    from babel.dates import format_date

    return format_date(_as_date(d), "long", locale=_locale())


def month(d: Any) -> str:
    """A month with its year (``Aralık 2026``, ``December 2026``)."""
    from babel.dates import format_skeleton

    return format_skeleton("yMMMM", _as_date(d), locale=_locale())


_SPEC = re.compile(r"(?P<sign>\+)?(?P<comma>,)?(?:\.(?P<decimals>\d+))?(?P<kind>[fdg%])?")


def format_value(v: Any, spec: str = "") -> str:
    """*v* formatted by a Python format *spec* the locale's way: ``,.0f``, ``.1%``, ``,`` and ``d``
    through Babel; ``money``/``money2`` for the shop's currency; date specs ``%Y-%m-%d`` (a day) and
    ``%Y-%m`` (a month) in the locale's words; anything else as Python formats it. Booleans become
    yes/no, text from code its translation."""
    import numpy as np
    import pandas as pd

    if isinstance(v, (bool, np.bool_)):
        return yes_no(v)
    if v is None or v is pd.NaT or (not isinstance(v, str) and not isinstance(v, (list, tuple, dict))
                                    and bool(np.ndim(v) == 0) and pd.isna(v)):
        return "–"
    if spec in ("money", "money2"):
        return money(v, 2 if spec == "money2" else 0)
    if isinstance(v, (pd.Timestamp, _dt.date, _dt.datetime)):
        if spec in ("%Y-%m-%d", "%d %B %Y", ""):
            return date(v)
        if spec in ("%Y-%m", "%B %Y"):
            return month(v)
        return format(v, spec)
    if isinstance(v, str):
        return format(value(v), spec)
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        m = _SPEC.fullmatch(spec or "")
        if m is None or (not spec and isinstance(v, (float, np.floating))):
            if not spec:
                return _plain_float(float(v))
            return format(v, spec)
        kind, decs = m.group("kind"), m.group("decimals")
        if m.group("sign"):
            text = format_value(v, spec[1:])
            return text if text.startswith(("-", "−", "–")) or float(v) <= 0 and text.strip("0,.%₺ ") == "" \
                else "+" + text
        if kind == "%":
            return percent(v, int(decs or 0))
        if kind == "g":
            return format(v, spec)
        if kind == "f":
            return decimal(v, int(decs or 0), grouping=bool(m.group("comma")))
        if decs is None and kind in (None, "d"):
            if isinstance(v, (float, np.floating)) and float(v) != int(v):
                return decimal(v, 2, grouping=bool(m.group("comma")))
            return decimal(v, 0, grouping=bool(m.group("comma")))
        return format(v, spec)
    return format(v, spec)


def _plain_float(v: float) -> str:
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return decimal(v)
    if v == int(v) and abs(v) < 1e15:
        return decimal(v, 0)
    decimals = max(0, 3 - int(math.floor(math.log10(abs(v))))) if v else 0
    return decimal(v, min(decimals, 6))


class _LocaleFormatter(string.Formatter):
    def format_field(self, value_: Any, format_spec: str) -> str:
        return format_value(value_, format_spec)


# --- Markdown cells -------------------------------------------------------------------------------

def block_ids(markdown: str) -> list[str]:
    """The translatable blocks of a Markdown cell: its paragraphs and headings, separated by blank
    lines, each with its lines as written."""
    return [b.strip("\n") for b in re.split(r"\n\s*\n", markdown) if b.strip()]


def translate_markdown(markdown: str, lang: str) -> str:
    """A Markdown cell in *lang*, block by block (a block without a translation stays English)."""
    if lang == "en":
        return markdown
    cat = catalog(lang)
    out = []
    for block in block_ids(markdown):
        found = cat.get((None, block))
        if found is None:
            _note_missing(block)
        out.append(found if found is not None else block)
    return "\n\n".join(out)


# --- charts ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"[−\-+]?[\d.,]*\d%?\Z")


def chart_text(text: str, note: bool = False) -> str:
    """A chart's text (title, axis label, legend entry, tick label) in the report language:
    translated when the catalogue knows it (also a title filled in from a template), numbers in
    the locale's separators."""
    lang = _state["language"]
    if not isinstance(text, str):
        text = str(text)
    if lang == "en" or not text:
        return text
    if _NUMBER.match(text.strip()):  # a tick label as matplotlib writes it: '35000', '0.5', '1,000', '12%'
        s = text.strip().replace("−", "-")
        pct = s.endswith("%")
        digits = s.rstrip("%")
        try:
            number = float(digits.replace(",", ""))
        except ValueError:
            return text
        decimals = len(digits.split(".", 1)[1]) if "." in digits else 0
        return percent(number / 100, decimals) if pct else decimal(number, decimals)
    lines = text.split("\n")
    if len(lines) > 1:
        whole = _translate_chart_line(text, False)
        if whole is not text:
            return whole
        return "\n".join(chart_text(line, note) for line in lines)
    return _translate_chart_line(text, note)


def _translate_chart_line(text: str, note: bool) -> str:
    lang = _state["language"]
    cat = catalog(lang)
    found = cat.get((None, text))
    if found is not None:
        return found
    found = _match_pattern(text, lang)
    if found is not None:
        return found
    if text in _translations(lang):  # already in the report language (a title made with i18n.t)
        return text
    months = _month_words(lang)
    words = re.split(r"(\W+)", text)
    if any(w in months for w in words):
        return "".join(months.get(w, w) for w in words)
    if note and re.search(r"[A-Za-z]{3,}", text):
        _note_missing(text)
    return text


@functools.lru_cache(maxsize=None)
def _translations(lang: str) -> frozenset[str]:
    """Every text of the catalogues of *lang*: a text already translated needs no translation."""
    return frozenset(catalog(lang).values())


@functools.lru_cache(maxsize=None)
def _month_words(lang: str) -> dict[str, str]:
    from babel.dates import get_month_names

    out = {}
    for width in ("abbreviated", "wide"):
        en = get_month_names(width, locale="en_GB")
        other = get_month_names(width, locale=LANGUAGES[lang])
        out.update({en[i]: other[i] for i in en})
    return out


def _translated_formatter(inner):
    """A tick formatter that writes what *inner* writes, in the report language."""
    import matplotlib.ticker as mticker

    class Translated(mticker.Formatter):
        crm_inner = inner

        def __call__(self, x, pos=None):
            return chart_text(inner(x, pos))

        def format_ticks(self, values):
            return [chart_text(v) for v in inner.format_ticks(values)]

        def set_locs(self, locs):
            inner.set_locs(locs)

        def get_offset(self):
            return chart_text(inner.get_offset())

        def set_axis(self, axis):
            super().set_axis(axis)
            inner.set_axis(axis)

    return Translated()


def translate_figure(fig) -> None:
    """Every text of *fig* (titles, axis labels, legends, annotations, tick labels) in the report
    language (a no-op in English)."""
    if _state["language"] == "en":
        return
    import matplotlib.ticker as mticker
    from matplotlib.text import Text

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for getter, setter in ((axis.get_major_formatter, axis.set_major_formatter),
                                   (axis.get_minor_formatter, axis.set_minor_formatter)):
                inner = getter()
                if hasattr(inner, "crm_inner") or isinstance(inner, mticker.NullFormatter):
                    continue
                setter(_translated_formatter(inner))
    ticks = {id(x) for ax in fig.axes for x in ax.get_xticklabels(which="both") + ax.get_yticklabels(which="both")}
    # titles and axis labels are written in code: one left in English is reported; legends and
    # annotations may be names from the data
    from_code = {id(x) for ax in fig.axes for x in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label,
                                                     ax.yaxis.label)}
    if getattr(fig, "_suptitle", None) is not None:
        from_code.add(id(fig._suptitle))
    for text in fig.findobj(Text):
        if id(text) in ticks:
            continue
        s = text.get_text()
        if s:
            new = chart_text(s, note=id(text) in from_code)
            if new != s:
                text.set_text(new)


def chart_alt(fig) -> str:
    """What a chart shows, for readers who cannot see it: its titles (else its axis labels)."""
    titles = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    if not titles:
        titles = [" / ".join(x for x in (ax.get_ylabel(), ax.get_xlabel()) if x) for ax in fig.axes]
    text = "; ".join(t for t in titles if t).strip()
    return text or t("chart")


def _show_open_figures() -> None:
    """After each cell: every open figure in the report language, shown as a PNG with its alt text
    (:func:`chart_alt`), then closed — what the inline backend would do, plus the words."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    for num in plt.get_fignums():
        fig = plt.figure(num)
        translate_figure(fig)
        if not fig.axes:
            plt.close(fig)
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
        display(Image(data=buf.getvalue(), format="png", alt=chart_alt(fig)))
        plt.close(fig)


def _hook_figures() -> None:
    """In a notebook kernel, show every open figure after each cell in the report language and with
    its alt text, before the inline backend would show it without."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return
    ip = get_ipython()
    if ip is None:
        return
    callbacks = ip.events.callbacks["post_execute"]
    if _show_open_figures not in callbacks:
        callbacks.insert(0, _show_open_figures)


# --- what a notebook asks to be translated --------------------------------------------------------

#: keyword arguments and methods whose text argument is chart or report text written in code
_TEXT_KWARGS = {"title", "xlabel", "ylabel", "label"}
_TEXT_CALLS = {"md", "t", "set_title", "set_xlabel", "set_ylabel", "suptitle"}


def notebook_messages(path: str | Path) -> list[str]:
    """The English texts of a notebook to translate: every block of its Markdown cells and every
    literal text its code passes to ``report.md``, ``i18n.t``, a chart's ``title``/``xlabel``/
    ``ylabel``/``label`` or ``set_title``/``set_xlabel``/``set_ylabel`` (f-strings as templates
    with ``{…}`` fields, the way :func:`t` and the chart translation match them)."""
    import ast
    import json

    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    out: list[str] = []
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            out.extend(block_ids(source))
        elif cell["cell_type"] == "code" and "parameters" not in cell.get("metadata", {}).get("tags", []):
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                args = list(node.args[:1]) if name in _TEXT_CALLS else []
                args += [k.value for k in node.keywords if k.arg in _TEXT_KWARGS]
                for arg in args:
                    text = _literal(arg)
                    if text and re.search(r"[A-Za-z]{2,}", text):
                        out.append(text)
    return list(dict.fromkeys(out))


def _literal(node) -> str | None:
    """A string constant, or an f-string as a template (``{name}`` for each formatted field)."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value).replace("{", "{{").replace("}", "}}"))
            else:
                expr = v.value
                name = expr.id if isinstance(expr, ast.Name) else (
                    expr.attr if isinstance(expr, ast.Attribute) else "value")
                parts.append("{" + name + "}")
        return "".join(parts)
    return None


def missing(lang: str, notebook: str | Path) -> list[str]:
    """The texts of *notebook* that have no translation into *lang* yet."""
    cat = catalog(lang)
    return [m for m in notebook_messages(notebook) if (None, m) not in cat]


def _main(argv: list[str] | None = None) -> int:
    """``python -m crm_analytics.i18n missing tr [NOTEBOOK …]``: the texts still to translate."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] != "missing" or args[1] not in LANGUAGES:
        print("usage: python -m crm_analytics.i18n missing tr [notebooks/NN_name.ipynb …]", file=sys.stderr)
        return 2
    from crm_analytics import paths

    notebooks = args[2:] or sorted(str(p) for p in paths.notebooks_dir().glob("[0-9][0-9]_*.ipynb"))
    count = 0
    for nb in notebooks:
        for text in missing(args[1], nb):
            count += 1
            print(f"{Path(nb).stem}\t{text!r}")
    print(f"{count} texts without a {args[1]} translation", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())

"""Reports in Turkish or English: the catalogues, the locale's numbers and every notebook text translated."""

from __future__ import annotations

import string
from pathlib import Path

import pandas as pd
import pytest
from babel.messages.pofile import read_po

from crm_analytics import i18n
from crm_analytics.reports import report

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.use("en")


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def _entries():
    for po in sorted(i18n.LOCALE_DIR.glob("*/*.po")):
        with open(po, "rb") as fh:
            for msg in read_po(fh):
                if msg.id:
                    yield po, msg


def test_every_translation_keeps_the_fields_of_its_english_text():
    bad = [(po.relative_to(ROOT), msg.id) for po, msg in _entries()
           if msg.string and _fields(str(msg.id)) != _fields(str(msg.string)) - (
               {"currency"} if msg.context == i18n.COLUMN else set())]  # a column label may name the currency
    assert not bad, bad[:5]


def test_no_message_is_only_a_field():
    """A message id such as ``{note}`` would match every text; say the words around it."""
    bad = [(po.name, msg.id) for po, msg in _entries()
           if str(msg.id).strip() and not string.Formatter().parse(str(msg.id)).__next__()[0].strip()
           and all(not lit.strip() for lit, _, _, _ in string.Formatter().parse(str(msg.id)))]
    assert not bad, bad


def test_a_text_has_one_translation_across_the_catalogues():
    seen: dict[tuple, tuple] = {}
    clashes = []
    for po, msg in _entries():
        key = (po.parent.name, msg.context, str(msg.id))
        if key in seen and seen[key][1] != msg.string:
            clashes.append((key, seen[key][0].name, po.name))
        seen.setdefault(key, (po, msg.string))
    assert not clashes, clashes[:5]


def test_every_column_with_an_english_label_has_a_turkish_one():
    english = {k for k in i18n.catalog("en") if k[0] == i18n.COLUMN}
    turkish = {k for k in i18n.catalog("tr") if k[0] == i18n.COLUMN}
    assert not english - turkish, sorted(english - turkish)[:10]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_text_of_the_notebook_has_a_turkish_translation(notebook):
    """Markdown blocks, report.md templates and chart titles and labels written in the notebook
    (`python -m crm_analytics.i18n missing tr` lists what is left)."""
    assert i18n.missing("tr", notebook) == []


def test_numbers_money_and_dates_follow_the_locale():
    i18n.use("tr", currency="TRY")
    assert i18n.money(1234.56, 2) == "₺1.234,56"
    assert i18n.date("2026-12-03") == "3 Aralık 2026"
    assert i18n.percent(0.125, 1) == "%12,5"
    assert i18n.format_value(-0.0004, ".2f") == "0,00"  # never -0
    assert i18n.format_value(True) == "evet"
    i18n.use("en", currency="TRY")
    assert i18n.money(1234.56, 2) == "TRY\u00a01,234.56"
    assert i18n.date("2026-12-03") == "3 December 2026"
    assert i18n.format_value(0.125, ".1%") == "12.5%"
    assert i18n.format_value(-0.0, ",.0f") == "0"


def test_md_translates_the_template_and_formats_the_fields_for_the_locale():
    i18n.use("tr", currency="TRY")
    out = report.md("{n:,} customers", n=12345).data
    assert "12&#46;345" in out  # the locale's thousands dot, escaped like every field
    assert report.md("yes").data == "evet"


def test_styled_shows_labels_yes_no_and_no_row_numbers():
    frame = pd.DataFrame({"customers": [1200, 3], "flag": [True, False], "delta": [-0.0, 2.5]})
    html = report.styled(frame).to_html()
    assert "Customers" in html and ">yes<" in html and ">no<" in html
    assert ">-0<" not in html and ">0<" in html
    assert 'class="row_heading' not in html  # the 0, 1 row numbers are hidden
    i18n.use("tr")
    html = report.styled(frame).to_html()
    assert "Müşteri" in html and ">evet<" in html and "1.200" in html


def test_a_chart_title_made_from_a_template_is_translated():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i18n.use("tr")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0.5, 1.5])
    ax.set_title("Choosing k: silhouette by number of clusters")
    i18n.translate_figure(fig)
    fig.canvas.draw()
    assert ax.get_title() == "k seçimi: küme sayısına göre silhouette"
    assert any("," in t.get_text() for t in ax.get_yticklabels())  # 0,5 not 0.5
    plt.close(fig)


def test_holidays_and_shopping_days_are_marked_on_a_date_axis():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crm_analytics.reports import plots

    days = pd.date_range("2025-10-01", "2025-12-31")
    fig, ax = plt.subplots()
    ax.plot(days, range(len(days)))
    plots.mark_days(ax, "TR")
    texts = {t.get_text() for t in ax.texts}
    assert {"11.11", "Black Friday"} <= texts  # 28 November 2025 is the Friday after the 4th Thursday
    assert plots.shopping_days("2025-11-01", "2025-11-30")[pd.Timestamp("2025-11-28").date()] == "Black Friday"
    assert len(ax.lines) >= 3  # 29 October (Republic Day) and the two shopping days
    plt.close(fig)


def test_an_unknown_holiday_country_is_refused_with_a_hint():
    from crm_analytics.errors import ParamsError

    with pytest.raises(ParamsError, match="TR"):
        i18n.check_holiday_country("TRK")


def test_data_text_is_not_half_translated_by_a_template():
    """A product called 'Good neighbours' must not become 'Good komşu' through the template
    '{value} neighbours'; a number in that place, or data in quotes, is what the template is for."""
    i18n.use("tr")
    assert (None, "{value} neighbours") in i18n.catalog("tr")
    assert i18n.value("Good neighbours") == "Good neighbours"
    assert i18n.value("50 neighbours") == i18n.catalog("tr")[(None, "{value} neighbours")].format(value="50")

"""What notebook 05 shows: labels, supported parts, sentences and the metrics contract of issue 15."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analytics.reports import behaviour_report as br
from crm_analytics import i18n
from crm_analytics.models.behaviour import FUNNEL_STEPS
from crm_analytics.models.funnel import biggest_leak, cart_abandonment, funnel


def _sessions() -> pd.DataFrame:
    rows = []
    for device, n, steps in [("desktop", 40, 1), ("desktop", 20, 2), ("desktop", 10, 4), ("ios", 10, 1),
                             ("ios", 10, 3), ("ios", 20, 4)]:
        for _ in range(n):
            rows.append({"device": device, **{f"has_{s}": i < steps for i, s in enumerate(FUNNEL_STEPS)}})
    s = pd.DataFrame(rows)
    s["converted"] = s["has_purchase"]
    s["session_id"] = range(len(s))
    return s


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.use("en")


def test_every_funnel_step_has_a_plain_label():
    assert set(FUNNEL_STEPS) <= set(br.STEP_LABELS)


def test_every_word_the_report_writes_has_a_turkish_translation():
    turkish = {msgid for ctx, msgid in i18n.catalog("tr") if ctx is None}
    assert [w for w in br.reader_words() if w not in turkish] == []


def test_every_column_the_report_shows_has_a_label_in_both_languages():
    names = set(br.PERCENT_COLUMNS) | set(br.MONEY_COLUMNS) | set(br.RENAME.values())
    names |= set(br.funnel_table(funnel(_sessions())).reset_index().columns)
    names |= set(br.supported_parts("events", {"product_view"}).reset_index().columns)
    for lang in ("en", "tr"):
        labels = {msgid for ctx, msgid in i18n.catalog(lang) if ctx == i18n.COLUMN}
        assert sorted(names - labels) == [], lang


def test_show_uses_reader_labels_percentages_and_yes_no():
    table = pd.DataFrame({"product_id": ["P1", "<b>P2</b>"], "views": [10, 20], "cart_per_view": [0.25, 0.5],
                          "rising": [True, False]})
    html = br.show(table, "product_id").to_html()
    assert "Add-to-carts per view (%)" in html and "cart_per_view" not in html
    assert "25.0%" in html and ">yes<" in html and ">no<" in html
    assert "<b>P2</b>" not in html and "&lt;b&gt;P2&lt;/b&gt;" in html
    assert ">Product code<" in html  # the index name too
    i18n.use("tr", currency="TRY")
    html = br.show(table.assign(value=[1234.0, 5.0]), "product_id").to_html()
    assert "Görüntüleme başına sepete ekleme (%)" in html and "%25,0" in html and ">evet<" in html
    assert "₺1.234" in html and "Sepette bırakılan tutar (₺)" in html


def test_show_puts_a_products_name_beside_its_code_and_codes_in_words():
    table = pd.DataFrame({"product_id": ["P1"], "device": ["mobile_web"], "views": [3]})
    products = pd.DataFrame({"product_id": ["P1"], "name": ["Kazak"]})
    html = br.show(table, "product_id", products=products).to_html()
    assert "Kazak" in html and "mobile web" in html and "mobile_web" not in html
    i18n.use("tr")
    assert "mobil web" in br.show(table, "product_id").to_html()


def test_supported_parts_say_why_not():
    views_only = br.supported_parts("events", {"product_view"})
    assert views_only.loc["Sessions", "supported"]
    assert not views_only.loc["Funnel (view → cart → checkout → purchase)", "supported"]
    assert views_only.loc["Site search", "why_not"] == "no search events"
    summaries = br.supported_parts("session summaries", set())
    assert summaries.loc["Purchase-intention model", "supported"]
    assert not summaries.loc["Paths", "supported"]
    i18n.use("tr")
    assert br.supported_parts("events", {"product_view"}).loc["Site içi arama", "why_not"] == "arama olayı yok"


def test_dataset_mode():
    ev = pd.DataFrame({"event_type": ["page_view", "product_view"]})
    assert br.dataset_mode(ev, None) == ("events", {"page_view", "product_view"})
    assert br.dataset_mode(ev.iloc[:1], pd.DataFrame({"purchased": [True]}))[0] == "session summaries"
    assert br.dataset_mode(None, None)[0] == "none"


def test_leak_sentences_name_the_worst_step_per_group_and_escape_names():
    s = _sessions()
    s.loc[s["device"] == "ios", "device"] = "<i>ios</i>"
    leaks = biggest_leak(funnel(s, "device"), by="device")
    text = br.leak_sentences(leaks, "device").data
    assert "desktop" in text and "&#60;i&#62;ios" in text and "<i>" not in text
    desktop = leaks.set_index("device").loc["desktop"]
    # desktop: 70 view, 30 go on to the cart (57 % drop), 10 of those 30 to checkout (67 % drop): the worst step
    assert (desktop["from_step"], desktop["to_step"]) == ("add_to_cart", "checkout_start")
    assert "from add to cart to checkout: 20 of 30 sessions" in text
    assert text.startswith("**By device**")
    i18n.use("tr")
    text = br.leak_sentences(leaks, "device").data
    assert text.startswith("**Cihaza göre**") and "sepete ekleme → ödeme adımı" in text


def test_change_sentence_names_the_period_in_the_reader_language():
    change = pd.DataFrame({"week": ["2025-11-17", "2025-11-24", "2025-12-01"], "rate": [0.3, 0.35, 0.2],
                           "previous_rate": [None, 0.3, 0.35], "change_points": [None, 5.0, -15.0],
                           "change_low": [None, 1.0, -20.0], "change_high": [None, 9.0, -10.0],
                           "change_significant": [False, True, True]})
    text = br.change_sentence(change, "week").data
    assert "week of 24 November 2025" in text and "a real change" in text and "95% confidence interval" in text
    i18n.use("tr")
    text = br.change_sentence(change, "week", alpha=0.1).data
    assert "24 Kasım 2025 haftasında" in text and "gerçek bir değişim" in text and "%90 güven aralığı" in text
    month = change.rename(columns={"week": "month"}).assign(month=["2025-09", "2025-10", "2025-11"])
    assert "Ekim 2025 ayında" in br.change_sentence(month, "month").data


def test_charts_over_time_have_dates_on_the_x_axis_and_mark_the_shopping_days():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = pd.date_range("2025-09-01", "2025-12-29", freq="W-MON")
    s = pd.DataFrame({"week": [d.date() for d in weeks.repeat(3)],
                      "start_ts": pd.to_datetime(list(weeks.repeat(3)), utc=True) + pd.Timedelta(hours=30),
                      "converted": [True, False, False] * len(weeks)})
    s.loc[s.index[-1], "start_ts"] = pd.Timestamp("2026-01-04 20:00", tz="UTC")
    from crm_analytics.models.behaviour import conversion_change

    i18n.use("en", holidays="TR")
    ax = br.plot_sessions_over_time(s)
    assert {"11.11", "Black Friday"} <= {t.get_text() for t in ax.texts}
    ax = br.plot_conversion_over_time(conversion_change(s, period="week"), "week", sessions_df=s)
    assert ax.get_title().startswith("Conversion rate per week")
    assert any(t.get_text() == "95% confidence interval" for t in ax.get_legend().get_texts())
    plt.close("all")


def test_metrics_follow_the_issue_contract():
    s = _sessions()
    from crm_analytics.models.behaviour import conversion_rate

    m = br.metrics(sessions=len(s), views=300, mean_views=3.0, overall=conversion_rate(s),
                   by_visitor=None, funnel=funnel(s), abandonment=cart_abandonment(s), search=None,
                   search_conversion=None, intent=None)
    assert set(m) >= {"sessions", "conversion_rate", "conversion_by_visitor_type", "funnel", "cart_abandonment_rate",
                      "zero_result_search_share", "search_conversion_rate", "views", "mean_views_per_session"}
    assert m["conversion_rate"]["value"] == pytest.approx(30 / 110)
    assert m["conversion_rate"]["ci_low"] < m["conversion_rate"]["value"] < m["conversion_rate"]["ci_high"]
    assert set(m["funnel"]) == set(FUNNEL_STEPS)
    assert m["funnel"]["purchase"]["sessions"] == 30
    assert m["cart_abandonment_rate"]["value"] == pytest.approx(30 / 60)  # 60 sessions carted, 30 bought
    assert m["zero_result_search_share"] is None and "intent_model" not in m


def test_funnel_by_table_shows_each_groups_step_conversion():
    wide = br.funnel_by_table(funnel(_sessions(), "device"), "device")
    assert list(wide.columns) == ["sessions", "to_add_to_cart", "to_checkout_start", "to_purchase"]
    assert wide.loc["desktop", "sessions"] == 70
    assert wide.loc["desktop", "to_add_to_cart"] == pytest.approx(30 / 70)
    assert wide.loc["iOS", "to_purchase"] == pytest.approx(20 / 30)  # device codes in words


def test_a_small_shop_gets_a_monthly_chart_and_a_busy_one_a_weekly_one():
    weeks = pd.date_range("2025-01-06", periods=8, freq="W-MON")
    small = pd.DataFrame({"week": [d.date() for d in weeks.repeat(50)]})
    assert br.chart_period(small) == "month"
    assert br.chart_period(pd.DataFrame({"week": [d.date() for d in weeks.repeat(500)]})) == "week"


def test_means_and_seconds_are_shown_with_fixed_decimals():
    html = br.show(pd.DataFrame({"landing_type": ["page view"], "product_views_per_session": [2.5094],
                                 "median_duration_seconds": [123.5]}), "landing_type").to_html()
    assert ">2.5<" in html and ">124<" in html and "2.509" not in html

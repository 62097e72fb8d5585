"""What notebook 05 shows: labels, supported parts, sentences and the metrics contract of issue 15."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analytics import behaviour_report as br
from crm_analytics.behaviour import FUNNEL_STEPS
from crm_analytics.funnel import biggest_leak, cart_abandonment, funnel


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


def test_every_funnel_step_has_a_plain_label():
    assert set(FUNNEL_STEPS) <= set(br.STEP_LABELS)


def test_show_uses_reader_labels_percentages_and_yes_no():
    table = pd.DataFrame({"product_id": ["P1", "<b>P2</b>"], "views": [10, 20], "cart_per_view": [0.25, 0.5],
                          "rising": [True, False]})
    html = br.show(table, "product_id").to_html()
    assert "add to carts per view" in html and "cart_per_view" not in html
    assert "25.0%" in html and ">yes<" in html and ">no<" in html
    assert "<b>P2</b>" not in html and "&lt;b&gt;P2&lt;/b&gt;" in html
    assert ">product<" in html  # the index name too


def test_supported_parts_say_why_not():
    views_only = br.supported_parts("events", {"product_view"})
    assert views_only.loc["Sessions", "supported"] == "yes"
    assert views_only.loc["Funnel (view → cart → checkout → purchase)", "supported"] == "no"
    assert views_only.loc["Site search", "why not"] == "no search events"
    summaries = br.supported_parts("session summaries", set())
    assert summaries.loc["Purchase-intention model", "supported"] == "yes"
    assert summaries.loc["Paths", "supported"] == "no"


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
    assert "from add to cart to checkout: 20 of 30" in text


def test_metrics_follow_the_issue_contract():
    s = _sessions()
    from crm_analytics.behaviour import conversion_rate

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
    assert list(wide.columns) == ["sessions", "→ add to cart", "→ checkout", "→ purchase"]
    assert wide.loc["desktop", "sessions"] == 70
    assert wide.loc["desktop", "→ add to cart"] == pytest.approx(30 / 70)
    assert wide.loc["ios", "→ purchase"] == pytest.approx(20 / 30)

"""The offers half of notebook 06: the per-customer action table and the lists for the e-mail tool."""

from __future__ import annotations

import pandas as pd

from crm_analytics.models import next_action as na
from crm_analytics.reports import offers_report


def _inputs():
    chosen = pd.DataFrame({"action": ["product_email", "nothing", "discount"],
                           "expected_incremental_margin": [3.456, 0.0, 1.0],
                           "reason": ["highest expected margin", "no action is expected to pay for itself",
                                      "highest expected margin"]}, index=pd.Index(["a", "b", "c"], name="customer_id"))
    actions = [na.Action("product_email", "C1", "mail", "offer", "email", 0.1, 1.0),
               na.Action("discount", "C2", "summer", "d15", "sms", 0.15, 1.0)]
    rel = pd.DataFrame({"best_day": ["Monday", "Friday", "Sunday"], "best_hour": [20, 9, 11],
                        "engagement_email": [0.3, 0.2, 0.1], "engagement_sms": [0.0, 0.05, 0.07]}, index=["a", "b", "c"])
    top = pd.DataFrame({"offer_category": ["Books", "Toys", "Garden"]}, index=["a", "b", "c"])
    recs = pd.DataFrame({"customer_id": ["a", "a", "c"], "product_id": ["p2", "p1", "p3"], "rank": [2, 1, 1]})
    products = pd.DataFrame({"product_id": ["p1", "p2", "p3"], "name": ["Atlas", "Ball", "Chair"]})
    return chosen, actions, rel, top, recs, products


def test_customer_actions_fill_what_the_e_mail_tool_needs_and_nothing_for_nothing():
    t = offers_report.customer_actions(*_inputs()).set_index("customer_id")
    assert list(t.reset_index().columns[:len(offers_report.EXPORT_COLUMNS)]) == offers_report.EXPORT_COLUMNS
    assert t.loc["a", ["channel", "send_day", "send_hour", "offer_category", "product_id", "product_name"]].tolist() == \
        ["email", "Monday", 20, "Books", "p1", "Atlas"]  # the first recommendation, by rank
    assert t.loc["a", "expected_incremental_margin"] == 3.46 and t.loc["a", "relevance"] == 0.3
    assert t.loc["c", "channel"] == "sms" and t.loc["c", "relevance"] == 0.07 and pd.isna(t.loc["c", "product_id"])
    assert t.loc["b", ["channel", "send_day", "offer_category"]].isna().all() and pd.isna(t.loc["b", "send_hour"])


def test_exports_hold_only_consented_customers_and_stale_lists_are_removed(tmp_path):
    nba = offers_report.customer_actions(*_inputs())
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], "consent_marketing": [True, True, None]})
    birthdays = pd.DataFrame({"customer_id": ["a", "c"], "birth_day": [3, 4]})
    winback = pd.DataFrame({"churn_risk": ["high", "high"]}, index=pd.Index(["b", "c"], name="customer_id"))
    processed, exports = tmp_path / "processed", tmp_path / "exports"
    n = offers_report.export_offers(nba, birthdays, winback, customers, processed, exports)
    assert n == {"next_best_action.parquet": 2, "next_best_action.csv": 1, "birthday_month.csv": 1, "winback.csv": 1}
    csv = pd.read_csv(exports / "next_best_action.csv")
    assert csv["customer_id"].tolist() == ["a"] and list(csv.columns) == offers_report.EXPORT_COLUMNS
    assert set(pd.read_parquet(processed / "next_best_action.parquet")["customer_id"]) == {"a", "b"}
    assert pd.read_csv(exports / "winback.csv")["customer_id"].tolist() == ["b"]
    # a later run without next best action leaves no list from the earlier run to be sent by mistake
    n = offers_report.export_offers(None, birthdays, winback, customers, processed, exports)
    assert n["next_best_action.csv"] == 0 and not (exports / "next_best_action.csv").exists()
    assert not (processed / "next_best_action.parquet").exists()


def test_report_tables_use_plain_labels():
    chosen, *_ = _inputs()
    s = na.summary(chosen, ["product_email", "discount"])
    t = offers_report.choice_table(s)
    assert list(t.index) == ["product e-mail", "discount", "no message"]
    assert t["customer_share"].sum() == 1 and t.loc["product e-mail", "expected_margin"] == 3.456
    r = offers_report.reasons_table(chosen)
    assert r.index.names == ["action", "decision_reason"]
    assert r.loc[("no message", "no action is expected to pay for itself"), "customers"] == 1


def test_report_tables_speak_turkish_and_label_every_column():
    from crm_analytics import i18n

    chosen, actions, rel, *_ = _inputs()
    try:
        i18n.use("tr", currency="TRY")
        t = offers_report.choice_table(na.summary(chosen, ["product_email", "discount"]))
        assert list(t.index) == ["ürün e-postası", "indirim", "mesaj gönderilmez"]
        r = offers_report.reasons_table(chosen)
        assert ("ürün e-postası", "en yüksek beklenen marj") in r.index
        totals = offers_report.totals_table({"next_best_action": 5.0, "send_everyone_everything": 1.0,
                                             "best_single_action": "discount", "best_single_action_total": 2.0})
        assert "indirim" in totals.index[1]
        rel = rel.assign(preferred_channel=["email", "push", "email"], relevance=[0.3, 0.2, 0.1],
                         timing_basis=["own activity", "shop-wide", "own activity"])
        ch, days = offers_report.relevance_tables(rel)
        assert set(ch.index) == {"e-posta", "anlık bildirim"} and list(days.index) == ["Pazartesi", "Cuma", "Pazar"]
        frames = [t, r, totals, ch, days]
        labels = {c for f in frames for c in [*f.columns, *f.index.names]}
        assert all((i18n.COLUMN, c) in i18n.catalog("tr") for c in labels), labels
    finally:
        i18n.use("en")

"""Cleaning: nothing lost, bad values rejected with a reason, dirt recognised."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_analytics.ingest.cleaning import clean_table, clean_tables, parse_timestamps
from crm_analytics.errors import DataContractError

GOOD_TS = st.sampled_from(["2024-01-05T10:00:00Z", "2024-02-29T23:59:59+03:00", "2025-12-31 08:00:00"])
BAD_TS = st.sampled_from(["2024-13-45 25:61", "N/A", "yesterday", "31/02/2024"])
ORDER_COLUMNS = ["order_id", "customer_id", "order_ts", "channel", "status", "order_total"]
order_rows = st.fixed_dictionaries({
    "order_id": st.one_of(st.sampled_from(["O1", "O2", "O3", "O4", "TEST-9", " O5 "]), st.text(max_size=3)),
    "customer_id": st.one_of(st.none(), st.sampled_from(["C1", "C2", "", "C3.0"])),
    "order_ts": st.one_of(GOOD_TS, BAD_TS, st.none()),
    "channel": st.sampled_from(["web", "app", None]),
    "status": st.sampled_from(["completed", "Cancelled", " returned ", "lost", None]),
    "order_total": st.one_of(st.sampled_from(["10.5", "7,25", "-3", "abc", ""]), st.floats(0, 1e4).map(str)),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(order_rows, min_size=0, max_size=40), dup_idx=st.lists(st.integers(0, 39), max_size=8))
def test_every_row_ends_in_exactly_one_place(rows, dup_idx):
    rows = rows + [rows[i] for i in dup_idx if i < len(rows)]  # plant exact duplicates
    raw = pd.DataFrame(rows, columns=ORDER_COLUMNS) if rows else pd.DataFrame(columns=ORDER_COLUMNS)
    raw["_source_file"] = "orders.csv"
    raw["_source_line"] = np.arange(2, len(raw) + 2)
    ts = raw["order_ts"].dropna()
    ts = ts[ts != "N/A"]  # a blank marker, not a bad date
    if len(ts) and not ts.isin(["2024-01-05T10:00:00Z", "2024-02-29T23:59:59+03:00", "2025-12-31 08:00:00"]).any():
        with pytest.raises(DataContractError, match="no value parses as a date"):
            clean_table("orders", raw)  # a column with no parseable value stops the run
        return
    totals = raw["order_total"].dropna().str.strip()
    totals = totals[totals != ""]
    if len(totals) and (totals == "abc").all():
        with pytest.raises(DataContractError, match="column 'order_total': no value is a number"):
            clean_table("orders", raw)  # so does a required number column without a single number
        return
    kept, rejects, c = clean_table("orders", raw)
    assert c["rows_in"] == len(raw) == c["rows_kept"] + c["rows_rejected"] + c["rows_duplicate"]
    assert len(kept) == c["rows_kept"] and len(rejects) == c["rows_rejected"] + c["rows_duplicate"]
    assert sum(c["rejects_by_reason"].values()) == c["rows_rejected"]
    # every raw line is accounted for exactly once
    assert rejects["_source_line"].astype(int).is_unique
    assert rejects["reason"].notna().all()
    # kept rows meet the contract
    assert kept["order_ts"].notna().all() and str(kept["order_ts"].dtype) == "datetime64[us, UTC]"
    assert kept["status"].isin(["completed", "cancelled", "returned"]).all()
    assert kept["order_id"].is_unique
    assert not kept["order_id"].str.startswith("TEST").any()
    assert (kept["order_total"] >= 0).all()


def _orders(**cols):
    n = len(next(iter(cols.values())))
    base = {"order_id": [f"O{i}" for i in range(n)], "customer_id": ["C1"] * n,
            "order_ts": ["2024-01-01T00:00:00Z"] * n, "status": ["completed"] * n, "order_total": ["1"] * n}
    base.update(cols)
    return pd.DataFrame(base)


def test_reasons_and_lines_are_recorded():
    raw = _orders(order_ts=["2024-01-01T00:00:00Z", "2024-02-30T00:00:00Z", "2024-01-02T00:00:00Z"],
                  order_total=["1", "2", "x"])
    raw["_source_file"], raw["_source_line"] = "orders.csv", [2, 3, 4]
    kept, rejects, c = clean_table("orders", raw)
    assert list(kept["order_id"]) == ["O0"]
    assert dict(zip(rejects["_source_line"].astype(int), rejects["reason"])) == {
        3: "unparseable_order_ts", 4: "non_numeric_order_total"}


def test_missing_required_column_names_file_and_column():
    raw = _orders(order_total=["1"]).drop(columns="order_ts").assign(_source_file="shop_orders.csv", _source_line=[2])
    with pytest.raises(DataContractError, match=r"shop_orders\.csv: required column 'order_ts' of table 'orders' is absent"):
        clean_table("orders", raw)


def test_column_without_any_date_stops_with_a_fix():
    raw = _orders(order_ts=["soon", "later"]).assign(_source_file="o.csv", _source_line=[2, 3])
    with pytest.raises(DataContractError, match=r"o\.csv: column 'order_ts': no value parses as a date .*date_format"):
        clean_table("orders", raw)


@pytest.mark.parametrize("text,fmt,expected", [
    (["2024-03-05T14:22:10Z"], None, "2024-03-05 14:22:10"),
    (["05.03.2024", "31.12.2024"], None, "2024-03-05 00:00:00"),
    (["03/05/2024 14:22", "12/31/2024 08:00"], None, "2024-03-05 14:22:00"),
    (["45356"], None, "2024-03-05 00:00:00"),
    (["05/03/2024"], "%d/%m/%Y", "2024-03-05 00:00:00"),
])
def test_timestamp_formats(text, fmt, expected):
    parsed, _ = parse_timestamps(pd.Series(text), fmt=fmt)
    assert parsed.iloc[0] == pd.Timestamp(expected, tz="UTC")
    assert str(parsed.dtype) == "datetime64[us, UTC]"


def test_category_variants_merge_to_the_most_frequent_spelling():
    raw = pd.DataFrame({"product_id": ["P1", "P2", "P3", "P4"],
                        "category": ["Kozmetik", "Kozmetik ", "KOZMETİK", "Elektronik"],
                        "brand": ["A", "a", "A", "B"], "price": ["1", "2", "3", "4"]})
    kept, _, _ = clean_table("products", raw)
    assert list(kept["category"]) == ["Kozmetik", "Kozmetik", "Kozmetik", "Elektronik"]


def test_personal_columns_are_pseudonymised_and_lines_of_test_orders_go_too():
    customers = pd.DataFrame({"customer_id": ["C1"], "email": ["Ayse.Yilmaz@example.com"], "phone": ["+90 555 000 11 22"],
                              "full_name": ["Ayşe Yılmaz"]})
    orders = _orders(order_id=["O1", "TEST-1"])
    lines = pd.DataFrame({"order_id": ["O1", "TEST-1"], "line_no": [1, 1], "product_id": ["P1", "P1"],
                          "quantity": ["1", "1"], "unit_price": ["1", "1"]})
    res = clean_tables({"customers": customers, "orders": orders, "order_lines": lines}, key=b"k")
    c = res.tables["customers"].iloc[0]
    assert "Ayse" not in str(c["email"]) and len(c["email"]) == 20 and "555" not in str(c["phone"])
    assert list(res.tables["order_lines"]["order_id"]) == ["O1"]
    assert res.counts["order_lines"]["rejects_by_reason"] == {"order_rejected": 1}
    n = res.counts["order_lines"]
    assert n["rows_in"] == n["rows_kept"] + n["rows_rejected"] + n["rows_duplicate"]


def test_cancellations_are_matched_to_the_earlier_line_they_cancel():
    from crm_analytics.ingest.cleaning import match_cancellations

    lines = pd.DataFrame({
        "_customer_id": ["1", "1", "1", "2", None],
        "product_id": ["A", "A", "B", "A", "A"],
        "_order_ts": ["2011-01-01 10:00", "2011-01-02 10:00", "2011-01-03 10:00", "2011-01-04 10:00",
                      "2011-01-05 10:00"],
        "quantity": [5, -3, -1, -2, -1],
        "_cancelled": [False, True, True, True, True],
    })
    # 1/A (3 of 5 bought earlier) matches; 1/B was never bought; customer 2 bought nothing; guests cannot match
    assert match_cancellations(lines) == 1


def test_a_timestamp_column_without_any_value_claims_no_format():
    raw = pd.DataFrame({"customer_id": ["a", "b"], "signup_ts": [None, ""], "_source_file": "c.csv",
                        "_source_line": [2, 3]})
    kept, _, counts = clean_table("customers", raw)
    assert len(kept) == 2 and "signup_ts" not in counts["timestamp_formats"]


def test_the_quality_tables_speak_the_report_language():
    from crm_analytics import i18n
    from crm_analytics.reports import cleaning_report

    notes = {"inputs": [{"file": "orders.csv", "format": "csv", "encoding": "cp1254", "delimiter": ";", "decimal": ",",
                         "thousands": ".", "date_order": "day first",
                         "date_how": "order_ts: day first: 3 values have a day above 12 in the first field, e.g. '13.01.2024'",
                         "numbers_how": "decimal comma: 5 values prove it, e.g. '12,50' in column 'Tutar'"}]}
    counts = {"orders": {"rows_in": 10, "rows_kept": 7, "rows_rejected": 2, "rows_duplicate": 1,
                         "rejects_by_reason": {"unparseable_order_ts": 1, "test_order": 1}}}
    english = cleaning_report.input_formats_table(notes).iloc[0]
    assert (english["delimiter"], english["decimal"], english["date order"]) == ("semicolon", "comma", "day first")
    assert cleaning_report.reason_words("non_positive_quantity") == "non positive quantity"
    try:
        i18n.use("tr", currency="TRY")
        row = cleaning_report.input_formats_table(notes).iloc[0]
        assert (row["delimiter"], row["decimal"], row["date order"]) == ("noktalı virgül", "virgül", "önce gün")
        assert row["how it was decided"] == ("ondalık virgül: 5 değer bunu kanıtlıyor, ör. 'Tutar' sütununda '12,50'; "
                                             "sipariş zamanı: önce gün: 3 değerde ilk alan 12'den büyük, ör. '13.01.2024'")
        assert cleaning_report.reason_words("unparseable_order_ts") == "okunamayan tarih: sipariş zamanı"
        assert cleaning_report.reason_words("test_order") == "test siparişi"
        summary = cleaning_report.cleaning_summary(
            {"headline": {"input rows": 10, "rows kept": 7, "share kept": 0.7, "customers identified": 5},
             "tables": counts, "customers_identified_in": "orders", "guest_lines": 0, "cancelled_lines": 0},
            source_kind="files").data
        assert "**10 satır geldi**" in summary and "**5 müşteri**" in summary and "%70,0" in summary
        view = cleaning_report.customer_view_summary(pd.DataFrame({"orders": [2, 3, 0], "revenue": [1234.0, 10.0, 0.0],
                                                           "buyer": [True, True, False]}))
        assert view.set_index("measure").loc["median revenue of buyers", "value"] == "₺622"
    finally:
        i18n.use("en")

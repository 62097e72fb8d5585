"""The orders, lines, customers and assignments of a big generated world are cleaned in DuckDB
(crm_analytics.ingest.events_sql.clean_table_sql) with the results of the pandas rules (clean_table): the same
kept rows in the same order, the same rejects and counts, on the generated dirt and on hand-made dirt."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analytics.ingest import collect as collect_mod
from crm_analytics.ingest.cleaning import clean_table, clean_tables
from crm_analytics.ingest.demo import generate
from crm_analytics.ingest.events_sql import clean_table_sql
from crm_analytics.ingest.sources import RawParquet, _with_lines

KEY = b"test-key"
BIG = ("orders", "order_lines", "customers", "campaign_assignments")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    generate(out, n_customers=1500, seed=5, with_events=False)
    return out


def _assert_same(name: str, raw: pd.DataFrame, path, tmp_path) -> dict:
    want_kept, want_rej, want_counts = clean_table(name, _with_lines(raw, path.name, first_line=1))
    kept, rej, counts = clean_table_sql(name, RawParquet(path, path.name, first_line=1), workdir=tmp_path)
    assert counts == want_counts
    pd.testing.assert_frame_equal(kept, want_kept)
    pd.testing.assert_frame_equal(rej, want_rej)
    return counts


@pytest.mark.parametrize("name", BIG)
def test_generated_dirt_same_in_duckdb_and_pandas(world, tmp_path, name):
    path = world / f"{name}.parquet"
    counts = _assert_same(name, pd.read_parquet(path), path, tmp_path)
    assert counts["rows_kept"] > 0
    if name == "orders":
        assert {"test_order", "unparseable_order_ts"} <= set(counts["rejects_by_reason"])
    if name == "order_lines":
        assert counts["rejects_by_reason"]["non_positive_quantity"] > 0 and counts["rows_duplicate"] > 0


def test_hand_made_dirt_same_in_duckdb_and_pandas(tmp_path):
    orders = pd.DataFrame({
        "order_id": ["A1", "A2", " A3 ", "TEST-1", "A5", "A6", "A6", "A7.0", "A8", "A9", "A10", "A1"],
        "customer_id": ["C1", None, "C2", "C1", "C3", "C4", "C4", "C5", "nan", "C6", "C7", "C9"],
        "order_ts": ["2024-01-05T10:00:00Z", "2024-01-06T10:00:00Z", "2024-01-07 10:00:00", "2024-01-08T10:00:00Z",
                     "2024-02-30T10:00:00Z", "2024-01-09T10:00:00Z", "2024-01-09T10:00:00Z", "2024-01-10T10:00:00",
                     "2024-01-11T10:00:00Z", " 2024-01-12T10:00:00Z ", "gestern", "2024-01-13T10:00:00Z"],
        "channel": ["web", "APP", "marketplace", "web", "web", "web", "web", "fax", "web", "web", "web", "web"],
        "status": ["completed", "cancelled", "Returned", "completed", "completed", "completed", "completed",
                   "completed", "completed", "completed", "completed", "completed"],
        "order_total": [10.0, 20.0, -5.0, 1.0, 3.0, 4.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
    })
    orders.to_parquet(tmp_path / "orders.parquet", index=False)
    counts = _assert_same("orders", orders, tmp_path / "orders.parquet", tmp_path)
    assert {"test_order", "negative_order_total", "unparseable_order_ts",
            "duplicate_key"} <= set(counts["rejects_by_reason"])
    lines = pd.DataFrame({
        "order_id": ["A1", "A1", "A1", "A2", "A2", "A3", "A3", "A4", "A5"],
        "line_no": [1, 2, 3, 1, 2, 1, 1, 1, 1],
        "product_id": ["P1", "P1", "P2", "P1", "P3", "P1", "P2", "P1", "P9"],
        "quantity": [1.0, 1.0, -1.0, 0.0, 2.0, 1.0, 1.0, 3.0, 1.0],
        "unit_price": [5.0, 5.0, 5.0, 1.0, 0.0, -1.0, 2.0, 4.0, 1.5],
        "discount": [0.1, 0.1, None, 0.0, None, 0.2, None, 0.0, 0.0],
    })  # A1 line 2: the same content as line 1 but for line_no (a duplicate); A3 line 1 twice: duplicate key
    lines.to_parquet(tmp_path / "order_lines.parquet", index=False)
    counts = _assert_same("order_lines", lines, tmp_path / "order_lines.parquet", tmp_path)
    assert counts["rows_duplicate"] == 1
    assert {"non_positive_quantity", "zero_price", "negative_price"} <= set(counts["rejects_by_reason"])
    customers = pd.DataFrame({"customer_id": ["C1", "C2", "C3", "C3", "C4", "C5", "C6"],
                              "email": ["A.B@X.COM", " Çağ@Örnek.com ", None, "c@d.e", "x@y.z", "NULL", "e@f.g"],
                              "signup_ts": ["2024-01-01T00:00:00Z"] * 7,
                              "birth_date": ["1985-03-12", "1985-02-30", " 1990-01-01 ", None, "1970-05-05T10:30:00Z",
                                             "gestern", "2001-12-31"],
                              "consent_marketing": [True, None, False, True, True, False, None]})
    customers.to_parquet(tmp_path / "customers.parquet", index=False)
    _assert_same("customers", customers, tmp_path / "customers.parquet", tmp_path)


def test_collect_cleans_big_tables_in_duckdb_with_the_same_result(world, tmp_path, monkeypatch):
    """clean_tables with the big tables as parquet files gives what it gives on the frames, cascade included."""
    raw = {name: _with_lines(pd.read_parquet(world / f"{name}.parquet"), f"{name}.parquet", first_line=1)
           for name in ("customers", "products", "orders", "order_lines", "campaigns", "campaign_assignments")}
    want = clean_tables(raw, key=KEY)
    lazy = {**raw, **{n: RawParquet(world / f"{n}.parquet", f"{n}.parquet", first_line=1) for n in BIG}}
    got = clean_tables(lazy, key=KEY, workdir=tmp_path)
    assert got.counts == want.counts
    assert got.counts["order_lines"]["rejects_by_reason"].get("order_rejected", 0) > 0
    for name in want.tables:
        pd.testing.assert_frame_equal(got.tables[name], want.tables[name])
        pd.testing.assert_frame_equal(got.rejects[name], want.rejects[name])
    assert collect_mod.SQL_CLEAN_ROWS >= 5_000_000  # the 1,000,000-customer world stays in pandas

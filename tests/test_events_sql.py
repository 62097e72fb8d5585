"""The events in DuckDB (crm_analytics.ingest.events_sql) give what the pandas path gives: the same kept rows in
the same order, the same rejects, counts, stitching, erasure, quality figures and customer view."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_analytics.ingest import quality
from crm_analytics.ingest.cleaning import CleanResult, clean_tables
from crm_analytics.ingest.contracts import PERSONAL_COLUMNS
from crm_analytics.ingest.erasure import apply_erasure
from crm_analytics.errors import DataContractError
from crm_analytics.ingest.events_sql import SqlEvents
from crm_analytics.ingest.identity import customers_360, stitch_events
from crm_analytics.ingest.privacy import _hmac_sha256
from crm_analytics.ingest.sources import RawParquet, _with_lines
from crm_analytics.ingest.tables import ParquetTable

KEY = b"test-key"


def _pandas(raw: pd.DataFrame, ids: set[str], ts_format: str | None = None):
    """The in-memory path: clean_tables, stitch_events, apply_erasure."""
    res = clean_tables({"events": raw}, key=KEY, ts_format=ts_format)
    res.tables["events"], stitching = stitch_events(res.tables["events"])
    erasure = apply_erasure(res, ids)
    return res, stitching, erasure


def _sql(raw: pd.DataFrame | RawParquet, ids: set[str], tmp_path, ts_format: str | None = None):
    """The DuckDB path, as collect runs it."""
    events = SqlEvents(raw, key=KEY, ts_format=ts_format, workdir=tmp_path / "work")
    stitching = events.stitch()
    erased = events.erase(ids)
    table, rejects = events.write(tmp_path / "events.parquet", tmp_path / "rejects.parquet")
    res = CleanResult(tables={"events": table}, rejects={"events": rejects}, counts={"events": dict(events.counts)})
    erasure = apply_erasure(res, ids, erased={"events": erased})
    return res, stitching, erasure


def _read_back(frame: pd.DataFrame, path) -> pd.DataFrame:
    frame.to_parquet(path, index=False)
    return pd.read_parquet(path)


def assert_same(raw_pandas: pd.DataFrame, raw_sql, tmp_path, ids: set[str] = frozenset(), ts_format=None):
    """Both paths give identical kept rows, rejects, counts, stitching and erasure figures."""
    want, want_stitching, want_erasure = _pandas(raw_pandas, set(ids), ts_format)
    got, got_stitching, got_erasure = _sql(raw_sql, set(ids), tmp_path, ts_format)
    assert got.counts == want.counts
    assert got_stitching == want_stitching
    assert got_erasure == want_erasure
    kept = pd.read_parquet(got.tables["events"].path)
    pd.testing.assert_frame_equal(kept, want.tables["events"])
    pd.testing.assert_frame_equal(kept, _read_back(want.tables["events"], tmp_path / "want.parquet"))
    rejects = pd.read_parquet(got.rejects["events"].path)
    pd.testing.assert_frame_equal(rejects, want.rejects["events"])
    return got, want


# ----------------------------------------------------------------------------- hand-made dirt

def _dirty_events() -> pd.DataFrame:
    rows = [
        # event_id, ts, customer_id, anonymous_id, event_type, results_count, channel
        ("E1", "2024-01-05T10:00:00Z", None, "D1", "page_view", None, "web"),
        ("E2", "2024-01-05T10:01:00Z", "C1", "D1", "login", None, "web"),          # D1 belongs to C1
        (" E3 ", "2024-01-05 10:02:00", None, "D1", " Page_View ", None, "web"),    # trimmed id, label
        ("E4.0", "2024-01-05T10:03:00", "C1.0", "D1", "SEARCH", "12", "web"),      # ".0" dropped
        ("E5", " 2024-01-05T10:04:00Z ", None, "D2", "search", "12,0", "app"),     # padded time, decimal comma
        ("E6", "2024-01-05T10:05:00+03:00", "C2", "D2", "search", "7", "app"),
        ("E7", "2024-01-05T10:06:00Z", "C3", "D2", "search", "abc", "app"),        # non-numeric count
        ("E8", "2024-02-30T10:00:00Z", None, "D2", "page_view", None, "app"),      # no such day
        ("E9", "2024-01-05T24:00:00Z", None, "D3", "page_view", None, "web"),      # no such hour
        ("E10", "gestern", "C4", "D3", "page_view", None, "web"),                  # garbage
        ("E11", "2024-01-05T10:00:00Z", "C4", "D3", "teleport", None, "web"),      # not a known event type
        ("E12", "2024-01-05T10:00:00Z", "C4", "D3", "PAGE_VİEW", None, "web"),     # non-ASCII label
        ("E13", "2024-01-05T10:00:00Z", "C4", "\u00a0D3\u3000", "purchase", None, "web"),  # unicode spaces
        ("", "2024-01-05T10:00:00Z", "C4", "D3", "page_view", None, "web"),       # missing id
        ("nan", "2024-01-05T10:00:00Z", "C4", "D3", "page_view", None, "web"),    # blank token
        (None, "2024-01-05T10:00:00Z", "C4", "D3", "page_view", None, "web"),
        ("E14", None, "C4", "D3", "page_view", None, "web"),                      # missing time
        ("E15", "N/A", "C4", "D3", "page_view", None, "web"),
        ("E16", "2024-01-05T10:00:00Z", "C4", "D3", None, None, "web"),           # missing type
        ("E17", "2024-01-05T10:00:00Z", "C5", "D4", "page_view", " 3 ", " web "),
        ("E17", "2024-01-05T10:00:00Z", "C5", "D4", "page_view", " 3 ", " web "),  # exact duplicate
        ("E17", "2024-01-06T10:00:00Z", "C5", "D4", "page_view", None, "web"),     # same key, other content
        ("E18", "2024-01-05T10:00:00.5Z", "C5", "D4", "page_view", "2.5", "web"),  # fraction, rounded count
        ("E19", "2024-01-05", "C5", None, "page_view", "-4", "web"),               # a date
        ("E 20", "1850-01-01T00:00:00Z", "C6", "D5", "page_view", "1e3", "web"),
        ("E21", "2024-01-05T10:00:00Z", None, None, "email_open", None, None),
        ("E22", "2024-01-05T10:00:00Z", "NULL", "D5", "page_view", "", "web"),
        ("E3", "2024-01-07T10:00:00Z", None, "D1", "page_view", None, "web"),      # key duplicate of " E3 "
    ]
    df = pd.DataFrame(rows, columns=["event_id", "ts", "customer_id", "anonymous_id", "event_type", "results_count",
                                     "channel"])
    df["session_id"] = "S1"
    df["attr_campaign"] = np.where(np.arange(len(df)) % 3 == 0, "spring", None)
    df["note"] = "x"  # not in the contract: compared for duplicates, listed in the rejects
    return df


def test_hand_made_dirt_gives_the_same_result_in_duckdb_and_pandas(tmp_path):
    raw = _with_lines(_dirty_events(), "events.csv", first_line=2)
    got, want = assert_same(raw, raw, tmp_path, ids={"C2", "C404"})
    c = got.counts["events"]
    assert c["rows_duplicate"] == 1 and c["rejects_by_reason"]["duplicate_key"] == 2
    assert {"unparseable_ts", "invalid_event_type", "non_numeric_results_count", "missing_event_id",
            "missing_ts", "missing_event_type", "erasure_request"} <= set(c["rejects_by_reason"])


def test_the_parquet_route_reads_the_file_itself(tmp_path):
    df = _dirty_events()
    df.to_parquet(tmp_path / "raw.parquet", index=False)
    raw = _with_lines(pd.read_parquet(tmp_path / "raw.parquet"), "raw.parquet", first_line=1)  # as _read_demo
    assert_same(raw, RawParquet(tmp_path / "raw.parquet", "raw.parquet"), tmp_path, ids={"C1"})


@pytest.mark.parametrize("pandas_metadata", [False, True])
def test_numbers_and_null_integers_as_pandas_reads_them(tmp_path, pandas_metadata):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = _dirty_events()
    df["results_count"] = pd.array([3, None, 5] * (len(df) // 3) + [7] * (len(df) % 3), dtype="Int64")
    df["score"] = np.linspace(0, 1, len(df))  # a float column outside the contract
    df["flag"] = pd.array([True, None] * (len(df) // 2), dtype="boolean")
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table if pandas_metadata else table.replace_schema_metadata(None), tmp_path / "raw.parquet")
    raw = _with_lines(pd.read_parquet(tmp_path / "raw.parquet"), "raw.parquet", first_line=1)
    assert str(raw["results_count"].dtype) == ("Int64" if pandas_metadata else "float64")  # "3" or "3.0" as text
    got, _ = assert_same(raw, RawParquet(tmp_path / "raw.parquet", "raw.parquet"), tmp_path)
    text = set(pd.read_parquet(got.rejects["events"].path)["results_count"].dropna())
    assert ("3" if pandas_metadata else "3.0") in text


def test_a_time_format_other_than_iso_wins_as_in_pandas(tmp_path):
    df = _dirty_events()
    df["ts"] = [f"{1 + i % 19}.02.2024 10:{i:02d}:00" for i in range(len(df))]  # days above 12: day first
    df.loc[[0, 5], "ts"] = "2024-01-05T10:00:00Z"  # plain ISO times in a dd.mm.yyyy export: unparseable
    df.loc[3, "ts"] = "31.02.2024 10:00:00"  # no such day
    raw = _with_lines(df, "events.csv", first_line=2)
    got, _ = assert_same(raw, raw, tmp_path)
    assert got.counts["events"]["timestamp_formats"]["ts"] == "%d.%m.%Y %H:%M:%S"
    assert got.counts["events"]["timestamp_evidence"]["ts"].startswith("day first: ")
    assert got.counts["events"]["rejects_by_reason"]["unparseable_ts"] >= 2


def test_a_given_time_format(tmp_path):
    df = _dirty_events()
    df["ts"] = [f"0{1 + i % 9}/02/2024 10:{i:02d}" for i in range(len(df))]
    raw = _with_lines(df, "events.csv", first_line=2)
    assert_same(raw, raw, tmp_path, ts_format="%m/%d/%Y %H:%M")


def test_datetime_number_category_and_object_columns_of_a_data_frame(tmp_path):
    df = _dirty_events().iloc[:12].copy()
    df["ts"] = pd.date_range("2024-01-01", periods=len(df), freq="h", tz="Europe/Istanbul")
    df["event_id"] = df["event_id"].astype(object)
    df["customer_id"] = [1.0, 2.0, np.nan, 1e16, 3.5, 2.0] * 2  # ids read from Excel as numbers
    df["event_type"] = df["event_type"].astype("category")
    df["results_count"] = [1.5, 2.5, np.nan, 4.0, -0.5, 7.0] * 2  # rounded half to even, as pandas does
    got, _ = assert_same(_with_lines(df, "events.xlsx"), _with_lines(df, "events.xlsx"), tmp_path)
    assert {"1", "2", "3.5"} <= set(pd.read_parquet(got.tables["events"].path)["customer_id"].dropna())


def test_personal_columns_are_pseudonymised_the_same_way(tmp_path, monkeypatch):
    monkeypatch.setitem(PERSONAL_COLUMNS, "events", ["search_query"])
    df = _dirty_events()
    df["search_query"] = [f" Query{i % 4} " if i % 5 else None for i in range(len(df))]
    raw = _with_lines(df, "events.csv", first_line=2)
    got, _ = assert_same(raw, raw, tmp_path)
    assert not pd.read_parquet(got.tables["events"].path)["search_query"].dropna().str.contains("Query").any()


@pytest.mark.parametrize("dirt, message", [
    (lambda df: df.drop(columns="event_type"), "events.csv: required column 'event_type' of table 'events' is absent"),
    (lambda df: df.assign(ts="gestern"),
     "events.csv: column 'ts': no value parses as a date (e.g. 'gestern' on line 2); set params.date_format"),
])
def test_errors_name_the_file_the_column_and_the_fix(tmp_path, dirt, message):
    raw = _with_lines(dirt(_dirty_events()), "events.csv", first_line=2)
    with pytest.raises(DataContractError) as pandas_error:
        clean_tables({"events": raw}, key=KEY)
    with pytest.raises(DataContractError) as sql_error:
        SqlEvents(raw, key=KEY, workdir=tmp_path)
    assert str(sql_error.value) == str(pandas_error.value)
    assert message in str(sql_error.value)


# ----------------------------------------------------------------------------- property: any dirt

ID = st.sampled_from(["E1", "E2", " E2", "E3.0", "E3", "", "nan", "N/A", None, "é4", "E5 ", "\tE6"])
TS = st.sampled_from(["2024-01-05T10:00:00Z", "2024-01-05 10:00:00", "2024-01-05T10:00:00", "2025-02-30 10:00:00",
                      "2024-13-01T00:00:00Z", "2024-01-05T23:59:59Z", " 2024-01-05T10:00:00Z", "31/13/2024 25:61",
                      "05.01.2024 10:00:00", "??", "", None, "2024-01-05T10:00:00+01:00", "0000-00-00 00:00:00"])
TYPE = st.sampled_from(["page_view", "Search", " purchase", "PURCHASE ", "x", "", None, "LOGİN", "login"])
COUNT = st.sampled_from(["1", "2,5", "-3", "x", "", None, " 4 ", "1e2", "3.0"])
PERSON = st.sampled_from(["C1", "C2", " C1", "C2.0", None, "", "NULL"])
DEVICE = st.sampled_from(["D1", "D2", "D3", None, " D1"])
event_rows = st.fixed_dictionaries({"event_id": ID, "ts": TS, "customer_id": PERSON, "anonymous_id": DEVICE,
                                    "event_type": TYPE, "results_count": COUNT})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rows=st.lists(event_rows, min_size=1, max_size=30), copies=st.lists(st.integers(0, 29), max_size=6))
def test_any_dirt_gives_the_same_result_in_duckdb_and_pandas(tmp_path_factory, rows, copies):
    rows = rows + [rows[i] for i in copies if i < len(rows)]
    raw = _with_lines(pd.DataFrame(rows), "events.csv", first_line=2)
    tmp = tmp_path_factory.mktemp("prop")
    try:
        want = _pandas(raw, {"C2"})
    except DataContractError as exc:  # no date at all, or dd.mm.yyyy dates whose order nothing proves
        with pytest.raises(DataContractError, match="no value parses|order of day and month cannot be decided") as sql:
            _sql(raw, {"C2"}, tmp)
        assert str(sql.value) == str(exc)
        return
    got = _sql(raw, {"C2"}, tmp)
    assert got[0].counts == want[0].counts and got[1] == want[1] and got[2] == want[2]
    pd.testing.assert_frame_equal(pd.read_parquet(got[0].tables["events"].path), want[0].tables["events"])
    pd.testing.assert_frame_equal(pd.read_parquet(got[0].rejects["events"].path), want[0].rejects["events"])


# ----------------------------------------------------------------------------- the ci world

@pytest.fixture(scope="module")
def ci_events(ci_root):
    path = ci_root / "data" / "raw" / "ci" / "events.parquet"
    return path, _with_lines(pd.read_parquet(path), path.name, first_line=1)


def test_the_ci_world_gives_identical_events_rejects_and_counts(ci_events, tmp_path):
    path, raw = ci_events
    ids = set(raw["customer_id"].dropna().value_counts().index[:3]) | {"nobody"}
    got, want = assert_same(raw, RawParquet(path, path.name), tmp_path, ids=ids)
    assert got.counts["events"]["rows_kept"] > 30_000
    assert got.counts["events"]["rejects_by_reason"]["erasure_request"] > 0


def test_quality_and_customer_view_of_events_on_disk_match_pandas(ci_root, ci_events, tmp_path):
    path, raw = ci_events
    got, _, _ = _sql(RawParquet(path, path.name), set(), tmp_path)
    events = pd.read_parquet(got.tables["events"].path)
    others = {name: clean_tables({name: _with_lines(pd.read_parquet(ci_root / "data" / "raw" / "ci" / f"{name}.parquet"),
                                                    f"{name}.parquet", first_line=1)}, key=KEY).tables[name]
              for name in ("customers", "orders")}
    on_disk, in_memory = {**others, "events": got.tables["events"]}, {**others, "events": events}
    for measure in (quality.completeness, quality.referential_integrity):
        pd.testing.assert_frame_equal(measure(on_disk), measure(in_memory))
    as_of = others["orders"]["order_ts"].max()
    pd.testing.assert_frame_equal(quality.freshness(on_disk, as_of=as_of, stale_after_days=30),
                                  quality.freshness(in_memory, as_of=as_of, stale_after_days=30))
    pd.testing.assert_frame_equal(customers_360(on_disk), customers_360(in_memory))
    assert isinstance(on_disk["events"], ParquetTable) and len(on_disk["events"]) == len(events)


def test_pseudonyms_are_hmac_sha256():
    for key in (b"", b"k", b"x" * 64, b"y" * 65, "ş-key".encode()):
        digest = _hmac_sha256(key)
        for text in ("", "ayse@example.com", "ğüşiöç" * 30):
            assert digest(text.encode()) == hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def test_tables_with_rules_of_their_own_are_refused():
    with pytest.raises(ValueError, match="rules of its own"):
        SqlEvents(pd.DataFrame({"order_id": ["1"]}), key=KEY, name="orders")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="0123456789./: -TZt", max_size=22), min_size=1, max_size=40))
def test_dotted_and_slashed_formats_skip_only_values_that_cannot_match(values):
    from crm_analytics.ingest.dates import _parse_format

    text = pd.Series(values + ["05.01.2024 10:00:00", "01/05/2024 10:00", "5.1.2024", "1/5/2024"], dtype="string")
    for fmt in ["%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d-%m-%y"]:
        want = pd.to_datetime(text, format=fmt, utc=True, errors="coerce").astype("datetime64[us, UTC]")
        pd.testing.assert_series_equal(_parse_format(text, fmt), want)

"""Hostile inputs: every way a shop's real export goes wrong either loads the same rows as a clean
reference, loads with exactly the expected rejects (reason and source line), or stops with one clear
message naming the file, the column, an example and the fix."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import yaml

from crm_analytics import paths
from crm_analytics.ingest.collect import collect, dataset_source
from crm_analytics.errors import DataContractError, SourceError
from crm_analytics.ingest.events_sql import SqlEvents
from crm_analytics.reports.cleaning_report import input_formats_table
from crm_analytics.ingest.sources import _with_lines, build_raw

N = 30
COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
# day-first dates: 1 December 2010 ... with days above 12 as evidence
DAYS = [pd.Timestamp("2010-12-01 08:26") + pd.Timedelta(days=i, minutes=i) for i in range(N)]


def retail(dates=None, prices=None, quantities=None, description="GLASS JAR") -> pd.DataFrame:
    """A clean Online Retail export of N lines (invoices of three lines each)."""
    return pd.DataFrame({
        "InvoiceNo": [str(536365 + i // 3) for i in range(N)],
        "StockCode": [f"8512{i % 3}A" for i in range(N)],
        "Description": description,
        "Quantity": quantities or [str(1 + i % 5) for i in range(N)],
        "InvoiceDate": dates or [d.strftime("%d/%m/%Y %H:%M") for d in DAYS],
        "UnitPrice": prices or [f"{1 + i / 4:.2f}" for i in range(N)],
        "CustomerID": [str(17850 + i % 4) for i in range(N)],
        "Country": "United Kingdom",
    }, columns=COLUMNS)


def run(project, source: dict, *, date_format: str = "", **kw):
    """Build and collect the dataset ``shop`` of *source* (nothing written unless ``write=True``)."""
    params = {"description": "a hostile export", "source": source, "notebooks": ["01_data_cleaning"],
              "date_format": "", "stale_after_days": 30}
    (project / "params" / "shop.yaml").write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    build_raw("shop", dataset_source("shop"))
    return collect("shop", date_format=date_format, write=kw.pop("write", False), **kw)


def run_retail(project, df: pd.DataFrame, name="retail.csv", *, writer=None, **kw):
    path = project / name
    if writer is None:
        df.to_csv(path, index=False)
    else:
        writer(df, path)
    return run(project, {"kind": "online_retail", "path": str(path), **kw.pop("source", {})}, **kw)


def lines_of(c) -> pd.DataFrame:
    return c.result.tables["order_lines"].reset_index(drop=True)


def rejects_of(c, table="order_lines") -> dict[int, str]:
    r = c.result.rejects[table]
    return dict(zip(r["_source_line"].astype(int), r["reason"]))


@pytest.fixture
def reference(project):
    """The clean lines, orders and order times of the reference export."""
    c = run_retail(project, retail(), name="reference.csv")
    assert c.result.counts["order_lines"]["rows_rejected"] == 0
    return c


def assert_same_as(c, reference):
    pd.testing.assert_frame_equal(lines_of(c), lines_of(reference))
    got, want = c.result.tables["orders"], reference.result.tables["orders"]
    pd.testing.assert_frame_equal(got.sort_values("order_id").reset_index(drop=True),
                                  want.sort_values("order_id").reset_index(drop=True))


# ----------------------------------------------------------------------------- encodings and delimiters

@pytest.mark.parametrize("encoding,text", [("utf-8", "ÇAY BARDAĞI"), ("utf-8-sig", "ÇAY BARDAĞI"),
                                           ("cp1254", "ÇAY BARDAĞI"), ("latin-1", "CAFÉ CRÈME")])
@pytest.mark.parametrize("sep,word", [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_encodings_and_delimiters_load_the_same_rows(project, reference, encoding, text, sep, word):
    c = run_retail(project, retail(description=text),
                   writer=lambda df, p: df.to_csv(p, index=False, sep=sep, encoding=encoding))
    assert_same_as(c, reference)
    assert set(c.result.tables["products"]["name"]) == {text}
    row = input_formats_table(c.result.notes).iloc[0]
    # latin-1 letters of Western Europe are the same bytes in cp1254, which is tried first
    allowed = {encoding, "cp1254"} if encoding == "latin-1" else {encoding}
    assert row["delimiter"] == word and c.result.notes["inputs"][0]["encoding"] in allowed


# ----------------------------------------------------------------------------- numbers

@pytest.mark.parametrize("style,render", [
    ("1.234,56", lambda x: f"{x:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")),
    ("1,234.56", lambda x: f"{x:,.2f}"),
    ("1234,56", lambda x: f"{x:.2f}".replace(".", ",")),
    ("1 234,56", lambda x: f"{x:,.2f}".replace(",", " ").replace(".", ",")),
])
def test_decimal_styles_with_thousands_separators(project, style, render):
    prices = [1234.56 + i for i in range(N - 1)] + [2.5]
    c = run_retail(project, retail(prices=[render(p) for p in prices]), writer=lambda df, p: df.to_csv(
        p, index=False, sep=";" if "," in style[-3:] else ","))
    assert lines_of(c)["unit_price"].tolist() == pytest.approx(prices)
    info = c.result.notes["inputs"][0]
    assert info["decimal"] == style[-3] and "values prove it" in info["numbers_how"]


def test_a_thousands_group_alone_cannot_decide_and_the_decimal_option_does(project):
    df = retail(prices=["1,234"] * N)
    with pytest.raises(DataContractError, match=r"retail\.csv: column 'UnitPrice': '1,234' may be a thousand or a "
                                                r"decimal number.*decimal: \",\""):
        run_retail(project, df)
    c = run_retail(project, df, source={"decimal": ","})
    assert lines_of(c)["unit_price"].tolist() == pytest.approx([1.234] * N)
    assert c.result.notes["inputs"][0]["numbers_how"] == "from the decimal option"


def test_both_decimal_marks_in_one_file_stop(project):
    prices = ["2.55"] * (N - 1) + ["2,55"]
    with pytest.raises(DataContractError, match=r"numbers use both decimal marks: '2\.55' .* and '2,55'"):
        run_retail(project, retail(prices=prices))


def test_a_large_semicolon_file_with_decimal_commas(project):
    n = 60_000
    df = pd.DataFrame({"InvoiceNo": np.arange(n) // 4 + 500000, "StockCode": "85123A", "Description": "X" * 40,
                       "Quantity": 1 + np.arange(n) % 7, "InvoiceDate": "13/01/2011 08:26",
                       "UnitPrice": [f"{1 + (i % 500) / 100:.2f}".replace(".", ",") for i in range(n)],
                       "CustomerID": 17850 + np.arange(n) % 900, "Country": "United Kingdom"})
    path = project / "big.csv"
    df.to_csv(path, sep=";", index=False)
    assert path.stat().st_size > 5_000_000
    c = run(project, {"kind": "online_retail", "path": str(path)})
    got = lines_of(c)
    assert len(got) == n and got["unit_price"].sum() == pytest.approx(sum(1 + (i % 500) / 100 for i in range(n)))
    assert c.result.notes["inputs"][0]["delimiter"] == ";"


# ----------------------------------------------------------------------------- dates

def test_day_first_is_decided_by_evidence(project, reference):
    lines = reference.result.tables["orders"]
    assert lines["order_ts"].min() == pd.Timestamp("2010-12-01 08:26", tz="UTC")  # not 12 January
    ev = reference.result.counts["order_lines"]["timestamp_evidence"]["order_ts"]
    assert ev.startswith("day first: ") and "'13/12/2010" in ev
    assert reference.result.notes["inputs"][0]["date_order"] == "day first"


def test_month_first_is_decided_by_evidence(project, reference):
    c = run_retail(project, retail(dates=[d.strftime("%m/%d/%Y %H:%M") for d in DAYS]))
    assert_same_as(c, reference)
    assert c.result.counts["order_lines"]["timestamp_evidence"]["order_ts"].startswith("month first: ")


@pytest.mark.parametrize("render,day,month", [
    ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M"), ("%d.%m.%y", "%d.%m.%y", "%m.%d.%y"),
    ("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M:%S", "%m-%d-%Y %H:%M:%S")])
def test_undecidable_dates_stop_naming_the_hint(project, render, day, month):
    dates = [(DAYS[0] + pd.Timedelta(days=31 * (i % 10))).strftime(render) for i in range(N)]  # days 1..12 only
    dates = [d if int(d[:2]) <= 12 else d.replace(d[:2], "01", 1) for d in dates]
    with pytest.raises(DataContractError, match=rf"retail\.csv: column 'InvoiceDate': the order of day and month "
                                                rf"cannot be decided.*set date_format: \"{day}\" \(day first\) or "
                                                rf"\"{month}\" \(month first\) in params/shop\.yaml"):
        run_retail(project, retail(dates=dates))


def test_contradicting_dates_stop(project):
    dates = [d.strftime("%d/%m/%Y %H:%M") for d in DAYS]
    dates[-1] = "01/13/2011 08:00"
    with pytest.raises(DataContractError, match=r"values are day first .* month first \(e\.g\. '01/13/2011 08:00'\)"):
        run_retail(project, retail(dates=dates))


def test_date_format_is_honoured_for_online_retail(project):
    dates = ["01/12/2010 08:26"] * N  # 1 December to the shop; nothing in the file says so
    c = run_retail(project, retail(dates=dates), date_format="%d/%m/%Y %H:%M")
    assert (c.result.tables["orders"]["order_ts"] == pd.Timestamp("2010-12-01 08:26", tz="UTC")).all()
    assert c.result.notes["inputs"][0]["date_how"] == "from date_format '%d/%m/%Y %H:%M'"


FILES_ORDERS = {"path": "orders.csv", "columns": {"order_id": "No", "order_ts": "Tarih", "status": "Durum",
                                                   "order_total": "Tutar", "customer_id": "Müşteri"}}


def shop_orders(dates=None) -> pd.DataFrame:
    return pd.DataFrame({"No": [f"S{i}" for i in range(N)], "Müşteri": [f"M{i % 5}" for i in range(N)],
                         "Tarih": dates or [d.strftime("%d.%m.%Y %H:%M") for d in DAYS],
                         "Durum": "completed", "Tutar": [f"{10 + i},50" for i in range(N)]})


def test_date_format_is_honoured_for_the_files_kind(project):
    shop_orders(["05.03.2024 10:00"] * N).to_csv(project / "orders.csv", sep=";", index=False)
    c = run(project, {"kind": "files", "tables": {"orders": FILES_ORDERS}}, date_format="%m.%d.%Y %H:%M")
    assert (c.result.tables["orders"]["order_ts"] == pd.Timestamp("2024-05-03 10:00", tz="UTC")).all()
    assert c.result.tables["orders"]["order_total"].iloc[0] == pytest.approx(10.5)


@pytest.mark.parametrize("hint", [None, "%d/%m/%Y %H:%M"])
def test_events_honour_the_hint_and_the_evidence_in_duckdb(tmp_path, hint):
    ev = pd.DataFrame({"event_id": [f"E{i}" for i in range(N)], "event_type": "page_view",
                       "ts": [d.strftime("%d/%m/%Y %H:%M") for d in DAYS]})
    ev.loc[4, "ts"] = "1/12/2010 8:30"  # not zero-padded
    ev.loc[5, "ts"] = "31/02/2011 10:00"  # no such day
    events = SqlEvents(_with_lines(ev, "events.csv"), key=b"k", ts_format=hint, workdir=tmp_path / "w")
    table, rejects = events.write(tmp_path / "e.parquet", tmp_path / "r.parquet")
    got = pd.read_parquet(table.path).set_index("event_id")["ts"]
    assert got["E0"] == pd.Timestamp("2010-12-01 08:26", tz="UTC") and got["E4"] == pd.Timestamp("2010-12-01 08:30", tz="UTC")
    assert pd.read_parquet(rejects.path)["reason"].tolist() == ["unparseable_ts"]
    assert events.counts["timestamp_formats"]["ts"] == "%d/%m/%Y %H:%M"
    assert events.counts["timestamp_evidence"]["ts"].startswith("from date_format" if hint else "day first")


def test_undecidable_events_stop(tmp_path):
    ev = pd.DataFrame({"event_id": ["E1", "E2"], "event_type": "page_view", "ts": ["01/02/2024 10:00", "03/04/2024 11:00"]})
    with pytest.raises(DataContractError, match=r"events\.csv: column 'ts': the order of day and month cannot be decided"):
        SqlEvents(_with_lines(ev, "events.csv"), key=b"k", workdir=tmp_path / "w")


def test_iso_and_excel_serials_need_no_order(project, reference):
    iso = run_retail(project, retail(dates=[d.strftime("%Y-%m-%d %H:%M:%S") for d in DAYS]))
    assert_same_as(iso, reference)
    serial = [str((d - pd.Timestamp("1899-12-30")) / pd.Timedelta(days=1)) for d in DAYS]
    c = run_retail(project, retail(dates=serial))
    assert (c.result.tables["orders"]["order_ts"].dt.round("min").values == reference.result.tables["orders"]["order_ts"].values).all()


# ----------------------------------------------------------------------------- Excel and parquet

def test_excel_and_parquet_online_retail(project, reference):
    assert_same_as(run_retail(project, retail(), name="retail.xlsx", writer=lambda df, p: df.to_excel(p, index=False)),
                   reference)
    c = run_retail(project, retail(), name="retail.parquet", writer=lambda df, p: df.to_parquet(p, index=False))
    assert_same_as(c, reference)
    assert c.result.notes["inputs"][0]["format"] == "parquet"


@pytest.mark.parametrize("suffix", ["xlsx", "parquet", "csv.gz"])
def test_excel_parquet_and_gzip_for_the_files_kind(project, suffix):
    df = shop_orders()
    path = project / f"orders.{suffix}"
    {"xlsx": lambda: df.to_excel(path, index=False), "parquet": lambda: df.to_parquet(path, index=False),
     "csv.gz": lambda: df.to_csv(path, index=False, sep=";", compression="gzip")}[suffix]()
    c = run(project, {"kind": "files", "tables": {"orders": {**FILES_ORDERS, "path": str(path)}}})
    o = c.result.tables["orders"].sort_values("order_id")
    assert len(o) == N and o["order_total"].sum() == pytest.approx(sum(10.5 + i for i in range(N)))
    assert o["order_ts"].min() == pd.Timestamp("2010-12-01 08:26", tz="UTC")
    assert c.result.notes["inputs"][0]["format"] == suffix


# ----------------------------------------------------------------------------- broken files

def test_a_file_cut_mid_line_rejects_the_cut_line(project, reference):
    path = project / "cut.csv"
    retail().to_csv(path, index=False)
    path.write_bytes(path.read_bytes().rstrip(b"\n")[:-25])  # the last line loses its price, customer, country
    c = run(project, {"kind": "online_retail", "path": str(path)})
    assert rejects_of(c) == {N + 1: "truncated_line"}
    pd.testing.assert_frame_equal(lines_of(c), lines_of(reference).iloc[:N - 1])


def test_a_gzip_file_cut_short_stops(project):
    path = project / "cut.csv.gz"
    path.write_bytes(gzip.compress(retail().to_csv(index=False).encode())[:-40])
    with pytest.raises(SourceError, match=r"cut\.csv\.gz: .*truncated"):
        run(project, {"kind": "online_retail", "path": str(path)})


def test_a_quantity_column_without_a_number_stops(project):
    with pytest.raises(DataContractError, match=r"retail\.csv: column 'Quantity' \(order_lines\.quantity\): no value is "
                                                r"a number \(e\.g\. 'lots' on line 2\)"):
        run_retail(project, retail(quantities=["lots"] * N))


def test_partly_garbage_columns_reject_exactly_those_lines(project):
    q = [str(1 + i % 5) for i in range(N)]
    p = [f"{1 + i / 4:.2f}" for i in range(N)]
    d = [x.strftime("%d/%m/%Y %H:%M") for x in DAYS]
    q[2], p[7], d[11] = "x", "n/a price", "someday"
    c = run_retail(project, retail(quantities=q, prices=p, dates=d))
    assert rejects_of(c) == {4: "non_numeric_quantity", 9: "non_numeric_unit_price", 13: "unparseable_order_ts"}
    r = c.result.rejects["order_lines"].set_index("reason")
    assert r.loc["non_numeric_quantity", "quantity"] == "x" and r.loc["non_numeric_unit_price", "unit_price"] == "n/a price"


def test_most_rows_bad_stops_before_anything_is_written(project):
    good = run_retail(project, retail(), write=True)
    before = {f.name: f.read_bytes() for f in paths.interim_dir("shop").glob("*.parquet")}
    prices = ["0"] * 20 + [f"{1 + i:.2f}" for i in range(N - 20)]
    with pytest.raises(DataContractError, match=r"retail\.csv: 66\.7% of the order_lines rows are rejected \(20 of 30\), "
                                                r"more than max_reject_share = 0\.2; most for zero_price .* column "
                                                r"'unit_price' '0(\.0)?' on line 2.*params/shop\.yaml"):
        run_retail(project, retail(prices=prices), write=True)
    assert {f.name: f.read_bytes() for f in paths.interim_dir("shop").glob("*.parquet")} == before
    assert len(good.result.tables["order_lines"]) == N
    relaxed = run_retail(project, retail(prices=prices), max_reject_share=0.7)
    assert relaxed.result.counts["order_lines"]["rejects_by_reason"] == {"zero_price": 20}


def test_repeated_headers_are_rejects_not_data(project, reference):
    text = retail().to_csv(index=False).splitlines()
    header = text[0]
    path = project / "concat.csv"
    path.write_text("\n".join(text[:11] + [header] + text[11:] + [header]) + "\n")
    c = run(project, {"kind": "online_retail", "path": str(path)})
    assert rejects_of(c) == {12: "repeated_header", N + 3: "repeated_header"}
    assert lines_of(c)["quantity"].tolist() == lines_of(reference)["quantity"].tolist()


def test_empty_header_only_and_missing_files(project):
    (project / "empty.csv").write_text("")
    with pytest.raises(SourceError, match=r"empty\.csv: file is empty"):
        run(project, {"kind": "online_retail", "path": str(project / "empty.csv")})
    (project / "header.csv").write_text(",".join(COLUMNS) + "\n")
    with pytest.raises(DataContractError, match=r"header\.csv: the file has a header \(InvoiceNo, .*\) but no rows"):
        run(project, {"kind": "online_retail", "path": str(project / "header.csv")})
    with pytest.raises(SourceError, match=r"nope\.csv: input file of dataset 'shop' does not exist; set source\.path"):
        run(project, {"kind": "online_retail", "path": str(project / "nope.csv")})
    with pytest.raises(SourceError, match=r"nope\.csv: the orders export of dataset 'shop' does not exist"):
        run(project, {"kind": "files", "tables": {"orders": {**FILES_ORDERS, "path": str(project / "nope.csv")}}})


def test_the_input_formats_table(project, reference):
    t = input_formats_table(reference.result.notes)
    assert list(t.columns) == ["file", "format", "encoding", "delimiter", "decimal", "thousands separator",
                               "date order", "how it was decided"]
    row = t.iloc[0]
    assert (row["file"], row["format"], row["delimiter"], row["decimal"], row["date order"]) == (
        "reference.csv", "CSV", "comma", "point", "day first")
    assert "day above 12" in row["how it was decided"]

"""The behaviour datasets (DIGINETICA clickstream, UCI Online Shoppers sessions), datasets without orders,
and which notebooks a dataset runs, and why not."""

from __future__ import annotations

import json
from html import unescape

import nbformat
import pandas as pd
import pytest

from conftest import external_file
from crm_analytics import paths
from crm_analytics.ingest.cleaning import clean_tables
from crm_analytics.ingest.collect import collect, dataset_source
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.formats import ONLINE_SHOPPERS_COLUMNS, read_diginetica, read_online_shoppers
from crm_analytics.reports.index import write_index
from crm_analytics.ingest.params import notebook_requires, resolve_notebook_params
from crm_analytics.ingest.quality import cleaning_metrics
from crm_analytics.reports.cleaning_report import cleaning_summary, customer_view_summary
from crm_analytics.ingest.sources import SOURCE_KINDS, behaviour_data, build_raw, validate_source

DIGINETICA = "diginetica/sample_train-item-views.csv"
SHOPPERS = "online_shoppers/online_shoppers_intention.csv"


# ----------------------------------------------------------------------------- readers on the real files


@pytest.mark.external
def test_diginetica_reader_gives_every_view_as_a_product_view_event():
    path = external_file(DIGINETICA)
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)  # independent: plain pandas
    ev = read_diginetica(path)["events"]
    assert len(ev) == len(raw) == 12_391 and ev["session_id"].nunique() == 2_986
    assert (ev["event_type"] == "product_view").all() and (ev["channel"] == "web").all()
    assert ev["customer_id"].notna().sum() == (raw["user_id"] != "NA").sum()
    assert (ev["anonymous_id"] == "s" + raw["session_id"]).all() and (ev["product_id"] == raw["item_id"]).all()
    # 2016-05-09 + 526,309 ms
    assert ev.loc[0, "ts"] == "2016-05-09T00:08:46.309Z" and ev.loc[0, "_source_line"] == 2
    clean = clean_tables(read_diginetica(path), key=b"k")
    assert clean.counts["events"]["rows_kept"] == 12_391
    assert clean.tables["events"]["ts"].min() == pd.Timestamp("2016-01-03", tz="UTC") + pd.Timedelta(
        milliseconds=int(raw.loc[raw["eventdate"] == "2016-01-03", "timeframe"].astype(int).min()))


@pytest.mark.external
def test_online_shoppers_reader_gives_one_session_per_row_with_the_purchase_flag():
    path = external_file(SHOPPERS)
    raw = pd.read_csv(path)  # independent: plain pandas
    clean = clean_tables(read_online_shoppers(path), key=b"k")
    s = clean.tables["sessions"]
    assert len(s) == len(raw) == 12_330 and clean.counts["sessions"]["rows_rejected"] == 0
    assert int(s["purchased"].sum()) == int(raw["Revenue"].sum()) == 1_908
    assert s["session_id"].iloc[0] == "OS00001" and s["session_id"].is_unique
    for canon, column in ONLINE_SHOPPERS_COLUMNS.items():  # every raw column is recoverable, values unchanged
        got, want = s[canon], raw[column]
        if pd.api.types.is_numeric_dtype(want) and want.dtype != bool:
            assert (got.astype(float) == want.astype(float)).all(), canon
        else:
            assert (got.astype(str) == want.astype(str)).all(), canon
    assert s["start_ts"].isna().all() and s["customer_id"].isna().all()


# ----------------------------------------------------------------------------- readers on small hand-made files


def test_diginetica_reader_on_a_small_file_rejects_a_line_without_a_date(tmp_path):
    f = tmp_path / "views.csv"
    f.write_text("session_id;user_id;item_id;timeframe;eventdate\n"
                 "7;NA;100;1500;2016-05-09\n"
                 "7;NA;101;61500;2016-05-09\n"
                 "8;42;100;0;2016-05-10\n"
                 "9;NA;102;10;not a date\n")
    got = read_diginetica(f)
    assert got["_inputs"].loc[0, "delimiter"] == ";"
    ev = got["events"]
    assert ev["ts"].tolist()[:3] == ["2016-05-09T00:00:01.500Z", "2016-05-09T00:01:01.500Z", "2016-05-10T00:00:00.000Z"]
    assert ev["customer_id"].tolist()[:3] == [pd.NA, pd.NA, "42"] or ev["customer_id"].isna().tolist() == [True, True, False, True]
    assert ev["session_id"].tolist() == ["7", "7", "8", "9"] and ev["anonymous_id"].tolist() == ["s7", "s7", "s8", "s9"]
    clean = clean_tables(got, key=b"k")
    assert clean.counts["events"]["rows_kept"] == 3
    rej = clean.rejects["events"]
    assert rej["reason"].tolist() == ["unparseable_ts"] and rej["_source_line"].tolist() == [5]


def test_diginetica_reader_names_a_missing_column(tmp_path):
    f = tmp_path / "views.csv"
    f.write_text("session_id;item_id;timeframe;eventdate\n1;100;0;2016-05-09\n")
    with pytest.raises(DataContractError, match=r"views.csv: required column 'user_id' is absent"):
        read_diginetica(f)


def _shoppers_file(path, rows: list[list[str]], sep: str = ",") -> None:
    header = list(ONLINE_SHOPPERS_COLUMNS.values())
    path.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n")


def test_online_shoppers_reader_on_a_european_re_export(tmp_path):
    f = tmp_path / "shoppers.csv"
    row = ["1", "12,5", "0", "0", "3", "80,25", "0,02", "0,05", "10,5", "0", "Nov", "2", "1", "3", "2",
           "New_Visitor", "TRUE", "FALSE"]
    _shoppers_file(f, [row, row[:16] + ["FALSE", "TRUE"]], sep=";")
    got = read_online_shoppers(f)
    assert got["_inputs"].loc[0, "decimal"] == "," and got["sessions"].attrs["source_columns"] == ONLINE_SHOPPERS_COLUMNS
    s = clean_tables(got, key=b"k").tables["sessions"]
    assert s["session_id"].tolist() == ["OS00001", "OS00002"]
    assert s["administrative_seconds"].tolist() == [12.5, 12.5] and s["page_value"].iloc[0] == 10.5
    assert s["purchased"].tolist() == [False, True] and s["weekend"].tolist() == [True, False]
    assert s["traffic_type"].tolist() == ["2", "2"] and s["product_pages"].tolist() == [3, 3]


def test_online_shoppers_reader_names_a_missing_column(tmp_path):
    f = tmp_path / "shoppers.csv"
    f.write_text("Administrative,Month\n1,Feb\n")
    with pytest.raises(DataContractError, match=r"shoppers.csv: required column 'Administrative_Duration' is absent"):
        read_online_shoppers(f)


# ----------------------------------------------------------------------------- collect without orders


@pytest.mark.external
def test_collect_diginetica_without_orders(project):
    external_file(DIGINETICA)
    build_raw("diginetica", dataset_source("diginetica"))
    got = collect("diginetica")
    tables, counts = got.result.tables, got.result.counts
    assert "orders" not in tables and counts["events"]["rows_kept"] == 12_391
    users = tables["events"]["customer_id"].dropna().nunique()
    assert len(tables["customers"]) == users == 1_270 and counts["customers"]["derived_from"] == "events"
    assert got.as_of == tables["events"]["ts"].max()  # no orders: the newest record of any table
    m = cleaning_metrics(got.result)
    assert m["customers_identified"] == 1_270 and m["customers_identified_in"] == "events"
    text = cleaning_summary(m, source_kind="diginetica").data
    assert "no orders" in text and "identified in the orders" not in text
    view = customer_view_summary(got.customers_360)["measure"].tolist()
    assert "customers who bought" not in view and "customers who wrote a review" not in view
    interim = paths.interim_dir("diginetica")
    assert {"customers.parquet", "events.parquet", "customers_360.parquet", "quality.json"} <= {
        p.name for p in interim.iterdir()}
    quality = json.loads((interim / "quality.json").read_text())
    assert {r["table"] for r in quality["freshness"]} == {"events", "customers"}
    inputs = got.result.notes["inputs"][0]
    assert inputs["delimiter"] == ";" and inputs["date_order"] == "ISO 8601 (year first)"


@pytest.mark.external
def test_collect_online_shoppers_without_orders_or_customers(project):
    external_file(SHOPPERS)
    build_raw("online_shoppers", dataset_source("online_shoppers"))
    got = collect("online_shoppers")
    tables, counts = got.result.tables, got.result.counts
    assert set(counts) == {"sessions"} and counts["sessions"]["rows_kept"] == 12_330
    assert len(tables["customers"]) == 0 and len(got.customers_360) == 0
    assert int(tables["sessions"]["purchased"].sum()) == 1_908
    m = cleaning_metrics(got.result)
    assert m["customers_identified"] == 0 and m["customers_identified_in"] is None
    assert "no orders and no customer ids" in cleaning_summary(m, source_kind="online_shoppers").data
    assert got.result.notes["inputs"][0]["date_order"] == ""  # no dates in the file: no date order claimed
    written = pd.read_parquet(paths.interim_dir("online_shoppers") / "sessions.parquet")
    assert len(written) == 12_330 and written["session_id"].iloc[-1] == "OS12330"


def test_a_shops_session_export_through_the_files_kind(project):
    (project / "exports").mkdir()
    (project / "exports" / "visits.csv").write_text(
        "Visit,Started,Pages,Bought\nv1,2024-03-01 10:00,4,yes\nv2,2024-03-02 11:30,1,no\n")
    (project / "params" / "visits.yaml").write_text(
        "source:\n  kind: files\n  tables:\n    sessions:\n      path: exports/visits.csv\n"
        "      columns: {session_id: Visit, start_ts: Started, product_pages: Pages, purchased: Bought}\n"
        "notebooks: [01_data_cleaning]\n")
    source = dataset_source("visits")
    assert behaviour_data(source) is None
    build_raw("visits", source)
    got = collect("visits")
    s = got.result.tables["sessions"]
    assert s["purchased"].tolist() == [True, False] and s["product_pages"].tolist() == [4, 1]
    assert got.as_of == pd.Timestamp("2024-03-02 11:30", tz="UTC")
    assert len(got.result.tables["customers"]) == 0


# ----------------------------------------------------------------------------- which notebooks a dataset runs


@pytest.mark.parametrize("source,reason", [
    ({"kind": "demo"}, None),
    ({"kind": "demo", "with_events": False}, "without web or app events (source.with_events is false)"),
    ({"kind": "cdnow"}, "CDNOW has purchases only, no web or app events (clicks, carts, searches)."),
    ({"kind": "online_retail"}, "Online Retail has invoice lines only, no web or app events"),
    ({"kind": "hillstrom"}, "one visit flag per customer"),
    ({"kind": "online_shoppers"}, None),
    ({"kind": "diginetica"}, None),
    ({"kind": "files", "tables": {"orders": {"path": "o.csv"}}}, "no events or sessions export is mapped"),
    ({"kind": "files", "tables": {"orders": {"path": "o.csv"}, "events": {"path": "e.csv"}}}, None),
    ({"kind": "files", "tables": {"sessions": {"path": "s.csv"}}}, None),
])
def test_behaviour_data_per_kind(source, reason):
    full = validate_source("x", source, "params/x.yaml")
    got = behaviour_data(full)
    if reason is None:
        assert got is None
    else:
        assert reason in got and got.endswith(".") and "\n" not in got


def test_behaviour_data_covers_every_kind():
    for kind in SOURCE_KINDS:
        if kind != "files":
            behaviour_data(validate_source("x", {"kind": kind}, "params/x.yaml"))


def _probe(project, name: str = "09_probe", requires="behaviour", title: str = "Probe of behaviour") -> None:
    """notebooks/<name>.ipynb requiring *requires*, with a parameter of its own (``probe_depth``)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "crm-analytics", "display_name": "CRM Analytics", "language": "python"}
    nb.metadata["crm_analytics"] = {"requires": requires}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"),
                nbformat.v4.new_code_cell('dataset: str = "ci"  # dataset\nprobe_depth: int = 3  # depth',
                                          metadata={"tags": ["parameters"]})]
    nbformat.write(nb, project / "notebooks" / f"{name}.ipynb")


def _dataset(project, text: str, name: str = "mine") -> str:
    (project / "params" / f"{name}.yaml").write_text(text)
    return name


def test_a_notebook_the_source_cannot_feed_is_left_out_with_its_reason(project):
    _probe(project)
    assert notebook_requires("09_probe") == ["behaviour"] and notebook_requires("01_data_cleaning") == []
    got = resolve_notebook_params(_dataset(project, "source: {kind: cdnow}\n"))
    assert "09_probe" not in got["notebooks"] and "01_data_cleaning" in got["notebooks"]
    assert got["skipped"]["09_probe"] == "CDNOW has purchases only, no web or app events (clicks, carts, searches)."
    assert "09_probe" not in got["per_notebook"]
    fed = resolve_notebook_params(_dataset(project, "source: {kind: demo, n_customers: 100}\n", "shop"))
    assert "09_probe" in fed["notebooks"] and "09_probe" not in fed["skipped"]
    off = resolve_notebook_params(_dataset(project, "source: {kind: demo, with_events: false}\nprobe_depth: 5\n"))
    assert "09_probe" in off["skipped"] and "with_events is false" in off["skipped"]["09_probe"]
    # the key of the skipped notebook is still known and checked, and goes nowhere
    assert all("probe_depth" not in v for v in off["per_notebook"].values())
    with pytest.raises(ParamsError, match=r"key 'probe_depth' must be int"):
        resolve_notebook_params(_dataset(project, "source: {kind: cdnow}\nprobe_depth: deep\n"))


def test_a_listed_notebook_the_source_cannot_feed_is_refused(project):
    _probe(project)
    with pytest.raises(ParamsError, match=r"params/mine.yaml: key 'notebooks' names '09_probe', which this dataset "
                                          r"cannot feed: Hillstrom has one visit flag per customer.*Remove 09_probe"):
        resolve_notebook_params(_dataset(project, "source: {kind: hillstrom}\nnotebooks: [01_data_cleaning, 09_probe]\n"))
    got = resolve_notebook_params(_dataset(project, "source: {kind: hillstrom}\nnotebooks: [01_data_cleaning]\n"))
    assert got["notebooks"] == ["01_data_cleaning"] and "09_probe" in got["skipped"]
    assert "02_segmentation" not in got["skipped"]  # not listed, but nothing it requires is missing


def test_an_unknown_requirement_names_the_notebook(project):
    _probe(project, requires="telepathy")
    with pytest.raises(ParamsError, match=r"notebooks/09_probe.ipynb: metadata crm_analytics.requires names "
                                          r"'telepathy'; requirements are \['behaviour', 'reviews'\]"):
        resolve_notebook_params(_dataset(project, "source: {kind: cdnow}\n"))


def test_the_index_shows_a_skipped_notebook_with_its_title_and_reason(project):
    _probe(project)
    _dataset(project, "description: CDNOW\nsource: {kind: cdnow}\nnotebooks: [01_data_cleaning]\n")
    html = unescape(write_index("mine").read_text())
    assert "Probe of behaviour" in html
    assert "Not run for this dataset: CDNOW has purchases only, no web or app events (clicks, carts, searches)." in html
    assert html.index("Data cleaning") < html.index("Probe of behaviour")  # pipeline order
    assert 'href="09_probe.html"' not in html

"""Source adapters, checked against independent computations on the raw files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.ingest.cleaning import clean_tables
from crm_analytics.errors import ParamsError, SourceError
from crm_analytics.ingest.formats import NON_PRODUCT_CODES, read_hillstrom, read_online_retail, read_table_file
from crm_analytics.ingest.quality import cleaning_metrics
from crm_analytics.ingest.sources import build_raw, read_source, validate_source

from conftest import external_file


@pytest.mark.parametrize("variant,customers,transactions", [("sample", 2357, 6919), ("master", 23570, 69659)])
def test_cdnow_counts_match_the_published_dataset(project, variant, customers, transactions):
    source = validate_source("cdnow", {"kind": "cdnow", "variant": variant}, "params/cdnow.yaml")
    build_raw("cdnow", source)
    raw = read_source("cdnow", source)
    res = clean_tables(raw, key=b"k")
    orders = res.tables["orders"]
    assert len(orders) == transactions
    assert orders["customer_id"].nunique() == customers
    assert orders["order_ts"].min() == pd.Timestamp("1997-01-01", tz="UTC")
    assert orders["order_ts"].max() <= pd.Timestamp("1998-06-30", tz="UTC")
    assert orders["order_total"].sum() == pytest.approx(raw["orders"]["order_total"].sum())


def test_read_source_without_raw_data_says_what_to_run(project):
    with pytest.raises(SourceError, match=r"raw data of dataset 'cdnow' is missing.*make data DATASET=cdnow"):
        read_source("cdnow", {"kind": "cdnow", "variant": "sample"})


@pytest.mark.slow
@pytest.mark.external
def test_online_retail_counts_equal_an_independent_computation():
    path = external_file("online_retail/online_retail.csv.gz")
    # independent: plain pandas on the raw file, not the pipeline
    raw = pd.read_csv(path, dtype=str)
    inv = raw["InvoiceNo"]
    qty = raw["Quantity"].astype(float)
    price = raw["UnitPrice"].astype(float)
    dup = raw.duplicated()
    cancelled = inv.str.startswith("C")
    signed_qty = np.where(cancelled, -qty, qty)
    usable = (~dup & ~raw["StockCode"].str.upper().isin(NON_PRODUCT_CODES) & (signed_qty > 0) & (price > 0))

    res = clean_tables(read_online_retail(path), key=b"k")
    m = cleaning_metrics(res)
    lines = m["tables"]["order_lines"]
    assert lines["rows_in"] == len(raw) == 541909
    assert lines["rows_duplicate"] == int(dup.sum()) == 5268
    assert lines["rows_kept"] == int(usable.sum())
    assert lines["rows_in"] == lines["rows_kept"] + lines["rows_rejected"] + lines["rows_duplicate"]
    assert m["cancelled_lines"] == int(cancelled.sum())
    assert m["guest_lines"] == int(raw["CustomerID"].isna().sum())
    kept_invoices = inv[usable]
    assert len(res.tables["orders"]) == kept_invoices.nunique()
    cust = raw.loc[usable, "CustomerID"].dropna().str.replace(".0", "", regex=False)
    assert m["customers_identified"] == cust.nunique()
    revenue = (signed_qty * price)[usable & ~cancelled].sum()
    completed = res.tables["orders"].query("status == 'completed'")["order_total"].sum()
    assert completed == pytest.approx(revenue, rel=1e-6)


@pytest.mark.external
def test_hillstrom_arms_and_outcomes():
    path = external_file("hillstrom/hillstrom.csv")
    independent = pd.read_csv(path)
    t = read_hillstrom(path)
    assert len(t["customers"]) == len(independent) == 64000
    arms = t["campaign_assignments"]["variant"].value_counts().to_dict()
    expected = independent["segment"].map({"Mens E-Mail": "mens", "Womens E-Mail": "womens",
                                           "No E-Mail": "control"}).value_counts().to_dict()
    assert arms == expected
    assert len(t["orders"]) == int((independent["conversion"] == 1).sum())
    assert t["orders"]["order_total"].astype(float).sum() == pytest.approx(
        independent.loc[independent["conversion"] == 1, "spend"].sum())
    assert len(t["events"]) == int(independent["visit"].sum())


@pytest.mark.parametrize("encoding,sep", [("utf-8", ","), ("utf-8-sig", ";"), ("cp1254", "\t"), ("iso-8859-9", ";")])
def test_exports_in_turkish_encodings_and_delimiters(tmp_path, encoding, sep):
    df = pd.DataFrame({"müşteri": ["Şule", "Çağrı", "Ömer"], "şehir": ["İstanbul", "Iğdır", "Muğla"]})
    f = tmp_path / "export.csv"
    df.to_csv(f, sep=sep, index=False, encoding=encoding)
    got, detected = read_table_file(f)
    assert list(got.columns) == ["müşteri", "şehir"]
    assert got["şehir"].tolist() == ["İstanbul", "Iğdır", "Muğla"]


def test_empty_and_missing_files_get_one_clear_message(tmp_path):
    with pytest.raises(SourceError, match=r"nope\.csv: file does not exist"):
        read_table_file(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match=r"empty\.csv: file is empty"):
        read_table_file(tmp_path / "empty.csv")


@pytest.mark.parametrize("kind,path", [("diginetica", "external:diginetica/sample_train-item-views.csv"),
                                       ("online_shoppers", "external:online_shoppers/online_shoppers_intention.csv")])
def test_behaviour_kinds_default_to_the_shared_external_file(kind, path):
    got = validate_source(kind, {"kind": kind}, f"params/{kind}.yaml")
    assert got["path"] == path
    with pytest.raises(ParamsError, match=rf"params/{kind}.yaml: unknown key source.tables for kind '{kind}'"):
        validate_source(kind, {"kind": kind, "tables": {}}, f"params/{kind}.yaml")


def test_the_files_kind_accepts_a_sessions_export():
    src = {"kind": "files", "tables": {"sessions": {"path": "visits.csv", "columns": {"session_id": "Visit",
                                                                                     "purchased": "Bought"}}}}
    assert validate_source("x", src, "params/x.yaml")["tables"]["sessions"]["path"] == "visits.csv"
    with pytest.raises(ParamsError, match=r"\['revenue'\] are not columns of sessions"):
        validate_source("x", {"kind": "files", "tables": {"sessions": {"path": "v.csv", "columns": {"revenue": "R"}}}},
                        "params/x.yaml")

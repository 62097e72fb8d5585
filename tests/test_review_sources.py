"""The review datasets (Turkish shoppingwords reviews, English clothing reviews): readers on the real files and on
small hand-made ones, zip archives with stray entries, which notebooks a reviews-only dataset runs, collection
without orders, customers or dates, and `make reports DATASET=reviews_en` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from html import unescape
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crm_analytics import paths
from crm_analytics.ingest.cleaning import clean_tables
from crm_analytics.ingest.collect import collect, dataset_source, ignored_archive_members
from crm_analytics.ingest.contracts import EVALUATION_TABLES, TABLES
from crm_analytics.errors import DataContractError, ParamsError, SourceError
from crm_analytics.ingest.params import REQUIREMENTS, notebook_requires, resolve_notebook_params
from crm_analytics.ingest.review_sources import (read_review_file, read_review_sentences, read_reviews_en, read_reviews_tr,
                                          stray_archive_member)
from crm_analytics.ingest.sources import SOURCE_KINDS, build_raw, external_inputs, review_data, validate_source

from conftest import EXTERNAL, copy_project, external_file

TR_REVIEWS = "reviews_tr/shoppingwords_reviews.csv.gz"
TR_SENTENCES = "reviews_tr/shoppingwords_sentences.csv"
EN_ZIP = "reviews_en/womens_clothing_ecommerce_reviews.csv.zip"
EN_MEMBER = "Womens Clothing E-Commerce Reviews.csv"


def _en_independent(path: Path) -> pd.DataFrame:
    """The English export read with plain zipfile + pandas, not the pipeline."""
    with zipfile.ZipFile(path) as zf:
        return pd.read_csv(zf.open(EN_MEMBER), dtype=str, keep_default_na=False)


# ----------------------------------------------------------------------------- readers on the real files


@pytest.mark.external
def test_turkish_reviews_reader_on_the_real_files():
    path, spath = external_file(TR_REVIEWS), external_file(TR_SENTENCES)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)  # independent: plain pandas
    sraw = pd.read_csv(spath, dtype=str, keep_default_na=False)
    got = read_reviews_tr(path, spath)
    r, s = got["reviews"], got["review_sentences"]
    assert len(r) == len(raw) == 260_308 and len(s) == len(sraw) == 1_481
    assert (r["review_id"] == raw["id"]).all() and (r["text"] == raw["comment"].str.strip()).all()
    assert (r["language"] == "tr").all() and r[["customer_id", "product_id", "order_id", "ts"]].isna().all().all()
    assert r["_source_file"].iloc[0] == "shoppingwords_reviews.csv.gz" and r["_source_line"].iloc[-1] == 260_309
    assert s["label"].value_counts().to_dict() == {"positive": 1_184, "negative": 297} == {
        {"p": "positive", "n": "negative"}[k]: v for k, v in sraw["emotion"].value_counts().items()}
    inputs = got["_inputs"].set_index("file")
    assert inputs.loc["shoppingwords_reviews.csv.gz", "format"] == "csv.gz"
    assert inputs.loc["shoppingwords_reviews.csv.gz", "rows_without_text"] == 0

    clean = clean_tables(got, key=b"k")
    reviews = clean.tables["reviews"]
    assert clean.counts["reviews"]["rows_kept"] == 260_308 and clean.counts["reviews"]["rows_rejected"] == 0
    assert reviews["rating"].between(1, 5).all()
    assert reviews["rating"].value_counts().to_dict() == raw["rating"].astype(int).value_counts().to_dict()
    assert "review_sentences" not in clean.tables  # evaluation data, kept apart from the shop's tables
    sentences = clean.evaluation["review_sentences"]
    assert list(sentences.columns) == EVALUATION_TABLES["review_sentences"].column_names
    assert clean.counts["review_sentences"]["rows_kept"] == 1_481 and sentences["rating"].between(1, 5).all()


@pytest.mark.external
def test_english_reviews_reader_on_the_real_zip_ignores_and_reports_the_macosx_entry():
    path = external_file(EN_ZIP)
    raw = _en_independent(path)
    with zipfile.ZipFile(path) as zf:
        assert len(zf.namelist()) == 2  # the csv and its macOS resource fork
    got = read_reviews_en(path)
    detected = got["_inputs"].iloc[0]
    assert detected["member"] == EN_MEMBER and detected["ignored_count"] == 1
    assert detected["ignored_members"] == f"__MACOSX/._{EN_MEMBER} (a macOS resource fork, not data)"
    assert detected["file"] == f"womens_clothing_ecommerce_reviews.csv.zip:{EN_MEMBER}"
    assert detected["format"] == "csv in zip"
    r = got["reviews"]
    assert len(r) == len(raw) == 23_486 and (r["language"] == "en").all()
    assert (r["review_id"] == raw.iloc[:, 0]).all() and (r["product_id"] == raw["Clothing ID"]).all()
    assert int(r["attr_recommended"].sum()) == int((raw["Recommended IND"] == "1").sum()) == 19_314
    no_text = (raw["Title"].str.strip() == "") & (raw["Review Text"].str.strip() == "")
    assert int((r["text"] == "").sum()) == int(no_text.sum()) == detected["rows_without_text"] == 844
    titled = raw["Title"].str.strip().str.match(r".*[a-z]$") & (raw["Review Text"] != "")
    i = int(titled.to_numpy().nonzero()[0][0])
    assert r["text"].iloc[i] == raw["Title"].iloc[i].strip() + ". " + raw["Review Text"].iloc[i].strip()
    untitled = (raw["Title"] == "") & (raw["Review Text"] != "")
    assert (r["text"][untitled] == raw["Review Text"][untitled].str.strip()).all()

    clean = clean_tables(got, key=b"k")
    reviews, products = clean.tables["reviews"], clean.tables["products"]
    assert clean.counts["reviews"]["rows_kept"] == 23_486 and reviews["rating"].between(1, 5).all()
    assert reviews["rating"].value_counts().to_dict() == raw["Rating"].astype(int).value_counts().to_dict()
    assert reviews["text"].isna().sum() == 844  # kept without text (cleaning keeps "" as missing)
    assert len(products) == raw["Clothing ID"].nunique() == 1_206
    assert clean.counts["products"]["derived_from"] == "reviews"
    assert set(products["category"].dropna()) == set(raw["Class Name"]) - {""}
    assert products["category"].isna().sum() == 7  # products whose reviews name no class
    dresses = products.loc[products["product_id"] == "1080"].iloc[0]
    assert (dresses["category"], dresses["attr_department"]) == ("Dresses", "Dresses")
    assert reviews["product_id"].isin(products["product_id"]).all()


# ----------------------------------------------------------------------------- zip archives, hand-made


EN_HEADER = (",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,Positive Feedback Count,Division Name,"
             "Department Name,Class Name\n")
EN_ROWS = ('0,767,33,,Absolutely wonderful,4,1,0,Initmates,Intimate,Intimates\n'
           '1,1080,34,Love it!,"So pretty, fits well.",5,1,4,General,Dresses,Dresses\n'
           '2,1080,60,Some flaws,Too small,3,0,0,General,Dresses,Dresses\n'
           '3,1049,50,,,5,1,0,General Petite,Bottoms,Pants\n'
           '4,1049,47,Only a title,,2,x,,General Petite,Bottoms,\n')


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return path


FORK = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02" + bytes(40)  # an AppleDouble header


def test_a_zip_with_a_stray_macosx_entry_is_read_for_its_one_csv(tmp_path):
    path = _zip(tmp_path / "reviews.csv.zip", {"__MACOSX/": b"", "__MACOSX/._reviews.csv": FORK,
                                               "reviews.csv": (EN_HEADER + EN_ROWS).encode()})
    got = read_reviews_en(path)
    d = got["_inputs"].iloc[0]
    assert (d["member"], d["ignored_count"], d["format"]) == ("reviews.csv", 2, "csv in zip")
    assert d["ignored_members"] == ("__MACOSX/ (a folder entry); "
                                    "__MACOSX/._reviews.csv (a macOS resource fork, not data)")
    r = got["reviews"]
    assert r["text"].tolist() == ["Absolutely wonderful", "Love it! So pretty, fits well.", "Some flaws. Too small", "",
                                  "Only a title"]
    assert r["attr_recommended"].tolist()[:4] == [True, True, False, True] and pd.isna(r["attr_recommended"].iloc[4])
    assert r["attr_positive_feedback"].tolist()[:4] == [0, 4, 0, 0] and pd.isna(r["attr_positive_feedback"].iloc[4])
    assert r["_source_file"].iloc[0] == "reviews.csv.zip:reviews.csv" and r["_source_line"].tolist() == [2, 3, 4, 5, 6]
    assert d["rows_without_text"] == 1
    p = got["products"]
    assert p["product_id"].tolist() == ["767", "1080", "1049"] and p["_source_line"].tolist() == [2, 3, 5]
    assert p["category"].tolist() == ["Intimates", "Dresses", "Pants"]  # an empty class does not win
    notes = {"inputs": got["_inputs"].to_dict(orient="records")}
    assert ignored_archive_members(notes) == [
        "reviews.csv.zip: __MACOSX/ (a folder entry)",
        "reviews.csv.zip: __MACOSX/._reviews.csv (a macOS resource fork, not data)"]


def test_the_same_export_unzipped_reads_the_same(tmp_path):
    (tmp_path / "reviews.csv").write_text(EN_HEADER + EN_ROWS)
    zipped = read_reviews_en(_zip(tmp_path / "r.zip", {"reviews.csv": (EN_HEADER + EN_ROWS).encode(),
                                                       "._reviews.csv": FORK}))
    plain = read_reviews_en(tmp_path / "reviews.csv")
    cols = [c for c in plain["reviews"].columns if c != "_source_file"]
    pd.testing.assert_frame_equal(plain["reviews"][cols], zipped["reviews"][cols])
    assert "ignored_members" not in plain["_inputs"] and plain["_inputs"].loc[0, "format"] == "csv"


@pytest.mark.parametrize("members, message", [
    ({"__MACOSX/._a.csv": FORK, ".DS_Store": b"x"}, r"data files found: none"),
    ({"a.csv": b"x,y\n1,2\n", "b.csv": b"x,y\n1,2\n"}, r"data files found: \['a.csv', 'b.csv'\]"),
])
def test_a_zip_without_exactly_one_data_file_is_refused_by_name(tmp_path, members, message):
    path = _zip(tmp_path / "export.zip", members)
    with pytest.raises(SourceError, match=r"export.zip: a zip archive must hold exactly one data file.*" + message):
        read_review_file(path)


def test_a_truncated_zip_is_a_source_error(tmp_path):
    good = _zip(tmp_path / "good.zip", {"reviews.csv": (EN_HEADER + EN_ROWS * 50).encode()}).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(SourceError, match=r"cut.zip: cannot be read as a zip archive"):
        read_review_file(cut)


def test_an_empty_member_is_named_inside_its_archive(tmp_path):
    path = _zip(tmp_path / "export.zip", {"reviews.csv": EN_HEADER.encode(), "__MACOSX/._reviews.csv": FORK})
    with pytest.raises(DataContractError, match=r"export.zip:reviews.csv: the file has a header \(Unnamed: 0, "
                                                 r"Clothing ID.*but no rows"):
        read_reviews_en(path)


@pytest.mark.parametrize("name, stray", [
    ("__MACOSX/._x.csv", True), ("data/._x.csv", True), ("data/", True), (".DS_Store", True),
    ("sub/Thumbs.db", True), ("x.csv", False), ("data/x.csv", False), ("__MACOSXfoo.csv", False),
])
def test_stray_archive_members(name, stray):
    assert (stray_archive_member(name) is not None) == stray


# ----------------------------------------------------------------------------- the Turkish layout, hand-made


def test_turkish_reader_on_small_files_rejects_bad_stars_and_labels(tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text('id,rating,comment\n1,5,Çok güzel\n2,7,Harika\n3,1,\n4,abc,Kötü\n'
                       '5,3,"Fena değil, idare eder"\n', encoding="utf-8")
    sentences = tmp_path / "sentences.csv"
    sentences.write_text("rating,text,emotion\n5,Çok beğendim,p\n1,Berbat,n\n3,Orta,x\n9,Süper,P\n",
                         encoding="utf-8")
    got = read_reviews_tr(reviews, sentences)
    assert got["reviews"]["text"].tolist() == ["Çok güzel", "Harika", "", "Kötü", "Fena değil, idare eder"]
    assert got["review_sentences"]["label"].tolist() == ["positive", "negative", "x", "positive"]
    assert got["review_sentences"]["sentence_id"].tolist() == ["S0001", "S0002", "S0003", "S0004"]
    clean = clean_tables(got, key=b"k")
    r = clean.tables["reviews"]
    assert r["review_id"].tolist() == ["1", "3", "5"] and r["text"].isna().tolist() == [False, True, False]
    assert clean.counts["reviews"]["rejects_by_reason"] == {"non_numeric_rating": 1, "rating_out_of_range": 1}
    assert clean.rejects["reviews"]["_source_line"].tolist() == [3, 5]
    assert clean.counts["review_sentences"]["rejects_by_reason"] == {"invalid_label": 1, "rating_out_of_range": 1}
    assert clean.evaluation["review_sentences"]["text"].tolist() == ["Çok beğendim", "Berbat"]


def test_turkish_reader_without_sentences_and_with_a_missing_column(tmp_path):
    f = tmp_path / "reviews.csv"
    f.write_text("id,rating,comment\n1,5,İyi\n")
    got = read_reviews_tr(f)
    assert set(got) == {"reviews", "_inputs"}
    f.write_text("id,comment\n1,İyi\n")
    with pytest.raises(DataContractError, match=r"reviews.csv: required column 'rating' is absent"):
        read_reviews_tr(f)


# ----------------------------------------------------------------------------- sources, requirements, params


def test_review_kinds_validate_with_their_paths_and_feed_reviews_only():
    tr = validate_source("reviews_tr", {"kind": "reviews_tr"}, "params/reviews_tr.yaml")
    assert [p.name for p in external_inputs(tr)] == ["shoppingwords_reviews.csv.gz", "shoppingwords_sentences.csv"]
    none = validate_source("x", {"kind": "reviews_tr", "sentences_path": ""}, "params/x.yaml")
    assert [p.name for p in external_inputs(none)] == ["shoppingwords_reviews.csv.gz"]
    en = validate_source("reviews_en", {"kind": "reviews_en"}, "params/reviews_en.yaml")
    assert [p.name for p in external_inputs(en)] == ["womens_clothing_ecommerce_reviews.csv.zip"]
    with pytest.raises(ParamsError, match=r"unknown key source.sentences_path for kind 'reviews_en'"):
        validate_source("x", {"kind": "reviews_en", "sentences_path": "s.csv"}, "params/x.yaml")
    assert review_data(tr) is None and review_data(en) is None


@pytest.mark.parametrize("source, reason", [
    ({"kind": "demo"}, None),
    ({"kind": "demo", "with_events": False}, None),
    ({"kind": "reviews_tr"}, None),
    ({"kind": "reviews_en"}, None),
    ({"kind": "cdnow"}, "CDNOW has purchases only, no product reviews or ratings."),
    ({"kind": "online_retail"}, "no product reviews or ratings"),
    ({"kind": "hillstrom"}, "no product reviews or ratings"),
    ({"kind": "online_shoppers"}, "no product reviews or ratings"),
    ({"kind": "diginetica"}, "no product reviews or ratings"),
    ({"kind": "files", "tables": {"orders": {"path": "o.csv"}}}, "no reviews export is mapped (source.tables.reviews)"),
    ({"kind": "files", "tables": {"orders": {"path": "o.csv"}, "reviews": {"path": "r.csv"}}}, None),
])
def test_review_data_per_kind(source, reason):
    got = review_data(validate_source("x", source, "params/x.yaml"))
    if reason is None:
        assert got is None
    else:
        assert reason in got and got.endswith(".") and "\n" not in got


def test_review_data_covers_every_kind_and_is_a_requirement():
    assert "reviews" in REQUIREMENTS
    for kind in SOURCE_KINDS:
        if kind != "files":
            review_data(validate_source("x", {"kind": kind}, "params/x.yaml"))


def _probe_feedback(project) -> None:
    """notebooks/07_probe.ipynb requiring reviews, as 07_feedback will."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "crm-analytics", "display_name": "CRM Analytics", "language": "python"}
    nb.metadata["crm_analytics"] = {"requires": "reviews"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Probe of feedback"),
                nbformat.v4.new_code_cell('dataset: str = "ci"  # dataset', metadata={"tags": ["parameters"]})]
    nbformat.write(nb, project / "notebooks" / "07_probe.ipynb")


def test_review_datasets_run_cleaning_and_feedback_only_and_say_why_behaviour_is_not_run(project):
    for dataset in ("reviews_tr", "reviews_en"):
        got = resolve_notebook_params(dataset)
        assert got["notebooks"] == ["01_data_cleaning", "07_feedback"]
        assert "no web or app events" in got["skipped"]["05_behaviour"]
        assert "02_segmentation" not in got["skipped"]  # the notebooks that need orders are simply not listed
    _probe_feedback(project)
    assert notebook_requires("07_probe") == ["reviews"]
    (project / "params" / "mine.yaml").write_text("source: {kind: reviews_en}\n")  # no list: what it can feed
    assert "07_probe" in resolve_notebook_params("mine")["notebooks"]
    (project / "params" / "mine.yaml").write_text("source: {kind: cdnow}\n")
    assert resolve_notebook_params("mine")["skipped"]["07_probe"] == ("CDNOW has purchases only, no product reviews "
                                                                      "or ratings.")
    assert "07_probe" in resolve_notebook_params("demo")["notebooks"]


def test_review_sentences_is_an_evaluation_table_not_a_canonical_one():
    assert "review_sentences" not in TABLES and "reviews" in TABLES
    spec = EVALUATION_TABLES["review_sentences"]
    assert spec.key == ("sentence_id",) and spec.column("label").allowed == ("positive", "negative")


# ----------------------------------------------------------------------------- collect without orders or dates


@pytest.mark.external
def test_collect_reviews_en(project):
    external_file(EN_ZIP)
    build_raw("reviews_en", dataset_source("reviews_en"))
    got = collect("reviews_en")
    tables, counts = got.result.tables, got.result.counts
    assert set(counts) == {"products", "reviews"} and "orders" not in tables
    assert counts["reviews"]["rows_kept"] == 23_486 and counts["products"]["derived_from"] == "reviews"
    assert len(tables["customers"]) == 0 and len(got.customers_360) == 0
    assert ignored_archive_members(got.result.notes) == [
        f"womens_clothing_ecommerce_reviews.csv.zip: __MACOSX/._{EN_MEMBER} (a macOS resource fork, not data)"]
    inputs = got.result.notes["inputs"][0]
    assert inputs["tables"] == "reviews, products" and inputs["date_order"] == "" and inputs["rows_without_text"] == 844
    interim = paths.interim_dir("reviews_en")
    quality = json.loads((interim / "quality.json").read_text())
    assert quality["freshness"] == [] and quality["notes"]["inputs"][0]["ignored_count"] == 1
    written = pd.read_parquet(interim / "reviews.parquet")
    assert len(written) == 23_486 and written["ts"].isna().all() and "attr_recommended" in written
    assert read_review_sentences("reviews_en") is None


@pytest.mark.external
def test_collect_reviews_tr_writes_the_sentences_beside_the_reviews(project):
    external_file(TR_REVIEWS)
    external_file(TR_SENTENCES)
    build_raw("reviews_tr", dataset_source("reviews_tr"))
    got = collect("reviews_tr")
    counts = got.result.counts
    assert counts["reviews"]["rows_kept"] == 260_308 and counts["review_sentences"]["rows_kept"] == 1_481
    assert "review_sentences" not in got.result.tables
    sentences = read_review_sentences("reviews_tr")
    assert len(sentences) == 1_481 and set(sentences["label"]) == {"positive", "negative"}
    manifest = json.loads((paths.raw_dir("reviews_tr") / "_SOURCE.json").read_text())
    assert sorted(Path(f).name for f in manifest["files"]) == ["shoppingwords_reviews.csv.gz",
                                                               "shoppingwords_sentences.csv"]


def test_a_missing_sentences_file_is_named_with_its_key(project):
    (project / "r.csv").write_text("id,rating,comment\n1,5,a\n")
    (project / "params" / "mine.yaml").write_text(
        "source: {kind: reviews_tr, path: r.csv, sentences_path: nowhere/sentences.csv}\n")
    with pytest.raises(SourceError, match=r"sentences.csv: input file of dataset 'mine' does not exist; set "
                                          r"source.sentences_path in params/mine.yaml"):
        build_raw("mine", dataset_source("mine"))


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.external
def test_make_reports_on_reviews_en(tmp_path):
    external_file(EN_ZIP)
    root = copy_project(tmp_path / "reviews")
    env = {**os.environ, "CRM_ANALYTICS_ROOT": str(root), "CRM_ANALYTICS_SECRET": "x",
           "CRM_ANALYTICS_EXTERNAL": str(EXTERNAL)}
    run = subprocess.run(["make", "--no-print-directory", "reports", "DATASET=reviews_en"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    reports = root / "reports" / "reviews_en"
    html = (reports / "01_data_cleaning.html").read_text(encoding="utf-8")
    assert "Traceback" not in html
    text = unescape(html)
    assert f"__MACOSX/._{EN_MEMBER}" in text and "No table of this dataset has dates" in text
    assert json.loads((reports / "status" / "01_data_cleaning.json").read_text())["status"] == "ok"
    metrics = json.loads((reports / "metrics" / "01_data_cleaning.json").read_text())
    assert metrics["tables"]["reviews"]["rows_kept"] == 23_486
    index = unescape((reports / "index.html").read_text(encoding="utf-8"))
    assert "Not run for this dataset: The clothing reviews are stars, text and a recommended flag only" in index
    assert not (reports / "02_segmentation.html").exists()
    assert (root / "data" / "interim" / "reviews_en" / "reviews.parquet").exists()

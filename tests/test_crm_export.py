"""Contact lists for a CRM or e-mail tool (crm_export): consent and erasure re-checked at export time, contact
details only in the explicit step, outside reports/, private files, counts-only output."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crm_analytics import paths
from crm_analytics.models import segmentation
from crm_analytics.reports import offers_report
from crm_analytics.pipeline import crm_export
from crm_analytics.ingest.erasure import add_request
from crm_analytics.ingest.privacy import pseudonymise

from conftest import REPO, shop_params

SECRET = "test-secret"

# the shop's customers export (Turkish column names and consent values, as a Turkish Excel csv)
CUSTOMERS = [
    # id, e-mail, phone, full name, consent
    ("M1", "Ayse.Nur@Example.com", "+90 532 111 2233", "Ayşe Nur Yılmaz", "evet"),
    ("M2", "mehmet@example.com", "+90 532 222 3344", "Mehmet Öz", "hayır"),   # withdrew consent after the build
    ("M3", "can@example.com", "+90 532 333 4455", "Can Demir", "evet"),      # erased after the build
    ("M4", "", "+90 532 444 5566", "Zeynep Kaya", "evet"),                   # no e-mail
    ("M5", "ali@example.com", "", "Ali", "evet"),                            # no phone, one-word name
    ("M6", "elif@example.com", "+90 532 666 7788", "Elif Şahin", ""),        # consent missing: no consent
    ("M8", "AYSE.NUR@example.com", "+90 532 888 9900", "Ayşe Yılmaz", "evet"),  # M1's e-mail again
    ("M9", "not-an-address", "+90 532 999 0011", "Deniz Ak", "evet"),        # unusable e-mail
]
SEGMENTS = {"M1": "Champions", "M2": "Champions", "M3": "Champions", "M4": "Loyal", "M5": "Loyal",
            "M6": "Loyal", "M7": "Loyal", "M8": "Champions", "M9": "Loyal"}  # M7: not in the raw table


def _write_raw(root: Path, rows=CUSTOMERS) -> None:
    ex = root / "exports"
    ex.mkdir(exist_ok=True)
    (ex / "siparisler.csv").write_bytes(("Sipariş No;Müşteri;Tarih;Durum;Tutar\n" + "".join(
        f"10{i};{c[0]};2024-01-0{i} 10:15;Ödendi;149,90\n" for i, c in enumerate(rows, 1))).encode("cp1254"))
    text = "Müşteri;E-posta;Telefon;Ad Soyad;İzin\n" + "".join(";".join(r) + "\n" for r in rows)
    (ex / "musteriler.csv").write_bytes(text.encode("cp1254"))


def _publish(dataset: str) -> None:
    """The lists the notebooks publish, written by their own writers, from the customers as they were at build
    time (everyone consenting then)."""
    exports, processed = paths.reports_dir(dataset) / "exports", paths.processed_dir(dataset)
    seg = pd.DataFrame({"customer_id": list(SEGMENTS), "segment": pd.Categorical(list(SEGMENTS.values()))})
    then = pd.DataFrame({"customer_id": list(SEGMENTS), "consent_marketing": True})
    segmentation.marketing_exports(seg, then, exports)
    processed.mkdir(parents=True, exist_ok=True)
    seg.to_parquet(processed / "segments.parquet", index=False)
    pd.DataFrame({"customer_id": ["M1"], "segment": ["Old segment"]}).to_csv(exports / "old_segment.csv", index=False)
    nba = pd.DataFrame({"customer_id": ["M1", "M2", "M4", "M5", "M9", "M3"],
                        "action": ["discount", "discount", "product_email", "discount", "sms_offer", "nothing"],
                        "channel": ["email", "email", "email", "email", "sms", None],
                        "send_day": ["Monday"] * 6, "send_hour": [10] * 6, "offer_category": ["Oyuncak"] * 6,
                        "product_id": [None, None, "P1", None, None, None],
                        "product_name": [None, None, "Top", None, None, None],
                        "expected_incremental_margin": [1.0] * 6, "reason": ["x"] * 6, "relevance": [0.1] * 6})
    birthdays = pd.DataFrame({"customer_id": ["M1", "M3"], "birth_day": [3, 9]})
    winback = pd.DataFrame({"customer_id": ["M2", "M5"], "churn_risk": ["high", "high"], "p_alive": [0.2, 0.1],
                            "clv": [30.0, 20.0]})
    offers_report.export_offers(nba, birthdays, winback, then, processed, exports)


@pytest.fixture
def shop(project, monkeypatch):
    """A tiny shop: raw exports, clean tables built with SECRET, lists published, then M3 erased."""
    extra = ('date_format: ""\nactions:\n  discount: {campaign: C1, arm: d15, discount: 0.15}\n'
             '  product_email: {campaign: C1, arm: mail, discount: 0.1}\n')
    params = shop_params("customer_id: Müşteri, email: E-posta, phone: Telefon, full_name: Ad Soyad, "
                         "consent_marketing: İzin", "01_data_cleaning", extra)
    (project / "params" / "myshop.yaml").write_text(params, encoding="utf-8")
    _write_raw(project)
    from crm_analytics.ingest.collect import collect
    from crm_analytics.ingest.params import load_params
    from crm_analytics.ingest.sources import build_raw, validate_source

    build_raw("myshop", validate_source("myshop", load_params("myshop")["shared"]["source"], "params/myshop.yaml"))
    collect("myshop")
    _publish("myshop")
    add_request("myshop", "M3")
    return project


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _rows(summary: list[dict]) -> dict[str, dict]:
    return {r["file"]: r for r in summary if r["file"]}


def test_only_consented_not_erased_customers_with_an_e_mail_are_written(shop):
    summary = crm_export.write_contacts("myshop", fmt="generic")
    folder = shop / "data" / "contacts" / "myshop"
    rows = _rows(summary)
    champions = _read(folder / "segment_champions.generic.csv")
    # M1 kept (e-mail lower-cased); M2 withdrew consent; M3 erased; M8 shares M1's e-mail
    assert champions["email"].tolist() == ["ayse.nur@example.com"]
    assert champions[["first_name", "last_name", "phone", "list", "kind"]].values.tolist() == [
        ["Ayşe Nur", "Yılmaz", "+90 532 111 2233", "Champions", "segment"]]
    r = rows["segment_champions.generic.csv"]
    assert (r["published"], r["written"], r["no_consent"], r["erased"], r["duplicate_contact"]) == (4, 1, 1, 1, 1)
    loyal = _read(folder / "segment_loyal.generic.csv")
    assert loyal["email"].tolist() == ["ali@example.com"]  # M4 no e-mail, M6 no consent, M7 unknown, M9 unusable
    assert loyal[["first_name", "last_name", "phone"]].values.tolist() == [["Ali", "", ""]]
    r = rows["segment_loyal.generic.csv"]
    assert (r["published"], r["written"], r["no_email"], r["no_consent"], r["unknown_customer"]) == (5, 1, 2, 1, 1)
    for r in summary:
        if r["kind"] != "note":
            assert r["published"] == r["written"] + sum(r[k] for k in crm_export.REASONS)
    discount = _read(folder / "offer_discount.generic.csv")
    assert discount[["email", "offer", "discount", "channel"]].values.tolist() == [
        ["ayse.nur@example.com", "discount", "0.15", "email"], ["ali@example.com", "discount", "0.15", "email"]]
    product = _read(folder / "offer_product_email.generic.csv")
    assert product.empty and rows["offer_product_email.generic.csv"]["no_email"] == 1  # M4
    sms = _read(folder / "offer_sms_offer_sms.generic.csv")  # an SMS list needs a phone, not an e-mail
    assert sms[["phone", "channel"]].values.tolist() == [["+90 532 999 0011", "sms"]]
    assert _read(folder / "offer_birthday_month.generic.csv")[["email", "birth_day"]].values.tolist() == [
        ["ayse.nur@example.com", "3"]]
    winback = _read(folder / "offer_winback.generic.csv")
    assert winback["email"].tolist() == ["ali@example.com"] and "clv" not in winback
    assert not (folder / "segment_old_segment.generic.csv").exists()  # a stale published file is skipped
    assert any("old_segment.csv" in r["note"] for r in summary if r["kind"] == "note")


def test_import_lists_are_pseudonymous_and_rechecked(shop):
    lists = crm_export.import_lists("myshop")
    assert sorted(lists) == ["offer_birthday_month", "offer_discount", "offer_product_email", "offer_sms_offer_sms",
                             "offer_winback", "segment_champions", "segment_loyal"]
    for frame in lists.values():
        assert list(frame.columns) == crm_export.LIST_COLUMNS
        assert not frame.astype(str).apply(lambda s: s.str.contains("@")).any().any()
    assert lists["segment_champions"]["customer_id"].tolist() == ["M1", "M8"]
    assert lists["segment_champions"].attrs["left_out"] == {"erased": 1, "unknown_customer": 0, "no_consent": 1}
    assert lists["segment_loyal"]["customer_id"].tolist() == ["M4", "M5", "M9"]


@pytest.mark.parametrize("fmt", ["mailchimp", "hubspot", "generic"])
def test_column_names_per_format(shop, fmt):
    crm_export.write_contacts("myshop", fmt=fmt)
    folder = shop / "data" / "contacts" / "myshop"
    files = sorted(p.name for p in folder.iterdir())
    assert all(f.endswith(f".{fmt}.csv") for f in files)
    for f in files:
        assert list(_read(folder / f).columns) == crm_export.FORMATS[fmt]
    expected = {"mailchimp": ["Email Address", "First Name", "Last Name", "Phone Number", "Tags"],
                "hubspot": ["Email", "First Name", "Last Name", "Phone Number", "List"]}
    if fmt in expected:
        assert crm_export.FORMATS[fmt] == expected[fmt]
        assert f"offer_sms_offer_sms.{fmt}.csv" not in files  # e-mail tools get the e-mail lists
        seg = _read(folder / f"segment_champions.{fmt}.csv")
        assert seg.iloc[0].tolist() == ["ayse.nur@example.com", "Ayşe Nur", "Yılmaz", "+90 532 111 2233", "Champions"]
    else:
        wanted = {"email", "first_name", "last_name", "phone", "list", "offer", "discount"}
        assert wanted <= set(crm_export.FORMATS[fmt])
        assert "offer_sms_offer_sms.generic.csv" in files


def test_e_mails_belong_to_the_published_customer(shop):
    """Each e-mail written, hashed with the key, is the hash the clean table holds for a customer of its list."""
    crm_export.write_contacts("myshop", fmt="hubspot")
    clean = pd.read_parquet(paths.interim_dir("myshop") / "customers.parquet")
    by_hash = clean.dropna(subset=["email"]).groupby("email")["customer_id"].apply(set)
    lists = crm_export.import_lists("myshop")
    folder = shop / "data" / "contacts" / "myshop"
    checked = 0
    for name, frame in lists.items():
        path = folder / f"{name}.hubspot.csv"
        if not path.exists():
            continue
        emails = _read(path)["Email"]
        hashes = pseudonymise(emails, SECRET.encode())
        for h in hashes:
            assert by_hash[h] & set(frame["customer_id"]), name
            checked += 1
    assert checked >= 5


def test_cli_prints_counts_only_and_writes_private_files_outside_reports(shop, capsys):
    assert crm_export.main(["myshop", "--format", "mailchimp"]) == 0
    out, err = capsys.readouterr()
    folder = (shop / "data" / "contacts" / "myshop").resolve()
    assert str(folder) in out and "@" not in out + err
    for _, mail, phone, name, _ in CUSTOMERS:
        for value in (mail, phone, name, *name.split()):
            assert not value or value not in out + err
    assert "segment_champions.mailchimp.csv" in out and "1 no consent" in out and "1 erased" in out
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert paths.reports_dir("myshop").resolve() not in folder.parents
    published = list((paths.reports_dir("myshop")).rglob("*"))
    assert not any("@" in p.read_text(encoding="utf-8") for p in published if p.is_file() and p.suffix == ".csv")


def test_out_folder_must_stay_out_of_reports_processed_data_and_logs(shop, capsys, tmp_path):
    for bad in ("reports/myshop/contacts", "data/processed/myshop", "build/myshop", "notebooks"):
        assert crm_export.main(["myshop", "--out", str(shop / bad)]) == 2
        assert "personal data" in capsys.readouterr().err
    assert not (shop / "reports" / "myshop" / "contacts").exists()
    assert crm_export.main(["myshop", "--out", str(shop / "params" / ".." / "reports" / "x")]) == 2
    assert crm_export.main(["myshop", "--out", str(shop / "anywhere")]) == 2  # inside the project, not under data/
    outside = tmp_path / "crm_import"
    assert crm_export.main(["myshop", "--out", str(outside), "--format", "hubspot"]) == 0
    assert stat.S_IMODE(outside.stat().st_mode) == 0o700 and (outside / "segment_loyal.hubspot.csv").exists()


def test_a_rerun_removes_lists_no_longer_published_and_tightens_modes(shop):
    folder = shop / "data" / "contacts" / "myshop"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    (folder / "segment_gone.generic.csv").write_text("email\nx@example.com\n")
    (folder / "segment_loyal.generic.csv").write_text("old\n")
    (folder / "segment_loyal.generic.csv").chmod(0o644)
    (folder / "notes.txt").write_text("mine")
    summary = crm_export.write_contacts("myshop")
    assert not (folder / "segment_gone.generic.csv").exists() and (folder / "notes.txt").exists()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "segment_loyal.generic.csv").stat().st_mode) == 0o600
    assert any("removed 1 file" in r["note"] for r in summary)
    assert not list(folder.glob(".*.tmp"))


def test_a_missing_secret_is_one_clear_message_and_creates_no_key(shop, monkeypatch, capsys):
    monkeypatch.delenv("CRM_ANALYTICS_SECRET")
    assert crm_export.main(["myshop"]) == 2
    out, err = capsys.readouterr()
    assert "CRM_ANALYTICS_SECRET" in err and ".crm_secret" in err and "Traceback" not in err and out == ""
    assert not (shop / ".crm_secret").exists() and not (shop / "data" / "contacts").exists()
    with pytest.raises(crm_export.MissingSecret):
        crm_export.import_lists("myshop")


def test_a_missing_secret_from_the_command_line_exits_2_without_traceback(shop):
    env = {k: v for k, v in os.environ.items() if k != "CRM_ANALYTICS_SECRET"}
    env["CRM_ANALYTICS_ROOT"] = str(shop)
    run = subprocess.run([sys.executable, "-m", "crm_analytics.pipeline.crm_export", "myshop"], env=env, capture_output=True,
                         text=True, cwd=REPO, check=False)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.count("\n") == 1 and "CRM_ANALYTICS_SECRET" in run.stderr


def test_another_key_than_the_build_is_refused(shop, monkeypatch, capsys):
    monkeypatch.setenv("CRM_ANALYTICS_SECRET", "another-key")
    assert crm_export.main(["myshop"]) == 2
    assert "not the one" in capsys.readouterr().err


def test_a_missing_raw_customer_table_names_what_to_set(shop, capsys):
    (shop / "exports" / "musteriler.csv").unlink()
    assert crm_export.main(["myshop"]) == 2
    err = capsys.readouterr().err
    assert "musteriler.csv" in err and "Traceback" not in err
    params = shop / "params" / "myshop.yaml"
    text = params.read_text(encoding="utf-8")
    params.write_text(text[:text.index("    customers:")] + "notebooks: [01_data_cleaning]\n", encoding="utf-8")
    assert crm_export.main(["myshop"]) == 2
    err = capsys.readouterr().err
    assert "source.tables.customers" in err and "params/myshop.yaml" in err


def test_no_raw_data_no_customers_table_and_no_published_lists_say_what_to_do(project, capsys):
    assert crm_export.main(["ci"]) == 2
    assert "make data DATASET=ci" in capsys.readouterr().err
    assert crm_export.main(["cdnow"]) == 2  # a source without customers: nobody to contact
    assert "params/cdnow.yaml" in capsys.readouterr().err
    from crm_analytics.ingest.params import load_params
    from crm_analytics.ingest.sources import build_raw, validate_source

    build_raw("ci", validate_source("ci", load_params("ci")["shared"]["source"], "params/ci.yaml"))
    assert crm_export.main(["ci"]) == 2
    assert "make reports DATASET=ci" in capsys.readouterr().err
    assert crm_export.main(["nosuch"]) == 2
    assert "nosuch.yaml" in capsys.readouterr().err


def test_split_name():
    assert crm_export.split_name("Ayşe Nur Yılmaz") == ("Ayşe Nur", "Yılmaz")
    assert crm_export.split_name(" İbrahim  Halil   Çelik ") == ("İbrahim Halil", "Çelik")
    assert crm_export.split_name("Öztürk, Mehmet") == ("Mehmet", "Öztürk")
    assert crm_export.split_name("Cem") == ("Cem", "")
    assert crm_export.split_name(float("nan")) == ("", "")


@pytest.fixture
def ci_world(ci_root, tmp_path, monkeypatch):
    """The generated `ci` world, cleaned and written with SECRET, its segment lists published by notebook 02's
    writer (segments from a simple rule), then one consented customer of a list erased."""
    root = tmp_path / "ci"
    shutil.copytree(ci_root, root)
    monkeypatch.setenv("CRM_ANALYTICS_ROOT", str(root))
    monkeypatch.setenv("CRM_ANALYTICS_SECRET", SECRET)
    from crm_analytics.ingest.collect import collect

    clean = collect("ci").result.tables["customers"]
    seg = pd.DataFrame({"customer_id": clean["customer_id"],
                        "segment": pd.Categorical(["Even" if int(c[-1]) % 2 == 0 else "Odd"
                                                   for c in clean["customer_id"]])})
    segmentation.marketing_exports(seg, clean, paths.reports_dir("ci") / "exports")
    erased = pd.read_csv(paths.reports_dir("ci") / "exports" / "even.csv", dtype=str)["customer_id"].iloc[0]
    add_request("ci", erased)
    return root, clean, erased


def test_the_generated_world_end_to_end(ci_world, capsys):
    root, clean, erased = ci_world
    assert crm_export.main(["ci", "--format", "mailchimp"]) == 0
    out = capsys.readouterr().out
    assert "@" not in out and "1 erased" in out
    folder = root / "data" / "contacts" / "ci"
    raw = pd.read_parquet(root / "data" / "raw" / "ci" / "customers.parquet").drop_duplicates("customer_id")
    raw_by_email = raw.assign(email=raw["email"].str.lower()).set_index("email")
    consent = raw.set_index("customer_id")["consent_marketing"]
    for name in ("even", "odd"):
        published = set(pd.read_csv(paths.reports_dir("ci") / "exports" / f"{name}.csv", dtype=str)["customer_id"])
        written = _read(folder / f"segment_{name}.mailchimp.csv")
        assert len(written) > 100 and (written["Tags"] == name.title()).all()
        ids = raw_by_email.loc[written["Email Address"], "customer_id"]
        assert set(ids) <= published and erased not in set(ids) and consent.loc[ids].all()
        first_last = (written["First Name"] + " " + written["Last Name"]).tolist()
        assert first_last == raw_by_email.loc[written["Email Address"], "full_name"].tolist()
        hashes = pseudonymise(written["Email Address"], SECRET.encode())
        clean_ids = clean.set_index("email").loc[hashes, "customer_id"]
        assert list(clean_ids) == list(ids)

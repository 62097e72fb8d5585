"""Collection: the generic file adapter, identity stitching, the customer view and erasure."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from crm_analytics import paths
from crm_analytics.ingest.collect import collect
from crm_analytics.ingest.erasure import add_request, apply_erasure, load_requests
from crm_analytics.errors import ParamsError, SourceError
from crm_analytics.ingest.identity import customers_360, stitch_events
from crm_analytics.ingest.params import load_params
from crm_analytics.ingest.sources import validate_source

from conftest import shop_params

SHOP_PARAMS = shop_params("customer_id: Müşteri, email: E-posta, consent_marketing: İzin", "01_data_cleaning",
                          extra='date_format: ""\nstale_after_days: 30\n')


def _write_shop(root):
    ex = root / "exports"
    ex.mkdir()
    orders = ("Sipariş No;Müşteri;Tarih;Durum;Tutar\n"
              "1001;M1;03.01.2024 10:15;Ödendi;149,90\n"
              "1002;M2;04.01.2024 11:00;İade;89,50\n"
              "1002;M2;04.01.2024 11:00;İade;89,50\n"         # exact duplicate
              "1003;M1;15.02.2024 09:30;İptal;20,00\n"         # a day above 12: day first
              
              "1004;;06.02.2024 12:00;Ödendi;35,00\n"          # guest
              "TEST-1;M1;06.02.2024 12:00;Ödendi;1,00\n"       # test order
              "1005;M3;yarın;Ödendi;10,00\n")                 # unparseable date
    (ex / "siparisler.csv").write_bytes(orders.encode("cp1254"))
    customers = "Müşteri;E-posta;İzin\nM1;ayse@example.com;evet\nM2;mehmet@example.com;hayır\nM3;can@example.com;evet\n"
    (ex / "musteriler.csv").write_bytes(customers.encode("cp1254"))


def test_a_users_export_through_the_generic_adapter(project):
    (project / "params" / "myshop.yaml").write_text(SHOP_PARAMS, encoding="utf-8")
    _write_shop(project)
    from crm_analytics.ingest.sources import build_raw

    source = validate_source("myshop", load_params("myshop")["shared"]["source"], "params/myshop.yaml")
    build_raw("myshop", source)
    c = collect("myshop")
    o = c.result.counts["orders"]
    assert (o["rows_in"], o["rows_kept"], o["rows_duplicate"]) == (7, 4, 1)
    assert o["rejects_by_reason"] == {"test_order": 1, "unparseable_order_ts": 1}
    assert o["timestamp_formats"]["order_ts"] == "%d.%m.%Y %H:%M"
    assert "day first: 1 values have a day above 12" in o["timestamp_evidence"]["order_ts"]
    inputs = {i["file"]: i for i in c.result.notes["inputs"]}
    assert inputs["siparisler.csv"]["encoding"] == "cp1254" and inputs["siparisler.csv"]["delimiter"] == ";"
    assert inputs["siparisler.csv"]["decimal"] == "," and inputs["siparisler.csv"]["date_order"] == "day first"
    orders = c.result.tables["orders"].set_index("order_id")
    assert orders.loc["1001", "order_total"] == pytest.approx(149.90)
    assert orders.loc["1002", "status"] == "returned" and orders.loc["1003", "status"] == "cancelled"
    assert orders.loc["1001", "order_ts"] == pd.Timestamp("2024-01-03 10:15", tz="UTC")
    cust = c.result.tables["customers"].set_index("customer_id")
    assert cust.loc["M1", "consent_marketing"] and not cust.loc["M2", "consent_marketing"]
    assert not cust["email"].str.contains("@").any()  # pseudonymised
    view = pd.read_parquet(paths.interim_dir("myshop") / "customers_360.parquet").set_index("customer_id")
    assert view.loc["M1", "orders"] == 1 and view.loc["M2", "orders"] == 1


def test_a_wrong_column_mapping_names_file_column_and_fix(project):
    (project / "params" / "myshop.yaml").write_text(SHOP_PARAMS.replace("Tutar}", "Toplam}"), encoding="utf-8")
    _write_shop(project)
    from crm_analytics.ingest.sources import build_raw

    source = validate_source("myshop", load_params("myshop")["shared"]["source"], "params/myshop.yaml")
    build_raw("myshop", source)
    with pytest.raises(SourceError, match=r"siparisler\.csv: column 'Toplam' \(mapped to orders\.order_total\) is not "
                                          r"in the file.*fix source\.tables\.orders\.columns"):
        collect("myshop")


def test_unknown_table_or_column_in_the_mapping_is_a_params_error():
    with pytest.raises(ParamsError, match="unknown table"):
        validate_source("x", {"kind": "files", "tables": {"invoices": {"path": "a.csv"}}}, "params/x.yaml")
    with pytest.raises(ParamsError, match=r"\['total'\] are not columns of orders"):
        validate_source("x", {"kind": "files", "tables": {"orders": {"path": "a.csv", "columns": {"total": "T"}}}},
                        "params/x.yaml")


def test_stitching_follows_the_rule_and_leaves_shared_devices_alone():
    ev = pd.DataFrame({
        "event_id": list("abcdefg"),
        "anonymous_id": ["d1", "d1", "d1", "d2", "d2", "d2", None],
        "customer_id": [None, "c1", None, "c1", "c2", None, "c3"],
        "ts": pd.date_range("2024-01-01", periods=7, tz="UTC"),
    })
    out, stats = stitch_events(ev)
    assert list(out["customer_id"].fillna("-")) == ["c1", "c1", "c1", "c1", "c2", "-", "c3"]
    assert stats["events_stitched"] == 2 and stats["devices_ambiguous"] == 1 and stats["anonymous_events_before"] == 3
    assert stats["events_stitched_share"] == pytest.approx(2 / 3)


def test_customers_360_counts_each_source():
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    tables = {
        "customers": pd.DataFrame({"customer_id": ["a", "b"], "signup_ts": [ts, ts], "consent_marketing": [True, False]}),
        "orders": pd.DataFrame({"order_id": ["o1", "o2", "o3"], "customer_id": ["a", "a", "b"],
                                "order_ts": [ts + pd.Timedelta(days=d) for d in (1, 5, 2)], "channel": ["web", "app", "web"],
                                "status": ["completed", "returned", "cancelled"], "order_total": [10.0, 5.0, 7.0]}),
        "events": pd.DataFrame({"customer_id": ["a", None], "ts": [ts + pd.Timedelta(days=9), ts], "channel": ["app", "web"]}),
        "campaign_assignments": pd.DataFrame({"customer_id": ["a", "b"], "group": ["treatment", "control"]}),
        "tickets": pd.DataFrame({"customer_id": ["b"]}),
    }
    v = customers_360(tables).set_index("customer_id")
    assert v.loc["a", "orders"] == 2 and v.loc["a", "revenue"] == 15.0 and v.loc["b", "orders"] == 0
    assert v.loc["a", "last_seen"] == ts + pd.Timedelta(days=9)
    assert v.loc["a", "channels_used"] == "app, web"
    assert (v.loc["a", "campaigns_received"], v.loc["b", "campaigns_received"]) == (1, 0)
    assert v.loc["b", "tickets"] == 1 and not v.loc["b", "buyer"]
    assert "reviews" not in v  # a table the dataset lacks adds no column (no "0 reviews" claim)


def test_customers_360_of_a_dataset_without_orders_or_customers():
    empty = pd.DataFrame({"customer_id": pd.Series(dtype="string"),
                          "signup_ts": pd.Series(dtype="datetime64[us, UTC]")})
    v = customers_360({"customers": empty, "sessions": pd.DataFrame({"session_id": ["s1"]})})
    assert len(v) == 0 and "orders" not in v and "revenue" not in v


def test_erasure_removes_a_customer_from_every_clean_table(ci_root, monkeypatch, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(ci_root, root)
    monkeypatch.setenv("CRM_ANALYTICS_ROOT", str(root))
    monkeypatch.setenv("CRM_ANALYTICS_SECRET", "t")
    first = collect("ci")
    orders = first.result.tables["orders"]
    victim = orders["customer_id"].value_counts().index[0]
    n_orders = int((orders["customer_id"] == victim).sum())
    assert add_request("ci", victim) and not add_request("ci", victim)
    assert load_requests("ci") == {victim}
    second = collect("ci")
    erased = second.result.notes["erasure"]
    assert erased["customers_found"] == 1 and erased["rows_removed"]["orders"] == n_orders
    interim = paths.interim_dir("ci")
    for f in list(interim.glob("*.parquet")) + list((interim / "rejects").glob("*.parquet")):
        df = pd.read_parquet(f)
        if "customer_id" in df:
            assert not (df["customer_id"] == victim).any(), f.name
    c = second.result.counts["orders"]
    assert c["rows_in"] == c["rows_kept"] + c["rows_rejected"] + c["rows_duplicate"]
    assert c["rejects_by_reason"]["erasure_request"] == n_orders
    # the clean orders are written grouped by customer (ids ascending, orders without one last)
    written = pd.read_parquet(interim / "orders.parquet")
    known = written["customer_id"].dropna()
    assert written["customer_id"].isna().sum() == len(written) - len(known)
    assert known.index.equals(pd.RangeIndex(len(known))) and known.is_monotonic_increasing


def test_apply_erasure_without_requests_changes_nothing():
    class R:
        tables = {"orders": pd.DataFrame({"customer_id": ["a"]})}
        rejects: dict = {}
        counts = {"orders": {"rows_kept": 1, "rows_rejected": 0, "rejects_by_reason": {}}}

    assert apply_erasure(R, set())["requests"] == 0 and len(R.tables["orders"]) == 1

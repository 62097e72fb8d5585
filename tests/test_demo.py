"""The demo generator: deterministic, complete, its dirt as recorded, its purchasing BG/NBD."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crm_analytics.ingest.contracts import SUMMARY_TABLES, TABLES
from crm_analytics.ingest.demo import DIRT_RATES, TYPES, generate
from crm_analytics.errors import ParamsError


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    truth = generate(out, n_customers=4000, seed=11)
    return out, truth


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, n_customers=300, seed=3)
    generate(b, n_customers=300, seed=3)
    generate(c, n_customers=300, seed=4)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    assert {f"{t}.parquet" for t in TABLES if t not in SUMMARY_TABLES} <= set(files)
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "orders.parquet").read_bytes() != (c / "orders.parquet").read_bytes()


def test_every_table_follows_the_contract(world):
    out, _ = world
    for name, spec in TABLES.items():
        if name in SUMMARY_TABLES:  # the generated world gives events, not session summaries
            continue
        df = pd.read_parquet(out / f"{name}.parquet")
        assert list(df.columns) == spec.column_names, name
        assert len(df) > 0, name
    orders = pd.read_parquet(out / "orders.parquet")
    assert set(orders["status"]) == {"completed", "cancelled", "returned"}
    assert set(orders["channel"]) == {"web", "app", "marketplace"}
    events = pd.read_parquet(out / "events.parquet")
    assert set(TABLES["events"].column("event_type").allowed) >= set(events["event_type"])
    assert {"search", "add_to_cart", "remove_from_cart", "checkout_start", "purchase", "login", "email_open",
            "email_click"} <= set(events["event_type"])
    assert (events.loc[events["event_type"] == "search", "results_count"] == 0).mean() == pytest.approx(0.08, abs=0.02)


def test_dirt_counted_independently_matches_truth(world):
    out, truth = world
    dirt = truth["dirt"]
    raw = {t: pd.read_parquet(out / f"{t}.parquet") for t in ("orders", "order_lines", "customers", "events", "products")}
    assert int(raw["orders"].duplicated().sum()) == dirt["duplicate_orders"]["rows"]
    assert int(raw["order_lines"].duplicated().sum()) == dirt["duplicate_order_lines"]["rows"]
    assert int(raw["customers"].duplicated().sum()) == dirt["duplicate_customers"]["rows"]
    assert int(raw["events"].duplicated().sum()) == dirt["duplicate_events"]["rows"]
    orders = raw["orders"].drop_duplicates()
    parsed = pd.to_datetime(orders["order_ts"], format="%Y-%m-%dT%H:%M:%SZ", errors="coerce")
    assert int(parsed.isna().sum()) == dirt["unparseable_timestamps"]["rows"]
    ev = raw["events"].drop_duplicates()
    assert int(pd.to_datetime(ev["ts"], format="%Y-%m-%dT%H:%M:%SZ", errors="coerce").isna().sum()) == \
        dirt["unparseable_event_timestamps"]["rows"]
    assert int(orders["order_id"].str.startswith("TEST").sum()) == dirt["test_orders"]["rows"]
    assert int(orders["customer_id"].isna().sum()) == dirt["missing_customer_id"]["rows"]
    lines = raw["order_lines"].drop_duplicates()
    assert int((lines["quantity"] < 0).sum()) == dirt["negative_quantities"]["rows"]
    canonical = set(truth["categories"])
    assert int((~raw["products"]["category"].isin(canonical)).sum()) == dirt["category_variants"]["rows"]
    for kind, info in dirt.items():
        assert info["table"] == DIRT_RATES[kind][0]
        assert info["rate"] == pytest.approx(DIRT_RATES[kind][1], rel=0.35), kind


def test_purchasing_follows_bgnbd_given_true_rates(world):
    """Sum over customers of E[repeat purchases | lambda, p, T] = (1 - exp(-lambda p T)) / p (BG/NBD)."""
    out, truth = world
    tc = pd.read_parquet(out / "truth_customers.parquet")
    b = tc[tc["is_buyer"]]
    end = pd.Timestamp(truth["end_date"], tz="UTC") + pd.Timedelta(days=1)
    t_weeks = (end - pd.to_datetime(b["first_purchase_ts"], utc=True)).dt.total_seconds() / (7 * 86400)
    lam, p = b["lambda_per_week"].to_numpy(), b["dropout_p"].to_numpy()
    expected = ((1 - np.exp(-lam * p * t_weeks.to_numpy())) / p).sum()
    observed = (b["n_purchases_btyd"] - 1).sum()
    assert observed == pytest.approx(expected, rel=0.06)
    # the population draws match the parameters in truth.json
    bt = truth["btyd"]
    assert lam.mean() == pytest.approx(bt["r"] / bt["alpha"], rel=0.08)
    assert p.mean() == pytest.approx(bt["a"] / (bt["a"] + bt["b"]), rel=0.05)
    gg = truth["gamma_gamma"]
    assert b["mean_spend"].median() == pytest.approx(gg["p"] * gg["v"] / (gg["q"] - 1), rel=0.35)
    # alive at end agrees with the dropout times
    assert (b["alive_at_end"] == b["dropout_ts"].isna()).all()


def test_types_shares_and_behaviour_differ_by_type(world):
    out, truth = world
    assert set(truth["types"]) == set(TYPES)
    assert truth["types"]["bargain_hunter"] == pytest.approx(0.40, abs=0.01)
    tc = pd.read_parquet(out / "truth_customers.parquet")
    orders = pd.read_parquet(out / "orders.parquet").drop_duplicates()
    o = orders.merge(tc[["customer_id", "type"]], on="customer_id")
    app_share = o.assign(app=o["channel"] == "app").groupby("type")["app"].mean()
    assert app_share["app_frequent_buyer"] > 0.6 > app_share["bargain_hunter"]
    assert truth["stages"]["registered_never_bought"] > 0


def test_campaign_truth_and_control_groups(world):
    out, truth = world
    camps = pd.read_parquet(out / "campaigns.parquet")
    asg = pd.read_parquet(out / "campaign_assignments.parquet")
    eff = pd.read_parquet(out / "truth_campaign_effects.parquet")
    assert len(camps) == len(truth["campaigns"])
    no_control = [c for c, t in truth["campaigns"].items() if not t["has_control"]]
    assert len(no_control) == 1 and set(asg.loc[asg["campaign_id"] == no_control[0], "group"]) == {"treatment"}
    multi = [c for c, t in truth["campaigns"].items() if len(t["arms"]) > 1]
    assert multi and asg.loc[asg["campaign_id"] == multi[0], "variant"].nunique() == 3
    # the recorded ATE is the mean of the per-customer effects of the treated
    for cid, t in truth["campaigns"].items():
        treated = eff[(eff["campaign_id"] == cid) & (eff["variant"] != "control")]
        assert t["true_ate"] == pytest.approx(treated["true_effect"].mean(), rel=1e-9)
    # some customers are put off
    assert (eff["true_effect"] < 0).any() and (eff["true_effect"] > 0).any()
    # control customers get no message
    assert asg.loc[asg["group"] == "control", "sent_ts"].isna().all()


def test_personal_data_is_fake_and_reviews_have_truth(world):
    out, _ = world
    cust = pd.read_parquet(out / "customers.parquet")
    assert cust["email"].str.contains(r"@example\.(?:com|net|org|com\.tr)$").all()
    reviews = pd.read_parquet(out / "reviews.parquet")
    rt = pd.read_parquet(out / "truth_reviews.parquet")
    m = reviews.merge(rt, on="review_id")
    agree = m[~m["rating_text_mismatch"]]
    assert (agree.loc[agree["true_sentiment"] == "positive", "rating"] >= 4).all()
    assert m["rating_text_mismatch"].any()
    tickets = pd.read_parquet(out / "tickets.parquet")
    tc = pd.read_parquet(out / "truth_customers.parquet")
    comp = tc[tc["is_buyer"]].assign(complained=lambda d: d["customer_id"].isin(tickets["customer_id"]))
    churn = comp.groupby("complained")["alive_at_end"].mean()
    assert churn[True] < churn[False] - 0.2  # complainers drop out far more often


def test_truth_json_is_complete(world):
    out, truth = world
    on_disk = json.loads((out / "truth.json").read_text())
    assert on_disk["btyd"].keys() == {"r", "alpha", "a", "b"}
    assert on_disk["gamma_gamma"].keys() == {"p", "q", "v"}
    assert 0 < on_disk["funnel"]["cart_abandonment"] < 1
    assert 0.5 < on_disk["stitching"]["share_attributable"] < 1


@pytest.mark.parametrize("kwargs, match", [
    ({"n_customers": 10}, "at least 50"),
    ({"locale": "xx_XX"}, "locale"),
    ({"start_date": "2024-01-01", "end_date": "2024-01-10"}, "90 days"),
])
def test_bad_options_raise_params_error(tmp_path, kwargs, match):
    with pytest.raises(ParamsError, match=match):
        generate(tmp_path, **kwargs)


def test_english_locale(tmp_path):
    truth = generate(tmp_path, n_customers=200, seed=1, locale="en_GB", currency="GBP", with_events=False)
    assert not (tmp_path / "events.parquet").exists()
    cust = pd.read_parquet(tmp_path / "customers.parquet")
    assert cust["phone"].str.startswith("+44").all()
    assert truth["currency"] == "GBP"


def test_true_effects_after_the_end_cover_every_randomised_arm_and_only_living_buyers(world):
    out, truth = world
    now = pd.read_parquet(out / "truth_effects_at_end.parquet")
    tc = pd.read_parquet(out / "truth_customers.parquet").set_index("customer_id")
    arms = {(c, a) for c, t in truth["campaigns"].items() if t["has_control"] for a in t["arms"]}
    assert set(zip(now["campaign_id"], now["variant"])) == arms
    buyers = set(tc.index[tc["is_buyer"]])
    for _, g in now.groupby(["campaign_id", "variant"]):
        assert set(g["customer_id"]) == buyers
    dead = now["customer_id"].map(~tc["alive_at_end"])
    assert (now.loc[dead, "true_effect"] == 0).all() and (now.loc[dead, "base_conversion"] == 0).all()
    assert now["base_conversion"].between(0, 1).all()
    # the same customer type responds the same way now as at the campaign (sign of the mean effect per type)
    sms = now[now["variant"] == "sms"].assign(type=lambda d: d["customer_id"].map(tc["type"]))
    by_type = sms[~dead[sms.index]].groupby("type")["true_effect"].mean()
    assert by_type["loyal_high_spender"] < 0 < by_type["gift_buyer"]


def test_a_big_world_is_generated_block_by_block_deterministically(tmp_path):
    """Worlds above BLOCK_CUSTOMERS are generated in blocks (bounded memory): same seed and block size, same
    bytes; ids continue across blocks; the truth adds the blocks up; no events, reviews or tickets."""
    from crm_analytics.ingest.demo.blocks import BLOCK_CUSTOMERS, generate_blocks

    a, b = tmp_path / "a", tmp_path / "b"
    truth = generate_blocks(a, n_customers=1300, seed=8, block_customers=500)
    generate_blocks(b, n_customers=1300, seed=8, block_customers=500)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir()) and "_blocks" not in files
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert not {"events.parquet", "reviews.parquet", "tickets.parquet"} & set(files)
    assert truth["blocks"]["n_blocks"] == 3 and truth["n_customers"] == 1300
    customers = pd.read_parquet(a / "customers.parquet")
    assert customers["customer_id"].nunique() == 1300 and len(customers) == truth["tables"]["customers"]
    assert customers["customer_id"].drop_duplicates().tolist() == [f"C{i:07d}" for i in range(1, 1301)]
    orders = pd.read_parquet(a / "orders.parquet")
    real = orders.loc[orders["order_id"].str.startswith("SO"), "order_id"].drop_duplicates()
    o = truth["orders"]
    assert len(real) == o["purchases"] + o["cancelled"] + o["guest"]
    assert real.str[2:].astype(int).sort_values().tolist() == list(range(1, len(real) + 1))
    tests = orders.loc[orders["order_id"].str.startswith("TEST"), "order_id"]
    assert tests.nunique() == truth["dirt"]["test_orders"]["rows"]
    assert int(orders.duplicated().sum()) == truth["dirt"]["duplicate_orders"]["rows"]
    lines = pd.read_parquet(a / "order_lines.parquet")
    assert int(lines.duplicated().sum()) == truth["dirt"]["duplicate_order_lines"]["rows"]
    assert set(lines["order_id"]) <= set(orders["order_id"])
    assert len(pd.read_parquet(a / "products.parquet")) == truth["tables"]["products"]
    tc = pd.read_parquet(a / "truth_customers.parquet")
    assert len(tc) == 1300 and int(tc["is_buyer"].sum()) == truth["n_buyers"]
    assert sum(truth["stages"].values()) == 1300
    with pytest.raises(ParamsError, match="with_events"):
        generate_blocks(tmp_path / "c", n_customers=1300, seed=8, block_customers=500, with_events=True)
    assert BLOCK_CUSTOMERS == 1_000_000  # the 1,000,000-customer benchmark world is still generated whole

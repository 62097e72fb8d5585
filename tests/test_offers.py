"""Tests of crm_analytics.models.offers: hand-made events, orders and customers with answers worked out by hand,
and the ci world against an independent pandas count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import offers as of
from crm_analytics import paths
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import ParquetTable

AS_OF = "2025-02-01"  # window of 30 days: 2025-01-02 00:00 <= ts < 2025-02-01 00:00 (UTC)


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def _events(rows) -> pd.DataFrame:
    """Events from (ts, anonymous_id, customer_id, session_id, event_type, product_id) tuples."""
    df = pd.DataFrame(rows, columns=["ts", "anonymous_id", "customer_id", "session_id", "event_type", "product_id"])
    df.insert(0, "event_id", [f"E{i:03d}" for i in range(len(df))])
    df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601").dt.as_unit("us")
    for c in ("anonymous_id", "customer_id", "session_id", "event_type", "product_id"):
        df[c] = df[c].astype("string")
    return df


def _orders(rows) -> tuple[pd.DataFrame, pd.DataFrame]:
    """orders and order_lines from (order_id, customer_id, order_ts, status, [(product_id, quantity), …])."""
    orders = pd.DataFrame([r[:4] for r in rows], columns=["order_id", "customer_id", "order_ts", "status"])
    orders["order_ts"] = pd.to_datetime(orders["order_ts"], utc=True, format="ISO8601")
    lines = pd.DataFrame([(r[0], i + 1, p, q) for r in rows for i, (p, q) in enumerate(r[4])],
                         columns=["order_id", "line_no", "product_id", "quantity"])
    return orders, lines


PRODUCTS = pd.DataFrame({"product_id": [f"P{i}" for i in range(1, 10)], "name": [f"name {i}" for i in range(1, 10)],
                         "category": ["books", "toys", "games", "books", "toys", "games", "books", "toys", "games"],
                         "price": [10.0, 20.0, 30.0, 40.0, 7.5, 60.0, 70.0, 80.0, 90.0]})


# --------------------------------------------------------------------------------------------
# remember: viewed, not bought
# --------------------------------------------------------------------------------------------
@pytest.fixture
def views():
    ev = _events([
        ("2025-01-10 10:00", "d1", "C1", "S1", "product_view", "P1"),
        ("2025-01-20 10:00", "d1", "C1", "S2", "product_view", "P1"),   # P1: 2 views, last 01-20
        ("2025-01-15 10:00", "d1", "C1", "S3", "product_view", "P2"),   # bought on 01-16: out
        ("2024-12-20 10:00", "d1", "C1", "S4", "product_view", "P3"),   # before the window: out
        ("2025-01-25 10:00", "d1", "C1", "S5", "product_view", "P4"),   # its order was cancelled: in
        ("2025-01-12 10:00", "d1", "C1", "S6", "product_view", "P5"),   # bought before the view only: in
        ("2025-02-01 00:00", "d1", "C1", "S7", "product_view", "P8"),   # at as_of (excluded end): out
        ("2025-01-02 00:00", "d1", "C1", "S8", "product_view", "P9"),   # at the window start: in
        ("2025-01-03 10:00", "d1", "C1", "S8", "add_to_cart", "P6"),    # not a view
        ("2025-01-05 10:00", "d2", "C2", "S9", "product_view", "P1"),   # returned order on 01-06: out
        ("2025-01-30 10:00", "d2", "C2", "S10", "product_view", "P6"),  # bought after as_of: in
        ("2025-01-20 10:00", "d9", None, "S11", "product_view", "P1"),  # anonymous, never logged in: out
        ("2025-01-19 09:00", "d3", "C3", "S12", "login", None),
        ("2025-01-20 10:00", "d3", None, "S13", "product_view", "P7"),  # d3 is C3's device: in, for C3
    ])
    orders, lines = _orders([
        ("O1", "C1", "2025-01-16", "completed", [("P2", 1)]),
        ("O2", "C1", "2025-01-26", "cancelled", [("P4", 1)]),
        ("O3", "C1", "2024-12-01", "completed", [("P5", 1)]),
        ("O4", "C2", "2025-01-06", "returned", [("P1", 1)]),
        ("O5", "C2", "2025-02-05", "completed", [("P6", 1)]),
    ])
    return ev, orders, lines


def test_viewed_not_bought_keeps_views_in_the_window_without_a_later_purchase(views):
    ev, orders, lines = views
    got = of.viewed_not_bought(ev, orders, lines, as_of=AS_OF, days=30)
    assert list(got.columns) == ["customer_id", "product_id", "views", "last_viewed_ts"]
    assert got[["customer_id", "product_id", "views"]].values.tolist() == [
        ["C1", "P4", 1], ["C1", "P1", 2], ["C1", "P5", 1], ["C1", "P9", 1], ["C2", "P6", 1], ["C3", "P7", 1]]
    assert got["last_viewed_ts"].tolist()[:2] == [_ts("2025-01-25 10:00"), _ts("2025-01-20 10:00")]
    assert str(got["last_viewed_ts"].dt.tz) == "UTC"


def test_viewed_not_bought_window_length_and_product_details(views):
    ev, orders, lines = views
    got = of.viewed_not_bought(ev, orders, lines, as_of=AS_OF, days=10, products=PRODUCTS)
    # window 2025-01-22 .. 2025-02-01: only P4 (01-25) and P6 (01-30)
    assert got[["customer_id", "product_id", "name", "category"]].values.tolist() == [
        ["C1", "P4", "name 4", "books"], ["C2", "P6", "name 6", "games"]]


def test_viewed_not_bought_reads_a_parquet_table_as_a_frame(views, tmp_path):
    ev, orders, lines = views
    ev.to_parquet(tmp_path / "events.parquet", index=False)
    want = of.viewed_not_bought(ev, orders, lines, as_of=AS_OF)
    pd.testing.assert_frame_equal(of.viewed_not_bought(ParquetTable(tmp_path / "events.parquet"), orders, lines,
                                                       as_of=AS_OF), want, check_dtype=False)


# --------------------------------------------------------------------------------------------
# remember: abandoned carts
# --------------------------------------------------------------------------------------------
@pytest.fixture
def carts():
    ev = _events([
        ("2025-01-10 10:00", "d1", "C1", "S1", "add_to_cart", "P1"),
        ("2025-01-10 10:01", "d1", "C1", "S1", "add_to_cart", "P1"),
        ("2025-01-10 10:02", "d1", "C1", "S1", "add_to_cart", "P2"),
        ("2025-01-10 10:03", "d1", "C1", "S1", "remove_from_cart", "P2"),  # P2 taken out again: nothing left
        ("2025-01-12 10:00", "d1", "C1", "S2", "add_to_cart", "P3"),       # bought on 01-14: not abandoned
        ("2025-01-15 10:00", "d1", "C1", "S3", "add_to_cart", "P4"),
        ("2025-01-15 10:05", "d1", "C1", "S3", "purchase", None),          # bought in the session
        ("2024-12-01 10:00", "d2", "C2", "S4", "add_to_cart", "P1"),       # before the window
        ("2025-01-20 10:00", "d2", "C2", "S5", "add_to_cart", "P5"),       # bought after as_of: abandoned
        ("2025-01-25 10:00", "d1", "C1", "S6", "add_to_cart", "P1"),       # P1 again: 2 + 1 items
        ("2025-01-26 10:00", "d9", None, "S7", "add_to_cart", "P1"),       # anonymous cart
    ])
    orders, lines = _orders([
        ("O1", "C1", "2025-01-14", "completed", [("P3", 1)]),
        ("O2", "C1", "2025-01-15 10:05", "completed", [("P4", 1)]),
        ("O3", "C2", "2025-02-03", "completed", [("P5", 1)]),
    ])
    return ev, orders, lines


def test_abandoned_carts_sums_items_and_value_and_drops_carts_bought_later(carts):
    ev, orders, lines = carts
    got = of.abandoned_carts(ev, orders, lines, as_of=AS_OF, products=PRODUCTS)
    assert list(got.columns)[:5] == ["customer_id", "product_id", "items", "value", "abandoned_ts"]
    assert got[["customer_id", "product_id", "items", "value", "category"]].values.tolist() == [
        ["C1", "P1", 3, 30.0, "books"], ["C2", "P5", 1, 7.5, "toys"]]
    assert got["abandoned_ts"].tolist() == [_ts("2025-01-25 10:00"), _ts("2025-01-20 10:00")]
    unpriced = of.abandoned_carts(ev, orders, lines, as_of=AS_OF)
    assert unpriced["items"].tolist() == [3, 1] and unpriced["value"].isna().all()


def test_remember_one_row_per_customer():
    viewed = pd.DataFrame({"customer_id": ["C1", "C1", "C2", "C9"], "product_id": ["P1", "P2", "P3", "P4"],
                           "views": [1, 4, 1, 1], "last_viewed_ts": [_ts("2025-01-10"), _ts("2025-01-20"),
                                                                     _ts("2025-01-05"), _ts("2025-01-05")]})
    carts = pd.DataFrame({"customer_id": ["C1", "C3", "C3"], "product_id": ["P5", "P6", "P7"], "items": [2, 1, 3],
                          "value": [20.0, 5.0, 6.0], "abandoned_ts": [_ts("2025-01-11"), _ts("2025-01-30"),
                                                                      _ts("2025-01-12")]})
    r = of.remember(pd.Index(["C1", "C2", "C3", "C4"]), viewed, carts)
    assert r.index.name == "customer_id" and r.index.tolist() == ["C1", "C2", "C3", "C4"]  # C9 not asked for
    assert r["viewed_not_bought"].tolist() == [2, 1, 0, 0]
    assert r["last_viewed_product"].tolist()[:2] == ["P2", "P3"] and r["last_viewed_product"][2:].isna().all()
    assert r["abandoned_cart_items"].tolist() == [2, 0, 4, 0]
    assert r["abandoned_cart_value"].tolist() == [20.0, 0.0, 11.0, 0.0]
    assert r.loc["C3", "last_cart_product"] == "P6" and pd.isna(r.loc["C2", "last_cart_product"])
    unpriced = of.remember(pd.DataFrame({"customer_id": ["C3", "C4"]}), viewed, carts.assign(value=np.nan))
    assert pd.isna(unpriced.loc["C3", "abandoned_cart_value"]) and unpriced.loc["C4", "abandoned_cart_value"] == 0


# --------------------------------------------------------------------------------------------
# offers: category affinity
# --------------------------------------------------------------------------------------------
@pytest.fixture
def purchases():
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3", "P4"], "category": ["books", "toys", "games", None]})
    orders, lines = _orders([
        ("O1", "A", "2025-01-01", "completed", [("P1", 2.0), ("P2", 1.0)]),
        ("O2", "A", "2025-01-02", "cancelled", [("P3", 5.0)]),   # cancelled: not bought
        ("O3", "B", "2025-01-03", "returned", [("P2", 3.0), ("P3", 1.0)]),
        ("O4", "C", "2025-01-04", "completed", [("P3", 1.0), ("P4", 10.0)]),  # P4 has no category
        ("O5", None, "2025-01-05", "completed", [("P1", 100.0)]),  # guest order
    ])
    segments = pd.DataFrame({"customer_id": ["A", "B"], "segment": pd.Categorical(["S", "S"])})
    return orders, lines, products, segments


def _shares(aff: pd.DataFrame) -> dict[tuple[str, str], float]:
    return {(c, k): s for c, k, s in aff[["customer_id", "category", "share"]].itertuples(index=False)}


def test_category_affinity_shrinks_towards_the_segment_or_the_shop(purchases):
    orders, lines, products, segments = purchases
    aff = of.category_affinity(orders, lines, products, segments=segments, prior_strength=2.0)
    assert list(aff.columns) == ["customer_id", "category", "share"]
    # own items: A books 2, toys 1; B toys 3, games 1; C games 1
    # segment S (A, B): books 2/7, toys 4/7, games 1/7; shop: books 2/8, toys 4/8, games 2/8
    want = {("A", "books"): (2 + 2 * 2 / 7) / 5, ("A", "toys"): (1 + 2 * 4 / 7) / 5, ("A", "games"): (2 * 1 / 7) / 5,
            ("B", "books"): (2 * 2 / 7) / 6, ("B", "toys"): (3 + 2 * 4 / 7) / 6, ("B", "games"): (1 + 2 * 1 / 7) / 6,
            ("C", "books"): (2 * 0.25) / 3, ("C", "toys"): (2 * 0.5) / 3, ("C", "games"): (1 + 2 * 0.25) / 3}
    got = _shares(aff)
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k] == pytest.approx(v)
    assert got[("A", "books")] == pytest.approx(18 / 35) and got[("B", "toys")] == pytest.approx(29 / 42)
    assert aff.groupby("customer_id")["share"].sum().tolist() == pytest.approx([1.0, 1.0, 1.0])
    # without segments everyone is shrunk towards the shop; without a prior only own purchases count
    assert _shares(of.category_affinity(orders, lines, products))[("A", "books")] == pytest.approx((2 + 5 * .25) / 8)
    raw = _shares(of.category_affinity(orders, lines, products, prior_strength=0))
    assert raw == pytest.approx({("A", "books"): 2 / 3, ("A", "toys"): 1 / 3, ("B", "toys"): 3 / 4,
                                 ("B", "games"): 1 / 4, ("C", "games"): 1.0})


def test_top_category(purchases):
    orders, lines, products, segments = purchases
    top = of.top_category(of.category_affinity(orders, lines, products, segments=segments, prior_strength=2.0))
    assert top.index.name == "customer_id" and list(top.columns) == ["offer_category", "affinity"]
    assert top["offer_category"].to_dict() == {"A": "books", "B": "toys", "C": "games"}
    assert top["affinity"].tolist() == pytest.approx([18 / 35, 29 / 42, 1 / 2])


def test_segment_offers_lift_and_pooling_of_small_segments():
    rows = [("x1", "a", .8), ("x1", "b", .2), ("x2", "a", .6), ("x2", "b", .4), ("y1", "a", .6), ("y1", "b", .4),
            ("y2", "a", .6), ("y2", "b", .4), ("z1", "a", .5), ("z1", "b", .5), ("w1", "a", 1.0)]  # w1: no b row
    aff = pd.DataFrame(rows, columns=["customer_id", "category", "share"])
    seg = pd.DataFrame({"customer_id": ["x1", "x2", "y1", "y2", "z1", "w1"], "segment": list("XXYYZW")})
    out = of.segment_offers(aff, seg, min_customers=2)
    assert list(out.columns) == ["segment", "category", "customers", "mean_share", "shop_mean_share", "lift",
                                 "promote"]
    t = out.set_index(["segment", "category"])
    assert out["segment"].unique().tolist() == ["X", "Y", of.POOLED]  # Z and W have one customer each
    assert out.attrs["pooled_segments"] == ["W", "Z"]
    assert t["customers"].groupby(level=0).first().to_dict() == {"X": 2, "Y": 2, of.POOLED: 2}
    shop_a, shop_b = 4.1 / 6, 1.9 / 6
    assert t.loc[(of.POOLED, "b"), "mean_share"] == pytest.approx(0.25)  # (0.5 + 0) / 2
    assert t["shop_mean_share"].xs("a", level=1).tolist() == pytest.approx([shop_a] * 3)
    assert t.loc[("X", "a"), "lift"] == pytest.approx(0.7 / shop_a)
    assert t.loc[("Y", "a"), "lift"] == pytest.approx(0.6 / shop_a)
    assert t.loc[("Y", "b"), "lift"] == pytest.approx(0.4 / shop_b)
    assert t.loc[(of.POOLED, "a"), "lift"] == pytest.approx(0.75 / shop_a)
    # Y buys more "a" than "b", but "b" is what it likes more than the shop does
    assert out.loc[out["promote"], ["segment", "category"]].values.tolist() == [["X", "a"], ["Y", "b"],
                                                                               [of.POOLED, "a"]]
    alone = of.segment_offers(aff, seg[seg["customer_id"] != "w1"], min_customers=1)
    assert of.NO_SEGMENT in set(alone["segment"]) and not alone.attrs["pooled_segments"]


# --------------------------------------------------------------------------------------------
# contact lists
# --------------------------------------------------------------------------------------------
@pytest.fixture
def people():
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "birth_date": pd.to_datetime(["1992-02-29", "1985-02-03", "1990-02-10", "1991-02-14", "1980-03-01", None]),
        "consent_marketing": pd.array([True, True, False, None, True, True], dtype="boolean")})


def test_birthday_list_consented_day_only_and_feb_29(people):
    feb = of.birthday_list(people, month=2)
    assert list(feb.columns) == ["customer_id", "birth_day"]  # no year, no date
    assert feb.values.tolist() == [["b", 3], ["a", 29]]  # c refused, d never answered
    assert of.birthday_list(people, month="2027-02").values.tolist() == [["b", 3], ["a", 28]]  # 2027 has no Feb 29
    assert of.birthday_list(people, month="2028-02").values.tolist() == [["b", 3], ["a", 29]]
    assert of.birthday_list(people, month="2026-03").values.tolist() == [["e", 1]]
    assert of.birthday_list(people.drop(columns="consent_marketing"), month=2).empty
    as_text = people.assign(birth_date=people["birth_date"].dt.strftime("%Y-%m-%d"))
    assert of.birthday_list(as_text, month=2).values.tolist() == [["b", 3], ["a", 29]]


@pytest.mark.parametrize("month", [0, 13, True, 2.0, "2026-2", "February", "2026-13"])
def test_birthday_list_rejects_a_bad_month(people, month):
    with pytest.raises(ParamsError, match=r"month must be an int 1–12 or a 'YYYY-MM' string"):
        of.birthday_list(people, month=month)


def test_birthday_list_rejects_birth_dates_that_are_not_dates(people):
    bad = people.assign(birth_date=["1992-02-29", "31/02/1990", None, None, None, None])
    with pytest.raises(DataContractError, match=r"customers.birth_date: 1 value\(s\) are not dates \(e.g. '31/02"):
        of.birthday_list(bad, month=2)
    with pytest.raises(DataContractError, match=r"customers: column\(s\) \['birth_date'\] not found"):
        of.birthday_list(people.drop(columns="birth_date"), month=2)


def test_winback_list_filters_risk_and_sorts_by_clv():
    clv = pd.DataFrame({"churn_risk": pd.Categorical(["high", "medium", "high", "low", "high", "high"],
                                                     categories=["high", "medium", "low"], ordered=True),
                        "p_alive": [.1, .5, .2, .9, .05, .3], "clv": [100.0, 500.0, 300.0, 50.0, np.nan, 300.0],
                        "frequency": [1, 2, 3, 4, 5, 6]},
                       index=pd.Index(["c1", "c2", "c3", "c4", "c5", "c6"], name="customer_id"))
    high = of.winback_list(clv)
    assert list(high.columns) == ["customer_id", "churn_risk", "p_alive", "clv"]
    assert high["customer_id"].tolist() == ["c3", "c6", "c1", "c5"]  # tie on clv by id, missing clv last
    assert set(high["churn_risk"]) == {"high"}
    assert of.winback_list(clv, risk_levels=("high", "medium"))["customer_id"].tolist() == ["c2", "c3", "c6", "c1",
                                                                                            "c5"]
    assert of.winback_list(clv.reset_index(), risk_levels="low")["customer_id"].tolist() == ["c4"]
    with pytest.raises(ParamsError, match=r"risk_levels must be a non-empty subset of \['low', 'medium', 'high'\]"):
        of.winback_list(clv, risk_levels=("critical",))
    with pytest.raises(DataContractError, match=r"clv: column\(s\) \['p_alive'\] not found"):
        of.winback_list(clv.drop(columns="p_alive"))
    with pytest.raises(DataContractError, match="indexed by customer_id"):
        of.winback_list(clv.reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------
def test_bad_inputs_raise_named_errors(views, purchases):
    ev, orders, lines = views
    with pytest.raises(ParamsError, match=r"as_of='soon' is not a date"):
        of.viewed_not_bought(ev, orders, lines, as_of="soon")
    with pytest.raises(ParamsError, match=r"days=0 must be a positive number of days"):
        of.abandoned_carts(ev, orders, lines, as_of=AS_OF, days=0)
    with pytest.raises(DataContractError, match=r"events: column\(s\) \['product_id'\] not found"):
        of.viewed_not_bought(ev.drop(columns="product_id"), orders, lines, as_of=AS_OF)
    with pytest.raises(DataContractError, match=r"orders: column\(s\) \['status'\] not found"):
        of.viewed_not_bought(ev, orders.drop(columns="status"), lines, as_of=AS_OF)
    orders, lines, products, segments = purchases
    with pytest.raises(DataContractError, match=r"products: column\(s\) \['category'\] not found"):
        of.category_affinity(orders, lines, products.drop(columns="category"))
    with pytest.raises(DataContractError, match=r"segments: column\(s\) \['segment'\] not found"):
        of.category_affinity(orders, lines, products, segments=segments.drop(columns="segment"))
    with pytest.raises(ParamsError, match=r"prior_strength=-1 must be a number of items >= 0"):
        of.category_affinity(orders, lines, products, prior_strength=-1)
    aff = of.category_affinity(orders, lines, products)
    with pytest.raises(ParamsError, match=r"min_customers=0 must be a whole number"):
        of.segment_offers(aff, segments, min_customers=0)
    with pytest.raises(DataContractError, match=r"affinity: column\(s\) \['share'\] not found"):
        of.top_category(aff.drop(columns="share"))


# --------------------------------------------------------------------------------------------
# the ci world
# --------------------------------------------------------------------------------------------
def _stitched_views(ev: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Product views of known or stitched customers in [start, end), in plain pandas."""
    site = ev[~ev["event_type"].isin(["email_open", "email_click", "push_open"])]
    known = site.dropna(subset=["customer_id", "anonymous_id"])
    owners = known.groupby("anonymous_id")["customer_id"].agg(["nunique", "first"])
    owner = owners.loc[owners["nunique"] == 1, "first"]
    person = site["customer_id"].fillna(site["anonymous_id"].map(owner))
    v = site.assign(person=person)
    return v[(v["event_type"] == "product_view") & v["person"].notna() & v["product_id"].notna()
             & (v["ts"] >= start) & (v["ts"] < end)]


def test_ci_world_against_an_independent_pandas_count(tmp_path, ci_clean):
    processed = paths.processed_dir("ci")  # segments and clv when the ci reports were built here
    ev, orders, lines, products, customers = (ci_clean[t] for t in ("events", "orders", "order_lines", "products",
                                                                    "customers"))
    as_of = ev["ts"].max().normalize() + pd.Timedelta(days=1)
    start = as_of - pd.Timedelta(days=30)

    viewed = of.viewed_not_bought(ev, orders, lines, as_of=as_of, products=products)
    v = _stitched_views(ev, start, as_of).drop(columns="customer_id").rename(columns={"person": "customer_id"})
    v = v.groupby(["customer_id", "product_id"])["ts"].agg(["size", "min", "max"]).reset_index()
    bought = lines.merge(orders[orders["status"].isin(["completed", "returned"])], on="order_id")
    hit = v.merge(bought[["customer_id", "product_id", "order_ts"]], on=["customer_id", "product_id"])
    hit = hit.loc[(hit["order_ts"] >= hit["min"]) & (hit["order_ts"] < as_of), ["customer_id", "product_id"]]
    want = v.set_index(["customer_id", "product_id"])
    want = want.drop(index=pd.MultiIndex.from_frame(hit.drop_duplicates())).sort_index()
    assert len(viewed) == len(want) > 0
    got = viewed.set_index(["customer_id", "product_id"]).sort_index()
    assert got["views"].tolist() == want["size"].tolist()
    assert got["last_viewed_ts"].tolist() == want["max"].tolist()
    assert viewed["category"].notna().all()
    ev.to_parquet(tmp_path / "events.parquet", index=False)
    from_file = of.viewed_not_bought(ParquetTable(tmp_path / "events.parquet"), orders, lines, as_of=as_of)
    assert from_file[["customer_id", "product_id", "views"]].values.tolist() == \
        viewed[["customer_id", "product_id", "views"]].values.tolist()

    carts = of.abandoned_carts(ev, orders, lines, as_of=as_of, products=products)
    assert carts["abandoned_ts"].between(start, as_of, inclusive="left").all() and (carts["items"] > 0).all()
    pairs = carts.merge(bought, on=["customer_id", "product_id"])
    assert not (pairs["order_ts"] >= pairs["abandoned_ts"]).any()  # nothing bought after the last abandonment
    r = of.remember(customers["customer_id"], viewed, carts)
    assert len(r) == len(customers) and r["viewed_not_bought"].sum() == len(viewed)
    assert r["abandoned_cart_value"].sum() == pytest.approx(carts["value"].sum())

    segments = pd.read_parquet(processed / "segments.parquet") if (processed / "segments.parquet").exists() else None
    aff = of.category_affinity(orders, lines, products, segments=segments)
    assert aff.groupby("customer_id")["share"].sum().to_numpy() == pytest.approx(1.0)
    top = of.top_category(aff)
    assert top.index.is_unique and set(top["offer_category"]) <= set(products["category"])
    if segments is not None:
        table = of.segment_offers(aff, segments)
        assert table.groupby("segment")["promote"].sum().eq(1).all()
        assert table.drop_duplicates("segment")["customers"].sum() == aff["customer_id"].nunique()
        assert (table["customers"] >= 20).all() or of.POOLED in set(table["segment"])

    consent = customers.set_index("customer_id")["consent_marketing"].fillna(False)
    for month in range(1, 13):
        bl = of.birthday_list(customers, month=month)
        assert list(bl.columns) == ["customer_id", "birth_day"] and consent.reindex(bl["customer_id"]).all()
        assert bl["birth_day"].between(1, 31).all()
    if (processed / "clv.parquet").exists():
        clv = pd.read_parquet(processed / "clv.parquet")
        wb = of.winback_list(clv)
        assert len(wb) == int((clv["churn_risk"] == "high").sum())
        assert wb["clv"].is_monotonic_decreasing

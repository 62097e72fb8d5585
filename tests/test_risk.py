"""Return and cancellation risk: rates and flags worked out by hand, planted abusers found for the right reason."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_analytics.models.campaigns import wilson_interval
from crm_analytics.errors import CrmAnalyticsError, DataContractError
from crm_analytics.models.risk import flag_anomalies, return_cancel_rates, robust_z

T0 = pd.Timestamp("2024-01-01", tz="UTC")
D = pd.Timedelta(days=1)


def orders(rows: list[tuple]) -> pd.DataFrame:
    """Canonical orders from ``(customer_id, day, status, order_total)`` tuples (day = days after T0)."""
    df = pd.DataFrame(rows, columns=["customer_id", "day", "status", "order_total"])
    df.insert(0, "order_id", [f"O{i:05d}" for i in range(len(df))])
    df["order_ts"] = T0 + df.pop("day") * D
    df["channel"] = "web"
    return df


def test_rates_by_customer_by_hand():
    rows = [("A", d, "returned" if d < 15 else "completed", 100.0) for d in range(20)]
    rows += [("B", d, "returned" if d == 0 else "cancelled" if d == 1 else "completed", 100.0) for d in range(20)]
    rows += [("C", d, "cancelled" if d < 10 else "completed", 100.0) for d in range(20)]
    rows += [("D", d, "completed", 100.0) for d in range(5)]
    r = return_cancel_rates(orders(rows), by="customer_id", min_orders=20).set_index("customer_id")
    assert list(r.index) == ["A", "C", "B"]  # flagged first; D has too few orders
    # shop: 65 orders, 11 cancelled; 54 kept, 16 returned
    assert r["shop_cancel_rate"].iloc[0] == pytest.approx(11 / 65)
    assert r["shop_return_rate"].iloc[0] == pytest.approx(16 / 54)
    assert (r.loc["A", "returned"], r.loc["A", "kept"], r.loc["A", "return_rate"]) == (15, 20, 0.75)
    lo, hi = wilson_interval(15, 20)
    assert (r.loc["A", "return_low"], r.loc["A", "return_high"]) == pytest.approx((float(lo), float(hi)))
    assert r.loc["A", "return_flag"] and not r.loc["A", "cancel_flag"]
    assert r.loc["C", "cancel_rate"] == 0.5 and r.loc["C", "cancel_flag"] and not r.loc["C", "return_flag"]
    assert r.loc["C", "return_rate"] == 0.0 and r.loc["C", "kept"] == 10
    assert not r.loc["B", "flagged"]


def test_rates_by_product_and_category_count_each_order_once():
    o = orders([("A", 0, "completed", 10.0), ("A", 1, "returned", 10.0), ("B", 2, "cancelled", 10.0),
                ("B", 3, "completed", 10.0)])
    lines = pd.DataFrame({"order_id": ["O00000", "O00000", "O00001", "O00002", "O00002", "O00003"],
                          "line_no": [1, 2, 1, 1, 2, 1], "product_id": ["P1", "P2", "P1", "P2", "P2", "P3"]})
    products = pd.DataFrame({"product_id": ["P1", "P2", "P3"], "name": ["Mug", "Lamp", "Rug"],
                             "category": ["X", "X", "Y"], "brand": "b", "price": 10.0})
    p = return_cancel_rates(o, lines, products, by="product_id", min_orders=1).set_index("product_id")
    assert p.loc["P1", ["orders", "cancelled", "kept", "returned"]].tolist() == [2, 0, 2, 1]
    assert p.loc["P2", ["orders", "cancelled", "kept", "returned"]].tolist() == [2, 1, 1, 0]  # O00002 once
    assert p.loc["P1", "name"] == "Mug" and p.loc["P1", "return_rate"] == 0.5
    c = return_cancel_rates(o, lines, products, by="category", min_orders=1).set_index("category")
    assert c.loc["X", ["orders", "cancelled", "kept", "returned"]].tolist() == [3, 1, 2, 1]
    assert c.loc["Y", "orders"] == 1
    with pytest.raises(CrmAnalyticsError, match=r"by must be one of \['product_id', 'category', 'customer_id'\]"):
        return_cancel_rates(o, lines, products, by="brand")
    with pytest.raises(CrmAnalyticsError, match="by='category' needs products"):
        return_cancel_rates(o, lines, by="category")
    with pytest.raises(DataContractError, match=r"orders: column\(s\) \['status'\] not found"):
        return_cancel_rates(o.drop(columns="status"), by="customer_id")


def test_robust_z_falls_back_to_the_mean_absolute_deviation():
    z = robust_z(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0], "b": [0.0, 0.0, 0.0, 0.0, 1.0],
                               "c": [5.0] * 5}))
    assert z["a"].iloc[-1] == pytest.approx((100 - 3) / (1.4826 * 1.0))
    assert z["b"].iloc[-1] == pytest.approx(1 / (1.253314 * 0.2))  # MAD 0: mean |x - median| = 0.2
    assert (z["c"] == 0).all()


def shop() -> pd.DataFrame:
    """60 ordinary customers (six orders a month apart; every 10th returns one, every 15th cancels one),
    X returns 9 of 10 orders, Y cancels 5 orders in 5 days, W orders 12x his usual once."""
    rows = []
    for i in range(60):
        for k in range(6):
            returned, cancelled = i % 10 == 0 and k == 2, i % 15 == 0 and k == 4
            status = "returned" if returned else "cancelled" if cancelled else "completed"
            rows.append((f"N{i:02d}", 30 * k + i % 7, status, 80.0 + (i * 7 + k * 13) % 40))
    rows += [("X", 20 * k, "returned" if k else "completed", 100.0) for k in range(10)]
    rows += [("Y", d, "cancelled", 100.0) for d in range(5)]
    rows += [("Y", 40 + 30 * k, "completed", 100.0) for k in range(3)]
    rows += [("W", 30 * k, "completed", 100.0) for k in range(4)] + [("W", 150, "completed", 1200.0)]
    return orders(rows)


def test_planted_abusers_are_flagged_with_the_right_reasons():
    a = flag_anomalies(shop(), level="customer", contamination=0.05, seed=0).set_index("customer_id")
    # shop return rate: 6 + 9 returns of 383 - 9 cancelled orders = 15 / 374 = 4.0 %
    assert a.loc["X", "flagged"]
    assert a.loc["X", "reasons"].split("; ")[0] == "returned 9 of 10 orders (shop: 4%)"
    assert a.loc["Y", "flagged"] and "cancelled 5 orders in 7 days" in a.loc["Y", "reasons"]
    assert a.loc["Y", "max_cancels_7d"] == 5
    assert not a.loc["N10", "flagged"] and a.loc["N10", "reasons"] == ""  # one return of six: ordinary
    assert a.loc["X", "anomaly_score"] > a.loc["N10", "anomaly_score"]
    assert a["flagged"].sum() <= round(0.05 * len(a)) + 1
    assert {"anomaly_score", "flagged", "reasons", "return_rate", "cancel_rate", "max_value_ratio"} <= set(a.columns)


def test_the_reasons_are_written_in_the_report_language():
    from crm_analytics import i18n

    i18n.use("tr", currency="TRY")
    try:
        a = flag_anomalies(shop(), level="customer", contamination=0.05, seed=0).set_index("customer_id")
        big = flag_anomalies(shop(), level="order", contamination=0.01, seed=0)
    finally:
        i18n.use("en")
    assert a.loc["X", "reasons"].split("; ")[0] == "10 siparişten 9 tanesini iade etti (mağaza geneli: %4)"
    assert "7 gün içinde 5 sipariş iptal etti" in a.loc["Y", "reasons"]
    assert "müşterinin medyan siparişinin 12 katı" in big.loc[big["order_total"] == 1200.0, "reasons"].iloc[0]


def test_an_order_far_above_the_customers_median_is_flagged():
    o = shop()
    a = flag_anomalies(o, level="order", contamination=0.01, seed=0)
    big = a[a["order_total"] == 1200.0].iloc[0]
    assert big["flagged"] and big["customer_id"] == "W"
    assert "order value 12× the customer's median" in big["reasons"]
    assert big["anomaly_score"] == a["anomaly_score"].max()
    assert not a.loc[a["customer_id"] == "N01", "flagged"].any()


def test_flag_anomalies_rejects_bad_arguments():
    with pytest.raises(CrmAnalyticsError, match=r"level must be one of \['customer', 'order'\], got 'product'"):
        flag_anomalies(shop(), level="product")
    with pytest.raises(CrmAnalyticsError, match="contamination must be in"):
        flag_anomalies(shop(), contamination=0.9)

"""Tests of crm_analytics.models.relevance: hand-made frames with answers worked out by hand, and the ci world
against an independent pandas computation and the generator's truth (who has the app)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_analytics.models import relevance as rv
from crm_analytics.errors import DataContractError, ParamsError
from crm_analytics.ingest.tables import ParquetTable

T0 = pd.Timestamp("2024-03-04 08:00", tz="UTC")  # a Monday
NAT = pd.NaT


def _ts(*values):
    return pd.to_datetime(list(values), utc=True).as_unit("us")


def _campaigns(rows):
    return pd.DataFrame(rows, columns=["campaign_id", "channel"])


def _assignments(rows):
    """(campaign, customer, group, sent, opened, clicked) tuples; times as strings or None."""
    df = pd.DataFrame(rows, columns=["campaign_id", "customer_id", "group", "sent_ts", "opened_ts", "clicked_ts"])
    for c in ("sent_ts", "opened_ts", "clicked_ts"):
        df[c] = pd.to_datetime(df[c], utc=True, format="ISO8601").dt.as_unit("us")
    return df


def _events(rows):
    """(ts, customer, anonymous_id, session, channel, event_type) tuples."""
    df = pd.DataFrame(rows, columns=["ts", "customer_id", "anonymous_id", "session_id", "channel", "event_type"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.as_unit("us")
    df.insert(0, "event_id", [f"E{i}" for i in range(len(df))])
    return df


def _orders(rows):
    """(order_id, customer, ts, channel, status) tuples."""
    df = pd.DataFrame(rows, columns=["order_id", "customer_id", "order_ts", "channel", "status"])
    df["order_ts"] = pd.to_datetime(df["order_ts"], utc=True).dt.as_unit("us")
    df["order_total"] = 100.0
    return df


# --------------------------------------------------------------------------------------------
# right channel
# --------------------------------------------------------------------------------------------
CAMPAIGNS = _campaigns([("E1", "email"), ("E2", "email"), ("E3", "email"), ("E4", "email"), ("S1", "sms"),
                        ("X1", "social")])
D = "2024-05-01 10:00"
ASSIGNMENTS = _assignments([
    ("E1", "A", "treatment", D, D, None), ("E2", "A", "treatment", D, None, D),  # an open, a click only
    ("E3", "A", "treatment", D, None, None), ("E4", "A", "treatment", D, None, None),
    ("E1", "B", "treatment", D, None, None),
    ("E2", "B", "treatment", None, D, None),  # no sent_ts: not a send, its open not counted
    ("E1", "C", "control", None, None, None),
    ("S1", "A", "treatment", D, None, D),  # SMS tracks no opens: the click counts
    ("S1", "B", "treatment", D, None, None),
    ("X1", "C", "treatment", D, D, D),  # social is not a contact channel
])


def test_engagement_is_shrunk_towards_the_shop_rate_of_each_channel():
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D"], "city": "İzmir"})  # a customers table works too
    got = rv.channel_engagement(ASSIGNMENTS, CAMPAIGNS, customers=customers)
    assert list(got.columns) == ["engagement_email", "engagement_sms", "sent_email", "sent_sms"]
    assert list(got.index) == ["A", "B", "C", "D"] and got.index.name == "customer_id"
    # email: 5 sent, 2 engaged -> p = 0.4; m = 5
    assert got["sent_email"].tolist() == [4, 1, 0, 0]
    np.testing.assert_allclose(got["engagement_email"], [(2 + 2) / (4 + 5), (0 + 2) / (1 + 5), 0.4, 0.4])
    # sms: 2 sent, 1 clicked -> p = 0.5
    assert got["sent_sms"].tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(got["engagement_sms"], [(1 + 2.5) / 6, 2.5 / 6, 0.5, 0.5])
    assert got.attrs["shop_rate"] == {"email": 0.4, "sms": 0.5}


def test_engagement_defaults_to_the_assigned_customers_and_a_weaker_prior_moves_less():
    got = rv.channel_engagement(ASSIGNMENTS, CAMPAIGNS, prior_strength=1.0)
    assert list(got.index) == ["A", "B", "C"]  # control-only C is there, at the shop rate
    np.testing.assert_allclose(got["engagement_email"], [(2 + 0.4) / 5, 0.4 / 2, 0.4])


@pytest.mark.parametrize("bad, match", [
    (lambda a, c: (a.drop(columns="clicked_ts"), c), r"campaign_assignments: column\(s\) \['clicked_ts'\]"),
    (lambda a, c: (a, c.drop(columns="channel")), r"campaigns: column\(s\) \['channel'\]"),
])
def test_engagement_names_the_table_and_column_that_is_missing(bad, match):
    with pytest.raises(DataContractError, match=match):
        rv.channel_engagement(*bad(ASSIGNMENTS, CAMPAIGNS))


@pytest.mark.parametrize("m", [0, -1.0, float("nan")])
def test_prior_strength_must_be_positive(m):
    with pytest.raises(ParamsError, match="prior_strength"):
        rv.channel_engagement(ASSIGNMENTS, CAMPAIGNS, prior_strength=m)


def test_push_reaches_only_customers_seen_in_the_app(tmp_path):
    ev = _events([("2024-03-01 10:00", "A", "d1", "S1", "app", "page_view"),
                  ("2024-03-01 11:00", None, "d9", "S2", "app", "page_view"),  # anonymous app user
                  ("2024-03-01 12:00", "B", "d2", "S3", "web", "page_view")])
    orders = _orders([("O1", "C", "2024-03-02", "app", "completed"), ("O2", "B", "2024-03-02", "web", "completed")])
    want = pd.DataFrame({"email": [True] * 4, "sms": [True] * 4, "push": [True, False, True, False]},
                        index=pd.Index(["A", "B", "C", "D"], name="customer_id"))
    got = rv.reachable_channels(["A", "B", "C", "D"], ev, orders)
    pd.testing.assert_frame_equal(got, want)
    ev.to_parquet(tmp_path / "events.parquet")
    pd.testing.assert_frame_equal(rv.reachable_channels(["A", "B", "C", "D"], ParquetTable(tmp_path / "events.parquet"),
                                                        orders), want)
    assert not rv.reachable_channels(["A"])["push"].any()  # no app evidence at all: no push
    with pytest.raises(DataContractError, match=r"events: column\(s\) \['channel'\]"):
        rv.reachable_channels(["A"], ev.drop(columns="channel"))


def test_preferred_channel_takes_the_best_reachable_one_and_breaks_ties_email_push_sms():
    nan = np.nan
    eng = pd.DataFrame({"engagement_email": [.3, .2, .2, nan, nan, .9],
                        "engagement_sms": [.3, .3, .3, nan, nan, .9],
                        "engagement_push": [.3, .3, .5, nan, .1, .9]}, index=list("abcdef"))
    reach = pd.DataFrame({"email": [True, True, True, True, False, False],
                          "sms": [True, True, True, True, False, False],
                          "push": [True, True, False, True, True, False]}, index=list("abcdef"))
    got = rv.preferred_channel(eng, reach)
    assert got["preferred_channel"].tolist()[:5] == ["email", "push", "sms", "email", "push"]
    assert pd.isna(got.loc["f", "preferred_channel"])  # reachable on nothing
    np.testing.assert_allclose(got["relevance"], [.3, .3, .3, nan, .1, nan])


# --------------------------------------------------------------------------------------------
# right time
# --------------------------------------------------------------------------------------------
def test_activity_collects_opens_clicks_session_starts_and_purchases(tmp_path):
    ev = _events([("2024-03-01 10:00", None, "d1", "S1", "web", "page_view"),  # before login, stitched to A
                  ("2024-03-01 10:05", "A", "d1", "S1", "web", "login"),
                  ("2024-03-01 10:10", "A", "d1", "S1", "web", "product_view"),
                  ("2024-03-01 09:00", "A", None, None, "email", "email_open"),  # a message event, no visit
                  ("2024-03-02 20:00", "B", "d2", "S2", "app", "page_view"),
                  ("2024-03-02 21:00", None, "d3", "S3", "web", "page_view")])  # an unknown visitor
    orders = _orders([("O1", "A", "2024-03-03 12:00", "web", "completed"),
                      ("O2", "A", "2024-03-04 12:00", "web", "cancelled"),
                      ("O3", None, "2024-03-04 13:00", "web", "completed"),
                      ("O4", "B", "2024-03-05 12:00", "app", "returned")])
    assign = _assignments([("E1", "A", "treatment", "2024-02-29 08:00", "2024-03-01 09:00", "2024-03-01 09:01"),
                           ("E1", "B", "control", None, None, None)])
    got = rv.activity(ev, orders, assign)
    want = pd.DataFrame({"customer_id": ["A", "A", "A", "A", "B", "B"],
                         "ts": _ts("2024-03-01 09:00", "2024-03-01 09:01", "2024-03-01 10:00", "2024-03-03 12:00",
                                   "2024-03-02 20:00", "2024-03-05 12:00"),
                         "source": ["open", "click", "visit", "purchase", "visit", "purchase"]})
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert str(got["ts"].dtype) == "datetime64[us, UTC]"
    ev.to_parquet(tmp_path / "events.parquet")  # a log too big for pandas: DuckDB reads the file
    pd.testing.assert_frame_equal(rv.activity(ParquetTable(tmp_path / "events.parquet"), orders, assign), got)
    assert rv.activity().empty and list(rv.activity().columns) == ["customer_id", "ts", "source"]
    with pytest.raises(DataContractError, match=r"orders: column\(s\) \['status'\]"):
        rv.activity(orders=orders.drop(columns="status"))


def test_the_shop_time_zone_moves_sunday_night_utc_to_monday_morning_in_istanbul():
    act = pd.DataFrame({"customer_id": ["A"], "ts": _ts("2024-03-03 22:30")})  # a Sunday in UTC
    ist = rv.contact_timing(act, timezone="Europe/Istanbul", min_events=1)
    assert ist.loc["A", ["best_day", "best_hour", "timing_basis"]].tolist() == ["Monday", 1, "own activity"]
    utc = rv.contact_timing(act, timezone="UTC", min_events=1)
    assert utc.loc["A", ["best_day", "best_hour"]].tolist() == ["Sunday", 22]


def test_timing_adds_the_shop_wide_prior_and_breaks_ties_to_the_earlier_day_and_hour():
    # X: 5 rows on Tuesdays at 10:00. Y: Monday 08:00 and Wednesday 08:00. Shop shares: Tue 5/7, Mon 1/7, Wed 1/7;
    # hour 10: 5/7, hour 8: 2/7.
    x = [T0 + pd.Timedelta(days=1 + 7 * k, hours=2) for k in range(5)]
    y = [T0, T0 + pd.Timedelta(days=2)]
    act = pd.DataFrame({"customer_id": ["X"] * 5 + ["Y"] * 2, "ts": pd.DatetimeIndex(x + y).as_unit("us")})
    got = rv.contact_timing(act, timezone="UTC", customers=["X", "Y", "Z"])
    # m = 5. Y: Mon 1 + 5/7 = Wed < Tue 0 + 25/7; hour 8: 2 + 10/7 < hour 10: 25/7
    assert got["best_day"].tolist() == ["Tuesday", "Tuesday", "Tuesday"]
    assert got["best_hour"].tolist() == [10, 10, 10]
    assert got["timing_basis"].tolist() == ["own activity", "shop-wide", "shop-wide"]
    assert got["activity_events"].tolist() == [5, 2, 0]
    # m = 1. Y: Mon 1 + 1/7 = Wed > Tue 5/7, the tie goes to Monday; hour 8: 2 + 2/7 > hour 10: 5/7
    weak = rv.contact_timing(act, timezone="UTC", prior_strength=1.0, min_events=1, customers=["Y", "Z"])
    assert weak.loc["Y", ["best_day", "best_hour"]].tolist() == ["Monday", 8]
    assert weak.loc["Z", ["best_day", "best_hour"]].tolist() == ["Tuesday", 10]  # no activity: the shop's mode


@pytest.mark.parametrize("kwargs, match", [({"timezone": "Mars/Olympus_Mons"}, "timezone='Mars/Olympus_Mons'"),
                                           ({"timezone": None}, "timezone=None"),
                                           ({"timezone": "UTC", "min_events": 0}, "min_events"),
                                           ({"timezone": "UTC", "prior_strength": 0}, "prior_strength")])
def test_timing_rejects_bad_parameters(kwargs, match):
    act = pd.DataFrame({"customer_id": ["A"], "ts": _ts("2024-03-03 22:30")})
    with pytest.raises(ParamsError, match=match):
        rv.contact_timing(act, **kwargs)


# --------------------------------------------------------------------------------------------
# not too often
# --------------------------------------------------------------------------------------------
def test_recent_contacts_count_sends_in_the_half_open_window():
    a = _assignments([
        ("C1", "A", "treatment", "2024-06-23 12:00:00", None, None),  # on the lower edge: out
        ("C2", "A", "treatment", "2024-06-23 12:00:00.000001", None, None),  # just inside
        ("C3", "A", "treatment", "2024-06-30 12:00:00", None, None),  # on as_of: in
        ("C3", "B", "treatment", "2024-06-30 12:00:00.000001", None, None),  # after as_of: out
        ("C1", "C", "control", None, None, None),
        ("C2", "C", "treatment", None, None, None),  # never sent
        ("C2", "D", "treatment", "2024-06-25 08:00", None, None)])
    got = rv.recent_contacts(a, as_of="2024-06-30T12:00:00Z", period_days=7)
    assert got.to_dict() == {"A": 2, "D": 1} and got.name == "recent_contacts"
    assert rv.recent_contacts(a, as_of="2024-06-30 12:00", period_days=7).to_dict() == {"A": 2, "D": 1}  # naive: UTC
    assert rv.fatigue_capped(got, max_contacts=2).to_dict() == {"A": True, "D": False}
    assert not rv.fatigue_capped(got, max_contacts=3).any()
    with pytest.raises(ParamsError, match="period_days=0"):
        rv.recent_contacts(a, as_of="2024-06-30", period_days=0)
    with pytest.raises(ParamsError, match="as_of='soon'"):
        rv.recent_contacts(a, as_of="soon", period_days=7)
    with pytest.raises(ParamsError, match="max_contacts=0"):
        rv.fatigue_capped(got, max_contacts=0)


# --------------------------------------------------------------------------------------------
# all together
# --------------------------------------------------------------------------------------------
COLUMNS = ["preferred_channel", "relevance", "engagement_email", "engagement_sms", "engagement_push", "best_day",
           "best_hour", "timing_basis", "recent_contacts", "capped"]


def test_relevance_table_combines_channel_time_and_fatigue():
    ev = _events([("2024-03-03 22:30", "B", "d2", "S2", "app", "page_view")])
    orders = _orders([("O1", "A", "2024-03-05 07:00", "web", "completed")])
    got = rv.relevance_table(pd.Index(["A", "B", "D"]), assignments=ASSIGNMENTS, campaigns=CAMPAIGNS, events=ev,
                             orders=orders, timezone="Europe/Istanbul", as_of="2024-05-02", fatigue_days=7,
                             max_contacts=5)
    assert list(got.columns) == COLUMNS and list(got.index) == ["A", "B", "D"]
    # A: email 4/9 vs sms 3.5/6 -> sms; B: email 1/3 vs sms 2.5/6 -> sms; D: both at the shop rate (0.4, 0.5)
    assert got["preferred_channel"].tolist() == ["sms", "sms", "sms"]
    np.testing.assert_allclose(got["relevance"], [3.5 / 6, 2.5 / 6, 0.5])
    assert got["engagement_push"].isna().all()  # no push campaign
    # A: 1 purchase (Tue 10:00 local) + an open and a click at 13:00 local on Wed 2024-05-01
    assert got.loc["A", ["best_day", "best_hour", "timing_basis"]].tolist() == ["Wednesday", 13, "own activity"]
    # B: a visit on Monday 01:30 local and an open (of a message without sent_ts) on Wednesday 13:00: one each,
    # the shop-wide prior (6 of 8 rows on Wednesday at 13) breaks the tie; D has no activity at all
    assert got.loc["B", ["best_day", "best_hour", "timing_basis"]].tolist() == ["Wednesday", 13, "shop-wide"]
    assert got.loc["D", ["best_day", "best_hour", "timing_basis"]].tolist() == ["Wednesday", 13, "shop-wide"]
    assert got["recent_contacts"].tolist() == [5, 2, 0]
    assert got["capped"].tolist() == [True, False, False]


def test_without_campaigns_everyone_gets_email_with_unknown_relevance_and_purchase_timing():
    orders = _orders([("O1", "A", "2024-03-05 07:00", "app", "completed")])
    got = rv.relevance_table(["A", "B"], assignments=None, campaigns=None, events=None, orders=orders,
                             timezone="Europe/Istanbul", as_of="2024-05-02", fatigue_days=7, max_contacts=1)
    assert list(got.columns) == COLUMNS
    assert got["preferred_channel"].tolist() == ["email", "email"]
    assert got[["relevance", "engagement_email", "engagement_sms", "engagement_push"]].isna().all().all()
    assert got["best_day"].tolist() == ["Tuesday", "Tuesday"] and got["best_hour"].tolist() == [10, 10]
    assert got["timing_basis"].tolist() == ["shop-wide", "shop-wide"]
    assert got["recent_contacts"].tolist() == [0, 0] and not got["capped"].any()
    with pytest.raises(ParamsError, match="timezone"):
        rv.relevance_table(["A"], assignments=None, campaigns=None, events=None, orders=orders, timezone="Istanbul",
                           as_of="2024-05-02", fatigue_days=7, max_contacts=1)


# --------------------------------------------------------------------------------------------
# the ci world
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ci_world(ci_clean, ci_root):
    from crm_analytics.ingest.params import load_params

    truth = pd.read_parquet(ci_root / "data" / "raw" / "ci" / "truth_customers.parquet")
    return ci_clean, truth, load_params("ci")["shared"]["timezone"]


def test_ci_world_matches_pandas_and_the_truth_of_who_has_the_app(ci_world):
    t, truth, timezone = ci_world
    ids = t["customers"]["customer_id"]
    got = rv.relevance_table(ids, assignments=t["campaign_assignments"], campaigns=t["campaigns"], events=t["events"],
                             orders=t["orders"], timezone=timezone, as_of="2025-11-05", fatigue_days=30,
                             max_contacts=1)
    assert list(got.columns) == COLUMNS and len(got) == ids.nunique()
    # push for customers seen in the app: far likelier to have it in the generator's truth. Not all of them do:
    # the generator draws an order's channel regardless of has_app, and an app order makes app events.
    reach = rv.reachable_channels(ids, t["events"], t["orders"])
    has_app = truth.set_index("customer_id")["has_app"].reindex(reach.index).fillna(False).astype(bool)
    assert reach["push"].sum() > 0 and has_app[reach["push"]].mean() > 2 * has_app[~reach["push"]].mean()
    assert (got["preferred_channel"] == "push").le(reach["push"]).all()
    # shop-wide e-mail rate, counted independently
    a = t["campaign_assignments"].merge(t["campaigns"][["campaign_id", "channel"]], on="campaign_id")
    sent = a[(a["group"] == "treatment") & a["sent_ts"].notna() & (a["channel"] == "email")]
    p = (sent["opened_ts"].notna() | sent["clicked_ts"].notna()).mean()
    assert got["engagement_email"].max() > p > got["engagement_email"].min()
    assert got.loc[~got.index.isin(sent["customer_id"]), "engagement_email"].eq(p).all()
    # the best day and hour, recomputed densely in pandas (every customer x every bucket) from the activity frame
    act = rv.activity(t["events"], t["orders"], t["campaign_assignments"])
    local = act["ts"].dt.tz_convert(timezone)
    for col, bucket, size in (("best_hour", local.dt.hour, 24), ("best_day", local.dt.day_of_week, 7)):
        own = pd.crosstab(act["customer_id"], bucket).reindex(columns=range(size), fill_value=0)
        share = own.sum() / own.to_numpy().sum()
        want = (own + 5.0 * share).idxmax(axis=1)  # first of equal maxima, as documented
        few = own.sum(axis=1) < 3  # too little of their own: the shop's busiest bucket
        want[few] = int(share.idxmax())
        if col == "best_day":
            want = want.map(dict(enumerate(rv.WEEKDAYS)))
        assert got[col].reindex(want.index).tolist() == want.tolist()
    # fatigue: sends in (as_of - 30 days, as_of]
    end = pd.Timestamp("2025-11-05", tz="UTC")
    s = t["campaign_assignments"]
    inside = s[(s["group"] == "treatment") & (s["sent_ts"] > end - pd.Timedelta(days=30)) & (s["sent_ts"] <= end)]
    assert got["recent_contacts"].sum() == len(inside) > 0
    assert got["capped"].sum() == inside["customer_id"].nunique()


def test_relevance_table_takes_reachable_channels_the_caller_already_has(ci_world):
    t, _, timezone = ci_world
    ids = t["customers"]["customer_id"]
    kw = dict(assignments=t["campaign_assignments"], campaigns=t["campaigns"], events=t["events"], orders=t["orders"],
              timezone=timezone, as_of="2025-11-05", fatigue_days=30, max_contacts=2)
    reach = rv.reachable_channels(ids, t["events"], t["orders"])
    pd.testing.assert_frame_equal(rv.relevance_table(ids, reachable=reach, **kw), rv.relevance_table(ids, **kw))
    no_push = reach.assign(push=False)
    assert (rv.relevance_table(ids, reachable=no_push, **kw)["preferred_channel"] != "push").all()

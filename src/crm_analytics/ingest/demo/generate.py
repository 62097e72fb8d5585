"""Assemble the demo world, plant the dirt, and write the raw tables and the truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crm_analytics.ingest.demo.campaigns import ATTRIBUTION_DAYS, effects_at_end, run_campaigns
from crm_analytics.ingest.demo.events import CHANNEL_KINDS, DEVICE_KINDS, KINDS, MESSAGE_KINDS, _device_code, draw_events, truth_from_counts
from crm_analytics.ingest.demo.feedback import draw_reviews, draw_tickets
from crm_analytics.ingest.demo.locale import get_locale
from crm_analytics.ingest.demo.world import (
    CHANNELS,
    PROFILES,
    TRUE_PARAMS,
    TYPES,
    Clock,
    draw_lines,
    draw_population,
    draw_products,
    draw_purchases,
    gg_scale,
)
from crm_analytics.errors import ParamsError

__all__ = ["generate", "DIRT_RATES"]

#: planted dirt: kind -> (table, share of that table's clean rows)
DIRT_RATES = {
    "duplicate_orders": ("orders", 0.01),
    "duplicate_order_lines": ("order_lines", 0.01),
    "duplicate_customers": ("customers", 0.005),
    "duplicate_events": ("events", 0.005),
    "missing_customer_id": ("orders", 0.02),
    "unparseable_timestamps": ("orders", 0.002),
    "unparseable_event_timestamps": ("events", 0.001),
    "negative_quantities": ("order_lines", 0.005),
    "test_orders": ("orders", 0.003),
    "category_variants": ("products", 0.08),
}
GARBAGE_TIMESTAMPS = np.array(["2025-02-30 10:00:00", "31/13/2024 25:61", "0000-00-00 00:00:00", "??", "#DEĞER!"],
                              dtype=object)
#: customers per block of events (bounds memory on the 1,000,000-customer world)
EVENT_BLOCK = 100_000
_STREAMS = ("population", "purchases", "people", "campaigns", "orders", "lines", "products", "events", "reviews",
            "tickets", "dirt")


def _ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded integer; negative values become null."""
    v = np.asarray(values, dtype="int64")
    arr = pa.array(np.maximum(v, 0)).cast(pa.string())
    out = pc.binary_join_element_wise(prefix, pc.utf8_lpad(arr, width, "0"), "")
    return pc.if_else(pa.array(v < 0), pa.nulls(len(v), pa.string()), out)


class _Time:
    """Days since the start of the window -> ISO 8601 UTC text (``2024-03-05T14:22:11Z``); NaN -> null."""

    def __init__(self, start: np.datetime64):
        self.start_s = int(start.astype("datetime64[s]").astype("int64"))

    def arrow(self, days: np.ndarray, *, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> pa.Array:
        d = np.asarray(days, dtype="float64")
        secs = self.start_s + np.round(np.nan_to_num(d) * 86400).astype("int64")
        ts = pa.array(secs, type=pa.timestamp("s"), mask=np.isnan(d))
        return pc.strftime(ts, format=fmt)

    def __call__(self, days: np.ndarray) -> np.ndarray:
        return self.arrow(days).to_numpy(zero_copy_only=False)


def _people(rng: np.random.Generator, pop, loc, span: float, end: np.datetime64) -> pd.DataFrame:
    """Demographics, fake personal data and consents, by type."""
    n = pop.n
    prof = [PROFILES[t] for t in TYPES]
    age_mu = np.array([p.age[0] for p in prof])[pop.ctype]
    age_sd = np.array([p.age[1] for p in prof])[pop.ctype]
    age = np.clip(rng.normal(age_mu, age_sd), 18, 85)
    female = rng.random(n) < np.array([p.female_share for p in prof])[pop.ctype]
    other = rng.random(n) < 0.02
    gender = np.where(other, "other", np.where(female, "female", "male")).astype(object)
    first = np.where(female, rng.choice(np.array(loc.female_names, dtype=object), n),
                     rng.choice(np.array(loc.male_names, dtype=object), n))
    last = rng.choice(np.array(loc.surnames, dtype=object), n)
    w = np.array([c[2] for c in loc.cities])
    city_i = rng.choice(len(loc.cities), n, p=w / w.sum())
    ascii_map = str.maketrans("çğıöşüÇĞİÖŞÜâ", "cgiosuCGIOSUa")
    slug = pd.Series(first + "." + last).str.lower().str.translate(ascii_map).str.replace(" ", "", regex=False)
    email = (slug + "." + pd.Series(rng.integers(1, 9999, n)).astype(str) + "@"
             + rng.choice(np.array(loc.email_domains, dtype=object), n))
    digits = rng.integers(0, 10, (n, 9))
    phone = [loc.phone_prefix + "".join(map(str, d[:2])) + " " + "".join(map(str, d[2:5])) + " "
             + "".join(map(str, d[5:9])) for d in digits]
    end_days = float((end - np.datetime64("1970-01-01")) / np.timedelta64(1, "D"))
    birth_days = end_days - age * 365.25
    consent_m = rng.random(n) < np.array([p.consent_marketing for p in prof])[pop.ctype]
    consent_t = rng.random(n) < 0.8
    has_app = rng.random(n) < np.array([p.channel[1] + 0.1 for p in prof])[pop.ctype]
    acq = np.empty(n, dtype=object)
    for k, p in enumerate(prof):
        m = pop.ctype == k
        names, probs = zip(*p.acquisition.items())
        acq[m] = rng.choice(np.array(names, dtype=object), int(m.sum()), p=np.array(probs) / sum(probs))
    return pd.DataFrame({
        "age": age, "gender": gender, "full_name": first + " " + last, "email": email.to_numpy(), "phone": phone,
        "city": np.array([c[0] for c in loc.cities], dtype=object)[city_i],
        "region": np.array([c[1] for c in loc.cities], dtype=object)[city_i],
        "birth_date": np.datetime_as_string(np.datetime64("1970-01-01") + np.round(birth_days).astype(
            "int64").astype("timedelta64[D]"), unit="D").astype(object),
        "consent_marketing": consent_m, "consent_tracking": consent_t, "has_app": has_app, "acquisition_channel": acq,
    })


def _duplicate(rng: np.random.Generator, df: pd.DataFrame, rate: float) -> tuple[pd.DataFrame, int]:
    """Insert exact copies of ``rate`` of the rows right after their originals."""
    k = int(round(rate * len(df)))
    if k == 0:
        return df, 0
    pick = np.sort(rng.choice(len(df), k, replace=False))
    pos = np.concatenate([np.arange(len(df), dtype=float), pick + 0.5])
    both = pd.concat([df, df.iloc[pick]], ignore_index=True)
    return both.iloc[np.argsort(pos, kind="stable")].reset_index(drop=True), k


def generate(out: str | Path, *, n_customers: int = 20_000, seed: int = 42, start_date: str = "2024-01-01",
             end_date: str = "2025-12-31", locale: str = "tr_TR", currency: str = "TRY",
             with_events: bool = True, _block: dict | None = None) -> dict:
    """Generate the demo shop into folder *out*; return the truth (also written to ``truth.json``).

    Files: one parquet file per canonical table (raw: timestamps as text, dirt planted),
    ``truth.json`` (population parameters, dirt, funnel, campaigns, stitching),
    ``truth_customers.parquet`` (type, true rate, dropout probability, alive at end, mean spend,
    category preferences, stage), ``truth_reviews.parquet``, ``truth_campaign_effects.parquet`` and
    ``truth_effects_at_end.parquet`` (each buyer's true effect of every randomised arm if sent after
    the data end).
    The same arguments give byte-identical files.

    Worlds of more than :data:`crm_analytics.ingest.demo.blocks.BLOCK_CUSTOMERS` customers are generated
    block by block in bounded memory (:func:`crm_analytics.ingest.demo.blocks.generate_blocks`): no events,
    reviews or tickets then.

    Raises
    ------
    ParamsError
        Fewer than 50 customers, an end date not after the start date, an unknown locale, events asked of a
        world generated block by block.
    """
    from crm_analytics.ingest.demo.blocks import BLOCK_CUSTOMERS, generate_blocks

    if _block is None and n_customers > BLOCK_CUSTOMERS:
        return generate_blocks(out, n_customers=n_customers, seed=seed, start_date=start_date, end_date=end_date,
                               locale=locale, currency=currency, with_events=with_events)
    if n_customers < 50:
        raise ParamsError(f"source.n_customers must be at least 50, got {n_customers}")
    try:
        start, end = np.datetime64(start_date, "D"), np.datetime64(end_date, "D")
    except ValueError as exc:
        raise ParamsError(f"source.start_date/end_date must be dates like 2024-01-01: {exc}") from None
    if (end - start) < np.timedelta64(90, "D"):
        raise ParamsError(f"source.end_date {end_date} must be at least 90 days after start_date {start_date}")
    loc = get_locale(locale)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS)))}
    if _block is not None:  # a block of a big world: streams of its own, the world's catalogue
        block_seq = np.random.SeedSequence(seed, spawn_key=(1000 + _block["index"],))
        rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, block_seq.spawn(len(_STREAMS)))}
        rngs["products"] = np.random.default_rng(np.random.SeedSequence(seed).spawn(len(_STREAMS))[
            _STREAMS.index("products")])
    blk = _block or {"customer_offset": 0, "order_offset": 0, "test_offset": 0, "id_width": 7,
                     "catalogue_customers": n_customers}
    clock = Clock(start, end)
    span = clock.span
    fmt = _Time(start)
    v = gg_scale(loc)
    cats = list(loc.categories)
    pop = draw_population(rngs["population"], n_customers, clock, v, len(cats))
    pur = draw_purchases(rngs["purchases"], pop, clock)
    people = _people(rngs["people"], pop, loc, span, end)
    n = pop.n

    # campaigns act on the purchases (extra orders for responders, lost orders for the put off)
    purchases = pd.DataFrame({"customer": pur.customer, "day": pur.day, "spend": pur.spend, "campaign": None})
    lang = loc.languages[0][0]
    camp = run_campaigns(rngs["campaigns"], pop, clock, start, purchases, people["age"].to_numpy(),
                         people["consent_marketing"].to_numpy(), people["has_app"].to_numpy(), lang, v * 6 / 3)
    purchases = pd.concat([purchases[~camp["remove"]], camp["added"]], ignore_index=True)

    # orders: purchases + cancellations + guest checkouts
    r = rngs["orders"]
    ct = pop.ctype[purchases["customer"].to_numpy()]
    ch_p = np.array([PROFILES[t].channel for t in TYPES])[ct]
    channel = np.array(CHANNELS, dtype=object)[(r.random(len(ct))[:, None] > np.cumsum(ch_p, axis=1)).sum(axis=1).clip(0, 2)]
    ret_p = np.array([PROFILES[t].return_prob for t in TYPES])[ct]
    status = np.where(r.random(len(ct)) < ret_p, "returned", "completed").astype(object)
    buyers = np.flatnonzero(pop.is_buyer)
    n_cancel = int(round(0.03 * len(purchases)))
    cc = r.choice(buyers, n_cancel)
    life_end = np.where(np.isnan(pop.death), span, pop.death)
    cday = pop.birth[cc] + r.random(n_cancel) * (life_end[cc] - pop.birth[cc])
    n_guest = int(round(DIRT_RATES["missing_customer_id"][1] * len(purchases)))
    typical = v * TRUE_PARAMS["gamma_gamma"]["p"] / (TRUE_PARAMS["gamma_gamma"]["q"] - 1)
    orders = pd.DataFrame({
        "customer": np.concatenate([purchases["customer"].to_numpy(), cc, np.full(n_guest, -1)]),
        "day": np.concatenate([purchases["day"].to_numpy(), cday, r.random(n_guest) * span]),
        "spend": np.concatenate([purchases["spend"].to_numpy(), r.gamma(6.0, 1 / pop.nu[cc]),
                                 r.gamma(6.0, typical / 6, n_guest)]),
        "channel": np.concatenate([channel, np.array(CHANNELS, dtype=object)[r.integers(0, 2, n_cancel)],
                                   np.full(n_guest, "web", dtype=object)]),
        "status": np.concatenate([status, np.full(n_cancel, "cancelled", dtype=object),
                                  np.full(n_guest, "completed", dtype=object)]),
        "campaign": np.concatenate([purchases["campaign"].to_numpy(), np.full(n_cancel + n_guest, None)]),
    })
    # time of day: evenings are busiest (keeps the calendar date)
    hour_w = np.array([1, .5, .3, .2, .2, .3, .6, 1, 1.5, 2, 2.5, 3, 3, 3, 3, 3, 3.5, 4, 4.5, 5, 5.5, 5, 3.5, 2])
    hour = r.choice(24, len(orders), p=hour_w / hour_w.sum())
    orders["day"] = np.floor(orders["day"]) + (hour + r.random(len(orders))) / 24
    orders = orders.sort_values(["day", "customer"], kind="stable").reset_index(drop=True)
    orders["order_id"] = _ids("SO", blk["order_offset"] + np.arange(1, len(orders) + 1), 8).to_numpy(
        zero_copy_only=False)

    products = draw_products(rngs["products"], loc, blk["catalogue_customers"])
    disc_p = np.array([PROFILES[t].discount_prob for t in TYPES])[pop.ctype]
    lines = draw_lines(rngs["lines"], orders["customer"].to_numpy(), orders["spend"].to_numpy(), pop.prefs, disc_p,
                       products)
    lines["order_id"] = orders["order_id"].to_numpy()[lines["o"].to_numpy()]
    orders["order_total"] = np.round(np.bincount(lines["o"], weights=lines["quantity"] * lines["unit_price"],
                                                 minlength=len(orders)), 2)

    truth: dict = {
        "generator": "crm_analytics.ingest.demo", "seed": seed, "n_customers": n, "n_buyers": int(pop.is_buyer.sum()),
        "start_date": str(start), "end_date": str(end), "locale": locale, "currency": currency,
        "time_unit": "week",
        "btyd": dict(TRUE_PARAMS["btyd"]),
        "gamma_gamma": {**TRUE_PARAMS["gamma_gamma"], "v": v},
        "types": {t: float((pop.ctype[pop.is_buyer] == k).mean()) for k, t in enumerate(TYPES)},
        "type_rule": "by rank of the BTYD draws: purchase rate below the 30th percentile -> gift_buyer (spend above "
                     "median) or window_shopper; 30th-70th -> bargain_hunter; above -> loyal_high_spender (spend "
                     "above median) or app_frequent_buyer; registered customers who never buy are window_shoppers",
        "alive_at_end_share": float(pur.alive_end[pop.is_buyer].mean()),
        "orders": {"purchases": int(len(purchases)), "cancelled": n_cancel, "guest": n_guest,
                   "returned": int((orders["status"] == "returned").sum()),
                   "campaign_orders_added": int(len(camp["added"])), "campaign_orders_removed": int(camp["remove"].sum())},
        "campaigns": camp["truth"], "attribution_days": ATTRIBUTION_DAYS,
        "notes": [
            "BTYD parameters are per week, in operational time (calendar time bent by a seasonal and weekly "
            "intensity with mean one).",
            "Campaign responders add orders and the put-off lose their window orders, so observed purchases differ "
            "slightly from the pure BG/NBD draw (see orders.campaign_orders_*).",
            "Orders with an unparseable timestamp are lost to customer-level analyses, as in a real export.",
        ],
    }

    o_ev = orders[["order_id", "customer", "day", "channel"]]
    a_ev = camp["assignments"].merge(camp["campaigns"][["campaign_id", "channel"]], on="campaign_id")
    feedback = _block is None  # a block of a big world has no reviews or tickets
    if feedback:
        reviews, truth_reviews = draw_reviews(rngs["reviews"], orders, lines, loc, span)
        tickets = draw_tickets(rngs["tickets"], orders, pop.death, loc, span)

    # ------------------------------------------------------------------ raw tables (text times)
    cid = _ids("C", blk["customer_offset"] + np.arange(1, n + 1), blk["id_width"]).to_numpy(zero_copy_only=False)

    def cust_ids(idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        outv = np.full(len(idx), None, dtype=object)
        outv[idx >= 0] = cid[idx[idx >= 0]]
        return outv

    raw: dict[str, pd.DataFrame] = {}
    raw["customers"] = pd.DataFrame({
        "customer_id": cid, "signup_ts": fmt(np.maximum(pop.signup, -365)), "birth_date": people["birth_date"],
        "gender": people["gender"], "city": people["city"], "region": people["region"],
        "acquisition_channel": people["acquisition_channel"], "email": people["email"], "phone": people["phone"],
        "full_name": people["full_name"], "consent_marketing": people["consent_marketing"],
        "consent_tracking": people["consent_tracking"],
    })
    raw["products"] = products[["product_id", "name", "category", "brand", "price"]].copy()
    raw["orders"] = pd.DataFrame({
        "order_id": orders["order_id"], "customer_id": cust_ids(orders["customer"].to_numpy()),
        "order_ts": fmt(orders["day"].to_numpy()), "channel": orders["channel"], "status": orders["status"],
        "order_total": orders["order_total"],
    })
    raw["order_lines"] = lines[["order_id", "line_no", "product_id", "quantity", "unit_price", "discount"]].copy()
    raw["order_lines"]["quantity"] = raw["order_lines"]["quantity"].astype(float)
    cmp_ = camp["campaigns"]
    raw["campaigns"] = pd.DataFrame({
        "campaign_id": cmp_["campaign_id"], "name": cmp_["name"], "channel": cmp_["channel"],
        "start_ts": fmt(cmp_["start"].to_numpy()), "end_ts": fmt(cmp_["end"].to_numpy()), "offer": cmp_["offer"],
        "cost_per_contact": cmp_["cost_per_contact"], "fixed_cost": cmp_["fixed_cost"],
        "target_segment": cmp_["target_segment"],
    })
    asg = camp["assignments"]
    raw["campaign_assignments"] = pd.DataFrame({
        "campaign_id": asg["campaign_id"], "customer_id": cust_ids(asg["customer"].to_numpy()), "group": asg["group"],
        "variant": asg["variant"], "sent_ts": fmt(asg["sent"].to_numpy()), "opened_ts": fmt(asg["opened"].to_numpy()),
        "clicked_ts": fmt(asg["clicked"].to_numpy()),
    })
    if feedback:
        raw["reviews"] = pd.DataFrame({
            "review_id": reviews["review_id"], "customer_id": cust_ids(reviews["customer"].to_numpy()),
            "product_id": reviews["product_id"], "order_id": reviews["order_id"], "ts": fmt(reviews["day"].to_numpy()),
            "rating": reviews["rating"], "text": reviews["text"], "language": reviews["language"],
        })
        raw["tickets"] = pd.DataFrame({
            "ticket_id": tickets["ticket_id"], "customer_id": cust_ids(tickets["customer"].to_numpy()),
            "order_id": tickets["order_id"], "opened_ts": fmt(tickets["day"].to_numpy()),
            "resolved_ts": fmt(tickets["resolved_day"].to_numpy()), "category": tickets["category"],
            "channel": tickets["channel"], "text": tickets["text"], "satisfaction": tickets["satisfaction"],
        })
    truth["dirt"] = _plant_dirt(rngs["dirt"], raw, fmt, span, n_guest, test_offset=blk["test_offset"])
    if with_events:
        ev_counts, ev_dirt = _write_events(seed, out / "events.parquet", pop, span, fmt, o_ev, lines, products, a_ev,
                                           people, loc, cid)
        truth.update(truth_from_counts(ev_counts))
        truth["dirt"].update(ev_dirt)
        truth["events_blocks"] = ev_counts["blocks"]

    # ------------------------------------------------------------------ write
    for name, df in raw.items():
        _write(df, out / f"{name}.parquet")
    stage = np.where(~pop.is_buyer, "registered_never_bought",
                     np.where(~pur.alive_end, "lapsed_buyer",
                              np.where(pur.n_purchases > 1, "repeat_buyer", "one_time_buyer")))
    complained = np.zeros(n, bool)
    if feedback:
        complained[tickets["customer"].to_numpy()] = True
    tc = pd.DataFrame({
        "customer_id": cid, "type": np.array(TYPES, dtype=object)[pop.ctype], "is_buyer": pop.is_buyer,
        "first_purchase_ts": fmt(pop.birth), "lambda_per_week": pop.lam, "dropout_p": pop.p,
        "dropout_ts": fmt(pop.death), "alive_at_end": pur.alive_end, "n_purchases_btyd": pur.n_purchases,
        "mean_spend": pop.mean_spend, "true_stage": stage, "complained": complained,
        "has_app": people["has_app"], "age": np.round(people["age"].to_numpy(), 1),
    })
    for k, c in enumerate(cats):
        tc[f"pref_{c}"] = pop.prefs[:, k]
    _write(tc, out / "truth_customers.parquet")
    if feedback:
        _write(truth_reviews, out / "truth_reviews.parquet")
    eff = camp["effects"]
    _write(pd.DataFrame({"campaign_id": eff["campaign_id"], "customer_id": cust_ids(eff["customer"].to_numpy()),
                         "variant": eff["variant"], "alive_at_send": eff["alive_at_send"],
                         "base_conversion": eff["base_conversion"], "true_effect": eff["true_effect"]}),
           out / "truth_campaign_effects.parquet")
    now = effects_at_end(pop, clock, pur.alive_end, people["age"].to_numpy(), people["has_app"].to_numpy())
    _write(pd.DataFrame({"customer_id": cust_ids(now["customer"].to_numpy()), "campaign_id": now["campaign_id"],
                         "variant": now["variant"], "base_conversion": now["base_conversion"],
                         "true_effect": now["true_effect"]}), out / "truth_effects_at_end.parquet")
    truth["stages"] = {s: int((stage == s).sum()) for s in np.unique(stage)}
    truth["categories"] = cats
    truth["tables"] = {name: int(len(df)) for name, df in raw.items()}
    if with_events:
        truth["tables"]["events"] = ev_counts["rows"]
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False, default=float) + "\n")
    return truth


def _plant_dirt(rng: np.random.Generator, raw: dict[str, pd.DataFrame], fmt: _Time, span: float,
                n_guest: int, *, test_offset: int = 0) -> dict:
    """Plant the dirt of :data:`DIRT_RATES` into *raw* (in place); return ``{kind: {table, rows, rate}}``."""
    planted: dict[str, dict] = {}
    orders, lines = raw["orders"], raw["order_lines"]
    clean_orders, clean_lines = len(orders), len(lines)
    # unparseable timestamps on real orders
    k = int(round(DIRT_RATES["unparseable_timestamps"][1] * clean_orders))
    bad = rng.choice(clean_orders, k, replace=False)
    orders.loc[bad, "order_ts"] = GARBAGE_TIMESTAMPS[rng.integers(0, len(GARBAGE_TIMESTAMPS), k)]
    planted["unparseable_timestamps"] = k
    # test orders placed by staff
    k = max(1, int(round(DIRT_RATES["test_orders"][1] * clean_orders)))
    cust = orders["customer_id"].dropna().to_numpy()
    t_ids = np.array([f"TEST-{i:05d}" for i in range(test_offset + 1, test_offset + k + 1)], dtype=object)
    test_orders = pd.DataFrame({"order_id": t_ids, "customer_id": rng.choice(cust, k),
                                "order_ts": fmt(rng.random(k) * span), "channel": "web", "status": "completed",
                                "order_total": 1.0})
    test_lines = pd.DataFrame({"order_id": t_ids, "line_no": 1, "product_id": rng.choice(raw["products"]["product_id"], k),
                               "quantity": 1.0, "unit_price": 1.0, "discount": 0.0})
    orders = pd.concat([orders, test_orders], ignore_index=True)
    planted["test_orders"] = k
    # negative quantities: correction lines added to real orders
    k = int(round(DIRT_RATES["negative_quantities"][1] * clean_lines))
    src = lines.iloc[np.sort(rng.choice(clean_lines, k, replace=False))].copy()
    max_no = lines.groupby("order_id")["line_no"].max()
    src["line_no"] = max_no.reindex(src["order_id"]).to_numpy() + 1 + src.groupby("order_id").cumcount().to_numpy()
    src["quantity"] = -src["quantity"]
    lines = pd.concat([lines, test_lines, src], ignore_index=True).sort_values(["order_id", "line_no"], kind="stable")
    lines = lines.reset_index(drop=True)
    planted["negative_quantities"] = k
    # category spelling variants
    prod = raw["products"]
    k = int(round(DIRT_RATES["category_variants"][1] * len(prod)))
    pick = rng.choice(len(prod), k, replace=False)
    style = rng.integers(0, 4, k)
    cat = prod.loc[pick, "category"].to_numpy()
    variants = np.where(style == 0, [" " + c for c in cat],
                        np.where(style == 1, [c.upper() for c in cat],
                                 np.where(style == 2, [c.lower() + "  " for c in cat], [c.replace(" ", "  ") + " " for c in cat])))
    prod.loc[pick, "category"] = variants
    planted["category_variants"] = k
    # exact duplicate rows (last, so every planted row can be duplicated too)
    raw["orders"], planted["duplicate_orders"] = _duplicate(rng, orders, DIRT_RATES["duplicate_orders"][1])
    raw["order_lines"], planted["duplicate_order_lines"] = _duplicate(rng, lines, DIRT_RATES["duplicate_order_lines"][1])
    raw["customers"], planted["duplicate_customers"] = _duplicate(rng, raw["customers"], DIRT_RATES["duplicate_customers"][1])
    planted["missing_customer_id"] = n_guest
    out = {}
    for kind, rows in planted.items():
        table = DIRT_RATES[kind][0]
        out[kind] = {"table": table, "rows": int(rows), "rate": rows / max(len(raw[table]), 1),
                     "target_rate": DIRT_RATES[kind][1]}
    out["missing_customer_id"]["note"] = "guest checkouts: orders with no customer id"
    return out


def _write(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path, compression="snappy")


def _write_events(seed: int, path: Path, pop, span: float, fmt: _Time, orders: pd.DataFrame, lines: pd.DataFrame,
                  products: pd.DataFrame, assignments: pd.DataFrame, people: pd.DataFrame, loc,
                  cid: np.ndarray) -> tuple[dict, dict]:
    """Generate the events block by block of customers and write them to *path* as row groups.

    Each block has its own random stream (``SeedSequence(seed, spawn_key=(99, block))``), so the
    output does not depend on anything but the arguments. Dirt (unparseable times, exact
    duplicates) is planted per block at the rates of :data:`DIRT_RATES`.
    """
    n = pop.n
    n_blocks = max(1, -(-n // EVENT_BLOCK))
    totals: dict[str, int] = {}
    planted = {"unparseable_event_timestamps": 0, "duplicate_events": 0}
    rows = 0
    writer = None
    cust_o = orders["customer"].to_numpy()
    guest_block = np.arange(len(orders)) % n_blocks
    block_of_cust = np.arange(n) // EVENT_BLOCK
    order_block = np.where(cust_o >= 0, block_of_cust[np.maximum(cust_o, 0)], guest_block)
    a_block = block_of_cust[assignments["customer"].to_numpy()]
    kinds = pa.array(list(KINDS) + list(MESSAGE_KINDS))
    devices, channels = pa.array(list(DEVICE_KINDS)), pa.array(list(CHANNEL_KINDS))
    cid_arr = pa.array(cid)
    order_ids = pa.array(orders["order_id"].to_numpy())
    product_ids = pa.array(products["product_id"].to_numpy())
    terms = [list(t) for _, t in loc.categories.values()]
    session_offset = visitor_offset = 0
    try:
        for b in range(n_blocks):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(99, b)))
            members = np.arange(b * EVENT_BLOCK, min((b + 1) * EVENT_BLOCK, n))
            o = orders[order_block == b]
            ln = lines[lines["order_id"].isin(o["order_id"])].sort_values(["order_id", "line_no"])
            ev, counts = draw_events(rng, pop, span, o, ln[["order_id", "product_id"]], products,
                                     assignments[a_block == b], people["consent_tracking"].to_numpy(),
                                     people["has_app"].to_numpy(), terms, members, visitor_offset, session_offset)
            session_offset += counts["sessions"]
            visitor_offset += int(round(0.6 * len(members)))
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v

            def take(dictionary: pa.Array, codes: np.ndarray) -> pa.Array:
                return dictionary.take(pa.array(codes, mask=codes < 0))

            m = len(ev["day"])
            ts = fmt.arrow(ev["day"])
            k_bad = int(round(DIRT_RATES["unparseable_event_timestamps"][1] * m))
            bad = np.zeros(m, bool)
            bad[rng.choice(m, k_bad, replace=False)] = True
            ts = pc.replace_with_mask(ts, pa.array(bad), pa.array(GARBAGE_TIMESTAMPS[rng.integers(0, 5, k_bad)].tolist(),
                                                                  type=pa.string()))
            dev = ev["device"]
            table = pa.table({
                "event_id": pa.nulls(m, pa.string()),
                "ts": ts,
                "customer_id": take(cid_arr, ev["customer"]),
                "anonymous_id": _ids("V", np.where(dev >= 0, _device_code(np.maximum(dev, 0)), -1), 10),
                "session_id": _ids("S", np.where(ev["session"] >= 0, ev["session"] + 1, -1), 9),
                "channel": take(channels, ev["channel"]),
                "device": take(devices, ev["device_kind"]),
                "event_type": take(kinds, ev["kind"]),
                "product_id": take(product_ids, ev["product"]),
                "search_query": pa.array(ev["search_query"], type=pa.string()),
                "results_count": pa.array(ev["results_count"], mask=ev["results_count"] < 0, type=pa.int64()),
                "order_id": take(order_ids, ev["order"]),
            })
            table = table.set_column(0, "event_id", _ids("E", rows + 1 + np.arange(m), 10))
            k_dup = int(round(DIRT_RATES["duplicate_events"][1] * m))
            pick = np.sort(rng.choice(m, k_dup, replace=False))
            idx = np.concatenate([np.arange(m), pick])[np.argsort(np.concatenate([np.arange(m), pick + 0.5]), kind="stable")]
            table = table.take(pa.array(idx))
            planted["unparseable_event_timestamps"] += k_bad
            planted["duplicate_events"] += k_dup
            rows += len(table)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    totals["rows"] = rows
    totals["blocks"] = n_blocks
    dirt = {kind: {"table": "events", "rows": k, "rate": k / max(rows, 1), "target_rate": DIRT_RATES[kind][1]}
            for kind, k in planted.items()}
    return totals, dirt

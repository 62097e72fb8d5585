"""Web and app sessions of the demo world: browsing, search, carts, checkouts and purchases,
anonymous browsing later tied to a customer by a login, and e-mail/push opens and clicks.

Only customers who consented to tracking are tracked under their id; visitors who never
register browse anonymously. Step conversion rates and cart abandonment are realised from
the sessions generated (before dirt) and recorded in ``truth.json["funnel"]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analytics.ingest.demo.world import PROFILES, TYPES, Population

__all__ = ["KINDS", "MESSAGE_KINDS", "draw_events", "truth_from_counts"]

#: event kinds in their order inside a session
KINDS = ("page_view", "login", "search", "product_view", "add_to_cart", "remove_from_cart", "checkout_start",
         "purchase")
_K = {k: i for i, k in enumerate(KINDS)}


def _pick_products(rng, cust: np.ndarray, prefs: np.ndarray, cat_start: np.ndarray, cat_size: np.ndarray,
                   product_ids: np.ndarray) -> np.ndarray:
    n_cat = prefs.shape[1]
    pr = np.where(cust[:, None] >= 0, prefs[np.maximum(cust, 0)], 1.0 / n_cat)
    cat = (rng.random(len(cust))[:, None] > np.cumsum(pr, axis=1)).sum(axis=1).clip(0, n_cat - 1)
    return product_ids[cat_start[cat] + (rng.random(len(cust)) * cat_size[cat]).astype(int)]


def _device_code(x: np.ndarray) -> np.ndarray:
    """An opaque, collision-free device number for device *x* (a fixed bijection mod a prime)."""
    return (x.astype("int64") * 2_654_435_761 + 12_345) % 4_294_967_291


def draw_events(rng: np.random.Generator, pop: Population, span: float, orders: pd.DataFrame, lines: pd.DataFrame,
                products: pd.DataFrame, assignments: pd.DataFrame, consent_tracking: np.ndarray,
                has_app: np.ndarray, search_terms: list[list[str]], members: np.ndarray, visitor_offset: int,
                session_offset: int) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Events of the customers *members* (global indices) and their share of anonymous visitors.

    ``orders`` (``order_id``, ``customer`` (-1 for guests), ``day``, ``channel``) and ``lines``
    (``order_id``, ``product_id``, sorted by order) hold only this block's orders. Returns the
    event columns (times in days since start, sorted by time; customers, devices and orders as
    integer codes, -1 for none) and the counts behind the funnel and stitching truth.
    """
    n_cat = pop.prefs.shape[1]
    by_cat = products.groupby("category_index").indices
    cat_start = np.array([by_cat[c][0] for c in range(n_cat)])
    cat_size = np.array([len(by_cat[c]) for c in range(n_cat)])
    product_ids = products["product_id"].to_numpy()
    n_vis = int(round(0.6 * len(members)))
    vis_dev = 3 * pop.n + visitor_offset + np.arange(n_vis)
    has_shadow = rng.random(pop.n) < 0.10  # drawn for all, used for members
    ctype = pop.ctype
    tracked = consent_tracking

    # 1. purchase sessions: web and app orders of tracked customers and guests
    cust_o = orders["customer"].to_numpy()
    po = orders[np.isin(orders["channel"].to_numpy(), ["web", "app"]) & ((cust_o < 0) | tracked[np.maximum(cust_o, 0)])]
    po_cust = po["customer"].to_numpy()
    line_count = lines.groupby("order_id", sort=False).size()
    po_lines = line_count.reindex(po["order_id"]).fillna(0).astype(int).to_numpy()
    # 2. browsing sessions of tracked customers, from a month before signup to dropout/end
    m = members
    lo = np.clip(pop.signup[m] - 30, 0, span)
    hi = np.where(np.isnan(pop.death[m]), span, pop.death[m])
    hi = np.where(pop.is_buyer[m], hi, span)
    weeks = np.clip(hi - lo, 0, None) / 7
    rate = np.array([PROFILES[t].browse_per_week for t in TYPES])[ctype[m]]
    nb = np.where(tracked[m], np.minimum(rng.poisson(rate * weeks), 30), 0)
    rep = np.repeat(np.arange(len(m)), nb)
    b_cust = m[rep]
    b_day = lo[rep] + rng.random(len(rep)) * (hi[rep] - lo[rep])
    # 3. anonymous visitors who never register
    nv = 1 + rng.poisson(0.8, n_vis)
    v_idx = np.repeat(np.arange(n_vis), nv)
    v_day = rng.random(len(v_idx)) * span

    n_p, n_b, n_v = len(po), len(b_cust), len(v_idx)
    S = n_p + n_b + n_v
    kind = np.concatenate([np.zeros(n_p, int), np.ones(n_b, int), np.full(n_v, 2)])  # 0 purchase, 1 browse, 2 visitor
    cust = np.concatenate([po_cust, b_cust, np.full(n_v, -1)])
    day = np.concatenate([po["day"].to_numpy() - rng.uniform(5, 40, n_p) / 1440, b_day, v_day])
    app_share = np.array([PROFILES[t].channel[1] / (PROFILES[t].channel[0] + PROFILES[t].channel[1]) for t in TYPES])
    c0 = np.maximum(cust, 0)
    use_app = np.where(kind == 0, np.concatenate([po["channel"].to_numpy() == "app", np.zeros(n_b + n_v, bool)]),
                       (rng.random(S) < np.where(cust >= 0, app_share[ctype[c0]], 0.3)) & np.where(cust >= 0, has_app[c0], True))
    shadow = (kind == 1) & has_shadow[c0] & (rng.random(S) < 0.3)
    guest = (kind == 0) & (cust < 0)
    device = np.where(use_app, 1 + (rng.random(S) < 0.6), 3 * (rng.random(S) < 0.45))  # desktop ios android mobile_web
    dev_id = np.where(shadow, 3 * c0 + 2, np.where(use_app, 3 * c0 + 1, 3 * c0))
    visitor_dev = np.concatenate([np.zeros(n_p + n_b, int), vis_dev[v_idx]]) if n_vis else np.zeros(S, int)
    dev_id = np.where(kind == 2, visitor_dev, dev_id)
    if n_vis:
        dev_id = np.where(guest, vis_dev[rng.integers(0, n_vis, S)], dev_id)
    # identification: before signup, on a shadow device, as a guest or a visitor: anonymous
    identified = (cust >= 0) & ~shadow & (day >= pop.signup[c0]) & ~guest
    # the first identified session of each device logs in; later ones log in 30 % of the time
    order = np.lexsort((day, dev_id))
    ids_sorted = np.where(identified[order], dev_id[order], -1)
    first = np.zeros(S, bool)
    first[order] = (ids_sorted >= 0) & ~pd.Series(ids_sorted).where(ids_sorted >= 0).duplicated().to_numpy()
    login = identified & (first | (rng.random(S) < 0.3))

    # per-session counts of each kind
    lines_n = np.concatenate([po_lines, np.zeros(n_b + n_v, int)])
    cart_p = np.where(kind == 2, 0.15, np.array([PROFILES[t].cart_prob for t in TYPES])[ctype[c0]])
    cnt = np.zeros((S, len(KINDS)), int)
    cnt[:, _K["page_view"]] = 1
    cnt[:, _K["login"]] = login
    cnt[:, _K["search"]] = rng.random(S) < np.where(kind == 0, 0.4, 0.5)
    cnt[:, _K["product_view"]] = np.where(kind == 0, lines_n + rng.poisson(1.0, S), 1 + rng.poisson(1.5, S))
    carts = np.where(kind == 0, lines_n, (rng.random(S) < cart_p) * (1 + rng.poisson(0.3, S)))
    cnt[:, _K["add_to_cart"]] = carts
    cnt[:, _K["remove_from_cart"]] = (carts > 0) & (rng.random(S) < 0.1)
    cnt[:, _K["checkout_start"]] = np.where(kind == 0, 1, (carts > 0) & (rng.random(S) < 0.35))
    cnt[:, _K["purchase"]] = kind == 0
    flat = cnt.ravel()
    k_of = np.repeat(np.tile(np.arange(len(KINDS)), S), flat)
    s_of = np.repeat(np.repeat(np.arange(S), len(KINDS)), flat)
    pos = np.arange(len(k_of)) - np.repeat(np.concatenate([[0], np.cumsum(flat)[:-1]]), flat)
    per_sess = cnt.sum(axis=1)
    gaps = rng.exponential(45 / 86400, len(k_of))
    sess_start = np.concatenate([[0], np.cumsum(per_sess)[:-1]])
    cg = np.cumsum(gaps)
    ts = day[s_of] + cg - np.repeat(cg[sess_start] - gaps[sess_start], per_sess)
    # purchase sessions end exactly at the order time
    is_purchase = k_of == _K["purchase"]
    shift = np.zeros(S)
    shift[s_of[is_purchase]] = po["day"].to_numpy()[s_of[is_purchase]] - ts[is_purchase]
    ts = ts + shift[s_of]
    # customer on the event: identified sessions, except the page view before a login
    ev_cust = np.where(identified[s_of] & ~(login[s_of] & (k_of == _K["page_view"])), cust[s_of], -1)
    # products (as row numbers of the catalogue)
    prod = np.full(len(k_of), -1)
    needs = (k_of == _K["product_view"]) | (k_of == _K["add_to_cart"]) | (k_of == _K["remove_from_cart"])
    prod[needs] = _pick_products(rng, cust[s_of[needs]], pop.prefs, cat_start, cat_size, np.arange(len(product_ids)))
    # the cart (and first views) of a purchase session are the order's lines
    line_start = np.concatenate([[0], np.cumsum(line_count.to_numpy())[:-1]])
    lstart = pd.Series(line_start, index=line_count.index).reindex(po["order_id"]).fillna(0).astype(int).to_numpy()
    prod_row = pd.Series(np.arange(len(product_ids)), index=product_ids)
    lp = prod_row.reindex(lines["product_id"]).to_numpy()
    from_lines = (kind[s_of] == 0) & ((k_of == _K["add_to_cart"]) | (k_of == _K["product_view"])) & (pos < lines_n[s_of])
    prod[from_lines] = lp[lstart[s_of[from_lines]] + pos[from_lines]]
    # search queries, 8 % with no results (misspelt or not stocked)
    srch = k_of == _K["search"]
    ns = int(srch.sum())
    sc = cust[s_of[srch]]
    pr = np.where(sc[:, None] >= 0, pop.prefs[np.maximum(sc, 0)], 1 / n_cat)
    cat_q = (rng.random(ns)[:, None] > np.cumsum(pr, axis=1)).sum(axis=1).clip(0, n_cat - 1)
    terms = np.array(search_terms, dtype=object)
    query = terms[cat_q, rng.integers(0, terms.shape[1], ns)]
    zero = rng.random(ns) < 0.08
    query[zero] = query[zero] + "xq"
    q_all = np.full(len(k_of), None, dtype=object)
    q_all[srch] = query
    r_all = np.full(len(k_of), -1)
    r_all[srch] = np.where(zero, 0, 3 + rng.poisson(40, ns))
    order_row = np.full(len(k_of), -1)
    order_row[is_purchase] = po.index.to_numpy()[s_of[is_purchase]]
    ev = {
        "day": ts, "customer": ev_cust, "device": dev_id[s_of], "session": session_offset + s_of,
        "channel": use_app[s_of].astype(int), "device_kind": device[s_of], "kind": k_of, "product": prod,
        "search_query": q_all, "results_count": r_all, "order": order_row,
    }
    # e-mail and push opens and clicks (no session, no device)
    a = assignments
    parts = []
    for col, chan, kname in (("opened", "email", "email_open"), ("clicked", "email", "email_click"),
                             ("opened", "push", "push_open")):
        sel = a[col].notna().to_numpy() & (a["channel"] == chan).to_numpy()
        parts.append((a[col].to_numpy()[sel], a["customer"].to_numpy()[sel], kname))
    msg_kind = {"email_open": len(KINDS), "email_click": len(KINDS) + 1, "push_open": len(KINDS) + 2}
    for d, c, kname in parts:
        keep = d < span
        k = int(keep.sum())
        add = {"day": d[keep], "customer": c[keep], "device": np.full(k, -1), "session": np.full(k, -1),
               "channel": np.full(k, 2 if kname.startswith("email") else 1), "device_kind": np.full(k, -1),
               "kind": np.full(k, msg_kind[kname]), "product": np.full(k, -1),
               "search_query": np.full(k, None, dtype=object), "results_count": np.full(k, -1), "order": np.full(k, -1)}
        ev = {key: np.concatenate([ev[key], add[key]]) for key in ev}
    keep = ev["day"] < span
    order = np.lexsort((ev["session"], ev["day"]))
    order = order[keep[order]]
    ev = {key: v[order] for key, v in ev.items()}

    # truth counts: funnel over web/app sessions and stitching
    has = cnt[:, [_K["product_view"], _K["add_to_cart"], _K["checkout_start"], _K["purchase"]]] > 0
    view, cart, chk, buy = has.T
    web = ev["session"] >= 0
    true_cust = np.full(len(ev["day"]), -1)
    true_cust[web] = cust[ev["session"][web] - session_offset]
    logged_devices = np.unique(ev["device"][ev["kind"] == _K["login"]])
    anon = web & (ev["customer"] < 0)
    on_logged = np.isin(ev["device"], logged_devices)
    counts = {
        "sessions": int(S), "sessions_view": int(view.sum()), "sessions_cart": int(cart.sum()),
        "sessions_checkout": int(chk.sum()), "sessions_purchase": int(buy.sum()),
        "view_and_cart": int((view & cart).sum()), "cart_and_checkout": int((cart & chk).sum()),
        "checkout_and_purchase": int((chk & buy).sum()), "cart_and_purchase": int((cart & buy).sum()),
        "searches": ns, "zero_result_searches": int(zero.sum()),
        "web_app_events": int(web.sum()), "identified_events": int((web & (ev["customer"] >= 0)).sum()),
        "anonymous_events_of_customers_stitchable": int((anon & (true_cust >= 0) & on_logged).sum()),
        "anonymous_events_of_customers_unstitchable": int((anon & (true_cust >= 0) & ~on_logged).sum()),
        "anonymous_events_of_visitors_and_guests": int((anon & (true_cust < 0)).sum()),
    }
    return ev, counts


#: event kind codes beyond KINDS
MESSAGE_KINDS = ("email_open", "email_click", "push_open")
DEVICE_KINDS = ("desktop", "ios", "android", "mobile_web")
CHANNEL_KINDS = ("web", "app", "email")


def truth_from_counts(c: dict[str, int]) -> dict:
    """The funnel and stitching truth from summed block counts."""
    def rate(a: str, b: str) -> float:
        return c[a] / c[b] if c[b] else 0.0

    funnel = {
        "sessions": c["sessions"],
        "share_with": {"product_view": rate("sessions_view", "sessions"), "add_to_cart": rate("sessions_cart", "sessions"),
                       "checkout_start": rate("sessions_checkout", "sessions"),
                       "purchase": rate("sessions_purchase", "sessions")},
        "step_conversion": {"view_to_cart": rate("view_and_cart", "sessions_view"),
                            "cart_to_checkout": rate("cart_and_checkout", "sessions_cart"),
                            "checkout_to_purchase": rate("checkout_and_purchase", "sessions_checkout")},
        "cart_abandonment": 1 - rate("cart_and_purchase", "sessions_cart"),
        "search_zero_result_share": rate("zero_result_searches", "searches"),
        "generating_probabilities": {"search": 0.5, "zero_results": 0.08, "remove_from_cart": 0.1,
                                     "browse_checkout_given_cart": 0.35,
                                     "browse_cart_by_type": {t: PROFILES[t].cart_prob for t in TYPES}},
    }
    keys = ("web_app_events", "identified_events", "anonymous_events_of_customers_stitchable",
            "anonymous_events_of_customers_unstitchable", "anonymous_events_of_visitors_and_guests")
    stitching = {k: c[k] for k in keys}
    stitching["share_attributable"] = (c["identified_events"] + c["anonymous_events_of_customers_stitchable"]) / max(
        c["web_app_events"], 1)
    stitching["rule"] = "an anonymous_id that logs in belongs to that customer for the device's whole history"
    return {"funnel": funnel, "stitching": stitching}

"""The customers, their Buy-Till-You-Die purchasing, orders, lines and products of the demo world.

Everything is vectorised with numpy; every random draw comes from a named child of one
``SeedSequence`` so the same seed gives the same world, whatever is generated after it.

Time is kept internally in days since ``start`` (float). Purchasing follows the BG/NBD
story in *operational* time: a customer's first purchase is their birth; while alive they
buy at a Poisson rate ``lam`` (per week, Gamma(r, alpha) over customers); after every repeat
purchase they drop out with probability ``p`` (Beta(a, b)). Operational time is mapped to
calendar time through a seasonal and weekly intensity with mean one, so the calendar shows
a November peak and busy Sundays while the population parameters stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_analytics.ingest.demo.locale import Locale

__all__ = ["TYPES", "PROFILES", "TRUE_PARAMS", "Clock", "Population", "draw_population", "draw_purchases"]

TYPES = ("loyal_high_spender", "app_frequent_buyer", "bargain_hunter", "gift_buyer", "window_shopper")

#: population parameters, rates per week (lifetimes conventions)
TRUE_PARAMS = {
    "btyd": {"r": 0.55, "alpha": 7.0, "a": 0.7, "b": 2.8},
    "gamma_gamma": {"p": 6.0, "q": 4.0},  # v is set from the locale's price level
}

CHANNELS = ("web", "app", "marketplace")


@dataclass(frozen=True)
class Profile:
    channel: tuple[float, float, float]  # web, app, marketplace
    category_weights: tuple[float, ...]  # over the locale's 8 categories, in order
    discount_prob: float  # share of lines bought on discount
    browse_per_week: float  # browsing sessions without purchase per alive week
    cart_prob: float  # add to cart in a browsing session
    age: tuple[float, float]
    female_share: float
    consent_marketing: float
    open_prob: float  # e-mail open
    click_prob: float  # click given open
    campaign_effect: float  # true conversion effect of a generic offer (negative: put off)
    return_prob: float
    acquisition: dict[str, float]


PROFILES: dict[str, Profile] = {
    "loyal_high_spender": Profile((0.55, 0.35, 0.10), (3, 2, 1, 3, 1, 2, 0.5, 0.5), 0.08, 0.06, 0.30, (43, 10), 0.5,
                                  0.75, 0.45, 0.30, 0.00, 0.03,
                                  {"organic": 0.5, "referral": 0.2, "paid_search": 0.2, "email": 0.1}),
    "app_frequent_buyer": Profile((0.10, 0.85, 0.05), (0.7, 2, 4, 1, 0.5, 1, 0.5, 3), 0.25, 0.10, 0.35, (29, 6), 0.65,
                                  0.70, 0.30, 0.25, 0.04, 0.04,
                                  {"app_store": 0.5, "social": 0.3, "organic": 0.2}),
    "bargain_hunter": Profile((0.35, 0.15, 0.50), (1, 3, 2, 2, 1, 1, 1, 2), 0.70, 0.05, 0.30, (36, 11), 0.55,
                              0.75, 0.35, 0.35, 0.09, 0.07,
                              {"marketplace": 0.4, "paid_search": 0.3, "social": 0.2, "organic": 0.1}),
    "gift_buyer": Profile((0.60, 0.10, 0.30), (2, 1, 2, 1, 2, 1, 4, 0.3), 0.15, 0.015, 0.25, (46, 12), 0.45,
                          0.60, 0.20, 0.15, 0.02, 0.05,
                          {"paid_search": 0.5, "organic": 0.3, "referral": 0.2}),
    "window_shopper": Profile((0.70, 0.25, 0.05), (3, 3, 1, 1, 1, 2, 1, 0.5), 0.30, 0.18, 0.40, (27, 7), 0.5,
                              0.65, 0.15, 0.10, -0.05, 0.06,
                              {"social": 0.5, "organic": 0.3, "paid_search": 0.2}),
}


class Clock:
    """Maps operational days to calendar days through an intensity with mean one.

    Intensity = seasonal (peak late November, trough in summer) x weekday (Sunday busiest).
    """

    def __init__(self, start: np.datetime64, end: np.datetime64):
        self.start = start
        self.n_days = int((end - start) / np.timedelta64(1, "D")) + 1
        days = start + np.arange(self.n_days).astype("timedelta64[D]")
        doy = (days - days.astype("datetime64[Y]")).astype(int)
        dow = (days.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
        weekday = np.array([1.05, 0.95, 0.9, 0.95, 0.9, 1.0, 1.25])[dow]
        seasonal = 1 + 0.25 * np.cos(2 * np.pi * (doy - 330) / 365.25)
        s = seasonal * weekday
        s = s / s.mean()
        self.intensity = s
        self.cum = np.concatenate([[0.0], np.cumsum(s)])  # operational time at calendar day boundaries

    @property
    def span(self) -> float:
        return float(self.n_days)

    def to_op(self, cal: np.ndarray) -> np.ndarray:
        return np.interp(cal, np.arange(self.n_days + 1), self.cum)

    def to_cal(self, op: np.ndarray) -> np.ndarray:
        return np.interp(op, self.cum, np.arange(self.n_days + 1))


@dataclass
class Population:
    """Per-customer truth (arrays of length n_customers; buyer-only values are NaN for prospects)."""

    n: int
    is_buyer: np.ndarray
    ctype: np.ndarray  # index into TYPES
    lam: np.ndarray  # purchases per week while alive
    p: np.ndarray  # dropout probability after each repeat purchase
    nu: np.ndarray  # Gamma-Gamma scale: spend per order ~ Gamma(p_gg, 1/nu)
    mean_spend: np.ndarray
    birth: np.ndarray  # first purchase, calendar days since start
    signup: np.ndarray  # calendar days since start (may be negative: signed up before the window)
    prefs: np.ndarray  # (n, n_categories) true category preferences
    death: np.ndarray | None = None  # calendar day of dropout (NaN: alive or prospect); set by draw_purchases


def _rank01(x: np.ndarray) -> np.ndarray:
    return (np.argsort(np.argsort(x, kind="stable"), kind="stable") + 0.5) / len(x)


def draw_population(rng: np.random.Generator, n: int, clock: Clock, gg_v: float, n_categories: int) -> Population:
    """Draw customers, their BTYD rates, spend, type, first purchase and signup."""
    bt, gg = TRUE_PARAMS["btyd"], TRUE_PARAMS["gamma_gamma"]
    is_buyer = rng.random(n) < 0.88
    nb = int(is_buyer.sum())
    lam = np.full(n, np.nan)
    p = np.full(n, np.nan)
    nu = np.full(n, np.nan)
    lam[is_buyer] = rng.gamma(bt["r"], 1 / bt["alpha"], nb)
    p[is_buyer] = rng.beta(bt["a"], bt["b"], nb)
    nu[is_buyer] = rng.gamma(gg["q"], 1 / gg_v, nb)
    mean_spend = gg["p"] / nu
    # true types by rank of the BTYD draws: rate and spend
    ctype = np.full(n, TYPES.index("window_shopper"))
    ql, qs = _rank01(lam[is_buyer]), _rank01(mean_spend[is_buyer])
    t = np.where(ql < 0.30, np.where(qs >= 0.5, 3, 4),  # gift_buyer or window_shopper
                 np.where(ql < 0.70, 2, np.where(qs >= 0.5, 0, 1)))
    ctype[is_buyer] = t
    # first purchase: acquisition grows over the window; the last two weeks acquire nobody
    u = rng.random(n)
    horizon = clock.span - 14
    birth = horizon * (np.sqrt(1 + 3 * u) - 1)  # density rising 1 -> 2 across the window
    birth = np.where(is_buyer, birth, np.nan)
    lead = rng.exponential(20, n) * (rng.random(n) < 0.6)
    signup = np.where(is_buyer, birth - lead, rng.uniform(-60, clock.span - 1, n))
    weights = np.array([PROFILES[TYPES[k]].category_weights for k in range(len(TYPES))])[:, :n_categories]
    alpha = weights[ctype] * 3.0
    g = rng.gamma(alpha)
    prefs = g / g.sum(axis=1, keepdims=True)
    return Population(n, is_buyer, ctype, lam, p, nu, mean_spend, birth, signup, prefs)


@dataclass
class Purchases:
    customer: np.ndarray  # customer index per purchase
    day: np.ndarray  # calendar day (float) since start
    spend: np.ndarray
    alive_end: np.ndarray  # per customer
    death: np.ndarray  # per customer, calendar day of dropout (NaN if alive or prospect)
    n_purchases: np.ndarray  # per customer, first + repeats inside the window


def draw_purchases(rng: np.random.Generator, pop: Population, clock: Clock) -> Purchases:
    """First purchases and BG/NBD repeat purchases up to the end of the window."""
    b = np.flatnonzero(pop.is_buyer)
    op_birth = clock.to_op(pop.birth[b])
    op_len = clock.cum[-1] - op_birth  # operational days from birth to the end
    lam_day = pop.lam[b] / 7.0
    j = rng.geometric(pop.p[b])  # the repeat purchase after which the customer drops out
    n_window = rng.poisson(lam_day * op_len)
    x = np.minimum(j, n_window)
    alive = n_window < j
    # the first x arrival times of a Poisson process with n_window arrivals on [0, op_len]:
    # uniform order statistics U_(k) = G_k / G_(n+1) with G the cumulative sum of Exp(1)
    owner = np.repeat(np.arange(len(b)), x)
    e = rng.exponential(1.0, int(x.sum()))
    cs = np.cumsum(e)
    starts = np.concatenate([[0], np.cumsum(x)[:-1]])
    base = np.concatenate([[0.0], cs])[starts]
    g = cs - np.repeat(base, x)
    g_last = np.zeros(len(b))
    has = x > 0
    g_last[has] = g[np.cumsum(x)[has] - 1]
    tail = rng.gamma(np.maximum(n_window - x + 1, 1).astype(float))
    total = g_last + tail
    op_times = op_birth[owner] + op_len[owner] * g / total[owner]
    rep_day = clock.to_cal(op_times)
    death = np.full(pop.n, np.nan)
    dead = ~alive & has
    last = np.full(len(b), np.nan)
    last[has] = rep_day[np.cumsum(x)[has] - 1]
    death[b[dead]] = last[dead]
    cust = np.concatenate([b, b[owner]])
    day = np.concatenate([pop.birth[b], rep_day])
    spend = rng.gamma(TRUE_PARAMS["gamma_gamma"]["p"], 1 / pop.nu[cust])
    alive_end = np.zeros(pop.n, dtype=bool)
    alive_end[b] = alive
    n_p = np.zeros(pop.n, dtype=int)
    n_p[b] = 1 + x
    pop.death = death
    order = np.lexsort((cust, day))
    return Purchases(cust[order], day[order], spend[order], alive_end, death, n_p)


def gg_scale(loc: Locale) -> float:
    """Gamma-Gamma v so that the population mean spend per order is the locale's typical basket."""
    typical = float(np.mean([m for m, _ in loc.categories.values()]))
    gg = TRUE_PARAMS["gamma_gamma"]
    return typical * (gg["q"] - 1) / gg["p"]


def draw_products(rng: np.random.Generator, loc: Locale, n_customers: int) -> pd.DataFrame:
    """The catalogue: products per category with lognormal prices around the category median."""
    per_cat = int(np.clip(n_customers // 100, 12, 400))
    rows = []
    for ci, (cat, (median, terms)) in enumerate(loc.categories.items()):
        price = np.round(median * rng.lognormal(0, 0.55, per_cat), 2)
        brand = rng.choice(np.array(loc.brands, dtype=object), per_cat)
        term = rng.choice(np.array(terms, dtype=object), per_cat)
        model = rng.integers(100, 1000, per_cat)
        rows.append(pd.DataFrame({
            "product_id": [f"P{ci + 1}{k:04d}" for k in range(per_cat)],
            "name": [f"{b_} {t_.title()} {m_}" for b_, t_, m_ in zip(brand, term, model)],
            "category": cat,
            "category_index": ci,
            "brand": brand,
            "price": price,
        }))
    return pd.concat(rows, ignore_index=True)


def draw_lines(rng: np.random.Generator, order_customer: np.ndarray, order_total: np.ndarray, prefs: np.ndarray,
               discount_prob: np.ndarray, products: pd.DataFrame) -> pd.DataFrame:
    """Order lines whose values add up to each order's total (vectorised).

    ``order_customer`` is -1 for guests (uniform category preferences). ``discount`` is the
    fraction of the list price taken off; ``unit_price`` is the price paid per unit.
    """
    n_orders = len(order_total)
    k = np.minimum(1 + rng.poisson(0.6, n_orders), 6)
    oi = np.repeat(np.arange(n_orders), k)
    n_cat = prefs.shape[1]
    cust = order_customer[oi]
    pr = np.where(cust[:, None] >= 0, prefs[np.maximum(cust, 0)], 1.0 / n_cat)
    cat = (rng.random(len(oi))[:, None] > np.cumsum(pr, axis=1)).sum(axis=1).clip(0, n_cat - 1)
    by_cat = products.groupby("category_index").indices
    starts = np.array([by_cat[c][0] for c in range(n_cat)])
    sizes = np.array([len(by_cat[c]) for c in range(n_cat)])
    prod_idx = starts[cat] + (rng.random(len(oi)) * sizes[cat]).astype(int)
    lines = pd.DataFrame({"o": oi, "prod": prod_idx})
    # one line per product within an order: merge repeats into a bigger quantity
    qty = rng.choice([1, 1, 1, 1, 1, 1, 1, 1, 2, 3], len(oi))
    lines["quantity"] = qty
    lines = lines.groupby(["o", "prod"], sort=True, as_index=False)["quantity"].sum()
    dprob = np.where(order_customer[lines["o"]] >= 0, discount_prob[np.maximum(order_customer[lines["o"]], 0)], 0.2)
    disc = np.where(rng.random(len(lines)) < dprob, rng.choice([0.1, 0.15, 0.2, 0.3], len(lines)), 0.0)
    list_price = products["price"].to_numpy()[lines["prod"].to_numpy()]
    value = lines["quantity"].to_numpy() * list_price * (1 - disc)
    order_value = np.bincount(lines["o"], weights=value, minlength=n_orders)
    factor = order_total[lines["o"]] / order_value[lines["o"]]
    unit_price = np.round(list_price * (1 - disc) * factor, 2)
    unit_price = np.maximum(unit_price, 0.01)
    lines["line_no"] = lines.groupby("o").cumcount() + 1
    lines["product_id"] = products["product_id"].to_numpy()[lines["prod"].to_numpy()]
    lines["unit_price"] = unit_price
    lines["discount"] = disc
    lines["category_index"] = products["category_index"].to_numpy()[lines["prod"].to_numpy()]
    return lines

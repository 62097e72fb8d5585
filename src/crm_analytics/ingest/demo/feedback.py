"""Reviews and complaint tickets of the demo world.

Reviews: 1–5 stars with a short text in the locale's languages whose sentiment agrees with
the rating, except for a few five-star reviews whose text is a complaint. Returned orders
get low ratings. Per-review truth (sentiment, topic, mismatch) goes to ``truth_reviews.parquet``.

Tickets: customers who later drop out complain far more often (a ticket after the purchase
after which they leave), so complaints carry churn signal, as in real shops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_analytics.ingest.demo.locale import REVIEW_PHRASES, TICKET_CATEGORIES, TICKET_PHRASES, Locale

__all__ = ["draw_reviews", "draw_tickets"]

TOPICS = ("delivery", "price", "quality", "size")


def draw_reviews(rng: np.random.Generator, orders: pd.DataFrame, lines: pd.DataFrame, loc: Locale,
                 span: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reviews of a sample of purchased orders (one product each) and their truth."""
    o = orders[(orders["customer"] >= 0) & orders["status"].isin(["completed", "returned"])]
    o = o[rng.random(len(o)) < 0.12]
    first_line = lines.drop_duplicates("order_id").set_index("order_id")["product_id"]
    returned = (o["status"] == "returned").to_numpy()
    u = rng.random(len(o))
    # rating: returned orders are mostly 1-2 stars
    p_neg = np.where(returned, 0.8, 0.15)
    p_neu = np.where(returned, 0.1, 0.12)
    sentiment = np.where(u < p_neg, "negative", np.where(u < p_neg + p_neu, "neutral", "positive"))
    rating = np.where(sentiment == "negative", rng.choice([1, 2], len(o), p=[0.6, 0.4]),
                      np.where(sentiment == "neutral", 3, rng.choice([4, 5], len(o), p=[0.35, 0.65])))
    langs, shares = zip(*loc.languages)
    lang = rng.choice(np.array(langs, dtype=object), len(o), p=np.array(shares) / sum(shares))
    topic = rng.choice(np.array(TOPICS, dtype=object), len(o))
    mismatch = (sentiment == "negative") & (rng.random(len(o)) < 0.06)
    rating = np.where(mismatch, 5, rating)
    pick = rng.random(len(o))
    text = np.empty(len(o), dtype=object)
    for i in range(len(o)):  # a few thousand short strings; a lookup per review is clearest
        # a mismatch is written as any complaint about its topic, only its stars say five: a model that
        # learns from stars meets such text in the shop's negative reviews, as with real reviews
        options = REVIEW_PHRASES[lang[i]][sentiment[i]][topic[i]]
        text[i] = options[int(pick[i] * len(options))]
    day = np.minimum(o["day"].to_numpy() + rng.uniform(2, 20, len(o)), span - 1e-3)
    reviews = pd.DataFrame({
        "review_id": [f"R{i + 1:07d}" for i in range(len(o))],
        "customer": o["customer"].to_numpy(),
        "product_id": first_line.reindex(o["order_id"]).to_numpy(),
        "order_id": o["order_id"].to_numpy(),
        "day": day,
        "rating": rating.astype(int),
        "text": text,
        "language": lang,
    })
    truth = pd.DataFrame({"review_id": reviews["review_id"], "true_sentiment": sentiment, "topic": topic,
                          "rating_text_mismatch": mismatch})
    return reviews, truth


def draw_tickets(rng: np.random.Generator, orders: pd.DataFrame, death: np.ndarray, loc: Locale,
                 span: float) -> pd.DataFrame:
    """Complaint tickets: 30 % of customers who drop out complain after their last order, 6 % of others."""
    o = orders[(orders["customer"] >= 0) & (orders["status"] != "cancelled")].sort_values(["customer", "day"])
    last = o.drop_duplicates("customer", keep="last")
    dead = ~np.isnan(death[last["customer"].to_numpy()])
    complains = rng.random(len(last)) < np.where(dead, 0.30, 0.06)
    chosen_last = last[complains & dead]
    # customers still alive complain about a random order of theirs
    alive_c = last.loc[complains & ~dead, "customer"].to_numpy()
    pool = o[o["customer"].isin(alive_c)]
    chosen_alive = pool.groupby("customer", sort=True).sample(n=1, random_state=int(rng.integers(2**31)))
    t = pd.concat([chosen_last, chosen_alive]).sort_values(["day", "customer"]).reset_index(drop=True)
    n = len(t)
    opened = np.minimum(t["day"].to_numpy() + rng.uniform(1, 10, n), span - 1e-3)
    hours = rng.lognormal(np.log(30), 0.9, n)
    resolved = opened + hours / 24
    resolved = np.where(resolved < span, resolved, np.nan)
    category = rng.choice(np.array(TICKET_CATEGORIES, dtype=object), n, p=[0.3, 0.2, 0.12, 0.2, 0.1, 0.08])
    lang = loc.languages[0][0]
    sat = np.clip(np.round(4.6 - 0.5 * np.log1p(hours / 24) * 2 + rng.normal(0, 0.8, n)), 1, 5)
    sat = np.where(np.isnan(resolved), np.nan, sat)
    return pd.DataFrame({
        "ticket_id": [f"T{i + 1:06d}" for i in range(n)],
        "customer": t["customer"].to_numpy(),
        "order_id": t["order_id"].to_numpy(),
        "day": opened,
        "resolved_day": resolved,
        "category": category,
        "channel": rng.choice(np.array(["phone", "email", "chat"], dtype=object), n, p=[0.3, 0.3, 0.4]),
        "text": [TICKET_PHRASES[lang][c] for c in category],
        "satisfaction": sat,
    })

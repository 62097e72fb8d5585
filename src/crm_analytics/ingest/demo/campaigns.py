"""Campaigns of the demo world: randomised tests with control groups (one two-arm test with
several treatments), one campaign without a control group, and a true per-customer effect
that depends on the customer's type, age and the offer.

The true effect of customer *i* on conversion inside the attribution window is

``tau_i = alive_i * (e_i * (1 - b_i) - d_i * b_i)``

where ``b_i = 1 - exp(-lam_i * window)`` is the chance they would have bought anyway (BG/NBD,
memoryless), ``e_i`` the chance the message makes them place an extra order and ``d_i`` the
chance it puts them off buying in the window at all. Treated customers get the extra order
(or lose their window orders) by a draw with those chances; ``truth.json`` holds the mean of
``tau_i`` per campaign and arm (the average treatment effect on the customers assigned).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_analytics.ingest.demo.world import PROFILES, TYPES, Clock, Population

__all__ = ["CampaignSpec", "SPECS", "ATTRIBUTION_DAYS", "effects_at_end", "run_campaigns"]

ATTRIBUTION_DAYS = 14.0


@dataclass(frozen=True)
class CampaignSpec:
    key: str
    name: dict[str, str]  # language -> name
    channel: str
    at: float  # share of the window at which it is sent
    arms: dict[str, float]  # arm -> share of eligible customers
    control: float  # share in control (0: no control group)
    offer: str
    cost_per_contact: float  # in units of the locale's typical basket
    fixed_cost: float
    target: str
    reach: float = 1.0  # share of eligible customers contacted at all


SPECS = (
    CampaignSpec("spring_email", {"tr": "Bahar fırsatları e-postası", "en": "Spring offers e-mail"}, "email", 0.22,
                 {"offer": 0.8}, 0.2, "10% off", 0.0004, 0.5, "all consented customers"),
    CampaignSpec("app_push", {"tr": "Uygulama bildirimi", "en": "App push"}, "push", 0.38,
                 {"push": 0.5}, 0.5, "free delivery in the app", 0.0002, 0.3, "app users"),
    CampaignSpec("summer_test", {"tr": "Yaz kampanyası testi", "en": "Summer offer test"}, "email", 0.52,
                 {"discount_15": 1 / 3, "free_shipping": 1 / 3}, 1 / 3, "15% off vs free shipping", 0.0004, 0.8,
                 "all consented customers"),
    CampaignSpec("winback", {"tr": "Geri kazanım e-postası", "en": "Win-back e-mail"}, "email", 0.66,
                 {"winback": 0.5}, 0.5, "20% off comeback", 0.0004, 0.3, "no purchase in 120 days"),
    CampaignSpec("social_ad", {"tr": "Sosyal medya reklamı", "en": "Social media ad"}, "social", 0.76,
                 {"ad": 1.0}, 0.0, "new season", 0.003, 2.0, "consented customers (no control group)", reach=0.3),
    CampaignSpec("black_friday_sms", {"tr": "Efsane Cuma SMS", "en": "Black Friday SMS"}, "sms", 0.91,
                 {"sms": 0.9}, 0.1, "Black Friday", 0.0015, 0.5, "all consented customers"),
)


def _arm_effect(arm: str, channel: str, ctype: np.ndarray, age: np.ndarray, has_app: np.ndarray) -> np.ndarray:
    base = np.array([PROFILES[t].campaign_effect for t in TYPES])[ctype]
    eff = base.copy()
    bargain, gift, loyal, app, window = (ctype == TYPES.index(t) for t in
                                         ("bargain_hunter", "gift_buyer", "loyal_high_spender",
                                          "app_frequent_buyer", "window_shopper"))
    if arm == "discount_15":
        eff = np.where(bargain, base * 1.6, base)
    elif arm == "free_shipping":
        eff = np.where(gift, base * 2.5 + 0.02, np.where(loyal, 0.02, np.where(bargain, base * 0.5, base)))
    elif arm == "push":
        eff = np.where(app, base + 0.03, base) + np.where(age < 30, 0.015, 0) - np.where(age > 55, 0.01, 0)
    elif arm == "winback":
        eff = np.where(base > 0, base * 1.5, base)
    elif arm == "ad":
        eff = base + np.where(age < 30, 0.015, 0.0)
    elif arm == "sms":
        eff = np.where(window, base - 0.03, np.where(loyal, -0.06, base))  # loyal customers dislike SMS
    return np.clip(eff, -0.15, 0.3)


def run_campaigns(rng: np.random.Generator, pop: Population, clock: Clock, start: np.datetime64,
                  purchases: pd.DataFrame, age: np.ndarray, consent: np.ndarray, has_app: np.ndarray,
                  language: str, basket: float) -> dict:
    """Assign, send and apply every campaign.

    ``purchases`` has ``customer`` (index), ``day`` and ``spend``; returns the campaigns and
    assignments tables (numeric times in days), the orders to add, a mask of purchases to
    remove, per-customer true effects and the truth summary.
    """
    n = pop.n
    remove = np.zeros(len(purchases), dtype=bool)
    added, camp_rows, assign_rows, effect_rows, truth = [], [], [], [], {}
    p_day = purchases["day"].to_numpy()
    p_cust = purchases["customer"].to_numpy()
    for ci, spec in enumerate(SPECS):
        day = np.floor(spec.at * clock.span) + 10 / 24
        end = day + ATTRIBUTION_DAYS
        cid = f"CMP{ci + 1:02d}"
        # who is eligible: existing buyers who consented
        elig = pop.is_buyer & (pop.birth < day) & consent
        if spec.channel == "push":
            elig &= has_app
        if spec.key == "winback":
            before = p_day < day
            last = np.full(n, -np.inf)
            np.maximum.at(last, p_cust[before], p_day[before])
            elig &= (day - last) > 120
        idx = np.flatnonzero(elig)
        if spec.reach < 1:
            idx = idx[rng.random(len(idx)) < spec.reach]
        names = list(spec.arms) + (["control"] if spec.control > 0 else [])
        shares = np.array(list(spec.arms.values()) + ([spec.control] if spec.control > 0 else []))
        arm = rng.choice(len(names), len(idx), p=shares / shares.sum())
        alive = np.isnan(pop.death[idx]) | (pop.death[idx] > day)
        window_op = clock.to_op(np.array([end]))[0] - clock.to_op(np.array([day]))[0]
        b = 1 - np.exp(-pop.lam[idx] / 7 * window_op)
        tau = np.zeros(len(idx))
        e_all = np.zeros(len(idx))
        d_all = np.zeros(len(idx))
        for ai, a in enumerate(names):
            if a == "control":
                continue
            eff = _arm_effect(a, spec.channel, pop.ctype[idx], age[idx], has_app[idx])
            e_all = np.where(arm == ai, np.maximum(eff, 0), e_all)
            d_all = np.where(arm == ai, np.maximum(-eff, 0), d_all)
        # the effect a customer would have under each arm (for the ATE per arm)
        arm_truth = {}
        for ai, a in enumerate(names):
            if a == "control":
                continue
            eff = _arm_effect(a, spec.channel, pop.ctype[idx], age[idx], has_app[idx])
            tau_a = alive * (np.maximum(eff, 0) * (1 - b) - np.maximum(-eff, 0) * b)
            arm_truth[a] = float(tau_a.mean()) if len(idx) else 0.0
            tau = np.where(arm == ai, tau_a, tau)
        treated = np.array([names[k] != "control" for k in arm], dtype=bool)
        # apply: extra orders for responders, lost window orders for the put off
        u = rng.random(len(idx))
        extra = treated & alive & (u < e_all)
        off = treated & alive & (u < d_all)
        off_c = idx[off]
        if len(off_c):
            in_win = (p_day >= day) & (p_day < end) & np.isin(p_cust, off_c)
            remove |= in_win
        ec = idx[extra]
        added.append(pd.DataFrame({
            "customer": ec,
            "day": day + rng.uniform(0.02, ATTRIBUTION_DAYS, len(ec)),
            "spend": rng.gamma(6.0, 1 / pop.nu[ec]),
            "campaign": cid,
        }))
        sent = day + rng.uniform(0, 2 / 24, len(idx))
        sent = np.where(treated, sent, np.nan)
        if spec.channel == "email":
            po = np.array([PROFILES[t].open_prob for t in TYPES])[pop.ctype[idx]]
            pc = np.array([PROFILES[t].click_prob for t in TYPES])[pop.ctype[idx]]
        elif spec.channel == "push":
            po, pc = np.full(len(idx), 0.25), np.full(len(idx), 0.3)
        else:  # sms and social: opens are not tracked; clicks on the link are
            po, pc = np.zeros(len(idx)), np.zeros(len(idx))
        opened = treated & (rng.random(len(idx)) < po)
        clicked = opened & (rng.random(len(idx)) < np.where(extra, np.minimum(pc * 2.5, 0.95), pc))
        open_t = np.where(opened, sent + rng.exponential(8 / 24, len(idx)), np.nan)
        click_t = np.where(clicked, open_t + rng.exponential(1 / 24, len(idx)), np.nan)
        variant = np.array(names, dtype=object)[arm]
        assign_rows.append(pd.DataFrame({
            "campaign_id": cid, "customer": idx, "group": np.where(treated, "treatment", "control"),
            "variant": variant, "sent": sent, "opened": open_t, "clicked": click_t,
        }))
        effect_rows.append(pd.DataFrame({
            "campaign_id": cid, "customer": idx, "variant": variant, "alive_at_send": alive,
            "base_conversion": alive * b, "true_effect": tau,
        }))
        n_contacts = int(treated.sum())
        cpc = round(spec.cost_per_contact * basket * 10, 2)
        fixed = round(spec.fixed_cost * basket * 10, 0)
        camp_rows.append({
            "campaign_id": cid, "name": spec.name.get(language, spec.name["en"]), "channel": spec.channel,
            "start": day, "end": end, "offer": spec.offer, "cost_per_contact": cpc, "fixed_cost": fixed,
            "target_segment": spec.target,
        })
        truth[cid] = {
            "key": spec.key, "channel": spec.channel, "has_control": spec.control > 0,
            "arms": list(spec.arms), "n_assigned": int(len(idx)), "n_treated": n_contacts,
            "true_ate": float(tau[treated].mean()) if n_contacts else None,
            "true_ate_by_arm": arm_truth,
            "incremental_orders_added": int(extra.sum()), "customers_put_off": int(off.sum()),
            "attribution_days": ATTRIBUTION_DAYS,
        }
    return {
        "campaigns": pd.DataFrame(camp_rows),
        "assignments": pd.concat(assign_rows, ignore_index=True),
        "added": pd.concat(added, ignore_index=True),
        "remove": remove,
        "effects": pd.concat(effect_rows, ignore_index=True),
        "truth": truth,
    }


def effects_at_end(pop: Population, clock: Clock, alive_end: np.ndarray, age: np.ndarray,
                   has_app: np.ndarray) -> pd.DataFrame:
    """The true effect every buyer would show if each randomised campaign arm were sent again on the
    day after the data end: ``tau = alive_end * (e * (1 - b) - d * b)`` as in :func:`run_campaigns`,
    with ``b`` the chance of buying in the attribution window anyway (the window's intensity taken
    as that of the last days of the data). Draws nothing, so the world is unchanged; the
    next-best-action report checks its expected value against it.

    Returns a long frame: ``customer`` (index into the population), ``campaign_id``, ``variant``,
    ``base_conversion``, ``true_effect``.
    """
    buyers = np.flatnonzero(pop.is_buyer)
    window_op = ATTRIBUTION_DAYS * float(clock.intensity[-int(ATTRIBUTION_DAYS):].mean())
    alive = alive_end[buyers].astype(float)
    b = 1 - np.exp(-pop.lam[buyers] / 7 * window_op)
    rows = []
    for ci, spec in enumerate(SPECS):
        if spec.control <= 0:
            continue
        for arm in spec.arms:
            eff = _arm_effect(arm, spec.channel, pop.ctype[buyers], age[buyers], has_app[buyers])
            tau = alive * (np.maximum(eff, 0) * (1 - b) - np.maximum(-eff, 0) * b)
            rows.append(pd.DataFrame({"customer": buyers, "campaign_id": f"CMP{ci + 1:02d}", "variant": arm,
                                      "base_conversion": alive * b, "true_effect": tau}))
    return pd.concat(rows, ignore_index=True)

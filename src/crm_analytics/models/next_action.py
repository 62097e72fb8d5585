"""Next best action: for each consented customer one action — or none — chosen by expected incremental margin.

An *action* is something the shop has tested in a randomised campaign: a product e-mail, a discount,
a win-back offer. The params name, for each action, the campaign and arm that measured it, the share
of the order value it gives away, and who may receive it (``actions``)::

    actions:
      discount: {campaign: CMP03, arm: discount_15, discount: 0.15}
      winback_offer: {campaign: CMP04, arm: winback, discount: 0.20, audience: churn_risk}

For customer *i* and action *a* the expected incremental margin inside the attribution window is

``value = uplift × s × (margin_rate − discount) − p0 × s × discount − cost_per_contact``

* ``uplift`` — the increase in the chance of ordering, from an uplift model trained on the action's
  randomised campaign (features at the campaign's start) and applied to today's features
  (:func:`learn_uplift`);
* ``s`` — the customer's expected order value (Gamma-Gamma, ``expected_spend`` of ``03_clv_churn``);
* ``p0`` — the chance they order in the window anyway (their BG/NBD expected purchases, scaled to the
  window): the discount given on orders that would have come without the offer is a cost too;
* ``cost_per_contact`` — from the campaigns table.

The customer gets the action of highest value when it is positive, and "nothing" otherwise; also
"nothing" when they reached the contact cap or every paying action is on a channel they do not
engage with (:func:`choose`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, ParamsError

__all__ = [
    "AUDIENCES",
    "NOTHING",
    "Action",
    "action_values",
    "allowed_actions",
    "calibration_slope",
    "check_actions",
    "choose",
    "learn_all",
    "learn_uplift",
    "order_chance",
    "parse_actions",
    "plan",
    "policy_totals",
    "summary",
    "true_uplift",
    "truth_check",
]

NOTHING = "nothing"
#: who may receive an action: everyone consented, or only those ``03_clv_churn`` flags at high churn risk
AUDIENCES = ("everyone", "churn_risk")
_FIELDS = {"campaign", "arm", "discount", "audience"}


@dataclass(frozen=True)
class Action:
    """One tested action: the campaign and arm that measured it, and what it costs."""

    name: str
    campaign_id: str
    campaign: str  # the campaign's name, for the report
    arm: str
    channel: str
    discount: float
    cost_per_contact: float
    audience: str = "everyone"


def check_actions(spec: Any) -> None:
    """Check the shape of the ``actions`` parameter (the data are checked by :func:`parse_actions`).

    Raises
    ------
    ParamsError
        Saying which action and field is wrong and what it may be.

    Examples
    --------
    >>> check_actions({"discount": {"campaign": "CMP03", "arm": "discount_15", "discount": 0.15}})
    >>> check_actions({"nothing": {"campaign": "CMP03", "arm": "a"}})
    Traceback (most recent call last):
    ...
    crm_analytics.errors.ParamsError: actions: 'nothing' is the name of doing nothing; name the action otherwise
    """
    if not isinstance(spec, Mapping):
        raise ParamsError(f"actions must be a mapping {{action: {{campaign, arm, discount, audience}}}}, got {spec!r}")
    for name, a in spec.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ParamsError(f"actions: name {name!r} must be a snake_case word such as product_email")
        if name == NOTHING:
            raise ParamsError("actions: 'nothing' is the name of doing nothing; name the action otherwise")
        if not isinstance(a, Mapping):
            raise ParamsError(f"actions.{name} must be a mapping with campaign and arm, got {a!r}")
        unknown = set(a) - _FIELDS
        if unknown:
            raise ParamsError(f"actions.{name}: unknown field(s) {sorted(unknown)}; fields are {sorted(_FIELDS)}")
        for key in ("campaign", "arm"):
            if not isinstance(a.get(key), str) or not a.get(key):
                raise ParamsError(f"actions.{name}.{key} must name the tested campaign and its treatment arm "
                                  f"(e.g. campaign: CMP03, arm: discount_15), got {a.get(key)!r}")
        d = a.get("discount", 0.0)
        if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d < 1:
            raise ParamsError(f"actions.{name}.discount must be the share of the order value given away, "
                              f"a number in [0, 1), got {d!r}")
        if a.get("audience", "everyone") not in AUDIENCES:
            raise ParamsError(f"actions.{name}.audience must be one of {list(AUDIENCES)}, got {a.get('audience')!r}")


def parse_actions(spec: Mapping[str, Mapping[str, Any]], campaigns: pd.DataFrame | None,
                  assignments: pd.DataFrame | None, *, assumed_cost_per_contact: float = 0.0) -> list[Action]:
    """The actions of *spec*, each tied to a randomised campaign arm of the data.

    ``campaign`` may be the campaign's id or its name. The campaign must have a control group and the
    arm must be one of its treatment variants.

    Raises
    ------
    ParamsError
        For a campaign or arm the data do not have (naming those it has), or a campaign without a
        control group (its uplift cannot be measured).
    """
    check_actions(spec)
    if not spec:
        return []
    if campaigns is None or assignments is None or not len(assignments):
        raise ParamsError("actions are set but this dataset has no campaigns or campaign assignments: an action's "
                          "uplift is learnt from a randomised campaign; remove actions from the params file")
    variant = assignments["variant"].fillna(assignments["group"]) if "variant" in assignments else assignments["group"]
    arms = pd.DataFrame({"campaign_id": assignments["campaign_id"], "group": assignments["group"], "variant": variant})
    out = []
    for name, a in spec.items():
        hit = campaigns[(campaigns["campaign_id"].astype(str) == a["campaign"])
                        | (campaigns.get("name", pd.Series(index=campaigns.index, dtype=object)).astype(str)
                           == a["campaign"])]
        if hit.empty:
            known = ", ".join(f"{i} ({n})" for i, n in zip(campaigns["campaign_id"], campaigns.get(
                "name", campaigns["campaign_id"])))
            raise ParamsError(f"actions.{name}.campaign: no campaign {a['campaign']!r}; campaigns are {known}")
        row = hit.iloc[0]
        rows = arms[arms["campaign_id"] == row["campaign_id"]]
        if not (rows["group"] == "control").any():
            raise ParamsError(f"actions.{name}.campaign: campaign {row['campaign_id']} has no control group, so its "
                              "uplift cannot be measured; name a randomised campaign")
        treated = sorted(rows.loc[rows["group"] == "treatment", "variant"].astype(str).unique())
        if a["arm"] not in treated:
            raise ParamsError(f"actions.{name}.arm: campaign {row['campaign_id']} has no treatment arm {a['arm']!r}; "
                              f"its arms are {treated}")
        cost = row.get("cost_per_contact")
        cost = float(cost) if cost is not None and pd.notna(cost) else float(assumed_cost_per_contact)
        out.append(Action(name=name, campaign_id=str(row["campaign_id"]), campaign=str(row.get("name", "")),
                          arm=a["arm"], channel=str(row.get("channel", "")), discount=float(a.get("discount", 0.0)),
                          cost_per_contact=cost, audience=a.get("audience", "everyone")))
    return out


def learn_uplift(outcomes: pd.DataFrame, features: pd.DataFrame, action: Action, current: pd.DataFrame, *,
                 test_share: float = 0.3, seed: int = 0) -> dict[str, Any]:
    """Learn who responds to *action* on its campaign and score today's customers.

    Both uplift models of ``04_campaign_roi`` (two-model and transformed outcome) are trained on a
    share of the campaign's customers (the action's arm against control) and compared by the Qini
    coefficient on the held-out rest — against random targeting, so the report can show whether the
    ranking carries information. The better one is refitted on every customer of the campaign and
    applied to *current* (today's :func:`crm_analytics.models.attribution.snapshot_features`).

    Parameters
    ----------
    outcomes : DataFrame
        :func:`crm_analytics.models.attribution.campaign_outcomes` (campaign_id, customer_id, group, variant,
        converted).
    features : DataFrame
        Features at the campaign's start, indexed by customer_id
        (:func:`crm_analytics.models.attribution.uplift_features`).

    Returns
    -------
    dict
        ``uplift`` (Series over *current*'s index, calibrated: the campaign's measured lift plus the
        model's deviation from its mean times :func:`calibration_slope` of out-of-fold predictions),
        ``method``, ``qini``, ``qini_random``, ``n_treatment``, ``n_control``, ``observed_lift``
        (treatment minus control conversion), ``calibration_slope``.
    """
    from sklearn.model_selection import train_test_split

    from crm_analytics.models import campaigns as cmp

    o = outcomes[(outcomes["campaign_id"] == action.campaign_id)
                 & ((outcomes["variant"] == action.arm) | (outcomes["group"] == "control"))]
    o = o.drop_duplicates("customer_id").set_index("customer_id")
    X = features.reindex(o.index)
    t = (o["group"] == "treatment").astype(int).to_numpy()
    y = o["converted"].astype(int).to_numpy()
    if t.sum() < 20 or (1 - t).sum() < 20:
        raise DataContractError(f"action {action.name}: campaign {action.campaign_id} arm {action.arm} has "
                                f"{int(t.sum())} treated and {int((1 - t).sum())} control customers; at least 20 "
                                "of each are needed to learn who responds")
    methods = {"two-model": cmp.two_model_uplift, "transformed outcome": cmp.class_transformation_uplift}
    tr, te = train_test_split(np.arange(len(X)), test_size=test_share, random_state=seed, stratify=t)
    qini = {m: cmp.qini_coefficient(y[te], t[te], f(X.iloc[tr], y[tr], t[tr], X.iloc[te], seed=seed))
            for m, f in methods.items()}
    rng = np.random.default_rng(seed)
    q_random = float(np.mean([cmp.qini_coefficient(y[te], t[te], rng.random(len(te))) for _ in range(50)]))
    method = max(qini, key=qini.get)
    ate = float(y[t == 1].mean() - y[t == 0].mean())
    oof = _out_of_fold(methods[method], X, y, t, seed=seed)
    slope = calibration_slope(oof, y, t)
    now = current.reindex(columns=X.columns)
    score = methods[method](X, y, t, now, seed=seed)
    calibrated = ate + slope * (score - oof.mean())
    return {"uplift": pd.Series(np.clip(calibrated, -1, 1), index=current.index, name=action.name),
            "method": method, "qini": float(qini[method]), "qini_random": q_random, "n_treatment": int(t.sum()),
            "n_control": int((1 - t).sum()), "observed_lift": ate, "calibration_slope": slope}


def _out_of_fold(method: Any, X: pd.DataFrame, y: np.ndarray, t: np.ndarray, *, seed: int, folds: int = 5
                 ) -> np.ndarray:
    """Each customer's uplift predicted by a model that did not see them (stratified *folds*-fold)."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros(len(X))
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, t):
        out[te] = method(X.iloc[tr], y[tr], t[tr], X.iloc[te], seed=seed)
    return out


def calibration_slope(score: np.ndarray, y: np.ndarray, t: np.ndarray, *, bins: int = 5) -> float:
    """How much of the predicted spread in uplift is real: the weighted least-squares slope of the
    observed lift (treatment minus control conversion) on the mean predicted uplift across *bins*
    quantile bins of out-of-fold predictions, clipped to [0, 1].

    A model that ranks customers perfectly and at the right scale has slope 1; one whose spread is
    noise has slope 0, and its predictions collapse to the campaign's measured lift. Picking each
    customer's best action from raw predictions would pick the noise (the winner's curse).
    """
    score, y, t = np.asarray(score, float), np.asarray(y, float), np.asarray(t, int)
    edges = np.unique(np.quantile(score, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    b = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, len(edges) - 2)
    xs, ys, ws = [], [], []
    for k in range(len(edges) - 1):
        m = b == k
        nt, nc = int((m & (t == 1)).sum()), int((m & (t == 0)).sum())
        if nt == 0 or nc == 0:
            continue
        xs.append(score[m].mean())
        ys.append(y[m & (t == 1)].mean() - y[m & (t == 0)].mean())
        ws.append(1 / (1 / nt + 1 / nc))
    if len(xs) < 2:
        return 0.0
    x, yy, w = np.array(xs), np.array(ys), np.array(ws)
    xm, ym = np.average(x, weights=w), np.average(yy, weights=w)
    var = np.sum(w * (x - xm) ** 2)
    return float(np.clip(np.sum(w * (x - xm) * (yy - ym)) / var, 0, 1)) if var > 0 else 0.0


def learn_all(outcomes: pd.DataFrame, tables: dict[str, pd.DataFrame], actions: list[Action],
              current: pd.DataFrame, *, test_share: float = 0.3, seed: int = 0
              ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """:func:`learn_uplift` for every action.

    Returns
    -------
    tuple
        ``(uplift, models, skipped)``: uplift per customer (rows of *current*) × learnt action; one row
        per learnt action (campaign, arm, channel, method, held-out Qini against random, customers); and
        the actions that could not be learnt, each with the reason (too few customers in the test).
    """
    from crm_analytics.models.attribution import uplift_features

    uplift, rows, skipped = {}, [], {}
    features: dict[str, pd.DataFrame] = {}
    for a in actions:
        if a.campaign_id not in features:
            features[a.campaign_id] = uplift_features(tables, a.campaign_id)
        try:
            fit = learn_uplift(outcomes, features[a.campaign_id], a, current, test_share=test_share, seed=seed)
        except DataContractError as exc:
            skipped[a.name] = str(exc)
            continue
        uplift[a.name] = fit.pop("uplift")
        rows.append({"action": a.name, "campaign": a.campaign, "arm": a.arm, "channel": a.channel,
                     "discount": a.discount, "cost_per_contact": a.cost_per_contact, **fit})
    models = pd.DataFrame(rows, columns=["action", "campaign", "arm", "channel", "discount", "cost_per_contact",
                                         "method", "qini", "qini_random", "n_treatment", "n_control",
                                         "observed_lift", "calibration_slope"])
    return pd.DataFrame(uplift, index=current.index), models.set_index("action"), skipped


def order_chance(clv: pd.DataFrame, window_days: float) -> pd.Series:
    """Chance each customer orders in the next *window_days* without any contact, from the expected
    purchases of ``03_clv_churn`` (``expected_purchases_<N>d``) scaled to the window: ``1 − exp(−E × w / N)``."""
    cols = [c for c in clv.columns if re.fullmatch(r"expected_purchases_\d+d", c)]
    if not cols:
        raise DataContractError("clv.parquet has no expected_purchases_<N>d column; run 03_clv_churn again")
    horizon = int(cols[0].split("_")[-1][:-1])
    e = clv[cols[0]].clip(lower=0).fillna(0)
    return (1 - np.exp(-e * window_days / horizon)).rename("order_chance")


def action_values(uplift: pd.DataFrame, actions: list[Action], order_value: pd.Series, order_chance_: pd.Series, *,
                  margin_rate: float) -> pd.DataFrame:
    """Expected incremental margin of every action for every customer (the module's formula); same
    shape as *uplift* (customers × action names; actions without a column in *uplift* are left out)."""
    s = order_value.reindex(uplift.index)
    p0 = order_chance_.reindex(uplift.index).fillna(0)
    out = pd.DataFrame(index=uplift.index)
    for a in [a for a in actions if a.name in uplift]:
        u = uplift[a.name]
        out[a.name] = u * s * (margin_rate - a.discount) - p0 * s * a.discount - a.cost_per_contact
    return out


def choose(values: pd.DataFrame, *, allowed: pd.DataFrame, capped: pd.Series) -> pd.DataFrame:
    """One action per customer: the allowed action of highest positive value, else "nothing".

    Parameters
    ----------
    values : DataFrame
        :func:`action_values` (customers × actions).
    allowed : DataFrame of bool
        Same shape: the customer is in the action's audience, reachable on its channel and engages
        with it at least at the relevance threshold.
    capped : Series of bool
        Customers who reached the contact cap.

    Returns
    -------
    DataFrame
        ``action``, ``expected_incremental_margin`` (0 for nothing), ``reason``.
    """
    allowed = allowed.reindex(index=values.index, columns=values.columns).fillna(False).astype(bool)
    capped = capped.reindex(values.index).fillna(False).astype(bool)
    v = values.where(allowed)
    best = v.fillna(-np.inf).to_numpy()
    k = best.argmax(axis=1) if values.shape[1] else np.zeros(len(values), dtype=int)
    top = best[np.arange(len(values)), k] if values.shape[1] else np.full(len(values), -np.inf)
    pays_any = (values.fillna(-np.inf).to_numpy() > 0).any(axis=1) if values.shape[1] else np.zeros(len(values), bool)
    send = (top > 0) & ~capped.to_numpy()
    names = np.array(values.columns, dtype=object)
    action = np.where(send, names[k] if len(names) else NOTHING, NOTHING)
    reason = np.select(
        [send, capped.to_numpy() & (top > 0), pays_any & ~(top > 0)],
        ["highest expected margin", "contact cap reached in the period",
         "the actions that would pay are not relevant to them (channel not used or engagement below threshold)"],
        "no action is expected to pay for itself")
    return pd.DataFrame({"action": action, "expected_incremental_margin": np.where(send, top, 0.0),
                         "reason": reason}, index=values.index)


def policy_totals(values: pd.DataFrame, chosen: pd.DataFrame, allowed: pd.DataFrame) -> dict[str, float]:
    """Expected total margin of the chosen actions against sending everyone every action they may receive,
    and against the best single action sent to everyone in its audience."""
    allowed = allowed.reindex(index=values.index, columns=values.columns).fillna(False).astype(bool)
    everything = float(values.where(allowed).sum().sum())
    per_action = values.where(allowed).sum()
    return {"next_best_action": float(chosen["expected_incremental_margin"].sum()),
            "send_everyone_everything": everything,
            "best_single_action": str(per_action.idxmax()) if len(per_action) else NOTHING,
            "best_single_action_total": float(per_action.max()) if len(per_action) else 0.0}


def summary(chosen: pd.DataFrame, order: list[str]) -> dict[str, dict[str, float]]:
    """The ``next_best_action`` metrics: action → customers and expected incremental margin, in *order*
    (then "nothing")."""
    g = chosen.groupby("action")["expected_incremental_margin"].agg(["size", "sum"])
    return {a: {"customers": int(g["size"].get(a, 0)), "expected_incremental_margin": float(g["sum"].get(a, 0.0))}
            for a in [*order, NOTHING]}


def truth_check(values_model: pd.DataFrame, values_true: pd.DataFrame, chosen: pd.DataFrame,
                allowed: pd.DataFrame, uplift_model: pd.DataFrame, uplift_true: pd.DataFrame) -> dict[str, Any]:
    """The policy's expected value against the value it really has in a generated world.

    *values_true* is :func:`action_values` with the world's true uplift in place of the model's (the
    other terms as estimated). Returns the expected and true totals of the chosen policy, of sending
    everyone everything and of the oracle (each customer's truly best action), and per action the
    customers chosen, their mean predicted and true uplift and the rank correlation of predicted with
    true uplift over all customers.
    """
    allowed = allowed.reindex(index=values_model.index, columns=values_model.columns).fillna(False).astype(bool)
    vt = values_true.reindex(index=values_model.index, columns=values_model.columns)
    col = pd.Index(vt.columns).get_indexer(chosen["action"])
    picked = vt.to_numpy()[np.arange(len(vt)), np.clip(col, 0, None)] if vt.shape[1] else np.zeros(len(vt))
    true_nba = float(np.nansum(np.where(col >= 0, picked, 0.0)))
    oracle = vt.where(allowed).clip(lower=0).max(axis=1).fillna(0).sum()
    rows = []
    for a in values_model.columns:
        who = chosen.index[chosen["action"] == a]
        um, ut = uplift_model[a], uplift_true[a].reindex(uplift_model.index)
        ok = ut.notna()
        varies = ok.sum() > 2 and um[ok].nunique() > 1 and ut[ok].nunique() > 1
        rows.append({"action": a, "customers": len(who),
                     "predicted_uplift": float(um.reindex(who).mean()) if len(who) else float("nan"),
                     "true_uplift": float(ut.reindex(who).mean()) if len(who) else float("nan"),
                     "rank_correlation": float(um[ok].corr(ut[ok], method="spearman")) if varies else float("nan")})
    return {"expected_total": float(chosen["expected_incremental_margin"].sum()), "true_total": true_nba,
            "send_everyone_everything_expected": float(values_model.where(allowed).sum().sum()),
            "send_everyone_everything_true": float(vt.where(allowed).sum().sum()),
            "oracle_true_total": float(oracle), "by_action": rows}


def allowed_actions(actions: list[Action], customers: pd.Index, *, churn_risk: pd.Series,
                    engagement: pd.DataFrame, reachable: pd.DataFrame, min_relevance: float) -> pd.DataFrame:
    """Which action may go to whom (customers × action names): the customer is in the action's audience
    (win-back offers only to those ``03_clv_churn`` puts at high churn risk), reachable on its channel,
    and engages with that channel at least at *min_relevance* (``engagement_<channel>`` of
    :func:`crm_analytics.models.relevance.relevance_table`; unknown engagement does not block)."""
    out = pd.DataFrame(index=customers)
    high = churn_risk.reindex(customers).astype(str).eq("high")
    for a in actions:
        ok = pd.Series(True, index=customers) if a.audience == "everyone" else high
        if a.channel in reachable:
            ok &= reachable[a.channel].reindex(customers).fillna(False).astype(bool)
        col = f"engagement_{a.channel}"
        if col in engagement:
            e = engagement[col].reindex(customers)
            ok &= e.isna() | (e >= min_relevance)
        out[a.name] = ok.to_numpy()
    return out


def plan(actions: list[Action], tables: dict[str, pd.DataFrame], clv: pd.DataFrame, customers: pd.Index,
         as_of: pd.Timestamp, *, engagement: pd.DataFrame, reachable: pd.DataFrame, capped: pd.Series,
         margin_rate: float, attribution_days: int, min_relevance: float, test_share: float = 0.3, seed: int = 0
         ) -> dict[str, Any]:
    """The whole next-best-action decision for *customers* (consented, with a ``03_clv_churn`` row).

    Returns
    -------
    dict
        ``uplift``, ``values``, ``allowed`` (customers × actions), ``models`` and ``skipped``
        (:func:`learn_all`), ``chosen`` (:func:`choose`), ``summary`` (:func:`summary`), ``totals``
        (:func:`policy_totals`), ``order_value`` and ``order_chance`` (per customer).
    """
    from crm_analytics.models.attribution import campaign_outcomes, snapshot_features

    outcomes = campaign_outcomes(tables, attribution_days=attribution_days)
    now = snapshot_features(tables, customers, as_of)
    uplift, models, skipped = learn_all(outcomes, tables, actions, now, test_share=test_share, seed=seed)
    value = clv["expected_spend"].reindex(customers)
    value = value.fillna(value.median())
    chance = order_chance(clv, attribution_days).reindex(customers).fillna(0)
    values = action_values(uplift, actions, value, chance, margin_rate=margin_rate)
    learnt = [a for a in actions if a.name in values]
    allowed = allowed_actions(learnt, customers, churn_risk=clv.get("churn_risk", pd.Series(dtype=object)),
                              engagement=engagement, reachable=reachable, min_relevance=min_relevance)
    chosen = choose(values, allowed=allowed, capped=capped)
    return {"uplift": uplift, "values": values, "allowed": allowed, "models": models, "skipped": skipped,
            "chosen": chosen, "summary": summary(chosen, [a.name for a in learnt]),
            "totals": policy_totals(values, chosen, allowed), "order_value": value, "order_chance": chance}


def true_uplift(effects: pd.DataFrame, actions: list[Action], customers: pd.Index) -> pd.DataFrame:
    """The generated world's true uplift of each action's arm for *customers* (``truth_effects_at_end``),
    customers × action names."""
    out = pd.DataFrame(index=customers)
    for a in actions:
        e = effects[(effects["campaign_id"] == a.campaign_id) & (effects["variant"] == a.arm)]
        out[a.name] = e.drop_duplicates("customer_id").set_index("customer_id")["true_effect"].reindex(customers)
    return out

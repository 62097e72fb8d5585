"""What notebook ``06_personalisation`` shows and writes: the recommenders side by side with plain
labels, the metrics of issue 16 (``models.<name>.hit_rate_at_10`` …), and the exports — every
customer's recommendations as parquet, and a CSV of consented customers an e-mail tool can import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from crm_analytics import i18n
from crm_analytics.ingest.privacy import marketing_consent
from crm_analytics.models.recommend import ALS, EASE, ItemKNN, Popularity, product_names, reason_text

__all__ = ["MODEL_LABELS", "SETTING_LABELS", "model_label", "reason_counts", "default_grids", "baseline", "metrics_table", "tuning_table", "model_metrics", "rules_table", "export_recommendations"]

#: models as a reader names them: the method's own name with what it does
MODEL_LABELS = {"popularity": "most popular products (baseline)",
                "item_knn": "ItemKNN: products bought by the same customers",
                "als": "ALS: matrix factorisation of purchases",
                "ease": "EASE: linear item-to-item model"}

#: hyperparameters of :func:`default_grids` as a reader reads a setting (``{value}`` is the value tried)
SETTING_LABELS = {"k": "{value} neighbours", "factors": "{value} latent factors",
                  "l2": "regularisation (L2) {value}"}


def default_grids(seed: int = 0) -> dict[str, tuple[Any, dict[str, list]]]:
    """The models the report compares and the small grid each is tuned over on the validation split."""
    return {"item_knn": (ItemKNN(), {"k": [50, 200]}),
            "als": (ALS(random_state=seed), {"factors": [32, 64]}),
            "ease": (EASE(), {"l2": [200.0, 1000.0]})}


def baseline() -> Popularity:
    """The baseline every model is compared with."""
    return Popularity()


def model_label(name: str) -> str:
    """A recommender as the reader names it, in the report language (:data:`MODEL_LABELS`; the code
    name when unknown)."""
    return i18n.t(MODEL_LABELS[name]) if name in MODEL_LABELS else name


def metrics_table(metrics: pd.DataFrame, k: int, baseline: str = "popularity") -> pd.DataFrame:
    """:func:`crm_analytics.models.recommend_eval.evaluate_models` metrics, one row per recommender (its
    reader's name); shares as fractions (``hit_rate``, its interval ``hit_rate_low``/``hit_rate_high``,
    ``precision``, ``recall``, ``coverage``), ``ndcg`` (0–1), ``novelty`` (bits) and
    ``beats_baseline`` (yes/no; missing for the *baseline* itself). *k* is the length of the lists."""
    out = pd.DataFrame({
        "hit_rate": metrics["hit_rate"], "hit_rate_low": metrics["hit_rate_low"],
        "hit_rate_high": metrics["hit_rate_high"], "precision": metrics["precision"], "recall": metrics["recall"],
        "ndcg": metrics["ndcg"], "coverage": metrics["coverage"], "novelty": metrics["novelty"],
        "beats_baseline": metrics["beats_baseline"].astype(object).where(metrics.index != baseline),
    })
    out.index = [model_label(m) for m in metrics.index]
    return out.rename_axis("recommender")


def _setting(params: dict) -> str:
    parts = [i18n.t(SETTING_LABELS[a], value=b) if a in SETTING_LABELS else f"{a} = {b:g}" if isinstance(b, float)
             else f"{a} = {b}" for a, b in dict(params).items()]
    return ", ".join(parts) or "–"


def tuning_table(tuning: pd.DataFrame, k: int) -> pd.DataFrame:
    """:func:`crm_analytics.models.recommend_eval.tune`'s table: each recommender and setting tried, with its
    hit rate, precision and recall (shares) on the validation weeks."""
    out = pd.DataFrame({"recommender": tuning["model"].map(model_label).to_numpy(),
                        "setting": tuning["params"].map(_setting).to_numpy(), "hit_rate": tuning["hit_rate"].to_numpy(),
                        "precision": tuning["precision"].to_numpy(), "recall": tuning["recall"].to_numpy()})
    return out.set_index(["recommender", "setting"])


def model_metrics(metrics: pd.DataFrame, k: int) -> dict[str, dict[str, Any]]:
    """``models.<name>`` of the metrics file: the keys issue 16 names, at *k*."""
    out = {}
    for name, r in metrics.iterrows():
        out[str(name)] = {f"hit_rate_at_{k}": r["hit_rate"], f"hit_rate_at_{k}_ci_low": r["hit_rate_low"],
                          f"hit_rate_at_{k}_ci_high": r["hit_rate_high"], f"precision_at_{k}": r["precision"],
                          f"recall_at_{k}": r["recall"], f"ndcg_at_{k}": r["ndcg"], "coverage": r["coverage"],
                          "novelty": r["novelty"], "beats_baseline": bool(r["beats_baseline"])
                          if pd.notna(r["beats_baseline"]) else None}
    return out


def rules_table(rules: pd.DataFrame, products: pd.DataFrame | None, n: int) -> pd.DataFrame:
    """The strongest "frequently bought together" rules (by lift) with product names: ``bought_product``,
    ``also_bought`` (index), ``baskets_with_both``, ``rule_confidence`` (share of the baskets with
    the first product that hold the second) and ``rule_lift``."""
    names = product_names(products)
    top = rules.sort_values(["lift", "baskets"], ascending=False).head(n)
    return pd.DataFrame({
        "bought_product": top["antecedent_product_id"].map(names).fillna(top["antecedent_product_id"]).to_numpy(),
        "also_bought": top["consequent_product_id"].map(names).fillna(top["consequent_product_id"]).to_numpy(),
        "baskets_with_both": top["baskets"].to_numpy(), "rule_confidence": top["confidence"].to_numpy(),
        "rule_lift": top["lift"].to_numpy()}).set_index(["bought_product", "also_bought"])


def reason_counts(recs: pd.DataFrame, products: pd.DataFrame | None = None) -> pd.DataFrame:
    """How many recommendations carry each kind of reason (``because you bought …`` for every product
    named, ``popular``, …), in the report language: ``recommendations`` by ``recommendation_reason``."""
    reason = reason_text(recs, products).astype(str).str.replace(r"^because you bought .*", "because you bought …",
                                                                 regex=True)
    counts = reason.map(i18n.t).value_counts()
    return counts.rename("recommendations").rename_axis("recommendation_reason").to_frame()


def export_recommendations(recs: pd.DataFrame, products: pd.DataFrame | None, customers: pd.DataFrame | None,
                           processed_dir: str | Path, exports_dir: str | Path) -> dict[str, int]:
    """Write every customer's recommendations to ``<processed_dir>/recommendations.parquet`` and the
    consented customers' to ``<exports_dir>/recommendations.csv`` (one row per customer and rank:
    ``customer_id, rank, product_id, product_name, reason``; pseudonymous ids, no personal column).
    A missing consent counts as no consent.

    Returns
    -------
    dict
        ``customers``, ``rows``, ``consented_customers``, ``consented_rows``.
    """
    processed, exports = Path(processed_dir), Path(exports_dir)
    processed.mkdir(parents=True, exist_ok=True)
    exports.mkdir(parents=True, exist_ok=True)
    names = product_names(products)
    out = recs.assign(product_name=recs["product_id"].map(names), reason_text=reason_text(recs, products))
    out.to_parquet(processed / "recommendations.parquet", index=False)
    ok = out["customer_id"].map(marketing_consent(customers)).fillna(False).astype(bool)
    csv = out.loc[ok, ["customer_id", "rank", "product_id", "product_name", "reason_text"]].rename(
        columns={"reason_text": "reason"}).sort_values(["customer_id", "rank"])
    csv.to_csv(exports / "recommendations.csv", index=False)
    return {"customers": int(out["customer_id"].nunique()), "rows": int(len(out)),
            "consented_customers": int(csv["customer_id"].nunique()), "consented_rows": int(len(csv))}

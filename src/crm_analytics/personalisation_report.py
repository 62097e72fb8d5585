"""What notebook ``06_personalisation`` shows and writes: the recommenders side by side with plain
labels, the metrics of issue 16 (``models.<name>.hit_rate_at_10`` …), and the exports — every
customer's recommendations as parquet, and a CSV of consented customers an e-mail tool can import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from crm_analytics.privacy import marketing_consent
from crm_analytics.recommend import ALS, EASE, ItemKNN, Popularity, product_names, reason_text

__all__ = ["MODEL_LABELS", "default_grids", "baseline", "metrics_table", "tuning_table", "model_metrics", "rules_table", "export_recommendations"]

#: models as a reader names them
MODEL_LABELS = {"popularity": "most popular (baseline)", "item_knn": "bought together (item to item)",
                "als": "matrix factorisation (ALS)", "ease": "linear item model (EASE)"}


def default_grids(seed: int = 0) -> dict[str, tuple[Any, dict[str, list]]]:
    """The models the report compares and the small grid each is tuned over on the validation split."""
    return {"item_knn": (ItemKNN(), {"k": [50, 200]}),
            "als": (ALS(random_state=seed), {"factors": [32, 64]}),
            "ease": (EASE(), {"l2": [200.0, 1000.0]})}


def baseline() -> Popularity:
    """The baseline every model is compared with."""
    return Popularity()


def metrics_table(metrics: pd.DataFrame, k: int) -> pd.DataFrame:
    """:func:`crm_analytics.recommend_eval.evaluate_models` metrics with reader's labels."""
    out = pd.DataFrame({
        f"hit rate @{k}": metrics["hit_rate"], "95 % interval: low": metrics["hit_rate_low"],
        "95 % interval: high": metrics["hit_rate_high"], f"precision @{k}": metrics["precision"],
        f"recall @{k}": metrics["recall"], f"NDCG @{k}": metrics["ndcg"], "catalogue coverage": metrics["coverage"],
        "novelty (bits)": metrics["novelty"], "beats the baseline": metrics["beats_baseline"].map(
            {True: "yes", False: "no"}).fillna("—"),
    })
    out.index = [MODEL_LABELS.get(m, m) for m in metrics.index]
    return out.rename_axis("model")


def tuning_table(tuning: pd.DataFrame, k: int) -> pd.DataFrame:
    """:func:`crm_analytics.recommend_eval.tune`'s table: each model and setting tried, with its hit rate,
    precision and recall @k on the validation weeks."""
    setting = tuning["params"].map(lambda p: ", ".join(f"{a} = {b:g}" if isinstance(b, float) else f"{a} = {b}"
                                                       for a, b in dict(p).items()) or "—")
    out = pd.DataFrame({"model": tuning["model"].map(lambda m: MODEL_LABELS.get(m, m)).to_numpy(),
                        "setting": setting.to_numpy(), f"hit rate @{k}": tuning["hit_rate"].to_numpy(),
                        f"precision @{k}": tuning["precision"].to_numpy(), f"recall @{k}": tuning["recall"].to_numpy()})
    return out.set_index(["model", "setting"])


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
    """The strongest "frequently bought together" rules (by lift) with product names."""
    names = product_names(products)
    top = rules.sort_values(["lift", "baskets"], ascending=False).head(n)
    return pd.DataFrame({
        "product": top["antecedent_product_id"].map(names).fillna(top["antecedent_product_id"]).to_numpy(),
        "also bought": top["consequent_product_id"].map(names).fillna(top["consequent_product_id"]).to_numpy(),
        "baskets with both": top["baskets"].to_numpy(), "confidence": top["confidence"].to_numpy(),
        "lift": top["lift"].to_numpy()}).set_index(["product", "also bought"])


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

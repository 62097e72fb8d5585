"""The demo shop: a seeded e-commerce world with every canonical table, realistic dirt and
its ground truth, so every analysis has something true to find and a test can check it.

``generate(out, n_customers=..., seed=...)`` writes ``data/raw/<dataset>/``; see
:func:`crm_analytics.ingest.demo.generate.generate`. Behind ``make data DATASET=demo|ci``.
"""

from crm_analytics.ingest.demo.generate import DIRT_RATES, generate
from crm_analytics.ingest.demo.world import TRUE_PARAMS, TYPES

__all__ = ["generate", "DIRT_RATES", "TRUE_PARAMS", "TYPES"]

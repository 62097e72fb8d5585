"""Buy-Till-You-Die customer lifetime value: BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma.

The flow is

1. :func:`rfm_summary` / :func:`calibration_holdout` (from :mod:`crm_analytics.features.summary`,
   re-exported here) turn an orders table into one row per customer (``frequency``, ``recency``,
   ``T``, ``monetary_value`` and, for a holdout, the holdout purchases).
2. :func:`fit_bgnbd`, :func:`fit_mbgnbd`, :func:`fit_pareto_nbd` fit the purchase models on the
   distinct ``(frequency, recency, T)`` triples with their counts (:func:`compress_summary`), so
   fitting time does not grow with the number of customers; :func:`fit_gamma_gamma` fits the
   spend model on repeat customers. Each returns a :class:`FitResult` with standard errors and
   95% intervals.
3. :func:`p_alive`, :func:`expected_purchases`, :func:`expected_spend`, :func:`clv` and
   :func:`clv_cashflows` score customers (vectorised; repeated histories are scored once);
   :func:`score_partitions` scores them where the data is (Spark's executors or DuckDB batches).
4. :func:`holdout_by_frequency` and :func:`repeat_transactions_over_time` compare the model
   with what happened in a holdout period.

The modules, one topic each:

``optimiser``
    :class:`FitResult` and the maximum-likelihood optimiser every fit shares.
``histories``
    Sufficient statistics: :func:`compress_summary` and the grouped histories a likelihood reads.
``likelihoods``
    Log-likelihoods of BG/NBD, MBG/NBD, Pareto/NBD and Gamma-Gamma.
``fit``
    The ``fit_*`` functions.
``scoring``
    P(alive), expected purchases and expected spend.
``value``
    :func:`clv` and :func:`clv_cashflows`.
``holdout``
    Checks against a holdout period.

Time is counted in the summary's unit (``freq`` / ``freq_multiplier`` of :func:`rfm_summary`,
recorded in ``summary.attrs["time_unit_days"]``); money in the shop's currency.
"""

from crm_analytics.features.summary import DAYS_PER_MONTH, FREQS, calibration_holdout, rfm_summary
from crm_analytics.models.clv.fit import fit_bgnbd, fit_gamma_gamma, fit_mbgnbd, fit_pareto_nbd
from crm_analytics.models.clv.histories import compress_summary
from crm_analytics.models.clv.holdout import holdout_by_frequency, repeat_transactions_over_time
from crm_analytics.models.clv.optimiser import FitResult
from crm_analytics.models.clv.scoring import (
    expected_purchases,
    expected_purchases_unconditional,
    expected_spend,
    p_alive,
)
from crm_analytics.models.clv.value import clv, clv_cashflows, score_partitions

__all__ = [
    "FREQS",
    "DAYS_PER_MONTH",
    "FitResult",
    "rfm_summary",
    "calibration_holdout",
    "compress_summary",
    "fit_bgnbd",
    "fit_mbgnbd",
    "fit_pareto_nbd",
    "fit_gamma_gamma",
    "p_alive",
    "expected_purchases",
    "expected_purchases_unconditional",
    "expected_spend",
    "clv",
    "clv_cashflows",
    "score_partitions",
    "holdout_by_frequency",
    "repeat_transactions_over_time",
]

"""Campaign effectiveness: lift with confidence intervals, ROI, power, multi-arm tests and uplift.

Everything here is a pure function of arrays or DataFrames (no plotting, no printing); results
are plain dicts of Python floats (ready for ``report.write_metrics``) or DataFrames.

Two-group comparisons
    :func:`proportion_lift` (Newcombe hybrid-score interval, log risk-ratio relative lift,
    pooled z-test or Fisher exact), :func:`mean_lift` (Welch t, optional bootstrap percentile),
    :func:`srm_test` / :func:`srm_test_multi` (sample-ratio mismatch), :func:`balance_table`
    (standardised mean differences), :func:`mde_proportion` / :func:`sample_size_proportion`
    (power), :func:`holm` (Holm–Bonferroni), :func:`campaign_effect` (one campaign's lift, incremental
    revenue and margin, ROI with a bootstrap interval, break-even lift) and :func:`arms_vs_control`
    (several arms against one control, Holm-adjusted).

Uplift
    :func:`two_model_uplift`, :func:`class_transformation_uplift`, :func:`qini_curve`,
    :func:`uplift_curve`, :func:`qini_coefficient`, :func:`profit_curve`, :func:`best_cutoff`.

Conventions: ``t`` is the treatment indicator (1 = treated / contacted, 0 = control); ``alpha`` is the
two-sided level, so intervals have coverage ``1 - alpha``; a lift is treatment minus control.

Modules
    :mod:`.proportions`, :mod:`.means`, :mod:`.design` (sample ratio, balance), :mod:`.power`,
    :mod:`.multiple_testing`, :mod:`.effects` (one campaign's money and ROI, arms vs control),
    :mod:`.uplift` (models) and :mod:`.uplift_evaluation` (curves, Qini, profit). Everything public is
    re-exported here, so ``from crm_analytics.models import campaigns`` gives the whole API.
"""

from __future__ import annotations

from crm_analytics.models.campaigns.design import balance_table, srm_test, srm_test_multi
from crm_analytics.models.campaigns.effects import arms_vs_control, campaign_effect
from crm_analytics.models.campaigns.means import mean_lift
from crm_analytics.models.campaigns.multiple_testing import holm
from crm_analytics.models.campaigns.power import SAMPLE_SIZE_FORMULA  # noqa: F401  (public, outside __all__ as before)
from crm_analytics.models.campaigns.power import mde_proportion, sample_size_proportion
from crm_analytics.models.campaigns.proportions import newcombe_interval, proportion_lift, wilson_interval
from crm_analytics.models.campaigns.uplift import class_transformation_uplift, two_model_uplift
from crm_analytics.models.campaigns.uplift_evaluation import (best_cutoff, profit_curve, qini_coefficient, qini_curve,
                                                              uplift_curve)

__all__ = [
    "wilson_interval",
    "newcombe_interval",
    "proportion_lift",
    "mean_lift",
    "srm_test",
    "srm_test_multi",
    "balance_table",
    "sample_size_proportion",
    "mde_proportion",
    "holm",
    "campaign_effect",
    "arms_vs_control",
    "two_model_uplift",
    "class_transformation_uplift",
    "qini_curve",
    "uplift_curve",
    "qini_coefficient",
    "profit_curve",
    "best_cutoff",
]

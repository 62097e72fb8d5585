"""Customer segmentation: RFM scores and named segments, lifecycle stages, behavioural
clusters, demographic profiles, segment migration, small-group suppression and consented
marketing exports.

Conventions
-----------
- A *purchase* is an order of a known customer with status completed or returned
  (:func:`crm_analytics.ingest.tables.purchases`); only purchases with ``order_ts <= as_of`` count.
- ``as_of`` is a timestamp (a bare date means its midnight, UTC; a naive timestamp is taken as UTC).
- Per-customer tables are indexed by ``customer_id`` and sorted by it.
- Per-customer figures speak the vocabulary of :mod:`crm_analytics.features`: ``orders`` (number of
  purchase orders), ``revenue`` (their order_total summed), ``aov``, ``recency_days``. The RFM table
  itself is :func:`crm_analytics.features.rfm.rfm_table`, re-exported here; its f score ranks
  ``orders`` and its m score ``revenue``.

Modules
-------
:mod:`.scores` (RFM scores, segment maps, named segments and their summary), :mod:`.lifecycle`
(lifecycle stages), :mod:`.clusters` (behaviour features, clusters and their descriptions),
:mod:`.demographics` (profiles by age band, gender, region and the difference tests), :mod:`.migration`
(segment moves between two dates), :mod:`.suppression` (small-group suppression) and :mod:`.exports`
(consented segment lists). Everything public is re-exported here, so
``from crm_analytics.models import segmentation`` gives the whole API.
"""

from __future__ import annotations

from crm_analytics.features.rfm import RFM_COLUMNS, rfm_table
from crm_analytics.models.segmentation.clusters import (ClusterResult, behaviour_features, cluster_customers,
                                                        describe_clusters, seed_stability)
from crm_analytics.models.segmentation.demographics import (age_band, demographic_profile, demographic_tables,
                                                            difference_test)
from crm_analytics.models.segmentation.exports import marketing_exports
from crm_analytics.models.segmentation.lifecycle import STAGES, recognise, stage_trend
from crm_analytics.models.segmentation.migration import NEW_CUSTOMER_LABEL, Migration, migration
from crm_analytics.models.segmentation.scores import (DEFAULT_SEGMENT_MAP, SCORE_AXES, assign_segments, rfm_scores,
                                                      segment_summary, validate_segment_map)
from crm_analytics.models.segmentation.suppression import OTHER_LABEL, suppress_small

__all__ = [
    "RFM_COLUMNS",
    "SCORE_AXES",
    "DEFAULT_SEGMENT_MAP",
    "NEW_CUSTOMER_LABEL",
    "OTHER_LABEL",
    "STAGES",
    "rfm_table",
    "rfm_scores",
    "validate_segment_map",
    "assign_segments",
    "segment_summary",
    "recognise",
    "stage_trend",
    "behaviour_features",
    "ClusterResult",
    "cluster_customers",
    "describe_clusters",
    "seed_stability",
    "age_band",
    "demographic_profile",
    "demographic_tables",
    "difference_test",
    "Migration",
    "migration",
    "suppress_small",
    "marketing_exports",
]

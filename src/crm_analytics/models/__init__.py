"""Stage 3, models: one topic per module (CLV, segmentation, campaigns, churn, behaviour,
recommendations, feedback). Imports :mod:`crm_analytics.features`, :mod:`crm_analytics.ingest` and
the shared modules, never reports or the pipeline."""

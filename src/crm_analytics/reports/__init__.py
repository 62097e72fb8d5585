"""Stage 4, reports: tables, charts and sentences for the published HTML (report, plots, the
per-notebook report helpers), the executive summary, the run history and publishing. Imports the
stages below."""

"""Stage 1, ingest: reading the raw inputs (sources, formats, the demo world), the data contract,
cleaning, identity, privacy, erasure, quality, and the clean tables they write. Imports only the
shared modules of :mod:`crm_analytics`."""

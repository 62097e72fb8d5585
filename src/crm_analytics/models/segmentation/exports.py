"""Consented marketing exports: one CSV of pseudonymous customer ids per segment for campaign tools."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm_analytics.errors import ParamsError
from crm_analytics.ingest.privacy import marketing_consent
from crm_analytics.models.segmentation._common import _customer_index, _require, _slug

__all__ = ["marketing_exports"]


def marketing_exports(segments_df: pd.DataFrame, customers: pd.DataFrame, out_dir: str | Path, *,
                      segment_col: str = "segment") -> dict[str, int]:
    """Write one CSV per segment of the customers who consented to marketing.

    Each file ``<out_dir>/<segment slug>.csv`` has only ``customer_id`` (the shop's id, no contact
    details: ``make contacts`` attaches those outside the reports) and ``segment``: no personal
    column ever leaves. A missing consent counts as no consent. Every segment gets a file, empty
    ones with just the header; the list of a segment that no longer exists (a changed
    ``segment_map``) is removed, so a CRM tool never imports a stale list. ``_segment_lists.txt``
    in *out_dir* names the files this function wrote last.

    Returns
    -------
    dict
        Customers written per segment.
    """
    seg = _customer_index(segments_df, "segments_df")
    _require(seg, [segment_col], "segments_df")
    _require(customers, ["customer_id", "consent_marketing"], "customers")
    ok = marketing_consent(customers).reindex(seg.index, fill_value=False).to_numpy()
    out = pd.DataFrame({"customer_id": seg.index.astype(str), "segment": seg[segment_col].astype(str).to_numpy()})[ok]
    cats = seg[segment_col]
    names = [str(c) for c in cats.cat.categories] if isinstance(cats.dtype, pd.CategoricalDtype) else sorted(
        cats.dropna().astype(str).unique())
    slugs = [_slug(n) for n in names]
    if len(set(slugs)) != len(slugs):
        raise ParamsError(f"segment names {names} give clashing file names {slugs}; rename the segments")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "_segment_lists.txt"
    before = set(manifest.read_text(encoding="utf-8").split()) if manifest.exists() else set()
    counts = {}
    for name, slug in zip(names, slugs):  # one file per segment
        part = out[out["segment"] == name].sort_values("customer_id")
        part.to_csv(folder / f"{slug}.csv", index=False)
        counts[name] = int(len(part))
    written = {f"{slug}.csv" for slug in slugs}
    for stale in sorted(before - written):
        (folder / stale).unlink(missing_ok=True)
    manifest.write_text("\n".join(sorted(written)) + "\n", encoding="utf-8")
    return counts

"""Build the feature tables of a dataset.

    python -m crm_analytics.features build <dataset>

writes ``data/processed/<dataset>/customer_features.parquet`` (one row per customer who bought, as of
the end of the dataset's last purchase day) from the clean tables notebook 01 wrote. The Makefile runs
it between ``01_data_cleaning`` and the other notebooks.
"""

from __future__ import annotations

import sys
import time

from crm_analytics import paths
from crm_analytics.errors import CrmAnalyticsError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; 0 on success, 2 (with one line on stderr) on a user error."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crm_analytics.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="write data/processed/DATASET/customer_features.parquet")
    p.add_argument("dataset")
    args = parser.parse_args(argv)
    try:
        from crm_analytics.features.customer import build, read_as_of

        started = time.monotonic()
        out = build(args.dataset)
        as_of = read_as_of(out)
        when = f"as of {as_of:%Y-%m-%d %H:%M} UTC" if as_of is not None else "empty: the dataset has no purchases"
        try:
            shown = out.relative_to(paths.project_root())
        except ValueError:
            shown = out
        print(f"wrote {shown} ({when}; {time.monotonic() - started:.1f} s)")
    except CrmAnalyticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Erasure requests (KVKK / GDPR right to be forgotten).

``make forget CUSTOMER=<id> DATASET=<name>`` appends the customer to
``data/erasure/<dataset>.txt`` (kept beside the data, never committed). The next build's
cleaning step removes every row of that customer from every clean table — their orders and
order lines, their events (including anonymous events on devices stitched to them), campaign
assignments, reviews and tickets — and from the rejects, and counts the rows removed under the
reason ``erasure_request``. Reports then never see them. Raw inputs are not edited here: they
are the shop's own immutable exports and are erased at the source.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from crm_analytics import paths

__all__ = ["requests_file", "add_request", "load_requests", "apply_erasure"]

REASON = "erasure_request"


def requests_file(dataset: str) -> Path:
    return paths.project_root() / "data" / "erasure" / f"{dataset}.txt"


def add_request(dataset: str, customer_id: str) -> bool:
    """Record an erasure request; returns False when it was already recorded."""
    customer_id = customer_id.strip()
    if not customer_id:
        raise ValueError("CUSTOMER is empty: run `make forget CUSTOMER=<customer id> DATASET=<dataset>`")
    if customer_id in load_requests(dataset):
        return False
    path = requests_file(dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{customer_id}\t{stamp}\n")
    return True


def load_requests(dataset: str) -> set[str]:
    path = requests_file(dataset)
    if not path.exists():
        return set()
    return {ln.split("\t")[0].strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()}


def apply_erasure(result, ids: set[str], *, erased: dict[str, tuple[int, set[str]]] | None = None) -> dict:
    """Remove customers *ids* from the clean tables and rejects of *result* (a ``CleanResult``), in place.

    Returns ``{"requests": n, "customers_found": k, "rows_removed": {table: rows}}``. The removed
    rows are counted as rejected with reason ``erasure_request`` so ``rows_in`` still adds up.
    *erased* names tables the same rule was applied to elsewhere, with the rows removed and the
    customers found: the events, erased in DuckDB while written (:meth:`crm_analytics.ingest.events_sql.SqlEvents.erase`).
    """
    removed: dict[str, int] = {}
    if not ids:
        return {"requests": 0, "customers_found": 0, "rows_removed": removed}
    erased = erased or {}
    tables = result.tables
    found = set()
    order_ids: set = set()
    if "orders" in tables:
        o = tables["orders"]
        order_ids = set(o.loc[o["customer_id"].isin(ids), "order_id"])
    devices: set = set()
    if "events" in tables and "events" not in erased:
        e = tables["events"]
        devices = set(e.loc[e["customer_id"].isin(ids), "anonymous_id"].dropna())
    for name, df in list(tables.items()):
        if name in erased:
            n, hits = erased[name]
            found |= hits
        else:
            mask = pd.Series(False, index=df.index)
            if "customer_id" in df:
                hit = df["customer_id"].isin(ids)
                found |= set(df.loc[hit, "customer_id"])
                mask |= hit
            if name == "order_lines":
                mask |= df["order_id"].isin(order_ids)
            if name == "events" and devices:
                mask |= df["anonymous_id"].isin(devices)
            n = int(mask.sum())
            if n:
                tables[name] = df[~mask].reset_index(drop=True)
        if n:
            c = result.counts[name]
            c["rows_kept"] -= n
            c["rows_rejected"] += n
            c["rejects_by_reason"][REASON] = c["rejects_by_reason"].get(REASON, 0) + n
            removed[name] = n
    for name, rej in list(result.rejects.items()):
        if name in erased:
            continue
        if "customer_id" in rej:
            keep = ~rej["customer_id"].isin(ids)
            if name == "order_lines":
                keep &= ~rej["order_id"].isin(order_ids)
            result.rejects[name] = rej[keep].reset_index(drop=True)
    return {"requests": len(ids), "customers_found": len(found), "rows_removed": removed}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crm_analytics.ingest.erasure")
    parser.add_argument("command", choices=["add", "list"])
    parser.add_argument("dataset")
    parser.add_argument("customer", nargs="?", default="")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(f"{len(load_requests(args.dataset))} erasure request(s) for {args.dataset}")
        return 0
    try:
        new = add_request(args.dataset, args.customer)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = requests_file(args.dataset).relative_to(paths.project_root())
    print(f"{'recorded' if new else 'already recorded'}: erasure of one customer in {where}; "
          f"the next `make reports DATASET={args.dataset}` leaves them out of every table and report")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

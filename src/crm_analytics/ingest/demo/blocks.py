"""Big demo worlds in bounded memory: the customers in blocks, each block a world of its own written
to parquet and appended, so that 10,000,000 customers (about 30 M orders) fit on a laptop.

A world of more than :data:`BLOCK_CUSTOMERS` customers is split into ``ceil(n / BLOCK_CUSTOMERS)``
blocks of (nearly) equal size. Block *b* draws everything from its own random streams
(``SeedSequence(seed, spawn_key=(1000 + b,))``) except the product catalogue, which is the world's
(``SeedSequence(seed)``'s products stream, sized for all customers), and its ids continue the previous
block's (customers ``C…``, orders ``SO…``, test orders ``TEST-…``). The same seed and
:data:`BLOCK_CUSTOMERS` give the same bytes.

What a block world holds: customers, products, orders, order lines, campaigns and their assignments,
with the dirt of :data:`crm_analytics.ingest.demo.generate.DIRT_RATES` planted per block, and the truth
files; no events, reviews or tickets (they are what makes a world too big, and the cleaning,
segmentation and CLV steps do not need them). Orders are sorted by time within a block, not across
blocks. Peak memory is that of one block (about 3 GB for 1,000,000 customers).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crm_analytics.errors import ParamsError

__all__ = ["BLOCK_CUSTOMERS", "generate_blocks", "merge_truth"]

#: customers per block; worlds up to this size are generated whole (byte-identical to before blocks existed)
BLOCK_CUSTOMERS = 1_000_000
#: tables that are the same in every block (taken from the first)
_SHARED = ("products", "campaigns")


def generate_blocks(out: str | Path, *, n_customers: int, seed: int = 42, start_date: str = "2024-01-01",
                    end_date: str = "2025-12-31", locale: str = "tr_TR", currency: str = "TRY",
                    with_events: bool = False, block_customers: int = BLOCK_CUSTOMERS) -> dict:
    """Generate a big demo world block by block into *out*; return its truth (also ``truth.json``).

    Parameters
    ----------
    out
        The folder (``data/raw/<dataset>/``).
    n_customers
        Customers in the world.
    seed, start_date, end_date, locale, currency
        As :func:`crm_analytics.ingest.demo.generate.generate`.
    with_events
        Must be false: a world generated in blocks has no events.
    block_customers
        Customers per block (bounds the memory: about 3 GB per 1,000,000).

    Raises
    ------
    ParamsError
        Events asked for.
    """
    from crm_analytics.ingest.demo.generate import generate

    if with_events:
        raise ParamsError(f"source.with_events must be false for a demo world of more than {block_customers:,} "
                          f"customers (n_customers {n_customers:,}): it is generated block by block, without "
                          "events, reviews or tickets")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "_blocks"
    shutil.rmtree(work, ignore_errors=True)
    n_blocks = -(-n_customers // block_customers)
    sizes = [len(a) for a in np.array_split(np.arange(n_customers), n_blocks)]
    width = max(7, len(str(n_customers)))
    offsets = {"customer_offset": 0, "order_offset": 0, "test_offset": 0}
    truths = []
    for b, size in enumerate(sizes):
        block = {"index": b, **offsets, "id_width": width, "catalogue_customers": n_customers}
        t = generate(work / f"b{b:04d}", n_customers=size, seed=seed, start_date=start_date, end_date=end_date,
                     locale=locale, currency=currency, with_events=False, _block=block)
        truths.append(t)
        o = t["orders"]
        offsets = {"customer_offset": offsets["customer_offset"] + size,
                   "order_offset": offsets["order_offset"] + o["purchases"] + o["cancelled"] + o["guest"],
                   "test_offset": offsets["test_offset"] + t["dirt"]["test_orders"]["rows"]}
    for name in sorted(p.name for p in (work / "b0000").glob("*.parquet")):
        _concat([work / f"b{b:04d}" / name for b in range(n_blocks)], out / name,
                 first_only=Path(name).stem in _SHARED)
    truth = merge_truth(truths, n_customers=n_customers, block_customers=block_customers)
    shutil.rmtree(work)
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False, default=float)
                                    + "\n")
    return truth


def _concat(files: list[Path], dest: Path, *, first_only: bool) -> None:
    """Append the blocks' files of one table into *dest*, one block in memory at a time."""
    if first_only:
        shutil.copyfile(files[0], dest)
        return
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    with pq.ParquetWriter(dest, schema, compression="snappy") as writer:
        for f in files:
            writer.write_table(pq.read_table(f).select(schema.names).cast(schema))


def _weighted(values: list[float | None], weights: list[int]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights) if v is not None and w]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def merge_truth(truths: list[dict], *, n_customers: int, block_customers: int) -> dict:
    """The truth of a world from its blocks' truths: counts summed, shares and effects weighted by the
    customers, buyers or contacts they are shares of; the catalogue's dirt (category variants) from the
    first block, whose products the world keeps."""
    first = truths[0]
    truth = {k: v for k, v in first.items()}
    buyers = [t["n_buyers"] for t in truths]
    truth["n_customers"] = n_customers
    truth["n_buyers"] = sum(buyers)
    truth["types"] = {k: _weighted([t["types"][k] for t in truths], buyers) for k in first["types"]}
    truth["alive_at_end_share"] = _weighted([t["alive_at_end_share"] for t in truths], buyers)
    truth["orders"] = {k: sum(t["orders"][k] for t in truths) for k in first["orders"]}
    truth["stages"] = {k: sum(t["stages"].get(k, 0) for t in truths) for k in
                       sorted({k for t in truths for k in t["stages"]})}
    truth["tables"] = {k: (v if k in _SHARED else sum(t["tables"][k] for t in truths))
                       for k, v in first["tables"].items()}
    dirt = {}
    for kind, d in first["dirt"].items():
        rows = d["rows"] if d["table"] == "products" else sum(t["dirt"][kind]["rows"] for t in truths)
        dirt[kind] = {**d, "rows": rows, "rate": rows / max(truth["tables"][d["table"]], 1)}
    truth["dirt"] = dirt
    campaigns = {}
    for cid, c in first["campaigns"].items():
        cs = [t["campaigns"][cid] for t in truths]
        assigned, treated = [c_["n_assigned"] for c_ in cs], [c_["n_treated"] for c_ in cs]
        campaigns[cid] = {**c, "n_assigned": sum(assigned), "n_treated": sum(treated),
                          "true_ate": _weighted([c_["true_ate"] for c_ in cs], treated),
                          "true_ate_by_arm": {a: _weighted([c_["true_ate_by_arm"][a] for c_ in cs], assigned)
                                              for a in c["true_ate_by_arm"]},
                          "incremental_orders_added": sum(c_["incremental_orders_added"] for c_ in cs),
                          "customers_put_off": sum(c_["customers_put_off"] for c_ in cs)}
    truth["campaigns"] = campaigns
    truth["blocks"] = {"customers_per_block": block_customers, "n_blocks": len(truths),
                       "streams": "block b: SeedSequence(seed, spawn_key=(1000 + b,)); products: SeedSequence(seed)"}
    truth["notes"] = list(first["notes"]) + [
        (f"Generated in {len(truths)} blocks of about {block_customers:,} customers in bounded memory: no events, "
         "reviews or tickets; orders are sorted by time within each block; the dirt is planted per block.")]
    return truth

"""Source adapters: one per input format, each turning a dataset's raw input into the
canonical tables of :mod:`crm_analytics.ingest.contracts` (still raw: text values, dirt and all;
:mod:`crm_analytics.ingest.cleaning` parses and validates them).

Every table an adapter returns carries ``_source_file`` and ``_source_line`` so that a
rejected row can be traced back to the line it came from.

Kinds (``source: {kind: ...}`` in ``params/<dataset>.yaml``):

``demo``           generated world (:mod:`crm_analytics.ingest.demo`), options: n_customers, seed,
                   start_date, end_date, locale, currency, with_events
``cdnow``          the CDNOW transactions shipped inside the ``lifetimes`` wheel; option
                   ``variant``: ``sample`` (2,357 customers) or ``master`` (23,570)
``online_retail``  UCI Online Retail / Online Retail II export (csv, csv.gz, xlsx or parquet); option ``path``
``hillstrom``      MineThatData e-mail experiment (csv, csv.gz, xlsx or parquet); option ``path``
``online_shoppers`` UCI Online Shoppers Purchasing Intention: one row per session (the canonical ``sessions``
                   table, no orders or customers); option ``path``
``diginetica``     DIGINETICA (CIKM Cup 2016) product-view clickstream, ``;``-separated (canonical ``events``,
                   product views only, no orders or customers); option ``path``
``reviews_tr``     Turkish product reviews with 1–5 stars (``id,rating,comment``: canonical ``reviews``, no orders,
                   customers, products or dates); option ``path``, and ``sentences_path``: sentences labelled
                   positive / negative (``rating,text,emotion``), the evaluation table ``review_sentences``
                   (``""``: none). Read by :mod:`crm_analytics.ingest.review_sources`
``reviews_en``     Women's E-Commerce Clothing Reviews (csv, or a zip holding it; canonical ``reviews`` with a
                   recommended flag, and ``products`` from the Clothing IDs; no orders, customers or dates);
                   option ``path``
``files``          generic adapter for a shop's own exports (Shopify, WooCommerce, event logs): option
                   ``tables``, one entry per canonical table (``sessions`` for an analytics export of
                   session summaries) with ``path`` (csv, csv.gz, xlsx or parquet),
                   ``columns`` (canonical name -> the export's column name) and optional ``values``
                   (canonical column -> {export value: canonical value}), e.g.::

                       source:
                         kind: files
                         tables:
                           orders:
                             path: exports/orders.csv
                             columns: {order_id: Name, customer_id: Customer ID, order_ts: Created at,
                                       status: Financial Status, order_total: Total}
                             values: {status: {paid: completed, refunded: returned, voided: cancelled}}

Files are read by :func:`crm_analytics.ingest.formats.read_table_file` (format, encoding and delimiter
detected on a sample of any file). Numbers are read in the style each file proves (decimal comma or
point, thousands separator: :func:`crm_analytics.ingest.formats.number_style`); the option ``decimal``
(``","`` or ``"."``) of the file kinds settles a file whose numbers prove nothing. What was detected,
and how, is returned as the table ``_inputs`` (one row per file).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from crm_analytics import paths
from crm_analytics.errors import ParamsError, SourceError

__all__ = [
    "SOURCE_KINDS",
    "currency",
    "validate_source",
    "external_inputs",
    "source_code_files",
    "build_raw",
    "read_source",
    "resolve_path",
    "behaviour_data",
    "review_data",
    "RawParquet",
]

_HERE = Path(__file__).resolve().parent

#: kind -> allowed option -> (type, default)
SOURCE_KINDS: dict[str, dict[str, tuple[type | tuple[type, ...], Any]]] = {
    "demo": {
        "n_customers": (int, 20_000),
        "seed": (int, 42),
        "start_date": (str, "2024-01-01"),
        "end_date": (str, "2025-12-31"),
        "locale": (str, "tr_TR"),
        "currency": (str, "TRY"),
        "with_events": (bool, True),
    },
    "cdnow": {"variant": (str, "sample")},
    "online_retail": {"path": (str, "external:online_retail/online_retail.csv.gz"), "currency": (str, "GBP"),
                      "decimal": (str, "")},
    "hillstrom": {"path": (str, "external:hillstrom/hillstrom.csv"), "currency": (str, "USD"), "decimal": (str, "")},
    "online_shoppers": {"path": (str, "external:online_shoppers/online_shoppers_intention.csv"),
                        "decimal": (str, "")},
    "diginetica": {"path": (str, "external:diginetica/sample_train-item-views.csv")},
    "reviews_tr": {"path": (str, "external:reviews_tr/shoppingwords_reviews.csv.gz"),
                   "sentences_path": (str, "external:reviews_tr/shoppingwords_sentences.csv")},
    "reviews_en": {"path": (str, "external:reviews_en/womens_clothing_ecommerce_reviews.csv.zip")},
    "files": {"tables": (dict, {}), "currency": (str, "EUR"), "decimal": (str, "")},
}
_FILE_TABLE_KEYS = {"path", "columns", "values"}
#: options of the other kinds that name an input file (``sentences_path`` may be ``""``: no such file)
_PATH_KEYS = ("path", "sentences_path")


def resolve_path(value: str) -> Path:
    """A path from params: ``external:<rel>`` is below ``../shared/external``; a relative
    path is relative to the project root; ``~`` is expanded."""
    if value.startswith("external:"):
        return paths.external_dir() / value.split(":", 1)[1]
    p = Path(value).expanduser()
    return p if p.is_absolute() else paths.project_root() / p


def validate_source(dataset: str, source: dict, file: str) -> dict:
    """Check the ``source`` mapping of a params file and fill in defaults.

    Raises
    ------
    ParamsError
        Unknown kind, unknown option or a value of the wrong type, naming the file.
    """
    kind = source.get("kind")
    if kind not in SOURCE_KINDS:
        raise ParamsError(f"{file}: source.kind must be one of {sorted(SOURCE_KINDS)}, got {kind!r}")
    spec = SOURCE_KINDS[kind]
    out: dict[str, Any] = {"kind": kind}
    for key, value in source.items():
        if key == "kind":
            continue
        if key not in spec:
            raise ParamsError(f"{file}: unknown key source.{key} for kind {kind!r}; allowed keys are {sorted(spec)}")
        want = spec[key][0]
        if isinstance(value, bool) and want is not bool or not isinstance(value, want):
            name = want.__name__ if isinstance(want, type) else "/".join(t.__name__ for t in want)
            raise ParamsError(f"{file}: source.{key} must be {name}, got {type(value).__name__} {value!r}")
    for key, (_, default) in spec.items():
        out[key] = source.get(key, default)
    if kind == "files":
        _validate_files(out["tables"], file)
    if out.get("decimal", "") not in ("", ",", "."):
        raise ParamsError(f"{file}: source.decimal must be one of ['', ',', '.'] (empty: decided by the numbers "
                          f"in the file), got {out['decimal']!r}")
    if kind == "cdnow" and out["variant"] not in ("sample", "master"):
        raise ParamsError(f"{file}: source.variant must be one of ['master', 'sample'], got {out['variant']!r}")
    return out


def _validate_files(tables: dict, file: str) -> None:
    from crm_analytics.ingest.contracts import TABLES

    if not tables:
        raise ParamsError(f"{file}: source.tables is empty; name at least the orders export (or the events or "
                          "sessions export of a shop's web analytics), e.g. "
                          "tables: {orders: {path: exports/orders.csv, columns: {order_id: Name, ...}}}")
    for name, spec in tables.items():
        where = f"{file}: source.tables.{name}"
        if name not in TABLES:
            raise ParamsError(f"{where}: unknown table; tables are {sorted(TABLES)}")
        if not isinstance(spec, dict) or "path" not in spec:
            raise ParamsError(f"{where}: needs a mapping with at least `path:`")
        unknown = set(spec) - _FILE_TABLE_KEYS
        if unknown:
            raise ParamsError(f"{where}: unknown key(s) {sorted(unknown)}; allowed keys are {sorted(_FILE_TABLE_KEYS)}")
        cols = spec.get("columns") or {}
        if not isinstance(cols, dict):
            raise ParamsError(f"{where}.columns must map canonical column -> export column")
        bad = [c for c in cols if c not in TABLES[name].column_names]
        if bad:
            raise ParamsError(f"{where}.columns: {bad} are not columns of {name}; columns are {TABLES[name].column_names}")
        values = spec.get("values") or {}
        if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
            raise ParamsError(f"{where}.values must map canonical column -> {{export value: canonical value}}")


def external_inputs(source: dict) -> list[Path]:
    """Files outside the project the raw data is read from (make rebuilds when they change)."""
    if source.get("kind") == "files":
        return [resolve_path(t["path"]) for t in source["tables"].values()]
    return [resolve_path(source[key]) for key in _PATH_KEYS if source.get(key)]


def source_code_files(source: dict) -> list[Path]:
    """Package files that build the raw data of *source* (make rebuilds raw data when they change)."""
    files = [_HERE / "sources.py"]
    if source["kind"] == "demo":
        demo = _HERE / "demo"
        files += sorted(demo.rglob("*.py")) if demo.is_dir() else [_HERE / "demo.py"]
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cdnow_file(variant: str) -> Path:
    import lifetimes

    name = "CDNOW_sample.txt" if variant == "sample" else "CDNOW_master.txt"
    return Path(lifetimes.__file__).parent / "datasets" / name


def build_raw(dataset: str, source: dict) -> Path:
    """Make ``data/raw/<dataset>/`` for *source*: generate, copy or point at the input.

    Writes ``_SOURCE.json`` (what was used) and ``_SUCCESS`` last.
    """
    out = paths.raw_dir(dataset)
    kind = source["kind"]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest: dict[str, Any] = {"dataset": dataset, "source": source}
    if kind == "demo":
        from crm_analytics.ingest.demo import generate

        options = {k: v for k, v in source.items() if k != "kind"}
        generate(out, **options)
    elif kind == "cdnow":
        src = _cdnow_file(source["variant"])
        shutil.copyfile(src, out / src.name)
        manifest["files"] = {src.name: _sha256(out / src.name)}
    elif kind == "files":
        manifest["files"] = {}
        for name, spec in source["tables"].items():
            path = resolve_path(spec["path"])
            if not path.exists():
                raise SourceError(f"{path}: the {name} export of dataset {dataset!r} does not exist; "
                                  f"set source.tables.{name}.path in params/{dataset}.yaml")
            manifest["files"][str(path)] = _sha256(path)
    else:
        manifest["files"] = {}
        for key in [k for k in _PATH_KEYS if source.get(k)]:
            path = resolve_path(source[key])
            if not path.exists():
                raise SourceError(
                    f"{path}: input file of dataset {dataset!r} does not exist; "
                    f"set source.{key} in params/{dataset}.yaml to the shop's export"
                    + (' (or to "" for none)' if key != "path" else "")
                )
            manifest["files"][str(path)] = _sha256(path)
    (out / "_SOURCE.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (out / "_SUCCESS").write_text("")
    return out


_NO_CLICKS = "no web or app events (clicks, carts, searches)"
#: why a kind of source has no behaviour data (``None``: it has)
_NO_BEHAVIOUR: dict[str, str | None] = {
    "cdnow": f"CDNOW has purchases only, {_NO_CLICKS}.",
    "online_retail": f"Online Retail has invoice lines only, {_NO_CLICKS}.",
    "hillstrom": ("Hillstrom has one visit flag per customer (did they visit the site in the two weeks after the "
                  "e-mail), no product views, carts or searches."),
    "online_shoppers": None,
    "diginetica": None,
    "reviews_tr": f"The Turkish reviews are stars and text only, {_NO_CLICKS}.",
    "reviews_en": f"The clothing reviews are stars, text and a recommended flag only, {_NO_CLICKS}.",
}

_NO_RATINGS = "no product reviews or ratings"
#: why a kind of source has no reviews (``None``: it has)
_NO_REVIEWS: dict[str, str | None] = {
    "cdnow": f"CDNOW has purchases only, {_NO_RATINGS}.",
    "online_retail": f"Online Retail has invoice lines only, {_NO_RATINGS}.",
    "hillstrom": f"Hillstrom has e-mails, visits and purchases only, {_NO_RATINGS}.",
    "online_shoppers": f"Online Shoppers has visit summaries only, {_NO_RATINGS}.",
    "diginetica": f"DIGINETICA has product views only, {_NO_RATINGS}.",
    "reviews_tr": None,
    "reviews_en": None,
}


def currency(dataset: str) -> str:
    """The currency the dataset's money is in (``source.currency`` of its params, as the raw data
    were built with), or ``"money"`` when the source names none — for labels such as "margin (TRY)"."""
    built = paths.raw_dir(dataset) / "_SOURCE.json"
    if built.exists():
        value = json.loads(built.read_text(encoding="utf-8")).get("source", {}).get("currency")
        if isinstance(value, str) and value:
            return value
    return "money"


def behaviour_data(source: dict) -> str | None:
    """Whether *source* (a ``source`` mapping of a params file) gives on-site behaviour: ``None`` when it
    provides a clickstream (an events table with product views) or session summaries (a ``sessions``
    table), else one plain sentence saying why not, for the dataset's index page.

    Notebooks that declare ``"requires": "behaviour"`` in their metadata (``05_behaviour``) run only when
    this is ``None`` (:func:`crm_analytics.ingest.params.resolve_notebook_params`).

    Examples
    --------
    >>> behaviour_data({"kind": "demo"}) is None
    True
    >>> behaviour_data({"kind": "cdnow", "variant": "sample"})
    'CDNOW has purchases only, no web or app events (clicks, carts, searches).'
    >>> behaviour_data({"kind": "files", "tables": {"orders": {"path": "orders.csv"}}})
    "The shop's exports named in params are orders only: no events or sessions export is mapped (source.tables.events or source.tables.sessions), so there are no web or app events (clicks, carts, searches)."
    """
    kind = source.get("kind")
    if kind == "demo":
        if source.get("with_events", SOURCE_KINDS["demo"]["with_events"][1]):
            return None
        return ("The generated world is built without web or app events (source.with_events is false), so there "
                "are no clicks, carts or searches.")
    if kind == "files":
        tables = sorted(source.get("tables") or {})
        if "events" in tables or "sessions" in tables:
            return None
        named = ", ".join(tables) if tables else "no table"
        return (f"The shop's exports named in params are {named} only: no events or sessions export is mapped "
                f"(source.tables.events or source.tables.sessions), so there are {_NO_CLICKS}.")
    if kind in _NO_BEHAVIOUR:
        return _NO_BEHAVIOUR[kind]
    raise ParamsError(f"source.kind must be one of {sorted(SOURCE_KINDS)}, got {kind!r}")


def review_data(source: dict) -> str | None:
    """Whether *source* (a ``source`` mapping of a params file) gives product reviews (a ``reviews`` table):
    ``None`` when it does (the generated world, ``reviews_tr``, ``reviews_en``, a ``files`` source that maps a
    reviews export), else one plain sentence saying why not, for the dataset's index page.

    Notebooks that declare ``"requires": "reviews"`` in their metadata (``07_feedback``) run only when this is
    ``None`` (:func:`crm_analytics.ingest.params.resolve_notebook_params`).

    Examples
    --------
    >>> review_data({"kind": "reviews_en"}) is None
    True
    >>> review_data({"kind": "cdnow", "variant": "sample"})
    'CDNOW has purchases only, no product reviews or ratings.'
    >>> review_data({"kind": "files", "tables": {"orders": {"path": "orders.csv"}}})
    "The shop's exports named in params are orders only: no reviews export is mapped (source.tables.reviews), so there are no product reviews or ratings."
    """
    kind = source.get("kind")
    if kind == "demo":
        return None  # the generated world always writes reviews
    if kind == "files":
        tables = sorted(source.get("tables") or {})
        if "reviews" in tables:
            return None
        named = ", ".join(tables) if tables else "no table"
        return (f"The shop's exports named in params are {named} only: no reviews export is mapped "
                f"(source.tables.reviews), so there are {_NO_RATINGS}.")
    if kind in _NO_REVIEWS:
        return _NO_REVIEWS[kind]
    raise ParamsError(f"source.kind must be one of {sorted(SOURCE_KINDS)}, got {kind!r}")


# ----------------------------------------------------------------------------- readers


def _with_lines(df: pd.DataFrame, file: str, first_line: int = 2) -> pd.DataFrame:
    df = df.copy()
    df["_source_file"] = file
    df["_source_line"] = np.arange(first_line, first_line + len(df), dtype="int64")
    return df


@dataclass(frozen=True)
class RawParquet:
    """A raw table left in its parquet file rather than read into pandas (DuckDB reads it).

    Its rows carry ``_source_file`` = *file* and ``_source_line`` = row number + *first_line*,
    as :func:`_with_lines` gives a table read into pandas.
    """

    path: Path
    file: str
    first_line: int = 1


def _read_demo(dataset: str, source: dict, lazy: Collection[str] = ()) -> dict[str, pd.DataFrame | RawParquet]:
    raw = paths.raw_dir(dataset)
    tables: dict[str, pd.DataFrame | RawParquet] = {}
    for f in sorted(raw.glob("*.parquet")):
        if f.stem.startswith("truth"):
            continue
        if f.stem in lazy:
            tables[f.stem] = RawParquet(f, f.name, first_line=1)
        else:
            tables[f.stem] = _with_lines(pd.read_parquet(f), f.name, first_line=1)
    tables["_inputs"] = pd.DataFrame([_parquet_input(f.name) for f in sorted(raw.glob("*.parquet"))
                                      if not f.stem.startswith("truth")])
    return tables


def _parquet_input(name: str) -> dict:
    return {"file": name, "format": "parquet", "encoding": "", "delimiter": "", "decimal": "", "thousands": "",
            "numbers_how": "typed columns"}


def _read_cdnow(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    f = next(paths.raw_dir(dataset).glob("CDNOW_*.txt"))
    has_header = f.read_text()[:200].lstrip().startswith("customer_id")
    df = pd.read_csv(f, sep=r"\s+", header=None, skiprows=1 if has_header else 0, dtype=str)
    # master: id, date, CDs, dollars; sample: master id, sample id, date, CDs, dollars
    cols = ["customer_id", "date", "number_of_cds", "dollar_value"]
    if df.shape[1] == 5:
        cols = ["master_id"] + cols
    df.columns = cols
    df["number_of_cds"] = pd.to_numeric(df["number_of_cds"])
    df["dollar_value"] = pd.to_numeric(df["dollar_value"])
    df = _with_lines(df, f.name, first_line=2 if has_header else 1)
    df["customer_id"] = df["customer_id"].str.lstrip("0").where(lambda s: s != "", "0")
    orders = pd.DataFrame(
        {
            "order_id": "CD" + df["_source_line"].astype(str),
            "customer_id": df["customer_id"],
            "order_ts": pd.to_datetime(df["date"], format="%Y%m%d", errors="coerce").dt.strftime("%Y-%m-%dT00:00:00Z"),
            "channel": "mail_order",
            "status": "completed",
            "order_total": df["dollar_value"],
            "_source_file": df["_source_file"],
            "_source_line": df["_source_line"],
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": orders["order_id"],
            "line_no": 1,
            "product_id": "CD",
            "quantity": df["number_of_cds"].astype(float),
            "unit_price": df["dollar_value"] / df["number_of_cds"].where(df["number_of_cds"] > 0),
            "discount": 0.0,
            "_source_file": df["_source_file"],
            "_source_line": df["_source_line"],
        }
    )
    inputs = pd.DataFrame([{"file": f.name, "format": "text", "encoding": "ascii", "delimiter": "whitespace",
                            "decimal": ".", "thousands": "", "numbers_how": "the CDNOW layout"}])
    return {"orders": orders, "order_lines": lines, "_inputs": inputs}


def _read_online_retail(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.formats import read_online_retail

    return read_online_retail(resolve_path(source["path"]), decimal=source.get("decimal", ""))


def _read_hillstrom(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.formats import read_hillstrom

    return read_hillstrom(resolve_path(source["path"]), decimal=source.get("decimal", ""))


def _read_online_shoppers(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.formats import read_online_shoppers

    return read_online_shoppers(resolve_path(source["path"]), decimal=source.get("decimal", ""))


def _read_diginetica(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.formats import read_diginetica

    return read_diginetica(resolve_path(source["path"]))


def _read_reviews_tr(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.review_sources import read_reviews_tr

    sentences = source.get("sentences_path") or None
    return read_reviews_tr(resolve_path(source["path"]), resolve_path(sentences) if sentences else None)


def _read_reviews_en(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.review_sources import read_reviews_en

    return read_reviews_en(resolve_path(source["path"]))


def _read_files(dataset: str, source: dict) -> dict[str, pd.DataFrame]:
    from crm_analytics.ingest.contracts import TABLES
    from crm_analytics.ingest.formats import number_style, parse_numbers, read_table_file

    tables: dict[str, pd.DataFrame] = {}
    inputs = []
    for name, spec in source["tables"].items():
        path = resolve_path(spec["path"])
        df, detected = read_table_file(path)
        mapping = dict(spec.get("columns") or {})
        for col in TABLES[name].column_names:  # columns already named as in the contract need no mapping
            if col not in mapping and col in df.columns:
                mapping[col] = col
        missing = {canon: src for canon, src in mapping.items() if src not in df.columns}
        if missing:
            canon, src = next(iter(missing.items()))
            raise SourceError(f"{path}: column {src!r} (mapped to {name}.{canon}) is not in the file; its columns are "
                              f"{list(df.columns)}; fix source.tables.{name}.columns in params/{dataset}.yaml")
        out = pd.DataFrame({canon: df[src] for canon, src in mapping.items()})
        numeric = [c for c in out.columns if TABLES[name].column(c).type in ("float", "int")]
        style = number_style({mapping[c]: out[c] for c in numeric}, file=str(path), hint=source.get("decimal", ""))
        detected.update(decimal=style["decimal"], thousands=style["thousands"], numbers_how=style["how"])
        for c in numeric:
            out[c] = parse_numbers(out[c], style)
        for col, table in (spec.get("values") or {}).items():
            if col in out:
                low = {str(k).strip().lower(): v for k, v in table.items()}
                text = out[col].astype("string").str.strip().str.lower()
                out[col] = text.map(low).fillna(out[col])
        if "_reject" in df:
            out["_reject"] = df["_reject"]
        first_line = 1 if detected["format"] == "parquet" else 2
        tables[name] = _with_lines(out, path.name, first_line=first_line)
        tables[name].attrs["source_columns"] = mapping
        inputs.append({**detected, "table": name})
    tables["_inputs"] = pd.DataFrame(inputs)
    return tables


_READERS: dict[str, Callable[[str, dict], dict[str, pd.DataFrame]]] = {
    "demo": _read_demo,
    "cdnow": _read_cdnow,
    "online_retail": _read_online_retail,
    "hillstrom": _read_hillstrom,
    "online_shoppers": _read_online_shoppers,
    "diginetica": _read_diginetica,
    "reviews_tr": _read_reviews_tr,
    "reviews_en": _read_reviews_en,
    "files": _read_files,
}


def read_source(dataset: str, source: dict, *, lazy: Collection[str] = ()) -> dict[str, pd.DataFrame | RawParquet]:
    """Read the raw input of *dataset* into canonical (uncleaned) tables.

    Tables named in *lazy* that are parquet files of the raw data (the generated world's events)
    are returned as :class:`RawParquet`, not read into pandas.

    Raises
    ------
    SourceError
        When the raw data has not been built (run ``make data DATASET=...``) or cannot be read.
    """
    if not (paths.raw_dir(dataset) / "_SUCCESS").exists():
        raise SourceError(
            f"{paths.raw_dir(dataset)}: raw data of dataset {dataset!r} is missing or incomplete; "
            f"run `make data DATASET={dataset}`"
        )
    if source["kind"] == "demo":
        return _read_demo(dataset, source, lazy)
    return _READERS[source["kind"]](dataset, source)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    import yaml

    from crm_analytics.errors import CrmAnalyticsError
    from crm_analytics.locks import sole_run

    parser = argparse.ArgumentParser(prog="python -m crm_analytics.ingest.sources")
    parser.add_argument("command", choices=["build"])
    parser.add_argument("dataset")
    args = parser.parse_args(argv)
    spec = paths.build_dir(args.dataset) / "source.yaml"
    try:
        if not spec.exists():
            raise ParamsError(f"{spec} is missing; run `python -m crm_analytics.pipeline configure {args.dataset}`")
        source = yaml.safe_load(spec.read_text())
        with sole_run(args.dataset, "raw data"):
            out = build_raw(args.dataset, source)
    except CrmAnalyticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"built {out.relative_to(paths.project_root())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

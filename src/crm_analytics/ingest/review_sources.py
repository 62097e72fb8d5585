"""Readers of product-review exports into raw canonical tables: sources with reviews only — no orders, no
customers and no dates.

``read_reviews_tr``   Turkish product reviews with 1–5 stars (``id,rating,comment``; the ``shoppingwords`` R
                      package, Kan-Kilinc, MIT), and its sentences labelled positive / negative
                      (``rating,text,emotion``), kept apart as ``review_sentences`` for evaluating sentiment
``read_reviews_en``   Women's E-Commerce Clothing Reviews (Kaggle, CC0): English reviews with stars, a
                      recommended flag and the product's Clothing ID, department and class
``read_review_file``  any table file :func:`crm_analytics.ingest.formats.read_table_file` reads, or a zip archive
                      holding one (macOS ``__MACOSX/._…`` resource forks and other stray entries are ignored
                      and reported)

Neither dataset has dates, customers or orders: ``ts``, ``customer_id`` and ``order_id`` of every review are
empty, so nothing here can be placed in time or tied to a buyer (freshness, cohorts and the customer view
have nothing to work on). ``language`` is the one the source declares (``tr`` / ``en``), not detected.

Each reader returns ``{table: DataFrame}`` with canonical column names and ``_source_file`` / ``_source_line``
on every row (the file's own line numbers: line 1 is the header), and ``_inputs``, one record per file read,
with what was detected (:func:`crm_analytics.ingest.formats.read_table_file`) plus ``rows_without_text`` and, for
an archive, ``member`` and ``ignored_members``. Parsing and validation happen in :mod:`crm_analytics.ingest.cleaning`.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from crm_analytics.errors import DataContractError, SourceError
from crm_analytics.ingest.formats import _need, read_table_file

__all__ = ["read_reviews_tr", "read_reviews_en", "read_review_file", "stray_archive_member", "SENTENCE_LABELS",
           "read_review_sentences"]

#: labels of the Turkish sentences file (``emotion``) -> ``review_sentences.label``
SENTENCE_LABELS = {"p": "positive", "n": "negative", "pos": "positive", "neg": "negative",
                   "positive": "positive", "negative": "negative"}

#: file names that archiving tools add beside the data (macOS Finder, Windows Explorer): never data
_STRAY_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def stray_archive_member(name: str) -> str | None:
    """Why archive member *name* is not data (``None``: it may be), e.g. the resource fork macOS's
    Finder adds to every file it zips (``__MACOSX/._orders.csv``).

    Examples
    --------
    >>> stray_archive_member("__MACOSX/._Womens Clothing E-Commerce Reviews.csv")
    'a macOS resource fork, not data'
    >>> stray_archive_member("reviews.csv") is None
    True
    """
    parts = PurePosixPath(name.replace("\\", "/")).parts
    base = parts[-1] if parts else ""
    if name.endswith("/") or not base:
        return "a folder entry"
    if parts[0] == "__MACOSX":
        return "a macOS resource fork, not data"
    if base.startswith("._"):
        return "a macOS resource fork, not data"
    if base in _STRAY_NAMES:
        return "folder metadata of the archiving tool, not data"
    return None


def _is_archive(path: Path) -> bool:
    """A zip archive of files: named ``.zip`` (a broken one is then reported as a broken archive), or a zip that
    is no xlsx workbook (a workbook is a zip too, read as a workbook)."""
    if path.suffix.lower() == ".zip":
        return True
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as zf:
            return "[Content_Types].xml" not in zf.namelist()
    except OSError:
        return False


def read_review_file(path: Path) -> tuple[pd.DataFrame, dict]:
    """Read a table file (:func:`crm_analytics.ingest.formats.read_table_file`: csv, csv.gz, xlsx, parquet), or a zip
    archive holding exactly one such file beside stray entries (:func:`stray_archive_member`).

    From an archive, the data member is extracted to a temporary folder and read as any file; ``detected``
    then names it: ``file`` is ``"<archive>:<member>"`` (also the rows' ``_source_file``), ``format``
    ``"<format> in zip"``, ``member``, ``ignored_members`` (each with why, ``"; "``-separated; ``""`` when
    none) and ``ignored_count``.

    Raises
    ------
    SourceError
        A missing or unreadable file; an archive without a data member, or with several (named).
    """
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path}: file does not exist; check the path in params")
    if not _is_archive(path):
        return read_table_file(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            ignored = [(i.filename, why) for i in infos if (why := stray_archive_member(i.filename))]
            data = [i for i in infos if not stray_archive_member(i.filename)]
            if len(data) != 1:
                found = [i.filename for i in data] or "none"
                raise SourceError(f"{path}: a zip archive must hold exactly one data file (besides folders and "
                                  f"__MACOSX entries); data files found: {found}. Unpack it and point source.path "
                                  "at the file to read")
            member = data[0]
            with tempfile.TemporaryDirectory(prefix="crm_zip_") as tmp:
                target = Path(tmp) / ("member" + "".join(PurePosixPath(member.filename).suffixes[-2:]))
                with zf.open(member) as src, open(target, "wb") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
                try:
                    df, detected = read_table_file(target)
                except (SourceError, DataContractError) as exc:  # name the member, not the temporary copy
                    raise type(exc)(str(exc).replace(str(target), f"{path}:{member.filename}")) from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, RuntimeError) as exc:  # RuntimeError: encrypted
        raise SourceError(f"{path}: cannot be read as a zip archive ({exc}); is the file truncated?") from None
    detected.update(file=f"{path.name}:{member.filename}", format=f"{detected['format']} in zip",
                    member=member.filename, ignored_members="; ".join(f"{n} ({why})" for n, why in ignored),
                    ignored_count=len(ignored))
    return df, detected


def _text(s: pd.Series) -> pd.Series:
    """Text values trimmed, a missing value as ``""``."""
    return s.astype("string").fillna("").str.strip()


def _lines(n: int) -> np.ndarray:
    return np.arange(2, n + 2, dtype="int64")  # line 1 is the header


def read_reviews_tr(path: Path, sentences_path: Path | None = None, *, language: str = "tr") -> dict[str, pd.DataFrame]:
    """Read the Turkish product reviews of the ``shoppingwords`` package (``id,rating,comment``; 260,308 reviews
    of a Turkish e-commerce site) into canonical ``reviews``, and its labelled sentences into ``review_sentences``.

    ``reviews``: ``review_id`` <- ``id``, ``rating`` <- ``rating`` (text: cleaning parses it and rejects a value
    outside 1–5), ``text`` <- ``comment`` (``""`` when empty: kept, counted as ``rows_without_text``),
    ``language`` *language*; ``customer_id``, ``product_id``, ``order_id`` and ``ts`` are empty (the package has
    no customers, products, orders or dates).

    ``review_sentences`` (only with *sentences_path*; ``rating,text,emotion``, 1,481 sentences): ``sentence_id``
    ``S0001``… in file order, ``text``, ``label`` <- ``emotion`` (``p`` positive, ``n`` negative,
    :data:`SENTENCE_LABELS`; another value is kept for cleaning to reject), ``rating``, ``language``. These are
    for evaluating a sentiment model, never for training it; 136 of them are also whole reviews of the reviews
    file.

    Returns
    -------
    dict
        ``reviews``, ``review_sentences`` (with *sentences_path*) and ``_inputs`` (one record per file).

    Raises
    ------
    DataContractError
        A column of the layout is absent.
    """
    path = Path(path)
    raw, detected = read_review_file(path)
    cols = _need(raw, path, {"id": ("id", "review_id"), "rating": ("rating", "stars"),
                             "text": ("comment", "text", "review")})
    n = len(raw)
    text = _text(raw[cols["text"]])
    reviews = pd.DataFrame({
        "review_id": raw[cols["id"]],
        "customer_id": None, "product_id": None, "order_id": None, "ts": None,
        "rating": raw[cols["rating"]],
        "text": text,
        "language": language,
        "_source_file": detected["file"],
        "_source_line": _lines(n),
    })
    if "_reject" in raw:
        reviews["_reject"] = raw["_reject"]
    reviews.attrs["source_columns"] = {"review_id": cols["id"], "rating": cols["rating"], "text": cols["text"]}
    detected.update(decimal="", thousands="", numbers_how="whole numbers only (ids, stars)",
                    rows_without_text=int((text == "").sum()))
    out = {"reviews": reviews}
    inputs = [detected]
    if sentences_path is not None:
        sentences_path = Path(sentences_path)
        sraw, sdetected = read_review_file(sentences_path)
        scols = _need(sraw, sentences_path, {"text": ("text", "sentence"), "label": ("emotion", "label"),
                                             "rating": ("rating", "stars")})
        m = len(sraw)
        label = _text(sraw[scols["label"]])
        width = max(4, len(str(m)))
        sentences = pd.DataFrame({
            "sentence_id": [f"S{i:0{width}d}" for i in range(1, m + 1)],
            "text": sraw[scols["text"]],
            "label": label.str.lower().map(SENTENCE_LABELS).fillna(label).mask(label == ""),
            "rating": sraw[scols["rating"]],
            "language": language,
            "_source_file": sdetected["file"],
            "_source_line": _lines(m),
        })
        if "_reject" in sraw:
            sentences["_reject"] = sraw["_reject"]
        sentences.attrs["source_columns"] = {"text": scols["text"], "label": scols["label"], "rating": scols["rating"]}
        sdetected.update(decimal="", thousands="", numbers_how="whole numbers only (stars)",
                         rows_without_text=int((_text(sraw[scols["text"]]) == "").sum()))
        out["review_sentences"] = sentences
        inputs.append(sdetected)
    out["_inputs"] = pd.DataFrame(inputs)
    return out


#: Women's E-Commerce Clothing Reviews: optional columns kept as ``attr_`` columns of the reviews
_EN_NUMBERS = {"attr_age": ("Age",), "attr_positive_feedback": ("Positive Feedback Count",)}
_TRUE, _FALSE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}


def _join_title(title: pd.Series, body: pd.Series) -> pd.Series:
    """``Title. Review Text`` (the title's own ``!``, ``?`` or ``.`` ends it when it has one), the title or the
    text alone when the other is empty, ``""`` when both are."""
    ends = title.str.contains(r"[.!?…]$", regex=True).fillna(False).astype(bool)
    joined = title + pd.Series(np.where(ends, " ", ". "), index=title.index) + body
    return joined.where((title != "") & (body != ""), title + body)


def _mode_first(s: pd.Series) -> object:
    """The most frequent non-empty value, the first seen among equals; ``None`` when all are empty."""
    s = s[s != ""]
    if s.empty:
        return None
    counts = s.value_counts(sort=False)  # in order of first appearance
    return counts.index[int(np.argmax(counts.to_numpy()))]


def read_reviews_en(path: Path, *, language: str = "en") -> dict[str, pd.DataFrame]:
    """Read the Women's E-Commerce Clothing Reviews export (23,486 English reviews; csv, or a zip holding it: the
    Kaggle zip carries a stray ``__MACOSX/._…`` entry, ignored and reported) into canonical ``reviews`` and
    ``products``.

    ``reviews``: ``review_id`` <- the file's unnamed first column (its row number, ``0``…; the row number from
    0 when the column is absent), ``product_id`` <- ``Clothing ID``, ``rating`` <- ``Rating``, ``text`` <-
    ``Title + ". " + Review Text`` (just ``" "`` after a title that ends in ``!``, ``?`` or ``.``; the text
    alone without a title, the title alone without a text, ``""`` without either: kept, counted as
    ``rows_without_text``), ``language`` *language*; ``customer_id``, ``order_id`` and ``ts`` are empty
    (no customers, orders or dates in the export). Kept for the feedback report: ``attr_recommended``
    <- ``Recommended IND`` (boolean; empty when neither 0 nor 1), ``attr_positive_feedback`` <- ``Positive
    Feedback Count`` (other shoppers who found the review helpful) and ``attr_age`` <- ``Age`` (the
    reviewer's age, no identity), both whole numbers or empty.

    ``products`` (``attrs["derived_from"] = "reviews"``): one row per Clothing ID, at the line of its first
    review; ``category`` <- ``Class Name`` (20 classes: Dresses, Knits, Blouses, Sweaters, Pants, Jeans…; the
    6 departments are too coarse to tell a fit complaint about jeans from one about a blouse), its most
    frequent value when a product's reviews disagree, empty when none names one; ``attr_department``
    <- ``Department Name`` (Tops, Dresses, Bottoms, Intimate, Jackets, Trend: each class belongs to one),
    likewise. The export has no product names, brands or prices.

    Returns
    -------
    dict
        ``reviews``, ``products`` and ``_inputs`` (one record).

    Raises
    ------
    DataContractError
        A column of the layout is absent.
    """
    path = Path(path)
    raw, detected = read_review_file(path)
    cols = _need(raw, path, {"product": ("Clothing ID",), "title": ("Title",), "body": ("Review Text",),
                             "rating": ("Rating",), "recommended": ("Recommended IND",)})
    n = len(raw)
    index_col = next((c for c in raw.columns if c == "" or c.startswith("Unnamed: 0")), None)
    review_id = raw[index_col] if index_col is not None else pd.Series(np.arange(n).astype(str), index=raw.index)
    text = _join_title(_text(raw[cols["title"]]), _text(raw[cols["body"]]))
    rec = _text(raw[cols["recommended"]]).str.lower()
    recommended = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    recommended[rec.isin(_TRUE)] = True
    recommended[rec.isin(_FALSE)] = False
    file, lines = detected["file"], _lines(n)
    product = _text(raw[cols["product"]]).str.replace(r"\.0$", "", regex=True)
    reviews = pd.DataFrame({
        "review_id": review_id,
        "customer_id": None, "product_id": raw[cols["product"]], "order_id": None, "ts": None,
        "rating": raw[cols["rating"]],
        "text": text,
        "language": language,
        "attr_recommended": recommended,
    })
    for attr, names in _EN_NUMBERS.items():
        col = next((c for c in names if c in raw.columns), None)
        values = pd.to_numeric(_text(raw[col]), errors="coerce") if col else pd.Series(np.nan, index=raw.index)
        reviews[attr] = values.round().astype("Int64")
    reviews["_source_file"], reviews["_source_line"] = file, lines
    if "_reject" in raw:
        reviews["_reject"] = raw["_reject"]
    reviews.attrs["source_columns"] = {"review_id": index_col or "(row number)", "product_id": cols["product"],
                                       "rating": cols["rating"], "text": f"{cols['title']} + {cols['body']}",
                                       "attr_recommended": cols["recommended"]}
    usable = (raw["_reject"].isna() if "_reject" in raw else pd.Series(True, index=raw.index)) & (product != "")
    per = pd.DataFrame({
        "product_id": product,
        "category": _text(raw["Class Name"]) if "Class Name" in raw else "",
        "attr_department": _text(raw["Department Name"]) if "Department Name" in raw else "",
        "_source_line": lines,
    })[usable.to_numpy()]
    g = per.groupby("product_id", sort=False)
    products = pd.DataFrame({
        "product_id": g["_source_line"].min().index,
        "category": g["category"].agg(_mode_first).to_numpy(),
        "attr_department": g["attr_department"].agg(_mode_first).to_numpy(),
        "_source_file": file,
        "_source_line": g["_source_line"].min().to_numpy(),
    }).sort_values("_source_line", ignore_index=True)
    products.attrs["derived_from"] = "reviews"
    products.attrs["source_columns"] = {"product_id": cols["product"], "category": "Class Name",
                                        "attr_department": "Department Name"}
    detected.update(decimal="", thousands="", numbers_how="whole numbers only (ids, stars, counts, ages)",
                    rows_without_text=int((text == "").sum()))
    return {"reviews": reviews, "products": products, "_inputs": pd.DataFrame([detected])}


def read_review_sentences(dataset: str) -> pd.DataFrame | None:
    """The clean labelled sentences of *dataset* (``data/interim/<dataset>/review_sentences.parquet``, written by
    notebook 01 for a ``reviews_tr`` source), or ``None`` when the dataset has none. They are held out: for
    checking a sentiment model's labels, never for fitting it.

    ``review_sentences`` is not one of the canonical tables (:data:`crm_analytics.ingest.contracts.EVALUATION_TABLES`),
    so :func:`crm_analytics.ingest.tables.read_clean` does not read it.
    """
    from crm_analytics import paths

    path = paths.interim_dir(dataset) / "review_sentences.parquet"
    return pd.read_parquet(path) if path.exists() else None

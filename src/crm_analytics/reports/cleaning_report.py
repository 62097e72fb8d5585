"""Report helpers of notebook 01 (data cleaning): what was detected in each input file, the row
accounting, rejected rows by reason, the plain-language cleaning summary, identity stitching, the
customer view and erasure requests, in the report language. The checks themselves are in
:mod:`crm_analytics.ingest.quality`."""

from __future__ import annotations

import re

import pandas as pd

from crm_analytics import i18n
from crm_analytics.reports.report import md

__all__ = ["input_formats_table", "accounting_table", "rejects_table", "plot_rejects", "reason_words",
           "cleaning_summary", "stitching_table", "customer_view_summary", "erasure_summary"]


_DELIMITER_WORDS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe", "whitespace": "spaces"}


_FORMAT_WORDS = {"csv": "CSV", "csv.gz": "CSV (gzip)", "xlsx": "Excel (xlsx)", "parquet": "Parquet", "text": "text",
                 "csv in zip": "CSV (zip)", "csv.gz in zip": "CSV (gzip, in zip)", "parquet in zip": "Parquet (zip)"}


_ENCODING_WORDS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp1254": "Windows Turkish (cp1254)",
                   "latin-1": "Latin-1", "ascii": "ASCII"}


def _words(text: str) -> str:
    """A phrase made in code (``comma``, ``day first: 3 values have …``) in the report language: an exact
    catalogue entry or a template with fields; a phrase without a translation stays English and is
    recorded as untranslated."""
    if not text or i18n.language() == "en":
        return text
    out = i18n.value(text)
    if out == text and re.search(r"[A-Za-z]{3,}", text):
        i18n.t(text)  # records it as untranslated
    return out


def _how_words(how: str) -> str:
    """How a file's numbers or dates were decided (``order_ts: day first: 3 values …; ts: ISO 8601``), each
    part in the report language (a column name too, when the catalogue knows it)."""
    parts = []
    for part in how.split("; "):
        column, sep, rest = part.partition(": ")
        if sep and i18n.value(part) == part and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", column):
            parts.append(f"{i18n.value(column)}: {_words(rest)}")
        else:
            parts.append(_words(part))
    return "; ".join(parts)


def input_formats_table(notes: dict) -> pd.DataFrame:
    """What was detected in each input file, and how: a report table from ``result.notes["inputs"]``
    (the words in the report language).

    Examples
    --------
    >>> t = input_formats_table({"inputs": [{"file": "orders.csv", "format": "csv", "encoding": "cp1254",
    ...     "delimiter": ";", "decimal": ",", "thousands": ".", "date_order": "day first",
    ...     "date_how": "order_ts: day first: 3 values have a day above 12 in the first field, e.g. '13.01.2024'",
    ...     "numbers_how": "decimal comma: 5 values prove it, e.g. '12,50' in column 'Tutar'"}]})
    >>> t.loc[0, "delimiter"], t.loc[0, "decimal"], t.loc[0, "thousands separator"]
    ('semicolon', 'comma', 'point')
    """
    columns = ["file", "format", "encoding", "delimiter", "decimal", "thousands separator", "date order",
               "how it was decided"]
    rows = []
    mark = {",": "comma", ".": "point", " ": "space", "": "none"}
    for rec in notes.get("inputs") or []:
        how = "; ".join(_how_words(h) for h in (rec.get("numbers_how"), rec.get("date_how")) if h)
        delimiter = rec.get("delimiter") or ""
        rows.append({
            "file": rec.get("file", ""),
            "format": _words(_FORMAT_WORDS.get(rec.get("format", ""), rec.get("format", ""))),
            "encoding": _words(_ENCODING_WORDS.get(rec.get("encoding") or "", rec.get("encoding") or "—")),
            "delimiter": _words(_DELIMITER_WORDS[delimiter]) if delimiter in _DELIMITER_WORDS else delimiter or "—",
            "decimal": _words(mark.get(rec.get("decimal") or "", "—")) if rec.get("decimal") else "—",
            "thousands separator": _words(mark.get(rec.get("thousands") or "", rec.get("thousands") or "")),
            "date order": ", ".join(_words(o) for o in (rec.get("date_order") or "—").split(", ")),
            "how it was decided": how,
        })
    return pd.DataFrame(rows, columns=columns)


def accounting_table(counts: dict) -> pd.DataFrame:
    """Rows in, kept, rejected and duplicates per table (a report table)."""
    rows = [{"table": name, "rows in": c["rows_in"], "kept": c["rows_kept"], "rejected": c["rows_rejected"],
             "duplicates": c["rows_duplicate"],
             "note": i18n.t("derived from {table}", table=c["derived_from"]) if c.get("derived_from") else ""}
            for name, c in counts.items()]
    return pd.DataFrame(rows).set_index("table")


def rejects_table(counts: dict) -> pd.DataFrame:
    """Rejected rows by table and reason, largest first."""
    rows = [{"table": t, "reason": r, "rows": n} for t, c in counts.items() for r, n in c["rejects_by_reason"].items()]
    if not rows:
        return pd.DataFrame(columns=["table", "reason", "rows"])
    return pd.DataFrame(rows).sort_values(["rows", "table", "reason"], ascending=[False, True, True]).reset_index(drop=True)


def plot_rejects(reasons: pd.DataFrame, *, ax=None, **kwargs):
    """Horizontal bars of rejected rows by ``table: reason``; returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.35 * len(reasons) + 1.2))
    labels = [f"{i18n.value(t)}: {reason_words(r)}" for t, r in zip(reasons["table"], reasons["reason"])]
    ax.barh(labels[::-1], reasons["rows"][::-1], color=kwargs.pop("color", "#0072B2"), **kwargs)
    ax.set_xlabel("rejected rows (count)")  # English: the notebook kernel translates every chart's text
    ax.set_title("Rejected rows by table and reason")
    return ax


def reason_words(reason: str) -> str:
    """A reject reason (``non_positive_quantity``, ``unparseable_order_ts``) as the reader says it, in the
    report language (a reason without a translation is shown with spaces for underscores)."""
    if i18n.language() == "en":
        return reason.replace("_", " ")
    out = i18n.value(reason)
    if out == reason:
        i18n.t(reason)  # records it as untranslated
        return reason.replace("_", " ")
    return out


def cleaning_summary(metrics: dict, *, source_kind: str):
    """Plain-language summary of the cleaning, for the top of the report (report prose, :func:`report.md`;
    each sentence is its own catalogue entry)."""
    from IPython.display import Markdown

    h = metrics["headline"]
    sentences = ["**{rows_in:,} input rows** from the {kind} source: **{kept:,} kept** ({share:.1%}), {rejected:,} "
                 "rejected with a reason and {dup:,} exact duplicates merged."]
    where = metrics.get("customers_identified_in", "orders")
    if where == "orders":
        sentences.append("**{customers:,} customers** are identified in the orders.")
    elif where == "events":
        sentences.append("This dataset has no orders: **{customers:,} customers** are identified in the web or app "
                         "events (visitors who logged in); the other visitors are anonymous.")
    elif where == "customers":
        sentences.append("This dataset has no orders: **{customers:,} customers** are in its customers table.")
    elif "reviews" in metrics.get("tables", {}) and "events" not in metrics.get("tables", {}) \
            and "sessions" not in metrics.get("tables", {}):
        sentences.append("This dataset has no orders and no customer ids: it holds product reviews, not customers, "
                         "so there is no customer to identify.")
    else:
        sentences.append("This dataset has no orders and no customer ids: it describes visits, not customers, so "
                         "there is no customer to identify.")
    if metrics.get("guest_lines"):
        sentences.append("{guests:,} order rows have no customer (guest purchases): kept for product analyses, left "
                         "out of customer analyses.")
    if metrics.get("cancelled_lines"):
        if metrics.get("cancelled_lines_matched") is not None:
            sentences.append("{cancelled:,} order rows are cancellations, {matched:,} of them matched to the earlier "
                             "purchase line they cancel (same customer and product, enough quantity).")
        else:
            sentences.append("{cancelled:,} order rows are cancellations.")
    values = dict(rows_in=h["input rows"], kind=source_kind, kept=h["rows kept"], share=h["share kept"],
                  rejected=sum(t["rows_rejected"] for t in metrics["tables"].values()),
                  dup=sum(t["rows_duplicate"] for t in metrics["tables"].values()), customers=h["customers identified"],
                  guests=metrics.get("guest_lines"), cancelled=metrics.get("cancelled_lines"),
                  matched=metrics.get("cancelled_lines_matched"))
    return Markdown(" ".join(md(sentence, **values).data for sentence in sentences))


def stitching_table(stats: dict, truth: dict | None = None) -> pd.DataFrame:
    """The stitching counts, with the generated world's truth beside them when there is one."""
    known = (truth or {}).get("stitching", {})
    rows = [
        ("events", stats["events"], None),
        ("anonymous events before stitching", stats["anonymous_events_before"], None),
        ("events stitched to a customer", stats["events_stitched"], known.get("anonymous_events_of_customers_stitchable")),
        ("devices stitched", stats["devices_stitched"], None),
        ("devices seen with several customers (left anonymous)", stats["devices_ambiguous"], None),
        ("share of anonymous events stitched", round(stats["events_stitched_share"] or 0, 4), None),
        ("share of events with a customer after stitching", round(stats["events_attributed_share"] or 0, 4), None),
    ]
    df = pd.DataFrame(rows, columns=["measure", "value", "truth (generated world)"]).astype(object)
    df["value"] = [i18n.percent(v, 1) if m.startswith("share of") else i18n.decimal(v, 0)
                   for m, v in zip(df["measure"], df["value"])]
    df["truth (generated world)"] = [i18n.decimal(v, 0) if v is not None and pd.notna(v) else ""
                                     for v in df["truth (generated world)"]]
    if truth is None:
        return df.drop(columns="truth (generated world)")
    t = known.get("anonymous_events_of_customers_stitchable")
    df["note"] = ""
    if t:
        df.loc[2, "note"] = i18n.t("{difference:+.2%} against the truth (the truth counts events before duplicates "
                                   "and unparseable times were removed)", difference=(stats["events_stitched"] - t) / t)
    return df


def customer_view_summary(view: pd.DataFrame | None) -> pd.DataFrame:
    """Aggregate figures of the customer 360 table (no row-level data)."""
    if view is None or not len(view):
        return pd.DataFrame({"measure": ["customers"], "value": [0]})
    rows = [("customers", len(view))]
    if "orders" in view:  # a dataset without orders says nothing about who bought
        rows.append(("customers who bought", int(view["buyer"].sum())))
    for col, label in (("orders", "median orders of buyers"), ("revenue", "median revenue of buyers")):
        if col in view:
            median = float(view.loc[view["buyer"], col].median()) if view["buyer"].any() else 0.0
            rows.append((label, i18n.money(median) if col == "revenue" else median))
    for col, label in (("events", "customers with web/app events"),
                       ("campaigns_received", "customers reached by a campaign"),
                       ("reviews", "customers who wrote a review"), ("tickets", "customers who opened a ticket")):
        if col in view:
            rows.append((label, int((view[col] > 0).sum())))
    if "consent_marketing" in view and view["consent_marketing"].notna().any():  # no consents in the data: no row
        rows.append(("customers who consented to marketing", int(view["consent_marketing"].fillna(False).sum())))
    return pd.DataFrame([(m, v if isinstance(v, str) else i18n.decimal(v, 0) if float(v).is_integer()
                          else i18n.decimal(v, 1)) for m, v in rows], columns=["measure", "value"])


def erasure_summary(info: dict):
    """One sentence on the erasure requests applied (counts only, never ids), as report prose."""
    if not info or not info.get("requests"):
        return md("No erasure request is recorded for this dataset.")
    removed = "; ".join(f"{i18n.value(t)}: {i18n.decimal(n, 0)}" for t, n in sorted(info["rows_removed"].items()))
    return md("**{requests:,} erasure request(s)** applied ({found:,} of these customers were in the data). Rows "
              "removed per table: {removed}.", requests=info["requests"], found=info["customers_found"],
              removed=removed or "0")

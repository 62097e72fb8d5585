"""``reports/<dataset>/index.html``: the executive summary a manager reads in two minutes.

On top, a banner when the last scheduled run failed (the page itself is the last good one) and the
alerts (:func:`crm_analytics.reports.summary.alerts`); then the dozen figures that run the shop as tiles —
each with its unit, its change since the previous run (:mod:`crm_analytics.reports.history`) and one plain
sentence — and every report with its status and what it answers; last, what changed since the
previous run. Everything is in the dataset's ``language`` with the locale's numbers, money and dates
(:mod:`crm_analytics.i18n`); every text from data goes through :func:`crm_analytics.reports.report.escape`.
Each tile carries ``data-metric="<file>/<key>"`` and ``data-value``: the number it shows, as it is
in ``reports/<dataset>/metrics/<file>.json`` (the browser tests hold the two equal). Technical
measures (ARI, Qini, log-likelihoods) stay in the reports, where they are explained.
"""

from __future__ import annotations

import html
import json
import string
from pathlib import Path
from typing import Any

from crm_analytics import i18n, paths
from crm_analytics.reports.report import escape
from crm_analytics.reports.summary import Alert, Tile

__all__ = ["write_index", "render_index", "notebook_title", "notebook_question"]

_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1120px;margin:1.5rem auto;
 padding:0 1rem;color:#1f2328;line-height:1.45;overflow-wrap:anywhere}
h1{font-size:1.6rem;margin:.2rem 0} h2{font-size:1.2rem;margin:1.6rem 0 .6rem} .sub{color:#59636e;margin:.2rem 0}
.banner{background:#b3261e;color:#fff;padding:.7rem 1rem;border-radius:8px;margin:1rem 0;font-weight:600}
.alerts{list-style:none;padding:0;margin:1rem 0}
.alerts li{padding:.55rem .9rem;border-radius:6px;margin:.35rem 0;border-left:5px solid}
.alerts li.bad{background:#fdecea;border-color:#b3261e} .alerts li.warn{background:#fff6e0;border-color:#8a6d00}
.alerts li.none{background:#eaf6ee;border-color:#0a6e31}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:.8rem}
.tile{border:1px solid #d1d9e0;border-radius:8px;padding:.8rem 1rem;background:#fff}
.tile .t{font-size:.9rem;color:#59636e;font-weight:600} .tile .v{font-size:1.7rem;font-weight:700;
 font-variant-numeric:tabular-nums;margin:.15rem 0} .tile p{margin:.3rem 0 0;font-size:.88rem}
.d{font-size:.85rem;font-weight:600} .d.good{color:#0a6e31} .d.bad{color:#b3261e} .d.same{color:#59636e}
.card{border:1px solid #d1d9e0;border-radius:8px;padding:.7rem 1rem;margin:.6rem 0}
.card h3{font-size:1.05rem;margin:.1rem 0 .3rem} .meta{color:#59636e;font-size:.88rem}
.card.skipped{background:#f6f8fa;border-style:dashed} .skip{color:#59636e;font-weight:600}
.ok{color:#0a6e31;font-weight:600} .failed{color:#b3261e;font-weight:600} .missing{color:#8a6d00;font-weight:600}
.changes{border-collapse:collapse;font-size:.9rem;width:100%} .changes td,.changes th{padding:.25rem .5rem;
 border-bottom:1px solid #eef1f4;text-align:left} .changes td.n{text-align:right;font-variant-numeric:tabular-nums}
a{color:#0b5cad}
"""

_ARROWS = {"up": "▲", "down": "▼"}


# --- formatting -----------------------------------------------------------------------------------

def _shown(kind: str, v: Any) -> str:
    """A tile's value with its unit, in the locale."""
    if v is None:
        return "–"
    if kind == "count":
        return i18n.decimal(v, 0)
    if kind == "money":
        return i18n.money(v, 0)
    if kind == "share":
        return i18n.percent(v, 1)
    if kind == "stars":
        return f"{i18n.decimal(v, 2)} / 5 ★"
    if kind == "hours":
        return i18n.t("{hours} hours", hours=i18n.decimal(v, 1))
    if kind == "roi":
        text = i18n.percent(v, 0)
        return text if float(v) <= 0 or text.startswith("-") else "+" + text
    return i18n.format_value(v)


class _Values(string.Formatter):
    """Fills an English template (translated first) with tagged values, each escaped: numbers by
    their format spec, ``("money", v)``, ``("date", iso)``, ``("roi", v)``, ``("word", code word)``,
    ``("data", text from data)``, ``("text", text)``."""

    def format_field(self, value: Any, spec: str) -> str:
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            tag, v = value
            if v is None:
                return "–"
            if tag == "money":
                return escape(i18n.money(v, 0))
            if tag == "date":
                return escape(i18n.date(v))
            if tag == "roi":
                return escape(_shown("roi", v))
            if tag == "word":
                return escape(i18n.value(v))
            return escape(v)
        return escape(i18n.format_value(value, spec))


def _fill(template: str, values: dict[str, Any] | None = None) -> str:
    return _Values().vformat(i18n.t(template), (), values or {})


def _change(tile: Tile, before: Any, when: str | None) -> str:
    """The tile's change since the previous run, in words and colour."""
    if when is None:
        return f'<span class="d same">{escape(i18n.t("first run"))}</span>'
    if not isinstance(before, (int, float)) or isinstance(before, bool):
        return f'<span class="d same">{escape(i18n.t("new since the last run"))}</span>'
    diff = float(tile.value) - float(before)
    if abs(diff) <= 1e-9 * max(1.0, abs(float(before))):
        return f'<span class="d same">{escape(i18n.t("unchanged since {when}", when=when))}</span>'
    if tile.kind in ("share", "roi"):
        amount = i18n.t("{pp} points", pp=i18n.decimal(abs(diff) * 100, 1))
    elif before:
        amount = i18n.percent(abs(diff / float(before)), 1)
    else:
        amount = _shown(tile.kind, abs(diff))
    direction = "up" if diff > 0 else "down"
    mood = "same" if tile.good == "neutral" else ("good" if direction == tile.good else "bad")
    words = i18n.t("up {amount} since {when}", amount=amount, when=when) if diff > 0 else \
        i18n.t("down {amount} since {when}", amount=amount, when=when)
    return f'<span class="d {mood}">{_ARROWS[direction]} {escape(words)}</span>'


# --- the page -------------------------------------------------------------------------------------

def _previous(dataset: str, metrics: dict[str, dict]) -> tuple[dict[str, dict], str | None, list]:
    """The metrics of the run before the published *metrics*, when that run was, and what changed."""
    from crm_analytics.reports import history

    before = history.previous(dataset)
    if not before:
        return {}, None, []
    info = before.get("run", {})
    finished = info.get("finished_utc") or info.get("run_id")
    when = i18n.date(finished[:10]) if finished and finished[:4].isdigit() else None
    return before["metrics"], when, history.changes(before["metrics"], metrics)


def write_index(dataset: str) -> Path:
    """Compute the summary's own numbers, keep this run in the history, write the summary page of
    *dataset* and return its path."""
    from crm_analytics.reports import history, summary

    summary.write_shop_numbers(dataset)
    history.record_run(dataset)
    history.clear_failure(dataset)
    return render_index(dataset)


def render_index(dataset: str) -> Path:
    """Write ``reports/<dataset>/index.html`` from the published metrics (and the failure record of
    the last run, if it failed) and return its path."""
    from crm_analytics.ingest import sources
    from crm_analytics.reports import history, summary
    from crm_analytics.ingest.params import resolve_notebook_params
    from crm_analytics.reports.publish import TABLE_SCRIPT, csp

    reports = paths.reports_dir(dataset)
    resolved = resolve_notebook_params(dataset)
    language = _dataset_value(resolved, "language", "en")
    i18n.use(language, currency=sources.currency(dataset))
    metrics = history.current_metrics(dataset)
    statuses = {nb: _status(reports, nb) for nb in resolved["notebooks"]}
    previous, when, changes = _previous(dataset, metrics)
    failure = history.last_failure(dataset)
    failed = (failure or {}).get("notebook")
    alpha = (resolved.get("per_notebook") or {}).get("04_campaign_roi", {}).get("alpha", 0.05)
    tiles = summary.tiles(dataset, metrics, level=1 - alpha)
    alerts = summary.alerts(dataset, metrics, previous, statuses, failed=failed, level=1 - alpha)
    parts = [f"<h1>{escape(i18n.t('Executive summary'))}</h1>",
             f"<p class='sub'>{escape(i18n.value(str(resolved.get('description') or dataset)))}</p>",
             f"<p class='sub'>{_fill('Data up to {end}; reports built {built}.', {'end': ('date', lookup_day(metrics)), 'built': ('date', _built(statuses))})}</p>"]
    if failure:
        parts.append("<div class='banner' role='alert'>" + _fill(
            "The last run failed at {when} in {report} (see {log}). The figures below are from the last good run.",
            {"when": ("text", _when(failure)), "report": ("data", failure.get("notebook", "")),
             "log": ("data", failure.get("log") or "build/logs")}) + "</div>")
    parts.append(_alerts_html(alerts))
    parts.append(f"<h2>{escape(i18n.t('The shop in numbers'))}</h2><div class='tiles'>")
    for tile in tiles:
        parts.append(_tile_html(tile, summary.lookup(previous, tile.source, tile.key) if previous else None, when,
                                reports))
    parts.append("</div>")
    parts.append(f"<h2>{escape(i18n.t('Reports'))}</h2>")
    for nb in sorted(set(resolved["notebooks"]) | set(resolved.get("skipped", {}))):
        status = statuses.get(nb)
        if nb == failed and status is not None:
            status = {**status, "status": "failed"}  # its page is the last good one, from an earlier run
        parts.append(_card_html(nb, status, resolved.get("skipped", {}).get(nb), reports))
    parts.append(_changes_html(changes, when, tiles))
    parts.append("<p class='meta'>" + _fill("Built by {command}. Every figure comes from the metrics files beside "
                                            "the reports; {compare} lists every change between two runs.",
                                            {"command": ("text", f"make reports DATASET={dataset}"),
                                             "compare": ("text", f"make compare DATASET={dataset}")}) + "</p>")
    page = (f"<!DOCTYPE html><html lang='{escape(language)}'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{csp()}\">"
            f"<title>{escape(i18n.t('Executive summary'))} — {escape(dataset)}</title><style>{_STYLE}</style>"
            "</head><body>" + "".join(parts) + f"<script>{TABLE_SCRIPT}</script></body></html>\n")
    out = reports / "index.html"
    reports.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("index.html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def _dataset_value(resolved: dict, key: str, default: Any) -> Any:
    for values in (resolved.get("per_notebook") or {}).values():
        if isinstance(values, dict) and key in values:
            return values[key]
    return default


def lookup_day(metrics: dict) -> str | None:
    from crm_analytics.reports.summary import lookup

    for source, key in (("summary", "as_of"), ("02_segmentation", "as_of"), ("03_clv_churn", "observation_end")):
        v = lookup(metrics, source, key)
        if isinstance(v, str) and v[:4].isdigit():
            return v[:10]
    return None


def _built(statuses: dict[str, dict]) -> str | None:
    times = [s.get("finished_utc") for s in statuses.values() if s.get("finished_utc")]
    return max(times)[:10] if times else None


def _when(failure: dict) -> str:
    stamp = str(failure.get("failed_utc") or failure.get("finished_utc") or "")
    if len(stamp) >= 16 and stamp[:4].isdigit():
        return f"{i18n.date(stamp[:10])} {stamp[11:16]} UTC"
    return stamp or "–"


def _status(reports: Path, nb: str) -> dict:
    path = reports / "status" / f"{nb}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"status": "missing"}


def _alerts_html(alerts: list[Alert]) -> str:
    if not alerts:
        return f"<ul class='alerts'><li class='none'>{escape(i18n.t('Nothing needs attention: no alert.'))}</li></ul>"
    order = sorted(alerts, key=lambda a: a.level != "bad")
    items = []
    for a in order:
        text = _fill(a.text, a.values)
        link = f" <a href='{a.link}.html'>{escape(i18n.t('details'))}</a>" if a.link else ""
        label = i18n.t("Act:") if a.level == "bad" else i18n.t("Check:")
        items.append(f"<li class='{a.level}'><strong>{escape(label)}</strong> {text}{link}</li>")
    return f"<h2>{escape(i18n.t('Alerts'))}</h2><ul class='alerts'>" + "".join(items) + "</ul>"


def _tile_html(tile: Tile, before: Any, when: str | None, reports: Path) -> str:
    link = (f"<p><a href='{tile.link}.html'>{escape(i18n.t('more in the report'))}</a></p>"
            if tile.link and (reports / f"{tile.link}.html").exists() else "")
    value = json.dumps(tile.value)
    metric = html.escape(f"{tile.source}/{tile.key}", quote=True)  # an attribute: HTML escaping is enough
    return (f"<div class='tile' data-metric='{metric}' data-value='{value}'>"
            f"<div class='t'>{escape(i18n.t(tile.title))}</div>"
            f"<div class='v'>{escape(_shown(tile.kind, tile.value))}</div>"
            f"{_change(tile, before, when)}<p>{_fill(tile.sentence, tile.values)}</p>{link}</div>")


def _card_html(nb: str, status: dict | None, skipped: str | None, reports: Path) -> str:
    title = escape(notebook_title(nb))
    question = escape(notebook_question(nb))
    if skipped is not None:
        return (f"<div class='card skipped'><h3>{title}</h3><div class='meta'><span class='skip'>"
                f"{escape(i18n.t('not run'))}</span></div><p>{_fill('Not run for this dataset: {why}', {'why': ('data', skipped)})}</p></div>")
    state = (status or {}).get("status", "missing")
    words = {"ok": i18n.t("up to date"), "failed": i18n.t("failed in the last run; this page is from an earlier run"),
             "missing": i18n.t("not built yet")}
    css = state if state in ("ok", "failed") else "missing"
    meta = f'<span class="{css}">{escape(words.get(state, state))}</span>'
    if (status or {}).get("finished_utc"):
        meta += " · " + escape(i18n.date(status["finished_utc"][:10]))
    link = f'<a href="{nb}.html">{title}</a>' if (reports / f"{nb}.html").exists() else title
    return f"<div class='card'><h3>{link}</h3><div class='meta'>{meta}</div><p>{question}</p></div>"


def _changes_html(changes: list, when: str | None, tiles: list[Tile]) -> str:
    """The tiles' figures that changed since the previous run, and how many other numbers did."""
    if when is None:
        return ""
    head = f"<h2>{escape(i18n.t('What changed since {when}', when=when))}</h2>"
    shown = {(t.source, t.key): t for t in tiles}
    rows = []
    for c in changes:
        tile = shown.get((c.notebook, c.key))
        if tile is None:
            continue
        rows.append(f"<tr><td>{escape(i18n.t(tile.title))}</td><td class='n'>{escape(_shown(tile.kind, c.old))}</td>"
                    f"<td class='n'>{escape(_shown(tile.kind, c.new))}</td></tr>")
    others = len(changes) - len(rows)
    if not changes:
        return head + f"<p>{escape(i18n.t('No figure changed.'))}</p>"
    table = ""
    if rows:
        table = (f"<table class='changes'><thead><tr><th>{escape(i18n.t('Figure'))}</th><th>"
                 f"{escape(i18n.t('Before'))}</th><th>{escape(i18n.t('Now'))}</th></tr></thead><tbody>"
                 + "".join(rows) + "</tbody></table>")
    more = f"<p class='meta'>{_fill('{n:,} other numbers in the reports changed too.', {'n': others})}</p>" if others else ""
    return head + table + more


def _notebook_blocks(notebook: str) -> list[str]:
    path = paths.notebooks_dir() / f"{notebook}.ipynb"
    if not path.exists():
        return []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            return i18n.block_ids("".join(cell["source"]))
    return []


def notebook_title(notebook: str) -> str:
    """The notebook's first level-1 heading in the report language, or a title made from its name."""
    for block in _notebook_blocks(notebook):
        if block.startswith("# "):
            return i18n.translate_markdown(block, i18n.language())[2:].strip()
    return notebook.split("_", 1)[1].replace("_", " ").capitalize() if "_" in notebook else notebook


def notebook_question(notebook: str) -> str:
    """The first sentence of the notebook's introduction (what the report answers), as plain text."""
    import re

    for block in _notebook_blocks(notebook):
        if not block.startswith("#"):
            text = i18n.translate_markdown(block, i18n.language())
            text = re.sub(r"[*`_]", "", " ".join(text.split()))
            first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
            return first
    return ""

"""``reports/<dataset>/index.html``: every report with its status, run time and headline numbers, and every
pipeline notebook the dataset cannot feed with the sentence why (``skipped`` of
:func:`crm_analytics.params.resolve_notebook_params`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crm_analytics import paths
from crm_analytics.report import escape

__all__ = ["write_index", "headline_numbers"]

_MAX_HEADLINES = 10
#: what a published page may load: nothing from anywhere, but its own inline styles and embedded images
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1000px;margin:2rem auto;
 padding:0 1rem;color:#1f2328;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem} .sub{color:#59636e;margin-top:0}
.card{border:1px solid #d1d9e0;border-radius:8px;padding:1rem 1.2rem;margin:1rem 0}
.card h2{font-size:1.15rem;margin:.1rem 0 .4rem} .meta{color:#59636e;font-size:.9rem}
.card.skipped{background:#f6f8fa;border-style:dashed} .skip{color:#59636e;font-weight:600}
.ok{color:#0a6e31;font-weight:600} .failed{color:#b3261e;font-weight:600} .missing{color:#8a6d00;font-weight:600}
table{border-collapse:collapse;font-size:.92rem;margin-top:.4rem} td{padding:.15rem .8rem .15rem 0;vertical-align:top}
td.k{color:#59636e} td.v{font-variant-numeric:tabular-nums;font-weight:600}
"""


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif not isinstance(d, list):
        out.append((prefix, d))
    return out


def headline_numbers(metrics: dict) -> list[tuple[str, Any]]:
    """The numbers the index shows for one metrics file.

    A notebook may name them in a top-level ``headline`` mapping (label -> value);
    otherwise the first scalar values of the file are shown.
    """
    if isinstance(metrics.get("headline"), dict):
        return list(metrics["headline"].items())[:_MAX_HEADLINES]
    return _flatten(metrics)[:_MAX_HEADLINES]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:,.2f}"
        return f"{v:.3g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "—" if v is None else str(v)


def write_index(dataset: str) -> Path:
    """Write the index page of *dataset* and return its path."""
    from crm_analytics.params import resolve_notebook_params

    reports = paths.reports_dir(dataset)
    resolved = resolve_notebook_params(dataset)
    cards = {}
    for nb, reason in resolved.get("skipped", {}).items():
        cards[nb] = (f'<div class="card skipped"><h2>{escape(notebook_title(nb))}</h2>'
                     f'<div class="meta"><span class="skip">not run</span></div>'
                     f"<p>Not run for this dataset: {escape(reason)}</p></div>")
    for nb in resolved["notebooks"]:
        status_file = reports / "status" / f"{nb}.json"
        status = json.loads(status_file.read_text()) if status_file.exists() else {"status": "missing"}
        metrics_file = reports / "metrics" / f"{nb}.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
        title = notebook_title(nb)
        state = status.get("status", "missing")
        seconds = status.get("seconds")
        meta = f'<span class="{state if state in ("ok", "failed") else "missing"}">{escape(state)}</span>'
        if seconds is not None:
            meta += f" · ran in {seconds:.0f} s"
        if status.get("finished_utc"):
            meta += f" · {escape(status['finished_utc'])}"
        rows = "".join(
            f'<tr><td class="k">{escape(str(k))}</td><td class="v">{escape(_fmt(v))}</td></tr>'
            for k, v in headline_numbers(metrics)
        )
        link = f'<a href="{nb}.html">{escape(title)}</a>' if (reports / f"{nb}.html").exists() \
            else escape(title)
        cards[nb] = (
            f'<div class="card"><h2>{link}</h2><div class="meta">{meta} · '
            f'<a href="metrics/{nb}.json">metrics</a></div>'
            f"<table>{rows}</table></div>"
        )
    description = escape(str(resolved.get("description") or ""))
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>CRM Analytics — {escape(dataset)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>CRM Analytics — {escape(dataset)}</h1><p class='sub'>{description}</p>"
        + "".join(cards[nb] for nb in sorted(cards))  # pipeline order: NN_topic
        + "<p class='meta'>Built by <code>make reports DATASET="
        + escape(dataset)
        + "</code>. Numbers come from the metrics files beside each report.</p></body></html>\n"
    )
    out = reports / "index.html"
    reports.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("index.html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def notebook_title(notebook: str) -> str:
    """The first level-1 heading of the notebook, or a title made from its file name."""
    import json

    from crm_analytics import paths

    path = paths.notebooks_dir() / f"{notebook}.ipynb"
    if path.exists():
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                for line in "".join(cell["source"]).splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
    return notebook.split("_", 1)[1].replace("_", " ").capitalize() if "_" in notebook else notebook

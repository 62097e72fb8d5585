"""Published HTML is read by people outside the team: data-derived text is shown as text, never
run as markup, and a report loads nothing from another host.

The end-to-end part builds the `ci` world, salts every free-text column of its raw tables with markup
(scripts, event handlers, Markdown, formulas, broken table markup), runs `make reports` on it and
parses every published page.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from crm_analytics.reports import plots, publish, report
from crm_analytics.ingest.params import pipeline_notebooks

from conftest import REPO, copy_project

SCRIPT = '<script>alert("xss")</script>'
PAYLOADS = [
    SCRIPT,
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ [link](javascript:alert(1)) `code`",
    "$x^2$ {0} %s \\(y\\)",
    "</td></tr></table><h1>broken</h1>",
    "<style>body{display:none}</style>",
    '<a href="https://tracker.example/p.gif">x</a>',
]

#: free-text columns of the demo world's raw tables (the values a report may show: names, labels, texts)
SALTED_COLUMNS = {
    "campaigns": ["name", "offer", "target_segment"],
    "campaign_assignments": ["variant"],
    "customers": ["city", "region", "acquisition_channel", "full_name"],
    "events": ["device", "search_query"],
    "products": ["name", "category", "brand"],
    "reviews": ["text"],
    "tickets": ["category", "text"],
}


# ------------------------------------------------------------------------------------------- units


def test_escape_shows_markup_as_text():
    for payload in PAYLOADS:
        out = report.escape(payload)
        assert not set("<>*_`[]$") & set(out), out
    assert report.escape("Çanta & Ayakkabı") == "Çanta &#38; Ayakkabı"
    assert report.escape(None) == "–"
    assert report.escape("line one\n# heading") == "line one &#35; heading"
    assert "https://" not in report.escape("see https://evil.example") and "www." not in report.escape("www.x.com")


def test_md_escapes_fields_but_keeps_the_template_and_format_specs():
    out = report.md("**{name}** bought {n:,} items ({share:.1%})", name=SCRIPT, n=12345, share=0.25).data
    assert out.startswith("**&#60;script&#62;") and "12,345" in out and "25&#46;0%" in out
    assert "<script" not in out


def test_md_refuses_a_field_inside_a_code_span():
    with pytest.raises(ValueError, match="code span"):
        report.md("from the `{kind}` source", kind="online_retail")
    assert "`params/x.yaml`" in report.md("set `params/x.yaml` for {n}", n=1).data


def test_styled_escapes_cells_index_and_column_labels_and_names():
    frame = pd.DataFrame({SCRIPT: ["<b>x</b>", "ok"], "value": [1234.5, 0.5]},
                         index=pd.Index(["<i>row</i>", "r2"], name="<u>name</u>"))
    html = report.styled(frame, formats={"value": "{:.1%}"}).to_html()
    assert "<script" not in html and "<b>" not in html and "<i>" not in html and "<u>" not in html
    assert "&lt;script&gt;" in html and "&lt;i&gt;row&lt;/i&gt;" in html and "123,450.0%" in html
    multi = frame.set_index([pd.Index(["<em>a</em>", "b"]), frame.index])
    assert "<em>" not in report.styled(multi).to_html()


def test_chart_text_is_never_read_as_a_formula():
    import matplotlib.pyplot as plt

    plots.style()
    fig, ax = plt.subplots()
    try:
        ax.set_title("$x^2$ and $ alone")
        fig.canvas.draw()  # mathtext would parse (and could fail on) the dollar signs
        assert ax.title.get_parse_math() is False
    finally:
        plt.close(fig)


def test_export_escapes_leftover_markup_and_loads_nothing_from_another_host(tmp_path):
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# A report\n\nProse with $x$."),
        new_code_cell("x", outputs=[
            new_output("display_data", data={"text/html": "<b>ok</b>" + SCRIPT + '<img src="http://evil.example/x.png" '
                                                          'onerror="alert(2)"><a href="https://evil.example">l</a>'}),
            new_output("display_data", data={"application/javascript": "alert(3)"}),
            new_output("display_data", data={"text/markdown": "<iframe srcdoc='<b>x</b>'></iframe>"}),
            new_output("display_data", data={"image/png": "iVBORw0KGgo="}),
        ]),
    ]
    src = tmp_path / "r.ipynb"
    nbformat.write(nb, src)
    page = publish.export_html(src, tmp_path / "r.html").read_text(encoding="utf-8")
    assert publish.live_markup(page) == [] and publish.external_references(page) == []
    own = f"<script>{publish.TABLE_SCRIPT}</script>"  # the page's one script: sorting and searching tables
    assert page.count(own) == 1 and "<script" not in page.replace(own, "")
    assert "<b>ok</b>" in page and "data:image/png;base64" in page
    assert "&lt;script&gt;" in page  # shown as text, not dropped
    assert "Content-Security-Policy" in page


def test_markdown_is_sanitised_after_rendering_and_authored_cells_are_left_as_written(tmp_path):
    nb = new_notebook()
    nb.cells = [new_markdown_cell("Clean tables in `data/interim/<dataset>/`."),
                new_code_cell("x", outputs=[new_output("display_data", data={
                    "text/markdown": report.md("Set `params/<dataset>.yaml`; **{name}**", name=SCRIPT).data,
                    "text/plain": "<IPython.core.display.Markdown object>"})])]
    nbformat.write(nb, tmp_path / "r.ipynb")
    page = publish.export_html(tmp_path / "r.ipynb", tmp_path / "r.html").read_text(encoding="utf-8")
    shown = _visible_text(page)
    assert "data/interim/<dataset>/" in shown and "params/<dataset>.yaml" in shown  # once escaped, not twice
    assert SCRIPT in shown and "Markdown object" not in shown and publish.live_markup(page) == []


def test_a_page_with_an_external_resource_is_not_published(tmp_path, monkeypatch):
    from crm_analytics import errors

    nb = new_notebook()
    nb.cells = [new_markdown_cell("# r")]
    nbformat.write(nb, tmp_path / "r.ipynb")
    target = tmp_path / "r.html"
    target.write_text("last good")
    monkeypatch.setattr(publish, "external_references", lambda page: ["https://cdn.example/require.js"])
    with pytest.raises(errors.CrmAnalyticsError, match="would load 'https://cdn.example/require.js'"):
        publish.export_html(tmp_path / "r.ipynb", target)
    assert target.read_text() == "last good"


@pytest.mark.parametrize("page, found", [
    ('<script src="https://cdn.example/a.js"></script>', "https://cdn.example/a.js"),
    ('<link rel="stylesheet" href="//fonts.example/f.css">', "//fonts.example/f.css"),
    ("<style>@import 'https://fonts.example/f.css';</style>", "https://fonts.example/f.css"),
    ('<div style="background:url(http://x.example/i.png)"></div>', "http://x.example/i.png"),
    ('<img src="data:image/png;base64,AAA"><a href="#top">t</a><a href="02_segmentation.html">r</a>', None),
])
def test_external_references(page, found):
    assert publish.external_references(page) == ([found] if found else [])


def _display_argument_ok(node: ast.Call, package_names: set[str]) -> bool:
    """``display(x)``: x is a call into the package (report.md, report.styled, clv_report.which_to_trust …)."""
    arg = node.args[0] if node.args else None
    return (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute)
            and isinstance(arg.func.value, ast.Name) and arg.func.value.id in package_names)


def test_notebooks_never_build_html_or_markdown_from_raw_strings():
    for nb in pipeline_notebooks():
        cells = json.loads((REPO / "notebooks" / f"{nb}.ipynb").read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        tree = ast.parse(code)
        package_names = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                         and (n.module or "").startswith("crm_analytics") for a in n.names}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "IPython.display":
                assert {a.name for a in node.names} <= {"display"}, f"{nb}: imports {[a.name for a in node.names]}"
            if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name)
                                                        and node.value.id in package_names):  # plots.style() is ours
                assert node.attr not in ("style", "to_html", "_repr_html_"), \
                    f"{nb} line {node.lineno}: tables go through report.styled"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "display":
                assert _display_argument_ok(node, package_names), \
                    f"{nb} line {node.lineno}: display only what report.md / report.styled (or the package) render"


# ------------------------------------------------------------------------------ end to end, salted


def _make(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CRM_ANALYTICS_ROOT": str(root), "CRM_ANALYTICS_SECRET": "salted-secret"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=900)


def salt_raw_tables(raw: Path) -> int:
    """Append a markup payload to every distinct value of the free-text columns (the control arm keeps
    its name; the truth files follow the renamed arms and categories); return how many distinct values
    were salted."""
    salted = 0
    for table, columns in SALTED_COLUMNS.items():
        path = raw / f"{table}.parquet"
        df = pd.read_parquet(path)
        for col in columns:
            values = sorted(v for v in df[col].dropna().unique() if v != "control")
            mapping = {v: f"{v} {PAYLOADS[i % len(PAYLOADS)]}" for i, v in enumerate(values)}
            df[col] = df[col].map(lambda v: mapping.get(v, v))
            salted += len(mapping)
            if (table, col) == ("campaign_assignments", "variant"):
                _rename_arms_in_truth(raw, mapping)
            if (table, col) == ("products", "category"):
                _rename_categories_in_truth(raw, mapping)
        df.to_parquet(path, index=False)
    return salted


def _rename_categories_in_truth(raw: Path, categories: dict[str, str]) -> None:
    truth = pd.read_parquet(raw / "truth_customers.parquet")
    truth = truth.rename(columns={f"pref_{c}": f"pref_{new}" for c, new in categories.items()})
    truth.to_parquet(raw / "truth_customers.parquet", index=False)


def _rename_arms_in_truth(raw: Path, arms: dict[str, str]) -> None:
    truth = json.loads((raw / "truth.json").read_text(encoding="utf-8"))
    for campaign in truth["campaigns"].values():
        campaign["arms"] = [arms.get(a, a) for a in campaign["arms"]]
        campaign["true_ate_by_arm"] = {arms.get(a, a): v for a, v in campaign["true_ate_by_arm"].items()}
    (raw / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    for name in ("truth_campaign_effects.parquet", "truth_effects_at_end.parquet"):
        effects = pd.read_parquet(raw / name)
        effects["variant"] = effects["variant"].map(lambda v: arms.get(v, v))
        effects.to_parquet(raw / name, index=False)
    # the params name the tested arms of the next-best-action actions: they follow the renamed arms too
    params = raw.parents[2] / "params" / f"{raw.name}.yaml"
    spec = yaml.safe_load(params.read_text(encoding="utf-8"))
    for action in spec.get("actions", {}).values():
        action["arm"] = arms.get(action["arm"], action["arm"])
    params.write_text(yaml.safe_dump(spec, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def salted(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("salted"))
    ci = (root / "params" / "ci.yaml").read_text(encoding="utf-8")
    lines = [line for line in ci.splitlines() if not line.startswith("description:")]
    (root / "params" / "salted.yaml").write_text(
        f"description: 'A shop called {SCRIPT}'\n" + "\n".join(lines) + "\n", encoding="utf-8")
    data = _make(root, "data", "DATASET=salted")
    assert data.returncode == 0, data.stdout + data.stderr
    assert salt_raw_tables(root / "data" / "raw" / "salted") > 100
    run = _make(root, "reports", "DATASET=salted")
    assert run.returncode == 0, run.stdout + run.stderr
    return root


class _Text(HTMLParser):
    """The text a reader sees (outside <style>)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._skip = [], False

    def handle_starttag(self, tag, attrs):
        self._skip = tag == "style"

    def handle_endtag(self, tag):
        self._skip = False

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _visible_text(page: str) -> str:
    p = _Text()
    p.feed(page)
    return " ".join(p.parts)


@pytest.mark.slow
@pytest.mark.e2e
def test_salted_data_is_shown_as_text_and_no_report_loads_anything(salted):
    reports = salted / "reports" / "salted"
    pages = {f.name: f.read_text(encoding="utf-8") for f in sorted(reports.glob("*.html"))}
    assert set(pages) == {f"{nb}.html" for nb in pipeline_notebooks()} | {"index.html"}
    for name, page in pages.items():
        assert publish.live_markup(page) == [], f"{name}: live markup {publish.live_markup(page)[:3]}"
        assert publish.external_references(page) == [], f"{name}: loads {publish.external_references(page)[:3]}"
        assert "<h1>broken" not in page and "<style>body{display:none}" not in page, name
    shown = {name: _visible_text(page) for name, page in pages.items()}
    assert SCRIPT in shown["index.html"]  # the shop's own description, as text
    assert SCRIPT in shown["04_campaign_roi.html"] or "onerror=alert(1)" in shown["04_campaign_roi.html"]
    assert any(p in shown["02_segmentation.html"] for p in PAYLOADS)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: hosts the browser itself calls at start (time, accounts, updates): not the page's requests
_BROWSER_OWN = re.compile(r"^https?://[^/]*(google\.com|googleapis\.com|gvt1\.com|gstatic\.com)(/|:|$)")


def open_offline(page: Path, profile: Path) -> tuple[str, list[str], list[str]]:
    """Open *page* in headless Chromium with every host name unresolvable (as on a train); return the
    rendered DOM, the console messages and the page's requests to other hosts."""
    run = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--enable-logging=stderr", "--v=1", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    requested = re.findall(r"NotifyBeforeURLRequest: (\S+)", run.stderr)
    external = [u for u in requested if u.startswith(("http:", "https:")) and not _BROWSER_OWN.match(u)]
    return run.stdout, console, external


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs Debian's chromium)")
def test_every_salted_page_opens_offline_in_a_browser_without_errors_or_requests(salted, tmp_path):
    """Each page renders its text, logs nothing to the console (no script error, no CSP violation) and
    asks no other host for anything."""
    for page in sorted((salted / "reports" / "salted").glob("*.html")):
        dom, console, external = open_offline(page, tmp_path / page.stem)
        assert not console, f"{page.name}: {console[:3]}"
        assert not external, f"{page.name} requests {external[:3]}"
        assert "<h1" in dom and "<script" not in dom.replace(f"<script>{publish.TABLE_SCRIPT}</script>", ""), page.name

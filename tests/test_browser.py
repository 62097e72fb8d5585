"""Published pages in a real browser: Playwright driving Debian's Chromium, offline.

The first part exports small notebooks with :func:`crm_analytics.reports.publish.export_html` and checks the page's
one script (``templates/report/tables.js``): allowed by the Content-Security-Policy by its hash, long
tables searchable (with the page language's casing rules) and sortable (numbers as the page's locale
writes them), wide tables scrolling in their own box.

The second part builds the ``ci`` (English) and ``demo`` (Turkish) reports in temporary copies of the
project (``make reports``, both at once) and opens ``index.html`` and every report at desktop and phone
width: no console message or page error, no request to another host, no sideways scrolling on a phone,
``<html lang>`` in the dataset's language, long tables that search and sort; the summary tiles of the
index equal the metrics files; the reports read as a stakeholder report (no ``snake_case`` headers,
``True``/``False``/``-0`` cells, pandas row numbers or charts without alt text). Full-page screenshots
go to ``build/screenshots/<dataset>/<page>-<width>.png`` for a person to look at.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from crm_analytics.reports import publish
from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.ingest.params import pipeline_notebooks

from conftest import copy_project

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    sync_playwright = None

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "build" / "screenshots"
CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Playwright (pip install -e '.[dev]') and Debian's chromium on PATH (apt-get install chromium)")

LANGUAGE = {"ci": "en", "demo": "tr"}
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
PAGES = ["index", *pipeline_notebooks()]
REPORT_PAGES = PAGES[1:]
SEARCH_LABEL = {"en": "Search this table", "tr": "Bu tabloda ara"}
#: more body rows than this and a table gets a search box and sortable headers
LONG = 10


# ------------------------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None or sync_playwright is None:
        pytest.skip("needs Playwright and Debian's chromium on PATH")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@dataclass
class Visit:
    """An open page and what happened while it loaded and ran."""

    page: object
    console: list[str] = field(default_factory=list)  # console errors and warnings
    errors: list[str] = field(default_factory=list)  # uncaught exceptions
    requests: list[str] = field(default_factory=list)  # requests to anything but the file and data: URLs

    def problems(self) -> list[str]:
        return ([f"console: {m}" for m in self.console] + [f"page error: {e}" for e in self.errors]
                + [f"request to another host: {u}" for u in self.requests])


@contextmanager
def visit(browser, path: Path, width: str = "desktop"):
    """Open *path* at *width* with every request that is not the file itself (or a data: URL) aborted and
    recorded; yield a :class:`Visit`."""
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, device_scale_factor=1,
                                  service_workers="block")
    seen = Visit(page=None)

    def guard(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            seen.requests.append(url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    seen.page = page
    page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: seen.errors.append(str(e)))
    try:
        page.goto(path.as_uri(), wait_until="load")
        yield seen
    finally:
        context.close()


#: in the page: every table's body rows (those of a header-only first row left out, as tables.js does)
_TABLES_JS = """() => Array.from(document.querySelectorAll('table')).map(t => {
  const body = t.tBodies.length === 1 ? Array.from(t.tBodies[0].rows) : [];
  if (!t.tHead && body.length && Array.from(body[0].cells).every(c => c.tagName === 'TH')) body.shift();
  const tools = t.closest('.crm-table-scroll')?.previousElementSibling;
  return {rows: body.length, visible: body.filter(r => !r.hidden).length,
          search: !!(tools && tools.classList.contains('crm-table-tools') && tools.querySelector('input[type=search]')),
          label: tools && tools.querySelector('label') ? tools.querySelector('label').textContent : null,
          scrolls: !!t.closest('.crm-table-scroll')};
})"""

#: in the page: the text of column *index* (colspans counted) of every visible body row of table *t*
_COLUMN_JS = """([t, index]) => Array.from(document.querySelectorAll('table')[t].tBodies[0].rows)
  .filter(r => !r.hidden).map(r => {
    let col = 0;
    for (const c of r.cells) { if (col === index) return c.textContent.trim(); col += c.colSpan || 1; }
    return null;
  })"""

#: in the page: sortable headers as [table, header cell's column, sort type, text]
_HEADERS_JS = """() => Array.from(document.querySelectorAll('table')).flatMap((t, ti) =>
  Array.from(t.querySelectorAll('th[data-sort-type]')).map(th => {
    let col = 0;
    for (const c of th.parentNode.cells) { if (c === th) break; col += c.colSpan || 1; }
    return [ti, col, th.dataset.sortType, th.textContent.trim()];
  }))"""


#: in the page: the text of every (or every visible) body row of table *t*, cells apart, lower-cased as the
#: page's language does it
_ROW_TEXTS_JS = """([t, visibleOnly]) => Array.from(document.querySelectorAll('table')[t].tBodies[0].rows)
  .filter(r => !(visibleOnly && r.hidden))
  .map(r => Array.from(r.cells).map(c => c.textContent.trim()).join(' | ')
    .toLocaleLowerCase(document.documentElement.lang))"""


def parse_number(text: str, language: str) -> float | None:
    """A table cell's number as a reader of *language* writes it ('1,234.5' / '1.234,5', '12%' / '%12',
    '−3', '<0.0001'), None for a missing value ('–'); raises ValueError for text."""
    t = re.sub(r"[\s\u00a0\u202f\u2009]", "", text)
    if t in ("", "–", "—", "-", "−"):
        return None
    t = t.lstrip("<>≤≥").replace("−", "-").replace("%", "").replace("₺", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    decimal, group = (",", ".") if language == "tr" else (".", ",")
    for d, g in ((decimal, group), (group, decimal)):
        if re.fullmatch(rf"\d{{1,3}}(\{g}\d{{3}})+(\{d}\d+)?|\d+(\{d}\d*)?|\{d}\d+", t):
            return sign * float(t.replace(g, "").replace(d, "."))
    if t == "∞":
        return sign * math.inf
    raise ValueError(f"not a number: {text!r}")


def assert_sorted(values: list[str], language: str, descending: bool, where: str) -> None:
    numbers = [parse_number(v, language) for v in values]
    present = [n for n in numbers if n is not None]
    assert numbers[:len(present)] == present, f"{where}: missing values are not last: {values}"
    assert present == sorted(present, reverse=descending), \
        f"{where}: not in {'descending' if descending else 'ascending'} order: {values}"


# --------------------------------------------------------------------------- the page's own script


def _export(tmp_path: Path, outputs: list, language: str, name: str = "r") -> Path:
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# A report"), new_code_cell("x", outputs=outputs)]
    nbformat.write(nb, tmp_path / f"{name}.ipynb")
    return publish.export_html(tmp_path / f"{name}.ipynb", tmp_path / f"{name}.html", language=language)


def _html(html: str):
    return new_output("display_data", data={"text/html": html})


def _table(header: list[str], rows: list[list[str]], *, index_names: list[str] | None = None) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    names = ("<tr>" + "".join(f"<th>{n}</th>" for n in index_names) + "<th></th>" * (len(header) - len(index_names))
             + "</tr>") if index_names else ""
    body = "".join("<tr>" + "".join(cell for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr>{names}</thead><tbody>{body}</tbody></table>"


CITIES = ["İstanbul", "Ankara", "İzmir", "Isparta", "Bursa", "Antalya", "Konya", "Adana", "Şanlıurfa", "Eskişehir",
          "Iğdır", "Kayseri"]


def _city_table(language: str) -> str:
    """12 cities with a revenue and a share written as *language* writes numbers; two missing."""
    revenue = [1234.5, 98.25, 1234567.0, 7.0, None, 45000.0, 12.5, 0.5, 3300.0, None, 999.0, 20000.25]
    share = [0.12, 0.05, 0.5, -0.03, 0.0, 0.101, 0.2, 0.07, 0.33, 0.01, 1.0, 0.09]

    def number(v):
        if v is None:
            return "–"
        s = f"{v:,.2f}".rstrip("0").rstrip(".")
        return s.translate(str.maketrans(",.", ".,")) if language == "tr" else s

    def percent(v):
        s = f"{v * 100:.1f}".rstrip("0").rstrip(".").replace("-", "−")
        s = s.replace(".", ",") if language == "tr" else s
        return ("−%" + s[1:] if s.startswith("−") else "%" + s) if language == "tr" else s + "%"

    rows = [[f"<th>{c}</th>", f"<td>{number(r)}</td>", f"<td>{percent(s)}</td>"]
            for c, r, s in zip(CITIES, revenue, share)]
    return _table(["", "revenue", "share"], rows, index_names=["city"])


def test_the_table_script_is_inlined_and_the_policy_allows_exactly_it(tmp_path):
    import base64
    import hashlib

    page = _export(tmp_path, [_html(_city_table("en"))], "en").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.DOTALL)
    assert scripts == [publish.TABLE_SCRIPT], "the page runs one script: tables.js, byte for byte"
    assert "</script" not in publish.TABLE_SCRIPT.lower() and "<!--" not in publish.TABLE_SCRIPT
    assert publish.TABLE_SCRIPT.isascii(), "keep tables.js ASCII (\\u escapes): its hash is of its UTF-8 bytes"
    digest = base64.b64encode(hashlib.sha256(publish.TABLE_SCRIPT.encode()).digest()).decode()
    policy = publish.csp()
    assert policy == (f"default-src 'none'; script-src 'sha256-{digest}'; img-src data:; "
                      "style-src 'unsafe-inline'; font-src data:")
    metas = re.findall(r"<meta[^>]*Content-Security-Policy[^>]*>", page)
    assert len(metas) == 1 and f'content="{policy}"' in metas[0]
    assert publish.live_markup(page) == [] and publish.external_references(page) == []
    # any other script is still live markup, however it is written
    assert publish.live_markup(page.replace("<script>", "<script>alert(1);")) == ["<script>"]
    assert publish.live_markup(page.replace("<script>", '<script type="module">'))
    assert publish.live_markup("<p><script>alert(1)") == ["<script>"]


def test_export_sets_the_page_language(tmp_path):
    assert re.search(r'<html lang="tr">', _export(tmp_path, [], "tr").read_text(encoding="utf-8"))
    assert re.search(r'<html lang="en">', _export(tmp_path, [], "en", "e").read_text(encoding="utf-8"))
    with pytest.raises(CrmAnalyticsError, match=r"language must be an ISO 639-1 code .* got 'Turkish'"):
        _export(tmp_path, [], "Turkish", "x")
    with pytest.raises(CrmAnalyticsError, match="language must be"):
        _export(tmp_path, [], 'en" onload="x', "y")


def test_a_chart_keeps_the_alt_text_the_notebook_gave_it(tmp_path):
    png = new_output("display_data", data={"image/png": "iVBORw0KGgo="},
                     metadata={"image/png": {"alt": "Revenue by month <2025>"}})
    bare = new_output("display_data", data={"image/png": "iVBORw0KGgo="})
    page = _export(tmp_path, [png, bare], "en").read_text(encoding="utf-8")
    alts = re.findall(r'<img[^>]*alt="([^"]*)"', page)
    assert alts == ["Revenue by month &lt;2025&gt;", "No description has been provided for this image"]


@needs_browser
@pytest.mark.parametrize("language", ["en", "tr"])
def test_long_tables_search_and_sort_in_the_page_language(browser, tmp_path, language):
    short = _table(["", "n"], [[f"<th>{i}</th>", f"<td>{i}</td>"] for i in range(LONG)])
    path = _export(tmp_path, [_html(_city_table(language)), _html(short)], language)
    with visit(browser, path, "phone") as v:
        page = v.page
        tables = page.evaluate(_TABLES_JS)
        assert [(t["rows"], t["search"], t["label"]) for t in tables] == [
            (12, True, SEARCH_LABEL[language]), (LONG, False, None)]
        box = page.locator("input[type=search]")
        assert page.get_by_label(SEARCH_LABEL[language]).count() == 1

        # Turkish casing: 'istanbul' finds 'İstanbul' and 'ısparta' finds 'Isparta' on a Turkish page; an
        # English page lower-cases 'I' to 'i'
        box.fill("istanbul")
        assert page.evaluate(_COLUMN_JS, [0, 0]) == (["İstanbul"] if language == "tr" else [])
        box.fill("ISPARTA" if language == "en" else "ısparta")
        assert page.evaluate(_COLUMN_JS, [0, 0]) == ["Isparta"]
        box.fill("AN")
        assert page.evaluate(_COLUMN_JS, [0, 0]) == ["İstanbul", "Ankara", "Antalya", "Adana", "Şanlıurfa"]
        box.fill("an  ya")  # every word typed, anywhere in the row
        assert page.evaluate(_COLUMN_JS, [0, 0]) == ["Antalya"]
        box.fill("")
        assert len(page.evaluate(_COLUMN_JS, [0, 0])) == 12

        headers = {h[3]: h for h in page.evaluate(_HEADERS_JS)}
        assert {k: h[2] for k, h in headers.items()} == {"city": "text", "revenue": "number", "share": "number"}
        for name in ("revenue", "share"):
            button = page.locator("th", has_text=name).locator("button")
            button.click()
            assert page.locator("th", has_text=name).get_attribute("aria-sort") == "ascending"
            values = page.evaluate(_COLUMN_JS, [0, headers[name][1]])
            assert_sorted(values, language, False, name)
            button.click()
            assert page.locator("th", has_text=name).get_attribute("aria-sort") == "descending"
            assert_sorted(page.evaluate(_COLUMN_JS, [0, headers[name][1]]), language, True, name)
            assert page.locator("th[aria-sort=ascending], th[aria-sort=descending]").count() == 1
        page.locator("th", has_text="city").locator("button").click()
        cities = page.evaluate(_COLUMN_JS, [0, 0])
        assert cities[:3] == ["Adana", "Ankara", "Antalya"] and set(cities) == set(CITIES)
        assert v.problems() == []


@needs_browser
def test_grouped_rows_stay_with_their_group_and_wide_tables_scroll_in_their_own_box(browser, tmp_path):
    # a pandas MultiIndex: the outer label spans its group's rows
    rows = []
    for g, group in enumerate(["north", "south", "east"]):
        for i in range(4):
            lead = [f'<th rowspan="4">{group}</th>'] if i == 0 else []
            rows.append(lead + [f"<th>shop {g}{i}</th>", f"<td>{(g * 4 + i) * 7 % 11}</td>"])
    # pandas names the column labels ('metric') in the header row above the index's names
    grouped = _table(["", "metric", "orders"], rows, index_names=["region", "shop"])
    wide = _table([f"column {i}" for i in range(30)], [[f"<td>{i * 1000:,}</td>" for i in range(30)]] * 3)
    path = _export(tmp_path, [_html(grouped), _html(wide), new_output("display_data", data={
        "text/html": '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAB9AAAAABCAYAAAB5RwRoAAAAE0lEQVR42u3BAQ0'
                     'AAADCoPdPbQ8HFAAAAAAAAAAAAAAAAAAAAAAA8GYBLAABA8hRFAAAAABJRU5ErkJggg==">'})], "en")
    with visit(browser, path, "phone") as v:
        page = v.page
        page.locator("input[type=search]").fill("south")
        assert page.evaluate(_COLUMN_JS, [0, 1]) == ["shop 10", "shop 11", "shop 12", "shop 13"]
        assert page.evaluate(_COLUMN_JS, [0, 0]) == ["south"] * 4  # the group's label is on every row
        page.locator("input[type=search]").fill("")
        assert [h[3] for h in page.evaluate(_HEADERS_JS) if h[0] == 0] == ["orders", "region", "shop"]
        page.locator("th", has_text="orders").locator("button").click()
        shops = page.evaluate(_COLUMN_JS, [0, 1])
        regions = page.evaluate(_COLUMN_JS, [0, 0])
        assert_sorted(page.evaluate(_COLUMN_JS, [0, 2]), "en", False, "orders")
        assert dict(zip(shops, regions)) == {f"shop {g}{i}": r for g, r in enumerate(["north", "south", "east"])
                                             for i in range(4)}
        assert page.evaluate("document.documentElement.scrollWidth") <= page.evaluate("window.innerWidth") + 1
        assert page.evaluate("document.querySelectorAll('table')[1].closest('.crm-table-scroll').scrollWidth") > 390
        assert page.evaluate("document.querySelector('img').getBoundingClientRect().width") <= 390
        assert v.problems() == []


# ----------------------------------------------------------------------------- the published reports


def _make_env(root: Path) -> dict:
    return {**os.environ, "CRM_ANALYTICS_ROOT": str(root), "CRM_ANALYTICS_SECRET": "browser-secret"}


#: set to a project root whose reports/ci and reports/demo are built already to look at those instead of
#: building (say, after changing tables.js); ``{dataset}`` in it stands for the dataset's name
#: (``/tmp/x/{dataset}``). The screenshots still go to this checkout's build/.
REUSE_ENV = "CRM_ANALYTICS_BROWSER_ROOT"


class _Builds:
    """`make reports` of both datasets, each in its own copy of the project, running side by side;
    started by the first test that needs one and waited for by dataset."""

    def __init__(self, base: Path):
        self.base = base
        self.started: dict[str, tuple[Path, subprocess.Popen, float]] = {}
        self.done: dict[str, Path] = {}
        if os.environ.get(REUSE_ENV):
            self.done = {d: Path(os.environ[REUSE_ENV].replace("{dataset}", d)) for d in LANGUAGE}

    def start(self) -> None:
        for dataset in LANGUAGE:
            root = copy_project(self.base / dataset)
            with open(self.base / f"{dataset}.log", "w", encoding="utf-8") as log:  # make keeps its own copy
                proc = subprocess.Popen(["make", "--no-print-directory", "reports", f"DATASET={dataset}"],
                                        cwd=root, env=_make_env(root), stdout=log, stderr=subprocess.STDOUT)
            self.started[dataset] = (root, proc, time.monotonic())

    def root(self, dataset: str) -> Path:
        if dataset in self.done:
            return self.done[dataset]
        if not self.started:
            self.start()
        root, proc, _ = self.started[dataset]
        try:
            code = proc.wait(timeout=1800)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        log = (self.base / f"{dataset}.log").read_text(encoding="utf-8", errors="replace")
        assert code == 0, f"make reports DATASET={dataset} failed:\n{log[-4000:]}"
        self.done[dataset] = root
        return root

    def stop(self) -> None:
        for _, proc, _ in self.started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    b = _Builds(tmp_path_factory.mktemp("browser"))
    yield b
    b.stop()


def _page_path(builds, dataset: str, page: str) -> Path:
    path = builds.root(dataset) / "reports" / dataset / f"{page}.html"
    assert path.exists(), f"{path.name} was not published for {dataset}"
    return path


@needs_browser
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("dataset", LANGUAGE)
def test_page_opens_cleanly_offline(builds, browser, dataset, page_name, width):
    """No console message, page error or request elsewhere; no sideways scrolling on a phone; the
    dataset's language; every long table with a search box in that language. Saves a screenshot."""
    with visit(browser, _page_path(builds, dataset, page_name), width) as v:
        page = v.page
        shot = SCREENSHOTS / dataset / f"{page_name}-{width}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        problems = v.problems()
        if width == "phone":
            scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            if scroll > inner + 1:
                problems.append(f"the page scrolls sideways on a phone: {scroll} px wide in a {inner} px window")
        lang = page.evaluate("document.documentElement.lang")
        if lang != LANGUAGE[dataset]:
            problems.append(f"<html lang={lang!r}>, expected {LANGUAGE[dataset]!r}")
        for i, t in enumerate(page.evaluate(_TABLES_JS)):
            if not t["scrolls"]:
                problems.append(f"table {i} is not in a scrolling box")
            if (t["rows"] > LONG) != t["search"]:
                problems.append(f"table {i} has {t['rows']} body rows and {'a' if t['search'] else 'no'} search box")
            elif t["search"] and t["label"] != SEARCH_LABEL[LANGUAGE[dataset]]:
                problems.append(f"table {i}: search box labelled {t['label']!r}")
        assert not problems, f"{dataset}/{page_name}.html at {width} width:\n  " + "\n  ".join(problems)


@needs_browser
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("dataset", LANGUAGE)
def test_long_tables_search_and_sort(builds, browser, dataset, page_name):
    """On the page's first long table a word of one of its cells leaves fewer rows, each holding the
    word; on its first long table with a numeric column a header click sorts it, up then down."""
    language = LANGUAGE[dataset]
    with visit(browser, _page_path(builds, dataset, page_name)) as v:
        page = v.page
        tables = page.evaluate(_TABLES_JS)
        long = [i for i, t in enumerate(tables) if t["search"]]
        if not long:
            pytest.skip(f"{dataset}/{page_name}.html has no table of more than {LONG} rows")
        first = long[0]
        texts = page.evaluate(_ROW_TEXTS_JS, [first, False])
        words = sorted({w for text in texts for w in re.findall(r"[^\W\d_]{3,}", text)},
                       key=lambda w: (sum(w in t for t in texts), w))
        word = next((w for w in words if 0 < sum(w in t for t in texts) < len(texts)), None)
        assert word, f"{dataset}/{page_name}.html: no word sets the rows of table {first} apart: {texts[:3]}"
        search = page.locator(".crm-table-tools input[type=search]").nth(0)
        search.fill(word)
        after = page.evaluate(_TABLES_JS)[first]
        assert 0 < after["visible"] < after["rows"], f"searching {word!r} left {after['visible']} of {after['rows']}"
        shown = page.evaluate(_ROW_TEXTS_JS, [first, True])
        assert all(word in s for s in shown), f"searching {word!r} shows rows without it: {shown[:3]}"
        search.fill("")
        assert page.evaluate(_TABLES_JS)[first]["visible"] == tables[first]["rows"]

        numeric = [h for h in page.evaluate(_HEADERS_JS) if h[2] == "number" and h[0] in long]
        if numeric:
            t, col, _, name = numeric[0]
            header = page.locator("table").nth(t).locator("th[data-sort-type]", has_text=name).first
            header.locator("button").click()
            assert header.get_attribute("aria-sort") == "ascending"
            assert_sorted(page.evaluate(_COLUMN_JS, [t, col]), language, False, f"{page_name} table {t} {name!r}")
            header.locator("button").click()
            assert header.get_attribute("aria-sort") == "descending"
            assert_sorted(page.evaluate(_COLUMN_JS, [t, col]), language, True, f"{page_name} table {t} {name!r}")
        assert v.problems() == []


class _Tiles(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tiles: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-metric" in a and "data-value" in a:
            self.tiles.append((a["data-metric"], a["data-value"]))


def metric_at(metrics: object, dotted: str):
    """The value at *dotted* ('clusters.k', 'segments.0.name') in a metrics file; keys may hold dots."""
    if dotted == "":
        return metrics
    if isinstance(metrics, dict):
        parts = dotted.split(".")
        for n in range(len(parts), 0, -1):  # the longest key that matches
            key = ".".join(parts[:n])
            if key in metrics:
                return metric_at(metrics[key], ".".join(parts[n:]))
    if isinstance(metrics, list):
        head, _, rest = dotted.partition(".")
        if head.isdigit() and int(head) < len(metrics):
            return metric_at(metrics[int(head)], rest)
    raise KeyError(dotted)


def _same(value, shown: str) -> bool:
    if isinstance(value, bool):
        return shown.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        try:
            return math.isclose(float(shown), float(value), rel_tol=1e-9, abs_tol=1e-12)
        except ValueError:
            return False
    if value is None:
        return shown in ("", "null", "None")
    return shown == str(value)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("dataset", LANGUAGE)
def test_summary_tiles_show_the_metrics_files(builds, dataset):
    """Every ``data-metric="<notebook>/<dotted.key>"`` tile of index.html carries in ``data-value`` the value
    at that key of ``metrics/<notebook>.json``; at least 8 of them."""
    reports = builds.root(dataset) / "reports" / dataset
    parser = _Tiles()
    parser.feed((reports / "index.html").read_text(encoding="utf-8"))
    tiles = parser.tiles
    assert len(tiles) >= 8, f"{dataset}/index.html has {len(tiles)} data-metric tiles with a data-value, expected >= 8"
    wrong = []
    for metric, shown in tiles:
        notebook, _, key = metric.partition("/")
        file = reports / "metrics" / f"{notebook}.json"
        if not file.exists():
            wrong.append(f"{metric}: no metrics/{notebook}.json")
            continue
        try:
            value = metric_at(json.loads(file.read_text(encoding="utf-8")), key)
        except KeyError:
            wrong.append(f"{metric}: no key {key!r} in metrics/{notebook}.json")
            continue
        if not _same(value, shown):
            wrong.append(f"{metric}: the page says {shown!r}, the metrics file {value!r}")
    assert not wrong, f"{dataset}/index.html:\n  " + "\n  ".join(wrong)


#: in the page: what a stakeholder should not meet in a report
_HYGIENE_JS = r"""() => {
  const out = {snake: [], raw: [], rowNumbers: [], alt: []};
  const snake = /^[a-z]+(_[a-z0-9]+)+$/;
  document.querySelectorAll('table').forEach((t, i) => {
    t.querySelectorAll('th').forEach(th => {
      const text = th.textContent.trim();
      if (snake.test(text)) out.snake.push(`table ${i}: ${text}`);
    });
    t.querySelectorAll('td, th').forEach(c => {
      const text = c.textContent.trim();
      if (['True', 'False', '-0', '-0.0'].includes(text)) out.raw.push(`table ${i}: ${text}`);
    });
    const rows = t.tBodies.length ? Array.from(t.tBodies[0].rows) : [];
    const first = rows.map(r => r.cells[0]);
    // a named index (cluster 0, 1, 2 under "Cluster") means something; pandas' unnamed 0, 1, 2 does not
    if (rows.length >= 2 && !t.querySelector('th.index_name') && first.every(c => c && c.tagName === 'TH')
        && first.every((c, k) => c.textContent.trim() === String(k)))
      out.rowNumbers.push(`table ${i}: row headers 0..${rows.length - 1}`);
  });
  document.querySelectorAll('img').forEach((img, i) => {
    const alt = (img.getAttribute('alt') || '').trim();
    if (!alt || alt === 'No description has been provided for this image')
      out.alt.push(`image ${i}: alt=${JSON.stringify(alt)}`);
  });
  return out;
}"""


@needs_browser
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("page_name", REPORT_PAGES)
@pytest.mark.parametrize("dataset", LANGUAGE)
def test_reports_read_as_stakeholder_reports(builds, browser, dataset, page_name):
    """No snake_case header cell, no True/False/-0 cell, no pandas row numbers as the first column, and
    every chart with its own alt text (nbconvert's placeholder does not count)."""
    with visit(browser, _page_path(builds, dataset, page_name)) as v:
        found = v.page.evaluate(_HYGIENE_JS)
    what = {"snake": "header cells named in snake_case", "raw": "raw True/False/-0 cells",
            "rowNumbers": "pandas row numbers as the first column", "alt": "charts without alt text"}
    problems = [f"{len(found[k])} {label}: {found[k][:6]}" for k, label in what.items() if found[k]]
    assert not problems, f"{dataset}/{page_name}.html:\n  " + "\n  ".join(problems)


TURKISH = re.compile(r"[Mm]üşteri")


@needs_browser
@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("dataset", LANGUAGE)
def test_reports_are_written_in_the_dataset_language(builds, browser, dataset, page_name):
    with visit(browser, _page_path(builds, dataset, page_name)) as v:
        text = v.page.evaluate("document.body.innerText")
    if LANGUAGE[dataset] == "tr":
        assert TURKISH.search(text), f"{dataset}/{page_name}.html reads as English (no 'müşteri'): {text[:200]!r}"
    else:
        found = TURKISH.search(text)
        assert not found, \
            f"{dataset}/{page_name}.html has Turkish text: …{text[max(found.start() - 80, 0):found.end() + 80]}…"

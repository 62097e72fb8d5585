"""Publishing a report: an executed notebook to self-contained, sanitised HTML.

A report is read by people outside the team, often offline or behind a proxy, so
:func:`export_html`

- hides the code, prompts and parameter cells;
- renders with the ``report`` template (``templates/report``): JupyterLab's look with its styles
  inlined and none of the scripts it would fetch from a CDN (require.js, MathJax, mermaid,
  widgets), and a Content-Security-Policy (:func:`csp`) that forbids loading anything from anywhere
  and runs one script only: :data:`TABLE_SCRIPT`, inlined, allowed by its hash, which makes long
  tables searchable and sortable and lets wide ones scroll inside their own box;
- sanitises every HTML output, and every Markdown output once rendered to HTML, with nbconvert's
  ``SanitizeHTML`` (bleach) as a second line of defence behind :func:`crm_analytics.reports.report.escape`:
  tags and attributes outside an allow-list that keeps tables, their styles and embedded charts are
  escaped, scripts and event handlers never survive, links only point within the page;
- checks the result with :func:`external_references` and refuses to publish a page that would
  load anything from another host.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from crm_analytics.errors import CrmAnalyticsError

__all__ = ["TABLE_SCRIPT", "TEMPLATES_DIR", "csp", "export_html", "external_references", "live_markup"]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

#: the one script a published page runs (``templates/report/tables.js``): search and sort long tables, scroll
#: wide ones in their own box. Pages inline it as ``<script>{TABLE_SCRIPT}</script>``, byte for byte: the
#: policy of :func:`csp` allows exactly this text (line ends as an HTML parser sees them, ``\n``).
TABLE_SCRIPT: str = (TEMPLATES_DIR / "report" / "tables.js").read_text(encoding="utf-8") \
    .replace("\r\n", "\n").replace("\r", "\n")

#: a page's language: an ISO 639-1 code, optionally with a region (``en``, ``tr``, ``tr-TR``)
_LANGUAGE = re.compile(r"^[a-z]{2}(?:-[A-Z]{2})?$")


def csp() -> str:
    """The Content-Security-Policy of a published page: nothing loaded from anywhere; inline styles,
    embedded images and fonts; and one script, :data:`TABLE_SCRIPT` inlined, allowed by its SHA-256.

    Examples
    --------
    >>> csp().startswith("default-src 'none'; script-src 'sha256-")
    True
    """
    digest = base64.b64encode(hashlib.sha256(TABLE_SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return (f"default-src 'none'; script-src 'sha256-{digest}'; img-src data:; style-src 'unsafe-inline'; "
            "font-src data:")


#: what a report's outputs may contain after sanitising (pandas tables with their <style>, charts,
#: headings and prose); everything else is shown as escaped text
ALLOWED_TAGS = [
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "details", "div", "dl",
    "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "small",
    "span", "strong", "style", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u",
    "ul",
]
ALLOWED_ATTRIBUTES = {
    "*": ["class", "id", "title", "style", "align"],
    "a": ["href", "title"],
    "img": ["src", "alt", "width", "height"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan", "scope"],
    "style": ["type"],
    "ol": ["start"],
}


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """bleach's attribute filter: the allow-list above; links only within the page, images only embedded."""
    if name not in ALLOWED_ATTRIBUTES.get(tag, []) and name not in ALLOWED_ATTRIBUTES["*"]:
        return False
    if name == "href":
        return value.startswith("#")
    if name == "src":
        return value.startswith(("data:image/png;", "data:image/jpeg;", "data:image/svg+xml;"))
    return True


def _exporter(language: str = "en"):
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbconvert.preprocessors.sanitize import SanitizeHTML
    from traitlets.config import Config

    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"parameters", "injected-parameters", "remove-cell"}
    config.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
    config.TagRemovePreprocessor.enabled = True
    config.SanitizeHTML.tags = ALLOWED_TAGS
    config.SanitizeHTML.attributes = _allowed_attribute
    config.SanitizeHTML.styles = _ALLOWED_CSS
    config.SanitizeHTML.strip = False  # disallowed markup is shown escaped, not silently dropped
    config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES_DIR)]
    config.HTMLExporter.template_name = "report"
    config.HTMLExporter.language_code = language  # <html lang="...">
    exporter = HTMLExporter(config=config)
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.register_preprocessor(TagRemovePreprocessor(config=config), enabled=True)
    exporter.register_preprocessor(_sanitizer(SanitizeHTML)(config=config), enabled=True)
    return exporter


def _sanitizer(base):
    class Sanitize(base):
        """nbconvert's ``SanitizeHTML``, applied where it can see what the reader will get.

        Markdown outputs are rendered to HTML first and the HTML is sanitised (bleach on Markdown source
        would escape a ``<`` inside a code span twice); the notebook's own Markdown cells are part of the
        committed code, not data, and are left as written. Outputs left with nothing to show (one that
        held only JavaScript) are dropped instead of warned about.
        """

        def preprocess_cell(self, cell, resources, cell_index):
            if cell.cell_type == "markdown":
                return cell, resources
            return super().preprocess_cell(cell, resources, cell_index)

        def sanitize_code_outputs(self, outputs):
            from nbconvert.filters.markdown_mistune import markdown2html_mistune

            for output in outputs:
                data = output.get("data", {})
                if "text/markdown" in data:
                    data["text/html"] = markdown2html_mistune(data.pop("text/markdown"))
                    data.pop("text/plain", None)  # the Markdown is what a reader should see
            outputs = super().sanitize_code_outputs(outputs)
            return [o for o in outputs if o["output_type"] in ("stream", "error") or
                    any(k != "metadata" for k in o.get("data", {}))]

    return Sanitize


_ALLOWED_CSS = [
    "background", "background-color", "border", "border-bottom", "border-collapse", "border-left", "border-right",
    "border-top", "color", "font-size", "font-style", "font-weight", "height", "margin", "max-width", "min-width",
    "padding", "position", "text-align", "vertical-align", "white-space", "width", "display", "left", "top",
    "z-index",
]


def export_html(nb_path: str | Path, html_path: str | Path, *, language: str = "en") -> Path:
    """Export the executed notebook *nb_path* to *html_path* (written atomically).

    Parameters
    ----------
    nb_path, html_path : str or Path
        The executed notebook and the page to write.
    language : str
        The language the page is written in, ``<html lang="...">``: ``"en"``, ``"tr"`` (it picks the
        casing rules of the table search, the number format the sort reads and the search box's label).

    Raises
    ------
    CrmAnalyticsError
        When *language* is not a language code, or the page would still load something from another host
        (then nothing is written).
    """
    import nbformat

    if not isinstance(language, str) or not _LANGUAGE.match(language):
        raise CrmAnalyticsError(f"export_html: language must be an ISO 639-1 code such as 'en' or 'tr' "
                                f"(optionally with a region, 'tr-TR'), got {language!r}")
    nb = nbformat.read(str(nb_path), as_version=4)
    body, _ = _exporter(language).from_notebook_node(
        nb, resources={"crm_table_script": TABLE_SCRIPT, "crm_csp": csp()})
    problems = external_references(body)
    if problems:
        raise CrmAnalyticsError(f"{Path(html_path).name} would load {problems[0]!r} from another host; "
                                "a report must be self-contained (the last good report is left in place)")
    html_path = Path(html_path)
    tmp = html_path.with_name(html_path.name + ".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(html_path)
    return html_path


_URL_ATTRS = {"src", "href", "data", "action", "formaction", "poster", "srcset", "xlink:href", "background"}
_CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*([^'")\s]+)""", re.IGNORECASE)


def _is_external(url: str) -> bool:
    u = url.strip().lower()
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", u)) or (
        ":" in u.split("/", 1)[0] and not u.startswith(("data:", "#", "mailto:")))


class _Scan(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.external: list[str] = []
        self.live: list[str] = []
        self._in_style = False
        self._script: tuple[str, bool, list[str]] | None = None  # an open <script>: start tag, no attributes?, text

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._script = ("<script" + "".join(f" {k}={v!r}" for k, v in attrs) + ">", not attrs, [])
        self._in_style = tag == "style"
        for name, value in attrs:
            if name.startswith("on"):
                self.live.append(f"<{tag} {name}=…>")
            if value is None:
                continue
            if name in _URL_ATTRS and (_is_external(value) or value.strip().lower().startswith("javascript:")):
                self.external.append(value)
            if name == "style":
                self.external.extend(u for u in _CSS_URL.findall(value) if _is_external(u))
        if tag in ("iframe", "object", "embed", "base", "form"):
            self.live.append(f"<{tag}>")

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False
        if tag == "script":
            self._end_script()

    def handle_data(self, data):
        if self._in_style:
            self.external.extend(u for u in _CSS_URL.findall(data) if _is_external(u))
        if self._script is not None:
            self._script[2].append(data)

    def _end_script(self) -> None:
        """A script is live unless it is the page's own: no attributes, exactly :data:`TABLE_SCRIPT`."""
        if self._script is not None:
            start, bare, parts = self._script
            if not (bare and "".join(parts) == TABLE_SCRIPT):
                self.live.append(start)
            self._script = None

    def close(self):
        super().close()
        self._end_script()  # a <script> never closed


def _scan(page: str) -> _Scan:
    scan = _Scan()
    scan.feed(page)
    scan.close()
    return scan


def external_references(page: str) -> list[str]:
    """URLs of other hosts that *page* would load or link to (``src``/``href`` attributes,
    CSS ``url()`` and ``@import``); an empty list for a self-contained page."""
    return _scan(page).external


def live_markup(page: str) -> list[str]:
    """Markup in *page* that could run code: ``<script>`` elements, ``on…`` event handlers,
    frames, objects, forms and ``<base>``. A published report has none but its own table script
    (a ``<script>`` without attributes holding exactly :data:`TABLE_SCRIPT`), which is not listed."""
    return _scan(page).live

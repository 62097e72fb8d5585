"""The pipeline runner behind the Makefile.

``python -m crm_analytics.pipeline configure DATASET``
    validate ``params/DATASET.yaml`` against the notebooks' parameters cells (types and the
    value rules of :mod:`crm_analytics.ingest.params_rules`) and the input files it names, and write
    ``build/DATASET/params/<notebook>.yaml``, ``build/DATASET/source.yaml`` and
    ``build/DATASET/dataset.mk`` (only files whose content changed are rewritten, so make
    reruns exactly the notebooks whose inputs changed).
``python -m crm_analytics.pipeline run DATASET NOTEBOOK``
    execute one notebook with papermill, then publish it: the executed notebook, its HTML
    with the code hidden, its metrics and its status. A failed run publishes nothing (the last
    good report, metrics and status stay byte-identical; the summary page keeps its figures and
    gains a banner naming the failure and its log, :func:`crm_analytics.reports.history.record_failure`,
    until a run succeeds); it keeps the executed notebook
    as ``NOTEBOOK.FAILED.ipynb``, records the failure in ``build/DATASET/logs/NOTEBOOK.failed.json``
    and says why: the package's own message when one of its errors stopped the notebook (a
    data problem, say), else the failing cell and its error. On a terminal a progress bar shows
    the cells as they run (``CRM_ANALYTICS_PROGRESS=always`` or ``never`` overrides); the
    kernel's own messages go to ``build/DATASET/logs/NOTEBOOK.kernel.log``.
    A second run of the same notebook on the same dataset while one is going (a nightly job
    meeting a manual ``make reports``) stops at once with a message and touches nothing.
``python -m crm_analytics.pipeline index DATASET``
    compute the summary's own numbers, keep the run in ``reports/DATASET/history/`` and write the
    executive summary ``reports/DATASET/index.html`` (:mod:`crm_analytics.reports.index`).

A user's mistake ends in one message and exit status 2 (no traceback).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from crm_analytics import paths
from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.locks import sole_run
from crm_analytics.ingest.params import resolve_notebook_params

__all__ = ["configure", "run_notebook", "write_if_changed", "package_dependencies", "KERNEL_NAME"]

KERNEL_NAME = "crm-analytics"
_PACKAGE = "crm_analytics"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def write_if_changed(path: Path, text: str) -> bool:
    """Write *text* to *path* unless it already holds exactly that; return whether it wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True


def _module_imports(source: str) -> set[str]:
    """Modules of this package that *source* imports, as dotted names below the package
    (``crm_analytics.models.clv`` -> ``models.clv``; ``from crm_analytics.models import clv`` gives
    ``models`` and ``models.clv``, as a name imported from a package may be a module or a re-export)."""
    found: set[str] = set()
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == _PACKAGE:
                    found.add(".".join(parts[1:]) or "__init__")
        elif isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != _PACKAGE:
                continue
            base = ".".join(parts[1:])
            found.add(base or "__init__")
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if base else alias.name)
    return found


def _module_files(name: str) -> list[Path]:
    """Source files of package module *name* (dotted below the package; a subpackage counts with
    its ``__init__`` and, for a module split into one, all its files)."""
    if name == "__init__":
        return [_PACKAGE_DIR / "__init__.py"]
    rel = Path(*name.split("."))
    single = _PACKAGE_DIR / rel.with_suffix(".py")
    if single.exists():
        return [single]
    sub = _PACKAGE_DIR / rel
    if (sub / "__init__.py").exists():
        stage = len(rel.parts) == 1  # a stage package: only its __init__; its modules come by name
        return [sub / "__init__.py"] if stage else sorted(sub.rglob("*.py"))
    return []


def package_dependencies(notebook_path: Path) -> list[Path]:
    """Package source files a notebook depends on: its imports, followed transitively."""
    nb = json.loads(notebook_path.read_text(encoding="utf-8"))
    code = "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb.get("cells", [])
        if c.get("cell_type") == "code"
    )
    # notebooks may use IPython syntax; drop magics before parsing
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    todo = list(_module_imports(code))
    seen: set[str] = set()
    files: set[Path] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for f in _module_files(name):
            files.add(f)
            rel = f.relative_to(_PACKAGE_DIR)
            imported = _module_imports(f.read_text(encoding="utf-8"))
            if len(rel.parts) > 2:  # relative imports inside a module split into a package: depend on it whole
                imported.add(".".join(rel.parts[:2]))
            todo.extend(imported - seen)
    return sorted(files)


def notebook_needs(notebook: str) -> list[str]:
    """Notebooks whose outputs *notebook* reads (``metadata.crm_analytics.needs``), e.g. the segments of 02."""
    nb = json.loads((paths.notebooks_dir() / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    return list(nb.get("metadata", {}).get("crm_analytics", {}).get("needs", []))


def _engine(per_notebook: dict[str, dict[str, Any]]) -> str:
    """``pyspark`` when a notebook's params choose it (``engine``), else ``duckdb``."""
    engines = {values.get("engine", "duckdb") for values in per_notebook.values()}
    return "pyspark" if "pyspark" in engines else "duckdb"


def configure(dataset: str) -> dict[str, Any]:
    """Validate the dataset's params and write the per-notebook params and ``dataset.mk``."""
    from crm_analytics.ingest import sources
    from crm_analytics.ingest.privacy import secret_key

    secret_key()  # create the pseudonymisation key here, so its warning goes to the log, not a report

    resolved = resolve_notebook_params(dataset)
    source = sources.validate_source(dataset, resolved["source"], resolved["file"])
    out = paths.build_dir(dataset)
    root = paths.project_root()
    for nb, values in resolved["per_notebook"].items():
        write_if_changed(out / "params" / f"{nb}.yaml", yaml.safe_dump(values, sort_keys=True, allow_unicode=True))
    write_if_changed(out / "source.yaml", yaml.safe_dump(source, sort_keys=True, allow_unicode=True))

    def rel(p: Path) -> str:
        try:
            return str(p.resolve().relative_to(root))
        except ValueError:
            return str(p.resolve())

    lines = [
        f"# written by `python -m crm_analytics.pipeline configure {dataset}`; do not edit",
        f"NOTEBOOKS := {' '.join(resolved['notebooks'])}",
        f"RAW_INPUTS := {' '.join(rel(Path(p)) for p in sources.external_inputs(source))}",
        f"RAW_DEPS := {' '.join(rel(p) for p in sources.source_code_files(source))}",
        # pyspark when any notebook runs on Spark: make installs the `spark` extra first
        f"ENGINE := {_engine(resolved['per_notebook'])}",
    ]
    for nb in resolved["notebooks"]:
        deps = package_dependencies(paths.notebooks_dir() / f"{nb}.ipynb")
        lines.append(f"DEPS_{nb} := {' '.join(rel(p) for p in deps)}")
        needs = [n for n in notebook_needs(nb) if n in resolved["notebooks"]]
        lines.append(f"NEEDS_{nb} := {' '.join(needs)}")
    write_if_changed(out / "dataset.mk", "\n".join(lines) + "\n")
    return resolved


# ----------------------------------------------------------------------------- run


def _failed_cell(nb_path: Path) -> str:
    """Describe the first cell of an executed notebook that holds an error output."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - the notebook may be half-written
        return "an unknown cell"
    code_no = 0
    added_by_papermill = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nb.cells if not added_by_papermill & set(c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(cells):  # numbered as in the source notebook
        if cell.cell_type != "code":
            continue
        code_no += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = "".join(cell.source).strip().splitlines()
                snippet = first[0][:80] if first else ""
                return (f"cell {index + 1} (code cell {code_no}: `{snippet}`): "
                        f"{out.get('ename')}: {out.get('evalue')}")
    return "an unknown cell"


@contextlib.contextmanager
def _stderr_to(log: Path):
    """Send this process's stderr, and so the kernel's (it inherits the descriptor), to *log*.

    The kernel writes start-up and shut-down chatter there (transport warnings, an interrupt at
    shutdown while worker threads wind down) that would otherwise fill every nightly log.
    Yields a text stream on the original stderr (a terminal, say), for the progress bar; the
    kernel does not inherit it.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log, "wb") as f, os.fdopen(os.dup(saved), "w", encoding="utf-8", errors="replace") as real:
            os.dup2(f.fileno(), 2)
            yield real
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _export_html(nb_path: Path, html_path: Path, language: str = "en") -> None:
    """Export an executed notebook to self-contained, sanitised HTML with the code hidden
    (:func:`crm_analytics.reports.publish.export_html`)."""
    from crm_analytics.reports.publish import export_html

    export_html(nb_path, html_path, language=language)


#: ``always`` (or 1) shows the per-cell progress bar even when stderr is not a terminal, ``never`` (or 0)
#: hides it in a terminal; unset, it shows exactly when stderr is a terminal.
PROGRESS_ENV = "CRM_ANALYTICS_PROGRESS"


def _progress_wanted() -> bool:
    """Whether to draw a per-cell progress bar: on a terminal, or as :data:`PROGRESS_ENV` says."""
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("always", "1", "yes", "true"):
        return True
    if forced in ("never", "0", "no", "false"):
        return False
    try:
        return os.isatty(2)
    except OSError:
        return False


def _package_errors() -> set[str]:
    """Names of this package's error classes (:class:`CrmAnalyticsError` and its subclasses)."""
    from crm_analytics import errors

    names, todo = set(), [errors.CrmAnalyticsError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names | {n for n in getattr(errors, "__all__", []) if n.endswith("Error")}


def _package_error(nb_path: Path) -> tuple[int, str, str] | None:
    """``(cell number, error name, message)`` when the executed notebook stopped on one of this
    package's own errors (whose message says what is wrong and how to fix it), else ``None``."""
    import nbformat

    try:
        nb = nbformat.read(nb_path, as_version=4)
    except Exception:  # noqa: BLE001 - the notebook may be half-written
        return None
    added_by_papermill = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nb.cells if not added_by_papermill & set(c.get("metadata", {}).get("tags", []))]
    for index, cell in enumerate(cells):  # numbered as in the source notebook
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "error":
                if out.get("ename") in _package_errors() and out.get("evalue"):
                    return index + 1, out["ename"], out["evalue"]
                return None
    return None


def _check_inputs(dataset: str) -> None:
    """Stop when an input file the dataset's source names does not exist, naming the key and the path
    (make would otherwise say only "No rule to make target")."""
    from crm_analytics.ingest import sources

    resolved = resolve_notebook_params(dataset)
    source = sources.validate_source(dataset, resolved["source"], resolved["file"])
    if source["kind"] == "files":
        given = [(f"source.tables.{name}.path", t["path"]) for name, t in source["tables"].items()]
    else:
        given = [("source.path", source["path"])] if "path" in source else []
    for key, value in given:
        path = sources.resolve_path(value)
        if not path.is_file():
            what = "is a folder, not a file" if path.is_dir() else "does not exist"
            shown = f"{value!r} ({path})" if str(path) != value else repr(value)
            raise CrmAnalyticsError(f"{resolved['file']}: key {key!r}: input file {shown} {what}; "
                                    f"set {key} to the export's path (absolute, relative to the project, "
                                    "or external:<path below ../shared/external>)")


def run_notebook(dataset: str, notebook: str) -> Path:
    """Execute *notebook* on *dataset* and publish it; see the module docstring.

    Raises
    ------
    CrmAnalyticsError
        When the notebook fails (the message names the notebook and the failing cell) or is
        already running on this dataset in another process.
    """
    with sole_run(dataset, notebook):  # a run already going elsewhere is no failure of this one
        try:
            return _run_notebook(dataset, notebook)
        except CrmAnalyticsError as exc:
            _mark_failed_run(dataset, notebook, exc)
            raise


def _run_notebook(dataset: str, notebook: str) -> Path:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    reports = paths.reports_dir(dataset)
    staging = reports / ".staging" / notebook
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "metrics").mkdir(parents=True)
    params_file = paths.build_dir(dataset) / "params" / f"{notebook}.yaml"
    if not params_file.exists():
        raise CrmAnalyticsError(f"{params_file} is missing; run `make reports DATASET={dataset}` "
                                f"(it validates params/{dataset}.yaml first)")
    parameters = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    executed = staging / f"{notebook}.ipynb"
    source_nb = _in_language(paths.notebooks_dir() / f"{notebook}.ipynb", parameters.get("language", "en"), staging)
    env_before = os.environ.get("CRM_ANALYTICS_STAGING")
    os.environ["CRM_ANALYTICS_STAGING"] = str(staging / "metrics")
    started = time.monotonic()
    kernel_log = paths.build_dir(dataset) / "logs" / f"{notebook}.kernel.log"
    failure_record = kernel_log.with_name(f"{notebook}.failed.json")
    show_progress = _progress_wanted()  # asked before stderr goes to the log
    try:
        with _stderr_to(kernel_log) as real_stderr:
            papermill.execute_notebook(
                str(source_nb),
                str(executed),
                parameters=parameters,
                kernel_name=KERNEL_NAME,
                cwd=str(paths.notebooks_dir()),
                progress_bar={"file": real_stderr, "desc": notebook, "unit": "cell"} if show_progress else False,
                log_output=False,
            )
    except PapermillExecutionError:
        # the last good report, metrics, status and index stay as they are; the failure is
        # recorded beside the kernel log and in the kept notebook
        failed = reports / f"{notebook}.FAILED.ipynb"
        reports.mkdir(parents=True, exist_ok=True)
        if executed.exists():
            shutil.move(executed, failed)
        where = _failed_cell(failed)
        own = _package_error(failed)
        record = {"notebook": notebook, "status": "failed", "seconds": round(time.monotonic() - started, 1),
                  "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "detail": where}
        write_if_changed(failure_record, json.dumps(record, indent=2) + "\n")
        root = paths.project_root()
        kept = (f"the executed notebook is kept at {failed.relative_to(root)}; the last good report is left "
                f"in place; kernel messages are in {kernel_log.relative_to(root)}")
        if own is not None:  # the package's own message says what is wrong and how to fix it
            cell_no, ename, evalue = own
            raise CrmAnalyticsError(f"{notebook} on dataset {dataset!r}: {evalue}\n"
                                    f"  ({ename} in cell {cell_no} of notebooks/{notebook}.ipynb) {kept}") from None
        raise CrmAnalyticsError(f"notebook {notebook} failed on dataset {dataset!r} in {where}\n  {kept}") from None
    finally:
        if env_before is None:
            os.environ.pop("CRM_ANALYTICS_STAGING", None)
        else:
            os.environ["CRM_ANALYTICS_STAGING"] = env_before
    seconds = time.monotonic() - started
    # the HTML first, in staging: a page that cannot be published (it would load from another host)
    # leaves every published file as it was
    staged_html = staging / f"{notebook}.html"
    _export_html(executed, staged_html, parameters.get("language", "en"))
    # publish: metrics, HTML, executed notebook, status
    metrics = reports / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    for f in (staging / "metrics").glob("*.json"):
        f.replace(metrics / f.name)
    html = reports / f"{notebook}.html"
    staged_html.replace(html)
    executed.replace(reports / f"{notebook}.ipynb")
    (reports / f"{notebook}.FAILED.ipynb").unlink(missing_ok=True)
    failure_record.unlink(missing_ok=True)
    _write_status(reports, notebook, "ok", seconds, "")
    _report_untranslated(dataset, notebook, staging, parameters.get("language", "en"))
    shutil.rmtree(staging, ignore_errors=True)
    return html


def _in_language(source_nb: Path, language: str, staging: Path) -> Path:
    """The notebook to execute: *source_nb* itself in English, else a copy in *staging* whose Markdown
    cells are in *language* (:func:`crm_analytics.i18n.translate_markdown`; the code is unchanged)."""
    if language == "en":
        return source_nb
    import nbformat

    from crm_analytics import i18n

    nb = nbformat.read(source_nb, as_version=4)
    missing = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            missing += [b for b in i18n.block_ids(cell.source) if (None, b) not in i18n.catalog(language)]
            cell.source = i18n.translate_markdown(cell.source, language)
    if missing:  # reported with the kernel's own leftovers (_report_untranslated)
        with open(staging / "untranslated.txt", "a", encoding="utf-8") as fh:
            fh.writelines(" ".join(b.split()) + "\n" for b in missing)
    out = staging / "source" / source_nb.name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def _report_untranslated(dataset: str, notebook: str, staging: Path, language: str) -> None:
    """Texts the notebook's kernel wrote in English although its language is another (the kernel
    lists them in the staging folder, :func:`crm_analytics.i18n.t`): listed in the logs
    (``build/<dataset>/logs/<notebook>.untranslated.txt``) and counted on the console."""
    staged = staging / "untranslated.txt"
    found = ({line for line in staged.read_text(encoding="utf-8").splitlines() if line.strip()}
             if staged.exists() and language != "en" else set())
    log = paths.build_dir(dataset) / "logs" / f"{notebook}.untranslated.txt"
    if not found:
        log.unlink(missing_ok=True)
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("\n".join(sorted(found)) + "\n", encoding="utf-8")
    print(f"note: {len(found)} texts of {notebook} have no {language} translation yet and are shown in English "
          f"(listed in {log.relative_to(paths.project_root())})", file=sys.stderr)


def _write_status(reports: Path, notebook: str, status: str, seconds: float, detail: str) -> None:
    folder = reports / "status"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "notebook": notebook,
        "status": status,
        "seconds": round(seconds, 1),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "detail": detail,
    }
    (folder / f"{notebook}.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crm_analytics.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("configure", help="validate params and write build/DATASET/*")
    p.add_argument("dataset")
    p = sub.add_parser("run", help="execute and publish one notebook")
    p.add_argument("dataset")
    p.add_argument("notebook")
    p = sub.add_parser("index", help="write reports/DATASET/index.html")
    p.add_argument("dataset")
    args = parser.parse_args(argv)
    try:
        if args.command == "configure":
            _check_inputs(args.dataset)
            configure(args.dataset)
        elif args.command == "run":
            started = time.monotonic()
            html = run_notebook(args.dataset, args.notebook)
            print(f"published {html.relative_to(paths.project_root())} ({time.monotonic() - started:.0f} s)")
        elif args.command == "index":
            from crm_analytics.reports.index import write_index

            out = write_index(args.dataset)
            print(f"published {out.relative_to(paths.project_root())}")
    except CrmAnalyticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _mark_failed_run(dataset: str, notebook: str, error: Exception) -> None:
    """A failed night: keep the failure (time, notebook, log) and show it as a banner on the last
    good summary page, which otherwise stays as it was."""
    from crm_analytics.reports import history

    log = paths.build_dir(dataset) / "logs" / f"{notebook}.kernel.log"
    history.record_failure(dataset, notebook, log, error)
    if (paths.reports_dir(dataset) / "index.html").exists():
        try:
            from crm_analytics.reports.index import render_index

            render_index(dataset)
        except Exception as exc:  # the banner is a courtesy: never hide the notebook's own error
            print(f"note: could not add the failure banner to the summary page: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

"""The pipeline runner: publish on success; on failure name the cell, keep the last good report."""

from __future__ import annotations

import html
import json
import re

import nbformat
import pytest

from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.pipeline import configure, main, package_dependencies, run_notebook, write_if_changed


def _probe_notebook(project, *, switch: str = "fail: bool = False  # fail on purpose",
                    last_cell: str = "if fail:\n    raise ValueError('planted failure')\nprint('secret code line')"):
    """notebooks/02_probe.ipynb: a parameters cell (dataset, *switch*, value), a metrics cell, *last_cell*."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "crm-analytics", "display_name": "CRM Analytics", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Probe"),
        nbformat.v4.new_code_cell(f'dataset: str = "ci"  # dataset\n{switch}\nvalue: int = 1  # a number',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from crm_analytics.reports import report\nreport.write_metrics(dataset, '02_probe', {'value': value})"),
        nbformat.v4.new_code_cell(last_cell),
    ]
    nbformat.write(nb, project / "notebooks" / "02_probe.ipynb")


def _params(project, **values):
    lines = ["source: {kind: cdnow}", "notebooks: [02_probe]"] + [f"{k}: {json.dumps(v)}" for k, v in values.items()]
    (project / "params" / "probe.yaml").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
def test_success_publishes_and_failure_keeps_the_last_good_report(project):
    _probe_notebook(project)
    _params(project, fail=False, value=1)
    configure("probe")
    html = run_notebook("probe", "02_probe")
    reports = project / "reports" / "probe"
    good_html = html.read_text()
    assert "secret code line" in good_html  # the output is there ...
    assert "print(" not in good_html and "report.write_metrics" not in good_html  # ... the code is not
    assert json.loads((reports / "metrics" / "02_probe.json").read_text()) == {"value": 1}
    assert json.loads((reports / "status" / "02_probe.json").read_text())["status"] == "ok"

    _params(project, fail=True, value=2)
    configure("probe")
    with pytest.raises(CrmAnalyticsError, match=r"notebook 02_probe failed on dataset 'probe' in cell 4 .*ValueError: planted failure"):
        run_notebook("probe", "02_probe")
    assert html.read_text() == good_html
    assert json.loads((reports / "metrics" / "02_probe.json").read_text()) == {"value": 1}  # staged, not published
    assert (reports / "02_probe.FAILED.ipynb").exists()

    _params(project, fail=False, value=3)
    configure("probe")
    run_notebook("probe", "02_probe")
    assert not (reports / "02_probe.FAILED.ipynb").exists()
    assert json.loads((reports / "metrics" / "02_probe.json").read_text()) == {"value": 3}


def test_configure_writes_only_what_changed(project):
    _probe_notebook(project)
    _params(project, value=1)
    configure("probe")
    p = project / "build" / "probe" / "params" / "02_probe.yaml"
    mk = project / "build" / "probe" / "dataset.mk"
    before = (p.stat().st_mtime_ns, mk.stat().st_mtime_ns)
    configure("probe")
    assert (p.stat().st_mtime_ns, mk.stat().st_mtime_ns) == before
    _params(project, value=5)
    configure("probe")
    assert "value: 5" in p.read_text()
    assert "NOTEBOOKS := 02_probe" in mk.read_text()
    assert "src/crm_analytics/reports/report.py" in mk.read_text()


def test_cli_reports_a_user_error_in_one_line(project, capsys):
    (project / "params" / "bad.yaml").write_text("source: {kind: cdnow}\nnotebooks: [01_data_cleaning]\nstale: 1\n")
    assert main(["configure", "bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "unknown key 'stale'" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_a_second_run_of_a_running_notebook_stops_at_once_and_touches_nothing(project, capsys):
    # A nightly `make reports` meeting a manual one: the second run must not share the first
    # one's staging folders. The first run is played by a process holding the notebook's lock.
    import fcntl
    import subprocess
    import sys

    _probe_notebook(project)
    _params(project, value=1)
    configure("probe")
    reports = project / "reports" / "probe"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "02_probe.html").write_text("last good report")
    lock = project / "build" / "probe" / "locks" / "02_probe.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys, time\n"
         f"fh = open({str(lock)!r}, 'a+'); fcntl.flock(fh, fcntl.LOCK_EX); fh.write('pid 4242, started now'); fh.flush()\n"
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["run", "probe", "02_probe"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == ("error: 02_probe is already running on dataset 'probe' (pid 4242, started now); wait for "
                       "that run to finish, then run `make reports DATASET=probe` again")
        assert (reports / "02_probe.html").read_text() == "last good report"
        assert not (reports / ".staging").exists() and not (reports / "02_probe.FAILED.ipynb").exists()
    finally:
        holder.kill()
        holder.wait()
    with open(lock, "a+") as fh:  # the lock went with its holder
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_raw_data_is_built_by_one_process_at_a_time(project, capsys):
    from crm_analytics.ingest import sources
    from crm_analytics.locks import sole_run

    _probe_notebook(project)
    _params(project, value=1)
    configure("probe")
    with sole_run("probe", "raw data"):
        assert sources.main(["build", "probe"]) == 2
    assert "raw data is already running on dataset 'probe' (pid " in capsys.readouterr().err
    assert not (project / "data" / "raw" / "probe").exists()
    assert sources.main(["build", "probe"]) == 0  # free again
    assert (project / "data" / "raw" / "probe" / "_SUCCESS").exists()


def test_notebook_dependencies_follow_imports():
    from conftest import REPO

    package = REPO / "src" / "crm_analytics"
    deps = {p.relative_to(package).as_posix() for p in package_dependencies(REPO / "notebooks" / "01_data_cleaning.ipynb")}
    assert {"ingest/collect.py", "ingest/cleaning.py", "ingest/quality.py", "reports/report.py", "ingest/privacy.py",
            "ingest/sources.py"} <= deps
    assert not any(d.startswith("models/") for d in deps)  # cleaning needs no model
    deps_02 = {p.relative_to(package).as_posix() for p in package_dependencies(REPO / "notebooks" / "02_segmentation.ipynb")}
    # a module split into a package counts with all its files; what it imports from a later stage's sibling too
    assert {"models/segmentation/__init__.py", "models/segmentation/scores.py", "features/rfm.py"} <= deps_02


def test_write_if_changed(tmp_path):
    f = tmp_path / "a" / "b.txt"
    assert write_if_changed(f, "x") is True
    assert write_if_changed(f, "x") is False
    assert write_if_changed(f, "y") is True and f.read_text() == "y"


@pytest.mark.parametrize("value, text", [
    (0.58760123, "0.5876"), (2237077.3, "2,237,077"), (2357.0, "2,357"), (-1234.5, "-1,234"),
    (0.000123456, "0.0001235"), (12.5, "12.50"), (float("nan"), "–"), (None, "–"), ("Champions", "Champions"),
])
def test_report_number_never_uses_scientific_notation(value, text):
    from crm_analytics.reports.report import number

    assert number(value) == text


def test_report_p_value():
    from crm_analytics.reports.report import p_value

    assert [p_value(v) for v in (4.68e-05, 0.03127, 1.0, float("nan"))] == ["<0.0001", "0.0313", "1.0000", "–"]


def test_report_styled_formats_numbers_and_p_values_and_leaves_text():
    import pandas as pd

    from crm_analytics.reports.report import styled

    df = pd.DataFrame({"segment": ["Champions", "Lost"], "revenue": [12361283.63, 0.5],
                       "chi2_p_value": [3.2e-12, 0.04], "share": [0.123456, 1.0]}, index=["a", "b"])
    html = styled(df).to_html()
    for text in ("Champions", "12,361,284", "0.5000", "<0.0001<", "0.0400", "0.1235", ">1<"):
        assert text in html, text
    assert "12361283.63" not in html and "3.2e-12" not in html
    assert "1,234" in styled(pd.Series([1234.4], name="n")).to_html()


# ---------------------------------------------------------------------------- a package error reads as one message


def _probe_data_error_notebook(project):
    _probe_notebook(project, switch='fail_with: str = ""  # data or bug', last_cell=(
        "from crm_analytics.errors import DataContractError\n"
        "if fail_with == 'data':\n"
        "    raise DataContractError(\"orders.csv: column 'quantity': no value is a number (e.g. 'x' on line 2); \"\n"
        "                            'fix the export or map another column')\n"
        "if fail_with == 'bug':\n"
        "    {}['missing']\n"
        "print('secret code line')"))


@pytest.mark.slow
def test_a_package_error_is_one_plain_message_and_the_last_good_report_stays_byte_identical(project, capsys):
    _probe_data_error_notebook(project)
    _params(project, value=1)
    configure("probe")
    assert main(["run", "probe", "02_probe"]) == 0
    assert main(["index", "probe"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^published reports/probe/02_probe\.html \(\d+ s\)$", out, re.MULTILINE), out
    reports = project / "reports" / "probe"
    kept = ["02_probe.html", "02_probe.ipynb", "metrics/02_probe.json", "status/02_probe.json"]
    before = {name: (reports / name).read_bytes() for name in kept}
    assert "class='banner'" not in (reports / "index.html").read_text()

    _params(project, fail_with="data", value=2)
    configure("probe")
    assert main(["run", "probe", "02_probe"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        ("error: 02_probe on dataset 'probe': orders.csv: column 'quantity': no value is a number (e.g. 'x' on line 2); "
         "fix the export or map another column"),
        ("  (DataContractError in cell 4 of notebooks/02_probe.ipynb) the executed notebook is kept at "
         "reports/probe/02_probe.FAILED.ipynb; the last good report is left in place; kernel messages are in "
         "build/probe/logs/02_probe.kernel.log"),
    ]
    assert {name: (reports / name).read_bytes() for name in kept} == before  # byte-identical
    assert (reports / "02_probe.FAILED.ipynb").exists()
    failed = json.loads((project / "build" / "probe" / "logs" / "02_probe.failed.json").read_text())
    assert failed["status"] == "failed" and "DataContractError" in failed["detail"]
    # the summary page stays the last good one, with a visible banner naming the failure and its log
    index = html.unescape((reports / "index.html").read_text())
    assert "class='banner'" in index and "in 02_probe (see " in index and "02_probe.kernel.log" in index

    _params(project, fail_with="bug", value=3)  # an unexpected error keeps the cell description
    configure("probe")
    assert main(["run", "probe", "02_probe"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: notebook 02_probe failed on dataset 'probe' in cell 4 (code cell 3: "
                          "`from crm_analytics.errors import DataContractError`): KeyError: 'missing'\n")
    assert {name: (reports / name).read_bytes() for name in kept} == before

    _params(project, value=4)
    configure("probe")
    assert main(["run", "probe", "02_probe"]) == 0
    assert main(["index", "probe"]) == 0
    assert "class='banner'" not in (reports / "index.html").read_text()  # a good night clears the banner
    assert not (project / "build" / "probe" / "logs" / "02_probe.failed.json").exists()
    assert not (reports / "02_probe.FAILED.ipynb").exists()


# ---------------------------------------------------------------------------- make lab


def test_make_lab_builds_the_ci_reports_before_starting_jupyter(tmp_path):
    """The notebooks' defaults read dataset `ci`: `make lab` builds it first, so Run All works at once."""
    import os
    import subprocess

    from conftest import copy_project

    root = copy_project(tmp_path / "p")
    env = {**os.environ, "CRM_ANALYTICS_ROOT": str(root), "CRM_ANALYTICS_SECRET": "lab-secret"}
    run = subprocess.run(["make", "--no-print-directory", "-n", "lab", "DATASET=demo", "JUPYTER=jupyter-stub"],
                         cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "pip install" not in run.stdout  # set up once, not again
    jupyter = lines.index("jupyter-stub lab --notebook-dir=notebooks")
    ci_steps = [i for i, ln in enumerate(lines) if "crm_analytics.pipeline run ci " in ln or
                "crm_analytics.pipeline index ci" in ln or "crm_analytics.ingest.sources build ci" in ln]
    assert len(ci_steps) >= 3 and max(ci_steps) < jupyter, run.stdout
    assert "demo" not in run.stdout.replace("DATASET=demo", "")


@pytest.mark.slow
def test_a_turkish_run_publishes_translated_text_and_lists_what_is_left_in_english(project, capsys):
    """The Markdown heading the catalogue knows ('## Provenance') and a report.md template it knows are
    published in Turkish; a heading it does not know stays English and is listed in the logs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "crm-analytics", "display_name": "CRM Analytics", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Probe\n\n## Provenance\n\n## A heading nobody translated"),
        nbformat.v4.new_code_cell('dataset: str = "ci"  # dataset\nlanguage: str = "en"  # language',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("from IPython.display import display\nfrom crm_analytics import i18n\nfrom crm_analytics.reports import report\n"
                                  "i18n.use(language)\nreport.write_metrics(dataset, '02_probe', {'value': 1})\n"
                                  "display(report.md('yes'))\ndisplay(report.md('A sentence nobody translated'))"),
    ]
    nbformat.write(nb, project / "notebooks" / "02_probe.ipynb")
    _params(project, language="tr")
    configure("probe")
    page = run_notebook("probe", "02_probe").read_text()
    assert "Kaynak bilgisi" in page and ">evet<" in page and 'lang="tr"' in page
    log = project / "build" / "probe" / "logs" / "02_probe.untranslated.txt"
    assert log.read_text().splitlines() == ["# Probe", "## A heading nobody translated", "A sentence nobody translated"]
    assert "3 texts of 02_probe have no tr translation" in capsys.readouterr().err

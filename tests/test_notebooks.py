"""nbval over every pipeline notebook with its default parameters (the `ci` dataset)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crm_analytics.ingest.params import pipeline_notebooks

pytestmark = pytest.mark.slow


def test_every_notebook_runs_top_to_bottom_with_nbval(ci_root):
    notebooks = [f"notebooks/{nb}.ipynb" for nb in pipeline_notebooks()]
    env = {**os.environ, "CRM_ANALYTICS_ROOT": str(ci_root), "CRM_ANALYTICS_SECRET": "nbval-secret"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         *notebooks],
        cwd=ci_root, env=env, capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout


def test_notebooks_are_thin_and_committed_without_outputs():
    import json

    from conftest import REPO

    for nb in pipeline_notebooks():
        cells = json.loads((REPO / "notebooks" / f"{nb}.ipynb").read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{nb}: outputs committed"
            assert not any(line.startswith(("def ", "class ")) for line in src.splitlines()), f"{nb}: logic belongs in the package"
        assert cells[0]["cell_type"] == "markdown" and cells[0]["source"][0].startswith("# ")

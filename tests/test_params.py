"""Params files against the notebooks' parameters cells."""

from __future__ import annotations

import json

import pytest
import yaml

from crm_analytics.errors import ParamsError
from crm_analytics.params import check_type, notebook_parameters, pipeline_notebooks, resolve_notebook_params

from conftest import REPO

DATASETS = sorted(p.stem for p in (REPO / "params").glob("*.yaml"))


def test_there_are_pipeline_notebooks_and_datasets():
    assert "01_data_cleaning" in pipeline_notebooks()
    assert {"ci", "demo", "cdnow", "online_retail", "hillstrom"} <= set(DATASETS)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_params_file_matches_its_notebooks(dataset):
    resolved = resolve_notebook_params(dataset)
    raw = yaml.safe_load((REPO / "params" / f"{dataset}.yaml").read_text())
    used = {k for values in resolved["per_notebook"].values() for k in values}
    assert set(raw) - {"description", "source", "notebooks"} <= used
    for nb, values in resolved["per_notebook"].items():
        assert values["dataset"] == dataset
        assert set(values) <= set(notebook_parameters(nb))


@pytest.mark.parametrize("notebook", pipeline_notebooks())
def test_every_line_of_a_parameters_cell_is_a_parameter(notebook):
    """papermill silently skips a line it cannot parse (e.g. '=' in a help comment); we don't."""
    nb = json.loads((REPO / "notebooks" / f"{notebook}.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    source = "".join(cell["source"]).splitlines()
    assignments = [ln for ln in source if ln.strip() and not ln.strip().startswith("#")]
    declared = notebook_parameters(notebook)
    assert len(declared) == len(assignments), f"unparsed lines in {notebook}: {assignments}"
    assert next(iter(declared)) == "dataset"
    for name, info in declared.items():
        assert info["help"], f"{notebook}: parameter {name} has no # help comment"
        assert info["type"] in {"str", "int", "float", "bool", "dict", "list"}, (name, info)
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert first_code is cell, "the parameters cell must be the first code cell"


def _write(project, text):
    (project / "params" / "mine.yaml").write_text(text)


def test_unknown_key_names_file_key_and_allowed_keys(project):
    _write(project, "source: {kind: cdnow}\nnotebooks: [01_data_cleaning]\nstale_afterdays: 3\n")
    with pytest.raises(ParamsError, match=r"mine\.yaml: unknown key 'stale_afterdays' \(did you mean 'stale_after_days'\?\); allowed keys are \[.*'stale_after_days'"):
        resolve_notebook_params("mine")


def test_wrong_type_is_refused(project):
    _write(project, "source: {kind: cdnow}\nnotebooks: [01_data_cleaning]\nstale_after_days: soon\n")
    with pytest.raises(ParamsError, match=r"key 'stale_after_days' must be int .*got str 'soon'"):
        resolve_notebook_params("mine")


def test_bad_segment_map_stops_before_any_notebook(project):
    _write(project, "source: {kind: cdnow}\nnotebooks: [01_data_cleaning, 02_segmentation]\n"
                    "segment_map: {Best: {r: [4, 5], f: [6, 7]}}\n")
    with pytest.raises(ParamsError, match=r"mine\.yaml: key 'segment_map': segment map is invalid:[\s\S]*"
                                          r"'Best': f \[6, 7\] is outside the scores 1..5"):
        resolve_notebook_params("mine")
    _write(project, "source: {kind: cdnow}\nnotebooks: [01_data_cleaning, 02_segmentation]\n"
                    "segment_map: {Best: {r: [4, 5], fm: [4, 5]}, Others: {}}\n")
    assert resolve_notebook_params("mine")["per_notebook"]["02_segmentation"]["segment_map"]["Others"] == {}


def test_unknown_source_kind_lists_the_kinds(project):
    from crm_analytics.pipeline import configure

    _write(project, "source: {kind: spark}\nnotebooks: [01_data_cleaning]\n")
    with pytest.raises(ParamsError, match=r"source.kind must be one of \['cdnow', 'demo', .*got 'spark'"):
        configure("mine")


def test_missing_params_file(project):
    with pytest.raises(ParamsError, match=r"nosuch\.yaml: params file does not exist"):
        resolve_notebook_params("nosuch")


def test_folder_form_merges_per_notebook_files(project):
    folder = project / "params" / "shop"
    folder.mkdir()
    (folder / "dataset.yaml").write_text("source: {kind: cdnow}\nnotebooks: [01_data_cleaning]\n")
    (folder / "01_data_cleaning.yaml").write_text("stale_after_days: 9\n")
    resolved = resolve_notebook_params("shop")
    assert resolved["per_notebook"]["01_data_cleaning"] == {"dataset": "shop", "stale_after_days": 9}
    (folder / "01_data_cleaning.yaml").write_text("horizon: 9\n")
    with pytest.raises(ParamsError, match=r"01_data_cleaning\.yaml: unknown key 'horizon'"):
        resolve_notebook_params("shop")


@pytest.mark.parametrize("value,type_name,ok", [
    (1, "int", True), (True, "int", False), (1, "float", True), (1.5, "int", False),
    ("a", "str", True), ({}, "dict", True), ([1], "list", True), (None, "str", False),
])
def test_check_type(value, type_name, ok):
    assert check_type(value, type_name) is ok

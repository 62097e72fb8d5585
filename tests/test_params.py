"""Params files against the notebooks' parameters cells."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from conftest import REPO

from crm_analytics.errors import ParamsError
from crm_analytics.ingest.params import (
    check_type,
    check_value,
    notebook_parameters,
    pipeline_notebooks,
    resolve_notebook_params,
)
from crm_analytics.ingest.params_rules import (
    BEHAVIOUR_FEATURE_PREFIXES,
    BEHAVIOUR_FEATURES,
    RELATIONS,
    RULES,
)

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


# ---------------------------------------------------------------------------- value rules
ALL = "[01_data_cleaning, 02_segmentation, 03_clv_churn, 04_campaign_roi]"


@pytest.mark.parametrize("notebook", pipeline_notebooks())
def test_every_parameter_of_every_notebook_has_a_rule_its_default_obeys(notebook):
    """A notebook that gains a parameter must say in params_rules.RULES what its values may be."""
    import ast

    for name, info in notebook_parameters(notebook).items():
        assert name in RULES, f"{notebook}: parameter {name!r} has no rule in crm_analytics.ingest.params_rules.RULES"
        rule = RULES[name]
        assert info["type"] in rule.types, f"{notebook}: {name} is {info['type']}, its rule is for {rule.types}"
        default = ast.literal_eval(info["default"])
        assert rule.problem(default) is None, f"{notebook}: the default of {name} breaks its rule: {rule.problem(default)}"
    for rel in RELATIONS:
        declared = notebook_parameters(notebook)
        if rel.first in declared and rel.second in declared:
            a, b = (ast.literal_eval(declared[k]["default"]) for k in (rel.first, rel.second))
            assert rel.holds(a, b), f"{notebook}: defaults break {rel.text}"


def test_rules_agree_with_the_package():
    import inspect

    from crm_analytics.models import segmentation
    from crm_analytics.reports import clv_report

    assert RULES["time_unit"].problem("x").startswith(f"must be one of {sorted(clv_report.TIME_UNITS)}")
    source = inspect.getsource(segmentation.behaviour_features)
    for name in BEHAVIOUR_FEATURES + list(BEHAVIOUR_FEATURE_PREFIXES):
        assert f'"{name}' in source, f"behaviour_features makes no column {name!r}"
    for method in ("kmeans", "gmm"):
        assert RULES["cluster_method"].problem(method) is None
    assert "max_reject_share" in RULES  # 01_data_cleaning's share of rejected rows that stops the run


@pytest.mark.parametrize("key, value, message", [
    # enumerations list the allowed values and suggest the nearest
    ("time_unit", "weak", r"key 'time_unit' must be one of \['day', 'month', 'week'\], got 'weak' \(did you mean 'week'\?\)"),
    ("cluster_method", "kmean", r"key 'cluster_method' must be one of \['gmm', 'kmeans'\], got 'kmean' \(did you mean 'kmeans'\?\)"),
    ("uplift_outcome", "conversion", r"key 'uplift_outcome' must be one of \['converted', 'visited'\], got 'conversion'"),
    # dates
    ("as_of", "30.06.2025", r"key 'as_of' must be a date as YYYY-MM-DD .*or empty \(the day after the last order\), got '30.06.2025'"),
    ("calibration_end", "1997-02-30", r"key 'calibration_end' must be a date as YYYY-MM-DD .*got '1997-02-30': day is out of range"),
    # strftime formats
    ("date_format", "%d.%m", r"key 'date_format' must be a strftime format with day, month and year .*got '%d.%m': no year directive"),
    ("date_format", "dd.mm.yyyy", r"key 'date_format' .*no day or month or year directive"),
    ("date_format", "%d.%m.%Y %Q", r"key 'date_format' must be a strftime format like .*got '%d.%m.%Y %Q'"),
    # ranges
    ("alpha", 5, r"key 'alpha' must be a number in \(0, 1\), got 5"),
    ("power", 1.0, r"key 'power' must be a number in \(0, 1\), got 1.0"),
    ("uplift_test_share", 0.0, r"key 'uplift_test_share' must be a number in \(0, 1\), got 0.0"),
    ("margin_rate", 0, r"key 'margin_rate' must be a number in \(0, 1\], got 0"),
    ("discount_rate_annual", -0.1, r"key 'discount_rate_annual' must be a number in \[0, 1\], got -0.1"),
    ("holdout_days", 0, r"key 'holdout_days' must be a whole number >= 1, got 0"),
    ("k_min", 1, r"key 'k_min' must be a whole number >= 2, got 1"),
    ("stale_after_days", -3, r"key 'stale_after_days' must be a whole number >= 0, got -3"),
    ("penalizer", float("nan"), r"key 'penalizer' must be a number >= 0, got nan"),
    # feature lists
    ("cluster_features", "log_ordrs,channel_share_app", (r"key 'cluster_features' names unknown behaviour features "
                                                             r"\['log_ordrs'\] \(did you mean 'log_orders'\?\); "
                                                             r"behaviour features are \[")),
    ("cluster_features", " , ", r"key 'cluster_features' must name at least one of the behaviour features"),
])
def test_a_value_against_its_rule_names_file_key_rule_and_value(project, key, value, message):
    _write(project, f"source: {{kind: cdnow}}\nnotebooks: {ALL}\n{key}: {'.nan' if isinstance(value, float) and math.isnan(value) else json.dumps(value)}\n")
    with pytest.raises(ParamsError, match=r"^params/mine\.yaml: " + message):
        resolve_notebook_params("mine")


@pytest.mark.parametrize("key, value", [
    ("time_unit", "month"), ("as_of", ""), ("calibration_end", "1997-09-30"), ("date_format", "%d.%m.%Y %H:%M"),
    ("date_format", "%m/%d/%y"), ("date_format", "ISO8601"), ("date_format", ""), ("alpha", 0.1), ("margin_rate", 1),
    ("cluster_features", "log_orders, cat_share_books,channel_share_web"), ("k_min", 3), ("uplift_campaign", "C7"),
])
def test_good_values_pass(project, key, value):
    _write(project, f"source: {{kind: cdnow}}\nnotebooks: {ALL}\n{key}: {json.dumps(value)}\n")
    assert resolve_notebook_params("mine")  # no error


def test_max_reject_share_is_a_share():
    assert check_value("max_reject_share", 0.05, "params/x.yaml") is None
    with pytest.raises(ParamsError, match=r"^params/x\.yaml: key 'max_reject_share' must be a number in \[0, 1\], got 1.5$"):
        check_value("max_reject_share", 1.5, "params/x.yaml")


def test_k_min_above_k_max_names_both_and_the_default(project):
    _write(project, f"source: {{kind: cdnow}}\nnotebooks: {ALL}\nk_min: 9\n")
    with pytest.raises(ParamsError, match=r"^params/mine\.yaml: keys 'k_min' and 'k_max': k_min must be <= k_max, "
                                          r"got k_min = 9 and k_max = 8 \(the default of 02_segmentation\)$"):
        resolve_notebook_params("mine")
    _write(project, f"source: {{kind: cdnow}}\nnotebooks: {ALL}\nk_min: 9\nk_max: 10\n")
    assert resolve_notebook_params("mine")["per_notebook"]["02_segmentation"]["k_max"] == 10


def test_an_unquoted_yaml_date_says_to_quote_it(project):
    _write(project, f"source: {{kind: cdnow}}\nnotebooks: {ALL}\nas_of: 2025-06-30\n")
    with pytest.raises(ParamsError, match=r"key 'as_of' must be str .*got date datetime.date\(2025, 6, 30\); "
                                          r"quote dates in YAML: as_of: \"2025-06-30\""):
        resolve_notebook_params("mine")


def test_a_rule_in_a_per_notebook_file_names_that_file(project):
    folder = project / "params" / "shop"
    folder.mkdir()
    (folder / "dataset.yaml").write_text(f"source: {{kind: cdnow}}\nnotebooks: {ALL}\n")
    (folder / "03_clv_churn.yaml").write_text("time_unit: days\n")
    with pytest.raises(ParamsError, match=r"^params/shop/03_clv_churn\.yaml: key 'time_unit' must be one of .*'day'"):
        resolve_notebook_params("shop")


def test_a_missing_input_file_stops_configure_naming_the_key_and_the_path(project, capsys):
    from crm_analytics.pipeline import main

    _write(project, "source: {kind: online_retail, path: exports/invoices.csv}\nnotebooks: [01_data_cleaning]\n")
    assert main(["configure", "mine"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: params/mine.yaml: key 'source.path': input file 'exports/invoices.csv' "
                   f"({project / 'exports' / 'invoices.csv'}) does not exist; set source.path to the export's path "
                   "(absolute, relative to the project, or external:<path below ../shared/external>)")
    assert not (project / "build" / "mine").exists()
    _write(project, "source: {kind: files, tables: {orders: {path: exports/orders.csv}}}\nnotebooks: [01_data_cleaning]\n")
    assert main(["configure", "mine"]) == 2
    assert "key 'source.tables.orders.path': input file 'exports/orders.csv'" in capsys.readouterr().err
    (project / "exports").mkdir()
    (project / "exports" / "orders.csv").write_text("Name\n1\n")
    assert main(["configure", "mine"]) == 0


def test_a_typo_stops_configure_with_exit_2_and_one_line(project, capsys):
    from crm_analytics.pipeline import main

    (project / "params" / "demo.yaml").write_text((project / "params" / "demo.yaml").read_text() + "time_unit: weak\n")
    assert main(["configure", "demo"]) == 2
    captured = capsys.readouterr()
    assert captured.err == ("error: params/demo.yaml: key 'time_unit' must be one of ['day', 'month', 'week'], "
                            "got 'weak' (did you mean 'week'?)\n")
    assert captured.out == "" and not (project / "build" / "demo" / "dataset.mk").exists()

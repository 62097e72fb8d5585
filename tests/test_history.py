"""Run history: snapshots of the metrics after each run, the changes between runs, the compare
command and the record of the last failure."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crm_analytics.reports import history
from crm_analytics.errors import CrmAnalyticsError
from crm_analytics.reports.history import Change, changes

DS = "hist"
T0 = datetime(2026, 12, 3, 14, 15, 0, tzinfo=UTC)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An empty project root that crm_analytics.paths resolves to."""
    r = tmp_path / "project"
    r.mkdir()
    monkeypatch.setenv("CRM_ANALYTICS_ROOT", str(r))
    monkeypatch.delenv("CRM_ANALYTICS_STAGING", raising=False)
    return r


def publish(root: Path, metrics: dict[str, dict], seconds: float = 1.5) -> None:
    """Write metrics and status files as the pipeline publishes them (write_metrics' format)."""
    reports = root / "reports" / DS
    (reports / "metrics").mkdir(parents=True, exist_ok=True)
    (reports / "status").mkdir(parents=True, exist_ok=True)
    for nb, m in metrics.items():
        text = json.dumps(m, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (reports / "metrics" / f"{nb}.json").write_text(text, encoding="utf-8")
        status = {"notebook": nb, "status": "ok", "seconds": seconds, "finished_utc": "2026-12-03T14:14:00Z",
                  "detail": ""}
        (reports / "status" / f"{nb}.json").write_text(json.dumps(status, indent=2) + "\n", encoding="utf-8")


def run_cli(*args: str) -> tuple[int, str, str]:
    """The history command line in a fresh process (environment inherited, so the root applies)."""
    p = subprocess.run([sys.executable, "-m", "crm_analytics.reports.history", *args],
                       check=False, capture_output=True, text=True, env=os.environ.copy(), timeout=60)
    return p.returncode, p.stdout, p.stderr


ONE = {"01_data_cleaning": {"rows": {"orders": 100, "rejected": 2}, "as_of": "2026-01-01"},
       "02_segmentation": {"customers": 869, "clusters": {"k": 4, "silhouette": 0.25}}}
TWO = {"01_data_cleaning": {"rows": {"orders": 110, "rejected": 2}, "as_of": "2026-02-01"},
       "02_segmentation": {"customers": 869, "clusters": {"k": 5, "silhouette": 0.25}}}


# ----------------------------------------------------------------------------- snapshots


def test_record_run_snapshots_every_metrics_file_and_the_run(root):
    publish(root, ONE, seconds=3.7)
    (root / "reports" / DS / "metrics" / "01_data_cleaning.json.tmp").write_text("half written")
    out = history.record_run(DS, now=T0)
    assert out == root / "reports" / DS / "history" / "20261203T141500Z"
    assert sorted(p.name for p in out.iterdir()) == ["01_data_cleaning.json", "02_segmentation.json", "run.json"]
    for nb in ONE:  # byte for byte
        assert (out / f"{nb}.json").read_bytes() == (root / "reports" / DS / "metrics" / f"{nb}.json").read_bytes()
    info = json.loads((out / "run.json").read_text())
    assert info["run_id"] == "20261203T141500Z"
    assert info["finished_utc"] == "2026-12-03T14:15:00Z"
    assert info["git_commit"] is None  # no git checkout here: git is not even asked
    assert info["notebooks"]["02_segmentation"] == {"status": "ok", "seconds": 3.7,
                                                    "finished_utc": "2026-12-03T14:14:00Z"}
    assert history.runs(DS) == ["20261203T141500Z"]
    assert history.load(DS, "20261203T141500Z") == ONE
    assert history.load(DS, -1) == ONE
    assert history.run_info(DS, -1)["run_id"] == "20261203T141500Z"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_rebuild_with_identical_metrics_is_not_a_run(root):
    publish(root, ONE)
    first = history.record_run(DS, now=T0)
    publish(root, ONE, seconds=9.9)  # rewritten, same bytes; only the run time differs
    again = history.record_run(DS, now=T0 + timedelta(hours=1))
    assert again == first
    assert history.runs(DS) == ["20261203T141500Z"]
    publish(root, TWO)
    second = history.record_run(DS, now=T0 + timedelta(hours=2))
    assert second.name == "20261203T161500Z"
    publish(root, ONE)  # back to the first numbers: differs from the latest, so it is a run
    assert history.record_run(DS, now=T0 + timedelta(hours=3)).name == "20261203T171500Z"
    assert len(history.runs(DS)) == 3


def test_a_removed_metrics_file_is_a_change(root):
    publish(root, ONE)
    history.record_run(DS, now=T0)
    (root / "reports" / DS / "metrics" / "02_segmentation.json").unlink()
    assert history.record_run(DS, now=T0 + timedelta(minutes=1)).name == "20261203T141600Z"
    assert set(history.load(DS, -1)) == {"01_data_cleaning"}


def test_runs_in_the_same_second_get_distinct_ordered_ids(root):
    publish(root, ONE)
    history.record_run(DS, now=T0)
    publish(root, TWO)
    history.record_run(DS, now=T0)
    publish(root, ONE)
    history.record_run(DS, now=T0 - timedelta(seconds=5))  # a clock set back stays after the latest
    assert history.runs(DS) == ["20261203T141500Z", "20261203T141500Z-2", "20261203T141500Z-3"]
    assert history.load(DS, "20261203T141500Z-2") == TWO


def test_retention_keeps_the_newest_runs(root):
    for i in range(7):
        publish(root, {"01_data_cleaning": {"rows": {"orders": i}}})
        history.record_run(DS, keep=5, now=T0 + timedelta(days=i))
    ids = history.runs(DS)
    assert ids == [(T0 + timedelta(days=i)).strftime("%Y%m%dT%H%M%SZ") for i in range(2, 7)]
    assert history.load(DS, 0) == {"01_data_cleaning": {"rows": {"orders": 2}}}
    folder = root / "reports" / DS / "history"
    assert sorted(p.name for p in folder.iterdir()) == ids  # removed ones leave nothing behind


def test_a_recorder_killed_half_way_leaves_no_run(root):
    publish(root, ONE)
    folder = root / "reports" / DS / "history"
    (folder / ".tmp-20261203T140000Z-999").mkdir(parents=True)
    (folder / ".tmp-20261203T140000Z-999" / "01_data_cleaning.json").write_text("{}")
    assert history.runs(DS) == []
    history.record_run(DS, now=T0)
    assert history.runs(DS) == ["20261203T141500Z"]
    assert not (folder / ".tmp-20261203T140000Z-999").exists()


def test_unknown_runs_are_refused(root):
    publish(root, ONE)
    history.record_run(DS, now=T0)
    with pytest.raises(CrmAnalyticsError, match="no run '20991231T000000Z'"):
        history.load(DS, "20991231T000000Z")
    with pytest.raises(CrmAnalyticsError, match="no run"):
        history.load(DS, "../metrics")
    with pytest.raises(CrmAnalyticsError, match="no run -2 .* 1 recorded run"):
        history.load(DS, -2)


def test_previous_is_the_run_before_the_current_metrics(root):
    publish(root, ONE)
    assert history.previous(DS) is None
    history.record_run(DS, now=T0)
    assert history.previous(DS) is None  # the only run is the current state
    publish(root, TWO)
    # not recorded yet (a page written before record_run): the latest run is the previous one
    before = history.previous(DS)
    assert before["run_id"] == "20261203T141500Z" and before["metrics"] == ONE
    history.record_run(DS, now=T0 + timedelta(days=1))
    after = history.previous(DS)  # recorded: the latest equals the current state, so the one before it
    assert after["run_id"] == "20261203T141500Z"
    assert after["run"]["finished_utc"] == "2026-12-03T14:15:00Z"
    assert after["metrics"] == ONE


def test_delta_gives_the_current_and_the_previous_value(root):
    publish(root, ONE)
    history.record_run(DS, now=T0)
    assert history.delta(DS, "02_segmentation", "clusters.k") == (4, None)
    publish(root, TWO)
    history.record_run(DS, now=T0 + timedelta(days=1))
    assert history.delta(DS, "02_segmentation", "clusters.k") == (5, 4)
    assert history.delta(DS, "01_data_cleaning", "rows.orders") == (110, 100)
    assert history.delta(DS, "02_segmentation", "no.such.key") == (None, None)
    assert history.delta(DS, "09_missing", "x") == (None, None)


# ----------------------------------------------------------------------------- changes


def test_changes_flattens_nested_dicts_and_compares_by_kind():
    old = {
        "01_a": {"rows": {"orders": 100, "lines": 0, "same": 1}, "as_of": "2026-01-01", "top": [1, 2, 3],
                 "flag": True, "gone": {"deep": 1.5}, "nan": float("nan"), "none": None},
        "02_b": {"k": 4},
    }
    new = {
        "01_a": {"rows": {"orders": 110, "lines": 7, "same": 1.0}, "as_of": "2026-02-01", "top": [1, 2, 4],
                 "flag": 1, "fresh": {"deep": "x"}, "nan": float("nan"), "none": 3},
        "03_c": {"customers": 5},
    }
    got = {(c.notebook, c.key): c for c in changes(old, new)}
    assert set(got) == {("01_a", "rows.orders"), ("01_a", "rows.lines"), ("01_a", "as_of"), ("01_a", "top"),
                        ("01_a", "flag"), ("01_a", "gone.deep"), ("01_a", "fresh.deep"), ("01_a", "none"),
                        ("02_b", "k"), ("03_c", "customers")}
    assert got["01_a", "rows.orders"] == Change("01_a", "rows.orders", 100, 110, 10, pytest.approx(0.1), "changed")
    assert got["01_a", "rows.lines"].abs_change == 7 and got["01_a", "rows.lines"].rel_change is None  # from 0
    assert got["01_a", "as_of"].kind == "changed" and got["01_a", "as_of"].abs_change is None
    assert got["01_a", "top"] == Change("01_a", "top", [1, 2, 3], [1, 2, 4], None, None, "changed")  # lists whole
    assert got["01_a", "flag"].kind == "changed"  # True is not the number 1
    assert got["01_a", "none"] == Change("01_a", "none", None, 3, None, None, "changed")
    assert got["01_a", "gone.deep"] == Change("01_a", "gone.deep", 1.5, None, None, None, "removed")
    assert got["01_a", "fresh.deep"] == Change("01_a", "fresh.deep", None, "x", None, None, "added")
    assert got["02_b", "k"].kind == "removed" and got["03_c", "customers"].kind == "added"
    keys = [(c.notebook, c.key) for c in changes(old, new)]
    assert keys == sorted(keys)


def test_changes_uses_a_relative_tolerance_for_numbers():
    assert changes({"n": {"x": 0.1 + 0.2}}, {"n": {"x": 0.3}}) == []
    assert changes({"n": {"x": 1.0}}, {"n": {"x": 1.0 + 1e-7}}, rel_tol=1e-6) == []
    (c,) = changes({"n": {"x": 1.0}}, {"n": {"x": 1.0 + 1e-7}})
    assert c.kind == "changed" and math.isclose(c.rel_change, 1e-7, rel_tol=1e-6)
    (c,) = changes({"n": {"x": -50}}, {"n": {"x": -25}})
    assert c.abs_change == 25 and c.rel_change == 0.5  # relative to |old|
    assert changes({"n": {"x": [float("nan")]}}, {"n": {"x": [float("nan")]}}) == []
    assert changes(ONE, json.loads(json.dumps(ONE))) == []


def test_a_value_that_becomes_a_dict_is_removed_and_added():
    got = changes({"n": {"a": 5}}, {"n": {"a": {"b": 5}}})
    assert [(c.key, c.kind) for c in got] == [("a", "removed"), ("a.b", "added")]


# ----------------------------------------------------------------------------- command line


def test_compare_prints_an_aligned_table_of_the_last_two_runs(root):
    publish(root, ONE)
    history.record_run(DS, now=T0)
    publish(root, TWO)
    history.record_run(DS, now=T0 + timedelta(days=1))
    code, out, err = run_cli("compare", DS)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{DS}: 3 difference(s) from run 20261203T141500Z to run 20261204T141500Z"
    header, rule, *rows = lines[1:]
    assert header.split() == ["notebook", "key", "old", "new", "change"]
    assert set(rule) <= {"-", " "}
    # aligned: every column starts at the same offset on every row
    starts = [header.index(h) for h in ("key", "old", "new", "change")]
    for row in rows:
        for s in starts:
            assert row[s - 2: s] == "  " and row[s] != " "
    assert [r.split()[:2] for r in rows] == [["01_data_cleaning", "as_of"], ["01_data_cleaning", "rows.orders"],
                                             ["02_segmentation", "clusters.k"]]
    assert rows[1].split()[2:] == ["100", "110", "+10", "(+10.0%)"]
    assert rows[0].split()[2:] == ["2026-01-01", "2026-02-01", "changed"]
    assert rows[2].split()[2:] == ["4", "5", "+1", "(+25.0%)"]


def test_compare_takes_ids_and_indices(root):
    for i, m in enumerate([ONE, TWO, ONE]):
        publish(root, m)
        history.record_run(DS, now=T0 + timedelta(days=i))
    code, out, _ = run_cli("compare", DS, "0", "-1")
    assert code == 0 and "no differences between run 20261203T141500Z and run 20261205T141500Z" in out
    code, out, _ = run_cli("compare", DS, "-2")  # with the latest
    assert code == 0 and "3 difference(s) from run 20261204T141500Z to run 20261205T141500Z" in out
    code, out, _ = run_cli("compare", DS, "20261203T141500Z", "20261204T141500Z")
    assert code == 0 and "rows.orders" in out and "+10" in out
    code, out, _ = run_cli("list", DS)
    assert code == 0
    assert [ln.split()[:2] for ln in out.splitlines()] == [["-3", "20261203T141500Z"], ["-2", "20261204T141500Z"],
                                                           ["-1", "20261205T141500Z"]]
    assert "2 notebook(s)" in out


def test_compare_explains_in_one_line_when_it_cannot(root):
    code, out, err = run_cli("compare", DS)
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "has 0 recorded run(s); compare needs two" in err
    assert "Traceback" not in err
    publish(root, ONE)
    history.record_run(DS, now=T0)
    code, _, err = run_cli("compare", DS)
    assert code == 2 and "has 1 recorded run(s)" in err and "Traceback" not in err
    publish(root, TWO)
    history.record_run(DS, now=T0 + timedelta(days=1))
    for bad in (["20991231T000000Z"], ["-3"], ["5", "-1"], ["-1", "nonsense"]):
        code, out, err = run_cli("compare", DS, *bad)
        assert code == 2, bad
        assert err.startswith("error: no run") and err.count("\n") == 1 and "Traceback" not in err, err
    code, _, err = run_cli("compare", DS, "-1", "-2", "0")
    assert code == 2 and "at most two runs" in err
    code, out, _ = run_cli("list", "nothing_here")
    assert code == 0 and "no runs recorded" in out


# ----------------------------------------------------------------------------- failures


def test_failure_record_round_trip(root):
    assert history.last_failure(DS) is None
    log = root / "build" / DS / "logs" / "03_clv_churn.kernel.log"
    out = history.record_failure(DS, "03_clv_churn", log, "notebook 03_clv_churn failed on dataset 'hist' in cell 4\n"
                                 "  the executed notebook is kept at reports/hist/03_clv_churn.FAILED.ipynb")
    assert out == root / "reports" / DS / "status" / "last_failure.json"
    rec = history.last_failure(DS)
    assert rec["notebook"] == "03_clv_churn"
    assert rec["log"] == "../../build/hist/logs/03_clv_churn.kernel.log"  # relative to reports/hist
    assert (out.parent.parent / rec["log"]).resolve() == log.resolve()
    assert rec["message"] == "notebook 03_clv_churn failed on dataset 'hist' in cell 4"  # the first line
    assert datetime.strptime(rec["failed_utc"], "%Y-%m-%dT%H:%M:%SZ")
    # a relative log path is taken from the project root
    history.record_failure(DS, "03_clv_churn", "reports/hist/03_clv_churn.FAILED.ipynb", ValueError("boom"))
    assert history.last_failure(DS)["log"] == "03_clv_churn.FAILED.ipynb"
    assert history.last_failure(DS)["message"] == "ValueError: boom"
    assert history.clear_failure(DS) is True
    assert history.last_failure(DS) is None
    assert history.clear_failure(DS) is False


def test_the_failure_record_is_not_a_notebook_status_in_the_run(root):
    publish(root, ONE)
    history.record_failure(DS, "02_segmentation", root / "x.log", "failed")
    info = json.loads((history.record_run(DS, now=T0) / "run.json").read_text())
    assert set(info["notebooks"]) == set(ONE)


@pytest.mark.parametrize(("error", "must_not_show", "must_show"), [
    (KeyError("Ayşe Yılmaz"), ["Ayşe", "Yılmaz"], ["KeyError"]),
    (ValueError("customer 'C0000404' has no orders"), ["C0000404"], ["ValueError", "has no orders"]),
    ("orders.csv: column 'order_ts': no value parses as a date (e.g. 'ayse@example.com (x)' on line 3); "
     + "set params.date_format", ["ayse", "example.com", "line 3"], ["'order_ts'", "(e.g. …)", "params.date_format"]),
    ("contact ali.veli@example.org or +90 532 123 45 67 or 05321234567", ["ali.veli", "532", "1234567"], ["contact"]),
    ("tickets: 12 value(s) outside 1-5 on 2026-12-03", [], ["12 value(s)", "1-5", "2026-12-03"]),
    (AttributeError("module 'crm_analytics.reports.behaviour_report' has no attribute 'BREAKDOWN_LABELS'"), [],
     ["'crm_analytics.reports.behaviour_report'", "'BREAKDOWN_LABELS'"]),
    ("the shop's orders don't parse: 'Ali' 'CUST_0042'", ["Ali", "0042"], ["shop's orders don't parse"]),
    ("first line\nsecond line with ayse@example.com", ["second", "ayse"], ["first line"]),
])
def test_the_failure_message_is_one_line_without_personal_data(root, error, must_not_show, must_show):
    history.record_failure(DS, "01_data_cleaning", root / "x.log", error)
    message = history.last_failure(DS)["message"]
    assert "\n" not in message and len(message) <= 240
    for text in must_not_show:
        assert text not in message, message
    for text in must_show:
        assert text in message, message


def test_the_failure_message_hides_the_project_path(root):
    message = history.safe_message(f"cannot read {root}/data/raw/hist/orders.csv")
    assert message == "cannot read data/raw/hist/orders.csv"
    assert len(history.safe_message("x" * 1000)) == 240

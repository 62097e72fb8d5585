"""Run history: a snapshot of a dataset's headline numbers after every successful run, and the
record of the last failure.

``reports/<dataset>/history/<run_id>/``
    one folder per run: a copy of every metrics file of the dataset (``<notebook>.json``,
    byte for byte) and ``run.json`` (run id, finished time, git commit when the project is a git
    checkout, and each notebook's status and run time). The run id is the UTC time the run was
    recorded, e.g. ``20261203T141500Z`` (``-2``, ``-3``… is appended in the rare case of two runs
    in one second), so ids sort oldest to newest. :func:`record_run` writes it when a build ends;
    a rebuild whose metrics are byte-identical to the latest snapshot is not a run and records
    nothing. At most :data:`KEEP_RUNS` runs are kept; older ones are removed.
``reports/<dataset>/status/last_failure.json``
    the last failed notebook run: time, notebook, its log (relative to ``reports/<dataset>``) and a
    one-line message with personal data removed (:func:`record_failure`); removed by
    :func:`clear_failure` when a later run succeeds.

``python -m crm_analytics.reports.history list DATASET``
    the recorded runs, oldest first.
``python -m crm_analytics.reports.history compare DATASET [RUN_A [RUN_B]]``
    the headline numbers that differ between two runs (default: the previous and the latest run;
    a run is its id or an index, ``-1`` the latest, ``-2`` the one before, ``0`` the oldest). Fewer
    than two runs or an unknown run end in one message and exit status 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from crm_analytics import paths
from crm_analytics.errors import CrmAnalyticsError

__all__ = [
    "KEEP_RUNS",
    "Change",
    "changes",
    "clear_failure",
    "current_metrics",
    "delta",
    "format_changes",
    "last_failure",
    "load",
    "main",
    "previous",
    "record_failure",
    "record_run",
    "resolve_run",
    "run_info",
    "runs",
    "safe_message",
]

#: runs kept per dataset by :func:`record_run` (older snapshots are removed)
KEEP_RUNS = 60
RUN_FILE = "run.json"
FAILURE_FILE = "last_failure.json"
_RUN_ID = re.compile(r"^(\d{8}T\d{6}Z)(?:-(\d+))?$")
_ISO = "%Y-%m-%dT%H:%M:%SZ"


# ----------------------------------------------------------------------------- places


def history_dir(dataset: str) -> Path:
    """``reports/<dataset>/history``."""
    return paths.reports_dir(dataset) / "history"


def _published_metrics_dir(dataset: str) -> Path:
    # the published metrics, never the staging folder a running notebook writes to
    return paths.reports_dir(dataset) / "metrics"


def _metrics_files(folder: Path) -> dict[str, bytes]:
    """``{notebook: bytes}`` of the metrics files in *folder* (``run.json`` is not one)."""
    if not folder.is_dir():
        return {}
    return {f.stem: f.read_bytes() for f in sorted(folder.glob("*.json"))
            if f.is_file() and f.name != RUN_FILE}


def _decode(files: Mapping[str, bytes]) -> dict[str, Any]:
    return {nb: json.loads(data.decode("utf-8")) for nb, data in files.items()}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def _history_lock(dataset: str) -> Iterator[None]:
    """Wait for, then hold, the dataset's history lock (recording takes a fraction of a second)."""
    lock = paths.build_dir(dataset) / "locks" / "history.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ----------------------------------------------------------------------------- runs


def _sort_key(run_id: str) -> tuple[str, int]:
    m = _RUN_ID.match(run_id)
    assert m is not None
    return m.group(1), int(m.group(2) or 1)


def runs(dataset: str) -> list[str]:
    """Ids of the recorded runs of *dataset*, oldest first (``[]`` when none)."""
    folder = history_dir(dataset)
    if not folder.is_dir():
        return []
    found = [p.name for p in folder.iterdir() if p.is_dir() and _RUN_ID.match(p.name)]
    return sorted(found, key=_sort_key)


def resolve_run(dataset: str, ref: str | int) -> str:
    """The run id *ref* names: an id, or an index into :func:`runs` (``-1`` latest, ``0`` oldest).

    Raises
    ------
    CrmAnalyticsError
        No such run.
    """
    ids = runs(dataset)
    text = str(ref).strip()
    if re.fullmatch(r"[+-]?\d+", text) and not _RUN_ID.match(text):
        i = int(text)
        if -len(ids) <= i < len(ids):
            return ids[i]
        raise CrmAnalyticsError(f"no run {text} for dataset {dataset!r}: it has {len(ids)} recorded run(s); "
                                f"`python -m crm_analytics.reports.history list {dataset}` lists them")
    if text in ids:
        return text
    raise CrmAnalyticsError(f"no run {text!r} for dataset {dataset!r}; "
                            f"`python -m crm_analytics.reports.history list {dataset}` lists the recorded runs")


def load(dataset: str, run_id: str | int) -> dict[str, Any]:
    """``{notebook: metrics}`` of run *run_id* (an id or an index, see :func:`resolve_run`)."""
    run_id = resolve_run(dataset, run_id)
    return _decode(_metrics_files(history_dir(dataset) / run_id))


def run_info(dataset: str, run_id: str | int) -> dict[str, Any]:
    """The ``run.json`` of run *run_id*: ``run_id``, ``finished_utc``, ``git_commit``, ``notebooks``."""
    run_id = resolve_run(dataset, run_id)
    path = history_dir(dataset) / run_id / RUN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"run_id": run_id}


def current_metrics(dataset: str) -> dict[str, Any]:
    """``{notebook: metrics}`` as published now in ``reports/<dataset>/metrics``."""
    return _decode(_metrics_files(_published_metrics_dir(dataset)))


def _git_commit() -> str | None:
    """The checkout's commit, asked of git only when the project is a git checkout."""
    if not (paths.project_root() / ".git").exists():
        return None
    from crm_analytics.reports.report import _git_commit as commit

    value = commit()
    return None if value == "unknown" else value


def _notebook_status(dataset: str) -> dict[str, dict[str, Any]]:
    folder = paths.reports_dir(dataset) / "status"
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for f in sorted(folder.glob("*.json")):
        if f.name == FAILURE_FILE:
            continue
        try:
            record = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out[f.stem] = {k: record.get(k) for k in ("status", "seconds", "finished_utc")}
    return out


def _new_run_id(now: datetime, existing: list[str]) -> str:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    if existing:
        last_stamp, last_n = _sort_key(existing[-1])
        if stamp <= last_stamp:  # the same second (or a clock set back): stay after the latest
            return f"{last_stamp}-{last_n + 1}"
    return stamp


def record_run(dataset: str, *, keep: int = KEEP_RUNS, now: datetime | None = None) -> Path:
    """Snapshot the published metrics of *dataset* as a new run and return its folder.

    Called once a build has succeeded (the index step). When the metrics are byte-identical to
    the latest snapshot nothing is written (a rebuild that changed no number is not a run) and
    the latest snapshot's folder is returned. The snapshot is written to a temporary folder and
    renamed into place, so a reader never sees half a run. Runs beyond the newest *keep* are
    removed.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    folder = history_dir(dataset)
    with _history_lock(dataset):
        current = _metrics_files(_published_metrics_dir(dataset))
        existing = runs(dataset)
        if existing and _metrics_files(folder / existing[-1]) == current:
            return folder / existing[-1]
        now = now or _utc_now()
        run_id = _new_run_id(now, existing)
        for stale in folder.glob(".tmp-*"):  # left by a recorder that was killed half-way
            shutil.rmtree(stale, ignore_errors=True)
        tmp = folder / f".tmp-{run_id}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            for nb, data in current.items():
                (tmp / f"{nb}.json").write_bytes(data)
            info = {
                "run_id": run_id,
                "dataset": dataset,
                "finished_utc": now.astimezone(UTC).strftime(_ISO),
                "git_commit": _git_commit(),
                "notebooks": _notebook_status(dataset),
            }
            (tmp / RUN_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            tmp.rename(folder / run_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in runs(dataset)[:-keep]:
            trash = folder / f".tmp-removed-{old}"
            (folder / old).rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
    return folder / run_id


def previous(dataset: str) -> dict[str, Any] | None:
    """The run before the current metrics: the newest snapshot whose metrics differ from the ones
    published now (so the second-newest when the newest is the current state), or ``None``.

    Returns ``{"run_id": ..., "run": <run.json>, "metrics": {notebook: metrics}}``.
    """
    current = _metrics_files(_published_metrics_dir(dataset))
    folder = history_dir(dataset)
    for run_id in reversed(runs(dataset)):
        files = _metrics_files(folder / run_id)
        if files != current:
            return {"run_id": run_id, "run": run_info(dataset, run_id), "metrics": _decode(files)}
    return None


# ----------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Change:
    """One headline number (or value) that differs between two runs."""

    notebook: str
    key: str  #: dotted path inside the notebook's metrics, e.g. ``clusters.k``
    old: Any  #: ``None`` when added
    new: Any  #: ``None`` when removed
    abs_change: float | None  #: ``new - old`` when both are numbers
    rel_change: float | None  #: ``(new - old) / |old|`` when both are numbers and old is not 0
    kind: Literal["changed", "added", "removed"]


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts under dotted keys; lists (and every other value) are leaves."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(old: Any, new: Any, rel_tol: float) -> bool:
    if _is_number(old) and _is_number(new):
        if math.isnan(old) or math.isnan(new):
            return math.isnan(old) and math.isnan(new)
        return math.isclose(old, new, rel_tol=rel_tol, abs_tol=0.0)
    if _is_number(old) or _is_number(new) or isinstance(old, bool) != isinstance(new, bool):
        return False
    if old == new:
        return True
    try:  # lists holding NaN, say
        return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)
    except (TypeError, ValueError):
        return False


def changes(old: Mapping[str, Any], new: Mapping[str, Any], *, rel_tol: float = 1e-9) -> list[Change]:
    """What differs between two ``{notebook: metrics}`` mappings (as :func:`load` returns).

    Nested dicts are compared leaf by leaf under dotted keys; numbers numerically (within
    *rel_tol*), everything else (text, lists as whole values, ``None``, booleans) by equality.
    A key only in *new* is ``added``, only in *old* ``removed``. Sorted by notebook, then key.
    """
    out: list[Change] = []
    for nb in sorted(set(old) | set(new)):
        a = _flatten(old.get(nb, {}))
        b = _flatten(new.get(nb, {}))
        for key in sorted(set(a) | set(b)):
            if key not in b:
                out.append(Change(nb, key, a[key], None, None, None, "removed"))
            elif key not in a:
                out.append(Change(nb, key, None, b[key], None, None, "added"))
            elif not _same(a[key], b[key], rel_tol):
                x, y = a[key], b[key]
                abs_change = rel_change = None
                if _is_number(x) and _is_number(y):
                    abs_change = y - x
                    rel_change = abs_change / abs(x) if x != 0 and not math.isnan(x) else None
                out.append(Change(nb, key, x, y, abs_change, rel_change, "changed"))
    return out


def delta(dataset: str, notebook: str, dotted_key: str) -> tuple[Any, Any]:
    """``(current value, value in the previous run or None)`` of one headline number, for a tile
    that shows the change since the last run. The current value is ``None`` when not published."""
    now = _flatten(current_metrics(dataset).get(notebook, {})).get(dotted_key)
    before = previous(dataset)
    if before is None:
        return now, None
    return now, _flatten(before["metrics"].get(notebook, {})).get(dotted_key)


def _show(value: Any, width: int = 40) -> str:
    if value is None:
        return "–"
    if _is_number(value):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _show_change(c: Change) -> str:
    if c.kind != "changed":
        return c.kind
    if c.abs_change is None:
        return "changed"
    text = f"{c.abs_change:+.6g}"
    if c.rel_change is not None:
        text += f" ({c.rel_change:+.1%})"
    return text


def format_changes(found: list[Change]) -> str:
    """An aligned plain-text table of *found*: notebook, key, old, new, change."""
    header = ("notebook", "key", "old", "new", "change")
    rows = [(c.notebook, c.key, _show(c.old), _show(c.new), _show_change(c)) for c in found]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- failures

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d ()./-]{5,}\d")
_QUOTED = re.compile(r"""(?<!\w)(['"])(.*?)\1(?!\w)""")
#: quoted text kept in a failure message: lower-case names of columns, keys, files and datasets,
#: and constants of the code (``'BREAKDOWN_LABELS'``)
_NAME_LIKE = re.compile(r"[a-z_][a-z0-9_.\-/]{0,59}|[A-Z]+(?:_[A-Z]+)+")
_MAX_MESSAGE = 240


def _drop_examples(text: str) -> str:
    """``(e.g. <values>)`` -> ``(e.g. …)``: the package's messages show offending data values there."""
    out, i = [], 0
    while True:
        j = text.find("(e.g.", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j] + "(e.g. …)")
        depth, k = 0, j
        while k < len(text):
            ch = text[k]
            if ch in "'\"":  # a quoted value may hold parentheses: skip to its end
                end = text.find(ch, k + 1)
                k = len(text) if end < 0 else end + 1
                continue
            depth += {"(": 1, ")": -1}.get(ch, 0)
            k += 1
            if depth == 0:
                break
        i = k


def safe_message(error: BaseException | str) -> str:
    """A one-line description of *error* fit for a published page: its class and the first line of its
    message, without data values — e-mail addresses, phone numbers and long digit runs, the values
    the package quotes as examples (``e.g. …``) and quoted text other than lower-case names and code
    constants (a column like ``'order_ts'`` stays, ``'Ayşe'`` or ``'C0000404'`` does not) are replaced by ``…``; at most
    240 characters. A value the message shows unquoted (``ValueError: Ayşe``) cannot be told from
    prose and stays: pass the package's own errors, whose messages name files and columns."""
    if isinstance(error, BaseException):
        first = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
        text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    else:
        text = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
    root = str(paths.project_root())
    text = text.replace(root + os.sep, "").replace(root, ".")
    text = text.replace(str(Path.home()), "~")
    text = _drop_examples(text)
    text = _EMAIL.sub("…", text)
    text = _QUOTED.sub(lambda m: m.group(0) if _NAME_LIKE.fullmatch(m.group(2)) else f"{m.group(1)}…{m.group(1)}",
                       text)
    text = _PHONE.sub(lambda m: m.group(0) if _is_date_or_small(m.group(0)) else "…", text)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _is_date_or_small(s: str) -> bool:
    """Dates, times and numbers of up to six digits are not personal (``2026-12-03``, ``1,234``)."""
    digits = re.sub(r"\D", "", s)
    if len(digits) <= 6:
        return True
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?|\d{2}[./]\d{2}[./]\d{4}", s))


def _failure_file(dataset: str) -> Path:
    return paths.reports_dir(dataset) / "status" / FAILURE_FILE


def record_failure(dataset: str, notebook: str, log_path: str | Path, error_message: BaseException | str) -> Path:
    """Write ``reports/<dataset>/status/last_failure.json``: ``failed_utc``, ``notebook``, ``log`` (the
    log's path relative to ``reports/<dataset>``, as a page there links it) and ``message``
    (:func:`safe_message` of *error_message*). Returns the file."""
    reports = paths.reports_dir(dataset)
    log = Path(log_path)
    if not log.is_absolute():
        log = paths.project_root() / log
    record = {
        "dataset": dataset,
        "notebook": notebook,
        "failed_utc": _utc_now().strftime(_ISO),
        "log": Path(os.path.relpath(log, reports)).as_posix(),
        "message": safe_message(error_message),
    }
    out = _failure_file(dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


def clear_failure(dataset: str) -> bool:
    """Remove the failure record (a run has succeeded since); return whether there was one."""
    out = _failure_file(dataset)
    existed = out.exists()
    out.unlink(missing_ok=True)
    return existed


def last_failure(dataset: str) -> dict[str, Any] | None:
    """The failure record of *dataset*, or ``None`` when the last run did not fail."""
    try:
        return json.loads(_failure_file(dataset).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- command line


def _list(dataset: str) -> int:
    ids = runs(dataset)
    if not ids:
        print(f"no runs recorded for dataset {dataset!r} (`make reports DATASET={dataset}` records one)")
        return 0
    rows = []
    for i, run_id in enumerate(ids):
        info = run_info(dataset, run_id)
        nbs = info.get("notebooks") or {}
        rows.append((str(i - len(ids)), run_id, str(info.get("finished_utc") or "–"),
                     str(info.get("git_commit") or "–"), f"{len(nbs)} notebook(s)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _compare(dataset: str, refs: list[str]) -> int:
    ids = runs(dataset)
    if len(ids) < 2:
        raise CrmAnalyticsError(f"dataset {dataset!r} has {len(ids)} recorded run(s); compare needs two "
                                f"(each `make reports DATASET={dataset}` that changes a number records one)")
    a = resolve_run(dataset, refs[0]) if refs else ids[-2]
    b = resolve_run(dataset, refs[1]) if len(refs) > 1 else ids[-1]
    found = changes(load(dataset, a), load(dataset, b))
    if not found:
        print(f"{dataset}: no differences between run {a} and run {b}")
        return 0
    print(f"{dataset}: {len(found)} difference(s) from run {a} to run {b}")
    print(format_changes(found))
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crm_analytics.reports.history", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="the recorded runs of DATASET, oldest first")
    p.add_argument("dataset")
    p = sub.add_parser("compare", help="what changed between two runs (default: the previous and the latest)")
    p.add_argument("dataset")
    p.add_argument("runs", nargs="*", metavar="RUN", help="a run id or index (-1 latest, -2 the one before)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _list(args.dataset)
        if len(args.runs) > 2:
            raise CrmAnalyticsError("compare takes at most two runs: RUN_A RUN_B")
        return _compare(args.dataset, args.runs)
    except CrmAnalyticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

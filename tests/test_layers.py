"""The package is grouped by stage, and imports point only down the stages.

    shared modules (errors, paths, locks, i18n, compute)  <  ingest  <  features  <  models  <  reports  <  pipeline

A module may import its own stage and the stages below it (lazy imports inside functions count too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "crm_analytics"
STAGES = ["", "ingest", "features", "models", "reports", "pipeline"]


def _stage_of_file(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem in STAGES[1:] else ""


def _stage_of_module(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "crm_analytics"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "crm_analytics":
                found += [(node.lineno, f"crm_analytics.{a.name}") for a in node.names]
            elif node.module.split(".")[0] == "crm_analytics":
                found.append((node.lineno, node.module))
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_imports_point_down_the_stages(path):
    own = STAGES.index(_stage_of_file(path))
    upward = [f"line {line}: {name} ({_stage_of_module(name)})" for line, name in _imports(path)
              if STAGES.index(_stage_of_module(name)) > own]
    assert not upward, f"{path.relative_to(PACKAGE)} (stage {STAGES[own] or 'shared'}) imports a later stage: {upward}"


def test_every_module_sits_in_a_stage_or_is_shared():
    shared = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert shared == ["__init__.py", "compute.py", "errors.py", "i18n.py", "locks.py", "paths.py"], shared
    stages = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    assert stages == sorted(STAGES[1:]), stages

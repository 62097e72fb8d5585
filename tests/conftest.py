"""Shared fixtures: a temporary project root with the repo's notebooks and params."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from crm_analytics import paths

REPO = Path(__file__).resolve().parent.parent
EXTERNAL = paths.external_dir()


def shop_params(customer_columns: str, notebooks: str, extra: str = "") -> str:
    """params/myshop.yaml for a Shopify-style export in Turkish: orders with their own column
    names and status values, and a customers file mapped by *customer_columns*."""
    return f"""description: "A Shopify-style export in Turkish Excel csv"
source:
  kind: files
  currency: TRY
  tables:
    orders:
      path: exports/siparisler.csv
      columns: {{order_id: Sipariş No, customer_id: Müşteri, order_ts: Tarih, status: Durum, order_total: Tutar}}
      values: {{status: {{ödendi: completed, iade: returned, iptal: cancelled}}}}
    customers:
      path: exports/musteriler.csv
      columns: {{{customer_columns}}}
{extra}notebooks: [{notebooks}]
"""


def copy_project(root: Path) -> Path:
    """A working copy of the project at *root* for a real `make` run: Makefile, pyproject, params,
    notebooks and sources copied. It uses the repo's virtualenv (``make test`` sets it up once) and can
    never reinstall into it: its ``.venv`` is a folder of links with its own, fresh set-up stamp."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ["Makefile", "pyproject.toml"]:
        shutil.copy2(REPO / name, root / name)
    for name in ["params", "notebooks", "src"]:
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns(
            "*.FAILED.ipynb", ".ipynb_checkpoints", "__pycache__", "*.egg-info"))
    (root / ".venv").mkdir()
    for entry in (REPO / ".venv").iterdir():
        if entry.name != ".installed":
            (root / ".venv" / entry.name).symlink_to(entry)
    (root / ".venv" / ".installed").touch()
    return root


def external_file(rel: str) -> Path:
    """A file under ../shared/external, or skip the test with the reason."""
    p = EXTERNAL / rel
    if not p.exists():
        pytest.skip(f"{p} is absent (real public data lives beside the project in ../shared/external)")
    return p


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """An empty project root (params/ and notebooks/ copied) that paths.* resolve to."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "params", root / "params")
    shutil.copytree(REPO / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns("*.FAILED.ipynb", ".ipynb_checkpoints"))
    monkeypatch.setenv("CRM_ANALYTICS_ROOT", str(root))
    monkeypatch.setenv("CRM_ANALYTICS_SECRET", "test-secret")
    return root


@pytest.fixture(scope="session")
def ci_root(tmp_path_factory) -> Path:
    """A project root holding the generated `ci` world's raw data (built once per session)."""
    from crm_analytics.ingest.params import load_params
    from crm_analytics.ingest.sources import validate_source

    root = tmp_path_factory.mktemp("ci_project")
    shutil.copytree(REPO / "params", root / "params")
    shutil.copytree(REPO / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns("*.FAILED.ipynb", ".ipynb_checkpoints"))
    old = os.environ.get("CRM_ANALYTICS_ROOT")
    os.environ["CRM_ANALYTICS_ROOT"] = str(root)
    try:
        source = validate_source("ci", load_params("ci")["shared"]["source"], "params/ci.yaml")
        from crm_analytics.ingest.sources import build_raw

        build_raw("ci", source)
    finally:
        if old is None:
            os.environ.pop("CRM_ANALYTICS_ROOT")
        else:
            os.environ["CRM_ANALYTICS_ROOT"] = old
    return root


@pytest.fixture(scope="session")
def ci_clean(ci_root, tmp_path_factory) -> dict:
    """The `ci` world's clean tables, as notebook 01 makes them (collected in memory once per session;
    a fresh clone has no data/interim). Shared: tests must not change them in place."""
    from crm_analytics.ingest.collect import collect

    root = tmp_path_factory.mktemp("ci_clean") / "root"
    shutil.copytree(ci_root, root)
    old = {k: os.environ.get(k) for k in ("CRM_ANALYTICS_ROOT", "CRM_ANALYTICS_SECRET")}
    os.environ.update(CRM_ANALYTICS_ROOT=str(root), CRM_ANALYTICS_SECRET="t")
    try:
        return collect("ci", write=False).result.tables
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)

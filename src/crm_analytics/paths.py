"""The one place that knows where data, params, notebooks and reports live.

Everything is resolved from the project root, never from the current directory.
The root is the checkout this package was installed from (editable install), or
the directory named by the environment variable ``CRM_ANALYTICS_ROOT`` (tests use
it to work in a temporary copy).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "project_root",
    "raw_dir",
    "interim_dir",
    "processed_dir",
    "reports_dir",
    "metrics_dir",
    "params_path",
    "notebooks_dir",
    "external_dir",
]

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """Return the project root (``CRM_ANALYTICS_ROOT`` or the source checkout)."""
    env = os.environ.get("CRM_ANALYTICS_ROOT")
    if env:
        return Path(env).resolve()
    # src/crm_analytics/paths.py -> project root two levels above the package
    return _PACKAGE_DIR.parent.parent


def raw_dir(dataset: str) -> Path:
    """Immutable inputs of *dataset* (generated demo world or a shop's exports)."""
    return project_root() / "data" / "raw" / dataset


def interim_dir(dataset: str) -> Path:
    """Clean canonical tables of *dataset*, one parquet file per table."""
    return project_root() / "data" / "interim" / dataset


def processed_dir(dataset: str) -> Path:
    """Modelling tables of *dataset* (customer features, segments, CLV)."""
    return project_root() / "data" / "processed" / dataset


def build_dir(dataset: str) -> Path:
    """Build files of *dataset*: validated params, make rules, logs, locks."""
    return project_root() / "build" / dataset


def reports_dir(dataset: str) -> Path:
    """Published reports of *dataset*."""
    return project_root() / "reports" / dataset


def metrics_dir(dataset: str) -> Path:
    """Where notebooks write their headline numbers.

    While the pipeline runner executes a notebook it sets ``CRM_ANALYTICS_STAGING``
    so that a notebook that fails half-way leaves the last good metrics in place.
    """
    staging = os.environ.get("CRM_ANALYTICS_STAGING")
    if staging:
        return Path(staging)
    return reports_dir(dataset) / "metrics"


def params_path(dataset: str) -> Path:
    """``params/<dataset>.yaml``, or the folder ``params/<dataset>/`` when that exists."""
    folder = project_root() / "params" / dataset
    if folder.is_dir():
        return folder
    return project_root() / "params" / f"{dataset}.yaml"


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def external_dir() -> Path:
    """Real public data beside the project (``../shared/external``), or ``CRM_ANALYTICS_EXTERNAL``."""
    env = os.environ.get("CRM_ANALYTICS_EXTERNAL")
    if env:
        return Path(env).resolve()
    # beside the source checkout, whatever CRM_ANALYTICS_ROOT says
    return (_PACKAGE_DIR.parent.parent.parent / "shared" / "external").resolve()

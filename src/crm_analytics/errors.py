"""The package's errors: one base class, specific subclasses.

A message says what went wrong, where (file, column, row) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CrmAnalyticsError",
    "ParamsError",
    "DataContractError",
    "SourceError",
    "ModelFitError",
]


class CrmAnalyticsError(ValueError):
    """Base class of every error this package raises on purpose."""


class ParamsError(CrmAnalyticsError):
    """A params file or a notebook parameter is wrong (unknown key, wrong type)."""


class DataContractError(CrmAnalyticsError):
    """A table does not meet the canonical data contract (missing column, no parseable value)."""


class SourceError(CrmAnalyticsError):
    """An input file cannot be read (missing, empty, truncated, undecodable)."""


class ModelFitError(CrmAnalyticsError):
    """A model did not converge or its inputs are unusable; the message says what to try."""

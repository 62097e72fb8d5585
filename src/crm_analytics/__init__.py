"""CRM Analytics: customer analytics for e-commerce shops."""

from crm_analytics.errors import (
    CrmAnalyticsError,
    DataContractError,
    ModelFitError,
    ParamsError,
    SourceError,
)

__version__ = "0.1.0"

__all__ = [
    "CrmAnalyticsError",
    "DataContractError",
    "ModelFitError",
    "ParamsError",
    "SourceError",
    "__version__",
]

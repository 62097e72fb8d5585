"""``python -m crm_analytics.pipeline``: see :mod:`crm_analytics.pipeline`."""

import sys

from crm_analytics.pipeline import main

sys.exit(main(sys.argv[1:]))

"""`python -m bench`: see bench/__init__.py and docs/PERFORMANCE.md."""

import sys

from bench.report import main

sys.exit(main())

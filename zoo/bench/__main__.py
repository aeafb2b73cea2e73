"""`python -m zoo.bench --suite NAME`."""

import sys

from zoo.bench.cli import main

sys.exit(main())

"""`python -m zoo.bench --suite NAME`."""

import os
import sys

# LAPACK (the QR in flossing) runs on OpenBLAS, whose own threads fight the suite's
# worker processes: one thread each was 5-9x faster on a 2-core machine. Set before
# numpy/jax load; an explicit setting by the user wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from zoo.bench.cli import main  # noqa: E402

sys.exit(main())

"""Test-session settings."""

import os

# As in `python -m zoo.bench`: single-threaded OpenBLAS (LAPACK QR in flossing) is much
# faster on a small shared machine; set before numpy and jax load.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

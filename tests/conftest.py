"""Test-session settings."""

import os
import shutil
import tempfile

# As in `python -m zoo.bench`: single-threaded OpenBLAS (LAPACK QR in flossing) is much
# faster on a small shared machine; set before numpy and jax load.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# The suites the tests run (in this process and in the subprocesses they start) keep their
# compiled programs in a folder of this session's own, never in the user's ~/.cache.
_CACHE = tempfile.mkdtemp(prefix="zoo-test-xla-")
os.environ["ZOO_COMPILATION_CACHE"] = _CACHE


def pytest_unconfigure(config):
    shutil.rmtree(_CACHE, ignore_errors=True)

"""Test-session settings."""

import os
import shutil
import tempfile

# As in `python -m zoo.bench`: single-threaded OpenBLAS (LAPACK QR in flossing) is much
# faster on a small shared machine; set before numpy and jax load.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# The suites the tests run (in this process and in the subprocesses they start) keep their
# compiled programs in a folder of this session's own, never in the user's ~/.cache. Under
# pytest-xdist the controller makes the folder and its workers (started after this file is
# imported, with its environment) share it, so a program one worker compiled the other loads.
_SHARED = "ZOO_TEST_SESSION_CACHE"
_OWNER = not (os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(_SHARED))
if _OWNER:
    os.environ[_SHARED] = tempfile.mkdtemp(prefix="zoo-test-xla-")
os.environ["ZOO_COMPILATION_CACHE"] = os.environ[_SHARED]

# The tests' own programs go there too (as the CLI's do), so a fixture or shape that both
# workers need is compiled once.
from zoo.bench.worker import use_compilation_cache  # noqa: E402  (after the environment is set)

use_compilation_cache(os.environ[_SHARED])


def pytest_unconfigure(config):
    if _OWNER:
        shutil.rmtree(os.environ[_SHARED], ignore_errors=True)

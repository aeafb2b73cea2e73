"""Crash injection for the reliability tests, loaded with `--plugin zoo_test_faults` (tests/data on PYTHONPATH).

`ZOO_TEST_CRASH_AT="checkpoint:3"` kills the process in the middle of its 3rd checkpoint
save, `"row:2"` in the middle of its 2nd runs.csv append (half the line written); several
points may be given, comma-separated. The death is a SIGKILL, as from the OOM killer or a
power cut; in a `--workers` process it takes the whole suite down with it. The tests use
this to check that no moment of a crash loses a finished result or reports one twice.

It wraps the two writes of the harness (`RunCheckpoints._write`, `record._write_durably`);
nothing in the library knows about it.
"""

import collections
import multiprocessing
import os
import signal
import threading
import time

from zoo.bench import record
from zoo.bench.checkpoint import RunCheckpoints

CRASH_ENV = "ZOO_TEST_CRASH_AT"
_counts: collections.Counter = collections.Counter()


def crash_point(kind: str) -> bool:
    """True when this is the moment ZOO_TEST_CRASH_AT asks this process to die at."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return False
    _counts[kind] += 1
    for item in spec.split(","):
        name, _, n = item.strip().partition(":")
        if name == kind and n.strip().isdigit() and int(n) == _counts[kind]:
            return True
    return False


def die_now() -> None:
    """SIGKILL this process, and the suite's main process if this is a worker."""
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        try:
            os.kill(parent.pid, signal.SIGKILL)
        except OSError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # the signal is on its way


_write_checkpoint = RunCheckpoints._write
_write_row = record._write_durably


def _checkpoint(self, step, args):
    if not crash_point("checkpoint"):
        return _write_checkpoint(self, step, args)
    # Start the save and die once its temporary folder holds some files.
    worker = threading.Thread(target=_write_checkpoint, args=(self, step, args), daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while worker.is_alive() and time.monotonic() < deadline:
        for tmp in self.run_dir.glob("*.orbax-checkpoint-tmp*"):
            if any(p.is_file() for p in tmp.rglob("*")):
                die_now()
        time.sleep(0.001)
    die_now()  # the save finished first: die right after it, before anything else happens


def _row(f, data):
    if crash_point("row"):  # die with half the line written
        _write_row(f, data[: len(data) // 2])
        die_now()
    return _write_row(f, data)


RunCheckpoints._write = _checkpoint
record._write_durably = _row

"""A suite's output folder: checked before anything runs, locked while a suite writes to it."""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

from zoo.bench.errors import ConfigError

RUNS_ROOT = Path("runs")  # a user's runs go to runs/SUITE/ (git-ignored); leaderboard/ is the reference


def default_out(suite_name: str) -> Path:
    """Where a suite writes when no --out is given."""
    return RUNS_ROOT / suite_name


def check_out_dir(out: Path) -> Path:
    """Make `out` (and its parents) and check a file can be written in it; a ConfigError otherwise.

    Catches an existing file in the way, a read-only file system, a parent that cannot be
    made and a pseudo file system such as /proc, each as one line naming the folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder; give a folder to write the results in")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"--out {out}: cannot write there ({why}); give a folder you can write to") from None
    return out


class OutputLockedError(RuntimeError):
    """Another suite process is writing to the same output folder."""


class OutputLock:
    """An exclusive lock on an output folder, held for the life of a suite process."""

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = self.path.read_text().strip() or "another process"
            raise OutputLockedError(
                f"{self.path.parent} is in use by {owner}; wait for it or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


# Committed reference results, one folder per shipped suite (in a checkout; not installed).
REFERENCE_ROOT = Path(__file__).resolve().parents[2] / "leaderboard"


def reference_folder(suite_name: str) -> Path | None:
    """leaderboard/SUITE/ when it holds a committed reference runs.csv, else None."""
    folder = REFERENCE_ROOT / suite_name
    return folder if (folder / "runs.csv").is_file() else None

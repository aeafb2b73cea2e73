"""runs.csv: one row per finished run, appended durably, read back tolerantly."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import math
import os
import warnings
from pathlib import Path
from typing import Any

from zoo.bench.suite import RunSpec
from zoo.bench.train import RunResult

COLUMNS = [
    "run_id", "suite", "arch", "task", "horizon", "flossing", "seed", "hidden_size", "lr",
    "max_steps", "status", "metric_name", "metric", "higher_is_better", "success",
    "steps_to_success", "steps_trained", "wall_time_s", "lambda1_init", "spread_init",
    "lambda1_before", "spread_before", "lambda1_after", "spread_after",
    "grad_norm_before", "grad_norm_after", "note",
]


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


def make_row(spec: RunSpec, result: RunResult, metric_name: str, higher_is_better: bool) -> dict[str, Any]:
    """The runs.csv row of a finished run."""
    row = {
        "run_id": spec.run_id, "suite": spec.suite, "arch": spec.arch, "task": spec.task,
        "horizon": spec.horizon, "flossing": spec.flossing, "seed": spec.seed,
        "hidden_size": spec.train.hidden_size, "lr": spec.train.lr, "max_steps": spec.train.steps,
        "metric_name": metric_name, "higher_is_better": int(higher_is_better),
    }
    for field in dataclasses.fields(result):
        value = getattr(result, field.name)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float) and math.isnan(value):
            value = ""
        row[field.name] = "" if value is None else value
    return row


def _format(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.DictWriter(buffer, COLUMNS, lineterminator="\n").writerow(
        {c: (f"{v:.6g}" if isinstance(v, float) else v) for c, v in row.items()}
    )
    return buffer.getvalue()


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row and fsync it, so a finished run survives any later crash."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8") as f:
        if new:
            f.write(",".join(COLUMNS) + "\n")
        f.write(_format(row))
        f.flush()
        os.fsync(f.fileno())


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """Rows by run_id. A damaged line (a write cut off by a crash) is dropped with a warning
    and the file is rewritten without it, so that run is simply done again."""
    if not path.exists():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    rows: dict[str, dict[str, str]] = {}
    damaged = 0
    header_ok = bool(lines) and lines[0].strip() == ",".join(COLUMNS)
    if lines and not header_ok:
        warnings.warn(f"{path}: unexpected header; rebuilding the file from readable rows", stacklevel=2)
    for i, line in enumerate(lines[1:] if header_ok else lines, start=2 if header_ok else 1):
        if not line.endswith("\n"):
            damaged += 1  # cut off mid-write
            continue
        try:
            values = next(csv.reader([line]))
        except (csv.Error, StopIteration):
            damaged += 1
            continue
        if len(values) != len(COLUMNS) or values[0] == "run_id":
            damaged += int(values != COLUMNS)
            continue
        row = dict(zip(COLUMNS, values, strict=True))
        if not row["run_id"] or row["status"] not in {"solved", "unsolved", "diverged", "skipped"}:
            damaged += 1
            continue
        rows[row["run_id"]] = row  # a duplicate keeps the last, identical by determinism
    if damaged or not header_ok or len(rows) != len(lines) - 1:
        if damaged:
            warnings.warn(f"{path}: dropped {damaged} damaged line(s); those runs will be redone", stacklevel=2)
        _rewrite(path, rows.values())
    return rows


def _rewrite(path: Path, rows) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(",".join(COLUMNS) + "\n")
        for row in rows:
            f.write(_format(row))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

"""runs.csv: one row per finished run, appended durably, read back tolerantly."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from zoo.bench.checkpoint import crash_point, die_now
from zoo.bench.suite import RunSpec
from zoo.bench.train import RunResult

COLUMNS = [
    "run_id", "suite", "arch", "task", "horizon", "flossing", "seed", "hidden_size", "lr",
    "max_steps", "status", "metric_name", "metric", "higher_is_better", "success",
    "steps_to_success", "steps_trained", "wall_time_s", "lambda1_init", "spread_init",
    "lambda1_before", "spread_before", "lambda1_after", "spread_after",
    "grad_norm_before", "grad_norm_after", "note",
]


STATUSES = ("solved", "unsolved", "diverged", "skipped")


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
    line = _format(row)
    with open(path, "a+b") as f:
        if new:
            f.write((",".join(COLUMNS) + "\n").encode())
        else:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut off by a crash: keep it apart from this one
                f.write(b"\n")
        data = line.encode("utf-8")
        if crash_point("row"):  # test-only: die with half the line written
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            die_now()
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    """Rows by run_id, read tolerantly.

    A damaged line (a write cut off by a crash, garbage) is dropped with a warning naming
    the run where it can be told, a duplicated run is kept once, and rows written under an
    older set of columns are carried over by column name. If anything had to be dropped,
    the file is rewritten with the good rows only (the original is kept next to it as
    runs.csv.damaged), so the dropped runs are simply done again.
    """
    if not path.exists():
        return {}
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    if not lines:
        return {}
    header = _parse_line(lines[0])
    if header == COLUMNS:
        columns, body, start = COLUMNS, lines[1:], 2
    elif header and "run_id" in header and "status" in header:
        columns, body, start = header, lines[1:], 2  # an older or newer schema: match by name
    else:
        warnings.warn(f"{path}: unexpected header; rebuilding the file from readable rows", stacklevel=2)
        columns, body, start = COLUMNS, lines, 1
    rows: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for number, line in enumerate(body, start=start):
        values = _parse_line(line) if line.endswith("\n") else None
        row = dict(zip(columns, values, strict=True)) if values and len(values) == len(columns) else None
        if row is None or not _valid(row):
            if line.strip() and _parse_line(line) != COLUMNS:
                first = line.split(",", 1)[0].strip()
                what = "cut off" if not line.endswith("\n") else "damaged"
                who = f" (run {first})" if _looks_like_run_id(first) else ""
                problems.append(f"line {number}{who} {what}")
            continue
        row = {c: row.get(c, "") for c in COLUMNS}
        if row["run_id"] in rows:
            problems.append(f"run {row['run_id']} recorded twice, kept once")
        rows[row["run_id"]] = row  # a duplicate keeps the last, identical by determinism
    changed = columns != COLUMNS or len(rows) != len(body) or problems
    if problems:
        backup = path.with_name(path.name + ".damaged")
        shutil.copyfile(path, backup)
        warnings.warn(
            f"{path}: {'; '.join(problems)}; runs without a good row will be redone "
            f"(original kept as {backup.name})",
            stacklevel=2,
        )
    if changed:
        _rewrite(path, rows.values())
    return rows


def drop_rows(path: Path, run_ids) -> dict[str, dict[str, str]]:
    """Rewrite runs.csv without the rows of `run_ids`; return the rows left, by run_id."""
    drop = set(run_ids)
    rows = {i: row for i, row in read_rows(path).items() if i not in drop}
    _rewrite(path, rows.values())
    return rows


def _parse_line(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


def _looks_like_run_id(text: str) -> bool:
    return bool(text) and len(text) < 200 and text.count("-") >= 5 and text.isprintable() and '"' not in text


def _valid(row: dict[str, str]) -> bool:
    """A row a finished run could have written (not a line garbled into the right shape)."""
    if not _looks_like_run_id(row.get("run_id", "")) or row.get("status") not in STATUSES:
        return False
    for column in ("seed", "steps_trained"):
        if column in row and not row[column].isdigit():
            return False
    return True


def _rewrite(path: Path, rows) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(",".join(COLUMNS) + "\n")
        for row in rows:
            f.write(_format(row))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

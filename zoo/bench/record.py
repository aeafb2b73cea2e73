"""The run record: one row of runs.csv per finished run, and the one reader and writer of it.

Every fact about a run's row lives here: the result type, the columns (in order), the
statuses and the flossing modes. `append_row` writes a row durably; `read_rows` reads the
file back for the harness (repairing damage), `read_runs` as a typed DataFrame for the
leaderboard and the reports. Nothing else in the bench opens runs.csv.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

from zoo.bench.errors import DiskFullError, is_disk_full
from zoo.flossing import FLOSSING_MODES  # the one list: "none", "pre", "pre+during"

__all__ = [
    "COLUMNS", "DIAGNOSTIC_COLUMNS", "FLOSSING_MODES", "NUMERIC_COLUMNS", "STATUSES", "RunResult",
    "append_row", "diagnostic_columns", "drop_rows", "make_row", "read_rows", "read_runs", "valid_row",
]  # fmt: skip

STATUSES = ("solved", "unsolved", "diverged", "skipped")  # skipped: data set unavailable, never trained

# The Lyapunov diagnostics of a run (zoo.flossing.lyapunov_diagnostics), as columns
# `<name>_<when>`: name -> the diagnostics' key. `when`: "init" (as built), "before" (when
# training starts, after any pre-flossing), "after" (at the end), "fixed" (at the training
# step TrainSettings.fixed_diag_step, the same for every run of the suite; `diag_step`).
DIAGNOSTICS = {"lambda1": "lambda_1", "lambdak": "lambda_k", "spread": "lambda_spread",
               "grad_decay": "grad_decay_rate"}
DIAGNOSTIC_WHEN = ("init", "before", "after", "fixed")


def diagnostic_columns(when: str, diagnostics: dict) -> dict[str, float]:
    """The columns `<name>_<when>` of one `lyapunov_diagnostics` result (non-finite -> NaN)."""
    if when not in DIAGNOSTIC_WHEN:
        raise ValueError(f"when must be one of {', '.join(DIAGNOSTIC_WHEN)}, got {when!r}")
    out = {}
    for name, key in DIAGNOSTICS.items():
        value = float(diagnostics[key])
        out[f"{name}_{when}"] = value if math.isfinite(value) else math.nan
    return out


@dataclasses.dataclass
class RunResult:
    """What one finished run reports (the run's half of its runs.csv row)."""

    status: str  # one of STATUSES
    metric: float
    success: bool
    steps_to_success: int | None
    steps_trained: int
    wall_time_s: float
    lambda1_init: float = math.nan
    spread_init: float = math.nan
    lambda1_before: float = math.nan
    spread_before: float = math.nan
    lambda1_after: float = math.nan
    spread_after: float = math.nan
    grad_norm_before: float = math.nan
    grad_norm_after: float = math.nan
    note: str = ""
    val_metric: float = math.nan  # the validation split's metric of the final parameters
    n_params: int | None = None  # zoo.architectures.stack.count_params of the model
    # (step, mean training loss since the previous evaluation, validation metric) at every
    # evaluation: the run's rows of curves.csv, not a runs.csv column.
    curve: list = dataclasses.field(default_factory=list, metadata={"column": False})
    # The diagnostics added by issue 16 (columns after the recipe's, so older files keep their
    # order): lambdak_* and grad_decay_* (DIAGNOSTICS) at every `when` but "fixed"'s, and at
    # `diag_step` all four.
    diagnostics: dict = dataclasses.field(default_factory=dict, metadata={"column": False})
    diag_step: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.diagnostics) - set(DIAGNOSTIC_COLUMNS)
        if unknown:
            raise ValueError(f"RunResult.diagnostics: unknown columns {sorted(unknown)}")

    @classmethod
    def not_trained(cls, status: str, note: str, *, steps_trained: int = 0, wall_time_s: float = 0.0) -> RunResult:
        """A run that ended without a metric (skipped, or diverged by an exception)."""
        return cls(status=status, metric=math.nan, success=False, steps_to_success=None,
                   steps_trained=steps_trained, wall_time_s=wall_time_s, note=note)


# The spec's half of the row (see make_row), then the result's fields in their order.
SPEC_COLUMNS = ["run_id", "suite", "arch", "task", "horizon", "flossing", "seed", "hidden_size", "lr",
                "max_steps"]
# Diagnostic columns that RunResult carries as fields since before issue 16.
_DIAG_FIELDS = [f"{name}_{when}" for name in ("lambda1", "spread") for when in ("init", "before", "after")]
DIAGNOSTIC_COLUMNS = [f"{name}_{when}" for when in DIAGNOSTIC_WHEN for name in DIAGNOSTICS
                      if f"{name}_{when}" not in _DIAG_FIELDS]
_RESULT = [f.name for f in dataclasses.fields(RunResult) if f.metadata.get("column", True) and f.name != "diag_step"]
# The protocol's recipe (issue 15), after the columns older files have, so those keep their order;
# then issue 16's: the schedule, the step of the fixed diagnostics and the diagnostics.
RECIPE_COLUMNS = ["clip", "depth", "block", "readout", "stop_at_success", "eval_split"]
LATER_COLUMNS = ["schedule", "diag_step", *DIAGNOSTIC_COLUMNS]
COLUMNS = [*SPEC_COLUMNS, "status", "metric_name", "metric", "higher_is_better", *_RESULT[2:], *RECIPE_COLUMNS,
           *LATER_COLUMNS]
TEXT_COLUMNS = ["run_id", "suite", "arch", "task", "flossing", "status", "metric_name", "note", "block", "readout",
                "eval_split", "schedule"]
NUMERIC_COLUMNS = [c for c in COLUMNS if c not in TEXT_COLUMNS]


def make_row(spec, result: RunResult, metric_name: str, higher_is_better: bool) -> dict[str, Any]:
    """The runs.csv row of a finished run (`spec` a RunSpec)."""
    row = {
        "run_id": spec.run_id, "suite": spec.suite, "arch": spec.arch, "task": spec.task,
        "horizon": spec.horizon, "flossing": spec.flossing, "seed": spec.seed,
        "hidden_size": spec.train.hidden_size, "lr": spec.train.lr, "max_steps": spec.train.steps,
        "metric_name": metric_name, "higher_is_better": int(higher_is_better),
        **{c: getattr(spec.train, c) for c in RECIPE_COLUMNS}, "schedule": spec.train.schedule,
        "diag_step": result.diag_step,
    }  # fmt: skip
    row["stop_at_success"] = int(row["stop_at_success"])
    for name in _RESULT:
        value = getattr(result, name)
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, float) and math.isnan(value):
            value = ""
        row[name] = "" if value is None else value
    for name in (*DIAGNOSTIC_COLUMNS, "diag_step"):
        value = result.diagnostics.get(name, math.nan) if name != "diag_step" else row[name]
        row[name] = "" if value is None or (isinstance(value, float) and math.isnan(value)) else value
    return row


# --------------------------------------------------------------------------- writing


def _format(row: dict[str, Any]) -> str:
    buffer = io.StringIO()
    csv.DictWriter(buffer, COLUMNS, lineterminator="\n").writerow(
        {c: (f"{v:.6g}" if isinstance(v, float) else v) for c, v in row.items()}
    )
    return buffer.getvalue()


def _write_all(f, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[f.write(view):]


def _write_durably(f, data: bytes) -> None:
    """Write a row's bytes to the unbuffered file `f` and fsync them (the crash tests wrap this)."""
    _write_all(f, data)
    os.fsync(f.fileno())


def append_row(path: Path, row: dict[str, Any]) -> None:
    """Append one row and fsync it, so a finished run survives any later crash.

    On a full disk the partial line is cut away again, so the rows before it stay readable,
    and `DiskFullError` says so.
    """
    line = _format(row).encode("utf-8")
    with open(path, "a+b", buffering=0) as f:  # unbuffered: nothing left to flush after a failed write
        size = f.seek(0, os.SEEK_END)
        try:
            if size == 0:
                _write_all(f, (",".join(COLUMNS) + "\n").encode())
            else:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line cut off by a crash: keep it apart from this one
                    line = b"\n" + line
            _write_durably(f, line)
        except OSError as e:
            if not is_disk_full(e):
                raise
            f.truncate(size)
            raise DiskFullError(e.errno, f"no space left on the device to record a run in {path}") from None


# --------------------------------------------------------------------------- reading for the harness


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
        if row is None or not valid_row(row):
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


def valid_row(row: dict[str, str]) -> bool:
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


# --------------------------------------------------------------------------- reading for the tables


def read_runs(path: Path):
    """runs.csv as a DataFrame with every column present and typed; missing or empty: no runs.

    Everything is read as text first and numbers are parsed afterwards, because pandas'
    default NA list would otherwise turn legitimate text (a flossing mode or an arch called
    "none"/"NA"/"null") into NaN. A line cut off by a crash (its status is not a status) is
    not a result, and a run recorded twice keeps its last row, as the harness does.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return normalise(pd.DataFrame(columns=COLUMNS))
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, on_bad_lines="skip")
    runs = normalise(raw)
    runs = runs[runs["status"].isin(STATUSES)]
    if runs["run_id"].ne("").all():
        runs = runs.drop_duplicates("run_id", keep="last")
    return runs.reset_index(drop=True)


def normalise(runs):
    """A copy with every column present and typed (numbers float, text str)."""
    df = runs.copy()
    for col in TEXT_COLUMNS:
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].map(lambda v: "" if _is_missing(v) else str(v).strip()).astype(object)
    for col in NUMERIC_COLUMNS:
        if col not in df.columns:
            df[col] = math.nan
        df[col] = _to_float(df[col])
    # `success` is the harness's verdict; fall back to the status where it is missing.
    df["success"] = df["success"].fillna((df["status"] == "solved").astype(float))
    return df


def _is_missing(v: object) -> bool:
    import pandas as pd

    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _to_float(col):
    """Parse numbers leniently: blanks -> NaN, 'True'/'False' -> 1/0 (a bool column round-trip)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col):
        return col.astype(float)
    text = col.map(lambda v: v.strip().lower() if isinstance(v, str) else v)
    text = text.replace({"true": 1.0, "false": 0.0, "": math.nan})
    return pd.to_numeric(text, errors="coerce").astype(float)

"""curves.csv: every run's learning curve, one row per evaluation, and its one reader and writer.

Long format, `run_id, step, train_loss, val_metric`: `train_loss` is the mean training loss
over the steps since the previous evaluation, `val_metric` the validation split's metric at
that step. A run's rows are appended (fsynced) just before its runs.csv row, so a crash in
between leaves rows of a run that is not finished; `keep_runs` drops those when the suite
starts again (the run is redone and writes them afresh), so every finished run has its
curve exactly once.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from zoo.bench.record import _write_all

CURVES_CSV = "curves.csv"
CURVE_COLUMNS = ["run_id", "step", "train_loss", "val_metric"]


def _lines(run_id: str, curve: Iterable[Sequence[float]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for step, loss, metric in curve:
        writer.writerow([run_id, int(step), *("" if not math.isfinite(v) else f"{v:.6g}" for v in (loss, metric))])
    return buffer.getvalue()


def append_curve(path: Path, run_id: str, curve: Sequence[Sequence[float]]) -> None:
    """Append one run's evaluations `(step, train_loss, val_metric)` and fsync them."""
    if not curve:
        return
    text = _lines(run_id, curve)
    with open(path, "a+b", buffering=0) as f:
        if f.seek(0, os.SEEK_END) == 0:
            text = ",".join(CURVE_COLUMNS) + "\n" + text
        else:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut off by a crash: keep it apart
                text = "\n" + text
        _write_all(f, text.encode("utf-8"))
        os.fsync(f.fileno())


def keep_runs(path: Path, run_ids: set[str]) -> None:
    """Rewrite curves.csv with only the rows of `run_ids` (the finished runs), if others are there."""
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = [r for r in csv.reader(f)][1:]
    good = [r for r in rows if len(r) == len(CURVE_COLUMNS) and r[0] in run_ids and r[1].isdigit()]
    if len(good) == len(rows):
        return
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CURVE_COLUMNS)
        writer.writerows(good)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_curves(path: Path):
    """curves.csv as a DataFrame (`step` int, losses and metrics float; blank: NaN)."""
    import pandas as pd

    if not Path(path).exists():
        return pd.DataFrame({c: pd.Series(dtype=object if c == "run_id" else float) for c in CURVE_COLUMNS})
    df = pd.read_csv(path, dtype={"run_id": str}, keep_default_na=False, na_values=[""], on_bad_lines="skip")
    return df.astype({"step": int, "train_loss": float, "val_metric": float})

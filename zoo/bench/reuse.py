"""Runs another suite folder already holds (`--reuse FOLDER`), copied instead of trained again.

A run id names everything that decides a run's result (`RunSpec.config_dict`; the suite's name
is not part of it), and the same seed and configuration give the same numbers, so a run found
under the same id in another folder is the run this suite would train: lru_ablation's linear,
complex-diagonal and LRU rungs, for one, are zucchet_orvieto's runs. Its row (under this suite's
name) and its learning curve are copied; skipped runs (data unavailable) are not. The source is
only read (`record.read_rows` would repair a damaged file in place), its rows checked with
`record.valid_row` as the harness checks its own.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from zoo.bench import curves, record
from zoo.bench.errors import ConfigError
from zoo.bench.tuning import TUNING_RUNS_CSV

__all__ = ["check_folders", "copy_runs"]

RUN_FILES = ("runs.csv", TUNING_RUNS_CSV)


def check_folders(folders: Iterable[Path]) -> list[Path]:
    """The folders as given, each holding a runs.csv or tuning_runs.csv; else a one-line error."""
    folders = [Path(f) for f in folders]
    for folder in folders:
        if not any((folder / name).is_file() for name in RUN_FILES):
            raise ConfigError(f"--reuse {folder}: no runs.csv or {TUNING_RUNS_CSV} there; "
                              "give a suite's output folder (runs/SUITE, leaderboard/SUITE)")
    return folders


def _finished_rows(folder: Path) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for name in RUN_FILES:
        path = folder / name
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                if None not in row and record.valid_row(row) and row["status"] != "skipped":
                    rows[row["run_id"]] = row
    return rows


def copy_runs(folders: Sequence[Path], run_ids: Iterable[str], suite: str, runs_csv: Path, out_dir: Path) -> int:
    """Append to `runs_csv` (and out_dir's curves.csv) the runs of `run_ids` that one of
    `folders` holds, the first folder first; return how many were copied."""
    wanted = set(run_ids)
    copied = 0
    for folder in folders:
        found = {i: row for i, row in _finished_rows(folder).items() if i in wanted}
        if not found:
            continue
        table = curves.read_curves(folder / curves.CURVES_CSV)
        table = table[table["run_id"].isin(found)]
        by_run = {i: list(g[["step", "train_loss", "val_metric"]].itertuples(index=False, name=None))
                  for i, g in table.groupby("run_id", sort=False)}
        for run_id, row in found.items():  # the curve first, as a trained run writes them
            curves.append_curve(out_dir / curves.CURVES_CSV, run_id, by_run.get(run_id, []))
            record.append_row(runs_csv, {c: row.get(c, "") for c in record.COLUMNS} | {"suite": suite})
        wanted -= set(found)
        copied += len(found)
    return copied

"""The determinism contract on runs.csv files: same seed and config, same numbers.

A run's row may differ between two executions (resumed or not, grouped or not, local or on
Ray) only in its wall time; every other column must be equal, text for text.
"""

from __future__ import annotations

import csv
from pathlib import Path

WALL_TIME = "wall_time_s"


def rows_by_run(path: Path) -> dict[str, dict[str, str]]:
    """The rows of a runs.csv by run_id; a run written twice fails."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by_id = {r["run_id"]: r for r in rows}
    assert len(by_id) == len(rows), f"a run is written twice in {path}"
    return by_id


def assert_same_runs(got: Path, want: Path) -> None:
    """`got` holds the runs of `want`, each with every column but the wall time equal."""
    got_rows, want_rows = rows_by_run(got), rows_by_run(want)
    assert sorted(got_rows) == sorted(want_rows)
    for run_id, row in got_rows.items():
        assert row.keys() == want_rows[run_id].keys()
        assert {k: v for k, v in row.items() if k != WALL_TIME} == \
               {k: v for k, v in want_rows[run_id].items() if k != WALL_TIME}, run_id

"""runs -> leaderboard: success rate against horizon per (arch, task, flossing), in pure pandas.

The question a suite answers is "how long a horizon can gradient descent bridge, per
architecture, with and without flossing?", so the board is one row per (arch, task, horizon,
flossing) plus the longest horizon still solved by at least half the seeds.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from zoo.bench.record import FLOSSING_MODES, normalise

GROUP_KEYS = ["arch", "task", "horizon", "flossing"]
# The first seven columns are a contract with users and outside checks; the rest may grow.
BOARD_COLUMNS = [
    "arch", "task", "horizon", "flossing", "n_runs", "successes", "success_rate",
    "diverged", "median_metric", "metric_name", "median_steps_to_success",
    "median_lambda1_before", "median_lambda1_after", "longest_horizon",
]  # fmt: skip
_INT_BOARD_COLUMNS = ["n_runs", "successes", "diverged"]

# A cell solved by at least this fraction of seeds counts as "bridged" for longest_horizon.
BRIDGED_RATE = 0.5


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Skipped rows (data unavailable) never trained, so they are not runs."""
    return runs[runs["status"] != "skipped"]


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, task, horizon, flossing): counts, success rate, medians; plus longest_horizon.

    ``median_metric`` is over all finished runs of the cell (the typical outcome), while
    ``median_steps_to_success`` only looks at successful runs (steps are undefined otherwise).
    ``longest_horizon`` is per (arch, task, flossing): the largest horizon with
    success_rate >= 0.5, NaN if none. It is the largest such horizon, not the end of an
    unbroken run from the shortest, so one unlucky short horizon does not hide a long success.
    """
    df = finished(normalise(runs))
    if df.empty:
        return _empty_board()
    df = df.assign(
        _diverged=(df["status"] == "diverged").astype(int),
        _steps_ok=df["steps_to_success"].where(df["success"] > 0),
    )
    grouped = df.groupby(GROUP_KEYS, dropna=False, sort=False)
    board = grouped.agg(
        n_runs=("run_id", "size"),
        successes=("success", "sum"),
        diverged=("_diverged", "sum"),
        median_metric=("metric", "median"),
        metric_name=("metric_name", _first_nonblank),
        median_steps_to_success=("_steps_ok", "median"),
        median_lambda1_before=("lambda1_before", "median"),
        median_lambda1_after=("lambda1_after", "median"),
    ).reset_index()
    board["success_rate"] = board["successes"] / board["n_runs"]
    board["longest_horizon"] = _longest_horizon(board)
    board[_INT_BOARD_COLUMNS] = board[_INT_BOARD_COLUMNS].astype(int)
    board = board.sort_values(["task", "arch", "flossing", "horizon"], kind="stable")
    return board[BOARD_COLUMNS].reset_index(drop=True)


def _first_nonblank(values: pd.Series) -> str:
    # A task has one metric; taking the first non-blank name keeps a partial row from blanking it.
    names = [v for v in values if v]
    return names[0] if names else ""


def _longest_horizon(board: pd.DataFrame) -> pd.Series:
    bridged = board["horizon"].where(board["success_rate"] >= BRIDGED_RATE)
    # transform("max") broadcasts the group's value onto every row; all-NaN groups give NaN.
    return bridged.groupby([board["arch"], board["task"], board["flossing"]]).transform("max")


def _empty_board() -> pd.DataFrame:
    board = pd.DataFrame({c: pd.Series(dtype=float) for c in BOARD_COLUMNS})
    for col in ["arch", "task", "flossing", "metric_name"]:
        board[col] = board[col].astype(object)
    board[_INT_BOARD_COLUMNS] = board[_INT_BOARD_COLUMNS].astype(int)
    return board


NOT_RUN = "not run"
NOT_BRIDGED = "none bridged"


def longest_table(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, arch), one column per flossing mode: the longest horizon bridged,
    `NOT_BRIDGED` when the cell ran but no horizon reached the rate, `NOT_RUN` when it did not run."""
    modes = order_flossing(board["flossing"])
    keys = board[["task", "arch", "flossing", "longest_horizon"]].drop_duplicates(["task", "arch", "flossing"])
    rows = []
    for task in sorted(set(keys["task"])):
        sub = keys[keys["task"] == task]
        for arch in order_archs(sub["arch"]):
            cell = sub[sub["arch"] == arch].set_index("flossing")["longest_horizon"]
            values = {f"flossing: {m}": (NOT_RUN if m not in cell.index else
                                         NOT_BRIDGED if np.isnan(cell[m]) else cell[m]) for m in modes}
            rows.append({"task": task, "arch": arch, **values})
    return pd.DataFrame(rows, columns=["task", "arch", *[f"flossing: {m}" for m in modes]])


# --------------------------------------------------------------------------- orders


def order_flossing(modes: Iterable[str]) -> list[str]:
    """The known flossing modes in their order (none, pre, pre+during), then the others by name."""
    modes = set(modes)
    known = [m for m in FLOSSING_MODES if m in modes]
    return known + sorted(modes - set(known))


def order_archs(archs: Iterable[str]) -> list[str]:
    """Architectures by name: the same order on every page, plugins included."""
    return sorted(set(archs))

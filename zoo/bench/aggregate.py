"""runs -> leaderboard: success rate against horizon per (arch, task, flossing), in pure pandas.

The question a suite answers is "how long a horizon can gradient descent bridge, per
architecture, with and without flossing?", so the board is one row per (arch, task, horizon,
flossing) plus the longest horizon still solved by at least half the seeds, the Wilson 95%
interval of its success rate, and the exact McNemar p-value of flossing against none on the
same seeds. `horizons` is horizons.csv: per (arch, task, flossing) the breaking horizon h50
with its interval, and the McNemar p-value pooled over horizons. The statistics are
zoo.bench.stats'.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from zoo.bench.record import FLOSSING_MODES, normalise
from zoo.bench.stats import (
    H50_COLUMNS, add_wilson_intervals, h50_table, mcnemar_table, success_counts,
)

GROUP_KEYS = ["arch", "task", "horizon", "flossing"]
# The first seven columns are a contract with users and outside checks; the rest may grow.
BOARD_COLUMNS = [
    "arch", "task", "horizon", "flossing", "n_runs", "successes", "success_rate",
    "diverged", "median_metric", "metric_name", "median_steps_to_success",
    "median_lambda1_before", "median_lambda1_after", "longest_horizon",
    "lr", "ci_low", "ci_high", "p_mcnemar",
]  # fmt: skip
# horizons.csv: stats.H50_COLUMNS, then the McNemar p-value of the mode against none pooled
# over the curve's horizons (empty for none itself).
HORIZON_COLUMNS = [*H50_COLUMNS, "p_mcnemar"]
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
        lr=("lr", _the_one),
    ).reset_index()
    board["success_rate"] = board["successes"] / board["n_runs"]
    board["longest_horizon"] = _longest_horizon(board)
    board = add_wilson_intervals(board)
    board = board.merge(_mcnemar(df, list(GROUP_KEYS)), on=GROUP_KEYS, how="left")
    board[_INT_BOARD_COLUMNS] = board[_INT_BOARD_COLUMNS].astype(int)
    board = board.sort_values(["task", "arch", "flossing", "horizon"], kind="stable")
    return board[BOARD_COLUMNS].reset_index(drop=True)


def _the_one(values: pd.Series) -> float:
    # The cell's learning rate (tuned or set); NaN if its runs differ (an edited suite).
    distinct = values.dropna().unique()
    return float(distinct[0]) if len(distinct) == 1 else np.nan


def _mcnemar(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`keys` + `p_mcnemar`: each flossing mode against none on the same seeds, per `keys` less flossing."""
    by = [k for k in keys if k != "flossing"]
    try:
        table = mcnemar_table(runs, by=by)
    except ValueError:  # a seed recorded twice under two configurations: no clean pairing
        return pd.DataFrame(columns=[*keys, "p_mcnemar"])
    table = table.rename(columns={"p_value": "p_mcnemar"})
    return table[table["n_pairs"] > 0][[*keys, "p_mcnemar"]]


def horizons(runs: pd.DataFrame, **h50_options) -> pd.DataFrame:
    """horizons.csv: per (arch, task, flossing), h50 and its interval (stats.h50_table) and
    the McNemar p-value against none pooled over horizons.

    Horizons <= 0 (mnist1d's "no blank steps") have no logarithm: the fit leaves them out.
    """
    df = finished(normalise(runs))
    df = df[df["horizon"] > 0]
    if df.empty:
        return pd.DataFrame(columns=HORIZON_COLUMNS)
    table = h50_table(success_counts(df), **h50_options)
    table = table.merge(_mcnemar(df, ["arch", "task", "flossing"]), on=["arch", "task", "flossing"], how="left")
    return table[HORIZON_COLUMNS]


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
NOT_ASKED = "\u2013"  # the suite ran no architecture in this flossing mode on this task


def longest_table(board: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, arch), one column per flossing mode: the longest horizon bridged,
    `NOT_BRIDGED` when the cell ran but no horizon reached the rate, `NOT_RUN` when it did not run
    while other architectures did, `NOT_ASKED` under a mode no architecture ran on the task."""
    modes = order_flossing(board["flossing"])
    keys = board[["task", "arch", "flossing", "longest_horizon"]].drop_duplicates(["task", "arch", "flossing"])
    rows = []
    for task in sorted(set(keys["task"])):
        sub = keys[keys["task"] == task]
        asked = set(sub["flossing"])
        for arch in order_archs(sub["arch"]):
            cell = sub[sub["arch"] == arch].set_index("flossing")["longest_horizon"]
            values = {f"flossing: {m}": (NOT_ASKED if m not in asked else NOT_RUN if m not in cell.index else
                                         NOT_BRIDGED if np.isnan(cell[m]) else cell[m]) for m in modes}
            rows.append({"task": task, "arch": arch, **values})
    return pd.DataFrame(rows, columns=["task", "arch", *[f"flossing: {m}" for m in modes]])


SCOREBOARD_COLUMNS = [*HORIZON_COLUMNS, "h_min", "h_max", "n_horizons", "ran"]


def scoreboard(board: pd.DataFrame, breaks: pd.DataFrame) -> pd.DataFrame:
    """The page's scoreboard: horizons.csv (`breaks`) on every (arch, task, flossing) of the board.

    Adds the curve's grid, `h_min`, `h_max` and `n_horizons` (its horizons > 0, the ones the
    fit sees), to tell "> h_max" (h50 = inf) and "< h_min" (h50 = 0) apart from a crossing; and
    `ran`, False for an (arch, task, flossing) without runs, of the board's archs x the (task,
    flossing) pairs that ran.
    A curve that ran without a row in `breaks` (no horizon > 0) has h50 NaN.
    """
    keys = ["arch", "task", "flossing"]
    positive = board[board["horizon"] > 0]
    grid = positive.groupby(keys)["horizon"].agg(h_min="min", h_max="max", n_horizons="nunique")
    ran = board[keys].drop_duplicates().assign(ran=True)
    # A mode that no architecture ran on a task (a suite flossing only its memory tasks) is no
    # cell at all; a mode that some ran and this architecture did not is a cell, "not run".
    pairs = board[["task", "flossing"]].drop_duplicates()
    full = pd.DataFrame({"arch": order_archs(board["arch"])}).merge(pairs, how="cross")
    table = full.merge(ran, on=keys, how="left").merge(breaks, on=keys, how="left")
    table = table.merge(grid.reset_index(), on=keys, how="left")
    table["ran"] = table["ran"].eq(True)  # NaN (no runs) is not True
    table["bracketed"] = table["bracketed"].eq(True)
    table["n_horizons"] = table["n_horizons"].fillna(0).astype(int)
    numbers = ["h50", "h50_low", "h50_high", "p_mcnemar", "h_min", "h_max"]
    table[numbers] = table[numbers].astype(float)
    return table[SCOREBOARD_COLUMNS]


def modes_by_task(table: pd.DataFrame) -> dict[str, list[str]]:
    """The scoreboard's columns: per task (by name), the flossing modes it shows, in their order."""
    return {task: order_flossing(table.loc[table["task"] == task, "flossing"]) for task in sorted(set(table["task"]))}


# --------------------------------------------------------------------------- orders


def order_flossing(modes: Iterable[str]) -> list[str]:
    """The known flossing modes in their order (none, pre, pre+during), then the others by name."""
    modes = set(modes)
    known = [m for m in FLOSSING_MODES if m in modes]
    return known + sorted(modes - set(known))


def order_archs(archs: Iterable[str]) -> list[str]:
    """Architectures by name: the same order on every page, plugins included."""
    return sorted(set(archs))

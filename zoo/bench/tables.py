"""The descriptive tables of docs/results.md: what a suite's runs show, per block kind
(`zoo.bench.report` lists the kinds and renders the blocks; the paired tests are in
`zoo.bench.claims`). Each table is a pure function of a `Source`, a committed run folder."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.bench.aggregate import (
    NOT_RUN,
    aggregate,
    horizons,
    modes_by_task,
    order_archs,
    order_flossing,
    scoreboard,
)
from zoo.bench.labels import h50_text, horizon_text
from zoo.bench.record import read_runs
from zoo.bench.stats import CURVE_KEYS, tuning_summary
from zoo.bench.tuning import TUNING_CSV, TUNING_RUNS_CSV

ROOT = Path(__file__).resolve().parents[2]


def fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.{digits}g}"


def horizon_label(task: str, h: float) -> str:
    # The page's convention (labels.horizon_text) in the docs' number format and ASCII.
    return horizon_text(task, h, number=fmt, nu="nu0")


def horizon_header(task: str) -> str:
    return "memory 1/(1-nu0) (steps)" if task == "teacher_student" else "horizon (steps)"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _arch_by_horizon(board: pd.DataFrame, task: str, cell: Callable[[pd.Series], str]) -> str:
    """One row per (arch, flossing mode), one column per horizon."""
    horizons = sorted(board["horizon"].unique())
    one_mode = board["flossing"].nunique() == 1
    rows = []
    for (arch, mode), group in board.groupby(["arch", "flossing"], sort=True):
        by_h = group.set_index("horizon")
        label = arch if one_mode else f"{arch} ({mode})"
        rows.append([label, *(cell(by_h.loc[h]) if h in by_h.index else "-" for h in horizons)])
    return markdown_table([f"arch \\ {horizon_header(task)}", *(horizon_label(task, h) for h in horizons)], rows)


def _horizon_by_mode(board: pd.DataFrame, task: str, cell: Callable[[pd.Series], str]) -> str:
    """One row per (arch, horizon), one column per flossing mode; a single mode reads better across."""
    modes = order_flossing(board["flossing"])
    if len(modes) == 1:
        return _arch_by_horizon(board, task, cell)
    rows = []
    for (arch, h), group in board.groupby(["arch", "horizon"], sort=True):
        by_mode = group.set_index("flossing")
        rows.append([arch, horizon_label(task, h),
                     *(cell(by_mode.loc[m]) if m in by_mode.index else "-" for m in modes)])
    return markdown_table(["arch", horizon_header(task), *modes], rows)


def _rate(r: pd.Series) -> str:
    return f"{r['success_rate']:.2f} ({int(r['successes'])}/{int(r['n_runs'])})"


def locate(suite: str, root: Path) -> Path:
    """A suite's folder: under `root` (``leaderboard/``), else a path from the repository root."""
    folder = root / suite
    if not (folder / "runs.csv").exists() and (ROOT / suite / "runs.csv").exists():
        folder = ROOT / suite  # a path from the repository root (reruns/...)
    return folder


class Source:
    """One leaderboard folder: its runs and their aggregate; `root` locates the folders a block
    compares it with."""

    def __init__(self, folder: Path, root: Path | None = None):
        self.folder, self.root = folder, root if root is not None else folder.parent
        path = folder / "runs.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: run the suite first")
        self.runs = read_runs(path)
        self.runs = self.runs[self.runs["status"] != "skipped"]
        self.board = aggregate(self.runs)

    @classmethod
    def named(cls, suite: str, root: Path) -> Source:
        """The suite folder `locate` finds under `root`, e.g. another track a block compares with."""
        return cls(locate(suite, root), root)

    def task(self, task: str) -> pd.DataFrame:
        board = self.board[self.board["task"] == task]
        if board.empty:
            raise ValueError(f"no runs of task {task!r}")
        return board


def summary(src: Source) -> str:
    runs = src.runs
    counts = runs["status"].value_counts()
    rows = [[
        str(len(runs)),
        *(str(int(counts.get(s, 0))) for s in ("solved", "unsolved", "diverged")),
        str(runs["seed"].nunique()),
        "/".join(fmt(s) for s in sorted(runs["max_steps"].unique())),
        f"{runs['wall_time_s'].sum() / 3600:.2f}",
    ]]
    return markdown_table(["runs", "solved", "unsolved", "diverged", "seeds", "max steps", "summed run time h"], rows)


def params(src: Source, *others: str) -> str:
    """Parameters per architecture in this suite and in each of `others` (tracks of the same
    tasks): the range over its runs, which differ by the task's input and output sizes."""
    sources = [src, *(Source.named(other, src.root) for other in others)]
    archs = order_archs(pd.concat([s.runs["arch"] for s in sources]))
    rows = []
    for arch in archs:
        row = [arch]
        for s in sources:
            n = s.runs.loc[s.runs["arch"] == arch, "n_params"].dropna()
            low, high = (fmt(n.min()), fmt(n.max())) if len(n) else ("-", "-")
            row.append(low if low == high else f"{low}-{high}")
        rows.append(row)
    return ("Trainable parameters per architecture, over the tasks' input and output sizes.\n\n"
            + markdown_table(["arch", *(s.folder.name for s in sources)], rows))


def success(src: Source, task: str) -> str:
    return _horizon_by_mode(src.task(task), task, _rate)


def longest(src: Source, task: str) -> str:
    board = src.task(task)
    modes = order_flossing(board["flossing"])
    rows = []
    for arch, cell in board.groupby("arch", sort=True):
        first = cell.groupby("flossing")["longest_horizon"].first()
        rows.append([arch, *(horizon_label(task, first[m]) if m in first and not math.isnan(first[m]) else "none"
                             for m in modes)])
    return markdown_table(["arch", *modes], rows)


def steps(src: Source, task: str) -> str:
    return _horizon_by_mode(src.task(task), task, lambda r: fmt(r["median_steps_to_success"]))


def metric(src: Source, task: str) -> str:
    board = src.task(task)
    name = board["metric_name"].iloc[0]
    return f"Median {name}.\n\n" + _arch_by_horizon(board, task, lambda r: fmt(r["median_metric"]))


LYAPUNOV_COLUMNS = {
    "lambda1_init": "lambda_1 at init",
    "lambda1_before": "lambda_1 at start of training",
    "lambda1_after": "lambda_1 after training",
    "grad_norm_before": "norm of dL/dh0 at start",
    "grad_norm_after": "norm of dL/dh0 after training",
}


def lyapunov(src: Source) -> str:
    runs = src.runs
    rows = []
    for (arch, task, mode), cell in runs.groupby(["arch", "task", "flossing"], sort=True):
        rows.append([arch, task, mode, str(len(cell)), *(fmt(cell[c].median()) for c in LYAPUNOV_COLUMNS)])
    return "Medians over runs (natural log per step for lambda_1).\n\n" + markdown_table(
        ["arch", "task", "flossing", "runs", *LYAPUNOV_COLUMNS.values()], rows
    )


def h50(src: Source, *tasks: str) -> str:
    table = scoreboard(src.board, horizons(src.runs))
    columns = modes_by_task(table)
    columns = {t: columns.get(t, []) for t in tasks} if tasks else columns
    several = any(len(modes) > 1 for modes in columns.values())
    by_key = table.set_index(["arch", "task", "flossing"])
    header = ["arch", *(f"{t} ({m})" if several else t for t, modes in columns.items() for m in modes)]
    rows = []
    for arch in order_archs(table["arch"]):
        row = [arch]
        for task, modes in columns.items():
            for mode in modes:
                r = by_key.loc[(arch, task, mode)] if (arch, task, mode) in by_key.index else None
                if r is None or not r["ran"]:
                    row.append(NOT_RUN)
                    continue
                value, interval = h50_text(r["h50"], r["h50_low"], r["h50_high"], r["bracketed"],
                                           r["h_min"], r["h_max"])
                row.append(f"{value} [{interval}]" if interval else value)
        rows.append(row)
    return ("h50 in steps (the horizon's unit), bootstrap 95% interval in brackets; \"> H\": every horizon "
            "up to H bridged; \"< H\": none was; \"*\": a crossing the grid does not bracket; \"no fit\": one "
            "horizon or no fall.\n\n" + markdown_table(header, rows).replace("\u2013", "-"))


def tuning(src: Source) -> str:
    """The learning rate chosen per (arch, task, flossing) (tuning.csv), what its tuning runs
    showed on the validation split (tuning_runs.csv, ranked by `stats.tuning_summary`'s
    criteria), and whether it sits at an edge of the grid, where the optimum may lie outside."""
    paths = [src.folder / TUNING_CSV, src.folder / TUNING_RUNS_CSV]
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: the suite has no [tuning] or it has not run")
    table = pd.read_csv(paths[0])
    chosen = table[table["chosen"].astype(bool)]
    evidence = tuning_summary(read_runs(paths[1])).set_index([*CURVE_KEYS, "lr"])
    grid = table.groupby(CURVE_KEYS)["lr"].agg(["min", "max"])
    rows, edges, unsolved = [], Counter(), 0
    for r in chosen.itertuples(index=False):
        seen = evidence.loc[(r.arch, r.task, r.flossing, r.lr)]
        low, high = grid.loc[(r.arch, r.task, r.flossing)]
        edge = "lowest" if r.lr == low else "highest" if r.lr == high else ""
        edges[edge] += 1
        unsolved += int(seen.n_solved == 0)
        steps = fmt(seen.median_steps) if np.isfinite(seen.median_steps) else "-"
        rows.append([r.arch, r.task, r.flossing, fmt(r.lr), f"{int(seen.n_solved)}/{int(seen.n_runs)}", steps,
                     fmt(seen.median_metric), edge])
    lrs = sorted(table["lr"].unique())
    return (f"The rate chosen from {', '.join(fmt(v) for v in lrs)} on the tuning seeds' validation split, ranked by "
            "success rate, then median steps to success, then median validation metric; the chosen rate's tuning "
            "runs: solved, median steps to success, median validation metric.\n\n"
            + markdown_table(["arch", "task", "flossing", "chosen lr", "solved", "median steps", "median val metric",
                              "grid edge"], rows)
            + f"\nThe chosen rate is at an edge of the grid in {edges['lowest'] + edges['highest']} of {len(rows)}: "
            f"the lowest ({fmt(lrs[0])}) in {edges['lowest']}, the highest ({fmt(lrs[-1])}) in {edges['highest']}. "
            f"No tuning run solved the task at the chosen rate in {unsolved} of {len(rows)}; there the median "
            "validation metric chose.\n")

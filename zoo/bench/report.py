"""The tables of docs/results.md, generated from committed leaderboard folders.

Every figure in docs/results.md sits in a block between ``<!-- table: KIND SUITE [TASK] -->``
and ``<!-- end table -->``, and is computed here from ``leaderboard/SUITE/runs.csv``; nothing
in a block is typed by hand. ``python -m zoo.bench.report docs/results.md`` rewrites the
blocks from the runs; ``--check`` exits 1 when the file and the runs disagree (a test does).

Kinds:

- ``summary SUITE``: runs per status, seeds, training steps, summed run time.
- ``success SUITE TASK``: success rate (successes / runs) per horizon and flossing mode,
  one row per (arch, horizon); one row per arch when the suite has one flossing mode.
- ``longest SUITE TASK``: the longest horizon solved by at least half the seeds, per arch
  and flossing mode (the leaderboard's ``longest_horizon``).
- ``steps SUITE TASK``: median training steps to success over the successful runs.
- ``metric SUITE TASK``: median final metric per arch (rows) and horizon (columns).
- ``lrgrid FOLDER TASK``: median final metric per architecture and learning rate of a
  learning-rate grid folder (``zucchet_orvieto/lr_grid``, made by the former
  ``scripts/lr_grid.py``; suites now tune with ``[tuning]``), the chosen rate in bold.
- ``trend SUITE TASK [ARCH_A ARCH_B]``: per arch and flossing mode, Kendall's tau between the
  horizon and the final metric (does it worsen as the horizon grows?), with Holm's adjustment;
  with two architectures, the same for the ratio of their metrics on the same seed (does the
  gap widen?).
- ``lyapunov SUITE``: medians of lambda_1 at initialisation, after pre-flossing (the start
  of training) and after training, and of the norm of d loss / d h0 before and after training.
- ``h50 SUITE [TASK ...]``: the scoreboard: h50 (the horizon where the success rate crosses
  0.5) with its bootstrap 95% interval, per arch (rows) and task x flossing mode (columns).
- ``paired SUITE``: each flossing mode against none on paired seeds, pooled over horizons per
  (arch, task): both success rates with their Wilson 95% intervals, the discordant pairs and
  the exact McNemar p-value with Holm's adjustment; then every pair pooled per mode.
- ``shift SUITE QUANTITY [TASK ...]``: each flossing mode against none on paired runs, per (arch,
  task): the median paired difference of a quantity (``steps`` to success where both solved,
  ``lambda1_start``/``lambda1_end`` as |lambda_1|, ``gradient_start`` as log10 of dL/dh0) with
  its distribution-free interval and the sign test, Holm-adjusted.
- ``versus SUITE TASK ARCH_A ARCH_B [MODE]``: two architectures on the same seeds, per horizon
  and pooled: discordant pairs, the exact McNemar p-value, the difference in success rate; a side
  ``ARCH:MODE`` takes that arch in another flossing mode (a schedule against its compute-matched
  control: ``rnn:pre+during rnn_pre1500:pre``).
- ``tracks SUITE OTHER [TASK ...]``: each architecture in SUITE against itself in OTHER (a track
  of the same tasks: parameter-matched, stacked), paired by task, horizon and seed (same data),
  pooled over horizons per (arch, task): both success rates, the discordant pairs, the exact
  McNemar p-value with Holm's adjustment over the table; flossing ``none`` only.
- ``tuning SUITE``: the learning rate chosen per (arch, task, flossing) from ``tuning.csv``.

SUITE is a folder under ``--leaderboards`` (default ``leaderboard/``; ``zucchet_orvieto/lr_grid``),
else a path from the repository root (``reruns/anchors``).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from zoo.bench.aggregate import NOT_RUN, aggregate, horizons, modes_by_task, order_archs, order_flossing, scoreboard
from zoo.bench.record import read_runs
from zoo.bench.render import h50_text, nu0
from zoo.bench.stats import (
    POOLED, discordance, holm_adjust, horizon_trend, mcnemar_p_value, mcnemar_table, median_shift, paired_difference,
    paired_outcomes,
    wilson_interval,
)
from zoo.bench.tuning import TUNING_CSV

BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- end table -->)", re.S)
ROOT = Path(__file__).resolve().parents[2]


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.{digits}g}"


def _horizon(task: str, h: float) -> str:
    # One convention everywhere: the horizon in steps; the teacher's eigenvalue floor beside it.
    return f"{_fmt(h)} (nu0 {nu0(h):.2f})" if task == "teacher_student" and h > 0 else _fmt(h)


def _horizon_name(task: str) -> str:
    return "memory 1/(1-nu0) (steps)" if task == "teacher_student" else "horizon (steps)"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
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
    return _markdown([f"arch \\ {_horizon_name(task)}", *(_horizon(task, h) for h in horizons)], rows)


def _horizon_by_mode(board: pd.DataFrame, task: str, cell: Callable[[pd.Series], str]) -> str:
    """One row per (arch, horizon), one column per flossing mode; a single mode reads better across."""
    modes = order_flossing(board["flossing"])
    if len(modes) == 1:
        return _arch_by_horizon(board, task, cell)
    rows = []
    for (arch, h), group in board.groupby(["arch", "horizon"], sort=True):
        by_mode = group.set_index("flossing")
        rows.append([arch, _horizon(task, h), *(cell(by_mode.loc[m]) if m in by_mode.index else "-" for m in modes)])
    return _markdown(["arch", _horizon_name(task), *modes], rows)


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
        "/".join(_fmt(s) for s in sorted(runs["max_steps"].unique())),
        f"{runs['wall_time_s'].sum() / 3600:.2f}",
    ]]
    return _markdown(["runs", "solved", "unsolved", "diverged", "seeds", "max steps", "summed run time h"], rows)


def success(src: Source, task: str) -> str:
    return _horizon_by_mode(src.task(task), task, _rate)


def longest(src: Source, task: str) -> str:
    board = src.task(task)
    modes = order_flossing(board["flossing"])
    rows = []
    for arch, cell in board.groupby("arch", sort=True):
        first = cell.groupby("flossing")["longest_horizon"].first()
        rows.append([arch, *(_horizon(task, first[m]) if m in first and not math.isnan(first[m]) else "none" for m in modes)])
    return _markdown(["arch", *modes], rows)


def steps(src: Source, task: str) -> str:
    return _horizon_by_mode(src.task(task), task, lambda r: _fmt(r["median_steps_to_success"]))


def metric(src: Source, task: str) -> str:
    board = src.task(task)
    name = board["metric_name"].iloc[0]
    return f"Median {name}.\n\n" + _arch_by_horizon(board, task, lambda r: _fmt(r["median_metric"]))


def trend(src: Source, task: str, arch_a: str | None = None, arch_b: str | None = None) -> str:
    """Per (arch, flossing mode), whether the final metric worsens with the horizon; with two
    architectures, whether the gap between them (A's metric over B's, paired by seed) widens."""
    runs = src.runs[src.runs["task"] == task]
    if runs.empty:
        raise ValueError(f"no runs of task {task!r} in {src.folder}")
    name, higher = runs["metric_name"].iloc[0], bool(runs["higher_is_better"].iloc[0])
    if arch_a is not None:
        return _gap_trend(runs, task, name, higher, arch_a, arch_b)
    lo, hi = runs["horizon"].min(), runs["horizon"].max()
    cells = [(arch, mode, cell, horizon_trend(cell["horizon"], cell["metric"], higher))
             for (arch, mode), cell in runs.groupby(["arch", "flossing"], sort=True)]
    # A metric that never changes ranks nothing: no test, and not one of the family Holm adjusts for.
    p_values = np.array([c[3][1] for c in cells])
    tested = np.isfinite(p_values)
    holm = np.full(len(cells), np.nan)
    holm[tested] = holm_adjust(p_values[tested])
    rows = [[arch, mode, str(len(cell)), _fmt(cell.loc[cell["horizon"] == lo, "metric"].median()),
             _fmt(cell.loc[cell["horizon"] == hi, "metric"].median()),
             *((f"{tau:+.2f}", f"{p:.3g}", f"{p_holm:.3g}") if np.isfinite(p) else ("-", "-", "-"))]
            for (arch, mode, cell, (tau, p)), p_holm in zip(cells, holm)]
    return (f"Whether the final {name} worsens with the horizon: Kendall's tau-b between horizon and {name} "
            f"({'lower' if higher else 'higher'} is worse; a diverged run counts as the worst), over every run; "
            f"p: two-sided; p Holm: adjusted for the table's {int(tested.sum())} tests (\"-\": a metric that "
            "never changes, nothing to test).\n\n"
            + _markdown(["arch", "flossing", "runs", f"median at {_horizon(task, lo)}", f"median at {_horizon(task, hi)}",
                         "tau", "p", "p Holm"], rows))


def _gap_trend(runs: pd.DataFrame, task: str, name: str, higher: bool, arch_a: str, arch_b: str | None) -> str:
    if arch_b is None:
        raise ValueError("trend with architectures takes two: trend SUITE TASK ARCH_A ARCH_B")
    runs = runs[runs["flossing"] == "none"]
    pairs = paired_outcomes(runs, "arch", arch_a, arch_b, ["horizon", "seed"], value="metric")
    if pairs.empty:
        raise ValueError(f"no 'none' runs of {arch_a} and {arch_b} share a horizon and seed on {task!r}")
    # log(A / B), oriented so that larger means A does worse; a diverged side is the worse one.
    sign = -1.0 if higher else 1.0
    worst = np.inf
    a = np.log(pairs["value_a"].astype(float)).fillna(sign * worst)
    b = np.log(pairs["value_b"].astype(float)).fillna(sign * worst)
    gap = (sign * (a - b)).replace(np.nan, 0.0)  # both diverged: no gap
    tau, p = horizon_trend(pairs["horizon"], gap, higher_is_better=False)
    rows = [[_horizon(task, h), str(len(g)), _fmt(float(np.exp(sign * g.median())))]
            for h, g in gap.groupby(pairs["horizon"])]
    return (f"`{arch_a}` over `{arch_b}`: the ratio of their final {name} on the same seed (flossing `none`), "
            f"{'below' if higher else 'above'} 1 where `{arch_a}` does worse; whether it grows with the horizon: "
            "Kendall's tau-b between horizon and the log-ratio, two-sided.\n\n"
            + _markdown([_horizon_name(task), "pairs", f"median {name} ratio"], rows)
            + f"\nTrend over {len(pairs)} pairs: tau {tau:+.2f}, p = {p:.3g}.\n")


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
        rows.append([arch, task, mode, str(len(cell)), *(_fmt(cell[c].median()) for c in LYAPUNOV_COLUMNS)])
    return "Medians over runs (natural log per step for lambda_1).\n\n" + _markdown(
        ["arch", "task", "flossing", "runs", *LYAPUNOV_COLUMNS.values()], rows
    )


# The quantities a `shift` block compares: (runs.csv column, transform, what the numbers are).
SHIFTS: dict[str, tuple[str, Callable[[pd.Series], pd.Series], str]] = {
    "steps": ("steps_to_success", lambda v: v, "training steps to success, on the pairs where both runs succeeded"),
    "lambda1_start": ("lambda1_before", np.abs, "|lambda_1| at the start of training (after any pre-flossing)"),
    "lambda1_end": ("lambda1_after", np.abs, "|lambda_1| after training"),
    "gradient_start": ("grad_norm_before", np.log10, "log10 of the norm of dL/dh0 at the start of training"),
}


def shift(src: Source, quantity: str, *tasks: str) -> str:
    """Each flossing mode against ``none`` on paired runs (same arch, task, horizon, seed), pooled
    over horizons: the median paired difference of `quantity` with its interval and sign test."""
    if quantity not in SHIFTS:
        raise ValueError(f"unknown shift quantity {quantity!r}; known: {', '.join(SHIFTS)}")
    column, transform, what = SHIFTS[quantity]
    runs = src.runs[src.runs["task"].isin(tasks)] if tasks else src.runs
    keys = ["arch", "task", "horizon", "seed"]
    cells = []
    for mode in order_flossing(runs["flossing"]):
        if mode == "none":
            continue
        pairs = paired_outcomes(runs, "flossing", mode, "none", keys, value=column)
        pairs = pairs.assign(value_a=transform(pairs["value_a"].astype(float)),
                             value_b=transform(pairs["value_b"].astype(float)))
        pairs = pairs[np.isfinite(pairs["value_a"]) & np.isfinite(pairs["value_b"])]
        for (arch, task), cell in pairs.groupby(["arch", "task"], sort=True):
            cells.append((arch, task, mode, cell, median_shift(cell["value_a"] - cell["value_b"])))
    if not cells:
        raise ValueError(f"no paired runs (flossing against none) with a {column} in {src.folder}")
    holm = holm_adjust([c[4][3] for c in cells])
    rows = []
    for (arch, task, mode, cell, (median, low, high, p)), p_holm in zip(cells, holm):
        rows.append([arch, task, mode, str(len(cell)), _fmt(cell["value_b"].median()), _fmt(cell["value_a"].median()),
                     f"{_fmt(median)} [{_fmt(low)}, {_fmt(high)}]", f"{p:.3g}", f"{p_holm:.3g}"])
    return (f"{what[0].upper() + what[1:]}: each flossing mode against `none` on the same arch, task, horizon "
            "and seed, pooled over horizons; the median of the paired differences (flossed minus none) with its "
            "distribution-free 95% interval; p: sign test on the nonzero differences; p Holm: adjusted for the "
            f"table's {len(rows)} comparisons.\n\n"
            + _markdown(["arch", "task", "flossing", "pairs", "median none", "median flossed",
                         "median difference [95%]", "p", "p Holm"], rows))


def best_lrs(src: Source, task: str) -> dict[str, float]:
    """Per arch, the rate with the best mean log-metric over horizons and seeds."""
    runs = src.runs[src.runs["task"] == task]
    sign = -1.0 if runs["higher_is_better"].iloc[0] == 1 else 1.0
    # Diverged runs have no metric; they count as the worst outcome of their rate.
    score = sign * np.log(runs["metric"].clip(lower=1e-12)).fillna(np.inf)
    mean = score.groupby([runs["arch"], runs["lr"]]).mean()
    return {arch: float(s.idxmin()[1]) for arch, s in mean.groupby(level=0)}


def lrgrid(src: Source, task: str) -> str:
    runs = src.runs[src.runs["task"] == task]
    if runs.empty:
        raise ValueError(f"no runs of task {task!r}")
    lrs = sorted(runs["lr"].unique())
    horizons = sorted(runs["horizon"].unique())
    best = best_lrs(src, task)
    rows = []
    for arch, cell in runs.groupby("arch", sort=True):
        row = [arch]
        for lr in lrs:
            med = cell[cell["lr"] == lr].groupby("horizon")["metric"].median()
            text = " / ".join(_fmt(med.get(h, math.nan)) for h in horizons)
            row.append(f"**{text}**" if lr == best[arch] else text)
        rows.append(row)
    name = runs["metric_name"].iloc[0]
    return (f"Median {name} at {_horizon_name(task)} = {', '.join(_horizon(task, h) for h in horizons)} (in that order); "
            "the chosen rate in bold.\n\n" + _markdown(["arch", *(f"lr {_fmt(lr)}" for lr in lrs)], rows))


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
                value, interval = h50_text(r["h50"], r["h50_low"], r["h50_high"], r["bracketed"], r["h_min"], r["h_max"])
                row.append(f"{value} [{interval}]" if interval else value)
        rows.append(row)
    return ("h50 in steps (the horizon's unit), bootstrap 95% interval in brackets; \"> H\": every horizon "
            "up to H bridged; \"< H\": none was; \"*\": a crossing the grid does not bracket; \"no fit\": one "
            "horizon or no fall.\n\n" + _markdown(header, rows).replace("\u2013", "-"))


def paired(src: Source) -> str:
    pairs = mcnemar_table(src.runs, by=POOLED)
    if pairs.empty:
        raise ValueError(f"no paired runs (flossing against none) in {src.folder}")
    holm = holm_adjust(pairs["p_value"])
    rows = []
    for r, p_holm in zip(pairs.itertuples(index=False), holm):
        n = int(r.n_pairs)
        with_f, without = int(r.both + r.flossing_only), int(r.both + r.none_only)
        (fl, fh), (nl, nh) = wilson_interval(with_f, n), wilson_interval(without, n)
        rows.append([r.arch, r.task, r.flossing, str(n),
                     f"{without / n:.2f} [{nl:.2f}, {nh:.2f}]", f"{with_f / n:.2f} [{fl:.2f}, {fh:.2f}]",
                     str(int(r.flossing_only)), str(int(r.none_only)), f"{r.p_value:.3g}", f"{p_holm:.3g}"])
    pooled = []
    for mode, group in pairs.groupby("flossing", sort=False):
        n, fo, no = (int(group[c].sum()) for c in ("n_pairs", "flossing_only", "none_only"))
        diff, low, high, p = paired_difference(fo, no, n)
        pooled.append(f"- Pooled, `{mode}` against `none`: {n} pairs, {fo} solved only with flossing, {no} only "
                      f"without; difference in success rate {100 * diff:+.1f} points [{100 * low:+.1f}, "
                      f"{100 * high:+.1f}], exact sign test p = {p:.3g}.")
    return ("Pairs share arch, task, horizon and seed (same initialisation and data), pooled over horizons; "
            "success rates with Wilson 95% intervals; p: exact McNemar test on the discordant pairs; "
            f"p Holm: adjusted for the table's {len(rows)} comparisons (Holm 1979).\n\n"
            + _markdown(["arch", "task", "flossing", "pairs", "success none", "success flossed",
                         "only flossed solved", "only none solved", "p", "p Holm"], rows)
            + "\nEvery pair of the table together (the interval is conditional on the number of "
              "discordant pairs, Clopper-Pearson; the test is of the null that flossing changes no pair's "
              "odds):\n\n" + "\n".join(pooled) + "\n")


def versus(src: Source, task: str, side_a: str, side_b: str, mode: str = "none") -> str:
    """Two architectures on the same seeds (same data: a seed draws the task's data, and the teacher
    where the task draws one per seed), per horizon and pooled: the paired test of an architecture
    claim. A side is ``ARCH`` (in flossing `mode`) or ``ARCH:MODE``, so that two schedules of one
    network pair too (``rnn:pre+during`` against its compute-matched ``rnn_pre1500:pre``)."""
    sides = [tuple(side.split(":", 1)) if ":" in side else (side, mode) for side in (side_a, side_b)]
    labels = [arch if m == mode else f"{arch} ({m})" for arch, m in sides]
    if labels[0] == labels[1]:
        raise ValueError(f"versus compares two different sides, got {side_a!r} twice")
    runs = src.runs[src.runs["task"] == task]
    chosen = []
    for (arch, m), label in zip(sides, labels):
        one = runs[(runs["arch"] == arch) & (runs["flossing"] == m)]
        if one.empty:
            raise ValueError(f"no {m!r} runs of {arch} on {task!r} in {src.folder}")
        chosen.append(one.assign(side=label))
    pairs = paired_outcomes(pd.concat(chosen), "side", labels[0], labels[1], ["horizon", "seed"])
    a, b = labels
    rows = []
    for h, at in pairs.groupby("horizon"):
        c = discordance(at)
        ka, kb, n = int(at["a"].sum()), int(at["b"].sum()), c["n_pairs"]
        rows.append([_horizon(task, h), str(n), f"{ka / n:.2f} ({ka}/{n})", f"{kb / n:.2f} ({kb}/{n})",
                     str(c["only_a"]), str(c["only_b"]), f"{mcnemar_p_value(c['only_a'], c['only_b']):.3g}"])
    pooled = discordance(pairs)
    only_a, only_b = pooled["only_a"], pooled["only_b"]
    diff, low, high, p = paired_difference(only_a, only_b, len(pairs))
    return (f"`{a}` against `{b}`, flossing `{mode}` unless named, paired by horizon and seed; p: exact "
            "McNemar test on the discordant pairs.\n\n"
            + _markdown([_horizon_name(task), "pairs", a, b, f"only {a} solved", f"only {b} solved", "p"], rows)
            + f"\nPooled over horizons: {len(pairs)} pairs, {only_a} solved only by `{a}`, {only_b} only by "
              f"`{b}`; difference in success rate {100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] "
              f"(exact, conditional on the discordant pairs), p = {p:.3g}.\n")


def tracks(src: Source, other_suite: str, *tasks: str) -> str:
    """Each architecture against itself in another track, paired by task, horizon and seed."""
    other = Source(locate(other_suite, src.root), src.root)
    a, b = src.folder.name, other.folder.name
    runs = pd.concat([src.runs.assign(track=a), other.runs.assign(track=b)], ignore_index=True)
    runs = runs[(runs["flossing"] == "none") & (runs["task"].isin(tasks) if tasks else True)]
    cells = []
    for (task, arch), group in runs.groupby(["task", "arch"], sort=True):
        pairs = paired_outcomes(group, "track", a, b, ["horizon", "seed"])
        if len(pairs):
            cells.append((task, arch, discordance(pairs), int(pairs["a"].sum()), int(pairs["b"].sum())))
    if not cells:
        raise ValueError(f"no runs of {a} and {b} share an arch, task, horizon and seed")
    p_values = [mcnemar_p_value(c["only_a"], c["only_b"]) for _, _, c, _, _ in cells]
    rows, same = [], 0
    for (task, arch, c, ka, kb), p, p_holm in zip(cells, p_values, holm_adjust(p_values)):
        n = c["n_pairs"]
        if c["only_a"] + c["only_b"] == 0:
            same += 1  # every pair agrees: nothing to test, and a row that says so for 30 lines
            continue
        (al, ah), (bl, bh) = wilson_interval(ka, n), wilson_interval(kb, n)
        rows.append([arch, task, str(n), f"{ka / n:.2f} [{al:.2f}, {ah:.2f}]", f"{kb / n:.2f} [{bl:.2f}, {bh:.2f}]",
                     str(c["only_a"]), str(c["only_b"]), f"{p:.3g}", f"{p_holm:.3g}"])
    pooled = []
    for task in sorted({cell[0] for cell in cells}):
        counts = [cell[2] for cell in cells if cell[0] == task]
        n, only_a, only_b = (sum(c[k] for c in counts) for k in ("n_pairs", "only_a", "only_b"))
        diff, low, high, p = paired_difference(only_a, only_b, n)
        pooled.append(f"- `{task}`, every architecture: {n} pairs, {only_a} solved only in `{a}`, {only_b} only in "
                      f"`{b}`; difference {100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}], p = {p:.3g}.")
    return (f"Each architecture in `{a}` against itself in `{b}`, flossing `none`: pairs share task, horizon "
            "and seed (the same data), pooled over the horizons both ran; success rates with Wilson 95% "
            "intervals; p: exact McNemar test on the discordant pairs; p Holm: adjusted for all "
            f"{len(cells)} (arch, task) comparisons, of which the {same} where every pair agrees are not "
            "shown.\n\n"
            + _markdown(["arch", "task", "pairs", f"success {a}", f"success {b}", f"only {a} solved",
                         f"only {b} solved", "p", "p Holm"], rows)
            + "\nPooled per task (the interval conditional on the discordant pairs, Clopper-Pearson):\n\n"
            + "\n".join(pooled) + "\n")


def tuning(src: Source) -> str:
    path = src.folder / TUNING_CSV
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the suite has no [tuning] or it has not run")
    table = pd.read_csv(path)
    chosen = table[table["chosen"].astype(bool)]
    rows = [[r.arch, r.task, r.flossing, _fmt(r.lr), str(r.score)] for r in chosen.itertuples(index=False)]
    lrs = ", ".join(_fmt(v) for v in sorted(table["lr"].unique()))
    return (f"The rate chosen from {lrs} on the tuning seeds' validation split (score: success rate, "
            "median steps to success, median validation metric).\n\n"
            + _markdown(["arch", "task", "flossing", "chosen lr", "score"], rows))


KINDS: dict[str, Callable[..., str]] = {
    "summary": summary, "success": success, "longest": longest,
    "steps": steps, "metric": metric, "lyapunov": lyapunov, "lrgrid": lrgrid,
    "h50": h50, "paired": paired, "shift": shift, "trend": trend, "versus": versus, "tracks": tracks, "tuning": tuning,
}  # fmt: skip


def render_block(spec: str, root: Path) -> str:
    """The markdown of one block, e.g. ``success flossing_paper delayed_copy``."""
    kind, suite, *rest = spec.split()
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r} in {spec!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](Source(locate(suite, root), root), *rest)


def render(text: str, root: Path) -> str:
    """`text` with every table block recomputed from the leaderboard folders under `root`."""
    return BLOCK.sub(lambda m: m.group(1) + render_block(m.group("spec"), root) + m.group(4), text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m zoo.bench.report", description=__doc__.split("\n\n")[0])
    p.add_argument("document", type=Path, help="markdown file with table blocks (docs/results.md)")
    p.add_argument("--leaderboards", type=Path, default=ROOT / "leaderboard", help="folder of suite folders")
    p.add_argument("--check", action="store_true", help="exit 1 if the document is not up to date")
    args = p.parse_args(argv)
    try:
        text = args.document.read_text()
        new = render(text, args.leaderboards)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        if new != text:
            print(f"{args.document} is out of date with {args.leaderboards}: run python -m zoo.bench.report {args.document}",
                  file=sys.stderr)
            return 1
        return 0
    args.document.write_text(new)
    print(f"updated {len(BLOCK.findall(text))} tables in {args.document}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

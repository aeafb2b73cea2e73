"""The paired tests behind docs/results.md's claims: flossing against none, one architecture
or schedule against another, a track against another, and trends over the horizon. Each block
pairs runs that share their seed (same initialisation and data) through
`zoo.bench.stats.paired_outcomes`, and adjusts a table's p-values with Holm's method."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from zoo.bench.aggregate import order_flossing
from zoo.bench.stats import (
    BASELINE,
    POOLED,
    discordance,
    holm_adjust,
    horizon_trend,
    mcnemar_p_value,
    mcnemar_table,
    median_shift,
    paired_difference,
    paired_outcomes,
    wilson_interval,
)
from zoo.bench.tables import Source, fmt, horizon_header, horizon_label, markdown_table


def _rate_ci(k: int, n: int) -> str:
    """A success rate with its Wilson 95% interval."""
    low, high = wilson_interval(k, n)
    return f"{k / n:.2f} [{low:.2f}, {high:.2f}]"


def _difference(only_a: int, only_b: int, n_pairs: int) -> str:
    """A pooled paired difference in success rate, in percentage points, with its exact interval
    and McNemar p (`stats.paired_difference`)."""
    diff, low, high, p = paired_difference(only_a, only_b, n_pairs)
    return (f"difference in success rate {100 * diff:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] "
            f"(exact, conditional on the discordant pairs), p = {p:.3g}")


def paired(src: Source) -> str:
    pairs = mcnemar_table(src.runs, by=POOLED)
    if pairs.empty:
        raise ValueError(f"no paired runs (flossing against none) in {src.folder}")
    holm = holm_adjust(pairs["p_value"])
    rows = []
    for r, p_holm in zip(pairs.itertuples(index=False), holm):
        n = int(r.n_pairs)
        with_f, without = int(r.both + r.flossing_only), int(r.both + r.none_only)
        rows.append([r.arch, r.task, r.flossing, str(n), _rate_ci(without, n), _rate_ci(with_f, n),
                     str(int(r.flossing_only)), str(int(r.none_only)), f"{r.p_value:.3g}", f"{p_holm:.3g}"])
    pooled = []
    for mode, group in pairs.groupby("flossing", sort=False):
        n, fo, no = (int(group[c].sum()) for c in ("n_pairs", "flossing_only", "none_only"))
        pooled.append(f"- Pooled, `{mode}` against `none`: {n} pairs, {fo} solved only with flossing, {no} only "
                      f"without; {_difference(fo, no, n)}.")
    return ("Pairs share arch, task, horizon and seed (same initialisation and data), pooled over horizons; "
            "success rates with Wilson 95% intervals; p: exact McNemar test on the discordant pairs; "
            f"p Holm: adjusted for the table's {len(rows)} comparisons (Holm 1979).\n\n"
            + markdown_table(["arch", "task", "flossing", "pairs", "success none", "success flossed",
                         "only flossed solved", "only none solved", "p", "p Holm"], rows)
            + "\nEvery pair of the table together (the test is of the null that flossing changes no pair's "
              "odds):\n\n" + "\n".join(pooled) + "\n")


def versus(src: Source, task: str, side_a: str, side_b: str, mode: str = BASELINE) -> str:
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
        rows.append([horizon_label(task, h), str(n), f"{ka / n:.2f} ({ka}/{n})", f"{kb / n:.2f} ({kb}/{n})",
                     str(c["only_a"]), str(c["only_b"]), f"{mcnemar_p_value(c['only_a'], c['only_b']):.3g}"])
    pooled = discordance(pairs)
    only_a, only_b = pooled["only_a"], pooled["only_b"]
    return (f"`{a}` against `{b}`, flossing `{mode}` unless named, paired by horizon and seed; p: exact "
            "McNemar test on the discordant pairs.\n\n"
            + markdown_table([horizon_header(task), "pairs", a, b, f"only {a} solved", f"only {b} solved", "p"], rows)
            + f"\nPooled over horizons: {len(pairs)} pairs, {only_a} solved only by `{a}`, {only_b} only by "
              f"`{b}`; {_difference(only_a, only_b, len(pairs))}.\n")


def tracks(src: Source, other_suite: str, *tasks: str) -> str:
    """Each architecture against itself in another track, paired by task, horizon and seed."""
    other = Source.named(other_suite, src.root)
    a, b = src.folder.name, other.folder.name
    runs = pd.concat([src.runs.assign(track=a), other.runs.assign(track=b)], ignore_index=True)
    runs = runs[(runs["flossing"] == BASELINE) & (runs["task"].isin(tasks) if tasks else True)]
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
        rows.append([arch, task, str(n), _rate_ci(ka, n), _rate_ci(kb, n),
                     str(c["only_a"]), str(c["only_b"]), f"{p:.3g}", f"{p_holm:.3g}"])
    pooled = []
    for task in sorted({cell[0] for cell in cells}):
        counts = [cell[2] for cell in cells if cell[0] == task]
        n, only_a, only_b = (sum(c[k] for c in counts) for k in ("n_pairs", "only_a", "only_b"))
        pooled.append(f"- `{task}`, every architecture: {n} pairs, {only_a} solved only in `{a}`, {only_b} only in "
                      f"`{b}`; {_difference(only_a, only_b, n)}.")
    return (f"Each architecture in `{a}` against itself in `{b}`, flossing `none`: pairs share task, horizon "
            "and seed (the same data), pooled over the horizons both ran; success rates with Wilson 95% "
            "intervals; p: exact McNemar test on the discordant pairs; p Holm: adjusted for all "
            f"{len(cells)} (arch, task) comparisons, of which the {same} where every pair agrees are not "
            "shown.\n\n"
            + markdown_table(["arch", "task", "pairs", f"success {a}", f"success {b}", f"only {a} solved",
                         f"only {b} solved", "p", "p Holm"], rows)
            + "\nPooled per task:\n\n"
            + "\n".join(pooled) + "\n")


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
    cells, undefined = [], 0
    for mode in order_flossing(runs["flossing"]):
        if mode == BASELINE:
            continue
        pairs = paired_outcomes(runs, "flossing", mode, BASELINE, keys, value=column)
        with np.errstate(divide="ignore"):  # a norm of exactly 0 (float32 underflow) has log10 -inf
            pairs = pairs.assign(value_a=transform(pairs["value_a"].astype(float)),
                                 value_b=transform(pairs["value_b"].astype(float)))
        # A pair without a value (steps where a run failed, a diagnostic not recorded) has nothing to
        # compare; an infinite one (that underflow) cannot enter a median of differences, so it is
        # left out and counted below.
        present = pairs["value_a"].notna() & pairs["value_b"].notna()
        finite = np.isfinite(pairs["value_a"]) & np.isfinite(pairs["value_b"])
        undefined += int((present & ~finite).sum())
        pairs = pairs[finite]
        for (arch, task), cell in pairs.groupby(["arch", "task"], sort=True):
            cells.append((arch, task, mode, cell, median_shift(cell["value_a"] - cell["value_b"])))
    if not cells:
        raise ValueError(f"no paired runs (flossing against none) with a {column} in {src.folder}")
    holm = holm_adjust([c[4][3] for c in cells])
    rows = []
    for (arch, task, mode, cell, (median, low, high, p)), p_holm in zip(cells, holm):
        rows.append([arch, task, mode, str(len(cell)), fmt(cell["value_b"].median()), fmt(cell["value_a"].median()),
                     f"{fmt(median)} [{fmt(low)}, {fmt(high)}]", f"{p:.3g}", f"{p_holm:.3g}"])
    return (f"{what[0].upper() + what[1:]}: each flossing mode against `none` on the same arch, task, horizon "
            "and seed, pooled over horizons; the median of the paired differences (flossed minus none) with its "
            "distribution-free 95% interval; p: sign test on the nonzero differences; p Holm: adjusted for the "
            f"table's {len(rows)} comparisons."
            + (f" Left out: {undefined} pair{'s' * (undefined != 1)} where a run's value is infinite "
               "(a norm of exactly 0 has no logarithm)." if undefined else "")
            + "\n\n"
            + markdown_table(["arch", "task", "flossing", "pairs", "median none", "median flossed",
                         "median difference [95%]", "p", "p Holm"], rows))


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
    rows = [[arch, mode, str(len(cell)), fmt(cell.loc[cell["horizon"] == lo, "metric"].median()),
             fmt(cell.loc[cell["horizon"] == hi, "metric"].median()),
             *((f"{tau:+.2f}", f"{p:.3g}", f"{p_holm:.3g}") if np.isfinite(p) else ("-", "-", "-"))]
            for (arch, mode, cell, (tau, p)), p_holm in zip(cells, holm)]
    return (f"Whether the final {name} worsens with the horizon: Kendall's tau-b between horizon and {name} "
            f"({'lower' if higher else 'higher'} is worse; a diverged run counts as the worst), over every run; "
            f"p: two-sided; p Holm: adjusted for the table's {int(tested.sum())} tests (\"-\": a metric that "
            "never changes, nothing to test).\n\n"
            + markdown_table(["arch", "flossing", "runs", f"median at {horizon_label(task, lo)}",
                              f"median at {horizon_label(task, hi)}", "tau", "p", "p Holm"], rows))


def _gap_trend(runs: pd.DataFrame, task: str, name: str, higher: bool, arch_a: str, arch_b: str | None) -> str:
    if arch_b is None:
        raise ValueError("trend with architectures takes two: trend SUITE TASK ARCH_A ARCH_B")
    runs = runs[runs["flossing"] == BASELINE]
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
    def ratio(log_gap: float) -> float:  # back from the oriented log-gap to A's metric over B's
        return float(np.exp(sign * log_gap))

    rows = [[horizon_label(task, h), str(len(g)), fmt(ratio(g.median())),
             str(int((g > 0).sum())), str(int((g < 0).sum()))]
            for h, g in gap.groupby(pairs["horizon"])]
    # Which side does worse at all, pooled over horizons: the sign test on the log-ratios.
    median, low, high, p_level = median_shift(gap)
    ratio_low, ratio_high = sorted((ratio(low), ratio(high)))
    return (f"`{arch_a}` over `{arch_b}`: the ratio of their final {name} on the same seed (flossing `none`), "
            f"{'below' if higher else 'above'} 1 where `{arch_a}` does worse; whether it grows with the horizon: "
            "Kendall's tau-b between horizon and the log-ratio, two-sided; pooled over horizons, the median "
            "ratio with its distribution-free 95% interval and the sign test on the pairs that differ.\n\n"
            + markdown_table([horizon_header(task), "pairs", f"median {name} ratio", f"`{arch_a}` worse",
                              f"`{arch_b}` worse"], rows)
            + f"\nTrend over {len(pairs)} pairs: tau {tau:+.2f}, p = {p:.3g}. Pooled: median ratio "
            f"{fmt(ratio(median))} [{fmt(ratio_low)}, {fmt(ratio_high)}], `{arch_a}` worse in "
            f"{int((gap > 0).sum())} pairs and `{arch_b}` in {int((gap < 0).sum())}; sign test p = {p_level:.3g}.\n")

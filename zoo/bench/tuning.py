"""Learning-rate tuning inside the harness (issue 15): the [tuning] table, and the choice.

A suite's ``[tuning]`` table names learning rates (`lrs`), tuning seeds disjoint from the
reported ones (`seeds`) and the horizons to select at (`horizons`). The suite reader expands
it into ordinary runs (resumable, parallel, any executor), one per (arch, task, tuning horizon,
flossing mode, tuning seed, lr); `run_suite` runs them first into ``tuning_runs.csv`` (the
columns of runs.csv), then `choose_lrs` ranks the rates per (arch, task, flossing) on the
validation split with `zoo.bench.stats.tuning_table` (success rate, then steps to success,
then validation metric), writes ``tuning.csv`` and `apply_choice` gives every reported run
its (arch, task, flossing)'s chosen rate. With `flossing = ["none"]` the rate is tuned without
flossing only and every flossing mode of that (arch, task) trains with it: the paired
comparison of flossing against none then differs in flossing alone, and tuning costs one mode.
This replaces scripts/lr_grid.py, which tuned on a reported seed and on the test data.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from zoo.bench.errors import ConfigError

__all__ = ["TUNING_CSV", "TUNING_RUNS_CSV", "Tuning", "apply_choice", "choose_lrs", "parse_tuning",
           "write_tuning_csv"]

TUNING_RUNS_CSV = "tuning_runs.csv"  # the tuning runs' rows, kept apart from the reported runs.csv
TUNING_CSV = "tuning.csv"


@dataclasses.dataclass(frozen=True)
class Tuning:
    """A validated [tuning] table."""

    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    horizons: Any = None  # a list or grid for every experiment, or {task: list or grid}; None: the experiment's
    flossing: tuple[str, ...] | None = None  # the modes tuned (the others take their rate); None: every mode


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def parse_tuning(table: Any, where: str, *, reported_seeds: int, tasks: list[str],
                 modes: list[str] | None = None) -> Tuning:
    """The [tuning] table checked: one-line errors naming the key and what is allowed.
    `modes`: the suite's flossing modes, which `flossing` must choose one of."""
    if not isinstance(table, dict):
        raise _fail(where, f"must be a table with lrs, seeds and optionally horizons and flossing, got {table!r}")
    allowed = ["flossing", "horizons", "lrs", "seeds"]
    for key in table:
        if key not in allowed:
            raise _fail(where, f"unknown key {key!r}; allowed: {', '.join(allowed)}")
    lrs = table.get("lrs")
    if (not isinstance(lrs, list) or not lrs or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in lrs)):
        raise _fail(f"{where}.lrs", f"must be a non-empty list of positive numbers, got {lrs!r}")
    if len(set(lrs)) != len(lrs):
        raise _fail(f"{where}.lrs", f"lists a rate twice: {lrs!r}")
    seeds = table.get("seeds")
    if (not isinstance(seeds, list) or not seeds
            or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in seeds)):
        raise _fail(f"{where}.seeds", f"must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise _fail(f"{where}.seeds", f"lists a seed twice: {seeds!r}")
    shared = sorted(s for s in seeds if s < reported_seeds)
    if shared:
        raise _fail(f"{where}.seeds", f"{shared} are also reported seeds (0 .. {reported_seeds - 1}); "
                                      f"tuning seeds must be disjoint from them, e.g. from {reported_seeds} on")
    horizons = table.get("horizons")
    if isinstance(horizons, dict) and not {"from", "to", "count"} & set(horizons):
        for task in horizons:
            if task not in tasks:
                raise _fail(f"{where}.horizons", f"{task!r} is no experiment's task; tasks: {', '.join(tasks)} "
                                                 "(or give a list, or {from, to, count}, for every task)")
    elif horizons is not None and not isinstance(horizons, (list, dict)):
        raise _fail(f"{where}.horizons",
                    f"must be a list, {{from, to, count}} or a table per task, got {horizons!r}")
    flossing = table.get("flossing")
    if flossing is not None:
        # One mode: a choice per (arch, task) that every mode shares. Several would leave the
        # untuned modes' rate ambiguous.
        if (not isinstance(flossing, list) or len(flossing) != 1 or not isinstance(flossing[0], str)
                or (modes is not None and flossing[0] not in modes)):
            allowed_modes = ", ".join(repr(m) for m in modes) if modes else "a flossing mode"
            raise _fail(f"{where}.flossing", f"must list one of the suite's flossing modes ({allowed_modes}), "
                                             f"got {flossing!r}")
        flossing = tuple(flossing)
    return Tuning(lrs=tuple(float(v) for v in lrs), seeds=tuple(seeds), horizons=horizons, flossing=flossing)


def tuning_horizons(tuning: Tuning, task: str) -> Any:
    """The horizons (list or grid) to tune `task` at; None: the experiment's own."""
    h = tuning.horizons
    if isinstance(h, dict) and not {"from", "to", "count"} & set(h):
        return h.get(task)
    return h


def choose_lrs(tuning_runs, run_ids=None):
    """tuning.csv from the tuning runs' rows (a DataFrame as `record.read_runs` gives it), only
    those of `run_ids` if given: rows of an earlier version of the suite (other rates, other
    settings) must not win the choice."""
    from zoo.bench.stats import tuning_table

    if run_ids is not None:
        tuning_runs = tuning_runs[tuning_runs["run_id"].isin(set(run_ids))]
    return tuning_table(tuning_runs, metric="val_metric")


def write_tuning_csv(out_dir: Path, run_ids=None):
    """Read ``tuning_runs.csv``, write ``tuning.csv`` from the rows of `run_ids` (default: all);
    return the table (None without tuning runs)."""
    from zoo.bench.leaderboard import _atomic_write
    from zoo.bench.record import read_runs

    path = Path(out_dir) / TUNING_RUNS_CSV
    if not path.exists():
        return None
    table = choose_lrs(read_runs(path), run_ids)
    _atomic_write(Path(out_dir) / TUNING_CSV, table.to_csv(index=False, lineterminator="\n"))
    return table


def apply_choice(suite, table):
    """`suite` whose reported runs train with the rate chosen for their (arch, task, flossing).

    A key without a choice (its tuning runs were all skipped: the data set is unavailable)
    keeps its runs as they are; they are skipped for the same reason.
    """
    chosen = table[table["chosen"].astype(bool)]
    keys = zip(chosen["arch"], chosen["task"], chosen["flossing"])
    lr = {key: float(v) for key, v in zip(keys, chosen["lr"])}
    # A mode without tuning runs of its own ([tuning] flossing = [...]) takes the rate of the
    # one mode tuned for its (arch, task).
    by_pair: dict = {}
    for (arch, task, _), v in lr.items():
        by_pair.setdefault((arch, task), set()).add(v)
    shared = {pair: rates.pop() for pair, rates in by_pair.items() if len(rates) == 1}

    def rate(spec):
        return lr.get((spec.arch, spec.task, spec.flossing), shared.get((spec.arch, spec.task)))

    runs = tuple(
        dataclasses.replace(spec, train=dataclasses.replace(spec.train, lr=v)) if (v := rate(spec)) is not None
        else spec
        for spec in suite.runs
    )
    return dataclasses.replace(suite, runs=runs)

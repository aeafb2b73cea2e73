"""The benchmark harness, from Python (the CLI is `python -m zoo.bench`).

    import zoo.bench as bench
    out = bench.run_suite("quick", archs=["rnn", "lru"], tasks=["delayed_copy"])
    runs, board = bench.read_results(out)          # pandas DataFrames
    model, task = bench.load_trained_model(out, runs.run_id[0])
    bench.compare(out, "leaderboard/quick")         # cell-by-cell, Wilson 95% intervals

Imports stay light until a function is called, so `python -m zoo.bench --help` is quick.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["compare", "list_suites", "load_suite", "load_trained_model", "read_results", "run_suite"]


def list_suites() -> list[str]:
    """Names of the shipped suites."""
    from zoo.bench.suite import list_suites as names

    return names()


def load_suite(suite: str, **overrides: Any):
    """A validated suite (name or .toml path) with the CLI's overrides: seeds, archs, tasks, plugins."""
    from zoo.bench.suite import load_suite as load

    return load(suite, **overrides)


def run_suite(
    suite: str,
    *,
    out: str | Path | None = None,
    seeds: int | None = None,
    archs: list[str] | None = None,
    tasks: list[str] | None = None,
    plugins: list[str] = (),
    workers: int = 1,
    executor: str = "local",
    keep_checkpoints: bool = True,
    group: int | None = None,
) -> Path:
    """Run a suite as `python -m zoo.bench --suite SUITE ...` does; return its result folder.

    `group` caps the runs trained as one vectorised program (`--group`; None: the backend's
    measured default, `zoo.bench.group.DEFAULT_GROUP`).

    Finished runs in `out` (default runs/SUITE/) are kept, so calling again resumes. Raises
    `zoo.bench.errors.ConfigError` for bad input and `runner.RunsFailed` when runs raised errors.
    """
    from zoo.bench import runner
    from zoo.bench.outdir import check_out_dir, default_out
    from zoo.bench.worker import compilation_cache_dir, use_compilation_cache

    if out is not None:
        check_out_dir(Path(out))
    use_compilation_cache(compilation_cache_dir())
    spec = load_suite(suite, seeds=seeds, archs=archs, tasks=tasks, plugins=list(plugins))
    folder = check_out_dir(Path(out) if out is not None else default_out(spec.name))
    runner.run_suite(spec, folder, executor=executor, keep_checkpoints=keep_checkpoints, workers=workers,
                     group=group)
    return folder


def read_results(folder: str | Path):
    """`(runs, leaderboard)` of a result folder as pandas DataFrames (the board recomputed from runs.csv)."""
    from zoo.bench.aggregate import aggregate
    from zoo.bench.record import read_runs

    path = Path(folder) / "runs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: no runs.csv there")
    runs = read_runs(path)
    return runs, aggregate(runs)


def load_trained_model(folder: str | Path, run_id: str, *, suite: str | None = None, plugins: list[str] = ()):
    """`(model, task)` of a finished run (a reported or a tuning run), with its newest checkpointed parameters.

    The run's configuration comes from its suite: the `suite` column of runs.csv (a shipped
    suite), or `suite=` (a name or the .toml path) for a suite file of your own.
    """
    import pandas as pd

    from zoo.bench import checkpoint
    from zoo.bench.record import read_runs
    from zoo.bench.spec import build_model, build_task
    from zoo.bench.tuning import TUNING_CSV, TUNING_RUNS_CSV, apply_choice

    runs = read_runs(Path(folder) / "runs.csv")
    if (Path(folder) / TUNING_RUNS_CSV).is_file():
        runs = pd.concat([runs, read_runs(Path(folder) / TUNING_RUNS_CSV)])
    row = runs[runs["run_id"] == run_id]
    if row.empty:
        raise KeyError(f"no run {run_id!r} in {folder}/runs.csv or {TUNING_RUNS_CSV}")
    name = suite or row["suite"].iloc[0]
    found = load_suite(name, tasks=[row["task"].iloc[0]], archs=[row["arch"].iloc[0]],
                       plugins=list(plugins), validate_models=False)
    if found.tuning and (Path(folder) / TUNING_CSV).is_file():  # the reported runs' rates are the tuned ones
        found = apply_choice(found, pd.read_csv(Path(folder) / TUNING_CSV))
    spec = next((s for s in (*found.runs, *found.tuning) if s.run_id == run_id), None)
    if spec is None:
        raise KeyError(f"run {run_id!r} is not a run of suite {name!r} as it reads now; pass suite=")
    task = build_task(spec)
    model = checkpoint.load_trained_model(Path(folder) / "checkpoints" / run_id, build_model(spec, task))
    return model, task


def compare(mine: str | Path, reference: str | Path):
    """Cell-by-cell comparison of two result folders (see `zoo.bench.compare.compare_runs`)."""
    from zoo.bench.compare import compare_folders

    return compare_folders(Path(mine), Path(reference))

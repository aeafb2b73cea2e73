"""Run a suite: skip finished runs, train the rest, record each, rebuild the leaderboard.

`run_suite` is the one way through; `execute_group` trains a group of runs (`zoo.bench.group`)
as one program, `execute` one run, in whatever process an executor (`zoo.bench.executors`) chose.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from zoo.bench import curves
from zoo.bench import record as records
from zoo.bench.errors import DiskFullError, one_line
from zoo.bench.executors import get_executor
from zoo.bench.group import Group, check_group_size, default_group_size, pending_groups
from zoo.bench.outdir import OutputLock
from zoo.bench.record import RunResult
from zoo.bench.reuse import copy_runs
from zoo.bench.spec import RunSpec, Suite, build_task
from zoo.bench.train import Interrupted, train_group, train_run

ERRORS_LOG = "errors.log"  # in the output folder: full tracebacks of runs that failed with an error

# Exceptions that mean the numbers blew up, not that the code is wrong: the run is recorded
# as diverged. (jax raises FloatingPointError under jax_debug_nans/jax_debug_infs.)
NUMERICAL_ERRORS: tuple[type[BaseException], ...] = (FloatingPointError, OverflowError)


def _numerical_errors() -> tuple[type[BaseException], ...]:
    import numpy as np

    return (*NUMERICAL_ERRORS, np.linalg.LinAlgError)


class RunsFailed(RuntimeError):
    """Some runs raised an error (a bug, not divergence); the other runs were recorded."""

    def __init__(self, failures: list[str], errors_log: Path) -> None:
        self.failures, self.errors_log = failures, errors_log
        super().__init__(
            f"{len(failures)} run(s) failed with an error and were not recorded: "
            f"{', '.join(failures[:3])}{', ...' if len(failures) > 3 else ''}; "
            f"tracebacks in {errors_log}; fix the cause and run the same command to do them"
        )


class WorkerDied(RuntimeError):
    """A --workers process died (killed, out of memory, crashed) while running runs."""


class Progress:
    """A progress line over runs with an estimate of the time left, from the runs done so far."""

    def __init__(self, total: int, done: int, stream=None) -> None:
        self.total, self.done, self.stream = total, done, sys.stderr if stream is None else stream
        self._start, self._finished_here = time.perf_counter(), 0

    def _eta(self) -> str:
        if not self._finished_here:
            return "eta --"
        rate = (time.perf_counter() - self._start) / self._finished_here
        return f"eta {_duration(rate * (self.total - self.done))}"

    def finished(self, line: str) -> None:
        """Count a finished run and print its one-line summary with the bar."""
        self.done += 1
        self._finished_here += 1
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        print(f"[{bar}] {self.done}/{self.total} {self._eta()} | {line}", file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT/SIGTERM set a flag that running code polls, so it can checkpoint and stop cleanly."""
    requested = {"stop": False}

    def handler(signum, frame):
        if requested["stop"]:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        requested["stop"] = True
        print(f"\n{signal.Signals(signum).name}: saving runs in flight, then stopping "
              "(run the same command again to resume)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: requested["stop"]
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def summary_line(spec: RunSpec, result: RunResult, metric_name: str) -> str:
    """`rnn delayed_copy h=20 pre lr=0.001 s=0: solved at step 400 (accuracy 0.97) 3.1s`."""
    what = {
        "solved": f"solved at step {result.steps_to_success}",
        "unsolved": f"not solved in {result.steps_trained} steps",
        "diverged": f"diverged by step {result.steps_trained}",
        "skipped": "skipped",
    }[result.status]
    if result.status == "skipped" or (result.status == "diverged" and result.note):
        metric = f" ({result.note})"
    else:
        metric = f" ({metric_name} {result.metric:.4g})"
    return (f"{spec.arch} {spec.task} h={spec.horizon:g} {spec.flossing} lr={spec.train.lr:g} s={spec.seed}: "
            f"{what}{metric} {result.wall_time_s:.1f}s")


def execute(spec: RunSpec, out_dir: Path, should_stop: Callable[[], bool]) -> dict:
    """Train one run (or record why it cannot run) and return its outcome.

    The outcome is `{"row": runs.csv row, "summary": line}`, or, when the run raised an
    error that is not a numerical failure (a bug), `{"error": one line, "traceback": text,
    "summary": line}`, which is not recorded as a result. Numerical failures raised as
    exceptions (FloatingPointError, OverflowError, LinAlgError) are recorded as diverged.
    Raises only `Interrupted` (stopped on request), `DiskFullError` and KeyboardInterrupt.
    """
    import tasks as task_registry

    task = None
    progress = {"step": 0, "t0": time.perf_counter()}

    def on_progress(step: int, metric: float) -> None:
        progress["step"] = step

    try:
        task = build_task(spec)
        result = train_run(spec, out_dir / "checkpoints" / spec.run_id, task=task, should_stop=should_stop,
                           on_progress=on_progress, preflossed_dir=out_dir / "checkpoints" / "preflossed")
    except task_registry.DatasetUnavailable as e:
        result = RunResult.not_trained("skipped", one_line(e))
    except (Interrupted, DiskFullError):
        raise
    except _numerical_errors() as e:
        result = RunResult.not_trained("diverged", f"{type(e).__name__}: {one_line(e, '(no message)')}"[:200],
                                       steps_trained=progress["step"],
                                       wall_time_s=round(time.perf_counter() - progress["t0"], 3))
    except Exception as e:  # noqa: BLE001  (a bug in an architecture, a task or the harness)
        message = f"run {spec.run_id} failed: {type(e).__name__}: {one_line(e, '(no message)')}"
        return {"error": message, "traceback": traceback.format_exc(), "summary": f"error: {message}"}
    return _outcome(spec, task, result)


def _outcome(spec: RunSpec, task, result: RunResult) -> dict:
    metric_name = getattr(type(task), "metric_name", "metric") if task is not None else "metric"
    higher = getattr(type(task), "higher_is_better", True) if task is not None else True
    return {"row": records.make_row(spec, result, metric_name, higher), "curve": result.curve,
            "summary": summary_line(spec, result, metric_name)}


def execute_group(group: Group, out_dir: Path, should_stop: Callable[[], bool]) -> list[tuple[RunSpec, dict]]:
    """Train a group's runs as one program and return each run's outcome (as `execute`'s).

    A run whose task cannot be built (data missing, a bug) goes through `execute` alone, which
    says why. When the group's program raises (a bug or a numerical failure in one member), its
    runs go again one at a time from their checkpoints, so that the error or the divergence is
    recorded against the run it belongs to. Raises only `Interrupted`, `DiskFullError` and
    KeyboardInterrupt.
    """
    if group.size == 1:
        return [(spec, execute(spec, out_dir, should_stop)) for spec in group.specs]
    built = {}
    for spec in group.specs:
        try:
            built[spec.run_id] = build_task(spec)
        except Exception:  # noqa: BLE001  (`execute` below records it: skipped, or an error)
            pass
    members = [spec for spec in group.specs if spec.run_id in built]
    outcomes: dict[str, dict] = {}
    if members:
        try:
            results = train_group(members, [out_dir / "checkpoints" / r.run_id for r in members],
                                  tasks=[built[r.run_id] for r in members], should_stop=should_stop,
                                  preflossed_dir=out_dir / "checkpoints" / "preflossed", size=group.size)
            outcomes = {r.run_id: _outcome(r, built[r.run_id], res) for r, res in zip(members, results)}
        except (Interrupted, DiskFullError):
            raise
        except Exception:  # noqa: BLE001  (run by run below, each error against its own run)
            pass
    for spec in group.specs:
        if spec.run_id not in outcomes:
            if should_stop():
                raise Interrupted(spec.run_id)
            outcomes[spec.run_id] = execute(spec, out_dir, should_stop)
    return [(spec, outcomes[spec.run_id]) for spec in group.specs]


def run_suite(
    suite: Suite,
    out_dir: Path,
    *,
    executor: str = "local",
    keep_checkpoints: bool = True,
    stream=None,
    group: int | None = None,
    reuse: Sequence[Path] = (),
    **executor_options,
) -> int:
    """Run every unfinished run of `suite` into `out_dir`; return the number of runs done now.

    `group` caps the runs that train as one vectorised program (`zoo.bench.group`; 1: one run
    per program); default: the measured size for jax's backend (`group.DEFAULT_GROUP`).
    A run that one of the `reuse` folders holds under the same id is copied from there
    (`zoo.bench.reuse`), not trained.

    A suite with [tuning] runs its tuning runs first (into tuning_runs.csv), writes tuning.csv,
    and trains its reported runs with the chosen rates. A suite with [bracket] then extends the
    grids its reported runs left open (`zoo.bench.bracket`), round by round, into runs.csv.
    Every run's learning curve goes to curves.csv just before its row.

    Raises `RunsFailed` at the end when some runs failed with an error (the others are
    recorded; failed tuning runs stop the suite before its reported runs), `Interrupted` when
    stopped by SIGINT/SIGTERM, `WorkerDied` when a worker process died; in every case each
    finished run is in runs.csv (or tuning_runs.csv) exactly once.
    """
    from zoo.bench.bracket import plan_rounds
    from zoo.bench.leaderboard import write_leaderboard
    from zoo.bench.tuning import TUNING_RUNS_CSV, apply_choice, write_tuning_csv

    # sys.stderr as it is now, not when this module was imported (a test's capture may differ).
    stream = sys.stderr if stream is None else stream
    run = get_executor(executor).load()
    group = default_group_size() if group is None else check_group_size(group)
    out_dir.mkdir(parents=True, exist_ok=True)
    with OutputLock(out_dir):
        finished = {**records.read_rows(out_dir / TUNING_RUNS_CSV), **records.read_rows(out_dir / "runs.csv")}
        curves.keep_runs(out_dir / curves.CURVES_CSV, set(finished))
        done = 0
        try:
            if suite.tuning:
                done += _run_phase(suite, suite.tuning, f"{suite.name} tuning", out_dir / TUNING_RUNS_CSV, out_dir,
                                   run, keep_checkpoints, stream, group, reuse, executor_options)
                suite = apply_choice(suite, write_tuning_csv(out_dir, [r.run_id for r in suite.tuning]))
            done += _run_phase(suite, suite.runs, suite.name, out_dir / "runs.csv", out_dir, run, keep_checkpoints,
                               stream, group, reuse, executor_options)
            if suite.bracket:  # each round planned from runs.csv once the rounds before it have run
                rounds = plan_rounds(suite.runs, lambda: records.read_rows(out_dir / "runs.csv"), suite.bracket)
                for i, extra in enumerate(rounds, 1):
                    done += _run_phase(suite, extra, f"{suite.name} bracket round {i}", out_dir / "runs.csv", out_dir,
                                       run, keep_checkpoints, stream, group, reuse, executor_options)
        finally:
            try:
                write_leaderboard(out_dir, description=suite.description)
            except Exception as e:  # noqa: BLE001  (runs.csv is what matters; the board is rebuilt next time)
                print(f"warning: could not write the leaderboard: {type(e).__name__}: {one_line(e)}",
                      file=stream, flush=True)
    return done


def _run_phase(suite: Suite, specs: Sequence[RunSpec], label: str, runs_csv: Path, out_dir: Path, run,
               keep_checkpoints: bool, stream, group: int, reuse: Sequence[Path], executor_options: dict) -> int:
    """Run the unfinished runs of `specs`, recording each in `runs_csv`; return how many ran."""
    finished = records.read_rows(runs_csv)
    ids = {r.run_id for r in specs}
    # Skipped runs (data set unavailable) are tried again: the data may be there now.
    retry = [i for i, row in finished.items() if i in ids and row["status"] == "skipped"]
    if retry:
        finished = records.drop_rows(runs_csv, retry)
    copied = copy_runs(reuse, ids - set(finished), suite.name, runs_csv, out_dir) if reuse else 0
    if copied:
        finished = records.read_rows(runs_csv)
    _warn_other_configurations(specs, finished, stream)
    pending = [r for r in specs if r.run_id not in finished]
    progress = Progress(len(specs), len(specs) - len(pending), stream)
    reused = f" ({copied} copied from {', '.join(map(str, reuse))})" if copied else ""
    print(f"{label}: {len(specs)} runs, {len(specs) - len(pending)} already done{reused}, "
          f"writing to {out_dir}", file=stream, flush=True)

    failures: list[str] = []
    missing_data: set[str] = set()  # the reasons a data set is unavailable: each said once per suite

    def record(spec: RunSpec, outcome: dict) -> None:
        if "error" in outcome:  # not a result: the run is done again on the next invocation
            failures.append(spec.run_id)
            with open(out_dir / ERRORS_LOG, "a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {outcome['error']}\n"
                          f"{outcome.get('traceback', '')}\n")
            print(f"error: {outcome['error']} (traceback in {out_dir / ERRORS_LOG}); "
                  "going on with the other runs", file=stream, flush=True)
            return
        row, summary = outcome["row"], outcome["summary"]
        curves.append_curve(out_dir / curves.CURVES_CSV, row["run_id"], outcome.get("curve", []))
        records.append_row(runs_csv, row)
        if row["status"] == "skipped":
            if row["note"] in missing_data:  # smnist and psmnist share one data set: said once
                summary = summary.replace(f"({row['note']})", "(data unavailable, as above)")
            missing_data.add(row["note"])
        progress.finished(summary)
        if not keep_checkpoints:
            shutil.rmtree(out_dir / "checkpoints" / spec.run_id, ignore_errors=True)

    # Groups are planned over all the phase's runs, so that they stay the same on a resume.
    run(pending_groups(specs, {r.run_id for r in pending}, group), out_dir, record, suite=suite, **executor_options)
    if failures:
        raise RunsFailed(failures, out_dir / ERRORS_LOG)
    return len(pending)


def suite_run_ids(suite: Suite, out_dir: Path) -> set[str]:
    """The reported runs a finished suite folder holds: its runs at the rates of its tuning.csv,
    plus the bracket rounds they planned (replayed from its runs.csv). Rows of other ids in
    runs.csv are runs of an earlier version of the suite (another rate chosen, the file edited)."""
    from zoo.bench.bracket import rounds_from_rows
    from zoo.bench.tuning import TUNING_CSV, apply_choice

    if suite.tuning and (out_dir / TUNING_CSV).exists():
        import pandas as pd

        suite = apply_choice(suite, pd.read_csv(out_dir / TUNING_CSV))
    ids = {spec.run_id for spec in suite.runs}
    if suite.bracket:
        rows = records.read_rows(out_dir / "runs.csv")
        ids |= {s.run_id for extra in rounds_from_rows(suite.runs, rows, suite.bracket) for s in extra}
    return ids


def _warn_other_configurations(specs: Sequence[RunSpec], finished: dict[str, dict[str, str]], stream) -> None:
    """Rows for the same (arch, task, horizon, flossing, seed) as this suite's runs but another
    configuration (the suite file was edited) would be counted twice by the leaderboard."""
    slots = {(r.arch, r.task, f"{r.horizon:g}", r.flossing, str(r.seed)) for r in specs}
    ids = {r.run_id for r in specs}
    stale = []
    for run_id, row in finished.items():
        try:
            slot = (row["arch"], row["task"], f"{float(row['horizon']):g}", row["flossing"], row["seed"])
        except ValueError:
            continue
        if run_id not in ids and slot in slots:
            stale.append(run_id)
    if stale:
        print(f"warning: runs.csv holds {len(stale)} run(s) of another configuration for the same "
              f"(arch, task, horizon, flossing, seed) as this suite's, e.g. {stale[0]} (was the suite "
              "file edited?); the leaderboard counts both: use a new --out, or delete those rows",
              file=stream, flush=True)

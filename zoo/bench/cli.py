"""`python -m zoo.bench`: run a suite and write its leaderboard."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from zoo.bench.suite import ConfigError, list_suites

EXIT_RUNS_FAILED = 1  # some runs raised an error (see OUT/errors.log) or a worker process died
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m zoo.bench",
        description="Train every (architecture, task, horizon, flossing mode, seed) of a suite "
        "and write runs.csv, leaderboard.csv and leaderboard.html.",
    )
    p.add_argument("--suite", help="a suite name from bench_configs/ or a path to a .toml file")
    p.add_argument("--out", type=Path, help="output folder (default: leaderboard/SUITE/)")
    p.add_argument("--list", action="store_true", help="list suites, architectures and tasks, then exit")
    p.add_argument("--seeds", type=int, help="number of seeds per configuration (overrides the suite)")
    p.add_argument("--archs", type=_csv,
                   help="run these architectures (comma-separated) instead of the suite's list")
    p.add_argument("--tasks", type=_csv, help="only these tasks (comma-separated)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, so its @register_architecture/@register_task run (repeatable)")
    p.add_argument("--executor", default="local",
                   help="where runs execute: local (default) or ray (each run a Ray task; "
                   "pip install -e '.[ray]'; see docs/ray.md)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --executor ray: the Ray cluster to use (host:port or auto; "
                   "default: $RAY_ADDRESS, else a Ray instance started on this machine)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes running runs in parallel (one per core pays on a CPU; default 1)")
    p.add_argument("--no-checkpoints", action="store_true",
                   help="delete each run's checkpoints once its result is recorded")
    return p.parse_args(argv)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _print_catalogue(plugins: list[str]) -> None:
    import tasks
    import zoo
    from zoo.bench.suite import import_plugins

    import_plugins(plugins)
    print("suites:        " + ", ".join(list_suites()))
    print("architectures: " + ", ".join(zoo.list_architectures()))
    print("tasks:         " + ", ".join(tasks.list_tasks()))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    quiet_libraries()
    try:
        if args.list:
            _print_catalogue(args.plugin)
            return 0
        if not args.suite:
            raise ConfigError("--suite is required (or --list); suites: " + ", ".join(list_suites()))
        return _run(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C while loading, before any run started
        print("stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


def quiet_libraries() -> None:
    """Library warnings (orbax, absl) would bury the progress lines; ours are UserWarnings."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    logging.getLogger("absl").setLevel(logging.ERROR)


def enable_compilation_cache() -> None:
    """Keep compiled XLA programs on disk, so reruns, resumes and worker processes skip compiling."""
    import jax

    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rnn-zoo" / "xla"
    path = os.environ.get("ZOO_COMPILATION_CACHE", str(default))
    if path:  # ZOO_COMPILATION_CACHE="" turns it off
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def _run(args: argparse.Namespace) -> int:
    from zoo.bench.runner import EXECUTORS
    from zoo.bench.suite import load_suite

    executor_options: dict = {"workers": args.workers}
    if args.executor == "ray":
        from zoo.bench.ray_executor import prepare_driver  # registers "ray" in EXECUTORS

        prepare_driver(args.ray_address)  # one-line errors: Ray not installed, nobody at the address
        executor_options["ray_address"] = args.ray_address
    elif args.ray_address:
        raise ConfigError("--ray-address needs --executor ray")
    if args.executor not in EXECUTORS:
        allowed = ", ".join(sorted({*EXECUTORS, "ray"}))
        raise ConfigError(f"--executor: unknown executor {args.executor!r}; allowed: {allowed}")
    enable_compilation_cache()
    if args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    suite = load_suite(args.suite, seeds=args.seeds, archs=args.archs, tasks=args.tasks, plugins=args.plugin)
    out = args.out or Path("leaderboard") / suite.name
    return run_and_report(suite, out, executor=args.executor, keep_checkpoints=not args.no_checkpoints,
                          **executor_options)


def run_and_report(suite, out: Path, **options) -> int:
    """`run_suite` with the command line's one-line outcomes; returns the exit status."""
    from zoo.bench.results import OutputLockedError
    from zoo.bench.runner import RunsFailed, WorkerDied, run_suite
    from zoo.bench.train import Interrupted

    try:
        run_suite(suite, out, **options)
    except OutputLockedError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (RunsFailed, WorkerDied) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_RUNS_FAILED
    except (Interrupted, KeyboardInterrupt):
        print(f"stopped; finished runs are in {out / 'runs.csv'}; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"done: {out / 'runs.csv'}, {out / 'leaderboard.csv'}, {out / 'leaderboard.html'}")
    return 0

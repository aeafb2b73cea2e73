"""`python -m zoo.bench`: run a suite, write its leaderboard, compare it with the reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo.bench.errors import ConfigError, DiskFullError

EXIT_RUNS_FAILED = 1  # some runs raised an error (see OUT/errors.log), a worker died, the disk is full
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

EXAMPLE = """example:
  python -m zoo.bench --suite quick                   # smoke test, writes runs/quick/
  python -m zoo.bench --suite long_horizon --workers 2 --out runs/mine
  python -m zoo.bench.compare runs/long_horizon leaderboard/long_horizon
"""


def _suites_help() -> str:
    """The shipped suites with their size (from the TOML alone: nothing is imported or built)."""
    from zoo.bench.catalogue import describe_suites

    return "suites (runs; measured run time of the committed reference):\n" + "\n".join(
        f"  {line}" for line in describe_suites()
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m zoo.bench",
        description="Train every (architecture, task, horizon, flossing mode, seed) of a suite "
        "and write runs.csv, leaderboard.csv and leaderboard.html.",
        epilog=EXAMPLE + "\n" + _suites_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # --seed must not silently mean --seeds
    )
    p.add_argument("--suite", help="a suite name from bench_configs/ or a path to a .toml file")
    p.add_argument("--out", type=Path,
                   help="output folder (default: runs/SUITE/; leaderboard/SUITE/ holds the committed reference)")
    p.add_argument("--list", action="store_true", help="list suites, architectures and tasks, then exit")
    p.add_argument("--seeds", type=int, help="number of seeds per configuration (overrides the suite)")
    p.add_argument("--archs", type=_csv,
                   help="run these architectures (comma-separated) instead of the suite's list")
    p.add_argument("--tasks", type=_csv, help="only these tasks (comma-separated)")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first, so its @register_architecture/@register_task run (repeatable)")
    p.add_argument("--executor", default="local",
                   help="where runs execute: local (default) or ray (each group of runs a Ray task; "
                   "pip install -e '.[ray]'; see docs/ray.md)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="with --executor ray: the Ray cluster to use (host:port or auto; "
                   "default: $RAY_ADDRESS, else a Ray instance started on this machine)")
    p.add_argument("--workers", type=int, default=1,
                   help="processes running runs in parallel (one per core pays on a CPU; default 1)")
    p.add_argument("--group", type=int, metavar="N",
                   help="at most N runs of one compiled shape train as one vectorised program "
                   "(1 = one run per program; default: measured per backend, 1 on a CPU, 64 on a GPU)")
    p.add_argument("--no-checkpoints", action="store_true",
                   help="delete each run's checkpoints once its result is recorded")
    p.add_argument("--reuse", action="append", default=[], type=Path, metavar="FOLDER",
                   help="copy the runs FOLDER (another suite's output) holds under the same run id instead of "
                   "training them again: an id names the whole configuration (repeatable)")
    return p


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _print_catalogue(plugins: list[str]) -> None:
    import tasks
    import zoo
    from zoo.bench.suite import list_suites
    from zoo.bench.worker import import_plugins

    import_plugins(plugins)
    print("suites:        " + ", ".join(list_suites()))
    print("architectures: " + ", ".join(zoo.list_architectures()))
    print("tasks:         " + ", ".join(tasks.list_tasks()))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from zoo.bench.worker import quiet_libraries

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or argparse's own one-line usage error (exit 2)
        return int(e.code or 0)
    quiet_libraries()
    try:
        if args.list:
            _print_catalogue(args.plugin)
            return 0
        if not args.suite:
            from zoo.bench.suite import list_suites

            raise ConfigError("--suite is required (or --list); suites: " + ", ".join(list_suites()))
        return _run(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C while loading, before any run started
        print("stopped", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    from zoo.bench.executors import get_executor
    from zoo.bench.outdir import check_out_dir, default_out
    from zoo.bench.suite import load_suite
    from zoo.bench.worker import compilation_cache_dir, use_compilation_cache

    executor = get_executor(args.executor)
    options: dict = {"workers": args.workers}
    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    if args.executor == "ray":
        options["ray_address"] = args.ray_address
    if executor.prepare:
        executor.load("prepare")(options)  # one-line errors: Ray not installed, nobody at the address
    if args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    if args.group is not None:
        if args.group < 1:
            raise ConfigError(f"--group must be a positive integer (1 = one run per program), got {args.group}")
        options["group"] = args.group
    if args.reuse:
        from zoo.bench.reuse import check_folders

        options["reuse"] = check_folders(args.reuse)
    if args.out is not None:
        check_out_dir(args.out)  # before the suite is expanded: a bad folder fails at once
    use_compilation_cache(compilation_cache_dir())
    suite = load_suite(args.suite, seeds=args.seeds, archs=args.archs, tasks=args.tasks, plugins=args.plugin)
    out = check_out_dir(args.out or default_out(suite.name))
    status = run_and_report(suite, out, executor=args.executor, keep_checkpoints=not args.no_checkpoints,
                            **options)
    if status == 0:
        _compare_with_reference(suite.name, args.suite, out)
    return status


def run_and_report(suite, out: Path, **options) -> int:
    """`run_suite` with the command line's one-line outcomes; returns the exit status."""
    from zoo.bench.outdir import OutputLockedError
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
    except DiskFullError as e:
        print(f"error: {e.strerror or e}; finished runs are in {out / 'runs.csv'}; "
              "free some space and run the same command to resume", file=sys.stderr)
        return EXIT_RUNS_FAILED
    except (Interrupted, KeyboardInterrupt):
        print(f"stopped; finished runs are in {out / 'runs.csv'}; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"done: {out / 'runs.csv'}, {out / 'leaderboard.csv'}, {out / 'leaderboard.html'}")
    return 0


def _compare_with_reference(name: str, given: str, out: Path) -> None:
    """A shipped suite with a committed reference: say in a few lines how this run compares."""
    from zoo.bench.compare import compare_folders, reference_folder, side_by_side, summary_lines
    from zoo.bench.suite import list_suites

    reference = reference_folder(name)
    if given not in list_suites() or reference is None or reference.resolve() == out.resolve():
        return
    table = compare_folders(out, reference)
    for line in summary_lines(table, out, reference):
        print(line)
    print(f"  both on one page: {side_by_side(out, reference)}")

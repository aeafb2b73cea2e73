"""Choose a learning rate per architecture from a grid, on a subset of a suite's runs.

    python scripts/lr_grid.py --suite zucchet_orvieto --lrs 3e-4,1e-3,3e-3,1e-2 \\
        --horizons 12.5,100 --seeds 1 --workers 2

Every run of the suite at the chosen horizons and seeds is trained once per learning rate
(the suite's own settings otherwise), into ``runs/SUITE/lr_grid/`` (resumable, like any
suite output; the committed reference grid is ``leaderboard/SUITE/lr_grid/``). The table printed at the end, and the ``lrgrid`` table of
docs/results.md, give the median final metric per architecture and rate; the best rate
per architecture is the one with the lowest mean log-metric over the horizons (highest,
for metrics where higher is better). Copy it into the suite's ``lr`` table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as python -m zoo.bench does

from zoo.bench import report  # noqa: E402
from zoo.bench.cli import run_and_report  # noqa: E402
from zoo.bench.worker import compilation_cache_dir, quiet_libraries, use_compilation_cache  # noqa: E402
from zoo.bench.errors import ConfigError  # noqa: E402
from zoo.bench.outdir import check_out_dir, default_out  # noqa: E402
from zoo.bench.spec import Suite  # noqa: E402
from zoo.bench.suite import load_suite  # noqa: E402



def grid_suite(suite: Suite, lrs: list[float], horizons: list[float] | None, seeds: int) -> Suite:
    runs = []
    for spec in suite.runs:
        if spec.seed >= seeds or (horizons and not any(abs(spec.horizon - h) < 1e-9 for h in horizons)):
            continue
        for lr in lrs:
            runs.append(dataclasses.replace(spec, train=dataclasses.replace(spec.train, lr=lr)))
    if not runs:
        raise ConfigError(f"no runs of {suite.name} at horizons {horizons}")
    return dataclasses.replace(suite, runs=tuple(runs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    p.add_argument("--suite", required=True)
    p.add_argument("--lrs", required=True, help="comma-separated learning rates")
    p.add_argument("--horizons", help="comma-separated horizons (default: all of the suite's)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, help="default: runs/SUITE/lr_grid")
    args = p.parse_args(argv)
    quiet_libraries()
    try:
        suite = load_suite(args.suite)
        out = check_out_dir(args.out or default_out(suite.name) / "lr_grid")
        lrs = [float(x) for x in args.lrs.split(",")]
        horizons = [float(x) for x in args.horizons.split(",")] if args.horizons else None
        grid = grid_suite(suite, lrs, horizons, args.seeds)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    use_compilation_cache(compilation_cache_dir())
    status = run_and_report(grid, out, workers=args.workers, keep_checkpoints=False)
    if status:
        return status
    # A leaderboard would pool the rates into one success rate per cell: the table below is the result.
    for name in ("leaderboard.csv", "leaderboard.html"):
        (out / name).unlink(missing_ok=True)
    src = report.Source(out)
    for task in sorted(src.runs["task"].unique()):
        print(report.lrgrid(src, task))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drop the rows of runs of an earlier version of a suite from its output folder.

When a suite file changes in a way that changes run ids (here: a tuning choice moved when the
tuning grid gained a horizon), the harness keeps the old rows and warns that the leaderboard
would count both. This keeps only the suite's own runs (`zoo.bench.runner.suite_run_ids`) in
runs.csv and curves.csv and rebuilds the leaderboard. Run it while the suite is not running:

    python reruns/prune.py reruns/long_horizon_matched.toml reruns/long_horizon_matched
"""

from __future__ import annotations

import sys
from pathlib import Path

from zoo.bench import curves, record
from zoo.bench.leaderboard import write_leaderboard
from zoo.bench.outdir import OutputLock
from zoo.bench.runner import suite_run_ids
from zoo.bench.suite import load_suite
from zoo.bench.tuning import TUNING_RUNS_CSV


def main(suite_file: str, out: str) -> int:
    suite, out_dir = load_suite(suite_file), Path(out)
    with OutputLock(out_dir):
        keep = suite_run_ids(suite, out_dir)
        stale = set(record.read_rows(out_dir / "runs.csv")) - keep
        kept = set(record.drop_rows(out_dir / "runs.csv", stale))
        tuning_ids = set(record.read_rows(out_dir / TUNING_RUNS_CSV))
        curves.keep_runs(out_dir / curves.CURVES_CSV, kept | tuning_ids)
        write_leaderboard(out_dir, description=suite.description)
    print(f"{out_dir}: dropped {len(stale)} row(s) of other configurations; {len(kept)} kept "
          f"({len(keep & kept)} of the suite's {len(keep)} runs finished)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python reruns/prune.py SUITE_FILE OUT_DIR")
    sys.exit(main(*sys.argv[1:]))

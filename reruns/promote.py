r"""Move a finished rerun to its reference folder, refusing a half-finished one.

A rerun is finished when its runs.csv holds exactly the suite's runs (`zoo.bench.runner.
suite_run_ids`: every reported run at its tuned rate and every bracket round those runs
planned), no more and no less. Then its result files and the suite file it ran from (as
suite.toml) replace the reference folder's, which `tests/test_results.py` checks against the
suite. Run it while the suite is not running:

    python reruns/promote.py reruns/long_horizon_matched.toml reruns/long_horizon_matched \
        leaderboard/long_horizon_matched
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from zoo.bench import record
from zoo.bench.outdir import OutputLock
from zoo.bench.runner import suite_run_ids
from zoo.bench.suite import load_suite

FILES = ["runs.csv", "curves.csv", "leaderboard.csv", "leaderboard.html", "horizons.csv", "tuning.csv",
         "tuning_runs.csv"]


def main(suite_file: str, out: str, dest: str) -> int:
    suite, out_dir, dest_dir = load_suite(suite_file), Path(out), Path(dest)
    with OutputLock(out_dir):
        planned = suite_run_ids(suite, out_dir)
        done = set(record.read_rows(out_dir / "runs.csv"))
        if done != planned:
            print(f"error: {out_dir} is not finished: {len(planned - done)} of the suite's {len(planned)} runs "
                  f"missing, {len(done - planned)} rows of other configurations (reruns/prune.py drops those)",
                  file=sys.stderr)
            return 1
        dest_dir.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            if (out_dir / name).exists():
                shutil.copy2(out_dir / name, dest_dir / name)
        shutil.copy2(suite_file, dest_dir / "suite.toml")
    print(f"{dest_dir}: {len(done)} runs from {out_dir}; next: bench_configs/, docs/results.md "
          "(python -m zoo.bench.report docs/results.md), the tests")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python reruns/promote.py SUITE_FILE OUT_DIR DEST_DIR")
    sys.exit(main(*sys.argv[1:]))

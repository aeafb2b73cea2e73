#!/usr/bin/env bash
# Wall time of one suite file on an earlier checkout and on this one, one after the other, each
# with a cold compilation cache and no checkpoints; then both runs.csv side by side (metric, wall
# time per run). Usage: bash benchmarks/suite_before_after.sh BEFORE_CHECKOUT SUITE_FILE [WORKERS]
# (e.g. git worktree add /tmp/before <commit>). Both sides use this checkout's interpreter.
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
before="${1:?usage: bash benchmarks/suite_before_after.sh BEFORE_CHECKOUT SUITE_FILE [WORKERS]}"
suite="$(realpath "${2:?usage: bash benchmarks/suite_before_after.sh BEFORE_CHECKOUT SUITE_FILE [WORKERS]}")"
workers="${3:-1}"
py="${PYTHON:-$here/.venv/bin/python}"
for side in before after; do
  dir="$before"; [ "$side" = after ] && dir="$here"
  tmp="${TMPDIR:-/tmp}/sba-$side"
  rm -rf "$tmp" "$tmp-cache"
  start=$(date +%s.%N)
  (cd "$dir" && ZOO_COMPILATION_CACHE="$tmp-cache" "$py" -m zoo.bench --suite "$suite" --workers "$workers" \
     --no-checkpoints --out "$tmp" > "$tmp.log" 2>&1)
  rc=$?
  end=$(date +%s.%N)
  echo "$side: exit $rc, wall $(python3 -c "print(round($end - $start, 1))") s, load $(cut -d' ' -f1 /proc/loadavg)"
done
"$py" - <<PY
import pandas as pd
tmp = "${TMPDIR:-/tmp}/sba-"
b, a = (pd.read_csv(tmp + s + "/runs.csv").set_index("run_id").sort_index() for s in ("before", "after"))
table = pd.DataFrame({"flossing": b.flossing, "horizon": b.horizon, "seed": b.seed,
                      "metric before": b.metric, "metric after": a.metric,
                      "wall s before": b.wall_time_s, "wall s after": a.wall_time_s})
print(table.to_string(index=False))
print(f"summed run time: before {b.wall_time_s.sum():.1f} s, after {a.wall_time_s.sum():.1f} s")
PY

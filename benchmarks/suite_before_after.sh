#!/usr/bin/env bash
# One suite on an earlier checkout and on this one, one after the other, each with a cold
# compilation cache and no checkpoints: wall time, runs per hour, then both runs.csv side by side
# (metric and wall time per run).
#   bash benchmarks/suite_before_after.sh BEFORE_CHECKOUT SUITE [python -m zoo.bench options...]
# BEFORE_CHECKOUT: e.g. `git worktree add /tmp/before <commit>`; SUITE: a suite file or a shipped
# suite's name. Both sides use this checkout's interpreter ($PYTHON, default .venv/bin/python).
# Runs per hour of a long_horizon slice (issue 19 item 5):
#   bash benchmarks/suite_before_after.sh /tmp/before long_horizon --archs rnn,lstm,gru,lru \
#     --tasks delayed_copy,teacher_student --seeds 2 --workers 2
set -u
usage="usage: bash benchmarks/suite_before_after.sh BEFORE_CHECKOUT SUITE [zoo.bench options...]"
here="$(cd "$(dirname "$0")/.." && pwd)"
before="${1:?$usage}"
suite="${2:?$usage}"
shift 2
[ -f "$suite" ] && suite="$(realpath "$suite")"
py="${PYTHON:-$here/.venv/bin/python}"
for side in before after; do
  dir="$before"; [ "$side" = after ] && dir="$here"
  tmp="${TMPDIR:-/tmp}/sba-$side"
  rm -rf "$tmp" "$tmp-cache"
  start=$(date +%s.%N)
  (cd "$dir" && ZOO_COMPILATION_CACHE="$tmp-cache" "$py" -m zoo.bench --suite "$suite" --no-checkpoints \
     --out "$tmp" "$@" > "$tmp.log" 2>&1)
  rc=$?
  end=$(date +%s.%N)
  n=$(( $(wc -l < "$tmp/runs.csv") - 1 ))
  "$py" -c "w = $end - $start; print('$side: exit $rc, $n runs, wall', round(w, 1), 's, runs per hour', round($n * 3600 / w), ', load $(cut -d' ' -f1 /proc/loadavg)')"
done
"$py" - <<PY
import pandas as pd
tmp = "${TMPDIR:-/tmp}/sba-"
b, a = (pd.read_csv(tmp + s + "/runs.csv").set_index("run_id").sort_index() for s in ("before", "after"))
table = pd.DataFrame({"arch": b.arch, "task": b.task, "flossing": b.flossing, "horizon": b.horizon, "seed": b.seed,
                      "metric before": b.metric, "metric after": a.metric,
                      "wall s before": b.wall_time_s, "wall s after": a.wall_time_s})
print(table.to_string(index=False))
print(f"summed run time: before {b.wall_time_s.sum():.1f} s, after {a.wall_time_s.sum():.1f} s")
PY

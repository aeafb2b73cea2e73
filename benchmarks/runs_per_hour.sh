#!/usr/bin/env bash
# Runs per hour of a long_horizon slice (issue 19 item 5): a checkout of an earlier commit
# against this one, each with a cold compilation cache, --workers 2, one after the other.
# Usage: bash benchmarks/runs_per_hour.sh BEFORE_CHECKOUT   (e.g. git worktree add /tmp/before b52d2ab)
# Both sides run with this checkout's interpreter ($PYTHON, default .venv/bin/python).
set -u
here="$(cd "$(dirname "$0")/.." && pwd)"
before="${1:?usage: bash benchmarks/runs_per_hour.sh BEFORE_CHECKOUT}"
py="${PYTHON:-$here/.venv/bin/python}"
for side in before after; do
  dir="$before"; [ "$side" = after ] && dir="$here"
  tmp="${TMPDIR:-/tmp}/rph-$side"
  rm -rf "$tmp" "$tmp-cache"
  start=$(date +%s.%N)
  (cd "$dir" && ZOO_COMPILATION_CACHE="$tmp-cache" "$py" -m zoo.bench --suite long_horizon \
     --archs rnn,lstm,gru,lru --tasks delayed_copy,teacher_student --seeds 2 --workers 2 --no-checkpoints \
     --out "$tmp" > "$tmp.log" 2>&1)
  rc=$?
  end=$(date +%s.%N)
  n=$(( $(wc -l < "$tmp/runs.csv") - 1 ))
  "$py" -c "w = $end - $start; print('$side', 'rc', $rc, 'runs', $n, 'wall_s', round(w, 1), 'runs_per_hour', round($n * 3600 / w))"
done

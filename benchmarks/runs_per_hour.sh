#!/usr/bin/env bash
# Runs per hour of a long_horizon slice (issue 19 item 5): a commit BEFORE (a worktree at
# /work/wt/before) against this checkout, cold compilation caches, --workers 2, one after the other.
set -u
for side in before after; do
  dir=/work/wt/before; [ $side = after ] && dir=/work/main
  rm -rf /tmp/rph-$side /tmp/rph-cache-$side
  cd $dir
  start=$(date +%s.%N)
  ZOO_COMPILATION_CACHE=/tmp/rph-cache-$side /work/main/.venv/bin/python -m zoo.bench --suite long_horizon \
     --archs rnn,lstm,gru,lru --tasks delayed_copy,teacher_student --seeds 2 --workers 2 --no-checkpoints \
     --out /tmp/rph-$side > /tmp/rph-$side.log 2>&1
  rc=$?
  end=$(date +%s.%N)
  n=$(( $(wc -l < /tmp/rph-$side/runs.csv) - 1 ))
  python3 -c "w=$end-$start; print('$side', 'rc', $rc, 'runs', $n, 'wall_s', round(w,1), 'runs_per_hour', round($n*3600/w))"
done

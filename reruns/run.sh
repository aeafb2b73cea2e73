#!/usr/bin/env bash
# Every reference suite of issue 20 again, in the order they first ran, each into reruns/SUITE/
# (the committed results are in leaderboard/SUITE/; reruns/README.md has how long each took: about
# 35 h of summed run time, so about 18 h with two workers). Each suite resumes where it stopped,
# so this script can be killed and started again at any time. A suite whose process dies (out of
# memory, a signal) is started again, up to 5 times, before the next one. lru_ablation copies its
# linear, complex_diagonal and lru rungs from zucchet_orvieto's runs (the same run ids) instead of
# training them again. Usage: bash reruns/run.sh [WORKERS]
set -u
cd "$(dirname "$0")/.."
workers="${1:-2}"
py="${PYTHON:-python}"
for suite in anchors long_horizon long_horizon_matched long_horizon_stacked zucchet_orvieto lru_ablation \
    flossing_paper; do
  file="reruns/$suite.toml"
  [ -f "$file" ] || file="$suite"  # all but anchors run as shipped in bench_configs/
  reuse=()
  [ "$suite" = lru_ablation ] && reuse=(--reuse reruns/zucchet_orvieto)
  for attempt in 1 2 3 4 5; do
    echo "reruns/run.sh: $suite attempt $attempt starts $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
    "$py" -m zoo.bench --suite "$file" --out "reruns/$suite" --workers "$workers" --no-checkpoints "${reuse[@]}" \
      && break
    echo "reruns/run.sh: $suite stopped with exit $? (attempt $attempt) $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  done
done

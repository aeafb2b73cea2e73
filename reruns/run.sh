#!/usr/bin/env bash
# The issue-20 reference reruns, in order (long_horizon, its two tracks and zucchet_orvieto are done and promoted
# to leaderboard/);
# lru_ablation, the small paper suite, runs before flossing_paper so that it lands first. Each suite resumes where it
# stopped, so this script can be killed and started again at any time. A suite whose process dies (out of
# memory, a signal) is started again, up to 5 times, before the next one. Usage: bash reruns/run.sh [WORKERS]
set -u
cd "$(dirname "$0")/.."
workers="${1:-2}"
py="${PYTHON:-python}"
for suite in anchors lru_ablation flossing_paper; do
  file="reruns/$suite.toml"
  [ -f "$file" ] || file="$suite"  # the paper suites run as shipped in bench_configs/
  reuse=()  # lru_ablation's linear, complex_diagonal and lru rungs are zucchet_orvieto's runs (same ids)
  [ "$suite" = lru_ablation ] && reuse=(--reuse leaderboard/zucchet_orvieto)
  for attempt in 1 2 3 4 5; do
    echo "reruns/run.sh: $suite attempt $attempt starts $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
    "$py" -m zoo.bench --suite "$file" --out "reruns/$suite" --workers "$workers" --no-checkpoints "${reuse[@]}" \
      && break
    echo "reruns/run.sh: $suite stopped with exit $? (attempt $attempt) $(date -u '+%Y-%m-%d %H:%M:%S') UTC"
  done
done

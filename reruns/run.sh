#!/usr/bin/env bash
# The issue-20 reference reruns, in order; each suite resumes where it stopped, so this script
# can be killed and started again at any time. Usage: bash reruns/run.sh [WORKERS]
set -u
cd "$(dirname "$0")/.."
workers="${1:-2}"
py="${PYTHON:-python}"
for suite in anchors long_horizon long_horizon_matched long_horizon_stacked; do
  "$py" -m zoo.bench --suite "reruns/$suite.toml" --out "reruns/$suite" --workers "$workers" --no-checkpoints \
    || echo "reruns/run.sh: $suite stopped with exit $?"
done

#!/bin/bash
# Time one benchmark on an earlier commit and on the working tree in turn, ROUNDS times each, one
# thread, so that the two sit side by side in one run on the same machine.
#
#   bash benchmarks/ab_commits.sh REV ROUNDS BENCHMARK [ARGS...]
#   bash benchmarks/ab_commits.sh HEAD 2 bench_les.py --compiled --clock cpu --grids 16x33x12
#
# REV is checked out in a temporary worktree and put first on PYTHONPATH; the working tree's
# benchmark script runs on both, so a new option of the script is there for the old code too.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash benchmarks/ab_commits.sh REV ROUNDS BENCHMARK [ARGS...]" >&2
  exit 2
fi
rev=$1 rounds=$2 bench=$3
shift 3
root=$(git rev-parse --show-toplevel)
old=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git -C "$root" worktree add --detach --force "$old" "$rev" >/dev/null 2>&1
cd "$root"
for round in $(seq "$rounds"); do
  echo "== $rev, round $round"
  OMP_NUM_THREADS=1 PYTHONPATH="$old" python "benchmarks/$bench" "$@"
  echo "== working tree, round $round"
  OMP_NUM_THREADS=1 python "benchmarks/$bench" "$@"
done

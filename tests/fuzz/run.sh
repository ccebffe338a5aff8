#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time on a copy of its seed corpus,
# so that what it adds to the corpus stays in the build directory:
#   run.sh TARGET SEED_DIR WORK_DIR SECONDS
# A crash leaves its input in WORK_DIR/crash-* (libFuzzer names it), which
# the target reproduces when run with that file as its only argument.
set -euo pipefail
target=$(realpath -m "$1") seeds=$2 work=$(realpath -m "$3") seconds=$4
if [ ! -x "$target" ]; then
  echo "run.sh: $target is missing: build it with -DSOCKEYE_FUZZ=ON (scripts/test.sh: build-fuzz/)" >&2
  exit 1
fi
# Anew each time, so that a crash-* file there is this run's.
rm -rf "$work"
mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
cd "$work"
# -timeout: one input taking this long is a hang, reported like a crash. A
# crash, a sanitizer report or a violated property exits non-zero.
exec "$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus"

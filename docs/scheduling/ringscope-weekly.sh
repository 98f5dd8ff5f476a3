#!/usr/bin/env bash
# Weekly: detect over the whole book, train a challenger, promote it only if it wins, check drift.
# Usage: ringscope-weekly.sh OUT_DIR [ringscope store options...]
# Exit codes as ringscope-nightly.sh.
set -euo pipefail
out=$1; shift
day=$(date +%F)
mkdir -p "$out/$day"
exec 9>"${RINGSCOPE_SCHEDULE_LOCK:-$out/.ringscope-schedule.lock}"
flock -n 9 || { echo "another scheduled ringscope run is still going" >&2; exit 75; }
ringscope detect "$@" --quiet
ringscope train "$@" --promote auto --quiet | tee "$out/$day/train.txt"
ringscope monitor "$@" --out "$out/$day/monitoring" --quiet

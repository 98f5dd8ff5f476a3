#!/usr/bin/env bash
# Nightly: flag tonight's batch, then check the model still fits the book.
# Usage: ringscope-nightly.sh INCOMING_DIR OUT_DIR [ringscope store options...]
# Exit codes: 0 fine, 1 monitor says "act" (alert someone), 3 the store was busy, 75 another run holds the lock.
set -euo pipefail
incoming=$1; out=$2; shift 2
day=$(date +%F)
mkdir -p "$out/$day"
# one ringscope job at a time on this store: nightly and weekly share this lock
exec 9>"${RINGSCOPE_SCHEDULE_LOCK:-$out/.ringscope-schedule.lock}"
flock -n 9 || { echo "another scheduled ringscope run is still going" >&2; exit 75; }
ringscope flag "$incoming" "$@" --out "$out/$day/flags.csv" --rejects "$out/$day/rejects.csv" --quiet
ringscope monitor "$@" --out "$out/$day/monitoring" --quiet

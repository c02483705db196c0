#!/usr/bin/env bash
# Runs the whole suite N times (default 3) while stress-ng keeps every CPU busy, and prints one line per run: exit
# status, wall time, load average before and after, vitest's test and error counts. Proves the suite is robust on a
# busy machine (issue 13); each run's output is kept in $OUT (default /tmp/rampart-suite-under-load).
# Usage: sudo bash scripts/suite-under-load.sh [N]   (stress-ng: `apt-get install stress-ng`)
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
out="${OUT:-/tmp/rampart-suite-under-load}"
mkdir -p "$out"
command -v stress-ng >/dev/null || { echo "suite-under-load: stress-ng not found (apt-get install stress-ng)" >&2; exit 1; }
# Bounded twice: by its own --timeout, and stopped by its PID when the runs are over (also on Ctrl-C).
stress-ng --cpu "$(nproc)" --timeout "$((runs * 45))m" >"$out/stress-ng.log" 2>&1 &
stress=$!
trap 'kill "$stress" 2>/dev/null' EXIT
echo "suite-under-load: stress-ng --cpu $(nproc) (pid $stress), $runs run(s), output in $out"
for i in $(seq 1 "$runs"); do
  before="$(cut -d' ' -f1-3 /proc/loadavg)"
  start="$(date +%s)"
  npx vitest run --reporter=default --reporter=json --outputFile.json="$out/run$i.json" >"$out/run$i.out" 2>&1
  rc=$?
  end="$(date +%s)"
  after="$(cut -d' ' -f1-3 /proc/loadavg)"
  tests="$(sed 's/\x1b\[[0-9;]*m//g' "$out/run$i.out" | grep -E '^ +Tests ' | tr -s ' ' | sed 's/^ //')"
  errors="$(sed 's/\x1b\[[0-9;]*m//g' "$out/run$i.out" | grep -E '^ +Errors ' | tr -s ' ' | sed 's/^ //')"
  echo "run $i: exit $rc, $((end - start)) s, started $(date -u -d "@$start" +%H:%M:%SZ), load before $before, after $after; ${tests:-no summary}${errors:+; $errors}"
done

#!/usr/bin/env bash
# The browser test (tests/test_browser.py) N times in a row with a busy process pinned to one core, as on a
# shared CI machine: the check that it waits on conditions, not on time. Usage: benchmarks/browser_under_load.sh [N]
set -u
cd "$(dirname "$0")/.."
runs=${1:-5}
PY=${PY:-.venv/bin/python}
taskset -c 0 "$PY" -c "while True: pass" &
busy=$!
trap 'kill $busy 2>/dev/null' EXIT
lscpu | grep -E "^Model name" ; nproc
passed=0
for i in $(seq 1 "$runs"); do
    start=$(date +%s)
    if "$PY" -m pytest tests/test_browser.py -q -p no:randomly > "/tmp/browser_under_load_$i.log" 2>&1; then
        passed=$((passed + 1)); verdict=passed
    else
        verdict="FAILED (/tmp/browser_under_load_$i.log)"
    fi
    echo "run $i: $verdict in $(( $(date +%s) - start )) s; $(tail -1 /tmp/browser_under_load_$i.log)"
done
echo "$passed of $runs runs passed with a busy process on core 0"
[ "$passed" -eq "$runs" ]

#!/bin/bash
# tests/stress.sh - the test suites on a busy machine: starts stress-ng (CPU, I/O and memory
# load) and runs the README's test command N times in a row (default 10) against ./build,
# printing a line per run and a closing tally; exits non-zero when any run failed. stress-ng
# is stopped by its PID however the script ends. A suite that fails here waits on time
# instead of on what the code does. Usage: tests/stress.sh [N]   (from any directory; the
# build must exist: see README.md). Each run's output goes to a log whose path is printed.
set -u

runs=${1:-10}
case $runs in
    '' | *[!0-9]* | 0)
        echo "usage: tests/stress.sh [N]   (N runs, a positive number; default 10)" >&2
        exit 2
        ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
if [ ! -f build/build.ninja ] || [ ! -e build/lib/libgryphgen.so.1 ]; then
    echo "stress: no build in $root/build: run the set-up command of README.md first" >&2
    exit 2
fi
if ! command -v stress-ng > /dev/null; then
    echo "stress: stress-ng is missing; install it with: apt-get install -y stress-ng" >&2
    exit 2
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/gg-stress-XXXXXX") || exit 2
stress_pid=
stop_stress() {
    if [ -n "$stress_pid" ]; then
        kill -TERM "$stress_pid" 2> /dev/null
        wait "$stress_pid" 2> /dev/null
        stress_pid=
    fi
}
trap stop_stress EXIT
trap 'stop_stress; exit 130' INT
trap 'stop_stress; exit 143' TERM

stress-ng --cpu 2 --io 1 --vm 1 --vm-bytes 256M > "$logs/stress-ng.log" 2>&1 &
stress_pid=$!
echo "stress: stress-ng (pid $stress_pid) loads the machine; $runs runs; logs in $logs"

passed=0
for i in $(seq 1 "$runs"); do
    if ! kill -0 "$stress_pid" 2> /dev/null; then
        echo "stress: stress-ng ended early (see $logs/stress-ng.log)" >&2
        break
    fi
    log="$logs/run$i.log"
    start=$(date +%s)
    failing=
    if meson test -C build --print-errorlogs > "$log" 2>&1; then
        GRYPHGEN_LIBRARY=build/lib/libgryphgen.so.1 /usr/bin/python3 -m pytest -q \
            bindings/python/tests >> "$log" 2>&1 || failing="the Python binding's tests"
    else
        # meson's summary lines: "N/M suite:name / test   FAIL   ..."
        failing=$(grep -E '^ *[0-9]+/[0-9]+ .* (FAIL|TIMEOUT|ERROR) ' "$log" |
            sed -E 's/^ *[0-9]+\/[0-9]+ +//; s/ +(FAIL|TIMEOUT|ERROR) .*/ \1/' | sort -u |
            tr '\n' ',')
        failing=${failing%,}
        failing=${failing:-meson test}
    fi
    took=$(($(date +%s) - start))
    if [ -z "$failing" ]; then
        passed=$((passed + 1))
        echo "stress: run $i/$runs passed ($took s)"
    else
        echo "stress: run $i/$runs FAILED ($took s): $failing; log: $log"
    fi
done

stop_stress
echo "stress: $passed/$runs passed"
[ "$passed" -eq "$runs" ]

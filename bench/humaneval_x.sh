#!/bin/bash
# humaneval_x.sh LANG - what the pipeline costs over the plain toolchain for one HumanEval-X
# language (cpp, go, java, javascript or js, rust): the 164 problems through `gryphgen eval
# --generator reference --jobs 2` (default, strongest isolation: every job sandboxed), then
# the same programs (the run's --results "code") with their tests compiled and run by the
# plain toolchain 2 at a time (bench/plain_x.py), in the same run. Prints both times, how
# many passed on each side, and the ratio (target <= 1.0x). The pipeline's first run of a
# language on a host also prepares its toolchain directory (Go's cache, Rust's crates): run
# twice for the steady state.
# Environment: BUILD (build dir, default build), HUMANEVAL_X (data dir, default
# ../shared/data/humaneval-x beside the repository).
set -euo pipefail

lang=${1:-}
case $lang in
    cpp|go|java|rust) file=$lang ;;
    js|javascript) lang=javascript file=js ;;
    *) echo "usage: humaneval_x.sh cpp|go|java|javascript|rust"; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
data=${HUMANEVAL_X:-$repo/../shared/data/humaneval-x}/humaneval_$file.jsonl.gz
[ -f "$data" ] || { echo "humaneval_x: no data at $data (set HUMANEVAL_X)"; exit 1; }
[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
if ! log=$(ninja -C "$build" cli/gryphgen 2>&1); then
    echo "humaneval_x: building gryphgen failed:"; echo "$log"; exit 1
fi
gg=$build/cli/gryphgen
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

# The Python interpreter is named, as every other toolchain is resolved to Debian's copy:
# without it the command would ask python3 on PATH for its sys.executable at start, which
# through a version manager's shim costs a few tenths of a second that no job of these
# languages needs (see docs/configuration.md, the interpreter).
py=()
[ -z "${GRYPHGEN_PYTHON:-}" ] && [ -x /usr/bin/python3 ] && py=(--python /usr/bin/python3)
echo "pipeline: python ${py[1]:-${GRYPHGEN_PYTHON:-from PATH}}; plain: the toolchain's defaults"
"$gg" doctor 2>/dev/null | grep 'C/C++ linker:' | sed 's/^ */pipeline /' || true
t0=$(now)
zcat "$data" | "$gg" eval --generator reference --jobs 2 --db "$tmp/run.db" --quiet \
    "${py[@]}" --results "$tmp/results.jsonl" - >"$tmp/pipe.out" 2>&1 || true
t1=$(now)
pipe=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
passed=$(sed -n 's/^passed at first attempt: *\([0-9]*\).*/\1/p' "$tmp/pipe.out")
/usr/bin/python3 "$repo/bench/plain_x.py" --language "$lang" --data "$data" \
    --results "$tmp/results.jsonl" --jobs 2 >"$tmp/plain.json"
read -r plain plain_passed total < <(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.3f %d %d" % (d["wall_s"], d["passed"], d["total"]))' "$tmp/plain.json")
ratio=$(awk -v a="$pipe" -v b="$plain" 'BEGIN { printf "%.2f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.0 ? "met" : "MISSED") }')
echo "humaneval-x $lang: pipeline ${pipe} s (${passed:-?}/$total passed), plain toolchain" \
     "${plain} s ($plain_passed/$total passed), ratio ${ratio}x (target <= 1.0x: $met)"

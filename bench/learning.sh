#!/bin/sh
# learning.sh - does retrieval learning (SYMORG) make first attempts pass more over time?
#
#   bench/learning.sh [BUILD_DIR] [PNG]     (BUILD_DIR: default $BUILD, else build/)
#
# A synthetic corpus (bench/learning_corpus.py): for each of 10 task families two short,
# keyword-dense sections with stale values, which plain BM25 ranks first, and one longer
# section with the current value. A stand-in model (a `command:` generator) trusts the FIRST
# reference it is given. The same 10 tasks, under new ids, run in EPOCHS epochs through the
# real pipeline: `gryphgen serve --index DB --local 1` and `gryphgen submit --wait`; the index
# keeps what it learnt between epochs. Printed: the first-attempt pass rate per epoch for the
# learning ranker (the defaults) and for plain BM25 (--index-weight 0 --index-frozen: no
# usefulness, no feedback, no indexed solutions), in the same run; then the same on a corpus
# where BM25 is already right (--easy). Both curves of both corpora are drawn into PNG
# (default bench/out/learning.png) with matplotlib, or gnuplot when matplotlib is missing.
#
# Knobs (environment): EPOCHS (default 8), ATTEMPTS (attempts per task, default 3: a failed
# first attempt is retried with the references that led it demoted).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-${BUILD:-$root/build}}
png=${2:-$here/out/learning.png}
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" cli/gryphgen >/dev/null
gg=$(cd "$build" && pwd)/cli/gryphgen
py=/usr/bin/python3
corpus_py=$here/learning_corpus.py
epochs=${EPOCHS:-8}
attempts=${ATTEMPTS:-3}
[ -x "$gg" ] || { echo "learning.sh: no $gg (build first)" >&2; exit 2; }

work=$(mktemp -d /tmp/gg-learning.XXXXXX)
serve_pid=
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "${KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT INT TERM

# run_arm NAME CORPUS_DIR SERVE_OPTIONS...: EPOCHS epochs; prints "NAME r1 r2 ..." (percent).
run_arm() {
    name=$1 corpus=$2
    shift 2
    dir=$work/$name
    mkdir -p "$dir"
    "$gg" index --quiet --db "$dir/index.db" "$corpus" >/dev/null
    sock=ipc://$dir/sock
    "$gg" serve --bind "$sock" --insecure --db "$dir/orch.db" --index "$dir/index.db" \
        --local 1 --log-level error \
        --generator "command:$py $corpus_py model" "$@" 2>"$dir/serve.log" &
    serve_pid=$!
    i=0
    until [ -S "$dir/sock" ]; do
        i=$((i + 1))
        [ $i -lt 600 ] || { echo "learning.sh: serve did not start" >&2; cat "$dir/serve.log" >&2; exit 1; }
        kill -0 "$serve_pid" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
        sleep 0.05
    done
    line=$name
    e=1
    while [ $e -le "$epochs" ]; do
        "$py" "$corpus_py" tasks "$e" --attempts "$attempts" |
            "$gg" submit --connect "$sock" --insecure --wait - >"$dir/results.$e" 2>>"$dir/serve.log"
        rate=$("$py" -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
first = sum(1 for r in rs if r.get("passed_attempt") == 1)
print(round(100.0 * first / max(len(rs), 1)))' "$dir/results.$e")
        line="$line $rate"
        e=$((e + 1))
    done
    kill "$serve_pid"
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=
    echo "$line"
}

"$py" "$corpus_py" corpus "$work/hard"
"$py" "$corpus_py" corpus "$work/easy" --easy

echo "# first-attempt pass rate (%) per epoch, 10 tasks an epoch, $attempts attempt(s) a task"
echo "# corpus: misleading (plain BM25 ranks two stale sections first)"
learn_hard=$(run_arm learning-hard "$work/hard")
plain_hard=$(run_arm bm25-hard "$work/hard" --index-weight 0 --index-frozen)
echo "$learn_hard"
echo "$plain_hard"
echo "# corpus: BM25 already right"
learn_easy=$(run_arm learning-easy "$work/easy")
plain_easy=$(run_arm bm25-easy "$work/easy" --index-weight 0 --index-frozen)
echo "$learn_easy"
echo "$plain_easy"

mkdir -p "$(dirname "$png")"
printf '%s\n%s\n%s\n%s\n' "$learn_hard" "$plain_hard" "$learn_easy" "$plain_easy" >"$work/curves"
"$py" "$corpus_py" plot "$work/curves" "$png" && echo "# curves drawn in $png"

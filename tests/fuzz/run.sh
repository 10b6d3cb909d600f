#!/bin/bash
# run.sh - builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) in
# their own build directory and runs each for a bounded time on a copy of its seed corpus
# (tests/fuzz/corpus/NAME). Fails when a target crashes, leaks, hits undefined behaviour or
# an input times out; the input that did it is kept as BUILD/crash-NAME-* and printed.
#
# Usage: tests/fuzz/run.sh [SECONDS_PER_TARGET]      (default 20)
# Environment: GG_FUZZ_BUILD (default build-fuzz in the source root), CLANG (default clang),
#              GG_FUZZ_TARGETS (default "task protocol keys patch").
# Needs: clang, libclang-rt-14-dev (libFuzzer and the sanitizer runtimes), pkg-config,
#        libcjson-dev, libcurl4-openssl-dev, libzmq3-dev, libgit2-dev.
# A target's dictionary is tests/fuzz/NAME.dict when there is one, else json.dict.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-20}
out=${GG_FUZZ_BUILD:-$root/build-fuzz}
clang=${CLANG:-clang}
targets=${GG_FUZZ_TARGETS:-task protocol keys patch}

case $secs in ''|*[!0-9]*) echo "fuzz: SECONDS_PER_TARGET must be a number"; exit 2 ;; esac
command -v "$clang" >/dev/null || { echo "fuzz: $clang not found (apt-get install clang)"; exit 1; }
command -v pkg-config >/dev/null || { echo "fuzz: pkg-config not found"; exit 1; }
mkdir -p "$out"

# libFuzzer ships in compiler-rt; without it the link fails with an unclear message.
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
    >"$out/probe.c"
if ! "$clang" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" 2>"$out/probe.log"; then
    echo "fuzz: $clang cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev):"
    sed 's/^/    /' "$out/probe.log"
    exit 1
fi

deps_cflags=$(pkg-config --cflags libcjson libcurl libzmq)
deps_libs=$(pkg-config --libs libcjson libcurl libzmq)
cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -I"$root/include" -I"$root/lib")
# lib/core (which depends on no other part of the library)
core=("$root"/lib/core/*.c)

sources_of() { # the library sources each target needs besides lib/core
    case $1 in
        task) ;;
        protocol) echo "$root/lib/orchestrator/protocol.c $root/lib/orchestrator/protocol_encode.c" \
                        "$root/lib/orchestrator/protocol_stream.c" ;;
        keys) echo "$root/lib/net/keys.c" ;;
        patch) echo "$root/lib/workspace/patch.c $root/lib/workspace/patch_diff.c" \
                     "$root/lib/workspace/diff_parse.c $root/lib/workspace/safe_path.c" \
                     "$root/lib/workspace/workspace.c $root/lib/workspace/ws_build.c" ;;
        *) echo "fuzz: unknown target '$1'" >&2; return 1 ;;
    esac
}

libs_of() { # the libraries a target needs besides the common ones
    case $1 in
        patch) pkg-config --libs libgit2 ;;
        *) ;;
    esac
}

fail=0
for t in $targets; do
    extra=$(sources_of "$t")
    extra_libs=$(libs_of "$t")
    dict="$root/tests/fuzz/$t.dict"
    [ -f "$dict" ] || dict="$root/tests/fuzz/json.dict"
    for f in $extra; do
        [ -f "$f" ] || { echo "fuzz: $t needs $f, which does not exist"; exit 1; }
    done
    echo "== fuzz_$t: build"
    # shellcheck disable=SC2086
    "$clang" "${cflags[@]}" $deps_cflags "$root/tests/fuzz/fuzz_$t.c" "${core[@]}" $extra \
        -o "$out/fuzz_$t" $deps_libs $extra_libs -lm -lpthread
    seeds="$root/tests/fuzz/corpus/$t"
    work="$out/corpus-$t"
    mkdir -p "$work"
    echo "== fuzz_$t: ${secs}s"
    # New inputs go to the work directory; the committed seeds are only read.
    if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
         UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
         "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
            -max_len=65536 -print_final_stats=1 -artifact_prefix="$out/crash-$t-" \
            -dict="$dict" "$work" "$seeds" >"$out/fuzz_$t.log" 2>&1; then
        echo "FAIL: fuzz_$t (log: $out/fuzz_$t.log)"
        grep -E "ERROR|SUMMARY|Test unit written|^artifact_prefix" "$out/fuzz_$t.log" | head -20 || true
        tail -40 "$out/fuzz_$t.log"
        fail=1
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/fuzz_$t.log" || true
    fi
done
exit $fail

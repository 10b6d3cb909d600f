# shellcheck shell=bash
# lib.sh - what the bench scripts that start servers share; sourced (`. "$repo/bench/lib.sh"`)
# once the script has set py. It makes a temporary folder, $tmp, and the list $pids, to which
# the script appends every process it starts in the background; when the script exits,
# however it exits, each of those processes is stopped (SIGCONT first, for one the script
# froze with SIGSTOP, then SIGTERM), waited for, and $tmp removed. port prints a free loopback
# port the kernel picked.
tmp=$(mktemp -d)
pids=()
bench_pid=$BASHPID

bench_cleanup() {
    # bash may run the EXIT trap in command substitutions too: only the script itself cleans
    [ "$BASHPID" = "$bench_pid" ] || return 0
    local p
    for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap bench_cleanup EXIT

port() { "${py:-python3}" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

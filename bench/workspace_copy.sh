#!/bin/bash
# workspace_copy.sh - preparing an attempt's copy of a workspace base (lib/workspace): makes a
# git repository of 2,000 files (200 directories of 10 files, 1-4 KB each), resolves and
# exports it once as a base (a read-only tree in a cache), then measures in interleaved
# rounds making a copy with GGI_WS_COPY_OVERLAY (the attempt's whole use of it: directories
# made, overlay mounted to apply the answer, mounted again and attached by a forked child in
# a mount namespace of its own as the executor's job does, removed), GGI_WS_COPY_LINK (hard
# links, new directories) and GGI_WS_COPY_FULL (every file copied), and `git worktree add
# --detach` of the same repository; prints each median in ms and the ratios. Targets: the
# overlay copy (the link copy where no overlay mounts, e.g. not root) <= 20 ms and <= 0.5x
# git worktree add; exit status 3 when one is missed.
# The CPU time (user + system) of each is printed beside the wall clock: on a shared, loaded
# machine it is the steadier figure.
# Environment: BUILD (build directory, default build), ROUNDS (21), DIRS (200), FILES (10),
# SCRATCH (the directory the repository, base and copies go in; default $TMPDIR or /tmp),
# SEPARATE=1 (all rounds of one method, then the next, instead of interleaved rounds).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" bench/workspace_copy_bench >/dev/null
tmp="$(mktemp -d -p "${SCRATCH:-${TMPDIR:-/tmp}}")"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost \
    GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
repo="$tmp/repo"
git init -q -b main "$repo"
python3 - "$repo" "${DIRS:-200}" "${FILES:-10}" <<'PY'
import os, random, sys
repo, dirs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(15)
for d in range(dirs):
    p = os.path.join(repo, "pkg%03d" % d)
    os.makedirs(p)
    for f in range(files):
        n = rnd.randint(1024, 4096)
        line = "value_%d_%d = %d  # some source text\n" % (d, f, rnd.randint(0, 1 << 30))
        with open(os.path.join(p, "mod%02d.py" % f), "w") as fh:
            fh.write((line * (n // len(line) + 1))[:n])
PY
git -C "$repo" add -A
git -C "$repo" commit -q -m "2,000 files"
echo "repository: $(git -C "$repo" ls-files | wc -l) files, $(du -sh --exclude=.git "$repo" | cut -f1)"
echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(df -T "$tmp" | awk 'NR==2 {print $2}') at $tmp"
"$build/bench/workspace_copy_bench" "$repo" "$tmp" "${ROUNDS:-21}" "${SEPARATE:+separate}"

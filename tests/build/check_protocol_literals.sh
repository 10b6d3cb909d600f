#!/bin/bash
# check_protocol_literals.sh - one ggp/1 codec (issue 17): only lib/orchestrator/protocol*.c
# and protocol.h may spell the envelope of a message. Any other C file in lib/ or cli/ that
# holds the key "ggp" or "t" as a string literal (cJSON_AddStringToObject(m, "t", ...)) or
# writes them by hand inside one ("{\"ggp\":1,\"t\":\"hb\"}") fails the check, named with
# its line: such a file writes a message behind the codec's back (use ggp_build_*,
# ggp_encode_* in protocol.h instead).
# Usage: check_protocol_literals.sh SOURCE_ROOT
set -euo pipefail

root=${1:?usage: check_protocol_literals.sh SOURCE_ROOT}
if [ ! -d "$root/lib/orchestrator" ] || [ ! -d "$root/cli" ]; then
    echo "check_protocol_literals: no lib/orchestrator and cli/ under $root"
    exit 1
fi
patterns=(-e '"ggp"' -e '\"ggp\"' -e '"t"' -e '\"t\"')

# The codec itself must hold them: otherwise the patterns (or the root) are wrong and the
# check below would pass on anything.
# (grep reads the files itself: `cat | grep -q` under pipefail fails when grep stops early
# and cat dies of SIGPIPE.)
if ! grep -qF "${patterns[@]}" "$root"/lib/orchestrator/protocol*.c; then
    echo "check_protocol_literals: the codec (lib/orchestrator/protocol*.c) writes no envelope: wrong root or stale patterns"
    exit 1
fi

found=$(grep -rnF --include='*.c' --include='*.h' "${patterns[@]}" "$root/lib" "$root/cli" |
        grep -vE "^$root/lib/orchestrator/protocol(_[a-z]+)?\.[ch]:" || true)
if [ -n "$found" ]; then
    echo "${found//$root\//}"
    echo "check_protocol_literals: $(echo "$found" | wc -l) line(s) above write a ggp/1 envelope outside lib/orchestrator/protocol*.c"
    exit 1
fi
echo "ok: the ggp/1 envelope is written only in lib/orchestrator/protocol*.c"

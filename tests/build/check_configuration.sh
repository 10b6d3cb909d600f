#!/bin/bash
# check_configuration.sh - docs/configuration.md names every GRYPHGEN_* environment variable
# the library and the command read: each "GRYPHGEN_..." string in lib/ and cli/ (getenv()
# calls, and the names openai.c and the command hand to their environment helpers) must
# appear in the doc as `NAME`. Prints the missing ones and fails.
# Usage: check_configuration.sh SOURCE_ROOT [DOC]
set -euo pipefail

root=${1:?usage: check_configuration.sh SOURCE_ROOT [DOC]}
doc=${2:-$root/docs/configuration.md}
[ -d "$root/lib" ] && [ -d "$root/cli" ] || { echo "check_configuration: no lib/ and cli/ under $root"; exit 1; }
[ -f "$doc" ] || { echo "check_configuration: no $doc"; exit 1; }

vars=$(grep -rhoE --include='*.c' --include='*.h' '"GRYPHGEN_[A-Z0-9_]+"' "$root/lib" "$root/cli" \
       | tr -d '"' | sort -u)
[ -n "$vars" ] || { echo "check_configuration: found no GRYPHGEN_ variables (wrong root?)"; exit 1; }
missing=0
n=0
for v in $vars; do
    n=$((n + 1))
    if ! grep -qF -- "\`$v\`" "$doc"; then
        echo "missing from $(basename "$doc"): $v (read in $(grep -rlF --include='*.c' "\"$v\"" "$root/lib" "$root/cli" | sed "s|^$root/||" | tr '\n' ' '))"
        missing=$((missing + 1))
    fi
done
if [ "$missing" -ne 0 ]; then
    echo "check_configuration: $missing of $n variables are not in the doc"
    exit 1
fi
echo "ok: $n GRYPHGEN_ variables, each in $(basename "$doc")"

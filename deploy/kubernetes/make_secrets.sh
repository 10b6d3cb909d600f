#!/bin/sh
# make_secrets.sh - makes the grid's CURVE key pairs with `gryphgen keygen` (server, worker,
# scaler) and an HTTP token, and prints the Secret gryphgen-keys that gryphgen.yaml mounts
# (server.key, server.pub, worker.key, scaler.key, authorized_keys, http_token). Nothing is
# written outside a temporary directory, which is removed. Usage:
#   make_secrets.sh [GRYPHGEN] | kubectl apply -n NS -f -
set -eu
gg=${1:-gryphgen}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for name in server worker scaler; do
    "$gg" keygen --out "$dir/$name" >/dev/null 2>&1
done
pub() { sed -n 's/^public: //p' "$dir/$1.pub"; }
printf 'worker %s workers\nadmin %s scaler\n' "$(pub worker)" "$(pub scaler)" \
    > "$dir/authorized_keys"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/http_token"
b64() { base64 -w0 < "$1"; }
cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: gryphgen-keys
type: Opaque
data:
  server.key: $(b64 "$dir/server.key")
  server.pub: $(b64 "$dir/server.pub")
  worker.key: $(b64 "$dir/worker.key")
  scaler.key: $(b64 "$dir/scaler.key")
  authorized_keys: $(b64 "$dir/authorized_keys")
  http_token: $(b64 "$dir/http_token")
YAML

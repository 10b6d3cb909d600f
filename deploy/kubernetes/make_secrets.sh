#!/bin/sh
# make_secrets.sh - makes the grid's CURVE key pairs with `gryphgen keygen` (server, worker,
# scaler), an HTTP token and a self-signed certificate for serve's HTTPS (openssl), and prints
# the Secret gryphgen-keys that gryphgen.yaml mounts (server.key, server.pub, worker.key,
# scaler.key, authorized_keys, http_token, http.crt, http.key). Nothing is
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
# serve's REST API listens beyond loopback only over HTTPS: a self-signed certificate for
# the Service's names (replace it with one of the cluster's CA where clients check it).
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=gryphgen-serve \
    -addext "subjectAltName=DNS:gryphgen-serve,DNS:gryphgen-serve-0.gryphgen-serve,DNS:localhost" \
    -keyout "$dir/http.key" -out "$dir/http.crt" >/dev/null 2>&1
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
  http.crt: $(b64 "$dir/http.crt")
  http.key: $(b64 "$dir/http.key")
YAML

#!/usr/bin/env bash
# Run a command with a private moto server on a free loopback port.
#
#   scripts/with-moto.sh cargo test ...
#
# Exports AWS_ENDPOINT_URL (the SDK's standard variable), dummy credentials and a region, and
# stops moto when the command ends, whatever way it ends. moto binds 127.0.0.1 only.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=${MOTO_LOG:-$here/target/moto-$port.log}
mkdir -p "$(dirname "$log")"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
  if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  kill -0 $moto_pid 2>/dev/null || { echo "moto server failed to start; see $log" >&2; exit 1; }
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_EC2_METADATA_DISABLED=true
export PATH="$venv/bin:$PATH"
echo "moto server at $AWS_ENDPOINT_URL (log: $log)" >&2
set +e
"$@"
rc=$?
exit $rc

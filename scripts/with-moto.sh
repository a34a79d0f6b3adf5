#!/usr/bin/env bash
# Run a command with private moto servers on free loopback ports.
#
#   scripts/with-moto.sh cargo test ...
#   MOTO_SERVERS=2 scripts/with-moto.sh cargo test ...   # make chaos: one per core
#
# Exports AWS_ENDPOINT_URL (the SDK's standard variable, the first server), SPOTSWAP_MOTO_URLS
# (every server, comma-separated: tests that spread load across them), dummy credentials and a
# region, and stops the servers when the command ends, whatever way it ends. moto binds
# 127.0.0.1 only. One moto server is single-threaded Python; a second one lets a load test use
# a second core.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$here/.venv}
servers=${MOTO_SERVERS:-1}
pids=()
urls=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 "$servers"); do
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  log=$here/target/moto-$port.log
  if [ -n "${MOTO_LOG:-}" ]; then log=$MOTO_LOG; [ "$servers" -gt 1 ] && log=$MOTO_LOG.$port; fi
  mkdir -p "$(dirname "$log")"
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      break
    fi
    kill -0 "$pid" 2>/dev/null || { echo "moto server failed to start; see $log" >&2; exit 1; }
    sleep 0.1
  done
  urls+=("http://127.0.0.1:$port")
  echo "moto server at http://127.0.0.1:$port (log: $log)" >&2
done
export AWS_ENDPOINT_URL="${urls[0]}"
SPOTSWAP_MOTO_URLS=$(IFS=,; echo "${urls[*]}")
export SPOTSWAP_MOTO_URLS
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_EC2_METADATA_DISABLED=true
export PATH="$venv/bin:$PATH"
set +e
"$@"
rc=$?
exit $rc

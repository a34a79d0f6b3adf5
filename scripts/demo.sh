#!/usr/bin/env bash
# `make demo`: runs inside scripts/with-moto.sh, which provides AWS_ENDPOINT_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
spotswap=${SPOTSWAP_BIN:-target/debug/spotswap}
export SPOTSWAP_PRICE_FILE=${SPOTSWAP_PRICE_FILE:-prices/sample-on-demand.json}
export AWS_REGION=us-east-1

"$venv/bin/python" scripts/demo_fleet.py seed
"$venv/bin/python" scripts/demo_fleet.py summary "before"

echo; echo "== spotswap plan (dry run: zero mutating calls)"
"$spotswap" plan

for cycle in $(seq 1 15); do
  echo; echo "== spotswap rebalance, cycle $cycle"
  out=$("$spotswap" rebalance)
  echo "$out"
  if grep -q "^0 actions, 0 swaps waiting, 0 mutating API calls" <<<"$out"; then
    echo "converged: this cycle changed nothing"
    break
  fi
done

"$venv/bin/python" scripts/demo_fleet.py summary "after"

echo; echo "== a spot interruption warning for one of web's spot instances: spotswap handle-event -"
"$venv/bin/python" scripts/demo_fleet.py warning web \
  | "$spotswap" handle-event - \
  | "$venv/bin/python" scripts/demo_fleet.py decisions
"$venv/bin/python" scripts/demo_fleet.py summary "after the interruption: web still has 4 InService (the group replaced the detached instance at once, on-demand)"

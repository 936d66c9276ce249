#!/usr/bin/env bash
# Two relays as one router: a Redis and two relay nodes on this machine, then demo.py (a
# callee and a subscriber on node 2, a caller and a publisher on node 1). Everything it
# started is stopped when it ends.
#
#   bash examples/cluster/run.sh
#
# Ports: REDIS_PORT (6390), PORT1 (8080), PORT2 (8081); PYTHON: the interpreter with
# promisifier installed (.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-.venv/bin/python}
redis_port=${REDIS_PORT:-6390}
port1=${PORT1:-8080}
port2=${PORT2:-8081}
redis_url="redis://127.0.0.1:$redis_port/0"

dir=$(mktemp -d)
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# a Redis of its own, without persistence
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no >"$dir/redis.log" &
pids+=($!)
# two relays sharing it (each a node named host:pid; [cluster] in a config file names them)
"$python" -m promisifier relay --endpoint "tcp:$port1:interface=127.0.0.1" --cluster "$redis_url" >"$dir/node1.log" 2>&1 &
pids+=($!)
"$python" -m promisifier relay --endpoint "tcp:$port2:interface=127.0.0.1" --cluster "$redis_url" >"$dir/node2.log" 2>&1 &
pids+=($!)

"$python" examples/cluster/demo.py --node1 "ws://127.0.0.1:$port1/ws" --node2 "ws://127.0.0.1:$port2/ws"

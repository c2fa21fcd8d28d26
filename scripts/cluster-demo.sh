#!/usr/bin/env bash
# A KOMI RTC cluster on this one machine, to see it before buying machines: Redis on
# loopback and two nodes (ports 8001 and 8002, each with its own demo camera) sharing one
# SQLite history. Ctrl-C stops all of it.
#   bash scripts/cluster-demo.sh            then open the monitor link it prints
#   PORT=9001 bash scripts/cluster-demo.sh  the nodes on 9001 and 9002
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! command -v redis-server >/dev/null; then
  echo "cluster-demo: installing redis-server"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -qq redis-server </dev/null >/dev/null
  else sudo apt-get install -y -qq redis-server </dev/null >/dev/null; fi
fi

first=${PORT:-8001}
second=$((first + 1))
redis_port=$((first + 5378))  # beside the nodes, not Redis's usual 6379
work=$(mktemp -d "${TMPDIR:-/tmp}/komi-cluster-demo.XXXXXX")
pids=()  # the nodes
redis_pid=
stop() {
  trap - INT TERM EXIT
  echo "cluster-demo: stopping"
  # the nodes first, Redis last: a node leaves the cluster through Redis as it stops
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$redis_pid" ] && { kill -TERM "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap stop INT TERM EXIT

# its own session: Ctrl-C in the terminal reaches the nodes, and Redis only after them
setsid redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
export KOMI_ADMIN_TOKEN=${KOMI_ADMIN_TOKEN:-$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(32))')}
export KOMI_REDIS="redis://127.0.0.1:$redis_port/0"
export KOMI_DB="sqlite:///$work/history.sqlite3"  # one history for both nodes
export KOMI_HOST=127.0.0.1 KOMI_WORKERS=1 KOMI_DEMO=1
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1  # polling a starting Redis
done

for port in "$first" "$second"; do
  .venv/bin/python -m komi_rtc.server --port "$port" --node-id "node$port" \
    --public-url "http://127.0.0.1:$port" --state-dir "$work/state-$port" \
    >"$work/node$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 600); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "cluster-demo: node on port $port did not start:" >&2
      tail -5 "$work/node$port.log" >&2
      exit 1
    fi
    sleep 0.2  # polling a starting node
  done
done

.venv/bin/python -m komi_rtc.server links --port "$first" --state-dir "$work/state-$first" |
  sed -n '1,2p'
cat <<EOF
cluster-demo: two nodes up (ports $first and $second) with Redis on $redis_port; each streams
its own demo camera; they listen on this machine only (127.0.0.1). The monitor shows both;
/cluster lists the nodes (the demo's admin token is $KOMI_ADMIN_TOKEN):
  curl -H "Authorization: Bearer $KOMI_ADMIN_TOKEN" http://127.0.0.1:$first/cluster
Logs: $work/node$first.log, $work/node$second.log. Ctrl-C stops everything.
EOF
wait "${pids[0]}"

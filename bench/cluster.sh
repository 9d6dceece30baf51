#!/usr/bin/env bash
# The cluster runs of issue 8: NODES fawkes nodes on this machine, one PostgreSQL database and
# one bus, holding CONNECTIONS joined connections between them (one shard process of the bench
# per node, since one process may hold only about 20,000 files here). Measures memory per
# connection and idle CPU over all nodes, then the time until a comment posted on one node has
# reached every subscriber on all of them. JSON in $OUT.
#
#   cargo build --release -p fawkes -p fawkes-bench && bash bench/cluster.sh
#   NODES=2 CONNECTIONS=2000 IDLE_SECONDS=5 bash bench/cluster.sh    # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-$PWD/target/release}"
FAWKES_BIN="${FAWKES_BIN:-$BIN/fawkes}"
BENCH_BIN="${BENCH_BIN:-$BIN/fawkes-bench}"
OUT="${OUT:-bench/results/full}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432}"
NODES="${NODES:-5}"
CONNECTIONS="${CONNECTIONS:-95000}"
IDLE_SECONDS="${IDLE_SECONDS:-300}"
REPEATS="${REPEATS:-20}"
# redis://…, nats://… or postgres (LISTEN/NOTIFY on the database).
BUS="${BUS:-redis://127.0.0.1:6379}"
FIRST_PORT="${FIRST_PORT:-4001}"
mkdir -p "$OUT"
scratch=$(mktemp -d)
pids=()
stop_nodes() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop_nodes; rm -rf "$scratch"' EXIT

psql "$PG_ADMIN/postgres" -qc 'DROP DATABASE IF EXISTS fawkes_cluster_bench WITH (FORCE)' \
  -c 'CREATE DATABASE fawkes_cluster_bench'
export FAWKES_DATABASE_URL="$PG_ADMIN/fawkes_cluster_bench"
export FAWKES_PUBSUB="$BUS" FAWKES_CLUSTER_NAME="bench_$$"
# Every node must verify the tokens the others issued.
export FAWKES_SECRET_KEY="cluster-bench-secret-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# The load comes from one user and one address: the rate limits are off for the run.
export FAWKES_LOG__LEVEL=warn FAWKES_RATE_LIMIT__WRITES=0 FAWKES_RATE_LIMIT__AUTH_ATTEMPTS=0 \
  FAWKES_SOCKET__EVENTS_PER_SECOND=0
"$FAWKES_BIN" migrate >"$scratch/migrate.log" 2>&1 || { cat "$scratch/migrate.log" >&2; exit 1; }

urls=()
for i in $(seq 1 "$NODES"); do
  port=$((FIRST_PORT + i - 1))
  mkdir -p "$scratch/node$i"
  (
    cd "$scratch/node$i"
    FAWKES_NODE_NAME="bench@node$i" FAWKES_AUTO_MIGRATE=false \
      exec "$FAWKES_BIN" --bind "127.0.0.1:$port" >"$scratch/node$i/server.log" 2>&1
  ) &
  pids+=($!)
  urls+=("http://127.0.0.1:$port")
done
for i in "${!urls[@]}"; do
  for _ in $(seq 100); do
    curl -fsS "${urls[$i]}/ready" >/dev/null 2>&1 && continue 2
    sleep 0.1
  done
  echo "node $((i + 1)) did not become ready; its log:" >&2
  cat "$scratch/node$((i + 1))/server.log" >&2
  exit 1
done

echo "== cluster: $NODES nodes, $CONNECTIONS connections, idle ${IDLE_SECONDS}s, $REPEATS broadcasts over $BUS"
"$BENCH_BIN" cluster --nodes "$(IFS=,; echo "${urls[*]}")" --node-pids "$(IFS=,; echo "${pids[*]}")" \
  --connections "$CONNECTIONS" --seconds "$IDLE_SECONDS" --repeats "$REPEATS" \
  --label "${BUS%%:*}" --out "$OUT"

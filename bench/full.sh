#!/usr/bin/env bash
# The full-size runs of issue 8's targets on one node, one after another, each on a fresh server:
# idle and fan-out at 19,000 connections (with the Node peer, and the kernel's floor), chat at 2,000 messages/s and
# presence churn on SQLite and PostgreSQL, and REST under wrk. Prints each table and writes the
# JSON to bench/results/full/. Takes about 25 minutes; run it on a quiet machine.
#
#   cargo build --release -p fawkes -p fawkes-bench && bash bench/full.sh
#
# Servers run with the rate limits off (they would refuse the load generator's single user) and
# warn-level logs; everything else is the default configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-$PWD/target/release}"
OUT="${OUT:-bench/results/full}"
PG_ADMIN="${PG_ADMIN:-postgres://postgres@127.0.0.1:5432}"
IDLE_SECONDS="${IDLE_SECONDS:-300}"
CONNECTIONS="${CONNECTIONS:-19000}"
# Which parts to run: any of idle, fanout, db (chat, presence and REST on both databases).
PARTS="${PARTS:-idle fanout db}"
mkdir -p "$OUT"
scratch=$(mktemp -d)
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$scratch"' EXIT

# start_server LABEL [DATABASE_URL]: a fresh server on 127.0.0.1:4000.
start_server() {
  stop_server
  local dir="$scratch/$1"
  rm -rf "$dir" && mkdir -p "$dir"
  (
    cd "$dir"
    export FAWKES_LOG__LEVEL=warn FAWKES_RATE_LIMIT__WRITES=0 FAWKES_RATE_LIMIT__AUTH_ATTEMPTS=0 \
      FAWKES_SOCKET__EVENTS_PER_SECOND=0
    if [[ -n "${2:-}" ]]; then export FAWKES_DATABASE_URL="$2"; fi
    exec "$BIN/fawkes" --bind 127.0.0.1:4000 >"$dir/server.log" 2>&1
  ) &
  server_pid=$!
  for _ in $(seq 100); do
    curl -fsS http://127.0.0.1:4000/health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "the server did not start; its log:" >&2
  cat "$dir/server.log" >&2
  exit 1
}

fresh_postgres() {
  psql "$PG_ADMIN/postgres" -qc 'DROP DATABASE IF EXISTS fawkes_bench WITH (FORCE)' -c 'CREATE DATABASE fawkes_bench'
  echo "$PG_ADMIN/fawkes_bench"
}

bench() { "$BIN/fawkes-bench" "$@" --server-pid "$server_pid" --out "$OUT"; }

part() { [[ " $PARTS " == *" $1 "* ]]; }

if part idle; then
  echo "== idle: $CONNECTIONS connections for ${IDLE_SECONDS}s, then the peer"
  start_server idle
  bench idle --connections "$CONNECTIONS" --seconds "$IDLE_SECONDS" --peer
fi
if part fanout; then
  echo "== fan-out: $CONNECTIONS subscribers, 20 broadcasts, then the peer"
  start_server fanout
  bench fanout --connections "$CONNECTIONS" --repeats 20 --peer
  stop_server
  # Both ends of each connection live in one process: 9,000 is the most its file limit allows.
  echo "== the kernel's floor: one 300-byte write to each of 9,000 loopback connections"
  "$BIN/fawkes-bench" floor --connections 9000 --frame-bytes 300 --out "$OUT"
fi
part db || exit 0
for db in sqlite postgres; do
  url=""
  [[ $db == postgres ]] && url=$(fresh_postgres)
  echo "== chat on $db: 200 rooms x 10 members, 1 message/s each, 60 s"
  start_server "chat-$db" "$url"
  bench chat --label "$db" --rooms 200 --members 10 --rate 1 --seconds 60
  [[ $db == postgres ]] && url=$(fresh_postgres)
  echo "== presence on $db: 1,000 observers, 100 churners, 50 joins/s, 60 s"
  start_server "presence-$db" "$url"
  bench presence --label "$db" --observers 1000 --churners 100 --rate 50 --hold 1 --seconds 60
  [[ $db == postgres ]] && url=$(fresh_postgres)
  echo "== REST on $db"
  start_server "rest-$db" "$url"
  bash bench/rest.sh --server-pid "$server_pid" --label "$db" --seconds 10 --connections 50 --threads 2 --out "$OUT"
done
echo "results in $OUT"

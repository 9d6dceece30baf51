#!/usr/bin/env bash
# Smoke test of the benchmark harness, for CI: a throw-away server on SQLite and every scenario
# at a tiny size (idle and fanout with the Node peer too, chat, presence, rest, jobs, floor), and a
# two-node cluster on the local PostgreSQL and Redis (bench/cluster.sh). It checks that each one
# runs and writes its JSON; it asserts nothing about timings.
#
#   bench/smoke.sh      (uses target/release/{fawkes,fawkes-bench}; FAWKES_BIN / BENCH_BIN override)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fawkes=${FAWKES_BIN:-$root/target/release/fawkes}
bench=${BENCH_BIN:-$root/target/release/fawkes-bench}
port=${SMOKE_PORT:-4077}
url=http://127.0.0.1:$port
out=$(mktemp -d)
data=$(mktemp -d)

(cd "$data" && exec env FAWKES_LOG__LEVEL=warn "$fawkes" --bind "127.0.0.1:$port") &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data" "$out"' EXIT
for _ in $(seq 120); do
  curl -sf --max-time 2 "$url/health" >/dev/null && break
  sleep 0.5
done
curl -sf --max-time 2 "$url/health" >/dev/null || { echo "the server did not start" >&2; exit 1; }

cd "$root"
run() { timeout 300 "$bench" --url "$url" --server-pid "$server" --out "$out" "$@"; }
run idle --connections 100 --seconds 2 --peer --peer-port $((port + 1))
run fanout --connections 100 --repeats 3 --peer --peer-port $((port + 1))
run chat --rooms 3 --members 3 --rate 2 --seconds 2
run presence --observers 10 --churners 3 --rate 3 --hold 0.3 --seconds 2
timeout 300 bench/rest.sh --url "$url" --server-pid "$server" --seconds 2 --connections 4 --out "$out"
# The job queue needs no server: a scratch SQLite file of its own.
run jobs --database-url "sqlite://$data/jobs.db" --count 50 --concurrency 4 --label smoke
run floor --connections 100 --frame-bytes 300
NODES=2 CONNECTIONS=100 IDLE_SECONDS=2 REPEATS=3 FIRST_PORT=$((port + 2)) OUT="$out" \
  FAWKES_BIN="$fawkes" BENCH_BIN="$bench" timeout 300 bench/cluster.sh

for file in idle-vs-peer-100 fanout-vs-peer-100 chat-3x3 presence-10 rest jobs-smoke floor-100 cluster-redis-2x100; do
  python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out/$file.json" ||
    { echo "missing or invalid $file.json" >&2; exit 1; }
done
echo "bench smoke: every scenario ran"

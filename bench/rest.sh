#!/usr/bin/env bash
# REST scenario: authenticated GET /api/v1/rooms/lobby/messages?limit=50 and
# POST /api/v1/rooms/lobby/messages under wrk; requests/s, latency percentiles and the
# server's CPU (from /proc of --server-pid). Prints a table, writes bench/results/rest[-LABEL].json.
#
#   bench/rest.sh --server-pid PID [--url http://127.0.0.1:4000] [--label sqlite]
#                 [--seconds 10] [--connections 50] [--threads 2]
set -euo pipefail

url=http://127.0.0.1:4000 pid= label= seconds=10 connections=50 threads=2
out=bench/results
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url=$2; shift 2 ;;
    --server-pid) pid=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$url" in
  http://127.*|http://localhost*) ;;
  *) echo "rest.sh only targets servers on this machine" >&2; exit 2 ;;
esac
[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || { echo "--server-pid PID of a running server is required" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
here=$(cd "$(dirname "$0")" && pwd)
ulimit -n "$(ulimit -Hn)"

# The server's CPU ticks (utime + stime, USER_HZ = 100).
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat"; }

# A user of its own (Argon2id once), and 50 messages so the GET returns a full page.
name="wrk$$"
token=$(curl -sf --max-time 60 -X POST "$url/api/v1/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$name@bench.invalid\",\"username\":\"$name\",\"password\":\"bench-password-123\"}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for i in $(seq 50); do
  curl -sf --max-time 10 -o /dev/null -X POST "$url/api/v1/rooms/lobby/messages" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' -d "{\"body\":\"seed $i\"}"
done

results=()
for mode in get post; do
  case $mode in
    get) path="/api/v1/rooms/lobby/messages?limit=50" ;;
    post) path="/api/v1/rooms/lobby/messages" ;;
  esac
  before=$(ticks)
  line=$(TOKEN=$token MODE=$mode timeout $((seconds + 60)) \
    wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$here/rest.lua" "$url$path" | grep '^RESULT ')
  after=$(ticks)
  results+=("$(python3 -c 'import json,sys; r=json.loads(sys.argv[1][7:]); r["server_cpu_seconds"]=(int(sys.argv[3])-int(sys.argv[2]))/100; r["server_cpu_fraction"]=r["server_cpu_seconds"]/r["seconds"]; print(json.dumps(r))' "$line" "$before" "$after")")
done

mkdir -p "$out"
file="$out/rest${label:+-$label}.json"
python3 - "$file" "$label" "$connections" "$threads" "${results[@]}" <<'PY'
import json, sys
file, label, connections, threads, *runs = sys.argv[1:]
runs = [json.loads(r) for r in runs]
result = {"scenario": "rest", "label": label, "connections": int(connections), "threads": int(threads),
          **{r["mode"]: r for r in runs}}
with open(file, "w") as f:
    json.dump(result, f, indent=2)
print("scenario  label     request                       conns  req/s     p50_ms  p99_ms  p99.9_ms  errors  server_cpu_%")
for r in runs:
    request = "GET messages?limit=50" if r["mode"] == "get" else "POST message"
    errors = sum(r["errors"].values())
    l = r["latency_ms"]
    print(f"rest      {label:<8}  {request:<28}  {connections:>5}  {r['requests_per_second']:>8.0f}  {l['p50']:>6.2f}  {l['p99']:>6.2f}  {l['p999']:>8.2f}  {errors:>6}  {100 * r['server_cpu_fraction']:>12.1f}")
print(f"wrote {file}")
PY

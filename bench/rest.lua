-- wrk script for bench/rest.sh: an authenticated GET of the lobby's messages or POST of one.
-- Environment: TOKEN (an access token), MODE (get | post).
-- done() prints one line `RESULT {json}` that rest.sh collects.
local mode = os.getenv("MODE") or "get"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
if mode == "post" then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"body":"wrk bench message"}'
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    'RESULT {"mode":"%s","requests":%d,"seconds":%.3f,"requests_per_second":%.1f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"p999":%.3f,"max":%.3f}}\n',
    mode, summary.requests, seconds, summary.requests / seconds,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1e3, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency:percentile(99.9) / 1e3, latency.max / 1e3))
end

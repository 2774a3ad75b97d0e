-- wrk reporter for bench/harness.ts: prints wrk's summary as one JSON line
-- ("WRK_JSON {...}") after the human-readable --latency output. Only done()
-- is defined, so wrk stays on its fast path (no per-request Lua).
-- errors.status counts responses with status > 399 (wrk's "Non-2xx or 3xx").
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"mean":%.1f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

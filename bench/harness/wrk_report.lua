-- Makes wrk print one machine-readable line at the end, so the harness never parses wrk's
-- human output (whose units change with magnitude). Latencies are in microseconds.
-- With the script argument "count-status" it also counts responses outside 200..299; that needs
-- a Lua call per response, so it is only asked for where errors are the measurement.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  if args[1] == "count-status" then
    -- Defined here, not at top level: wrk only parses responses for Lua when this exists.
    response = function(status, headers, body)
      if status < 200 or status > 299 then
        non2xx = non2xx + 1
      end
    end
  end
end

function done(summary, latency, requests)
  local non2xx = 0
  for _, thread in ipairs(threads) do
    non2xx = non2xx + (thread:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"bytes":%d,"duration_us":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, non2xx, latency:percentile(50), latency:percentile(99), latency.mean))
end

-- Shared by the tools/call scripts: a response check and a machine-readable summary.
-- A call counts as an error unless it answered 200 with a JSON-RPC result that is not an error
-- and carries the backend's pet (proof the backend was called).

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

bad_status = 0
bad_body = 0
ok = 0

function check(status, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif body == nil or not body:find('"result"', 1, true) or not body:find('Rex', 1, true)
      or body:find('"isError"%s*:%s*true') or body:find('"error"%s*:') then
    bad_body = bad_body + 1
  else
    ok = ok + 1
  end
end

function response(status, headers, body)
  check(status, body)
end

function done(summary, latency, requests)
  local bs, bb, good = 0, 0, 0
  for _, t in ipairs(threads) do
    bs = bs + (t:get("bad_status") or 0)
    bb = bb + (t:get("bad_body") or 0)
    good = good + (t:get("ok") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"bad_status":%d,"bad_body":%d,"ok":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    bs, bb, good, latency.mean, latency.max, latency:percentile(50), latency:percentile(75),
    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))
end

-- JSON-RPC body of one tools/call getPet, with optional extra params text (e.g. _meta).
function call_body(extra)
  return '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getPet","arguments":{"petId":1}'
    .. (extra or '') .. '}}'
end

-- Request headers plus the consumer credential, when the harness passes one (BENCH_AUTH_HEADER, BENCH_AUTH_VALUE).
function with_auth(headers)
  local name = os.getenv("BENCH_AUTH_HEADER")
  if name and name ~= "" then
    headers[name] = os.getenv("BENCH_AUTH_VALUE")
  end
  return headers
end

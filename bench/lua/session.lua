-- Streamable HTTP with sessions (2025-11-25): tools/call round-robin over sessions initialized beforehand.
-- BENCH_SESSIONS: comma-separated Mcp-Session-Id values (the harness initializes one per connection).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local requests = {}
local index = 0

function init(args)
  local path = os.getenv("BENCH_PATH")
  local body = call_body()
  for sid in string.gmatch(os.getenv("BENCH_SESSIONS") or "", "[^,]+") do
    table.insert(requests, wrk.format("POST", path, with_auth({
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json, text/event-stream",
      ["MCP-Protocol-Version"] = "2025-11-25",
      ["Mcp-Session-Id"] = sid,
    }), body))
  end
  if #requests == 0 then error("BENCH_SESSIONS is empty") end
  index = tid or 0
end

function request()
  index = index % #requests + 1
  return requests[index]
end

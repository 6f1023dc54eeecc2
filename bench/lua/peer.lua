-- The peer's stateless JSON mode (FastMCP http_app(stateless_http=True, json_response=True)): one POST per call.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local req

function init(args)
  req = wrk.format("POST", os.getenv("BENCH_PATH"), {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2025-11-25",
  }, call_body())
end

function request()
  return req
end

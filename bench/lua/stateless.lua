-- Streamable HTTP, stateless 2026-07-28: no initialize, no session; version, method and tool in headers and _meta.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local req

function init(args)
  req = wrk.format("POST", os.getenv("BENCH_PATH"), with_auth({
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = "tools/call",
    ["Mcp-Name"] = "getPet",
  }), call_body(',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",' ..
               '"io.modelcontextprotocol/clientCapabilities":{}}'))
end

function request()
  return req
end

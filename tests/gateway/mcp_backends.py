"""Real backend MCP servers for Direct Proxy tests: one MCP SDK server served over SSE and Streamable HTTP on 127.0.0.1."""
from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from mcp import types
from mcp.server.mcpserver import Context, MCPServer

from ..live import free_port

# What the backend saw, for tests that check what reached it (headers, log levels, subscriptions).
seen: dict[str, list] = {"authorization": [], "x-api-key": [], "levels": [], "subscribed": [], "query": [], "cancelled": []}


def build_backend(name: str = "weather") -> MCPServer:
    mcp = MCPServer(name, instructions=f"The {name} backend.")

    @mcp.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return f"echo: {text}"

    @mcp.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @mcp.tool(description="A tool the gateway may hide.")
    def secret() -> str:
        return "the secret"

    @mcp.tool(description="Reports progress three times, then answers.")
    async def slow(steps: int, ctx: Context) -> str:
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
        return f"done after {steps} steps"

    @mcp.tool(description="Asks the client's model for a completion.")
    async def sample(prompt: str, ctx: Context) -> str:
        result = await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))], max_tokens=20,
            related_request_id=ctx.request_context.request_id)
        return f"model said: {result.content.text}"

    @mcp.tool(description="Asks the user for a city.")
    async def ask(ctx: Context) -> str:
        answer = await ctx.session.elicit("Which city?", {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]})
        return f"{answer.action}: {(answer.content or {}).get('city')}"

    @mcp.tool(description="Lists the client's roots.")
    async def roots(ctx: Context) -> str:
        listed = await ctx.session.list_roots()
        return ", ".join(str(root.uri) for root in listed.roots)

    @mcp.tool(description="Logs a message and announces changed tools.")
    async def announce(ctx: Context) -> str:
        await ctx.info("announcing")
        await ctx.session.send_tool_list_changed()
        await ctx.session.send_resource_updated("weather://today")
        return "announced"

    @mcp.tool(description="Takes its time.")
    async def sleepy(seconds: float) -> str:
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            seen["cancelled"].append(seconds)
            raise
        return "woke up"

    @mcp.tool(description="Which credentials reached the backend.")
    def whoami(ctx: Context) -> str:
        request = ctx.request_context.request
        headers = request.headers if request is not None else {}
        return f"authorization={headers.get('authorization', '')};x-api-key={headers.get('x-api-key', '')};" \
               f"query={request.url.query if request is not None else ''}"

    @mcp.resource("weather://today", description="Today's weather.", mime_type="text/plain")
    def today() -> str:
        return "sunny"

    @mcp.resource("weather://city/{city}", description="A city's weather.")
    def city(city: str) -> str:
        return f"rain in {city}"

    @mcp.prompt(description="A forecast request.")
    def forecast(city: str) -> str:
        return f"Give the forecast for {city}."

    @mcp.completion()
    async def complete(ref, argument, context):
        cities = ["Berlin", "Bern", "Boston"]
        return types.Completion(values=[c for c in cities if c.startswith(argument.value)])

    async def subscribe(ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        seen["subscribed"].append(str(params.uri))
        return types.EmptyResult()

    async def unsubscribe(ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        seen["subscribed"].remove(str(params.uri))
        return types.EmptyResult()

    async def set_level(ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        seen["levels"].append(params.level)
        return types.EmptyResult()

    low = mcp._lowlevel_server
    low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return mcp


class Backend:
    """A backend MCP server in a thread of the test process; `url` + `path` is where it speaks MCP."""

    def __init__(self, app, path: str, port: int | None = None):
        self.port = port or free_port()
        self.path = path
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                     lifespan="on", timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> "Backend":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the backend MCP server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def streamable_backend(name: str = "weather", port: int | None = None) -> Backend:
    return Backend(build_backend(name).streamable_http_app(streamable_http_path="/test/mcp"), "/test/mcp",
                   port).start()


def sse_backend(name: str = "weather") -> Backend:
    return Backend(build_backend(name).sse_app(sse_path="/test/sse", message_path="/test/messages/"),
                   "/test/sse").start()

"""An MCP SDK server with the tools, resources and prompts the conformance suite's server scenarios call for."""
from __future__ import annotations

import asyncio
import base64

from mcp import types
from mcp.server.mcpserver import Context, MCPServer

# A 1x1 red pixel, and a few samples of silence.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc000000301"
    "0100c9fe92ef0000000049454e44ae426082")).decode()
WAV = base64.b64encode(b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00@\x1f\x00\x00@\x1f\x00\x00"
                       b"\x01\x00\x08\x00data\x00\x00\x00\x00").decode()


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def build() -> MCPServer:
    mcp = MCPServer("conformance-fixture")

    @mcp.tool(description="A simple text answer.")
    def test_simple_text() -> types.CallToolResult:
        return types.CallToolResult(content=[text("This is a simple text response for testing.")])

    @mcp.tool(description="An image.")
    def test_image_content() -> types.CallToolResult:
        return types.CallToolResult(content=[types.ImageContent(type="image", data=PNG, mime_type="image/png")])

    @mcp.tool(description="Audio.")
    def test_audio_content() -> types.CallToolResult:
        return types.CallToolResult(content=[types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")])

    @mcp.tool(description="An embedded resource.")
    def test_embedded_resource() -> types.CallToolResult:
        return types.CallToolResult(content=[types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."))])

    @mcp.tool(description="Text, image and resource.")
    def test_multiple_content_types() -> types.CallToolResult:
        return types.CallToolResult(content=[
            text("Multiple content types test:"),
            types.ImageContent(type="image", data=PNG, mime_type="image/png"),
            types.EmbeddedResource(type="resource", resource=types.TextResourceContents(
                uri="test://mixed-content-resource", mime_type="application/json", text='{"test":"data","value":123}'))])

    @mcp.tool(description="Logs three times.")
    async def test_tool_with_logging(ctx: Context) -> str:
        for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await ctx.info(message)
            await asyncio.sleep(0.05)
        return "Logging test completed"

    @mcp.tool(description="Always fails.")
    def test_error_handling() -> types.CallToolResult:
        return types.CallToolResult(content=[text("This tool intentionally returns an error for testing")],
                                    is_error=True)

    @mcp.tool(description="Reports progress.")
    async def test_tool_with_progress(ctx: Context) -> str:
        for value in (0, 50, 100):
            await ctx.report_progress(value, 100)
            await asyncio.sleep(0.05)
        return "Progress test completed"

    @mcp.tool(description="Asks the client's model.")
    async def test_sampling(prompt: str, ctx: Context) -> str:
        result = await ctx.session.create_message([types.SamplingMessage(role="user", content=text(prompt))],
                                                  max_tokens=100, related_request_id=ctx.request_context.request_id)
        return f"LLM response: {result.content.text}"

    @mcp.tool(description="Asks the user.")
    async def test_elicitation(message: str, ctx: Context) -> str:
        answer = await ctx.session.elicit(message, {"type": "object", "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"}}, "required": ["username", "email"]},
            related_request_id=ctx.request_context.request_id)
        return f"User response: action={answer.action}, content={answer.content}"

    @mcp.resource("test://static-text", mime_type="text/plain", description="Static text.")
    def static_text() -> str:
        return "This is the content of the static text resource."

    @mcp.resource("test://static-binary", mime_type="image/png", description="Static binary.")
    def static_binary() -> bytes:
        return base64.b64decode(PNG)

    @mcp.resource("test://template/{id}/data", mime_type="application/json", description="A template.")
    def template(id: str) -> str:  # noqa: A002  (the template's parameter name)
        return '{"id":"%s","templateTest":true,"data":"Data for ID: %s"}' % (id, id)

    @mcp.prompt(description="A simple prompt.")
    def test_simple_prompt() -> list[dict]:
        return [{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}]

    @mcp.prompt(description="A prompt with arguments.")
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[dict]:
        return [{"role": "user", "content": {"type": "text",
                                             "text": f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"}}]

    @mcp.prompt(description="A prompt with an embedded resource.")
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[dict]:  # noqa: N803  (the suite's name)
        return [{"role": "user", "content": {"type": "resource", "resource": {
                    "uri": resourceUri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
                {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}}]

    @mcp.prompt(description="A prompt with an image.")
    def test_prompt_with_image() -> list[dict]:
        return [{"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
                {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}]

    @mcp.completion()
    async def complete(ref, argument, context):
        return types.Completion(values=["paris", "park", "party"])

    async def subscribe(ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    async def set_level(ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    low = mcp._lowlevel_server
    low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, subscribe)
    low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return mcp

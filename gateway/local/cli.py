"""Command line of the local stdio bridge: `mcp-gateway connect <endpoint>` and `mcp-gateway router`."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import signal
import sys
from urllib.parse import urlsplit

KEY_ENV = "MCP_GATEWAY_KEY"
URL_ENV = "MCP_GATEWAY_URL"
ROUTER_KEY_ENV = "MCP_GATEWAY_ROUTER_KEY"
ROUTER_PATH = "/market/router/mcp"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

DESCRIPTION = """\
A local stdio MCP server that relays everything to an MCP endpoint of the gateway, for AI clients (and laptops)
that only launch stdio servers. Put it in the client's mcpServers:

  {"command": "mcp-gateway", "args": ["connect", "https://gw.example.com/mcp-servers/petstore"],
   "env": {"MCP_GATEWAY_KEY": "mck_…"}}

stdout carries only the protocol (newline-delimited JSON-RPC); logs and errors go to stderr.
The key is read from the environment or the command line and never written anywhere.
HTTPS_PROXY, HTTP_PROXY and NO_PROXY are honoured for the connection to the gateway.
"""

EXIT_CODES = """\
exit status:
  0  the client closed stdin (or SIGTERM): the remote session was ended
  2  bad command line (a missing key for `router`, a URL that is not http(s))
  3  the gateway refused the consumer credential (401/403): stderr says which key and where it was sent
  4  the gateway could not be reached (or something in the way answered initialize with a bare 5xx)
  5  the gateway's egress policy refused the connection to the MCP server's backend
  6  the URL is not an MCP endpoint (neither Streamable HTTP nor HTTP+SSE answered there)
"""

CONNECT_HELP = """\
Relayed both ways, unchanged: requests, notifications and responses, the server's own requests (sampling,
elicitation, roots) and the client's answers, progress, logging, cancellation, list_changed and resource updates;
a GET stream carries what the server sends between requests. Answers may come as JSON or an event stream.

Transport: Streamable HTTP (Mcp-Session-Id and MCP-Protocol-Version headers kept); when the endpoint does not serve
it (404/405 on initialize), HTTP+SSE (2024-11-05) at <endpoint>/sse. A URL ending in /sse uses HTTP+SSE at once.

When the gateway ends the remote session (it expired, the gateway restarted), the next message opens a new one with
the client's own initialize, sends notifications/initialized, sets the logging level and resource subscriptions
again and is retried: the client never sees it.

The credential goes where the MCP server's Consumer Authentication reads it: Authorization: Bearer (default),
--header NAME, or --query NAME.
"""

ROUTER_HELP = f"""\
The market router's three tools over stdio: search_mcp_server, add_mcp_server and use_tool, for your market
router key (the console's Market → Router page issues it). A drop-in for `npx nacos-mcp-router` in mcpServers:

  {{"command": "mcp-gateway", "args": ["router"],
   "env": {{"{URL_ENV}": "https://gw.example.com", "{ROUTER_KEY_ENV}": "mck_…"}}}}

It relays to <url>{ROUTER_PATH} exactly as `connect` does.
"""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="how long to wait for a connection to the gateway (default: 10)")
    parser.add_argument("--max-message-bytes", type=int, default=DEFAULT_MAX_BYTES, metavar="BYTES",
                        help="the largest message relayed either way; a longer line from the client is answered "
                             f"with an error (default: {DEFAULT_MAX_BYTES})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more on stderr (-v: each renewed session and fallback, -vv: debugging)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only fatal errors on stderr")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="mcp-gateway", description=DESCRIPTION, epilog=EXIT_CODES,
                                     formatter_class=formatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{connect,router}")

    connect = commands.add_parser("connect", help="relay stdio to one MCP endpoint of the gateway",
                                  description=CONNECT_HELP, epilog=EXIT_CODES, formatter_class=formatter)
    connect.add_argument("endpoint", help="the endpoint as the MCP server's page shows it, e.g. "
                                          "https://gw.example.com/mcp-servers/petstore (or …/sse)")
    connect.add_argument("--key", help=f"the consumer credential: an API key (mck_…) or a JWT; default: ${KEY_ENV} "
                                       "(prefer the variable: arguments show in the process list)")
    where = connect.add_mutually_exclusive_group()
    where.add_argument("--header", metavar="NAME", help="send the credential in this header instead of "
                                                        "Authorization: Bearer")
    where.add_argument("--query", metavar="NAME", help="send the credential as this query parameter instead")
    connect.add_argument("--transport", choices=("auto", "streamable-http", "sse"), default="auto",
                         help="auto (default): Streamable HTTP, HTTP+SSE when that is all the endpoint serves")
    _common(connect)

    router = commands.add_parser("router", help="the market router's tools for your router key, over stdio",
                                 description=ROUTER_HELP, epilog=EXIT_CODES, formatter_class=formatter)
    router.add_argument("--url", help=f"the gateway's address (https://gw.example.com) or the router endpoint itself "
                                      f"(…{ROUTER_PATH}); default: ${URL_ENV}")
    router.add_argument("--key", help=f"your market router key; default: ${ROUTER_KEY_ENV} (else ${KEY_ENV})")
    _common(router)
    return parser


def _http_url(parser: argparse.ArgumentParser, url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        parser.error(f"{what} must be an http:// or https:// URL, not {url!r}")
    return url


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")  # an HTTP header name (RFC 9110 token)


def _checked_key(parser: argparse.ArgumentParser, key: str) -> str:
    key = key.strip()
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in key) or len(key) > 8192:
        parser.error("the key holds spaces or control characters (or is longer than 8192): copy it again")
    return key


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.ERROR if args.quiet else {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(stream=sys.stderr, level=level, format="mcp-gateway: %(message)s")
    if args.max_message_bytes < 1024:
        parser.error("--max-message-bytes must be at least 1024")

    from .relay import Credential  # aiohttp loads only once the command line is sound

    if args.command == "connect":
        url = _http_url(parser, args.endpoint, "the endpoint")
        key = _checked_key(parser, args.key if args.key is not None else os.environ.get(KEY_ENV, ""))
        if args.header and not _TOKEN.match(args.header):
            parser.error(f"--header {args.header!r} is not a header name")
        if args.query is not None and not args.query.strip():
            parser.error("--query needs the parameter's name")
        if args.header:
            credential = Credential(key, "header", args.header)
        elif args.query:
            credential = Credential(key, "query", args.query)
        else:
            credential = Credential(key)
        transport = args.transport
    else:
        base = args.url or os.environ.get(URL_ENV, "")
        if not base:
            parser.error(f"give the gateway's address with --url or {URL_ENV}")
        base = _http_url(parser, base.strip(), "the router URL").rstrip("/")
        url = base if urlsplit(base).path.endswith(ROUTER_PATH) else base + ROUTER_PATH
        key = args.key or os.environ.get(ROUTER_KEY_ENV, "") or os.environ.get(KEY_ENV, "")
        if not key.strip():
            parser.error(f"the market router needs your router key: {ROUTER_KEY_ENV} or --key (the console's "
                         "Market → Router page issues it)")
        credential = Credential(_checked_key(parser, key))
        transport = "streamable-http"  # the router endpoint speaks Streamable HTTP only
    try:
        return asyncio.run(_serve(url, credential, transport, args))
    except KeyboardInterrupt:
        return 130


async def _serve(url: str, credential, transport: str, args: argparse.Namespace) -> int:
    from .relay import Relay
    from .stdio import StdinLines, Stdout

    out = Stdout()
    relay = Relay(url=url, credential=credential, out=out, transport=transport,
                  connect_timeout=args.connect_timeout, max_bytes=args.max_message_bytes)
    lines = StdinLines(args.max_message_bytes)
    lines.start()
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, relay.stop)  # a clean stop still ends the remote session
    except (NotImplementedError, RuntimeError):
        pass
    try:
        return await relay.run(lines)
    finally:
        out.close()

"""The egress policy: decisions for every range (no connection made), and refusals on loopback aliases where a
listener's accept count proves that no connection reached the refused address."""
from __future__ import annotations

import asyncio
import html
import pickle
import socket
import subprocess
import threading

import aiohttp
import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from console import services
from gateway import egress
from gateway.backends import close_http_sessions, get_http_session
from gateway.executors.http_to_mcp import call_tool
from gateway.readmodel import ServerConfig, ToolConfig

from ..live import PYTHON, ROOT, start_live

ALLOW_HINT = "an operator can allow it with GATEWAY_EGRESS_ALLOW"
DENY_HINT = "an operator can remove it from GATEWAY_EGRESS_DENY"


class Listener:
    """A TCP listener on one loopback address: counts the connections it accepts, answers each with one HTTP
    response and closes it (so every call needs a new connection)."""

    def __init__(self, host: str = "127.0.0.1", *, port: int = 0, status: str = "200 OK",
                 body: bytes = b'{"ok": true}', headers: tuple[str, ...] = ()) -> None:
        self.host = host
        self.accepted = 0
        self._response = (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                          + "".join(f"{h}\r\n" for h in headers) + "Connection: close\r\n\r\n").encode() + body
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(self._response)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def listeners():
    opened: list[Listener] = []

    def listen(host: str = "127.0.0.1", **kwargs) -> Listener:
        listener = Listener(host, **kwargs)
        opened.append(listener)
        return listener

    yield listen
    for listener in opened:
        listener.close()


# ---------------------------------------------------------------- the decision function (nothing is connected)

DEFAULT_DENIED = [
    ("0.0.0.0", "unspecified address"),
    ("0.1.2.3", "'this network' address (0.0.0.0/8)"),
    ("10.1.2.3", "private address (RFC 1918)"),
    ("172.16.0.1", "private address (RFC 1918)"),
    ("172.31.255.254", "private address (RFC 1918)"),
    ("192.168.1.1", "private address (RFC 1918)"),
    ("100.64.0.1", "shared address space (CGNAT, 100.64.0.0/10)"),
    ("100.127.255.254", "shared address space (CGNAT, 100.64.0.0/10)"),
    ("127.0.0.1", "loopback address"),
    ("127.255.255.254", "loopback address"),
    ("169.254.169.254", "link-local address (169.254.0.0/16, where cloud metadata services live)"),
    ("192.0.0.8", "IETF protocol assignment (192.0.0.0/24)"),
    ("192.0.2.10", "documentation address (192.0.2.0/24)"),
    ("198.51.100.7", "documentation address (198.51.100.0/24)"),
    ("203.0.113.9", "documentation address (203.0.113.0/24)"),
    ("192.88.99.1", "6to4 relay anycast address (192.88.99.0/24)"),
    ("198.18.0.1", "benchmarking address (198.18.0.0/15)"),
    ("198.19.255.1", "benchmarking address (198.18.0.0/15)"),
    ("224.0.0.251", "multicast address"),
    ("239.255.255.250", "multicast address"),
    ("240.0.0.1", "reserved address (240.0.0.0/4)"),
    ("255.255.255.255", "broadcast address"),
    ("::", "unspecified address"),
    ("::1", "loopback address"),
    ("fc00::1", "unique local address (ULA, fc00::/7)"),
    ("fd12:3456::1", "unique local address (ULA, fc00::/7)"),
    ("fe80::1", "link-local address (fe80::/10)"),
    ("fe80::1%lo", "link-local address (fe80::/10)"),
    ("fec0::1", "site-local address (fec0::/10, deprecated)"),
    ("ff02::1", "multicast address"),
    ("2001:db8::1", "documentation address (2001:db8::/32)"),
    ("3fff::1", "documentation address (3fff::/20)"),
    ("2001::1", "Teredo tunnelling address (2001::/32)"),
    ("2001:2::1", "benchmarking address (2001:2::/48)"),
    ("100::1", "discard-only address (100::/64)"),
    ("64:ff9b:1::1", "local-use NAT64 address (64:ff9b:1::/48)"),
]


@pytest.mark.parametrize(("address", "reason"), DEFAULT_DENIED)
def test_default_denies_non_public_ranges(settings, address, reason):
    settings.GATEWAY_EGRESS_ALLOW = []
    assert egress.egress_decision(address) == egress.Decision(False, reason)


@pytest.mark.parametrize("address", ["1.1.1.1", "8.8.8.8", "93.184.215.14", "100.63.255.255", "100.128.0.1",
                                     "172.15.255.255", "172.32.0.1", "192.167.255.255", "223.255.255.254",
                                     "2606:4700:4700::1111", "2a00:1450:4001::200e"])
def test_default_allows_public_addresses(settings, address):
    settings.GATEWAY_EGRESS_ALLOW = []
    assert egress.egress_decision(address) == egress.Decision(True, "public address")


METADATA = "link-local address (169.254.0.0/16, where cloud metadata services live)"


@pytest.mark.parametrize(("address", "ipv4", "reason"), [
    ("::ffff:10.0.0.1", "10.0.0.1", "private address (RFC 1918)"),  # IPv4-mapped
    ("::ffff:127.0.0.1", "127.0.0.1", "loopback address"),
    ("::ffff:169.254.169.254", "169.254.169.254", METADATA),
    ("::ffff:a9fe:a9fe", "169.254.169.254", METADATA),
    ("[::ffff:192.168.0.1]", "192.168.0.1", "private address (RFC 1918)"),
    ("::10.0.0.1", "10.0.0.1", "private address (RFC 1918)"),  # IPv4-compatible
    ("::ffff:0:10.0.0.1", "10.0.0.1", "private address (RFC 1918)"),  # IPv4-translated
    ("64:ff9b::10.0.0.1", "10.0.0.1", "private address (RFC 1918)"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "169.254.169.254", METADATA),
    ("2002:a00:1::1", "10.0.0.1", "private address (RFC 1918)"),  # 6to4
    ("2002:7f00:1::", "127.0.0.1", "loopback address"),
    ("2002:6440:1::1", "100.64.0.1", "shared address space (CGNAT, 100.64.0.0/10)"),
])
def test_embedded_ipv4_is_judged_by_the_ipv4_address(settings, address, ipv4, reason):
    settings.GATEWAY_EGRESS_ALLOW = []
    assert egress.egress_decision(address) == egress.Decision(False, f"embeds IPv4 {ipv4}: {reason}")


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_embedded_public_ipv4_is_allowed(settings, address):
    settings.GATEWAY_EGRESS_ALLOW = []
    assert egress.egress_decision(address).allowed is True


def test_allow_opens_a_default_denied_range_and_deny_always_wins(settings):
    settings.GATEWAY_EGRESS_ALLOW = "10.0.0.0/8, 127.0.0.1, fd00::/8, 192.168.7.7"
    settings.GATEWAY_EGRESS_DENY = "10.9.0.0/16,192.168.0.0/16, 8.8.8.8"
    decide = egress.egress_decision
    assert decide("10.1.2.3") == egress.Decision(True, "listed in GATEWAY_EGRESS_ALLOW (10.0.0.0/8)", True)
    assert decide("::ffff:10.1.2.3") == egress.Decision(True, "listed in GATEWAY_EGRESS_ALLOW (10.0.0.0/8)", True)
    assert decide("10.9.1.1") == egress.Decision(False, "listed in GATEWAY_EGRESS_DENY (10.9.0.0/16)", True)
    # The ALLOW entry is more specific than the DENY one, and still loses: an explicit DENY always wins.
    assert decide("192.168.7.7") == egress.Decision(False, "listed in GATEWAY_EGRESS_DENY (192.168.0.0/16)", True)
    assert decide("::ffff:192.168.7.7").allowed is False
    assert decide("127.0.0.1") == egress.Decision(True, "listed in GATEWAY_EGRESS_ALLOW (127.0.0.1/32)", True)
    assert decide("127.0.0.2") == egress.Decision(False, "loopback address")
    assert decide("fd00::5").allowed is True and decide("fd80::5").allowed is True
    assert decide("fc00::5") == egress.Decision(False, "unique local address (ULA, fc00::/7)")
    # DENY closes public addresses too, in any form that carries them.
    assert decide("8.8.8.8") == egress.Decision(False, "listed in GATEWAY_EGRESS_DENY (8.8.8.8/32)", True)
    assert decide("::ffff:8.8.8.8").allowed is False and decide("2002:808:808::1").allowed is False
    assert decide("8.8.4.4").allowed is True


def test_allow_must_match_the_embedded_address(settings):
    """Opening 6to4 or NAT64 space does not open the IPv4 networks those addresses lead to."""
    settings.GATEWAY_EGRESS_ALLOW = ["2002::/16", "64:ff9b::/96"]
    assert egress.egress_decision("2002:a00:1::1").allowed is False
    assert egress.egress_decision("64:ff9b::a00:1").allowed is False
    settings.GATEWAY_EGRESS_ALLOW = ["::ffff:10.0.0.0/104"]  # an IPv4-mapped entry means the IPv4 network
    assert egress.egress_decision("10.2.3.4") == egress.Decision(True, "listed in GATEWAY_EGRESS_ALLOW (10.0.0.0/8)",
                                                                 True)


def test_host_name_rules(settings):
    settings.GATEWAY_EGRESS_ALLOW = ["db.internal", "*.corp.example"]
    settings.GATEWAY_EGRESS_DENY = ["blocked.example.com", "*.evil.example", "10.66.0.0/16"]
    decide = egress.egress_decision
    assert decide("10.1.2.3", "db.internal") == egress.Decision(
        True, "host db.internal is listed in GATEWAY_EGRESS_ALLOW (db.internal)", True)
    assert decide("10.1.2.3", "DB.Internal.").allowed is True  # names compare case-blind, without the root dot
    assert decide("10.1.2.3", "api.corp.example") == egress.Decision(
        True, "host api.corp.example is listed in GATEWAY_EGRESS_ALLOW (*.corp.example)", True)
    assert decide("10.1.2.3", "a.b.corp.example").allowed is True
    # *.corp.example names subdomains only; a host rule opens that name, not its address for everyone.
    assert decide("10.1.2.3", "corp.example").allowed is False
    assert decide("10.1.2.3", "other.internal").allowed is False
    assert decide("10.1.2.3").allowed is False
    assert decide("10.1.2.3", "10.1.2.3").allowed is False
    # DENY wins over ALLOW, for names and for addresses reached through an allowed name.
    assert decide("8.8.8.8", "blocked.example.com") == egress.Decision(
        False, "host blocked.example.com is listed in GATEWAY_EGRESS_DENY (blocked.example.com)", True)
    assert decide("8.8.8.8", "x.evil.example").reason == \
        "host x.evil.example is listed in GATEWAY_EGRESS_DENY (*.evil.example)"
    assert decide("10.66.1.1", "db.internal") == egress.Decision(
        False, "listed in GATEWAY_EGRESS_DENY (10.66.0.0/16)", True)
    assert decide("8.8.8.8", "fine.example.com").allowed is True
    assert decide("not-an-address").allowed is False


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("GATEWAY_EGRESS_ALLOW", "127.0.0.1, 10.0.0.1/8",
     "GATEWAY_EGRESS_ALLOW: entry ' 10.0.0.1/8' is not a valid address or network: 10.0.0.1/8 has host bits set "
     "(did you mean 10.0.0.0/8?)"),
    ("GATEWAY_EGRESS_DENY", ["10.0.0.0/33"], "GATEWAY_EGRESS_DENY: entry '10.0.0.0/33' is not a valid address"),
    ("GATEWAY_EGRESS_ALLOW", ["10.0.0.256"], "GATEWAY_EGRESS_ALLOW: entry '10.0.0.256' is not a valid address"),
    ("GATEWAY_EGRESS_ALLOW", ["fd00::/200"], "GATEWAY_EGRESS_ALLOW: entry 'fd00::/200' is not a valid address"),
    ("GATEWAY_EGRESS_DENY", ["bad host"], "GATEWAY_EGRESS_DENY: entry 'bad host' is not an address, a network"),
    ("GATEWAY_EGRESS_ALLOW", ["*"], "GATEWAY_EGRESS_ALLOW: entry '*' is not an address, a network"),
    ("GATEWAY_EGRESS_ALLOW", ["a..b"], "GATEWAY_EGRESS_ALLOW: entry 'a..b' is not an address, a network"),
    ("GATEWAY_EGRESS_ALLOW", ["-a.example"], "GATEWAY_EGRESS_ALLOW: entry '-a.example' is not an address"),
])
def test_bad_entries_name_the_setting_and_the_entry(settings, setting, value, message):
    setattr(settings, setting, value)
    with pytest.raises(ImproperlyConfigured) as raised:
        egress.policy()
    assert str(raised.value).startswith(message)


def test_entries_in_every_accepted_form(settings):
    settings.GATEWAY_EGRESS_ALLOW = " 127.0.0.1 ,[::1], 10.0.0.0/8,,fd00::/8 , Api.Example.COM., *.Corp.example, bücher.example"
    current = egress.policy()
    assert [str(net) for net in current.allow.networks] == ["::1/128", "127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]
    assert current.allow.hosts == {"api.example.com", "xn--bcher-kva.example"}
    assert current.allow.suffixes == (".corp.example",)


def test_a_bad_setting_stops_the_process_at_start_up(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "console.settings", "DATA_DIR": str(tmp_path),
           "GATEWAY_EGRESS_DENY": "10.0.0.0/8,169.254.169.254/16"}
    run = subprocess.run([PYTHON, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert ("ImproperlyConfigured: GATEWAY_EGRESS_DENY: entry '169.254.169.254/16' is not a valid address or "
            "network: 169.254.169.254/16 has host bits set (did you mean 169.254.0.0/16?)") in run.stderr
    env["GATEWAY_EGRESS_DENY"] = "10.0.0.0/8,169.254.0.0/16"
    assert subprocess.run([PYTHON, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                          timeout=120).returncode == 0


def test_decisions_are_parsed_once_and_cached(settings):
    settings.GATEWAY_EGRESS_ALLOW = ["127.0.0.1"]
    first = egress.policy()
    assert egress.policy() is first
    assert first.decide("10.0.0.1") is first.decide("10.0.0.1")
    settings.GATEWAY_EGRESS_ALLOW = ["127.0.0.2"]
    assert egress.policy() is not first and egress.egress_decision("127.0.0.2").allowed is True


# ---------------------------------------------------------------- tool calls in process (the shared aiohttp session)

def _server(base_url: str) -> ServerConfig:
    return ServerConfig(id=1, instance="default", name="pets", description="", type="http_to_mcp", enabled=True,
                        config={"baseUrl": base_url}, timeout=5, tools={}, tool_order=())


def _tool() -> ToolConfig:
    return ToolConfig(name="getPets", description="Pets.", input_schema={"type": "object"},
                      request={"url": "{{.config.baseUrl}}/pets", "method": "GET"})


def _text(result: dict) -> str:
    return "\n".join(block["text"] for block in result["content"] if block["type"] == "text")


@pytest.fixture
async def fresh_sessions():
    yield
    await close_http_sessions()


class FakeDns:
    """The system resolver as the event loop sees it, answering names ending in .test from a table."""

    def __init__(self, loop: asyncio.AbstractEventLoop, monkeypatch) -> None:
        self.answers: dict[str, list[str]] = {}
        self.queries: list[str] = []
        real = loop.getaddrinfo

        async def getaddrinfo(host, port, *args, **kwargs):
            if isinstance(host, str) and host.endswith(".test"):
                self.queries.append(host)
                if host not in self.answers:
                    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
                return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                        for address in self.answers[host]]
            return await real(host, port, *args, **kwargs)

        monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


@pytest.fixture
async def fake_dns(monkeypatch):
    return FakeDns(asyncio.get_running_loop(), monkeypatch)


async def test_tool_call_to_a_denied_address_connects_nowhere(listeners, fresh_sessions):
    denied, allowed = listeners("127.0.0.2"), listeners("127.0.0.1")
    result = await call_tool(server=_server(denied.url), tool=_tool(), arguments={})
    assert result["isError"] is True
    assert _text(result) == (f"Backend address 127.0.0.2 is not allowed by the gateway's egress policy "
                             f"(loopback address); {ALLOW_HINT} (GET {denied.url}/pets)")
    assert denied.accepted == 0
    ok = await call_tool(server=_server(allowed.url), tool=_tool(), arguments={})
    assert ok.get("isError") is not True and _text(ok) == '{"ok": true}'
    assert allowed.accepted == 1


async def test_ipv4_mapped_literal_is_judged_by_its_ipv4_address(settings, listeners, fresh_sessions):
    denied = listeners("127.0.0.2")
    url = f"http://[::ffff:127.0.0.2]:{denied.port}"
    result = await call_tool(server=_server(url), tool=_tool(), arguments={})
    # The URL's host comes out as yarl normalises it.
    assert _text(result) == (f"Backend address ::ffff:7f00:2 is not allowed by the gateway's egress policy (embeds "
                             f"IPv4 127.0.0.2: loopback address); {ALLOW_HINT} "
                             f"(GET http://[::ffff:7f00:2]:{denied.port}/pets)")
    assert denied.accepted == 0
    # The same URL connects once its IPv4 address is allowed: the listener would have seen a connection.
    settings.GATEWAY_EGRESS_ALLOW = ["127.0.0.2"]
    await close_http_sessions()
    ok = await call_tool(server=_server(url), tool=_tool(), arguments={})
    assert ok.get("isError") is not True, ok
    assert denied.accepted == 1


async def test_deny_entry_refuses_an_allowed_address(settings, listeners, fresh_sessions):
    settings.GATEWAY_EGRESS_DENY = ["127.0.0.1"]
    backend = listeners("127.0.0.1")
    result = await call_tool(server=_server(backend.url), tool=_tool(), arguments={})
    assert _text(result) == (f"Backend address 127.0.0.1 is not allowed by the gateway's egress policy (listed in "
                             f"GATEWAY_EGRESS_DENY (127.0.0.1/32)); {DENY_HINT} (GET {backend.url}/pets)")
    assert backend.accepted == 0


async def test_host_name_resolving_to_a_denied_address_is_refused(fake_dns, listeners, fresh_sessions):
    denied = listeners("127.0.0.2")
    fake_dns.answers["pets.test"] = ["127.0.0.2"]
    url = f"http://pets.test:{denied.port}"
    result = await call_tool(server=_server(url), tool=_tool(), arguments={})
    assert result["isError"] is True
    assert _text(result) == (f"Backend host pets.test resolves to 127.0.0.2, which is not allowed by the gateway's "
                             f"egress policy (loopback address); {ALLOW_HINT} (GET {url}/pets)")
    assert denied.accepted == 0 and fake_dns.queries == ["pets.test"]


async def test_only_allowed_addresses_of_a_name_are_connected_to(fake_dns, listeners, fresh_sessions):
    denied = listeners("127.0.0.2")
    allowed = listeners("127.0.0.1", port=denied.port)
    fake_dns.answers["mixed.test"] = ["127.0.0.2", "127.0.0.1"]  # the denied address first, as a resolver may
    for _ in range(2):
        ok = await call_tool(server=_server(f"http://mixed.test:{denied.port}"), tool=_tool(), arguments={})
        assert ok.get("isError") is not True, ok
    assert (denied.accepted, allowed.accepted) == (0, 2)
    assert fake_dns.queries == ["mixed.test"]  # the shared session's DNS cache still answers the second call


async def test_re_resolution_cannot_slip_past(fake_dns, listeners, fresh_sessions):
    """A name first resolving to an allowed address and then (DNS rebinding) to a denied one is refused the
    second time: every new connection is checked on the address it is about to use."""
    allowed = listeners("127.0.0.1")
    fake_dns.answers["rebind.test"] = ["127.0.0.1"]
    url = f"http://rebind.test:{allowed.port}"
    first = await call_tool(server=_server(url), tool=_tool(), arguments={})
    assert first.get("isError") is not True, first
    assert allowed.accepted == 1
    fake_dns.answers["rebind.test"] = ["127.0.0.2"]
    get_http_session().connector.clear_dns_cache()
    second = await call_tool(server=_server(url), tool=_tool(), arguments={})
    assert _text(second).startswith("Backend host rebind.test resolves to 127.0.0.2, which is not allowed")
    assert allowed.accepted == 1


async def test_host_deny_entry_refuses_before_any_dns_query(settings, fake_dns, listeners, fresh_sessions):
    settings.GATEWAY_EGRESS_DENY = ["*.blocked.test"]
    backend = listeners("127.0.0.1")
    fake_dns.answers["api.blocked.test"] = ["127.0.0.1"]
    url = f"http://api.blocked.test:{backend.port}"
    result = await call_tool(server=_server(url), tool=_tool(), arguments={})
    assert _text(result) == (f"Backend host api.blocked.test is not allowed by the gateway's egress policy (host "
                             f"api.blocked.test is listed in GATEWAY_EGRESS_DENY (*.blocked.test)); {DENY_HINT} "
                             f"(GET {url}/pets)")
    assert fake_dns.queries == [] and backend.accepted == 0


async def test_host_allow_entry_opens_a_name_that_resolves_to_a_denied_address(settings, fake_dns, listeners,
                                                                             fresh_sessions):
    settings.GATEWAY_EGRESS_ALLOW = ["127.0.0.1", "inside.test"]
    backend = listeners("127.0.0.2")
    fake_dns.answers["inside.test"] = ["127.0.0.2"]
    ok = await call_tool(server=_server(f"http://inside.test:{backend.port}"), tool=_tool(), arguments={})
    assert ok.get("isError") is not True, ok
    assert backend.accepted == 1
    # The name is trusted, not its address: the same backend by address stays refused.
    refused = await call_tool(server=_server(backend.url), tool=_tool(), arguments={})
    assert _text(refused).startswith("Backend address 127.0.0.2 is not allowed")
    assert backend.accepted == 1


async def test_connector_with_an_injected_resolver(listeners):
    """The API later callers (proxied MCP backends, JWKS) use: a connector, here with a resolver of its own."""
    denied, allowed = listeners("127.0.0.2"), listeners("127.0.0.1")

    class Table(aiohttp.abc.AbstractResolver):
        async def resolve(self, host, port=0, family=socket.AF_INET):
            address = {"a.example": "127.0.0.1", "b.example": "127.0.0.2"}[host]
            return [{"hostname": host, "host": address, "port": port, "family": socket.AF_INET, "proto": 0,
                     "flags": 0}]

        async def close(self):
            pass

    async with aiohttp.ClientSession(connector=egress.aiohttp_connector(resolver=Table())) as session:
        async with session.get(f"http://a.example:{allowed.port}/") as response:
            assert response.status == 200
        with pytest.raises(aiohttp.ClientConnectorError) as raised:
            await session.get(f"http://b.example:{denied.port}/")
        refusal = egress.refusal_of(raised.value)
        assert refusal is not None and refusal.host == "b.example" and refusal.addresses == ("127.0.0.2",)
        with pytest.raises(aiohttp.ClientConnectorError) as raised:
            await session.get(f"https://127.0.0.2:{denied.port}/")  # refused before any TLS handshake
        assert egress.refusal_of(raised.value).addresses == ("127.0.0.2",)
        with pytest.raises(aiohttp.ClientConnectionError, match="proxies are not used"):
            await session.get(f"http://a.example:{allowed.port}/", proxy=allowed.url)
    assert (allowed.accepted, denied.accepted) == (1, 0)


# ---------------------------------------------------------------- the requests session (Celery jobs)

def test_requests_session_refuses_denied_addresses_and_reaches_allowed_ones(listeners):
    denied, allowed = listeners("127.0.0.2"), listeners("127.0.0.1")
    with egress.requests_session() as session:
        response = session.get(allowed.url + "/openapi.json", timeout=5)
        assert response.status_code == 200 and response.json() == {"ok": True}
        with pytest.raises(egress.EgressRefusedError):
            session.get(f"https://127.0.0.2:{denied.port}/", timeout=5)  # refused before any TLS handshake
        with pytest.raises(egress.EgressRefusedError) as raised:
            session.get(denied.url + "/openapi.json", timeout=5)
    assert str(raised.value) == ("Backend address 127.0.0.2 is not allowed by the gateway's egress policy "
                                 f"(loopback address); {ALLOW_HINT}")
    assert isinstance(raised.value, requests.ConnectionError)
    copy = pickle.loads(pickle.dumps(raised.value))  # a Celery job's error crosses processes intact
    assert str(copy) == str(raised.value) and copy.refusal.refusals == raised.value.refusal.refusals
    assert raised.value.refusal.addresses == ("127.0.0.2",)
    assert (allowed.accepted, denied.accepted) == (1, 0)


def test_requests_session_checks_resolved_names_at_connect_time(monkeypatch, listeners):
    denied = listeners("127.0.0.2")
    allowed = listeners("127.0.0.1", port=denied.port)
    answers = {"keys.test": ["127.0.0.2"], "mixed.test": ["127.0.0.2", "127.0.0.1"]}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                    for address in answers[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with egress.requests_session() as session:
        with pytest.raises(egress.EgressRefusedError) as raised:
            session.get(f"http://keys.test:{denied.port}/jwks.json", timeout=5)
        assert str(raised.value).startswith("Backend host keys.test resolves to 127.0.0.2, which is not allowed")
        assert session.get(f"http://mixed.test:{allowed.port}/", timeout=5).status_code == 200
    assert (allowed.accepted, denied.accepted) == (1, 0)


def test_requests_session_follows_no_redirect_and_ignores_proxy_variables(monkeypatch, listeners):
    target = listeners("127.0.0.1")
    redirecting = listeners("127.0.0.1", status="302 Found", body=b"", headers=(f"Location: {target.url}/",))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with egress.requests_session() as session:
        response = session.get(redirecting.url + "/", timeout=5)
        with pytest.raises(requests.exceptions.InvalidProxyURL):
            session.get(target.url + "/", proxies={"http": redirecting.url}, timeout=5)
    assert response.status_code == 302 and response.headers["Location"] == f"{target.url}/"
    assert (redirecting.accepted, target.accepted) == (1, 0)


# ---------------------------------------------------------------- the reachability badge (in process)

@pytest.mark.django_db
def test_reachability_badge_shows_the_refusal(listeners):
    denied, allowed = listeners("127.0.0.2"), listeners("127.0.0.1")
    user = get_user_model().objects.create_user("erin", password="pw-123456")
    team = services.team_create(name="Team erin", owner=user)
    instance = services.instance_create(actor=user, team=team, name="erin-inst")
    inside = services.service_create(actor=user, instance=instance, name="inside", base_url=denied.url + "/api")
    fine = services.service_create(actor=user, instance=instance, name="fine", base_url=allowed.url + "/api")
    client = Client()
    client.force_login(user)
    badge = html.unescape(client.get(reverse("service_reachability", args=[inside.pk]) + "?fresh=1")
                          .content.decode())
    assert "Unreachable" in badge
    assert (f"Backend address 127.0.0.2 is not allowed by the gateway's egress policy (loopback address); "
            f"{ALLOW_HINT}.") in badge
    assert denied.accepted == 0
    assert "Reachable" in html.unescape(client.get(reverse("service_reachability", args=[fine.pk]) + "?fresh=1")
                                        .content.decode())
    assert allowed.accepted == 1


# ---------------------------------------------------------------- through a live server (real ASGI app, MCP SDK)

REFUSED_TOOLS = """
tools:
  - name: inside
    description: A backend on a denied loopback address.
    requestTemplate: {{url: "http://127.0.0.2:{denied}/pets", method: GET}}
  - name: outside
    description: A backend on the allowed address.
    requestTemplate: {{url: "http://127.0.0.1:{allowed}/pets", method: GET}}
"""


@pytest.mark.live
async def test_live_gateway_refuses_and_reachability_says_why(demo_server, api, listeners):
    denied, allowed = listeners("127.0.0.2"), listeners("127.0.0.1")
    instance = api.get("/instances/").json()["results"][0]["id"]
    server = api.post("/mcp-servers/", json={"instance": instance, "name": "egress-check"})
    assert server.status_code == 201, server.text
    applied = api.put(f"/mcp-servers/{server.json()['id']}/tools/yaml",
                      content=REFUSED_TOOLS.format(denied=denied.port, allowed=allowed.port),
                      headers={"Content-Type": "application/yaml"})
    assert applied.status_code == 200, applied.text
    async with streamable_http_client(demo_server.url + "/mcp-servers/egress-check") as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            refused = await session.call_tool("inside", {})
            reached = await session.call_tool("outside", {})
    assert refused.is_error is True
    assert [block.text for block in refused.content] == [
        f"Backend address 127.0.0.2 is not allowed by the gateway's egress policy (loopback address); {ALLOW_HINT} "
        f"(GET http://127.0.0.2:{denied.port}/pets)"]
    assert reached.is_error is False
    assert (denied.accepted, allowed.accepted) == (0, 1)

    service = api.post("/services/", json={"instance": instance, "name": "inside", "base_url": denied.url + "/v1"})
    assert service.status_code == 201, service.text
    probe = api.get(f"/services/{service.json()['id']}/reachability", params={"fresh": "1"})
    assert probe.status_code == 200
    assert probe.json() == {"reachable": False, "status": None, "latency_ms": None, "message":
                            f"Backend address 127.0.0.2 is not allowed by the gateway's egress policy "
                            f"(loopback address); {ALLOW_HINT}."}
    assert denied.accepted == 0


@pytest.mark.live
async def test_a_deployment_without_the_allow_list_denies_the_loopback_demo_api():
    """What `make run` opens with GATEWAY_EGRESS_ALLOW=127.0.0.1 stays closed in a plain deployment."""
    server = start_live(extra_env={"GATEWAY_EGRESS_ALLOW": ""})
    try:
        async with streamable_http_client(server.url + "/mcp-servers/petstore") as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                result = await session.call_tool("getPet", {"petId": 1})
    finally:
        server.stop()
    assert result.is_error is True
    text = result.content[0].text
    assert text.startswith(f"Backend address 127.0.0.1 is not allowed by the gateway's egress policy "
                           f"(loopback address); {ALLOW_HINT} (GET http://127.0.0.1:{server.ports[0]}/demo-api/pets/1")

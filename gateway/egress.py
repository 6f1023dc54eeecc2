"""The egress policy: which addresses the product may connect to on a tenant's behalf, enforced at connection time.

Every outbound connection made for a tenant (tool calls, proxied MCP backends, reachability probes, OpenAPI URL
imports, JWKS fetches) uses a client from this module: `aiohttp_connector()` for async code, `open_stream()` for the
relay's own HTTP/1.1 client, `requests_session()` for synchronous code (Celery jobs). Both check each address after DNS resolution, right before the socket connects,
so a host name that resolves to a forbidden address is refused, a second resolution cannot slip past the first
check, and IP-literal URLs are checked too. A refused address is never connected to.

The policy (`GATEWAY_EGRESS_ALLOW`, `GATEWAY_EGRESS_DENY`: comma-separated addresses, CIDR networks and host
names, `*.example.com` for every subdomain of example.com) is decided in this order:
1. an explicit DENY entry that matches the host name or the address always wins;
2. an explicit ALLOW entry that matches the host name or the address opens it, even in a default-denied range;
3. otherwise public addresses are allowed, and loopback, unspecified, private (RFC 1918), unique-local,
   link-local (cloud metadata), CGNAT, multicast, broadcast, documentation, benchmarking and reserved
   ranges are denied.
IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`,
IPv4-translated, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the IPv4 address they embed; a DENY
entry may match either form, an ALLOW entry must match the embedded address.
"""
from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import re
import socket
import sys
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import aiohttp
import requests
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

ALLOW_SETTING = "GATEWAY_EGRESS_ALLOW"
DENY_SETTING = "GATEWAY_EGRESS_DENY"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in pairs)


# Default-denied ranges, most specific first where they overlap. The `ipaddress` properties below back this list up
# for anything the registries add later.
_DENIED_V4 = _nets(
    ("0.0.0.0/8", "'this network' address (0.0.0.0/8)"),
    ("10.0.0.0/8", "private address (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (CGNAT, 100.64.0.0/10)"),
    ("127.0.0.0/8", "loopback address"),
    ("169.254.0.0/16", "link-local address (169.254.0.0/16, where cloud metadata services live)"),
    ("172.16.0.0/12", "private address (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignment (192.0.0.0/24)"),
    ("192.0.2.0/24", "documentation address (192.0.2.0/24)"),
    ("192.88.99.0/24", "6to4 relay anycast address (192.88.99.0/24)"),
    ("192.168.0.0/16", "private address (RFC 1918)"),
    ("198.18.0.0/15", "benchmarking address (198.18.0.0/15)"),
    ("198.51.100.0/24", "documentation address (198.51.100.0/24)"),
    ("203.0.113.0/24", "documentation address (203.0.113.0/24)"),
    ("224.0.0.0/4", "multicast address"),
    ("255.255.255.255/32", "broadcast address"),
    ("240.0.0.0/4", "reserved address (240.0.0.0/4)"),
)
_DENIED_V6 = _nets(
    ("::/128", "unspecified address"),
    ("::1/128", "loopback address"),
    ("64:ff9b:1::/48", "local-use NAT64 address (64:ff9b:1::/48)"),
    ("100::/64", "discard-only address (100::/64)"),
    ("2001::/32", "Teredo tunnelling address (2001::/32)"),
    ("2001:2::/48", "benchmarking address (2001:2::/48)"),
    ("2001:10::/28", "ORCHID address (2001:10::/28)"),
    ("2001:20::/28", "ORCHIDv2 address (2001:20::/28)"),
    ("2001:db8::/32", "documentation address (2001:db8::/32)"),
    ("3fff::/20", "documentation address (3fff::/20)"),
    ("5f00::/16", "SRv6 segment identifier (5f00::/16)"),
    ("fc00::/7", "unique local address (ULA, fc00::/7)"),
    ("fe80::/10", "link-local address (fe80::/10)"),
    ("fec0::/10", "site-local address (fec0::/10, deprecated)"),
    ("ff00::/8", "multicast address"),
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIIT = ipaddress.ip_network("::ffff:0:0:0/96")
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # why, for people: "private address (RFC 1918)", "listed in GATEWAY_EGRESS_ALLOW (10.0.0.0/8)"
    explicit: bool = False  # an operator's ALLOW or DENY entry decided, not the default


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4), else None."""
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    value = int(ip)
    if ip in _NAT64 or ip in _SIIT:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (:: and ::1 are themselves)
        return ipaddress.IPv4Address(value)
    return None


def default_denial(ip: IPAddress) -> str | None:
    """Why the default policy denies this (already unwrapped) address, or None for a public one."""
    if ip.is_unspecified:
        return "unspecified address"
    for net, reason in _DENIED_V4 if ip.version == 4 else _DENIED_V6:
        if ip in net:
            return reason
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_private or ip.is_reserved or not ip.is_global:
        return "not a globally routable address"
    return None


def _normal_host(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Rules:
    setting: str
    networks: tuple[IPNetwork, ...]
    hosts: frozenset[str]
    suffixes: tuple[str, ...]  # ".example.com" for the entry *.example.com

    def network_of(self, *ips: IPAddress) -> IPNetwork | None:
        for net in self.networks:
            for ip in ips:
                if ip in net:
                    return net
        return None

    def host_entry(self, host: str) -> str | None:
        if host in self.hosts:
            return host
        for suffix in self.suffixes:
            if host.endswith(suffix):
                return "*" + suffix
        return None


def _parse_entry(setting: str, entry: str) -> IPNetwork | str:
    """One setting entry as a network (a single address is a /32 or /128) or a normalised host-name rule."""
    text = entry.strip()
    bare = text[1:].replace("]", "", 1) if text.startswith("[") else text
    if "/" in bare or ":" in bare or re.fullmatch(r"[0-9.]+", bare):
        try:
            net = ipaddress.ip_network(bare, strict=True)
        except ValueError as exc:
            hint = ""
            try:
                hint = f" (did you mean {ipaddress.ip_network(bare, strict=False)}?)"
            except ValueError:
                pass
            raise ImproperlyConfigured(f"{setting}: entry {entry!r} is not a valid address or network: {exc}{hint}") from None
        if net.version == 6 and net.prefixlen >= 96 and net.network_address in _MAPPED:
            # An IPv4-mapped rule means the IPv4 network: addresses are judged in that form.
            net = ipaddress.ip_network((int(net.network_address) & 0xFFFFFFFF, net.prefixlen - 96))
        return net
    host = _normal_host(text)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        host = ""
    labels = host.split(".") if host else []
    if not labels or not all(_HOST_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ImproperlyConfigured(f"{setting}: entry {entry!r} is not an address, a network (CIDR) or a host name "
                                   "(use *.example.com for every subdomain of example.com)")
    return ("." + host) if wildcard else host


def _rules(setting: str, value: Any) -> _Rules:
    if value is None:
        entries: list[str] = []
    elif isinstance(value, str):
        entries = [item for item in value.split(",") if item.strip()]
    elif isinstance(value, (list, tuple)):
        entries = [str(item) for item in value if str(item).strip()]
    else:
        raise ImproperlyConfigured(f"{setting} must be a comma-separated string or a list, not {type(value).__name__}")
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    suffixes: list[str] = []
    for entry in entries:
        parsed = _parse_entry(setting, entry)
        if isinstance(parsed, str):
            if parsed.startswith("."):
                suffixes.append(parsed)
            else:
                hosts.add(parsed)
        else:
            networks.append(parsed)
    # Most specific first, so a reason names the narrowest matching entry.
    networks.sort(key=lambda net: -net.prefixlen)
    return _Rules(setting, tuple(networks), frozenset(hosts), tuple(suffixes))


class Policy:
    """The parsed ALLOW and DENY lists and a bounded cache of decisions (each is pure in address and host)."""

    CACHE_SIZE = 4096

    def __init__(self, *, allow: Any = None, deny: Any = None) -> None:
        self.allow = _rules(ALLOW_SETTING, allow)
        self.deny = _rules(DENY_SETTING, deny)
        self._cache: dict[tuple[str, str | None], Decision] = {}

    def decide(self, address: str, host: str | None = None) -> Decision:
        """Whether connecting to `address` is allowed; `host` is the name the URL used, if it used one."""
        key = (address, host)
        decision = self._cache.get(key)
        if decision is None:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            decision = self._cache[key] = self._decide(address, host)
        return decision

    def host_decision(self, host: str) -> Decision | None:
        """A DENY entry naming the host refuses it before it is even resolved; None when the addresses decide."""
        name = _normal_host(host)
        entry = self.deny.host_entry(name)
        if entry is not None:
            return Decision(False, f"host {name} is listed in {DENY_SETTING} ({entry})", explicit=True)
        return None

    def _decide(self, address: str, host: str | None) -> Decision:
        name = _normal_host(host) if host and not _is_ip(host) else None
        if name is not None:
            refused = self.host_decision(name)
            if refused is not None:
                return refused
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return Decision(False, f"{address!r} is not an IP address")
        inner = embedded_ipv4(ip)
        effective = inner or ip
        net = self.deny.network_of(ip, effective)
        if net is not None:
            return Decision(False, f"listed in {DENY_SETTING} ({net})", explicit=True)
        if name is not None:
            entry = self.allow.host_entry(name)
            if entry is not None:
                return Decision(True, f"host {name} is listed in {ALLOW_SETTING} ({entry})", explicit=True)
        net = self.allow.network_of(effective)
        if net is not None:
            return Decision(True, f"listed in {ALLOW_SETTING} ({net})", explicit=True)
        reason = default_denial(effective)
        if reason is not None:
            return Decision(False, reason if inner is None else f"embeds IPv4 {inner}: {reason}")
        return Decision(True, "public address")


_policy: Policy | None = None


def policy() -> Policy:
    """The policy of the current settings, parsed once (again only when a test overrides the settings)."""
    global _policy
    if _policy is None:
        _policy = Policy(allow=getattr(settings, ALLOW_SETTING, None), deny=getattr(settings, DENY_SETTING, None))
    return _policy


@receiver(setting_changed)
def _forget_policy(*, setting: str, **kwargs: Any) -> None:
    global _policy
    if setting in (ALLOW_SETTING, DENY_SETTING):
        _policy = None


def egress_decision(ip: str | IPAddress, host: str | None = None) -> Decision:
    """The current policy's decision for connecting to `ip`, reached through the host name `host` if given."""
    return policy().decide(str(ip), host)


# ---------------------------------------------------------------- refusals


class EgressRefused(OSError):
    """No address of a host is allowed. An OSError, so aiohttp reports it as a connection error carrying it."""

    def __init__(self, host: str, refusals: Sequence[tuple[str, Decision]]) -> None:
        self.host = host
        self.refusals = tuple(refusals)
        super().__init__(self.describe())

    def __reduce__(self) -> tuple:  # pickled with its parts (Celery, multiprocessing), not OSError's args
        return (EgressRefused, (self.host, self.refusals))

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for address, _ in self.refusals)

    def describe(self, subject: str = "Backend") -> str:
        """A sentence a person can act on, e.g. "Backend address 10.1.2.3 is not allowed by … GATEWAY_EGRESS_ALLOW"."""
        decisions = [decision for _, decision in self.refusals]
        reasons = list(dict.fromkeys(decision.reason for decision in decisions))
        if any(decision.explicit for decision in decisions):
            hint = f"an operator can remove it from {DENY_SETTING}"
        else:
            hint = f"an operator can allow it with {ALLOW_SETTING}"
        policy_words = f"the gateway's egress policy ({'; '.join(reasons)}); {hint}"
        addresses = [address for address in self.addresses if address]
        if _is_ip(self.host) or not addresses:
            if _is_ip(self.host):
                return f"{subject} address {self.host.strip('[]')} is not allowed by {policy_words}"
            return f"{subject} host {self.host} is not allowed by {policy_words}"
        listed = " and ".join(addresses) if len(addresses) <= 3 else ", ".join(addresses[:3]) + ", …"
        verb = "is" if len(addresses) == 1 else "are"
        return (f"{subject} host {self.host} resolves to {listed}, which {verb} not allowed by {policy_words}")


def refusal_of(exc: BaseException | None) -> EgressRefused | None:
    """The egress refusal behind a client error (aiohttp's ClientConnectorError, the requests session's error)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, EgressRefused):
            return exc
        exc = getattr(exc, "os_error", None) or getattr(exc, "refusal", None) or exc.__cause__
        seen += 1
    return None


def screen(host: str, addresses: Iterable[str]) -> tuple[list[str], list[tuple[str, Decision]]]:
    """Split a host's resolved addresses into allowed ones and refused ones with their decisions."""
    current = policy()
    allowed: list[str] = []
    refused: list[tuple[str, Decision]] = []
    for address in addresses:
        decision = current.decide(address, host)
        if decision.allowed:
            allowed.append(address)
        else:
            refused.append((address, decision))
    return allowed, refused


# ---------------------------------------------------------------- aiohttp (the gateway and async console code)

# The host name the connector is connecting to, for host-name rules at the socket (which only sees an address).
_connecting_host: contextvars.ContextVar[str | None] = contextvars.ContextVar("egress_connecting_host", default=None)


class EgressResolver(AbstractResolver):
    """Resolves with the wrapped resolver and keeps only the addresses the policy allows."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.DefaultResolver()
        self._owns_inner = inner is None

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        refused = policy().host_decision(host)
        if refused is not None:
            raise EgressRefused(host, [("", refused)])  # refused before any DNS query
        results = await self._inner.resolve(host, port, family=family)
        allowed, refusals = screen(host, [result["host"] for result in results])
        if not allowed:
            raise EgressRefused(host, refusals)
        keep = set(allowed)
        return [result for result in results if result["host"] in keep]

    async def close(self) -> None:
        if self._owns_inner:
            await self._inner.close()


def _checked_socket(addr_info: tuple) -> socket.socket:
    """aiohttp's socket factory: the last check, right before connect, of the address about to be connected to.
    It also covers IP-literal URLs, for which aiohttp never calls the resolver."""
    family, type_, proto, _, sockaddr = addr_info
    host = _connecting_host.get()
    address = sockaddr[0]
    decision = policy().decide(address, host)
    if not decision.allowed:
        raise EgressRefused(host or address, [(address, decision)])
    return socket.socket(family=family, type=type_, proto=proto)


class EgressConnector(aiohttp.TCPConnector):
    """A TCPConnector whose every new connection passes the egress policy (see `aiohttp_connector`)."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        if req.proxy:
            # Through a proxy the destination's address would never be checked.
            raise aiohttp.ClientConnectionError("egress-checked connections go direct; proxies are not used")
        token = _connecting_host.set(req.url.raw_host)
        try:
            return await super().connect(req, traces, timeout)
        finally:
            _connecting_host.reset(token)


def aiohttp_connector(*, resolver: AbstractResolver | None = None, **kwargs: Any) -> EgressConnector:
    """A TCPConnector that enforces the egress policy; `resolver` replaces the system resolver (tests, aiodns).
    Other keyword arguments go to aiohttp.TCPConnector. A refused connection raises aiohttp.ClientConnectorError
    (or its DNS subclass) whose `os_error` is an EgressRefused: `refusal_of(exc)` finds it."""
    return EgressConnector(resolver=EgressResolver(resolver), socket_factory=_checked_socket, **kwargs)


# ---------------------------------------------------------------- requests (Celery jobs and other synchronous code)


class EgressRefusedError(requests.exceptions.ConnectionError):
    """A requests error for a refused connection; `refusal` holds the EgressRefused, str() is its sentence."""

    def __init__(self, refusal: EgressRefused, request: Any = None) -> None:
        self.refusal = refusal
        super().__init__(refusal.describe(), request=request)

    def __reduce__(self) -> tuple:
        return (EgressRefusedError, (self.refusal,))


class _Refused(Exception):
    # Deliberately not an OSError: urllib3 would retry and wrap it; this passes straight up to the adapter.
    def __init__(self, refusal: EgressRefused) -> None:
        super().__init__(str(refusal))
        self.refusal = refusal


class _CheckedConnectionMixin:
    """urllib3's connect, with the resolved addresses screened and only allowed ones connected to."""

    def _new_conn(self) -> socket.socket:
        host = self._dns_host.strip("[]")
        refused = policy().host_decision(host) if not _is_ip(host) else None
        if refused is not None:
            raise _Refused(EgressRefused(host, [("", refused)]))
        try:
            infos = socket.getaddrinfo(host, self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        allowed, refusals = screen(host, [info[4][0] for info in infos])
        if not allowed:
            raise _Refused(EgressRefused(host, refusals))
        error: OSError | None = None
        for family, type_, proto, _, sockaddr in infos:
            if sockaddr[0] not in allowed:
                continue
            sock = socket.socket(family, type_, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is None or isinstance(self.timeout, (int, float)):  # not urllib3's "default"
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
            except socket.timeout as exc:
                sock.close()
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
            except OSError as exc:
                sock.close()
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            return sock
        raise NewConnectionError(self, f"Failed to establish a new connection: {error}") from error


class _CheckedHTTPConnection(_CheckedConnectionMixin, HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnectionMixin, HTTPSConnection):
    pass


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection


class EgressAdapter(requests.adapters.HTTPAdapter):
    """A requests transport adapter that enforces the egress policy on every connection it opens."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _CheckedHTTPConnectionPool,
                                                   "https": _CheckedHTTPSConnectionPool}

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the destination's address would never be checked.
        raise requests.exceptions.InvalidProxyURL("egress-checked sessions connect directly; proxies are not used")

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        try:
            return super().send(request, *args, **kwargs)
        except _Refused as exc:
            raise EgressRefusedError(exc.refusal, request=request) from exc.refusal


class _NoRedirectSession(requests.Session):
    def get_redirect_target(self, resp: requests.Response) -> None:
        return None  # a 3xx is answered as is: a credential must not follow a redirect to another host


def requests_session() -> requests.Session:
    """A requests session that enforces the egress policy, ignores proxy variables and follows no redirects.
    A refused connection raises EgressRefusedError (a requests.ConnectionError); nothing is connected to."""
    session = _NoRedirectSession()
    session.trust_env = False
    adapter = EgressAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


__all__ = ["Decision", "EgressRefused", "EgressRefusedError", "Policy", "aiohttp_connector", "default_denial",
           "egress_decision", "embedded_ipv4", "policy", "refusal_of", "requests_session", "screen"]


# ---------------------------------------------------------------- asyncio streams (the relay's lean HTTP/1.1 client)


async def open_stream(host: str, port: int, *, ssl: Any = None, limit: int = 2 ** 16
                      ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the first allowed address of `host`, as the aiohttp connector decides: host-name rules
    before any DNS query, every resolved address screened, refused ones never connected to."""
    loop = asyncio.get_running_loop()
    bare = host.strip("[]")
    if _is_ip(bare):
        addresses = [bare]
    else:
        refused = policy().host_decision(bare)
        if refused is not None:
            raise EgressRefused(bare, [("", refused)])
        infos = await loop.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(info[4][0] for info in infos))
    allowed, refusals = screen(bare, addresses)
    if not allowed:
        raise EgressRefused(bare, refusals)
    failure: OSError | None = None
    for address in allowed:
        try:
            return await asyncio.open_connection(address, port, ssl=ssl, limit=limit,
                                                 server_hostname=bare if ssl else None)
        except OSError as exc:
            failure = exc
    assert failure is not None
    raise failure

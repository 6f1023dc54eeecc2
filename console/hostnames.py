"""The gateway's own host names, which no MCP server may claim as a domain (the console refuses, routing ignores)."""
from __future__ import annotations

import ipaddress
import re
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

# Forms of IPv4 that resolvers accept besides dotted quads: 127.1, 2130706433, 0x7f.1
_LOOSE_IPV4_RE = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


def _bare(host: str) -> str:
    host = (host or "").strip().lower().rstrip(".")
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@lru_cache(maxsize=8)
def _public_hosts(configured: tuple[str, ...], base_url: str) -> frozenset[str]:
    hosts = {_bare(h) for h in configured}
    if base_url:
        try:
            hosts.add(_bare(urlsplit(base_url).hostname or ""))
        except ValueError:
            pass
    hosts.discard("")
    return frozenset(hosts)


def public_hosts() -> frozenset[str]:
    """GATEWAY_PUBLIC_HOSTS plus the host of PUBLIC_BASE_URL."""
    return _public_hosts(tuple(settings.GATEWAY_PUBLIC_HOSTS), settings.PUBLIC_BASE_URL or "")


def _local_address(host: str) -> bool:
    """An IP literal that means this machine or every interface (loopback, unspecified), in any spelling."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if not _LOOSE_IPV4_RE.match(host):
            return False
        try:
            address = ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _looks_numeric(host: str) -> bool:
    return bool(_LOOSE_IPV4_RE.match(host)) or ":" in host


def reserved_reason(host: str) -> str | None:
    """Why `host` (a domain or a `*.` wildcard) may not be claimed, or None when it may."""
    host = _bare(host)
    if host.startswith("*."):
        suffix = host[2:]
        if suffix == "localhost" or suffix.endswith(".localhost"):
            return "it covers loopback names (localhost)"
        if _looks_numeric(suffix):
            return "a wildcard cannot cover IP addresses"
        for public in public_hosts():
            if "." in public and public.split(".", 1)[1] == suffix:
                return "it would cover this gateway's own host name"
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "it is a loopback name"
    if _local_address(host):
        return "it is a loopback or unspecified address"
    if host in public_hosts():
        return "it is this gateway's own host name"
    return None


def is_reserved(host: str) -> bool:
    return reserved_reason(host) is not None

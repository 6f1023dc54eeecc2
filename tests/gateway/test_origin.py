"""Origin validation: same host and loopback pages pass, listed origins pass, everything else is refused."""
from django.test import override_settings

from gateway.asgi import origin_allowed


def test_default_rules():
    assert origin_allowed("http://localhost:6274", "gw.example.com")
    assert origin_allowed("http://127.0.0.1:3000", "gw.example.com")
    assert origin_allowed("https://gw.example.com", "gw.example.com")
    assert not origin_allowed("https://evil.example", "gw.example.com")
    assert not origin_allowed("null", "gw.example.com")
    assert not origin_allowed("file:///tmp/x.html", "gw.example.com")


@override_settings(MCP_ALLOWED_ORIGINS=["https://app.example.org"])
def test_configured_origins():
    assert origin_allowed("https://app.example.org", "gw.example.com")
    assert not origin_allowed("https://other.example.org", "gw.example.com")


@override_settings(MCP_ALLOWED_ORIGINS=["*"])
def test_wildcard():
    assert origin_allowed("https://anything.example", "gw.example.com")

"""Origin validation: same host and loopback pages pass, listed origins pass, everything else is refused."""
from django.test import override_settings

from gateway.asgi import origin_allowed


def test_default_rules():
    assert origin_allowed("http://localhost:6274", "gw.example.com")
    assert origin_allowed("http://127.0.0.1:3000", "gw.example.com")
    assert origin_allowed("https://gw.example.com", "gw.example.com", host_is_ours=True)
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


def test_a_page_of_the_requests_own_host_passes_only_when_the_host_is_the_gateways():
    # DNS rebinding: evil.example resolves to the gateway, so the browser's Host and Origin both name it.
    assert not origin_allowed("http://evil.example", "evil.example", host_is_ours=False)
    assert origin_allowed("https://gw.example.com", "gw.example.com", host_is_ours=True)
    assert origin_allowed("http://localhost:6274", "evil.example", host_is_ours=False)  # a loopback page still may

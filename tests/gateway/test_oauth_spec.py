"""The MCP authorization spec's MUSTs (revisions 2025-06-18 and 2025-11-25) for a server and its authorization
server, one test each, written from the spec text; plus the refusals an authorization server owes a client.

Each test names the requirement it checks. The authorization server is driven through its real views (Django's test
client), the MCP endpoint through the gateway's real ASGI app; client ID metadata documents come from an HTTPS host
on a loopback address. The MCP conformance suite (0.1.16) has authorization scenarios for clients only (`auth/*`,
run with `conformance client`); none of its server scenarios covers authorization, so this matrix stands in.
"""
from __future__ import annotations

import hashlib
import html
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from console import services
from gateway.egress import egress_decision

from . import consumer_setup as cs
from .cimd_host import DocumentHost, make_certificate
from .oauth_setup import hidden_fields, pkce_pair
from .test_consumer_auth import ACCEPT, BASE, _build_world, backend, rpc  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

REDIRECT = "http://127.0.0.1:9/callback"
RESOURCE = "http://testserver" + BASE
SCOPE = "mcp:inst/guarded"


@pytest.fixture
def world(backend):
    return _build_world(backend, "oauth")


@pytest.fixture(scope="module")
def doc_hosts():
    cert, key = make_certificate(("127.0.0.1", "127.0.0.2"))
    hosts = {"cert": cert, "ok": DocumentHost("127.0.0.1", cert, key), "alias": DocumentHost("127.0.0.2", cert, key)}
    yield hosts
    hosts["ok"].close()
    hosts["alias"].close()


@pytest.fixture
def trusted(settings, doc_hosts):
    settings.OAUTH_CIMD_CA_BUNDLE = str(doc_hosts["cert"])
    return doc_hosts


def register(http: Client, redirect_uri: str = REDIRECT, name: str = "Spec Client") -> str:
    answer = http.post("/oauth/register/", data={"client_name": name, "redirect_uris": [redirect_uri],
                                                 "grant_types": ["authorization_code", "refresh_token"],
                                                 "token_endpoint_auth_method": "none"},
                       content_type="application/json")
    assert answer.status_code == 201, answer.content
    return answer.json()["client_id"]


def query(client_id: str, *, challenge: str | None, method: str | None = "S256", resource: str | None = RESOURCE,
          scope: str | None = SCOPE, redirect_uri: str = REDIRECT) -> dict:
    q = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": "xyz"}
    for key, value in (("code_challenge", challenge), ("code_challenge_method", method), ("resource", resource),
                       ("scope", scope)):
        if value is not None:
            q[key] = value
    return q


def error_text(page) -> str:
    """What the refusal page tells the person: the error code and its description."""
    import html
    import re

    found = re.search(r'data-testid="oauth-error">(.*?)</p>', page.content.decode(), re.S)
    assert found, page.content.decode()[:3000]
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def approve(http: Client, q: dict, *, consumer: str = "new"):
    page = http.get("/oauth/authorize/", q)
    assert page.status_code == 200, page.content[:3000]
    return http.post("/oauth/authorize/?" + urlencode(q), {**hidden_fields(page.content.decode()),
                                                           "consumer": consumer, "allow": "Authorize"})


def code_of(answer) -> str:
    assert answer.status_code == 302, answer.content[:2000]
    return parse_qs(urlsplit(answer["Location"]).query)["code"][0]


def token(http: Client, client_id: str, code: str, verifier: str | None, *, redirect_uri: str = REDIRECT,
          resource: str | None = RESOURCE):
    data = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    if resource is not None:
        data["resource"] = resource
    return http.post("/oauth/token/", data)


@pytest.fixture
def signed_in(world):
    http = Client()
    http.force_login(world.owner)
    return http


# ---------------------------------------------------------------- discovery (2025-06-18 §2.3, 2025-11-25 §2.3)

def test_must_serve_protected_resource_metadata_with_an_authorization_server(world):
    """MCP servers MUST implement RFC 9728; the document MUST include authorization_servers (at least one)."""
    http = Client()
    for path in (BASE, BASE + "/mcp", BASE + "/sse"):
        doc = http.get("/.well-known/oauth-protected-resource" + path)
        assert doc.status_code == 200
        assert doc.json()["resource"] == RESOURCE
        assert doc.json()["authorization_servers"] == ["http://testserver"]
        assert doc.json()["scopes_supported"] == [SCOPE]


def test_metadata_for_the_domain_form_of_an_endpoint(world):
    """Every protected endpoint has its metadata: a server reached on its own domain (/mcp-servers/<name>)."""
    services.mcp_server_update(actor=None, mcp_server=world.server, domains=["guarded.example.test"])
    doc = Client(HTTP_HOST="guarded.example.test").get("/.well-known/oauth-protected-resource/mcp-servers/guarded")
    assert doc.status_code == 200
    assert doc.json()["resource"] == "http://guarded.example.test/mcp-servers/guarded"


def test_no_metadata_for_an_endpoint_without_oauth_sign_in(world):
    cs.set_consumer_auth(world.server, enabled=True, method="api_key")
    assert Client().get("/.well-known/oauth-protected-resource" + BASE).status_code == 404


async def test_must_answer_401_with_www_authenticate_naming_the_metadata(world):
    """MCP servers MUST use WWW-Authenticate on 401 (resource_metadata); SHOULD include scope (2025-11-25)."""
    answer = await world.client.post(BASE, json=rpc("initialize", {"protocolVersion": "2025-11-25",
                                                                   "capabilities": {},
                                                                   "clientInfo": {"name": "t", "version": "1"}}),
                                     headers={"accept": ACCEPT})
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="inst/guarded", resource_metadata="http://testserver/.well-known/oauth-protected-resource'
        '/instances/inst/mcp-servers/guarded", scope="mcp:inst/guarded"')


def test_must_offer_authorization_server_metadata_with_s256(world):
    """Authorization servers MUST provide RFC 8414 (or OIDC) metadata; clients MUST refuse without
    code_challenge_methods_supported, so it is there, and only S256 is offered (OAuth 2.1)."""
    doc = Client().get("/.well-known/oauth-authorization-server").json()
    assert doc["issuer"] == "http://testserver"
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_endpoint"] == "http://testserver/oauth/authorize/"
    assert doc["token_endpoint"] == "http://testserver/oauth/token/"
    assert doc["revocation_endpoint"] == "http://testserver/oauth/revoke/"
    assert doc["registration_endpoint"] == "http://testserver/oauth/register/"
    assert doc["response_types_supported"] == ["code"]
    assert doc["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert SCOPE in doc["scopes_supported"]


# ---------------------------------------------------------------- PKCE (2025-06-18 §2.1.1, 2025-11-25 §2.1.3)

def test_no_pkce_is_refused(signed_in):
    client_id = register(signed_in)
    page = signed_in.get("/oauth/authorize/", query(client_id, challenge=None, method=None))
    assert page.status_code == 400
    assert b"did not send a PKCE code challenge" in page.content


def test_plain_pkce_is_refused(signed_in):
    client_id = register(signed_in)
    page = signed_in.get("/oauth/authorize/", query(client_id, challenge="a" * 43, method="plain"))
    assert page.status_code == 400
    assert b"method plain is not accepted; use S256" in page.content


def test_a_wrong_code_verifier_is_refused(signed_in):
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    code = code_of(approve(signed_in, query(client_id, challenge=challenge)))
    wrong, _ = pkce_pair()
    answer = token(signed_in, client_id, code, wrong)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_a_missing_code_verifier_is_refused(signed_in):
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    code = code_of(approve(signed_in, query(client_id, challenge=challenge)))
    answer = token(signed_in, client_id, code, None)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


# ---------------------------------------------------------------- codes, redirects, tokens (OAuth 2.1)

def test_a_reused_code_is_refused(signed_in):
    """Authorization codes are single use (OAuth 2.1 §4.1.2)."""
    client_id = register(signed_in)
    verifier, challenge = pkce_pair()
    code = code_of(approve(signed_in, query(client_id, challenge=challenge)))
    assert token(signed_in, client_id, code, verifier).status_code == 200
    again = token(signed_in, client_id, code, verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_redirect_uri_not_registered_is_refused_without_redirecting(signed_in):
    """Authorization servers MUST validate exact redirect URIs against pre-registered ones (open redirection)."""
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    page = signed_in.get("/oauth/authorize/", query(client_id, challenge=challenge,
                                                    redirect_uri="https://attacker.example.test/cb"))
    assert page.status_code == 400
    assert "Location" not in page
    assert error_text(page) == "invalid_request: Mismatching redirect URI."


def test_a_token_request_with_another_redirect_uri_is_refused(signed_in):
    client_id = register(signed_in)
    verifier, challenge = pkce_pair()
    code = code_of(approve(signed_in, query(client_id, challenge=challenge)))
    answer = token(signed_in, client_id, code, verifier, redirect_uri="http://127.0.0.1:9/other")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


def test_refresh_tokens_rotate_and_the_old_one_is_refused(signed_in):
    """Refresh tokens for public clients MUST be sender-constrained or one-time use (OAuth 2.1 §4.3.1)."""
    client_id = register(signed_in)
    verifier, challenge = pkce_pair()
    first = token(signed_in, client_id, code_of(approve(signed_in, query(client_id, challenge=challenge))),
                  verifier).json()
    refreshed = signed_in.post("/oauth/token/", {"grant_type": "refresh_token", "client_id": client_id,
                                                 "refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh_token"] != first["refresh_token"]
    again = signed_in.post("/oauth/token/", {"grant_type": "refresh_token", "client_id": client_id,
                                             "refresh_token": first["refresh_token"]})
    assert again.json()["error"] == "invalid_grant"


# ---------------------------------------------------------------- resource indicators (RFC 8707)

def test_a_request_without_a_resource_is_refused(signed_in):
    """MCP clients MUST send resource; tokens MUST be bound to one MCP server, so none is not an option."""
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    page = signed_in.get("/oauth/authorize/", query(client_id, challenge=challenge, resource=None))
    assert page.status_code == 400
    assert b"Name exactly one MCP server endpoint as the resource" in page.content


def test_a_resource_that_is_not_an_oauth_server_is_refused(signed_in, world):
    cs.set_consumer_auth(world.server, enabled=True, method="api_key")
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    page = signed_in.get("/oauth/authorize/", query(client_id, challenge=challenge))
    assert page.status_code == 400
    assert b"is not an MCP server with OAuth sign-in here" in page.content


def test_a_scope_of_another_server_is_refused(signed_in):
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    page = signed_in.get("/oauth/authorize/", query(client_id, challenge=challenge, scope="mcp:inst/other"))
    assert page.status_code == 400


def test_the_token_endpoint_refuses_a_resource_not_granted(signed_in, world):
    other = services.mcp_server_create(actor=None, instance=world.server.instance, name="other")
    cs.set_consumer_auth(other, enabled=True, method="oauth")
    client_id = register(signed_in)
    verifier, challenge = pkce_pair()
    code = code_of(approve(signed_in, query(client_id, challenge=challenge)))
    answer = token(signed_in, client_id, code, verifier, resource="http://testserver/instances/inst/mcp-servers/other")
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"] == "invalid_target"


def test_no_scope_asked_for_gets_the_resources_scope(signed_in):
    client_id = register(signed_in)
    verifier, challenge = pkce_pair()
    q = query(client_id, challenge=challenge, scope=None)
    page = signed_in.get("/oauth/authorize/", q)
    assert page.status_code == 302
    assert parse_qs(urlsplit(page["Location"]).query)["scope"] == [SCOPE]


def test_deny_sends_access_denied_back(signed_in):
    client_id = register(signed_in)
    _, challenge = pkce_pair()
    q = query(client_id, challenge=challenge)
    page = signed_in.get("/oauth/authorize/", q)
    answer = signed_in.post("/oauth/authorize/?" + urlencode(q), {**hidden_fields(page.content.decode())})
    assert answer.status_code == 302
    assert parse_qs(urlsplit(answer["Location"]).query)["error"] == ["access_denied"]


def test_a_non_member_cannot_approve(world):
    from django.contrib.auth import get_user_model

    outsider = get_user_model().objects.create_user("outsider", password="pw-123456")
    http = Client()
    http.force_login(outsider)
    client_id = register(http)
    _, challenge = pkce_pair()
    q = query(client_id, challenge=challenge)
    page = http.get("/oauth/authorize/", q)
    assert b"You are not a member of team Team A" in page.content
    answer = http.post("/oauth/authorize/?" + urlencode(q), {**hidden_fields(page.content.decode()),
                                                             "consumer": "new", "allow": "Authorize"})
    assert answer.status_code == 403


# ---------------------------------------------------------------- client ID metadata documents (2025-11-25 §2.4.2)

def cimd_query(client_id: str) -> dict:
    _, challenge = pkce_pair()
    return query(client_id, challenge=challenge)


def test_a_metadata_document_client_signs_in_and_its_document_is_cached(signed_in, trusted):
    host = trusted["ok"]
    url = host.client_document("/a.json", name="Doc Client", redirect_uri=REDIRECT)
    page = signed_in.get("/oauth/authorize/", cimd_query(url))
    assert page.status_code == 200, page.content[:2000]
    assert b"Doc Client" in page.content
    assert signed_in.get("/oauth/authorize/", cimd_query(url)).status_code == 200
    assert host.hits["/a.json"] == 1


UNKNOWN_CLIENT = "invalid_request: Invalid client_id parameter value."


# A document the server will not use leaves the client unknown (the reason is logged, never shown to the client).
@pytest.mark.parametrize("case, shown", [("client_id_differs", UNKNOWN_CLIENT),
                                         ("redirect_not_listed", "invalid_request: Mismatching redirect URI."),
                                         ("too_large", UNKNOWN_CLIENT), ("not_json", UNKNOWN_CLIENT),
                                         ("secret", UNKNOWN_CLIENT)])
def test_a_bad_metadata_document_is_refused(signed_in, trusted, case, shown):
    host = trusted["ok"]
    path = f"/bad-{case}.json"
    url = host.base + path
    doc = {"client_id": url, "client_name": "Bad", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}
    content_type = "application/json"
    if case == "client_id_differs":
        doc["client_id"] = host.base + "/someone-else.json"
    elif case == "redirect_not_listed":
        doc["redirect_uris"] = ["http://127.0.0.1:9/elsewhere"]
    elif case == "too_large":
        doc["client_name"] = "x" * 20_000
    elif case == "not_json":
        content_type = "text/html"
    elif case == "secret":
        doc["client_secret"] = "s3cret"
    host.put_json(path, doc, content_type=content_type)
    page = signed_in.get("/oauth/authorize/", cimd_query(url))
    assert page.status_code == 400
    assert error_text(page) == shown


def test_a_metadata_document_over_http_is_not_fetched(signed_in, trusted):
    host = trusted["ok"]
    host.client_document("/plain.json", name="Plain", redirect_uri=REDIRECT)
    page = signed_in.get("/oauth/authorize/", cimd_query(host.base.replace("https://", "http://") + "/plain.json"))
    assert error_text(page) == UNKNOWN_CLIENT
    assert host.hits.get("/plain.json", 0) == 0


def test_a_metadata_document_on_a_forbidden_address_is_refused_by_the_egress_policy(signed_in, trusted, caplog):
    host = trusted["alias"]  # 127.0.0.2: loopback, default-denied (only 127.0.0.1 is allowed in tests)
    url = host.client_document("/c.json", name="Alias", redirect_uri=REDIRECT)
    page = signed_in.get("/oauth/authorize/", cimd_query(url))
    assert error_text(page) == UNKNOWN_CLIENT
    assert host.hits.get("/c.json", 0) == 0  # never connected to
    assert "address refused by the egress policy" in caplog.text


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.0.10", "172.16.5.5", "169.254.169.254", "100.64.0.1",
                                     "fd00::1", "::ffff:10.0.0.1"])
def test_the_egress_policy_denies_private_ranges_for_metadata_documents(address):
    assert egress_decision(address).allowed is False


def test_the_egress_policy_allows_public_addresses_for_metadata_documents():
    assert egress_decision("93.184.216.34").allowed is True


# ---------------------------------------------------------------- no token passthrough, digests at rest

def test_tokens_are_stored_only_as_digests(signed_in):
    from oauth2_provider.models import AccessToken

    client_id = register(signed_in)
    verifier, challenge = pkce_pair()
    issued = token(signed_in, client_id, code_of(approve(signed_in, query(client_id, challenge=challenge))),
                   verifier).json()
    row = AccessToken.objects.get(mcp_grant__client_name="Spec Client")
    assert row.token == ""
    assert row.token_checksum == hashlib.sha256(issued["access_token"].encode()).hexdigest()


def test_signing_up_on_the_way_comes_back_to_the_consent_page(world, settings):
    """The person may sign up (when sign-up is on) and lands on the consent page again; a new account is in no
    team yet, so the page says whose server it is and offers only Deny."""
    settings.SIGNUP_ENABLED = True
    http = Client()
    client_id = register(http)
    _, challenge = pkce_pair()
    authorize = "/oauth/authorize/?" + urlencode(query(client_id, challenge=challenge))
    login = http.get(authorize)
    assert login.status_code == 302
    login_page = http.get(login["Location"])
    signup_link = re.search(r'href="(/signup/\?next=[^"]+)"', login_page.content.decode()).group(1)
    form = http.get(html.unescape(signup_link))
    fields = hidden_fields(form.content.decode())
    done = http.post("/signup/", {**fields, "username": "newcomer", "email": "n@example.test",
                                  "password1": "a-long-pass-phrase-1", "password2": "a-long-pass-phrase-1"})
    assert done.status_code == 302
    assert done["Location"] == authorize
    page = http.get(done["Location"])
    assert b"You are not a member of team Team A" in page.content
    assert b"consent-allow" not in page.content


def test_the_server_page_gives_clients_only_the_url(signed_in, world):
    """Client setup for OAuth sign-in is just the URL: no header, no placeholder for a key."""
    page = signed_in.get(f"/console/mcp/{world.server.pk}/")
    text = html.unescape(page.content.decode())
    assert '"guarded": {\n      "url": "http://testserver/mcp-servers/guarded"\n    }' in text
    # The only key placeholder is the local stdio bridge's (the last configuration): it runs without a browser, so
    # it sends an API key.
    bridge = text.index("mcpServers of any client that launches stdio servers")
    assert "<YOUR_API_KEY>" not in text[:bridge]
    assert '"MCP_GATEWAY_KEY": "<YOUR_API_KEY>"' in text[bridge:]
    assert "The bridge does not sign in with OAuth" in text[bridge:]
    assert "OAuth sign-in: the client opens the console's sign-in page in a browser" in text

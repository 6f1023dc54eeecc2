"""OAuth sign-in set up for tests: MCP servers with OAuth on, a console user signing in and approving like a person.

`oauth_petstore` runs inside a live server's environment (through consumer_setup.live_setup); `ConsoleUser` is the
person at the browser, driven by a plain HTTP client that follows the console's own pages and forms.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from console import services
from console.models import McpServer, TeamMembership

ADMIN = ("admin", "admin-pass-1")


def oauth_petstore(name: str, *, method: str = "oauth") -> dict:
    """A copy of the demo petstore server with OAuth sign-in on and no consumer yet; its id and endpoint path."""
    from console.demo_seed import petstore_yaml

    petstore = McpServer.objects.get(name="petstore", instance__name="default")
    server = services.mcp_server_create(actor=None, instance=petstore.instance, name=name,
                                        backend_service=petstore.backend_service, config=petstore.config)
    services.tools_apply_yaml(actor=None, mcp_server=server, text=petstore_yaml(base_url=petstore.config["baseUrl"]))
    services.mcp_server_set_consumer_auth(actor=None, mcp_server=server, enabled=True, method=method)
    return {"server_id": server.pk, "path": f"/mcp-servers/{name}", "scope": f"mcp:default/{name}"}


def user_in_demo_team(username: str, password: str, role: str) -> int:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password=password)
    team = McpServer.objects.get(name="petstore", instance__name="default").instance.team
    TeamMembership.objects.create(team=team, user=user, role=role)
    return user.pk


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") and attrs.get("type") in {"hidden", None}:
            self.fields[attrs["name"]] = attrs.get("value") or ""


def hidden_fields(html: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.fields


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class ConsoleUser:
    """A person with a console account: signs in when the authorization page asks, then approves or denies."""

    def __init__(self, base_url: str, username: str = ADMIN[0], password: str = ADMIN[1]):
        self.base_url = base_url
        self.username, self.password = username, password
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)

    def sign_in(self) -> None:
        page = self.http.get("/login/")
        assert page.status_code == 200, page.text
        fields = hidden_fields(page.text)
        done = self.http.post("/login/", data={**fields, "username": self.username, "password": self.password},
                              headers={"Referer": self.base_url + "/login/"})
        assert done.status_code == 302, done.text[:2000]

    def open_authorization(self, url: str) -> httpx.Response:
        page = self.http.get(url)
        if page.status_code == 302 and "/login/" in page.headers["location"]:
            self.sign_in()
            page = self.http.get(url)
        return page

    def decide(self, url: str, *, allow: bool = True, consumer: str = "new") -> httpx.Response:
        """Open the authorization URL, sign in if asked, and answer the consent page; the response (a redirect)."""
        page = self.open_authorization(url)
        assert page.status_code == 200, f"{page.status_code}: {page.text[:3000]}"
        fields = hidden_fields(page.text)
        data = {**fields, "consumer": consumer}
        if allow:
            data["allow"] = "Authorize"
        target = urljoin(self.base_url, url)
        return self.http.post(target, data=data, headers={"Referer": target})

    def close(self) -> None:
        self.http.close()


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, f"{response.status_code}: {response.text[:2000]}"
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def register_client(base_url: str, *, name: str = "Test Client", redirect_uri: str = "http://127.0.0.1:9/callback"
                    ) -> dict:
    """Dynamic client registration (RFC 7591) as an MCP client does it: a public client, no secret."""
    answer = httpx.post(base_url + "/oauth/register/", json={
        "client_name": name, "redirect_uris": [redirect_uri], "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"], "token_endpoint_auth_method": "none"}, timeout=30)
    assert answer.status_code == 201, answer.text
    return answer.json()


def authorize_url(base_url: str, *, client_id: str, resource: str | None, scope: str | None = None,
                  challenge: str | None = None, method: str | None = "S256",
                  redirect_uri: str = "http://127.0.0.1:9/callback", state: str = "st-1") -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state}
    if challenge is not None:
        params["code_challenge"] = challenge
    if method is not None:
        params["code_challenge_method"] = method
    if resource is not None:
        params["resource"] = resource
    if scope is not None:
        params["scope"] = scope
    return f"{base_url}/oauth/authorize/?{urlencode(params)}"


def exchange(base_url: str, *, client_id: str, code: str, verifier: str | None, resource: str | None,
             redirect_uri: str = "http://127.0.0.1:9/callback") -> httpx.Response:
    data = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": redirect_uri}
    if verifier is not None:
        data["code_verifier"] = verifier
    if resource is not None:
        data["resource"] = resource
    return httpx.post(base_url + "/oauth/token/", data=data, timeout=30)

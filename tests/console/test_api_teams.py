"""REST API of teams, members and invitations; objects created through the API name their team."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from console import services
from console.models import ApiToken, AuditEvent, Instance, Invitation, Team, TeamMembership

pytestmark = pytest.mark.django_db


def api_for(user) -> APIClient:
    _, secret = services.api_token_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def people():
    users = {name: get_user_model().objects.create_user(name) for name in ("olga", "adam", "mia", "vic", "zed")}
    team = services.team_create(name="Ops", owner=users["olga"])
    for name, role in (("adam", "admin"), ("mia", "member"), ("vic", "viewer")):
        services.team_member_add(team=team, user=users[name], role=role)
    services.team_create(name="Zed's", owner=users["zed"])
    return team, users, {name: api_for(user) for name, user in users.items()}


def test_create_list_rename_delete(people):
    team, users, api = people
    created = api["vic"].post("/api/v1/teams/", {"name": "Viewer's own"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["role"] == "owner" and created.json()["name"] == "Viewer's own"
    listed = api["vic"].get("/api/v1/teams/").json()
    assert [(t["name"], t["role"]) for t in listed["results"]] == [("Ops", "viewer"), ("Viewer's own", "owner")]
    dupe = api["vic"].post("/api/v1/teams/", {"name": "ops"}, format="json")
    assert dupe.status_code == 400 and "already exists" in dupe.json()["errors"]["name"][0]
    assert api["vic"].post("/api/v1/teams/", {}, format="json").json()["errors"]["name"]

    url = f"/api/v1/teams/{team.pk}/"
    denied = api["adam"].patch(url, {"name": "Mine"}, format="json")
    assert denied.status_code == 403 and "needs the owner role" in denied.json()["detail"]
    assert api["zed"].get(url).status_code == 404
    assert api["olga"].patch(url, {"name": "Platform"}, format="json").json()["name"] == "Platform"
    assert api["adam"].delete(url).status_code == 403 and Team.objects.filter(pk=team.pk).exists()
    assert api["olga"].delete(url).status_code == 204 and not Team.objects.filter(pk=team.pk).exists()


def test_members_roles_and_the_last_owner(people):
    team, users, api = people
    members = api["vic"].get(f"/api/v1/teams/{team.pk}/members/").json()["results"]
    assert [(m["username"], m["role"]) for m in members] == [
        ("olga", "owner"), ("adam", "admin"), ("mia", "member"), ("vic", "viewer")]
    url = f"/api/v1/teams/{team.pk}/members/{users['vic'].pk}/"
    assert api["mia"].patch(url, {"role": "member"}, format="json").status_code == 403
    bad = api["adam"].patch(url, {"role": "boss"}, format="json")
    assert bad.status_code == 400 and "role" in bad.json()["errors"]
    assert api["adam"].patch(url, {"role": "member"}, format="json").json() == {
        "user": users["vic"].pk, "username": "vic", "role": "member"}
    owner_url = f"/api/v1/teams/{team.pk}/members/{users['olga'].pk}/"
    assert api["adam"].patch(owner_url, {"role": "viewer"}, format="json").status_code == 403
    last = api["olga"].patch(owner_url, {"role": "admin"}, format="json")
    assert last.status_code == 400 and "last owner" in last.json()["detail"]
    leave = api["olga"].delete(owner_url)
    assert leave.status_code == 400 and "last owner cannot leave" in leave.json()["detail"]
    assert api["zed"].delete(url).status_code == 404
    assert api["mia"].delete(f"/api/v1/teams/{team.pk}/members/{users['mia'].pk}/").status_code == 204
    assert not TeamMembership.objects.filter(team=team, user=users["mia"]).exists()
    assert api["mia"].get(f"/api/v1/teams/{team.pk}/").status_code == 404


def test_transfer_ownership(people):
    team, users, api = people
    url = f"/api/v1/teams/{team.pk}/transfer"
    assert api["adam"].post(url, {"user": users["adam"].pk}, format="json").status_code == 403
    stranger = api["olga"].post(url, {"user": users["zed"].pk}, format="json")
    assert stranger.status_code == 400 and "member of this team" in stranger.json()["errors"]["user"][0]
    moved = api["olga"].post(url, {"user": users["mia"].pk}, format="json")
    assert moved.status_code == 200
    roles = {m["username"]: m["role"] for m in moved.json()}
    assert (roles["mia"], roles["olga"]) == ("owner", "admin")


def test_invitations(people, settings):
    team, users, api = people
    url = f"/api/v1/teams/{team.pk}/invitations/"
    assert api["mia"].post(url, {"role": "viewer"}, format="json").status_code == 403
    too_high = api["adam"].post(url, {"role": "owner"}, format="json")
    assert too_high.status_code == 403 and "only an owner invites owners" in too_high.json()["detail"]
    too_long = api["adam"].post(url, {"role": "viewer", "expires_in_days": 31}, format="json")
    assert too_long.status_code == 400 and "expires_in_days" in too_long.json()["errors"]
    created = api["adam"].post(url, {"role": "viewer", "expires_in_days": 2}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["url"].startswith("http://testserver/invite/mgi_") and body["status"] == "pending"
    assert body["created_by"] == "adam" and body["role"] == "viewer"
    secret = body["url"].rstrip("/").rsplit("/", 1)[1]
    assert Invitation.objects.get(pk=body["id"]).digest == Invitation.digest_of(secret)
    listed = api["vic"].get(url).json()["results"]
    assert [i["id"] for i in listed] == [body["id"]] and "url" not in listed[0]
    assert secret not in api["vic"].get(url).content.decode()

    settings.PUBLIC_BASE_URL = "https://console.example.com/"
    second = api["olga"].post(url, {"role": "owner"}, format="json").json()
    assert second["url"].startswith("https://console.example.com/invite/mgi_")

    revoke = f"/api/v1/invitations/{body['id']}/"
    assert api["zed"].delete(revoke).status_code == 404
    assert api["mia"].delete(revoke).status_code == 403
    assert api["adam"].delete(revoke).status_code == 204
    assert api["adam"].get(revoke).json()["status"] == "revoked"
    again = api["adam"].delete(revoke)
    assert again.status_code == 400 and "revoked already" in again.json()["detail"]
    assert api["zed"].get(f"/api/v1/teams/{team.pk}/invitations/").status_code == 404


def test_objects_name_their_team_and_need_the_role(people):
    team, users, api = people
    # adam is in one team: the team may be left out.
    alone = api["adam"].post("/api/v1/instances/", {"name": "ops-one"}, format="json")
    assert alone.status_code == 201 and alone.json()["team"] == team.pk
    # mia may not create instances in her team.
    denied = api["mia"].post("/api/v1/instances/", {"name": "ops-two", "team": team.pk}, format="json")
    assert denied.status_code == 403 and "needs the admin role" in denied.json()["detail"]
    # olga in two teams must say which.
    services.team_create(name="Olga's lab", owner=users["olga"])
    ambiguous = api["olga"].post("/api/v1/instances/", {"name": "ops-three"}, format="json")
    assert ambiguous.status_code == 400 and "team" in ambiguous.json()["errors"]
    assert api["olga"].post("/api/v1/instances/", {"name": "ops-three", "team": team.pk},
                            format="json").status_code == 201
    zed_team = Team.objects.get(name="Zed's")
    assert api["olga"].post("/api/v1/instances/", {"name": "ops-four", "team": zed_team.pk},
                            format="json").status_code == 404
    instance = Instance.objects.get(name="ops-one")
    service = api["vic"].post("/api/v1/services/", {"instance": instance.pk, "name": "x",
                                                    "base_url": "http://127.0.0.1:9"}, format="json")
    assert service.status_code == 403 and "needs the member role" in service.json()["detail"]
    assert api["mia"].post("/api/v1/services/", {"instance": instance.pk, "name": "x",
                                                 "base_url": "http://127.0.0.1:9"}, format="json").status_code == 201
    assert list(Instance.objects.filter(name__startswith="ops-").order_by("name").values_list("name", flat=True)) == [
        "ops-one", "ops-three"]


def test_team_operations_in_schema_and_on_the_api_page(people):
    team, users, api = people
    schema = api["vic"].get("/api/v1/schema/?format=json").json()
    expected = {
        "/api/v1/teams/": {"get", "post"},
        "/api/v1/teams/{id}/": {"get", "patch", "delete"},
        "/api/v1/teams/{id}/transfer": {"post"},
        "/api/v1/teams/{id}/members/": {"get"},
        "/api/v1/teams/{id}/members/{user_id}/": {"patch", "delete"},
        "/api/v1/teams/{id}/invitations/": {"get", "post"},
        "/api/v1/invitations/{id}/": {"get", "delete"},
        "/api/v1/tokens/": {"get"},
        "/api/v1/tokens/{id}/": {"delete"},
    }
    for path, methods in expected.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), (path, set(schema["paths"][path]))
    created = schema["paths"]["/api/v1/teams/{id}/invitations/"]["post"]["responses"]["201"]
    assert "InvitationCreatedOutput" in str(created)
    from django.test import Client

    browser = Client()
    browser.force_login(users["vic"])
    page = browser.get("/console/api/").content.decode()
    for path in ("/api/v1/teams/{id}/transfer", "/api/v1/teams/{id}/invitations/", "/api/v1/invitations/{id}/"):
        assert path in page, path


def test_tokens_are_listed_without_secrets_and_revoked_at_once(people):
    team, users, api = people
    token, secret = services.api_token_create(user=users["mia"], name="laptop")
    own = APIClient()
    own.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = own.get("/api/v1/tokens/")
    assert listed.status_code == 200 and secret not in listed.content.decode()
    assert [t["name"] for t in listed.json()["results"]] == ["laptop", "cli"]
    assert api["olga"].delete(f"/api/v1/tokens/{token.pk}/").status_code == 404  # not even the team's owner
    assert api["mia"].delete(f"/api/v1/tokens/{token.pk}/").status_code == 204
    assert own.get("/api/v1/instances/").status_code == 401
    event = AuditEvent.objects.get(action="api_token.revoke")
    assert (event.team, event.actor, event.detail["name"]) == (None, users["mia"], "laptop")


def test_tokens_on_the_api_page(people):
    from django.test import Client

    team, users, api = people
    browser = Client()
    browser.force_login(users["vic"])
    created = browser.post("/console/api/", {"name": "ci"})
    assert created.status_code == 200
    token = ApiToken.objects.get(user=users["vic"], name="ci")
    page = browser.get("/console/api/").content.decode()
    assert f"{token.hint}…" in page and "Revoke token ci" in page
    assert browser.post(f"/console/api/tokens/{token.pk}/delete/").status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()

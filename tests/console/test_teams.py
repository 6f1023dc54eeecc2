"""Team services and pages: the last owner rules, role ceilings, invitations (expiry, revocation, reuse, new
accounts through a link), and the audit row each change leaves."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from console import selectors, services
from console.errors import DomainError
from console.models import AuditEvent, Instance, Invitation, Team, TeamMembership

pytestmark = pytest.mark.django_db


def user(name: str):
    return get_user_model().objects.create_user(name)  # no password: tests sign in with force_login


@pytest.fixture
def team():
    owner = user("olivia")
    team = services.team_create(name="Payments", owner=owner)
    people = {"owner": owner}
    for role in ("admin", "member", "viewer"):
        people[role] = user(f"{role}-user")
        services.team_member_add(team=team, user=people[role], role=role)
    return team, people


def membership(team, person) -> TeamMembership:
    return TeamMembership.objects.get(team=team, user=person)


def role(team, person) -> str | None:
    return TeamMembership.objects.filter(team=team, user=person).values_list("role", flat=True).first()


def signed_in(person) -> Client:
    client = Client()
    client.force_login(person)
    return client


# ---------------------------------------------------------------- owners

def test_the_last_owner_cannot_leave_be_removed_or_demoted(team):
    team, people = team
    owner = people["owner"]
    with pytest.raises(DomainError, match="last owner cannot leave"):
        services.team_leave(actor=owner, team=team)
    with pytest.raises(DomainError, match="last owner cannot be demoted"):
        services.team_member_set_role(actor=owner, membership=membership(team, owner), role="admin")
    # An admin may not touch an owner at all.
    with pytest.raises(DomainError) as refused:
        services.team_member_remove(actor=people["admin"], membership=membership(team, owner))
    assert refused.value.code == "permission_denied"
    assert role(team, owner) == "owner"

    # With a second owner, the first may step down or leave.
    services.team_member_set_role(actor=owner, membership=membership(team, people["admin"]), role="owner")
    services.team_member_set_role(actor=owner, membership=membership(team, owner), role="admin")
    assert role(team, owner) == "admin"
    with pytest.raises(DomainError, match="last owner cannot be removed"):
        services.team_member_remove(actor=None, membership=membership(team, people["admin"]))


def test_transfer_ownership_keeps_the_old_owner_as_admin(team):
    team, people = team
    with pytest.raises(DomainError) as refused:
        services.team_transfer_ownership(actor=people["admin"], team=team, user=people["member"])
    assert refused.value.code == "permission_denied"
    services.team_transfer_ownership(actor=people["owner"], team=team, user=people["member"])
    assert (role(team, people["member"]), role(team, people["owner"])) == ("owner", "admin")
    event = AuditEvent.objects.filter(action="team.transfer_ownership").get()
    assert event.detail == {"to": "member-user", "from": "olivia"} and event.actor == people["owner"]


def test_admins_manage_members_up_to_admin(team):
    team, people = team
    admin = people["admin"]
    services.team_member_set_role(actor=admin, membership=membership(team, people["viewer"]), role="member")
    assert role(team, people["viewer"]) == "member"
    with pytest.raises(DomainError) as refused:
        services.team_member_set_role(actor=admin, membership=membership(team, people["member"]), role="owner")
    assert refused.value.code == "permission_denied"
    with pytest.raises(DomainError) as refused:
        services.team_member_set_role(actor=people["member"], membership=membership(team, people["viewer"]),
                                      role="viewer")
    assert refused.value.code == "permission_denied"
    services.team_member_remove(actor=admin, membership=membership(team, people["viewer"]))
    assert role(team, people["viewer"]) is None
    # Any role may leave.
    services.team_leave(actor=people["member"], team=team)
    assert role(team, people["member"]) is None
    actions = list(AuditEvent.objects.filter(team=team).order_by("pk").values_list("action", flat=True))
    assert actions[-3:] == ["membership.role_change", "membership.remove", "membership.leave"]


def test_rename_and_delete_are_for_owners(team):
    team, people = team
    instance = services.instance_create(actor=people["admin"], team=team, name="pay-prod")
    services.mcp_server_create(actor=people["member"], instance=instance, name="pay",
                               backend_service=services.service_create(actor=people["member"], instance=instance,
                                                                       name="api", base_url="http://127.0.0.1:9"))
    for who in ("admin", "member", "viewer"):
        with pytest.raises(DomainError) as refused:
            services.team_rename(actor=people[who], team=team, name="Other")
        assert refused.value.code == "permission_denied"
        with pytest.raises(DomainError):
            services.team_delete(actor=people[who], team=team)
    services.team_rename(actor=people["owner"], team=team, name="Billing")
    assert Team.objects.get(pk=team.pk).name == "Billing"
    other = services.team_create(name="Other", owner=user("oscar"))
    with pytest.raises(DomainError, match="exists"):
        services.team_rename(actor=people["owner"], team=team, name="other")
    with pytest.raises(DomainError) as stranger:
        services.team_rename(actor=people["owner"], team=other, name="Mine now")
    assert stranger.value.code == "not_found"
    team_pk = team.pk
    services.team_delete(actor=people["owner"], team=team)
    assert not Team.objects.filter(pk=team_pk).exists() and not Instance.objects.filter(name="pay-prod").exists()
    deleted = AuditEvent.objects.get(action="team.delete")
    assert deleted.team is None and deleted.detail == {"name": "Billing", "team_id": team_pk}


def test_roles_decide_what_config_a_user_may_write(team):
    team, people = team
    with pytest.raises(DomainError) as refused:
        services.instance_create(actor=people["member"], team=team, name="by-member")
    assert refused.value.code == "permission_denied" and "admin" in refused.value.message
    instance = services.instance_create(actor=people["admin"], team=team, name="by-admin")
    services.service_create(actor=people["member"], instance=instance, name="api", base_url="http://127.0.0.1:9")
    with pytest.raises(DomainError) as refused:
        services.service_create(actor=people["viewer"], instance=instance, name="v", base_url="http://127.0.0.1:9")
    assert refused.value.code == "permission_denied"


# ---------------------------------------------------------------- invitations

def test_invitation_role_ceiling_and_expiry_bounds(team):
    team, people = team
    with pytest.raises(DomainError) as refused:
        services.invitation_create(actor=people["admin"], team=team, role="owner")
    assert refused.value.code == "permission_denied" and "only an owner invites owners" in refused.value.message
    with pytest.raises(DomainError) as refused:
        services.invitation_create(actor=people["member"], team=team, role="viewer")
    assert refused.value.code == "permission_denied"
    for days in (0, 31, "x"):
        with pytest.raises(DomainError) as bad:
            services.invitation_create(actor=people["admin"], team=team, role="viewer", expires_in_days=days)
        assert "between 1 and 30" in bad.value.details["expires_in_days"][0]
    invitation, secret = services.invitation_create(actor=people["owner"], team=team, role="owner",
                                                    expires_in_days=30)
    assert secret.startswith("mgi_") and secret not in invitation.digest and invitation.hint == "mgi_••••" + secret[-4:]
    assert Invitation.objects.filter(digest=Invitation.digest_of(secret)).exists()
    assert timedelta(days=29, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=30)
    default, _ = services.invitation_create(actor=people["admin"], team=team, role="admin")
    assert timedelta(days=6, hours=23) < default.expires_at - timezone.now() <= timedelta(days=7)
    event = AuditEvent.objects.filter(action="invitation.create").first()
    assert secret not in str(event.detail)


def test_invitation_is_used_once_and_says_so(team):
    team, people = team
    invitation, secret = services.invitation_create(actor=people["admin"], team=team, role="viewer")
    newcomer = user("nora")
    services.invitation_accept(user=newcomer, invitation=invitation)
    assert role(team, newcomer) == "viewer"
    with pytest.raises(DomainError, match="used already") as gone:
        services.invitation_accept(user=user("late"), invitation=invitation)
    assert gone.value.code == "gone"
    invitation.refresh_from_db()
    assert invitation.status == "accepted" and invitation.accepted_by == newcomer
    assert ["invitation.accept", "membership.add"] == list(
        AuditEvent.objects.filter(team=team, actor=newcomer).order_by("pk").values_list("action", flat=True))


def test_revoked_and_expired_invitations_refuse(team):
    team, people = team
    revoked, _ = services.invitation_create(actor=people["admin"], team=team, role="member")
    with pytest.raises(DomainError) as refused:
        services.invitation_revoke(actor=people["member"], invitation=revoked)
    assert refused.value.code == "permission_denied"
    services.invitation_revoke(actor=people["admin"], invitation=revoked)
    with pytest.raises(DomainError, match="revoked"):
        services.invitation_accept(user=user("rita"), invitation=revoked)
    with pytest.raises(DomainError, match="revoked already"):
        services.invitation_revoke(actor=people["admin"], invitation=revoked)
    expired, _ = services.invitation_create(actor=people["admin"], team=team, role="member")
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DomainError, match="expired"):
        services.invitation_accept(user=user("eve"), invitation=expired)
    assert not TeamMembership.objects.filter(user__username__in=["rita", "eve"]).exists()


def test_accepting_as_a_member_changes_nothing(team):
    team, people = team
    invitation, _ = services.invitation_create(actor=people["owner"], team=team, role="admin")
    with pytest.raises(DomainError, match="member of team Payments already") as already:
        services.invitation_accept(user=people["viewer"], invitation=invitation)
    assert already.value.code == "already_member"
    invitation.refresh_from_db()
    assert invitation.status == "pending" and role(team, people["viewer"]) == "viewer"


def test_a_new_account_through_an_invitation_meets_the_password_rules(team, settings):
    team, people = team
    settings.AUTH_PASSWORD_VALIDATORS = [
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
        {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
        {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    ]
    invitation, _ = services.invitation_create(actor=people["admin"], team=team, role="member")
    with pytest.raises(DomainError) as bad:
        services.invitation_accept_new_user(invitation=invitation, username="olivia", password="123")
    assert "taken" in bad.value.details["username"][0]
    assert any("too short" in m for m in bad.value.details["password"])
    assert any("entirely numeric" in m for m in bad.value.details["password"])
    with pytest.raises(DomainError) as bad:
        services.invitation_accept_new_user(invitation=invitation, username="bad name!", password="x" * 12)
    assert "username" in bad.value.details
    with pytest.raises(DomainError) as similar:
        services.invitation_accept_new_user(invitation=invitation, username="marguerite", password="marguerite1")
    assert "too similar" in similar.value.details["password"][0]
    assert not get_user_model().objects.filter(username="marguerite").exists()
    created = services.invitation_accept_new_user(invitation=invitation, username="marguerite",
                                                  password="a-long-passphrase")
    assert created.check_password("a-long-passphrase") and role(team, created) == "member"


def test_tokens_and_team_creation_leave_audit_rows():
    person = user("tina")
    token, secret = services.api_token_create(user=person, name="laptop")
    event = AuditEvent.objects.get(action="api_token.create")
    assert (event.team, event.actor, event.object_id) == (None, person, str(token.pk))
    assert secret not in str(event.detail)
    team = services.team_create(name="Tina's", owner=person)
    assert set(AuditEvent.objects.filter(team=team).values_list("action", flat=True)) == {
        "team.create", "membership.add"}


# ---------------------------------------------------------------- pages

def text_of(response) -> str:
    return response.content.decode()


def test_invitation_link_page_for_a_new_person(team, client):
    team, people = team
    admin = signed_in(people["admin"])
    created = admin.post(reverse("invitation_add", args=[team.pk]), {"role": "viewer", "expires_in_days": 3})
    assert created.status_code == 201
    url = re.search(r'id="invitation-url">([^<]+)<', text_of(created)).group(1)
    assert url.startswith("http://testserver/invite/mgi_")
    path = url.removeprefix("http://testserver")
    # An admin may not offer owner: the choice is not even there.
    assert 'value="owner"' not in text_of(admin.get(reverse("invitation_add", args=[team.pk])))

    page = client.get(path)
    assert page.status_code == 200 and "Join team Payments" in text_of(page) and "viewer" in text_of(page)
    weak = client.post(path, {"username": "newbie", "password": "short"})
    assert weak.status_code == 400 and "too short" in text_of(weak)
    joined = client.post(path, {"username": "newbie", "password": "a-long-passphrase"})
    assert joined.status_code == 302
    home = client.get(reverse("instance_list"), follow=True)
    assert "You joined team Payments as viewer." in text_of(home)
    assert "Create instance" not in text_of(home)
    used = client.get(path)
    assert used.status_code == 410 and "used already" in text_of(used)
    assert client.get("/invite/mgi_not-a-real-one/").status_code == 404


def test_invitation_link_page_for_a_signed_in_user(team):
    team, people = team
    invitation, secret = services.invitation_create(actor=people["owner"], team=team, role="member")
    member = signed_in(people["member"])
    page = member.get(reverse("invitation_accept", args=[secret]))
    assert "member of team Payments already" in text_of(page) and "<form" not in text_of(page).split("card")[-1]
    outsider = user("ursula")
    browser = signed_in(outsider)
    page = browser.get(reverse("invitation_accept", args=[secret]))
    assert "Signed in as <strong>ursula</strong>" in text_of(page)
    assert browser.post(reverse("invitation_accept", args=[secret])).status_code == 302
    assert role(team, outsider) == "member"
    services.invitation_revoke(actor=None, invitation=services.invitation_create(
        actor=None, team=team, role="viewer")[0])
    revoked = Invitation.objects.filter(revoked_at__isnull=False).get()
    assert revoked.status == "revoked"


def test_revoked_link_page_says_so(team, client):
    team, people = team
    invitation, secret = services.invitation_create(actor=people["admin"], team=team, role="viewer")
    admin = signed_in(people["admin"])
    assert admin.post(reverse("invitation_delete", args=[invitation.pk])).status_code == 302
    page = client.get(reverse("invitation_accept", args=[secret]))
    assert page.status_code == 410 and "revoked" in text_of(page)
    Invitation.objects.filter(pk=invitation.pk).update(revoked_at=None, expires_at=timezone.now())
    page = client.get(reverse("invitation_accept", args=[secret]))
    assert page.status_code == 410 and "expired" in text_of(page)


def test_team_page_shows_each_role_what_it_may_do(team):
    team, people = team
    url = reverse("team", args=[team.pk])
    owner_page = text_of(signed_in(people["owner"]).get(url))
    assert "Delete team" in owner_page and "Transfer ownership" in owner_page and "Invite someone" in owner_page
    admin_page = text_of(signed_in(people["admin"]).get(url))
    assert "Invite someone" in admin_page and "Delete team" not in admin_page
    assert f"Remove {people['viewer'].username}" in admin_page and "Remove olivia" not in admin_page
    viewer_page = text_of(signed_in(people["viewer"]).get(url))
    for hidden in ("Invite someone", "Change role", "Delete team", "Rename", "Transfer ownership"):
        assert hidden not in viewer_page, hidden
    assert "Leave team" in viewer_page and "olivia" in viewer_page


def test_team_pages_flow(team):
    team, people = team
    owner = signed_in(people["owner"])
    assert owner.post(reverse("team_member_edit", args=[team.pk, people["viewer"].pk]),
                      {"role": "member"}).status_code == 302
    assert role(team, people["viewer"]) == "member"
    last = owner.post(reverse("team_member_edit", args=[team.pk, people["owner"].pk]), {"role": "admin"})
    assert last.status_code == 400 and "only owner" in text_of(last)
    leave = owner.post(reverse("team_leave", args=[team.pk]))
    assert leave.status_code == 400 and "transfer ownership first" in text_of(leave)
    assert owner.post(reverse("team_edit", args=[team.pk]), {"name": "Treasury"}).status_code == 302
    assert owner.post(reverse("team_transfer", args=[team.pk]), {"user": people["admin"].pk}).status_code == 302
    assert role(team, people["owner"]) == "admin"
    created = owner.post(reverse("team_add"), {"name": "Side project"})
    assert created.status_code == 302
    side = Team.objects.get(name="Side project")
    assert role(side, people["owner"]) == "owner"
    assert owner.post(reverse("team_delete", args=[side.pk])).status_code == 302
    assert not Team.objects.filter(pk=side.pk).exists()
    assert selectors.team_list(user=people["owner"]).get() == Team.objects.get(name="Treasury")


def test_top_bar_links_team_settings(team):
    team, people = team
    page = text_of(signed_in(people["viewer"]).get(reverse("instance_list")))
    assert f'href="{reverse("team", args=[team.pk])}">Team settings' in page


def test_an_uncaught_permission_error_is_a_403_page(rf):
    from console.errors import NotFound
    from console.views.common import DomainErrorMiddleware

    middleware = DomainErrorMiddleware(lambda request: None)
    request = rf.get("/console/somewhere/")
    denied = middleware.process_exception(request, DomainError("This needs the owner role.", code="permission_denied"))
    assert denied.status_code == 403 and "This needs the owner role." in denied.content.decode()
    assert middleware.process_exception(request, NotFound("No such team.")).status_code == 404
    assert middleware.process_exception(request, DomainError("Bad input.")) is None
    assert middleware.process_exception(request, ValueError("x")) is None

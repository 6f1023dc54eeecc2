"""Team settings: the user's teams, create, rename, delete, transfer ownership, members and their roles, leave."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from .. import selectors, services
from ..forms import MemberRoleForm, TeamForm, TransferForm
from ..models import TeamMembership
from ..permissions import MANAGE_TEAM, OWN_TEAM, READ, ROLE_HELP, ROLE_RANK, role_rank
from .common import (
    SESSION_TEAM, confirm_page, done, fetch, follow_team, form_page, render_page, require, team_role,
)


def roles_up_to(role: str | None) -> list[str]:
    """The roles someone with `role` may hand out (never above their own)."""
    return [r for r in ROLE_RANK if role_rank(r) <= role_rank(role)][::-1]


def _require_outranks(my_role: str | None, membership: TeamMembership) -> None:
    if role_rank(membership.role) > role_rank(my_role):
        raise PermissionDenied(f"Only an owner can change or remove an owner; your role is {my_role}.")


def _team_context(request, team) -> dict:
    follow_team(request, team.pk)
    return {"team": team, "my_role": team_role(request, team)}


@login_required
def team_list(request):
    teams = (selectors.team_list(user=request.user).annotate(member_count=Count("memberships", distinct=True))
             .order_by("name"))
    rows = [{"team": t, "role": team_role(request, t)} for t in teams]
    return render_page(request, "console/team_list.html", {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def team_add(request):
    def act(data):
        team = services.team_create(name=data["name"], owner=request.user)
        request.session[SESSION_TEAM] = team.pk
        return done(request, reverse("team", args=[team.pk]), f"Team {team.name} created; you are its owner.")

    context = {"title": "Create team", "action": reverse("team_add"), "cancel_url": reverse("team_list")}
    return form_page(request, TeamForm(request.POST or None), context, act, template="console/team_form.html",
                     partial="console/_team_form.html")


@login_required
def team(request, pk: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    context = _team_context(request, item)
    members = list(selectors.member_list(user=request.user, team=item))
    my_role = context["my_role"]
    for membership in members:
        membership.is_me = membership.user_id == request.user.pk
        # An admin manages members up to admin; owners manage everyone.
        membership.manageable = (not membership.is_me and role_rank(my_role) >= role_rank(MANAGE_TEAM)
                                 and role_rank(membership.role) <= role_rank(my_role))
    context.update({
        "members": members,
        "invitations": list(selectors.invitation_list(user=request.user, team=item)[:100]),
        "role_help": [(role, ROLE_HELP[role]) for role in roles_up_to(TeamMembership.Role.OWNER)],
        "others": any(not m.is_me for m in members),
    })
    return render_page(request, "console/team_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def team_edit(request, pk: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    require(request, item, OWN_TEAM)
    form = TeamForm(request.POST or None, initial={"name": item.name})

    def act(data):
        services.team_rename(actor=request.user, team=item, name=data["name"])
        return done(request, reverse("team", args=[pk]), f"Team renamed to {item.name}.")

    context = _team_context(request, item)
    context.update({"title": f"Rename team {item.name}", "action": reverse("team_edit", args=[pk]),
                    "cancel_url": reverse("team", args=[pk])})
    return form_page(request, form, context, act, template="console/team_form.html",
                     partial="console/_team_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def team_delete(request, pk: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    require(request, item, OWN_TEAM)

    def act():
        services.team_delete(actor=request.user, team=item)
        request.session.pop(SESSION_TEAM, None)
        return done(request, reverse("team_list"), f"Team {item.name} deleted.")

    instances = item.instances.count()
    context = _team_context(request, item)
    context.update({"object_kind": "team", "object_name": item.name,
                    "consequence": f"Its {instances} instance(s), their MCP servers, tools and backend services are "
                                   "deleted too, their endpoints stop answering at once, and every member loses "
                                   "access.",
                    "action": reverse("team_delete", args=[pk]), "cancel_url": reverse("team", args=[pk])})
    return confirm_page(request, context, act)


@login_required
@require_http_methods(["GET", "POST"])
def team_transfer(request, pk: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    require(request, item, OWN_TEAM)
    members = [m for m in selectors.member_list(user=request.user, team=item) if m.user_id != request.user.pk]

    def act(data):
        target = next(m for m in members if m.user_id == data["user"])
        services.team_transfer_ownership(actor=request.user, team=item, user=target.user)
        return done(request, reverse("team", args=[pk]),
                    f"{target.user.get_username()} now owns team {item.name}; you are an admin.")

    context = _team_context(request, item)
    context.update({"title": "Transfer ownership", "action": reverse("team_transfer", args=[pk]),
                    "cancel_url": reverse("team", args=[pk])})
    return form_page(request, TransferForm(request.POST or None, members=members), context, act,
                     template="console/team_transfer.html", partial="console/_team_transfer_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def team_leave(request, pk: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    require(request, item, READ)

    def act():
        services.team_leave(actor=request.user, team=item)
        request.session.pop(SESSION_TEAM, None)
        return done(request, reverse("team_list"), f"You left team {item.name}.")

    context = _team_context(request, item)
    context.update({"verb": "Leave", "object_kind": "team", "object_name": item.name,
                    "consequence": "You lose access to its instances at once; to come back you need a new "
                                   "invitation.",
                    "action": reverse("team_leave", args=[pk]), "cancel_url": reverse("team", args=[pk])})
    return confirm_page(request, context, act)


@login_required
@require_http_methods(["GET", "POST"])
def team_member_edit(request, pk: int, user_id: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    membership = fetch(selectors.member_get, user=request.user, team=item, user_id=user_id)
    require(request, item, MANAGE_TEAM)
    my_role = team_role(request, item)
    _require_outranks(my_role, membership)

    def act(data):
        services.team_member_set_role(actor=request.user, membership=membership, role=data["role"])
        return done(request, reverse("team", args=[pk]), f"{membership.user.get_username()} is now {data['role']}.")

    context = _team_context(request, item)
    context.update({"membership": membership, "title": f"Role of {membership.user.get_username()}",
                    "action": reverse("team_member_edit", args=[pk, user_id]), "cancel_url": reverse("team", args=[pk]),
                    "role_help": [(role, ROLE_HELP[role]) for role in roles_up_to(my_role)]})
    form = MemberRoleForm(request.POST or None, roles=roles_up_to(my_role), initial={"role": membership.role})
    return form_page(request, form, context, act, template="console/member_form.html",
                     partial="console/_member_form.html")


@login_required
@require_http_methods(["GET", "POST"])
def team_member_delete(request, pk: int, user_id: int):
    item = fetch(selectors.team_get, user=request.user, pk=pk)
    membership = fetch(selectors.member_get, user=request.user, team=item, user_id=user_id)
    require(request, item, READ if user_id == request.user.pk else MANAGE_TEAM)
    if user_id != request.user.pk:
        _require_outranks(team_role(request, item), membership)

    def act():
        services.team_member_remove(actor=request.user, membership=membership)
        if user_id == request.user.pk:
            request.session.pop(SESSION_TEAM, None)
            return done(request, reverse("team_list"), f"You left team {item.name}.")
        return done(request, reverse("team", args=[pk]),
                    f"{membership.user.get_username()} removed from team {item.name}.")

    context = _team_context(request, item)
    context.update({"verb": "Remove", "object_kind": "member", "object_name": membership.user.get_username(),
                    "consequence": f"They lose access to team {item.name} at once.",
                    "action": reverse("team_member_delete", args=[pk, user_id]),
                    "cancel_url": reverse("team", args=[pk])})
    return confirm_page(request, context, act)

"""REST endpoints for teams, their members and invitations (parity with the Team settings page), and the
caller's own API tokens. Mounted by console/api/urls.py."""
from __future__ import annotations

from django.urls import path, reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..errors import DomainError
from ..models import TeamMembership
from ..permissions import MANAGE_TEAM, OWN_TEAM, require_role
from ..services.teams import INVITATION_DAYS_DEFAULT, INVITATION_DAYS_MAX
from ..views.common import public_base_url
from .views import _paginate, _validated

ROLE_CHOICES = TeamMembership.Role.choices


class TeamOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    role = serializers.SerializerMethodField(help_text="Your role in the team.")
    created_at = serializers.DateTimeField()

    def get_role(self, obj) -> str:
        return self.context["roles"].get(obj.pk, "")


def _team_output(request, teams, *, many: bool = False):
    items = teams if many else [teams]
    roles = dict(TeamMembership.objects.filter(user=request.user, team__in=[t.pk for t in items])
                 .values_list("team_id", "role"))
    return TeamOutput(teams, many=many, context={"roles": roles}).data


class TeamInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class TeamListApi(APIView):
    @extend_schema(responses=TeamOutput(many=True), description="The teams you belong to, with your role in each.")
    def get(self, request):
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.team_list(user=request.user).order_by("name"), request, view=self)
        return paginator.get_paginated_response(_team_output(request, page, many=True))

    @extend_schema(request=TeamInput, responses={201: TeamOutput}, description="Create a team; you become its owner.")
    def post(self, request):
        team = services.team_create(name=_validated(TeamInput, request.data)["name"], owner=request.user)
        return Response(_team_output(request, team), status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    @extend_schema(responses=TeamOutput)
    def get(self, request, pk: int):
        return Response(_team_output(request, selectors.team_get(user=request.user, pk=pk)))

    @extend_schema(request=TeamInput, responses=TeamOutput, description="Rename the team (owner).")
    def patch(self, request, pk: int):
        team = selectors.team_get(user=request.user, pk=pk)
        services.team_rename(actor=request.user, team=team, name=_validated(TeamInput, request.data)["name"])
        return Response(_team_output(request, team))

    @extend_schema(responses={204: None}, description="Delete the team with its instances, MCP servers and tools "
                                                      "(owner).")
    def delete(self, request, pk: int):
        services.team_delete(actor=request.user, team=selectors.team_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TransferInput(serializers.Serializer):
    user = serializers.IntegerField(help_text="The id of the member who becomes owner.")


class MemberOutput(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=ROLE_CHOICES)


class TeamTransferApi(APIView):
    @extend_schema(request=TransferInput, responses=MemberOutput(many=True),
                   description="Transfer ownership to another member (owner); you stay on as an admin. "
                               "Answers the members with their new roles.")
    def post(self, request, pk: int):
        team = selectors.team_get(user=request.user, pk=pk)
        user_id = _validated(TransferInput, request.data)["user"]
        target = TeamMembership.objects.filter(team=team, user_id=user_id).select_related("user").first()
        if target is None:
            require_role(actor=request.user, team=team, at_least=OWN_TEAM)
            raise DomainError("Not a member.", {"user": ["Transfer ownership to a member of this team."]})
        services.team_transfer_ownership(actor=request.user, team=team, user=target.user)
        return Response(MemberOutput(selectors.member_list(user=request.user, team=team), many=True).data)


class MemberUpdateInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLE_CHOICES)


class TeamMemberListApi(APIView):
    @extend_schema(responses=MemberOutput(many=True), description="The team's members and their roles.")
    def get(self, request, pk: int):
        team = selectors.team_get(user=request.user, pk=pk)
        return _paginate(self, request, selectors.member_list(user=request.user, team=team), MemberOutput)


class TeamMemberDetailApi(APIView):
    @extend_schema(request=MemberUpdateInput, responses=MemberOutput,
                   description="Change a member's role (admin; only an owner changes or makes owners; the last "
                               "owner cannot be demoted).")
    def patch(self, request, pk: int, user_id: int):
        team = selectors.team_get(user=request.user, pk=pk)
        membership = selectors.member_get(user=request.user, team=team, user_id=user_id)
        role = _validated(MemberUpdateInput, request.data)["role"]
        membership = services.team_member_set_role(actor=request.user, membership=membership, role=role)
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None}, description="Remove a member (admin), or leave the team with your own "
                                                      "user id; the last owner can do neither.")
    def delete(self, request, pk: int, user_id: int):
        team = selectors.team_get(user=request.user, pk=pk)
        membership = selectors.member_get(user=request.user, team=team, user_id=user_id)
        services.team_member_remove(actor=request.user, membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    role = serializers.ChoiceField(choices=ROLE_CHOICES)
    status = serializers.ChoiceField(choices=["pending", "accepted", "revoked", "expired"])
    hint = serializers.CharField(help_text="The start of the secret, to tell links apart.")
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    accepted_by = serializers.CharField(source="accepted_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class InvitationCreatedOutput(InvitationOutput):
    url = serializers.CharField(help_text="The link to hand over; shown only in this answer.")


class InvitationInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLE_CHOICES, default=TeamMembership.Role.MEMBER)
    expires_in_days = serializers.IntegerField(default=INVITATION_DAYS_DEFAULT, min_value=1,
                                               max_value=INVITATION_DAYS_MAX)


class TeamInvitationListApi(APIView):
    @extend_schema(responses=InvitationOutput(many=True), description="The team's invitations with their status.")
    def get(self, request, pk: int):
        team = selectors.team_get(user=request.user, pk=pk)
        return _paginate(self, request, selectors.invitation_list(user=request.user, team=team), InvitationOutput)

    @extend_schema(request=InvitationInput, responses={201: InvitationCreatedOutput},
                   examples=[OpenApiExample("A viewer for a week", value={"role": "viewer", "expires_in_days": 7})],
                   description="Create an invitation link (admin; never above your own role). The answer's `url` "
                               "is the only time the link is shown.")
    def post(self, request, pk: int):
        team = selectors.team_get(user=request.user, pk=pk)
        require_role(actor=request.user, team=team, at_least=MANAGE_TEAM)
        invitation, secret = services.invitation_create(actor=request.user, team=team,
                                                        **_validated(InvitationInput, request.data))
        body = InvitationOutput(invitation).data
        body["url"] = public_base_url(request) + reverse("invitation_accept", args=[secret])
        return Response(body, status=status.HTTP_201_CREATED)


class InvitationDetailApi(APIView):
    @extend_schema(responses=InvitationOutput)
    def get(self, request, pk: int):
        return Response(InvitationOutput(selectors.invitation_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None}, description="Revoke a pending invitation (admin): its link stops working.")
    def delete(self, request, pk: int):
        services.invitation_revoke(actor=request.user, invitation=selectors.invitation_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    hint = serializers.CharField(help_text="The start of the token, to tell tokens apart.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)


class TokenListApi(APIView):
    @extend_schema(responses=TokenOutput(many=True), description="Your own API tokens (never their secrets).")
    def get(self, request):
        return _paginate(self, request, selectors.api_token_list(user=request.user), TokenOutput)


class TokenDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke one of your API tokens at once.")
    def delete(self, request, pk: int):
        services.api_token_revoke(actor=request.user, token=selectors.api_token_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("teams/", TeamListApi.as_view(), name="api_team_list"),
    path("teams/<int:pk>/", TeamDetailApi.as_view(), name="api_team"),
    path("teams/<int:pk>/transfer", TeamTransferApi.as_view(), name="api_team_transfer"),
    path("teams/<int:pk>/members/", TeamMemberListApi.as_view(), name="api_team_member_list"),
    path("teams/<int:pk>/members/<int:user_id>/", TeamMemberDetailApi.as_view(), name="api_team_member"),
    path("teams/<int:pk>/invitations/", TeamInvitationListApi.as_view(), name="api_team_invitation_list"),
    path("invitations/<int:pk>/", InvitationDetailApi.as_view(), name="api_invitation"),
    path("tokens/", TokenListApi.as_view(), name="api_token_list"),
    path("tokens/<int:pk>/", TokenDetailApi.as_view(), name="api_token"),
]

"""REST endpoints for OAuth sign-in: tokens issued to a consumer (list, revoke) and the team's pre-registered
OAuth clients (list, register, delete). Mounted by console/api/urls.py."""
from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from .views import _paginate, _team_for, _validated


class OAuthTokenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    consumer = serializers.IntegerField(source="consumer_id")
    mcp_server = serializers.IntegerField(source="mcp_server_id")
    mcp_server_name = serializers.CharField(source="mcp_server.name")
    client_name = serializers.CharField()
    client_id = serializers.CharField(source="access_token.application.client_id")
    scope = serializers.CharField(source="access_token.scope")
    resource = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(source="access_token.expires")

    def get_resource(self, obj) -> str:
        return (obj.access_token.resource or [""])[0]


class ConsumerOAuthTokenListApi(APIView):
    @extend_schema(responses=OAuthTokenOutput(many=True),
                   description="Access tokens issued to OAuth clients signed in as this consumer, newest first.")
    def get(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        qs = selectors.consumer_oauth_token_list(user=request.user, consumer=consumer).select_related(
            "access_token__application")
        return _paginate(self, request, qs, OAuthTokenOutput)


class OAuthTokenDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke an access token and its refresh token (admin): "
                                                      "every gateway process refuses it from its next request.")
    def delete(self, request, pk: int):
        services.consumer_oauth_token_revoke(actor=request.user,
                                             token=selectors.consumer_oauth_token_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class OAuthClientOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    name = serializers.CharField(source="application.name")
    client_id = serializers.CharField(source="application.client_id")
    client_type = serializers.CharField(source="application.client_type")
    redirect_uris = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_redirect_uris(self, obj) -> list[str]:
        return obj.application.redirect_uris.split()


class OAuthClientCreatedOutput(OAuthClientOutput):
    client_secret = serializers.CharField(help_text="Shown only in this answer (confidential clients); empty for a "
                                                    "public client.")


class OAuthClientInput(serializers.Serializer):
    team = serializers.IntegerField(required=False)
    name = serializers.CharField(max_length=255)
    redirect_uris = serializers.ListField(child=serializers.CharField(max_length=2000), min_length=1, max_length=20)
    confidential = serializers.BooleanField(default=False, help_text="A client that keeps a secret (a web app).")


class OAuthClientListApi(APIView):
    @extend_schema(responses=OAuthClientOutput(many=True), description="The OAuth clients your teams registered.")
    def get(self, request):
        return _paginate(self, request, selectors.oauth_client_list(user=request.user), OAuthClientOutput)

    @extend_schema(request=OAuthClientInput, responses={201: OAuthClientCreatedOutput},
                   examples=[OpenApiExample("A web app", value={"name": "Team portal", "confidential": True,
                                                               "redirect_uris": ["https://portal.example/cb"]})],
                   description="Pre-register an OAuth client for the team (admin); a confidential client's secret "
                               "is in this answer only.")
    def post(self, request):
        data = _validated(OAuthClientInput, request.data)
        team = _team_for(request, data.pop("team", None))
        client, secret = services.oauth_client_register(actor=request.user, team=team, **data)
        client.client_secret = secret  # for the answer only: the stored secret is a hash
        return Response(OAuthClientCreatedOutput(client).data, status=status.HTTP_201_CREATED)


class OAuthClientDetailApi(APIView):
    @extend_schema(responses=OAuthClientOutput)
    def get(self, request, pk: int):
        return Response(OAuthClientOutput(selectors.oauth_client_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None}, description="Delete a pre-registered client and every token it holds.")
    def delete(self, request, pk: int):
        services.oauth_client_delete(actor=request.user, client=selectors.oauth_client_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("consumers/<int:pk>/oauth-tokens/", ConsumerOAuthTokenListApi.as_view(), name="api_consumer_oauth_token_list"),
    path("oauth-tokens/<int:pk>/", OAuthTokenDetailApi.as_view(), name="api_oauth_token"),
    path("oauth-clients/", OAuthClientListApi.as_view(), name="api_oauth_client_list"),
    path("oauth-clients/<int:pk>/", OAuthClientDetailApi.as_view(), name="api_oauth_client"),
]

"""REST endpoints for consumers, their API keys and JWT credentials, and a server's Consumer Authentication and
authorizations (parity with the Consumers page and the Consumer Authentication tab). Mounted by console/api/urls.py."""
from __future__ import annotations

from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors, services
from ..crypto import mask
from ..models import ConsumerApiKey, ConsumerAuthMethod, CredentialSource, JwtCredential
from .views import _paginate, _team_for, _validated


# ---------------------------------------------------------------- consumers

class ConsumerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    name = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    api_key_count = serializers.IntegerField(default=0, help_text="Keys not revoked.")
    jwt_credential_count = serializers.IntegerField(default=0)
    authorization_count = serializers.IntegerField(default=0, help_text="MCP servers it is authorized on.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ConsumerInput(serializers.Serializer):
    team = serializers.IntegerField(required=False, help_text="Team id; defaults to your only team.")
    name = serializers.CharField(max_length=63, help_text="Lowercase letters, digits, - and _; unique in the team.")
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    enabled = serializers.BooleanField(required=False, default=True)


class ConsumerUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=63, required=False)
    description = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False)


class ConsumerListApi(APIView):
    @extend_schema(responses=ConsumerOutput(many=True), description="The consumers of your teams.")
    def get(self, request):
        return _paginate(self, request, selectors.consumer_list(user=request.user), ConsumerOutput)

    @extend_schema(request=ConsumerInput, responses={201: ConsumerOutput},
                   examples=[OpenApiExample("An agent", value={"name": "billing-agent",
                                                               "description": "The billing assistant"})],
                   description="Create a consumer (admin). Give `team` when you belong to several teams.")
    def post(self, request):
        data = _validated(ConsumerInput, request.data)
        team = _team_for(request, data.pop("team", None))
        consumer = services.consumer_create(actor=request.user, team=team, **data)
        return Response(ConsumerOutput(selectors.consumer_get(user=request.user, pk=consumer.pk)).data,
                        status=status.HTTP_201_CREATED)


class ConsumerDetailApi(APIView):
    @extend_schema(responses=ConsumerOutput)
    def get(self, request, pk: int):
        return Response(ConsumerOutput(selectors.consumer_get(user=request.user, pk=pk)).data)

    @extend_schema(request=ConsumerUpdateInput, responses=ConsumerOutput,
                   description="Rename, describe, enable or disable a consumer (admin). A disabled consumer's "
                               "credentials are refused.")
    def patch(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        services.consumer_update(actor=request.user, consumer=consumer,
                                 **_validated(ConsumerUpdateInput, request.data))
        return Response(ConsumerOutput(selectors.consumer_get(user=request.user, pk=pk)).data)

    @extend_schema(responses={204: None},
                   description="Delete a consumer with its API keys, JWT credentials and authorizations (admin).")
    def delete(self, request, pk: int):
        services.consumer_delete(actor=request.user, consumer=selectors.consumer_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- API keys

def key_status(key: ConsumerApiKey) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "expired"
    return "active"


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    consumer = serializers.IntegerField(source="consumer_id")
    name = serializers.CharField()
    hint = serializers.CharField(help_text="The prefix and the last 4 characters, to tell keys apart.")
    status = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Lags by up to a few seconds.")
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)

    def get_status(self, obj) -> str:
        return key_status(obj)


class ApiKeyCreatedOutput(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField(help_text="The API key itself: shown only in this answer.")
    prefix = serializers.CharField(help_text="What every consumer API key starts with.")
    expires_at = serializers.DateTimeField(allow_null=True)


class ApiKeyInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None,
                                           help_text="ISO 8601, in the future; none for a key that does not expire.")


class ConsumerApiKeyListApi(APIView):
    @extend_schema(responses=ApiKeyOutput(many=True),
                   description="A consumer's API keys, newest first, without the keys themselves.")
    def get(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        return _paginate(self, request, selectors.consumer_api_key_list(user=request.user, consumer=consumer),
                         ApiKeyOutput)

    @extend_schema(request=ApiKeyInput, responses={201: ApiKeyCreatedOutput},
                   examples=[OpenApiExample("A key for 90 days", value={"name": "laptop",
                                                                        "expires_at": "2027-03-01T00:00:00Z"})],
                   description="Issue an API key (admin). The answer's `key` is the only time it is shown; "
                               "only its digest is stored.")
    def post(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        key, secret = services.consumer_api_key_issue(actor=request.user, consumer=consumer,
                                                      **_validated(ApiKeyInput, request.data))
        return Response(ApiKeyCreatedOutput({"id": key.pk, "key": secret, "prefix": ConsumerApiKey.PREFIX,
                                             "expires_at": key.expires_at}).data, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke an API key (admin): it stops working within a second.")
    def delete(self, request, pk: int):
        services.consumer_api_key_revoke(actor=request.user,
                                         api_key=selectors.consumer_api_key_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- JWT credentials

class JwtCredentialOutput(serializers.Serializer):
    id = serializers.IntegerField()
    consumer = serializers.IntegerField(source="consumer_id")
    algorithm = serializers.ChoiceField(choices=JwtCredential.Algorithm.choices)
    secret = serializers.SerializerMethodField(help_text="HS* only, masked: the secret is never returned.")
    public_key = serializers.CharField()
    jwks_url = serializers.CharField()
    issuer = serializers.CharField()
    audience = serializers.CharField()
    consumer_claim = serializers.CharField(help_text="The claim whose value must be the consumer's name.")
    created_at = serializers.DateTimeField()

    def get_secret(self, obj) -> str:
        return mask(obj.secret)


class JwtCredentialInput(serializers.Serializer):
    algorithm = serializers.ChoiceField(choices=JwtCredential.Algorithm.choices)
    secret = serializers.CharField(max_length=4096, required=False, allow_blank=True, default="", trim_whitespace=False,
                                   help_text="HS256/384/512: the shared secret, at least 32 bytes.")
    public_key = serializers.CharField(max_length=16000, required=False, allow_blank=True, default="",
                                       help_text="RS*, PS*, ES*, EdDSA: a PEM public key.")
    jwks_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="",
                                     help_text="RS*, PS*, ES*, EdDSA: an http(s) URL of a JWKS document.")
    issuer = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    audience = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    consumer_claim = serializers.CharField(max_length=100, required=False, default="sub")


class ConsumerJwtCredentialListApi(APIView):
    @extend_schema(responses=JwtCredentialOutput(many=True), description="A consumer's JWT credentials.")
    def get(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        return _paginate(self, request, selectors.jwt_credential_list(user=request.user, consumer=consumer),
                         JwtCredentialOutput)

    @extend_schema(request=JwtCredentialInput, responses={201: JwtCredentialOutput},
                   examples=[OpenApiExample("RS256 from a JWKS URL", value={
                       "algorithm": "RS256", "jwks_url": "https://login.example.com/.well-known/jwks.json",
                       "issuer": "https://login.example.com/", "audience": "mcp-gateway"})],
                   description="Add a JWT credential (admin): exactly one of `secret` (HS*), `public_key` or "
                               "`jwks_url` (RS*, PS*, ES*, EdDSA). A private key is refused and never stored.")
    def post(self, request, pk: int):
        consumer = selectors.consumer_get(user=request.user, pk=pk)
        credential = services.jwt_credential_create(actor=request.user, consumer=consumer,
                                                    **_validated(JwtCredentialInput, request.data))
        return Response(JwtCredentialOutput(credential).data, status=status.HTTP_201_CREATED)


class JwtCredentialDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Delete a JWT credential (admin).")
    def delete(self, request, pk: int):
        services.jwt_credential_delete(actor=request.user,
                                       credential=selectors.jwt_credential_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------- a server's Consumer Authentication

class ConsumerAuthSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    method = serializers.ChoiceField(choices=ConsumerAuthMethod.choices)
    source = serializers.ChoiceField(choices=CredentialSource.choices, default=CredentialSource.BEARER,
                                     help_text="bearer (Authorization: Bearer, recommended), header or query.")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="",
                                 help_text="The header or query parameter name (header and query only).")


class ConsumerAuthApi(APIView):
    @extend_schema(responses=ConsumerAuthSerializer, description="The server's Consumer Authentication settings.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return Response(selectors.consumer_auth_get(mcp_server=server).as_dict())

    @extend_schema(request=ConsumerAuthSerializer, responses=ConsumerAuthSerializer,
                   examples=[OpenApiExample("API keys in a header", value={
                       "enabled": True, "method": "api_key", "source": "header", "name": "X-API-Key"})],
                   description="Turn Consumer Authentication on or off and say where the credential is read "
                               "(admin). With it on, only authorized consumers reach the server.")
    def put(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        server = services.mcp_server_set_consumer_auth(actor=request.user, mcp_server=server,
                                                       **_validated(ConsumerAuthSerializer, request.data))
        return Response(selectors.consumer_auth_get(mcp_server=server).as_dict())


class AuthorizationOutput(serializers.Serializer):
    consumer = serializers.IntegerField(source="consumer_id")
    consumer_name = serializers.CharField(source="consumer.name")
    tools = serializers.ListField(child=serializers.CharField(), allow_null=True,
                                  help_text="The tools the consumer may use; null for all.")
    created_at = serializers.DateTimeField()


class AuthorizationInput(serializers.Serializer):
    consumer = serializers.IntegerField(help_text="The id of a consumer of the server's team.")
    tools = serializers.ListField(child=serializers.CharField(max_length=128), allow_null=True, required=False,
                                  default=None, max_length=1000,
                                  help_text="Tool names of this server; null (or absent) for all tools.")


class AuthorizationListApi(APIView):
    @extend_schema(responses=AuthorizationOutput(many=True), description="The consumers authorized on the server.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        return _paginate(self, request, selectors.authorization_list(user=request.user, mcp_server=server),
                         AuthorizationOutput)

    @extend_schema(request=AuthorizationInput, responses={201: AuthorizationOutput, 200: AuthorizationOutput},
                   examples=[OpenApiExample("Two tools only", value={"consumer": 3, "tools": ["listPets",
                                                                                              "getPet"]})],
                   description="Authorize a consumer on the server (admin), optionally for some tools only; for "
                               "a consumer already authorized this replaces its tool set (200).")
    def post(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        data = _validated(AuthorizationInput, request.data)
        consumer = selectors.consumer_get(user=request.user, pk=data["consumer"])
        existed = selectors.authorization_list(user=request.user, mcp_server=server).filter(
            consumer=consumer).exists()
        authorization = services.consumer_authorize(actor=request.user, mcp_server=server, consumer=consumer,
                                                    tools=data["tools"])
        return Response(AuthorizationOutput(authorization).data,
                        status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)


class AuthorizationDetailApi(APIView):
    @extend_schema(responses={204: None}, description="Revoke a consumer's authorization on the server (admin).")
    def delete(self, request, pk: int, consumer_id: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        authorization = selectors.authorization_get(user=request.user, mcp_server=server, consumer_id=consumer_id)
        services.consumer_authorization_revoke(actor=request.user, mcp_server=server,
                                               consumer=authorization.consumer)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("consumers/", ConsumerListApi.as_view(), name="api_consumer_list"),
    path("consumers/<int:pk>/", ConsumerDetailApi.as_view(), name="api_consumer"),
    path("consumers/<int:pk>/api-keys/", ConsumerApiKeyListApi.as_view(), name="api_consumer_api_key_list"),
    path("api-keys/<int:pk>/", ApiKeyDetailApi.as_view(), name="api_consumer_api_key"),
    path("consumers/<int:pk>/jwt-credentials/", ConsumerJwtCredentialListApi.as_view(),
         name="api_jwt_credential_list"),
    path("jwt-credentials/<int:pk>/", JwtCredentialDetailApi.as_view(), name="api_jwt_credential"),
    path("mcp-servers/<int:pk>/consumer-auth", ConsumerAuthApi.as_view(), name="api_consumer_auth"),
    path("mcp-servers/<int:pk>/authorizations/", AuthorizationListApi.as_view(), name="api_authorization_list"),
    path("mcp-servers/<int:pk>/authorizations/<int:consumer_id>/", AuthorizationDetailApi.as_view(),
         name="api_authorization"),
]

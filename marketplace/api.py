"""REST endpoints of the market under /api/v1/market/ (parity with the market's pages)."""
from __future__ import annotations

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from console import selectors as console_selectors
from console.errors import DomainError
from console.views.common import public_base_url

from . import selectors, services
from .models import Submission
from .present import subscription_client_configs, subscription_endpoints


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ToolOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    inputSchema = serializers.JSONField()  # noqa: N815 (MCP's own name)


class VersionOutput(serializers.Serializer):
    version = serializers.CharField()
    changelog = serializers.CharField()
    approved_at = serializers.DateTimeField()


class ListingOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField(source="registry_name")
    title = serializers.CharField()
    publisher = serializers.CharField()
    icon = serializers.CharField()
    category = serializers.CharField(source="category.slug")
    tags = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()
    kind = serializers.CharField()
    works_offline = serializers.BooleanField()
    needs_key = serializers.BooleanField(help_text="Subscribers must give a secret, such as the backend's API key.")
    tool_count = serializers.IntegerField()
    subscriber_count = serializers.IntegerField(default=0)
    created_at = serializers.DateTimeField()


class ListingDetailOutput(ListingOutput):
    readme = serializers.SerializerMethodField()
    readme_html = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()
    tools = serializers.SerializerMethodField()
    config_fields = serializers.SerializerMethodField()
    transports = serializers.SerializerMethodField()
    versions = serializers.SerializerMethodField()

    def _latest(self, obj):
        if not hasattr(obj, "_latest"):
            obj._latest = obj.latest_version()
        return obj._latest

    def get_readme(self, obj) -> str:
        return self._latest(obj).readme

    def get_readme_html(self, obj) -> str:
        from .readme import render_readme

        return render_readme(self._latest(obj).readme)

    def get_version(self, obj) -> str:
        return self._latest(obj).version

    def get_tools(self, obj) -> list:
        return ToolOutput(self._latest(obj).tools, many=True).data

    def get_config_fields(self, obj) -> list:
        return [{k: v for k, v in f.items() if k != "scheme"} for f in self._latest(obj).config_fields]

    def get_transports(self, obj) -> list[str]:
        return ["streamable_http", "sse"]

    def get_versions(self, obj) -> list:
        return VersionOutput(selectors.listing_versions(listing=obj), many=True).data


class _Browse(APIView):
    """Browsing follows the operator's setting: signed-in users, or anyone when MARKET_ANONYMOUS_BROWSING is on."""

    def get_permissions(self):
        return [AllowAny()]

    def check(self, request):
        if not selectors.may_browse(request.user):
            raise NotAuthenticated("Sign in to browse the market.")


class ListingListApi(_Browse):
    @extend_schema(responses=ListingOutput(many=True),
                   description="Listed listings: `q` (keywords or a task description, ranked by relevance), "
                               "`category` (slug), `sort` (relevance, popular, new, name); paginated.")
    def get(self, request):
        self.check(request)
        results = selectors.listing_search(q=request.query_params.get("q", ""),
                                           category=request.query_params.get("category", "")[:40],
                                           sort=request.query_params.get("sort", ""))
        paginator = LimitOffsetPagination()
        paginator.default_limit = selectors.PAGE_SIZE
        page = paginator.paginate_queryset(results, request, view=self)
        return paginator.get_paginated_response(ListingOutput(page, many=True).data)


class ListingDetailApi(_Browse):
    @extend_schema(responses=ListingDetailOutput)
    def get(self, request, slug: str):
        self.check(request)
        return Response(ListingDetailOutput(selectors.listing_get(slug=slug)).data)


class SubscriptionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    listing = serializers.CharField(source="listing.slug")
    version = serializers.CharField(source="version.version")
    team = serializers.IntegerField(source="team_id")
    instance = serializers.IntegerField(source="instance_id")
    mcp_server = serializers.IntegerField(source="mcp_server_id", allow_null=True)
    consumer = serializers.IntegerField(source="consumer_id", allow_null=True)
    api_key_hint = serializers.CharField(source="api_key.hint", default=None)
    user = serializers.CharField(source="user.username")
    upgrade_available = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_upgrade_available(self, obj) -> str | None:
        latest = obj.listing.latest_version()
        return latest.version if latest and latest.number > obj.version.number else None


def _endpoint_answer(request, subscription, api_key: str | None) -> dict:
    base = public_base_url(request)
    return {"subscription": SubscriptionOutput(subscription).data,
            "endpoints": subscription_endpoints(subscription, base), "api_key": api_key,
            "client_configs": subscription_client_configs(subscription, base, api_key)}


class SubscribeApi(APIView):
    class InputSerializer(serializers.Serializer):
        team = serializers.IntegerField(required=False)
        instance = serializers.IntegerField(required=False)
        config = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=2000),
                                       required=False, default=dict)

    @extend_schema(request=InputSerializer, responses={201: None, 200: None},
                   description="Get endpoint: provisions an MCP server, a consumer with an API key, Consumer "
                               "Authentication and the authorization (201, with the key once); a second call answers "
                               "the existing subscription (200, api_key null).")
    def post(self, request, slug: str):
        data = _validated(self.InputSerializer, request.data)
        listing = selectors.listing_get(slug=slug)
        teams = list(console_selectors.team_list(user=request.user)[:2])
        if data.get("team") is not None:
            team = console_selectors.team_get(user=request.user, pk=data["team"])
        elif len(teams) == 1:
            team = teams[0]
        else:
            raise DomainError("Choose a team.", {"team": ["You belong to several teams (or none): give a team id."]})
        if data.get("instance") is not None:
            instance = console_selectors.instance_get(user=request.user, pk=data["instance"])
        else:
            instances = list(console_selectors.instance_list(user=request.user, team=team)[:2])
            if len(instances) != 1:
                raise DomainError("Choose an instance.", {"instance": ["Give an instance id of the team."]})
            instance = instances[0]
        result = services.listing_subscribe(actor=request.user, listing=listing, team=team, instance=instance,
                                            config=data.get("config"))
        return Response(_endpoint_answer(request, result.subscription, result.api_key),
                        status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


class SubscriptionListApi(APIView):
    @extend_schema(responses=SubscriptionOutput(many=True), description="Subscriptions of your teams.")
    def get(self, request):
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.subscription_list(user=request.user).order_by("pk"), request,
                                           view=self)
        return paginator.get_paginated_response(SubscriptionOutput(page, many=True).data)


class SubscriptionDetailApi(APIView):
    @extend_schema(responses=None, description="A subscription with its endpoints and client configurations.")
    def get(self, request, pk: int):
        return Response(_endpoint_answer(request, selectors.subscription_get(user=request.user, pk=pk), None))

    @extend_schema(responses={204: None},
                   description="Unsubscribe: removes exactly the MCP server, consumer and key it provisioned.")
    def delete(self, request, pk: int):
        services.subscription_delete(actor=request.user,
                                     subscription=selectors.subscription_get(user=request.user, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionRotateKeyApi(APIView):
    @extend_schema(request=None, responses=None, description="A new key (shown once); the old one is revoked.")
    def post(self, request, pk: int):
        subscription = selectors.subscription_get(user=request.user, pk=pk)
        secret = services.subscription_rotate_key(actor=request.user, subscription=subscription)
        return Response(_endpoint_answer(request, subscription, secret))


class SubscriptionUpgradeApi(APIView):
    @extend_schema(request=None, responses=None,
                   description="Move to the listing's latest version: tools change, endpoint and key stay.")
    def post(self, request, pk: int):
        subscription = selectors.subscription_get(user=request.user, pk=pk)
        services.subscription_upgrade(actor=request.user, subscription=subscription)
        return Response(_endpoint_answer(request, subscription, None))


class SubmissionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    team = serializers.IntegerField(source="team_id")
    listing = serializers.CharField(source="listing.slug")
    version = serializers.CharField(source="version.version")
    source = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField()
    listed = serializers.BooleanField(source="listing.listed")
    created_at = serializers.DateTimeField()
    reviewed_at = serializers.DateTimeField(allow_null=True)


class SubmissionListApi(APIView):
    class InputSerializer(serializers.Serializer):
        team = serializers.IntegerField()
        source = serializers.ChoiceField(choices=Submission.Source.values)
        mcp_server = serializers.IntegerField(required=False)
        listing = serializers.CharField(required=False, max_length=50, help_text="Slug: a new version of it.")
        slug = serializers.CharField(required=False, max_length=50)
        title = serializers.CharField(required=False, max_length=100)
        summary = serializers.CharField(required=False, max_length=200)
        category = serializers.CharField(required=False, max_length=40)
        tags = serializers.ListField(child=serializers.CharField(max_length=30), required=False, max_length=10)
        readme = serializers.CharField(required=False, allow_blank=True, max_length=50_000)
        version = serializers.CharField(required=False, max_length=40)
        changelog = serializers.CharField(required=False, allow_blank=True, max_length=5000)
        tool_yaml = serializers.CharField(required=False, max_length=500_000)
        config_fields = serializers.ListField(child=serializers.DictField(), required=False, max_length=20)
        server_json = serializers.JSONField(required=False)
        openapi = serializers.CharField(required=False, trim_whitespace=False, max_length=20 * 1024 * 1024,
                                        help_text="An OpenAPI description (JSON or YAML) for the import job.")
        openapi_file = serializers.FileField(required=False, help_text="Or the OpenAPI file (multipart).")

    @extend_schema(responses=SubmissionOutput(many=True),
                   description="Your teams' submissions (staff: every submission, the review queue).")
    def get(self, request):
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.submission_list(user=request.user), request, view=self)
        return paginator.get_paginated_response(SubmissionOutput(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: SubmissionOutput})
    def post(self, request):
        data = dict(_validated(self.InputSerializer, request.data))
        team = console_selectors.team_get(user=request.user, pk=data.pop("team"))
        upload = data.pop("openapi_file", None)
        if upload is not None:
            limit = int(getattr(settings, "OPENAPI_IMPORT_MAX_BYTES", 20 * 1024 * 1024))
            data["openapi"], data["openapi_name"] = upload.read(limit + 1), upload.name
        server = None
        if data.get("mcp_server") is not None:
            server = console_selectors.mcp_server_get(user=request.user, pk=data.pop("mcp_server"))
        submission = services.submission_create(actor=request.user, team=team, source=data.pop("source"),
                                                data=data, mcp_server=server)
        return Response(SubmissionOutput(submission).data, status=status.HTTP_201_CREATED)


class SubmissionDetailApi(APIView):
    @extend_schema(responses=SubmissionOutput)
    def get(self, request, pk: int):
        return Response(SubmissionOutput(selectors.submission_get(user=request.user, pk=pk)).data)


class SubmissionApproveApi(APIView):
    @extend_schema(request=None, responses=SubmissionOutput, description="Approve (staff): the version is listed.")
    def post(self, request, pk: int):
        submission = selectors.submission_get(user=request.user, pk=pk)
        return Response(SubmissionOutput(services.submission_approve(actor=request.user,
                                                                     submission=submission)).data)


class SubmissionRejectApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses=SubmissionOutput,
                   description="Reject with a reason (staff); the submitter sees it.")
    def post(self, request, pk: int):
        submission = selectors.submission_get(user=request.user, pk=pk)
        if not request.user.is_staff:
            raise DomainError("Only staff review submissions.", code="permission_denied")
        reason = _validated(self.InputSerializer, request.data)["reason"]
        return Response(SubmissionOutput(services.submission_reject(actor=request.user, submission=submission,
                                                                    reason=reason)).data)


urlpatterns = [
    path("listings/", ListingListApi.as_view(), name="api_market_listing_list"),
    path("listings/<slug:slug>/", ListingDetailApi.as_view(), name="api_market_listing"),
    path("listings/<slug:slug>/subscribe", SubscribeApi.as_view(), name="api_market_subscribe"),
    path("subscriptions/", SubscriptionListApi.as_view(), name="api_market_subscription_list"),
    path("subscriptions/<int:pk>/", SubscriptionDetailApi.as_view(), name="api_market_subscription"),
    path("subscriptions/<int:pk>/rotate-key", SubscriptionRotateKeyApi.as_view(), name="api_market_rotate_key"),
    path("subscriptions/<int:pk>/upgrade", SubscriptionUpgradeApi.as_view(), name="api_market_upgrade"),
    path("submissions/", SubmissionListApi.as_view(), name="api_market_submission_list"),
    path("submissions/<int:pk>/", SubmissionDetailApi.as_view(), name="api_market_submission"),
    path("submissions/<int:pk>/approve", SubmissionApproveApi.as_view(), name="api_market_approve"),
    path("submissions/<int:pk>/reject", SubmissionRejectApi.as_view(), name="api_market_reject"),
]


class RouterKeyApi(APIView):
    @extend_schema(request=None, responses=None,
                   description="Issue your market router key (shown once; an earlier one is revoked), with the "
                               "router's endpoint. Its consumer belongs to your current (or only) team.")
    def post(self, request):
        from .router import router_key_issue

        teams = list(console_selectors.team_list(user=request.user).order_by("name"))
        team_id = request.data.get("team") if hasattr(request.data, "get") else None
        team = console_selectors.team_get(user=request.user, pk=int(team_id)) if str(team_id or "").isdigit() \
            else (teams[0] if len(teams) == 1 else None)
        if team is None:
            raise DomainError("Choose a team.", {"team": ["Give a team id."]})
        instance = next(iter(console_selectors.instance_list(user=request.user, team=team)
                             .order_by("-is_default", "name")), None)
        if instance is None:
            raise DomainError("The team has no instance.", {"team": ["Create an instance first."]})
        row, secret = router_key_issue(actor=request.user, team=team, instance=instance)
        from .router import router_client_configs

        endpoint = public_base_url(request) + "/market/router/mcp"
        return Response({"endpoint": endpoint, "api_key": secret, "team": team.pk,
                         "client_configs": router_client_configs(url=endpoint, base_url=public_base_url(request),
                                                                 key=secret)},
                        status=status.HTTP_201_CREATED)


urlpatterns.append(path("router/key", RouterKeyApi.as_view(), name="api_market_router_key"))

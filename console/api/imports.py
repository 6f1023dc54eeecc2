"""REST API of OpenAPI imports: start one (202), follow it, confirm its preview."""
from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway import boundedjson

from .. import selectors
from ..errors import DomainError
from ..services import imports as import_services
from .parsers import BoundedJSONParser


class ImportJSONParser(BoundedJSONParser):
    """JSON bodies up to the import size limit (a pasted description can be large)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.OPENAPI_IMPORT_MAX_BYTES + 64 * 1024
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise DomainError(f"The request body is larger than the limit of {limit:,} bytes.",
                              {"body": [f"At most {limit:,} bytes (OPENAPI_IMPORT_MAX_BYTES)."]}, code="too_large")
        try:
            return boundedjson.loads(raw, max_depth=settings.API_MAX_JSON_DEPTH,
                                     max_values=settings.API_MAX_JSON_VALUES, forbid_nul=True)
        except ValueError as exc:
            raise DomainError(f"JSON parse error: {exc}.", {"body": [str(exc)]}, code="parse_error") from None


def job_url(request, job) -> str:
    return request.build_absolute_uri(reverse("api_import", args=[job.pk]))


class ImportJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    mcp_server = serializers.IntegerField(source="mcp_server_id")
    status = serializers.CharField()
    progress = serializers.SerializerMethodField()
    source = serializers.SerializerMethodField()
    title = serializers.CharField()
    counts = serializers.JSONField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    applied_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_progress(self, obj) -> dict:
        return {"step": obj.step, "percent": obj.percent}

    def get_source(self, obj) -> dict:
        return {"kind": obj.source_kind, "name": obj.source_name}

    def get_url(self, obj) -> str:
        return job_url(self.context["request"], obj)


class ImportJobDetailOutput(ImportJobOutput):
    warnings = serializers.JSONField()
    errors = serializers.JSONField()
    preview = serializers.SerializerMethodField()
    result = serializers.JSONField()

    def get_preview(self, obj) -> dict | None:
        if obj.status != obj.Status.SUCCEEDED or not obj.preview:
            return None
        keep = ("name", "method", "path", "summary", "tags", "status", "hand_edited", "deprecated", "selected",
                "warnings")
        return {"tools": [{k: row.get(k) for k in keep} for row in obj.preview.get("tools", [])],
                "yaml": obj.preview_yaml, "security": obj.preview.get("security", []),
                "needs_selection": obj.preview.get("needs_selection", False)}


class ImportListApi(APIView):
    parser_classes = [ImportJSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
        url = serializers.CharField(required=False, max_length=2000)
        base_url = serializers.CharField(required=False, max_length=500, allow_blank=True, default="")

    @extend_schema(responses=ImportJobOutput(many=True), description="The server's recent imports, newest first.")
    def get(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        import_services.import_job_sweep()
        jobs = selectors.import_job_list(user=request.user, mcp_server=server)[:50]
        return Response(ImportJobOutput(jobs, many=True, context={"request": request}).data)

    @extend_schema(request=InputSerializer, responses={202: ImportJobOutput},
                   description='Start an import: JSON {"text": …} or {"url": …}, or multipart `file` (one or more; '
                               "a zip for specs split across files). Answers 202 with the job to follow.")
    def post(self, request, pk: int):
        server = selectors.mcp_server_get(user=request.user, pk=pk)
        files = [(f.name, f.read()) for f in request.FILES.getlist("file")] if hasattr(request, "FILES") else []
        data = {k: v for k, v in request.data.items() if k != "file"} if hasattr(request.data, "items") else {}
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        import_services.import_job_sweep()
        job = import_services.import_job_create(actor=request.user, mcp_server=server, files=files or None,
                                                text=values.get("text"), url=values.get("url"),
                                                base_url=values.get("base_url", ""))
        out = ImportJobOutput(job, context={"request": request}).data
        return Response(out, status=status.HTTP_202_ACCEPTED, headers={"Location": out["url"]})


class ImportDetailApi(APIView):
    @extend_schema(responses=ImportJobDetailOutput)
    def get(self, request, pk: int):
        job = selectors.import_job_get(user=request.user, pk=pk)
        return Response(ImportJobDetailOutput(job, context={"request": request}).data)


class ImportConfirmApi(APIView):
    parser_classes = [ImportJSONParser]

    class InputSerializer(serializers.Serializer):
        tools = serializers.ListField(child=serializers.CharField(max_length=128), required=False, max_length=10_000)
        yaml = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
        credentials = serializers.DictField(child=serializers.CharField(max_length=4000), required=False)
        rename = serializers.DictField(child=serializers.CharField(max_length=128), required=False)

    class OutputSerializer(serializers.Serializer):
        created = serializers.ListField(child=serializers.CharField())
        updated = serializers.ListField(child=serializers.CharField())
        unchanged = serializers.ListField(child=serializers.CharField())
        removed = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=InputSerializer, responses=OutputSerializer,
                   description="Apply the chosen tools (default: the preview's selection), optionally from edited "
                               "YAML, through the same service as PUT …/tools/yaml. `credentials` gives the real "
                               "secret of a proposed backend security scheme by its id; `rename` maps a proposed "
                               "tool name to the one it gets.")
    def post(self, request, pk: int):
        job = selectors.import_job_get(user=request.user, pk=pk)
        data = request.data if isinstance(request.data, dict) else {}
        values = self._validated(data)
        result = import_services.import_job_confirm(actor=request.user, job=job, tools=values.get("tools"),
                                                    yaml_text=values.get("yaml"),
                                                    credentials=values.get("credentials"),
                                                    renames=values.get("rename"))
        return Response(self.OutputSerializer(result).data)

    def _validated(self, data):
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

"""The REST API's edge: domain errors become 4xx answers with a field map, never a 500."""
from __future__ import annotations

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from ..errors import DomainError


def exception_handler(exc, context):
    if isinstance(exc, DomainError):
        code = {"not_found": status.HTTP_404_NOT_FOUND, "permission_denied": status.HTTP_403_FORBIDDEN}.get(
            exc.code, status.HTTP_400_BAD_REQUEST)
        return Response(exc.as_dict(), status=code)
    response = drf_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "Please correct the errors below.", "code": "invalid", "errors": response.data}
    return response

"""The REST API's edge: domain errors become 4xx answers with a field map, never a 500."""
from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from ..errors import DomainError


def _body_refusal(exc):
    """Django's own body limits (hit while DRF reads a body) as domain errors, not Django's bare 400 page."""
    if isinstance(exc, RequestDataTooBig):
        from .parsers import body_too_large

        return body_too_large()
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return DomainError(str(exc), {"body": [str(exc)]}, code="too_many_fields")
    return exc


def exception_handler(exc, context):
    exc = _body_refusal(exc)
    if isinstance(exc, DomainError):
        code = {"not_found": status.HTTP_404_NOT_FOUND, "permission_denied": status.HTTP_403_FORBIDDEN,
                "too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                "conflict": status.HTTP_409_CONFLICT}.get(exc.code, status.HTTP_400_BAD_REQUEST)
        return Response(exc.as_dict(), status=code)
    response = drf_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "Please correct the errors below.", "code": "invalid", "errors": response.data}
    elif response is not None and isinstance(exc, (ParseError, UnsupportedMediaType)):
        # A body DRF could not read (a broken multipart form, an unknown media type): the same shape as ours.
        response.data = {"detail": str(exc.detail), "code": exc.default_code, "errors": {}}
    return response

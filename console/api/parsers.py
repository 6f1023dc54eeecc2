"""The REST API's body parsers: JSON and YAML text within size, nesting-depth and value-count limits.

Form and multipart bodies stay with DRF's parsers: Django bounds them (DATA_UPLOAD_MAX_MEMORY_SIZE,
DATA_UPLOAD_MAX_NUMBER_FIELDS, DATA_UPLOAD_MAX_NUMBER_FILES), and errors.py turns its refusals into 4xx answers.
"""
from __future__ import annotations

from django.conf import settings
from rest_framework.parsers import BaseParser, JSONParser

from gateway import boundedjson

from ..errors import DomainError


def body_too_large() -> DomainError:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return DomainError(f"The request body is larger than the limit of {limit:,} bytes.",
                       {"body": [f"At most {limit:,} bytes."]}, code="too_large")


def _read(stream) -> bytes:
    if stream is None:
        return b""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise body_too_large()
    return raw


class BoundedJSONParser(JSONParser):
    """JSON bodies no deeper than API_MAX_JSON_DEPTH with at most API_MAX_JSON_VALUES values; a 400, never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = _read(stream)
        try:
            return boundedjson.loads(raw, max_depth=settings.API_MAX_JSON_DEPTH,
                                     max_values=settings.API_MAX_JSON_VALUES, forbid_nul=True)
        except ValueError as exc:
            message = str(exc)
            raise DomainError(f"JSON parse error: {message}.", {"body": [message[:1].upper() + message[1:] + "."]},
                              code="parse_error") from None


class YamlParser(BaseParser):
    """Accepts the tool document as a raw YAML body (application/yaml or text/plain); the loader bounds the rest."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = _read(stream)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DomainError("The YAML document must be UTF-8 text.", {"yaml": ["Not UTF-8."]}) from None

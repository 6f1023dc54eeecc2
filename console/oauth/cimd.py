"""Client ID metadata documents fetched through the egress policy (gateway/egress.py), with the draft's hardening."""
from __future__ import annotations

import json
import time

import requests
from django.conf import settings
from oauth2_provider import cimd
from oauth2_provider.settings import oauth2_settings

from gateway.egress import EgressRefusedError, requests_session


class EgressMetadataFetcher:
    """django-oauth-toolkit's fetcher interface: `fetch(client_id)` → (metadata, max_age) or CIMDError.

    The library's own fetcher checks addresses itself; this one uses the product's egress policy instead, so the
    operator's allow and deny lists (GATEWAY_EGRESS_ALLOW/DENY) govern it like every other outbound connection.
    The library still validates the URL form, that the document's client_id equals its URL, the redirect URIs and
    the client type, and caches the document (Cache-Control max-age within its bounds)."""

    def fetch(self, client_id: str):
        cimd._validate_client_id_url(client_id)  # https, a host, a path, no userinfo, fragment or dot segments
        timeout = oauth2_settings.CIMD_FETCH_TIMEOUT_SECONDS
        max_size = oauth2_settings.CIMD_MAX_DOCUMENT_SIZE
        deadline = time.monotonic() + timeout  # the whole fetch, so a slow drip cannot hold a worker
        session = requests_session()  # no redirects, no proxies, every address checked at connect time
        try:
            with session.get(client_id, timeout=(timeout, timeout), stream=True,
                             headers={"Accept": "application/json, application/*+json"},
                             verify=settings.OAUTH_CIMD_CA_BUNDLE or True) as response:
                if response.status_code != 200:
                    raise cimd.CIMDError(f"client_id document returned HTTP {response.status_code}")
                media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if media_type != "application/json" and not (
                        media_type.startswith("application/") and media_type.endswith("+json")):
                    raise cimd.CIMDError(f"client_id document is not JSON (Content-Type: {media_type!r})")
                body = b""
                for chunk in response.iter_content(4096):
                    body += chunk
                    if time.monotonic() > deadline:
                        raise cimd.CIMDError("client_id document took too long to arrive")
                    if len(body) > max_size:
                        raise cimd.CIMDError("client_id document exceeds the maximum allowed size")
                cache_control = response.headers.get("Cache-Control")
        except EgressRefusedError as exc:
            raise cimd.CIMDError(f"client_id document address refused by the egress policy: {exc}") from None
        except requests.RequestException as exc:
            raise cimd.CIMDError(f"could not fetch client_id document: {type(exc).__name__}") from None
        finally:
            session.close()
        try:
            data = json.loads(body)
        except ValueError:
            raise cimd.CIMDError("client_id document is not valid JSON") from None
        if not isinstance(data, dict):
            raise cimd.CIMDError("client_id document must be a JSON object")
        return data, cimd._effective_max_age(cache_control)

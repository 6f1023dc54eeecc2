"""`$ref` resolution across the uploaded files with the `referencing` library; remote refs only when allowed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urldefrag, urljoin

from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

ROOT = "file:///spec/"
MAX_HOPS = 32  # a $ref to a $ref to …: more than this many is a loop


def uri_of(name: str) -> str:
    return ROOT + quote(name)


class RefError(Exception):
    """A reference that cannot be followed; the message says why."""


@dataclass(frozen=True)
class Place:
    """Where a value was read: the resolver that reads references relative to it, and its document's URI."""

    resolver: Any
    base: str


class Refs:
    """Follows references from a place; `fetch` (None: refused) retrieves a remote document as a parsed value."""

    def __init__(self, documents: dict[str, Any], *, swagger2: bool, fetch: Callable[[str], Any] | None = None):
        self.swagger2 = swagger2
        self.fetch = fetch
        registry = Registry(retrieve=self._retrieve).with_resources(
            (uri_of(name), Resource.opaque(doc)) for name, doc in documents.items())
        self._registry = registry

    def _retrieve(self, uri: str) -> Resource:
        if uri.startswith(ROOT):
            raise NoSuchResource(ref=uri)
        if not uri.startswith(("http://", "https://")) or self.fetch is None:
            raise NoSuchResource(ref=uri)
        return Resource.opaque(self.fetch(uri))

    def place(self, name: str) -> Place:
        uri = uri_of(name)
        return Place(self._registry.resolver(base_uri=uri), uri)

    def target(self, ref: str, place: Place) -> str:
        """The absolute reference a `$ref` names (the key of cycles and caches)."""
        if self.swagger2 and ref and "#" not in ref and "/" not in ref and "." not in ref:
            ref = "#/definitions/" + ref  # Swagger 1.2 style `$ref: Pet`, still common in 2.0 files
        if ref.startswith("#"):
            return place.base + ref
        return urljoin(place.base, ref)

    def lookup(self, ref: str, place: Place) -> tuple[Any, Place, str]:
        """The value a reference names, the place it sits in, and its absolute reference."""
        if not isinstance(ref, str):
            raise RefError("$ref must be text")
        absolute = self.target(ref, place)
        if not absolute.startswith(ROOT) and self.fetch is None:
            raise RefError(f"{ref} is a remote reference; remote references are not followed "
                           "(OPENAPI_IMPORT_REMOTE_REFS is off)")
        try:
            resolved = place.resolver.lookup(absolute)
        except Unresolvable as exc:
            cause = _fetch_failure(exc)
            if cause is not None:  # the fetch itself failed: refused by the egress policy, timed out, too large
                raise RefError(f"{ref} cannot be fetched: {cause.message}") from None
            raise RefError(f"{ref} cannot be resolved ({_reason(exc, ref)})") from None
        except Exception as exc:  # a fetch refused by the egress policy, a timeout, a bad document
            raise RefError(f"{ref} cannot be fetched: {exc}") from None
        return resolved.contents, Place(resolved.resolver, urldefrag(absolute)[0]), absolute

    def follow(self, value: Any, place: Place) -> tuple[Any, Place, str | None]:
        """A value with its reference chain followed (parameters, request bodies, responses, …)."""
        absolute = None
        hops = 0
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            hops += 1
            if hops > MAX_HOPS:
                raise RefError(f"{value['$ref']} is part of a reference loop")
            value, place, absolute = self.lookup(value["$ref"], place)
        return value, place, absolute


def _fetch_failure(exc: BaseException):
    """The fetch's own error inside referencing's wrapping of it (as cause or context, at some depth)."""
    from ..errors import DomainError

    seen, todo = set(), [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, DomainError):
            return current
        todo += [current.__cause__, current.__context__]
    return None


def _reason(exc: Exception, ref: str) -> str:
    text = type(exc).__name__
    if text == "PointerToNowhere":
        return "nothing at that JSON pointer"
    if text in ("NoSuchResource", "Unretrievable"):
        return "no such file among the uploaded ones"
    return text

"""The built-in demo REST API (a small pet store under /demo-api/) that the seeded `petstore` MCP server calls."""
from __future__ import annotations

import functools
import json
import secrets
from typing import Any, Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt

from .models import DemoPet

STATUSES = ("available", "pending", "sold")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PARAM_MAX = 2**31 - 1
NAME_MAX = DemoPet._meta.get_field("name").max_length
TAG_MAX = DemoPet._meta.get_field("tag").max_length


class _BadRequest(Exception):
    def __init__(self, errors: dict[str, list[str]] | None = None, detail: str = ""):
        super().__init__(detail)
        self.errors = errors or {}
        self.detail = detail


def _error(status: int, detail: str, errors: dict[str, list[str]] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JsonResponse(body, status=status)


def _invalid(exc: _BadRequest) -> JsonResponse:
    # The detail repeats the field messages so a one-line error template ({{.detail}}) is still useful.
    detail = exc.detail or "Invalid input: " + "; ".join(
        f"{field}: {' '.join(messages)}" for field, messages in exc.errors.items()
    )
    return _error(400, detail, exc.errors)


def _pet_json(pet: DemoPet) -> dict[str, Any]:
    return {"id": pet.id, "name": pet.name, "tag": pet.tag, "status": pet.status,
            "created_at": pet.created_at.isoformat().replace("+00:00", "Z")}


def _authorized(request: HttpRequest) -> JsonResponse | None:
    """None when the request carries the demo key; otherwise the 401 to send."""
    given = request.headers.get("X-API-Key", "")
    if not given:
        return _error(401, "Missing API key: send it in the X-API-Key header.")
    if not secrets.compare_digest(given.encode(), settings.DEMO_API_KEY.encode()):
        return _error(401, "Invalid API key.")
    return None


def _demo_view(methods: tuple[str, ...]) -> Callable:
    """CSRF-exempt, key-checked, JSON 405 for other methods: what every pet endpoint needs."""

    def wrap(func: Callable) -> Callable:
        def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = _error(405, f'Method "{request.method}" not allowed.')
                response["Allow"] = ", ".join(methods)
                return response
            denied = _authorized(request)
            if denied is not None:
                return denied
            try:
                return func(request, *args, **kwargs)
            except _BadRequest as exc:
                return _invalid(exc)

        return csrf_exempt(functools.wraps(func)(view))

    return wrap


def _int_param(request: HttpRequest, name: str, default: int, *, minimum: int, errors: dict) -> int:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        errors[name] = [f"A whole number is required, not “{raw}”."]
        return default
    if value < minimum:
        errors[name] = [f"Ensure this value is greater than or equal to {minimum}."]
    elif value > PARAM_MAX:  # beyond a 64-bit integer the database cannot take it as a LIMIT/OFFSET
        errors[name] = [f"Ensure this value is less than or equal to {PARAM_MAX}."]
        return default
    return value


def _read_body(request: HttpRequest) -> dict[str, Any]:
    content_type = request.content_type or ""
    if content_type == "application/x-www-form-urlencoded":
        form = QueryDict(request.body, encoding=request.encoding)
        return {key: form.get(key) for key in form}
    if content_type == "multipart/form-data" and request.method == "POST":
        return {key: request.POST.get(key) for key in request.POST}
    if not request.body.strip():
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _BadRequest(detail="The request body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise _BadRequest(detail="The request body must be a JSON object.")
    return data


def _clean(data: dict[str, Any], *, partial: bool) -> dict[str, str]:
    """The writable fields present in `data`, validated; a field map of messages on failure."""
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str] = {}
    if "name" in data or not partial:
        name = data.get("name")
        if name is None or (isinstance(name, str) and not name.strip()):
            errors["name"] = ["This field is required."]
        elif not isinstance(name, str):
            errors["name"] = ["Must be a string."]
        elif len(name.strip()) > NAME_MAX:
            errors["name"] = [f"Ensure this field has no more than {NAME_MAX} characters."]
        else:
            cleaned["name"] = name.strip()
    if data.get("tag") is not None:
        tag = data["tag"]
        if not isinstance(tag, str):
            errors["tag"] = ["Must be a string."]
        elif len(tag.strip()) > TAG_MAX:
            errors["tag"] = [f"Ensure this field has no more than {TAG_MAX} characters."]
        else:
            cleaned["tag"] = tag.strip()
    if data.get("status") is not None:
        status = data["status"]
        if status not in STATUSES:
            errors["status"] = [f"“{status}” is not a valid status; choose one of {', '.join(STATUSES)}."]
        else:
            cleaned["status"] = status
    if errors:
        raise _BadRequest(errors)
    return cleaned


def _get_pet(pet_id: str) -> DemoPet | JsonResponse:
    valid = pet_id.isascii() and pet_id.isdigit() and len(pet_id) <= 18
    pet = DemoPet.objects.filter(pk=int(pet_id)).first() if valid else None
    if pet is None:
        return _error(404, f"Pet {pet_id} not found")
    return pet


@_demo_view(("GET", "POST"))
def pets(request: HttpRequest) -> JsonResponse:
    """GET: list pets (filters status, tag, q; paging limit, offset). POST: add a pet."""
    if request.method == "POST":
        fields = _clean(_read_body(request), partial=False)
        pet = DemoPet.objects.create(**fields)
        return JsonResponse(_pet_json(pet), status=201)

    errors: dict[str, list[str]] = {}
    limit = min(_int_param(request, "limit", DEFAULT_LIMIT, minimum=1, errors=errors), MAX_LIMIT)
    offset = _int_param(request, "offset", 0, minimum=0, errors=errors)
    status = request.GET.get("status", "").strip()
    if status and status not in STATUSES:
        errors["status"] = [f"“{status}” is not a valid status; choose one of {', '.join(STATUSES)}."]
    if errors:
        raise _BadRequest(errors)
    qs = DemoPet.objects.all()
    if status:
        qs = qs.filter(status=status)
    if tag := request.GET.get("tag", "").strip():
        qs = qs.filter(tag__iexact=tag)
    if q := request.GET.get("q", "").strip():
        qs = qs.filter(name__icontains=q)
    total = qs.count()
    items = [_pet_json(pet) for pet in qs.order_by("id")[offset:offset + limit]]
    return JsonResponse({"items": items, "total": total, "limit": limit, "offset": offset})


@_demo_view(("GET", "PUT", "PATCH", "DELETE"))
def pet(request: HttpRequest, pet_id: str) -> HttpResponse:
    """GET one pet; PUT or PATCH changes the fields given (others keep their values); DELETE removes it."""
    found = _get_pet(pet_id)
    if isinstance(found, JsonResponse):
        return found
    if request.method == "GET":
        return JsonResponse(_pet_json(found))
    if request.method == "DELETE":
        found.delete()
        return HttpResponse(status=204)
    fields = _clean(_read_body(request), partial=True)
    for name, value in fields.items():
        setattr(found, name, value)
    if fields:
        found.save(update_fields=list(fields))
    return JsonResponse(_pet_json(found))


def _openapi_document(server_url: str) -> dict[str, Any]:
    pet_id = {"name": "petId", "in": "path", "required": True, "description": "The pet's id.",
              "schema": {"type": "integer", "minimum": 1}}
    ref = {"$ref": "#/components/schemas/Pet"}
    input_ref = {"$ref": "#/components/schemas/PetInput"}

    def error(description: str, schema: str = "Error") -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    unauthorized = error("Missing or wrong X-API-Key.")
    not_found = error("No pet has this id.")
    invalid = error("Invalid input; `errors` maps each field to its messages.", "ValidationError")
    body = {"required": True, "content": {"application/json": {"schema": input_ref},
                                          "application/x-www-form-urlencoded": {"schema": input_ref}}}
    partial_body = {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/PetUpdate"}},
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/PetUpdate"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Demo pet store", "version": "1.0.0",
                 "description": "The built-in demo REST API of the MCP gateway console. "
                                "Every operation needs the demo key in the X-API-Key header."},
        "servers": [{"url": server_url}],
        "security": [{"DemoKey": []}],
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets", "summary": "List pets",
                    "description": "Pets in id order, optionally filtered, a page at a time.",
                    "parameters": [
                        {"name": "status", "in": "query", "description": "Only pets with this status.",
                         "schema": {"type": "string", "enum": list(STATUSES)}},
                        {"name": "tag", "in": "query", "description": "Only pets with this tag, e.g. dog.",
                         "schema": {"type": "string"}},
                        {"name": "q", "in": "query", "description": "Only pets whose name contains this text.",
                         "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "description": f"Pets per page (at most {MAX_LIMIT}).",
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                    "default": DEFAULT_LIMIT}},
                        {"name": "offset", "in": "query", "description": "Pets to skip.",
                         "schema": {"type": "integer", "minimum": 0, "default": 0}},
                    ],
                    "responses": {"200": ok("A page of pets.", {"$ref": "#/components/schemas/PetPage"}),
                                  "400": invalid, "401": unauthorized},
                },
                "post": {
                    "operationId": "createPet", "summary": "Add a pet", "requestBody": body,
                    "responses": {"201": ok("The new pet.", ref), "400": invalid, "401": unauthorized},
                },
            },
            "/pets/{petId}": {
                "parameters": [pet_id],
                "get": {"operationId": "getPet", "summary": "Find a pet by id",
                        "responses": {"200": ok("The pet.", ref), "401": unauthorized, "404": not_found}},
                "put": {"operationId": "updatePet", "summary": "Update a pet",
                        "description": "Changes the fields given; the others keep their values.",
                        "requestBody": partial_body,
                        "responses": {"200": ok("The updated pet.", ref), "400": invalid, "401": unauthorized,
                                      "404": not_found}},
                "patch": {"operationId": "patchPet", "summary": "Update some fields of a pet",
                          "requestBody": partial_body,
                          "responses": {"200": ok("The updated pet.", ref), "400": invalid,
                                        "401": unauthorized, "404": not_found}},
                "delete": {"operationId": "deletePet", "summary": "Remove a pet",
                           "responses": {"204": {"description": "Removed."}, "401": unauthorized,
                                         "404": not_found}},
            },
        },
        "components": {
            "securitySchemes": {"DemoKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": {
                "Pet": {"type": "object", "required": ["id", "name", "tag", "status", "created_at"], "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "tag": {"type": "string"},
                    "status": {"type": "string", "enum": list(STATUSES)},
                    "created_at": {"type": "string", "format": "date-time"},
                }},
                "PetInput": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "maxLength": NAME_MAX, "description": "The pet's name."},
                    "tag": {"type": "string", "maxLength": TAG_MAX, "description": "A kind or label, e.g. dog."},
                    "status": {"type": "string", "enum": list(STATUSES), "default": "available"},
                }},
                "PetUpdate": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": NAME_MAX},
                    "tag": {"type": "string", "maxLength": TAG_MAX},
                    "status": {"type": "string", "enum": list(STATUSES)},
                }},
                "PetPage": {"type": "object", "required": ["items", "total", "limit", "offset"], "properties": {
                    "items": {"type": "array", "items": ref},
                    "total": {"type": "integer", "description": "Pets matching the filters, on all pages."},
                    "limit": {"type": "integer"},
                    "offset": {"type": "integer"},
                }},
                "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
                "ValidationError": {"type": "object", "required": ["detail", "errors"], "properties": {
                    "detail": {"type": "string"},
                    "errors": {"type": "object", "additionalProperties": {"type": "array",
                                                                          "items": {"type": "string"}}},
                }},
            },
        },
    }


def openapi(request: HttpRequest) -> JsonResponse:
    """The OpenAPI 3.0 description of this API (no key needed), its server URL where it is mounted."""
    if request.method not in ("GET", "HEAD"):
        response = _error(405, f'Method "{request.method}" not allowed.')
        response["Allow"] = "GET, HEAD"
        return response
    mount = request.path.rsplit("/", 1)[0]  # e.g. /demo-api
    if settings.PUBLIC_BASE_URL:
        server_url = settings.PUBLIC_BASE_URL.rstrip("/") + mount
    else:
        server_url = request.build_absolute_uri(mount)
    return JsonResponse(_openapi_document(server_url), json_dumps_params={"indent": 2})

"""OpenAPI imports as jobs: create (queue), run (convert and diff, no writes to tools), confirm (apply), sweep."""
from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..errors import DomainError
from ..models import ImportJob, McpServer, Tool
from ..toolyaml import ToolSpec, parse_tool_yaml
from .common import audit, require_write
from .tools import ToolsApplyResult, tool_delete, tools_apply_yaml

log = logging.getLogger(__name__)

# Confirming goes through the YAML editor's service, whose documents are bounded: apply in parts of this size.
_APPLY_PART_BYTES = 600_000


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


# ---------------------------------------------------------------- create

def _pack(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def _unpack(blob: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(bytes(blob))) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


@transaction.atomic
def import_job_create(*, actor, mcp_server: McpServer, files: list[tuple[str, bytes]] | None = None,
                      text: str | None = None, url: str | None = None, base_url: str = "") -> ImportJob:
    """Queue an import of uploaded files, pasted text or a URL into an HTTP-to-MCP server."""
    require_write(actor=actor, team=mcp_server.instance.team)
    if mcp_server.server_type != McpServer.Type.HTTP_TO_MCP:
        raise DomainError("OpenAPI imports make tools for HTTP-to-MCP servers.", {"non_field": [
            "A Direct Proxy server lists the tools of its backend MCP server."]})
    given = [x for x in (files, text, url) if x]
    if len(given) != 1:
        raise DomainError("Give the description one way: files, text or a URL.", {"non_field": [
            "Upload files, paste the text, or give a URL (one of them)."]})
    limit = int(_setting("OPENAPI_IMPORT_MAX_BYTES", 20 * 1024 * 1024))
    if files:
        kind, name = "upload", ", ".join(n for n, _ in files)[:500]
        payload = files
    elif text:
        kind, name = "text", "pasted text"
        payload = [("pasted.yaml" if not text.lstrip().startswith("{") else "pasted.json", text.encode("utf-8"))]
    else:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise DomainError("Give an http:// or https:// URL.", {"url": ["Not an http:// or https:// URL."]})
        kind, name, payload = "url", url[:500], []
    size = sum(len(data) for _, data in payload)
    if size > limit:
        raise DomainError(f"The description is {size:,} bytes; the limit is {limit:,} bytes.",
                          {"file" if files else "text": [f"At most {limit:,} bytes (OPENAPI_IMPORT_MAX_BYTES)."]},
                          code="too_large")
    job = ImportJob.objects.create(mcp_server=mcp_server, created_by=actor if getattr(actor, "pk", None) else None,
                                   source_kind=kind, source_name=name, source=_pack(payload) if payload else b"",
                                   options={"url": url} if url else {}, step="queued")
    if base_url:
        job.options["base_url"] = base_url
        job.save(update_fields=["options"])
    audit(actor=actor, team=mcp_server.instance.team, action="import.create", obj=job,
          detail={"mcp_server": mcp_server.pk, "source": kind, "name": name})
    transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int) -> None:
    from ..jobs import job_enqueue
    from ..tasks import openapi_import

    job_enqueue(openapi_import, job_id, thread_name=f"openapi-import-{job_id}")


# ---------------------------------------------------------------- run

def group_name(job_id: int) -> str:
    return f"import-job-{job_id}"


def job_state(job: ImportJob) -> dict:
    return {"id": job.pk, "status": job.status, "progress": {"step": job.step, "percent": job.percent},
            "counts": job.counts, "errors": job.errors[:20], "warnings_count": len(job.warnings)}


def _publish(job: ImportJob) -> None:
    try:
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(group_name(job.pk), {"type": "import.progress", "job": job_state(job)})
    except Exception:  # progress on the page is a courtesy; the row is the truth
        log.warning("could not publish import progress for job %s", job.pk, exc_info=True)


def _save(job: ImportJob, *fields: str) -> None:
    job.save(update_fields=list(fields))
    _publish(job)


def _fetch_url(url: str) -> bytes:
    """The description at a URL: through the egress policy, with timeouts, a size cap and a content-type check."""
    import requests

    from gateway.egress import EgressRefusedError, requests_session

    limit = int(_setting("OPENAPI_IMPORT_MAX_BYTES", 20 * 1024 * 1024))
    timeout = (float(_setting("OPENAPI_IMPORT_CONNECT_TIMEOUT", 5)), float(_setting("OPENAPI_IMPORT_READ_TIMEOUT", 20)))
    session = requests_session()
    try:
        with session.get(url, stream=True, timeout=timeout, headers={
                "Accept": "application/json, application/yaml, text/yaml, text/plain;q=0.5, */*;q=0.1"}) as response:
            if response.status_code != 200:
                raise DomainError(f"{url} answered HTTP {response.status_code}.", {"url": [
                    f"HTTP {response.status_code}"]})
            ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype and not (ctype.endswith(("json", "yaml", "yml")) or ctype.startswith("text/")
                              or ctype in ("application/octet-stream", "application/zip")):
                raise DomainError(f"{url} is {ctype}, not a JSON or YAML description.", {"url": [
                    f"Content-Type {ctype}"]})
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > limit:
                raise DomainError(f"{url} is {int(length):,} bytes; the limit is {limit:,}.", {"url": ["Too large."]})
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise DomainError(f"{url} is larger than the limit of {limit:,} bytes.", {"url": ["Too large."]})
                chunks.append(chunk)
            return b"".join(chunks)
    except EgressRefusedError as exc:
        raise DomainError(f"{url} may not be fetched: {exc}", {"url": [str(exc)]}) from None
    except requests.Timeout:
        raise DomainError(f"{url} did not answer in time.", {"url": ["Timed out."]}) from None
    except requests.RequestException as exc:
        raise DomainError(f"{url} could not be fetched: {exc}", {"url": [str(exc)]}) from None
    finally:
        session.close()


def _remote_fetch():
    if not _setting("OPENAPI_IMPORT_REMOTE_REFS", False):
        return None

    def fetch(uri: str) -> Any:
        from ..openapi.limits import ImportLimits
        from ..openapi.loading import parse_document

        return parse_document(uri, _fetch_url(uri), ImportLimits.from_settings())

    return fetch


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Convert the job's description and compute the preview; idempotent (a finished job is left as it is)."""
    from ..openapi import SpecError, convert

    # Claimed by one conditional UPDATE: a second delivery of the same job finds nothing to claim.
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, step="starting", percent=1, attempts=F("attempts") + 1,
        started_at=timezone.now())
    job = ImportJob.objects.select_related("mcp_server__backend_service").filter(pk=job_id).first()
    if not claimed or job is None:
        return job
    _publish(job)

    def progress(step: str, percent: int) -> None:
        if step != job.step or percent >= job.percent + 10:
            job.step, job.percent = step, percent
            _save(job, "step", "percent")

    try:
        url = job.options.get("url")
        if url:
            progress("fetching", 2)
            files = [(url.rsplit("/", 1)[-1].split("?")[0] or "spec", _fetch_url(url))]
        else:
            files = _unpack(job.source)
        server = job.mcp_server
        backend = server.backend_service.base_url if server.backend_service else None
        conversion = convert(files, backend_url=backend, source_url=url, base_url=job.options.get("base_url"),
                             fetch=_remote_fetch(), progress=progress)
        progress("comparing", 92)
        preview = _preview(server, conversion)
        job.title = conversion.title[:300]
        job.counts = {**conversion.counts, **_status_counts(preview["tools"])}
        job.warnings = (conversion.warnings + [dict(w, tool=d.name) for d in conversion.tools for w in d.warnings])[
            :2000]
        job.preview = preview
        from ..openapi.convert import dump_yaml

        job.preview_yaml = dump_yaml(conversion.document(server_name=server.name))
        job.status, job.step, job.percent = ImportJob.Status.SUCCEEDED, "done", 100
    except DomainError as exc:
        problems = exc.problems if isinstance(exc, SpecError) else [{"message": exc.message, "location": {}}]
        job.errors = problems[:100]
        job.status, job.step = ImportJob.Status.FAILED, "failed"
    except MemoryError:
        job.errors = [{"message": "The description needs more memory than the import may use.", "location": {}}]
        job.status, job.step = ImportJob.Status.FAILED, "failed"
    job.finished_at = timezone.now()
    _save(job, "title", "counts", "warnings", "errors", "preview", "preview_yaml", "status", "step", "percent",
          "finished_at")
    return job


def import_job_fail(*, job_id: int, reason: str) -> None:
    """A job whose worker died or ran out of time: failed with the reason, never left running."""
    updated = ImportJob.objects.filter(pk=job_id, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]) \
        .update(status=ImportJob.Status.FAILED, step="failed", finished_at=timezone.now(),
                errors=[{"message": reason, "location": {}}])
    if updated:
        _publish(ImportJob.objects.get(pk=job_id))


def import_job_sweep(*, now: dt.datetime | None = None) -> int:
    """Fail every job older than its time limit that is still queued or running (run periodically)."""
    now = now or timezone.now()
    limit = dt.timedelta(seconds=int(_setting("OPENAPI_IMPORT_TIME_LIMIT", 600)))
    stale = list(ImportJob.objects.filter(status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING],
                                          created_at__lt=now - limit).values_list("pk", flat=True))
    for pk in stale:
        import_job_fail(job_id=pk, reason=f"The import did not finish within {limit.seconds} seconds "
                                          "(its worker stopped or it was too slow); start it again.")
    return len(stale)


# ---------------------------------------------------------------- the preview: generated tools against the server's

def _spec_of(tool: dict) -> ToolSpec:
    """The tool as the YAML editor would read it (so its content hash matches what confirming stores)."""
    return ToolSpec(name=tool["name"], description=tool.get("description", ""), title=tool.get("title", ""),
                    args=tool.get("args") or [], request_template=dict(tool.get("requestTemplate") or {}),
                    response_template={}, error_response_template="", output_schema=tool.get("outputSchema"),
                    annotations=tool.get("annotations"), security={})


def _origin_ref(generated_hash: str, operation: str) -> str:
    return f"{generated_hash} {operation}"[:300]


def _origin_parts(tool: Tool) -> tuple[str, str]:
    generated, _, operation = (tool.origin_ref or "").partition(" ")
    return generated, operation


def _select_threshold() -> int:
    return int(_setting("OPENAPI_IMPORT_SELECT_THRESHOLD", 50))


def _preview(server: McpServer, conversion) -> dict:
    existing = list(server.tools.all())
    by_name = {t.name: t for t in existing}
    by_operation = {_origin_parts(t)[1]: t for t in existing if t.origin == Tool.Origin.OPENAPI}
    many = len(conversion.tools) > _select_threshold()
    rows, seen = [], set()
    for draft in conversion.tools:
        generated = _spec_of(draft.tool).content_hash()
        current = by_operation.get(draft.operation) or by_name.get(draft.name)
        if current is not None and current.name != draft.name:
            draft.tool["name"] = draft.name = current.name  # renamed by hand since: keep its name
            generated = _spec_of(draft.tool).content_hash()
        hand_edited = False
        if current is None:
            status = "added"
        elif current.origin == Tool.Origin.OPENAPI:
            previous = _origin_parts(current)[0]
            hand_edited = current.content_hash != previous
            status = "unchanged" if generated == previous else "changed"
        else:
            hand_edited = True
            status = "unchanged" if current.content_hash == generated else "changed"
        if current is not None:
            seen.add(current.name)
        rows.append({"name": draft.name, "method": draft.method, "path": draft.path, "summary": draft.summary,
                     "tags": draft.tags, "status": status, "hand_edited": hand_edited,
                     "deprecated": draft.deprecated, "operation": draft.operation, "hash": generated,
                     "warnings": [w["message"] for w in draft.warnings][:10],
                     "selected": (not many and status in ("added", "changed") and not hand_edited
                                  and not draft.deprecated)})
    for tool in existing:
        if tool.origin == Tool.Origin.OPENAPI and tool.name not in seen:
            generated, operation = _origin_parts(tool)
            method, _, path = operation.partition(" ")
            rows.append({"name": tool.name, "method": method, "path": path, "summary": tool.title, "tags": [],
                         "status": "removed", "hand_edited": tool.content_hash != generated, "deprecated": False,
                         "operation": operation, "hash": "", "warnings": [], "selected": False})
    return {"tools": rows, "server": conversion.server, "security": conversion.security,
            "tools_yaml": {d.name: d.tool for d in conversion.tools}, "needs_selection": many}


def _status_counts(rows: list[dict]) -> dict[str, int]:
    out = {"added": 0, "changed": 0, "removed": 0, "unchanged": 0, "hand_edited": 0}
    for row in rows:
        out[row["status"]] += 1
        out["hand_edited"] += 1 if row["hand_edited"] else 0
    return out


# ---------------------------------------------------------------- confirm

def _server_part(server: McpServer, proposal: dict, credentials: dict[str, str]) -> dict | None:
    """The proposed server settings merged into the server's own (nothing the user set is dropped)."""
    schemes = [dict(s) for s in proposal.get("securitySchemes") or []]
    base_url = (proposal.get("config") or {}).get("baseUrl")
    if not schemes and not base_url and not credentials:
        return None
    config = dict(server.config or {})
    if base_url and "baseUrl" not in config:
        config["baseUrl"] = base_url
    existing = {s.scheme_id for s in server.security_schemes.all()}
    for scheme in schemes:
        if credentials.get(scheme["id"]):
            scheme["defaultCredential"] = credentials[scheme["id"]]
    part: dict[str, Any] = {"name": server.name, "config": config}
    if schemes:
        part["securitySchemes"] = schemes
    upstream = server.default_upstream_security or proposal.get("defaultUpstreamSecurity")
    if upstream and (upstream.get("id") in existing or any(s["id"] == upstream.get("id") for s in schemes)):
        part["defaultUpstreamSecurity"] = upstream
    if server.default_downstream_security:
        part["defaultDownstreamSecurity"] = server.default_downstream_security
    if server.allow_tools is not None:
        part["allowTools"] = server.allow_tools
    return part


def _parts(server_part: dict | None, tools: list[dict]) -> list[str]:
    from ..openapi.convert import dump_yaml

    import json

    texts, chunk, size = [], [], 0
    for tool in tools:
        # The JSON length is a close, cheap stand-in for the YAML's (block YAML runs about 10% longer).
        text = json.dumps(tool, ensure_ascii=False, separators=(",", ":"))
        if chunk and size + len(text) * 1.2 > _APPLY_PART_BYTES:
            texts.append(chunk)
            chunk, size = [], 0
        chunk.append(tool)
        size += len(text) * 1.2
    if chunk:
        texts.append(chunk)
    out = []
    for i, part in enumerate(texts or [[]]):
        doc: dict[str, Any] = {}
        if i == 0 and server_part:
            doc["server"] = server_part
        doc["tools"] = part
        out.append(dump_yaml(doc))
    return out


@transaction.atomic
def import_job_confirm(*, actor, job: ImportJob, tools: list[str] | None = None, yaml_text: str | None = None,
                       credentials: dict[str, str] | None = None,
                       renames: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Apply the chosen tools of a finished import through the YAML editor's service; all or nothing.

    `renames` maps a chosen tool's proposed name to the name it gets; a later re-import finds it by its operation.
    """
    server = McpServer.objects.select_for_update().get(pk=job.mcp_server_id)
    require_write(actor=actor, team=server.instance.team)
    job = ImportJob.objects.select_for_update().get(pk=job.pk)
    if job.status != ImportJob.Status.SUCCEEDED:
        raise DomainError("Only a finished import can be confirmed.", {"status": [f"The import is {job.status}."]},
                          code="conflict")
    if job.applied_at is not None:
        raise DomainError("This import was already applied; import again to see what changed since.",
                          {"status": ["Already applied."]}, code="conflict")
    preview = job.preview or {}
    rows = {row["name"]: row for row in preview.get("tools", [])}
    generated = preview.get("tools_yaml", {})
    edited: dict[str, dict] = {}
    if yaml_text:
        import yaml as pyyaml

        known = {s["id"] for s in (preview.get("server") or {}).get("securitySchemes") or []}
        known |= set(server.security_schemes.values_list("scheme_id", flat=True))
        parse_tool_yaml(yaml_text, known_scheme_ids=known, max_bytes=50_000_000)  # errors with their lines
        loaded = pyyaml.load(yaml_text, Loader=pyyaml.CSafeLoader if hasattr(pyyaml, "CSafeLoader")
                             else pyyaml.SafeLoader)
        items = loaded.get("tools") if isinstance(loaded, dict) else loaded
        edited = {t["name"]: t for t in items or [] if isinstance(t, dict) and t.get("name")}
    if tools is None:
        chosen = list(edited) if edited else [n for n, r in rows.items() if r.get("selected")]
    else:
        chosen = list(dict.fromkeys(tools))
    unknown = [n for n in chosen if n not in rows and n not in edited]
    if unknown:
        raise DomainError("Some chosen tools are not in this import.", {"tools": [
            f"No tool “{n}” in the preview." for n in unknown[:20]]})
    if not chosen:
        raise DomainError("Choose the tools to apply.", {"tools": [
            "Nothing is selected: pick tools (by name, tag or path prefix) and confirm again."]})
    to_write, refs, removed = [], {}, []
    for name in chosen:
        row = rows.get(name)
        if row is not None and row["status"] == "removed":
            removed.append(name)
            continue
        tool = edited.get(name) or generated.get(name)
        if tool is None:
            continue
        new_name = (renames or {}).get(name, "").strip() or name
        if new_name != name:
            tool = {**tool, "name": new_name}
        to_write.append(tool)
        if row is not None:
            refs[new_name] = _origin_ref(row["hash"], row["operation"])
        elif name in edited:
            refs[new_name] = _origin_ref("", "")
    result = ToolsApplyResult()
    server_part = _server_part(server, preview.get("server") or {}, credentials or {})
    if to_write or server_part:
        for text in _parts(server_part, to_write):
            part = tools_apply_yaml(actor=actor, mcp_server=server, text=text, origin=Tool.Origin.OPENAPI,
                                    origin_refs=refs)
            result.created += part.created
            result.updated += part.updated
            result.unchanged += part.unchanged
    gone = []
    for tool in Tool.objects.filter(mcp_server=server, name__in=removed):
        tool_delete(actor=actor, tool=tool)
        gone.append(tool.name)
    outcome = {**result.as_dict(), "removed": gone}
    job.result = outcome
    job.applied_at = timezone.now()
    job.save(update_fields=["result", "applied_at"])
    audit(actor=actor, team=server.instance.team, action="import.confirm", obj=job,
          detail={k: len(v) for k, v in outcome.items()})
    return outcome

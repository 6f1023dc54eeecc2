"""The catalogue of hosted stdio servers: entries staff keep, their installation into the cache, and what one runs."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..errors import DomainError
from ..models import HostedStdioEntry, McpServer
from .common import audit, config_changed, full_clean

log = logging.getLogger(__name__)

NPM_NAME_RE = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
PYPI_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
# Exact versions only: no ranges, tags, URLs or paths.
NPM_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
PYPI_VERSION_RE = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?$")
COMMAND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VARIABLE_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
# Variables that would let whoever fills them change what runs (a preloaded library, interpreter options).
RESERVED_VARIABLES = {"PATH", "HOME", "SHELL", "ENV", "BASH_ENV", "IFS", "CDPATH", "TMPDIR"}
RESERVED_PREFIXES = ("LD_", "NODE_", "NPM_", "PYTHON", "PIP_", "DYLD_", "GCONV", "MALLOC_")
MAX_ARGS = 50
MAX_ARG_CHARS = 1000
MAX_VARIABLES = 50
MAX_VALUE_CHARS = 4096
LOG_CHARS = 64 * 1024

LIMITS = (("max_processes", "HOSTED_MAX_PROCESSES"), ("memory_mb", "HOSTED_MAX_MEMORY_MB"),
          ("cpu_seconds", "HOSTED_MAX_CPU_SECONDS"), ("open_files", "HOSTED_MAX_OPEN_FILES"),
          ("startup_timeout_seconds", "HOSTED_MAX_STARTUP_SECONDS"), ("idle_timeout_seconds", "HOSTED_MAX_IDLE_SECONDS"))
# Below these a Node or Python program cannot start at all; the refusal says so instead of a crash later.
LIMIT_FLOORS = {"memory_mb": 16, "open_files": 16}

ENTRY_FIELDS = ("slug", "title", "description", "runtime", "package", "version", "command", "args", "variables",
                "shareable", "allow_install_scripts") + tuple(name for name, _ in LIMITS)


def require_staff(*, actor) -> None:
    """The catalogue is installation-wide: only staff write it (system actions pass actor=None)."""
    if actor is None or getattr(actor, "is_staff", False) or getattr(actor, "is_superuser", False):
        return
    raise DomainError("Only staff manage the catalogue of hosted stdio servers.", code="permission_denied")


# ---------------------------------------------------------------- validation

def _variables(raw: Any) -> tuple[list[dict[str, Any]], list[str]]:
    if raw in (None, ""):
        return [], []
    if not isinstance(raw, list):
        return [], ["Give a list of variables: {name, description, secret, required, default}."]
    if len(raw) > MAX_VARIABLES:
        return [], [f"At most {MAX_VARIABLES} variables."]
    cleaned, errors, seen = [], [], set()
    for item in raw:
        if not isinstance(item, dict):
            errors.append("Each variable is an object with a name.")
            continue
        name = str(item.get("name") or "").strip()
        if not VARIABLE_RE.match(name):
            errors.append(f"“{name[:64]}” is not a variable name (upper-case letters, digits and _).")
            continue
        if name in RESERVED_VARIABLES or name.startswith(RESERVED_PREFIXES):
            errors.append(f"{name} is set by the gateway or changes what runs; it cannot be declared.")
            continue
        if name in seen:
            errors.append(f"{name} is declared twice.")
            continue
        seen.add(name)
        default = item.get("default")
        default = "" if default is None else str(default)
        if len(default) > MAX_VALUE_CHARS or "\x00" in default:
            errors.append(f"The default of {name} is longer than {MAX_VALUE_CHARS} characters or holds a NUL.")
            continue
        secret = bool(item.get("secret"))
        if secret and default:
            errors.append(f"{name} is a secret: it cannot have a default (defaults are shown to every team).")
            continue
        cleaned.append({"name": name, "description": str(item.get("description") or "")[:500], "secret": secret,
                        "required": bool(item.get("required")), "default": default})
    return cleaned, errors


def _validate_entry(entry: HostedStdioEntry) -> None:
    errors: dict[str, list[str]] = {}
    try:
        full_clean(entry, exclude=["args", "variables", "error", "log", "installed_spec"])
    except DomainError as exc:
        errors.update(exc.details)
    entry.package = (entry.package or "").strip()
    entry.version = (entry.version or "").strip()
    npm = entry.runtime == HostedStdioEntry.Runtime.NPM
    if not (NPM_NAME_RE if npm else PYPI_NAME_RE).match(entry.package) or len(entry.package) > 214:
        errors["package"] = ["Not an npm package name (e.g. @scope/name)." if npm
                             else "Not a PyPI project name (letters, digits, . _ -)."]
    if not (NPM_VERSION_RE if npm else PYPI_VERSION_RE).match(entry.version):
        errors["version"] = ["Pin one exact version (e.g. 1.2.3): no ranges, tags, URLs or paths."]
    if not COMMAND_RE.match(entry.command or ""):
        errors["command"] = ["The name of one of the package's executables (no path, no spaces, no shell)."]
    args = entry.args if entry.args not in (None, "") else []
    if not isinstance(args, list) or len(args) > MAX_ARGS or \
            any(not isinstance(a, str) or len(a) > MAX_ARG_CHARS or "\x00" in a for a in args):
        errors["args"] = [f"A list of at most {MAX_ARGS} strings of at most {MAX_ARG_CHARS} characters."]
    else:
        entry.args = args
    variables, problems = _variables(entry.variables)
    if problems:
        errors["variables"] = problems
    else:
        entry.variables = variables
    for name, cap_setting in LIMITS:
        value, cap = getattr(entry, name), getattr(settings, cap_setting)
        floor = LIMIT_FLOORS.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or not floor <= value <= cap:
            errors[name] = [f"Choose a whole number from {floor} to {cap} ({cap_setting})."]
    if errors:
        raise DomainError("Please correct the errors below.", errors)
    if entry.slug and HostedStdioEntry.objects.filter(slug=entry.slug).exclude(pk=entry.pk).exists():
        raise DomainError("Please correct the errors below.", {"slug": ["An entry with this slug exists."]})


# ---------------------------------------------------------------- writes

@transaction.atomic
def hosted_entry_create(*, actor, install: bool = True, **fields: Any) -> HostedStdioEntry:
    require_staff(actor=actor)
    unknown = set(fields) - set(ENTRY_FIELDS)
    if unknown:
        raise DomainError("Please correct the errors below.", {f: ["Unknown field."] for f in sorted(unknown)})
    entry = HostedStdioEntry(**fields)
    _validate_entry(entry)
    entry.save()
    audit(actor=actor, team=None, action="hosted_entry.create", obj=entry, detail={"spec": entry.spec})
    if install:
        _queue_install(entry)
    return entry


@transaction.atomic
def hosted_entry_update(*, actor, entry: HostedStdioEntry, **fields: Any) -> HostedStdioEntry:
    require_staff(actor=actor)
    unknown = set(fields) - set(ENTRY_FIELDS)
    if unknown:
        raise DomainError("Please correct the errors below.", {f: ["Unknown field."] for f in sorted(unknown)})
    entry = HostedStdioEntry.objects.select_for_update().get(pk=entry.pk)
    before = entry.spec
    for name, value in fields.items():
        setattr(entry, name, value)
    _validate_entry(entry)
    entry.save()
    audit(actor=actor, team=None, action="hosted_entry.update", obj=entry, detail={"spec": entry.spec})
    config_changed()  # limits, variables and the program of running servers come from the entry
    if entry.spec != before:
        _queue_install(entry)
    return entry


@transaction.atomic
def hosted_entry_delete(*, actor, entry: HostedStdioEntry) -> None:
    require_staff(actor=actor)
    if entry.mcp_servers.exists():
        raise DomainError("MCP servers use this entry; delete them or pick another entry first.",
                          {"non_field": ["In use by MCP servers."]}, code="conflict")
    audit(actor=actor, team=None, action="hosted_entry.delete", obj=entry, detail={"spec": entry.spec})
    entry.delete()


@transaction.atomic
def hosted_entry_install(*, actor, entry: HostedStdioEntry) -> HostedStdioEntry:
    """Install (or reinstall) the entry's pinned package into the cache, as a background job."""
    require_staff(actor=actor)
    entry = HostedStdioEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.state == HostedStdioEntry.State.INSTALLING:
        raise DomainError("The entry is being installed; wait for the install to end.", code="conflict")
    audit(actor=actor, team=None, action="hosted_entry.install", obj=entry, detail={"spec": entry.spec})
    _queue_install(entry)
    return entry


def _queue_install(entry: HostedStdioEntry) -> None:
    HostedStdioEntry.objects.filter(pk=entry.pk).update(state=HostedStdioEntry.State.PENDING, error="", log="")
    entry.state, entry.error, entry.log = HostedStdioEntry.State.PENDING, "", ""
    entry_id = entry.pk
    transaction.on_commit(lambda: enqueue_install(entry_id))


def enqueue_install(entry_id: int) -> None:
    from ..jobs import job_enqueue
    from ..tasks import hosted_entry_install as task

    job_enqueue(task, entry_id, thread_name=f"hosted-install-{entry_id}")


# ---------------------------------------------------------------- the install job

def install_dir(entry: HostedStdioEntry, spec: str | None = None) -> Path:
    """One directory per entry and pinned spec: a reinstall of another version never touches a running one's."""
    digest = hashlib.sha256((spec or entry.spec).encode()).hexdigest()[:12]
    return Path(settings.HOSTED_CACHE_DIR) / f"{entry.slug}-{digest}"


def _node_dir() -> str:
    if settings.HOSTED_NODE_DIR:
        return str(Path(settings.HOSTED_NODE_DIR).resolve())
    found = shutil.which("node")
    return str(Path(found).resolve().parent) if found else ""


def program_path(entry: HostedStdioEntry, root: Path) -> Path:
    if entry.runtime == HostedStdioEntry.Runtime.NPM:
        return root / "node_modules" / ".bin" / entry.command
    return root / "bin" / entry.command


def _install_commands(entry: HostedStdioEntry, root: Path) -> list[list[str]]:
    if entry.runtime == HostedStdioEntry.Runtime.NPM:
        npm = shutil.which("npm", path=_install_env()["PATH"]) or "npm"
        command = [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", "--no-update-notifier",
                   "--no-package-lock", "--loglevel=warn", f"--ignore-scripts={str(not entry.allow_install_scripts).lower()}",
                   f"{entry.package}@{entry.version}"]
        return [command]
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           "--progress-bar=off"]
    if not entry.allow_install_scripts:
        pip.append("--only-binary=:all:")  # a source distribution would run its build code here
    return [[sys.executable, "-m", "venv", str(root)], pip + [f"{entry.package}=={entry.version}"]]


def _install_env() -> dict[str, str]:
    env = dict(os.environ)
    node_dir = _node_dir()
    if node_dir:
        env["PATH"] = node_dir + os.pathsep + env.get("PATH", "")
    return env


def hosted_entry_install_run(*, entry_id: int) -> HostedStdioEntry | None:
    """Run the install of one entry: the row shows the state, the log as it grows, and the error of a failure."""
    entry = HostedStdioEntry.objects.filter(pk=entry_id).first()
    if entry is None:
        return None
    spec = entry.spec
    HostedStdioEntry.objects.filter(pk=entry_id).update(state=HostedStdioEntry.State.INSTALLING, error="", log="")
    final = install_dir(entry, spec)
    work = final.with_name(final.name + ".installing")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    written: list[str] = []
    last_save = [0.0]

    def note(text: str) -> None:
        written.append(text)
        now = time.monotonic()
        if now - last_save[0] > 1.0:
            last_save[0] = now
            HostedStdioEntry.objects.filter(pk=entry_id).update(log="".join(written)[-LOG_CHARS:])

    error = ""
    deadline = time.monotonic() + settings.HOSTED_INSTALL_TIMEOUT
    try:
        for command in _install_commands(entry, work):
            note("$ " + " ".join(command) + "\n")
            error = _run(command, cwd=work, deadline=deadline, note=note)
            if error:
                break
        if not error:
            program = program_path(entry, work)
            if not program.exists():
                offered = sorted(p.name for p in program.parent.glob("*")) if program.parent.exists() else []
                error = (f"The package has no executable named “{entry.command}”"
                         + (f"; it offers: {', '.join(offered[:20])}." if offered else "."))
    except OSError as exc:
        error = f"The installer could not run: {exc}"
    if error:
        shutil.rmtree(work, ignore_errors=True)
        HostedStdioEntry.objects.filter(pk=entry_id).update(
            state=HostedStdioEntry.State.FAILED, error=error[:2000], log="".join(written)[-LOG_CHARS:])
    else:
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)  # running children keep their files open; new ones start from the fresh copy
        work.rename(_relocated(work, final))
        shutil.rmtree(old, ignore_errors=True)
        HostedStdioEntry.objects.filter(pk=entry_id).update(
            state=HostedStdioEntry.State.INSTALLED, error="", log="".join(written)[-LOG_CHARS:],
            installed_at=timezone.now(), installed_spec=spec)
    config_changed()  # servers of this entry can start now (or say why not)
    return HostedStdioEntry.objects.filter(pk=entry_id).first()


def _relocated(work: Path, final: Path) -> Path:
    """A venv names its own directory inside its scripts: it is built at its final place's name twin and fixed up."""
    for script in (work / "bin").glob("*") if (work / "bin").is_dir() else []:
        if script.is_file() and not script.is_symlink():
            try:
                text = script.read_bytes()
            except OSError:
                continue
            if text.startswith(b"#!") and str(work).encode() in text[:4096]:
                script.write_bytes(text.replace(str(work).encode(), str(final).encode()))
    config = work / "pyvenv.cfg"
    if config.exists():
        config.write_text(config.read_text().replace(str(work), str(final)))
    return final


def _run(command: list[str], *, cwd: Path, deadline: float, note) -> str:
    """Run one installer step; the empty string when it succeeded, else what went wrong."""
    proc = subprocess.Popen(command, cwd=cwd, env=_install_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    tail: list[str] = []
    timer = threading.Timer(max(deadline - time.monotonic(), 1), proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            note(line[:2000])
            tail = (tail + [line.rstrip()])[-15:]
        code = proc.wait()
    finally:
        timer.cancel()
    if time.monotonic() >= deadline:
        return f"The install took longer than {settings.HOSTED_INSTALL_TIMEOUT} seconds and was stopped."
    if code != 0:
        return f"`{' '.join(command[:2])}` exited with code {code}:\n" + "\n".join(tail)
    return ""


def hosted_entry_install_fail(*, entry_id: int, reason: str) -> None:
    HostedStdioEntry.objects.filter(pk=entry_id).update(state=HostedStdioEntry.State.FAILED, error=reason[:2000])


# ---------------------------------------------------------------- servers of this type

def hosted_variables_clean(*, entry: HostedStdioEntry | None, values: Any, current: dict[str, str] | None = None
                           ) -> dict[str, str]:
    """The values a server gives the entry's variables. A secret left out (or sent back masked) keeps its value."""
    if entry is None:
        return {}
    if values in (None, ""):
        values = {}
    if not isinstance(values, dict):
        raise DomainError("Please correct the errors below.", {"hosted_variables": [
            "Give an object of variable name → value."]})
    current = current or {}
    declared = {v["name"]: v for v in entry.variables or []}
    errors: list[str] = []
    result: dict[str, str] = {}
    for name in values:
        if name not in declared:
            errors.append(f"{str(name)[:64]} is not a variable of {entry.slug}.")
    for name, spec in declared.items():
        value = values.get(name)
        if value is None or (spec.get("secret") and value == "" and name in current):
            value = current.get(name, "")
        value = str(value)
        if len(value) > MAX_VALUE_CHARS or "\x00" in value:
            errors.append(f"{name}: at most {MAX_VALUE_CHARS} characters, no NUL.")
            continue
        if value:
            result[name] = value
        elif spec.get("required") and not spec.get("default"):
            errors.append(f"{name} is required.")
    if errors:
        raise DomainError("Please correct the errors below.", {"hosted_variables": errors})
    return result


def hosted_variables_of(server: McpServer) -> dict[str, str]:
    try:
        values = json.loads(server.hosted_variables or "{}")
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


def hosted_variables_shown(server: McpServer) -> dict[str, Any]:
    """The variables as pages and the API show them: plain values in full, secrets only as whether they are set."""
    entry = server.hosted_entry
    values = hosted_variables_of(server)
    shown: dict[str, Any] = {}
    for spec in (entry.variables if entry else []) or []:
        name = spec["name"]
        shown[name] = {"set": name in values} if spec.get("secret") else values.get(name, "")
    return shown


def hosted_program(*, mcp_server: McpServer):
    """What the gateway runs for a Hosted stdio server (gateway.readmodel.HostedConfig)."""
    from gateway.readmodel import HostedConfig, HostedLimits

    entry = mcp_server.hosted_entry
    if entry is None:
        return HostedConfig(entry_id=0, entry_slug="", spec="", program="", args=(), env={}, cwd="", shareable=False,
                            limits=HostedLimits(1, 16, 1, 16, 1, 1),
                            unavailable="This Hosted stdio server has no catalogue entry.")
    root = install_dir(entry)
    values = hosted_variables_of(mcp_server)
    env: dict[str, str] = {}
    missing = []
    for spec in entry.variables or []:
        value = values.get(spec["name"]) or spec.get("default") or ""
        if value:
            env[spec["name"]] = value
        elif spec.get("required"):
            missing.append(spec["name"])
    search = [str(program_path(entry, root).parent)]
    if entry.runtime == HostedStdioEntry.Runtime.NPM and _node_dir():
        search.append(_node_dir())
    search += ["/usr/local/bin", "/usr/bin", "/bin"]
    home = Path(settings.HOSTED_CACHE_DIR) / "homes" / str(mcp_server.pk)
    env.update({"PATH": os.pathsep.join(search), "HOME": str(home), "LANG": "C.UTF-8"})
    unavailable = ""
    if not entry.ready:
        state = entry.get_state_display().lower()
        unavailable = (f"The hosted stdio server {entry.slug} ({entry.package}@{entry.version}) is not installed "
                       f"(state: {state}{': ' + entry.error.splitlines()[0] if entry.error else ''}); "
                       "staff install it from the catalogue.")
    elif missing:
        unavailable = f"This server does not set the required variables {', '.join(missing)} of {entry.slug}."
    caps = {name: getattr(settings, cap) for name, cap in LIMITS}
    limits = HostedLimits(
        max_processes=min(entry.max_processes, caps["max_processes"]),
        memory_mb=min(entry.memory_mb, caps["memory_mb"]), cpu_seconds=min(entry.cpu_seconds, caps["cpu_seconds"]),
        open_files=min(entry.open_files, caps["open_files"]),
        startup_timeout=float(min(entry.startup_timeout_seconds, caps["startup_timeout_seconds"])),
        idle_timeout=float(min(entry.idle_timeout_seconds, caps["idle_timeout_seconds"])))
    return HostedConfig(entry_id=entry.pk, entry_slug=entry.slug, spec=entry.spec,
                        program=str(program_path(entry, root)), args=tuple(entry.args or ()), env=env, cwd=str(home),
                        shareable=entry.shareable, limits=limits, unavailable=unavailable)

"""The demo a fresh install starts with: admin, team Demo, instance default, the petstore MCP server and its pets."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from . import services
from .models import BackendService, DemoPet, Instance, McpServer, Team, TeamMembership

ADMIN_USERNAME = "admin"
TEAM_NAME = "Demo"
INSTANCE_NAME = "default"
SERVICE_NAME = "demo-api"
SERVER_NAME = "petstore"
SERVER_DESCRIPTION = "Demo pet store: list, find, add, update and remove pets."
TOOLS_YAML = Path(__file__).with_name("demo_petstore.yaml")
DEMO_PETS = [
    {"name": "Rex", "tag": "dog", "status": "available"},
    {"name": "Tom", "tag": "cat", "status": "pending"},
    {"name": "Nemo", "tag": "fish", "status": "sold"},
    {"name": "Kiwi", "tag": "bird", "status": "available"},
]
# Addresses that mean "every interface" or "this machine": the gateway reaches its own demo API on loopback.
_LOOPBACK_OR_ANY = {"", "0.0.0.0", "::", "[::]", "localhost", "127.0.0.1"}


@dataclass
class SeedReport:
    admin_password: str | None = None  # only when generated or changed by this run
    admin_password_generated: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    console_url: str = ""
    demo_api_url: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)  # {"streamable_http": …, "sse": …}


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def public_base_url(*, host: str, port: int) -> str:
    """Where a browser or MCP client on this machine reaches the server (PUBLIC_BASE_URL when set)."""
    if settings.PUBLIC_BASE_URL:
        return settings.PUBLIC_BASE_URL.rstrip("/")
    shown = "127.0.0.1" if host in _LOOPBACK_OR_ANY else _url_host(host)
    return f"http://{shown}:{port}"


def demo_api_base_url(*, host: str, port: int) -> str:
    """The demo API as the gateway process itself calls it."""
    backend_host = "127.0.0.1" if host in _LOOPBACK_OR_ANY else _url_host(host)
    return f"http://{backend_host}:{port}/demo-api"


def petstore_yaml(*, base_url: str) -> str:
    """The petstore tool YAML with this install's demo API address and key filled in."""
    doc = yaml.safe_load(TOOLS_YAML.read_text(encoding="utf-8"))
    doc["server"]["config"]["baseUrl"] = base_url
    for scheme in doc["server"]["securitySchemes"]:
        if scheme["id"] == "DemoKey":
            scheme["defaultCredential"] = settings.DEMO_API_KEY
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000)


def _ensure_admin(report: SeedReport, admin_password: str | None):
    User = get_user_model()
    user = User.objects.filter(username=ADMIN_USERNAME).first()
    if user is None:
        password = admin_password or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username=ADMIN_USERNAME, email="", password=password)
        report.created.append(f"user {ADMIN_USERNAME}")
        report.admin_password = password
        report.admin_password_generated = admin_password is None
    elif admin_password and not user.check_password(admin_password):
        user.set_password(admin_password)
        user.save(update_fields=["password"])
        report.updated.append(f"password of user {ADMIN_USERNAME}")
        report.admin_password = admin_password
    return user


def _ensure_team(report: SeedReport, admin) -> Team:
    team = Team.objects.filter(name=TEAM_NAME).first()
    if team is None:
        team = services.team_create(name=TEAM_NAME, owner=admin)
        report.created.append(f"team {TEAM_NAME}")
    elif not TeamMembership.objects.filter(team=team, user=admin).exists():
        services.team_member_add(team=team, user=admin, role=TeamMembership.Role.OWNER)
        report.updated.append(f"team {TEAM_NAME} (admin added as owner)")
    return team


def _ensure_instance(report: SeedReport, team: Team) -> Instance:
    # Instance names are global: an existing `default` is used whichever team owns it.
    instance = Instance.objects.filter(name=INSTANCE_NAME).first()
    if instance is None:
        instance = services.instance_create(actor=None, team=team, name=INSTANCE_NAME, region="local",
                                            is_default=True,
                                            description="Created by the demo seed; serves requests on any host.")
        report.created.append(f"instance {INSTANCE_NAME}")
    return instance


def _ensure_service(report: SeedReport, instance: Instance, base_url: str) -> BackendService:
    service = BackendService.objects.filter(instance=instance, name=SERVICE_NAME).first()
    if service is None:
        service = services.service_create(actor=None, instance=instance, name=SERVICE_NAME, base_url=base_url,
                                          protocol=BackendService.Protocol.HTTP,
                                          description="The built-in demo pet store REST API (/demo-api/).")
        report.created.append(f"backend service {SERVICE_NAME}")
    elif service.base_url != base_url:
        service = services.service_update(actor=None, service=service, base_url=base_url)
        report.updated.append(f"backend service {SERVICE_NAME} (base URL {base_url})")
    return service


def _ensure_server(report: SeedReport, instance: Instance, service: BackendService, base_url: str) -> McpServer:
    server = McpServer.objects.filter(instance=instance, name=SERVER_NAME).first()
    if server is None:
        server = services.mcp_server_create(actor=None, instance=instance, name=SERVER_NAME,
                                            description=SERVER_DESCRIPTION, domains=[], backend_service=service,
                                            config={"baseUrl": base_url})
        report.created.append(f"MCP server {SERVER_NAME}")
    elif (server.config or {}).get("baseUrl") != base_url:
        report.updated.append(f"MCP server {SERVER_NAME} (baseUrl {base_url})")
    # Re-applied every time: an upsert that leaves unchanged tools alone and moves config.baseUrl with the port.
    result = services.tools_apply_yaml(actor=None, mcp_server=server, text=petstore_yaml(base_url=base_url))
    report.created.extend(f"tool {name}" for name in result.created)
    report.updated.extend(f"tool {name}" for name in result.updated)
    return server


def _ensure_pets(report: SeedReport) -> None:
    if DemoPet.objects.exists():
        return
    DemoPet.objects.bulk_create([DemoPet(**pet) for pet in DEMO_PETS])
    report.created.append(f"{len(DEMO_PETS)} demo pets")


@transaction.atomic
def seed_demo(*, admin_password: str | None, host: str = "127.0.0.1", port: int = 8000) -> SeedReport:
    """Create what is missing of the demo; running it again changes nothing (but follows a new port)."""
    report = SeedReport()
    base = public_base_url(host=host, port=port)
    api_base = demo_api_base_url(host=host, port=port)
    admin = _ensure_admin(report, admin_password or None)
    team = _ensure_team(report, admin)
    instance = _ensure_instance(report, team)
    service = _ensure_service(report, instance, api_base)
    _ensure_server(report, instance, service, api_base)
    _ensure_pets(report)
    # The market's first-run listings; three of them call demo APIs of this very process.
    from marketplace.seed import seed_market

    report.created.extend(seed_market(demo_api_base=api_base))
    report.console_url = base + "/"
    report.demo_api_url = base + "/demo-api/"
    report.endpoints = {
        "streamable_http": f"{base}/mcp-servers/{SERVER_NAME}",
        "sse": f"{base}/mcp-servers/{SERVER_NAME}/sse",
    }
    return report

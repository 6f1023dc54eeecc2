"""Console forms: the shape of what a page submits. Rules live in the services; their errors come back per field."""
from __future__ import annotations

import json
import re

from django import forms

from .models import BackendService, HostedStdioEntry, McpServer, Team, TeamMembership, slug_validator

TEXTAREA_ROWS = 3


class TeamSwitchForm(forms.Form):
    team = forms.IntegerField()


class InstanceForm(forms.Form):
    name = forms.CharField(max_length=63, validators=[slug_validator],
                           help_text="Lowercase letters, digits, - and _; unique across the gateway. "
                                                    "It appears in the no-DNS endpoint path.")
    region = forms.CharField(max_length=63, initial="local", help_text="Where this instance runs, e.g. eu-west-1.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": TEXTAREA_ROWS}))
    is_default = forms.BooleanField(required=False, label="Default instance",
                                    help_text="Answers requests whose host name matches no domain.")

    def __init__(self, *args, teams: list[Team] | None = None, staff: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not staff:  # the default instance serves every team's unmatched hosts: staff decide
            del self.fields["is_default"]
        if teams is not None and len(teams) > 1:
            self.fields["team"] = forms.TypedChoiceField(choices=[(t.pk, t.name) for t in teams], coerce=int,
                                                         help_text="The team that owns the instance.")
            self.order_fields(["team"])


class ServiceForm(forms.Form):
    name = forms.CharField(max_length=63, validators=[slug_validator],
                           help_text="Lowercase letters, digits, - and _; unique in this instance, e.g. orders-api.")
    protocol = forms.ChoiceField(choices=BackendService.Protocol.choices, initial=BackendService.Protocol.HTTP,
                                 widget=forms.RadioSelect,
                                 help_text="HTTP: a REST API for HTTP-to-MCP servers. MCP: an MCP server to proxy.")
    base_url = forms.CharField(max_length=500, label="Base URL", widget=forms.URLInput(
        attrs={"placeholder": "https://api.example.com/v1"}),
        help_text="Tools call paths below it; for an MCP service the host (and port) the gateway connects to.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": TEXTAREA_ROWS}))


class McpServerForm(forms.Form):
    name = forms.CharField(max_length=63, validators=[slug_validator],
                           help_text="Lowercase letters, digits, - and _; unique in this instance. "
                                                    "It is part of the endpoint: /mcp-servers/<name>.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": TEXTAREA_ROWS}),
                                  help_text="What the server's tools do; clients show it to the model.")
    domains = forms.CharField(required=False, label="Domain names", widget=forms.Textarea(
        attrs={"rows": 2, "placeholder": "mcp.example.com\norders.example.com"}),
        help_text="Optional. One per line (or comma-separated); each must be unused on this gateway. "
                  "Without a domain the server is reached through the no-DNS path.")
    server_type = forms.ChoiceField(label="Type", choices=McpServer.Type.choices, initial=McpServer.Type.HTTP_TO_MCP,
                                    widget=forms.RadioSelect)
    backend_service = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Backend service")
    backend_transport = forms.ChoiceField(required=False, label="Backend transport",
                                          choices=[("", "—")] + list(McpServer.Transport.choices))
    backend_path = forms.CharField(required=False, max_length=500, label="Backend path",
                                   widget=forms.TextInput(attrs={"placeholder": "/test/sse"}))
    timeout_seconds = forms.IntegerField(required=False, min_value=1, max_value=600, label="Backend timeout (s)")
    allow_tools = forms.CharField(required=False, label="Published tools", widget=forms.Textarea(
        attrs={"rows": 2, "placeholder": "get_forecast\nget_alerts"}),
        help_text="Direct Proxy: the backend tools clients may see and call, one per line (or comma-separated). "
                  "Empty publishes all of them.")
    hosted_entry = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Catalogue entry",
                                          help_text="The stdio MCP server to run (installed entries of the catalogue).")
    hosted_variables = forms.CharField(required=False, label="Variables", strip=False, widget=forms.Textarea(
        attrs={"rows": 3, "placeholder": "API_TOKEN=…\nREGION=eu", "autocomplete": "off", "spellcheck": "false"}),
        help_text="One NAME=value per line. Secrets already set are kept when left out.")

    def __init__(self, *args, services: list[BackendService], editing: bool = False, hosted_entries=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.services = services
        self.hosted_entries = list(hosted_entries)
        self.fields["hosted_entry"].choices = [("", "— choose an entry —")] + [
            (e.pk, f"{e.title} ({e.package}@{e.version})") for e in self.hosted_entries]
        self.fields["backend_service"].choices = [("", "— choose a service —")] + [
            (s.pk, f"{s.name} ({s.get_protocol_display()}, {s.base_url})") for s in services]
        if editing:
            # The type decides what the server is; a different type is a different server.
            del self.fields["server_type"]

    def backend_choices_json(self) -> str:
        """Each service's protocol, so the page offers only those that fit the chosen type."""
        return json.dumps([{"id": s.pk, "protocol": s.protocol} for s in self.services])

    def allow_list(self) -> list[str] | None:
        """The published tools as the service takes them: None publishes all."""
        names = [n for n in re.split(r"[\s,]+", self.cleaned_data.get("allow_tools") or "") if n]
        return names or None

    def backend(self) -> BackendService | None:
        pk = self.cleaned_data.get("backend_service")
        return next((s for s in self.services if s.pk == pk), None)

    def hosted(self):
        pk = self.cleaned_data.get("hosted_entry")
        return next((e for e in self.hosted_entries if e.pk == pk), None)

    def clean_hosted_variables(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for number, line in enumerate((self.cleaned_data.get("hosted_variables") or "").splitlines(), 1):
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep or not name.strip():
                raise forms.ValidationError(f"Line {number}: write NAME=value.")
            values[name.strip()] = value
        return values


class ToolYamlForm(forms.Form):
    yaml = forms.CharField(label="Tool YAML", strip=False, required=False, widget=forms.Textarea(
        attrs={"rows": 24, "spellcheck": "false", "autocapitalize": "off", "autocomplete": "off",
               "class": "code-editor", "wrap": "off"}))


class BackendAuthForm(forms.Form):
    KIND_CHOICES = [("none", "None"), ("basic", "Basic"), ("bearer", "Bearer token"), ("api_key", "API key")]
    kind = forms.ChoiceField(choices=KIND_CHOICES, label="Authentication", widget=forms.RadioSelect)
    location = forms.ChoiceField(required=False, choices=[("header", "Header"), ("query", "Query parameter")],
                                 label="Send the key in", initial="header")
    param_name = forms.CharField(required=False, max_length=200, label="Header or parameter name",
                                 widget=forms.TextInput(attrs={"placeholder": "X-API-Key"}))
    credential = forms.CharField(required=False, strip=True, max_length=4000, label="Credential",
                                 widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))


class SignupForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(
        attrs={"autocomplete": "username", "autocapitalize": "none", "autofocus": True}),
        help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(required=False, help_text="Optional.", widget=forms.EmailInput(
        attrs={"autocomplete": "email"}))
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput(
        attrs={"autocomplete": "new-password"}))

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


# ---------------------------------------------------------------- teams and invitations

ROLE_CHOICES = [(r.value, r.label) for r in TeamMembership.Role]


class TeamForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Unique across the gateway, e.g. Payments.")


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES, widget=forms.RadioSelect)

    def __init__(self, *args, roles: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if roles is not None:
            self.fields["role"].choices = [(v, label) for v, label in ROLE_CHOICES if v in roles]


class InvitationForm(MemberRoleForm):
    expires_in_days = forms.IntegerField(min_value=1, max_value=30, initial=7, label="Expires after (days)",
                                         help_text="Between 1 and 30 days. The link works once.")


class TransferForm(forms.Form):
    user = forms.TypedChoiceField(coerce=int, label="New owner",
                                  help_text="You stay in the team as an admin.")

    def __init__(self, *args, members: list[TeamMembership], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [(m.user_id, f"{m.user.get_username()} ({m.role})") for m in members]


class InviteSignupForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(
        attrs={"autocomplete": "username", "autocapitalize": "none"}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))


# ---------------------------------------------------------------- consumers and Consumer Authentication

class ConsumerForm(forms.Form):
    name = forms.CharField(max_length=63, help_text="Lowercase letters, digits, - and _; unique in the team. A JWT's "
                                                    "consumer claim carries it.")
    description = forms.CharField(required=False, max_length=2000,
                                  widget=forms.Textarea(attrs={"rows": TEXTAREA_ROWS}))
    enabled = forms.BooleanField(required=False, initial=True,
                                 help_text="A disabled consumer's keys and tokens are refused.")


class ConsumerApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, help_text="To tell keys apart, e.g. laptop or ci.")
    expires_at = forms.DateTimeField(required=False, label="Expires at (UTC)", help_text="Empty: never expires.",
                                     widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


class JwtCredentialForm(forms.Form):
    from .models import JwtCredential as _Jwt

    algorithm = forms.ChoiceField(choices=_Jwt.Algorithm.choices, initial="RS256")
    secret = forms.CharField(required=False, strip=False, max_length=4096, label="HMAC secret",
                             help_text="HS256/384/512 only: at least 32 bytes.",
                             widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}))
    public_key = forms.CharField(required=False, max_length=16000, label="Public key (PEM)",
                                 help_text="RS*, PS*, ES*, EdDSA: -----BEGIN PUBLIC KEY----- …",
                                 widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}))
    jwks_url = forms.CharField(required=False, max_length=500, label="JWKS URL",
                               help_text="Instead of a public key: the identity provider's JWKS document.",
                               widget=forms.URLInput(attrs={"placeholder": "https://login.example.com/jwks.json"}))
    issuer = forms.CharField(required=False, max_length=500, help_text="Required iss, when given.")
    audience = forms.CharField(required=False, max_length=500, help_text="Required in aud, when given.")
    consumer_claim = forms.CharField(max_length=100, initial="sub", label="Consumer claim",
                                     help_text="The claim whose value is this consumer's name.")
    del _Jwt


class ConsumerAuthForm(forms.Form):
    from .models import ConsumerAuthMethod as _Method, CredentialSource as _Source

    enabled = forms.BooleanField(required=False, label="Enable Status",
                                 help_text="Off: anyone who reaches the endpoint may call it.")
    method = forms.ChoiceField(choices=_Method.choices, label="Authentication Method", widget=forms.RadioSelect)
    source = forms.ChoiceField(choices=[("bearer", "Authorization: Bearer (recommended)"),
                                        ("header", "A named header"), ("query", "A query parameter")],
                               label="Credential source", widget=forms.RadioSelect)
    name = forms.CharField(max_length=200, required=False, label="Header or query parameter name",
                           widget=forms.TextInput(attrs={"placeholder": "X-API-Key"}))
    del _Method, _Source


class AuthorizationForm(forms.Form):
    NEW = "new"

    consumer = forms.ChoiceField(label="Consumer")
    new_name = forms.CharField(max_length=63, required=False, label="New consumer name")
    new_description = forms.CharField(max_length=2000, required=False, label="New consumer description")
    all_tools = forms.BooleanField(required=False, initial=True, label="All tools",
                                   help_text="Off: only the tools ticked below.")
    tools = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args, consumers=(), tools=(), editing: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(str(c.pk), c.name) for c in consumers]
        if editing:
            del self.fields["new_name"], self.fields["new_description"]
        else:
            choices.append((self.NEW, "Create Consumer"))
        self.fields["consumer"].choices = choices
        self.fields["tools"].choices = [(t, t) for t in tools]


# ---------------------------------------------------------------- governance

class RateLimitForm(forms.Form):
    consumer = forms.TypedChoiceField(required=False, coerce=int, empty_value=None,
                                      help_text="Every consumer (each with its own count), or one of the team's.")
    tool = forms.CharField(max_length=128, required=False, help_text="Empty for every tool.")
    requests = forms.IntegerField(min_value=1, help_text="Requests allowed per window.")
    window = forms.ChoiceField(choices=[("second", "second"), ("minute", "minute"), ("hour", "hour"),
                                        ("day", "day")], initial="minute")
    burst = forms.IntegerField(min_value=1, required=False,
                               help_text="Requests allowed back to back; empty means the same as requests.")
    applies_to = forms.ChoiceField(label="Counts", initial="tool_calls",
                                   choices=[("tool_calls", "tools/call only"),
                                            ("all", "Every request (ping and listings too)")])
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, consumers=(), fixed_consumer: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["consumer"].choices = [("", "Every consumer")] + [(c.pk, c.name) for c in consumers]
        if fixed_consumer:
            del self.fields["consumer"]


class CallRecordSettingsForm(forms.Form):
    record_arguments = forms.BooleanField(required=False, label="Keep the arguments of each call",
                                          help_text="Names that look like secrets (password, token, api_key …) are "
                                                    "always redacted.")
    redact_fields = forms.CharField(required=False, label="Also redact",
                                    help_text="Argument names, separated by commas or spaces.")
class CircuitBreakerForm(forms.Form):
    enabled = forms.BooleanField(required=False, label="Break the circuit of this service",
                                 help_text="After enough failed calls in a row (no connection, a timeout, a 5xx "
                                           "answer) the gateway stops calling the service for a while and answers "
                                           "at once; then one call tries again.")
    failure_threshold = forms.IntegerField(min_value=1, max_value=1000, initial=5, label="Failed calls in a row")
    open_seconds = forms.IntegerField(min_value=1, max_value=3600, initial=30, label="Seconds before trying again")


class HostedEntryForm(forms.Form):
    """An entry of the catalogue of hosted stdio servers (staff)."""

    slug = forms.CharField(max_length=63, validators=[slug_validator],
                           help_text="How servers and the API name the entry; lowercase letters, digits, - and _.")
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": TEXTAREA_ROWS}))
    runtime = forms.ChoiceField(choices=HostedStdioEntry.Runtime.choices, widget=forms.RadioSelect,
                                initial=HostedStdioEntry.Runtime.NPM)
    package = forms.CharField(max_length=214, widget=forms.TextInput(
        attrs={"placeholder": "@modelcontextprotocol/server-everything"}))
    version = forms.CharField(max_length=64, label="Pinned version", help_text="One exact version, e.g. 2026.8.31.")
    command = forms.CharField(max_length=200, help_text="One of the package's executables, e.g. mcp-server-everything.")
    args = forms.CharField(required=False, label="Arguments", widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="One per line; passed as they are (no shell).")
    variables = forms.CharField(required=False, label="Variables (JSON)", widget=forms.Textarea(attrs={
        "rows": 4, "spellcheck": "false",
        "placeholder": '[{"name": "API_TOKEN", "description": "…", "secret": true, "required": true}]'}),
        help_text="The environment the server needs: name, description, secret, required, default.")
    shareable = forms.BooleanField(required=False, label="Shareable: one pool of processes serves many sessions")
    allow_install_scripts = forms.BooleanField(required=False, label="Run the package's install scripts")
    max_processes = forms.IntegerField(min_value=1, initial=10)
    memory_mb = forms.IntegerField(min_value=1, initial=2048, label="Memory (MB)",
                                   help_text="Address space (RLIMIT_AS); Node reserves about 1 GB of it at start.")
    cpu_seconds = forms.IntegerField(min_value=1, initial=300, label="CPU time (s)")
    open_files = forms.IntegerField(min_value=1, initial=256)
    startup_timeout_seconds = forms.IntegerField(min_value=1, initial=30, label="Start-up timeout (s)")
    idle_timeout_seconds = forms.IntegerField(min_value=1, initial=600, label="Idle timeout (s)")

    def clean_args(self) -> list[str]:
        return [line.strip() for line in (self.cleaned_data.get("args") or "").splitlines() if line.strip()]

    def clean_variables(self) -> list:
        text = (self.cleaned_data.get("variables") or "").strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        return value

"""The ONE policy table: (method, route path) -> roles allowed. Every route must have an entry.

Separation of duties (等保 2.0 三权分立): administrators manage users and tokens, auditors read logs,
the audit trail and export, on-call staff and engineers act on incidents; nobody audits themselves.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's role."""

    admin = "admin"
    engineer = "engineer"
    oncall = "oncall"
    auditor = "auditor"


ALL = frozenset(Role)
OPS = frozenset({Role.admin, Role.engineer, Role.oncall, Role.auditor})  # operational read-only views
ACT = frozenset({Role.engineer, Role.oncall})  # acknowledge, silence, escalate, mark reported
CONFIGS = frozenset({Role.admin, Role.engineer, Role.oncall})  # config texts may hold sensitive lines
LOG_READ = frozenset({Role.auditor, Role.engineer, Role.oncall})
AUDITOR = frozenset({Role.auditor})
REPORTS = frozenset({Role.admin, Role.engineer, Role.auditor})  # monthly reports for leadership and 等保
WHERE = frozenset({Role.engineer, Role.oncall, Role.auditor})  # from a log line or alert to the port
ADMIN = frozenset({Role.admin})

# Reachable without a session or token (the login itself and the stylesheet/script).
PUBLIC: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/static/{name}"),
    }
)

POLICY: dict[tuple[str, str], frozenset[Role]] = {
    # --- JSON API -----------------------------------------------------------------------------
    ("GET", "/api/v1/openapi.json"): ALL,
    ("GET", "/api/v1/health"): ALL,
    ("GET", "/api/v1/me"): ALL,
    ("POST", "/api/v1/auth/logout"): ALL,
    ("GET", "/api/v1/devices"): OPS,
    ("GET", "/api/v1/devices/{name}"): OPS,
    ("GET", "/api/v1/topology"): OPS,
    ("GET", "/api/v1/links"): OPS,
    ("GET", "/api/v1/hardware"): OPS,
    ("GET", "/api/v1/hardware/export"): OPS,
    ("GET", "/api/v1/alerts"): OPS,
    ("GET", "/api/v1/incidents"): OPS,
    ("GET", "/api/v1/incidents/{incident_id}"): OPS,
    ("POST", "/api/v1/incidents/{incident_id}/ack"): ACT,
    ("POST", "/api/v1/incidents/{incident_id}/escalate"): ACT,
    ("POST", "/api/v1/incidents/{incident_id}/reported"): ACT,
    ("GET", "/api/v1/silences"): OPS,
    ("POST", "/api/v1/silences"): ACT,
    ("POST", "/api/v1/silences/{silence_id}/expire"): ACT,
    ("GET", "/api/v1/backups"): CONFIGS,
    ("GET", "/api/v1/backups/files/{path:path}"): CONFIGS,
    ("GET", "/api/v1/reports"): REPORTS,
    ("GET", "/api/v1/reports/files/{path:path}"): REPORTS,
    ("GET", "/api/v1/configs/{device}/versions"): CONFIGS,
    ("GET", "/api/v1/configs/{device}/diff"): CONFIGS,
    ("GET", "/api/v1/services"): OPS,
    ("GET", "/api/v1/services/{name}"): OPS,
    ("POST", "/api/v1/services/{name}/baseline"): ACT,
    ("GET", "/api/v1/logs"): LOG_READ,
    ("POST", "/api/v1/logs/exports"): AUDITOR,
    ("GET", "/api/v1/logs/exports"): AUDITOR,
    ("GET", "/api/v1/logs/exports/{export_id}/{filename}"): AUDITOR,
    ("GET", "/api/v1/audit"): AUDITOR,
    ("GET", "/api/v1/where"): WHERE,
    ("GET", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users"): ADMIN,
    ("POST", "/api/v1/users/{username}/disable"): ADMIN,
    ("GET", "/api/v1/tokens"): ADMIN,
    ("POST", "/api/v1/tokens"): ALL,  # each user their own token only (api.routes.api.create_token)
    ("POST", "/api/v1/tokens/{token_id}/revoke"): ADMIN,
    # --- web console --------------------------------------------------------------------------
    ("GET", "/"): ALL,
    ("POST", "/logout"): ALL,
    ("GET", "/incidents"): OPS,
    ("GET", "/incidents/{incident_id}"): OPS,
    ("POST", "/incidents/{incident_id}/ack"): ACT,
    ("POST", "/incidents/{incident_id}/silence"): ACT,
    ("POST", "/incidents/{incident_id}/escalate"): ACT,
    ("GET", "/devices"): OPS,
    ("GET", "/devices/{name}"): OPS,
    ("GET", "/topology"): OPS,
    ("GET", "/topology.svg"): OPS,
    ("GET", "/hardware"): OPS,
    ("GET", "/hardware/export"): OPS,
    ("GET", "/backups"): CONFIGS,
    ("GET", "/reports"): REPORTS,
    ("GET", "/backups/{device}"): CONFIGS,
    ("GET", "/services"): OPS,
    ("GET", "/services/{name}"): OPS,
    ("POST", "/services/{name}/baseline"): ACT,
    ("GET", "/logs"): LOG_READ,
    ("POST", "/logs/export"): AUDITOR,
    ("GET", "/logs/exports/{export_id}/{filename}"): AUDITOR,
    ("GET", "/audit"): AUDITOR,
    ("GET", "/where"): WHERE,
}


def allowed(method: str, path: str, role: str) -> bool:
    """True when `role` may call `method path` (unknown routes are denied: fail closed)."""
    roles = POLICY.get((method.upper(), path))
    return roles is not None and role in roles


def home_of(role: str) -> str:
    """The console page a role lands on after login."""
    return "/logs" if role == Role.auditor else "/devices" if role == Role.admin else "/incidents"

"""The `govnet` command line: one entry point, each command delegating to its own room."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    name="govnet",
    help=(
        "govnet watches a government extranet: it polls switches, firewalls, gateways, "
        "UPS and database servers over SNMP and SSH, exports metrics to Prometheus and "
        "InfluxDB, and raises alerts.\n\nStart with `govnet check-inventory FILE`, then "
        "`govnet poll-once --inventory FILE --json`, then `govnet run --config FILE`."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

InventoryPath = Annotated[
    Path,
    typer.Option("--inventory", "-i", help="Inventory YAML file (or folder of them).", show_default=False),
]


@app.command("check-inventory")
def check_inventory(
    file: Annotated[Path, typer.Argument(help="Inventory YAML file or folder to validate.")],
) -> None:
    """Validate an inventory and report every error at once (file:line, value, what is expected)."""
    from inventory.cli import check_inventory_command

    raise typer.Exit(check_inventory_command(file))


@app.command("poll-once")
def poll_once(
    inventory: InventoryPath,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per sample on stdout.")] = False,
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", help="Only these devices (repeatable).")
    ] = None,
) -> None:
    """Poll every device once and print the samples (for scripts and checks)."""
    from collectors.cli import poll_once_command

    raise typer.Exit(poll_once_command(inventory, json_out=json_out, devices=device or []))


@app.command("run")
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="govnet config YAML.", show_default=False)],
) -> None:
    """Keep polling on schedule and serve /metrics until interrupted."""
    from govnet.run import run_command

    raise typer.Exit(run_command(config))


@app.command("syslog")
def syslog(
    store: Annotated[Path, typer.Option("--store", help="Log store folder.", show_default=False)],
    listen: Annotated[str, typer.Option("--listen", help="Address to bind.")] = "127.0.0.1",
    tcp_port: Annotated[int | None, typer.Option("--tcp-port", help="TCP port (RFC 6587).")] = 514,
    udp_port: Annotated[int | None, typer.Option("--udp-port", help="UDP port.")] = 514,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="Map sources to inventory devices.")
    ] = None,
    retention_days: Annotated[float, typer.Option("--retention-days", help="Keep records this long.")] = 180,
    budget_bytes: Annotated[
        int | None, typer.Option("--budget-bytes", help="Disk budget for the store.")
    ] = None,
    tls_port: Annotated[int | None, typer.Option("--tls-port", help="TLS port (RFC 5425).")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Server certificate PEM.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Server private key PEM file.")] = None,
    forward: Annotated[
        str | None, typer.Option("--forward", help="Also forward durable frames to HOST:PORT (TCP).")
    ] = None,
    segment_bytes: Annotated[
        int, typer.Option("--segment-bytes", help="Seal (compress, index) segments at this size.", min=65536)
    ] = 64 * 1024 * 1024,
    tls_client_ca: Annotated[
        Path | None, typer.Option("--tls-client-ca", help="Require TLS client certificates from this CA.")
    ] = None,
) -> None:
    """Receive syslog (UDP, TCP, TLS) into the tamper-evident log store until interrupted."""
    from collectors.syslog.cli import syslog_command
    from core.gcsettings import tune

    tune()
    extra = (tls_port, tls_cert, tls_key, forward)
    code = syslog_command(
        store, listen, tcp_port, udp_port, inventory, retention_days, budget_bytes, *extra,
        tls_client_ca=tls_client_ca, segment_bytes=segment_bytes,
    )  # fmt: skip
    raise typer.Exit(code)


@app.command("export-logs")
def export_logs(
    store: Annotated[Path, typer.Option("--store", help="Log store folder.", show_default=False)],
    from_: Annotated[str, typer.Option("--from", help="Start (ISO 8601, inclusive).", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="End (ISO 8601, exclusive).", show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Empty folder to write to.", show_default=False)],
    fmt: Annotated[str, typer.Option("--format", help="csv or ndjson.")] = "csv",
    device: Annotated[str | None, typer.Option("--device", help="Only this device.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type.")] = None,
    hmac_key: Annotated[
        str | None, typer.Option("--hmac-key", help="HMAC key reference (env:NAME or file:PATH).")
    ] = None,
    ed25519_key: Annotated[
        str | None, typer.Option("--ed25519-key", help="Ed25519 private key PEM reference.")
    ] = None,
) -> None:
    """Export security logs for auditors: records, signed manifest and proofs."""
    from logstore.cli import export_command

    raise typer.Exit(export_command(store, from_, to, device, event_type, fmt, out, hmac_key, ed25519_key))


@app.command("verify-export")
def verify_export(
    folder: Annotated[Path, typer.Argument(help="Export folder to verify.")],
    hmac_key: Annotated[
        str | None, typer.Option("--hmac-key", help="HMAC key reference (env:NAME or file:PATH).")
    ] = None,
    ed25519_pub: Annotated[
        str | None, typer.Option("--ed25519-pub", help="Ed25519 public key PEM reference.")
    ] = None,
) -> None:
    """Check an export offline: completeness, integrity, signature; exit 1 when anything is wrong."""
    from logstore.cli import verify_command

    raise typer.Exit(verify_command(folder, hmac_key, ed25519_pub))


@app.command("verify-store")
def verify_store(
    store: Annotated[Path, typer.Option("--store", help="Log store folder.", show_default=False)],
) -> None:
    """Check the whole log store's hash chain read-only (the receiver may keep running)."""
    from logstore.cli import verify_store_command

    raise typer.Exit(verify_store_command(store))


@app.command("search-logs")
def search_logs(
    store: Annotated[Path, typer.Option("--store", help="Log store folder.", show_default=False)],
    from_: Annotated[str | None, typer.Option("--from", help="Start (ISO 8601, inclusive).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (ISO 8601, exclusive).")] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Source or destination IP.")] = None,
    src_ip: Annotated[str | None, typer.Option("--src-ip", help="Source IP.")] = None,
    dst_ip: Annotated[str | None, typer.Option("--dst-ip", help="Destination IP.")] = None,
    user: Annotated[str | None, typer.Option("--user", help="User name.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Device name.")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Event type.")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Text in the message.")] = None,
    after: Annotated[int, typer.Option("--after", help="Continue after this seq (paging).")] = 0,
    limit: Annotated[int, typer.Option("--limit", help="Records per page (1-1000).")] = 50,
) -> None:
    """Search the security logs (audited): one JSON record per line, then {"next_after": seq}."""
    from logstore.cli import iso_arg, search_command
    from logstore.search import Query

    try:
        query = Query(
            iso_arg(from_, ""), iso_arg(to, "~"), device, event_type, src_ip, dst_ip, ip, user, text
        )
    except ValueError as exc:
        typer.echo(f"search-logs: bad time: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(search_command(store, query, after, max(1, min(limit, 1000))))


ConfigPath = Annotated[Path, typer.Option("--config", "-c", help="govnet config YAML.", show_default=False)]


@app.command("probe")
def probe(
    inventory: InventoryPath,
    device: Annotated[list[str] | None, typer.Option("--device", "-d", help="Only these devices.")] = None,
    count: Annotated[int, typer.Option("--count", help="Echoes per device.")] = 5,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for each echo.")] = 1.0,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """ICMP-probe devices now: RTT, loss and jitter (needs root or CAP_NET_RAW)."""
    from collectors.icmp.cli import probe_command

    raise typer.Exit(probe_command(str(inventory), device or [], count, timeout, json_out))


@app.command("check-services")
def check_services(
    inventory: InventoryPath,
    service: Annotated[list[str] | None, typer.Option("--service", "-s", help="Only these services.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per service.")] = False,
) -> None:
    """Run the inventory's service checks once (HTTP(S), TLS, DNS, TCP) and print each verdict."""
    from collectors.services.cli import check_services_command

    raise typer.Exit(check_services_command(inventory, service or [], json_out))


@app.command("doctor")
def doctor(
    config: Annotated[Path, typer.Option("--config", "-c", help="govnet config YAML.")] = Path(
        "/etc/govnet/govnet.yaml"
    ),
) -> None:
    """Check a deployment (config, inventory, secrets, devices, ports, disk, clock) and say what to fix."""
    from govnet.doctor import doctor_command

    raise typer.Exit(doctor_command(config))


@app.command("test-rules")
def test_rules(
    files: Annotated[list[Path], typer.Argument(help="Rule test files (promtool-style YAML).")],
) -> None:
    """Run alert rule unit tests: input series, expected alerts at given times."""
    from alerts.cli import test_rules_command

    raise typer.Exit(test_rules_command(files))


@app.command("backups")
def backups(
    config: ConfigPath,
    check: Annotated[bool, typer.Option("--check", help="Verify now before listing.")] = False,
    job: Annotated[list[str] | None, typer.Option("--job", help="Only these jobs (repeatable).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List each backup job's last verdict (age, size, checksum); --check verifies now."""
    from collectors.backup.cli import backups_command

    raise typer.Exit(backups_command(config, check, job or [], json_out))


@app.command("where")
def where(
    config: ConfigPath,
    query: Annotated[
        str, typer.Argument(help="An IPv4/IPv6 address or a MAC (00:e0:fc:12:34:56, 00e0.fc12.3456).")
    ],
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Where is this address: its MAC, vendor, switch port, VLAN and history (exit 1 if never seen)."""
    from collectors.where.cli import where_command

    raise typer.Exit(where_command(config, query, json_out))


alerts_app = typer.Typer(no_args_is_help=True, help="Incidents: list, acknowledge, silence, report.")
app.add_typer(alerts_app, name="alerts")


@alerts_app.command("list")
def alerts_list(
    config: ConfigPath,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    all_incidents: Annotated[bool, typer.Option("--all", help="Include resolved incidents.")] = False,
) -> None:
    """Incidents with their acknowledgement, escalation and affected devices."""
    from alerts.cli import list_command

    raise typer.Exit(list_command(config, json_out, all_incidents))


@alerts_app.command("ack")
def alerts_ack(
    config: ConfigPath,
    incident: Annotated[str, typer.Argument(help="Incident id, e.g. INC-000001.")],
    owner: Annotated[str, typer.Option("--owner", help="Who takes it.", show_default=False)],
    comment: Annotated[str, typer.Option("--comment", help="What is being done.")] = "",
) -> None:
    """Acknowledge an incident: escalation stops; the resolved notice is still sent."""
    from alerts.cli import ack_command

    raise typer.Exit(ack_command(config, incident, owner, comment))


@alerts_app.command("silence")
def alerts_silence(
    config: ConfigPath,
    matchers: Annotated[list[str], typer.Argument(help="Label matchers, e.g. device=core-1.")],
    duration: Annotated[str, typer.Option("--for", help="How long, e.g. 2h.", show_default=False)],
    author: Annotated[str, typer.Option("--author", help="Who silences.", show_default=False)],
    comment: Annotated[str, typer.Option("--comment", help="Why.")] = "",
    maintenance: Annotated[bool, typer.Option("--maintenance", help="A maintenance window.")] = False,
) -> None:
    """Silence matching alerts for a while (or declare a maintenance window)."""
    from alerts.cli import silence_command

    raise typer.Exit(silence_command(config, matchers, duration, author, comment, maintenance))


@alerts_app.command("expire")
def alerts_expire(config: ConfigPath, silence_id: Annotated[str, typer.Argument(help="Silence id.")]) -> None:
    """End a silence now."""
    from alerts.cli import expire_command

    raise typer.Exit(expire_command(config, silence_id))


@alerts_app.command("reported")
def alerts_reported(
    config: ConfigPath,
    incident: Annotated[str, typer.Argument(help="Incident id.")],
    by: Annotated[str, typer.Option("--by", help="Who reported it.", show_default=False)],
) -> None:
    """Record that a reportable incident was reported to the authorities (stops the reminders)."""
    from alerts.cli import report_command

    raise typer.Exit(report_command(config, incident, by))


ssh_app = typer.Typer(no_args_is_help=True, help="SSH: host keys, configuration backups and diffs.")
app.add_typer(ssh_app, name="ssh")
StateDir = Annotated[
    Path, typer.Option("--state-dir", help="govnet state folder (config repository).", show_default=False)
]


@ssh_app.command("trust")
def ssh_trust(
    inventory: InventoryPath,
    device: Annotated[str, typer.Argument(help="Device name.")],
    known_hosts: Annotated[
        Path, typer.Option("--known-hosts", help="govnet's known_hosts file.", show_default=False)
    ],
    replace: Annotated[bool, typer.Option("--replace", help="Replace a different recorded key.")] = False,
) -> None:
    """Record the host key a device presents now (a changed key is refused unless --replace)."""
    from collectors.ssh.cli import trust_command

    raise typer.Exit(trust_command(inventory, device, known_hosts, replace))


@ssh_app.command("backup")
def ssh_backup(
    inventory: InventoryPath,
    state_dir: StateDir,
    device: Annotated[list[str] | None, typer.Argument(help="Devices (default: all SSH-managed).")] = None,
) -> None:
    """Back up running configurations now (unchanged configs make no new version)."""
    from collectors.ssh.cli import backup_command

    raise typer.Exit(backup_command(inventory, state_dir, device or []))


@ssh_app.command("diff")
def ssh_diff(
    state_dir: StateDir,
    device: Annotated[str, typer.Argument(help="Device name.")],
    back: Annotated[int, typer.Option("--back", help="Compare with this many versions ago.")] = 1,
) -> None:
    """Show what changed in a device's configuration."""
    from collectors.ssh.cli import diff_command

    raise typer.Exit(diff_command(state_dir, device, back))


@ssh_app.command("history")
def ssh_history(state_dir: StateDir, device: Annotated[str, typer.Argument(help="Device name.")]) -> None:
    """List a device's configuration versions, newest first."""
    from collectors.ssh.cli import history_command

    raise typer.Exit(history_command(state_dir, device))


db_app = typer.Typer(no_args_is_help=True, help="The dual-node database pairs.")
app.add_typer(db_app, name="db")


@db_app.command("status")
def db_status(
    config: ConfigPath, json_out: Annotated[bool, typer.Option("--json", help="JSON output.")] = False
) -> None:
    """Roles, replication lag and the pair verdict of each database pair."""
    from collectors.db.cli import db_status_command

    raise typer.Exit(db_status_command(config, json_out))


ApiStateDir = Annotated[
    Path, typer.Option("--state-dir", help="The API's state folder (users.db).", show_default=False)
]
user_app = typer.Typer(no_args_is_help=True, help="Console and API users.")
app.add_typer(user_app, name="user")
token_app = typer.Typer(no_args_is_help=True, help="API tokens.")
app.add_typer(token_app, name="token")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option("--role", help="admin, engineer, oncall or auditor.")],
    state_dir: ApiStateDir,
    password_ref: Annotated[
        str | None, typer.Option("--password-ref", help="env:NAME or file:PATH; prompts when absent.")
    ] = None,
) -> None:
    """Create a user (the first admin too: govnet has no default password)."""
    from api.cli import user_add_command

    raise typer.Exit(user_add_command(state_dir, name, role, password_ref))


@token_app.command("add")
def token_add(
    user: Annotated[str, typer.Argument(help="User the token acts as.")],
    state_dir: ApiStateDir,
    days: Annotated[float, typer.Option("--days", help="Validity in days.")] = 30,
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
) -> None:
    """Create an API token (printed once, stored hashed)."""
    from api.cli import token_add_command

    raise typer.Exit(token_add_command(state_dir, user, days, label))


links_app = typer.Typer(help="Declared links checked against what LLDP/CDP sees.", no_args_is_help=True)


@links_app.command("check")
def links_check(inventory: InventoryPath) -> None:
    """Poll once and print each declared link's state (confirmed, wrong_port, down, missing, unknown)."""
    from collectors.links import links_command

    raise typer.Exit(links_command(inventory, discover=False))


@links_app.command("discover")
def links_discover(inventory: InventoryPath) -> None:
    """Poll once and print the links LLDP/CDP sees that the inventory lacks, as a YAML fragment."""
    from collectors.links import links_command

    raise typer.Exit(links_command(inventory, discover=True))


app.add_typer(links_app, name="links")


report_app = typer.Typer(no_args_is_help=True, help="Reports for leadership and auditors (PDF + XLSX).")
app.add_typer(report_app, name="report")


@report_app.command("monthly")
def report_monthly(
    config: ConfigPath,
    month: Annotated[str | None, typer.Option("--month", help="YYYY-MM (Beijing time).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start, ISO 8601 (instead of --month).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End, ISO 8601, exclusive.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the PDF and XLSX (default: reports.dir)")
    ] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="zh (default) or en.")] = None,
) -> None:
    """Availability per unit and device, uplink 95th percentiles, incidents, security logs, backups."""
    from govnet.config import ConfigError
    from govnet.reporting import load_for_report
    from reports.cli import monthly_command

    if lang not in (None, "zh", "en"):
        raise typer.BadParameter("--lang must be zh or en")

    def load() -> Any:
        try:
            return load_for_report(config)
        except ConfigError as exc:
            raise ValueError(f"invalid config {config}\n{exc}") from None

    raise typer.Exit(monthly_command(load, month, from_, to, out, lang))


def _lab_app() -> typer.Typer:
    from lab.cli import app as lab_app

    return lab_app


app.add_typer(_lab_app(), name="lab", help="A simulated extranet on loopback (SNMP and SSH).")


def main() -> None:
    """Console-script entry point."""
    app()

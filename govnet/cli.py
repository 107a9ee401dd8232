"""The `govnet` command line: one entry point, each command delegating to its own room."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    typer.Option(
        "--inventory", "-i", help="Inventory YAML file (or folder of them).", show_default=False
    ),
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
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per sample on stdout.")
    ] = False,
    device: Annotated[
        list[str] | None, typer.Option("--device", "-d", help="Only these devices (repeatable).")
    ] = None,
) -> None:
    """Poll every device once and print the samples (for scripts and checks)."""
    from collectors.cli import poll_once_command

    raise typer.Exit(poll_once_command(inventory, json_out=json_out, devices=device or []))


@app.command("run")
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="govnet config YAML.", show_default=False)
    ],
) -> None:
    """Keep polling on schedule and serve /metrics until interrupted."""
    from collectors.cli import run_command

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
) -> None:
    """Receive syslog (UDP, TCP, TLS) into the tamper-evident log store until interrupted."""
    from collectors.syslog.cli import syslog_command

    extra = (tls_port, tls_cert, tls_key, forward)
    code = syslog_command(store, listen, tcp_port, udp_port, inventory, retention_days, budget_bytes, *extra)
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


def _lab_app() -> typer.Typer:
    from lab.cli import app as lab_app

    return lab_app


app.add_typer(_lab_app(), name="lab", help="A simulated extranet on loopback (SNMP and SSH).")


def main() -> None:
    """Console-script entry point."""
    app()

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


def _lab_app() -> typer.Typer:
    from lab.cli import app as lab_app

    return lab_app


app.add_typer(_lab_app(), name="lab", help="A simulated extranet on loopback (SNMP and SSH).")


def main() -> None:
    """Console-script entry point."""
    app()

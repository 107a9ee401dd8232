"""`govnet lab up|down|status|fault|clear`."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lab import control
from lab.faults import KINDS
from lab.hosts import KINDS as HOST_KINDS

app = typer.Typer(no_args_is_help=True)

RunDir = Annotated[Path, typer.Option("--run-dir", help="Where the lab keeps its state, secrets and socket.")]
DEFAULT_RUN_DIR = Path(".govnet-lab")


def _call(run_dir: Path, request: dict[str, Any]) -> dict[str, Any]:
    try:
        return control.call(run_dir, request)
    except control.ControlError as exc:
        typer.echo(f"lab: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command()
def up(
    inventory: Annotated[Path, typer.Option("--inventory", exists=True, dir_okay=False)],
    run_dir: RunDir = DEFAULT_RUN_DIR,
    base: Annotated[
        str, typer.Option(help="Loopback base address; devices get the next ones.")
    ] = "127.77.0.0",
    snmp_port: int = 16161,
    ssh_port: Annotated[int, typer.Option(help="0 disables the SSH CLIs.")] = 2222,
    foreground: Annotated[
        bool, typer.Option("--foreground", help="Run in this process until Ctrl-C.")
    ] = False,
    procs: Annotated[
        int, typer.Option(help="Processes serving the SNMP agents (a big lab on several cores).")
    ] = 1,
) -> None:
    """Start the lab for an inventory; prints the derived inventory path."""
    if foreground:
        from lab.server import main as server_main

        server_main([
            "--inventory", str(inventory), "--run-dir", str(run_dir), "--base", base,
            "--snmp-port", str(snmp_port), "--ssh-port", str(ssh_port), "--procs", str(procs),
        ])  # fmt: skip
        return
    from lab.runner import LabError, LabProcess

    lab = LabProcess(inventory, run_dir, base=base, snmp_port=snmp_port, ssh_port=ssh_port, procs=procs)
    try:
        lab.start()
    except LabError as exc:
        typer.echo(f"lab did not start: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"lab running, pid {lab.pid}; log {lab.log_path}")
    typer.echo(str(lab.inventory_path.resolve()))


@app.command()
def down(run_dir: RunDir = DEFAULT_RUN_DIR) -> None:
    """Stop the lab running from run_dir."""
    state_file = run_dir / "lab.json"
    if not state_file.exists():
        typer.echo("no lab running here")
        return
    pid = int(json.loads(state_file.read_text())["pid"])
    try:
        control.call(run_dir, {"op": "stop"}, timeout=3)
    except control.ControlError:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            state_file.unlink(missing_ok=True)
            typer.echo("lab was not running (stale state removed)")
            return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            typer.echo(f"lab stopped (pid {pid})")
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    typer.echo(f"lab killed (pid {pid})")


@app.command()
def status(
    run_dir: RunDir = DEFAULT_RUN_DIR,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Devices, active faults and CPU used by the lab."""
    st = _call(run_dir, {"op": "status"})
    if as_json:
        typer.echo(json.dumps(st, indent=1))
        return
    typer.echo(
        f"lab pid {st['pid']}, up {st['uptime_s']} s, CPU {st['cpu_s']} s, RSS {st['rss_mb']} MB, "
        f"{st['requests']} requests, {st['varbinds']} varbinds; {st['ssh']}"
    )
    for d in st["devices"]:
        faults = ", ".join(f"{k}{v or ''}" for k, v in d["faults"].items()) or "-"
        role = f" {d['ha_role']}" if d["ha_role"] else ""
        typer.echo(
            f"  {d['name']:<20} {d['vendor']:<9} {d['address']}:{d['snmp_port']}{role}  faults: {faults}"
        )


@app.command()
def fault(
    device: str,
    kind: Annotated[str, typer.Argument(help=" | ".join(KINDS + HOST_KINDS))],
    interface: Annotated[str | None, typer.Option(help="For link_down, optic_degrade and miswire.")] = None,
    host: Annotated[
        str | None, typer.Option(help="For host_move/arp_spoof: the host's IP or MAC (default: the first).")
    ] = None,
    to: Annotated[str | None, typer.Option(help="For host_move: the access switch to move to.")] = None,
    seconds: Annotated[
        float | None,
        typer.Option(help="For slow (delay), counter_wrap (time to wrap), optic_degrade (s per 2 dB step)."),
    ] = None,
    run_dir: RunDir = DEFAULT_RUN_DIR,
) -> None:
    """Inject a fault into a lab device."""
    params: dict[str, Any] = {}
    if interface:
        params["interface"] = interface
    if seconds is not None:
        params["seconds"] = seconds
    if host:
        params["host"] = host
    if to:
        params["to"] = to
    res = _call(run_dir, {"op": "fault", "device": device, "kind": kind, "params": params})
    res.pop("ok", None)
    typer.echo(json.dumps(res))


@app.command()
def clear(
    device: str,
    kind: Annotated[str | None, typer.Argument(help="A fault kind; all faults when omitted.")] = None,
    run_dir: RunDir = DEFAULT_RUN_DIR,
) -> None:
    """Clear one fault kind, or all faults, of a lab device."""
    res = _call(run_dir, {"op": "clear", "device": device, "kind": kind})
    typer.echo("cleared: " + (", ".join(res["cleared"]) or "nothing"))


@app.command()
def tour(
    step: Annotated[
        str | None, typer.Argument(help="uplink | core | failover | bruteforce | config | clear")
    ] = None,
    run_dir: RunDir = DEFAULT_RUN_DIR,
) -> None:
    """The guided tour: list the steps, run one, or clear every fault."""
    from lab import tour as t

    if step is None:
        typer.echo("\n".join(t.menu(run_dir)))
        return
    if step == "clear":
        try:
            done = t.clear_all(run_dir)
        except control.ControlError as exc:
            typer.echo(f"lab: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo("cleared: " + ("; ".join(done) or "nothing"))
        return
    if step not in t.STEP_KEYS:
        typer.echo(f"unknown step {step!r}; one of {', '.join(t.STEP_KEYS)}, clear", err=True)
        raise typer.Exit(2)
    try:
        s, device, answers = t.run_step(run_dir, step)
    except (control.ControlError, LookupError, OSError) as exc:
        typer.echo(f"lab: {exc}", err=True)
        raise typer.Exit(1) from None
    failed = [a for a in answers if not a.get("ok")]
    typer.echo(f"{s.title}: {device}")
    typer.echo(
        f"  注入 {len(answers) - len(failed)} 项" + (f"，失败 {len(failed)}: {failed}" if failed else "")
    )
    typer.echo(f"  预期: {s.expect}")
    typer.echo(f"  去看: {t.console_url(run_dir)}{s.look.format(device=device)}")
    if failed:
        raise typer.Exit(1)


@app.command()
def hosts(run_dir: RunDir = DEFAULT_RUN_DIR) -> None:
    """The lab's synthetic hosts: IP, MAC, VLAN, access switch and port (one JSON object per line)."""
    for h in _call(run_dir, {"op": "hosts"})["hosts"]:
        typer.echo(json.dumps(h))

"""Start the lab as a separate process and drive it: `with LabProcess(inventory, run_dir) as lab: ...`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from lab import control
from lab.probe import wait_answering


def _stderr_progress(done: int, total: int) -> None:
    print(f"\rlab: {done}/{total} agents answering", end="" if done < total else "\n", file=sys.stderr)


def running_pid(run_dir: Path) -> int | None:
    """The pid of a live lab process using run_dir, if any."""
    try:
        pid = int(json.loads((run_dir / "lab.json").read_text())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError):
        return None
    return pid


class LabError(RuntimeError):
    """The lab did not come up (its log tail is in the message)."""


class LabProcess:
    """The lab process: derived inventory, fault injection and clean stop."""

    def __init__(
        self,
        inventory: Path,
        run_dir: Path,
        base: str = "127.77.0.0",
        snmp_port: int = 16161,
        ssh_port: int = 2222,
        start_timeout: float = 60.0,
        syslog: str | None = None,
        traps: str | None = None,
        progress: Callable[[int, int], None] | None = _stderr_progress,
        procs: int = 1,
    ) -> None:
        self.inventory = Path(inventory)
        self.run_dir = Path(run_dir)
        self.base = base
        self.snmp_port = snmp_port
        self.ssh_port = ssh_port
        self.start_timeout = start_timeout
        self.syslog, self.traps = syslog, traps  # HOST:PORT the devices send syslog / traps to
        self.progress = progress
        self.procs = procs  # processes serving the SNMP agents (lab/shards.py)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The lab process id (None before start)."""
        return self.proc.pid if self.proc else None

    def pids(self) -> list[int]:
        """The lab process and its shard processes (for their CPU and memory)."""
        if self.proc is None:
            return []
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            kids = []
        return [self.proc.pid, *(int(k) for k in kids)]

    @property
    def inventory_path(self) -> Path:
        """The derived inventory (lab addresses, SNMPv3/SSH credentials as file: references)."""
        return self.run_dir / "inventory.yaml"

    @property
    def log_path(self) -> Path:
        """The lab process log."""
        return self.run_dir / "lab.log"

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def start(self) -> LabProcess:
        """Start the lab and wait until its control socket and every SNMP agent answer."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        other = running_pid(self.run_dir)
        if other is not None:
            raise LabError(f"a lab (pid {other}) already runs from {self.run_dir}: stop it first")
        cmd = [
            sys.executable, "-m", "lab.server", "--inventory", str(self.inventory),
            "--run-dir", str(self.run_dir), "--base", self.base,
            "--snmp-port", str(self.snmp_port), "--ssh-port", str(self.ssh_port),
        ]  # fmt: skip
        cmd += ["--syslog", self.syslog] if self.syslog else []
        cmd += ["--traps", self.traps] if self.traps else []
        cmd += ["--procs", str(self.procs)] if self.procs > 1 else []
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise LabError(f"lab exited with {self.proc.returncode}:\n{self._log_tail()}")
                try:
                    control.call(self.run_dir, {"op": "ping"}, timeout=2.0)
                    break
                except control.ControlError:
                    if time.monotonic() > deadline:
                        raise LabError(f"lab control socket never answered:\n{self._log_tail()}") from None
                    time.sleep(0.1)
            status = control.call(self.run_dir, {"op": "status"})
            targets = [(d["address"], int(d["snmp_port"])) for d in status["devices"]]
            community = (self.run_dir / "secrets" / "snmp_community").read_text().strip().encode()
            left = max(1.0, deadline - time.monotonic())
            answered = asyncio.run(wait_answering(targets, community, left, self.progress))
            if len(answered) < len(targets):
                raise LabError(f"only {len(answered)}/{len(targets)} lab agents answered")
        except BaseException:
            self.stop()
            raise
        return self

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send a control request."""
        return control.call(self.run_dir, {"op": op, **fields})

    def fault(self, device: str, kind: str, **params: Any) -> dict[str, Any]:
        """Inject a fault; kinds are lab.faults.KINDS."""
        return self.request("fault", device=device, kind=kind, params=params)

    def clear(self, device: str, kind: str | None = None) -> list[str]:
        """Clear one fault kind, or all faults, of a device."""
        cleared = self.request("clear", device=device, kind=kind)["cleared"]
        return [str(k) for k in cleared]

    def status(self) -> dict[str, Any]:
        """Devices, faults and CPU used by the lab."""
        return self.request("status")

    def secret(self, name: str) -> str:
        """A lab secret value (for tests that drive real clients)."""
        return (self.run_dir / "secrets" / name).read_text().strip()

    def devices(self) -> dict[str, dict[str, Any]]:
        """name -> {address, snmp_port, ssh_port} from the lab state file."""
        state = json.loads((self.run_dir / "lab.json").read_text())
        return {d["name"]: d for d in state["devices"]}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the lab: ask politely, then SIGTERM, then SIGKILL; leaves no process behind."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                control.call(self.run_dir, {"op": "stop"}, timeout=2.0)
            except control.ControlError:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.proc = None

    def __enter__(self) -> LabProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

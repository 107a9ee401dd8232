"""The lab process: SNMP agents (and SSH CLIs) for every inventory device, driven by a control socket.

Run as `python -m lab.server --inventory F --run-dir D [--base 127.77.0.0] [--snmp-port 16161]
[--ssh-port 2222] [--syslog HOST:PORT] [--traps HOST:PORT] [--procs N]`; prints `READY` when every
socket is bound; stops cleanly on SIGTERM/SIGINT. `--procs N` serves the SNMP agents from N
processes (lab/shards.py), for labs of thousands of devices.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from inventory.model import Inventory
from lab.control import SOCKET_NAME
from lab.devices import build_devices, build_view
from lab.faults import FaultError, Faults
from lab.hosts import KINDS as HOST_KINDS
from lab.hosts import HostFaultError, LabHosts, install
from lab.shards import Shards, serve_requests, shard_of
from lab.signals import LabSignals
from lab.snmp.agent import AgentServer, DeviceAgent
from lab.snmp.snmprec import snmprec_view
from lab.snmp.usm import UsmEngine, UsmUser
from lab.state import LabDevice

log = logging.getLogger("lab.server")

SECRET_NAMES = ("snmp_community", "snmp_auth", "snmp_priv", "ssh_password")
V3_USER = "govnet"
# Extra users so tests can exercise other USM algorithms with the same keys.
V3_USERS = {
    "govnet": ("sha256", "aes128"),
    "govnet-sha512": ("sha512", "aes256"),
    "govnet-sha1": ("sha", "aes128"),
    "govnet-sha224": ("sha224", "aes192"),
    "govnet-sha384": ("sha384", "aes128"),
}


def write_secret(path: Path, value: str) -> None:
    """Write a secret file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)


def ensure_secrets(run_dir: Path) -> dict[str, Path]:
    """Random lab secrets in run_dir/secrets (kept across restarts of the same run dir)."""
    paths = {}
    for name in SECRET_NAMES:
        path = (run_dir / "secrets" / name).resolve()
        if not path.exists():
            write_secret(path, secrets.token_urlsafe(18))
        paths[name] = path
    return paths


def read_inventory(path: Path) -> tuple[dict[str, Any], Inventory]:
    """The raw YAML and the validated inventory."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: an inventory is a mapping")
    return raw, Inventory.model_validate(raw)


def derived_inventory(
    raw: dict[str, Any], devices: list[LabDevice], secret_paths: dict[str, Path]
) -> dict[str, Any]:
    """The inventory pointing at the lab: lab addresses, SNMPv3 authPriv and SSH credentials as file: refs."""
    out = dict(raw)
    defaults = dict(out.get("defaults") or {})
    defaults.pop("snmp", None)
    defaults.pop("ssh", None)
    out["defaults"] = defaults
    by_name = {d.name: d for d in devices}
    new_devices = []
    for dev in raw.get("devices") or []:
        dev = dict(dev)
        lab = by_name[dev["name"]]
        dev["address"] = lab.address
        dev["snmp"] = {
            "version": "3",
            "user": V3_USER,
            "auth_protocol": "sha256",
            "auth_key": f"file:{secret_paths['snmp_auth']}",
            "priv_protocol": "aes128",
            "priv_key": f"file:{secret_paths['snmp_priv']}",
            "port": lab.snmp_port,
        }
        if lab.ssh_port:
            dev["ssh"] = {
                "username": "govnet",
                "password": f"file:{secret_paths['ssh_password']}",
                "port": lab.ssh_port,
            }
        else:
            dev.pop("ssh", None)
        new_devices.append(dev)
    out["devices"] = new_devices
    return out


SNMPREC_DIRS = [
    Path(os.environ.get("GOVNET_SNMPREC", "/nonexistent")),
    Path(__file__).resolve().parents[1] / "tests" / "data" / "snmprec",
]


def find_snmprec(ref: str, inventory_dir: Path) -> Path:
    """The recording a `snmprec:` tag names: a path (relative to the inventory) or a shared recording."""
    candidates = [inventory_dir / ref, Path(ref)] + [d / f"{ref}.snmprec" for d in SNMPREC_DIRS]
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(f"snmprec recording {ref!r} not found (set GOVNET_SNMPREC)")


def make_agent(
    d: LabDevice, community: bytes, auth: bytes, priv: bytes, inventory_dir: Path = Path(".")
) -> DeviceAgent:
    """The SNMP agent of one lab device (v2c community and v3 users share one view)."""
    view = snmprec_view(find_snmprec(d.snmprec, inventory_dir)) if d.snmprec else build_view(d)
    users = {name.encode(): UsmUser(name.encode(), a, auth, p, priv) for name, (a, p) in V3_USERS.items()}
    engine = UsmEngine(UsmEngine.make_engine_id(f"{d.name}/{d.address}"), users)
    return DeviceAgent(
        name=d.name,
        views={community: view},
        v3_view=view,
        usm=engine,
        boots=lambda: d.engine_boots,
        boot_time=lambda: d.boot_time,
        dead=lambda: d.dead,
        delay=lambda: d.slow_s,
    )


class LabServer:
    """Everything the lab process runs; `run()` until stopped."""

    def __init__(
        self,
        inventory: Path,
        run_dir: Path,
        base: str,
        snmp_port: int,
        ssh_port: int,
        syslog: str | None = None,
        traps: str | None = None,
        procs: int = 1,
        shard: tuple[int, int] | None = None,
        start_time: float | None = None,
    ) -> None:
        self.inventory = inventory
        # procs > 1: this process serves every procs-th device and starts shards for the rest;
        # shard (k, n): this is shard k of n (SNMP agents only, driven by the lab process).
        self.procs, self.shard, self.start_time = procs, shard, start_time
        self.shards: Shards | None = None
        self.watcher: asyncio.Future[None] | None = None
        self.syslog_target, self.trap_target = syslog, traps
        self.signals: LabSignals | None = None
        self.run_dir = run_dir
        self.base = base
        self.snmp_port = snmp_port
        self.ssh_port = ssh_port
        self.stop_event = asyncio.Event()
        self.agents = AgentServer()
        self.devices: list[LabDevice] = []
        self.faults = Faults([])
        self.hosts: LabHosts | None = None
        self.community = b""
        self.ssh_closer: Callable[[], Awaitable[None]] | None = None
        self.ssh_status = "not started"
        self.started = time.time()
        self.state_written = False
        self.control: asyncio.Server | None = None

    async def start(self) -> None:
        """Build devices, write the derived inventory, bind every socket."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        raw, inv = read_inventory(self.inventory)
        paths = ensure_secrets(self.run_dir)
        community, auth, priv = (paths[n].read_text().strip().encode() for n in SECRET_NAMES[:3])
        if self.start_time is None:
            self.start_time = time.time()
        # Every process builds every device from the same start time: the same state everywhere.
        self.devices = build_devices(inv, self.base, self.snmp_port, self.ssh_port or None, self.start_time)
        self.faults = Faults(self.devices)
        k, n = self.shard or (0, self.procs)
        served = [d for i, d in enumerate(self.devices) if shard_of(i, n) == k]
        inv_path = self.run_dir / "inventory.yaml"
        if self.shard is None:
            derived = derived_inventory(raw, self.devices, paths)
            inv_path.write_text(
                yaml.safe_dump(derived, sort_keys=False, allow_unicode=True), encoding="utf-8"
            )
            if self.procs > 1:  # the shards build their views while this process builds its own
                self.shards = await Shards.start(self.shard_argv(), self.procs)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = len(self.devices) * 2 + 64
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        self.hosts = LabHosts(inv, self.devices)
        self.community = community
        for d in served:
            agent = make_agent(d, community, auth, priv, self.inventory.parent)
            if d.name in self.hosts.affected():
                assert agent.v3_view is not None
                install(self.hosts, agent, agent.v3_view, community)
            await self.agents.add(agent, d.address, d.snmp_port)
        if self.shard is not None:
            return  # a shard serves SNMP only; the lab process has the rest
        if self.shards is not None:
            await self.shards.ready()
            self.watcher = asyncio.ensure_future(self.shards.watch(self._shard_exited))
        await self._start_ssh()
        if self.syslog_target or self.trap_target:
            self.signals = LabSignals(self.faults, self.syslog_target, self.trap_target, community)
            self.signals.start(self.stop_event)
        sock = self.run_dir / SOCKET_NAME
        sock.unlink(missing_ok=True)  # a stale socket: the runner refused to start over a live lab
        self.control = await asyncio.start_unix_server(self._client, path=str(sock))
        os.chmod(sock, 0o600)
        state = {
            "pid": os.getpid(),
            "inventory": str(inv_path.resolve()),
            "source_inventory": str(self.inventory.resolve()),
            "control": str(sock.resolve()),
            "community_file": str(paths["snmp_community"]),
            "devices": [
                {"name": d.name, "address": d.address, "snmp_port": d.snmp_port, "ssh_port": d.ssh_port}
                for d in self.devices
            ],
        }
        (self.run_dir / "lab.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        self.state_written = True

    def shard_argv(self) -> list[str]:
        """The arguments a shard process gets (the same lab, the same start time)."""
        return [
            "--inventory", str(self.inventory), "--run-dir", str(self.run_dir), "--base", self.base,
            "--snmp-port", str(self.snmp_port), "--ssh-port", str(self.ssh_port),
            "--start-time", repr(self.start_time),
        ]  # fmt: skip

    def _shard_exited(self, number: int, code: int) -> None:
        if not self.stop_event.is_set():
            # Some devices went silent: stop loudly rather than run on part of the lab.
            log.error("lab shard %d exited with %s: stopping the lab", number, code)
            self.stop_event.set()

    async def _start_ssh(self) -> None:
        ssh_devices = [d for d in self.devices if d.ssh_port]
        if not ssh_devices:
            self.ssh_status = "no SSH devices"
            return
        try:
            from lab.ssh import start_ssh_servers  # type: ignore[attr-defined, unused-ignore]
        except ImportError as exc:
            self.ssh_status = f"SSH CLIs unavailable (lab.ssh not importable: {exc}); SNMP only"
            log.warning("%s", self.ssh_status)
            return
        try:
            self.ssh_closer = await start_ssh_servers(ssh_devices, self.run_dir)
            self.ssh_status = f"{len(ssh_devices)} SSH CLIs"
        except Exception as exc:  # the SNMP side stays useful when the SSH side fails
            self.ssh_status = f"SSH CLIs failed to start: {type(exc).__name__}: {exc}"
            log.error("%s", self.ssh_status)

    def own_status(self) -> dict[str, Any]:
        """This process's CPU, RSS and SNMP counters."""
        ru = resource.getrusage(resource.RUSAGE_SELF)
        agents = list(self.agents.agents.values())
        return {
            "pid": os.getpid(),
            "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
            "rss_mb": round(ru.ru_maxrss / 1024, 1),
            "agents": len(agents),
            "requests": sum(a.requests for a in agents),
            "varbinds": sum(a.varbinds for a in agents),
            "dropped": sum(a.dropped for a in agents),
        }

    async def status(self) -> dict[str, Any]:
        """Devices, active faults and the CPU the lab used (every process: `procs` has each)."""
        procs = [self.own_status()]
        if self.shards is not None:
            procs += [a for a in await self.shards.broadcast({"op": "status"}) if a.pop("ok", False)]
        return {
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self.started, 1),
            "cpu_s": round(sum(p["cpu_s"] for p in procs), 3),
            "rss_mb": round(sum(p["rss_mb"] for p in procs), 1),
            "ssh": self.ssh_status,
            "requests": sum(p["requests"] for p in procs),
            "varbinds": sum(p["varbinds"] for p in procs),
            "dropped": sum(p["dropped"] for p in procs),
            "procs": procs,
            "devices": [
                {
                    "name": d.name,
                    "vendor": d.vendor,
                    "role": d.role,
                    "address": d.address,
                    "snmp_port": d.snmp_port,
                    "ssh_port": d.ssh_port,
                    "ha_role": d.ha_role,
                    "config_revision": d.config_revision,
                    "faults": d.faults,
                }
                for d in self.devices
            ],
        }

    async def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Answer one control request."""
        op = req.get("op")
        now = time.time()
        try:
            if op == "ping":
                return {"ok": True, "devices": len(self.devices)}
            if op == "status":
                return {"ok": True, **await self.status()}
            if op == "fault":
                params = req.get("params") or {}
                if req.get("kind") in HOST_KINDS:
                    result = self._host_fault(str(req["device"]), str(req["kind"]), params)
                    await self._to_shards(req, now)
                    return {"ok": True, **result}
                result = self.faults.apply(str(req["device"]), str(req["kind"]), now, **params)
                await self._to_shards(req, now)  # before the traps: a trap-driven poll sees the fault
                if self.signals is not None:
                    self.signals.on_fault(str(req["device"]), str(req["kind"]), result)
                return {"ok": True, **result}
            if op == "clear":
                kind = req.get("kind")
                if kind in HOST_KINDS:
                    host_cleared = self._host_clear(str(req["device"]), str(kind))
                    await self._to_shards(req, now)
                    return {"ok": True, "cleared": host_cleared}
                ups = self.signals.before_clear(str(req["device"]), kind) if self.signals else []
                cleared = self.faults.clear(str(req["device"]), str(kind) if kind else None, now)
                if not kind:
                    cleared += self._host_clear(str(req["device"]), None)
                await self._to_shards(req, now)
                if self.signals is not None:
                    self.signals.on_clear(str(req["device"]), cleared, ups)
                return {"ok": True, "cleared": cleared}
            if op == "hosts":
                return {"ok": True, "hosts": self.hosts.status() if self.hosts else []}
            if op in ("syslog_burst", "signals"):
                if self.signals is None:
                    return {"ok": False, "error": "the lab sends no syslog or traps (--syslog/--traps)"}
                return await self.signals.request(req)
            if op == "stop":
                self.stop_event.set()
                return {"ok": True}
        except (FaultError, HostFaultError, KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def _to_shards(self, req: dict[str, Any], now: float) -> None:
        """Apply a fault or clear this process applied to every shard too, at the same `now`."""
        if self.shards is None:
            return
        for answer in await self.shards.broadcast({**req, "now": now}):
            if not answer.get("ok"):
                log.error("a lab shard did not apply %s: %s", req.get("op"), answer.get("error"))

    async def handle_shard(self, req: dict[str, Any]) -> dict[str, Any]:
        """A shard's requests from the lab process: faults and clears at the lab's `now`, status, stop."""
        op = req.get("op")
        now = float(req.get("now") or time.time())
        try:
            if op == "status":
                return {"ok": True, **self.own_status()}
            if op == "stop":
                self.stop_event.set()
                return {"ok": True}
            device, kind = str(req["device"]), req.get("kind")
            if op == "fault" and kind in HOST_KINDS:
                self._host_fault(device, str(kind), req.get("params") or {})
            elif op == "fault":
                self.faults.apply(device, str(kind), now, **(req.get("params") or {}))
            elif op == "clear" and kind in HOST_KINDS:
                self._host_clear(device, str(kind))
            elif op == "clear":
                self.faults.clear(device, str(kind) if kind else None, now)
                if not kind:
                    self._host_clear(device, None)
            else:
                return {"ok": False, "error": f"unknown op {op!r}"}
        except (FaultError, HostFaultError, KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True}

    def _host_fault(self, device: str, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.hosts is None:
            raise HostFaultError("the lab has no hosts")
        result = {"device": device, "kind": kind, **self.hosts.apply(device, kind, params)}
        self._refresh_hosts()
        return result

    def _host_clear(self, device: str, kind: str | None) -> list[str]:
        if self.hosts is None or device not in self.hosts.switches:
            return []
        cleared = self.hosts.clear(device, kind)
        self._refresh_hosts()
        return cleared

    def _refresh_hosts(self) -> None:
        """Rebuild the views of the devices that serve host tables (a fault moved or faked a host)."""
        assert self.hosts is not None
        by_name = {d.name: d for d in self.devices}
        for agent in self.agents.agents.values():
            if agent.name in self.hosts.affected():
                install(self.hosts, agent, build_view(by_name[agent.name]), self.community)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    answer = await self.handle(req) if isinstance(req, dict) else {"ok": False}
                except ValueError:
                    answer = {"ok": False, "error": "bad JSON"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Stop every server and remove the control socket."""
        if self.signals is not None:
            await self.signals.close()
        if self.watcher is not None:
            self.watcher.cancel()
        if self.shards is not None:
            await self.shards.close()
        self.agents.close()
        if self.ssh_closer is not None:
            with contextlib.suppress(Exception):
                await self.ssh_closer()
        if self.control is not None:
            self.control.close()
            (self.run_dir / SOCKET_NAME).unlink(missing_ok=True)
        if self.state_written:
            (self.run_dir / "lab.json").unlink(missing_ok=True)


async def serve(args: argparse.Namespace) -> None:
    """Run the lab until SIGTERM/SIGINT or a `stop` request (a shard: until its stdin closes)."""
    shard = None
    if args.shard:
        k, _, n = args.shard.partition("/")
        shard = (int(k), int(n))
    server = LabServer(
        Path(args.inventory),
        Path(args.run_dir),
        args.base,
        args.snmp_port,
        args.ssh_port,
        args.syslog,
        args.traps,
        procs=args.procs,
        shard=shard,
        start_time=args.start_time,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop_event.set)
    if shard is not None:
        try:
            await server.start()
            print(f"READY shard {shard[0]}/{shard[1]}: {len(server.agents.agents)} agents", flush=True)
            requests = asyncio.ensure_future(serve_requests(server.handle_shard, server.stop_event))
            await server.stop_event.wait()
            requests.cancel()
        finally:
            await server.close()
        return
    try:
        await server.start()
        print(f"READY {len(server.devices)} devices; {server.ssh_status}", flush=True)
        print(f"derived inventory: {(server.run_dir / 'inventory.yaml').resolve()}", flush=True)
        await server.stop_event.wait()
    finally:
        await server.close()
    print("STOPPED", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry of the lab process."""
    p = argparse.ArgumentParser(prog="python -m lab.server", description=__doc__)
    p.add_argument("--inventory", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--base", default="127.77.0.0")
    p.add_argument("--snmp-port", type=int, default=16161)
    p.add_argument("--ssh-port", type=int, default=2222, help="0: no SSH CLIs")
    p.add_argument(
        "--syslog", default=None, help="HOST:PORT: the devices send syslog there (lab/syslog_gen.py)"
    )
    p.add_argument("--traps", default=None, help="HOST:PORT: the devices send SNMPv2c traps there on faults")
    p.add_argument("--procs", type=int, default=1, help="processes serving the SNMP agents (lab/shards.py)")
    p.add_argument("--shard", default=None, help=argparse.SUPPRESS)  # K/N: started by --procs
    p.add_argument("--start-time", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

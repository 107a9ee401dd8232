"""Test support: network namespaces `gvt5-*` on a bridge `gv5<pid>br` (10.251.0.0/24), veth uplinks, snmpd.

Holds no tests; test_icmp*.py and test_redundancy*.py import it.
Everything carries this process's PID and is removed by `close()` (processes killed by their PID).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.procs import stop

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
_PID = os.getpid() % 100000
BRIDGE = f"gv5{_PID}br"
MGMT_GW = "10.251.0.1"


def sh(*args: str, check: bool = True) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: rc={proc.returncode}: {proc.stderr.strip()[:300]}")
    return proc.stdout


class NetLab:
    """Namespaces on a management bridge; uplinks are veth pairs between namespaces."""

    def __init__(self) -> None:
        self.namespaces: dict[str, str] = {}  # short name -> namespace
        self.addresses: dict[str, str] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir = Path(tempfile.mkdtemp(prefix=f"gvt5-{_PID}-"))
        try:
            sh("ip", "link", "add", BRIDGE, "type", "bridge")
            sh("ip", "addr", "add", f"{MGMT_GW}/24", "dev", BRIDGE)
            sh("ip", "link", "set", BRIDGE, "up")
        except BaseException:
            self.close()
            raise

    def add_ns(self, name: str) -> str:
        """A namespace with a management address on the bridge; returns that address."""
        ns = f"gvt5-{_PID}-{name}"
        idx = len(self.namespaces) + 10
        addr = f"10.251.0.{idx}"
        host_if = f"gv5{_PID}m{idx}"
        sh("ip", "netns", "add", ns)
        self.namespaces[name] = ns
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "mgmt0", "netns", ns)
        sh("ip", "link", "set", host_if, "master", BRIDGE, "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "mgmt0")
        sh("ip", "-n", ns, "link", "set", "mgmt0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.addresses[name] = addr
        return addr

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair between two namespaces (an uplink a -> b)."""
        sh(
            "ip",
            "-n",
            self.namespaces[a],
            "link",
            "add",
            a_if,
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            self.namespaces[b],
        )
        sh("ip", "-n", self.namespaces[a], "link", "set", a_if, "up")
        sh("ip", "-n", self.namespaces[b], "link", "set", b_if, "up")

    def set_link(self, name: str, ifname: str, up: bool) -> None:
        """`ip link set IF up|down` inside a namespace: a real link failure (the veth peer loses carrier)."""
        sh("ip", "-n", self.namespaces[name], "link", "set", ifname, "up" if up else "down")

    def nft(self, name: str, ruleset: str) -> None:
        """Load an nftables ruleset inside a namespace."""
        proc = subprocess.run(
            ["ip", "netns", "exec", self.namespaces[name], "nft", "-f", "-"],
            input=ruleset,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"nft: {proc.stderr.strip()[:300]}")

    def nft_counters(self, name: str, table: str) -> list[int]:
        """Packet counts of the `counter` statements of a table, in rule order."""
        out = sh("ip", "netns", "exec", self.namespaces[name], "nft", "list", "table", table)
        return [int(x) for x in re.findall(r"counter packets (\d+)", out)]

    def snmpd(self, name: str, community: str) -> None:
        """A real net-snmp agent on the namespace's management address."""
        d = self._dir / name
        (d / "persist").mkdir(parents=True)
        conf = d / "snmpd.conf"
        conf.write_text(
            f"agentAddress udp:{self.addresses[name]}:161\nrocommunity {community} 10.251.0.0/24\n"
        )
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(d / "persist"), "MIBS": ""}
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.namespaces[name],
                SNMPD,
                "-f",
                "-C",
                "-c",
                str(conf),
                "-Lf",
                str(d / "snmpd.log"),
                "-p",
                str(d / "pid"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)
        end = time.monotonic() + 10
        while time.monotonic() < end:
            rc = subprocess.run(
                [
                    "snmpget",
                    "-v2c",
                    "-c",
                    community,
                    "-t",
                    "0.3",
                    "-r",
                    "0",
                    "-On",
                    f"{self.addresses[name]}:161",
                    "1.3.6.1.2.1.1.3.0",
                ],
                capture_output=True,
                env={**os.environ, "MIBS": ""},
                timeout=10,
            ).returncode
            if rc == 0:
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"snmpd in {name} did not answer")

    def close(self) -> None:
        """Kill our processes by PID, delete our namespaces, bridge and files."""
        for proc in self._procs:
            stop(proc, 5)
        for ns in self.namespaces.values():
            for pid in sh("ip", "netns", "pids", ns, check=False).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", BRIDGE, check=False)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

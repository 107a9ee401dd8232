"""The guided tour of `make demo`: five incidents an extranet really has, injected into the running lab.

Each step names the faults it injects (chosen from the lab's derived inventory, so any inventory with
the same roles works), what govnet should do, and where in the console to look. `govnet lab tour`
lists the steps; `govnet lab tour STEP` runs one; `govnet lab tour clear` undoes every fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inventory.model import Inventory
from inventory.topology import Topology
from lab import control


@dataclass(frozen=True)
class Step:
    """One tour step."""

    key: str
    title: str
    expect: str  # what govnet does about it
    look: str  # where in the console (a path)


STEPS = (
    Step(
        "uplink",
        "汇聚点丢失一条上联 (uplink lost at an aggregation point)",
        "一次 IV 级告警 UplinkRedundancyLost（另一条上联仍在，不是断网）；设备发出 linkDown trap 和接口日志",
        "/incidents",
    ),
    Step(
        "core",
        "核心交换机宕机 (core switch down)",
        "只有一条 II 级 CoreDeviceDown 告警；只挂在它下面的设备列为受影响（不可达），"
        "双上联的汇聚点只算降级，都不单独告警",
        "/incidents 与 /topology",
    ),
    Step(
        "failover",
        "防火墙主备切换 (firewall failover)",
        "新主用发出 VRRP trap；HAFailover / HAGroupFailedOver 告警，设备页显示新角色",
        "/incidents 与 /devices/{device}",
    ),
    Step(
        "bruteforce",
        "防火墙暴力破解登录 (brute-force logins on the firewall)",
        "防火墙发出 30 条登录失败日志（同一外网地址），随后一次成功登录：全部进入防篡改安全日志",
        "/logs?device={device}&event_type=admin_login",
    ),
    Step(
        "config",
        "配置变更 (a config change)",
        "设备发出配置变更日志；下一次 SSH 配置备份保存新版本，备份页显示差异；"
        "ConfigChangedOutsideMaintenance 告警",
        "/backups/{device}",
    ),
)
STEP_KEYS = tuple(s.key for s in STEPS)


def _inventory(run_dir: Path) -> Inventory:
    raw = yaml.safe_load((run_dir / "inventory.yaml").read_text(encoding="utf-8"))
    return Inventory.model_validate(raw)


def _first(inv: Inventory, role: str, *, ssh: bool = False) -> str:
    for d in inv.devices:
        if d.role.value == role and (not ssh or inv.ssh_of(d) is not None):
            return d.name
    raise LookupError(f"the lab inventory has no {role}{' with an SSH CLI' if ssh else ''}")


def plan(run_dir: Path, key: str) -> tuple[Step, str, list[dict[str, Any]]]:
    """The step, its main device and the control requests it sends to the lab."""
    inv = _inventory(run_dir)
    step = STEPS[STEP_KEYS.index(key)]
    if key == "uplink":
        for link in inv.links:
            if link.redundancy_group and inv.device(link.a.device).role.value == "aggregation_switch":
                dev, iface = link.a.device, link.a.interface
                return step, dev, [_fault(dev, "link_down", interface=iface)]
        raise LookupError("the lab inventory has no aggregation uplink in a redundancy group")
    if key == "core":
        core = _first(inv, "core_switch")
        # The lab's agents all sit on loopback: what a dead core cuts off must be made silent too.
        behind = sorted(Topology.from_inventory(inv).assess(down=[core]).unreachable())
        return step, core, [_fault(core, "dead")] + [_fault(d, "dead") for d in behind]
    if key == "failover":
        fw = next((g.members[0].device for g in inv.ha_groups if g.kind == "firewall"), None)
        if fw is None:
            raise LookupError("the lab inventory has no firewall HA group")
        return step, fw, [_fault(fw, "ha_failover")]
    if key == "bruteforce":
        fw = _first(inv, "firewall")
        burst = {
            "op": "syslog_burst",
            "device": fw,
            "kind": "login_failed",
            "count": 30,
            "src": "203.0.113.66",
            "user": "admin",
        }
        ok = {
            "op": "syslog_burst",
            "device": fw,
            "kind": "login",
            "count": 1,
            "src": "203.0.113.66",
            "user": "admin",
        }
        return step, fw, [burst, ok]
    agg = next((d.name for d in inv.devices if d.role.value == "aggregation_switch" and inv.ssh_of(d)), None)
    dev = agg or _first(inv, "core_switch", ssh=True)
    return (
        step,
        dev,
        [_fault(dev, "config_change", line="acl number 3001 rule 5 permit ip source 10.30.0.0 0.0.255.255")],
    )


def _fault(device: str, kind: str, **params: Any) -> dict[str, Any]:
    return {"op": "fault", "device": device, "kind": kind, "params": params}


def run_step(run_dir: Path, key: str) -> tuple[Step, str, list[dict[str, Any]]]:
    """Send a step's requests to the running lab; returns the step, its device and the answers."""
    step, device, requests = plan(run_dir, key)
    answers = [control.call(run_dir, r, timeout=60.0) for r in requests]
    return step, device, answers


def clear_all(run_dir: Path) -> list[str]:
    """Clear every fault of every lab device; returns `device: kinds` for what was cleared."""
    status = control.call(run_dir, {"op": "status"})
    out = []
    for d in status["devices"]:
        if d["faults"]:
            res = control.call(run_dir, {"op": "clear", "device": d["name"], "kind": None})
            out.append(f"{d['name']}: {', '.join(res.get('cleared', []))}")
    return out


def console_url(run_dir: Path) -> str:
    """The demo's console base URL (written by govnet.demo next to the lab run dir), or ''."""
    try:
        return str(json.loads((run_dir.parent / "demo.json").read_text())["console"])
    except (OSError, ValueError, KeyError):
        return ""


def menu(run_dir: Path, govnet: str = "govnet") -> list[str]:
    """The tour menu, one line per step (commands to paste)."""
    lines = []
    for i, s in enumerate(STEPS, 1):
        lines.append(f"  {i}. {s.title}")
        lines.append(f"     {govnet} lab tour {s.key} --run-dir {run_dir}")
    lines.append(f"  复原 (clear every fault): {govnet} lab tour clear --run-dir {run_dir}")
    return lines

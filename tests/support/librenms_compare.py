"""Compare govnet's evaluation of a recording with LibreNMS's expected JSON, value by value.

Used by the generic recording test and runnable for the per-recording table:
`.venv/bin/python tests/support/librenms_compare.py` prints expected / present / equal / not supported.
Every expected sensor of the compared classes and every processor and mempool must be present in
govnet with the same value (after unit conversion) or listed in docs/metrics.md under "Not supported".
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collectors.snmp.evaluate import Evaluation, evaluate  # noqa: E402
from collectors.snmp.profile import Profile, default_profiles, probe_oids, select_profile  # noqa: E402
from collectors.snmp.snmprec import load_snmprec  # noqa: E402

METRICS_DOC = ROOT / "docs" / "metrics.md"

# LibreNMS class -> (govnet metrics that may carry it, factor LibreNMS unit -> govnet unit).
CLASSES: dict[str, tuple[tuple[str, ...], float]] = {
    "temperature": (
        (
            "govnet_temperature_celsius",
            "govnet_optic_temperature_celsius",
            "govnet_ups_battery_temperature_celsius",
            "govnet_ups_ambient_temperature_celsius",
        ),
        1.0,
    ),
    "dbm": (("govnet_optic_rx_power_dbm", "govnet_optic_tx_power_dbm"), 1.0),
    "voltage": (
        (
            "govnet_voltage_volts",
            "govnet_optic_voltage_volts",
            "govnet_ups_input_voltage_volts",
            "govnet_ups_output_voltage_volts",
            "govnet_ups_bypass_voltage_volts",
            "govnet_ups_battery_voltage_volts",
        ),
        1.0,
    ),
    "current": (
        (
            "govnet_current_amperes",
            "govnet_optic_bias_amperes",
            "govnet_ups_input_current_amperes",
            "govnet_ups_output_current_amperes",
            "govnet_ups_bypass_current_amperes",
            "govnet_ups_battery_current_amperes",
        ),
        1.0,
    ),
    "power": (
        (
            "govnet_power_watts",
            "govnet_power_average_watts",
            "govnet_poe_power_budget_watts",
            "govnet_poe_power_consumed_watts",
            "govnet_ups_input_power_watts",
            "govnet_ups_output_power_watts",
            "govnet_ups_bypass_power_watts",
        ),
        1.0,
    ),
    "fanspeed": (("govnet_fan_speed_rpm",), 1.0),
}


ABSOLUTE_ZERO = -273.15
IMPOSSIBLE = (
    "a temperature below absolute zero is an agent's sentinel (iosxe_c9200l SFP: -866597556), not a reading"
)


@dataclass(frozen=True)
class Expected:
    """One value LibreNMS expects, in govnet's unit."""

    what: str  # LibreNMS class, or cpu / memory
    kind: str  # LibreNMS sensor_type / processor_type / mempool_type
    oid: str
    value: float
    metrics: tuple[str, ...]
    descr: str

    def tolerance(self) -> float:
        if self.what in ("cpu", "memory"):
            return 0.011  # LibreNMS stores whole percent
        if self.what == "dbm":
            return 0.05
        return max(0.5 if self.what == "temperature" else 0.0, 0.01 * abs(self.value), 1e-6)


@dataclass
class Result:
    """The outcome for one recording."""

    name: str
    expected: list[Expected] = field(default_factory=list)
    present: list[Expected] = field(default_factory=list)
    equal: list[Expected] = field(default_factory=list)
    unsupported: list[tuple[Expected, str]] = field(default_factory=list)
    differ: list[tuple[Expected, str]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    missing: list[Expected] = field(default_factory=list)


def section(data: dict[str, Any], module: str, key: str) -> list[dict[str, Any]]:
    """The poller's (else discovery's) rows of one LibreNMS module."""
    mod = data.get(module)
    if not isinstance(mod, dict):
        return []
    poller = mod.get("poller")
    if isinstance(poller, dict) and key in poller:
        return list(poller[key])
    disc = mod.get("discovery")
    return list(disc.get(key, [])) if isinstance(disc, dict) else []


def expectations(data: dict[str, Any]) -> list[Expected]:
    """Every value of the compared classes in a LibreNMS test JSON."""
    out = []
    for p in section(data, "processors", "processors"):
        if p.get("processor_usage") is not None:
            oid = str(p["processor_oid"]).lstrip(".")
            value = float(p["processor_usage"]) / 100
            out.append(
                Expected(
                    "cpu",
                    str(p.get("processor_type")),
                    oid,
                    value,
                    ("govnet_cpu_ratio", "govnet_cpu_core_ratio"),
                    str(p.get("processor_descr")),
                )
            )
    for m in section(data, "mempools", "mempools"):
        pool_oid = m.get("mempool_perc_oid") or m.get("mempool_used_oid")
        if pool_oid and m.get("mempool_perc") is not None:
            out.append(
                Expected(
                    "memory",
                    str(m.get("mempool_type")),
                    str(pool_oid).lstrip("."),
                    float(m["mempool_perc"]) / 100,
                    ("govnet_memory_used_ratio",),
                    str(m.get("mempool_descr")),
                )
            )
    for link in section(data, "discovery-protocols", "links"):
        # A neighbour: present when govnet sees one with this protocol on this local port, equal when
        # its port (LibreNMS appends " (chassis mac)") and name agree; value 1 stands for "seen".
        port = re.sub(r"\s*\([^()]*\)$", "", str(link.get("remote_port") or ""))
        descr = f"{link.get('ifName')} -> {link.get('remote_hostname')} {port}"
        out.append(Expected("neighbor", str(link.get("protocol")), "", 1.0, ("govnet_neighbor_info",), descr))
    for s in section(data, "sensors", "sensors"):
        spec = CLASSES.get(str(s.get("sensor_class")))
        if spec and s.get("sensor_current") is not None:
            metrics, factor = spec
            out.append(
                Expected(
                    str(s["sensor_class"]),
                    str(s.get("sensor_type")),
                    str(s["sensor_oid"]).lstrip("."),
                    float(s["sensor_current"]) * factor,
                    metrics,
                    str(s.get("sensor_descr")),
                )
            )
    return out


_CELL = re.compile(r"^`?(.*?)`?$")


@dataclass(frozen=True)
class DocRow:
    """One row of a docs/metrics.md exception table: which expectations it covers, and why."""

    what: str
    kind: str
    prefix: str
    descr: re.Pattern[str]
    reason: str

    def covers(self, e: Expected) -> bool:
        return (
            self.what == e.what
            and self.kind in (e.kind, "*")
            and (e.oid == self.prefix or e.oid.startswith(self.prefix + "."))
            and self.descr.search(e.descr) is not None
        )


def doc_rows(section_title: str, doc: Path = METRICS_DOC) -> list[DocRow]:
    """Rows `| class | LibreNMS type | OID prefix | description regex | reason |` under a `## ` title."""
    rows, inside = [], False
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line[3:].strip().lower() == section_title.lower()
            continue
        if not inside or not line.startswith("|") or line.startswith("|---"):
            continue
        # Cells split on unescaped pipes; `\|` inside a regex cell is a literal alternation bar.
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        if len(cells) != 5 or cells[0] == "class":
            continue
        what, kind, prefix, descr, reason = (m.group(1) if (m := _CELL.match(c)) else c for c in cells)
        if reason and re.fullmatch(r"[0-9.]+", prefix):
            rows.append(DocRow(what, kind, prefix.rstrip("."), re.compile(descr or "."), reason))
    return rows


def not_supported(doc: Path = METRICS_DOC) -> list[DocRow]:
    """The "Not supported" rows: expectations govnet leaves absent, with the reason."""
    return doc_rows("Not supported", doc)


def differs(doc: Path = METRICS_DOC) -> list[DocRow]:
    """The "Differs from LibreNMS" rows: where govnet's value is right and LibreNMS's is not."""
    return doc_rows("Differs from LibreNMS", doc)


# Columns that carry the same sensor under the same entPhysicalIndex in two MIBs: Cisco agents that
# implement both ENTITY-SENSOR-MIB and CISCO-ENTITY-SENSOR-MIB (IR1101) are read once by govnet and
# twice by LibreNMS.
_MIRRORS = (("1.3.6.1.4.1.9.9.91.1.1.1.1.4", "1.3.6.1.2.1.99.1.1.1.4"),)


def _equivalents(profile: Profile, metric: str, source: str) -> set[str]:
    """OIDs that measure what `source` measured: the same row in each alternative column of the metric."""
    firsts = {alt[0].oid for m in profile.metrics if m.name == metric for alt in m.alternatives}
    for pair in _MIRRORS:
        if any(source.startswith(col + ".") for col in pair):
            firsts.update(pair)
    out = {source}
    for oid in firsts:
        if source.startswith(oid + "."):
            index = source[len(oid) + 1 :]
            out.update(f"{o}.{index}" for o in firsts)
    return out


def run(path: Path) -> tuple[Profile, Evaluation]:
    """Evaluate one recording with the profile its sysObjectID selects."""
    walk = load_snmprec(path)
    soid = walk.get("1.3.6.1.2.1.1.2.0")
    profiles = default_profiles()
    answered = {o for o in probe_oids(profiles) if o in walk}  # what the discovery GET would return
    profile = select_profile(profiles, soid if isinstance(soid, str) else None, "generic", "server", answered)
    return profile, evaluate(profile, walk)


def compare(
    path: Path, data: dict[str, Any], unsupported_rows: list[DocRow], differ_rows: list[DocRow]
) -> Result:
    """The per-recording comparison."""
    profile, ev = run(path)
    by_oid: dict[tuple[str, str], float] = {}
    for s in ev.samples:
        if s.source:
            for oid in _equivalents(profile, s.metric, s.source):
                by_oid.setdefault((s.metric, oid), s.value)
    res = Result(path.stem)
    neighbors = [dict(s.labels) for s in ev.samples if s.metric == "govnet_neighbor_info"]
    for e in expectations(data):
        res.expected.append(e)
        if e.what == "neighbor":
            _neighbor(e, neighbors, res)
            continue
        got = [by_oid[(m, e.oid)] for m in e.metrics if (m, e.oid) in by_oid]
        if e.what == "temperature" and e.value < ABSOLUTE_ZERO:
            # LibreNMS stored an agent's sentinel as a temperature: govnet must leave it absent.
            if got:
                res.wrong.append(f"{e.what} {e.oid} ({e.descr}): govnet {got[0]:.6g}, below absolute zero")
            else:
                res.unsupported.append((e, IMPOSSIBLE))
            continue
        if got:
            res.present.append(e)
            if abs(got[0] - e.value) <= e.tolerance() + 1e-9:
                res.equal.append(e)
                continue
            why = next((r.reason for r in differ_rows if r.covers(e)), None)
            if why:
                res.differ.append((e, why))
            else:
                res.wrong.append(
                    f"{e.what} {e.oid} ({e.descr}): govnet {got[0]:.6g} vs LibreNMS {e.value:.6g}"
                )
            continue
        reason = next((r.reason for r in unsupported_rows if r.covers(e)), None)
        if reason:
            res.unsupported.append((e, reason))
        else:
            res.missing.append(e)
    return res


def _neighbor(e: Expected, seen: list[dict[str, str]], res: Result) -> None:
    local, _, rest = e.descr.partition(" -> ")
    name, _, port = rest.rpartition(" ")
    mine = [n for n in seen if n.get("ifname") == local and n.get("protocol") == e.kind]
    if not mine:
        res.missing.append(e)
        return
    res.present.append(e)
    # A neighbour without a system name (LibreNMS shows its description instead) is absent, not wrong.
    if any(n.get("remote_port") == port and n.get("remote_sysname") in (name, "") for n in mine):
        res.equal.append(e)
    else:
        got = [(n.get("remote_sysname"), n.get("remote_port")) for n in mine]
        res.wrong.append(f"neighbor {e.descr}: govnet {got}")


def main() -> None:
    """Print the per-recording table."""
    snmprec = ROOT / "tests" / "data" / "snmprec"
    rows, drows = not_supported(), differs()
    print(
        "| recording | expected | present | equal | differs (documented) | not supported | wrong | missing |"
    )
    print("|---|---|---|---|---|---|---|---|")
    totals = [0] * 7
    for path in sorted(snmprec.glob("*.snmprec")):
        exp = snmprec / "librenms-expected" / f"{path.stem}.json"
        if not exp.exists():
            continue
        r = compare(path, json.loads(exp.read_text(encoding="utf-8")), rows, drows)
        nums = [
            len(r.expected),
            len(r.present),
            len(r.equal),
            len(r.differ),
            len(r.unsupported),
            len(r.wrong),
            len(r.missing),
        ]
        totals = [a + b for a, b in zip(totals, nums, strict=True)]
        print(f"| {r.name} | " + " | ".join(map(str, nums)) + " |")
        for w in r.wrong:
            print(f"  WRONG {w}", file=sys.stderr)
        for e in r.missing:
            print(f"  MISSING {r.name} {e.what} {e.kind} {e.oid} {e.descr} = {e.value}", file=sys.stderr)
    print("| **total** | " + " | ".join(map(str, totals)) + " |")


if __name__ == "__main__":
    main()

"""Transceivers and sensors of synthetic lab devices, and the `optic_degrade` fault.

Every linked interface carries a pluggable optic (the lab's links are fibre uplinks and downlinks):
served in the vendor's own MIB as the SNMP profiles read it (Huawei hwOpticalModuleInfoTable in
microwatts like an S5720, H3C HH3C-TRANSCEIVER-INFO-MIB in 0.01 dBm, Cisco CISCO-ENTITY-SENSOR-MIB
sensors inside the port entity), with the device's thresholds. Devices also get voltage, current,
power and fan readings where their vendor's MIB has them. Values are deterministic per device and
port, and a function of time only where a fault makes them move.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from lab.snmp import ber
from lab.snmp.ber import Oid
from lab.snmp.view import Value
from lab.state import LabDevice, LabInterface

# Receive thresholds every lab transceiver reports (dBm): a 1000BASE-LX-like receiver.
RX_LOW_ALARM, RX_LOW_WARN, RX_HIGH_WARN, RX_HIGH_ALARM = -20.0, -18.0, 0.0, 2.0
DARK_DBM = -40.0  # what a receiver without light reads
DEGRADE_STEP_DB, DEGRADE_EVERY_S = 2.0, 10.0

HW_OPT = (1, 3, 6, 1, 4, 1, 2011, 5, 25, 31, 1, 1, 3, 1)  # hwOpticalModuleInfoEntry
HW_STATE = (1, 3, 6, 1, 4, 1, 2011, 5, 25, 31, 1, 1, 1, 1)  # hwEntityStateEntry
HW_PWR = (1, 3, 6, 1, 4, 1, 2011, 5, 25, 31, 1, 1, 18, 1)  # hwPwrStatusEntry
HW_ENERGY = (1, 3, 6, 1, 4, 1, 2011, 6, 157, 1)
H3C_OPT = (1, 3, 6, 1, 4, 1, 25506, 2, 70, 1, 1, 1)  # hh3cTransceiverInfoEntry
CISCO_SENSOR = (1, 3, 6, 1, 4, 1, 9, 9, 91, 1, 1, 1, 1)  # entSensorValueEntry
ENT = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)  # entPhysicalEntry
PETH = (1, 3, 6, 1, 2, 1, 105, 1, 3, 1, 1)  # pethMainPseEntry
HUAWEI_PORT_ENTITY, CISCO_PORT_ENTITY = 67_500_000, 5_000


@dataclass(frozen=True)
class Optic:
    """One transceiver's resting readings (dBm, degrees, volts, amperes)."""

    rx_dbm: float
    tx_dbm: float
    temp_c: float
    volts: float
    bias_a: float
    serial: str


def optic_of(d: LabDevice, i: LabInterface) -> Optic:
    """Deterministic resting values of the optic in interface `i` of device `d`."""
    h = zlib.crc32(f"{d.name}/{i.name}".encode())
    return Optic(
        rx_dbm=-3.0 - (h % 400) / 100.0,  # -3.00 .. -6.99 dBm
        tx_dbm=-2.0 - (h >> 9) % 300 / 100.0,
        temp_c=34.0 + (h >> 17) % 12,
        volts=3.25 + (h >> 3) % 10 / 100.0,
        bias_a=0.005 + (h >> 5) % 30 / 10000.0,
        serial=f"LAB{h % 10**9:09d}",
    )


def optic_ports(d: LabDevice) -> list[LabInterface]:
    """The interfaces that carry an optic: every linked, non-management interface."""
    return [i for i in d.interfaces if i.peer and not i.management]


def rx_dbm(d: LabDevice, i: LabInterface, now: float) -> float:
    """Receive power now: dark when the link is down, lowered step by step under `optic_degrade`."""
    if not i.oper_up:
        return DARK_DBM
    value = optic_of(d, i).rx_dbm
    fault = d.faults.get("optic_degrade")
    if fault and fault.get("interface") == i.name:
        since = float(fault["since"])  # type: ignore[arg-type]
        every = float(fault.get("every_s") or DEGRADE_EVERY_S)  # type: ignore[arg-type]
        step = float(fault.get("step_db") or DEGRADE_STEP_DB)  # type: ignore[arg-type]
        value -= step * (1 + max(0, int((now - since) // every)))
    return max(DARK_DBM, value)


def _uw(dbm: float) -> int:
    """dBm as whole microwatts (how S5720-class VRP reports hwEntityOpticalRx/TxPower)."""
    return 0 if dbm <= DARK_DBM else round(1000.0 * 10 ** (dbm / 10.0))


def _rx_uw(arg: tuple[LabDevice, LabInterface], now: float) -> bytes:
    return ber.enc_int(_uw(rx_dbm(arg[0], arg[1], now)))


def _rx_centi(arg: tuple[LabDevice, LabInterface], now: float) -> bytes:
    return ber.enc_int(round(rx_dbm(arg[0], arg[1], now) * 100))


def _rx_deci(arg: tuple[LabDevice, LabInterface], now: float) -> bytes:
    return ber.enc_int(round(rx_dbm(arg[0], arg[1], now) * 10))


def _dyn(fn: Callable[[float], bytes]) -> Value:
    return fn


def _huawei(d: LabDevice, chassis: int) -> list[tuple[Oid, Value]]:
    rows: list[tuple[Oid, Value]] = []
    for i in optic_ports(d):
        x = HUAWEI_PORT_ENTITY + i.index
        o = optic_of(d, i)
        rows += _port_entity(x, chassis, i.name, o.serial, "SFP-GE-LX-SM1310")
        rows += [
            ((*HW_OPT, 4, x), ber.octets(o.serial)),
            ((*HW_OPT, 5, x), ber.enc_int(round(o.temp_c))),
            ((*HW_OPT, 6, x), ber.enc_int(round(o.volts * 1000))),
            ((*HW_OPT, 7, x), ber.enc_int(round(o.bias_a * 1_000_000))),
            ((*HW_OPT, 8, x), (_rx_uw, (d, i))),
            ((*HW_OPT, 9, x), ber.enc_int(_uw(o.tx_dbm))),
            ((*HW_OPT, 13, x), ber.enc_int(round(RX_LOW_ALARM * 100))),
            ((*HW_OPT, 14, x), ber.enc_int(round(RX_HIGH_ALARM * 100))),
            ((*HW_OPT, 20, x), ber.enc_int(round(RX_LOW_WARN * 100))),
            ((*HW_OPT, 21, x), ber.enc_int(round(RX_HIGH_WARN * 100))),
        ]
    board = 67108873  # the MPU entity of lab/data/huawei.yaml
    rows += [
        ((*HW_STATE, 13, board), ber.enc_int(12000)),  # board voltage, mV
        ((*HW_PWR, 6, 0, 1), ber.enc_int(1)),
        ((*HW_PWR, 7, 0, 1), _dyn(lambda now: ber.enc_int(round(1800 + 100 * math.sin(now / 300.0))))),
        ((*HW_PWR, 8, 0, 1), ber.enc_int(53456)),
        ((*HW_ENERGY, 3, 0), ber.enc_int(92000)),
        ((*HW_ENERGY, 6, 0), _dyn(lambda now: ber.enc_int(round(95000 + 3000 * math.sin(now / 120.0))))),
    ]
    return rows


def _h3c(d: LabDevice) -> list[tuple[Oid, Value]]:
    rows: list[tuple[Oid, Value]] = []
    for i in optic_ports(d):
        x = i.index
        o = optic_of(d, i)
        rows += [
            ((*H3C_OPT, 2, x), ber.octets("1000_BASE_LX_SFP")),
            ((*H3C_OPT, 4, x), ber.octets("H3C")),
            ((*H3C_OPT, 5, x), ber.octets(o.serial)),
            ((*H3C_OPT, 8, x), ber.enc_int(1)),
            ((*H3C_OPT, 9, x), ber.enc_int(round(o.tx_dbm * 100))),
            ((*H3C_OPT, 12, x), (_rx_centi, (d, i))),
            ((*H3C_OPT, 13, x), ber.enc_int(round(RX_HIGH_ALARM * 100))),
            ((*H3C_OPT, 14, x), ber.enc_int(round(RX_LOW_ALARM * 100))),
            ((*H3C_OPT, 15, x), ber.enc_int(round(o.temp_c))),
            ((*H3C_OPT, 16, x), ber.enc_int(round(o.volts * 100))),
            ((*H3C_OPT, 17, x), ber.enc_int(round(o.bias_a * 100_000))),
        ]
    return rows


def _cisco_sensor(x: int, kind: int, scale: int, precision: int, value: Value) -> list[tuple[Oid, Value]]:
    return [
        ((*CISCO_SENSOR, 1, x), ber.enc_int(kind)),
        ((*CISCO_SENSOR, 2, x), ber.enc_int(scale)),
        ((*CISCO_SENSOR, 3, x), ber.enc_int(precision)),
        ((*CISCO_SENSOR, 4, x), value),
        ((*CISCO_SENSOR, 5, x), ber.enc_int(1)),
    ]


def _sensor_entity(x: int, parent: int, name: str) -> list[tuple[Oid, Value]]:
    return [
        ((*ENT, 2, x), ber.octets(name)),
        ((*ENT, 4, x), ber.enc_int(parent)),
        ((*ENT, 5, x), ber.enc_int(8)),
        ((*ENT, 7, x), ber.octets(name)),
    ]


def _cisco(d: LabDevice, chassis: int) -> list[tuple[Oid, Value]]:
    rows: list[tuple[Oid, Value]] = []
    for k, i in enumerate(optic_ports(d)):
        x = CISCO_PORT_ENTITY + 10 * k
        o = optic_of(d, i)
        rows += _port_entity(x, chassis, i.name, o.serial, "GLC-LH-SMD")
        sensors: list[tuple[str, int, int, int, Value]] = [
            ("Module Temperature", 8, 9, 1, ber.enc_int(round(o.temp_c * 10))),
            ("Supply Voltage", 4, 9, 2, ber.enc_int(round(o.volts * 100))),
            ("Bias Current", 5, 8, 1, ber.enc_int(round(o.bias_a * 10000))),
            ("Transmit Power", 14, 9, 1, ber.enc_int(round(o.tx_dbm * 10))),
            ("Receive Power", 14, 9, 1, (_rx_deci, (d, i))),
        ]
        for n, (label, kind, scale, prec, value) in enumerate(sensors, start=1):
            rows += _sensor_entity(x + n, x, f"{i.name} {label} Sensor")
            rows += _cisco_sensor(x + n, kind, scale, prec, value)
    fan = CISCO_PORT_ENTITY - 10
    rows += [((*ENT, 2, fan), ber.octets("Chassis Fan 1")), ((*ENT, 4, fan), ber.enc_int(chassis))]
    rows += [((*ENT, 5, fan), ber.enc_int(7)), ((*ENT, 7, fan), ber.octets("Chassis Fan 1"))]
    rows += _sensor_entity(fan + 1, fan, "Chassis Fan 1 Speed Sensor")
    rows += _cisco_sensor(fan + 1, 10, 9, 0, ber.enc_int(5200 + zlib.crc32(d.name.encode()) % 400))
    return rows


def _port_entity(x: int, chassis: int, name: str, serial: str, model: str) -> list[tuple[Oid, Value]]:
    return [
        ((*ENT, 2, x), ber.octets("1000BASE-LX SFP")),
        ((*ENT, 4, x), ber.enc_int(chassis)),
        ((*ENT, 5, x), ber.enc_int(10)),
        ((*ENT, 7, x), ber.octets(name)),
        ((*ENT, 11, x), ber.octets(serial)),
        ((*ENT, 13, x), ber.octets(model)),
    ]


def _poe(d: LabDevice) -> list[tuple[Oid, Value]]:
    if d.role != "access_switch":
        return []
    used = 40 + zlib.crc32(d.name.encode()) % 200
    return [
        ((*PETH, 2, 1), ber.gauge32(370)),
        ((*PETH, 3, 1), ber.enc_int(1)),
        ((*PETH, 4, 1), _dyn(lambda now: ber.gauge32(round(used + 5 * math.sin(now / 60.0))))),
    ]


def hardware_rows(d: LabDevice, chassis: int) -> list[tuple[Oid, Value]]:
    """Optics, sensors and PoE rows of a synthetic device (chassis = its chassis entity index)."""
    if d.vendor == "huawei":
        rows = _huawei(d, chassis)
    elif d.vendor == "h3c":
        rows = _h3c(d)
    elif d.vendor == "cisco":
        rows = _cisco(d, chassis)
    else:
        return []
    return rows + _poe(d)


def apply_degrade(
    d: LabDevice, now: float, interface: str | None, every_s: float | None
) -> dict[str, object]:
    """Start `optic_degrade` on an optic port (the first one when none is named)."""
    ports = optic_ports(d)
    names = [i.name for i in ports]
    if not ports:
        raise ValueError(f"{d.name} has no optic (no linked interface)")
    if interface is not None and interface not in names:
        raise ValueError(f"{d.name} has no optic in {interface!r}")
    name = interface or names[0]
    d.faults["optic_degrade"] = {
        "interface": name,
        "since": now,
        "every_s": every_s or DEGRADE_EVERY_S,
        "step_db": DEGRADE_STEP_DB,
    }
    return {"interface": name, "step_db": DEGRADE_STEP_DB, "every_s": every_s or DEGRADE_EVERY_S}

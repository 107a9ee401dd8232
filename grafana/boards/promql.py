"""PromQL shared by the dashboards (metric names as in docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Callable

from grafana.build import OK, RATE, value_map

AGG = 'role="aggregation_switch"'
CORE = 'role="core_switch"'
UPLINK = 'ifalias=~"$uplink"'
SECURITY_ROLES = "firewall|vpn_gateway|isolation_gateway|ips|load_balancer"


def rate(metric: str, sel: str = "", window: str = RATE) -> str:
    """rate() of a counter with an optional label selector."""
    return f"rate({metric}{{{sel}}}[{window}])"


def util(direction: str, sel: str) -> str:
    """Bandwidth utilisation 0..1 of the selected interfaces, as the InterfaceSaturation rules compute it."""
    return f"{rate(f'govnet_if_{direction}_octets_total', sel)} * 8 / (govnet_if_speed_bps{{{sel}}} > 0)"


def bps(direction: str, sel: str) -> str:
    """Traffic in bit/s of the selected interfaces."""
    return f"{rate(f'govnet_if_{direction}_octets_total', sel)} * 8"


def both_directions(fn: Callable[[str, str], str], sel: str) -> str:
    """`fn` for in and out, kept apart by a `direction` label so an aggregation can take the max."""
    return " or ".join(f'label_replace({fn(d, sel)}, "direction", "{d}", "", "")' for d in ("in", "out"))


def errors(sel: str) -> str:
    """Errors plus discards per second, both directions."""
    parts = [rate(f"govnet_if_{d}_{k}_total", sel) for k in ("errors", "discards") for d in ("in", "out")]
    return " + ".join(parts)


def site_state(uplink_sel: str) -> str:
    """Per site: 0 up, 1 degraded (a device down or an uplink down), 2 unreachable (no device answers).

    A site without aggregation uplinks gets 0 for the uplink term (`or on (site)`), so every site that
    has a polled device has a state.
    """
    none_up = "(max by (site) (govnet_up) == bool 0)"
    some_down = "(min by (site) (govnet_up) == bool 0)"
    uplink_down = (
        f"(max by (site) ((1 - govnet_if_oper_up{{{uplink_sel}}}) * govnet_if_admin_up{{{uplink_sel}}})"
        " or on (site) (0 * max by (site) (govnet_up)))"
    )
    return f"2 * {none_up} + (1 - {none_up}) * clamp_max({some_down} + {uplink_down}, 1)"


def stateset(metric: str, sel: str, codes: dict[str, int], by: str) -> str:
    """A stateset metric (1 for the current state) as one number per `by` group: the state's code."""
    pre = f"{sel}," if sel else ""
    parts = " or ".join(f'{metric}{{{pre}state="{s}"}} * {c}' for s, c in codes.items())
    return f"sum by ({by}) ({parts})"


DB_ROLE_CODES = {"primary": 1, "standby": 2, "down": 3, "unknown": 4}
DB_PAIR_CODES = {"normal": 0, "failed_over": 1, "degraded": 2, "split_brain": 3, "no_active": 4, "down": 5}
REACH_CODES = {"up": 0, "degraded": 1, "down": 2, "unreachable": 3}
GROUP_CODES = {"ok": 0, "degraded": 1, "down": 2}
BACKUP_CODES = {
    "ok": 0, "stale": 1, "overdue": 2, "truncated": 3, "corrupt": 4, "missing": 5, "unreachable": 6,
}  # fmt: skip


def site_state_reach() -> str:
    """Per site from the topology-aware reachability (probes section): 0 up, 1 degraded, 2 unreachable."""
    none_ok = '(max by (site) (govnet_reachability_state{state=~"up|degraded"}) == bool 0)'
    some_bad = 'max by (site) (govnet_reachability_state{state=~"degraded|down|unreachable"})'
    return f"2 * {none_ok} + (1 - {none_ok}) * {some_bad}"


REACH_MAP = value_map(
    {
        0: ("up 正常", OK),
        1: ("degraded 降级", "orange"),
        2: ("down 宕机", "red"),
        3: ("unreachable 不可达", "purple"),
    }
)
GROUP_MAP = value_map(
    {0: ("ok 冗余正常", OK), 1: ("degraded 冗余丢失", "orange"), 2: ("down 全部中断", "red")}
)
BACKUP_MAP = value_map(
    {
        0: ("ok 正常", OK),
        1: ("stale 过期", "blue"),
        2: ("overdue 逾期", "blue"),
        3: ("truncated 截断", "orange"),
        4: ("corrupt 损坏", "red"),
        5: ("missing 缺失", "red"),
        6: ("unreachable 不可达", "purple"),
    }
)
DB_ROLE_MAP = value_map(
    {
        1: ("primary 主库", OK),
        2: ("standby 备库", "blue"),
        3: ("down 宕机", "red"),
        4: ("unknown 未知", "purple"),
    }
)
DB_PAIR_MAP = value_map(
    {
        0: ("normal 正常", OK),
        1: ("failed over 已切换", "yellow"),
        2: ("degraded 降级", "orange"),
        3: ("split brain 双主", "red"),
        4: ("no active 无主库", "red"),
        5: ("down 全部宕机", "red"),
    }
)


def increase_new(metric: str, sel: str, window: str) -> str:
    """increase() that also counts series born inside the window.

    A counter created at its first event (traps by name) starts at 1: increase() sees no change, so the
    series absent `window` ago contribute their whole value.
    """
    m = f"{metric}{{{sel}}}"
    return f"(({m} * 1) unless ({m} offset {window})) or increase({m}[{window}])"


def optic(metric: str, sel: str, port_sel: str = "") -> str:
    """A transceiver metric of the selected devices; with `port_sel`, only ports the interface selector
    picks (optics carry `ifname` only, so they are joined on device and ifname with an IF-MIB series)."""
    expr = f"{metric}{{{sel}}}"
    if port_sel:
        expr += f" and on (device, ifname) govnet_if_oper_up{{{port_sel}}}"
    return expr


def rx_threshold(sel: str, threshold: str = "low_warn") -> str:
    """The device's own receive power threshold per port, without the `threshold` label (table joins)."""
    return f'max without (threshold) (govnet_optic_rx_power_threshold_dbm{{{sel},threshold="{threshold}"}})'

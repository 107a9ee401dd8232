"""Security edge: firewall HA roles and failovers, sessions, throughput, VPN, IPS and isolation gateway."""

from __future__ import annotations

from grafana.boards.promql import GROUP_CODES, GROUP_MAP, SECURITY_ROLES, bps, rate, stateset
from grafana.build import (
    OK,
    Board,
    Column,
    Q,
    Rules,
    bar_gauge,
    fixed_thresholds,
    mirrored,
    stat_panel,
    state_timeline,
    table_panel,
    ts,
    up_column,
    value_map,
)

SEC = f'role=~"{SECURITY_ROLES}"'
VPN = 'role="vpn_gateway"'
HA_STATES = {"active": 1, "standby": 2, "down": 3, "error": 4}
HA_MAP = value_map(
    {1: ("active 主用", OK), 2: ("standby 备用", "blue"), 3: ("down 故障", "red"), 4: ("error 异常", "red")}
)


def ha_code(sel: str) -> str:
    """Per device: 1 active, 2 standby, 3 down, 4 error (govnet_ha_role is a stateset)."""
    return stateset("govnet_ha_role", sel, HA_STATES, "device")


def build(rules: Rules) -> Board:
    """Firewalls, VPN gateway, IPS, isolation gateway and load balancer at the Internet exit."""
    b = Board(
        "govnet-security",
        "govnet / 安全边界 Security edge",
        "Firewall HA roles and failovers, sessions, throughput of the security devices, VPN gateway.",
        ["security", "ha"],
    )
    b.row("双机热备 HA")
    b.add(
        state_timeline(
            "HA 角色 HA role",
            [Q(ha_code(SEC), "{{device}}")],
            HA_MAP,
            "Role each unit reports (vendor HA MIB, normalised).",
            w=16,
            h=6,
        ),
        stat_panel(
            "主备切换 Failovers in range",
            [
                Q(
                    f'sum by (device) (changes(govnet_ha_role{{{SEC},state="active"}}[$__range]))',
                    "{{device}}",
                    instant=True,
                )
            ],
            desc="Times the active role changed in the selected range (HAFailover rule colour).",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("HAFailover"))),
            w=4,
            h=6,
            names=True,
            links=True,
        ),
        stat_panel(
            "对端 HA peer",
            [Q(f"govnet_ha_peer_ok{{{SEC}}}", "{{device}}", instant=True)],
            desc="1 if the HA peer is healthy / in sync (HAPeerDegraded rule colour).",
            mappings=value_map({1: ("ok 正常", OK), 0: ("degraded 异常", rules.colour("HAPeerDegraded"))}),
            thresholds=rules.thresholds("HAPeerDegraded"),
            w=4,
            h=6,
            names=True,
            links=True,
        ),
    )
    b.add(
        state_timeline(
            "双机组 HA groups",
            [Q(stateset("govnet_redundancy_state", 'kind="ha"', GROUP_CODES, "group"), "{{group}}")],
            GROUP_MAP,
            "Inventory HA groups (firewall pair, database pair): ok when every member is up.",
            thresholds=fixed_thresholds((None, OK), (1, "orange"), (2, "red")),
            h=5,
        )
    )
    b.row("会话与吞吐 Sessions and throughput")
    b.add(
        ts(
            "并发会话 Sessions",
            [
                Q(f"govnet_fw_sessions{{{SEC}}}", "{{device}}"),
                Q(f"govnet_fw_sessions_max{{{SEC}}}", "{{device}} max"),
            ],
            "short",
            "Sessions / connections in use; max = highest since boot where the MIB gives it.",
        ),
        mirrored(
            "吞吐 Throughput",
            f"sum by (device) ({bps('in', SEC)})",
            f"-sum by (device) ({bps('out', SEC)})",
            "{{device}}",
            "bps",
            "Sum over each security device's interfaces; in above zero, out below.",
        ),
    )
    b.row("安全日志 Security logs")
    b.add(
        bar_gauge(
            "日志静默 Time since each device's last log",
            [
                Q(
                    "sort_desc(time() - govnet_syslog_last_message_timestamp_seconds)",
                    "{{device}}",
                    instant=True,
                )
            ],
            "s",
            "Receive time of the last durable syslog message per device (SecurityLogSilent rule colour).",
            thresholds=rules.thresholds("SecurityLogSilent"),
            w=12,
            h=8,
        ),
        ts(
            "日志接收 Syslog received",
            [
                Q(rate("govnet_syslog_received_total"), "received/s"),
                Q(rate("govnet_syslog_durable_total"), "stored/s"),
            ],
            "short",
            links=False,
            w=8,
        ),
        stat_panel(
            "日志存储校验 Log store chain",
            [Q("govnet_logstore_verify_ok", "{{store}}", instant=True)],
            desc="Last full hash-chain verification (SecurityLogStoreIntegrity rule colour).",
            mappings=value_map(
                {1: ("intact 完整", OK), 0: ("TAMPERED 异常", rules.colour("SecurityLogStoreIntegrity"))}
            ),
            thresholds=rules.thresholds("SecurityLogStoreIntegrity"),
            w=4,
            h=8,
            names=True,
        ),
    )
    b.row("安全设备 Security devices")
    b.add(
        table_panel(
            "安全设备一览 Security devices",
            [
                up_column("轮询 Answering", f"govnet_up{{{SEC}}}"),
                Column(
                    "CPU",
                    Q(f"max by (device, site, role, vendor) (govnet_cpu_ratio{{{SEC}}})"),
                    "percentunit",
                    rules.thresholds("CpuHigh"),
                ),
                Column("入 In", Q(f"sum by (device, site, role, vendor) ({bps('in', SEC)})"), "bps"),
                Column("出 Out", Q(f"sum by (device, site, role, vendor) ({bps('out', SEC)})"), "bps"),
            ],
            ["device", "site", "role", "vendor"],
            "Firewalls, VPN gateway, IPS, isolation gateway (网闸) and load balancer.",
            h=8,
        ),
        mirrored(
            "VPN 网关流量 VPN gateway traffic",
            f"sum by (device) ({bps('in', VPN)})",
            f"-sum by (device) ({bps('out', VPN)})",
            "{{device}}",
            "bps",
            "",
        ),
        ts(
            "安全设备 CPU Security devices CPU",
            [Q(f"max by (device) (govnet_cpu_ratio{{{SEC}}})", "{{device}}")],
            "percentunit",
            "Dashed line: CpuHigh rule. IPS and gateways saturate CPU before links under attack.",
            thresholds=rules.thresholds("CpuHigh"),
            max_val=1,
        ),
    )
    return b

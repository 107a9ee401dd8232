"""Extranet overview: every site's state, device state, core and aggregation uplink load, top talkers."""

from __future__ import annotations

from grafana.boards.promql import (
    AGG,
    CORE,
    REACH_CODES,
    REACH_MAP,
    UPLINK,
    both_directions,
    bps,
    increase_new,
    site_state,
    site_state_reach,
    stateset,
    util,
)
from grafana.build import (
    LEVEL_OVERRIDES,
    OK,
    Board,
    Column,
    Q,
    Rules,
    bar_gauge,
    console_page,
    fixed_thresholds,
    stat_panel,
    table_panel,
    ts,
    up_column,
    value_map,
)

SITE_STATES = value_map(
    {0: ("up 正常", OK), 1: ("degraded 降级", "orange"), 2: ("unreachable 不可达", "red")}
)
UPLINK_REGEX = "(?i).*(uplink|上联|core).*"


def build(rules: Rules) -> Board:
    """The dashboard an engineer keeps open all day."""
    sat = rules.thresholds("InterfaceSaturationIn")
    b = Board(
        "govnet-overview",
        "govnet / 电子政务外网总览 Extranet overview",
        "Every site's state, device availability, core and aggregation uplink utilisation, top talkers.",
        ["overview"],
    )
    b.text_var(
        "uplink",
        "上联端口别名 Uplink ifAlias regex",
        UPLINK_REGEX,
        "Regex on ifAlias that marks an aggregation switch's uplinks to the core.",
    )
    site = f"({site_state_reach()}) or ({site_state(f'{AGG},{UPLINK}')})"
    # Backbone sites hold a device that is not an access switch; access sites hold only those.
    backbone = 'max by (site) (govnet_up{role!="access_switch"})'
    access = f"({site}) unless on (site) {backbone}"
    b.row("站点状态 Site state")
    b.add(
        stat_panel(
            "站点状态 Site state (control centre, data centre, aggregation points)",
            [Q(f"({site}) and on (site) {backbone}", "{{site}}", instant=True)],
            desc="Per site: up, degraded (a device down or degraded, e.g. one of two uplinks down), "
            "unreachable (no device of the site is up). From govnet's topology-aware reachability "
            "(probes section); without it, from polls and aggregation uplink states.",
            mappings=SITE_STATES,
            thresholds=fixed_thresholds((None, OK), (1, "orange"), (2, "red")),
            w=24,
            h=5,
            names=True,
        ),
        stat_panel(
            "接入站点 Access sites",
            [
                Q(f"count(({access}) == 0) or vector(0)", "up 正常", instant=True),
                Q(f"count(({access}) == 1) or vector(0)", "degraded 降级", instant=True),
                Q(f"count(({access}) == 2) or vector(0)", "unreachable 不可达", instant=True),
            ],
            desc="Community and unit sites (only access switches) by state; the table lists them.",
            w=8,
            h=6,
            names=True,
            overrides=[("degraded 降级", "orange"), ("unreachable 不可达", "red")],
        ),
        table_panel(
            "接入站点状态 Access site state",
            [
                Column(
                    "状态 State",
                    Q(access),
                    mappings=SITE_STATES,
                    thresholds=fixed_thresholds((None, OK), (1, "orange"), (2, "red")),
                )
            ],
            ["site"],
            "Worst first.",
            w=16,
            h=6,
            sort_by="状态 State",
            descending=True,
        ),
        stat_panel(
            "未关闭事件 Open incidents by level",
            [Q("sum by (level) (govnet_incidents_open)", "{{level}}", instant=True)],
            desc="Open incidents per 国家网络安全事件应急预案 level: I 特别重大 red, II 重大 orange, "
            "III 较大 yellow, IV 一般 blue.",
            w=12,
            names=True,
            overrides=LEVEL_OVERRIDES,
        ).data_links([console_page("govnet 控制台：事件 Incidents", "/incidents")]),
        ts(
            "告警 Alerts firing by level",
            [Q("sum by (level) (govnet_alerts_firing)", "{{level}}")],
            "short",
            "Firing alerts, inhibited and silenced ones included.",
            w=12,
            h=4,
            links=False,
            overrides=LEVEL_OVERRIDES,
            legend=False,
        ),
        stat_panel("设备在线 Devices answering", [Q("sum(govnet_up)", "up", instant=True)], w=6),
        stat_panel(
            "设备离线 Devices not answering",
            [Q("count(govnet_up == 0) or vector(0)", "down", instant=True)],
            thresholds=fixed_thresholds((None, OK), (1, "red")),
            w=6,
        ),
        stat_panel(
            "上联中断 Aggregation uplinks down",
            [
                Q(
                    f"count(govnet_if_oper_up{{{AGG},{UPLINK}}} == 0) or vector(0)",
                    "uplinks down",
                    instant=True,
                )
            ],
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("UplinkRedundancyLost"))),
            w=6,
        ),
        stat_panel(
            "不可达复查 Devices in unreachable recheck",
            [Q("sum(govnet_device_unreachable)", "unreachable", instant=True)],
            thresholds=fixed_thresholds((None, OK), (1, "red")),
            w=6,
        ),
        table_panel(
            "设备状态 Device state",
            [
                up_column("状态 State", "govnet_up"),
                Column(
                    "可达性 Reachability",
                    Q(stateset("govnet_reachability_state", "", REACH_CODES, "device, site, role, vendor")),
                    mappings=REACH_MAP,
                ),
                Column("运行时间 Uptime", Q("govnet_uptime_seconds"), unit="s"),
                Column("轮询耗时 Poll duration", Q("govnet_poll_duration_seconds"), unit="s"),
            ],
            ["device", "site", "role", "vendor"],
            "Every polled device; not answering first. Click a device for its detail dashboard.",
            h=10,
            sort_by="状态 State",
        ),
    )
    b.row("上联与流量 Uplinks and traffic")
    b.add(
        ts(
            "核心链路利用率 Core link utilisation",
            [
                Q(f"topk(10, {util('in', CORE)})", "{{device}} {{ifname}} in"),
                Q(f"topk(10, {util('out', CORE)})", "{{device}} {{ifname}} out"),
            ],
            "percentunit",
            "Busiest core switch ports (in and out); dashed line: InterfaceSaturation rule.",
            thresholds=sat,
        ),
        ts(
            "汇聚上联利用率 Aggregation uplink utilisation",
            [
                Q(f"topk(10, {util('in', f'{AGG},{UPLINK}')})", "{{device}} {{ifname}} in"),
                Q(f"topk(10, {util('out', f'{AGG},{UPLINK}')})", "{{device}} {{ifname}} out"),
            ],
            "percentunit",
            "Busiest aggregation uplinks; the uplinks dashboard shows each pair side by side.",
            thresholds=sat,
        ),
        bar_gauge(
            "流量排名 Top talkers (interfaces, in + out)",
            [
                Q(
                    f"topk(10, {bps('in', '')} + {bps('out', '')})",
                    "{{device}} {{ifname}} {{ifalias}}",
                    instant=True,
                )
            ],
            "bps",
            "The ten interfaces carrying the most traffic now.",
            w=12,
        ),
        bar_gauge(
            "上联利用率排名 Top uplink utilisation",
            [
                Q(
                    f"topk(10, max by (device, ifname) ({both_directions(util, f'{AGG},{UPLINK}')}))",
                    "{{device}} {{ifname}}",
                    instant=True,
                )
            ],
            "percentunit",
            "Highest of in/out utilisation per aggregation uplink.",
            thresholds=sat,
            w=12,
            max_val=1,
        ),
    )
    b.add(
        bar_gauge(
            "陷阱 SNMP traps in range",
            [
                Q(
                    "topk(10, sum by (device) "
                    f"({increase_new('govnet_traps_received_total', '', '$__range')}))",
                    "{{device}}",
                    instant=True,
                )
            ],
            "short",
            "Devices that sent the most traps/informs in the selected range (linkDown, HA switch...).",
            w=24,
            h=6,
        )
    )
    return b

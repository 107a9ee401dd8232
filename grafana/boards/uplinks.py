"""Uplinks and redundancy: each aggregation point's two GE uplinks side by side."""

from __future__ import annotations

from grafana.boards.overview import UPLINK_REGEX
from grafana.boards.promql import (
    AGG,
    GROUP_CODES,
    GROUP_MAP,
    UPLINK,
    both_directions,
    bps,
    errors,
    optic,
    rate,
    rx_threshold,
    stateset,
    util,
)
from grafana.build import (
    OK,
    UP_DOWN,
    Board,
    Column,
    Q,
    Rules,
    bar_gauge,
    fixed_thresholds,
    mirrored,
    state_timeline,
    table_panel,
    ts,
    up_column,
)

ONE = f'device=~"$agg",{UPLINK}'


def build(rules: Rules) -> Board:
    """One summary table, then a repeated row per aggregation switch."""
    sat = rules.thresholds("InterfaceSaturationIn")
    errs = rules.thresholds("InterfaceErrors")
    b = Board(
        "govnet-uplinks",
        "govnet / 上联与冗余 Uplinks and redundancy",
        "Each aggregation point's dual GE uplinks: state, utilisation, errors, which one carries traffic.",
        ["uplinks", "redundancy"],
    )
    b.query_var(
        "agg",
        "汇聚设备 Aggregation switch",
        f"label_values(govnet_up{{{AGG}}}, device)",
        multi=True,
        include_all=True,
    )
    b.text_var(
        "uplink",
        "上联端口别名 Uplink ifAlias regex",
        UPLINK_REGEX,
        "Regex on ifAlias that marks an aggregation switch's uplinks to the core.",
    )
    sel = f"{AGG},{UPLINK}"
    b.row("冗余组 Redundancy groups")
    b.add(
        state_timeline(
            "链路冗余组 Link redundancy groups",
            [Q(stateset("govnet_redundancy_state", 'kind="links"', GROUP_CODES, "group"), "{{group}}")],
            GROUP_MAP,
            "Each inventory redundancy group (e.g. an aggregation point's dual uplinks): ok, degraded "
            "(redundancy lost, UplinkRedundancyLost) or down. From the probes section's topology service.",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("UplinkRedundancyLost")), (2, "red")),
            w=16,
        ),
        bar_gauge(
            "可用成员 Members up / expected",
            [
                Q(
                    'govnet_redundancy_members_up{kind="links"}'
                    ' / govnet_redundancy_members_expected{kind="links"}',
                    "{{group}}",
                    instant=True,
                )
            ],
            "percentunit",
            "Share of each group's links that are up now.",
            thresholds=fixed_thresholds((None, "red"), (0.01, "orange"), (1, OK)),
            w=8,
            max_val=1,
        ),
    )
    b.row("全部汇聚上联 All aggregation uplinks")
    b.add(
        table_panel(
            "汇聚上联一览 Aggregation uplinks",
            [
                up_column("状态 State", f"govnet_if_oper_up{{{sel}}}"),
                Column("入利用率 In", Q(util("in", sel)), "percentunit", sat),
                Column("出利用率 Out", Q(util("out", sel)), "percentunit", sat),
                Column("错包+丢包 Errors+discards", Q(errors(sel)), "pps", errs),
                Column("流量占比 Share of site traffic", Q(share(sel)), "percentunit"),
            ],
            ["device", "site", "ifname", "ifalias"],
            "Down uplinks first; share = this uplink's in+out traffic / both uplinks' traffic.",
            h=10,
            sort_by="状态 State",
        )
    )
    b.add(
        table_panel(
            "上联光模块 Uplink optics",
            [
                Column("收光 Rx", Q(optic("govnet_optic_rx_power_dbm", AGG, sel)), "dBm"),
                Column("告警门限 Rx low warning", Q(rx_threshold(AGG)), "dBm"),
                Column("发光 Tx", Q(optic("govnet_optic_tx_power_dbm", AGG, sel)), "dBm"),
            ],
            ["device", "ifname"],
            "Receive power of each aggregation uplink's transceiver, weakest first: a fibre that lost "
            "3 dB against its 7-day median is degrading (OpticRxPowerDrop) before the link fails.",
            h=8,
            sort_by="收光 Rx",
        )
    )
    b.row("$agg", repeat="agg")
    b.add(
        state_timeline(
            "上联状态 Uplink state",
            [Q(f"govnet_if_oper_up{{{ONE}}}", "{{ifname}} {{ifalias}}")],
            UP_DOWN,
            thresholds=fixed_thresholds((None, "red"), (1, OK)),
            w=12,
            h=6,
        ),
        bar_gauge(
            "承载流量 Which uplink carries the traffic",
            [Q(share(ONE), "{{ifname}} {{ifalias}}", instant=True)],
            "percentunit",
            "Share of the aggregation switch's uplink traffic (in + out) on each uplink now.",
            w=12,
            h=6,
            max_val=1,
        ),
        ts(
            "上联利用率 Uplink utilisation",
            [
                Q(util("in", ONE), "{{ifname}} in"),
                Q(util("out", ONE), "{{ifname}} out"),
            ],
            "percentunit",
            "Dashed line: InterfaceSaturation rule.",
            thresholds=sat,
        ),
        mirrored(
            "上联流量 Uplink traffic",
            bps("in", ONE),
            f"-({bps('out', ONE)})",
            "{{ifname}}",
            "bps",
            "In above zero, out below.",
        ),
        ts(
            "错包与丢包 Errors and discards",
            [
                Q(rate("govnet_if_in_errors_total", ONE), "{{ifname}} in errors"),
                Q(rate("govnet_if_out_errors_total", ONE), "{{ifname}} out errors"),
                Q(rate("govnet_if_in_discards_total", ONE), "{{ifname}} in discards"),
                Q(rate("govnet_if_out_discards_total", ONE), "{{ifname}} out discards"),
            ],
            "pps",
            "Dashed line: InterfaceErrors rule.",
            thresholds=errs,
        ),
        ts(
            "上联收光功率 Uplink Rx power",
            [Q(optic("govnet_optic_rx_power_dbm", 'device=~"$agg"', ONE), "{{ifname}}")],
            "dBm",
            "Receive power of the uplink transceivers.",
            min_val=None,
        ),
        ts(
            "上联最高利用率 Peak of in/out",
            [Q(f"max by (ifname) ({both_directions(util, ONE)})", "{{ifname}}")],
            "percentunit",
            thresholds=sat,
        ),
    )
    return b


def share(sel: str) -> str:
    """Each uplink's share of its device's uplink traffic (in + out), 0..1."""
    traffic = f"({bps('in', sel)} + {bps('out', sel)})"
    return f"{traffic} / on (device) group_left () sum by (device) ({traffic})"

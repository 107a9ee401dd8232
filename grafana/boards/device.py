"""Device detail, templated by device: identity, resources, interfaces, uptime/reboots, poll health."""

from __future__ import annotations

from grafana.boards.promql import (
    REACH_CODES,
    REACH_MAP,
    bps,
    errors,
    increase_new,
    optic,
    rate,
    rx_threshold,
    stateset,
)
from grafana.build import (
    DEVICE_UID,
    OK,
    UP_DOWN,
    Board,
    Column,
    Q,
    Rules,
    fixed_thresholds,
    mirrored,
    stat_panel,
    table_panel,
    ts,
    up_column,
)

DEV = 'device="$device"'


def build(rules: Rules) -> Board:
    """Everything govnet knows about one device."""
    b = Board(
        DEVICE_UID,
        "govnet / 设备详情 Device detail",
        "One device: identity, CPU, memory, temperature, interfaces, uptime and reboots, poll health.",
        ["device"],
    )
    b.query_var("site", "站点 Site", "label_values(govnet_up, site)", include_all=True)
    b.query_var("device", "设备 Device", 'label_values(govnet_up{site=~"$site"}, device)')
    b.row("状态 Status")
    b.add(
        stat_panel(
            "轮询 Answering",
            [Q(f"govnet_up{{{DEV}}}", "up", instant=True)],
            mappings=UP_DOWN,
            thresholds=fixed_thresholds((None, "red"), (1, OK)),
        ),
        stat_panel(
            "运行时间 Uptime",
            [Q(f"govnet_uptime_seconds{{{DEV}}}", "uptime", instant=True)],
            "s",
            "sysUpTime: restarts at 0 on a reboot.",
            thresholds=fixed_thresholds((None, "orange"), (3600, OK)),
        ),
        stat_panel(
            "重启次数 Reboots in range",
            [Q(f"resets(govnet_uptime_seconds{{{DEV}}}[$__range])", "reboots", instant=True)],
            desc="Times the uptime went backwards in the selected time range.",
            thresholds=fixed_thresholds((None, OK), (1, "orange")),
        ),
        stat_panel(
            "轮询耗时 Poll duration",
            [Q(f"govnet_poll_duration_seconds{{{DEV}}}", "duration", instant=True)],
            "s",
            graph=True,
        ),
        stat_panel(
            "接口 Interfaces up / total",
            [
                Q(f"sum(govnet_if_oper_up{{{DEV}}})", "up", instant=True),
                Q(f"count(govnet_if_oper_up{{{DEV}}})", "total", instant=True),
            ],
            names=True,
        ),
        stat_panel(
            "不可达复查 Unreachable recheck",
            [Q(f"govnet_device_unreachable{{{DEV}}}", "unreachable", instant=True)],
            thresholds=fixed_thresholds((None, OK), (1, "red")),
        ),
        table_panel(
            "设备信息 Identity",
            [Column("", Q(f"govnet_device_info{{{DEV}}}"))],  # labels only
            [
                "device",
                "site",
                "role",
                "vendor",
                "hardware",
                "version",
                "release",
                "serial",
                "sysname",
                "sysdescr",
            ],
            "From SNMP (sysDescr, ENTITY-MIB, vendor MIBs).",
            h=4,
        ),
    )
    b.row("资源 Resources")
    b.add(
        ts(
            "CPU",
            [Q(f"govnet_cpu_ratio{{{DEV}}}", "{{entity}}{{cpu}}")],
            "percentunit",
            "Dashed line: CpuHigh rule.",
            thresholds=rules.thresholds("CpuHigh"),
            w=8,
            max_val=1,
        ),
        ts(
            "内存 Memory",
            [Q(f"govnet_memory_used_ratio{{{DEV}}}", "{{entity}}{{pool}}")],
            "percentunit",
            "Dashed line: MemoryHigh rule.",
            thresholds=rules.thresholds("MemoryHigh"),
            w=8,
            max_val=1,
        ),
        ts(
            "温度 Temperature",
            [Q(f"govnet_temperature_celsius{{{DEV}}}", "{{sensor}}")],
            "celsius",
            "Dashed line: TemperatureHigh rule.",
            thresholds=rules.thresholds("TemperatureHigh"),
            w=8,
        ),
    )
    b.row("光模块 Optics")
    b.add(
        table_panel(
            "光模块一览 Transceivers",
            [
                Column("收光 Rx", Q(optic("govnet_optic_rx_power_dbm", DEV)), "dBm"),
                Column("告警门限 Rx low warning", Q(rx_threshold(DEV)), "dBm"),
                Column("发光 Tx", Q(optic("govnet_optic_tx_power_dbm", DEV)), "dBm"),
                Column("温度 Temp", Q(optic("govnet_optic_temperature_celsius", DEV)), "celsius"),
                Column("偏置电流 Bias", Q(optic("govnet_optic_bias_amperes", DEV)), "amp"),
                Column("电压 Voltage", Q(optic("govnet_optic_voltage_volts", DEV)), "volt"),
            ],
            ["ifname"],
            "Digital optical monitoring per port. OpticRxPowerLow: Rx below the device's low warning "
            "threshold (else its low alarm, else -20 dBm); OpticRxPowerDrop: 3 dB under the 7-day median.",
            h=8,
            sort_by="收光 Rx",
        ),
        ts(
            "收光功率 Rx power",
            [Q(optic("govnet_optic_rx_power_dbm", DEV), "{{ifname}}")],
            "dBm",
            "Receive power per transceiver. OpticRxPowerDrop compares it with its 7-day median "
            "(govnet_optic_rx_power_baseline_dbm, after a day of history).",
            min_val=None,
        ),
        ts(
            "发光功率 Tx power",
            [Q(optic("govnet_optic_tx_power_dbm", DEV), "{{ifname}}")],
            "dBm",
            "A falling Tx power with a steady bias current is an ageing laser.",
            min_val=None,
        ),
    )
    b.row("传感器 Sensors")
    b.add(
        ts(
            "电压 Voltage",
            [Q(f"govnet_voltage_volts{{{DEV}}}", "{{sensor}}{{psu}}")],
            "volt",
            w=6,
            min_val=None,
        ),
        ts("电流 Current", [Q(f"govnet_current_amperes{{{DEV}}}", "{{sensor}}")], "amp", w=6),
        ts(
            "功率 Power",
            [
                Q(f"govnet_power_watts{{{DEV}}}", "{{sensor}}"),
                Q(f"govnet_poe_power_consumed_watts{{{DEV}}}", "PoE {{pse}}"),
            ],
            "watt",
            w=6,
        ),
        ts("风扇转速 Fan speed", [Q(f"govnet_fan_speed_rpm{{{DEV}}}", "{{sensor}}")], "rpm", w=6),
        table_panel(
            "硬件清单 Hardware inventory",
            [Column("", Q(f"govnet_module_info{{{DEV}}}"))],  # labels only
            ["class", "name", "model", "serial", "hardware_rev", "firmware_rev", "software_rev", "entity"],
            "ENTITY-MIB chassis, modules, power supplies, fans and transceivers with a serial.",
            h=8,
        ),
    )
    sel = DEV
    b.row("接口 Interfaces")
    b.add(
        table_panel(
            "接口一览 Interfaces",
            [
                up_column("运行 Oper", f"govnet_if_oper_up{{{sel}}}"),
                Column("管理 Admin", Q(f"govnet_if_admin_up{{{sel}}}"), mappings=UP_DOWN),
                Column("速率 Speed", Q(f"govnet_if_speed_bps{{{sel}}}"), "bps"),
                Column("入 In", Q(bps("in", sel)), "bps"),
                Column("出 Out", Q(bps("out", sel)), "bps"),
                Column(
                    "错包+丢包 Errors+discards", Q(errors(sel)), "pps", rules.thresholds("InterfaceErrors")
                ),
            ],
            ["ifname", "ifalias", "ifindex"],
            h=12,
            sort_by="入 In",
            descending=True,
        ),
        mirrored(
            "流量 Traffic (top 10 interfaces)",
            f"topk(10, {bps('in', sel)})",
            f"-topk(10, {bps('out', sel)})",
            "{{ifname}}",
            "bps",
            "In above zero, out below.",
        ),
        mirrored(
            "包速率 Packets (top 10 interfaces)",
            f"topk(10, {rate('govnet_if_in_packets_total', sel)})",
            f"-topk(10, {rate('govnet_if_out_packets_total', sel)})",
            "{{ifname}}",
            "pps",
            "Unicast + multicast + broadcast; in above zero, out below.",
        ),
        ts(
            "错包与丢包 Errors and discards",
            [Q(f"topk(10, {errors(sel)})", "{{ifname}}")],
            "pps",
            "Dashed line: InterfaceErrors rule.",
            thresholds=rules.thresholds("InterfaceErrors"),
        ),
    )
    b.row("连通性 Reachability (ICMP)")
    b.add(
        stat_panel(
            "可达性 Reachability",
            [
                Q(
                    stateset("govnet_reachability_state", DEV, REACH_CODES, "device"),
                    "{{device}}",
                    instant=True,
                )
            ],
            desc="Topology-aware: unreachable when every path to it is down (not paged separately).",
            mappings=REACH_MAP,
            w=4,
            h=6,
        ),
        stat_panel(
            "状态变化 Reachability changes",
            [
                Q(
                    f"increase(govnet_reachability_transitions_total{{{DEV}}}[$__range])",
                    "changes",
                    instant=True,
                )
            ],
            desc="Reachability state changes in the selected range: more than a few means flapping.",
            thresholds=fixed_thresholds((None, OK), (1, "yellow"), (6, "orange")),
            w=4,
            h=6,
        ),
        ts(
            "往返时延 ICMP round-trip time",
            [Q(f"govnet_probe_rtt_seconds{{{DEV}}}", "{{stat}}")],
            "s",
            "Min / avg / max over the probe window.",
            w=8,
            h=6,
        ),
        ts(
            "丢包 ICMP loss",
            [
                Q(f"govnet_probe_loss_ratio{{{DEV}}}", "loss"),
                Q(f"govnet_probe_jitter_seconds{{{DEV}}}", "jitter (s)"),
            ],
            "percentunit",
            "Share of echoes lost over the probe window.",
            w=8,
            h=6,
            max_val=1,
        ),
    )
    b.add(
        ts(
            "陷阱 SNMP traps",
            [
                Q(
                    f"sum by (trap) ({increase_new('govnet_traps_received_total', DEV, '$__interval')})",
                    "{{trap}}",
                )
            ],
            "short",
            "Traps and informs from this device by name; each triggers a re-poll.",
            h=6,
            links=False,
        )
    )
    b.row("轮询健康 Poll health")
    b.add(
        ts(
            "轮询耗时与期限 Poll duration and deadline",
            [
                Q(f"govnet_poll_duration_seconds{{{DEV}}}", "duration"),
                Q(f"govnet_poll_deadline_seconds{{{DEV}}}", "deadline"),
                Q(f"govnet_poll_lateness_seconds{{{DEV}}}", "lateness"),
            ],
            "s",
            w=8,
        ),
        ts(
            "轮询失败 Failures, timeouts, missed slots",
            [
                Q(rate("govnet_poll_failures_total", DEV), "failures"),
                Q(rate("govnet_poll_timeouts_total", DEV), "timeouts"),
                Q(rate("govnet_poll_missed_total", DEV), "missed"),
            ],
            "ops",
            w=8,
        ),
        ts(
            "采集量 Polls and varbinds",
            [
                Q(rate("govnet_polls_total", DEV), "polls/s"),
                Q(rate("govnet_poll_varbinds_total", DEV), "varbinds/s"),
            ],
            "ops",
            w=8,
        ),
    )
    return b

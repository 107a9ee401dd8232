"""Long-range views on VictoriaMetrics, fed by govnet's InfluxDB writer (`<metric>_value` names)."""

from __future__ import annotations

from grafana.boards.overview import UPLINK_REGEX
from grafana.boards.promql import AGG, UPLINK
from grafana.build import OK, VICTORIA_UID, Board, Q, Rules, bar_gauge, fixed_thresholds, ts

# VictoriaMetrics stores an Influx point `m value=v` as the series `m_value` (docs/export.md).
SEL = f"{AGG},{UPLINK}"


def util_value(direction: str) -> str:
    """Aggregation uplink utilisation from the Influx-written series."""
    return (
        f"rate(govnet_if_{direction}_octets_total_value{{{SEL}}}[$__rate_interval]) * 8"
        f" / (govnet_if_speed_bps_value{{{SEL}}} > 0)"
    )


def build(rules: Rules) -> Board:
    """Months of history: availability, uplink load, peaks, reboots."""
    sat = rules.thresholds("InterfaceSaturationIn")
    b = Board(
        "govnet-longrange",
        "govnet / 长期趋势 Long range (VictoriaMetrics)",
        "Availability, uplink utilisation, CPU peaks and reboots over weeks, from VictoriaMetrics.",
        ["longrange"],
        datasource=VICTORIA_UID,
    )
    b.d.time("now-30d", "now").refresh("5m")
    b.text_var(
        "uplink",
        "上联端口别名 Uplink ifAlias regex",
        UPLINK_REGEX,
        "Regex on ifAlias that marks an aggregation switch's uplinks to the core.",
    )
    b.row("可用性 Availability")
    b.add(
        bar_gauge(
            "站点可用率 Site availability in range",
            [Q("avg by (site) (avg_over_time(govnet_up_value[$__range]))", "{{site}}", instant=True)],
            "percentunit",
            "Share of polls answered, per site, over the selected range.",
            thresholds=fixed_thresholds((None, "red"), (0.99, "orange"), (0.999, OK)),
            max_val=1,
        ),
        ts(
            "可用率趋势 Availability",
            [Q("avg by (site) (avg_over_time(govnet_up_value[$__interval]))", "{{site}}")],
            "percentunit",
            max_val=1,
            links=False,
        ),
    )
    b.row("容量 Capacity")
    b.add(
        ts(
            "汇聚上联利用率 Aggregation uplink utilisation",
            [
                Q(f"max by (device, ifname) ({util_value('in')})", "{{device}} {{ifname}} in"),
                Q(f"max by (device, ifname) ({util_value('out')})", "{{device}} {{ifname}} out"),
            ],
            "percentunit",
            "Dashed line: InterfaceSaturation rule.",
            thresholds=sat,
        ),
        bar_gauge(
            "CPU 峰值 CPU peak in range",
            [
                Q(
                    "topk(10, max by (device) (max_over_time(govnet_cpu_ratio_value[$__range])))",
                    "{{device}}",
                    instant=True,
                )
            ],
            "percentunit",
            thresholds=rules.thresholds("CpuHigh"),
            max_val=1,
        ),
        bar_gauge(
            "重启 Reboots in range",
            [
                Q(
                    "topk(10, sum by (device) (resets(govnet_uptime_seconds_value[$__range])))",
                    "{{device}}",
                    instant=True,
                )
            ],
            "short",
            "Times a device's uptime went backwards.",
            thresholds=fixed_thresholds((None, OK), (1, "orange")),
        ),
    )
    return b

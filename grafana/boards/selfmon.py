"""govnet itself: poll lateness and timeouts, scheduler load, export spool, ingest rate."""

from __future__ import annotations

from grafana.boards.promql import rate
from grafana.build import OK, Board, Q, Rules, fixed_thresholds, stat_panel, ts


def build(rules: Rules) -> Board:
    """Is the monitor keeping up? Lateness, timeouts, spool, drops."""
    del rules  # no alert rule covers govnet's own health yet; colours are fixed below
    b = Board(
        "govnet-self",
        "govnet / 自监控 govnet itself",
        "Poll lateness and timeouts, scheduler load, InfluxDB spool and drops, ingest rate.",
        ["self"],
    )
    b.row("概况 Summary")
    b.add(
        stat_panel("设备 Devices scheduled", [Q("govnet_scheduler_devices", "devices", instant=True)]),
        stat_panel(
            "不可达 Unreachable",
            [Q("govnet_scheduler_unreachable_devices", "unreachable", instant=True)],
            thresholds=fixed_thresholds((None, OK), (1, "orange")),
        ),
        stat_panel(
            "采集速率 Varbinds/s",
            [Q("govnet_scheduler_varbinds_per_second", "varbinds/s", instant=True)],
            "short",
            graph=True,
        ),
        stat_panel(
            "最大延迟 Worst poll lateness",
            [Q("max(govnet_poll_lateness_seconds)", "lateness", instant=True)],
            "s",
            thresholds=fixed_thresholds((None, OK), (1, "yellow"), (5, "red")),
        ),
        stat_panel(
            "缓存 Spool",
            [Q("govnet_influx_spool_bytes", "spool", instant=True)],
            "bytes",
            "Unsent InfluxDB records on disk: grows while the TSDB is unreachable.",
            thresholds=fixed_thresholds((None, OK), (1048576, "yellow"), (67108864, "red")),
            graph=True,
        ),
        stat_panel(
            "丢弃 Points dropped",
            [Q("govnet_influx_dropped_total", "dropped", instant=True)],
            thresholds=fixed_thresholds((None, OK), (1, "red")),
        ),
    )
    b.row("轮询 Polling")
    b.add(
        ts(
            "轮询延迟 Poll lateness",
            [
                Q("max(govnet_poll_lateness_seconds)", "max"),
                Q("quantile(0.95, govnet_poll_lateness_seconds)", "p95"),
                Q("avg(govnet_poll_lateness_seconds)", "mean"),
            ],
            "s",
            "Actual start - scheduled start, over all devices.",
            links=False,
        ),
        ts(
            "轮询耗时 Poll duration (slowest devices)",
            [Q("topk(5, govnet_poll_duration_seconds)", "{{device}}")],
            "s",
        ),
        ts(
            "超时与失败 Timeouts, failures, missed slots",
            [
                Q(f"sum({rate('govnet_poll_timeouts_total')})", "timeouts/s"),
                Q(rate("govnet_scheduler_poll_failures_total"), "failures/s"),
                Q(rate("govnet_scheduler_missed_polls_total"), "missed/s"),
            ],
            "ops",
            links=False,
        ),
        ts(
            "调度 Scheduler load",
            [
                Q(rate("govnet_scheduler_polls_total"), "polls/s"),
                Q("govnet_scheduler_inflight_polls", "in flight"),
                Q("govnet_scheduler_unreachable_devices", "unreachable"),
            ],
            "short",
            links=False,
        ),
        ts(
            "超时最多的设备 Devices with most timeouts",
            [Q(f"topk(5, {rate('govnet_poll_timeouts_total')})", "{{device}}")],
            "ops",
        ),
        ts(
            "采集速率 Ingest rate",
            [
                Q("govnet_scheduler_varbinds_per_second", "varbinds/s (60 s)"),
                Q(f"sum({rate('govnet_poll_varbinds_total')})", "varbinds/s"),
                Q(rate("govnet_influx_written_total"), "points written/s"),
            ],
            "short",
            links=False,
        ),
    )
    b.row("告警通知与采集 Notifications and ingest")
    b.add(
        ts(
            "通知 Notifications per channel",
            [
                Q(f"sum by (channel) ({rate('govnet_notifications_sent_total')})", "{{channel}} sent"),
                Q(f"sum by (channel) ({rate('govnet_notifications_failed_total')})", "{{channel}} failed"),
                Q(f"sum by (channel) ({rate('govnet_notifications_retries_total')})", "{{channel}} retried"),
            ],
            "ops",
            "Failed = refused (4xx) or given up after retries; the fallback channel takes those.",
            links=False,
        ),
        stat_panel(
            "通知失败 Notification failures in range",
            [
                Q(
                    "sum by (channel) (increase(govnet_notifications_failed_total[$__range]))",
                    "{{channel}}",
                    instant=True,
                )
            ],
            thresholds=fixed_thresholds((None, OK), (1, "red")),
            w=6,
            h=8,
            names=True,
        ),
        stat_panel(
            "告警 Alerts firing",
            [Q("sum(govnet_alerts_firing)", "firing", instant=True)],
            thresholds=fixed_thresholds((None, OK), (1, "orange")),
            w=6,
            h=8,
        ),
        ts(
            "陷阱 SNMP traps",
            [
                Q(rate("govnet_traps_datagrams_total"), "datagrams/s"),
                Q(rate("govnet_traps_rejected_total"), "rejected/s"),
                Q(rate("govnet_traps_malformed_total"), "malformed/s"),
                Q(rate("govnet_traps_unknown_source_total"), "unknown source/s"),
                Q(rate("govnet_traps_informs_total"), "informs/s"),
                Q(rate("govnet_traps_repolls_total"), "re-polls/s"),
                Q(rate("govnet_traps_confirmed_total"), "link traps confirmed/s"),
                Q(rate("govnet_traps_unconfirmed_total"), "link traps unconfirmed/s"),
                Q("govnet_traps_listening", "listening"),
            ],
            "ops",
            links=False,
        ),
        ts(
            "探测 ICMP probing",
            [
                Q(f"sum({rate('govnet_probe_sent_total')})", "echoes/s"),
                Q(f"sum({rate('govnet_probe_lost_total')})", "lost/s"),
                Q(rate("govnet_probe_rounds_total"), "rounds/s"),
                Q("count(govnet_probe_up == 0) or vector(0)", "devices not answering ICMP"),
                Q("govnet_probe_available", "raw socket open"),
            ],
            "short",
            links=False,
        ),
    )
    b.add(
        ts(
            "日志接入 Syslog ingest",
            [
                Q(rate("govnet_syslog_received_total"), "received/s"),
                Q(rate("govnet_syslog_durable_total"), "stored (fsynced)/s"),
                Q(rate("govnet_syslog_truncated_total"), "truncated/s"),
                Q(rate("govnet_syslog_udp_overflow_total"), "UDP dropped (queue full)/s"),
                Q(rate("govnet_syslog_oversized_closed_total"), "oversized frame, closed/s"),
            ],
            "short",
            links=False,
        ),
        ts(
            "日志存储 Log store",
            [
                Q("govnet_logstore_disk_bytes", "{{store}} disk"),
                Q("govnet_syslog_connections", "TCP/TLS connections"),
                Q("govnet_syslog_unknown_sources", "unknown senders"),
            ],
            "short",
            "Disk in bytes; connections and unknown senders as counts.",
            links=False,
        ),
    )
    b.row("导出 Export (InfluxDB / VictoriaMetrics)")
    b.add(
        ts(
            "缓存 Spool",
            [
                Q("govnet_influx_spool_bytes", "spool bytes"),
            ],
            "bytes",
            w=8,
            links=False,
        ),
        ts(
            "待发送 Points waiting",
            [
                Q("govnet_influx_spool_points", "in spool"),
                Q("govnet_influx_pending_points", "in memory"),
            ],
            "short",
            w=8,
            links=False,
        ),
        ts(
            "写入错误与丢弃 Write errors and drops",
            [
                Q(rate("govnet_influx_write_errors_total"), "write errors/s"),
                Q(rate("govnet_influx_dropped_total"), "dropped/s"),
                Q(rate("govnet_influx_rejected_total"), "rejected/s"),
                Q(rate("govnet_influx_invalid_samples_total"), "invalid (Influx)/s"),
                Q(rate("govnet_exporter_invalid_samples_total"), "invalid (/metrics)/s"),
            ],
            "ops",
            w=8,
            links=False,
        ),
    )
    return b

"""Data centre: database pair and replication, backups, servers, UPS."""

from __future__ import annotations

from grafana.boards.promql import (
    BACKUP_CODES,
    BACKUP_MAP,
    DB_PAIR_CODES,
    DB_PAIR_MAP,
    DB_ROLE_CODES,
    DB_ROLE_MAP,
    GROUP_CODES,
    GROUP_MAP,
    REACH_CODES,
    REACH_MAP,
    bps,
    stateset,
)
from grafana.build import (
    OK,
    Board,
    Column,
    Q,
    Rules,
    bar_gauge,
    console_page,
    device_link,
    fixed_thresholds,
    mirrored,
    stat_panel,
    state_timeline,
    table_panel,
    ts,
    up_column,
    value_map,
)

DB = 'role="db_server"'
UPS = 'role="ups"'
HOSTS = 'role=~"db_server|server"'


def build(rules: Rules) -> Board:
    """The machine room: hot-standby database pair, servers, power."""
    b = Board(
        "govnet-datacentre",
        "govnet / 数据中心 Data centre",
        "Database pair roles and replication lag, backup ages and verification, servers, UPS and power.",
        ["datacentre"],
    )
    b.row("数据库与服务器 Database pair and servers")
    b.add(
        state_timeline(
            "数据库双机 Database pair verdict",
            [
                Q(
                    stateset("govnet_ha_group_state", 'kind="database"', DB_PAIR_CODES, "group"),
                    "{{group}}",
                )
            ],
            DB_PAIR_MAP,
            "From both nodes' own view (pg_is_in_recovery, WAL receiver): normal, failed over (roles "
            "swapped but healthy), degraded, split brain, no primary, down.",
            w=12,
            h=5,
        ),
        state_timeline(
            "数据库角色 Database roles",
            [Q(stateset("govnet_db_role", "", DB_ROLE_CODES, "device"), "{{device}}")],
            DB_ROLE_MAP,
            w=12,
            h=5,
        ),
        ts(
            "复制延迟 Replication lag (time)",
            [Q("govnet_db_replication_lag_seconds", "{{device}}")],
            "s",
            "Standby: 0 when caught up, else age of the newest replayed commit. Dashed: DbReplicationLag, "
            "DbReplicationBroken rules.",
            thresholds=rules.thresholds("DbReplicationLag", "DbReplicationBroken"),
            w=8,
        ),
        ts(
            "复制延迟 Replication lag (bytes)",
            [Q("govnet_db_replication_lag_bytes", "{{device}}")],
            "bytes",
            "Primary's WAL position minus the standby's replay position.",
            w=8,
        ),
        table_panel(
            "备库状态 Standby state",
            [
                up_column("流复制 Streaming", "govnet_db_replication_streaming"),
                Column(
                    "只读 Read-only",
                    Q("govnet_db_standby_read_only"),
                    mappings=value_map({1: ("yes 是", OK), 0: ("no 否", "red")}),
                ),
                Column(
                    "回放暂停 Replay paused",
                    Q("govnet_db_wal_replay_paused"),
                    mappings=value_map({0: ("no 否", OK), 1: ("paused 暂停", "orange")}),
                ),
                Column("时间线 Timeline", Q("govnet_db_timeline")),
                Column("角色切换 Role changes", Q("govnet_db_role_changes_total")),
            ],
            ["device", "group"],
            "Standby health; timeline grows at every promotion, so a failover stays visible.",
            w=8,
            h=8,
        ),
        state_timeline(
            "双机热备组 HA groups (database pair)",
            [Q(stateset("govnet_redundancy_state", 'kind="ha"', GROUP_CODES, "group"), "{{group}}")],
            GROUP_MAP,
            "Ok while both members of each HA group are up (topology service).",
            thresholds=fixed_thresholds((None, OK), (1, "orange"), (2, "red")),
            w=12,
            h=5,
        ),
        state_timeline(
            "数据库主机 Database hosts",
            [Q(stateset("govnet_reachability_state", DB, REACH_CODES, "device"), "{{device}}")],
            REACH_MAP,
            w=12,
            h=5,
        ),
        table_panel(
            "主机一览 Hosts",
            [
                up_column("轮询 Answering", f"govnet_up{{{HOSTS}}}"),
                Column(
                    "CPU",
                    Q(f"max by (device, site, role, vendor) (govnet_cpu_ratio{{{HOSTS}}})"),
                    "percentunit",
                    rules.thresholds("CpuHigh"),
                ),
                Column(
                    "内存 Memory",
                    Q(f"max by (device, site, role, vendor) (govnet_memory_used_ratio{{{HOSTS}}})"),
                    "percentunit",
                    rules.thresholds("MemoryHigh"),
                ),
                Column("运行时间 Uptime", Q(f"govnet_uptime_seconds{{{HOSTS}}}"), "s"),
            ],
            ["device", "site", "role", "vendor"],
            "Database servers first (role), then the other servers.",
            h=8,
        ),
        ts(
            "数据库 CPU Database CPU",
            [Q(f"avg by (device) (govnet_cpu_ratio{{{DB}}})", "{{device}}")],
            "percentunit",
            "Mean over processors. Dashed line: CpuHigh rule.",
            thresholds=rules.thresholds("CpuHigh"),
            max_val=1,
        ),
        mirrored(
            "数据库网络 Database traffic",
            f"sum by (device) ({bps('in', DB)})",
            f"-sum by (device) ({bps('out', DB)})",
            "{{device}}",
            "bps",
            "Replication and client traffic; in above zero, out below.",
        ),
    )
    # The backup series name the inventory's backup job in `backup_job` (not `job`, which Prometheus
    # owns as its target label and would rename to `backup_job`).
    b.row("备份 Backups")
    b.add(
        table_panel(
            "备份作业 Backup jobs",
            [
                Column(
                    "结论 Verdict",
                    Q(stateset("govnet_backup_state", "", BACKUP_CODES, "backup_job, device, mode")),
                    mappings=BACKUP_MAP,
                ),
                Column("距今 Age", Q("govnet_backup_age_seconds"), "s", rules.thresholds("BackupStale")),
                Column("大小 Size", Q("govnet_backup_size_bytes"), "bytes"),
                Column("基线 Baseline size", Q("govnet_backup_size_baseline_bytes"), "bytes"),
                Column(
                    "上次成功 Last good backup",
                    Q("govnet_backup_last_success_timestamp_seconds * 1000"),
                    "dateTimeFromNow",
                ),
                Column(
                    "校验 Checksum",
                    Q("govnet_backup_checksum_ok"),
                    mappings=value_map({1: ("ok 一致", OK), 0: ("changed 不一致", "red")}),
                ),
                Column("文件数 Files", Q("govnet_backup_files")),
            ],
            ["backup_job", "device", "mode"],
            "Every backup job of the inventory (daily automatic and manual): newest file's age against the "
            "BackupStale rule, size against its baseline, checksum re-verified.",
            h=8,
            sort_by="结论 Verdict",
            descending=True,
        ).data_links(
            [
                device_link(),
                console_page(
                    "govnet 控制台：备份 Backups of ${__field.labels.device}",
                    "/backups/${__field.labels.device}",
                ),
            ]
        ),
        ts(
            "备份距今 Backup age",
            [Q("govnet_backup_age_seconds", "{{backup_job}}")],
            "s",
            "Dashed line: BackupStale rule.",
            thresholds=rules.thresholds("BackupStale"),
        ),
        bar_gauge(
            "备份正常 Backups OK",
            [Q("govnet_backup_ok", "{{backup_job}}", instant=True)],
            "none",
            "1 if the newest backup is present, fresh, of normal size and its checksum holds.",
            thresholds=fixed_thresholds((None, "red"), (1, OK)),
            max_val=1,
        ),
    )
    b.row("UPS 与供电 UPS and power")
    b.add(
        stat_panel(
            "供电 Power source",
            [Q(f"govnet_ups_on_battery{{{UPS}}}", "{{device}}", instant=True)],
            desc="UpsOnBattery rule colour while the output runs from battery.",
            mappings=value_map({0: ("市电 mains", OK), 1: ("电池 on battery", rules.colour("UpsOnBattery"))}),
            thresholds=rules.thresholds("UpsOnBattery"),
            w=6,
            names=True,
            links=True,
        ),
        stat_panel(
            "电池电量 Battery charge",
            [Q(f"govnet_ups_battery_charge_ratio{{{UPS}}}", "{{device}}", instant=True)],
            "percentunit",
            "UpsBatteryLow rule colour below its threshold.",
            thresholds=rules.thresholds("UpsBatteryLow"),
            w=6,
            names=True,
            links=True,
        ),
        stat_panel(
            "剩余时间 Runtime left",
            [Q(f"govnet_ups_battery_runtime_seconds{{{UPS}}}", "{{device}}", instant=True)],
            "s",
            thresholds=fixed_thresholds((None, "red"), (600, "orange"), (1800, OK)),
            w=6,
            names=True,
            links=True,
        ),
        stat_panel(
            "电池温度 Battery temperature",
            [Q(f"govnet_ups_battery_temperature_celsius{{{UPS}}}", "{{device}}", instant=True)],
            "celsius",
            thresholds=fixed_thresholds((None, OK), (35, "orange"), (45, "red")),
            w=6,
            names=True,
            links=True,
        ),
        ts(
            "负载 UPS load",
            [Q(f"govnet_ups_load_ratio{{{UPS}}}", "{{device}} {{phase}}")],
            "percentunit",
            w=12,
            max_val=1,
        ),
        ts(
            "电压 Voltage",
            [
                Q(f"govnet_ups_input_voltage_volts{{{UPS}}}", "{{device}} in {{phase}}"),
                Q(f"govnet_ups_output_voltage_volts{{{UPS}}}", "{{device}} out {{phase}}"),
            ],
            "volt",
            w=12,
            min_val=None,
        ),
    )
    return b

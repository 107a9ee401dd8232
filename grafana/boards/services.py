"""Government websites and services: up/down, phase timings, certificates, content changes, defacement."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from grafana.build import (
    OK,
    UP_DOWN,
    Board,
    Column,
    Q,
    Rules,
    console_page,
    fixed_thresholds,
    stat_panel,
    state_timeline,
    table_panel,
    ts,
    value_map,
)

SEL = 'service=~"$service"'
DAY = 86400.0


def _page() -> db.DashboardLink:
    return console_page(
        "govnet 控制台：服务 ${__field.labels.service}", "/services/${__field.labels.service}"
    )


def build(rules: Rules) -> Board:
    """Every service check: is it up, how fast, whose certificate expires, which page was defaced."""
    b = Board(
        "govnet-services",
        "govnet / 网站与服务 Websites and services",
        "Checks of government websites and systems (HTTP/HTTPS, TLS, DNS, TCP) and the defacement watch.",
        ["services", "websites"],
    )
    b.query_var(
        "service", "服务 Service", "label_values(govnet_service_up, service)", multi=True, include_all=True
    )
    # Days left: the 7-day rule's colour below 7, the 30-day rule's colour below 30, green above.
    cert_days = fixed_thresholds(
        (None, rules.colour("CertificateExpiresCritical")),
        (rules.value("CertificateExpiresCritical") / DAY, rules.colour("CertificateExpiresSoon")),
        (rules.value("CertificateExpiresSoon") / DAY, OK),
    )
    b.row("概览 Overview")
    b.add(
        stat_panel(
            "不可用 Down",
            [Q(f"count(govnet_service_up{{{SEL}}} == 0) or vector(0)", instant=True)],
            desc="Services whose last check failed (ServiceDown rule after 60 s).",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("ServiceDown"))),
        ),
        stat_panel(
            "疑似篡改 Defacement",
            [Q(f"count(govnet_service_defacement_suspected{{{SEL}}} == 1) or vector(0)", instant=True)],
            desc="Forbidden words or new external script/iframe hosts on a watched page (level III).",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("DefacementSuspected"))),
        ),
        stat_panel(
            "内容变化 Content changed",
            [Q(f"count(govnet_service_content_changed{{{SEL}}} == 1) or vector(0)", instant=True)],
            desc="Pages whose visible text differs from the accepted baseline.",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("ServiceContentChanged"))),
        ),
        stat_panel(
            "证书 30 天内到期 Certs < 30 d",
            [
                Q(
                    f"count(govnet_service_cert_expires_in_seconds{{{SEL}}} < "
                    f"{rules.value('CertificateExpiresSoon'):g}) or vector(0)",
                    instant=True,
                )
            ],
            desc="Certificates expiring within the CertificateExpiresSoon threshold.",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("CertificateExpiresSoon"))),
        ),
        stat_panel(
            "DNS 解析异常 DNS wrong",
            [Q(f"count(govnet_service_dns_answer_ok{{{SEL}}} == 0) or vector(0)", instant=True)],
            desc="DNS servers answering other addresses than expected (DnsAnswerWrong).",
            thresholds=fixed_thresholds((None, OK), (1, rules.colour("DnsAnswerWrong"))),
        ),
        stat_panel(
            "服务数 Services",
            [Q(f"count(govnet_service_up{{{SEL}}}) or vector(0)", instant=True)],
            desc="Service checks reporting.",
        ),
    )
    b.add(
        table_panel(
            "服务状态 Services",
            [
                Column(
                    "可用 Up",
                    Q(f"govnet_service_up{{{SEL}}}"),
                    mappings=UP_DOWN,
                    thresholds=rules.thresholds("ServiceDown"),
                ),
                Column("HTTP", Q(f"govnet_service_http_status_code{{{SEL}}}")),
                Column("耗时 Total", Q(f'govnet_service_duration_seconds{{{SEL},phase="total"}}'), "s"),
                Column(
                    "证书剩余 Cert days",
                    Q(f"govnet_service_cert_expires_in_seconds{{{SEL}}} / {DAY:g}"),
                    "d",
                    thresholds=cert_days,
                ),
                Column(
                    "内容变化 Changed",
                    Q(f"govnet_service_content_changed{{{SEL}}}"),
                    thresholds=fixed_thresholds((None, OK), (1, rules.colour("ServiceContentChanged"))),
                ),
            ],
            ["service", "type", "unit", "site"],
            "One row per service; click a row for its console page (last diff, certificate, baselines).",
            h=10,
            sort_by="可用 Up",
        ).data_links([_page()]),
    )
    b.row("可用性与耗时 Availability and timings")
    b.add(
        state_timeline(
            "可用性 Up",
            [Q(f"govnet_service_up{{{SEL}}}", "{{service}}")],
            UP_DOWN,
            "1 when the check passed every expectation.",
            thresholds=rules.thresholds("ServiceDown"),
        ),
        ts(
            "总耗时 Total time",
            [Q(f'govnet_service_duration_seconds{{{SEL},phase="total"}}', "{{service}}")],
            "s",
            "Whole check: DNS, connect, TLS, first byte and body.",
            links=False,
        ),
        ts(
            "分阶段耗时 Phases",
            [Q(f'avg by (phase) (govnet_service_duration_seconds{{{SEL},phase!="total"}})', "{{phase}}")],
            "s",
            "DNS / connect / TLS / first byte, averaged over the selected services.",
            links=False,
            stack=True,
        ),
    )
    b.row("证书 Certificates")
    b.add(
        ts(
            "证书剩余天数 Certificate days left",
            [Q(f"govnet_service_cert_expires_in_seconds{{{SEL}}} / {DAY:g}", "{{service}}")],
            "d",
            "Dashed lines: CertificateExpiresSoon (30 d) and CertificateExpiresCritical (7 d).",
            thresholds=cert_days,
            links=False,
        ),
        table_panel(
            "证书 Certificates",
            [
                Column("", Q(f"govnet_service_cert_info{{{SEL}}}")),
                Column(
                    "链 Chain",
                    Q(f"govnet_service_cert_chain_ok{{{SEL}}}"),
                    mappings=value_map({1: ("ok", OK), 0: ("untrusted 不可信", "red")}),
                ),
                Column(
                    "主机名 Host name",
                    Q(f"govnet_service_cert_hostname_ok{{{SEL}}}"),
                    mappings=value_map({1: ("ok", OK), 0: ("mismatch 不符", "red")}),
                ),
            ],
            ["service", "issuer", "protocol"],
            "Issuer, negotiated protocol, chain (system store or the configured CA) and host name.",
            w=12,
            h=8,
        ).data_links([_page()]),
    )
    b.row("篡改监测 Defacement watch")
    b.add(
        state_timeline(
            "疑似篡改 Defacement suspected",
            [Q(f"govnet_service_defacement_suspected{{{SEL}}}", "{{service}} {{reason}}")],
            value_map(
                {0: ("clean 正常", OK), 1: ("suspected 疑似篡改", rules.colour("DefacementSuspected"))}
            ),
            "Forbidden words (gambling, pornography...) or a new external script/iframe host.",
            w=12,
        ),
        state_timeline(
            "内容变化 Content changed",
            [Q(f"govnet_service_content_changed{{{SEL}}}", "{{service}}")],
            value_map(
                {0: ("baseline 与基线一致", OK), 1: ("changed 已变化", rules.colour("ServiceContentChanged"))}
            ),
            "Visible text differs from the accepted baseline; accept it on the console after an update.",
            w=12,
        ),
    )
    return b

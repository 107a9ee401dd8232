"""A thin typed layer over grafana-foundation-sdk: panels, thresholds from alert rules, links, layout."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import bargauge, prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

# Provisioned datasource uids (grafana/provisioning/datasources/govnet.yaml).
PROMETHEUS_UID = "govnet-prometheus"
VICTORIA_UID = "govnet-victoriametrics"
DATASOURCE_NAMES = {PROMETHEUS_UID: "govnet Prometheus", VICTORIA_UID: "govnet VictoriaMetrics"}
# Panels use the dashboard's `datasource` variable so one dashboard serves any Prometheus-type source.
DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
VM = dm.DataSourceRef(type_val="prometheus", uid=VICTORIA_UID)

# 国家网络安全事件应急预案 warning colours, the same the alert rules' levels use.
LEVEL_COLOURS = {"I": "red", "II": "orange", "III": "yellow", "IV": "blue"}
OK = "green"
# Per emergency level series (legend = the level): stats turn the level's colour from 1, lines wear it.
LEVEL_OVERRIDES: list[tuple[str, str]] = list(LEVEL_COLOURS.items())

DEVICE_UID = "govnet-device"
RATE = "$__rate_interval"

Panel = (
    timeseries.Panel | stat.Panel | table.Panel | bargauge.Panel | statetimeline.Panel  # the kinds used
)


@dataclass(frozen=True)
class Q:
    """One PromQL query of a panel: instant queries feed stats, gauges and tables."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


class Rules:
    """Alert rules (alerts/rules/default.yaml) read for their thresholds and levels."""

    def __init__(self, path: Path) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.by_name: dict[str, dict[str, Any]] = {r["alert"]: r for r in data["rules"]}

    def value(self, alert: str) -> float:
        """The threshold value of a metric rule; KeyError if the rule is gone (the generator then fails)."""
        return float(self.by_name[alert]["condition"]["value"])

    def colour(self, alert: str) -> str:
        """The warning colour of the rule's level."""
        return LEVEL_COLOURS[str(self.by_name[alert]["level"])]

    def thresholds(self, *alerts: str) -> db.ThresholdsConfig:
        """Steps green below and the level colour from each rule's value up (`>`), or below it (`<`, `==`).

        `== 0` rules (failed fan, HA peer) colour 0 and green from 1; `== 1` rules colour from 1.
        """
        steps: dict[float | None, str] = {None: OK}
        for alert in alerts:
            cond = self.by_name[alert]["condition"]
            value, colour, op = float(cond["value"]), self.colour(alert), cond["op"]
            if op in (">", ">="):
                steps[value] = colour
            elif op == "<":
                steps[None], steps[value] = colour, OK
            elif op == "==" and value == 0:
                steps[None], steps[1.0] = colour, OK
            elif op == "==":
                steps[value] = colour
            else:
                raise ValueError(f"{alert}: no threshold colouring for op {op!r}")
        ordered = sorted(steps.items(), key=lambda kv: -1e300 if kv[0] is None else kv[0])
        return (
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=v, color=c) for v, c in ordered])
        )


def fixed_thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """Thresholds not tied to an alert rule (states, sizes)."""
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def value_map(mapping: dict[int, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Numeric states to text and colour, e.g. {1: ("up", "green")}."""
    return [
        dm.ValueMap(
            options={
                str(k): dm.ValueMappingResult(text=text, color=colour, index=i)
                for i, (k, (text, colour)) in enumerate(mapping.items())
            }
        )
    ]


UP_DOWN = value_map({1: ("up 正常", OK), 0: ("down 中断", "red")})


def device_link() -> db.DashboardLink:
    """Data link from a series carrying a `device` label to the device dashboard (keeps the time range)."""
    return (
        db.DashboardLink("设备详情 Device detail: ${__field.labels.device}")
        .url(
            f"/d/{DEVICE_UID}/govnet-device?var-site=$__all&var-device=${{__field.labels.device}}&${{__url_time_range}}"
        )
        .type(dm.DashboardLinkType.LINK)
    )


def console_link() -> db.DashboardLink:
    """Data link to the device's page in the govnet web console (`console` variable)."""
    return (
        db.DashboardLink("govnet 控制台 Console: ${__field.labels.device}")
        .url("${console}/devices/${__field.labels.device}")
        .type(dm.DashboardLinkType.LINK)
        .target_blank(True)
    )


def console_page(title: str, path: str) -> db.DashboardLink:
    """Data link to a page of the govnet console (`path` may use ${__field.labels.x})."""
    return db.DashboardLink(title).url("${console}" + path).type(dm.DashboardLinkType.LINK).target_blank(True)


def target(q: Q) -> prometheus.Dataquery:
    """The SDK query of `q`."""
    t = prometheus.Dataquery().expr(q.expr).legend_format(q.legend or "__auto")
    t = t.instant() if q.instant else t.range()
    if q.table:
        t = t.format(pm.PromQueryFormat.TABLE)
    return t


def _common(p: Any, title: str, qs: Sequence[Q], desc: str, w: int, h: int, links: bool) -> None:
    p.title(title).description(desc).datasource(DS).span(w).height(h)
    for q in qs:
        p.with_target(target(q))
    if links:
        p.data_links([device_link(), console_link()])


def ts(
    title: str,
    qs: Sequence[Q],
    unit: str,
    desc: str = "",
    *,
    thresholds: db.ThresholdsConfig | None = None,
    w: int = 12,
    h: int = 8,
    links: bool = True,
    min_val: float | None = 0,
    max_val: float | None = None,
    stack: bool = False,
    overrides: Sequence[tuple[str, str]] = (),
    legend: bool = True,
) -> timeseries.Panel:
    """A time series panel; thresholds, when given, are drawn as dashed lines."""
    p = timeseries.Panel()
    _common(p, title, qs, desc, w, h, links)
    p.unit(unit).fill_opacity(10).line_width(1).show_points(cm.VisibilityMode.NEVER)
    p.legend(
        cb.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE if legend else cm.LegendDisplayMode.LIST)
        .placement(cm.LegendPlacement.BOTTOM if legend else cm.LegendPlacement.RIGHT)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"] if legend else [])
    )
    for name, colour in overrides:
        p.override_by_name(
            name, [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": colour})]
        )
    p.tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    if min_val is not None:
        p.min(min_val)
    if max_val is not None:
        p.max(max_val)
    if thresholds is not None:
        p.thresholds(thresholds).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphTresholdsStyleMode.DASHED)
        )
    if stack:
        p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
    return p


def stat_panel(
    title: str,
    qs: Sequence[Q],
    unit: str = "none",
    desc: str = "",
    *,
    thresholds: db.ThresholdsConfig | None = None,
    mappings: list[dm.ValueMapping] | None = None,
    w: int = 4,
    h: int = 4,
    links: bool = False,
    names: bool = False,
    graph: bool = False,
    overrides: Sequence[tuple[str, str]] = (),
) -> stat.Panel:
    """A stat panel (one big value per series), coloured by thresholds or value mappings."""
    p = stat.Panel()
    _common(p, title, qs, desc, w, h, links)
    p.unit(unit).thresholds(thresholds or fixed_thresholds((None, OK)))
    p.color_mode(cm.BigValueColorMode.BACKGROUND)
    p.graph_mode(cm.BigValueGraphMode.AREA if graph else cm.BigValueGraphMode.NONE)
    p.text_mode(cm.BigValueTextMode.VALUE_AND_NAME if names else cm.BigValueTextMode.VALUE)
    p.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if mappings:
        p.mappings(mappings)
    for name, colour in overrides:
        steps = fixed_thresholds((None, OK), (1, colour)).build()
        p.override_by_name(name, [dm.DynamicConfigValue(id_val="thresholds", value=steps)])
    return p


def bar_gauge(
    title: str,
    qs: Sequence[Q],
    unit: str,
    desc: str = "",
    *,
    thresholds: db.ThresholdsConfig | None = None,
    w: int = 12,
    h: int = 8,
    min_val: float | None = 0,
    max_val: float | None = None,
) -> bargauge.Panel:
    """Horizontal bars, one per series (rankings, shares)."""
    p = bargauge.Panel()
    _common(p, title, qs, desc, w, h, True)
    p.unit(unit).thresholds(thresholds or fixed_thresholds((None, OK)))
    p.orientation(cm.VizOrientation.HORIZONTAL).display_mode(cm.BarGaugeDisplayMode.GRADIENT)
    p.reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if min_val is not None:
        p.min(min_val)
    if max_val is not None:
        p.max(max_val)
    return p


def state_timeline(
    title: str,
    qs: Sequence[Q],
    mappings: list[dm.ValueMapping],
    desc: str = "",
    *,
    thresholds: db.ThresholdsConfig | None = None,
    w: int = 24,
    h: int = 8,
) -> statetimeline.Panel:
    """States over time (HA roles, link states), one lane per series."""
    p = statetimeline.Panel()
    _common(p, title, qs, desc, w, h, True)
    p.mappings(mappings).thresholds(thresholds or fixed_thresholds((None, OK)))
    p.show_value(cm.VisibilityMode.AUTO).merge_values(True).fill_opacity(80)
    return p


@dataclass(frozen=True)
class Column:
    """A table column fed by one instant query (`Value #<refId>` after the merge)."""

    name: str
    q: Q
    unit: str = "none"
    thresholds: db.ThresholdsConfig | None = None
    mappings: list[dm.ValueMapping] | None = None


def mirrored(title: str, expr_in: str, expr_out: str, legend: str, unit: str, desc: str) -> timeseries.Panel:
    """In above zero, out below: `expr_out` comes negated (`-sum by (...) (...)`), the legends say which."""
    return ts(title, [Q(expr_in, f"{legend} in"), Q(expr_out, f"{legend} out")], unit, desc, min_val=None)


def up_column(name: str, expr: str) -> Column:
    """A column of a 1/0 state (answering, streaming, link up): shown as up in green, down in red."""
    return Column(name, Q(expr), mappings=UP_DOWN, thresholds=fixed_thresholds((None, "red"), (1, OK)))


def table_panel(
    title: str,
    columns: Sequence[Column],
    keep: Sequence[str],
    desc: str = "",
    *,
    w: int = 24,
    h: int = 10,
    sort_by: str | None = None,
    descending: bool = False,
) -> table.Panel:
    """A table joining instant queries on their labels; `keep` are the label columns shown first."""
    p = table.Panel()
    qs = [Column(c.name, Q(c.q.expr, c.q.legend, instant=True, table=True), c.unit) for c in columns]
    _common(p, title, [c.q for c in qs], desc, w, h, True)
    refs = [chr(ord("A") + i) for i in range(len(columns))]
    names = {f"Value #{r}": c.name for r, c in zip(refs, columns, strict=True)}
    order = {name: i for i, name in enumerate([*keep, *names])}
    p.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
    p.with_transformation(
        dm.DataTransformerConfig(
            id_val="organize",
            options={
                # Columns without a name only join their labels in (the identity table's info metric).
                "excludeByName": {"Time": True, **{v: True for v, name in names.items() if not name}},
                "indexByName": order,
                "renameByName": names,
            },
        )
    )
    p.cell_height(cm.TableCellHeight.SM)
    for r, c in zip(refs, columns, strict=True):
        props = [dm.DynamicConfigValue(id_val="unit", value=c.unit)]
        if c.thresholds is not None:
            props.append(dm.DynamicConfigValue(id_val="thresholds", value=c.thresholds.build()))
            props.append(
                dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})
            )
        if c.mappings:
            props.append(dm.DynamicConfigValue(id_val="mappings", value=c.mappings))
        p.override_by_name(f"Value #{r}", props)
    if sort_by is not None:
        p.sort_by([cb.TableSortByFieldState().display_name(sort_by).desc(descending)])
    return p


@dataclass
class Board:
    """A dashboard being built: common variables, links, rows and panels."""

    uid: str
    title: str
    description: str
    tags: Sequence[str] = ()
    datasource: str = PROMETHEUS_UID

    def __post_init__(self) -> None:
        self.d = (
            db.Dashboard(self.title)
            .uid(self.uid)
            .description(self.description)
            .tags(["govnet", *self.tags])
            .refresh("30s")
            .time("now-6h", "now")
            .timezone("browser")
            .tooltip(dm.DashboardCursorSync.CROSSHAIR)
            .editable()
            .with_variable(
                db.DatasourceVariable("datasource")
                .label("数据源 Datasource")
                .type("prometheus")
                .current(
                    dm.VariableOption(
                        selected=True, text=DATASOURCE_NAMES[self.datasource], value=self.datasource
                    )
                )
            )
            .with_variable(
                db.TextBoxVariable("console")
                .label("govnet 控制台 URL")
                .description("Base URL of the govnet web console, used by panel links.")
                .default_value("http://127.0.0.1:9820")
            )
            .link(
                db.DashboardLink("govnet")
                .type(dm.DashboardLinkType.DASHBOARDS)
                .tags(["govnet"])
                .as_dropdown(True)
                .include_vars(False)
                .keep_time(True)
            )
            .link(
                db.DashboardLink("govnet 控制台 Console")
                .type(dm.DashboardLinkType.LINK)
                .url("${console}")
                .icon("external link")
                .target_blank(True)
            )
        )

    def query_var(
        self, name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False
    ) -> Board:
        """A `label_values(...)` variable, refreshed when the time range changes."""
        v = (
            db.QueryVariable(name)
            .label(label)
            .query(query)
            .datasource(DS)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dm.VariableSort.ALPHABETICAL_ASC)
            .multi(multi)
            .include_all(include_all)
        )
        if include_all:
            v = v.all_value(".*")
        self.d.with_variable(v)
        return self

    def text_var(self, name: str, label: str, default: str, desc: str) -> Board:
        """A free-text variable (regexes an operator may adapt to the site's naming)."""
        self.d.with_variable(db.TextBoxVariable(name).label(label).default_value(default).description(desc))
        return self

    def row(self, title: str, repeat: str | None = None) -> Board:
        """Start a row; `repeat` repeats it (and its panels) for each value of that variable."""
        r = db.Row(title)
        if repeat:
            r = r.repeat(repeat)
        self.d.with_row(r)
        return self

    def add(self, *panels: Any) -> Board:
        """Append panels (laid out left to right, wrapping at 24 columns)."""
        for p in panels:
            self.d.with_panel(p)
        return self

    def to_json(self) -> dict[str, Any]:
        """The dashboard JSON with stable panel ids and query refIds (the SDK leaves them unset)."""
        data: dict[str, Any] = json.loads(json.dumps(self.d.build(), cls=JSONEncoder))
        next_id = 1
        for panel in walk_panels(data):
            panel["id"] = next_id
            next_id += 1
            for i, t in enumerate(panel.get("targets", [])):
                t["refId"] = chr(ord("A") + i)
        return data


def walk_panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel of a dashboard JSON, rows and the panels inside collapsed rows included."""
    out: list[dict[str, Any]] = []
    for p in data.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out

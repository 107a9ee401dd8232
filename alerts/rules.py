"""Alert rules as YAML: a condition over samples or topology state, `for`, labels, level, text, runbook."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alerts.levels import Level
from alerts.regex import compile_linear
from core.config import Duration

Op = Literal[">", ">=", "<", "<=", "==", "!="]
Func = Literal["value", "rate", "delta", "changes", "absent", "since"]
TopoState = Literal["down", "unreachable", "degraded", "split_brain", "firmware_mismatch"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_extra_labels() -> list[dict[str, str]]:
    return [{}]


class Against(_Strict):
    """Compare with another series of the same labels instead of a constant: `value op other + offset`.

    `prefer` lists extra labels that pick the other series, first found wins (a device's low warning
    threshold, else its low alarm threshold); `default` is used when none exists (None: no alert).
    """

    metric: str
    prefer: list[dict[str, str]] = Field(default_factory=_no_extra_labels)
    default: float | None = None
    offset: float = 0.0


class Requires(_Strict):
    """Only while another metric's series sharing the `by` labels meets `op value` (e.g. the port is up).

    A series with no such partner is not active: an optic on a port govnet has no status for is not
    judged (right or absent).
    """

    metric: str
    by: list[str] = Field(min_length=1)  # (not `on`: YAML 1.1 reads a bare `on` key as true)
    op: Op = "=="
    value: float = 1.0


class Condition(_Strict):
    """What makes an alert active: `func(metric{match}[window]) * scale / per` op value, or topology."""

    metric: str | None = None
    match: dict[str, str] = Field(default_factory=dict)
    func: Func = "value"
    window: Duration = 300.0
    scale: float = 1.0
    per: str | None = None  # divide by this metric's series with the same labels (e.g. interface speed)
    op: Op = ">"
    value: float = 0.0
    against: Against | None = None  # instead of `value`: the same labels' series of another metric
    requires: Requires | None = None  # and a partner series (same `by` labels) meets a condition
    topology: TopoState | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        if (self.metric is None) == (self.topology is None):
            raise ValueError("a condition needs exactly one of 'metric' or 'topology'")
        for pattern in self.match.values():
            compile_linear(pattern)  # refused here (RE2 syntax, linear time), not at evaluation
        return self


class Rule(_Strict):
    """One alerting rule."""

    alert: str
    condition: Condition
    for_: Duration | None = Field(None, alias="for")
    keep_firing_for: Duration | None = None
    level: Level
    severity: Literal["critical", "warning", "info"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str
    description: str = ""
    runbook: list[str] = Field(min_length=1)
    page: bool = True  # False: shown on the console, never paged (e.g. unreachable devices)
    # Only when the event did not happen inside a maintenance window covering the alert's labels
    # (event time = the metric's value for `func: since`, else the evaluation time).
    outside_maintenance: bool = False
    group_by: list[str] = Field(default_factory=lambda: ["device"])

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("alert")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("alert names are letters, digits and '_' starting with a letter")
        return v

    @property
    def for_seconds(self) -> float:
        """Pending time before firing (0 when absent)."""
        return self.for_ or 0.0

    @property
    def keep_seconds(self) -> float:
        """How long the alert keeps firing after its condition clears."""
        return self.keep_firing_for or 0.0


class RuleFile(_Strict):
    """A rule file: `rules: [...]`."""

    rules: list[Rule]


class RuleError(Exception):
    """A rule file is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _validate_templates(rule: Rule) -> list[str]:
    from alerts.render import template_problem  # local: render imports jinja2 lazily for the CLI

    problems = []
    sources = {"summary": rule.summary, "description": rule.description}
    sources.update({f"runbook[{i}]": step for i, step in enumerate(rule.runbook)})
    for name, source in sources.items():
        problem = template_problem(source)
        if problem:
            problems.append(f"{rule.alert}.{name}: {problem}")
    return problems


def parse_rules(data: Any, source: str = "<rules>") -> list[Rule]:
    """Validate a loaded rule document; raises RuleError with `source: path: message` lines."""
    try:
        parsed = RuleFile.model_validate(data)
    except ValidationError as exc:
        raise RuleError(
            [f"{source}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from None
    problems: list[str] = []
    seen: set[str] = set()
    for rule in parsed.rules:
        if rule.alert in seen:
            problems.append(f"{source}: duplicate alert name {rule.alert}")
        seen.add(rule.alert)
        problems.extend(f"{source}: {p}" for p in _validate_templates(rule))
    if problems:
        raise RuleError(problems)
    return parsed.rules


def load_rules(*paths: Path) -> list[Rule]:
    """Load and validate rule files (YAML)."""
    rules: list[Rule] = []
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise RuleError([f"{path}{where}: cannot read rules ({type(exc).__name__})"]) from None
        rules.extend(parse_rules(data, str(path)))
    names = [r.alert for r in rules]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise RuleError([f"duplicate alert name across files: {', '.join(dups)}"])
    return rules


DEFAULT_RULES = Path(__file__).parent / "rules" / "default.yaml"

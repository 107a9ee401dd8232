"""Incidents: alerts grouped for humans, with acknowledgement, escalation and reporting deadlines."""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts.levels import REPORT_DEADLINE_SECONDS, Level
from alerts.state import AlertState

REMIND_BEFORE = 900.0  # remind 15 minutes before the reporting deadline, and again when it passes


@dataclass
class Incident:
    """A group of alerts (by the rule's group_by labels) handled as one page."""

    id: str
    key: tuple[tuple[str, str], ...]
    opened_at: float
    level: Level
    report_category: str = "other"
    alerts: dict[tuple[str, tuple[tuple[str, str], ...]], AlertState] = field(default_factory=dict)
    affected: set[str] = field(default_factory=set)  # devices unreachable behind this incident's cause
    acked_by: str | None = None
    ack_comment: str = ""
    acked_at: float | None = None
    escalation_step: int = 0
    reported_by: str | None = None
    reported_at: float | None = None
    reminders: set[str] = field(default_factory=set)
    flap_notified: bool = False
    notices: int = 0  # notifications produced so far; numbers them for the notification log
    resolved_at: float | None = None

    @property
    def open(self) -> bool:
        """True until every alert in it resolved."""
        return self.resolved_at is None

    def live(self) -> bool:
        """True while some alert in it fires or flaps."""
        return any(a.state == "firing" or a.flapping for a in self.alerts.values())

    def acknowledge(self, owner: str, comment: str, now: float) -> None:
        """Someone owns it: escalation stops; the resolved notice is still sent."""
        if not owner.strip():
            raise ValueError("an acknowledgement needs an owner")
        self.acked_by, self.ack_comment, self.acked_at = owner, comment, now

    def mark_reported(self, by: str, now: float) -> None:
        """The event was reported to the authorities: deadline reminders stop."""
        self.reported_by, self.reported_at = by, now

    @property
    def report_deadline(self) -> float | None:
        """When the report is due (level III and above), else None."""
        if not self.level.must_report:
            return None
        return self.opened_at + REPORT_DEADLINE_SECONDS.get(
            self.report_category, REPORT_DEADLINE_SECONDS["other"]
        )

    def due_reminders(self, now: float) -> list[str]:
        """Reminder kinds due at `now` and not yet sent: `report_due` then `report_overdue`."""
        deadline = self.report_deadline
        if deadline is None or self.reported_at is not None:
            return []
        due = []
        if now >= deadline - REMIND_BEFORE and "report_due" not in self.reminders and now < deadline:
            due.append("report_due")
        if now >= deadline and "report_overdue" not in self.reminders:
            due.append("report_overdue")
        self.reminders.update(due)
        return due

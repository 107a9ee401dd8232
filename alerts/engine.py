"""The alert engine: samples in, evaluated at a time passed in, notifications out.

Pipeline per evaluation: rules -> state machine (flapping) -> topology inhibition -> silences ->
incidents (group) -> acknowledgement / escalation / reporting deadlines -> rendered notifications.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from alerts import conditions
from alerts.incidents import Incident
from alerts.inhibit import NetworkState, inhibitor, network_state
from alerts.levels import REPORT_CATEGORY_ZH, Level
from alerts.maintenance import MaintenanceWindow
from alerts.oncall import EscalationPolicy
from alerts.persist import AlertStore, incident_to_json, silence_from_json, silence_to_json
from alerts.render import render_file, render_string
from alerts.rules import Rule
from alerts.series import Labels, SeriesStore, matches
from alerts.silences import Silence, SilenceSet
from alerts.state import AlertState
from core.samples import Sample
from inventory.topology import Topology

AlertKey = tuple[str, Labels]
CST = timezone(timedelta(hours=8), "CST")
RESOLVED_RETENTION = 3600.0
# Series or states handled between two hand-backs of the event loop in `evaluate_yielding` (a few ms of
# work here): one rule over 48,000 interfaces no longer holds the loop for itself.
SLICE = 250
MAX_DETAIL_LINES = 20
# Rule name -> lines to show under a firing alert (a page's text diff, the forbidden words found):
# evidence held by the service that measured it, not a label. Lines are escaped like any other text.
DetailProvider = Callable[[dict[str, str]], list[str]]
INTERNAL_PREFIX = "\x00"  # store keys of internal sources: never a device name


@dataclass(frozen=True)
class Notification:
    """One message to send: what kind, about which incident, to whom, and the rendered text."""

    kind: str  # firing | update | flapping | resolved | escalation | report_due | report_overdue
    incident_id: str
    level: Level
    recipients: tuple[str, ...]
    title: str
    text: str
    at: float
    labels: dict[str, str] = field(default_factory=dict)
    alerts: tuple[dict[str, object], ...] = ()  # per alert: status, labels, annotations, startsAt, endsAt
    seq: int = 0  # n-th notification of this incident

    @property
    def dedup_key(self) -> str:
        """Identity in the notification log: the same key is never sent twice."""
        return f"{self.incident_id}#{self.seq}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping (the outbox row)."""
        return {
            "kind": self.kind, "incident_id": self.incident_id, "level": self.level.value,
            "recipients": list(self.recipients), "title": self.title, "text": self.text, "at": self.at,
            "labels": self.labels, "alerts": list(self.alerts), "seq": self.seq,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Notification:
        """Inverse of to_json."""
        return cls(
            d["kind"], d["incident_id"], Level(d["level"]), tuple(d["recipients"]), d["title"], d["text"],
            d["at"], dict(d["labels"]), tuple(d["alerts"]), d["seq"],
        )  # fmt: skip


@dataclass(frozen=True)
class AlertView:
    """An alert as the console shows it."""

    alert: str
    labels: dict[str, str]
    state: str
    value: float
    since: float | None
    inhibited_by: str | None
    silenced_by: str | None
    flapping: bool
    summary: str


def format_time(ts: float) -> str:
    """Beijing time, minute precision."""
    return datetime.fromtimestamp(ts, UTC).astimezone(CST).strftime("%Y-%m-%d %H:%M")


def iso_time(ts: float) -> str:
    """RFC 3339 UTC, as Alertmanager payloads carry it."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Series the engine reads itself: device state and labels, links, HA roles, firmware versions.
ENGINE_METRICS = ("govnet_up", "govnet_if_oper_up", "govnet_ha_role", "govnet_device_info")
WINDOWED = ("rate", "delta", "changes")


def kept_metrics(rules: Sequence[Rule]) -> dict[str, float]:
    """The metrics the rules and the engine read, each with the seconds of history it needs (0: the
    latest point): a window's length plus a minute (the slack every history had) for rate, delta and
    changes. The engine's store keeps nothing else: most series of a poll are never read by a rule."""
    keep = dict.fromkeys(ENGINE_METRICS, 0.0)
    for rule in rules:
        cond = rule.condition
        if cond.metric is None:
            continue
        need = cond.window + 60.0 if cond.func in WINDOWED else 0.0
        keep[cond.metric] = max(keep.get(cond.metric, 0.0), need)
        partners = [cond.per, cond.against.metric if cond.against else None]
        partners.append(cond.requires.metric if cond.requires else None)
        for metric in partners:
            if metric is not None:
                keep.setdefault(metric, 0.0)
    return keep


class Evaluation:
    """One evaluation as steps to iterate; `notifications` holds its result once they are done."""

    def __init__(self, steps: Generator[None, None, list[Notification]]) -> None:
        self._steps = steps
        self.notifications: list[Notification] = []

    def __iter__(self) -> Iterator[None]:
        self.notifications = yield from self._steps
        return None


class Engine:
    """Evaluates rules over published samples; `evaluate(now)` returns the notifications to send."""

    def __init__(
        self,
        rules: Sequence[Rule],
        topology: Topology | None = None,
        silences: SilenceSet | None = None,
        escalation: EscalationPolicy | None = None,
        report_category: str = "other",
        lang: str = "zh",
        db: AlertStore | None = None,
        maintenance: Sequence[MaintenanceWindow] = (),
        console_url: str | None = None,
    ) -> None:
        self.rules = {r.alert: r for r in rules}
        self.console_url = console_url.rstrip("/") if console_url else None
        self.details: dict[str, DetailProvider] = {}
        self.maintenance = tuple(maintenance)
        self.topology = topology
        windows = [r.condition.window for r in rules if r.condition.func != "value"]
        self.store = SeriesStore(history_seconds=max([60.0, *windows]) + 60.0, keep=kept_metrics(rules))
        self.silences = silences if silences is not None else SilenceSet()
        self.escalation = escalation
        self.report_category = report_category
        self.lang = lang
        self.states: dict[AlertKey, AlertState] = {}
        self.incidents: dict[str, Incident] = {}
        self._open_by_key: dict[tuple[tuple[str, str], ...], str] = {}
        self.next_incident = 1
        self.net = NetworkState(frozenset(), frozenset(), None)
        self._inhibited: dict[AlertKey, str | None] = {}
        self.db = db
        self._saved: dict[str, str] = {}
        self._saved_snapshot: str | None = None
        self._stale = False  # a save failed (database down, HA leadership lost): reload before going on
        if db is not None:
            self._restore(db)

    # -- persistence ---------------------------------------------------------------------------

    def _restore(self, db: AlertStore) -> None:
        self.next_incident = int(db.get_meta("next_incident", "1"))
        for silence in db.silences():
            self.silences.items[silence.id] = silence
        for inc in db.open_incidents():
            self.incidents[inc.id] = inc
            self._open_by_key[inc.key] = inc.id
            for key, st in inc.alerts.items():
                if key[0] in self.rules:
                    self.states[key] = st
            self._saved[inc.id] = json.dumps(incident_to_json(inc), ensure_ascii=False, sort_keys=True)

    def reload(self) -> None:
        """Forget the in-memory incidents, alert states and silences and read them again from the store.

        An HA standby calls this when it becomes the leader: the previous leader's incidents, acks,
        silences and notification counter are the truth, not what this node had at its start.
        """
        if self.db is None:
            return
        self.states.clear()
        self.incidents.clear()
        self._open_by_key.clear()
        self._inhibited.clear()
        self._saved.clear()
        self._saved_snapshot = None
        self.silences.items.clear()
        self._restore(self.db)
        self._stale = False

    def _refresh(self) -> None:
        if self._stale:
            self.reload()

    def _snapshot(self, now: float) -> str:
        """The current pending/firing alerts as JSON (what the console and `govnet alerts list` show)."""
        views = [
            {
                "alert": v.alert, "labels": v.labels, "state": v.state, "since": v.since,
                "inhibited_by": v.inhibited_by, "silenced_by": v.silenced_by, "flapping": v.flapping,
                "summary": v.summary,
            }
            for v in self.alerts(now)
        ]  # fmt: skip
        return json.dumps(views, ensure_ascii=False, sort_keys=True)

    def _persist(self, out: Sequence[Notification], snapshot: str | None = None) -> None:
        """Save changed incidents and the new notifications in one durable transaction."""
        if self.db is None:
            return
        changed = {}
        for inc in self.incidents.values():
            doc = json.dumps(incident_to_json(inc), ensure_ascii=False, sort_keys=True)
            if self._saved.get(inc.id) != doc:
                changed[inc.id] = (inc.open, doc)
        if snapshot == self._saved_snapshot:
            snapshot = None
        if not changed and not out and snapshot is None:
            return
        outbox = [(n.dedup_key, json.dumps(n.to_json(), ensure_ascii=False), n.at) for n in out]
        try:
            self.db.save_evaluation(changed, self.next_incident, outbox, snapshot)
        except BaseException:
            # What was not saved did not happen: the next evaluation starts from the saved state
            # again and derives the same transitions and notifications (same dedup keys).
            self._stale = True
            raise
        self._saved.update({i: d for i, (_, d) in changed.items()})
        if snapshot is not None:
            self._saved_snapshot = snapshot

    def add_silence(self, silence: Silence) -> None:
        """Add a silence or maintenance window (saved before returning)."""
        self.silences.add(silence)
        self._save_silence(silence.id)

    def expire_silence(self, silence_id: str, now: float) -> None:
        """End a silence now (saved before returning)."""
        self.silences.expire(silence_id, now)
        self._save_silence(silence_id)

    def _save_silence(self, silence_id: str) -> None:
        if self.db is not None:
            doc = json.dumps(silence_to_json(self.silences.items[silence_id]), ensure_ascii=False)
            self.db.save_silence(silence_id, doc)

    # -- input ---------------------------------------------------------------------------------

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """Sink protocol: a device's complete sample set from one poll."""
        self.store.publish(device, samples)

    def publish_internal(self, source: str, samples: Sequence[Sample]) -> None:
        """The complete current sample set of another service (SSH backups, HA, syslog, DB checks...).

        Kept apart from device polls so a device's poll does not erase what another service
        measured about it; `absent` conditions look at polled devices only.
        """
        self.store.publish(INTERNAL_PREFIX + source, samples)

    # -- evaluation ----------------------------------------------------------------------------

    def _active(self, rule: Rule, now: float) -> Generator[None, None, dict[Labels, float]]:
        cond = rule.condition
        if cond.metric is not None:
            found_m = yield from conditions.evaluate(cond, self.store, now, SLICE)
            if rule.outside_maintenance:
                # For `since` the value is the age of the event: it happened at now - value.
                found_m = {
                    labels: v
                    for labels, v in found_m.items()
                    if not self.in_maintenance(dict(labels), now - v if cond.func == "since" else now)
                }
            return found_m
        net = self.net
        if cond.topology == "down":
            devices = [d for d in net.failed if net.status(d) == "down"]
        elif cond.topology == "unreachable":
            devices = [d for d in net.failed if net.status(d) == "unreachable"]
        elif cond.topology == "split_brain":
            devices = self._split_brain()
        elif cond.topology == "firmware_mismatch":
            found_fw = self._firmware_mismatch()
            return {labels: 1.0 for labels in found_fw if matches(labels, cond.match)}
        else:
            devices = sorted(net.assessment.degraded) if net.assessment else []
        found = (self.store.device_labels(d) for d in devices)
        return {labels: 1.0 for labels in found if matches(labels, cond.match)}

    def _split_brain(self) -> list[str]:
        """Members of an HA group where more than one member reports itself active."""
        if self.topology is None:
            return []
        active = {
            dict(labels).get("device", "")
            for labels, hist in self.store.series("govnet_ha_role", {"state": "active"})
            if hist and hist[-1][1] == 1
        }
        out: list[str] = []
        for members in self.topology.ha_groups.values():
            both = [m for m in members if m in active]
            if len(both) > 1:
                out.extend(both)
        return out

    def _firmware_mismatch(self) -> list[Labels]:
        """Members of an HA group whose devices report different software versions (device_info).

        Each member's labels carry `ha_group` and its `version`; a member that reports no version
        is left out (unknown is not different).
        """
        if self.topology is None:
            return []
        version: dict[str, str] = {}
        for labels, hist in self.store.series("govnet_device_info", {}):
            got = dict(labels)
            if hist and got.get("version"):
                version[got.get("device", "")] = got["version"]
        out: list[Labels] = []
        for group, members in sorted(self.topology.ha_groups.items()):
            known = [m for m in members if m in version]
            if len({version[m] for m in known}) > 1:
                for m in known:
                    extra = {"ha_group": group, "version": version[m]}
                    out.append(tuple(sorted({**dict(self.store.device_labels(m)), **extra}.items())))
        return out

    def _labels(self, rule: Rule, series: Labels) -> Labels:
        extra = {"alertname": rule.alert, "severity": rule.severity, "level": rule.level.value, **rule.labels}
        return tuple(sorted({**dict(series), **extra}.items()))

    def evaluate(self, now: float) -> list[Notification]:
        """Advance every alert to `now` and return the notifications this step produces."""
        steps = self.evaluation(now)
        for _ in steps:
            pass
        return steps.notifications

    async def evaluate_yielding(self, now: float) -> list[Notification]:
        """`evaluate`, handing the event loop back between rules.

        On `govnet run`'s supervisor loop one evaluation of every rule over 5,000 devices took up to
        2.5 s, during which no worker's polls were read (docs/bench.md, issue 20): between rules the
        loop reads them. Samples that arrive meanwhile reach the rules evaluated after them, as a
        Prometheus rule group's later rules see newer data.
        """
        steps = self.evaluation(now)
        for _ in steps:
            await asyncio.sleep(0)
        return steps.notifications

    def evaluation(self, now: float) -> Evaluation:
        """The steps of one evaluation at `now` (one per rule, then the grouping and notifying)."""
        return Evaluation(self._evaluate(now))

    def _evaluate(self, now: float) -> Generator[None, None, list[Notification]]:
        self._refresh()
        self.net = network_state(self.store, self.topology)
        # Each rule's existing states, found once (a scan of every state per rule was rules x states).
        by_rule: dict[str, list[AlertKey]] = {}
        for key in self.states:
            by_rule.setdefault(key[0], []).append(key)
        for rule in self.rules.values():
            yield
            found = yield from self._active(rule, now)
            active: dict[Labels, float] = {}
            for n, (series, value) in enumerate(found.items(), 1):
                active[self._labels(rule, series)] = value
                if n % SLICE == 0:
                    yield
            keys = dict.fromkeys(by_rule.get(rule.alert, ()))
            keys.update(dict.fromkeys((rule.alert, lab) for lab in active))
            for n, key in enumerate(keys, 1):
                st = self.states.setdefault(key, AlertState(rule.alert, key[1]))
                if key[1] in active:
                    st.value = active[key[1]]
                st.step(key[1] in active, now, rule.for_seconds, rule.keep_seconds)
                if n % SLICE == 0:  # one rule over every interface of a large node: hand the loop back
                    yield
        inhibited: dict[AlertKey, str | None] = {}
        for n, (key, st) in enumerate(list(self.states.items()), 1):
            if n % SLICE == 0:
                yield
            if st.state == "firing":
                inhibited[key] = inhibitor(self.rules[key[0]], st.label_dict, self.net, self.topology)
        self._inhibited = inhibited
        yield
        out: list[Notification] = []
        yield from self._group(now, out)
        self._follow_up(now, out)
        self._gc(now)
        self._persist(out, self._snapshot(now) if self.db is not None else None)
        return out

    def device_states(self) -> dict[str, str]:
        """Each device with a poll result: up / degraded / down / unreachable, as the last evaluation saw
        it (the state-change journal of the monthly report records these)."""
        degraded = self.net.assessment.degraded if self.net.assessment is not None else frozenset()
        out: dict[str, str] = {}
        for labels, hist in self.store.series("govnet_up", {}):
            device = dict(labels).get("device")
            if device is None or not hist:
                continue
            state = self.net.status(device)
            out[device] = "degraded" if state == "up" and device in degraded else state
        return out

    def in_maintenance(self, labels: dict[str, str], t: float) -> bool:
        """True if a configured maintenance window or a maintenance silence covers these labels at `t`."""
        return any(w.covers(labels, t) for w in self.maintenance) or self.silences.in_maintenance(labels, t)

    def muted_by(self, labels: dict[str, str], now: float) -> str | None:
        """The silence id or maintenance window name muting these labels at `now`, if any."""
        silence = self.silences.muting(labels, now)
        if silence is not None:
            return silence.id
        return next((f"maintenance:{w.name}" for w in self.maintenance if w.covers(labels, now)), None)

    def _pageable(self, key: AlertKey, st: AlertState, now: float) -> bool:
        rule = self.rules[key[0]]
        return (
            st.state == "firing"
            and rule.page
            and self._inhibited.get(key) is None
            and self.muted_by(st.label_dict, now) is None
        )

    def _group(self, now: float, out: list[Notification]) -> Generator[None, None, None]:
        fresh: dict[str, list[AlertState]] = {}
        # Alerts already in an open incident, kept as a set: asking every incident for every state
        # was states x incidents (12-17 s per evaluation in an alert storm over 1,000 devices).
        in_open = {k for i in self._open() for k in i.alerts}
        # Alerts that may open or join an incident, in key order (incident numbers follow it): only
        # these are sorted, not every state (sorting 96,000 label tuples took ~0.3 s).
        candidates: list[tuple[AlertKey, AlertState]] = []
        for n, (key, st) in enumerate(list(self.states.items()), 1):
            if n % SLICE == 0:
                yield
            if key in in_open or not self._pageable(key, st, now):
                continue
            if st.last_active != now:
                # Held only by keep_firing_for: its condition already cleared (e.g. a consequence
                # whose inhibiting cause just recovered). It may finish an incident, never open one.
                continue
            candidates.append((key, st))
        candidates.sort()  # by key: keys are unique, so the states themselves are never compared
        for n, (key, st) in enumerate(candidates, 1):
            if n % SLICE == 0:
                yield
            rule = self.rules[key[0]]
            labels = st.label_dict
            gkey = tuple((k, labels.get(k, "")) for k in rule.group_by)
            inc_id = self._open_by_key.get(gkey)
            if inc_id is None:
                inc_id = f"INC-{self.next_incident:06d}"
                self.next_incident += 1
                category = labels.get("report_category", self.report_category)
                self.incidents[inc_id] = Incident(inc_id, gkey, now, rule.level, category)
                self._open_by_key[gkey] = inc_id
            inc = self.incidents[inc_id]
            inc.alerts[key] = st
            in_open.add(key)
            if rule.level.rank < inc.level.rank:
                inc.level = rule.level
            fresh.setdefault(inc_id, []).append(st)
        # Consequences (unreachable children, degraded neighbours) are listed on their cause's incident.
        by_device: dict[str, list[Incident]] = {}
        for inc in self._open():
            device = dict(inc.key).get("device")
            if device is not None:
                by_device.setdefault(device, []).append(inc)
        for key, cause in self._inhibited.items():
            if cause is None:
                continue
            affected = dict(key[1]).get("device", "")
            for c in cause.split(","):
                for inc in by_device.get(c, ()):
                    inc.affected.add(affected)  # a set: an incident named twice adds it once
        for inc_id, new in fresh.items():
            inc = self.incidents[inc_id]
            kind = "firing" if len(new) == len(inc.alerts) else "update"
            if any(a.flapping for a in new):
                if inc.flap_notified:
                    continue
                inc.flap_notified, kind = True, "flapping"
            out.append(self._notify(kind, inc, now, self._first_recipient(inc)))

    def _open(self) -> list[Incident]:
        return [i for i in self.incidents.values() if i.open]

    def _first_recipient(self, inc: Incident) -> tuple[str, ...]:
        return (self.escalation.rota.person(inc.opened_at, 0),) if self.escalation else ()

    def _follow_up(self, now: float, out: list[Notification]) -> None:
        for inc in self._open():
            if not inc.live():
                inc.resolved_at = now
                self._open_by_key.pop(inc.key, None)
                out.append(self._notify("resolved", inc, now, self._first_recipient(inc)))
                continue
            if any(a.flapping for a in inc.alerts.values()) and not inc.flap_notified:
                inc.flap_notified = True
                out.append(self._notify("flapping", inc, now, self._first_recipient(inc)))
            muted = all(self.muted_by(a.label_dict, now) for a in inc.alerts.values())
            if self.escalation and inc.acked_by is None and not muted:
                due = self.escalation.step_at(inc.level, inc.opened_at, now)
                while inc.escalation_step < due:
                    inc.escalation_step += 1
                    person = self.escalation.rota.person(inc.opened_at, inc.escalation_step)
                    out.append(self._notify("escalation", inc, now, (person,)))
            for kind in inc.due_reminders(now):
                out.append(self._notify(kind, inc, now, self._first_recipient(inc)))

    def _gc(self, now: float) -> None:
        for inc_id in [i for i, inc in self.incidents.items() if inc.resolved_at is not None]:
            resolved_at = self.incidents[inc_id].resolved_at
            if resolved_at is not None and now - resolved_at > RESOLVED_RETENTION and inc_id in self._saved:
                del self.incidents[inc_id]  # the database keeps the record
        in_open = {k for i in self._open() for k in i.alerts}
        for key in [k for k, s in self.states.items() if k not in in_open]:
            st = self.states[key]
            quiet = st.state == "inactive" and not any(st.history)  # 21 checks without the condition
            old = (
                st.state == "resolved"
                and st.resolved_at is not None
                and now - st.resolved_at > RESOLVED_RETENTION
            )
            if quiet or old:
                del self.states[key]

    # -- human actions -------------------------------------------------------------------------

    def acknowledge(self, incident_id: str, owner: str, comment: str, now: float) -> None:
        """Acknowledge an incident (owner + comment): stops escalation; resolved notice still follows."""
        self.incidents[incident_id].acknowledge(owner, comment, now)
        self._persist(())

    def mark_reported(self, incident_id: str, by: str, now: float) -> None:
        """Record that the incident was reported to the authorities."""
        self.incidents[incident_id].mark_reported(by, now)
        self._persist(())

    def apply_commands(self, now: float) -> int:
        """Apply the operator actions other processes queued in the state file (ack, silence, expire,
        report); each is saved before it is marked applied, so a crash in between re-applies it
        (all of them are idempotent). Returns how many were applied."""
        if self.db is None:
            return 0
        self._refresh()
        applied = 0
        for command_id, doc in self.db.pending_commands():
            error = self._apply(doc, now)
            self.db.finish_command(command_id, now, error)
            applied += error is None
        return applied

    def _apply(self, doc: dict[str, Any], now: float) -> str | None:
        kind = doc.get("kind")
        try:
            if kind in ("ack", "report"):
                inc = self.incidents.get(str(doc.get("incident")))
                if inc is None or not inc.open:
                    return "no open incident with this id"
                if kind == "ack":
                    self.acknowledge(inc.id, str(doc["owner"]), str(doc.get("comment", "")), now)
                else:
                    self.mark_reported(inc.id, str(doc["by"]), now)
            elif kind == "silence":
                self.add_silence(silence_from_json(doc["silence"]))
            elif kind == "expire":
                if str(doc.get("id")) not in self.silences.items:
                    return "no silence with this id"
                self.expire_silence(str(doc["id"]), now)
            else:
                return "unknown command"
        except (KeyError, TypeError, ValueError) as exc:
            return f"invalid command: {type(exc).__name__}: {exc}"[:200]
        return None

    def stats(self, now: float) -> dict[str, dict[str, int]]:
        """Counts for /metrics: firing alerts and open incidents per level."""
        firing = dict.fromkeys((lv.value for lv in Level), 0)
        incidents = dict(firing)
        for st in self.states.values():
            if st.state == "firing" and st.rule in self.rules:
                firing[self.rules[st.rule].level.value] += 1
        for inc in self._open():
            incidents[inc.level.value] += 1
        return {"firing": firing, "incidents": incidents}

    # -- views and text ------------------------------------------------------------------------

    def summary(self, rule: Rule, st: AlertState) -> str:
        """The rule's summary rendered for this alert (sandboxed, label values escaped)."""
        return render_string(rule.summary, labels=st.label_dict, value=st.value)

    def alerts(self, now: float) -> list[AlertView]:
        """Every pending/firing alert with why it is (not) paged."""
        views = []
        for key, st in sorted(self.states.items()):
            if st.state not in ("pending", "firing"):
                continue
            muted = self.muted_by(st.label_dict, now)
            views.append(
                AlertView(
                    st.rule,
                    st.label_dict,
                    st.state,
                    st.value,
                    st.active_since,
                    self._inhibited.get(key),
                    muted,
                    st.flapping,
                    self.summary(self.rules[st.rule], st),
                )
            )
        return views

    def _detail(self, rule: str, labels: dict[str, str]) -> list[str]:
        provider = self.details.get(rule)
        if provider is None:
            return []
        try:
            return [str(line) for line in provider(labels)][:MAX_DETAIL_LINES]
        except Exception:  # evidence is a courtesy: a failing provider must not stop the notification
            return []

    def _notify(self, kind: str, inc: Incident, now: float, recipients: tuple[str, ...]) -> Notification:
        rows = []
        for st in inc.alerts.values():
            rule = self.rules[st.rule]
            labels = st.label_dict
            rows.append(
                {
                    "alert": st.rule,
                    "device": labels.get("device", ""),
                    "service": labels.get("service", ""),
                    "unit": labels.get("unit", ""),
                    "site": labels.get("site", ""),
                    "summary": self.summary(rule, st),
                    "since": format_time(st.fired_at or now),
                    "state": st.state,
                    "runbook": [render_string(step, labels=labels, value=st.value) for step in rule.runbook],
                    "detail": self._detail(st.rule, labels) if kind != "resolved" else [],
                }
            )
        deadline = inc.report_deadline
        context = {
            "kind": kind,
            "inc": inc,
            "level": inc.level,
            "alerts": rows,
            "first": rows[0],
            "affected": sorted(inc.affected),
            "now": format_time(now),
            "opened": format_time(inc.opened_at),
            "deadline": format_time(deadline) if deadline is not None else None,
            "category": REPORT_CATEGORY_ZH.get(inc.report_category, inc.report_category),
            "escalated_to": recipients[0] if kind == "escalation" and recipients else None,
            # Incident ids are ours (INC-NNNNNN), quoted anyway: the link survives the text escaper.
            "link": f"{self.console_url}/incidents/{quote(inc.id, safe='')}" if self.console_url else None,
        }
        text = render_file(f"notification.{self.lang}.j2", **context).strip()
        title = text.splitlines()[0]
        head = next(iter(inc.alerts.values()), None)
        labels = head.label_dict if head is not None else {}
        alerts: list[dict[str, object]] = [
            {
                "status": "resolved" if kind == "resolved" else "firing",
                "labels": st.label_dict,
                "annotations": {"summary": row["summary"], "runbook": row["runbook"][0]},
                "startsAt": iso_time(st.fired_at or now),
                "endsAt": iso_time(st.resolved_at) if kind == "resolved" and st.resolved_at else "",
            }
            for st, row in zip(inc.alerts.values(), rows, strict=True)
        ]
        inc.notices += 1
        return Notification(
            kind, inc.id, inc.level, recipients, title, text, now, labels, tuple(alerts), inc.notices
        )

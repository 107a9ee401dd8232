"""Delivery of the outbox to every channel: retries with backoff on transient errors, fallback on
permanent ones.

State lives in the alert store (`deliveries`: SQLite, or PostgreSQL for an HA pair), so a restart or a
takeover resumes pending retries and never resends what a channel accepted. Each attempt is
written ahead (`sending`) and its outcome committed (`sent`) around the call to the channel.
Time is passed in; `run_due(now)` does the attempts that are due.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from alerts.engine import Notification
from alerts.notify.base import Notifier
from alerts.persist import AlertStore

BACKOFF = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0)  # seconds before attempt 2, 3, ...; the last repeats
GIVE_UP_AFTER = 3600.0  # a transient failure lasting this long falls back like a permanent one


@dataclass
class Counters:
    """What happened to deliveries since start (exported as metrics by the caller)."""

    sent: int = 0
    retried: int = 0
    rejected: int = 0  # permanent failures (4xx, bad key)
    gave_up: int = 0
    fallback: int = 0
    errors: list[str] = field(default_factory=list)
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    failed_by_channel: dict[str, int] = field(default_factory=dict)  # rejected or given up
    retried_by_channel: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def bump(counts: dict[str, int], channel: str) -> None:
        """Add one for a channel."""
        counts[channel] = counts.get(channel, 0) + 1


class Dispatcher:
    """Delivers each outbox notification once to each channel in `channels`; `fallback` takes the failures."""

    def __init__(
        self,
        db: AlertStore,
        notifiers: Mapping[str, Notifier],
        channels: Sequence[str],
        fallback: str | None = None,
        backoff: Sequence[float] = BACKOFF,
        give_up_after: float = GIVE_UP_AFTER,
        recover: bool = True,
    ) -> None:
        unknown = [c for c in [*channels, *([fallback] if fallback else [])] if c not in notifiers]
        if unknown:
            raise ValueError(f"unknown notification channels: {', '.join(unknown)}")
        self.db, self.notifiers = db, dict(notifiers)
        self.channels, self.fallback = tuple(channels), fallback
        self.backoff, self.give_up_after = tuple(backoff), give_up_after
        self.counters = Counters()
        self.uncertain = 0  # attempts a killed process left `sending`, sent again (at-least-once)
        if recover:
            self.recover()

    def recover(self) -> int:
        """Take back attempts a killed process (or a dead HA leader) left in flight; call when this
        process becomes the only sender (at start on one node, on takeover in an HA pair)."""
        n = self.db.recover_in_flight()
        self.uncertain += n
        return n

    def run_due(self, now: float) -> int:
        """Attempt every delivery due at `now`; returns how many were delivered."""
        self.db.enqueue_deliveries(self.channels, now)
        delivered = 0
        for key, channel, attempts, first_at, doc in self.db.due_deliveries(now):
            # Write-ahead: on PostgreSQL the claim is atomic and fenced by the leader lock, so two
            # nodes never both send one message; a kill after it leaves `sending` for recover().
            if not self.db.claim_delivery(key, channel, now):
                continue
            n = Notification.from_json(json.loads(doc))
            try:
                retry, error = self.notifiers[channel].send(n, now)
            except Exception as exc:  # a notifier bug must not leave the claim `sending` forever
                retry, error = True, f"{type(exc).__name__}"
            attempts += 1
            if error is None:
                self._set(key, channel, "sent", attempts, now, None)
                self.counters.sent += 1
                self.counters.bump(self.counters.sent_by_channel, channel)
                delivered += 1
            elif retry and now - first_at < self.give_up_after:
                wait = self.backoff[min(attempts - 1, len(self.backoff) - 1)]
                self._set(key, channel, "pending", attempts, now + wait, error)
                self.counters.retried += 1
                self.counters.bump(self.counters.retried_by_channel, channel)
            else:
                if retry:
                    self.counters.gave_up += 1
                else:
                    self.counters.rejected += 1
                self.counters.bump(self.counters.failed_by_channel, channel)
                self.counters.errors = [*self.counters.errors[-99:], f"{channel}: {error}"]
                self._set(key, channel, "failed", attempts, now, error)
                self._fall_back(key, channel, now)
        return delivered

    def _set(
        self, key: str, channel: str, status: str, attempts: int, next_at: float, error: str | None
    ) -> None:
        self.db.set_delivery(key, channel, status, attempts, next_at, error)

    def _fall_back(self, key: str, channel: str, now: float) -> None:
        if self.fallback is None or channel == self.fallback:
            return
        if self.db.add_fallback(key, self.fallback, now):
            self.counters.fallback += 1
            self.run_due(now)  # the fallback goes out now, not at the next tick

    def status(self, key: str) -> dict[str, str]:
        """channel -> status for one notification."""
        return self.db.delivery_status(key)

"""The cluster service of `govnet run`: heartbeat, watch membership, poll only this node's shard."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence

import psycopg

from collectors.cluster.config import ClusterConfig
from collectors.cluster.membership import Membership
from collectors.cluster.store import StateStore
from collectors.scheduler import PollDriver
from core.latest import LatestStore
from core.pipeline import SampleSink
from core.ring import HashRing
from core.samples import MetricType, Sample
from core.secrets import SecretError
from inventory.model import Device, Inventory

log = logging.getLogger(__name__)

CLUSTER_METRICS: dict[str, tuple[MetricType, str]] = {
    "govnet_cluster_members": ("gauge", "Live members of the polling cluster as this node sees them."),
    "govnet_cluster_devices_owned": ("gauge", "Devices the hash ring assigns to this node."),
    "govnet_cluster_rebalances_total": ("counter", "Membership changes that re-evaluated the shard."),
    "govnet_cluster_store_up": ("gauge", "1 if the last heartbeat reached the membership store."),
    "govnet_cluster_heartbeat_failures_total": ("counter", "Heartbeats that failed to reach the store."),
}


def shardable(inv: Inventory) -> list[Device]:
    """The devices `govnet run` polls (those with SNMP credentials), in inventory order."""
    return [d for d in inv.devices if inv.snmp_of(d) is not None]


class ClusterService:
    """Keeps this node's heartbeat row, and the scheduler's devices equal to the ring's share of it."""

    name = "cluster"

    def __init__(
        self,
        cfg: ClusterConfig,
        inventory: Inventory,
        scheduler: PollDriver,
        latest: LatestStore,
        peer_sink: SampleSink | None = None,
    ) -> None:
        self.cfg = cfg
        self.scheduler = scheduler
        self.latest = latest
        # The alert engine on this node, fed other shards' device health (None: no alerts here).
        self.peer_sink = peer_sink
        self.membership = Membership(cfg.node_id, cfg.heartbeat_interval, cfg.missed_heartbeats)
        self.devices = shardable(inventory)
        self.owned: list[str] = []
        self.store_up = False
        self.heartbeat_failures = 0
        self.beats = 0  # successful heartbeats
        self._owned_set: set[str] = set()
        self._pending: dict[str, str] = {}  # device -> health samples (JSON) not yet written
        self._peers: list[Sample] = []
        self._fed: set[str] = set()  # peer devices last given to the alert engine
        # Before the scheduler's first poll (it is built first, started later): nothing is ours until
        # the ring says so.
        self._apply((), first=True)

    def _apply(self, members: tuple[str, ...], first: bool) -> None:
        scheduler = self.scheduler
        ring = HashRing(members, self.cfg.vnodes)
        mine = [d for d in self.devices if ring.owner(d.name) == self.cfg.node_id]
        # The first shard is spread over the interval (each device on its phase); devices taken over
        # later went unpolled since their owner failed, so they are polled at once.
        _added, removed = scheduler.set_devices(mine, scheduler.clock(), poll_new_now=not first)
        # A device another node polls now must vanish from this node's /metrics (no duplicate series).
        for name in removed:
            self.latest.remove(name)
        self.owned = [d.name for d in mine]
        self._owned_set = set(self.owned)

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat every interval until `stop`; then leave the cluster so the others take over at once."""
        try:
            store = StateStore(self.cfg.dsn.resolve(), self.cfg.connect_timeout)
        except SecretError as exc:  # resolved at build time; the file may have gone since
            log.error("cluster: %s; polling nothing", exc)
            await stop.wait()
            return
        try:
            while not stop.is_set():
                await self._beat(store)
                try:
                    async with asyncio.timeout(self.cfg.heartbeat_interval):
                        await stop.wait()
                except TimeoutError:
                    pass
        finally:
            try:
                async with asyncio.timeout(self.cfg.connect_timeout):
                    await store.delete([self.cfg.node_id])
            except (psycopg.Error, OSError, TimeoutError):
                log.warning("cluster: could not remove this node's row; it expires by itself")
            await store.close()

    async def _beat(self, store: StateStore) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.cfg.connect_timeout + self.cfg.heartbeat_interval):
                rows, now = await store.beat(self.cfg.node_id, self.cfg.address)
                dead = self.membership.expired(rows, now)
                if dead:
                    await store.delete(dead)
                if self.cfg.share_state:
                    await self._share(store)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            # Keep the last assignment: a device polled twice for a while is harmless, an unpolled one is not.
            if self.store_up or self.heartbeat_failures == 0:
                log.error(
                    "cluster: membership store unreachable (%s); keeping the current shard",
                    type(exc).__name__,
                )
            self.store_up = False
            self.heartbeat_failures += 1
            return
        self.store_up = True
        self.beats += 1
        if self.beats == 1:
            # Claim nothing on the first beat: nodes started together then see each other before
            # anyone takes a shard, instead of each briefly polling the whole fleet.
            return
        first = not self.membership.members
        change = self.membership.observe(rows, now)
        if change is not None:
            self._apply(change.members, first)
            log.info(
                "cluster: members %s (joined %s, left %s): %d of %d devices are ours (%.3f s)",
                ",".join(change.members), ",".join(change.joined) or "-", ",".join(change.left) or "-",
                len(self.owned), len(self.devices), time.monotonic() - started,
            )  # fmt: skip

    async def _share(self, store: StateStore) -> None:
        if self.beats == 0:
            await store.ensure_state_table()
        pending, self._pending = self._pending, {}
        try:
            await store.put_states(self.cfg.node_id, pending)
        except BaseException:
            pending.update(self._pending)  # newer polls win
            self._pending = pending
            raise
        by_device: dict[str, list[Sample]] = {}
        # A live owner's row is current however old (a dead device is rechecked only every minute or
        # so); a dead owner's rows are not, until the new owner's first poll replaces them.
        peers = [m for m in self.membership.members if m != self.cfg.node_id]
        for device, text in await store.peer_states(peers):
            if device in self._owned_set:
                continue  # ours now: our own polls are the truth
            by_device[device] = [
                Sample(str(m), tuple((str(k), str(v)) for k, v in labels), float(value), float(ts))
                for m, labels, value, ts in json.loads(text)
            ]
        self._peers = [s for samples in by_device.values() for s in samples]
        self._feed_alerts(by_device)

    def _feed_alerts(self, by_device: dict[str, list[Sample]]) -> None:
        # The alert engine on this node (the HA leader, or its standby) takes other shards' devices as
        # polled devices: device labels, topology (a core on shard A, its children on B) and rules
        # then see the whole fleet. Not on /metrics: each shard serves only its own devices.
        engine = self.peer_sink
        if engine is None:
            return
        for device, samples in by_device.items():
            engine.publish(device, samples)
        # A peer device nobody reports any more (its owner died, no take-over yet): an empty set, so
        # the engine sees no data instead of a frozen last state.
        for device in self._fed - set(by_device) - self._owned_set:
            engine.publish(device, [])
        self._fed = set(by_device)

    def publish(self, device: str, samples: Sequence[Sample]) -> None:
        """SampleSink: remember the health samples of our devices for the next heartbeat (cheap)."""
        if not self.cfg.share_state or device not in self._owned_set:
            return
        keep = self.cfg.state_metrics
        self._pending[device] = json.dumps(
            [
                [s.metric, [list(kv) for kv in s.labels], s.value, s.timestamp]
                for s in samples
                if s.metric in keep
            ]
        )

    def peer_samples(self) -> list[Sample]:
        """Other shards' latest device health (what the alert engine was last given)."""
        return list(self._peers)

    def internal_samples(self) -> list[Sample]:
        """The cluster metrics for /metrics (labelled with this node's id)."""
        ts = time.time()
        labels = (("node", self.cfg.node_id),)
        values = {
            "govnet_cluster_members": float(len(self.membership.members)),
            "govnet_cluster_devices_owned": float(len(self.owned)),
            "govnet_cluster_rebalances_total": float(self.membership.rebalances),
            "govnet_cluster_store_up": 1.0 if self.store_up else 0.0,
            "govnet_cluster_heartbeat_failures_total": float(self.heartbeat_failures),
        }
        return [Sample(m, labels, v, ts, *CLUSTER_METRICS[m]) for m, v in values.items()]


def build(
    section: ClusterConfig,
    *,
    inventory: Inventory,
    scheduler: PollDriver,
    latest: LatestStore,
    peer_sink: SampleSink | None = None,
) -> list[ClusterService]:
    """The shard service: narrows `scheduler` to this node's share (the dsn is checked at start)."""
    return [ClusterService(section, inventory, scheduler, latest, peer_sink)]

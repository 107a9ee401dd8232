"""SnmpCollector: poll one device with its profile, return normalised samples (the Collector contract)."""

from __future__ import annotations

import operator
import time
from array import array
from dataclasses import dataclass, field

from gufo.snmp import SnmpError
from gufo.snmp.aio.client import SnmpSession

from collectors.base import PollResult, device_labels
from collectors.snmp.counters import CounterTracker
from collectors.snmp.engine import DeadlineExceeded, Fetcher, WeakCryptoRefused, make_session
from collectors.snmp.evaluate import DEVICE_INFO_HELP, EvalCache, Labels, Value, Walk, evaluate_rows
from collectors.snmp.optics import RX_METRIC, RxBaseline
from collectors.snmp.profile import Profile, default_profiles, probe_oids, select_profile
from core.samples import Head, Layout, Sample, SampleSet
from core.secrets import SecretError
from inventory.model import Device, Inventory, SnmpV2c, SnmpV3

SYSTEM_OIDS = ("1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0")


@dataclass(slots=True)
class _DeviceState:
    creds: SnmpV2c | SnmpV3
    session: SnmpSession
    counters: CounterTracker
    profile: Profile | None = None
    sysobjectid: str | None = None
    refreshed_at: float | None = None  # last SNMPv3 engine boots/time sync (monotonic)
    empty_columns: set[str] | None = None  # profile columns the agent returned nothing for
    polls_since_full: int = 0
    eval_cache: EvalCache = field(default_factory=EvalCache)  # labels/row order reused between polls
    # Row labels -> row labels merged with the device labels, sorted (valid for `merged_base`).
    merged: dict[Labels, Labels] = field(default_factory=dict)
    merged_base: Labels = ()
    plan: tuple[list[str], list[str]] = field(default_factory=lambda: ([], []))  # set with the profile
    reps_hint: dict[str, int] = field(default_factory=dict)  # columns that needed a smaller GETBULK
    rx_baseline: RxBaseline = field(default_factory=RxBaseline)  # 7-day median Rx power per port
    layout: Layout | None = None  # the last poll's series, reused while they stay the same


class NoSystemGroup(Exception):
    """The agent answered but returned none of the SNMPv2-MIB system objects."""


# gufo-snmp asks for a v3 time-window refresh when more than ~150 s passed since the last request.
V3_REFRESH_S = 100.0
# Re-walk columns that were empty every this many polls (10 min at 30 s): tables can gain rows.
EMPTY_RECHECK_POLLS = 20


def plan(profile: Profile) -> tuple[list[str], list[str]]:
    """What to fetch for a profile: scalar instance OIDs to GET, column OIDs to walk (sorted)."""
    scalars = sorted({o.oid + ".0" for o in profile.objects() if o.kind == "scalar"})
    columns = sorted(
        {o.oid for o in profile.objects() if o.kind == "column"}, key=lambda s: tuple(map(int, s.split(".")))
    )
    return scalars, columns


class SnmpCollector:
    """Polls devices over SNMP v2c/v3 with gufo-snmp; keeps per-device sessions and counter state."""

    def __init__(
        self,
        *,
        timeout_s: float = 2.0,
        retries: int = 1,
        max_repetitions: int = 25,
        profiles: dict[str, Profile] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_repetitions = max_repetitions
        self.profiles = profiles if profiles is not None else default_profiles()
        self._state: dict[str, _DeviceState] = {}

    def _device_state(self, device: Device, creds: SnmpV2c | SnmpV3) -> _DeviceState:
        st = self._state.get(device.name)
        if st is None or st.creds != creds:
            session = make_session(device.address, creds, self.timeout_s, self.max_repetitions)
            st = _DeviceState(creds, session, CounterTracker())
            self._state[device.name] = st
        return st

    async def poll(
        self, inventory: Inventory, device: Device, now: float, deadline_s: float | None = None
    ) -> PollResult:
        """Poll `device` once within `deadline_s` (default: its interval); never raises for device faults."""
        started = time.monotonic()
        budget = deadline_s if deadline_s is not None else inventory.interval_of(device)
        result = PollResult(device=device.name, ok=False)
        creds = inventory.snmp_of(device)
        if creds is None:
            result.error = "no SNMP credentials"
            return result
        try:
            st = self._device_state(device, creds)
        except (SecretError, WeakCryptoRefused, ValueError) as exc:
            result.error = f"credentials: {exc}"
            return result
        fetch = Fetcher(
            st.session,
            deadline=started + budget,
            timeout_s=self.timeout_s,
            retries=self.retries,
            max_repetitions=self.max_repetitions,
            reps_hint=st.reps_hint,
        )
        try:
            walk, columns = await self._fetch(fetch, st, device)
            result.samples = self._samples(st, walk, device, now, columns)
            result.ok = True
            if fetch.stats.problems:
                result.error = "; ".join(fetch.stats.problems)[:500]
        except DeadlineExceeded:
            result.error = f"deadline of {budget:g}s exceeded"
        except NoSystemGroup:
            result.error = "agent returned no SNMPv2-MIB system group"
        except TimeoutError:
            result.error = "timeout"
        except SnmpError as exc:
            # gufo error texts carry no secrets (auth failures say only that).
            result.error = f"snmp error: {type(exc).__name__}: {exc}"[:300]
        except OSError as exc:
            result.error = f"network error: {exc.strerror or exc}"
        except BaseException as exc:
            # gufo-snmp 0.13's Rust decoder can panic on malformed datagrams; pyo3 raises that as a
            # BaseException. A device sending garbage must not take the poller down.
            if type(exc).__name__ != "PanicException":
                raise
            result.error = "malformed response from agent (decoder panic)"
            st.session = make_session(device.address, creds, self.timeout_s, self.max_repetitions)
        if not result.ok:
            st.refreshed_at = None  # resynchronise SNMPv3 (agent may have restarted) next time
        result.varbinds = fetch.stats.varbinds
        result.timeouts = fetch.stats.timeouts
        result.duration_s = time.monotonic() - started
        return result

    async def _fetch(
        self, fetch: Fetcher, st: _DeviceState, device: Device
    ) -> tuple[Walk, dict[str, dict[str, Value]]]:
        """Scalars as a walk, and each walked column as {row index: value} (grouped while fetching)."""
        if isinstance(st.creds, SnmpV3) and (
            st.refreshed_at is None or time.monotonic() - st.refreshed_at > V3_REFRESH_S
        ):
            await fetch.refresh()
            st.refreshed_at = time.monotonic()
        system = await fetch.get_many(SYSTEM_OIDS)
        if not system:
            raise NoSystemGroup
        oid_val = system.get("1.3.6.1.2.1.1.2.0")
        sysobjectid = oid_val.lstrip(".") if isinstance(oid_val, str) else None
        if st.profile is None or sysobjectid != st.sysobjectid:
            # Discovery, cached with the profile until the sysObjectID changes: one GET of the
            # probe scalars (`match: also: answers`, the UPS-MIB's) tells which the agent answers.
            probes = probe_oids(self.profiles)
            answered = set(await fetch.get_many(probes)) if probes else set()
            st.profile = select_profile(
                self.profiles, sysobjectid, device.vendor.value, device.role.value, answered
            )
            st.sysobjectid = sysobjectid
            st.empty_columns = None
            st.plan = plan(st.profile)
        scalars, columns = st.plan
        walk: Walk = dict(system)
        rest = [o for o in scalars if o not in walk]
        if rest:
            walk.update(await fetch.get_many(rest))
        # Columns an agent does not implement cost a request each for nothing; skip them between
        # full polls (every EMPTY_RECHECK_POLLS polls, and whenever the profile changes).
        full = st.polls_since_full >= EMPTY_RECHECK_POLLS or st.empty_columns is None
        if full:
            st.reps_hint.clear()  # full polls also re-try the full max-repetitions (agents change)
        skip = set() if full or st.empty_columns is None else st.empty_columns
        empty: set[str] = set()
        grouped: dict[str, dict[str, Value]] = {}
        for col in columns:
            if col in skip:
                continue
            try:
                got = grouped[col] = await fetch.walk(col, suffixes=True)
                if not got:
                    empty.add(col)
            except TimeoutError:
                # One subtree the agent cannot serve must not cost the rest of the poll.
                fetch.stats.problems.append(f"{col}: gave up after timeouts")
        if full:
            st.empty_columns, st.polls_since_full = empty, 1
        else:
            st.polls_since_full += 1
        return walk, grouped

    def _samples(
        self,
        st: _DeviceState,
        walk: Walk,
        device: Device,
        now: float,
        columns: dict[str, dict[str, Value]] | None = None,
    ) -> SampleSet:
        """The poll's samples as a SampleSet whose layout is the previous poll's while the series are
        unchanged: label tuples are reused by identity, so a stable device builds no new layout."""
        assert st.profile is not None
        ev = evaluate_rows(st.profile, walk, st.eval_cache, columns)
        counters = st.counters
        counters.begin(ev.uptime_s, now)
        base = device_labels(device)
        if base != st.merged_base:
            st.merged, st.merged_base = {}, base
        merged = st.merged
        get = merged.get

        def merge(raw: Labels) -> Labels:
            labels = merged[raw] = tuple(sorted((*base, *raw)))
            return labels

        heads: dict[Head, int] = {}
        head_of: list[int] = []
        labels: list[Labels] = []
        values: list[float] = []
        rx: list[Sample] = []
        for block in ev.metrics:
            n = len(block.values)
            if not n:
                continue
            m = block.spec
            counter = m.type == "counter" and m.states is None
            head: Head = (m.name, "counter" if counter else "gauge", m.help)
            head_of += [heads.setdefault(head, len(heads))] * n
            mine = [lab if (lab := get(raw)) is not None else merge(raw) for raw in block.labels]
            labels += mine
            if counter:
                values += counters.values(m.name, block.labels, block.comps, block.bits, block.series_source)
            else:
                values += block.values
            if m.name == RX_METRIC:
                rx += [
                    Sample(m.name, lab, v, now, "gauge", m.help)
                    for lab, v in zip(mine, block.values, strict=True)
                ]
        extra: list[Sample] = []
        if ev.info:
            info = tuple(sorted(ev.info.items()))
            lab = get(info)
            extra.append(
                Sample(
                    "govnet_device_info",
                    lab if lab is not None else merge(info),
                    1.0,
                    now,
                    "gauge",
                    DEVICE_INFO_HELP,
                )
            )
        extra += st.rx_baseline.observe(rx, now)
        for s in extra:
            head_of.append(heads.setdefault((s.metric, s.type, s.help), len(heads)))
            labels.append(s.labels)
            values.append(s.value)
        if len(merged) > 4 * len(labels) + 64:
            st.merged = {}  # rows come and go: keep the cache bounded
        layout = st.layout
        if (
            layout is None
            or len(layout.labels) != len(labels)
            or tuple(heads) != layout.heads
            or not all(map(operator.is_, labels, layout.labels))
            or layout.head_of.tolist() != head_of
        ):
            layout = st.layout = Layout(tuple(heads), array("H", head_of), tuple(labels))
        return SampleSet(layout, array("d", values), now)

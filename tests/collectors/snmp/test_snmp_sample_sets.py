"""The collector's compact path (column-wise evaluation, counter blocks, SampleSet layouts) gives exactly
what the per-sample path gives: every real recording, seven polls with counters rising, dropping (32-bit
wraps and resets), an agent restart and a row that vanishes for one poll and comes back."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from collectors.base import device_labels
from collectors.snmp.collector import SnmpCollector, _DeviceState
from collectors.snmp.counters import CounterTracker
from collectors.snmp.evaluate import EvalCache, Walk, evaluate
from collectors.snmp.optics import RxBaseline
from collectors.snmp.profile import select_profile
from collectors.snmp.snmprec import load_snmprec
from core.samples import Sample, SampleSet
from exporters.targets import render
from inventory.model import Device

RECORDINGS = sorted((Path(__file__).parents[2] / "data" / "snmprec").glob("*.snmprec"))
UPTIME = "1.3.6.1.2.1.1.3.0"


def _polls(walk: Walk) -> list[Walk]:
    out = []
    for i in range(7):
        w = dict(walk)
        for k, v in w.items():
            h = zlib.crc32(k.encode())
            if type(v) is int and v > 100000:
                if i in (1, 3, 5, 6):
                    w[k] = v + 1000 * i * (h % 3)
                elif i == 2 and h % 5 == 0:
                    w[k] = max(0, v - 500)  # a drop: a reset, or a wrap for 32-bit counters
                elif i == 2 and h % 7 == 0:
                    w[k] = (v + 2**32 - 10) % 2**32
        if i == 3:
            w[UPTIME] = 5  # the agent restarted
        if i == 4:
            w = {k: v for k, v in w.items() if not k.endswith(".2")}  # row 2 gone for one poll
        out.append(w)
    return out


class Reference:
    """The per-sample path: a RawSample per series, CounterTracker.value() per counter, a Sample each."""

    def __init__(self) -> None:
        self.counters = CounterTracker()
        self.cache = EvalCache()
        self.rx = RxBaseline()

    def samples(self, profile: object, walk: Walk, device: Device, now: float) -> list[Sample]:
        ev = evaluate(profile, walk, self.cache)  # type: ignore[arg-type]
        self.counters.begin(ev.uptime_s, now)
        base = device_labels(device)
        out = []
        for raw in ev.samples:
            labels = tuple(sorted((*base, *raw.labels)))
            if raw.type == "counter":
                value = self.counters.value(
                    (raw.metric, raw.labels), raw.components, raw.bits, raw.series_source
                )
                out.append(Sample(raw.metric, labels, value, now, "counter", raw.help))
            else:
                out.append(Sample(raw.metric, labels, raw.value, now, "gauge", raw.help))
        out.extend(self.rx.observe(out, now))
        return out


def _tuples(samples: object) -> list[tuple[object, ...]]:
    return [(s.metric, s.labels, s.value, s.timestamp, s.type, s.help) for s in samples]  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", RECORDINGS, ids=[p.stem for p in RECORDINGS])
def test_compact_samples_equal_the_per_sample_path(path: Path) -> None:
    walk = load_snmprec(path)
    dev = Device(name="d1", site="s", role="core_switch", vendor="huawei", address="127.0.0.1")
    col = SnmpCollector()
    sysoid = walk.get("1.3.6.1.2.1.1.2.0")
    profile = select_profile(
        col.profiles,
        sysoid.lstrip(".") if isinstance(sysoid, str) else None,
        dev.vendor.value,
        dev.role.value,
    )
    st = _DeviceState(None, None, CounterTracker())  # type: ignore[arg-type]  # no session needed offline
    st.profile = profile
    ref = Reference()
    layouts = []
    for i, w in enumerate(_polls(walk)):
        now = 1000.0 + 60 * i
        got = col._samples(st, w, dev, now)
        want = ref.samples(profile, w, dev, now)
        assert isinstance(got, SampleSet)
        assert _tuples(got) == _tuples(want), f"poll {i}"
        assert render(got) == render(want), f"poll {i}"
        layouts.append(got.layout)
    assert layouts[1] is layouts[0]  # unchanged series: the same layout object, nothing rebuilt
    assert ref.counters.resets + ref.counters.wraps > 0 or "counter" not in {s.type for s in want}
    assert st.counters.resets == ref.counters.resets and st.counters.wraps == ref.counters.wraps

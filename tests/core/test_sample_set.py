"""SampleSet and Layout: a compact sample set reads back as exactly the Samples it was made of, and a
device's layout is shared from one poll to the next while its series stay the same."""

from __future__ import annotations

import pickle
from array import array

import pytest

from core.latest import LatestStore
from core.samples import Layout, Sample, SampleSet, intern_pair

DEV = (("device", "r1"), ("role", "core"), ("site", "ncc"), ("vendor", "huawei"))


def _samples(value: float = 1.0, ts: float = 100.0) -> list[Sample]:
    out = []
    for i in range(1, 4):
        labels = (*DEV[:1], ("ifname", f"Gi0/{i}"), *DEV[1:])
        out.append(Sample("govnet_if_in_octets_total", labels, value * i, ts, "counter", "in"))
        out.append(Sample("govnet_if_oper_up", labels, 1.0, ts, "gauge", "up"))
    out.append(Sample("govnet_up", DEV, 1.0, ts + 1, "gauge", "polled"))  # its own timestamp
    return out


def _tuples(samples: object) -> list[tuple[object, ...]]:
    return [(s.metric, s.labels, s.value, s.timestamp, s.type, s.help) for s in samples]  # type: ignore[attr-defined]


def test_a_set_reads_back_as_its_samples() -> None:
    src = _samples()
    ss = SampleSet.of(src)
    assert len(ss) == len(src)
    assert _tuples(ss) == _tuples(src)
    assert _tuples([ss[i] for i in range(len(ss))]) == _tuples(src)
    assert _tuples(ss[1:4]) == _tuples(src[1:4])
    assert _tuples([ss[-1]]) == _tuples(src[-1:])
    assert ss.metrics() == {"govnet_if_in_octets_total", "govnet_if_oper_up", "govnet_up"}
    assert isinstance(ss.stamps, array)  # mixed timestamps are kept per series


def test_one_timestamp_is_kept_once() -> None:
    src = [s for s in _samples() if s.metric != "govnet_up"]
    ss = SampleSet.of(src)
    assert ss.stamps == 100.0
    assert _tuples(ss) == _tuples(src)


def test_equal_series_reuse_the_previous_layout_and_others_do_not() -> None:
    first = SampleSet.of(_samples(1.0))
    again = SampleSet.of(_samples(2.0), like=first.layout)
    assert again.layout is first.layout
    assert [s.value for s in again][:2] == [2.0, 1.0]
    other = _samples(2.0)[:-1]
    assert SampleSet.of(other, like=first.layout).layout is not first.layout
    renamed = [Sample(s.metric, s.labels, s.value, s.timestamp, s.type, "other help") for s in _samples()]
    assert not SampleSet.of(renamed).layout.same_as(first.layout)


def test_layouts_concat_and_survive_pickling() -> None:
    a = SampleSet.of(_samples()[:4])
    b = SampleSet.of(_samples()[4:])
    joined = a.layout.concat(b.layout)
    ss = SampleSet(joined, a.values + b.values, array("d", [*a.timestamps(), *b.timestamps()]))
    assert _tuples(ss) == _tuples(_samples())
    back = pickle.loads(pickle.dumps(joined))
    assert back.same_as(joined) and back is not joined


def test_interned_layouts_share_pairs_and_keep_shared_tuples_shared() -> None:
    ss = pickle.loads(pickle.dumps(SampleSet.of(_samples())))
    lay = ss.layout.interned()
    assert lay.same_as(ss.layout)
    assert lay.labels[0] is lay.labels[1]  # one interface's label tuple stays one object
    assert lay.labels[0][1] is intern_pair("ifname", "Gi0/1")


def test_a_layout_needs_one_head_and_label_tuple_per_series() -> None:
    with pytest.raises(ValueError):
        Layout((("m", "gauge", ""),), array("H", [0, 0]), (DEV,))
    with pytest.raises(ValueError):
        SampleSet(Layout.build([("m", "gauge", "")], [DEV]), array("d", [1.0, 2.0]), 0.0)


def test_latest_store_keeps_sets_and_replaces_them_per_poll() -> None:
    store = LatestStore()
    store.publish("r1", _samples(1.0))
    first = store.of("r1")
    assert first is not None and _tuples(first) == _tuples(_samples(1.0))
    store.publish("r1", _samples(3.0))
    second = store.of("r1")
    assert second is not None and second is not first
    assert second.layout is first.layout  # the same series: the layout is shared, not rebuilt
    assert _tuples(store.snapshot()) == _tuples(_samples(3.0))
    ready = SampleSet.of(_samples(5.0))
    store.publish("r2", ready)
    assert store.of("r2") is ready
    assert store.devices() == ["r1", "r2"]
    store.remove("r1")
    assert store.of("r1") is None and store.devices() == ["r2"]

"""CounterTracker: wraps, 64-bit preference, agent restarts and source switches, without sleeping."""

from __future__ import annotations

import itertools

from collectors.snmp.counters import CounterTracker

K = ("govnet_if_in_octets_total", (("ifindex", "1"),))


def poll(
    t: CounterTracker, uptime: float, now: float, raws: tuple[int, ...], bits: int = 32, src: str = "a"
) -> float:
    t.begin(uptime, now)
    return t.value(K, raws, bits, src)


def test_first_reading_is_exported_as_is() -> None:
    t = CounterTracker()
    assert poll(t, 100, 0, (1234,)) == 1234


def test_32bit_wrap_is_unwrapped() -> None:
    t = CounterTracker()
    poll(t, 100, 0, (2**32 - 100,))
    assert poll(t, 130, 30, (50,)) == 2**32 - 100 + 150
    assert t.wraps == 1 and t.resets == 0


def test_implausible_32bit_drop_is_a_reset_not_a_huge_delta() -> None:
    t = CounterTracker()
    poll(t, 100, 0, (3_000_000_000,))
    # Wrapping would mean ~4.29e9 octets in 30 s (more than half the range): it is a counter reset.
    assert poll(t, 130, 30, (2_999_999_000,)) == 3_000_000_000 + 2_999_999_000
    assert t.resets == 1 and t.wraps == 0


def test_64bit_never_wraps_a_drop_is_a_reset() -> None:
    t = CounterTracker()
    poll(t, 100, 0, (2**40,), bits=64)
    assert poll(t, 130, 30, (10,), bits=64) == 2**40 + 10


def test_agent_reboot_restarts_counting_from_zero() -> None:
    t = CounterTracker()
    poll(t, 1000, 0, (5000,))
    v = poll(t, 5, 30, (700,))  # sysUpTime went backwards: the agent restarted
    assert t.rebooted and v == 5700
    # Even a value above the old one after a reboot counts only what the new agent counted.
    t2 = CounterTracker()
    poll(t2, 1000, 0, (5000,))
    assert poll(t2, 5, 30, (9000,)) == 5000 + 9000


def test_exported_counter_is_monotonic_over_a_sequence() -> None:
    t = CounterTracker()
    seq = [(100, 10), (130, 2**32 - 5), (160, 20), (5, 3), (35, 4), (65, 4)]
    out = [poll(t, up, i * 30.0, (raw,)) for i, (up, raw) in enumerate(seq)]
    assert all(b >= a for a, b in itertools.pairwise(out))


def test_sum_of_components_unwraps_each() -> None:
    t = CounterTracker()
    poll(t, 100, 0, (2**32 - 10, 5, 7))
    assert poll(t, 130, 30, (10, 6, 7)) == (2**32 - 10 + 5 + 7) + 20 + 1


def test_source_switch_rebaselines_without_a_jump() -> None:
    t = CounterTracker()
    poll(t, 100, 0, (1000,), bits=64, src="ifHCInOctets")
    # The agent stopped answering ifHCInOctets; the 32-bit column has a different absolute value.
    assert poll(t, 130, 30, (55,), bits=32, src="ifInOctets") == 1000
    assert poll(t, 160, 60, (65,), bits=32, src="ifInOctets") == 1010


def test_stale_series_are_forgotten() -> None:
    t = CounterTracker(forget_after_s=100)
    poll(t, 100, 0, (1000,))
    t.begin(500, 1000)
    assert t.value(K, (10,), 32, "a") == 10  # forgotten: a new series starts from its raw value

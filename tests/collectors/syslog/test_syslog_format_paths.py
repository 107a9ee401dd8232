"""The parse shortcuts give the records of the plain path: one RE2 set per format for `extract` and
`rules` (against the two separate sets, which also stand in when the merged set answers nothing, as RE2
does when its DFA runs out of memory), the predicted format's patterns asked with every `detect` in one
set (against the detect set then the format's set), and the `scan` kv readers (against the RE2 pair
patterns)."""

from __future__ import annotations

from collectors.syslog.formats import CompiledFormat, FormatSet, load_formats
from collectors.syslog.parse import _UNUSED, parse_frame
from collectors.syslog.rfc import parse_header
from logstore.record import canonical
from tests.support import syslog_corpus

FORMATS = load_formats()


class _OutOfMemory:
    """What RE2::Set::Match answers through the wrapper when its DFA runs out of memory: no hits
    (the wrapper drops the error; RE2 clears the hits before searching, so never a partial answer)."""

    def __init__(self) -> None:
        self.asked = 0

    def Match(self, data: bytes) -> list[int]:
        self.asked += 1
        return []


def _plain(fmt: CompiledFormat, no_answer: _OutOfMemory) -> CompiledFormat:
    """`fmt` on the plain path: its merged set never answers (so the two separate sets are asked, as
    before the merge) and its kv pairs come from the RE2 patterns."""
    return CompiledFormat(
        fmt.spec, fmt.detect, fmt.extract, fmt.extract_set, [(p, m, s, None) for p, m, s, _ in fmt.kv],
        fmt.rules, fmt.rule_set, fmt.values, fmt.contains, no_answer if fmt.scan_set is not None else None,
    )  # fmt: skip


def test_shortcuts_give_the_records_of_the_plain_path_on_the_corpus() -> None:
    no_answer = _OutOfMemory()
    plain = FormatSet([_plain(f, no_answer) for f in FORMATS], predict=False)
    assert any(s for f in FORMATS for *_, s in f.kv) and all(s is None for f in plain for *_, s in f.kv)
    frames = list(syslog_corpus.frames(syslog_corpus.texts()))
    differ = []
    for raw, recv, source, zones in frames:
        fast = canonical(parse_frame(raw, recv, source, "tcp", FORMATS, syslog_corpus.DEVICES, zones))
        slow = canonical(parse_frame(raw, recv, source, "tcp", plain, syslog_corpus.DEVICES, zones))
        if fast != slow:
            differ.append((raw, fast, slow))
    assert not differ, (len(differ), differ[0])
    assert len(frames) > 5000
    assert no_answer.asked > 3000  # the stand-in path really ran, for most lines


def test_predicted_sets_out_of_memory_fall_back_to_the_plain_path() -> None:
    """Sets that always run out of memory, in place of the predicting ones: the same records."""
    starved = FormatSet(list(FORMATS))
    oom = _OutOfMemory()
    starved.predictor.combos = [oom for _ in starved.predictor.combos]
    frames = list(syslog_corpus.frames(syslog_corpus.texts(mutations=300)))
    for raw, recv, source, zones in frames:
        want = canonical(parse_frame(raw, recv, source, "tcp", FORMATS, syslog_corpus.DEVICES, zones))
        assert canonical(parse_frame(raw, recv, source, "tcp", starved, syslog_corpus.DEVICES, zones)) == want
    assert oom.asked > len(frames) / 2  # a format was predicted for most lines, and the fallback ran


def test_a_flood_in_one_format_is_answered_by_the_predicting_set() -> None:
    line = "%%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, source-ip=10.1.1.{}, rule-name=r."
    formats = load_formats()
    got = [formats.first(line.format(i)) for i in range(3)]
    assert all(
        g is not None and g[0].spec.name == "huawei" and g[1]["src_ip"] == f"10.1.1.{i}"
        for i, g in enumerate(got)
    )
    huawei = next(i for i, f in enumerate(formats) if f.spec.name == "huawei")
    assert formats.predictor.last == huawei


def test_an_empty_answer_of_the_merged_set_is_checked_by_the_separate_sets() -> None:
    raw = (
        b"<190>Mar 12 2024 10:46:04 USG6600 %%01POLICY/6/POLICYDENY(l):vsys=public, protocol=6, "
        b"source-ip=10.1.1.10, source-port=51234, destination-ip=203.0.113.5, destination-port=445, "
        b"time=2024/3/12 10:46:04, source-zone=trust, destination-zone=untrust, rule-name=deny_smb."
    )
    huawei = next(f for f in FORMATS if f.spec.name == "huawei")
    oom = _OutOfMemory()
    starved = CompiledFormat(
        huawei.spec, huawei.detect, huawei.extract, huawei.extract_set, huawei.kv, huawei.rules,
        huawei.rule_set, huawei.values, huawei.contains, oom,
    )  # fmt: skip
    body = raw.split(b" ", 5)[5].decode()
    want = huawei.apply(body, detected=True)
    assert want is not None and want["event_type"] == "policy_deny" and want["vendor_severity"] == "6"
    assert starved.apply(body, detected=True) == want
    assert oom.asked == 1
    rec = parse_frame(raw, 1_773_312_000.0, "10.0.0.1:514", "tcp", FormatSet([starved]), {})
    assert (rec["event_type"], rec["action"], rec["src_ip"], rec["dst_port"]) == (
        "policy_deny",
        "deny",
        "10.1.1.10",
        445,
    )


def test_fields_the_parse_leaves_unread_change_no_other_field() -> None:
    """A format skips `extract` patterns that could only add fields the parse will not read (parse's
    `_UNUSED`: the severity behind a PRI, the host, program and time the header gave): every other field
    is the one read without skipping, for each set the parse may pass, on the seeded corpus."""
    skipped = 0
    for text in syslog_corpus.texts(mutations=1500, seed=33):
        try:
            body = parse_header(text, 1_773_312_000.0).body
        except ValueError:  # an offset beyond 24 h (parse_frame flags the line parse_error)
            continue
        data = body.encode("utf-8", "surrogateescape")
        for fmt in FORMATS:
            full = fmt.apply(body, data)
            for unused in _UNUSED:
                got = fmt.apply(body, data, False, None, unused)
                assert (got is None) == (full is None), (fmt.spec.name, text)
                if got is not None and full is not None:
                    read = {k: v for k, v in got.items() if k not in unused}  # kv pairs may still add some
                    assert read == {k: v for k, v in full.items() if k not in unused}, (fmt.spec.name, text)
                    skipped += any(k in unused and k not in got for k in full)
    assert skipped > 1000  # the skipped fields were there to skip

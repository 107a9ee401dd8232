"""Silence, maintenance and rule matchers run on RE2: patterns that backtrack exponentially or
quadratically in Python's `re` run in linear time on adversarial label values up to 64 KiB, give the
same answers as `re` where `re` can answer, and patterns RE2 cannot run linearly are refused."""

from __future__ import annotations

import re

import pytest

from alerts.regex import RegexError, compile_linear, full_match
from alerts.rules import Condition
from alerts.series import matches
from alerts.silences import parse_matcher

KIB64 = 64 * 1024

# (pattern, adversarial text builder): each is super-linear in a backtracking engine.
ADVERSARIAL = [
    ("(a+)+b", lambda n: "a" * n),  # exponential
    ("(x+x+)+y", lambda n: "x" * n),  # exponential
    ("(a|aa)+c", lambda n: "a" * n),  # exponential
    ("(.*a){12}", lambda n: "a" * n + "!"),  # polynomial of degree 12
    (".*.*=.*", lambda n: "x" * n),  # cubic
    ("(\\w+\\s?)+$", lambda n: "word " * (n // 5) + "!"),  # exponential
    ("[0-9A-Fa-f.:]+?:(\\d+)->x", lambda n: "1:" * (n // 2)),  # the Hillstone shape, quadratic
]


@pytest.mark.timeout(120)  # a backtracking engine would not finish these in hours
@pytest.mark.parametrize(("pattern", "text"), ADVERSARIAL, ids=[p for p, _ in ADVERSARIAL])
def test_adversarial_inputs_up_to_64_kib_finish_with_the_right_answer(pattern: str, text: object) -> None:
    assert callable(text)
    for size in (16, 1024, KIB64):
        value = text(size)
        got = full_match(pattern, value)
        if size == 16:  # small enough for `re` to answer: same result
            assert got == (re.fullmatch(pattern, value) is not None)
        assert got is False  # none of these inputs matches
        # Through the silence matcher and the rule matcher, as the engine and the API use them.
        assert not parse_matcher(f'device=~"{pattern}"').matches({"device": value})
        assert parse_matcher(f'device!~"{pattern}"').matches({"device": value})
        assert not matches((("device", value),), {"device": pattern})


def test_matching_patterns_still_match() -> None:
    assert full_match("jd-.*", "jd-17") and not full_match("jd-.*", "xjd-17")  # anchored
    assert full_match("(x+x+)+", "x" * KIB64)
    assert parse_matcher('site=~"jd-[0-9]+"').matches({"site": "jd-12"})
    assert matches((("site", "jd-12"),), {"site": "jd-[0-9]+"})


@pytest.mark.parametrize("pattern", ["(a)\\1", "(?=a)a", "(?<!b)a", "a++", "x" * 2000])
def test_patterns_without_a_linear_engine_are_refused(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_linear(pattern)
    with pytest.raises(ValueError, match=r"RE2|longer"):
        parse_matcher(f'device=~"{pattern}"')


def test_rule_patterns_are_checked_when_rules_load() -> None:
    with pytest.raises(ValueError, match="RE2"):
        Condition(metric="govnet_up", match={"device": "(a)\\1"})
    assert Condition(metric="govnet_up", match={"device": "(x+x+)+y"}).match

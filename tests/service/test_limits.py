"""The input checks on their own (no hub): command splitting as shlex does it, in linear time; strict JSON."""

from __future__ import annotations

import random
import shlex
import time

import pytest

from hub_ext.service.errors import ApiError
from hub_ext.service.limits import InputLimits, split_command


def test_commands_split_exactly_as_shlex_splits_them():
    rng = random.Random(14)
    alphabet = " \t\n'\"\\ab$#x="
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        try:
            expected = shlex.split(text)
        except ValueError:
            with pytest.raises(ApiError):
                split_command(text)
            continue
        assert split_command(text) == expected, repr(text)


def test_a_long_word_splits_in_linear_time():
    # shlex took 1 s for 100,000 characters and four times as long per doubling; this takes milliseconds.
    started = time.perf_counter()
    assert split_command("x" * 2_000_000) == ["x" * 2_000_000]
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("raw, words", [
    (b'{"a": NaN}', "NaN"),
    (b'{"a": 1e999}', "too large"),
    (b'{"a": ' + b"9" * 30 + b"}", "too large"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b'{"a": "\\u0000"}', "NUL"),
    (b'{"a": 1', "not valid JSON"),
])
def test_bodies_that_are_not_strict_bounded_json_are_refused(raw, words):
    with pytest.raises(ApiError, match=words):
        InputLimits().parse_body(raw)

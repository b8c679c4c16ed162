"""The control protocol's validation: every malformed request becomes a
ControlError with a code and a message, never another exception."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pidone.control.protocol import parse_request
from pidone.errors import ControlError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "chaos"))
from fuzz import mutate_request  # noqa: E402


@pytest.mark.parametrize("line, code", [
    (b"{nope", "bad-request"),
    (b"[1]", "bad-request"),
    (b'{"v": 2, "cmd": "status"}', "version"),
    (b'{"v": 1, "cmd": "format"}', "unknown-command"),
    (b'{"v": 1, "cmd": "logs", "args": {"units": ["../etc"]}}', "bad-request"),
    (b'{"v": 1, "cmd": "logs", "args": {"units": null}}', "bad-request"),
    (b'{"v": 1, "cmd": "logs", "args": {"units": ["a"], "lines": true}}', "bad-request"),
    (b'{"v": 1, "cmd": "logs", "args": {"units": ["a"], "lines": -1}}', "bad-request"),
    (b'{"v": 1, "cmd": "status", "args": {"extra": 1}}', "bad-request"),
    (b"[" * 100000, "bad-request"),
])
def test_malformed_requests_raise_control_errors(line, code):
    with pytest.raises(ControlError) as info:
        parse_request(line)
    assert info.value.code == code and info.value.message


def test_null_means_the_default():
    assert parse_request(b'{"v": 1, "cmd": "logs", "args": {"units": ["a"], "lines": null}}').args["lines"] == 100
    assert parse_request(b'{"v": 1, "cmd": "status", "args": {"units": null}}').args["units"] == []


def test_fuzzed_requests_never_raise_anything_else():
    for seed in range(5000):
        try:
            parse_request(mutate_request(seed).rstrip(b"\n"))
        except ControlError:
            pass

"""RELIABILITY §3.E: resource stability over many restarts, and the unit
file fuzzer against a live PID 1. Each case ends with the G1-G6 checks."""

from __future__ import annotations

import time

import pytest

from conftest import Chaos
from fuzz import mutate_unit

FLAP = {"service": {"command": ["sh", "-c", "exit 1"]}, "restart": {"delay": 0, "max_retries": 0}}


def _restarts(c: Chaos, count: int, timeout: float) -> None:
    c.p.wait_count(r"unit flap: started", count, timeout=timeout)


def test_e1_a_thousand_restarts_leak_no_fd(chaos):
    c = chaos({"flap": FLAP})
    _restarts(c, 100, 60)
    fds = c.p.settled_fd_count()
    _restarts(c, 1100, 240)
    assert abs(c.p.settled_fd_count() - fds) <= 2
    c.check()


@pytest.mark.slow
def test_e2_ten_thousand_restarts_keep_memory_flat(chaos):
    c = chaos({"flap": FLAP}, timeout=900)
    _restarts(c, 1000, 300)
    rss = c.p.rss_kib()
    _restarts(c, 10_000, 900)
    assert c.p.rss_kib() - rss < 5 * 1024
    c.check()


def test_unit_file_fuzz_on_reload(chaos):
    c = chaos({})
    deadline = time.monotonic() + 20
    seed = 0
    while time.monotonic() < deadline and seed < 200:
        (c.units / "fuzzed.toml").write_bytes(mutate_unit(seed))
        seed += 1
        reply = c.request("reload", timeout=30)
        assert reply["ok"], (seed, reply)
    assert seed > 20
    c.check()

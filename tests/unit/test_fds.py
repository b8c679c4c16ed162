"""fds.close_on_exec_all_but: every fd above stdio stops being passed on
exec except those named (what a re-exec hands over), with close_range or,
where the kernel lacks CLOSE_RANGE_CLOEXEC, one fd at a time."""

from __future__ import annotations

import os

import pytest

from pidone import fds, linux


@pytest.fixture
def three_fds():
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(3)]
    for fd in opened:
        os.set_inheritable(fd, True)
    yield opened
    for fd in opened:
        os.close(fd)


@pytest.mark.parametrize("close_range", [True, False], ids=["close_range", "proc-fallback"])
def test_all_but_the_kept_fds_become_close_on_exec(three_fds, monkeypatch, close_range):
    if not close_range:
        monkeypatch.setattr(linux, "close_range_cloexec", lambda first, last: False)
    stdio = [os.get_inheritable(fd) for fd in (0, 1, 2)]
    a, kept, b = three_fds
    assert {a, kept, b} <= fds.inherited_fds()
    fds.close_on_exec_all_but([kept])
    assert [os.get_inheritable(fd) for fd in three_fds] == [False, True, False]
    assert [os.get_inheritable(fd) for fd in (0, 1, 2)] == stdio  # stdio untouched
    assert fds.inherited_fds() & {a, b} == set()
    fds.give_back([a])
    assert os.get_inheritable(a)


def test_close_range_with_cloexec_works_on_this_kernel():
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        os.set_inheritable(fd, True)
        assert linux.close_range_cloexec(fd, fd)
        assert not os.get_inheritable(fd)
    finally:
        os.close(fd)

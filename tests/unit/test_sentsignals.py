"""SentSignals against the real kernel, in this process: the SIGPIPE raised
for our own write to a closed pipe is read and dropped (the write still
fails with EPIPE); a SIGXFSZ or SIGPIPE another process sends is passed on."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from pidone.loop import Loop
from pidone.sentsignals import SIGNALS, SentSignals, is_sent


@pytest.mark.parametrize(("code", "pid", "sent"), [
    (0, 0, True),     # SI_USER from outside our PID namespace (docker kill)
    (0, 42, True),    # SI_USER from a process of ours
    (-1, 42, True),   # SI_QUEUE
    (-6, 42, True),   # SI_TKILL
    (0, 7, False),    # SI_USER "from ourselves": the kernel, for our own write
    (0x80, 0, False),  # SI_KERNEL
])
def test_who_sent_it(code, pid, sent):
    assert is_sent(code, pid, me=7) is sent


@pytest.fixture
def loop():
    loop = Loop()
    yield loop
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
    loop.close()


def test_our_own_sigpipe_is_dropped_and_a_sent_one_passed_on(loop):
    passed: list[int] = []
    sent = SentSignals(loop, passed.append)
    assert sent.blocked == SIGNALS
    r, w = os.pipe()
    os.close(r)
    with pytest.raises(BrokenPipeError):
        os.write(w, b"x")  # the kernel raises SIGPIPE in us; it stays pending, blocked
    os.close(w)
    assert subprocess.run(["kill", "-XFSZ", str(os.getpid())]).returncode == 0
    loop.call_later(5, loop.stop)
    while not passed:
        loop.run_once()
    assert passed == [signal.SIGXFSZ]
    assert subprocess.run(["kill", "-PIPE", str(os.getpid())]).returncode == 0
    while len(passed) < 2:
        loop.run_once()
    assert passed == [signal.SIGXFSZ, signal.SIGPIPE]
    os.close(sent.fd)

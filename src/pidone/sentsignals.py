"""SIGPIPE and SIGXFSZ: pass on the ones someone sent, never the kernel's.

Python ignores both, so that a write to a closed pipe or past RLIMIT_FSIZE
fails with EPIPE or EFBIG instead of killing the process; pidone relies on
that (a reader of its output may go away). But `docker kill -s PIPE` must
reach the main command like any other catchable signal, as tini does, and
an ignored signal is simply gone. So pidone blocks both and reads them from
a signalfd, which tells who sent each: the kernel raises them for pidone's
own write as if pidone had sent them to itself (si_code SI_USER, si_pid
pidone's own pid). Those are dropped; every other one is passed on. Blocked
signals still make the write fail with EPIPE/EFBIG, so nothing else changes.

A standard signal does not queue while one is pending: someone's SIGPIPE
arriving in the instant between pidone's failed write and the loop reading
the kernel's is merged into it and lost. The loop reads the signalfd as soon
as it is readable, so that window is one turn of the loop.
"""

from __future__ import annotations

import os
import signal
import struct
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pidone.loop import Loop

SIGNALS = frozenset({signal.SIGPIPE, signal.SIGXFSZ})
SIGINFO_SIZE = 128  # struct signalfd_siginfo
SIGINFO_HEAD = struct.Struct("=IiiI")  # ssi_signo, ssi_errno, ssi_code, ssi_pid


def is_sent(code: int, pid: int, me: int) -> bool:
    """True for a signal another process sent (kill, sigqueue, tgkill: a
    code <= 0); False for one the kernel raised, including SIGPIPE and
    SIGXFSZ for our own write, which come as SI_USER from ourselves."""
    return code <= 0 and pid != me


class SentSignals:
    """Blocks SIGPIPE and SIGXFSZ and calls `on_sent(signum)` from the loop
    for each one another process sent. Where no signalfd can be made they
    stay ignored, as before (and are never passed on)."""

    def __init__(self, loop: "Loop", on_sent: Callable[[int], None]):
        from pidone import linux

        self._on_sent = on_sent
        self.blocked: frozenset[int] = frozenset()
        try:
            self.fd = linux.signalfd(SIGNALS)
        except OSError:
            self.fd = None
        if self.fd is None:
            return
        self.blocked = SIGNALS
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        loop.add_reader(self.fd, self._drain)

    def _drain(self) -> None:
        me = os.getpid()
        while True:
            try:
                data = os.read(self.fd, SIGINFO_SIZE * 16)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for offset in range(0, len(data) - SIGINFO_SIZE + 1, SIGINFO_SIZE):
                signo, _errno, code, pid = SIGINFO_HEAD.unpack_from(data, offset)
                if is_sent(code, pid, me):
                    self._on_sent(signo)

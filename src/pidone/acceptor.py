"""Accepting connections on a listening socket without ever spinning, and
without letting clients take the descriptors supervision needs.

The loop's epoll is level-triggered: a listening socket stays readable for
as long as a client waits in its backlog. When accept() fails for want of
a descriptor (EMFILE, ENFILE), trying again at once spins: PID 1 burned a
core and wrote half a million lines in 4 s. So the listening fd is taken
off the loop instead (clients wait in the backlog; said once) and put back
when one of our connections closes, or after RETRY seconds: a timer armed
only while paused, so an idle pidone never wakes.

A reserve: clients never take the last RESERVE_FDS descriptors below the
limit, which supervision needs (a restart's log pipes, pidfds, the state).
accept() returns the lowest free number, so a connection numbered within
RESERVE_FDS of the limit means fewer than that are left: it is refused at
once (the server answers `busy`) and closed. A lone client is never refused
for that (it costs one descriptor), so pidone stays manageable even under
a limit too small for any reserve.
"""

from __future__ import annotations

import errno
import os
import resource
import socket
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pidone.loop import Loop, Timer

RETRY = 0.5  # seconds between tries while out of descriptors
RESERVE_FDS = 32  # kept free for supervision
SAY_EVERY = 60.0  # seconds: a flapping limit is reported at most this often
OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})  # that client only


def soft_fd_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Acceptor:
    """Hands each accepted socket to `accept`, or to `refuse` (which must
    close it) when it would eat into the reserve. `what` names the server
    in messages ("control", "http"). `ceiling()` is the descriptor limit
    the reserve is kept below (the soft RLIMIT_NOFILE by default);
    `serving()` how many connections the server holds."""

    def __init__(self, loop: "Loop", sock: socket.socket, *, what: str, accept: Callable[[socket.socket], None],
                 refuse: Callable[[socket.socket], None], log: Callable[[str], None],
                 ceiling: Callable[[], int] = soft_fd_limit, serving: Callable[[], int] = lambda: 1,
                 batch: int = 64):
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._what = what
        self._accept = accept
        self._refuse = refuse
        self._log = log
        self._ceiling = ceiling
        self._serving = serving
        self._batch = batch
        self.paused = False
        self._closed = False
        self._timer: Timer | None = None
        self._said: dict[str, float] = {}  # message kind -> when last said
        self._say_resumed = False
        loop.add_reader(self._fd, self._on_readable)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.paused:
            self._loop.remove_reader(self._fd)
        self.paused = self._closed = True  # and never resumed

    def resume(self) -> None:
        """A descriptor may be free again (a connection closed, or the
        retry timer): listen again if paused. Cheap when not paused."""
        if not self.paused or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.paused = False
        self._loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        for _ in range(self._batch):
            try:
                conn, _addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in TRANSIENT:
                    continue
                self._pause(exc)
                return
            if self._say_resumed:
                self._say_resumed = False
                self._log(f"{self._what}: accepting connections again")
            if conn.fileno() >= self._ceiling() - RESERVE_FDS and self._serving() > 0:
                self._say("reserve", f"{self._what}: refusing connections: fewer than {RESERVE_FDS} file "
                                     f"descriptors are left below the limit of {self._ceiling()}, and those are "
                                     "kept for supervising the units")
                self._refuse(conn)
                continue
            self._accept(conn)

    def _pause(self, exc: OSError) -> None:
        """Out of descriptors (or any other persistent error): stop
        listening until a connection closes or RETRY seconds pass."""
        self.paused = True
        self._loop.remove_reader(self._fd)
        self._timer = self._loop.call_later(RETRY, self._retry)
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if self._say("paused", f"{self._what}: cannot accept connections ({reason}); not accepting any until "
                               f"a descriptor is free (trying again every {RETRY:g}s)"):
            self._say_resumed = True

    def _retry(self) -> None:
        self._timer = None
        self.resume()

    def _say(self, kind: str, text: str) -> bool:
        """Log `text` unless the same kind was said within SAY_EVERY."""
        now = time.monotonic()
        last = self._said.get(kind)
        if last is not None and now - last < SAY_EVERY:
            return False
        self._said[kind] = now
        self._log(text)
        return True

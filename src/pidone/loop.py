"""The event loop: one thread, epoll, signals through a wakeup fd, and a
heap of monotonic deadlines. It sleeps until something happens; an idle
pidone makes no wake-ups at all.

Why not asyncio: its child watchers want to own waitpid, which fights a PID 1
that must reap everything, and its awaits let commands interleave. Why epoll
and not the selectors module: pidone runs only on Linux, and registering a
unit's pipe took 12 us through selectors, 5 us directly (two per unit
started, out of about 300 us in all).
"""

from __future__ import annotations

import heapq
import itertools
import os
import select
import signal
import sys
import time
import traceback
from typing import Callable

Callback = Callable[[], None]
BUSY_FLUSH = 0.1  # seconds: `before_sleep` runs at least this often while the loop never sleeps

READ, WRITE = 0, 1  # index into a registration's [reader, writer]
_MASKS = (select.EPOLLIN, select.EPOLLOUT)


class Timer:
    """A pending call at a monotonic deadline; `cancel()` makes it a no-op."""

    __slots__ = ("deadline", "callback", "cancelled")

    def __init__(self, deadline: float, callback: Callback):
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


def _ignore_signal(signum: int, frame: object) -> None:
    """The Python-level handler: the wakeup fd carries the signal to the loop,
    so there is nothing to do here (and nothing that could raise)."""


class Loop:
    """Dispatches fd readiness, signals and timers to callbacks.

    Every callback is wrapped: an exception is reported with its traceback
    through `on_error` and the loop carries on, because PID 1 must not die.
    """

    def __init__(self, on_error: Callable[[str], None] | None = None):
        self._epoll = select.epoll()
        self._handlers: dict[int, list[Callback | None]] = {}  # fd -> [reader, writer]
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._signal_callbacks: dict[int, Callable[[int], None]] = {}
        self._stopping = False
        # Called before the loop blocks (and at least every BUSY_FLUSH seconds
        # while it never does): whatever the last turns changed is put in
        # the daemon's state there. Not before every turn: in a burst of
        # events the loop does not sleep, and one update covers the burst.
        self.before_sleep: Callback | None = None
        self._flushed_at = 0.0
        self._on_error = on_error or (lambda text: sys.stderr.write(text))
        self._wakeup_r, self._wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wakeup_w, warn_on_full_buffer=False)
        self.add_reader(self._wakeup_r, self._read_signals)

    # -- registration -------------------------------------------------------

    def on_signal(self, signum: int, callback: Callable[[int], None],
                  immediate: Callable[[int, object], None] | None = None) -> None:
        """Call `callback(signum)` from the loop each time `signum` arrives.

        `immediate`, if given, is the Python-level handler: it runs as soon as
        the interpreter sees the signal (between two bytecodes, in this
        thread), before the loop wakes. Keep it tiny and unable to raise.
        """
        self._signal_callbacks[signum] = callback
        signal.signal(signum, immediate or _ignore_signal)

    def add_reader(self, fd: int, callback: Callback) -> None:
        self._add(fd, READ, callback)

    def remove_reader(self, fd: int) -> None:
        self._remove(fd, READ)

    def add_writer(self, fd: int, callback: Callback) -> None:
        self._add(fd, WRITE, callback)

    def remove_writer(self, fd: int) -> None:
        self._remove(fd, WRITE)

    def call_at(self, deadline: float, callback: Callback) -> Timer:
        """Run `callback` once `time.monotonic()` reaches `deadline`."""
        timer = Timer(deadline, callback)
        heapq.heappush(self._timers, (deadline, next(self._sequence), timer))
        return timer

    def call_later(self, delay: float, callback: Callback) -> Timer:
        return self.call_at(time.monotonic() + delay, callback)

    def stop(self) -> None:
        """Make `run()` return after the current dispatch."""
        self._stopping = True

    def close(self) -> None:
        """Release the selector and the wakeup pipe."""
        signal.set_wakeup_fd(-1)
        self._epoll.close()
        os.close(self._wakeup_r)
        os.close(self._wakeup_w)

    # -- running ------------------------------------------------------------

    def run(self) -> None:
        """Dispatch events until `stop()` is called."""
        self._stopping = False
        while not self._stopping:
            self.run_once()

    def run_once(self) -> None:
        """Wait for the next event or deadline and dispatch what is ready."""
        timeout = self._next_timeout()
        try:
            ready = None
            if self.before_sleep is not None:
                ready = self._epoll.poll(0) if timeout != 0 else None  # [] : we are about to sleep
                now = time.monotonic()
                if ready == [] or now - self._flushed_at > BUSY_FLUSH:
                    self._flushed_at = now
                    self._dispatch(self.before_sleep)
                    if ready == []:
                        ready, timeout = None, self._next_timeout()
            if ready is None:
                ready = self._epoll.poll(-1 if timeout is None else timeout)
        except BaseException:  # noqa: BLE001 - PID 1 must survive anything
            self._report("epoll failed")
            return
        # What each fd was registered with when it fired: an earlier callback
        # in this batch may close it (and its number may even belong to a new
        # registration by then), so each is dispatched only while the same
        # callback is still registered. A hang-up or an error wakes both
        # sides, as the selectors module does.
        fired = [(fd, mask, tuple(self._handlers.get(fd, (None, None)))) for fd, mask in ready]
        for fd, mask, (reader, writer) in fired:
            if reader is not None and mask & ~select.EPOLLOUT and self._still(fd, READ, reader):
                self._dispatch(reader)
            if writer is not None and mask & ~select.EPOLLIN and self._still(fd, WRITE, writer):
                self._dispatch(writer)
        self._run_due_timers()

    def _still(self, fd: int, which: int, callback: Callback) -> bool:
        handlers = self._handlers.get(fd)
        return handlers is not None and handlers[which] is callback

    def _next_timeout(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        if not self._timers:
            return None  # nothing scheduled: sleep until an fd or a signal
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        while self._timers and (self._timers[0][0] <= now or self._timers[0][2].cancelled):
            timer = heapq.heappop(self._timers)[2]
            if not timer.cancelled:
                timer.cancelled = True  # a fired timer cannot be cancelled again
                self._dispatch(timer.callback)

    def _read_signals(self) -> None:
        try:
            data = os.read(self._wakeup_r, 65536)
        except BlockingIOError:
            return
        # Standard signals coalesce in the kernel while pending; do the same
        # for a batch read at once (a storm of SIGHUPs is one reload, a storm
        # of SIGCHLDs one drain). Realtime signals queue: keep every one.
        seen: set[int] = set()
        for signum in data:
            if signum < signal.SIGRTMIN:
                if signum in seen:
                    continue
                seen.add(signum)
            callback = self._signal_callbacks.get(signum)
            if callback is not None:
                self._dispatch(lambda: callback(signum))

    # -- plumbing -----------------------------------------------------------

    def _add(self, fd: int, which: int, callback: Callback) -> None:
        handlers = self._handlers.get(fd)
        known = handlers is not None
        if handlers is None:
            handlers = self._handlers[fd] = [None, None]
        handlers[which] = callback
        mask = (_MASKS[READ] if handlers[READ] else 0) | (_MASKS[WRITE] if handlers[WRITE] else 0)
        try:
            if known:
                self._epoll.modify(fd, mask)
            else:
                self._epoll.register(fd, mask)
        except FileNotFoundError:  # closed without being removed, and the number reused
            self._epoll.register(fd, mask)
        except FileExistsError:
            self._epoll.modify(fd, mask)

    def _remove(self, fd: int, which: int) -> None:
        handlers = self._handlers.get(fd)
        if handlers is None or handlers[which] is None:
            return
        handlers[which] = None
        try:
            if handlers[1 - which] is None:
                del self._handlers[fd]
                self._epoll.unregister(fd)
            else:
                self._epoll.modify(fd, _MASKS[1 - which])
        except OSError:
            pass  # already closed: the kernel dropped it from the epoll set

    def _dispatch(self, callback: Callback) -> None:
        try:
            callback()
        except BaseException:  # noqa: BLE001 - PID 1 must survive anything
            self._report("unexpected error in a handler; carrying on")

    def _report(self, what: str) -> None:
        try:
            self._on_error(f"{what}:\n{traceback.format_exc()}")
        except BaseException:  # noqa: BLE001 - reporting must not kill us either
            pass

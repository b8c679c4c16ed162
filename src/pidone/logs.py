"""Where lines go: a non-blocking, bounded writer over pidone's stdout or
stderr, and the formatting of pidone's own messages.

pidone must never block on its own output: when the reader is slow, lines
beyond the buffer are dropped, counted, and the count is reported once the
reader catches up.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from pidone.loop import Loop

DEFAULT_BUFFER_LIMIT = 1 << 20  # bytes held for a slow reader before dropping


def private_nonblocking_fd(fd: int) -> tuple[int, bool]:
    """Return (an fd writing where `fd` writes, is_socket).

    O_NONBLOCK lives on the open file description, which pidone's stdout
    shares with the main command's: setting it there would hand the child
    EAGAIN. So pipes and ttys are reopened through /proc for a description
    of our own; sockets are written with MSG_DONTWAIT instead; regular files
    never return EAGAIN and are simply duplicated.
    """
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC), False
    if stat.S_ISSOCK(mode):
        return os.dup(fd), True
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        flags = os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
        try:
            return os.open(f"/proc/self/fd/{fd}", flags), False
        except OSError:
            pass  # no /proc: fall back to a plain duplicate
    return os.dup(fd), False


class Sink:
    """A bounded, non-blocking byte stream to one fd.

    `write()` never blocks: what the fd cannot take now is queued up to
    `limit` bytes and flushed when the loop says the fd is writable; past
    that, whole lines are dropped and counted.
    """

    def __init__(self, fd: int, limit: int = DEFAULT_BUFFER_LIMIT):
        self.fd, self._is_socket = private_nonblocking_fd(fd)
        self._limit = limit
        self._pending = bytearray()
        self._loop: Loop | None = None
        self._waiting = False
        self.dropped_lines = 0
        self._reported_drops = 0
        self.broken = False  # the reader is gone (EPIPE): drop everything
        # Called with the number of lines dropped, once the reader caught up.
        self.on_caught_up: "Callable[[int], None] | None" = None

    def attach(self, loop: Loop) -> None:
        """Flush through `loop` from now on (before this, writes are best effort)."""
        self._loop = loop

    def write(self, data: bytes) -> None:
        """Queue `data` (one or more whole lines) and write what the fd takes."""
        if self.broken:
            return
        if self._pending:
            if len(self._pending) + len(data) > self._limit:
                self.dropped_lines += max(1, data.count(b"\n"))
                return
            self._pending += data
            return
        written = self._write_now(data)
        if written < len(data):
            rest = data[written:]
            if len(rest) > self._limit:
                self.dropped_lines += max(1, rest.count(b"\n"))
                return
            self._pending += rest
            self._wait_writable()

    def flush_blocking(self, timeout: float = 1.0) -> None:
        """At exit: give a slow reader up to `timeout` seconds for what is queued."""
        deadline = time.monotonic() + timeout
        while self._pending and not self.broken and time.monotonic() < deadline:
            written = self._write_now(bytes(self._pending))
            del self._pending[:written]
            if self._pending:
                time.sleep(0.01)  # exit path only: the loop is gone

    def take_drop_report(self) -> int:
        """Return how many lines were dropped since the last report (and reset)."""
        new = self.dropped_lines - self._reported_drops
        self._reported_drops = self.dropped_lines
        return new

    def _write_now(self, data: bytes) -> int:
        try:
            if self._is_socket:
                return _send(self.fd, data)
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0
        except BrokenPipeError:
            self.broken = True
            self._pending.clear()
            return len(data)
        except OSError:
            # EIO on a hung-up tty, ENOSPC on a full disk: drop, never die.
            self.dropped_lines += max(1, data.count(b"\n"))
            return len(data)

    def _wait_writable(self) -> None:
        if self._loop is not None and not self._waiting:
            self._waiting = True
            self._loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        written = self._write_now(bytes(self._pending))
        del self._pending[:written]
        if not self._pending and self._loop is not None:
            self._loop.remove_writer(self.fd)
            self._waiting = False
            dropped = self.take_drop_report()
            if dropped and self.on_caught_up is not None:
                self.on_caught_up(dropped)


def _send(fd: int, data: bytes) -> int:
    """send() with MSG_DONTWAIT on a socket fd we do not own as an object."""
    sock = socket.socket(fileno=fd)
    try:
        return sock.send(data, socket.MSG_DONTWAIT)
    finally:
        sock.detach()


class Messages:
    """pidone's own messages: `pidone: text` on stderr in tini mode, or
    `pidone | text` (or a JSON object) in the log stream with units."""

    def __init__(self, sink: Sink, *, style: str = "stderr", name: str = "pidone"):
        self.sink = sink
        self._style = style  # "stderr", "text" or "json"
        self._name = name

    def say(self, text: str) -> None:
        """Emit one message (several lines become several messages)."""
        for line in text.rstrip("\n").split("\n"):
            self.sink.write(self.format_line(line))

    def format_line(self, line: str) -> bytes:
        if self._style == "json":
            import orjson

            record = {"time": time.time(), "unit": self._name, "stream": "stderr", "message": line}
            return orjson.dumps(record) + b"\n"
        separator = ": " if self._style == "stderr" else " | "
        return f"{self._name}{separator}{line}\n".encode("utf-8", "backslashreplace")


MAX_LINE = 64 * 1024  # longer lines are split, so one line cannot hold memory
READ_CHUNK = 64 * 1024  # one read per readiness event keeps the loop fair
HISTORY_BYTES = 256 * 1024  # per unit, for `pidone logs` and post-mortems
HISTORY_LINES = 5000


class History:
    """The last lines of one unit, bounded in lines and in bytes."""

    def __init__(self, max_bytes: int = HISTORY_BYTES, max_lines: int = HISTORY_LINES):
        from collections import deque

        self.lines: deque[tuple[float, str, bytes]] = deque()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_lines = max_lines

    def add(self, when: float, stream: str, line: bytes) -> None:
        self.lines.append((when, stream, line))
        self._bytes += len(line)
        while self.lines and (self._bytes > self._max_bytes or len(self.lines) > self._max_lines):
            self._bytes -= len(self.lines.popleft()[2])

    def last(self, count: int) -> list[tuple[float, str, bytes]]:
        if count <= 0:
            return []
        return list(self.lines)[-count:]


class LogRouter:
    """Reads units' stdout/stderr pipes and writes their lines, framed as
    `NAME | line` (or JSON), to the log sink. Never blocks: pipes are
    non-blocking, and one read per wake-up keeps a flooding unit from
    starving the others."""

    def __init__(self, loop: "Loop", sink: Sink, log_format: str = "text"):
        self._loop = loop
        self._sink = sink
        self._json = log_format == "json"
        self._streams: dict[int, tuple[str, str, bytearray]] = {}
        self._fds_of: dict[str, list[int]] = {}  # unit -> its open pipes (a drain per exit must not scan all)
        self.history: dict[str, History] = {}
        # Followers of `pidone logs -f`: called with (unit, stream, time, line).
        self.followers: set = set()
        # Extra per-unit writers ([log] file): unit -> callable(bytes).
        self.copies: dict[str, object] = {}

    def add(self, fd: int, unit: str, stream: str) -> None:
        """Route what `fd` (a pipe read end we own) carries, as `unit`'s `stream`."""
        os.set_blocking(fd, False)
        self._streams[fd] = (unit, stream, bytearray())
        self._fds_of.setdefault(unit, []).append(fd)
        self._loop.add_reader(fd, lambda: self._on_readable(fd))

    def drain(self, unit: str, budget: int = 1 << 20) -> None:
        """Read what `unit`'s pipes hold right now (up to `budget` bytes), so
        its last lines come before the news of its exit."""
        for fd in list(self._fds_of.get(unit, ())):
            while budget > 0 and fd in self._streams:
                try:
                    data = os.read(fd, READ_CHUNK)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""
                if not data:
                    self._close(fd)
                    break
                budget -= len(data)
                self._take(fd, data)
                if len(data) < READ_CHUNK:
                    break  # a short read: the pipe is empty for now

    def snapshot(self) -> list[list]:
        """[fd, unit, stream, partial line (latin-1 text)] for every open pipe."""
        return [[fd, unit, stream, bytes(partial).decode("latin-1")] for fd, (unit, stream, partial) in self._streams.items()]

    def adopt(self, fd: int, unit: str, stream: str, partial: str = "") -> None:
        """Route an inherited pipe again (after a re-exec)."""
        os.set_inheritable(fd, False)
        self.add(fd, unit, stream)
        self._streams[fd][2].extend(partial.encode("latin-1"))

    def close_all(self) -> None:
        """At exit: flush partial lines and close every pipe."""
        for fd in list(self._streams):
            self._close(fd)

    def _on_readable(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(fd)
            return
        self._take(fd, data)

    def _take(self, fd: int, data: bytes) -> None:
        """Frame `data` read from `fd` into lines and emit the whole ones."""
        unit, stream, partial = self._streams[fd]
        partial += data
        if b"\n" not in data and len(partial) < MAX_LINE:
            return
        lines = partial.split(b"\n")
        rest = lines.pop()
        out = []
        for line in lines:
            out.extend(self._chunks(line))
        while len(rest) >= MAX_LINE:
            out.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        partial[:] = rest
        self._emit(unit, stream, out)

    def _close(self, fd: int) -> None:
        unit, stream, partial = self._streams.pop(fd)
        fds = self._fds_of[unit]
        fds.remove(fd)
        if not fds:
            del self._fds_of[unit]
        self._loop.remove_reader(fd)
        os.close(fd)
        if partial:
            self._emit(unit, stream, [bytes(partial)])

    def _emit(self, unit: str, stream: str, lines: list[bytes]) -> None:
        """Write lines to the log stream, the unit's history, its file copy
        and whoever follows."""
        if not lines:
            return
        now = time.time()
        formatted = b"".join(self.format(unit, stream, line, now) for line in lines)
        self._sink.write(formatted)
        history = self.history.get(unit)
        if history is None:
            history = self.history[unit] = History()
        for line in lines:
            history.add(now, stream, line)
        copy = self.copies.get(unit)
        if copy is not None:
            copy(formatted)
        for follower in list(self.followers):
            for line in lines:
                follower(unit, stream, now, line)

    @staticmethod
    def _chunks(line: bytes) -> list[bytes]:
        if len(line) <= MAX_LINE:
            return [line]
        return [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)]

    def format(self, unit: str, stream: str, line: bytes, when: float | None = None) -> bytes:
        if self._json:
            import orjson

            record = {"time": when or time.time(), "unit": unit, "stream": stream,
                      "message": line.decode("utf-8", "replace")}
            return orjson.dumps(record) + b"\n"
        if stream[-7:-6] == ":":  # "exec_start_pre:stdout": a hook's output, marked as such
            return b"%s [%s] | %s\n" % (unit.encode(), stream[:-7].encode(), line)
        return unit.encode() + b" | " + line + b"\n"

"""Readiness and health probes (tcp, http, exec, path), run on the loop
without ever blocking it: sockets are non-blocking, exec probes are
ordinary children whose exit the one reaper reports, and every attempt has
a deadline."""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING, Callable

from pidone.errors import PidoneError
from pidone.units import Probe, ProbeKind

if TYPE_CHECKING:
    from pidone.loop import Loop, Timer

Done = Callable[[bool, str], None]  # (passed, detail)
MAX_HTTP_RESPONSE = 4096  # only the status line matters


class Attempt:
    """One probe attempt; calls `done` exactly once unless cancelled."""

    def __init__(self, loop: "Loop", done: Done):
        self._loop = loop
        self._done = done
        self._timer: Timer | None = None
        self._finished = False
        self._cleanups: list[Callable[[], None]] = []

    def arm(self, timeout: float) -> None:
        self._timer = self._loop.call_later(timeout, lambda: self.finish(False, f"timed out after {timeout:g}s"))

    def on_cleanup(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def finish(self, passed: bool, detail: str) -> None:
        if self._finished:
            return
        self.cancel()
        self._done(passed, detail)

    def cancel(self) -> None:
        """Abandon the attempt: close its socket, kill its process."""
        if self._finished:
            return
        self._finished = True
        if self._timer is not None:
            self._timer.cancel()
        for cleanup in self._cleanups:
            try:
                cleanup()
            except OSError:
                pass


StartExec = Callable[[str, tuple[str, ...], Callable[[int], None]], int]


class ProbeRunner:
    """Starts probe attempts. `start_exec(owner, argv, on_exit)` spawns an
    exec probe for unit `owner` and returns its pid (the supervisor's job,
    as the owner of the reaper); `on_exit(status)` gets its wait status."""

    def __init__(self, loop: "Loop", start_exec: StartExec, kill: Callable[[int], None]):
        self._loop = loop
        self._start_exec = start_exec
        self._kill = kill

    def run(self, probe: Probe, timeout: float, done: Done, owner: str = "") -> Attempt:
        """Start one attempt of `probe` for unit `owner`; `done(passed,
        detail)` follows, always from the loop."""
        attempt = Attempt(self._loop, done)
        attempt.arm(timeout)
        # The result is always delivered from the loop, never from inside
        # run(): callers may not be ready for it until run() has returned.
        try:
            if probe.kind == ProbeKind.PATH:
                exists = os.path.exists(probe.path)
                self._finish_soon(attempt, exists, "exists" if exists else f"{probe.path} does not exist")
            elif probe.kind == ProbeKind.EXEC:
                self._run_exec(probe, attempt, owner)
            else:
                self._run_socket(probe, attempt)
        except OSError as exc:
            self._finish_soon(attempt, False, os.strerror(exc.errno) if exc.errno else str(exc))
        except PidoneError as exc:  # an exec probe that cannot be spawned
            self._finish_soon(attempt, False, str(exc))
        return attempt

    def _finish_soon(self, attempt: Attempt, passed: bool, detail: str) -> None:
        self._loop.call_later(0, lambda: attempt.finish(passed, detail))

    def _run_exec(self, probe: Probe, attempt: Attempt, owner: str) -> None:
        def on_exit(status: int) -> None:
            code = os.waitstatus_to_exitcode(status)
            attempt.finish(code == 0, f"{probe.argv[0]} exited with status {code}" if code >= 0
                           else f"{probe.argv[0]} killed by signal {-code}")

        pid = self._start_exec(owner, probe.argv, on_exit)
        attempt.on_cleanup(lambda: self._kill(pid))

    def _run_socket(self, probe: Probe, attempt: Attempt) -> None:
        family = socket.AF_INET6 if ":" in probe.host else socket.AF_INET
        host = probe.host
        if host == "localhost":
            host, family = "127.0.0.1", socket.AF_INET  # no resolver on the loop
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        fd = sock.fileno()
        attempt.on_cleanup(lambda: (self._loop.remove_reader(fd), self._loop.remove_writer(fd), sock.close()))
        code = sock.connect_ex((host, probe.port))
        if code not in (0, errno.EINPROGRESS):
            self._finish_soon(attempt, False, f"connect to {probe.target}: {os.strerror(code)}")
            return

        def on_connected() -> None:
            self._loop.remove_writer(fd)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                attempt.finish(False, f"connect to {probe.host}:{probe.port}: {os.strerror(error)}")
            elif probe.kind == ProbeKind.TCP:
                attempt.finish(True, "connected")
            else:
                self._http_request(probe, sock, attempt)

        self._loop.add_writer(fd, on_connected)

    def _http_request(self, probe: Probe, sock: socket.socket, attempt: Attempt) -> None:
        request = (
            f"GET {probe.path or '/'} HTTP/1.0\r\nHost: {probe.host}:{probe.port}\r\n"
            "User-Agent: pidone\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            sock.send(request)  # a few bytes into a fresh socket: never partial
        except OSError as exc:
            attempt.finish(False, f"send to {probe.target}: {os.strerror(exc.errno or 0)}")
            return
        response = bytearray()
        fd = sock.fileno()

        def on_readable() -> None:
            try:
                data = sock.recv(MAX_HTTP_RESPONSE)
            except BlockingIOError:
                return
            except OSError as exc:
                attempt.finish(False, f"read from {probe.target}: {os.strerror(exc.errno or 0)}")
                return
            response.extend(data)
            if b"\n" in response or not data or len(response) >= MAX_HTTP_RESPONSE:
                attempt.finish(*_http_verdict(bytes(response), probe.target))

        self._loop.add_reader(fd, on_readable)


def _http_verdict(response: bytes, target: str) -> tuple[bool, str]:
    status_line = response.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    parts = status_line.split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        code = int(parts[1])
        return 200 <= code < 300, f"{target} answered {code}"
    return False, f"{target} did not answer HTTP"

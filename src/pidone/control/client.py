"""The CLI's side of the control socket: connect, send one request, read
the reply (or a stream). Blocking, with timeouts; imports nothing heavy."""

from __future__ import annotations

import os
import socket
from typing import Iterator

from pidone.control import protocol


class Unreachable(Exception):
    """No pidone answers on the control socket."""


class Refused(Exception):
    """The control socket is not ours to open (permissions)."""


class TimedOut(Exception):
    """pidone did not answer within the time we were willing to wait."""


def default_runtime_dir() -> str:
    """SPEC §1: /run/pidone as root, else $XDG_RUNTIME_DIR/pidone or /tmp/pidone-$UID."""
    if os.geteuid() == 0:
        return "/run/pidone"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "pidone") if xdg else f"/tmp/pidone-{os.geteuid()}"


def socket_path(runtime_dir: str | None) -> str:
    runtime = runtime_dir or os.environ.get("PIDONE_RUNTIME_DIR") or default_runtime_dir()
    return os.path.join(runtime, "private", "control.sock")


def _connect(path: str, timeout: float | None) -> socket.socket:
    import time

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    deadline = time.monotonic() + (timeout or 30.0)
    try:
        while True:
            try:
                sock.connect(path)
                break
            except BlockingIOError:
                # The backlog is full (a flood of clients): wait our turn.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    except PermissionError:
        sock.close()
        raise Refused(f"cannot open {path}: only root or pidone's own user may use the control socket") from None
    except OSError as exc:
        sock.close()
        raise Unreachable(f"cannot reach pidone at {path}: {exc.strerror or exc}") from None
    return sock


def _lines(sock: socket.socket) -> Iterator[bytes]:
    buffer = b""
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            raise TimedOut("pidone did not answer in time") from None
        if not chunk:
            if buffer:
                yield buffer
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line


RETRIES = 20  # asking again while pidone re-executes (its gap is well under 1 s)


def request(path: str, cmd: str, timeout: float | None = 30.0, **args: object) -> dict:
    """Send one request and return the decoded reply. A request caught by
    a re-exec is asked again of the new process (commands are idempotent)."""
    import time

    for _ in range(RETRIES):
        reply = _request_once(path, cmd, timeout, args)
        if reply is not None and (reply.get("error") or {}).get("code") != "reexecuting":
            return reply
        time.sleep(0.05)
    raise Unreachable("pidone kept re-executing or closing the connection without answering")


def _request_once(path: str, cmd: str, timeout: float | None, args: dict) -> dict | None:
    import orjson

    with _connect(path, timeout) as sock:
        try:
            sock.sendall(protocol.request_line(cmd, **args))
            for line in _lines(sock):
                return orjson.loads(line)
        except (ConnectionResetError, BrokenPipeError):
            return None  # closed under us (an exec): ask again
    return None


def stream(path: str, cmd: str, **args: object) -> Iterator[dict]:
    """Send one request and yield every reply line until pidone closes."""
    import orjson

    with _connect(path, None) as sock:
        sock.sendall(protocol.request_line(cmd, **args))
        for line in _lines(sock):
            yield orjson.loads(line)

"""The sd_notify socket: a datagram socket services of any user can reach,
whose senders are identified by the kernel (SO_PASSCRED), never by what
they claim."""

from __future__ import annotations

import array
import os
import socket
import struct
from typing import TYPE_CHECKING, Callable

from pidone.sockfile import bind_with_mode

if TYPE_CHECKING:
    from pidone.loop import Loop

MAX_DATAGRAM = 4096  # systemd's limit for a notification
CREDENTIALS = struct.Struct("iII")  # pid, uid, gid


def parse_notification(data: bytes) -> tuple[tuple[str, str], ...]:
    """Split `KEY=VALUE` assignments separated by newlines (a final newline
    optional); lines without '=' are ignored."""
    fields = []
    for line in data.decode("utf-8", "replace").split("\n"):
        key, eq, value = line.partition("=")
        if eq and key:
            fields.append((key, value))
    return tuple(fields)


class NotifySocket:
    """Receives notifications and hands (sender pid, fields) to `on_message`."""

    def __init__(self, path: str, loop: "Loop", on_message: Callable[[int, tuple[tuple[str, str], ...]], None],
                 *, fd: int | None = None):
        """Bind a new socket at `path`, or adopt `fd` (the same socket,
        inherited across a re-exec: services keep their NOTIFY_SOCKET)."""
        self.path = path
        self._loop = loop
        self._on_message = on_message
        if fd is not None:
            sock = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
            sock.setblocking(False)
        else:
            sock = self._bind(path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock = sock
        loop.add_reader(sock.fileno(), self._on_readable)

    @staticmethod
    def _bind(path: str) -> socket.socket:
        try:
            os.unlink(path)  # a stale socket from an earlier run
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            bind_with_mode(sock, path, 0o666)  # every user's services may send
        except OSError as exc:
            sock.close()
            from pidone.errors import StartupError

            raise StartupError(f"cannot bind the notify socket {path}: {exc.strerror or exc}") from None
        return sock

    @property
    def fd(self) -> int:
        return self._sock.fileno()

    def close(self, *, unlink: bool = True) -> None:
        """Stop receiving; on a final exit also remove the socket file."""
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if unlink:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def _on_readable(self) -> None:
        # Drain a bounded number per wake-up so a flood cannot starve the loop.
        for _ in range(64):
            try:
                data, ancillary, _flags, _addr = self._sock.recvmsg(
                    MAX_DATAGRAM, socket.CMSG_SPACE(CREDENTIALS.size) + socket.CMSG_SPACE(64 * 4)
                )
            except (BlockingIOError, InterruptedError):
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = CREDENTIALS.unpack(payload[: CREDENTIALS.size])[0]
                elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    # We accept no fds (FDSTORE is not supported): close them.
                    fds = array.array("i")
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                    for fd in fds:
                        os.close(fd)
            if pid:
                self._on_message(pid, parse_notification(data))

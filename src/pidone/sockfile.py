"""Binding a Unix socket file that is born with its final mode.

bind() creates the file with 0777 less the umask, and a chmod afterwards
leaves an instant at the wider mode: so the umask is narrowed around the
bind instead. One helper for the control socket (0600) and the notify
socket (0666), so the dance is done, and restored, in one place.
"""

from __future__ import annotations

import os
import socket


def bind_with_mode(sock: socket.socket, path: str, mode: int) -> None:
    """Bind `sock` at `path` so that the socket file is created `mode` (permission bits) from its first
    instant; the process umask is restored whatever happens. Raise OSError as bind() does."""
    old_umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
    finally:
        os.umask(old_umask)

"""`[socket] listen` addresses (SPEC §14): `tcp:HOST:PORT`,
`tcp:[V6]:PORT`, `udp:HOST:PORT`, `unix:/path`. Pure parsing; binding and
holding the sockets is `sockets.py`'s job."""

from __future__ import annotations

import socket
from typing import NamedTuple


class Listen(NamedTuple):
    """One address to listen on. `host` is a literal IP ("" for unix)."""

    text: str  # as written, for messages and to tell a changed address
    kind: str  # "tcp", "udp" or "unix"
    family: int
    host: str
    port: int
    path: str

    @property
    def type(self) -> int:
        return socket.SOCK_DGRAM if self.kind == "udp" else socket.SOCK_STREAM


MAX_UNIX_PATH = 107  # sun_path holds 108 bytes with the NUL


def parse_listen(text: str) -> Listen:
    """Return the address `text` names; raise ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"expected a string like 'tcp:127.0.0.1:8080' or 'unix:/run/app.sock', got {text!r}")
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("tcp", "udp", "unix"):
        raise ValueError(f"{text!r}: expected tcp:HOST:PORT, tcp:[V6]:PORT, udp:HOST:PORT or unix:/PATH")
    if kind == "unix":
        if not rest.startswith("/"):
            raise ValueError(f"{text!r}: a unix socket's path must be absolute")
        if len(rest.encode()) > MAX_UNIX_PATH or "\0" in rest:
            raise ValueError(f"{text!r}: a unix socket's path is at most {MAX_UNIX_PATH} bytes, without NUL")
        return Listen(text, kind, socket.AF_UNIX, "", 0, rest)
    if rest.startswith("["):
        host, bracket, port_text = rest[1:].partition("]")
        if not bracket or not port_text.startswith(":"):
            raise ValueError(f"{text!r}: an IPv6 address is written [ADDRESS]:PORT")
        port_text = port_text[1:]
        family = socket.AF_INET6
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon:
            raise ValueError(f"{text!r}: expected {kind}:HOST:PORT")
        family = socket.AF_INET
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):
        what = "an IPv6 address" if family == socket.AF_INET6 else "an IPv4 address (or [IPv6] in brackets)"
        raise ValueError(f"{text!r}: {host!r} is not {what}") from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return Listen(text, kind, family, host, int(port_text), "")

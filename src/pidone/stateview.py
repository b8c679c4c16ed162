"""Reading a running pidone's state from outside (`pidone status --offline`):
through `state`, the link next to the control socket that PID 1 points at
its memfd (/proc/PID/fd/N), read-only, without asking PID 1 anything.

The link names PID 1's pid as PID 1 sees it (1 in a container): right from
`docker exec`, wrong from another PID namespace (the host). So the pid is
taken from the control socket's listener (SO_PEERCRED of a connection that
is never used: the kernel completes it even while PID 1 is stopped, and
translates the pid into our namespace), and the link's only when that fails.
Whatever is found there must be a shrink-sealed memfd with pidone's header
whose state names this very runtime directory: a stale link (pidone gone,
its pid reused) is reported as such, never read as pidone's state.
"""

from __future__ import annotations

import os
import re
import socket
import struct

from pidone.errors import StoreError

_LINK = re.compile(r"/proc/(\d+)/fd/(\d+)")
GONE = "the state lived in PID 1's memory and went with it"


def listener_pid(socket_path: str) -> int | None:
    """The pid (in our namespace) of whoever listens on `socket_path`, or
    None (a full backlog, a pid we cannot see). Never waits. Raises
    ConnectionRefusedError when nobody listens: pidone is gone (a live one
    listens even while stopped)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
    try:
        sock.connect(socket_path)
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", creds)[0]
        return pid or None
    except ConnectionRefusedError:
        raise
    except OSError:
        return None
    finally:
        sock.close()


def read_offline(socket_path: str) -> dict:
    """The decoded state of the pidone whose control socket is at
    `socket_path`; StoreError says plainly why not (no pidone, a stale
    link, no permission, a corrupt state)."""
    from pidone.memstate import open_view
    from pidone.upgrade import decode_state

    private = os.path.dirname(socket_path)
    link = os.path.join(private, "state")
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        raise StoreError(f"no state at {link}: pidone is not running with this runtime directory") from None
    except OSError as exc:
        if exc.errno == 22:  # EINVAL: not a link
            raise StoreError(f"{link} is not pidone's state (not a link; left by an older pidone?)") from None
        raise StoreError(f"{link}: {exc.strerror}") from None
    match = _LINK.fullmatch(target)
    if match is None:
        raise StoreError(f"{link} points at {target}, not at a pidone's memory; refusing it")
    linked_pid, fd = int(match[1]), int(match[2])
    try:
        pid = listener_pid(socket_path) or linked_pid
    except ConnectionRefusedError:
        raise StoreError(f"pidone is not running any more (nobody listens on {socket_path}): {GONE}") from None
    path = f"/proc/{pid}/fd/{fd}"
    try:
        found = open_view(path)
    except StoreError as exc:
        if not os.path.exists(f"/proc/{pid}"):
            raise StoreError(f"pidone (pid {pid}) is not running any more: {GONE}") from None
        if "No such file" in str(exc):
            raise StoreError(f"pidone (pid {pid}) holds no state at fd {fd} any more "
                             f"(it is gone or was never there: {GONE})") from None
        if "Permission denied" in str(exc) or "not permitted" in str(exc):
            raise StoreError(f"{path}: permission denied (the state is as private as the control socket: "
                             "run this as root or as pidone's user)") from None
        raise StoreError(f"{link} -> {path} is not pidone's state ({exc}); a stale link?") from None
    state = decode_state(found.payload, found.minor)
    runtime = state.get("runtime") or {}
    try:
        st = os.stat(private)
    except OSError as exc:
        raise StoreError(f"{private}: {exc.strerror}") from None
    if (runtime.get("dev"), runtime.get("ino")) != (st.st_dev, st.st_ino):
        raise StoreError(f"{link} -> {path} is the state of another pidone (of {runtime.get('dir')}), "
                         f"not of this runtime directory: a stale link (this pidone is gone: {GONE})")
    return state

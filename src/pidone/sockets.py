"""Listening sockets pidone holds for units (SPEC §14): bound before any
unit starts, passed to each run as fds 3, 4, ... with LISTEN_FDS,
LISTEN_PID and LISTEN_FDNAMES (systemd's sd_listen_fds protocol), and kept
open across the unit's restarts and pidone's re-execs, so that clients wait
in the kernel's backlog instead of being refused.

Only this module binds; the machine decides when a unit starts (and, for
`on_demand`, asks for the sockets to be watched while the unit is idle).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import socket
import stat
from typing import Callable

from pidone.errors import SpawnError
from pidone.listen import Listen, parse_listen
from pidone.units import Unit

DEFAULT_BACKLOG = 4096  # systemd's Backlog= default (SOMAXCONN)


class Held:
    """One bound socket: what it listens on, how, and its fd."""

    __slots__ = ("spec", "key", "fd")

    def __init__(self, spec: Listen, key: tuple, fd: int):
        self.spec, self.key, self.fd = spec, key, fd


def _settings(unit: Unit) -> tuple:
    """What, besides the address, makes a bound socket the one `unit` asks for."""
    section = unit.socket
    return (section.backlog, section.mode, unit.service.user, unit.service.group)


class Sockets:
    """Every unit's held sockets, by unit name."""

    def __init__(self, keep: Callable[[int], int], say: Callable[[str], None],
                 unwatch: Callable[[int], None] = lambda fd: None):
        self._keep = keep  # moves an fd above the children's fd limit (see supervisor._kept)
        self._say = say
        self._unwatch = unwatch  # the loop must forget an fd before it is closed
        self.held: dict[str, list[Held]] = {}

    def update(self, units: dict[str, Unit]) -> None:
        """Follow a plan: bind what is new, keep what is unchanged (the same
        fd, so a reload never refuses a connection), close what is gone. A
        socket that cannot be bound now is bound again at the unit's start,
        which fails with the reason if it still cannot."""
        for name in [n for n in self.held if units.get(n) is None or units[n].socket is None]:
            self._close_unit(name)
        for name, unit in units.items():
            if unit.socket is not None:
                try:
                    self.ensure(unit)
                except SpawnError as exc:
                    self._say(f"unit {name}: {exc}")

    def ensure(self, unit: Unit) -> tuple[list[int], list[str]]:
        """Return the fds (in `listen` order) and their names for a start of
        `unit`, binding what is missing; raise SpawnError naming the address."""
        key = _settings(unit)
        old = {held.spec.text: held for held in self.held.get(unit.name, [])}
        new: list[Held] = []
        try:
            for text in unit.socket.listen:
                held = old.pop(text, None)
                if held is not None and held.key != key:
                    old[text] = held  # same address, other settings: bind a fresh one below
                    held = None
                if held is None:
                    if text in old:  # free the address before binding it again
                        self._close(old.pop(text).fd)
                    spec = parse_listen(text)
                    held = Held(spec, key, self._keep(_bind(spec, unit)))
                new.append(held)
        except SpawnError:
            # Keep what was bound (the next try reuses it), drop nothing that works.
            self.held[unit.name] = new + list(old.values())
            raise
        for held in old.values():
            self._close(held.fd)
        self.held[unit.name] = new
        return [held.fd for held in new], [unit.name] * len(new)

    def fds_of(self, name: str) -> list[int]:
        return [held.fd for held in self.held.get(name, [])]

    def all_fds(self) -> list[int]:
        return [held.fd for helds in self.held.values() for held in helds]

    def snapshot(self) -> dict:
        return {name: [[h.spec.text, list(h.key), h.fd] for h in helds] for name, helds in self.held.items()}

    def restore(self, data: dict, units: dict[str, Unit]) -> None:
        """Take back the sockets a re-exec handed over (fds still open)."""
        for name, items in data.items():
            unit = units.get(name)
            for text, key, fd in items:
                if unit is None or unit.socket is None or text not in unit.socket.listen:
                    self._close(fd)
                    continue
                try:
                    os.set_inheritable(fd, False)
                    self.held.setdefault(name, []).append(Held(parse_listen(text), tuple(key), fd))
                except (OSError, ValueError) as exc:
                    self._say(f"unit {name}: the socket {text} was not handed over: {exc}")

    def _close_unit(self, name: str) -> None:
        for held in self.held.pop(name, []):
            self._close(held.fd)

    def _close(self, fd: int) -> None:
        self._unwatch(fd)
        _close(fd)

    def close(self) -> None:
        for name in list(self.held):
            self._close_unit(name)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _bind(spec: Listen, unit: Unit) -> int:
    """Bind and listen on `spec` for `unit`; return the fd (CLOEXEC, blocking, as
    systemd hands them over); raise SpawnError("bind socket", errno, address)."""
    section = unit.socket
    sock = socket.socket(spec.family, spec.type | socket.SOCK_CLOEXEC)
    try:
        if spec.family == socket.AF_UNIX:
            _bind_unix(sock, spec, section.mode, unit)
        else:
            if spec.type == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if spec.family == socket.AF_INET6:
                # [::] and 0.0.0.0 on the same port are two sockets (SPEC §14's example).
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((spec.host, spec.port))
        if spec.type == socket.SOCK_STREAM:
            sock.listen(section.backlog)
    except SpawnError:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise SpawnError("bind socket", exc.errno or 0, spec.text) from None
    return sock.detach()


def _bind_unix(sock: socket.socket, spec: Listen, mode: int, unit: Unit) -> None:
    """Bind a unix socket file: a stale socket file is replaced, anything
    else there (a symlink, a file) is refused; created with `mode` (under a
    umask, never chmod'ed by path) and given to the unit's user."""
    try:
        info = os.lstat(spec.path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            kind = "a symlink" if stat.S_ISLNK(info.st_mode) else "not a socket"
            raise SpawnError("bind socket", errno.EEXIST, spec.text, reason=f"{spec.path} exists and is {kind}")
        os.unlink(spec.path)
    previous = os.umask(0o777 & ~mode)
    try:
        sock.bind(spec.path)
    finally:
        os.umask(previous)
    uid, gid = _owner(unit)
    if uid != -1 or gid != -1:
        os.chown(spec.path, uid, gid, follow_symlinks=False)


def _owner(unit: Unit) -> tuple[int, int]:
    """The unit's user and group ids (-1: unchanged) for its socket files."""
    service = unit.service
    uid = gid = -1
    try:
        if service.user is not None:
            entry = pwd.getpwuid(int(service.user)) if service.user.isdigit() else pwd.getpwnam(service.user)
            uid, gid = entry.pw_uid, entry.pw_gid
        if service.group is not None:
            gid = int(service.group) if service.group.isdigit() else grp.getgrnam(service.group).gr_gid
    except (KeyError, ValueError):
        raise SpawnError("bind socket", errno.EINVAL, unit.name, reason="its user or group does not exist") from None
    return uid, gid

"""A unit's runtime and state directories (SPEC §11): made before its
start and owned by its user, the runtime ones removed after it stops.

Every step goes through file descriptors: each component is opened with
O_NOFOLLOW below the one before, the last one is chowned and chmodded
through its own fd, and removal works below an fd of its parent. A symlink
planted anywhere in the path (by the unit's own user, say) is refused, never
followed: chowning through one would hand that user any file of root's.
"""

from __future__ import annotations

import errno as _errno
import os
import shutil

from pidone.errors import SpawnError

RUNTIME_BASE = "/run"
STATE_BASE = "/var/lib"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def directory_env(unit) -> dict[bytes, bytes]:
    """RUNTIME_DIRECTORY and STATE_DIRECTORY for a unit, as made_directories sets them."""
    service = unit.service
    env = {}
    for key, base, names in ((b"RUNTIME_DIRECTORY", RUNTIME_BASE, service.runtime_directory),
                             (b"STATE_DIRECTORY", STATE_BASE, service.state_directory)):
        if names:
            env[key] = os.fsencode(":".join(f"{base}/{name}" for name in names))
    return env


def make_directories(unit, prepared) -> None:
    """Before a spawn: make the unit's directories, owned by the user and
    group it runs as, and name them in its environment (several joined by
    ":", as systemd does). Raises SpawnError naming the path."""
    service = unit.service
    for key, base, names in (("RUNTIME_DIRECTORY", RUNTIME_BASE, service.runtime_directory),
                             ("STATE_DIRECTORY", STATE_BASE, service.state_directory)):
        if names:
            made = [make(base, name, service.directory_mode, prepared.uid, prepared.gid) for name in names]
            prepared.env[key.encode()] = os.fsencode(":".join(made))


def remove_directories(names: tuple[str, ...]) -> list[str]:
    """After a stop: remove the runtime directories; return the problems."""
    return [problem for problem in (remove(RUNTIME_BASE, name) for name in names) if problem]


def make(base: str, name: str, mode: int, uid: int | None, gid: int | None) -> str:
    """Create base/name (and any missing parents, root's and 0755), then
    give the last component to uid:gid with `mode`. Return the full path;
    raise SpawnError naming it."""
    path = f"{base}/{name}"
    fd = _open_base(base, path)
    try:
        parts = name.split("/")
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            try:
                os.mkdir(part, mode if last else 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            except OSError as exc:
                raise SpawnError("create directory", exc.errno or 0, path) from None
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _refusal(exc, path, part) from None
            os.close(fd)
            fd = child
        try:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fchmod(fd, mode)
        except OSError as exc:
            raise SpawnError("set the owner of directory", exc.errno or 0, path) from None
    finally:
        os.close(fd)
    return path


def remove(base: str, name: str) -> str:
    """Remove base/name and everything in it, without following a symlink
    anywhere (a symlink in its place is refused). Return "" when done or
    already gone, else what went wrong."""
    path = f"{base}/{name}"
    parent, _, last = name.rpartition("/")
    try:
        fd = _open_base(base, path)
    except SpawnError as exc:
        return str(exc)
    try:
        for part in parent.split("/") if parent else ():
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        try:
            os.close(os.open(last, _DIR_FLAGS, dir_fd=fd))  # a directory, not a symlink to one
        except OSError as exc:
            if exc.errno == _errno.ENOENT:
                return ""
            return str(_refusal(exc, path, last))
        shutil.rmtree(last, dir_fd=fd)  # fd-based: never follows a symlink inside
    except FileNotFoundError:
        return ""
    except OSError as exc:
        return f"cannot remove {path}: {os.strerror(exc.errno or 0)}"
    finally:
        os.close(fd)
    return ""


def _open_base(base: str, path: str) -> int:
    try:
        return os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SpawnError("create directory", exc.errno or 0, path) from None


def _refusal(exc: OSError, path: str, part: str) -> SpawnError:
    if exc.errno in (_errno.ELOOP, _errno.ENOTDIR):
        return SpawnError("create directory", exc.errno, path,
                          reason=f"{part!r} is a symlink or not a directory; refusing to follow it")
    return SpawnError("create directory", exc.errno or 0, path)

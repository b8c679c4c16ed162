"""Descriptors pidone inherited: no service may get one (SPEC §3).

A container runtime or a shell can leave fds open in PID 1. Every fork
would hand them on, and a re-exec would carry them into the next pidone,
so early in start-up every fd above stdio is marked close-on-exec, except
those a re-exec hands over (named in PIDONE_REEXEC_FDS). They stay open in
pidone itself: the main command of tini mode gets them back, as tini
passes them on (`docker run --init` with a passed socket must work).
"""

from __future__ import annotations

import fcntl
import os
from typing import Iterable


def inherited_fds() -> set[int]:
    """The fds above stdio that an exec would pass on right now (open and
    not close-on-exec); empty when they cannot be listed."""
    try:
        listed = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return set()
    found = set()
    for fd in listed:
        if fd <= 2:
            continue
        try:
            if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                found.add(fd)
        except OSError:
            continue  # the directory fd listdir used, closed by now
    return found


def close_on_exec_all_but(keep: Iterable[int]) -> None:
    """Mark every fd above 2 close-on-exec except `keep` (what a re-exec
    handed over): one close_range per gap between kept fds where the
    kernel has CLOSE_RANGE_CLOEXEC, else each fd listed in /proc/self/fd."""
    kept = sorted({fd for fd in keep if fd > 2})
    try:
        from pidone import linux

        first = 3
        done = True
        for fd in [*kept, linux.MAX_FD + 1]:
            if fd > first and not linux.close_range_cloexec(first, fd - 1):
                done = False
                break
            first = fd + 1
        if done:
            return
    except (OSError, ImportError):
        pass
    for fd in inherited_fds() - set(kept):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass


def give_back(fds: Iterable[int]) -> None:
    """Between fork and exec of the main command: make the inherited fds
    inheritable again, so it gets them as pidone did."""
    for fd in fds:
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass

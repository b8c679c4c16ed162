"""The Linux system calls Python's os module lacks, through ctypes:
close_range with flags (CLOSE_RANGE_CLOEXEC) and signalfd.

Each returns None (or False) where the kernel or the C library does not
have it, so the caller can fall back; none raises for that.
"""

from __future__ import annotations

import ctypes
import os
from typing import Iterable

CLOSE_RANGE_CLOEXEC = 1 << 2  # Linux 5.11
SYS_CLOSE_RANGE = 436  # the same number on every architecture (Linux 5.9)
SFD_NONBLOCK = os.O_NONBLOCK
SFD_CLOEXEC = os.O_CLOEXEC
MAX_FD = 0xFFFFFFFF  # close_range's "to the end"

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def close_range_cloexec(first: int, last: int) -> bool:
    """Mark fds first..last (inclusive) close-on-exec in one call; False
    when the kernel cannot (before 5.11), so the caller falls back."""
    c = libc()
    try:
        call = c.close_range
        result = call(ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_int(CLOSE_RANGE_CLOEXEC))
    except AttributeError:  # a C library older than the call (glibc < 2.34)
        result = c.syscall(ctypes.c_long(SYS_CLOSE_RANGE), ctypes.c_uint(first), ctypes.c_uint(last),
                           ctypes.c_uint(CLOSE_RANGE_CLOEXEC))
    return result == 0


class _SigSet(ctypes.Structure):
    _fields_ = [("bits", ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong))))]


def signalfd(signals: Iterable[int]) -> int | None:
    """A new non-blocking, close-on-exec signalfd for `signals` (which the
    caller must block), or None when it cannot be made."""
    c = libc()
    mask = _SigSet()
    if c.sigemptyset(ctypes.byref(mask)) != 0:
        return None
    for signum in signals:
        if c.sigaddset(ctypes.byref(mask), ctypes.c_int(signum)) != 0:
            return None
    try:
        fd = c.signalfd(ctypes.c_int(-1), ctypes.byref(mask), ctypes.c_int(SFD_NONBLOCK | SFD_CLOEXEC))
    except AttributeError:
        return None
    return fd if fd >= 0 else None

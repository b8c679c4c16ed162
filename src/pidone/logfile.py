"""Owns a unit's optional log file (`[log] file`): appending whole lines,
rotating by size, and turning every disk problem into counted drops.

PID 1 must never die of its logs. `LogFile.write()` never raises: a line
that cannot be written (full disk, quota, I/O error, missing directory, a
path that is refused) is dropped and counted, and the owner hears about it
through `warn` at most once per `warn_interval`, then once more when
writing works again.

The file usually sits in a directory that the service, running as another
user, may control. So nothing at the path is ever followed or trusted: a
symlink, a FIFO, a device or a file with extra hard links is refused;
rotation renames (which replace a planted symlink instead of following it)
and creates the new file exclusively; missing directories are not created.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from typing import Callable

DEFAULT_WARN_INTERVAL = 60.0  # seconds between two warnings about one file
FILE_MODE = 0o640
# O_NONBLOCK: opening a FIFO must not wait for a reader. O_NOCTTY: a tty at
# the path must not become PID 1's controlling terminal before it is refused.
OPEN_FLAGS = (
    os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    | os.O_NONBLOCK | os.O_NOCTTY
)
# After these write errors the descriptor is kept: space may come back at
# any moment, and the next write should find it at once.
_KEEP_OPEN_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT})


class _Unavailable(Exception):
    """The file cannot be written now; the message says why."""


class _Refused(_Unavailable):
    """What is at the path must not be written to until `reopen()`."""


class LogFile:
    """One log file with size rotation: `path`, then `path.1` … `path.N`.

    Writes go to the file until the next write would take it past
    `max_bytes`; then the file is rotated first (an empty file takes any
    write, so a line longer than `max_bytes` is still kept whole). Disk use
    stays within about `(backups + 1) * max_bytes` plus one write.
    `dropped_lines` and `dropped_bytes` count everything lost since creation.
    """

    def __init__(
        self,
        path: str,
        max_bytes: int,
        backups: int,
        *,
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        warn_interval: float = DEFAULT_WARN_INTERVAL,
    ):
        self.path = path
        self.source = path  # the `[log] file` it came from, before ${...} expansion
        self.max_bytes = max_bytes
        self.backups = backups
        self.warn_interval = warn_interval
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self._warn = warn
        self._clock = clock
        self._fd: int | None = None
        self._size = 0  # kept in memory: no fstat per write
        self._torn = False  # the file ends inside a line a failed write cut short
        self._closed = False
        self._refused: str | None = None  # why the path is refused until reopen()
        self._problem: str | None = None  # why writing fails now; None while it works
        self._retry_at = float("-inf")  # no new open attempt before this clock time
        self._last_warning: float | None = None
        self._warned_problem = False  # a problem was announced and not yet its end
        self._unreported_lines = 0
        self._unreported_bytes = 0

    def write(self, data: bytes) -> None:
        """Append `data`, one or more complete lines; never raises.

        What cannot be written is dropped and counted. After `close()`,
        writes are ignored.
        """
        if self._closed or not data:
            return
        try:
            self._write(data)
        except Exception as err:  # a bug here must cost lines, never PID 1
            try:
                self._close_fd()
                self._drop(data, 0, f"unexpected error: {err!r}")
            except Exception:
                pass

    def reopen(self) -> None:
        """Close the file so that the next write opens `path` afresh.

        This is for a reload (SIGHUP) and for rotation done by someone
        else. It also lifts a refusal and the wait before the next retry.
        """
        self._close_fd()
        self._closed = False
        self._refused = None
        self._retry_at = float("-inf")

    def close(self) -> None:
        """Close the file for good (until `reopen()`); later writes are ignored."""
        self._close_fd()
        self._closed = True

    # The write path.

    def _write(self, data: bytes) -> None:
        try:
            if self._fd is None or self._problem is not None:
                self._prepare()
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate(len(data))
        except _Unavailable as why:
            self._close_fd()
            if isinstance(why, _Refused):
                self._refused = str(why)
            self._drop(data, 0, str(why))
            return
        # A line cut short by an earlier failure is ended first, so that it
        # cannot swallow the next one.
        extra = 1 if self._torn else 0
        buf = b"\n" + data if extra else data
        written, err = self._append(buf)
        self._size += written
        if err is None:
            self._torn = False
            if self._problem is not None or self._unreported_lines:
                self._recovered()
            return
        if written:
            self._torn = buf[written - 1] != 0x0A
        if err.errno not in _KEEP_OPEN_ERRORS:
            self._close_fd()  # reopened after warn_interval, by _prepare()
        self._drop(data, max(0, written - extra), f"cannot write: {_describe(err)}")

    def _prepare(self) -> None:
        """Make a descriptor ready, or raise `_Unavailable` saying why not.

        Called only when there is no descriptor or writing is failing, so
        the clock is not read on the healthy path.
        """
        now = self._clock()
        if self._fd is not None:
            if now < self._retry_at:
                return  # keep trying the open file: space may be freed any time
            # Still failing an interval later: open the path again, in case
            # the file was deleted to free space (our descriptor would keep
            # its blocks allocated for ever).
            self._close_fd()
        if self._refused is not None:
            raise _Refused(self._refused)
        if now < self._retry_at:
            raise _Unavailable(self._problem or "waiting to retry")
        self._retry_at = now + self.warn_interval
        self._open(exclusive=False)

    def _append(self, buf: bytes) -> tuple[int, OSError | None]:
        """Write all of `buf`; return the bytes written and the error, if any."""
        assert self._fd is not None
        written = 0
        try:
            written = os.write(self._fd, buf)
            while written < len(buf):  # short write: the rest fails or fits
                count = os.write(self._fd, memoryview(buf)[written:])
                if count <= 0:
                    return written, OSError(errno.EIO, "write wrote nothing")
                written += count
        except OSError as err:
            return written, err
        return written, None

    # Opening and rotation.

    def _open(self, exclusive: bool) -> None:
        """Open `path` for appending, refusing anything but a plain file."""
        # Look before opening, so that a device or FIFO is never opened at
        # all; fstat below still catches a swap between the two calls.
        try:
            seen = os.lstat(self.path)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise _Unavailable(self._open_failure(err)) from None
        else:
            if not exclusive:
                self._check(seen)
        flags = OPEN_FLAGS | (os.O_EXCL if exclusive else 0)
        try:
            fd = os.open(self.path, flags, FILE_MODE)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise _Refused(_SYMLINK_REFUSED) from None
            if err.errno in (errno.ENXIO, errno.EISDIR):
                raise _Refused("refused: not a regular file") from None
            raise _Unavailable(self._open_failure(err)) from None
        try:
            opened = os.fstat(fd)
            self._check(opened)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._size = opened.st_size
        self._torn = self._torn and opened.st_size > 0  # a new file has no cut line to end

    def _check(self, st: os.stat_result) -> None:
        """Raise `_Refused` unless `st` is a regular file with one name."""
        if stat.S_ISLNK(st.st_mode):
            raise _Refused(_SYMLINK_REFUSED)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused(f"refused: it is a {_kind(st.st_mode)}, not a regular file")
        if st.st_nlink > 1:
            # A hard link planted here could name any file on the same
            # filesystem, /etc/shadow included.
            raise _Refused(f"refused: the file has {st.st_nlink} hard links")

    def _open_failure(self, err: OSError) -> str:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            directory = os.path.dirname(self.path) or "."
            return (f"cannot open: directory {directory} does not exist "
                    "(pidone does not create it)")
        return f"cannot open: {_describe(err)}"

    def _rotate(self, incoming: int) -> None:
        """Move the full file to `path.1` (and older ones up) and start anew."""
        assert self._fd is not None
        try:
            ours = os.fstat(self._fd)
        except OSError as err:
            raise _Unavailable(f"cannot rotate: {_describe(err)}") from None
        if ours.st_size == 0 or ours.st_size + incoming <= self.max_bytes:
            # Truncated by someone else (copytruncate): there is room after all.
            self._size = ours.st_size
            return
        self._close_fd()
        try:
            here = os.lstat(self.path)
        except OSError:
            here = None
        if here is None or (here.st_dev, here.st_ino) != (ours.st_dev, ours.st_ino):
            # Our file was moved away (rotated by someone else): what is at
            # the path now is not ours to rename; write there instead.
            self._open(exclusive=False)
            return
        try:
            for number in range(self.backups - 1, 0, -1):
                try:
                    os.rename(f"{self.path}.{number}", f"{self.path}.{number + 1}")
                except OSError:
                    pass  # a missing or blocked slot costs one old backup, not the file
            if self.backups:
                # rename() replaces a symlink planted at path.1; it never follows it.
                os.rename(self.path, f"{self.path}.1")
            # Whatever appeared at the path meanwhile goes: O_EXCL then
            # guarantees a file we created, not one planted for us.
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        except OSError as err:
            raise _Unavailable(f"cannot rotate: {_describe(err)}") from None
        self._open(exclusive=True)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    # Drops and warnings.

    def _drop(self, data: bytes, written: int, reason: str) -> None:
        """Count what was not written of `data`, and warn if one is due."""
        now = self._clock()
        if self._problem is None:
            self._retry_at = now + self.warn_interval
        self._problem = reason
        lines = data.count(b"\n", written)
        self.dropped_lines += lines
        self.dropped_bytes += len(data) - written
        self._unreported_lines += lines
        self._unreported_bytes += len(data) - written
        if self._warning_due(now):
            self._emit(now, f"log file {self.path}: {reason}; {self._dropped_since()}")
            self._warned_problem = True

    def _recovered(self) -> None:
        """Writing works (again): say so once, with what was lost."""
        now = self._clock()
        self._problem = None
        # The end of an announced problem is always told at once; drops that
        # were never announced wait for the interval, so a flapping disk
        # cannot make a warning storm.
        if self._warned_problem or (self._unreported_lines and self._warning_due(now)):
            self._emit(now, f"log file {self.path}: writing again; {self._dropped_since()}")
            self._warned_problem = False

    def _warning_due(self, now: float) -> bool:
        return self._last_warning is None or now - self._last_warning >= self.warn_interval

    def _dropped_since(self) -> str:
        lines = self._unreported_lines
        return (f"{lines} line{'' if lines == 1 else 's'} ({self._unreported_bytes} bytes) "
                "dropped since the last warning")

    def _emit(self, now: float, message: str) -> None:
        self._last_warning = now
        self._unreported_lines = 0
        self._unreported_bytes = 0
        try:
            self._warn(message)
        except Exception:
            pass  # the warning is best effort; the write path must not raise


_SYMLINK_REFUSED = "refused: it is a symlink, and log files never follow one"


def _kind(mode: int) -> str:
    """Name the file type in `mode` for a warning."""
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISDIR, "directory")):
        if test(mode):
            return name
    return "special file"


def _describe(err: OSError) -> str:
    """`No space left on device (ENOSPC)`, with the file names if any."""
    name = errno.errorcode.get(err.errno or 0, str(err.errno))
    text = f"{err.strerror or err} ({name})"
    if err.filename2 is not None:
        return f"{text}: {err.filename} -> {err.filename2}"
    if err.filename is not None:
        return f"{text}: {err.filename}"
    return text

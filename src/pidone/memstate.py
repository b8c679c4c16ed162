"""The state's memory (SPEC §7): a memfd that PID 1 maps (MAP_SHARED) and
updates in place, that survives `execve` by its descriptor, and that nobody
can shrink under the mapping.

Why a sealed memfd: touching a mapped page past the end of a file that
someone truncated is a SIGBUS, which kills a Python PID 1. A memfd sealed
with F_SEAL_SHRINK cannot get smaller, whoever asks (root included: EPERM),
so every page of the mapping stays backed for as long as it exists.
F_SEAL_SEAL stops anyone from adding seals later (F_SEAL_GROW would stop our
growth, F_SEAL_FUTURE_WRITE the next process's mapping). The memory is
allocated up front (fallocate), so a write into the mapping never needs a
new page: out of memory is a StoreError at growth, never a fault. Growth is
fallocate to the new size, then a new mapping; if the allocation fails the
old mapping is untouched and still holds the last state whole.

The layout inside (header, two checksummed slots) is `store.py`'s.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat

from .errors import StoreError
from .store import (
    DEFAULT_CAPACITY, HEADER_SIZE, MAX_SIZE, Position, StateRead, check_capacity, layout_size,
    pack_header, plan_update, position_of, read_state,
)

MEMFD_NAME = "pidone-state"
SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
COPY_SEALS = SEALS | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE  # the selftest's copy is read-only
_READ_ATTEMPTS = 5  # re-reads when a concurrent update left no slot consistent
_READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def _memfd(size: int) -> int:
    """A new memfd of `size` bytes, allocated (not sealed yet)."""
    try:
        fd = os.memfd_create(MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError as e:
        raise StoreError(f"unable to create the state's memfd: {e.strerror}") from None
    try:
        _allocate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _allocate(fd: int, size: int) -> None:
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        raise StoreError(f"unable to allocate {size} bytes for the state: {e.strerror}") from None


def _seal(fd: int, seals: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except OSError as e:
        raise StoreError(f"unable to seal the state's memfd: {e.strerror}") from None


def seals_of(fd: int, where: str) -> int:
    """The seals of `fd`; StoreError if it is not a memfd that allows them."""
    try:
        return fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise StoreError(f"{where}: not a memfd (it has no seals)") from None
        raise StoreError(f"{where}: unable to read its seals: {e.strerror}") from None


def _check(fd: int, where: str) -> int:
    """Refuse what is not a shrink-sealed memfd of a sane size; return its size."""
    try:
        st = os.fstat(fd)
    except OSError as e:
        raise StoreError(f"{where}: unable to stat it: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{where}: not a memfd (not a regular file)")
    if not seals_of(fd, where) & fcntl.F_SEAL_SHRINK:
        raise StoreError(f"{where}: not pidone's state (the memfd is not sealed against shrinking)")
    if st.st_size > MAX_SIZE:
        raise StoreError(f"{where}: the state is too large ({st.st_size} bytes; at most {MAX_SIZE})")
    return st.st_size


def _map(fd: int, size: int) -> mmap.mmap:
    try:
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as e:
        raise StoreError(f"unable to map the state: {e.strerror}") from None


class MemState:
    """PID 1's side of the state: the memfd, its mapping, and where the next
    update goes. Make one with `create()` or, after `execve`, `adopt(fd)`.
    Every method raises only StoreError for problems with the memory."""

    def __init__(self, fd: int, mapping: mmap.mmap, position: Position):
        self._fd: int | None = fd
        self._map = mapping
        self._position = position

    @classmethod
    def create(cls, *, capacity: int = DEFAULT_CAPACITY) -> MemState:
        """A fresh memfd (CLOEXEC), allocated for two slots of `capacity`
        bytes, sealed against shrinking, mapped, with its header written."""
        check_capacity(capacity)
        size = layout_size(capacity)
        fd = _memfd(size)
        try:
            _seal(fd, SEALS)
            mapping = _map(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self = cls(fd, mapping, Position(capacity))
        mapping[:HEADER_SIZE] = pack_header(capacity)
        return self

    @classmethod
    def adopt(cls, fd: int) -> MemState:
        """Map the memfd an earlier pidone left us at `fd` (after `execve`)
        and continue after its newest valid state. The descriptor is owned
        from here on, closed on failure, and made CLOEXEC again."""
        where = f"the inherited state (fd {fd})"
        try:
            size = _check(fd, where)
            os.set_inheritable(fd, False)
            mapping = _map(fd, size)
            try:
                position = position_of(mapping, where)
            except BaseException:
                mapping.close()
                raise
        except OSError as e:
            os.close(fd)
            raise StoreError(f"{where}: {e.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, mapping, position)

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise StoreError("the state is closed")
        return self._fd

    @property
    def capacity(self) -> int:
        return self._position.capacity

    @property
    def sequence(self) -> int:
        return self._position.sequence

    @property
    def size(self) -> int:
        return len(self._map)

    def read(self) -> StateRead:
        """The newest valid state in our own mapping."""
        return read_state(self._map, "the state")

    def write(self, payload: bytes) -> None:
        """Make `payload` the newest state, growing the memory if needed.

        Growth allocates first: if that fails (out of memory, a memory
        cgroup's limit, RLIMIT_FSIZE) nothing has changed, the mapping still
        holds the last state whole, and StoreError says why."""
        fd = self.fd
        plan = plan_update(self._position, payload)
        if plan.size > len(self._map):
            _allocate(fd, plan.size)
            bigger = _map(fd, plan.size)
            old, self._map = self._map, bigger
            old.close()
        for offset, data in plan.writes:
            self._map[offset:offset + len(data)] = data
        self._position = plan.after
        header = pack_header(plan.after.capacity)
        if self._map[:HEADER_SIZE] != header:
            self._map[:HEADER_SIZE] = header  # someone wrote over it through /proc: repair

    def copy(self) -> int:
        """A new memfd holding the same bytes, sealed read-only (CLOEXEC):
        the state a selftest reads."""
        size = len(self._map)
        fd = _memfd(size)
        try:
            view = memoryview(self._map)
            try:
                offset = 0
                while offset < size:
                    offset += os.pwrite(fd, view[offset:], offset)
            finally:
                view.release()
            _seal(fd, COPY_SEALS)
        except OSError as e:
            os.close(fd)
            raise StoreError(f"unable to copy the state: {e.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        return fd

    def close(self) -> None:
        """Unmap and close; closing twice is harmless."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            self._map.close()
            os.close(fd)

    def __repr__(self) -> str:
        return f"MemState(fd={self._fd}, capacity={self.capacity}, sequence={self.sequence})"


def read_fd(fd: int, where: str) -> StateRead:
    """Read the newest valid state from a memfd open for reading (a copy, or
    a view through /proc): it must be sealed against shrinking and carry
    pidone's header. It is read with pread, never mapped. A read that races
    an update may find no slot consistent: it is read again a few times."""
    error: StoreError | None = None
    for _ in range(_READ_ATTEMPTS):
        size = _check(fd, where)
        chunks, offset = [], 0
        while offset < size:
            try:
                chunk = os.pread(fd, size - offset, offset)
            except OSError as e:
                raise StoreError(f"{where}: unable to read it: {e.strerror}") from None
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        try:
            return read_state(b"".join(chunks), where)
        except StoreError as e:
            error = e
    assert error is not None
    raise error


def open_view(path: str) -> StateRead:
    """Open `path` (the `state` link, or /proc/PID/fd/N) read-only and read
    the state behind it; StoreError says what was wrong."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as e:
        raise StoreError(f"{path}: {e.strerror}") from None
    try:
        return read_fd(fd, path)
    finally:
        os.close(fd)

"""Owns the state file that carries PID 1 across `pidone reexec` (SPEC §7):
its layout, layout version, slots, checksums and safe opening. The payload is
opaque bytes here; this is the only module that knows the layout.

Layout (all integers little-endian)
===================================

File header, ``HEADER_SIZE`` = 64 bytes at offset 0::

    offset size  field
    ------ ----  -----------------------------------------------------------
         0    8  magic            b"PIDONE\\x00S"
         8    2  layout major     u16, LAYOUT_MAJOR (a reader refuses another)
        10    2  layout minor     u16, LAYOUT_MINOR (a newer one is accepted)
        12    4  reserved         u32, 0; free for a later minor
        16   16  boot id          /proc/sys/kernel/random/boot_id as UUID bytes
        32    8  PID namespace    u64, st_ino of the writer's /proc/self/ns/pid
        40    8  slot capacity    u64, bytes per slot, slot header included
        48   12  reserved         0; free for a later minor
        60    4  header CRC32     u32, zlib.crc32 of bytes 0..59

Then two slots, slot 0 at ``HEADER_SIZE`` and slot 1 at
``HEADER_SIZE + capacity``, each ``capacity`` bytes; the file is at least
``HEADER_SIZE + 2 * capacity`` bytes long. A slot is::

    offset size  field
    ------ ----  -----------------------------------------------------------
         0    8  sequence         u64; 0 means never written, writes start at 1
         8    4  payload length   u32, at most capacity - SLOT_HEADER_SIZE
        12    4  slot CRC32       u32, crc32 of (sequence, length) then payload
        16    n  payload          the caller's bytes

The magic and the two version fields keep these offsets in every major
version, so a reader can always say which version it was given. A later
*minor* version may only give meaning to reserved bytes (the CRC still covers
them) and must keep every offset; anything else is a new major.

Writing
=======

The writer always fills the slot that does *not* hold the newest payload, with
sequence = newest + 1: payload bytes first, slot header last. A write that is
cut short therefore leaves that one slot invalid (its CRC, which also covers
the sequence and length, does not match) and the other slot still valid; the
reader takes the valid slot with the highest sequence. Nothing is fsynced: the
file has to survive an `execve`, not a power cut (it lives in the runtime
directory, normally a tmpfs, and the services it describes die with the
machine anyway).

Everything is written with `os.pwrite` on the descriptor, never through a
writable mapping: if someone truncates the file, a store through a mapping
would be a SIGBUS that kills PID 1, while `pwrite` just extends the file
again. Space is preallocated with `os.posix_fallocate`, so a full disk is a
`StoreError` at allocation. Before every write the descriptor is `fstat`-ed:
a file that shrank is extended and preallocated again, and a header that no
longer matches ours is rewritten (after the slot, so a concurrent reader never
sees a header that promises more than the slots hold).

Growth: a payload that does not fit makes the capacity the next power of two
of at least twice the slot it needs (at least ``MIN_CAPACITY``). The new slot
1 starts at ``HEADER_SIZE + new capacity``, which is at or past the end of the
old layout; the payload is written there, then the new header. Until the
header is written the old layout is untouched and a reader sees the old state;
afterwards slot 1 is the newest, and slot 0 still holds the old slot 0 (an
older but genuine state, or an invalid one). Nothing is copied, and there is
no moment at which the file holds no valid state.

Reading
=======

Readers (`read_state`, `StateFile.open_existing`) use `os.pread` only. A
read-only mapping would be just as fast, but touching a mapped page past the
end of a file that someone truncated meanwhile is a SIGBUS, which Python
cannot catch; `pread` simply returns fewer bytes, which is a `StoreError`.
Every length taken from the file is checked against the file size and the
slot capacity before anything is read or allocated, the file size is capped
(``MAX_FILE_SIZE``), and every problem, whatever the bytes, is a
`StoreError` that says what was wrong.

A reader that races a fast writer may find neither slot consistent; it then
reads again (a few times) before it reports the file as corrupt.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import uuid
import zlib
from dataclasses import dataclass

from .errors import StoreError

MAGIC = b"PIDONE\x00S"
LAYOUT_MAJOR = 1
LAYOUT_MINOR = 0

HEADER_FORMAT = "<8sHHI16sQQ12sI"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 64
HEADER_CRC_OFFSET = HEADER_SIZE - 4  # the CRC covers every byte before it
SLOT_HEADER_FORMAT = "<QII"
SLOT_HEADER_SIZE = struct.calcsize(SLOT_HEADER_FORMAT)  # 16

MIN_CAPACITY = 64 * 1024  # bytes per slot, slot header included
DEFAULT_CAPACITY = MIN_CAPACITY
MAX_CAPACITY = 512 * 1024 * 1024  # the largest slot a writer makes or a reader accepts
MAX_FILE_SIZE = HEADER_SIZE + 2 * MAX_CAPACITY  # a reader refuses anything larger
FILE_MODE = 0o600

_U64_MAX = 2**64 - 1
_READ_ATTEMPTS = 3  # re-reads when a concurrent write left no slot consistent
_BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
_PID_NS_PATH = "/proc/self/ns/pid"
# O_NONBLOCK: opening a FIFO must not wait for a peer before it is refused.
# O_NOCTTY: a tty at the path must not become PID 1's controlling terminal.
_WRITE_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


@dataclass(frozen=True)
class StateRead:
    """The newest valid state in a file.

    `payload` is the caller's bytes; `sequence` is its write number; `major`
    and `minor` are the file's layout version (a `minor` above
    `LAYOUT_MINOR` was written by newer code: the caller should warn);
    `boot_id` and `pid_ns` identify the writer's boot and PID namespace;
    `slot` (0 or 1) is where it was found.
    """

    payload: bytes
    sequence: int
    major: int
    minor: int
    boot_id: uuid.UUID
    pid_ns: int
    slot: int


@dataclass(frozen=True)
class _Header:
    major: int
    minor: int
    boot_id: uuid.UUID
    pid_ns: int
    capacity: int


@dataclass(frozen=True)
class _Slot:
    index: int
    sequence: int
    length: int
    crc: int


def current_identity() -> tuple[uuid.UUID, int]:
    """Return this process's boot id and PID namespace inode.

    Raises StoreError when /proc cannot tell (not mounted, or unreadable).
    """
    try:
        with open(_BOOT_ID_PATH, "rb") as f:
            text = f.read(100)
        boot_id = uuid.UUID(text.strip().decode("ascii"))
        pid_ns = os.stat(_PID_NS_PATH).st_ino
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise StoreError(f"unable to read this boot's id and PID namespace from /proc: {e}") from None
    return boot_id, pid_ns


def capacity_for(payload_length: int) -> int:
    """Return the slot capacity a payload of `payload_length` bytes grows to.

    That is the next power of two of at least twice the slot it needs,
    and at least MIN_CAPACITY. Raises StoreError above MAX_CAPACITY.
    """
    needed = 2 * (payload_length + SLOT_HEADER_SIZE)
    capacity = max(MIN_CAPACITY, 1 << (needed - 1).bit_length())
    if capacity > MAX_CAPACITY:
        raise StoreError(
            f"a state of {payload_length} bytes is too large "
            f"(slots are at most {MAX_CAPACITY} bytes)"
        )
    return capacity


def _pack_header(major: int, minor: int, boot_id: uuid.UUID, pid_ns: int, capacity: int) -> bytes:
    body = struct.pack(
        HEADER_FORMAT, MAGIC, major, minor, 0, boot_id.bytes, pid_ns, capacity, bytes(12), 0
    )[:HEADER_CRC_OFFSET]
    return body + struct.pack("<I", zlib.crc32(body))


def _slot_crc(sequence: int, length: int, payload) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<QI", sequence, length)))


def _pread_exact(fd: int, length: int, offset: int, path: str, what: str) -> bytes:
    """Read exactly `length` bytes at `offset`; a short read is a StoreError."""
    chunks = []
    remaining = length
    while remaining > 0:
        try:
            chunk = os.pread(fd, remaining, offset)
        except OSError as e:
            raise StoreError(f"{path}: unable to read {what}: {e.strerror}") from None
        if not chunk:
            raise StoreError(f"{path}: the state file ended inside {what} (it shrank while being read)")
        chunks.append(chunk)
        remaining -= len(chunk)
        offset += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _fstat(fd: int, path: str) -> os.stat_result:
    try:
        return os.fstat(fd)
    except OSError as e:
        raise StoreError(f"{path}: unable to stat the state file: {e.strerror}") from None


def _parse_header(raw: bytes, size: int, path: str) -> _Header:
    """Validate the first HEADER_SIZE bytes of a file of `size` bytes."""
    magic, major, minor, _reserved, boot, pid_ns, capacity, _reserved2, crc = struct.unpack(
        HEADER_FORMAT, raw
    )
    if magic != MAGIC:
        raise StoreError(f"{path}: not a pidone state file (bad magic {magic!r})")
    if major != LAYOUT_MAJOR:
        raise StoreError(
            f"{path}: layout version {major}.{minor} is not supported by this pidone "
            f"(it reads {LAYOUT_MAJOR}.x)"
        )
    if zlib.crc32(raw[:HEADER_CRC_OFFSET]) != crc:
        raise StoreError(f"{path}: the header is corrupt (checksum mismatch)")
    if not SLOT_HEADER_SIZE < capacity <= MAX_CAPACITY:
        raise StoreError(
            f"{path}: the header claims slots of {capacity} bytes "
            f"(valid: {SLOT_HEADER_SIZE + 1} to {MAX_CAPACITY})"
        )
    needed = HEADER_SIZE + 2 * capacity
    if size < needed:
        raise StoreError(
            f"{path}: the state file is truncated ({size} bytes; its layout needs {needed})"
        )
    return _Header(major, minor, uuid.UUID(bytes=boot), pid_ns, capacity)


def _check_identity(header: _Header, path: str) -> None:
    boot_id, pid_ns = current_identity()
    if header.boot_id != boot_id:
        raise StoreError(
            f"{path}: the state was written in another boot "
            f"(boot id {header.boot_id}; this boot is {boot_id})"
        )
    if header.pid_ns != pid_ns:
        raise StoreError(
            f"{path}: the state was written in another PID namespace "
            f"(pid:[{header.pid_ns}]; this one is pid:[{pid_ns}])"
        )


def _read_slot_headers(fd: int, header: _Header, path: str) -> list[_Slot]:
    slots = []
    for index in (0, 1):
        offset = HEADER_SIZE + index * header.capacity
        raw = _pread_exact(fd, SLOT_HEADER_SIZE, offset, path, f"the header of slot {index}")
        slots.append(_Slot(index, *struct.unpack(SLOT_HEADER_FORMAT, raw)))
    return slots


def _newest_valid(
    fd: int, header: _Header, slots: list[_Slot], path: str
) -> tuple[_Slot | None, bytes, list[str]]:
    """Return the valid slot with the highest sequence and its payload, or
    (None, b"", reasons) with why each slot is invalid."""
    reasons = []
    max_length = header.capacity - SLOT_HEADER_SIZE
    for slot in sorted(slots, key=lambda s: (s.sequence, -s.index), reverse=True):
        if slot.sequence == 0:
            reasons.append(f"slot {slot.index} was never written")
            continue
        if slot.length > max_length:
            reasons.append(
                f"slot {slot.index} claims {slot.length} bytes (its capacity is {max_length})"
            )
            continue
        offset = HEADER_SIZE + slot.index * header.capacity + SLOT_HEADER_SIZE
        payload = _pread_exact(fd, slot.length, offset, path, f"the payload of slot {slot.index}")
        if _slot_crc(slot.sequence, slot.length, payload) != slot.crc:
            reasons.append(f"slot {slot.index} (sequence {slot.sequence}) is corrupt (checksum mismatch)")
            continue
        return slot, payload, reasons
    return None, b"", sorted(reasons)


def _inspect(fd: int, path: str, expect_same_boot: bool) -> tuple[_Header, _Slot | None, bytes, list[str]]:
    """Validate the file behind `fd`; return its header and newest valid slot."""
    for attempt in range(_READ_ATTEMPTS):
        size = _fstat(fd, path).st_size
        if size == 0:
            raise StoreError(f"{path}: the state file is empty")
        if size < HEADER_SIZE:
            raise StoreError(
                f"{path}: the state file is truncated ({size} bytes; its header needs {HEADER_SIZE})"
            )
        if size > MAX_FILE_SIZE:
            raise StoreError(f"{path}: the state file is too large ({size} bytes; at most {MAX_FILE_SIZE})")
        raw = _pread_exact(fd, HEADER_SIZE, 0, path, "the header")
        header = _parse_header(raw, size, path)
        if expect_same_boot:
            _check_identity(header, path)
        slots = _read_slot_headers(fd, header, path)
        slot, payload, reasons = _newest_valid(fd, header, slots, path)
        if slot is not None:
            return header, slot, payload, reasons
        # Nothing valid: retry only if a writer changed the file meanwhile.
        if attempt + 1 < _READ_ATTEMPTS:
            again = _pread_exact(fd, HEADER_SIZE, 0, path, "the header")
            if again == raw and _read_slot_headers(fd, header, path) == slots:
                break
    return header, None, b"", reasons


def _open_checked(path: str, flags: int, mode: int = FILE_MODE, *, writer: bool) -> tuple[int, os.stat_result]:
    """Open `path` without following a symlink; refuse what is not a regular
    file we may trust. Return the descriptor and its stat."""
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(f"{path}: refusing a symlink as the state file") from None
        raise StoreError(f"{path}: unable to open the state file: {e.strerror}") from None
    try:
        st = _fstat(fd, path)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{path}: the state file is not a regular file")
        euid = os.geteuid()
        if writer:
            if st.st_uid != euid:
                raise StoreError(f"{path}: the state file is owned by uid {st.st_uid}, not by us (uid {euid})")
            if st.st_nlink > 1:
                raise StoreError(f"{path}: the state file has {st.st_nlink} hard links; refusing it")
        else:
            if st.st_uid not in (euid, 0):
                raise StoreError(
                    f"{path}: the state file is owned by uid {st.st_uid}, neither us (uid {euid}) nor root"
                )
            if st.st_mode & 0o022:
                raise StoreError(
                    f"{path}: the state file is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
                )
    except BaseException:
        os.close(fd)
        raise
    return fd, st


class StateFile:
    """The writer's side of one state file, open for `write()`.

    Make one with `create()` (a fresh, empty file) or `open_existing()` (the
    file an earlier pidone wrote, after `execve`). Every method raises only
    StoreError for problems with the file or the disk.
    """

    def __init__(self, fd: int, path: str, capacity: int, boot_id: uuid.UUID, pid_ns: int,
                 sequence: int, newest_slot: int | None):
        self.path = path
        self._fd: int | None = fd
        self._capacity = capacity
        self._boot_id = boot_id
        self._pid_ns = pid_ns
        self._sequence = sequence
        self._newest_slot = newest_slot
        self._header = _pack_header(LAYOUT_MAJOR, LAYOUT_MINOR, boot_id, pid_ns, capacity)

    @classmethod
    def create(cls, path: str, *, capacity: int = DEFAULT_CAPACITY) -> StateFile:
        """Create (or truncate) the state file at `path` and write a fresh
        header with two empty slots of `capacity` bytes each; return it open.

        The file is created with mode 0600 and opened with O_NOFOLLOW. Raises
        StoreError naming the path for a symlink, a non-regular file, a file
        owned by someone else or with other hard links, and when the space
        cannot be allocated. Raises ValueError for a capacity out of range.
        """
        if not SLOT_HEADER_SIZE < capacity <= MAX_CAPACITY:
            raise ValueError(f"capacity {capacity} is out of range ({SLOT_HEADER_SIZE + 1}..{MAX_CAPACITY})")
        boot_id, pid_ns = current_identity()
        fd, st = _open_checked(path, _WRITE_FLAGS | os.O_CREAT, writer=True)
        try:
            if stat.S_IMODE(st.st_mode) != FILE_MODE:
                os.fchmod(fd, FILE_MODE)
            os.ftruncate(fd, 0)
            self = cls(fd, path, capacity, boot_id, pid_ns, sequence=0, newest_slot=None)
            self._allocate(capacity)
            self._pwrite(self._header, 0, "the header")
        except OSError as e:
            os.close(fd)
            raise StoreError(f"{path}: unable to create the state file: {e.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        return self

    @classmethod
    def open_existing(cls, path: str, *, expect_same_boot: bool = True) -> StateFile:
        """Open the state file an earlier pidone wrote at `path`, to write on.

        The header is validated as by `read_state` (magic, checksum, major
        version, size, and boot and PID namespace unless `expect_same_boot`
        is false). The slots need not hold a valid state: the next write
        continues after the newest valid sequence, if any. The header is
        rewritten with this pidone's version and identity at the next write.
        Raises StoreError, naming the path, for anything wrong.
        """
        fd, _ = _open_checked(path, _WRITE_FLAGS, writer=True)
        try:
            header, slot, _, _ = _inspect(fd, path, expect_same_boot)
            boot_id, pid_ns = (header.boot_id, header.pid_ns) if expect_same_boot else current_identity()
            sequence = slot.sequence if slot is not None else 0
            newest = slot.index if slot is not None else None
            return cls(fd, path, header.capacity, boot_id, pid_ns, sequence, newest)
        except BaseException:
            os.close(fd)
            raise

    @property
    def fd(self) -> int:
        """The open descriptor (O_CLOEXEC: clear that to keep it across exec)."""
        if self._fd is None:
            raise StoreError(f"{self.path}: the state file is closed")
        return self._fd

    @property
    def capacity(self) -> int:
        """Bytes per slot, slot header included; payloads up to capacity - 16 fit."""
        return self._capacity

    @property
    def sequence(self) -> int:
        """The sequence number of the newest state written (0 before any)."""
        return self._sequence

    def write(self, payload: bytes) -> None:
        """Store `payload` as the newest state, growing the slots if needed.

        The slot that does not hold the newest state is filled (payload, then
        slot header), so the previous state stays readable until this one is
        complete. A file that someone shrank, or whose header was changed, is
        repaired first. Raises StoreError when the file is closed, the disk
        is full, or the payload is larger than MAX_CAPACITY allows.
        """
        fd = self.fd
        length = len(payload)
        sequence = self._sequence + 1
        if sequence > _U64_MAX:
            raise StoreError(f"{self.path}: the sequence numbers are exhausted; create the state file anew")
        old_capacity, old_header = self._capacity, self._header
        try:
            if length > self._capacity - SLOT_HEADER_SIZE:
                capacity = capacity_for(length)
                self._allocate(capacity)  # before anything changes, so ENOSPC changes nothing
                target = 1  # past the end of the old layout (see the module docstring)
                self._capacity = capacity
                self._header = _pack_header(LAYOUT_MAJOR, LAYOUT_MINOR, self._boot_id, self._pid_ns, capacity)
            else:
                if os.fstat(fd).st_size < HEADER_SIZE + 2 * self._capacity:
                    self._allocate(self._capacity)  # someone shrank it
                target = 0 if self._newest_slot is None else 1 - self._newest_slot
            offset = HEADER_SIZE + target * self._capacity
            crc = _slot_crc(sequence, length, payload)
            self._pwrite(payload, offset + SLOT_HEADER_SIZE, "the payload")
            self._pwrite(struct.pack(SLOT_HEADER_FORMAT, sequence, length, crc), offset, "the slot header")
            if os.pread(fd, HEADER_SIZE, 0) != self._header:
                self._pwrite(self._header, 0, "the header")
        except BaseException as e:
            # A growth cut short must not leave us writing the new layout
            # under the old header: go on with the old one (the next write
            # rewrites whatever part of the header was changed).
            self._capacity, self._header = old_capacity, old_header
            if isinstance(e, OSError):
                raise StoreError(f"{self.path}: unable to write the state: {e.strerror}") from None
            raise
        self._sequence = sequence
        self._newest_slot = target

    def close(self) -> None:
        """Close the descriptor; closing twice is harmless."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> StateFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateFile({self.path!r}, capacity={self._capacity}, sequence={self._sequence})"

    def _allocate(self, capacity: int) -> None:
        size = HEADER_SIZE + 2 * capacity
        try:
            os.posix_fallocate(self.fd, 0, size)
        except OSError as e:
            raise StoreError(
                f"{self.path}: unable to allocate {size} bytes for the state file: {e.strerror}"
            ) from None

    def _pwrite(self, data, offset: int, what: str) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            if written <= 0:  # pragma: no cover - a regular file never does this
                raise StoreError(f"{self.path}: unable to write {what}: no progress")
            view = view[written:]
            offset += written


def read_state(path: str, *, expect_same_boot: bool = True) -> StateRead:
    """Read the newest valid state from the file at `path`.

    The file is opened with O_NOFOLLOW and must be a regular file owned by
    us or root and writable by nobody else; its header must carry the magic,
    a valid checksum, layout major LAYOUT_MAJOR (a newer minor is accepted
    and reported) and a size that fits the file; with `expect_same_boot`
    (the default) it must also come from this boot and PID namespace.
    Returns the valid slot with the highest sequence. Raises StoreError,
    naming the path and the problem, for anything else, whatever the bytes.
    """
    fd, _ = _open_checked(path, _READ_FLAGS, writer=False)
    try:
        header, slot, payload, reasons = _inspect(fd, path, expect_same_boot)
    finally:
        os.close(fd)
    if slot is None:
        raise StoreError(f"no valid state in {path}: " + "; ".join(reasons))
    return StateRead(
        payload=payload,
        sequence=slot.sequence,
        major=header.major,
        minor=header.minor,
        boot_id=header.boot_id,
        pid_ns=header.pid_ns,
        slot=slot.index,
    )

"""The layout of pidone's state (SPEC §7): header, layout version, two slots,
checksums. The payload is opaque bytes here, and so is the memory: this
module reads and plans writes over any buffer (the memfd's mapping in
`memstate.py`, a bytearray in the tests). It is the only module that knows
the layout.

Layout (all integers little-endian)
===================================

Header, ``HEADER_SIZE`` = 64 bytes at offset 0::

    offset size  field
    ------ ----  -----------------------------------------------------------
         0    8  magic            b"PIDONE\\x00S"
         8    2  layout major     u16, LAYOUT_MAJOR (a reader refuses another)
        10    2  layout minor     u16, LAYOUT_MINOR (a newer one is accepted)
        12    4  reserved         u32, 0; free for a later minor
        16    8  slot capacity    u64, bytes per slot, slot header included
        24   36  reserved         0; free for a later minor
        60    4  header CRC32     u32, zlib.crc32 of bytes 0..59

Then two slots, slot 0 at ``HEADER_SIZE`` and slot 1 at
``HEADER_SIZE + capacity``, each ``capacity`` bytes; the memory is at least
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
them) and must keep every offset; anything else is a new major. Major 1 was
the pwrite-d state file (boot id and PID namespace at 16..39); major 2 lives
in a memfd, which cannot outlive the boot or the namespace's PID 1.

Writing
=======

An update fills the slot that does *not* hold the newest payload, with
sequence = newest + 1: payload bytes first, slot header last. An update cut
short at any byte therefore leaves that one slot invalid (its CRC, which also
covers the sequence and length, does not match) and the other slot valid;
the reader takes the valid slot with the highest sequence. `plan_update`
returns the writes in that order, so the tests can cut them at every byte.

Growth: a payload that does not fit makes the capacity the next power of two
of at least twice the slot it needs (at least ``MIN_CAPACITY``). The new slot
1 starts at ``HEADER_SIZE + new capacity``, at or past the end of the old
layout; the payload is written there, then its slot header, then the new
header. Until the header is written the old layout is untouched and a reader
sees the old state; afterwards slot 1 is the newest, and slot 0 still holds
the old slot 0 (an older but genuine state, or an invalid one). The memory
must be grown to the new size (`Plan.size`) before any write.

Reading
=======

`read_state` checks every length against the buffer's size and the slot
capacity before it slices anything, caps the size (``MAX_SIZE``), and turns
every problem, whatever the bytes, into a `StoreError` that says what was
wrong.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import StoreError

MAGIC = b"PIDONE\x00S"
LAYOUT_MAJOR = 2
LAYOUT_MINOR = 0

HEADER_FORMAT = "<8sHHIQ36sI"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 64
HEADER_CRC_OFFSET = HEADER_SIZE - 4  # the CRC covers every byte before it
SLOT_HEADER_FORMAT = "<QII"
SLOT_HEADER_SIZE = struct.calcsize(SLOT_HEADER_FORMAT)  # 16

MIN_CAPACITY = 64 * 1024  # bytes per slot, slot header included
DEFAULT_CAPACITY = MIN_CAPACITY
MAX_CAPACITY = 512 * 1024 * 1024  # the largest slot a writer makes or a reader accepts
MAX_SIZE = HEADER_SIZE + 2 * MAX_CAPACITY  # a reader refuses anything larger

_U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class StateRead:
    """The newest valid state in a buffer.

    `payload` is the caller's bytes; `sequence` is its update number; `major`
    and `minor` are the layout version (a `minor` above `LAYOUT_MINOR` was
    written by newer code: the caller should warn); `capacity` is the slot
    size; `slot` (0 or 1) is where it was found.
    """

    payload: bytes
    sequence: int
    major: int
    minor: int
    capacity: int
    slot: int


@dataclass(frozen=True)
class Position:
    """Where a writer stands: the slot capacity, the newest sequence written
    (0 before any) and the slot that holds it (None before any)."""

    capacity: int
    sequence: int = 0
    newest_slot: int | None = None

    @property
    def size(self) -> int:
        """The bytes this layout needs."""
        return layout_size(self.capacity)


@dataclass(frozen=True)
class Plan:
    """One update: grow the memory to `size` bytes first (if it is smaller),
    then make `writes` ((offset, bytes), in order); afterwards the writer
    stands at `after`."""

    size: int
    writes: tuple[tuple[int, bytes], ...]
    after: Position


def layout_size(capacity: int) -> int:
    return HEADER_SIZE + 2 * capacity


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


def pack_header(capacity: int, major: int = LAYOUT_MAJOR, minor: int = LAYOUT_MINOR) -> bytes:
    body = struct.pack(HEADER_FORMAT, MAGIC, major, minor, 0, capacity, bytes(36), 0)[:HEADER_CRC_OFFSET]
    return body + struct.pack("<I", zlib.crc32(body))


def check_capacity(capacity: int) -> None:
    """Raise ValueError for a slot capacity a writer may not use."""
    if not SLOT_HEADER_SIZE < capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity {capacity} is out of range ({SLOT_HEADER_SIZE + 1}..{MAX_CAPACITY})")


def initial_writes(capacity: int) -> bytes:
    """The first bytes of a fresh layout (the header; the slots are zero,
    that is never written)."""
    check_capacity(capacity)
    return pack_header(capacity)


def _slot_crc(sequence: int, length: int, payload) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<QI", sequence, length)))


def plan_update(position: Position, payload: bytes) -> Plan:
    """The writes that make `payload` the newest state after `position`.

    Raises StoreError when the sequence numbers are exhausted or the
    payload is larger than MAX_CAPACITY allows.
    """
    length = len(payload)
    sequence = position.sequence + 1
    if sequence > _U64_MAX:
        raise StoreError("the sequence numbers are exhausted; the state must be created anew")
    writes = []
    capacity = position.capacity
    if length > capacity - SLOT_HEADER_SIZE:
        capacity = capacity_for(length)
        target = 1  # past the end of the old layout (see the module docstring)
    else:
        target = 0 if position.newest_slot is None else 1 - position.newest_slot
    offset = HEADER_SIZE + target * capacity
    writes.append((offset + SLOT_HEADER_SIZE, bytes(payload)))
    writes.append((offset, struct.pack(SLOT_HEADER_FORMAT, sequence, length, _slot_crc(sequence, length, payload))))
    if capacity != position.capacity:
        writes.append((0, pack_header(capacity)))
    return Plan(layout_size(capacity), tuple(writes), Position(capacity, sequence, target))


def apply(buffer, plan: Plan) -> None:
    """Make the writes of `plan` in `buffer` (at least `plan.size` long)."""
    if len(buffer) < plan.size:
        raise StoreError(f"the state's memory is {len(buffer)} bytes; this update needs {plan.size}")
    for offset, data in plan.writes:
        buffer[offset:offset + len(data)] = data


def _parse_header(data, where: str) -> tuple[int, int, int]:
    """Validate the header of `data`; return (major, minor, capacity)."""
    size = len(data)
    if size == 0:
        raise StoreError(f"{where}: the state is empty")
    if size < HEADER_SIZE:
        raise StoreError(f"{where}: the state is truncated ({size} bytes; its header needs {HEADER_SIZE})")
    if size > MAX_SIZE:
        raise StoreError(f"{where}: the state is too large ({size} bytes; at most {MAX_SIZE})")
    raw = bytes(data[:HEADER_SIZE])
    magic, major, minor, _reserved, capacity, _reserved2, crc = struct.unpack(HEADER_FORMAT, raw)
    if magic != MAGIC:
        raise StoreError(f"{where}: not a pidone state (bad magic {magic!r})")
    if major != LAYOUT_MAJOR:
        raise StoreError(
            f"{where}: layout version {major}.{minor} is not supported by this pidone "
            f"(it reads {LAYOUT_MAJOR}.x)"
        )
    if zlib.crc32(raw[:HEADER_CRC_OFFSET]) != crc:
        raise StoreError(f"{where}: the header is corrupt (checksum mismatch)")
    if not SLOT_HEADER_SIZE < capacity <= MAX_CAPACITY:
        raise StoreError(
            f"{where}: the header claims slots of {capacity} bytes "
            f"(valid: {SLOT_HEADER_SIZE + 1} to {MAX_CAPACITY})"
        )
    needed = layout_size(capacity)
    if size < needed:
        raise StoreError(f"{where}: the state is truncated ({size} bytes; its layout needs {needed})")
    return major, minor, capacity


def _newest(data, capacity: int) -> tuple[int, int, int, bytes, list[str]] | tuple[None, None, None, bytes, list[str]]:
    """The valid slot with the highest sequence: (index, sequence, length,
    payload, reasons), or Nones and why each slot is invalid."""
    reasons = []
    max_length = capacity - SLOT_HEADER_SIZE
    slots = []
    for index in (0, 1):
        offset = HEADER_SIZE + index * capacity
        slots.append((index, *struct.unpack(SLOT_HEADER_FORMAT, bytes(data[offset:offset + SLOT_HEADER_SIZE]))))
    for index, sequence, length, crc in sorted(slots, key=lambda s: (s[1], -s[0]), reverse=True):
        if sequence == 0:
            reasons.append(f"slot {index} was never written")
            continue
        if length > max_length:
            reasons.append(f"slot {index} claims {length} bytes (its capacity is {max_length})")
            continue
        start = HEADER_SIZE + index * capacity + SLOT_HEADER_SIZE
        payload = bytes(data[start:start + length])
        if _slot_crc(sequence, length, payload) != crc:
            reasons.append(f"slot {index} (sequence {sequence}) is corrupt (checksum mismatch)")
            continue
        return index, sequence, length, payload, reasons
    return None, None, None, b"", sorted(reasons)


def read_state(data, where: str = "the state") -> StateRead:
    """Read the newest valid state from `data` (bytes, or a mapping).

    The header must carry the magic, a valid checksum, layout major
    LAYOUT_MAJOR (a newer minor is accepted and reported) and a capacity
    that fits `data`. Returns the valid slot with the highest sequence.
    Raises StoreError, naming `where` and the problem, for anything else,
    whatever the bytes.
    """
    major, minor, capacity = _parse_header(data, where)
    index, sequence, _, payload, reasons = _newest(data, capacity)
    if index is None:
        raise StoreError(f"no valid state in {where}: " + "; ".join(reasons))
    return StateRead(payload, sequence, major, minor, capacity, index)


def position_of(data, where: str = "the state") -> Position:
    """Where a writer continues in `data`, which an earlier pidone wrote:
    after its newest valid state, if any. The header must be valid (as for
    `read_state`); the slots need not be. Raises StoreError."""
    _, _, capacity = _parse_header(data, where)
    index, sequence, _, _, _ = _newest(data, capacity)
    return Position(capacity, sequence or 0, index)

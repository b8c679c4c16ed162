"""The state's layout and its memfd (SPEC §7, RELIABILITY §1.6, C6/C7): round
trips, slot alternation, torn updates cut at every byte, growth, hostile
bytes — every damaged state is a StoreError or a state that was really
written, never anything else — and the sealed, mapped memfd itself."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import resource
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pidone import store
from pidone.errors import StoreError
from pidone.memstate import MemState, open_view, read_fd
from pidone.store import (
    HEADER_SIZE, LAYOUT_MAJOR, LAYOUT_MINOR, MIN_CAPACITY, SLOT_HEADER_SIZE, Position, apply, capacity_for,
    pack_header, plan_update, read_state,
)

SMALL = 256  # a slot capacity small enough to step through every offset


class Buffer:
    """A layout in a bytearray, written the way MemState writes its mapping."""

    def __init__(self, capacity: int = SMALL):
        self.position = Position(capacity)
        self.data = bytearray(self.position.size)
        self.data[:HEADER_SIZE] = pack_header(capacity)

    def write(self, payload: bytes) -> store.Plan:
        plan = plan_update(self.position, payload)
        if plan.size > len(self.data):
            self.data.extend(bytes(plan.size - len(self.data)))
        apply(self.data, plan)
        self.position = plan.after
        return plan


def rewrite_header(data: bytearray, **fields) -> None:
    """Change header fields and recompute its CRC, as a writer of that
    version would."""
    magic, major, minor, r1, capacity, r2, _ = struct.unpack(store.HEADER_FORMAT, bytes(data[:HEADER_SIZE]))
    values = dict(magic=magic, major=major, minor=minor, capacity=capacity) | fields
    body = struct.pack(store.HEADER_FORMAT, values["magic"], values["major"], values["minor"], r1,
                       values["capacity"], r2, 0)[:-4]
    data[:HEADER_SIZE] = body + struct.pack("<I", zlib.crc32(body))


# -- the layout ----------------------------------------------------------------


def test_round_trip_reports_version_and_slot():
    b = Buffer()
    b.write(b"hello")
    found = read_state(b.data)
    assert (found.payload, found.sequence, found.slot) == (b"hello", 1, 0)
    assert (found.major, found.minor, found.capacity) == (LAYOUT_MAJOR, LAYOUT_MINOR, SMALL)


def test_slots_alternate_and_sequences_increase():
    b = Buffer()
    for i in range(1, 6):
        b.write(f"state {i}".encode())
        found = read_state(b.data)
        assert (found.payload, found.sequence, found.slot) == (f"state {i}".encode(), i, (i - 1) % 2)


def test_empty_payload_is_a_state():
    b = Buffer()
    b.write(b"")
    assert read_state(b.data).payload == b""


def test_a_fresh_layout_has_no_valid_state():
    with pytest.raises(StoreError, match="no valid state.*slot 0 was never written.*slot 1 was never written"):
        read_state(Buffer().data)


def test_corrupt_newest_slot_falls_back_to_the_previous_one():
    b = Buffer()
    b.write(b"old")
    b.write(b"new")
    b.data[HEADER_SIZE + SMALL + SLOT_HEADER_SIZE] ^= 0xFF  # slot 1's payload
    found = read_state(b.data)
    assert (found.payload, found.sequence) == (b"old", 1)


def test_both_slots_corrupt_is_a_store_error():
    b = Buffer()
    b.write(b"one")
    b.write(b"two")
    for slot in (0, 1):
        b.data[HEADER_SIZE + slot * SMALL + SLOT_HEADER_SIZE] ^= 0xFF
    with pytest.raises(StoreError, match="slot 0 .*corrupt.*slot 1 .*corrupt"):
        read_state(b.data)


def test_growth_moves_slot_one_past_the_old_layout():
    b = Buffer()
    b.write(b"small")
    big = bytes(range(256)) * 4
    plan = b.write(big)
    capacity = capacity_for(len(big))
    assert plan.size == HEADER_SIZE + 2 * capacity and plan.writes[0][0] >= HEADER_SIZE + 2 * SMALL
    assert [offset for offset, _ in plan.writes][-1] == 0, "the header comes last"
    found = read_state(b.data)
    assert (found.payload, found.capacity, found.slot) == (big, capacity, 1)


def test_capacity_for():
    assert capacity_for(0) == MIN_CAPACITY
    assert capacity_for(MIN_CAPACITY) == 4 * MIN_CAPACITY
    with pytest.raises(StoreError, match="too large"):
        capacity_for(store.MAX_CAPACITY)


@settings(max_examples=300, deadline=None)
@given(before=st.lists(st.binary(max_size=300), max_size=3), payload=st.binary(max_size=700), data=st.data())
def test_a_torn_update_is_never_read_back_as_valid_unless_complete(before, payload, data):
    """Cut one update (growth included) after any byte of its writes: the
    reader finds the previous state or, only if every byte of the update
    that matters is there, the new one; never anything else."""
    b = Buffer()
    for old in before:
        b.write(old)
    previous = read_state(b.data).payload if before else None
    plan = plan_update(b.position, payload)
    torn = bytearray(b.data) + bytes(max(0, plan.size - len(b.data)))
    complete = bytearray(torn)
    apply(complete, plan)
    stream = [(offset + i, byte) for offset, chunk in plan.writes for i, byte in enumerate(chunk)]
    cut = data.draw(st.integers(0, len(stream)), label="bytes written")
    for at, byte in stream[:cut]:
        torn[at] = byte
    try:
        found = read_state(torn).payload
    except StoreError:
        assert previous is None, "the previous state was lost"
        return
    if found == payload and payload != previous:
        # Only a read of the complete update may return it.
        new = plan.after
        slot = HEADER_SIZE + new.newest_slot * new.capacity
        end = slot + SLOT_HEADER_SIZE + len(payload)
        assert torn[slot:end] == complete[slot:end] and torn[:HEADER_SIZE] == complete[:HEADER_SIZE]
    else:
        assert found == previous


@settings(max_examples=300, deadline=None)
@given(noise=st.binary(min_size=0, max_size=2 * SMALL + HEADER_SIZE))
def test_arbitrary_bytes_after_a_valid_header_are_a_store_error_or_a_state(noise):
    data = bytearray(pack_header(SMALL)) + bytearray(noise) + bytes(max(0, 2 * SMALL - len(noise)))
    try:
        read_state(data)
    except StoreError:
        pass


def test_truncated_at_every_offset_is_a_store_error():
    b = Buffer()
    b.write(b"x" * 50)
    for size in range(len(b.data)):
        with pytest.raises(StoreError, match="empty|truncated"):
            read_state(b.data[:size])


@pytest.mark.parametrize("change, message", [
    (dict(magic=b"NOTPIDON"), "bad magic"),
    (dict(major=LAYOUT_MAJOR + 1), f"layout version {LAYOUT_MAJOR + 1}.0 is not supported"),
    (dict(major=1), "layout version 1.0 is not supported"),
    (dict(capacity=SLOT_HEADER_SIZE), "claims slots of 16 bytes"),
    (dict(capacity=1 << 62), "claims slots of"),
    (dict(capacity=SMALL * 4), "truncated"),
])
def test_a_bad_header_is_named(change, message):
    b = Buffer()
    b.write(b"x")
    rewrite_header(b.data, **change)
    with pytest.raises(StoreError, match=message):
        read_state(b.data)


def test_the_header_checksum_is_checked():
    b = Buffer()
    b.write(b"x")
    b.data[HEADER_SIZE - 8] ^= 1  # a reserved byte
    with pytest.raises(StoreError, match="header is corrupt"):
        read_state(b.data)


def test_a_newer_minor_is_accepted_and_reported():
    b = Buffer()
    b.write(b"x")
    rewrite_header(b.data, minor=LAYOUT_MINOR + 3)
    assert read_state(b.data).minor == LAYOUT_MINOR + 3


def test_a_slot_length_beyond_capacity_is_named():
    b = Buffer()
    b.write(b"x")
    struct.pack_into("<I", b.data, HEADER_SIZE + 8, SMALL)
    with pytest.raises(StoreError, match="slot 0 claims 256 bytes"):
        read_state(b.data)


def test_a_state_larger_than_the_cap_is_refused_before_reading():
    class Huge:
        def __len__(self):
            return store.MAX_SIZE + 1

        def __getitem__(self, item):
            raise AssertionError("read")

    with pytest.raises(StoreError, match="too large"):
        read_state(Huge())


def test_position_continues_after_the_newest_valid_state():
    b = Buffer()
    for i in range(3):
        b.write(b"s%d" % i)
    assert store.position_of(b.data) == Position(SMALL, 3, 0)


# -- the memfd -----------------------------------------------------------------


@pytest.fixture
def mem():
    state = MemState.create()
    yield state
    state.close()


def test_the_memfd_is_sealed_against_shrinking_and_new_seals(mem):
    seals = fcntl.fcntl(mem.fd, fcntl.F_GET_SEALS)
    assert seals & fcntl.F_SEAL_SHRINK and seals & fcntl.F_SEAL_SEAL
    assert not seals & (fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    assert not os.get_inheritable(mem.fd)
    assert os.readlink(f"/proc/self/fd/{mem.fd}").startswith("/memfd:pidone-state")


def test_nobody_can_truncate_it(mem):
    mem.write(b"kept")
    for how in (lambda: os.ftruncate(mem.fd, 0), lambda: os.truncate(f"/proc/self/fd/{mem.fd}", 10)):
        with pytest.raises(OSError) as info:
            how()
        assert info.value.errno == errno.EPERM
    with pytest.raises(OSError):
        fcntl.fcntl(mem.fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW)
    assert mem.read().payload == b"kept"


def test_updates_are_in_the_memory_at_once(mem):
    for i in range(5):
        mem.write(b"v%d" % i)
        assert open_view(f"/proc/self/fd/{mem.fd}").payload == b"v%d" % i


def test_growth_remaps_the_same_memfd(mem):
    ino = os.fstat(mem.fd).st_ino
    big = os.urandom(3 * MIN_CAPACITY)
    mem.write(big)
    assert mem.capacity == capacity_for(len(big)) and os.fstat(mem.fd).st_ino == ino
    assert os.fstat(mem.fd).st_size == mem.size == HEADER_SIZE + 2 * mem.capacity
    assert mem.read().payload == big and read_fd(mem.fd, "here").payload == big


def test_growth_that_cannot_allocate_keeps_the_last_state_whole(mem):
    """RLIMIT_FSIZE stands for any allocation failure (ENOMEM, a cgroup)."""
    mem.write(b"last good")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (mem.size + 4096, hard))
    try:
        with pytest.raises(StoreError, match="unable to allocate .* File too large"):
            mem.write(os.urandom(2 * MIN_CAPACITY))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert mem.read().payload == b"last good" and mem.capacity == MIN_CAPACITY
    mem.write(b"next")
    assert mem.read().payload == b"next"


def test_a_header_overwritten_from_outside_is_repaired_by_the_next_update(mem):
    mem.write(b"one")
    fd = os.open(f"/proc/self/fd/{mem.fd}", os.O_RDWR)
    try:
        os.pwrite(fd, b"garbage!" * 8, 0)
    finally:
        os.close(fd)
    with pytest.raises(StoreError, match="bad magic"):
        mem.read()
    mem.write(b"two")
    assert mem.read().payload == b"two"


def test_adopt_continues_in_the_same_memory(mem):
    mem.write(b"before exec")
    fd = os.dup(mem.fd)
    other = MemState.adopt(fd)
    try:
        assert other.read().payload == b"before exec" and other.sequence == 1
        other.write(b"after exec")
        assert mem.read().payload == b"after exec"
        assert os.fstat(fd).st_ino == os.fstat(mem.fd).st_ino
    finally:
        other.close()


def test_adopt_refuses_what_is_not_a_sealed_memfd(tmp_path):
    path = tmp_path / "plain"
    path.write_bytes(bytes(4096))
    with pytest.raises(StoreError, match="not a memfd"):
        MemState.adopt(os.open(path, os.O_RDWR))
    unsealed = os.memfd_create("x", os.MFD_ALLOW_SEALING)
    os.ftruncate(unsealed, 4096)
    with pytest.raises(StoreError, match="not sealed against shrinking"):
        MemState.adopt(unsealed)
    with pytest.raises(OSError):
        os.fstat(unsealed)  # adopt owns the fd: closed on failure


def test_the_selftest_copy_is_the_same_state_and_read_only(mem):
    mem.write(b"copied")
    copy = mem.copy()
    try:
        assert read_fd(copy, "copy").payload == b"copied"
        seals = fcntl.fcntl(copy, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SHRINK
        with pytest.raises(OSError):
            os.pwrite(copy, b"x", 0)
        mem.write(b"later")
        assert read_fd(copy, "copy").payload == b"copied"
    finally:
        os.close(copy)


def test_open_view_refuses_a_regular_file(tmp_path):
    b = Buffer()
    b.write(b"x")
    path = tmp_path / "state"
    path.write_bytes(bytes(b.data))
    with pytest.raises(StoreError, match="not a memfd"):
        open_view(str(path))


def test_random_bit_flips_in_the_memory_never_give_a_false_state(mem):
    rng = random.Random(7)
    mem.write(b"A" * 100)
    mem.write(b"B" * 100)
    fd = os.open(f"/proc/self/fd/{mem.fd}", os.O_RDWR)
    try:
        for _ in range(300):
            at = rng.randrange(HEADER_SIZE + 2 * (SLOT_HEADER_SIZE + 100) + MIN_CAPACITY)
            byte = os.pread(fd, 1, at)
            os.pwrite(fd, bytes([byte[0] ^ (1 << rng.randrange(8))]), at)
            try:
                assert read_fd(mem.fd, "flipped").payload in (b"A" * 100, b"B" * 100)
            except StoreError:
                pass
            os.pwrite(fd, byte, at)
    finally:
        os.close(fd)

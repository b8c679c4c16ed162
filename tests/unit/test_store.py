"""The state file (SPEC §7, RELIABILITY §1.6, C6/C7): round trips, slot
alternation, torn writes, growth, and hostile files — every damaged file is a
StoreError or a state that was really written, never anything else."""

from __future__ import annotations

import os
import random
import struct
import time
import uuid
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pidone import store
from pidone.errors import StoreError
from pidone.store import (
    HEADER_SIZE,
    LAYOUT_MAJOR,
    LAYOUT_MINOR,
    MIN_CAPACITY,
    SLOT_HEADER_SIZE,
    StateFile,
    read_state,
)

SMALL = 256  # a slot capacity small enough to step through every offset
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "state")


def rewrite_header(path: str, **fields) -> None:
    """Change header fields (major, minor, boot, pid_ns, capacity) and
    recompute the header CRC, as a writer of that version would."""
    with open(path, "r+b") as f:
        raw = f.read(HEADER_SIZE)
        magic, major, minor, r1, boot, pid_ns, capacity, r2, _ = struct.unpack(store.HEADER_FORMAT, raw)
        values = dict(major=major, minor=minor, boot=boot, pid_ns=pid_ns, capacity=capacity)
        values.update(fields)
        body = struct.pack(
            store.HEADER_FORMAT, magic, values["major"], values["minor"], r1, values["boot"],
            values["pid_ns"], values["capacity"], r2, 0,
        )[:-4]
        f.seek(0)
        f.write(body + struct.pack("<I", zlib.crc32(body)))


def slot_offset(capacity: int, index: int) -> int:
    return HEADER_SIZE + index * capacity


def two_states(path: str) -> tuple[bytes, bytes]:
    """A small file whose slots hold two genuine states; return them."""
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"first state")
        f.write(b"second, newer state")
    return b"first state", b"second, newer state"


# --- round trips and slots ------------------------------------------------------------


def test_round_trip_reports_version_and_identity(path):
    with StateFile.create(path) as f:
        f.write(b'{"units": {}}')
    got = read_state(path)
    boot_id, pid_ns = store.current_identity()
    assert got.payload == b'{"units": {}}'
    assert (got.sequence, got.major, got.minor) == (1, LAYOUT_MAJOR, LAYOUT_MINOR)
    assert (got.boot_id, got.pid_ns) == (boot_id, pid_ns)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path).st_size == HEADER_SIZE + 2 * MIN_CAPACITY


def test_slots_alternate_and_sequences_increase(path):
    with StateFile.create(path, capacity=SMALL) as f:
        for n in range(1, 8):
            f.write(b"state %d" % n)
            got = read_state(path)
            assert (got.payload, got.sequence, got.slot) == (b"state %d" % n, n, (n - 1) % 2)
            assert f.sequence == n


def test_empty_payload_is_a_state(path):
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"x")
        f.write(b"")
    assert read_state(path).payload == b""


def test_a_fresh_file_has_no_valid_state(path):
    StateFile.create(path, capacity=SMALL).close()
    with pytest.raises(StoreError, match=r"no valid state in .*state: slot 0 was never written"):
        read_state(path)


def test_create_truncates_an_old_file(path):
    two_states(path)
    StateFile.create(path, capacity=SMALL).close()
    with pytest.raises(StoreError, match="no valid state"):
        read_state(path)


def test_torn_write_without_slot_header_falls_back(path):
    """Payload bytes of the next slot written, its header not: the previous state."""
    first, second = two_states(path)  # second is in slot 1, so the next write goes to slot 0
    with open(path, "r+b") as f:
        f.seek(slot_offset(SMALL, 0) + SLOT_HEADER_SIZE)
        f.write(b"the third state, cut short before its slot header")
    got = read_state(path)
    assert (got.payload, got.sequence) == (second, 2)


def test_corrupt_newest_slot_falls_back_to_the_previous_one(path):
    first, second = two_states(path)
    with open(path, "r+b") as f:
        f.seek(slot_offset(SMALL, 1) + 12)  # the CRC of slot 1
        f.write(b"\0\0\0\0")
    got = read_state(path)
    assert (got.payload, got.sequence) == (first, 1)


def test_slot_header_torn_between_sequence_and_crc_is_invalid(path):
    """A new sequence with the old length and CRC must not validate."""
    first, second = two_states(path)
    with open(path, "r+b") as f:
        f.seek(slot_offset(SMALL, 0))
        f.write(struct.pack("<Q", 3))
    assert read_state(path).payload == second


def test_both_slots_corrupt_is_a_store_error(path):
    two_states(path)
    with open(path, "r+b") as f:
        for index in (0, 1):
            f.seek(slot_offset(SMALL, index) + SLOT_HEADER_SIZE)
            f.write(b"X")
    with pytest.raises(StoreError, match=r"no valid state in .*checksum mismatch"):
        read_state(path)


# --- growth ---------------------------------------------------------------------------


def test_growth_past_capacity(path):
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"small")
        big = bytes(range(256)) * 10  # 2560 bytes: far past 256
        f.write(big)
        assert f.capacity == MIN_CAPACITY
        assert read_state(path).payload == big
        f.write(b"after growth")
        got = read_state(path)
        assert (got.payload, got.sequence) == (b"after growth", 3)
        huge = os.urandom(300_000)
        f.write(huge)
        assert f.capacity == 1 << 20  # next power of two >= 2 * (300_000 + 16)
        assert read_state(path).payload == huge
    assert os.stat(path).st_size == HEADER_SIZE + 2 * (1 << 20)


@pytest.mark.parametrize("writes_before", [1, 2])
def test_growth_never_leaves_the_file_without_a_state(path, writes_before, monkeypatch):
    """Cut the growing write short after its payload and slot header, before the
    new header: the old state must still be read, whichever slot held it."""
    with StateFile.create(path, capacity=SMALL) as f:
        for n in range(writes_before):
            f.write(b"old %d" % n)
        real_pwrite = f._pwrite

        def pwrite_but_not_header(data, offset, what):
            if offset == 0:
                raise OSError(5, "Input/output error")
            real_pwrite(data, offset, what)

        monkeypatch.setattr(f, "_pwrite", pwrite_but_not_header)
        with pytest.raises(StoreError, match="Input/output error"):
            f.write(b"G" * 5000)
        assert read_state(path).payload == b"old %d" % (writes_before - 1)
        assert f.capacity == SMALL
        monkeypatch.undo()
        f.write(b"small again")  # in the old layout, under the old header
        assert read_state(path).payload == b"small again"
        f.write(b"G" * 5000)
        assert read_state(path).payload == b"G" * 5000


def test_growth_refuses_a_payload_too_large(path):
    with StateFile.create(path, capacity=SMALL) as f:
        with pytest.raises(StoreError, match="too large"):
            f.write(_Huge())
        f.write(b"still usable")
    assert read_state(path).payload == b"still usable"


class _Huge(bytes):
    """A payload that claims to be larger than any slot, without the memory."""

    def __len__(self):
        return store.MAX_CAPACITY


def test_capacity_for():
    assert store.capacity_for(0) == MIN_CAPACITY
    assert store.capacity_for(MIN_CAPACITY // 2 - SLOT_HEADER_SIZE) == MIN_CAPACITY
    assert store.capacity_for(MIN_CAPACITY // 2 - SLOT_HEADER_SIZE + 1) == 2 * MIN_CAPACITY
    assert store.capacity_for(1 << 20) == 4 << 20


# --- damaged files ----------------------------------------------------------------------


def test_zero_length_file(path):
    open(path, "wb").close()
    with pytest.raises(StoreError, match="is empty"):
        read_state(path)


def test_missing_file(path):
    with pytest.raises(StoreError, match="unable to open"):
        read_state(path)


def test_truncated_at_every_offset(path):
    two_states(path)
    good = open(path, "rb").read()
    for size in range(len(good)):
        with open(path, "wb") as f:
            f.write(good[:size])
        with pytest.raises(StoreError, match="empty|truncated"):
            read_state(path)


def test_random_bit_flips(path):
    written = set(two_states(path))
    good = open(path, "rb").read()
    rng = random.Random(20240917)
    outcomes = {"payload": 0, "error": 0}
    for _ in range(500):
        damaged = bytearray(good)
        for _ in range(rng.choice((1, 1, 2, 3))):
            bit = rng.randrange(len(damaged) * 8)
            damaged[bit // 8] ^= 1 << (bit % 8)
        with open(path, "wb") as f:
            f.write(damaged)
        try:
            got = read_state(path)
        except StoreError as e:
            assert str(e)
            outcomes["error"] += 1
        else:
            assert got.payload in written
            outcomes["payload"] += 1
    assert outcomes["payload"] and outcomes["error"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_bytes_after_a_valid_header(tmp_path, data):
    """A valid header followed by anything, or anything at all: StoreError or a state."""
    path = str(tmp_path / "state")
    capacity = data.draw(st.integers(SLOT_HEADER_SIZE + 1, 128))
    boot_id, pid_ns = store.current_identity()
    header = store._pack_header(LAYOUT_MAJOR, LAYOUT_MINOR, boot_id, pid_ns, capacity)
    body = data.draw(st.binary(max_size=2 * capacity + 40))
    raw = data.draw(st.sampled_from([header + body, body]))
    with open(path, "wb") as f:
        f.write(raw)
    try:
        got = read_state(path)
    except StoreError:
        return
    assert isinstance(got.payload, bytes) and got.sequence > 0


def test_header_claiming_2_to_62_byte_slots(path):
    two_states(path)
    rewrite_header(path, capacity=2**62)
    with pytest.raises(StoreError, match=r"claims slots of 4611686018427387904 bytes"):
        read_state(path)
    with pytest.raises(StoreError, match="claims slots"):
        StateFile.open_existing(path)


def test_header_claiming_more_than_the_file_holds(path):
    two_states(path)
    rewrite_header(path, capacity=1 << 20)
    with pytest.raises(StoreError, match=r"truncated \(576 bytes; its layout needs"):
        read_state(path)


def test_slot_length_beyond_capacity(path):
    first, second = two_states(path)
    with open(path, "r+b") as f:
        f.seek(slot_offset(SMALL, 1) + 8)
        f.write(struct.pack("<I", 2**32 - 1))
    assert read_state(path).payload == first
    with open(path, "r+b") as f:
        f.seek(slot_offset(SMALL, 0) + 8)
        f.write(struct.pack("<I", SMALL))
    with pytest.raises(StoreError, match=r"slot 0 claims 256 bytes \(its capacity is 240\)"):
        read_state(path)


def test_bad_magic(path):
    with open(path, "wb") as f:
        f.write(b"#!/bin/sh\n" + bytes(200))
    with pytest.raises(StoreError, match="not a pidone state file"):
        read_state(path)


def test_header_checksum(path):
    two_states(path)
    with open(path, "r+b") as f:
        f.seek(50)
        f.write(b"\1")
    with pytest.raises(StoreError, match=r"header is corrupt \(checksum mismatch\)"):
        read_state(path)


def test_file_larger_than_the_cap_is_refused_before_reading(path):
    with open(path, "wb") as f:
        f.truncate(store.MAX_FILE_SIZE + 1)  # sparse
    with pytest.raises(StoreError, match="too large"):
        read_state(path)


# --- versions (C7) ----------------------------------------------------------------------


def test_newer_major_is_refused(path):
    two_states(path)
    rewrite_header(path, major=LAYOUT_MAJOR + 1)
    message = f"layout version {LAYOUT_MAJOR + 1}.0 is not supported by this pidone (it reads 1.x)"
    with pytest.raises(StoreError, match=message.replace(".", r"\.").replace("(", r"\(").replace(")", r"\)")):
        read_state(path)
    with pytest.raises(StoreError, match="is not supported"):
        StateFile.open_existing(path)


def test_newer_minor_is_accepted_and_reported(path):
    first, second = two_states(path)
    rewrite_header(path, minor=LAYOUT_MINOR + 1)
    got = read_state(path)
    assert (got.payload, got.major, got.minor) == (second, LAYOUT_MAJOR, LAYOUT_MINOR + 1)
    with StateFile.open_existing(path) as f:
        f.write(b"written by the older minor")
    got = read_state(path)
    assert (got.payload, got.sequence, got.minor) == (b"written by the older minor", 3, LAYOUT_MINOR)


# --- identity ---------------------------------------------------------------------------


def test_other_boot_is_refused_unless_not_expected(path):
    first, second = two_states(path)
    other = uuid.UUID("12345678-1234-5678-1234-567812345678")
    rewrite_header(path, boot=other.bytes)
    with pytest.raises(StoreError, match=f"another boot \\(boot id {other}; this boot is"):
        read_state(path)
    with pytest.raises(StoreError, match="another boot"):
        StateFile.open_existing(path)
    got = read_state(path, expect_same_boot=False)
    assert (got.payload, got.boot_id) == (second, other)


def test_other_pid_namespace_is_refused_unless_not_expected(path):
    first, second = two_states(path)
    rewrite_header(path, pid_ns=4026531999)
    with pytest.raises(StoreError, match=r"another PID namespace \(pid:\[4026531999\]; this one is"):
        read_state(path)
    got = read_state(path, expect_same_boot=False)
    assert (got.payload, got.pid_ns) == (second, 4026531999)
    with StateFile.open_existing(path, expect_same_boot=False) as f:
        f.write(b"adopted")
    got = read_state(path)  # the header now carries this namespace
    assert got.payload == b"adopted" and got.pid_ns == store.current_identity()[1]


# --- what is at the path ----------------------------------------------------------------


def test_symlink_is_refused(path, tmp_path):
    target = str(tmp_path / "real")
    two_states(target)
    os.symlink(target, path)
    with pytest.raises(StoreError, match="refusing a symlink"):
        read_state(path)
    with pytest.raises(StoreError, match="refusing a symlink"):
        StateFile.create(path)
    with pytest.raises(StoreError, match="refusing a symlink"):
        StateFile.open_existing(path)
    assert read_state(target).payload == b"second, newer state"  # untouched


def test_fifo_and_directory_are_refused_without_hanging(path, tmp_path):
    os.mkfifo(path)
    with pytest.raises(StoreError, match="not a regular file"):
        read_state(path)
    with pytest.raises(StoreError, match="not a regular file"):
        StateFile.create(path)
    directory = str(tmp_path / "dir")
    os.mkdir(directory)
    with pytest.raises(StoreError, match="dir"):
        read_state(directory)
    with pytest.raises(StoreError, match="dir"):
        StateFile.create(directory)


def test_hard_linked_file_is_refused_for_writing(path, tmp_path):
    two_states(path)
    os.link(path, str(tmp_path / "other-name"))
    with pytest.raises(StoreError, match="hard links"):
        StateFile.create(path)


@as_root
def test_file_owned_by_someone_else_is_refused(path):
    two_states(path)
    os.chown(path, 1000, 1000)
    with pytest.raises(StoreError, match=r"owned by uid 1000, not by us"):
        StateFile.create(path)
    with pytest.raises(StoreError, match=r"owned by uid 1000"):
        StateFile.open_existing(path)
    with pytest.raises(StoreError, match=r"owned by uid 1000"):
        read_state(path)


def test_file_writable_by_others_is_not_read(path):
    two_states(path)
    os.chmod(path, 0o666)
    with pytest.raises(StoreError, match="writable by others"):
        read_state(path)
    StateFile.create(path, capacity=SMALL).close()  # the writer takes it back to 0600
    assert os.stat(path).st_mode & 0o777 == 0o600


# --- repair and re-open -----------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, HEADER_SIZE, HEADER_SIZE + 20, HEADER_SIZE + SMALL + 5])
def test_file_truncated_between_writes_is_repaired(path, size):
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"one")
        f.write(b"two")
        os.truncate(path, size)
        f.write(b"three")
        assert os.stat(path).st_size == HEADER_SIZE + 2 * SMALL
        got = read_state(path)
        assert (got.payload, got.sequence) == (b"three", 3)
        f.write(b"four")
        assert read_state(path).payload == b"four"


def test_header_overwritten_between_writes_is_repaired(path):
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"one")
        with open(path, "r+b") as g:
            g.write(b"garbage!" * 8)
        with pytest.raises(StoreError):
            read_state(path)
        f.write(b"two")
        assert read_state(path).payload == b"two"


def test_open_existing_continues_the_sequence(path):
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"one")
        f.write(b"two")
        f.write(b"three")  # in slot 0
    with StateFile.open_existing(path) as f:
        assert (f.sequence, f.capacity) == (3, SMALL)
        f.write(b"four")  # must go to slot 1, keeping "three"
    got = read_state(path)
    assert (got.payload, got.sequence, got.slot) == (b"four", 4, 1)


def test_open_existing_without_a_valid_slot(path):
    StateFile.create(path, capacity=SMALL).close()
    with StateFile.open_existing(path) as f:
        assert f.sequence == 0
        f.write(b"first")
    assert read_state(path).payload == b"first"


def test_closed_file_refuses_writes(path):
    f = StateFile.create(path, capacity=SMALL)
    fd = f.fd
    f.close()
    f.close()
    with pytest.raises(StoreError, match="closed"):
        f.write(b"x")
    with pytest.raises(OSError):
        os.fstat(fd)


def test_descriptor_is_cloexec(path):
    with StateFile.create(path, capacity=SMALL) as f:
        assert not os.get_inheritable(f.fd)


def test_full_disk_at_allocation_is_a_store_error(path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(StoreError, match="unable to allocate .* No space left on device"):
        StateFile.create(path, capacity=SMALL)


def test_full_disk_when_growing_keeps_the_old_state(path, monkeypatch):
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"kept")
        monkeypatch.setattr(os, "posix_fallocate", lambda *a: (_ for _ in ()).throw(OSError(28, "No space")))
        with pytest.raises(StoreError, match="unable to allocate"):
            f.write(b"G" * 1000)
        assert f.capacity == SMALL
        monkeypatch.undo()
        f.write(b"later")
    assert read_state(path).payload == b"later"


def test_file_shrinking_while_read_is_a_store_error(path, monkeypatch):
    """The size is checked, then the file shrinks before the payload is read."""
    two_states(path)
    real_pread = os.pread

    def pread_after_truncation(fd, n, offset):
        if offset == slot_offset(SMALL, 1) + SLOT_HEADER_SIZE:  # the newest payload
            os.truncate(path, HEADER_SIZE)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(os, "pread", pread_after_truncation)
    with pytest.raises(StoreError, match="shrank while being read"):
        read_state(path)


def test_reader_racing_a_writer_reads_again(path, monkeypatch):
    """Two writes land between the reader's slot headers and its payloads:
    neither slot checks out, so it reads again and finds the newest."""
    with StateFile.create(path, capacity=SMALL) as f:
        f.write(b"one")
        f.write(b"two")
        real_pread = os.pread
        raced = []

        def pread_racing(fd, n, offset):
            if not raced and offset == slot_offset(SMALL, 1) + SLOT_HEADER_SIZE:
                raced.append(True)
                f.write(b"three, longer")
                f.write(b"four, longest!")
            return real_pread(fd, n, offset)

        monkeypatch.setattr(os, "pread", pread_racing)
        got = read_state(path)
    assert raced and (got.payload, got.sequence) == (b"four, longest!", 4)


# --- speed ------------------------------------------------------------------------------


def test_one_mebibyte_write_and_read_is_fast(path):
    payload = os.urandom(1 << 20)
    with StateFile.create(path) as f:
        f.write(payload)  # grows once
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            f.write(payload)
            got = read_state(path)
            best = min(best, time.perf_counter() - start)
    assert got.payload == payload
    assert best < 0.050, f"write+read of 1 MiB took {best * 1000:.1f} ms"

"""The unit log file (SPEC §2 `[log]`, RELIABILITY B6/B7): size rotation
within the cap, nothing at the path followed or trusted, and a full or
missing disk costing counted lines and rate-limited warnings, never an
exception."""

from __future__ import annotations

import errno
import os
import random
import re
import stat
import subprocess

import pytest

from pidone.logfile import LogFile

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount, mknod)")


class Clock:
    """A fake monotonic clock that moves only when told, and counts reads."""

    def __init__(self, now: float = 1000.0):
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def make(clock, warnings):
    """`make(path, max_bytes, backups)`: a LogFile on the fake clock, closed at teardown."""
    made = []

    def factory(path, max_bytes=100, backups=3, **kwargs):
        log = LogFile(str(path), max_bytes, backups, warn=warnings.append, clock=clock, **kwargs)
        made.append(log)
        return log

    yield factory
    for log in made:
        log.close()


def line(number: int, width: int = 10) -> bytes:
    """A numbered line of exactly `width` bytes, newline included."""
    return f"{number:0{width - 1}d}\n".encode()


def reported_drops(messages: list[str]) -> int:
    """The sum of the line counts the warnings announced."""
    total = 0
    for message in messages:
        found = re.search(r"; (\d+) lines? \(\d+ bytes\) dropped since the last warning$", message)
        assert found, f"warning without a drop count: {message!r}"
        total += int(found.group(1))
    return total


def snapshot(path) -> tuple[bytes, int]:
    """A victim file's content and mode, to prove it was not touched."""
    return path.read_bytes(), stat.S_IMODE(os.lstat(path).st_mode)


# Rotation.


@pytest.mark.parametrize("backups", [0, 1, 3])
def test_rotation_sequence_and_contents(tmp_path, make, backups):
    path = tmp_path / "app.log"
    log = make(path, max_bytes=100, backups=backups)
    lines = [line(n) for n in range(45)]  # 10 lines fill a file exactly
    for data in lines:
        log.write(data)
    chunks = [b"".join(lines[i:i + 10]) for i in range(0, 45, 10)]
    expected = {"app.log": chunks[-1]}
    for number in range(1, backups + 1):
        expected[f"app.log.{number}"] = chunks[-1 - number]
    assert sorted(os.listdir(tmp_path)) == sorted(expected)
    for name, content in expected.items():
        assert (tmp_path / name).read_bytes() == content, name
    assert log.dropped_lines == 0


@pytest.mark.parametrize("backups", [0, 1, 3])
def test_size_cap_holds_over_ten_thousand_writes(tmp_path, make, backups):
    path = tmp_path / "app.log"
    max_bytes = 4096
    log = make(path, max_bytes=max_bytes, backups=backups)
    rng = random.Random(7)
    written = []
    longest = 0
    for number in range(10_000):
        data = f"{number} ".encode() + b"x" * rng.randrange(0, 300) + b"\n"
        longest = max(longest, len(data))
        written.append(data)
        log.write(data)
        if number % 250 == 0:
            total = sum(os.path.getsize(tmp_path / name) for name in os.listdir(tmp_path))
            assert total <= (backups + 1) * max_bytes + longest
    names = ["app.log"] + [f"app.log.{n}" for n in range(1, backups + 1)]
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    for name in names:
        assert os.path.getsize(tmp_path / name) <= max_bytes, name
    # Oldest backup first, the current file last: one unbroken tail of what was written.
    kept = b"".join((tmp_path / name).read_bytes() for name in reversed(names))
    assert kept == b"".join(written)[-len(kept):]
    assert kept.startswith(written[-kept.count(b"\n")])
    assert log.dropped_lines == 0


def test_writes_are_cheap_no_fstat_and_no_clock(tmp_path, make, clock, monkeypatch):
    log = make(tmp_path / "app.log", max_bytes=1 << 20)
    log.write(line(0))  # the first write opens the file
    calls = []
    real_fstat = os.fstat
    monkeypatch.setattr(os, "fstat", lambda fd: calls.append(fd) or real_fstat(fd))
    reads = clock.reads
    for number in range(1, 1001):
        log.write(line(number))
    assert calls == [], "the size is kept in memory, not asked of the kernel per write"
    assert clock.reads == reads, "the healthy path does not read the clock"
    assert os.path.getsize(tmp_path / "app.log") == 1001 * 10


def test_line_larger_than_max_bytes_is_written_whole(tmp_path, make):
    path = tmp_path / "app.log"
    log = make(path, max_bytes=100, backups=3)
    huge = b"h" * 499 + b"\n"
    log.write(huge)  # an empty file takes any write
    assert path.read_bytes() == huge
    assert not (tmp_path / "app.log.1").exists()
    log.write(line(1))  # rotates first: the file is past the cap
    log.write(huge)  # rotates first again, into an empty file
    log.write(line(2))
    assert path.read_bytes() == line(2)
    assert (tmp_path / "app.log.1").read_bytes() == huge
    assert (tmp_path / "app.log.2").read_bytes() == line(1)
    assert (tmp_path / "app.log.3").read_bytes() == huge
    assert log.dropped_lines == 0


def test_new_files_are_created_with_mode_0640(tmp_path, make):
    path = tmp_path / "app.log"
    old_umask = os.umask(0o022)
    try:
        log = make(path, max_bytes=20, backups=1)
        log.write(line(0))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        log.write(line(1))
        log.write(line(2))  # rotated: the new file is created the same way
        assert (tmp_path / "app.log.1").exists()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    finally:
        os.umask(old_umask)


def test_truncation_by_someone_else_does_not_rotate_early(tmp_path, make):
    path = tmp_path / "app.log"
    log = make(path, max_bytes=100, backups=1)
    for number in range(9):
        log.write(line(number))
    os.truncate(path, 0)  # logrotate's copytruncate
    log.write(b"y" * 29 + b"\n")
    assert not (tmp_path / "app.log.1").exists()
    assert path.read_bytes() == b"y" * 29 + b"\n"


# Nothing at the path is followed or trusted.


@pytest.mark.parametrize("dangling", [False, True])
def test_symlink_at_path_is_refused_and_target_untouched(tmp_path, make, clock, warnings, dangling):
    victim = tmp_path / "victim"
    if not dangling:
        victim.write_bytes(b"secret\n")
        os.chmod(victim, 0o600)
        before = snapshot(victim)
    path = tmp_path / "app.log"
    os.symlink(victim, path)
    log = make(path)
    for number in range(5):
        log.write(line(number))
    assert len(warnings) == 1, "one warning, not one per line"
    assert str(path) in warnings[0] and "symlink" in warnings[0] and "refused" in warnings[0]
    assert log.dropped_lines == 5 and log.dropped_bytes == 50
    clock.now += 3600  # a refusal is not retried with time ...
    log.write(line(5))
    log.reopen()  # ... nor by a reload while the link is still there
    log.write(line(6))
    if dangling:
        assert not victim.exists(), "O_CREAT must not create the link's target"
    else:
        assert snapshot(victim) == before
    assert os.path.islink(path)
    assert log.dropped_lines == 7
    os.unlink(path)
    log.reopen()  # the link is gone: a reload lifts the refusal
    log.write(line(7))
    assert path.read_bytes() == line(7)
    assert "writing again" in warnings[-1]
    assert reported_drops(warnings) == log.dropped_lines


def test_symlinks_planted_at_backups_are_replaced_not_followed(tmp_path, make):
    path = tmp_path / "app.log"
    victims = {}
    for number in (1, 2):
        victim = tmp_path / f"victim{number}"
        victim.write_bytes(f"victim {number}\n".encode())
        os.chmod(victim, 0o600)
        victims[victim] = snapshot(victim)
        os.symlink(victim, f"{path}.{number}")
    log = make(path, max_bytes=20, backups=2)
    for number in range(6):  # two lines per file: two rotations
        log.write(line(number))
    for victim, before in victims.items():
        assert snapshot(victim) == before, victim
    assert not os.path.islink(f"{path}.1") and not os.path.islink(f"{path}.2")
    assert (tmp_path / "app.log.2").read_bytes() == line(0) + line(1)
    assert (tmp_path / "app.log.1").read_bytes() == line(2) + line(3)
    assert path.read_bytes() == line(4) + line(5)


def test_symlink_planted_at_path_during_rotation_is_removed(tmp_path, make, monkeypatch):
    path = tmp_path / "app.log"
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret\n")
    before = snapshot(victim)
    real_rename = os.rename

    def rename_then_plant(src, dst):
        real_rename(src, dst)
        if dst == f"{path}.1":  # the service races a link in right after the move
            os.symlink(victim, path)

    monkeypatch.setattr(os, "rename", rename_then_plant)
    log = make(path, max_bytes=20, backups=1)
    for number in range(3):
        log.write(line(number))
    assert snapshot(victim) == before
    assert not os.path.islink(path)
    assert path.read_bytes() == line(2)
    assert log.dropped_lines == 0


def test_link_planted_between_unlink_and_create_is_not_opened(tmp_path, make, warnings, monkeypatch):
    path = tmp_path / "app.log"
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret\n")
    before = snapshot(victim)
    real_unlink = os.unlink

    def unlink_then_plant(target):
        try:
            real_unlink(target)
        finally:
            if str(target) == str(path):  # right after the unlink, before the create
                os.symlink(victim, path)

    monkeypatch.setattr(os, "unlink", unlink_then_plant)
    log = make(path, max_bytes=20, backups=1)
    for number in range(3):
        log.write(line(number))  # the third rotates; O_EXCL meets the link
    assert snapshot(victim) == before
    assert log.dropped_lines == 1
    assert len(warnings) == 1 and "File exists" in warnings[0]


def test_hard_link_at_path_is_refused(tmp_path, make, warnings):
    victim = tmp_path / "victim"
    victim.write_bytes(b"secret\n")
    before = snapshot(victim)
    path = tmp_path / "app.log"
    os.link(victim, path)
    log = make(path)
    log.write(line(0))
    assert snapshot(victim) == before
    assert log.dropped_lines == 1
    assert len(warnings) == 1 and "hard links" in warnings[0] and "refused" in warnings[0]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("reader", [False, True])
def test_fifo_at_path_is_refused_without_blocking(tmp_path, make, clock, warnings, reader):
    path = tmp_path / "app.log"
    os.mkfifo(path)
    read_fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK) if reader else None
    try:
        log = make(path)
        for number in range(3):
            log.write(line(number))
        clock.now += 3600
        log.write(line(3))  # not retried with time either
        assert log.dropped_lines == 4
        assert str(path) in warnings[0] and "FIFO" in warnings[0] and "not a regular file" in warnings[0]
        assert len(warnings) == 2  # the first, and one an interval later
        if read_fd is not None:
            assert os.read(read_fd, 100) == b"", "nothing ever reached the FIFO"
    finally:
        if read_fd is not None:
            os.close(read_fd)


@as_root
def test_device_at_path_is_refused(tmp_path, make, warnings):
    path = tmp_path / "app.log"
    try:
        os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null
    except PermissionError:
        pytest.skip("mknod is not permitted here")
    log = make(path)
    log.write(line(0))
    assert log.dropped_lines == 1
    assert len(warnings) == 1 and "character device" in warnings[0]


# Missing directories, external rotation, close.


def test_missing_directory_warns_once_and_recovers_after_interval(tmp_path, make, clock, warnings):
    directory = tmp_path / "missing"
    path = directory / "app.log"
    log = make(path)
    for number in range(100):
        log.write(line(number))  # must not raise
    assert log.dropped_lines == 100
    assert len(warnings) == 1
    assert str(directory) in warnings[0] and "does not exist" in warnings[0]
    assert "does not create it" in warnings[0]
    assert not directory.exists(), "the directory is never created"
    directory.mkdir()
    log.write(line(100))  # retried at most once per interval: not yet
    assert not path.exists()
    clock.now += 60
    log.write(line(101))
    assert path.read_bytes() == line(101)
    assert len(warnings) == 2 and "writing again" in warnings[1]
    assert "100 lines (1000 bytes) dropped since the last warning" in warnings[1]
    assert reported_drops(warnings) == log.dropped_lines == 101


def test_reopen_after_external_move_writes_a_new_file(tmp_path, make):
    path = tmp_path / "app.log"
    log = make(path, max_bytes=1000)
    log.write(line(0))
    os.rename(path, tmp_path / "app.log.old")
    log.write(line(1))  # still the moved file until told
    assert not path.exists()
    log.reopen()
    log.write(line(2))
    assert path.read_bytes() == line(2)
    assert (tmp_path / "app.log.old").read_bytes() == line(0) + line(1)


def test_rotation_after_external_move_leaves_the_moved_file_alone(tmp_path, make):
    path = tmp_path / "app.log"
    log = make(path, max_bytes=20, backups=2)
    log.write(line(0))
    os.rename(path, tmp_path / "app.log.old")
    log.write(line(1))
    log.write(line(2))  # would rotate: the file at the path is no longer ours
    assert (tmp_path / "app.log.old").read_bytes() == line(0) + line(1)
    assert path.read_bytes() == line(2)
    assert not (tmp_path / "app.log.1").exists()


def test_close_releases_the_descriptor_and_ignores_later_writes(tmp_path, make):
    before = set(os.listdir("/proc/self/fd"))
    path = tmp_path / "app.log"
    log = make(path)
    log.write(line(0))
    log.close()
    assert set(os.listdir("/proc/self/fd")) == before
    log.write(line(1))
    assert path.read_bytes() == line(0)
    assert set(os.listdir("/proc/self/fd")) == before
    log.reopen()
    log.write(line(2))
    assert path.read_bytes() == line(0) + line(2)


def test_neither_a_failing_warn_nor_an_unexpected_error_escapes(tmp_path, clock, monkeypatch):
    def broken_warn(message):
        raise RuntimeError("the warning sink is broken")

    log = LogFile(str(tmp_path / "missing" / "app.log"), 100, 1, warn=broken_warn, clock=clock)
    log.write(line(0))
    assert log.dropped_lines == 1
    log = LogFile(str(tmp_path / "app.log"), 100, 1, warn=broken_warn, clock=clock)
    monkeypatch.setattr(os, "write", lambda fd, data: 1 / 0)
    log.write(line(1))
    assert log.dropped_lines == 1
    log.close()


# A full disk (RELIABILITY B7).


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs, unmounted at teardown."""
    directory = tmp_path / "log"
    directory.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)]).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)])


def fill(directory) -> str:
    """Fill the filesystem with a filler file; return its path."""
    filler = os.path.join(directory, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def record(number: int) -> bytes:
    return f"record {number:05d} ".encode() + b"r" * 86 + b"\n"  # 100 bytes


@as_root
def test_full_disk_drops_counts_warns_once_and_resumes(tiny_disk, make, clock, warnings):
    path = tiny_disk / "app.log"
    log = make(path, max_bytes=1 << 20, backups=1)
    log.write(record(0))
    filler = fill(tiny_disk)
    for number in range(1, 201):  # 20 kB: far more than the last page's slack
        log.write(record(number))
    assert log.dropped_lines > 100
    assert log.dropped_bytes >= log.dropped_lines * 100 - 100
    assert len(warnings) == 1, "one warning per interval, not one per line"
    assert str(path) in warnings[0] and "No space left on device (ENOSPC)" in warnings[0]
    silent = log.dropped_lines - reported_drops(warnings)
    clock.now += 61
    for number in range(201, 211):
        log.write(record(number))
    assert len(warnings) == 2, "the next interval brings one more warning"
    assert reported_drops(warnings[1:]) == silent + 1, "it counts the lines dropped in silence"
    os.unlink(filler)
    log.write(record(211))  # no need to wait: space is seen as soon as it is back
    log.write(record(212))
    assert len(warnings) == 3
    assert warnings[2] == (f"log file {path}: writing again; "
                           "9 lines (900 bytes) dropped since the last warning")
    assert reported_drops(warnings) == log.dropped_lines
    content = path.read_bytes()
    assert content.endswith(record(211) + record(212))
    for kept in content.splitlines(keepends=True)[:-2]:
        # Whole records, or one cut short by the full disk and then ended.
        assert re.fullmatch(rb"record \d{5} r*\n", kept), kept


@as_root
def test_full_disk_freed_by_deleting_the_log_itself_recovers(tiny_disk, make, clock, warnings):
    path = tiny_disk / "app.log"
    log = make(path, max_bytes=1 << 20, backups=1)
    number = 0
    while not log.dropped_lines:  # the log itself fills the disk
        log.write(record(number))
        number += 1
        assert number < 2000
    assert len(warnings) == 1
    os.unlink(path)  # the operator frees space; our descriptor still holds it
    log.write(record(number))
    assert not path.exists() and len(warnings) == 1
    clock.now += 60  # an interval later the path is opened again
    log.write(record(number + 1))
    assert path.read_bytes() == record(number + 1)
    assert len(warnings) == 2 and "writing again" in warnings[1]
    assert reported_drops(warnings) == log.dropped_lines

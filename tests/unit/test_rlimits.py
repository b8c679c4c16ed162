"""rlimits.fit: a hard limit above pidone's own is kept when pidone may
raise it, else lowered to the highest allowed (pidone's hard limit, or
fs.nr_open for nofile) with a note naming the key, what was asked and what
was given. Whether pidone may raise is what setrlimit on itself says,
faked here; tests/integration/test_rlimit_clamp.py runs the real thing."""

from __future__ import annotations

import resource

import pytest

from pidone import rlimits

NOFILE, NPROC = resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC
INF = resource.RLIM_INFINITY


class FakeKernel:
    """setrlimit on pidone itself: a hard limit may rise up to `ceiling`
    (0: not at all, no CAP_SYS_RESOURCE)."""

    def __init__(self, monkeypatch, limits: dict[int, tuple[int, int]], ceiling: int | float):
        self.limits = dict(limits)
        self.ceiling = ceiling
        monkeypatch.setattr(resource, "getrlimit", lambda n: self.limits[n])
        monkeypatch.setattr(resource, "setrlimit", self.setrlimit)

    def setrlimit(self, number, pair):
        soft, hard = pair
        old_hard = self.limits[number][1]
        order = rlimits._order
        if order(hard) > order(old_hard) and order(hard) > self.ceiling:
            raise ValueError("not allowed to raise maximum limit")
        self.limits[number] = (soft, hard)


def test_within_the_hard_limit_nothing_changes(monkeypatch):
    FakeKernel(monkeypatch, {NOFILE: (1024, 4096)}, ceiling=0)
    assert rlimits.fit([(NOFILE, "nofile", 2048, 4096)]) == ([(NOFILE, "nofile", 2048, 4096)], [])


def test_without_the_privilege_the_hard_limit_is_the_ceiling(monkeypatch):
    kernel = FakeKernel(monkeypatch, {NOFILE: (1024, 4096)}, ceiling=0)
    fitted, notes = rlimits.fit([(NOFILE, "nofile", 65535, 65535)])
    assert fitted == [(NOFILE, "nofile", 4096, 4096)]
    assert notes == ["[limits] nofile = 65535 is more than pidone may grant here "
                     "(the hard limit is 4096; raising it needs CAP_SYS_RESOURCE); started with 4096"]
    assert kernel.limits[NOFILE] == (1024, 4096)


def test_a_limit_pidone_may_raise_is_raised_and_pidone_keeps_its_own(monkeypatch):
    kernel = FakeKernel(monkeypatch, {NOFILE: (1024, 4096)}, ceiling=1 << 20)
    assert rlimits.fit([(NOFILE, "nofile", 65535, 65535)]) == ([(NOFILE, "nofile", 65535, 65535)], [])
    assert kernel.limits[NOFILE] == (1024, 4096)  # the probe put pidone's own back


def test_nofile_above_nr_open_gets_nr_open(monkeypatch, tmp_path):
    FakeKernel(monkeypatch, {NOFILE: (1024, 4096)}, ceiling=1 << 20)
    nr_open = tmp_path / "nr_open"
    nr_open.write_text(f"{1 << 20}\n")
    monkeypatch.setattr(rlimits, "NR_OPEN", str(nr_open))
    fitted, notes = rlimits.fit([(NOFILE, "nofile", 1024, INF)])
    assert fitted == [(NOFILE, "nofile", 1024, 1 << 20)]
    assert notes == ['[limits] nofile = [1024, "infinity"] is more than pidone may grant here '
                     f"(fs.nr_open is {1 << 20}); started with [1024, {1 << 20}]"]


@pytest.mark.parametrize("asked", [(100, 100), (INF, INF)])
def test_every_rlimit_follows_the_same_rule(monkeypatch, asked):
    FakeKernel(monkeypatch, {NPROC: (50, 64)}, ceiling=0)
    fitted, notes = rlimits.fit([(NPROC, "nproc", *asked)])
    assert fitted == [(NPROC, "nproc", 64, 64)]
    assert len(notes) == 1 and notes[0].startswith("[limits] nproc = ") and notes[0].endswith("started with 64")

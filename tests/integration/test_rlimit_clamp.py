"""A [limits] value above what the container allows (Debian's redis unit
asks nofile = 65535) starts the unit with the highest value allowed, with a
warning naming the unit, the key, the value asked and the value given; a
value pidone may raise is raised."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from pidone_harness import reset_signals

PY = sys.executable
HARD = 4096
SHOW_NOFILE = ["sh", "-c", "grep 'Max open files' /proc/self/limits; exec sleep 600"]


def has_cap_sys_resource() -> bool:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << 24))
    return False


needs_cap = pytest.mark.skipif(not has_cap_sys_resource(),
                               reason="raising a hard limit needs CAP_SYS_RESOURCE, which this test runner lacks "
                                      "(tests/unit/test_rlimits.py covers the decision)")


def low_hard_limit(drop_sys_resource: bool):
    """preexec_fn: what a container gives PID 1: a hard nofile of 4096 and,
    unless privileged, no CAP_SYS_RESOURCE (dropped from the bounding set,
    so root loses it at the exec)."""
    def setup() -> None:
        reset_signals()
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, HARD))
        if drop_sys_resource:
            import prctl

            prctl.capbset_drop(prctl.CAP_SYS_RESOURCE)
    return setup


def start(pidone, tmp_path: Path, nofile, *, drop_sys_resource: bool):
    units = tmp_path / "units"
    units.mkdir()
    (units / "redis.toml").write_text(tomli_w.dumps({"service": {"command": SHOW_NOFILE}, "limits": {"nofile": nofile}}))
    runtime = tmp_path / "run"
    p = pidone(["--units", str(units), "--runtime-dir", str(runtime)], preexec_fn=low_hard_limit(drop_sys_resource))
    p.runtime = runtime
    return p.wait_ready()


def limits_line(p) -> list[str]:
    """The unit's 'Max open files' soft and hard, as it saw them."""
    words = p.expect_line(r"redis \| Max open files").decode().split()
    return words[-3:-1]


def status(p) -> dict:
    out = subprocess.run([PY, "-m", "pidone", "status", "redis", "--json", "--runtime-dir", str(p.runtime)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["units"][0]


def test_nofile_above_the_hard_limit_without_cap_sys_resource_is_clamped_with_a_warning(pidone, tmp_path):
    p = start(pidone, tmp_path, 65535, drop_sys_resource=True)
    assert limits_line(p) == [str(HARD), str(HARD)]
    warning = p.find_line(r"unit redis: warning: \[limits\] nofile = 65535 is more than pidone may grant here").decode()
    assert f"started with {HARD}" in warning and "CAP_SYS_RESOURCE" in warning
    unit = status(p)
    assert unit["state"] == "running"
    assert len(unit["warnings"]) == 1 and f"started with {HARD}" in unit["warnings"][0]
    text = subprocess.run([PY, "-m", "pidone", "status", "--runtime-dir", str(p.runtime)],
                          capture_output=True, text=True, timeout=30).stdout
    assert f"redis: warning: [limits] nofile = 65535" in text


def test_a_soft_limit_below_the_clamped_hard_one_is_kept(pidone, tmp_path):
    p = start(pidone, tmp_path, [2048, 65535], drop_sys_resource=True)
    assert limits_line(p) == ["2048", str(HARD)]
    assert b"started with [2048, 4096]" in p.find_line(r"unit redis: warning")


@needs_cap
def test_nofile_pidone_may_raise_is_raised_without_a_warning(pidone, tmp_path):
    p = start(pidone, tmp_path, 65535, drop_sys_resource=False)
    assert limits_line(p) == ["65535", "65535"]
    assert status(p)["warnings"] == []
    assert p.count_lines("warning") == 0


@needs_cap
def test_nofile_above_fs_nr_open_is_clamped_to_it(pidone, tmp_path):
    nr_open = int(Path("/proc/sys/fs/nr_open").read_text())
    p = start(pidone, tmp_path, "infinity", drop_sys_resource=False)
    assert limits_line(p) == [str(nr_open), str(nr_open)]
    warning = p.find_line(r"unit redis: warning: \[limits\] nofile").decode()
    assert f"fs.nr_open is {nr_open}" in warning and f"started with {nr_open}" in warning

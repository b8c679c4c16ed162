"""Descriptors pidone inherited (a container runtime or a shell may leave
one open) reach no unit, before or after a re-exec (SPEC §3); the main
command of tini mode gets them, as tini passes them on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomli_w

from pidone_harness import wait_for

PY = sys.executable

# Writes "PID fd fd ..." (its open fds) to argv[1] once, then waits.
LISTER = """
import os, sys, time
def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False  # the directory listdir itself opened, closed by now
fds = [fd for fd in sorted(map(int, os.listdir('/proc/self/fd'))) if is_open(fd)]
with open(sys.argv[1] + '.tmp', 'w') as f:
    f.write(' '.join(map(str, [os.getpid(), *fds])))
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
time.sleep(600)
"""


def lister_unit(path: Path) -> dict:
    return {"service": {"command": [PY, "-c", LISTER, str(path)]}}


def read_listing(path: Path, not_pid: int | None = None) -> tuple[int, list[int]]:
    """(pid, fds) the lister wrote, waiting for a run other than `not_pid`."""
    def ready():
        try:
            words = [int(w) for w in path.read_text().split()]
        except (OSError, ValueError):
            return None
        return words if words and words[0] != not_pid else None

    words = wait_for(ready, 20, f"the lister to write {path}")
    return words[0], words[1:]


def cli(runtime: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "pidone", *args, "--runtime-dir", str(runtime)],
                          capture_output=True, text=True, timeout=60)


def start(pidone, tmp_path: Path, extra: list[str], pass_fds: tuple[int, ...]):
    units = tmp_path / "units"
    units.mkdir()
    (units / "lister.toml").write_text(tomli_w.dumps(lister_unit(tmp_path / "listing")))
    runtime = tmp_path / "run"
    p = pidone(["--units", str(units), "--runtime-dir", str(runtime), *extra], pass_fds=pass_fds)
    p.wait_ready()
    return p, runtime


def test_an_inherited_fd_reaches_no_unit_before_or_after_a_reexec(pidone, tmp_path):
    extra = os.open(os.devnull, os.O_RDONLY)  # inheritable: what a runtime might leave
    try:
        p, runtime = start(pidone, tmp_path, [], (extra,))
        assert str(extra) in os.listdir(f"/proc/{p.pid1}/fd"), "the test needs pidone to inherit the fd"
        pid, fds = read_listing(tmp_path / "listing")
        assert fds == [0, 1, 2], p.output()
        out = cli(runtime, "reexec")
        assert out.returncode == 0, out.stdout + out.stderr
        out = cli(runtime, "restart", "lister")
        assert out.returncode == 0, out.stdout + out.stderr
        _, fds = read_listing(tmp_path / "listing", not_pid=pid)
        assert fds == [0, 1, 2], p.output()
    finally:
        os.close(extra)


def test_tini_mode_passes_inherited_fds_to_the_main_command_only(pidone, tmp_path):
    extra = os.open(os.devnull, os.O_RDONLY)
    try:
        main = "import os; print('main', os.path.exists('/proc/self/fd/%d'), flush=True); import time; time.sleep(600)" % extra
        p, _ = start(pidone, tmp_path, ["--", PY, "-c", main], (extra,))
        p.expect_line(r"^main True$")
        _, fds = read_listing(tmp_path / "listing")
        assert fds == [0, 1, 2], p.output()
    finally:
        os.close(extra)

"""The state in a sealed memfd (SPEC §7): nobody can truncate it, the same
memory survives `reexec`, and a re-exec that could lose a service is refused
with its reason, leaving PID 1, every service and `status` as they were.
Every broken program here is a copy of the installed code (or a file bind-
mounted over the interpreter inside pidone's own mount namespace)."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
from pathlib import Path

import pytest
import tomli_w
from test_reexec import (
    CANARY, PY, Installed, assert_canary_intact, cli, memfd_path, pids, reexec, sleeper, start, start_time,
    status,
)


def snapshot(p) -> tuple:
    """PID 1's identity, every service's PID, and what `status` says of them."""
    units = {u["unit"]: (u["pid"], u["state"]) for u in status(p)["units"]}
    return start_time(p.pid1), units


def refused(p, env=None, *, expect: str) -> str:
    before, execs, refusals = snapshot(p), p.count_lines(r"re-executing|re-executed as"), p.count_lines("re-exec refused")
    out = cli(p, "reexec", env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert expect in out.stderr and "nothing changed" in out.stderr, out.stderr
    p.wait_count(r"re-exec refused: ", refusals + 1)
    assert p.count_lines(r"re-executing|re-executed as") == execs
    assert snapshot(p) == before, "PID 1 or a service changed"
    return out.stderr


def test_the_memfd_is_sealed_and_nobody_can_truncate_it(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    before = snapshot(p)
    path = memfd_path(p)
    fd = os.open(path, os.O_RDONLY)  # from outside, as root
    try:
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_SHRINK
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    with pytest.raises(OSError) as info:
        os.truncate(path, 0)
    assert info.value.errno == errno.EPERM
    link = str(p.runtime / "private" / "state")
    out = p.run_inside(["truncate", "-s", "0", link], text=True)  # through `state`, where it resolves
    assert out.returncode != 0 and "Operation not permitted" in out.stderr, out.stderr
    assert os.stat(path).st_size == size
    assert snapshot(p) == before
    assert cli(p, "status", "--offline").returncode == 0
    assert oct(os.stat(p.runtime / "private").st_mode & 0o777) == "0o700", "as private as the socket"
    assert_canary_intact(p)


def test_reexec_keeps_the_same_memory(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    ino = os.stat(memfd_path(p)).st_ino
    for _ in range(2):
        reexec(p)
        p.find_line(r"re-executed as pidone")
        assert os.stat(memfd_path(p)).st_ino == ino
    assert cli(p, "status", "--offline").returncode == 0
    assert_canary_intact(p)


@pytest.mark.parametrize("module, breakage, reason", [
    ("cli/importcmd.py", "syntax error", "pidone.cli.importcmd: SyntaxError"),
    ("importers/procfile.py", "missing module", "ModuleNotFoundError: No module named 'pidone.no_such_module'"),
    ("loader/schema.py", "missing module", "pidone.loader: ModuleNotFoundError"),
])
def test_a_broken_module_anywhere_is_refused(pidone, tmp_path, module, breakage, reason):
    """Modules the running init never imports count too: the selftest imports
    every module of the package."""
    installed = Installed(tmp_path)
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, env=installed.env())

    def damage(copy: Path) -> None:
        target = copy / module
        if breakage == "syntax error":
            target.write_text(target.read_text() + "\ndef broken(:\n")
        else:
            target.write_text(target.read_text() + "\nimport pidone.no_such_module\n")

    installed.install(tmp_path, damage)
    said = refused(p, installed.env(), expect="the installed pidone failed its selftest")
    assert reason in said
    assert_canary_intact(p)


def test_an_empty_entry_point_is_refused(pidone, tmp_path):
    """pidone started from a script (as a console script is): emptied by a
    botched upgrade, it would run and do nothing; the selftest runs that
    very script and gets no answer."""
    entry = tmp_path / "entry" / "pidone-entry"
    entry.parent.mkdir()
    entry.write_text("import sys\nfrom pidone.cli import main\nsys.exit(main())\n")
    directory = tmp_path / "units"
    directory.mkdir()
    for name, unit in {"web": sleeper(), "canary": CANARY}.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    p = pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run")], entry=[str(entry)])
    p.runtime = tmp_path / "run"
    p.wait_ready()
    p.find_line(r"unit web: started")
    reexec(p)  # the script as it is works
    p.find_line(r"re-executed as pidone")
    entry.write_text("")
    refused(p, expect="the selftest ended without answering")
    entry.write_text("import sys\nfrom pidone.cli import main\nsys.exit(main())\n")
    reexec(p)
    assert p.count_lines(r"re-executed as pidone") == 2
    assert_canary_intact(p)


def test_a_state_that_cannot_be_written_whole_is_refused(pidone, tmp_path):
    """The memfd must grow for a new unit with a large environment and
    cannot (RLIMIT_FSIZE on PID 1 stands for a memory cgroup's limit): the
    last state stays whole, the re-exec is refused until the state can be
    written, and nothing is lost."""
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    hard = resource.prlimit(p.pid1, resource.RLIMIT_FSIZE)[1]
    resource.prlimit(p.pid1, resource.RLIMIT_FSIZE, (1 << 17, hard))
    big = {"service": {"command": ["sleep", "600"], "environment": {"BIG": "x" * 100_000}}}
    (tmp_path / "units" / "big.toml").write_text(tomli_w.dumps(big))
    out = cli(p, "reload")
    assert out.returncode == 0, out.stderr + p.output()[-2000:]
    p.find_line(r"unit big: started")
    p.find_line(r"cannot update the state: unable to allocate \d+ bytes for the state: File too large")
    refused(p, expect="the state cannot be written whole: unable to allocate")
    out = cli(p, "status", "--offline", "--json")  # the last state written is still whole
    assert out.returncode == 0 and "big" not in {u["unit"] for u in json.loads(out.stdout)["units"]}
    resource.prlimit(p.pid1, resource.RLIMIT_FSIZE, (hard, hard))
    before = pids(p)
    reexec(p)
    p.find_line(r"re-executed as pidone")
    assert pids(p) == before and "big" in before
    assert_canary_intact(p)


def test_a_state_read_back_without_every_unit_and_process_is_refused(pidone, tmp_path):
    """The new code reads the state but misses a unit (a bug in it): the
    re-exec would lose that service, so it is refused, naming it."""
    installed = Installed(tmp_path)
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, env=installed.env())
    web = pids(p)["web"]

    def forget_web(copy: Path) -> None:
        upgrade = copy / "upgrade.py"
        text = upgrade.read_text().replace(
            '    records = state.get("supervisor", {}).get("machine", {}).get("records", {})\n',
            '    records = state.get("supervisor", {}).get("machine", {}).get("records", {})\n'
            '    records = {k: v for k, v in records.items() if k != "web"}\n', 1)
        assert '!= "web"' in text
        upgrade.write_text(text)

    installed.install(tmp_path, forget_web)
    said = refused(p, installed.env(), expect="the state the new pidone read does not list unit(s) web")
    assert f"process(es) {web}" in said
    assert_canary_intact(p)


def test_held_fds_are_listed_by_role_in_the_state(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": {"service": {"command": [PY, "-c", "import time; time.sleep(600)"]}},
                                 "canary": CANARY})
    reexec(p)
    p.find_line(r"re-executed as pidone")
    from pidone.memstate import open_view

    state = json.loads(open_view(memfd_path(p)).payload)
    fds = state["fds"]
    assert {"state", "control", "notify", "log:canary:stdout", "log:canary:stderr"} <= set(fds), fds
    for role, fd in fds.items():
        assert os.path.exists(f"/proc/{p.pid1}/fd/{fd}"), role
    assert os.stat(memfd_path(p)).st_ino == os.stat(f"/proc/{p.pid1}/fd/{fds['state']}").st_ino

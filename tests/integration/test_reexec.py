"""Live upgrade as PID 1: `pidone reexec` keeps every service (same PIDs,
same log pipes, same sockets), finishes what was half done at the original
deadlines, credits exits that happen during the exec, runs genuinely new
code, refuses a broken one, and never runs two instances of a unit."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import tomli_w

from pidone_harness import ROOT, proc_status, wait_for

PY = sys.executable
CANARY = {"service": {"command": [PY, "-u", "-c",
                                  "import time\nn = 0\nwhile True:\n    n += 1\n    print('beat', n)\n    time.sleep(0.05)"]}}


class Installed:
    """A pidone package on PYTHONPATH that a test can swap for another
    version between start and reexec, as `pip install` would."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "site"
        self.root.mkdir()
        self.link = self.root / "pidone"
        self.link.symlink_to(ROOT / "src" / "pidone")

    def install(self, tmp_path: Path, edit) -> None:
        copy = tmp_path / f"copy-{random.randrange(1 << 30)}" / "pidone"
        shutil.copytree(ROOT / "src" / "pidone", copy, ignore=shutil.ignore_patterns("__pycache__"))
        edit(copy)
        tmp = self.root / "pidone.new"
        tmp.symlink_to(copy)
        tmp.rename(self.link)

    def env(self) -> dict:
        return {**os.environ, "PYTHONPATH": str(self.root)}


def start(pidone, tmp_path: Path, units: dict[str, dict], *, env=None, **kwargs):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    p = pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run")], env=env, **kwargs)
    p.runtime = tmp_path / "run"
    p.wait_ready()
    wait_for((tmp_path / "run" / "private" / "control.sock").exists, 15, "the control socket")
    wait_for((tmp_path / "run" / "private" / "state").is_symlink, 15, "the state link (made right after)")
    return p


def cli(p, *args: str, env=None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def status(p, env=None) -> dict:
    out = cli(p, "status", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def pids(p) -> dict[str, int]:
    return {u["unit"]: u["pid"] for u in status(p)["units"] if u["pid"]}


def reexec(p, env=None) -> subprocess.CompletedProcess:
    out = cli(p, "reexec", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def assert_canary_intact(p) -> None:
    beats = [int(line.split()[-1]) for line in list(p.stdout) if line.startswith(b"canary | beat ")]
    assert beats == list(range(1, len(beats) + 1)), "canary lines are missing"


def sleeper(i: int = 0) -> dict:
    return {"service": {"command": ["sleep", "600"]}}


def test_reexec_with_a_hundred_units_keeps_every_pid_and_every_line(pidone, tmp_path):
    units = {f"svc{i:03}": sleeper(i) for i in range(100)}
    units["canary"] = CANARY
    p = start(pidone, tmp_path, units, timeout=120)
    p.wait_count(r"unit svc\d+: started", 100)
    p.wait_count(r"^canary \| beat", 5)
    before = pids(p)
    fds = p.settled_fd_count()
    reexec(p)
    p.find_line(r"re-executed as pidone")
    after = pids(p)
    assert after == before
    p.wait_count(r"^canary \| beat", max(int(l.split()[-1]) for l in p.stdout if l.startswith(b"canary | beat")) + 5)
    assert_canary_intact(p)
    assert abs(p.settled_fd_count() - fds) <= 2
    assert p.count_lines(r"unit \S+: started") == 101, "nothing may be started twice"


def test_units_mid_start_mid_stop_and_in_backoff_keep_their_deadlines(pidone, tmp_path):
    flag = tmp_path / "ready-flag"
    units = {
        "canary": CANARY,
        # Ready only once the flag exists (the test makes it after the exec).
        "slow": {"service": {"command": ["sleep", "600"]}, "ready": {"path": str(flag), "interval": "50ms"}},
        # Ignores SIGTERM: killed at its stop timeout, counted from the stop.
        "stubborn": {"service": {"command": ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]},
                     "stop": {"timeout": "3s"}},
        # Crash-loops with a long backoff: the restart must come at the original deadline.
        "flaky": {"service": {"command": ["sh", "-c", "echo try; exit 1"]},
                  "restart": {"delay": "2s", "max_retries": 0}},
    }
    p = start(pidone, tmp_path, units)
    p.find_line(r"unit flaky: exited with status 1; restarting in 2s")
    backoff_seen = time.monotonic()
    assert cli(p, "stop", "stubborn").returncode == 0
    p.find_line(r"unit stubborn: stopping")
    stop_sent = time.monotonic()
    slow_pid = pids(p)["slow"]
    reexec(p)
    p.find_line(r"re-executed as pidone")
    flag.touch()
    p.find_line(r"unit slow: ready")
    assert pids(p)["slow"] == slow_pid and p.count_lines(r"unit slow: started") == 1
    p.find_line(r"unit stubborn: did not stop within 3s", timeout=10)
    killed_after = time.monotonic() - stop_sent
    assert 2.0 <= killed_after <= 4.5, f"SIGKILL {killed_after:.1f}s after the stop (timeout 3s)"
    p.wait_count(r"unit flaky: started", 2, timeout=10)
    restarted_after = time.monotonic() - backoff_seen
    assert 1.0 <= restarted_after <= 3.5, f"restart {restarted_after:.1f}s after the 2s backoff began"
    assert_canary_intact(p)


def test_an_exit_during_the_exec_is_credited_to_its_unit(pidone, tmp_path):
    # Exits when told, and the test tells it right before reexec: with luck
    # inside the gap, and in any case its exit must be seen exactly once.
    trigger = tmp_path / "die"
    units = {"mayfly": {"service": {"command": ["sh", "-c", f"while [ ! -e {trigger} ]; do sleep 0.01; done; exit 3"]},
                        "restart": {"policy": "no"}},
             "canary": CANARY}
    p = start(pidone, tmp_path, units)
    p.find_line(r"unit mayfly: started")
    trigger.touch()
    reexec(p)
    p.find_line(r"unit mayfly: failed: exited with status 3")
    assert p.count_lines(r"unit mayfly: failed") == 1
    assert [u for u in status(p)["units"] if u["unit"] == "mayfly"][0]["state"] == "failed"


def test_reexec_runs_genuinely_new_code(pidone, tmp_path):
    installed = Installed(tmp_path)
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, env=installed.env())
    before = pids(p)
    assert status(p)["pidone"]["version"] == "0.1.0"

    def bump(copy: Path) -> None:
        init = copy / "__init__.py"
        init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.1-test"'))

    installed.install(tmp_path, bump)
    out = reexec(p, env=installed.env())
    assert "0.1.1-test" in out.stdout
    assert status(p)["pidone"]["version"] == "0.1.1-test"
    assert pids(p) == before
    assert_canary_intact(p)


@pytest.mark.parametrize("breakage", ["syntax error", "import error"])
def test_a_broken_new_version_is_refused_and_nothing_changes(pidone, tmp_path, breakage):
    installed = Installed(tmp_path)
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, env=installed.env())
    before = pids(p)

    def damage(copy: Path) -> None:
        target = copy / "supervisor.py"
        if breakage == "syntax error":
            target.write_text(target.read_text() + "\ndef broken(:\n")
        else:
            target.write_text("import pidone.no_such_module\n" + target.read_text())

    installed.install(tmp_path, damage)
    out = cli(p, "reexec", env=installed.env())
    assert out.returncode == 1
    assert "selftest" in out.stderr and "nothing changed" in out.stderr
    assert p.count_lines(r"re-executed as") == 0
    assert pids(p) == before and status(p)["pidone"]["version"] == "0.1.0"
    assert_canary_intact(p)


def start_time(pid: int) -> int:
    """Field 22 of /proc/PID/stat: unchanged across an exec, new for a new process."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def unexecutable(p, tmp_path: Path, how: str) -> None:
    """Make the interpreter pidone would execv (`sys.executable`, the same
    for the selftest) unusable, as a botched upgrade would leave it: a copy
    without its execute bit, or an executable file that is not a program.
    It is mounted over the interpreter inside pidone's own mount namespace,
    so the host and the shared venv are never touched."""
    bad = tmp_path / f"python-{how.replace(' ', '-')}"
    if how == "no execute bit":
        shutil.copyfile(os.path.realpath(PY), bad)
        bad.chmod(0o644)
    else:
        bad.write_bytes({"not a program": b"\x00not a program\n", "empty": b"",
                         "a script whose interpreter is missing": b"#!/nonexistent/python3\n"}[how])
        bad.chmod(0o755)
    out = p.run_inside(["sh", "-c", f"mount --make-rprivate / && mount --bind '{bad}' '{PY}'"])
    assert out.returncode == 0, out.stderr
    assert os.access(PY, os.X_OK) and subprocess.run([PY, "-c", "pass"]).returncode == 0, "the mount leaked"


def executable_again(p) -> None:
    """Undo `unexecutable` (quietly: it runs in `finally`, maybe before the
    mount was made; the reexec that follows shows whether it worked)."""
    p.run_inside(["umount", PY])


def bump_version(copy: Path) -> None:
    init = copy / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "0.1.0"', '__version__ = "0.1.1-test"'))


# What the refusal says, by how the program to exec was broken.
REASONS = {"no execute bit": "not executable", "not a program": "Exec format error", "empty": "the file is empty",
           "a script whose interpreter is missing": "its interpreter /nonexistent/python3 is missing"}
# What a failed execv says.
EXEC_REASONS = {"no execute bit": "Permission denied", "not a program": "Exec format error"}


@pytest.mark.parametrize("how", list(REASONS))
def test_a_new_version_that_is_not_executable_is_refused_and_nothing_changes(pidone, tmp_path, how):
    """The upgrade left the interpreter unusable: the selftest cannot even
    be run, so pidone refuses before anything is blocked or written."""
    installed = Installed(tmp_path)
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, env=installed.env())
    before, born, fds = pids(p), start_time(p.pid1), p.settled_fd_count()
    installed.install(tmp_path, bump_version)
    unexecutable(p, tmp_path, how)
    try:
        out = cli(p, "reexec", env=installed.env())
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"cannot run the selftest: {PY}: {REASONS[how]}; nothing changed" in out.stderr, out.stderr
        assert "try: `pidone selftest` runs the installed pidone's checks" in out.stderr
        p.find_line(rf"re-exec refused: cannot run the selftest: .*: {re.escape(REASONS[how])}")
        assert p.count_lines(r"re-executing|re-executed as") == 0
        assert start_time(p.pid1) == born and pids(p) == before
        assert abs(p.settled_fd_count() - fds) <= 2
        assert status(p)["pidone"]["version"] == "0.1.0"
    finally:
        executable_again(p)
    out = reexec(p, env=installed.env())  # once the interpreter is back, the upgrade goes through
    assert "0.1.1-test" in out.stdout and status(p)["pidone"]["version"] == "0.1.1-test"
    assert pids(p) == before and start_time(p.pid1) == born
    assert_canary_intact(p)


@pytest.mark.parametrize("how", list(EXEC_REASONS))
def test_an_interpreter_broken_after_the_selftest_fails_the_execv_and_pidone_carries_on(pidone, tmp_path, how):
    """The selftest passed, then the interpreter stopped being executable
    before the execv (a package manager still at work): execv fails, and
    pidone unblocks its signals, reports it and carries on as before."""
    installed = Installed(tmp_path)
    gate = tmp_path / "gate"

    def pause_the_selftest(copy: Path) -> None:
        upgrade = copy / "upgrade.py"
        text = upgrade.read_text().replace(
            '    os.environ.pop(ENV_SELFTEST, None)\n',
            '    os.environ.pop(ENV_SELFTEST, None)\n'
            f'    open({str(gate) + ".running"!r}, "w").close()\n'
            f'    while not os.path.exists({str(gate) + ".go"!r}):\n'
            '        import time; time.sleep(0.01)\n', 1)
        assert "gate.go" in text
        upgrade.write_text(text)

    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, env=installed.env())
    before, born, fds = pids(p), start_time(p.pid1), p.settled_fd_count()
    mask = proc_status(p.pid1)["SigBlk"]
    installed.install(tmp_path, pause_the_selftest)
    caller = subprocess.Popen([PY, "-m", "pidone", "reexec", "--runtime-dir", str(p.runtime)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=installed.env())
    try:
        wait_for(Path(str(gate) + ".running").exists, 30, "the selftest to start")
        unexecutable(p, tmp_path, how)
        Path(str(gate) + ".go").touch()
        stdout, stderr = caller.communicate(timeout=60)
        assert caller.returncode == 1, stdout + stderr
        assert f"execv failed: {PY}: {EXEC_REASONS[how]}; nothing changed" in stderr, stderr
        p.find_line(rf"re-exec failed: .*: {EXEC_REASONS[how]}; carrying on as before")
        assert p.count_lines(r"re-executed as") == 0
        assert start_time(p.pid1) == born and pids(p) == before
        assert proc_status(p.pid1)["SigBlk"] == mask, "the handled signals were left blocked"
        assert abs(p.settled_fd_count() - fds) <= 2
        assert status(p)["pidone"]["version"] == "0.1.0"
    finally:
        caller.kill()
        caller.wait()
        executable_again(p)
    out = reexec(p, env=installed.env())
    assert "0.1.0" in out.stdout and pids(p) == before and start_time(p.pid1) == born
    assert_canary_intact(p)


def test_a_state_the_new_process_cannot_trust_is_rebuilt_from_proc(pidone, tmp_path):
    """The new code finds the state unusable after the exec: it must adopt
    the running services by their PIDONE_UNIT tag, never start them again."""
    installed = Installed(tmp_path)
    p = start(pidone, tmp_path, {f"svc{i}": sleeper(i) for i in range(5)} | {"canary": CANARY}, env=installed.env())
    p.wait_count(r"unit svc\d: started", 5)
    before = pids(p)

    def distrust(copy: Path) -> None:
        daemon = copy / "daemon.py"  # only a resuming pidone runs this; the selftest does not
        text = daemon.read_text().replace(
            '            memory = MemState.adopt(fd)\n',
            '            from pidone.errors import StoreError\n'
            '            raise StoreError("simulated corruption found after the exec")\n')
        assert "simulated" in text
        daemon.write_text(text)

    installed.install(tmp_path, distrust)
    reexec(p, env=installed.env())
    p.find_line(r"the state cannot be trusted \(simulated corruption")
    p.find_line(r"adopted 6 running unit\(s\) from /proc")
    assert pids(p) == before
    assert p.count_lines(r"unit svc\d: started") == 5, "a running unit was started a second time"
    n = max(int(l.split()[-1]) for l in p.stdout if l.startswith(b"canary | beat"))
    p.wait_count(rf"^canary \| beat {n + 3}$", 1)  # its log pipe was adopted too


def memfd_path(p) -> str:
    """/proc/PID/fd/N of PID 1's state, as seen from the host."""
    target = os.readlink(p.runtime / "private" / "state")
    assert re.fullmatch(r"/proc/1/fd/\d+", target), target
    return f"/proc/{p.pid1}/fd/{target.rsplit('/', 1)[1]}"


@pytest.mark.parametrize("damage", ["bit-flipped", "header-garbage", "huge-claim", "slots-garbage"])
def test_a_damaged_state_never_leads_to_two_instances(pidone, tmp_path, damage):
    """Root writes garbage into PID 1's memfd through /proc: a re-exec either
    goes through (the update before it repairs what it can) or is refused;
    never two instances, never a lost service."""
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    before = pids(p)
    rng = random.Random(damage)
    for _ in range(8):
        fd = os.open(memfd_path(p), os.O_RDWR)
        try:
            if damage == "bit-flipped":
                for _ in range(8):
                    i = rng.randrange(1 << 16)
                    os.pwrite(fd, bytes([os.pread(fd, 1, i)[0] ^ (1 << rng.randrange(8))]), i)
            elif damage == "header-garbage":
                os.pwrite(fd, os.urandom(64), 0)
            elif damage == "huge-claim":
                os.pwrite(fd, (1 << 62).to_bytes(8, "little"), 16)  # the slot capacity
            else:
                os.pwrite(fd, os.urandom(4096), 64)
                os.pwrite(fd, os.urandom(4096), 64 + (1 << 16))
        finally:
            os.close(fd)
        out = cli(p, "reexec")
        assert out.returncode in (0, 1), out.stderr
        assert pids(p) == before
    assert p.count_lines(r"unit web: started") == 1
    assert_canary_intact(p)


def test_concurrent_reexec_calls_each_succeed_or_are_told_busy(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    before = pids(p)
    results = []

    def call() -> None:
        results.append(cli(p, "reexec"))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert any(r.returncode == 0 for r in results)
    for r in results:
        assert r.returncode == 0 or "busy" in r.stderr or "already in progress" in r.stderr, r.stderr
    assert pids(p) == before
    assert_canary_intact(p)


@pytest.mark.parametrize("delay_ms", [round(i * 200 / 19) for i in range(20)])  # 20 rounds, 0-200 ms
def test_sigterm_right_after_reexec_is_a_clean_shutdown(pidone, tmp_path, delay_ms):
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    caller = subprocess.Popen([PY, "-m", "pidone", "reexec", "--runtime-dir", str(p.runtime)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        p.find_line(r"re-executing:")
        time.sleep(delay_ms / 1000)  # the delay under test, not synchronisation
        p.kill(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    finally:
        caller.kill()
        caller.wait()
    text = p.stdout_text()
    assert "unit web: stopped" in text and "unit canary: stopped" in text
    assert_canary_intact(p)


def _reexec_many(pidone, tmp_path, count: int) -> None:
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY}, timeout=600)
    before = pids(p)
    reexec(p)
    fds, rss = p.settled_fd_count(), p.rss_kib()
    for _ in range(count):
        reexec(p)
    assert pids(p) == before
    assert abs(p.settled_fd_count() - fds) <= 2
    assert p.rss_kib() - rss < 4096
    assert_canary_intact(p)


def test_ten_reexecs_in_a_row(pidone, tmp_path):
    _reexec_many(pidone, tmp_path, 10)


@pytest.mark.slow
def test_a_hundred_reexecs_in_a_row(pidone, tmp_path):
    _reexec_many(pidone, tmp_path, 100)


def test_status_offline_reads_the_state_while_pid1_is_stopped(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    live = pids(p)
    os.kill(p.pid1, signal.SIGSTOP)  # PID 1 cannot answer at all now
    try:
        out = cli(p, "status", "--offline", "--json", timeout=10)
        inside = p.run_inside([PY, "-m", "pidone", "status", "--offline", "--json", "--runtime-dir",
                               str(p.runtime)], timeout=30, text=True)  # as from `docker exec`
    finally:
        os.kill(p.pid1, signal.SIGCONT)
    for result in (out, inside):
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["offline"] is True
        assert {u["unit"]: u["pid"] for u in data["units"] if u["pid"]} == live


def test_stop_then_offline_status_at_once_shows_it_stopped(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "canary": CANARY})
    for _ in range(3):
        assert cli(p, "stop", "web", "--wait").returncode == 0
        out = cli(p, "status", "web", "--offline", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["units"][0]["state"] == "inactive"
        assert cli(p, "start", "web", "--wait").returncode == 0
        out = cli(p, "status", "web", "--offline", "--json")
        assert json.loads(out.stdout)["units"][0]["state"] == "running"


def test_status_offline_says_plainly_when_pidone_is_gone(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    p.kill(signal.SIGKILL)  # no clean exit: the link is left behind, the memory is gone
    p.wait(timeout=30)
    out = cli(p, "status", "--offline")
    assert out.returncode == 1
    assert "pidone is not running any more (nobody listens on" in out.stderr, out.stderr
    assert "the state lived in PID 1's memory and went with it" in out.stderr

"""RELIABILITY §3.C: faults in pidone itself — signals to PID 1, re-exec in
the middle of transitions, re-exec storms, corrupt and newer state files,
SIGHUP storms, reloads racing reloads and commands. Each case ends with
the G1-G6 checks."""

from __future__ import annotations

import errno
import os
import signal
import struct
import subprocess
import threading
import time
import zlib

import pytest

from conftest import PY
from pidone_harness import wait_for

SLEEP = {"service": {"command": ["sleep", "600"]}}


def test_c1_kill_and_stop_from_inside_do_nothing_then_term_shuts_down_in_order(chaos):
    c = chaos({"a": SLEEP, "b": {**SLEEP, "dependencies": {"requires": ["a"]}}})
    c.inside("kill", "-KILL", "1")
    c.inside("kill", "-STOP", "1")
    c.check()
    c.inside("kill", "-TERM", "1")
    assert c.p.wait(timeout=30) == 0
    text = c.p.stdout_text()
    assert text.index("unit b: stopped") < text.index("unit a: stopping")
    c.check(alive=False)


def test_c2_signal_sweep_from_inside(chaos):
    c = chaos({"a": SLEEP})
    survivable = [s for s in range(1, 32) if s not in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)]
    code = f"import os\nfor s in {survivable}:\n    for _ in range(10):\n        os.kill(1, s)\n"
    assert c.inside("python3", "-c", code).returncode == 0
    c.check()
    assert "KeyboardInterrupt" not in c.p.output()


def test_c4_reexec_in_the_middle_of_transitions(chaos, tmp_path):
    flag = tmp_path / "go"
    units = {}
    for i in range(10):
        units[f"starting{i}"] = {**SLEEP, "ready": {"path": str(flag), "interval": "50ms"}}
        units[f"stopping{i}"] = {"service": {"command": ["sh", "-c", "trap '' TERM; while :; do sleep 0.2; done"]},
                                 "stop": {"timeout": "5s"}}
        units[f"running{i}"] = SLEEP
    units["backoff"] = {"service": {"command": ["sh", "-c", "exit 1"]}, "restart": {"delay": "3s", "max_retries": 0}}
    c = chaos(units, timeout=180)
    c.p.find_line(r"unit backoff: exited with status 1; restarting in 3s")
    running = {n: p for n, p in c.unit_pids().items() if n.startswith(("running", "starting", "stopping"))}
    reply = c.request("stop", timeout=30, units=[f"stopping{i}" for i in range(10)])
    assert reply["ok"]
    stop_sent = time.monotonic()
    out = c.cli("reexec")
    assert out.returncode == 0, out.stderr
    flag.touch()
    wait_for(lambda: all(c.states()[f"starting{i}"] == "running" for i in range(10)), 10, "the starters to finish")
    after = c.unit_pids()
    for name, pid in running.items():
        if name.startswith(("running", "starting")):
            assert after[name] == pid, name
    for i in range(10):
        assert c.p.count_lines(rf"unit starting{i}: started") == 1
    wait_for(lambda: all(c.states()[f"stopping{i}"] == "inactive" for i in range(10)), 10, "the stubborn ones to die")
    assert 4.0 <= time.monotonic() - stop_sent <= 7.0, "SIGKILL at the original deadline (5 s), not a fresh one"
    c.check()


def test_c5_reexec_storm(chaos):
    c = chaos({"a": SLEEP})
    results = []

    def call():
        results.append(c.cli("reexec", timeout=120))

    for _ in range(5):
        assert c.cli("reexec", timeout=120).returncode == 0
    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for r in results:
        assert r.returncode == 0 or "busy" in r.stderr or "in progress" in r.stderr, r.stderr
    c.check()


@pytest.mark.slow
def test_c5_a_hundred_reexecs(chaos):
    c = chaos({"a": SLEEP}, timeout=900)
    rss = c.p.rss_kib()
    for _ in range(100):
        assert c.cli("reexec", timeout=120).returncode == 0
    assert c.p.rss_kib() - rss < 4096
    c.check()


def _memfd(c) -> str:
    """PID 1's state memfd, as the host sees it (/proc/PID/fd/N)."""
    target = os.readlink(c.runtime / "private" / "state")
    return f"/proc/{c.p.pid1}/fd/{target.rsplit('/', 1)[1]}"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "huge"])
def test_c6_corrupt_state_never_gives_two_instances(chaos, damage):
    c = chaos({"a": SLEEP})
    pids = c.unit_pids()
    for round_ in range(10):
        fd = os.open(_memfd(c), os.O_RDWR)
        try:
            if damage == "truncate":
                with pytest.raises(OSError) as info:
                    os.ftruncate(fd, 0)
                assert info.value.errno == errno.EPERM  # sealed: nobody can shrink it
            elif damage == "garbage":
                os.pwrite(fd, os.urandom(256), 0)
            elif damage == "flip":
                at = (round_ * 7919) % 4096
                os.pwrite(fd, bytes([os.pread(fd, 1, at)[0] ^ 0x10]), at)
            else:
                os.pwrite(fd, (1 << 62).to_bytes(8, "little"), 16)  # the slot capacity
        finally:
            os.close(fd)
        c.cli("reexec", timeout=120)
        assert c.unit_pids() == pids
    assert c.p.count_lines(r"unit a: started") == 1
    c.check()


def _rewrite_header(data: bytearray, major: int, minor: int) -> None:
    data[8:12] = struct.pack("<HH", major, minor)
    data[60:64] = struct.pack("<I", zlib.crc32(bytes(data[:60])))


def test_c7_newer_state_minor_loads_major_is_refused(chaos, tmp_path):
    """What the new code faces: the state as the running pidone wrote it,
    in a layout one minor or one major newer than it knows."""
    c = chaos({"a": SLEEP})
    from pidone.memstate import MemState
    from pidone.store import LAYOUT_MAJOR, read_state

    fd = os.open(_memfd(c), os.O_RDONLY)
    try:
        live = os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
    for (major, minor), ok in (((LAYOUT_MAJOR, 7), True), ((LAYOUT_MAJOR + 1, 0), False)):
        data = bytearray(live)
        _rewrite_header(data, major, minor)
        if ok:
            assert read_state(data).minor == minor
        else:
            with pytest.raises(Exception, match=f"layout version {major}.0 is not supported"):
                read_state(data)
        # What `pidone selftest --state` makes of it, in a memfd like PID 1's.
        copy = MemState.create(capacity=(len(data) - 64) // 2)
        try:
            copy._map[:] = data
            out = subprocess.run([PY, "-m", "pidone", "selftest", "--state", f"/proc/{os.getpid()}/fd/{copy.fd}"],
                                 capture_output=True, timeout=60)
        finally:
            copy.close()
        assert out.returncode == (0 if ok else 1), out.stdout
        if not ok:
            assert b"not supported" in out.stdout
    c.check()


def test_c11_sighup_storm_while_editing(chaos):
    c = chaos({f"s{i}": SLEEP for i in range(10)})
    pids = c.unit_pids()
    for n in range(1000):
        if n % 100 == 0:
            c.write("s0", {"service": {"command": ["sleep", str(600 + n)]}})
        c.p.kill(signal.SIGHUP)
        if n % 10 == 0:
            time.sleep(0.01)  # spreading 1,000 signals over about a second
    assert c.request("reload", timeout=60)["ok"]
    reloads = c.p.count_lines(r"^pidone \| reloading")
    assert reloads <= 40, f"{reloads} reloads: not coalesced"
    after = c.unit_pids()
    for i in range(1, 10):
        assert after[f"s{i}"] == pids[f"s{i}"]
    cmdline = open(f"/proc/{c.p.pid1}/task/{c.p.pid1}/children").read()  # noqa: SIM115 - a probe
    assert cmdline is not None
    status = [u for u in c.request("status")["result"]["units"] if u["unit"] == "s0"][0]
    assert status["state"] == "running"
    c.check()


def test_c12_reload_during_reload(chaos):
    c = chaos({f"s{i}": SLEEP for i in range(20)})
    results = []

    def call(i):
        c.write(f"new{i}", SLEEP)
        results.append(c.cli("reload", timeout=120))

    c.p.kill(signal.SIGHUP)
    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    states = c.states()
    assert all(states.get(f"new{i}") in ("running", "waiting", "starting") for i in range(20))
    c.check()


def test_c13_commands_racing_reload_and_reexec_are_never_lost(chaos):
    c = chaos({"x": SLEEP, **{f"s{i}": SLEEP for i in range(20)}})
    assert c.request("stop", timeout=30, units=["x"], wait=True)["ok"]
    c.write("s0", {"service": {"command": ["sleep", "601"]}})
    c.p.kill(signal.SIGHUP)
    reply = c.request("start", timeout=30, units=["x"], wait=True)
    assert reply["ok"] and reply["result"]["units"][0]["state"] == "running"
    assert c.request("stop", timeout=30, units=["x"], wait=True)["ok"]
    reexec = subprocess.Popen([PY, "-m", "pidone", "reexec", "--runtime-dir", str(c.runtime)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        reply = c.request("start", timeout=30, units=["x"], wait=True)
        assert reply["ok"], reply
    finally:
        reexec.communicate(timeout=60)
    assert c.states()["x"] == "running"
    c.check()

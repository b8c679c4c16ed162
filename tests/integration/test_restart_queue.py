"""The global restart queue as PID 1: units crashing together restart one
(--max-restarting 1) at a time, required and critical units first whatever
order they failed in; no restart waits past its bound; a unit stopped while
queued never starts; a reload and a re-exec keep the queue; status, events
and /metrics show it."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import tomli_w

from pidone_harness import wait_for

PY = sys.executable

# First run: ready at once, then wait for the storm file, sleep OFFSET
# (so the test decides the order of the failures) and exit 1. A restart:
# wait for HOLD seconds or until the file "go" exists (whichever the test
# asks for), then become ready. Readiness is a path probe on NAME.ready.
SCRIPT = r"""
n=$0; d=$1; offset=$2; hold=$3
if [ ! -e "$d/$n.crashed" ]; then
    touch "$d/$n.ready"
    while [ ! -e "$d/storm" ]; do sleep 0.01; done
    sleep "$offset"
    rm -f "$d/$n.ready"; touch "$d/$n.crashed"
    exit 1
fi
if [ "$hold" = go ]; then
    while [ ! -e "$d/go" ]; do sleep 0.01; done
else
    sleep "$hold"
fi
touch "$d/$n.ready"
exec sleep 600
"""


def crasher(d: Path, name: str, offset: float = 0.0, hold: str = "0.6", *, timeout: str = "60s", **extra) -> dict:
    unit = {"service": {"command": ["sh", "-c", SCRIPT, name, str(d), str(offset), hold]},
            "ready": {"path": str(d / f"{name}.ready"), "interval": "10ms", "timeout": timeout},
            "restart": {"policy": "on-failure", "delay": "100ms"}}
    for table, values in extra.items():
        unit.setdefault(table, {}).update(values)
    return unit


def start(pidone, tmp_path: Path, units: dict[str, dict], *args: str):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    p = pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run"), *args], timeout=120)
    p.runtime = tmp_path / "run"
    p.wait_ready()
    wait_for((tmp_path / "run" / "private" / "control.sock").exists, 15, "the control socket")
    return p


def cli(p, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([PY, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def units_status(p) -> dict[str, dict]:
    return {u["unit"]: u for u in json.loads(cli(p, "status", "--json").stdout)["units"]}


def wait_states(p, wanted: dict[str, str], timeout: float = 30) -> dict[str, dict]:
    def check():
        now = units_status(p)
        return now if all(now[n]["state"] == s for n, s in wanted.items()) else None

    return wait_for(check, timeout, f"states {wanted}", interval=0.05)


def events(p) -> list[dict]:
    return [json.loads(line) for line in cli(p, "events", "-n", "1000").stdout.splitlines()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def storm(d: Path) -> None:
    (d / "storm").touch()


def test_a_storm_restarts_one_at_a_time_required_and_critical_first(pidone, tmp_path):
    """Six units fail in reverse priority order (w3 first, db last); with
    --max-restarting 1 the first to be due takes the slot, then the queue
    releases db (two units require it), cache (one), audit (critical), then
    the rest by name."""
    d = tmp_path
    offsets = {"w3": 0.0, "w2": 0.04, "w1": 0.08, "audit": 0.12, "cache": 0.16, "db": 0.2}
    units = {name: crasher(d, name, offset) for name, offset in offsets.items()}
    units["audit"]["service"]["critical"] = True
    units["app"] = {"service": {"command": ["sleep", "600"]}, "dependencies": {"requires": ["db", "cache"]}}
    units["api"] = {"service": {"command": ["sleep", "600"]}, "dependencies": {"requires": ["db"]}}
    p = start(pidone, tmp_path, units, "--max-restarting", "1")
    wait_states(p, {name: "running" for name in units})
    storm(d)
    wait_states(p, {name: "running" for name in offsets}, timeout=60)
    history = [e for e in events(p) if e["unit"] in offsets]
    restarts = [e["unit"] for e in history if e["to"] == "starting" and e["from"] == "waiting"
                and any(x["unit"] == e["unit"] and x["to"] == "backoff" and x["time"] <= e["time"] for x in history)]
    assert restarts == ["w3", "db", "cache", "audit", "w1", "w2"], history
    queued = [e["unit"] for e in history if e["to"] == "queued"]
    assert sorted(queued) == ["audit", "cache", "db", "w1", "w2"]
    assert all(re.fullmatch(r"restart queued: \d waiting; 1 of 1 restart slots taken", e["reason"])
               for e in history if e["to"] == "queued"), history
    # Never two restarted units starting at once.
    storm_began = min(e["time"] for e in history if e["to"] == "backoff")
    starting = 0
    for e in sorted((e for e in history if e["time"] >= storm_began), key=lambda e: e["time"]):
        if e["to"] == "starting":
            starting += 1
        if e["from"] == "starting":
            starting -= 1
        assert starting <= 1, history
    assert p.count_lines(r"unit (app|api): (stopping|started)") == 2  # started once each, at boot


def test_no_restart_waits_in_the_queue_past_its_bound(pidone, tmp_path):
    """hog holds the only slot (its restart is not ready until the test
    says); quick's bound is its ready timeout, 1 s: it is released then."""
    d = tmp_path
    units = {"hog": crasher(d, "hog", 0.0, "go"), "quick": crasher(d, "quick", 0.2, "0", timeout="1s")}
    p = start(pidone, tmp_path, units, "--max-restarting", "1")
    wait_states(p, {"hog": "running", "quick": "running"})
    storm(d)
    queued = wait_states(p, {"hog": "starting", "quick": "queued"})["quick"]["queued"]
    assert queued["position"] == 1 and queued["of"] == 1 and queued["max_wait"] == 1.0
    wait_states(p, {"hog": "starting", "quick": "running"})
    p.find_line(r"unit quick: released from the restart queue after 1(\.\d+)?s: waited its bound of 1s")
    history = [e for e in events(p) if e["unit"] == "quick"]
    entered = next(e["time"] for e in history if e["to"] == "queued")
    left = next(e["time"] for e in history if e["from"] == "queued")
    assert 0.9 <= left - entered < 5.0
    (d / "go").touch()
    wait_states(p, {"hog": "running"})


def test_a_unit_stopped_while_queued_never_starts(pidone, tmp_path):
    d = tmp_path
    units = {"hog": crasher(d, "hog", 0.0, "go"), "victim": crasher(d, "victim", 0.2)}
    port = free_port()
    p = start(pidone, tmp_path, units, "--max-restarting", "1", "--http", f"127.0.0.1:{port}")
    wait_states(p, {"hog": "running", "victim": "running"})
    storm(d)
    wait_states(p, {"hog": "starting", "victim": "queued"})
    out = cli(p, "status").stdout
    assert "victim: restart queued for" in out and "position 1 of 1" in out, out
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "pidone_restart_queue_length 1" in metrics
    assert 'pidone_unit_queued_seconds{unit="victim"}' in metrics
    assert 'pidone_unit_state{unit="victim",state="queued"} 1' in metrics
    cli(p, "stop", "victim")
    wait_states(p, {"victim": "inactive"})
    (d / "go").touch()
    wait_states(p, {"hog": "running"})
    time.sleep(0.5)  # a wrongly released victim would start within a few ms of hog's readiness
    assert units_status(p)["victim"]["state"] == "inactive"
    assert p.count_lines(r"unit victim: started") == 1
    assert "pidone_restart_queue_length 0" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def test_a_reload_and_a_reexec_keep_the_queue(pidone, tmp_path):
    d = tmp_path
    units = {"hog": crasher(d, "hog", 0.0, "go"), "a": crasher(d, "a", 0.2), "b": crasher(d, "b", 0.3)}
    p = start(pidone, tmp_path, units, "--max-restarting", "1")
    wait_states(p, {"hog": "running", "a": "running", "b": "running"})
    storm(d)
    before = wait_states(p, {"hog": "starting", "a": "queued", "b": "queued"})
    assert (before["a"]["queued"]["position"], before["b"]["queued"]["position"]) == (1, 2)
    p.kill(signal.SIGHUP)
    p.find_line(r"reload done")
    after_reload = wait_states(p, {"hog": "starting", "a": "queued", "b": "queued"})
    cli(p, "reexec")
    p.find_line(r"re-executed as")
    after = wait_states(p, {"hog": "starting", "a": "queued", "b": "queued"})
    for name in ("a", "b"):
        assert after[name]["queued"]["position"] == before[name]["queued"]["position"]
        assert abs(after[name]["queued"]["since"] - before[name]["queued"]["since"]) < 0.05
        assert abs(after_reload[name]["since"] - before[name]["since"]) < 0.01  # not re-queued
    assert p.count_lines(r"unit (a|b): started") == 2  # the boot's only
    (d / "go").touch()
    wait_states(p, {"hog": "running", "a": "running", "b": "running"})
    assert p.count_lines(r"unit (a|b): started") == 4
    starts = [e["unit"] for e in events(p) if e["to"] == "starting" and e["from"] == "waiting" and e["unit"] in "ab"]
    assert starts[-2:] == ["a", "b"]

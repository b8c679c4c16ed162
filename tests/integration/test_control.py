"""The control socket and the CLI against a live pidone as PID 1: every
verb in text and JSON, permissions by peer uid, the socket's mode at every
instant of start-up, hostile and slow clients, and log routing."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import tomli_w

from pidone_harness import ModeWatcher, raw_request, wait_for

PY = sys.executable


def start(pidone, tmp_path: Path, units: dict[str, dict], *extra, runtime: Path | None = None, **kwargs):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    runtime = runtime or tmp_path / "run"
    p = pidone(["--units", str(directory), "--runtime-dir", str(runtime), *extra], **kwargs)
    p.runtime = runtime
    p.socket = runtime / "private" / "control.sock"
    p.wait_ready()
    wait_for(p.socket.exists, 15, "the control socket")
    return p


def cli(p, *args: str, user: int | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = [PY, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def sleeper(text: str = "up") -> dict:
    return {"service": {"command": ["sh", "-c", f"echo {text}; exec sleep 600"]}}


# -- verbs -------------------------------------------------------------------------


def test_status_in_text_and_json(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "job": {"service": {"type": "oneshot", "command": ["true"]}}})
    p.find_line(r"unit job: exited")
    out = cli(p, "status")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == ["UNIT", "STATE", "PID", "UPTIME", "RESTARTS", "LAST", "EXIT", "READY", "MEM", "CPU"]
    assert any(line.split()[:2] == ["web", "running"] for line in out.stdout.splitlines())
    assert any(line.split()[:2] == ["job", "exited"] for line in out.stdout.splitlines())
    data = json.loads(cli(p, "status", "web", "--json").stdout)
    (web,) = data["units"]
    assert web["unit"] == "web" and web["state"] == "running" and web["ready"] is True
    assert isinstance(web["pid"], int) and web["memory_bytes"] > 0 and web["cpu_seconds"] >= 0
    assert data["pidone"]["pid"] == 1


def test_start_stop_restart_with_wait(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    p.find_line(r"unit web: started")
    out = cli(p, "stop", "web", "--wait")
    assert out.returncode == 0 and "unit web: inactive" in out.stdout
    out = cli(p, "start", "web", "--wait", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["result"]["units"][0]["state"] == "running"
    before = json.loads(cli(p, "status", "web", "--json").stdout)["units"][0]["pid"]
    assert cli(p, "restart", "web", "--wait").returncode == 0
    after = json.loads(cli(p, "status", "web", "--json").stdout)["units"][0]["pid"]
    assert after != before


def test_wait_reports_a_failed_start_with_exit_1(pidone, tmp_path):
    """A oneshot's start is its run: --wait sees it fail. (A simple unit is
    started once exec succeeds, as with systemd.)"""
    p = start(pidone, tmp_path, {"bad": {"service": {"type": "oneshot", "command": ["sh", "-c", "exit 3"]}}})
    p.find_line(r"unit bad: failed")
    out = cli(p, "start", "bad", "--wait")
    assert out.returncode == 1
    assert "unit bad: failed" in out.stderr and "try:" in out.stderr


def test_unknown_unit_is_a_usage_error_with_a_hint(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    out = cli(p, "stop", "nosuch")
    assert out.returncode == 2
    assert "no unit named 'nosuch'" in out.stderr and "pidone status" in out.stderr


def test_reload_verbs(pidone, tmp_path):
    trap = "trap 'echo got-hup' HUP; echo up; while :; do sleep 0.05; done"
    p = start(pidone, tmp_path, {"web": {"service": {"command": ["sh", "-c", trap]}}})
    p.find_line(r"^web \| up")
    out = cli(p, "reload", "web")
    assert out.returncode == 0 and "sent SIGHUP to unit web" in out.stdout
    p.find_line(r"^web \| got-hup")
    (tmp_path / "units" / "extra.toml").write_text(tomli_w.dumps(sleeper("extra")))
    plan = cli(p, "reload", "--plan")
    assert plan.returncode == 0
    assert "start    extra" in plan.stdout and "keep     web" in plan.stdout
    assert p.count_lines(r"unit extra: started") == 0, "--plan must not apply anything"
    out = cli(p, "reload")
    assert out.returncode == 0 and "reloaded: +1 -0 ~0 =1" in out.stdout
    p.find_line(r"unit extra: started")


def test_logs_and_events(pidone, tmp_path):
    counter = "i=0; while :; do i=$((i+1)); echo line $i; sleep 0.05; done"
    p = start(pidone, tmp_path, {"a": {"service": {"command": ["sh", "-c", counter]}},
                                 "b": {"service": {"command": ["sh", "-c", counter]}}})
    p.wait_count(r"^b \| line 5$", 1)
    out = cli(p, "logs", "a", "b", "-n", "4")
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all(" a | line " in l or " b | line " in l for l in lines)
    records = [json.loads(l) for l in cli(p, "logs", "a", "-n", "3", "--json").stdout.splitlines()]
    assert [r["unit"] for r in records] == ["a"] * 3 and all(r["stream"] == "stdout" for r in records)
    follow = subprocess.Popen([PY, "-m", "pidone", "logs", "a", "-f", "-n", "0", "--runtime-dir", str(p.runtime)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert " a | line " in follow.stdout.readline()
    finally:
        follow.kill()
        follow.wait()
    events = [json.loads(l) for l in cli(p, "events").stdout.splitlines()]
    assert {"unit": "a", "to": "running"}.items() <= next(e for e in events if e["unit"] == "a" and e["to"] == "running").items()


def test_reexec_is_answered(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    out = cli(p, "reexec")
    assert out.returncode in (0, 1)
    assert out.stdout or out.stderr


def test_cannot_reach_pidone_exits_3(tmp_path):
    out = subprocess.run([PY, "-m", "pidone", "status", "--runtime-dir", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 3
    assert "cannot reach pidone" in out.stderr and "is pidone running?" in out.stderr


# -- security ------------------------------------------------------------------------


@pytest.fixture
def open_runtime():
    """A runtime directory nobody can reach (pytest's tmp is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pidone-rt-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_non_root_client_is_refused_every_change_and_logged(pidone, tmp_path, open_runtime):
    p = start(pidone, tmp_path, {"web": sleeper()}, runtime=open_runtime)
    p.find_line(r"unit web: started")
    # Open the door on purpose (as D2 does) to show the uid check holds by itself.
    (p.runtime / "private").chmod(0o755)
    p.socket.chmod(0o666)
    assert cli(p, "status", user=65534).returncode == 0  # reading is allowed
    for verb in (["start", "web"], ["stop", "web"], ["restart", "web"], ["reload"], ["reload", "web"], ["reexec"]):
        out = cli(p, *verb, user=65534)
        assert out.returncode == 4, (verb, out.stderr)
        assert "needs root" in out.stderr
        p.find_line(rf"control: refused {verb[0]} from uid 65534 \(pid \d+\)")
    assert p.count_lines(r"unit web: stopping") == 0


def test_socket_and_directory_are_never_wider_than_0600_and_0700(pidone, tmp_path):
    run = tmp_path / "run"
    with ModeWatcher(run / "private", run / "private" / "control.sock") as watcher:
        for i in range(20):
            p = start(pidone, tmp_path, {"web": sleeper()})
            p.kill(signal.SIGTERM)
            p.wait()
    assert watcher.seen, "the watcher saw nothing"
    assert watcher.modes("private") == {0o700}
    assert watcher.modes("control.sock") == {0o600}


def test_a_symlink_or_foreign_directory_at_the_private_path_is_replaced_not_followed(pidone, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    target.chmod(0o755)
    (run / "private").symlink_to(target)
    p = start(pidone, tmp_path, {"web": sleeper()})
    assert not (run / "private").is_symlink()
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and not list(target.iterdir())
    p.kill(signal.SIGTERM)
    p.wait()
    # A directory someone else made, wide open, is replaced too.
    (run / "private" / "control.sock").unlink(missing_ok=True)
    (run / "private").chmod(0o777)
    os.chown(run / "private", 65534, 65534)
    p = start(pidone, tmp_path, {"web": sleeper()})
    info = os.lstat(run / "private")
    assert info.st_uid == 0 and stat.S_IMODE(info.st_mode) == 0o700


MALFORMED = {
    "invalid json": b"{nope\n",
    "invalid utf-8": b'{"v": 1, "cmd": "st\xff\xfeatus"}\n',
    "nul byte": b'{"v": 1, "cmd": "status\x00"}\n',
    "deep nesting": b"[" * 1_000_000 + b"\n",
    "5000 digits": b'{"v": 1, "cmd": "status", "args": {"units": [' + b"9" * 5000 + b"]}}\n",
    "nan": b'{"v": 1, "cmd": "status", "x": NaN}\n',
    "duplicate keys": b'{"v": 1, "cmd": "status", "cmd": "stop"}\n',  # the last wins: stop, with no unit
    "unknown command": b'{"v": 1, "cmd": "format-disk"}\n',
    "wrong types": b'{"v": 1, "cmd": "logs", "args": {"units": "web", "lines": "ten"}}\n',
    "path traversal": b'{"v": 1, "cmd": "logs", "args": {"units": ["../../../etc/shadow"]}}\n',
    "old version": b'{"v": 99, "cmd": "status"}\n',
    "not an object": b"[1, 2, 3]\n",
}


def test_malformed_requests_get_a_structured_error_or_a_close(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    rss = p.rss_kib()
    for name, payload in MALFORMED.items():
        started = time.monotonic()
        answer = raw_request(p.socket, payload)
        assert time.monotonic() - started < 1.5, name
        if answer:
            reply = json.loads(answer.splitlines()[0])
            assert reply["ok"] is False and reply["error"]["code"] and reply["error"]["message"], name
    # A 10 MB line is cut off at the cap while it is read, and a request
    # without a newline is dropped when the client leaves.
    big = raw_request(p.socket, b'{"v": 1, "cmd": "status", "pad": "' + b"x" * (10 << 20))
    assert json.loads(big.splitlines()[0])["error"]["code"] == "too-large"
    assert raw_request(p.socket, b'{"v": 1, "cmd": "status"}') == b""
    assert p.rss_kib() - rss < 20 * 1024
    assert cli(p, "status").returncode == 0
    assert "Traceback" not in p.output()


CANARY = {"service": {"command": [PY, "-u", "-c",
                                  "import time\nn = 0\nwhile True:\n    n += 1\n    print('beat', n)\n    time.sleep(0.05)"]}}


def test_slow_and_silent_clients_do_not_stall_the_init(pidone, tmp_path):
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    p = start(pidone, tmp_path, {"canary": CANARY, "chatty": {"service": {"command": ["yes", "chatter"]}}})
    p.wait_count(r"^canary \| beat", 5)
    clients = []
    try:
        for i in range(100):  # drip a byte now and then, never finish
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(p.socket))
            sock.send(b'{"v": 1,')
            clients.append(sock)
        for i in range(100):  # follow a flood of logs and never read
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                sock.connect(str(p.socket))
                sock.send(b'{"v": 1, "cmd": "logs", "args": {"units": ["chatty"], "follow": true}}\n')
            except OSError:
                pass
            clients.append(sock)
        latencies = []
        for _ in range(20):
            started = time.monotonic()
            reply = json.loads(raw_request(p.socket, b'{"v": 1, "cmd": "status"}\n').splitlines()[0])
            latencies.append(time.monotonic() - started)
            assert reply["ok"] or reply["error"]["code"] == "busy"
            time.sleep(0.05)
        latencies.sort()
        assert latencies[-1] < 0.2, latencies  # p99 of 20: the slowest
    finally:
        for sock in clients:
            sock.close()
    beats = [t for t, line in zip(p.stdout_times, p.stdout) if line.startswith(b"canary | beat")]
    assert max(b - a for a, b in zip(beats, beats[1:])) < 1.0
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


# -- log routing ----------------------------------------------------------------------


def test_json_log_format_long_lines_and_partial_lines(pidone, tmp_path):
    script = f"{PY} -c \"import sys; sys.stdout.write('x' * 200000 + '\\\\n'); sys.stdout.write('no newline at the end'); sys.stdout.flush()\""
    p = start(pidone, tmp_path, {"emit": {"service": {"type": "oneshot", "command": ["sh", "-c", script]}}},
              "--log-format", "json")
    p.find_line(r'"unit":"emit".*"no newline at the end"')
    records = [json.loads(line) for line in p.stdout if line.startswith(b"{")]
    emitted = [r for r in records if r["unit"] == "emit"]
    assert [len(r["message"]) for r in emitted[:4]] == [65536, 65536, 65536, 200000 - 3 * 65536]
    assert all(set(r) == {"time", "unit", "stream", "message"} for r in records)
    assert any(r["unit"] == "pidone" for r in records)


def test_a_failed_unit_prints_its_last_lines(pidone, tmp_path):
    script = "echo first; echo 'connection refused: db' >&2; exit 4"
    p = start(pidone, tmp_path, {"app": {"service": {"command": ["sh", "-c", script]}, "restart": {"policy": "no"}}})
    p.find_line(r"unit app: its last 2 line\(s\) before it failed:")
    p.find_line(r"  app \[stderr\] \| connection refused: db")


@pytest.mark.slow
def test_a_flooding_service_does_not_delay_other_units(pidone, tmp_path):
    _flood(pidone, tmp_path, seconds=10)


def test_a_short_flood_does_not_delay_other_units(pidone, tmp_path):
    _flood(pidone, tmp_path, seconds=3)


def _flood(pidone, tmp_path, seconds: float) -> None:
    flood = f"timeout {seconds} {PY} -c \"import os\\nb = b'y' * 65535 + b'\\\\n'\\nwhile True: os.write(1, b)\"; sleep 600"
    p = start(pidone, tmp_path, {"canary": CANARY, "flood": {"service": {"command": ["sh", "-c", flood]}}})
    p.wait_count(r"^canary \| beat", 5)
    rss = p.rss_kib()
    time.sleep(seconds)  # the flood's own duration: we measure what happens during it
    beats = [(t, line) for t, line in zip(p.stdout_times, p.stdout) if line.startswith(b"canary | beat")]
    gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:])]
    assert max(gaps) < 0.2 + 0.05, f"canary delayed {max(gaps) * 1000:.0f} ms"
    assert p.rss_kib() - rss < 50 * 1024
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


def test_a_log_file_gets_the_lines_rotates_and_never_follows_a_symlink(pidone, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "app.log"
    counter = "i=0; while :; do i=$((i+1)); echo line $i padding-padding-padding; sleep 0.01; done"
    p = start(pidone, tmp_path, {"app": {"service": {"command": ["sh", "-c", counter]},
                                         "log": {"file": str(log), "max_bytes": 2048, "backups": 2}}})
    wait_for(lambda: (logs / "app.log.2").exists(), 20, "two rotations")
    assert all(f.stat().st_size <= 2048 + 200 for f in logs.iterdir())
    assert sorted(f.name for f in logs.iterdir()) == ["app.log", "app.log.1", "app.log.2"]
    assert "app | line " in log.read_text()
    # Replace the file with a symlink to something precious; reload reopens it.
    precious = tmp_path / "precious"
    precious.write_text("do not touch\n")
    precious.chmod(0o600)
    log.unlink()
    log.symlink_to(precious)
    cli(p, "reload")
    p.find_line(r"log file .*app\.log: refused: it is a symlink")
    time.sleep(0.3)  # lines keep coming: none may reach the target
    assert precious.read_text() == "do not touch\n" and stat.S_IMODE(precious.stat().st_mode) == 0o600


def test_reload_plan_names_the_dependents_a_change_restarts(pidone, tmp_path):
    p = start(pidone, tmp_path, {"db": sleeper("db"), "app": {**sleeper("app"), "dependencies": {"requires": ["db"]}},
                                 "side": {**sleeper("side"), "dependencies": {"wants": ["db"]}}})
    p.find_line(r"unit app: started")
    (tmp_path / "units" / "db.toml").write_text(tomli_w.dumps(sleeper("db v2")))
    plan = cli(p, "reload", "--plan").stdout
    assert "restart  db" in plan
    assert "restart  app (requires a unit that restarts)" in plan
    assert "keep     side" in plan


def test_a_failed_reload_exits_1(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    p.find_line(r"unit web: started")
    (tmp_path / "units").rename(tmp_path / "units.gone")
    out = cli(p, "reload")
    assert out.returncode == 1 and "cannot be read" in out.stderr
    assert json.loads(cli(p, "status", "--json").stdout)["units"][0]["state"] == "running"


def test_another_user_gets_a_clear_refusal_not_a_hint_that_pidone_is_down(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper()})
    out = cli(p, "status", user=65534)
    assert out.returncode == 4
    assert "only root or pidone's own user" in out.stderr and "is pidone running" not in out.stderr


def test_dropped_output_is_counted_and_reported_once_the_reader_catches_up(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (units / "flood.toml").write_text(tomli_w.dumps(
        {"service": {"command": ["sh", "-c", "timeout 2 yes 'a long line of output that nobody reads for a while'"
                                             "; exec sleep 600"]}}))
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", PY, "-m", "pidone",
            "--units", str(units), "--runtime-dir", str(tmp_path / "run")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        time.sleep(3)  # the reader stalls for this long, on purpose: that is the case
        deadline = time.monotonic() + 30
        seen = b""
        while time.monotonic() < deadline and b"were dropped" not in seen:
            seen = seen[-4096:] + proc.stdout.read1(1 << 16)
        assert b"line(s) of output were dropped: the reader of pidone's output was too slow" in seen
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()

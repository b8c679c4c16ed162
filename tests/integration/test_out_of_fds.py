"""PID 1 out of descriptors with clients connecting to the control socket:
it does not spin (CPU time stays low, one log line), clients never take the
descriptors supervision needs (a restarting unit keeps restarting), and
once descriptors are free again the waiting clients are served and
`restart` and `status` work."""

from __future__ import annotations

import json
import resource
import socket
import sys
import time
from pathlib import Path

import tomli_w

from pidone_harness import run_cli, start_over

PY = sys.executable
RESERVE_FDS = 32  # pidone.acceptor.RESERVE_FDS
TICKS = __import__("os").sysconf("SC_CLK_TCK")


def start(pidone, tmp_path: Path, units: dict[str, dict]):
    directory = tmp_path / "units"
    directory.mkdir()
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    return start_over(pidone, directory, tmp_path / "run")


cli = run_cli


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def connect_many(p, count: int) -> list[socket.socket]:
    clients = []
    for _ in range(count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(p.runtime / "private" / "control.sock"))  # queues in the backlog
        clients.append(sock)
    return clients


def set_soft_limit(pid: int, soft: int) -> tuple[int, int]:
    before = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, before[1]))
    return before


def test_out_of_descriptors_it_stops_accepting_without_spinning_and_recovers(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": {"service": {"command": ["sleep", "600"]}}})
    pid_before = json.loads(cli(p, "status", "web", "--json").stdout)["units"][0]["pid"]
    used = p.settled_fd_count()
    before = set_soft_limit(p.pid1, used)  # not one descriptor left
    clients = []
    try:
        cpu = cpu_seconds(p.pid1)
        clients = connect_many(p, 50)
        p.find_line(r"control: cannot accept")
        time.sleep(2)  # the window over which a spin would show, not synchronisation
        spent = cpu_seconds(p.pid1) - cpu
        assert spent < 0.25, f"PID 1 spins while out of descriptors: {spent:.2f}s of CPU in 2s"
        assert p.count_lines("cannot accept") == 1
    finally:
        resource.prlimit(p.pid1, resource.RLIMIT_NOFILE, before)
    for sock in clients:
        sock.close()
    out = cli(p, "restart", "web")
    assert out.returncode == 0, out.stdout + out.stderr
    status = json.loads(cli(p, "status", "web", "--json").stdout)["units"][0]
    assert status["state"] == "running" and status["pid"] != pid_before
    assert p.count_lines("cannot accept") == 1
    assert "Traceback" not in p.output()


def test_clients_never_take_the_descriptors_supervision_needs(pidone, tmp_path):
    churn = {"service": {"command": ["sleep", "0.2"]}, "restart": {"policy": "always", "delay": "100ms"}}
    p = start(pidone, tmp_path, {"churn": churn})
    p.wait_count(r"unit churn: .*restarting", 2)
    used = p.settled_fd_count()
    before = set_soft_limit(p.pid1, used + RESERVE_FDS + 4)  # room for a few clients only
    clients = []
    try:
        clients = connect_many(p, 40)
        restarts = p.count_lines(r"unit churn: .*restarting")
        p.wait_count(r"unit churn: .*restarting", restarts + 5, timeout=20)
        assert p.count_lines(r"Too many open files|unable to create") == 0, p.stdout_text()[-3000:]
        assert p.count_lines("control: refusing connections: fewer than 32 file descriptors are left") == 1
        # The refused ones were told so at once.
        busy = 0
        for sock in clients:
            sock.settimeout(0.2)
            try:
                busy += b"short of file descriptors" in sock.recv(4096)
            except OSError:
                pass
        assert busy >= 30
    finally:
        resource.prlimit(p.pid1, resource.RLIMIT_NOFILE, before)
        for sock in clients:
            sock.close()
    out = cli(p, "status", "churn")
    assert out.returncode == 0, out.stdout + out.stderr

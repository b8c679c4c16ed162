"""[socket] under a real PID 1: sockets bound before any unit starts,
handed over as sd_listen_fds expects, held across restarts and re-execs
so that no connection is refused, on_demand starts, bind failures, unix
socket files. Clients connect on loopback only."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import threading
import time
from pathlib import Path

import tomli_w

from pidone_harness import run_cli, start_units, wait_for

PY = sys.executable

# A service in the style of any sd_listen_fds user: fds from 3, checks LISTEN_PID.
SERVER = r"""
import json, os, socket, sys, time
report, delay = sys.argv[1], float(sys.argv[2])
n = int(os.environ.get("LISTEN_FDS", "0"))
info = {"pid": os.getpid(), "listen_pid": os.environ.get("LISTEN_PID"), "fds": n,
        "names": os.environ.get("LISTEN_FDNAMES"), "open": sorted(int(f) for f in os.listdir("/proc/self/fd"))}
time.sleep(delay)  # slow to accept: clients must wait in the backlog, not be refused
with open(report, "a") as f:
    f.write(json.dumps(info) + "\n")
server = socket.socket(fileno=3)
while True:
    conn, _ = server.accept()
    conn.sendall(b"hello from %d\n" % os.getpid())
    conn.close()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


start = start_units
cli = run_cli


def server_unit(tmp_path: Path, listen: list[str], delay: float = 0.0, **socket_keys) -> dict:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    return {"service": {"command": [PY, str(script), str(tmp_path / "report"), str(delay)]},
            "socket": {"listen": listen, **socket_keys}}


def reports(tmp_path: Path) -> list[dict]:
    path = tmp_path / "report"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def fetch(port: int, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        return conn.recv(100)


def test_the_service_gets_its_socket_as_fd_3_with_sd_listen_fds_variables(pidone, tmp_path):
    port = free_port()
    p = start(pidone, tmp_path, {"web": server_unit(tmp_path, [f"tcp:127.0.0.1:{port}"])})
    assert fetch(port).startswith(b"hello from ")
    (info,) = reports(tmp_path)
    assert info["listen_pid"] == str(info["pid"])  # its own pid, as sd_listen_fds() checks
    assert (info["fds"], info["names"]) == (1, "web")
    assert info["open"][:4] == [0, 1, 2, 3] and len(info["open"]) <= 5  # 0-2, the socket (and listdir's own)
    assert cli(p, "status", "web").returncode == 0


def test_restarts_and_a_reexec_refuse_no_connection(pidone, tmp_path):
    port = free_port()
    p = start(pidone, tmp_path, {"web": server_unit(tmp_path, [f"tcp:127.0.0.1:{port}"], delay=0.3)})
    assert fetch(port).startswith(b"hello")
    results = {"ok": 0, "refused": 0, "other": []}
    stop = threading.Event()

    def clients():
        while not stop.is_set():
            try:
                if fetch(port).startswith(b"hello"):
                    results["ok"] += 1
            except ConnectionRefusedError:
                results["refused"] += 1
            except OSError as exc:
                results["other"].append(repr(exc))
            time.sleep(0.02)

    thread = threading.Thread(target=clients, daemon=True)
    thread.start()
    try:
        for _ in range(3):
            before = len(reports(tmp_path))
            assert cli(p, "restart", "web").returncode == 0
            wait_for(lambda: len(reports(tmp_path)) > before, 15, "the restarted service")
        assert cli(p, "reexec").returncode == 0
        time.sleep(0.5)  # keep the client loop going across the re-exec
        assert fetch(port).startswith(b"hello")
    finally:
        stop.set()
        thread.join(10)
    assert results["refused"] == 0 and results["other"] == [], results
    assert results["ok"] > 10
    assert len({r["pid"] for r in reports(tmp_path)}) == 4  # four runs, one socket


def test_on_demand_starts_the_unit_at_the_first_connection(pidone, tmp_path):
    port = free_port()
    p = start(pidone, tmp_path, {"web": server_unit(tmp_path, [f"tcp:127.0.0.1:{port}"], on_demand=True)})
    p.expect_line(r"starting 1 unit")
    status = json.loads(cli(p, "status", "--json", "web").stdout)["units"][0]
    assert status["state"] == "inactive" and reports(tmp_path) == []
    assert fetch(port).startswith(b"hello")  # the connection waited while the unit started
    p.expect_line(r"unit web: a client connected: starting")
    assert len(reports(tmp_path)) == 1


def test_a_socket_that_cannot_be_bound_fails_its_unit_and_the_rest_runs(pidone, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        units = {"web": server_unit(tmp_path, [f"tcp:127.0.0.1:{port}"]), "other": {"service": {"command": ["sleep", "600"]}}}
        units["web"]["restart"] = {"policy": "no"}
        p = start(pidone, tmp_path, units)
        p.expect_line(rf"unable to bind socket tcp:127.0.0.1:{port}: Address already in use")
        p.expect_line(r"unit other: started")
        wait_for(lambda: json.loads(cli(p, "status", "--json", "web").stdout)["units"][0]["state"] == "failed",
                 15, "web failed")


def test_a_unix_socket_is_owned_by_the_unit_s_user_with_its_mode(pidone, tmp_path):
    import pwd

    path = tmp_path / "app.sock"
    # `sleep` as nobody (who cannot read this test run's interpreter): the
    # socket is pidone's to make; connections queue until someone accepts.
    unit = {"service": {"command": ["sleep", "600"], "user": "nobody"},
            "socket": {"listen": [f"unix:{path}"], "mode": "0660"}}
    p = start(pidone, tmp_path, {"app": unit})
    p.expect_line(r"unit app: started")
    info = os.lstat(path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_uid == pwd.getpwnam("nobody").pw_uid
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))  # queued in the backlog


def test_a_reload_that_changes_listen_rebinds_only_that(pidone, tmp_path):
    a, b = free_port(), free_port()
    p = start(pidone, tmp_path, {"web": server_unit(tmp_path, [f"tcp:127.0.0.1:{a}"])})
    assert fetch(a).startswith(b"hello")
    unit = server_unit(tmp_path, [f"tcp:127.0.0.1:{b}"])
    (p.units / "web.toml").write_text(tomli_w.dumps(unit))
    assert cli(p, "reload").returncode == 0
    wait_for(lambda: len(reports(tmp_path)) == 2, 15, "the restarted service")
    assert fetch(b).startswith(b"hello")
    try:
        socket.create_connection(("127.0.0.1", a), timeout=5).close()
        raise AssertionError("the old address still listens")
    except ConnectionRefusedError:
        pass

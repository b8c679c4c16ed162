"""The HTTP endpoint as PID 1 (--http on loopback): health, readiness,
Prometheus metrics (parsed with prometheus_client), status, a silent client
that must not stall anything, and readiness failing on SIGTERM before any
unit stops."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from pidone_harness import wait_for

PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(pidone, tmp_path: Path, units: dict, *extra):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    port = free_port()
    p = pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run"), "--http", f"127.0.0.1:{port}", *extra])
    p.base = f"http://127.0.0.1:{port}"
    p.wait_ready()
    wait_for(lambda: _get(p, "/healthz")[0] == 200, 10, "the HTTP endpoint")
    return p


def _get(p, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(p.base + path, timeout=2) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_health_readiness_metrics_and_status(pidone, tmp_path):
    flag = tmp_path / "ready"
    units = {"web": {"service": {"command": ["sleep", "600"]}},
             "slow": {"service": {"command": ["sleep", "600"]}, "ready": {"path": str(flag), "interval": "20ms"}}}
    p = start(pidone, tmp_path, units)
    code, body = _get(p, "/readyz")
    assert code == 503 and "slow" in body
    flag.touch()
    wait_for(lambda: _get(p, "/readyz")[0] == 200, 5, "readiness")
    status, text = _get(p, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    states = {(s.labels["unit"], s.labels["state"]): s.value for s in families["pidone_unit_state"].samples}
    assert states[("web", "running")] == 1 and states[("web", "failed")] == 0
    assert {"pidone_unit_restarts", "pidone_reaped_processes", "pidone_log_lines_dropped", "pidone_info"} <= set(families)
    code, body = _get(p, "/status")
    assert code == 200 and {u["unit"] for u in json.loads(body)["units"]} == {"web", "slow"}
    assert _get(p, "/nope")[0] == 404


def test_a_silent_client_stalls_nothing_and_is_dropped(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": {"service": {"command": ["sleep", "600"]}}})
    silent = socket.create_connection(("127.0.0.1", int(p.base.rsplit(":", 1)[1])))
    try:
        started = time.monotonic()
        assert _get(p, "/healthz")[0] == 200
        assert time.monotonic() - started < 1
        silent.settimeout(10)
        assert silent.recv(100) == b""  # closed after the deadline, never answered
    finally:
        silent.close()


def test_sigterm_turns_readiness_off_before_any_unit_stops(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": {"service": {"command": ["sleep", "600"]}}}, "--stop-delay", "1")
    assert _get(p, "/readyz")[0] == 200
    p.kill(signal.SIGTERM)
    wait_for(lambda: _get(p, "/readyz")[0] == 503, 2, "readiness to fail")
    assert p.count_lines(r"unit web: stopping") == 0, "readiness must fail before any unit stops"
    assert _get(p, "/healthz")[0] == 200
    p.find_line(r"unit web: stopping", timeout=5)
    assert p.wait(timeout=20) == 0


def test_a_bad_http_address_is_a_usage_error(pidone):
    p = pidone(["--http", "nonsense", "--units", "/tmp"], namespace=False)
    assert p.wait() == 2
    assert "--http wants HOST:PORT" in p.stderr_text()


def test_stop_delay_with_a_main_command_drains_before_passing_sigterm_on(pidone, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    port = free_port()
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('got TERM', flush=True), sys.exit(0)))\n"
            "print('ready', flush=True)\n"
            "while True: time.sleep(1)\n")
    p = pidone(["--units", str(units), "--runtime-dir", str(tmp_path / "run"), "--http", f"127.0.0.1:{port}",
                "--stop-delay", "1", "--", PY, "-u", "-c", code])
    p.base = f"http://127.0.0.1:{port}"
    p.find_line("ready")
    p.wait_ready()
    wait_for(lambda: _get(p, "/readyz")[0] == 200, 10, "readiness")
    p.kill(signal.SIGTERM)
    wait_for(lambda: _get(p, "/readyz")[0] == 503, 2, "readiness to fail")
    assert p.count_lines(r"got TERM") == 0, "the main command must get SIGTERM only after the delay"
    p.find_line(r"got TERM", timeout=5)
    assert p.wait(timeout=20) == 0

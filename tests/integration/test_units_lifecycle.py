"""Units as PID 1: dependency order with real parallelism, every readiness
kind, start timeouts and skipped dependents, stop timeouts that reach
escaped grandchildren, reverse-order shutdown, critical units, and spawn
failures reported with their stage."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomli_w

from pidone_harness import raw_request

PY = sys.executable


def write_units(directory: Path, units: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in units.items():
        (directory / f"{name}.toml").write_text(textwrap.dedent(text))
    return directory


def start(pidone, tmp_path, units: dict[str, str], *extra, **kwargs):
    directory = write_units(tmp_path / "units", units)
    return pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run"), *extra], **kwargs)


def stamped(name: str, delay: float, ready_file: str) -> str:
    """A unit that prints when it starts, and marks itself ready after `delay`."""
    code = (
        f"import time, pathlib; print('{name} start', time.monotonic(), flush=True); "
        f"time.sleep({delay}); pathlib.Path('{ready_file}').touch(); "
        f"print('{name} ready', time.monotonic(), flush=True); time.sleep(600)"
    )
    return code


def times(p, name: str, what: str) -> float:
    line = p.find_line(rf"^{name} \| {name} {what} ")
    return float(line.split()[-1])


def test_independent_units_overlap_and_dependents_wait_for_readiness(pidone, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    units = {}
    for name in ("a", "b"):
        units[name] = f"""
            [service]
            command = {[PY, "-c", stamped(name, 0.6, str(flags / name))]!r}
            [ready]
            path = "{flags / name}"
            interval = "20ms"
        """
    units["c"] = f"""
        [service]
        command = {[PY, "-c", "import time; print('c start', time.monotonic(), flush=True); time.sleep(600)"]!r}
        [dependencies]
        requires = ["a", "b"]
    """
    p = start(pidone, tmp_path, units)
    a_start, b_start = times(p, "a", "start"), times(p, "b", "start")
    a_ready, b_ready = times(p, "a", "ready"), times(p, "b", "ready")
    c_start = float(p.find_line(r"^c \| c start").split()[-1])
    assert abs(a_start - b_start) < 0.4, "independent units must start in parallel"
    assert b_start < a_ready and a_start < b_ready, "their runs must overlap"
    assert c_start > max(a_ready, b_ready), "a dependent starts only after its requirements are ready"
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


def test_every_readiness_kind(pidone, tmp_path):
    port_tcp, port_http = 18761, 18762
    listen = (
        "import socket, time; time.sleep(0.3); s = socket.socket(); "
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
        f"s.bind(('127.0.0.1', {port_tcp})); s.listen(); time.sleep(600)"
    )
    notify = (
        "import os, socket, time; time.sleep(0.3); s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
        "s.connect(os.environ['NOTIFY_SOCKET']); s.send(b'STATUS=almost\\nREADY=1'); time.sleep(600)"
    )
    flag = tmp_path / "exec-ready"
    units = {
        "tcp": f"""
            [service]
            command = {[PY, "-c", listen]!r}
            [ready]
            tcp = "127.0.0.1:{port_tcp}"
            interval = "50ms"
        """,
        "http": f"""
            [service]
            command = ["{PY}", "-m", "http.server", "--bind", "127.0.0.1", "{port_http}"]
            [ready]
            http = "http://127.0.0.1:{port_http}/"
            interval = "50ms"
        """,
        "exec": f"""
            [service]
            command = ["sh", "-c", "sleep 0.3; touch {flag}; exec sleep 600"]
            [ready]
            exec = ["test", "-e", "{flag}"]
            interval = "50ms"
        """,
        "notify": f"""
            [service]
            type = "notify"
            command = {[PY, "-c", notify]!r}
        """,
        "job": """
            [service]
            type = "oneshot"
            command = ["sh", "-c", "sleep 0.2; echo job done"]
        """,
        "last": """
            [service]
            command = ["sh", "-c", "echo all ready; exec sleep 600"]
            [dependencies]
            requires = ["tcp", "http", "exec", "notify", "job"]
        """,
    }
    p = start(pidone, tmp_path, units)
    p.expect_line(r"^last \| all ready", timeout=20)
    text = p.stdout_text()
    for name in ("tcp", "http", "exec", "notify"):
        assert f"pidone | unit {name}: ready" in text
    assert text.index("job | job done") < text.index("unit last: started")
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


def test_start_timeout_fails_the_unit_and_skips_its_dependents(pidone, tmp_path):
    units = {
        "silent": """
            [service]
            type = "notify"
            command = ["sleep", "600"]
            [ready]
            timeout = "500ms"
            [restart]
            policy = "no"
        """,
        "needs": """
            [service]
            command = ["sleep", "600"]
            [dependencies]
            requires = ["silent"]
        """,
        "wants": """
            [service]
            command = ["sh", "-c", "echo wanted anyway; exec sleep 600"]
            [dependencies]
            wants = ["silent"]
        """,
    }
    p = start(pidone, tmp_path, units)
    p.expect_line(r"unit silent: not ready within 0.5s")
    p.expect_line(r"unit silent: failed: not ready within 0.5s")
    p.expect_line(r"unit needs: skipped: requires silent, which failed")
    p.expect_line(r"^wants \| wanted anyway")
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


def test_a_unit_ignoring_sigterm_is_killed_at_its_timeout_with_its_escaped_grandchild(pidone, tmp_path):
    script = "trap '' TERM; setsid sleep 600 & sleep 600 & echo started; wait"
    units = {
        "stubborn": f"""
            [service]
            command = ["sh", "-c", "{script}"]
            [stop]
            timeout = "1s"
        """,
    }
    p = start(pidone, tmp_path, units)
    p.expect_line(r"^stubborn \| started")
    p.wait_ready()
    p.kill(signal.SIGTERM)
    assert p.wait(timeout=15) == 1  # a unit had to be killed
    text = p.stdout_text()
    assert "unit stubborn: did not stop within 1s: sending SIGKILL" in text
    assert "unit stubborn: stopped" in text
    # Nothing was left for the final sweep: the setsid escapee died with its unit.
    assert "processes still running" not in text
    assert "some units had to be killed" in text


HANDOVER = """
import os, socket, sys, time
child = os.fork()
if child == 0:  # the daemon proper: a member of the unit's session
    time.sleep(float(sys.argv[1]))
    os._exit(3)
print("child", child, flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.send(f"MAINPID={child}".encode())
time.sleep(0.3)
if os.fork() == 0:  # READY=1 from another process of the session, which
    s.send(b"READY=1")  # stays a moment: a sender gone before pidone reads
    time.sleep(1)       # the datagram cannot be told from a stranger
    os._exit(0)
if sys.argv[2] == "stay":  # the launcher reaps the daemon itself
    os.waitpid(child, 0)
    print("reaped", flush=True)
    time.sleep(600)
os.wait()
time.sleep(0.3)
sys.exit(0)  # the launcher goes; the unit lives on in its child
"""


def handover(lifetime: float, launcher: str) -> str:
    return tomli_w.dumps({"service": {"type": "notify", "command": [PY, "-c", HANDOVER, str(lifetime), launcher]},
                          "restart": {"policy": "no"}, "stop": {"timeout": "5s"}})


def test_notify_from_a_session_member_and_a_mainpid_hand_over(pidone, tmp_path):
    p = start(pidone, tmp_path, {"handover": handover(600, "go")})
    launcher = int(re.search(rb"started \(pid (\d+)\)", p.find_line(r"unit handover: started")).group(1))
    child = int(p.find_line(r"^handover \| child ").split()[-1])
    p.find_line(r"unit handover: main process is now pid \d+ \(MAINPID\)")
    p.find_line(r"unit handover: ready", timeout=10)
    gone = f"for i in $(seq 200); do kill -0 {launcher} 2>/dev/null || exit 0; sleep 0.05; done; exit 1"
    assert p.run_inside(["sh", "-c", gone]).returncode == 0, "the launcher did not exit"
    socket_path = tmp_path / "run" / "private" / "control.sock"
    reply = json.loads(raw_request(socket_path, b'{"v": 1, "cmd": "status"}\n').splitlines()[0])
    [unit] = reply["result"]["units"]
    assert (unit["state"], unit["pid"], unit["orphans"]) == ("running", child, []), unit
    p.kill(signal.SIGTERM)
    assert p.wait() == 0, p.output()  # the child took SIGTERM: not killed at the stop timeout
    text = p.stdout_text()
    assert "unit handover: stopped" in text and "SIGKILL" not in text


def test_a_handed_over_main_reaped_by_its_launcher_is_still_seen_to_end(pidone, tmp_path):
    p = start(pidone, tmp_path, {"handover": handover(1.5, "stay")})
    p.find_line(r"unit handover: ready", timeout=10)
    p.find_line(r"^handover \| reaped", timeout=10)
    p.find_line(r"unit handover: main process \d+ was reaped by its parent; its exit status is unknown", timeout=5)
    p.find_line(r"unit handover: exited with status 0, leaving 1 process\(es\) behind")
    p.kill(signal.SIGTERM)
    assert p.wait() == 0, p.output()


def test_four_hundred_units_under_a_soft_fd_limit_of_1024_all_start(pidone, tmp_path):
    # Docker 25+ and containerd 2 give containers a soft limit of 1024: 400
    # units need more fds than that, so pidone raises its own and gives each
    # unit the original back.
    import resource

    from pidone_harness import reset_signals

    def soft_1024() -> None:
        reset_signals()
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    units = {f"u{i}": '[service]\ncommand = ["sleep", "600"]\n' for i in range(400)}
    p = start(pidone, tmp_path, units, preexec_fn=soft_1024)
    p.wait_count(r"unit u\d+: started", 400, timeout=60)
    assert "unable to spawn" not in p.stdout_text()
    limits = p.run_inside(["sh", "-c", "cat /proc/$(pgrep -o -x sleep)/limits"]).stdout.decode()
    soft = next(line.split()[3] for line in limits.splitlines() if line.startswith("Max open files"))
    assert soft == "1024", limits
    p.kill(signal.SIGTERM)
    assert p.wait(timeout=60) == 0


def test_running_out_of_fds_fails_the_starts_with_the_reason_and_pidone_goes_on(pidone, tmp_path):
    # A hard limit pidone cannot raise: 60 units need more fds than 96.
    import resource

    from pidone_harness import reset_signals

    def only_96_fds() -> None:
        reset_signals()
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    units = {f"u{i:02}": '[service]\ncommand = ["sleep", "600"]\n[restart]\npolicy = "no"\n' for i in range(60)}
    p = start(pidone, tmp_path, units, preexec_fn=only_96_fds)
    p.find_line(r"unit u\d+: failed: unable to create the log pipes: Too many open files", timeout=30)
    p.wait_count(r"unit u\d+: (started|failed)", 60, timeout=30)
    assert p.count_lines(r"unit u\d+: started") >= 10  # the first ones got their fds
    p.kill(signal.SIGTERM)
    assert p.wait(timeout=30) == 0, p.output()
    assert "Traceback" not in p.output()


def test_shutdown_runs_in_reverse_dependency_order(pidone, tmp_path):
    def svc(deps=""):
        return f"""
            [service]
            command = ["sh", "-c", "echo up; exec sleep 600"]
            [dependencies]
            {deps}
        """

    units = {"a": svc(), "b": svc('requires = ["a"]'), "c": svc('after = ["b"]')}
    p = start(pidone, tmp_path, units)
    p.expect_line(r"^c \| up")
    p.wait_ready()
    p.kill(signal.SIGTERM)
    assert p.wait() == 0
    stops = re.findall(r"unit (\w): stopped", p.stdout_text())
    assert stops == ["c", "b", "a"]


def test_critical_unit_ends_the_container_with_its_status(pidone, tmp_path):
    units = {
        "job": """
            [service]
            type = "oneshot"
            critical = true
            command = ["sh", "-c", "echo working; exit 42"]
        """,
        "bystander": """
            [service]
            command = ["sleep", "600"]
        """,
    }
    p = start(pidone, tmp_path, units)
    assert p.wait(timeout=20) == 42
    assert "critical unit job failed: exited with status 42" in p.stdout_text()
    assert "unit bystander: stopped" in p.stdout_text()


@pytest.mark.parametrize(
    "service, message",
    [
        ('command = ["/no/such/binary"]', "unit broken: unable to spawn /no/such/binary: No such file or directory"),
        ('command = ["no-such-command-xyz"]', "unit broken: unable to spawn no-such-command-xyz: No such file or directory"),
        ('command = ["true"]\nworking_directory = "/no/such/dir"',
         "unit broken: unable to change to directory /no/such/dir: No such file or directory"),
        ('command = ["true"]\nuser = "no-such-user-xyz"', "unit broken: unable to find user 'no-such-user-xyz': no such user"),
    ],
)
def test_spawn_failures_name_the_stage_and_the_reason(pidone, tmp_path, service, message):
    units = {"broken": f"[service]\n{service}\n[restart]\npolicy = \"no\"\n"}
    p = start(pidone, tmp_path, units)
    p.expect_line(re.escape(message))
    p.expect_line(r"unit broken: failed: ")
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


def test_invalid_unit_files_at_boot_exit_2_before_anything_starts(pidone, tmp_path):
    units = {
        "good": '[service]\ncommand = ["sh", "-c", "echo SHOULD-NOT-RUN"]\n',
        "bad1": '[service]\ncommand = 42\n',
        "bad2": '[service]\ncommand = ["x"]\nusr = "nobody"\n',
    }
    p = start(pidone, tmp_path, units)
    assert p.wait() == 2
    text = p.stdout_text()
    assert "bad1.toml" in text and "bad2.toml" in text
    assert "SHOULD-NOT-RUN" not in text and "unit good: started" not in text
    assert "nothing was started" in text


# glibc's posix_spawn sets its own internal signals (32 SIGCANCEL, 33
# SIGSETXID) to ignored in every child it creates, whatever is asked; every
# libc and runtime installs its own handlers for them, so they are left out.
GLIBC_INTERNAL = (1 << 31) | (1 << 32)


def test_units_get_a_clean_slate(pidone, tmp_path):
    """Empty mask, nothing ignored, only fds 0-2, own session, stdin
    /dev/null and PIDONE_UNIT set. grep reports its own signal state (a
    Python child would ignore SIGPIPE and SIGXFSZ itself)."""
    identity = (
        "import os; print('fds', sorted(int(f) for f in os.listdir('/proc/self/fd')), "
        "'sid', os.getsid(0) == os.getpid(), 'unit', os.environ.get('PIDONE_UNIT'), "
        "'stdin', os.readlink('/proc/self/fd/0'), flush=True)"
    )
    script = f"grep -E '^Sig(Blk|Ign)' /proc/self/status; exec {PY} -c \"$0\""
    units = {"clean": tomli_w.dumps({"service": {"type": "oneshot", "command": ["sh", "-c", script, identity]}})}
    p = start(pidone, tmp_path, units)
    p.find_line(r"^clean \| fds")
    p.kill(signal.SIGTERM)
    p.wait()
    text = p.stdout_text()
    blocked = int(re.search(r"clean \| SigBlk:\t(\w+)", text).group(1), 16)
    ignored = int(re.search(r"clean \| SigIgn:\t(\w+)", text).group(1), 16)
    assert blocked == 0
    assert ignored & ~GLIBC_INTERNAL == 0, hex(ignored)
    assert "clean | fds [0, 1, 2, 3] sid True unit clean stdin /dev/null" in text  # 3: listdir's own


def test_another_pidones_processes_with_the_same_unit_name_are_never_touched(pidone, tmp_path):
    """Two pidones in one PID namespace (host mode): a stop timeout's
    SIGKILL reaches only this pidone's own processes, not the other's
    process tagged with the same unit name."""
    stranger = subprocess.Popen(["sleep", "600"], env={**os.environ, "PIDONE_UNIT": "stubborn"})
    try:
        units = {"stubborn": """
            [service]
            command = ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done"]
            [stop]
            timeout = "500ms"
        """}
        directory = write_units(tmp_path / "units", units)
        p = pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run")], namespace=False)
        p.find_line(r"^stubborn \| ready")
        p.wait_ready()
        p.kill(signal.SIGTERM)
        assert p.wait(timeout=20) == 1
        assert "did not stop within 0.5s" in p.stdout_text()
        assert stranger.poll() is None, "another pidone's process was killed"
    finally:
        stranger.kill()
        stranger.wait()


def test_pidone_as_the_first_argument_is_skipped(pidone):
    """`docker run IMAGE pidone -- sh` with ENTRYPOINT ["pidone"]."""
    p = pidone(["pidone", "--units", "/nonexistent", "--", "sh", "-c", "exit 4"])
    assert p.wait() == 4

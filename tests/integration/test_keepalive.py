"""Keeping services alive, as PID 1: restart policies by exit kind, the
backoff sequence, max_retries and reset_after, crash loops beside a canary,
exec health probes during an orphan storm, orphans of double-forking
daemons, leak checks over many restarts."""

from __future__ import annotations

import re
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest
import tomli_w

PY = sys.executable


def start(pidone, tmp_path: Path, units: dict[str, dict], *extra, **kwargs):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    return pidone(["--units", str(directory), "--runtime-dir", str(tmp_path / "run"), *extra], **kwargs)


def stop(p) -> int:
    p.wait_ready()
    p.kill(signal.SIGTERM)
    return p.wait(timeout=30)


CANARY = {"service": {"command": [PY, "-u", "-c",
                                  "import time\nn = 0\nwhile True:\n    n += 1\n    print('beat', n)\n    time.sleep(0.05)"]}}


def assert_canary_intact(p, max_gap: float = 0.2) -> None:
    """Every beat arrived, in order, and no two arrived more than `max_gap` apart."""
    beats = [(t, int(line.split()[-1])) for t, line in zip(list(p.stdout_times), list(p.stdout))
             if line.startswith(b"canary | beat ")]
    assert len(beats) > 10, "the canary never got going"
    numbers = [n for _, n in beats]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "canary lines are missing"
    gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:])]
    assert max(gaps) <= max_gap, f"canary gap of {max(gaps) * 1000:.0f} ms"


# -- policy x exit kind ---------------------------------------------------------

EXIT_KINDS = {
    "exit-0": {"service": {"command": ["sh", "-c", "echo run; exit 0"]}},
    "exit-1": {"service": {"command": ["sh", "-c", "echo run; exit 1"]}},
    "sigkill": {"service": {"command": ["sh", "-c", "echo run; kill -KILL $$$$"]}},  # $$$$: the shell's $$ (SPEC §12)
    "ready-timeout": {"service": {"command": ["sh", "-c", "echo run; exec sleep 600"]},
                      "ready": {"tcp": "127.0.0.1:1", "timeout": "300ms", "interval": "50ms"}},
    "health": {"service": {"command": ["sh", "-c", "echo run; exec sleep 600"]},
               "health": {"exec": ["false"], "interval": "50ms", "timeout": "1s", "retries": 2}},
    "spawn-failure": {"service": {"command": ["/no/such/binary"]}},
}


@pytest.mark.parametrize("policy", ["no", "on-failure", "always"])
@pytest.mark.parametrize("kind", sorted(EXIT_KINDS))
def test_restart_policy_by_exit_kind(pidone, tmp_path, policy, kind):
    unit = {**EXIT_KINDS[kind], "restart": {"policy": policy, "delay": "50ms", "max_retries": 1}}
    p = start(pidone, tmp_path, {"svc": unit})
    restarts = policy == "always" or (policy == "on-failure" and kind != "exit-0")
    if restarts:
        p.find_line(r"unit svc: .*restarting in 0\.05s")
        if kind == "exit-0":
            p.wait_count(r"unit svc: started", 2)  # a clean exit is no failure: it goes on
        else:
            p.find_line(r"unit svc: failed: .*gave up after 1 restarts")
    else:
        p.find_line(r"unit svc: (failed: |exited with status 0$)")
        assert p.count_lines(r"restarting in") == 0
    assert stop(p) == 0


def test_backoff_sequence_follows_the_configured_delays(pidone, tmp_path):
    unit = {
        "service": {"command": [PY, "-S", "-c", "import time; print('start', time.monotonic(), flush=True); raise SystemExit(1)"]},
        "restart": {"delay": "100ms", "max_delay": "400ms", "max_retries": 5},
    }
    p = start(pidone, tmp_path, {"svc": unit})
    p.find_line(r"unit svc: failed: .*gave up after 5 restarts", timeout=20)
    starts = [float(line.split()[-1]) for line in p.stdout if line.startswith(b"svc | start ")]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    expected = [0.1, 0.2, 0.4, 0.4, 0.4]
    assert len(gaps) == len(expected)
    for gap, delay in zip(gaps, expected):
        # The gap also holds one short run and one spawn (tens of ms at most).
        assert delay <= gap <= delay + 0.05, (gaps, expected)
    assert stop(p) == 0


def test_a_critical_unit_that_gives_up_ends_the_container_with_its_status(pidone, tmp_path):
    unit = {"service": {"command": ["sh", "-c", "exit 7"], "critical": True},
            "restart": {"delay": "10ms", "max_retries": 2}}
    p = start(pidone, tmp_path, {"core": unit, "other": {"service": {"command": ["sleep", "600"]}}})
    assert p.wait(timeout=20) == 7
    text = p.stdout_text()
    assert text.count("unit core: started") == 3
    assert "critical unit core failed: exited with status 7; gave up after 2 restarts" in text


def test_a_run_longer_than_reset_after_resets_the_backoff(pidone, tmp_path):
    unit = {"service": {"command": ["sh", "-c", "sleep 0.3; exit 1"]},
            "restart": {"delay": "100ms", "max_retries": 2, "reset_after": "200ms"}}
    p = start(pidone, tmp_path, {"svc": unit})
    p.wait_count(r"unit svc: exited with status 1; restarting in 0\.1s \(failure 1 of 3\)", 4, timeout=20)
    assert p.count_lines(r"gave up") == 0
    assert stop(p) == 0


def test_twenty_crash_loops_do_not_delay_the_canary(pidone, tmp_path):
    crasher = {"service": {"command": ["sh", "-c", "exit 1"]},
               "restart": {"delay": "20ms", "max_delay": "100ms", "max_retries": 0}}
    units = {f"crash{i:02}": crasher for i in range(20)}
    units["canary"] = CANARY
    p = start(pidone, tmp_path, units)
    p.wait_count(r"^canary \| beat ", 60, timeout=20)
    assert p.count_lines(r"unit crash\d\d: started") > 100
    assert stop(p) == 0
    assert_canary_intact(p)


ORPHAN_STORM = """
import os, time
first = True
while True:
    r, w = os.pipe()
    for _ in range(5000):
        if os.fork() == 0:
            if os.fork() == 0:
                os.close(w); os.read(r, 1); os._exit(0)
            os._exit(0)
        os.waitpid(-1, 0)
    if first:  # the health probes start now; the first storm breaks 0.3 s later
        open(os.environ["ARMED"], "w").close()
        time.sleep(0.3)
        first = False
    os.close(r); os.close(w)   # 5,000 orphans exit at once, into PID 1
    print("storm", flush=True)
"""


def test_an_exec_probe_failing_during_an_orphan_storm_is_never_counted_as_passing(pidone, tmp_path):
    """50 probe results in a row must all be failures: one mistaken pass
    (another child's status credited to the probe) would reset the count.
    The probes start before the first storm breaks and need over a second
    to fail 50 times, so the storm hits them."""
    armed = str(tmp_path / "armed")
    units = {
        "storm": {"service": {"command": [PY, "-c", ORPHAN_STORM], "environment": {"ARMED": armed}},
                  "ready": {"path": armed, "interval": "10ms", "timeout": "60s"}},
        "sick": {"service": {"command": ["sleep", "600"]},
                 "dependencies": {"requires": ["storm"]},
                 "health": {"exec": ["sh", "-c", "exit 3"], "interval": "20ms", "timeout": "2s", "retries": 50},
                 "restart": {"policy": "no"}},
    }
    p = start(pidone, tmp_path, units, timeout=120)
    failed = p.find_line(r"unit sick: health check failed: sh exited with status 3 \(50 times in a row\)", timeout=90)
    lines = list(p.stdout)
    assert lines.index(p.find_line(r"^storm \| storm")) < lines.index(failed), "the storm broke while probes ran"
    assert stop(p) in (0, 1)


def test_a_double_forking_daemon_leaves_an_orphan_that_dies_with_its_unit(pidone, tmp_path):
    unit = {"service": {"command": ["sh", "-c", "sleep 600 & echo forked; exit 0"]}, "restart": {"policy": "always", "delay": "100ms", "max_retries": 0}}
    p = start(pidone, tmp_path, {"daemon": unit})
    p.wait_count(r"unit daemon: started", 3)
    p.find_line(r"unit daemon: exited with status 0, leaving 1 process\(es\) behind")
    # Each restart first stops what the previous run left: one sleeper at a time.
    sleepers = p.run_inside(["sh", "-c", "ps -eo args | grep -c '^sleep 600'"]).stdout.strip()
    assert sleepers in (b"0", b"1")
    assert stop(p) == 0
    assert "processes still running" not in p.stdout_text()


def test_leftovers_are_found_below_a_process_that_left_the_session(pidone, tmp_path):
    # The inner sh starts `sleep 601` (in the unit's session), then becomes
    # `sleep 602` in a session of its own: the unit's leftover hangs below a
    # process that is not the unit's, and must still be found.
    script = "sh -c 'sleep 601 & exec setsid sleep 602' & sleep 0.5; exit 0"
    unit = {"service": {"command": ["sh", "-c", script]}, "restart": {"policy": "no"}}
    p = start(pidone, tmp_path, {"daemon": unit, "idle": {"service": {"command": ["sleep", "600"]}}})
    p.find_line(r"unit daemon: exited with status 0, leaving 1 process\(es\) behind")
    args = p.run_inside(["ps", "-eo", "args"]).stdout.split(b"\n")
    assert b"sleep 601" in args and b"sleep 602" in args
    assert stop(p) == 0


def test_restart_kills_the_previous_runs_orphans_before_spawning(pidone, tmp_path):
    script = "python3 -c 'import socket, time; s = socket.socket(); s.bind((\"127.0.0.1\", 18777)); s.listen(); time.sleep(600)' & sleep 0.2; echo bound; exit 1"
    unit = {"service": {"command": ["sh", "-c", script]},
            "restart": {"delay": "50ms", "max_retries": 3}}
    p = start(pidone, tmp_path, {"binder": unit})
    p.wait_count(r"^binder \| bound", 4, timeout=20)
    # Had an old listener survived, the next one could not bind the port.
    assert "Address already in use" not in p.stdout_text()
    assert stop(p) == 0


def test_a_fork_bomb_as_nobody_is_contained_and_fully_killed(pidone, tmp_path):
    # Perl, not Python: nobody cannot read this test run's interpreter.
    bomb = ('$| = 1; my $n = 0; while (1) { my $pid = fork; if (!defined $pid) { print "contained at $n\\n"; last } '
            'if ($pid == 0) { sleep 600; exit 0 } $n++ } sleep 600;')
    unit = {"service": {"command": ["perl", "-e", bomb], "user": "nobody"},
            "limits": {"nproc": 64}, "stop": {"timeout": "2s"}}
    p = start(pidone, tmp_path, {"bomb": unit}, timeout=60)
    p.find_line(r"^bomb \| contained at", timeout=30)
    count = p.run_inside(["sh", "-c", "ps -o uid= -e | grep -c 65534"]).stdout.strip()
    assert 0 < int(count) <= 64
    assert stop(p) in (0, 1)
    assert "unit bomb: stopped" in p.stdout_text()


def test_the_execution_environment_is_applied(pidone, tmp_path):
    script = ("grep -E '^(Uid|Gid|Groups|CapBnd|CapAmb|NoNewPrivs|Umask):' /proc/self/status; pwd; ulimit -n; "
              # Perl, not Python: nobody cannot read this test run's interpreter.
              "perl -e 'use Socket; socket(S, PF_INET, SOCK_STREAM, 0) or die; "
              "bind(S, sockaddr_in(80, inet_aton(\"127.0.0.1\"))) or die \"bind: $!\"; print \"bound 80\\n\"'; "
              "perl -e 'use Socket; socket(R, PF_INET, SOCK_RAW, 1) or print \"raw: $!\\n\"'; "
              "echo HOME=$HOME USER=$USER FROM_FILE=$FROM_FILE SET=$SET")
    env_file = tmp_path / "app.env"
    env_file.write_text("# a comment\nFROM_FILE='file value'\n\n")
    env_file.chmod(0o644)
    unit = {
        "service": {"type": "oneshot", "command": ["sh", "-c", script], "user": "nobody", "group": "nogroup",
                    "supplementary_groups": ["users"], "umask": "0027", "working_directory": "/tmp",
                    "environment_files": [str(env_file), "-/no/such/optional.env"], "environment": {"SET": "yes"}},
        "limits": {"nofile": 1234, "no_new_privileges": True, "capabilities": ["CAP_NET_BIND_SERVICE"]},
    }
    p = start(pidone, tmp_path, {"env": unit})
    p.find_line(r"^env \| HOME=")
    text = p.stdout_text()
    assert stop(p) == 0
    assert "env | Uid:\t65534\t65534\t65534\t65534" in text
    assert "env | Gid:\t65534\t65534\t65534\t65534" in text
    assert re.search(r"env \| Groups:\t100 ?\n", text)
    assert "env | CapBnd:\t0000000000000400" in text  # only CAP_NET_BIND_SERVICE (10)
    assert "env | CapAmb:\t0000000000000400" in text
    assert "env | NoNewPrivs:\t1" in text
    assert "env | Umask:\t0027" in text
    assert "env | /tmp\n" in text and "env | 1234\n" in text
    assert "env | bound 80" in text
    assert "env | raw: Operation not permitted" in text  # and nothing more than that
    assert "env | HOME=/nonexistent USER=nobody FROM_FILE=file value SET=yes" in text


def test_a_missing_environment_file_is_a_spawn_failure(pidone, tmp_path):
    unit = {"service": {"command": ["true"], "environment_files": ["/no/such/app.env"]}, "restart": {"policy": "no"}}
    p = start(pidone, tmp_path, {"svc": unit})
    p.find_line(r"unit svc: unable to read environment file /no/such/app.env: No such file or directory")
    assert stop(p) == 0


@pytest.mark.slow
def test_a_thousand_restarts_leak_no_fd_and_no_memory(pidone, tmp_path):
    _restart_leak_check(pidone, tmp_path, warmup=100, restarts=1000)


def test_restarts_leak_no_fd_and_no_memory(pidone, tmp_path):
    _restart_leak_check(pidone, tmp_path, warmup=50, restarts=300)


def _restart_leak_check(pidone, tmp_path, warmup: int, restarts: int) -> None:
    unit = {"service": {"command": ["sh", "-c", "echo x; exit 1"]},
            "restart": {"delay": 0, "max_retries": 0}}
    p = start(pidone, tmp_path, {"flap": unit, "canary": CANARY}, timeout=300)
    p.wait_count(r"unit flap: started", warmup, timeout=60)
    fds, rss = p.settled_fd_count(), p.rss_kib()
    p.wait_count(r"unit flap: started", warmup + restarts, timeout=240)
    assert abs(p.settled_fd_count() - fds) <= 2
    assert p.rss_kib() - rss <= 2048, f"RSS grew {p.rss_kib() - rss} KiB over {restarts} restarts"
    assert stop(p) == 0


def test_exec_probes_run_as_the_unit(pidone, tmp_path):
    """A health probe runs with the unit's user and environment, untagged."""
    shared = Path(tempfile.mkdtemp(prefix="pidone-probe-"))  # nobody cannot enter pytest's tmp
    shared.chmod(0o777)
    record = shared / "identity"
    probe = f"id -u > {record}.tmp; echo \"$GREETING ${{PIDONE_UNIT:-untagged}}\" >> {record}.tmp; mv {record}.tmp {record}; exit 1"
    unit = {"service": {"command": ["sleep", "600"], "user": "nobody", "environment": {"GREETING": "hello"}},
            "health": {"exec": ["sh", "-c", probe], "interval": "50ms", "retries": 1},
            "restart": {"policy": "no"}}
    try:
        p = start(pidone, tmp_path, {"svc": unit})
        p.find_line(r"unit svc: health check failed")
        assert record.read_text().split() == ["65534", "hello", "untagged"]
        assert stop(p) == 0
    finally:
        shutil.rmtree(shared)

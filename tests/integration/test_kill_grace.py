"""`--kill-grace` / PIDONE_KILL_GRACE as PID 1: the time leftovers get
between the final SIGTERM and SIGKILL, and how a bad value is refused."""

from __future__ import annotations

import os
import re
import time

import pytest

from pidone_harness import python_cmd

NO_UNITS = ["--units", "/nonexistent/units"]
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('stubborn', flush=True); time.sleep(600)"
# The main command leaves a process that ignores SIGTERM behind, and exits 7.
LEAVES_A_STUBBORN_ONE = (
    "import subprocess, sys\n"
    f"stubborn = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}], stdout=subprocess.PIPE)\n"
    "print(stubborn.stdout.readline().decode().strip(), flush=True)\n"
    "sys.exit(7)\n"
)


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_short_kill_grace_kills_a_stubborn_leftover_sooner(pidone, how):
    args, env = [*NO_UNITS], dict(os.environ)
    if how == "flag":
        args += ["--kill-grace", "0.3"]
    else:
        env["PIDONE_KILL_GRACE"] = "0.3"
    p = pidone([*args, "--", *python_cmd(LEAVES_A_STUBBORN_ONE)], env=env)
    p.expect_line("stubborn")
    started = time.monotonic()
    assert p.wait(timeout=20) == 7
    elapsed = time.monotonic() - started
    lines = p.stderr_text().splitlines()
    kill = [i for i, line in enumerate(lines) if "processes still running 0.3s after SIGTERM: sending SIGKILL" in line]
    end = [i for i, line in enumerate(lines) if "exiting with status 7: main command exited with status 7" in line]
    assert kill and end and kill[0] < end[0], lines
    # A bound, not a synchronisation: the default grace alone is 2 s.
    assert elapsed < 2.0, f"took {elapsed:.2f}s"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--kill-grace", "soon"], {}, "--kill-grace must be a number of seconds, not 'soon'"),
        (["--kill-grace", "-1"], {}, "--kill-grace must be a finite number >= 0, not '-1'"),
        (["--kill-grace=nan"], {}, "--kill-grace must be a finite number >= 0, not 'nan'"),
        (["--kill-grace", "1e12"], {}, "--kill-grace must be at most one year (31536000 s), not '1e12'"),
        ([], {"PIDONE_KILL_GRACE": "2 s"}, "--kill-grace must be a number of seconds, not '2 s'"),
    ],
)
def test_a_bad_kill_grace_is_a_usage_error(pidone, args, env, message):
    p = pidone([*NO_UNITS, *args, "--", "true"], env={**os.environ, **env}, namespace=False)
    assert p.wait() == 2
    assert re.search(rf"^pidone: {re.escape(message)}$", p.stderr_text(), re.M), p.stderr_text()
    assert "pidone --help" in p.stderr_text()

"""pidone as PID 1 with units (no main command): every catchable signal is
survived except SIGTERM and SIGINT, which end it cleanly with status 0; a
signal never escapes as a Python exception."""

from __future__ import annotations

import signal

import pytest

from pidone_harness import proc_status

ENDING = {signal.SIGTERM, signal.SIGINT}
UNCATCHABLE = {signal.SIGKILL, signal.SIGSTOP}


def _sweep_code(signals: list[int], times: int) -> str:
    return f"import os\nfor s in {signals!r}:\n    for _ in range({times}):\n        os.kill(1, s)\nprint('sent')\n"


def _assert_alive(p) -> None:
    state = proc_status(p.pid1).get("State", "")
    assert state and not state.startswith(("Z", "X", "T")), f"PID 1 state {state!r}: {p.output()}"


@pytest.mark.parametrize("origin", ["inside", "host"])
def test_every_standard_signal_ten_times_leaves_pid1_alive(pidone, tmp_path, origin):
    units = tmp_path / "units"
    units.mkdir()
    p = pidone(["--units", str(units)]).wait_ready()
    survivable = [s for s in range(1, 32) if s not in ENDING | UNCATCHABLE]
    if origin == "inside":
        # From inside the namespace even SIGKILL and SIGSTOP are dropped by the kernel.
        result = p.run_inside(["python3", "-c", _sweep_code(survivable + [int(s) for s in sorted(UNCATCHABLE)], 10)])
        assert result.stdout.strip() == b"sent", result.stderr
    else:
        for signum in survivable:
            for _ in range(10):
                p.kill(signum)
    _assert_alive(p)
    p.kill(signal.SIGTERM)
    assert p.wait(timeout=20) == 0
    assert "Traceback" not in p.output()
    assert "received SIGTERM" in p.stdout_text()


@pytest.mark.parametrize("signum", sorted(ENDING))
def test_sigterm_and_sigint_end_it_with_status_0(pidone, tmp_path, signum):
    units = tmp_path / "units"
    units.mkdir()
    p = pidone(["--units", str(units)]).wait_ready()
    p.kill(signum)
    assert p.wait(timeout=20) == 0
    out = p.output()
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert f"exiting with status 0: received {signal.Signals(signum).name}" in p.stdout_text()


def test_nothing_to_run_exits_2(pidone):
    p = pidone(["--units", "/nonexistent/units"])
    assert p.wait() == 2
    assert "nothing to run" in p.stderr_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--log-format", "xml"], "--log-format must be 'text' or 'json'"),
        (["--stop-delay", "soon"], "--stop-delay must be a number"),
        (["--stop-delay", "-1"], "--stop-delay must be a finite number >= 0"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["frobnicate"], "unknown subcommand 'frobnicate'"),
        (["--units"], "option --units needs a value"),
        (["--"], "nothing after '--'"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(pidone, args, message):
    p = pidone(args, namespace=False)
    assert p.wait() == 2
    assert message in p.stderr_text()
    assert "pidone --help" in p.stderr_text()

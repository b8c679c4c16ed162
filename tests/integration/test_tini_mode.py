"""Tini mode as PID 1: `pidone -- CMD` runs CMD, forwards signals to it and
exits with its status; exec failures give 126/127 with a reason; argv,
environment, signal state and fds reach CMD exactly as pidone got them."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time

import pytest

from pidone_harness import python_cmd

NO_UNITS = ["--units", "/nonexistent/units"]


@pytest.mark.parametrize("status", [0, 1, 42, 255])
def test_exit_status_passes_through(pidone, status):
    p = pidone([*NO_UNITS, "--", "sh", "-c", f"exit {status}"])
    assert p.wait() == status
    assert f"exiting with status {status}" in p.stderr_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1, signal.SIGSEGV, signal.SIGABRT])
def test_killed_by_signal_gives_128_plus_n(pidone, signum):
    p = pidone([*NO_UNITS, "--", "sh", "-c", f"kill -{int(signum)} $$"])
    assert p.wait() == 128 + signum
    assert f"killed by {signum.name}" in p.stderr_text()


def test_command_not_found_exits_127_naming_it(pidone):
    p = pidone([*NO_UNITS, "--", "no-such-command-xyz", "arg"])
    assert p.wait() == 127
    assert "cannot run 'no-such-command-xyz': No such file or directory" in p.stderr_text()


def test_command_not_executable_exits_126_naming_it(pidone, tmp_path):
    script = tmp_path / "not-exec"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    p = pidone([*NO_UNITS, "--", str(script)])
    assert p.wait() == 126
    assert f"cannot run '{script}': Permission denied" in p.stderr_text()


def test_a_directory_as_command_exits_126(pidone, tmp_path):
    p = pidone([*NO_UNITS, "--", str(tmp_path)])
    assert p.wait() == 126
    assert "cannot run" in p.stderr_text()


FORWARDED = [
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGQUIT,
    signal.SIGWINCH,
    signal.SIGRTMIN + 3,
]

# A main command that reports every signal it receives and exits once it has
# seen all those named in argv.
RECORDER = """
import os, signal, sys
wanted = {int(a) for a in sys.argv[1:]}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
print("ready", flush=True)
while wanted:
    info = signal.sigwaitinfo(wanted | {signal.SIGALRM})
    print("got", info.si_signo, "from", info.si_pid, flush=True)
    wanted.discard(info.si_signo)
"""


def test_signals_are_forwarded_to_the_main_command(pidone):
    p = pidone([*NO_UNITS, "--", *python_cmd(RECORDER), *(str(int(s)) for s in FORWARDED)])
    p.expect_line("ready")
    p.wait_ready()
    for signum in FORWARDED:
        p.kill(signum)
        # The sender seen by the child is PID 1 (pidone), not the host.
        p.expect_line(rf"^got {int(signum)} from 1$")
    assert p.wait() == 0


def test_sigchld_is_not_forwarded(pidone):
    p = pidone([*NO_UNITS, "--", *python_cmd(RECORDER), str(int(signal.SIGCHLD)), str(int(signal.SIGUSR1))])
    p.expect_line("ready")
    p.wait_ready()
    p.kill(signal.SIGCHLD)
    p.kill(signal.SIGUSR1)
    # USR1 was sent after CHLD; had CHLD been forwarded it would arrive first.
    line = p.expect_line("^got")
    assert line.startswith(f"got {int(signal.SIGUSR1)} ".encode())
    p.kill(signal.SIGKILL)  # SIGKILL from the host ends the namespace
    p.wait()


def test_child_ignoring_sigterm_keeps_pidone_waiting(pidone):
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGUSR1, lambda *a: print('usr1', flush=True))\n"
        "print('ready', flush=True)\n"
        "while True: time.sleep(60)\n"
    )
    p = pidone([*NO_UNITS, "--", *python_cmd(code)])
    p.expect_line("ready")
    p.wait_ready()
    p.kill(signal.SIGTERM)
    p.kill(signal.SIGUSR1)
    p.expect_line("usr1")  # forwarded in order: TERM reached it and was ignored
    assert p.proc.poll() is None
    child = int(_children(p.pid1)[0])
    os.kill(child, signal.SIGKILL)
    assert p.wait() == 128 + signal.SIGKILL


def _children(pid: int) -> list[str]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return f.read().split()


ORPHANS = """
import os, sys, time
n = int(sys.argv[1])
r, w = os.pipe()
for _ in range(n):
    if os.fork() == 0:
        if os.fork() == 0:        # the grandchild: orphaned at once
            os.close(w)
            os.read(r, 1)         # all exit together when the pipe closes
            os._exit(0)
        os._exit(0)
    os.waitpid(-1, 0)             # reap the middle child ourselves
os.close(r)
print("spawned", flush=True)
os.close(w)                       # release every grandchild at once
def zombies():
    count = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        count += 1
            except OSError:
                pass
    return count
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    left = len([p for p in os.listdir("/proc") if p.isdigit()]) - 2  # pidone and us
    if left <= 0 and zombies() == 0:
        print("all reaped", flush=True)
        sys.exit(0)
    time.sleep(0.01)
print("left", left, "zombies", zombies(), flush=True)
sys.exit(1)
"""


def test_a_thousand_orphans_are_reaped(pidone):
    p = pidone([*NO_UNITS, "--", *python_cmd(ORPHANS), "1000"], timeout=60)
    p.expect_line("spawned", timeout=30)
    p.expect_line("all reaped", timeout=25)
    assert p.wait() == 0


def test_ctrl_c_on_a_terminal_reaches_the_command(tmp_path):
    """With stdin a terminal, the command is the foreground process group:
    Ctrl-C (written to the pty) kills it with SIGINT, pidone exits 130."""
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-m", "pidone",
            *NO_UNITS, "--", "sh", "-c", "echo ready; exec sleep 60"]
    pid, master = pty.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    try:
        output = _read_pty_until(master, b"ready", timeout=15)
        assert b"ready" in output
        os.write(master, b"\x03")
        _, status = _waitpid_timeout(pid, 15)
        assert os.waitstatus_to_exitcode(status) == 130
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(master)


def _read_pty_until(fd: int, needle: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data += os.read(fd, 4096)
            except OSError:
                break
    return data


def _waitpid_timeout(pid: int, timeout: float) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return done, status
        time.sleep(0.01)
    raise AssertionError(f"pid {pid} did not exit within {timeout}s")


def test_not_pid1_becomes_a_subreaper(pidone, tmp_path):
    """Outside a namespace, an orphaned grandchild is reparented to pidone."""
    done = tmp_path / "done"
    orphan = (
        "import os, pathlib, sys, time\n"
        "time.sleep(0.2)  # let the subshell that started us exit first\n"
        "print('orphan-ppid', os.getppid(), flush=True)\n"
        "pathlib.Path(sys.argv[1]).touch()\n"
    )
    # The subshell starts the orphan in the background and exits at once;
    # the main command lives until the orphan has reported.
    script = f"({sys.executable} -c \"$0\" {done} &); while [ ! -e {done} ]; do sleep 0.02; done"
    p = pidone([*NO_UNITS, "--", "sh", "-c", script, orphan], namespace=False)
    line = p.expect_line("orphan-ppid", timeout=15)
    assert int(line.split()[1]) == p.proc.pid
    assert p.wait() == 0
    assert "not running as PID 1" in p.stderr_text()
    assert "child subreaper" in p.stderr_text()


def test_argv_and_environment_pass_byte_exact(pidone):
    code = (
        "import os, sys\n"
        "sys.stdout.buffer.write(repr([os.fsencode(a) for a in sys.argv[1:]]).encode() + b'\\n')\n"
        "sys.stdout.buffer.write(repr(os.environb.get(b'ODD')).encode() + b'\\n')\n"
        "sys.stdout.buffer.write(repr(os.environb.get(b'SPACED')).encode() + b'\\n')\n"
    )
    args = [b"plain", b"with space", b"\xff\xfe-not-utf8", b"", b"--", b"-x"]
    env = {**os.environ, b"ODD": b"\xc3\x28\xff", b"SPACED": b" a  b "}
    env = {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    p = pidone([*NO_UNITS, "--", sys.executable, "-c", code, *args], env=env)
    assert p.wait() == 0
    lines = p.stdout_text().splitlines()
    assert lines[0] == repr(args)
    assert lines[1] == repr(b"\xc3\x28\xff")
    assert lines[2] == repr(b" a  b ")


def test_cwd_umask_and_stdio_pass_unchanged(pidone, tmp_path):
    code = "import os; old = os.umask(0); print(os.getcwd(), oct(old))"

    def preexec():
        from pidone_harness import reset_signals

        reset_signals()
        os.umask(0o027)

    p = pidone([*NO_UNITS, "--", *python_cmd(code)], cwd=str(tmp_path), preexec_fn=preexec)
    assert p.wait() == 0
    assert p.stdout_text().split() == [str(tmp_path), "0o27"]


def test_signal_mask_and_ignored_signals_are_those_pidone_started_with(pidone):
    """pidone handles every signal itself, but the command starts with the
    mask and ignores that pidone inherited (and nothing else)."""
    # grep reports its own status; a Python command would ignore SIGPIPE
    # and SIGXFSZ itself and spoil the reading.
    command = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]

    def preexec():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, [signal.SIGUSR1, signal.SIGWINCH])

    p = pidone([*NO_UNITS, "--", *command], preexec_fn=preexec)
    assert p.wait() == 0
    fields = dict(line.split(":\t") for line in p.stdout_text().splitlines())
    blocked, ignored = int(fields["SigBlk"], 16), int(fields["SigIgn"], 16)
    bit = lambda s: 1 << (s - 1)  # noqa: E731
    assert blocked == bit(signal.SIGUSR1) | bit(signal.SIGWINCH)
    assert ignored == bit(signal.SIGQUIT) | bit(signal.SIGUSR2)


def test_no_fd_of_pidone_leaks_into_the_command(pidone):
    code = "import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))"
    p = pidone([*NO_UNITS, "--", *python_cmd(code)])
    assert p.wait() == 0
    # 0-2, plus the one listdir itself opened.
    fds = eval(p.stdout_text())  # noqa: S307 - our own output
    assert fds[:3] == [0, 1, 2] and len(fds) == 4


STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('stubborn', flush=True); time.sleep(600)"


def test_leftover_processes_get_sigterm_then_sigkill(pidone):
    """When the main command exits, what it left behind is asked to stop,
    then killed after the grace period; pidone keeps the main status."""
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen(['sleep', '600'])\n"  # obeys SIGTERM
        f"stubborn = subprocess.Popen([sys.executable, '-c', {STUBBORN!r}], stdout=subprocess.PIPE)\n"
        "print(stubborn.stdout.readline().decode().strip(), flush=True)\n"
        "sys.exit(7)\n"
    )
    p = pidone([*NO_UNITS, "--", *python_cmd(code)])
    p.expect_line("stubborn")
    started = time.monotonic()
    assert p.wait(timeout=20) == 7
    assert "sending SIGKILL" in p.stderr_text()
    assert time.monotonic() - started < 10


def test_realtime_signals_are_forwarded_exactly_once_each(pidone):
    """Realtime signals queue: 300 sent, 300 received, and no extra one in
    the half second after the last (an extra copy would arrive right away)."""
    rt = signal.SIGRTMIN + 1
    code = (
        "import signal, sys\n"
        f"rt = {int(rt)}\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {rt})\n"
        "print('ready', flush=True)\n"
        "for _ in range(300):\n"
        "    signal.sigwaitinfo({rt})\n"
        "extra = 0\n"
        "while signal.sigtimedwait({rt}, 0.5) is not None:\n"
        "    extra += 1\n"
        "print('extra', extra, flush=True)\n"
    )
    p = pidone([*NO_UNITS, "--", *python_cmd(code)])
    p.expect_line("ready")
    p.wait_ready()
    for i in range(300):
        p.kill(rt)
        if i % 3 == 0:
            time.sleep(0.0002)  # uneven pacing, so pidone's handler and loop interleave
    assert p.expect_line(r"^extra ", timeout=20).split() == [b"extra", b"0"]
    assert p.wait() == 0


def test_a_too_long_runtime_directory_is_a_startup_error(pidone, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    p = pidone(["--units", str(units), "--runtime-dir", str(tmp_path / ("x" * 120))])
    assert p.wait() == 3
    assert "cannot start" in p.output() and "Traceback" not in p.output()

"""Runs pidone as the real PID 1 of a fresh PID namespace and drives it from
outside, as `docker kill` would.

Every instance is bounded in time and torn down by PID: SIGKILL to the
`unshare` process, whose --kill-child takes the namespace's PID 1 (and with
it every process in the namespace) down too.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


def reset_signals() -> None:
    """preexec_fn: what a container runtime gives PID 1 — default
    dispositions for SIGINT/SIGQUIT (a background shell job would have them
    ignored, which would hide bugs) and an empty mask."""
    for signum in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def proc_status(pid: int) -> dict[str, str]:
    """Return /proc/PID/status as a dict ({} if the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def wait_for(predicate, timeout: float, what: str, interval: float = 0.005):
    """Poll `predicate` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class PidOne:
    """pidone as PID 1 of its own namespace, with its output collected."""

    def __init__(
        self,
        args: list[str | bytes],
        *,
        env: dict | None = None,
        stdin=subprocess.DEVNULL,
        preexec_fn=reset_signals,
        timeout: float = 60,
        namespace: bool = True,
        cwd: str | None = None,
        pass_fds: tuple[int, ...] = (),
        stdout=subprocess.PIPE,
        entry: list[str] | None = None,
    ):
        python = [sys.executable, *(entry or ["-m", "pidone"])]
        prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] if namespace else []
        self.argv = [*prefix, *python, *args]
        self.timeout = timeout
        self.namespace = namespace
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            preexec_fn=preexec_fn,
            start_new_session=True,
            pass_fds=pass_fds,
        )
        self.stdout_lines: queue.Queue[bytes | None] = queue.Queue()
        self.stdout: list[bytes] = []
        self.stdout_times: list[float] = []  # monotonic arrival time of each stdout line
        self.stderr: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout, self.stdout_lines, self.stdout_times),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr, None, None), daemon=True),
        ][0 if self.proc.stdout is not None else 1:]  # stdout=: the test reads it itself
        for reader in self._readers:
            reader.start()
        self._pid1: int | None = None

    @staticmethod
    def _pump(stream, sink: list, lines: queue.Queue | None, stamps: list | None) -> None:
        for line in iter(stream.readline, b""):
            if stamps is not None:
                stamps.append(time.monotonic())
            sink.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)

    # -- finding and waiting ------------------------------------------------

    @property
    def pid1(self) -> int:
        """The host pid of pidone (PID 1 inside the namespace)."""
        if self._pid1 is None:
            if not self.namespace:
                self._pid1 = self.proc.pid
            else:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
                text = wait_for(lambda: _read(children).strip(), 10, "unshare to fork PID 1")
                self._pid1 = int(text.split()[0])
        return self._pid1

    def wait_ready(self, timeout: float = 15) -> "PidOne":
        """Wait until pidone has its signal handlers installed (SIGTERM caught)."""
        pid = self.pid1

        def caught() -> bool:
            fields = proc_status(pid)
            if not fields:
                raise AssertionError(f"pidone exited before it was ready: {self.output()}")
            return bool(int(fields.get("SigCgt", "0"), 16) & SIGTERM_BIT)

        wait_for(caught, timeout, "pidone to install its signal handlers")
        return self

    def expect_line(self, pattern: str | bytes, timeout: float = 10) -> bytes:
        """Return the next stdout line matching `pattern` (regex), failing
        after `timeout` seconds or at EOF."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output: {self.output()}")
            try:
                line = self.stdout_lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.stdout_lines.put(None)
                raise AssertionError(f"EOF before a line matching {pattern!r}; output: {self.output()}")
            if regex.search(line):
                return line

    def find_line(self, pattern: str | bytes, timeout: float = 10) -> bytes:
        """Return the first stdout line so far (or to come within `timeout`)
        matching `pattern`, wherever it is in the output."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        regex = re.compile(pattern)

        def search() -> bytes | None:
            for line in list(self.stdout):
                if regex.search(line):
                    return line
            if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                raise AssertionError(f"pidone exited without a line matching {pattern!r}: {self.output()}")
            return None

        return wait_for(search, timeout, f"a line matching {pattern!r}; output: {self.output()}", interval=0.01)

    def count_lines(self, pattern: str | bytes) -> int:
        """How many stdout lines so far match `pattern`."""
        if isinstance(pattern, str):
            pattern = pattern.encode()
        regex = re.compile(pattern)
        return sum(1 for line in list(self.stdout) if regex.search(line))

    def wait_count(self, pattern: str | bytes, count: int, timeout: float = 30) -> None:
        """Wait until at least `count` stdout lines match `pattern`."""
        wait_for(lambda: self.count_lines(pattern) >= count, timeout,
                 f"{count} lines matching {pattern!r}; output: {self.output()[-3000:]}", interval=0.01)

    def fd_count(self) -> int:
        return len(os.listdir(f"/proc/{self.pid1}/fd"))

    def settled_fd_count(self, samples: int = 40) -> int:
        """The fewest fds PID 1 held over a short window: a unit caught
        mid-spawn holds three more for a moment (two pipes, a pidfd), which
        is not a leak. A leak raises the minimum too."""
        counts = []
        for _ in range(samples):
            counts.append(self.fd_count())
            time.sleep(0.005)
        return min(counts)

    def rss_kib(self) -> int:
        return int(proc_status(self.pid1)["VmRSS"].split()[0])

    def kill(self, signum: int) -> None:
        """Send `signum` to PID 1 from the host, as `docker kill -s` does."""
        os.kill(self.pid1, signum)

    def run_inside(self, argv: list[str], timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
        """Run `argv` inside the namespace (pid and mount) and return its result."""
        return subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-p", "-m", *argv],
            capture_output=True,
            timeout=timeout,
            **kwargs,
        )

    def wait(self, timeout: float | None = None) -> int:
        """Wait for pidone to exit; return the exit status seen by its parent."""
        rc = self.proc.wait(timeout=self.timeout if timeout is None else timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return rc

    def output(self) -> str:
        return (b"".join(self.stdout) + b"".join(self.stderr)).decode(errors="replace")

    def stderr_text(self) -> str:
        return b"".join(self.stderr).decode(errors="replace")

    def stdout_text(self) -> str:
        return b"".join(self.stdout).decode(errors="replace")

    def close(self) -> None:
        """Tear everything down by PID, whatever state it is in."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()

    def __enter__(self) -> "PidOne":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def raw_request(path, payload: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes to a control socket, half-close, and return everything
    pidone answers (b"" if it closed or reset the connection unanswered; a
    timeout is an error)."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


class ModeWatcher:
    """Records, from a thread polling every millisecond, each (name, mode,
    uid) that `paths` take (symlinks and absent paths skipped), to show a
    file is never wider than it should be at any instant. Use as a context
    manager: the thread stops and is joined on exit."""

    def __init__(self, *paths: Path):
        self.paths = paths
        self.seen: set[tuple[str, int, int]] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.is_set():
            for path in self.paths:
                try:
                    info = os.lstat(path)
                except FileNotFoundError:
                    continue
                if not stat.S_ISLNK(info.st_mode):
                    self.seen.add((path.name, stat.S_IMODE(info.st_mode), info.st_uid))
            time.sleep(0.001)

    def modes(self, name: str) -> set[int]:
        """The modes seen for the path named `name`."""
        return {mode for seen_name, mode, _uid in self.seen if seen_name == name}

    def owners(self) -> set[int]:
        return {uid for _name, _mode, uid in self.seen}

    def __enter__(self) -> "ModeWatcher":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def python_cmd(code: str) -> list[str]:
    """A main command running `code` in this interpreter (unbuffered)."""
    return [sys.executable, "-u", "-c", code]


def start_over(pidone, directory: Path, runtime: Path, *args: str, **kwargs) -> PidOne:
    """Start pidone as PID 1 over the units in `directory` with its runtime
    directory `runtime` (extra init options in `args`); return it once its
    control socket exists, with `units` and `runtime` set on it."""
    p = pidone(["--units", str(directory), "--runtime-dir", str(runtime), *args], **kwargs)
    p.units, p.runtime = directory, runtime
    p.wait_ready()
    wait_for((runtime / "private" / "control.sock").exists, 15, "the control socket")
    return p


def run_cli(p: PidOne, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `pidone ARGS --runtime-dir P.RUNTIME` (text output captured)."""
    return subprocess.run([sys.executable, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)],
                          capture_output=True, text=True, timeout=timeout)


def start_units(pidone, tmp_path: Path, units: dict[str, dict], *args: str, **kwargs) -> PidOne:
    """Write `units` (name -> TOML table) to TMP_PATH/units and start pidone
    over them with TMP_PATH/run as its runtime directory (see start_over)."""
    import tomli_w

    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    return start_over(pidone, directory, tmp_path / "run", *args, **kwargs)

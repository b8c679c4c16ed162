#!/usr/bin/env python3
"""PID 1 core benchmark: pidone in tini mode against tini and dumb-init.

Every contender runs as the real PID 1 of a fresh PID namespace,

    unshare --pid --fork --mount-proc --kill-child INIT -- HELPER

with INIT one of `tini`, `dumb-init`, `python -m pidone` (tini mode, run by
the interpreter that runs this script) or nothing at all ("direct": the helper
is PID 1 itself, the practical floor). The helpers are two small C programs in
helpers/, compiled with gcc into a temporary directory at start-up so that the
main command adds no latency of its own. Four things are measured:

signal forwarding latency
    Main command `sigecho`: it answers every SIGUSR1 with one byte on stdout.
    The harness sends SIGUSR1 to PID 1's host pid (found as the child of the
    unshare process) and times the round trip, kill() to byte read, with
    time.perf_counter_ns(). After a warm-up, SIGNALS signals per round go to
    the contenders in turn (A B C, B C A, ...), so machine noise hits all
    alike; median and p99 are over every sample of every round, in µs.

reaping
    Main command `orphans N`: it leaves N grandchildren (10,000) as orphans of
    PID 1, all blocked reading one pipe, then closes the pipe so that they all
    exit. The harness counts the processes of the namespace, zombies
    included, through a pids cgroup made for the run (`pids.current`, one
    cheap read, polled every 0.2 ms; a listing of the namespace's /proc where
    no pids cgroup can be made). Two runs per contender per round, in
    rotating order; medians over rounds are reported:
    "reap" (the bar): PID 1 is held with SIGSTOP while the orphans exit,
      until all N are zombies at once; then SIGCONT, and the time until the
      last is reaped. (The direct helper holds off by itself instead.)
    "storm": PID 1 runs all along; from the release to the last reaped. On 2
      cores, 10,000 processes woken at once take a few hundred ms to reach
      exit() whatever the init, and PID 1 is one runnable process among them
      meanwhile, so this is mostly the kernel's time, and noisy; it shows
      that nothing is lost under load. The JSON also has the time from the
      last orphan's exit (each stamps it) to the last reaped.

PID 1's RSS
    VmRSS of PID 1 from /proc/PID/status, read once it has settled, in MiB.

idle CPU
    utime + stime of PID 1 (fields 14 and 15 of /proc/PID/stat, in clock
    ticks) over IDLE seconds (10) while `sigecho` just sleeps, plus the exact
    CPU time from /proc/PID/task/*/schedstat. All contenders idle during the
    same window. The bar is 0 ticks in every round.

RSS, idle CPU and forwarding are measured in one namespace per contender per
round, all of them started together; reaping gets a fresh namespace per run.
Every subprocess has a deadline and is killed by pid (its PID 1, and the
process group of its unshare) when it is done or anything fails.

The table, the ratios pidone/tini and pidone/dumb-init, the bars of the issue
and the machine are printed, and written as JSON to results/pid1.json.
Run as root (unshare --pid, cgroups): `benchmarks/run` or
`.venv/bin/python benchmarks/pid1.py [--quick] [--rounds N] [--only NAME]`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = HERE / "helpers"
RESULTS = HERE / "results" / "pid1.json"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# The bars the issue sets for pidone, against tini in the same run.
BAR_FORWARD_MEDIAN = 1.5   # forwarding median within 1.5x tini's
BAR_REAP = 2.0             # reaping lag within 2x tini's
BAR_IDLE_TICKS = 0         # CPU ticks of PID 1 over the idle window

SIGNAL_GAP = 0.002         # seconds between two steps of the signal loop
SIGNAL_TIMEOUT = 1.0       # a signal not answered by then counts as lost
REAP_POLL = 0.0002         # seconds between two looks at the process count
READY_TIMEOUT = 30.0       # for a main command to say it is ready
STOP_TIMEOUT = 5.0         # for a namespace to end on its own before SIGKILL


class BenchError(Exception):
    """A measurement could not be made; the message says why."""


# --------------------------------------------------------------------------
# The contenders


@dataclass
class Contender:
    """An init, as the words that go before the main command."""

    name: str
    prefix: list[str]
    version: str = ""
    is_init: bool = True       # False for "direct": no init, no RSS/idle row


def all_contenders(scratch: Path) -> list[Contender]:
    """direct, tini, dumb-init and pidone (tini mode), in table order.

    pidone gets a units directory that does not exist (so no /etc/units of the
    machine is run) and a runtime directory of its own (so it never meets
    another pidone's control socket), both in the scratch directory.
    """
    pidone = [sys.executable, "-m", "pidone",
              "--units", str(scratch / "no-units"),
              "--runtime-dir", str(scratch / "pidone-run"), "--"]
    return [
        Contender("direct", [], "", is_init=False),
        Contender("tini", ["tini", "--"], tool_version(["tini", "--version"])),
        Contender("dumb-init", ["dumb-init", "--"], tool_version(["dumb-init", "--version"])),
        Contender("pidone", pidone, pidone_version()),
    ]


def tool_version(argv: list[str]) -> str:
    """The first line a tool prints for --version, or "" when it is missing."""
    if not shutil.which(argv[0]):
        return ""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def pidone_version() -> str:
    """pidone's installed version, as the venv running this script sees it."""
    try:
        from importlib.metadata import version
        return "pidone " + version("pidone")
    except Exception:  # noqa: BLE001 - not installed: the preflight says so
        return ""


def preflight(contender: Contender, scratch: Path) -> str | None:
    """Why `contender` cannot run here, or None when it can.

    The init must exist, and must run `true` as its main command and exit 0
    (pidone is being written alongside this benchmark: it may not be ready).
    """
    if not contender.is_init:
        return None
    if not shutil.which(contender.prefix[0]):
        return f"{contender.prefix[0]} is not installed"
    try:
        out = subprocess.run([*contender.prefix, "true"], capture_output=True, text=True,
                             timeout=20, stdin=subprocess.DEVNULL, cwd=scratch)
    except subprocess.TimeoutExpired:
        return f"`{contender.name} -- true` did not exit within 20 s"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [""])[-1]
        return f"`{contender.name} -- true` exited {out.returncode}: {last}"
    return None


# --------------------------------------------------------------------------
# The helpers


@dataclass
class Helpers:
    """Paths of the compiled helper programs."""

    sigecho: str
    orphans: str


def compile_helpers(outdir: Path) -> Helpers:
    """Compile helpers/*.c with gcc -O2 into `outdir`."""
    paths = {}
    for name in ("sigecho", "orphans"):
        exe = outdir / name
        cmd = ["gcc", "-O2", "-Wall", "-o", str(exe), str(HELPERS / f"{name}.c")]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise BenchError(f"gcc failed on {name}.c:\n{out.stderr}")
        paths[name] = str(exe)
    return Helpers(**paths)


# --------------------------------------------------------------------------
# One contender in its own PID namespace


class Namespace:
    """`contender` running `main` as PID 1 of a fresh PID namespace.

    The main command's stdin and stdout are pipes to the harness (through the
    init, which passes its own on). Use as a context manager: leaving it stops
    the namespace, politely first, then with SIGKILL.
    """

    def __init__(self, contender: Contender, main: list[str], cwd: Path,
                 cgroup: ProcessCounter | None = None):
        self.contender = contender
        self._stderr = tempfile.TemporaryFile()
        argv = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                *contender.prefix, *main]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=cwd, start_new_session=True,
            preexec_fn=cgroup.join if cgroup else None)
        self._out = self.proc.stdout.fileno()
        self._buf = b""
        try:
            self.pid1, self._pidfd = self._find_pid1()
        except BaseException:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
            raise

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _find_pid1(self, timeout: float = 10.0) -> tuple[int, int]:
        """PID 1's host pid, the one child of the unshare process, and a pidfd.

        The pidfd is what `stop` signals, so that a pid recycled after PID 1
        is gone is never hit; it is taken while PID 1 is known to be alive.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in children_of(self.proc.pid):
                with contextlib.suppress(OSError):
                    pidfd = os.pidfd_open(pid)
                    if proc_ppid(pid) == self.proc.pid:
                        return pid, pidfd
                    os.close(pidfd)
            if self.proc.poll() is not None:
                raise self.error("unshare exited before forking PID 1")
            time.sleep(0.001)
        raise self.error("PID 1 did not appear")

    def error(self, what: str) -> BenchError:
        """A BenchError naming the contender, with the end of its stderr."""
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
        return BenchError(f"{self.contender.name}: {what}" + (f"\n  stderr: {tail}" if tail else ""))

    def _fill(self, deadline: float) -> bool:
        """Read what the main command wrote; False when the deadline passed."""
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self._out], [], [], left)[0]:
            return False
        data = os.read(self._out, 65536)
        if not data:
            raise self.error("the main command's stdout closed")
        self._buf += data
        return True

    def read_exact(self, expected: bytes, timeout: float) -> None:
        """Wait for exactly `expected` from the main command."""
        deadline = time.monotonic() + timeout
        while len(self._buf) < len(expected):
            if not self._fill(deadline):
                raise self.error(f"no {expected!r} within {timeout} s")
        got, self._buf = self._buf[:len(expected)], self._buf[len(expected):]
        if got != expected:
            raise self.error(f"expected {expected!r}, got {got!r}")

    def read_line(self, timeout: float) -> str:
        """The next line the main command writes."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            if not self._fill(deadline):
                raise self.error(f"no line within {timeout} s")
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def send(self, text: str) -> None:
        """Write `text` to the main command's stdin."""
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def signal_round_trip(self) -> int | None:
        """ns from kill(PID 1, SIGUSR1) to sigecho's answer; None if lost."""
        while select.select([self._out], [], [], 0)[0]:   # a late answer
            os.read(self._out, 65536)
        t0 = time.perf_counter_ns()
        os.kill(self.pid1, signal.SIGUSR1)
        if not select.select([self._out], [], [], SIGNAL_TIMEOUT)[0]:
            return None
        os.read(self._out, 1)
        return time.perf_counter_ns() - t0

    def hold(self, timeout: float = 5.0) -> None:
        """SIGSTOP PID 1 and wait until it is stopped."""
        signal.pidfd_send_signal(self._pidfd, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while proc_state(self.pid1) not in (b"T", b"t"):
            if time.monotonic() > deadline:
                raise self.error(f"PID 1 not stopped {timeout} s after SIGSTOP")
            time.sleep(0.001)

    def let_go(self) -> None:
        """SIGCONT PID 1."""
        signal.pidfd_send_signal(self._pidfd, signal.SIGCONT)

    def stop(self) -> None:
        """End the namespace: stdin EOF and SIGTERM, then SIGKILL.

        The main commands exit at the end of their stdin, which also covers a
        harness that dies without getting here. SIGKILL goes to PID 1 (which
        ends every process of its namespace) through its pidfd, and to the
        process group of unshare, our own unreaped child.
        """
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        for sig in (signal.SIGTERM, signal.SIGCONT):   # SIGCONT: in case it is held
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, sig)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)
        os.close(self._pidfd)
        self.proc.stdout.close()
        self._stderr.close()


def children_of(ppid: int) -> list[int]:
    """Host pids whose parent is `ppid` (this kernel has no .../children)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if proc_ppid(int(entry)) == ppid:
                    found.append(int(entry))
    return found


def proc_stat(pid: int) -> list[bytes]:
    """The fields of /proc/PID/stat after the command name: state first."""
    return proc_stat_at(f"/proc/{pid}")


def proc_stat_at(piddir: str) -> list[bytes]:
    """The same, for a /proc/PID directory given as a path."""
    with open(f"{piddir}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def proc_ppid(pid: int) -> int:
    """The parent pid of `pid`."""
    return int(proc_stat(pid)[1])


def proc_state(pid: int) -> bytes:
    """The state letter of `pid` (R, S, T, Z...)."""
    return proc_stat(pid)[0]


# --------------------------------------------------------------------------
# Counting the processes of a namespace, zombies included


class ProcessCounter:
    """How many processes (zombies too) a namespace holds, cheaply.

    Preferred: a pids cgroup made for one run, that the unshare process joins
    before it execs (`join` is its preexec_fn); `pids.current` drops only when
    a zombie is reaped. Without one (no pids controller, not writable), it
    falls back to listing the namespace's own /proc (seen through
    /proc/PID1/root/proc thanks to --mount-proc), which costs a few ms.
    """

    def __init__(self, tag: str):
        self.path = make_pids_cgroup(tag)
        self._fd = os.open(self.path / "pids.current", os.O_RDONLY) if self.path else None
        self._proc_dir: str | None = None

    @property
    def method(self) -> str:
        return "cgroup pids.current" if self.path else "/proc listing"

    def join(self) -> None:
        """Move the calling process into the cgroup (runs in the child)."""
        if self.path:
            with open(self.path / "cgroup.procs", "w") as f:
                f.write("0")

    def watch(self, pid1: int) -> None:
        """For the /proc fallback: the namespace to count is PID 1's."""
        self._proc_dir = f"/proc/{pid1}/root/proc"

    def count(self) -> int:
        """Processes in the namespace right now."""
        if self._fd is not None:
            return int(os.pread(self._fd, 32, 0))
        return sum(1 for e in os.scandir(self._proc_dir) if e.name.isdigit())

    def close(self) -> None:
        """Forget the cgroup (its processes must be gone by now)."""
        if self._fd is not None:
            os.close(self._fd)
            for _ in range(100):           # the last zombie may still be on its way out
                try:
                    self.path.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)


def counting_method() -> str:
    """How this machine lets the namespace's processes be counted."""
    probe = ProcessCounter("probe")
    probe.close()
    return probe.method


def pids_cgroup_roots() -> list[Path]:
    """Where a pids cgroup can be made: the v1 hierarchy, or v2 with pids on."""
    roots = []
    if os.path.exists("/sys/fs/cgroup/pids/cgroup.procs"):
        roots.append(Path("/sys/fs/cgroup/pids"))
    v2 = Path("/sys/fs/cgroup")
    with contextlib.suppress(OSError):
        if "pids" in (v2 / "cgroup.subtree_control").read_text().split():
            roots.append(v2)
    return roots


def remove_stale_cgroups() -> None:
    """rmdir the cgroups that an earlier, killed run of this script left.

    Only those of runs whose harness pid (in the name) is gone, and only when
    empty: rmdir fails, as it should, while a process is in one.
    """
    for root in pids_cgroup_roots():
        for path in root.glob("pidone-bench-*-*"):
            owner = path.name.split("-")[2]
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                with contextlib.suppress(OSError):
                    path.rmdir()


def make_pids_cgroup(tag: str) -> Path | None:
    """A new pids cgroup for one run, or None where none can be made."""
    for root in pids_cgroup_roots():
        path = root / f"pidone-bench-{os.getpid()}-{tag}"
        with contextlib.suppress(OSError):
            path.mkdir()
            if (path / "pids.current").exists():
                return path
            path.rmdir()
    return None


# --------------------------------------------------------------------------
# Reading PID 1 from /proc


def rss_kib(pid: int) -> int:
    """VmRSS of `pid` in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid` (all its threads), in clock ticks."""
    fields = proc_stat(pid)
    return int(fields[11]) + int(fields[12])   # fields 14 and 15 of stat(5)


def cpu_ns(pid: int) -> int:
    """CPU time of `pid`, all threads, in ns (exact, from schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


# --------------------------------------------------------------------------
# The measurements


@dataclass
class Samples:
    """Everything measured for one contender, over all rounds."""

    forward_ns: list[int] = field(default_factory=list)
    lost_signals: int = 0
    reap_ms: list[float] = field(default_factory=list)             # held: SIGCONT -> reaped
    storm_ms: list[float] = field(default_factory=list)            # release -> reaped
    after_last_exit_ms: list[float] = field(default_factory=list)  # last exit -> reaped
    exits_ms: list[float] = field(default_factory=list)            # release -> last exit
    rss_kib: list[int] = field(default_factory=list)
    idle_ticks: list[int] = field(default_factory=list)
    idle_cpu_ms: list[float] = field(default_factory=list)


def idle_and_forwarding_round(contenders: list[Contender], helpers: Helpers, args,
                              scratch: Path, samples: dict[str, Samples], rnd: int) -> None:
    """One round of RSS, idle CPU and signal forwarding, all contenders at once."""
    with contextlib.ExitStack() as stack:
        running = {}
        for c in contenders:
            running[c.name] = stack.enter_context(Namespace(c, [helpers.sigecho], scratch))
        for ns in running.values():
            ns.read_exact(b"R", READY_TIMEOUT)
        time.sleep(args.settle)

        inits = [ns for ns in running.values() if ns.contender.is_init]
        before = {ns.contender.name: (cpu_ticks(ns.pid1), cpu_ns(ns.pid1)) for ns in inits}
        for ns in inits:
            samples[ns.contender.name].rss_kib.append(rss_kib(ns.pid1))
        time.sleep(args.idle)
        for ns in inits:
            ticks0, ns0 = before[ns.contender.name]
            s = samples[ns.contender.name]
            s.idle_ticks.append(cpu_ticks(ns.pid1) - ticks0)
            s.idle_cpu_ms.append((cpu_ns(ns.pid1) - ns0) / 1e6)

        forward_signals(list(running.values()), args.warmup, args.signals, samples, rnd)


def forward_signals(running: list[Namespace], warmup: int, count: int,
                    samples: dict[str, Samples], rnd: int) -> None:
    """Send warmup + count SIGUSR1 to each, in turn, and keep the round trips."""
    n = len(running)
    for i in range(warmup + count):
        k = (i + rnd) % n
        for ns in running[k:] + running[:k]:
            rtt = ns.signal_round_trip()
            if i < warmup:
                continue
            if rtt is None:
                samples[ns.contender.name].lost_signals += 1
            else:
                samples[ns.contender.name].forward_ns.append(rtt)
        time.sleep(SIGNAL_GAP)


@contextlib.contextmanager
def orphans_namespace(contender: Contender, helpers: Helpers, orphans: int,
                      scratch: Path, hold: bool):
    """`contender` as PID 1 over `orphans N [hold]`, its orphans made.

    Yields the Namespace, its ProcessCounter and the count the namespace
    falls back to once every orphan is reaped.
    """
    counter = ProcessCounter(contender.name)
    argv = [helpers.orphans, str(orphans)] + (["hold"] if hold else [])
    try:
        with Namespace(contender, argv, scratch, counter) as ns:
            counter.watch(ns.pid1)
            line = ns.read_line(timeout=READY_TIMEOUT + orphans / 1000)
            if line != f"ready {orphans}":
                raise ns.error(f"orphans said {line!r}")
            yield ns, counter, counter.count() - orphans
    finally:
        counter.close()


def reap_held_once(contender: Contender, helpers: Helpers, orphans: int,
                   scratch: Path) -> float:
    """ms for PID 1 to reap `orphans` zombies that appeared at once.

    PID 1 is held with SIGSTOP (the direct helper by not reading on) while
    the orphans exit, until every one of them is a zombie; then SIGCONT, and
    the clock runs until the last one is reaped.
    """
    with orphans_namespace(contender, helpers, orphans, scratch, hold=True) as (ns, counter, target):
        if contender.is_init:
            ns.hold()
        ns.send("go\n")
        parse_words(ns, "t0", 1)
        wait_for_zombies(ns, orphans)
        if contender.is_init:
            ns.send("reap\n")            # the helper's line; PID 1 reaps, not it
        time.sleep(0.2)                   # let the scan's dust settle
        t_start = time.perf_counter_ns()
        if contender.is_init:
            ns.let_go()
        else:
            ns.send("reap\n")
        t_end = wait_for_count(counter, target, ns)
        return (t_end - t_start) / 1e6


def reap_storm_once(contender: Contender, helpers: Helpers, orphans: int,
                    scratch: Path) -> dict[str, float]:
    """The orphans exit while PID 1 runs: its times in ms.

    storm:           from the release of all orphans (t0) to the last reaped
    after_last_exit: from the last orphan's exit to the last reaped
    exits:           from t0 to the last orphan's exit (the kernel's part)
    """
    with orphans_namespace(contender, helpers, orphans, scratch, hold=False) as (ns, counter, target):
        ns.send("go\n")
        t_end = wait_for_count(counter, target, ns)
        t0 = parse_words(ns, "t0", 1)[0]
        ns.send("report\n")
        _first, last, missing = parse_words(ns, "exits", 3)
        if missing:
            raise ns.error(f"{missing} orphans reaped before they stamped their exit?")
        return {"storm": (t_end - t0) / 1e6, "after_last_exit": (t_end - last) / 1e6,
                "exits": (last - t0) / 1e6}


def wait_for_count(counter: ProcessCounter, target: int, ns: Namespace,
                   timeout: float = 60.0) -> int:
    """perf_counter_ns() once the namespace is down to `target` processes."""
    deadline = time.monotonic() + timeout
    while counter.count() > target:
        if time.monotonic() > deadline:
            raise ns.error(f"{counter.count() - target} orphans still unreaped after {timeout} s")
        time.sleep(REAP_POLL)
    return time.perf_counter_ns()


def wait_for_zombies(ns: Namespace, count: int, timeout: float = 60.0) -> None:
    """Until the namespace holds `count` zombies (a slow scan, not timed)."""
    deadline = time.monotonic() + timeout
    while (found := zombies_in(ns.pid1)) < count:
        if time.monotonic() > deadline:
            raise ns.error(f"only {found} of {count} orphans exited within {timeout} s")
        time.sleep(0.05)


def zombies_in(pid1: int) -> int:
    """Zombies in PID 1's namespace, from the namespace's own /proc."""
    proc = f"/proc/{pid1}/root/proc"
    found = 0
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found += proc_stat_at(f"{proc}/{entry.name}")[0] == b"Z"
    return found


def parse_words(ns: Namespace, word: str, count: int) -> list[int]:
    """The `count` integers of the main command's next line, "WORD N..."."""
    parts = ns.read_line(timeout=10).split()
    if len(parts) != count + 1 or parts[0] != word:
        raise ns.error(f"expected {word!r} and {count} numbers, got {parts!r}")
    return [int(p) for p in parts[1:]]


def reap_round(contenders: list[Contender], helpers: Helpers, args, scratch: Path,
               samples: dict[str, Samples], rnd: int) -> None:
    """A held and a storm reaping run per contender, order rotated by round."""
    k = rnd % len(contenders)
    order = contenders[k:] + contenders[:k]
    for c in order:
        samples[c.name].reap_ms.append(reap_held_once(c, helpers, args.orphans, scratch))
    for c in order:
        times = reap_storm_once(c, helpers, args.orphans, scratch)
        samples[c.name].storm_ms.append(times["storm"])
        samples[c.name].after_last_exit_ms.append(times["after_last_exit"])
        samples[c.name].exits_ms.append(times["exits"])


# --------------------------------------------------------------------------
# Summaries, ratios, bars


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(s: Samples, is_init: bool) -> dict:
    """The reported numbers of one contender (None where not measured)."""
    us = [v / 1000 for v in s.forward_ns]
    return {
        "forward_median_us": statistics.median(us) if us else None,
        "forward_p99_us": percentile(us, 99) if us else None,
        "forward_samples": len(us),
        "lost_signals": s.lost_signals,
        "reap_ms": statistics.median(s.reap_ms) if s.reap_ms else None,
        "storm_ms": statistics.median(s.storm_ms) if s.storm_ms else None,
        "storm_after_last_exit_ms": statistics.median(s.after_last_exit_ms) if s.after_last_exit_ms else None,
        "rss_mib": statistics.median(s.rss_kib) / 1024 if is_init and s.rss_kib else None,
        "idle_ticks": max(s.idle_ticks) if is_init and s.idle_ticks else None,
        "idle_cpu_ms": statistics.median(s.idle_cpu_ms) if is_init and s.idle_cpu_ms else None,
    }


METRICS = [  # key, column title, format
    ("forward_median_us", "fwd median µs", "{:.1f}"),
    ("forward_p99_us", "fwd p99 µs", "{:.1f}"),
    ("reap_ms", "reap ms", "{:.1f}"),
    ("storm_ms", "storm ms", "{:.1f}"),
    ("rss_mib", "RSS MiB", "{:.1f}"),
    ("idle_ticks", "idle ticks", "{:d}"),
    ("idle_cpu_ms", "idle CPU ms", "{:.2f}"),
]


def ratios(summary: dict[str, dict], num: str, den: str) -> dict[str, float | None]:
    """summary[num] / summary[den], metric by metric (None when undefined)."""
    out = {}
    for key, _, _ in METRICS:
        a, b = summary.get(num, {}).get(key), summary.get(den, {}).get(key)
        out[key] = a / b if a is not None and b else None
    return out


def bars(summary: dict[str, dict], samples: dict[str, Samples]) -> dict[str, dict] | None:
    """The issue's three bars for pidone, against tini in the same run."""
    if "pidone" not in summary or "tini" not in summary:
        return None
    r = ratios(summary, "pidone", "tini")
    ticks = samples["pidone"].idle_ticks
    return {
        "forward_median": {"ratio": r["forward_median_us"], "bar": BAR_FORWARD_MEDIAN,
                           "pass": r["forward_median_us"] is not None
                           and r["forward_median_us"] <= BAR_FORWARD_MEDIAN},
        "reap": {"ratio": r["reap_ms"], "bar": BAR_REAP,
                 "pass": r["reap_ms"] is not None and r["reap_ms"] <= BAR_REAP},
        "idle_ticks": {"ticks": ticks, "bar": BAR_IDLE_TICKS,
                       "pass": bool(ticks) and max(ticks) <= BAR_IDLE_TICKS},
    }


def machine() -> dict:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    debian = ""
    with contextlib.suppress(OSError):
        debian = "Debian " + Path("/etc/debian_version").read_text().strip()
    return {
        "cpu": model, "cores": os.cpu_count(), "kernel": platform.release(),
        "os": debian, "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(value, spec: str) -> str:
    return "–" if value is None else spec.format(value)


def report(summary: dict[str, dict], contenders: list[Contender], bar: dict | None,
           info: dict, config: dict, skipped: dict[str, str]) -> str:
    """The human-readable table, ratios, bars and machine line."""
    names = [c.name for c in contenders]
    width = max(len("pidone/dumb-init"), *(len(n) for n in names))
    cols = [max(len(title), 9) for _, title, _ in METRICS]
    lines = ["", "  ".join([" " * width] + [t.rjust(w) for (_, t, _), w in zip(METRICS, cols)])]
    for name in names:
        cells = [fmt(summary[name][k], f).rjust(w) for (k, _, f), w in zip(METRICS, cols)]
        lines.append("  ".join([name.ljust(width)] + cells))
    lost = {n: summary[n]["lost_signals"] for n in names if summary[n]["lost_signals"]}
    if lost:
        lines.append(f"lost signals (not answered within {SIGNAL_TIMEOUT} s): {lost}")
    for den in ("tini", "dumb-init"):
        if "pidone" in summary and den in summary:
            r = ratios(summary, "pidone", den)
            cells = [fmt(r[k], "{:.2f}×").rjust(w) for (k, _, _), w in zip(METRICS, cols)]
            lines.append("  ".join([f"pidone/{den}".ljust(width)] + cells))
    if bar:
        fm, rp, it = bar["forward_median"], bar["reap"], bar["idle_ticks"]
        verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
        lines += ["", "bars (pidone vs tini, same run):",
                  f"  forwarding median {fmt(fm['ratio'], '{:.3f}×')} of tini (bar ≤ {BAR_FORWARD_MEDIAN}×): {verdict(fm['pass'])}",
                  f"  reaping           {fmt(rp['ratio'], '{:.3f}×')} of tini (bar ≤ {BAR_REAP}×): {verdict(rp['pass'])}",
                  f"  idle CPU ticks    {it['ticks']} per {config['idle_seconds']:g} s (bar 0): {verdict(it['pass'])}"]
    for name, why in skipped.items():
        lines.append(f"skipped {name}: {why}")
    versions = ", ".join(c.version for c in contenders if c.version)
    lines += ["",
              f"machine: {info['cpu']}, {info['cores']} cores, kernel {info['kernel']}, "
              f"{info['os']}, Python {info['python']}, {info['date']}",
              f"versions: {versions}",
              f"config: {config['rounds']} rounds; {config['signals']} signals/round after "
              f"{config['warmup']} warm-up; {config['orphans']} orphans; "
              f"idle {config['idle_seconds']:g} s; counted by {config['reap_counted_by']}"]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=7, help="rounds, each running every contender (7)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round, 50 signals, 1,000 orphans, 2 s idle")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only these contenders (repeat or comma-separate): "
                        "direct, tini, dumb-init, pidone")
    p.add_argument("--signals", type=int, default=200, help="signals per contender per round (200)")
    p.add_argument("--warmup", type=int, default=20, help="unrecorded signals first (20)")
    p.add_argument("--orphans", type=int, default=10_000, help="orphans exiting at once (10,000)")
    p.add_argument("--idle", type=float, default=10.0, help="idle window in seconds (10)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds before RSS and idle (1)")
    p.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file ({RESULTS.relative_to(HERE.parent)})")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.signals, args.warmup = 1, 50, 5
        args.orphans, args.idle, args.settle = 1000, 2.0, 0.5
    args.only = {n.strip() for item in args.only for n in item.split(",") if n.strip()}
    return args


def check_machine(args) -> None:
    """Root, unshare and gcc, and room for the orphans under pid_max."""
    if os.geteuid() != 0:
        raise BenchError("run as root: unshare --pid and the pids cgroup need it")
    for tool in ("unshare", "gcc"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is not installed (scripts/setup installs it)")
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    in_use = sum(1 for e in os.listdir("/proc") if e.isdigit())
    if in_use + args.orphans * 1.1 > pid_max:
        raise BenchError(f"{args.orphans} orphans do not fit under pid_max {pid_max} "
                         f"({in_use} processes running): use --orphans")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        check_machine(args)
        with tempfile.TemporaryDirectory(prefix="pidone-bench-") as tmp:
            return run(args, Path(tmp))
    except BenchError as e:
        print(f"pid1.py: {e}", file=sys.stderr)
        return 1


def run(args, scratch: Path) -> int:
    """Compile, check the contenders, measure round by round, report."""
    remove_stale_cgroups()
    helpers = compile_helpers(scratch)
    contenders, skipped = [], {}
    for c in all_contenders(scratch):
        if args.only and c.name not in args.only:
            continue
        why = preflight(c, scratch)
        if why:
            skipped[c.name] = why
            print(f"pid1.py: skipping {c.name}: {why}", file=sys.stderr)
        else:
            contenders.append(c)
    if not contenders:
        raise BenchError("no contender can run")

    samples = {c.name: Samples() for c in contenders}
    for rnd in range(args.rounds):
        t = time.monotonic()
        idle_and_forwarding_round(contenders, helpers, args, scratch, samples, rnd)
        reap_round(contenders, helpers, args, scratch, samples, rnd)
        done = ", ".join(f"{c.name} {samples[c.name].reap_ms[-1]:.1f}/{samples[c.name].storm_ms[-1]:.0f}"
                         for c in contenders)
        print(f"round {rnd + 1}/{args.rounds} ({time.monotonic() - t:.0f} s): reap/storm ms: {done}",
              file=sys.stderr)

    summary = {c.name: summarize(samples[c.name], c.is_init) for c in contenders}
    bar = bars(summary, samples)
    info = machine()
    config = {"rounds": args.rounds, "signals": args.signals, "warmup": args.warmup,
              "orphans": args.orphans, "idle_seconds": args.idle, "settle_seconds": args.settle,
              "signal_gap_seconds": SIGNAL_GAP, "reap_counted_by": counting_method()}
    print(report(summary, contenders, bar, info, config, skipped))
    write_json(args.output, {
        "benchmark": "pid1", "machine": info, "config": config,
        "versions": {c.name: c.version for c in contenders},
        "summary": summary,
        "ratios": {f"pidone/{d}": ratios(summary, "pidone", d)
                   for d in ("tini", "dumb-init") if "pidone" in summary and d in summary},
        "bars": bar, "skipped": skipped,
        "raw": {c.name: samples[c.name].__dict__ for c in contenders},
    })
    return 0


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    print(f"\nwritten: {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

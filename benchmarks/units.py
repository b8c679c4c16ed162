#!/usr/bin/env python3
"""Starting and stopping many units: pidone against s6, runit, supervisord
and a bare spawn loop ("direct", the floor).

Every contender runs as the real PID 1 of a fresh PID namespace,

    unshare --pid --fork --mount-proc --kill-child INIT ...

with INIT one of:

    direct       a 60-line Python harness (written to the scratch directory,
                 run by the same interpreter as pidone) that os.posix_spawn()s
                 the services itself and, for (b), starts each one as soon as
                 everything it requires has sent READY=1: the practical floor
    pidone       `python -m pidone --units DIR --runtime-dir DIR`, one TOML
                 file per service
    s6           `s6-svscan DIR`, one service directory per service
    runit        `runsvdir -P DIR`, one service directory per service
    supervisord  `supervisord -n -c FILE`, one [program:x] section per service
    pidone-nofile1024
                 pidone under `prlimit --nofile=1024:HARD`, for (a) at the
                 largest size only: with more than ~190 units pidone raises
                 its soft fd limit and then forks (instead of posix_spawn)
                 every unit to give the original limit back. Not in the bars.

Every service is the same small C program, `svc` (its source is SVC_C below;
gcc compiles it into the scratch directory at start-up). It stamps each step
with CLOCK_MONOTONIC into a FIFO the harness reads: 'S' as the first thing
main() does, 'R' when it announces readiness, 'E' just before it exits. So
"running" is observed directly, whatever the init logs, and the harness
compares those stamps with time.monotonic_ns() (the same clock) taken just
before it launched `unshare`. For s6 and runit, `run` is a symlink to `svc`
(no shell in between) unless a run script must do more (s6-svwait).

Measurements
(a) cold start: launch → the N-th service's 'S' stamp, for N = 10, 100, 500
    services that just sleep. Bars: pidone at 500 within 1.5× of direct and
    at most half of s6's time.
(b) 10 layers × 10: each service announces readiness 50 ms after it starts
    (pidone and direct: type "notify", READY=1 on $NOTIFY_SOCKET; s6: a
    newline on its notification-fd); every unit of layer k+1 requires every
    unit of layer k (900 edges; in s6 each run script of layer k+1 runs
    `s6-svwait -U` on the 10 services of layer k, then execs svc; as
    s6-svwait fails on a service whose s6-supervise has not started yet, and
    a failed run script is restarted only 1 s later, every service dir is
    given beforehand the event fifodir and a "down" status file that its
    s6-supervise would make; without them, s6 takes about 1 s longer).
    Measured: launch → the last service's 'R' stamp (ideal 500 ms plus the
    init's own start-up); the same from the first service's 'S' ("from 1st
    start", ideal 500 ms: the init's start-up left out); and the median
    hand-off, first 'S' of layer k+1 − last 'R' of layer k. runit (`sv start` has no readiness) and supervisord (no
    dependencies) cannot express this and are not run. Bar: pidone within
    1.15× of direct.
(c) shutdown of 100 running services: SIGTERM to PID 1 (through a pidfd) →
    PID 1 gone (its pidfd turns readable once it has exited, and PID 1 of a
    namespace exits only after every other process in it has). s6-svscan
    takes SIGTERM as `s6-svscanctl -t` (its documented graceful shutdown);
    runsvdir exits at once on SIGTERM and the kernel kills the rest (not
    graceful); supervisord stops its programs, then exits. Bar: pidone no
    slower than s6.
(d) VmRSS of PID 1 with the 100 services of (c) running, read 0.5 s after
    the last one started. Bar: under 20 MiB.

Rounds run the contenders in turn (A B C D, then B C D A, ...) so that the
noise of this shared machine hits all alike; medians over rounds are
reported, with ratios of pidone to each peer in the same run.

Caveats
- "direct" does no logging, no pipes, no pidfds, no state: it is a floor,
  not a competitor.
- Times include each init's own start-up (exec, Python imports, reading its
  configuration): that is part of what a container pays at boot.
- supervisord's numbers are dominated by its 1 s poll() tick. Debian's
  runsvdir usually sleeps 1 s before its first scan (strace shows a 1 s
  clock_nanosleep right after start), which dominates runit's times.
- The machine is shared with other jobs: compare within one run only.
- pidone's stdout (its log) goes to a file, as do everybody else's.
- Python runs with its bytecode cache (kept in the scratch directory and
  filled before the first measurement), as an installed pidone would; a
  checkout run under PYTHONDONTWRITEBYTECODE=1 recompiles every module at
  every start, which costs pidone about 40 ms more.

Run as root: `.venv/bin/python benchmarks/units.py [--quick] [--rounds N]
[--only NAME,...]`. The table goes to stdout, JSON to results/units.json.
respawn.py imports its machinery from here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import select
import shlex
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
RESULTS_DIR = HERE / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

BAR_COLD_VS_DIRECT = 1.5   # (a) pidone at 500 units: at most 1.5x direct
BAR_COLD_VS_S6 = 0.5       # (a) ... and at most half of s6-svscan
BAR_LAYERS = 1.15          # (b) pidone within 1.15x of direct
BAR_SHUTDOWN_VS_S6 = 1.0   # (c) no slower than s6-svscan
BAR_RSS_MIB = 20.0         # (d)

SETTLE = 0.5               # seconds between runs / before RSS
STOP_TIMEOUT = 30.0        # for a graceful stop to finish


class BenchError(Exception):
    """A measurement could not be made; the message says why."""


# --------------------------------------------------------------------------
# The service program and the bare harness

SVC_C = r"""
/* svc: the service of the benchmarks. It stamps CLOCK_MONOTONIC into the
 * FIFO named by $BENCH_FIFO as 16-byte records {kind, index, ns}:
 *   'S' first thing in main(), 'R' when it announces readiness, 'E' just
 *   before it exits.
 * Options (from argv, or from $BENCH_ARGS when argv has none, so that a
 * symlink can be an s6 or runit `run`; s6 passes the service's name):
 *   -i N   index put in the records
 *   -r MS  MS ms after start: stamp 'R', send READY=1 to $NOTIFY_SOCKET (if
 *          set) and a newline to the fd given by -f (s6 readiness)
 *   -f FD  s6 notification fd
 *   -u MS  exit MS ms after start (after readiness); without it, sleep until
 *          a signal kills it
 *   -x N   exit status with -u
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct rec { uint32_t kind, idx; uint64_t ns; };
static int fifo = -1;
static uint32_t idx;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void stamp(char kind)
{
    struct rec r = { (uint32_t)kind, idx, now_ns() };
    if (fifo >= 0)
        while (write(fifo, &r, sizeof r) < 0 && errno == EINTR) {}
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

static void announce(int fd)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path && *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        if (len < sizeof sa.sun_path) {
            memcpy(sa.sun_path, path, len);
            if (sa.sun_path[0] == '@')
                sa.sun_path[0] = 0;
            int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (s >= 0) {
                sendto(s, "READY=1", 7, 0, (struct sockaddr *)&sa,
                       offsetof(struct sockaddr_un, sun_path) + len);
                close(s);
            }
        }
    }
    if (fd >= 0) {
        while (write(fd, "\n", 1) < 0 && errno == EINTR) {}
        close(fd);
    }
}

int main(int argc, char **argv)
{
    long ready_ms = -1, up_ms = -1;
    int code = 0, notify_fd = -1, n = 0;
    char *words[64];
    if (argc > 1 && argv[1][0] == '-') {   /* s6 runs ./run with the service name */
        for (int i = 1; i < argc && n < 64; i++)
            words[n++] = argv[i];
    } else if (getenv("BENCH_ARGS")) {
        char *s = strdup(getenv("BENCH_ARGS")), *save = NULL;
        for (char *w = strtok_r(s, " ", &save); w && n < 64; w = strtok_r(NULL, " ", &save))
            words[n++] = w;
    }
    for (int i = 0; i + 1 < n; i += 2) {
        long v = strtol(words[i + 1], NULL, 10);
        if (!strcmp(words[i], "-i")) idx = (uint32_t)v;
        else if (!strcmp(words[i], "-r")) ready_ms = v;
        else if (!strcmp(words[i], "-f")) notify_fd = (int)v;
        else if (!strcmp(words[i], "-u")) up_ms = v;
        else if (!strcmp(words[i], "-x")) code = (int)v;
    }
    const char *path = getenv("BENCH_FIFO");
    if (path)
        fifo = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    stamp('S');
    if (ready_ms >= 0) {
        if (ready_ms)
            sleep_ms(ready_ms);
        stamp('R');
        announce(notify_fd);
    }
    if (up_ms >= 0) {
        if (up_ms)
            sleep_ms(up_ms);
        stamp('E');
        _exit(code);
    }
    for (;;)
        pause();
}
"""

DIRECT_PY = r'''
"""The bare harness ("direct"): PID 1 that posix_spawn()s the services of a
plan itself, each once everything it requires has sent READY=1 (services
without readiness count as ready once spawned); with "respawn", spawns a
service again at once when it exits. SIGTERM: SIGTERM to every service,
wait for them, exit 0."""
import json, os, signal, socket, select, sys

plan = json.load(open(sys.argv[1]))
services = plan["services"]
env = dict(os.environ)
notify_path = plan.get("notify_path")
sock = None
if notify_path:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    sock.bind(notify_path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    notify_env = dict(env, NOTIFY_SOCKET=notify_path)
running, ready, started = {}, set(), set()
stopping = False

def spawn(s):
    e = notify_env if s["notify"] else env
    pid = os.posix_spawn(s["argv"][0], s["argv"], e, setsid=True)
    running[pid] = s
    started.add(s["name"])
    if not s["notify"]:
        ready.add(s["name"])

def start_what_can():
    changed = True
    while changed:
        changed = False
        for s in services:
            if s["name"] not in started and all(r in ready for r in s["requires"]):
                spawn(s)
                changed = True

r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
signal.set_wakeup_fd(w)
for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda *_: None)
start_what_can()
fds = [r] + ([sock] if sock else [])
while True:
    readable = select.select(fds, [], [])[0]
    if r in readable:
        got = os.read(r, 4096)
        if not stopping and (signal.SIGTERM in got or signal.SIGINT in got):
            stopping = True
            for pid in running:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            s = running.pop(pid, None)
            if s is not None and s.get("respawn") and not stopping:
                spawn(s)
        if stopping and not running:
            sys.exit(0)
    if sock is not None and sock in readable:
        while True:
            try:
                data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                break
            pid = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = int.from_bytes(payload[:4], sys.byteorder)
            s = running.get(pid)
            if s is not None and b"READY=1" in data.split(b"\n"):
                ready.add(s["name"])
        start_what_can()
'''


@dataclass
class Helpers:
    """Paths of the compiled service and of the bare harness."""

    svc: str
    direct: str


def build_helpers(scratch: Path) -> Helpers:
    """Compile svc with gcc -O2 and write the direct harness into `scratch`."""
    src = scratch / "svc.c"
    src.write_text(SVC_C)
    exe = scratch / "svc"
    out = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(src)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise BenchError(f"gcc failed on svc.c:\n{out.stderr}")
    direct = scratch / "direct.py"
    direct.write_text(DIRECT_PY)
    for p in (scratch, exe):
        os.chmod(p, 0o755)
    return Helpers(str(exe), str(direct))


# --------------------------------------------------------------------------
# What to run, and how each contender says it


@dataclass
class Service:
    """One service of a benchmark, whatever runs it.

    restart: "keep" (it never exits), "now" (restart at once when it exits:
    pidone delay 0; peers do what they always do), "backoff" (the
    contender's default backoff, never giving up).
    """

    name: str
    args: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    notify: bool = False
    restart: str = "keep"
    # Declares itself ready as soon as it starts, to a supervisor that must be
    # told (s6's notification-fd: s6-supervise restarts a service that dies
    # at once only if it had been ready for a second, else after 1 s).
    ready_at_once: bool = False


@dataclass
class Contender:
    name: str
    tool: str             # the binary that must exist
    version: str = ""

    def build(self, workdir: Path, services: list[Service], helpers: Helpers) -> tuple[list[str], dict]:
        """Write the configuration into `workdir`; return (argv, extra env)."""
        return getattr(self, "_build_" + self.name.replace("-", "_"))(workdir, services, helpers)

    # -- one per contender ----------------------------------------------

    def _build_direct(self, workdir, services, helpers):
        plan = {"services": [
            {"name": s.name, "argv": [helpers.svc, *s.args], "requires": s.requires,
             "notify": s.notify, "respawn": s.restart != "keep"} for s in services]}
        if any(s.notify for s in services):
            plan["notify_path"] = str(workdir / "notify")
        (workdir / "plan.json").write_text(json.dumps(plan))
        return [sys.executable, helpers.direct, str(workdir / "plan.json")], {}

    def _build_pidone(self, workdir, services, helpers):
        units = workdir / "units"
        units.mkdir(mode=0o755)
        for s in services:
            lines = ["[service]", f"command = {json.dumps([helpers.svc, *s.args])}"]
            if s.notify:
                lines.append('type = "notify"')
            if s.requires:
                lines += ["", "[dependencies]", f"requires = {json.dumps(s.requires)}"]
            if s.notify:
                lines += ["", "[ready]", 'timeout = "60s"']
            if s.restart == "now":
                lines += ["", "[restart]", 'policy = "always"', "delay = 0", "max_retries = 0"]
            elif s.restart == "backoff":
                lines += ["", "[restart]", 'policy = "always"', "max_retries = 0"]
            path = units / f"{s.name}.toml"
            path.write_text("\n".join(lines) + "\n")
            os.chmod(path, 0o644)
        argv = [sys.executable, "-m", "pidone", "--units", str(units),
                "--runtime-dir", str(workdir / "run")]
        return argv, {}

    def _build_pidone_nofile1024(self, workdir, services, helpers):
        """pidone started with a soft RLIMIT_NOFILE of 1024, as Docker 25+ and
        containerd 2 give containers by default (hard limit unchanged)."""
        argv, env = self._build_pidone(workdir, services, helpers)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        hard_text = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        return ["prlimit", f"--nofile=1024:{hard_text}", "--", *argv], env

    def _service_dirs(self, scandir: Path, services, helpers, s6: bool) -> dict:
        """s6 and runit: one directory per service with `run`."""
        scandir.mkdir(mode=0o755)
        env = {}
        args_of = {}
        for s in services:
            args_of[s.name] = list(s.args)
            if s6 and s.ready_at_once and not s.notify:
                args_of[s.name] = ["-r", "0", *args_of[s.name]]
            if s6 and (s.notify or s.ready_at_once):
                args_of[s.name] += ["-f", "3"]
        shared = {shlex.join(a) for a in args_of.values()}
        simple = not any(s.requires for s in services) and len(shared) == 1
        if simple and args_of[services[0].name]:
            env["BENCH_ARGS"] = " ".join(args_of[services[0].name])
        for s in services:
            d = scandir / s.name
            d.mkdir(mode=0o755)
            args = args_of[s.name]
            if s6 and (s.notify or s.ready_at_once):
                (d / "notification-fd").write_text("3\n")
            if simple:
                os.symlink(helpers.svc, d / "run")
                continue
            script = ["#!/bin/sh"]
            if s.requires:
                deps = " ".join(shlex.quote(f"../{r}") for r in s.requires)
                script.append(f"s6-svwait -U -t 60000 {deps} || exit 1")
            script.append("exec " + shlex.join([helpers.svc, *args]))
            (d / "run").write_text("\n".join(script) + "\n")
            os.chmod(d / "run", 0o755)
            if s6:
                # s6-svwait on a service whose s6-supervise has not started
                # yet fails ("unable to s6_svstatus_read"), and s6-supervise
                # restarts a failed run script only 1 s later. So each
                # service dir gets what its s6-supervise would make first: the
                # event fifodir, and a status of "down, not ready" (35 zero
                # bytes, s6 2.11's format), which s6-supervise overwrites.
                subprocess.run(["s6-mkfifodir", str(d / "event")], check=True, timeout=10)
                (d / "supervise").mkdir(mode=0o700)
                (d / "supervise" / "status").write_bytes(bytes(35))
        return env

    def _build_s6(self, workdir, services, helpers):
        scandir = workdir / "scan"
        env = self._service_dirs(scandir, services, helpers, s6=True)
        return ["s6-svscan", str(scandir)], env

    def _build_runit(self, workdir, services, helpers):
        if any(s.notify or s.requires for s in services):
            raise BenchError("runit has no readiness: cannot express this benchmark")
        scandir = workdir / "scan"
        env = self._service_dirs(scandir, services, helpers, s6=False)
        return ["runsvdir", "-P", str(scandir)], env

    def _build_supervisord(self, workdir, services, helpers):
        if any(s.notify or s.requires for s in services):
            raise BenchError("supervisord has no readiness or dependencies")
        conf = [
            "[supervisord]", "nodaemon=true", "user=root", "loglevel=warn",
            f"logfile={workdir / 'supervisord.log'}", f"pidfile={workdir / 'supervisord.pid'}",
            f"childlogdir={workdir}", "",
        ]
        for s in services:
            conf += [f"[program:{s.name}]", "command=" + shlex.join([helpers.svc, *s.args]),
                     "autostart=true", "autorestart=true",
                     "stdout_logfile=NONE", "stderr_logfile=NONE", "startretries=1000000"]
            if s.restart != "backoff":
                conf.append("startsecs=0")   # "backoff" keeps the default startsecs=1
            conf.append("")
        (workdir / "supervisord.conf").write_text("\n".join(conf))
        return ["supervisord", "-n", "-c", str(workdir / "supervisord.conf")], {}


def all_contenders() -> list[Contender]:
    """Every contender this benchmark knows, in table order."""
    return [
        Contender("direct", sys.executable, "Python os.posix_spawn loop"),
        Contender("pidone", sys.executable, pidone_version()),
        Contender("pidone-nofile1024", "prlimit", ""),
        Contender("s6", "s6-svscan", deb_version("s6")),
        Contender("runit", "runsvdir", deb_version("runit")),
        Contender("supervisord", "supervisord", deb_version("supervisor")),
    ]


def pidone_version() -> str:
    try:
        from importlib.metadata import version
        return "pidone " + version("pidone")
    except Exception:  # noqa: BLE001 - reported by the preflight instead
        return "pidone"


def deb_version(package: str) -> str:
    """`package VERSION` from dpkg, or "" when it is not installed."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout:
            return f"{package} {out.stdout}"
    return ""


def usable(contenders: list[Contender], only: set[str]) -> tuple[list[Contender], dict[str, str]]:
    """The contenders to run, and why any were skipped."""
    chosen, skipped = [], {}
    for c in contenders:
        if only and c.name not in only:
            continue
        if not shutil.which(c.tool):
            skipped[c.name] = f"{c.tool} is not installed"
        else:
            chosen.append(c)
    return chosen, skipped


# --------------------------------------------------------------------------
# The stamps services write


class Stamps:
    """The FIFO the services stamp into, and what they stamped so far.

    Opened O_RDWR by the harness, so writers never block on open and the
    reader never sees EOF. `items` holds (kind, index, ns) in arrival order.
    """

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(path, 0o666)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self._buf = b""
        self.items: list[tuple[str, int, int]] = []

    def read(self, timeout: float) -> int:
        """Wait up to `timeout` s for stamps; return how many new ones."""
        if not select.select([self.fd], [], [], max(0.0, timeout))[0]:
            return 0
        new = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                data = os.read(self.fd, 65536)
                if not data:
                    break
                self._buf += data
        while len(self._buf) >= 16:
            rec, self._buf = self._buf[:16], self._buf[16:]
            kind = int.from_bytes(rec[0:4], sys.byteorder)
            idx = int.from_bytes(rec[4:8], sys.byteorder)
            ns = int.from_bytes(rec[8:16], sys.byteorder)
            self.items.append((chr(kind), idx, ns))
            new += 1
        return new

    def count(self, kind: str) -> int:
        return sum(1 for k, _, _ in self.items if k == kind)

    def wait_for(self, kind: str, n: int, timeout: float, run: "Run | None" = None) -> None:
        """Until `n` stamps of `kind` have arrived; BenchError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while self.count(kind) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                what = f"only {self.count(kind)} of {n} '{kind}' stamps within {timeout:g} s"
                raise run.error(what) if run else BenchError(what)
            self.read(min(left, 0.5))
            if run is not None and run.proc.poll() is not None and self.count(kind) < n:
                self.read(0)
                if self.count(kind) < n:
                    raise run.error(f"exited with {run.proc.returncode} after "
                                    f"{self.count(kind)} of {n} '{kind}' stamps")

    def close(self) -> None:
        os.close(self.fd)


# --------------------------------------------------------------------------
# A contender as PID 1


class Run:
    """`argv` as PID 1 of a fresh PID namespace, its output in a file.

    `t0` is time.monotonic_ns() just before `unshare` was started. Leaving the
    context kills what is left: SIGKILL to PID 1 through its pidfd (which
    ends the namespace) and to unshare's process group.
    """

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str]):
        self.name = name
        self.log_path = workdir / "output.log"
        self._log = open(self.log_path, "wb")
        self.pid1: int | None = None
        self.pidfd: int | None = None
        self.t0 = time.monotonic_ns()
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *argv],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=workdir, env=env, start_new_session=True)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    def find_pid1(self, timeout: float = 10.0) -> int:
        """PID 1's host pid (the one child of unshare), with a pidfd on it."""
        if self.pid1 is not None:
            return self.pid1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # pids are handed out in order: look just above unshare's first.
            candidates = list(range(self.proc.pid + 1, self.proc.pid + 64))
            for attempt in (candidates, None):
                for pid in attempt if attempt is not None else all_pids():
                    if proc_ppid(pid) == self.proc.pid:
                        with contextlib.suppress(OSError):
                            fd = os.pidfd_open(pid)
                            if proc_ppid(pid) == self.proc.pid:
                                self.pid1, self.pidfd = pid, fd
                                return pid
                            os.close(fd)
            if self.proc.poll() is not None:
                raise self.error("unshare exited before PID 1 was found")
            time.sleep(0.005)
        raise self.error("PID 1 not found")

    def terminate(self, timeout: float = STOP_TIMEOUT) -> float | None:
        """SIGTERM to PID 1; ms until it is gone, None if it is still there
        after `timeout` s."""
        self.find_pid1()
        t = time.perf_counter_ns()
        signal.pidfd_send_signal(self.pidfd, signal.SIGTERM)
        if not select.select([self.pidfd], [], [], timeout)[0]:
            return None
        ms = (time.perf_counter_ns() - t) / 1e6
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        return ms

    def kill(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name}: unshare {self.proc.pid} still there after SIGKILL",
                  file=sys.stderr)
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None
        if not self._log.closed:
            self._log.close()

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def error(self, what: str) -> BenchError:
        tail = "\n    ".join(self.output().strip().splitlines()[-8:])
        return BenchError(f"{self.name}: {what}" + (f"\n    output: {tail}" if tail else ""))


def all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def proc_stat_at(piddir: str) -> list[bytes]:
    """Fields of PIDDIR/stat after the command name (state is [0])."""
    with open(f"{piddir}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def proc_ppid(pid: int) -> int | None:
    try:
        return int(proc_stat_at(f"/proc/{pid}")[1])
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def contender_env(scratch: Path) -> dict[str, str]:
    """The environment every contender starts with: ours, except that Python
    may use and write compiled bytecode, kept in the scratch directory (a
    `pip install`ed pidone has its .pyc files; an editable checkout run with
    PYTHONDONTWRITEBYTECODE=1 would recompile every module at every start).
    """
    env = dict(os.environ)
    for key in ("NOTIFY_SOCKET", "PYTHONDONTWRITEBYTECODE", "BENCH_ARGS"):
        env.pop(key, None)
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def warm_up(scratch: Path) -> None:
    """Compile pidone's modules (and what they import) into the bytecode
    cache every contender uses, so that no measured run pays for it."""
    code = ("import pidone.cli, pidone.daemon, pidone.supervisor, pidone.loader, pidone.graph, "
            "pidone.machine, pidone.spawn, pidone.notify, pidone.probes, json, socket, select")
    subprocess.run([sys.executable, "-c", code], env=contender_env(scratch), check=True, timeout=60)
    import pidone
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.dirname(pidone.__file__)],
                   env=contender_env(scratch), check=True, timeout=120, stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def launched(contender: Contender, services: list[Service], helpers: Helpers, scratch: Path,
             tag: str, env_extra: dict | None = None):
    """Build `contender`'s configuration for `services` in a fresh directory
    and run it as PID 1; yield (Run, Stamps). Everything is killed and
    removed on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{contender.name}-{tag}-", dir=scratch))
    os.chmod(workdir, 0o755)
    stamps = Stamps(workdir / "stamps")
    try:
        argv, env = contender.build(workdir, services, helpers)
        full_env = contender_env(scratch)
        full_env.update(BENCH_FIFO=str(stamps.path), **env, **(env_extra or {}))
        with Run(contender.name, argv, workdir, full_env) as run:
            yield run, stamps
    finally:
        stamps.close()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# The measurements


def cold_start(c: Contender, n: int, helpers: Helpers, scratch: Path) -> dict:
    """(a) ms from launching the init to the n-th service's start stamp; also
    to the first one (the init's own start-up), and the mean µs between two
    starts after that (its spawn rate)."""
    services = [Service(f"u{i}") for i in range(n)]
    with launched(c, services, helpers, scratch, f"cold{n}") as (run, stamps):
        stamps.wait_for("S", n, timeout=30 + n * 0.05, run=run)
        starts = sorted(ns for k, _, ns in stamps.items if k == "S")
        return {"all_ms": (starts[-1] - run.t0) / 1e6, "first_ms": (starts[0] - run.t0) / 1e6,
                "per_unit_us": (starts[-1] - starts[0]) / 1e3 / max(1, n - 1)}


def layered(c: Contender, layers: int, width: int, ready_ms: int, helpers: Helpers,
            scratch: Path) -> dict:
    """(b) ms from launch to the last readiness; median hand-off ms."""
    services = []
    for k in range(layers):
        for j in range(width):
            requires = [f"l{k - 1}u{i}" for i in range(width)] if k else []
            services.append(Service(f"l{k}u{j}", ["-i", str(k * width + j), "-r", str(ready_ms)],
                                    requires, notify=True))
    total = layers * width
    with launched(c, services, helpers, scratch, "layers") as (run, stamps):
        stamps.wait_for("R", total, timeout=60 + layers * 5, run=run)
        starts: dict[int, list[int]] = {}
        readies: dict[int, list[int]] = {}
        for kind, idx, ns in stamps.items:
            (starts if kind == "S" else readies).setdefault(idx // width, []).append(ns)
        handoffs = [(min(starts[k]) - max(readies[k - 1])) / 1e6 for k in range(1, layers)]
        spreads = [(max(starts[k]) - min(starts[k])) / 1e6 for k in range(layers)]
        restarts = stamps.count("S") - total
        last_ready = max(ns for k, _, ns in stamps.items if k == "R")
        return {"total_ms": (last_ready - run.t0) / 1e6,
                "from_first_start_ms": (last_ready - min(starts[0])) / 1e6,
                "first_start_ms": (min(starts[0]) - run.t0) / 1e6,
                "handoff_ms": statistics.median(handoffs) if handoffs else None,
                "layer_spread_ms": statistics.median(spreads),
                "extra_starts": restarts}


def shutdown_and_rss(c: Contender, n: int, helpers: Helpers, scratch: Path) -> dict:
    """(c) and (d): n services up; VmRSS of PID 1; SIGTERM → PID 1 gone."""
    services = [Service(f"u{i}") for i in range(n)]
    with launched(c, services, helpers, scratch, "stop") as (run, stamps):
        stamps.wait_for("S", n, timeout=30 + n * 0.05, run=run)
        pid1 = run.find_pid1()
        time.sleep(SETTLE)
        rss = rss_kib(pid1) / 1024
        ms = run.terminate()
        if ms is None:
            raise run.error(f"PID 1 still there {STOP_TIMEOUT:g} s after SIGTERM")
        return {"shutdown_ms": ms, "rss_mib": rss, "exit_status": run.proc.returncode}


# --------------------------------------------------------------------------
# Summaries, ratios, bars, machine


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


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
    with contextlib.suppress(OSError):
        load = Path("/proc/loadavg").read_text().split()[0]
    import pidone
    return {"cpu": model, "cores": os.cpu_count(), "kernel": platform.release(), "os": debian,
            "python": platform.python_version(), "loadavg_1m_at_end": load,
            "pidone_from": os.path.dirname(pidone.__file__),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def machine_line(info: dict) -> str:
    return (f"machine: {info['cpu']}, {info['cores']} cores, kernel {info['kernel']}, {info['os']}, "
            f"Python {info['python']}, {info['date']} (load average {info['loadavg_1m_at_end']} at the end); "
            f"pidone from {info['pidone_from']}")


def report_footer(skipped: dict[str, str], failures: dict[str, list[str]], info: dict, versions: list[str],
                  config: dict, failed: str = "measurement") -> list[str]:
    """The lines every report ends with: what was skipped or failed (each
    failure's first line), the machine, the versions, the configuration."""
    lines = [f"skipped {name}: {why}" for name, why in skipped.items()]
    lines += [f"{name}: {len(errs)} failed {failed}(s), first: {errs[0].splitlines()[0]}"
              for name, errs in failures.items()]
    return lines + ["", machine_line(info), "versions: " + ", ".join(v for v in versions if v), f"config: {config}"]


def only_names(items: list[str]) -> set[str]:
    """The contenders named by --only (repeated, or comma-separated)."""
    return {n.strip() for item in items for n in item.split(",") if n.strip()}


def fmt(value, spec: str = "{:.1f}") -> str:
    return "–" if value is None else spec.format(value)


def table(rows: list[str], columns: list[tuple[str, str]], cell) -> list[str]:
    """Rows × columns; `cell(row, key)` gives the text."""
    width = max(len(r) for r in rows + ["pidone/supervisord"])
    widths = [max(len(title), 8) for _, title in columns]
    out = ["  ".join([" " * width] + [t.rjust(w) for (_, t), w in zip(columns, widths)])]
    for r in rows:
        out.append("  ".join([r.ljust(width)] + [cell(r, k).rjust(w) for (k, _), w in zip(columns, widths)]))
    return out


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("PASS" if ok else "FAIL")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)
    print(f"written: {path}", file=sys.stderr)


def rotate(items: list, k: int) -> list:
    k %= max(1, len(items))
    return items[k:] + items[:k]


def check_machine() -> None:
    if os.geteuid() != 0:
        raise BenchError("run as root: unshare --pid needs it")
    for tool in ("unshare", "gcc"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is not installed (scripts/setup installs it)")


def run_main(script: str, args: argparse.Namespace, run_all) -> int:
    """`run_all(args, scratch)` as a benchmark's main(): its exit status.

    The one wrapper of units.py, respawn.py, control.py, reload.py and
    reexec.py, kept here with the rest of their shared machinery so that they
    stop, check and clean up alike. SIGTERM (timeout, a CI stop) unwinds like
    an exception, so that every namespace still running is killed on the way
    out. check_machine() comes first; the scratch directory
    (pidone-bench-SCRIPT-* in the temporary directory, mode 0755) is removed
    afterwards. A BenchError is printed as "SCRIPT.py: message", exit 1.
    """
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        check_machine()
        with tempfile.TemporaryDirectory(prefix=f"pidone-bench-{script}-") as tmp:
            scratch = Path(tmp)
            os.chmod(scratch, 0o755)
            return run_all(args, scratch)
    except BenchError as e:
        print(f"{script}.py: {e}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------
# Driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="rounds, each running every contender (5; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round, 10 and 100 units, 4 layers of 5")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these contenders (repeat or comma-separate): "
                        "direct, pidone, s6, runit, supervisord")
    p.add_argument("--sizes", default=None, help="unit counts for (a) (10,100,500; 10,100 with --quick)")
    p.add_argument("--layers", type=int, default=None, help="layers for (b) (10; 4 with --quick)")
    p.add_argument("--width", type=int, default=None, help="units per layer for (b) (10; 5 with --quick)")
    p.add_argument("--ready-ms", type=int, default=50, help="each unit's time to ready in (b) (50)")
    p.add_argument("--stop-units", type=int, default=100, help="units for (c) and (d) (100)")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "units.json")
    args = p.parse_args(argv)
    quick = {"sizes": "10,100", "layers": 4, "width": 5}
    full = {"sizes": "10,100,500", "layers": 10, "width": 10}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.only = only_names(args.only)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main("units", parse_args(argv), run_all)


LAYERED = ("direct", "pidone", "s6")
NOFILE_VARIANT = "pidone-nofile1024"   # (a) only, largest size only; not in the bars
STOPPABLE = ("direct", "pidone", "s6", "runit", "supervisord")


def run_all(args, scratch: Path) -> int:
    helpers = build_helpers(scratch)
    warm_up(scratch)
    contenders, skipped = usable(all_contenders(), args.only)
    if not contenders:
        raise BenchError("no contender can run")
    names = [c.name for c in contenders]
    cold = {c.name: {n: [] for n in args.sizes} for c in contenders}
    cold_detail = {c.name: {n: [] for n in args.sizes} for c in contenders}
    layers = {c.name: [] for c in contenders if c.name in LAYERED}
    stops = {c.name: [] for c in contenders if c.name in STOPPABLE}
    failures: dict[str, list[str]] = {}

    def attempt(name: str, what: str, fn):
        try:
            return fn()
        except BenchError as e:
            failures.setdefault(name, []).append(f"{what}: {e}")
            print(f"  {name} {what}: FAILED: {e}", file=sys.stderr)
            return None

    for rnd in range(args.rounds):
        t = time.monotonic()
        for n in args.sizes:
            for c in rotate(contenders, rnd):
                if c.name == NOFILE_VARIANT and n != args.sizes[-1]:
                    continue   # below ~190 units pidone does not touch its fd limit
                r = attempt(c.name, f"cold start {n}", lambda: cold_start(c, n, helpers, scratch))
                if r is not None:
                    cold[c.name][n].append(r["all_ms"])
                    cold_detail[c.name][n].append(dict(r, round=rnd))
                time.sleep(SETTLE)
        for c in rotate([c for c in contenders if c.name in stops], rnd):
            r = attempt(c.name, "shutdown", lambda: shutdown_and_rss(c, args.stop_units, helpers, scratch))
            if r is not None:
                stops[c.name].append(dict(r, round=rnd))
            time.sleep(SETTLE)
        for c in rotate([c for c in contenders if c.name in layers], rnd):
            r = attempt(c.name, "layers", lambda: layered(c, args.layers, args.width, args.ready_ms,
                                                          helpers, scratch))
            if r is not None:
                layers[c.name].append(dict(r, round=rnd))
            time.sleep(SETTLE)
        last = ", ".join(f"{c.name} {fmt(cold[c.name][args.sizes[-1]][-1] if cold[c.name][args.sizes[-1]] else None, '{:.0f}')}"
                         for c in contenders)
        print(f"round {rnd + 1}/{args.rounds} ({time.monotonic() - t:.0f} s): "
              f"cold {args.sizes[-1]} ms: {last}", file=sys.stderr)

    summary = {}
    for name in names:
        s = {f"cold_{n}_ms": median_or_none(cold[name][n]) for n in args.sizes}
        big_runs = cold_detail[name][args.sizes[-1]]
        s["first_start_ms"] = median_or_none([r["first_ms"] for r in big_runs])
        s["per_unit_us"] = median_or_none([r["per_unit_us"] for r in big_runs])
        if name in layers:
            rs = layers[name]
            s["layers_ms"] = median_or_none([r["total_ms"] for r in rs])
            s["layers_from_first_ms"] = median_or_none([r["from_first_start_ms"] for r in rs])
            s["handoff_ms"] = median_or_none([r["handoff_ms"] for r in rs if r["handoff_ms"] is not None])
            s["layers_extra_starts"] = max((r["extra_starts"] for r in rs), default=None)
        if name in stops:
            rs = stops[name]
            s["shutdown_ms"] = median_or_none([r["shutdown_ms"] for r in rs])
            s["rss_mib"] = median_or_none([r["rss_mib"] for r in rs]) if name != "direct" or rs else None
            s["exit_statuses"] = sorted({r["exit_status"] for r in rs})
        summary[name] = s

    big = args.sizes[-1]
    runs = {"cold": cold_detail, "layers": layers, "shutdown": stops}
    bars = build_bars(summary, runs, big)
    info = machine()
    config = {"rounds": args.rounds, "sizes": args.sizes, "layers": args.layers, "width": args.width,
              "ready_ms": args.ready_ms, "stop_units": args.stop_units, "quick": args.quick}
    print(render(summary, names, args, bars, info, config, skipped, failures, contenders))
    write_json(args.output, {
        "benchmark": "units", "machine": info, "config": config,
        "versions": {c.name: c.version for c in contenders}, "summary": summary,
        "ratios": ratios(summary, names), "bars": bars, "skipped": skipped, "failures": failures,
        "raw": {"cold_ms": cold, "cold_detail": cold_detail, "layers": layers, "shutdown": stops},
    })
    return 0


def ratios(summary: dict, names: list[str]) -> dict:
    out = {}
    if "pidone" not in summary:
        return out
    for other in names:
        if other == "pidone":
            continue
        out[f"pidone/{other}"] = {k: ratio(v, summary[other].get(k)) for k, v in summary["pidone"].items()
                                  if k.endswith("_ms") or k == "rss_mib"}
    return out


def paired_ratio(a_runs: list[dict], b_runs: list[dict], key: str) -> float | None:
    """Median over rounds of a/b, each round's pidone against the same
    round's peer (run seconds apart): steadier than a ratio of medians when
    a whole round is slowed by other jobs."""
    b_by_round = {r["round"]: r[key] for r in b_runs if r.get(key)}
    values = [r[key] / b_by_round[r["round"]] for r in a_runs
              if r.get(key) is not None and r["round"] in b_by_round]
    return statistics.median(values) if values else None


def build_bars(summary: dict, runs: dict, big: int) -> dict:
    """The issue's bars. Ratios are medians of per-round ratios; the ratio of
    the medians is kept alongside."""
    p = summary.get("pidone", {})
    cold = {name: by_size.get(big, []) for name, by_size in runs["cold"].items()}
    key = f"cold_{big}_ms"

    def bar(kind, a, b, k, limit, summary_key):
        r = paired_ratio(runs[kind].get(a, []) if kind != "cold" else cold.get(a, []),
                         runs[kind].get(b, []) if kind != "cold" else cold.get(b, []), k)
        return {"ratio": r, "ratio_of_medians": ratio(p.get(summary_key), summary.get(b, {}).get(summary_key)),
                "bar": limit, "pass": None if r is None else r <= limit}

    rss = p.get("rss_mib")
    return {
        f"cold_{big}_vs_direct": bar("cold", "pidone", "direct", "all_ms", BAR_COLD_VS_DIRECT, key),
        f"cold_{big}_vs_s6": bar("cold", "pidone", "s6", "all_ms", BAR_COLD_VS_S6, key),
        "layers_vs_direct": bar("layers", "pidone", "direct", "total_ms", BAR_LAYERS, "layers_ms"),
        "shutdown_vs_s6": bar("shutdown", "pidone", "s6", "shutdown_ms", BAR_SHUTDOWN_VS_S6, "shutdown_ms"),
        "rss_mib": {"value": rss, "bar": BAR_RSS_MIB, "pass": None if rss is None else rss < BAR_RSS_MIB},
    }


def render(summary, names, args, bars, info, config, skipped, failures, contenders) -> str:
    cols = [(f"cold_{n}_ms", f"all {n} up ms") for n in args.sizes]
    cols += [("layers_ms", f"{args.layers}x{args.width} ms"), ("layers_from_first_ms", "from 1st start"),
             ("handoff_ms", "hand-off ms"),
             ("shutdown_ms", f"stop {args.stop_units} ms"), ("rss_mib", "RSS MiB")]

    def cell(row, key):
        if row.startswith("pidone/"):
            return fmt(ratio(summary["pidone"].get(key), summary[row[7:]].get(key)), "{:.2f}×")
        v = summary[row].get(key)
        return fmt(v, "{:.2f}" if key == "handoff_ms" else "{:.1f}")

    rows = list(names)
    if "pidone" in summary:
        rows += [f"pidone/{n}" for n in names if n not in ("pidone", NOFILE_VARIANT)]
    ideal = args.layers * args.ready_ms
    lines = ["", f"Starting and stopping units (medians of {args.rounds} round(s); ms unless stated)", ""]
    lines += table(rows, cols, cell)
    big = args.sizes[-1]
    lines += ["", f"all {big} up = first start (the init's own start-up: exec, imports, configuration) "
              f"+ {big - 1} × spacing between two starts:"]
    lines += table(names, [("first_start_ms", "first start ms"), ("per_unit_us", "µs/unit")],
                   lambda r, k: fmt(summary[r].get(k), "{:.1f}" if k == "first_start_ms" else "{:.0f}"))
    if NOFILE_VARIANT in summary:
        lines.append(f"{NOFILE_VARIANT}: pidone started with a soft fd limit of 1024 (hard unchanged), the "
                     "default of Docker 25+/containerd 2; run at the largest size only, not in the bars.")
    lines += ["",
              f"{args.layers}x{args.width}: launch → last unit ready, ideal {ideal} ms + the init's start-up; "
              f"'from 1st start': the same from the first unit's start (ideal {ideal} ms); "
              "hand-off: last ready of a layer → first start of the next.",
              "runit and supervisord cannot express readiness-gated dependencies: no layered run.",
              "runit: runsvdir exits at once on SIGTERM, the kernel kills the rest (not graceful)."]
    for name in names:
        st = summary[name].get("exit_statuses")
        if st and st != [0]:
            lines.append(f"{name}: exit status after SIGTERM {st}")
        extra = summary[name].get("layers_extra_starts")
        if extra:
            lines.append(f"{name}: {extra} extra starts in the layered run (restarts)")
    b = bars
    lines += ["", "bars (pidone, same run; ratio = median over rounds of pidone/peer in that round):",
              f"  (a) all {big} up vs direct  {fmt(b[f'cold_{big}_vs_direct']['ratio'], '{:.2f}×')} (bar ≤ {BAR_COLD_VS_DIRECT}×): {verdict(b[f'cold_{big}_vs_direct']['pass'])}",
              f"  (a) all {big} up vs s6      {fmt(b[f'cold_{big}_vs_s6']['ratio'], '{:.2f}×')} (bar ≤ {BAR_COLD_VS_S6}×): {verdict(b[f'cold_{big}_vs_s6']['pass'])}",
              f"  (b) layers vs direct      {fmt(b['layers_vs_direct']['ratio'], '{:.2f}×')} (bar ≤ {BAR_LAYERS}×): {verdict(b['layers_vs_direct']['pass'])}",
              f"  (c) shutdown vs s6        {fmt(b['shutdown_vs_s6']['ratio'], '{:.2f}×')} (bar ≤ {BAR_SHUTDOWN_VS_S6}×): {verdict(b['shutdown_vs_s6']['pass'])}",
              f"  (d) PID 1 RSS             {fmt(b['rss_mib']['value'], '{:.1f} MiB')} (bar < {BAR_RSS_MIB:g} MiB): {verdict(b['rss_mib']['pass'])}"]
    if big != 500:
        lines.append(f"  (the issue's bar (a) is at 500 units; this run's largest is {big})")
    lines += report_footer(skipped, failures, info, [c.version for c in contenders], config)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""`pidone status` round trip: the whole CLI process, fork+exec to exit, run
from the host against pidone, supervisord and s6 each running N services as
PID 1 of their own PID namespace (N = 10 and 500).

Every contender runs as the real PID 1 of a fresh PID namespace,

    unshare --pid --fork --mount-proc --kill-child INIT ...

with INIT `python -m pidone --units DIR --runtime-dir DIR` (one TOML file
per service), `supervisord -n -c FILE` (one [program:x] section per service,
plus the [unix_http_server]/[supervisorctl] sections supervisorctl needs) or
`s6-svscan DIR` (one service directory per service, each a symlink from the
scan directory to a directory of its own, with a `#!/bin/sh` run script that
execs the service). The services are `svc` of units.py, each with its own
index (`svc -i I`), so a service can be told from the others in /proc.

The clients, each timed from posix_spawn() to waitpid() by the harness, with
stdout and stderr to /dev/null (their output is checked once per size,
untimed, before the timed calls):

    pidone          python -m pidone status --runtime-dir RUN       (every unit)
    supervisorctl   supervisorctl -c CONF status                    (every program)
    s6-svstat loop  sh -c 'for d in SCAN/*; do s6-svstat $d; done'  (every service)
  and, for one service only:
    pidone u0         python -m pidone status u0 --runtime-dir RUN
    supervisorctl u0  supervisorctl -c CONF status u0
    s6-svstat u0      s6-svstat SCAN/u0
  and the floor of any Python CLI:
    python -c pass    the same interpreter as pidone's CLI, doing nothing

s6-svstat reads one service directory per call, so s6 has no "status of
everything" command. The row above is one shell running s6-svstat over the
scan directory, as a user would type it: one process for the harness to
time, N fork+execs inside it. (One harness call per directory instead would
add the harness's own spawn cost N times and say the same thing; the
single-directory row gives that per-call cost directly.)

Calls are interleaved: each round runs every client once, in an order that
rotates from round to round (A B C, B C A, ...), so the noise of this shared
machine hits all alike; ROUNDS rounds (30) after 3 warm-up rounds. Median
and p90 (nearest rank) per client and size; ratios pidone / peer.

The bar (from the issue): `pidone status` faster than `supervisorctl
status`, at each size (medians, same run).

The Python CLIs (pidone and supervisorctl) run with their bytecode cached in
the scratch directory (PYTHONPYCACHEPREFIX, filled by the warm-up), as an
installed package would.

This module also holds what reload.py and reexec.py share: `Init` (a
contender over N indexed services, its configuration changeable in place),
`time_command`, `pidone_request` and `svc_pids`.

Run as root: `.venv/bin/python benchmarks/control.py [--quick] [--rounds N]
[--sizes 10,500]`. Table to stdout, JSON to results/control.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import select
import shlex
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from units import (  # noqa: E402 - the shared machinery of the benchmarks
    RESULTS_DIR, BenchError, Helpers, Run, Stamps, build_helpers, contender_env, deb_version, fmt,
    machine, only_names, pidone_version, ratio, report_footer, rotate, run_main, table, verdict, warm_up,
    write_json,
)

BAR_VS_SUPERVISORCTL = 1.0   # pidone status median below supervisorctl's
CALL_TIMEOUT = 30.0          # seconds for one client call
WARMUP_ROUNDS = 3

PEERS = ("pidone", "supervisord", "s6")
TOOLS = {"pidone": [sys.executable],
         "supervisord": ["supervisord", "supervisorctl"],
         "s6": ["s6-svscan", "s6-svscanctl", "s6-svstat", "sh"]}


# --------------------------------------------------------------------------
# A contender over N indexed services


class Init:
    """`kind` (pidone, supervisord or s6) as PID 1 of its own namespace over
    services u0..u{n-1}, service I running `svc -i I -x G`, where G is the
    service's generation (0 at start; `change` bumps it, which changes the
    command and so the definition; svc ignores -x unless told to exit).

    Configuration (all under `workdir`):
      pidone       units/uI.toml; runtime directory run/
      supervisord  supervisord.conf with [program:uI]; socket supervisor.sock
      s6           sv/uI.gG/run (#!/bin/sh, exec svc ...); scan/uI.gG is a
                   symlink to ../sv/uI.gG; a change swaps the symlink for
                   one to a new directory (see `change`)

    Use as a context manager: leaving kills PID 1 (SIGKILL through a pidfd,
    which ends the namespace) and unshare's process group, then removes the
    directory.
    """

    def __init__(self, kind: str, n: int, helpers: Helpers, scratch: Path):
        self.kind, self.n, self.helpers, self.scratch = kind, n, helpers, scratch
        self.gen = [0] * n
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{kind}-{n}-", dir=scratch))
        os.chmod(self.workdir, 0o755)
        self.stamps = Stamps(self.workdir / "stamps")
        self.run: Run | None = None
        try:
            argv = getattr(self, "_setup_" + kind)()
            env = contender_env(scratch)
            env["BENCH_FIFO"] = str(self.stamps.path)
            self.run = Run(f"{kind}-{n}", argv, self.workdir, env)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Init":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.run is not None:
            self.run.kill()
        self.stamps.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- configuration ---------------------------------------------------

    def argv_of(self, i: int) -> list[str]:
        return [self.helpers.svc, "-i", str(i), "-x", str(self.gen[i])]

    @property
    def units_dir(self) -> Path:
        return self.workdir / "units"

    @property
    def runtime_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def conf(self) -> Path:
        return self.workdir / "supervisord.conf"

    @property
    def scandir(self) -> Path:
        return self.workdir / "scan"

    def _setup_pidone(self) -> list[str]:
        self.units_dir.mkdir(mode=0o755)
        for i in range(self.n):
            self._write_unit(i)
        return [sys.executable, "-m", "pidone", "--units", str(self.units_dir),
                "--runtime-dir", str(self.runtime_dir)]

    def _write_unit(self, i: int) -> None:
        """uI.toml, written whole and renamed into place (a reload must never
        read half a file); the temporary name is a dotfile, which pidone skips."""
        tmp = self.units_dir / f".u{i}.tmp"
        tmp.write_text(f"[service]\ncommand = {json.dumps(self.argv_of(i))}\n")
        os.chmod(tmp, 0o644)
        tmp.replace(self.units_dir / f"u{i}.toml")

    def _setup_supervisord(self) -> list[str]:
        self._write_conf()
        return ["supervisord", "-n", "-c", str(self.conf)]

    def _write_conf(self) -> None:
        w = self.workdir
        lines = [
            "[supervisord]", "nodaemon=true", "user=root", "loglevel=warn",
            f"logfile={w / 'supervisord.log'}", f"pidfile={w / 'supervisord.pid'}", f"childlogdir={w}", "",
            "[unix_http_server]", f"file={w / 'supervisor.sock'}", "chmod=0700", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{w / 'supervisor.sock'}", "",
        ]
        for i in range(self.n):
            lines += [f"[program:u{i}]", "command=" + shlex.join(self.argv_of(i)),
                      "autostart=true", "autorestart=true", "startsecs=0",
                      "stdout_logfile=NONE", "stderr_logfile=NONE", ""]
        tmp = w / ".supervisord.conf.tmp"
        tmp.write_text("\n".join(lines))
        tmp.replace(self.conf)

    def _setup_s6(self) -> list[str]:
        (self.workdir / "sv").mkdir(mode=0o755)
        self.scandir.mkdir(mode=0o755)
        for i in range(self.n):
            self._make_service_dir(i)
            os.symlink(f"../sv/{self.s6_name(i)}", self.scandir / self.s6_name(i))
        # Debian's s6-svscan keeps at most 500 services unless told (-c);
        # a replacement directory (see `change`) needs room next to the old.
        return ["s6-svscan", "-c", str(max(1000, 2 * self.n + 100)), str(self.scandir)]

    def s6_name(self, i: int) -> str:
        return f"u{i}" if self.gen[i] == 0 else f"u{i}.g{self.gen[i]}"

    def _make_service_dir(self, i: int) -> None:
        d = self.workdir / "sv" / self.s6_name(i)
        d.mkdir(mode=0o755)
        (d / "run").write_text("#!/bin/sh\nexec " + shlex.join(self.argv_of(i)) + "\n")
        os.chmod(d / "run", 0o755)

    def change(self, indices: list[int]) -> None:
        """Give services `indices` a new definition (a new -x argument) in
        the contender's configuration, without telling it yet.

        pidone: their unit files are rewritten. supervisord: the file is
        rewritten. s6: a service directory's run script is only read when
        s6-supervise next starts the service, and a rescan picks up only
        directories that appeared or disappeared, so the s6 way to have a
        rescan apply a new definition is a new directory: each changed
        service gets sv/uI.gG, and its scan-directory symlink is replaced by
        one to it under the new name (the old supervisor is then stopped by
        `s6-svscanctl -n`, the new one started by `-a`).
        """
        old_names = {i: self.s6_name(i) for i in indices}
        for i in indices:
            self.gen[i] += 1
        if self.kind == "pidone":
            for i in indices:
                self._write_unit(i)
        elif self.kind == "supervisord":
            self._write_conf()
        else:
            for i in indices:
                self._make_service_dir(i)
                os.symlink(f"../sv/{self.s6_name(i)}", self.scandir / self.s6_name(i))
                os.unlink(self.scandir / old_names[i])

    # -- clients -----------------------------------------------------------

    def status_argv(self, one: bool = False) -> list[str]:
        if self.kind == "pidone":
            return [sys.executable, "-m", "pidone", "status", *(["u0"] if one else []),
                    "--runtime-dir", str(self.runtime_dir)]
        if self.kind == "supervisord":
            return [shutil.which("supervisorctl"), "-c", str(self.conf), "status", *(["u0"] if one else [])]
        if one:
            return [shutil.which("s6-svstat"), str(self.scandir / self.s6_name(0))]
        return [shutil.which("sh"), "-c", 'for d in "$1"/*; do s6-svstat "$d" || exit 1; done',
                "sh", str(self.scandir)]

    def reload_argv(self) -> list[str]:
        if self.kind == "pidone":
            return [sys.executable, "-m", "pidone", "reload", "--runtime-dir", str(self.runtime_dir)]
        if self.kind == "supervisord":
            return [shutil.which("supervisorctl"), "-c", str(self.conf), "update"]
        return [shutil.which("s6-svscanctl"), "-an", str(self.scandir)]

    # -- state ---------------------------------------------------------------

    @property
    def pid1(self) -> int:
        return self.run.find_pid1()

    def wait_up(self, timeout: float | None = None) -> None:
        """Until every service has stamped its start."""
        self.stamps.wait_for("S", self.n, timeout=timeout or 30 + self.n * 0.05, run=self.run)
        self.pid1   # noqa: B018 - find it (and take its pidfd) while all is well

    def svc_pids(self) -> dict[int, list[int]]:
        return svc_pids(self.pid1)


def svc_pids(pid1: int) -> dict[int, list[int]]:
    """index -> namespace pids of the `svc` processes (comm "svc") in PID 1's
    namespace, read from its own /proc: the same view for every contender,
    whatever its status command says. A sorted list, as a service whose old
    process has not gone yet has two."""
    proc = f"/proc/{pid1}/root/proc"
    found: dict[int, list[int]] = {}
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"{proc}/{entry}/comm", "rb") as f:
                if f.read().strip() != b"svc":
                    continue
            with open(f"{proc}/{entry}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
            if b"-i" in words:
                idx = int(words[words.index(b"-i") + 1])
                found.setdefault(idx, []).append(int(entry))
    return {k: sorted(v) for k, v in found.items()}


def cpu_ns(pid: int) -> int:
    """CPU time of `pid`, all its threads, in ns (exact, from schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def cpu_ticks(pid: int) -> int:
    """utime + stime of `pid` (fields 14 and 15 of /proc/PID/stat), in clock ticks."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


# --------------------------------------------------------------------------
# Timing a client process, and talking to pidone directly


def time_command(argv: list[str], env: dict[str, str], timeout: float = CALL_TIMEOUT,
                 capture: bool = False) -> tuple[int, int, str]:
    """Run `argv` and return (ns from posix_spawn to its exit, exit status,
    output). Timed: os.posix_spawn() → the child's pidfd turns readable.
    stdin is /dev/null; stdout and stderr go to /dev/null, or to a file that
    is returned when `capture`. Past `timeout` the child is SIGKILLed (by its
    pid: our own unreaped child) and BenchError raised."""
    with tempfile.TemporaryFile() as out:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        target = out.fileno() if capture else null
        actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, target, 1),
                   (os.POSIX_SPAWN_DUP2, target, 2)]
        try:
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                pidfd = None
            if pidfd is not None:
                ready = select.select([pidfd], [], [], timeout)[0]
                t1 = time.perf_counter_ns()
                os.close(pidfd)
                if not ready:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise BenchError(f"{shlex.join(argv)} did not exit within {timeout:g} s")
            _, status = os.waitpid(pid, 0)
            if pidfd is None:
                t1 = time.perf_counter_ns()
        finally:
            os.close(null)
        out.seek(0)
        text = out.read().decode(errors="replace") if capture else ""
    return t1 - t0, os.waitstatus_to_exitcode(status), text


def pidone_request(runtime_dir: Path, cmd: str, args: dict | None = None,
                   timeout: float = 30.0) -> dict:
    """One request on pidone's control socket, the decoded reply."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(str(runtime_dir / "private" / "control.sock"))
        sock.sendall(json.dumps({"v": 1, "cmd": cmd, "args": args or {}}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        raise BenchError(f"pidone {cmd} on {runtime_dir}: {e}") from None
    finally:
        sock.close()
    if not buf:
        raise BenchError(f"pidone {cmd}: no answer")
    return json.loads(buf)


def pidone_unit_pids(runtime_dir: Path) -> dict[str, tuple[str, int | None]]:
    """unit -> (state, pid), from `status` on the control socket (the same
    reply `pidone status --json` prints)."""
    reply = pidone_request(runtime_dir, "status")
    if not reply.get("ok"):
        raise BenchError(f"pidone status failed: {reply}")
    return {u["unit"]: (u["state"], u["pid"]) for u in reply["result"]["units"]}


def usable_peers(only: set[str]) -> tuple[list[str], dict[str, str]]:
    """The peers to run (table order) and why any were skipped; BenchError
    when pidone itself cannot run (every comparison needs it)."""
    chosen, skipped = [], {}
    for kind in PEERS:
        if only and kind not in only:
            continue
        missing = [t for t in TOOLS[kind] if not shutil.which(t)]
        if missing:
            skipped[kind] = f"{', '.join(missing)} not installed"
        else:
            chosen.append(kind)
    if "pidone" not in chosen:
        raise BenchError("pidone cannot run: " + skipped.get("pidone", "not selected"))
    return chosen, skipped


def peer_versions(kinds: list[str]) -> dict[str, str]:
    names = {"pidone": pidone_version(), "supervisord": deb_version("supervisor"), "s6": deb_version("s6")}
    return {k: names[k] for k in kinds}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def started_all(inits: list[Init]) -> None:
    """Wait until every init has all its services up (they start together)."""
    for init in inits:
        init.wait_up()


# --------------------------------------------------------------------------
# The status benchmark


# client name -> (contender, one service only?); table order
CLIENTS = {
    "pidone": ("pidone", False),
    "supervisorctl": ("supervisord", False),
    "s6-svstat loop": ("s6", False),
    "pidone u0": ("pidone", True),
    "supervisorctl u0": ("supervisord", True),
    "s6-svstat u0": ("s6", True),
    "python -c pass": (None, False),
}


def expected_lines(client: str, n: int) -> int | None:
    """How many lines of output the client prints for n services."""
    kind, one = CLIENTS[client]
    if kind is None:
        return 0
    count = 1 if one else n
    return count + 1 if kind == "pidone" else count   # pidone: a header line


def check_output(client: str, n: int, rc: int, text: str) -> None:
    """The untimed check: exit 0, one line per service, every one running."""
    lines = [line for line in text.splitlines() if line.strip()]
    want = expected_lines(client, n)
    running = {"pidone": " running ", "supervisorctl": "RUNNING", "s6-svstat": "up ("}
    word = next((w for k, w in running.items() if client.startswith(k)), None)
    ok = rc == 0 and len(lines) == want
    if ok and word:
        body = lines[1:] if client.startswith("pidone") else lines
        ok = all(word in line for line in body)
    if not ok:
        raise BenchError(f"{client} at {n}: exit {rc}, {len(lines)} lines (want {want}); "
                         f"first: {lines[:2]!r}")


def measure_size(n: int, kinds: list[str], helpers: Helpers, scratch: Path, args,
                 samples: dict[str, dict[int, list[float]]]) -> None:
    """Start every contender over n services, check each client's output,
    then the timed rounds."""
    env = contender_env(scratch)
    clients = [c for c, (k, _) in CLIENTS.items() if k is None or k in kinds]
    with contextlib.ExitStack() as stack:
        inits = {k: stack.enter_context(Init(k, n, helpers, scratch)) for k in kinds}
        started_all(list(inits.values()))
        argvs = {}
        for c in clients:
            kind, one = CLIENTS[c]
            argvs[c] = [sys.executable, "-c", "pass"] if kind is None else inits[kind].status_argv(one)
            _, rc, text = time_command(argvs[c], env, capture=True)
            check_output(c, n, rc, text)
        for rnd in range(-WARMUP_ROUNDS, args.rounds):
            for c in rotate(clients, rnd):
                ns, rc, _ = time_command(argvs[c], env)
                if rc != 0:
                    raise BenchError(f"{c} at {n}: exit {rc}")
                if rnd >= 0:
                    samples[c][n].append(ns / 1e6)
        for k, init in inits.items():   # still all there?
            if init.run.proc.poll() is not None:
                raise init.run.error(f"exited with {init.run.proc.returncode} during the calls")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="timed calls per client per size (30; 5 with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run: 5 calls per client, sizes 10 and 500")
    p.add_argument("--sizes", default="10,500", help="service counts (10,500)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these contenders: pidone, supervisord, s6")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "control.json")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 5 if args.quick else 30
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.only = only_names(args.only)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main("control", parse_args(argv), run_all)


def run_all(args, scratch: Path) -> int:
    helpers = build_helpers(scratch)
    warm_up(scratch)
    kinds, skipped = usable_peers(args.only)
    samples = {c: {n: [] for n in args.sizes} for c in CLIENTS}
    for n in args.sizes:
        t = time.monotonic()
        measure_size(n, kinds, helpers, scratch, args, samples)
        done = ", ".join(f"{c} {statistics.median(samples[c][n]):.1f}" for c in CLIENTS if samples[c][n])
        print(f"{n} services ({time.monotonic() - t:.0f} s): median ms: {done}", file=sys.stderr)

    clients = [c for c in CLIENTS if any(samples[c][n] for n in args.sizes)]
    summary = {c: {f"{n}": {"median_ms": statistics.median(samples[c][n]) if samples[c][n] else None,
                            "p90_ms": percentile(samples[c][n], 90), "calls": len(samples[c][n])}
                   for n in args.sizes} for c in clients}
    bars = {}
    for n in args.sizes:
        p = summary["pidone"][f"{n}"]["median_ms"]
        s = summary.get("supervisorctl", {}).get(f"{n}", {}).get("median_ms")
        r = ratio(p, s)
        bars[f"status_{n}_vs_supervisorctl"] = {"ratio": r, "bar": BAR_VS_SUPERVISORCTL,
                                                 "pass": None if r is None else r < BAR_VS_SUPERVISORCTL}
    info = machine()
    config = {"rounds": args.rounds, "warmup_rounds": WARMUP_ROUNDS, "sizes": args.sizes, "quick": args.quick}
    versions = peer_versions(kinds)
    print(render(summary, clients, args.sizes, bars, info, config, skipped, versions))
    write_json(args.output, {
        "benchmark": "control", "machine": info, "config": config, "versions": versions,
        "commands": {c: CLIENTS[c][0] for c in clients}, "summary": summary,
        "ratios": {f"pidone/{c}": {f"{n}": ratio(summary["pidone"][f"{n}"]["median_ms"],
                                                 summary[c][f"{n}"]["median_ms"]) for n in args.sizes}
                   for c in clients if c != "pidone"},
        "bars": bars, "skipped": skipped,
        "raw_ms": {c: {f"{n}": samples[c][n] for n in args.sizes} for c in clients},
    })
    return 0


def render(summary, clients, sizes, bars, info, config, skipped, versions) -> str:
    cols = []
    for n in sizes:
        cols += [(f"{n}:median_ms", f"{n}: median ms"), (f"{n}:p90_ms", f"{n}: p90 ms")]

    def cell(row, key):
        n, k = key.split(":")
        if row.startswith("pidone/"):
            if k != "median_ms":
                return ""
            return fmt(ratio(summary["pidone"][n]["median_ms"], summary[row[7:]][n]["median_ms"]), "{:.2f}×")
        return fmt(summary[row][n][k], "{:.1f}")

    rows = list(clients) + [f"pidone/{c}" for c in ("supervisorctl", "s6-svstat loop") if c in summary]
    lines = ["", f"Status round trip: the whole client process, spawn → exit "
                 f"({config['rounds']} calls per client per size, interleaved; ms)", ""]
    lines += table(rows, cols, cell)
    lines += ["",
              "pidone: `python -m pidone status`; supervisorctl: `supervisorctl -c CONF status`; "
              "s6-svstat loop: one `sh` running `s6-svstat` on every service directory (s6 has no "
              "all-services status command); '… u0': the same for one service; "
              "`python -c pass`: the interpreter's start-up alone, the floor of any Python CLI."]
    lines += ["", "bars (medians, same run):"]
    for n in sizes:
        b = bars[f"status_{n}_vs_supervisorctl"]
        lines.append(f"  pidone status at {n:>4} services: {fmt(b['ratio'], '{:.2f}×')} of supervisorctl "
                     f"(bar < {BAR_VS_SUPERVISORCTL:g}×): {verdict(b['pass'])}")
    lines += report_footer(skipped, {}, info, list(versions.values()), config)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The service-visible gap of `pidone reexec`: how long the control socket
goes without answering while PID 1 re-executes itself, for 10, 100 and 500
units; the whole `reexec` request; and the cost of one state update.

pidone runs as PID 1 of its own PID namespace (`Init` of control.py,
`python -m pidone --units DIR --runtime-dir RUN`, unit I running
`svc -i I`), one namespace per size, all of them running for the whole run.
For each sample:

1. `status` on the control socket: every unit's PID (the reply `pidone
   status --json` prints).
2. A probe starts: a small C program (PROBE_C below, compiled with gcc at
   start-up) that sends the control socket one request per connection, a
   `{"v":1,"cmd":"status","args":{}}` line (every unit: the real request;
   `--probe ping` for the cheapest one), and reads the reply line; a new
   request every PERIOD µs (1,000), or at once when an answer took longer.
   It stamps each request's send and answer with CLOCK_MONOTONIC.
3. 0.2 s later, this process sends `reexec` on the control socket itself
   (pidone.control.client, in-process: no CLI start-up is counted), timed
   from the request to its answer, which the new process sends (`reexec
   ms`). pidone first runs the program it will exec as a selftest in a
   child (its old process keeps answering meanwhile), then execs itself;
   the listening socket is inherited, so a request sent during the exec
   waits in its backlog and is answered by the new process once it has
   restored its state.
4. 0.2 s after it returns, the probe stops; `status` again: every unit must
   have the PID it had in 1, and be running.

The gap is the longest interval between two successful answers in the
window of the command: the exec itself, the new interpreter's start-up and
imports, the restore, and the first answer (which includes serving one
`status`). The selftest phase is excluded by construction, since the old
process answers all through it; its longest interval between answers is
reported next to the probe's usual interval (its resolution: a `status` of
500 units takes pidone ~15 ms to build, and a gap can only be measured to
one answer's time). Also reported: the longest wait of one request (sent
before the exec, answered after), and the selftest phase (command start →
the gap's start).

Sizes take turns in an order that rotates from round to round; medians over
rounds, and the worst round.

The bar (from the issue): the gap under 100 ms at 100 units (median of the
rounds; the worst round is shown beside it).

The cost of one state update (`--update-cost` alone, or before the
rounds): for each size, a Supervisor over the same unit files is built in
this process (its units not started: the records' shapes are those of
PID 1's, without pids) and timed, per update: building the snapshot,
serialising it (orjson), and writing it into a mapped, sealed memfd
(`memstate.MemState.write`: plan, copy, CRC). What PID 1 does before its
loop sleeps after a change is the sum.

Run as root: `.venv/bin/python benchmarks/reexec.py [--quick] [--rounds N]
[--sizes 10,100,500] [--probe status|ping] [--update-cost]`. Table to stdout, JSON to
results/reexec.json.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from control import (  # noqa: E402 - the shared machinery of the benchmarks
    Init, pidone_unit_pids, started_all,
)
from units import (  # noqa: E402
    RESULTS_DIR, BenchError, build_helpers, contender_env, fmt, machine, machine_line, median_or_none,
    pidone_version, rotate, run_main, table, verdict, warm_up, write_json,
)

BAR_GAP_MS = 100.0
BAR_SIZE = 100
LEAD = 0.2              # seconds of probing before the command, and after it
REEXEC_TIMEOUT = 120.0
PROBE_STOP_TIMEOUT = 30.0

PROBE_C = r"""
/* probe: sends one control request per connection to pidone's socket,
 * a new one every PERIOD us (at once if the last answer took longer), until
 * its stdin turns readable (a line, or EOF); then prints one line per
 * request: "SEND_NS ANSWER_NS STATUS" (CLOCK_MONOTONIC; STATUS 1 for an
 * {"ok":true...} reply, 0 for another reply, -errno when connect, write or
 * read failed, -1000 when the connection closed without a line).
 * usage: probe SOCKET REQUEST_LINE PERIOD_US MAX_REQUESTS */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct rec { uint64_t sent, answered; int status; };

static int one(const struct sockaddr_un *sa, const char *req, size_t len)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct timeval tv = { 20, 0 };
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(s, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        int e = -errno;
        close(s);
        return e;
    }
    if (write(s, req, len) != (ssize_t)len) {
        int e = -errno;
        close(s);
        return e ? e : -1000;
    }
    static char buf[1 << 16];
    char head[16] = {0};
    size_t got = 0;
    int status = -1000;
    for (;;) {
        ssize_t n = read(s, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            status = -errno;
            break;
        }
        if (n == 0)
            break;
        if (got < sizeof head - 1) {
            size_t take = (size_t)n < sizeof head - 1 - got ? (size_t)n : sizeof head - 1 - got;
            memcpy(head + got, buf, take);
        }
        got += (size_t)n;
        if (memchr(buf, '\n', (size_t)n)) {
            status = strncmp(head, "{\"ok\":true", 10) == 0 ? 1 : 0;
            break;
        }
    }
    close(s);
    return status;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: probe SOCKET REQUEST_LINE PERIOD_US MAX_REQUESTS\n");
        return 2;
    }
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
    char *req = malloc(strlen(argv[2]) + 2);
    sprintf(req, "%s\n", argv[2]);
    size_t len = strlen(req);
    uint64_t period = strtoull(argv[3], NULL, 10) * 1000u;
    size_t max = strtoul(argv[4], NULL, 10), n = 0;
    struct rec *recs = calloc(max, sizeof *recs);
    struct pollfd in = { 0, POLLIN, 0 };
    while (n < max && poll(&in, 1, 0) == 0) {
        uint64_t t0 = now_ns();
        int status = one(&sa, req, len);
        recs[n++] = (struct rec){ t0, now_ns(), status };
        uint64_t next = t0 + period, t = now_ns();
        if (next > t) {
            struct timespec ts = { (time_t)((next - t) / 1000000000u), (long)((next - t) % 1000000000u) };
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < n; i++)
        printf("%llu %llu %d\n", (unsigned long long)recs[i].sent,
               (unsigned long long)recs[i].answered, recs[i].status);
    return 0;
}
"""


def build_probe(scratch: Path) -> str:
    src = scratch / "probe.c"
    src.write_text(PROBE_C)
    exe = scratch / "probe"
    out = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(src)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise BenchError(f"gcc failed on probe.c:\n{out.stderr}")
    return str(exe)


class Probe:
    """The probe running against one pidone; `stop` returns its records."""

    def __init__(self, exe: str, runtime_dir: Path, request: str, period_us: int):
        line = json.dumps({"v": 1, "cmd": request, "args": {}}, separators=(",", ":"))
        self.proc = subprocess.Popen(
            [exe, str(runtime_dir / "private" / "control.sock"), line, str(period_us), "2000000"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def stop(self) -> list[tuple[int, int, int]]:
        try:
            out, err = self.proc.communicate(input=b"stop\n", timeout=PROBE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"the probe did not stop within {PROBE_STOP_TIMEOUT:g} s") from None
        if self.proc.returncode != 0:
            raise BenchError(f"the probe exited {self.proc.returncode}: {err.decode(errors='replace')[:300]}")
        return [tuple(int(x) for x in line.split()) for line in out.decode().splitlines() if line]

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.kill()          # our own child, by its pid
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)


def analyse(recs: list[tuple[int, int, int]], t_cmd0: int, t_cmd1: int) -> dict:
    """The gap and its surroundings, in ms (see the module's docstring)."""
    ok = sorted((answered, sent) for sent, answered, status in recs if status == 1)
    if len(ok) < 3:
        raise BenchError(f"the probe got only {len(ok)} answers")
    intervals = [(ok[i][0] - ok[i - 1][0], i) for i in range(1, len(ok))]
    # intervals that overlap the command's window
    inside = [(d, i) for d, i in intervals if ok[i][0] >= t_cmd0 and ok[i - 1][0] <= t_cmd1]
    if not inside:
        raise BenchError("no answer during the reexec command")
    gap, gi = max(inside)
    before = [d for d, i in intervals if ok[i][0] < t_cmd0]
    others = [d for d, i in inside if i != gi and ok[i][0] <= ok[gi - 1][0]]   # selftest phase
    failed = [(s, a, st) for s, a, st in recs if st != 1 and t_cmd0 <= a and s <= t_cmd1]
    first_after = ok[gi]
    return {
        "gap_ms": gap / 1e6,
        "longest_wait_ms": (first_after[0] - first_after[1]) / 1e6,
        "gap_start_ms": (ok[gi - 1][0] - t_cmd0) / 1e6,     # selftest phase, about
        "gap_end_to_return_ms": (t_cmd1 - ok[gi][0]) / 1e6,
        "usual_interval_ms": statistics.median(before) / 1e6 if before else None,
        "selftest_max_interval_ms": max(others) / 1e6 if others else None,
        "answers": len(ok), "failed_requests": len(failed),
        "failures": sorted({st for _, _, st in failed}),
        # each failed request: (status, sent, failed) in ms from the gap's start
        "failed_at_ms": [(st, (s - ok[gi - 1][0]) / 1e6, (a - ok[gi - 1][0]) / 1e6) for s, a, st in failed],
    }


def sample(init: Init, probe_exe: str, request: str, period_us: int, env: dict) -> dict:
    before = pidone_unit_pids(init.runtime_dir)
    if len(before) != init.n or any(state != "running" for state, _ in before.values()):
        raise BenchError(f"pidone-{init.n}: not every unit running before the reexec")
    log_before = init.run.output().count("re-executed as")
    from pidone.control import client

    socket_path = str(init.runtime_dir / "private" / "control.sock")
    for attempt in range(5):
        probe = Probe(probe_exe, init.runtime_dir, request, period_us)
        try:
            time.sleep(LEAD)
            t0 = time.monotonic_ns()
            try:
                reply = client.request(socket_path, "reexec", timeout=REEXEC_TIMEOUT)
            except (client.Unreachable, client.Refused, client.TimedOut) as e:
                reply = {"ok": False, "error": {"message": f"{type(e).__name__}: {e}"}}
            t1 = time.monotonic_ns()
            ns, rc = t1 - t0, 0 if reply.get("ok") else 1
            said = json.dumps(reply.get("result") or reply.get("error"))
            time.sleep(LEAD)
            recs = probe.stop()
        finally:
            probe.kill()
        if rc == 0:
            break
        if "busy" not in said and "try again" not in said:
            raise init.run.error(f"pidone reexec failed: {said.strip()[:300]}")
        time.sleep(1.0)          # refused while busy: try again
    else:
        raise init.run.error(f"pidone reexec refused 5 times: {said.strip()[:300]}")
    if init.run.proc.poll() is not None:
        raise init.run.error("the namespace ended during the reexec")
    result = analyse(recs, t0, t1)
    after = pidone_unit_pids(init.runtime_dir)
    moved = sorted(u for u in before if before[u][1] != after.get(u, (None, None))[1])
    not_running = sorted(u for u, (state, _) in after.items() if state != "running")
    result.update({
        "reexec_ms": ns / 1e6, "said": said.strip()[:200],
        "pids_unchanged": not moved and not not_running and len(after) == len(before),
        "moved": moved[:10], "not_running": not_running[:10],
        "reexecuted": init.run.output().count("re-executed as") == log_before + 1,
    })
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="reexecs per size (10; 2 with --quick)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds")
    p.add_argument("--sizes", default="10,100,500", help="unit counts (10,100,500)")
    p.add_argument("--probe", choices=("status", "ping"), default="status",
                   help="the probe's request (status: every unit, as `pidone status`)")
    p.add_argument("--period-us", type=int, default=1000, help="the probe's period in µs (1000)")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "reexec.json")
    p.add_argument("--update-cost", action="store_true", help="only the cost of one state update, per size")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 2 if args.quick else 10
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main("reexec", parse_args(argv), run_all)


UPDATE_REPEATS = 200


def update_cost(units_dir: Path) -> dict:
    """µs per state update over the unit files in `units_dir` (see the
    module's docstring): snapshot, serialisation, mapping write."""
    import orjson

    from pidone import loader
    from pidone.logs import Messages, Sink
    from pidone.loop import Loop
    from pidone.memstate import MemState
    from pidone.reaper import Reaper
    from pidone.supervisor import Supervisor
    from pidone.sysdeps import SYSTEM

    result = loader.load_directory(str(units_dir))
    if not result.ok:
        raise BenchError(f"{units_dir}: invalid unit files")
    loop, null = Loop(), os.open(os.devnull, os.O_WRONLY)
    sink = Sink(null)
    supervisor = Supervisor(result.units, units_dir=str(units_dir), blocked={}, loop=loop, reaper=Reaper(SYSTEM),
                            system=SYSTEM, messages=Messages(sink), log_sink=sink, log_format="text",
                            notify_path=None, on_exit=lambda *_: None, on_all_stopped=lambda *_: None)
    memory = MemState.create()
    try:
        snap = supervisor.snapshot()  # the first builds the cached definitions, as PID 1's first update does
        t0 = time.perf_counter()
        for _ in range(UPDATE_REPEATS):
            snap = supervisor.snapshot()
        t1 = time.perf_counter()
        for _ in range(UPDATE_REPEATS):
            payload = orjson.dumps(snap)
        t2 = time.perf_counter()
        for _ in range(UPDATE_REPEATS):
            memory.write(payload)
        t3 = time.perf_counter()
    finally:
        memory.close()
        supervisor.close()
        loop.close()
        os.close(null)
    per = 1e6 / UPDATE_REPEATS
    return {"payload_kib": len(payload) / 1024, "snapshot_us": (t1 - t0) * per, "serialise_us": (t2 - t1) * per,
            "write_us": (t3 - t2) * per, "total_us": (t3 - t0) * per}


def update_cost_lines(costs: dict) -> list[str]:
    lines = ["", f"one state update (µs, mean of {UPDATE_REPEATS}; in this process, units not started):"]
    rows = [f"{n} units" for n in costs]
    cols = [("payload_kib", "payload KiB"), ("snapshot_us", "snapshot"), ("serialise_us", "orjson"),
            ("write_us", "mapping write"), ("total_us", "total")]
    lines += table(rows, cols, lambda row, key: fmt(costs[int(row.split()[0])][key], "{:.1f}"))
    return lines


def run_update_cost(args, scratch: Path) -> dict:
    costs = {}
    for n in args.sizes:
        directory = scratch / f"update-cost-{n}"
        directory.mkdir()
        for i in range(n):
            (directory / f"u{i}.toml").write_text(f'[service]\ncommand = ["svc", "-i", "{i}"]\n')
        costs[n] = update_cost(directory)
    return costs


def run_all(args, scratch: Path) -> int:
    costs = run_update_cost(args, scratch)
    if args.update_cost:
        print("\n".join(update_cost_lines(costs)))
        write_json(args.output, {"benchmark": "reexec", "machine": machine(), "update_cost": costs})
        return 0
    helpers = build_helpers(scratch)
    probe = build_probe(scratch)
    warm_up(scratch)
    env = contender_env(scratch)
    results = {n: [] for n in args.sizes}
    failures: dict[int, list[str]] = {}
    with contextlib.ExitStack() as stack:
        inits = {n: stack.enter_context(Init("pidone", n, helpers, scratch)) for n in args.sizes}
        started_all(list(inits.values()))
        time.sleep(1.0)
        for rnd in range(args.rounds):
            t = time.monotonic()
            for n in rotate(args.sizes, rnd):
                try:
                    results[n].append(dict(sample(inits[n], probe, args.probe, args.period_us, env), round=rnd))
                except BenchError as e:
                    failures.setdefault(n, []).append(str(e))
                    print(f"  {n} units: FAILED: {e}", file=sys.stderr)
                    if inits[n].run.proc.poll() is not None:
                        raise
                time.sleep(0.5)
            done = ", ".join(f"{n}: {fmt(results[n][-1]['gap_ms'] if results[n] else None, '{:.0f}')}"
                             for n in args.sizes)
            print(f"round {rnd + 1}/{args.rounds} ({time.monotonic() - t:.0f} s): gap ms {done}", file=sys.stderr)

    keys = ("gap_ms", "longest_wait_ms", "usual_interval_ms", "selftest_max_interval_ms", "gap_start_ms",
            "reexec_ms")
    summary = {}
    for n in args.sizes:
        rs = results[n]
        s = {k: median_or_none([r[k] for r in rs if r[k] is not None]) for k in keys}
        s["gap_max_ms"] = max((r["gap_ms"] for r in rs), default=None)
        s["samples"] = len(rs)
        s["pids_unchanged"] = sum(r["pids_unchanged"] for r in rs)
        s["reexecuted"] = sum(r["reexecuted"] for r in rs)
        s["failed_requests"] = sum(r["failed_requests"] for r in rs)
        s["failure_kinds"] = sorted({st for r in rs for st in r["failures"]})
        summary[f"{n}"] = s
    b = summary.get(f"{BAR_SIZE}")
    bars = {}
    if b:
        gap = b["gap_ms"]
        bars[f"gap_{BAR_SIZE}"] = {"gap_ms": gap, "gap_max_ms": b["gap_max_ms"], "bar_ms": BAR_GAP_MS,
                                   "pass": None if gap is None else gap < BAR_GAP_MS}
    info = machine()
    config = {"rounds": args.rounds, "sizes": args.sizes, "probe": args.probe, "period_us": args.period_us,
              "lead_s": LEAD, "quick": args.quick}
    print(render(summary, args, bars, info, config, failures))
    print("\n".join(update_cost_lines(costs)))
    write_json(args.output, {
        "benchmark": "reexec", "machine": info, "config": config, "versions": {"pidone": pidone_version()},
        "update_cost": {f"{n}": c for n, c in costs.items()},
        "summary": summary, "bars": bars, "failures": {f"{k}": v for k, v in failures.items()},
        "raw": {f"{n}": results[n] for n in args.sizes},
    })
    return 0


def render(summary, args, bars, info, config, failures) -> str:
    cols = [("gap_ms", "gap ms"), ("gap_max_ms", "worst gap"), ("longest_wait_ms", "longest wait"),
            ("usual_interval_ms", "usual interval"), ("selftest_max_interval_ms", "selftest max int."),
            ("gap_start_ms", "selftest phase"), ("reexec_ms", "reexec req ms")]
    rows = [f"{n} units" for n in args.sizes]

    def cell(row, key):
        return fmt(summary[row.split()[0]].get(key), "{:.1f}")

    lines = ["", f"pidone reexec: the control socket's gap (medians of {args.rounds} round(s); ms; "
                 f"probe: `{args.probe}` every {args.period_us} µs)", ""]
    lines += table(rows, cols, cell)
    lines += ["",
              "gap: longest interval between two answers around the exec; longest wait: the request "
              "sent before the exec and answered after; usual interval: between answers before the "
              "command (the probe's resolution); selftest max int.: the longest interval while the old "
              "process ran the selftest; selftest phase: request → the gap's start; reexec req: "
              "the `reexec` request (in-process client) → its answer from the new process."]
    checks = "; ".join(f"{n}: {summary[f'{n}']['pids_unchanged']}/{summary[f'{n}']['samples']}" for n in args.sizes)
    lines.append(f"every unit's PID unchanged and running afterwards: {checks}")
    logged = "; ".join(f"{n}: {summary[f'{n}']['reexecuted']}/{summary[f'{n}']['samples']}" for n in args.sizes)
    lines.append(f"pidone logged 're-executed as' once per reexec: {logged}")
    fails = {n: summary[f"{n}"]["failed_requests"] for n in args.sizes if summary[f"{n}"]["failed_requests"]}
    lines.append("probe requests that failed during the request: " + (str(fails) if fails else "none"))
    kinds = sorted({st for n in args.sizes for st in summary[f"{n}"]["failure_kinds"]})
    if kinds:
        named = ", ".join(("closed without a reply" if st == -1000 else
                           f"{errno.errorcode.get(-st, st)}" if st < 0 else "an error reply") for st in kinds)
        lines.append(f"  (what they got: {named}; times in the JSON, failed_at_ms, from the gap's start)")
    b = bars.get(f"gap_{BAR_SIZE}")
    if b:
        lines += ["", "bar (pidone):",
                  f"  gap at {BAR_SIZE} units {fmt(b['gap_ms'], '{:.1f} ms')} median "
                  f"(worst {fmt(b['gap_max_ms'], '{:.1f}')}) (bar < {BAR_GAP_MS:g} ms): {verdict(b['pass'])}"]
    for n, errs in failures.items():
        lines.append(f"{n} units: {len(errs)} failed sample(s), first: {errs[0].splitlines()[0]}")
    lines += ["", machine_line(info), f"versions: {pidone_version()}", f"config: {config}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

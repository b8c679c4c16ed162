#!/usr/bin/env python3
"""Keeping services alive: how fast a dead service is replaced, and what a
crash loop costs PID 1. pidone against s6, runit, supervisord and a bare
respawn loop ("direct", the floor).

Each contender is PID 1 of a fresh PID namespace, with the services and the
stamping service program `svc` of units.py (see its docstring): `svc` stamps
CLOCK_MONOTONIC into a FIFO as the first thing it does ('S') and just before
it exits ('E'), so the harness sees deaths and births directly.

(e) restart latency: one service that exits with status 1, and is restarted
    by the contender: pidone with `[restart] policy = "always"`, `delay = 0`,
    `max_retries = 0`; direct posix_spawn()s it again as soon as it reaps
    it; s6, runit and supervisord (startsecs=0, autorestart=true) do what
    they always do. Gap = next 'S' − previous 'E' (exit, reaping, decision,
    spawn and exec). Two cases:
      crash loop    it exits at once (s6 and runit wait 1 s before
                    restarting a service that ran under 1 s; supervisord
                    acts on its 1 s tick)
      after 1.2 s   it exits 1.2 s after starting (s6 and runit restart at
                    once; supervisord still waits for its tick)
    For s6 the service declares itself ready at once on a notification-fd
    (s6-supervise restarts at once only a service that had been ready for
    over a second; without that it always waits 1 s).
    Medians over every gap of every round. Bar: pidone's crash-loop median
    under 5 ms.
(f) crash-loop CPU: 20 services that exit with status 1 at once, restarted
    with each contender's default backoff, never giving up (pidone: policy
    "always", max_retries = 0, so delay 0.1 s doubling up to 30 s; s6, runit:
    1 s; supervisord: startsecs=1, startretries=1000000, so 1 s, 2 s, 3 s...).
    Over a window of 15 s that begins once all 20 have started: PID 1's CPU
    time (exact, from /proc/PID/task/*/schedstat; clock ticks from
    /proc/PID/stat alongside) as % of one core, and the supervision tree's
    (PID 1 plus the processes that live through the window, i.e. s6-supervise
    and runsv, not the services). Bar: pidone's PID 1 under 5%.
(e) again, "beside N": direct and pidone only, the same crash loop with N
    (100, 500) idle services running in the same namespace: what a restart
    costs when the container is not empty (pidone looks for leftovers of the
    dead service in /proc).
Extra check: pidone's delay-0 crash loop kept up for 1,200 restarts (a
    restart delay computed as delay × 2^failures must not break past ~1,024
    failures; it did in an earlier pidone: OverflowError, unit never
    restarted).

Order: each round runs the crash loop of each contender in turn (A B C, then
B C A, ...); the "after 1.2 s" case and (f) run all contenders at the same
time, each in its own namespace (they are mostly idle, and CPU time is
work done, not latency: sharing the window exposes all to the same noise).

Caveats: the gap includes svc's own exec (a static-free small C program,
well under 1 ms); s6's and runit's 1 s are documented policy, not slowness;
supervisord's number is its poll() tick. Compare within one run only.

Run as root: `.venv/bin/python benchmarks/respawn.py [--quick] [--rounds N]
[--only NAME,...]`. Table to stdout, JSON to results/respawn.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from units import (  # noqa: E402 - the shared machinery of the benchmarks
    CLK_TCK, NOFILE_VARIANT, RESULTS_DIR, SETTLE, BenchError, Service, all_contenders, build_helpers, fmt,
    launched, machine, median_or_none, only_names, proc_stat_at, ratio, report_footer, rotate, run_main,
    table, usable, verdict, warm_up, write_json,
)

BAR_RESTART_MS = 5.0   # (e) pidone crash-loop median
BAR_CPU_PCT = 5.0      # (f) pidone PID 1 CPU, % of one core
SLOW = ("s6", "runit", "supervisord")   # about 1 s per restart
CROWDED = ("direct", "pidone")   # the crash loop beside idle services: the others take 1 s anyway
ENDURANCE_RESTARTS = 1200


# --------------------------------------------------------------------------
# (e) restart latency


def gaps_ms(items: list[tuple[str, int, int]]) -> list[float]:
    """next 'S' − previous 'E', per service index, in ms."""
    by_idx: dict[int, list[tuple[int, str]]] = {}
    for kind, idx, ns in items:
        by_idx.setdefault(idx, []).append((ns, kind))
    out = []
    for stamps in by_idx.values():
        stamps.sort()
        for (ns0, k0), (ns1, k1) in zip(stamps, stamps[1:]):
            if k0 == "E" and k1 == "S":
                out.append((ns1 - ns0) / 1e6)
    return out


def crash_loop(c, count: int, up_ms: int, helpers, scratch: Path, others: int = 0) -> list[float]:
    """`count` restart gaps of one service that lives `up_ms` and exits 1,
    with `others` services that just sleep alongside it."""
    services = [Service("svc0", ["-u", str(up_ms), "-x", "1"], restart="now", ready_at_once=True)]
    services += [Service(f"idle{i}", ["-i", str(i + 1)]) for i in range(others)]
    with launched(c, services, helpers, scratch, "crash") as (run, stamps):
        per = 1.5 + up_ms / 1000 if c.name in SLOW else 0.2 + up_ms / 1000
        stamps.wait_for("S", others + count + 1, timeout=10 + others * 0.05 + count * per, run=run)
        return gaps_ms([item for item in stamps.items if item[1] == 0])[:count]


def concurrent_loops(contenders, count: int, up_ms: int, helpers, scratch: Path) -> dict:
    """The same, all contenders at once, each in its own namespace."""
    services = [Service("svc0", ["-u", str(up_ms), "-x", "1"], restart="now", ready_at_once=True)]
    out = {}
    with contextlib.ExitStack() as stack:
        running = {c.name: stack.enter_context(launched(c, services, helpers, scratch, "up"))
                   for c in contenders}
        deadline = time.monotonic() + 15 + count * (up_ms / 1000 + 1.5)
        pending = dict(running)
        while pending and time.monotonic() < deadline:
            for name, (run, stamps) in list(pending.items()):
                stamps.read(0.01)
                if stamps.count("S") >= count + 1:
                    del pending[name]
                elif run.proc.poll() is not None:
                    raise run.error(f"exited with {run.proc.returncode}")
        for name, (run, stamps) in running.items():
            out[name] = gaps_ms(stamps.items)[:count]
            if name in pending:
                print(f"  {name}: only {len(out[name])} of {count} restarts after {up_ms} ms up",
                      file=sys.stderr)
    return out


# --------------------------------------------------------------------------
# (f) crash-loop CPU


def ns_processes(pid1: int) -> dict[tuple[int, int], tuple[str, int, int]]:
    """Processes of PID 1's namespace: (pid, starttime) -> (comm, cpu ns, ticks)."""
    root = f"/proc/{pid1}/root/proc"
    out = {}
    for entry in os.listdir(root):
        if not entry.isdigit():
            continue
        base = f"{root}/{entry}"
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"{base}/stat", "rb") as f:
                raw = f.read()
            comm = raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")
            fields = raw.rsplit(b")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            start = int(fields[19])
            cpu = 0
            for tid in os.listdir(f"{base}/task"):
                with open(f"{base}/task/{tid}/schedstat") as f:
                    cpu += int(f.read().split()[0])
            out[(int(entry), start)] = (comm, cpu, ticks)
    return out


def pid1_cpu(pid1: int) -> tuple[int, int]:
    """(cpu ns over all threads, utime+stime ticks) of PID 1."""
    ticks = sum(int(x) for x in proc_stat_at(f"/proc/{pid1}")[11:13])
    cpu = 0
    for tid in os.listdir(f"/proc/{pid1}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid1}/task/{tid}/schedstat") as f:
            cpu += int(f.read().split()[0])
    return cpu, ticks


def crash_cpu(contenders, units: int, window: float, helpers, scratch: Path) -> dict:
    """(f) all contenders at once: CPU of PID 1 and of the tree over `window` s."""
    services = [Service(f"c{i}", ["-u", "0", "-x", "1"], restart="backoff") for i in range(units)]
    out = {}
    with contextlib.ExitStack() as stack:
        running = {c.name: stack.enter_context(launched(c, services, helpers, scratch, "cpu"))
                   for c in contenders}
        for name, (run, stamps) in running.items():
            stamps.wait_for("S", units, timeout=30, run=run)
            run.find_pid1()
        before = {}
        t0 = time.monotonic_ns()
        for name, (run, _) in running.items():
            before[name] = (pid1_cpu(run.pid1), ns_processes(run.pid1))
        end = time.monotonic() + window
        while time.monotonic() < end:
            for _, stamps in running.values():
                stamps.read(0)
            time.sleep(0.05)
        t1 = time.monotonic_ns()
        for name, (run, stamps) in running.items():
            (cpu0, ticks0), procs0 = before[name]
            cpu1, ticks1 = pid1_cpu(run.pid1)
            procs1 = ns_processes(run.pid1)
            tree = sum(procs1[k][1] - procs0[k][1] for k in procs1.keys() & procs0.keys()
                       if procs1[k][0] != "svc")
            stamps.read(0)
            restarts = sum(1 for k, _, ns in stamps.items if k == "S" and t0 <= ns <= t1)
            wall = (t1 - t0) / 1e9
            out[name] = {"pid1_cpu_pct": (cpu1 - cpu0) / 1e9 / wall * 100,
                         "pid1_ticks": ticks1 - ticks0,
                         "tree_cpu_pct": tree / 1e9 / wall * 100,
                         "restarts": restarts,
                         "pid1_cpu_ms_per_restart": (cpu1 - cpu0) / 1e6 / restarts if restarts else None,
                         "window_s": wall}
    return out


# --------------------------------------------------------------------------
# Extra check: a long delay-0 crash loop


def endurance(c, helpers, scratch: Path, target: int = ENDURANCE_RESTARTS, limit: float = 60.0) -> dict:
    """Keep pidone's delay-0 crash loop going for `target` restarts."""
    services = [Service("svc0", ["-u", "0", "-x", "1"], restart="now")]
    with launched(c, services, helpers, scratch, "endurance") as (run, stamps):
        deadline = time.monotonic() + limit
        last_count, last_change = 0, time.monotonic()
        while stamps.count("S") < target + 1 and time.monotonic() < deadline:
            stamps.read(0.1)
            if stamps.count("S") != last_count:
                last_count, last_change = stamps.count("S"), time.monotonic()
            elif time.monotonic() - last_change > 3.0:
                break   # no start for 3 s: stalled
        starts = stamps.count("S")
        output = run.output()
        errors = [line for line in output.splitlines()
                  if "Error" in line or "error handling" in line or "Traceback" in line]
        return {"restarts": max(0, starts - 1), "target": target, "ok": starts >= target + 1,
                "seconds": (stamps.items[-1][2] - run.t0) / 1e9 if stamps.items else None,
                "errors": errors[:6]}


# --------------------------------------------------------------------------
# Driver


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=None, help="rounds (3; 1 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 round, 20 fast / 2 slow restarts, a 4 s CPU window")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="only these contenders: direct, pidone, s6, runit, supervisord")
    p.add_argument("--restarts", type=int, default=50, help="crash-loop restarts per round, fast contenders (50)")
    p.add_argument("--slow-restarts", type=int, default=5,
                   help="crash-loop restarts per round for s6, runit, supervisord (5, about 1 s each)")
    p.add_argument("--others", default="100,500",
                   help="crash loop again beside this many idle services, direct and pidone (100,500)")
    p.add_argument("--up-restarts", type=int, default=3, help="restarts after 1.2 s up, per round (3)")
    p.add_argument("--crash-units", type=int, default=20, help="crash-looping units for (f) (20)")
    p.add_argument("--window", type=float, default=15.0, help="(f) window in seconds (15)")
    p.add_argument("--output", type=Path, default=RESULTS_DIR / "respawn.json")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.quick:   # fewer samples and a shorter window, unless given
        given = set(argv if argv is not None else sys.argv[1:])
        for flag, attr, value in (("--restarts", "restarts", 20), ("--slow-restarts", "slow_restarts", 2),
                                  ("--up-restarts", "up_restarts", 2), ("--window", "window", 4.0)):
            if not any(g == flag or g.startswith(flag + "=") for g in given):
                setattr(args, attr, value)
    if args.quick and not any(g == "--others" or g.startswith("--others=")
                              for g in (argv if argv is not None else sys.argv[1:])):
        args.others = "100"
    args.others = [int(k) for k in args.others.split(",") if k.strip()]
    args.only = only_names(args.only)
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main("respawn", parse_args(argv), run_all)


def run_all(args, scratch: Path) -> int:
    helpers = build_helpers(scratch)
    warm_up(scratch)
    contenders, skipped = usable([c for c in all_contenders() if c.name != NOFILE_VARIANT], args.only)
    if not contenders:
        raise BenchError("no contender can run")
    names = [c.name for c in contenders]
    crash = {n: [] for n in names}
    crowded = {n: {k: [] for k in args.others} for n in names if n in CROWDED}
    after_up = {n: [] for n in names}
    cpu = {n: [] for n in names if n != "direct"}
    failures: dict[str, list[str]] = {}
    up_ms = 1200

    def note(name, what, e):
        failures.setdefault(name, []).append(f"{what}: {e}")
        print(f"  {name} {what}: FAILED: {e}", file=sys.stderr)

    for rnd in range(args.rounds):
        t = time.monotonic()
        for c in rotate(contenders, rnd):
            count = args.slow_restarts if c.name in SLOW else args.restarts
            try:
                crash[c.name] += crash_loop(c, count, 0, helpers, scratch)
            except BenchError as e:
                note(c.name, "crash loop", e)
            time.sleep(SETTLE)
        for k in args.others:
            for c in rotate([c for c in contenders if c.name in crowded], rnd):
                try:
                    crowded[c.name][k] += crash_loop(c, args.restarts, 0, helpers, scratch, others=k)
                except BenchError as e:
                    note(c.name, f"crash loop beside {k}", e)
                time.sleep(SETTLE)
        try:
            for name, gaps in concurrent_loops(contenders, args.up_restarts, up_ms, helpers, scratch).items():
                after_up[name] += gaps
        except BenchError as e:
            note("all", "after 1.2 s up", e)
        time.sleep(SETTLE)
        try:
            for name, r in crash_cpu([c for c in contenders if c.name in cpu], args.crash_units,
                                     args.window, helpers, scratch).items():
                cpu[name].append(r)
        except BenchError as e:
            note("all", "crash-loop CPU", e)
        time.sleep(SETTLE)
        done = ", ".join(f"{n} {fmt(median_or_none(crash[n]), '{:.1f}')}" for n in names)
        print(f"round {rnd + 1}/{args.rounds} ({time.monotonic() - t:.0f} s): crash-loop gap ms: {done}",
              file=sys.stderr)

    endurance_result = None
    pidone = next((c for c in contenders if c.name == "pidone"), None)
    if pidone is not None:
        try:
            endurance_result = endurance(pidone, helpers, scratch)
        except BenchError as e:
            note("pidone", "endurance", e)

    summary = {}
    for n in names:
        s = {"crash_median_ms": median_or_none(crash[n]),
             "crash_max_ms": max(crash[n]) if crash[n] else None,
             "crash_samples": len(crash[n]),
             "up_median_ms": median_or_none(after_up[n]),
             **{f"crash_beside_{k}_ms": median_or_none(crowded[n][k]) if n in crowded else None
                for k in args.others},
             "up_samples": len(after_up[n])}
        if n in cpu and cpu[n]:
            rs = cpu[n]
            s["pid1_cpu_pct"] = statistics.median(r["pid1_cpu_pct"] for r in rs)
            s["pid1_cpu_pct_max"] = max(r["pid1_cpu_pct"] for r in rs)
            s["pid1_ticks_max"] = max(r["pid1_ticks"] for r in rs)
            s["tree_cpu_pct"] = statistics.median(r["tree_cpu_pct"] for r in rs)
            s["restarts_per_s"] = statistics.median(r["restarts"] / r["window_s"] for r in rs)
            per = [r["pid1_cpu_ms_per_restart"] for r in rs if r["pid1_cpu_ms_per_restart"] is not None]
            s["pid1_cpu_ms_per_restart"] = median_or_none(per)
        summary[n] = s

    p = summary.get("pidone", {})
    bars = {
        "restart_ms": {"value": p.get("crash_median_ms"), "bar": BAR_RESTART_MS,
                       "pass": None if p.get("crash_median_ms") is None
                       else p["crash_median_ms"] < BAR_RESTART_MS},
        "crash_loop_cpu_pct": {"value": p.get("pid1_cpu_pct_max"), "bar": BAR_CPU_PCT,
                               "pass": None if p.get("pid1_cpu_pct_max") is None
                               else p["pid1_cpu_pct_max"] < BAR_CPU_PCT},
    }
    info = machine()
    config = {"rounds": args.rounds, "restarts": args.restarts, "others": args.others, "slow_restarts": args.slow_restarts,
              "up_restarts": args.up_restarts, "up_ms": up_ms, "crash_units": args.crash_units,
              "window_s": args.window, "clk_tck": CLK_TCK, "quick": args.quick}
    print(render(summary, names, bars, endurance_result, info, config, skipped, failures, contenders))
    write_json(args.output, {
        "benchmark": "respawn", "machine": info, "config": config,
        "versions": {c.name: c.version for c in contenders}, "summary": summary,
        "ratios": {f"pidone/{n}": {k: ratio(p.get(k), summary[n].get(k))
                                   for k in ("crash_median_ms", "up_median_ms", "pid1_cpu_pct")}
                   for n in names if n != "pidone" and p},
        "bars": bars, "endurance": endurance_result, "skipped": skipped, "failures": failures,
        "raw": {"crash_ms": crash, "crash_beside_ms": crowded, "after_up_ms": after_up, "cpu": cpu},
    })
    return 0


def render(summary, names, bars, endurance_result, info, config, skipped, failures, contenders) -> str:
    cols = [("crash_median_ms", "crash loop ms"), ("crash_max_ms", "max ms")]
    cols += [(f"crash_beside_{k}_ms", f"beside {k} ms") for k in config["others"]]
    cols += [("up_median_ms", "after 1.2 s up ms"),
            ("pid1_cpu_pct", "PID1 CPU %"), ("tree_cpu_pct", "tree CPU %"),
            ("restarts_per_s", "restarts/s"), ("pid1_cpu_ms_per_restart", "PID1 ms/restart")]

    def cell(row, key):
        if row.startswith("pidone/"):
            if key not in ("crash_median_ms", "up_median_ms") and not key.startswith("crash_beside"):
                return ""
            return fmt(ratio(summary["pidone"].get(key), summary[row[7:]].get(key)), "{:.3f}×")
        v = summary[row].get(key)
        return fmt(v, "{:.2f}" if key.endswith("_ms") or key == "pid1_cpu_ms_per_restart" else "{:.2f}")

    rows = list(names)
    if "pidone" in summary:
        rows += [f"pidone/{n}" for n in names if n != "pidone"]
    lines = ["", f"Keeping services alive ({config['rounds']} round(s); restart gaps are medians, ms)", ""]
    lines += table(rows, cols, cell)
    lines += ["",
              "crash loop: the service exits 1 at once; gap = its exit → the next start; "
              "'beside N': the same with N idle services running in the same namespace. "
              "Samples per contender: " + ", ".join(f"{n} {summary[n]['crash_samples']}" for n in names) + ".",
              f"CPU: {config['crash_units']} units exiting 1 at once, default backoff, never giving up, "
              f"over {config['window_s']:g} s; tree = PID 1 + long-lived supervisors (s6-supervise, runsv)."]
    p = summary.get("pidone", {})
    if "pid1_ticks_max" in p:
        lines.append(f"pidone PID 1: at most {p['pid1_ticks_max']} clock ticks (1/{config['clk_tck']} s) "
                     f"in a window; max {fmt(p.get('pid1_cpu_pct_max'), '{:.2f}')}%.")
    if endurance_result is not None:
        e = endurance_result
        state = "kept going" if e["ok"] else "STALLED"
        lines.append(f"pidone delay-0 crash loop: {e['restarts']} restarts of {e['target']} wanted "
                     f"in {fmt(e['seconds'], '{:.1f}')} s: {state}")
        for err in e["errors"][:4]:
            lines.append(f"    {err[:160]}")
    b = bars
    lines += ["", "bars (pidone, same run):",
              f"  (e) restart after a crash   {fmt(b['restart_ms']['value'], '{:.2f} ms')} median (bar < {BAR_RESTART_MS:g} ms): {verdict(b['restart_ms']['pass'])}",
              *[f"      beside {k} idle services  {fmt(p.get(f'crash_beside_{k}_ms'), '{:.2f} ms')} median"
                f" ({'under' if (p.get(f'crash_beside_{k}_ms') or 1e9) < BAR_RESTART_MS else 'over'} the bar)"
                for k in config["others"] if p.get(f'crash_beside_{k}_ms') is not None],
              f"  (f) crash-loop PID 1 CPU    {fmt(b['crash_loop_cpu_pct']['value'], '{:.2f}%')} worst round (bar < {BAR_CPU_PCT:g}%): {verdict(b['crash_loop_cpu_pct']['pass'])}"]
    lines += report_footer(skipped, failures, info, [c.version for c in contenders], config)
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

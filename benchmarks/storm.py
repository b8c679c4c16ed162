#!/usr/bin/env python3
"""Restart storms: N CPU-heavy units failing at the same instant, restarted
by pidone with and without its restart queue (`--max-restarting`), in the
same run.

Each unit is a Python interpreter that imports a few modules and does some
arithmetic (~0.1 s of CPU: what a small service costs to start), then
creates its ready file; `[ready] path` probes it every 100 ms. Restart
policy "always", delay 0, never giving up; ready timeout 300 s (nothing
fails for being slow). Beside them, a canary unit prints a line every 20
ms.

For each mode (`--max-restarting 0` = no queue, then each limit asked) a
fresh pidone is PID 1 of its own PID namespace. Once every unit is ready
and 2 s have passed, the harness deletes the ready files and SIGKILLs every
unit's main process (one `kill` inside the namespace: a few ms for all), then
measures until every unit is ready again:

  all ready     from the kill to the last unit ready again (its `since`)
  median ready  the median unit's time from the kill to ready again
  ctl p50/p99   latency of `status canary` on the control socket, one
                request every 50 ms from a thread of the harness (an
                in-process client: no fork+exec of a CLI in the
                measurement; one unit, so that the client's own load on
                pidone stays small: a `status` of all 200 units every
                50 ms would cost pidone a third of a core)
  canary gap    the longest time between two canary lines as read from
                pidone's stdout during the storm (20 ms when nothing lags)

Each mode's namespace runs in a cpu cgroup of its own with the highest
weight (cpu.shares 262144 on cgroup v1), so that the other processes of a
shared machine take the same share from every mode. The harness's client
and output reader threads join the same cgroup (v1 places threads), as a
client inside the container would be. Without it, the mode
with 200 runnable processes (no queue) takes CPU from the neighbours that
a mode with 4 leaves them, and looks faster than it would be alone in a
container.

The bar: with the default limit, ctl p99 and median ready clearly better
(below 0.8x) than without the queue, and all ready no worse (at most 1.1x).

Run as root: `.venv/bin/python benchmarks/storm.py [--quick] [--units N]
[--limits 4,0]`. Table to stdout, JSON to results/storm.json. The modes
run one after the other (each storm saturates the machine), in the order
given, after one warm-up storm that is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(ROOT / "src"))

from pidone.daemon import DEFAULT_MAX_RESTARTING  # noqa: E402

UNIT = r"""
import json, decimal, email.parser, http.client, argparse, logging, xml.dom.minidom, sqlite3, sys
sum(i * i for i in range(400_000))
open(sys.argv[1], "w").close()
import time
while True:
    time.sleep(3600)
"""
CANARY = "import time\nn = 0\nwhile True:\n    n += 1\n    print('beat', n, flush=True)\n    time.sleep(0.02)"
POLL = 0.05  # s between two control requests of the in-process client


def write_units(directory: Path, ready_dir: Path, count: int) -> list[str]:
    directory.mkdir(parents=True)
    names = [f"u{i:03d}" for i in range(count)]
    for name in names:
        ready = ready_dir / name
        (directory / f"{name}.toml").write_text(
            f'[service]\ncommand = [{json.dumps(sys.executable)}, "-c", {json.dumps(UNIT)}, {json.dumps(str(ready))}]\n'
            f'[ready]\npath = {json.dumps(str(ready))}\ntimeout = "300s"\n'
            '[restart]\npolicy = "always"\ndelay = 0\nmax_retries = 0\n')
    (directory / "canary.toml").write_text(f'[service]\ncommand = [{json.dumps(sys.executable)}, "-u", "-c", {json.dumps(CANARY)}]\n')
    return names


def request(path: Path, cmd: str = "status", args: dict | None = None, timeout: float = 60.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps({"v": 1, "cmd": cmd, "args": args or {}}).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


CPU_ROOT = Path("/sys/fs/cgroup/cpu")  # cgroup v1; v2: /sys/fs/cgroup with cpu.weight


def cpu_group(tag: str) -> Path | None:
    """A cpu cgroup with the highest weight, for one mode's namespace (None
    when none can be made: then the run says so)."""
    for root, knob, value in ((CPU_ROOT, "cpu.shares", "262144"), (Path("/sys/fs/cgroup"), "cpu.weight", "10000")):
        if (root / knob).exists() or (root / "cgroup.procs").exists() and knob == "cpu.weight":
            try:
                path = root / f"pidone-storm-{tag}-{os.getpid()}"
                path.mkdir(exist_ok=True)
                (path / knob).write_text(value)
                return path
            except OSError:
                continue
    return None


class Pidone:
    def __init__(self, units: Path, runtime: Path, limit: int):
        self.group = cpu_group(str(limit))

        def join() -> None:
            if self.group is not None:
                (self.group / "cgroup.procs").write_text(str(os.getpid()))

        env = {k: v for k, v in os.environ.items() if not k.startswith("PIDONE_")}
        env["PYTHONPATH"] = str(ROOT / "src")
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", sys.executable, "-m", "pidone",
             "--units", str(units), "--runtime-dir", str(runtime), "--max-restarting", str(limit)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=join)
        self.socket = runtime / "private" / "control.sock"
        self.beats: list[float] = []
        self.tail: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()

    def enter_group(self) -> None:
        """Move the calling thread into the mode's cgroup (v1 places
        threads): the harness's client and reader must not be the ones
        starved by the weight given to the namespace."""
        if self.group is not None and (self.group / "tasks").exists():
            (self.group / "tasks").write_text(str(threading.get_native_id()))

    def _read(self) -> None:
        self.enter_group()
        for line in iter(self.proc.stdout.readline, b""):
            if line.startswith(b"canary | beat"):
                self.beats.append(time.monotonic())
            else:
                self.tail = (self.tail + [line])[-50:]

    def pid1(self) -> int:
        """pidone's host pid (unshare's child)."""
        return int(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()[0])

    def units(self) -> dict[str, dict]:
        return {u["unit"]: u for u in request(self.socket)["result"]["units"]}

    def wait_all_ready(self, names: list[str], timeout: float) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.socket.exists():
                try:
                    units = self.units()
                except OSError:
                    units = {}
                if units and all(units[n]["state"] == "running" for n in names):
                    return units
            time.sleep(0.2)
        raise SystemExit(f"not every unit ready within {timeout}s:\n" + b"".join(self.tail).decode(errors="replace"))

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        if self.group is not None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    self.group.rmdir()
                    break
                except OSError:  # its last processes are still exiting
                    time.sleep(0.05)


def storm(limit: int, count: int, scratch: Path) -> dict:
    base = Path(tempfile.mkdtemp(prefix=f"storm-{limit}-", dir=scratch))
    ready_dir = base / "ready"
    ready_dir.mkdir()
    names = write_units(base / "units", ready_dir, count)
    p = Pidone(base / "units", base / "run", limit)
    try:
        before = p.wait_all_ready(names, 300)
        time.sleep(2.0)
        latencies: list[float] = []
        errors: list[str] = []
        stop = threading.Event()

        def client() -> None:
            p.enter_group()
            while not stop.is_set():
                started = time.monotonic()
                try:
                    request(p.socket, "status", {"units": ["canary"]})
                    latencies.append(time.monotonic() - started)
                except (OSError, ValueError) as exc:  # counted, and the client goes on
                    errors.append(repr(exc))
                stop.wait(POLL)

        thread = threading.Thread(target=client, daemon=True)
        for name in names:
            (ready_dir / name).unlink()
        # The pids are the namespace's: one `kill` inside it sends every SIGKILL.
        kill = ["nsenter", "--target", str(p.pid1()), "--pid", "--mount", "kill", "-KILL",
                *(str(before[name]["pid"]) for name in names)]
        killed_wall, killed = time.time(), time.monotonic()
        subprocess.run(kill, check=True)
        thread.start()
        after = p.wait_all_ready(names, 600)
        stop.set()
        thread.join(timeout=60)
        done = time.monotonic()
        ready_after = sorted(after[n]["since"] - killed_wall for n in names)
        beats = [t for t in p.beats if killed <= t <= done]
        gaps = [b - a for a, b in zip(beats, beats[1:])]
        latencies.sort()
        return {
            "limit": limit, "units": count,
            "all_ready_s": ready_after[-1], "median_ready_s": statistics.median(ready_after),
            "ctl_p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
            "ctl_p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None,
            "ctl_requests": len(latencies), "ctl_errors": len(errors), "ctl_first_error": errors[0] if errors else None,
            "cpu_cgroup": str(p.group) if p.group else None,
            "canary_gap_ms": 1000 * max(gaps) if gaps else None,
            "restarts": sum(after[n]["restarts"] for n in names),
        }
    finally:
        p.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 units instead of 200")
    parser.add_argument("--units", type=int, default=None, help="how many units fail together (200; 40 with --quick)")
    parser.add_argument("--limits", default=None,
                        help=f"--max-restarting values to compare, 0 = no queue ({DEFAULT_MAX_RESTARTING},0)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root (unshare --pid)", file=sys.stderr)
        return 2
    count = args.units or (40 if args.quick else 200)
    limits = [int(x) for x in (args.limits or f"{DEFAULT_MAX_RESTARTING},0").split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="pidone-storm-") as scratch:
        storm(limits[0], min(count, 20), Path(scratch))  # warm-up: bytecode caches, page cache
        for limit in limits:
            rows.append(storm(limit, count, Path(scratch)))
            print(f"limit {limit}: {rows[-1]}", file=sys.stderr)
    print(f"{count} units killed at once; times from the kill (s), control latency (ms)")
    print(f"{'--max-restarting':>16} {'all ready':>10} {'median ready':>13} {'ctl p50':>8} {'ctl p99':>8} {'canary gap':>11}")
    for r in rows:
        print(f"{r['limit'] or 'none (0)':>16} {r['all_ready_s']:>10.2f} {r['median_ready_s']:>13.2f} "
              f"{r['ctl_p50_ms']:>8.1f} {r['ctl_p99_ms']:>8.1f} {r['canary_gap_ms']:>11.1f}")
    base = next((r for r in rows if r["limit"] == 0), None)
    default = next((r for r in rows if r["limit"] == DEFAULT_MAX_RESTARTING), None)
    verdict = None
    if base and default:
        verdict = (default["ctl_p99_ms"] < 0.8 * base["ctl_p99_ms"] and default["median_ready_s"] < 0.8 * base["median_ready_s"]
                   and default["all_ready_s"] <= 1.1 * base["all_ready_s"])
        print(f"bar (default {DEFAULT_MAX_RESTARTING} vs none: p99 and median < 0.8x, all ready <= 1.1x): "
              f"{'PASS' if verdict else 'FAIL'}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the end")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "storm.json").write_text(json.dumps({"rows": rows, "quick": args.quick, "pass": verdict}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

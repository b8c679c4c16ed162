"""Held sockets and idle timers, measured under pidone as PID 1.

1. Restarts under load: a client exchanges a line with a service every
   20 ms while the service is restarted 3 times with `pidone restart` and
   pidone itself re-executes once; the service takes 0.3 s to accept again
   after each start. Two contenders in the same run, interleaved by round:
   - `held`: the unit's port is a `[socket]` pidone holds (SPEC §14);
   - `own`: the same service binds the port itself, as without socket
     activation (and as under every peer in benchmarks/: tini, dumb-init,
     s6, runit and supervisord have no held sockets).
   Reported: connections refused (the goal is 0 for `held`), exchanges
   that succeeded, and the longest wait of one exchange.
2. Idle with a timer: pidone with one `[timer]` unit due in an hour, left
   alone for `--idle` seconds: PID 1's CPU ticks and its context switches
   (a wake-up is a switch) over the window. The goal is 0 and 0.

Run as root: `.venv/bin/python benchmarks/sockets.py [--rounds N] [--idle S]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

SERVICE = r"""
import os, socket, sys, time
port = int(sys.argv[1])
if os.environ.get("LISTEN_FDS") == "1":
    server = socket.socket(fileno=3)
else:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
time.sleep(0.3)  # a service that takes a while to start
if os.environ.get("LISTEN_FDS") != "1":
    server.bind(("127.0.0.1", port))
    server.listen(128)
while True:
    conn, _ = server.accept()
    with conn:
        line = conn.recv(100)
        conn.sendall(line)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pidone:
    """pidone as PID 1 of a PID namespace over `units`."""

    def __init__(self, scratch: Path, units: dict[str, str]):
        self.units = scratch / "units"
        self.units.mkdir(parents=True)
        scratch.chmod(0o755)
        for name, text in units.items():
            (self.units / f"{name}.toml").write_text(text)
        self.run = scratch / "run"
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", PY, "-m", "pidone",
             "--units", str(self.units), "--runtime-dir", str(self.run)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (self.run / "private" / "control.sock").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("pidone did not start")
            time.sleep(0.01)
        self.pid1 = int(Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()[0])

    def cli(self, *args: str) -> None:
        subprocess.run([PY, "-m", "pidone", *args, "--runtime-dir", str(self.run)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def exchange(port: int) -> float:
    """One line there and back; return how long it took (raises on refusal)."""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.settimeout(10)
        conn.sendall(b"ping\n")
        if conn.recv(100) != b"ping\n":
            raise OSError("wrong answer")
    return time.monotonic() - start


def restarts_round(kind: str, scratch: Path) -> dict:
    port = free_port()
    scratch.mkdir(parents=True)
    script = scratch / "service.py"
    script.write_text(SERVICE)
    unit = f'[service]\ncommand = ["{PY}", "{script}", "{port}"]\n[stop]\ntimeout = "2s"\n'
    if kind == "held":
        unit += f'[socket]\nlisten = ["tcp:127.0.0.1:{port}"]\n'
    p = Pidone(scratch, {"svc": unit})
    counts = {"ok": 0, "refused": 0, "errors": 0, "longest": 0.0}
    try:
        deadline = time.monotonic() + 20
        while True:  # the first start: not measured
            try:
                exchange(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{kind}: the service never answered") from None
                time.sleep(0.02)
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                try:
                    counts["longest"] = max(counts["longest"], exchange(port))
                    counts["ok"] += 1
                except ConnectionRefusedError:
                    counts["refused"] += 1
                except OSError:
                    counts["errors"] += 1
                time.sleep(0.02)

        thread = threading.Thread(target=client)
        thread.start()
        for _ in range(3):
            p.cli("restart", "--wait", "svc")
            time.sleep(0.5)
        p.cli("reexec")
        time.sleep(1.0)
        stop.set()
        thread.join(30)
    finally:
        p.close()
    return counts


def idle_round(seconds: float, scratch: Path) -> dict:
    unit = '[service]\ncommand = ["true"]\ntype = "oneshot"\n[timer]\nschedule = "every 1h"\n'
    p = Pidone(scratch, {"hourly": unit})
    try:
        time.sleep(1.0)  # let start-up settle

        def sample() -> tuple[int, int]:
            fields = Path(f"/proc/{p.pid1}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p.pid1}/status").read_text()
            switches = sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)
            return int(fields[11]) + int(fields[12]), switches

        ticks0, switches0 = sample()
        time.sleep(seconds)
        ticks1, switches1 = sample()
    finally:
        p.close()
    return {"ticks": ticks1 - ticks0, "wakeups": switches1 - switches0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each contender (3)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window (10)")
    parser.add_argument("--quick", action="store_true", help="one round, a 3 s idle window")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.idle = 1, 3.0
    if os.geteuid() != 0:
        print("sockets.py: needs root (unshare --pid)", file=sys.stderr)
        return 2
    results: dict[str, list[dict]] = {"held": [], "own": []}
    with tempfile.TemporaryDirectory(prefix="pidone-bench-sockets.") as tmp:
        for round_no in range(args.rounds):
            order = ["held", "own"] if round_no % 2 == 0 else ["own", "held"]
            for kind in order:
                results[kind].append(restarts_round(kind, Path(tmp) / f"{kind}-{round_no}"))
        idle = idle_round(args.idle, Path(tmp) / "idle")
    print(f"# held sockets through 3 restarts and 1 reexec, a line every 20 ms ({args.rounds} rounds)")
    print(f"{'unit':<6} {'refused':>8} {'ok':>6} {'errors':>7} {'longest wait ms':>16}")
    summary = {}
    for kind, runs in results.items():
        row = {
            "refused": sum(r["refused"] for r in runs),
            "ok": statistics.median(r["ok"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "longest_ms": 1000 * statistics.median(r["longest"] for r in runs),
        }
        summary[kind] = row
        print(f"{kind:<6} {row['refused']:>8} {row['ok']:>6g} {row['errors']:>7} {row['longest_ms']:>16.0f}")
    print(f"# idle pidone with a timer due in an hour, {args.idle:g} s: "
          f"{idle['ticks']} CPU ticks, {idle['wakeups']} context switches (goal 0 and 0)")
    print(f"# machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "sockets.json").write_text(json.dumps({"restarts": summary, "runs": results, "idle": idle}, indent=1))
    ok = summary["held"]["refused"] == 0 and idle["ticks"] == 0 and idle["wakeups"] == 0
    print(f"# held: {'PASS' if ok else 'FAIL'} (0 refused, 0 ticks, 0 wake-ups)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

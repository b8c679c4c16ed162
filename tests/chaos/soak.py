"""The soak (RELIABILITY E3): one pidone as PID 1 beside the canary, random
faults from sections A-D for MINUTES minutes, the invariants G1-G6 checked
every minute. Prints one line per check and a summary; exits 1 on the first
broken invariant."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import Chaos  # noqa: E402
from fuzz import mutate_request, mutate_unit  # noqa: E402

SLEEP = {"service": {"command": ["sleep", "600"]}}


def faults(c: Chaos, rng: random.Random):
    """Each returns a short description of what it did."""

    def bad_edit():
        c.write("victim", mutate_unit(rng.randrange(1 << 30)).decode("utf-8", "replace"))
        c.p.kill(signal.SIGHUP)
        return "a broken edit + SIGHUP"

    def good_edit():
        c.write("victim", {"service": {"command": ["sleep", str(600 + rng.randrange(100))]}})
        c.p.kill(signal.SIGHUP)
        return "a good edit + SIGHUP"

    def kill_unit():
        pid = c.unit_pids().get(rng.choice(["svc0", "svc1", "svc2", "victim"]))
        if pid:
            c.inside("kill", "-9", str(pid))
        return f"kill -9 {pid}"

    def hup_storm():
        for _ in range(200):
            c.p.kill(signal.SIGHUP)
        return "200 SIGHUPs"

    def reexec():
        out = c.cli("reexec", timeout=120)
        return f"reexec -> {out.returncode}"

    def fuzz():
        import socket

        for _ in range(50):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(c.socket))
                try:
                    sock.sendall(mutate_request(rng.randrange(1 << 30)))
                    sock.recv(65536)
                except OSError:
                    pass
        return "50 fuzzed requests"

    def restart_units():
        reply = c.request("restart", timeout=60, units=["svc0", "svc1"], wait=True)
        return f"restart svc0 svc1 -> {reply['ok']}"

    def orphans():
        c.write("forker", {"service": {"command": ["sh", "-c", "for i in $(seq 200); do (sleep 0.2 &) ; done; sleep 1"]},
                           "restart": {"policy": "no"}})
        c.p.kill(signal.SIGHUP)
        return "200 orphans"

    return [bad_edit, good_edit, kill_unit, hup_storm, reexec, fuzz, restart_units, orphans]


def main() -> int:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30
    rng = random.Random(int(os.environ.get("SOAK_SEED", "1")))
    tmp = Path(tempfile.mkdtemp(prefix="pidone-soak-"))
    units = {f"svc{i}": {**SLEEP, "restart": {"delay": "200ms", "max_retries": 0}} for i in range(3)}
    units["victim"] = SLEEP
    c = Chaos(tmp, units, timeout=minutes * 60 + 600).boot()
    started = time.monotonic()
    next_check = started + 60
    done: dict[str, int] = {}
    checks = 0
    try:
        actions = faults(c, rng)
        while time.monotonic() - started < minutes * 60:
            action = rng.choice(actions)
            what = action()
            done[action.__name__] = done.get(action.__name__, 0) + 1
            time.sleep(rng.uniform(0.2, 2.0))
            if time.monotonic() >= next_check:
                # Leave the machine quiet for a moment, then check G1-G6.
                time.sleep(2)
                _check(c)
                checks += 1
                print(f"[{(time.monotonic() - started) / 60:5.1f} min] G1-G6 hold; last: {what}; "
                      f"fds {c.p.fd_count()}, RSS {c.p.rss_kib()} KiB", flush=True)
                next_check = time.monotonic() + 60
        _check(c)
        checks += 1
    except AssertionError as exc:
        print(f"SOAK FAILED after {(time.monotonic() - started) / 60:.1f} min: {exc}", flush=True)
        return 1
    finally:
        c.close()
    summary = {"minutes": minutes, "checks": checks, "faults": done}
    print(f"soak passed: {json.dumps(summary)}", flush=True)
    return 0


def _check(c: Chaos) -> None:
    """G1, G2, G4, G5 and G6 as in the suite; G3 (fds) against the units
    running now, as the soak keeps adding and removing them."""
    assert c.p.proc.poll() is None, "G1: PID 1 died"
    from pidone_harness import wait_for

    wait_for(lambda: c.zombies() == 0, 5, "G2: zombies to be reaped")
    for _ in range(10):
        t = time.monotonic()
        assert c.request("status", timeout=5)["ok"]
        assert time.monotonic() - t < 1.0, "G4: status over 1 s"
    assert c.unit_pids().get("canary") == c.canary_pid, "G5: canary restarted"
    c.assert_canary()
    out = c.p.output()
    assert "Traceback" not in out, "G6: " + out[out.index("Traceback") - 300:][:2000]


if __name__ == "__main__":
    sys.exit(main())

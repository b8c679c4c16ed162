"""The chaos harness (RELIABILITY.md §2): each case runs against a real
pidone as PID 1 of its own namespace, beside the canary unit, and ends with
the global invariants G1-G6 checked:

  G1  PID 1 alive (unless the case is a shutdown)
  G2  no zombie older than 2 s
  G3  PID 1's fd count within ±2 of its baseline
  G4  `status` answers: p99 under 200 ms (under 1 s during floods)
  G5  the canary kept its PID and lost no line, with no gap over 1 s
  G6  no traceback in pidone's own output
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pidone_harness import PidOne, wait_for  # noqa: E402

PY = sys.executable
CANARY = {"service": {"command": [PY, "-u", "-c",
                                  "import time\nn = 0\nwhile True:\n    n += 1\n    print('beat', n, flush=True)\n"
                                  "    time.sleep(0.1)"]}}


class Chaos:
    """One pidone as PID 1 with the canary, plus what a case adds."""

    def __init__(self, tmp_path: Path, units: dict[str, dict | str], *extra: str, timeout: float = 300, env=None,
                 at_boot: bool = False):
        """Boot with the canary alone (G3's baseline is measured then) and
        add `units` with a reload; with `at_boot`, they are there at boot."""
        self.tmp = tmp_path
        self.units = tmp_path / "units"
        self.units.mkdir(exist_ok=True)
        self.runtime = tmp_path / "run"
        self.write("canary", CANARY)
        self.case_units = units
        self.at_boot = at_boot
        if at_boot:
            for name, unit in units.items():
                self.write(name, unit)
        self.p = PidOne(["--units", str(self.units), "--runtime-dir", str(self.runtime), *extra],
                        timeout=timeout, env=env)
        self.socket = self.runtime / "private" / "control.sock"

    def write(self, name: str, unit: dict | str) -> None:
        text = unit if isinstance(unit, str) else tomli_w.dumps(unit)
        tmp = self.units / f".{name}.tmp"
        tmp.write_text(text)
        tmp.rename(self.units / f"{name}.toml")

    def boot(self) -> "Chaos":
        self.p.wait_ready()
        wait_for(self.socket.exists, 30, "the control socket")
        self.p.find_line(r"unit canary: started", timeout=30)
        self.p.wait_count(r"^canary \| beat", 3, timeout=30)
        self.canary_pid = self.unit_pids()["canary"]
        self.fds = None if self.at_boot else self.p.settled_fd_count()
        if not self.at_boot and self.case_units:
            for name, unit in self.case_units.items():
                self.write(name, unit)
            # SIGHUP, not `pidone reload`: that waits for every new unit to
            # settle, and some cases hold their units in `starting`.
            self.p.kill(signal.SIGHUP)
            self.p.find_line(r"^pidone \| reloading .*: \+", timeout=60)
        return self

    # -- probes ------------------------------------------------------------------

    def request(self, cmd: str, timeout: float = 5, **args) -> dict:
        return json.loads(self.reply_line(cmd, timeout, **args))

    def reply_line(self, cmd: str, timeout: float = 5, **args) -> bytes:
        """pidone's whole reply line, unparsed (G4 times pidone, not the
        test's JSON parser: 10,001 units are 3 MB of JSON)."""
        payload = json.dumps({"v": 1, "cmd": cmd, "args": args}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket))
            sock.sendall(payload)
            chunks: list[bytes] = []
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).split(b"\n", 1)[0]

    def unit_pids(self) -> dict[str, int]:
        return {u["unit"]: u["pid"] for u in self.request("status")["result"]["units"] if u["pid"]}

    def states(self) -> dict[str, str]:
        return {u["unit"]: u["state"] for u in self.request("status")["result"]["units"]}

    def cli(self, *args: str, timeout: float = 60, user: int | None = None) -> subprocess.CompletedProcess:
        argv = [PY, "-m", "pidone", *args, "--runtime-dir", str(self.runtime)]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)

    def inside(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return self.p.run_inside(list(argv), timeout=timeout)

    def zombies(self) -> int:
        out = self.inside("sh", "-c", "grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l")
        return int(out.stdout.strip() or 0)

    def cpu_ticks(self) -> int:
        fields = Path(f"/proc/{self.p.pid1}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    # -- invariants --------------------------------------------------------------------

    def check(self, *, alive: bool = True, flood: bool = False, canary: bool = True) -> None:
        """G1-G6 after a case."""
        if alive:
            assert self.p.proc.poll() is None, f"G1: PID 1 died: {self.p.output()[-2000:]}"
            wait_for(lambda: self.zombies() == 0, 2.5, "G2: zombies to be reaped")
            if self.fds is not None:
                # Stop what the case added: every fd it cost must come back.
                others = [name for name in self.states() if name != "canary"]
                if others:
                    reply = self.request("stop", timeout=120, units=others, wait=True)
                    assert "result" in reply or reply["ok"], reply
                wait_for(lambda: abs(self.p.settled_fd_count() - self.fds) <= 2, 10,
                         f"G3: PID 1's fds back to {self.fds} (now {self.p.fd_count()})")
            latencies = []
            for _ in range(20):
                started = time.monotonic()
                line = self.reply_line("status", timeout=5)
                latencies.append(time.monotonic() - started)
                assert json.loads(line)["ok"], line[:500]
            bound = 1.0 if flood else 0.2
            assert sorted(latencies)[-1] < bound, f"G4: status took {max(latencies) * 1000:.0f} ms"
            if canary:
                assert self.unit_pids().get("canary") == self.canary_pid, "G5: the canary was restarted"
        if canary:
            self.assert_canary()
        out = self.p.output()
        assert "Traceback" not in out, f"G6: a traceback in pidone's output: {out[out.index('Traceback') - 500:][:3000]}"

    def assert_canary(self) -> None:
        beats = [(t, int(line.split()[-1])) for t, line in zip(list(self.p.stdout_times), list(self.p.stdout))
                 if line.startswith(b"canary | beat ")]
        numbers = [n for _, n in beats]
        assert numbers == list(range(1, len(numbers) + 1)), "G5: canary lines are missing"
        gaps = [b[0] - a[0] for a, b in zip(beats, beats[1:])]
        assert not gaps or max(gaps) <= 1.0, f"G5: a canary gap of {max(gaps):.2f} s"

    def close(self) -> None:
        self.p.close()


@pytest.fixture
def chaos(tmp_path):
    """Call `chaos(units, *flags)`; the instance is killed at teardown."""
    made: list[Chaos] = []

    def make(units: dict, *extra: str, **kwargs) -> Chaos:
        instance = Chaos(tmp_path, units, *extra, **kwargs)
        made.append(instance)
        return instance.boot()

    yield make
    for instance in made:
        instance.close()


CHAOS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    # A conftest's collection hook sees the whole session's items, not only
    # this directory's: skip the chaos cases alone, never the unit tests.
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: runs pidone as PID 1 in a PID namespace (unshare --pid)")
    for item in items:
        if CHAOS_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)


def sigterm_and_wait(c: Chaos, timeout: float = 60) -> int:
    c.p.kill(signal.SIGTERM)
    return c.p.wait(timeout=timeout)

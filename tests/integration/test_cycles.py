"""A tangle of cycles at boot, under real PID 1: every unit on a cycle is
named in the log and held back (`skipped`) with a reason naming a cycle it
is on; the unit outside the tangle runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from pidone_harness import wait_for

PY = sys.executable


def test_every_unit_of_a_tangle_is_named_and_held_back(pidone, tmp_path):
    units, runtime = tmp_path / "units", tmp_path / "run"
    units.mkdir()
    deps = {"a": ["b"], "b": ["a", "c"], "c": ["b"], "free": []}
    for name, requires in deps.items():
        (units / f"{name}.toml").write_text(f'[service]\ncommand = ["sleep", "600"]\n'
                                            f"[dependencies]\nrequires = {json.dumps(requires)}\n")
    p = pidone(["--units", str(units), "--runtime-dir", str(runtime)])
    p.find_line(r"a\.toml:3: \[dependencies\]: dependency cycle: a -> b -> a \(in a tangle of 3 units: a, b, c\)")
    p.find_line(r"b\.toml:3: \[dependencies\]: dependency cycle: b -> c -> b \(in a tangle of 3 units: a, b, c\)")
    p.find_line(r"unit free: started")
    wait_for((runtime / "private" / "control.sock").exists, 15, "the control socket")
    out = subprocess.run([PY, "-m", "pidone", "status", "--json", "--runtime-dir", str(runtime)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    found = {unit["unit"]: (unit["state"], unit["reason"]) for unit in json.loads(out.stdout)["units"]}
    assert found["a"] == ("skipped", "in a dependency cycle: a -> b -> a")
    assert found["b"] == ("skipped", "in a dependency cycle: a -> b -> a")
    assert found["c"] == ("skipped", "in a dependency cycle: b -> c -> b")
    assert found["free"][0] == "running"
    p.kill(signal.SIGTERM)
    assert p.wait() == 0

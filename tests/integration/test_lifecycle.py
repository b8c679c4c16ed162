"""SPEC §11 as PID 1 with real processes: disabled units, conditions, exit
statuses, stop modes, part_of, runtime and state directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomli_w

from pidone_harness import wait_for

PY = sys.executable


def start(pidone, tmp_path: Path, units: dict[str, dict], *extra, env: dict | None = None, **kwargs):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    runtime = tmp_path / "run"
    p = pidone(["--units", str(directory), "--runtime-dir", str(runtime), *extra],
               env={**os.environ, **(env or {})}, **kwargs)
    p.runtime = runtime
    p.units_dir = directory
    p.wait_ready()
    wait_for((runtime / "private" / "control.sock").exists, 15, "the control socket")
    return p


def cli(p, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = [PY, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def status(p) -> dict[str, dict]:
    out = cli(p, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {unit["unit"]: unit for unit in json.loads(out.stdout)["units"]}


def wait_state(p, name: str, wanted: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (s := status(p)[name])["state"] == wanted and s, timeout, f"{name} {wanted}")


def sleeper(**service) -> dict:
    return {"service": {"command": ["sleep", "600"], **service}}


# -- enabled and [conditions] -------------------------------------------------------


def test_a_disabled_unit_is_present_and_starts_only_when_asked(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "admin": {"enabled": False, **sleeper()}})
    wait_state(p, "web", "running")
    units = status(p)
    assert units["admin"]["state"] == "inactive" and units["admin"]["enabled"] is False
    assert cli(p, "reload").returncode == 0
    assert status(p)["admin"]["state"] == "inactive", "a reload must not start a disabled unit"
    out = cli(p, "start", "--wait", "admin")
    assert out.returncode == 0, out.stderr
    assert status(p)["admin"]["pid"]


def test_conditions_skip_a_unit_and_its_requirers_still_start(pidone, tmp_path):
    flag = tmp_path / "flag"
    units = {
        "gated": {**sleeper(), "conditions": {"path_exists": [str(flag)]}},
        "web": {**sleeper(), "dependencies": {"requires": ["gated"]}},
        "envok": {**sleeper(), "conditions": {"environment": ["MODE=prod", "!MAINTENANCE"],
                                              "path_exists": [f"!{flag}"]}},
        "envno": {**sleeper(), "conditions": {"environment": ["FEATURE_X"]}},
    }
    p = start(pidone, tmp_path, units, env={"MODE": "prod", "FEATURE_X": ""})
    web = wait_state(p, "web", "running")
    assert web["pid"]
    gated = status(p)["gated"]
    assert gated["state"] == "skipped (condition)" and gated["pid"] is None
    assert gated["reason"] == f"condition failed: path_exists '{flag}'"
    assert status(p)["envok"]["state"] == "running"
    envno = status(p)["envno"]
    assert envno["state"] == "skipped (condition)" and "FEATURE_X" in envno["reason"]
    text = cli(p, "status").stdout
    assert f"gated: condition failed: path_exists '{flag}'" in text
    assert "unit gated: skipped (condition)" in p.output()
    out = cli(p, "start", "--wait", "envno")  # as systemctl: a false condition is not an error
    assert out.returncode == 0 and status(p)["envno"]["state"] == "skipped (condition)", out.stderr
    # Checked again at each start: once the path exists, it starts.
    flag.touch()
    out = cli(p, "start", "--wait", "gated")
    assert out.returncode == 0, out.stderr
    assert status(p)["gated"]["state"] == "running"

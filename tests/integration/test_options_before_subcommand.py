"""`pidone --runtime-dir DIR status` against a live pidone as PID 1: an
init option before the subcommand applies to it (SPEC §1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from pidone_harness import wait_for

PY = sys.executable


def test_runtime_dir_before_status_reaches_the_running_init(pidone, tmp_path):
    units, runtime = tmp_path / "units", tmp_path / "run"
    units.mkdir()
    (units / "web.toml").write_text('[service]\ncommand = ["sleep", "600"]\n')
    p = pidone(["--units", str(units), "--runtime-dir", str(runtime)])
    p.find_line(r"unit web: started")
    wait_for((runtime / "private" / "control.sock").exists, 15, "the control socket")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIDONE_")}
    for form in (["--runtime-dir", str(runtime)], [f"--runtime-dir={runtime}"]):
        out = subprocess.run([PY, "-m", "pidone", *form, "status"], capture_output=True, text=True,
                             timeout=30, env=env)
        assert out.returncode == 0, out.stderr
        assert any(line.split()[:2] == ["web", "running"] for line in out.stdout.splitlines()), out.stdout
    out = subprocess.run([PY, "-m", "pidone", "--runtime-dir", str(runtime), "--log-format", "json", "stop",
                          "web", "--wait"], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    assert "unit web: inactive" in out.stdout
    p.kill(signal.SIGTERM)
    assert p.wait() == 0

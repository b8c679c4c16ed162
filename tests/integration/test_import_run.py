"""Units made by `pidone import`, run by pidone as PID 1: they behave as they did under systemd or foreman."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import tomli_w

from pidone.importers import import_procfile, import_systemd

PY = sys.executable


def run_units(pidone, tmp_path: Path, results):
    units = tmp_path / "units"
    units.mkdir()
    for result in results:
        assert result.unit is not None, result.error
        (units / f"{result.name}.toml").write_text(tomli_w.dumps(result.unit))
    return pidone(["--units", str(units), "--runtime-dir", str(tmp_path / "run")])


def test_an_environment_file_overrides_environment_as_in_systemd(pidone, tmp_path):
    env_file = tmp_path / "defaults"
    env_file.write_text("PORT=7000\n")
    code = "import os, time; print('port', os.environ['PORT'], 'greeting', os.environ['GREETING'], flush=True); time.sleep(600)"
    text = (
        "[Service]\n"
        "Environment=PORT=6379 GREETING=hello\n"
        f"EnvironmentFile=-{env_file}\n"
        f'ExecStart={PY} -c "{code}"\n'
    )
    p = run_units(pidone, tmp_path, [import_systemd(text, "cache.service")])
    p.find_line(r"^cache \| port 7000 greeting hello$", timeout=20)  # the file's PORT, the unit's GREETING
    p.kill(signal.SIGTERM)
    assert p.wait() == 0


def test_a_procfile_command_with_shell_syntax_is_the_main_process_itself(pidone, tmp_path):
    code = "import os, time; print('pid', os.getpid(), os.environ['FOO'], flush=True); time.sleep(600)"
    (result,) = import_procfile(f'web: FOO=bar {PY} -c "{code}"\n', "Procfile")
    assert result.unit["service"]["command"][:2] == ["/bin/sh", "-c"]
    p = run_units(pidone, tmp_path, [result])
    started = int(re.search(rb"started \(pid (\d+)\)", p.find_line(r"unit web: started", timeout=20)).group(1))
    printed = p.find_line(r"^web \| pid \d+ bar$", timeout=20)
    assert int(printed.split()[-2]) == started  # exec'd: the shell is gone, the command has its PID
    p.kill(signal.SIGTERM)
    assert p.wait() == 0

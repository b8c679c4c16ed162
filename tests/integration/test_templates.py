"""SPEC §12 as PID 1: ${VAR} expansion at each start, drop-ins in a derived
directory, and template instances made each of the three ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pidone_harness import wait_for

PY = sys.executable


def start(pidone, tmp_path: Path, files: dict[str, str]):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    runtime = tmp_path / "run"
    p = pidone(["--units", str(directory), "--runtime-dir", str(runtime)])
    p.dir = directory
    p.runtime = runtime
    p.wait_ready()
    wait_for((runtime / "private" / "control.sock").exists, 15, "the control socket")
    return p


def cli(p, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)],
                          capture_output=True, text=True, timeout=30)


def status(p) -> dict[str, dict]:
    import json

    out = cli(p, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {u["unit"]: u for u in json.loads(out.stdout)["units"]}


def test_an_edited_environment_file_counts_at_the_next_restart(pidone, tmp_path):
    envfile = tmp_path / "app.env"
    envfile.write_text("GREETING=hello\n")
    unit = (
        '[service]\n'
        'command = "/bin/sh -c \'echo said ${GREETING:-none} ${WHO:-nobody} $$HOME $1; exec sleep 600\' sh $ARGS"\n'
        f'environment_files = ["{envfile}"]\n'
        'environment = { ARGS = "a1 a2" }\n'
    )
    p = start(pidone, tmp_path, {"app.toml": unit})
    p.find_line(r"^app \| said hello nobody /\S* a1$")
    envfile.write_text("GREETING=bonjour\nWHO=me\n")
    out = cli(p, "restart", "app", "--wait")
    assert out.returncode == 0, out.stderr
    p.find_line(r"^app \| said bonjour me /\S* a1$")


def svc(text: str) -> str:
    return f'[service]\ncommand = ["sh", "-c", "echo {text} $MODE; exec sleep 600"]\nenvironment = {{ MODE = "base" }}\n'


def test_a_derived_image_overrides_a_base_unit_with_a_dropin(pidone, tmp_path):
    # The base image ships web.toml and db.toml; the derived one adds a drop-in.
    p = start(pidone, tmp_path, {
        "web.toml": svc("web"),
        "db.toml": svc("db"),
        "web.toml.d/50-derived.toml": '[service]\nenvironment = { MODE = "derived" }\n',
    })
    p.find_line(r"^web \| web derived$")
    p.find_line(r"^db \| db base$")
    pids = {name: u["pid"] for name, u in status(p).items()}
    # A reload that changes only a drop-in restarts only its unit.
    (p.dir / "web.toml.d/60-more.toml").write_text('[service]\nenvironment = { MODE = "more" }\n')
    out = cli(p, "reload")
    assert out.returncode == 0, out.stderr
    p.find_line(r"^web \| web more$")
    now = status(p)
    assert now["db"]["pid"] == pids["db"]
    assert now["web"]["pid"] != pids["web"]
    # A broken drop-in is named, and the last good definition keeps running.
    (p.dir / "web.toml.d/70-broken.toml").write_text("[service\n")
    out = cli(p, "reload")
    p.find_line(r"70-broken\.toml:1:\d+: invalid TOML")
    assert status(p)["web"]["pid"] == now["web"]["pid"]

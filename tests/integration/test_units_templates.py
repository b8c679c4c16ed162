"""SPEC §12 as PID 1: ${VAR} expansion at each start, drop-ins in a derived
directory, and template instances made each of the three ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pidone_harness import run_cli, start_over, wait_for

PY = sys.executable


def start(pidone, tmp_path: Path, files: dict[str, str]):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    p = start_over(pidone, directory, tmp_path / "run")
    p.dir = directory
    return p


def cli(p, *args: str) -> subprocess.CompletedProcess:
    return run_cli(p, *args, timeout=30)


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


WORKER = '[service]\ncommand = ["sh", "-c", "echo worker %i of %p as %n; exec sleep 600"]\n'


def test_instances_from_the_list_from_dependencies_and_from_pidone_start(pidone, tmp_path):
    p = start(pidone, tmp_path, {
        "worker@.toml": 'instances = ["1", "2"]\n' + WORKER,
        "front.toml": '[service]\ncommand = ["sleep", "600"]\n[dependencies]\nrequires = ["worker@db"]\n',
    })
    for instance in ("1", "2", "db"):
        p.find_line(rf"^worker@{instance} \| worker {instance} of worker as worker@{instance}$")
    p.find_line(r"unit front: started")
    assert set(status(p)) == {"worker@1", "worker@2", "worker@db", "front"}
    # The third way: made at run time, and gone once stopped.
    out = cli(p, "start", "worker@c", "--wait")
    assert out.returncode == 0, out.stderr
    p.find_line(r"^worker@c \| worker c of worker as worker@c$")
    assert status(p)["worker@c"]["state"] == "running"
    out = cli(p, "start", "nope@c")
    assert out.returncode != 0 and "no template nope@.toml" in out.stderr
    out = cli(p, "start", "worker@bad@x")
    assert out.returncode != 0 and "not an instance name" in out.stderr
    out = cli(p, "stop", "worker@c", "--wait")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: "worker@c" not in status(p), 10, "worker@c removed")
    # Stopping a listed instance only stops it.
    out = cli(p, "stop", "worker@2", "--wait")
    assert out.returncode == 0, out.stderr
    assert status(p)["worker@2"]["state"] == "inactive"


def test_reload_adds_and_removes_instances_and_leaves_the_rest_alone(pidone, tmp_path):
    p = start(pidone, tmp_path, {"worker@.toml": 'instances = ["a", "b"]\n' + WORKER})
    p.find_line(r"^worker@b \| worker b")
    out = cli(p, "start", "worker@run", "--wait")
    assert out.returncode == 0, out.stderr
    before = status(p)
    (p.dir / "worker@.toml").write_text('instances = ["b", "c"]\n' + WORKER)
    out = cli(p, "reload")
    assert out.returncode == 0, out.stderr
    p.find_line(r"^worker@c \| worker c")
    wait_for(lambda: "worker@a" not in status(p), 10, "worker@a removed")
    after = status(p)
    assert set(after) == {"worker@b", "worker@c", "worker@run"}
    assert after["worker@b"]["pid"] == before["worker@b"]["pid"]
    assert after["worker@run"]["pid"] == before["worker@run"]["pid"]  # started ones stay while the template does
    # An instance drop-in changes that instance only.
    (p.dir / "worker@c.toml.d").mkdir()
    (p.dir / "worker@c.toml.d/x.toml").write_text('[service]\nenvironment = { X = "1" }\n')
    out = cli(p, "reload")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: status(p)["worker@c"]["pid"] not in (None, after["worker@c"]["pid"]), 10, "worker@c restarted")
    assert status(p)["worker@b"]["pid"] == before["worker@b"]["pid"]
    # The template gone: every instance goes.
    (p.dir / "worker@.toml").unlink()
    out = cli(p, "reload")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: status(p) == {}, 10, "every instance removed")


def test_started_instances_and_string_commands_survive_a_reexec(pidone, tmp_path):
    template = 'instances = ["a"]\n[service]\ncommand = "sh -c \'echo %i $$0 $1; exec sleep 600\' $ARGS"\n' \
               'environment = { ARGS = "x y" }\n'
    p = start(pidone, tmp_path, {"worker@.toml": template})
    p.find_line(r"^worker@a \| a x y$")
    out = cli(p, "start", "worker@run", "--wait")
    assert out.returncode == 0, out.stderr
    before = status(p)
    out = cli(p, "reexec")
    assert out.returncode == 0, out.stderr
    assert {name: u["pid"] for name, u in status(p).items()} == {name: u["pid"] for name, u in before.items()}
    # The definitions came back the same: a reload restarts nothing, and keeps the started instance.
    out = cli(p, "reload")
    assert out.returncode == 0, out.stderr
    assert "+0 -0 ~0 =2" in out.stdout
    assert {name: u["pid"] for name, u in status(p).items()} == {name: u["pid"] for name, u in before.items()}
    out = cli(p, "start", "worker@more", "--wait")  # the templates are read again after the re-exec
    assert out.returncode == 0, out.stderr
    p.find_line(r"^worker@more \| more x y$")


def test_a_log_file_path_is_expanded_at_each_start(pidone, tmp_path):
    envfile = tmp_path / "log.env"
    envfile.write_text("LOGNAME_X=first\n")
    logs = tmp_path / "logs"
    logs.mkdir()
    unit = (
        '[service]\ncommand = ["sh", "-c", "echo line-$$LOGNAME_X; exec sleep 600"]\n'
        f'environment_files = ["{envfile}"]\n'
        f'[log]\nfile = "{logs}/${{LOGNAME_X}}.log"\n'
    )
    p = start(pidone, tmp_path, {"app.toml": unit})
    wait_for(lambda: (logs / "first.log").exists() and b"line-first" in (logs / "first.log").read_bytes(), 10,
             "first.log written")
    envfile.write_text("LOGNAME_X=second\n")
    out = cli(p, "restart", "app", "--wait")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: (logs / "second.log").exists() and b"line-second" in (logs / "second.log").read_bytes(), 10,
             "second.log written")
    assert b"line-second" not in (logs / "first.log").read_bytes()

"""`pidone check` and `pidone graph`, run as the real command: output, JSON shape and exit statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
GOOD = '[service]\ncommand = ["sleep", "1"]\n'


def pidone(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m pidone ARGS` and return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "pidone", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_the_example_units_are_valid():
    run = pidone("check", "units/")
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout.splitlines() == [
        "batch 1: cleanup(timer) greeter prepare ticker",
        "batch 2: notifier web",
        "batch 3: worker",
        "ok: 7 valid units in 3 batches",
    ]


def test_three_broken_files_are_all_reported_in_one_run(tmp_path):
    write(tmp_path, "a.toml", 'x = "unterminated\n')
    write(tmp_path, "b.toml", GOOD + 'usr = "nobody"\n')
    write(tmp_path, "c.toml", "[service]\ncommand = 42\n")
    write(tmp_path, "ok.toml", GOOD)
    run = pidone("check", str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"{tmp_path}/a.toml:1:18: invalid TOML: illegal character '\\n'",
        f"{tmp_path}/b.toml:3: [service] usr: unknown key, did you mean 'user'?",
        f"{tmp_path}/c.toml:2: [service] command: expected a non-empty array of strings, or a string, got an integer (42)",
    ]
    assert run.stdout == "invalid: 3 errors in 3 files; 1 valid unit\n"


def test_graph_errors_and_warnings(tmp_path):
    write(tmp_path, "a.toml", GOOD + '[dependencies]\nrequires = ["b"]\n')
    write(tmp_path, "b.toml", GOOD + '[dependencies]\nafter = ["a"]\nwants = ["ghost"]\n')
    run = pidone("check", str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"{tmp_path}/a.toml:3: [dependencies]: dependency cycle: a -> b -> a",
        f"{tmp_path}/b.toml:5: [dependencies] wants: warning: missing dependency 'ghost', ignored",
    ]
    assert run.stdout == "invalid: 1 error in 1 file, 1 warning; 2 valid units\n"


def test_warnings_alone_still_pass(tmp_path):
    write(tmp_path, "web.toml", GOOD + '[dependencies]\nwants = ["cache"]\n')
    run = pidone("check", str(tmp_path))
    assert run.returncode == 0
    assert run.stderr == f"{tmp_path}/web.toml:4: [dependencies] wants: warning: missing dependency 'cache', ignored\n"
    assert run.stdout == "batch 1: web\nok: 1 valid unit in 1 batch, 1 warning\n"


def test_requiring_a_broken_unit_is_not_reported_as_missing(tmp_path):
    write(tmp_path, "db.toml", "[service]\n")
    write(tmp_path, "web.toml", GOOD + '[dependencies]\nrequires = ["db"]\n')
    run = pidone("check", str(tmp_path))
    assert run.returncode == 1
    assert "missing dependency" not in run.stderr and "db.toml:1: [service] command: missing" in run.stderr


def test_check_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    write(tmp_path, "job.toml", f'[service]\ntype = "oneshot"\ncommand = ["touch", "{marker}"]\n')
    assert pidone("check", str(tmp_path)).returncode == 0
    assert not marker.exists()


def test_json_output(tmp_path):
    write(tmp_path, "web.toml", GOOD + '[dependencies]\nrequires = ["db"]\nwants = ["cache"]\n')
    write(tmp_path, "db.toml", GOOD)
    write(tmp_path, "bad.toml", "[service]\ncommand = [\n")
    run = pidone("check", str(tmp_path), "--json")
    assert run.returncode == 1
    assert run.stderr == ""
    report = orjson.loads(run.stdout)
    assert report == {
        "ok": False,
        "units": ["db", "web"],
        "batches": [],
        "errors": [
            {"file": f"{tmp_path}/bad.toml", "line": 3, "col": 1, "where": "",
             "message": "invalid TOML: invalid value"},
        ],
        "warnings": [
            {"file": f"{tmp_path}/web.toml", "line": 5, "col": None, "where": "[dependencies] wants",
             "message": "missing dependency 'cache', ignored"},
        ],
    }  # fmt: skip
    os.remove(tmp_path / "bad.toml")
    report = orjson.loads(pidone("check", "--json", str(tmp_path)).stdout)
    assert report["ok"] is True and report["batches"] == [["db"], ["web"]] and report["errors"] == []


def test_the_directory_defaults_to_pidone_units(tmp_path):
    write(tmp_path, "solo.toml", GOOD)
    run = pidone("check", env={"PIDONE_UNITS": str(tmp_path)})
    assert run.returncode == 0 and run.stdout.startswith("batch 1: solo\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "--bogus", "units"], "pidone check: unknown option '--bogus'"),
        (["check", "/nonexistent/units"], "pidone check: /nonexistent/units: no such directory"),
        (["check", "pyproject.toml"], "pidone check: pyproject.toml: not a directory"),
        (["check", "units", "docs"], "pidone check: expected at most one directory, got 2"),
        (["graph", "--json", "units"], "pidone graph: unknown option '--json'"),
        (["graph", "/nonexistent/units"], "pidone graph: /nonexistent/units: no such directory"),
    ],
)
def test_usage_errors_exit_2(args, message):
    run = pidone(*args)
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == message
    assert run.stdout == ""


def test_help_exits_0():
    run = pidone("check", "--help")
    assert run.returncode == 0 and run.stdout.startswith("usage: pidone check [DIR] [--json]")


def test_graph_draws_each_kind_of_edge(tmp_path):
    write(tmp_path, "web.toml", GOOD + '[dependencies]\nrequires = ["db"]\nwants = ["cache"]\nafter = ["migrate", "db"]\n')
    for name in ("db", "cache", "migrate"):
        write(tmp_path, f"{name}.toml", GOOD)
    run = pidone("graph", str(tmp_path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "digraph units {" and lines[-1] == "}"
    assert '  "web" -> "db" [style=solid];' in lines
    assert '  "web" -> "cache" [style=dashed];' in lines
    assert '  "web" -> "migrate" [style=dotted];' in lines
    assert sum("->" in line for line in lines) == 3  # db is drawn once, as requires
    assert {f'  "{name}";' for name in ("web", "db", "cache", "migrate")} <= set(lines)


def test_graph_marks_missing_units_and_fails_on_errors(tmp_path):
    write(tmp_path, "web.toml", GOOD + '[dependencies]\nrequires = ["db"]\n')
    run = pidone("graph", str(tmp_path))
    assert run.returncode == 1
    assert '  "db" [color=red, fontcolor=red, label="db (missing)"];' in run.stdout.splitlines()
    assert run.stderr == f"{tmp_path}/web.toml:4: [dependencies] requires: missing dependency 'db'\n"


def test_graph_of_the_example_units():
    run = pidone("graph", "units")
    assert run.returncode == 0 and run.stderr == ""
    assert '  "worker" -> "web" [style=solid];' in run.stdout.splitlines()


def test_check_warns_about_names_set_nowhere_it_can_see(tmp_path):
    envfile = tmp_path / "app.env"
    envfile.write_text("FROM_FILE=1\n")
    write(tmp_path, "app.toml", (
        '[service]\ncommand = "/app $NOWHERE ${FROM_FILE} ${FROM_ENV} ${PIDONE_SEES} ${DEFAULTED:-x} $${ESCAPED}"\n'
        f'environment_files = ["{envfile}"]\nenvironment = {{ FROM_ENV = "${{ALSO_NOWHERE}}" }}\n'
        '[log]\nfile = "/var/log/${LOGNAME_X}.log"\n'
    ))
    write(tmp_path, "cleared.toml", '[service]\ncommand = ["/app", "${PIDONE_SEES}"]\nclear_environment = true\n')
    run = pidone("check", str(tmp_path), env={"PIDONE_SEES": "yes"})
    assert run.returncode == 0
    tail = "set nowhere pidone can see: empty unless set when the unit starts"
    assert run.stderr.splitlines() == [
        f"{tmp_path}/app.toml: [service] command: warning: NOWHERE is {tail}",
        f"{tmp_path}/app.toml: [service] environment: warning: ALSO_NOWHERE is {tail}",
        f"{tmp_path}/app.toml: [log] file: warning: LOGNAME_X is {tail}",
        f"{tmp_path}/cleared.toml: [service] command: warning: PIDONE_SEES is {tail}",
    ]


def test_check_prints_instances_in_the_batches(tmp_path):
    write(tmp_path, "web@.toml", 'instances = ["8001", "8002"]\n[service]\ncommand = ["web", "--port", "%i"]\n'
                                 '[dependencies]\nrequires = ["db"]\n')
    write(tmp_path, "db.toml", GOOD)
    write(tmp_path, "spare@.toml", GOOD)
    run = pidone("check", str(tmp_path))
    assert run.returncode == 0
    assert run.stdout.splitlines() == ["batch 1: db", "batch 2: web@8001 web@8002", "ok: 3 valid units in 2 batches, 1 warning"]
    assert run.stderr.startswith(f"{tmp_path}/spare@.toml: instances: warning: a template no one names")

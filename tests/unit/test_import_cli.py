"""The `pidone import` command: printing, writing, JSON, errors."""

from __future__ import annotations

import json

import pytest
import tomllib

from importhelp import FIXTURES, run
from pidone.cli.unitfiles import check_main
from pidone.importers import ImportResult
from pidone.loader import parse_unit


# --- the command -----------------------------------------------------------------


def test_cli_prints_the_units_and_notes(tmp_path):
    status, out, err = run(str(FIXTURES / "ssh.service"))
    assert status == 0
    assert out.startswith(f"# ssh.toml: made by `pidone import` from {FIXTURES / 'ssh.service'}\n")
    document = tomllib.loads(out)
    assert document["service"]["type"] == "notify"
    assert parse_unit("ssh", out.encode(), "ssh.toml").service.environment_files == ("-/etc/default/ssh",)
    lines = err.splitlines()
    assert lines[0] == f"{FIXTURES / 'ssh.service'} -> ssh.toml"
    assert any(line.startswith("  KillMode=process: not carried over: ") for line in lines)
    assert document["service"]["ignore_sigpipe"] is True  # systemd's default IgnoreSIGPIPE=yes
    assert lines[-1] == "pidone import: 1 unit from 1 input, 11 notes"


def test_cli_writes_files_and_refuses_to_overwrite(tmp_path):
    inputs = [str(FIXTURES / name) for name in ("ssh.service", "nginx.service", "Procfile")]
    status, out, err = run("-o", str(tmp_path), *inputs)
    assert (status, out) == (0, "")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{n}.toml" for n in ("ssh", "nginx", "web", "worker", "release", "clock", "assets"))
    assert f"-> {tmp_path}/ssh.toml" in err
    assert check_main([str(tmp_path)]) == 0

    (tmp_path / "ssh.toml").write_text("# mine\n[service]\ncommand = ['x']\n")
    status, out, err = run("-o", str(tmp_path), inputs[0])
    assert status == 1
    assert f"ssh: not written: {tmp_path}/ssh.toml already exists; use --force to replace it" in err
    assert (tmp_path / "ssh.toml").read_text().startswith("# mine")

    status, out, err = run("-o", str(tmp_path), "--force", inputs[0])
    assert status == 0
    assert (tmp_path / "ssh.toml").read_text().startswith("# ssh.toml: made by `pidone import`")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_cli_writes_supervisord_programs_and_reports_the_one_it_cannot_convert(tmp_path, capsys):
    status, _out, err = run("-o", str(tmp_path), str(FIXTURES / "supervisord.conf"))
    assert status == 1
    assert sorted(p.stem for p in tmp_path.glob("*.toml")) == ["api", "cron", "worker-00", "worker-01"]
    assert "memmon: cannot convert: [eventlistener:x] cannot be converted" in err
    assert err.splitlines()[-1] == "pidone import: 4 units from 1 input, 14 notes; 1 failed"  # 2 stopasgroup defaults
    assert check_main([str(tmp_path)]) == 0


def test_cli_json(tmp_path):
    status, out, err = run("--json", str(FIXTURES / "nginx.service"), str(tmp_path / "missing.service"))
    assert status == 1 and err == ""
    document = json.loads(out)
    assert document["ok"] is False
    nginx, missing = document["inputs"]
    assert (nginx["file"], nginx["format"], nginx["error"]) == (str(FIXTURES / "nginx.service"), "systemd", None)
    (unit,) = nginx["units"]
    assert unit["name"] == "nginx" and unit["ok"] and unit["path"] is None
    assert unit["unit"]["stop"] == {"timeout": 5}
    assert tomllib.loads(unit["toml"]) == unit["unit"]
    assert any(note.startswith("Type=forking") for note in unit["notes"])
    assert missing == {"file": str(tmp_path / "missing.service"), "format": None,
                       "error": "cannot read: No such file or directory", "units": []}  # fmt: skip


def test_cli_keeps_going_past_inputs_it_cannot_convert(tmp_path):
    (tmp_path / "README").write_text("hello\n")
    (tmp_path / "binary.service").write_bytes(b"\xff\xfe")
    (tmp_path / "noexec.service").write_text("[Service]\nType=oneshot\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    status, _out, err = run(
        "-o", str(out_dir), str(tmp_path / "README"), str(tmp_path / "binary.service"),
        str(tmp_path / "noexec.service"), str(tmp_path), str(FIXTURES / "ssh.service"),
    )  # fmt: skip
    assert status == 1
    assert [p.name for p in out_dir.iterdir()] == ["ssh.toml"]
    assert f"{tmp_path / 'README'}: cannot convert: not a format pidone can import" in err
    assert f"{tmp_path / 'binary.service'}: cannot convert: not UTF-8 text" in err
    assert "noexec: cannot convert: no ExecStart=" in err
    assert f"{tmp_path}: cannot convert: " in err


def test_cli_refuses_two_units_of_the_same_name(tmp_path):
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/web\n")
    status, out, err = run("-o", str(tmp_path), str(tmp_path / "web.service"), str(FIXTURES / "Procfile"))
    assert status == 1
    assert "web: not written: the unit name 'web' is already taken by" in err
    assert (tmp_path / "web.toml").read_text().count("/bin/web") == 1


def test_cli_warns_about_requires_on_units_it_did_not_make(tmp_path):
    (tmp_path / "app.service").write_text("[Unit]\nRequires=db.service\nAfter=db.service\n[Service]\nExecStart=/bin/app\n")
    status, _out, err = run(str(tmp_path / "app.service"))
    assert status == 0
    assert "  requires=db: warning: db.toml is not part of this import;" in err
    (tmp_path / "db.service").write_text("[Service]\nExecStart=/bin/db\n")
    status, _out, err = run(str(tmp_path / "app.service"), str(tmp_path / "db.service"))
    assert "warning" not in err


def test_cli_reports_a_unit_the_loader_refuses_as_a_bug(tmp_path, monkeypatch):
    def broken(path, text, environ):
        return [ImportResult("x", {"service": {"command": []}}, [], path)]

    monkeypatch.setattr("pidone.cli.importcmd.import_text", broken)
    status, out, err = run("-o", str(tmp_path), str(FIXTURES / "ssh.service"))
    assert status == 1
    assert "x: bug in pidone import: the unit it made does not load (please report it): " in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no FILE given"),
        (["--bogus", "x"], "unknown option '--bogus'"),
        (["-o"], "option -o needs a directory"),
        (["-o", "/nonexistent/dir", "x"], "/nonexistent/dir: no such directory"),
        (["--force", "x"], "--force only makes sense with -o DIR"),
    ],
)
def test_cli_usage_errors(argv, message):
    status, out, err = run(*argv)
    assert status == 2 and out == ""
    assert err.startswith(f"pidone import: {message}")
    assert "usage: pidone import" in err


def test_cli_help():
    status, out, _err = run("--help")
    assert status == 0 and out.startswith("usage: pidone import [-o DIR] [--force] [--json] FILE...")


def test_cli_output_forms(tmp_path):
    for argv in (["--output", str(tmp_path)], [f"--output={tmp_path}"], [f"-o{tmp_path}"]):
        status, _out, _err = run(*argv, "--force", str(FIXTURES / "ssh.service"))
        assert status == 0
    assert (tmp_path / "ssh.toml").exists()


def test_cli_expands_a_supervisord_user_from_its_own_environment(monkeypatch):
    monkeypatch.setenv("APP_USER", "app")
    status, out, _err = run(str(FIXTURES / "supervisord-env-user.conf"))
    assert status == 0
    assert tomllib.loads(out)["service"]["user"] == "app"
    monkeypatch.delenv("APP_USER")
    status, out, err = run(str(FIXTURES / "supervisord-env-user.conf"))
    assert status == 1 and out == ""
    assert "app: cannot convert: user=%(ENV_APP_USER)s: APP_USER is not set where pidone import runs" in err

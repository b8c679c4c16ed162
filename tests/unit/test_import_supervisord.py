"""`pidone import` of supervisord configurations."""

from __future__ import annotations

import textwrap

import pytest

from importhelp import FIXTURES, NOTE, loads
from pidone.importers import ImportResult, import_supervisord
from pidone.loader import SCHEMA


# --- supervisord ---------------------------------------------------------------


def supervisord_fixture() -> list[ImportResult]:
    return import_supervisord((FIXTURES / "supervisord.conf").read_text(), "/etc/supervisor/supervisord.conf")


def test_supervisord_programs():
    results = supervisord_fixture()
    assert [(r.name, r.ok) for r in results] == [
        ("api", True), ("worker-00", True), ("worker-01", True), ("cron", True), ("memmon", False)
    ]  # fmt: skip
    for result in results[:-1]:
        loads(result)
        assert all(NOTE.match(note) for note in result.notes), result.notes
    assert results[-1].error.startswith("[eventlistener:x] cannot be converted")
    assert results[0].source == "/etc/supervisor/supervisord.conf [program:api]"


def test_supervisord_program_with_everything():
    api = supervisord_fixture()[0]
    assert api.unit == {
        "service": {
            "command": ["/bin/sh", "-c", 'exec /usr/local/bin/gunicorn --bind 0.0.0.0:"$${PORT}" app:app'],
            "working_directory": "/srv/app",
            "user": "app",
            "environment": {"PYTHONUNBUFFERED": "1", "APP_ENV": "production", "GREETING": "hello, world"},
        },
        "restart": {"policy": "always", "max_retries": 10, "reset_after": 5},
        "stop": {"signal": "SIGQUIT", "timeout": 30},
    }
    subjects = [note.split(":")[0] for note in api.notes]
    # the file's own sections first, then the program's
    assert subjects == [
        "[group", "[supervisord]", "[include] files=conf.d/*.conf", "command=/usr/local/bin/gunicorn --bind 0.0.0.0",
        "startsecs=5", "stopasgroup=false (supervisord's default)", "priority=10",
    ]  # fmt: skip


def test_supervisord_numprocs_makes_one_unit_per_process():
    _api, first, second, *_ = supervisord_fixture()
    assert first.unit["service"]["command"] == ["python3", "-m", "worker", "--queue", "worker-00"]
    assert second.unit["service"]["command"][-1] == "worker-01"
    assert first.unit["log"] == {"file": "/var/log/worker.log", "max_bytes": 1024 * 1024, "backups": 5}
    assert first.unit["restart"] == {"max_retries": 3, "reset_after": 1}  # supervisord's defaults
    assert first.notes[0] == "numprocs=2: approximated: one unit per process (worker-00, worker-01)"
    assert any(n.startswith("exitcodes=0,2: not carried over") for n in first.notes)
    assert any(n.startswith("stderr_logfile=/var/log/worker.err: not carried over") for n in first.notes)


def test_supervisord_autostart_false_and_no_restart():
    cron = supervisord_fixture()[3]
    assert cron.unit == {"enabled": False, "service": {"command": ["cron", "-f"], "umask": "0022"},
                         "restart": {"policy": "no"}}
    assert [n.split(":")[0] for n in cron.notes] == ["stopasgroup=false (supervisord's default)", "stdout_syslog=true"]


@pytest.mark.parametrize(
    ("value", "policy"), [("true", "always"), ("false", "no"), ("unexpected", None), ("TRUE", "always")]
)
def test_supervisord_autorestart(value, policy):
    (result,) = import_supervisord(f"[program:x]\ncommand=/bin/x\nautorestart={value}\n", "s.conf")
    assert result.unit.get("restart", {}).get("policy") == policy


def test_supervisord_environment_syntax_and_expansions():
    text = """\
        [program:app]
        command=%(ENV_ROOT)s/bin/app --name %(program_name)s --here %(here)s --literal 100%%
        environment=ROOT="/srv/app",LIST="a,b",PATHS=/x:/y,FROM_ENV="%(ENV_HOME)s"
        stdout_logfile=AUTO
        """
    (result,) = import_supervisord(textwrap.dedent(text), "/etc/supervisor/conf.d/app.conf")
    loads(result)
    assert result.unit["service"] == {
        "command": ["/srv/app/bin/app", "--name", "app", "--here", "/etc/supervisor/conf.d", "--literal", "100%"],
        "environment": {"ROOT": "/srv/app", "LIST": "a,b", "PATHS": "/x:/y"},
    }
    assert [n.split(":")[0] for n in result.notes] == [
        "environment=FROM_ENV=%(ENV_HOME)s", "stopasgroup=false (supervisord's default)", "stdout_logfile=AUTO"
    ]  # fmt: skip


def test_supervisord_startretries_zero():
    (result,) = import_supervisord("[program:x]\ncommand=/bin/x\nstartretries=0\n", "s.conf")
    assert result.unit["restart"]["max_retries"] == 1
    assert result.notes[0].startswith("startretries=0: approximated")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[program:x]\ndirectory=/srv\n", "no command="),
        ("[program:x]\ncommand=/bin/x\nnumprocs=2\n", "numprocs > 1 needs %(process_num)"),
        ("[supervisord]\nnodaemon=true\n", "no [program:x] section"),
        ("command=/bin/x\n", "not a supervisord configuration"),
        ("[program:x]\ncommand=/bin/x %(nope)s\n", "cannot be expanded"),
        ("[fcgi-program:x]\ncommand=/bin/x\nsocket=tcp://localhost:9000\n", "socket activation"),
    ],
)
def test_supervisord_what_cannot_be_converted(text, error):
    results = import_supervisord(text, "s.conf")
    assert not results[0].ok
    assert error in results[0].error


# --- faithful on real programs (issue #19) ----------------------------------------


def test_supervisord_s_default_stopasgroup_is_noted():
    (default,) = import_supervisord("[program:x]\ncommand=/bin/x\n", "s.conf")
    assert default.notes == [
        "stopasgroup=false (supervisord's default): approximated: pidone signals the unit's whole process group on"
        " stop (and SIGKILLs what is left at the timeout); supervisord signals the program's process only, leaving"
        " its children running"
    ]
    (explicit,) = import_supervisord("[program:x]\ncommand=/bin/x\nstopasgroup=false\n", "s.conf")
    assert [n.split(":")[0] for n in explicit.notes] == ["stopasgroup=false"]
    (grouped,) = import_supervisord("[program:x]\ncommand=/bin/x\nstopasgroup=true\n", "s.conf")
    assert grouped.notes == []


def test_supervisord_user_from_the_environment_is_expanded_from_the_importing_one():
    text = (FIXTURES / "supervisord-env-user.conf").read_text()
    (result,) = import_supervisord(text, "/etc/supervisor/conf.d/app.conf", {"APP_USER": "app"})
    loads(result)
    assert result.unit["service"]["user"] == "app"
    assert "user=%(ENV_APP_USER)s: approximated: written as user = 'app', expanded from the environment" in result.notes[0]


@pytest.mark.parametrize("environ", [{}, {"APP_USER": "bad user"}, None])
def test_supervisord_user_from_the_environment_is_refused_when_it_cannot_be_expanded(environ):
    # dropped, the unit would run as root
    text = (FIXTURES / "supervisord-env-user.conf").read_text()
    (result,) = import_supervisord(text, "/etc/supervisor/conf.d/app.conf", environ)
    assert result.unit is None
    assert result.error.startswith("user=%(ENV_APP_USER)s: ")
    assert "root" in result.error


def test_supervisord_user_of_the_host_name_is_refused():
    (result,) = import_supervisord("[program:x]\ncommand=/bin/x\nuser=%(host_node_name)s\n", "s.conf", {"X": "1"})
    assert result.unit is None and "host_node_name is not set" in result.error


def test_supervisord_event_listeners_are_refused_saying_what_to_use_instead():
    *_, memmon = supervisord_fixture()
    assert memmon.error.startswith("[eventlistener:x] cannot be converted: pidone does not speak supervisord's")
    assert "Instead: [restart] policies" in memmon.error and "[health] probe" in memmon.error


def test_supervisord_autostart_false_is_noted_until_pidone_has_enabled():
    (result,) = import_supervisord("[program:x]\ncommand=/bin/x\nautostart=false\n", "s.conf")
    if "enabled" in SCHEMA[""]:
        assert result.unit["enabled"] is False
    else:
        assert [n for n in result.notes if n.startswith("autostart=false: not carried over: pidone starts every unit")]

"""The loader's schema: every key of SPEC §2 with valid and invalid values, the exact message shapes, and the directory rules."""

from __future__ import annotations

import dataclasses
import os
import signal
import textwrap

import pytest
import tomli_w

from pidone.errors import ConfigError
from pidone.loader import SCHEMA, load_directory, load_units, parse_unit, unit_to_dict
from pidone.units import (
    RLIM_INFINITY,
    Probe,
    ProbeKind,
    RestartPolicy,
    UnitType,
)

MINIMAL = '[service]\ncommand = ["app"]\n'


def parse(text: str, name: str = "web"):
    """Return the unit in `text` (dedented), as if read from NAME.toml."""
    return parse_unit(name, textwrap.dedent(text).encode(), f"{name}.toml")


def problems(text: str, name: str = "web") -> list[str]:
    """Return every problem of `text` as printed, asserting that it does not load.

    The line of the key a problem comes from is left out here, so that these
    cases say what is wrong; test_loader_lines.py holds the lines.
    """
    with pytest.raises(ConfigError) as caught:
        parse(text, name)
    return [str(without_key_line(problem)) for problem in caught.value.problems]


def without_key_line(problem):
    """Return `problem` without the line of its key (a TOML syntax error keeps its line and column)."""
    return dataclasses.replace(problem, line=None) if problem.col is None else problem


def service(extra: str) -> str:
    """Return a unit with a valid command plus `extra` lines in [service]."""
    return MINIMAL + textwrap.dedent(extra)


def with_table(table: str, body: str, kind: str = "") -> str:
    """Return a minimal unit (of type `kind`) plus `[table]` holding `body`."""
    head = MINIMAL + (f'type = "{kind}"\n' if kind else "")
    return head + f"[{table}]\n" + textwrap.dedent(body)


SPEC_EXAMPLE = """\
description = "Web frontend"

[service]
command = ["gunicorn", "-b", "0.0.0.0:8000", "app:app"] # list: exec'd as is
type = "simple"
critical = false
working_directory = "/srv/app"
user = "app"
group = "app"
supplementary_groups = []
environment = { PORT = "8000" }
environment_files = ["/etc/app.env"]
clear_environment = false
umask = "0022"
oom_score_adjust = 0

[dependencies]
requires = ["db"]
wants = ["cache"]
after = ["migrate"]

[ready]
tcp = "127.0.0.1:5432"
timeout = 30
interval = 0.1

[health]
http = "http://127.0.0.1:8000/healthz"
interval = 10
timeout = 2
retries = 3

[restart]
policy = "on-failure"
delay = 0.1
max_delay = 30
max_retries = 5
reset_after = 60

[stop]
signal = "SIGTERM"
timeout = 10
reload_signal = "SIGHUP"

[log]
file = "/var/log/app.log"
max_bytes = 10485760
backups = 3

[limits]
nofile = 65536
no_new_privileges = true
capabilities = ["CAP_NET_BIND_SERVICE"]
"""


# --- whole units -------------------------------------------------------------


def test_the_spec_example_loads_with_every_value():
    unit = parse(SPEC_EXAMPLE)
    assert unit.name == "web" and unit.path == "web.toml" and unit.description == "Web frontend"
    svc = unit.service
    assert svc.command == ("gunicorn", "-b", "0.0.0.0:8000", "app:app")
    assert (svc.type, svc.critical, svc.working_directory) == (UnitType.SIMPLE, False, "/srv/app")
    assert (svc.user, svc.group, svc.supplementary_groups) == ("app", "app", ())
    assert svc.environment == (("PORT", "8000"),) and svc.environment_files == ("/etc/app.env",)
    assert (svc.clear_environment, svc.umask, svc.oom_score_adjust) == (False, 0o022, 0)
    assert unit.dependencies.requires == ("db",) and unit.dependencies.wants == ("cache",)
    assert unit.dependencies.after == ("migrate",)
    assert unit.ready.probe == Probe(ProbeKind.TCP, "127.0.0.1:5432", host="127.0.0.1", port=5432)
    assert (unit.ready.timeout, unit.ready.interval) == (30, 0.1)
    assert unit.health.probe.kind is ProbeKind.HTTP and unit.health.probe.path == "/healthz"
    assert (unit.health.interval, unit.health.timeout, unit.health.retries) == (10, 2, 3)
    assert unit.restart.policy is RestartPolicy.ON_FAILURE
    assert (unit.restart.delay, unit.restart.max_delay, unit.restart.max_retries, unit.restart.reset_after) == (
        0.1, 30, 5, 60,
    )  # fmt: skip
    assert (unit.stop.signal, unit.stop.timeout, unit.stop.reload_signal) == (signal.SIGTERM, 10, signal.SIGHUP)
    assert (unit.log.file, unit.log.max_bytes, unit.log.backups) == ("/var/log/app.log", 10485760, 3)
    assert unit.limits.rlimits == (("nofile", 65536, 65536),)
    assert unit.limits.no_new_privileges and unit.limits.capabilities == ("CAP_NET_BIND_SERVICE",)


def test_only_the_command_is_required():
    unit = parse(MINIMAL)
    assert unit.service.command == ("app",) and unit.description == ""
    assert unit.ready.timeout == 90 and unit.restart.policy is RestartPolicy.ON_FAILURE


def test_an_empty_file_names_the_missing_command():
    assert problems("") == [
        'web.toml: [service] command: missing: every unit needs a command, e.g. command = ["/usr/bin/app", "--flag"]'
    ]


def test_every_problem_of_a_file_is_reported_not_just_the_first():
    found = problems(
        """
        usr = "nobody"
        [service]
        command = 42
        type = "daemon"
        [restart]
        policy = 5
        [stop]
        timeout = -1
        """
    )
    assert found == [
        "web.toml: usr: unknown key, did you mean [service] user?",
        "web.toml: [service] command: expected a non-empty array of strings, or a string, got an integer (42)",
        'web.toml: [service] type: expected "simple", "notify", "oneshot" or "forking", got a string (\'daemon\')',
        'web.toml: [restart] policy: expected "no", "on-failure" or "always", got an integer (5)',
        "web.toml: [stop] timeout: must not be negative, got -1",
    ]


# --- unknown keys and tables -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (service('usr = "nobody"'), "web.toml: [service] usr: unknown key, did you mean 'user'?"),
        ('restat = "always"\n' + MINIMAL, "web.toml: restat: unknown key, did you mean 'restart'?"),
        (MINIMAL + '[restat]\npolicy = "always"\n', "web.toml: restat: unknown table, did you mean [restart]?"),
        ('usr = "nobody"\n' + MINIMAL, "web.toml: usr: unknown key, did you mean [service] user?"),
        ('user = "nobody"\n' + MINIMAL, "web.toml: user: unknown key here: it belongs in [service]"),
        (service('requires = ["db"]'), "web.toml: [service] requires: unknown key here: it belongs in [dependencies]"),
        (MINIMAL + "timeout = 5\n", "web.toml: [service] timeout: unknown key here: it belongs in [ready], [health] or [stop]"),
        ('name = "../../etc/cron.d/x"\n' + MINIMAL, "web.toml: name: unknown key: a unit's name is its file's name (NAME.toml)"),
        (with_table("limits", "ofile = 3"), "web.toml: [limits] ofile: unknown key, did you mean 'nofile'?"),
        (with_table("stop", "sginal = 'TERM'"), "web.toml: [stop] sginal: unknown key, did you mean 'signal'?"),
        (service("zzz = 1"), "web.toml: [service] zzz: unknown key; expected one of 'command', 'type', 'critical', "
         "'working_directory', 'user', 'group', 'supplementary_groups', 'environment', 'environment_files', "
         "'clear_environment', 'umask', 'oom_score_adjust', 'success_exit_status', 'ignore_sigpipe', "
         "'runtime_directory', 'state_directory', 'directory_mode', 'exec_start_pre', 'exec_start_post', "
         "'exec_reload', 'exec_stop', 'exec_stop_post' or 'pid_file'"),
        (MINIMAL + "[zzz]\n", "web.toml: zzz: unknown table; the tables are [service], [dependencies], [ready], "
         "[health], [restart], [stop], [log], [limits], [conditions], [timer] and [socket]"),
        (service("[service.extra]\na = 1"), "web.toml: [service] extra: unknown key; expected one of 'command', "
         "'type', 'critical', 'working_directory', 'user', 'group', 'supplementary_groups', 'environment', "
         "'environment_files', 'clear_environment', 'umask', 'oom_score_adjust', 'success_exit_status', "
         "'ignore_sigpipe', 'runtime_directory', 'state_directory', 'directory_mode', 'exec_start_pre', "
         "'exec_start_post', 'exec_reload', 'exec_stop', 'exec_stop_post' or 'pid_file'"),
        (service('"us\\u0000er" = 1'), "web.toml: [service] us\\x00er: unknown key, did you mean 'user'?"),
    ],
)
def test_unknown_keys_are_errors_with_a_suggestion(text, message):
    assert message in problems(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('restart = 5\n[service]\ncommand = "a"', "web.toml: restart: expected a table ([restart]), got an integer (5)"),
        ('[[service]]\ncommand = ["a"]\n', "web.toml: service: expected a table ([service]), got an array of tables"),
        ('service = "app"\n', "web.toml: service: expected a table ([service]), got a string ('app')"),
    ],
)
def test_tables_must_be_tables(text, message):
    assert problems(text) == [message]


# --- [service] ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ('command = ["/bin/app", "--port", "8000"]', ("/bin/app", "--port", "8000")),
        ('command = "gunicorn -b 0.0.0.0:8000 app:app"', ("gunicorn", "-b", "0.0.0.0:8000", "app:app")),
        ("command = \"sh -c 'exec sleep 5'\"", ("sh", "-c", "exec sleep 5")),
        ('command = ["redis-server", "--save", ""]', ("redis-server", "--save", "")),
        ("command = 'redis-server --save \"\"'", ("redis-server", "--save", "")),
    ],
)
def test_command_forms(line, command):
    assert parse(f"[service]\n{line}\n").service.command == command


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("command = 42", "expected a non-empty array of strings, or a string, got an integer (42)"),
        ("command = []", "expected a non-empty array of strings, or a string, got an empty array"),
        ('command = ""', "expected a non-empty array of strings, or a string, got an empty command"),
        ('command = ["", "app"]', "expected a non-empty array of strings, or a string; word 1 (the program) is empty"),
        ("command = \"'' app\"", "expected a non-empty array of strings, or a string; word 1 (the program) is empty"),
        ('command = ["app", 3]', "expected a non-empty array of strings, or a string; word 2 is an integer (3)"),
        ('command = ["app", "\\u0000"]', "word 2 contains a NUL character: '\\x00'"),
        ("command = \"app 'oops\"", "cannot split \"app 'oops\" into words: No closing quotation"),
        ("command = { a = 1 }", "expected a non-empty array of strings, or a string, got a table"),
    ],
)
def test_bad_commands(line, message):
    assert problems(f"[service]\n{line}\n") == [f"web.toml: [service] command: {message}"]


def test_type_values():
    assert parse(service('type = "notify"')).service.type is UnitType.NOTIFY
    assert parse(service('type = "oneshot"')).service.type is UnitType.ONESHOT
    assert problems(service('type = "notfy"')) == [
        'web.toml: [service] type: expected "simple", "notify", "oneshot" or "forking", got a string (\'notfy\'); '
        'did you mean "notify"?'
    ]


def test_booleans():
    unit = parse(service("critical = true\nclear_environment = true"))
    assert unit.service.critical and unit.service.clear_environment
    assert problems(service('critical = "yes"')) == [
        "web.toml: [service] critical: expected true or false, got a string ('yes')"
    ]
    assert problems(service("clear_environment = 1")) == [
        "web.toml: [service] clear_environment: expected true or false, got an integer (1)"
    ]


def test_working_directory_must_be_absolute():
    assert parse(service('working_directory = "/srv/app"')).service.working_directory == "/srv/app"
    assert problems(service('working_directory = "srv"')) == [
        "web.toml: [service] working_directory: expected an absolute path (starting with /), got 'srv'"
    ]


@pytest.mark.parametrize("key", ["user", "group"])
def test_user_and_group_by_name_or_number(key):
    assert getattr(parse(service(f'{key} = "app"')).service, key) == "app"
    assert getattr(parse(service(f"{key} = 1000")).service, key) == "1000"
    assert getattr(parse(service(f"{key} = 0")).service, key) == "0"
    assert problems(service(f"{key} = -1")) == [
        f"web.toml: [service] {key}: expected an integer from 0 to 4294967294, got -1"
    ]
    assert problems(service(f"{key} = 4294967295")) == [
        f"web.toml: [service] {key}: expected an integer from 0 to 4294967294, got 4294967295"
    ]
    assert problems(service(f'{key} = "a b"')) == [
        f"web.toml: [service] {key}: expected a user or group name or number, got 'a b'"
    ]
    assert problems(service(f'{key} = ""')) == [f"web.toml: [service] {key}: must not be empty"]
    assert problems(service(f"{key} = true")) == [
        f"web.toml: [service] {key}: expected a name or a number, got a boolean (true)"
    ]


def test_supplementary_groups():
    assert parse(MINIMAL).service.supplementary_groups is None
    assert parse(service("supplementary_groups = []")).service.supplementary_groups == ()
    assert parse(service('supplementary_groups = ["wheel", 5]')).service.supplementary_groups == ("wheel", "5")
    assert problems(service('supplementary_groups = "wheel"')) == [
        "web.toml: [service] supplementary_groups: expected an array of group names or numbers, got a string ('wheel')"
    ]
    assert problems(service('supplementary_groups = ["ok", "x:y"]')) == [
        "web.toml: [service] supplementary_groups: item 2: expected a user or group name or number, got 'x:y'"
    ]


def test_environment_keeps_file_order_in_both_table_forms():
    inline = parse(service('environment = { B = "2", A = "1", _x9 = "" }'))
    assert inline.service.environment == (("B", "2"), ("A", "1"), ("_x9", ""))
    table = parse(MINIMAL + '[service.environment]\nZ = "z"\nA = "a"\n')
    assert table.service.environment == (("Z", "z"), ("A", "a"))


def test_every_bad_environment_entry_is_reported():
    found = problems(service('environment = { PORT = 8000, "1X" = "a", "A=B" = "b", "A\\nB" = "c", OK = "\\u0000" }'))
    assert found == [
        'web.toml: [service] environment: PORT: expected a string, got an integer (8000); quote it: PORT = "8000"',
        "web.toml: [service] environment: '1X' is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*",
        "web.toml: [service] environment: 'A=B' is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*",
        "web.toml: [service] environment: 'A\\nB' is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*",
        "web.toml: [service] environment: OK: must not contain a NUL character",
    ]
    assert problems(service('environment = "PORT=1"')) == [
        "web.toml: [service] environment: expected a table of strings such as { PORT = \"8000\" }, "
        "got a string ('PORT=1')"
    ]


def test_environment_files():
    unit = parse(service('environment_files = ["/etc/app.env", "-/etc/optional.env"]'))
    assert unit.service.environment_files == ("/etc/app.env", "-/etc/optional.env")
    assert problems(service('environment_files = ["app.env"]')) == [
        "web.toml: [service] environment_files: item 1: expected an absolute path (starting with /), got 'app.env'"
    ]
    assert problems(service('environment_files = "/etc/app.env"')) == [
        "web.toml: [service] environment_files: expected an array of absolute paths, got a string ('/etc/app.env')"
    ]


def test_umask_and_oom_score_adjust():
    assert parse(service('umask = "0027"')).service.umask == 0o027
    assert parse(service("umask = 0o022")).service.umask == 0o022
    assert problems(service('umask = "0999"')) == [
        "web.toml: [service] umask: expected an octal string such as \"0022\", or an integer from 0 to 0o777, "
        "got a string ('0999')"
    ]
    assert parse(service("oom_score_adjust = -1000")).service.oom_score_adjust == -1000
    assert parse(service("oom_score_adjust = 1000")).service.oom_score_adjust == 1000
    assert problems(service("oom_score_adjust = 1001")) == [
        "web.toml: [service] oom_score_adjust: expected an integer from -1000 to 1000, got 1001"
    ]


# --- [dependencies] ----------------------------------------------------------


def test_dependencies():
    unit = parse(with_table("dependencies", 'requires = ["db"]\nwants = ["cache", "x@1"]\nafter = ["m.v2"]'))
    assert unit.dependencies.requires == ("db",)
    assert unit.dependencies.wants == ("cache", "x@1")
    assert unit.dependencies.after == ("m.v2",)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [("../x", "'../x'"), ("a/b", "'a/b'"), (".", "'.'"), ("..", "'..'"), ("-x", "'-x'"), ("a b", "'a b'"),
     ("x" * 65, "'" + "x" * 56 + "...")],
)  # fmt: skip
def test_dependency_names_follow_the_name_rule(bad, shown):
    assert problems(with_table("dependencies", f'after = ["{bad}"]')) == [
        f"web.toml: [dependencies] after: item 1: {shown} is not a unit name: a name is 1-64 characters of "
        "A-Z a-z 0-9 _ . @ -, not starting with '.' or '-'"
    ]
    assert problems(with_table("dependencies", 'after = [""]')) == [
        "web.toml: [dependencies] after: item 1: must not be empty"
    ]


def test_dependencies_must_be_arrays():
    assert problems(with_table("dependencies", 'requires = "db"')) == [
        "web.toml: [dependencies] requires: expected an array of unit names, got a string ('db')"
    ]


def test_a_name_listed_twice_is_a_warning_and_deduplicated(tmp_path):
    (tmp_path / "web.toml").write_text(with_table("dependencies", 'wants = ["db", "db"]'))
    result = load_directory(tmp_path)
    assert result.units["web"].dependencies.wants == ("db",)
    assert [str(w) for w in result.warnings] == [
        f"{tmp_path}/web.toml:4: [dependencies] wants: warning: lists a unit more than once"
    ]


# --- [ready] -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('tcp = "127.0.0.1:5432"', ProbeKind.TCP),
        ('http = "http://127.0.0.1:8000/healthz"', ProbeKind.HTTP),
        ('exec = ["pg_isready"]', ProbeKind.EXEC),
        ('path = "/run/app.ready"', ProbeKind.PATH),
    ],
)
def test_ready_probes(body, kind):
    assert parse(with_table("ready", body)).ready.probe.kind is kind


def test_ready_takes_one_probe():
    assert problems(with_table("ready", 'tcp = "127.0.0.1:1"\npath = "/x"')) == [
        "web.toml: [ready] path: more than one probe (tcp, path): give exactly one"
    ]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("notify", 'a notify unit is ready by sending READY=1, not by a probe; remove it or use type = "simple"'),
        ("oneshot", 'a oneshot unit is ready by exiting 0, not by a probe; remove it or use type = "simple"'),
    ],
)
def test_a_ready_probe_on_notify_or_oneshot_is_an_error(kind, message):
    assert problems(with_table("ready", 'tcp = "127.0.0.1:1"', kind)) == [f"web.toml: [ready] tcp: {message}"]


def test_ready_timeout_defaults_by_type_and_accepts_zero():
    assert parse(MINIMAL).ready.timeout == 90
    assert parse(MINIMAL + 'type = "notify"\n').ready.timeout == 90
    assert parse(MINIMAL + 'type = "oneshot"\n').ready.timeout == 0
    assert parse(with_table("ready", "timeout = 0")).ready.timeout == 0
    assert parse(with_table("ready", 'timeout = "2m"', "oneshot")).ready.timeout == 120


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('timeout = "ten"', '[ready] timeout: expected seconds as a number, or a string such as "250ms", "1.5s", '
         '"2m", "1h" or "1m30s", got \'ten\''),
        ("timeout = nan", "[ready] timeout: expected seconds as a number, or a string such as \"250ms\", \"1.5s\", "
         "\"2m\", \"1h\" or \"1m30s\", got nan"),
        ("timeout = inf", "[ready] timeout: must be at most one year (31536000 s), got inf"),
        ("timeout = -1", "[ready] timeout: must not be negative, got -1"),
        ("timeout = 1e308", "[ready] timeout: must be at most one year (31536000 s), got 1e+308"),
        ("timeout = 123456789012345678901234567890",
         "[ready] timeout: must be at most one year (31536000 s), got 123456789012345678901234567890"),
        ("interval = 0", "[ready] interval: must be more than 0"),
        ("interval = 0.001", "[ready] interval: must be at least 0.01 s, got 0.001"),
        ('tcp = "127.0.0.1"', '[ready] tcp: expected "HOST:PORT" such as "127.0.0.1:5432" or "[::1]:80", '
         "got '127.0.0.1'"),
        ('http = "https://x"', '[ready] http: only http:// URLs are supported; expected a URL such as '
         '"http://127.0.0.1:8000/healthz", got \'https://x\''),
        ("exec = []", "[ready] exec: expected a non-empty array of strings, or a string, got an empty array"),
        ('path = "rel"', "[ready] path: expected an absolute path (starting with /), got 'rel'"),
    ],
)
def test_bad_ready_values(body, message):
    assert problems(with_table("ready", body)) == [f"web.toml: {message}"]


# --- [health] ----------------------------------------------------------------


def test_health():
    unit = parse(with_table("health", 'exec = "check --quick"\ninterval = "30s"\ntimeout = "500ms"\nretries = 1'))
    assert unit.health.probe.argv == ("check", "--quick")
    assert (unit.health.interval, unit.health.timeout, unit.health.retries) == (30, 0.5, 1)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('path = "/x"', "[health] path: unknown key: a path probe only suits [ready]; use tcp, http or exec for health"),
        ('tcp = "a:1"\nhttp = "http://a/"', "[health] http: more than one probe (tcp, http): give exactly one"),
        ('tcp = "a:1"\nretries = 0', "[health] retries: expected an integer from 1 to 1000000, got 0"),
        ('tcp = "a:1"\nretries = 2.5', "[health] retries: expected an integer from 1 to 1000000, got a float (2.5)"),
        ('tcp = "a:1"\ntimeout = 0', "[health] timeout: must be more than 0"),
        ('tcp = "a:1"\ninterval = "0s"', "[health] interval: must be more than 0"),
    ],
)
def test_bad_health_values(body, message):
    assert problems(with_table("health", body)) == [f"web.toml: {message}"]


def test_health_settings_without_a_probe_are_a_warning(tmp_path):
    (tmp_path / "web.toml").write_text(with_table("health", "interval = 5"))
    result = load_directory(tmp_path)
    assert result.ok
    assert [str(w) for w in result.warnings] == [
        f"{tmp_path}/web.toml:3: [health]: warning: no probe (tcp, http or exec), so no health checks are made"
    ]


# --- [restart] ---------------------------------------------------------------


def test_restart():
    unit = parse(with_table("restart", 'policy = "always"\ndelay = "1s"\nmax_delay = "1m"\nmax_retries = 0\nreset_after = "5m"'))
    restart = unit.restart
    assert (restart.policy, restart.delay, restart.max_delay, restart.max_retries, restart.reset_after) == (
        RestartPolicy.ALWAYS, 1, 60, 0, 300,
    )  # fmt: skip
    assert parse(with_table("restart", 'policy = "no"')).restart.policy is RestartPolicy.NO
    assert parse(MINIMAL + 'type = "oneshot"\n').restart.policy is RestartPolicy.NO
    assert parse(with_table("restart", 'policy = "always"', "oneshot")).restart.policy is RestartPolicy.ALWAYS


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('policy = "on_failure"', '[restart] policy: expected "no", "on-failure" or "always", got a string '
         "('on_failure'); did you mean \"on-failure\"?"),
        ("policy = true", '[restart] policy: expected "no", "on-failure" or "always", got a boolean (true)'),
        ("delay = 5\nmax_delay = 1", "[restart] max_delay: max_delay (1 s) is less than delay (5 s)"),
        ("delay = 60", "[restart] delay: max_delay (30 s) is less than delay (60 s)"),
        ("max_retries = -1", "[restart] max_retries: expected an integer from 0 to 1000000, got -1"),
        ('reset_after = "1y"', '[restart] reset_after: expected seconds as a number, or a string such as "250ms", '
         '"1.5s", "2m", "1h" or "1m30s", got \'1y\''),
    ],
)
def test_bad_restart_values(body, message):
    assert problems(with_table("restart", body)) == [f"web.toml: {message}"]


# --- [stop] ------------------------------------------------------------------


def test_stop():
    unit = parse(with_table("stop", 'signal = "INT"\ntimeout = "30s"\nreload_signal = 10'))
    assert (unit.stop.signal, unit.stop.timeout, unit.stop.reload_signal) == (signal.SIGINT, 30, signal.SIGUSR1)
    assert parse(with_table("stop", "timeout = 0")).stop.timeout == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('signal = "SIGFOO"', "[stop] signal: expected a signal name such as \"SIGTERM\" or \"TERM\", or its number, got 'SIGFOO'"),
        ("reload_signal = 0", "[stop] reload_signal: expected a signal name such as \"SIGTERM\" or \"TERM\", or its number, got 0"),
        ('timeout = "forever"', "[stop] timeout: expected seconds as a number, or a string such as \"250ms\", \"1.5s\", "
         "\"2m\", \"1h\" or \"1m30s\", got 'forever'"),
    ],
)
def test_bad_stop_values(body, message):
    assert problems(with_table("stop", body)) == [f"web.toml: {message}"]


# --- [log] -------------------------------------------------------------------


def test_log():
    unit = parse(with_table("log", 'file = "/var/log/app.log"\nmax_bytes = 1024\nbackups = 0'))
    assert (unit.log.file, unit.log.max_bytes, unit.log.backups) == ("/var/log/app.log", 1024, 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('file = "app.log"', "[log] file: expected an absolute path (starting with /), got 'app.log'"),
        ("max_bytes = 100", "[log] max_bytes: expected an integer from 1024 to 4611686018427387904, got 100"),
        ("backups = 1001", "[log] backups: expected an integer from 0 to 1000, got 1001"),
        ('backups = "3"', "[log] backups: expected an integer from 0 to 1000, got a string ('3')"),
    ],
)
def test_bad_log_values(body, message):
    assert problems(with_table("log", body)) == [f"web.toml: {message}"]


# --- [limits] ----------------------------------------------------------------


def test_limits():
    unit = parse(
        with_table(
            "limits",
            'nofile = 65536\ncore = "infinity"\nnproc = [64, 128]\nstack = [8388608, "unlimited"]\n'
            'no_new_privileges = true\ncapabilities = ["CAP_NET_BIND_SERVICE", "chown", "CAP_CHOWN"]',
        )
    )
    assert unit.limits.rlimits == (
        ("nofile", 65536, 65536),
        ("core", RLIM_INFINITY, RLIM_INFINITY),
        ("nproc", 64, 128),
        ("stack", 8388608, RLIM_INFINITY),
    )
    assert unit.limits.no_new_privileges
    assert unit.limits.capabilities == ("CAP_NET_BIND_SERVICE", "CAP_CHOWN")
    assert parse(with_table("limits", "capabilities = []")).limits.capabilities == ()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("nofile = -1", "[limits] nofile: expected 0 to 9223372036854775807 or \"infinity\", got -1"),
        ("nofile = [10, 5]", "[limits] nofile: the soft limit 10 is above the hard limit 5"),
        ('nofile = "lots"', "[limits] nofile: expected an integer, \"infinity\", or a [soft, hard] pair of those, "
         "got a string ('lots')"),
        ('capabilities = ["CAP_FOO"]', "[limits] capabilities: item 1: unknown capability 'CAP_FOO'; expected a "
         "Linux capability such as CAP_NET_BIND_SERVICE"),
        ('capabilities = "CAP_CHOWN"', "[limits] capabilities: expected an array of capability names, got a string "
         "('CAP_CHOWN')"),
        ("no_new_privileges = 1", "[limits] no_new_privileges: expected true or false, got an integer (1)"),
        ("nofiles = 5", "[limits] nofiles: unknown key, did you mean 'nofile'?"),
    ],
)
def test_bad_limits(body, message):
    assert problems(with_table("limits", body)) == [f"web.toml: {message}"]


# --- NUL anywhere ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('description = "a\\u0000b"\n' + MINIMAL, "description"),
        (service('user = "a\\u0000"'), "[service] user"),
        (service('working_directory = "/a\\u0000"'), "[service] working_directory"),
        (with_table("dependencies", 'after = ["a\\u0000"]'), "[dependencies] after"),
        (with_table("ready", 'path = "/x\\u0000"'), "[ready] path"),
        (with_table("log", 'file = "/x\\u0000"'), "[log] file"),
        (with_table("stop", 'signal = "TERM\\u0000"'), "[stop] signal"),
    ],
)
def test_nul_is_refused_in_every_string(text, where):
    found = problems(text)
    assert len(found) == 1 and found[0].startswith(f"web.toml: {where}: ")
    assert "\0" not in found[0]


# --- the directory -----------------------------------------------------------


def write(directory, name: str, text: str = MINIMAL) -> str:
    """Write unit file `name` in `directory` and return its path."""
    path = os.path.join(directory, name)
    with open(path, "w") as file:
        file.write(text)
    return path


def test_only_toml_files_with_valid_stems_are_read(tmp_path):
    for name in ("web.toml", "db.toml", ".hidden.toml", "old.toml.disabled", "web.toml~", "#web.toml#", "README", "x.yaml"):
        write(tmp_path, name, MINIMAL if name.endswith(".toml") else "garbage = [")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "inner.toml")
    result = load_directory(tmp_path)
    assert sorted(result.units) == ["db", "web"]
    assert result.ok and result.errors == {} and result.warnings == []


def test_a_bad_stem_is_an_error_keyed_by_the_file_name(tmp_path):
    write(tmp_path, "-x.toml")
    write(tmp_path, "ok.toml")
    result = load_directory(tmp_path)
    assert list(result.units) == ["ok"]
    assert [str(p) for p in result.errors["-x.toml"]] == [
        f"{tmp_path}/-x.toml: '-x' is not a valid unit name: a name is 1-64 characters of A-Z a-z 0-9 _ . @ -, "
        "not starting with '.' or '-'"
    ]


def test_units_record_their_file(tmp_path):
    path = write(tmp_path, "web.toml")
    assert load_directory(tmp_path).units["web"].path == path


def test_load_units_raises_with_every_problem_of_every_file(tmp_path):
    write(tmp_path, "a.toml", "[service]\ncommand = 1\n")
    write(tmp_path, "b.toml", 'x = "')
    write(tmp_path, "c.toml", service("usr = 1"))
    write(tmp_path, "d.toml")
    with pytest.raises(ConfigError) as caught:
        load_units(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path}/a.toml:2: [service] command: expected a non-empty array of strings, or a string, got an integer (1)",
        f"{tmp_path}/b.toml:1:6: invalid TOML: unterminated string",
        f"{tmp_path}/c.toml:3: [service] usr: unknown key, did you mean 'user'?",
    ]
    assert str(caught.value).count("\n") == 2


def test_load_units_returns_the_units_when_all_are_valid(tmp_path):
    write(tmp_path, "a.toml")
    write(tmp_path, "b.toml", MINIMAL + '[dependencies]\nrequires = ["a"]\n')
    units = load_units(tmp_path)
    assert sorted(units) == ["a", "b"] and units["b"].dependencies.requires == ("a",)


def test_a_missing_directory_is_a_problem_not_an_exception(tmp_path):
    result = load_directory(tmp_path / "nope")
    assert not result.ok and result.units == {}
    assert [str(p) for p in result.problems()] == [
        f"{tmp_path}/nope: cannot open the units directory: No such file or directory"
    ]


def test_parse_unit_checks_the_name():
    with pytest.raises(ConfigError) as caught:
        parse_unit("../x", MINIMAL.encode(), "x.toml")
    assert "'../x' is not a valid unit name" in str(caught.value)


# --- back to TOML ------------------------------------------------------------


def test_unit_to_dict_round_trips_the_spec_example():
    unit = parse(SPEC_EXAMPLE)
    again = parse(tomli_w.dumps(unit_to_dict(unit)))
    assert again == unit


def test_unit_to_dict_leaves_out_defaults():
    assert unit_to_dict(parse(MINIMAL)) == {"service": {"command": ["app"]}}
    assert unit_to_dict(parse(MINIMAL + 'type = "oneshot"\n')) == {"service": {"command": ["app"], "type": "oneshot"}}


def test_schema_lists_every_table():
    assert set(SCHEMA) == {"", "service", "dependencies", "ready", "health", "restart", "stop", "log", "limits",
                           "conditions", "timer", "socket"}

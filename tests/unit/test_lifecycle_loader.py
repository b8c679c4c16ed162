"""The lifecycle keys of SPEC §11 in unit files: valid values, every bad
value with its message, "did you mean", and the round trip a re-exec uses."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from pidone.errors import ConfigError
from pidone.loader import parse_unit, unit_to_dict
from pidone.loader.build import unit_from_dict
from pidone.units_lifecycle import ConditionsSection

MINIMAL = '[service]\ncommand = ["app"]\n'


def parse(text: str):
    return parse_unit("web", textwrap.dedent(text).encode(), "web.toml")


def without_key_line(problem):
    """Return `problem` without the line of its key (a TOML syntax error keeps its line and column)."""
    return dataclasses.replace(problem, line=None) if problem.col is None else problem


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    # Without the key's line (test_loader_lines.py holds the lines): these cases are about the message.
    return [str(without_key_line(problem)) for problem in caught.value.problems]


def roundtrip(unit):
    assert unit_from_dict(unit.name, unit_to_dict(unit), "") == unit


# -- enabled and [conditions] ----------------------------------------------------


def test_enabled_defaults_to_true_and_takes_a_boolean():
    assert parse(MINIMAL).enabled is True
    unit = parse("enabled = false\n" + MINIMAL)
    assert unit.enabled is False
    roundtrip(unit)
    assert problems('enabled = "no"\n' + MINIMAL) == ["web.toml: enabled: expected true or false, got a string ('no')"]
    assert problems("enabeld = false\n" + MINIMAL) == ["web.toml: enabeld: unknown key, did you mean 'enabled'?"]


def test_conditions_keep_each_item_as_written():
    unit = parse(MINIMAL + '[conditions]\npath_exists = ["/a", "!/b"]\nenvironment = ["X", "!Y", "M=prod", "!M=x=y"]\n')
    assert unit.conditions == ConditionsSection(("/a", "!/b"), ("X", "!Y", "M=prod", "!M=x=y"))
    roundtrip(unit)
    assert not parse(MINIMAL).conditions


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('path_exists = "/a"', "[conditions] path_exists: expected an array of absolute paths, optionally "
         "prefixed by \"!\", got a string ('/a')"),
        ('path_exists = ["a"]', "[conditions] path_exists: item 1: expected an absolute path, optionally "
         "prefixed by \"!\", got 'a'"),
        ('path_exists = ["!"]', "[conditions] path_exists: item 1: expected an absolute path"),
        ('environment = ["1X"]', "[conditions] environment: item 1: expected NAME or NAME=VALUE"),
        ('environment = ["!=x"]', "[conditions] environment: item 1: expected NAME or NAME=VALUE"),
        ("environment = [1]", "[conditions] environment: item 1: expected a string, got an integer (1)"),
        ('path_exist = ["/a"]', "[conditions] path_exist: unknown key, did you mean 'path_exists'?"),
    ],
)
def test_bad_conditions(body, message):
    found = problems(MINIMAL + "[conditions]\n" + body + "\n")
    assert len(found) == 1 and message in found[0], found


def test_a_misplaced_condition_key_names_its_table():
    assert problems(MINIMAL + 'path_exists = ["/a"]\n') == [
        "web.toml: [service] path_exists: unknown key here: it belongs in [conditions]"]


# -- exit statuses, ignore_sigpipe, [stop] mode, part_of -------------------------------

from pidone.units_lifecycle import StopMode  # noqa: E402


def test_exit_statuses_take_codes_and_signal_names():
    unit = parse(MINIMAL + 'success_exit_status = [143, "term", "SIGHUP", 143]\nignore_sigpipe = true\n'
                 "[restart]\nprevent_exit_status = [78, \"SIGKILL\"]\n")
    assert unit.service.success_exit_status == (143, "SIGTERM", "SIGHUP")
    assert unit.restart.prevent_exit_status == (78, "SIGKILL")
    assert unit.service.ignore_sigpipe is True
    roundtrip(unit)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("success_exit_status = 1", "[service] success_exit_status: expected an array of exit codes (0-255) and "
         'signal names such as "SIGTERM", got an integer (1)'),
        ("success_exit_status = [256]", "[service] success_exit_status: item 1: an exit code is 0-255, got 256"),
        ("success_exit_status = [-1]", "[service] success_exit_status: item 1: an exit code is 0-255, got -1"),
        ('success_exit_status = [1, "SIGNOPE"]', "[service] success_exit_status: item 2: 'SIGNOPE' is not a signal name"),
        ("success_exit_status = [true]", "[service] success_exit_status: item 1: expected an array"),
        ('ignore_sigpipe = "yes"', "[service] ignore_sigpipe: expected true or false, got a string ('yes')"),
        ("sucess_exit_status = [1]", "[service] sucess_exit_status: unknown key, did you mean 'success_exit_status'?"),
        ("prevent_exit_status = [1]", "[service] prevent_exit_status: unknown key here: it belongs in [restart]"),
    ],
)
def test_bad_service_lifecycle_values(line, message):
    found = problems(MINIMAL + line + "\n")
    assert len(found) == 1 and message in found[0], found


def test_stop_mode():
    assert parse(MINIMAL).stop.mode == StopMode.GROUP
    for mode in StopMode:
        unit = parse(MINIMAL + f'[stop]\nmode = "{mode.value}"\n')
        assert unit.stop.mode == mode
        roundtrip(unit)
    assert problems(MINIMAL + '[stop]\nmode = "mixd"\n') == [
        'web.toml: [stop] mode: expected "group", "mixed" or "process", got a string (\'mixd\'); did you mean "mixed"?']


def test_part_of():
    unit = parse(MINIMAL + '[dependencies]\npart_of = ["db", "db"]\n')
    assert unit.dependencies.part_of == ("db",) and unit.ordering == ()
    roundtrip(unit)
    assert "[dependencies] part_of: item 1: '-x' is not a unit name" in problems(
        MINIMAL + '[dependencies]\npart_of = ["-x"]\n')[0]


def test_check_warns_about_a_missing_part_of_and_graph_draws_it(tmp_path):
    import subprocess
    import sys

    from pidone import graph
    from pidone.units import make_unit

    units = {"web": replace_deps(make_unit("web", path="/u/web.toml"), part_of=("db",))}
    errors, warnings = graph.check(units)
    assert errors == []
    assert [str(w) for w in warnings] == ["/u/web.toml: [dependencies] part_of: warning: missing dependency 'db', ignored"]
    (tmp_path / "web.toml").write_text(MINIMAL + '[dependencies]\npart_of = ["db"]\n')
    (tmp_path / "db.toml").write_text(MINIMAL)
    run = subprocess.run([sys.executable, "-m", "pidone", "graph", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert '  "web" -> "db" [color=blue, label="part_of"];' in run.stdout.splitlines()


def replace_deps(unit, **deps):
    from dataclasses import replace

    return replace(unit, dependencies=replace(unit.dependencies, **deps))


# -- directories ---------------------------------------------------------------------------


def test_directories():
    unit = parse(MINIMAL + 'runtime_directory = "app"\nstate_directory = ["app", "app/db", "app"]\n'
                 'directory_mode = "0750"\n')
    assert unit.service.runtime_directory == ("app",)
    assert unit.service.state_directory == ("app", "app/db")
    assert unit.service.directory_mode == 0o750
    roundtrip(unit)
    assert parse(MINIMAL).service.directory_mode == 0o755


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('runtime_directory = "/run/app"', '[service] runtime_directory: expected a relative directory name such as '
         '"app" or "app/sub" (no leading "/", no "." or ".." and no empty part), got \'/run/app\''),
        ('state_directory = ["a", "../etc"]', "[service] state_directory: item 2: expected a relative directory name"),
        ('state_directory = ["a/./b"]', "[service] state_directory: item 1: expected a relative directory name"),
        ('runtime_directory = ""', "[service] runtime_directory: must not be empty"),
        ("runtime_directory = 1", "[service] runtime_directory: expected a relative directory name such as \"app\", "
         "or an array of them, got an integer (1)"),
        ("runtime_directory = [1]", "[service] runtime_directory: item 1: expected a relative directory name, got an "
         "integer (1)"),
        ('directory_mode = "0999"', '[service] directory_mode: expected an octal string such as "0755", or an '
         "integer from 0 to 0o777, got a string ('0999')"),
        ('runtime_dir = "a"', "[service] runtime_dir: unknown key, did you mean 'runtime_directory'?"),
    ],
)
def test_bad_directories(line, message):
    found = problems(MINIMAL + line + "\n")
    assert len(found) == 1 and message in found[0], found


# -- hooks -----------------------------------------------------------------------------------


def test_hook_command_forms():
    unit = parse(MINIMAL + 'exec_start_pre = [["/usr/bin/app", "check"], "-/usr/bin/warm --all"]\n'
                 'exec_start_post = "/usr/bin/app register"\nexec_reload = ["kill", "-HUP", "1"]\n'
                 'exec_stop = ["-/bin/stop"]\nexec_stop_post = [["cleanup"]]\n')
    service = unit.service
    assert service.exec_start_pre == (("/usr/bin/app", "check"), ("-/usr/bin/warm", "--all"))
    assert service.exec_start_post == (("/usr/bin/app", "register"),)
    assert service.exec_reload == (("kill", "-HUP", "1"),)
    assert service.exec_stop == (("-/bin/stop",),)
    assert service.exec_stop_post == (("cleanup",),)
    roundtrip(unit)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("exec_stop = []", "[service] exec_stop: expected a command, or an array of commands, got an empty array"),
        ('exec_stop = ""', "[service] exec_stop: expected a non-empty array of strings, or a string, got an empty command"),
        ('exec_stop = [["a"], []]', "[service] exec_stop: command 2: expected a non-empty array of strings, or a "
         "string, got an empty array"),
        ('exec_stop = [["a"], 3]', "[service] exec_stop: command 2: expected a non-empty array of strings, or a "
         "string, got an integer (3)"),
        ('exec_stop = "- /bin/x"', '[service] exec_stop: "-" must be followed by the program'),
        ('exec_stop = "a \'b"', "[service] exec_stop: cannot split"),
        ('exec_start = "a"', "[service] exec_start: unknown key: the main command is 'command' (systemd's ExecStart=)"),
        ('exec_stop_pre = "a"', "[service] exec_stop_pre: unknown key, did you mean"),
    ],
)
def test_bad_hooks(line, message):
    found = problems(MINIMAL + line + "\n")
    assert len(found) == 1 and message in found[0], found


def test_pid_file_belongs_to_forking_units():
    unit = parse(MINIMAL + 'type = "forking"\npid_file = "/run/app.pid"\n')
    assert unit.service.pid_file == "/run/app.pid"
    roundtrip(unit)
    assert problems(MINIMAL + 'pid_file = "/run/app.pid"\n') == [
        'web.toml: [service] pid_file: only a forking unit has a pid_file: add type = "forking", or remove it']
    assert "expected an absolute path" in problems(MINIMAL + 'type = "forking"\npid_file = "app.pid"\n')[0]
    assert "a forking unit is ready by its first process exiting 0, not by a probe" in problems(
        MINIMAL + 'type = "forking"\n[ready]\ntcp = "127.0.0.1:80"\n')[0]


def test_health_watchdog(tmp_path):
    unit = parse(MINIMAL + '[health]\nwatchdog = "30s"\n')
    assert unit.health.watchdog == 30.0 and unit.health.probe is None
    roundtrip(unit)
    assert parse(MINIMAL).health.watchdog == 0.0
    assert "[health] watchdog: must be at least 0.01 s" in problems(MINIMAL + '[health]\nwatchdog = "1ms"\n')[0]
    assert "[health] watchdog: expected seconds" in problems(MINIMAL + '[health]\nwatchdog = true\n')[0]
    assert "[health] watchdg: unknown key, did you mean 'watchdog'?" in problems(MINIMAL + "[health]\nwatchdg = 1\n")[0]
    from pidone.loader import load_directory

    (tmp_path / "web.toml").write_text(MINIMAL + '[health]\nwatchdog = "30s"\n')
    assert load_directory(str(tmp_path)).warnings == []  # a watchdog alone is not "settings without a probe"

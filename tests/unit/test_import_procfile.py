"""`pidone import` of Procfiles."""

from __future__ import annotations

import pytest

from importhelp import FIXTURES, NOTE, loads
from hypothesis import given, settings
from hypothesis import strategies as st

from pidone.importers import import_procfile, needs_shell
from pidone.importers.procfile import exec_last


# --- Procfile --------------------------------------------------------------------


def test_procfile():
    results = import_procfile((FIXTURES / "Procfile").read_text(), "Procfile")
    assert [(r.name, r.unit) for r in results] == [
        ("web", {"service": {"command": ["/bin/sh", "-c", "exec bundle exec puma -C config/puma.rb -p $PORT"]}}),
        ("worker", {"service": {"command": ["bundle", "exec", "sidekiq", "-q", "default", "-q", "mailers"]}}),
        ("release", {"service": {"command": ["bundle", "exec", "rails", "db:migrate"], "type": "oneshot"}}),
        ("clock", {"service": {"command": ["/bin/sh", "-c", "bundle exec clockwork lib/clock.rb 2>&1 | tee -a log/clock.log"]}}),
        ("assets", {"service": {"command": ["npm", "run", "watch", "--", "--color"]}}),
    ]  # fmt: skip
    for result in results:
        loads(result)
        assert all(NOTE.match(note) for note in result.notes), result.notes
    shell_notes = [n for r in results for n in r.notes if n.startswith("Procfile:")]
    assert shell_notes == [
        "Procfile: approximated: commands with shell syntax run as /bin/sh -c 'exec COMMAND' (web, clock), so that"
        " the command, not the shell, is the unit's main process (exec before the last command of an && or ; list;"
        " as is where it cannot be), as foreman runs them; the others are split into words and run directly;"
        " the image needs /bin/sh"
    ]
    assert any("$PORT" in n for n in results[0].notes)
    assert any(n.startswith("release=") for n in results[2].notes)
    assert results[1].source == "Procfile (worker)"


def test_procfile_odd_lines():
    results = import_procfile("web: a\nnot a process\nweb: b\n\n# c\nbad name: x\n", "Procfile")
    assert [(r.name, r.unit["service"]["command"]) for r in results] == [("web", ["b"])]
    assert [n.split(":")[0] for n in results[0].notes] == ["line 2=not a process", "web (line 1)=a", "line 6=bad name"]
    empty = import_procfile("# nothing\n", "Procfile")
    assert not empty[0].ok and "no 'name: command' line" in empty[0].error


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        ("bundle exec puma", False),
        ("python -m app --opt='a b'", False),
        ('echo "a b"', False),
        ("echo 'it$s literal'", False),
        ("node server.js $PORT", True),
        ('echo "$HOME"', True),
        ("a && b", True),
        ("a | b", True),
        ("a > log", True),
        ("a; b", True),
        ("ls *.txt", True),
        ("FOO=bar app", True),
        ("cd ~/app", True),
        ("a `b`", True),
        ("a $(b)", True),
        ("a # comment", True),
        ("a x#y", False),
        ("echo 'unclosed", True),
    ],
)
def test_needs_shell(command, shell):
    assert needs_shell(command) is shell


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("bundle exec puma -p $PORT", "exec bundle exec puma -p $PORT"),
        ("cd app && node server.js $PORT", "cd app && exec node server.js $PORT"),
        ("migrate; serve;", "migrate; exec serve"),
        ('FOO=1 BAR="x y" app --x', 'FOO=1 BAR="x y" exec app --x'),
        ("app 2>&1", "exec app 2>&1"),
        ('echo "a;b" && c $(d; e)', 'echo "a;b" && exec c $(d; e)'),
        ("exec app $X", "exec app $X"),
        ("a | tee log", None),
        ("a || b", None),
        ("a &", None),
        ("(a; b)", None),
        ("{ a; b; }", None),
        ("if x; then y; fi", None),
        ("a # c; d", None),
        ("FOO=1", None),
        ("echo 'unclosed", None),
    ],
)
def test_exec_last(command, script):
    assert exec_last(command) == script


def test_a_procfile_command_the_shell_cannot_exec_is_noted():
    (result,) = import_procfile("log: app 2>&1 | tee -a log/app.log\n", "Procfile")
    assert result.unit["service"]["command"] == ["/bin/sh", "-c", "app 2>&1 | tee -a log/app.log"]
    assert any(n.startswith("log=app 2>&1 | tee -a log/app.log: approximated: the shell stays the main process") for n in result.notes)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab ;&|()'\"$`=#{}\n\\<>2", max_size=30))
def test_exec_last_only_ever_inserts_one_exec(command):
    script = exec_last(command)
    if script is None or script == command:
        return
    stripped = command.rstrip().rstrip(";").rstrip()
    places = [i for i in range(len(script)) if script.startswith("exec ", i)]
    assert any(script[:i] + script[i + 5 :] == stripped for i in places), (command, script)

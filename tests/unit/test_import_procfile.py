"""`pidone import` of Procfiles."""

from __future__ import annotations

import pytest

from importhelp import FIXTURES, NOTE, loads
from pidone.importers import import_procfile, needs_shell


# --- Procfile --------------------------------------------------------------------


def test_procfile():
    results = import_procfile((FIXTURES / "Procfile").read_text(), "Procfile")
    assert [(r.name, r.unit) for r in results] == [
        ("web", {"service": {"command": ["/bin/sh", "-c", "bundle exec puma -C config/puma.rb -p $PORT"]}}),
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
        "Procfile: approximated: commands with shell syntax run as /bin/sh -c COMMAND (web, clock), as foreman runs"
        " them; the others are split into words and run directly; the image needs /bin/sh"
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

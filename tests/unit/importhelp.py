"""Helpers shared by the `pidone import` tests (tests/unit/test_import_*.py).

Every generated unit is also loaded with `loader.parse_unit` (see `loads`).
"""

from __future__ import annotations

import io
import re
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import tomli_w

from pidone.cli.importcmd import import_main
from pidone.importers import ImportResult, import_systemd
from pidone.loader import parse_unit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "import"
NOTE = re.compile(r"^\S.*: (not carried over|approximated|warning): \S.*$")
SYSTEM_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")


def loads(result: ImportResult):
    """Return the Unit the result's table loads as; fail the test if it does not."""
    assert result.unit is not None, result.error
    return parse_unit(result.name, tomli_w.dumps(result.unit).encode(), f"{result.name}.toml")


SIGPIPE_NOTE = "IgnoreSIGPIPE=yes (systemd's default): not carried over: "


def strip_sigpipe(result: ImportResult) -> bool:
    """Remove what carries systemd's default IgnoreSIGPIPE=yes (the [service] ignore_sigpipe key once pidone
    has it, its note until then) from `result`, so a test can compare the rest; return whether it was there."""
    if result.unit is not None and result.unit["service"].pop("ignore_sigpipe", None) is True:
        return True
    before = len(result.notes)
    result.notes[:] = [note for note in result.notes if not note.startswith(SIGPIPE_NOTE)]
    return len(result.notes) == before - 1


def systemd(text: str, name: str = "app.service") -> ImportResult:
    """Convert a systemd unit (dedented), check that it loads, that every note has the documented form and
    that systemd's default IgnoreSIGPIPE=yes is carried (then removed from the result: see strip_sigpipe)."""
    result = import_systemd(textwrap.dedent(text), name)
    loads(result)
    assert all(NOTE.match(note) for note in result.notes), result.notes
    if result.unit is not None and "IgnoreSIGPIPE" not in text:
        assert strip_sigpipe(result), result.notes
    return result


def service(body: str, name: str = "app.service", unit: str = "") -> ImportResult:
    """Convert a unit whose [Service] section is `body` (and [Unit] section `unit`)."""
    text = f"[Unit]\n{textwrap.dedent(unit)}\n[Service]\n{textwrap.dedent(body)}"
    return systemd(text, name)


def notes_about(result: ImportResult, directive: str) -> list[str]:
    """Return the notes whose subject is `directive` (with or without a value)."""
    return [n for n in result.notes if n.startswith((directive + "=", directive + ":"))]


def run(*argv: str) -> tuple[int, str, str]:
    """Run `pidone import ARGV` in-process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = import_main(list(argv))
    return status, out.getvalue(), err.getvalue()

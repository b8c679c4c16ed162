"""Procfiles: each `name: command` line to one pidone unit, run the way foreman runs it."""

from __future__ import annotations

import re
import shlex
from typing import Any

from pidone.importers.notes import APPROXIMATED, ImportResult, _name_note, _Notes, _stem, sanitize_name
from pidone.importers.values import SHELL

_PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*(.*)$")
_SHELL_SPECIAL = set("|&;<>()$`*?[]{}!")


def needs_shell(command: str) -> bool:
    """Return True when `command` uses shell syntax (outside quotes): pipes, $, globs, redirections, VAR=x prefixes..."""
    quote = ""
    word_start = True
    escaped = False
    for index, c in enumerate(command):
        if escaped:
            escaped = False
            word_start = False
            continue
        if quote == "'":
            quote = "" if c == "'" else quote
            continue
        if c == "\\":
            escaped = True
            continue
        if quote == '"':
            if c == '"':
                quote = ""
            elif c in "$`":
                return True
            continue
        if c in "'\"":
            quote = c
            word_start = False
            continue
        if c in " \t":
            word_start = True
            continue
        if c in _SHELL_SPECIAL or c == "\n":
            return True
        if word_start and c in "#~":
            return True
        word_start = False
    if quote or escaped:
        return True  # let the shell report it
    first = command.split(None, 1)[0] if command.split() else ""
    return re.match(r"[A-Za-z_][A-Za-z0-9_]*=", first) is not None


def import_procfile(text: str, source: str = "") -> list[ImportResult]:
    """Return one result per `name: command` line of Procfile `text`.

    A command that uses shell syntax runs as `/bin/sh -c COMMAND`, the way
    foreman (Ruby's spawn) runs it; any other is split into words and
    exec'd directly, as foreman does too. The first result carries one note
    saying so.
    """
    source = source or "Procfile"
    entries: dict[str, tuple[str, int]] = {}
    file_notes = _Notes()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PROCFILE_LINE.match(line)
        if not match or not match.group(2).strip():
            file_notes.drop(f"line {number}", line, "not a 'name: command' line")
            continue
        name, command = match.group(1), match.group(2).strip()
        if name in entries:
            file_notes.drop(f"{name} (line {entries[name][1]})", entries[name][0], f"{name} is defined again on line {number}; the last one counts")
        entries[name] = (command, number)
    if not entries:
        return [ImportResult(sanitize_name(_stem(source)), None, list(file_notes), source, error="no 'name: command' line")]
    results = []
    shelled = []
    for process, (command, _number) in entries.items():
        notes = _Notes()
        name = sanitize_name(process)
        _name_note(notes, process, name)
        service: dict[str, Any] = {}
        if needs_shell(command) or not all(shlex.split(command)):
            service["command"] = [SHELL, "-c", command]
            shelled.append(name)
        else:
            service["command"] = shlex.split(command)
        document: dict[str, Any] = {"service": service}
        if process == "release":
            service["type"] = "oneshot"
            notes.approx(
                "release", command,
                'written as type = "oneshot": Heroku runs it once per release, pidone at every container start;'
                ' add after = ["release"] (or requires) to the units that need it first',
            )  # fmt: skip
        if re.search(r"\$\{?PORT\b", command):
            notes.approx(
                process, command,
                "$PORT is set by foreman or the platform, not by pidone: set it in the container's environment"
                " or in [service] environment",
            )  # fmt: skip
        results.append(ImportResult(name, document, list(notes), f"{source} ({process})"))
    if shelled:
        file_notes.insert(
            0,
            f"Procfile: {APPROXIMATED}: commands with shell syntax run as {SHELL} -c COMMAND ({', '.join(shelled)}),"
            f" as foreman runs them; the others are split into words and run directly; the image needs {SHELL}",
        )
    results[0].notes[:0] = file_notes
    return results

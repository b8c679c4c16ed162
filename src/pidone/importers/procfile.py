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


_RESERVED = {
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "in", "{", "}", "!",
    "function", "select", "time", "[[",
}  # fmt: skip
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def exec_last(command: str) -> str | None:
    """Return shell `command` with `exec` before its last command, so that command replaces the shell; or None.

    Only when that is safe: the last command is a simple one, reached by `&&`, `;` or a newline (not part
    of a pipeline, an `||` list, a background job or a compound command), and no comment hides the rest.
    Leading VAR=value assignments stay before `exec` (`FOO=1 exec app`), which keeps them for the command.
    """
    text = command.rstrip().rstrip(";").rstrip()
    end, last_op = 0, ""
    depth, quote, i, word_start = 0, "", 0, True
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote != "'":
                i += 2
                continue
            if c == quote:
                quote = ""
            i += 1
            continue
        if c == "\\":
            i, word_start = i + 2, False
            continue
        if c in "'\"`":
            quote, word_start = c, False
        elif c == "#" and word_start:
            return None  # a comment: where the last command ends is not worth guessing
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif depth == 0 and c in ";&|\n" and not (c == "&" and text[i - 1 : i] in ("<", ">")):  # not 2>&1
            op = text[i : i + 2] if text[i : i + 2] in ("&&", "||", ";;", "|&") else c
            end, last_op = i + len(op), op
            i, word_start = i + len(op), True
            continue
        word_start = c in " \t"
        i += 1
    if quote or depth or last_op not in ("", "&&", ";", "\n"):
        return None
    segment = text[end:]
    words = _word_starts(segment)
    while words and _ASSIGNMENT.match(segment[words[0] :]):
        words.pop(0)
    if not words:
        return None
    first = segment[words[0] :].split(None, 1)[0]
    if first in _RESERVED or first.startswith(("(", "{")):
        return None
    if first == "exec":
        return command
    at = end + words[0]
    return f"{text[:at]}exec {text[at:]}"


def _word_starts(segment: str) -> list[int]:
    """Return where each word of one simple shell command starts (quotes and escapes honoured)."""
    starts, quote, i, inside = [], "", 0, False
    while i < len(segment):
        c = segment[i]
        if quote:
            if c == "\\" and quote != "'":
                i += 1
            elif c == quote:
                quote = ""
        elif c in " \t":
            inside = False
        else:
            if not inside:
                starts.append(i)
                inside = True
            if c == "\\":
                i += 1
            elif c in "'\"`":
                quote = c
        i += 1
    return starts


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
            script = exec_last(command)
            service["command"] = [SHELL, "-c", script or command]
            shelled.append(name)
            if script is None:
                notes.approx(
                    process, command,
                    f"the shell stays the main process ({SHELL} cannot exec a pipeline, a background job or a"
                    " compound command): `pidone reload` signals the shell, and readiness notifications must come"
                    " from it; a stop still signals the whole group",
                )  # fmt: skip
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
            f"Procfile: {APPROXIMATED}: commands with shell syntax run as {SHELL} -c 'exec COMMAND' ({', '.join(shelled)}),"
            " so that the command, not the shell, is the unit's main process (exec before the last command of"
            " an && or ; list; as is where it cannot be),"
            f" as foreman runs them; the others are split into words and run directly; the image needs {SHELL}",
        )
    results[0].notes[:0] = file_notes
    return results

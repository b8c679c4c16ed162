"""The shared notes model of `pidone import`: one result per unit made, with its notes; unit names.

Each note is one line in one of two forms (docs/import.md, "Notes"):

    Directive=value: not carried over: why
    Directive=value: approximated: what was done instead, and why
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from pidone.loader import SCHEMA

DROPPED = "not carried over"
APPROXIMATED = "approximated"

_MAX_NAME = 64
_NOTE_VALUE_LIMIT = 100


@dataclass
class ImportResult:
    """One unit made from one input (a systemd file, a supervisord program, a Procfile line).

    `unit` is the TOML document as a dict for tomli-w, or None when the
    input could not be converted at all; `error` then says why. `notes`
    lists every directive not carried over or approximated (see the module
    docstring for their form). `source` names the input ("path" or
    "path [program:x]").
    """

    name: str
    unit: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    source: str = ""
    error: str | None = None
    # A table of another unit (a .timer's [timer], a .socket's [socket]),
    # merged by `pidone import` into the unit named `name`.
    fragment: bool = False

    def __post_init__(self) -> None:
        if self.unit is not None:
            if _holds_nul(self.unit):
                self.unit, self.error = None, "a value holds a NUL character, which no unit file may"
            else:
                self.unit = _literal_dollars(canonical(self.unit))

    @property
    def ok(self) -> bool:
        """Return True when a unit was made."""
        return self.unit is not None


def _holds_nul(value: Any) -> bool:
    """Return True when a string anywhere in `value` (keys included) holds a NUL character."""
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def canonical(document: dict[str, Any]) -> dict[str, Any]:
    """Return `document` with its tables and keys in the order of docs/unit-files.md (loader.SCHEMA); empty tables dropped."""
    out: dict[str, Any] = {key: document[key] for key in SCHEMA[""] if key in document}
    for table, keys in SCHEMA.items():
        if table and document.get(table):
            section = document[table]
            out[table] = {key: section[key] for key in keys if key in section}
            out[table].update({key: value for key, value in section.items() if key not in out[table]})
    out.update({key: value for key, value in document.items() if key not in out and key not in SCHEMA})
    return out


# The values pidone expands (SPEC §12), by table. What an importer writes there
# is meant literally (or for the /bin/sh it wraps a command in), so a `$` that
# pidone would read (before `{` or `$`) is written `$$`.
_EXPANDED = {"service": ("command", "working_directory", "environment"), "log": ("file",),
             "ready": ("exec",), "health": ("exec",)}
_EXPANDING_DOLLAR = re.compile(r"\$(?=[{$])")


def _literal_dollars(document: dict[str, Any]) -> dict[str, Any]:
    """Return `document` with every `${` and `$$` in the values pidone expands written `$${` and `$$$$`."""

    def escape(value: Any) -> Any:
        if isinstance(value, str):
            return _EXPANDING_DOLLAR.sub("$$", value)
        if isinstance(value, list):
            return [escape(item) for item in value]
        if isinstance(value, dict):
            return {key: escape(item) for key, item in value.items()}
        return value

    for table, keys in _EXPANDED.items():
        section = document.get(table)
        if isinstance(section, dict):
            for key in section:
                if key in keys or key.startswith("exec_"):
                    section[key] = escape(section[key])
    return document


class _Notes(list):
    """The notes of one result, in the two forms of the module docstring."""

    def drop(self, directive: str, value: str | None, why: str) -> None:
        """Record that `directive` (with `value`) was not carried over, and why."""
        self.append(f"{_subject(directive, value)}: {DROPPED}: {why}")

    def approx(self, directive: str, value: str | None, what: str) -> None:
        """Record that `directive` was carried over only approximately: `what` was done."""
        self.append(f"{_subject(directive, value)}: {APPROXIMATED}: {what}")


def _subject(directive: str, value: str | None) -> str:
    """Return "Directive=value" for a note, the value cut short and kept on one line."""
    if value is None:
        return directive
    return f"{directive}={_short(value)}"


def _short(text: str, limit: int = _NOTE_VALUE_LIMIT) -> str:
    """Return `text` on one printable line of at most about `limit` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- names ---------------------------------------------------------------------


def sanitize_name(name: str) -> str:
    """Return `name` changed as little as possible to obey pidone's unit-name rule.

    Characters outside A-Z a-z 0-9 _ . @ - become "_", leading "." and "-"
    are dropped, and the name is cut to 64 characters; an empty result is "unit".
    """
    text = re.sub(r"[^A-Za-z0-9_.@-]", "_", name).lstrip(".-")[:_MAX_NAME]
    return text or "unit"


def _name_note(notes: _Notes, original: str, name: str) -> None:
    """Note that unit name `original` had to become `name`."""
    if original != name:
        notes.approx(
            "name",
            original,
            f"renamed to {name!r}: a pidone unit name is 1-64 characters of A-Z a-z 0-9 _ . @ -,"
            " not starting with '.' or '-'",
        )


def _stem(path: str) -> str:
    """Return a file's name without its suffixes, for a unit named after a file ("Procfile", "supervisord")."""
    base = os.path.basename(path)
    return base.split(".", 1)[0] if not base.startswith(".") else base

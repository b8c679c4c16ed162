"""Turning systemd services, supervisord programs and Procfile entries into pidone units.

Pure: text in, TOML tables (dicts for tomli-w) and notes out; no files are
read and nothing is printed (`pidone.cli.importcmd` does both). Each result
says, in `notes`, every directive that was not carried over or only
approximately, one line each:

    Directive=value: not carried over: why
    Directive=value: approximated: what was done instead, and why

The mapping is written down, directive by directive, in docs/import.md.
Every table built here must load with `loader.parse_unit`; the CLI checks
that before it prints or writes anything, and the tests check it for every
service unit installed on the machine.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pidone.loader import SCHEMA
from pidone.units import CAPABILITIES, DEFAULT_RESTART_DELAY, ENV_KEY_RE, MAX_DURATION, RLIMITS

SYSTEMD = "systemd"
SUPERVISORD = "supervisord"
PROCFILE = "procfile"
FORMATS = (SYSTEMD, SUPERVISORD, PROCFILE)

DROPPED = "not carried over"
APPROXIMATED = "approximated"

SHELL = "/bin/sh"  # what a converted command that needs a shell runs through
NOFILE_INFINITY = 1048576  # Linux refuses an infinite RLIMIT_NOFILE; this is the kernel's default nr_open

_MAX_NAME = 64
_MAX_ID = 2**32 - 2
_MAX_RETRIES = 1_000_000
_MAX_NUMPROCS = 1000  # one unit file each: more is a typo
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


# --- durations and values shared by the formats --------------------------------


def _seconds(value: float) -> int | float:
    """Return a duration for TOML: an integer when whole, else rounded to microseconds."""
    return int(value) if value == int(value) else round(value, 6)


_BOOL_TRUE = ("1", "yes", "true", "on", "y", "t")
_BOOL_FALSE = ("0", "no", "false", "off", "n", "f")


def _boolean(text: str) -> bool:
    """Return a systemd or supervisord boolean; raise ValueError."""
    word = text.strip().lower()
    if word in _BOOL_TRUE:
        return True
    if word in _BOOL_FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _signal_name(text: str) -> str:
    """Return "SIGTERM" for "TERM", "SIGTERM", "sigterm" or "15"; raise ValueError for others."""
    word = text.strip()
    try:
        if word.isdigit():
            return signal.Signals(int(word)).name
        upper = word.upper()
        return signal.Signals[upper if upper.startswith("SIG") else "SIG" + upper].name
    except (KeyError, ValueError):
        raise ValueError(f"not a signal pidone can name: {text!r}") from None


def _umask(text: str) -> str:
    """Return an octal umask as pidone writes it ("0022"); raise ValueError."""
    word = text.strip()
    if not word or len(word) > 4 or any(c not in "01234567" for c in word) or int(word, 8) > 0o777:
        raise ValueError(f"not an octal umask: {text!r}")
    return f"{int(word, 8):04o}"


def _account(text: str) -> str | int:
    """Return a user or group as pidone takes it: an integer for a number, else the name; raise ValueError."""
    word = text.strip()
    if word.isascii() and word.isdigit():
        if int(word) > _MAX_ID:
            raise ValueError(f"{word} is past the largest user or group ID")
        return int(word)
    if not word or len(word) > 256 or not word.isprintable() or any(c in word for c in " :/,"):
        raise ValueError(f"not a user or group name: {text!r}")
    return word


# --- shell rendering -----------------------------------------------------------

_WHOLE_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_BRACED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")


def _render_word(word: str, expand: bool) -> str:
    """Return one argument as shell text; with `expand`, systemd's variable references become the shell's.

    A word that is exactly `$NAME` stays unquoted, so its value is split at
    whitespace (systemd does the same); `${NAME}` anywhere stays one
    argument; `$$` is a literal `$`. Everything else is quoted.
    """
    if not expand:
        return shlex.quote(word)
    if _WHOLE_VAR.fullmatch(word):
        return word
    parts: list[str] = []
    pos = 0
    for match in _BRACED_VAR.finditer(word):
        literal = word[pos : match.start()]
        if literal:
            parts.append(shlex.quote(literal))
        parts.append("'$'" if match.group(0) == "$$" else f'"${{{match.group(1)}}}"')
        pos = match.end()
    if pos < len(word) or not parts:
        parts.append(shlex.quote(word[pos:]))
    return "".join(parts)


def _variables(words: list[str]) -> list[str]:
    """Return the names of the variables systemd would expand in `words`, in order."""
    names: list[str] = []
    for word in words:
        whole = _WHOLE_VAR.fullmatch(word)
        if whole:
            names.append(whole.group(1))
            continue
        names.extend(m.group(1) for m in _BRACED_VAR.finditer(word) if m.group(1))
    return list(dict.fromkeys(names))


def _substitute(words: list[str], env: dict[str, str]) -> list[str]:
    """Return `words` with systemd's variable references replaced from `env` (all of them are defined there)."""
    out: list[str] = []
    for word in words:
        whole = _WHOLE_VAR.fullmatch(word)
        if whole:
            out.extend(_words_or_split(env[whole.group(1)]))
            continue
        out.append(_BRACED_VAR.sub(lambda m: "$" if m.group(0) == "$$" else env[m.group(1)], word))
    return out


# --- systemd -------------------------------------------------------------------

_WHITESPACE = " \t\n\r"
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " "}


def _unescape_at(text: str, i: int) -> tuple[str, int]:
    """Return (the character of the C escape starting at text[i] == "\\", index after it)."""
    nxt = text[i + 1]
    if nxt in _C_ESCAPES:
        return _C_ESCAPES[nxt], i + 2
    for letter, length, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        if nxt == letter:
            digits = text[i + 2 : i + 2 + length]
            if len(digits) == length and all(c in "0123456789abcdefABCDEF" for c in digits):
                return chr(int(digits, base)), i + 2 + length
    digits = text[i + 1 : i + 4]
    if len(digits) == 3 and all(c in "01234567" for c in digits):
        return chr(int(digits, 8)), i + 4
    return nxt, i + 2  # \\, \", \', \; and anything unknown: the character itself


def _split_systemd(text: str, *, escapes: bool = True) -> tuple[list[str], list[str]]:
    """Split a systemd value into words as systemd does: whitespace, '' and "" quotes, C escapes.

    Return (words, raw) where raw[i] is word i as written, to tell a lone
    `;` from an escaped `\\;`. Raise ValueError for an unclosed quote.
    """
    words: list[str] = []
    raws: list[str] = []
    current: list[str] = []
    start = -1
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
                i += 1
            elif c == "\\" and escapes and i + 1 < len(text):
                char, i = _unescape_at(text, i)
                current.append(char)
            else:
                current.append(c)
                i += 1
            continue
        if c in _WHITESPACE:
            if start >= 0:
                words.append("".join(current))
                raws.append(text[start:i])
                current, start = [], -1
            i += 1
            continue
        if start < 0:
            start = i
        if c in "'\"":
            quote = c
            i += 1
        elif c == "\\" and escapes and i + 1 < len(text):
            char, i = _unescape_at(text, i)
            current.append(char)
        else:
            current.append(c)
            i += 1
    if quote:
        raise ValueError("unclosed quote")
    if start >= 0:
        words.append("".join(current))
        raws.append(text[start:])
    return words, raws


def _words_or_split(text: str) -> list[str]:
    """Return the words of `text` as systemd splits them (no escapes), or at whitespace if a quote is unclosed."""
    try:
        return _split_systemd(text, escapes=False)[0]
    except ValueError:
        return text.split()


def _systemd_lines(text: str) -> tuple[list[tuple[str, str, str, int]], list[tuple[int, str]]]:
    """Return ([(section, key, value, line)], problems) for a systemd unit file, as systemd reads it.

    Comments start with # or ;. A line ending in an odd number of
    backslashes continues on the next one (the backslash becomes a space;
    comment lines inside are skipped).
    """
    entries: list[tuple[str, str, str, int]] = []
    problems: list[tuple[int, str]] = []
    section = ""
    pending = ""
    pending_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith(("#", ";")):
            continue
        if pending:
            line, start = pending + raw, pending_line
        else:
            line, start = raw, number
        backslashes = len(line) - len(line.rstrip("\\"))
        if backslashes % 2 == 1:
            pending, pending_line = line[:-1] + " ", start
            continue
        pending = ""
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                problems.append((start, line))
                section = "?"
                continue
            section = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if not eq or not key.strip():
            problems.append((start, line))
            continue
        entries.append((section, key.strip(), value.strip(), start))
    if pending:
        entries_line = pending.strip()
        key, eq, value = entries_line.partition("=")
        if eq and key.strip():
            entries.append((section, key.strip(), value.strip(), pending_line))
    return entries, problems


# Specifiers with a fixed value for system services (systemd.unit(5), "SPECIFIERS").
_FIXED_SPECIFIERS = {
    "t": "/run", "S": "/var/lib", "C": "/var/cache", "L": "/var/log", "E": "/etc",
    "T": "/tmp", "V": "/var/tmp", "u": "root", "U": "0", "g": "root", "G": "0",
    "h": "/root", "s": "/bin/sh", "%": "%",
}  # fmt: skip
# Specifiers that depend on the host or the boot: no value can be fixed at import time.
_HOST_SPECIFIERS = {
    "H": "host name", "l": "short host name", "q": "pretty host name", "m": "machine ID",
    "b": "boot ID", "v": "kernel release", "a": "architecture", "o": "OS ID",
    "w": "OS version ID", "B": "OS build ID", "W": "OS variant ID", "A": "OS image version",
    "M": "OS image ID", "d": "credentials directory",
}  # fmt: skip


def _unescape_unit(text: str, *, slashes: bool) -> str:
    """Undo systemd's unit-name escaping: \\xNN, and "-" meaning "/" when `slashes`."""
    out = []
    i = 0
    while i < len(text):
        match = re.match(r"\\x([0-9a-fA-F]{2})", text[i : i + 4])
        if match:
            out.append(chr(int(match.group(1), 16)))
            i += 4
        else:
            out.append("/" if slashes and text[i] == "-" else text[i])
            i += 1
    return "".join(out)


@dataclass
class _SystemdName:
    """The names systemd derives from a unit's file name, for specifiers and for the pidone name."""

    full: str  # "getty@tty1.service"
    source: str = ""  # the file's path, for %y and %Y

    @property
    def stem(self) -> str:
        return self.full.rsplit(".", 1)[0]

    @property
    def prefix(self) -> str:
        return self.stem.partition("@")[0]

    @property
    def instance(self) -> str:
        return self.stem.partition("@")[2]

    @property
    def template(self) -> bool:
        return "@" in self.stem and not self.instance

    def specifiers(self) -> dict[str, str]:
        """Return the value of each specifier known at import time."""
        prefix, instance = self.prefix, self.instance
        last = prefix.rsplit("-", 1)[-1]
        unescaped = _unescape_unit(instance or prefix, slashes=True)
        values = dict(_FIXED_SPECIFIERS)
        values.update({
            "n": self.full, "N": self.stem, "p": prefix, "P": _unescape_unit(prefix, slashes=True),
            "j": last, "J": _unescape_unit(last, slashes=True),
        })  # fmt: skip
        if not self.template:
            values.update({
                "i": instance, "I": _unescape_unit(instance, slashes=True),
                "f": unescaped if unescaped.startswith("/") else "/" + unescaped,
            })  # fmt: skip
        else:  # pidone's own template (SPEC §12): its specifiers, and %% for a literal %
            values.update({"i": "%i", "I": "%i", "f": "/%i", "n": "%n", "N": "%n", "%": "%%"})
        if self.source.startswith("/"):
            values["y"] = self.source
            values["Y"] = os.path.dirname(self.source)
        return values


class _SystemdImport:
    """Builds one pidone unit from one systemd service file."""

    def __init__(self, text: str, name: str, source: str):
        base = os.path.basename(name) or "unit.service"
        suffix = base.rpartition(".")[2] if "." in base else ""
        full = base if suffix == "service" or suffix in _OTHER_UNIT_TYPES else base + ".service"
        self.names = _SystemdName(full, source)
        self.text = text
        self.source = source or full
        self.notes = _Notes()
        self.specifiers = self.names.specifiers()
        self.directives: dict[tuple[str, str], list[str]] = {}
        self.order: list[tuple[str, str]] = []
        self.handled: set[tuple[str, str]] = set()
        self.unit: dict[str, Any] = {}
        self.service: dict[str, Any] = {}
        self.environment: dict[str, str] = {}
        self.env_files: list[str] = []

    # -- reading

    def result(self) -> ImportResult:
        original = self.names.stem
        name = sanitize_name(_unescape_unit(original, slashes=False))
        suffix = self.names.full.rsplit(".", 1)[1]
        if suffix != "service":
            return self._fail(name, f"a .{suffix} unit cannot be converted: {_OTHER_UNIT_TYPES.get(suffix, 'pidone only runs services')}")
        _name_note(self.notes, _unescape_unit(original, slashes=False), name)
        entries, problems = _systemd_lines(self.text)
        for number, line in problems:
            self.notes.drop(f"line {number}", line, "not a [Section] header or a Key=Value line; systemd ignores it too")
        for section, key, value, _line in entries:
            slot = (section, key)
            if slot not in self.directives:
                self.directives[slot] = []
                self.order.append(slot)
            self.directives[slot].append(value)
        if self.names.template:
            self.notes.drop(
                "name", self.names.full,
                f"a template: it becomes pidone's template {self.names.prefix}@ (%I is written %i, %f /%i, %n the"
                f" instance's name without .service); list its instances with instances = [...]",
            )  # fmt: skip
        try:
            command = self._command()
        except _Unconvertible as exc:
            return self._fail(name, str(exc))
        self._unit_section()
        self._exec_context()
        self._service_behaviour()
        self._limits()
        self._output()
        self._leftovers()
        self.service = {"command": command, **self.service}
        document: dict[str, Any] = {}
        if "description" in self.unit:
            document["description"] = self.unit.pop("description")
        document["service"] = self._service_table()
        for table in ("dependencies", "ready", "restart", "stop", "log", "limits"):
            if self.unit.get(table):
                document[table] = self.unit[table]
        return ImportResult(name, document, list(self.notes), self.source)

    def _fail(self, name: str, why: str) -> ImportResult:
        return ImportResult(name, None, list(self.notes), self.source, error=why)

    def _service_table(self) -> dict[str, Any]:
        order = (
            "command", "type", "critical", "working_directory", "user", "group", "supplementary_groups",
            "environment_files", "umask", "oom_score_adjust",
        )  # fmt: skip
        table = {key: self.service[key] for key in order if key in self.service}
        if self.environment:
            table["environment"] = dict(self.environment)
        return table

    def table(self, name: str) -> dict[str, Any]:
        return self.unit.setdefault(name, {})

    def values(self, section: str, key: str, *, resets: bool = True) -> list[str]:
        """Return every value of `key` in `section`, after the last empty one (which resets a list)."""
        self.handled.add((section, key))
        values = self.directives.get((section, key), [])
        if resets and "" in values:
            values = values[len(values) - values[::-1].index("") :]
        return values

    def last(self, section: str, key: str) -> str | None:
        """Return the last value of `key` in `section` (an empty value counts as absent)."""
        self.handled.add((section, key))
        values = self.directives.get((section, key), [])
        return values[-1] if values and values[-1] != "" else None

    def expand(self, directive: str, value: str) -> str:
        """Return `value` with its specifiers replaced; note those that have no fixed value."""

        def replace(match: re.Match[str]) -> str:
            letter = match.group(1)
            if letter in self.specifiers:
                return self.specifiers[letter]
            if self.names.template:
                kept = "%" + match.group(0)  # a literal %X in a pidone template
            else:
                kept = match.group(0)
            what = _HOST_SPECIFIERS.get(letter)
            if what:
                self.notes.drop(
                    directive, value, f"%{letter} ({what}) has no value before the container runs; it is left as is"
                )
            else:
                self.notes.drop(directive, value, f"%{letter} is not a specifier pidone knows; it is left as is")
            return kept

        return re.sub(r"%(.)", replace, value, flags=re.S)

    # -- [Service] ExecStart and friends

    def _command(self) -> list[str]:
        """Return the pidone command for ExecStart (and ExecStartPre); raise _Unconvertible."""
        starts = self._commands("ExecStart")
        if not starts:
            raise _Unconvertible("no ExecStart=: there is nothing to run")
        type_value = self.last("Service", "Type") or "simple"
        unit_type = _SYSTEMD_TYPES.get(type_value, ("simple", None))[0]
        if len(starts) > 1 and unit_type != "oneshot":
            raw = self.values("Service", "ExecStart")
            self.notes.drop(
                "ExecStart", raw[-1], "only Type=oneshot services may have more than one ExecStart=; the first one is kept"
            )
            starts = starts[:1]
        pres = self._commands("ExecStartPre")
        env_fixed = not self.values("Service", "EnvironmentFile") and not self.values("Service", "PassEnvironment")
        static_env = self._static_environment() if env_fixed else None
        chain = [*pres, *starts]
        for directive, prefixes, words, value in chain:
            self._prefix_notes(directive, prefixes, value, chained=len(chain) > 1, main=directive == "ExecStart")
        if len(chain) == 1:
            _directive, prefixes, words, _value = chain[0]
            expand = ":" not in prefixes and "|" not in prefixes
            names = _variables(words) if expand else []
            if static_env is not None and all(n in static_env for n in names):
                argv = _substitute(words, static_env) if names else list(words)
                if argv and all(argv) and "|" not in prefixes:
                    return argv
        return self._shell(chain)

    def _commands(self, directive: str) -> list[tuple[str, str, list[str], str]]:
        """Return [(directive, prefixes, words, value)] for each command of `directive`."""
        out = []
        for value in self.values("Service", directive):
            expanded = self.expand(directive, value)
            prefixes = re.match(r"[-@:+!|]*", expanded).group(0)  # type: ignore[union-attr]
            try:
                words, raws = _split_systemd(expanded[len(prefixes) :])
            except ValueError as exc:
                self.notes.drop(directive, value, f"cannot be split into words: {exc}")
                continue
            # A lone ";" separates commands (old systemd syntax); "\;" is a literal ";".
            command: list[str] = []
            for word, raw in [*zip(words, raws), (None, ";")]:
                if raw == ";":
                    if "@" in prefixes and len(command) > 1:
                        command = [command[0], *command[2:]]  # argv[0] cannot be chosen in pidone
                    if command:
                        out.append((directive, prefixes, command, value))
                    command = []
                else:
                    command.append(word)  # type: ignore[arg-type]
            if not words:
                self.notes.drop(directive, value, "an empty command")
        return out

    def _prefix_notes(self, directive: str, prefixes: str, value: str, *, chained: bool, main: bool) -> None:
        if "-" in prefixes and (main and not chained):
            self.notes.drop(
                directive, value, 'the "-" prefix: pidone counts a non-zero exit as a failure; make the command exit 0'
            )
        if "@" in prefixes:
            self.notes.drop(
                directive, value,
                'the "@" prefix: pidone passes the program as its own argv[0]; the second word, the argv[0]'
                " systemd would have passed, is left out",
            )  # fmt: skip
        if "+" in prefixes or "!" in prefixes:
            self.notes.drop(
                directive, value, 'the "+"/"!" prefix: pidone runs every command of a unit with the unit\'s user and limits'
            )
        if "|" in prefixes:
            self.notes.approx(directive, value, f"runs through {SHELL} -c, not the user's login shell")

    def _static_environment(self) -> dict[str, str]:
        """Return the environment systemd would expand ExecStart= with, when it is all known here."""
        env = {}
        for value in self.values("Service", "Environment"):
            for key, text in self._assignments(value, note=False):
                env[key] = text
        return env

    def _shell(self, chain: list[tuple[str, str, list[str], str]]) -> list[str]:
        """Return a `/bin/sh -c` command that runs `chain` in order, stopping at the first failure."""
        parts = []
        variables: list[str] = []
        for index, (directive, prefixes, words, _value) in enumerate(chain):
            expand = ":" not in prefixes
            if expand:
                variables.extend(_variables(words))
            text = " ".join(_render_word(word, expand) for word in words)
            last = index == len(chain) - 1
            if "-" in prefixes and len(chain) > 1:
                text = f"{{ {text} || :; }}"
            elif last:
                text = f"exec {text}"
            parts.append(text)
        script = " && ".join(parts)
        reasons = []
        pres = sum(1 for d, _p, _w, _v in chain if d == "ExecStartPre")
        if pres:
            reasons.append(f"the ExecStartPre= command{'s run' if pres > 1 else ' runs'} first, in the same shell")
        if len(chain) - pres > 1:
            reasons.append(f"the {len(chain) - pres} ExecStart= commands run in turn")
        if len(chain) > 1:
            reasons.append('the chain stops at the first failure, except after a command with the "-" prefix, as systemd does')
        variables = list(dict.fromkeys(variables))
        if variables:
            names = ", ".join("$" + name for name in variables)
            reasons.append(f"the shell expands {names} at each start, from the unit's environment (pidone itself never runs a shell)")
            provided = [name for name in variables if name in _SYSTEMD_PROVIDED]
            for name in provided:
                self.notes.drop(f"${name}", None, f"systemd sets it for the service ({_SYSTEMD_PROVIDED[name]}); pidone does not")
        if any(not word for _d, _p, words, _v in chain for word in words):
            reasons.append("an empty argument can only be passed through a shell")
        self.notes.approx(
            "ExecStart", chain[-1][3],
            f"runs as {SHELL} -c {script!r}: " + "; ".join(reasons or ["systemd's command syntax needs a shell here"])
            + f"; the image needs {SHELL}",
        )  # fmt: skip
        return [SHELL, "-c", script]

    # -- [Unit]

    def _unit_section(self) -> None:
        description = self.last("Unit", "Description")
        if description is not None:
            self.unit["description"] = self.expand("Description", description)
        deps: dict[str, list[str]] = {"requires": [], "wants": [], "after": []}
        for key, target, how in (
            ("Requires", "requires", None),
            ("BindsTo", "requires", "pidone's requires also stops this unit when the other stops, but does not restart it with the other"),
            ("Requisite", "requires", "pidone starts the required unit instead of failing when it is not already running"),
            ("Wants", "wants", None),
            ("Upholds", "wants", "pidone does not restart the other unit on this one's behalf; give it its own restart policy"),
            ("After", "after", None),
        ):  # fmt: skip
            for value in self.values("Unit", key):
                for dep in self._dependency_names(key, value):
                    if how:
                        self.notes.approx(key, dep, f"written as {target}: {how}")
                    deps[target].append(dep)
        requires = list(dict.fromkeys(deps["requires"]))
        wants = [d for d in dict.fromkeys(deps["wants"]) if d not in requires]
        after = [d for d in dict.fromkeys(deps["after"]) if d not in requires and d not in wants]
        table = {key: names for key, names in (("requires", requires), ("wants", wants), ("after", after)) if names}
        if table:
            self.unit["dependencies"] = table
        for value in self.values("Unit", "Before"):
            for dep in self._dependency_names("Before", value, quiet=True):
                self.notes.drop(
                    "Before", dep,
                    f"pidone orders a unit only by its own dependencies: add after = [\"{self._own_name()}\"] to {dep}",
                )  # fmt: skip
        self.last("Unit", "DefaultDependencies")  # pidone has no implicit dependencies: nothing to carry
        for key in ("StartLimitIntervalSec", "StartLimitBurst"):
            self.handled.add(("Unit", key))
        self._start_limits()
        for key in ("FailureAction", "SuccessAction"):
            value = self.last("Unit", key)
            if value is None or value == "none":
                continue
            if value.startswith(("exit", "poweroff", "reboot", "halt", "kexec", "soft-reboot")):
                self.service["critical"] = True
                when = "fails" if key == "FailureAction" else "exits successfully"
                self.notes.approx(
                    key, value,
                    f"written as critical = true: the container stops when the unit ends for good"
                    f" (for any reason, not only when it {when}), with its exit status",
                )  # fmt: skip
            else:
                self.notes.drop(key, value, "pidone has no such action")

    def _own_name(self) -> str:
        return sanitize_name(_unescape_unit(self.names.stem, slashes=False))

    def _dependency_names(self, key: str, value: str, *, quiet: bool = False) -> list[str]:
        """Return the pidone names of the services listed in one dependency directive; note the rest."""
        names = []
        try:
            words, _raws = _split_systemd(self.expand(key, value))
        except ValueError as exc:
            self.notes.drop(key, value, f"cannot be split into unit names: {exc}")
            return []
        for word in words:
            base, dot, suffix = word.rpartition(".")
            if not dot or suffix not in _OTHER_UNIT_TYPES and suffix != "service":
                base, suffix = word, "service"
            if suffix != "service":
                if not quiet:
                    self.notes.drop(key, word, _dependency_reason(word, suffix))
                continue
            name = sanitize_name(_unescape_unit(base, slashes=False))
            if name != base:
                self.notes.approx(key, word, f"written as {name!r} (pidone's unit-name rule)")
            if name == self._own_name():
                continue
            names.append(name)
        return names

    def _start_limits(self) -> None:
        old_interval, old_burst = self.last("Service", "StartLimitInterval"), self.last("Service", "StartLimitBurst")
        interval = self.last("Unit", "StartLimitIntervalSec") or old_interval
        burst = self.last("Unit", "StartLimitBurst") or old_burst
        key = "StartLimitIntervalSec"
        if interval is not None:
            try:
                seconds = _timespan(interval)
            except ValueError as exc:
                self.notes.drop(key, interval, str(exc))
                seconds = -1.0
            if seconds == 0:
                self.table("restart")["max_retries"] = 0
                return
            if seconds > 0:
                self.notes.approx(
                    key, interval,
                    "pidone counts consecutive failures, reset by a run of [restart] reset_after (60 s), not starts in a window",
                )  # fmt: skip
        if burst is not None:
            try:
                count = int(burst)
                if not 0 <= count <= _MAX_RETRIES:
                    raise ValueError
            except ValueError:
                self.notes.drop("StartLimitBurst", burst, f"not a number from 0 to {_MAX_RETRIES}")
                return
            retries = max(count - 1, 1)
            self.table("restart")["max_retries"] = retries
            self.notes.approx(
                "StartLimitBurst", burst,
                f"written as [restart] max_retries = {retries}: restarts after consecutive failures"
                " before pidone gives up, not starts within an interval",
            )  # fmt: skip

    # -- [Service] execution context

    def _exec_context(self) -> None:
        for value in self.values("Service", "Environment"):
            for key, text in self._assignments(value, note=True):
                self.environment.pop(key, None)
                self.environment[key] = text
        for value in self.values("Service", "EnvironmentFile"):
            path = self.expand("EnvironmentFile", value)
            bare = path.removeprefix("-")
            if not bare.startswith("/"):
                self.notes.drop("EnvironmentFile", value, "not an absolute path")
                continue
            self.env_files.append(path)
        if self.env_files:
            self.service["environment_files"] = self.env_files
        for key, field_name in (("User", "user"), ("Group", "group")):
            value = self.last("Service", key)
            if value is None:
                continue
            try:
                self.service[field_name] = _account(self.expand(key, value))
            except ValueError as exc:
                self.notes.drop(key, value, str(exc))
        if self.last("Service", "DynamicUser") is not None:
            value = self.last("Service", "DynamicUser") or ""
            if _safe_bool(value):
                self.notes.drop(
                    "DynamicUser", value,
                    "pidone has no dynamic users: create a user in the image and set [service] user"
                    + ("" if "user" in self.service else " (the unit now runs as pidone's own user)"),
                )  # fmt: skip
        groups: list[str | int] = []
        for value in self.values("Service", "SupplementaryGroups"):
            for word in _words_or_split(self.expand("SupplementaryGroups", value)):
                try:
                    groups.append(_account(word))
                except ValueError as exc:
                    self.notes.drop("SupplementaryGroups", word, str(exc))
        if groups:
            self.service["supplementary_groups"] = list(dict.fromkeys(groups))
            if "user" in self.service:
                self.notes.approx(
                    "SupplementaryGroups", " ".join(map(str, groups)),
                    "pidone's list replaces the user's own groups, systemd's adds to them; add the user's groups if it needs them",
                )  # fmt: skip
        self._working_directory()
        for key, field_name, parse in (("UMask", "umask", _umask), ("OOMScoreAdjust", "oom_score_adjust", _oom)):
            value = self.last("Service", key)
            if value is not None:
                try:
                    self.service[field_name] = parse(value)
                except ValueError as exc:
                    self.notes.drop(key, value, str(exc))
        for key in ("PassEnvironment",):
            for value in self.values("Service", key):
                self.notes.approx(
                    key, value, "pidone passes its whole environment to services (unless clear_environment), these included"
                )
        for value in self.values("Service", "UnsetEnvironment"):
            self.notes.drop(
                "UnsetEnvironment", value,
                "pidone cannot unset single variables; set clear_environment = true and list what the service needs",
            )  # fmt: skip

    def _assignments(self, value: str, *, note: bool) -> list[tuple[str, str]]:
        """Return the KEY=VALUE pairs of one Environment= line."""
        try:
            words, _raws = _split_systemd(self.expand("Environment", value) if note
                                          else _expand_quiet(value, self.specifiers, self.names.template))
        except ValueError as exc:
            if note:
                self.notes.drop("Environment", value, f"cannot be split into assignments: {exc}")
            return []
        pairs = []
        for word in words:
            key, eq, text = word.partition("=")
            if not eq or not ENV_KEY_RE.fullmatch(key):
                if note:
                    self.notes.drop("Environment", word, "not a NAME=VALUE assignment pidone accepts (names are [A-Za-z_][A-Za-z0-9_]*)")
                continue
            if "\0" in text:
                if note:
                    self.notes.drop("Environment", word, "a value cannot hold a NUL character")
                continue
            pairs.append((key, text))
        return pairs

    def _working_directory(self) -> None:
        value = self.last("Service", "WorkingDirectory")
        if value is None:
            return
        path = self.expand("WorkingDirectory", value)
        optional = path.startswith("-")
        path = path.removeprefix("-")
        if path == "~":
            if "user" not in self.service:
                self.service["working_directory"] = "/root"
            return  # with a user, pidone's default is that user's home, as systemd's "~"
        if not path.startswith("/"):
            self.notes.drop("WorkingDirectory", value, "not an absolute path")
            return
        self.service["working_directory"] = path
        if optional:
            self.notes.approx(
                "WorkingDirectory", value, 'the "-" prefix: pidone fails the start when the directory is missing'
            )

    # -- [Service] type, restart, timeouts, signals

    def _service_behaviour(self) -> None:
        type_value = self.last("Service", "Type")
        unit_type, why = _SYSTEMD_TYPES.get(type_value or "simple", ("simple", None))
        if type_value is not None and type_value not in _SYSTEMD_TYPES:
            why = "not a systemd type pidone knows"
        if unit_type != "simple":
            self.service["type"] = unit_type
        if why:
            self.notes.approx("Type", type_value, f'written as type = "{unit_type}": {why}')
        if type_value == "forking":
            pid_file = self.last("Service", "PIDFile")
            if pid_file is not None:
                self.notes.drop("PIDFile", pid_file, "pidone supervises the process it started, never one named in a file")
        else:
            for key in ("PIDFile", "GuessMainPID"):
                value = self.last("Service", key)
                if value is not None:
                    self.notes.drop(key, value, "pidone supervises the process it started")
        self._restart(unit_type)
        self._timeouts()
        self._signals(type_value)
        remain = self.last("Service", "RemainAfterExit")
        if remain is not None and _safe_bool(remain) and unit_type != "oneshot":
            self.notes.drop("RemainAfterExit", remain, "only a oneshot unit stays done after its process exits")
        access = self.last("Service", "NotifyAccess")
        if access is not None and access != "all":
            self.notes.approx(
                "NotifyAccess", access, "pidone accepts notifications from every process of the unit (as NotifyAccess=all)"
            )
        for key, good, why in (
            ("KillMode", "control-group", "pidone signals the unit's process group, and SIGKILLs everything the unit started at the stop timeout (as KillMode=control-group)"),
            ("SendSIGKILL", "yes", "pidone always SIGKILLs what is left at the stop timeout"),
            ("IgnoreSIGPIPE", "no", "services start with default signal dispositions: SIGPIPE is not ignored"),
        ):  # fmt: skip
            value = self.last("Service", key)
            if value is not None and value.lower() != good and not (good in ("yes", "no") and _safe_bool(value) == (good == "yes")):
                self.notes.drop(key, value, why)

    def _restart(self, unit_type: str) -> None:
        value = self.last("Service", "Restart")
        restart = self.table("restart")
        if value is None:
            if unit_type != "oneshot":
                restart["policy"] = "no"  # systemd's default; pidone's own would be on-failure
        else:
            policy, why = _RESTART_POLICIES.get(value, ("on-failure", "not a Restart= value pidone knows"))
            if unit_type == "oneshot" and policy == "always":
                self.notes.drop("Restart", value, "a oneshot unit cannot restart always; written as on-failure")
                policy = "on-failure"
            if policy != "no" or unit_type != "oneshot":
                restart["policy"] = policy
            if why:
                self.notes.approx("Restart", value, f'written as policy = "{policy}": {why}')
        delay = self._duration("Service", "RestartSec", infinite=None)
        if delay is not None:
            restart["delay"] = _seconds(delay)
        max_delay = self._duration("Service", "RestartMaxDelaySec", infinite=None)
        if max_delay is not None:
            restart["max_delay"] = _seconds(max(max_delay, DEFAULT_RESTART_DELAY if delay is None else delay))
        elif delay is not None:
            restart["max_delay"] = _seconds(delay)  # systemd waits the same delay each time
        steps = self.last("Service", "RestartSteps")
        if steps is not None:
            self.notes.approx("RestartSteps", steps, "pidone doubles the delay after each failure, up to max_delay")
        for key in ("RestartPreventExitStatus", "RestartForceExitStatus", "SuccessExitStatus"):
            for status in self.values("Service", key):
                self.notes.drop(key, status, "pidone treats exit status 0 as success and every other as a failure")

    def _duration(self, section: str, key: str, *, infinite: float | None, value: str | None = None) -> float | None:
        """Return the seconds of time-span `key` (`infinite` for "infinity"), or None when absent or wrong (noted)."""
        text = value if value is not None else self.last(section, key)
        if text is None:
            return None
        try:
            seconds = _timespan(text)
        except ValueError as exc:
            self.notes.drop(key, text, str(exc))
            return None
        if seconds is None:
            if infinite is None:
                self.notes.drop(key, text, "pidone has no infinite value here")
            return infinite
        if seconds > MAX_DURATION:
            self.notes.approx(key, text, "pidone's durations go up to one year; written as one year")
            return MAX_DURATION
        return seconds

    def _timeouts(self) -> None:
        both = self.last("Service", "TimeoutSec")
        start_text = self.last("Service", "TimeoutStartSec") or both
        stop_text = self.last("Service", "TimeoutStopSec") or both
        if start_text is not None:
            key = "TimeoutStartSec" if self.last("Service", "TimeoutStartSec") else "TimeoutSec"
            seconds = self._duration("Service", key, infinite=0.0, value=start_text)
            if seconds is not None:
                self.table("ready")["timeout"] = _seconds(seconds)  # 0: no limit, for systemd and pidone alike
        if stop_text is not None:
            key = "TimeoutStopSec" if self.last("Service", "TimeoutStopSec") else "TimeoutSec"
            seconds = self._duration("Service", key, infinite=-1.0, value=stop_text)
            if seconds is not None:
                if seconds in (0.0, -1.0):  # systemd: 0 and infinity both disable the timeout
                    self.notes.approx(
                        key, stop_text, "pidone has no endless stop timeout (its 0 means SIGKILL at once); written as one year"
                    )
                    seconds = MAX_DURATION
                self.table("stop")["timeout"] = _seconds(seconds)
        for key in ("TimeoutAbortSec", "TimeoutStartFailureMode", "TimeoutStopFailureMode", "RuntimeMaxSec", "RuntimeRandomizedExtraSec", "WatchdogSec"):
            value = self.last("Service", key)
            if value is not None:
                why = (
                    "pidone has no watchdog timeout (WATCHDOG=1 is accepted but not timed); use a [health] probe"
                    if key == "WatchdogSec" else "pidone has no equivalent"
                )  # fmt: skip
                self.notes.drop(key, value, why)

    def _signals(self, type_value: str | None) -> None:
        stop = self.table("stop")
        kill = self.last("Service", "KillSignal")
        if kill is not None:
            try:
                stop["signal"] = _signal_name(kill)
            except ValueError as exc:
                self.notes.drop("KillSignal", kill, str(exc))
        for key in ("RestartKillSignal", "FinalKillSignal", "WatchdogSignal"):
            value = self.last("Service", key)
            if value is not None:
                self.notes.drop(key, value, "pidone stops with [stop] signal, then SIGKILL")
        reloads = self.values("Service", "ExecReload")
        reload_signal = self.last("Service", "ReloadSignal")
        if type_value == "notify-reload":
            try:
                stop["reload_signal"] = _signal_name(reload_signal or "SIGHUP")
            except ValueError as exc:
                self.notes.drop("ReloadSignal", reload_signal, str(exc))
        elif reload_signal is not None:
            self.notes.drop("ReloadSignal", reload_signal, "only used by Type=notify-reload")
        signals = [_kill_mainpid(self._kill_words("ExecReload", value) or []) for value in reloads]
        kills = [index for index, name in enumerate(signals) if name]
        for index, value in enumerate(reloads):
            if kills and index == kills[-1]:
                stop["reload_signal"] = signals[index]
            else:
                self.notes.drop(
                    "ExecReload", value,
                    "pidone reloads a unit only by sending it a signal ([stop] reload_signal, sent by `pidone reload UNIT`)",
                )  # fmt: skip
        stops = self.values("Service", "ExecStop")
        for value in stops:
            words = self._kill_words("ExecStop", value)
            name = _kill_mainpid(words) if words is not None else None
            if name and len(stops) == 1 and kill is None:
                stop["signal"] = name
                self.notes.approx("ExecStop", value, f'written as [stop] signal = "{name}"')
            else:
                self.notes.drop(
                    "ExecStop", value,
                    "pidone stops a unit by sending [stop] signal, then SIGKILL after [stop] timeout; it runs no stop command",
                )  # fmt: skip
        for key, why in (
            ("ExecStartPost", "pidone runs only the main command (and ExecStartPre= before it); run it from the service or another unit"),
            ("ExecStopPost", "pidone runs no command after a unit stops"),
            ("ExecCondition", "pidone starts every unit unconditionally"),
        ):  # fmt: skip
            for value in self.values("Service", key):
                self.notes.drop(key, value, why)

    def _kill_words(self, directive: str, value: str) -> list[str] | None:
        expanded = self.expand(directive, value)
        body = expanded.lstrip("-@:+!|")
        try:
            return _split_systemd(body)[0]
        except ValueError:
            return None

    # -- [Service] limits and privileges

    def _limits(self) -> None:
        limits = self.table("limits")
        for (section, key) in self.order:
            if section != "Service" or not key.startswith("Limit"):
                continue
            value = self.last(section, key)
            if value is None:
                continue
            name = key[len("Limit") :].lower()
            if name not in RLIMITS:
                self.notes.drop(key, value, "no such resource limit on this system (pidone names them after RLIMIT_*)")
                continue
            try:
                limits[name] = _rlimit(name, value)
            except ValueError as exc:
                self.notes.drop(key, value, str(exc))
                continue
            if name == "nofile" and "infinity" in (limits[name] if isinstance(limits[name], list) else [limits[name]]):
                limits[name] = _replace_infinity(limits[name], NOFILE_INFINITY)
                self.notes.approx(
                    key, value, f"Linux refuses an infinite nofile limit (systemd caps it at fs.nr_open); written as {NOFILE_INFINITY}"
                )
        value = self.last("Service", "NoNewPrivileges")
        if value is not None:
            try:
                if _boolean(value):
                    limits["no_new_privileges"] = True
            except ValueError as exc:
                self.notes.drop("NoNewPrivileges", value, str(exc))
        self._capabilities(limits)

    def _capabilities(self, limits: dict[str, Any]) -> None:
        everything = set(CAPABILITIES)
        current: set[str] | None = None  # None: the full set, unchanged
        for value in self.directives.get(("Service", "CapabilityBoundingSet"), []):
            words = value.split()
            if not words:
                current = set()
                continue
            invert = words[0].startswith("~")
            words[0] = words[0].removeprefix("~")
            listed = set()
            for word in filter(None, words):
                cap = word.upper() if word.upper().startswith("CAP_") else "CAP_" + word.upper()
                if cap in CAPABILITIES:
                    listed.add(cap)
                else:
                    self.notes.drop("CapabilityBoundingSet", word, "not a capability pidone knows")
            if invert:
                current = (everything if current is None else current) - listed
                if not listed:
                    current = None
            else:
                current = (set() if current is None else current) | listed
        self.handled.add(("Service", "CapabilityBoundingSet"))
        if current is not None and current != everything:
            limits["capabilities"] = sorted(current, key=CAPABILITIES.__getitem__)
        for value in self.values("Service", "AmbientCapabilities"):
            self.notes.drop(
                "AmbientCapabilities", value,
                "pidone sets no ambient capabilities: a service running as root keeps its bounding set;"
                " for another user, give the binary file capabilities (setcap) in the image",
            )  # fmt: skip

    # -- [Service] output

    def _output(self) -> None:
        files = {}
        for key in ("StandardOutput", "StandardError"):
            value = self.last("Service", key)
            if value is None:
                continue
            kind, _colon, path = value.partition(":")
            if kind in ("journal", "syslog", "kmsg", "journal+console", "syslog+console", "kmsg+console", "inherit"):
                continue  # pidone's stdout is the container's log: the nearest thing to the journal
            if kind in ("append", "file", "truncate") and path.startswith("/"):
                files[key] = (path, value)
                continue
            if kind == "null":
                self.notes.drop(key, value, "pidone always passes a service's output on to its own stdout")
            else:
                self.notes.drop(key, value, "pidone passes a service's output on to its own stdout, and optionally a [log] file")
        paths = list(dict.fromkeys(path for path, _value in files.values()))
        if paths:
            self.table("log")["file"] = paths[0]
            for key, (path, value) in files.items():
                if path != paths[0]:
                    self.notes.drop(key, value, f"pidone writes both streams to one [log] file, {paths[0]}")
                else:
                    self.notes.approx(
                        key, value,
                        "written as [log] file: pidone appends both streams there, rotates it, and still passes them to its stdout",
                    )  # fmt: skip
        value = self.last("Service", "StandardInput")
        if value is not None and value != "null":
            self.notes.drop("StandardInput", value, "a service's stdin is /dev/null")

    # -- everything else

    def _leftovers(self) -> None:
        for section, key in self.order:
            if (section, key) in self.handled:
                continue
            for value in self.directives[(section, key)]:
                self.notes.drop(key, value, _leftover_reason(section, key))


class _Unconvertible(Exception):
    """The input cannot be turned into a unit at all; the message says why."""


def _safe_bool(text: str) -> bool:
    try:
        return _boolean(text)
    except ValueError:
        return False


def _oom(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("not an integer") from None
    if not -1000 <= number <= 1000:
        raise ValueError("must be from -1000 to 1000")
    return number


def _expand_quiet(value: str, specifiers: dict[str, str], template: bool = False) -> str:
    kept = "%%" if template else "%"  # a literal % in a pidone template is %%
    return re.sub(r"%(.)", lambda m: specifiers.get(m.group(1), kept + m.group(1)), value, flags=re.S)


_SYSTEMD_TYPES: dict[str, tuple[str, str | None]] = {
    "simple": ("simple", None),
    "exec": ("simple", None),
    "notify": ("notify", None),
    "notify-reload": ("notify", None),
    "oneshot": ("oneshot", None),
    "forking": (
        "simple",
        "pidone supervises the process it starts, so it must stay in the foreground: add the daemon's"
        " no-daemonize flag (e.g. --foreground, --nodaemon, -D, -f, 'daemon off;') to the command",
    ),
    "dbus": ("simple", "pidone does not watch the D-Bus name; the unit is ready once it runs (add a [ready] probe if needed)"),
    "idle": ("simple", "pidone does not wait for other jobs before starting it"),
}

_RESTART_POLICIES: dict[str, tuple[str, str | None]] = {
    "no": ("no", None),
    "on-failure": ("on-failure", None),
    "always": ("always", None),
    "on-abnormal": ("on-failure", "pidone also restarts after a non-zero exit status, not only after a signal or timeout"),
    "on-abort": ("on-failure", "pidone also restarts after a non-zero exit status or a timeout, not only after a signal"),
    "on-watchdog": ("on-failure", "pidone has no watchdog timeout; it restarts after any failure (a failed [health] probe included)"),
    "on-success": ("always", "pidone has no restart-after-a-clean-exit-only policy; it now also restarts after failures"),
}

_OTHER_UNIT_TYPES = {
    "target": "pidone has no targets",
    "socket": "pidone has no socket activation: the service must open its own listening socket",
    "timer": "pidone has no timers: run a scheduler (e.g. cron) as a unit",
    "path": "pidone has no path units",
    "mount": "mounts are the container runtime's job (volumes)",
    "automount": "mounts are the container runtime's job (volumes)",
    "swap": "swap is the host's business",
    "device": "pidone does not track devices",
    "slice": "cgroups are set on the container, not per unit",
    "scope": "cgroups are set on the container, not per unit",
}

_EARLY_TARGETS = {
    "network.target", "network-online.target", "network-pre.target", "nss-lookup.target", "nss-user-lookup.target",
    "local-fs.target", "local-fs-pre.target", "remote-fs.target", "remote-fs-pre.target", "sysinit.target",
    "basic.target", "multi-user.target", "graphical.target", "default.target", "time-sync.target", "time-set.target",
    "sockets.target", "paths.target", "timers.target", "slices.target", "swap.target", "shutdown.target",
    "rpcbind.target", "cryptsetup.target", "getty.target", "getty-pre.target", "emergency.target", "rescue.target",
    "systemd-journald.socket", "systemd-journald-dev-log.socket", "syslog.socket",
}  # fmt: skip

# Variables systemd sets for a service and pidone does not.
_SYSTEMD_PROVIDED = {
    "MAINPID": "the main process's PID, for ExecReload= and ExecStop=",
    "RUNTIME_DIRECTORY": "from RuntimeDirectory=", "STATE_DIRECTORY": "from StateDirectory=",
    "CACHE_DIRECTORY": "from CacheDirectory=", "LOGS_DIRECTORY": "from LogsDirectory=",
    "CONFIGURATION_DIRECTORY": "from ConfigurationDirectory=", "CREDENTIALS_DIRECTORY": "from LoadCredential=",
    "INVOCATION_ID": "an ID of each start", "LISTEN_FDS": "socket activation", "LISTEN_PID": "socket activation",
    "LISTEN_FDNAMES": "socket activation", "JOURNAL_STREAM": "the journal", "WATCHDOG_USEC": "WatchdogSec=",
    "WATCHDOG_PID": "WatchdogSec=", "SERVICE_RESULT": "ExecStopPost=", "EXIT_CODE": "ExecStopPost=",
    "EXIT_STATUS": "ExecStopPost=", "MONITOR_SERVICE_RESULT": "OnFailure= units", "TRIGGER_UNIT": "triggering units",
    "SYSTEMD_EXEC_PID": "the PID it started", "TERM": "services with a TTY",
}  # fmt: skip


def _dependency_reason(word: str, suffix: str) -> str:
    """Return why dependency `word` (a non-service unit) was left out."""
    if word in _EARLY_TARGETS:
        return "a systemd boot milestone: in a container the system is up (network, file systems, time) before pidone starts"
    if suffix == "target":
        return "pidone has no targets; list the services the target groups instead"
    return _OTHER_UNIT_TYPES[suffix]


_SANDBOXING = {
    "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths", "ExecPaths", "NoExecPaths", "TemporaryFileSystem",
    "BindPaths", "BindReadOnlyPaths", "MountFlags", "DevicePolicy", "DeviceAllow", "IPAddressAllow",
    "IPAddressDeny", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC", "RootDirectory", "RootImage",
    "RootImageOptions", "RootHash", "RootVerity", "MountAPIVFS", "KeyringMode", "NetworkNamespacePath",
    "IPCNamespacePath", "SecureBits", "SELinuxContext", "AppArmorProfile", "SmackProcessLabel", "ProcSubset",
    "MountImages", "ExtensionImages", "ExtensionDirectories", "NoNewPrivileges", "UMask", "PAMName",
    "IPIngressFilterPath", "IPEgressFilterPath", "SocketBindAllow", "SocketBindDeny", "NFTSet",
}  # fmt: skip
_SANDBOX_PREFIXES = ("Private", "Protect", "Restrict", "SystemCall")
_CGROUP = {
    "Slice", "Delegate", "TasksMax", "TasksAccounting", "AllowedCPUs", "AllowedMemoryNodes", "DisableControllers",
    "DelegateSubgroup", "CPUShares", "StartupCPUShares", "CPUQuota", "CPUQuotaPeriodSec", "CPUWeight",
    "StartupCPUWeight", "CPUAccounting", "ManagedOOMSwap", "ManagedOOMMemoryPressure",
    "ManagedOOMMemoryPressureLimit", "ManagedOOMPreference", "OOMPolicy", "CoredumpReceive",
}  # fmt: skip
_CGROUP_PREFIXES = ("Memory", "IO", "BlockIO", "Startup")
_SCHEDULING = {
    "Nice", "CPUSchedulingPolicy", "CPUSchedulingPriority", "CPUSchedulingResetOnFork", "CPUAffinity",
    "NUMAPolicy", "NUMAMask", "IOSchedulingClass", "IOSchedulingPriority", "TimerSlackNSec", "Personality",
    "CoredumpFilter",
}  # fmt: skip
_LOGGING_PREFIXES = ("Syslog", "Log")
_DIRECTORIES = {
    "RuntimeDirectory": "/run", "StateDirectory": "/var/lib", "CacheDirectory": "/var/cache",
    "LogsDirectory": "/var/log", "ConfigurationDirectory": "/etc",
}  # fmt: skip
_UNIT_ONLY = {
    "Documentation": "pidone units have no documentation key",
    "Conflicts": "pidone has no conflicts: stop the other unit yourself (pidone stop)",
    "OnFailure": "pidone starts no unit when another fails",
    "OnSuccess": "pidone starts no unit when another succeeds",
    "OnFailureJobMode": "pidone starts no unit when another fails",
    "OnSuccessJobMode": "pidone starts no unit when another succeeds",
    "PartOf": "pidone does not propagate stops and restarts from another unit",
    "PropagatesReloadTo": "pidone does not propagate reloads",
    "ReloadPropagatedFrom": "pidone does not propagate reloads",
    "PropagatesStopTo": "pidone does not propagate stops",
    "StopPropagatedFrom": "pidone does not propagate stops",
    "JoinsNamespaceOf": "namespaces are the container's",
    "RequiresMountsFor": "mounts are the container runtime's job (volumes)",
    "WantsMountsFor": "mounts are the container runtime's job (volumes)",
    "StopWhenUnneeded": "pidone keeps every unit running",
    "RefuseManualStart": "pidone start and stop always work",
    "RefuseManualStop": "pidone start and stop always work",
    "AllowIsolate": "pidone has no isolate",
    "IgnoreOnIsolate": "pidone has no isolate",
    "CollectMode": "pidone keeps failed units in status until they start again",
    "JobTimeoutSec": "pidone has no job queue; see [ready] timeout",
    "JobRunningTimeoutSec": "pidone has no job queue; see [ready] timeout",
    "JobTimeoutAction": "pidone has no job queue",
    "JobTimeoutRebootArgument": "pidone has no job queue",
    "StartLimitAction": "pidone marks the unit failed when it gives up; set critical = true to stop the container then",
    "FailureActionExitStatus": "critical units stop the container with the unit's own exit status",
    "SuccessActionExitStatus": "critical units stop the container with the unit's own exit status",
    "RebootArgument": "pidone does not reboot",
    "SourcePath": "pidone has no generators",
}  # fmt: skip


def _leftover_reason(section: str, key: str) -> str:
    """Return why directive `key` of `section` has no place in a pidone unit."""
    if section == "Install":
        return "pidone runs every unit in its directory; there is nothing to enable or install"
    if section.startswith("X-"):
        return f"[{section}] is an extension section systemd itself ignores"
    if section not in ("Unit", "Service"):
        return f"[{section}] is not a section of a service unit"
    if key.startswith(("Condition", "Assert")):
        return "pidone starts every unit unconditionally; test it in the command (a wrapper script) if it matters"
    if key in _UNIT_ONLY:
        return _UNIT_ONLY[key]
    if key in _DIRECTORIES:
        return f"pidone creates no directories: create the directory under {_DIRECTORIES[key]} in the image, owned by the service's user"
    if key.endswith("DirectoryMode") or key == "RuntimeDirectoryPreserve":
        return "pidone creates no directories"
    if key in _SANDBOXING or key.startswith(_SANDBOX_PREFIXES) or key.startswith(("Capability", "Ambient")):
        return "sandboxing: pidone does not sandbox services; the container runtime does (read-only root, tmpfs, seccomp, capabilities)"
    if key in _SCHEDULING:
        return "pidone does not change scheduling; wrap the command (nice, ionice, chrt, taskset) if it matters"
    if key in _CGROUP or key.startswith(_CGROUP_PREFIXES):
        return "cgroup resource control: set it on the container instead (e.g. docker run --memory, --cpus, --pids-limit)"
    if key.startswith(_LOGGING_PREFIXES):
        return "pidone writes a service's output to its own stdout as 'NAME | line'; there is no journal or syslog"
    if key.startswith(("TTY", "Utmp")):
        return "services have no terminal: stdin is /dev/null and output goes through pidone"
    if key in ("Sockets", "FileDescriptorStoreMax", "FileDescriptorStorePreserve", "NonBlocking", "Accept"):
        return "pidone has no socket activation and keeps no file descriptors for services"
    if key in ("BusName",):
        return "pidone does not watch D-Bus names"
    if key.startswith(("LoadCredential", "SetCredential", "ImportCredential")):
        return "pidone has no credentials: mount secrets into the container (files or environment)"
    return "pidone has no equivalent"


_TIMESPAN_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-zµμ]*)")
_TIMESPAN_UNITS = {
    "usec": 1e-6, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "msec": 1e-3, "ms": 1e-3,
    "seconds": 1.0, "second": 1.0, "sec": 1.0, "s": 1.0, "": 1.0,
    "minutes": 60.0, "minute": 60.0, "min": 60.0, "m": 60.0,
    "hours": 3600.0, "hour": 3600.0, "hr": 3600.0, "h": 3600.0,
    "days": 86400.0, "day": 86400.0, "d": 86400.0, "weeks": 604800.0, "week": 604800.0, "w": 604800.0,
    "months": 2629800.0, "month": 2629800.0, "M": 2629800.0,
    "years": 31557600.0, "year": 31557600.0, "y": 31557600.0,
}  # fmt: skip


def _timespan(text: str, unit: float = 1.0) -> float | None:
    """Return a systemd time span in seconds ("5", "1min 30s", "500ms"), None for "infinity"; raise ValueError.

    A bare number counts in `unit` seconds (1 for most directives).
    """
    word = text.strip()
    if word == "infinity":
        return None
    total, pos, parts = 0.0, 0, 0
    while pos < len(word):
        match = _TIMESPAN_PART.match(word, pos)
        if match is None or match.end() == pos or match.group(2) not in _TIMESPAN_UNITS:
            raise ValueError(f"not a time span systemd accepts: {text!r}")
        scale = _TIMESPAN_UNITS[match.group(2)] if match.group(2) else unit
        total += float(match.group(1)) * scale
        pos, parts = match.end(), parts + 1
    if not parts:
        raise ValueError(f"not a time span: {text!r}")
    return total


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTPE]?)(?:i?B)?")


def _rlimit(name: str, text: str) -> Any:
    """Return a systemd Limit*= value ("4096", "infinity", "1K:2K", "+5" for nice) in pidone's TOML form."""
    soft_text, colon, hard_text = text.partition(":")
    values = [_rlimit_value(name, soft_text)]
    if colon:
        values.append(_rlimit_value(name, hard_text))
    if len(values) == 1 or values[0] == values[1]:
        return values[0]
    soft, hard = values
    if hard != "infinity" and (soft == "infinity" or soft > hard):
        raise ValueError("the soft limit is above the hard limit")
    return values


def _rlimit_value(name: str, text: str) -> int | str:
    word = text.strip()
    if word in ("infinity", "unlimited"):
        return "infinity"
    if name == "nice" and word[:1] in "+-" and word[1:].isdigit():
        nice = int(word)
        if not -20 <= nice <= 19:
            raise ValueError("a nice level is from -20 to 19")
        return 20 - nice
    if name in ("cpu", "rttime"):
        seconds = _timespan(word, 1e-6 if name == "rttime" else 1.0)
        if seconds is None:
            return "infinity"
        number = int(seconds * 1_000_000) if name == "rttime" else int(-(-seconds // 1))
        if number > 2**63 - 1:
            raise ValueError("too large")
        return number
    match = _SIZE.fullmatch(word)
    if not match:
        raise ValueError(f"not a limit systemd accepts: {text!r}")
    scale = 1024 ** "_KMGTPE".index(match.group(2) or "_")
    number = int(float(match.group(1)) * scale)
    if number > 2**63 - 1:
        raise ValueError("too large")
    return number


def _replace_infinity(value: Any, number: int) -> Any:
    if isinstance(value, list):
        return [number if v == "infinity" else v for v in value]
    return number


_KILL_SIGNAL_OPTION = re.compile(r"-(?:s|-signal)")


def _kill_mainpid(words: list[str]) -> str | None:
    """Return the signal of a `kill -SIG $MAINPID` command (any spelling), or None when it is something else."""
    if not words or os.path.basename(words[0]) != "kill":
        return None
    rest = words[1:]
    signame = "SIGTERM"
    if len(rest) == 3 and _KILL_SIGNAL_OPTION.fullmatch(rest[0]):
        signame, rest = rest[1], rest[2:]
    elif len(rest) == 2 and rest[0].startswith("--signal="):
        signame, rest = rest[0].partition("=")[2], rest[1:]
    elif len(rest) == 2 and rest[0].startswith("-") and len(rest[0]) > 1:
        signame, rest = rest[0][1:], rest[1:]
    if rest not in (["$MAINPID"], ["${MAINPID}"]):
        return None
    try:
        return _signal_name(signame)
    except ValueError:
        return None


def import_systemd(text: str, name: str, source: str = "") -> ImportResult:
    """Return the pidone unit for systemd service file `text` named `name` ("web.service" or "web").

    The name gives the specifiers (%n, %i, ...) and the pidone unit's name;
    `source` (the file's path) is only used in the result and for %y.
    """
    return _SystemdImport(text, name, source).result()


# --- supervisord ---------------------------------------------------------------

_SUPERVISORD_DEFAULT_STARTSECS = 1
_SUPERVISORD_DEFAULT_STARTRETRIES = 3
_SUPERVISORD_DEFAULT_LOG_MAX_BYTES = 50 * 1024 * 1024
_SUPERVISORD_DEFAULT_LOG_BACKUPS = 10
_CONSOLE_FILES = ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2", "/proc/self/fd/1", "/proc/self/fd/2")
_PLACEHOLDER = re.compile("\ue000([A-Za-z0-9_]*)\ue001")


class _Expansions(dict):
    """supervisord's %(name)s expansions; unknown ENV_X and host_node_name become placeholders for the shell."""

    def __missing__(self, key: str) -> str:
        if key.startswith("ENV_") and ENV_KEY_RE.fullmatch(key[4:]):
            return f"\ue000{key[4:]}\ue001"
        if key == "host_node_name":
            return "\ue000\ue001"
        raise KeyError(key)


def _supervisord_size(text: str) -> int:
    """Return supervisord's byte size ("50MB", "1KB", "1024")."""
    word = text.strip().lower()
    for suffix, scale in (("kb", 1024), ("mb", 1024**2), ("gb", 1024**3)):
        if word.endswith(suffix):
            return int(word[: -len(suffix)]) * scale
    return int(word)


def _supervisord_environment(text: str) -> dict[str, str]:
    """Parse supervisord's `KEY="value",KEY2=value2` exactly as supervisord does; raise ValueError."""
    lexer = shlex.shlex(text)
    lexer.wordchars += "/.+-():"
    tokens = list(lexer)
    pairs: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        triple = tokens[i : i + 3]
        if len(triple) != 3 or triple[1] != "=":
            raise ValueError("not KEY=value pairs separated by commas (quote values with other characters)")
        pairs[triple[0]] = triple[2].strip("'\"")
        i += 4
    return pairs


@dataclass
class _Program:
    section: str
    kind: str
    name: str
    options: dict[str, str]
    group: str


class _SupervisordImport:
    """Builds the units of one supervisord configuration."""

    def __init__(self, text: str, source: str):
        self.text = text
        self.source = source or "supervisord.conf"
        self.file_notes = _Notes()

    def results(self) -> list[ImportResult]:
        parser = configparser.RawConfigParser(
            inline_comment_prefixes=(";", "#"), strict=False, interpolation=None
        )
        try:
            parser.read_string(self.text, self.source)
        except configparser.Error as exc:
            message = " ".join(str(exc).split())
            return [ImportResult(sanitize_name(_stem(self.source)), None, [], self.source, error=f"not a supervisord configuration: {message}")]
        groups: dict[str, str] = {}
        for section in parser.sections():
            if section.startswith("group:"):
                for program in parser.get(section, "programs", fallback="").split(","):
                    if program.strip():
                        groups[program.strip()] = section.partition(":")[2]
                self.file_notes.drop(
                    f"[{section}]", None, "pidone has no groups; each program becomes a unit of its own"
                )
        programs = []
        for section in parser.sections():
            kind, colon, name = section.partition(":")
            if kind in ("program", "fcgi-program", "eventlistener") and colon:
                options = dict(parser.items(section))
                programs.append(_Program(section, kind, name, options, groups.get(name, name)))
            elif kind == "include":
                files = parser.get(section, "files", fallback="")
                self.file_notes.drop(
                    "[include] files", files, "import the included files too: pidone import FILE..."
                )
            elif kind != "group":
                self.file_notes.drop(
                    f"[{section}]", None, "settings of supervisord itself; pidone's own are its options (pidone --help)"
                )
        if not programs:
            return [ImportResult(sanitize_name(_stem(self.source)), None, list(self.file_notes), self.source, error="no [program:x] section")]
        results: list[ImportResult] = []
        for program in programs:
            results.extend(self._program(program))
        seen: dict[str, int] = {}
        for result in results:
            if result.name in seen:
                seen[result.name] += 1
                new = f"{result.name[: _MAX_NAME - 4]}-{seen[result.name]}"
                result.notes.append(f"name={result.name}: {APPROXIMATED}: renamed to {new!r}: another program has that name")
                result.name = new
            else:
                seen[result.name] = 1
        results[0].notes[:0] = self.file_notes
        return results

    def _program(self, program: _Program) -> list[ImportResult]:
        source = f"{self.source} [{program.section}]"
        options = program.options
        notes = _Notes()
        if program.kind != "program":
            why = (
                "pidone has no socket activation (fcgi-program passes a listening socket)"
                if program.kind == "fcgi-program"
                else "pidone does not speak supervisord's event-listener protocol"
            )
            return [ImportResult(sanitize_name(program.name), None, [], source, error=f"[{program.kind}:x] cannot be converted: {why}")]
        try:
            numprocs = int(options.get("numprocs", "1"))
            start = int(options.get("numprocs_start", "0"))
        except ValueError:
            return [ImportResult(sanitize_name(program.name), None, [], source, error="numprocs and numprocs_start must be integers")]
        process_name = options.get("process_name", "%(program_name)s")
        if numprocs > 1 and "%(process_num)" not in process_name:
            return [ImportResult(sanitize_name(program.name), None, [], source,
                                 error="numprocs > 1 needs %(process_num) in process_name, as supervisord itself requires")]  # fmt: skip
        if not 1 <= numprocs <= _MAX_NUMPROCS:
            return [ImportResult(sanitize_name(program.name), None, [], source, error=f"numprocs must be from 1 to {_MAX_NUMPROCS}")]
        here = os.path.dirname(self.source) if self.source.startswith("/") else None
        results = []
        for number in range(start, start + numprocs):
            expansions = _Expansions(
                program_name=program.name, group_name=program.group, process_num=number, numprocs=numprocs
            )
            if here is not None:
                expansions["here"] = here
            results.append(self._process(program, expansions, source, process_name, notes if number == start else _Notes()))
        if numprocs > 1:
            results[0].notes.insert(
                0, f"numprocs={numprocs}: {APPROXIMATED}: one unit per process ({', '.join(r.name for r in results)})"
            )
        return results

    def _process(self, program: _Program, expansions: _Expansions, source: str, process_name: str, notes: _Notes) -> ImportResult:
        options = program.options
        handled = {"numprocs", "numprocs_start", "process_name", "command"}

        def get(key: str, *, env_ok: bool = False) -> str | None:
            """Return option `key` expanded, or None when absent or when it cannot be expanded (noted)."""
            handled.add(key)
            if key not in options:
                return None
            try:
                value = options[key] % expansions
            except (KeyError, ValueError, TypeError) as exc:
                notes.drop(key, options[key], f"cannot expand {exc}: supervisord would refuse it")
                return None
            if not env_ok and _PLACEHOLDER.search(value):
                notes.drop(key, options[key], "%(ENV_X)s and %(host_node_name)s are only known when the container runs")
                return None
            return value

        try:
            raw_name = process_name % expansions
        except (KeyError, ValueError, TypeError):
            raw_name = program.name
        name = sanitize_name(_PLACEHOLDER.sub("", raw_name))
        _name_note(notes, raw_name, name)
        service: dict[str, Any] = {}
        environment: dict[str, str] = {}
        env_text = get("environment", env_ok=True)
        if env_text is not None:
            try:
                environment = _supervisord_environment(env_text)
            except ValueError as exc:
                notes.drop("environment", options["environment"], str(exc))
            for key, value in list(environment.items()):
                if not ENV_KEY_RE.fullmatch(key):
                    notes.drop("environment", key, "not a variable name pidone accepts ([A-Za-z_][A-Za-z0-9_]*)")
                    del environment[key]
                elif _PLACEHOLDER.search(value):
                    notes.drop(
                        "environment", f"{key}={_PLACEHOLDER.sub(lambda m: '%(ENV_' + m.group(1) + ')s', value)}",
                        "%(ENV_X)s is only known when the container runs, and pidone sets values as written",
                    )  # fmt: skip
                    del environment[key]
        for key, value in environment.items():
            expansions[f"ENV_{key}"] = value  # as supervisord: the program's environment expands in its command
        if "command" not in options:
            return ImportResult(name, None, list(notes), source, error="no command=")
        try:
            text = options["command"] % expansions
        except (KeyError, ValueError, TypeError) as exc:
            return ImportResult(name, None, list(notes), source, error=f"command= cannot be expanded: {exc}")
        try:
            words = shlex.split(text)
        except ValueError as exc:
            return ImportResult(name, None, list(notes), source, error=f"command= cannot be split into words: {exc}")
        if not words:
            return ImportResult(name, None, list(notes), source, error="command= is empty")
        if any(_PLACEHOLDER.search(word) for word in words):
            script = "exec " + " ".join(_placeholder_word(word) for word in words)
            service["command"] = [SHELL, "-c", script]
            notes.approx(
                "command", options["command"],
                f"runs as {SHELL} -c {script!r}: %(ENV_X)s and %(host_node_name)s are only known when the"
                f" container runs, so the shell expands them; the image needs {SHELL}",
            )  # fmt: skip
        elif not all(words):
            service["command"] = [SHELL, "-c", "exec " + shlex.join(words)]
            notes.approx("command", options["command"], f"runs through {SHELL} -c to pass an empty argument")
        else:
            service["command"] = words
        directory = get("directory")
        if directory is not None:
            if directory.startswith("/"):
                service["working_directory"] = directory
            else:
                notes.drop("directory", directory, "not an absolute path")
        user = get("user")
        if user is not None:
            try:
                service["user"] = _account(user)
            except ValueError as exc:
                notes.drop("user", user, str(exc))
        umask = get("umask")
        if umask is not None:
            try:
                service["umask"] = _umask(umask)
            except ValueError as exc:
                notes.drop("umask", umask, str(exc))
        if environment:
            service["environment"] = environment
        document: dict[str, Any] = {"service": service}
        restart: dict[str, Any] = {}
        stop: dict[str, Any] = {}
        autorestart = get("autorestart")
        if autorestart is not None:
            word = autorestart.strip().lower()
            if word == "unexpected":
                pass  # pidone's default, on-failure
            elif word in ("true", "yes", "on", "1"):
                restart["policy"] = "always"
            elif word in ("false", "no", "off", "0"):
                restart["policy"] = "no"
            else:
                notes.drop("autorestart", autorestart, "expected true, false or unexpected")
        exitcodes = get("exitcodes")
        if exitcodes is not None and [c.strip() for c in exitcodes.split(",")] != ["0"]:
            notes.drop("exitcodes", exitcodes, "pidone treats exit status 0 as expected and every other as a failure")
        startsecs = get("startsecs")
        if startsecs is not None:
            try:
                seconds = int(startsecs)
                if not 0 <= seconds <= MAX_DURATION:
                    raise ValueError
                restart["reset_after"] = seconds
                notes.approx(
                    "startsecs", startsecs,
                    "written as [restart] reset_after: a run this long resets pidone's count of failures",
                )  # fmt: skip
            except ValueError:
                notes.drop("startsecs", startsecs, "not a number of seconds pidone accepts")
        startretries = get("startretries")
        if startretries is not None:
            try:
                retries = int(startretries)
                if not 0 <= retries <= _MAX_RETRIES:
                    raise ValueError
            except ValueError:
                notes.drop("startretries", startretries, f"not an integer from 0 to {_MAX_RETRIES}")
            else:
                restart["max_retries"] = max(retries, 1)
                if retries == 0:
                    notes.approx(
                        "startretries", startretries,
                        "written as max_retries = 1: pidone's 0 would mean never give up, and pidone cannot give up"
                        " at once and still restart later exits",
                    )  # fmt: skip
        stopsignal = get("stopsignal")
        if stopsignal is not None:
            try:
                stop["signal"] = _signal_name(stopsignal)
            except ValueError as exc:
                notes.drop("stopsignal", stopsignal, str(exc))
        stopwaitsecs = get("stopwaitsecs")
        if stopwaitsecs is not None:
            try:
                seconds = int(stopwaitsecs)
                if not 0 <= seconds <= MAX_DURATION:
                    raise ValueError
                stop["timeout"] = seconds
            except ValueError:
                notes.drop("stopwaitsecs", stopwaitsecs, "not a number of seconds pidone accepts")
        for key in ("stopasgroup", "killasgroup"):
            value = get(key)
            if value is not None and not _safe_bool(value):
                notes.approx(key, value, "pidone always signals the unit's whole process group")
        if restart.get("policy") != "no":
            # supervisord's own defaults: a run of startsecs=1 counts as started, then 3 retries
            restart.setdefault("reset_after", _SUPERVISORD_DEFAULT_STARTSECS)
            restart.setdefault("max_retries", _SUPERVISORD_DEFAULT_STARTRETRIES)
        log = self._logs(get, notes)
        if restart:
            document["restart"] = restart
        if stop:
            document["stop"] = stop
        if log:
            document["log"] = log
        for key, why in (
            ("priority", "pidone starts units in parallel unless ordered: list what must start first in [dependencies] after"),
            ("autostart", "pidone starts every unit in its directory (rename it NAME.toml.disabled to keep it out)"),
            ("serverurl", "pidone's control socket is found by `pidone` itself"),
        ):  # fmt: skip
            value = get(key)
            if value is not None and not (key == "autostart" and _safe_bool(value)):
                notes.drop(key, value, why)
        for key in options:
            if key not in handled:
                notes.drop(key, options[key], _supervisord_reason(key))
        return ImportResult(name, document, list(notes), source)

    def _logs(self, get: Callable[..., str | None], notes: _Notes) -> dict[str, Any]:
        """Return the [log] table for the stdout_/stderr_ options."""
        redirect = get("redirect_stderr")
        files: dict[str, str] = {}
        for stream in ("stdout", "stderr"):
            key = f"{stream}_logfile"
            value = get(key)
            if value is None:
                continue
            word = value.strip()
            if word.lower() in ("none", "off") or word in _CONSOLE_FILES:
                continue
            if word.lower() == "auto":
                notes.drop(key, value, "AUTO keeps a file in supervisord's childlogdir; pidone passes output to its stdout (set [log] file to keep a copy)")
                continue
            if word.lower() == "syslog":
                notes.drop(key, value, "pidone does not write to syslog; output goes to its stdout")
                continue
            if stream == "stderr" and redirect is not None and _safe_bool(redirect):
                continue  # supervisord itself ignores stderr_logfile then
            if not word.startswith("/"):
                notes.drop(key, value, "not an absolute path")
                continue
            files[stream] = word
        log: dict[str, Any] = {}
        if files:
            first = files.get("stdout") or files["stderr"]
            stream = "stdout" if files.get("stdout") == first else "stderr"
            log["file"] = first
            for other, path in files.items():
                if path != first:
                    notes.drop(f"{other}_logfile", path, f"pidone writes both streams to one [log] file, {first}")
            if len(files) == 1 and stream == "stdout" and "stderr" not in files and not (redirect and _safe_bool(redirect)):
                notes.approx("stdout_logfile", first, "pidone writes stderr to the [log] file too")
            maxbytes = get(f"{stream}_logfile_maxbytes")
            try:
                size = _SUPERVISORD_DEFAULT_LOG_MAX_BYTES if maxbytes is None else _supervisord_size(maxbytes)
            except ValueError:
                notes.drop(f"{stream}_logfile_maxbytes", maxbytes, "not a size (such as 50MB)")
                size = _SUPERVISORD_DEFAULT_LOG_MAX_BYTES
            if size == 0:
                notes.drop(f"{stream}_logfile_maxbytes", maxbytes, "pidone always rotates; written as 2**62 bytes, never reached")
                size = 2**62
            elif size > 2**62:
                notes.approx(f"{stream}_logfile_maxbytes", maxbytes, "written as 2**62 bytes, pidone's largest")
                size = 2**62
            elif size < 1024:
                notes.approx(f"{stream}_logfile_maxbytes", maxbytes, "pidone rotates at 1024 bytes at the least")
                size = 1024
            log["max_bytes"] = size
            backups = get(f"{stream}_logfile_backups")
            try:
                log["backups"] = min(max(int(backups), 0), 1000) if backups is not None else _SUPERVISORD_DEFAULT_LOG_BACKUPS
            except ValueError:
                notes.drop(f"{stream}_logfile_backups", backups, "not an integer")
                log["backups"] = _SUPERVISORD_DEFAULT_LOG_BACKUPS
        for stream in ("stdout", "stderr"):
            for suffix in ("_logfile_maxbytes", "_logfile_backups"):
                get(stream + suffix)
        return log


def _placeholder_word(word: str) -> str:
    """Return `word` as shell text in which each placeholder becomes its variable (or $(uname -n))."""
    parts = []
    pos = 0
    for match in _PLACEHOLDER.finditer(word):
        if word[pos : match.start()]:
            parts.append(shlex.quote(word[pos : match.start()]))
        parts.append(f'"${{{match.group(1)}}}"' if match.group(1) else '"$(uname -n)"')
        pos = match.end()
    if word[pos:]:
        parts.append(shlex.quote(word[pos:]))
    return "".join(parts)


def _supervisord_reason(key: str) -> str:
    """Return why supervisord option `key` has no place in a pidone unit."""
    if key.endswith(("_syslog", "_events_enabled", "_capture_maxbytes")):
        return "pidone passes output to its stdout (and an optional [log] file) only"
    return "not an option pidone can carry over"


def _stem(path: str) -> str:
    base = os.path.basename(path)
    return base.split(".", 1)[0] if not base.startswith(".") else base


def import_supervisord(text: str, source: str = "") -> list[ImportResult]:
    """Return one result per process of each `[program:x]` section of supervisord configuration `text`.

    `numprocs` makes that many units, named by `process_name`. Notes about
    the file as a whole ([supervisord], [include], [group:x]) go to the
    first result.
    """
    return _SupervisordImport(text, source).results()


# --- Procfile ------------------------------------------------------------------

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


# --- which format --------------------------------------------------------------


def detect(path: str, text: str) -> str | None:
    """Return the format of file `path` with contents `text`: "systemd", "supervisord", "procfile" or None.

    By name first (*.service and the other systemd suffixes; Procfile,
    Procfile.*; supervisord*.conf), then by contents ([Service]; [program:x];
    only "name: command" lines).
    """
    base = os.path.basename(path)
    suffix = base.rpartition(".")[2] if "." in base else ""
    if suffix == "service" or suffix in _OTHER_UNIT_TYPES:
        return SYSTEMD
    if base == "Procfile" or base.startswith("Procfile."):
        return PROCFILE
    if re.search(r"^\s*\[(program|fcgi-program|eventlistener|supervisord|group|include):?[^\]]*\]", text, re.M):
        return SUPERVISORD
    if re.search(r"^\s*\[(Service|Unit)\]\s*$", text, re.M):
        return SYSTEMD
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if lines and all(_PROCFILE_LINE.match(line) for line in lines):
        return PROCFILE
    return None


def import_text(path: str, text: str) -> list[ImportResult]:
    """Return the results for file `path` holding `text`, whatever its format; raise ValueError when unknown."""
    kind = detect(path, text)
    if kind == SYSTEMD:
        return [import_systemd(text, os.path.basename(path), path)]
    if kind == SUPERVISORD:
        return import_supervisord(text, path)
    if kind == PROCFILE:
        return import_procfile(text, path)
    raise ValueError(
        "not a format pidone can import: expected a systemd .service file, a supervisord"
        " configuration with [program:x] sections, or a Procfile"
    )

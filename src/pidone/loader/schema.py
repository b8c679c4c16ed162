"""The unit-file schema: every table and key, the readers of each kind of
value, and the problems of one file (each naming its table and key)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pidone.errors import Problem
from pidone.expand import check
from pidone.units import (
    NAME_RULE,
    RLIMITS,
    describe,
    parse_abs_path,
    parse_duration,
    parse_int,
    parse_string,
    show,
    valid_name,
)


MAX_PROBLEMS_PER_FILE = 100  # a hostile file must not flood the log
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel, never a real id

READY_PROBES = ("tcp", "http", "exec", "path")
HEALTH_PROBES = ("tcp", "http", "exec")

# Every table and key a unit file may hold; "" is the top level. The docs
# test holds docs/unit-files.md to exactly this.
SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("description", "instances", "enabled"),
    "service": (
        "command", "type", "critical", "working_directory", "user", "group",
        "supplementary_groups", "environment", "environment_files",
        "clear_environment", "umask", "oom_score_adjust",
        "success_exit_status", "ignore_sigpipe", "runtime_directory", "state_directory", "directory_mode",
        "exec_start_pre", "exec_start_post", "exec_reload", "exec_stop", "exec_stop_post", "pid_file",
    ),
    "dependencies": ("requires", "wants", "after", "part_of"),
    "ready": (*READY_PROBES, "timeout", "interval"),
    "health": (*HEALTH_PROBES, "interval", "timeout", "retries", "watchdog"),
    "restart": ("policy", "delay", "max_delay", "max_retries", "reset_after", "jitter", "prevent_exit_status"),
    "stop": ("signal", "timeout", "reload_signal", "mode"),
    "log": ("file", "max_bytes", "backups"),
    "limits": ("no_new_privileges", "capabilities", *RLIMITS),
    "conditions": ("path_exists", "environment"),
    "timer": ("schedule", "timezone", "jitter", "on_boot"),
    "socket": ("listen", "backlog", "mode", "on_demand"),
}  # fmt: skip
TABLES = tuple(table for table in SCHEMA if table)


def printable(text: str) -> str:
    """Return `text` with control and undecodable characters escaped, so a message stays one line."""
    return text if text.isprintable() else repr(text)[1:-1]



Key = tuple[str, ...]  # a key's path in the document: ("service", "user")


class Problems:
    """The errors and warnings of one file.

    Each may name the key it comes from; `locate` then finds that key's
    line in the file's `text`. Positions cost a scan of the text, so they
    are found only for a file that has problems, never for a good one.
    """

    def __init__(self, path: str):
        self.path = path
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.dropped = 0
        self.text: str | None = None  # the decoded file, once there is one
        self._error_keys: list[Key] = []  # the key of each error, () for none
        self._warning_keys: list[Key] = []

    def error(self, where: str, message: str, key: Key = ()) -> None:
        """Record an error at `where` ("[service] user"; "" for the whole file), from `key` if any."""
        if not self.full:
            self._error_keys.append(key)
        self._add(Problem(self.path, message, where=where))

    def at(self, line: int, col: int, message: str) -> None:
        """Record an error at a line and column the TOML parser reported."""
        if not self.full:
            self._error_keys.append(())
        self._add(Problem(self.path, message, line=line, col=col))

    def warn(self, where: str, message: str, key: Key = ()) -> None:
        """Record a warning at `where`, from `key` if any."""
        self._warning_keys.append(key)
        self.warnings.append(Problem(self.path, message, where=where, warning=True))

    def locate(self) -> None:
        """Give every problem that comes from a key the line of that key (or of
        its nearest parent written in the file: a missing key's table)."""
        if self.text is None or not any((*self._error_keys, *self._warning_keys)):
            return
        from pidone.loader.keylines import key_lines, line_of

        try:
            lines = key_lines(self.text)
        except Exception:  # noqa: BLE001 - nested past the stack, or a scanner bug: no lines, every problem
            return
        for problems, keys in ((self.errors, self._error_keys), (self.warnings, self._warning_keys)):
            for index, key in enumerate(keys):
                line = line_of(lines, key) if key else None
                if line is not None and problems[index].line is None:
                    problems[index] = dataclasses.replace(problems[index], line=line)

    @property
    def full(self) -> bool:
        """Return True once further errors will only be counted."""
        return len(self.errors) >= MAX_PROBLEMS_PER_FILE

    def _add(self, problem: Problem) -> None:
        if self.full:
            self.dropped += 1
        else:
            self.errors.append(problem)

    def finish(self) -> list[Problem]:
        """Return the errors, with a last line counting any left out."""
        if self.dropped:
            return [*self.errors, Problem(self.path, f"... and {self.dropped} more problems")]
        return self.errors


# --- the schema --------------------------------------------------------------

T = TypeVar("T")


class Table:
    """One table of a unit file, read key by key; each bad value becomes a problem."""

    def __init__(self, problems: Problems, table: str, data: dict[str, Any], *, broken: bool = False):
        self.problems = problems
        self.table = table
        self.data = data
        self.broken = broken  # present but not a table: already reported

    def where(self, key: str) -> str:
        """Return the `where` of a key in this table: "[service] user" (a long key cut short)."""
        key = printable(key)
        if len(key) > 60:
            key = key[:57] + "..."
        return f"[{self.table}] {key}" if self.table else key

    def key(self, key: str, *within: str) -> Key:
        """Return the document path of `key` (and of `within` below it): ("service", "user")."""
        return (self.table, key, *within) if self.table else (key, *within)

    def error(self, key: str, message: str, *, within: tuple[str, ...] = ()) -> None:
        """Record an error about `key` (about `within` inside its value, when given)."""
        self.problems.error(self.where(key), message, self.key(key, *within))

    def get(self, key: str, parse: Callable[[Any], T], default: T) -> T:
        """Return `parse(value)` for `key`, or `default` when absent or invalid (then recorded)."""
        if key not in self.data:
            return default
        try:
            return parse(self.data[key])
        except ValueError as exc:
            self.error(key, str(exc))
            return default

    def check_keys(self) -> None:
        """Record an error for every key this table does not know, with a suggestion."""
        known = SCHEMA[self.table] + (TABLES if self.table == "" else ())
        for key in self.data:
            if key not in known:
                # Past the cap the message is dropped anyway: skip the costly suggestion.
                message = "unknown key" if self.problems.full else unknown_key(key, self.table, self.data[key])
                self.error(key, message)


def unknown_key(key: str, table: str, value: object) -> str:
    """Return the message for an unknown `key` in `table`, naming where it belongs or what is close."""
    if table == "" and key == "name":
        return "unknown key: a unit's name is its file's name (NAME.toml)"
    if table == "service" and key == "exec_start":
        return "unknown key: the main command is 'command' (systemd's ExecStart=)"
    if table == "health" and key == "path":
        return "unknown key: a path probe only suits [ready]; use tcp, http or exec for health"
    if table == "" and isinstance(value, dict):
        close = difflib.get_close_matches(key, TABLES, n=1)
        if close:
            return f"unknown table, did you mean [{close[0]}]?"
        return "unknown table; the tables are " + join(TABLES, "[{}]")
    homes = [other for other in TABLES if other != table and key in SCHEMA[other]]
    if homes:
        return "unknown key here: it belongs in " + join(homes, "[{}]", "or")
    own = SCHEMA[table] + (TABLES if table == "" else ())
    close = difflib.get_close_matches(key, own, n=1)
    if close:
        return f"unknown key, did you mean '{close[0]}'?"
    # Key -> the first table that has it (later tables are written over by earlier ones).
    elsewhere = {name: other for other in reversed(TABLES) if other != table for name in SCHEMA[other]}
    close = difflib.get_close_matches(key, list(elsewhere), n=1)
    if close:
        return f"unknown key, did you mean [{elsewhere[close[0]]}] {close[0]}?"
    return "unknown key; expected one of " + join(own, "'{}'", "or")


def join(items: Iterable[str], form: str = "{}", last: str = "and") -> str:
    """Return `items` formatted with `form` and joined as an English list."""
    words = [form.format(item) for item in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def enum_of(kind: type[T]) -> Callable[[Any], T]:
    """Return a parser for the string values of enum `kind`, suggesting a close one."""
    values = [member.value for member in kind]  # type: ignore[attr-defined]
    quoted = '"{}"'

    def parse(value: Any) -> T:
        if isinstance(value, str) and value in values:
            return kind(value)  # type: ignore[call-arg]
        expected = f"expected {join(values, quoted, 'or')}, got {describe(value)}"
        close = difflib.get_close_matches(value, values, n=1) if isinstance(value, str) else []
        raise ValueError(f'{expected}; did you mean "{close[0]}"?' if close else expected)

    return parse


def duration(*, positive: bool = False, minimum: float = 0.0) -> Callable[[Any], float]:
    """Return a duration parser; `minimum` (seconds) rejects smaller non-zero intervals."""

    def parse(value: Any) -> float:
        seconds = parse_duration(value, positive=positive)
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum:g} s, got {show(value)}")
        return seconds

    return parse


def integer(low: int, high: int) -> Callable[[Any], int]:
    """Return a parser for integers in [low, high]."""
    return lambda value: parse_int(value, low, high)


def list_of(item: Callable[[Any], T], what: str) -> Callable[[Any], tuple[T, ...]]:
    """Return a parser for an array whose items `item` parses; `what` names one item."""

    def parse(value: Any) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise ValueError(f"expected an array of {what}, got {describe(value)}")
        out = []
        for index, element in enumerate(value, 1):
            try:
                out.append(item(element))
            except ValueError as exc:
                raise ValueError(f"item {index}: {exc}") from None
        return tuple(out)

    return parse


def free_text(value: Any) -> str:
    """Return a free-text string (it may be empty, but holds no NUL)."""
    return parse_string(value, empty=True)


def unit_name(value: Any) -> str:
    """Return a dependency's unit name; raise ValueError if it breaks the name rule."""
    text = parse_string(value)
    if not valid_name(text):
        raise ValueError(f"{show(text)} is not a unit name: a name is {NAME_RULE}")
    return text


def account(value: Any) -> str:
    """Return a user or group given by name or number, as a string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a name or a number, got {describe(value)}")
    if isinstance(value, int):
        return str(parse_int(value, 0, _MAX_ID))
    text = parse_string(value)
    if len(text) > 256 or not text.isprintable() or any(c in text for c in " :/,"):
        raise ValueError(f"expected a user or group name or number, got {show(text)}")
    return text


def expanding_path(value: Any) -> str:
    """Return a path that may hold `${...}`: absolute, or starting with `${` (checked again once expanded)."""
    text = check(parse_string(value))
    if not text.startswith("${"):
        parse_abs_path(text)
    return text


def environment_file(value: Any) -> str:
    """Return an environment file path: absolute, optionally prefixed by "-" (may be missing)."""
    text = parse_string(value)
    parse_abs_path(text.removeprefix("-"))
    return text


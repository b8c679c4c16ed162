"""Unit files to Units: reading the units directory safely, TOML syntax, the strict schema, every problem gathered.

`load_directory` never raises for anything a unit file or the directory can
do to it: each problem becomes a `Problem` naming the file (and line and
column, or table and key), and the valid units are returned beside them.
`load_units` is the all-or-nothing form boot uses; `parse_unit` checks one
file's bytes, for tests and fuzzing. The dependency graph (missing targets,
cycles) is `graph.check`'s business, not this module's.
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import stat
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from pidone.errors import ConfigError, Problem
from pidone.units import (
    DEFAULT_HEALTH_INTERVAL,
    DEFAULT_HEALTH_RETRIES,
    DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_LOG_BACKUPS,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_READY_INTERVAL,
    DEFAULT_RELOAD_SIGNAL,
    DEFAULT_RESTART_DELAY,
    DEFAULT_RESTART_MAX_DELAY,
    DEFAULT_RESTART_MAX_RETRIES,
    DEFAULT_RESTART_RESET_AFTER,
    DEFAULT_STOP_SIGNAL,
    DEFAULT_STOP_TIMEOUT,
    DEFAULT_TYPE,
    ENV_KEY_RE,
    MAX_LOG_BACKUPS,
    MIN_INTERVAL,
    MIN_LOG_MAX_BYTES,
    NAME_RULE,
    RLIM_INFINITY,
    RLIMITS,
    DependenciesSection,
    HealthSection,
    LimitsSection,
    LogSection,
    Probe,
    ProbeKind,
    ReadySection,
    RestartPolicy,
    RestartSection,
    ServiceSection,
    StopSection,
    Unit,
    UnitType,
    default_ready_timeout,
    default_restart_policy,
    describe,
    parse_abs_path,
    parse_argv,
    parse_bool,
    parse_capability,
    parse_duration,
    parse_int,
    parse_rlimit,
    parse_signal,
    parse_string,
    parse_umask,
    show,
    valid_name,
)

SUFFIX = ".toml"
MAX_FILE_SIZE = 1024 * 1024  # SPEC §2: only regular files up to 1 MiB are read
MAX_PROBLEMS_PER_FILE = 100  # a hostile file must not flood the log

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "unchanged" to the kernel, never a real id

READY_PROBES = ("tcp", "http", "exec", "path")
HEALTH_PROBES = ("tcp", "http", "exec")

# Every table and key a unit file may hold; "" is the top level. The docs
# test holds docs/unit-files.md to exactly this.
SCHEMA: dict[str, tuple[str, ...]] = {
    "": ("description",),
    "service": (
        "command", "type", "critical", "working_directory", "user", "group",
        "supplementary_groups", "environment", "environment_files",
        "clear_environment", "umask", "oom_score_adjust",
    ),
    "dependencies": ("requires", "wants", "after"),
    "ready": (*READY_PROBES, "timeout", "interval"),
    "health": (*HEALTH_PROBES, "interval", "timeout", "retries"),
    "restart": ("policy", "delay", "max_delay", "max_retries", "reset_after"),
    "stop": ("signal", "timeout", "reload_signal"),
    "log": ("file", "max_bytes", "backups"),
    "limits": ("no_new_privileges", "capabilities", *RLIMITS),
}  # fmt: skip
TABLES = tuple(table for table in SCHEMA if table)


# --- results -----------------------------------------------------------------


@dataclass
class LoadResult:
    """What a units directory holds.

    `units` has only the valid units; `errors` maps a unit's name (or the
    file's name when the name itself is invalid, or the directory's path
    when the directory cannot be used) to every problem found there.
    """

    directory: str
    units: dict[str, Unit] = field(default_factory=dict)
    errors: dict[str, list[Problem]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True when no file had an error (warnings do not count)."""
        return not self.errors

    def problems(self) -> list[Problem]:
        """Return every error, file by file in name order."""
        return [problem for key in sorted(self.errors) for problem in self.errors[key]]


def load_units(path: str | os.PathLike[str]) -> dict[str, Unit]:
    """Return every unit in directory `path`; raise ConfigError listing every problem if any file is wrong."""
    result = load_directory(path)
    if not result.ok:
        raise ConfigError(result.problems())
    return result.units


def parse_unit(name: str, data: bytes, path: str) -> Unit:
    """Return the unit `name` parsed from file contents `data`; raise ConfigError with every problem.

    `path` is only used in the problems. Warnings are dropped; use
    `load_directory` to see them.
    """
    unit, errors, _warnings = _parse_file(name, data, path)
    if unit is None:
        raise ConfigError(errors)
    return unit


# --- the directory -----------------------------------------------------------


def load_directory(
    path: str | os.PathLike[str], *, enforce_ownership: bool | None = None
) -> LoadResult:
    """Load every `NAME.toml` in directory `path` (not recursively) and return a LoadResult.

    Dotfiles, `*.toml.disabled`, editor backups and anything else not ending
    in `.toml` are ignored. With `enforce_ownership` (default: when running
    as root) the directory and every file must be owned by root and not
    writable by group or others. Never raises for what is on disk.
    """
    directory = os.fspath(path)
    if enforce_ownership is None:
        enforce_ownership = os.geteuid() == 0
    result = LoadResult(directory)
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        result.errors[directory] = [Problem(_printable(directory), f"cannot open the units directory: {exc.strerror}")]
        return result
    try:
        refusal = enforce_ownership and _insecure(os.fstat(dir_fd), "the units directory")
        if refusal:
            result.errors[directory] = [Problem(_printable(directory), refusal)]
            return result
        with os.scandir(dir_fd) as scan:
            entries = sorted((entry for entry in scan if _is_unit_file(entry.name)), key=lambda e: e.name)
        loader = _DirectoryLoader(directory, dir_fd, enforce_ownership)
        for entry in entries:
            loader.load(entry, result)
    finally:
        os.close(dir_fd)
    return result


def _is_unit_file(file_name: str) -> bool:
    """Return True for names pidone reads: `*.toml`, but not dotfiles."""
    return file_name.endswith(SUFFIX) and not file_name.startswith(".")


class _Refused(Exception):
    """A unit file that must not be read; the message says why."""


@dataclass
class _DirectoryLoader:
    """Reads the unit files of one open directory."""

    directory: str
    dir_fd: int
    enforce_ownership: bool

    def load(self, entry: os.DirEntry[str], result: LoadResult) -> None:
        """Read, parse and validate one entry; record its unit or its problems in `result`."""
        file_path = _printable(os.path.join(self.directory, entry.name))
        name = entry.name[: -len(SUFFIX)]
        if not valid_name(name):
            message = f"{show(name)} is not a valid unit name: a name is {NAME_RULE}"
            result.errors[entry.name] = [Problem(file_path, message)]
            return
        try:
            data = self._read(entry)
        except _Refused as exc:
            result.errors[name] = [Problem(file_path, str(exc))]
            return
        except OSError as exc:
            result.errors[name] = [Problem(file_path, f"cannot read: {exc.strerror or exc}")]
            return
        except Exception as exc:  # whatever happens to one file, the others still load
            result.errors[name] = [Problem(file_path, f"cannot read: {type(exc).__name__}: {_printable(str(exc))}")]
            return
        unit, errors, warnings = _parse_file(name, data, file_path)
        result.warnings.extend(warnings)
        if unit is None:
            result.errors[name] = errors
        else:
            result.units[name] = unit

    def _read(self, entry: os.DirEntry[str]) -> bytes:
        """Return the bytes of a regular unit file; raise _Refused or OSError.

        A symlink is followed only to a file directly in this directory.
        The checks that matter are made on the open fd, so a file swapped
        between listing and opening gains nothing.
        """
        target = entry.name
        if entry.is_symlink():
            target = self._symlink_target(entry.name)
        elif not entry.is_file(follow_symlinks=False):
            # Never open a FIFO or a device just to find out what it is.
            raise _Refused(f"refused: not a regular file ({_file_kind(entry.stat(follow_symlinks=False).st_mode)})")
        fd = os.open(target, _OPEN_FLAGS, dir_fd=self.dir_fd)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(f"refused: not a regular file ({_file_kind(info.st_mode)})")
            refusal = self.enforce_ownership and _insecure(info, "unit file")
            if refusal:
                raise _Refused(refusal)
            if info.st_size > MAX_FILE_SIZE:
                raise _Refused(_too_big(info.st_size))
            return _read_capped(fd)
        finally:
            os.close(fd)

    def _symlink_target(self, link_name: str) -> str:
        """Return the name, in this directory, of the file a symlink resolves to; raise _Refused."""
        link_text = os.readlink(link_name, dir_fd=self.dir_fd)
        real_dir = os.path.realpath(self.directory)
        resolved = os.path.realpath(os.path.join(real_dir, link_name))
        if os.path.dirname(resolved) != real_dir:
            raise _Refused(
                f"refused: a symlink to {show(link_text)} ({_printable(resolved)}), outside the units directory"
            )
        return os.path.basename(resolved)


def _read_capped(fd: int) -> bytes:
    """Return at most MAX_FILE_SIZE bytes from `fd`; raise _Refused if there are more."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_FILE_SIZE:
        chunk = os.read(fd, MAX_FILE_SIZE + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_FILE_SIZE:
        raise _Refused(_too_big(size, at_least=True))
    return b"".join(chunks)


def _too_big(size: int, *, at_least: bool = False) -> str:
    """Return the refusal for a file of `size` bytes."""
    more = "over " if at_least else ""
    return f"refused: {more}{size} bytes, larger than the {MAX_FILE_SIZE}-byte (1 MiB) limit for a unit file"


def _insecure(info: os.stat_result, what: str) -> str:
    """Return why a root-run pidone must refuse a file or directory, or "" when it is safe."""
    mode = stat.S_IMODE(info.st_mode)
    reasons = []
    if info.st_uid != 0:
        reasons.append("not owned by root")
    if mode & 0o022:
        reasons.append("writable by group or others")
    if not reasons:
        return ""
    return (
        f"refused: {what} is {' and '.join(reasons)} (mode {mode:04o}, owner uid {info.st_uid});"
        " units run as root, so only root may write them"
    )


def _file_kind(mode: int) -> str:
    """Return a word for the kind of file `mode` describes."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symlink"),
    )
    return next((word for test, word in kinds if test(mode)), "not a regular file")


def _printable(text: str) -> str:
    """Return `text` with control and undecodable characters escaped, so a message stays one line."""
    return text if text.isprintable() else repr(text)[1:-1]


# --- one file ----------------------------------------------------------------

_TOML_POSITION = re.compile(r"(?P<message>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)", re.S)
_TOML_AT_END = " (at end of document)"


def _parse_file(name: str, data: bytes, path: str) -> tuple[Unit | None, list[Problem], list[Problem]]:
    """Return (unit or None, errors, warnings) for one file's bytes; never raises."""
    problems = _Problems(path)
    unit = None
    try:
        document = _decode(data, problems)
        if document is not None:
            if not valid_name(name):
                problems.error("", f"{show(name)} is not a valid unit name: a name is {NAME_RULE}")
            unit = _Builder(problems).unit(name, document, path)
    except RecursionError:
        problems.error("", "cannot parse: nested too deeply")
    except MemoryError:
        problems.error("", "cannot parse: out of memory")
    except Exception as exc:  # a hostile file must never take pidone down
        problems.error("", f"cannot parse: {type(exc).__name__}: {_printable(str(exc))[:200]}")
    if problems.errors:
        return None, problems.finish(), problems.warnings
    return unit, [], problems.warnings


def _decode(data: bytes, problems: _Problems) -> dict[str, Any] | None:
    """Return the TOML document in `data`, or None after recording why it is not one."""
    if data.startswith(b"\xef\xbb\xbf"):
        problems.at(1, 1, "starts with a byte-order mark (BOM); save the file as UTF-8 without one")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(data[: exc.start].decode("utf-8"))
        problems.at(line, col, f"not valid UTF-8 (byte 0x{data[exc.start]:02x})")
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.fullmatch(message)
        if match:
            line, col, message = int(match["line"]), int(match["col"]), match["message"]
        else:
            line, col = _position(text)
            message = message.removesuffix(_TOML_AT_END)
        problems.at(line, col, f"invalid TOML: {_lower_first(_printable(message))}")
    except RecursionError:
        problems.error("", "invalid TOML: arrays or tables nested too deeply")
    except ValueError as exc:  # int() past sys.get_int_max_str_digits()
        problems.error("", f"invalid TOML: {_lower_first(_printable(str(exc)).split(';')[0])}")
    return None


def _position(text: str) -> tuple[int, int]:
    """Return the 1-based (line, column) just after `text`."""
    return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


def _lower_first(text: str) -> str:
    """Return `text` with its first letter in lower case (tomllib capitalises its messages)."""
    return text[:1].lower() + text[1:]


class _Problems:
    """The errors and warnings of one file."""

    def __init__(self, path: str):
        self.path = path
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.dropped = 0

    def error(self, where: str, message: str) -> None:
        """Record an error at `where` ("[service] user"; "" for the whole file)."""
        self._add(Problem(self.path, message, where=where))

    def at(self, line: int, col: int, message: str) -> None:
        """Record an error at a line and column the TOML parser reported."""
        self._add(Problem(self.path, message, line=line, col=col))

    def warn(self, where: str, message: str) -> None:
        """Record a warning at `where`."""
        self.warnings.append(Problem(self.path, message, where=where, warning=True))

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


class _Table:
    """One table of a unit file, read key by key; each bad value becomes a problem."""

    def __init__(self, problems: _Problems, table: str, data: dict[str, Any], *, broken: bool = False):
        self.problems = problems
        self.table = table
        self.data = data
        self.broken = broken  # present but not a table: already reported

    def where(self, key: str) -> str:
        """Return the `where` of a key in this table: "[service] user" (a long key cut short)."""
        key = _printable(key)
        if len(key) > 60:
            key = key[:57] + "..."
        return f"[{self.table}] {key}" if self.table else key

    def error(self, key: str, message: str) -> None:
        """Record an error about `key`."""
        self.problems.error(self.where(key), message)

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
                message = "unknown key" if self.problems.full else _unknown_key(key, self.table, self.data[key])
                self.error(key, message)


def _unknown_key(key: str, table: str, value: object) -> str:
    """Return the message for an unknown `key` in `table`, naming where it belongs or what is close."""
    if table == "" and key == "name":
        return "unknown key: a unit's name is its file's name (NAME.toml)"
    if table == "health" and key == "path":
        return "unknown key: a path probe only suits [ready]; use tcp, http or exec for health"
    if table == "" and isinstance(value, dict):
        close = difflib.get_close_matches(key, TABLES, n=1)
        if close:
            return f"unknown table, did you mean [{close[0]}]?"
        return "unknown table; the tables are " + _join(TABLES, "[{}]")
    homes = [other for other in TABLES if other != table and key in SCHEMA[other]]
    if homes:
        return "unknown key here: it belongs in " + _join(homes, "[{}]", "or")
    own = SCHEMA[table] + (TABLES if table == "" else ())
    close = difflib.get_close_matches(key, own, n=1)
    if close:
        return f"unknown key, did you mean '{close[0]}'?"
    # Key -> the first table that has it (later tables are written over by earlier ones).
    elsewhere = {name: other for other in reversed(TABLES) if other != table for name in SCHEMA[other]}
    close = difflib.get_close_matches(key, list(elsewhere), n=1)
    if close:
        return f"unknown key, did you mean [{elsewhere[close[0]]}] {close[0]}?"
    return "unknown key; expected one of " + _join(own, "'{}'", "or")


def _join(items: Iterable[str], form: str = "{}", last: str = "and") -> str:
    """Return `items` formatted with `form` and joined as an English list."""
    words = [form.format(item) for item in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _enum(kind: type[T]) -> Callable[[Any], T]:
    """Return a parser for the string values of enum `kind`, suggesting a close one."""
    values = [member.value for member in kind]  # type: ignore[attr-defined]
    quoted = '"{}"'

    def parse(value: Any) -> T:
        if isinstance(value, str) and value in values:
            return kind(value)  # type: ignore[call-arg]
        expected = f"expected {_join(values, quoted, 'or')}, got {describe(value)}"
        close = difflib.get_close_matches(value, values, n=1) if isinstance(value, str) else []
        raise ValueError(f'{expected}; did you mean "{close[0]}"?' if close else expected)

    return parse


def _duration(*, positive: bool = False, minimum: float = 0.0) -> Callable[[Any], float]:
    """Return a duration parser; `minimum` (seconds) rejects smaller non-zero intervals."""

    def parse(value: Any) -> float:
        seconds = parse_duration(value, positive=positive)
        if seconds < minimum:
            raise ValueError(f"must be at least {minimum:g} s, got {show(value)}")
        return seconds

    return parse


def _integer(low: int, high: int) -> Callable[[Any], int]:
    """Return a parser for integers in [low, high]."""
    return lambda value: parse_int(value, low, high)


def _list_of(item: Callable[[Any], T], what: str) -> Callable[[Any], tuple[T, ...]]:
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


def _text(value: Any) -> str:
    """Return a free-text string (it may be empty, but holds no NUL)."""
    return parse_string(value, empty=True)


def _unit_name(value: Any) -> str:
    """Return a dependency's unit name; raise ValueError if it breaks the name rule."""
    text = parse_string(value)
    if not valid_name(text):
        raise ValueError(f"{show(text)} is not a unit name: a name is {NAME_RULE}")
    return text


def _account(value: Any) -> str:
    """Return a user or group given by name or number, as a string."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a name or a number, got {describe(value)}")
    if isinstance(value, int):
        return str(parse_int(value, 0, _MAX_ID))
    text = parse_string(value)
    if len(text) > 256 or not text.isprintable() or any(c in text for c in " :/,"):
        raise ValueError(f"expected a user or group name or number, got {show(text)}")
    return text


def _environment_file(value: Any) -> str:
    """Return an environment file path: absolute, optionally prefixed by "-" (may be missing)."""
    text = parse_string(value)
    parse_abs_path(text.removeprefix("-"))
    return text


# (table, unit type) -> the section a unit gets when its file has no such table.
_DEFAULT_SECTIONS: dict[tuple[str, UnitType], Any] = {}


class _Builder:
    """Turns one parsed TOML document into a Unit, recording every problem."""

    def __init__(self, problems: _Problems):
        self.problems = problems

    def unit(self, name: str, document: dict[str, Any], path: str) -> Unit | None:
        """Return the Unit `document` describes, or None when it has errors (all recorded)."""
        top = _Table(self.problems, "", document)
        top.check_keys()
        description = top.get("description", _text, "")
        tables = {table: self._table(document, table) for table in TABLES}
        service = self.service(tables["service"])
        unit_type = service.type

        def section(table: str, build: Callable[[], Any]) -> Any:
            # A section the file leaves out is the same for every unit of a
            # type: build it once and share it (sections are immutable).
            # Most unit files are mostly [service]: loading 500 takes a
            # quarter less time, and 10,000 units hold one copy of each default.
            if tables[table].data or tables[table].broken:
                return build()
            key = (table, unit_type)
            if key not in _DEFAULT_SECTIONS:
                _DEFAULT_SECTIONS[key] = build()
            return _DEFAULT_SECTIONS[key]

        sections = {
            "dependencies": section("dependencies", lambda: self.dependencies(tables["dependencies"])),
            "ready": section("ready", lambda: self.ready(tables["ready"], unit_type)),
            "health": section("health", lambda: self.health(tables["health"])),
            "restart": section("restart", lambda: self.restart(tables["restart"], unit_type)),
            "stop": section("stop", lambda: self.stop(tables["stop"])),
            "log": section("log", lambda: self.log(tables["log"])),
            "limits": section("limits", lambda: self.limits(tables["limits"])),
        }
        if self.problems.errors:
            return None
        return Unit(name=name, description=description, service=service, path=path, **sections)

    def _table(self, document: dict[str, Any], table: str) -> _Table:
        """Return `document[table]` as a _Table (empty when absent or not a table)."""
        data = document.get(table, {})
        if not isinstance(data, dict):
            self.problems.error(table, f"expected a table ([{table}]), got {describe(data)}")
            return _Table(self.problems, table, {}, broken=True)
        section = _Table(self.problems, table, data)
        section.check_keys()
        return section

    def service(self, t: _Table) -> ServiceSection:
        """Return the [service] section; a missing command is an error (and an empty one here)."""
        if "command" not in t.data and not t.broken:
            t.error("command", 'missing: every unit needs a command, e.g. command = ["/usr/bin/app", "--flag"]')
        return ServiceSection(
            command=t.get("command", parse_argv, ()),
            type=t.get("type", _enum(UnitType), DEFAULT_TYPE),
            critical=t.get("critical", parse_bool, False),
            working_directory=t.get("working_directory", parse_abs_path, None),
            user=t.get("user", _account, None),
            group=t.get("group", _account, None),
            supplementary_groups=t.get("supplementary_groups", _list_of(_account, "group names or numbers"), None),
            environment=self.environment(t),
            environment_files=t.get("environment_files", _list_of(_environment_file, "absolute paths"), ()),
            clear_environment=t.get("clear_environment", parse_bool, False),
            umask=t.get("umask", parse_umask, None),
            oom_score_adjust=t.get("oom_score_adjust", _integer(-1000, 1000), None),
        )

    def environment(self, t: _Table) -> tuple[tuple[str, str], ...]:
        """Return [service] environment as (key, value) pairs in file order; each bad entry is an error."""
        value = t.data.get("environment", {})
        if not isinstance(value, dict):
            t.error("environment", f'expected a table of strings such as {{ PORT = "8000" }}, got {describe(value)}')
            return ()
        pairs = []
        for key, text in value.items():
            if not ENV_KEY_RE.fullmatch(key):
                t.error("environment", f"{show(key)} is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*")
            elif not isinstance(text, str):
                quoted = f'; quote it: {key} = "{show(text)}"' if isinstance(text, int | float) else ""
                t.error("environment", f"{key}: expected a string, got {describe(text)}{quoted}")
            elif "\0" in text:
                t.error("environment", f"{key}: must not contain a NUL character")
            else:
                pairs.append((key, text))
        return tuple(pairs)

    def dependencies(self, t: _Table) -> DependenciesSection:
        """Return the [dependencies] section; a name listed twice is a warning."""
        names = _list_of(_unit_name, "unit names")
        lists = {key: t.get(key, names, ()) for key in SCHEMA["dependencies"]}
        for key, listed in lists.items():
            if len(set(listed)) != len(listed):
                self.problems.warn(t.where(key), "lists a unit more than once")
                lists[key] = tuple(dict.fromkeys(listed))
        return DependenciesSection(**lists)

    def _probe(self, t: _Table, kinds: tuple[str, ...]) -> Probe | None:
        """Return the one probe key of `t` among `kinds`, or None; more than one is an error."""
        present = [key for key in kinds if key in t.data]
        if len(present) > 1:
            t.error(present[1], f"more than one probe ({', '.join(present)}): give exactly one")
        if not present:
            return None
        return t.get(present[0], lambda value: Probe.parse(ProbeKind(present[0]), value), None)

    def ready(self, t: _Table, unit_type: UnitType) -> ReadySection:
        """Return the [ready] section; a probe on a notify or oneshot unit is an error."""
        probe = self._probe(t, READY_PROBES)
        if probe is not None and unit_type is not UnitType.SIMPLE:
            defined_by = "sending READY=1" if unit_type is UnitType.NOTIFY else "exiting 0"
            t.error(
                probe.kind.value,
                f'a {unit_type.value} unit is ready by {defined_by}, not by a probe; remove it or use type = "simple"',
            )
        return ReadySection(
            probe=probe,
            timeout=t.get("timeout", _duration(), default_ready_timeout(unit_type)),
            interval=t.get("interval", _duration(positive=True, minimum=MIN_INTERVAL), DEFAULT_READY_INTERVAL),
        )

    def health(self, t: _Table) -> HealthSection:
        """Return the [health] section; settings without a probe are a warning."""
        probe = self._probe(t, HEALTH_PROBES)
        if probe is None and t.data and "path" not in t.data:
            self.problems.warn("[health]", "no probe (tcp, http or exec), so no health checks are made")
        return HealthSection(
            probe=probe,
            interval=t.get("interval", _duration(positive=True, minimum=MIN_INTERVAL), DEFAULT_HEALTH_INTERVAL),
            timeout=t.get("timeout", _duration(positive=True), DEFAULT_HEALTH_TIMEOUT),
            retries=t.get("retries", _integer(1, 1_000_000), DEFAULT_HEALTH_RETRIES),
        )

    def restart(self, t: _Table, unit_type: UnitType) -> RestartSection:
        """Return the [restart] section; `max_delay` below `delay` is an error."""
        section = RestartSection(
            policy=t.get("policy", _enum(RestartPolicy), default_restart_policy(unit_type)),
            delay=t.get("delay", _duration(), DEFAULT_RESTART_DELAY),
            max_delay=t.get("max_delay", _duration(), DEFAULT_RESTART_MAX_DELAY),
            max_retries=t.get("max_retries", _integer(0, 1_000_000), DEFAULT_RESTART_MAX_RETRIES),
            reset_after=t.get("reset_after", _duration(), DEFAULT_RESTART_RESET_AFTER),
        )
        if section.max_delay < section.delay:
            where = "max_delay" if "max_delay" in t.data else "delay"
            t.error(where, f"max_delay ({section.max_delay:g} s) is less than delay ({section.delay:g} s)")
        return section

    def stop(self, t: _Table) -> StopSection:
        """Return the [stop] section."""
        return StopSection(
            signal=t.get("signal", parse_signal, DEFAULT_STOP_SIGNAL),
            timeout=t.get("timeout", _duration(), DEFAULT_STOP_TIMEOUT),
            reload_signal=t.get("reload_signal", parse_signal, DEFAULT_RELOAD_SIGNAL),
        )

    def log(self, t: _Table) -> LogSection:
        """Return the [log] section."""
        return LogSection(
            file=t.get("file", parse_abs_path, None),
            max_bytes=t.get("max_bytes", _integer(MIN_LOG_MAX_BYTES, 2**62), DEFAULT_LOG_MAX_BYTES),
            backups=t.get("backups", _integer(0, MAX_LOG_BACKUPS), DEFAULT_LOG_BACKUPS),
        )

    def limits(self, t: _Table) -> LimitsSection:
        """Return the [limits] section: rlimits in file order, capabilities deduplicated."""
        rlimits = []
        for key in t.data:
            if key in RLIMITS:
                soft, hard = t.get(key, parse_rlimit, (None, None))
                if soft is not None:
                    rlimits.append((key, soft, hard))
        capabilities = t.get("capabilities", _list_of(parse_capability, "capability names"), None)
        return LimitsSection(
            rlimits=tuple(rlimits),
            no_new_privileges=t.get("no_new_privileges", parse_bool, False),
            capabilities=None if capabilities is None else tuple(dict.fromkeys(capabilities)),
        )


# --- back to TOML ------------------------------------------------------------


def unit_from_dict(name: str, document: dict[str, Any], path: str) -> Unit:
    """Return the unit `name` built from a TOML-shaped `document` (as
    `unit_to_dict` makes it), validated like a file; raise ConfigError.
    Used to carry definitions across a re-exec without re-reading files."""
    problems = _Problems(path)
    unit = None
    try:
        unit = _Builder(problems).unit(name, document, path)
    except Exception as exc:  # noqa: BLE001 - a damaged state must not take pidone down
        problems.error("", f"cannot rebuild: {type(exc).__name__}: {_printable(str(exc))[:200]}")
    if unit is None or problems.errors:
        raise ConfigError(problems.finish())
    return unit


def unit_to_dict(unit: Unit) -> dict[str, Any]:
    """Return the TOML document (for tomli-w) that loads back as `unit`, leaving out defaults."""
    service = unit.service
    defaults = {
        "ready": ReadySection(timeout=default_ready_timeout(service.type)),
        "restart": RestartSection(policy=default_restart_policy(service.type)),
    }
    document: dict[str, Any] = {}
    if unit.description:
        document["description"] = unit.description
    for section in fields(Unit):
        value = getattr(unit, section.name)
        if section.name in TABLES:
            table = _section_to_dict(value, defaults.get(section.name))
            if table or section.name == "service":
                document[section.name] = table
    return document


def _section_to_dict(section: Any, default: Any = None) -> dict[str, Any]:
    """Return the non-default keys of one section in their TOML form."""
    default = default if default is not None else _default_section(type(section))
    out: dict[str, Any] = {}
    for item in fields(section):
        value = getattr(section, item.name)
        if item.name == "command" or value != getattr(default, item.name):
            out.update(_to_toml(item.name, value))
    return out


def _default_section(kind: type) -> Any:
    """Return the all-defaults instance of a section class."""
    return kind(command=()) if kind is ServiceSection else kind()


def _to_toml(key: str, value: Any) -> dict[str, Any]:
    """Return {toml_key: toml_value} for one model field."""
    if key == "probe":
        probe: Probe = value
        return {probe.kind.value: list(probe.argv) if probe.kind is ProbeKind.EXEC else probe.target}
    if key == "environment":
        return {key: dict(value)}
    if key == "umask":
        return {key: f"{value:04o}"}
    if key in ("signal", "reload_signal"):
        return {key: _signal_name(value)}
    if key == "rlimits":
        return {name: _rlimit_to_toml(soft, hard) for name, soft, hard in value}
    if isinstance(value, UnitType | RestartPolicy):
        return {key: value.value}
    if isinstance(value, tuple):
        return {key: list(value)}
    return {key: value}


def _signal_name(number: int) -> str:
    """Return the name of signal `number` ("SIGTERM")."""
    return signal.Signals(number).name


def _rlimit_to_toml(soft: int, hard: int) -> Any:
    """Return an rlimit in its shortest TOML form."""
    values = ["infinity" if limit == RLIM_INFINITY else limit for limit in (soft, hard)]
    return values[0] if soft == hard else values


"""Unit files to Units: reading the units directory safely, TOML syntax, the strict schema, every problem gathered.

`load_directory` never raises for anything a unit file or the directory can
do to it: each problem becomes a `Problem` naming the file (and line and
column, or table and key), and the valid units are returned beside them.
`load_units` is the all-or-nothing form boot uses; `parse_unit` checks one
file's bytes, for tests and fuzzing. The dependency graph (missing targets,
cycles) is `graph.check`'s business, not this module's.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import tomllib
from contextlib import contextmanager
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pidone.errors import ConfigError, Problem
from pidone.loader import dropins, templates
from pidone.loader.build import Builder, unit_from_dict, unit_to_dict
from pidone.loader.keylines import key_lines, line_of
from pidone.loader.schema import HEALTH_PROBES, READY_PROBES, SCHEMA, TABLES, Problems, printable
from pidone.loader.templates import Template
from pidone.units import NAME_RULE, Unit, show, valid_name

__all__ = [
    "HEALTH_PROBES", "READY_PROBES", "SCHEMA", "TABLES", "LoadResult", "load_directory", "load_units",
    "locate", "parse_unit", "unit_from_dict", "unit_to_dict",
]  # fmt: skip

SUFFIX = ".toml"
MAX_FILE_SIZE = 1024 * 1024  # SPEC §2: only regular files up to 1 MiB are read

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


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
    templates: dict[str, Template] = field(default_factory=dict)  # valid templates, by "NAME@"

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


_WHERE = re.compile(r"\[(?P<table>[a-z_]+)\](?: (?P<key>[a-z_]+))?")


def locate(problems: list[Problem]) -> list[Problem]:
    """Return `problems` with the line of the key each names ("[dependencies]
    requires"), read again from its file: for the problems found after
    loading (the dependency graph's). A file that cannot be read again as a
    regular file just leaves its problems without a line."""
    files: dict[str, dict[tuple[str, ...], int]] = {}
    located = []
    for problem in problems:
        match = _WHERE.fullmatch(problem.where) if problem.line is None else None
        if match:
            if problem.path not in files:
                files[problem.path] = _key_lines_of(problem.path)
            key = (match["table"], match["key"]) if match["key"] else (match["table"],)
            line = line_of(files[problem.path], key)
            if line is not None:
                problem = dataclasses.replace(problem, line=line)
        located.append(problem)
    return located


def _key_lines_of(path: str) -> dict[tuple[str, ...], int]:
    """Return the key lines of the unit file at `path`, or {} if it cannot be read (never blocks on a FIFO)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        return key_lines(_read_capped(fd).decode("utf-8"))
    except (OSError, _Refused, UnicodeDecodeError, RecursionError):
        return {}
    finally:
        os.close(fd)


# --- the directory -----------------------------------------------------------


def load_directory(
    path: str | os.PathLike[str], *, enforce_ownership: bool | None = None, extra_instances: Iterable[str] = ()
) -> LoadResult:
    """Load every `NAME.toml` in directory `path` (not recursively), with its
    drop-ins, and every instance of its templates named there or in
    `extra_instances`; return a LoadResult.

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
        result.errors[directory] = [Problem(printable(directory), f"cannot open the units directory: {exc.strerror}")]
        return result
    try:
        refusal = enforce_ownership and _insecure(os.fstat(dir_fd), "the units directory")
        if refusal:
            result.errors[directory] = [Problem(printable(directory), refusal)]
            return result
        with os.scandir(dir_fd) as scan:
            listing = sorted(scan, key=lambda e: e.name)
        entries = [entry for entry in listing if _is_unit_file(entry.name)]
        loader = _DirectoryLoader(directory, dir_fd, enforce_ownership)
        overrides = _read_dropins(loader, listing, {entry.name[: -len(SUFFIX)] for entry in entries}, result)
        for entry in entries:
            loader.load(entry, result, overrides.pop(entry.name[: -len(SUFFIX)], ()))
    finally:
        os.close(dir_fd)
    _instance_dropins(overrides, result)
    templates.make_instances(result, extra_instances)
    return result


def _instance_dropins(overrides: dict[str, list[tuple[str, bytes | Problem]]], result: LoadResult) -> None:
    """Decode the `NAME@INSTANCE.toml.d/` drop-ins left, for their instances."""
    for name, files in overrides.items():
        template = result.templates.get(templates.template_of(name) or "")
        if template is None:
            continue  # its template is broken: that is reported
        errors: list[Problem] = []
        decoded = []
        for path, data in files:
            if isinstance(data, Problem):
                errors.append(data)
            elif (document := _decode_file(data, path, errors)) is not None:
                decoded.append((path, document))
        if errors:
            result.errors[name] = errors
        templates.add_instance_dropins(template, name.partition("@")[2], None if errors else decoded)


def _read_dropins(
    loader: _DirectoryLoader, listing: list[os.DirEntry[str]], names: set[str], result: LoadResult
) -> dict[str, list[tuple[str, bytes | Problem]]]:
    """Return each unit's drop-ins (path and bytes, or the Problem of one that
    could not be read); a drop-in directory with drop-ins but no unit file is
    an error of its own."""
    found: dict[str, list[tuple[str, bytes | Problem]]] = {}
    for entry in listing:
        if not dropins.is_dropin_dir(entry.name):
            continue
        files, problems = dropins.read_directory(loader, entry)
        name = dropins.stem(entry.name)
        if name not in names and (templates.template_of(name) or "") not in names:
            if files or problems:
                unit_file = printable(os.path.join(loader.directory, name + SUFFIX))
                result.errors[entry.name] = problems + [
                    Problem(path, f"a drop-in without its unit file: there is no {unit_file}") for path, _ in files
                ]
            continue
        found[name] = [*files, *((problem.path, problem) for problem in problems)]
    return found


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

    def load(self, entry: os.DirEntry[str], result: LoadResult, overrides: Sequence[tuple[str, bytes | Problem]] = ()) -> None:
        """Read, parse and validate one entry with its drop-ins; record its unit or its problems in `result`."""
        file_path = printable(os.path.join(self.directory, entry.name))
        name = entry.name[: -len(SUFFIX)]
        if not valid_name(name):
            message = f"{show(name)} is not a valid unit name: a name is {NAME_RULE}"
            result.errors[entry.name] = [Problem(file_path, message)]
            return
        try:
            data = self._read(entry)
        except Exception as exc:  # whatever happens to one file, the others still load
            result.errors[name] = [_unit_file_problem(file_path, exc)]
            return
        if templates.is_template(name):
            document, errors, origin = _merged_document(data, file_path, overrides)
            template, errors, warnings, listed = templates.load_template(name, document, errors, origin, file_path)
            result.warnings.extend(warnings)
            if template is None:
                result.errors[name] = errors
                result.errors.update((name + instance, []) for instance in listed)  # invalid, not missing
            else:
                result.templates[name] = template
            return
        unit, errors, warnings = _parse_file(name, data, file_path, overrides)
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
                f"refused: a symlink to {show(link_text)} ({printable(resolved)}), outside the units directory"
            )
        return os.path.basename(resolved)


def _unit_file_problem(path: str, exc: Exception) -> Problem:
    """Return the problem of a file that could not be read."""
    if isinstance(exc, _Refused):
        return Problem(path, str(exc))
    if isinstance(exc, OSError):
        return Problem(path, f"cannot read: {exc.strerror or exc}")
    return Problem(path, f"cannot read: {type(exc).__name__}: {printable(str(exc))}")


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



_TOML_POSITION = re.compile(r"(?P<message>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)", re.S)
_TOML_AT_END = " (at end of document)"


def _parse_file(
    name: str, data: bytes, path: str, overrides: Sequence[tuple[str, bytes | Problem]] = ()
) -> tuple[Unit | None, list[Problem], list[Problem]]:
    """Return (unit or None, errors, warnings) for one file's bytes and its
    drop-ins' (merged over it in order); never raises."""
    document, errors, origin = _merged_document(data, path, overrides)
    warnings: list[Problem] = []
    problems = Problems(path)
    unit = None
    with _never_raises(problems):
        if document is not None:
            if not valid_name(name):
                problems.error("", f"{show(name)} is not a valid unit name: a name is {NAME_RULE}")
            unit = Builder(problems).unit(name, document, path)
    if (problems.errors or problems.warnings) and not overrides:
        # Lines only now (a good file never pays for them), and only for a
        # file alone: a key a drop-in set has no line in the merged document.
        try:
            problems.text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        problems.locate()
    errors += dropins.blame(problems.finish(), origin)
    warnings += dropins.blame(problems.warnings, origin)
    if errors:
        return None, errors, warnings
    return unit, [], warnings


def _merged_document(
    data: bytes, path: str, overrides: Sequence[tuple[str, bytes | Problem]]
) -> tuple[dict[str, Any] | None, list[Problem], dict[str, str]]:
    """Return (the document of `data` with every drop-in merged over it, or
    None; errors; which drop-in set each key). Never raises."""
    errors: list[Problem] = []
    origin: dict[str, str] = {}
    document = _decode_file(data, path, errors)
    for dropin_path, dropin in overrides:
        if isinstance(dropin, Problem):
            errors.append(dropin)
            continue
        over = _decode_file(dropin, dropin_path, errors)
        if over is not None and document is not None:
            document = dropins.merge(document, over, dropin_path, origin)
    return (None if errors else document), errors, origin


@contextmanager
def _never_raises(problems: Problems):
    """Whatever parsing a file raises becomes a problem of that file: a
    hostile file must never take pidone down."""
    try:
        yield
    except RecursionError:
        problems.error("", "cannot parse: nested too deeply")
    except MemoryError:
        problems.error("", "cannot parse: out of memory")
    except Exception as exc:  # noqa: BLE001
        problems.error("", f"cannot parse: {type(exc).__name__}: {printable(str(exc))[:200]}")


def _decode_file(data: bytes, path: str, errors: list[Problem]) -> dict[str, Any] | None:
    """Return the TOML document in one file's bytes, or None after adding its problems to `errors`."""
    problems = Problems(path)
    document = None
    with _never_raises(problems):
        document = _decode(data, problems)
    errors += problems.finish()
    return None if problems.errors else document


def _decode(data: bytes, problems: Problems) -> dict[str, Any] | None:
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
        document = tomllib.loads(text)
        problems.text = text
        return document
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.fullmatch(message)
        if match:
            line, col, message = int(match["line"]), int(match["col"]), match["message"]
        else:
            line, col = _position(text)
            message = message.removesuffix(_TOML_AT_END)
        problems.at(line, col, f"invalid TOML: {_lower_first(printable(message))}")
    except RecursionError:
        problems.error("", "invalid TOML: arrays or tables nested too deeply")
    except ValueError as exc:  # int() past sys.get_int_max_str_digits()
        problems.error("", f"invalid TOML: {_lower_first(printable(str(exc)).split(';')[0])}")
    return None


def _position(text: str) -> tuple[int, int]:
    """Return the 1-based (line, column) just after `text`."""
    return text.count("\n") + 1, len(text) - (text.rfind("\n") + 1) + 1


def _lower_first(text: str) -> str:
    """Return `text` with its first letter in lower case (tomllib capitalises its messages)."""
    return text[:1].lower() + text[1:]


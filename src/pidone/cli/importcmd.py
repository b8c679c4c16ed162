"""`pidone import`: turn systemd services, supervisord programs and Procfiles into pidone unit files.

The conversion itself is `pidone.importers` (pure); this module reads the
inputs, validates every generated unit with the loader, prints or writes
the TOML, and reports the notes. docs/import.md has the mapping.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass, field
from typing import Any

import tomli_w

from pidone.errors import ConfigError
from pidone.importers import ImportResult, detect, import_text
from pidone.loader import SUFFIX, parse_unit

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
MAX_INPUT_SIZE = 4 * 1024 * 1024

USAGE = """\
usage: pidone import [-o DIR] [--force] [--json] FILE...

Convert systemd service units (*.service), supervisord configurations
([program:x] sections) and Procfiles into pidone unit files (TOML). Each
unit is printed on stdout, or written to DIR/NAME.toml with -o. Every
directive that could not be carried over, or only approximately, is listed
on stderr with the reason, input by input (and in a comment atop the unit).
Every unit is checked as `pidone check` would before it is printed or
written.

  -o, --output DIR   write DIR/NAME.toml files instead of printing (DIR must exist)
  --force            with -o, replace files that already exist
  --json             print one JSON object on stdout instead (units, notes, errors)
  -h, --help         print this help

Exit 0 when every input was converted (notes are fine), 1 when some input
or unit could not be, 2 on a usage error.
"""


class _UsageError(Exception):
    """The command line is wrong; the message says how."""


@dataclass
class _Options:
    files: list[str] = field(default_factory=list)
    output: str | None = None
    force: bool = False
    json: bool = False


@dataclass
class _Unit:
    """One generated unit and what became of it."""

    result: ImportResult
    toml: str = ""
    path: str | None = None  # where it was written
    error: str | None = None
    merged_into: str | None = None  # a .timer or .socket: the unit that took its table


@dataclass
class _Input:
    """One input file and the units made from it."""

    file: str
    format: str | None = None
    error: str | None = None
    units: list[_Unit] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(unit.error is None for unit in self.units)


def import_main(argv: list[str]) -> int:
    """Run `pidone import [-o DIR] [--force] [--json] FILE...` and return its exit status."""
    try:
        options = _parse_args(argv)
    except _UsageError as exc:
        sys.stderr.write(f"pidone import: {exc}\n{USAGE}")
        return EXIT_USAGE
    if options is None:
        sys.stdout.write(USAGE)
        return EXIT_OK
    inputs = [_convert(path) for path in options.files]
    _merge_fragments(inputs)
    _check_names(inputs)
    _check_requires(inputs, options.output)
    for item in inputs:
        for unit in item.units:
            if unit.error is None and unit.merged_into is None:
                unit.toml = _render(unit.result)
                unit.error = _validate(unit)
    if options.output is not None:
        for item in inputs:
            for unit in item.units:
                if unit.error is None and unit.merged_into is None:
                    _write(unit, options.output, options.force)
    if options.json:
        _print_json(inputs)
    else:
        _print_text(inputs, options.output is not None)
    return EXIT_OK if all(item.ok for item in inputs) else EXIT_FAILED


def _parse_args(argv: list[str]) -> _Options | None:
    """Return the options, or None when help was asked for; raise _UsageError."""
    options = _Options()
    args = list(argv)
    only_files = False
    while args:
        arg = args.pop(0)
        if only_files or arg == "-" or not arg.startswith("-"):
            options.files.append(arg)
        elif arg == "--":
            only_files = True
        elif arg in ("-h", "--help"):
            return None
        elif arg in ("-o", "--output"):
            if not args:
                raise _UsageError(f"option {arg} needs a directory")
            options.output = args.pop(0)
        elif arg.startswith("--output="):
            options.output = arg.partition("=")[2]
        elif arg.startswith("-o") and len(arg) > 2:
            options.output = arg[2:]
        elif arg == "--force":
            options.force = True
        elif arg == "--json":
            options.json = True
        else:
            raise _UsageError(f"unknown option {arg!r}")
    if not options.files:
        raise _UsageError("no FILE given: name the .service files, supervisord configurations or Procfiles to convert")
    if options.force and options.output is None:
        raise _UsageError("--force only makes sense with -o DIR")
    if options.output is not None and not os.path.isdir(options.output):
        reason = "not a directory" if os.path.exists(options.output) else "no such directory (create it first)"
        raise _UsageError(f"{options.output}: {reason}")
    return options


def _convert(path: str) -> _Input:
    """Read `path` and convert it; a file that cannot be read or converted gets an error."""
    item = _Input(path)
    try:
        text = _read(path)
    except (OSError, ValueError) as exc:
        item.error = str(exc)
        return item
    item.format = detect(path, text)
    try:
        results = import_text(os.path.abspath(path), text, os.environ)
    except ValueError as exc:
        item.error = str(exc)
        return item
    for result in results:
        result.source = _relative_source(result.source, path)
        item.units.append(_Unit(result, error=None if result.ok else f"cannot convert: {result.error}"))
    return item


def _merge_fragments(inputs: list[_Input]) -> None:
    """Put each .timer's [timer] and .socket's [socket] into the unit made
    from the service it starts, imported in the same run; one without its
    service is an error that says what to add."""
    services = {unit.result.name: unit for item in inputs for unit in item.units
                if unit.error is None and not unit.result.fragment}
    for item in inputs:
        for unit in item.units:
            if unit.error is not None or not unit.result.fragment:
                continue
            (table, section), = unit.result.unit.items()
            service = services.get(unit.result.name)
            if service is None:
                unit.error = (f"a .{table} becomes the [{table}] table of the service it starts: import "
                              f"{unit.result.name}.service in the same run")
            elif table in service.result.unit:
                unit.error = f"{unit.result.name} already has a [{table}] table from another input"
            else:
                service.result.unit[table] = section
                unit.merged_into = unit.result.name
                # Its notes go with the unit they concern (and into its header).
                origin = os.path.basename(unit.result.source)
                service.result.notes += [f"{origin}: {note}" for note in unit.result.notes]
                unit.result.notes = []


def _relative_source(source: str, path: str) -> str:
    """Return `source` naming the file as the user wrote it, not its absolute path."""
    absolute = os.path.abspath(path)
    return path + source[len(absolute) :] if source.startswith(absolute) else source


def _read(path: str) -> str:
    """Return the text of regular file `path`; raise OSError or ValueError saying what is wrong."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ValueError("not a regular file")
            data = f.read(MAX_INPUT_SIZE + 1)
    except OSError as exc:
        raise OSError(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_INPUT_SIZE:
        raise ValueError(f"larger than {MAX_INPUT_SIZE} bytes: not a unit file")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None


def _check_names(inputs: list[_Input]) -> None:
    """Refuse a unit whose name an earlier unit of this run already took."""
    taken: dict[str, str] = {}
    for item in inputs:
        for unit in item.units:
            if unit.error is not None or unit.merged_into is not None:
                continue
            name = unit.result.name
            if name in taken:
                unit.error = f"not written: the unit name {name!r} is already taken by {taken[name]}; rename one of them"
            else:
                taken[name] = unit.result.source


def _check_requires(inputs: list[_Input], output: str | None) -> None:
    """Note each `requires` on a unit that neither this run nor the output directory provides."""
    made = {unit.result.name for item in inputs for unit in item.units if unit.error is None}
    for item in inputs:
        for unit in item.units:
            if unit.error is not None or unit.result.unit is None:
                continue
            for target in unit.result.unit.get("dependencies", {}).get("requires", []):
                if target in made or (output is not None and os.path.exists(os.path.join(output, target + SUFFIX))):
                    continue
                unit.result.notes.append(
                    f"requires={target}: warning: {target}{SUFFIX} is not part of this import"
                    f"{'' if output is None else ' nor in ' + output}; `pidone check` refuses a requires on a"
                    f" unit that does not exist: import or write it too, or make it a want"
                )


def _render(result: ImportResult) -> str:
    """Return the unit file: a comment naming its source and listing its notes, then the TOML."""
    lines = [f"# {result.name}{SUFFIX}: made by `pidone import` from {_comment(result.source)}"]
    if result.notes:
        lines.append("# Not carried over, or only approximately (see docs/import.md):")
        lines += [f"#   {_comment(note)}" for note in result.notes]
    assert result.unit is not None
    return "\n".join(lines) + "\n\n" + tomli_w.dumps(result.unit)


def _comment(text: str) -> str:
    """Return `text` safe inside a one-line TOML comment (no control characters)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _validate(unit: _Unit) -> str | None:
    """Return None when the unit loads as `pidone check` would load it, else the error (a bug of the importer)."""
    name = unit.result.name
    try:
        parse_unit(name, unit.toml.encode(), name + SUFFIX)
    except ConfigError as exc:
        problems = "; ".join(str(problem) for problem in exc.problems)
        return f"bug in pidone import: the unit it made does not load (please report it): {problems}"
    return None


def _write(unit: _Unit, directory: str, force: bool) -> None:
    """Write the unit to DIRECTORY/NAME.toml atomically; without `force` never replace a file."""
    final = os.path.join(directory, unit.result.name + SUFFIX)
    temp = os.path.join(directory, f".{unit.result.name}{SUFFIX}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(unit.toml)
        try:
            if force:
                os.replace(temp, final)
            else:
                os.link(temp, final)  # fails if it exists: never replace by accident
        finally:
            if os.path.lexists(temp):
                os.unlink(temp)
    except FileExistsError:
        unit.error = f"not written: {final} already exists; use --force to replace it"
        return
    except OSError as exc:
        unit.error = f"not written: cannot write {final}: {exc.strerror or exc}"
        return
    unit.path = final


def _print_text(inputs: list[_Input], wrote: bool) -> None:
    """Print the units on stdout (unless written) and, per input, the notes and errors on stderr."""
    out: list[str] = []
    err: list[str] = []
    units = notes = failed = 0
    for item in inputs:
        if item.error is not None:
            err.append(f"{item.file}: cannot convert: {item.error}\n")
            failed += 1
            continue
        for unit in item.units:
            result = unit.result
            if unit.error is not None:
                err.append(f"{result.source}: {result.name}: {unit.error}\n")
                failed += 1
            elif unit.merged_into is not None:
                table = next(iter(result.unit))
                err.append(f"{result.source} -> [{table}] of {unit.merged_into}{SUFFIX}\n")
            else:
                units += 1
                target = unit.path if unit.path else result.name + SUFFIX
                err.append(f"{result.source} -> {target}\n")
                if not wrote:
                    out.append(unit.toml)
            notes += len(result.notes)
            err += [f"  {_comment(note)}\n" for note in result.notes]
    summary = f"pidone import: {_plural(units, 'unit')} from {_plural(len(inputs), 'input')}, {_plural(notes, 'note')}"
    if failed:
        summary += f"; {failed} failed"
    err.append(summary + "\n")
    sys.stdout.write("\n".join(out))
    sys.stdout.flush()
    sys.stderr.write("".join(err))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _print_json(inputs: list[_Input]) -> None:
    """Print everything as one JSON object on stdout."""
    import orjson

    document: dict[str, Any] = {
        "ok": all(item.ok for item in inputs),
        "inputs": [
            {
                "file": item.file,
                "format": item.format,
                "error": item.error,
                "units": [
                    {
                        "name": unit.result.name,
                        "source": unit.result.source,
                        "ok": unit.error is None,
                        "error": unit.error,
                        "notes": unit.result.notes,
                        "unit": unit.result.unit if unit.error is None else None,
                        "toml": unit.toml if unit.error is None else None,
                        "path": unit.path,
                        "merged_into": unit.merged_into,
                    }
                    for unit in item.units
                ],
            }
            for item in inputs
        ],
    }
    sys.stdout.write(orjson.dumps(document).decode() + "\n")
    sys.stdout.flush()

"""`pidone check` and `pidone graph`: validate a units directory and draw its dependency graph, running nothing."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from collections.abc import Mapping

from pidone import graph
from pidone.errors import Problem, SpawnError
from pidone.expand import command_references, references
from pidone.loader import LoadResult, load_directory, locate
from pidone.spawn import read_environment_file
from pidone.units import Unit

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
DEFAULT_UNITS = "/etc/units"

CHECK_USAGE = """\
usage: pidone check [DIR] [--json]

Validate the unit files in DIR (default: $PIDONE_UNITS, else /etc/units)
without running anything: print every error and warning, then the start
batches. Exit 0 when valid, 1 when not, 2 on a usage error.

  --json   print one JSON object on stdout instead
"""

GRAPH_USAGE = """\
usage: pidone graph [DIR]

Print the dependency graph of the units in DIR (default: $PIDONE_UNITS,
else /etc/units) as Graphviz DOT. An edge goes from a unit to a unit it
starts after: requires solid, wants dashed, after dotted; a blue edge
labelled part_of goes to the unit it stops and restarts with; missing units
are red. Exit 0 when valid, 1 when not, 2 on a usage error.
"""


class _UsageError(Exception):
    """The command line is wrong; the message says how."""


@dataclass
class _Report:
    """Everything `check` and `graph` say about one directory."""

    load: LoadResult
    errors: list[Problem]
    warnings: list[Problem]

    @property
    def ok(self) -> bool:
        """Return True when nothing is wrong (warnings allowed)."""
        return not self.errors


def check_main(argv: list[str]) -> int:
    """Run `pidone check [DIR] [--json]` and return its exit status."""
    try:
        directory, options = _parse_args(argv, {"--json"})
    except _UsageError as exc:
        return _usage_error("check", str(exc), CHECK_USAGE)
    if directory is None:
        sys.stdout.write(CHECK_USAGE)
        return EXIT_OK
    report = _examine(directory)
    batches = graph.start_batches(report.load.units) if report.ok else []
    if "--json" in options:
        _print_json(report, batches)
    else:
        _print_problems(report)
        units = report.load.units
        out = [f"batch {number}: {' '.join(_labelled(units[n]) for n in names)}\n"
               for number, names in enumerate(batches, 1)]
        out.append(_summary(report, batches) + "\n")
        sys.stdout.write("".join(out))
    return EXIT_OK if report.ok else EXIT_INVALID


def graph_main(argv: list[str]) -> int:
    """Run `pidone graph [DIR]`: print DOT on stdout, problems on stderr; return the exit status."""
    try:
        directory, _options = _parse_args(argv, set())
    except _UsageError as exc:
        return _usage_error("graph", str(exc), GRAPH_USAGE)
    if directory is None:
        sys.stdout.write(GRAPH_USAGE)
        return EXIT_OK
    report = _examine(directory)
    _print_problems(report)
    sys.stdout.write(to_dot(report.load))
    return EXIT_OK if report.ok else EXIT_INVALID


def _parse_args(argv: list[str], flags: set[str]) -> tuple[str | None, set[str]]:
    """Return (directory, flags given); directory is None when help was asked for. Raise _UsageError."""
    positional: list[str] = []
    given: set[str] = set()
    for arg in argv:
        if arg in ("-h", "--help"):
            return None, given
        if arg in flags:
            given.add(arg)
        elif arg.startswith("-") and arg != "-":
            raise _UsageError(f"unknown option {arg!r}")
        else:
            positional.append(arg)
    if len(positional) > 1:
        raise _UsageError(f"expected at most one directory, got {len(positional)}")
    directory = positional[0] if positional else os.environ.get("PIDONE_UNITS") or DEFAULT_UNITS
    if not os.path.isdir(directory):
        reason = "not a directory" if os.path.exists(directory) else "no such directory"
        raise _UsageError(f"{directory}: {reason}")
    return directory, given


def _usage_error(command: str, message: str, usage: str) -> int:
    """Print a usage error and return EXIT_USAGE."""
    sys.stderr.write(f"pidone {command}: {message}\n{usage}")
    return EXIT_USAGE


def _examine(directory: str) -> _Report:
    """Load `directory` and check its graph; return every error and warning found."""
    load = load_directory(directory)
    graph_errors, graph_warnings = graph.check(load.units, invalid=load.errors.keys())
    # Instances of one template would each say the same: once is enough.
    unset = list(dict.fromkeys(w for name in sorted(load.units) for w in unset_warnings(load.units[name], os.environ)))
    return _Report(load, load.problems() + locate(graph_errors), load.warnings + locate(graph_warnings) + unset)


def unset_warnings(unit: Unit, environ: Mapping[str, str]) -> list[Problem]:
    """Return a warning for each `${NAME}` (or whole-word `$NAME`) without a
    default that is set nowhere `check` can see: not in `environ` (unless the
    unit clears it), its environment files (as they are now) or `environment`."""
    service = unit.service
    places: list[tuple[str, list[tuple[str, bool]]]] = [("[service] command", command_references(service.command))]
    for table in ("ready", "health"):
        probe = getattr(unit, table).probe
        if probe is not None and probe.argv:
            places.append((f"[{table}] exec", command_references(probe.argv)))
    if service.working_directory:
        places.append(("[service] working_directory", references(service.working_directory)))
    places.append(("[service] environment", [ref for _, value in service.environment for ref in references(value)]))
    if unit.log.file:
        places.append(("[log] file", references(unit.log.file)))
    if not any(refs for _, refs in places):
        return []
    known = {key for key, _ in service.environment} | {"PIDONE_UNIT"}
    if not service.clear_environment:
        known.update(environ)
    if service.user is not None:
        known.update(("HOME", "USER", "LOGNAME", "SHELL"))
    if service.type.value == "notify":
        known.add("NOTIFY_SOCKET")
    for spec in service.environment_files:
        try:
            known.update(os.fsdecode(key) for key in read_environment_file(spec))
        except SpawnError:
            pass  # an unreadable file is the start's business
    warnings = []
    for where, refs in places:
        unset = sorted({name for name, has_default in refs if not has_default and name not in known})
        if unset:
            names = ", ".join(unset)
            verb = "is" if len(unset) == 1 else "are"
            warnings.append(Problem(unit.path, f"{names} {verb} set nowhere pidone can see: empty"
                                    " unless set when the unit starts", where=where, warning=True))
    return warnings


def _print_problems(report: _Report) -> None:
    """Write every error, then every warning, one per line, to stderr."""
    lines = [f"{problem}\n" for problem in (*report.errors, *report.warnings)]
    sys.stderr.write("".join(lines))


def _labelled(unit) -> str:
    """A unit's name, marked when something other than the boot starts it."""
    if unit.timer is not None and not unit.timer.on_boot:
        return f"{unit.name}(timer)"
    if unit.socket is not None and unit.socket.on_demand:
        return f"{unit.name}(on-demand)"
    return unit.name


def _summary(report: _Report, batches: list[list[str]]) -> str:
    """Return the one-line verdict."""
    units = _plural(len(report.load.units), "valid unit")
    warnings = f", {_plural(len(report.warnings), 'warning')}" if report.warnings else ""
    if report.ok:
        return f"ok: {units} in {_plural(len(batches), 'batch', 'batches')}{warnings}"
    files = {problem.path for problem in report.errors}
    return f"invalid: {_plural(len(report.errors), 'error')} in {_plural(len(files), 'file')}{warnings}; {units}"


def _plural(count: int, word: str, many: str | None = None) -> str:
    """Return "1 unit" or "3 units"."""
    return f"{count} {word if count == 1 else many or word + 's'}"


def _print_json(report: _Report, batches: list[list[str]]) -> None:
    """Write the report as one JSON object on stdout."""
    import orjson

    document = {
        "ok": report.ok,
        "units": sorted(report.load.units),
        "batches": batches,
        "errors": [_problem_json(problem) for problem in report.errors],
        "warnings": [_problem_json(problem) for problem in report.warnings],
    }
    sys.stdout.buffer.write(orjson.dumps(document) + b"\n")
    sys.stdout.flush()


def _problem_json(problem: Problem) -> dict[str, object]:
    """Return one problem as a JSON object."""
    return {
        "file": problem.path,
        "line": problem.line,
        "col": problem.col,
        "where": problem.where,
        "message": problem.message,
    }


_EDGE_STYLES = (("requires", "solid"), ("wants", "dashed"), ("after", "dotted"))


def to_dot(load: LoadResult) -> str:
    """Return the DOT graph of the valid units in `load`.

    One node per unit; an edge from a unit to each unit it starts after,
    solid for requires, dashed for wants, dotted for after (a target named
    twice is drawn once, in the strongest style). Targets that do not exist
    or failed to load are drawn red.
    """
    units = load.units
    lines = [
        "digraph units {",
        "  // an edge goes from a unit to one it starts after:",
        "  // requires solid, wants dashed, after dotted; missing or invalid units red",
        "  // blue, labelled part_of: stopped and restarted with that unit",
    ]
    missing: set[str] = set()
    edges: list[str] = []
    for name in sorted(units):
        lines.append(f'  "{name}";')
        drawn: set[str] = set()
        for key, style in _EDGE_STYLES:
            for target in getattr(units[name].dependencies, key):
                if target in drawn:
                    continue
                drawn.add(target)
                if target not in units:
                    missing.add(target)
                edges.append(f'  "{name}" -> "{target}" [style={style}];')
        for target in units[name].dependencies.part_of:  # not ordering: drawn apart
            if target not in units:
                missing.add(target)
            edges.append(f'  "{name}" -> "{target}" [color=blue, label="part_of"];')
    for name in sorted(missing):
        why = "invalid" if name in load.errors else "missing"
        lines.append(f'  "{name}" [color=red, fontcolor=red, label="{name} ({why})"];')
    lines += edges
    lines.append("}")
    return "\n".join(lines) + "\n"

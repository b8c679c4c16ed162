"""supervisord: each [program:x] process of a supervisord configuration to one pidone unit.

This module reads the file (sections, groups, numprocs) and the [log] options; each other option of a
program is turned into pidone keys by its handler in `supervisord_options`.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pidone.importers.notes import APPROXIMATED, _MAX_NAME, ImportResult, _name_note, _Notes, _stem, sanitize_name
from pidone.importers.supervisord_options import (
    _LATE_OPTIONS,
    _OPTIONS,
    _PLACEHOLDER,
    _as_group_default,
    _command,
    _dispatch,
    _environment,
    _Expansions,
    _Process,
)
from pidone.importers.values import _safe_bool

_MAX_NUMPROCS = 1000  # one unit file each: more is a typo

_SUPERVISORD_DEFAULT_STARTSECS = 1
_SUPERVISORD_DEFAULT_STARTRETRIES = 3
_SUPERVISORD_DEFAULT_LOG_MAX_BYTES = 50 * 1024 * 1024
_SUPERVISORD_DEFAULT_LOG_BACKUPS = 10
_CONSOLE_FILES = ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2", "/proc/self/fd/1", "/proc/self/fd/2")


def _supervisord_size(text: str) -> int:
    """Return supervisord's byte size ("50MB", "1KB", "1024")."""
    word = text.strip().lower()
    for suffix, scale in (("kb", 1024), ("mb", 1024**2), ("gb", 1024**3)):
        if word.endswith(suffix):
            return int(word[: -len(suffix)]) * scale
    return int(word)


@dataclass
class _Program:
    section: str
    kind: str
    name: str
    options: dict[str, str]
    group: str


class _SupervisordImport:
    """Builds the units of one supervisord configuration."""

    def __init__(self, text: str, source: str, environ: Mapping[str, str]):
        self.text = text
        self.source = source or "supervisord.conf"
        self.environ = environ
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
                else "pidone does not speak supervisord's event-listener protocol. Instead: [restart] policies and"
                " critical = true for what crashmail watches, a [health] probe (which restarts the unit) for httpok,"
                " [limits] or the container's memory limit for memmon, and pidone's /metrics or `pidone status"
                " --json` to watch units from outside; a listener that must run anyway can be a [program:x]"
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
        try:
            raw_name = process_name % expansions
        except (KeyError, ValueError, TypeError):
            raw_name = program.name
        name = sanitize_name(_PLACEHOLDER.sub("", raw_name))
        _name_note(notes, raw_name, name)
        process = _Process(program.options, expansions, notes, self.environ)
        _environment(process)
        error = _command(process)
        if error is not None:
            return ImportResult(name, None, list(notes), source, error=error)
        _dispatch(process, _OPTIONS)
        if process.error is not None:
            return ImportResult(name, None, list(notes), source, error=process.error)
        if process.environment:
            process.service["environment"] = process.environment
        _as_group_default(process)
        if process.restart.get("policy") != "no":
            # supervisord's own defaults: a run of startsecs=1 counts as started, then 3 retries
            process.restart.setdefault("reset_after", _SUPERVISORD_DEFAULT_STARTSECS)
            process.restart.setdefault("max_retries", _SUPERVISORD_DEFAULT_STARTRETRIES)
        log = self._logs(process.get, notes)
        document: dict[str, Any] = {"service": process.service}
        for table, values in (("restart", process.restart), ("stop", process.stop), ("log", log)):
            if values:
                document[table] = values
        _dispatch(process, _LATE_OPTIONS)
        document.update(process.top)
        for key in process.options:
            if key not in process.handled:
                notes.drop(key, process.options[key], _supervisord_reason(key))
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


def _supervisord_reason(key: str) -> str:
    """Return why supervisord option `key` has no place in a pidone unit."""
    if key.endswith(("_syslog", "_events_enabled", "_capture_maxbytes")):
        return "pidone passes output to its stdout (and an optional [log] file) only"
    return "not an option pidone can carry over"


def import_supervisord(text: str, source: str = "", environ: Mapping[str, str] | None = None) -> list[ImportResult]:
    """Return one result per process of each `[program:x]` section of supervisord configuration `text`.

    `numprocs` makes that many units, named by `process_name`. Notes about
    the file as a whole ([supervisord], [include], [group:x]) go to the
    first result. `environ` (the environment the import runs in; none by
    default, this module never reads it) expands `user=%(ENV_X)s`.
    """
    return _SupervisordImport(text, source, environ or {}).results()

"""systemd semantics: one systemd service file to one pidone unit, directive by directive.

The file's syntax is `systemd_syntax`; the commands are `systemd_exec`; type, restart, stop, limits and
output are `systemd_service`; the tables of what each directive becomes are `systemd_tables`. This module
reads the file, maps [Unit] and the execution context ([Service] user, environment, directory), and notes
whatever is left.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pidone.importers.notes import DROPPED, ImportResult, _name_note, _Notes, _subject, sanitize_name
from pidone.importers.systemd_exec import _ExecMixin, _Unconvertible
from pidone.importers.systemd_service import _ServiceMixin
from pidone.importers.systemd_syntax import (
    _HOST_SPECIFIERS,
    _SystemdName,
    _expand_quiet,
    _split_systemd,
    _systemd_lines,
    _timespan,
    _unescape_unit,
    _words_or_split,
)
from pidone.importers.systemd_tables import _OTHER_UNIT_TYPES, _dependency_reason, _leftover_reason
from pidone.importers.values import _MAX_RETRIES, _account, _safe_bool, _umask
from pidone.units import ENV_KEY_RE


class _SystemdImport(_ExecMixin, _ServiceMixin):
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
        self.env_in_shell = False  # Environment= written as shell defaults, under the EnvironmentFile= values
        self.main_prefixes = ""  # the prefixes of the main ExecStart= ("!", "+" drop the user)

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
        table.update({key: value for key, value in self.service.items() if key not in table})  # keys added later
        if self.environment and not self.env_in_shell:
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

    def expand(self, directive: str, value: str, *, whole: str | None = None) -> str:
        """Return `value` with its specifiers replaced; note those that have no fixed value.

        `whole` is the directive's whole value when `value` is one of its words (for the notes): as
        systemd does, a value is split into words (undoing its escapes) before specifiers are replaced,
        so that an escape in a specifier's value (%i of `web@a\\x2db`) is kept.
        """
        subject = value if whole is None else whole

        def drop(why: str) -> None:
            if f"{_subject(directive, subject)}: {DROPPED}: {why}" not in self.notes:  # once per value
                self.notes.drop(directive, subject, why)

        def replace(match: re.Match[str]) -> str:
            letter = match.group(1)
            if letter in self.specifiers:
                return self.specifiers[letter]
            what = _HOST_SPECIFIERS.get(letter)
            if what:
                drop(f"%{letter} ({what}) has no value before the container runs; it is left as is")
            else:
                drop(f"%{letter} is not a specifier pidone knows; it is left as is")
            # In a pidone template a literal % is written %% (SPEC §12).
            return "%" + match.group(0) if self.names.template else match.group(0)

        return re.sub(r"%(.)", replace, value, flags=re.S)

    # -- [Unit]

    def _unit_section(self) -> None:
        description = self.last("Unit", "Description")
        if description is not None:
            self.unit["description"] = self.expand("Description", description)
        listed = {
            key: [dep for value in self.values("Unit", key) for dep in self._dependency_names(key, value)]
            for key in ("Requires", "BindsTo", "Requisite", "Wants", "Upholds", "After")
        }
        deps: dict[str, list[str]] = {"requires": [], "wants": [], "after": listed["After"]}
        for key, target, how in (
            ("Requires", "requires", None),
            ("BindsTo", "requires", "pidone's requires also stops this unit when the other stops, but does not restart it with the other"),
            ("Requisite", "requires", "pidone starts the required unit instead of failing when it is not already running"),
            ("Wants", "wants", None),
            ("Upholds", "wants", "pidone does not restart the other unit on this one's behalf; give it its own restart policy"),
        ):  # fmt: skip
            for dep in listed[key]:
                if dep not in listed["After"]:
                    self.notes.drop(key, dep, _unordered_reason(key, target, dep))
                    continue
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
            words = [self.expand(key, word, whole=value) for word in _split_systemd(value)[0]]
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
            unescaped = _unescape_unit(base, slashes=False)
            name = sanitize_name(unescaped)
            if name != unescaped:
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
            if "user" in self.service and not self._privileged():
                self.notes.approx(
                    "SupplementaryGroups", " ".join(map(str, groups)),
                    "pidone's list replaces the user's own groups, systemd's adds to them; add the user's groups if it needs them",
                )  # fmt: skip
        self._privileged_main()
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

    def _privileged(self) -> bool:
        """Return True when the main command has the "+" or "!" prefix (not "!!", a no-op on current kernels)."""
        return "+" in self.main_prefixes or ("!" in self.main_prefixes and "!!" not in self.main_prefixes)

    def _privileged_main(self) -> None:
        """ExecStart=! or + runs the main command as root, whatever User=, Group= and SupplementaryGroups= say."""
        prefixes = self.main_prefixes
        if not self._privileged():
            return
        dropped = [self.service.pop(key) for key in ("user", "group", "supplementary_groups") if key in self.service]
        if dropped:
            self.notes.approx(
                "ExecStart", self.values("Service", "ExecStart")[-1],
                f'the "{"+" if "+" in prefixes else "!"}" prefix runs the command'
                " with full privileges: no user, group or supplementary_groups is written (User=, Group="
                " and SupplementaryGroups= apply only to the unit's other commands in systemd; pidone runs them all"
                " with the unit's credentials, so ExecStartPre= commands run as root too)",
            )  # fmt: skip

    def _assignments(self, value: str, *, note: bool) -> list[tuple[str, str]]:
        """Return the KEY=VALUE pairs of one Environment= line."""
        try:
            words, _raws = _split_systemd(value)
            words = [
                self.expand("Environment", word, whole=value) if note else _expand_quiet(word, self.specifiers, self.names.template)
                for word in words
            ]
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

    # -- everything else

    def _leftovers(self) -> None:
        for section, key in self.order:
            if (section, key) in self.handled:
                continue
            for value in self.directives[(section, key)]:
                self.notes.drop(key, value, _leftover_reason(section, key))


def _unordered_reason(key: str, target: str, dep: str) -> str:
    """Return why a dependency without After= on the same unit is not written as pidone's `requires`/`wants`."""
    lost = "" if key in ("Wants", "Upholds") else f"; this unit is not stopped when {dep} stops"
    return (
        f"without After={dep}.service systemd starts both units at once, but pidone's {target} would also start"
        f" this unit after {dep}: an order systemd does not have (a cycle if {dep} is ordered after this unit);"
        f" pidone starts every unit of its directory anyway{lost}"
    )


def _oom(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("not an integer") from None
    if not -1000 <= number <= 1000:
        raise ValueError("must be from -1000 to 1000")
    return number


def import_systemd(text: str, name: str, source: str = "") -> ImportResult:
    """Return the pidone unit for systemd service file `text` named `name` ("web.service" or "web").

    The name gives the specifiers (%n, %i, ...) and the pidone unit's name;
    `source` (the file's path) is only used in the result and for %y.
    A `.timer` or `.socket` gives a fragment: the table of its service.
    """
    if name.endswith((".timer", ".socket")):
        from pidone.importers.systemd_activation import import_socket, import_timer

        return (import_timer if name.endswith(".timer") else import_socket)(text, name, source)
    return _SystemdImport(text, name, source).result()

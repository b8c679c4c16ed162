"""One parsed TOML document to a Unit (and back: the form a re-exec
carries definitions in), validated key by key through the schema."""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from pidone.errors import ConfigError
from pidone.expand import ExpansionError, check, command_to_toml
from pidone.loader.lifecycle import condition_environment, condition_path, directory_mode, directory_names, exit_statuses, hook_commands
from pidone.loader.schema import (
    HEALTH_PROBES,
    READY_PROBES,
    SCHEMA,
    TABLES,
    Problems,
    Table,
    account,
    duration,
    enum_of,
    environment_file,
    expanding_path,
    free_text,
    integer,
    list_of,
    printable,
    unit_name,
)
from pidone.units import (
    DEFAULT_HEALTH_INTERVAL,
    DEFAULT_HEALTH_RETRIES,
    DEFAULT_HEALTH_TIMEOUT,
    DEFAULT_LOG_BACKUPS,
    DEFAULT_LOG_MAX_BYTES,
    DEFAULT_READY_INTERVAL,
    DEFAULT_RELOAD_SIGNAL,
    DEFAULT_RESTART_DELAY,
    DEFAULT_RESTART_JITTER,
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
    SocketSection,
    TimerSection,
    Unit,
    UnitType,
    default_ready_timeout,
    default_restart_policy,
    describe,
    parse_abs_path,
    parse_argv,
    parse_bool,
    parse_capability,
    parse_rlimit,
    parse_signal,
    parse_umask,
    show,
)
from pidone.units_lifecycle import HOOK_KEYS, ConditionsSection, StopMode


# (table, unit type) -> the section a unit gets when its file has no such table.
_DEFAULT_SECTIONS: dict[tuple[str, UnitType], Any] = {}


class Builder:
    """Turns one parsed TOML document into a Unit, recording every problem."""

    def __init__(self, problems: Problems):
        self.problems = problems

    def unit(self, name: str, document: dict[str, Any], path: str) -> Unit | None:
        """Return the Unit `document` describes, or None when it has errors (all recorded)."""
        top = Table(self.problems, "", document)
        top.check_keys()
        if "instances" in document:
            top.error("instances", "only a template (NAME@.toml) lists instances")
        description = top.get("description", free_text, "")
        enabled = top.get("enabled", parse_bool, True)
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
            "conditions": section("conditions", lambda: self.conditions(tables["conditions"])),
            "timer": self.timer(tables["timer"]) if tables["timer"].data or tables["timer"].broken else None,
            "socket": self.socket(tables["socket"]) if tables["socket"].data or tables["socket"].broken else None,
        }
        if self.problems.errors:
            return None
        return Unit(name=name, description=description, service=service, path=path, enabled=enabled, **sections)

    def _table(self, document: dict[str, Any], table: str) -> Table:
        """Return `document[table]` as a Table (empty when absent or not a table)."""
        data = document.get(table, {})
        if not isinstance(data, dict):
            self.problems.error(table, f"expected a table ([{table}]), got {describe(data)}", (table,))
            return Table(self.problems, table, {}, broken=True)
        section = Table(self.problems, table, data)
        section.check_keys()
        return section

    def service(self, t: Table) -> ServiceSection:
        """Return the [service] section; a missing command is an error (and an empty one here)."""
        if "command" not in t.data and not t.broken:
            t.error("command", 'missing: every unit needs a command, e.g. command = ["/usr/bin/app", "--flag"]')
        return ServiceSection(
            command=t.get("command", parse_argv, ()),
            type=t.get("type", enum_of(UnitType), DEFAULT_TYPE),
            critical=t.get("critical", parse_bool, False),
            working_directory=t.get("working_directory", expanding_path, None),
            user=t.get("user", account, None),
            group=t.get("group", account, None),
            supplementary_groups=t.get("supplementary_groups", list_of(account, "group names or numbers"), None),
            environment=self.environment(t),
            environment_files=t.get("environment_files", list_of(environment_file, "absolute paths"), ()),
            clear_environment=t.get("clear_environment", parse_bool, False),
            umask=t.get("umask", parse_umask, None),
            oom_score_adjust=t.get("oom_score_adjust", integer(-1000, 1000), None),
            success_exit_status=t.get("success_exit_status", exit_statuses, ()),
            ignore_sigpipe=t.get("ignore_sigpipe", parse_bool, False),
            runtime_directory=t.get("runtime_directory", directory_names, ()),
            state_directory=t.get("state_directory", directory_names, ()),
            directory_mode=t.get("directory_mode", directory_mode, 0o755),
            **{key: t.get(key, hook_commands, ()) for key in HOOK_KEYS},
            pid_file=self._pid_file(t),
        )

    def _pid_file(self, t: Table) -> str | None:
        """[service] pid_file: only a forking unit has one (SPEC §11)."""
        path = t.get("pid_file", parse_abs_path, None)
        if path is not None and t.data.get("type") != "forking":
            t.error("pid_file", 'only a forking unit has a pid_file: add type = "forking", or remove it')
        return path

    def environment(self, t: Table) -> tuple[tuple[str, str], ...]:
        """Return [service] environment as (key, value) pairs in file order; each bad entry is an error."""
        value = t.data.get("environment", {})
        if not isinstance(value, dict):
            t.error("environment", f'expected a table of strings such as {{ PORT = "8000" }}, got {describe(value)}')
            return ()
        pairs = []
        for key, text in value.items():
            if not ENV_KEY_RE.fullmatch(key):
                t.error("environment", f"{show(key)} is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*",
                        within=(key,))
            elif not isinstance(text, str):
                quoted = f'; quote it: {key} = "{show(text)}"' if isinstance(text, int | float) else ""
                t.error("environment", f"{key}: expected a string, got {describe(text)}{quoted}", within=(key,))
            elif "\0" in text:
                t.error("environment", f"{key}: must not contain a NUL character", within=(key,))
            elif (bad := _bad_expansion(text)):
                t.error("environment", f"{key}: {bad}", within=(key,))
            else:
                pairs.append((key, text))
        return tuple(pairs)

    def dependencies(self, t: Table) -> DependenciesSection:
        """Return the [dependencies] section; a name listed twice is a warning."""
        names = list_of(unit_name, "unit names")
        lists = {key: t.get(key, names, ()) for key in SCHEMA["dependencies"]}
        for key, listed in lists.items():
            if len(set(listed)) != len(listed):
                self.problems.warn(t.where(key), "lists a unit more than once", t.key(key))
                lists[key] = tuple(dict.fromkeys(listed))
        return DependenciesSection(**lists)

    def _probe(self, t: Table, kinds: tuple[str, ...]) -> Probe | None:
        """Return the one probe key of `t` among `kinds`, or None; more than one is an error."""
        present = [key for key in kinds if key in t.data]
        if len(present) > 1:
            t.error(present[1], f"more than one probe ({', '.join(present)}): give exactly one")
        if not present:
            return None
        return t.get(present[0], lambda value: Probe.parse(ProbeKind(present[0]), value), None)

    def ready(self, t: Table, unit_type: UnitType) -> ReadySection:
        """Return the [ready] section; a probe on a notify or oneshot unit is an error."""
        probe = self._probe(t, READY_PROBES)
        if probe is not None and unit_type is not UnitType.SIMPLE:
            defined_by = {UnitType.NOTIFY: "sending READY=1", UnitType.ONESHOT: "exiting 0",
                          UnitType.FORKING: "its first process exiting 0"}[unit_type]
            t.error(
                probe.kind.value,
                f'a {unit_type.value} unit is ready by {defined_by}, not by a probe; remove it or use type = "simple"',
            )
        return ReadySection(
            probe=probe,
            timeout=t.get("timeout", duration(), default_ready_timeout(unit_type)),
            interval=t.get("interval", duration(positive=True, minimum=MIN_INTERVAL), DEFAULT_READY_INTERVAL),
        )

    def health(self, t: Table) -> HealthSection:
        """Return the [health] section; settings without a probe are a warning."""
        probe = self._probe(t, HEALTH_PROBES)
        if probe is None and set(t.data) - {"path", "watchdog"} and "path" not in t.data:
            self.problems.warn("[health]", "no probe (tcp, http or exec), so no health checks are made", ("health",))
        return HealthSection(
            probe=probe,
            interval=t.get("interval", duration(positive=True, minimum=MIN_INTERVAL), DEFAULT_HEALTH_INTERVAL),
            timeout=t.get("timeout", duration(positive=True), DEFAULT_HEALTH_TIMEOUT),
            retries=t.get("retries", integer(1, 1_000_000), DEFAULT_HEALTH_RETRIES),
            watchdog=t.get("watchdog", duration(minimum=MIN_INTERVAL), 0.0),
        )

    def restart(self, t: Table, unit_type: UnitType) -> RestartSection:
        """Return the [restart] section; `max_delay` below `delay` is an error."""
        section = RestartSection(
            policy=t.get("policy", enum_of(RestartPolicy), default_restart_policy(unit_type)),
            delay=t.get("delay", duration(), DEFAULT_RESTART_DELAY),
            max_delay=t.get("max_delay", duration(), DEFAULT_RESTART_MAX_DELAY),
            max_retries=t.get("max_retries", integer(0, 1_000_000), DEFAULT_RESTART_MAX_RETRIES),
            reset_after=t.get("reset_after", duration(), DEFAULT_RESTART_RESET_AFTER),
            jitter=t.get("jitter", duration(), DEFAULT_RESTART_JITTER),
            prevent_exit_status=t.get("prevent_exit_status", exit_statuses, ()),
        )
        if section.max_delay < section.delay:
            where = "max_delay" if "max_delay" in t.data else "delay"
            t.error(where, f"max_delay ({section.max_delay:g} s) is less than delay ({section.delay:g} s)")
        return section

    def stop(self, t: Table) -> StopSection:
        """Return the [stop] section."""
        return StopSection(
            signal=t.get("signal", parse_signal, DEFAULT_STOP_SIGNAL),
            timeout=t.get("timeout", duration(), DEFAULT_STOP_TIMEOUT),
            reload_signal=t.get("reload_signal", parse_signal, DEFAULT_RELOAD_SIGNAL),
            mode=t.get("mode", enum_of(StopMode), StopMode.GROUP),
        )

    def log(self, t: Table) -> LogSection:
        """Return the [log] section."""
        return LogSection(
            file=t.get("file", expanding_path, None),
            max_bytes=t.get("max_bytes", integer(MIN_LOG_MAX_BYTES, 2**62), DEFAULT_LOG_MAX_BYTES),
            backups=t.get("backups", integer(0, MAX_LOG_BACKUPS), DEFAULT_LOG_BACKUPS),
        )

    def conditions(self, t: Table) -> ConditionsSection:
        """Return the [conditions] section (each item as written, "!" kept)."""
        return ConditionsSection(
            path_exists=t.get("path_exists", list_of(condition_path, 'absolute paths, optionally prefixed by "!"'), ()),
            environment=t.get("environment", list_of(condition_environment, "NAME or NAME=VALUE strings"), ()),
        )

    def limits(self, t: Table) -> LimitsSection:
        """Return the [limits] section: rlimits in file order, capabilities deduplicated."""
        rlimits = []
        for key in t.data:
            if key in RLIMITS:
                soft, hard = t.get(key, parse_rlimit, (None, None))
                if soft is not None:
                    rlimits.append((key, soft, hard))
        capabilities = t.get("capabilities", list_of(parse_capability, "capability names"), None)
        return LimitsSection(
            rlimits=tuple(rlimits),
            no_new_privileges=t.get("no_new_privileges", parse_bool, False),
            capabilities=None if capabilities is None else tuple(dict.fromkeys(capabilities)),
        )

    def timer(self, t: Table) -> TimerSection | None:
        """Return the [timer] section: the schedule is parsed now, so a bad one is a load error."""
        from pidone.cron import ScheduleError, parse_schedule, zone_named

        if "schedule" not in t.data:
            if not t.broken:
                t.error("schedule", "missing: a [timer] needs a schedule (cron, @daily, or 'every 10m')")
            return None
        section = TimerSection(
            schedule=t.get("schedule", free_text, ""),
            timezone=t.get("timezone", free_text, ""),
            jitter=t.get("jitter", duration(), 0.0),
            on_boot=t.get("on_boot", parse_bool, False),
        )
        zone = None
        if section.timezone:
            try:
                zone = zone_named(section.timezone)
            except ScheduleError as exc:
                t.error("timezone", str(exc))
        try:
            parse_schedule(section.schedule, *(() if zone is None else (zone,)))
        except ScheduleError as exc:
            t.error("schedule", str(exc))
        return section

    def socket(self, t: Table) -> SocketSection | None:
        """Return the [socket] section: every address parsed now, none twice."""
        from pidone.listen import parse_listen

        if "listen" not in t.data:
            if not t.broken:
                t.error("listen", "missing: a [socket] needs addresses (\"tcp:127.0.0.1:8080\", \"unix:/run/app.sock\")")
            return None

        def addresses(value: Any) -> tuple[str, ...]:
            items = list_of(free_text, "addresses")(value)
            if not items:
                raise ValueError("expected at least one address")
            for item in items:
                parse_listen(item)
            seen = [item for i, item in enumerate(items) if item in items[:i]]
            if seen:
                raise ValueError(f"{seen[0]!r} is listed twice")
            return items

        return SocketSection(
            listen=t.get("listen", addresses, ()),
            backlog=t.get("backlog", integer(1, 65535), 4096),
            mode=t.get("mode", parse_umask, 0o666),
            on_demand=t.get("on_demand", parse_bool, False),
        )


def _bad_expansion(text: str) -> str:
    """Return why `text`'s `${...}` are malformed, or ""."""
    try:
        check(text)
    except ExpansionError as exc:
        return str(exc)
    return ""


# --- back to TOML ------------------------------------------------------------


def unit_from_dict(name: str, document: dict[str, Any], path: str) -> Unit:
    """Return the unit `name` built from a TOML-shaped `document` (as
    `unit_to_dict` makes it), validated like a file; raise ConfigError.
    Used to carry definitions across a re-exec without re-reading files."""
    problems = Problems(path)
    unit = None
    try:
        unit = Builder(problems).unit(name, document, path)
    except Exception as exc:  # noqa: BLE001 - a damaged state must not take pidone down
        problems.error("", f"cannot rebuild: {type(exc).__name__}: {printable(str(exc))[:200]}")
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
    if not unit.enabled:
        document["enabled"] = False
    for section in fields(Unit):
        value = getattr(unit, section.name)
        if section.name in TABLES and value is not None:
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
        return {probe.kind.value: command_to_toml(probe.argv) if probe.kind is ProbeKind.EXEC else probe.target}
    if key == "command" or key.startswith("exec_"):
        # One command, or (exec_*) a list of them: each in the form that loads back the same.
        many = isinstance(value, tuple) and value and not isinstance(value[0], str)
        return {key: [command_to_toml(item) for item in value] if many else command_to_toml(value)}
    if key == "environment" and (not value or isinstance(value[0], tuple)):  # [conditions] has a list
        return {key: dict(value)}
    if key in ("umask", "directory_mode") or key == "mode" and isinstance(value, int):  # [socket] mode
        return {key: f"{value:04o}"}
    if key in ("signal", "reload_signal"):
        return {key: _signal_name(value)}
    if key == "rlimits":
        return {name: _rlimit_to_toml(soft, hard) for name, soft, hard in value}
    if isinstance(value, UnitType | RestartPolicy | StopMode):
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


"""The unit model: frozen dataclasses for a unit and its sections, every default of SPEC §2, and the value syntaxes.

Nothing here does I/O. The loader turns TOML into these objects; the engine,
the control protocol and the CLI read them. The small parsers at the end
(`parse_duration`, `parse_signal`, `Probe.parse`, ...) take one already
decoded TOML value and either return the model's value or raise ValueError
whose message says what was expected; the loader adds file, table and key.
"""

from __future__ import annotations

import math
import re
import resource
import shlex
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from pidone.expand import parse_command
from pidone.valuetext import describe, show  # noqa: F401 - message helpers the model shares
from pidone.units_activation import SocketSection, TimerSection  # noqa: F401 - part of the model
from pidone.units_lifecycle import ConditionsSection, ExitStatus, ServiceLifecycle, StopMode

# --- names -------------------------------------------------------------------

# SPEC §2: 1-64 characters of A-Z a-z 0-9 _ . @ -, not starting with . or -.
# fullmatch, never `$`: `$` would let a trailing newline through.
NAME_RE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@-]{0,63}")
NAME_RULE = "1-64 characters of A-Z a-z 0-9 _ . @ -, not starting with '.' or '-'"

ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def valid_name(name: object) -> bool:
    """Return True when `name` is a string that obeys the unit-name rule."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


# --- enums -------------------------------------------------------------------


class UnitType(str, Enum):
    """How a unit's readiness is defined (SPEC §2, Types)."""

    SIMPLE = "simple"
    NOTIFY = "notify"
    ONESHOT = "oneshot"
    FORKING = "forking"  # SPEC §11: started once its first process exits 0; the daemon is the main process


class RestartPolicy(str, Enum):
    """When a unit that ended is started again."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class ProbeKind(str, Enum):
    """What a readiness or health probe checks."""

    TCP = "tcp"
    HTTP = "http"
    EXEC = "exec"
    PATH = "path"


# --- defaults (every default of SPEC §2, in one place) -------------------------

MAX_DURATION = 365 * 24 * 3600.0  # one year: longer is a typo, not a plan
MIN_INTERVAL = 0.01  # probe intervals below 10 ms would only burn PID 1's CPU

DEFAULT_TYPE = UnitType.SIMPLE
DEFAULT_READY_TIMEOUT = 90.0  # simple and notify, as systemd's TimeoutStartSec
DEFAULT_READY_TIMEOUT_ONESHOT = 0.0  # oneshot: no limit, as systemd
DEFAULT_READY_INTERVAL = 0.1
DEFAULT_HEALTH_INTERVAL = 10.0
DEFAULT_HEALTH_TIMEOUT = 2.0
DEFAULT_HEALTH_RETRIES = 3
DEFAULT_RESTART_POLICY = RestartPolicy.ON_FAILURE
DEFAULT_RESTART_POLICY_ONESHOT = RestartPolicy.NO
DEFAULT_RESTART_DELAY = 0.1
DEFAULT_RESTART_MAX_DELAY = 30.0
DEFAULT_RESTART_MAX_RETRIES = 5
DEFAULT_RESTART_RESET_AFTER = 60.0
DEFAULT_RESTART_JITTER = 0.0  # off: a single unit's respawn stays timer-exact
DEFAULT_STOP_SIGNAL = signal.SIGTERM
DEFAULT_STOP_TIMEOUT = 10.0
DEFAULT_RELOAD_SIGNAL = signal.SIGHUP
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_LOG_BACKUPS = 3
MIN_LOG_MAX_BYTES = 1024
MAX_LOG_BACKUPS = 1000

# RLIMIT_OFILE is BSD's alias of RLIMIT_NOFILE; one name per limit.
RLIMITS: dict[str, int] = {
    name[len("RLIMIT_") :].lower(): getattr(resource, name)
    for name in sorted(dir(resource))
    if name.startswith("RLIMIT_") and name != "RLIMIT_OFILE"
}
RLIM_INFINITY = resource.RLIM_INFINITY
_RLIM_MAX = 2**63 - 1

# Linux capabilities by number (linux/capability.h, up to 6.x).
CAPABILITIES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        (
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
            "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
            "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
            "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
            "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
            "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
            "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
            "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
            "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
            "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
            "CAP_CHECKPOINT_RESTORE",
        )
    )
}  # fmt: skip


def default_ready_timeout(unit_type: UnitType) -> float:
    """Return the default `[ready] timeout` for a unit of `unit_type` (0 = no limit)."""
    if unit_type is UnitType.ONESHOT:
        return DEFAULT_READY_TIMEOUT_ONESHOT
    return DEFAULT_READY_TIMEOUT


def default_restart_policy(unit_type: UnitType) -> RestartPolicy:
    """Return the default `[restart] policy` for a unit of `unit_type`."""
    if unit_type is UnitType.ONESHOT:
        return DEFAULT_RESTART_POLICY_ONESHOT
    return DEFAULT_RESTART_POLICY


# --- the model ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One readiness or health check.

    `target` is the value as written (for exec, the argv joined like a shell
    would quote it). tcp fills `host` and `port`; http fills `host`, `port`
    and `path` (with any query); exec fills `argv`; path fills `path`.
    """

    kind: ProbeKind
    target: str
    argv: tuple[str, ...] = ()
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, kind: ProbeKind, value: object) -> Probe:
        """Return the probe `kind` described by TOML `value`; raise ValueError."""
        if kind is ProbeKind.EXEC:
            argv = parse_argv(value)
            return cls(kind, shlex.join(argv), argv=argv)
        text = parse_string(value)
        if kind is ProbeKind.TCP:
            host, port = parse_host_port(text)
            return cls(kind, text, host=host, port=port)
        if kind is ProbeKind.HTTP:
            host, port, path = parse_http_url(text)
            return cls(kind, text, host=host, port=port, path=path)
        return cls(kind, text, path=parse_abs_path(text))


@dataclass(frozen=True, slots=True)
class ServiceSection(ServiceLifecycle):
    """`[service]`: what to run and as whom (and, inherited, its SPEC §11 keys)."""

    command: tuple[str, ...]
    type: UnitType = DEFAULT_TYPE
    critical: bool = False
    working_directory: str | None = None
    user: str | None = None
    group: str | None = None
    supplementary_groups: tuple[str, ...] | None = None  # None: the user's own
    environment: tuple[tuple[str, str], ...] = ()  # in file order
    environment_files: tuple[str, ...] = ()  # a leading "-" means optional
    clear_environment: bool = False
    umask: int | None = None
    oom_score_adjust: int | None = None


@dataclass(frozen=True, slots=True)
class DependenciesSection:
    """`[dependencies]`: `requires` and `wants` imply `after`."""

    requires: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()  # stopped and restarted with these (no ordering)


@dataclass(frozen=True, slots=True)
class ReadySection:
    """`[ready]`: when a started unit counts as ready; `timeout` 0 means no limit."""

    probe: Probe | None = None
    timeout: float = DEFAULT_READY_TIMEOUT
    interval: float = DEFAULT_READY_INTERVAL


@dataclass(frozen=True, slots=True)
class HealthSection:
    """`[health]`: liveness while running; no probe means no health checks."""

    probe: Probe | None = None
    interval: float = DEFAULT_HEALTH_INTERVAL
    timeout: float = DEFAULT_HEALTH_TIMEOUT
    retries: int = DEFAULT_HEALTH_RETRIES
    watchdog: float = 0.0  # SPEC §11: seconds without WATCHDOG=1 before it counts as hung; 0 = none


@dataclass(frozen=True, slots=True)
class RestartSection:
    """`[restart]`: policy and exponential backoff; `max_retries` 0 = never give up;
    `jitter` adds a random delay up to that much to each restart."""

    policy: RestartPolicy = DEFAULT_RESTART_POLICY
    delay: float = DEFAULT_RESTART_DELAY
    max_delay: float = DEFAULT_RESTART_MAX_DELAY
    max_retries: int = DEFAULT_RESTART_MAX_RETRIES
    reset_after: float = DEFAULT_RESTART_RESET_AFTER
    jitter: float = DEFAULT_RESTART_JITTER
    prevent_exit_status: tuple[ExitStatus, ...] = ()  # never restart after these


@dataclass(frozen=True, slots=True)
class StopSection:
    """`[stop]`: the stop signal, the grace period before SIGKILL, the reload signal."""

    signal: int = DEFAULT_STOP_SIGNAL
    timeout: float = DEFAULT_STOP_TIMEOUT
    reload_signal: int = DEFAULT_RELOAD_SIGNAL
    mode: StopMode = StopMode.GROUP


@dataclass(frozen=True, slots=True)
class LogSection:
    """`[log]`: an optional file copy of the unit's output, with rotation."""

    file: str | None = None
    max_bytes: int = DEFAULT_LOG_MAX_BYTES
    backups: int = DEFAULT_LOG_BACKUPS


@dataclass(frozen=True, slots=True)
class LimitsSection:
    """`[limits]`: applied in the child before exec.

    `rlimits` holds (name, soft, hard) with the lower-case name without
    RLIMIT_ and RLIM_INFINITY for "infinity"; `capabilities` None leaves the
    bounding set alone, a tuple keeps only those capabilities.
    """

    rlimits: tuple[tuple[str, int, int], ...] = ()
    no_new_privileges: bool = False
    capabilities: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Unit:
    """One unit: its name and every section. Equality ignores `path`."""

    name: str
    service: ServiceSection
    description: str = ""
    dependencies: DependenciesSection = DependenciesSection()
    ready: ReadySection = ReadySection()
    health: HealthSection = HealthSection()
    restart: RestartSection = RestartSection()
    stop: StopSection = StopSection()
    log: LogSection = LogSection()
    limits: LimitsSection = LimitsSection()
    timer: TimerSection | None = None  # None: started at boot, as any unit
    socket: SocketSection | None = None
    conditions: ConditionsSection = ConditionsSection()
    enabled: bool = True  # False: not started at boot or by a reload, only when asked
    path: str = field(default="", compare=False)

    @property
    def type(self) -> UnitType:
        """Return the unit's type (a shortcut for `service.type`)."""
        return self.service.type

    @property
    def ordering(self) -> tuple[str, ...]:
        """Return every unit this one starts after: requires, wants, after, deduplicated in order."""
        deps = self.dependencies
        return tuple(dict.fromkeys((*deps.requires, *deps.wants, *deps.after)))


def make_unit(
    name: str,
    command: Sequence[str] = ("true",),
    *,
    type: UnitType = DEFAULT_TYPE,
    requires: Iterable[str] = (),
    wants: Iterable[str] = (),
    after: Iterable[str] = (),
    path: str = "",
    **sections: object,
) -> Unit:
    """Return a Unit with SPEC defaults for `type`, for tests and generated units.

    `sections` may replace any other section by name (`stop=StopSection(...)`).
    """
    defaults: dict[str, object] = {
        "ready": ReadySection(timeout=default_ready_timeout(type)),
        "restart": RestartSection(policy=default_restart_policy(type)),
    }
    defaults.update(sections)
    return Unit(
        name=name,
        service=ServiceSection(command=tuple(command), type=type),
        dependencies=DependenciesSection(tuple(requires), tuple(wants), tuple(after)),
        path=path,
        **defaults,  # type: ignore[arg-type]
    )


# --- value syntaxes ----------------------------------------------------------

_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?")
DURATION_HELP = 'seconds as a number, or a string such as "250ms", "1.5s", "2m", "1h" or "1m30s"'


def parse_duration(value: object, *, positive: bool = False) -> float:
    """Return `value` (a number or a string with units) as seconds; raise ValueError.

    Accepted: an int or float from 0 (above 0 when `positive`) up to one year;
    or a string of one or more number+unit parts (`ms`, `s`, `m`, `h`; a bare
    number is seconds). NaN, infinities, negatives and booleans are refused.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {DURATION_HELP}, got {describe(value)}")
    seconds = _duration_string(value) if isinstance(value, str) else value
    if isinstance(seconds, float) and math.isnan(seconds):
        raise ValueError(f"expected {DURATION_HELP}, got nan")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {show(value)}")
    if seconds > MAX_DURATION:
        raise ValueError(f"must be at most one year ({int(MAX_DURATION)} s), got {show(value)}")
    if positive and seconds == 0:
        raise ValueError("must be more than 0")
    return float(seconds)


def _duration_string(text: str) -> float:
    """Return the seconds in a duration string like "1m30s"; raise ValueError."""
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
    total, pos, parts = 0.0, 0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None or match.end() == pos:
            break
        total += float(match.group(1)) * scale[match.group(2)]
        pos, parts = match.end(), parts + 1
    if parts == 0 or text[pos:].strip():
        raise ValueError(f"expected {DURATION_HELP}, got {show(text)}")
    return total


def parse_int(value: object, low: int, high: int) -> int:
    """Return `value` when it is an integer (not a bool) in [low, high]; raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer from {low} to {high}, got {describe(value)}")
    if not low <= value <= high:
        raise ValueError(f"expected an integer from {low} to {high}, got {show(value)}")
    return value


def parse_bool(value: object) -> bool:
    """Return `value` when it is a boolean; raise ValueError."""
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {describe(value)}")
    return value


def parse_string(value: object, *, empty: bool = False) -> str:
    """Return `value` when it is a string without NUL (non-empty unless `empty`); raise ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {describe(value)}")
    if "\0" in value:
        raise ValueError(f"must not contain a NUL character, got {show(value)}")
    if not empty and not value:
        raise ValueError("must not be empty")
    return value


def parse_argv(value: object) -> tuple[str, ...]:
    """Return a command as argv: a list of strings, or a string split like a shell.

    The string form is split with `shlex.split` and never run by a shell.
    Any word but the first may be empty (`redis-server --save ""`); the
    first names the program. `${...}` is checked, and the words kept in
    expand's canonical form. Raises ValueError when the value is empty, the
    program is empty, a word is not a string, holds NUL, or the string
    cannot be split (an unclosed quote).
    """
    expected = "expected a non-empty array of strings, or a string"
    if isinstance(value, str):
        parse_string(value, empty=True)
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split {show(value)} into words: {exc}") from None
        if not words:
            raise ValueError(f"{expected}, got an empty command")
        if not words[0]:
            raise ValueError(f"{expected}; word 1 (the program) is empty")
        return parse_command(words, from_string=True)
    if not isinstance(value, list):
        raise ValueError(f"{expected}, got {describe(value)}")
    if not value:
        raise ValueError(f"{expected}, got an empty array")
    for index, word in enumerate(value, 1):
        if not isinstance(word, str):
            raise ValueError(f"{expected}; word {index} is {describe(word)}")
        if not word and index == 1:
            raise ValueError(f"{expected}; word 1 (the program) is empty")
        if "\0" in word:
            raise ValueError(f"word {index} contains a NUL character: {show(word)}")
    return parse_command(value, from_string=False)


def parse_abs_path(value: object) -> str:
    """Return `value` when it is an absolute path without NUL; raise ValueError."""
    path = parse_string(value)
    if not path.startswith("/"):
        raise ValueError(f"expected an absolute path (starting with /), got {show(path)}")
    return path


def parse_host_port(text: str) -> tuple[str, int]:
    """Return (host, port) from "host:port", "1.2.3.4:80" or "[::1]:80"; raise ValueError."""
    expected = f'expected "HOST:PORT" such as "127.0.0.1:5432" or "[::1]:80", got {show(text)}'
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(expected)
        import ipaddress  # only for probes that name an IPv6 address (start-up time)

        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{show(host)} is not an IPv6 address; {expected}") from None
    else:
        host, sep, port = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise ValueError(expected)
        if not _HOSTNAME_RE.fullmatch(host):
            raise ValueError(f"{show(host)} is not a host name or address; {expected}")
    return host, _parse_port(port, expected)


_HOSTNAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")


def _parse_port(text: str, expected: str) -> int:
    """Return the port number in `text` (1-65535); raise ValueError with `expected`."""
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port must be 1-65535; {expected}")
    return int(text)


def parse_http_url(text: str) -> tuple[str, int, str]:
    """Return (host, port, path) from an http:// URL; raise ValueError.

    Only plain http is supported (probes talk to loopback or the pod network);
    the port defaults to 80 and the path, which keeps any query, to "/".
    """
    expected = f'expected a URL such as "http://127.0.0.1:8000/healthz", got {show(text)}'
    if not text.isprintable() or " " in text:
        raise ValueError(expected)
    from urllib.parse import urlsplit  # only for http probes (start-up time)

    parts = urlsplit(text)
    if parts.scheme != "http":
        raise ValueError(f"only http:// URLs are supported; {expected}")
    if not parts.hostname or "@" in parts.netloc:
        raise ValueError(expected)
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"port must be 1-65535; {expected}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, port, path


def parse_signal(value: object) -> signal.Signals:
    """Return the signal named "SIGTERM", "TERM" (any case) or numbered 15; raise ValueError."""
    expected = 'expected a signal name such as "SIGTERM" or "TERM", or its number'
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{expected}, got {describe(value)}")
    try:
        if isinstance(value, int):
            return signal.Signals(value)
        name = value.upper()
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except (KeyError, ValueError):
        raise ValueError(f"{expected}, got {show(value)}") from None


def parse_umask(value: object) -> int:
    """Return a umask from an octal string ("0022") or an integer (0o022); raise ValueError."""
    expected = 'expected an octal string such as "0022", or an integer from 0 to 0o777'
    if isinstance(value, str):
        text = value.removeprefix("0o")
        if text and len(text) <= 4 and all(c in "01234567" for c in text) and int(text, 8) <= 0o777:
            return int(text, 8)
    elif not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= 0o777:
        return value
    raise ValueError(f"{expected}, got {describe(value)}")


def parse_rlimit(value: object) -> tuple[int, int]:
    """Return (soft, hard) from an integer, "infinity"/"unlimited" or a [soft, hard] pair.

    Raises ValueError for negatives, numbers past 2**63-1, anything else, and
    a pair whose soft limit is above its hard limit.
    """
    expected = 'expected an integer, "infinity", or a [soft, hard] pair of those'
    if isinstance(value, list):
        if len(value) != 2:
            raise ValueError(f"{expected}, got an array of {len(value)}")
        soft, hard = (_rlimit_one(v, expected) for v in value)
        if _rlimit_order(soft) > _rlimit_order(hard):
            raise ValueError(f"the soft limit {show(value[0])} is above the hard limit {show(value[1])}")
        return soft, hard
    one = _rlimit_one(value, expected)
    return one, one


def _rlimit_one(value: object, expected: str) -> int:
    """Return one rlimit value (RLIM_INFINITY for "infinity"); raise ValueError."""
    if isinstance(value, str) and value.lower() in ("infinity", "unlimited"):
        return RLIM_INFINITY
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{expected}, got {describe(value)}")
    if not 0 <= value <= _RLIM_MAX:
        raise ValueError(f"expected 0 to {_RLIM_MAX} or \"infinity\", got {show(value)}")
    return value


def _rlimit_order(limit: int) -> int | float:
    """Return a sort key in which RLIM_INFINITY is above every number."""
    return math.inf if limit == RLIM_INFINITY else limit


def parse_capability(value: object) -> str:
    """Return the canonical name ("CAP_NET_BIND_SERVICE") of a capability; raise ValueError.

    The "CAP_" prefix and case are optional in the input.
    """
    text = parse_string(value).upper()
    name = text if text.startswith("CAP_") else "CAP_" + text
    if name not in CAPABILITIES:
        raise ValueError(f"unknown capability {show(value)}; expected a Linux capability such as CAP_NET_BIND_SERVICE")
    return name


# --- showing values in messages ----------------------------------------------

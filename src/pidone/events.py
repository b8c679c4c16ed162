"""Events (facts the machine is told) and actions (what it asks to be done)."""

from __future__ import annotations

import os
from enum import Enum
from typing import Hashable


def value(cls: type) -> type:
    """Make `cls` an immutable value from its annotated fields, as
    @dataclass(frozen=True) would: __init__ (with the class attributes as
    defaults), __eq__ and __hash__ by type and fields, __repr__, and no
    assignment after __init__. Written here because the real one costs
    0.4 ms a class, and these 30 classes were 12 ms of pidone's start-up
    (a tenth of its time to the first unit); this is one exec per class."""
    names = tuple(cls.__dict__.get("__annotations__", {}))
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    params = "".join(f", {name}=_default_{name}" if name in defaults else f", {name}" for name in names)
    body = "".join(f"\n    _set(self, {name!r}, {name})" for name in names) or "\n    pass"
    namespace = {"_set": object.__setattr__, **{f"_default_{name}": v for name, v in defaults.items()}}
    exec(f"def __init__(self{params}):{body}", namespace)
    namespace["__init__"].__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = namespace["__init__"]
    cls._fields = names
    cls.__eq__ = _value_eq
    cls.__hash__ = _value_hash
    cls.__repr__ = _value_repr
    cls.__setattr__ = cls.__delattr__ = _value_frozen
    return cls


def _value_eq(self, other):
    if type(other) is not type(self):
        return NotImplemented
    return all(getattr(self, name) == getattr(other, name) for name in self._fields)


def _value_hash(self):
    return hash((type(self), *(getattr(self, name) for name in self._fields)))


def _value_repr(self):
    fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
    return f"{type(self).__name__}({fields})"


def _value_frozen(self, *args):
    raise AttributeError(f"{type(self).__name__} is immutable")



@value
class ChildExited:
    """A child was reaped. `owner` is who started it (a unit name, the main
    command, a probe), or None for an orphan nobody claimed."""

    pid: int
    status: int  # the raw wait status
    owner: Hashable | None = None

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None when a signal killed it."""
        return os.WEXITSTATUS(self.status) if os.WIFEXITED(self.status) else None

    @property
    def signal(self) -> int | None:
        """The signal that killed it, or None when it exited."""
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    @property
    def shell_status(self) -> int:
        """The status a shell would report: the exit code, or 128+N."""
        return os.waitstatus_to_exitcode(self.status) if self.signal is None else 128 + self.signal


class TimerKind(str, Enum):
    READY = "ready"  # start took too long
    STOP = "stop"  # stop took too long: SIGKILL
    RESTART = "restart"  # backoff is over
    QUEUE = "queue"  # a queued restart waited its bound, or a slot was held too long
    WATCHDOG = "watchdog"  # no WATCHDOG=1 for [health] watchdog


# -- events the supervisor feeds to the machine ------------------------------
# Each names the unit it concerns; the machine ignores events about a pid
# that is no longer the unit's current one (a late exit of an old run).


@value
class StartAll:
    """Boot: every unit is wanted up."""


@value
class StartUnit:
    name: str


@value
class StopUnit:
    name: str


@value
class RestartUnit:
    name: str


@value
class Resumed:
    """The state was restored after a re-exec."""


@value
class Shutdown:
    """Stop everything in reverse dependency order."""


@value
class Spawned:
    """The unit's main process exists. `confirmed` when exec is known to have
    succeeded (posix_spawn); otherwise ExecConfirmed or SpawnFailed follows."""

    name: str
    pid: int
    confirmed: bool = True


@value
class ExecConfirmed:
    name: str
    pid: int


@value
class SpawnFailed:
    """The spawn failed; `pid` is set when a forked child exists and will
    exit (its exit is then the failure), None when nothing was created."""

    name: str
    message: str
    pid: int | None = None


@value
class ConditionFailed:
    """Before a spawn, one of the unit's [conditions] did not hold."""

    name: str
    condition: str  # as written, with its key: "path_exists '/etc/x'"


@value
class HookStarted:
    """A hook command (exec_start_pre, ...) of the unit runs as `pid`."""

    name: str
    pid: int


@value
class HookExited:
    """The unit's current hook was reaped (its own wait status, never an
    orphan's). `error` says why it could not be run (then `pid` is 0 when
    nothing was created)."""

    name: str
    pid: int
    status: int  # raw wait status
    error: str = ""


@value
class ForkedMain:
    """forking: the daemon the command left behind, checked to be the unit's."""

    name: str
    pid: int


@value
class ForkedMainWaiting:
    """forking: the main process is not found yet (`detail` says why)."""

    name: str
    detail: str


@value
class ForkedMainFailed:
    """forking: the main process cannot be accepted (a symlink, a foreign pid, ...)."""

    name: str
    reason: str


@value
class ReloadUnit:
    """`pidone reload UNIT` for a unit with exec_reload."""

    name: str


@value
class MainExited:
    """The unit's main process was reaped. `leftovers` are processes of its
    session or group still alive at that moment."""

    name: str
    pid: int
    status: int  # raw wait status
    leftovers: frozenset[int] = frozenset()


@value
class LeftoverExited:
    name: str
    pid: int


@value
class ReadyPassed:
    """The readiness probe passed, or the service sent READY=1."""

    name: str


@value
class Notified:
    """An sd_notify datagram from a process of the unit (already parsed)."""

    name: str
    fields: tuple[tuple[str, str], ...]


@value
class HealthFailed:
    name: str
    detail: str


@value
class ApplyPlan:
    """Reload: `units` is the new plan (broken files keep their last good
    definition), `blocked` the units that must not start, `diff` what
    changed against the running plan."""

    units: dict
    blocked: dict
    diff: object  # graph.Diff


@value
class TimerFired:
    name: str
    kind: TimerKind


@value
class ScheduleFired:
    """A `[timer]` unit's schedule came due (`wall`: the time, for status)."""

    name: str
    wall: float


@value
class SocketActivity:
    """A connection or datagram arrived on an `on_demand` unit's socket."""

    name: str


# -- actions the machine asks the supervisor to carry out -------------------

@value
class Spawn:
    name: str


@value
class NewMainPid:
    """MAINPID=: `pid` (already checked to be the unit's) is its main process now."""

    name: str
    pid: int


@value
class SignalUnit:
    """Send `signum` to the unit's process group and its leftovers; with
    `main_only`, to its main process alone ([stop] mode mixed or process)."""

    name: str
    signum: int
    main_only: bool = False


@value
class KillUnit:
    """SIGKILL everything the unit started, including escapees; with
    `main_only`, its main process alone ([stop] mode process)."""

    name: str
    main_only: bool = False


@value
class RunHook:
    """Run one hook command as the unit runs its main one (user, groups,
    environment, directory, limits), its output in the unit's log marked
    with `key`; `env` is added to the unit's environment."""

    name: str
    key: str  # "exec_start_pre", ...
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()


@value
class FindForkedMain:
    """forking: the command exited 0; find its daemon (pid_file or session)
    and report ForkedMain, ForkedMainWaiting or ForkedMainFailed."""

    name: str


@value
class KillHook:
    """SIGKILL the unit's running hook and everything it started."""

    name: str


@value
class RemoveDirectories:
    """The unit is down: remove its runtime directories (names below /run)."""

    name: str
    names: tuple[str, ...]


@value
class WatchReady:
    """Poll the unit's [ready] probe until it passes or is unwatched."""

    name: str


@value
class UnwatchReady:
    name: str


@value
class WatchHealth:
    name: str


@value
class UnwatchHealth:
    name: str


@value
class WatchSockets:
    """Start (`on` True) or stop watching an on_demand unit's sockets for activity."""

    name: str
    on: bool


@value
class SetTimer:
    name: str
    kind: TimerKind
    deadline: float


@value
class ClearTimer:
    name: str
    kind: TimerKind


@value
class Log:
    text: str


@value
class Exit:
    """A critical unit ended for good: the container ends with `status`."""

    status: int
    reason: str


@value
class ReloadDone:
    """Every unit the last ApplyPlan touched has settled."""


@value
class AllStopped:
    """Shutdown is complete: no unit has a process left."""

    killed_any: bool

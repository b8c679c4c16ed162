"""Events (facts the machine is told) and actions (what it asks to be done)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Hashable


@dataclass(frozen=True)
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


# -- events the supervisor feeds to the machine ------------------------------
# Each names the unit it concerns; the machine ignores events about a pid
# that is no longer the unit's current one (a late exit of an old run).


@dataclass(frozen=True)
class StartAll:
    """Boot: every unit is wanted up."""


@dataclass(frozen=True)
class StartUnit:
    name: str


@dataclass(frozen=True)
class StopUnit:
    name: str


@dataclass(frozen=True)
class RestartUnit:
    name: str


@dataclass(frozen=True)
class Resumed:
    """The state was restored after a re-exec."""


@dataclass(frozen=True)
class Shutdown:
    """Stop everything in reverse dependency order."""


@dataclass(frozen=True)
class Spawned:
    """The unit's main process exists. `confirmed` when exec is known to have
    succeeded (posix_spawn); otherwise ExecConfirmed or SpawnFailed follows."""

    name: str
    pid: int
    confirmed: bool = True


@dataclass(frozen=True)
class ExecConfirmed:
    name: str
    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    """The spawn failed; `pid` is set when a forked child exists and will
    exit (its exit is then the failure), None when nothing was created."""

    name: str
    message: str
    pid: int | None = None


@dataclass(frozen=True)
class MainExited:
    """The unit's main process was reaped. `leftovers` are processes of its
    session or group still alive at that moment."""

    name: str
    pid: int
    status: int  # raw wait status
    leftovers: frozenset[int] = frozenset()


@dataclass(frozen=True)
class LeftoverExited:
    name: str
    pid: int


@dataclass(frozen=True)
class ReadyPassed:
    """The readiness probe passed, or the service sent READY=1."""

    name: str


@dataclass(frozen=True)
class Notified:
    """An sd_notify datagram from a process of the unit (already parsed)."""

    name: str
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class HealthFailed:
    name: str
    detail: str


@dataclass(frozen=True)
class ApplyPlan:
    """Reload: `units` is the new plan (broken files keep their last good
    definition), `blocked` the units that must not start, `diff` what
    changed against the running plan."""

    units: dict
    blocked: dict
    diff: object  # graph.Diff


@dataclass(frozen=True)
class TimerFired:
    name: str
    kind: TimerKind


# -- actions the machine asks the supervisor to carry out -------------------

@dataclass(frozen=True)
class Spawn:
    name: str


@dataclass(frozen=True)
class NewMainPid:
    """MAINPID=: `pid` (already checked to be the unit's) is its main process now."""

    name: str
    pid: int


@dataclass(frozen=True)
class SignalUnit:
    """Send `signum` to the unit's process group and its leftovers."""

    name: str
    signum: int


@dataclass(frozen=True)
class KillUnit:
    """SIGKILL everything the unit started, including escapees."""

    name: str


@dataclass(frozen=True)
class WatchReady:
    """Poll the unit's [ready] probe until it passes or is unwatched."""

    name: str


@dataclass(frozen=True)
class UnwatchReady:
    name: str


@dataclass(frozen=True)
class WatchHealth:
    name: str


@dataclass(frozen=True)
class UnwatchHealth:
    name: str


@dataclass(frozen=True)
class SetTimer:
    name: str
    kind: TimerKind
    deadline: float


@dataclass(frozen=True)
class ClearTimer:
    name: str
    kind: TimerKind


@dataclass(frozen=True)
class Log:
    text: str


@dataclass(frozen=True)
class Exit:
    """A critical unit ended for good: the container ends with `status`."""

    status: int
    reason: str


@dataclass(frozen=True)
class ReloadDone:
    """Every unit the last ApplyPlan touched has settled."""


@dataclass(frozen=True)
class AllStopped:
    """Shutdown is complete: no unit has a process left."""

    killed_any: bool

"""The unit state model the machine and its rule mixins share: the states,
what a unit wants, where a stop leads, and one unit's record. Its own module
so that the mixins (hooks, machine_lifecycle, restartqueue) need not import
the machine, which imports them. See machine.py for the state diagram."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

from pidone.units import Unit


class State(str, Enum):
    INACTIVE = "inactive"
    WAITING = "waiting"
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    STOPPING = "stopping"
    BACKOFF = "backoff"
    QUEUED = "queued"
    FAILED = "failed"
    SKIPPED = "skipped"
    CONDITION = "skipped (condition)"  # a [conditions] check was false: settled, not failed
    START_PRE = "start-pre"  # exec_start_pre commands run, before the main one
    START_POST = "start-post"  # exec_start_post commands run, once it is ready
    STOP_CMD = "stop-cmd"  # exec_stop commands run, before the stop signal
    STOP_POST = "stop-post"  # exec_stop_post commands run, once the run is over


class Desired(str, Enum):
    UP = "up"
    DOWN = "down"


# What a unit ordered after this one may start after.
SETTLED = frozenset({State.RUNNING, State.EXITED, State.FAILED, State.SKIPPED, State.CONDITION})
SETTLED_SOFT = SETTLED | {State.BACKOFF, State.QUEUED}
REQUIRE_OK = frozenset({State.RUNNING, State.EXITED, State.CONDITION})  # as systemd: a skipped condition is no failure
FOR_GOOD = frozenset({State.FAILED, State.SKIPPED})
# A run is over (not in a restart's backoff): its runtime directories go.
ENDED = frozenset({State.INACTIVE, State.FAILED, State.EXITED})

# After SIGKILL, how long to wait for the kernel before giving up on a
# process (one stuck in uninterruptible sleep must not block shutdown).
KILL_WAIT = 5.0


class Then(str, Enum):
    """Where a unit goes once its stop has finished."""

    DOWN = "down"
    SPAWN = "spawn"  # restart (explicit, or backoff over with leftovers)
    FAIL = "fail"  # it was stopped because it failed (ready timeout, health)


@dataclass
class UnitRecord:
    """Everything the machine knows about one unit."""

    unit: Unit
    state: State = State.INACTIVE
    desired: Desired = Desired.DOWN
    pid: int | None = None
    leftovers: set[int] = field(default_factory=set)
    since: float = 0.0  # when the current state began
    started_at: float | None = None  # when the current run was spawned
    ready_at: float | None = None
    failures: int = 0  # consecutive
    restarts: int = 0  # total
    last_exit: str = ""  # "exited with status 1", "killed by SIGKILL"
    last_status: int | None = None  # shell-style status of the last exit
    reason: str = ""  # why it is FAILED, SKIPPED or stopped
    status_text: str = ""  # STATUS= from sd_notify
    spawn_error: str = ""  # a forked child reported exec failure
    then: Then = Then.DOWN
    pending_failure: str = ""
    killed: bool = False  # SIGKILLed at its stop timeout in this stop
    retry_at: float | None = None  # BACKOFF deadline
    by_policy: bool = False  # the next spawn is a policy restart: it goes through the restart queue
    next_unit: Unit | None = None  # reload: the definition to start with once stopped
    restart_pending: bool = False  # reload: stopped only to start again
    removing: bool = False  # reload: its file is gone; forgotten once down
    firings: int = 0  # [timer]: starts its schedule made
    firings_skipped: int = 0  # [timer]: firings while it still ran
    last_fired: float | None = None  # [timer]: wall time of the last firing
    # SPEC §11 hooks (see hooks.py): the hook running (0 while being spawned)
    hook_pid: int | None = None
    hook_key: str = ""
    hook_index: int = 0
    step: str = ""  # what the unit is doing now: "exec_start_pre 1/2", ...
    failed_step: str = ""  # where the last failed start failed
    run_active: bool = False  # a run began whose exec_stop_post has not run yet
    after_post: list | None = None  # what to do once exec_stop_post is done
    result: str = ""  # SERVICE_RESULT for exec_stop_post, when not derived from the exit
    last_wait: int | None = None  # raw wait status of this run's main process
    start_deadline: float | None = None  # the [ready] timeout of a start with hooks

    @property
    def name(self) -> str:
        return self.unit.name

    @property
    def down(self) -> bool:
        """No process of this unit is alive and it is not stopping."""
        return (self.pid is None and not self.leftovers and self.hook_pid is None
                and self.state not in (State.STOPPING, State.STOP_CMD, State.STOP_POST))


# UnitRecord's fields that hold an Enum: snapshot() writes their values.
_ENUM_FIELDS = ("state", "desired", "then")


def _starts_at_boot(unit: Unit) -> bool:
    """Return False for a disabled unit (started only when asked or pulled
    in), a `[timer]` unit without `on_boot` (its schedule starts it) and an
    `on_demand` socket unit (its first client does)."""
    if not unit.enabled or unit.socket is not None and unit.socket.on_demand:
        return False
    return unit.timer is None or unit.timer.on_boot


# States in which an on_demand unit's sockets are watched for a first client.
ACTIVATABLE = frozenset({State.INACTIVE, State.EXITED})


def describe_status(status: int) -> tuple[str, int]:
    """Return ('exited with status N' or 'killed by SIGX', shell status)."""
    if os.WIFSIGNALED(status):
        from pidone.sysdeps import signal_name

        signum = os.WTERMSIG(status)
        return f"killed by {signal_name(signum)}", 128 + signum
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
    return f"exited with status {code}", code


STOPPING_NOW = (State.STOPPING, State.STOP_CMD)  # a stop is under way (signal or exec_stop)

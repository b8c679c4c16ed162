"""The state machine of units: events in, new state and actions out. No
system calls, no clock (the time comes with each event): every behaviour of
starting, stopping and restarting can be tested as a table.

State model
-----------
Each unit has a *desired* state (UP or DOWN) and a *current* state:

                  start            deps settled          exec ok / ready
    INACTIVE ─────────────▶ WAITING ───────────▶ STARTING ─────────────▶ RUNNING
       ▲  ▲                    │ requires failed    │  │ oneshot exit 0      │
       │  │                    ▼                    │  └──────────▶ EXITED   │
       │  │                 SKIPPED                 │ failure (exit, ready   │
       │  │                                         │ timeout, health)       │
       │  │ backoff over (or QUEUED, then released) ▼                        │
       │  └──────────────── BACKOFF ◀──── policy allows a retry ◀──────────┘
       │                       │ retries exhausted / policy no
       │ stopped               ▼
    STOPPING ◀── stop       FAILED  (for good: requires-dependents stop too)

- WAITING: wanted up, waiting until everything it is ordered after has
  settled. Settled means RUNNING, EXITED, FAILED or SKIPPED (and, for
  `wants`/`after` only, BACKOFF: that attempt failed). A `requires` target
  must be RUNNING or EXITED; if it is FAILED or SKIPPED the unit is SKIPPED.
- QUEUED: a policy restart whose backoff is over waits for a restart slot
  (restartqueue.py has its rules); released, it goes on to WAITING.
- STARTING: the main process exists; it is not ready yet (probe, READY=1,
  or a oneshot still running).
- STOPPING: the stop signal went to the unit's process group and leftovers;
  a STOP timer SIGKILLs what is left. When everything is gone the unit goes
  where `then` says: INACTIVE, a restart, or the failure path.
- Leftovers: processes of the unit's session still alive when its main
  process exited. They belong to the unit until they exit, and are stopped
  with it (and before any restart).

Stopping mirrors starting: a unit wanted DOWN stops only once every unit
ordered after it that is also wanted DOWN has stopped, so shutdown runs in
reverse dependency order with independent stops in parallel.
"""

from __future__ import annotations

from dataclasses import fields
from enum import Enum

from pidone import events as ev
from pidone.events import TimerKind
from pidone.hooks import HookRules
from pidone.machine_lifecycle import LifecycleRules
from pidone.restartqueue import QueueRules, RestartQueue
from pidone.units import RestartPolicy, Unit, UnitType
from pidone.unitstate import (  # noqa: F401 - the state model, re-exported for the machine's users
    ACTIVATABLE,
    ENDED,
    FOR_GOOD,
    KILL_WAIT,
    REQUIRE_OK,
    SETTLED_SOFT,
    STOPPING_NOW,
    _ENUM_FIELDS,
    Desired,
    State,
    Then,
    UnitRecord,
    _starts_at_boot,
    describe_status,
)




class Machine(LifecycleRules, HookRules, QueueRules):
    """The units' states and the rules that move them."""

    def __init__(self, units: dict[str, Unit], blocked: dict[str, str] | None = None, *,
                 max_restarting: int = 0, random_source=None):
        """`blocked` maps units that must never start (a cycle, a missing
        `requires`) to the reason; they are SKIPPED from the start.
        `max_restarting` bounds the units starting because of a policy
        restart (0 = unlimited); `random_source()` returns a float in
        [0, 1) for `[restart] jitter` (seeded by default: the machine
        stays deterministic)."""
        self.records: dict[str, UnitRecord] = {name: UnitRecord(unit) for name, unit in units.items()}
        self._dependents: dict[str, set[str]] = {}
        self._required_by: dict[str, set[str]] = {}
        self._rebuild_edges()
        self._blocked = dict(blocked or {})
        for name, reason in self._blocked.items():
            if name in self.records:
                self.records[name].state = State.SKIPPED
                self.records[name].reason = reason
        self.shutting_down = False
        self._all_stopped_sent = False
        self._maybe_up: list[str] | None = None  # shutdown: units not yet seen down
        self._killed_any = False
        self._exit_sent = False
        self._actions: list[object] = []
        self._now = 0.0
        self._reload_pending: set[str] | None = None
        self.queue = RestartQueue(max_restarting)
        self._random = random_source  # None: a seeded one, made on first use
        # (unit, old state, new state) since the supervisor last took them.
        self.changes: list[tuple[str, State, State]] = []

    # -- the one entry point -----------------------------------------------

    def handle(self, event: object, now: float) -> list[object]:
        """Apply `event` at time `now`; return the actions to carry out."""
        self._now = now
        self._actions = []
        handler = getattr(self, "_on_" + type(event).__name__, None)
        if handler is None:
            raise TypeError(f"the machine has no rule for {type(event).__name__}")
        name = getattr(event, "name", None)
        if name is not None and name not in self.records:
            return []  # a late event about a unit a reload removed
        handler(event)
        if self.queue.waiting and self.queue.has_room() and not self.shutting_down:
            self._release_queued()
        if self._reload_pending is not None:
            self._check_reload_done()
        if self.shutting_down:
            self._check_all_stopped()
        return self._actions

    # -- requests ------------------------------------------------------------

    def _on_StartAll(self, event: ev.StartAll) -> None:
        for name in list(self.records):
            if _starts_at_boot(self.records[name].unit):  # not disabled, a timer's or on_demand
                self._want_up(name, explicit=False)
            elif self._on_demand(self.records[name]) and self.records[name].state in ACTIVATABLE:
                self._actions.append(ev.WatchSockets(name, True))  # INACTIVE: wait for a client
        for name in self.records:
            self._check_start(name)

    def _on_StartUnit(self, event: ev.StartUnit) -> None:
        pulled = self._want_up(event.name, explicit=True)
        for name in pulled:
            self._check_start(name)

    def _on_StopUnit(self, event: ev.StopUnit) -> None:
        for name in self._closure(event.name, self._stopped_with):
            self._want_down(name, reason="stopped" if name == event.name else f"stopped with {event.name}")
        for name in self._closure(event.name, self._stopped_with):
            self._check_stop(name)

    def _on_RestartUnit(self, event: ev.RestartUnit) -> None:
        rec = self.records[event.name]
        if rec.name in self._blocked:
            self._log(rec, f"cannot restart: {self._blocked[rec.name]}")
            return
        self._restart_parts(rec)
        if rec.down:
            self._on_StartUnit(ev.StartUnit(event.name))
            return
        rec.desired = Desired.UP
        rec.failures = 0
        rec.by_policy = False  # the user's restart is not queued
        if rec.state not in STOPPING_NOW:
            self._begin_stop(rec, Then.SPAWN)
        else:
            rec.then = Then.SPAWN

    def _on_Resumed(self, event: ev.Resumed) -> None:
        """After a re-exec: what was waiting for its dependencies checks
        again (the old process may have been about to start it)."""
        for name, rec in list(self.records.items()):
            if rec.state == State.WAITING:
                self._check_start(name)

    def _on_Shutdown(self, event: ev.Shutdown) -> None:
        self.shutting_down = True
        self._reload_pending = None
        for name in list(self.records):
            self._want_down(name, reason="")
        for name in list(self.records):
            if name in self.records:
                self._check_stop(name)

    # -- process facts -------------------------------------------------------

    def _on_Spawned(self, event: ev.Spawned) -> None:
        rec = self.records[event.name]
        rec.pid = event.pid
        rec.started_at = self._now
        self._log(rec, f"started (pid {event.pid})")
        if event.confirmed:
            self._on_exec(rec)

    def _on_ExecConfirmed(self, event: ev.ExecConfirmed) -> None:
        rec = self.records[event.name]
        if rec.pid == event.pid and rec.state == State.STARTING:
            self._on_exec(rec)

    def _on_SpawnFailed(self, event: ev.SpawnFailed) -> None:
        rec = self.records[event.name]
        if event.pid is not None:
            # The forked child will exit; that exit is the failure.
            rec.spawn_error = event.message
            return
        if rec.state == State.STARTING:
            self._log(rec, event.message)
            rec.result = "resources"
            rec.failed_step = "directories" if "create directory" in event.message else "command"
            self._failure(rec, event.message, status=None)

    def _on_MainExited(self, event: ev.MainExited) -> None:
        rec = self.records[event.name]
        rec.leftovers |= set(event.leftovers)
        if event.pid != rec.pid:
            return  # an earlier run's process, or a MAINPID hand-over
        rec.pid = None
        description, shell_status = describe_status(event.status)
        rec.last_exit = description
        rec.last_status = shell_status
        rec.last_wait = event.status
        if rec.state in STOPPING_NOW:
            self._log(rec, f"main process {description}")
            self._maybe_stopped(rec)
            return
        if rec.state not in (State.STARTING, State.RUNNING, State.START_POST):
            return
        if rec.state == State.START_POST:
            self._actions.append(ev.KillHook(rec.name))  # its exit fails the start
        spawn_error, rec.spawn_error = rec.spawn_error, ""
        if spawn_error:
            self._log(rec, spawn_error)
            rec.result, rec.failed_step = "resources", "command"
            self._failure(rec, spawn_error, status=shell_status)
            return
        if rec.unit.type == UnitType.FORKING and rec.state == State.STARTING and event.status == 0:
            self._handed_over(rec)  # not the end of the run: its daemon is the main process now
            return
        success, prevented = self._exit_outcome(rec, event.status)
        if rec.leftovers:
            self._log(rec, f"{description}, leaving {len(rec.leftovers)} process(es) behind: {sorted(rec.leftovers)}")
        else:
            self._log(rec, description)
        self._stop_watching(rec)
        if not success and rec.state in (State.STARTING, State.START_POST):
            rec.failed_step = "command"  # it ended before it was started
        if success and rec.unit.type == UnitType.ONESHOT and rec.state == State.STARTING and self._start_post(rec):
            return  # exec_start_post first, then the end of the run
        self._run_ended(rec, ["exit", event.status])

    def _after_exit(self, rec: UnitRecord, status: int) -> None:
        """The main process ended by itself (and exec_stop_post, if any, ran)."""
        success, prevented = self._exit_outcome(rec, status)
        description, shell_status = describe_status(status)
        if success and rec.unit.type == UnitType.ONESHOT:
            rec.failures = 0
            self._set_state(rec, State.EXITED)
            self._settled(rec)
            self._success_end(rec)
            return
        if success:
            if rec.unit.restart.policy == RestartPolicy.ALWAYS and rec.desired == Desired.UP and not prevented:
                rec.failures = 0
                self._schedule_restart(rec, rec.unit.restart.delay, "exited")
                return
            self._set_state(rec, State.EXITED)
            self._settled(rec)
            self._success_end(rec)
            return
        if prevented:
            self._after_failure(rec, f"{description} (prevent_exit_status: not restarted)", shell_status, retry=False)
            return
        self._failure(rec, description, status=shell_status)

    def _on_LeftoverExited(self, event: ev.LeftoverExited) -> None:
        rec = self.records[event.name]
        rec.leftovers.discard(event.pid)
        if rec.state == State.STOPPING:
            self._maybe_stopped(rec)
        elif rec.down and self.shutting_down:
            self._became_down(rec)

    def _on_ReadyPassed(self, event: ev.ReadyPassed) -> None:
        rec = self.records[event.name]
        if rec.state == State.STARTING and rec.pid is not None:
            self._become_ready(rec)

    def _on_Notified(self, event: ev.Notified) -> None:
        rec = self.records[event.name]
        for key, value in event.fields:
            if key == "READY" and value == "1":
                if rec.state == State.STARTING and rec.unit.type == UnitType.NOTIFY and rec.pid is not None:
                    self._become_ready(rec)
            elif key == "STATUS":
                rec.status_text = value
            elif key == "WATCHDOG" and value == "1":
                self._watchdog_kept(rec)
            elif key == "STOPPING" and value == "1":
                self._log(rec, "says it is stopping")
            elif key == "MAINPID" and value.isdigit() and rec.pid is not None and int(value) != rec.pid:
                rec.pid = int(value)
                self._log(rec, f"main process is now pid {rec.pid} (MAINPID)")
                self._actions.append(ev.NewMainPid(rec.name, rec.pid))

    def _on_HealthFailed(self, event: ev.HealthFailed) -> None:
        rec = self.records[event.name]
        if rec.state == State.RUNNING:
            self._log(rec, f"health check failed: {event.detail}")
            self._failure(rec, f"health check failed: {event.detail}", status=None)

    def _on_ScheduleFired(self, event: ev.ScheduleFired) -> None:
        """A timer unit starts if it is not running; a firing while it runs
        is skipped and counted, never queued (SPEC §13)."""
        rec = self.records[event.name]
        if self.shutting_down or rec.removing:
            return
        rec.last_fired = event.wall
        idle = rec.state in (State.INACTIVE, State.EXITED, State.FAILED, State.SKIPPED, State.CONDITION)
        if idle and rec.down and rec.name not in self._blocked and rec.unit.enabled:
            rec.firings += 1  # INACTIVE, EXITED, FAILED or SKIPPED -> WAITING
            self._log(rec, "timer fired: starting")
            self._on_StartUnit(ev.StartUnit(event.name))
        else:
            rec.firings_skipped += 1  # still waiting, starting, running, stopping or backing off
            why = self._blocked.get(rec.name) or ("disabled" if not rec.unit.enabled else f"still {rec.state.value}")
            self._log(rec, f"timer fired: skipped ({why})")

    def _on_SocketActivity(self, event: ev.SocketActivity) -> None:
        """A first client of an idle on_demand unit starts it (INACTIVE or
        EXITED -> WAITING); in any other state the unit is on its way or
        the activity is left to it."""
        rec = self.records[event.name]
        if self.shutting_down or rec.removing or rec.state not in ACTIVATABLE or rec.name in self._blocked:
            return
        self._log(rec, "a client connected: starting")
        self._on_StartUnit(ev.StartUnit(event.name))

    def _on_TimerFired(self, event: ev.TimerFired) -> None:
        rec = self.records[event.name]
        if event.kind == TimerKind.READY and rec.state in (State.STARTING, State.START_PRE, State.START_POST):
            reason = f"not ready within {rec.unit.ready.timeout:g}s"
            if rec.hook_pid is not None:
                reason = f"not started within {rec.unit.ready.timeout:g}s: {rec.step} still running"
            elif rec.step:  # forking: the hand-over's last problem
                reason = f"not started within {rec.unit.ready.timeout:g}s: {rec.step}"
            rec.result = "timeout"
            rec.failed_step = rec.hook_key if rec.hook_pid is not None else "command" if rec.step else "ready"
            if rec.hook_pid is None:
                rec.step = ""
            self._log(rec, reason)
            self._failure(rec, reason, status=None)
        elif event.kind == TimerKind.STOP and rec.state == State.STOP_POST and rec.hook_pid is not None:
            self._timed_out_hook(rec)
        elif event.kind == TimerKind.STOP and rec.state in STOPPING_NOW:
            if rec.state == State.STOP_CMD:
                self._actions.append(ev.KillHook(rec.name))
                self._set_state(rec, State.STOPPING)
            if not rec.killed:
                rec.killed = True
                self._killed_any = True
                self._log(rec, f"did not stop within {rec.unit.stop.timeout:g}s: sending SIGKILL")
                self._actions.append(ev.KillUnit(rec.name, self._main_only(rec, kill=True)))
                self._actions.append(ev.SetTimer(rec.name, TimerKind.STOP, self._now + KILL_WAIT))
            else:
                self._log(rec, f"processes {sorted(self._alive(rec))} survived SIGKILL for {KILL_WAIT:g}s; giving up on them")
                rec.pid = None
                rec.hook_pid = None
                rec.leftovers.clear()
                self._stop_finished(rec)
        elif event.kind == TimerKind.QUEUE:
            self._queue_timer(rec)
        elif event.kind == TimerKind.WATCHDOG:
            self._watchdog_fired(rec)
        elif event.kind == TimerKind.RESTART and rec.state == State.BACKOFF:
            rec.retry_at = None
            if rec.desired != Desired.UP:
                self._set_state(rec, State.INACTIVE)
                return
            rec.restarts += 1
            rec.by_policy = True
            if rec.leftovers:
                self._begin_stop(rec, Then.SPAWN)
            else:
                self._set_state(rec, State.WAITING)
                self._check_start(rec.name)

    # -- starting -----------------------------------------------------------

    def _want_up(self, name: str, *, explicit: bool) -> list[str]:
        """Mark `name` and what it requires or wants as wanted up; return
        the units whose start should be checked."""
        touched = []
        for member in self._closure_down(name):
            rec = self.records[member]
            if member in self._blocked:
                continue
            rec.desired = Desired.UP
            restartable = rec.state in (State.INACTIVE, State.FAILED, State.SKIPPED, State.CONDITION)
            if member == name and explicit and rec.state == State.EXITED:
                restartable = True  # starting a finished oneshot runs it again
            if member == name and explicit and rec.state == State.QUEUED:
                self._dequeue(rec)  # the user's start is not queued
                restartable = True
            if restartable:
                rec.by_policy = False
                if rec.state in FOR_GOOD:
                    rec.failures = 0
                rec.reason = ""
                self._set_state(rec, State.WAITING)
            touched.append(member)
        return touched

    def _closure_down(self, name: str) -> list[str]:
        """`name` and, transitively, what it requires or wants."""
        seen, order, todo = {name}, [], [name]
        while todo:
            current = todo.pop()
            order.append(current)
            deps = self.records[current].unit.dependencies
            for target in (*deps.requires, *deps.wants):
                if target in self.records and target not in seen:
                    seen.add(target)
                    todo.append(target)
        return order

    def _check_start(self, name: str) -> None:
        """Start `name` if it is WAITING and what it is ordered after has
        settled; skip it if a `requires` failed for good."""
        rec = self.records.get(name)
        if rec is None or rec.state != State.WAITING or rec.desired != Desired.UP:
            return
        unit = rec.unit
        for target in unit.dependencies.requires:
            dep = self.records.get(target)
            if dep is None:
                continue  # the graph check made this a blocked unit already
            if dep.restart_pending:
                return  # about to restart with a new definition: wait for that one
            if dep.state in FOR_GOOD:
                self._skip(rec, f"requires {target}, which {'failed' if dep.state == State.FAILED else 'was skipped'}")
                return
            if dep.state not in REQUIRE_OK:
                return
        for target in unit.ordering:
            dep = self.records.get(target)
            if dep is None or (dep.desired != Desired.UP and not dep.restart_pending):
                continue
            if dep.restart_pending or dep.state not in SETTLED_SOFT:
                return
        if rec.by_policy and not self._admit(rec):
            return
        self._spawn(rec)

    def _spawn(self, rec: UnitRecord) -> None:
        rec.by_policy = False
        rec.spawn_error = ""
        rec.status_text = ""
        rec.ready_at = None
        rec.run_active = True
        rec.failed_step = rec.result = ""
        rec.last_wait = None
        if self._start_pre(rec):
            return
        self._set_state(rec, State.STARTING)
        self._actions.append(ev.Spawn(rec.name))

    def _on_exec(self, rec: UnitRecord) -> None:
        """The main process runs the unit's command: arm readiness."""
        unit = rec.unit
        self._watchdog_kept(rec)  # the watchdog counts from the exec, as systemd's
        if (unit.ready.timeout > 0 and rec.start_deadline is None
                and not (unit.type == UnitType.SIMPLE and unit.ready.probe is None)):
            self._actions.append(ev.SetTimer(rec.name, TimerKind.READY, self._now + unit.ready.timeout))
        if unit.type == UnitType.SIMPLE:
            if unit.ready.probe is None:
                self._become_ready(rec)
            else:
                self._actions.append(ev.WatchReady(rec.name))

    def _become_ready(self, rec: UnitRecord) -> None:
        if self._start_post(rec):
            return
        self._actions.append(ev.ClearTimer(rec.name, TimerKind.READY))
        if rec.unit.ready.probe is not None:
            self._actions.append(ev.UnwatchReady(rec.name))
        rec.ready_at = self._now
        self._set_state(rec, State.RUNNING)
        if rec.unit.type != UnitType.SIMPLE or rec.unit.ready.probe is not None:
            self._log(rec, "ready")
        if rec.unit.health.probe is not None:
            self._actions.append(ev.WatchHealth(rec.name))
        self._settled(rec)

    def _settled(self, rec: UnitRecord) -> None:
        """`rec` reached a settled state: its dependents may start now."""
        for dependent in sorted(self._dependents.get(rec.name, ())):
            self._check_start(dependent)

    def _skip(self, rec: UnitRecord, reason: str) -> None:
        rec.reason = reason
        self._set_state(rec, State.SKIPPED)
        self._log(rec, f"skipped: {reason}")
        self._settled(rec)

    # -- failing and restarting ----------------------------------------------

    def _failure(self, rec: UnitRecord, reason: str, status: int | None) -> None:
        """One attempt failed. Stop what is still alive first, then apply
        the restart policy."""
        self._stop_watching(rec)
        if rec.pid is not None or rec.hook_pid is not None:
            rec.pending_failure = reason
            self._begin_stop(rec, Then.FAIL)
            return
        self._run_ended(rec, ["fail", reason, status])

    def _after_failure(self, rec: UnitRecord, reason: str, status: int | None, retry: bool = True) -> None:
        restart = rec.unit.restart
        if rec.started_at is not None and self._now - rec.started_at >= restart.reset_after:
            rec.failures = 0  # it ran long enough: this is a fresh failure
        rec.failures += 1
        if status is not None:
            rec.last_status = status
        retry = retry and restart.policy != RestartPolicy.NO and rec.desired == Desired.UP and not self.shutting_down
        if retry and restart.max_retries and rec.failures > restart.max_retries:
            retry = False
            reason = f"{reason}; gave up after {restart.max_retries} restarts"
        if retry:
            # The exponent is capped: with max_retries = 0 failures count
            # forever, and 2**1100 does not fit a float.
            delay = min(restart.max_delay, restart.delay * (2 ** min(rec.failures - 1, 64)))
            self._schedule_restart(rec, delay, reason)
            return
        rec.reason = reason
        self._set_state(rec, State.FAILED)
        self._log(rec, f"failed: {reason}")
        self._settled(rec)
        self._stop_requirers(rec)
        self._stop_parts(rec, reason=f"part of {rec.name}, which failed")
        if rec.unit.service.critical:
            self._request_exit(rec, rec.last_status if rec.last_status else 1, f"critical unit {rec.name} failed: {reason}")

    def _schedule_restart(self, rec: UnitRecord, delay: float, reason: str) -> None:
        if rec.unit.restart.jitter > 0:
            if self._random is None:
                import random

                self._random = random.Random(0).random
            delay += rec.unit.restart.jitter * self._random()  # desynchronises a herd
        rec.retry_at = self._now + delay
        self._set_state(rec, State.BACKOFF)
        limit = rec.unit.restart.max_retries
        count = f" (failure {rec.failures} of {limit + 1})" if limit and rec.failures else ""
        self._log(rec, f"{reason}; restarting in {delay:g}s{count}")
        self._actions.append(ev.SetTimer(rec.name, TimerKind.RESTART, rec.retry_at))
        self._settled(rec)  # wants/after dependents need not wait for it
        self._restart_parts(rec)

    def _stop_requirers(self, rec: UnitRecord) -> None:
        """`rec` failed for good: what requires it cannot run without it."""
        for dependent in sorted(self._required_by.get(rec.name, ())):
            dep = self.records[dependent]
            if dep.state == State.WAITING:
                self._check_start(dependent)  # becomes SKIPPED
            elif dep.desired == Desired.UP and not dep.down:
                self._want_down(dependent, reason=f"requires {rec.name}, which failed")
                self._check_stop(dependent)

    def _success_end(self, rec: UnitRecord) -> None:
        if rec.unit.service.critical:
            self._request_exit(rec, 0, f"critical unit {rec.name} {rec.last_exit}")

    def _request_exit(self, rec: UnitRecord, status: int, reason: str) -> None:
        if not self._exit_sent and not self.shutting_down:
            self._exit_sent = True
            self._actions.append(ev.Exit(status, reason))

    # -- stopping -----------------------------------------------------------

    def _want_down(self, name: str, reason: str) -> None:
        rec = self.records[name]
        rec.desired = Desired.DOWN
        rec.restart_pending = False  # a stop (the user's, a shutdown) wins over a reload's restart
        rec.by_policy = False
        if reason and rec.state not in FOR_GOOD:
            rec.reason = reason
        if rec.state == State.WAITING:
            self._set_state(rec, State.INACTIVE)
        elif rec.state == State.BACKOFF:
            self._actions.append(ev.ClearTimer(name, TimerKind.RESTART))
            rec.retry_at = None
            self._set_state(rec, State.INACTIVE)
            if rec.leftovers:
                self._begin_stop(rec, Then.DOWN)
        elif rec.state == State.QUEUED:
            self._dequeue(rec)
            self._set_state(rec, State.INACTIVE)

    def _check_stop(self, name: str) -> None:
        """Stop `name` if it is wanted down, still has processes, and every
        unit ordered after it that is also going down is already down."""
        rec = self.records[name]
        if rec.desired != Desired.DOWN or rec.down or rec.state in (*STOPPING_NOW, State.STOP_POST):
            return
        for dependent in self._dependents.get(name, ()):
            dep = self.records[dependent]
            if dep.desired == Desired.DOWN and not dep.down:
                return
        self._begin_stop(rec, Then.DOWN)

    def _begin_stop(self, rec: UnitRecord, then: Then) -> None:
        if rec.state == State.STOP_POST:  # the run is over: what comes next follows exec_stop_post
            if (rec.after_post or ["stop"])[0] == "stop":
                rec.then = then
            return
        rec.then = then
        rec.killed = False
        self._stop_watching(rec)
        if rec.hook_pid is not None:
            self._actions.append(ev.KillHook(rec.name))  # a start or reload hook is cut short
        if rec.pid is None and not rec.leftovers and rec.hook_pid is None:
            self._stop_finished(rec)
            return
        if self._stop_command(rec):
            return
        signum = rec.unit.stop.signal
        from pidone.sysdeps import signal_name

        self._set_state(rec, State.STOPPING)
        self._log(rec, f"stopping ({signal_name(signum)})")
        self._actions.append(ev.SignalUnit(rec.name, signum, self._main_only(rec, kill=False)))
        self._actions.append(ev.SetTimer(rec.name, TimerKind.STOP, self._now + rec.unit.stop.timeout))

    def _maybe_stopped(self, rec: UnitRecord) -> None:
        if rec.pid is None and not rec.leftovers and rec.hook_pid is None and rec.state == State.STOPPING:
            self._actions.append(ev.ClearTimer(rec.name, TimerKind.STOP))
            self._stop_finished(rec)

    def _stop_finished(self, rec: UnitRecord) -> None:
        if self._stop_post(rec, ["stop"]):
            return
        then, rec.then = rec.then, Then.DOWN
        if rec.restart_pending and then == Then.DOWN:
            rec.restart_pending = False
            self._adopt_next_definition(rec)
            if rec.state in (State.STOPPING, State.STOP_POST):
                self._set_state(rec, State.INACTIVE)
                self._log(rec, "stopped")
            if not self.shutting_down and rec.name not in self._blocked:
                rec.desired = Desired.UP
                rec.failures = 0
                self._set_state(rec, State.WAITING)
                self._check_start(rec.name)
            if rec.down:
                self._became_down(rec)
            return
        if then == Then.FAIL:
            reason, rec.pending_failure = rec.pending_failure, ""
            self._after_failure(rec, reason, status=None)
        elif then == Then.SPAWN and rec.desired == Desired.UP and not self.shutting_down:
            self._set_state(rec, State.WAITING)
            self._check_start(rec.name)
        else:
            self._adopt_next_definition(rec)  # a reload changed it while it stopped
            if rec.state in (State.STOPPING, State.STOP_POST):
                self._set_state(rec, State.INACTIVE)
                self._log(rec, "stopped")
            if rec.desired == Desired.UP and not self.shutting_down:
                self._set_state(rec, State.WAITING)
                self._check_start(rec.name)
        if rec.down:
            self._became_down(rec)

    def _became_down(self, rec: UnitRecord) -> None:
        """`rec` has no process left: what it is ordered after may stop now."""
        if rec.removing:
            self._forget(rec)
        for target in rec.unit.ordering:
            if target in self.records:
                self._check_stop(target)

    def _stop_watching(self, rec: UnitRecord) -> None:
        self._actions.append(ev.ClearTimer(rec.name, TimerKind.READY))
        if rec.unit.health.watchdog:
            self._actions.append(ev.ClearTimer(rec.name, TimerKind.WATCHDOG))
        if rec.unit.ready.probe is not None:
            self._actions.append(ev.UnwatchReady(rec.name))
        if rec.unit.health.probe is not None:
            self._actions.append(ev.UnwatchHealth(rec.name))

    def _check_all_stopped(self) -> None:
        if self._all_stopped_sent:
            return
        # Called after every event of a shutdown: resume where the last
        # call found a unit still up instead of asking every unit again
        # (quadratic: 50 million checks for 10,000 units). Nothing starts
        # during a shutdown, so a unit once down stays down; a last full
        # pass makes sure of it.
        if self._maybe_up is None:
            self._maybe_up = list(self.records)
        while self._maybe_up:
            rec = self.records.get(self._maybe_up[-1])
            if rec is not None and not rec.down:
                return
            self._maybe_up.pop()
        self._maybe_up = [name for name, rec in self.records.items() if not rec.down]
        if not self._maybe_up:
            self._all_stopped_sent = True
            self._actions.append(ev.AllStopped(self._killed_any))

    # -- reload ---------------------------------------------------------------

    def _on_ApplyPlan(self, event: ev.ApplyPlan) -> None:
        """Swap in a new plan: start what was added, stop what was removed,
        restart what changed (and what requires it, stopped first and
        started after it), re-order what only changed its dependencies, and
        leave every other unit alone."""
        diff = event.diff
        old_blocked, self._blocked = self._blocked, dict(event.blocked)
        touched: set[str] = set()
        for name in diff.removed:
            rec = self.records[name]
            rec.removing = True
            touched.add(name)
        for name in diff.reordered:
            self.records[name].unit = event.units[name]
        for name in diff.added:
            self.records[name] = UnitRecord(event.units[name])
            touched.add(name)
        for name in diff.changed:
            self.records[name].next_unit = event.units[name]
        self._rebuild_edges()

        for name in diff.removed:
            self._stop_parts(self.records[name], reason=f"part of {name}, which was removed")
        for name in diff.removed:
            self._want_down(name, reason="removed from the units directory")
            if self.records[name].down:
                self._forget(self.records[name])
        for name in diff.added:
            if _starts_at_boot(self.records[name].unit):
                touched.update(self._want_up(name, explicit=False))
            elif self._on_demand(self.records[name]):
                self._actions.append(ev.WatchSockets(name, True))
        restart = set()
        for name in diff.changed:
            restart.update(self._closure(name, self._stopped_with))
        for name in sorted(restart):
            rec = self.records[name]
            if rec.removing:
                continue
            touched.add(name)
            if rec.down and rec.state != State.STOPPING:
                self._adopt_next_definition(rec)
                if rec.state == State.BACKOFF:
                    self._actions.append(ev.ClearTimer(name, TimerKind.RESTART))
                elif rec.state == State.QUEUED:
                    self._dequeue(rec)  # a reload's restart is the operator's: not queued
                rec.by_policy = False
                if rec.desired == Desired.UP or rec.state in (State.BACKOFF, State.FAILED, State.QUEUED):
                    rec.desired = Desired.UP
                    rec.failures = 0
                    self._set_state(rec, State.WAITING)
                continue
            if rec.desired == Desired.UP:
                rec.restart_pending = True
                rec.desired = Desired.DOWN
            # Wanted down (being stopped): it takes the new definition when
            # it is down, and stays down.
        for name, reason in self._blocked.items():
            rec = self.records.get(name)
            if rec is None or rec.removing:
                continue
            if not rec.down:
                rec.restart_pending = False
                self._want_down(name, reason=reason)
            elif rec.state != State.SKIPPED:
                self._want_down(name, reason="")
                rec.reason = reason
                self._set_state(rec, State.SKIPPED)
                self._log(rec, f"skipped: {reason}")
        for name in set(old_blocked) - set(self._blocked):
            if name in self.records and not self.records[name].removing and self.records[name].unit.enabled:
                touched.update(self._want_up(name, explicit=False))
        for name in sorted(touched):
            if name in self.records:
                self._check_stop(name)
        for name in sorted(touched):
            if name in self.records:
                self._check_start(name)
        self._reload_pending = touched

    def _adopt_next_definition(self, rec: UnitRecord) -> None:
        if rec.next_unit is not None:
            rec.unit, rec.next_unit = rec.next_unit, None

    def _forget(self, rec: UnitRecord) -> None:
        """A removed unit has stopped: drop it and its edges."""
        self.records.pop(rec.name, None)
        self._rebuild_edges()
        self._log(rec, "removed")

    def _check_reload_done(self) -> None:
        pending = self._reload_pending
        assert pending is not None
        for name in list(pending):
            rec = self.records.get(name)
            if rec is None:
                pending.discard(name)
            elif rec.restart_pending or rec.removing or rec.state in (*STOPPING_NOW, State.STOP_POST):
                continue
            else:
                # Applied: what it became is in motion (started, waiting
                # for its dependencies, or ready). A reload does not wait
                # for readiness, or a slow starter would hold every later
                # reload and re-exec back.
                pending.discard(name)
        if not pending:
            self._reload_pending = None
            self._actions.append(ev.ReloadDone())

    def _rebuild_edges(self) -> None:
        """Reverse ordering and requires edges, from each unit's definition
        (the one it will start with, during a reload)."""
        self._dependents = {name: set() for name in self.records}
        self._required_by = {name: set() for name in self.records}
        for name, rec in self.records.items():
            unit = rec.next_unit or rec.unit
            for target in unit.ordering:
                if target in self._dependents:
                    self._dependents[target].add(name)
            for target in unit.dependencies.requires:
                if target in self._required_by:
                    self._required_by[target].add(name)
        self._rebuild_part_of()

    # -- re-exec ----------------------------------------------------------------

    def busy_reason(self) -> str:
        """Why the state cannot be handed over right now ("" when it can):
        half-done reloads and shutdowns are not carried across an exec."""
        if self.shutting_down:
            return "pidone is shutting down"
        if self._reload_pending is not None or any(r.next_unit or r.restart_pending for r in self.records.values()):
            return "a reload is being applied"
        return ""

    def snapshot(self) -> dict:
        """Every record's fields as plain data (not the definitions, which
        the caller carries), and the machine's own flags."""
        # Copying each record's __dict__ is ~20x cheaper than a field-by-field
        # walk (60 ms at 10,000 units, written after every change); only the
        # few fields that are not plain data are converted.
        records = {}
        for name, rec in self.records.items():
            data = rec.__dict__.copy()
            del data["unit"], data["next_unit"]
            for key in _ENUM_FIELDS:
                data[key] = data[key]._value_  # the plain attribute: .value is a slow descriptor
            data["leftovers"] = sorted(rec.leftovers)
            records[name] = data
        return {"records": records, "blocked": self._blocked, "killed_any": self._killed_any,
                "exit_sent": self._exit_sent, "restart_queue": self.queue.snapshot()}

    def restore(self, data: dict) -> list[str]:
        """Put back what `snapshot` returned; return the names of fields it
        did not know (a newer pidone's), so the caller can warn."""
        unknown: set[str] = set()
        kinds = {item.name: item for item in fields(UnitRecord)}
        for name, values in data.get("records", {}).items():
            rec = self.records.get(name)
            if rec is None:
                continue
            for key, value in values.items():
                if key not in kinds or key in ("unit", "next_unit"):
                    unknown.add(key)
                    continue
                current = getattr(rec, key)
                if isinstance(current, Enum):
                    value = type(current)(value)
                elif isinstance(current, set):
                    value = set(value)
                setattr(rec, key, value)
        self._blocked = dict(data.get("blocked", {}))
        self._killed_any = bool(data.get("killed_any", False))
        self._exit_sent = bool(data.get("exit_sent", False))
        self._restore_queue(data.get("restart_queue", {}))
        self.changes.clear()
        return sorted(unknown)

    # -- helpers --------------------------------------------------------------

    def _closure(self, name: str, edges: dict[str, set[str]]) -> list[str]:
        seen, order, todo = {name}, [], [name]
        while todo:
            current = todo.pop()
            order.append(current)
            for nxt in edges.get(current, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return order

    def _alive(self, rec: UnitRecord) -> set[int]:
        return ({rec.pid} if rec.pid is not None else set()) | rec.leftovers

    def _set_state(self, rec: UnitRecord, state: State) -> None:
        if rec.state != state:
            if rec.state == State.STARTING and rec.name in self.queue.starting:
                self._free_slot(rec)
            self.changes.append((rec.name, rec.state, state))
            if self._on_demand(rec) and (rec.state in ACTIVATABLE) != (state in ACTIVATABLE):
                # Idle: its sockets wait for a client; otherwise the unit has them.
                self._actions.append(ev.WatchSockets(rec.name, state in ACTIVATABLE))
            if state in ENDED and rec.unit.service.runtime_directory:
                self._actions.append(ev.RemoveDirectories(rec.name, rec.unit.service.runtime_directory))
            rec.state = state
            rec.since = self._now

    @staticmethod
    def _on_demand(rec: UnitRecord) -> bool:
        """An enabled on_demand socket unit: its first client starts it."""
        return rec.unit.socket is not None and rec.unit.socket.on_demand and rec.unit.enabled

    def _log(self, rec: UnitRecord, text: str) -> None:
        self._actions.append(ev.Log(f"unit {rec.name}: {text}"))

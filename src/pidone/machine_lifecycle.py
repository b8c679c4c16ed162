"""The machine's rules for SPEC §11 (conditions, exit statuses, part_of),
kept out of machine.py, which is already past its size. A mixin of the
Machine: the same records, actions and clock, no system calls."""

from __future__ import annotations

import os

from pidone import events as ev
from pidone.unitstate import Desired, State, Then
from pidone.units_lifecycle import StopMode, status_matches


class LifecycleRules:
    """Mixed into Machine; uses its records, edges and helpers."""

    def _on_ConditionFailed(self, event: ev.ConditionFailed) -> None:
        rec = self.records[event.name]
        if rec.state in (State.STARTING, State.START_PRE) and rec.pid is None:
            rec.hook_pid, rec.run_active, rec.step = None, False, ""  # the run never began
            self._actions.append(ev.ClearTimer(rec.name, ev.TimerKind.READY))
            rec.reason = f"condition failed: {event.condition}"
            self._set_state(rec, State.CONDITION)
            self._log(rec, f"skipped (condition): {event.condition} does not hold")
            self._settled(rec)

    # -- exit statuses -----------------------------------------------------------

    def _exit_outcome(self, rec, status: int) -> tuple[bool, bool]:
        """(clean, restart prevented) for a main process's raw wait `status`:
        0 and `success_exit_status` are clean ends; `prevent_exit_status`
        forbids any restart after it, clean or not."""
        unit = rec.unit
        clean = (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0) or \
            status_matches(unit.service.success_exit_status, status)
        return clean, status_matches(unit.restart.prevent_exit_status, status)

    # -- forking -------------------------------------------------------------------

    def _handed_over(self, rec) -> None:
        """A forking unit's command exited 0: its daemon, once found and
        checked by the supervisor, is the main process."""
        rec.pid = None
        rec.step = "looking for the main process"
        self._log(rec, "command exited 0; looking for its main process"
                  + (f" in {rec.unit.service.pid_file}" if rec.unit.service.pid_file else ""))
        self._actions.append(ev.FindForkedMain(rec.name))

    def _on_ForkedMainWaiting(self, event: ev.ForkedMainWaiting) -> None:
        rec = self.records[event.name]
        if rec.state == State.STARTING and rec.pid is None:
            rec.step = event.detail

    def _on_ForkedMain(self, event: ev.ForkedMain) -> None:
        rec = self.records[event.name]
        if rec.state != State.STARTING or rec.pid is not None:
            return
        rec.leftovers.discard(event.pid)
        rec.pid, rec.step = event.pid, ""
        self._log(rec, f"main process is pid {event.pid}")
        self._actions.append(ev.NewMainPid(rec.name, event.pid))
        self._watchdog_kept(rec)
        self._become_ready(rec)

    def _on_ForkedMainFailed(self, event: ev.ForkedMainFailed) -> None:
        rec = self.records[event.name]
        if rec.state != State.STARTING or rec.pid is not None:
            return
        rec.step, rec.failed_step, rec.result = "", "command", "protocol"
        self._log(rec, event.reason)
        if rec.leftovers:  # what it left behind goes before the policy applies
            rec.pending_failure = event.reason
            self._begin_stop(rec, Then.FAIL)
        else:
            self._failure(rec, event.reason, status=None)

    # -- watchdog ------------------------------------------------------------------

    def _watchdog_kept(self, rec) -> None:
        """The exec, or WATCHDOG=1: a new deadline (a timer, never a poll)."""
        seconds = rec.unit.health.watchdog
        if seconds and rec.pid is not None and rec.state in (State.STARTING, State.RUNNING, State.START_POST):
            self._actions.append(ev.SetTimer(rec.name, ev.TimerKind.WATCHDOG, self._now + seconds))

    def _watchdog_fired(self, rec) -> None:
        """No WATCHDOG=1 in time: SIGABRT to the main process (a core to
        look at), the stop signal to the rest, then the restart policy."""
        if rec.pid is None or rec.state not in (State.STARTING, State.RUNNING, State.START_POST):
            return
        import signal

        reason = f"watchdog: no WATCHDOG=1 for {rec.unit.health.watchdog:g}s"
        self._log(rec, f"{reason}: sending SIGABRT")
        rec.result = "watchdog"
        self._stop_watching(rec)
        if rec.hook_pid is not None:
            self._actions.append(ev.KillHook(rec.name))
        rec.pending_failure, rec.then, rec.killed = reason, Then.FAIL, False
        self._set_state(rec, State.STOPPING)
        self._actions.append(ev.SignalUnit(rec.name, signal.SIGABRT, True))
        self._actions.append(ev.SignalUnit(rec.name, rec.unit.stop.signal, self._main_only(rec, kill=False)))
        self._actions.append(ev.SetTimer(rec.name, ev.TimerKind.STOP, self._now + rec.unit.stop.timeout))

    # -- stop modes --------------------------------------------------------------

    def _main_only(self, rec, *, kill: bool) -> bool:
        """Whether a stop signal (or, with `kill`, the SIGKILL at the
        timeout) reaches the main process alone: `mixed` signals it alone
        and kills everything; `process` never touches the rest (its
        leftovers are not the unit's). Without a main process, the
        leftovers are what there is to stop."""
        mode = rec.unit.stop.mode
        if rec.pid is None or mode == StopMode.GROUP:
            return False
        return mode == StopMode.PROCESS or not kill

    # -- part_of -------------------------------------------------------------------

    def _rebuild_part_of(self) -> None:
        """What is part of each unit, and the edges a stop propagates along
        (requires and part_of), from each unit's next definition."""
        self._part_of_by = {name: set() for name in self.records}
        for name, rec in self.records.items():
            for target in (rec.next_unit or rec.unit).dependencies.part_of:
                if target in self._part_of_by and target != name:
                    self._part_of_by[target].add(name)
        self._stopped_with = {name: self._required_by[name] | self._part_of_by[name] for name in self.records}

    def _parts(self, name: str) -> list[str]:
        """The units part of `name`, transitively (not `name` itself)."""
        return [other for other in self._closure(name, self._part_of_by) if other != name]

    def _restart_parts(self, rec) -> None:
        """`rec` restarts (a command, a reload, its restart policy): what is
        part of it and running restarts too."""
        for name in self._parts(rec.name):
            part = self.records[name]
            if part.desired != Desired.UP or part.down:
                continue  # not running: nothing to restart (a waiting one starts anyway)
            part.failures = 0
            self._log(part, f"restarting with {rec.name} (part_of)")
            if part.state == State.STOPPING:
                part.then = Then.SPAWN
            else:
                self._begin_stop(part, Then.SPAWN)

    def _stop_parts(self, rec, reason: str) -> None:
        """`rec` stops for good (failed, removed): what is part of it stops."""
        for name in self._parts(rec.name):
            part = self.records[name]
            if part.desired == Desired.UP:
                self._want_down(name, reason=reason)
        for name in self._parts(rec.name):
            self._check_stop(name)

"""The machine's rules for hook commands (SPEC §11): exec_start_pre before
the main command, exec_start_post once it is ready, exec_reload on
`pidone reload UNIT`, exec_stop before the stop signal, exec_stop_post once
a run is over. A mixin of the Machine: pure decisions over its records; the
supervisor runs each hook (RunHook) and reports its own exit (HookExited).

A hook's phase is a state of its own (start-pre, start-post, stop-cmd,
stop-post); `step` names the command running, `failed_step` where a failed
start failed. The [ready] timeout covers the whole start, the [stop]
timeout the whole stop; exec_stop_post gets a [stop] timeout of its own.
"""

from __future__ import annotations

import os
import shlex

from pidone import events as ev
from pidone.events import TimerKind
from pidone.unitstate import State, Then, describe_status
from pidone.units_lifecycle import hook_argv

# The state each kind of hook runs in: a report about a hook of another
# phase (cut short by a failure, say) only clears it.
PHASE = {"exec_start_pre": State.START_PRE, "exec_start_post": State.START_POST, "exec_reload": State.RUNNING,
         "exec_stop": State.STOP_CMD, "exec_stop_post": State.STOP_POST}


def _signal_word(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


class HookRules:
    """Mixed into Machine; uses its records, actions and helpers."""

    # -- running one -------------------------------------------------------------

    def _run_hook(self, rec, key: str, index: int) -> None:
        hooks = getattr(rec.unit.service, key)
        argv, _ = hook_argv(hooks[index])
        rec.hook_key, rec.hook_index, rec.hook_pid = key, index, 0  # 0: being spawned
        rec.step = f"{key} {index + 1}/{len(hooks)}" if len(hooks) > 1 else key
        env = self._post_env(rec, rec.after_post or ["stop"]) if key == "exec_stop_post" else ()
        self._actions.append(ev.RunHook(rec.name, key, argv, env))

    def _on_HookStarted(self, event: ev.HookStarted) -> None:
        rec = self.records[event.name]
        if rec.hook_pid == 0:
            rec.hook_pid = event.pid

    def _on_HookExited(self, event: ev.HookExited) -> None:
        rec = self.records[event.name]
        if rec.hook_pid is None or event.pid != rec.hook_pid:
            return
        rec.hook_pid = None
        key, index = rec.hook_key, rec.hook_index
        hooks = getattr(rec.unit.service, key)
        argv, ignored = hook_argv(hooks[index]) if index < len(hooks) else ((key,), True)
        ok = not event.error and os.WIFEXITED(event.status) and os.WEXITSTATUS(event.status) == 0
        what = event.error or describe_status(event.status)[0]
        if rec.state == State.STOPPING:  # cut short by a stop, which goes on
            self._log(rec, f"{rec.step} ({shlex.join(argv)}) {what}")
            rec.step = ""
            self._maybe_stopped(rec)
            return
        if rec.state != PHASE[key]:  # cut short by a failure that has moved on
            rec.step = ""
            if rec.down and self.shutting_down:
                self._became_down(rec)
            return
        if not ok:
            self._log(rec, f"{rec.step} ({shlex.join(argv)}) {what}" + ("; ignored ('-')" if ignored else ""))
            if not ignored and key in ("exec_start_pre", "exec_start_post"):
                rec.failed_step, rec.step = key, ""
                rec.result = "resources" if event.error else _result_of(event.status)
                self._failure(rec, f"{key} failed: {shlex.join(argv)}: {what}", status=None)
                return
        if index + 1 < len(hooks):
            self._run_hook(rec, key, index + 1)
            return
        rec.step = ""
        self._hooks_done(rec, key)

    def _hooks_done(self, rec, key: str) -> None:
        """Every command of `key` ran: the phase it belongs to goes on."""
        if key == "exec_start_pre":
            self._set_state(rec, State.STARTING)
            self._actions.append(ev.Spawn(rec.name))
        elif key == "exec_start_post":
            if rec.pid is None:  # a oneshot: it has ended, its run with it
                self._run_ended(rec, ["exit", rec.last_wait or 0])
            else:
                self._become_ready(rec)
        elif key == "exec_stop":
            self._set_state(rec, State.STOPPING)
            if rec.pid is not None or rec.leftovers:
                from pidone.sysdeps import signal_name

                self._log(rec, f"stopping ({signal_name(rec.unit.stop.signal)})")
                self._actions.append(ev.SignalUnit(rec.name, rec.unit.stop.signal, self._main_only(rec, kill=False)))
            else:
                self._maybe_stopped(rec)
        elif key == "exec_stop_post":
            self._actions.append(ev.ClearTimer(rec.name, TimerKind.STOP))
            after, rec.after_post = rec.after_post or ["stop"], None
            self._resume(rec, after)
        elif key == "exec_reload":
            self._log(rec, "reloaded (exec_reload)")

    # -- the phases ----------------------------------------------------------------

    def _start_pre(self, rec) -> bool:
        """At a start: arm the [ready] timeout for the whole start when there
        are hooks, and run exec_start_pre first if there is one."""
        service = rec.unit.service
        rec.start_deadline = None
        if (service.exec_start_pre or service.exec_start_post) and rec.unit.ready.timeout > 0:
            rec.start_deadline = self._now + rec.unit.ready.timeout
            self._actions.append(ev.SetTimer(rec.name, TimerKind.READY, rec.start_deadline))
        if not service.exec_start_pre:
            return False
        self._set_state(rec, State.START_PRE)
        self._run_hook(rec, "exec_start_pre", 0)
        return True

    def _start_post(self, rec) -> bool:
        """Readiness reached: run exec_start_post before it counts."""
        if not rec.unit.service.exec_start_post or rec.state == State.START_POST:
            return False
        if rec.unit.ready.probe is not None:
            self._actions.append(ev.UnwatchReady(rec.name))
        self._set_state(rec, State.START_POST)
        self._run_hook(rec, "exec_start_post", 0)
        return True

    def _stop_command(self, rec) -> bool:
        """A stop of a unit that started: exec_stop instead of the signal."""
        if not rec.unit.service.exec_stop or rec.pid is None or rec.state != State.RUNNING:
            return False
        self._set_state(rec, State.STOP_CMD)
        self._log(rec, "stopping (exec_stop)")
        self._actions.append(ev.SetTimer(rec.name, TimerKind.STOP, self._now + rec.unit.stop.timeout))
        self._run_hook(rec, "exec_stop", 0)
        return True

    def _run_ended(self, rec, after: list) -> None:
        """The main process is gone for this run: exec_stop_post, then `after`."""
        if not self._stop_post(rec, after):
            self._resume(rec, after)

    def _stop_post(self, rec, after: list) -> bool:
        """Run exec_stop_post once per run; `after` is what comes next."""
        if not rec.run_active:
            return False
        rec.run_active = False
        if not rec.unit.service.exec_stop_post:
            return False
        rec.after_post = list(after)
        self._set_state(rec, State.STOP_POST)
        self._actions.append(ev.SetTimer(rec.name, TimerKind.STOP, self._now + rec.unit.stop.timeout))
        self._run_hook(rec, "exec_stop_post", 0)
        return True

    def _resume(self, rec, after: list) -> None:
        kind = after[0]
        if kind == "exit":
            self._after_exit(rec, after[1])
        elif kind == "fail":
            self._after_failure(rec, after[1], after[2])
        else:
            self._stop_finished(rec)

    def _post_env(self, rec, after: list) -> tuple[tuple[str, str], ...]:
        """SERVICE_RESULT, EXIT_CODE and EXIT_STATUS as systemd sets them:
        a run that pidone stopped is a success (unless it had to be
        killed), one that ended by itself is judged by its exit."""
        status = rec.last_wait
        result = rec.result or ("timeout" if rec.killed else "")
        if not result:
            if after[0] == "stop" and rec.then != Then.FAIL or status is None:
                result = "success"
            else:
                result = _result_of(status, clean=self._exit_outcome(rec, status)[0])
        env = [("SERVICE_RESULT", result)]
        if status is not None:
            if os.WIFEXITED(status):
                env += [("EXIT_CODE", "exited"), ("EXIT_STATUS", str(os.WEXITSTATUS(status)))]
            elif os.WIFSIGNALED(status):
                env += [("EXIT_CODE", "dumped" if os.WCOREDUMP(status) else "killed"),
                        ("EXIT_STATUS", _signal_word(os.WTERMSIG(status)))]
        return tuple(env)

    # -- requests ------------------------------------------------------------------

    def _on_ReloadUnit(self, event: ev.ReloadUnit) -> None:
        rec = self.records[event.name]
        if rec.state != State.RUNNING or rec.hook_pid is not None or not rec.unit.service.exec_reload:
            self._log(rec, f"not reloaded: it is {rec.state.value}" + (f" ({rec.step})" if rec.step else ""))
            return
        self._run_hook(rec, "exec_reload", 0)

    def _timed_out_hook(self, rec) -> None:
        """A hook outlived its timeout: SIGKILL it and what it started; the
        rest of its phase is skipped."""
        self._log(rec, f"{rec.step} did not finish in time: killing it")
        self._actions.append(ev.KillHook(rec.name))
        rec.hook_index = len(getattr(rec.unit.service, rec.hook_key))  # nothing after it


def _result_of(status: int | None, clean: bool = False) -> str:
    if status is None or clean:
        return "success"
    if os.WIFSIGNALED(status):
        return "core-dump" if os.WCOREDUMP(status) else "signal"
    return "exit-code"

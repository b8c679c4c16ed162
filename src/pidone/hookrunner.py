"""Runs a unit's hook commands for the supervisor (SPEC §11): spawned
exactly as its main command is (same user, environment, directory, limits,
its own session), output in the unit's log marked with the hook's key, and
its exit reported from its own wait status, never from an orphan's."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

from pidone import events as ev
from pidone.directories import directory_env, make_directories
from pidone.errors import SpawnError
from pidone.spawn import prepare, read_spawn_error, spawn_unit
from pidone.sysdeps import unit_processes
from pidone.units_lifecycle import failed_condition

if TYPE_CHECKING:
    from pidone.supervisor import Supervisor


class HookRunner:
    """At most one hook per unit runs at a time (the machine's rule)."""

    def __init__(self, supervisor: "Supervisor"):
        self._sup = supervisor
        self.running: dict[str, tuple[int, int | None]] = {}  # unit -> (pid, exec-error fd)

    def run(self, action: ev.RunHook) -> None:
        sup, name = self._sup, action.name
        unit = sup.machine.records[name].unit
        if action.key == "exec_start_pre" and unit.conditions:  # checked before anything of the start
            failed = failed_condition(unit.conditions, sup._base_env, os.path.exists)
            if failed:
                sup._queue.append(ev.ConditionFailed(name, failed))
                return
        from pidone.supervisor import _log_pipes

        try:
            prepared = prepare(unit, sup._base_env, nofile=sup._nofile, argv=action.argv)
            if action.key == "exec_start_pre":
                make_directories(unit, prepared)  # the first step of a start
            else:
                prepared.env.update(directory_env(unit))
            prepared.env.update((key.encode(), value.encode()) for key, value in action.env)
            (out_r, out_w), (err_r, err_w) = _log_pipes()
        except SpawnError as exc:
            sup._queue.append(ev.HookExited(name, 0, 127 << 8, str(exc)))
            return
        try:
            pid, error_fd = spawn_unit(prepared, out_w, err_w)
        except SpawnError as exc:
            os.close(out_r)
            os.close(err_r)
            sup._queue.append(ev.HookExited(name, 0, 127 << 8, str(exc)))
            return
        finally:
            os.close(out_w)
            os.close(err_w)
        sup.router.add(sup._kept(out_r), name, f"{action.key}:stdout")
        sup.router.add(sup._kept(err_r), name, f"{action.key}:stderr")
        sup._reaper.watch(pid, ("hook", name))
        self.running[name] = (pid, error_fd)
        sup._queue.append(ev.HookStarted(name, pid))

    def exited(self, name: str, pid: int, status: int) -> None:
        """The reaper reaped the hook `pid` of `name`: its own status."""
        current = self.running.get(name)
        error = ""
        if current is not None and current[0] == pid:
            del self.running[name]
            if current[1] is not None:  # the child is gone: this read cannot block
                try:
                    data = os.read(current[1], 4096)
                except OSError:
                    data = b""
                os.close(current[1])
                if data:
                    error = str(read_spawn_error(data))
        self._sup.router.drain(name)  # its last words before the news of its end
        self._sup.submit(ev.HookExited(name, pid, status, error))

    def kill(self, action: ev.KillHook) -> None:
        """SIGKILL the hook's group and whatever else its session holds."""
        current = self.running.get(action.name)
        if current is None:
            return
        pid = current[0]
        self._sup._system.signal_group(pid, signal.SIGKILL)
        for other in unit_processes(pid, action.name, tagged=False):
            if other != pid:
                self._sup._signal_pid(other, signal.SIGKILL)

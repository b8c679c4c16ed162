"""Carries out the machine's actions with real system calls — spawn, signal,
timers, probes, log pipes — and feeds what happens back to it as events.

The machine decides; this module only does. Events produced while actions
run are queued and handled in order, so the machine is never re-entered.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from collections import deque
from typing import Callable

from pidone import events as ev
from pidone.errors import SpawnError
from pidone.events import ChildExited, TimerKind
from pidone.instances import Instances
from pidone.expand import env_lookup, expand_path
from pidone.logs import LogRouter, Messages, Sink
from pidone.loop import Loop
from pidone.machine import Machine
from pidone.notify import NotifySocket
from pidone.probes import ProbeRunner
from pidone.reaper import Reaper
from pidone.restartqueue import max_wait
from pidone.spawn import prepare, read_spawn_error, spawn_unit
from pidone.sysdeps import (System, orphan_roots, process_table, process_usage, read_stat, unit_members,
                            unit_processes, unit_tag)
from pidone.units import Unit
from pidone.directories import make_directories, remove_directories
from pidone.forking import Finder
from pidone.hookrunner import HookRunner
from pidone.units_lifecycle import StopMode, failed_condition

# pidone's own configuration is not the services' business.
PRIVATE_ENV = (b"PIDONE_UNITS", b"PIDONE_RUNTIME_DIR", b"PIDONE_LOG_FORMAT", b"PIDONE_HTTP",
               b"PIDONE_STOP_DELAY", b"PIDONE_KILL_GRACE", b"PIDONE_MAX_RESTARTING",
               b"NOTIFY_SOCKET", b"LISTEN_FDS", b"LISTEN_PID",
               b"LISTEN_FDNAMES")
MAINPID_RECHECK = 0.1  # s: a handed-over main that is another's zombie is looked at again
MAX_TRACKED_LEFTOVERS = 1000  # per unit; more are still killed by a /proc scan at stop
FDS_PER_UNIT = 4  # two log pipes, a pidfd, an exec-error pipe
# Reloads start at most this often; requests in between coalesce into one.
RELOAD_MIN_INTERVAL = 0.1
EVENT_HISTORY = 1000  # state changes kept for `pidone events`
POST_MORTEM_LINES = 10  # a failed unit's last lines, printed with its failure


class Supervisor:
    """Runs a set of units on `loop` under `machine`'s rules."""

    def __init__(
        self,
        units: dict[str, Unit],
        *,
        units_dir: str,
        blocked: dict[str, str],
        loop: Loop,
        reaper: Reaper,
        system: System,
        messages: Messages,
        log_sink: Sink,
        log_format: str,
        notify_path: str | None,
        on_exit: Callable[[int, str], None],
        on_all_stopped: Callable[[bool], None],
        notify_fd: int | None = None,
        max_restarting: int = 0,
    ):
        self.units = units  # the plan: what the units directory last said (last good per file)
        self.units_dir = units_dir
        self.file_errors: dict[str, list] = {}  # unit -> problems of its file at the last reload
        self.machine = Machine(units, blocked, max_restarting=max_restarting, random_source=_random_fraction)
        self._reloading = False
        self._reload_again = False
        self._apply_again = False  # instances started or stopped: apply them without reading the directory
        self.instances = Instances(units_dir)
        self._reload_timer = None
        self._last_reload_start = float("-inf")
        # Called with (summary) when done, or (None, reason) when it could not be.
        self._reload_waiters: list[Callable[..., None]] = []
        self._current_waiters: list[Callable[..., None]] = []
        self._last_summary = ""
        self.events: deque[dict] = deque(maxlen=EVENT_HISTORY)
        self.event_followers: set[Callable[[dict], None]] = set()
        # (predicate over the machine, callback) for `start --wait` and co.
        self._waiters: list[tuple[Callable[[], bool], Callable[[], None]]] = []
        self.started_at = time.time()
        self._exec_pending: set[str] = set()  # units whose exec is not confirmed yet
        # What snapshot() wrote last time, reused while the same objects stand:
        # definitions change only on reload, and a process's start time never.
        self._plan_dicts: dict[str, tuple[Unit, dict]] = {}
        self._start_times: dict[tuple[int, float | None], int | None] = {}
        self._table = None  # sysdeps.ProcessTable for the current batch, made on first need
        self._orphans: tuple[int, list[int] | None] | None = None  # (reaped count, orphan_roots())
        self.on_change: Callable[[], None] = lambda: None  # the daemon checkpoints the state
        self._loop = loop
        self._reaper = reaper
        self._system = system
        self._messages = messages
        self._router = LogRouter(loop, log_sink, log_format)
        self._probes = ProbeRunner(loop, self._start_exec_probe, self._kill_probe)
        self._on_exit = on_exit
        self._on_all_stopped = on_all_stopped
        self._queue: deque[object] = deque()
        self._busy = False
        self._timers: dict[tuple[str, TimerKind], object] = {}
        self._ready_watch: dict[str, object] = {}
        self._health_watch: dict[str, object] = {}
        self._health_failures: dict[str, int] = {}
        self._main_pidfds: dict[str, int] = {}
        # The session each unit's current run leads (the pid it was spawned
        # as), both ways: it outlives a MAINPID hand-over, and sd_notify
        # senders are recognised by it.
        self._session_of: dict[str, int] = {}
        self._unit_of_session: dict[int, str] = {}
        self._leftover_pidfds: dict[int, tuple[str, int]] = {}  # pidfd -> (unit, pid)
        self._probe_exits: dict[int, Callable[[int], None]] = {}
        self._base_env = {k: v for k, v in os.environb.items() if k not in PRIVATE_ENV}
        self._nofile = _raise_nofile(len(units))
        self._log_files: dict[str, object] = {}  # unit -> LogFile, for [log] file
        self._limit_notes: dict[str, list[str]] = {}  # unit -> limits lowered at its last spawn
        self._sync_log_files()
        self._schedules = None  # timers.Schedules, made when a unit has a [timer]
        self._sync_schedules()
        self._sockets = None  # sockets.Sockets, made when a unit has a [socket]: see bind_sockets
        self._hooks = HookRunner(self)
        self._forking = Finder(self)
        self._notify: NotifySocket | None = None
        if notify_path is not None:
            self._notify = NotifySocket(notify_path, loop, self._on_notification, fd=notify_fd)

    # -- entry points ----------------------------------------------------------

    def submit(self, event: object) -> None:
        """Hand `event` to the machine and carry out what it decides."""
        self._queue.append(event)
        if self._busy:
            return  # the running drain below will get to it
        self._busy = True
        self._table = None  # a /proc snapshot shared by this batch's stops
        try:
            while self._queue:
                event = self._queue.popleft()
                try:
                    actions = self.machine.handle(event, time.monotonic())
                except Exception:  # noqa: BLE001 - a bad rule must not stop the rest
                    import traceback

                    self._messages.say(f"error handling {event!r}:\n{traceback.format_exc()}")
                    continue
                for action in actions:
                    self._execute(action)
                if self.machine.changes:
                    self._publish_changes()
                    self.on_change()
        finally:
            self._busy = False
        if self._waiters:
            self._check_waiters()

    def wait_until(self, predicate: Callable[[], bool], callback: Callable[[], None]) -> None:
        """Call `callback` once `predicate()` holds (checked after each event)."""
        if predicate():
            callback()
        else:
            self._waiters.append((predicate, callback))

    def _check_waiters(self) -> None:
        waiting = []
        for predicate, callback in self._waiters:
            if predicate():
                try:
                    callback()
                except Exception:  # noqa: BLE001 - one client's bug must not stop the others
                    import traceback

                    self._messages.say(f"error answering a waiting client:\n{traceback.format_exc()}")
            else:
                waiting.append((predicate, callback))
        self._waiters = waiting

    def _publish_changes(self) -> None:
        changes, self.machine.changes = self.machine.changes, []
        now = time.time()
        for name, old, new in changes:
            rec = self.machine.records.get(name)
            explain = new.value in ("failed", "skipped", "skipped (condition)", "inactive", "backoff")
            reason = (rec.reason or rec.last_exit) if rec and explain else None
            if new.value == "queued":
                reason = f"restart queued: {self.machine.queue_note(name)}"
            event = {"time": now, "unit": name, "from": old.value, "to": new.value,
                     "pid": rec.pid if rec else None, "reason": reason}
            self.events.append(event)
            for follower in list(self.event_followers):
                follower(event)
            if new.value == "failed":
                self._post_mortem(name)

    def _post_mortem(self, name: str) -> None:
        """A unit failed for good: show its last lines with the failure."""
        history = self._router.history.get(name)
        lines = history.last(POST_MORTEM_LINES) if history else []
        if not lines:
            return
        self._messages.say(f"unit {name}: its last {len(lines)} line(s) before it failed:")
        for _, stream, line in lines:
            self._messages.say(f"  {name} [{stream}] | {line.decode('utf-8', 'replace')}")

    def status(self, names: list[str] | None = None) -> list[dict]:
        """A snapshot of every unit (or those named), in name order."""
        now = time.monotonic()
        wall = time.time()
        out = []
        queue = self.machine.queue
        places = {name: place for place, name in enumerate(queue.order(), 1)} if queue.waiting else {}
        for name in sorted(names or self.machine.records):
            rec = self.machine.records.get(name)
            if rec is None:
                continue
            running = rec.pid is not None
            usage = process_usage(rec.pid) if running else None
            out.append({
                "unit": name,
                "state": rec.state.value,
                "desired": rec.desired.value,
                "pid": rec.pid,
                "since": wall - (now - rec.since) if rec.since else None,
                "uptime": now - rec.started_at if running and rec.started_at is not None else None,
                "ready": rec.state.value in ("running", "exited"),
                "restarts": rec.restarts,
                "failures": rec.failures,
                "last_exit": rec.last_exit or None,
                "reason": rec.reason or None,
                "status_text": rec.status_text or None,
                "orphans": sorted(rec.leftovers),
                "retry_in": max(0.0, rec.retry_at - now) if rec.retry_at is not None else None,
                "queued": ({"position": places[name], "of": len(places), "for": now - rec.since,
                            "since": wall - (now - rec.since), "max_wait": max_wait(rec.unit)}
                           if name in places else None),
                "errors": [str(p) for p in self.file_errors.get(name, [])],
                "warnings": self._limit_notes.get(name, []),
                "memory_bytes": usage[0] if usage else None,
                "cpu_seconds": usage[1] if usage else None,
                "description": rec.unit.description,
                "type": rec.unit.type.value,
                "timer": self.timer_status(name),
                "enabled": rec.unit.enabled,
                "step": rec.step or None,
                "failed_step": rec.failed_step or None,
            })
        return out

    def signal_main(self, name: str) -> int | None:
        """Send the unit's reload_signal to its main process; return the
        signal, or None when it has no main process."""
        rec = self.machine.records[name]
        if rec.pid is None:
            return None
        if rec.unit.service.exec_reload:  # runs instead of the signal
            self.submit(ev.ReloadUnit(name))
            return 0
        signum = rec.unit.stop.reload_signal
        self._system.send_signal(rec.pid, signum, self._main_pidfds.get(name))
        return signum

    # -- re-exec ----------------------------------------------------------------------

    def busy_reason(self) -> str:
        """Why the state cannot be handed over right now ("" if it can)."""
        if self._reloading or self._reload_timer is not None:
            return "a reload is in progress"
        if self._exec_pending:
            return f"unit {sorted(self._exec_pending)[0]} is being spawned"
        if self._hooks.running:  # a hook's pipes and status are not carried across
            return f"unit {sorted(self._hooks.running)[0]} is running a hook"
        return self.machine.busy_reason()

    def snapshot(self) -> dict:
        """Everything a new pidone needs to carry on with these units."""
        from pidone.loader import unit_to_dict
        from pidone.sysdeps import read_start_time

        records = self.machine.records
        plan_dicts = {}
        for name, unit in self.units.items():
            cached = self._plan_dicts.get(name)
            plan_dicts[name] = cached if cached is not None and cached[0] is unit else (unit, unit_to_dict(unit))
        self._plan_dicts = plan_dicts
        start_times = {}
        for rec in records.values():
            if rec.pid:
                # Keyed by spawn time too: a new run may get a recycled pid.
                key = (rec.pid, rec.started_at)
                start_times[key] = self._start_times[key] if key in self._start_times else read_start_time(rec.pid)
        self._start_times = start_times
        return {
            "plan": {name: unit_dict for name, (_, unit_dict) in plan_dicts.items()},
            "paths": {name: unit.path for name, unit in self.units.items()},
            "machine": self.machine.snapshot(),
            "main_start_times": {name: start_times[rec.pid, rec.started_at] for name, rec in records.items() if rec.pid},
            "leftovers": [[unit, pid, read_start_time(pid)] for unit, pid in self._leftover_pidfds.values()],
            "timers": [[name, kind.value, timer.deadline] for (name, kind), timer in self._timers.items()
                       if not timer.cancelled],
            "streams": self._router.snapshot(),
            "health_failures": self._health_failures,
            "file_errors": {name: [str(p) for p in problems] for name, problems in self.file_errors.items()},
            "notify_fd": self._notify.fd if self._notify is not None else None,
            "reaped": [self._reaper.reaped, self._reaper.orphans_reaped],
            "nofile": self._nofile,
            "schedules": self._schedules.snapshot() if self._schedules is not None else {},
            "sockets": self._sockets.snapshot() if self._sockets is not None else {},
            "started_instances": sorted(self.instances.started),
        }

    def held_sockets(self) -> dict[str, int]:
        """The [socket] fds a re-exec hands over, by role ("listen:UNIT:N")."""
        if self._sockets is None:
            return {}
        return {f"listen:{name}:{i}": held.fd for name, helds in self._sockets.held.items()
                for i, held in enumerate(helds)}

    def restore(self, state: dict) -> list[str]:
        """Carry on from a snapshot: the same processes, pipes and timers.
        A process is adopted only if its start time matches the state.
        Returns what was not understood (a newer pidone's fields)."""
        from pidone.sysdeps import read_start_time

        unknown = self.machine.restore(state.get("machine", {}))
        self.instances = Instances(self.units_dir, None)  # its templates are read again on first need
        self.instances.started = {name for name in state.get("started_instances", []) if name in self.machine.records}
        if state.get("nofile"):  # the limit the first pidone found, and children get back
            self._nofile = (state["nofile"][0], state["nofile"][1])
        starts = state.get("main_start_times", {})
        lost = []
        for name, rec in self.machine.records.items():
            if rec.pid is None:
                continue
            if starts.get(name) is None or read_start_time(rec.pid) != starts[name]:
                lost.append((name, rec.pid))
                continue
            self._reaper.watch(rec.pid, ("main", name))
            stat = read_stat(rec.pid)  # after a MAINPID hand-over, not its own session
            self._set_session(name, stat[3] if stat is not None else rec.pid)
            pidfd = self._system.pidfd_open(rec.pid)
            if pidfd is not None:
                pidfd = self._main_pidfds[name] = self._kept(pidfd)
                if stat is not None and stat[1] != os.getpid():  # a handed-over main, another's child
                    self._loop.add_reader(pidfd, lambda n=name, p=rec.pid, fd=pidfd: self._on_main_pidfd(n, p, fd))
        for fd, unit, stream, partial in state.get("streams", []):
            if unit in self.machine.records:
                self._router.adopt(fd, unit, stream, partial)
            else:
                os.close(fd)
        leftovers: dict[str, set[int]] = {}
        for unit, pid, start in state.get("leftovers", []):
            if unit in self.machine.records and start is not None and read_start_time(pid) == start:
                leftovers.setdefault(unit, set()).add(pid)
        for name, rec in self.machine.records.items():
            rec.leftovers = self._track_leftovers(name, rec.leftovers & leftovers.get(name, set()))
        for name, kind, deadline in state.get("timers", []):
            if name in self.machine.records:
                self._do_SetTimer(ev.SetTimer(name, TimerKind(kind), deadline))
        self._health_failures.update(state.get("health_failures", {}))
        for name, rec in self.machine.records.items():
            if rec.state.value == "starting" and rec.unit.ready.probe is not None and rec.pid is not None:
                self._do_WatchReady(ev.WatchReady(name))
            elif rec.state.value == "running" and rec.unit.health.probe is not None:
                self._do_WatchHealth(ev.WatchHealth(name))
        if self._schedules is not None:
            self._schedules.restore(state.get("schedules", {}))
        self._restore_sockets(state.get("sockets", {}))
        reaped = state.get("reaped", [0, 0])
        self._reaper.reaped, self._reaper.orphans_reaped = reaped[0], reaped[1]
        for name, pid in lost:
            self._messages.say(f"unit {name}: pid {pid} is not the process the state names; not adopting it")
            self.submit(ev.MainExited(name, pid, 255 << 8))
        self.submit(ev.Resumed())
        return unknown

    def adopt_from_proc(self, inherited_fds: set[int]) -> list[str]:
        """When the state cannot be trusted: recognise our own children by
        PIDONE_UNIT in their environment (each unit's main process leads
        its own session) and take them back as running, with the log pipes
        whose inodes match their stdout and stderr. Returns the adopted
        units; they are never started a second time."""
        from pidone.machine import Desired, State
        from pidone.sysdeps import has_unit_tag, read_stat

        me = os.getpid()
        pipes = {}
        for fd in inherited_fds:
            try:
                pipes[os.readlink(f"/proc/self/fd/{fd}")] = fd
            except OSError:
                pass
        adopted = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            stat = read_stat(pid)
            if stat is None or stat[1] != me or stat[3] != pid or stat[0] in ("Z", "X"):
                continue
            for name, rec in self.machine.records.items():
                if rec.pid is None and has_unit_tag(pid, unit_tag(name)):
                    rec.pid, rec.desired = pid, Desired.UP
                    rec.state = State.RUNNING
                    rec.started_at = rec.since = time.monotonic()
                    self._reaper.watch(pid, ("main", name))
                    self._set_session(name, pid)
                    pidfd = self._system.pidfd_open(pid)
                    if pidfd is not None:
                        self._main_pidfds[name] = pidfd
                    for number, stream in ((1, "stdout"), (2, "stderr")):
                        try:
                            fd = pipes.pop(os.readlink(f"/proc/{pid}/fd/{number}"), None)
                        except OSError:
                            fd = None
                        if fd is not None:
                            self._router.adopt(fd, name, stream)
                    adopted.append(name)
                    break
        return adopted

    @property
    def router(self) -> LogRouter:
        return self._router

    def on_child_exit(self, exited: ChildExited) -> None:
        """The reaper reaped a child whose owner is a tuple of ours."""
        kind, key = exited.owner  # type: ignore[misc]
        if kind == "main":
            self._on_main_exit(key, exited)
        elif kind == "hook":
            self._hooks.exited(key, exited.pid, exited.status)
        elif kind == "probe":
            callback = self._probe_exits.pop(exited.pid, None)
            if callback is not None:
                callback(exited.status)

    def owns(self, owner: object) -> bool:
        return isinstance(owner, tuple) and len(owner) == 2 and owner[0] in ("main", "probe", "hook")

    def _sync_schedules(self) -> None:
        """Follow the plan's [timer] units (the module is imported only once one exists)."""
        if self._schedules is None:
            if not any(unit.timer is not None for unit in self.units.values()):
                return
            from pidone.timers import Schedules

            self._schedules = Schedules(self._loop, self.submit, self._messages.say)
        self._schedules.update(self.units)

    def bind_sockets(self) -> None:
        """Bind every unit's [socket] before any unit starts (SPEC §14). Not
        done in __init__: after a re-exec, `restore` takes the held sockets
        back first, and binding anew would steal a unix socket's path."""
        self._sync_sockets()

    def _restore_sockets(self, data: dict) -> None:
        if data:
            from pidone.sockets import Sockets

            self._sockets = self._sockets or Sockets(self._kept, self._messages.say, self._loop.remove_reader)
            self._sockets.restore(data, self.units)
        self._sync_sockets()
        for name, rec in self.machine.records.items():
            if rec.unit.socket is not None and rec.unit.socket.on_demand and rec.state.value in ("inactive", "exited"):
                self._do_WatchSockets(ev.WatchSockets(name, True))

    def _sync_sockets(self) -> None:
        """Bind, keep or close the plan's [socket] sockets (module imported once one exists)."""
        if self._sockets is None:
            if not any(unit.socket is not None for unit in self.units.values()):
                return
            from pidone.sockets import Sockets

            self._sockets = Sockets(self._kept, self._messages.say, self._loop.remove_reader)
        self._sockets.update(self.units)

    def _pass_sockets(self, unit: Unit, prepared) -> None:
        """The held sockets and sd_listen_fds' variables for a start of
        `unit` (LISTEN_PID is set in the child); raise SpawnError."""
        if self._sockets is None:
            self._sync_sockets()
        fds, names = self._sockets.ensure(unit)
        prepared.listen_fds = fds
        prepared.env[b"LISTEN_FDS"] = str(len(fds)).encode()
        prepared.env[b"LISTEN_FDNAMES"] = ":".join(names).encode()

    def _do_WatchSockets(self, action: ev.WatchSockets) -> None:
        """Watch an idle on_demand unit's sockets; the first activity is
        reported once (a listening socket stays readable until the unit
        accepts, so the watch ends at the first report)."""
        fds = self._sockets.fds_of(action.name) if self._sockets is not None else []
        for fd in fds:
            self._loop.remove_reader(fd)
            if action.on:
                self._loop.add_reader(fd, lambda n=action.name: self._on_socket_activity(n))

    def _on_socket_activity(self, name: str) -> None:
        self._do_WatchSockets(ev.WatchSockets(name, False))
        self.submit(ev.SocketActivity(name))

    def timer_status(self, name: str) -> dict | None:
        """A timer unit's schedule, next and last firing and counters (status, metrics)."""
        rec = self.machine.records.get(name)
        if rec is None or rec.unit.timer is None:
            return None
        return {
            "schedule": rec.unit.timer.schedule,
            "timezone": rec.unit.timer.timezone or None,
            "next": self._schedules.next_wall(name) if self._schedules is not None else None,
            "last": rec.last_fired,
            "firings": rec.firings,
            "skipped": rec.firings_skipped,
        }

    def close(self) -> None:
        """At exit: flush what the pipes still hold, remove the notify socket."""
        if self._schedules is not None:
            self._schedules.close()
        if self._sockets is not None:
            self._sockets.close()
        self._router.close_all()
        for writer in self._log_files.values():
            writer.close()
        if self._notify is not None:
            self._notify.close()

    # -- log files -------------------------------------------------------------------

    def _sync_log_files(self) -> None:
        """One LogFile per unit with `[log] file`, matching the plan; on a
        reload each is reopened (an external rotation, a changed path)."""
        from pidone.logfile import LogFile

        wanted = {name: unit.log for name, unit in self.units.items() if unit.log.file}
        for name in list(self._log_files):
            current = self._log_files[name]
            log = wanted.get(name)
            if log is None or (current.source, current.max_bytes, current.backups) != (log.file, log.max_bytes, log.backups):
                current.close()
                del self._log_files[name]
                self._router.copies.pop(name, None)
            else:
                current.reopen()
        for name, log in wanted.items():
            if name not in self._log_files and "$" not in log.file:  # with ${...}: opened at the start
                self._open_log_file(name, log, log.file)

    def _open_log_file(self, name: str, log, path: str) -> None:
        from pidone.logfile import LogFile

        writer = LogFile(path, log.max_bytes, log.backups, warn=self._messages.say)
        writer.source = log.file  # as written, maybe with ${...}
        self._log_files[name] = writer
        self._router.copies[name] = writer.write

    def _expand_log_file(self, name: str, unit: Unit, env: dict[bytes, bytes]) -> None:
        """At a start: a `[log] file` with ${...} is expanded from the
        unit's environment, and the file (re)opened if the path changed."""
        log = unit.log
        if not log.file or "$" not in log.file:
            return
        try:
            path = expand_path(log.file, env_lookup(env), "[log] file")
        except ValueError as exc:
            raise SpawnError("open the log file", 0, reason=str(exc)) from None
        current = self._log_files.get(name)
        if current is not None and current.path == path and current.source == log.file:
            return
        if current is not None:
            current.close()
            del self._log_files[name]
        self._open_log_file(name, log, path)

    # -- reload ----------------------------------------------------------------------

    def reload(self, on_done: Callable[..., None] | None = None) -> None:
        """Reload the units directory. Requests that arrive during a reload
        are coalesced into one more, and reloads start at most every
        RELOAD_MIN_INTERVAL seconds; `on_done(summary)` is called once a
        reload that includes this request has finished."""
        if on_done is not None:
            self._reload_waiters.append(on_done)
        self._reload_again = True
        self._maybe_start_reload()

    def apply_instances(self, on_done: Callable[..., None] | None = None) -> None:
        """Apply `self.instances` (started or stopped ones) through the reload
        path, without reading the directory; `on_done` as for `reload`."""
        if on_done is not None:
            self._reload_waiters.append(on_done)
        self._apply_again = True
        self._maybe_start_reload()

    def _maybe_start_reload(self) -> None:
        if self.machine.shutting_down:
            self._reload_again = self._apply_again = False
            waiters, self._reload_waiters = self._reload_waiters, []
            for waiter in waiters:
                waiter(None, "not reloaded: pidone is shutting down")
            return
        if self._reloading or self._reload_timer is not None or not (self._reload_again or self._apply_again):
            return
        wait = self._last_reload_start + RELOAD_MIN_INTERVAL - time.monotonic()
        if wait > 0:
            self._reload_timer = self._loop.call_later(wait, self._deferred_reload)
            return
        self._start_reload()

    def _deferred_reload(self) -> None:
        self._reload_timer = None
        self._maybe_start_reload()

    def plan(self):
        """Read the directory and return (plan, blocked, diff, errors,
        warnings) without applying anything (also `reload --plan`)."""
        from pidone import graph, loader

        result = loader.load_directory(self.units_dir, extra_instances=sorted(self.instances.started))
        self._read_templates = result.templates
        if self.units_dir in result.errors:
            return None, {}, None, result.errors, result.warnings
        plan = dict(result.units)
        for name in result.errors:
            if name in self.units:
                plan[name] = self.units[name]  # a broken file keeps its last good definition
        errors, warnings = map(loader.locate, graph.check(plan, invalid=result.errors.keys()))
        blocked = graph.cycle_reasons(plan)
        blocked.update(graph.blocked_by_missing(plan))
        for name in result.errors:
            if name not in plan:
                blocked.pop(name, None)
        problems = dict(result.errors)
        for problem in errors:
            problems.setdefault("(graph)", []).append(problem)
        return plan, blocked, graph.diff(self.units, plan), problems, [*result.warnings, *warnings]

    def _start_reload(self) -> None:
        self._reloading = True
        from_disk, self._reload_again, self._apply_again = self._reload_again, False, False
        self._last_reload_start = time.monotonic()
        self._current_waiters, self._reload_waiters = self._reload_waiters, []
        try:
            plan, blocked, diff, problems, warnings = self.plan() if from_disk else self.instances.plan(self.units)
        except Exception:  # noqa: BLE001 - a bug here must not leave reloads stuck
            import traceback

            self._messages.say(f"error planning a reload:\n{traceback.format_exc()}")
            self._finish_reload("reload failed: an internal error (logged); nothing changed", ok=False)
            return
        for warning in warnings:
            self._messages.say(str(warning))
        for problem_list in problems.values():
            for problem in problem_list:
                self._messages.say(str(problem))
        if plan is None:
            self._finish_reload("reload failed: the units directory cannot be read; nothing changed", ok=False)
            return
        if from_disk:
            self.file_errors = {name: probs for name, probs in problems.items() if name in plan}
            self.instances.reloaded(self._read_templates, plan)
        error_count = sum(len(v) for v in problems.values())
        self._last_summary = (
            f"+{len(diff.added)} -{len(diff.removed)} ~{len(diff.changed)} "
            f"={len(diff.unchanged) + len(diff.reordered)}"
            + (f", {error_count} error{'s' if error_count != 1 else ''}" if error_count else "")
        )
        what = f"reloading {self.units_dir}" if from_disk else "applying started or stopped instances"
        self._messages.say(f"{what}: {self._last_summary}")
        self.units = plan
        self._sync_log_files()
        self._sync_schedules()
        self._sync_sockets()
        self.submit(ev.ApplyPlan(plan, blocked, diff))

    def _finish_reload(self, summary: str, ok: bool = True) -> None:
        self._messages.say(f"reload done: {summary}" if ok else summary)
        waiters, self._current_waiters = self._current_waiters, []
        self._reloading = False
        for waiter in waiters:
            try:
                waiter(summary) if ok else waiter(None, summary)
            except Exception:  # noqa: BLE001 - a waiter's bug must not stop the reload
                import traceback

                self._messages.say(f"error in a reload waiter:\n{traceback.format_exc()}")
        self._maybe_start_reload()

    # -- actions -------------------------------------------------------------------

    def _execute(self, action: object) -> None:
        try:
            handler = getattr(self, "_do_" + type(action).__name__)
            handler(action)
        except Exception:  # noqa: BLE001 - one failed action must not stop the rest
            import traceback

            self._messages.say(f"error carrying out {action!r}:\n{traceback.format_exc()}")

    def _do_Log(self, action: ev.Log) -> None:
        self._messages.say(action.text)

    def _do_Spawn(self, action: ev.Spawn) -> None:
        name = action.name
        unit = self.machine.records[name].unit
        if unit.conditions:
            failed = failed_condition(unit.conditions, self._base_env, os.path.exists)
            if failed:
                self._queue.append(ev.ConditionFailed(name, failed))
                return
        notify = (self._notify.path if self._notify is not None and (unit.type.value == "notify" or unit.health.watchdog)
                  else None)
        try:
            prepared = prepare(unit, self._base_env, notify_socket=notify, nofile=self._nofile)
            self._expand_log_file(name, unit, prepared.env)
            if unit.socket is not None:
                self._pass_sockets(unit, prepared)
            make_directories(unit, prepared)
        except SpawnError as exc:
            self._queue.append(ev.SpawnFailed(name, str(exc)))
            return
        self._note_limits(name, prepared.notes)
        try:
            (out_r, out_w), (err_r, err_w) = _log_pipes()
        except SpawnError as exc:
            self._queue.append(ev.SpawnFailed(name, str(exc)))
            return
        try:
            pid, error_fd = spawn_unit(prepared, out_w, err_w)
        except SpawnError as exc:
            for fd in (out_r, err_r):
                os.close(fd)
            self._queue.append(ev.SpawnFailed(name, str(exc)))
            return
        finally:
            os.close(out_w)
            os.close(err_w)
        self._router.add(self._kept(out_r), name, "stdout")
        self._router.add(self._kept(err_r), name, "stderr")
        self._reaper.watch(pid, ("main", name))
        self._set_session(name, pid)
        if unit.type.value == "forking":
            self._forking.spawned(name, pid)
        pidfd = self._system.pidfd_open(pid)
        if pidfd is not None:
            self._main_pidfds[name] = self._kept(pidfd)
        if error_fd is None:
            self._queue.append(ev.Spawned(name, pid, confirmed=True))
            return
        self._queue.append(ev.Spawned(name, pid, confirmed=False))
        self._exec_pending.add(name)
        self._loop.add_reader(error_fd, lambda: self._on_exec_result(name, pid, error_fd))

    def _note_limits(self, name: str, notes: list[str]) -> None:
        """A limit lowered to what may be granted: say so once (not at
        every restart); `status` shows it as long as it holds."""
        if notes != self._limit_notes.get(name, []):
            for note in notes:
                self._messages.say(f"unit {name}: warning: {note}")
        self._limit_notes[name] = notes

    def fd_ceiling(self) -> int:
        """The limit clients' descriptors keep a reserve below: the one
        children get (the spawn's pipes must be under it; see _kept)."""
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        return min(soft, self._nofile[0]) if self._nofile is not None else soft

    def _kept(self, fd: int) -> int:
        """Move an fd pidone keeps (a log pipe, a pidfd) above the fd limit
        its children get back, when pidone raised its own. posix_spawn
        refuses to hand a child an fd at or above the limit in force at the
        spawn (the original one, lowered for that moment), so the numbers
        below it are kept free for the pipes each spawn hands over: without
        this, the ~330th unit under Docker's soft limit of 1024 failed to
        spawn with EBADF."""
        if self._nofile is None:
            return fd
        import fcntl

        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, self._nofile[0])
        os.close(fd)
        return high

    def _set_session(self, name: str, sid: int) -> None:
        old = self._session_of.get(name)
        if old is not None and self._unit_of_session.get(old) == name:
            del self._unit_of_session[old]
        self._session_of[name] = sid
        self._unit_of_session[sid] = name

    def _do_NewMainPid(self, action: ev.NewMainPid) -> None:
        """Its exit is now the unit's; signals reach it through a pidfd,
        which also tells when it ends if it is not our child (its parent,
        not our reaper, would collect its status)."""
        name, pid = action.name, action.pid
        self._reaper.watch(pid, ("main", name))
        old = self._main_pidfds.pop(name, None)
        if old is not None:
            self._loop.remove_reader(old)
            os.close(old)
        pidfd = self._system.pidfd_open(pid)
        if pidfd is not None:
            pidfd = self._main_pidfds[name] = self._kept(pidfd)
            self._loop.add_reader(pidfd, lambda: self._on_main_pidfd(name, pid, pidfd))

    def _on_main_pidfd(self, name: str, pid: int, pidfd: int) -> None:
        """A handed-over main process ended. If it is (or is about to be,
        once its parent goes) our zombie, the reaper reports it; if its
        parent reaped it, all we can say is that it is gone."""
        self._loop.remove_reader(pidfd)
        stat = read_stat(pid)
        if stat is not None and stat[0] == "Z":
            if stat[1] != os.getpid():  # its parent's to reap: look again soon
                self._loop.call_later(MAINPID_RECHECK, lambda: self._on_main_pidfd(name, pid, pidfd)
                                      if self._main_pidfds.get(name) == pidfd else None)
            return
        owner = self._reaper.forget(pid)  # gone (or the pid is already another's)
        if owner is not None:
            self._messages.say(f"unit {name}: main process {pid} was reaped by its parent; its exit status is unknown")
            self.on_child_exit(ChildExited(pid, 0, owner))

    def _on_exec_result(self, name: str, pid: int, fd: int) -> None:
        self._loop.remove_reader(fd)
        self._exec_pending.discard(name)
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        os.close(fd)
        if data:
            self.submit(ev.SpawnFailed(name, str(read_spawn_error(data)), pid))
        else:
            self.submit(ev.ExecConfirmed(name, pid))

    def _do_RunHook(self, action: ev.RunHook) -> None:
        self._hooks.run(action)

    def _do_FindForkedMain(self, action: ev.FindForkedMain) -> None:
        self._forking.find(action.name)

    def _do_KillHook(self, action: ev.KillHook) -> None:
        self._hooks.kill(action)

    def _do_RemoveDirectories(self, action: ev.RemoveDirectories) -> None:
        for problem in remove_directories(action.names):
            self._messages.say(f"unit {action.name}: {problem}")

    def _do_SignalUnit(self, action: ev.SignalUnit) -> None:
        if action.main_only:
            self._signal_main_only(action.name, action.signum)
        else:
            self._signal_unit(action.name, action.signum, escapees=False)

    def _do_KillUnit(self, action: ev.KillUnit) -> None:
        if action.main_only:
            self._signal_main_only(action.name, signal.SIGKILL)
        else:
            self._signal_unit(action.name, signal.SIGKILL, escapees=True)

    def _signal_main_only(self, name: str, signum: int) -> None:
        pid = self.machine.records[name].pid
        if pid is not None:
            self._system.send_signal(pid, signum, self._main_pidfds.get(name))

    def _signal_unit(self, name: str, signum: int, *, escapees: bool) -> None:
        """Signal the unit's process group, the members of its session that
        left the group, and its leftovers, each once; with `escapees`, also
        whatever carries its tag or descends from any of those."""
        rec = self.machine.records[name]
        signalled: set[int] = set()
        # Without a main process the old run's session may hold no one any
        # more, and its id may be a stranger's by now: then only the tag counts.
        group = self._session_of.get(name, rec.pid) if rec.pid is not None else None
        if rec.pid is not None:
            # The group is the session the run leads. A live member (the
            # main process) keeps its id from being recycled: the whole
            # group gets the signal, and the main process too if a MAINPID
            # hand-over put it outside the group.
            stat = read_stat(rec.pid) if rec.pid != group else None
            if not self._system.signal_group(group, signum) or (stat is not None and stat[2] != group):
                self._system.send_signal(rec.pid, signum, self._main_pidfds.get(name))
            signalled.add(rec.pid)
        for pidfd, (unit, pid) in list(self._leftover_pidfds.items()):
            if unit == name and pid not in signalled:
                self._system.send_signal(pid, signum, pidfd)
                signalled.add(pid)
        if rec.pid is None and not escapees:
            return
        if escapees:
            # SIGKILL: a fresh scan of every process, so that nothing new
            # escapes it; the group's SIGKILL above is reparenting the main
            # process's children to pidone right now, which a walk down the
            # tree could pass by.
            found = unit_processes(group, name, tagged=True)
        else:
            found = self._processes_of(name, group, escapees=False, shared_table=True)
        for pid in found:
            if pid in signalled:
                continue
            stat = read_stat(pid)
            if not escapees and stat is not None and stat[2] == group:
                continue  # a member of the group: it already got the signal
            self._signal_pid(pid, signum)

    def _processes_of(self, name: str, group: int | None, *, escapees: bool, shared_table: bool) -> set[int]:
        """The live processes of `name`'s run leading session `group`; with
        `escapees`, also those that left it (found by their PIDONE_UNIT tag,
        which costs a read of their environment: only when stopping). A
        walk down from the unit's main process and the orphans pidone holds,
        else a /proc scan (the one this batch's stops share, with
        `shared_table`)."""
        orphans = self._orphan_roots()
        if orphans is not None:
            mine = ("main", name)
            rec = self.machine.records[name]
            own = {pid for pid in (rec.pid, group) if pid is not None and self._reaper.owner_of(pid) == mine}
            return unit_members(group, [*own, *orphans], tag=unit_tag(name) if escapees else None)
        table = None
        if shared_table:
            if self._table is None:
                self._table = process_table()
            table = self._table
        return unit_processes(group, name, tagged=escapees, table=table)

    def _orphan_roots(self) -> list[int] | None:
        """sysdeps.orphan_roots(), listed again only when something was
        reaped since: orphans come to us when a process exits, and a unit's
        leftovers are looked for when its main process was reaped, so a
        shutdown of N units lists our N children once per batch of exits,
        not once per exit."""
        reaped = self._reaper.reaped
        if self._orphans is None or self._orphans[0] != reaped:
            self._orphans = (reaped, orphan_roots(lambda pid: self._reaper.owner_of(pid) is not None))
        return self._orphans[1]

    def _signal_pid(self, pid: int, signum: int) -> None:
        pidfd = self._system.pidfd_open(pid)
        if pidfd is None:
            return
        try:
            self._system.send_signal(pid, signum, pidfd)
        finally:
            os.close(pidfd)

    def _do_SetTimer(self, action: ev.SetTimer) -> None:
        key = (action.name, action.kind)
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self._loop.call_at(action.deadline, lambda: self._fire(key))

    def _fire(self, key: tuple[str, TimerKind]) -> None:
        self._timers.pop(key, None)
        self.submit(ev.TimerFired(*key))

    def _do_ClearTimer(self, action: ev.ClearTimer) -> None:
        timer = self._timers.pop((action.name, action.kind), None)
        if timer is not None:
            timer.cancel()

    def _do_WatchReady(self, action: ev.WatchReady) -> None:
        name = action.name
        ready = self.machine.records[name].unit.ready
        attempt_timeout = max(1.0, ready.interval)

        def attempt() -> None:
            self._ready_watch[name] = self._probes.run(ready.probe, attempt_timeout, on_done, name)

        def on_done(passed: bool, detail: str) -> None:
            if name not in self._ready_watch:
                return
            if passed:
                del self._ready_watch[name]
                self.submit(ev.ReadyPassed(name))
            else:
                self._ready_watch[name] = self._loop.call_later(ready.interval, attempt)

        self._do_UnwatchReady(ev.UnwatchReady(name))
        attempt()

    def _do_UnwatchReady(self, action: ev.UnwatchReady) -> None:
        watch = self._ready_watch.pop(action.name, None)
        if watch is not None:
            watch.cancel()

    def _do_WatchHealth(self, action: ev.WatchHealth) -> None:
        name = action.name
        health = self.machine.records[name].unit.health
        self._health_failures[name] = 0

        def attempt() -> None:
            self._health_watch[name] = self._probes.run(health.probe, health.timeout, on_done, name)

        def on_done(passed: bool, detail: str) -> None:
            if name not in self._health_watch:
                return
            failures = 0 if passed else self._health_failures.get(name, 0) + 1
            self._health_failures[name] = failures
            if failures >= health.retries:
                del self._health_watch[name]
                self.submit(ev.HealthFailed(name, f"{detail} ({failures} times in a row)"))
                return
            self._health_watch[name] = self._loop.call_later(health.interval, attempt)

        self._do_UnwatchHealth(ev.UnwatchHealth(name))
        self._health_watch[name] = self._loop.call_later(health.interval, attempt)

    def _do_UnwatchHealth(self, action: ev.UnwatchHealth) -> None:
        watch = self._health_watch.pop(action.name, None)
        if watch is not None:
            watch.cancel()

    def _do_ReloadDone(self, action: ev.ReloadDone) -> None:
        self._finish_reload(self._last_summary)

    def _do_Exit(self, action: ev.Exit) -> None:
        self._on_exit(action.status, action.reason)

    def _do_AllStopped(self, action: ev.AllStopped) -> None:
        self._on_all_stopped(action.killed_any)

    # -- facts -----------------------------------------------------------------------

    def _on_main_exit(self, name: str, exited: ChildExited) -> None:
        pidfd = self._main_pidfds.pop(name, None)
        if pidfd is not None and self.machine.records[name].pid == exited.pid:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
        elif pidfd is not None:
            self._main_pidfds[name] = pidfd  # a MAINPID hand-over: keep the new one's
        self._router.drain(name)  # its last words before the news of its exit
        # Escapees that left the session are only searched for (a read of
        # every environ) when the unit is being stopped; an ordinary exit
        # looks for its session and group below pidone's own children only.
        rec = self.machine.records[name]
        if rec.pid is not None and rec.pid != exited.pid:
            # After a MAINPID hand-over: the launcher went, the run goes on.
            self.submit(ev.MainExited(name, exited.pid, exited.status))
            return
        if rec.unit.stop.mode == StopMode.PROCESS:
            found = set()  # KillMode=process: what it leaves behind is not the unit's
        else:
            found = self._processes_of(name, self._session_of.get(name, exited.pid),
                                       escapees=rec.state.value == "stopping", shared_table=False)
        leftovers = self._track_leftovers(name, found)
        self.submit(ev.MainExited(name, exited.pid, exited.status, frozenset(leftovers)))

    def _track_leftovers(self, name: str, pids: set[int]) -> set[int]:
        """Watch `pids` through pidfds; return those of them now watched
        (one that is already gone, or past the cap, is not: it could never
        report its exit, and would keep the unit from ever being down)."""
        tracked = {pid for unit, pid in self._leftover_pidfds.values() if unit == name}
        watched = pids & tracked
        for pid in sorted(pids - tracked):
            if len(tracked) + len(watched) >= MAX_TRACKED_LEFTOVERS:
                break
            pidfd = self._system.pidfd_open(pid)
            if pidfd is None:
                continue
            pidfd = self._kept(pidfd)
            self._leftover_pidfds[pidfd] = (name, pid)
            self._loop.add_reader(pidfd, lambda fd=pidfd: self._on_leftover_exit(fd))
            watched.add(pid)
        return watched

    def _on_leftover_exit(self, pidfd: int) -> None:
        """A pidfd turns readable when its process exits, whoever reaps it."""
        self._loop.remove_reader(pidfd)
        name, pid = self._leftover_pidfds.pop(pidfd)
        os.close(pidfd)
        self.submit(ev.LeftoverExited(name, pid))

    def _on_notification(self, pid: int, fields: tuple[tuple[str, str], ...]) -> None:
        name = self._unit_of(pid)
        if name is None:
            return  # not a process of any unit: ignored, as the spec says
        for key, value in fields:
            if key == "MAINPID" and not (value.isdigit() and self._unit_of(int(value)) == name):
                # Never let a unit point pidone's signals at someone else's process.
                self._messages.say(f"unit {name}: MAINPID={value} is not a process of this unit; ignored")
                fields = tuple(item for item in fields if item[0] != "MAINPID")
                break
        self.submit(ev.Notified(name, fields))

    def _unit_of(self, pid: int) -> str | None:
        """Which running unit's process `pid` is: its main process, or a
        member of the session its run leads (lookups, not a walk over every
        unit per datagram)."""
        owner = self._reaper.owner_of(pid)
        if isinstance(owner, tuple) and owner[0] == "main":
            rec = self.machine.records.get(owner[1])
            if rec is not None and rec.pid == pid:
                return owner[1]
        stat = read_stat(pid)
        name = self._unit_of_session.get(stat[3]) if stat else None
        rec = self.machine.records.get(name) if name is not None else None
        if rec is not None and rec.pid is not None and self._session_of.get(name) == stat[3]:
            return name
        return None

    # -- exec probes ---------------------------------------------------------------

    def _start_exec_probe(self, name: str, argv: tuple[str, ...], on_exit: Callable[[int], None]) -> int:
        """Spawn an exec probe as the unit would run: same user, groups,
        environment and limits, its output discarded. It is not tagged with
        PIDONE_UNIT, so it is never mistaken for a leftover of the unit.
        Raises SpawnError (the attempt then fails with the reason)."""
        prepared = prepare(self.machine.records[name].unit, self._base_env, nofile=self._nofile, argv=argv, tagged=False)
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            pid, error_fd = spawn_unit(prepared, null, null)
        finally:
            os.close(null)
        if error_fd is not None:
            os.close(error_fd)  # an exec failure shows as exit status 127
        self._probe_exits[pid] = on_exit
        self._reaper.watch(pid, ("probe", pid))
        return pid

    def _kill_probe(self, pid: int) -> None:
        if pid in self._probe_exits:  # not reaped yet: the pid is still ours
            self._probe_exits[pid] = lambda status: None
            self._system.signal_group(pid, signal.SIGKILL)


def _random_fraction() -> float:
    """A random float in [0, 1) for `[restart] jitter` (os.urandom: the
    random module costs 3 ms of start-up)."""
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


def _log_pipes() -> tuple[tuple[int, int], tuple[int, int]]:
    """A unit's stdout and stderr pipes; SpawnError when pidone is out of
    fds (EMFILE), so the start fails with the reason, not a traceback."""
    first: tuple[int, int] | None = None
    try:
        first = os.pipe2(os.O_CLOEXEC)
        return first, os.pipe2(os.O_CLOEXEC)
    except OSError as exc:
        for fd in first or ():
            os.close(fd)
        raise SpawnError("create the log pipes", exc.errno or 0) from None


def _raise_nofile(unit_count: int) -> tuple[int, int] | None:
    """Make room for every unit's pipes and pidfds. Returns the original
    limit when it had to be raised (children get it back), else None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = unit_count * FDS_PER_UNIT + 256
    if soft >= needed or soft == hard:
        return None
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(needed * 2, soft))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return None
    return soft, hard

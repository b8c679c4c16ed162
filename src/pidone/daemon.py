"""The PID 1 entry point: set up signals and reaping, run the main command
and the units, and exit with the right status once everything has stopped.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from pidone.control.client import default_runtime_dir
from pidone.errors import PidoneError, StartupError
from pidone.events import ChildExited, Shutdown, StartAll
from pidone.logs import Messages, Sink
from pidone.loop import Loop
from pidone.reaper import Reaper
from pidone.spawn import start_main_command
from pidone.sysdeps import SYSTEM, SignalState, System, handled_signals, signal_name

if TYPE_CHECKING:
    from pidone.supervisor import Supervisor

DEFAULT_UNITS_DIR = "/etc/units"
EXIT_USAGE = 2
EXIT_INVALID_UNITS = 2
EXIT_STARTUP = 3

# After the main command and the units are gone, whatever is left gets
# SIGTERM, then SIGKILL this many seconds later (--kill-grace).
DEFAULT_KILL_GRACE = 2.0
MAX_OPTION_SECONDS = 365 * 24 * 3600  # --stop-delay, --kill-grace: as durations in unit files
# After SIGKILL to everyone, how long to wait for the kernel to deliver
# (a process stuck in uninterruptible sleep must not keep PID 1 forever).
FINAL_KILL_WAIT = 2.0

SHUTDOWN_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})

MAIN = "main command"  # the reaper owner of the main command
SELFTEST = "selftest"  # the reaper owner of the re-exec pre-flight child
REAP_SLICE = 256  # exits handled per turn of the loop; the rest on the next
# Units starting because of a policy restart at once (benchmarks/storm.py).
DEFAULT_MAX_RESTARTING = 4


@dataclass
class Options:
    """What the init was asked to do, from flags and PIDONE_* variables."""

    units: str = DEFAULT_UNITS_DIR
    runtime_dir: str | None = None
    log_format: str = "text"
    http: str | None = None
    stop_delay: float = 0.0
    kill_grace: float = DEFAULT_KILL_GRACE
    max_restarting: int = DEFAULT_MAX_RESTARTING
    command: list[str] | None = field(default=None)

    @classmethod
    def from_strings(cls, values: Mapping[str, str | None]) -> "Options":
        """Build Options from raw strings (None = not given); raise ValueError
        naming the option when a value is malformed."""
        options = cls()
        if values.get("units"):
            options.units = values["units"]
        options.runtime_dir = values.get("runtime_dir") or None
        log_format = values.get("log_format") or "text"
        if log_format not in ("text", "json"):
            raise ValueError(f"--log-format must be 'text' or 'json', not {log_format!r}")
        options.log_format = log_format
        options.http = values.get("http") or None
        if options.http:
            from pidone.http import parse_address

            parse_address(options.http)  # raises ValueError naming the option
        for key in ("stop_delay", "kill_grace"):
            if values.get(key):
                setattr(options, key, _seconds(key, values[key]))
        max_restarting = values.get("max_restarting")
        if max_restarting:
            if not max_restarting.strip().isdigit() or int(max_restarting) > 1_000_000:
                raise ValueError(f"--max-restarting must be a whole number from 0 (unlimited) to 1000000, "
                                 f"not {max_restarting!r}")
            options.max_restarting = int(max_restarting)
        return options


def _seconds(key: str, text: str) -> float:
    """Return option `key`'s value as seconds >= 0; raise ValueError naming it."""
    flag = "--" + key.replace("_", "-")
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{flag} must be a number of seconds, not {text!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{flag} must be a finite number >= 0, not {text!r}")
    if seconds > MAX_OPTION_SECONDS:  # past it, the loop's timer would overflow epoll's timeout
        raise ValueError(f"{flag} must be at most one year ({MAX_OPTION_SECONDS} s), not {text!r}")
    return seconds


def run(options: Options) -> int:
    """Run the init until it is done; return pidone's exit status."""
    from pidone import upgrade

    from pidone import fds

    if upgrade.ENV_SELFTEST in os.environ:
        return upgrade.selftest_child()  # the program a re-exec would run, checking itself
    resume = upgrade.take_resume()
    # Capture what we were given before changing anything: the main command
    # gets exactly this back (after a re-exec, the state carries it).
    inherited = SignalState.capture()
    passed = fds.inherited_fds() if options.command and not resume else set()
    fds.close_on_exec_all_but(resume.values() if resume else ())
    inherited_fds = _open_fds() if resume else set()
    init = Init(options, inherited, SYSTEM)
    init.resume = resume
    init.inherited_fds = inherited_fds
    init.passed_fds = passed
    return init.main()


def _open_fds() -> set[int]:
    """The fds open at start-up above stdio (after a re-exec: what the old
    process kept for us)."""
    try:
        return {int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) > 2}
    except OSError:
        return set()


class Init:
    """One run of the init: owns the loop, the reaper and the main command."""

    def __init__(self, options: Options, inherited: SignalState, system: System):
        self.options = options
        self.inherited = inherited
        self.system = system
        self.units_in_use = os.path.isdir(options.units)
        # Pure tini mode keeps stdout for the main command; with units,
        # pidone's messages join the units' lines in the log stream.
        if self.units_in_use:
            self.messages = Messages(Sink(1), style=options.log_format)
        else:
            self.messages = Messages(Sink(2), style="json" if options.log_format == "json" else "stderr")
        self.loop = Loop(on_error=self.messages.say)
        self.messages.sink.attach(self.loop)
        self.messages.sink.on_caught_up = lambda n: self.messages.say(
            f"{n} line(s) of output were dropped: the reader of pidone's output was too slow")
        self.reaper = Reaper(system)
        self.main_pid: int | None = None
        self.main_pidfd: int | None = None
        # Standard signals the handler already passed on (how many times), so
        # the loop does not pass them again.
        self._forwarded: dict[int, int] = {}
        self.main_exit: ChildExited | None = None
        self._reap_again = False  # a turn of the loop will reap what is left
        self.took_terminal = False
        self.exit_status: int | None = None
        self.exit_reason = ""
        self.shutting_down = False
        self.sweeping = False
        self.supervisor: Supervisor | None = None
        self.templates: dict | None = None  # the units directory's, from the boot's load
        self.control = None  # the ControlServer, with units
        self.resume: dict[str, int] | None = None  # the fds kept for us, when re-executed
        self.inherited_fds: set[int] = set()
        self.passed_fds: set[int] = set()  # what pidone inherited, for the main command
        self.handover = None  # handover.Handover: the state's memfd and re-exec, with units
        self._adopted_state = None  # memstate.MemState inherited across the exec
        self._main_start: tuple[int, int | None] | None = None  # (pid, start time) of the main command
        self.http = None  # the HttpServer, with --http
        self.draining = False  # a shutdown began: readiness fails from now on
        self.started_at = time.time()

    # -- start --------------------------------------------------------------

    def main(self) -> int:
        if not self.units_in_use and not self.options.command:
            self.messages.say(
                f"nothing to run: no units directory at {self.options.units} and no command; "
                "give --units DIR or a command after --"
            )
            self.messages.sink.flush_blocking()
            return EXIT_USAGE
        units: dict = {}
        blocked: dict[str, str] = {}
        state = self._read_resume_state() if self.resume else None
        if state is not None:
            units, blocked = state["_units"], state["supervisor"]["machine"].get("blocked", {})
        elif self.units_in_use:
            loaded = self._load_units(strict=not self.resume)
            if loaded is None:
                return EXIT_INVALID_UNITS
            units, blocked = loaded
        self._install_signal_handlers()
        if not self.system.is_pid1:
            self.system.set_child_subreaper()
            self.messages.say(
                f"not running as PID 1 (pid {self.system.pid}): registered as a child "
                "subreaper, so orphans are still reaped here"
            )
        if self.units_in_use:
            try:
                self._start_supervisor(units, blocked)
            except StartupError as exc:
                self.messages.say(f"cannot start: {exc}")
                self.messages.sink.flush_blocking()
                return EXIT_STARTUP
        if self.options.http:
            try:
                self._start_http()
            except StartupError as exc:
                self.messages.say(f"cannot start: {exc}")
                self.messages.sink.flush_blocking()
                return EXIT_STARTUP
        if self.resume:
            self._resume(state)
        else:
            if self.options.command:
                self._start_main_command()
            if self.supervisor is not None:
                self.messages.say(f"starting {len(units)} unit(s) from {self.options.units}")
                self.supervisor.submit(StartAll())
        if self.handover is not None:
            self.handover.write()
            self.loop.before_sleep = self.handover.flush
        self.loop.run()
        return self._finish()

    def _load_units(self, strict: bool = True) -> tuple[dict, dict[str, str]] | None:
        """Read and check the units directory. Returns (units, blocked) or,
        when any file is invalid and `strict`, reports every error and
        returns None (not strict: the valid units, the errors reported)."""
        from pidone import graph, loader

        result = loader.load_directory(self.options.units)
        self.templates = result.templates
        for warning in result.warnings:
            self.messages.say(str(warning))
        if not result.ok and not strict:
            for problem in result.problems():
                self.messages.say(str(problem))
        elif not result.ok:
            for problem in result.problems():
                self.messages.say(str(problem))
            self.messages.say(f"exiting with status {EXIT_INVALID_UNITS}: invalid unit files in {self.options.units}; nothing was started")
            self.messages.sink.flush_blocking()
            return None
        errors, warnings = graph.check(result.units)
        for problem in loader.locate([*errors, *warnings]):
            self.messages.say(str(problem))
        blocked = graph.cycle_reasons(result.units)
        blocked.update(graph.blocked_by_missing(result.units))
        return result.units, blocked

    def _start_supervisor(self, units: dict, blocked: dict[str, str]) -> None:
        from pidone.supervisor import Supervisor

        runtime = prepare_runtime_dir(self.options.runtime_dir)
        fds = self.resume or {}
        self.supervisor = Supervisor(
            units,
            units_dir=self.options.units,
            blocked=blocked,
            loop=self.loop,
            reaper=self.reaper,
            system=self.system,
            messages=self.messages,
            log_sink=self.messages.sink,
            log_format=self.options.log_format,
            notify_path=os.path.join(runtime, "notify"),
            on_exit=self._shutdown,
            on_all_stopped=self._units_stopped,
            notify_fd=fds.get("notify"),
            max_restarting=self.options.max_restarting,
        )
        if not self.resume:
            # Before the control socket: whoever sees pidone answer can connect (SPEC §14).
            self.supervisor.bind_sockets()
        if self.templates is not None:  # after a re-exec they are read again on first need
            self.supervisor.instances.reloaded(self.templates, units)
        from pidone.commands import Commands, init_info
        from pidone.control.server import ControlServer, private_directory
        from pidone.handover import Handover
        from pidone.memstate import MemState

        private = private_directory(runtime)
        commands = Commands(self.supervisor, lambda: init_info(self.started_at, self.options.units), self._reexec)
        self.control = ControlServer(self.loop, private, commands, self.messages.say, fd=fds.get("control"),
                                     ceiling=self.supervisor.fd_ceiling)
        state, self._adopted_state = self._adopted_state, None
        try:
            state = state or MemState.create()
        except PidoneError as exc:
            raise StartupError(f"state: {exc}") from None
        self.handover = Handover(self, state, private, SELFTEST)
        self.supervisor.on_change = self.handover.changed

    def _start_http(self) -> None:
        import orjson

        from pidone import __version__
        from pidone.acceptor import soft_fd_limit
        from pidone.commands import init_info
        from pidone.http import HttpServer, metrics_text

        def units() -> list[dict]:
            return self.supervisor.status() if self.supervisor is not None else []

        def healthz():
            failed = [u["unit"] for u in units()
                      if u["state"] == "failed" and self.supervisor.machine.records[u["unit"]].unit.service.critical]
            if failed:
                return 503, "text/plain", f"critical unit failed: {' '.join(failed)}\n".encode()
            return 200, "text/plain", b"ok\n"

        def readyz():
            if self.draining:
                return 503, "text/plain", b"shutting down\n"
            waiting = [u["unit"] for u in units() if u["desired"] == "up" and u["state"] not in ("running", "exited", "skipped (condition)")]
            if waiting:
                return 503, "text/plain", f"not ready: {' '.join(waiting)}\n".encode()
            return 200, "text/plain", b"ready\n"

        def metrics():
            body = metrics_text(units(), self.reaper.reaped, self.reaper.orphans_reaped,
                                self.messages.sink.dropped_lines, __version__, self.draining)
            return 200, "text/plain; version=0.0.4; charset=utf-8", body

        def status():
            body = orjson.dumps({"pidone": init_info(self.started_at, self.options.units), "units": units()})
            return 200, "application/json", body

        routes = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics, "/status": status}
        self.http = HttpServer(self.loop, self.options.http, routes, self.messages.say,
                               ceiling=self.supervisor.fd_ceiling if self.supervisor is not None else soft_fd_limit)

    def _install_signal_handlers(self) -> None:
        for signum in handled_signals():
            if signum == signal.SIGCHLD:
                self.loop.on_signal(signum, lambda _: self._on_child_exit())
            else:
                self.loop.on_signal(signum, self._on_signal, immediate=self._forward_now)
        for signum in (signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, signal.SIG_IGN)
        from pidone.sentsignals import SentSignals

        # SIGPIPE/SIGXFSZ are blocked and read from a signalfd: only those
        # someone sent are passed on, never those of pidone's own writes.
        sent = SentSignals(self.loop, self._on_signal)
        # Otherwise our own mask must be empty or handled signals would never
        # arrive; the main command gets the inherited mask back.
        signal.pthread_sigmask(signal.SIG_SETMASK, sent.blocked)

    def _start_main_command(self) -> None:
        argv = self.options.command
        assert argv
        foreground = os.isatty(0)
        self.main_pid = start_main_command(argv, self.inherited, foreground_tty=foreground, pass_fds=self.passed_fds)
        self.took_terminal = foreground
        self.main_pidfd = self.system.pidfd_open(self.main_pid)
        self.reaper.watch(self.main_pid, MAIN)

    # -- events -------------------------------------------------------------

    def _forward_now(self, signum: int, frame: object) -> None:
        """The Python-level handler: forward to the main command at once,
        without waiting for the loop to wake (this halves the latency).
        It runs between any two bytecodes, so it only reads two fields and
        cannot raise."""
        pidfd = self.main_pidfd
        if pidfd is None or (signum == signal.SIGHUP and self.units_in_use):
            return
        if signum >= signal.SIGRTMIN:
            # Realtime signals queue and keep their order: the loop passes
            # each on, one per wakeup byte, in the order they came. Here one
            # call may stand for several, and would overtake the loop's.
            return
        if signum in SHUTDOWN_SIGNALS and self.options.stop_delay > 0:
            return  # the loop drains first, then forwards
        try:
            signal.pidfd_send_signal(pidfd, signum)
            self._forwarded[signum] = self._forwarded.get(signum, 0) + 1
        except OSError:
            pass  # gone, or the fd was just closed: the loop sorts it out

    def _on_signal(self, signum: int) -> None:
        main_running = self.main_pid is not None and self.main_exit is None
        if signum == signal.SIGHUP and self.units_in_use:
            self._reload()
            return
        if main_running:
            if signum in SHUTDOWN_SIGNALS:
                self._drain_main(signum)
                return
            # The main command receives every forwardable signal first; its
            # exit then ends the init. The handler has usually passed a
            # standard signal on already (they coalesce: one byte covers
            # however many it passed); realtime ones are passed on here only.
            if self._forwarded.get(signum):
                self._forwarded[signum] = 0
            else:
                self.system.send_signal(self.main_pid, signum, self.main_pidfd)
            return
        if signum in SHUTDOWN_SIGNALS:
            if self.shutting_down or self.draining:
                self.messages.say(f"received {signal_name(signum)}: already shutting down")
                return
            self._drain_then_shutdown(f"received {signal_name(signum)}")

    def _on_child_exit(self) -> None:
        exits = self.reaper.drain(REAP_SLICE)
        if len(exits) == REAP_SLICE and not self._reap_again:
            # More may be waiting: reap them on the next turn, after the
            # fds that are ready now (a storm of 10,000 orphans must not
            # keep the units' output waiting until the last one is reaped).
            self._reap_again = True
            self.loop.call_later(0, self._reap_more)
        for exited in exits:
            if exited.owner == MAIN:
                self._on_main_exit(exited)
            elif exited.owner == SELFTEST:
                self.handover.selftest_done(exited)
            elif self.supervisor is not None and self.supervisor.owns(exited.owner):
                self.supervisor.on_child_exit(exited)
        if self.sweeping and self.reaper.no_children:
            self.loop.stop()

    def _reap_more(self) -> None:
        self._reap_again = False
        self._on_child_exit()

    def _on_main_exit(self, exited: ChildExited) -> None:
        self.main_exit = exited
        # Clear before closing: the signal handler reads this field.
        pidfd, self.main_pidfd = self.main_pidfd, None
        if pidfd is not None:
            os.close(pidfd)
        if exited.signal is not None:
            how = f"was killed by {signal_name(exited.signal)}"
        else:
            how = f"exited with status {exited.exit_code}"
        self._shutdown(exited.shell_status, f"main command {how}")

    def _reload(self) -> None:
        if self.supervisor is not None and not self.shutting_down:
            self.supervisor.reload()

    # -- state and re-exec ----------------------------------------------------

    def snapshot(self) -> dict:
        """The whole init's state, for the state file and a re-exec."""
        from pidone import __version__
        from pidone.sysdeps import read_start_time
        from pidone.upgrade import STATE_SCHEMA

        main = None
        if self.main_pid is not None and self.main_exit is None:
            if self._main_start is None or self._main_start[0] != self.main_pid:
                self._main_start = (self.main_pid, read_start_time(self.main_pid))
            main = {"pid": self.main_pid, "start_time": self._main_start[1], "took_terminal": self.took_terminal}
        handover = self.handover
        return {
            "schema": STATE_SCHEMA,
            "version": __version__,
            "written_at": time.time(),
            "started_at": self.started_at,
            "inherited": {"mask": sorted(self.inherited.mask), "ignored": sorted(self.inherited.ignored)},
            "main": main,
            "supervisor": self.supervisor.snapshot() if self.supervisor is not None else {},
            # What a re-exec hands over, by role (checked on the other side),
            # and which runtime directory this state belongs to (`status --offline`).
            "fds": handover.held_fds() if handover is not None else {},
            "runtime": handover.identity if handover is not None else None,
        }

    def _reexec(self, conn) -> None:
        """`pidone reexec` (see handover.py)."""
        self.handover.request(conn)

    def _read_resume_state(self) -> dict | None:
        """After a re-exec: map the memfd we were handed and read the state,
        or None (reported) if it cannot be trusted, in which case we rebuild
        from /proc instead (with a fresh memfd)."""
        from pidone.memstate import MemState
        from pidone.upgrade import ENV_FDS, check_fds, decode_state, rebuild_units

        fd = self.resume.get("state")
        try:
            if fd is None:
                raise ValueError(f"no state was handed over ({ENV_FDS} has no 'state')")
            memory = MemState.adopt(fd)
        except Exception as exc:  # noqa: BLE001 - any doubt: do not trust it
            self.messages.say(f"re-exec: the state cannot be trusted ({exc}); recognising our processes from /proc")
            return None
        try:
            found = memory.read()
            state = decode_state(found.payload, found.minor)
            problems = check_fds(state.get("fds", {}), self.resume)
            if problems:
                raise ValueError("the fds it names were not all handed over: " + "; ".join(problems))
            state["_units"] = rebuild_units(state)
        except Exception as exc:  # noqa: BLE001 - any doubt: do not trust it
            memory.close()
            self.messages.say(f"re-exec: the state cannot be trusted ({exc}); recognising our processes from /proc")
            return None
        self._adopted_state = memory
        if state.get("_minor", 0) > 0:
            self.messages.say("re-exec: the state was written by a newer pidone; fields it does not know are ignored")
        inherited = state.get("inherited", {})
        self.inherited = SignalState(frozenset(inherited.get("mask", [])), frozenset(inherited.get("ignored", [])))
        return state

    def _resume(self, state: dict | None) -> None:
        """Carry on where the previous pidone stopped."""
        from pidone import __version__
        from pidone.control import protocol
        from pidone.sysdeps import read_start_time

        fds = self.resume
        if state is not None:
            unknown = self.supervisor.restore(state["supervisor"]) if self.supervisor else []
            if unknown:
                self.messages.say(f"re-exec: ignoring state fields this pidone does not know: {', '.join(unknown)}")
            main = state.get("main")
            if main and read_start_time(main["pid"]) == main["start_time"]:
                self.main_pid = main["pid"]
                self.took_terminal = main.get("took_terminal", False)
                self.main_pidfd = self.system.pidfd_open(self.main_pid)
                self.reaper.watch(self.main_pid, MAIN)
            self.started_at = state.get("started_at", self.started_at)
        elif self.supervisor is not None:
            kept = {fds.get("control"), fds.get("notify"), fds.get("client"), fds.get("state")}
            adopted = self.supervisor.adopt_from_proc(self.inherited_fds - kept)
            self.messages.say(f"re-exec: adopted {len(adopted)} running unit(s) from /proc: {' '.join(adopted) or '-'}")
            self.supervisor.bind_sockets()
            self.supervisor.submit(StartAll())
        units = len(self.supervisor.machine.records) if self.supervisor else 0
        self.messages.say(f"re-executed as pidone {__version__}: carrying on with {units} unit(s)")
        client = fds.get("client")
        if client is not None and self.control is not None:
            conn = self.control.adopt(client)
            conn.reply(protocol.ok({"version": __version__, "pid": os.getpid(), "units": units}))
        self._on_child_exit()  # exits that happened during the exec

    # -- stop ---------------------------------------------------------------

    def _shutdown(self, status: int, reason: str) -> None:
        """Begin ending the init with `status` because of `reason`."""
        if self.shutting_down:
            return
        self.shutting_down = True
        self.draining = True
        self.exit_status = status
        self.exit_reason = reason
        if self.supervisor is not None:
            self.messages.say(f"shutting down: {reason}")
            self.supervisor.submit(Shutdown())
        else:
            self._sweep()

    def _drain_main(self, signum: int) -> None:
        """SIGTERM/SIGINT with a main command: readiness fails at once; the
        main command gets the signal now, or after --stop-delay."""
        self.draining = True
        if self._forwarded.get(signum):
            self._forwarded[signum] = 0  # the handler already passed it on
            return
        delay = self.options.stop_delay
        forward = lambda: self.main_exit is None and self.system.send_signal(  # noqa: E731
            self.main_pid, signum, self.main_pidfd)
        if delay > 0:
            self.messages.say(f"received {signal_name(signum)}: not ready from now on; "
                              f"passing it to the main command in {delay:g}s (--stop-delay)")
            self.loop.call_later(delay, forward)
        else:
            forward()

    def _drain_then_shutdown(self, reason: str) -> None:
        """Report not-ready at once; with --stop-delay, wait that long (so a
        load balancer stops sending traffic) before stopping anything."""
        self.draining = True
        delay = self.options.stop_delay
        if delay > 0 and self.supervisor is not None:
            self.messages.say(f"{reason}: not ready from now on; stopping units in {delay:g}s (--stop-delay)")
            self.loop.call_later(delay, lambda: self._shutdown(0, reason))
        else:
            self._shutdown(0, reason)

    def _units_stopped(self, killed_any: bool) -> None:
        """Every unit has stopped: sweep up whatever is left."""
        if killed_any and self.main_pid is None and self.exit_status == 0:
            self.exit_status = 1
            self.exit_reason += " (some units had to be killed at their stop timeout)"
        self._sweep()

    def _sweep(self) -> None:
        """Ask whatever is left to go: SIGTERM, SIGKILL after a grace period."""
        self.sweeping = True
        self.reaper.drain()
        if self.reaper.no_children:
            self.loop.stop()
            return
        self.system.signal_everyone(signal.SIGTERM)
        self.loop.call_later(self.options.kill_grace, self._kill_everyone)

    def _kill_everyone(self) -> None:
        self.messages.say(f"processes still running {self.options.kill_grace:g}s after SIGTERM: sending SIGKILL")
        self.system.signal_everyone(signal.SIGKILL)
        self.loop.call_later(FINAL_KILL_WAIT, self.loop.stop)

    def _finish(self) -> int:
        """Say why we exit, hand the terminal back, flush; return the status."""
        status = self.exit_status if self.exit_status is not None else 0
        if self.http is not None:
            self.http.close()
        if self.control is not None:
            self.control.close()
        if self.handover is not None:
            self.handover.close()
        if self.supervisor is not None:
            self.supervisor.close()
        self.messages.say(f"exiting with status {status}: {self.exit_reason}")
        if self.took_terminal:
            try:
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass
        self.messages.sink.flush_blocking()
        try:
            sys.stdout.flush()
        except (OSError, ValueError):
            pass
        return status


def prepare_runtime_dir(path: str | None) -> str:
    """Create the runtime directory (0755, ours, never through a symlink)
    and return its path; raise StartupError if it cannot be used."""
    path = os.path.abspath(path or default_runtime_dir())
    try:
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        info = os.lstat(path)
    except OSError as exc:
        raise StartupError(f"runtime directory {path}: {exc.strerror}") from None
    import stat

    if not stat.S_ISDIR(info.st_mode):
        raise StartupError(f"runtime directory {path} is not a directory (a symlink is refused)")
    if info.st_uid != os.geteuid():
        raise StartupError(f"runtime directory {path} is owned by uid {info.st_uid}, not by us ({os.geteuid()})")
    if info.st_mode & 0o022:
        os.chmod(path, 0o755, follow_symlinks=False)
    return path

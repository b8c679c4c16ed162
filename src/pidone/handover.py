"""PID 1's side of the state and of `pidone reexec` (SPEC §7): keeps the
memfd up to date at the end of every turn of the loop that changed
something, publishes the read-only `state` link next to the control socket,
and carries out a re-exec only when nothing can be lost: the state is
written whole, the program to exec passes its checks and its selftest over
a copy of the state, and that selftest found every unit and every process.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import orjson

from pidone.errors import PidoneError
from pidone.sysdeps import handled_signals

if TYPE_CHECKING:
    from pidone.daemon import Init
    from pidone.memstate import MemState

OUTPUT_CAP = 65536


def link_target(fd: int) -> str:
    return f"/proc/{os.getpid()}/fd/{fd}"


class Handover:
    """The state's memfd and the re-exec of one Init."""

    def __init__(self, init: Init, state: MemState, private_dir: str, selftest_owner: str):
        self.init = init
        self.selftest_owner = selftest_owner  # what the reaper calls the selftest child
        self.state = state
        self.link = os.path.join(private_dir, "state")
        st = os.stat(private_dir)
        self.identity = {"dir": private_dir, "dev": st.st_dev, "ino": st.st_ino}
        self.dirty = True
        self.error = ""  # why the last update failed ("" when it did not)
        self.client_fd: int | None = None  # the reexec client, while handing over
        self._selftest: dict | None = None
        if init.control is not None:
            init.control.before_reply = self.flush
        self._publish()

    # -- the state --------------------------------------------------------

    def _publish(self) -> None:
        """Point `state` at our memfd (a link, replaced atomically)."""
        tmp = f"{self.link}.{os.getpid()}.tmp"
        try:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            os.symlink(link_target(self.state.fd), tmp)
            os.rename(tmp, self.link)
        except OSError as exc:
            self.init.messages.say(f"cannot publish the state at {self.link}: {exc.strerror} "
                                   "(`pidone status --offline` will not work)")

    def changed(self) -> None:
        self.dirty = True

    def flush(self) -> None:
        """The loop is about to sleep: put any change in the mapping."""
        if self.dirty:
            self.write()

    def write(self) -> str:
        """Write the whole state now; return why it failed ("" if it did not).
        A failure is said once, and again when it is over."""
        self.dirty = False
        try:
            self.state.write(orjson.dumps(self.init.snapshot()))
        except PidoneError as exc:
            if str(exc) != self.error:
                self.init.messages.say(f"cannot update the state: {exc}; the last state written stays whole, "
                                       "and a re-exec is refused until it can be updated")
            self.error = str(exc)
            self.dirty = True  # try again at the next turn that changes something
            return self.error
        if self.error:
            self.init.messages.say("the state can be updated again")
            self.error = ""
        return ""

    def held_fds(self) -> dict[str, int]:
        """Every fd a re-exec hands over, by role."""
        fds = {"state": self.state.fd}
        control, supervisor = self.init.control, self.init.supervisor
        if control is not None:
            fds["control"] = control.listening_fd
        if supervisor is not None:
            for fd, unit, stream, _ in supervisor._router.snapshot():
                fds[f"log:{unit}:{stream}"] = fd
            if supervisor._notify is not None:
                fds["notify"] = supervisor._notify.fd
            fds.update(supervisor.held_sockets())
        if self.client_fd is not None:
            fds["client"] = self.client_fd
        return fds

    def close(self) -> None:
        """At the final exit: the state goes with us."""
        try:
            if os.readlink(self.link) == link_target(self.state.fd):
                os.unlink(self.link)
        except OSError:
            pass
        self.state.close()

    # -- re-exec ----------------------------------------------------------

    def expected(self) -> dict:
        """What we supervise, from the live objects (not from the state)."""
        init, units, pids = self.init, [], set()
        if init.supervisor is not None:
            records = init.supervisor.machine.records
            units = sorted(records)
            pids = {rec.pid for rec in records.values() if rec.pid}
            pids.update(pid for _, pid in init.supervisor._leftover_pidfds.values())
        if init.main_pid is not None and init.main_exit is None:
            pids.add(init.main_pid)
        return {"units": units, "pids": sorted(pids)}

    def request(self, conn) -> None:
        """`pidone reexec`: check, selftest, then exec (see the module doc)."""
        from pidone.control import protocol
        from pidone.upgrade import ENV_FDS, ENV_SELFTEST, SELFTEST_TIMEOUT, check_program, exec_argv

        init = self.init
        busy = "a re-exec is already in progress" if self._selftest else ""
        busy = busy or (init.supervisor.busy_reason() if init.supervisor else "")
        if busy:
            conn.reply(protocol.error("busy", f"cannot re-exec now: {busy}; try again in a moment"))
            return

        def refuse(why: str) -> None:
            init.messages.say(f"re-exec refused: {why}")
            conn.reply(protocol.error("failed", f"{why}; nothing changed"))

        error = self.write()
        if error:
            return refuse(f"the state cannot be written whole: {error}")
        argv = exec_argv()
        why = check_program(argv[0])
        if why:
            return refuse(f"cannot run the selftest: {why}")
        try:
            copy = self.state.copy()
        except PidoneError as exc:
            return refuse(f"the state cannot be copied for the selftest: {exc}")
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        env = {**os.environ, ENV_SELFTEST: "1", ENV_FDS: f"state={copy}"}
        try:
            os.set_inheritable(copy, True)
            pid = os.posix_spawn(argv[0], argv, env,
                                 file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                               (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, out_w, 2)],
                                 setsid=True, setsigmask=(),
                                 setsigdef=[s for s in handled_signals() if s != signal.SIGKILL])
        except OSError as exc:
            # The program we would exec cannot even be run: name it.
            os.close(out_r)
            return refuse(f"cannot run the selftest: {argv[0]}: {exc.strerror}")
        finally:
            os.close(out_w)
            os.close(copy)
        os.set_blocking(out_r, False)
        output = bytearray()

        def read_output() -> None:
            try:
                chunk = os.read(out_r, OUTPUT_CAP)
            except BlockingIOError:
                return
            if not chunk or len(output) > OUTPUT_CAP:
                init.loop.remove_reader(out_r)
            output.extend(chunk[: OUTPUT_CAP - len(output)])

        init.loop.add_reader(out_r, read_output)
        init.reaper.watch(pid, self.selftest_owner)
        timer = init.loop.call_later(SELFTEST_TIMEOUT, lambda: init.system.send_signal(pid, signal.SIGKILL))
        self._selftest = {"pid": pid, "conn": conn, "fd": out_r, "output": output, "timer": timer}

    def selftest_done(self, exited) -> None:
        from pidone.control import protocol
        from pidone.upgrade import ANSWER, missing_from

        test, self._selftest = self._selftest, None
        if test is None:
            return
        init = self.init
        test["timer"].cancel()
        try:
            test["output"].extend(os.read(test["fd"], OUTPUT_CAP))
        except OSError:
            pass
        init.loop.remove_reader(test["fd"])
        os.close(test["fd"])
        conn = test["conn"]
        said = test["output"].decode("utf-8", "replace").strip()
        answer = None
        for line in said.splitlines():
            if line.startswith(ANSWER):
                try:
                    answer = orjson.loads(line[len(ANSWER):])
                except orjson.JSONDecodeError:
                    pass
        shown = said if len(said) < 2000 else "..." + said[-2000:]

        def refuse(why: str, code: str = "selftest-failed") -> None:
            init.messages.say(f"re-exec refused: {why}")
            conn.reply(protocol.error(code, f"{why}; nothing changed"))

        if exited.exit_code != 0:
            return refuse(f"the installed pidone failed its selftest ({exited.shell_status}):\n{shown}")
        if not isinstance(answer, dict):
            return refuse("the selftest ended without answering (the program that would be exec'd "
                          f"does not run pidone's selftest: an empty or foreign entry point?){':' if said else ''}\n{shown}")
        lost = missing_from(self.expected(), answer)
        if lost:
            return refuse(f"the state the new pidone read does not list {lost}")
        if conn.closed:
            return
        busy = init.supervisor.busy_reason() if init.supervisor else ""
        if busy or init.shutting_down:
            conn.reply(protocol.error("busy", f"cannot re-exec now: {busy or 'shutting down'}; try again"))
            return
        self._exec(conn, answer)

    def _exec(self, conn, answer: dict) -> None:
        from pidone.control import protocol
        from pidone.upgrade import block_signals, exec_self

        init = self.init
        init.messages.say(f"re-executing: selftest: pidone {answer.get('version')} can take over "
                          f"{answer.get('rebuilt')} unit(s)")
        init.control.answer_before_exec(keep=conn)
        init.messages.sink.flush_blocking(0.5)
        previous = block_signals(handled_signals())
        self.client_fd = conn.fd
        error = self.write()  # the state handed over is the current one, with its fds
        if error:
            self.client_fd = None
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
            init.messages.say(f"re-exec refused: the state cannot be written whole: {error}")
            conn.reply(protocol.error("failed", f"the state cannot be written whole: {error}; nothing changed"))
            return
        failure = exec_self(self.held_fds())
        self.client_fd = None
        self.dirty = True
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        init.messages.say(f"re-exec failed: {sys.executable}: {failure.strerror}; carrying on as before")
        conn.reply(protocol.error("failed", f"execv failed: {sys.executable}: {failure.strerror}; nothing changed"))

"""The forking hand-over (SPEC §11): once a forking unit's command has
exited 0, find the daemon it left and check that it is the unit's own.

With a pid_file, the PID in it, read without following a symlink
(O_NOFOLLOW): systemd's CVE-2018-16888 was a service user writing PID 1's
number into a pid file root then trusted. The PID is accepted only if it is
alive, not pidone, pidone's (reparented) child or in the unit's session,
no one's main process, started after this run's first process, and carries
no other unit's PIDONE_UNIT. Without a pid_file, the one such process
pidone inherited. A pid_file not there yet, empty
or naming a dead process is looked at again (the daemon may still be
writing it) until the machine's [ready] timeout ends the start.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING

from pidone import events as ev
from pidone.sysdeps import children_of, read_stat, read_start_time

if TYPE_CHECKING:
    from pidone.supervisor import Supervisor

RETRY = 0.05  # s between looks while the daemon has not written its pid file
MAX_PID_FILE = 64


class Refused(Exception):
    """Not a process this unit may name as its main one: the start fails."""


class Finder:
    def __init__(self, supervisor: "Supervisor"):
        self._sup = supervisor
        self._last: dict[str, str] = {}
        self.run_start: dict[str, int | None] = {}  # unit -> start time of its command's first process

    def spawned(self, name: str, pid: int) -> None:
        """A forking unit's command started: what it leaves must be younger."""
        self.run_start[name] = read_start_time(pid)

    def _of_this_run(self, name: str, pid: int, stat) -> bool:
        """A process this run of `name` started: inherited by pidone (or in
        the run's session), no one's main process, hook or probe, started
        after the run's first process, and carrying no other unit's tag.
        Its own tag is not required: daemons such as nginx write their
        process title over their environment."""
        sup = self._sup
        if stat[1] != os.getpid() and stat[3] != sup._session_of.get(name):
            return False
        if sup._reaper.owner_of(pid) is not None:
            return False
        began, started = self.run_start.get(name), read_start_time(pid)
        if began is None or started is None or started < began:
            return False
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                tags = [entry for entry in f.read().split(b"\0") if entry.startswith(b"PIDONE_UNIT=")]
        except OSError:
            return False
        return all(tag == b"PIDONE_UNIT=" + name.encode() for tag in tags)

    def find(self, name: str) -> None:
        sup = self._sup
        rec = sup.machine.records.get(name)
        if rec is None or rec.state.value != "starting" or rec.pid is not None:
            self._last.pop(name, None)
            return  # the start ended meanwhile (its timeout, a stop)
        try:
            pid, detail = self._look(name, rec.unit.service.pid_file)
        except Refused as exc:
            self._last.pop(name, None)
            sup.submit(ev.ForkedMainFailed(name, str(exc)))
            return
        if pid is not None:
            self._last.pop(name, None)
            stat = read_stat(pid)
            if stat is not None:
                sup._set_session(name, stat[3])  # its signals go to the daemon's own group
            sup.submit(ev.ForkedMain(name, pid))
            return
        if self._last.get(name) != detail:
            self._last[name] = detail
            sup.submit(ev.ForkedMainWaiting(name, detail))
        sup._loop.call_later(RETRY, lambda: self.find(name))

    def _look(self, name: str, pid_file: str | None) -> tuple[int | None, str]:
        """(pid, "") when found and accepted, (None, why not yet) to look
        again; raises Refused when it can never be accepted."""
        if pid_file is None:
            found = []
            for pid in children_of(os.getpid()) or ():
                stat = read_stat(pid)
                if stat is not None and stat[0] not in ("Z", "X") and self._of_this_run(name, pid, stat):
                    found.append(pid)
            if len(found) > 1:  # maybe a daemon's first fork, not gone yet: look again
                return None, (f"{len(found)} processes left ({', '.join(map(str, sorted(found)))}): "
                              "cannot tell which is the main one; set pid_file")
            if not found:
                return None, "waiting for the daemon: no process of the unit is left"
            return found[0], ""
        try:
            fd = os.open(pid_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == _errno.ELOOP:
                raise Refused(f"pid_file {pid_file} is a symlink; refusing to follow it") from None
            return None, f"waiting for pid_file {pid_file}: {os.strerror(exc.errno or 0)}"
        try:
            import stat as _stat

            if not _stat.S_ISREG(os.fstat(fd).st_mode):
                raise Refused(f"pid_file {pid_file} is not a regular file")
            text = os.read(fd, MAX_PID_FILE + 1)
        finally:
            os.close(fd)
        words = text.split()
        if not words:
            return None, f"pid_file {pid_file} is empty"
        if len(text) > MAX_PID_FILE or len(words) != 1 or not words[0].isdigit():
            raise Refused(f"pid_file {pid_file} does not hold a PID: {text[:MAX_PID_FILE]!r}")
        pid = int(words[0])
        if pid <= 1 or pid == os.getpid():
            raise Refused(f"pid_file {pid_file} names PID {pid}, which is never a unit's")
        stat = read_stat(pid)
        if stat is None or stat[0] in ("Z", "X"):
            return None, f"pid_file {pid_file} names PID {pid}, which is not running"
        if not self._of_this_run(name, pid, stat):
            raise Refused(f"pid_file {pid_file} names PID {pid}, which is not a process of this unit")
        return pid, ""

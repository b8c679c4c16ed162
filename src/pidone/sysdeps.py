"""The system calls that touch other processes: signals, waiting, pidfds, prctl.

Everything that can hit the wrong process if done carelessly goes through
here, so there is one place to get it right and one object tests can
replace. Nothing here blocks.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Signals that mean a fault in pidone itself: a real one must kill us (a
# Python handler would return to the faulting instruction and spin forever),
# so they keep their default disposition and are never forwarded.
FAULT_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE})

# Python ignores these itself; a handler would turn pidone's own EPIPE or
# oversize write into a signal forwarded to the main command. They stay
# ignored in pidone and are restored for children.
PYTHON_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})

# pidone must be able to take the terminal back (tcsetpgrp) from a
# background process group, so it ignores the job-control stop signals
# that would otherwise stop it.
TTY_SIGNALS = frozenset({signal.SIGTTIN, signal.SIGTTOU})

UNCATCHABLE = frozenset({signal.SIGKILL, signal.SIGSTOP})


def all_signals() -> list[int]:
    """Return every signal number the kernel knows, standard and realtime."""
    return sorted(int(s) for s in signal.valid_signals())


def handled_signals() -> list[int]:
    """Return the signals pidone installs a handler for (everything catchable
    except faults, the ones Python ignores and the tty stop signals)."""
    skip = UNCATCHABLE | FAULT_SIGNALS | PYTHON_IGNORED | TTY_SIGNALS
    return [s for s in all_signals() if s not in skip]


def signal_name(signum: int) -> str:
    """Return 'SIGTERM' for 15, 'SIGRTMIN+3' for realtime ones, else the number."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        if signal.SIGRTMIN <= signum <= signal.SIGRTMAX:
            return f"SIGRTMIN+{signum - signal.SIGRTMIN}"
        return str(signum)


@dataclass(frozen=True)
class SignalState:
    """The signal mask and ignored signals a process started with, so that a
    main command can be given exactly what pidone itself was given."""

    mask: frozenset[int]
    ignored: frozenset[int]

    @classmethod
    def capture(cls) -> "SignalState":
        mask = frozenset(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
        ignored = set()
        for signum in all_signals():
            if signum in UNCATCHABLE:
                continue
            try:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    ignored.add(signum)
            except (ValueError, OSError):
                continue
        # Python sets SIGPIPE and SIGXFSZ to SIG_IGN at start-up whatever it
        # inherited; we cannot tell if the parent ignored them, and a child
        # that finds SIGPIPE ignored misbehaves (yes | head), so they count
        # as default.
        return cls(frozenset(mask), frozenset(ignored - PYTHON_IGNORED))

    def apply_in_child(self) -> None:
        """Reset every disposition to default (or ignore, as at start) and
        set the mask; for use between fork and exec."""
        for signum in all_signals():
            if signum in UNCATCHABLE:
                continue
            disposition = signal.SIG_IGN if signum in self.ignored else signal.SIG_DFL
            try:
                signal.signal(signum, disposition)
            except (ValueError, OSError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)


class System:
    """Thin wrappers over the process system calls, with errors handled the
    way an init needs them handled."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    @property
    def is_pid1(self) -> bool:
        return self.pid == 1

    def set_child_subreaper(self) -> None:
        """Make orphaned descendants reparent to us instead of to init."""
        import prctl  # only needed when we are not PID 1

        prctl.set_child_subreaper(1)

    def wait_any(self) -> tuple[int, int] | None:
        """Reap one exited child without blocking.

        Returns (pid, raw wait status); None when children exist but none has
        exited; raises ChildProcessError when there are no children at all.
        """
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except InterruptedError:
                continue
            if pid == 0:
                return None
            return pid, status

    def pidfd_open(self, pid: int) -> int | None:
        """Return a pidfd for `pid`, or None if it is gone or pidfds are missing."""
        try:
            return os.pidfd_open(pid)
        except (OSError, AttributeError):
            return None

    def send_signal(self, pid: int, signum: int, pidfd: int | None = None) -> bool:
        """Send `signum` to `pid` (through `pidfd` when given, so a recycled
        PID is never hit). Returns False when the process is gone or not ours
        to signal; never raises for those."""
        try:
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(pid, signum)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        except OSError as exc:
            if exc.errno in (errno.ESRCH, errno.EPERM):
                return False
            raise

    def signal_group(self, pgid: int, signum: int) -> bool:
        """Send `signum` to process group `pgid`; False if it is empty."""
        try:
            os.killpg(pgid, signum)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def signal_everyone(self, signum: int) -> None:
        """As PID 1: signal every other process in the namespace. Not PID 1:
        signal our own descendants only (kill(-1) would reach the host)."""
        if self.is_pid1:
            try:
                os.kill(-1, signum)
            except ProcessLookupError:
                pass
            return
        for pid in self.descendants():
            self.send_signal(pid, signum)

    def descendants(self) -> list[int]:
        """Return the pids of every live descendant of this process, read from
        /proc (cheap enough for shutdown; never used on a hot path)."""
        return sorted(_descend(_children(process_table(with_zombies=True)), [self.pid]))


SYSTEM = System()


def read_stat(pid: int) -> tuple[str, int, int, int] | None:
    """Return (state, ppid, pgid, sid) of `pid` from /proc, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[1]), int(fields[2]), int(fields[3])
    except (IndexError, ValueError):
        return None


def unit_tag(name: str) -> bytes:
    """The environment entry every process of unit `name` inherits."""
    return b"PIDONE_UNIT=" + name.encode()


def has_unit_tag(pid: int, tag: bytes) -> bool:
    """True if `pid`'s environment holds `tag` (b'PIDONE_UNIT=name')."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return tag in f.read().split(b"\0")
    except OSError:
        return False


ProcessTable = dict[int, tuple[str, int, int, int]]  # pid -> (state, ppid, pgid, sid)


def process_table(*, with_zombies: bool = False) -> ProcessTable:
    """Every live process but ourselves (and zombies, if asked: a walk down
    the tree must pass through a parent not reaped yet), read from /proc once."""
    me = os.getpid()
    table: ProcessTable = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            stat = read_stat(int(entry))
            if stat is not None and (with_zombies or stat[0] not in ("Z", "X")):
                table[int(entry)] = stat
    return table


def unit_processes(sid: int | None, name: str, *, tagged: bool = True, exclude: frozenset[int] = frozenset(),
                   table: ProcessTable | None = None) -> set[int]:
    """Find every live process a unit started: members of its session or
    process group `sid`, processes carrying PIDONE_UNIT=name (escapees that
    called setsid; only with `tagged`, as it reads every environ), and all
    their descendants. Reads /proc only, or uses `table` when the caller
    already has one (several units signalled in one batch share it)."""
    me = os.getpid()
    tag = unit_tag(name)
    stats = process_table() if table is None else table
    if exclude:
        stats = {pid: stat for pid, stat in stats.items() if pid not in exclude}
    found = {pid for pid, (_, _, pgid, session) in stats.items() if sid is not None and sid in (pgid, session)}
    children = _children(stats)
    if tagged:
        # Only our own descendants: another pidone sharing this PID
        # namespace (host mode, shareProcessNamespace) may run a unit of the
        # same name, and its processes carry the same tag.
        found |= {pid for pid in _descend(children, [me]) if pid not in found and has_unit_tag(pid, tag)}
    return found | _descend(children, found)


def unit_members(sid: int | None, roots: Iterable[int], tag: bytes | None = None) -> set[int]:
    """What unit_processes finds (members of session or group `sid`, with
    `tag` also the processes carrying it, and all their descendants), found
    by walking down from `roots` instead of reading every process in /proc.
    A unit's processes all hang below pidone: below its main process, or
    reparented to pidone once orphaned. So the roots are the unit's own main
    process and pidone's children it did not start (see orphan_roots):
    usually a handful, where /proc holds every unit's processes.
    A process that is reparented while the walk passes (its parent exited
    just then) can be missed; a scan of /proc has the same blind spot for
    processes forked while it reads."""
    found: set[int] = set()
    # (pid, below a member): a member's descendants are the unit's whatever
    # their session; a member can also sit below a process that left it.
    todo = [(pid, False) for pid in roots]
    while todo:
        pid, below_member = todo.pop()
        stat = read_stat(pid)
        alive = stat is not None and stat[0] not in ("Z", "X")
        member = below_member or (alive and (sid in (stat[2], stat[3]) or (tag is not None and has_unit_tag(pid, tag))))
        if alive and member:
            found.add(pid)
        todo.extend((child, member) for child in children_of(pid) or ())
    return found


def orphan_roots(known: Callable[[int], bool]) -> list[int] | None:
    """pidone's children that `known` does not claim (orphans reparented to
    us): with a unit's main process, the roots of unit_members' walk.
    None where a scan of /proc is the better way: the kernel does not list
    children (no CONFIG_PROC_CHILDREN), or there are so many orphans (a
    storm) that one read per process is cheaper than a walk."""
    children = children_of(os.getpid())
    if children is None:
        return None
    roots = [pid for pid in children if not known(pid)]
    return roots if len(roots) <= MAX_WALKED_ORPHANS else None


# Above this many orphans, a /proc scan is cheaper than the walk.
MAX_WALKED_ORPHANS = 64


def children_of(pid: int) -> list[int] | None:
    """The children of `pid` (of all its threads), or None if the kernel
    does not list them. A process gone meanwhile has none."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                children.extend(int(child) for child in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended while we looked
            return None  # the kernel has no children file
        except OSError:
            continue
    return children


def _children(table: ProcessTable) -> dict[int, list[int]]:
    """Parent pid -> child pids, from a process table."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    return children


def _descend(children: dict[int, list[int]], roots) -> set[int]:
    """Every descendant of `roots` (not the roots themselves)."""
    found: set[int] = set()
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_usage(pid: int) -> tuple[int, float] | None:
    """(resident bytes, CPU seconds so far) of `pid` from /proc, or None."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            rss = int(f.read().split()[1]) * PAGE_SIZE
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return rss, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def read_start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (/proc/PID/stat
    field 22): with the pid, it names one process for the life of the boot."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None

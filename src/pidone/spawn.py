"""Starting children: the main command of tini mode (which inherits pidone's
own environment, stdio and signal state) and, later, units (clean slate).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import resource
import signal
from dataclasses import dataclass, field
import shlex
from typing import Iterable, Mapping, Sequence

from pidone.errors import SpawnError
from pidone.expand import env_lookup, expand, expand_argv, expand_path
from pidone.fds import give_back
from pidone.rlimits import fit as fit_rlimits
from pidone.sysdeps import SignalState
from pidone.units import Unit

# Exit statuses a shell uses when it cannot run a command.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


def start_main_command(argv: list[str], signals: SignalState, *, foreground_tty: bool,
                       pass_fds: Iterable[int] = ()) -> int:
    """Fork and exec `argv` as the main command; return its pid.

    The child leads its own process group (the terminal's foreground group
    when `foreground_tty`), gets the signal mask and ignored signals pidone
    started with, the fds pidone inherited (`pass_fds`, as tini passes
    them), and everything else unchanged. If exec fails, the child
    says why on stderr and exits 127 (not found) or 126 (cannot execute), so
    the failure reaches pidone as an ordinary exit status.
    """
    # Block everything across fork so no signal meant for pidone runs a
    # handler in the child (whose wakeup fd is still pidone's pipe).
    previous = signal.pthread_sigmask(signal.SIG_SETMASK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            _exec_main_command(argv, signals, foreground_tty, pass_fds)  # never returns
        try:
            os.setpgid(pid, pid)  # also done in the child; whoever is first wins
        except OSError:
            pass  # the child already exec'd or exited: it did it itself
        return pid
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _exec_main_command(argv: list[str], signals: SignalState, foreground_tty: bool, pass_fds: Iterable[int]) -> None:
    """In the forked child: set up and exec; never return."""
    status = EXIT_NOT_EXECUTABLE
    try:
        signal.set_wakeup_fd(-1)
        os.setpgid(0, 0)
        if foreground_tty:
            try:
                # SIGTTOU is ignored and blocked here, so a background group
                # may take the terminal.
                os.tcsetpgrp(0, os.getpgrp())
            except OSError:
                pass  # not our controlling terminal: run in the background
        signals.apply_in_child()
        give_back(pass_fds)
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            status = EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_NOT_EXECUTABLE
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            _say(f"pidone: cannot run {argv[0]!r}: {reason}\n")
    except BaseException as exc:  # noqa: BLE001 - the child must never return
        _say(f"pidone: cannot run {argv[0]!r}: {exc}\n")
    finally:
        os._exit(status)


def _say(text: str) -> None:
    try:
        os.write(2, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass


# -- units: a clean slate -----------------------------------------------------

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Prepared:
    """Everything a unit's child needs, resolved in the parent (lookups of
    users, groups, files and PATH happen here, never between fork and exec)."""

    name: str
    executable: str
    argv: list[str]
    env: dict[bytes, bytes]
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    umask: int | None = None
    rlimits: list[tuple[int, str, int, int]] = field(default_factory=list)
    oom_score_adjust: int | None = None
    no_new_privileges: bool = False
    capabilities: tuple[str, ...] | None = None
    # pidone raised its own RLIMIT_NOFILE: children get the original back.
    nofile: tuple[int, int] | None = None
    # [socket]: held listening sockets, to become fds 3, 4, ... (SPEC §14).
    listen_fds: list[int] = field(default_factory=list)
    # Limits lowered to what may be granted here (rlimits.fit), one note each.
    notes: list[str] = field(default_factory=list)
    ignore_sigpipe: bool = False  # posix_spawn can only reset signals to default
    watchdog_pid: bool = False  # set WATCHDOG_PID to the child's own pid (known only after the fork)

    @property
    def needs_fork(self) -> bool:
        """posix_spawn cannot change directory, ids, limits or capabilities,
        nor set LISTEN_PID to the child's own pid before its exec."""
        return any(
            (
                self.listen_fds,
                self.cwd is not None,
                self.uid is not None,
                self.gid is not None,
                self.groups is not None,
                self.umask is not None,
                self.rlimits,
                self.oom_score_adjust is not None,
                self.no_new_privileges,
                self.capabilities is not None,
                self.ignore_sigpipe,
                self.watchdog_pid,
            )
        )


def prepare(
    unit: Unit,
    base_env: Mapping[bytes, bytes],
    *,
    notify_socket: str | None = None,
    nofile: tuple[int, int] | None = None,
    argv: Sequence[str] | None = None,
    tagged: bool = True,
) -> Prepared:
    """Resolve `unit` into a Prepared spawn of its command (or of `argv`, a
    probe's); raise SpawnError with the stage. `${...}` in the command,
    working_directory and environment values are expanded here, at each
    start, from the environment the process gets. An exec probe (`argv`,
    untagged) gets no PIDONE_UNIT, so it is never taken for the unit's."""
    service = unit.service
    env: dict[bytes, bytes] = {} if service.clear_environment else dict(base_env)
    prepared = Prepared(unit.name, "", [], env, nofile=nofile)
    if service.user is not None:
        _apply_user(prepared, service.user)
    if service.group is not None:
        prepared.gid = _lookup_group(service.group)
    if service.supplementary_groups is not None:
        prepared.groups = [_lookup_group(g) for g in service.supplementary_groups]
    for spec in service.environment_files:
        env.update(read_environment_file(spec))
    lookup = env_lookup(env)
    for key, value in service.environment:  # each value sees the ones before it
        env[os.fsencode(key)] = os.fsencode(expand(value, lookup))
    if tagged:
        env[b"PIDONE_UNIT"] = unit.name.encode()
    else:
        env.pop(b"PIDONE_UNIT", None)
    if notify_socket is not None:
        env[b"NOTIFY_SOCKET"] = os.fsencode(notify_socket)
    prepared.argv = expand_argv(service.command if argv is None else argv, lookup)
    if not prepared.argv:
        raise SpawnError("spawn", errno.EINVAL, shlex.join(service.command if argv is None else argv),
                         reason="the command is empty once its variables are expanded")
    if service.working_directory is not None:
        try:
            prepared.cwd = expand_path(service.working_directory, lookup, "working_directory")
        except ValueError as exc:
            raise SpawnError("change to directory", errno.EINVAL, reason=str(exc)) from None
    prepared.umask = service.umask
    prepared.oom_score_adjust = service.oom_score_adjust
    if unit.limits.rlimits:
        prepared.rlimits, prepared.notes = fit_rlimits(
            [(_rlimit_number(name), name, soft, hard) for name, soft, hard in unit.limits.rlimits])
    prepared.no_new_privileges = unit.limits.no_new_privileges
    prepared.capabilities = unit.limits.capabilities
    prepared.ignore_sigpipe = service.ignore_sigpipe
    if unit.health.watchdog and argv is None:  # SPEC §11: as systemd's WatchdogSec=
        env[b"WATCHDOG_USEC"] = str(round(unit.health.watchdog * 1_000_000)).encode()
        prepared.watchdog_pid = True
    prepared.executable = find_executable(prepared.argv[0], env)
    return prepared


def _apply_user(prepared: Prepared, user: str) -> None:
    """Identity, groups, HOME/USER/LOGNAME/SHELL and default cwd from passwd."""
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        if user.isdigit():  # a bare uid with no passwd entry is fine
            prepared.uid = int(user)
            return
        raise SpawnError("find user", errno.ENOENT, repr(user), reason="no such user") from None
    prepared.uid = entry.pw_uid
    prepared.gid = entry.pw_gid
    try:
        prepared.groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    except OSError:
        prepared.groups = [entry.pw_gid]
    for key, value in (("HOME", entry.pw_dir), ("USER", entry.pw_name), ("LOGNAME", entry.pw_name), ("SHELL", entry.pw_shell)):
        prepared.env[key.encode()] = os.fsencode(value)
    home = entry.pw_dir
    prepared.cwd = home if home and os.path.isdir(home) else "/"


def _lookup_group(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise SpawnError("find group", errno.ENOENT, repr(group), reason="no such group") from None


def _rlimit_number(name: str) -> int:
    return getattr(resource, "RLIMIT_" + name.upper())


def read_environment_file(spec: str) -> dict[bytes, bytes]:
    """Read KEY=VALUE lines (blank lines and # or ; comments skipped, one
    pair of surrounding quotes removed). A leading '-' makes a missing file
    fine; otherwise raise SpawnError."""
    optional = spec.startswith("-")
    path = spec[1:] if optional else spec
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError as exc:
        if optional and exc.errno == errno.ENOENT:
            return {}
        raise SpawnError("read environment file", exc.errno or 0, path) from None
    env: dict[bytes, bytes] = {}
    for raw in data.splitlines():
        line = raw.strip()
        if not line or line.startswith((b"#", b";")):
            continue
        key, eq, value = line.partition(b"=")
        key = key.strip()
        if not eq or not key or b"\0" in line:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[:1] in (b'"', b"'"):
            value = value[1:-1]
        env[key] = value
    return env


def find_executable(command: str, env: Mapping[bytes, bytes]) -> str:
    """Look `command` up in the unit's PATH unless it has a slash."""
    if "/" in command:
        if not os.path.exists(command):
            raise SpawnError("spawn", errno.ENOENT, command)
        return command
    path = os.fsdecode(env.get(b"PATH", DEFAULT_PATH.encode()))
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise SpawnError("spawn", errno.ENOENT, command)


_DEFAULT_SIGNALS = tuple(s for s in sorted(int(x) for x in signal.valid_signals())
                         if s not in (signal.SIGKILL, signal.SIGSTOP))


def _default_signals() -> tuple[int, ...]:
    """Every signal a child gets back at its default (computed once: the
    enum conversions cost more than the spawn's bookkeeping)."""
    return _DEFAULT_SIGNALS


def spawn_unit(prepared: Prepared, stdout_fd: int, stderr_fd: int) -> tuple[int, int | None]:
    """Start the unit's main process; return (pid, error_fd).

    `error_fd` is None when exec is already known to have succeeded
    (posix_spawn). Otherwise it is the read end of a CLOEXEC pipe: EOF with
    no data means exec succeeded; data is `stage\\0errno\\0detail` from the
    child, which then exits 127. Raises SpawnError when nothing was created.
    """
    if not prepared.needs_fork:
        # pidone raised its own fd limit for the units' pipes: lower it for
        # the moment of the spawn, so the child inherits the original (this
        # keeps posix_spawn, 3x cheaper than fork, for every plain unit).
        raised = resource.getrlimit(resource.RLIMIT_NOFILE) if prepared.nofile else None
        if raised is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, prepared.nofile)
        try:
            pid = os.posix_spawn(
                prepared.executable,
                prepared.argv,
                prepared.env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, stdout_fd, 1),
                    (os.POSIX_SPAWN_DUP2, stderr_fd, 2),
                ],
                setsid=True,
                setsigmask=(),
                setsigdef=_default_signals(),
            )
        except OSError as exc:
            raise SpawnError("spawn", exc.errno or 0, prepared.executable) from None
        finally:
            if raised is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, raised)
        return pid, None
    return _fork_exec(prepared, stdout_fd, stderr_fd)


def _fork_exec(prepared: Prepared, stdout_fd: int, stderr_fd: int) -> tuple[int, int]:
    if prepared.capabilities is not None or prepared.no_new_privileges:
        # Import in the parent: after setuid the child may not be able to
        # read Python's own files (root's home is 0700).
        import ctypes  # noqa: F401
        import prctl  # noqa: F401
    error_r, error_w = os.pipe2(os.O_CLOEXEC)
    previous = signal.pthread_sigmask(signal.SIG_SETMASK, signal.valid_signals())
    try:
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(error_r)
            os.close(error_w)
            raise SpawnError("fork", exc.errno or 0, prepared.executable) from None
        if pid == 0:
            _child(prepared, stdout_fd, stderr_fd, error_w)  # never returns
        os.close(error_w)
        return pid, error_r
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _child(p: Prepared, stdout_fd: int, stderr_fd: int, error_w: int) -> None:
    """Between fork and exec: set the unit up, stage by stage."""
    stage, detail = "start", ""
    try:
        signal.set_wakeup_fd(-1)
        stage = "create session"
        os.setsid()
        stage = "set up stdio"
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        if p.listen_fds:
            stage, detail = "pass sockets", ""
            error_w = _pass_sockets(p, error_w)
        if p.oom_score_adjust is not None:
            stage, detail = "set oom_score_adj", str(p.oom_score_adjust)
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(p.oom_score_adjust))
        if p.nofile is not None:
            stage, detail = "set rlimit", "nofile"
            resource.setrlimit(resource.RLIMIT_NOFILE, p.nofile)
        for number, name, soft, hard in p.rlimits:
            stage, detail = "set rlimit", name
            resource.setrlimit(number, (soft, hard))
        if p.capabilities is not None:
            stage, detail = "limit capabilities", ""
            _limit_capabilities(p.capabilities)
        if p.groups is not None:
            stage, detail = "set supplementary groups", ""
            os.setgroups(p.groups)
        if p.gid is not None:
            stage, detail = "set group", str(p.gid)
            os.setgid(p.gid)
        if p.uid is not None:
            stage, detail = "set user", str(p.uid)
            if p.capabilities:
                _keep_capabilities_across_setuid()
            os.setuid(p.uid)
            if p.capabilities:
                _raise_ambient(p.capabilities)
        if p.umask is not None:
            os.umask(p.umask)
        if p.cwd is not None:
            stage, detail = "change to directory", p.cwd
            os.chdir(p.cwd)
        if p.no_new_privileges:
            stage, detail = "set no_new_privileges", ""
            import prctl

            prctl.set_no_new_privs(1)
        for signum in _default_signals():
            try:
                signal.signal(signum, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        if p.ignore_sigpipe:
            signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        if p.watchdog_pid:
            p.env[b"WATCHDOG_PID"] = str(os.getpid()).encode()
        stage, detail = "spawn", p.executable
        os.execve(p.executable, p.argv, p.env)
    except BaseException as exc:  # noqa: BLE001 - the child must never return
        code = exc.errno if isinstance(exc, OSError) and exc.errno else 0
        message = detail if code else f"{detail} ({exc})".strip()
        try:
            os.write(error_w, f"{stage}\0{code}\0{message}".encode("utf-8", "backslashreplace"))
        except OSError:
            pass
    finally:
        os._exit(EXIT_NOT_FOUND)


def _pass_sockets(p: Prepared, error_w: int) -> int:
    """In the child: the held sockets become fds 3, 4, ... and LISTEN_PID is
    this process's own pid, as sd_listen_fds() checks. Returns where the
    error pipe now is (moved if it sat where a socket goes)."""
    import fcntl

    top = 3 + len(p.listen_fds)
    if error_w < top:
        error_w = fcntl.fcntl(error_w, fcntl.F_DUPFD_CLOEXEC, top)
    sources = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, top) if fd < top else fd for fd in p.listen_fds]
    for index, fd in enumerate(sources):
        os.dup2(fd, 3 + index)  # the copy is inheritable: it survives the exec
    p.env[b"LISTEN_PID"] = str(os.getpid()).encode()
    return error_w


def read_spawn_error(data: bytes) -> SpawnError:
    """Turn what a child wrote on its error pipe into a SpawnError."""
    stage, _, rest = data.decode("utf-8", "replace").partition("\0")
    code, _, detail = rest.partition("\0")
    try:
        number = int(code)
    except ValueError:
        number = 0
    return SpawnError(stage or "spawn", number, detail)


def _limit_capabilities(keep: tuple[str, ...]) -> None:
    """Drop every capability not in `keep` from the bounding set."""
    import prctl

    wanted = {name.lower().removeprefix("cap_") for name in keep}
    for name in prctl.ALL_CAP_NAMES:
        if name not in wanted:
            prctl.capbset_drop(getattr(prctl, "CAP_" + name.upper()))


def _keep_capabilities_across_setuid() -> None:
    import prctl

    prctl.set_keepcaps(True)


def _raise_ambient(keep: tuple[str, ...]) -> None:
    """After setuid: make the kept capabilities inheritable and ambient, so
    a non-root service really holds them across exec."""
    import ctypes

    import prctl

    numbers = [getattr(prctl, "CAP_" + name.upper().removeprefix("CAP_")) for name in keep]
    prctl.cap_effective.limit(*numbers)
    prctl.cap_permitted.limit(*numbers)
    prctl.cap_inheritable.limit()
    for number in numbers:
        setattr(prctl.cap_inheritable, _cap_attr(number), True)
    libc = ctypes.CDLL(None, use_errno=True)
    PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
    for number in numbers:
        if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, number, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))


def _cap_attr(number: int) -> str:
    import prctl

    for name in prctl.ALL_CAP_NAMES:
        if getattr(prctl, "CAP_" + name.upper()) == number:
            return name
    raise ValueError(number)

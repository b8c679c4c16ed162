"""The lifecycle parts of the unit model (SPEC §11): conditions, exit
statuses, stop modes. Frozen values and pure decisions over them; nothing
here does I/O (the caller passes what it found: an environment, a path
check), and nothing imports the rest of the model, so units.py can use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum


class StopMode(str, Enum):
    """`[stop] mode`: who gets the stop signal (systemd's KillMode=)."""

    GROUP = "group"  # every process of the unit (KillMode=control-group)
    MIXED = "mixed"  # the main process; SIGKILL to all at the timeout
    PROCESS = "process"  # the main process only; leftovers are left running


@dataclass(frozen=True, slots=True)
class ConditionsSection:
    """`[conditions]`: checked at each start; a false one skips the unit.

    Each item is as written: `path_exists` holds absolute paths, and
    `environment` holds NAME or NAME=VALUE, either may start with "!".
    """

    path_exists: tuple[str, ...] = ()
    environment: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.path_exists or self.environment)


def failed_condition(conditions: ConditionsSection, env: Mapping[bytes, bytes],
                     exists: Callable[[str], bool]) -> str:
    """Return the first condition that does not hold, as written (with the
    key), or "" when all hold. `env` is pidone's environment (as systemd's
    ConditionEnvironment= checks the manager's); `exists` checks a path."""
    for item in conditions.path_exists:
        negated, path = item.startswith("!"), item.removeprefix("!")
        if exists(path) == negated:
            return f"path_exists {item!r}"
    for item in conditions.environment:
        negated, text = item.startswith("!"), item.removeprefix("!")
        name, equals, wanted = text.partition("=")
        value = env.get(os.fsencode(name))
        holds = value is not None and (value == os.fsencode(wanted) if equals else value != b"")
        if holds == negated:
            return f"environment {item!r}"
    return ""


# An exit status as written: an exit code (int) or a signal name ("SIGTERM").
ExitStatus = int | str

# -- hooks -------------------------------------------------------------------

# The keys of [service] that hold commands run around the main one, in the
# order of a unit's life. Each holds a tuple of argv tuples; an argv whose
# first word starts with "-" is one whose failure is ignored.
HOOK_KEYS = ("exec_start_pre", "exec_start_post", "exec_reload", "exec_stop", "exec_stop_post")
Hook = tuple[str, ...]


def hook_argv(argv: Hook) -> tuple[tuple[str, ...], bool]:
    """(the argv to run, whether its failure is ignored) for one hook command."""
    if argv[0].startswith("-"):
        return (argv[0][1:], *argv[1:]), True
    return argv, False


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceLifecycle:
    """The [service] keys of SPEC §11; units.ServiceSection inherits them
    (keyword-only, so they follow its own fields)."""

    success_exit_status: tuple[ExitStatus, ...] = ()  # also clean ends (0 always is)
    ignore_sigpipe: bool = False
    runtime_directory: tuple[str, ...] = ()  # below /run: made before start, removed after stop
    state_directory: tuple[str, ...] = ()  # below /var/lib: made before start, kept
    directory_mode: int = 0o755
    pid_file: str | None = None  # forking: names the main process once the command has exited
    exec_start_pre: tuple[Hook, ...] = ()  # commands around the main one (HOOK_KEYS)
    exec_start_post: tuple[Hook, ...] = ()
    exec_reload: tuple[Hook, ...] = ()
    exec_stop: tuple[Hook, ...] = ()
    exec_stop_post: tuple[Hook, ...] = ()


# -- exit statuses ------------------------------------------------------------


def status_matches(statuses: tuple[ExitStatus, ...], wait_status: int) -> bool:
    """Return True when the raw `wait_status` is one of `statuses` (an exit
    code for a process that exited, a signal name for one a signal killed)."""
    if not statuses:
        return False
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status) in statuses
    if os.WIFSIGNALED(wait_status):
        import signal

        try:
            return signal.Signals(os.WTERMSIG(wait_status)).name in statuses
        except ValueError:
            return False
    return False

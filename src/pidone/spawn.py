"""Starting children: the main command of tini mode (which inherits pidone's
own environment, stdio and signal state) and, later, units (clean slate).
"""

from __future__ import annotations

import errno
import os
import signal

from pidone.sysdeps import SignalState

# Exit statuses a shell uses when it cannot run a command.
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126


def start_main_command(argv: list[str], signals: SignalState, *, foreground_tty: bool) -> int:
    """Fork and exec `argv` as the main command; return its pid.

    The child leads its own process group (the terminal's foreground group
    when `foreground_tty`), gets the signal mask and ignored signals pidone
    started with, and everything else unchanged. If exec fails, the child
    says why on stderr and exits 127 (not found) or 126 (cannot execute), so
    the failure reaches pidone as an ordinary exit status.
    """
    # Block everything across fork so no signal meant for pidone runs a
    # handler in the child (whose wakeup fd is still pidone's pipe).
    previous = signal.pthread_sigmask(signal.SIG_SETMASK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            _exec_main_command(argv, signals, foreground_tty)  # never returns
        try:
            os.setpgid(pid, pid)  # also done in the child; whoever is first wins
        except OSError:
            pass  # the child already exec'd or exited: it did it itself
        return pid
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _exec_main_command(argv: list[str], signals: SignalState, foreground_tty: bool) -> None:
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

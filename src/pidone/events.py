"""Events (facts that happened to pidone) and the helpers to read them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Hashable


@dataclass(frozen=True)
class ChildExited:
    """A child was reaped. `owner` is who started it (a unit name, the main
    command, a probe), or None for an orphan nobody claimed."""

    pid: int
    status: int  # the raw wait status
    owner: Hashable | None = None

    @property
    def exit_code(self) -> int | None:
        """The exit code, or None when a signal killed it."""
        return os.WEXITSTATUS(self.status) if os.WIFEXITED(self.status) else None

    @property
    def signal(self) -> int | None:
        """The signal that killed it, or None when it exited."""
        return os.WTERMSIG(self.status) if os.WIFSIGNALED(self.status) else None

    @property
    def shell_status(self) -> int:
        """The status a shell would report: the exit code, or 128+N."""
        return os.waitstatus_to_exitcode(self.status) if self.signal is None else 128 + self.signal

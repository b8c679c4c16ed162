"""The one and only waiter: reaps every exited child and says whose it was.

Nothing else in pidone calls waitpid: a second waiter would steal exit
statuses (a probe's failure counted as another process's success).
"""

from __future__ import annotations

from typing import Hashable

from pidone.events import ChildExited
from pidone.sysdeps import System


class Reaper:
    """Maps the pids pidone started to their owners and drains exits."""

    def __init__(self, system: System):
        self._system = system
        self._owners: dict[int, Hashable] = {}
        self.reaped = 0
        self.orphans_reaped = 0
        # True once waitpid said we have no children at all; reset by watch().
        self.no_children = False

    def watch(self, pid: int, owner: Hashable) -> None:
        """Remember that `pid` belongs to `owner`, so its exit is credited."""
        self._owners[pid] = owner
        self.no_children = False

    def owner_of(self, pid: int) -> Hashable | None:
        return self._owners.get(pid)

    def forget(self, pid: int) -> Hashable | None:
        """Stop watching `pid` (someone else reaped it); return its owner,
        or None if it was not watched (or was reaped here already)."""
        return self._owners.pop(pid, None)

    def drain(self, limit: int | None = None) -> list[ChildExited]:
        """Reap every child that has exited (at most `limit`), without blocking.

        Returns every exit in the order reaped, each with its owner (None
        for an orphan nobody watched, which is also counted). Sets
        `no_children` when the kernel says no child is left.
        """
        exits: list[ChildExited] = []
        while limit is None or len(exits) < limit:
            try:
                reaped = self._system.wait_any()
            except ChildProcessError:
                self.no_children = True
                break
            if reaped is None:
                break
            pid, status = reaped
            self.reaped += 1
            owner = self._owners.pop(pid, None)
            if owner is None:
                self.orphans_reaped += 1
            exits.append(ChildExited(pid, status, owner))
        return exits

"""The global restart queue: pure data the machine owns (no clock, no
system calls), so that many units failing at once restart a few at a time.

A policy restart whose backoff is over spawns only if fewer than `limit`
units are *starting because of a restart* (spawned, not ready yet) and no
other restart is waiting; otherwise its unit is QUEUED. A slot frees when
its unit leaves STARTING (ready, failed, stopped) or, for a unit with no
ready timeout, after `max_wait` of it: a unit stuck starting never holds a
slot for good. The queue releases the highest priority first:

    units that others `require` (most dependents first) and critical units,
    then the rest; ties by name, so the same storm gives the same order.

A unit never waits in the queue longer than `max_wait(unit)` past its own
backoff: past that it is released even if every slot is taken.

`limit` 0 means unlimited: nothing is queued or counted.
"""

from __future__ import annotations

import heapq

from pidone.units import Unit

# How long a unit with no ready timeout may wait queued, or hold a slot.
NO_TIMEOUT_WAIT = 90.0


def max_wait(unit: Unit) -> float:
    """The longest a restart of `unit` waits in the queue: its ready
    timeout (what its author gives a start), or NO_TIMEOUT_WAIT without one."""
    return unit.ready.timeout if unit.ready.timeout > 0 else NO_TIMEOUT_WAIT


def priority(unit: Unit, dependents: int) -> tuple:
    """Sort key: lower goes first. `dependents` counts the units that
    require `unit`, directly or not."""
    critical = unit.service.critical
    return (0 if critical or dependents else 1, -dependents, 0 if critical else 1, unit.name)


class RestartQueue:
    """Who waits (with a priority and since when) and who holds a slot."""

    def __init__(self, limit: int = 0):
        self.limit = limit
        self.waiting: dict[str, tuple[tuple, float]] = {}  # name -> (priority, queued at)
        self._heap: list[tuple[tuple, str]] = []  # may hold stale entries; `waiting` decides
        # name -> True when a hold timer (TimerKind.QUEUE) runs for its slot.
        self.starting: dict[str, bool] = {}

    def __len__(self) -> int:
        return len(self.waiting)

    def has_room(self) -> bool:
        return self.limit <= 0 or len(self.starting) < self.limit

    def admit(self, name: str) -> bool:
        """May `name` spawn now? Takes a slot if so. A unit already holding
        one (released from the queue) may; a newcomer only if a slot is free
        and nobody waits before it."""
        if self.limit <= 0 or name in self.starting:
            return True
        if self.waiting or len(self.starting) >= self.limit:
            return False
        self.starting[name] = False
        return True

    def push(self, name: str, key: tuple, now: float) -> None:
        self.waiting[name] = (key, now)
        heapq.heappush(self._heap, (key, name))

    def pop(self) -> str | None:
        """The next unit to release (highest priority), or None."""
        while self._heap:
            key, name = heapq.heappop(self._heap)
            entry = self.waiting.get(name)
            if entry is not None and entry[0] == key:
                del self.waiting[name]
                return name
        return None

    def remove(self, name: str) -> bool:
        """Take `name` out of the queue (stopped, started by hand, released
        for waiting too long). Returns whether it was there."""
        if self.waiting.pop(name, None) is None:
            return False
        if not self.waiting:
            self._heap.clear()
        return True

    def hold(self, name: str) -> None:
        """`name` holds a slot (even past the limit: an overdue release)."""
        self.starting.setdefault(name, False)

    def release(self, name: str) -> bool | None:
        """`name` gives its slot back. Returns whether a hold timer ran for
        it (None when it held no slot)."""
        return self.starting.pop(name, None)

    def order(self) -> list[str]:
        """The waiting units, first to be released first."""
        return [name for name, _ in sorted(self.waiting.items(), key=lambda item: item[1][0])]

    def snapshot(self) -> dict:
        # In release order, for `status --offline`.
        return {"waiting": [[name, self.waiting[name][1]] for name in self.order()] if self.waiting else [],
                "starting": {name: timer for name, timer in self.starting.items()}}

    def restore(self, data: dict, keys: dict[str, tuple]) -> None:
        """Put back what `snapshot` returned; `keys` gives each unit still
        QUEUED its priority (recomputed: the definitions may differ)."""
        self.waiting.clear()
        self._heap.clear()
        self.starting.clear()
        for name, since in data.get("waiting", []):
            if name in keys:
                self.push(name, keys[name], since)
        for name, timer in data.get("starting", {}).items():
            self.starting[name] = bool(timer)


class QueueRules:
    """The machine's transitions into and out of QUEUED (a mixin of
    machine.Machine, kept here so that the machine stays readable):

        BACKOFF --backoff over, no slot--> QUEUED (with a QUEUE timer at max_wait)
        QUEUED --a slot frees / the QUEUE timer--> WAITING --> STARTING
        QUEUED --stop, shutdown, removal--> INACTIVE
        QUEUED --explicit start or restart, a reload's restart--> WAITING (not queued)
    """

    # Provided by the machine.
    queue: RestartQueue
    records: dict
    _actions: list
    _now: float

    def _admit(self, rec) -> bool:
        """A policy restart is about to spawn: take a slot, or queue it."""
        from pidone import events as ev
        from pidone.unitstate import State

        if self.queue.admit(rec.name):
            if self.queue.limit > 0 and rec.unit.ready.timeout <= 0 and not self.queue.starting[rec.name]:
                # No ready timeout frees this slot: a hold timer does.
                self.queue.starting[rec.name] = True
                self._actions.append(ev.SetTimer(rec.name, ev.TimerKind.QUEUE, self._now + max_wait(rec.unit)))
            return True
        dependents = len(self._closure(rec.name, self._required_by)) - 1
        self.queue.push(rec.name, priority(rec.unit, dependents), self._now)
        self._set_state(rec, State.QUEUED)
        self._log(rec, f"restart queued ({self.queue_note(rec.name)})")
        self._actions.append(ev.SetTimer(rec.name, ev.TimerKind.QUEUE, self._now + max_wait(rec.unit)))
        return False

    def _dequeue(self, rec) -> None:
        from pidone import events as ev

        self.queue.remove(rec.name)
        self._actions.append(ev.ClearTimer(rec.name, ev.TimerKind.QUEUE))

    def _release_queued(self) -> None:
        """Slots are free: release the queued units, highest priority first."""
        while self.queue.has_room():
            name = self.queue.pop()
            if name is None:
                return
            self._release(self.records[name], "a restart slot is free")

    def _release(self, rec, why: str) -> None:
        from pidone import events as ev
        from pidone.unitstate import State

        self._actions.append(ev.ClearTimer(rec.name, ev.TimerKind.QUEUE))
        self.queue.hold(rec.name)
        self._log(rec, f"released from the restart queue after {self._now - rec.since:.3g}s: {why}")
        self._set_state(rec, State.WAITING)
        self._check_start(rec.name)
        if rec.state != State.STARTING:
            self.queue.release(rec.name)  # waiting for its dependencies: it holds no slot meanwhile

    def _queue_timer(self, rec) -> None:
        from pidone.unitstate import State

        if rec.state == State.QUEUED and self.queue.remove(rec.name):
            self._release(rec, f"waited its bound of {max_wait(rec.unit):g}s")  # even past the limit
        elif rec.state == State.STARTING and rec.name in self.queue.starting:
            self.queue.starting[rec.name] = False  # the timer is spent
            self._free_slot(rec)
            self._log(rec, f"still starting after {max_wait(rec.unit):g}s: its restart slot goes to the next")

    def _free_slot(self, rec) -> None:
        from pidone import events as ev

        if self.queue.release(rec.name):
            self._actions.append(ev.ClearTimer(rec.name, ev.TimerKind.QUEUE))

    def queue_note(self, name: str) -> str:
        """Why `name` waits, in O(1) (a storm queues every unit: no sort
        per unit; `status` gives each one's place)."""
        return f"{len(self.queue)} waiting; {len(self.queue.starting)} of {self.queue.limit} restart slots taken"

    def _restore_queue(self, data: dict) -> None:
        from pidone.unitstate import State

        keys = {name: priority(rec.unit, len(self._closure(name, self._required_by)) - 1)
                for name, rec in self.records.items() if rec.state == State.QUEUED}
        self.queue.restore(data, keys)
        for name in keys.keys() - self.queue.waiting.keys():
            self.queue.push(name, keys[name], self.records[name].since)  # a state without the queue
        for name in list(self.queue.starting):
            if name not in self.records or self.records[name].state != State.STARTING:
                del self.queue.starting[name]

"""The schedules of `[timer]` units on the loop (SPEC §13): when each fires
next, and a `ScheduleFired` event when it does. Whether a firing starts the
unit or is skipped is the machine's decision, not this module's.

Cron schedules follow the wall clock, but the loop sleeps on the monotonic
clock. So they share one `timerfd` on CLOCK_REALTIME, armed at the earliest
firing as an absolute time with TFD_TIMER_CANCEL_ON_SET: the kernel wakes
us at that wall time whatever the clock did meanwhile, and tells us (a read
failing with ECANCELED) when someone sets the clock, so the next firings
are computed again from the new time. Nothing polls: an idle pidone wakes
only to fire. Firings that a clock jump skipped over are not run.
`every DURATION` schedules are plain monotonic loop timers.
"""

from __future__ import annotations

import errno
import os
import random
import time
from datetime import datetime, timezone
from typing import Callable

from pidone import events as ev
from pidone.cron import UTC, Cron, Every, ScheduleError, parse_schedule, zone_named
from pidone.units import TimerSection, Unit

# CLOCK_REALTIME and timerfd_settime's flags (linux/timerfd.h).
_CLOCK_REALTIME = 0
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2


class RealtimeAlarm:
    """One timerfd on CLOCK_REALTIME that fires at an absolute wall time and
    reports clock changes. Python 3.11 has no os.timerfd_*: ctypes it is,
    imported only when a cron timer exists."""

    def __init__(self):
        import ctypes

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

        class Itimerspec(ctypes.Structure):
            _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]

        self._ctypes = ctypes
        self._spec = Itimerspec
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.timerfd_create(_CLOCK_REALTIME, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"timerfd_create: {os.strerror(code)}")
        self.fd = fd

    def arm(self, wall: float) -> None:
        """Fire at wall time `wall` (seconds since the epoch; in the past: at once)."""
        spec = self._spec()
        seconds = max(int(wall), 0)
        spec.it_value.tv_sec = seconds
        spec.it_value.tv_nsec = max(int((wall - seconds) * 1e9), 1 if seconds == 0 else 0)
        flags = _TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET
        if self._libc.timerfd_settime(self.fd, flags, self._ctypes.byref(spec), None) != 0:
            code = self._ctypes.get_errno()
            raise OSError(code, f"timerfd_settime: {os.strerror(code)}")

    def disarm(self) -> None:
        spec = self._spec()  # all zero: disarmed
        self._libc.timerfd_settime(self.fd, 0, self._ctypes.byref(spec), None)

    def read(self) -> str:
        """Return "fired", "clock-changed", or "" (nothing to read)."""
        try:
            os.read(self.fd, 8)
        except OSError as exc:
            if exc.errno == errno.ECANCELED:
                return "clock-changed"
            if exc.errno == errno.EAGAIN:
                return ""
            raise
        return "fired"

    def close(self) -> None:
        os.close(self.fd)


class _Entry:
    """One timer unit's schedule and its next firing. `base` is the
    schedule's own time, `planned` adds this firing's jitter; both are wall
    times for cron and monotonic times for `every`."""

    __slots__ = ("section", "schedule", "base", "planned", "handle")

    def __init__(self, section: TimerSection, schedule: Cron | Every):
        self.section = section
        self.schedule = schedule
        self.base = 0.0
        self.planned = 0.0
        self.handle = None  # the loop timer of an `every` schedule


def schedule_of(section: TimerSection, tz: str | None) -> Cron | Every:
    """Return the schedule of `section`; its zone is `timezone`, else the
    TZ of pidone's environment if it names a zone, else UTC."""
    zone = UTC
    name = section.timezone or (tz or "").lstrip(":")
    if name:
        try:
            zone = zone_named(name)
        except ScheduleError:
            if section.timezone:
                raise
    return parse_schedule(section.schedule, zone)


class Schedules:
    """Every timer unit's next firing, armed on the loop."""

    def __init__(self, loop, submit: Callable[[object], None], say: Callable[[str], None], *,
                 wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, alarm_factory: Callable[[], RealtimeAlarm] = RealtimeAlarm):
        self._loop = loop
        self._submit = submit
        self._say = say
        self._wall = wall
        self._mono = mono
        self._rng = rng or random.Random()
        self._alarm_factory = alarm_factory
        self._alarm: RealtimeAlarm | None = None
        self.entries: dict[str, _Entry] = {}

    # -- the plan ---------------------------------------------------------------

    def update(self, units: dict[str, Unit]) -> None:
        """Follow a new plan: new and changed timers get a new next firing;
        a timer whose `[timer]` did not change keeps its own (SPEC §13)."""
        tz = os.environ.get("TZ")
        for name in [n for n in self.entries if units.get(n) is None or units[n].timer is None]:
            self._drop(name)
        for name, unit in units.items():
            if unit.timer is None:
                continue
            entry = self.entries.get(name)
            if entry is not None and entry.section == unit.timer:
                continue
            if entry is not None:
                self._drop(name)
            try:
                schedule = schedule_of(unit.timer, tz)
            except ScheduleError as exc:  # the loader checked it; a vanished zone file is all that is left
                self._say(f"unit {name}: [timer] {exc}; it will not fire")
                continue
            entry = self.entries[name] = _Entry(unit.timer, schedule)
            self._plan_first(entry)
        self._arm()

    def _plan_first(self, entry: _Entry) -> None:
        if isinstance(entry.schedule, Every):
            entry.base = self._mono() + entry.schedule.seconds
        else:
            entry.base = self._next_cron(entry.schedule, self._wall())
        entry.planned = entry.base + self._jitter(entry)

    def _drop(self, name: str) -> None:
        entry = self.entries.pop(name)
        if entry.handle is not None:
            entry.handle.cancel()

    def _jitter(self, entry: _Entry) -> float:
        return self._rng.uniform(0.0, entry.section.jitter) if entry.section.jitter > 0 else 0.0

    @staticmethod
    def _next_cron(schedule: Cron, after: float) -> float:
        return schedule.next_after(datetime.fromtimestamp(after, timezone.utc)).timestamp()

    # -- arming and firing ------------------------------------------------------------

    def _arm(self) -> None:
        cron_due = [e.planned for e in self.entries.values() if isinstance(e.schedule, Cron)]
        if cron_due:
            if self._alarm is None:
                self._alarm = self._alarm_factory()
                self._loop.add_reader(self._alarm.fd, self._on_alarm)
            self._alarm.arm(min(cron_due))
        elif self._alarm is not None:
            self._loop.remove_reader(self._alarm.fd)
            self._alarm.close()
            self._alarm = None
        for name, entry in self.entries.items():
            if isinstance(entry.schedule, Every) and entry.handle is None:
                delay = max(0.0, entry.planned - self._mono())
                entry.handle = self._loop.call_later(delay, lambda n=name: self._on_every(n))

    def _on_alarm(self) -> None:
        what = self._alarm.read() if self._alarm is not None else ""
        now = self._wall()
        if what == "clock-changed":
            self._say("the system clock was changed: next timer firings computed again")
            for entry in self.entries.values():
                if isinstance(entry.schedule, Cron):
                    entry.base = self._next_cron(entry.schedule, now)
                    entry.planned = entry.base + self._jitter(entry)
        else:
            for name, entry in sorted(self.entries.items()):
                if isinstance(entry.schedule, Cron) and entry.planned <= now:
                    self._submit(ev.ScheduleFired(name, now))
                    # Missed firings (pidone was stopped, the loop was held) are not replayed.
                    entry.base = self._next_cron(entry.schedule, max(entry.base, now))
                    entry.planned = entry.base + self._jitter(entry)
        self._arm()

    def _on_every(self, name: str) -> None:
        entry = self.entries.get(name)
        if entry is None:
            return
        entry.handle = None
        self._submit(ev.ScheduleFired(name, self._wall()))
        now = self._mono()
        entry.base += entry.schedule.seconds
        if entry.base <= now:  # held up for a whole interval or more: not replayed
            entry.base = now + entry.schedule.seconds
        entry.planned = entry.base + self._jitter(entry)
        self._arm()

    # -- status and re-exec --------------------------------------------------------------

    def next_wall(self, name: str) -> float | None:
        """The wall time of `name`'s next firing, for status."""
        entry = self.entries.get(name)
        if entry is None:
            return None
        if isinstance(entry.schedule, Every):
            return self._wall() + (entry.planned - self._mono())
        return entry.planned

    def snapshot(self) -> dict:
        """The next firings, for a re-exec (monotonic times stay valid across exec)."""
        return {name: [e.section.schedule, e.section.timezone, e.section.jitter, e.base, e.planned]
                for name, e in self.entries.items()}

    def restore(self, data: dict) -> None:
        """Take back the next firings of timers whose schedule is unchanged."""
        for name, item in data.items():
            entry = self.entries.get(name)
            if entry is None or not isinstance(item, list) or len(item) != 5:
                continue
            schedule, zone, jitter, base, planned = item
            if (schedule, zone, jitter) != (entry.section.schedule, entry.section.timezone, entry.section.jitter):
                continue
            if entry.handle is not None:
                entry.handle.cancel()
                entry.handle = None
            entry.base, entry.planned = float(base), float(planned)
        self._arm()

    def close(self) -> None:
        for entry in self.entries.values():
            if entry.handle is not None:
                entry.handle.cancel()
        if self._alarm is not None:
            self._loop.remove_reader(self._alarm.fd)
            self._alarm.close()
            self._alarm = None

"""The schedules of [timer] units on the loop: next firings, the realtime
alarm, clock changes, jitter, reload and re-exec. A fake loop, clock and
alarm drive `Schedules`; the real timerfd is checked on its own."""

from __future__ import annotations

import os
import random
import select
import time
from dataclasses import replace

import pytest

from pidone import events as ev
from pidone.timers import RealtimeAlarm, Schedules
from pidone.units import TimerSection, UnitType, make_unit

T0 = 1_796_000_000.0  # 2026-11-30 ~ 00:53 UTC


class FakeLoop:
    def __init__(self):
        self.readers = {}
        self.timers = []

    def add_reader(self, fd, callback):
        self.readers[fd] = callback

    def remove_reader(self, fd):
        del self.readers[fd]

    def call_later(self, delay, callback):
        timer = FakeTimer(delay, callback)
        self.timers.append(timer)
        return timer


class FakeTimer:
    def __init__(self, delay, callback):
        self.delay, self.callback, self.cancelled = delay, callback, False

    def cancel(self):
        self.cancelled = True


class FakeAlarm:
    made = 0

    def __init__(self):
        FakeAlarm.made += 1
        self.fd = 1000 + FakeAlarm.made
        self.armed = None
        self.next_read = "fired"
        self.closed = False

    def arm(self, wall):
        self.armed = wall

    def read(self):
        return self.next_read

    def close(self):
        self.closed = True


class Clock:
    def __init__(self):
        self.wall, self.mono = T0, 500.0


def timer_unit(name, schedule, **keys):
    unit = make_unit(name, ["/bin/true"], type=UnitType.ONESHOT)
    return replace(unit, timer=TimerSection(schedule=schedule, **keys))


@pytest.fixture
def rig():
    loop, clock, fired, said = FakeLoop(), Clock(), [], []
    schedules = Schedules(loop, fired.append, said.append, wall=lambda: clock.wall, mono=lambda: clock.mono,
                          rng=random.Random(7), alarm_factory=FakeAlarm)
    return schedules, loop, clock, fired, said


def test_no_timer_units_means_no_alarm(rig):
    schedules, loop, *_ = rig
    schedules.update({"web": make_unit("web", ["/bin/sleep", "9"])})
    assert schedules._alarm is None and loop.readers == {} and loop.timers == []


def test_a_cron_timer_arms_the_alarm_at_its_next_firing_and_fires(rig):
    schedules, loop, clock, fired, _ = rig
    schedules.update({"job": timer_unit("job", "*/5 * * * *")})
    alarm = schedules._alarm
    assert alarm.armed % 300 == 0 and T0 < alarm.armed <= T0 + 300
    assert schedules.next_wall("job") == alarm.armed
    clock.wall = alarm.armed
    loop.readers[alarm.fd]()
    assert fired == [ev.ScheduleFired("job", clock.wall)]
    assert alarm.armed == clock.wall + 300  # the next one


def test_the_earliest_of_several_cron_timers_is_armed(rig):
    schedules, loop, clock, fired, _ = rig
    schedules.update({"a": timer_unit("a", "@hourly"), "b": timer_unit("b", "*/5 * * * *")})
    first = schedules._alarm.armed
    assert first == schedules.next_wall("b") < schedules.next_wall("a")
    clock.wall = first
    loop.readers[schedules._alarm.fd]()
    assert [e.name for e in fired] == ["b"]


def test_a_clock_change_computes_the_next_firings_again_and_fires_nothing(rig):
    schedules, loop, clock, fired, said = rig
    schedules.update({"job": timer_unit("job", "@daily")})
    before = schedules._alarm.armed
    clock.wall = T0 + 3 * 86400 + 100  # someone set the clock three days ahead
    schedules._alarm.next_read = "clock-changed"
    loop.readers[schedules._alarm.fd]()
    assert fired == []  # the skipped-over midnights are not run
    assert schedules._alarm.armed > clock.wall and schedules._alarm.armed != before
    assert any("clock was changed" in line for line in said)


def test_a_late_wake_up_fires_once_and_does_not_replay(rig):
    schedules, loop, clock, fired, _ = rig
    schedules.update({"job": timer_unit("job", "* * * * *")})
    clock.wall = schedules._alarm.armed + 600  # the loop was held ten minutes
    loop.readers[schedules._alarm.fd]()
    assert len(fired) == 1 and schedules._alarm.armed > clock.wall


def test_every_uses_a_monotonic_loop_timer_and_keeps_its_rhythm(rig):
    schedules, loop, clock, fired, _ = rig
    schedules.update({"tick": timer_unit("tick", "every 10s")})
    assert schedules._alarm is None
    (timer,) = loop.timers
    assert timer.delay == 10
    clock.mono += 10.2
    timer.callback()
    assert [e.name for e in fired] == ["tick"]
    assert loop.timers[-1].delay == pytest.approx(9.8)  # 10 s after the last planned firing


def test_jitter_delays_each_firing_by_up_to_that_much(rig):
    schedules, loop, clock, *_ = rig
    schedules.update({"job": timer_unit("job", "*/5 * * * *", jitter=30.0)})
    entry = schedules.entries["job"]
    assert entry.base < entry.planned <= entry.base + 30 and schedules._alarm.armed == entry.planned


def test_reload_keeps_an_unchanged_timer_and_replans_a_changed_one(rig):
    schedules, loop, clock, *_ = rig
    units = {"a": timer_unit("a", "every 10s"), "b": timer_unit("b", "@daily")}
    schedules.update(units)
    timer_a, planned_b = loop.timers[0], schedules.entries["b"].planned
    clock.mono += 3
    schedules.update({**units, "b": timer_unit("b", "@hourly")})
    assert not timer_a.cancelled and len(loop.timers) == 1  # a untouched
    assert schedules.entries["b"].planned < planned_b
    schedules.update({"b": units["b"]})  # a removed
    assert timer_a.cancelled and "a" not in schedules.entries


def test_removing_the_last_cron_timer_closes_the_alarm(rig):
    schedules, loop, *_ = rig
    schedules.update({"job": timer_unit("job", "@daily")})
    alarm = schedules._alarm
    schedules.update({})
    assert alarm.closed and loop.readers == {} and schedules._alarm is None


def test_a_snapshot_restores_the_same_next_firings(rig):
    schedules, loop, clock, *_ = rig
    units = {"a": timer_unit("a", "every 10s", jitter=5.0), "b": timer_unit("b", "@daily", jitter=60.0)}
    schedules.update(units)
    saved = schedules.snapshot()
    again = Schedules(FakeLoop(), [].append, [].append, wall=lambda: clock.wall, mono=lambda: clock.mono,
                      alarm_factory=FakeAlarm)
    again.update(units)
    again.restore(saved)
    for name in units:
        assert (again.entries[name].base, again.entries[name].planned) == (
            schedules.entries[name].base, schedules.entries[name].planned)
    assert again._alarm.armed == schedules.entries["b"].planned


def test_a_snapshot_of_another_schedule_is_not_taken(rig):
    schedules, loop, clock, *_ = rig
    schedules.update({"b": timer_unit("b", "@daily")})
    planned = schedules.entries["b"].planned
    schedules.restore({"b": ["@hourly", "", 0.0, 1.0, 1.0], "gone": ["@daily", "", 0.0, 1.0, 1.0], "bad": 3})
    assert schedules.entries["b"].planned == planned


def test_the_zone_comes_from_tz_when_the_unit_names_none(rig, monkeypatch):
    schedules, *_ = rig
    monkeypatch.setenv("TZ", ":Asia/Tokyo")
    schedules.update({"job": timer_unit("job", "0 9 * * *")})
    assert str(schedules.entries["job"].schedule.zone) == "Asia/Tokyo"
    monkeypatch.setenv("TZ", "CET-1CEST")  # POSIX form, not a zone name: UTC
    schedules.update({"job": timer_unit("job", "0 10 * * *")})
    assert str(schedules.entries["job"].schedule.zone) == "UTC"


# --- the real timerfd ---------------------------------------------------------------


def test_the_realtime_alarm_fires_at_an_absolute_wall_time():
    alarm = RealtimeAlarm()
    try:
        assert alarm.read() == ""  # not armed: nothing to read
        alarm.arm(time.time() + 0.2)
        assert select.select([alarm.fd], [], [], 0.05)[0] == []  # not yet
        assert select.select([alarm.fd], [], [], 5)[0] == [alarm.fd]
        assert alarm.read() == "fired"
        alarm.arm(time.time() - 100)  # in the past: at once
        assert select.select([alarm.fd], [], [], 5)[0] == [alarm.fd] and alarm.read() == "fired"
        alarm.arm(time.time() + 0.05)
        alarm.disarm()
        assert select.select([alarm.fd], [], [], 0.2)[0] == []
    finally:
        alarm.close()
    with pytest.raises(OSError):
        os.fstat(alarm.fd)

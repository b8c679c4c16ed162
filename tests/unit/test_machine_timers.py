"""[timer] units in the machine: not started at boot unless on_boot, each
firing starts a unit that is down, a firing while it runs is skipped and
counted, never queued."""

from __future__ import annotations

from dataclasses import replace

from pidone import events as ev
from pidone.machine import Machine, State
from pidone.units import TimerSection, UnitType, make_unit


def oneshot(name, **timer):
    unit = make_unit(name, ["/bin/true"], type=UnitType.ONESHOT)
    return replace(unit, timer=TimerSection(schedule="every 1m", **timer))


def spawned(actions):
    return [a.name for a in actions if isinstance(a, ev.Spawn)]


def test_a_timer_unit_is_not_started_at_boot():
    m = Machine({"job": oneshot("job"), "web": make_unit("web", ["/bin/sleep", "9"])})
    assert spawned(m.handle(ev.StartAll(), 0.0)) == ["web"]
    assert m.records["job"].state == State.INACTIVE


def test_on_boot_starts_it_at_boot_too():
    m = Machine({"job": oneshot("job", on_boot=True)})
    assert spawned(m.handle(ev.StartAll(), 0.0)) == ["job"]


def test_a_firing_starts_it_and_again_after_it_exited():
    m = Machine({"job": oneshot("job")})
    m.handle(ev.StartAll(), 0.0)
    assert spawned(m.handle(ev.ScheduleFired("job", 1000.0), 1.0)) == ["job"]  # INACTIVE -> WAITING -> STARTING
    m.handle(ev.Spawned("job", 10), 1.0)
    m.handle(ev.MainExited("job", 10, 0), 2.0)
    assert m.records["job"].state == State.EXITED
    assert spawned(m.handle(ev.ScheduleFired("job", 1060.0), 61.0)) == ["job"]  # EXITED -> WAITING
    rec = m.records["job"]
    assert (rec.firings, rec.firings_skipped, rec.last_fired) == (2, 0, 1060.0)


def test_a_firing_while_it_runs_is_skipped_and_counted():
    m = Machine({"job": oneshot("job")})
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.ScheduleFired("job", 1000.0), 1.0)
    m.handle(ev.Spawned("job", 10), 1.0)
    actions = m.handle(ev.ScheduleFired("job", 1060.0), 61.0)  # STARTING: skipped
    assert spawned(actions) == []
    assert any("skipped (still starting)" in a.text for a in actions if isinstance(a, ev.Log))
    m.handle(ev.MainExited("job", 10, 0), 62.0)
    rec = m.records["job"]
    assert (rec.state, rec.firings, rec.firings_skipped) == (State.EXITED, 1, 1)
    # The skipped firing was not queued: nothing starts when the run ends.
    assert rec.state == State.EXITED


def test_a_failed_timer_unit_runs_again_at_its_next_firing():
    m = Machine({"job": oneshot("job")})
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.ScheduleFired("job", 1000.0), 1.0)
    m.handle(ev.Spawned("job", 10), 1.0)
    m.handle(ev.MainExited("job", 10, 1 << 8), 2.0)
    assert m.records["job"].state == State.FAILED
    assert spawned(m.handle(ev.ScheduleFired("job", 1060.0), 61.0)) == ["job"]


def test_a_firing_starts_it_in_dependency_order():
    db = make_unit("db", ["/bin/sleep", "9"])
    job = make_unit("job", ["/bin/true"], type=UnitType.ONESHOT, requires=["db"])
    m = Machine({"db": db, "job": replace(job, timer=TimerSection(schedule="every 1m"))})
    assert spawned(m.handle(ev.StartAll(), 0.0)) == ["db"]
    assert spawned(m.handle(ev.ScheduleFired("job", 1000.0), 1.0)) == []  # db is not running yet
    assert m.records["job"].state == State.WAITING
    assert spawned(m.handle(ev.Spawned("db", 5), 1.0)) == ["job"]  # db running: job goes


def test_a_blocked_timer_unit_counts_a_skip():
    m = Machine({"job": oneshot("job")}, blocked={"job": "in a dependency cycle"})
    m.handle(ev.StartAll(), 0.0)
    actions = m.handle(ev.ScheduleFired("job", 1000.0), 1.0)
    assert spawned(actions) == [] and m.records["job"].firings_skipped == 1
    assert any("skipped (in a dependency cycle)" in a.text for a in actions if isinstance(a, ev.Log))


def test_firings_during_shutdown_start_nothing():
    m = Machine({"job": oneshot("job")})
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Shutdown(), 1.0)
    assert spawned(m.handle(ev.ScheduleFired("job", 1000.0), 2.0)) == []


def test_reload_adding_a_timer_unit_does_not_start_it():
    from pidone import graph

    m = Machine({})
    m.handle(ev.StartAll(), 0.0)
    units = {"job": oneshot("job")}
    actions = m.handle(ev.ApplyPlan(units, {}, graph.diff({}, units)), 1.0)
    assert spawned(actions) == [] and m.records["job"].state == State.INACTIVE


def test_the_counters_survive_a_snapshot():
    m = Machine({"job": oneshot("job")})
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.ScheduleFired("job", 1000.0), 1.0)
    m.handle(ev.ScheduleFired("job", 1060.0), 2.0)
    copy = Machine({"job": oneshot("job")})
    copy.restore(m.snapshot())
    rec = copy.records["job"]
    assert (rec.firings, rec.firings_skipped, rec.last_fired) == (1, 1, 1060.0)


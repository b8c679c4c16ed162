"""The lifecycle transitions of SPEC §11 as tables, with no processes:
disabled units, conditions, exit statuses, stop modes, part_of."""

from __future__ import annotations

import signal
from dataclasses import replace

from pidone import events as ev
from pidone.graph import diff
from pidone.machine import Machine, State
from pidone.units import make_unit
from pidone.units_lifecycle import ConditionsSection

EXIT_0 = 0
EXIT_1 = 1 << 8


def machine(*units) -> Machine:
    return Machine({u.name: u for u in units})


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def spawned(actions):
    return sorted(a.name for a in of(actions, ev.Spawn))


def state(m, name):
    return m.records[name].state


# -- enabled ---------------------------------------------------------------------


def test_a_disabled_unit_is_not_started_at_boot_but_starts_when_asked():
    m = machine(make_unit("web"), replace(make_unit("admin"), enabled=False))
    assert spawned(m.handle(ev.StartAll(), 0.0)) == ["web"]
    assert state(m, "admin") == State.INACTIVE
    assert spawned(m.handle(ev.StartUnit("admin"), 1.0)) == ["admin"]


def test_a_disabled_unit_is_pulled_in_by_a_unit_that_requires_it():
    m = machine(replace(make_unit("db"), enabled=False), make_unit("web", requires=["db"]))
    assert spawned(m.handle(ev.StartAll(), 0.0)) == ["db"]


def test_a_reload_does_not_start_an_added_disabled_unit():
    old = {"web": make_unit("web")}
    m = Machine(old)
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("web", 10), 0.0)
    new = {**old, "admin": replace(make_unit("admin"), enabled=False), "job": make_unit("job")}
    actions = m.handle(ev.ApplyPlan(new, {}, diff(old, new)), 1.0)
    assert spawned(actions) == ["job"]
    assert state(m, "admin") == State.INACTIVE


def test_disabling_a_running_unit_does_not_restart_it():
    old = {"web": make_unit("web")}
    m = Machine(old)
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("web", 10), 0.0)
    new = {"web": replace(old["web"], enabled=False)}
    actions = m.handle(ev.ApplyPlan(new, {}, diff(old, new)), 1.0)
    assert of(actions, ev.SignalUnit) == [] and state(m, "web") == State.RUNNING
    assert m.records["web"].unit.enabled is False


# -- conditions --------------------------------------------------------------------

COND = ConditionsSection(path_exists=("/nope",))


def test_a_false_condition_is_settled_not_failed_and_requirers_start():
    m = machine(replace(make_unit("db"), conditions=COND), make_unit("web", requires=["db"]))
    assert spawned(m.handle(ev.StartAll(), 0.0)) == ["db"]
    actions = m.handle(ev.ConditionFailed("db", "path_exists '/nope'"), 0.0)
    assert state(m, "db") == State.CONDITION
    assert m.records["db"].reason == "condition failed: path_exists '/nope'"
    assert spawned(actions) == ["web"]
    assert of(actions, ev.SetTimer) == []  # no restart policy
    assert m.records["db"].failures == 0


def test_a_skipped_unit_is_checked_again_when_started():
    m = machine(replace(make_unit("db"), conditions=COND))
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.ConditionFailed("db", "x"), 0.0)
    assert spawned(m.handle(ev.StartUnit("db"), 1.0)) == ["db"]
    assert state(m, "db") == State.STARTING
    assert spawned(m.handle(ev.RestartUnit("db"), 2.0)) == []  # already starting
    m.handle(ev.ConditionFailed("db", "x"), 2.0)
    assert spawned(m.handle(ev.RestartUnit("db"), 3.0)) == ["db"]


def test_a_late_condition_report_about_a_running_unit_is_ignored():
    m = machine(make_unit("db"))
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("db", 10), 0.0)
    m.handle(ev.ConditionFailed("db", "x"), 0.0)
    assert state(m, "db") == State.RUNNING


def test_a_skipped_unit_lets_a_shutdown_finish():
    m = machine(replace(make_unit("db"), conditions=COND))
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.ConditionFailed("db", "x"), 0.0)
    assert of(m.handle(ev.Shutdown(), 1.0), ev.AllStopped) == [ev.AllStopped(False)]

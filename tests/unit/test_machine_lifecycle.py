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


# -- exit statuses -------------------------------------------------------------------

from pidone.units import RestartPolicy, RestartSection, ServiceSection, StopSection  # noqa: E402
from pidone.units_lifecycle import StopMode  # noqa: E402

KILLED_TERM = signal.SIGTERM
EXIT_78 = 78 << 8


def with_statuses(name, success=(), prevent=(), policy=RestartPolicy.ON_FAILURE):
    unit = make_unit(name, restart=RestartSection(policy=policy, prevent_exit_status=prevent))
    return replace(unit, service=replace(unit.service, success_exit_status=success))


def running(m, name, pid):
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned(name, pid), 0.0)


def test_success_exit_status_makes_an_end_clean():
    m = machine(with_statuses("web", success=(143, "SIGTERM")))
    running(m, "web", 10)
    actions = m.handle(ev.MainExited("web", 10, KILLED_TERM), 1.0)
    assert state(m, "web") == State.EXITED and of(actions, ev.SetTimer) == []
    m.handle(ev.StartUnit("web"), 2.0)
    m.handle(ev.Spawned("web", 11), 2.0)
    m.handle(ev.MainExited("web", 11, 143 << 8), 3.0)
    assert state(m, "web") == State.EXITED
    m.handle(ev.StartUnit("web"), 4.0)
    m.handle(ev.Spawned("web", 12), 4.0)
    m.handle(ev.MainExited("web", 12, 1 << 8), 5.0)
    assert state(m, "web") == State.BACKOFF, "other statuses are still failures"


def test_a_oneshot_ending_with_a_success_status_is_ready():
    unit = make_unit("job", type=make_unit("x").type.ONESHOT)
    unit = replace(unit, service=replace(unit.service, success_exit_status=(3,)))
    m = machine(unit, make_unit("web", requires=["job"]))
    running(m, "job", 10)
    actions = m.handle(ev.MainExited("job", 10, 3 << 8), 1.0)
    assert state(m, "job") == State.EXITED and spawned(actions) == ["web"]


def test_prevent_exit_status_fails_at_once_without_a_restart():
    m = machine(with_statuses("web", prevent=(78,)))
    running(m, "web", 10)
    actions = m.handle(ev.MainExited("web", 10, EXIT_78), 1.0)
    assert state(m, "web") == State.FAILED
    assert of(actions, ev.SetTimer) == []
    assert "prevent_exit_status" in m.records["web"].reason


def test_prevent_exit_status_stops_policy_always_after_a_clean_end():
    m = machine(with_statuses("web", success=(78,), prevent=(78,), policy=RestartPolicy.ALWAYS))
    running(m, "web", 10)
    m.handle(ev.MainExited("web", 10, EXIT_78), 1.0)
    assert state(m, "web") == State.EXITED


# -- stop modes ----------------------------------------------------------------------


def with_mode(name, mode):
    return make_unit(name, stop=StopSection(mode=mode, timeout=5))


def test_stop_mode_group_signals_everything_and_kills_everything():
    m = machine(with_mode("web", StopMode.GROUP))
    running(m, "web", 10)
    actions = m.handle(ev.StopUnit("web"), 1.0)
    assert of(actions, ev.SignalUnit) == [ev.SignalUnit("web", signal.SIGTERM, False)]
    assert of(m.handle(ev.TimerFired("web", ev.TimerKind.STOP), 6.0), ev.KillUnit) == [ev.KillUnit("web", False)]


def test_stop_mode_mixed_signals_the_main_process_and_kills_everything():
    m = machine(with_mode("web", StopMode.MIXED))
    running(m, "web", 10)
    actions = m.handle(ev.StopUnit("web"), 1.0)
    assert of(actions, ev.SignalUnit) == [ev.SignalUnit("web", signal.SIGTERM, True)]
    assert of(m.handle(ev.TimerFired("web", ev.TimerKind.STOP), 6.0), ev.KillUnit) == [ev.KillUnit("web", False)]


def test_stop_mode_process_touches_the_main_process_alone():
    m = machine(with_mode("web", StopMode.PROCESS))
    running(m, "web", 10)
    actions = m.handle(ev.StopUnit("web"), 1.0)
    assert of(actions, ev.SignalUnit) == [ev.SignalUnit("web", signal.SIGTERM, True)]
    assert of(m.handle(ev.TimerFired("web", ev.TimerKind.STOP), 6.0), ev.KillUnit) == [ev.KillUnit("web", True)]


def test_leftovers_without_a_main_process_get_the_signal_whatever_the_mode():
    m = machine(with_mode("web", StopMode.MIXED))
    running(m, "web", 10)
    m.handle(ev.MainExited("web", 10, EXIT_1, frozenset({11})), 1.0)
    actions = m.handle(ev.TimerFired("web", ev.TimerKind.RESTART), 2.0)
    assert of(actions, ev.SignalUnit) == [ev.SignalUnit("web", signal.SIGTERM, False)]


# -- part_of -------------------------------------------------------------------------


def part_of_stack():
    return machine(make_unit("db"), make_unit("web", after=["db"]),
                   replace(make_unit("worker"), dependencies=replace(make_unit("w").dependencies, part_of=("db",))))


def all_running(m):
    m.handle(ev.StartAll(), 0.0)
    for pid, name in enumerate(("db", "web", "worker"), 10):
        m.handle(ev.Spawned(name, pid), 0.0)


def test_part_of_stops_with_its_unit():
    m = part_of_stack()
    all_running(m)
    actions = m.handle(ev.StopUnit("db"), 1.0)
    assert sorted(a.name for a in of(actions, ev.SignalUnit)) == ["db", "worker"]
    assert m.records["worker"].reason == "stopped with db"
    assert m.records["web"].desired.value == "up"


def test_part_of_restarts_with_its_unit_by_command():
    m = part_of_stack()
    all_running(m)
    actions = m.handle(ev.RestartUnit("db"), 1.0)
    assert sorted(a.name for a in of(actions, ev.SignalUnit)) == ["db", "worker"]
    m.handle(ev.MainExited("worker", 12, KILLED_TERM), 1.1)
    assert state(m, "worker") == State.STARTING  # back up; web was not touched
    assert state(m, "web") == State.RUNNING


def test_part_of_restarts_when_its_unit_is_restarted_by_policy():
    m = part_of_stack()
    all_running(m)
    actions = m.handle(ev.MainExited("db", 10, EXIT_1), 1.0)
    assert state(m, "db") == State.BACKOFF
    assert [a.name for a in of(actions, ev.SignalUnit)] == ["worker"]


def test_part_of_stops_when_its_unit_fails_for_good():
    m = machine(make_unit("db", restart=RestartSection(policy=RestartPolicy.NO)),
                replace(make_unit("worker"), dependencies=replace(make_unit("w").dependencies, part_of=("db",))))
    all_running_two = [m.handle(ev.StartAll(), 0.0), m.handle(ev.Spawned("db", 10), 0.0),
                       m.handle(ev.Spawned("worker", 11), 0.0)]
    assert all_running_two
    actions = m.handle(ev.MainExited("db", 10, EXIT_1), 1.0)
    assert state(m, "db") == State.FAILED
    assert [a.name for a in of(actions, ev.SignalUnit)] == ["worker"]
    assert m.records["worker"].reason == "part of db, which failed"


def test_part_of_restarts_when_a_reload_changes_its_unit_and_stops_when_it_is_removed():
    m = part_of_stack()
    all_running(m)
    old = {name: rec.unit for name, rec in m.records.items()}
    new = {**old, "db": make_unit("db", ["sleep", "2"])}
    actions = m.handle(ev.ApplyPlan(new, {}, diff(old, new)), 1.0)
    assert sorted(a.name for a in of(actions, ev.SignalUnit)) == ["db", "worker"]  # web (only after db) stays
    assert m.records["worker"].restart_pending
    m2 = part_of_stack()
    all_running(m2)
    gone = {name: rec.unit for name, rec in m2.records.items() if name != "db"}
    m2.handle(ev.ApplyPlan(gone, {}, diff(old, gone)), 1.0)
    assert m2.records["worker"].desired.value == "down"
    assert m2.records["worker"].reason == "part of db, which was removed"


# -- runtime directories ---------------------------------------------------------------


def test_the_runtime_directory_goes_when_the_run_is_over_not_between_restarts():
    unit = make_unit("web")
    unit = replace(unit, service=replace(unit.service, runtime_directory=("app",)))
    m = machine(unit)
    running(m, "web", 10)
    actions = m.handle(ev.MainExited("web", 10, EXIT_1), 1.0)
    assert state(m, "web") == State.BACKOFF and of(actions, ev.RemoveDirectories) == []
    m.handle(ev.TimerFired("web", ev.TimerKind.RESTART), 2.0)
    m.handle(ev.Spawned("web", 11), 2.0)
    m.handle(ev.StopUnit("web"), 3.0)
    actions = m.handle(ev.MainExited("web", 11, KILLED_TERM), 3.1)
    assert state(m, "web") == State.INACTIVE
    assert of(actions, ev.RemoveDirectories) == [ev.RemoveDirectories("web", ("app",))]

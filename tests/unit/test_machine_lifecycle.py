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


# -- hooks ---------------------------------------------------------------------------------

from pidone.units import ReadySection  # noqa: E402


def hooked(name="web", timeout=30.0, **hooks):
    unit = make_unit(name, ready=ReadySection(timeout=timeout), stop=StopSection(timeout=10))
    return replace(unit, service=replace(unit.service, **{k: tuple(tuple(c) for c in v) for k, v in hooks.items()}))


def hook_runs(actions):
    return [(a.key, a.argv) for a in of(actions, ev.RunHook)]


def test_start_pre_commands_run_in_order_then_the_command():
    m = machine(hooked(exec_start_pre=[["a"], ["-b", "x"]]))
    actions = m.handle(ev.StartAll(), 0.0)
    assert state(m, "web") == State.START_PRE and spawned(actions) == []
    assert hook_runs(actions) == [("exec_start_pre", ("a",))]
    assert of(actions, ev.SetTimer) == [ev.SetTimer("web", ev.TimerKind.READY, 30.0)]  # the whole start
    m.handle(ev.HookStarted("web", 5), 0.0)
    assert m.records["web"].step == "exec_start_pre 1/2"
    actions = m.handle(ev.HookExited("web", 5, EXIT_0), 1.0)
    assert hook_runs(actions) == [("exec_start_pre", ("b", "x"))]  # "-" stripped
    m.handle(ev.HookStarted("web", 6), 1.0)
    actions = m.handle(ev.HookExited("web", 6, EXIT_1), 2.0)  # ignored: "-"
    assert spawned(actions) == ["web"] and state(m, "web") == State.STARTING
    actions = m.handle(ev.Spawned("web", 10), 2.0)
    assert of(actions, ev.SetTimer) == []  # the start's deadline stands
    assert state(m, "web") == State.RUNNING


def test_a_failed_start_pre_fails_the_start_and_runs_stop_post_with_the_result():
    m = machine(hooked(exec_start_pre=[["a"]], exec_stop_post=[["post"]]))
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.HookStarted("web", 5), 0.0)
    actions = m.handle(ev.HookExited("web", 5, EXIT_1), 1.0)
    assert state(m, "web") == State.STOP_POST
    post = of(actions, ev.RunHook)[0]
    assert post.key == "exec_stop_post" and dict(post.env) == {"SERVICE_RESULT": "exit-code"}
    m.handle(ev.HookStarted("web", 6), 1.0)
    m.handle(ev.HookExited("web", 6, EXIT_0), 1.5)
    rec = m.records["web"]
    assert state(m, "web") == State.BACKOFF and rec.failed_step == "exec_start_pre"
    assert spawned(m.handle(ev.TimerFired("web", ev.TimerKind.RESTART), 5.0)) == []  # start-pre again
    assert state(m, "web") == State.START_PRE


def test_a_spawn_failure_of_a_hook_fails_the_start():
    m = machine(hooked(exec_start_pre=[["a"]]))
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.HookExited("web", 0, 127 << 8, "unable to spawn a: No such file or directory"), 0.0)
    assert state(m, "web") == State.BACKOFF
    assert m.records["web"].result == "resources"


def test_start_post_runs_once_ready_before_dependents_start():
    m = machine(hooked(exec_start_post=[["post"]]), make_unit("dep", requires=["web"]))
    m.handle(ev.StartAll(), 0.0)
    actions = m.handle(ev.Spawned("web", 10), 0.0)
    assert state(m, "web") == State.START_POST and spawned(actions) == []
    m.handle(ev.HookStarted("web", 11), 0.0)
    actions = m.handle(ev.HookExited("web", 11, EXIT_0), 1.0)
    assert state(m, "web") == State.RUNNING and spawned(actions) == ["dep"]


def test_the_ready_timeout_covers_the_hooks_and_kills_the_running_one():
    m = machine(hooked(exec_start_pre=[["hang"]], exec_stop_post=[["post"]], timeout=5))
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.HookStarted("web", 5), 0.0)
    actions = m.handle(ev.TimerFired("web", ev.TimerKind.READY), 5.0)
    assert of(actions, ev.KillHook) == [ev.KillHook("web")]
    assert state(m, "web") == State.STOPPING and m.records["web"].failed_step == "exec_start_pre"
    actions = m.handle(ev.HookExited("web", 5, signal.SIGKILL), 5.1)
    post = of(actions, ev.RunHook)[0]
    assert dict(post.env)["SERVICE_RESULT"] == "timeout"


def test_exec_stop_runs_before_the_signal_and_stop_post_after():
    m = machine(hooked(exec_stop=[["stop"]], exec_stop_post=[["post"]]))
    running(m, "web", 10)
    actions = m.handle(ev.StopUnit("web"), 1.0)
    assert state(m, "web") == State.STOP_CMD and of(actions, ev.SignalUnit) == []
    assert of(actions, ev.SetTimer) == [ev.SetTimer("web", ev.TimerKind.STOP, 11.0)]
    m.handle(ev.HookStarted("web", 20), 1.0)
    actions = m.handle(ev.HookExited("web", 20, EXIT_1), 2.0)  # a failed exec_stop: the stop goes on
    assert of(actions, ev.SignalUnit) == [ev.SignalUnit("web", signal.SIGTERM, False)]
    actions = m.handle(ev.MainExited("web", 10, KILLED_TERM), 2.5)
    assert state(m, "web") == State.STOP_POST
    assert dict(of(actions, ev.RunHook)[0].env) == {"SERVICE_RESULT": "success", "EXIT_CODE": "killed",
                                                    "EXIT_STATUS": "TERM"}
    m.handle(ev.HookStarted("web", 21), 2.5)
    m.handle(ev.HookExited("web", 21, EXIT_0), 3.0)
    assert state(m, "web") == State.INACTIVE


def test_a_hanging_exec_stop_is_killed_at_the_stop_timeout_with_the_unit():
    m = machine(hooked(exec_stop=[["stop"]]))
    running(m, "web", 10)
    m.handle(ev.StopUnit("web"), 1.0)
    m.handle(ev.HookStarted("web", 20), 1.0)
    actions = m.handle(ev.TimerFired("web", ev.TimerKind.STOP), 11.0)
    assert of(actions, ev.KillHook) == [ev.KillHook("web")] and of(actions, ev.KillUnit)
    m.handle(ev.MainExited("web", 10, signal.SIGKILL), 11.1)
    assert state(m, "web") == State.STOPPING  # the hook is not reaped yet
    m.handle(ev.HookExited("web", 20, signal.SIGKILL), 11.2)
    assert state(m, "web") == State.INACTIVE


def test_a_main_exit_ends_the_run_with_stop_post_then_the_policy():
    m = machine(hooked(exec_stop_post=[["post"]]))
    running(m, "web", 10)
    actions = m.handle(ev.MainExited("web", 10, 3 << 8), 1.0)
    assert state(m, "web") == State.STOP_POST
    assert dict(of(actions, ev.RunHook)[0].env) == {"SERVICE_RESULT": "exit-code", "EXIT_CODE": "exited",
                                                    "EXIT_STATUS": "3"}
    m.handle(ev.HookStarted("web", 11), 1.0)
    m.handle(ev.HookExited("web", 11, EXIT_0), 1.1)
    assert state(m, "web") == State.BACKOFF


def test_exec_reload_runs_while_running_and_a_stop_cuts_it_short():
    m = machine(hooked(exec_reload=[["reload"]]))
    running(m, "web", 10)
    actions = m.handle(ev.ReloadUnit("web"), 1.0)
    assert hook_runs(actions) == [("exec_reload", ("reload",))]
    m.handle(ev.HookStarted("web", 20), 1.0)
    assert hook_runs(m.handle(ev.ReloadUnit("web"), 1.1)) == []  # one at a time
    actions = m.handle(ev.StopUnit("web"), 2.0)
    assert of(actions, ev.KillHook) == [ev.KillHook("web")]
    m.handle(ev.MainExited("web", 10, KILLED_TERM), 2.1)
    assert state(m, "web") == State.STOPPING
    m.handle(ev.HookExited("web", 20, signal.SIGKILL), 2.2)
    assert state(m, "web") == State.INACTIVE


def test_a_oneshot_runs_start_post_after_it_exits():
    unit = make_unit("job", type=make_unit("x").type.ONESHOT)
    unit = replace(unit, service=replace(unit.service, exec_start_post=(("post",),)))
    m = machine(unit)
    running(m, "job", 10)
    m.handle(ev.MainExited("job", 10, EXIT_0), 1.0)
    assert state(m, "job") == State.START_POST
    m.handle(ev.HookStarted("job", 11), 1.0)
    m.handle(ev.HookExited("job", 11, EXIT_0), 1.1)
    assert state(m, "job") == State.EXITED


def test_a_shutdown_waits_for_exec_stop_post():
    m = machine(hooked(exec_stop_post=[["post"]]))
    running(m, "web", 10)
    m.handle(ev.Shutdown(), 1.0)
    actions = m.handle(ev.MainExited("web", 10, KILLED_TERM), 1.1)
    assert of(actions, ev.AllStopped) == [] and state(m, "web") == State.STOP_POST
    m.handle(ev.HookStarted("web", 11), 1.1)
    actions = m.handle(ev.HookExited("web", 11, EXIT_0), 1.2)
    assert of(actions, ev.AllStopped) == [ev.AllStopped(False)]


# -- forking ---------------------------------------------------------------------------------

from pidone.units import UnitType  # noqa: E402


def forking_unit(**hooks):
    unit = make_unit("d", type=UnitType.FORKING, ready=ReadySection(timeout=5))
    return replace(unit, service=replace(unit.service, pid_file="/run/d.pid", **hooks))


def test_forking_hands_over_to_the_daemon_once_its_command_exits_0():
    m = machine(forking_unit(), make_unit("web", requires=["d"]))
    m.handle(ev.StartAll(), 0.0)
    actions = m.handle(ev.Spawned("d", 10), 0.0)
    assert of(actions, ev.SetTimer) == [ev.SetTimer("d", ev.TimerKind.READY, 5.0)]
    actions = m.handle(ev.MainExited("d", 10, EXIT_0, frozenset({11})), 0.5)
    assert of(actions, ev.FindForkedMain) == [ev.FindForkedMain("d")]
    assert state(m, "d") == State.STARTING and spawned(actions) == []
    m.handle(ev.ForkedMainWaiting("d", "waiting for pid_file /run/d.pid"), 0.6)
    assert m.records["d"].step == "waiting for pid_file /run/d.pid"
    actions = m.handle(ev.ForkedMain("d", 11), 0.7)
    rec = m.records["d"]
    assert state(m, "d") == State.RUNNING and rec.pid == 11 and rec.leftovers == set() and rec.step == ""
    assert of(actions, ev.NewMainPid) == [ev.NewMainPid("d", 11)] and spawned(actions) == ["web"]
    m.handle(ev.MainExited("d", 11, EXIT_1), 2.0)
    assert state(m, "d") == State.BACKOFF  # supervised like any main process


def test_forking_fails_when_its_command_fails_or_its_main_process_is_refused():
    m = machine(forking_unit())
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("d", 10), 0.0)
    m.handle(ev.MainExited("d", 10, EXIT_1), 0.5)
    assert state(m, "d") == State.BACKOFF
    m.handle(ev.TimerFired("d", ev.TimerKind.RESTART), 1.0)
    m.handle(ev.Spawned("d", 20), 1.0)
    m.handle(ev.MainExited("d", 20, EXIT_0, frozenset({21})), 1.1)
    actions = m.handle(ev.ForkedMainFailed("d", "pid_file /run/d.pid names PID 1, which is never a unit's"), 1.2)
    assert state(m, "d") == State.STOPPING  # what it left goes first
    assert of(actions, ev.SignalUnit)
    m.handle(ev.LeftoverExited("d", 21), 1.3)
    rec = m.records["d"]
    assert state(m, "d") == State.BACKOFF and rec.failed_step == "command"


def test_forking_times_out_naming_what_it_waited_for():
    m = machine(forking_unit())
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("d", 10), 0.0)
    m.handle(ev.MainExited("d", 10, EXIT_0), 0.5)
    m.handle(ev.ForkedMainWaiting("d", "pid_file /run/d.pid is empty"), 0.6)
    actions = m.handle(ev.TimerFired("d", ev.TimerKind.READY), 5.0)
    assert ev.Log("unit d: not started within 5s: pid_file /run/d.pid is empty") in actions
    assert state(m, "d") == State.BACKOFF and m.records["d"].step == ""


# -- watchdog ---------------------------------------------------------------------------------

from pidone.units import HealthSection  # noqa: E402


def test_the_watchdog_is_a_timer_kept_by_watchdog_1_and_a_miss_is_a_failure():
    m = machine(make_unit("web", health=HealthSection(watchdog=2.0)))
    m.handle(ev.StartAll(), 0.0)
    actions = m.handle(ev.Spawned("web", 10), 0.0)
    assert ev.SetTimer("web", ev.TimerKind.WATCHDOG, 2.0) in actions
    actions = m.handle(ev.Notified("web", (("WATCHDOG", "1"),)), 1.5)
    assert of(actions, ev.SetTimer) == [ev.SetTimer("web", ev.TimerKind.WATCHDOG, 3.5)]
    actions = m.handle(ev.TimerFired("web", ev.TimerKind.WATCHDOG), 3.5)
    assert of(actions, ev.SignalUnit)[0] == ev.SignalUnit("web", signal.SIGABRT, True)
    assert state(m, "web") == State.STOPPING and m.records["web"].result == "watchdog"
    m.handle(ev.MainExited("web", 10, signal.SIGABRT), 3.6)
    assert state(m, "web") == State.BACKOFF


def test_no_watchdog_no_timer():
    m = machine(make_unit("web"))
    m.handle(ev.StartAll(), 0.0)
    actions = m.handle(ev.Spawned("web", 10), 0.0)
    assert not [a for a in of(actions, ev.SetTimer) if a.kind == ev.TimerKind.WATCHDOG]
    assert of(m.handle(ev.Notified("web", (("WATCHDOG", "1"),)), 1.0), ev.SetTimer) == []

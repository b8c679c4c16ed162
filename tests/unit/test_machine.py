"""The unit state machine as tables of (state, event) -> (state, actions),
with no processes: starting in dependency order, readiness, failures and
the restart policy, ordered shutdown, stop timeouts, critical units."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from pidone import events as ev
from pidone.events import TimerKind
from pidone.machine import KILL_WAIT, Machine, State
from pidone.units import (
    HealthSection,
    Probe,
    ProbeKind,
    ReadySection,
    RestartPolicy,
    RestartSection,
    ServiceSection,
    StopSection,
    UnitType,
    make_unit,
)

EXIT_0 = 0
EXIT_1 = 1 << 8
KILLED_TERM = signal.SIGTERM
KILLED_KILL = signal.SIGKILL
TCP = Probe(ProbeKind.TCP, "127.0.0.1:1", host="127.0.0.1", port=1)


def machine(*units, blocked=None) -> Machine:
    return Machine({u.name: u for u in units}, blocked)


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def spawned(actions):
    return [a.name for a in of(actions, ev.Spawn)]


def state(m, name):
    return m.records[name].state


def boot(m, now=0.0):
    return m.handle(ev.StartAll(), now)


def run(m, name, pid, now=0.0):
    return m.handle(ev.Spawned(name, pid), now)


# -- starting --------------------------------------------------------------


def test_independent_units_start_together_dependents_wait():
    m = machine(make_unit("db"), make_unit("cache"), make_unit("web", requires=["db"], wants=["cache"]))
    assert sorted(spawned(boot(m))) == ["cache", "db"]
    assert state(m, "web") == State.WAITING
    assert spawned(run(m, "db", 10)) == []  # cache has not settled yet
    assert spawned(run(m, "cache", 11)) == ["web"]


def test_a_unit_starts_as_soon_as_its_own_dependencies_settle():
    """Not when its whole batch is done: c (after a) starts before b is ready."""
    slow = make_unit("b", ready=ReadySection(probe=TCP, timeout=30))
    m = machine(make_unit("a"), slow, make_unit("c", after=["a"]), make_unit("d", after=["b"]))
    boot(m)
    assert spawned(run(m, "a", 1)) == ["c"]
    actions = run(m, "b", 2)
    assert spawned(actions) == [] and of(actions, ev.WatchReady) == [ev.WatchReady("b")]
    assert spawned(m.handle(ev.ReadyPassed("b"), 1.0)) == ["d"]


def test_simple_with_probe_is_starting_until_the_probe_passes():
    m = machine(make_unit("web", ready=ReadySection(probe=TCP, timeout=5)))
    boot(m)
    actions = run(m, "web", 7, now=100.0)
    assert state(m, "web") == State.STARTING
    assert ev.SetTimer("web", TimerKind.READY, 105.0) in actions
    actions = m.handle(ev.ReadyPassed("web"), 101.0)
    assert state(m, "web") == State.RUNNING
    assert ev.ClearTimer("web", TimerKind.READY) in actions and ev.UnwatchReady("web") in actions


def test_notify_unit_is_ready_on_ready_1_only():
    m = machine(make_unit("n", type=UnitType.NOTIFY))
    boot(m)
    run(m, "n", 5)
    m.handle(ev.Notified("n", (("STATUS", "warming"),)), 0.5)
    assert state(m, "n") == State.STARTING and m.records["n"].status_text == "warming"
    m.handle(ev.Notified("n", (("READY", "1"),)), 1.0)
    assert state(m, "n") == State.RUNNING


def test_oneshot_success_lets_dependents_start():
    m = machine(make_unit("migrate", type=UnitType.ONESHOT), make_unit("app", requires=["migrate"]))
    boot(m)
    assert spawned(run(m, "migrate", 3)) == []
    assert spawned(m.handle(ev.MainExited("migrate", 3, EXIT_0), 1.0)) == ["app"]
    assert state(m, "migrate") == State.EXITED


def test_failed_requirement_skips_dependents_but_not_wanters():
    m = machine(
        make_unit("migrate", type=UnitType.ONESHOT),
        make_unit("app", requires=["migrate"]),
        make_unit("report", requires=["app"]),
        make_unit("side", wants=["migrate"]),
    )
    boot(m)
    run(m, "migrate", 3)
    actions = m.handle(ev.MainExited("migrate", 3, EXIT_1), 1.0)
    assert state(m, "migrate") == State.FAILED  # oneshot: policy no
    assert state(m, "app") == State.SKIPPED and "requires migrate, which failed" in m.records["app"].reason
    assert state(m, "report") == State.SKIPPED and "was skipped" in m.records["report"].reason
    assert spawned(actions) == ["side"]


def test_blocked_units_are_skipped_and_the_rest_start():
    m = machine(make_unit("a", after=["b"]), make_unit("b", after=["a"]), make_unit("c"), make_unit("d", after=["a"]),
                blocked={"a": "in a dependency cycle", "b": "in a dependency cycle"})
    assert sorted(spawned(boot(m))) == ["c", "d"]
    assert state(m, "a") == State.SKIPPED and m.records["a"].reason == "in a dependency cycle"


def test_spawn_failure_without_a_process_is_a_failure():
    m = machine(make_unit("web", restart=RestartSection(policy=RestartPolicy.NO)))
    boot(m)
    actions = m.handle(ev.SpawnFailed("web", "unable to spawn /x: No such file or directory"), 0.0)
    assert state(m, "web") == State.FAILED
    assert any("unit web: unable to spawn /x" in a.text for a in of(actions, ev.Log))


def test_exec_failure_reported_by_the_child_fails_on_its_exit():
    m = machine(make_unit("web", restart=RestartSection(policy=RestartPolicy.NO)))
    boot(m)
    m.handle(ev.Spawned("web", 9, confirmed=False), 0.0)
    m.handle(ev.SpawnFailed("web", "unable to change to directory /nope: No such file or directory", 9), 0.0)
    assert state(m, "web") == State.STARTING
    m.handle(ev.MainExited("web", 9, 127 << 8), 0.0)
    assert state(m, "web") == State.FAILED
    assert "change to directory /nope" in m.records["web"].reason


# -- failing and restarting -----------------------------------------------------


def crashing(**restart):
    return make_unit("svc", restart=RestartSection(**{"policy": RestartPolicy.ON_FAILURE, **restart}))


def crash(m, pid, now, status=EXIT_1):
    run(m, "svc", pid, now)
    return m.handle(ev.MainExited("svc", pid, status), now)


def test_backoff_doubles_up_to_max_delay_then_fails():
    m = machine(crashing(delay=0.1, max_delay=0.5, max_retries=4))
    boot(m)
    now, delays = 0.0, []
    for pid in range(100, 105):
        actions = crash(m, pid, now)
        timers = of(actions, ev.SetTimer)
        if not timers:
            break
        delays.append(round(timers[0].deadline - now, 6))
        now = timers[0].deadline
        m.handle(ev.TimerFired("svc", TimerKind.RESTART), now)
    assert delays == [0.1, 0.2, 0.4, 0.5]
    assert state(m, "svc") == State.FAILED
    assert "gave up after 4 restarts" in m.records["svc"].reason


def test_endless_retries_keep_the_delay_at_max_delay():
    """max_retries = 0 never gives up: after thousands of failures the delay
    is still max_delay (2**failures would overflow a float)."""
    m = machine(crashing(delay=0.1, max_delay=30, max_retries=0))
    boot(m)
    now, delays = 0.0, []
    for pid in range(1, 2001):
        actions = crash(m, pid, now)
        deadline = of(actions, ev.SetTimer)[0].deadline
        delays.append(deadline - now)
        now = deadline
        m.handle(ev.TimerFired("svc", TimerKind.RESTART), now)
    assert state(m, "svc") == State.STARTING
    assert m.records["svc"].failures == 2000
    assert delays[-1] == pytest.approx(30) and max(delays) == pytest.approx(30)


@pytest.mark.parametrize(
    "policy, status, restarts",
    [
        (RestartPolicy.NO, EXIT_1, False),
        (RestartPolicy.NO, EXIT_0, False),
        (RestartPolicy.ON_FAILURE, EXIT_1, True),
        (RestartPolicy.ON_FAILURE, KILLED_KILL, True),  # a signal we did not send
        (RestartPolicy.ON_FAILURE, EXIT_0, False),
        (RestartPolicy.ALWAYS, EXIT_0, True),
        (RestartPolicy.ALWAYS, EXIT_1, True),
    ],
)
def test_policy_by_exit_kind(policy, status, restarts):
    m = machine(crashing(policy=policy))
    boot(m)
    crash(m, 5, 0.0, status)
    expected = State.BACKOFF if restarts else (State.EXITED if status == EXIT_0 else State.FAILED)
    assert state(m, "svc") == expected


def test_a_long_run_resets_the_count_and_the_delay():
    m = machine(crashing(delay=1, max_delay=100, reset_after=60))
    boot(m)
    crash(m, 1, 0.0)
    m.handle(ev.TimerFired("svc", TimerKind.RESTART), 1.0)
    run(m, "svc", 2, 1.0)
    actions = m.handle(ev.MainExited("svc", 2, EXIT_1), 100.0)  # ran 99 s
    assert of(actions, ev.SetTimer)[0].deadline == 101.0  # back to `delay`
    assert m.records["svc"].failures == 1


def test_ready_timeout_stops_the_process_then_applies_the_policy():
    unit = make_unit("web", ready=ReadySection(probe=TCP, timeout=5), stop=StopSection(signal=signal.SIGINT, timeout=3))
    m = machine(unit)
    boot(m)
    run(m, "web", 8)
    actions = m.handle(ev.TimerFired("web", TimerKind.READY), 5.0)
    assert state(m, "web") == State.STOPPING
    assert ev.SignalUnit("web", signal.SIGINT) in actions and ev.SetTimer("web", TimerKind.STOP, 8.0) in actions
    m.handle(ev.MainExited("web", 8, signal.SIGINT), 5.1)
    assert state(m, "web") == State.BACKOFF
    assert m.records["web"].failures == 1


def test_health_failure_restarts_a_running_unit():
    unit = make_unit("web", health=HealthSection(probe=TCP, interval=1, timeout=1, retries=2))
    m = machine(unit)
    boot(m)
    assert ev.WatchHealth("web") in run(m, "web", 8)
    actions = m.handle(ev.HealthFailed("web", "refused"), 10.0)
    assert ev.SignalUnit("web", signal.SIGTERM) in actions and ev.UnwatchHealth("web") in actions
    m.handle(ev.MainExited("web", 8, KILLED_TERM), 10.1)
    assert state(m, "web") == State.BACKOFF


def test_critical_unit_failing_for_good_asks_to_exit_with_its_status():
    unit = replace(make_unit("job", type=UnitType.ONESHOT),
                   service=ServiceSection(command=("x",), type=UnitType.ONESHOT, critical=True))
    m = machine(unit)
    boot(m)
    run(m, "job", 4)
    actions = m.handle(ev.MainExited("job", 4, 42 << 8), 1.0)
    assert of(actions, ev.Exit) == [ev.Exit(42, "critical unit job failed: exited with status 42")]


def test_a_unit_that_failed_for_good_stops_what_requires_it():
    m = machine(crashing(max_retries=1), make_unit("app", requires=["svc"]))
    boot(m)
    run(m, "svc", 1)
    run(m, "app", 2)
    m.handle(ev.MainExited("svc", 1, EXIT_1), 1.0)
    m.handle(ev.TimerFired("svc", TimerKind.RESTART), 2.0)
    run(m, "svc", 3, 2.0)
    actions = m.handle(ev.MainExited("svc", 3, EXIT_1), 3.0)
    assert state(m, "svc") == State.FAILED
    assert ev.SignalUnit("app", signal.SIGTERM) in actions
    assert m.records["app"].reason == "requires svc, which failed"


# -- stopping ------------------------------------------------------------------


def chain():
    return machine(make_unit("a"), make_unit("b", requires=["a"]), make_unit("c", after=["b"]), make_unit("x"))


def start_chain(m):
    boot(m)
    for pid, name in enumerate(["a", "x", "b", "c"], start=1):
        run(m, name, pid)


def test_shutdown_runs_in_reverse_dependency_order_independents_in_parallel():
    m = chain()
    start_chain(m)
    actions = m.handle(ev.Shutdown(), 10.0)
    assert sorted(a.name for a in of(actions, ev.SignalUnit)) == ["c", "x"]
    assert of(m.handle(ev.MainExited("x", 2, KILLED_TERM), 10.1), ev.SignalUnit) == []
    assert [a.name for a in of(m.handle(ev.MainExited("c", 4, KILLED_TERM), 10.2), ev.SignalUnit)] == ["b"]
    assert [a.name for a in of(m.handle(ev.MainExited("b", 3, EXIT_0), 10.3), ev.SignalUnit)] == ["a"]
    actions = m.handle(ev.MainExited("a", 1, KILLED_TERM), 10.4)
    assert of(actions, ev.AllStopped) == [ev.AllStopped(killed_any=False)]
    assert all(r.state == State.INACTIVE for r in m.records.values())


def test_a_stop_timeout_kills_and_is_remembered():
    m = machine(make_unit("stubborn", stop=StopSection(timeout=2)))
    boot(m)
    run(m, "stubborn", 1)
    m.handle(ev.Shutdown(), 0.0)
    actions = m.handle(ev.TimerFired("stubborn", TimerKind.STOP), 2.0)
    assert ev.KillUnit("stubborn") in actions
    assert ev.SetTimer("stubborn", TimerKind.STOP, 2.0 + KILL_WAIT) in actions
    actions = m.handle(ev.MainExited("stubborn", 1, KILLED_KILL), 2.1)
    assert of(actions, ev.AllStopped) == [ev.AllStopped(killed_any=True)]


def test_a_process_that_survives_sigkill_is_given_up_on():
    m = machine(make_unit("d", stop=StopSection(timeout=1)))
    boot(m)
    run(m, "d", 1)
    m.handle(ev.Shutdown(), 0.0)
    m.handle(ev.TimerFired("d", TimerKind.STOP), 1.0)
    actions = m.handle(ev.TimerFired("d", TimerKind.STOP), 1.0 + KILL_WAIT)
    assert of(actions, ev.AllStopped)
    assert any("survived SIGKILL" in a.text for a in of(actions, ev.Log))


def test_death_by_our_own_stop_signal_is_not_a_failure():
    m = machine(crashing())
    boot(m)
    run(m, "svc", 1)
    m.handle(ev.StopUnit("svc"), 0.0)
    m.handle(ev.MainExited("svc", 1, KILLED_TERM), 0.1)
    assert state(m, "svc") == State.INACTIVE and m.records["svc"].failures == 0


def test_stopping_a_unit_stops_what_requires_it_first():
    m = chain()
    start_chain(m)
    actions = m.handle(ev.StopUnit("a"), 1.0)
    assert [a.name for a in of(actions, ev.SignalUnit)] == ["b"]  # c only wants order
    actions = m.handle(ev.MainExited("b", 3, KILLED_TERM), 1.1)
    assert [a.name for a in of(actions, ev.SignalUnit)] == ["a"]
    assert state(m, "c") == State.RUNNING


def test_waiting_and_backoff_units_stop_at_once_on_shutdown():
    m = machine(crashing(delay=10), make_unit("after", requires=["svc"]))
    boot(m)
    crash(m, 1, 0.0)
    actions = m.handle(ev.Shutdown(), 1.0)
    assert ev.ClearTimer("svc", TimerKind.RESTART) in actions
    assert of(actions, ev.AllStopped)


def test_leftovers_keep_a_unit_stopping_until_they_exit():
    m = machine(make_unit("daemon", restart=RestartSection(policy=RestartPolicy.NO)))
    boot(m)
    run(m, "daemon", 1)
    m.handle(ev.MainExited("daemon", 1, EXIT_0, leftovers=frozenset({50})), 1.0)
    assert state(m, "daemon") == State.EXITED and m.records["daemon"].leftovers == {50}
    actions = m.handle(ev.Shutdown(), 2.0)
    assert ev.SignalUnit("daemon", signal.SIGTERM) in actions
    assert not of(m.handle(ev.LeftoverExited("daemon", 51), 2.1), ev.AllStopped)  # not one of its own
    assert of(m.handle(ev.LeftoverExited("daemon", 50), 2.2), ev.AllStopped)


def test_a_snapshot_is_plain_data_and_restores_every_field():
    m = machine(make_unit("daemon", restart=RestartSection(policy=RestartPolicy.NO)), crashing())
    boot(m)
    run(m, "daemon", 1)
    run(m, "svc", 2)
    m.handle(ev.MainExited("daemon", 1, EXIT_0, leftovers=frozenset({52, 50})), 1.0)
    m.handle(ev.MainExited("svc", 2, EXIT_1), 1.5)
    data = m.snapshot()

    def plain(value):
        if isinstance(value, (list, dict)):
            items = value.values() if isinstance(value, dict) else value
            return all(plain(item) for item in items)
        return type(value) in (str, int, float, bool, type(None))  # exactly: no Enum, no set

    assert plain(data), data
    assert data["records"]["daemon"]["leftovers"] == [50, 52]
    again = machine(make_unit("daemon", restart=RestartSection(policy=RestartPolicy.NO)), crashing())
    assert again.restore(data) == []
    for name in ("daemon", "svc"):
        assert again.records[name] == m.records[name]


def test_a_late_exit_of_an_old_process_is_ignored():
    m = machine(crashing())
    boot(m)
    run(m, "svc", 1)
    m.handle(ev.MainExited("svc", 999, EXIT_1), 0.0)
    assert state(m, "svc") == State.RUNNING


def test_describe_status():
    from pidone.machine import describe_status

    assert describe_status(3 << 8) == ("exited with status 3", 3)
    assert describe_status(signal.SIGKILL) == ("killed by SIGKILL", 137)
    assert os.WIFSIGNALED(signal.SIGKILL)


def test_a_stop_during_a_reload_restart_wins():
    """A reload changes a unit that the user then stops before its restart
    is done: it must stay down (with the new definition), not come back."""
    from pidone.graph import diff

    old = {"svc": make_unit("svc", ["sleep", "1"]), "dep": make_unit("dep", requires=["svc"])}
    new = {"svc": make_unit("svc", ["sleep", "2"]), "dep": old["dep"]}
    m = Machine(old)
    boot(m)
    run(m, "svc", 1)
    run(m, "dep", 2)
    m.handle(ev.ApplyPlan(new, {}, diff(old, new)), 1.0)  # dep stops first; svc waits
    m.handle(ev.StopUnit("svc"), 1.1)
    m.handle(ev.MainExited("dep", 2, KILLED_TERM), 1.2)
    actions = m.handle(ev.MainExited("svc", 1, KILLED_TERM), 1.3)
    assert spawned(actions) == []
    assert state(m, "svc") == State.INACTIVE and m.records["svc"].unit.service.command == ("sleep", "2")
    assert state(m, "dep") == State.INACTIVE

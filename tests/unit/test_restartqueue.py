"""The global restart queue, driven through the pure machine: policy restarts
past their backoff wait in QUEUED for a slot, are released by priority
(required and critical first, then by name), never wait longer than their
bound, leave the queue when stopped, and survive a snapshot; `[restart]
jitter` draws from the injected random source."""

from __future__ import annotations

import random
from dataclasses import replace

from pidone import events as ev
from pidone.events import TimerKind
from pidone.machine import Machine, State
from pidone.restartqueue import NO_TIMEOUT_WAIT, RestartQueue, priority
from pidone.units import (
    Probe,
    ProbeKind,
    ReadySection,
    RestartPolicy,
    RestartSection,
    UnitType,
    make_unit,
)

EXIT_1 = 1 << 8
TCP = Probe(ProbeKind.TCP, "127.0.0.1:1", host="127.0.0.1", port=1)
RESTART = RestartSection(policy=RestartPolicy.ALWAYS, delay=1.0, max_delay=1.0, max_retries=0)


def unit(name, *, critical=False, timeout=30.0, **kw):
    u = make_unit(name, ready=ReadySection(probe=TCP, timeout=timeout), restart=RESTART, **kw)
    return replace(u, service=replace(u.service, critical=critical)) if critical else u


def machine(*units, limit=1, rng=None) -> Machine:
    return Machine({u.name: u for u in units}, max_restarting=limit, random_source=rng)


def spawned(actions):
    return [a.name for a in actions if isinstance(a, ev.Spawn)]


def up(m, now=0.0):
    """Boot (not throttled) and make every unit ready; pid = 100 + index."""
    todo = spawned(m.handle(ev.StartAll(), now))
    names = sorted(m.records)
    while todo:
        name = todo.pop(0)
        m.handle(ev.Spawned(name, 100 + names.index(name)), now)
        todo += spawned(m.handle(ev.ReadyPassed(name), now))
    assert all(rec.state == State.RUNNING for rec in m.records.values())
    assert m.queue.starting == {}  # boot is not throttled


def crash(m, names, now):
    for name in names:
        m.handle(ev.MainExited(name, m.records[name].pid, EXIT_1), now)
        assert m.records[name].state == State.BACKOFF


def fire(m, names, now, kind=TimerKind.RESTART):
    out = []
    for name in names:
        out += spawned(m.handle(ev.TimerFired(name, kind), now))
    return out


def ready(m, name, now, pid=500):
    acts = m.handle(ev.Spawned(name, pid), now)
    return spawned(acts + m.handle(ev.ReadyPassed(name), now))


def states(m):
    return {name: rec.state for name, rec in m.records.items()}


def test_a_single_restart_with_a_free_slot_spawns_at_once():
    m = machine(unit("a"))
    up(m)
    crash(m, ["a"], 1.0)
    acts = m.handle(ev.TimerFired("a", TimerKind.RESTART), 2.0)
    assert spawned(acts) == ["a"] and m.records["a"].state == State.STARTING
    assert not any(isinstance(a, ev.SetTimer) and a.kind == TimerKind.QUEUE for a in acts)  # a ready timeout frees it
    assert m.queue.starting == {"a": False} and len(m.queue) == 0
    ready(m, "a", 2.1)
    assert m.queue.starting == {}  # ready: its slot is free


def test_storm_releases_one_at_a_time_in_priority_order():
    """db is required by two units, cache by one, audit is critical, the
    rest by name; the first restart due takes the free slot, whatever it is."""
    m = machine(unit("zz"), unit("web", requires=["db", "cache"]), unit("api", requires=["db"]),
                unit("db"), unit("cache"), unit("audit", critical=True), unit("b-worker"))
    up(m)
    names = ["zz", "b-worker", "audit", "cache", "web", "api", "db"]  # arrival order: reverse priority
    crash(m, names, 1.0)
    assert fire(m, names, 2.0) == ["zz"]
    # web and api wait for db in WAITING, holding nothing; they queue once it is up.
    assert m.records["web"].state == m.records["api"].state == State.WAITING
    assert m.queue.order() == ["db", "cache", "audit", "b-worker"]
    order, now, pid = [], 2.0, 600
    current = "zz"
    while current:
        now += 0.5
        pid += 1
        nxt = ready(m, current, now, pid)
        assert len(nxt) <= 1  # never more than one starting
        current = nxt[0] if nxt else None
        if current:
            order.append(current)
    assert order == ["db", "cache", "audit", "api", "b-worker", "web"]
    assert all(s == State.RUNNING for s in states(m).values())


def test_the_same_storm_gives_the_same_order():
    def run():
        m = machine(*(unit(f"u{i}") for i in range(8)), limit=2)
        up(m)
        names = [f"u{i}" for i in (5, 3, 7, 1, 0, 6, 2, 4)]
        crash(m, names, 1.0)
        fire(m, names, 2.0)
        return m.queue.order()

    assert run() == run() == ["u0", "u1", "u2", "u4", "u6", "u7"]  # u5, u3 took the two slots


def test_a_failure_or_a_ready_timeout_frees_the_slot():
    m = machine(unit("a"), unit("b"), unit("c"))
    up(m)
    crash(m, ["a", "b", "c"], 1.0)
    assert fire(m, ["a", "b", "c"], 2.0) == ["a"]
    m.handle(ev.Spawned("a", 700), 2.0)
    # a dies before ready: its slot goes to b at once.
    assert spawned(m.handle(ev.MainExited("a", 700, EXIT_1), 2.5)) == ["b"]
    assert m.records["a"].state == State.BACKOFF
    m.handle(ev.Spawned("b", 701), 2.5)
    # b's ready timeout passes: it fails (STOPPING), and c gets the slot.
    acts = m.handle(ev.TimerFired("b", TimerKind.READY), 32.5)
    assert m.records["b"].state == State.STOPPING and spawned(acts) == ["c"]


def test_a_slot_without_a_ready_timeout_is_held_at_most_the_bound():
    m = machine(unit("a", timeout=0), unit("b"))
    up(m)
    crash(m, ["a", "b"], 1.0)
    acts = m.handle(ev.TimerFired("a", TimerKind.RESTART), 2.0)
    assert ev.SetTimer("a", TimerKind.QUEUE, 2.0 + NO_TIMEOUT_WAIT) in acts
    assert fire(m, ["b"], 2.0) == [] and m.records["b"].state == State.QUEUED
    m.handle(ev.Spawned("a", 700), 2.0)
    # b's own bound (its ready timeout, 30 s) comes first: released past the limit.
    assert fire(m, ["b"], 32.0, TimerKind.QUEUE) == ["b"]
    assert set(m.queue.starting) == {"a", "b"}
    assert fire(m, ["a"], 2.0 + NO_TIMEOUT_WAIT, TimerKind.QUEUE) == []
    assert m.records["a"].state == State.STARTING and set(m.queue.starting) == {"b"}


def test_no_restart_waits_past_its_bound():
    m = machine(unit("slow"), unit("q", timeout=5.0))
    up(m)
    crash(m, ["slow", "q"], 1.0)
    assert fire(m, ["slow", "q"], 2.0) == ["slow"]
    m.handle(ev.Spawned("slow", 700), 2.0)
    assert m.records["q"].state == State.QUEUED
    # Its bound is its ready timeout (5 s) past the end of its backoff.
    acts = m.handle(ev.TimerFired("q", TimerKind.QUEUE), 7.0)
    assert spawned(acts) == ["q"] and m.records["q"].state == State.STARTING
    assert any("waited its bound of 5s" in a.text for a in acts if isinstance(a, ev.Log))
    assert set(m.queue.starting) == {"slow", "q"}  # past the limit of 1: the bound wins
    # A stale QUEUE timer of a unit no longer queued does nothing.
    assert fire(m, ["q"], 8.0, TimerKind.QUEUE) == [] and m.records["q"].state == State.STARTING


def test_stop_while_queued_never_starts():
    m = machine(unit("a"), unit("b"))
    up(m)
    crash(m, ["a", "b"], 1.0)
    fire(m, ["a", "b"], 2.0)
    acts = m.handle(ev.StopUnit("b"), 2.1)
    assert m.records["b"].state == State.INACTIVE and ev.ClearTimer("b", TimerKind.QUEUE) in acts
    assert len(m.queue) == 0
    assert ready(m, "a", 3.0) == []  # the freed slot releases nobody
    assert fire(m, ["b"], 40.0, TimerKind.QUEUE) == [] and m.records["b"].state == State.INACTIVE


def test_an_explicit_start_or_restart_skips_the_queue():
    m = machine(unit("a"), unit("b"), unit("c"))
    up(m)
    crash(m, ["a", "b", "c"], 1.0)
    fire(m, ["a", "b", "c"], 2.0)
    assert spawned(m.handle(ev.StartUnit("b"), 2.1)) == ["b"]
    assert spawned(m.handle(ev.RestartUnit("c"), 2.1)) == ["c"]
    assert len(m.queue) == 0 and set(m.queue.starting) == {"a"}  # the user's starts hold no slot


def test_shutdown_empties_the_queue():
    m = machine(unit("a"), unit("b"))
    up(m)
    crash(m, ["a", "b"], 1.0)
    fire(m, ["a", "b"], 2.0)
    m.handle(ev.Shutdown(), 2.1)
    assert m.records["b"].state == State.INACTIVE and len(m.queue) == 0


def test_a_reload_restart_of_a_queued_unit_is_not_queued():
    from pidone import graph

    old = {u.name: u for u in (unit("a"), unit("b"))}
    m = Machine(old, max_restarting=1)
    up(m)
    crash(m, ["a", "b"], 1.0)
    fire(m, ["a", "b"], 2.0)
    new = dict(old, b=replace(old["b"], description="changed"))
    acts = m.handle(ev.ApplyPlan(new, {}, graph.diff(old, new)), 2.1)
    assert spawned(acts) == ["b"] and len(m.queue) == 0


def test_unlimited_queues_nothing_and_counts_nothing():
    m = machine(*(unit(f"u{i}") for i in range(5)), limit=0)
    up(m)
    names = [f"u{i}" for i in range(5)]
    crash(m, names, 1.0)
    assert fire(m, names, 2.0) == names
    assert m.queue.starting == {} and len(m.queue) == 0


def test_waiting_for_dependencies_holds_no_slot():
    """A released unit whose `requires` is not up waits in WAITING without
    a slot, or the unit it waits for could never get one."""
    m = machine(unit("db"), unit("web", requires=["db"]), unit("x"))
    up(m)
    crash(m, ["x", "db", "web"], 1.0)
    assert fire(m, ["x", "web", "db"], 2.0) == ["x"]
    assert m.queue.order() == ["db"] and m.records["web"].state == State.WAITING
    assert ready(m, "x", 2.5) == ["db"]
    assert ready(m, "db", 3.0, 701) == ["web"]


def test_the_queue_survives_a_snapshot():
    units = [unit("a"), unit("b"), unit("c", critical=True)]
    m = machine(*units)
    up(m)
    crash(m, ["a", "b", "c"], 1.0)
    fire(m, ["a", "b", "c"], 2.0)
    data = m.snapshot()
    fresh = machine(*units)
    assert fresh.restore(data) == []
    assert fresh.records["b"].state == State.QUEUED and fresh.queue.order() == ["c", "b"]
    assert fresh.queue.waiting["b"][1] == 2.0 and set(fresh.queue.starting) == {"a"}
    fresh.handle(ev.Spawned("a", 700), 3.0)
    assert spawned(fresh.handle(ev.ReadyPassed("a"), 3.0)) == ["c"]


def test_priority_key():
    db = make_unit("db")
    assert priority(db, 3) < priority(db, 1) < priority(replace(db, name="x"), 0)
    crit = unit("z", critical=True)
    assert priority(crit, 0) < priority(make_unit("a"), 0)
    assert priority(make_unit("a"), 0) < priority(make_unit("b"), 0)


def test_queue_heap_ignores_removed_entries():
    q = RestartQueue(1)
    q.push("b", (1, "b"), 0.0)
    q.push("a", (0, "a"), 0.0)
    q.remove("a")
    q.push("c", (2, "c"), 0.0)
    assert q.pop() == "b" and q.pop() == "c" and q.pop() is None


def test_jitter_comes_from_the_injected_source():
    jittery = replace(RESTART, jitter=2.0)
    units = [make_unit(f"u{i}", restart=jittery) for i in range(3)]

    def deadlines(seed):
        m = Machine({u.name: u for u in units}, random_source=random.Random(seed).random)
        m.handle(ev.StartAll(), 0.0)
        out = []
        for i, u in enumerate(units):
            m.handle(ev.Spawned(u.name, 10 + i), 0.0)
            acts = m.handle(ev.MainExited(u.name, 10 + i, EXIT_1), 5.0)
            out += [a.deadline for a in acts if isinstance(a, ev.SetTimer) and a.kind == TimerKind.RESTART]
        return out

    first = deadlines(7)
    assert first == deadlines(7)  # seeded: the same draws
    assert first != deadlines(8)
    expected = [5.0 + 1.0 + 2.0 * r for r in (lambda g: [g() for _ in range(3)])(random.Random(7).random)]
    assert first == expected
    assert all(6.0 <= d < 8.0 for d in first)


def test_no_jitter_keeps_the_timer_exact_and_draws_nothing():
    def boom():
        raise AssertionError("no jitter: no draw")

    m = Machine({"a": make_unit("a", restart=RESTART)}, random_source=boom)
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("a", 10), 0.0)
    assert ev.SetTimer("a", TimerKind.RESTART, 6.0) in m.handle(ev.MainExited("a", 10, EXIT_1), 5.0)


def test_oneshot_type_still_restarts_through_the_queue():
    one = make_unit("o", type=UnitType.ONESHOT, restart=RESTART)
    m = Machine({"o": one, "p": unit("p")}, max_restarting=1)
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.Spawned("o", 10), 0.0)
    m.handle(ev.Spawned("p", 11), 0.0)
    m.handle(ev.ReadyPassed("p"), 0.0)
    crash(m, ["p"], 1.0)
    m.handle(ev.MainExited("o", 10, EXIT_1), 1.0)
    assert fire(m, ["p"], 2.0) == ["p"]
    assert fire(m, ["o"], 2.0) == [] and m.records["o"].state == State.QUEUED


def test_the_max_restarting_option_and_variable():
    import pytest

    from pidone.cli import _parse_options
    from pidone.daemon import DEFAULT_MAX_RESTARTING

    assert _parse_options([], {}).max_restarting == DEFAULT_MAX_RESTARTING
    assert _parse_options([], {"PIDONE_MAX_RESTARTING": "0"}).max_restarting == 0
    assert _parse_options(["--max-restarting", "3"], {"PIDONE_MAX_RESTARTING": "9"}).max_restarting == 3  # the flag wins
    assert _parse_options(["--max-restarting=12"], {}).max_restarting == 12
    for bad in ("-1", "many", "1.5", "99999999"):
        with pytest.raises(ValueError, match=r"--max-restarting must be a whole number from 0 \(unlimited\)"):
            _parse_options(["--max-restarting", bad], {})


def test_restart_jitter_in_unit_files():
    import pytest

    from pidone.errors import ConfigError
    from pidone.loader import parse_unit, unit_to_dict

    text = b'[service]\ncommand = ["app"]\n[restart]\njitter = "1.5s"\n'
    parsed = parse_unit("web", text, "web.toml")
    assert parsed.restart.jitter == 1.5
    assert unit_to_dict(parsed)["restart"]["jitter"] == 1.5  # carried across a re-exec
    assert parse_unit("web", b'[service]\ncommand = ["app"]\n', "web.toml").restart.jitter == 0.0
    with pytest.raises(ConfigError, match="jitter"):
        parse_unit("web", b'[service]\ncommand = ["app"]\n[restart]\njitter = -1\n', "web.toml")

"""Every unit on a dependency cycle is named: each strongly connected
component is reported with one cycle through each of its members, and each
member is held back with a reason naming a cycle it is on."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from pidone import graph
from pidone.units import make_unit


def units_of(**requires: list[str]):
    return {name: make_unit(name, path=f"/u/{name}.toml", requires=deps) for name, deps in requires.items()}


def test_a_tangle_of_three_names_all_three():
    units = units_of(a=["b"], b=["a", "c"], c=["b"])
    errors, _ = graph.check(units)
    assert [str(problem) for problem in errors] == [
        "/u/a.toml: [dependencies]: dependency cycle: a -> b -> a (in a tangle of 3 units: a, b, c)",
        "/u/b.toml: [dependencies]: dependency cycle: b -> c -> b (in a tangle of 3 units: a, b, c)",
    ]


def test_a_simple_cycle_is_named_without_a_tangle():
    errors, _ = graph.check(units_of(a=["b"], b=["c"], c=["a"], d=["d"]))
    assert [problem.message for problem in errors] == [
        "dependency cycle: a -> b -> c -> a",
        "dependency cycle: d -> d",
    ]


def test_every_member_is_held_back_with_a_cycle_through_it():
    units = units_of(a=["b"], b=["a", "c"], c=["b"], d=["e"], e=["d"], f=["a"], g=[])
    assert graph.cycle_reasons(units) == {
        "a": "in a dependency cycle: a -> b -> a",
        "b": "in a dependency cycle: a -> b -> a",
        "c": "in a dependency cycle: b -> c -> b",
        "d": "in a dependency cycle: d -> e -> d",
        "e": "in a dependency cycle: d -> e -> d",
    }
    assert graph.blocked_by_missing(units) == {"f": "requires 'a', which is in a dependency cycle"}


def test_a_figure_eight_joined_at_one_unit():
    # No simple cycle holds both a and c: each gets its own.
    units = units_of(a=["x"], x=["a", "c"], c=["x"])
    assert graph.cycles(units) == [["a", "x", "a"], ["c", "x", "c"]]


def test_the_tangle_lists_at_most_ten_names():
    names = [f"leaf{i:02d}" for i in range(12)]
    units = units_of(hub=names, **{name: ["hub"] for name in names})
    errors, _ = graph.check(units)
    assert len(errors) == 12
    assert errors[0].message == (
        "dependency cycle: hub -> leaf00 -> hub (in a tangle of 13 units: "
        "hub, leaf00, leaf01, leaf02, leaf03, leaf04, leaf05, leaf06, leaf07, leaf08, ...)"
    )


def test_big_tangles_need_no_recursion():
    # A ring of 10,000, a star of 10,000 leaves, a dense knot: all iterative.
    ring = [f"r{i:05d}" for i in range(10_000)]
    units = {name: make_unit(name, after=[ring[(i + 1) % len(ring)]]) for i, name in enumerate(ring)}
    assert graph.cycles(units) == [[*ring, ring[0]]]
    # status carries one reason per unit: a long cycle is shortened around each unit.
    reasons = graph.cycle_reasons(units)
    assert reasons["r05000"] == "in a dependency cycle of 10000 units: r05000 -> r05001 -> r05002 -> ... -> r04999 -> r05000"
    assert reasons["r00000"] == "in a dependency cycle of 10000 units: r00000 -> r00001 -> r00002 -> ... -> r09999 -> r00000"
    assert max(map(len, reasons.values())) < 120
    leaves = [f"s{i:05d}" for i in range(10_000)]
    units = {name: make_unit(name, after=["hub"]) for name in leaves}
    units["hub"] = make_unit("hub", after=leaves)
    reasons = graph.cycle_reasons(units)
    assert len(reasons) == 10_001 and reasons["s09999"] == "in a dependency cycle: hub -> s09999 -> hub"
    knot = [f"k{i:03d}" for i in range(150)]
    units = {name: make_unit(name, after=[other for other in knot if other != name]) for name in knot}
    assert set(graph.cycle_reasons(units)) == set(knot)


def reaches_itself(units, start: str) -> bool:
    """True when `start` is on a cycle: it can be reached from itself in one step or more (plain BFS)."""
    seen: set[str] = set()
    queue = deque(dep for dep in units[start].ordering if dep in units)
    while queue:
        name = queue.popleft()
        if name == start:
            return True
        if name not in seen:
            seen.add(name)
            queue.extend(dep for dep in units[name].ordering if dep in units)
    return False


@st.composite
def digraphs(draw):
    """A random graph of up to 14 units, self-loops and missing targets included."""
    size = draw(st.integers(1, 14))
    names = [f"n{i}" for i in range(size)]
    targets = st.lists(st.sampled_from([*names, "ghost"]), max_size=4, unique=True)
    return {name: make_unit(name, requires=draw(targets), after=draw(targets)) for name in names}


@given(digraphs())
@settings(max_examples=300, deadline=None)
def test_exactly_the_units_on_a_cycle_are_reported_each_on_a_real_cycle(units):
    on_a_cycle = {name for name in units if reaches_itself(units, name)}
    cycles = graph.cycles(units)
    reported = {name for path in cycles for name in path}
    assert reported == on_a_cycle == graph.cyclic_units(units)
    for path in cycles:
        assert path[0] == path[-1] and len(set(path[:-1])) == len(path) - 1  # closed, and simple
        for here, there in zip(path, path[1:]):
            assert there in units[here].ordering
    reasons = graph.cycle_reasons(units)
    assert set(reasons) == on_a_cycle
    for name, reason in reasons.items():
        if reason.startswith("in a dependency cycle: "):
            path = reason.removeprefix("in a dependency cycle: ").split(" -> ")
            assert name in path and path in cycles and len(path) <= 11
        else:  # a long one, shortened around the unit: name -> next -> next -> ... -> previous -> name
            path = reason.split(": ", 1)[1].split(" -> ")
            assert path[0] == path[-1] == name and path[3] == "..."
            assert any(len(cycle) > 11 and name in cycle for cycle in cycles)
    named = [p.message.split(" (")[0].removeprefix("dependency cycle: ").split(" -> ")
             for p in graph.check(units)[0] if p.message.startswith("dependency cycle: ")]
    assert named == cycles

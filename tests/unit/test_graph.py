"""The dependency graph: missing targets, cycles named in full, start and stop batches, and diff for reload."""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pidone import graph
from pidone.errors import ConfigError, GraphError
from pidone.units import StopSection, make_unit


def units_of(**deps: list[str] | dict[str, list[str]]):
    """Return units by name; a list value is `requires`, a dict gives requires/wants/after."""
    out = {}
    for name, spec in deps.items():
        kwargs = spec if isinstance(spec, dict) else {"requires": spec}
        out[name] = make_unit(name, path=f"/u/{name}.toml", **kwargs)
    return out


def messages(problems):
    return [str(problem) for problem in problems]


# --- check -------------------------------------------------------------------


def test_a_valid_graph_has_no_problems():
    assert graph.check(units_of(web=["db"], db=[], worker={"wants": ["web"], "after": ["db"]})) == ([], [])


def test_a_missing_requires_is_an_error_and_a_missing_wants_or_after_a_warning():
    units = units_of(web={"requires": ["db"], "wants": ["cache"], "after": ["migrate"]})
    errors, warnings = graph.check(units)
    assert messages(errors) == ["/u/web.toml: [dependencies] requires: missing dependency 'db'"]
    assert messages(warnings) == [
        "/u/web.toml: [dependencies] wants: warning: missing dependency 'cache', ignored",
        "/u/web.toml: [dependencies] after: warning: missing dependency 'migrate', ignored",
    ]


def test_a_missing_dependency_suggests_a_close_name():
    errors, _ = graph.check(units_of(web=["postgress"], postgres=[]))
    assert messages(errors) == [
        "/u/web.toml: [dependencies] requires: missing dependency 'postgress' (did you mean 'postgres'?)"
    ]


def test_a_unit_whose_file_is_invalid_is_not_missing():
    assert graph.check(units_of(web=["db"]), invalid={"db"}) == ([], [])


@pytest.mark.parametrize(
    ("units", "cycle"),
    [
        (units_of(a=["a"]), "a -> a"),
        (units_of(a=["b"], b=["a"]), "a -> b -> a"),
        (units_of(a=["b"], b=["c"], c=["a"]), "a -> b -> c -> a"),
        (units_of(a={"after": ["b"]}, b={"wants": ["c"]}, c=["a"]), "a -> b -> c -> a"),
        (units_of(c=["a"], b=["c"], a=["b"]), "a -> b -> c -> a"),
    ],
)
def test_a_cycle_is_an_error_naming_the_whole_path(units, cycle):
    errors, _ = graph.check(units)
    assert messages(errors) == [f"/u/a.toml: [dependencies]: dependency cycle: {cycle}"]
    with pytest.raises(GraphError) as caught:
        graph.start_batches(units)
    assert str(caught.value) == f"/u/a.toml: [dependencies]: dependency cycle: {cycle}"
    assert isinstance(caught.value, ConfigError)


def test_a_ring_of_1000_is_printed_in_full_quickly():
    names = [f"r{i:04d}" for i in range(1000)]
    units = {name: make_unit(name, after=[names[(i + 1) % 1000]]) for i, name in enumerate(names)}
    started = time.monotonic()
    errors, _ = graph.check(units)
    assert time.monotonic() - started < 2
    [problem] = errors
    path = problem.message.removeprefix("dependency cycle: ").split(" -> ")
    assert path == [*names, "r0000"] and len(path) == 1001
    assert graph.cyclic_units(units) == set(names)


def test_every_cycle_is_reported():
    units = units_of(a=["b"], b=["a"], c=["c"], d=["e"], e=["f"], f=["d"], g=["a"], h=[])
    errors, _ = graph.check(units)
    assert [p.message for p in errors] == [
        "dependency cycle: a -> b -> a",
        "dependency cycle: c -> c",
        "dependency cycle: d -> e -> f -> d",
    ]
    assert graph.cycles(units) == [["a", "b", "a"], ["c", "c"], ["d", "e", "f", "d"]]


def test_every_member_of_a_strongly_connected_component_is_on_a_reported_cycle():
    # a <-> b and b <-> c: one component, two elementary cycles; both are named, so c does not look fine.
    units = units_of(a=["b"], b=["a", "c"], c=["b"])
    assert graph.cycles(units) == [["a", "b", "a"], ["b", "c", "b"]]
    assert graph.cyclic_units(units) == {"a", "b", "c"}


# --- what the engine skips ---------------------------------------------------


def test_blocked_by_missing_names_the_root_cause():
    units = units_of(web=["db"], worker=["web"], cron=["worker"], a=["b"], b=["a"], report=["a"], free=[],
                     soft={"wants": ["db"]}, ordered={"after": ["a"]})  # fmt: skip
    assert graph.blocked_by_missing(units) == {
        "web": "missing dependency 'db'",
        "worker": "requires 'web', which cannot start: missing dependency 'db'",
        "cron": "requires 'worker', which cannot start: missing dependency 'db'",
        "report": "requires 'a', which is in a dependency cycle",
    }
    assert graph.cyclic_units(units) == {"a", "b"}


def test_the_rest_of_a_graph_with_a_cycle_can_still_be_ordered():
    units = units_of(a=["b"], b=["a"], web=["db"], db=[], job={"after": ["a"]})
    skipped = graph.cyclic_units(units) | set(graph.blocked_by_missing(units))
    runnable = {name: unit for name, unit in units.items() if name not in skipped}
    assert graph.start_batches(runnable) == [["db", "job"], ["web"]]


def test_a_long_requires_chain_on_a_missing_unit_is_linear():
    units = {f"u{i}": make_unit(f"u{i}", requires=[f"u{i - 1}"]) for i in range(1, 10_001)}
    started = time.monotonic()
    blocked = graph.blocked_by_missing(units)
    assert time.monotonic() - started < 2
    assert len(blocked) == 10_000
    assert blocked["u10000"] == "requires 'u9999', which cannot start: missing dependency 'u0'"


# --- batches -----------------------------------------------------------------


def test_start_batches_are_layers_sorted_by_name():
    units = units_of(
        web={"requires": ["db"], "wants": ["cache"]},
        db=[],
        cache=[],
        worker={"requires": ["web"], "after": ["migrate"]},
        migrate={"after": ["db"]},
        lonely={"wants": ["nobody"]},
    )
    assert graph.start_batches(units) == [["cache", "db", "lonely"], ["migrate", "web"], ["worker"]]


def test_stop_batches_stop_dependents_first_and_unrelated_units_at_once():
    units = units_of(web=["db"], db=[], worker=["web"], lonely=[])
    assert graph.stop_batches(units) == [["lonely", "worker"], ["web"], ["db"]]


def test_empty_graph():
    assert graph.start_batches({}) == [] and graph.stop_batches({}) == []
    assert graph.check({}) == ([], []) and graph.diff({}, {}) == graph.Diff(*[frozenset()] * 5)


def test_a_chain_of_10000_units_is_quick():
    names = [f"u{i:05d}" for i in range(10_000)]
    units = {name: make_unit(name, requires=names[i - 1 : i]) for i, name in enumerate(names)}
    started = time.monotonic()
    start = graph.start_batches(units)
    stop = graph.stop_batches(units)
    errors, warnings = graph.check(units)
    assert time.monotonic() - started < 3
    assert start == [[name] for name in names]
    assert stop == [[name] for name in reversed(names)]
    assert errors == warnings == []


def test_dependents_and_required_by():
    units = units_of(web={"requires": ["db"], "wants": ["cache"]}, db=[], cache=[], job={"after": ["db"], "requires": ["gone"]})
    assert graph.dependents(units) == {
        "web": frozenset(),
        "db": frozenset({"web", "job"}),
        "cache": frozenset({"web"}),
        "job": frozenset(),
    }
    assert graph.required_by(units) == {
        "web": frozenset(),
        "db": frozenset({"web"}),
        "cache": frozenset(),
        "job": frozenset(),
    }


@st.composite
def dags(draw):
    """Draw a random DAG of units: each unit depends only on units with a smaller index."""
    size = draw(st.integers(1, 30))
    units = {}
    for i in range(size):
        earlier = [f"n{j}" for j in range(i)]
        pick = st.lists(st.sampled_from(earlier), max_size=4, unique=True) if earlier else st.just([])
        units[f"n{i}"] = make_unit(f"n{i}", requires=draw(pick), wants=draw(pick), after=draw(pick))
    return units


@given(dags())
@settings(max_examples=60, deadline=None)
def test_batches_respect_every_edge(units):
    start = {name: index for index, batch in enumerate(graph.start_batches(units)) for name in batch}
    stop = {name: index for index, batch in enumerate(graph.stop_batches(units)) for name in batch}
    assert sorted(start) == sorted(stop) == sorted(units)
    for name, unit in units.items():
        for dep in unit.ordering:
            assert start[name] > start[dep]
            assert stop[name] < stop[dep]
    assert graph.check(units) == ([], []) and graph.cyclic_units(units) == set()


# --- diff --------------------------------------------------------------------


def test_diff_sorts_every_unit_into_one_kind():
    old = units_of(same=[], gone=[], edited=[], moved=["same"], touched=[])
    new = units_of(same=[], edited=[], moved=[], touched=[], fresh=[])
    new["edited"] = dataclasses.replace(new["edited"], stop=StopSection(timeout=1))
    new["touched"] = dataclasses.replace(new["touched"], path="/elsewhere/touched.toml")
    result = graph.diff(old, new)
    assert result == graph.Diff(
        added=frozenset({"fresh"}),
        removed=frozenset({"gone"}),
        changed=frozenset({"edited"}),
        reordered=frozenset({"moved"}),
        unchanged=frozenset({"same", "touched"}),
    )


def test_a_change_beyond_dependencies_is_changed_not_reordered():
    old = units_of(web=["db"])
    new = {"web": dataclasses.replace(make_unit("web", ["other"]), dependencies=old["web"].dependencies)}
    new_both = {"web": make_unit("web", ["other"], requires=["cache"])}
    assert graph.diff(old, new).changed == {"web"}
    assert graph.diff(old, new_both).changed == {"web"} and graph.diff(old, new_both).reordered == frozenset()


def test_diff_with_itself_is_all_unchanged():
    units = units_of(a=["b"], b=[], c={"wants": ["a"]})
    assert graph.diff(units, units) == graph.Diff(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(units))

"""The dependency graph: missing targets, cycles as paths, start and stop batches, and `diff` for reload.

Everything here is pure and iterative (no recursion), so a 10,000-unit chain
or a 1,000-unit ring costs time linear in its size and never the stack.

An edge `a -> b` means "a is ordered after b": b is in a's `requires`,
`wants` or `after`. Edges to units that do not exist are left out of the
ordering (a missing `requires` is an error `check` reports; a missing
`wants`/`after` only a warning).
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from pidone.errors import GraphError, Problem
from pidone.units import Unit

Units = Mapping[str, Unit]
_MAX_SUGGESTIONS = 20  # "did you mean" scans every name; offer it for the first few missing ones


# --- edges -------------------------------------------------------------------


def _edges(units: Units) -> dict[str, tuple[str, ...]]:
    """Return each unit's ordering targets that exist (a is ordered after each of edges[a])."""
    return {name: tuple(dep for dep in unit.ordering if dep in units) for name, unit in units.items()}


def _reverse(units: Units, edges: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Return, for every unit, the set of units with an edge to it."""
    reverse: dict[str, set[str]] = {name: set() for name in units}
    for name, targets in edges.items():
        for target in targets:
            reverse[target].add(name)
    return {name: frozenset(sources) for name, sources in reverse.items()}


def dependents(units: Units) -> dict[str, frozenset[str]]:
    """Return, for every unit, the units ordered after it (through requires, wants or after)."""
    return _reverse(units, _edges(units))


def required_by(units: Units) -> dict[str, frozenset[str]]:
    """Return, for every unit, the units that `requires` it."""
    requires = {name: [dep for dep in unit.dependencies.requires if dep in units] for name, unit in units.items()}
    return _reverse(units, requires)


# --- cycles ------------------------------------------------------------------


def _components(edges: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Return the strongly connected components of the graph (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for root in sorted(edges):
        if root in index:
            continue
        visit(root)
        work = [(root, iter(edges[root]))]
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    visit(target)
                    work.append((target, iter(edges[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def _cyclic_components(edges: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Return the components that hold a cycle: more than one unit, or one ordered after itself."""
    return [
        component
        for component in _components(edges)
        if len(component) > 1 or component[0] in edges[component[0]]
    ]


def _cycle_path(component: Collection[str], edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Return a shortest cycle through the first-named unit of `component`, ending where it starts."""
    start = min(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in edges[node]:
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if target in component and target not in parent:
                parent[target] = node
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # a cyclic component always has one


def _bfs_tree(root: str, component: Collection[str], edges: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Return a breadth-first tree of `component` from `root` along `edges`: node -> its parent."""
    parent = {root: root}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        for target in edges[node]:
            if target in component and target not in parent:
                parent[target] = node
                queue.append(target)
    return parent


def _covering_cycles(component: set[str], edges: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Return simple cycles of one strongly connected component such that each
    member is on at least one: a shortest one through the first-named member,
    then one through each member not yet on any.

    With r the first-named member, `down` is a tree of paths from r and `back`
    one of paths to r. For a member v, follow `back` from v to the first unit
    u that is an ancestor of v in `down`, then `down` from u to v: the two
    legs share only their ends, so that is a simple cycle through v. Each costs
    the length of the cycle it finds, so a 10,000-leaf star is linear.
    """
    root = min(component)
    down = _bfs_tree(root, component, edges)
    incoming: dict[str, list[str]] = {name: [] for name in component}
    for name in component:
        for target in edges[name]:
            if target in component:
                incoming[target].append(name)
    back = _bfs_tree(root, component, incoming)  # back[v]: the next unit on a path from v to root
    enter, leave = _tree_times(root, down)
    cycles = [_cycle_path(component, edges)]
    covered = set(cycles[0])
    for member in sorted(component - covered):
        if member in covered:
            continue
        legs = [member, back[member]]
        while not (enter[legs[-1]] <= enter[member] and leave[member] <= leave[legs[-1]]):
            legs.append(back[legs[-1]])
        tail = []  # the `down` path from legs[-1] to member, both excluded
        node = down[member]
        while node != legs[-1]:
            tail.append(node)
            node = down[node]
        cycle = [*legs, *reversed(tail)]
        first = cycle.index(min(cycle))
        cycle = cycle[first:] + cycle[:first]
        cycles.append([*cycle, cycle[0]])
        covered.update(cycle)
    return cycles


def _tree_times(root: str, parent: Mapping[str, str]) -> tuple[dict[str, int], dict[str, int]]:
    """Return the entry and exit times of a depth-first walk of the tree `parent`
    (iteratively): u is an ancestor of v when u's span holds v's."""
    children: dict[str, list[str]] = {name: [] for name in parent}
    for name, up in parent.items():
        if name != root:
            children[up].append(name)
    enter: dict[str, int] = {root: 0}
    leave: dict[str, int] = {}
    clock = 1
    work = [(root, iter(children[root]))]
    while work:
        node, below = work[-1]
        child = next(below, None)
        if child is None:
            leave[node] = clock
            work.pop()
        else:
            enter[child] = clock
            work.append((child, iter(children[child])))
        clock += 1
    return enter, leave


def _tangles(units: Units) -> list[tuple[list[str], list[list[str]]]]:
    """Return each cyclic component as (its members sorted, cycles covering every member)."""
    edges = _edges(units)
    return [
        (sorted(component), _covering_cycles(set(component), edges))
        for component in _cyclic_components(edges)
    ]


def cycles(units: Units) -> list[list[str]]:
    """Return cycle paths, e.g. ["a", "b", "a"], such that every unit on a cycle
    is on one (one or more per cyclic component), in name order."""
    return sorted(path for _, paths in _tangles(units) for path in paths)


def cyclic_units(units: Units) -> set[str]:
    """Return every unit that is part of a cycle; the engine does not start them."""
    return {name for component in _cyclic_components(_edges(units)) for name in component}


_REASON_UNITS = 10  # a longer cycle is shortened in each member's reason (status carries one per unit)


def cycle_reasons(units: Units) -> dict[str, str]:
    """Return, for every unit on a cycle, why it is held back, naming a cycle
    it is on: whole when short, else from the unit to its neighbours and back
    (`pidone check` names it whole)."""
    reasons: dict[str, str] = {}
    for _, paths in _tangles(units):
        for path in paths:
            members = path[:-1]
            whole = "in a dependency cycle: " + " -> ".join(path)
            for index, name in enumerate(members):
                if name in reasons:
                    continue
                if len(members) <= _REASON_UNITS:
                    reasons[name] = whole
                    continue
                around = members[index:] + members[:index]
                shown = " -> ".join([*around[:3], "...", around[-1], name])
                reasons[name] = f"in a dependency cycle of {len(members)} units: {shown}"
    return reasons


_TANGLE_NAMES = 10  # members listed after a cycle that is part of a larger tangle


def _cycle_problems(units: Units) -> list[Problem]:
    """Return one error per cycle, on the file of the cycle's first unit; a
    cycle that is part of a larger tangle lists the tangle's members too."""
    problems = []
    for members, paths in _tangles(units):
        shown = ", ".join(members[:_TANGLE_NAMES]) + (", ..." if len(members) > _TANGLE_NAMES else "")
        for path in paths:
            message = "dependency cycle: " + " -> ".join(path)
            if len(members) > len(path) - 1:
                message += f" (in a tangle of {len(members)} units: {shown})"
            problems.append((path, Problem(units[path[0]].path, message, where="[dependencies]")))
    return [problem for _, problem in sorted(problems, key=lambda item: item[0])]


# --- checking ----------------------------------------------------------------


def check(units: Units, *, invalid: Collection[str] = ()) -> tuple[list[Problem], list[Problem]]:
    """Return (errors, warnings) about the graph of `units`.

    A `requires` on a unit that does not exist is an error; a `wants`,
    `after` or `part_of` on one is a warning. Every cycle is an error naming its whole
    path. Names in `invalid` exist but failed to load: their own errors are
    reported elsewhere, so depending on them is not "missing".
    """
    errors: list[Problem] = []
    warnings: list[Problem] = []
    known = set(units) | set(invalid)
    for name in sorted(units):
        unit = units[name]
        for key in ("requires", "wants", "after", "part_of"):
            for dep in getattr(unit.dependencies, key):
                if dep in known:
                    continue
                hint = _suggest(dep, known) if len(errors) + len(warnings) < _MAX_SUGGESTIONS else ""
                prefix, at, instance = dep.partition("@")
                if at and prefix and instance:  # SPEC §12: name both the instance and its template
                    hint += f" (an instance of template {prefix}@, but there is no {prefix}@.toml)"
                message = f"missing dependency '{dep}'{hint}"
                where = f"[dependencies] {key}"
                if key == "requires":
                    errors.append(Problem(unit.path, message, where=where))
                else:
                    warnings.append(Problem(unit.path, message + ", ignored", where=where, warning=True))
    errors.extend(_cycle_problems(units))
    return errors, warnings


def _suggest(name: str, known: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for a close existing name, or ""."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.8)
    return f" (did you mean '{close[0]}'?)" if close else ""


def blocked_by_missing(units: Units) -> dict[str, str]:
    """Return units that cannot start because they require, directly or through others, a missing or cyclic unit.

    Maps each such unit to the reason, naming the root cause. Members of a
    cycle are not listed (see `cyclic_units`); units that only want or are
    ordered after a missing or cyclic unit are not blocked.
    """
    cyclic = cyclic_units(units)
    roots: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for name in sorted(units):
        if name in cyclic:
            continue
        for dep in units[name].dependencies.requires:
            if dep not in units:
                roots[name] = reasons[name] = f"missing dependency '{dep}'"
                break
            if dep in cyclic:
                roots[name] = reasons[name] = f"requires '{dep}', which is in a dependency cycle"
                break
    queue = deque(sorted(roots))
    requirers = required_by(units)
    while queue:
        name = queue.popleft()
        for dependent in sorted(requirers[name]):
            if dependent in reasons or dependent in cyclic:
                continue
            roots[dependent] = roots[name]
            reasons[dependent] = f"requires '{name}', which cannot start: {roots[name]}"
            queue.append(dependent)
    return reasons


# --- batches -----------------------------------------------------------------


def _layers(units: Units, before: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Return topological layers where each unit comes after every unit in before[unit].

    Raises GraphError naming every cycle when some units can never be placed.
    """
    waiting = {name: 0 for name in units}
    unlocks: dict[str, list[str]] = {name: [] for name in units}
    for name, earlier in before.items():
        for other in earlier:
            waiting[name] += 1
            unlocks[other].append(name)
    layer = sorted(name for name, count in waiting.items() if count == 0)
    batches: list[list[str]] = []
    placed = 0
    while layer:
        batches.append(layer)
        placed += len(layer)
        ready = []
        for name in layer:
            for later in unlocks[name]:
                waiting[later] -= 1
                if waiting[later] == 0:
                    ready.append(later)
        layer = sorted(ready)
    if placed != len(units):
        raise GraphError(_cycle_problems(units))
    return batches


def start_batches(units: Units) -> list[list[str]]:
    """Return the start order as layers: each unit after everything it is ordered after; names sorted.

    Missing targets are ignored. Raises GraphError when there is a cycle.
    """
    return _layers(units, _edges(units))


def stop_batches(units: Units) -> list[list[str]]:
    """Return the stop order as layers: each unit only after every unit ordered after it has stopped.

    Each unit is placed as early as that allows, so unrelated units stop at
    once. Raises GraphError when there is a cycle.
    """
    return _layers(units, dependents(units))


# --- reload ------------------------------------------------------------------


@dataclass(frozen=True)
class Diff:
    """What a reload changes, by unit name.

    `changed` units differ in anything but `[dependencies]` (they restart);
    `reordered` units differ only in `[dependencies]`, `enabled` or
    `[conditions]` (they keep running).
    """

    added: frozenset[str]
    removed: frozenset[str]
    changed: frozenset[str]
    reordered: frozenset[str]
    unchanged: frozenset[str]


def diff(old: Units, new: Units) -> Diff:
    """Return how the unit set `new` differs from `old`; equality ignores the files' paths."""
    changed, reordered, unchanged = set(), set(), set()
    for name in old.keys() & new.keys():
        before, after = old[name], new[name]
        if before == after:
            unchanged.add(name)
        elif replace(before, dependencies=after.dependencies, enabled=after.enabled,
                     conditions=after.conditions) == after:
            # None of these matter to a running process: swapped in, no restart.
            reordered.add(name)
        else:
            changed.add(name)
    return Diff(
        added=frozenset(new.keys() - old.keys()),
        removed=frozenset(old.keys() - new.keys()),
        changed=frozenset(changed),
        reordered=frozenset(reordered),
        unchanged=frozenset(unchanged),
    )

"""Template instances made at run time (SPEC §12): `pidone start NAME@INSTANCE`.

Such an instance lives until it is stopped (`pidone stop` removes it) or
its template is gone at a reload. It is added and removed through the
reload path: the supervisor applies a plan made here from the current units
and the templates of the last reload, without reading the directory (so
`pidone start web@c` never applies other edits waiting on disk).
"""

from __future__ import annotations

from collections.abc import Iterable

from pidone import graph
from pidone.loader import LoadResult, load_directory
from pidone.loader.templates import Template, make, make_instances, template_of
from pidone.units import Unit


class Instances:
    """The instances `pidone start` made, and the templates to make them from."""

    def __init__(self, units_dir: str, templates: dict[str, Template] | None = None):
        self.units_dir = units_dir
        # None after a re-exec (the state carries units, not templates): read on first need.
        self._templates = templates
        self.started: set[str] = set()  # made by `pidone start`, named nowhere in the directory
        self._dropping: set[str] = set()

    @property
    def templates(self) -> dict[str, Template]:
        if self._templates is None:
            self._templates = load_directory(self.units_dir).templates
        return self._templates

    def reloaded(self, templates: dict[str, Template], plan: Iterable[str]) -> None:
        """A reload read the directory: its templates from now on; instances whose template is gone are gone."""
        self._templates = templates
        self.started &= set(plan)
        self._dropping.clear()

    def why_not(self, name: str) -> str:
        """Return why instance `name` cannot be made ("" when it can)."""
        template_name = template_of(name)
        if template_name is None:
            return f"no unit named {name!r}; `pidone status` lists them"
        template = self.templates.get(template_name)
        if template is None:
            return f"no unit named {name!r}, and no template {template_name}.toml to make it from"
        unit, errors, _warnings = make(template, name.partition("@")[2])
        if unit is None:
            return f"cannot make {name} from {template.path}: " + "; ".join(p.message for p in errors[:3])
        return ""

    def start(self, name: str) -> None:
        """Remember instance `name` (checked by `why_not`) for the next plan."""
        self.started.add(name)
        self._dropping.discard(name)

    def stop(self, name: str, units: dict[str, Unit]) -> bool:
        """`pidone stop` of an instance it made: drop it from the next plan, unless
        the directory names it too. Returns True when a plan must be applied."""
        if name not in self.started:
            return False
        self.started.discard(name)
        template = self.templates.get(template_of(name) or "")
        listed = template is not None and name.partition("@")[2] in template.instances
        named = any(name in unit.ordering for other, unit in units.items() if other != name)
        if listed or named:
            return False
        self._dropping.add(name)
        return True

    def plan(self, units: dict[str, Unit]):
        """Return (plan, blocked, diff, problems, warnings) as `Supervisor.plan`
        does: the current units, less the instances stopped, plus those started."""
        kept = {name: unit for name, unit in units.items() if name not in self._dropping}
        self._dropping = set()
        result = LoadResult(self.units_dir, units=kept, templates=self.templates)
        make_instances(result, sorted(self.started), warn_unused=False)
        plan = result.units
        blocked = {name: "in a dependency cycle" for name in graph.cyclic_units(plan)}
        blocked.update(graph.blocked_by_missing(plan))
        self.started &= set(plan)
        return plan, blocked, graph.diff(units, plan), {k: v for k, v in result.errors.items() if v}, result.warnings

"""Templates and instances (SPEC §12): `NAME@.toml` is a template, `NAME@INSTANCE` a unit made from it.

An instance exists when the template lists it (`instances = [...]`), when
another unit's dependencies name it, or when `pidone start NAME@INSTANCE`
asked for it (the supervisor passes those as `extra`). Making one is pure:
the template's document (its `NAME@.toml.d/` drop-ins already merged), then
the instance's own `NAME@INSTANCE.toml.d/` drop-ins, then `%i` `%n` `%p` `%%`
replaced in every string, then the ordinary checks. A file `NAME@INSTANCE.toml`
is a unit of its own, and the template is not used for that name.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pidone.errors import Problem
from pidone.loader import dropins
from pidone.loader.build import Builder
from pidone.loader.schema import Problems, Table, printable
from pidone.units import Unit, describe, show, valid_name

if TYPE_CHECKING:
    from pidone.loader import LoadResult

INSTANCE_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
INSTANCE_RULE = "1-64 characters of A-Z a-z 0-9 _ . -"
MAX_INSTANCES = 10_000  # made from dependencies, per load: instances naming instances must end
_SPECIFIER = re.compile(r"%(.?)", re.S)
_CHECK_INSTANCE = "instance"  # the template is checked once as if made for this instance


@dataclass
class Template:
    """A valid template: everything needed to make an instance without reading a file."""

    name: str  # "web@"
    path: str
    document: dict[str, Any]  # drop-ins merged, `instances` taken out
    origin: dict[str, str]  # which drop-in set each key
    instances: tuple[str, ...]  # listed in the file
    # instance -> its decoded drop-ins; None when one of them is broken (not made then)
    overrides: dict[str, list[tuple[str, dict[str, Any]]] | None] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.name[:-1]


def is_template(name: str) -> bool:
    """Return True for a template's name: `NAME@`."""
    return name.endswith("@")


def template_of(name: str) -> str | None:
    """Return the template name `NAME@` of an instance name `NAME@INSTANCE`, else None."""
    prefix, at, instance = name.partition("@")
    return f"{prefix}@" if at and prefix and instance else None


def instance_problem(name: str) -> str:
    """Return why `name` cannot be an instance's name, or ""."""
    instance = name.partition("@")[2]
    if not INSTANCE_RE.fullmatch(instance):
        return f"{show(instance)} is not an instance name: an instance is {INSTANCE_RULE} (no '@')"
    if not valid_name(name):
        return f"{show(name)} is too long for a unit name (64 characters at most)"
    return ""


# --- loading a template -------------------------------------------------------


def load_template(
    name: str, document: dict[str, Any] | None, errors: list[Problem], origin: dict[str, str], path: str
) -> tuple[Template | None, list[Problem], list[Problem], tuple[str, ...]]:
    """Return (Template or None, errors, warnings, listed instances) for a template's merged
    `document` (None when it did not parse: `errors` say why). A broken
    template's listed instances are still named, as invalid units with no
    problems of their own (its errors say why): a reload keeps their last
    good definitions, and what depends on them is not told they are missing."""
    problems = Problems(path)
    prefix = name[:-1]
    if not prefix or "@" in prefix:
        problems.error("", f"{show(name)} is not a template name: a template is NAME@.toml, with one '@'")
    instances: tuple[str, ...] = ()
    if document is not None:
        document = dict(document)
        instances = _instances(document.pop("instances", []), name, problems)
        # Checked once, as any instance would be; a broken template makes no instance.
        _unit, check_errors, warnings = _build(f"{prefix}@{_CHECK_INSTANCE}", document, path, origin)
        errors = errors + [p for p in check_errors if p not in errors]
    else:
        warnings = []
    errors = errors + dropins.blame(problems.finish(), origin)
    if errors or document is None:
        return None, errors, warnings, instances
    return Template(name, path, document, origin, instances), [], warnings, instances


def _instances(value: Any, name: str, problems: Problems) -> tuple[str, ...]:
    """Return the `instances` a template lists; each bad one is an error."""
    if not isinstance(value, list):
        problems.error("instances", f'expected an array of instance names such as ["8001", "8002"], got {describe(value)}')
        return ()
    listed = []
    for index, item in enumerate(value, 1):
        if not isinstance(item, str):
            problems.error("instances", f"item {index}: expected a string, got {describe(item)}")
            continue
        why = instance_problem(f"{name}{item}")
        if why:
            problems.error("instances", f"item {index}: {why}")
        else:
            listed.append(item)
    if len(set(listed)) != len(listed):
        problems.warn("instances", "lists an instance more than once")
    return tuple(dict.fromkeys(listed))


def add_instance_dropins(template: Template, instance: str, files: list[tuple[str, dict[str, Any]]] | None) -> None:
    """Keep the decoded `NAME@INSTANCE.toml.d/` drop-ins, for when the instance is made (None: broken)."""
    template.overrides[instance] = files


# --- making instances ------------------------------------------------------------


def make(template: Template, instance: str) -> tuple[Unit | None, list[Problem], list[Problem]]:
    """Return (the unit `NAME@INSTANCE`, errors, warnings): the template, the
    instance's drop-ins over it, the specifiers replaced, checked."""
    name = f"{template.name}{instance}"
    why = instance_problem(name)
    if why:
        return None, [Problem(template.path, why, where=f"instance {show(name)}")], []
    document, origin = template.document, template.origin
    if instance in template.overrides and template.overrides[instance] is None:
        return None, [Problem(template.path, f"its drop-ins in {name}.toml.d/ have errors", where=f"instance {name}")], []
    overrides = template.overrides.get(instance)
    if overrides:
        origin = dict(origin)
        for path, over in overrides:
            document = dropins.merge(document, over, path, origin)
    return _build(name, document, template.path, origin)


def _build(name: str, document: dict[str, Any], path: str, origin: dict[str, str]):
    problems = Problems(path)
    prefix, _, instance = name.partition("@")
    values = {"i": instance, "n": name, "p": prefix, "%": "%"}
    document = _substitute_document(document, values, problems)
    unit = None
    if not problems.errors:
        unit = Builder(problems).unit(name, document, path)
    errors = dropins.blame(problems.finish(), origin)
    warnings = dropins.blame(problems.warnings, origin)
    return (None if errors else unit), errors, warnings


def _substitute_document(document: dict[str, Any], values: dict[str, str], problems: Problems) -> dict[str, Any]:
    """Return `document` with the specifiers of every string value replaced
    (table keys are names, not values: they are left alone)."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            table = Table(problems, key, value)
            out[key] = {inner: _substitute(item, values, problems, table.where(inner)) for inner, item in value.items()}
        else:
            out[key] = _substitute(value, values, problems, key)
    return out


def _substitute(value: Any, values: dict[str, str], problems: Problems, where: str) -> Any:
    if isinstance(value, str):
        if "%" not in value:
            return value

        def one(match: re.Match[str]) -> str:
            letter = match.group(1)
            if letter in values:
                return values[letter]
            found = f"'%{printable(letter)}'" if letter else "a '%' at the end"
            raise ValueError(f"{found} in {show(value)} is not a specifier: %i, %n, %p, or %% for a literal %")

        try:
            return _SPECIFIER.sub(one, value)
        except ValueError as exc:
            problems.error(where, str(exc))
            return value
    if isinstance(value, list):
        return [_substitute(item, values, problems, where) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, values, problems, where) for key, item in value.items()}
    return value


def make_instances(result: LoadResult, extra: Iterable[str] = (), *, warn_unused: bool = True) -> list[str]:
    """Add to `result` every instance named: listed by its template, in a
    unit's dependencies (instances' own included), or in `extra`. Returns the
    names in `extra` that could not be made. A template none names is a warning."""
    templates = result.templates
    made: dict[str, int] = {name: 0 for name in templates}
    failed: list[str] = []
    extra = list(extra)
    queue: list[str] = [f"{t.name}{i}" for t in templates.values() for i in t.instances]
    queue += extra
    for unit in list(result.units.values()):
        queue.extend(_named(unit, templates))
    seen: set[str] = set()
    count = 0
    pending = deque(queue)
    while pending:
        name = pending.popleft()
        if name in seen:
            continue
        seen.add(name)
        template_name = template_of(name)
        if template_name not in made:
            if template_name in result.errors:
                result.errors.setdefault(name, [])  # invalid, not missing: its template's errors say why
            if name in extra and name not in result.units:
                failed.append(name)
            continue
        made[template_name] += 1
        if name in result.units or name in result.errors:
            continue  # a file NAME@INSTANCE.toml of its own
        count += 1
        if count > MAX_INSTANCES:
            template = templates[template_name]
            result.errors.setdefault(template_name, []).append(Problem(
                template.path, f"more than {MAX_INSTANCES} instances: do instances name instances without end?"))
            break
        unit, errors, warnings = make(templates[template_name], name.partition("@")[2])
        result.warnings.extend(warnings)
        if unit is None:
            result.errors[name] = errors
            if name in extra:
                failed.append(name)
        else:
            result.units[name] = unit
            pending.extend(_named(unit, templates))
    if warn_unused:
        for template_name, uses in sorted(made.items()):
            if not uses:
                result.warnings.append(Problem(
                    templates[template_name].path,
                    f"a template no one names: list instances = [...], name {template_name}INSTANCE in a "
                    f"dependency, or run pidone start {template_name}INSTANCE", where="instances", warning=True))
    return failed


def _named(unit: Unit, templates: dict[str, Template] | Sequence[str]) -> list[str]:
    """Return the instances of known templates that `unit`'s dependencies name."""
    return [dep for dep in unit.ordering if "@" in dep and template_of(dep) in templates]

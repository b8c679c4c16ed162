"""The lifecycle keys of SPEC §11 in unit files: valid values, every bad
value with its message, "did you mean", and the round trip a re-exec uses."""

from __future__ import annotations

import textwrap

import pytest

from pidone.errors import ConfigError
from pidone.loader import parse_unit, unit_to_dict
from pidone.loader.build import unit_from_dict
from pidone.units_lifecycle import ConditionsSection

MINIMAL = '[service]\ncommand = ["app"]\n'


def parse(text: str):
    return parse_unit("web", textwrap.dedent(text).encode(), "web.toml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return [str(problem) for problem in caught.value.problems]


def roundtrip(unit):
    assert unit_from_dict(unit.name, unit_to_dict(unit), "") == unit


# -- enabled and [conditions] ----------------------------------------------------


def test_enabled_defaults_to_true_and_takes_a_boolean():
    assert parse(MINIMAL).enabled is True
    unit = parse("enabled = false\n" + MINIMAL)
    assert unit.enabled is False
    roundtrip(unit)
    assert problems('enabled = "no"\n' + MINIMAL) == ["web.toml: enabled: expected true or false, got a string ('no')"]
    assert problems("enabeld = false\n" + MINIMAL) == ["web.toml: enabeld: unknown key, did you mean 'enabled'?"]


def test_conditions_keep_each_item_as_written():
    unit = parse(MINIMAL + '[conditions]\npath_exists = ["/a", "!/b"]\nenvironment = ["X", "!Y", "M=prod", "!M=x=y"]\n')
    assert unit.conditions == ConditionsSection(("/a", "!/b"), ("X", "!Y", "M=prod", "!M=x=y"))
    roundtrip(unit)
    assert not parse(MINIMAL).conditions


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('path_exists = "/a"', "[conditions] path_exists: expected an array of absolute paths, optionally "
         "prefixed by \"!\", got a string ('/a')"),
        ('path_exists = ["a"]', "[conditions] path_exists: item 1: expected an absolute path, optionally "
         "prefixed by \"!\", got 'a'"),
        ('path_exists = ["!"]', "[conditions] path_exists: item 1: expected an absolute path"),
        ('environment = ["1X"]', "[conditions] environment: item 1: expected NAME or NAME=VALUE"),
        ('environment = ["!=x"]', "[conditions] environment: item 1: expected NAME or NAME=VALUE"),
        ("environment = [1]", "[conditions] environment: item 1: expected a string, got an integer (1)"),
        ('path_exist = ["/a"]', "[conditions] path_exist: unknown key, did you mean 'path_exists'?"),
    ],
)
def test_bad_conditions(body, message):
    found = problems(MINIMAL + "[conditions]\n" + body + "\n")
    assert len(found) == 1 and message in found[0], found


def test_a_misplaced_condition_key_names_its_table():
    assert problems(MINIMAL + 'path_exists = ["/a"]\n') == [
        "web.toml: [service] path_exists: unknown key here: it belongs in [conditions]"]

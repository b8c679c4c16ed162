"""docs/unit-files.md and the loader agree: every key the loader accepts is documented, and every documented key is accepted."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pidone.errors import ConfigError
from pidone.loader import SCHEMA, load_directory, parse_unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "unit-files.md"
HEADING = re.compile(r"^## (?:Top level|`\[(?P<table>[a-z]+)\]`)$")
KEY_ROW = re.compile(r"^\| `(?P<key>[a-z_]+)` \|")


def documented_keys() -> dict[str, set[str]]:
    """Return the keys in the first column of each table's reference rows, by TOML table ("" = top level)."""
    keys: dict[str, set[str]] = {}
    table = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            match = HEADING.match(line)
            table = (match["table"] or "") if match else None
            continue
        row = KEY_ROW.match(line)
        if row and table is not None:
            keys.setdefault(table, set()).add(row["key"])
    return keys


def unknown_key_problems(table: str, key: str) -> list[str]:
    """Return the "unknown key" problems of a minimal unit that also sets `key` in `table`."""
    line = f"{key} = 1\n"
    text = line + '[service]\ncommand = ["app"]\n' if table == "" else '[service]\ncommand = ["app"]\n'
    if table == "service":
        text += "" if key == "command" else line
    elif table:
        text += f"[{table}]\n{line}"
    try:
        parse_unit("web", text.encode(), "web.toml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems if "unknown key" in p.message or "unknown table" in p.message]
    return []


def test_every_table_is_documented():
    assert set(documented_keys()) == set(SCHEMA)


@pytest.mark.parametrize("table", list(SCHEMA))
def test_the_documented_keys_are_exactly_the_accepted_ones(table):
    assert documented_keys()[table] == set(SCHEMA[table])


@pytest.mark.parametrize(("table", "key"), [(t, k) for t, keys in sorted(documented_keys().items()) for k in sorted(keys)])
def test_every_documented_key_is_accepted(table, key):
    assert unknown_key_problems(table, key) == []


@pytest.mark.parametrize("table", list(SCHEMA))
def test_an_undocumented_key_is_refused(table):
    assert unknown_key_problems(table, "undocumented") != []


EXAMPLE_FILE = re.compile(r"# (?P<file>[\w.@-]+(?:\.toml\.d/[\w.-]+)?\.toml)\b")


def test_the_toml_examples_in_the_doc_load(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 2
    for index, block in enumerate(blocks):
        named = EXAMPLE_FILE.match(block)
        if named is None:
            unit = parse_unit("web", block.encode(), "web.toml")
            assert unit.service.command
            continue
        # An example that names its file (a drop-in, a template) loads in a directory of its own.
        directory = tmp_path / str(index)
        path = directory / named["file"]
        path.parent.mkdir(parents=True)
        path.write_text(block)
        if ".toml.d/" in named["file"]:
            (directory / named["file"].split(".toml.d/")[0]).with_suffix(".toml").write_text('[service]\ncommand = ["app"]\n')
        result = load_directory(directory, enforce_ownership=False)
        assert result.ok and result.units, (named["file"], result.problems())

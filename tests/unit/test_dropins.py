"""Drop-ins (SPEC §12): the merge, the order, errors naming the drop-in, the same safety checks as unit files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pidone import graph
from pidone.loader import load_directory
from pidone.loader.dropins import merge

BASE = '[service]\ncommand = ["/bin/app"]\nenvironment = { A = "1", B = "2" }\n[restart]\ndelay = 1\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load(directory: Path):
    return load_directory(directory, enforce_ownership=False)


# -- the merge ---------------------------------------------------------------------


def test_tables_merge_key_by_key_at_any_depth_and_other_values_replace():
    base = {"description": "x", "service": {"command": ["a"], "environment": {"A": "1", "B": "2"}}}
    over = {"service": {"environment": {"B": "3", "C": "4"}, "command": ["b", "c"]}, "description": "y"}
    origin: dict[str, str] = {}
    merged = merge(base, over, "d.toml", origin)
    assert merged == {"description": "y", "service": {"command": ["b", "c"], "environment": {"A": "1", "B": "3", "C": "4"}}}
    assert base["service"]["environment"] == {"A": "1", "B": "2"}  # nothing changed in place
    assert origin == {"description": "d.toml", "service": "d.toml", "[service] environment": "d.toml",
                      "[service] command": "d.toml"}


def test_an_array_replaces_the_whole_array():
    assert merge({"a": [1, 2, 3]}, {"a": [4]}, "d", {}) == {"a": [4]}


def test_a_value_of_another_kind_replaces_a_table():
    assert merge({"a": {"b": 1}}, {"a": 5}, "d", {}) == {"a": 5}


# -- the directory ------------------------------------------------------------------


def test_dropins_merge_over_the_unit_in_file_name_order(tmp_path):
    write(tmp_path / "web.toml", BASE)
    write(tmp_path / "web.toml.d/20-later.toml", '[service]\nenvironment = { B = "later" }\n')
    write(tmp_path / "web.toml.d/10-first.toml", '[service]\nenvironment = { B = "first", C = "3" }\n[restart]\ndelay = 2\n')
    write(tmp_path / "web.toml.d/notes.txt", "not a drop-in")
    write(tmp_path / "web.toml.d/.hidden.toml", "broken = [")
    result = load(tmp_path)
    assert result.ok, result.problems()
    unit = result.units["web"]
    assert dict(unit.service.environment) == {"A": "1", "B": "later", "C": "3"}
    assert unit.restart.delay == 2
    assert unit.service.command == ("/bin/app",)
    assert unit.path == str(tmp_path / "web.toml")


def test_a_dropin_that_does_not_parse_is_named_with_its_line(tmp_path):
    write(tmp_path / "web.toml", BASE)
    bad = write(tmp_path / "web.toml.d/x.toml", "[service]\nuser = \n")
    result = load(tmp_path)
    assert "web" not in result.units
    [problem] = result.errors["web"]
    assert problem.path == str(bad) and problem.line == 2


def test_a_schema_error_names_the_dropin_that_set_the_key(tmp_path):
    write(tmp_path / "web.toml", BASE)
    write(tmp_path / "web.toml.d/a.toml", '[restart]\ndelay = 3\n')
    bad = write(tmp_path / "web.toml.d/b.toml", '[service]\nusr = "x"\nenvironment = { "1bad" = "x" }\n[restart]\ndelay = -1\n')
    errors = [str(p) for p in load(tmp_path).errors["web"]]
    assert errors == [
        f"{bad}: [service] usr: unknown key, did you mean 'user'?",
        f"{bad}: [service] environment: '1bad' is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*",
        f"{bad}: [restart] delay: must not be negative, got -1",
    ]


def test_an_error_in_the_unit_file_still_names_the_unit_file(tmp_path):
    unit = write(tmp_path / "web.toml", BASE + "[stop]\nsignal = 'SIGNOPE'\n")
    write(tmp_path / "web.toml.d/a.toml", '[restart]\ndelay = 3\n')
    [problem] = load(tmp_path).errors["web"]
    assert problem.path == str(unit) and problem.where == "[stop] signal"


def test_a_dropin_without_its_unit_file_is_an_error(tmp_path):
    write(tmp_path / "ok.toml", BASE)
    dropin = write(tmp_path / "gone.toml.d/a.toml", "[restart]\ndelay = 3\n")
    (tmp_path / "empty.toml.d").mkdir()
    result = load(tmp_path)
    assert set(result.units) == {"ok"}
    assert [str(p) for p in result.errors["gone.toml.d"]] == [
        f"{dropin}: a drop-in without its unit file: there is no {tmp_path}/gone.toml"
    ]
    assert "empty.toml.d" not in result.errors  # nothing in it, nothing to say


def test_dropins_get_the_same_safety_checks_as_unit_files(tmp_path):
    units = tmp_path / "units"
    write(units / "web.toml", BASE)
    outside = write(tmp_path / "outside.toml", "[restart]\ndelay = 3\n")
    (units / "web.toml.d").mkdir()
    os.symlink(outside, units / "web.toml.d/escape.toml")
    os.mkfifo(units / "web.toml.d/fifo.toml")
    write(units / "web.toml.d/big.toml", "# " + "x" * (1024 * 1024) + "\n")
    messages = sorted(p.message for p in load(units).errors["web"])
    assert len(messages) == 3
    assert any("outside the units directory" in m for m in messages)
    assert any("not a regular file (a FIFO)" in m for m in messages)
    assert any("1 MiB" in m for m in messages)


def test_a_symlinked_dropin_directory_must_stay_in_the_units_directory(tmp_path):
    units = tmp_path / "units"
    write(units / "web.toml", BASE)
    write(tmp_path / "elsewhere/a.toml", "[restart]\ndelay = 3\n")
    os.symlink(tmp_path / "elsewhere", units / "web.toml.d")
    write(units / "db.toml", BASE)
    write(units / "shared/a.toml", "[restart]\ndelay = 4\n")
    os.symlink("shared", units / "db.toml.d")
    result = load(units)
    assert "outside the units directory" in result.errors["web"][0].message
    assert result.units["db"].restart.delay == 4


def test_a_dropin_directory_that_is_a_file_is_refused(tmp_path):
    write(tmp_path / "web.toml", BASE)
    write(tmp_path / "web.toml.d", "x")
    [problem] = load(tmp_path).errors["web"]
    assert "must be a directory" in problem.message


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership is enforced only as root")
def test_as_root_a_dropin_writable_by_others_is_refused(tmp_path):
    os.chmod(tmp_path, 0o755)
    write(tmp_path / "web.toml", BASE)
    dropin = write(tmp_path / "web.toml.d/a.toml", "[restart]\ndelay = 3\n")
    os.chmod(tmp_path / "web.toml.d", 0o755)
    os.chmod(tmp_path / "web.toml", 0o644)
    os.chmod(dropin, 0o666)
    [problem] = load_directory(tmp_path, enforce_ownership=True).errors["web"]
    assert problem.path == str(dropin) and "writable by group or others" in problem.message
    os.chmod(dropin, 0o644)
    os.chmod(tmp_path / "web.toml.d", 0o777)
    [problem] = load_directory(tmp_path, enforce_ownership=True).errors["web"]
    assert "drop-in directory" in problem.message


def test_a_change_in_a_dropin_changes_only_that_unit(tmp_path):
    write(tmp_path / "web.toml", BASE)
    write(tmp_path / "db.toml", BASE)
    before = load(tmp_path).units
    write(tmp_path / "web.toml.d/a.toml", "[restart]\ndelay = 3\n")
    diff = graph.diff(before, load(tmp_path).units)
    assert diff.changed == {"web"} and diff.unchanged == {"db"}

"""Templates and instances in the loader (SPEC §12): specifiers, the three sources of instances, drop-ins, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pidone import graph
from pidone.instances import Instances
from pidone.loader import load_directory
from pidone.loader.templates import MAX_INSTANCES

WORKER = '[service]\ncommand = ["/bin/worker", "--id", "%i"]\n'


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def load(directory: Path, **files: str):
    write(directory, files)
    return load_directory(directory, enforce_ownership=False)


def test_specifiers_in_every_string_including_dependency_names(tmp_path):
    result = load(tmp_path, **{
        "web@.toml": (
            'description = "%p number %i (%n), 100%%"\ninstances = ["8001"]\n'
            '[service]\ncommand = "/bin/web --port %i"\nenvironment = { NAME = "%n" }\n'
            'working_directory = "/srv/%p/%i"\n'
            '[dependencies]\nrequires = ["db@%i"]\n'
            '[log]\nfile = "/var/log/%n.log"\n'
        ),
        "db@.toml": WORKER,
    })
    assert result.ok, result.problems()
    web = result.units["web@8001"]
    assert web.description == "web number 8001 (web@8001), 100%"
    assert web.service.command == ("/bin/web", "--port", "8001")
    assert web.service.environment == (("NAME", "web@8001"),)
    assert web.service.working_directory == "/srv/web/8001"
    assert web.dependencies.requires == ("db@8001",)
    assert web.log.file == "/var/log/web@8001.log"
    assert web.path == str(tmp_path / "web@.toml")
    assert result.units["db@8001"].service.command == ("/bin/worker", "--id", "8001")
    assert graph.start_batches(result.units) == [["db@8001"], ["web@8001"]]
    assert set(result.templates) == {"web@", "db@"}


def test_instances_named_by_dependencies_of_instances_too(tmp_path):
    result = load(tmp_path, **{
        "a@.toml": WORKER + '[dependencies]\nwants = ["b@%i"]\n',
        "b@.toml": WORKER + '[dependencies]\nafter = ["c@%i"]\n',
        "c@.toml": WORKER,
        "main.toml": '[service]\ncommand = ["x"]\n[dependencies]\nrequires = ["a@1", "a@2"]\n',
    })
    assert result.ok, result.problems()
    assert set(result.units) == {"main", "a@1", "a@2", "b@1", "b@2", "c@1", "c@2"}
    assert result.warnings == []


def test_extra_instances_are_made_too(tmp_path):
    write(tmp_path, {"w@.toml": WORKER})
    result = load_directory(tmp_path, enforce_ownership=False, extra_instances=["w@x"])
    assert set(result.units) == {"w@x"}


def test_an_unknown_specifier_is_an_error_naming_file_and_key(tmp_path):
    result = load(tmp_path, **{"w@.toml": 'instances = ["1"]\n[service]\ncommand = ["date", "+%s"]\n'})
    assert result.units == {}
    [problem] = result.errors["w@"]
    assert str(problem) == (f"{tmp_path}/w@.toml: [service] command: '%s' in '+%s' is not a specifier:"
                            " %i, %n, %p, or %% for a literal %")
    assert result.errors["w@1"] == []  # invalid (its template says why), not missing
    assert graph.check(result.units, invalid=result.errors.keys()) == ([], [])


def test_a_lone_percent_at_the_end_is_an_error(tmp_path):
    result = load(tmp_path, **{"w@.toml": '[service]\ncommand = ["echo", "100%"]\n'})
    assert "a '%' at the end" in result.errors["w@"][0].message


def test_a_template_is_checked_even_with_no_instances(tmp_path):
    result = load(tmp_path, **{"w@.toml": '[service]\ncommand = ["x"]\nusr = "me"\n'})
    assert [p.where for p in result.errors["w@"]] == ["[service] usr"]


def test_a_template_no_one_names_is_a_warning(tmp_path):
    result = load(tmp_path, **{"w@.toml": WORKER})
    assert result.ok and result.units == {}
    [warning] = result.warnings
    assert warning.warning and warning.path == str(tmp_path / "w@.toml") and "no one names" in warning.message


@pytest.mark.parametrize(
    ("instances", "fragment"),
    [
        ('["a@b"]', "is not an instance name"),
        ('[""]', "is not an instance name"),
        ('["' + "x" * 70 + '"]', "is not an instance name"),
        ('["' + "x" * 63 + '"]', "too long for a unit name"),
        ("[1]", "expected a string"),
        ('"a"', "expected an array"),
    ],
)
def test_bad_listed_instances_are_errors(tmp_path, instances, fragment):
    result = load(tmp_path, **{"w@.toml": f"instances = {instances}\n" + WORKER})
    assert any(fragment in p.message and p.where == "instances" for p in result.errors["w@"]), result.errors


def test_instances_only_in_a_template(tmp_path):
    result = load(tmp_path, **{"w.toml": 'instances = ["a"]\n' + WORKER.replace("%i", "1")})
    assert result.errors["w"][0].message == "only a template (NAME@.toml) lists instances"


def test_a_bad_template_name_is_an_error(tmp_path):
    result = load(tmp_path, **{"a@b@.toml": WORKER})
    assert "not a template name" in result.errors["a@b@"][0].message


def test_an_instance_of_a_missing_template_names_both(tmp_path):
    result = load(tmp_path, **{"main.toml": '[service]\ncommand = ["x"]\n[dependencies]\nrequires = ["ghost@1"]\n'})
    errors, _ = graph.check(result.units, invalid=result.errors.keys())
    assert "missing dependency 'ghost@1'" in errors[0].message
    assert "template ghost@, but there is no ghost@.toml" in errors[0].message


def test_a_file_of_its_own_wins_over_the_template(tmp_path):
    result = load(tmp_path, **{
        "w@.toml": 'instances = ["a", "b"]\n' + WORKER,
        "w@b.toml": '[service]\ncommand = ["/bin/special"]\n',
    })
    assert result.units["w@a"].service.command == ("/bin/worker", "--id", "a")
    assert result.units["w@b"].service.command == ("/bin/special",)


def test_template_dropins_apply_to_every_instance_and_instance_dropins_to_one(tmp_path):
    result = load(tmp_path, **{
        "w@.toml": 'instances = ["a", "b"]\n' + WORKER,
        "w@.toml.d/10.toml": '[service]\nenvironment = { ALL = "%i" }\n',
        "w@b.toml.d/10.toml": '[service]\nenvironment = { ONE = "yes" }\n[restart]\ndelay = 7\n',
        "w@zzz.toml.d/10.toml": '[restart]\ndelay = 8\n',  # for an instance not made (yet): kept
    })
    assert result.ok, result.problems()
    assert dict(result.units["w@a"].service.environment) == {"ALL": "a"}
    assert dict(result.units["w@b"].service.environment) == {"ALL": "b", "ONE": "yes"}
    assert result.units["w@b"].restart.delay == 7
    assert result.templates["w@"].overrides["zzz"][0][1] == {"restart": {"delay": 8}}


def test_errors_in_instance_dropins_name_the_dropin(tmp_path):
    result = load(tmp_path, **{
        "w@.toml": 'instances = ["a", "b"]\n' + WORKER,
        "w@b.toml.d/10.toml": '[restart]\ndelay = -1\n',
        "w@.toml.d/20.toml": '[stop]\nsignal = "%x"\n',
    })
    [template_error] = result.errors["w@"]
    assert template_error.path == str(tmp_path / "w@.toml.d/20.toml") and "'%x'" in template_error.message
    result = load(tmp_path, **{"w@.toml.d/20.toml": "\n"})
    assert set(result.units) == {"w@a"}
    [problem] = result.errors["w@b"]
    assert problem.path == str(tmp_path / "w@b.toml.d/10.toml") and problem.where == "[restart] delay"
    # A drop-in that does not even parse: `pidone start` refuses the instance too.
    result = load(tmp_path, **{"w@c.toml.d/10.toml": "[restart\n"})
    assert result.errors["w@c"][0].path == str(tmp_path / "w@c.toml.d/10.toml") and result.errors["w@c"][0].line == 1
    assert "have errors" in Instances(str(tmp_path), result.templates).why_not("w@c")


def test_an_instance_dropin_without_a_template_is_an_error(tmp_path):
    result = load(tmp_path, **{"w@a.toml.d/10.toml": '[restart]\ndelay = 1\n'})
    assert "a drop-in without its unit file" in result.errors["w@a.toml.d"][0].message


def test_instances_naming_instances_without_end_stop_with_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr("pidone.loader.templates.MAX_INSTANCES", 50)
    result = load(tmp_path, **{"w@.toml": 'instances = ["a"]\n' + WORKER + '[dependencies]\nwants = ["w@%i0", "w@%i1"]\n'})
    assert any("more than 50 instances" in p.message for p in result.errors["w@"])
    assert MAX_INSTANCES == 10_000


# -- made at run time -----------------------------------------------------------


def test_instances_plan_adds_and_drops_without_reading_the_directory(tmp_path):
    write(tmp_path, {"w@.toml": 'instances = ["a"]\n' + WORKER + '[dependencies]\nrequires = ["d@%i"]\n', "d@.toml": WORKER})
    loaded = load_directory(tmp_path, enforce_ownership=False)
    instances = Instances(str(tmp_path), loaded.templates)
    assert instances.why_not("w@x") == ""
    assert "no template nope@.toml" in instances.why_not("nope@x")
    assert "not an instance name" in instances.why_not("w@a@b")
    (tmp_path / "w@.toml").unlink()  # not read again: the templates of the last load are used
    instances.start("w@x")
    plan, blocked, diff, problems, _ = instances.plan(loaded.units)
    assert diff.added == {"w@x", "d@x"} and not diff.removed and not problems and not blocked
    assert plan["w@x"].dependencies.requires == ("d@x",)
    assert instances.stop("w@a", plan) is False  # listed: only stopped
    assert instances.stop("w@x", plan) is True
    plan2, _, diff2, _, _ = instances.plan(plan)
    assert diff2.removed == {"w@x"}

"""`pidone import` of systemd services: [Unit] dependencies, other sections, names and specifiers, and every
service unit installed on this machine."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import pytest
import tomli_w

from importhelp import FIXTURES, NOTE, SYSTEM_UNIT_DIRS, loads, notes_about, run, service, systemd
from pidone.cli.unitfiles import check_main
from pidone.importers import import_systemd, sanitize_name
from pidone.loader import load_directory


# --- systemd: [Unit] dependencies and the rest -----------------------------------


def test_dependencies():
    result = service(
        "ExecStart=/bin/app\n",
        unit="""\
        Description=The app
        After=network.target db.service cache.service x.socket queue.service conf.service
        Requires=db.service
        Wants=cache.service
        BindsTo=queue.service
        Requisite=conf.service
        After=other
        """,
    )
    assert result.unit["description"] == "The app"
    assert result.unit["dependencies"] == {"requires": ["db", "queue", "conf"], "wants": ["cache"], "after": ["other"]}
    assert notes_about(result, "BindsTo") and notes_about(result, "Requisite")
    assert [n.split(":")[0] for n in notes_about(result, "After")] == ["After=network.target", "After=x.socket"]
    assert "boot milestone" in notes_about(result, "After")[0]
    assert "becomes the [socket] table of the service" in notes_about(result, "After")[1]


def test_dependency_names_are_made_valid():
    result = service(
        "ExecStart=/bin/app\n",
        unit="Wants=weird\\x2dname.service bad+name.service\nAfter=weird\\x2dname.service bad+name.service\n",
    )
    assert result.unit["dependencies"] == {"wants": ["weird-name", "bad_name"]}
    assert notes_about(result, "Wants") == ["Wants=bad+name.service: approximated: written as 'bad_name' (pidone's unit-name rule)"]


@pytest.mark.parametrize("key", ["Requires", "BindsTo", "Requisite", "Wants", "Upholds"])
def test_a_dependency_without_after_is_not_written(key):
    # pidone's requires and wants also order the start; systemd's do not without After=
    result = service("ExecStart=/bin/app\n", unit=f"{key}=db.service\nAfter=other.service\n")
    assert result.unit["dependencies"] == {"after": ["other"]}
    (note,) = notes_about(result, key)
    assert note.startswith(f"{key}=db: not carried over: without After=db.service systemd starts both units at once")
    assert ("not stopped when db stops" in note) is (key not in ("Wants", "Upholds"))


def test_nfs_server_and_idmapd_import_without_a_cycle(tmp_path):
    names = ("nfs-server.service", "nfs-idmapd.service", "nfs-mountd.service")
    status, _out, err = run("-o", str(tmp_path), *(str(FIXTURES / name) for name in names))
    assert status == 0, err
    assert "BindsTo=nfs-server: not carried over: without After=nfs-server.service" in err
    load = load_directory(tmp_path, enforce_ownership=False)
    assert load.errors == {}
    assert sorted(load.units) == ["nfs-idmapd", "nfs-mountd", "nfs-server"]
    assert load.units["nfs-server"].dependencies.wants == ("nfs-idmapd",)
    assert load.units["nfs-idmapd"].dependencies.requires == () and load.units["nfs-idmapd"].dependencies.after == ()
    assert check_main([str(tmp_path)]) == 0  # no cycle


@pytest.mark.parametrize(
    ("directive", "reason"),
    [
        ("PrivateTmp=yes", "sandboxing"),
        ("ProtectSystem=strict", "sandboxing"),
        ("SystemCallFilter=@system-service", "sandboxing"),
        ("MemoryMax=1G", "cgroup"),
        ("CPUQuota=50%", "cgroup"),
        ("Nice=10", "scheduling"),
        ("IOSchedulingClass=idle", "scheduling"),
        ("SyslogIdentifier=app", "stdout"),
        ("RuntimeDirectory=app", "/run"),
        ("StateDirectory=app", "/var/lib"),
        ("LoadCredential=x:/y", "credentials"),
        ("Sockets=app.socket", "socket activation"),
        ("WatchdogSec=30", "watchdog"),
        ("ExecStartPost=/bin/true", "main command"),
        ("ExecStopPost=/bin/true", "after a unit stops"),
        ("SuccessExitStatus=2", "exit status 0"),
        ("RemainAfterExit=yes", "oneshot"),
        ("SomethingNew=1", "no equivalent"),
    ],
)
def test_directives_without_equivalent_are_noted_with_why(directive, reason):
    result = service(f"ExecStart=/bin/app\n{directive}\n")
    (note,) = result.notes
    assert note.startswith(f"{directive}: not carried over: ")
    assert reason in note


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[Unit]\nConditionPathExists=/etc/x\n", "unconditionally"),
        ("[Unit]\nDocumentation=man:app(8)\n", "documentation"),
        ("[Unit]\nConflicts=other.service\n", "conflicts"),
        ("[Unit]\nOnFailure=alert.service\n", "fails"),
        ("[Install]\nWantedBy=multi-user.target\n", "nothing to enable"),
        ("[X-Vendor]\nKey=1\n", "extension section"),
        ("[Socket]\nListenStream=80\n", "not a section of a service"),
    ],
)
def test_other_sections_are_noted(text, reason):
    result = systemd(f"[Service]\nExecStart=/bin/app\n{text}")
    (note,) = result.notes
    assert reason in note


def test_line_continuations_and_comments():
    result = systemd(
        """\
        # a comment
        ; another
        [Service]
        ExecStart=/bin/app \\
        # a comment inside a continuation is skipped
            --flag \\
            value
        not a directive
        """
    )
    assert result.unit["service"]["command"] == ["/bin/app", "--flag", "value"]
    assert result.notes == ["line 8=not a directive: not carried over: not a [Section] header or a Key=Value line; systemd ignores it too"]


# --- systemd: names and specifiers ---------------------------------------------


def test_specifiers_of_an_instance():
    result = systemd(
        """\
        [Unit]
        Description=%n %N %p %i %I %j %t %S %C %L %E %T %V %u %h %%
        [Service]
        ExecStart=/sbin/agetty %I --path %f
        """,
        "serial-getty@ttyS0.service",
    )
    assert result.name == "serial-getty@ttyS0"
    assert result.unit["description"] == (
        "serial-getty@ttyS0.service serial-getty@ttyS0 serial-getty ttyS0 ttyS0 getty"
        " /run /var/lib /var/cache /var/log /etc /tmp /var/tmp root /root %"
    )
    assert result.unit["service"]["command"] == ["/sbin/agetty", "ttyS0", "--path", "/ttyS0"]
    assert result.notes == []


def test_escaped_instance_names():
    result = systemd("[Service]\nExecStart=/sbin/fsck %I %f\n", "fsck@dev-disk-by\\x2dlabel-root.service")
    assert result.name == "fsck@dev-disk-by-label-root"
    assert result.unit["service"]["command"] == ["/sbin/fsck", "dev/disk/by-label/root", "/dev/disk/by-label/root"]
    assert notes_about(result, "name") == []  # only the escape was undone


def test_an_instance_keeps_the_escapes_of_its_name_in_percent_i_and_percent_n():
    # systemd splits a value into words (undoing its escapes) before it replaces specifiers:
    # %i and %n are the escaped instance and unit names, %I the unescaped instance.
    result = systemd((FIXTURES / "web@.service").read_text(), "web@web\\x2dfront.service")
    assert result.name == "web@web-front"
    assert result.unit["description"] == "Web front web-front (web@web\\x2dfront.service)"
    assert result.unit["service"]["command"] == [
        "/usr/bin/web", "--instance", "web\\x2dfront", "--title", "web-front", "--unit", "web@web\\x2dfront.service"
    ]  # fmt: skip
    assert result.unit["service"]["environment"] == {"INSTANCE": "web\\x2dfront"}
    # the dependency is named as the instance postgresql@web\x2dfront.service is when imported
    assert result.unit["dependencies"] == {"requires": ["postgresql@web-front"]}
    assert import_systemd("[Service]\nExecStart=/bin/db\n", "postgresql@web\\x2dfront.service").name == "postgresql@web-front"
    assert result.notes == []


def test_an_escaped_blank_in_an_instance_stays_inside_its_word():
    result = systemd("[Service]\nExecStart=/bin/web %i --for %I\n", "web@a\\x20b.service")
    assert result.unit["service"]["command"] == ["/bin/web", "a\\x20b", "--for", "a b"]


def test_host_specifiers_are_left_and_noted():
    result = systemd("[Service]\nExecStart=/bin/app --host %H\n")
    assert result.unit["service"]["command"] == ["/bin/app", "--host", "%H"]
    assert "%H (host name)" in notes_about(result, "ExecStart")[0]


def test_a_host_specifier_is_noted_once_per_value_not_once_per_word():
    result = systemd("[Service]\nExecStartPre=/bin/a %H %H\nExecStartPre=/bin/b %H\nExecStart=/bin/c\n")
    assert [n.split(":")[0] for n in notes_about(result, "ExecStartPre")] == ["ExecStartPre=/bin/a %H %H", "ExecStartPre=/bin/b %H"]


def test_a_template_keeps_its_instance_specifiers():
    result = systemd("[Unit]\nDescription=Job %i\n[Service]\nExecStart=/bin/job %i\n", "job@.service")
    assert result.name == "job@"
    assert result.unit["description"] == "Job %i"
    assert result.unit["service"]["command"] == ["/bin/job", "%i"]
    assert "a template" in notes_about(result, "name")[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web", "web"),
        ("my app", "my_app"),
        (".hidden", "hidden"),
        ("-dash", "dash"),
        ("a" * 80, "a" * 64),
        ("ünï", "_n_"),
        ("", "unit"),
        ("x@y.z-1_2", "x@y.z-1_2"),
    ],
)
def test_sanitize_name(name, expected):
    assert sanitize_name(name) == expected


def test_a_renamed_unit_is_noted():
    result = systemd("[Service]\nExecStart=/bin/app\n", "my app.service")
    assert result.name == "my_app"
    assert notes_about(result, "name")[0].startswith("name=my app: approximated: renamed to 'my_app'")


def test_what_cannot_be_converted():
    no_exec = import_systemd("[Service]\nType=oneshot\nExecStop=/bin/true\n", "x.service")
    assert no_exec.unit is None and no_exec.error == "no ExecStart=: there is nothing to run"
    target = import_systemd("[Unit]\nDescription=x\n", "app.target")
    assert target.unit is None and "pidone has no targets" in target.error
    assert not target.ok
    timer = import_systemd("[Timer]\nOnCalendar=daily\n", "backup.timer")  # a fragment of backup's unit
    assert timer.fragment and timer.unit == {"timer": {"schedule": "0 0 * * *"}}


# --- the units installed on this machine ---------------------------------------


def installed_services() -> list[str]:
    """Return the path of each service unit with an ExecStart installed here (one per name)."""
    found: dict[str, str] = {}
    for directory in SYSTEM_UNIT_DIRS:
        for path in sorted(glob.glob(os.path.join(directory, "*.service"))):
            name = os.path.basename(path)
            if name in found:
                continue
            try:
                text = Path(path).read_text(errors="replace")
            except OSError:
                continue
            if re.search(r"^\s*ExecStart\s*=", text, re.M):
                found[name] = path
    return sorted(found.values())


def test_every_installed_service_unit_imports_into_a_valid_unit(tmp_path):
    paths = installed_services()
    if not paths:
        pytest.skip(f"no systemd service units with an ExecStart under {' or '.join(SYSTEM_UNIT_DIRS)}")
    failures = []
    for path in paths:
        result = import_systemd(Path(path).read_text(errors="replace"), os.path.basename(path), path)
        if result.unit is None:
            failures.append(f"{path}: not converted: {result.error}")
            continue
        try:
            loads(result)
        except Exception as exc:  # collect them all
            failures.append(f"{path}: {exc}")
        bad_notes = [note for note in result.notes if not NOTE.match(note)]
        if bad_notes:
            failures.append(f"{path}: notes not in the documented form: {bad_notes}")
    assert failures == [], "\n".join(failures)
    assert len(paths) > 0


def test_installed_service_units_through_the_command_into_pidone_check(tmp_path):
    paths = installed_services()
    if not paths:
        pytest.skip("no systemd service units installed here")
    status, out, err = run("-o", str(tmp_path), *paths)
    assert "bug in pidone import" not in err
    written = sorted(p.name for p in tmp_path.glob("*.toml"))
    assert len(written) == len(paths) - err.count(": not written: the unit name")
    load = load_directory(tmp_path, enforce_ownership=False)
    assert load.errors == {}
    # Every file loads: as a unit, or (NAME@.service) as a template, whose instances other units may name.
    loaded = {os.path.basename(unit.path) for unit in load.units.values()}
    assert loaded | {os.path.basename(t.path) for t in load.templates.values()} == set(written)


def test_a_template_becomes_a_pidone_template_that_loads(tmp_path):
    result = import_systemd("[Unit]\nDescription=Job %I on %H (100%%)\n[Service]\nExecStart=/bin/job %f %n\n",
                            "job@.service")
    assert result.unit["description"] == "Job %i on %%H (100%%)"
    assert result.unit["service"]["command"] == ["/bin/job", "/%i", "%n"]
    (tmp_path / "job@.toml").write_text(tomli_w.dumps({**result.unit, "instances": ["a"]}))
    loaded = load_directory(tmp_path, enforce_ownership=False)
    assert loaded.ok, loaded.problems()
    assert loaded.units["job@a"].description == "Job a on %H (100%)"
    assert loaded.units["job@a"].service.command == ("/bin/job", "/a", "job@a")

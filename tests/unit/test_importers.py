"""`pidone import`: systemd services, supervisord programs and Procfiles to pidone units, with notes for what is lost.

Every generated unit is also loaded with `loader.parse_unit` (see `convert`),
and every service unit installed on this machine is round-tripped.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import textwrap
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import tomli_w
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pidone import importers
from pidone.cli.importcmd import import_main
from pidone.cli.unitfiles import check_main
from pidone.importers import (
    ImportResult,
    detect,
    import_procfile,
    import_supervisord,
    import_systemd,
    needs_shell,
    sanitize_name,
)
from pidone.loader import load_directory, parse_unit
from pidone.spawn import prepare

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "import"
NOTE = re.compile(r"^\S.*: (not carried over|approximated|warning): \S.*$")
SYSTEM_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")


def loads(result: ImportResult):
    """Return the Unit the result's table loads as; fail the test if it does not."""
    assert result.unit is not None, result.error
    return parse_unit(result.name, tomli_w.dumps(result.unit).encode(), f"{result.name}.toml")


def systemd(text: str, name: str = "app.service") -> ImportResult:
    """Convert a systemd unit (dedented), check that it loads and that every note has the documented form."""
    result = import_systemd(textwrap.dedent(text), name)
    loads(result)
    assert all(NOTE.match(note) for note in result.notes), result.notes
    return result


def service(body: str, name: str = "app.service", unit: str = "") -> ImportResult:
    """Convert a unit whose [Service] section is `body` (and [Unit] section `unit`)."""
    text = f"[Unit]\n{textwrap.dedent(unit)}\n[Service]\n{textwrap.dedent(body)}"
    return systemd(text, name)


def notes_about(result: ImportResult, directive: str) -> list[str]:
    """Return the notes whose subject is `directive` (with or without a value)."""
    return [n for n in result.notes if n.startswith((directive + "=", directive + ":"))]


def run(*argv: str) -> tuple[int, str, str]:
    """Run `pidone import ARGV` in-process; return (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = import_main(list(argv))
    return status, out.getvalue(), err.getvalue()


# --- systemd: whole files ------------------------------------------------------


def test_a_service_using_most_mappings():
    result = import_systemd((FIXTURES / "web.service").read_text(), "web.service", str(FIXTURES / "web.service"))
    assert result.name == "web"
    assert result.unit == {
        "description": "Web frontend (web.service)",
        "service": {
            "command": [
                "/bin/sh", "-c",
                # $$: pidone passes ${...} on to the shell (SPEC §12)
                'exec /usr/bin/gunicorn --workers "$${WORKERS}" --bind 127.0.0.1:"$${PORT}" app:app',
            ],
            "type": "notify",
            "working_directory": "/srv/web",
            "user": "app",
            "group": "app",
            "supplementary_groups": ["ssl-cert", "www-data"],
            "environment": {"PORT": "8000", "GREETING": "hello world", "WORKERS": "4", "LANG": "C.UTF-8"},
            "environment_files": ["-/etc/default/web"],
            "umask": "0027",
            "oom_score_adjust": -100,
        },
        "dependencies": {"requires": ["db"], "wants": ["cache"], "after": ["migrate"]},
        "ready": {"timeout": 90},
        "restart": {"policy": "always", "delay": 2, "max_delay": 2, "max_retries": 0},
        "stop": {"signal": "SIGINT", "timeout": 20, "reload_signal": "SIGUSR2"},
        "log": {"file": "/var/log/web.log"},
        "limits": {
            "nofile": 65536,
            "core": "infinity",
            "nproc": [512, 1024],
            "no_new_privileges": True,
            "capabilities": ["CAP_NET_BIND_SERVICE"],
        },
    }  # fmt: skip
    unit = loads(result)
    assert unit.service.command[0] == "/bin/sh"
    dropped = {note.split("=")[0] for note in result.notes if ": not carried over: " in note}
    assert dropped == {"Wants", "After", "Before", "Documentation", "PrivateTmp", "ProtectSystem", "MemoryMax", "WantedBy"}
    assert all(NOTE.match(note) for note in result.notes)
    assert "Before=proxy: not carried over: pidone orders a unit only by its own dependencies:" in " ".join(result.notes)


def test_debian_ssh_service():
    result = systemd((FIXTURES / "ssh.service").read_text(), "ssh.service")
    assert result.unit == {
        "description": "OpenBSD Secure Shell server",
        "service": {
            "command": ["/bin/sh", "-c", "/usr/sbin/sshd -t && exec /usr/sbin/sshd -D $SSHD_OPTS"],
            "type": "notify",
            "environment_files": ["-/etc/default/ssh"],
        },
        "dependencies": {"after": ["auditd"]},
        "restart": {"policy": "on-failure"},
        "stop": {"reload_signal": "SIGHUP"},
    }
    assert notes_about(result, "ExecReload") == [
        "ExecReload=/usr/sbin/sshd -t: not carried over: pidone reloads a unit only by sending it a signal"
        " ([stop] reload_signal, sent by `pidone reload UNIT`)"
    ]
    for directive in ("RestartPreventExitStatus", "KillMode", "RuntimeDirectory", "ConditionPathExists", "Alias"):
        assert notes_about(result, directive), directive
    assert "$SSHD_OPTS" in notes_about(result, "ExecStart")[0]


def test_debian_nginx_service_is_forking():
    result = systemd((FIXTURES / "nginx.service").read_text(), "nginx.service")
    assert "type" not in result.unit["service"]
    assert result.unit["service"]["command"] == [
        "/bin/sh", "-c",
        "/usr/sbin/nginx -t -q -g 'daemon on; master_process on;' && exec /usr/sbin/nginx -g 'daemon on; master_process on;'",
    ]  # fmt: skip
    assert result.unit["restart"] == {"policy": "no"}
    assert result.unit["stop"] == {"timeout": 5}
    (note,) = notes_about(result, "Type")
    assert note.startswith('Type=forking: approximated: written as type = "simple": ')
    assert "no-daemonize flag" in note
    assert notes_about(result, "PIDFile")
    assert "dependencies" not in result.unit  # only targets
    assert len(notes_about(result, "After")) == 3


# --- systemd: [Service] --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected", "noted"),
    [
        ("simple", None, False),
        ("exec", None, False),
        ("notify", "notify", False),
        ("notify-reload", "notify", False),
        ("oneshot", "oneshot", False),
        ("forking", None, True),
        ("dbus", None, True),
        ("idle", None, True),
        ("bogus", None, True),
    ],
)
def test_type(value, expected, noted):
    result = service(f"Type={value}\nExecStart=/bin/app\n")
    assert result.unit["service"].get("type") == expected
    assert bool(notes_about(result, "Type")) is noted


def test_notify_reload_sends_its_reload_signal():
    assert service("Type=notify-reload\nExecStart=/bin/app\n").unit["stop"] == {"reload_signal": "SIGHUP"}
    result = service("Type=notify-reload\nReloadSignal=SIGUSR1\nExecStart=/bin/app\n")
    assert result.unit["stop"] == {"reload_signal": "SIGUSR1"}


def test_a_plain_command_is_exec_d_as_words():
    result = service("""ExecStart=/usr/bin/app --name "two words" 'it''s' a\\ b \\x41\n""")
    assert result.unit["service"]["command"] == ["/usr/bin/app", "--name", "two words", "its", "a b", "A"]
    assert result.notes == []


def test_prefix_minus_is_noted():
    result = service("ExecStart=-/bin/app\n")
    assert result.unit["service"]["command"] == ["/bin/app"]
    (note,) = result.notes
    assert note.startswith('ExecStart=-/bin/app: not carried over: the "-" prefix')


def test_prefix_at_drops_the_argv0_word():
    result = service("ExecStart=@/usr/sbin/daemon my-daemon --flag\n")
    assert result.unit["service"]["command"] == ["/usr/sbin/daemon", "--flag"]
    assert '"@" prefix' in result.notes[0]


@pytest.mark.parametrize("prefix", ["+", "!", "!!"])
def test_privilege_prefixes_are_noted(prefix):
    result = service(f"ExecStart={prefix}/bin/app\n")
    assert result.unit["service"]["command"] == ["/bin/app"]
    assert "runs every command of a unit with the unit's user" in result.notes[0]


def test_prefix_colon_turns_expansion_off():
    result = service("ExecStart=:/bin/echo $HOME ${USER}\n")
    assert result.unit["service"]["command"] == ["/bin/echo", "$HOME", "$${USER}"]  # literal to pidone too
    assert result.notes == []


def test_variables_defined_by_environment_are_substituted_without_a_shell():
    result = service('Environment=PORT=8000 "ARGS=-a -b"\nExecStart=/app --port=${PORT} $ARGS $$HOME\n')
    assert result.unit["service"]["command"] == ["/app", "--port=8000", "-a", "-b", "$HOME"]
    assert result.notes == []


def test_values_pidone_expands_keep_their_meaning_once_loaded(tmp_path):
    result = service("Environment=A=${X} B=$$$$\nWorkingDirectory=/srv/${X}\nExecStart=:/bin/echo ${USER} $${HOME}\n")
    assert result.unit["service"]["environment"]["A"] == "$${X}"
    (tmp_path / "x.toml").write_text(tomli_w.dumps(result.unit))
    unit = load_directory(tmp_path, enforce_ownership=False).units["x"]
    prepared = prepare(unit, {b"X": b"no", b"USER": b"no", b"PATH": b"/bin"})
    assert prepared.argv == ["/bin/echo", "${USER}", "$${HOME}"]
    assert prepared.env[b"A"] == b"${X}" and prepared.env[b"B"] == b"$$$$"  # as systemd, literally
    assert prepared.cwd == "/srv/${X}"


def test_other_variables_are_expanded_by_a_shell():
    result = service("EnvironmentFile=/etc/app.env\nExecStart=/app --port=${PORT} $OPTS 'x y' $$\n")
    script = "exec /app --port=\"$${PORT}\" $OPTS 'x y' '$'"  # $${: the shell's, not pidone's
    assert result.unit["service"]["command"] == ["/bin/sh", "-c", script]
    (note,) = notes_about(result, "ExecStart")
    assert "approximated" in note and "$PORT, $OPTS" in note and "the image needs /bin/sh" in note


def test_a_variable_systemd_sets_itself_is_noted():
    result = service("ExecStart=/bin/app --dir ${RUNTIME_DIRECTORY}\n")
    assert result.unit["service"]["command"][:2] == ["/bin/sh", "-c"]
    assert notes_about(result, "$RUNTIME_DIRECTORY")


def test_several_execstart_of_a_oneshot_run_in_a_chain():
    result = service("Type=oneshot\nExecStart=-/bin/a 1\nExecStart=/bin/b ''\nExecStart=/bin/c\n")
    assert result.unit["service"]["command"] == ["/bin/sh", "-c", "{ /bin/a 1 || :; } && /bin/b '' && exec /bin/c"]
    assert "the 3 ExecStart= commands run in turn" in notes_about(result, "ExecStart")[0]


def test_execstartpre_runs_first_in_the_same_shell():
    result = service("ExecStartPre=/bin/mkdir -p /run/app\nExecStartPre=-/bin/false\nExecStart=/bin/app\n")
    assert result.unit["service"]["command"] == [
        "/bin/sh", "-c", "/bin/mkdir -p /run/app && { /bin/false || :; } && exec /bin/app"
    ]  # fmt: skip


def test_only_the_first_execstart_of_a_simple_service_is_kept():
    result = service("ExecStart=/bin/a\nExecStart=/bin/b\n")
    assert result.unit["service"]["command"] == ["/bin/a"]
    assert notes_about(result, "ExecStart") == [
        "ExecStart=/bin/b: not carried over: only Type=oneshot services may have more than one ExecStart=;"
        " the first one is kept"
    ]


def test_an_empty_execstart_resets_the_list():
    result = service("Type=oneshot\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\n")
    assert result.unit["service"]["command"] == ["/bin/b"]


@pytest.mark.parametrize(
    ("value", "policy", "noted"),
    [
        ("no", "no", False),
        ("on-failure", "on-failure", False),
        ("always", "always", False),
        ("on-abnormal", "on-failure", True),
        ("on-abort", "on-failure", True),
        ("on-watchdog", "on-failure", True),
        ("on-success", "always", True),
    ],
)
def test_restart(value, policy, noted):
    result = service(f"ExecStart=/bin/app\nRestart={value}\n")
    assert result.unit["restart"]["policy"] == policy
    assert bool(notes_about(result, "Restart")) is noted


def test_no_restart_is_written_as_systemd_s_default():
    assert service("ExecStart=/bin/app\n").unit["restart"] == {"policy": "no"}
    assert "restart" not in service("Type=oneshot\nExecStart=/bin/app\n").unit  # pidone's oneshot default is no


@pytest.mark.parametrize(
    ("text", "seconds"), [("5", 5), ("5s", 5), ("500ms", 0.5), ("1min 30s", 90), ("2h", 7200), ("1.5", 1.5)]
)
def test_restart_sec_keeps_systemd_s_constant_delay(text, seconds):
    result = service(f"ExecStart=/bin/app\nRestart=always\nRestartSec={text}\n")
    assert result.unit["restart"] == {"policy": "always", "delay": seconds, "max_delay": seconds}


def test_restart_max_delay_sec():
    result = service("ExecStart=/bin/app\nRestart=always\nRestartSec=1\nRestartMaxDelaySec=1min\nRestartSteps=5\n")
    assert result.unit["restart"] == {"policy": "always", "delay": 1, "max_delay": 60}
    assert notes_about(result, "RestartSteps")


def test_start_limits():
    assert service("ExecStart=/bin/a\n", unit="StartLimitIntervalSec=0\n").unit["restart"]["max_retries"] == 0
    result = service("ExecStart=/bin/a\n", unit="StartLimitBurst=4\nStartLimitIntervalSec=20\n")
    assert result.unit["restart"]["max_retries"] == 3
    assert notes_about(result, "StartLimitBurst") and notes_about(result, "StartLimitIntervalSec")


def test_timeouts():
    result = service("ExecStart=/bin/app\nTimeoutStartSec=1min 30s\nTimeoutStopSec=45s\n")
    assert result.unit["ready"] == {"timeout": 90}
    assert result.unit["stop"] == {"timeout": 45}
    both = service("ExecStart=/bin/app\nTimeoutSec=30\n").unit
    assert both["ready"] == {"timeout": 30} and both["stop"] == {"timeout": 30}


def test_infinite_timeouts():
    result = service("ExecStart=/bin/app\nTimeoutStartSec=infinity\nTimeoutStopSec=infinity\n")
    assert result.unit["ready"] == {"timeout": 0}  # pidone's 0: no limit
    assert result.unit["stop"] == {"timeout": 365 * 24 * 3600}  # pidone's 0 would be SIGKILL at once
    assert "one year" in notes_about(result, "TimeoutStopSec")[0]


def test_a_bad_time_span_is_noted():
    result = service("ExecStart=/bin/app\nRestartSec=soon\n")
    assert "RestartSec=soon: not carried over: not a time span" in result.notes[0]


@pytest.mark.parametrize(("value", "name"), [("SIGINT", "SIGINT"), ("INT", "SIGINT"), ("quit", "SIGQUIT"), ("9", "SIGKILL")])
def test_kill_signal(value, name):
    assert service(f"ExecStart=/bin/app\nKillSignal={value}\n").unit["stop"] == {"signal": name}


def test_an_unknown_kill_signal_is_noted():
    result = service("ExecStart=/bin/app\nKillSignal=SIGRTMIN+3\n")
    assert "stop" not in result.unit
    assert notes_about(result, "KillSignal")


@pytest.mark.parametrize(
    ("command", "name"),
    [
        ("/bin/kill -HUP $MAINPID", "SIGHUP"),
        ("kill -s USR1 ${MAINPID}", "SIGUSR1"),
        ("/usr/bin/kill --signal USR2 $MAINPID", "SIGUSR2"),
        ("-/bin/kill -SIGWINCH $MAINPID", "SIGWINCH"),
        ("/bin/kill -1 $MAINPID", "SIGHUP"),
        ("/bin/kill --signal=TERM $MAINPID", "SIGTERM"),
    ],
)
def test_exec_reload_kill_becomes_the_reload_signal(command, name):
    result = service(f"ExecStart=/bin/app\nExecReload={command}\n")
    assert result.unit["stop"] == {"reload_signal": name}
    assert result.notes == []


def test_another_exec_reload_is_noted():
    result = service("ExecStart=/bin/app\nExecReload=/bin/app --reload\n")
    assert "stop" not in result.unit
    assert notes_about(result, "ExecReload")


def test_exec_stop_kill_becomes_the_stop_signal():
    result = service("ExecStart=/bin/app\nExecStop=/bin/kill -s QUIT $MAINPID\n")
    assert result.unit["stop"] == {"signal": "SIGQUIT"}
    assert "approximated" in notes_about(result, "ExecStop")[0]


def test_environment_assignments():
    result = service(
        """\
        ExecStart=/bin/app
        Environment="A=1 2" B=3 'C=x"y' D=
        Environment=B=4 1BAD=x NOEQUALS
        """
    )
    assert result.unit["service"]["environment"] == {"A": "1 2", "C": 'x"y', "D": "", "B": "4"}
    assert [n.split(":")[0] for n in notes_about(result, "Environment")] == ["Environment=1BAD=x", "Environment=NOEQUALS"]


def test_an_empty_environment_resets_it():
    result = service("ExecStart=/bin/app\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n")
    assert result.unit["service"]["environment"] == {"B": "2"}


def test_environment_files():
    result = service("ExecStart=/bin/app\nEnvironmentFile=-/etc/default/app\nEnvironmentFile=/etc/app.env\nEnvironmentFile=rel.env\n")
    assert result.unit["service"]["environment_files"] == ["-/etc/default/app", "/etc/app.env"]
    assert notes_about(result, "EnvironmentFile") == ["EnvironmentFile=rel.env: not carried over: not an absolute path"]


def test_user_group_and_supplementary_groups():
    result = service("ExecStart=/bin/app\nUser=1000\nGroup=www-data\nSupplementaryGroups=a b\nSupplementaryGroups=c\n")
    svc = result.unit["service"]
    assert (svc["user"], svc["group"], svc["supplementary_groups"]) == (1000, "www-data", ["a", "b", "c"])
    assert "replaces the user's own groups" in notes_about(result, "SupplementaryGroups")[0]


def test_dynamic_user_is_noted():
    assert notes_about(service("ExecStart=/bin/app\nDynamicUser=yes\n"), "DynamicUser")


@pytest.mark.parametrize(
    ("body", "expected", "noted"),
    [
        ("WorkingDirectory=/srv/app\n", "/srv/app", False),
        ("WorkingDirectory=-/srv/app\n", "/srv/app", True),
        ("WorkingDirectory=~\n", "/root", False),
        ("WorkingDirectory=~\nUser=app\n", None, False),  # pidone's default with a user is that user's home
        ("WorkingDirectory=relative\n", None, True),
        ("WorkingDirectory=%h/data\n", "/root/data", False),
    ],
)
def test_working_directory(body, expected, noted):
    result = service("ExecStart=/bin/app\n" + body)
    assert result.unit["service"].get("working_directory") == expected
    assert bool(notes_about(result, "WorkingDirectory")) is noted


def test_umask_oom_and_no_new_privileges():
    result = service("ExecStart=/bin/app\nUMask=022\nOOMScoreAdjust=500\nNoNewPrivileges=true\n")
    assert result.unit["service"]["umask"] == "0022"
    assert result.unit["service"]["oom_score_adjust"] == 500
    assert result.unit["limits"] == {"no_new_privileges": True}
    bad = service("ExecStart=/bin/app\nUMask=999\nOOMScoreAdjust=-2000\nNoNewPrivileges=no\n")
    assert "umask" not in bad.unit["service"] and "oom_score_adjust" not in bad.unit["service"]
    assert "limits" not in bad.unit
    assert notes_about(bad, "UMask") and notes_about(bad, "OOMScoreAdjust")


def test_resource_limits():
    result = service(
        """\
        ExecStart=/bin/app
        LimitNOFILE=65536
        LimitNPROC=512:1024
        LimitAS=4G
        LimitSTACK=8M:infinity
        LimitCORE=infinity
        LimitCPU=1h
        LimitRTTIME=1s
        LimitNICE=+5
        LimitMEMLOCK=64K
        """
    )
    assert result.unit["limits"] == {
        "as": 4 * 1024**3, "core": "infinity", "cpu": 3600, "memlock": 65536, "nice": 15,
        "nofile": 65536, "nproc": [512, 1024], "rttime": 1_000_000, "stack": [8 * 1024**2, "infinity"],
    }  # fmt: skip
    assert result.notes == []


def test_an_infinite_nofile_is_written_as_a_number():
    result = service("ExecStart=/bin/app\nLimitNOFILE=infinity\n")
    assert result.unit["limits"] == {"nofile": 1048576}
    assert notes_about(result, "LimitNOFILE")


def test_bad_limits_are_noted():
    result = service("ExecStart=/bin/app\nLimitCORE=2:1\nLimitNOFILE=lots\nLimitLOCKS=10\n")
    assert "limits" not in result.unit
    assert len(result.notes) == 3


def test_capability_bounding_set():
    def caps(*lines: str):
        body = "ExecStart=/bin/app\n" + "".join(f"CapabilityBoundingSet={line}\n" for line in lines)
        return service(body).unit.get("limits", {}).get("capabilities")

    assert caps("CAP_NET_BIND_SERVICE cap_chown") == ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]
    assert caps("CAP_CHOWN", "CAP_KILL") == ["CAP_CHOWN", "CAP_KILL"]
    without = caps("~CAP_SYS_ADMIN CAP_SYS_MODULE")
    assert "CAP_SYS_ADMIN" not in without and "CAP_SYS_MODULE" not in without and "CAP_CHOWN" in without
    assert caps("CAP_CHOWN", "") == []
    assert caps("~") is None


def test_ambient_capabilities_are_noted():
    result = service("ExecStart=/bin/app\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n")
    assert "setcap" in notes_about(result, "AmbientCapabilities")[0]


@pytest.mark.parametrize(
    ("body", "log", "noted"),
    [
        ("StandardOutput=journal\nStandardError=inherit\n", None, 0),
        ("StandardOutput=append:/var/log/app.log\n", "/var/log/app.log", 1),
        ("StandardOutput=file:/var/log/a.log\nStandardError=file:/var/log/b.log\n", "/var/log/a.log", 2),
        ("StandardOutput=null\n", None, 1),
        ("StandardInput=tty\n", None, 1),
    ],
)
def test_output(body, log, noted):
    result = service("ExecStart=/bin/app\n" + body)
    assert result.unit.get("log", {}).get("file") == log
    assert len(result.notes) == noted


def test_failure_action_makes_the_unit_critical():
    result = service("ExecStart=/bin/app\n", unit="FailureAction=exit\n")
    assert result.unit["service"]["critical"] is True
    assert notes_about(result, "FailureAction")


# --- systemd: [Unit] dependencies and the rest -----------------------------------


def test_dependencies():
    result = service(
        "ExecStart=/bin/app\n",
        unit="""\
        Description=The app
        After=network.target db.service cache.service x.socket
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
    assert "socket activation" in notes_about(result, "After")[1]


def test_dependency_names_are_made_valid():
    result = service("ExecStart=/bin/app\n", unit="Wants=weird\\x2dname.service bad+name.service\n")
    assert result.unit["dependencies"] == {"wants": ["weird-name", "bad_name"]}
    assert notes_about(result, "Wants") == ["Wants=bad+name.service: approximated: written as 'bad_name' (pidone's unit-name rule)"]


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


def test_host_specifiers_are_left_and_noted():
    result = systemd("[Service]\nExecStart=/bin/app --host %H\n")
    assert result.unit["service"]["command"] == ["/bin/app", "--host", "%H"]
    assert "%H (host name)" in notes_about(result, "ExecStart")[0]


def test_a_template_keeps_its_instance_specifiers():
    result = systemd("[Unit]\nDescription=Job %i\n[Service]\nExecStart=/bin/job %i\n", "job@.service")
    assert result.name == "job@"
    assert result.unit["description"] == "Job %i"
    assert result.unit["service"]["command"] == ["/bin/job", "%i"]
    assert "a template" in notes_about(result, "name")[0]


def test_a_template_becomes_a_pidone_template_that_loads(tmp_path):
    result = systemd("[Unit]\nDescription=Job %I on %H (100%%)\n[Service]\nExecStart=/bin/job %f %n\n", "job@.service")
    assert result.unit["description"] == "Job %i on %%H (100%%)"
    assert result.unit["service"]["command"] == ["/bin/job", "/%i", "%n"]
    (tmp_path / "job@.toml").write_text(tomli_w.dumps({**result.unit, "instances": ["a"]}))
    loaded = load_directory(tmp_path, enforce_ownership=False)
    assert loaded.ok, loaded.problems()
    assert loaded.units["job@a"].description == "Job a on %H (100%)"
    assert loaded.units["job@a"].service.command == ("/bin/job", "/a", "job@a")


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
    timer = import_systemd("[Timer]\nOnCalendar=daily\n", "backup.timer")
    assert timer.unit is None and "timers" in timer.error
    assert not timer.ok


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


# --- supervisord ---------------------------------------------------------------


def supervisord_fixture() -> list[ImportResult]:
    return import_supervisord((FIXTURES / "supervisord.conf").read_text(), "/etc/supervisor/supervisord.conf")


def test_supervisord_programs():
    results = supervisord_fixture()
    assert [(r.name, r.ok) for r in results] == [
        ("api", True), ("worker-00", True), ("worker-01", True), ("cron", True), ("memmon", False)
    ]  # fmt: skip
    for result in results[:-1]:
        loads(result)
        assert all(NOTE.match(note) for note in result.notes), result.notes
    assert results[-1].error.startswith("[eventlistener:x] cannot be converted")
    assert results[0].source == "/etc/supervisor/supervisord.conf [program:api]"


def test_supervisord_program_with_everything():
    api = supervisord_fixture()[0]
    assert api.unit == {
        "service": {
            "command": ["/bin/sh", "-c", 'exec /usr/local/bin/gunicorn --bind 0.0.0.0:"$${PORT}" app:app'],
            "working_directory": "/srv/app",
            "user": "app",
            "environment": {"PYTHONUNBUFFERED": "1", "APP_ENV": "production", "GREETING": "hello, world"},
        },
        "restart": {"policy": "always", "max_retries": 10, "reset_after": 5},
        "stop": {"signal": "SIGQUIT", "timeout": 30},
    }
    subjects = [note.split(":")[0] for note in api.notes]
    # the file's own sections first, then the program's
    assert subjects == ["[group", "[supervisord]", "[include] files=conf.d/*.conf", "command=/usr/local/bin/gunicorn --bind 0.0.0.0", "startsecs=5", "priority=10"]


def test_supervisord_numprocs_makes_one_unit_per_process():
    _api, first, second, *_ = supervisord_fixture()
    assert first.unit["service"]["command"] == ["python3", "-m", "worker", "--queue", "worker-00"]
    assert second.unit["service"]["command"][-1] == "worker-01"
    assert first.unit["log"] == {"file": "/var/log/worker.log", "max_bytes": 1024 * 1024, "backups": 5}
    assert first.unit["restart"] == {"max_retries": 3, "reset_after": 1}  # supervisord's defaults
    assert first.notes[0] == "numprocs=2: approximated: one unit per process (worker-00, worker-01)"
    assert any(n.startswith("exitcodes=0,2: not carried over") for n in first.notes)
    assert any(n.startswith("stderr_logfile=/var/log/worker.err: not carried over") for n in first.notes)


def test_supervisord_autostart_false_and_no_restart():
    cron = supervisord_fixture()[3]
    assert cron.unit == {"service": {"command": ["cron", "-f"], "umask": "0022"}, "restart": {"policy": "no"}}
    assert [n.split(":")[0] for n in cron.notes] == ["autostart=false", "stdout_syslog=true"]


@pytest.mark.parametrize(
    ("value", "policy"), [("true", "always"), ("false", "no"), ("unexpected", None), ("TRUE", "always")]
)
def test_supervisord_autorestart(value, policy):
    (result,) = import_supervisord(f"[program:x]\ncommand=/bin/x\nautorestart={value}\n", "s.conf")
    assert result.unit.get("restart", {}).get("policy") == policy


def test_supervisord_environment_syntax_and_expansions():
    text = """\
        [program:app]
        command=%(ENV_ROOT)s/bin/app --name %(program_name)s --here %(here)s --literal 100%%
        environment=ROOT="/srv/app",LIST="a,b",PATHS=/x:/y,FROM_ENV="%(ENV_HOME)s"
        stdout_logfile=AUTO
        """
    (result,) = import_supervisord(textwrap.dedent(text), "/etc/supervisor/conf.d/app.conf")
    loads(result)
    assert result.unit["service"] == {
        "command": ["/srv/app/bin/app", "--name", "app", "--here", "/etc/supervisor/conf.d", "--literal", "100%"],
        "environment": {"ROOT": "/srv/app", "LIST": "a,b", "PATHS": "/x:/y"},
    }
    assert [n.split(":")[0] for n in result.notes] == ["environment=FROM_ENV=%(ENV_HOME)s", "stdout_logfile=AUTO"]


def test_supervisord_startretries_zero():
    (result,) = import_supervisord("[program:x]\ncommand=/bin/x\nstartretries=0\n", "s.conf")
    assert result.unit["restart"]["max_retries"] == 1
    assert result.notes[0].startswith("startretries=0: approximated")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[program:x]\ndirectory=/srv\n", "no command="),
        ("[program:x]\ncommand=/bin/x\nnumprocs=2\n", "numprocs > 1 needs %(process_num)"),
        ("[supervisord]\nnodaemon=true\n", "no [program:x] section"),
        ("command=/bin/x\n", "not a supervisord configuration"),
        ("[program:x]\ncommand=/bin/x %(nope)s\n", "cannot be expanded"),
        ("[fcgi-program:x]\ncommand=/bin/x\nsocket=tcp://localhost:9000\n", "socket activation"),
    ],
)
def test_supervisord_what_cannot_be_converted(text, error):
    results = import_supervisord(text, "s.conf")
    assert not results[0].ok
    assert error in results[0].error


# --- Procfile --------------------------------------------------------------------


def test_procfile():
    results = import_procfile((FIXTURES / "Procfile").read_text(), "Procfile")
    assert [(r.name, r.unit) for r in results] == [
        ("web", {"service": {"command": ["/bin/sh", "-c", "bundle exec puma -C config/puma.rb -p $PORT"]}}),
        ("worker", {"service": {"command": ["bundle", "exec", "sidekiq", "-q", "default", "-q", "mailers"]}}),
        ("release", {"service": {"command": ["bundle", "exec", "rails", "db:migrate"], "type": "oneshot"}}),
        ("clock", {"service": {"command": ["/bin/sh", "-c", "bundle exec clockwork lib/clock.rb 2>&1 | tee -a log/clock.log"]}}),
        ("assets", {"service": {"command": ["npm", "run", "watch", "--", "--color"]}}),
    ]  # fmt: skip
    for result in results:
        loads(result)
        assert all(NOTE.match(note) for note in result.notes), result.notes
    shell_notes = [n for r in results for n in r.notes if n.startswith("Procfile:")]
    assert shell_notes == [
        "Procfile: approximated: commands with shell syntax run as /bin/sh -c COMMAND (web, clock), as foreman runs"
        " them; the others are split into words and run directly; the image needs /bin/sh"
    ]
    assert any("$PORT" in n for n in results[0].notes)
    assert any(n.startswith("release=") for n in results[2].notes)
    assert results[1].source == "Procfile (worker)"


def test_procfile_odd_lines():
    results = import_procfile("web: a\nnot a process\nweb: b\n\n# c\nbad name: x\n", "Procfile")
    assert [(r.name, r.unit["service"]["command"]) for r in results] == [("web", ["b"])]
    assert [n.split(":")[0] for n in results[0].notes] == ["line 2=not a process", "web (line 1)=a", "line 6=bad name"]
    empty = import_procfile("# nothing\n", "Procfile")
    assert not empty[0].ok and "no 'name: command' line" in empty[0].error


@pytest.mark.parametrize(
    ("command", "shell"),
    [
        ("bundle exec puma", False),
        ("python -m app --opt='a b'", False),
        ('echo "a b"', False),
        ("echo 'it$s literal'", False),
        ("node server.js $PORT", True),
        ('echo "$HOME"', True),
        ("a && b", True),
        ("a | b", True),
        ("a > log", True),
        ("a; b", True),
        ("ls *.txt", True),
        ("FOO=bar app", True),
        ("cd ~/app", True),
        ("a `b`", True),
        ("a $(b)", True),
        ("a # comment", True),
        ("a x#y", False),
        ("echo 'unclosed", True),
    ],
)
def test_needs_shell(command, shell):
    assert needs_shell(command) is shell


# --- detection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text", "kind"),
    [
        ("x/web.service", "", "systemd"),
        ("x/web.socket", "", "systemd"),
        ("Procfile", "", "procfile"),
        ("Procfile.dev", "", "procfile"),
        ("conf.d/app.conf", "[program:app]\ncommand=x\n", "supervisord"),
        ("supervisord.conf", "; c\n[supervisord]\n", "supervisord"),
        ("unit", "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/x\n", "systemd"),
        ("procs", "web: run\nworker: work\n", "procfile"),
        ("README", "hello world\n", None),
        ("empty", "", None),
    ],
)
def test_detect(path, text, kind):
    assert detect(path, text) == kind


# --- the command -----------------------------------------------------------------


def test_cli_prints_the_units_and_notes(tmp_path):
    status, out, err = run(str(FIXTURES / "ssh.service"))
    assert status == 0
    assert out.startswith(f"# ssh.toml: made by `pidone import` from {FIXTURES / 'ssh.service'}\n")
    document = tomllib.loads(out)
    assert document["service"]["type"] == "notify"
    assert parse_unit("ssh", out.encode(), "ssh.toml").service.environment_files == ("-/etc/default/ssh",)
    lines = err.splitlines()
    assert lines[0] == f"{FIXTURES / 'ssh.service'} -> ssh.toml"
    assert any(line.startswith("  KillMode=process: not carried over: ") for line in lines)
    assert lines[-1] == "pidone import: 1 unit from 1 input, 11 notes"


def test_cli_writes_files_and_refuses_to_overwrite(tmp_path):
    inputs = [str(FIXTURES / name) for name in ("ssh.service", "nginx.service", "Procfile")]
    status, out, err = run("-o", str(tmp_path), *inputs)
    assert (status, out) == (0, "")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{n}.toml" for n in ("ssh", "nginx", "web", "worker", "release", "clock", "assets"))
    assert f"-> {tmp_path}/ssh.toml" in err
    assert check_main([str(tmp_path)]) == 0

    (tmp_path / "ssh.toml").write_text("# mine\n[service]\ncommand = ['x']\n")
    status, out, err = run("-o", str(tmp_path), inputs[0])
    assert status == 1
    assert f"ssh: not written: {tmp_path}/ssh.toml already exists; use --force to replace it" in err
    assert (tmp_path / "ssh.toml").read_text().startswith("# mine")

    status, out, err = run("-o", str(tmp_path), "--force", inputs[0])
    assert status == 0
    assert (tmp_path / "ssh.toml").read_text().startswith("# ssh.toml: made by `pidone import`")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_cli_writes_supervisord_programs_and_reports_the_one_it_cannot_convert(tmp_path, capsys):
    status, _out, err = run("-o", str(tmp_path), str(FIXTURES / "supervisord.conf"))
    assert status == 1
    assert sorted(p.stem for p in tmp_path.glob("*.toml")) == ["api", "cron", "worker-00", "worker-01"]
    assert "memmon: cannot convert: [eventlistener:x] cannot be converted" in err
    assert err.splitlines()[-1] == "pidone import: 4 units from 1 input, 13 notes; 1 failed"
    assert check_main([str(tmp_path)]) == 0


def test_cli_json(tmp_path):
    status, out, err = run("--json", str(FIXTURES / "nginx.service"), str(tmp_path / "missing.service"))
    assert status == 1 and err == ""
    document = json.loads(out)
    assert document["ok"] is False
    nginx, missing = document["inputs"]
    assert (nginx["file"], nginx["format"], nginx["error"]) == (str(FIXTURES / "nginx.service"), "systemd", None)
    (unit,) = nginx["units"]
    assert unit["name"] == "nginx" and unit["ok"] and unit["path"] is None
    assert unit["unit"]["stop"] == {"timeout": 5}
    assert tomllib.loads(unit["toml"]) == unit["unit"]
    assert any(note.startswith("Type=forking") for note in unit["notes"])
    assert missing == {"file": str(tmp_path / "missing.service"), "format": None,
                       "error": "cannot read: No such file or directory", "units": []}  # fmt: skip


def test_cli_keeps_going_past_inputs_it_cannot_convert(tmp_path):
    (tmp_path / "README").write_text("hello\n")
    (tmp_path / "binary.service").write_bytes(b"\xff\xfe")
    (tmp_path / "noexec.service").write_text("[Service]\nType=oneshot\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    status, _out, err = run(
        "-o", str(out_dir), str(tmp_path / "README"), str(tmp_path / "binary.service"),
        str(tmp_path / "noexec.service"), str(tmp_path), str(FIXTURES / "ssh.service"),
    )  # fmt: skip
    assert status == 1
    assert [p.name for p in out_dir.iterdir()] == ["ssh.toml"]
    assert f"{tmp_path / 'README'}: cannot convert: not a format pidone can import" in err
    assert f"{tmp_path / 'binary.service'}: cannot convert: not UTF-8 text" in err
    assert "noexec: cannot convert: no ExecStart=" in err
    assert f"{tmp_path}: cannot convert: " in err


def test_cli_refuses_two_units_of_the_same_name(tmp_path):
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/web\n")
    status, out, err = run("-o", str(tmp_path), str(tmp_path / "web.service"), str(FIXTURES / "Procfile"))
    assert status == 1
    assert "web: not written: the unit name 'web' is already taken by" in err
    assert (tmp_path / "web.toml").read_text().count("/bin/web") == 1


def test_cli_warns_about_requires_on_units_it_did_not_make(tmp_path):
    (tmp_path / "app.service").write_text("[Unit]\nRequires=db.service\n[Service]\nExecStart=/bin/app\n")
    status, _out, err = run(str(tmp_path / "app.service"))
    assert status == 0
    assert "  requires=db: warning: db.toml is not part of this import;" in err
    (tmp_path / "db.service").write_text("[Service]\nExecStart=/bin/db\n")
    status, _out, err = run(str(tmp_path / "app.service"), str(tmp_path / "db.service"))
    assert "warning" not in err


def test_cli_reports_a_unit_the_loader_refuses_as_a_bug(tmp_path, monkeypatch):
    def broken(path, text):
        return [ImportResult("x", {"service": {"command": []}}, [], path)]

    monkeypatch.setattr("pidone.cli.importcmd.import_text", broken)
    status, out, err = run("-o", str(tmp_path), str(FIXTURES / "ssh.service"))
    assert status == 1
    assert "x: bug in pidone import: the unit it made does not load (please report it): " in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no FILE given"),
        (["--bogus", "x"], "unknown option '--bogus'"),
        (["-o"], "option -o needs a directory"),
        (["-o", "/nonexistent/dir", "x"], "/nonexistent/dir: no such directory"),
        (["--force", "x"], "--force only makes sense with -o DIR"),
    ],
)
def test_cli_usage_errors(argv, message):
    status, out, err = run(*argv)
    assert status == 2 and out == ""
    assert err.startswith(f"pidone import: {message}")
    assert "usage: pidone import" in err


def test_cli_help():
    status, out, _err = run("--help")
    assert status == 0 and out.startswith("usage: pidone import [-o DIR] [--force] [--json] FILE...")


def test_cli_output_forms(tmp_path):
    for argv in (["--output", str(tmp_path)], [f"--output={tmp_path}"], [f"-o{tmp_path}"]):
        status, _out, _err = run(*argv, "--force", str(FIXTURES / "ssh.service"))
        assert status == 0
    assert (tmp_path / "ssh.toml").exists()


def test_the_module_is_pure():
    """importers never prints, reads files or touches the environment."""
    source = Path(importers.__file__).read_text()
    for word in ("print(", "open(", "sys.stdout", "sys.stderr", "os.environ"):
        assert word not in source, word


# --- anything at all -------------------------------------------------------------

SYSTEMD_KEYS = [
    "ExecStart", "ExecStartPre", "ExecReload", "ExecStop", "Type", "Restart", "RestartSec", "RestartMaxDelaySec",
    "TimeoutSec", "TimeoutStartSec", "TimeoutStopSec", "KillSignal", "User", "Group", "SupplementaryGroups",
    "WorkingDirectory", "Environment", "EnvironmentFile", "UMask", "OOMScoreAdjust", "NoNewPrivileges",
    "CapabilityBoundingSet", "LimitNOFILE", "LimitCPU", "LimitNICE", "LimitRTTIME", "LimitAS", "StandardOutput",
    "StandardError", "After", "Requires", "Wants", "BindsTo", "Before", "Description", "StartLimitBurst",
    "StartLimitIntervalSec", "FailureAction", "ReloadSignal", "PrivateTmp",
]  # fmt: skip
SUPERVISORD_KEYS = [
    "command", "directory", "user", "environment", "autorestart", "startsecs", "startretries", "stopsignal",
    "stopwaitsecs", "umask", "numprocs", "process_name", "stdout_logfile", "stderr_logfile", "redirect_stderr",
    "stdout_logfile_maxbytes", "stdout_logfile_backups", "exitcodes", "priority",
]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from([
        "", "0", "-1", "1", "infinity", "99999999999999999999", "1e400", "yes", "/bin/x", "-/x", "~", "%i", "%H",
        "$X", "${X}", "$$", "\\x00", "'", '"a b"', "A=1 B=2", "kill -HUP $MAINPID", "@/bin/x y", "+:/bin/x",
        "x.service y.target", "1:2", "2:1", "+5", "4G", "1min 30s", "SIGINT", "append:/l", "exit", "%(ENV_X)s",
        "%(process_num)02d", "%(program_name)s", "A=\"1,2\",B=x", "1MB", "0", "true", "unexpected", "AUTO",
    ]),
)  # fmt: skip


def check_any(results: list[ImportResult]) -> None:
    for result in results:
        if result.unit is not None:
            loads(result)
        else:
            assert result.error
        for note in result.notes:
            assert "\n" not in note


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(SYSTEMD_KEYS), VALUES), max_size=12), st.sampled_from(["a.service", "a@b.service", "a@.service"]))
def test_any_systemd_service_converts_to_a_valid_unit_or_an_error(pairs, name):
    text = "[Unit]\n[Service]\nExecStart=/bin/app\n" + "".join(f"{k}={v.replace(chr(10), ' ')}\n" for k, v in pairs)
    check_any([import_systemd(text, name)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(SUPERVISORD_KEYS), VALUES), max_size=10))
def test_any_supervisord_program_converts_to_a_valid_unit_or_an_error(pairs):
    lines = "".join(f"{k}={v.replace(chr(10), ' ').replace(chr(13), ' ')}\n" for k, v in dict(pairs).items())
    check_any(import_supervisord("[program:app]\ncommand=/bin/app\n" + lines, "/etc/s.conf"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_converts_to_valid_units_or_errors(text):
    check_any(import_procfile(text, "Procfile"))
    check_any([import_systemd(text, "x.service")])
    check_any(import_supervisord(text, "s.conf"))

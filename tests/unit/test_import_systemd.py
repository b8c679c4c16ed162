"""`pidone import` of systemd services: whole files and the [Service] directives."""

from __future__ import annotations

import pytest
import tomli_w

from importhelp import FIXTURES, NOTE, loads, notes_about, service, strip_sigpipe, systemd
from pidone.importers import import_systemd


# --- systemd: whole files ------------------------------------------------------


def test_a_service_using_most_mappings():
    result = import_systemd((FIXTURES / "web.service").read_text(), "web.service", str(FIXTURES / "web.service"))
    assert strip_sigpipe(result)
    assert result.name == "web"
    assert result.unit == {
        "description": "Web frontend (web.service)",
        "service": {
            "command": [
                "/bin/sh", "-c",
                # EnvironmentFile= wins over Environment= in systemd: the unit's values are defaults
                # $${: pidone passes ${...} on to the shell (SPEC §12)
                'test -n "$${PORT+set}" || export PORT=8000; test -n "$${GREETING+set}" || export GREETING=\'hello world\';'
                ' test -n "$${WORKERS+set}" || export WORKERS=4; test -n "$${LANG+set}" || export LANG=C.UTF-8;'
                ' exec /usr/bin/gunicorn --workers "$${WORKERS}" --bind 127.0.0.1:"$${PORT}" app:app',
            ],
            "type": "notify",
            "working_directory": "/srv/web",
            "user": "app",
            "group": "app",
            "supplementary_groups": ["ssl-cert", "www-data"],
            "environment_files": ["-/etc/default/web"],
            "umask": "0027",
            "oom_score_adjust": -100,
        },
        "dependencies": {"requires": ["db"], "after": ["migrate"]},  # no After=cache: no wants
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


@pytest.mark.parametrize("prefix", ["+", "!"])
def test_a_privileged_main_command_runs_without_the_user(prefix):
    result = service(f"ExecStart={prefix}/bin/app\nUser=app\nGroup=app\nSupplementaryGroups=adm\n")
    assert result.unit["service"] == {"command": ["/bin/app"]}
    (note,) = result.notes
    assert note.startswith(f'ExecStart={prefix}/bin/app: approximated: the "{prefix}" prefix runs the command with'
                           " full privileges: no user, group or supplementary_groups is written")


def test_a_privileged_main_command_without_a_user_needs_no_note():
    assert service("ExecStart=!/bin/app\n").notes == []


def test_plus_also_leaves_the_capability_bounding_set_out():
    result = service("ExecStart=+/bin/app\nCapabilityBoundingSet=CAP_CHOWN\n")
    assert "limits" not in result.unit
    assert '"+" prefix' in notes_about(result, "CapabilityBoundingSet")[0]
    assert service("ExecStart=!/bin/app\nCapabilityBoundingSet=CAP_CHOWN\n").unit["limits"] == {"capabilities": ["CAP_CHOWN"]}


def test_double_bang_keeps_the_user():
    result = service("ExecStart=!!/bin/app\nUser=app\n")
    assert result.unit["service"] == {"command": ["/bin/app"], "user": "app"}
    assert '"!!" prefix: systemd ignores it' in notes_about(result, "ExecStart")[0]


def test_a_privileged_pre_command_is_noted_and_the_user_kept():
    result = service("ExecStartPre=+/bin/setup\nExecStart=/bin/app\nUser=app\n")
    assert result.unit["service"]["user"] == "app"
    assert "runs every command of a unit with the unit's user" in notes_about(result, "ExecStartPre")[0]


def test_prefix_colon_turns_expansion_off():
    result = service("ExecStart=:/bin/echo $HOME ${USER}\n")
    assert result.unit["service"]["command"] == ["/bin/echo", "$HOME", "$${USER}"]  # literal to pidone too
    assert result.notes == []


def test_variables_defined_by_environment_are_substituted_without_a_shell():
    result = service('Environment=PORT=8000 "ARGS=-a -b"\nExecStart=/app --port=${PORT} $ARGS $$HOME\n')
    assert result.unit["service"]["command"] == ["/app", "--port=8000", "-a", "-b", "$HOME"]
    assert result.notes == []


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
    assert result.notes == [
        "LimitNOFILE=65536: approximated: where the container's hard limit is lower and pidone may not raise it,"
        " pidone starts the unit with the highest value allowed and logs a warning (a container's limit is often"
        " below systemd's)"
    ]
    assert service("ExecStart=/bin/app\nLimitNOFILE=1024\n").notes == []


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


# --- faithful on real units (issue #19) -------------------------------------------


def test_environment_files_win_over_environment_as_in_systemd():
    result = systemd((FIXTURES / "defaults.service").read_text(), "defaults.service")
    assert result.unit["service"] == {
        "command": [
            "/bin/sh", "-c",
            'test -n "$${PORT+set}" || export PORT=6379; test -n "$${OPTS+set}" || export OPTS=\'--save 60 1\';'
            ' exec /usr/bin/cache-server --port "$${PORT}" $OPTS',
        ],
        "environment_files": ["-/etc/default/cache"],
    }  # fmt: skip
    (note,) = notes_about(result, "ExecStart")
    assert "Environment= sets PORT, OPTS only where the EnvironmentFile= files left them unset" in note


def test_environment_alone_is_still_substituted_or_written_as_environment():
    result = service("Environment=A=1\nExecStart=/bin/app $A\n")
    assert result.unit["service"] == {"command": ["/bin/app", "1"], "environment": {"A": "1"}}
    assert result.notes == []


def test_an_environment_file_without_variables_in_the_command_needs_no_shell():
    result = service("EnvironmentFile=-/etc/default/app\nExecStart=/bin/app --flag 'two words'\n")
    assert result.unit["service"] == {"command": ["/bin/app", "--flag", "two words"], "environment_files": ["-/etc/default/app"]}
    assert result.notes == []


def test_an_execstartpre_shell_script_runs_in_a_subshell_not_a_second_shell():
    result = systemd((FIXTURES / "mariadb.service").read_text(), "mariadb.service")
    (sh, dash_c, script) = result.unit["service"]["command"]
    assert (sh, dash_c) == ("/bin/sh", "-c")
    assert script == (
        "/usr/bin/install -m 755 -o mysql -g root -d /run/mysqld"
        " && ( [ ! -e /usr/bin/galera_recovery ] && VAR= ||    VAR=`/usr/bin/galera_recovery`;"
        " [ $? -eq 0 ] && echo $HOME || exit 1\n)"  # systemd's $$ is the shell's $
        " && exec /usr/sbin/mariadbd $MYSQLD_OPTS"
    )
    assert script.count("sh -c") == 0
    assert "the shell expands $MYSQLD_OPTS" in notes_about(result, "ExecStart")[0]


def test_an_execstartpre_shell_script_with_a_braced_variable_keeps_its_shell():
    # systemd replaces ${X} before the inner shell parses the script: only a shell of its own does the same
    result = service("ExecStartPre=/bin/sh -c 'echo ${X}'\nExecStart=/bin/app\n")
    assert result.unit["service"]["command"][2] == "/bin/sh -c 'echo '\"$${X}\" && exec /bin/app"


@pytest.mark.parametrize("value", [None, "yes", "no", "bogus"])
def test_ignore_sigpipe(value):
    text = "[Service]\nExecStart=/bin/app\n" + (f"IgnoreSIGPIPE={value}\n" if value else "")
    result = import_systemd(text, "app.service")
    if value == "bogus":
        assert notes_about(result, "IgnoreSIGPIPE")[0].startswith("IgnoreSIGPIPE=bogus: not carried over: not a boolean")
    else:  # systemd's default (yes) is carried as pidone's ignore_sigpipe, with nothing to note
        assert notes_about(result, "IgnoreSIGPIPE") == []
        assert result.unit["service"].get("ignore_sigpipe", False) is (value != "no")


def test_values_pidone_expands_keep_their_meaning_once_loaded(tmp_path):
    from pidone.loader import load_directory
    from pidone.spawn import prepare

    result = service("Environment=A=${X} B=$$$$\nWorkingDirectory=/srv/${X}\nExecStart=:/bin/echo ${USER} $${HOME}\n")
    assert result.unit["service"]["environment"]["A"] == "$${X}"
    (tmp_path / "x.toml").write_text(tomli_w.dumps(result.unit))
    unit = load_directory(tmp_path, enforce_ownership=False).units["x"]
    prepared = prepare(unit, {b"X": b"no", b"USER": b"no", b"PATH": b"/bin"})
    assert prepared.argv == ["/bin/echo", "${USER}", "$${HOME}"]
    assert prepared.env[b"A"] == b"${X}" and prepared.env[b"B"] == b"$$$$"  # as systemd, literally
    assert prepared.cwd == "/srv/${X}"

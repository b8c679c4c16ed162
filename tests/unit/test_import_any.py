"""`pidone import` on anything at all: every input converts to a valid unit or an error; the package is pure."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importhelp import loads
from pidone import importers
from pidone.importers import ImportResult, import_procfile, import_supervisord, import_systemd


def test_the_package_is_pure():
    """importers never prints, reads files or touches the environment."""
    sources = sorted(Path(importers.__file__).parent.glob("*.py"))
    assert len(sources) > 5
    for path in sources:
        source = path.read_text()
        for word in ("print(", "open(", "sys.stdout", "sys.stderr", "os.environ"):
            assert word not in source, (path.name, word)


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

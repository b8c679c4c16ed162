"""The unit model: the name rule, the value syntaxes, the defaults, and equality ignoring the file path."""

from __future__ import annotations

import dataclasses
import math
import signal

import pytest

from pidone.units import (
    CAPABILITIES,
    MAX_DURATION,
    NAME_RE,
    RLIM_INFINITY,
    RLIMITS,
    DependenciesSection,
    Probe,
    ProbeKind,
    RestartPolicy,
    StopSection,
    Unit,
    UnitType,
    default_ready_timeout,
    default_restart_policy,
    make_unit,
    parse_argv,
    parse_capability,
    parse_duration,
    parse_http_url,
    parse_host_port,
    parse_int,
    parse_rlimit,
    parse_signal,
    parse_umask,
    show,
    valid_name,
)


@pytest.mark.parametrize(
    "name",
    ["a", "web", "web-1", "a.b", "a@b", "_x", "@inst", "0", "x" * 64, "A_Z.a-z@09", "a..b"],
)
def test_valid_names(name):
    assert valid_name(name)
    assert NAME_RE.fullmatch(name)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".hidden", "-x", "a b", "a/b", "../x", "a\n", "x\n", "x" * 65, "é", "a:b", "a\0", "a*"],
)
def test_invalid_names(name):
    assert not valid_name(name)


def test_valid_name_refuses_non_strings():
    assert not valid_name(42)
    assert not valid_name(None)
    assert not valid_name(b"web")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (10, 10.0),
        (0.25, 0.25),
        ("250ms", 0.25),
        ("10s", 10.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h 2m 3s", 3723.0),
        ("5", 5.0),
        (" 5 s ", 5.0),
        (".5s", 0.5),
        (MAX_DURATION, MAX_DURATION),
    ],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ten", "expected seconds as a number, or a string such as \"250ms\""),
        (math.nan, "got nan"),
        (math.inf, "must be at most one year (31536000 s), got inf"),
        (-math.inf, "must not be negative"),
        (-1, "must not be negative, got -1"),
        (1e308, "must be at most one year"),
        (10**30, "must be at most one year"),
        (True, "got a boolean (true)"),
        ("", "got ''"),
        ("1e3", "got '1e3'"),
        ("-1s", "got '-1s'"),
        ("10x", "got '10x'"),
        ("nan", "got 'nan'"),
        ("9" * 400 + "s", "must be at most one year"),
        ([1], "got an array ([1])"),
    ],
)
def test_bad_durations(value, message):
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert message in str(caught.value)


def test_positive_duration_refuses_zero():
    with pytest.raises(ValueError, match="must be more than 0"):
        parse_duration(0, positive=True)


def test_parse_int_refuses_bools_floats_and_out_of_range():
    assert parse_int(3, 0, 5) == 3
    for value in (True, 3.0, "3", 6, -1):
        with pytest.raises(ValueError, match="expected an integer from 0 to 5"):
            parse_int(value, 0, 5)


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:5432", "127.0.0.1", 5432),
        ("[::1]:80", "::1", 80),
        ("localhost:80", "localhost", 80),
        ("db.internal:1", "db.internal", 1),
        ("[fe80::1]:65535", "fe80::1", 65535),
    ],
)
def test_tcp_probe_targets(text, host, port):
    probe = Probe.parse(ProbeKind.TCP, text)
    assert (probe.kind, probe.target, probe.host, probe.port) == (ProbeKind.TCP, text, host, port)
    assert parse_host_port(text) == (host, port)


@pytest.mark.parametrize(
    "text",
    ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", ":80", "::1:80", "[::1]80", "[nothost]:80", "a b:80", "x:８0", "x:-1"],
)
def test_bad_tcp_targets(text):
    with pytest.raises(ValueError, match="expected \"HOST:PORT\""):
        Probe.parse(ProbeKind.TCP, text)


@pytest.mark.parametrize(
    ("url", "host", "port", "path"),
    [
        ("http://127.0.0.1:8000/healthz", "127.0.0.1", 8000, "/healthz"),
        ("http://localhost", "localhost", 80, "/"),
        ("http://[::1]:81/a?b=c", "::1", 81, "/a?b=c"),
    ],
)
def test_http_probe_targets(url, host, port, path):
    probe = Probe.parse(ProbeKind.HTTP, url)
    assert (probe.host, probe.port, probe.path, probe.target) == (host, port, path, url)
    assert parse_http_url(url) == (host, port, path)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://x/", "only http:// URLs are supported"),
        ("ftp://x/", "only http:// URLs are supported"),
        ("127.0.0.1:80", "only http:// URLs are supported"),
        ("http:///path", "expected a URL such as"),
        ("http://user@x/", "expected a URL such as"),
        ("http://x:99999/", "port must be 1-65535"),
        ("http://x/a b", "expected a URL such as"),
        ("http://x/\n", "expected a URL such as"),
    ],
)
def test_bad_http_targets(url, message):
    with pytest.raises(ValueError) as caught:
        Probe.parse(ProbeKind.HTTP, url)
    assert message in str(caught.value)


def test_exec_and_path_probes():
    probe = Probe.parse(ProbeKind.EXEC, ["pg_isready", "-h", "127.0.0.1"])
    assert probe.argv == ("pg_isready", "-h", "127.0.0.1")
    assert probe.target == "pg_isready -h 127.0.0.1"
    assert Probe.parse(ProbeKind.EXEC, "test -e '/a b'").argv == ("test", "-e", "/a b")
    assert Probe.parse(ProbeKind.PATH, "/run/app.ready").path == "/run/app.ready"
    with pytest.raises(ValueError, match="expected an absolute path"):
        Probe.parse(ProbeKind.PATH, "run/app.ready")


@pytest.mark.parametrize(
    ("value", "argv"),
    [
        (["a", "b c"], ("a", "b c")),
        ("gunicorn -b 0.0.0.0:8000 app:app", ("gunicorn", "-b", "0.0.0.0:8000", "app:app")),
        ("sh -c 'echo $HOME && ls'", ("sh", "-c", "echo $HOME && ls")),
        ('a "b c" d\\ e', ("a", "b c", "d e")),
        # any word but the first may be empty: `redis-server --save ""` turns snapshots off
        (["redis-server", "--save", "", "--logfile", ""], ("redis-server", "--save", "", "--logfile", "")),
        ('redis-server --save "" --logfile \'\'', ("redis-server", "--save", "", "--logfile", "")),
        (["a", ""], ("a", "")),
    ],
)
def test_commands(value, argv):
    assert parse_argv(value) == argv


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "expected a non-empty array of strings, or a string, got an integer (42)"),
        ([], "got an empty array"),
        ("", "got an empty command"),
        ("   ", "got an empty command"),
        ([""], "word 1 (the program) is empty"),
        (["", "a"], "word 1 (the program) is empty"),
        ('"" a', "word 1 (the program) is empty"),
        ("''", "word 1 (the program) is empty"),
        (["a", 1], "word 2 is an integer (1)"),
        ("a 'b", "cannot split \"a 'b\" into words: No closing quotation"),
        (["a\0"], "word 1 contains a NUL character"),
        ("a\0", "must not contain a NUL character"),
    ],
)
def test_bad_commands(value, message):
    with pytest.raises(ValueError) as caught:
        parse_argv(value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "number"),
    [("SIGTERM", signal.SIGTERM), ("TERM", signal.SIGTERM), ("sigint", signal.SIGINT), (9, signal.SIGKILL), ("SIGRTMIN", signal.SIGRTMIN)],
)
def test_signals(value, number):
    assert parse_signal(value) == number
    assert isinstance(parse_signal(value), signal.Signals)


@pytest.mark.parametrize("value", ["SIGFOO", "", 0, 99, -1, True, 1.0, "15"])
def test_bad_signals(value):
    with pytest.raises(ValueError, match='expected a signal name such as "SIGTERM" or "TERM", or its number'):
        parse_signal(value)


@pytest.mark.parametrize(("value", "mask"), [("0022", 0o22), ("022", 0o22), ("0o027", 0o27), ("0", 0), (0o777, 0o777), (18, 18)])
def test_umask(value, mask):
    assert parse_umask(value) == mask


@pytest.mark.parametrize("value", ["0999", "", "0o", "00777", "1000", "rwx", 0o1000, -1, True, 0.5])
def test_bad_umask(value):
    with pytest.raises(ValueError, match='expected an octal string such as "0022"'):
        parse_umask(value)


@pytest.mark.parametrize(
    ("value", "pair"),
    [
        (1024, (1024, 1024)),
        ("infinity", (RLIM_INFINITY, RLIM_INFINITY)),
        ("unlimited", (RLIM_INFINITY, RLIM_INFINITY)),
        ([10, 20], (10, 20)),
        ([10, "infinity"], (10, RLIM_INFINITY)),
        (0, (0, 0)),
    ],
)
def test_rlimits(value, pair):
    assert parse_rlimit(value) == pair


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "expected 0 to 9223372036854775807"),
        (2**63, "expected 0 to 9223372036854775807"),
        ([20, 10], "the soft limit 20 is above the hard limit 10"),
        (["infinity", 10], "the soft limit 'infinity' is above the hard limit 10"),
        ([1, 2, 3], "got an array of 3"),
        ("lots", "expected an integer, \"infinity\""),
        (1.5, "expected an integer, \"infinity\""),
        (True, "expected an integer, \"infinity\""),
    ],
)
def test_bad_rlimits(value, message):
    with pytest.raises(ValueError) as caught:
        parse_rlimit(value)
    assert message in str(caught.value)


def test_rlimit_names_are_lower_case_without_prefix():
    assert "nofile" in RLIMITS and "nproc" in RLIMITS and "core" in RLIMITS
    assert "ofile" not in RLIMITS  # BSD alias of nofile
    assert all(name == name.lower() and not name.startswith("rlimit") for name in RLIMITS)


def test_capabilities():
    assert parse_capability("CAP_NET_BIND_SERVICE") == "CAP_NET_BIND_SERVICE"
    assert parse_capability("net_bind_service") == "CAP_NET_BIND_SERVICE"
    assert CAPABILITIES["CAP_CHOWN"] == 0 and CAPABILITIES["CAP_CHECKPOINT_RESTORE"] == 40
    for bad in ("CAP_FOO", "", 10):
        with pytest.raises(ValueError):
            parse_capability(bad)


def test_type_dependent_defaults():
    assert default_ready_timeout(UnitType.SIMPLE) == 90
    assert default_ready_timeout(UnitType.NOTIFY) == 90
    assert default_ready_timeout(UnitType.ONESHOT) == 0
    assert default_restart_policy(UnitType.SIMPLE) is RestartPolicy.ON_FAILURE
    assert default_restart_policy(UnitType.ONESHOT) is RestartPolicy.NO
    oneshot = make_unit("job", type=UnitType.ONESHOT)
    assert oneshot.ready.timeout == 0 and oneshot.restart.policy is RestartPolicy.NO


def test_section_defaults_match_spec():
    unit = make_unit("web", ["app"])
    assert (unit.ready.timeout, unit.ready.interval) == (90, 0.1)
    assert (unit.health.probe, unit.health.interval, unit.health.timeout, unit.health.retries) == (None, 10, 2, 3)
    restart = unit.restart
    assert (restart.policy, restart.delay, restart.max_delay, restart.max_retries, restart.reset_after) == (
        RestartPolicy.ON_FAILURE, 0.1, 30, 5, 60,
    )  # fmt: skip
    assert (unit.stop.signal, unit.stop.timeout, unit.stop.reload_signal) == (signal.SIGTERM, 10, signal.SIGHUP)
    assert (unit.log.file, unit.log.max_bytes, unit.log.backups) == (None, 10485760, 3)
    assert (unit.limits.rlimits, unit.limits.no_new_privileges, unit.limits.capabilities) == ((), False, None)
    service = unit.service
    assert service.type is UnitType.SIMPLE and not service.critical and service.supplementary_groups is None
    assert service.umask is None and service.environment == () and not service.clear_environment


def test_ordering_is_requires_wants_after_deduplicated_in_order():
    unit = make_unit("a", requires=["db", "cache"], wants=["cache", "log"], after=["migrate", "db"])
    assert unit.ordering == ("db", "cache", "log", "migrate")
    assert make_unit("b").ordering == ()


def test_equality_ignores_path_but_not_definition():
    one = make_unit("web", ["app"], path="/etc/units/web.toml")
    assert one == make_unit("web", ["app"], path="/elsewhere/web.toml")
    assert one != make_unit("web", ["app", "-v"], path="/etc/units/web.toml")
    assert one != dataclasses.replace(one, stop=StopSection(timeout=3))
    assert hash(one) == hash(make_unit("web", ["app"]))


def test_units_are_frozen():
    unit = make_unit("web")
    with pytest.raises(dataclasses.FrozenInstanceError):
        unit.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        unit.dependencies.requires = ("x",)  # type: ignore[misc]
    assert Unit.__dataclass_fields__["path"].compare is False
    assert DependenciesSection() == DependenciesSection((), (), ())


def test_show_keeps_messages_short_and_on_one_line():
    assert show("a\nb") == "'a\\nb'"
    assert len(show("x" * 500)) == 60
    assert show(10**400) == "a 401-digit integer"
    assert show(True) == "true"

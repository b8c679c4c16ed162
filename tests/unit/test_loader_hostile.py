"""Hostile unit files (RELIABILITY §3.A1-A4, A9, A11): each one is a clear Problem, never a traceback, and the other units still load."""

from __future__ import annotations

import os
import socket
import stat
import time

import pytest

from pidone import loader
from pidone.errors import ConfigError
from pidone.loader import MAX_FILE_SIZE, load_directory, parse_unit

GOOD = b'[service]\ncommand = ["sleep", "1"]\n'
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown and to enforce ownership")


def load_with_good(directory, name: str, data: bytes | None = None):
    """Write `name` (when `data` is given) beside a good unit; load; return (result, that file's problems as strings)."""
    (directory / "good.toml").write_bytes(GOOD)
    if data is not None:
        (directory / name).write_bytes(data)
    result = load_directory(directory)
    assert "good" in result.units, "one bad file must not stop the others"
    key = name[: -len(".toml")] if name.endswith(".toml") else name
    return result, [str(problem) for problem in result.errors.get(key, [])]


# --- A1: bad TOML, each with file:line:col -----------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'[service]\ncommand = "sleep\n', "2:17: invalid TOML: illegal character '\\n'"),
        (b'[service]\ncommand = "sleep', "2:17: invalid TOML: unterminated string"),
        (b'[service]\ncommand = ["a"]\ncommand = ["b"]\n', "3:16: invalid TOML: cannot overwrite a value"),
        (b'[service]\ncommand = ["a"]\n[service]\n', "3:9: invalid TOML: cannot declare ('service',) twice"),
        (b'\xef\xbb\xbf[service]\ncommand = ["a"]\n', "1:1: starts with a byte-order mark (BOM); save the file as UTF-8 without one"),
        (b'[service]\ncommand = ["a\x00"]\n', "2:14: invalid TOML: illegal character '\\x00'"),
        (b'[service]\n# caf\xe9\ncommand = ["a"]\n', "2:6: not valid UTF-8 (byte 0xe9)"),
        (b'[service]\ncommand = ["caf\xc3\xa9", "\xff"]\n', "2:21: not valid UTF-8 (byte 0xff)"),
        (b"[service\n", "1:9: invalid TOML: expected ']' at the end of a table declaration"),
        (b"= 1\n", "1:1: invalid TOML: invalid statement"),
    ],
)
def test_bad_toml_is_reported_with_line_and_column(tmp_path, data, message):
    result, found = load_with_good(tmp_path, "bad.toml", data)
    assert found == [f"{tmp_path}/bad.toml:{message}"]
    assert "bad" not in result.units
    problem = result.errors["bad"][0]
    assert problem.line is not None and problem.col is not None


# --- A2, A3: unknown keys, wrong types and ranges ------------------------------


def test_a_misspelt_user_fails_closed(tmp_path):
    result, found = load_with_good(tmp_path, "svc.toml", GOOD + b'usr = "nobody"\n')
    assert found == [f"{tmp_path}/svc.toml:3: [service] usr: unknown key, did you mean 'user'?"]
    assert "svc" not in result.units


@pytest.mark.parametrize(
    ("data", "messages"),
    [
        (b"[service]\ncmd = 42\n", ["2: [service] cmd: unknown key, did you mean 'command'?",
                                    '1: [service] command: missing: every unit needs a command, e.g. command = ["/usr/bin/app", "--flag"]']),
        (b"[service]\ncommand = []\n", ["2: [service] command: expected a non-empty array of strings, or a string, got an empty array"]),
        (b"restart = 5\n" + GOOD, ["1: restart: expected a table ([restart]), got an integer (5)"]),
        (GOOD + b'[ready]\ntimeout = "ten"\n', ['4: [ready] timeout: expected seconds as a number, or a string such as '
                                               '"250ms", "1.5s", "2m", "1h" or "1m30s", got \'ten\'']),
        (GOOD + b"[stop]\ntimeout = nan\n", ['4: [stop] timeout: expected seconds as a number, or a string such as '
                                            '"250ms", "1.5s", "2m", "1h" or "1m30s", got nan']),
        (GOOD + b"[stop]\ntimeout = -inf\n", ["4: [stop] timeout: must not be negative, got -inf"]),
        (GOOD + b"[stop]\ntimeout = 1e308\n", ["4: [stop] timeout: must be at most one year (31536000 s), got 1e+308"]),
        (GOOD + b"[restart]\nmax_retries = 123456789012345678901234567890\n",
         ["4: [restart] max_retries: expected an integer from 0 to 1000000, got 123456789012345678901234567890"]),
        (b'[service]\ncommand = ["sh", "\\u0000"]\n', ["2: [service] command: word 2 contains a NUL character: '\\x00'"]),
        (GOOD + b'environment = { A = "\\u0000" }\n', ["3: [service] environment: A: must not contain a NUL character"]),
    ],
)
def test_wrong_types_and_ranges_are_rejected_before_anything_runs(tmp_path, data, messages):
    result, found = load_with_good(tmp_path, "svc.toml", data)
    assert found == [f"{tmp_path}/svc.toml:{message}" for message in messages]


def test_a_huge_integer_literal_is_a_problem():
    with pytest.raises(ConfigError) as caught:
        parse_unit("x", GOOD + b"[restart]\nmax_retries = " + b"9" * 5000 + b"\n", "x.toml")
    assert [str(p) for p in caught.value.problems] == [
        "x.toml: invalid TOML: exceeds the limit (4300 digits) for integer string conversion: value has 5000 digits"
    ]


# --- A4: huge or hostile file objects ----------------------------------------


def test_arrays_nested_10000_deep(tmp_path):
    data = GOOD + b"x = " + b"[" * 10000 + b"]" * 10000 + b"\n"
    _, found = load_with_good(tmp_path, "deep.toml", data)
    assert found == [f"{tmp_path}/deep.toml: invalid TOML: arrays or tables nested too deeply"]


def test_inline_tables_nested_deep(tmp_path):
    data = GOOD + b"x = " + b"{a = " * 5000 + b"1" + b"}" * 5000 + b"\n"
    _, found = load_with_good(tmp_path, "deep.toml", data)
    assert found == [f"{tmp_path}/deep.toml: invalid TOML: arrays or tables nested too deeply"]


def test_a_50_mb_file_is_refused_without_being_read(tmp_path):
    with open(tmp_path / "big.toml", "wb") as file:
        file.truncate(50 * 1024 * 1024)  # sparse: costs nothing, reading it would
    started = time.monotonic()
    _, found = load_with_good(tmp_path, "big.toml")
    assert time.monotonic() - started < 1
    assert found == [
        f"{tmp_path}/big.toml: refused: 52428800 bytes, larger than the 1048576-byte (1 MiB) limit for a unit file"
    ]


def test_a_file_of_exactly_the_cap_is_read_and_one_byte_more_is_not(tmp_path):
    filler = b"#" * (MAX_FILE_SIZE - len(GOOD) - 1) + b"\n"
    result, found = load_with_good(tmp_path, "edge.toml", GOOD + filler)
    assert found == [] and "edge" in result.units
    result, found = load_with_good(tmp_path, "edge.toml", GOOD + filler + b"\n")
    assert found == [
        f"{tmp_path}/edge.toml: refused: 1048577 bytes, larger than the 1048576-byte (1 MiB) limit for a unit file"
    ]


def test_reading_stops_at_the_cap_even_if_the_size_lied(tmp_path):
    path = tmp_path / "grown"
    path.write_bytes(b"x" * (MAX_FILE_SIZE + 100))
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(loader._Refused, match="over 1048577 bytes"):
            loader._read_capped(fd)
        assert os.lseek(fd, 0, os.SEEK_CUR) == MAX_FILE_SIZE + 1
    finally:
        os.close(fd)


def test_a_fifo_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "pipe.toml")
    started = time.monotonic()
    _, found = load_with_good(tmp_path, "pipe.toml")
    assert time.monotonic() - started < 1
    assert found == [f"{tmp_path}/pipe.toml: refused: not a regular file (a FIFO)"]


def test_a_directory_named_like_a_unit(tmp_path):
    (tmp_path / "x.toml").mkdir()
    _, found = load_with_good(tmp_path, "x.toml")
    assert found == [f"{tmp_path}/x.toml: refused: not a regular file (a directory)"]


def test_a_socket_named_like_a_unit(tmp_path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "s.toml"))
        _, found = load_with_good(tmp_path, "s.toml")
    assert found == [f"{tmp_path}/s.toml: refused: not a regular file (a socket)"]


@as_root
def test_a_device_node_is_not_opened(tmp_path):
    os.mknod(tmp_path / "null.toml", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    _, found = load_with_good(tmp_path, "null.toml")
    assert found == [f"{tmp_path}/null.toml: refused: not a regular file (a character device)"]


def test_a_symlink_to_dev_zero_is_refused_saying_where_it_points(tmp_path):
    os.symlink("/dev/zero", tmp_path / "zero.toml")
    _, found = load_with_good(tmp_path, "zero.toml")
    assert found == [f"{tmp_path}/zero.toml: refused: a symlink to '/dev/zero' (/dev/zero), outside the units directory"]


def test_a_symlink_out_of_the_directory_is_refused(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    (tmp_path / "elsewhere.toml").write_bytes(GOOD)
    os.symlink("../elsewhere.toml", units / "web.toml")
    _, found = load_with_good(units, "web.toml")
    assert found == [
        f"{units}/web.toml: refused: a symlink to '../elsewhere.toml' ({tmp_path}/elsewhere.toml), outside the units directory"
    ]


def test_a_symlink_within_the_directory_is_followed(tmp_path):
    (tmp_path / "real.conf").write_bytes(GOOD + b'type = "oneshot"\n')
    os.symlink("real.conf", tmp_path / "job.toml")
    os.symlink("job.toml", tmp_path / "alias.toml")
    result, found = load_with_good(tmp_path, "job.toml")
    assert found == []
    assert result.units["job"].service.type.value == "oneshot" and "alias" in result.units
    assert result.units["job"].path == f"{tmp_path}/job.toml"


def test_a_dangling_symlink(tmp_path):
    os.symlink("nowhere.conf", tmp_path / "gone.toml")
    _, found = load_with_good(tmp_path, "gone.toml")
    assert found == [f"{tmp_path}/gone.toml: cannot read: No such file or directory"]


def test_a_symlink_to_a_directory_inside(tmp_path):
    (tmp_path / "sub").mkdir()
    os.symlink("sub", tmp_path / "sub.toml")
    _, found = load_with_good(tmp_path, "sub.toml")
    assert found == [f"{tmp_path}/sub.toml: refused: not a regular file (a directory)"]


def test_every_hostile_object_at_once_and_boot_goes_on(tmp_path):
    with open(tmp_path / "big.toml", "wb") as file:
        file.truncate(50 * 1024 * 1024)
    os.mkfifo(tmp_path / "fifo.toml")
    os.symlink("/dev/zero", tmp_path / "zero.toml")
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "deep.toml").write_bytes(b"x = " + b"[" * 10000 + b"]" * 10000)
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbf" + GOOD)
    result, _ = load_with_good(tmp_path, "good.toml")
    assert sorted(result.errors) == ["big", "bom", "deep", "dir", "fifo", "zero"]
    assert all(len(problems) == 1 for problems in result.errors.values())


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("k"), MemoryError(), RecursionError("deep")])
def test_any_unexpected_exception_while_parsing_becomes_a_problem(monkeypatch, error):
    def explode(text):
        raise error

    monkeypatch.setattr(loader.tomllib, "loads", explode)
    with pytest.raises(ConfigError) as caught:
        parse_unit("x", GOOD, "x.toml")
    [problem] = caught.value.problems
    assert problem.path == "x.toml" and problem.message.startswith(("cannot parse", "invalid TOML"))


def test_a_flood_of_problems_is_capped():
    data = GOOD + b"".join(b"k%d = 1\n" % i for i in range(1000))
    with pytest.raises(ConfigError) as caught:
        parse_unit("x", data, "x.toml")
    assert len(caught.value.problems) == 101
    assert str(caught.value.problems[-1]) == "x.toml: ... and 900 more problems"


# --- A9: names and path traversal --------------------------------------------

NAME_RULE = "a name is 1-64 characters of A-Z a-z 0-9 _ . @ -, not starting with '.' or '-'"


@pytest.mark.parametrize(
    ("file_name", "shown"),
    [
        ("a b.toml", "'a b'"),
        ("-x.toml", "'-x'"),
        ("a\nb.toml", "'a\\nb'"),
        ("x" * 65 + ".toml", "'" + "x" * 56 + "..."),
        ("a:b.toml", "'a:b'"),
        ("é.toml", "'é'"),
    ],
)
def test_bad_file_names_are_errors_naming_the_file_and_the_rule(tmp_path, file_name, shown):
    (tmp_path / file_name).write_bytes(GOOD)
    result = load_directory(tmp_path)
    assert result.units == {}
    [problem] = result.errors[file_name]
    text = str(problem)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path}/{file_name.replace(chr(10), chr(92) + 'n')}: {shown}")
    assert text.endswith(f" is not a valid unit name: {NAME_RULE}")


def test_names_starting_with_a_dot_are_dotfiles_and_ignored(tmp_path):
    for file_name in (".toml", "..toml", "...toml", ".web.toml"):
        (tmp_path / file_name).write_bytes(b"garbage = [")
    result = load_directory(tmp_path)
    assert (result.units, result.errors, result.warnings) == ({}, {}, [])


def test_a_file_name_that_is_not_utf8(tmp_path):
    os.close(os.open(os.fsencode(tmp_path) + b"/\xff.toml", os.O_CREAT | os.O_WRONLY, 0o644))
    result = load_directory(tmp_path)
    [(key, [problem])] = result.errors.items()
    assert str(problem) == f"{tmp_path}/\\udcff.toml: '\\udcff' is not a valid unit name: {NAME_RULE}"
    str(problem).encode("utf-8")  # printable everywhere: no lone surrogates left


@pytest.mark.parametrize("name", ["../../etc/cron.d/x", "a/b", ".", "..", "-x", "a\nb", "x" * 300, ""])
def test_parse_unit_refuses_bad_names(name):
    with pytest.raises(ConfigError) as caught:
        parse_unit(name, GOOD, "x.toml")
    assert f"is not a valid unit name: {NAME_RULE}" in str(caught.value)


@pytest.mark.parametrize("target", ["../x", "a/b", "..", ".", "-x", "a\nb"])
def test_dependencies_on_traversing_names_are_refused(target):
    data = GOOD + b"[dependencies]\nafter = [" + repr(target).replace("'", '"').encode() + b"]\n"
    with pytest.raises(ConfigError) as caught:
        parse_unit("x", data, "x.toml")
    [problem] = caught.value.problems
    assert problem.where == "[dependencies] after" and NAME_RULE in problem.message
    assert "\n" not in str(problem)


def test_a_name_key_is_refused():
    with pytest.raises(ConfigError) as caught:
        parse_unit("x", b'name = "../../etc/cron.d/x"\n' + GOOD, "x.toml")
    assert [str(p) for p in caught.value.problems] == [
        "x.toml:1: name: unknown key: a unit's name is its file's name (NAME.toml)"
    ]


# --- A11: insecure permissions -----------------------------------------------


@as_root
def test_a_world_writable_unit_file_is_refused(tmp_path):
    (tmp_path / "open.toml").write_bytes(GOOD)
    os.chmod(tmp_path / "open.toml", 0o666)
    _, found = load_with_good(tmp_path, "open.toml")
    assert found == [
        f"{tmp_path}/open.toml: refused: unit file is writable by group or others (mode 0666, owner uid 0);"
        " units run as root, so only root may write them"
    ]


@as_root
def test_a_unit_file_owned_by_another_user_is_refused(tmp_path):
    (tmp_path / "theirs.toml").write_bytes(GOOD)
    os.chown(tmp_path / "theirs.toml", 1000, 1000)
    _, found = load_with_good(tmp_path, "theirs.toml")
    assert found == [
        f"{tmp_path}/theirs.toml: refused: unit file is not owned by root (mode 0644, owner uid 1000);"
        " units run as root, so only root may write them"
    ]


@pytest.mark.parametrize(("mode", "uid", "reason"), [
    (0o777, 0, "writable by group or others (mode 0777, owner uid 0)"),
    (0o1777, 0, "writable by group or others (mode 1777, owner uid 0)"),
    (0o755, 1000, "not owned by root (mode 0755, owner uid 1000)"),
    (0o775, 1000, "not owned by root and writable by group or others (mode 0775, owner uid 1000)"),
])
@as_root
def test_an_insecure_directory_is_refused_whole(tmp_path, mode, uid, reason):
    units = tmp_path / "units"
    units.mkdir()
    (units / "web.toml").write_bytes(GOOD)
    os.chmod(units, mode)
    os.chown(units, uid, 0)
    result = load_directory(units)
    assert result.units == {}
    assert [str(p) for p in result.problems()] == [
        f"{units}: refused: the units directory is {reason}; units run as root, so only root may write them"
    ]


@as_root
def test_a_symlink_to_a_user_owned_file_outside_is_refused(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    theirs = tmp_path / "theirs.toml"
    theirs.write_bytes(GOOD)
    os.chown(theirs, 1000, 1000)
    os.symlink(theirs, units / "web.toml")
    result = load_directory(units)
    assert result.units == {}
    assert "outside the units directory" in str(result.errors["web"][0])


@as_root
def test_a_symlink_inside_to_an_insecure_file_is_refused(tmp_path):
    (tmp_path / "real.conf").write_bytes(GOOD)
    os.chmod(tmp_path / "real.conf", 0o646)
    os.symlink("real.conf", tmp_path / "web.toml")
    _, found = load_with_good(tmp_path, "web.toml")
    assert found and "mode 0646, owner uid 0" in found[0]


def test_ownership_is_enforced_only_when_asked_or_as_root(tmp_path):
    (tmp_path / "open.toml").write_bytes(GOOD)
    os.chmod(tmp_path / "open.toml", 0o666)
    assert "open" in load_directory(tmp_path, enforce_ownership=False).units
    assert "open" not in load_directory(tmp_path, enforce_ownership=True).units
    default = load_directory(tmp_path)
    assert ("open" in default.units) == (os.geteuid() != 0)

"""The pieces of a re-exec that need no PID 1: the checks of the program to
exec, the fds by role, and comparing what a selftest found with what pidone
supervises."""

from __future__ import annotations

import os
import socket
import stat
import sys

import pytest

from pidone import upgrade
from pidone.memstate import MemState


def make(path, content: bytes, mode: int = 0o755) -> str:
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


def test_the_running_interpreter_passes():
    assert upgrade.check_program(sys.executable) == ""
    assert upgrade.exec_argv()[0] == sys.executable


@pytest.mark.parametrize("content, mode, reason", [
    (b"", 0o755, "the file is empty"),
    (b"\x7fELF", 0o644, "not executable"),
    (b"#!/nonexistent/python3\nprint()\n", 0o755, "its interpreter /nonexistent/python3 is missing"),
    (b"#!\n", 0o755, "a script with an empty interpreter line"),
])
def test_a_program_that_cannot_be_execd_is_named(tmp_path, content, mode, reason):
    path = make(tmp_path / "prog", content, mode)
    assert upgrade.check_program(path) == f"{path}: {reason}"


def test_a_missing_program_and_a_directory(tmp_path):
    assert upgrade.check_program(str(tmp_path / "nope")).endswith("No such file or directory")
    assert upgrade.check_program(str(tmp_path)).endswith("not a regular file")
    assert "unknown" in upgrade.check_program("")


def test_a_script_whose_interpreter_is_a_broken_script(tmp_path):
    inner = make(tmp_path / "inner", b"", 0o755)
    outer = make(tmp_path / "outer", f"#!{inner}\n".encode())
    assert upgrade.check_program(outer) == f"{inner}: the file is empty"


def test_fds_round_trip_by_role():
    fds = {"state": 5, "control": 6, "log:web@1.x:stdout": 9}
    assert upgrade.parse_fds(upgrade.format_fds(fds)) == fds
    assert upgrade.parse_fds("junk,=3,a=x,b=4") == {"b": 4}


def test_take_resume_removes_the_marker(monkeypatch):
    monkeypatch.delenv(upgrade.ENV_FDS, raising=False)
    assert upgrade.take_resume() is None
    monkeypatch.setenv(upgrade.ENV_FDS, "state=7,control=8")
    assert upgrade.take_resume() == {"state": 7, "control": 8}
    assert upgrade.ENV_FDS not in os.environ


def test_missing_from_names_units_and_processes():
    expected = {"units": ["a", "b"], "pids": [10, 11, 12]}
    assert upgrade.missing_from(expected, {"units": ["a", "b"], "pids": [10, 11, 12, 99]}) == ""
    assert upgrade.missing_from(expected, {"units": ["a"], "pids": [10]}) == "unit(s) b and process(es) 11 12"
    assert upgrade.missing_from(expected, {}) == "unit(s) a b and process(es) 10 11 12"


def test_supervised_lists_records_leftovers_and_the_main_command():
    state = {"supervisor": {"machine": {"records": {"a": {"pid": 10}, "b": {"pid": None}}},
                            "leftovers": [["a", 20, 123]]},
             "main": {"pid": 5}}
    assert upgrade.supervised(state) == {"units": ["a", "b"], "pids": [5, 10, 20]}


def test_check_fds_by_kind():
    memory = MemState.create()
    r, w = os.pipe()
    a, b = socket.socketpair()
    try:
        fds = {"state": memory.fd, "log:web:stdout": r, "control": a.fileno()}
        assert upgrade.check_fds(fds, dict(fds)) == []
        problems = upgrade.check_fds({**fds, "notify": r, "log:x:stderr": 999}, {**fds, "notify": r})
        assert problems == ["log:x:stderr: fd 999 was not handed over (PIDONE_REEXEC_FDS says None)",
                            f"notify: fd {r} is not of its kind (mode {stat.filemode(os.fstat(r).st_mode)})"]
        os.close(w)
        closed = os.dup(r)
        os.close(closed)
        assert "is not open" in upgrade.check_fds({"log:y:stdout": closed}, {"log:y:stdout": closed})[0]
    finally:
        memory.close()
        os.close(r)
        a.close()
        b.close()


def test_every_installed_module_imports():
    assert upgrade.import_everything() == []


def test_decode_state_refuses_what_it_does_not_read():
    from pidone.errors import StoreError

    with pytest.raises(StoreError, match="not valid JSON"):
        upgrade.decode_state(b"{")
    with pytest.raises(StoreError, match="schema 99"):
        upgrade.decode_state(b'{"schema": 99}')
    assert upgrade.decode_state(b'{"schema": 1}', 2)["_minor"] == 2

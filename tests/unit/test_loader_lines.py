"""`file:line:` in every problem that comes from a key or a value of a unit
file: schema errors, warnings, graph problems, in text and in
`pidone check --json`; and a good file never pays for finding lines."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from pidone.errors import ConfigError
from pidone.loader import load_directory, parse_unit

REPO = Path(__file__).resolve().parents[2]


def printed(text: str) -> list[str]:
    """Return every problem of `text` (dedented) as printed, asserting that it does not load."""
    with pytest.raises(ConfigError) as caught:
        parse_unit("web", textwrap.dedent(text).encode(), "u/web.toml")
    return [str(problem) for problem in caught.value.problems]


def test_an_unknown_key_names_its_line():
    assert printed("""\
        description = "web"

        [service]
        command = ["app"]
        comand = ["app"]
    """) == ["u/web.toml:5: [service] comand: unknown key, did you mean 'command'?"]


def test_every_kind_of_key_gets_its_line():
    assert printed("""\
        # a comment [stop]
        description = 5
        service.command = ["app"]
        service.user = "bad user"
        [sevrice]
        [service.environment]
        GOOD = "1"
        BAD = 2
        [restart]
        delay = "1m"
        max_delay = "10s"
        [limits]
        nofile = { soft = 1 }
    """) == [
        "u/web.toml:5: sevrice: unknown table, did you mean [service]?",
        "u/web.toml:2: description: expected a string, got an integer (5)",
        "u/web.toml:4: [service] user: expected a user or group name or number, got 'bad user'",
        "u/web.toml:8: [service] environment: BAD: expected a string, got an integer (2); quote it: BAD = \"2\"",
        "u/web.toml:11: [restart] max_delay: max_delay (10 s) is less than delay (60 s)",
        "u/web.toml:13: [limits] nofile: expected an integer, \"infinity\", or a [soft, hard] pair of those, got a table",
    ]


def test_inline_tables_and_a_table_that_is_not_one():
    assert printed("""\
        stop = 3

        service = { command = ["app"], type = "notfy", environment = { "A-B" = "x" } }
    """) == [
        "u/web.toml:1: stop: expected a table ([stop]), got an integer (3)",
        "u/web.toml:3: [service] type: expected \"simple\", \"notify\", \"oneshot\" or \"forking\", got a string ('notfy'); "
        "did you mean \"notify\"?",
        "u/web.toml:3: [service] environment: 'A-B' is not a variable name: expected [A-Za-z_][A-Za-z0-9_]*",
    ]


def test_strings_that_look_like_keys_do_not_move_the_line():
    assert printed('''\
        [service]
        command = """
        [stop]
        user = "x"
        """
        group = 'user = [y'
        user = "a b"
    ''') == [
        "u/web.toml:7: [service] user: expected a user or group name or number, got 'a b'",
        "u/web.toml:6: [service] group: expected a user or group name or number, got 'user = [y'",
    ]


def test_a_missing_key_points_at_its_table_or_nowhere():
    assert printed('description = "x"\n\n[service]\ntype = "simple"\n') == [
        'u/web.toml:3: [service] command: missing: every unit needs a command, e.g. command = ["/usr/bin/app", "--flag"]'
    ]
    assert printed('description = "x"\n') == [
        'u/web.toml: [service] command: missing: every unit needs a command, e.g. command = ["/usr/bin/app", "--flag"]'
    ]


def test_a_syntax_error_keeps_the_parser_line_and_column():
    assert printed('[service]\ncommand = ["a"\n') == ["u/web.toml:3:1: invalid TOML: unclosed array"]


def test_past_the_cap_lines_still_match_their_problems():
    body = "".join(f"bad{i} = 1\n" for i in range(150))
    found = printed(f'[service]\ncommand = ["a"]\n{body}')
    assert len(found) == 101 and found[-1] == "u/web.toml: ... and 50 more problems"
    assert found[0].startswith("u/web.toml:3: [service] bad0: unknown key")
    assert found[99].startswith("u/web.toml:102: [service] bad99: unknown key")


def test_warnings_get_lines_too(tmp_path):
    (tmp_path / "web.toml").write_text('[service]\ncommand = ["a"]\n[dependencies]\n\nwants = ["db", "db"]\n'
                                       '[health]\ninterval = 5\n')
    result = load_directory(tmp_path)
    assert [str(w) for w in result.warnings] == [
        f"{tmp_path}/web.toml:5: [dependencies] wants: warning: lists a unit more than once",
        f"{tmp_path}/web.toml:6: [health]: warning: no probe (tcp, http or exec), so no health checks are made",
    ]


def test_a_good_file_never_looks_for_lines(tmp_path, monkeypatch):
    def no_scan(text):
        raise AssertionError("key lines were computed for a good file")

    monkeypatch.setattr("pidone.loader.keylines.key_lines", no_scan)
    monkeypatch.setattr("pidone.loader.key_lines", no_scan)
    (tmp_path / "web.toml").write_text('description = "x"\n[service]\ncommand = ["a"]\n[restart]\ndelay = 1\n')
    result = load_directory(tmp_path)
    assert result.ok and result.warnings == []


def check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pidone", "check", *args], capture_output=True, text=True,
                          timeout=30, cwd=REPO, env={**os.environ})


def test_check_prints_lines_and_puts_them_in_json(tmp_path):
    (tmp_path / "web.toml").write_text('[service]\ncommand = ["a"]\ncomand = 1\n'
                                       '[dependencies]\nrequires = ["db"]\n')
    (tmp_path / "api.toml").write_text('[service]\ncommand = ["a"]\n\n[dependencies]\nafter = ["cache"]\n')
    run = check(str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"{tmp_path}/web.toml:3: [service] comand: unknown key, did you mean 'command'?",
        f"{tmp_path}/api.toml:5: [dependencies] after: warning: missing dependency 'cache', ignored",
    ]
    (tmp_path / "web.toml").write_text('[service]\ncommand = ["a"]\n[dependencies]\nrequires = ["db"]\n')
    report = orjson.loads(check(str(tmp_path), "--json").stdout)
    assert report["errors"] == [{"file": f"{tmp_path}/web.toml", "line": 4, "col": None,
                                 "where": "[dependencies] requires", "message": "missing dependency 'db'"}]
    assert report["warnings"][0]["line"] == 5

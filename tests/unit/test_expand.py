"""Environment expansion (SPEC §12): the rules, the canonical command form, load-time errors, spawn-time values."""

from __future__ import annotations

import re

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pidone.errors import ConfigError, SpawnError
from pidone.expand import (
    ExpansionError,
    command_references,
    command_to_toml,
    expand,
    expand_argv,
    parse_command,
    references,
)
from pidone.loader import parse_unit, unit_from_dict, unit_to_dict
from pidone.spawn import prepare
from pidone.units import parse_argv

ENV = {"HOME": "/root", "OPTS": "-a  -b\t-c", "EMPTY": "", "PORT": "8000"}


def lookup(name: str) -> str | None:
    return ENV.get(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOME}", "/root"),
        ("x${HOME}y", "x/rooty"),
        ("${UNSET}", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),  # as a shell: empty takes the default too
        ("${PORT:-9}", "8000"),
        ("${UNSET:-}", ""),
        ("$$", "$"),
        ("$${HOME}", "${HOME}"),
        ("$$$$", "$$"),
        ("echo $HOME $1", "echo $HOME $1"),  # a $ not followed by { or $ stays
        ("a$", "a$"),
        ("${OPTS}", "-a  -b\t-c"),  # never split inside a word
        ("${UNSET:-a b}", "a b"),
    ],
)
def test_expand(text, expected):
    assert expand(text, lookup) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${HOME", "unterminated"),
        ("a ${", "unterminated"),
        ("${}", "is not ${NAME}"),
        ("${1X}", "is not ${NAME}"),
        ("${#x}", "$${...}"),
        ("${x:=y}", "is not ${NAME}"),
        ("${x-y}", "is not ${NAME}"),
        ("${x:-$y}", "must not contain"),
    ],
)
def test_bad_syntax_is_an_error(text, fragment):
    with pytest.raises(ExpansionError, match=None) as info:
        references(text)
    assert fragment in str(info.value)


def test_references_say_which_have_defaults():
    assert references("${A} ${B:-x} $C $$D") == [("A", False), ("B", True)]


def test_array_words_never_split_and_keep_a_bare_dollar():
    argv = parse_argv(["sh", "-c", "echo $HOME $1", "$OPTS", "${OPTS}"])
    assert expand_argv(argv, lookup) == ["sh", "-c", "echo $HOME $1", "$OPTS", "-a  -b\t-c"]


def test_a_whole_word_dollar_name_of_a_string_command_splits():
    argv = parse_argv("/app $OPTS ${OPTS} '$OPTS' x$OPTS $UNSET")
    assert expand_argv(argv, lookup) == ["/app", "-a", "-b", "-c", "-a  -b\t-c", "-a", "-b", "-c", "x$OPTS"]


def test_canonical_form_marks_only_string_words_as_splitting():
    assert parse_command(["$X"], from_string=False) == ("$$X",)
    assert parse_command(["$X"], from_string=True) == ("$X",)
    assert parse_argv("a $X") != parse_argv(["a", "$X"])  # not the same command: a reload restarts it


def test_a_bad_word_is_named():
    with pytest.raises(ValueError, match="word 2"):
        parse_argv(["a", "${oops"])


@pytest.mark.parametrize("command", [["a", "$X", "$$Y", "${Z:-q}"], "a $X '$$Y' ${Z}", ["plain"], "b $X"])
def test_commands_survive_the_round_trip_through_toml(command):
    argv = parse_argv(command)
    assert parse_argv(command_to_toml(argv)) == argv


def test_command_references_include_whole_words():
    assert command_references(parse_argv("a $X ${Y:-1} ${Z}")) == [("X", False), ("Y", True), ("Z", False)]


# -- properties ------------------------------------------------------------

no_dollar = st.text(st.characters(blacklist_characters="$\0", blacklist_categories=("Cs",)))


@given(no_dollar)
def test_a_text_without_dollar_is_the_identity(text):
    assert expand(text, lambda name: "boom") == text


@given(st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))))
def test_doubled_dollars_round_trip(text):
    # Escaping every $ of any text as $$ expands back to that text.
    assert expand(text.replace("$", "$$"), lambda name: "boom") == text


@given(st.lists(no_dollar.filter(bool), min_size=1))
def test_an_argv_without_dollar_is_the_identity(words):
    assert expand_argv(parse_argv(words), lambda name: "boom") == words


# -- the loader ----------------------------------------------------------------


def load(text: str):
    return parse_unit("web", text.encode(), "/u/web.toml")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[service]\ncommand = ["a", "${X"]\n', "[service] command"),
        ('[service]\ncommand = "a ${1}"\n', "[service] command"),
        ('[service]\ncommand = ["a"]\nworking_directory = "/${X"\n', "[service] working_directory"),
        ('[service]\ncommand = ["a"]\nenvironment = { A = "${B" }\n', "[service] environment"),
        ('[service]\ncommand = ["a"]\n[log]\nfile = "/x/${}"\n', "[log] file"),
        ('[service]\ncommand = ["a"]\n[ready]\nexec = ["t", "${X"]\n', "[ready] exec"),
        ('[service]\ncommand = ["a"]\n[health]\nexec = "t ${X"\n', "[health] exec"),
    ],
)
def test_bad_expansions_are_load_errors_naming_file_and_key(text, where):
    found = problems(text)
    # file:line: where: as every error that comes from a key (the line is the key's)
    assert len(found) == 1 and re.match(rf"/u/web.toml:\d+: {re.escape(where)}:", found[0]), found


def test_a_path_may_start_with_a_variable_but_not_be_relative():
    assert load('[service]\ncommand = ["a"]\nworking_directory = "${HOME}/x"\n').service.working_directory == "${HOME}/x"
    assert "absolute path" in problems('[service]\ncommand = ["a"]\nworking_directory = "x/${HOME}"\n')[0]


def test_a_unit_with_expansions_survives_the_reexec_form():
    unit = load('[service]\ncommand = "/bin/app $OPTS ${PORT:-1}"\n[health]\nexec = "check $OPTS"\n')
    assert unit_from_dict("web", unit_to_dict(unit), "/u/web.toml") == unit


# -- at spawn ------------------------------------------------------------------


def test_prepare_expands_from_the_environment_the_process_gets(tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("PORT=9000\nOPTS='-x -y'\n")
    unit = load(
        '[service]\ncommand = "/bin/echo $OPTS ${PORT} ${NOPE:-dflt} ${BASE}"\n'
        f'environment_files = ["{envfile}"]\n'
        'environment = { URL = "http://h:${PORT}/", BASE = "${BASE}-more", CWD = "/" }\n'
        'working_directory = "${CWD}"\n'
    )
    prepared = prepare(unit, {b"BASE": b"base", b"PATH": os.environ["PATH"].encode()})
    assert prepared.argv == ["/bin/echo", "-x", "-y", "9000", "dflt", "base-more"]
    assert prepared.env[b"URL"] == b"http://h:9000/"
    assert prepared.cwd == "/"
    envfile.write_text("PORT=9001\n")  # edited: the next start sees it
    assert prepare(unit, {})
    assert prepare(unit, {}).env[b"URL"] == b"http://h:9001/"


def test_clear_environment_hides_pidones_own_variables():
    unit = load('[service]\ncommand = ["/bin/echo", "${SECRET:-none}"]\nclear_environment = true\n')
    assert prepare(unit, {b"SECRET": b"s"}).argv == ["/bin/echo", "none"]


def test_a_command_that_expands_to_nothing_fails_to_start():
    unit = load('[service]\ncommand = "$NOTHING"\n')
    with pytest.raises(SpawnError, match="empty once its variables are expanded"):
        prepare(unit, {})


def test_a_working_directory_that_is_not_absolute_once_expanded_fails_to_start():
    unit = load('[service]\ncommand = ["/bin/true"]\nworking_directory = "${D}"\n')
    with pytest.raises(SpawnError, match="not an absolute path"):
        prepare(unit, {b"D": b"relative"})


def test_an_exec_probe_expands_from_its_own_untagged_environment():
    unit = load('[service]\ncommand = ["/bin/sleep", "1"]\n')
    prepared = prepare(unit, {b"PIDONE_UNIT": b"outer"}, argv=("/bin/echo", "${PIDONE_UNIT:-untagged}"), tagged=False)
    assert prepared.argv == ["/bin/echo", "untagged"] and b"PIDONE_UNIT" not in prepared.env
    assert prepare(unit, {}, argv=("/bin/echo", "${PIDONE_UNIT}")).argv == ["/bin/echo", "web"]

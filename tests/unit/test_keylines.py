"""The key-position scanner behind `file:line:` in schema errors: tables,
dotted keys, inline tables, arrays of tables, and strings, comments and
arrays that hold `[`, `=` or quotes which must not be taken for structure."""

from __future__ import annotations

import tomllib

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from pidone.loader.keylines import key_lines, line_of


def lines_of(text: str) -> dict[tuple[str, ...], int]:
    tomllib.loads(text)  # every case is valid TOML, as the scanner may assume
    return key_lines(text)


def test_tables_and_keys():
    text = 'description = "x"\n\n[service]\ncommand = ["a"]\n# [stop]\n  user = "app"\n[stop]\ntimeout = 3\n'
    assert lines_of(text) == {
        ("description",): 1,
        ("service",): 3,
        ("service", "command"): 4,
        ("service", "user"): 6,
        ("stop",): 7,
        ("stop", "timeout"): 8,
    }


def test_dotted_headers_and_dotted_keys():
    text = '[ a . "b c" ]\nx.y.z = 1\n"q.r" = 2\n\'lit.key\' = 3\n1.5 = 4\n[a]\nw = 5\n'
    lines = lines_of(text)
    assert lines[("a",)] == 1 and lines[("a", "b c")] == 1
    assert lines[("a", "b c", "x")] == 2 and lines[("a", "b c", "x", "y", "z")] == 2
    assert lines[("a", "b c", "q.r")] == 3
    assert lines[("a", "b c", "lit.key")] == 4
    assert lines[("a", "b c", "1", "5")] == 5
    assert lines[("a", "w")] == 7


def test_quoted_keys_are_unescaped():
    lines = lines_of('"a\\u0041\\"b" = 1\n"tab\\there" = 2\n')
    assert lines[('aA"b',)] == 1 and lines[("tab\there",)] == 2


def test_inline_tables_nested_and_spanning_lines_through_an_array():
    text = '[service]\nenvironment = { PORT = "8000", NESTED = { DEEP = 1 }, LIST = [\n  1,\n  2 ], LAST = "x" }\nuser = "a"\n'
    lines = lines_of(text)
    assert lines[("service", "environment")] == 2
    assert lines[("service", "environment", "PORT")] == 2
    assert lines[("service", "environment", "NESTED", "DEEP")] == 2
    assert lines[("service", "environment", "LAST")] == 4
    assert lines[("service", "user")] == 5


def test_arrays_of_tables_keep_the_first_line_of_each_key():
    text = '[[probe]]\nport = 1\n\n[[probe]]\nport = 2\nhost = "h"\n'
    lines = lines_of(text)
    assert lines[("probe",)] == 1 and lines[("probe", "port")] == 2 and lines[("probe", "host")] == 6


def test_structure_inside_strings_and_comments_is_not_structure():
    text = (
        '[service]\n'
        'command = """\n'
        '[fake]\n'
        'notakey = 1\n'
        '"""\n'
        "literal = '''\n"
        "[fake2] = ''\n"
        "''''\n"
        'basic = "a \\" [b] = c # d"\n'
        "single = 'x = [y'  # [z] = 1\n"
        "list = [ \"]\", '[', # ] comment\n"
        "  \"\"\"\n]\n\"\"\", { k = 1 } ]\n"
        'after = 1\n'
        'escaped = """\\""" [still] = string"""\n'
        'last = 2\n'
    )
    lines = lines_of(text)
    assert set(lines) == {("service",), *(("service", key) for key in (
        "command", "literal", "basic", "single", "list", "after", "escaped", "last"))}
    assert lines[("service", "literal")] == 6
    assert lines[("service", "basic")] == 9
    assert lines[("service", "list")] == 11
    assert lines[("service", "after")] == 15
    assert lines[("service", "last")] == 17


def test_crlf_line_endings():
    assert lines_of('[service]\r\ncommand = "a"\r\n\r\nuser = "b"\r\n')[("service", "user")] == 4


def test_line_of_falls_back_to_the_nearest_written_parent():
    lines = lines_of('[service]\nenvironment = { A = "1" }\n')
    assert line_of(lines, ("service", "environment", "A")) == 2
    assert line_of(lines, ("service", "environment", "MISSING")) == 2
    assert line_of(lines, ("service", "command")) == 1
    assert line_of(lines, ("stop", "timeout")) is None


def test_an_empty_document():
    assert key_lines("") == {} and key_lines("# only a comment\n\n") == {}


KEYS = st.text(alphabet="abcXYZ09_- .=[]#'{},", min_size=1, max_size=8)
VALUES = st.one_of(
    st.integers(), st.booleans(), st.floats(allow_nan=False),
    st.text(alphabet="ab =[]#\"'\n\\{},.", max_size=12),
    st.lists(st.text(alphabet="a]=[#\"'\n", max_size=5), max_size=3),
)
DOCUMENTS = st.recursive(
    st.dictionaries(KEYS, VALUES, max_size=4),
    lambda inner: st.dictionaries(KEYS, st.one_of(VALUES, inner), max_size=4),
    max_leaves=20,
)


def paths(document: dict, prefix: tuple[str, ...] = ()):
    for key, value in document.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from paths(value, prefix + (key,))


@given(DOCUMENTS, st.booleans())
@settings(max_examples=300, deadline=None)
def test_every_key_tomli_w_writes_is_found_on_a_line_that_names_it(document, multiline):
    text = tomli_w.dumps(document, multiline_strings=multiline)
    assert tomllib.loads(text) == document
    lines = key_lines(text)
    rows = text.split("\n")
    for path in paths(document):
        assert path in lines, (path, text)
        assert path[-1] in rows[lines[path] - 1], (path, lines[path], text)


@given(st.text(alphabet="ab =[]{}#\"'\\\n.,u0", max_size=60))
@settings(max_examples=500, deadline=None)
def test_any_text_at_all_gives_lines_and_never_an_exception(text):
    # Only valid TOML reaches the scanner, but a bug must cost lines, never a reload.
    lines = key_lines(text)
    assert all(1 <= line <= text.count("\n") + 1 for line in lines.values())

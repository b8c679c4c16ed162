"""Where each key of a TOML document is: (table path, key) -> line number.

`tomllib` gives values but no positions, so a schema error could name its
table and key but not its line. This small scanner reads the text once and
records the line where each key path is first written: `[a.b]` and `[[a]]`
headers, `k = v`, dotted keys, and the keys of inline tables. It knows
strings (basic, literal, and their multi-line forms), comments and arrays,
so a `[` or `=` inside any of them is not mistaken for structure.

It only runs once a file is known to have a problem, and only after
`tomllib` accepted the text, so it may assume the TOML is valid; whatever it
cannot follow just goes without a line.
"""

from __future__ import annotations

import re

_PUNCT = "[]{}=,."
_BARE = re.compile(r"[^\s\[\]{}=,.\"'#]+")
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))")
_SIMPLE_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}

# Token kinds besides the punctuation characters themselves.
NEWLINE, WORD, STRING = "\n", "word", "string"


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Return {key path: 1-based line} for every table and key of `text`.

    A path is the table path plus the key path: `[service]` then
    `environment = { PORT = 1 }` gives ("service",), ("service",
    "environment") and ("service", "environment", "PORT"). Keys inside
    arrays (array elements that are inline tables) are not recorded.
    """
    return _Scanner(_tokens(text)).scan()


def line_of(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """Return the line of `path`, or of its longest prefix written in the file, or None."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """Return (kind, value, line) for each token: punctuation, NEWLINE, WORD
    (a bare key or a bare value such as 1, true, a date) or STRING (with its
    value unescaped when it is a one-line basic string)."""
    tokens: list[tuple[str, str, int]] = []
    i, line, end = 0, 1, len(text)
    while i < end:
        char = text[i]
        if char in " \t\r":
            i += 1
        elif char == "\n":
            tokens.append((NEWLINE, "", line))
            line += 1
            i += 1
        elif char == "#":
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
        elif char in _PUNCT:
            tokens.append((char, char, line))
            i += 1
        elif char in "\"'":
            start = i
            i = _string_end(text, i)
            tokens.append((STRING, _string_value(text[start:i]), line))
            line += text.count("\n", start, i)
        else:
            match = _BARE.match(text, i)
            if match is None:  # not valid TOML: tomllib would have said so
                i += 1
                continue
            tokens.append((WORD, match.group(), line))
            i = match.end()
    return tokens


def _string_end(text: str, start: int) -> int:
    """Return the index just past the string that starts at `start`."""
    quote = text[start]
    triple = text.startswith(quote * 3, start)
    delimiter = quote * 3 if triple else quote
    i = start + len(delimiter)
    while i < len(text):
        char = text[i]
        if char == "\\" and quote == '"':
            i += 2
            continue
        if not triple and char == "\n":
            return i  # unterminated: not valid TOML
        if text.startswith(delimiter, i):
            i += len(delimiter)
            if triple:  # up to two more quotes belong to the content: """a""""
                extra = 0
                while extra < 2 and i < len(text) and text[i] == quote:
                    i += 1
                    extra += 1
            return i
        i += 1
    return i


def _string_value(token: str) -> str:
    """Return the value of a one-line string token (a quoted key); others are not needed."""
    if token.startswith(('"""', "'''")) or len(token) < 2:
        return token
    body = token[1:-1]
    if token[0] == "'":
        return body
    return _ESCAPE.sub(_unescape, body)


def _unescape(match: re.Match[str]) -> str:
    short, long, simple = match.groups()
    code = short or long
    if code:
        try:
            return chr(int(code, 16))
        except ValueError:
            return match.group()
    return _SIMPLE_ESCAPES.get(simple, match.group())


class _Scanner:
    """Walks the tokens statement by statement, recording key paths."""

    def __init__(self, tokens: list[tuple[str, str, int]]):
        self.tokens = tokens
        self.i = 0
        self.lines: dict[tuple[str, ...], int] = {}

    def scan(self) -> dict[tuple[str, ...], int]:
        table: tuple[str, ...] = ()
        while self.i < len(self.tokens):
            kind, _, line = self.tokens[self.i]
            if kind == NEWLINE:
                self.i += 1
            elif kind == "[":
                self.i += 1
                array = self._peek() == "["
                self.i += array
                table = self._key("]")
                self._record(table, line)
                self._skip_line()
            else:
                self._pair(table)
                self._skip_line()
        return self.lines

    def _peek(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else ""

    def _record(self, path: tuple[str, ...], line: int) -> None:
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def _key(self, stop: str) -> tuple[str, ...]:
        """Read a (dotted) key up to the token `stop`, and consume that token."""
        parts: list[str] = []
        while self.i < len(self.tokens):
            kind, value, _ = self.tokens[self.i]
            self.i += 1
            if kind == stop or kind == NEWLINE:
                break
            if kind in (WORD, STRING):
                parts.append(value)
        return tuple(parts)

    def _pair(self, table: tuple[str, ...]) -> None:
        """Read `key = value` at the current token, recording the key and any inline-table keys."""
        line = self.tokens[self.i][2]
        path = table + self._key("=")
        self._record(path, line)
        self._value(path)

    def _value(self, path: tuple[str, ...]) -> None:
        """Skip one value; record the keys of an inline table (recursing for nested ones)."""
        kind = self._peek()
        if kind == "{":
            self.i += 1
            while self.i < len(self.tokens) and self._peek() != "}":
                if self._peek() in (",", NEWLINE):
                    self.i += 1
                    continue
                self._pair(path)
            self.i += 1
        elif kind == "[":
            self._skip_array()
        else:
            while self.i < len(self.tokens) and self._peek() not in (",", "}", "]", NEWLINE):
                self.i += 1

    def _skip_array(self) -> None:
        """Skip an array, nested arrays and inline tables included (iteratively)."""
        depth = 0
        while self.i < len(self.tokens):
            kind = self._peek()
            self.i += 1
            if kind in ("[", "{"):
                depth += 1
            elif kind in ("]", "}"):
                depth -= 1
                if depth == 0:
                    return

    def _skip_line(self) -> None:
        """Skip to the end of the current line (a trailing comment is already gone)."""
        while self.i < len(self.tokens) and self._peek() != NEWLINE:
            self.i += 1

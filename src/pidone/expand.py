"""Environment expansion in unit files (SPEC §12): `${NAME}`, `${NAME:-default}`, `$$`, and
the whole-word `$NAME` of string commands. Pure: no I/O, no os.environ.

Syntax is checked when a unit file is loaded (`check`, `parse_command`); the
values are filled in at each start (`expand`, `expand_argv`) from the
environment the process will get, so an edited environment file counts at the
next restart.

Commands are kept in one canonical form, so that the model says by itself
which words split: a word that is exactly `$NAME` in a command means "this
variable's whitespace-separated words". Only a string command may hold such a
word; `parse_command` turns the same word of an array command (where it must
stay literal) into `$$NAME`, which expands to `$NAME`. Every other `$` that is
not followed by `{` or `$` is left as it is, in both forms.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

Lookup = Callable[[str], "str | None"]

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")  # a whole word that splits
# `$$`, or `${` and what follows up to the first `}` (validated by _reference).
_TOKEN_RE = re.compile(r"\$(\$|\{([^}]*)(\})?)")


class ExpansionError(ValueError):
    """A `${` that is not `${NAME}` or `${NAME:-default}`; the message says what was found."""


def _reference(body: str, closed: bool, text: str) -> tuple[str, str | None]:
    """Return (name, default or None) of the inside of one `${...}`; raise ExpansionError."""
    if not closed:
        raise ExpansionError(f"unterminated '${{' in {_show(text)}: write ${{NAME}}, or $$ for a literal $")
    name, sep, default = body.partition(":-")
    if not NAME_RE.fullmatch(name):
        hint = "; a shell's own ${...} forms must be written $${...}" if body else ""
        raise ExpansionError(
            f"'${{{body}}}' in {_show(text)} is not ${{NAME}} or ${{NAME:-default}}"
            f" (a NAME is [A-Za-z_][A-Za-z0-9_]*){hint}"
        )
    if sep and ("$" in default or "{" in default):
        raise ExpansionError(f"the default of '${{{body}}}' in {_show(text)} must not contain '$' or '{{'")
    return name, default if sep else None


def _show(text: str, limit: int = 60) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 4] + "...'"


def references(text: str) -> list[tuple[str, bool]]:
    """Return each `${...}` of `text` as (name, has a default); raise ExpansionError on bad syntax."""
    if "$" not in text:
        return []
    found = []
    for match in _TOKEN_RE.finditer(text):
        if match.group(1) != "$":
            name, default = _reference(match.group(2), match.group(3) is not None, text)
            found.append((name, default is not None))
    return found


def check(text: str) -> str:
    """Return `text` when its `${...}` are well formed; raise ExpansionError (a ValueError)."""
    references(text)
    return text


def expand(text: str, lookup: Lookup) -> str:
    """Return `text` with `${NAME}`, `${NAME:-default}` and `$$` replaced.

    An unset name without a default becomes empty; `:-` also takes the default
    when the value is empty (as a shell). A `$` not followed by `{` or `$` is
    kept. Raises ExpansionError on bad syntax (loading has already refused it).
    """
    if "$" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        name, default = _reference(match.group(2), match.group(3) is not None, text)
        value = lookup(name)
        if default is not None and not value:
            return default
        return value or ""

    return _TOKEN_RE.sub(one, text)


def split_name(word: str) -> str | None:
    """Return NAME when `word` is exactly `$NAME` (a word that splits), else None."""
    if word.startswith("$") and len(word) > 1:
        match = _WORD_RE.fullmatch(word)
        if match:
            return match.group(1)
    return None


def parse_command(words: Sequence[str], *, from_string: bool) -> tuple[str, ...]:
    """Return a command's words in the canonical form, each checked; raise ExpansionError.

    From an array, a word that is exactly `$NAME` becomes `$$NAME` (it must
    stay literal); from a string, it is kept (it splits at each start).
    """
    out = []
    for index, word in enumerate(words, 1):
        if "$" in word:
            try:
                check(word)
            except ExpansionError as exc:
                raise ExpansionError(f"word {index}: {exc}") from None
            if not from_string and split_name(word) is not None:
                word = "$" + word
        out.append(word)
    return tuple(out)


def expand_argv(argv: Iterable[str], lookup: Lookup) -> list[str]:
    """Return a canonical command (see `parse_command`) expanded: every word in place,
    and a word that is exactly `$NAME` replaced by the value's whitespace-separated
    words (none when unset or blank). Use it for any command a unit runs."""
    out: list[str] = []
    for word in argv:
        if "$" not in word:
            out.append(word)
            continue
        name = split_name(word)
        if name is not None:
            out.extend((lookup(name) or "").split())
        else:
            out.append(expand(word, lookup))
    return out


def command_references(argv: Iterable[str]) -> list[tuple[str, bool]]:
    """Return the (name, has a default) a canonical command refers to, whole words included."""
    found: list[tuple[str, bool]] = []
    for word in argv:
        name = split_name(word)
        found.extend([(name, False)] if name is not None else references(word))
    return found


def command_to_toml(argv: Sequence[str]) -> list[str] | str:
    """Return the TOML value that loads back as canonical command `argv`: an array,
    or a string when some word splits (only a string command can say that)."""
    if any(split_name(word) is not None for word in argv):
        import shlex

        return " ".join(word if split_name(word) is not None else shlex.quote(word) for word in argv)
    return list(argv)


def env_lookup(env: Mapping[bytes, bytes]) -> Lookup:
    """Return a lookup over a spawn's bytes environment."""

    def lookup(name: str) -> str | None:
        value = env.get(name.encode())
        return None if value is None else os.fsdecode(value)

    return lookup


def expand_path(text: str, lookup: Lookup, what: str) -> str:
    """Return an expanded path; raise ValueError when it is not absolute any more."""
    path = expand(text, lookup)
    if not path.startswith("/") or "\0" in path:
        raise ValueError(f"{what} {text!r} expanded to {path!r}, not an absolute path")
    return path

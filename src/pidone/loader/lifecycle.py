"""Readers of the lifecycle keys (SPEC §11): conditions, exit statuses.
Each takes one decoded TOML value and returns the model's value, or raises
ValueError saying what was expected (the schema adds file, table and key)."""

from __future__ import annotations

from typing import Any

from pidone.units import ENV_KEY_RE, parse_abs_path, parse_string, show


def condition_path(value: Any) -> str:
    """An absolute path, optionally prefixed by "!" (must not exist)."""
    text = parse_string(value)
    try:
        parse_abs_path(text.removeprefix("!"))
    except ValueError:
        raise ValueError(f'expected an absolute path, optionally prefixed by "!", got {show(text)}') from None
    return text


def condition_environment(value: Any) -> str:
    """NAME (set and non-empty) or NAME=VALUE (equal), optionally prefixed by "!"."""
    text = parse_string(value)
    name = text.removeprefix("!").partition("=")[0]
    if not ENV_KEY_RE.fullmatch(name):
        raise ValueError(f'expected NAME or NAME=VALUE, optionally prefixed by "!", '
                         f"with NAME matching [A-Za-z_][A-Za-z0-9_]*, got {show(text)}")
    return text

"""Readers of the lifecycle keys (SPEC §11): conditions, exit statuses.
Each takes one decoded TOML value and returns the model's value, or raises
ValueError saying what was expected (the schema adds file, table and key)."""

from __future__ import annotations

from typing import Any

from pidone.units import (ENV_KEY_RE, describe, parse_abs_path, parse_argv, parse_signal, parse_string, parse_umask,
                          show)


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


def exit_statuses(value: Any) -> tuple[int | str, ...]:
    """An array of exit codes (0-255) and signal names ("SIGTERM", "TERM",
    any case), as systemd's SuccessExitStatus=; signals kept by their name."""
    expected = 'expected an array of exit codes (0-255) and signal names such as "SIGTERM"'
    if not isinstance(value, list):
        raise ValueError(f"{expected}, got {describe(value)}")
    out: list[int | str] = []
    for index, item in enumerate(value, 1):
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item <= 255:
                raise ValueError(f"item {index}: an exit code is 0-255, got {show(item)}")
            out.append(item)
        elif isinstance(item, str):
            try:
                out.append(parse_signal(item).name)
            except ValueError:
                raise ValueError(f"item {index}: {show(item)} is not a signal name; {expected}") from None
        else:
            raise ValueError(f"item {index}: {expected}, got {describe(item)}")
    return tuple(dict.fromkeys(out))


def directory_names(value: Any) -> tuple[str, ...]:
    """Directory names relative to /run or /var/lib ("app", "app/sockets"):
    a string or an array of them; never absolute, never "." or ".."."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f'expected a relative directory name such as "app", or an array of them, got {describe(value)}')
    out = []
    for index, item in enumerate(items, 1):
        where = f"item {index}: " if not isinstance(value, str) else ""
        text = parse_string(item) if isinstance(item, str) else None
        if text is None:
            raise ValueError(f"{where}expected a relative directory name, got {describe(item)}")
        parts = text.split("/")
        if any(part in ("", ".", "..") or len(part) > 255 for part in parts):
            raise ValueError(f'{where}expected a relative directory name such as "app" or "app/sub" '
                             f'(no leading "/", no "." or ".." and no empty part), got {show(text)}')
        out.append(text)
    return tuple(dict.fromkeys(out))


def directory_mode(value: Any) -> int:
    """A directory's permission bits: an octal string or an integer up to 0o777."""
    try:
        return parse_umask(value)
    except ValueError:
        raise ValueError(f'expected an octal string such as "0755", or an integer from 0 to 0o777, '
                         f"got {describe(value)}") from None


def hook_commands(value: Any) -> tuple[tuple[str, ...], ...]:
    """One command (a string, or an array of strings) or an array of
    commands (each a string or an array of strings); a first word starting
    with "-" marks a command whose failure is ignored."""
    if isinstance(value, list) and any(isinstance(item, list) for item in value):
        commands = []
        for index, item in enumerate(value, 1):
            try:
                commands.append(_one_hook(item))
            except ValueError as exc:
                raise ValueError(f"command {index}: {exc}") from None
        return tuple(commands)
    if isinstance(value, list) and not value:
        raise ValueError("expected a command, or an array of commands, got an empty array")
    return (_one_hook(value),)


def _one_hook(value: Any) -> tuple[str, ...]:
    argv = parse_argv(value)
    if argv[0] == "-":
        raise ValueError('"-" must be followed by the program: "-/usr/bin/app" ignores its failure')
    return argv

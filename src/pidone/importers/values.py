"""Values shared by the formats: booleans, signals, umasks, accounts, durations, and the shell commands run through."""

from __future__ import annotations

import signal

from pidone.loader import SCHEMA

SHELL = "/bin/sh"  # what a converted command that needs a shell runs through
NOFILE_INFINITY = 1048576  # Linux refuses an infinite RLIMIT_NOFILE; this is the kernel's default nr_open

_MAX_ID = 2**32 - 2
_MAX_RETRIES = 1_000_000


def _seconds(value: float) -> int | float:
    """Return a duration for TOML: an integer when whole, else rounded to microseconds."""
    return int(value) if value == int(value) else round(value, 6)


_BOOL_TRUE = ("1", "yes", "true", "on", "y", "t")
_BOOL_FALSE = ("0", "no", "false", "off", "n", "f")


def _boolean(text: str) -> bool:
    """Return a systemd or supervisord boolean; raise ValueError."""
    word = text.strip().lower()
    if word in _BOOL_TRUE:
        return True
    if word in _BOOL_FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _signal_name(text: str) -> str:
    """Return "SIGTERM" for "TERM", "SIGTERM", "sigterm" or "15"; raise ValueError for others."""
    word = text.strip()
    try:
        if word.isdigit():
            return signal.Signals(int(word)).name
        upper = word.upper()
        return signal.Signals[upper if upper.startswith("SIG") else "SIG" + upper].name
    except (KeyError, ValueError):
        raise ValueError(f"not a signal pidone can name: {text!r}") from None


def _umask(text: str) -> str:
    """Return an octal umask as pidone writes it ("0022"); raise ValueError."""
    word = text.strip()
    if not word or len(word) > 4 or any(c not in "01234567" for c in word) or int(word, 8) > 0o777:
        raise ValueError(f"not an octal umask: {text!r}")
    return f"{int(word, 8):04o}"


def _account(text: str) -> str | int:
    """Return a user or group as pidone takes it: an integer for a number, else the name; raise ValueError."""
    word = text.strip()
    if word.isascii() and word.isdigit():
        if int(word) > _MAX_ID:
            raise ValueError(f"{word} is past the largest user or group ID")
        return int(word)
    if not word or len(word) > 256 or not word.isprintable() or any(c in word for c in " :/,"):
        raise ValueError(f"not a user or group name: {text!r}")
    return word


def _safe_bool(text: str) -> bool:
    try:
        return _boolean(text)
    except ValueError:
        return False


def _schema_table(key: str) -> str | None:
    """Return the table ("" for the top level) in which pidone's unit files have `key`, or None when none does.

    For mappings onto keys a later pidone adds: written once the key exists, noted until then.
    """
    return next((table for table, keys in SCHEMA.items() if key in keys), None)

"""systemd unit-file syntax: lines and sections, continuation lines, quoting and C escapes, unit-name
escaping, specifiers, and the value syntaxes (time spans, resource limits, `kill ... $MAINPID`).

Nothing here knows what a directive means in pidone: that is `systemd.py` and its helpers.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from pidone.importers.values import _signal_name

_WHITESPACE = " \t\n\r"
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "s": " "}


def _unescape_at(text: str, i: int) -> tuple[str, int]:
    """Return (the character of the C escape starting at text[i] == "\\", index after it)."""
    nxt = text[i + 1]
    if nxt in _C_ESCAPES:
        return _C_ESCAPES[nxt], i + 2
    for letter, length, base in (("x", 2, 16), ("u", 4, 16), ("U", 8, 16)):
        if nxt == letter:
            digits = text[i + 2 : i + 2 + length]
            if len(digits) == length and all(c in "0123456789abcdefABCDEF" for c in digits):
                return chr(int(digits, base)), i + 2 + length
    digits = text[i + 1 : i + 4]
    if len(digits) == 3 and all(c in "01234567" for c in digits):
        return chr(int(digits, 8)), i + 4
    return nxt, i + 2  # \\, \", \', \; and anything unknown: the character itself


def _split_systemd(text: str, *, escapes: bool = True) -> tuple[list[str], list[str]]:
    """Split a systemd value into words as systemd does: whitespace, '' and "" quotes, C escapes.

    Return (words, raw) where raw[i] is word i as written, to tell a lone
    `;` from an escaped `\\;`. Raise ValueError for an unclosed quote.
    """
    words: list[str] = []
    raws: list[str] = []
    current: list[str] = []
    start = -1
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == quote:
                quote = ""
                i += 1
            elif c == "\\" and escapes and i + 1 < len(text):
                char, i = _unescape_at(text, i)
                current.append(char)
            else:
                current.append(c)
                i += 1
            continue
        if c in _WHITESPACE:
            if start >= 0:
                words.append("".join(current))
                raws.append(text[start:i])
                current, start = [], -1
            i += 1
            continue
        if start < 0:
            start = i
        if c in "'\"":
            quote = c
            i += 1
        elif c == "\\" and escapes and i + 1 < len(text):
            char, i = _unescape_at(text, i)
            current.append(char)
        else:
            current.append(c)
            i += 1
    if quote:
        raise ValueError("unclosed quote")
    if start >= 0:
        words.append("".join(current))
        raws.append(text[start:])
    return words, raws


def _words_or_split(text: str) -> list[str]:
    """Return the words of `text` as systemd splits them (no escapes), or at whitespace if a quote is unclosed."""
    try:
        return _split_systemd(text, escapes=False)[0]
    except ValueError:
        return text.split()


def _systemd_lines(text: str) -> tuple[list[tuple[str, str, str, int]], list[tuple[int, str]]]:
    """Return ([(section, key, value, line)], problems) for a systemd unit file, as systemd reads it.

    Comments start with # or ;. A line ending in an odd number of
    backslashes continues on the next one (the backslash becomes a space;
    comment lines inside are skipped).
    """
    entries: list[tuple[str, str, str, int]] = []
    problems: list[tuple[int, str]] = []
    section = ""
    pending = ""
    pending_line = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith(("#", ";")):
            continue
        if pending:
            line, start = pending + raw, pending_line
        else:
            line, start = raw, number
        backslashes = len(line) - len(line.rstrip("\\"))
        if backslashes % 2 == 1:
            pending, pending_line = line[:-1] + " ", start
            continue
        pending = ""
        line = line.strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                problems.append((start, line))
                section = "?"
                continue
            section = line[1:-1]
            continue
        key, eq, value = line.partition("=")
        if not eq or not key.strip():
            problems.append((start, line))
            continue
        entries.append((section, key.strip(), value.strip(), start))
    if pending:
        entries_line = pending.strip()
        key, eq, value = entries_line.partition("=")
        if eq and key.strip():
            entries.append((section, key.strip(), value.strip(), pending_line))
    return entries, problems


# Specifiers with a fixed value for system services (systemd.unit(5), "SPECIFIERS").
_FIXED_SPECIFIERS = {
    "t": "/run", "S": "/var/lib", "C": "/var/cache", "L": "/var/log", "E": "/etc",
    "T": "/tmp", "V": "/var/tmp", "u": "root", "U": "0", "g": "root", "G": "0",
    "h": "/root", "s": "/bin/sh", "%": "%",
}  # fmt: skip
_INSTANCE_SPECIFIERS = ("i", "I", "f")
# Specifiers that depend on the host or the boot: no value can be fixed at import time.
_HOST_SPECIFIERS = {
    "H": "host name", "l": "short host name", "q": "pretty host name", "m": "machine ID",
    "b": "boot ID", "v": "kernel release", "a": "architecture", "o": "OS ID",
    "w": "OS version ID", "B": "OS build ID", "W": "OS variant ID", "A": "OS image version",
    "M": "OS image ID", "d": "credentials directory",
}  # fmt: skip


def _unescape_unit(text: str, *, slashes: bool) -> str:
    """Undo systemd's unit-name escaping: \\xNN, and "-" meaning "/" when `slashes`."""
    out = []
    i = 0
    while i < len(text):
        match = re.match(r"\\x([0-9a-fA-F]{2})", text[i : i + 4])
        if match:
            out.append(chr(int(match.group(1), 16)))
            i += 4
        else:
            out.append("/" if slashes and text[i] == "-" else text[i])
            i += 1
    return "".join(out)


@dataclass
class _SystemdName:
    """The names systemd derives from a unit's file name, for specifiers and for the pidone name."""

    full: str  # "getty@tty1.service"
    source: str = ""  # the file's path, for %y and %Y

    @property
    def stem(self) -> str:
        return self.full.rsplit(".", 1)[0]

    @property
    def prefix(self) -> str:
        return self.stem.partition("@")[0]

    @property
    def instance(self) -> str:
        return self.stem.partition("@")[2]

    @property
    def template(self) -> bool:
        return "@" in self.stem and not self.instance

    def specifiers(self) -> dict[str, str]:
        """Return the value of each specifier known at import time."""
        prefix, instance = self.prefix, self.instance
        last = prefix.rsplit("-", 1)[-1]
        unescaped = _unescape_unit(instance or prefix, slashes=True)
        values = dict(_FIXED_SPECIFIERS)
        values.update({
            "n": self.full, "N": self.stem, "p": prefix, "P": _unescape_unit(prefix, slashes=True),
            "j": last, "J": _unescape_unit(last, slashes=True),
        })  # fmt: skip
        if not self.template:
            values.update({
                "i": instance, "I": _unescape_unit(instance, slashes=True),
                "f": unescaped if unescaped.startswith("/") else "/" + unescaped,
            })  # fmt: skip
        else:  # pidone's own template (SPEC §12): its specifiers, and %% for a literal %
            values.update({"i": "%i", "I": "%i", "f": "/%i", "n": "%n", "N": "%n", "%": "%%"})
        if self.source.startswith("/"):
            values["y"] = self.source
            values["Y"] = os.path.dirname(self.source)
        return values


def _expand_quiet(value: str, specifiers: dict[str, str], template: bool = False) -> str:
    kept = "%%" if template else "%"  # a literal % in a pidone template is %%
    return re.sub(r"%(.)", lambda m: specifiers.get(m.group(1), kept + m.group(1)), value, flags=re.S)


_TIMESPAN_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-zµμ]*)")
_TIMESPAN_UNITS = {
    "usec": 1e-6, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "msec": 1e-3, "ms": 1e-3,
    "seconds": 1.0, "second": 1.0, "sec": 1.0, "s": 1.0, "": 1.0,
    "minutes": 60.0, "minute": 60.0, "min": 60.0, "m": 60.0,
    "hours": 3600.0, "hour": 3600.0, "hr": 3600.0, "h": 3600.0,
    "days": 86400.0, "day": 86400.0, "d": 86400.0, "weeks": 604800.0, "week": 604800.0, "w": 604800.0,
    "months": 2629800.0, "month": 2629800.0, "M": 2629800.0,
    "years": 31557600.0, "year": 31557600.0, "y": 31557600.0,
}  # fmt: skip


def _timespan(text: str, unit: float = 1.0) -> float | None:
    """Return a systemd time span in seconds ("5", "1min 30s", "500ms"), None for "infinity"; raise ValueError.

    A bare number counts in `unit` seconds (1 for most directives).
    """
    word = text.strip()
    if word == "infinity":
        return None
    total, pos, parts = 0.0, 0, 0
    while pos < len(word):
        match = _TIMESPAN_PART.match(word, pos)
        if match is None or match.end() == pos or match.group(2) not in _TIMESPAN_UNITS:
            raise ValueError(f"not a time span systemd accepts: {text!r}")
        scale = _TIMESPAN_UNITS[match.group(2)] if match.group(2) else unit
        total += float(match.group(1)) * scale
        pos, parts = match.end(), parts + 1
    if not parts:
        raise ValueError(f"not a time span: {text!r}")
    return total


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTPE]?)(?:i?B)?")


def _rlimit(name: str, text: str) -> Any:
    """Return a systemd Limit*= value ("4096", "infinity", "1K:2K", "+5" for nice) in pidone's TOML form."""
    soft_text, colon, hard_text = text.partition(":")
    values = [_rlimit_value(name, soft_text)]
    if colon:
        values.append(_rlimit_value(name, hard_text))
    if len(values) == 1 or values[0] == values[1]:
        return values[0]
    soft, hard = values
    if hard != "infinity" and (soft == "infinity" or soft > hard):
        raise ValueError("the soft limit is above the hard limit")
    return values


def _rlimit_value(name: str, text: str) -> int | str:
    word = text.strip()
    if word in ("infinity", "unlimited"):
        return "infinity"
    if name == "nice" and word[:1] in "+-" and word[1:].isdigit():
        nice = int(word)
        if not -20 <= nice <= 19:
            raise ValueError("a nice level is from -20 to 19")
        return 20 - nice
    if name in ("cpu", "rttime"):
        seconds = _timespan(word, 1e-6 if name == "rttime" else 1.0)
        if seconds is None:
            return "infinity"
        number = int(seconds * 1_000_000) if name == "rttime" else int(-(-seconds // 1))
        if number > 2**63 - 1:
            raise ValueError("too large")
        return number
    match = _SIZE.fullmatch(word)
    if not match:
        raise ValueError(f"not a limit systemd accepts: {text!r}")
    scale = 1024 ** "_KMGTPE".index(match.group(2) or "_")
    number = int(float(match.group(1)) * scale)
    if number > 2**63 - 1:
        raise ValueError("too large")
    return number


def _replace_infinity(value: Any, number: int) -> Any:
    if isinstance(value, list):
        return [number if v == "infinity" else v for v in value]
    return number


_KILL_SIGNAL_OPTION = re.compile(r"-(?:s|-signal)")


def _kill_mainpid(words: list[str]) -> str | None:
    """Return the signal of a `kill -SIG $MAINPID` command (any spelling), or None when it is something else."""
    if not words or os.path.basename(words[0]) != "kill":
        return None
    rest = words[1:]
    signame = "SIGTERM"
    if len(rest) == 3 and _KILL_SIGNAL_OPTION.fullmatch(rest[0]):
        signame, rest = rest[1], rest[2:]
    elif len(rest) == 2 and rest[0].startswith("--signal="):
        signame, rest = rest[0].partition("=")[2], rest[1:]
    elif len(rest) == 2 and rest[0].startswith("-") and len(rest[0]) > 1:
        signame, rest = rest[0][1:], rest[1:]
    if rest not in (["$MAINPID"], ["${MAINPID}"]):
        return None
    try:
        return _signal_name(signame)
    except ValueError:
        return None

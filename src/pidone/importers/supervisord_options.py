"""supervisord: the options of one [program:x] process, each turned into pidone keys by a small handler.

`_OPTIONS` and `_LATE_OPTIONS` map each option to its handler, run in the table's order (the order of the
notes); `_environment` and `_command` come first, since the other options may expand what they define.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pidone.importers.notes import _Notes
from pidone.importers.values import _MAX_RETRIES, SHELL, _account, _safe_bool, _schema_table, _signal_name, _umask
from pidone.units import ENV_KEY_RE, MAX_DURATION

_PLACEHOLDER = re.compile("\ue000([A-Za-z0-9_]*)\ue001")


class _Expansions(dict):
    """supervisord's %(name)s expansions; unknown ENV_X and host_node_name become placeholders for the shell."""

    def __missing__(self, key: str) -> str:
        if key.startswith("ENV_") and ENV_KEY_RE.fullmatch(key[4:]):
            return f"\ue000{key[4:]}\ue001"
        if key == "host_node_name":
            return "\ue000\ue001"
        raise KeyError(key)


def _supervisord_environment(text: str) -> dict[str, str]:
    """Parse supervisord's `KEY="value",KEY2=value2` exactly as supervisord does; raise ValueError."""
    lexer = shlex.shlex(text)
    lexer.wordchars += "/.+-():"
    tokens = list(lexer)
    pairs: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        triple = tokens[i : i + 3]
        if len(triple) != 3 or triple[1] != "=":
            raise ValueError("not KEY=value pairs separated by commas (quote values with other characters)")
        pairs[triple[0]] = triple[2].strip("'\"")
        i += 4
    return pairs


@dataclass
class _Process:
    """One process being converted: its options and expansions, its notes, and the tables built so far."""

    options: dict[str, str]
    expansions: _Expansions
    notes: _Notes
    environ: Mapping[str, str]  # the environment `pidone import` runs in, for user=%(ENV_X)s
    handled: set[str] = field(default_factory=lambda: {"numprocs", "numprocs_start", "process_name", "command"})
    service: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    restart: dict[str, Any] = field(default_factory=dict)
    stop: dict[str, Any] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)  # top-level keys (enabled)
    error: str | None = None  # set by a handler when the program cannot be converted safely

    def get(self, key: str, *, env_ok: bool = False) -> str | None:
        """Return option `key` expanded, or None when absent or when it cannot be expanded (noted)."""
        self.handled.add(key)
        if key not in self.options:
            return None
        try:
            value = self.options[key] % self.expansions
        except (KeyError, ValueError, TypeError) as exc:
            self.notes.drop(key, self.options[key], f"cannot expand {exc}: supervisord would refuse it")
            return None
        if not env_ok and _PLACEHOLDER.search(value):
            self.notes.drop(key, self.options[key], "%(ENV_X)s and %(host_node_name)s are only known when the container runs")
            return None
        return value


def _dispatch(process: _Process, handlers: dict[str, Callable[[_Process, str, str], None]]) -> None:
    """Run the handler of each option of `handlers` the program sets, in the table's order."""
    for key, handler in handlers.items():
        value = process.get(key, env_ok=key in _ENV_OK)
        if value is not None:
            handler(process, key, value)


def _environment(process: _Process) -> None:
    """environment=: the program's variables, which also expand as %(ENV_X)s in its other options."""
    notes, environment = process.notes, process.environment
    env_text = process.get("environment", env_ok=True)
    if env_text is not None:
        try:
            environment.update(_supervisord_environment(env_text))
        except ValueError as exc:
            notes.drop("environment", process.options["environment"], str(exc))
        for key, value in list(environment.items()):
            if not ENV_KEY_RE.fullmatch(key):
                notes.drop("environment", key, "not a variable name pidone accepts ([A-Za-z_][A-Za-z0-9_]*)")
                del environment[key]
            elif _PLACEHOLDER.search(value):
                notes.drop(
                    "environment", f"{key}={_PLACEHOLDER.sub(lambda m: '%(ENV_' + m.group(1) + ')s', value)}",
                    "%(ENV_X)s is only known when the container runs, and pidone sets values as written",
                )  # fmt: skip
                del environment[key]
    for key, value in environment.items():
        process.expansions[f"ENV_{key}"] = value  # as supervisord: the program's environment expands in its command


def _command(process: _Process) -> str | None:
    """command=: the argv, or a shell script when it holds what only the container knows; return an error or None."""
    options, notes = process.options, process.notes
    if "command" not in options:
        return "no command="
    try:
        text = options["command"] % process.expansions
    except (KeyError, ValueError, TypeError) as exc:
        return f"command= cannot be expanded: {exc}"
    try:
        words = shlex.split(text)
    except ValueError as exc:
        return f"command= cannot be split into words: {exc}"
    if not words:
        return "command= is empty"
    if any(_PLACEHOLDER.search(word) for word in words):
        script = "exec " + " ".join(_placeholder_word(word) for word in words)
        process.service["command"] = [SHELL, "-c", script]
        notes.approx(
            "command", options["command"],
            f"runs as {SHELL} -c {script!r}: %(ENV_X)s and %(host_node_name)s are only known when the"
            f" container runs, so the shell expands them; the image needs {SHELL}",
        )  # fmt: skip
    elif not all(words):
        process.service["command"] = [SHELL, "-c", "exec " + shlex.join(words)]
        notes.approx("command", options["command"], f"runs through {SHELL} -c to pass an empty argument")
    else:
        process.service["command"] = words
    return None


def _directory(process: _Process, key: str, value: str) -> None:
    if value.startswith("/"):
        process.service["working_directory"] = value
    else:
        process.notes.drop(key, value, "not an absolute path")


def _user(process: _Process, key: str, value: str) -> None:
    raw = process.options[key]
    if _PLACEHOLDER.search(value):
        # Dropped, the unit would run as root: expand it from the importing environment, or refuse.
        missing = [m.group(1) or "host_node_name" for m in _PLACEHOLDER.finditer(value) if m.group(1) not in process.environ]
        if missing or any(not m.group(1) for m in _PLACEHOLDER.finditer(value)):
            process.error = (
                f"user={raw}: {', '.join(missing)} is not set where pidone import runs, and without a user the"
                " unit would run as root: set it and import again, or set [service] user yourself"
            )
            return
        value = _PLACEHOLDER.sub(lambda m: process.environ[m.group(1)], value)
        process.notes.approx(
            key, raw,
            f"written as user = {value!r}, expanded from the environment pidone import ran in;"
            " supervisord expands it from its own when it starts",
        )  # fmt: skip
    try:
        process.service["user"] = _account(value)
    except ValueError as exc:
        process.notes.drop(key, value, str(exc))
        if value != raw:
            process.error = f"user={raw}: {exc}; without a user the unit would run as root"


def _umask_option(process: _Process, key: str, value: str) -> None:
    try:
        process.service["umask"] = _umask(value)
    except ValueError as exc:
        process.notes.drop(key, value, str(exc))


def _autorestart(process: _Process, key: str, value: str) -> None:
    word = value.strip().lower()
    if word == "unexpected":
        pass  # pidone's default, on-failure
    elif word in ("true", "yes", "on", "1"):
        process.restart["policy"] = "always"
    elif word in ("false", "no", "off", "0"):
        process.restart["policy"] = "no"
    else:
        process.notes.drop(key, value, "expected true, false or unexpected")


def _exitcodes(process: _Process, key: str, value: str) -> None:
    if [c.strip() for c in value.split(",")] != ["0"]:
        process.notes.drop(key, value, "pidone treats exit status 0 as expected and every other as a failure")


def _startsecs(process: _Process, key: str, value: str) -> None:
    try:
        seconds = int(value)
        if not 0 <= seconds <= MAX_DURATION:
            raise ValueError
        process.restart["reset_after"] = seconds
        process.notes.approx(
            key, value, "written as [restart] reset_after: a run this long resets pidone's count of failures"
        )
    except ValueError:
        process.notes.drop(key, value, "not a number of seconds pidone accepts")


def _startretries(process: _Process, key: str, value: str) -> None:
    try:
        retries = int(value)
        if not 0 <= retries <= _MAX_RETRIES:
            raise ValueError
    except ValueError:
        process.notes.drop(key, value, f"not an integer from 0 to {_MAX_RETRIES}")
        return
    process.restart["max_retries"] = max(retries, 1)
    if retries == 0:
        process.notes.approx(
            key, value,
            "written as max_retries = 1: pidone's 0 would mean never give up, and pidone cannot give up"
            " at once and still restart later exits",
        )  # fmt: skip


def _stopsignal(process: _Process, key: str, value: str) -> None:
    try:
        process.stop["signal"] = _signal_name(value)
    except ValueError as exc:
        process.notes.drop(key, value, str(exc))


def _stopwaitsecs(process: _Process, key: str, value: str) -> None:
    try:
        seconds = int(value)
        if not 0 <= seconds <= MAX_DURATION:
            raise ValueError
        process.stop["timeout"] = seconds
    except ValueError:
        process.notes.drop(key, value, "not a number of seconds pidone accepts")


def _as_group(process: _Process, key: str, value: str) -> None:
    if not _safe_bool(value):
        process.notes.approx(
            key, value,
            "pidone signals the unit's whole process group on stop (and SIGKILLs what is left at the timeout);"
            " supervisord signals the program's process only",
        )  # fmt: skip


def _as_group_default(process: _Process) -> None:
    """supervisord's default, stopasgroup=false, differs from pidone's group signalling: say so."""
    if "stopasgroup" not in process.options:
        process.notes.approx(
            "stopasgroup", "false (supervisord's default)",
            "pidone signals the unit's whole process group on stop (and SIGKILLs what is left at the timeout);"
            " supervisord signals the program's process only, leaving its children running",
        )  # fmt: skip


def _not_carried(why: str) -> Callable[[_Process, str, str], None]:
    def handler(process: _Process, key: str, value: str) -> None:
        process.notes.drop(key, value, why)

    return handler


def _autostart(process: _Process, key: str, value: str) -> None:
    if _safe_bool(value):
        return
    # THE one place where `enabled = false` is written, as soon as pidone's schema has the key (issue #16).
    table = _schema_table("enabled")
    if table == "":
        process.top["enabled"] = False
        return
    process.notes.drop(
        key, value,
        "pidone starts every unit in its directory (rename it NAME.toml.disabled to keep it out, and start it"
        " with `pidone start` once it is back)",
    )  # fmt: skip


# The options of a program, each with its handler, in the order their notes are given.
_OPTIONS: dict[str, Callable[[_Process, str, str], None]] = {
    "directory": _directory,
    "user": _user,
    "umask": _umask_option,
    "autorestart": _autorestart,
    "exitcodes": _exitcodes,
    "startsecs": _startsecs,
    "startretries": _startretries,
    "stopsignal": _stopsignal,
    "stopwaitsecs": _stopwaitsecs,
    "stopasgroup": _as_group,
    "killasgroup": _as_group,
}
# Options whose %(ENV_X)s the handler resolves itself.
_ENV_OK = {"user"}
# Noted after the [log] options.
_LATE_OPTIONS: dict[str, Callable[[_Process, str, str], None]] = {
    "priority": _not_carried("pidone starts units in parallel unless ordered: list what must start first in [dependencies] after"),
    "autostart": _autostart,
    "serverurl": _not_carried("pidone's control socket is found by `pidone` itself"),
}


def _placeholder_word(word: str) -> str:
    """Return `word` as shell text in which each placeholder becomes its variable (or $(uname -n))."""
    parts = []
    pos = 0
    for match in _PLACEHOLDER.finditer(word):
        if word[pos : match.start()]:
            parts.append(shlex.quote(word[pos : match.start()]))
        parts.append(f'"${{{match.group(1)}}}"' if match.group(1) else '"$(uname -n)"')
        pos = match.end()
    if word[pos:]:
        parts.append(shlex.quote(word[pos:]))
    return "".join(parts)

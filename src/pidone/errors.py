"""The exception tree: every error pidone raises on purpose is a PidoneError."""

from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass


class PidoneError(Exception):
    """Base of every error pidone raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one unit file.

    `path` is the file; `line`/`col` are 1-based when the TOML parser knows
    them; `where` is the table and key (`[service] user`) when the schema
    check found it; `message` says what was wrong and what was expected.
    """

    path: str
    message: str
    line: int | None = None
    col: int | None = None
    where: str = ""
    warning: bool = False

    def __str__(self) -> str:
        location = self.path
        if self.line is not None:
            location += f":{self.line}"
            if self.col is not None:
                location += f":{self.col}"
        prefix = "warning: " if self.warning else ""
        where = f" {self.where}:" if self.where else ""
        return f"{location}:{where} {prefix}{self.message}"


class ConfigError(PidoneError):
    """One or more unit files are invalid; `problems` lists every one."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class GraphError(ConfigError):
    """The dependency graph is invalid (a cycle, a missing `requires`)."""


@dataclass
class SpawnError(PidoneError):
    """A child could not be started: which stage failed and with what errno."""

    stage: str
    errno: int
    detail: str = ""
    reason: str = ""  # overrides strerror(errno) when the errno says too little

    def __str__(self) -> str:
        reason = self.reason or (os.strerror(self.errno) if self.errno else "failed")
        detail = f" {self.detail}" if self.detail else ""
        return f"unable to {self.stage}{detail}: {reason}"

    @property
    def errno_name(self) -> str:
        return _errno.errorcode.get(self.errno, str(self.errno))


class StoreError(PidoneError):
    """The state file is missing, corrupt, or of a layout we cannot read."""


class ControlError(PidoneError):
    """A control request or reply is malformed, refused or failed."""

    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class StartupError(PidoneError):
    """pidone itself could not start (runtime directory, sockets): exit 3."""

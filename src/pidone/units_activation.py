"""The `[timer]` and `[socket]` sections of the unit model (SPEC §13, §14):
what starts a unit other than the boot. Plain values; their syntaxes are
checked by cron.py and listen.py, used by timers.py and sockets.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerSection:
    """`[timer]` (SPEC §13): when the unit is started by the clock instead
    of at boot. `timezone` "" means pidone's TZ, else UTC."""

    schedule: str = ""
    timezone: str = ""
    jitter: float = 0.0
    on_boot: bool = False


@dataclass(frozen=True, slots=True)
class SocketSection:
    """`[socket]` (SPEC §14): listening sockets pidone binds and holds for
    the unit; `listen` as written (see listen.py), `mode` for unix sockets."""

    listen: tuple[str, ...] = ()
    backlog: int = 4096
    mode: int = 0o666
    on_demand: bool = False

"""systemd `.timer` and `.socket` units: each becomes a table (`[timer]`,
`[socket]`) of the service it activates, not a unit of its own.

The result of one such file is a *fragment*: an ImportResult named after
the service (`Unit=` / `Service=`, else the same stem) whose document holds
only that table. `pidone import` merges a fragment into the unit made from
its service when both are imported together, and refuses a fragment alone.

OnCalendar= becomes a five-field cron expression when one can say the same
thing: no seconds but 0, no fixed years, weekdays, dates and times made of
values, lists, `..` ranges and `/` steps.
"""

from __future__ import annotations

import os
import re
from typing import Any

from pidone.importers.notes import ImportResult, _Notes, sanitize_name
from pidone.importers.systemd_syntax import _systemd_lines, _timespan, _unescape_unit

_SHORTHANDS = {
    "minutely": "* * * * *",
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 1",  # systemd's week starts on Monday
    "monthly": "0 0 1 * *",
    "quarterly": "0 0 1 1,4,7,10 *",
    "semiannually": "0 0 1 1,7 *",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON_DAY = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}


def _span(text: str) -> float | None:
    """A systemd time span in seconds, or None when it is not one (or infinity)."""
    try:
        return _timespan(text)
    except ValueError:
        return None


class _NoCron(ValueError):
    """An OnCalendar= expression that five cron fields cannot say."""


def calendar_to_cron(text: str) -> tuple[str, str]:
    """Return (cron expression, time zone or "") for OnCalendar= `text`; raise _NoCron why not."""
    words = text.split()
    zone = ""
    if words and "/" in words[-1] and not re.match(r"^[\d*,.:/-]+$", words[-1]):
        zone = words.pop()  # "Europe/Paris"
    elif words and words[-1] in ("UTC", "utc"):
        zone = "UTC"
        words.pop()
    if len(words) == 1 and words[0].lower() in _SHORTHANDS:
        return _SHORTHANDS[words[0].lower()], zone
    weekdays = "*"
    if words and re.match(r"^[A-Za-z]", words[0]):
        weekdays = _weekdays(words.pop(0))
    date, clock = "*-*-*", "00:00:00"
    for word in words:
        if ":" in word:
            clock = word
        elif "-" in word:
            date = word
        else:
            raise _NoCron(f"{word!r} is neither a date (Y-M-D) nor a time (H:M:S)")
    if len(words) > 2:
        raise _NoCron("more parts than weekday, date and time")
    year, month, day = _date_parts(date)
    if year != "*":
        raise _NoCron("a fixed year has no cron field")
    parts = clock.split(":")
    if len(parts) == 2:
        parts.append("00")
    if len(parts) != 3:
        raise _NoCron(f"{clock!r} is not a time H:M[:S]")
    hour, minute, second = parts
    if second.lstrip("0") not in ("", "0") and second not in ("00", "0"):
        raise _NoCron("cron has no seconds: only :00 can be carried over")
    fields = [_field(minute, 0, 59), _field(hour, 0, 23), _field(day, 1, 31), _field(month, 1, 12), weekdays]
    return " ".join(fields), zone


def _date_parts(date: str) -> tuple[str, str, str]:
    parts = date.split("-")
    if len(parts) == 2:
        parts = ["*", *parts]
    if len(parts) != 3:
        raise _NoCron(f"{date!r} is not a date Y-M-D")
    if "~" in date:
        raise _NoCron("days counted from the end of the month (~) have no cron form")
    return parts[0], parts[1], parts[2]


def _field(text: str, low: int, high: int) -> str:
    """One systemd calendar component ("*", "8,12", "08..18", "0/15") as a cron field."""
    out = []
    for item in text.split(","):
        base, slash, step = item.partition("/")
        if base == "*":
            cron = "*"
        elif ".." in base:
            first, last = base.split("..", 1)
            cron = f"{_number(first, low, high)}-{_number(last, low, high)}"
        else:
            cron = str(_number(base, low, high))
            if slash:
                cron = f"{cron}-{high}"
        if slash:
            if not step.isdigit() or int(step) == 0:
                raise _NoCron(f"{item!r}: a step must be a whole number")
            cron += f"/{int(step)}"
        out.append(cron)
    return ",".join(out)


def _number(text: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise _NoCron(f"{text!r} is not a whole number from {low} to {high}")
    return int(text)


def _weekdays(text: str) -> str:
    out = []
    for item in text.lower().split(","):
        first, dots, last = item.partition("..")
        try:
            a = _DAYS.index(first[:3])
            b = _DAYS.index(last[:3]) if dots else a
        except ValueError:
            raise _NoCron(f"{item!r} is not a weekday") from None
        if b < a:
            raise _NoCron(f"{item!r}: a weekday range that wraps around the week")
        out.extend(str(_CRON_DAY[day]) for day in _DAYS[a : b + 1])
    return ",".join(dict.fromkeys(out))


# --- the files ------------------------------------------------------------------------


def _directives(text: str, notes: _Notes) -> dict[tuple[str, str], list[str]]:
    entries, problems = _systemd_lines(text)
    for number, line in problems:
        notes.drop(f"line {number}", line, "not a [Section] header or a Key=Value line; systemd ignores it too")
    out: dict[tuple[str, str], list[str]] = {}
    for section, key, value, _line in entries:
        values = out.setdefault((section, key), [])
        if value == "":
            values.clear()  # an empty value resets a list, as in systemd
        else:
            values.append(value)
    return out


def _target(directives: dict, key: str, stem: str) -> str:
    named = directives.pop(("Timer" if key == "Unit" else "Socket", key), [])
    service = named[-1] if named else stem + ".service"
    return sanitize_name(_unescape_unit(service.rsplit(".", 1)[0], slashes=False))


def _leftovers(directives: dict, notes: _Notes, section: str, why: dict[str, str]) -> None:
    for (table, key), values in directives.items():
        if table == "Unit" and key in ("Description", "Documentation"):
            continue
        if table == "Install":
            notes.drop(f"[Install] {key}", " ".join(values), "pidone starts what is in the units directory")
            continue
        reason = why.get(key) if table == section else None
        notes.drop(key, " ".join(values), reason or f"pidone has no equivalent of [{table}] {key}=")


def import_timer(text: str, name: str, source: str = "") -> ImportResult:
    """Return the [timer] fragment for systemd timer file `text` named `name` ("backup.timer")."""
    notes = _Notes()
    stem = os.path.basename(name).rsplit(".", 1)[0]
    d = _directives(text, notes)
    service = _target(d, "Unit", stem)
    timer: dict[str, Any] = {}
    calendars = d.pop(("Timer", "OnCalendar"), [])
    intervals = [(key, d.pop(("Timer", key))) for key in ("OnUnitActiveSec", "OnUnitInactiveSec", "OnActiveSec")
                 if ("Timer", key) in d]
    boot = [(key, d.pop(("Timer", key))) for key in ("OnBootSec", "OnStartupSec") if ("Timer", key) in d]
    if calendars:
        if len(calendars) > 1:
            notes.drop("OnCalendar", " | ".join(calendars[1:]), "a pidone timer has one schedule: only the first is kept")
        try:
            schedule, zone = calendar_to_cron(calendars[0])
        except _NoCron as exc:
            return ImportResult(service, None, list(notes), source or name,
                                error=f"OnCalendar={calendars[0]} has no cron form: {exc}")
        timer["schedule"] = schedule
        if zone:
            timer["timezone"] = zone
    elif intervals:
        key, values = intervals[0]
        seconds = _span(values[-1])
        if seconds is None or seconds < 1:
            return ImportResult(service, None, list(notes), source or name, error=f"{key}={values[-1]}: not a time span of at least 1s")
        timer["schedule"] = f"every {seconds:g}s"
        notes.approx(key, values[-1], f"'every {seconds:g}s': pidone counts from its own start and then from each firing, not from the service's last activation")
    else:
        return ImportResult(service, None, list(notes), source or name,
                            error="no OnCalendar=, OnUnitActiveSec= or OnUnitInactiveSec=: nothing to schedule")
    for key, values in intervals[1 if not calendars else 0:]:
        notes.drop(key, values[-1], "a pidone timer has one schedule")
    for key, values in boot:
        seconds = _span(values[-1])
        timer["on_boot"] = True
        if seconds:
            notes.approx(key, values[-1], "on_boot = true: the unit also starts at boot, at once rather than after the delay")
    delay = d.pop(("Timer", "RandomizedDelaySec"), [])
    if delay and _span(delay[-1]):
        timer["jitter"] = f"{_span(delay[-1]):g}s"
    persistent = d.pop(("Timer", "Persistent"), [])
    if persistent and persistent[-1].lower() in ("yes", "true", "1", "on"):
        notes.drop("Persistent", persistent[-1], "pidone does not replay firings missed while it was not running")
    d.pop(("Timer", "AccuracySec"), None)  # pidone fires on time: nothing to carry
    _leftovers(d, notes, "Timer", {"WakeSystem": "a container cannot wake the machine",
                                   "RemainAfterElapse": "pidone keeps no timer state apart from the unit"})
    return ImportResult(service, {"timer": timer}, list(notes), source or name, fragment=True)


def _listen(kind: str, value: str) -> str:
    """A ListenStream=/ListenDatagram= value as a pidone listen address; raise ValueError."""
    proto = "tcp" if kind == "ListenStream" else "udp"
    if value.startswith("/"):
        if proto == "udp":
            raise ValueError("a unix datagram socket: pidone's unix sockets are streams")
        return f"unix:{value}"
    if value.startswith("@"):
        raise ValueError("an abstract unix socket: pidone binds only socket files")
    if value.isdigit():
        return f"{proto}:0.0.0.0:{value}"  # with [::] added by the caller
    if value.startswith("["):
        return f"{proto}:{value}"
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("not a port, ADDRESS:PORT, [V6]:PORT or /path")
    return f"{proto}:{host}:{port}"


def import_socket(text: str, name: str, source: str = "") -> ImportResult:
    """Return the [socket] fragment for systemd socket file `text` named `name` ("web.socket")."""
    from pidone.listen import parse_listen

    notes = _Notes()
    stem = os.path.basename(name).rsplit(".", 1)[0]
    d = _directives(text, notes)
    service = _target(d, "Service", stem)
    accept = d.pop(("Socket", "Accept"), [])
    if accept and accept[-1].lower() in ("yes", "true", "1", "on"):
        return ImportResult(service, None, list(notes), source or name,
                            error="Accept=yes starts one service per connection (inetd style), which pidone does not do")
    listen: list[str] = []
    for kind in ("ListenStream", "ListenDatagram"):
        for value in d.pop(("Socket", kind), []):
            try:
                address = _listen(kind, value)
                parse_listen(address)
            except ValueError as exc:
                notes.drop(kind, value, str(exc))
                continue
            listen.append(address)
            if value.isdigit():  # systemd's bare port is IPv6 and IPv4 both
                listen.append(f"{address.split(':', 1)[0]}:[::]:{value}")
    if not listen:
        return ImportResult(service, None, list(notes), source or name, error="no ListenStream= or ListenDatagram= pidone can bind")
    table: dict[str, Any] = {"listen": list(dict.fromkeys(listen)), "on_demand": True}
    notes.approx("socket activation", None, "on_demand = true: the service starts at its first client, as under systemd;"
                                            " remove it to start the service at boot")
    backlog = d.pop(("Socket", "Backlog"), [])
    if backlog and backlog[-1].isdigit():
        table["backlog"] = max(1, min(65535, int(backlog[-1])))
    mode = d.pop(("Socket", "SocketMode"), [])
    if mode and re.fullmatch(r"0?[0-7]{3}", mode[-1]):
        table["mode"] = "0" + mode[-1][-3:]
    for key in ("SocketUser", "SocketGroup"):
        for value in d.pop(("Socket", key), []):
            notes.approx(key, value, "a unix socket file is owned by the service's own user and group")
    _leftovers(d, notes, "Socket", {"FileDescriptorName": "LISTEN_FDNAMES holds the unit's name",
                                   "ListenFIFO": "pidone binds sockets only"})
    return ImportResult(service, {"socket": table}, list(notes), source or name, fragment=True)

"""Schedules of `[timer] schedule` (SPEC §13): five-field cron, the `@daily`
family, and `every DURATION`. Pure: no clock, no system calls.

A cron schedule is a set of *wall-clock* minutes in one time zone. Its
firings are those wall times taken as `zoneinfo` takes them with `fold=0`,
which is what systemd (and `mktime`) do across daylight-saving changes:

- a wall time that does not exist (the hour skipped in spring) fires as
  many minutes after the change as it was into the gap (02:30 → 03:30);
  a time that the skip makes coincide with a later one fires once;
- a wall time that happens twice (the hour repeated in autumn) fires once,
  at its first occurrence; so `*/15 * * * *` does not fire in the repeated
  hour.

`every 10m` is not wall-clock: it fires every 10 minutes from the unit's
last firing (or from when pidone started), whatever the clock says.

Why our own parser: the cron grammar is small, the DST rules above are
ours to choose and document, and none of the maintained libraries is both
pure-Python-small and explicit about them.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pidone.units import parse_duration

UTC = timezone.utc

# (name, low, high) of the five fields, in order.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTHS = {name: i for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
_DAYS = {name: i for i, name in enumerate("sun mon tue wed thu fri sat".split())}
_NAMES = (None, None, None, _MONTHS, _DAYS)
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the most each month can have
# How far a zone's offset moves at one change, at most (a bound for the search below).
_MAX_SHIFT = timedelta(hours=3)
# A schedule that can fire fires within this many years (Feb 29 on a given weekday: 28).
_HORIZON_YEARS = 30


class ScheduleError(ValueError):
    """A schedule that cannot be parsed; the message says which field and why."""


class Cron:
    """A five-field cron schedule in one time zone."""

    def __init__(self, text: str, zone: ZoneInfo | timezone = UTC):
        self.text = text
        self.zone = zone
        spec = MACROS.get(text.strip().lower(), text)
        words = spec.split()
        if len(words) != 5:
            raise ScheduleError(
                f"{text!r}: expected 5 fields (minute hour day-of-month month day-of-week), "
                f"@hourly/@daily/@weekly/@monthly/@yearly, or 'every DURATION'; got {len(words)} field(s)"
            )
        sets = [_parse_field(word, i) for i, word in enumerate(words)]
        self.minutes, self.hours, self.days, self.months, weekdays = sets
        self.weekdays = frozenset(d % 7 for d in weekdays)  # 7 is Sunday too
        # Vixie cron: when both day fields are restricted, either may match;
        # a field that starts with '*' (even "*/2") makes it "both must".
        self._dom_any = words[2].startswith("*")
        self._dow_any = words[4].startswith("*")
        self._sorted = [sorted(s) for s in (self.minutes, self.hours)]
        if self._dow_any and not any(d <= _DAYS_IN_MONTH[m - 1] for m in self.months for d in self.days):
            raise ScheduleError(f"{text!r}: never fires (no month has that day)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cron) and (self.text, str(self.zone)) == (other.text, str(other.zone))

    def __hash__(self) -> int:
        return hash((self.text, str(self.zone)))

    def __repr__(self) -> str:
        return f"Cron({self.text!r}, {str(self.zone)!r})"

    def next_after(self, when: datetime) -> datetime:
        """Return the first firing strictly after `when` (an aware datetime), in UTC."""
        when = when.astimezone(UTC)
        wall = when.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        best: datetime | None = None
        # Start a little before `when`'s wall time: around a change, an
        # earlier wall time can be a later instant.
        for candidate in self._walls_from(wall - _MAX_SHIFT):
            instant = candidate.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
            if instant > when and (best is None or instant < best):
                best = instant
            if best is not None and candidate > best.astimezone(self.zone).replace(tzinfo=None) + _MAX_SHIFT:
                break
        if best is None:  # unreachable for a schedule that passed __init__'s check
            raise ScheduleError(f"{self.text!r}: no firing within {_HORIZON_YEARS} years")
        return best

    def _day_matches(self, day: datetime) -> bool:
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self._dom_any or self._dow_any:  # a field starting with '*' ("*/2" too): both must match
            return dom and dow
        return dom or dow

    def _walls_from(self, start: datetime):
        """Yield the matching wall times (naive, by the minute) from `start` on, in order."""
        day = start.replace(hour=0, minute=0)
        last = start.replace(year=min(start.year + _HORIZON_YEARS, 9999))
        while day <= last:
            if day.month not in self.months:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if self._day_matches(day):
                for hour in self._sorted[1]:
                    for minute in self._sorted[0]:
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            yield candidate
            day += timedelta(days=1)


class Every:
    """`every DURATION`: a fixed interval on the monotonic clock."""

    def __init__(self, text: str, seconds: float):
        self.text = text
        self.seconds = seconds

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Every) and self.seconds == other.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)

    def __repr__(self) -> str:
        return f"Every({self.text!r})"


_EVERY = re.compile(r"every\s+(?P<duration>.+)", re.I)


def parse_schedule(text: str, zone: ZoneInfo | timezone = UTC) -> Cron | Every:
    """Return the schedule `text` means; raise ScheduleError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleError("expected a cron expression, @daily and the like, or 'every DURATION'")
    match = _EVERY.fullmatch(text.strip())
    if match:
        try:
            seconds = parse_duration(match["duration"].strip())
        except ValueError as exc:
            raise ScheduleError(f"{text!r}: {exc}") from None
        if seconds < 1:
            raise ScheduleError(f"{text!r}: the interval must be at least 1s")
        return Every(text, seconds)
    return Cron(text, zone)


def _parse_field(word: str, index: int) -> frozenset[int]:
    name, low, high = _FIELDS[index]
    values: set[int] = set()
    for part in word.split(","):
        values |= _parse_part(part, index, name, low, high)
    return frozenset(values)


def _parse_part(part: str, index: int, name: str, low: int, high: int) -> set[int]:
    where = f"{name} field {part!r}"
    body, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ScheduleError(f"{where}: the step after '/' must be a number of at least 1")
        step = int(step_text)
    if body == "*":
        first, last = low, high if index != 4 else 6
    else:
        first_text, dash, last_text = body.partition("-")
        first = _value(first_text, index, where, low, high)
        # "5/15" is "5-59/15", as in Vixie cron.
        last = _value(last_text, index, where, low, high) if dash else (high if slash else first)
        if last < first:
            raise ScheduleError(f"{where}: the range goes backwards")
    return set(range(first, last + 1, step))


def _value(text: str, index: int, where: str, low: int, high: int) -> int:
    names = _NAMES[index]
    if names and text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        expected = f"a number {low}-{high}" + (f" or a name ({', '.join(names)})" if names else "")
        raise ScheduleError(f"{where}: expected {expected}, got {text!r}")
    number = int(text)
    if not low <= number <= high:
        raise ScheduleError(f"{where}: {number} is out of range {low}-{high}")
    return number


def zone_named(name: str) -> ZoneInfo | timezone:
    """Return the IANA time zone `name` ("UTC" needs no tzdata); raise ScheduleError."""
    if name in ("UTC", "Etc/UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, OSError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise ScheduleError(f"unknown time zone {name!r}: {exc}") from None
    except KeyError:
        raise ScheduleError(
            f"unknown time zone {name!r} (an IANA name such as 'Europe/Paris'; the image may need tzdata)"
        ) from None

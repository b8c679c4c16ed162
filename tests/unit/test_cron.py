"""Schedules of [timer]: the cron grammar, its errors, and firings across
daylight-saving changes, checked against a brute-force minute scan."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pidone.cron import Cron, Every, ScheduleError, parse_schedule, zone_named

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")


def at(text, zone=UTC):
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def firings(cron, start, count):
    out, when = [], start
    for _ in range(count):
        when = cron.next_after(when)
        out.append(when)
    return out


@pytest.mark.parametrize(
    "schedule, after, expected",
    [
        ("*/15 * * * *", "2026-01-01 10:07", "2026-01-01 10:15"),
        ("*/15 * * * *", "2026-01-01 10:15", "2026-01-01 10:30"),
        ("0 3 * * *", "2026-01-01 03:00", "2026-01-02 03:00"),
        ("30 8 * * mon-fri", "2026-12-05 09:00", "2026-12-07 08:30"),  # Saturday -> Monday
        ("0 0 1 jan *", "2026-06-01 00:00", "2027-01-01 00:00"),
        ("@hourly", "2026-01-01 10:00", "2026-01-01 11:00"),
        ("@daily", "2026-01-01 10:00", "2026-01-02 00:00"),
        ("@weekly", "2026-12-08 10:00", "2026-12-13 00:00"),  # the next Sunday
        ("@monthly", "2026-12-08 10:00", "2027-01-01 00:00"),
        ("@yearly", "2026-12-08 10:00", "2027-01-01 00:00"),
        ("0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"),
        ("5/20 * * * *", "2026-01-01 10:00", "2026-01-01 10:05"),
        ("1-3,58 * * * *", "2026-01-01 10:03", "2026-01-01 10:58"),
        ("0 12 * * 7", "2026-12-08 00:00", "2026-12-13 12:00"),  # 7 is Sunday too
        # Both day fields restricted: either matches (Vixie cron).
        ("0 0 13 * fri", "2026-12-08 00:00", "2026-12-11 00:00"),
        ("0 0 13 * 5", "2026-12-11 00:00", "2026-12-13 00:00"),
        ("0 0 * DEC Sun", "2026-12-08 00:00", "2026-12-13 00:00"),
        ("0 0 * * */2", "2026-12-08 00:00", "2026-12-10 00:00"),  # Tue -> Thu: "*/2" still restricts
    ],
)
def test_known_schedules(schedule, after, expected):
    assert Cron(schedule).next_after(at(after)) == at(expected)


@pytest.mark.parametrize(
    "schedule, message",
    [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute field '60': 60 is out of range 0-59"),
        ("* 24 * * *", "hour field '24': 24 is out of range 0-23"),
        ("* * 0 * *", "day of month field '0': 0 is out of range 1-31"),
        ("* * * 13 *", "month field '13'"),
        ("* * * * 8", "day of week field '8'"),
        ("*/0 * * * *", "the step after '/' must be a number of at least 1"),
        ("5-1 * * * *", "the range goes backwards"),
        ("* * * foo *", "expected a number 1-12 or a name (jan, feb"),
        ("0 0 30 feb *", "never fires"),
        ("@fortnightly", "expected 5 fields"),
        ("", "expected a cron expression"),
        ("every 0s", "at least 1s"),
        ("every soon", "every soon"),
    ],
)
def test_bad_schedules_say_which_field_and_why(schedule, message):
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_schedule(schedule)


def test_every_is_an_interval():
    schedule = parse_schedule("every 10m")
    assert isinstance(schedule, Every) and schedule.seconds == 600
    assert parse_schedule("Every 1h30m").seconds == 5400


def test_time_zones():
    assert zone_named("UTC") is UTC
    assert zone_named("Europe/Paris") == PARIS
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        zone_named("Mars/Olympus")
    with pytest.raises(ScheduleError, match="unknown time zone"):
        zone_named("../../etc/passwd")


def test_a_time_in_the_spring_gap_fires_as_far_after_the_change():
    # Paris, 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
    cron = Cron("30 2 * * *", PARIS)
    assert cron.next_after(at("2026-03-29 00:00", PARIS)) == at("2026-03-29 03:30", PARIS)
    assert cron.next_after(at("2026-03-29 03:30", PARIS)) == at("2026-03-30 02:30", PARIS)


def test_every_quarter_hour_through_the_spring_gap_keeps_real_time_steps():
    cron = Cron("*/15 * * * *", PARIS)
    got = firings(cron, at("2026-03-29 01:40", PARIS), 5)
    steps = {b - a for a, b in zip(got, got[1:])}
    assert steps == {timedelta(minutes=15)}, got


def test_a_repeated_autumn_time_fires_once():
    # Paris, 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
    cron = Cron("30 2 * * *", PARIS)
    first = cron.next_after(at("2026-10-25 00:00", PARIS))
    assert first == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert cron.next_after(first) == at("2026-10-26 02:30", PARIS)


def test_the_repeated_hour_does_not_fire_twice():
    cron = Cron("*/15 * * * *", PARIS)
    got = firings(cron, datetime(2026, 10, 24, 23, 50, tzinfo=UTC), 8)
    assert len(set(got)) == 8 and got == sorted(got)
    # 02:45 CEST (00:45 UTC) is followed by 03:00 CET (02:00 UTC).
    assert datetime(2026, 10, 25, 2, 0, tzinfo=UTC) in got
    assert datetime(2026, 10, 25, 1, 0, tzinfo=UTC) not in got


# --- brute force ---------------------------------------------------------------

ZONES = [UTC, PARIS, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]


def _field(low, high):
    single = st.integers(low, high).map(str)
    ranged = st.tuples(st.integers(low, high), st.integers(low, high)).map(
        lambda p: f"{min(p)}-{max(p)}"
    )
    stepped = st.tuples(st.sampled_from(["*", f"{low}-{high}"]), st.integers(1, 12)).map(lambda p: f"{p[0]}/{p[1]}")
    part = st.one_of(st.just("*"), single, ranged, stepped)
    return st.lists(part, min_size=1, max_size=3).map(",".join)


def brute_next(cron, when, days, step=timedelta(minutes=1)):
    """The first firing after `when` found by scanning every wall minute
    (or every `step` from a whole hour, when the schedule allows it)."""
    wall = when.astimezone(cron.zone).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=3)
    if step != timedelta(minutes=1):
        wall = wall.replace(hour=0, minute=0) - timedelta(days=1)
    best = None
    for i in range(int(timedelta(days=days) / step)):
        w = wall + i * step + (timedelta(hours=12) if step == timedelta(days=1) else timedelta(0))
        dom, dow = w.day in cron.days, (w.isoweekday() % 7) in cron.weekdays
        # Vixie cron: a '*' day field defers to the other; two restricted ones are OR-ed.
        day_ok = (dom and dow) if cron._dom_any or cron._dow_any else (dom or dow)
        if w.minute in cron.minutes and w.hour in cron.hours and w.month in cron.months and day_ok:
            instant = w.replace(tzinfo=cron.zone, fold=0).astimezone(UTC)
            if instant > when and (best is None or instant < best):
                best = instant
    return best


@settings(max_examples=60, deadline=None)
@given(
    minute=_field(0, 59),
    hour=_field(0, 23),
    zone=st.sampled_from(ZONES),
    start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
    near_change=st.booleans(),
)
def test_matches_a_minute_by_minute_scan(minute, hour, zone, start, near_change):
    if near_change:  # land right before a DST change in most zones
        start = datetime(2026, 3, 28 + (start.day % 3), start.hour, start.minute)
    cron = Cron(f"{minute} {hour} * * *", zone)
    when = start.replace(tzinfo=UTC)
    assert cron.next_after(when) == brute_next(cron, when, days=2)


@settings(max_examples=40, deadline=None)
@given(
    dom=_field(1, 31),
    month=_field(1, 12),
    dow=st.one_of(st.just("*"), _field(0, 7)),
    start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
)
def test_day_fields_match_a_scan(dom, month, dow, start):
    try:
        cron = Cron(f"0 12 {dom} {month} {dow}", PARIS)
    except ScheduleError:
        return  # never fires: refused up front
    when = start.replace(tzinfo=UTC)
    got = cron.next_after(when)
    expected = brute_next(cron, when, days=40, step=timedelta(days=1))  # "0 12 ...": noon only
    if expected is None:
        assert got > when + timedelta(days=37)  # past what the scan covered
    else:
        assert got == expected

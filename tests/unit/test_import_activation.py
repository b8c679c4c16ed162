"""`pidone import` of systemd .timer and .socket units: OnCalendar= as cron,
the other timer and socket directives, and the CLI merging each into the
service it starts."""

from __future__ import annotations

import tomllib

import pytest

from importhelp import FIXTURES, run
from pidone.cli.unitfiles import check_main
from pidone.cron import Cron
from pidone.importers import import_text
from pidone.importers.systemd_activation import _NoCron, calendar_to_cron


@pytest.mark.parametrize("calendar, cron, zone", [
    ("daily", "0 0 * * *", ""),
    ("hourly", "0 * * * *", ""),
    ("weekly", "0 0 * * 1", ""),  # systemd's weeks start on Monday
    ("monthly", "0 0 1 * *", ""),
    ("quarterly", "0 0 1 1,4,7,10 *", ""),
    ("yearly", "0 0 1 1 *", ""),
    ("*-*-* 03:00:00", "0 3 * * *", ""),
    ("*-*-* 03:00", "0 3 * * *", ""),
    ("03:15", "15 3 * * *", ""),
    ("Mon..Fri 08:00", "0 8 * * 1,2,3,4,5", ""),
    ("Sat,Sun *-*-* 10:00", "0 10 * * 6,0", ""),
    ("*-*-01 00:00:00", "0 0 1 * *", ""),
    ("*-01,07-01 00:00", "0 0 1 1,7 *", ""),
    ("*:0/15", "0-59/15 * * * *", ""),
    ("*-*-* 08..18:00", "0 8-18 * * *", ""),
    ("*-*-* 02:30:00 Europe/Paris", "30 2 * * *", "Europe/Paris"),
    ("daily UTC", "0 0 * * *", "UTC"),
])
def test_calendars_that_cron_can_say(calendar, cron, zone):
    assert calendar_to_cron(calendar) == (cron, zone)
    Cron(cron)  # and pidone's own parser takes it


@pytest.mark.parametrize("calendar, why", [
    ("*-*-* 00:00:30", "cron has no seconds"),
    ("2027-01-01 00:00", "a fixed year"),
    ("*-02~01 00:00", "end of the month"),
    ("Fri..Mon 00:00", "wraps around the week"),
    ("Someday 00:00", "not a weekday"),
    ("*-*-* 25:00", "not a whole number from 0 to 23"),
])
def test_calendars_that_cron_cannot_say_are_refused_with_the_reason(calendar, why):
    with pytest.raises(_NoCron, match=why):
        calendar_to_cron(calendar)


def one(path, text=None):
    (result,) = import_text(str(path), text if text is not None else path.read_text())
    return result


def test_a_timer_becomes_a_timer_table_of_its_service():
    result = one(FIXTURES / "backup.timer")
    assert result.fragment and result.name == "backup"
    assert result.unit == {"timer": {"schedule": "30 2 * * 1,2,3,4,5", "timezone": "Europe/Paris", "jitter": "600s"}}
    assert any(note.startswith("Persistent=true: not carried over: ") for note in result.notes)


def test_interval_and_boot_timers(tmp_path):
    path = tmp_path / "sync.timer"
    result = one(path, "[Timer]\nOnBootSec=5min\nOnUnitActiveSec=1h\nUnit=mirror.service\n")
    assert result.name == "mirror"
    assert result.unit == {"timer": {"schedule": "every 3600s", "on_boot": True}}
    assert any("OnUnitActiveSec=1h: approximated" in note for note in result.notes)
    assert any("OnBootSec=5min: approximated" in note for note in result.notes)


def test_a_timer_with_nothing_to_schedule_or_no_cron_form_is_refused(tmp_path):
    assert "nothing to schedule" in one(tmp_path / "a.timer", "[Timer]\nOnBootSec=0\n").error
    assert "has no cron form: cron has no seconds" in one(tmp_path / "b.timer", "[Timer]\nOnCalendar=*:*:30\n").error


def test_a_socket_becomes_a_socket_table_of_its_service():
    result = one(FIXTURES / "api.socket")
    assert result.fragment and result.name == "api"
    assert result.unit == {"socket": {"listen": ["tcp:0.0.0.0:8080", "tcp:[::]:8080", "unix:/run/api.sock"],
                                      "on_demand": True, "backlog": 128, "mode": "0660"}}
    assert any(note.startswith("SocketUser=www-data: approximated") for note in result.notes)


@pytest.mark.parametrize("directive, error_or_note", [
    ("Accept=yes\nListenStream=80", "inetd style"),
    ("ListenStream=@abstract", "no ListenStream= or ListenDatagram= pidone can bind"),
    ("ListenDatagram=/run/log.sock", "no ListenStream= or ListenDatagram= pidone can bind"),
])
def test_sockets_pidone_cannot_hold_are_refused(tmp_path, directive, error_or_note):
    assert error_or_note in one(tmp_path / "x.socket", f"[Socket]\n{directive}\n").error


def test_addresses_and_the_service_name(tmp_path):
    result = one(tmp_path / "dns.socket",
                 "[Socket]\nListenDatagram=127.0.0.1:53\nListenStream=[::1]:53\nService=resolver.service\n")
    assert result.name == "resolver"
    assert result.unit["socket"]["listen"] == ["tcp:[::1]:53", "udp:127.0.0.1:53"]


def test_the_cli_merges_timer_and_socket_into_their_services(tmp_path):
    inputs = [str(FIXTURES / name) for name in ("backup.service", "backup.timer", "api.socket", "api.service")]
    status, out, err = run("-o", str(tmp_path), *inputs)
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.toml", "backup.toml"]
    backup = tomllib.loads((tmp_path / "backup.toml").read_text())
    assert backup["timer"]["schedule"] == "30 2 * * 1,2,3,4,5"
    assert "#   backup.timer: Persistent=true: not carried over" in (tmp_path / "backup.toml").read_text()
    api = tomllib.loads((tmp_path / "api.toml").read_text())
    assert api["socket"]["on_demand"] is True and "dependencies" not in api  # Requires=api.socket is the table
    assert f"{FIXTURES / 'api.socket'} -> [socket] of api.toml" in err
    assert check_main([str(tmp_path)]) == 0


def test_the_cli_refuses_a_timer_without_its_service():
    status, out, err = run(str(FIXTURES / "backup.timer"))
    assert status == 1 and out == ""
    assert "a .timer becomes the [timer] table of the service it starts: import backup.service in the same run" in err

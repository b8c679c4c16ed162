"""[socket]: the listen syntax, the loader's checks, and the machine's cells
for on_demand units (not started at boot, started by a first client, their
sockets watched exactly while they are idle)."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

from pidone import events as ev
from pidone.errors import ConfigError
from pidone.listen import parse_listen
from pidone.loader import parse_unit, unit_from_dict, unit_to_dict
from pidone.machine import Machine, State
from pidone.units import SocketSection, UnitType, make_unit


@pytest.mark.parametrize("text, kind, family, host, port, path", [
    ("tcp:0.0.0.0:8080", "tcp", socket.AF_INET, "0.0.0.0", 8080, ""),
    ("tcp:[::]:8080", "tcp", socket.AF_INET6, "::", 8080, ""),
    ("tcp:[::1]:1", "tcp", socket.AF_INET6, "::1", 1, ""),
    ("udp:127.0.0.1:9000", "udp", socket.AF_INET, "127.0.0.1", 9000, ""),
    ("unix:/run/app.sock", "unix", socket.AF_UNIX, "", 0, "/run/app.sock"),
])
def test_listen_addresses(text, kind, family, host, port, path):
    spec = parse_listen(text)
    assert (spec.kind, spec.family, spec.host, spec.port, spec.path) == (kind, family, host, port, path)


@pytest.mark.parametrize("text, message", [
    ("http:1.2.3.4:80", "expected tcp:HOST:PORT"),
    ("tcp:localhost:80", "'localhost' is not an IPv4 address"),
    ("tcp:::1:80", "is not an IPv4 address"),
    ("tcp:[::1]80", r"an IPv6 address is written \[ADDRESS\]:PORT"),
    ("tcp:1.2.3.4:0", "the port must be a number from 1 to 65535"),
    ("tcp:1.2.3.4:65536", "the port must be"),
    ("tcp:1.2.3.4", "expected tcp:HOST:PORT|is not an IPv4"),
    ("unix:run/app.sock", "must be absolute"),
    ("unix:/" + "x" * 200, "at most 107 bytes"),
])
def test_bad_listen_addresses_say_why(text, message):
    with pytest.raises(ValueError, match=message):
        parse_listen(text)


def load(socket_table: str):
    return parse_unit("web", f'[service]\ncommand = ["app"]\n[socket]\n{socket_table}'.encode(), "u/web.toml")


def test_the_loader_reads_a_socket_table_and_round_trips_it():
    unit = load('listen = ["tcp:127.0.0.1:8080", "unix:/run/web.sock"]\nbacklog = 16\nmode = "0600"\non_demand = true')
    assert unit.socket == SocketSection(("tcp:127.0.0.1:8080", "unix:/run/web.sock"), 16, 0o600, True)
    assert unit_to_dict(unit)["socket"]["mode"] == "0600"
    assert unit_from_dict("web", unit_to_dict(unit), "x") == unit


@pytest.mark.parametrize("table, message", [
    ("backlog = 5", "[socket] listen: missing"),
    ("listen = []", "[socket] listen: expected at least one address"),
    ('listen = ["tcp:1.2.3.4:80", "tcp:1.2.3.4:80"]', "is listed twice"),
    ('listen = ["tcp:nowhere:80"]', "[socket] listen: 'tcp:nowhere:80'"),
    ('listen = ["tcp:1.2.3.4:80"]\nmode = "999"', "[socket] mode: expected an octal string"),
    ('listen = ["tcp:1.2.3.4:80"]\nbacklog = 0', "[socket] backlog"),
])
def test_the_loader_refuses_bad_socket_tables_naming_the_key(table, message):
    with pytest.raises(ConfigError) as info:
        load(table)
    assert message in str(info.value)


def socket_unit(name, on_demand=True):
    unit = make_unit(name, ["/bin/sleep", "9"])
    return replace(unit, socket=SocketSection(("tcp:127.0.0.1:1",), on_demand=on_demand))


def watches(actions):
    return [(a.name, a.on) for a in actions if isinstance(a, ev.WatchSockets)]


def spawned(actions):
    return [a.name for a in actions if isinstance(a, ev.Spawn)]


def test_an_on_demand_unit_waits_for_a_client_with_its_sockets_watched():
    m = Machine({"web": socket_unit("web"), "db": make_unit("db", ["/bin/sleep", "9"])})
    actions = m.handle(ev.StartAll(), 0.0)
    assert spawned(actions) == ["db"] and watches(actions) == [("web", True)]
    actions = m.handle(ev.SocketActivity("web"), 1.0)  # INACTIVE -> WAITING -> STARTING
    assert spawned(actions) == ["web"] and watches(actions) == [("web", False)]
    m.handle(ev.Spawned("web", 7), 1.0)
    assert m.records["web"].state == State.RUNNING
    assert spawned(m.handle(ev.SocketActivity("web"), 2.0)) == []  # running: the activity is its own


def test_an_on_demand_unit_is_watched_again_once_it_exited():
    unit = replace(socket_unit("web"), service=replace(socket_unit("web").service, type=UnitType.ONESHOT))
    m = Machine({"web": unit})
    m.handle(ev.StartAll(), 0.0)
    m.handle(ev.SocketActivity("web"), 1.0)
    m.handle(ev.Spawned("web", 7), 1.0)
    actions = m.handle(ev.MainExited("web", 7, 0), 2.0)  # STARTING -> EXITED: idle again
    assert m.records["web"].state == State.EXITED and watches(actions) == [("web", True)]
    assert spawned(m.handle(ev.SocketActivity("web"), 3.0)) == ["web"]


def test_a_plain_socket_unit_starts_at_boot_and_is_never_watched():
    m = Machine({"web": socket_unit("web", on_demand=False)})
    actions = m.handle(ev.StartAll(), 0.0)
    assert spawned(actions) == ["web"] and watches(actions) == []
    m.handle(ev.Spawned("web", 7), 0.0)
    assert watches(m.handle(ev.MainExited("web", 7, 1 << 8), 1.0)) == []


def test_activity_during_shutdown_or_for_a_blocked_unit_starts_nothing():
    m = Machine({"web": socket_unit("web")}, blocked={"web": "in a dependency cycle"})
    m.handle(ev.StartAll(), 0.0)
    assert spawned(m.handle(ev.SocketActivity("web"), 1.0)) == []
    m2 = Machine({"web": socket_unit("web")})
    m2.handle(ev.StartAll(), 0.0)
    m2.handle(ev.Shutdown(), 1.0)
    assert spawned(m2.handle(ev.SocketActivity("web"), 2.0)) == []

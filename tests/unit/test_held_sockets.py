"""Held sockets: bound once, the same fd kept across updates that do not
change them, only what changed rebound, unix socket files made safely.
Real sockets on loopback and in a temporary directory."""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import replace

import pytest

from pidone.errors import SpawnError
from pidone.sockets import Sockets
from pidone.units import SocketSection, make_unit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unit(name, *listen, **keys):
    return replace(make_unit(name, ["/bin/true"]), socket=SocketSection(tuple(listen), **keys))


@pytest.fixture
def held():
    said = []
    sockets = Sockets(lambda fd: fd, said.append)
    sockets.said = said
    yield sockets
    sockets.close()


def test_bound_sockets_accept_connections_before_any_service_runs(held):
    port = free_port()
    held.update({"web": unit("web", f"tcp:127.0.0.1:{port}")})
    (fd,) = held.fds_of("web")
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # queued by the kernel: nobody has accepted yet
    assert os.get_inheritable(fd) is False  # only the spawn hands it on


def test_an_unchanged_plan_keeps_the_same_fds_and_a_changed_address_only_is_rebound(held):
    a, b, c = free_port(), free_port(), free_port()
    held.update({"web": unit("web", f"tcp:127.0.0.1:{a}", f"tcp:127.0.0.1:{b}")})
    first = held.fds_of("web")
    held.update({"web": unit("web", f"tcp:127.0.0.1:{a}", f"tcp:127.0.0.1:{b}")})
    assert held.fds_of("web") == first
    held.update({"web": unit("web", f"tcp:127.0.0.1:{a}", f"tcp:127.0.0.1:{c}")})
    now = held.fds_of("web")
    assert now[0] == first[0]  # the unchanged address keeps its socket
    assert socket.socket(fileno=os.dup(now[1])).getsockname()[1] == c
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", b), timeout=5)


def test_a_removed_unit_s_sockets_are_closed(held):
    port = free_port()
    held.update({"web": unit("web", f"tcp:127.0.0.1:{port}")})
    (fd,) = held.fds_of("web")
    held.update({})
    with pytest.raises(OSError):
        os.fstat(fd)


def test_an_address_in_use_is_a_start_failure_naming_it(held):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ok = free_port()
        spec = unit("web", f"tcp:127.0.0.1:{ok}", f"tcp:127.0.0.1:{port}")
        held.update({"web": spec})
        assert f"unable to bind socket tcp:127.0.0.1:{port}: Address already in use" in held.said[0]
        with pytest.raises(SpawnError, match="Address already in use"):
            held.ensure(spec)
    fds, names = held.ensure(spec)  # freed: the next start binds it
    assert len(fds) == 2 and names == ["web", "web"]


def test_tcp_v4_and_v6_on_one_port_coexist(held):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    port = free_port()
    try:
        held.update({"web": unit("web", f"tcp:127.0.0.1:{port}", f"tcp:[::1]:{port}")})
    except OSError as exc:  # pragma: no cover - a kernel without IPv6 loopback
        pytest.skip(str(exc))
    if held.said:
        pytest.skip(held.said[0])
    assert len(held.fds_of("web")) == 2


def test_udp(held):
    port = free_port()
    held.update({"dns": unit("dns", f"udp:127.0.0.1:{port}")})
    (fd,) = held.fds_of("dns")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.sendto(b"ping", ("127.0.0.1", port))
    server = socket.socket(fileno=os.dup(fd))
    server.settimeout(5)
    assert server.recv(10) == b"ping"
    server.close()


def test_a_unix_socket_gets_its_mode_and_replaces_a_stale_one(held, tmp_path):
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a socket file nobody listens on
    held.update({"app": unit("app", f"unix:{path}", mode=0o640)})
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o640 and stat.S_ISSOCK(os.lstat(path).st_mode)
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(str(path))


@pytest.mark.parametrize("make", ["symlink", "file"])
def test_a_unix_socket_path_that_is_not_a_socket_is_refused(held, tmp_path, make):
    path, target = tmp_path / "app.sock", tmp_path / "target"
    target.write_text("keep me")
    if make == "symlink":
        path.symlink_to(target)
    else:
        path.write_text("data")
    with pytest.raises(SpawnError, match="exists and is (a symlink|not a socket)"):
        held.ensure(unit("app", f"unix:{path}"))
    assert target.read_text() == "keep me" and (path.is_symlink() or path.read_text() == "data")


def test_a_snapshot_restores_the_same_fds_and_drops_what_the_plan_no_longer_has(held, tmp_path):
    port = free_port()
    units = {"web": unit("web", f"tcp:127.0.0.1:{port}"), "old": unit("old", f"tcp:127.0.0.1:{free_port()}")}
    held.update(units)
    data = held.snapshot()
    kept = {name: list(fds) for name, fds in ((n, held.fds_of(n)) for n in units)}
    again = Sockets(lambda fd: fd, [].append)
    held.held.clear()  # the fds now belong to `again`, as after an exec
    again.restore(data, {"web": units["web"]})
    assert again.fds_of("web") == kept["web"]
    with pytest.raises(OSError):
        os.fstat(kept["old"][0])
    again.update({"web": units["web"]})
    assert again.fds_of("web") == kept["web"]  # not rebound
    again.close()

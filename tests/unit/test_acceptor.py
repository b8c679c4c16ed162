"""The control socket out of descriptors: accept() failing with EMFILE
takes the listening fd off the loop (no spin: one try, one log line) until
a connection closes or the retry timer fires; clients never take the
descriptors kept in reserve for supervision."""

from __future__ import annotations

import errno
import os
import socket
import time

import pytest

from pidone import acceptor
from pidone.control.server import ControlServer
from pidone.loop import Loop


@pytest.fixture
def loop():
    loop = Loop()
    yield loop
    loop.close()


class Descriptors:
    """socket.accept(), with the process out of descriptors while `out`."""

    def __init__(self, monkeypatch):
        self.out = False
        self.calls = 0
        real = socket.socket.accept

        def accept(sock):
            self.calls += 1
            if self.out:
                raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
            return real(sock)

        monkeypatch.setattr(socket.socket, "accept", accept)


def turn(loop: Loop, seconds: float) -> None:
    loop.call_later(seconds, loop.stop)
    loop.run()


def connect(server: ControlServer) -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(server.path)
    return client


def server_with_log(loop, tmp_path, **kwargs) -> tuple[ControlServer, list[str]]:
    said: list[str] = []
    server = ControlServer(loop, str(tmp_path), lambda conn, request: None, said.append, **kwargs)
    return server, said


def test_emfile_pauses_accepting_says_so_once_and_retries_on_a_timer(loop, tmp_path, monkeypatch):
    fds = Descriptors(monkeypatch)
    server, said = server_with_log(loop, tmp_path)
    fds.out = True
    client = connect(server)  # waits in the backlog, so the listening fd stays readable
    turn(loop, acceptor.RETRY * 0.6)
    assert fds.calls == 1  # not a spin: the listening fd left the loop
    assert len(said) == 1 and "cannot accept connections (Too many open files)" in said[0]
    turn(loop, acceptor.RETRY)  # the retry timer tries once more, silently
    assert fds.calls == 2 and len(said) == 1
    fds.out = False
    turn(loop, acceptor.RETRY * 1.5)
    assert len(server._connections) == 1  # the waiting client is served
    assert said[1:] == ["control: accepting connections again"]
    client.close()
    server.close()


def test_a_closing_connection_resumes_accepting_at_once(loop, tmp_path, monkeypatch):
    fds = Descriptors(monkeypatch)
    server, said = server_with_log(loop, tmp_path)
    first = connect(server)
    turn(loop, 0.05)
    assert len(server._connections) == 1
    fds.out = True
    calls = fds.calls
    second = connect(server)
    turn(loop, 0.05)
    assert fds.calls == calls + 1 and len(server._connections) == 1  # paused
    fds.out = False
    started = time.monotonic()
    first.close()  # its connection closes: a descriptor is free
    loop.call_later(acceptor.RETRY * 3, loop.stop)
    while len(server._connections) != 1 or fds.calls < calls + 2:
        loop.run_once()
    assert time.monotonic() - started < acceptor.RETRY  # not the timer
    second.close()
    server.close()


def test_clients_never_take_the_reserve_but_a_lone_one_is_served(loop, tmp_path):
    limit = [0]
    server, said = server_with_log(loop, tmp_path, ceiling=lambda: limit[0])
    lone = connect(server)
    turn(loop, 0.05)
    assert len(server._connections) == 1 and said == []  # pidone stays manageable
    client = connect(server)
    client.settimeout(5)
    turn(loop, 0.05)
    reply = b""
    while chunk := client.recv(4096):
        reply += chunk
    assert b'"busy"' in reply and b"short of file descriptors" in reply
    assert len(server._connections) == 1
    assert len(said) == 1 and f"fewer than {acceptor.RESERVE_FDS} file descriptors" in said[0]
    limit[0] = 1 << 20
    other = connect(server)
    turn(loop, 0.05)
    assert len(server._connections) == 2
    for sock in (lone, client, other):
        sock.close()
    server.close()

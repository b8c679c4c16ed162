"""sockfile.bind_with_mode: a socket file born with its mode, the umask restored."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from pidone.sockfile import bind_with_mode


@pytest.mark.parametrize(("kind", "mode"), [(socket.SOCK_STREAM, 0o600), (socket.SOCK_DGRAM, 0o666)])
def test_the_socket_file_has_its_mode_and_the_umask_is_restored(tmp_path, kind, mode):
    old = os.umask(0o022)
    try:
        with socket.socket(socket.AF_UNIX, kind) as sock:
            bind_with_mode(sock, str(tmp_path / "s"), mode)
            assert stat.S_IMODE(os.lstat(tmp_path / "s").st_mode) == mode
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)


def test_a_failed_bind_raises_and_still_restores_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, pytest.raises(FileNotFoundError):
            bind_with_mode(sock, str(tmp_path / "missing" / "s"), 0o600)
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(old)

"""The control socket's server, on the init's loop: never blocks, never
lets a client grow pidone's memory without bound.

Each connection carries one request. The request must arrive whole, under
MAX_REQUEST bytes, within DEADLINE seconds; the reply must drain within
DEADLINE too. A stream (`logs -f`, `events -f`) lives until the client
closes or falls more than MAX_STREAM_BACKLOG behind. Past MAX_CONNECTIONS,
or when it would take a descriptor kept for supervision, a new client gets
an immediate `busy` and is closed; out of descriptors, no client is
accepted until one is free (acceptor.py).
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from typing import TYPE_CHECKING, Callable

from pidone.acceptor import Acceptor, soft_fd_limit
from pidone.control import protocol
from pidone.errors import ControlError, StartupError
from pidone.sockfile import bind_with_mode

if TYPE_CHECKING:
    from pidone.loop import Loop, Timer

MAX_CONNECTIONS = 64
DEADLINE = 10.0  # seconds for a request to arrive, and for a reply to drain
MAX_REPLY_BACKLOG = 16 << 20  # a status of 10,000 units fits with room
MAX_STREAM_BACKLOG = 1 << 20  # a follower this far behind is dropped
PEERCRED = struct.Struct("3i")  # pid, uid, gid

Handler = Callable[["Connection", protocol.Request], None]


class Connection:
    """One client: reads one request, writes its reply (or a stream)."""

    def __init__(self, server: "ControlServer", sock: socket.socket, peer: tuple[int, int, int]):
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.pid, self.uid, self.gid = peer
        self.closed = False
        self.streaming = False
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._close_when_flushed = False
        self._got_request = False
        self._writing = False
        self._deadline: Timer | None = None
        self.on_close: list[Callable[[], None]] = []
        self._arm_deadline()
        server.loop.add_reader(self.fd, self._on_readable)

    # -- replies ------------------------------------------------------------

    def reply(self, data: bytes) -> None:
        """Send a final reply and close once it has drained."""
        try:
            self.server.before_reply()  # what the answer says is in the state first
        except Exception as exc:  # noqa: BLE001 - the answer must go out all the same
            self.server._log(f"cannot update the state before answering: {exc!r}")
        self._close_when_flushed = True
        self._arm_deadline()
        self._send(data, MAX_REPLY_BACKLOG)

    def send_stream(self, data: bytes) -> None:
        """Send one item of a stream; a follower too far behind is dropped."""
        self.streaming = True
        self._send(data, MAX_STREAM_BACKLOG)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._deadline is not None:
            self._deadline.cancel()
        self.server.loop.remove_reader(self.fd)
        self.server.loop.remove_writer(self.fd)
        self.server.forget(self)
        self.sock.close()
        for callback in self.on_close:
            callback()

    # -- plumbing -----------------------------------------------------------

    def _send(self, data: bytes, limit: int) -> None:
        if self.closed:
            return
        if not self._outbuf:
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return
            data = data[sent:]
        if data:
            if len(self._outbuf) + len(data) > limit:
                self.close()  # it does not read: we will not hold its backlog
                return
            self._outbuf += data
            if not self._writing:
                self._writing = True
                self.server.loop.add_writer(self.fd, self._on_writable)
        elif self._close_when_flushed:
            self.close()

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self._outbuf)
        except BlockingIOError:
            return
        except OSError:
            self.close()
            return
        del self._outbuf[:sent]
        if not self._outbuf:
            self._writing = False
            self.server.loop.remove_writer(self.fd)
            if self._close_when_flushed:
                self.close()

    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()  # the client hung up (for a stream: it stopped following)
            return
        if self._got_request:
            return  # one request per connection: the rest is ignored
        self._inbuf += data
        newline = self._inbuf.find(b"\n")
        if newline < 0:
            if len(self._inbuf) > protocol.MAX_REQUEST:
                self._inbuf.clear()
                self._got_request = True
                self.reply(protocol.error("too-large", f"a request is at most {protocol.MAX_REQUEST} bytes"))
            return
        line = bytes(self._inbuf[:newline])
        self._inbuf.clear()
        self._got_request = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.server.dispatch(self, line)

    def _arm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.server.loop.call_later(DEADLINE, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if not self.streaming:
            self.close()


class ControlServer:
    """Listens on the control socket and hands each request to `handler`."""

    def __init__(self, loop: "Loop", directory: str, handler: Handler, log: Callable[[str], None],
                 *, fd: int | None = None, ceiling: Callable[[], int] = soft_fd_limit):
        """Listen on a new socket in `directory`, or adopt `fd`: the same
        listening socket inherited across a re-exec, whose backlog holds
        the clients that connected during the exec. Clients never take the
        last descriptors below `ceiling()` (see acceptor.py)."""
        self.loop = loop
        self.path = os.path.join(directory, "control.sock")
        self._handler = handler
        self._log = log
        self._connections: set[Connection] = set()
        # Called before every final reply: the daemon puts pending changes
        # in the state, so `stop X` then `status --offline` shows X stopped.
        self.before_reply: Callable[[], None] = lambda: None
        if fd is not None:
            self._sock = socket.socket(fileno=fd)
            os.set_inheritable(fd, False)
            self._sock.setblocking(False)
        else:
            self._sock = _listen(self.path)
        self._acceptor = Acceptor(loop, self._sock, what="control", accept=self._on_connection, refuse=self._refuse,
                                  log=log, ceiling=ceiling, serving=lambda: len(self._connections),
                                  batch=MAX_CONNECTIONS)

    def close(self, *, unlink: bool = True) -> None:
        """Stop serving; on a final exit also remove the socket file."""
        self._acceptor.close()
        for conn in list(self._connections):
            conn.close()
        self._sock.close()
        if unlink:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def answer_before_exec(self, keep: Connection) -> None:
        """A re-exec closes every connection but `keep`: tell each client
        to ask again (the new process will answer) rather than reset it."""
        for conn in list(self._connections):
            if conn is not keep and not conn.closed:
                conn.reply(protocol.error("reexecuting", "pidone is re-executing; ask again in a moment"))

    def forget(self, conn: Connection) -> None:
        self._connections.discard(conn)
        self._acceptor.resume()  # a descriptor is free again

    def adopt(self, fd: int, peer: tuple[int, int, int] = (0, 0, 0)) -> Connection:
        """Take over a client connection inherited across a re-exec (the
        one that asked for it), to send it its answer."""
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        conn = Connection(self, sock, peer)
        conn._got_request = True
        self._connections.add(conn)
        return conn

    @property
    def listening_fd(self) -> int:
        return self._sock.fileno()

    def _on_connection(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        if len(self._connections) >= MAX_CONNECTIONS:
            _busy(sock, f"too many clients (at most {MAX_CONNECTIONS}); try again")
            return
        try:
            peer = PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size))
        except OSError:
            sock.close()
            return
        self._connections.add(Connection(self, sock, peer))

    def _refuse(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        _busy(sock, "pidone is short of file descriptors; try again")

    def dispatch(self, conn: Connection, line: bytes) -> None:
        try:
            request = protocol.parse_request(line)
        except ControlError as exc:
            conn.reply(protocol.error(exc.code, exc.message))
            return
        if request.changes_state and conn.uid not in (0, os.geteuid()):
            self._log(f"control: refused {request.cmd} from uid {conn.uid} (pid {conn.pid}): "
                      "only root or pidone's own user may change anything")
            conn.reply(protocol.error("permission-denied",
                                      f"{request.cmd} needs root or uid {os.geteuid()}; you are uid {conn.uid}"))
            return
        try:
            self._handler(conn, request)
        except ControlError as exc:
            conn.reply(protocol.error(exc.code, exc.message))


def _busy(sock: socket.socket, message: str) -> None:
    try:
        sock.send(protocol.error("busy", message))
    except OSError:
        pass
    sock.close()


def _listen(path: str) -> socket.socket:
    """Bind the socket 0600 (born so: umask) and listen; a stale socket
    nobody listens on is replaced, a live one means another pidone."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None:
        if not stat.S_ISSOCK(info.st_mode):
            raise StartupError(f"{path} exists and is not a socket; remove it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: left by an earlier run
        else:
            raise StartupError(f"another pidone is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    try:
        bind_with_mode(sock, path, 0o600)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot bind the control socket {path}: {exc.strerror}") from None
    # A deep backlog: under a flood of clients, a legitimate one waits its
    # turn in the queue (the cap answers the excess with a prompt `busy`)
    # instead of getting EAGAIN from connect().
    sock.listen(socket.SOMAXCONN)
    return sock


def private_directory(runtime: str) -> str:
    """Return `runtime`/private: 0700 and ours from the moment it exists.
    Anything else at that path (a symlink, a file, a directory someone else
    made or opened up) is removed first, never followed or chmodded."""
    path = os.path.join(runtime, "private")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    if info is not None and not (
        stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o700
    ):
        _remove(path, info)
        info = None
    if info is None:
        old_umask = os.umask(0o077)
        try:
            os.mkdir(path, 0o700)
        except OSError as exc:
            raise StartupError(f"cannot create {path}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
    return path


def _remove(path: str, info: os.stat_result) -> None:
    import shutil

    try:
        if stat.S_ISDIR(info.st_mode):
            shutil.rmtree(path)  # rmtree never follows symlinks inside
        else:
            os.unlink(path)
    except OSError as exc:
        raise StartupError(f"cannot replace untrusted {path}: {exc.strerror}") from None

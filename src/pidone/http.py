"""The HTTP endpoint (`--http HOST:PORT`) on the init's loop: /healthz,
/readyz, /metrics (Prometheus text) and /status, for Kubernetes probes and
scraping. One request per connection, headers capped, a deadline on each
client, a cap on clients: a silent or hostile client costs a socket and a
timer, never the loop."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Callable

from pidone.acceptor import Acceptor, soft_fd_limit
from pidone.errors import StartupError

if TYPE_CHECKING:
    from pidone.loop import Loop, Timer

MAX_HEADER = 8192
DEADLINE = 5.0
MAX_CLIENTS = 64

Route = Callable[[], tuple[int, str, bytes]]  # -> (status, content type, body)
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           431: "Request Header Fields Too Large", 503: "Service Unavailable"}


def parse_address(text: str) -> tuple[str, int]:
    """'127.0.0.1:8080', '[::1]:8080' or ':8080' (all addresses); raise ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--http wants HOST:PORT, not {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class HttpServer:
    def __init__(self, loop: "Loop", address: str, routes: dict[str, Route], log: Callable[[str], None],
                 ceiling: Callable[[], int] = soft_fd_limit):
        self._loop = loop
        self._routes = routes
        self._log = log
        self._clients: dict[int, tuple[socket.socket, bytearray, "Timer"]] = {}
        host, port = parse_address(address)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise StartupError(f"--http {address}: cannot listen: {exc.strerror}") from None
        sock.listen(64)
        self._sock = sock
        self._acceptor = Acceptor(loop, sock, what="http", accept=self._on_connection, refuse=_close,
                                  log=log, ceiling=ceiling, serving=lambda: len(self._clients), batch=MAX_CLIENTS)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def close(self) -> None:
        self._acceptor.close()
        for fd in list(self._clients):
            self._drop(fd)
        self._sock.close()

    def _on_connection(self, client: socket.socket) -> None:
        if len(self._clients) >= MAX_CLIENTS:
            client.close()
            return
        client.setblocking(False)
        fd = client.fileno()
        timer = self._loop.call_later(DEADLINE, lambda fd=fd: self._drop(fd))
        self._clients[fd] = (client, bytearray(), timer)
        self._loop.add_reader(fd, lambda fd=fd: self._on_readable(fd))

    def _on_readable(self, fd: int) -> None:
        client, buffer, _ = self._clients[fd]
        try:
            data = client.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd)
            return
        buffer += data
        if b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
            if len(buffer) > MAX_HEADER:
                self._respond(fd, 431, "text/plain", b"request header too large\n")
            return
        request_line = bytes(buffer).split(b"\n", 1)[0].strip().split()
        if len(request_line) != 3 or not request_line[2].startswith(b"HTTP/"):
            self._respond(fd, 400, "text/plain", b"bad request\n")
            return
        method, target = request_line[0], request_line[1].split(b"?", 1)[0].decode("ascii", "replace")
        if method not in (b"GET", b"HEAD"):
            self._respond(fd, 405, "text/plain", b"only GET\n")
            return
        route = self._routes.get(target)
        if route is None:
            self._respond(fd, 404, "text/plain", b"not found: try /healthz /readyz /metrics /status\n")
            return
        status, content_type, body = route()
        self._respond(fd, status, content_type, b"" if method == b"HEAD" else body, len(body))

    def _respond(self, fd: int, status: int, content_type: str, body: bytes, length: int | None = None) -> None:
        client, _, _ = self._clients[fd]
        head = (f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n").encode()
        data = head + body
        self._loop.remove_reader(fd)
        self._send(fd, data)

    def _send(self, fd: int, data: bytes) -> None:
        entry = self._clients.get(fd)
        if entry is None:
            return
        client = entry[0]
        try:
            sent = client.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(fd)
            return
        rest = data[sent:]
        if not rest:
            self._drop(fd)
            return

        def more() -> None:
            self._loop.remove_writer(fd)
            self._send(fd, rest)

        self._loop.add_writer(fd, more)

    def _drop(self, fd: int) -> None:
        entry = self._clients.pop(fd, None)
        if entry is None:
            return
        client, _, timer = entry
        timer.cancel()
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        client.close()
        self._acceptor.resume()  # a descriptor is free again


def metrics_text(units: list[dict], reaped: int, orphans: int, dropped: int, version: str, draining: bool) -> bytes:
    """Prometheus text exposition (format 0.0.4) of the units' state."""
    states = ("inactive", "waiting", "starting", "running", "exited", "stopping", "backoff", "queued", "failed",
              "skipped", "skipped (condition)", "start-pre", "start-post", "stop-cmd", "stop-post")
    lines = [
        "# HELP pidone_info pidone's version.", "# TYPE pidone_info gauge",
        f'pidone_info{{version="{_label(version)}"}} 1',
        "# HELP pidone_draining 1 once a shutdown has begun (readiness fails).", "# TYPE pidone_draining gauge",
        f"pidone_draining {int(draining)}",
        "# HELP pidone_unit_state 1 for the state each unit is in.", "# TYPE pidone_unit_state gauge",
    ]
    for unit in units:
        for state in states:
            lines.append(f'pidone_unit_state{{unit="{_label(unit["unit"])}",state="{state}"}} {int(unit["state"] == state)}')
    lines += ["# HELP pidone_unit_step 1 for the hook command each unit is running (exec_start_pre 1/2, ...).",
              "# TYPE pidone_unit_step gauge"]
    lines += [f'pidone_unit_step{{unit="{_label(u["unit"])}",step="{_label(u["step"])}"}} 1'
              for u in units if u.get("step")]
    lines += ["# HELP pidone_unit_restarts_total Automatic restarts of each unit.", "# TYPE pidone_unit_restarts_total counter"]
    lines += [f'pidone_unit_restarts_total{{unit="{_label(u["unit"])}"}} {u["restarts"]}' for u in units]
    lines += ["# HELP pidone_unit_uptime_seconds How long each unit's process has run.",
              "# TYPE pidone_unit_uptime_seconds gauge"]
    lines += [f'pidone_unit_uptime_seconds{{unit="{_label(u["unit"])}"}} {u["uptime"] or 0:.3f}' for u in units]
    queued = [u for u in units if u.get("queued")]
    lines += ["# HELP pidone_restart_queue_length Units whose restart waits for a slot (--max-restarting).",
              "# TYPE pidone_restart_queue_length gauge", f"pidone_restart_queue_length {len(queued)}",
              "# HELP pidone_unit_queued_seconds How long each queued unit has waited for its restart.",
              "# TYPE pidone_unit_queued_seconds gauge"]
    lines += [f'pidone_unit_queued_seconds{{unit="{_label(u["unit"])}"}} {u["queued"]["for"]:.3f}' for u in queued]
    timers = [u for u in units if u.get("timer")]
    if timers:
        lines += ["# HELP pidone_timer_firings_total Firings of each timer unit that started it.",
                  "# TYPE pidone_timer_firings_total counter"]
        lines += [f'pidone_timer_firings_total{{unit="{_label(u["unit"])}"}} {u["timer"]["firings"]}' for u in timers]
        lines += ["# HELP pidone_timer_skipped_total Firings skipped because the unit still ran.",
                  "# TYPE pidone_timer_skipped_total counter"]
        lines += [f'pidone_timer_skipped_total{{unit="{_label(u["unit"])}"}} {u["timer"]["skipped"]}' for u in timers]
        lines += ["# HELP pidone_timer_next_firing_seconds When each timer fires next (Unix time).",
                  "# TYPE pidone_timer_next_firing_seconds gauge"]
        lines += [f'pidone_timer_next_firing_seconds{{unit="{_label(u["unit"])}"}} {u["timer"]["next"] or 0:.3f}'
                  for u in timers]
    lines += [
        "# HELP pidone_reaped_processes_total Children reaped by PID 1.", "# TYPE pidone_reaped_processes_total counter",
        f"pidone_reaped_processes_total {reaped}",
        "# HELP pidone_orphans_reaped_total Reaped processes no unit owned.", "# TYPE pidone_orphans_reaped_total counter",
        f"pidone_orphans_reaped_total {orphans}",
        "# HELP pidone_log_lines_dropped_total Log lines dropped because the reader was slow.",
        "# TYPE pidone_log_lines_dropped_total counter",
        f"pidone_log_lines_dropped_total {dropped}",
    ]
    return ("\n".join(lines) + "\n").encode()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _close(client: socket.socket) -> None:
    client.close()

"""The verbs that talk to a running init: status, start, stop, restart,
reload, logs, events, reexec. Exit statuses:

  0  done as asked
  1  the operation failed (a unit did not start or stop, a reload failed)
  2  usage error, or a request pidone rejected as malformed
  3  no pidone answers on the control socket
  4  refused: only root or pidone's own user may change anything
"""

from __future__ import annotations

import argparse
import sys
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_REFUSED = 0, 1, 2, 3, 4


def main(verb: str, argv: list[str]) -> int:
    parser = _parser(verb)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    from pidone.control import client

    args.verb = verb
    path = client.socket_path(args.runtime_dir)
    try:
        return VERBS[verb][1](args, path)
    except client.Unreachable as exc:
        _err(f"{exc}\nis pidone running? (give its --runtime-dir, or set PIDONE_RUNTIME_DIR)")
        return EXIT_UNREACHABLE
    except client.Refused as exc:
        _err(f"{exc}\ntry: run it as root (or as pidone's user)")
        return EXIT_REFUSED
    except client.TimedOut:
        _err("gave up waiting: pidone is still working on it (see `pidone status`); "
             "--timeout SECONDS waits longer")
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK  # `pidone logs -f | head`: the reader left


def _parser(verb: str) -> argparse.ArgumentParser:
    help_text, _ = VERBS[verb]
    parser = argparse.ArgumentParser(prog=f"pidone {verb}", description=help_text)
    parser.add_argument("--runtime-dir", help="pidone's runtime directory (PIDONE_RUNTIME_DIR)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    if verb == "status":
        parser.add_argument("units", nargs="*", metavar="UNIT")
        parser.add_argument("--offline", action="store_true",
                            help="read the state in PID 1's memory instead of asking pidone (works while it is busy or stopped)")
    elif verb in ("start", "stop", "restart"):
        parser.add_argument("units", nargs="+", metavar="UNIT")
        parser.add_argument("--wait", action="store_true", help="wait for the outcome; exit 1 if it failed")
        parser.add_argument("--timeout", type=float, default=300, help="seconds to wait at most (300)")
    elif verb == "reload":
        parser.add_argument("unit", nargs="?", metavar="UNIT", help="send this unit its reload_signal instead")
        parser.add_argument("--plan", action="store_true", help="print what a reload would do, and do nothing")
    elif verb == "logs":
        parser.add_argument("units", nargs="+", metavar="UNIT")
        parser.add_argument("-n", "--lines", type=int, default=100, help="how many past lines (100)")
        parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    elif verb == "events":
        parser.add_argument("-n", "--lines", type=int, default=100, help="how many past events (100)")
        parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    return parser


# -- verbs -------------------------------------------------------------------


def _status(args, path: str) -> int:
    from pidone.control import client

    if args.offline:
        reply = _offline_status(path, args.units)
    else:
        reply = client.request(path, "status", units=args.units)
    if not reply.get("ok"):
        return _failed(reply)
    units = reply["result"]["units"]
    if args.json:
        _print_json(reply["result"])
        return EXIT_OK
    rows = [("UNIT", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", "READY", "MEM", "CPU")]
    notes = []
    for unit in units:
        mem, cpu = _size(unit["memory_bytes"]), _cpu(unit["cpu_seconds"])
        rows.append((
            unit["unit"], unit["state"], str(unit["pid"] or "-"), _duration(unit["uptime"]),
            str(unit["restarts"]), unit["last_exit"] or "-", "yes" if unit["ready"] else "no", mem, cpu,
        ))
        if unit["reason"] and unit["state"] in ("failed", "skipped", "skipped (condition)", "inactive"):
            notes.append(f"  {unit['unit']}: {unit['reason']}")
        if unit["orphans"]:
            notes.append(f"  {unit['unit']}: orphans left by an earlier run: {' '.join(map(str, unit['orphans']))}")
        if unit["retry_in"] is not None:
            notes.append(f"  {unit['unit']}: restarting in {unit['retry_in']:.1f}s")
        queued = unit.get("queued")
        if queued:
            bound = f" (released within {queued['max_wait']:g}s at most)" if queued["max_wait"] is not None else ""
            notes.append(f"  {unit['unit']}: restart queued for {queued['for']:.1f}s, "
                         f"position {queued['position']} of {queued['of']}{bound}")
        if unit["status_text"]:
            notes.append(f"  {unit['unit']}: says: {unit['status_text']}")
        if unit.get("timer"):
            notes.append(f"  {unit['unit']}: {_timer_note(unit['timer'])}")
        for error in unit["errors"]:
            notes.append(f"  {unit['unit']}: its file is broken (running the last good one): {error}")
        for warning in unit.get("warnings", ()):
            notes.append(f"  {unit['unit']}: warning: {warning}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    for note in notes:
        print(note)
    return EXIT_OK


def _timer_note(timer: dict) -> str:
    """'timer */5 * * * *: next 2026-12-08 10:05:00 UTC, last ..., 3 firings, 1 skipped'."""
    import time

    def when(stamp):
        return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(stamp)) if stamp is not None else "never"

    zone = f" ({timer['timezone']})" if timer.get("timezone") else ""
    return (f"timer {timer['schedule']}{zone}: next {when(timer['next'])}, last {when(timer['last'])}, "
            f"{timer['firings']} firing{'s' if timer['firings'] != 1 else ''}, {timer['skipped']} skipped")


def _offline_status(socket_path: str, names: list[str]) -> dict:
    """Build a status reply from the state next to the socket, without
    asking pidone: PID 1 updates it before its loop next sleeps, so it is as
    fresh as the last change (`age_seconds` says how long ago that was)."""
    import time

    from pidone.errors import StoreError
    from pidone.stateview import read_offline

    try:
        state = read_offline(socket_path)
    except StoreError as exc:
        return {"ok": False, "error": {"code": "failed", "message": str(exc)}}
    records = state.get("supervisor", {}).get("machine", {}).get("records", {})
    age = time.time() - state.get("written_at", time.time())
    now = time.monotonic()
    waiting = state.get("supervisor", {}).get("machine", {}).get("restart_queue", {}).get("waiting", [])
    places = {name: {"position": place, "of": len(waiting), "for": now - since, "since": None, "max_wait": None}
              for place, (name, since) in enumerate(waiting, 1)}  # in release order
    units = []
    for name in sorted(names or records):
        rec = records.get(name)
        if rec is None:
            return {"ok": False, "error": {"code": "unknown-unit", "message": f"no unit named {name!r} in the state"}}
        running = rec.get("pid") is not None
        units.append({
            "unit": name, "state": rec["state"], "desired": rec["desired"], "pid": rec.get("pid"),
            "uptime": now - rec["started_at"] if running and rec.get("started_at") else None,
            "ready": rec["state"] in ("running", "exited"), "restarts": rec.get("restarts", 0),
            "last_exit": rec.get("last_exit") or None, "reason": rec.get("reason") or None,
            "status_text": rec.get("status_text") or None, "orphans": rec.get("leftovers", []),
            "retry_in": max(0.0, rec["retry_at"] - now) if rec.get("retry_at") is not None else None,
            "queued": places.get(name),
            "errors": [], "warnings": [], "memory_bytes": None, "cpu_seconds": None,
        })
    return {"ok": True, "result": {"offline": True, "age_seconds": age, "units": units,
                                   "pidone": {"version": state.get("version"), "started_at": state.get("started_at")}}}


def _change(args, path: str) -> int:
    from pidone.control import client

    reply = client.request(path, args.verb, timeout=args.timeout if args.wait else 30.0, units=args.units, wait=args.wait)
    if args.json:
        _print_json(reply)
        return EXIT_OK if reply.get("ok") else _code(reply)
    if not reply.get("ok"):
        for unit in (reply.get("result") or {}).get("units", []):
            if not unit["ok"]:
                _err(f"unit {unit['unit']}: {unit['state']}" + (f" ({unit['reason']})" if unit["reason"] else ""))
        return _failed(reply)
    if args.wait:
        for unit in reply["result"]["units"]:
            print(f"unit {unit['unit']}: {unit['state']}")
    return EXIT_OK


def _reload(args, path: str) -> int:
    from pidone.control import client

    reply = client.request(path, "reload", timeout=None, unit=args.unit, plan=args.plan)
    if not reply.get("ok"):
        return _failed(reply)
    result = reply["result"]
    if args.json:
        _print_json(result)
    elif args.unit and result["signal"] == "exec_reload":
        print(f"running exec_reload of unit {result['unit']}")
    elif args.unit:
        print(f"sent {result['signal']} to unit {result['unit']}")
    elif args.plan:
        for unit in result["units"]:
            reason = f" ({unit['reason']})" if unit["reason"] else ""
            print(f"{unit['action']:8} {unit['unit']}{reason}")
        for line in result["errors"]:
            print(f"error: {line}")
        for line in result["warnings"]:
            print(line)
    else:
        print(f"reloaded: {result['summary']}")
    return EXIT_OK


def _logs(args, path: str) -> int:
    from pidone.control import client

    if not args.follow:
        reply = client.request(path, "logs", units=args.units, lines=args.lines, follow=False)
        if not reply.get("ok"):
            return _failed(reply)
        for record in reply["result"]["lines"]:
            _print_log(record, args.json)
        return EXIT_OK
    for reply in client.stream(path, "logs", units=args.units, lines=args.lines, follow=True):
        if not reply.get("ok"):
            return _failed(reply)
        _print_log(reply["stream"], args.json)
    return EXIT_OK


def _events(args, path: str) -> int:
    import orjson

    from pidone.control import client

    if not args.follow:
        reply = client.request(path, "events", lines=args.lines, follow=False)
        if not reply.get("ok"):
            return _failed(reply)
        for event in reply["result"]["events"]:
            sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
        return EXIT_OK
    for reply in client.stream(path, "events", lines=args.lines, follow=True):
        if not reply.get("ok"):
            return _failed(reply)
        sys.stdout.buffer.write(orjson.dumps(reply["stream"]) + b"\n")
        sys.stdout.flush()
    return EXIT_OK


def _reexec(args, path: str) -> int:
    from pidone.control import client

    reply = client.request(path, "reexec", timeout=120.0)
    if args.json:
        _print_json(reply)
    if not reply.get("ok"):
        # Nothing changed: what to look at is the new installation.
        return _failed(reply, "`pidone selftest` runs the installed pidone's checks")
    if not args.json:
        result = reply["result"]
        print(f"re-executed: pidone {result['version']} is PID {result['pid']}, carrying on with {result['units']} unit(s)")
    return EXIT_OK


VERBS = {
    "status": ("Show every unit (or those named): state, pid, uptime, restarts, last exit, memory, CPU.", _status),
    "start": ("Start units (and what they require).", _change),
    "stop": ("Stop units (and what requires them).", _change),
    "restart": ("Restart units.", _change),
    "reload": ("Reload the units directory (as SIGHUP), or send one unit its reload_signal.", _reload),
    "logs": ("Print units' recent output, interleaved by time.", _logs),
    "events": ("Print state changes as JSON lines.", _events),
    "reexec": ("Re-execute PID 1 with the pidone installed now, keeping every service.", _reexec),
}


# -- output helpers ------------------------------------------------------------


def _print_json(obj: object) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


def _print_log(record: dict, as_json: bool) -> None:
    if as_json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    else:
        stamp = time.strftime("%H:%M:%S", time.localtime(record["time"]))
        sys.stdout.write(f"{stamp} {record['unit']} | {record['message']}\n")
    sys.stdout.flush()


def _code(reply: dict) -> int:
    code = (reply.get("error") or {}).get("code", "")
    if code == "permission-denied":
        return EXIT_REFUSED
    if code in ("bad-request", "unknown-command", "unknown-unit", "version", "too-large"):
        return EXIT_USAGE
    return EXIT_FAILED


def _failed(reply: dict, failed_hint: str = "`pidone status` and `pidone logs UNIT` say why") -> int:
    error = reply.get("error") or {}
    _err(error.get("message", "pidone refused the request"))
    hints = {
        "permission-denied": "run it as root (or as pidone's user)",
        "unknown-unit": "`pidone status` lists the units",
        "failed": failed_hint,
        "busy": "try again in a moment",
    }
    hint = hints.get(error.get("code", ""))
    if hint:
        _err(f"try: {hint}")
    return _code(reply)


def _err(text: str) -> None:
    sys.stderr.write(f"pidone: {text}\n")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02}h"


def _size(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}B" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return "-"


def _cpu(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}s"


def status_main(argv: list[str]) -> int:
    return main("status", argv)


def start_main(argv: list[str]) -> int:
    return main("start", argv)


def stop_main(argv: list[str]) -> int:
    return main("stop", argv)


def restart_main(argv: list[str]) -> int:
    return main("restart", argv)


def reload_main(argv: list[str]) -> int:
    return main("reload", argv)


def logs_main(argv: list[str]) -> int:
    return main("logs", argv)


def events_main(argv: list[str]) -> int:
    return main("events", argv)


def reexec_main(argv: list[str]) -> int:
    return main("reexec", argv)

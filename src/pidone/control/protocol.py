"""The control protocol, version 1: one JSON object per line, each way.

A request is `{"v": 1, "cmd": NAME, "args": {...}}`. A reply is
`{"ok": true, "result": ...}` or `{"ok": false, "error": {"code": C,
"message": M}}`; a streaming command (`logs -f`, `events -f`) sends
`{"ok": true, "stream": ...}` lines until the client closes. Requests are
validated here, completely, before anything acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pidone.errors import ControlError
from pidone.units import valid_name

VERSION = 1
MAX_REQUEST = 64 * 1024  # bytes in one request line, enforced while reading
MAX_UNITS = 10_000  # names in one request
MAX_LINES = 100_000  # `logs -n`

# cmd -> (argument name -> (type, default)), and whether it changes state.
COMMANDS: dict[str, tuple[dict[str, tuple[type, object]], bool]] = {
    "ping": ({}, False),
    "status": ({"units": (list, [])}, False),
    "start": ({"units": (list, None), "wait": (bool, False)}, True),
    "stop": ({"units": (list, None), "wait": (bool, False)}, True),
    "restart": ({"units": (list, None), "wait": (bool, False)}, True),
    "reload": ({"unit": (str, None), "plan": (bool, False)}, True),
    "logs": ({"units": (list, None), "lines": (int, 100), "follow": (bool, False)}, False),
    "events": ({"follow": (bool, False), "lines": (int, 100)}, False),
    "reexec": ({}, True),
}
READ_ONLY_WHEN = {("reload", "plan")}  # `reload --plan` changes nothing


@dataclass(frozen=True)
class Request:
    cmd: str
    args: dict = field(default_factory=dict)

    @property
    def changes_state(self) -> bool:
        if any(self.cmd == cmd and self.args.get(arg) for cmd, arg in READ_ONLY_WHEN):
            return False
        return COMMANDS[self.cmd][1]


def encode(obj: object) -> bytes:
    import orjson  # here, not at the top: PID 1 starts its units before it needs JSON

    return orjson.dumps(obj) + b"\n"


def request_line(cmd: str, **args: object) -> bytes:
    return encode({"v": VERSION, "cmd": cmd, "args": args})


def ok(result: object = None) -> bytes:
    return encode({"ok": True, "result": result})


def stream(item: object) -> bytes:
    return encode({"ok": True, "stream": item})


def error(code: str, message: str) -> bytes:
    return encode({"ok": False, "error": {"code": code, "message": message}})


def parse_request(line: bytes) -> Request:
    """Turn one request line into a Request; raise ControlError saying
    what is wrong (bad JSON, version, command, argument types, names)."""
    import orjson

    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ControlError("bad-request", f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ControlError("bad-request", "not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ControlError("bad-request", "a request is a JSON object")
    if data.get("v") != VERSION:
        raise ControlError("version", f"protocol version {data.get('v')!r} is not supported; this pidone speaks {VERSION}")
    cmd = data.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        known = ", ".join(sorted(COMMANDS))
        raise ControlError("unknown-command", f"unknown command {str(cmd)[:40]!r}; known: {known}")
    raw_args = data.get("args", {})
    if not isinstance(raw_args, dict):
        raise ControlError("bad-request", "args must be a JSON object")
    spec, _ = COMMANDS[cmd]
    unknown = set(raw_args) - set(spec)
    if unknown:
        raise ControlError("bad-request", f"{cmd}: unknown argument {sorted(unknown)[0][:40]!r}")
    args = {}
    for name, (kind, default) in spec.items():
        value = raw_args.get(name)
        if value is None:  # absent or null: the default
            value = default
        if value is None:
            if name == "units":
                raise ControlError("bad-request", f"{cmd}: name at least one unit")
            args[name] = None
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ControlError("bad-request", f"{cmd}: {name} must be an integer")
        if kind is not int and not isinstance(value, kind):
            raise ControlError("bad-request", f"{cmd}: {name} must be a {kind.__name__}")
        args[name] = value
    for name in ("units", "unit"):
        values = args.get(name)
        if values is None:
            continue
        values = values if isinstance(values, list) else [values]
        if len(values) > MAX_UNITS:
            raise ControlError("bad-request", f"{cmd}: at most {MAX_UNITS} units")
        for value in values:
            if not isinstance(value, str) or not valid_name(value):
                raise ControlError("bad-request", f"{cmd}: {str(value)[:70]!r} is not a unit name")
    if "lines" in args and not 0 <= args["lines"] <= MAX_LINES:
        raise ControlError("bad-request", f"{cmd}: lines must be from 0 to {MAX_LINES}")
    return Request(cmd, args)

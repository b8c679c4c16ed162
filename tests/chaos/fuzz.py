"""Small mutators for the fuzz cases: valid inputs, damaged at random
(byte flips, truncation, insertion, duplication, type swaps). Seeded, so a
failure names the seed that reproduces it."""

from __future__ import annotations

import json
import random

VALID_REQUESTS = [
    {"v": 1, "cmd": "status", "args": {}},
    {"v": 1, "cmd": "status", "args": {"units": ["web"]}},
    {"v": 1, "cmd": "logs", "args": {"units": ["web"], "lines": 5}},
    {"v": 1, "cmd": "events", "args": {"lines": 3}},
    {"v": 1, "cmd": "reload", "args": {"plan": True}},
    {"v": 1, "cmd": "ping"},
]
ODD_VALUES = [None, True, -1, 2**70, 1e308, "", "../..", "a" * 300, [], {}, [[[]]], "\u0000", "web\n"]


def mutate_request(seed: int) -> bytes:
    """One request line: usually a valid request damaged once or twice."""
    rng = random.Random(seed)
    request = json.loads(json.dumps(rng.choice(VALID_REQUESTS)))
    if rng.random() < 0.5:
        target = request.setdefault("args", {}) if rng.random() < 0.7 else request
        key = rng.choice(list(target) + ["units", "lines", "follow", "cmd", "v", "x"])
        target[key] = rng.choice(ODD_VALUES)
    data = bytearray(json.dumps(request).encode())
    for _ in range(rng.randrange(0, 3)):
        op = rng.randrange(4)
        if not data:
            break
        i = rng.randrange(len(data))
        if op == 0:
            data[i] = rng.randrange(256)
        elif op == 1:
            del data[i:]
        elif op == 2:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        else:
            data[i:i] = data[i : i + rng.randrange(1, 20)]
    return bytes(data) + b"\n"


VALID_UNIT = """description = "fuzzed"

[service]
command = ["sleep", "600"]
type = "simple"

[dependencies]
after = ["canary"]

[restart]
policy = "on-failure"
delay = "100ms"

[stop]
timeout = 2
"""


def mutate_unit(seed: int) -> bytes:
    """A unit file, damaged at random."""
    rng = random.Random(seed)
    data = bytearray(VALID_UNIT.encode())
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(data))
        op = rng.randrange(4)
        if op == 0:
            data[i] = rng.randrange(256)
        elif op == 1:
            del data[i : i + rng.randrange(1, 10)]
        elif op == 2:
            data[i:i] = rng.choice([b"[", b"]", b'"', b"=", b"\n", b"\x00", b"\xff", b"[service]\n", b"nan", b"1e999"])
        else:
            data[i:i] = data[i : i + rng.randrange(1, 30)]
    return bytes(data)

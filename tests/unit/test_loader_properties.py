"""Property tests: random valid unit files load and round-trip; random damage yields a Unit or a ConfigError, never anything else."""

from __future__ import annotations

import re

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pidone import graph
from pidone.errors import ConfigError
from pidone.loader import parse_unit, unit_to_dict
from pidone.units import CAPABILITIES, ENV_KEY_RE, NAME_RE, RLIMITS, Unit

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text TOML can carry: no NUL (refused by design), no lone surrogates (not UTF-8).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12)
words = text.filter(bool)
names = st.from_regex(NAME_RE, fullmatch=True)
paths = text.map(lambda t: "/" + t)
seconds = st.one_of(
    st.integers(0, 86_400),
    st.floats(0, 86_400, allow_nan=False, allow_infinity=False),
    st.integers(0, 10_000).map(lambda n: f"{n}ms"),
    st.integers(0, 100).map(lambda n: f"{n}m{n % 60}s"),
)
accounts = st.one_of(st.integers(0, 2**32 - 2), st.from_regex(r"[a-z_][a-z0-9_-]{0,15}", fullmatch=True))
ports = st.integers(1, 65535)
tcp = ports.map(lambda port: {"tcp": f"127.0.0.1:{port}"})
http = st.tuples(ports, st.from_regex(r"/[a-z0-9/]{0,10}", fullmatch=True)).map(
    lambda pair: {"http": f"http://127.0.0.1:{pair[0]}{pair[1]}"}
)
execs = st.lists(words, min_size=1, max_size=3).map(lambda argv: {"exec": argv})
rlimit_values = st.one_of(
    st.integers(0, 2**40),
    st.just("infinity"),
    st.tuples(st.integers(0, 2**20), st.integers(0, 2**20)).map(lambda p: sorted(p)),
)


def optional(strategy, key):
    """Return a strategy for {key: value} or {}."""
    return st.one_of(st.just({}), strategy.map(lambda value: {key: value}))


def table(**keys):
    """Return a strategy for a table holding any subset of `keys` (name -> value strategy)."""
    parts = [optional(strategy, key) for key, strategy in keys.items()]
    return st.tuples(*parts).map(lambda dicts: {k: v for d in dicts for k, v in d.items()})


@st.composite
def documents(draw):
    """Draw a valid unit file as a TOML document (a dict for tomli-w)."""
    unit_type = draw(st.sampled_from(["simple", "notify", "oneshot"]))
    service = {"command": draw(st.one_of(st.lists(words, min_size=1, max_size=4), st.just("app --flag 'a b'")))}
    service["type"] = unit_type
    service |= draw(
        table(
            critical=st.booleans(),
            working_directory=paths,
            user=accounts,
            group=accounts,
            supplementary_groups=st.lists(accounts, max_size=3),
            environment=st.dictionaries(st.from_regex(ENV_KEY_RE, fullmatch=True), text, max_size=4),
            environment_files=st.lists(paths.map(lambda p: p) | paths.map(lambda p: "-" + p), max_size=2),
            clear_environment=st.booleans(),
            umask=st.one_of(st.integers(0, 0o777), st.integers(0, 0o777).map(lambda m: f"{m:04o}")),
            oom_score_adjust=st.integers(-1000, 1000),
        )
    )
    doc = {"service": service}
    doc |= draw(optional(st.text(max_size=20).filter(lambda t: "\0" not in t and t.isprintable()), "description"))
    doc |= draw(optional(table(requires=st.lists(names, max_size=3, unique=True), wants=st.lists(names, max_size=3, unique=True),
                               after=st.lists(names, max_size=3, unique=True)), "dependencies"))  # fmt: skip
    probe = st.one_of(tcp, http, execs, paths.map(lambda p: {"path": p}))
    ready = table(timeout=seconds, interval=st.floats(0.01, 60))
    if unit_type == "simple":
        ready = st.tuples(ready, st.one_of(st.just({}), probe)).map(lambda pair: pair[0] | pair[1])
    doc |= draw(optional(ready, "ready"))
    health = st.tuples(st.one_of(tcp, http, execs), table(interval=st.floats(0.01, 600), timeout=st.floats(0.001, 60),
                                                          retries=st.integers(1, 100)))  # fmt: skip
    doc |= draw(optional(health.map(lambda pair: pair[0] | pair[1]), "health"))
    delay = draw(st.floats(0, 100))
    backoff = st.one_of(st.just({}), st.floats(delay, 1000).map(lambda top: {"delay": delay, "max_delay": top}))
    restart = st.tuples(backoff, table(policy=st.sampled_from(["no", "on-failure", "always"]),
                                       max_retries=st.integers(0, 100), reset_after=seconds))  # fmt: skip
    doc |= draw(optional(restart.map(lambda pair: pair[0] | pair[1]), "restart"))
    signals = st.sampled_from(["SIGTERM", "TERM", "SIGINT", "QUIT", 9, 10, "sigusr2"])
    doc |= draw(optional(table(signal=signals, timeout=seconds, reload_signal=signals), "stop"))
    doc |= draw(optional(table(file=paths, max_bytes=st.integers(1024, 2**40), backups=st.integers(0, 1000)), "log"))
    limits = table(no_new_privileges=st.booleans(), capabilities=st.lists(st.sampled_from(sorted(CAPABILITIES))),
                   **{name: rlimit_values for name in sorted(RLIMITS)[:5]})  # fmt: skip
    doc |= draw(optional(limits, "limits"))
    return doc


def encode(doc) -> bytes:
    return tomli_w.dumps(doc).encode()


@given(documents())
@SETTINGS
def test_a_generated_valid_unit_loads_and_round_trips(doc):
    unit = parse_unit("web", encode(doc), "web.toml")
    command = doc["service"]["command"]
    assert unit.service.command == (tuple(command) if isinstance(command, list) else ("app", "--flag", "a b"))
    assert unit.service.environment == tuple(doc["service"].get("environment", {}).items())
    again = parse_unit("web", encode(unit_to_dict(unit)), "web.toml")
    assert again == unit


@given(documents())
@settings(max_examples=40, deadline=None)
def test_diff_of_a_unit_set_with_itself_is_all_unchanged(doc):
    unit = parse_unit("web", encode(doc), "web.toml")
    units = {"web": unit, "other": parse_unit("other", encode(doc), "other.toml")}
    result = graph.diff(units, units)
    assert result.unchanged == {"web", "other"}
    assert not (result.added or result.removed or result.changed or result.reordered)


def parses_or_config_error(data: bytes) -> None:
    """Assert that parsing `data` returns a Unit or raises ConfigError whose problems are single, printable lines."""
    try:
        unit = parse_unit("web", data, "web.toml")
    except ConfigError as exc:
        assert exc.problems
        for problem in exc.problems:
            line = str(problem)
            assert "\n" not in line and "\0" not in line
            line.encode("utf-8")
    else:
        assert isinstance(unit, Unit)


@st.composite
def damaged(draw):
    """Draw a valid unit file's bytes with random damage applied."""
    data = bytearray(encode(draw(documents())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "rename"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            keys = re.findall(rb"^([A-Za-z_]+) =", bytes(data), re.M)
            if keys:
                old = draw(st.sampled_from(keys))
                new = draw(st.from_regex(rb"[A-Za-z_][A-Za-z0-9_-]{0,10}", fullmatch=True))
                data = bytearray(bytes(data).replace(old + b" =", new + b" =", 1))
    return bytes(data)


@given(damaged())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_damaged_files_give_a_unit_or_a_config_error(data):
    parses_or_config_error(data)


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_random_bytes_give_a_unit_or_a_config_error(data):
    parses_or_config_error(data)


@given(st.recursive(
    st.one_of(st.integers(), st.floats(), st.booleans(), text, st.datetimes()),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(text, children, max_size=3)),
    max_leaves=12,
))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_any_value_in_any_known_key_gives_a_unit_or_a_config_error(value):
    for table, key in (("service", "command"), ("service", "environment"), ("ready", "tcp"), ("limits", "nofile"),
                       ("stop", "signal"), ("restart", "delay"), ("dependencies", "after"), ("service", "user")):  # fmt: skip
        doc = {"service": {"command": ["app"]}}
        doc.setdefault(table, {})[key] = value
        parses_or_config_error(encode(doc))

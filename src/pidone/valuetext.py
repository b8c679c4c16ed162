"""How a value from a unit file is named in a message: its TOML type and a
short one-line rendering ("an integer (42)", "'web'")."""

from __future__ import annotations

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def describe(value: object) -> str:
    """Return the TOML type of `value` with a short rendering, e.g. "an integer (42)"."""
    kind = _TYPE_NAMES.get(type(value), "a date or time")
    if isinstance(value, dict):
        return kind
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "an array of tables"
    return f"{kind} ({show(value)})"


def show(value: object, limit: int = 60) -> str:
    """Return `value` rendered on one line and at most about `limit` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int) and abs(value) > 10**limit:
        text = f"a {len(str(abs(value)))}-digit integer"  # huge ints: never render them whole
    else:
        text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text

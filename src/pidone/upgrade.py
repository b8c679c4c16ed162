"""Re-exec in place: try the installed code in a child (`pidone selftest`),
then block the handled signals, write the state, keep only the fds that
must survive, and execv the same argv. On the other side, `take_resume`
tells the new process where its state and sockets are.

Why a selftest first: an exec that fails after the old code is gone cannot
be undone, so the new code must show it can import, read this state and
build these units before we jump.
"""

from __future__ import annotations

import os
import signal
import sys

ENV_STATE = "PIDONE_REEXEC_STATE"  # path of the state file to resume from
ENV_FDS = "PIDONE_REEXEC_FDS"  # "control=5,notify=6,client=9": sockets kept open
SELFTEST_TIMEOUT = 60.0
STATE_SCHEMA = 1  # the payload's own version (the file layout has its own)


def state_path(private_dir: str) -> str:
    return os.path.join(private_dir, "state")


def take_resume() -> tuple[str, dict[str, int]] | None:
    """In a new process: (state path, kept fds) if we were re-executed, and
    remove the markers so no service inherits them."""
    path = os.environ.pop(ENV_STATE, None)
    raw = os.environ.pop(ENV_FDS, "")
    if path is None:
        return None
    fds = {}
    for item in raw.split(","):
        key, _, value = item.partition("=")
        if value.isdigit():
            fds[key] = int(value)
    return path, fds


def exec_self(keep: list[int], state_file: str, fds: dict[str, int]) -> OSError:
    """Replace this process with a fresh pidone (same interpreter, same argv)
    keeping `keep` open. Returns only if execv failed, with its error; the
    caller then carries on as before."""
    os.environ[ENV_STATE] = state_file
    os.environ[ENV_FDS] = ",".join(f"{key}={fd}" for key, fd in fds.items())
    for fd in keep:
        os.set_inheritable(fd, True)
    argv = [sys.executable, *sys.orig_argv[1:]]
    try:
        os.execv(sys.executable, argv)
    except OSError as exc:
        error = exc
    for fd in keep:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    os.environ.pop(ENV_STATE, None)
    os.environ.pop(ENV_FDS, None)
    return error


def selftest_argv(state_file: str) -> list[str]:
    """The command that tries the installed code against `state_file`."""
    return [sys.executable, "-m", "pidone", "selftest", "--state", state_file]


def block_signals(signals: list[int]) -> object:
    """Block `signals` so that any arriving during the exec stays pending for
    the new process; return the previous mask."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, signals)


def selftest_main(argv: list[str]) -> int:
    """`pidone selftest [--state PATH]`: can this installed pidone take over?
    Imports every module the init uses, reads the state and rebuilds every
    unit it names. Exit 0 and one line when it can; 1 and the reason when not."""
    import argparse

    parser = argparse.ArgumentParser(prog="pidone selftest", description=selftest_main.__doc__)
    parser.add_argument("--state", help="a state file to check (default: none, imports only)")
    args = parser.parse_args(argv)
    try:
        import pidone.commands  # noqa: F401
        import pidone.control.server  # noqa: F401
        import pidone.daemon  # noqa: F401
        import pidone.supervisor  # noqa: F401
        from pidone import __version__
    except BaseException as exc:  # noqa: BLE001 - report whatever the new code does
        print(f"selftest: the installed pidone cannot be imported: {type(exc).__name__}: {exc}")
        return 1
    if not args.state:
        print(f"selftest: pidone {__version__} imports")
        return 0
    try:
        state = load_state(args.state)
        units = rebuild_units(state)
    except Exception as exc:  # noqa: BLE001 - report, never crash
        print(f"selftest: pidone {__version__} cannot take over: {exc}")
        return 1
    print(f"selftest: pidone {__version__} can take over {len(units)} unit(s)")
    return 0


def load_state(path: str, *, expect_same_boot: bool = True) -> dict:
    """Read and decode the state payload; raise StoreError/ValueError."""
    import orjson

    from pidone.errors import StoreError
    from pidone.store import read_state

    found = read_state(path, expect_same_boot=expect_same_boot)
    try:
        state = orjson.loads(found.payload)
    except orjson.JSONDecodeError as exc:
        raise StoreError(f"the state in {path} is not valid JSON: {exc}") from None
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        raise StoreError(f"the state in {path} has schema {state.get('schema') if isinstance(state, dict) else '?'!r}; "
                         f"this pidone reads {STATE_SCHEMA}")
    state["_minor"] = found.minor
    return state


def rebuild_units(state: dict) -> dict:
    """The unit definitions carried in `state`, validated again."""
    from pidone.loader import unit_from_dict

    plan = state.get("supervisor", {}).get("plan", {})
    paths = state.get("supervisor", {}).get("paths", {})
    if not isinstance(plan, dict):
        raise ValueError("the state's plan is not a table")
    return {name: unit_from_dict(name, table, paths.get(name, "")) for name, table in plan.items()}

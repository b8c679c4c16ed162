"""Re-exec in place (SPEC §7): check the program we are about to exec, run it
as a selftest over a copy of the state, then keep the fds that must survive
and execv it. On the other side, `take_resume` says which fds were kept.

Why a selftest first: an exec that fails after the old code is gone cannot
be undone, so the very program we will exec (same path, same arguments) must
show that it can import every pidone module, read this state and find in it
every unit and every process we supervise, before we jump.
"""

from __future__ import annotations

import os
import stat
import sys

ENV_FDS = "PIDONE_REEXEC_FDS"  # "control=5,state=7,log:web:stdout=9": every fd kept, by role
ENV_SELFTEST = "PIDONE_REEXEC_SELFTEST"  # set: the exec'd program only checks itself and answers
SELFTEST_TIMEOUT = 60.0
STATE_SCHEMA = 1  # the payload's own version (the layout has its own)
ANSWER = "pidone-selftest: ok "  # the selftest's positive answer, then JSON
SOCKET_ROLES = ("control", "notify", "client")


def exec_argv() -> list[str]:
    """What a re-exec runs: this interpreter with the arguments it was given
    (`-m pidone ...` or a script's path and its arguments)."""
    return [sys.executable, *sys.orig_argv[1:]]


def format_fds(fds: dict[str, int]) -> str:
    return ",".join(f"{role}={fd}" for role, fd in fds.items())


def parse_fds(raw: str) -> dict[str, int]:
    fds = {}
    for item in raw.split(","):
        role, _, value = item.rpartition("=")
        if role and value.isdigit():
            fds[role] = int(value)
    return fds


def take_resume() -> dict[str, int] | None:
    """In a new process: the fds the old one kept for us, by role ("state"
    is the memfd; "control", "notify", "client" sockets; "log:UNIT:STREAM"
    pipes), or None if we were not re-executed. The marker is removed so no
    service inherits it."""
    raw = os.environ.pop(ENV_FDS, None)
    if raw is None:
        return None
    return parse_fds(raw)


def exec_self(fds: dict[str, int]) -> OSError:
    """Replace this process with `exec_argv()`, keeping `fds` (every one of
    them listed in PIDONE_REEXEC_FDS). Returns only if execv failed, with
    its error; the caller then carries on as before."""
    os.environ[ENV_FDS] = format_fds(fds)
    for fd in fds.values():
        os.set_inheritable(fd, True)
    argv = exec_argv()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        error = exc
    for fd in fds.values():
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    os.environ.pop(ENV_FDS, None)
    return error


def check_program(path: str) -> str:
    """Why `path` cannot be exec'd ("" if it looks as if it can): missing,
    empty, not a regular file, not executable, or a script whose
    interpreter is missing or not executable."""
    if not path:
        return "the interpreter's path is unknown (sys.executable is empty)"
    for depth in range(4):  # a script's interpreter may be a script in turn
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"{path}: {exc.strerror}"
        if not stat.S_ISREG(st.st_mode):
            return f"{path}: not a regular file"
        if st.st_size == 0:
            return f"{path}: the file is empty"
        if not os.access(path, os.X_OK):
            return f"{path}: not executable"
        try:
            with open(path, "rb") as f:
                head = f.read(256)
        except OSError as exc:
            return f"{path}: {exc.strerror}"
        if not head.startswith(b"#!"):
            return ""
        words = head[2:].split(b"\n", 1)[0].split()
        if not words:
            return f"{path}: a script with an empty interpreter line"
        interpreter = os.fsdecode(words[0])
        if not os.path.exists(interpreter):
            return f"{path}: its interpreter {interpreter} is missing"
        path = interpreter
    return ""


def import_everything() -> list[str]:
    """Import every module of the installed pidone; return what failed
    ("pidone.x: SyntaxError: ..."), in order."""
    import importlib
    import pkgutil
    import traceback

    failures = []
    try:
        import pidone
    except BaseException as exc:  # noqa: BLE001 - report whatever the new code does
        return [f"pidone: {type(exc).__name__}: {exc}"]
    names = ["pidone"]

    def failed(name: str) -> None:
        exc = sys.exc_info()[1]
        failures.append(f"{name}: {type(exc).__name__}: {exc}")

    for info in pkgutil.walk_packages(pidone.__path__, "pidone.", onerror=failed):
        names.append(info.name)
    for name in names:
        if name.endswith(".__main__"):
            continue  # running it is the point of the exec, not of a check
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001
            line = traceback.format_exception_only(type(exc), exc)[-1].strip()
            failures.append(f"{name}: {line}")
    return sorted(set(failures), key=failures.index)


def decode_state(payload: bytes, minor: int = 0) -> dict:
    """The state payload as a dict; StoreError if it is not one we read."""
    import orjson

    from pidone.errors import StoreError

    try:
        state = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise StoreError(f"the state is not valid JSON: {exc}") from None
    if not isinstance(state, dict) or state.get("schema") != STATE_SCHEMA:
        found = state.get("schema") if isinstance(state, dict) else "?"
        raise StoreError(f"the state has schema {found!r}; this pidone reads {STATE_SCHEMA}")
    state["_minor"] = minor
    return state


def rebuild_units(state: dict) -> dict:
    """The unit definitions carried in `state`, validated again."""
    from pidone.loader import unit_from_dict

    plan = state.get("supervisor", {}).get("plan", {})
    paths = state.get("supervisor", {}).get("paths", {})
    if not isinstance(plan, dict):
        raise ValueError("the state's plan is not a table")
    return {name: unit_from_dict(name, table, paths.get(name, "")) for name, table in plan.items()}


def supervised(state: dict) -> dict:
    """What `state` says pidone supervises: unit names and process ids."""
    records = state.get("supervisor", {}).get("machine", {}).get("records", {})
    pids = {rec["pid"] for rec in records.values() if rec.get("pid")}
    pids.update(pid for _, pid, _ in state.get("supervisor", {}).get("leftovers", []))
    if state.get("main"):
        pids.add(state["main"]["pid"])
    return {"units": sorted(records), "pids": sorted(pids)}


def missing_from(expected: dict, found: dict) -> str:
    """What `found` (a selftest's answer) lacks of `expected` ("" if nothing)."""
    parts = []
    units = sorted(set(expected["units"]) - set(found.get("units", [])))
    pids = sorted(set(expected["pids"]) - set(found.get("pids", [])))
    if units:
        parts.append(f"unit(s) {' '.join(units)}")
    if pids:
        parts.append(f"process(es) {' '.join(map(str, pids))}")
    return " and ".join(parts)


def check_fds(state_fds: dict, kept: dict[str, int]) -> list[str]:
    """Problems with the fds the state says it handed over: each role must
    have been kept under the same number and be open, of its kind."""
    problems = []
    for role, fd in sorted(state_fds.items()):
        if kept.get(role) != fd:
            problems.append(f"{role}: fd {fd} was not handed over ({ENV_FDS} says {kept.get(role)})")
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError as exc:
            problems.append(f"{role}: fd {fd} is not open ({exc.strerror})")
            continue
        want = (stat.S_ISSOCK if role in SOCKET_ROLES or role.startswith("listen:")
                else stat.S_ISFIFO if role.startswith("log:")
                else stat.S_ISREG)
        if not want(mode):
            problems.append(f"{role}: fd {fd} is not of its kind (mode {stat.filemode(mode)})")
    return problems


def selftest_child() -> int:
    """The exec'd program, run as a selftest (ENV_SELFTEST set): import
    every module, read the state copy in PIDONE_REEXEC_FDS ("state"),
    rebuild every unit; print ANSWER and what the state lists, or the reason."""
    import orjson

    os.environ.pop(ENV_SELFTEST, None)
    fds = take_resume() or {}
    failures = import_everything()
    if failures:
        print("selftest: the installed pidone cannot be imported: " + "; ".join(failures[:5]))
        return 1
    from pidone import __version__
    from pidone.memstate import read_fd

    try:
        if "state" not in fds:
            raise ValueError(f"no state was handed over ({ENV_FDS} has no 'state')")
        found = read_fd(fds["state"], "the state's copy")
        state = decode_state(found.payload, found.minor)
        units = rebuild_units(state)
        answer = supervised(state)
    except Exception as exc:  # noqa: BLE001 - report, never crash
        print(f"selftest: pidone {__version__} cannot take over: {exc}")
        return 1
    answer.update(version=__version__, rebuilt=len(units))
    print(ANSWER + orjson.dumps(answer).decode())
    return 0


def selftest_main(argv: list[str]) -> int:
    """`pidone selftest [--state PATH]`: can this installed pidone take over?
    Imports every pidone module and, given the `state` next to the control
    socket (or /proc/PID/fd/N), reads it and rebuilds every unit it names.
    Exit 0 and one line when it can; 1 and the reason when not."""
    import argparse

    parser = argparse.ArgumentParser(prog="pidone selftest", description=selftest_main.__doc__)
    parser.add_argument("--state", help="a running pidone's state to check (default: none, imports only)")
    args = parser.parse_args(argv)
    failures = import_everything()
    if failures:
        print("selftest: the installed pidone cannot be imported: " + "; ".join(failures[:5]))
        return 1
    from pidone import __version__

    if not args.state:
        print(f"selftest: pidone {__version__} imports")
        return 0
    from pidone.memstate import open_view

    try:
        found = open_view(args.state)
        units = rebuild_units(decode_state(found.payload, found.minor))
    except Exception as exc:  # noqa: BLE001 - report, never crash
        print(f"selftest: pidone {__version__} cannot take over: {exc}")
        return 1
    print(f"selftest: pidone {__version__} can take over {len(units)} unit(s)")
    return 0


def block_signals(signals: list[int]) -> object:
    """Block `signals` so that any arriving during the exec stays pending for
    the new process; return the previous mask."""
    import signal

    return signal.pthread_sigmask(signal.SIG_BLOCK, signals)

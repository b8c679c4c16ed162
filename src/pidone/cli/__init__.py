"""The `pidone` command line: run as init, or dispatch a subcommand.

Subcommands live in their own modules and are imported only when named, so
a short-lived `pidone status` does not pay for what the init needs.
"""

from __future__ import annotations

import importlib
import os
import sys

USAGE = """\
usage: pidone [OPTIONS]                  run as init over the units directory
       pidone [OPTIONS] -- CMD [ARG...]  the same, with CMD as the main command
       pidone SUBCOMMAND [...]           see below

options (each also an environment variable; the flag wins):
  --units DIR            units directory            (PIDONE_UNITS, /etc/units)
  --runtime-dir DIR      sockets and state file     (PIDONE_RUNTIME_DIR)
  --log-format FORMAT    text or json               (PIDONE_LOG_FORMAT, text)
  --http HOST:PORT       health/metrics endpoint    (PIDONE_HTTP, off)
  --stop-delay SECONDS   on SIGTERM, wait before stopping (PIDONE_STOP_DELAY, 0)
  --max-restarting N     units restarting at once, 0 = no limit (PIDONE_MAX_RESTARTING, 4)
  --version              print the version and exit

subcommands (each takes --help; the ones that print state take --json):
  status [UNIT...]             state, pid, uptime, restarts, memory, CPU
  start|stop|restart UNIT...   record the wanted state (--wait for the outcome)
  reload [UNIT] [--plan]       reload the directory, or signal one unit
  logs UNIT... [-n N] [-f]     recent output of units, interleaved
  events [-f]                  state changes as JSON lines
  reexec                       re-execute PID 1 in place, keeping every service
  selftest [--state FILE]      can the installed pidone take over? (used by reexec)
  check [DIR]                  validate unit files and print the start batches
  graph [DIR]                  print the dependency graph as DOT
  import FILE...               convert systemd/supervisord/Procfile units to TOML
"""

# name -> "module:function"; each function takes the remaining argv and
# returns the exit status.
SUBCOMMANDS: dict[str, str] = {
    "check": "pidone.cli.unitfiles:check_main",
    "graph": "pidone.cli.unitfiles:graph_main",
    "selftest": "pidone.upgrade:selftest_main",
    "import": "pidone.cli.importcmd:import_main",
    **{verb: f"pidone.cli.control:{verb}_main"
       for verb in ("status", "start", "stop", "restart", "reload", "logs", "events", "reexec")},
}

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run `pidone` with `argv` (default: sys.argv[1:]); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "pidone":
        # `docker run IMAGE pidone -- sh` with ENTRYPOINT ["pidone"] gives us
        # our own name first: take it as the user meant it.
        args = args[1:]
    if args and args[0] in SUBCOMMANDS:
        module_name, func_name = SUBCOMMANDS[args[0]].split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        return func(args[1:])
    if args and args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0
    if args and args[0] == "--version":
        from pidone import __version__

        print(f"pidone {__version__}")
        return 0
    return _run_init(args)


def _run_init(args: list[str]) -> int:
    """Parse the init's options and run it; return its exit status."""
    from pidone.daemon import run

    command: list[str] | None = None
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
        if not command:
            return _usage_error("nothing after '--': give the command to run")
    try:
        options = _parse_options(args, os.environ)
    except ValueError as exc:
        return _usage_error(str(exc))
    options.command = command
    return run(options)


def _parse_options(args: list[str], env: os._Environ[str] | dict[str, str]):
    """Turn flags and PIDONE_* variables into daemon Options; raise ValueError."""
    from pidone.daemon import Options

    values = {
        "units": env.get("PIDONE_UNITS"),
        "runtime_dir": env.get("PIDONE_RUNTIME_DIR"),
        "log_format": env.get("PIDONE_LOG_FORMAT"),
        "http": env.get("PIDONE_HTTP"),
        "stop_delay": env.get("PIDONE_STOP_DELAY"),
        "max_restarting": env.get("PIDONE_MAX_RESTARTING"),
    }
    flags = {f"--{key.replace('_', '-')}": key for key in values}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name not in flags:
            if arg.startswith("-"):
                raise ValueError(f"unknown option {arg!r}")
            raise ValueError(f"unknown subcommand {arg!r}")
        if eq:
            value = inline
        else:
            i += 1
            if i >= len(args):
                raise ValueError(f"option {name} needs a value")
            value = args[i]
        values[flags[name]] = value
        i += 1
    return Options.from_strings(values)


def _usage_error(message: str) -> int:
    sys.stderr.write(f"pidone: {message}\ntry 'pidone --help'\n")
    return EXIT_USAGE

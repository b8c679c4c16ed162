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
       pidone [OPTIONS] SUBCOMMAND [...] see below (the options that apply to it do)

options (each also an environment variable; the flag wins):
  --units DIR            units directory            (PIDONE_UNITS, /etc/units)
  --runtime-dir DIR      sockets and state link     (PIDONE_RUNTIME_DIR)
  --log-format FORMAT    text or json               (PIDONE_LOG_FORMAT, text)
  --http HOST:PORT       health/metrics endpoint    (PIDONE_HTTP, off)
  --stop-delay SECONDS   on SIGTERM, wait before stopping (PIDONE_STOP_DELAY, 0)
  --kill-grace SECONDS   at exit, SIGTERM to leftovers, SIGKILL after (PIDONE_KILL_GRACE, 2)
  --max-restarting N     units restarting at once, 0 = no limit (PIDONE_MAX_RESTARTING, 4)
  --version              print the version and exit

subcommands (each takes --help; the ones that print state take --json):
  status [UNIT...]             state, pid, uptime, restarts, memory, CPU
  start|stop|restart UNIT...   record the wanted state (--wait for the outcome)
  reload [UNIT] [--plan]       reload the directory, or signal one unit
  logs UNIT... [-n N] [-f]     recent output of units, interleaved
  events [-f]                  state changes as JSON lines
  reexec                       re-execute PID 1 in place, keeping every service
  selftest [--state PATH]      can the installed pidone take over? (reexec runs its own)
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

# The init's options: flag -> key (its variable is PIDONE_<KEY>).
_FLAGS = {
    "--units": "units",
    "--runtime-dir": "runtime_dir",
    "--log-format": "log_format",
    "--http": "http",
    "--stop-delay": "stop_delay",
    "--kill-grace": "kill_grace",
    "--max-restarting": "max_restarting",
}


def main(argv: list[str] | None = None) -> int:
    """Run `pidone` with `argv` (default: sys.argv[1:]); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "pidone":
        # `docker run IMAGE pidone -- sh` with ENTRYPOINT ["pidone"] gives us
        # our own name first: take it as the user meant it.
        args = args[1:]
    options, word, rest = _split_leading_options(args)
    if word in SUBCOMMANDS:
        try:
            _apply_to_subcommand(word, options)
        except ValueError as exc:
            return _usage_error(str(exc))
        module_name, func_name = SUBCOMMANDS[word].split(":")
        func = getattr(importlib.import_module(module_name), func_name)
        return func(rest)
    if word in ("-h", "--help", "help") or word == "--version":
        try:
            _check_options(_parse_flags(options))
        except ValueError as exc:
            return _usage_error(str(exc))
        if word == "--version":
            from pidone import __version__

            print(f"pidone {__version__}")
        else:
            sys.stdout.write(USAGE)
        return 0
    return _run_init(args)


# An init option that a subcommand can use applies to it through its
# environment variable (as if it had been set): the subcommands read it
# already, and a flag after the subcommand still wins. The others shape only
# the running init: checked, then ignored, so that an ENTRYPOINT carrying
# them still runs every subcommand.
_CONTROL_VERBS = ("status", "start", "stop", "restart", "reload", "logs", "events", "reexec")
_APPLIES_TO = {
    "runtime_dir": ("PIDONE_RUNTIME_DIR", _CONTROL_VERBS),
    "units": ("PIDONE_UNITS", ("check", "graph")),
}


def _split_leading_options(args: list[str]) -> tuple[list[str], str | None, list[str]]:
    """Split `args` into (the init options before the first word that is not
    one, that word, what follows it). The word is None at the end or at
    '--'. Our own name after the options is skipped, as it is first."""
    options: list[str] = []
    skipped_name = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg in SUBCOMMANDS or arg in ("-h", "--help", "help", "--version"):
            return options, arg, args[i + 1 :]
        if arg == "pidone" and options and not skipped_name:
            skipped_name = True
            i += 1
            continue
        takes_value = arg in _FLAGS  # `--units DIR`; `--units=DIR` is one word
        options += args[i : i + 1 + takes_value]
        i += 1 + takes_value
    return options, None, []


def _apply_to_subcommand(verb: str, options: list[str]) -> None:
    """Check `options` (given before `verb`) as the init would, then set the
    variables of the ones `verb` uses; raise ValueError naming what is wrong."""
    values = _parse_flags(options, before=verb)
    _check_options(values)
    for key, value in values.items():
        variable, verbs = _APPLIES_TO.get(key, ("", ()))
        if verb in verbs:
            os.environ[variable] = value


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


def _parse_flags(args: list[str], before: str | None = None) -> dict[str, str]:
    """Return {option key: value} for the flags in `args` (given before the
    subcommand `before`, if any); raise ValueError."""
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if name not in _FLAGS:
            if arg.startswith("-"):
                raise ValueError(f"unknown option {arg!r}")
            if before:
                raise ValueError(f"unexpected {arg!r} before the subcommand {before!r}")
            raise ValueError(f"unknown subcommand {arg!r}")
        if eq:
            value = inline
        else:
            i += 1
            if i >= len(args):
                raise ValueError(f"option {name} needs a value")
            value = args[i]
        values[_FLAGS[name]] = value
        i += 1
    return values


def _parse_options(args: list[str], env: os._Environ[str] | dict[str, str]):
    """Turn flags and PIDONE_* variables into daemon Options; raise ValueError."""
    from pidone.daemon import Options

    values = {key: env.get(f"PIDONE_{key.upper()}") for key in _FLAGS.values()}
    values.update(_parse_flags(args))
    return Options.from_strings(values)


def _check_options(values: dict[str, str]) -> None:
    """Raise ValueError when a value given is malformed, used or not."""
    if values:  # `pidone status` alone need not import the init
        from pidone.daemon import Options

        Options.from_strings(values)


def _usage_error(message: str) -> int:
    sys.stderr.write(f"pidone: {message}\ntry 'pidone --help'\n")
    return EXIT_USAGE

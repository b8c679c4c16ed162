"""Turning systemd services, supervisord programs and Procfile entries into pidone units.

Pure: text in, TOML tables (dicts for tomli-w) and notes out; no files are
read and nothing is printed (`pidone.cli.importcmd` does both). Each result
says, in `notes`, every directive that was not carried over or only
approximately, one line each:

    Directive=value: not carried over: why
    Directive=value: approximated: what was done instead, and why

The mapping is written down, directive by directive, in docs/import.md.
Every table built here must load with `loader.parse_unit`; the CLI checks
that before it prints or writes anything, and the tests check it for every
service unit installed on the machine.

The package, one job per module: `notes` (the result and its notes, unit
names), `values` (values every format shares), `systemd_syntax` (reading a
unit file: sections, continuations, quoting, specifiers), `systemd` with
`systemd_exec`, `systemd_service` and `systemd_tables` (what each directive
becomes), `supervisord` with `supervisord_options` (one handler per option),
`procfile`, and `detect` (which format a file is).
"""

from pidone.importers.detect import FORMATS, PROCFILE, SUPERVISORD, SYSTEMD, detect, import_text
from pidone.importers.notes import APPROXIMATED, DROPPED, ImportResult, canonical, sanitize_name
from pidone.importers.procfile import import_procfile, needs_shell
from pidone.importers.supervisord import import_supervisord
from pidone.importers.systemd import import_systemd
from pidone.importers.values import NOFILE_INFINITY, SHELL

__all__ = [
    "APPROXIMATED", "DROPPED", "FORMATS", "NOFILE_INFINITY", "PROCFILE", "SHELL", "SUPERVISORD", "SYSTEMD",
    "ImportResult", "canonical", "detect", "import_procfile", "import_supervisord", "import_systemd",
    "import_text", "needs_shell", "sanitize_name",
]  # fmt: skip

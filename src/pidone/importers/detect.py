"""Which format a file is (systemd, supervisord, Procfile), and importing a file whatever its format."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pidone.importers.notes import ImportResult
from pidone.importers.procfile import _PROCFILE_LINE, import_procfile
from pidone.importers.supervisord import import_supervisord
from pidone.importers.systemd import import_systemd
from pidone.importers.systemd_tables import _OTHER_UNIT_TYPES

SYSTEMD = "systemd"
SUPERVISORD = "supervisord"
PROCFILE = "procfile"
FORMATS = (SYSTEMD, SUPERVISORD, PROCFILE)


def detect(path: str, text: str) -> str | None:
    """Return the format of file `path` with contents `text`: "systemd", "supervisord", "procfile" or None.

    By name first (*.service and the other systemd suffixes; Procfile,
    Procfile.*; supervisord*.conf), then by contents ([Service]; [program:x];
    only "name: command" lines).
    """
    base = os.path.basename(path)
    suffix = base.rpartition(".")[2] if "." in base else ""
    if suffix == "service" or suffix in _OTHER_UNIT_TYPES:
        return SYSTEMD
    if base == "Procfile" or base.startswith("Procfile."):
        return PROCFILE
    if re.search(r"^\s*\[(program|fcgi-program|eventlistener|supervisord|group|include):?[^\]]*\]", text, re.M):
        return SUPERVISORD
    if re.search(r"^\s*\[(Service|Unit)\]\s*$", text, re.M):
        return SYSTEMD
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    if lines and all(_PROCFILE_LINE.match(line) for line in lines):
        return PROCFILE
    return None


def import_text(path: str, text: str, environ: Mapping[str, str] | None = None) -> list[ImportResult]:
    """Return the results for file `path` holding `text`, whatever its format; raise ValueError when unknown.

    `environ` is the environment the import runs in (see import_supervisord).
    """
    kind = detect(path, text)
    if kind == SYSTEMD:
        return [import_systemd(text, os.path.basename(path), path)]
    if kind == SUPERVISORD:
        return import_supervisord(text, path, environ)
    if kind == PROCFILE:
        return import_procfile(text, path)
    raise ValueError(
        "not a format pidone can import: expected a systemd .service file, a supervisord"
        " configuration with [program:x] sections, or a Procfile"
    )

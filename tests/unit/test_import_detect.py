"""`pidone import`: which format a file is."""

from __future__ import annotations

import pytest

from pidone.importers import detect


# --- detection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "text", "kind"),
    [
        ("x/web.service", "", "systemd"),
        ("x/web.socket", "", "systemd"),
        ("Procfile", "", "procfile"),
        ("Procfile.dev", "", "procfile"),
        ("conf.d/app.conf", "[program:app]\ncommand=x\n", "supervisord"),
        ("supervisord.conf", "; c\n[supervisord]\n", "supervisord"),
        ("unit", "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/x\n", "systemd"),
        ("procs", "web: run\nworker: work\n", "procfile"),
        ("README", "hello world\n", None),
        ("empty", "", None),
    ],
)
def test_detect(path, text, kind):
    assert detect(path, text) == kind

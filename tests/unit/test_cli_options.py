"""The init's options before a subcommand (`pidone [OPTIONS] SUBCOMMAND ...`,
SPEC §1), run as the real command: the ones a subcommand uses apply to it,
the others are checked and ignored, and a real subcommand is never called
unknown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pidone.cli import SUBCOMMANDS

REPO = Path(__file__).resolve().parents[2]
GOOD = '[service]\ncommand = ["sleep", "1"]\n'
CONTROL_VERBS = ("status", "start", "stop", "restart", "reload", "logs", "events", "reexec")


def pidone(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m pidone ARGS` without any PIDONE_* variable (plus `env`)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIDONE_")}
    return subprocess.run(
        [sys.executable, "-m", "pidone", *args],
        capture_output=True, text=True, timeout=30, cwd=REPO, env={**clean, **(env or {})},
    )


@pytest.mark.parametrize("verb", CONTROL_VERBS)
def test_runtime_dir_before_a_control_verb_applies_to_it(verb, tmp_path):
    args = {"start": ["web"], "stop": ["web"], "restart": ["web"], "logs": ["web"]}.get(verb, [])
    for form in (["--runtime-dir", str(tmp_path)], [f"--runtime-dir={tmp_path}"]):
        run = pidone(*form, verb, *args)
        assert run.returncode == 3, run.stderr  # nobody answers there: it looked where it was told
        assert f"{tmp_path}/private/control.sock" in run.stderr
        assert "unknown subcommand" not in run.stderr


def test_a_runtime_dir_after_the_verb_wins_over_one_before(tmp_path):
    run = pidone("--runtime-dir", "/nonexistent/before", "status", "--runtime-dir", str(tmp_path))
    assert run.returncode == 3
    assert f"{tmp_path}/private/control.sock" in run.stderr
    assert "/nonexistent/before" not in run.stderr


def test_runtime_dir_before_the_verb_wins_over_the_variable(tmp_path):
    run = pidone("--runtime-dir", str(tmp_path), "status", env={"PIDONE_RUNTIME_DIR": "/nonexistent/env"})
    assert run.returncode == 3
    assert f"{tmp_path}/private/control.sock" in run.stderr


@pytest.mark.parametrize("verb", ["check", "graph"])
def test_units_before_check_and_graph_applies_to_them(verb, tmp_path):
    (tmp_path / "web.toml").write_text(GOOD)
    run = pidone("--units", str(tmp_path), verb)
    assert run.returncode == 0, run.stderr
    assert "web" in run.stdout


def test_a_directory_given_to_check_wins_over_units_before_it(tmp_path):
    (tmp_path / "web.toml").write_text(GOOD)
    run = pidone("--units", "/nonexistent", "check", str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("ok: 1 valid unit in 1 batch\n")


def test_options_that_only_shape_the_init_are_accepted_and_ignored(tmp_path):
    # An ENTRYPOINT that carries init options still runs every subcommand.
    (tmp_path / "web.toml").write_text(GOOD)
    run = pidone("--log-format", "json", "--http", ":9000", "--stop-delay", "1", "--kill-grace=0.5", "--runtime-dir", "/x",
                 "--units", str(tmp_path), "check")
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("ok: 1 valid unit in 1 batch\n")


def test_our_own_name_after_the_options_is_skipped(tmp_path):
    # ENTRYPOINT ["pidone", "--units", DIR] and `docker run IMAGE pidone check`.
    (tmp_path / "web.toml").write_text(GOOD)
    run = pidone("--units", str(tmp_path), "pidone", "check")
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stop-delay", "-1", "status"], "pidone: --stop-delay must be a finite number >= 0, not '-1'"),
        (["--log-format", "xml", "check"], "pidone: --log-format must be 'text' or 'json', not 'xml'"),
        (["--kill-grace", "inf", "check"], "pidone: --kill-grace must be a finite number >= 0, not 'inf'"),
        (["--bogus", "status"], "pidone: unknown option '--bogus'"),
        (["--units", "/u", "stray", "status"], "pidone: unexpected 'stray' before the subcommand 'status'"),
        (["--units"], "pidone: option --units needs a value"),
        (["--units", "/u", "nosuch"], "pidone: unknown subcommand 'nosuch'"),
    ],
)
def test_bad_options_before_a_subcommand_are_usage_errors(args, message):
    run = pidone(*args)
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == message


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_a_real_subcommand_is_never_called_unknown(name, tmp_path):
    run = pidone("--runtime-dir", str(tmp_path), "--units", str(tmp_path), name, "--help")
    assert run.returncode == 0, run.stderr
    assert "unknown" not in run.stderr
    assert run.stdout.startswith("usage: pidone")


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_after_options(flag):
    run = pidone("--units", "/u", flag)
    assert run.returncode == 0
    assert run.stdout.startswith("usage: pidone [OPTIONS]")


def test_version_after_options():
    run = pidone("--units", "/u", "--version")
    assert run.returncode == 0
    assert run.stdout.startswith("pidone ")


def test_kill_grace_defaults_to_two_seconds_and_takes_a_number():
    from pidone.daemon import Options

    assert Options.from_strings({}).kill_grace == 2.0
    assert Options.from_strings({"kill_grace": "0.3"}).kill_grace == 0.3
    assert Options.from_strings({"kill_grace": "0"}).kill_grace == 0.0
    assert Options.from_strings({"kill_grace": "31536000", "stop_delay": "31536000"}).kill_grace == 31536000
    for bad in ("-0.1", "nan", "1s", "inf", "31536001", "1e300"):
        with pytest.raises(ValueError, match="--kill-grace"):
            Options.from_strings({"kill_grace": bad})

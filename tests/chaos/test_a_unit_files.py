"""RELIABILITY §3.A: malformed or hostile unit files, at boot and on reload.
Each case ends with the G1-G6 checks."""

from __future__ import annotations

import os
import random
import time

import pytest

from conftest import Chaos, sigterm_and_wait
from pidone_harness import PidOne, wait_for

SLEEP = {"service": {"command": ["sleep", "600"]}}

BAD_TOML = {
    "unterminated": '[service]\ncommand = ["sleep", "600]\n',
    "duplicate-key": '[service]\ncommand = ["true"]\ncommand = ["false"]\n',
    "duplicate-table": '[service]\ncommand = ["true"]\n[service]\ntype = "simple"\n',
    "bom": '\ufeff[service]\ncommand = ["true"]\n',
    "nul": '[service]\ncommand = ["tr\x00ue"]\n',
}


def reload(c: Chaos) -> str:
    reply = c.request("reload", timeout=30)
    assert reply["ok"], reply
    return reply["result"]["summary"]


def test_a1_bad_toml_at_boot_exits_2_listing_every_file(tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    for name, text in BAD_TOML.items():
        (units / f"{name}.toml").write_text(text)
    (units / "latin1.toml").write_bytes(b'[service]\ncommand = ["caf\xe9"]\n')
    (units / "good.toml").write_text('[service]\ncommand = ["sh", "-c", "echo MUST-NOT-RUN"]\n')
    p = PidOne(["--units", str(units), "--runtime-dir", str(tmp_path / "run")])
    try:
        assert p.wait(timeout=30) == 2
        text = p.stdout_text()
        for name in [*BAD_TOML, "latin1"]:
            assert f"{name}.toml:" in text, name
        assert "unterminated.toml:2:" in text  # file:line:col where the parser knows it
        assert "MUST-NOT-RUN" not in text and "Traceback" not in text
    finally:
        p.close()


def test_a1_bad_toml_on_reload_keeps_the_last_good_definition(chaos):
    c = chaos({"web": SLEEP})
    pid = c.unit_pids()["web"]
    for name, text in BAD_TOML.items():
        c.write("web", text)
        assert "1 error" in reload(c), name
        assert c.unit_pids()["web"] == pid
        errors = [u for u in c.request("status")["result"]["units"] if u["unit"] == "web"][0]["errors"]
        assert errors and "web.toml" in errors[0]
    c.check()


@pytest.mark.parametrize("key, table", [("usr", "service"), ("restat", None)])
def test_a2_unknown_keys_fail_closed_and_name_the_key(chaos, key, table):
    c = chaos({})
    unit = '[service]\ncommand = ["sleep", "600"]\n' + (f'{key} = "nobody"\n' if table else f'\n[{key}]\npolicy = "always"\n')
    c.write("typo", unit)
    reload(c)
    c.p.find_line(rf"typo\.toml:\d+: .*{key}")
    assert "typo" not in c.states(), "a unit with an unknown key must never start"
    c.check()


A3 = {
    "cmd-number": "[service]\ncommand = 42\n",
    "empty-argv": "[service]\ncommand = []\n",
    "restart-number": '[service]\ncommand = ["true"]\nrestart = 5\n',
    "timeout-ten": '[service]\ncommand = ["true"]\n[stop]\ntimeout = "ten"\n',
    "timeout-nan": '[service]\ncommand = ["true"]\n[stop]\ntimeout = nan\n',
    "timeout-inf": '[service]\ncommand = ["true"]\n[stop]\ntimeout = inf\n',
    "timeout-negative": '[service]\ncommand = ["true"]\n[stop]\ntimeout = -1\n',
    "timeout-huge": '[service]\ncommand = ["true"]\n[stop]\ntimeout = 1e308\n',
    "thirty-digits": '[service]\ncommand = ["true"]\n[restart]\nmax_retries = 123456789012345678901234567890\n',
    "nul-argv": '[service]\ncommand = ["a\\u0000b"]\n',
    "nul-env": '[service]\ncommand = ["true"]\nenvironment = { A = "x\\u0000y" }\n',
}


def test_a3_wrong_types_and_ranges_are_rejected_before_any_fork(chaos):
    c = chaos({})
    for name, text in A3.items():
        c.write(name, text)
    reload(c)
    for name in A3:
        c.p.find_line(rf"{name}\.toml")
        assert name not in c.states()
    c.check()


def test_a4_huge_and_hostile_file_objects(chaos, tmp_path):
    c = chaos({})
    rss = c.p.rss_kib()
    (c.units / "huge.toml").write_bytes(b"# " + b"x" * (50 << 20) + b"\n")
    os.mkfifo(c.units / "fifo.toml")
    (c.units / "zero.toml").symlink_to("/dev/zero")
    (c.units / "dir.toml").mkdir()
    (c.units / "deep.toml").write_text("[service]\ncommand = " + "[" * 10000 + "]" * 10000 + "\n")
    started = time.monotonic()
    reload(c)
    assert time.monotonic() - started < 10
    for name in ("huge", "fifo", "zero", "dir", "deep"):
        c.p.find_line(rf"{name}\.toml: ")
    assert c.p.rss_kib() - rss < 50 * 1024
    c.check()


@pytest.mark.parametrize("size", [1, 2, 3, 1000])
def test_a5_cycles_are_reported_and_only_their_members_held_back(tmp_path, size):
    units = {f"c{i}": {"service": {"command": ["sleep", "600"]},
                       "dependencies": {"after": [f"c{(i + 1) % size}"]}} for i in range(size)}
    units["free"] = SLEEP
    c = Chaos(tmp_path, units, timeout=120, at_boot=True)
    try:
        started = time.monotonic()
        c.boot()
        c.p.find_line(r"dependency cycle: c0 -> ")
        c.p.find_line(r"unit free: started")
        assert time.monotonic() - started < 10
        states = c.states()
        assert all(states[f"c{i}"] == "skipped" for i in range(size))
        c.check()
    finally:
        c.close()


def test_a7_missing_dependencies(chaos):
    c = chaos({})
    c.write("hard", {"service": {"command": ["sleep", "600"]}, "dependencies": {"requires": ["ghost"]}})
    c.write("hard-child", {"service": {"command": ["sleep", "600"]}, "dependencies": {"requires": ["hard"]}})
    c.write("soft", {"service": {"command": ["sleep", "600"]}, "dependencies": {"wants": ["ghost"]}})
    reload(c)
    c.p.find_line(r"hard\.toml:\d+: \[dependencies\] requires: missing dependency 'ghost'")
    c.p.find_line(r"soft\.toml:\d+: \[dependencies\] wants: warning: missing dependency 'ghost'")
    states = c.states()
    assert states["hard"] == "skipped" and states["hard-child"] == "skipped"
    wait_for(lambda: c.states()["soft"] == "running", 5, "the soft dependent to run")
    c.check()


def test_a9_names_and_path_traversal(chaos, tmp_path):
    c = chaos({})
    stamp = time.time()
    for bad in ("-dash", "a b", ".hidden-no", "x" * 300):
        try:
            (c.units / f"{bad}.toml").write_text('[service]\ncommand = ["sleep", "600"]\n')
        except OSError:
            pass
    c.write("sneaky", {"service": {"command": ["sleep", "600"]}, "dependencies": {"after": ["../x"]}})
    reload(c)
    assert set(c.states()) == {"canary"}
    out = c.cli("logs", "../../../etc/shadow")
    assert out.returncode == 2 and "not a unit name" in out.stderr
    newer = [p for p in tmp_path.rglob("*") if p.stat(follow_symlinks=False).st_mtime > stamp and "units" not in p.parts
             and "run" not in p.parts]
    assert not newer, f"files created outside pidone's directories: {newer}"
    c.check()


def test_a11_insecure_permissions_are_refused_naming_path_mode_and_owner(chaos, tmp_path):
    c = chaos({})
    c.write("open", SLEEP)
    os.chmod(c.units / "open.toml", 0o666)
    c.write("foreign", SLEEP)
    os.chown(c.units / "foreign.toml", 1000, 1000)
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('[service]\ncommand = ["sleep", "600"]\n')
    os.chown(elsewhere, 1000, 1000)
    (c.units / "linked.toml").symlink_to(elsewhere)
    reload(c)
    c.p.find_line(r"open\.toml: .*0666")
    c.p.find_line(r"foreign\.toml: .*1000")
    c.p.find_line(r"linked\.toml: ")
    assert not {"open", "foreign", "linked"} & set(c.states())
    c.check()


def test_a12_reload_with_bad_edits(chaos):
    c = chaos({"edit": SLEEP, "gone": SLEEP, "old": SLEEP, "dep": SLEEP, "keep": SLEEP})
    before = c.unit_pids()
    c.write("edit", "[service]\ncommand = [\n")
    (c.units / "gone.toml").unlink()
    os.rename(c.units / "old.toml", c.units / "new.toml")
    c.write("dep", {"service": {"command": ["sleep", "600"]}, "dependencies": {"after": ["keep"]}})
    reload(c)
    after = c.unit_pids()
    assert after["edit"] == before["edit"] and after["keep"] == before["keep"] and after["dep"] == before["dep"]
    assert "gone" not in after and "old" not in after and "new" in after
    c.check()


@pytest.mark.slow
def test_a8_ten_thousand_units(tmp_path):
    rng = random.Random(8)
    units = {}
    for i in range(10_000):
        deps = sorted({f"u{rng.randrange(i)}" for _ in range(3)}) if i else []
        units[f"u{i}"] = {"service": {"type": "oneshot", "command": ["/bin/true"]}, "dependencies": {"after": deps}}
    c = Chaos(tmp_path, units, timeout=600, at_boot=True)
    try:
        started = time.monotonic()
        c.boot()
        c.p.find_line(r"starting 10001 unit\(s\)", timeout=60)
        wait_for(lambda: c.p.count_lines(r"unit u\d+: exited with status 0") >= 10_000, 300, "all 10,000 to finish", 1.0)
        assert time.monotonic() - started < 300
        assert c.p.rss_kib() < 300 * 1024
        c.check()
        assert sigterm_and_wait(c, 120) == 0
    finally:
        c.close()

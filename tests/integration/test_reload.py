"""SIGHUP reload as PID 1: exactly what changed is touched. Added units
start, removed ones stop, changed ones restart (with what requires them),
dependency-only changes re-order without a restart, broken edits keep the
last good definition, and unchanged units keep their PID through storms."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import tomli_w

from pidone_harness import wait_for

PY = sys.executable


def svc(text: str, **sections) -> dict:
    return {"service": {"command": ["sh", "-c", f"echo {text}; exec sleep 600"]}, **sections}


class Units:
    """A units directory the test edits between reloads."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "units"
        self.dir.mkdir()
        self.run = tmp_path / "run"

    def write(self, name: str, unit: dict) -> None:
        tmp = self.dir / f".{name}.tmp"
        tmp.write_text(tomli_w.dumps(unit))
        tmp.rename(self.dir / f"{name}.toml")  # atomic, as editors should

    def write_raw(self, name: str, text: str) -> None:
        (self.dir / f"{name}.toml").write_text(text)

    def remove(self, name: str) -> None:
        (self.dir / f"{name}.toml").unlink()

    def args(self) -> list[str]:
        return ["--units", str(self.dir), "--runtime-dir", str(self.run)]


def reload(p, count_before: int | None = None) -> None:
    """Send SIGHUP and wait for that reload to finish."""
    done = p.count_lines(r"^pidone \| reload done") if count_before is None else count_before
    p.kill(signal.SIGHUP)
    p.wait_count(r"^pidone \| reload done", done + 1)


def starts(p, name: str) -> int:
    return p.count_lines(rf"unit {name}: started")


def boot(pidone, units: Units, *names_ready: str):
    p = pidone(units.args()).wait_ready()
    for name in names_ready:
        p.find_line(rf"unit {name}: started")
    return p


def test_add_remove_change_and_leave_the_rest_alone(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("keep", svc("keep"))
    u.write("gone", svc("gone"))
    u.write("edit", svc("v1"))
    p = boot(pidone, u, "keep", "gone", "edit")
    p.find_line(r"^edit \| v1")
    u.write("new", svc("new"))
    u.remove("gone")
    u.write("edit", svc("v2"))
    reload(p)
    p.find_line(r"reloading .*: \+1 -1 ~1 =1")
    p.find_line(r"^edit \| v2")
    p.find_line(r"^new \| new")
    p.find_line(r"unit gone: removed")
    assert starts(p, "keep") == 1, "an unchanged unit must not be touched"
    assert starts(p, "edit") == 2
    assert p.count_lines(r"unit keep: stopping") == 0


def test_rename_is_a_remove_and_an_add(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("old", svc("hello"))
    p = boot(pidone, u, "old")
    os.rename(u.dir / "old.toml", u.dir / "renamed.toml")
    reload(p)
    p.find_line(r"unit old: removed")
    p.find_line(r"unit renamed: started")


def test_a_dependency_only_change_reorders_without_a_restart(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("a", svc("a"))
    u.write("b", svc("b"))
    p = boot(pidone, u, "a", "b")
    u.write("b", svc("b", dependencies={"after": ["a"]}))
    reload(p)
    p.find_line(r"reloading .*: \+0 -0 ~0 =2")
    assert starts(p, "b") == 1
    # The new order holds at shutdown: b (after a) stops before a.
    p.kill(signal.SIGTERM)
    assert p.wait() == 0
    text = p.stdout_text()
    assert text.index("unit b: stopped") < text.index("unit a: stopping")


def test_a_changed_unit_restarts_what_requires_it_after_it_is_ready(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("db", svc("db v1"))
    u.write("app", svc("app", dependencies={"requires": ["db"]}))
    u.write("side", svc("side", dependencies={"wants": ["db"]}))
    p = boot(pidone, u, "app", "side")
    u.write("db", svc("db v2"))
    reload(p)
    text = p.stdout_text()
    tail = text[text.index("reloading"):]
    # app stops before db stops, and starts again after db is back.
    assert tail.index("unit app: stopped") < tail.index("unit db: stopping")
    assert tail.index("unit db: started") < tail.rindex("unit app: started")
    assert starts(p, "app") == 2 and starts(p, "side") == 1


def test_a_broken_edit_keeps_the_last_good_definition_until_fixed(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("web", svc("good"))
    u.write("other", svc("other"))
    p = boot(pidone, u, "web", "other")
    u.write_raw("web", '[service]\ncommand = ["sh", "-c", "echo broken"\n')  # unclosed array
    u.write("other", svc("other v2"))
    reload(p)
    p.find_line(r"web\.toml:\d+:\d+: .*invalid TOML")
    p.find_line(r"reloading .*, 1 error")
    p.find_line(r"^other \| other v2")  # every other valid change still applies
    assert starts(p, "web") == 1, "the broken unit keeps running on its last good definition"
    u.write("web", svc("fixed"))
    reload(p)
    p.find_line(r"^web \| fixed")


def test_a_new_unit_with_a_missing_requirement_is_not_started(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("base", svc("base"))
    p = boot(pidone, u, "base")
    u.write("needy", svc("needy", dependencies={"requires": ["nowhere"]}))
    reload(p)
    p.find_line(r"needy\.toml:\d+: \[dependencies\] requires: missing dependency 'nowhere'")
    p.find_line(r"unit needy: skipped: missing dependency 'nowhere'")
    assert starts(p, "needy") == 0


def test_deleting_a_unit_that_others_want_leaves_them_running(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("cache", svc("cache"))
    u.write("app", svc("app", dependencies={"wants": ["cache"]}))
    p = boot(pidone, u, "app")
    u.remove("cache")
    reload(p)
    p.find_line(r"unit cache: removed")
    p.find_line(r"app\.toml:\d+: \[dependencies\] wants: warning: missing dependency 'cache'")
    assert starts(p, "app") == 1
    assert p.count_lines(r"unit app: stopping") == 0


CANARY = {"service": {"command": [PY, "-u", "-c",
                                  "import time\nn = 0\nwhile True:\n    n += 1\n    print('beat', n)\n    time.sleep(0.05)"]}}


def test_a_hundred_reloads_leave_the_canary_untouched(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("canary", CANARY)
    u.write("flip", svc("0"))
    p = boot(pidone, u, "canary", "flip")
    for i in range(1, 101):
        u.write("flip", svc(str(i)))
        reload(p, count_before=i - 1)
    assert starts(p, "canary") == 1
    beats = [int(line.split()[-1]) for line in p.stdout if line.startswith(b"canary | beat ")]
    assert beats == list(range(1, len(beats) + 1)), "canary lines missing"
    times = [t for t, line in zip(p.stdout_times, p.stdout) if line.startswith(b"canary | beat ")]
    assert max(b - a for a, b in zip(times, times[1:])) < 1.0


def test_a_sighup_storm_is_coalesced_and_ends_on_what_is_on_disk(pidone, tmp_path):
    u = Units(tmp_path)
    u.write("canary", CANARY)
    for i in range(20):
        u.write(f"svc{i:02}", svc("v0"))
    p = boot(pidone, u, "canary", "svc19")
    p.wait_count(r"unit svc\d\d: started", 20)
    fds, rss = p.settled_fd_count(), p.rss_kib()
    deadline = time.monotonic() + 1.0
    sent = 0
    while sent < 1000:
        if sent % 50 == 0:
            u.write(f"svc{(sent // 50) % 20:02}", svc(f"v{sent}"))
        p.kill(signal.SIGHUP)
        sent += 1
        pause = (deadline - time.monotonic()) / max(1, 1000 - sent)
        if pause > 0:
            time.sleep(pause)  # pacing the storm over about a second, not synchronisation
    final = {f"svc{i:02}": (u.dir / f"svc{i:02}.toml").read_text() for i in range(20)}
    reload(p)  # one more, after the storm: its completion means the storm is over
    reloads = p.count_lines(r"^pidone \| reloading")
    assert reloads <= 60, f"{reloads} reloads for 1,000 SIGHUPs: not coalesced"
    # The final state is what is on disk: every unit's last start ran the last text.
    for name, text in final.items():
        expected = text.split("echo ")[1].split(";")[0]
        wait_for(lambda: p.count_lines(rf"^{name} \| ") and
                 [line for line in p.stdout if line.startswith(f"{name} | ".encode())][-1].decode().split(" | ")[1].strip() == expected,
                 10, f"{name} to run {expected}")
    assert starts(p, "canary") == 1
    assert abs(p.settled_fd_count() - fds) <= 2
    assert p.rss_kib() - rss < 4096

"""[timer] units under a real PID 1: not started at boot, started by each
firing, a firing while the unit runs skipped and counted, the next firing
kept across reload and reexec, status and metrics, a bad schedule refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import tomli_w

from pidone_harness import run_cli, start_units, wait_for

PY = sys.executable


start = start_units
cli = run_cli


def unit_status(p, name: str) -> dict:
    out = cli(p, "status", "--json", name)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["units"][0]


def job(marker: Path, schedule: str, *, sleep: float = 0.0, **timer) -> dict:
    code = f"import time\nopen({str(marker)!r}, 'a').write('run\\n')\ntime.sleep({sleep})"
    return {"service": {"command": [PY, "-c", code], "type": "oneshot"},
            "timer": {"schedule": schedule, **timer}}


def runs(marker: Path) -> int:
    return marker.read_text().count("run") if marker.exists() else 0


def test_a_timer_unit_waits_for_its_schedule_and_runs_at_each_firing(pidone, tmp_path):
    marker = tmp_path / "runs"
    p = start(pidone, tmp_path, {"job": job(marker, "every 1s"), "web": {"service": {"command": ["sleep", "600"]}}})
    p.expect_line(r"unit web: started")
    assert runs(marker) == 0 and unit_status(p, "job")["state"] == "inactive"
    p.wait_count(r"unit job: timer fired: starting", 2, timeout=10)
    wait_for(lambda: runs(marker) >= 2, 10, "two runs")
    info = unit_status(p, "job")
    assert info["timer"]["schedule"] == "every 1s" and info["timer"]["firings"] >= 2
    assert info["timer"]["next"] > time.time() - 1 and info["timer"]["last"] is not None
    text = cli(p, "status", "job").stdout
    assert "timer every 1s: next " in text and "skipped" in text


def test_on_boot_also_starts_it_at_boot(pidone, tmp_path):
    marker = tmp_path / "runs"
    p = start(pidone, tmp_path, {"job": job(marker, "@yearly", on_boot=True)})
    wait_for(lambda: runs(marker) == 1, 10, "the boot run")
    assert unit_status(p, "job")["timer"]["firings"] == 0


def test_a_firing_while_it_runs_is_skipped_and_counted_never_queued(pidone, tmp_path):
    marker = tmp_path / "runs"
    p = start(pidone, tmp_path, {"job": job(marker, "every 1s", sleep=2.5)})
    p.expect_line(r"unit job: timer fired: starting", timeout=10)
    p.expect_line(r"unit job: timer fired: skipped \(still (starting|running)\)", timeout=10)
    p.expect_line(r"unit job: exited with status 0", timeout=10)
    info = unit_status(p, "job")
    assert info["timer"]["skipped"] >= 1
    # Skipped firings were not queued: the next run starts at a later firing, once.
    p.expect_line(r"unit job: timer fired: starting", timeout=10)
    wait_for(lambda: runs(marker) == 2, 10, "the second run")
    assert unit_status(p, "job")["timer"]["firings"] == 2  # not one more per skipped firing


def test_a_cron_schedule_fires_on_the_wall_clock_minute(pidone, tmp_path):
    marker = tmp_path / "runs"
    p = start(pidone, tmp_path, {"job": job(marker, "* * * * *", timezone="Europe/Paris")})
    nxt = unit_status(p, "job")["timer"]["next"]
    assert nxt % 60 == 0 and 0 < nxt - time.time() <= 61
    wait_for(lambda: runs(marker) == 1, 75, "the firing at the next minute")
    assert time.time() >= nxt
    metrics_free = unit_status(p, "job")
    assert metrics_free["timer"]["firings"] == 1 and metrics_free["timer"]["next"] == nxt + 60


def test_the_next_firing_survives_reexec_and_an_unchanged_reload(pidone, tmp_path):
    marker = tmp_path / "runs"
    units = {"job": job(marker, "*/30 * * * *", jitter="20m"),
             "tick": job(tmp_path / "ticks", "every 2s", jitter="1s")}
    p = start(pidone, tmp_path, units)
    before = unit_status(p, "job")["timer"]["next"]
    assert cli(p, "reexec").returncode == 0
    p.expect_line(r"re-exec|resumed", timeout=30)
    assert unit_status(p, "job")["timer"]["next"] == before  # the same jittered firing, not a new draw
    (p.units / "other.toml").write_text(tomli_w.dumps({"service": {"command": ["sleep", "600"]}}))
    assert cli(p, "reload").returncode == 0
    assert unit_status(p, "job")["timer"]["next"] == before
    # The monotonic timer goes on firing after the re-exec.
    wait_for(lambda: runs(tmp_path / "ticks") >= 1, 15, "tick firing after the re-exec")
    # A changed schedule is planned again.
    units["job"]["timer"]["schedule"] = "@yearly"
    (p.units / "job.toml").write_text(tomli_w.dumps(units["job"]))
    assert cli(p, "reload").returncode == 0
    assert unit_status(p, "job")["timer"]["next"] > before + 3600


def test_metrics_count_firings_and_skips(pidone, tmp_path):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = start(pidone, tmp_path, {"job": job(tmp_path / "runs", "every 1s", sleep=1.5)},
              "--http", f"127.0.0.1:{port}")
    p.expect_line(r"unit job: timer fired: skipped", timeout=10)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'pidone_timer_firings_total{unit="job"} 1' in body
    assert 'pidone_timer_skipped_total{unit="job"}' in body
    assert 'pidone_timer_next_firing_seconds{unit="job"}' in body


def test_check_refuses_a_bad_schedule_and_zone_naming_the_key(tmp_path):
    directory = tmp_path / "units"
    directory.mkdir()
    (directory / "a.toml").write_text(tomli_w.dumps({"service": {"command": ["true"]},
                                                     "timer": {"schedule": "0 25 * * *"}}))
    (directory / "b.toml").write_text(tomli_w.dumps({"service": {"command": ["true"]},
                                                     "timer": {"schedule": "@daily", "timezone": "Nowhere/Land"}}))
    out = subprocess.run([PY, "-m", "pidone", "check", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "[timer] schedule: hour field '25': 25 is out of range 0-23" in out.stdout + out.stderr
    assert "[timer] timezone: unknown time zone 'Nowhere/Land'" in out.stdout + out.stderr

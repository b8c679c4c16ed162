"""SPEC §11 as PID 1 with real processes: disabled units, conditions, exit
statuses, stop modes, part_of, runtime and state directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tomli_w

from pidone_harness import wait_for

PY = sys.executable


def start(pidone, tmp_path: Path, units: dict[str, dict], *extra, env: dict | None = None, **kwargs):
    directory = tmp_path / "units"
    directory.mkdir(exist_ok=True)
    for name, unit in units.items():
        (directory / f"{name}.toml").write_text(tomli_w.dumps(unit))
    runtime = tmp_path / "run"
    p = pidone(["--units", str(directory), "--runtime-dir", str(runtime), *extra],
               env={**os.environ, **(env or {})}, **kwargs)
    p.runtime = runtime
    p.units_dir = directory
    p.wait_ready()
    wait_for((runtime / "private" / "control.sock").exists, 15, "the control socket")
    return p


def cli(p, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    argv = [PY, "-m", "pidone", *args, "--runtime-dir", str(p.runtime)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def status(p) -> dict[str, dict]:
    out = cli(p, "status", "--json")
    assert out.returncode == 0, out.stderr
    return {unit["unit"]: unit for unit in json.loads(out.stdout)["units"]}


def wait_state(p, name: str, wanted: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (s := status(p)[name])["state"] == wanted and s, timeout, f"{name} {wanted}")


def sleeper(**service) -> dict:
    return {"service": {"command": ["sleep", "600"], **service}}


# -- enabled and [conditions] -------------------------------------------------------


def test_a_disabled_unit_is_present_and_starts_only_when_asked(pidone, tmp_path):
    p = start(pidone, tmp_path, {"web": sleeper(), "admin": {"enabled": False, **sleeper()}})
    wait_state(p, "web", "running")
    units = status(p)
    assert units["admin"]["state"] == "inactive" and units["admin"]["enabled"] is False
    assert cli(p, "reload").returncode == 0
    assert status(p)["admin"]["state"] == "inactive", "a reload must not start a disabled unit"
    out = cli(p, "start", "--wait", "admin")
    assert out.returncode == 0, out.stderr
    assert status(p)["admin"]["pid"]


def test_conditions_skip_a_unit_and_its_requirers_still_start(pidone, tmp_path):
    flag = tmp_path / "flag"
    units = {
        "gated": {**sleeper(), "conditions": {"path_exists": [str(flag)]}},
        "web": {**sleeper(), "dependencies": {"requires": ["gated"]}},
        "envok": {**sleeper(), "conditions": {"environment": ["MODE=prod", "!MAINTENANCE"],
                                              "path_exists": [f"!{flag}"]}},
        "envno": {**sleeper(), "conditions": {"environment": ["FEATURE_X"]}},
    }
    p = start(pidone, tmp_path, units, env={"MODE": "prod", "FEATURE_X": ""})
    web = wait_state(p, "web", "running")
    assert web["pid"]
    gated = status(p)["gated"]
    assert gated["state"] == "skipped (condition)" and gated["pid"] is None
    assert gated["reason"] == f"condition failed: path_exists '{flag}'"
    assert status(p)["envok"]["state"] == "running"
    envno = status(p)["envno"]
    assert envno["state"] == "skipped (condition)" and "FEATURE_X" in envno["reason"]
    text = cli(p, "status").stdout
    assert f"gated: condition failed: path_exists '{flag}'" in text
    assert "unit gated: skipped (condition)" in p.output()
    out = cli(p, "start", "--wait", "envno")  # as systemctl: a false condition is not an error
    assert out.returncode == 0 and status(p)["envno"]["state"] == "skipped (condition)", out.stderr
    # Checked again at each start: once the path exists, it starts.
    flag.touch()
    out = cli(p, "start", "--wait", "gated")
    assert out.returncode == 0, out.stderr
    assert status(p)["gated"]["state"] == "running"


# -- exit statuses, ignore_sigpipe, stop modes, part_of --------------------------------


def test_success_and_prevent_exit_statuses(pidone, tmp_path):
    units = {
        "clean3": {"service": {"command": ["sh", "-c", "exit 3"], "success_exit_status": [3]}},
        "byterm": {"service": {"command": ["sh", "-c", "kill -TERM $$"], "success_exit_status": ["SIGTERM"]}},
        "fatal": {"service": {"command": ["sh", "-c", "exit 78"]},
                  "restart": {"policy": "always", "prevent_exit_status": [78], "delay": "10ms"}},
        "plain": {"service": {"command": ["sh", "-c", "exit 3"]}, "restart": {"policy": "no"}},
    }
    p = start(pidone, tmp_path, units)
    assert wait_state(p, "clean3", "exited")["last_exit"] == "exited with status 3"
    assert wait_state(p, "byterm", "exited")["last_exit"] == "killed by SIGTERM"
    fatal = wait_state(p, "fatal", "failed")
    assert fatal["restarts"] == 0 and "prevent_exit_status" in fatal["reason"]
    assert wait_state(p, "plain", "failed")["last_exit"] == "exited with status 3"


def test_ignore_sigpipe_starts_the_command_with_sigpipe_ignored(pidone, tmp_path):
    show = ["sh", "-c", "grep SigIgn /proc/$$/status; exec sleep 600"]
    p = start(pidone, tmp_path, {"ign": {"service": {"command": show, "ignore_sigpipe": True}},
                                 "dfl": {"service": {"command": show}}})
    masks = {}
    for name in ("ign", "dfl"):
        line = p.find_line(rf"^{name} \| SigIgn:").decode()
        masks[name] = int(line.split()[-1], 16)
    sigpipe = 1 << (13 - 1)
    assert masks["ign"] & sigpipe and not masks["dfl"] & sigpipe


CHILD = ("trap 'echo child got TERM; exit 0' TERM; echo child up; "
         "while :; do touch {mark}; sleep 0.05; done")


def mode_unit(tmp_path: Path, name: str, mode: str) -> dict:
    mark = tmp_path / f"{name}.mark"
    child = CHILD.format(mark=mark)
    return {"service": {"command": ["sh", "-c", f'sh -c "{child}" & exec sleep 600']},
            "stop": {"mode": mode, "timeout": "1s"}}


def test_stop_modes(pidone, tmp_path):
    units = {mode: mode_unit(tmp_path, mode, mode) for mode in ("group", "mixed", "process")}
    p = start(pidone, tmp_path, units)
    for mode in units:
        p.find_line(rf"^{mode} \| child up")
    for mode in units:
        out = cli(p, "stop", "--wait", mode)
        assert out.returncode == 0, out.stderr
    output = p.output()
    assert "group | child got TERM" in output
    assert "mixed | child got TERM" not in output and "unit mixed: did not stop within 1s" in output
    assert "process | child got TERM" not in output and "unit process: did not stop" not in output
    # process: the child is left running (it keeps touching its mark).
    mark = tmp_path / "process.mark"
    before = mark.stat().st_mtime_ns
    wait_for(lambda: mark.stat().st_mtime_ns > before, 5, "the process-mode child to live on")
    assert status(p)["process"]["state"] == "inactive" and status(p)["process"]["orphans"] == []


def test_part_of_follows_restart_and_stop(pidone, tmp_path):
    units = {"db": sleeper(), "worker": {**sleeper(), "dependencies": {"part_of": ["db"], "after": ["db"]}},
             "web": {**sleeper(), "dependencies": {"after": ["db"]}}}
    p = start(pidone, tmp_path, units)
    before = {name: wait_state(p, name, "running")["pid"] for name in units}
    out = cli(p, "restart", "--wait", "db")
    assert out.returncode == 0, out.stderr
    after = {name: wait_state(p, name, "running")["pid"] for name in units}
    assert after["db"] != before["db"] and after["worker"] != before["worker"]
    assert after["web"] == before["web"]
    p.find_line(r"unit worker: restarting with db \(part_of\)")
    assert cli(p, "stop", "--wait", "db").returncode == 0
    assert wait_state(p, "worker", "inactive")["reason"] == "stopped with db"
    assert status(p)["web"]["state"] == "running"
    out = subprocess.run([PY, "-m", "pidone", "check", str(p.units_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# -- runtime and state directories ------------------------------------------------------


import pwd  # noqa: E402
import shutil  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def dirname(tmp_path):
    """A name unique to this test below /run and /var/lib, removed afterwards."""
    name = f"pidone-test-{os.getpid()}-{tmp_path.name}"
    yield name
    for base in ("/run", "/var/lib"):
        path = Path(base) / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)


def test_directories_are_made_owned_named_and_the_runtime_one_removed(pidone, tmp_path, dirname):
    nobody = pwd.getpwnam("nobody")
    show = ["sh", "-c", 'echo "rt=$RUNTIME_DIRECTORY st=$STATE_DIRECTORY"; touch "${RUNTIME_DIRECTORY%%:*}/x"; '
                        "exec sleep 600"]
    unit = {"service": {"command": show, "user": "nobody", "runtime_directory": [dirname, f"{dirname}/sub"],
                        "state_directory": dirname, "directory_mode": "0750"}}
    p = start(pidone, tmp_path, {"app": unit})
    line = p.find_line(r"^app \| rt=").decode()
    assert f"rt=/run/{dirname}:/run/{dirname}/sub st=/var/lib/{dirname}" in line
    for path in (Path("/run") / dirname, Path("/run") / dirname / "sub", Path("/var/lib") / dirname):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (nobody.pw_uid, nobody.pw_gid), path
        assert info.st_mode & 0o777 == 0o750, path
    wait_for((Path("/run") / dirname / "x").exists, 10, "the unit to write in its runtime directory")
    assert cli(p, "stop", "--wait", "app").returncode == 0
    wait_for(lambda: not (Path("/run") / dirname).exists(), 10, "the runtime directory to be removed")
    assert (Path("/var/lib") / dirname).is_dir(), "the state directory is kept"


def test_a_symlinked_directory_is_refused_and_never_chowned(pidone, tmp_path, dirname):
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(target, Path("/run") / dirname)
    unit = {"service": {"command": ["sleep", "600"], "user": "nobody", "runtime_directory": f"{dirname}/sub"},
            "restart": {"policy": "no"}}
    p = start(pidone, tmp_path, {"app": unit})
    failed = wait_state(p, "app", "failed")
    assert failed["reason"] == (f"unable to create directory /run/{dirname}/sub: '{dirname}' is a symlink or "
                                "not a directory; refusing to follow it")
    assert target.stat().st_uid == 0 and not (target / "sub").exists()
    # Stopping it must not follow the symlink either.
    assert Path("/run", dirname).is_symlink() and target.is_dir()


def test_a_directory_that_cannot_be_made_fails_the_start_naming_it(pidone, tmp_path, dirname):
    (Path("/run") / dirname).write_text("a file, not a directory")
    unit = {"service": {"command": ["sleep", "600"], "runtime_directory": f"{dirname}/sub"},
            "restart": {"policy": "no"}}
    p = start(pidone, tmp_path, {"app": unit, "other": sleeper()})
    failed = wait_state(p, "app", "failed")
    assert failed["reason"].startswith(f"unable to create directory /run/{dirname}/sub: ")
    assert status(p)["other"]["state"] == "running"


# -- hooks ---------------------------------------------------------------------------------


def appender(path: Path, text: str) -> list[str]:
    return ["sh", "-c", f'echo "{text}" >> {path}']


def test_hooks_run_in_order_as_the_unit_with_their_output_marked(pidone, tmp_path):
    trace = tmp_path / "trace"
    service = {
        "command": ["sh", "-c", f"echo main >> {trace}; exec sleep 600"],
        "environment": {"WHO": "app"},
        "exec_start_pre": [appender(trace, "pre1 $WHO"), ["-sh", "-c", f"echo pre2 >> {trace}; exit 7"],
                           ["sh", "-c", "echo hello from pre"]],
        "exec_start_post": appender(trace, "post"),
        "exec_reload": appender(trace, "reload"),
        "exec_stop": appender(trace, "stop"),
        "exec_stop_post": appender(trace, "stop-post $SERVICE_RESULT $EXIT_CODE $EXIT_STATUS"),
    }
    p = start(pidone, tmp_path, {"app": {"service": service}})
    wait_state(p, "app", "running")
    p.find_line(r"^app \[exec_start_pre\] \| hello from pre$")
    p.find_line(r"unit app: exec_start_pre 2/3 \(sh -c .*\) exited with status 7; ignored")
    assert trace.read_text().splitlines() == ["pre1 app", "pre2", "main", "post"]
    out = cli(p, "reload", "app")
    assert out.returncode == 0 and "exec_reload" in out.stdout, out.stderr
    wait_for(lambda: "reload" in trace.read_text(), 10, "exec_reload")
    assert cli(p, "stop", "--wait", "app").returncode == 0
    assert trace.read_text().splitlines()[-2:] == ["stop", "stop-post success killed TERM"]
    assert status(p)["app"]["state"] == "inactive"


def test_a_failed_start_hook_fails_the_start_names_the_step_and_runs_stop_post(pidone, tmp_path):
    trace = tmp_path / "trace"
    units = {
        "pre": {"service": {"command": ["sleep", "600"], "exec_start_pre": ["sh", "-c", "exit 3"],
                            "exec_stop_post": appender(trace, "post $SERVICE_RESULT")},
                "restart": {"policy": "no"}},
        "post": {"service": {"command": ["sleep", "600"], "exec_start_post": "false"}, "restart": {"policy": "no"}},
        "missing": {"service": {"command": ["sleep", "600"], "exec_start_pre": "/nonexistent/hook"},
                    "restart": {"policy": "no"}},
    }
    p = start(pidone, tmp_path, units)
    pre = wait_state(p, "pre", "failed")
    assert pre["failed_step"] == "exec_start_pre"
    assert pre["reason"] == "exec_start_pre failed: sh -c 'exit 3': exited with status 3"
    wait_for(lambda: trace.exists() and trace.read_text() == "post exit-code\n", 10, "exec_stop_post")
    post = wait_state(p, "post", "failed")
    assert post["failed_step"] == "exec_start_post" and post["pid"] is None
    missing = wait_state(p, "missing", "failed")
    assert missing["failed_step"] == "exec_start_pre"
    assert "unable to find the command /nonexistent/hook" in missing["reason"] or \
        "/nonexistent/hook: No such file or directory" in missing["reason"], missing["reason"]
    assert "failed_step" in cli(p, "status", "--json").stdout


def test_a_hanging_hook_is_killed_at_the_timeout_with_what_it_started(pidone, tmp_path):
    pids = tmp_path / "pids"
    hang = ["sh", "-c", f"sleep 600 & echo $! > {pids}; sleep 600"]
    units = {"hang": {"service": {"command": ["sleep", "600"], "exec_start_pre": hang},
                      "ready": {"timeout": "4s"}, "restart": {"policy": "no"}}}
    p = start(pidone, tmp_path, units)
    assert wait_state(p, "hang", "start-pre")["step"] == "exec_start_pre"
    failed = wait_state(p, "hang", "failed")
    assert failed["failed_step"] == "exec_start_pre"
    assert failed["reason"] == "not started within 4s: exec_start_pre still running"
    child = pids.read_text().strip()
    alive = p.run_inside(["sh", "-c", f"test -d /proc/{child} && ! grep -q '^State:.*Z' /proc/{child}/status"])
    assert alive.returncode != 0, "the hook's child must be killed with it"


def test_a_hook_status_is_its_own_under_an_orphan_storm(pidone, tmp_path):
    storm = "for i in $(seq 3000); do (true &) ; done; exec sleep 600"
    units = {
        "storm": {"service": {"command": ["sh", "-c", storm]}},
        "bad": {"service": {"command": ["sleep", "600"], "exec_start_pre": ["sh", "-c", "sleep 0.5; exit 3"]},
                "restart": {"policy": "no"}},
        "good": {"service": {"command": ["sleep", "600"], "exec_start_pre": ["sh", "-c", "sleep 0.5; exit 0"],
                             "exec_start_post": ["sh", "-c", "sleep 0.2"]}},
    }
    p = start(pidone, tmp_path, units)
    assert wait_state(p, "bad", "failed", timeout=60)["reason"].endswith("exited with status 3")
    assert wait_state(p, "good", "running", timeout=60)["pid"]

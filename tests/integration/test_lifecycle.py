"""SPEC §11 as PID 1 with real processes: disabled units, conditions, exit
statuses, stop modes, part_of, runtime and state directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pidone_harness import start_units, wait_for

PY = sys.executable


def start(pidone, tmp_path: Path, units: dict[str, dict], *extra, env: dict | None = None, **kwargs):
    p = start_units(pidone, tmp_path, units, *extra, env={**os.environ, **(env or {})}, **kwargs)
    p.units_dir = p.units
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
        # $$$$ in a unit's command is the shell's $$ (pidone expands $$ to $: SPEC §12).
        "byterm": {"service": {"command": ["sh", "-c", "kill -TERM $$$$"], "success_exit_status": ["SIGTERM"]}},
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
    show = ["sh", "-c", "grep SigIgn /proc/$$$$/status; exec sleep 600"]
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
    show = ["sh", "-c", 'echo "rt=$RUNTIME_DIRECTORY st=$STATE_DIRECTORY"; touch "$${RUNTIME_DIRECTORY%%:*}/x"; '
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


# -- forking ---------------------------------------------------------------------------------

DAEMON = """
import os, sys, time
pid_file = sys.argv[1] if len(sys.argv) > 1 else None
if os.fork():
    sys.exit(0)  # the command's first process: exit 0 once the daemon is on its way
os.setsid()
if os.fork():
    os._exit(0)
time.sleep(0.2)  # written a little after the first process has gone, as daemons do
if pid_file:
    with open(pid_file + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\\n")
    os.rename(pid_file + ".tmp", pid_file)
print("daemon up", os.getpid(), flush=True)
time.sleep(600)
"""


def forking(tmp_path: Path, pid_file: Path | None = None, **service) -> dict:
    script = tmp_path / "daemon.py"
    script.write_text(DAEMON)
    command = [PY, str(script)] + ([str(pid_file)] if pid_file else [])
    unit = {"service": {"command": command, "type": "forking", **service}, "ready": {"timeout": "5s"},
            "restart": {"policy": "on-failure", "delay": "50ms"}}
    if pid_file:
        unit["service"]["pid_file"] = str(pid_file)
    return unit


def test_forking_with_and_without_a_pid_file_is_supervised_like_any_main_process(pidone, tmp_path):
    pid_file = tmp_path / "app.pid"
    p = start(pidone, tmp_path, {"withfile": forking(tmp_path, pid_file), "nofile": forking(tmp_path)})
    with_file = wait_state(p, "withfile", "running")
    assert with_file["pid"] == int(pid_file.read_text())
    no_file = wait_state(p, "nofile", "running")
    daemon_line = p.find_line(rf"^nofile \| daemon up {no_file['pid']}$")
    assert daemon_line
    # Its exit is the unit's exit: the restart policy applies.
    assert p.run_inside(["kill", "-KILL", str(with_file["pid"])]).returncode == 0
    wait_for(lambda: status(p)["withfile"]["restarts"] >= 1, 15, "a restart")
    again = wait_state(p, "withfile", "running")
    assert again["pid"] != with_file["pid"] and again["pid"] == int(pid_file.read_text())
    assert cli(p, "stop", "--wait", "withfile", "nofile").returncode == 0
    assert status(p)["nofile"]["state"] == "inactive"


def test_forking_refuses_a_pid_file_it_cannot_trust(pidone, tmp_path):
    (tmp_path / "target").write_text("1\n")
    os.symlink(tmp_path / "target", tmp_path / "link.pid")
    (tmp_path / "one.pid").write_text("1\n")
    other = tmp_path / "other.pid"
    once = {"restart": {"policy": "no"}, "ready": {"timeout": "3s"}}
    units = {
        "other": {"service": {"command": ["sh", "-c", f"echo $$$$ > {other}; exec sleep 600"]}},
        "symlink": {"service": {"command": ["true"], "type": "forking", "pid_file": str(tmp_path / "link.pid")},
                    **once},
        "pid1": {"service": {"command": ["true"], "type": "forking", "pid_file": str(tmp_path / "one.pid")}, **once},
        "foreign": {"service": {"command": ["sh", "-c", f"cp {other} {tmp_path}/foreign.pid"], "type": "forking",
                                "pid_file": str(tmp_path / "foreign.pid")},
                    "dependencies": {"after": ["other"]}, **once},
        "never": {"service": {"command": ["true"], "type": "forking", "pid_file": str(tmp_path / "never.pid")},
                  **once},
        "empty": {"service": {"command": ["touch", str(tmp_path / "empty.pid")], "type": "forking",
                              "pid_file": str(tmp_path / "empty.pid")}, **once},
        "exit1": {"service": {"command": ["false"], "type": "forking", "pid_file": str(tmp_path / "x.pid")}, **once},
    }
    p = start(pidone, tmp_path, units)
    reasons = {name: wait_state(p, name, "failed")["reason"] for name in units if name != "other"}
    assert reasons["symlink"] == f"pid_file {tmp_path}/link.pid is a symlink; refusing to follow it"
    assert reasons["pid1"] == f"pid_file {tmp_path}/one.pid names PID 1, which is never a unit's"
    assert reasons["foreign"].endswith("which is not a process of this unit"), reasons["foreign"]
    assert reasons["never"] == (f"not started within 3s: waiting for pid_file {tmp_path}/never.pid: "
                                "No such file or directory")
    assert reasons["empty"] == f"not started within 3s: pid_file {tmp_path}/empty.pid is empty"
    assert reasons["exit1"] == "exited with status 1"
    assert status(p)["other"]["state"] == "running"
    assert status(p)["symlink"]["failed_step"] == "command"


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/setup installs nginx-light)")
def test_nginx_with_its_debian_commands_starts_reloads_and_stops(pidone, tmp_path):
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "nginx.conf"
    pid_file = tmp_path / "nginx.pid"

    def write_conf(text: str) -> None:
        conf.write_text(f"""
            pid {pid_file};
            error_log stderr;
            events {{ worker_connections 64; }}
            http {{
                access_log off;
                server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{text}\\n"; }} }}
            }}
        """)

    write_conf("first")
    daemon = ["-c", str(conf), "-g", "daemon on; master_process on;"]
    unit = {"service": {"type": "forking", "pid_file": str(pid_file), "command": [NGINX, *daemon],
                        "exec_start_pre": [NGINX, "-t", "-q", *daemon],
                        "exec_reload": [NGINX, *daemon, "-s", "reload"]},
            "stop": {"signal": "SIGQUIT", "timeout": "5s"}}
    p = start(pidone, tmp_path, {"nginx": unit})

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.read().decode().strip()

    try:
        master = wait_state(p, "nginx", "running", timeout=30)["pid"]
    except AssertionError:
        raise AssertionError(f"{status(p)['nginx']}\n{p.output()}") from None
    assert master == int(pid_file.read_text())
    assert get() == "first"
    write_conf("second")
    out = cli(p, "reload", "nginx")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: get() == "second", 15, "nginx to serve the reloaded configuration")
    assert status(p)["nginx"]["pid"] == master and status(p)["nginx"]["state"] == "running"
    assert cli(p, "stop", "--wait", "nginx").returncode == 0
    stopped = status(p)["nginx"]
    assert stopped["state"] == "inactive" and stopped["last_exit"] == "exited with status 0", stopped
    with pytest.raises(OSError):
        get()


# -- watchdog ---------------------------------------------------------------------------------

PINGER = """
import os, socket, sys, time
print("env", os.environ["WATCHDOG_USEC"], os.environ["WATCHDOG_PID"] == str(os.getpid()), flush=True)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    sock.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])
    time.sleep(0.3)
print("silent now", flush=True)
time.sleep(600)
"""


def test_watchdog_missed_is_a_failure_with_sigabrt_then_the_restart_policy(pidone, tmp_path):
    script = tmp_path / "pinger.py"
    script.write_text(PINGER)
    units = {
        "hung": {"service": {"command": [PY, str(script), "4"]}, "health": {"watchdog": "1s"},
                 "restart": {"delay": "10ms", "max_retries": 0}},
        "alive": {"service": {"command": [PY, str(script), "100000"]}, "health": {"watchdog": "1s"}},
    }
    p = start(pidone, tmp_path, units)
    assert p.find_line(r"^hung \| env ").decode().split()[-2:] == ["1000000", "True"]
    p.find_line(r"^hung \| silent now")
    p.find_line(r"unit hung: watchdog: no WATCHDOG=1 for 1s: sending SIGABRT", timeout=10)
    p.find_line(r"unit hung: main process killed by SIGABRT", timeout=10)
    wait_for(lambda: status(p)["hung"]["restarts"] >= 1, 10, "the restart policy")
    alive = status(p)["alive"]
    assert alive["state"] == "running" and alive["restarts"] == 0

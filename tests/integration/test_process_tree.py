"""The two ways pidone finds a unit's processes agree: the walk down from
its own children (sysdeps.unit_members, the fast path) and the scan of every
process in /proc (sysdeps.unit_processes), on a real process tree with every
shape a unit's leftovers can take, built under a real PID 1."""

from __future__ import annotations

import json
import subprocess
import sys

from pidone_harness import ROOT

# Runs as PID 1 of a fresh PID namespace (so orphans come to it, as to
# pidone). Unit u's main process has exited; unit v's is alive.
TREE = r'''
import json, os, sys, time
SRC = sys.argv[1]
sys.path.insert(0, SRC)
from pidone.sysdeps import orphan_roots, unit_members, unit_processes


def sleeper(env=None):
    os.execve("/bin/sleep", ["sleep", "60"], os.environ if env is None else env)


def child(body):
    if os.fork() == 0:
        try:
            body()
        finally:
            os._exit(0)


def run_unit(shapes):
    def member_with_child(): child(sleeper); sleeper()
    def escapee_with_member_child():  # the child stays in the session, its parent leaves
        child(sleeper); time.sleep(0.2); os.setsid(); sleeper()
    def orphaned_escapee():  # double fork: the grandchild leaves the session and is orphaned
        child(lambda: (os.setsid(), sleeper()))
    def untagged_escapee():
        os.setsid(); sleeper({k: v for k, v in os.environ.items() if k != "PIDONE_UNIT"})
    for shape in shapes:
        if shape != "exit":
            child(locals()[shape])
    time.sleep(0.5)  # the escapees' setsid() after 0.2 s
    os.write(int(os.environ["BUILT_FD"]), b"x")  # this unit's tree is complete
    if "exit" in shapes:
        os._exit(0)
    sleeper()


if sys.argv[2] == "unit":
    run_unit(sys.argv[3:])

built_r, built_w = os.pipe()
os.set_inheritable(built_w, True)


def spawn_unit(name, shapes):
    pid = os.fork()
    if pid == 0:
        os.setsid()
        env = {**os.environ, "PIDONE_UNIT": name, "BUILT_FD": str(built_w)}
        os.execve(sys.executable, [sys.executable, __file__, SRC, "unit", *shapes], env)
    return pid

u = spawn_unit("u", ["member_with_child", "escapee_with_member_child", "orphaned_escapee", "untagged_escapee", "exit"])
v = spawn_unit("v", ["member_with_child", "orphaned_escapee"])
assert len(os.read(built_r, 1)) + len(os.read(built_r, 1)) == 2
os.waitpid(u, 0)  # u's main is gone: its processes hang below us now
results = {}
for name, sid in (("u", u), ("v", v)):
    for tagged in (False, True):
        own = [sid] if sid != u else []  # u's main is gone; v's is ours and alive
        roots = own + orphan_roots(lambda pid: pid in (u, v))
        walk = unit_members(sid, roots, tag=f"PIDONE_UNIT={name}".encode() if tagged else None)
        scan = unit_processes(sid, name, tagged=tagged)
        results[f"{name} tagged={tagged}"] = [sorted(walk), sorted(scan)]
print(json.dumps(results), flush=True)
os.kill(-1, 9)
'''


def test_the_walk_from_our_children_finds_what_the_proc_scan_finds(tmp_path):
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                          sys.executable, str(script), str(ROOT / "src"), "build"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode in (0, -9, 137) and out.stdout, out.stderr
    results = json.loads(out.stdout.splitlines()[0])
    for case, (walk, scan) in results.items():
        assert walk == scan, case
    # u: a member with its child, and the child an escapee left behind in
    # the session; with the tag also that escapee and an orphaned one (the
    # escapee without the tag is nobody's). v: its main, a member, its child;
    # with the tag its orphaned escapee.
    counts = {case: len(walk) for case, (walk, _) in results.items()}
    assert counts == {"u tagged=False": 3, "u tagged=True": 5, "v tagged=False": 3, "v tagged=True": 4}

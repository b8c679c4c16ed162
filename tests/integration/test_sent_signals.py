"""SIGPIPE and SIGXFSZ sent to PID 1 (`docker kill -s PIPE`) reach the
main command of tini mode like any other catchable signal; the SIGPIPE the
kernel raises for pidone's own write to a closed pipe is never passed on
and never kills PID 1."""

from __future__ import annotations

import os
import select
import signal
import sys
from pathlib import Path

import tomli_w

from pidone_harness import proc_status, wait_for

PY = sys.executable

# The main command: records every signal it gets in argv[1].
RECORDER = """
import signal, sys
path = sys.argv[1]
wanted = {signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
with open(path, 'a') as f:
    f.write('ready\\n')
while True:
    info = signal.sigwaitinfo(wanted)
    with open(path, 'a') as f:
        f.write(f'got {info.si_signo}\\n')
    if info.si_signo == signal.SIGTERM:
        break
"""

# A unit whose output pidone copies to its stdout; it counts its lines in argv[1].
CHATTER = "i=0; while :; do i=$((i+1)); echo line $i; echo $i > \"$0\"; sleep 0.02; done"


def got(record: Path, signum: int) -> int:
    return record.read_text().count(f"got {int(signum)}\n") if record.exists() else 0


def test_sent_sigpipe_and_sigxfsz_are_forwarded_and_pidones_own_sigpipe_is_not(pidone, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    count = tmp_path / "count"
    (units / "chatter.toml").write_text(tomli_w.dumps({"service": {"command": ["sh", "-c", CHATTER, str(count)]}}))
    record = tmp_path / "record"
    out_r, out_w = os.pipe()
    try:
        p = pidone(["--units", str(units), "--runtime-dir", str(tmp_path / "run"), "--", PY, "-c", RECORDER, str(record)],
                   stdout=out_w)
        os.close(out_w)
        out_w = None
        p.wait_ready()
        wait_for(lambda: record.exists() and "ready" in record.read_text(), 15, "the main command to start")
        assert select.select([out_r], [], [], 15)[0], "pidone's output never came"
        os.read(out_r, 65536)

        # Sent from the host, as `docker kill -s` does: both reach it.
        for signum in (signal.SIGPIPE, signal.SIGXFSZ):
            p.kill(signum)
            wait_for(lambda s=signum: got(record, s) == 1, 10, f"{signum.name} to reach the main command")

        # The reader of pidone's stdout goes away: its next write fails with
        # EPIPE and the kernel raises SIGPIPE in pidone, which keeps it.
        os.close(out_r)
        out_r = None
        seen = int(count.read_text() or 0)
        wait_for(lambda: int(count.read_text() or 0) > seen + 10, 10, "the unit to print ten more lines")
        # A sent SIGXFSZ comes through the same signalfd after the kernel's
        # SIGPIPE: once it is recorded, that SIGPIPE has been read too.
        p.kill(signal.SIGXFSZ)
        wait_for(lambda: got(record, signal.SIGXFSZ) == 2, 10, "the second SIGXFSZ")
        assert got(record, signal.SIGPIPE) == 1, record.read_text()
        assert proc_status(p.pid1).get("State", "").startswith(("S", "R")), "PID 1 must be alive"

        p.kill(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
        assert "Traceback" not in p.stderr_text()
    finally:
        for fd in (out_r, out_w):
            if fd is not None:
                os.close(fd)

"""An empty argv word reaches the service as an empty argument, under real
PID 1: `redis-server --save ""` is how Redis is told not to snapshot."""

from __future__ import annotations

import json
import signal
import sys
import textwrap

from pidone_harness import wait_for

PY = sys.executable


def test_an_empty_word_reaches_the_process_as_an_empty_argument(pidone, tmp_path):
    units = tmp_path / "units"
    units.mkdir()
    out_array, out_string = tmp_path / "array.json", tmp_path / "string.json"
    dump = "import json, sys, time; open(sys.argv[1], 'w').write(json.dumps(sys.argv[1:])); time.sleep(600)"
    (units / "array.toml").write_text(textwrap.dedent(f"""
        [service]
        command = {[PY, "-c", dump, str(out_array), "--save", "", "--logfile", ""]!r}
    """))
    (units / "string.toml").write_text(textwrap.dedent(f"""
        [service]
        command = '''{PY} -c "{dump}" {out_string} --save "" --logfile '' '''
    """))
    p = pidone(["--units", str(units), "--runtime-dir", str(tmp_path / "run")])
    def written(path):
        assert p.proc.poll() is None, f"pidone exited: {p.output()}"
        return path.exists() and path.read_text()

    for path in (out_array, out_string):
        text = wait_for(lambda: written(path), 15, f"{path.name} to be written")
        assert json.loads(text) == [str(path), "--save", "", "--logfile", ""]
    p.kill(signal.SIGTERM)
    assert p.wait() == 0

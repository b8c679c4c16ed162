"""Benchmark: load and plan 1,000 and 10,000 unit files (load_directory + graph.check + graph.start_batches).

Each unit is realistic: a command, a type, a few settings and about three
dependencies on earlier units (a random DAG, fixed seed). The `mixed` shape
makes half of the units plain files with a drop-in each, and half instances
of 10 templates (each with a template drop-in, `%i` in its strings, and a
dependency on a plain unit). Prints a table and one JSON line; the bar is
1,000 units in under 0.5 s, for each shape.

    .venv/bin/python benchmarks/load_units.py [--sizes 1000,10000] [--shapes plain,mixed] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time

from pidone import graph
from pidone.loader import load_directory

BAR_SECONDS = 0.5  # for 1,000 units


def write_units(directory: str, count: int, seed: int = 1) -> None:
    """Write `count` unit files into `directory`, each depending on up to 3 earlier units."""
    rng = random.Random(seed)
    for i in range(count):
        deps = sorted({f"u{rng.randrange(i)}" for _ in range(3)}) if i else []
        kind = rng.choice(["requires", "wants", "after"])
        unit_type = "oneshot" if i % 5 == 0 else "simple"
        text = (
            f'description = "generated unit {i}"\n\n'
            "[service]\n"
            f'command = ["/bin/sh", "-c", "echo unit {i}; sleep {rng.randint(1, 9)}"]\n'
            f'type = "{unit_type}"\n'
            f'environment = {{ UNIT_INDEX = "{i}", MODE = "bench" }}\n\n'
            "[dependencies]\n"
            f"{kind} = {json.dumps(deps)}\n\n"
            "[restart]\n"
            f'delay = "{rng.randint(100, 900)}ms"\n'
            "max_retries = 3\n\n"
            "[stop]\n"
            'signal = "SIGTERM"\n'
            "timeout = 5\n"
        )
        with open(os.path.join(directory, f"u{i}.toml"), "w") as file:
            file.write(text)


TEMPLATES = 10


def write_mixed(directory: str, count: int, seed: int = 1) -> None:
    """Write `count` units: half plain files with one drop-in each, half instances of TEMPLATES templates."""
    plain = count - count // 2
    write_units(directory, plain, seed)
    for i in range(plain):
        os.mkdir(os.path.join(directory, f"u{i}.toml.d"))
        with open(os.path.join(directory, f"u{i}.toml.d", "50-derived.toml"), "w") as file:
            file.write(f'[service]\nenvironment = {{ DERIVED = "{i}" }}\n[restart]\nmax_retries = 4\n')
    per_template = [len(range(t, count // 2, TEMPLATES)) for t in range(TEMPLATES)]
    for t, instances in enumerate(per_template):
        names = json.dumps([str(n) for n in range(instances)])
        with open(os.path.join(directory, f"t{t}@.toml"), "w") as file:
            file.write(
                f'description = "worker %i of %p"\ninstances = {names}\n\n'
                "[service]\n"
                'command = "/usr/bin/worker --id %i --name %n ${WORKER_OPTS:-}"\n'
                'environment = { WORKER = "%n", MODE = "bench" }\n\n'
                "[dependencies]\n"
                f'requires = ["u{t}"]\n\n'
                "[restart]\n"
                'delay = "200ms"\n'
            )
        os.mkdir(os.path.join(directory, f"t{t}@.toml.d"))
        with open(os.path.join(directory, f"t{t}@.toml.d", "50-derived.toml"), "w") as file:
            file.write("[stop]\ntimeout = 5\n")


def time_once(directory: str, count: int) -> float:
    """Return the seconds one load + check + plan of `directory` takes."""
    started = time.perf_counter()
    result = load_directory(directory)
    errors, _warnings = graph.check(result.units, invalid=result.errors.keys())
    batches = graph.start_batches(result.units)
    elapsed = time.perf_counter() - started
    if not result.ok or errors or sum(map(len, batches)) != count:
        sys.exit(f"benchmark units did not load cleanly: {result.problems()[:3]} {errors[:3]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated unit counts")
    parser.add_argument("--shapes", default="plain,mixed", help="plain files; or mixed: drop-ins and templates")
    parser.add_argument("--runs", type=int, default=5, help="runs per size; the median is reported")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    print(f"{'shape':>6} {'units':>7} {'median s':>9} {'min s':>7} {'per unit µs':>12}")
    for shape in args.shapes.split(","):
        write = {"plain": write_units, "mixed": write_mixed}[shape]
        for count in (int(size) for size in args.sizes.split(",")):
            with tempfile.TemporaryDirectory(prefix="pidone-bench-") as directory:
                os.chmod(directory, 0o755)
                write(directory, count)
                time_once(directory, count)  # warm the page cache and the imports
                times = [time_once(directory, count) for _ in range(args.runs)]
            median = statistics.median(times)
            key = str(count) if shape == "plain" else f"{shape}-{count}"
            results[key] = {"median_s": round(median, 4), "min_s": round(min(times), 4), "runs": args.runs}
            print(f"{shape:>6} {count:>7} {median:>9.3f} {min(times):>7.3f} {median / count * 1e6:>12.1f}")
    verdicts = [results[key]["median_s"] for key in ("1000", "mixed-1000") if key in results]
    print(json.dumps({"benchmark": "load_units", "results": results, "bar_1000_s": BAR_SECONDS,
                      "pass": None if not verdicts else all(v < BAR_SECONDS for v in verdicts)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

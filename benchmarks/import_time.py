"""Import time of nqzoo against its dependencies alone.

`python benchmarks/import_time.py [--runs 7]` starts fresh interpreters, alternating between
`import jax, equinox, jaxtyping, beartype` and `import nqzoo`, times the import statement in
each (interpreter start-up excluded) and prints the medians and their ratio. The goal is a
ratio of at most 1.5. Alternating the two keeps machine drift (other jobs) out of the ratio.

The environment is passed on unchanged: with `PYTHONDONTWRITEBYTECODE=1` nqzoo's modules are
compiled from source at every import (the installed dependencies still have their bytecode).
"""

import argparse
import statistics
import subprocess
import sys


_SNIPPET = """
import time
t = time.perf_counter()
import {modules}
print(time.perf_counter() - t)
"""

CASES = {
    "dependencies": "jax, equinox, jaxtyping, beartype",
    "nqzoo": "nqzoo",
}


def import_seconds(modules: str) -> float:
    """Seconds taken by `import <modules>` in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _SNIPPET.format(modules=modules)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per case (default 7)")
    runs = parser.parse_args().runs
    times = {case: [] for case in CASES}
    for _ in range(runs):
        for case, modules in CASES.items():
            times[case].append(import_seconds(modules))
    medians = {case: statistics.median(ts) for case, ts in times.items()}
    for case, ts in times.items():
        shown = " ".join(f"{t:.2f}" for t in ts)
        print(f"{case:>12}: median {medians[case]:.2f} s  (runs: {shown})")
    print(f"{'ratio':>12}: {medians['nqzoo'] / medians['dependencies']:.2f}  (goal: <= 1.5)")


if __name__ == "__main__":
    main()

"""Side-by-side timings of nqzoo and NetKet on this machine, printed as ratios.

    python benchmarks/compare_netket.py              # every row
    python benchmarks/compare_netket.py rbm autoreg  # only the row groups named
    python benchmarks/compare_netket.py --repeats 30
    python benchmarks/compare_netket.py --settle 0   # strict alternation (see _harness.py)

Row groups live in `benchmarks/rows_<group>.py`; each defines `rows() -> list[Row]`.
Timings are medians of repeated steady-state calls (see `_harness.py`), float64, CPU.
"""

import argparse
import importlib
import pathlib
import sys

import jax


jax.config.update("jax_enable_x64", True)

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

from _harness import format_table, measure  # noqa: E402


def main() -> None:
    groups = sorted(p.stem.removeprefix("rows_") for p in HERE.glob("rows_*.py"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"row groups to run, from {groups}")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--settle",
        type=int,
        default=1,
        help="untimed calls of the same side before each timed call (0: strict alternation)",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.groups) - set(groups))
    if unknown:
        parser.error(f"unknown row groups {unknown}; choose from {groups}")
    print(f"jax {jax.__version__}, devices {jax.devices()}, x64 {jax.config.x64_enabled}")
    results = []
    for group in args.groups or groups:
        module = importlib.import_module(f"rows_{group}")
        for row in module.rows():
            result = measure(row, repeats=args.repeats, settle=args.settle)
            print(format_table([result]).splitlines()[-1], flush=True)
            results.append(result)
    print()
    print(format_table(results))


if __name__ == "__main__":
    main()

"""Side-by-side timings of nqzoo and NetKet on this machine, printed as ratios.

    python benchmarks/compare_netket.py              # every row
    python benchmarks/compare_netket.py rbm autoreg  # only the row groups named
    python benchmarks/compare_netket.py --repeats 30
    python benchmarks/compare_netket.py --shared     # both libraries in one process

Row groups live in `benchmarks/rows_<group>.py`; each defines `rows() -> list[Row]`.
Timings are medians of repeated steady-state calls, float64, CPU.

By default each side of a row group runs in a fresh process of its own (nqzoo, then NetKet),
so neither library is timed while the other's memory and thread pools are still around:
in one process the timings of a side depended on what the other had just run (nqzoo's
DeepSet gradient took 209 to 347 ms between runs of the same code, 212 ms alone). With
`--shared` both run in this process, alternating (see `_harness.py`).
"""

import argparse
import importlib
import json
import pathlib
import subprocess
import sys

import jax


jax.config.update("jax_enable_x64", True)

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

from _harness import format_table, measure, measure_side, Result  # noqa: E402


def _rows(group: str):
    return importlib.import_module(f"rows_{group}").rows()


def _run_side(group: str, side: str, repeats: int) -> None:
    """Child process: time one side of every row of `group`, print one JSON line per row."""
    for row in _rows(group):
        fn = row.nqzoo if side == "nqzoo" else row.netket
        first, median = measure_side(fn, repeats) if fn is not None else (None, None)
        entry = {"name": row.name, "note": row.note, "extra": row.extra}
        print(json.dumps({**entry, "first": first, "median": median}), flush=True)


def _isolated(group: str, repeats: int) -> list[Result]:
    rows, timings = {}, {}
    for side in ("nqzoo", "netket"):
        cmd = [sys.executable, __file__, group, "--side", side, "--repeats", str(repeats)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                rows.setdefault(entry["name"], entry)
                timings[entry["name"], side] = (entry["first"], entry["median"])
    return [
        Result(
            name,
            *timings[name, "nqzoo"],
            *timings[name, "netket"],
            entry["note"],
            entry["extra"],
        )
        for name, entry in rows.items()
    ]


def main() -> None:
    groups = sorted(p.stem.removeprefix("rows_") for p in HERE.glob("rows_*.py"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help=f"row groups to run, from {groups}")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--shared", action="store_true", help="both libraries in this process, alternating"
    )
    parser.add_argument("--side", choices=["nqzoo", "netket"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = sorted(set(args.groups) - set(groups))
    if unknown:
        parser.error(f"unknown row groups {unknown}; choose from {groups}")
    if args.side is not None:
        for group in args.groups:
            _run_side(group, args.side, args.repeats)
        return
    print(f"jax {jax.__version__}, devices {jax.devices()}, x64 {jax.config.x64_enabled}")
    results = []
    for group in args.groups or groups:
        if args.shared:
            group_results = [measure(row, repeats=args.repeats) for row in _rows(group)]
        else:
            group_results = _isolated(group, args.repeats)
        for result in group_results:
            print(format_table([result]).splitlines()[-1], flush=True)
        results += group_results
    print()
    print(format_table(results))


if __name__ == "__main__":
    main()

"""Timing harness shared by the benchmark rows.

A *row* compares one nqzoo callable with one NetKet callable doing the same work. Both are
warmed up (the first call, compile included, is timed separately), then timed `repeats`
times each, each call to completion (`jax.block_until_ready`), and the medians are reported
with the ratio NetKet / nqzoo (> 1 means nqzoo is faster).

`compare_netket.py` runs each side in a process of its own (`measure_side`: the first call,
then back-to-back calls, the steady state a training loop sees). With `--shared`, `measure`
runs both in one process: the sides alternate to average out machine drift, and each timed
call is the second of two back-to-back calls of the same side (`settle=1`). Timing a call
right after the other library's call measures the interference between the two instead:
after NetKet's DeepSet gradient (1.8 GB of scratch memory) the nqzoo gradient took 281 ms
instead of 221 ms, while NetKet's took 689 ms instead of the 838 ms it takes when run alone.
"""

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


@dataclasses.dataclass
class Row:
    """One comparison. `nqzoo` and `netket` take no arguments and return arrays."""

    name: str
    nqzoo: Callable[[], Any]
    netket: Callable[[], Any] | None
    note: str = ""
    #: Extra columns (e.g. a target, cache bytes) printed after the ratio.
    extra: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Result:
    name: str
    nqzoo_first: float
    nqzoo_median: float
    netket_first: float | None
    netket_median: float | None
    note: str
    extra: dict[str, str]

    @property
    def ratio(self) -> float | None:
        if self.netket_median is None:
            return None
        return self.netket_median / self.nqzoo_median


def _time_once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def measure_side(
    fn: Callable[[], Any], repeats: int = 15, min_seconds: float = 3.0
) -> tuple[float, float]:
    """One side alone: the first call, then the median of back-to-back calls, at least
    `repeats` of them and at least `min_seconds` of them (so that a burst of load on the
    machine cannot cover all the calls of a fast row)."""
    first = _time_once(fn)
    times = []
    while len(times) < repeats or sum(times) < min_seconds:
        times.append(_time_once(fn))
    return first, statistics.median(times)


def _settled(fn: Callable[[], Any], settle: int) -> float:
    for _ in range(settle):
        jax.block_until_ready(fn())
    return _time_once(fn)


def measure(row: Row, repeats: int = 15, settle: int = 1) -> Result:
    """First call of each side, then `repeats` timed calls of each side, alternating, each
    after `settle` untimed calls of the same side; medians."""
    nq_first = _time_once(row.nqzoo)
    nk_first = _time_once(row.netket) if row.netket is not None else None
    nq_times, nk_times = [], []
    for _ in range(repeats):
        nq_times.append(_settled(row.nqzoo, settle))
        if row.netket is not None:
            nk_times.append(_settled(row.netket, settle))
    return Result(
        name=row.name,
        nqzoo_first=nq_first,
        nqzoo_median=statistics.median(nq_times),
        netket_first=nk_first,
        netket_median=statistics.median(nk_times) if nk_times else None,
        note=row.note,
        extra=row.extra,
    )


def _ms(t: float | None) -> str:
    return "-" if t is None else f"{1e3 * t:9.2f}"


def format_table(results: list[Result]) -> str:
    """A Markdown table of results."""
    header = (
        "| row | nqzoo ms | NetKet ms | ratio (NetKet/nqzoo) | nqzoo first ms "
        "| NetKet first ms | notes |"
    )
    lines = [header, "|" + "---|" * 7]
    for r in results:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
        notes = "; ".join([r.note] * bool(r.note) + [f"{k}: {v}" for k, v in r.extra.items()])
        lines.append(
            f"| {r.name} | {_ms(r.nqzoo_median)} | {_ms(r.netket_median)} | {ratio} | "
            f"{_ms(r.nqzoo_first)} | {_ms(r.netket_first)} | {notes} |"
        )
    return "\n".join(lines)

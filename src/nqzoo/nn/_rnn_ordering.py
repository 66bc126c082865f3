r"""Autoregressive orderings of recurrent networks: the path through the sites and the
previous neighbours each site reads (NetKet's `netket.experimental.nn.rnn` ordering helpers).

An ordering is three integer arrays (NetKet's names):

- `reorder_idx` `(N,)`: entry `k` is the site visited at step `k` (`x.take(reorder_idx)` puts
  a configuration in autoregressive order);
- `inv_reorder_idx` `(N,)`: its inverse, entry `i` is the step at which site `i` is visited;
- `prev_neighbors` `(N, m)`: row `i` lists sites visited before site `i` whose hidden
  memories site `i` reads, `-1` padding a row with fewer than `m`.

A 1D chain needs none of them (the sites in order, each reading the one before). On a graph,
[`graph_ordering`][nqzoo.nn.graph_ordering] follows NetKet's rule, which on rectangular
lattices (open or periodic) is the snake path of [`snake_ordering`][nqzoo.nn.snake_ordering].
Both accept an nqzoo lattice ([`nqzoo.lattice.Grid`][]; nearest-neighbour edges) or a NetKet
graph (read through its `n_nodes`, `adjacency_list()` and, for the snake, `extent`).
"""

import dataclasses
import functools
import heapq
from typing import Any

import numpy as np
from jaxtyping import Int

from ..lattice import Grid


def _graph(graph: object) -> tuple[int, list[list[int]], tuple[int, ...] | None]:
    """`(n_nodes, sorted adjacency lists, extent or None)` of an nqzoo lattice or NetKet graph."""
    if isinstance(graph, Grid):
        adj: list[list[int]] = [[] for _ in range(graph.n_sites)]
        for i, j in graph.edges(1):
            adj[int(i)].append(int(j))
            adj[int(j)].append(int(i))
        return graph.n_sites, [sorted(a) for a in adj], graph.extent
    if hasattr(graph, "n_nodes") and hasattr(graph, "adjacency_list"):
        extent = getattr(graph, "extent", None)
        extent = None if extent is None else tuple(int(e) for e in np.asarray(extent).ravel())
        adj = [sorted(int(j) for j in a) for a in graph.adjacency_list()]
        return int(graph.n_nodes), adj, extent
    raise TypeError(
        "graph must be an nqzoo lattice (nqzoo.lattice.Grid, Chain, Square) or a NetKet graph "
        f"(with n_nodes and adjacency_list()), got graph={graph!r}."
    )


def _prev_neighbors(adj: list[list[int]], inv: np.ndarray) -> np.ndarray:
    """NetKet's previous neighbours: the graph neighbours visited earlier, at most the median
    count (rounded half up) per site, keeping the largest site indices; sorted, -1 padded."""
    prev = [[j for j in a if inv[j] < inv[i]] for i, a in enumerate(adj)]
    width = int(np.median([len(p) for p in prev]) + 0.5)
    rows = [sorted(p[max(len(p) - width, 0) :] if width else []) for p in prev]
    out = np.full((len(adj), width), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _ordering(reorder_idx: np.ndarray, prev_neighbors: np.ndarray) -> dict[str, np.ndarray]:
    reorder_idx = np.asarray(reorder_idx, dtype=np.int64)
    inv = np.empty_like(reorder_idx)
    inv[reorder_idx] = np.arange(len(reorder_idx))
    arrays = dict(reorder_idx=reorder_idx, inv_reorder_idx=inv, prev_neighbors=prev_neighbors)
    for a in arrays.values():
        a.setflags(write=False)
    return arrays


def graph_ordering(graph: Any) -> dict[str, Int[np.ndarray, "..."]]:
    """The ordering NetKet's recurrent networks derive from a `graph`.

    The path starts at site 0; each step goes to the unvisited graph neighbour of the last
    site whose index is closest to it (the smaller index on a tie), or, with none left, to
    the unvisited site of smallest index. On rectangular lattices, open or periodic, this is
    the snake path. Each site then reads the graph neighbours visited before it, at most
    `m` = the median number of such neighbours (rounded half up), keeping those of largest
    index (NetKet's rule: on a 3x3 open lattice `m = 1`, on larger ones 2).

    NetKet stores this path as `inv_reorder_idx`; here it is `reorder_idx` (the site of each
    step, which is how both libraries sample). The two coincide whenever the path is its own
    inverse, as snake paths are.

    **Arguments:**

    - `graph`: an nqzoo lattice or a NetKet graph.

    **Returns:** `dict(reorder_idx=..., inv_reorder_idx=..., prev_neighbors=...)` of read-only
    int64 arrays, to pass to a recurrent model as keywords.

    **Raises:** `TypeError` for anything that is not a lattice or a graph.
    """
    n, adj, _ = _graph(graph)
    path = np.empty(n, dtype=np.int64)
    visited = np.zeros(n, dtype=bool)
    path[0], visited[0] = 0, True
    for k in range(1, n):
        last = int(path[k - 1])
        free = [j for j in adj[last] if not visited[j]]
        site = min(free, key=lambda j: (abs(j - last), j)) if free else int(np.argmin(visited))
        path[k], visited[site] = site, True
    inv = np.empty(n, dtype=np.int64)
    inv[path] = np.arange(n)
    return _ordering(path, _prev_neighbors(adj, inv))


def snake_ordering(graph: Any) -> dict[str, Int[np.ndarray, "..."]]:
    """The snake (boustrophedon) ordering of a 2D lattice: rows left to right and right to
    left in turn ([`nqzoo.lattice.Grid.snake_order`][]; NetKet's
    `get_snake_inv_reorder_idx`), each site reading its graph neighbours visited before it
    (NetKet's rule, as in [`graph_ordering`][nqzoo.nn.graph_ordering]).

    **Arguments:**

    - `graph`: a 2D nqzoo lattice (`Square`, or `Grid` with two axes) or a 2D NetKet lattice.

    **Returns:** `dict(reorder_idx=..., inv_reorder_idx=..., prev_neighbors=...)` of read-only
    int64 arrays, to pass to a recurrent model as keywords.

    **Raises:** `ValueError` if the lattice is not two-dimensional (a chain needs no
    ordering); `TypeError` for anything that is not a lattice or a graph.
    """
    n, adj, extent = _graph(graph)
    if extent is None or len(extent) != 2 or extent[0] * extent[1] != n:
        raise ValueError(
            f"snake_ordering needs a two-dimensional lattice, got graph={graph!r} with extent="
            f"{extent}. A chain needs no ordering: omit graph, reorder_idx, inv_reorder_idx "
            "and prev_neighbors (or pass graph= for NetKet's ordering of any graph)."
        )
    path = np.arange(n, dtype=np.int64).reshape(extent)
    path[1::2] = path[1::2, ::-1]
    path = path.ravel()
    inv = np.empty(n, dtype=np.int64)
    inv[path] = np.arange(n)
    return _ordering(path, _prev_neighbors(adj, inv))


def _int_array(value: object, argname: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception:  # noqa: BLE001 - reported below as a bad argument
        array = None
    if array is None or array.ndim != ndim or (array.size and array.dtype.kind not in "iu"):
        shape = "(N,)" if ndim == 1 else "(N, n_neighbors)"
        raise ValueError(
            f"{argname} must be an integer array of shape {shape}, got {argname}={value!r}."
        )
    return array.astype(np.int64)


def _permutation(value: object, argname: str, n_sites: int) -> np.ndarray:
    array = _int_array(value, argname, 1)
    if array.shape != (n_sites,) or not np.array_equal(np.sort(array), np.arange(n_sites)):
        raise ValueError(
            f"{argname} must be a permutation of the {n_sites} sites 0..{n_sites - 1}, got "
            f"{argname}={array.tolist()}."
        )
    return array


def _inverse(p: np.ndarray) -> np.ndarray:
    inv = np.empty_like(p)
    inv[p] = np.arange(len(p))
    return inv


def resolve_ordering(
    n_sites: int,
    *,
    reorder_idx: Any = None,
    inv_reorder_idx: Any = None,
    prev_neighbors: Any = None,
    graph: Any = None,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[tuple[int, ...], ...]] | None:
    """Deduce and check the ordering of a recurrent network on `n_sites` sites (NetKet's
    `ensure_prev_neighbors` and `check_reorder_idx`).

    With nothing given, `None`: a chain in site order, each site reading the one before.
    Otherwise one of `reorder_idx` and `inv_reorder_idx` gives the other; with neither, the
    path comes from `graph` ([`graph_ordering`][nqzoo.nn.graph_ordering]); `prev_neighbors`,
    if not given, comes from the graph's edges.

    **Returns:** `None`, or `(reorder_idx, inv_reorder_idx, prev_neighbors)` as tuples of
    ints (hashable, for static fields).

    **Raises:** `ValueError` naming the argument: a graph whose number of sites differs from
    `n_sites`; an index array that is not a permutation of the sites, or two that are not
    inverse; `prev_neighbors` not of shape `(n_sites, m)`, with an entry outside
    `-1..n_sites-1`, a repeated neighbour, or a neighbour visited at the same step or later;
    `prev_neighbors` without a path, or a path with neither `prev_neighbors` nor `graph`.
    `TypeError` for a `graph` that is not a lattice or a graph.
    """
    adj = None
    if graph is not None:
        n_graph, adj, _ = _graph(graph)
        if n_graph != n_sites:
            raise ValueError(
                f"graph={graph!r} has {n_graph} sites but the Hilbert space has N={n_sites}; "
                "pass the lattice the Hilbert space lives on."
            )
    if reorder_idx is None and inv_reorder_idx is None:
        if graph is None:
            if prev_neighbors is not None:
                raise ValueError(
                    "prev_neighbors was given without the path it refers to: pass reorder_idx "
                    "or inv_reorder_idx (or graph) too."
                )
            return None
        reorder_idx = graph_ordering(graph)["reorder_idx"]
    if reorder_idx is not None:
        reorder_idx = _permutation(reorder_idx, "reorder_idx", n_sites)
    if inv_reorder_idx is not None:
        inv_reorder_idx = _permutation(inv_reorder_idx, "inv_reorder_idx", n_sites)
    if reorder_idx is None:
        reorder_idx = _inverse(inv_reorder_idx)
    elif inv_reorder_idx is None:
        inv_reorder_idx = _inverse(reorder_idx)
    elif not np.array_equal(reorder_idx[inv_reorder_idx], np.arange(n_sites)):
        raise ValueError(
            f"inv_reorder_idx={inv_reorder_idx.tolist()} is not the inverse of reorder_idx="
            f"{reorder_idx.tolist()}; give one of them (the other is deduced)."
        )
    if prev_neighbors is None:
        if adj is None:
            raise ValueError(
                "An ordering needs the previous neighbours of every site: pass prev_neighbors "
                "(shape (N, n_neighbors), -1 padded) or the graph they come from."
            )
        prev_neighbors = _prev_neighbors(adj, inv_reorder_idx)
    prev = _int_array(prev_neighbors, "prev_neighbors", 2)
    _check_prev_neighbors(prev, inv_reorder_idx, n_sites)
    return (
        tuple(int(i) for i in reorder_idx),
        tuple(int(i) for i in inv_reorder_idx),
        tuple(tuple(int(j) for j in row) for row in prev),
    )


def _check_prev_neighbors(prev: np.ndarray, inv: np.ndarray, n_sites: int) -> None:
    if prev.shape[0] != n_sites:
        raise ValueError(
            f"prev_neighbors must have one row per site, shape (N={n_sites}, n_neighbors), got "
            f"shape {prev.shape}."
        )
    for i, row in enumerate(prev):
        for j in row:
            if not -1 <= j < n_sites:
                raise ValueError(
                    f"prev_neighbors[{i}] = {row.tolist()} holds {j}, which is neither a site "
                    f"(0..{n_sites - 1}) nor the padding -1."
                )
        present = [int(j) for j in row if j >= 0]
        if len(set(present)) != len(present):
            raise ValueError(
                f"prev_neighbors[{i}] = {row.tolist()} lists a neighbour twice; pad with -1."
            )
        for j in present:
            if inv[j] >= inv[i]:
                raise ValueError(
                    f"prev_neighbors[{i}] = {row.tolist()} points to site {j}, visited at step "
                    f"{inv[j]}, not before site {i} (step {inv[i]}): a site can only read "
                    "sites earlier in the autoregressive order."
                )


@dataclasses.dataclass(frozen=True)
class StepTables:
    """What one recurrent step reads and writes, by step `k` (derived from an ordering, for
    the models).

    The hidden memories that later steps still read are kept in `n_slots` rows: step `k`
    writes row `write_slot[k]` (a row whose memory has been read for the last time, reused)
    and reads rows `read_slot[k]`; the last row stays zero (read for missing neighbours).
    `n_slots - 1` is the most memories needed at once, e.g. 10 on a 10x10 snake (a ring of
    the last steps would need as many rows as the longest step distance to a previous
    neighbour, 81 on the periodic 10x10 lattice).
    """

    site: np.ndarray  # (N,) the site of step k
    step: np.ndarray  # (N,) the step of site i
    prev_site: np.ndarray  # (N,) the site of step k - 1 (0 at k = 0)
    read_slot: np.ndarray  # (N, m) rows of the previous neighbours of step k (zero row: none)
    write_slot: np.ndarray  # (N,) the row step k writes
    n_slots: int
    n_neighbors: int


@functools.lru_cache(maxsize=64)
def step_tables(
    reorder_idx: tuple[int, ...],
    inv_reorder_idx: tuple[int, ...],
    prev_neighbors: tuple[tuple[int, ...], ...],
) -> StepTables:
    """The [`StepTables`][] of a checked ordering (cached): rows assigned greedily, each step
    taking the lowest row free once its last reader has read it."""
    site = np.asarray(reorder_idx, dtype=np.int32)
    step = np.asarray(inv_reorder_idx, dtype=np.int32)
    n = len(site)
    m = len(prev_neighbors[0]) if n else 0
    nb = np.asarray(prev_neighbors, dtype=np.int64).reshape(n, m)[site]  # by step
    present = nb >= 0
    nb_step = np.where(present, step[np.where(present, nb, 0)], -1)
    last = np.full(n, -1)  # the last step that reads the memory written at step j
    for k in range(n):
        for j in nb_step[k][present[k]]:
            last[j] = max(last[j], k)
    # a memory read last at step k frees its row for step k's own write (reads come first);
    # one never read frees it at the next step
    release: list[list[int]] = [[] for _ in range(n + 1)]
    free: list[int] = []
    write_slot = np.empty(n, dtype=np.int32)
    used = 0
    for k in range(n):
        for row in release[k]:
            heapq.heappush(free, row)
        if free:
            row = heapq.heappop(free)
        else:
            row, used = used, used + 1
        write_slot[k] = row
        release[last[k] if last[k] >= 0 else k + 1].append(row)
    zero = used  # the row nothing writes
    read_slot = np.where(present, write_slot[np.maximum(nb_step, 0)], zero).astype(np.int32)
    prev_site = np.concatenate([[0], site[:-1]]).astype(np.int32)
    return StepTables(site, step, prev_site, read_slot, write_slot, used + 1, m)

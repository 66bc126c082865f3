"""Hypercubic lattices: chains, square and rectangular lattices, hypercubes of any dimension.

A lattice is an immutable, hashable frozen dataclass holding only its extent and boundary
conditions, so it can be a static field of an operator or a model. Everything else (edges,
coordinates, sublattices, orderings) is computed on demand as a read-only numpy array.

Sites are numbered as in NetKet: row-major over the coordinates, the last axis fastest
(`site = c_0 * L_1 * L_2 * … + … + c_{d-1}`). Edges follow NetKet's definition by distance
shells: the edges of order `k` join the pairs of sites (or of a site and a periodic image of
another) at the `k`-th smallest Euclidean distance on the lattice, so `edges(order=1)` and
`edges(order=2)` equal NetKet's `edges(filter_color=0)` and `edges(filter_color=1)` of a graph
built with `max_neighbor_order=2`.
"""

import dataclasses
import functools
import itertools
import math
import numbers
from collections.abc import Sequence

import numpy as np
from jaxtyping import Int

from ._misc import positive_int, positive_ints
from .symmetry import LatticeAction, PermutationGroup


__all__ = ["Grid", "Chain", "Square", "Hypercube"]


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@functools.lru_cache(maxsize=128)
def _coordinates(extent: tuple[int, ...]) -> np.ndarray:
    coords = np.indices(extent, dtype=np.int64).reshape(len(extent), -1).T
    return _read_only(np.ascontiguousarray(coords))


@functools.lru_cache(maxsize=128)
def _shell_displacements(
    extent: tuple[int, ...], pbc: tuple[bool, ...], order: int
) -> tuple[np.ndarray, int] | None:
    """The integer displacement vectors of the `order`-th distance shell, and its squared
    length; `None` if the lattice has fewer than `order` shells within distance `order`
    (NetKet searches no further)."""
    bounds = [order if p else min(order, length - 1) for length, p in zip(extent, pbc)]
    axes = [np.arange(-b, b + 1) for b in bounds]
    disp = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")], axis=-1)
    sq = (disp**2).sum(axis=-1)
    shells = np.unique(sq[sq > 0])
    if len(shells) < order or shells[order - 1] > order**2:
        return None
    r2 = int(shells[order - 1])
    return disp[sq == r2], r2


@functools.lru_cache(maxsize=128)
def _edges(extent: tuple[int, ...], pbc: tuple[bool, ...], order: int) -> np.ndarray:
    shell = _shell_displacements(extent, pbc, order)
    if shell is None:
        return _read_only(np.zeros((0, 2), dtype=np.int64))
    vectors, r2 = shell
    coords = _coordinates(extent)
    ext = np.asarray(extent)
    target = coords[:, None, :] + vectors[None, :, :]  # (N, n_vectors, n_dim)
    inside = np.all(np.asarray(pbc) | ((target >= 0) & (target < ext)), axis=-1)
    target = target % ext
    j = np.ravel_multi_index(tuple(np.moveaxis(target, -1, 0)), extent)
    i = np.broadcast_to(np.arange(len(coords))[:, None], j.shape)
    i, j = i[inside], j[inside]
    if np.any(i == j):
        site = int(i[np.argmax(i == j)])
        raise ValueError(
            f"Grid(extent={extent}, pbc={pbc}) has no edges of order={order}: at distance "
            f"sqrt({r2}) site {site} meets its own periodic image. Use a longer periodic axis "
            "or open boundaries."
        )
    pairs = np.unique(np.sort(np.stack([i, j], axis=-1), axis=-1), axis=0)
    return _read_only(pairs.astype(np.int64))


def _pbc_tuple(pbc: object, n_dim: int) -> tuple[bool, ...]:
    if isinstance(pbc, bool | np.bool_):
        return (bool(pbc),) * n_dim
    if (
        isinstance(pbc, Sequence)
        and not isinstance(pbc, str)
        and all(isinstance(p, bool | np.bool_) for p in pbc)
    ):
        if len(pbc) != n_dim:
            raise ValueError(
                f"pbc has {len(pbc)} entries but the lattice has {n_dim} axes; give one bool "
                f"or one bool per axis, got pbc={pbc!r}."
            )
        return tuple(bool(p) for p in pbc)
    raise ValueError(f"pbc must be a bool or a sequence of bools (one per axis), got pbc={pbc!r}.")


@dataclasses.dataclass(frozen=True, init=False)
class Grid:
    r"""A hypercubic lattice with `extent[a]` sites along axis `a`, periodic or open per axis.

    Sites are numbered row-major (the last axis fastest), as NetKet's `nk.graph.Grid`. The
    class holds only `extent` and `pbc`; edges, coordinates, sublattices and orderings are
    computed when asked for (and cached), as read-only numpy arrays. [`Chain`][nqzoo.lattice.Chain],
    [`Square`][nqzoo.lattice.Square] and [`Hypercube`][nqzoo.lattice.Hypercube] build the
    common cases; equal lattices compare and hash equal however they were built.
    """

    extent: tuple[int, ...]
    pbc: tuple[bool, ...]

    def __init__(
        self,
        extent: numbers.Integral | Sequence[numbers.Integral],
        pbc: bool | np.bool_ | Sequence[bool | np.bool_] = True,
    ):
        """**Arguments:**

        - `extent`: the number of sites along each axis (an int means a chain).
        - `pbc`: periodic boundary conditions, one bool for every axis or one per axis. A
          periodic axis needs at least 2 sites; with exactly 2 the periodic bond coincides with
          the open one and is counted once (as in NetKet).
        """
        extent = positive_ints(extent, "extent")
        if not extent:
            raise ValueError(f"extent must have at least one axis, got extent={extent!r}.")
        pbc = _pbc_tuple(pbc, len(extent))
        for axis, (length, periodic) in enumerate(zip(extent, pbc)):
            if periodic and length < 2:
                raise ValueError(
                    f"a periodic axis needs at least 2 sites, got extent={extent} with "
                    f"pbc={pbc} (axis {axis} has {length} site); make that axis open."
                )
        object.__setattr__(self, "extent", extent)
        object.__setattr__(self, "pbc", pbc)

    @property
    def n_dim(self) -> int:
        """Number of axes."""
        return len(self.extent)

    @property
    def n_sites(self) -> int:
        """Number of sites, `prod(extent)`."""
        return math.prod(self.extent)

    @property
    def n_nodes(self) -> int:
        """Number of sites (NetKet's name)."""
        return self.n_sites

    def coordinates(self) -> Int[np.ndarray, "{self.n_sites} {self.n_dim}"]:
        """The integer coordinates of every site, in site order.

        **Returns:** `(n_sites, n_dim)` int64; row `i` is site `i` (NetKet's `positions`).
        """
        return _coordinates(self.extent)

    def site_index(self, coordinates: Sequence[numbers.Integral] | np.ndarray) -> int:
        """The site at the given coordinates (wrapped along periodic axes).

        **Arguments:**

        - `coordinates`: one integer per axis.

        **Returns:** the site number.
        """
        coordinates = tuple(int(c) for c in coordinates)
        if len(coordinates) != self.n_dim:
            raise ValueError(
                f"coordinates must have one entry per axis ({self.n_dim}), got "
                f"coordinates={coordinates}."
            )
        wrapped = []
        for c, length, periodic in zip(coordinates, self.extent, self.pbc):
            if periodic:
                c %= length
            elif not 0 <= c < length:
                raise ValueError(
                    f"coordinates={coordinates} lie outside the open lattice of "
                    f"extent={self.extent}."
                )
            wrapped.append(c)
        return int(np.ravel_multi_index(tuple(wrapped), self.extent))

    def edges(self, order: numbers.Integral = 1) -> Int[np.ndarray, "n_edges 2"]:
        """The edges between `order`-th nearest neighbours.

        Order 1 joins nearest neighbours, order 2 next-nearest neighbours (the diagonals of a
        square lattice, the second neighbours of a chain), and so on by increasing distance.
        A pair joined through both an open and a periodic path, or through two periodic paths,
        appears once. On small periodic lattices a pair can belong to two orders (on a
        3-site ring every pair is at distance 1 and, around the other way, 2), as in NetKet.

        **Arguments:**

        - `order`: the neighbour order, a positive integer.

        **Returns:** `(n_edges, 2)` int64, each row `(i, j)` with `i < j`, rows sorted.

        **Raises:** `ValueError` if a site is its own `order`-th neighbour through a periodic
        boundary (a ring of 2 sites at order 2), as NetKet does.
        """
        order = positive_int(order, "order")
        return _edges(self.extent, self.pbc, order)

    @property
    def is_bipartite(self) -> bool:
        """Whether the nearest-neighbour graph is bipartite (no periodic axis of odd length)."""
        return all(length % 2 == 0 for length, p in zip(self.extent, self.pbc) if p)

    def sublattice(self) -> Int[np.ndarray, "{self.n_sites}"]:  # noqa: F821
        r"""The bipartite sublattice of every site: the parity $\sum_a c_a \bmod 2$ of its
        coordinates, 0 (sublattice A, which holds site 0) or 1 (sublattice B). Nearest
        neighbours always lie on different sublattices.

        **Returns:** `(n_sites,)` int64 of 0 and 1.

        **Raises:** `ValueError` for a non-bipartite lattice (a periodic axis of odd length).
        """
        if not self.is_bipartite:
            odd = [a for a, (n, p) in enumerate(zip(self.extent, self.pbc)) if p and n % 2]
            raise ValueError(
                f"{self!r} is not bipartite: periodic axes {odd} have an odd number of sites, "
                "so nearest neighbours close an odd loop. Use even periodic lengths or open "
                "boundaries."
            )
        return _read_only(self.coordinates().sum(axis=-1) % 2)

    def snake_order(self) -> Int[np.ndarray, "{self.n_sites}"]:  # noqa: F821
        """The snake (boustrophedon) path through a 2D lattice: along the rows (axis 1), left
        to right on even rows and right to left on odd rows.

        Entry `k` is the site visited at step `k`. The permutation is its own inverse. It
        equals NetKet's `nk.experimental.nn.rnn.get_snake_inv_reorder_idx` (the ordering of
        NetKet's 2D recurrent networks), and, with open boundaries, the order NetKet's
        recurrent networks derive from a `graph`.

        **Returns:** `(n_sites,)` int64, a permutation of the sites.

        **Raises:** `ValueError` if the lattice is not two-dimensional.
        """
        if self.n_dim != 2:
            raise ValueError(
                f"snake_order needs a two-dimensional lattice, got {self!r} with "
                f"n_dim={self.n_dim}."
            )
        rows, cols = self.extent
        idx = np.arange(self.n_sites, dtype=np.int64).reshape(rows, cols)
        idx[1::2] = idx[1::2, ::-1]
        return _read_only(idx.ravel())

    # -- symmetry groups -------------------------------------------------------------------

    def translation_group(self) -> PermutationGroup:
        r"""The translations along the periodic axes, as NetKet's `translation_group()`.

        Element $t_r$ moves the configuration by $r$: $(t_r x)_i = x_j$ with $j$ the site at
        `coordinates[i] - r` (wrapped). The elements are in NetKet's order: $r$ row-major over
        the periodic axes (the last fastest), $r_a$ from 0 to $L_a - 1$; open axes have no
        translations. Its [`characters`][nqzoo.symmetry.PermutationGroup.characters] give the
        momentum sectors.

        **Returns:** a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup] with a
        [`LatticeAction`][nqzoo.symmetry.LatticeAction], `prod(extent[a] for periodic a)`
        elements.
        """
        return _lattice_group(self.extent, self.pbc, "translation", None)

    def point_group(self) -> PermutationGroup:
        r"""The point group: the reflections and rotations that map the lattice onto itself,
        about the origin along periodic axes and about the centre along open ones, as
        NetKet's `point_group()`.

        It is generated by the reflections $x_a \to -x_a$ of every axis and the exchanges of
        axes of the same length and boundary condition: the reflection of a chain ($C_{1v}$,
        2 elements), $C_{4v}$ of a square (8), $C_{2v}$ of a rectangle (4), $O_h$ of a cube
        (48), the hyperoctahedral group of a hypercube ($2^d d!$). Elements are in NetKet's
        order: the axis permutations (in `itertools.permutations` order), then the reflections
        of axis 0, 1, ... (the last fastest), $M = P\,R_0^{s_0} R_1^{s_1}\cdots$. On a periodic
        axis of 2 sites (or any axis of 1 site) a reflection is the identity permutation: such
        repeats are dropped (NetKet keeps them), keeping the first.

        **Returns:** a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup] with a
        [`LatticeAction`][nqzoo.symmetry.LatticeAction].
        """
        return _lattice_group(self.extent, self.pbc, "point", None)

    def rotation_group(self) -> PermutationGroup:
        """The proper rotations (determinant +1) of the
        [`point_group`][nqzoo.lattice.Grid.point_group], in its order (NetKet's
        `rotation_group()`).

        **Returns:** a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup] with a
        [`LatticeAction`][nqzoo.symmetry.LatticeAction].
        """
        return _lattice_group(self.extent, self.pbc, "rotation", None)

    def space_group(self, point_group: PermutationGroup | None = None) -> PermutationGroup:
        r"""The space group: every translation composed with every point operation,
        $g = t_r\,p$ ($p$ first), as NetKet's `space_group()`, in NetKet's order (translation
        major: element `t * n_point + p`).

        **Arguments:**

        - `point_group`: the point operations, by default
          [`point_group()`][nqzoo.lattice.Grid.point_group]; a subgroup of it such as
          [`rotation_group()`][nqzoo.lattice.Grid.rotation_group] gives the smaller space
          group (it must be one of this lattice's groups, carrying a
          [`LatticeAction`][nqzoo.symmetry.LatticeAction] without translations).

        **Returns:** a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup] with a
        [`LatticeAction`][nqzoo.symmetry.LatticeAction]. Repeats on lattices with periodic
        axes of 2 sites are dropped, keeping the first.
        """
        if point_group is None:
            return _lattice_group(self.extent, self.pbc, "space", None)
        action = getattr(point_group, "lattice_action", None)
        if (
            not isinstance(point_group, PermutationGroup)
            or action is None
            or action.extent != self.extent
            or action.pbc != self.pbc
            or np.any(action.translations != 0)
        ):
            raise ValueError(
                "point_group must be a point group of this lattice (e.g. "
                f"lattice.rotation_group()), got point_group={point_group!r} for {self!r}."
            )
        key = (action.linear.tobytes(), action.linear.shape)
        return _lattice_group(self.extent, self.pbc, "space", key)

    def __repr__(self) -> str:
        return f"Grid(extent={self.extent}, pbc={self.pbc})"


def _signed_permutations(extent: tuple[int, ...], pbc: tuple[bool, ...]) -> np.ndarray:
    """The point operations of the grid, in NetKet's order: the axis permutations allowed
    (same length and boundary), each followed by every pattern of axis reflections."""
    d = len(extent)
    kind = [length if p else -length for length, p in zip(extent, pbc)]
    mats = []
    for perm in itertools.permutations(range(d)):
        if any(kind[a] != kind[b] for a, b in zip(range(d), perm)):
            continue
        P = np.zeros((d, d), dtype=np.int64)
        P[np.arange(d), perm] = 1  # (P y)_a = y_{perm[a]}
        for flips in itertools.product((1, -1), repeat=d):
            mats.append(P * np.asarray(flips))  # P @ diag(flips)
    return np.stack(mats)


@functools.lru_cache(maxsize=64)
def _lattice_group(
    extent: tuple[int, ...], pbc: tuple[bool, ...], kind: str, point_key: tuple | None
) -> PermutationGroup:
    d = len(extent)
    ext = np.asarray(extent)
    periodic = np.asarray(pbc)
    coords = _coordinates(extent)  # (N, d)
    if point_key is not None:
        data, shape = point_key
        mats = np.frombuffer(data, dtype=np.int64).reshape(shape)
    elif kind == "translation":
        mats = np.eye(d, dtype=np.int64)[None]
    else:
        mats = _signed_permutations(extent, pbc)
        if kind == "rotation":
            mats = mats[np.round(np.linalg.det(mats)).astype(int) == 1]
    if kind in ("translation", "space"):
        ranges = [range(n) if p else range(1) for n, p in zip(extent, pbc)]
        shifts = np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, d)
    else:
        shifts = np.zeros((1, d), dtype=np.int64)
    # twice the centre: 0 along periodic axes, extent - 1 along open ones (integers)
    centre2 = np.where(periodic, 0, ext - 1)
    # g maps y to M (y - o) + o + r; its permutation lists the preimage of every site:
    # y = M^T (c - r - o) + o, computed in doubled coordinates to stay integer
    translations = np.repeat(shifts, len(mats), axis=0)
    linear = np.tile(mats, (len(shifts), 1, 1))
    c2 = 2 * (coords[None, :, :] - translations[:, None, :]) - centre2
    pre2 = np.einsum("gba,gib->gia", linear, c2) + centre2
    pre = np.where(periodic, (pre2 // 2) % ext, pre2 // 2)
    perms = np.ravel_multi_index(tuple(np.moveaxis(pre, -1, 0)), extent)
    _, first = np.unique(perms, axis=0, return_index=True)
    keep = np.sort(first)
    action = LatticeAction(extent, pbc, translations[keep], linear[keep])
    return PermutationGroup(perms[keep], lattice_action=action)


def Chain(length: numbers.Integral, pbc: bool | np.bool_ = True) -> Grid:
    """A chain of `length` sites (a ring when periodic), as NetKet's `nk.graph.Chain`.

    **Arguments:**

    - `length`: number of sites (at least 2 when periodic).
    - `pbc`: periodic boundary conditions.

    **Returns:** the [`Grid`][nqzoo.lattice.Grid] with `extent=(length,)`.
    """
    return Grid((positive_int(length, "length"),), pbc)


def Square(
    length: numbers.Integral, pbc: bool | np.bool_ | Sequence[bool | np.bool_] = True
) -> Grid:
    """A `length x length` square lattice, as NetKet's `nk.graph.Square`; for a rectangle use
    `Grid((rows, cols), pbc)`.

    **Arguments:**

    - `length`: sites along each side.
    - `pbc`: periodic boundary conditions, one bool or one per axis.

    **Returns:** the [`Grid`][nqzoo.lattice.Grid] with `extent=(length, length)`.
    """
    return Hypercube(length, 2, pbc)


def Hypercube(
    length: numbers.Integral,
    n_dim: numbers.Integral = 1,
    pbc: bool | np.bool_ | Sequence[bool | np.bool_] = True,
) -> Grid:
    """A hypercube with `length` sites along each of its `n_dim` axes, as NetKet's
    `nk.graph.Hypercube`.

    **Arguments:**

    - `length`: sites along each axis.
    - `n_dim`: number of axes.
    - `pbc`: periodic boundary conditions, one bool or one per axis.

    **Returns:** the [`Grid`][nqzoo.lattice.Grid] with `extent=(length,) * n_dim`.
    """
    length = positive_int(length, "length")
    n_dim = positive_int(n_dim, "n_dim")
    return Grid(tuple(itertools.repeat(length, n_dim)), pbc)

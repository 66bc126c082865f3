r"""Permutation groups of lattice sites: their product table, inverses, irreducible
representations and characters.

A [`PermutationGroup`][nqzoo.symmetry.PermutationGroup] is an immutable, hashable set of
permutations of `n_sites` sites, closed under composition, so it can be a static field of a
model. Element `g` acts on a configuration by

$$(g\,x)_i = x_{\pi_g(i)}, \qquad \text{in numpy: } x_g = x[..., \text{perms}[g]],$$

which is a left action: `g(h(x)) = (g h)(x)`, with `perms[g h] = perms[h][perms[g]]`. The array
`perms` is what NetKet's `PermutationGroup.to_array()` returns (its rows are the
`inverse_permutation_array`s of the elements) and what NetKet's symmetric layers
(`nk.nn.DenseSymm`, the GCNNs) index configurations with. For a translation by a vector `r`,
`perms[t_r, i]` is the site at `position(i) - r`: the configuration is moved by `+r`.

Irreducible representations are computed numerically from the regular representation, for
any finite group (see
[`PermutationGroup.irrep_matrices`][nqzoo.symmetry.PermutationGroup.irrep_matrices]).
"""

import dataclasses
import itertools
import math
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Complex, Int


__all__ = ["PermutationGroup", "LatticeAction", "Sector", "check_group", "check_characters"]


_IRREP_SEED = 20240614


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _as_perms(perms: Any) -> np.ndarray:
    """`perms` as a validated (G, N) int64 array of permutations (not yet checked closed)."""
    if isinstance(perms, PermutationGroup):
        return perms.perms
    try:
        array = np.asarray(perms)
    except Exception as err:  # noqa: BLE001 - ragged lists and other non-arrays
        raise ValueError(
            "perms must be an integer array of shape (n_elements, n_sites), each row a "
            f"permutation of range(n_sites); could not read perms={perms!r} as an array ({err})."
        ) from None
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            "perms must be an integer array of shape (n_elements, n_sites), got dtype "
            f"{array.dtype} (perms={_short(array)})."
        )
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(
            "perms must be a non-empty 2D integer array of shape (n_elements, n_sites), got "
            f"shape {array.shape}."
        )
    n = array.shape[1]
    array = array.astype(np.int64)
    bad = np.flatnonzero(np.any(np.sort(array, axis=1) != np.arange(n), axis=1))
    if bad.size:
        raise ValueError(
            f"every row of perms must be a permutation of range({n}) (each site exactly "
            f"once); row {int(bad[0])} is {array[bad[0]].tolist()}."
        )
    return array


def _short(array: np.ndarray) -> str:
    text = np.array2string(np.asarray(array), threshold=20)
    return text if len(text) < 200 else text[:200] + "..."


class _RowLookup:
    """Finds the index of each row of an array among the rows of `table` (exact)."""

    def __init__(self, table: np.ndarray):
        n = table.shape[1]
        rng = np.random.default_rng(12345)
        self._weights = rng.integers(1, 2**62, size=n, dtype=np.uint64)
        self._table = table
        keys = self._keys(table)
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        self.unique = bool(np.all(self._sorted[1:] != self._sorted[:-1]))

    def _keys(self, rows: np.ndarray) -> np.ndarray:
        # wrapping uint64 arithmetic: a hash of the row; found rows are compared exactly below
        return (rows.astype(np.uint64) * self._weights).sum(axis=-1, dtype=np.uint64)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Indices of `rows` in the table, -1 where a row is absent."""
        keys = self._keys(rows)
        pos = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        idx = self._order[pos]
        found = (self._sorted[pos] == keys) & np.all(self._table[idx] == rows, axis=-1)
        return np.where(found, idx, -1)


def _compose(perms: np.ndarray, g: int) -> np.ndarray:
    """perms of g*h for every h (row h)."""
    return perms[:, perms[g]]


class PermutationGroup:
    r"""A finite group of permutations of `n_sites` sites.

    Element `g` acts on configurations by `x_g = x[..., perms[g]]`, i.e.
    $(g\,x)_i = x_{\text{perms}[g, i]}$; composition is a left action, `g(h(x)) = (gh)(x)`. The
    identity is element 0. The object is immutable and hashable (it compares by its `perms`,
    in order), so it can be a static field of an Equinox module; `np.asarray(group)` is
    `group.perms`.

    Groups of lattices come from [`nqzoo.lattice.Grid.translation_group`][],
    [`point_group`][nqzoo.lattice.Grid.point_group] and
    [`space_group`][nqzoo.lattice.Grid.space_group]; any NetKet group converts with
    `nqzoo.interop.netket.group_from_netket`.
    """

    __slots__ = ("_perms", "_hash", "_cache", "_action")

    def __init__(self, perms: Any, *, lattice_action: "LatticeAction | None" = None):
        """**Arguments:**

        - `perms`: integer array-like of shape `(n_elements, n_sites)` (or another
          `PermutationGroup`); row `g` lists, for every site `i`, the site whose value `g`
          moves to `i`. The rows must be distinct permutations of `range(n_sites)`, include the
          identity and be closed under composition. The identity is moved to row 0 (the other
          rows keep their order).
        - `lattice_action`: optional [`LatticeAction`][nqzoo.symmetry.LatticeAction], one
          affine map of the lattice per row of `perms` (the lattice's group methods fill it in;
          it enables [`characters`][nqzoo.symmetry.PermutationGroup.characters] with momenta
          and point-group irreps). Taken from `perms` when that is a `PermutationGroup`.

        **Raises:** `ValueError` naming `perms` (or `lattice_action`) otherwise.
        """
        if lattice_action is None and isinstance(perms, PermutationGroup):
            lattice_action = perms.lattice_action
        array = _as_perms(perms)
        n_elements, n_sites = array.shape
        if lattice_action is not None:
            if not isinstance(lattice_action, LatticeAction):
                raise TypeError(
                    "lattice_action must be a nqzoo.symmetry.LatticeAction or None, got "
                    f"lattice_action={lattice_action!r}."
                )
            if lattice_action.n_elements != n_elements:
                raise ValueError(
                    f"lattice_action describes {lattice_action.n_elements} elements but perms "
                    f"has {n_elements} rows."
                )
            if math.prod(lattice_action.extent) != n_sites:
                raise ValueError(
                    f"lattice_action is for a lattice of extent {lattice_action.extent} "
                    f"({math.prod(lattice_action.extent)} sites) but perms permutes {n_sites} "
                    "sites."
                )
        is_identity = np.all(array == np.arange(n_sites), axis=1)
        if not is_identity.any():
            raise ValueError(
                "perms must contain the identity permutation (a group does); none of its "
                f"{n_elements} rows is range({n_sites})."
            )
        first = int(np.argmax(is_identity))
        if first != 0:
            order = np.r_[first, np.arange(first), np.arange(first + 1, n_elements)]
            array = array[order]
            if lattice_action is not None:
                lattice_action = lattice_action._take(order)
        lookup = _RowLookup(array)
        if not lookup.unique:
            _, index, counts = np.unique(array, axis=0, return_index=True, return_counts=True)
            dup = int(index[np.argmax(counts > 1)])
            raise ValueError(
                f"the rows of perms must be distinct group elements; row {dup} "
                f"({array[dup].tolist()}) appears more than once."
            )
        _check_closed(array, lookup)
        array = _read_only(np.ascontiguousarray(array))
        object.__setattr__(self, "_perms", array)
        object.__setattr__(self, "_hash", hash((array.shape, array.tobytes())))
        object.__setattr__(self, "_cache", {"lookup": lookup})
        object.__setattr__(self, "_action", lattice_action)

    # -- immutability, hashing, pickling --------------------------------------------------

    def __setattr__(self, name, value):
        raise AttributeError(f"PermutationGroup is immutable (cannot set {name!r}).")

    def __delattr__(self, name):
        raise AttributeError(f"PermutationGroup is immutable (cannot delete {name!r}).")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PermutationGroup):
            return NotImplemented
        return self._hash == other._hash and np.array_equal(self._perms, other._perms)

    def __reduce__(self):
        return (_rebuild, (np.array(self._perms), self._action))

    def __repr__(self) -> str:
        where = "" if self._action is None else f", lattice extent={self._action.extent}"
        return f"PermutationGroup(n_elements={self.n_elements}, n_sites={self.n_sites}{where})"

    def __len__(self) -> int:
        return self._perms.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if dtype is None and not copy:
            return self._perms
        return np.array(self._perms, dtype=dtype)

    def _cached(self, name, compute):
        cache = self._cache
        if name not in cache:
            cache[name] = compute()
        return cache[name]

    # -- the group -------------------------------------------------------------------------

    @property
    def perms(self) -> Int[np.ndarray, "{self.n_elements} {self.n_sites}"]:
        """`(n_elements, n_sites)` int64, read-only: `x_g = x[..., perms[g]]`; row 0 is the
        identity."""
        return self._perms

    @property
    def lattice_action(self) -> "LatticeAction | None":
        """The affine map of the lattice behind every element (for the groups of a
        [`Grid`][nqzoo.lattice.Grid]), or `None` for a group given only by its permutations."""
        return self._action

    @property
    def n_elements(self) -> int:
        """The order of the group, `len(group)`."""
        return self._perms.shape[0]

    @property
    def n_sites(self) -> int:
        """The number of sites the permutations act on."""
        return self._perms.shape[1]

    def index(self, perm: Any) -> int:
        """The index of the element whose row of `perms` is `perm`.

        **Arguments:**

        - `perm`: a permutation of `range(n_sites)`, in the convention of `perms`.

        **Returns:** its index `g` (`perms[g] == perm`).

        **Raises:** `ValueError` naming `perm` if it is not an element.
        """
        row = np.asarray(perm)
        if row.shape != (self.n_sites,) or not np.issubdtype(row.dtype, np.integer):
            raise ValueError(
                f"perm must be an integer array of shape ({self.n_sites},), got "
                f"shape {row.shape} and dtype {row.dtype}."
            )
        idx = int(self._cache["lookup"](row.astype(np.int64)[None])[0])
        if idx < 0:
            raise ValueError(f"perm={row.tolist()} is not an element of {self!r}.")
        return idx

    @property
    def product_table(self) -> Int[np.ndarray, "{self.n_elements} {self.n_elements}"]:
        """`(n_elements, n_elements)` int64: `product_table[g, h]` is the index of `g h` (first
        `h`, then `g`: `x_{gh} = (x_h)_g`, `perms[gh] = perms[h][perms[g]]`).

        (NetKet's `product_table[g, h]` is the index of $g^{-1} h$, which is
        `product_table[inverse[g], h]` here.)
        """
        return self._cached("product_table", self._product_table)

    def _product_table(self) -> np.ndarray:
        lookup = self._cache["lookup"]
        table = np.stack([lookup(_compose(self._perms, g)) for g in range(self.n_elements)])
        return _read_only(table)

    @property
    def inverse(self) -> Int[np.ndarray, "{self.n_elements}"]:  # noqa: F821
        """`(n_elements,)` int64: the index of the inverse of every element."""
        return self._cached(
            "inverse",
            lambda: _read_only(self._cache["lookup"](np.argsort(self._perms, axis=1))),
        )

    @property
    def conjugacy_classes(self) -> Int[np.ndarray, "{self.n_elements}"]:  # noqa: F821
        """`(n_elements,)` int64: the conjugacy class of every element, classes numbered by
        their first element (the identity's class is 0)."""
        return self._cached("classes", self._classes)

    def _classes(self) -> np.ndarray:
        pt, inv = self.product_table, self.inverse
        # conj[g, a] = a^-1 g a
        conj = pt[inv[None, :], pt[:, np.arange(self.n_elements)]]
        first = conj.min(axis=1)
        _, labels = np.unique(first, return_inverse=True)
        return _read_only(labels.astype(np.int64).ravel())

    # -- representations -------------------------------------------------------------------

    def irrep_matrices(self) -> list[Complex[np.ndarray, "{self.n_elements} d d"]]:
        r"""The unitary irreducible representations of the group, each once.

        Each entry is a `(n_elements, d, d)` complex array $\rho(g)$ with
        $\rho(g)\rho(h) = \rho(gh)$ (the product of
        [`product_table`][nqzoo.symmetry.PermutationGroup.product_table]) and
        $\rho(g^{-1}) = \rho(g)^\dagger$. They are ordered by dimension, the trivial
        representation first, then by their characters (in decreasing order of their real
        parts, element by element), so the order is deterministic. One-dimensional
        representations are their characters. Real representations (of real type) are given
        in a real orthogonal basis.

        **Method.** The regular representation $R(g)e_h = e_{gh}$ contains every irrep
        $\rho$ exactly $d_\rho$ times. A random Hermitian matrix $H_{ab} = f(a^{-1}b)$ with
        $f(x^{-1}) = \overline{f(x)}$ commutes with every $R(g)$; its eigenspaces are (for a
        generic $f$, checked) irreducible invariant subspaces, $d_\rho$ of them for each
        $\rho$. One subspace is kept per distinct character, and the representation is $R$
        restricted to it in an orthonormal basis $V$: $\rho(g) = V^\dagger R(g) V$. A real
        symmetric $H$ is tried first, which gives a real basis for the real irreps; subspaces
        it leaves reducible are split by a complex one. The result is checked
        ($\sum_\rho d_\rho^2 = |G|$, orthonormal characters, $\rho(g)\rho(h) = \rho(gh)$ on
        random pairs) and computed once per group (cached; a few hundred elements take well
        under a second).

        **Returns:** a list of `(n_elements, d, d)` complex128 arrays (read-only).
        """
        return self._cached("irreps", lambda: _irreps(self))

    def character_table(self) -> Complex[np.ndarray, "n_irreps {self.n_elements}"]:
        r"""The characters $\chi_\rho(g) = \operatorname{tr}\rho(g)$ of the irreducible
        representations.

        **Returns:** `(n_irreps, n_elements)` complex128, rows in the order of
        [`irrep_matrices`][nqzoo.symmetry.PermutationGroup.irrep_matrices] (row 0 is the
        trivial representation, all ones).
        """

        def compute():
            table = np.stack([np.trace(rho, axis1=1, axis2=2) for rho in self.irrep_matrices()])
            return _read_only(table)

        return self._cached("characters", compute)

    # -- one-dimensional representations: momenta and point-group parities ------------------

    def point_irreps(self) -> dict[str, Complex[np.ndarray, "{self.n_elements}"]]:  # noqa: F821
        r"""The one-dimensional irreps of the point group, as characters of this group's
        elements: $\eta(M_g)$, where $M_g$ is the linear part (rotation or reflection) of
        element `g`. At zero momentum these are the characters of the sectors
        [`characters`][nqzoo.symmetry.PermutationGroup.characters] names.

        Names (Mulliken's), with $\sigma(M)$ the sign of the axis permutation of $M$,
        $\varepsilon(M)$ the product of its signs and $\det M = \sigma\varepsilon$:

        - chains (point group $C_{1v}$: the identity and the reflection): `A1` (even),
          `A2` (odd, $\det$);
        - square lattices ($C_{4v}$): `A1`, `A2` ($\det$: odd under every reflection),
          `B1` ($\sigma$: odd under 90-degree rotations and diagonal reflections, even under
          the axis reflections), `B2` ($\varepsilon$: odd under 90-degree rotations and the
          axis reflections, even under the diagonal ones);
        - rectangles ($C_{2v}$): `A1`, `A2` ($\det$), `B1` (odd under $x_0 \to -x_0$, even
          under $x_1 \to -x_1$), `B2` (the reverse);
        - cubes ($O_h$): `A1g`, `A2g` ($\sigma$), `A1u` ($\det$), `A2u` ($\varepsilon$);
        - any other point group: `A1` (trivial) and `chi1`, `chi2`, ... (its other
          one-dimensional irreps, in character-table order).

        A group of permutations only (no
        [`lattice_action`][nqzoo.symmetry.PermutationGroup.lattice_action]) has only `A1`.

        **Returns:** a dict from name to `(n_elements,)` complex128 characters, `A1` first.
        """
        return dict(self._cached("point_irreps", self._point_irreps))

    def _point_irreps(self) -> dict[str, np.ndarray]:
        ones = _read_only(np.ones(self.n_elements, dtype=np.complex128))
        if self._action is None:
            return {"A1": ones}
        linear = self._action.linear
        flat = linear.reshape(len(linear), -1)
        mats, first, which = np.unique(flat, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)  # point operations in order of first appearance
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        which = rank[np.ravel(which)]
        mats = mats[order].reshape(-1, *linear.shape[1:])
        n_ops, d = len(mats), linear.shape[1]
        # the point group acting on itself: (g x)_i = x_{index(M_g^-1 M_i)}
        index = {m.tobytes(): i for i, m in enumerate(mats)}
        inv = np.transpose(mats, (0, 2, 1))
        perms = np.array(
            [[index[(inv[g] @ mats[i]).tobytes()] for i in range(n_ops)] for g in range(n_ops)]
        )
        table = PermutationGroup(perms).character_table()
        one_dim = [row for row in table if abs(row[0] - 1) < 1e-9]
        absolute = np.abs(mats)
        sigma = np.round(np.linalg.det(absolute)).astype(int)
        det = np.round(np.linalg.det(mats)).astype(int)
        eps = sigma * det
        named = _point_names(d, n_ops, mats, sigma, eps, det)
        out: dict[str, np.ndarray] = {}
        remaining = list(one_dim)
        if named is not None and len(named) == len(one_dim):
            for name, values in named:
                j = next(
                    (j for j, row in enumerate(remaining) if np.allclose(row, values, atol=1e-9)),
                    None,
                )
                if j is None:
                    break
                out[name] = np.asarray(values, dtype=np.complex128)
                remaining.pop(j)
            else:
                remaining = []
        if remaining:
            out = {"A1": np.ones(n_ops, dtype=np.complex128)}
            for j, row in enumerate(one_dim[1:], start=1):
                out[f"chi{j}"] = row
        return {name: _read_only(np.asarray(row)[which].copy()) for name, row in out.items()}

    def characters(
        self,
        momentum: Any = None,
        point_irrep: str | int = "A1",
    ) -> Complex[np.ndarray, "{self.n_elements}"]:  # noqa: F821
        r"""The characters of a one-dimensional irrep: a momentum sector times a point-group
        parity sector.

        For the element $g$ that maps position $y$ to $M_g(y - o) + o + r_g$ (a translation
        by $r_g$ after a point operation $M_g$ about the lattice's centre $o$),

        $$\chi_g = e^{-i\,k\cdot r_g}\;\eta(M_g),$$

        with $k$ the crystal momentum (as NetKet's `momentum_irrep`:
        $k_a = 2\pi m_a / L_a$ along a periodic axis of $L_a$ sites, $m_a$ an integer; 0 along
        open axes) and $\eta$ the point-group irrep named `point_irrep` (see
        [`point_irreps`][nqzoo.symmetry.PermutationGroup.point_irreps]). It is a representation
        when $k$ is invariant under the point group ($M^T k \equiv k$ modulo the reciprocal
        lattice), which holds for every $k$ of a translation group and for $k = 0$ and
        $k = (\pi, \pi, \ldots)$ of a square or cubic space group.

        A state in this sector, $\hat T_g \psi = \chi_g \psi$ with
        $(\hat T_g\psi)(x) = \psi(g^{-1}x)$, has amplitudes $\psi(g\,x) = \overline{\chi_g}\,
        \psi(x)$ (`x_g = x[..., perms[g]]`), and the projection
        $\psi_\chi(x) = \sum_g \chi_g\, \psi(g\,x)$ lands in it. For real characters (zero
        momentum, $(\pi, \pi)$, every point-group parity) the conjugate is immaterial.

        **Arguments:**

        - `momentum`: one wave-vector component per lattice axis (radians per site), or
          `None` for $k = 0$.
        - `point_irrep`: a name of
          [`point_irreps`][nqzoo.symmetry.PermutationGroup.point_irreps] (`"A1"`, the
          fully symmetric sector, by default). For a group without a lattice action, an int
          picks a one-dimensional row of
          [`character_table`][nqzoo.symmetry.PermutationGroup.character_table].

        **Returns:** `(n_elements,)` complex128, `characters[0] = 1`.

        **Raises:** `ValueError` naming the argument for a momentum that is not allowed on the
        lattice or not invariant under the point group, an unknown `point_irrep`, or a sector
        that does not exist on a lattice so small that distinct operations coincide.
        """
        if self._action is None:
            if momentum is not None:
                raise ValueError(
                    f"momentum needs a lattice group (from nqzoo.lattice.Grid); {self!r} is "
                    f"given by its permutations only, got momentum={momentum!r}. Use "
                    "point_irrep=<row of character_table()> or sectors()."
                )
            if isinstance(point_irrep, int | np.integer) and not isinstance(point_irrep, bool):
                table = self.character_table()
                if not 0 <= point_irrep < len(table) or abs(table[point_irrep, 0] - 1) > 1e-9:
                    dims = np.round(table[:, 0].real).astype(int).tolist()
                    raise ValueError(
                        "point_irrep must index a one-dimensional row of character_table() "
                        f"(dimensions {dims}), got point_irrep={point_irrep}."
                    )
                return _read_only(np.array(table[point_irrep]))
        irreps = self.point_irreps()
        if not isinstance(point_irrep, str) or point_irrep not in irreps:
            raise ValueError(
                f"point_irrep must be one of {list(irreps)}, got point_irrep={point_irrep!r}."
            )
        eta = irreps[point_irrep]
        if self._action is None:
            return eta
        m = self._momentum_index(momentum)
        action = self._action
        extent = np.asarray(action.extent)
        # k . r_g = 2 pi sum_a m_a r_a / L_a, as a fraction of a turn kept exact in integers
        lcm = math.lcm(*action.extent)
        turns = (action.translations * (m * (lcm // extent))).sum(axis=1) % lcm
        phase = np.exp(-2j * np.pi * turns / lcm)
        # k is invariant under the point group when (M^T k - k)_a = 0 mod 2 pi along every
        # translated axis a (then k . M s = k . s for every translation s)
        K = m * (lcm // extent)  # k = 2 pi K / lcm
        shift = (np.einsum("gba,b->ga", action.linear, K) - K) % lcm
        if np.any(shift[:, self._translated_axes()] != 0):
            k = tuple(float(v) for v in 2 * np.pi * m / extent)
            raise ValueError(
                f"momentum={k} is not invariant under the point group of {self!r} (its star "
                "has several wave vectors), so no one-dimensional irrep of this group has it. "
                "Use the translation group for this momentum, or the group's "
                "character_table() for the higher-dimensional irreps."
            )
        chi = _snap_roots_of_unity(phase * eta, self.n_elements)
        try:
            return check_characters(self, chi, "characters")
        except ValueError:
            raise ValueError(
                f"the sector momentum={tuple(float(v) for v in 2 * np.pi * m / extent)}, "
                f"point_irrep={point_irrep!r} is not a representation of {self!r}: its "
                "lattice_action does not match its permutations (the lattice's own groups "
                "always match). See sectors() for the sectors the group has."
            ) from None

    def _translated_axes(self) -> np.ndarray:
        return np.flatnonzero(np.any(self._action.translations != 0, axis=0))

    def _momentum_index(self, momentum: Any) -> np.ndarray:
        """The integers m_a of k_a = 2 pi m_a / L_a, validated."""
        action = self._action
        d = len(action.extent)
        if momentum is None:
            return np.zeros(d, dtype=np.int64)
        try:
            k = np.asarray(momentum, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            k = None
        if k is None or k.shape != (d,) or not np.all(np.isfinite(k)):
            raise ValueError(
                f"momentum must be {d} finite numbers, one per lattice axis, got "
                f"momentum={momentum!r}."
            )
        extent = np.asarray(action.extent)
        m = k * extent / (2 * np.pi)
        translated = np.zeros(d, dtype=bool)
        translated[self._translated_axes()] = True
        allowed = translated & (np.abs(m - np.round(m)) < 1e-8)
        zero = ~translated & (np.abs(np.remainder(k + np.pi, 2 * np.pi) - np.pi) < 1e-8)
        if not np.all(allowed | zero):
            a = int(np.argmax(~(allowed | zero)))
            if translated[a]:
                hint = f"2 pi m / {extent[a]} for an integer m"
            else:
                hint = "0 (the group has no translations along it)"
            raise ValueError(
                f"momentum along axis {a} must be {hint}, got momentum={tuple(k.tolist())}."
            )
        return np.where(translated, np.round(m), 0).astype(np.int64) % extent

    def sectors(self) -> list["Sector"]:
        r"""Every one-dimensional irrep of the group, labelled.

        For a lattice group: every momentum $k$ invariant under the point group (in the order
        of the translations, $m_a$ from 0 to $L_a - 1$) times every point-group irrep of
        [`point_irreps`][nqzoo.symmetry.PermutationGroup.point_irreps], skipping those a small
        lattice does not have. For a group of permutations only: the one-dimensional rows of
        [`character_table`][nqzoo.symmetry.PermutationGroup.character_table], with `momentum`
        `None` and `point_irrep` the row's index.

        **Returns:** a list of [`Sector`][nqzoo.symmetry.Sector]`(momentum, point_irrep,
        characters)`; these are all the one-dimensional irreps, each once.
        """
        return list(self._cached("sectors", self._sectors))

    def _sectors(self) -> list["Sector"]:
        if self._action is None:
            table = self.character_table()
            return [
                Sector(None, j, _read_only(np.array(row)))
                for j, row in enumerate(table)
                if abs(row[0] - 1) < 1e-9
            ]
        extent = self._action.extent
        translated = set(self._translated_axes().tolist())
        ranges = [range(n) if a in translated else range(1) for a, n in enumerate(extent)]
        out = []
        for m in itertools.product(*ranges):
            k = tuple(2 * np.pi * mi / n for mi, n in zip(m, extent))
            for name in self.point_irreps():
                try:
                    chi = self.characters(k, name)
                except ValueError:
                    continue
                out.append(Sector(tuple(float(v) for v in k), name, chi))
        return out


class Sector(NamedTuple):
    """A one-dimensional irrep of a group, as listed by
    [`PermutationGroup.sectors`][nqzoo.symmetry.PermutationGroup.sectors]."""

    momentum: tuple[float, ...] | None
    """The crystal momentum $k$ (radians per site, one per axis); `None` for a group of
    permutations only."""
    point_irrep: str | int
    """The point-group irrep's name (the character-table row for a permutations-only group)."""
    characters: np.ndarray
    r"""`(n_elements,)` complex128, the characters $\chi_g$."""


def _point_names(d, n_ops, mats, sigma, eps, det):
    """The Mulliken names of the one-dimensional irreps of the hypercubic point groups this
    module knows, as (name, characters on `mats`), or None."""
    ones = np.ones(n_ops)
    swaps = np.any(np.abs(mats[:, 0, 0]) != 1) if d >= 2 else False
    if d == 1 and n_ops == 2:
        return [("A1", ones), ("A2", det)]
    if d == 2 and n_ops == 8 and swaps:
        return [("A1", ones), ("A2", det), ("B1", sigma), ("B2", eps)]
    if d == 2 and n_ops == 4 and not swaps:
        return [("A1", ones), ("A2", det), ("B1", mats[:, 0, 0]), ("B2", mats[:, 1, 1])]
    if d == 3 and n_ops == 48:
        return [("A1g", ones), ("A2g", sigma), ("A1u", det), ("A2u", eps)]
    return None


@dataclasses.dataclass(frozen=True, eq=False)
class LatticeAction:
    r"""The lattice maps behind the elements of a lattice group: element $g$ moves the site at
    position $y$ to $M_g (y - o) + o + r_g$ (modulo the extent along periodic axes), with $o$
    the lattice's centre along open axes and 0 along periodic ones. Built by
    [`nqzoo.lattice.Grid`][]'s group methods; used by
    [`PermutationGroup.characters`][nqzoo.symmetry.PermutationGroup.characters].
    """

    extent: tuple[int, ...]
    """Sites along each axis."""
    pbc: tuple[bool, ...]
    """Periodic boundary conditions per axis."""
    translations: Int[np.ndarray, "n_elements n_dim"]
    """`(n_elements, n_dim)` int64: the translation $r_g$ (in `0..extent-1`)."""
    linear: Int[np.ndarray, "n_elements n_dim n_dim"]
    """`(n_elements, n_dim, n_dim)` int64: the signed permutation matrix $M_g$."""

    def __post_init__(self):
        d = len(self.extent)
        if (
            len(self.pbc) != d
            or self.translations.shape[1:] != (d,)
            or (self.linear.shape[1:] != (d, d))
            or len(self.translations) != len(self.linear)
        ):
            raise ValueError(
                f"LatticeAction: extent {self.extent}, pbc {self.pbc}, translations "
                f"{self.translations.shape} and linear {self.linear.shape} do not agree."
            )
        for name in ("translations", "linear"):
            object.__setattr__(
                self, name, _read_only(np.array(getattr(self, name), dtype=np.int64))
            )

    @property
    def n_elements(self) -> int:
        """The number of elements described."""
        return len(self.translations)

    def _take(self, order: np.ndarray) -> "LatticeAction":
        return LatticeAction(self.extent, self.pbc, self.translations[order], self.linear[order])


def _rebuild(perms, lattice_action):
    return PermutationGroup(perms, lattice_action=lattice_action)


def _check_closed(perms: np.ndarray, lookup: _RowLookup) -> None:
    """Raise unless the rows of `perms` (identity first, distinct) are closed under composition.

    Picks generators greedily and multiplies every element reached by every generator: when the
    elements reached are all the rows, `S t ⊆ S` holds for a generating set `T ⊆ S` of the group
    generated by `S`, so `S` (which holds the identity) is that group. Costs
    `n_elements * n_generators` compositions, `n_generators <= log2(n_elements)`.
    """
    n_elements = perms.shape[0]
    reached = np.zeros(n_elements, dtype=bool)
    reached[0] = True
    generators: list[int] = []

    def multiply(frontier: np.ndarray, gens: list[int]) -> np.ndarray:
        fresh = []
        for t in gens:
            # the products s t for s in the frontier: perms[s t] = perms[t][perms[s]]
            products = perms[t][perms[frontier]]
            idx = lookup(products)
            if np.any(idx < 0):
                s = int(frontier[int(np.argmax(idx < 0))])
                raise ValueError(
                    "perms must be closed under composition (a group); the product of rows "
                    f"{s} and {t} (perms[{t}][perms[{s}]] = "
                    f"{products[int(np.argmax(idx < 0))].tolist()}) is not a row."
                )
            new = np.unique(idx[~reached[idx]])
            reached[new] = True
            fresh.append(new)
        return np.unique(np.concatenate(fresh))

    while not reached.all():
        t = int(np.argmin(reached))
        generators.append(t)
        frontier = multiply(np.flatnonzero(reached), [t])
        while frontier.size:
            frontier = multiply(frontier, generators)


# -- irreducible representations ----------------------------------------------------------


def _class_data(group: PermutationGroup):
    classes = group.conjugacy_classes
    n_classes = int(classes.max()) + 1
    reps = np.array([int(np.argmax(classes == c)) for c in range(n_classes)])
    sizes = np.bincount(classes, minlength=n_classes)
    return classes, reps, sizes


def _subspace_character(V: np.ndarray, conj_reps: np.ndarray) -> np.ndarray:
    """Character of R restricted to span(V) on the class representatives.

    The projector P = V V^† commutes with R, so P[a, b] = p(a^-1 b) with p = P[e, :], and
    tr(P R(c)) = sum_a p(a^-1 c a)."""
    p = V[0] @ V.conj().T  # p[x] = P[e, x]
    return p[conj_reps].sum(axis=1)


def _cluster(values: np.ndarray, tol: float) -> list[np.ndarray]:
    order = np.argsort(values)
    values = values[order]
    breaks = np.flatnonzero(np.diff(values) > tol) + 1
    return [order[s] for s in np.split(np.arange(len(values)), breaks)]


def _irreps(group: PermutationGroup) -> list[np.ndarray]:
    for attempt in range(8):
        result = _irreps_attempt(group, _IRREP_SEED + attempt)
        if result is not None:
            return result
    raise RuntimeError(  # pragma: no cover - would need eight unlucky random draws
        f"could not decompose the regular representation of {group!r}."
    )


def _irreps_attempt(group: PermutationGroup, seed: int) -> list[np.ndarray] | None:
    n = group.n_elements
    pt, inv = group.product_table, group.inverse
    classes, reps, sizes = _class_data(group)
    # conj_reps[c, a] = a^-1 rep_c a
    conj_reps = pt[inv[None, :], pt[reps][:, np.arange(n)]]
    ainvb = pt[inv]  # [a, b] -> a^-1 b
    rng = np.random.default_rng(seed)

    def commuting(real: bool) -> np.ndarray:
        f = rng.standard_normal(n)
        if real:
            f = f + f[inv]
        else:
            f = f + 1j * rng.standard_normal(n)
            f = f + np.conj(f[inv])
        return f[ainvb]

    def norm(chi_reps):
        return float(np.sum(sizes * np.abs(chi_reps) ** 2) / n)

    # split the whole space, then any reducible piece, with fresh random commuting matrices
    pending: list[np.ndarray | None] = [None]  # None: the whole space (V = identity)
    irreducible: list[tuple[np.ndarray, np.ndarray]] = []
    for round_ in range(6):
        H = commuting(real=round_ == 0)
        still = []
        for V in pending:
            h = H if V is None else V.conj().T @ H @ V
            h = (h + h.conj().T) / 2
            w, U = np.linalg.eigh(h)
            scale = max(float(np.max(np.abs(w))), 1.0)
            for idx in _cluster(w, 1e-8 * scale):
                W = U[:, idx] if V is None else V @ U[:, idx]
                chi = _subspace_character(W, conj_reps)
                m = norm(chi)
                if abs(m - 1) < 1e-6:
                    irreducible.append((W, chi))
                elif abs(m - round(m)) < 1e-6 and m > 1:
                    still.append(W)
                else:  # a split degenerate eigenspace: not an invariant subspace
                    return None
        pending = still
        if not pending:
            break
    if pending:
        return None
    # one subspace per distinct character
    chosen: list[tuple[np.ndarray, np.ndarray]] = []
    for W, chi in irreducible:
        if not any(np.allclose(chi, c, atol=1e-6) for _, c in chosen):
            chosen.append((W, chi))
    dims = [W.shape[1] for W, _ in chosen]
    if sum(d * d for d in dims) != n or len(chosen) != len(sizes):
        return None
    table = np.stack([c for _, c in chosen])
    gram = (table * sizes) @ table.conj().T / n
    if not np.allclose(gram, np.eye(len(chosen)), atol=1e-8):
        return None
    # the representation matrices rho(g) = V^† R(g) V, (R(g) V)[a] = V[g^-1 a]
    left = pt[inv]  # left[g, a] = g^-1 a
    out = []
    for W, _ in chosen:
        d = W.shape[1]
        if np.allclose(W.imag, 0, atol=1e-10):
            W = W.real
        # rho(g) = W^dagger R(g) W, in chunks of elements to bound the memory
        Wh = W.conj().T
        chunk = max(1, 2**22 // (n * d))
        rho = np.concatenate(
            [Wh @ W[left[g : g + chunk]] for g in range(0, n, chunk)], axis=0
        ).astype(np.complex128)
        if d == 1:
            snapped = _snap_roots_of_unity(rho, n)
            if not np.allclose(snapped, rho, atol=1e-8):
                return None
            rho = snapped
        out.append(rho)
    # checks: homomorphism on random pairs, unitarity
    pairs = rng.integers(0, n, size=(min(64, n * n), 2))
    for rho in out:
        lhs = rho[pairs[:, 0]] @ rho[pairs[:, 1]]
        rhs = rho[pt[pairs[:, 0], pairs[:, 1]]]
        if not np.allclose(lhs, rhs, atol=1e-8):
            return None
        if not np.allclose(rho[inv], rho.conj().transpose(0, 2, 1), atol=1e-8):
            return None
    # order: dimension, then characters (real parts decreasing, then imaginary decreasing)
    chars = np.stack([np.trace(r, axis1=1, axis2=2) for r in out])
    keys = [np.round(-chars.imag, 6).T[::-1], np.round(-chars.real, 6).T[::-1]]
    order = np.lexsort((*np.concatenate(keys, axis=0), np.array(dims)))
    return [_read_only(out[i]) for i in order]


def _snap_roots_of_unity(rho: np.ndarray, n: int) -> np.ndarray:
    """The values of a 1D representation are `n`-th roots of unity: replace them by the
    exact root nearest (removes the rounding noise of the eigenvectors)."""
    m = np.round(np.angle(rho) * n / (2 * np.pi))
    z = np.exp(2j * np.pi * m / n)
    z.real[np.abs(z.real) < 1e-14] = 0.0
    z.imag[np.abs(z.imag) < 1e-14] = 0.0
    for v in (-1.0, 1.0):
        z.real[np.abs(z.real - v) < 1e-14] = v
        z.imag[np.abs(z.imag - v) < 1e-14] = v
    return z


# -- checks other modules call --------------------------------------------------------------


def check_group(group: Any, n_sites: int, name: str = "symmetries") -> PermutationGroup:
    """`group` as a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup] acting on `n_sites`
    sites.

    For models that take a symmetry group: accepts a `PermutationGroup` or an integer array of
    shape `(n_elements, n_sites)` (wrapped, hence validated, by `PermutationGroup`).

    **Arguments:**

    - `group`: the group or its permutation array.
    - `n_sites`: the number of sites of the Hilbert space it must act on.
    - `name`: the argument's name, for the messages.

    **Returns:** the `PermutationGroup`.

    **Raises:** `ValueError` naming `name` if `group` is not a group of permutations of
    `n_sites` sites.
    """
    if not isinstance(group, PermutationGroup):
        if type(group).__module__.split(".")[0] == "netket":
            raise TypeError(
                f"{name} is a NetKet group; convert it with "
                f"`nqzoo.interop.netket.group_from_netket({name})`, got {name}={group!r}."
            )
        try:
            group = PermutationGroup(group)
        except ValueError as err:
            message = str(err).replace("perms", name)
            raise ValueError(message) from None
    if group.n_sites != n_sites:
        raise ValueError(
            f"{name} permutes {group.n_sites} sites but the Hilbert space has {n_sites} sites; "
            f"give a group of the same lattice (got {name}={group!r})."
        )
    return group


def check_characters(
    group: PermutationGroup,
    characters: Any,
    name: str = "characters",
    *,
    atol: float = 1e-8,
) -> np.ndarray:
    r"""`characters` as a complex `(n_elements,)` array, checked to be a one-dimensional
    representation of `group`: $|\chi(g)| = 1$ and $\chi(g)\chi(h) = \chi(gh)$ for all
    `g, h` (within `atol`).

    **Arguments:**

    - `group`: the [`PermutationGroup`][nqzoo.symmetry.PermutationGroup].
    - `characters`: one number per group element, in the order of `group.perms`.
    - `name`: the argument's name, for the messages.
    - `atol`: the tolerance.

    **Returns:** `(n_elements,)` complex128 (read-only).

    **Raises:** `ValueError` naming `name` for a wrong shape, non-numeric values, or values
    that are not a one-dimensional representation.
    """
    try:
        chi = np.asarray(characters)
    except Exception:  # noqa: BLE001
        chi = None
    if chi is None or not (np.issubdtype(chi.dtype, np.number) and chi.dtype != np.bool_):
        raise ValueError(
            f"{name} must be an array of numbers, one per group element, got {name}={characters!r}."
        )
    if chi.shape != (group.n_elements,):
        raise ValueError(
            f"{name} must have one entry per group element, shape ({group.n_elements},), got "
            f"shape {chi.shape}."
        )
    chi = chi.astype(np.complex128)
    if not np.all(np.isfinite(chi)):
        raise ValueError(f"{name} must be finite, got {name}={_short(chi)}.")
    if not np.allclose(np.abs(chi), 1, rtol=0, atol=atol):
        g = int(np.argmax(np.abs(np.abs(chi) - 1)))
        raise ValueError(
            f"{name} must be the characters of a one-dimensional representation (|chi(g)| = 1), "
            f"got {name}[{g}] = {chi[g]}."
        )
    pt = group.product_table
    err = np.abs(chi[:, None] * chi[None, :] - chi[pt])
    if np.max(err) > atol:
        g, h = np.unravel_index(int(np.argmax(err)), err.shape)
        raise ValueError(
            f"{name} is not a one-dimensional representation of the group: chi(g) chi(h) != "
            f"chi(gh) for g={g}, h={h} ({chi[g]} * {chi[h]} != {chi[pt[g, h]]} = chi({pt[g, h]}))."
            " Use a row of group.character_table() with dimension 1, or the characters of a "
            "lattice group's sector."
        )
    return _read_only(chi)

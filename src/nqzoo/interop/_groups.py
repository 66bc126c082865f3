"""Conversion of permutation groups between nqzoo and NetKet."""

from typing import Any

import numpy as np

from .. import lattice as nql
from ..symmetry import PermutationGroup


def group_from_netket(nk_group: Any, lattice: Any = None) -> PermutationGroup:
    """The nqzoo group of a NetKet `PermutationGroup` (any: translation, point, space groups,
    graph automorphisms, groups built by hand).

    The permutations are NetKet's `to_array()` (the `inverse_permutation_array` of every
    element), which is nqzoo's `perms` convention, in NetKet's order. NetKet keeps elements
    that act identically (a reflection of a periodic axis of 2 sites, ...); they are dropped,
    keeping the first, as NetKet's `remove_duplicates()` does.

    A group of a hypercubic lattice (NetKet's `Chain`, `Square`, `Hypercube`, `Grid`) that
    equals, element by element, the lattice's
    [`translation_group`][nqzoo.lattice.Grid.translation_group],
    [`point_group`][nqzoo.lattice.Grid.point_group],
    [`rotation_group`][nqzoo.lattice.Grid.rotation_group] or
    [`space_group`][nqzoo.lattice.Grid.space_group] comes back as that group, with its
    [`LatticeAction`][nqzoo.symmetry.LatticeAction] (so momenta and point-group irreps work).
    The lattice is read from the group (NetKet's translation and space groups carry it) or
    from `lattice`.

    **Arguments:**

    - `nk_group`: a `netket.utils.group.PermutationGroup` (or subclass).
    - `lattice`: optional, the NetKet graph or [`nqzoo.lattice.Grid`][] the group acts on.

    **Returns:** a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup].
    """
    import netket as nk

    if not isinstance(nk_group, nk.utils.group.PermutationGroup):
        raise TypeError(
            "nk_group must be a NetKet PermutationGroup (e.g. graph.space_group()), got "
            f"nk_group={nk_group!r}."
        )
    perms = np.asarray(nk_group.to_array())
    _, first = np.unique(perms, axis=0, return_index=True)
    perms = perms[np.sort(first)]
    group = PermutationGroup(perms)
    grid = _as_grid(lattice if lattice is not None else getattr(nk_group, "lattice", None))
    if grid is not None and grid.n_sites == group.n_sites:
        for candidate in (
            grid.space_group(),
            grid.translation_group(),
            grid.point_group(),
            grid.rotation_group(),
        ):
            if candidate == group:
                return candidate
    return group


def _as_grid(lattice: Any) -> nql.Grid | None:
    """The nqzoo Grid of a hypercubic NetKet lattice (unit basis vectors, one site per
    cell), or None."""
    if lattice is None or isinstance(lattice, nql.Grid):
        return lattice
    basis = getattr(lattice, "basis_vectors", None)
    extent = getattr(lattice, "extent", None)
    if basis is None or extent is None or getattr(lattice, "n_nodes", None) is None:
        return None
    basis = np.asarray(basis)
    offsets = np.asarray(getattr(lattice, "site_offsets", np.zeros((1, len(basis)))))
    if basis.shape != (len(basis), len(basis)) or not np.allclose(basis, np.eye(len(basis))):
        return None
    if offsets.shape[0] != 1 or not np.allclose(offsets, 0):
        return None
    grid = nql.Grid(tuple(int(n) for n in extent), tuple(bool(p) for p in lattice.pbc))
    if grid.n_sites != lattice.n_nodes or not np.allclose(
        np.asarray(lattice.positions), grid.coordinates()
    ):
        return None
    return grid


def group_to_netket(group: PermutationGroup) -> Any:
    """The NetKet `PermutationGroup` with the same elements, in the same order: element `g`
    is the `Permutation` whose `inverse_permutation_array` is `group.perms[g]`, so
    `np.asarray(group_to_netket(group))` equals `group.perms`.

    **Arguments:**

    - `group`: a [`PermutationGroup`][nqzoo.symmetry.PermutationGroup].

    **Returns:** a `netket.utils.group.PermutationGroup`.
    """
    import netket as nk

    if not isinstance(group, PermutationGroup):
        raise TypeError(f"group must be a nqzoo.symmetry.PermutationGroup, got group={group!r}.")
    Permutation = nk.utils.group.Permutation
    elems = [
        nk.utils.group.Identity()
        if g == 0
        else Permutation(inverse_permutation_array=np.array(row), validate=False)
        for g, row in enumerate(group.perms)
    ]
    return nk.utils.group.PermutationGroup(elems, degree=group.n_sites)

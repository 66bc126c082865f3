"""Symmetry groups: validation, product table, inverses, irreducible representations and
characters; lattice groups against NetKet's; conversion from NetKet; bad input."""

import itertools
import pickle
import warnings

import netket as nk
import numpy as np
import pytest

import nqzoo.symmetry as symmetry
from nqzoo.symmetry import check_characters, check_group, PermutationGroup


def _netket_graph(kind, *args, **kwargs):
    with warnings.catch_warnings():  # NetKet warns about periodic axes of length 2
        warnings.simplefilter("ignore")
        return getattr(nk.graph, kind)(*args, **kwargs)


def _symmetric_group(n):
    return PermutationGroup(np.array(list(itertools.permutations(range(n)))))


# -- the group ------------------------------------------------------------------------------


def test_basic_properties_and_identity_first():
    ring = np.array([np.roll(np.arange(5), -k) for k in range(5)])
    group = PermutationGroup(ring[[2, 0, 1, 3, 4]])  # identity not first: moved to row 0
    np.testing.assert_array_equal(group.perms, ring[[0, 2, 1, 3, 4]])
    assert len(group) == group.n_elements == 5 and group.n_sites == 5
    assert group.perms.dtype == np.int64 and not group.perms.flags.writeable
    assert np.asarray(group) is group.perms
    np.testing.assert_array_equal(np.asarray(group, dtype=np.int32), group.perms)


@pytest.mark.parametrize("n", [1, 3, 4])
def test_product_table_and_inverse(n):
    group = _symmetric_group(n)
    perms, pt, inv = group.perms, group.product_table, group.inverse
    x = np.random.default_rng(0).normal(size=(3, n))
    for g, h in itertools.product(range(len(group)), repeat=2):
        # g(h(x)) = (g h)(x), with x_g = x[..., perms[g]]
        np.testing.assert_array_equal(x[..., perms[h]][..., perms[g]], x[..., perms[pt[g, h]]])
    elements = np.arange(len(group))
    assert np.all(pt[elements, inv] == 0) and np.all(pt[inv, elements] == 0)
    assert np.all(pt[0] == np.arange(len(group)))  # identity


def test_hash_equality_pickle_immutability():
    a = _symmetric_group(3)
    b = PermutationGroup(np.array(a.perms))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    reordered = PermutationGroup(a.perms[[0, 2, 1, 3, 4, 5]])
    assert reordered != a  # the element order matters (models index parameters by it)
    assert pickle.loads(pickle.dumps(a)) == a
    with pytest.raises(AttributeError):
        a.perms = None  # type: ignore[misc]
    with pytest.raises(ValueError):
        a.perms[0, 0] = 1


# -- irreducible representations ----------------------------------------------------------


def _check_irreps(group):
    irreps = group.irrep_matrices()
    n = len(group)
    pt, inv = group.product_table, group.inverse
    dims = [rho.shape[1] for rho in irreps]
    assert sum(d * d for d in dims) == n
    assert dims == sorted(dims)
    for rho in irreps:
        assert rho.shape == (n, rho.shape[1], rho.shape[1]) and rho.dtype == np.complex128
        np.testing.assert_allclose(rho[0], np.eye(rho.shape[1]), atol=1e-12)
        # homomorphism on every pair and unitarity
        np.testing.assert_allclose(np.einsum("gij,hjk->ghik", rho, rho), rho[pt], atol=1e-10)
        np.testing.assert_allclose(rho[inv], rho.conj().transpose(0, 2, 1), atol=1e-12)
    table = group.character_table()
    assert table.shape == (len(irreps), n)
    np.testing.assert_allclose(table[0], 1, atol=1e-12)  # the trivial irrep first
    np.testing.assert_allclose(table @ table.conj().T / n, np.eye(len(irreps)), atol=1e-10)
    # irreducible and pairwise inequivalent: orthonormal characters; complete: as many as classes
    assert len(irreps) == int(group.conjugacy_classes.max()) + 1
    # Schur orthogonality of the matrix elements
    flat = np.concatenate([np.sqrt(r.shape[1]) * r.reshape(n, -1) for r in irreps], axis=1)
    np.testing.assert_allclose(flat.conj().T @ flat / n, np.eye(n), atol=1e-10)
    return irreps


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_irreps_of_symmetric_groups(n):
    irreps = _check_irreps(_symmetric_group(n))
    expected = {1: [1], 2: [1, 1], 3: [1, 1, 2], 4: [1, 1, 2, 3, 3]}[n]
    assert [r.shape[1] for r in irreps] == expected
    # the irreps of S_n are real: a real orthogonal basis is found
    assert all(np.all(r.imag == 0) for r in irreps)


def test_irreps_cyclic_group_are_roots_of_unity():
    group = PermutationGroup(np.array([np.roll(np.arange(6), -k) for k in range(6)]))
    _check_irreps(group)
    table = group.character_table()
    expected = np.exp(-2j * np.pi * np.outer(np.arange(6), np.arange(6)) / 6)
    for row in expected:  # the momentum characters, each once
        assert np.sum(np.all(np.abs(table - row) < 1e-14, axis=1)) == 1


def test_irreps_quaternion_group():
    # Q8 acting on itself (left regular action): a quaternionic 2D irrep
    units = [sign * e for sign in (1, -1) for e in np.eye(4)]  # +-1, +-i, +-j, +-k

    def mul(a, b):
        a0, a1, a2, a3 = a
        b0, b1, b2, b3 = b
        return np.array(
            [
                a0 * b0 - a1 * b1 - a2 * b2 - a3 * b3,
                a0 * b1 + a1 * b0 + a2 * b3 - a3 * b2,
                a0 * b2 - a1 * b3 + a2 * b0 + a3 * b1,
                a0 * b3 + a1 * b2 - a2 * b1 + a3 * b0,
            ]
        )

    def index(v):
        return next(i for i, u in enumerate(units) if np.allclose(u, v))

    # (g x)_i = x_{perms[g, i]}: perms[g, i] = index(g^-1 u_i) gives a left action
    inverse = [index(u * np.array([1, -1, -1, -1])) for u in units]
    perms = np.array([[index(mul(units[inverse[g]], u)) for u in units] for g in range(8)])
    irreps = _check_irreps(PermutationGroup(perms))
    assert [r.shape[1] for r in irreps] == [1, 1, 1, 1, 2]


@pytest.mark.parametrize(
    "graph",
    [("Chain", 6, True), ("Chain", 5, False), ("Square", 4, True), ("Square", 3, True),
     ("Hypercube", 2, False, 3)],
    ids=str,
)  # fmt: skip
def test_irreps_of_netket_space_groups(graph):
    kind, length, pbc, *n_dim = graph
    kwargs = {"n_dim": n_dim[0]} if n_dim else {}
    nk_group = _netket_graph(kind, length, pbc=pbc, **kwargs).space_group()
    group = PermutationGroup(np.asarray(nk_group))
    _check_irreps(group)
    # the same characters as NetKet's table (as sets of rows)
    ours, theirs = group.character_table(), np.asarray(nk_group.character_table())
    assert ours.shape == theirs.shape
    for row in theirs:
        assert np.sum(np.max(np.abs(ours - row), axis=1) < 1e-8) == 1
    np.testing.assert_array_equal(group.inverse, nk_group.inverse)
    # NetKet's product_table[g, h] is g^-1 h
    np.testing.assert_array_equal(group.product_table[group.inverse], nk_group.product_table)


def test_irreps_deterministic_and_cached():
    a = PermutationGroup(np.asarray(_netket_graph("Square", 3).space_group()))
    b = PermutationGroup(np.array(a.perms))
    assert a.irrep_matrices() is a.irrep_matrices()
    for x, y in zip(a.irrep_matrices(), b.irrep_matrices()):
        np.testing.assert_array_equal(x, y)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "perms,match",
    [
        (np.array([[0, 1], [1, 0]], dtype=float), "integer array"),
        (np.array([[True, False]]), "integer array"),
        (np.array([0, 1, 2]), "2D"),
        (np.zeros((0, 3), dtype=int), "non-empty"),
        ([[0, 1], [1]], "could not read"),
        (np.array([[0, 1, 1]]), "row 0 is"),
        (np.array([[0, 1, 2], [1, 2, 3]]), "row 1 is"),
        (np.array([[1, 0, 2], [0, 2, 1]]), "identity"),
        (np.array([[0, 1, 2], [1, 0, 2], [1, 0, 2]]), "appears more than once"),
        (np.array([[0, 1, 2], [1, 0, 2], [0, 2, 1]]), "closed under composition"),
        (np.array([[0, 1, 2, 3], [1, 2, 3, 0]]), "closed under composition"),
    ],
)
def test_bad_perms(perms, match):
    with pytest.raises(ValueError, match="perms") as info:
        PermutationGroup(perms)
    assert info.match(match)


def test_check_group():
    group = _symmetric_group(3)
    assert check_group(group, 3) is group
    assert check_group(np.array(group.perms), 3, "symmetries") == group
    with pytest.raises(ValueError, match="symmetries permutes 3 sites but the Hilbert space has 4"):
        check_group(group, 4)
    with pytest.raises(ValueError, match="^every row of symmetries must be a permutation"):
        check_group(np.array([[0, 1, 1]]), 3)
    with pytest.raises(ValueError, match="group must be closed"):
        check_group(np.array([[0, 1, 2, 3], [1, 2, 3, 0]]), 4, "group")
    with pytest.raises(TypeError, match="group_from_netket"):
        check_group(_netket_graph("Chain", 4).translation_group(), 4)


def test_check_characters():
    group = PermutationGroup(np.array([np.roll(np.arange(4), -k) for k in range(4)]))
    chi = np.exp(-1j * np.pi / 2 * np.arange(4))
    np.testing.assert_allclose(check_characters(group, chi), chi)
    assert check_characters(group, [1, -1, 1, -1]).dtype == np.complex128
    with pytest.raises(
        ValueError,
        match=r"characters must have one entry per group element, "
        r"shape \(4,\), got shape \(3,\)",
    ):
        check_characters(group, np.ones(3))
    with pytest.raises(ValueError, match="chi must be the characters of a one-dimensional"):
        check_characters(group, [1, 2, 1, 2], "chi")
    with pytest.raises(ValueError, match="characters is not a one-dimensional representation"):
        check_characters(group, [1, 1, -1, 1])
    with pytest.raises(ValueError, match="characters must be an array of numbers"):
        check_characters(group, ["a", "b", "c", "d"])
    # a 2D irrep's character is not a 1D representation
    s3 = _symmetric_group(3)
    with pytest.raises(ValueError, match="not a one-dimensional|one-dimensional representation"):
        check_characters(s3, s3.character_table()[-1])


def test_module_exports():
    assert set(symmetry.__all__) >= {"PermutationGroup", "check_group", "check_characters"}

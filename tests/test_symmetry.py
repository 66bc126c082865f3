"""Symmetry groups: validation, product table, inverses, irreducible representations and
characters; lattice groups against NetKet's; conversion from NetKet; bad input."""

import itertools
import pickle
import warnings

import jax
import netket as nk
import numpy as np
import pytest

import nqzoo.lattice as lattice
import nqzoo.symmetry as symmetry
from nqzoo.interop.netket import group_from_netket, group_to_netket
from nqzoo.symmetry import check_characters, check_group, PermutationGroup

from .helpers import netket_promotion


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


# -- lattice groups against NetKet ------------------------------------------------------------

LATTICES = [
    ((2,), True), ((4,), True), ((5,), True), ((6,), False), ((1,), False),
    ((2, 2), True), ((3, 3), True), ((4, 4), True), ((4, 4), False), ((3, 5), True),
    ((4, 2), True), ((3, 4), (True, False)), ((4, 4), (True, False)), ((3, 3), False),
    ((2, 2, 2), True), ((3, 3, 3), True), ((2, 3, 2), False), ((3, 3, 2), (True, True, False)),
    ((2, 2, 2, 2), False),
]  # fmt: skip
LATTICE_IDS = [f"{'x'.join(map(str, e))}-{p}" for e, p in LATTICES]
GROUPS = ["translation_group", "point_group", "rotation_group", "space_group"]


@pytest.mark.parametrize("extent,pbc", LATTICES, ids=LATTICE_IDS)
def test_lattice_groups_equal_netket(extent, pbc):
    lat = lattice.Grid(extent, pbc)
    nk_lat = _netket_graph("Grid", list(extent), pbc=pbc)
    for name in GROUPS:
        ours = getattr(lat, name)()
        theirs = getattr(nk_lat, name)()
        # equal as sets (NetKet repeats elements that act identically on tiny lattices) ...
        assert {tuple(r) for r in ours.perms.tolist()} == {
            tuple(r) for r in np.asarray(theirs).tolist()
        }
        # ... and in the same order, once NetKet's repeats are dropped
        np.testing.assert_array_equal(ours.perms, np.asarray(theirs.remove_duplicates()))
        assert ours.lattice_action.n_elements == len(ours)
        assert group_from_netket(theirs) == ours
    assert len(lat.point_group()) * len(lat.translation_group()) >= len(lat.space_group())


@pytest.mark.parametrize("kind,args", [("Chain", (8,)), ("Square", (4,)), ("Hypercube", (3, 3))])
def test_named_lattices_and_rotation_space_group(kind, args):
    ours = getattr(lattice, kind)(*args)
    theirs = _netket_graph(kind, *args)
    for name in GROUPS:
        np.testing.assert_array_equal(
            getattr(ours, name)().perms, np.asarray(getattr(theirs, name)())
        )
    rotations = theirs.space_group(theirs._point_group.rotation_group())
    np.testing.assert_array_equal(
        ours.space_group(ours.rotation_group()).perms, np.asarray(rotations)
    )
    sizes = {"Chain": 2, "Square": 8, "Hypercube": 48}
    assert len(ours.point_group()) == sizes[kind]


def test_convention_matches_netket_action_and_dense_symm(getkey):
    lat = lattice.Square(3)
    group = lat.space_group()
    nk_group = _netket_graph("Square", 3).space_group()
    x = np.arange(9.0)[None] + 10 * np.arange(2.0)[:, None]
    for g in range(len(group)):  # NetKet's elements act on x as x[..., perms[g]]
        np.testing.assert_array_equal(np.asarray(nk_group[g](x)), x[..., group.perms[g]])
    # a translation by r moves the configuration by +r
    t = lat.translation_group()
    r = t.lattice_action.translations[4]
    moved = np.zeros(9)
    for i, c in enumerate(lat.coordinates()):
        moved[lat.site_index(c + r)] = x[0, i]
    np.testing.assert_array_equal(x[0, t.perms[4]], moved)
    # NetKet's symmetric layer sees the feature of element g at x as that of the identity at
    # g^-1 x: y_g(x) = y_e(x[..., perms[inverse[g]]])
    layer = nk.nn.DenseSymm(symmetries=nk_group, features=2, mode="matrix")
    with netket_promotion():
        params = layer.init(jax.random.key(0), x[:, None, :])
        y = np.asarray(layer.apply(params, x[:, None, :]))  # (batch, features, G)
        for g in (1, 5, 17, 40):
            xg = x[..., group.perms[group.inverse[g]]]
            y_e = np.asarray(layer.apply(params, xg[:, None, :]))[..., 0]
            np.testing.assert_allclose(y[..., g], y_e, rtol=1e-12)


def test_lattice_action_is_consistent():
    # r_{gh} = r_g + M_g r_h (mod L), M_{gh} = M_g M_h for the space group's affine maps
    for lat in (lattice.Square(4), lattice.Grid((3, 4), (True, False)), lattice.Chain(5, False)):
        group = lat.space_group()
        act, pt = group.lattice_action, group.product_table
        ext = np.asarray(lat.extent)
        lin = np.einsum("gab,hbc->ghac", act.linear, act.linear)
        np.testing.assert_array_equal(lin, act.linear[pt])
        r = act.translations[:, None] + np.einsum("gab,hb->gha", act.linear, act.translations)
        np.testing.assert_array_equal(r % ext, act.translations[pt] % ext)


# -- characters of one-dimensional irreps ----------------------------------------------------


def _netket_1d_irreps(nk_space_group, k):
    table = np.asarray(nk_space_group.space_group_irreps(np.asarray(k)))
    return table[np.abs(table[:, 0] - 1) < 1e-9]


@pytest.mark.parametrize("extent", [(6,), (5,), (4, 4), (3, 3), (4, 6), (2, 2)], ids=str)
def test_sectors_against_netket(extent):
    lat = lattice.Grid(extent)
    group = lat.space_group()
    nk_group = _netket_graph("Grid", list(extent)).space_group()
    sectors = group.sectors()
    # every one-dimensional irrep, each once
    table = group.character_table()
    one_dim = table[np.abs(table[:, 0] - 1) < 1e-9]
    assert len(sectors) == len(one_dim)
    for s in sectors:
        assert np.sum(np.max(np.abs(one_dim - s.characters), axis=1) < 1e-10) == 1
        np.testing.assert_array_equal(s.characters, group.characters(s.momentum, s.point_irrep))
        if len(nk_group) == len(group):  # NetKet's characters at the same momentum
            theirs = _netket_1d_irreps(nk_group, s.momentum)
            assert np.min(np.max(np.abs(theirs - s.characters), axis=1)) < 1e-10
    assert sectors[0].point_irrep in ("A1", "A1g") and np.all(sectors[0].characters == 1)
    # the translation group: every momentum, as NetKet's momentum_irrep
    t = lat.translation_group()
    assert len(t.sectors()) == len(t)
    for s in t.sectors():
        theirs = (
            _netket_graph("Grid", list(extent))
            .translation_group()
            .momentum_irrep(np.asarray(s.momentum))
        )
        np.testing.assert_allclose(s.characters, theirs, atol=1e-12)


def test_point_irrep_names_square():
    group = lattice.Square(4).point_group()
    irreps = group.point_irreps()
    assert list(irreps) == ["A1", "A2", "B1", "B2"]
    mats = group.lattice_action.linear
    for g, m in enumerate(mats):
        rotation90 = abs(m[0, 0]) == 0 and np.linalg.det(m) > 0
        axis_reflection = abs(m[0, 0]) == 1 and np.linalg.det(m) < 0
        diagonal_reflection = abs(m[0, 0]) == 0 and np.linalg.det(m) < 0
        if rotation90:
            assert [irreps[n][g] for n in ("A2", "B1", "B2")] == [1, -1, -1]
        if axis_reflection:
            assert [irreps[n][g] for n in ("A2", "B1", "B2")] == [-1, 1, -1]
        if diagonal_reflection:
            assert [irreps[n][g] for n in ("A2", "B1", "B2")] == [-1, -1, 1]
    assert list(lattice.Chain(6).space_group().point_irreps()) == ["A1", "A2"]
    assert list(lattice.Grid((4, 6)).point_group().point_irreps()) == ["A1", "A2", "B1", "B2"]
    assert list(lattice.Hypercube(3, 3).point_group().point_irreps()) == [
        "A1g", "A2g", "A1u", "A2u"
    ]  # fmt: skip
    # C4 alone: complex irreps, generic names
    assert list(lattice.Square(4).rotation_group().point_irreps()) == ["A1", "chi1", "chi2", "chi3"]


@pytest.mark.parametrize(
    "lat,momentum,irrep",
    [
        (lattice.Chain(6), None, "A1"),
        (lattice.Chain(6), (np.pi,), "A2"),
        (lattice.Square(4), (np.pi, np.pi), "B2"),
        (lattice.Square(4), None, "A2"),
    ],
)
def test_projection_lands_in_the_sector(lat, momentum, irrep):
    """psi_chi(x) = sum_g chi_g psi(g x) has psi_chi(h x) = conj(chi_h) psi_chi(x)."""
    rng = np.random.default_rng(1)
    n = lat.n_sites
    w = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    b = rng.normal(size=n) + 1j * rng.normal(size=n)

    def psi(x):  # an arbitrary, non-symmetric amplitude
        return np.exp(0.1 * np.einsum("...i,ij,...j->...", x, w, x) + x @ b)

    sg, tg = lat.space_group(), lat.translation_group()
    for group, chi in ((sg, sg.characters(momentum, irrep)), (tg, tg.characters(momentum))):
        x = rng.normal(size=(4, n))  # any values: generic, no accidental symmetry
        proj = np.einsum("g,bg->b", chi, psi(x[:, group.perms]))
        for h in range(len(group)):
            xh = x[:, group.perms[h]]
            proj_h = np.einsum("g,bg->b", chi, psi(xh[:, group.perms]))
            np.testing.assert_allclose(proj_h, np.conj(chi[h]) * proj, rtol=1e-10)


def test_complex_momentum_projection():
    lat = lattice.Chain(5)
    group = lat.translation_group()
    chi = group.characters((2 * np.pi * 2 / 5,))
    np.testing.assert_allclose(chi, np.exp(-2j * np.pi * 2 * np.arange(5) / 5), atol=1e-15)
    # x_g for a translation by r is x moved by +r; the projection has psi(t_r x) = e^{ikr} psi
    rng = np.random.default_rng(0)
    table = {}

    def psi(x):
        key = tuple(x)
        if key not in table:
            table[key] = rng.normal() + 1j * rng.normal()
        return table[key]

    x = np.array([1, -1, -1, 1, 1])
    proj = sum(c * psi(x[p]) for c, p in zip(chi, group.perms))
    xr = x[group.perms[1]]
    proj_r = sum(c * psi(xr[p]) for c, p in zip(chi, group.perms))
    np.testing.assert_allclose(proj_r, np.conj(chi[1]) * proj, rtol=1e-12)


def test_characters_bad_input():
    square = lattice.Square(4).space_group()
    with pytest.raises(ValueError, match="momentum=.* is not invariant under the point group"):
        square.characters((np.pi, 0.0))
    with pytest.raises(ValueError, match="momentum along axis 0 must be 2 pi m / 4"):
        square.characters((0.3, 0.0))
    with pytest.raises(ValueError, match="momentum must be 2 finite numbers"):
        square.characters((0.0,))
    with pytest.raises(ValueError, match=r"point_irrep must be one of \['A1', 'A2', 'B1', 'B2'\]"):
        square.characters(None, "E")
    with pytest.raises(ValueError, match="momentum along axis 1 must be 0"):
        lattice.Grid((4, 3), (True, False)).translation_group().characters((0.0, np.pi))
    # a tiny lattice: the reflection of a 2-site ring is the identity, so no odd sector
    assert list(lattice.Chain(2).space_group().point_irreps()) == ["A1"]
    # a lattice action that does not match the permutations
    ring = lattice.Chain(4).translation_group()
    act = ring.lattice_action
    wrong = symmetry.LatticeAction(act.extent, act.pbc, act.translations[[0, 2, 1, 3]], act.linear)
    bad = PermutationGroup(ring.perms, lattice_action=wrong)
    with pytest.raises(ValueError, match="is not a representation"):
        bad.characters((np.pi / 2,))
    with pytest.raises(ValueError, match="lattice_action describes 4 elements but perms has 2"):
        PermutationGroup(ring.perms[[0, 2]], lattice_action=wrong)
    plain = PermutationGroup(np.array(square.perms))
    assert plain.lattice_action is None
    np.testing.assert_array_equal(plain.characters(), np.ones(len(plain)))
    with pytest.raises(ValueError, match="momentum needs a lattice group"):
        plain.characters((0.0, 0.0))
    with pytest.raises(ValueError, match="point_irrep must index a one-dimensional row"):
        plain.characters(point_irrep=len(plain.character_table()) - 1)
    np.testing.assert_allclose(plain.characters(point_irrep=1), plain.character_table()[1])
    assert len(plain.sectors()) == 8 and plain.sectors()[0].momentum is None
    with pytest.raises(ValueError, match="point_group must be a point group of this lattice"):
        lattice.Square(4).space_group(lattice.Square(3).rotation_group())


# -- NetKet conversion -------------------------------------------------------------------------


def test_group_from_netket_any_group():
    graph = _netket_graph("Square", 3)
    for nk_group in (graph.automorphisms(), graph.point_group(), graph.space_group()):
        ours = group_from_netket(nk_group)
        np.testing.assert_array_equal(ours.perms, np.asarray(nk_group.to_array()))
        np.testing.assert_array_equal(ours.product_table[ours.inverse], nk_group.product_table)
        back = group_to_netket(ours)
        np.testing.assert_array_equal(np.asarray(back), ours.perms)
        assert group_from_netket(back) == ours
    # the lattice comes along for NetKet's space and translation groups, or when given
    assert group_from_netket(graph.space_group()).lattice_action is not None
    assert group_from_netket(graph.point_group()).lattice_action is None
    assert group_from_netket(graph.point_group(), lattice=graph) is lattice.Square(3).point_group()
    # repeats (a 2-site periodic axis) are dropped, keeping the first
    nk_small = _netket_graph("Chain", 2).space_group()
    assert len(nk_small) == 4 and len(group_from_netket(nk_small)) == 2
    with pytest.raises(TypeError, match="nk_group must be a NetKet PermutationGroup"):
        group_from_netket(np.eye(3, dtype=int))


def test_static_field_of_a_module_and_index():
    import equinox as eqx
    import jax.numpy as jnp

    class Symmetrise(eqx.Module):
        group: PermutationGroup = eqx.field(static=True)

        def __call__(self, x):
            return jnp.sum(x[..., self.group.perms], axis=-2)

    group = lattice.Square(3).space_group()
    model = Symmetrise(group)
    x = jnp.arange(9.0)
    y = eqx.filter_jit(model)(x)
    np.testing.assert_allclose(y, np.asarray(x)[group.perms].sum(axis=0))
    assert eqx.filter_jit(Symmetrise(lattice.Square(3).space_group()))(x).shape == (9,)
    assert group.index(group.perms[17]) == 17
    with pytest.raises(ValueError, match="is not an element"):
        group.index(np.array([1, 0, 2, 3, 4, 5, 6, 7, 8]))
    with pytest.raises(ValueError, match=r"perm must be an integer array of shape \(9,\)"):
        group.index(np.arange(4))

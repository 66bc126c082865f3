"""Lattices: NetKet's edges, site numbering, bipartiteness and snake ordering; immutability."""

import dataclasses
import warnings

import netket as nk
import numpy as np
import pytest
from netket.experimental.nn.rnn import get_snake_inv_reorder_idx
from netket.experimental.nn.rnn.ordering import _get_inv_reorder_idx

import nqzoo.lattice as lattice


# (extent, pbc): chains, squares, rectangles, 3D, mixed boundaries, length-2 periodic axes
CASES = [
    ((2,), True), ((3,), True), ((4,), True), ((5,), True), ((8,), True),
    ((1,), False), ((2,), False), ((5,), False),
    ((2, 2), True), ((3, 3), True), ((4, 4), True), ((3, 4), True), ((4, 2), True),
    ((3, 3), False), ((4, 5), False), ((4, 1), False),
    ((3, 4), (True, False)), ((4, 3), (False, True)),
    ((2, 2, 2), True), ((3, 3, 3), True), ((2, 3, 4), False), ((4, 2, 3), (True, False, True)),
]  # fmt: skip
IDS = [f"{'x'.join(map(str, e))}-{p}" for e, p in CASES]


def _netket_grid(extent, pbc, order):
    with warnings.catch_warnings():  # NetKet warns about periodic axes of length 2
        warnings.simplefilter("ignore")
        return nk.graph.Grid(list(extent), pbc=pbc, max_neighbor_order=order)


def _pairs(edges):
    return sorted({tuple(sorted(int(v) for v in e)) for e in edges})


def _as_list(edges):
    return [tuple(e) for e in np.asarray(edges).tolist()]


@pytest.mark.parametrize("extent,pbc", CASES, ids=IDS)
def test_matches_netket_grid(extent, pbc):
    lat = lattice.Grid(extent, pbc)
    g1 = _netket_grid(extent, pbc, 1)
    assert lat.n_sites == g1.n_nodes
    # NetKet numbers the sites row-major; its positions are our coordinates
    np.testing.assert_array_equal(lat.coordinates(), g1.positions)
    np.testing.assert_array_equal(lat.coordinates(), np.indices(extent).reshape(len(extent), -1).T)
    edges = lat.edges(1)
    assert edges.shape[1:] == (2,) and edges.dtype == np.int64
    assert _as_list(edges) == _pairs(g1.edges())  # sorted rows with i < j, no duplicates
    assert lat.is_bipartite == g1.is_bipartite()
    try:
        g2 = _netket_grid(extent, pbc, 2)
    except RuntimeError:  # a self-referential order-2 edge: we refuse it too
        with pytest.raises(ValueError, match="order=2"):
            lat.edges(2)
    else:
        assert _as_list(lat.edges(2)) == _pairs(g2.edges(filter_color=1))
        assert _as_list(lat.edges(1)) == _pairs(g2.edges(filter_color=0))


def test_known_edges():
    """A few edge sets written out by hand (independent of NetKet)."""
    assert _as_list(lattice.Chain(4).edges()) == [(0, 1), (0, 3), (1, 2), (2, 3)]
    assert _as_list(lattice.Chain(4, pbc=False).edges()) == [(0, 1), (1, 2), (2, 3)]
    assert _as_list(lattice.Chain(5).edges(2)) == [(0, 2), (0, 3), (1, 3), (1, 4), (2, 4)]
    assert _as_list(lattice.Chain(2).edges()) == [(0, 1)]  # one bond, not two
    assert _as_list(lattice.Chain(3).edges(2)) == [(0, 1), (0, 2), (1, 2)]  # the other way round
    assert _as_list(lattice.Chain(2, pbc=False).edges(2)) == []
    assert _as_list(lattice.Square(2, pbc=False).edges(2)) == [(0, 3), (1, 2)]
    # a 3x3 torus: 18 bonds, 18 diagonals; site 4 (the centre) has 4 of each
    sq = lattice.Square(3)
    assert len(sq.edges(1)) == 18 and len(sq.edges(2)) == 18
    assert sorted(j for i, j in sq.edges(2) if i == 4) == [6, 8]
    assert sorted(i for i, j in sq.edges(2) if j == 4) == [0, 2]


def test_builders_and_hashing():
    assert lattice.Chain(6) == lattice.Hypercube(6, 1) == lattice.Grid(6) == lattice.Grid((6,))
    assert lattice.Square(4, pbc=False) == lattice.Grid((4, 4), pbc=(False, False))
    assert lattice.Hypercube(3, 3).extent == (3, 3, 3)
    assert lattice.Grid((4, 3), pbc=[True, False]).pbc == (True, False)
    assert lattice.Chain(6) != lattice.Chain(6, pbc=False)
    assert lattice.Hypercube(np.int64(3), np.int32(2)) == lattice.Grid([3, np.int64(3)])
    assert type(lattice.Hypercube(np.int64(3), 2).extent[0]) is int
    assert hash(lattice.Square(4)) == hash(lattice.Grid((4, 4), True))
    assert len({lattice.Chain(4), lattice.Hypercube(4), lattice.Chain(5)}) == 2
    lat = lattice.Square(4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lat.extent = (2, 2)
    with pytest.raises(ValueError, match="read-only"):
        lat.edges()[0, 0] = 5
    with pytest.raises(ValueError, match="read-only"):
        lat.coordinates()[0, 0] = 5
    assert lat.n_dim == 2 and lat.n_sites == lat.n_nodes == 16
    assert "Grid(extent=(4, 4), pbc=(True, True))" == repr(lat)


def test_site_index():
    lat = lattice.Grid((3, 4), pbc=(True, False))
    for site, coords in enumerate(lat.coordinates()):
        assert lat.site_index(coords) == site
    assert lat.site_index((-1, 2)) == lat.site_index((2, 2)) == 10  # wrapped on the periodic axis
    with pytest.raises(ValueError, match="outside"):
        lat.site_index((0, 4))
    with pytest.raises(ValueError, match="one entry per axis"):
        lat.site_index((0,))


@pytest.mark.parametrize(
    "lat",
    [lattice.Chain(6), lattice.Chain(5, pbc=False), lattice.Square(4), lattice.Grid((3, 4), False),
     lattice.Grid((2, 4, 3), (True, True, False))],
    ids=repr,
)  # fmt: skip
def test_sublattice_is_a_two_colouring(lat):
    parity = lat.sublattice()
    assert parity.shape == (lat.n_sites,) and set(parity.tolist()) == {0, 1}
    assert parity[0] == 0
    edges = lat.edges(1)
    assert np.all(parity[edges[:, 0]] != parity[edges[:, 1]])
    if len(lat.edges(2)):  # next-nearest neighbours of a hypercubic lattice: same sublattice
        e2 = lat.edges(2)
        assert np.all(parity[e2[:, 0]] == parity[e2[:, 1]])


@pytest.mark.parametrize(
    "lat", [lattice.Chain(5), lattice.Square(3), lattice.Grid((4, 3))], ids=repr
)
def test_non_bipartite_refused(lat):
    assert not lat.is_bipartite
    with pytest.raises(ValueError, match="not bipartite"):
        lat.sublattice()


@pytest.mark.parametrize(
    "extent,pbc",
    [((4, 4), True), ((4, 4), False), ((3, 5), True), ((3, 5), False), ((5, 2), True),
     ((5, 2), False), ((1, 3), False), ((4, 3), (False, True))],
)  # fmt: skip
def test_snake_order_matches_netket(extent, pbc):
    lat = lattice.Grid(extent, pbc)
    g = _netket_grid(extent, pbc, 1)
    order = lat.snake_order()
    np.testing.assert_array_equal(order, np.asarray(get_snake_inv_reorder_idx(g)))
    assert sorted(order.tolist()) == list(range(lat.n_sites))
    np.testing.assert_array_equal(order[order], np.arange(lat.n_sites))  # its own inverse
    # consecutive sites of the path are nearest neighbours
    bonds = set(_as_list(lattice.Grid(extent, False).edges()))
    assert all(tuple(sorted((int(a), int(b)))) in bonds for a, b in zip(order, order[1:]))
    if not any(lat.pbc):  # with open boundaries it is also what NetKet's RNNs derive from a graph
        np.testing.assert_array_equal(order, np.asarray(_get_inv_reorder_idx(g)))


def test_snake_order_values():
    np.testing.assert_array_equal(lattice.Grid((3, 3)).snake_order(), [0, 1, 2, 5, 4, 3, 6, 7, 8])
    with pytest.raises(ValueError, match="two-dimensional.*n_dim=1"):
        lattice.Chain(4).snake_order()


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: lattice.Grid((0, 3)), "extent"),
        (lambda: lattice.Grid(()), "extent"),
        (lambda: lattice.Chain(0), "length"),
        (lambda: lattice.Hypercube(3, 0), "n_dim"),
        (lambda: lattice.Chain(1), r"periodic axis needs at least 2 sites.*axis 0"),
        (lambda: lattice.Grid((3, 3), pbc=(True,)), r"pbc has 1 entries .* 2 axes"),
        (lambda: lattice.Chain(4).edges(0), "order"),
        (lambda: lattice.Chain(2).edges(2), r"order=2.*own periodic image"),
    ],
)
def test_bad_input(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_wrong_types_name_the_argument():
    with pytest.raises(TypeError, match="length"):
        lattice.Chain(2.5)
    with pytest.raises(TypeError, match="pbc"):
        lattice.Grid((3, 3), pbc="yes")

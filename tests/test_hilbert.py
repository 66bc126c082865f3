"""Hilbert spaces: NetKet's conventions, enumeration, index maps, immutability, bad arguments."""

import dataclasses

import jax
import numpy as np
import pytest

import nqzoo as nqz
from nqzoo.hilbert import Fock, Particles, Qubit, Spin
from nqzoo.interop.netket import hilbert_from_netket, hilbert_to_netket

from .helpers import netket_promotion


SPACES = [Spin(0.5, 3), Spin(1, 3), Spin(1.5, 2), Qubit(4), Fock(3, 2), Spin(1, 3, total_sz=1)]
IDS = [repr(h) for h in SPACES]


def test_local_states_order():
    assert Spin(0.5, 2).local_states == (1, -1)
    assert Spin(1, 2).local_states == (2, 0, -2)
    assert Spin(1.5, 2).local_states == (3, 1, -1, -3)
    assert Qubit(2).local_states == (0, 1)
    assert Fock(3, 2).local_states == (0, 1, 2, 3)
    assert Spin(1.5, 2).local_size == 4 and Spin(1.5, 2).size == 2


@pytest.mark.parametrize("hilbert", SPACES, ids=IDS)
def test_matches_netket(hilbert):
    states = np.asarray(hilbert.all_states())
    idx = np.asarray(hilbert.states_to_local_indices(states))
    with netket_promotion():
        nk_hi = hilbert_to_netket(hilbert)
        nk_states, nk_idx = nk_hi.all_states(), nk_hi.states_to_local_indices(states)
    assert list(hilbert.local_states) == [int(v) for v in nk_hi.local_states]
    np.testing.assert_array_equal(states, nk_states)  # same order, last site fastest
    assert states.dtype == np.int8 and hilbert.dtype == np.int8
    assert hilbert.constrained == nk_hi.constrained
    np.testing.assert_array_equal(idx, nk_idx)
    np.testing.assert_array_equal(hilbert.local_indices_to_states(idx), states)
    assert hilbert_from_netket(nk_hi) == hilbert


def test_all_states_first_rows():
    states = np.asarray(Spin(0.5, 4).all_states())
    np.testing.assert_array_equal(states[:3], [[1, 1, 1, 1], [1, 1, 1, -1], [1, 1, -1, 1]])
    assert states.shape == (16, 4)


def test_all_states_refuses_large_spaces():
    with pytest.raises(ValueError, match=r"2\^30 = 1073741824 states, more than all_states"):
        Spin(0.5, 30).all_states()
    with pytest.raises(ValueError, match=r"all_states\(\) enumerates"):
        Fock(9, 8).all_states()


@pytest.mark.parametrize("hilbert", [Spin(0.5, 5), Spin(1.5, 5), Fock(4, 5)])
def test_random_state_in_space(hilbert, getkey):
    x = np.asarray(hilbert.random_state(getkey(), (50, 3)))
    assert x.shape == (50, 3, 5) and x.dtype == np.int8
    assert set(np.unique(x)) == set(hilbert.local_states)  # every value drawn, none other
    assert np.asarray(hilbert.random_state(getkey())).shape == (5,)
    idx = hilbert.states_to_local_indices(x)
    np.testing.assert_array_equal(hilbert.local_indices_to_states(idx), x)


def test_random_state_constrained(getkey):
    hi = Spin(0.5, 6, total_sz=1)
    x = np.asarray(hi.random_state(getkey(), 40))
    assert x.shape == (40, 6) and np.all(x.sum(-1) == 2)


def test_particles(getkey):
    box = Particles(N=3, L=(2.0, 5.0), pbc=True)
    assert box.d == 2 and box.size == 6 and box.pbc == (True, True) and box.L == (2.0, 5.0)
    x = np.asarray(box.random_state(getkey(), 100)).reshape(100, 3, 2)
    assert np.all(x >= 0) and np.all(x < np.array([2.0, 5.0]))
    assert Particles(4, 3.0).L == (3.0,) and Particles(4, 3.0).size == 4
    assert Particles(2, (1.0, 1.0), pbc=(True, False)).pbc == (True, False)
    with netket_promotion():
        nk_box = hilbert_to_netket(box)
    assert nk_box.size == 6 and hilbert_from_netket(nk_box) == box


@pytest.mark.parametrize("hilbert", [Spin(0.5, 3), Fock(2, 3), Qubit(2), Particles(2, (1.0,))])
def test_hashable_and_immutable(hilbert):
    twin = dataclasses.replace(hilbert) if not isinstance(hilbert, Particles) else Particles(
        hilbert.N, hilbert.L, hilbert.pbc)
    assert twin == hilbert and hash(twin) == hash(hilbert) and len({hilbert, twin}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        hilbert.N = 5
    assert Spin(0.5, 3) != Spin(1, 3) and Spin(0.5, 3) != Spin(0.5, 4)


def test_static_field_of_a_model(getkey):
    model = nqz.models.RBM(Spin(0.5, 4), key=getkey())
    leaves = jax.tree.leaves(model)
    assert all(hasattr(leaf, "shape") for leaf in leaves)  # the space is not a leaf


@pytest.mark.parametrize("s", [0, -0.5, 0.3, 1.25, -1])
def test_spin_s_not_positive_half_integer(s):
    with pytest.raises(ValueError, match=rf"Spin s must be a positive multiple of 1/2.*s={s}"):
        Spin(s, 3)


def test_spin_bad_total_sz():
    with pytest.raises(ValueError, match=r"total_sz=5 is not reachable"):
        Spin(0.5, 4, total_sz=5)
    with pytest.raises(ValueError, match=r"total_sz=0.5 has the wrong parity"):
        Spin(0.5, 4, total_sz=0.5)


@pytest.mark.parametrize("n_max", [0, -1])
def test_fock_n_max_below_one(n_max):
    with pytest.raises(ValueError, match=rf"n_max must be an integer >= 1, got n_max={n_max}"):
        Fock(n_max, 3)


@pytest.mark.parametrize("make", [lambda: Spin(0.5, 0), lambda: Qubit(-2), lambda: Fock(2, 0),
                                  lambda: Particles(0, (1.0,))])
def test_bad_number_of_sites(make):
    with pytest.raises(ValueError, match=r"N must be a positive integer"):
        make()
    with pytest.raises(TypeError, match=r"parameter 'N'"):  # the signature's type check
        Spin(0.5, 2.5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"N": 2, "L": ()}, r"L must be one or more positive finite box extents"),
        ({"N": 2, "L": (1.0, -2.0)}, r"L must be one or more positive"),
        ({"N": 2, "L": (float("inf"),)}, r"L must be one or more positive"),
        ({"N": 2, "L": (1.0, 1.0), "pbc": (True,)}, r"pbc has 1 entries but the box has d=2"),
    ],
)
def test_particles_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Particles(**kwargs)


def test_numpy_integers_are_sizes():
    """numpy integers are accepted for sizes and stored as Python ints (equal, same hash)."""
    spaces = [
        (Spin(0.5, np.int64(3)), Spin(0.5, 3)),
        (Qubit(np.int32(4)), Qubit(4)),
        (Fock(np.int16(2), np.int8(3)), Fock(2, 3)),
        (Particles(np.int64(3), (1.0, 2)), Particles(3, (1.0, 2.0))),
    ]
    for ours, plain in spaces:
        assert ours == plain and hash(ours) == hash(plain) and repr(ours) == repr(plain)
        assert type(ours.N) is int
    assert type(spaces[2][0].n_max) is int


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_inf_and_nan_refused_with_the_argument_name(value):
    with pytest.raises(ValueError, match=r"Spin s must be a positive multiple of 1/2.*s="):
        Spin(value, 3)
    with pytest.raises(ValueError, match=rf"total_sz={value} is not reachable"):
        Spin(0.5, 4, total_sz=value)
    with pytest.raises(ValueError, match=r"L must be one or more positive finite.*L="):
        Particles(2, value)
    # sizes are ints: the signature's type check names the argument
    for make, name in [(lambda: Spin(0.5, value), "N"), (lambda: Fock(value, 2), "n_max"),
                       (lambda: Particles(value, 1.0), "N")]:
        with pytest.raises(TypeError, match=rf"parameter '{name}'"):
            make()


@pytest.mark.parametrize("L", [True, (1.0, False), [2.0, True]])
def test_particles_refuses_bool_extents(L):
    with pytest.raises(ValueError, match=r"L must be one or more positive finite box extents"):
        Particles(2, L)

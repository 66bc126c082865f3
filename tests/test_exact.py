"""Exact references: the sparse matrix equals to_dense (constrained spaces, complex and
many-valued operators, any chunking), Lanczos equals dense diagonalisation and NetKet's
lanczos_ed, the closed form of the Ising chain equals exact diagonalisation, bad input."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo.exact as exact
import nqzoo.hilbert as hilbert
import nqzoo.lattice as lattice
import nqzoo.operators as operators
from nqzoo.hilbert import AbstractDiscreteHilbert

from .helpers import netket_promotion


class Flips(operators.AbstractOperator):
    r"""A test operator with many distinct (optionally complex) elements:
    $\sum_i z_i z_{i+1}$ on the diagonal and, for each site, the flip of spin $i$ with element
    $(1 + \sum_{j\ne i} w_j z_j)\,f_i$ from up to down and its conjugate back (Hermitian)."""

    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    fields: tuple = eqx.field(static=True)
    weights: tuple = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)

    def __init__(self, hi, seed, complex_fields=False):
        rng = np.random.default_rng(seed)
        fields = rng.normal(size=hi.size) + (1j * rng.normal(size=hi.size) if complex_fields else 0)
        self.hilbert = hi
        self.fields = tuple(fields.tolist())
        self.weights = tuple(rng.uniform(-0.3, 0.3, size=hi.size).tolist())
        self.dtype = np.dtype(np.complex128 if complex_fields else np.float64)

    @property
    def n_conn(self):
        return self.hilbert.size + 1

    def _connected(self, x):
        n = self.hilbert.size
        up, down = self.hilbert.local_states
        z = jnp.where(x == up, 1.0, -1.0)
        diag = jnp.sum(z * jnp.roll(z, 1, axis=-1), axis=-1)
        batch = (1,) * (x.ndim - 1)
        w = np.asarray(self.weights)
        others = 1 + (z @ w)[..., None] - z * w.reshape(batch + (n,))  # sum over j != i
        f = np.asarray(self.fields, dtype=self.dtype).reshape(batch + (n,))
        mels = jnp.where(z > 0, others.astype(self.dtype) * f, others.astype(self.dtype) * f.conj())
        flipped = jnp.asarray(up + down - x, dtype=x.dtype)
        eye = np.eye(n, dtype=bool).reshape((1,) * (x.ndim - 1) + (n, n))
        flips = jnp.where(eye, flipped[..., None, :], x[..., None, :])
        x_conn = jnp.concatenate([x[..., None, :], flips], axis=-2)
        return x_conn, jnp.concatenate([diag.astype(self.dtype)[..., None], mels], axis=-1)


class DiagonalLast(Flips):
    """Breaks the contract of `connected`: the diagonal element comes last."""

    def _connected(self, x):
        x_conn, mels = super()._connected(x)
        return jnp.roll(x_conn, -1, axis=-2), jnp.roll(mels, -1, axis=-1)


def _dense_from_matvec(matrix):
    eye = jnp.eye(matrix.n_states, dtype=matrix.dtype)
    return np.asarray(jax.vmap(lambda v: matrix @ v, out_axes=1)(eye))


def _ising_parts(n):
    """sum X and sum Z Z of the periodic chain as dense matrices, from bit operations
    (independent of nqzoo; site 0 the most significant bit, bit 0 = spin up)."""
    states = np.arange(2**n)
    z = 1 - 2 * ((states[:, None] >> (n - 1 - np.arange(n))) & 1)  # (2^n, n)
    zz = np.sum(z * np.roll(z, -1, axis=1), axis=1)
    x_sum = np.zeros((2**n, 2**n))
    for i in range(n):
        x_sum[states, states ^ (1 << (n - 1 - i))] = 1.0
    return x_sum, np.diag(zz.astype(float))


def _ising_dense(n, h, J):
    x_sum, zz = _ising_parts(n)
    return -h * x_sum + J * zz


CHAIN8 = lattice.Chain(8)
SPARSE_CASES = {
    "ising": operators.Ising(hilbert.Spin(0.5, 8), CHAIN8, h=0.7, J=1.3),
    "heisenberg_sz0": operators.Heisenberg(hilbert.Spin(0.5, 8, total_sz=0), CHAIN8),
    "bose_hubbard": operators.BoseHubbard(hilbert.Fock(2, 4), lattice.Chain(4), U=2.0, V=0.3),
    "many_values": Flips(hilbert.Spin(0.5, 8), seed=0),
    "complex_many_values": Flips(hilbert.Spin(0.5, 6), seed=1, complex_fields=True),
}


@pytest.mark.parametrize("name", list(SPARSE_CASES))
def test_sparse_matrix_equals_to_dense(name):
    op = SPARSE_CASES[name]
    dense = op.to_dense()
    # 7 divides none of the sizes: the last chunk overlaps the one before
    for chunk_size in (None, 7) if name in ("ising", "heisenberg_sz0") else (None,):
        matrix = exact.sparse_matrix(op, chunk_size=chunk_size)
        assert matrix.n_states == len(dense) and matrix.dtype == op.dtype
        np.testing.assert_allclose(_dense_from_matvec(matrix), dense, rtol=1e-14, atol=1e-14)
    # one-byte codes for a few distinct real elements, values otherwise
    coded = name not in ("many_values", "complex_many_values")
    assert (matrix.codes is not None) == coded


def test_sparse_matrix_memory():
    op = SPARSE_CASES["ising"]
    matrix = exact.sparse_matrix(op)
    n = 2**8
    assert matrix.n_off == op.n_conn - 1
    assert matrix.nbytes == n * 8 + n * matrix.n_off * (4 + 1) + matrix.table.nbytes
    assert sorted(np.asarray(matrix.table).tolist()) == [-0.7, 0.0]


def test_tfim_chain_energy_is_exact_diagonalisation():
    # Both parity sectors, odd (frustrated for J > 0) and even chains, every sign.
    for n in (3, 4, 5, 6, 7, 8):
        x_sum, zz = _ising_parts(n)
        for h in (0.0, 0.4, 1.0, -1.6):
            for J in (1.0, -1.0, 0.3, -2.5):
                e0 = np.linalg.eigvalsh(-h * x_sum + J * zz)[0]
                assert exact.tfim_chain_energy(n, h, J) == pytest.approx(e0, rel=1e-12, abs=1e-12)
    # the convention is nqzoo.operators.Ising's
    op = operators.Ising(hilbert.Spin(0.5, 5), lattice.Chain(5), h=0.8, J=0.6)
    np.testing.assert_allclose(op.to_dense(), _ising_dense(5, 0.8, 0.6), atol=1e-14)


def test_tfim_chain_energy_ferromagnet_formula():
    # -sum_k sqrt(1 + h^2 - 2h cos k) over antiperiodic k for the ferromagnet (J = -1)
    for n, h in ((8, 0.5), (20, 1.0), (32, 1.0), (101, 2.0)):
        k = np.pi * (2 * np.arange(n) + 1) / n
        expected = -np.sum(np.sqrt(1 + h * h - 2 * h * np.cos(k)))
        assert exact.tfim_chain_energy(n, h, -1.0) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(n_sites=2, h=1.0), "n_sites"),
        (dict(n_sites=True, h=1.0), "n_sites"),
        (dict(n_sites=8, h=float("nan")), "h="),
        (dict(n_sites=8, h=1.0, J=float("inf")), "J="),
        (dict(n_sites=8.0, h=1.0), "n_sites"),  # refused by the annotation: a TypeError
        (dict(n_sites=8, h=1j), "'h'"),
    ],
)
def test_tfim_chain_energy_bad_input(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        exact.tfim_chain_energy(**kwargs)


@pytest.mark.parametrize("name", ["ising", "heisenberg_sz0", "bose_hubbard", "complex_many_values"])
def test_ground_state_equals_dense_diagonalisation(name):
    op = SPARSE_CASES[name]
    dense = op.to_dense()
    evals, evecs = np.linalg.eigh(dense)
    result = exact.ground_state(op, return_vector=True)
    assert result.energy == pytest.approx(evals[0], rel=1e-12)
    v = np.asarray(result.vector)
    assert v.dtype == op.dtype and v.shape == (len(dense),)
    assert np.linalg.norm(v) == pytest.approx(1.0, rel=1e-12)
    assert np.linalg.norm(dense @ v - evals[0] * v) < 1e-9
    ground = evecs[:, np.abs(evals - evals[0]) < 1e-9]  # (the ground state may be degenerate)
    assert np.linalg.norm(ground.conj().T @ v) == pytest.approx(1.0, rel=1e-10)
    top = v[np.argmax(np.abs(v))]
    assert top.real > 0 and abs(top.imag) < 1e-15
    assert result.residual < 1e-12 * abs(evals).max()


def test_ground_state_small_basis_restarts():
    op = SPARSE_CASES["many_values"]
    e0 = np.linalg.eigvalsh(op.to_dense())[0]
    matrix = exact.sparse_matrix(op)
    small = exact.ground_state(matrix, n_basis=4)  # restarts every 2 products
    assert small.energy == pytest.approx(e0, rel=1e-12)
    assert small.n_matvec > exact.ground_state(matrix).n_matvec
    with pytest.raises(RuntimeError, match="max_matvec=5"):
        exact.ground_state(matrix, n_basis=4, max_matvec=5)


def test_ground_state_tfim_chain_16():
    # 2^16 states, against the closed form
    op = operators.Ising(hilbert.Spin(0.5, 16), lattice.Chain(16), h=1.0, J=-1.0)
    result = exact.ground_state(op)
    assert result.energy == pytest.approx(exact.tfim_chain_energy(16, 1.0, -1.0), rel=1e-12)


def _nk_grid(lat, order):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nk.graph.Grid(list(lat.extent), pbc=list(lat.pbc), max_neighbor_order=order)


def test_ground_state_equals_netket_lanczos_ed():
    # NetKet's operators with the same Hamiltonians (their elements are compared in
    # test_operators.py); lanczos_ed is ARPACK on NetKet's sparse matrix.
    chain = lattice.Chain(10)
    cases = [
        (
            operators.Ising(hilbert.Spin(0.5, 10), chain, h=0.7, J=1.0),
            nk.operator.IsingJax(nk.hilbert.Spin(0.5, 10), _nk_grid(chain, 1), h=0.7, J=1.0),
        ),
        (
            operators.BoseHubbard(hilbert.Fock(3, 6), lattice.Chain(6), U=3.0, V=0.5, mu=0.2),
            nk.operator.BoseHubbardJax(
                nk.hilbert.Fock(3, 6), _nk_grid(lattice.Chain(6), 1), U=3.0, V=0.5, mu=0.2
            ),
        ),
    ]
    for op, nk_op in cases:
        with netket_promotion():
            expected = float(nk.exact.lanczos_ed(nk_op, k=1)[0])
        assert exact.ground_state(op).energy == pytest.approx(expected, rel=1e-10)


def test_ground_state_j1j2_square():
    # J1-J2 on the 4x4 torus at J2 = 0.5 in the total_sz = 0 sector (12870 states): the
    # published value (NetKet's lanczos_ed on the full space gives -33.83169341)
    op = operators.Heisenberg(hilbert.Spin(0.5, 16, total_sz=0), lattice.Square(4), J=1.0, J2=0.5)
    assert exact.ground_state(op).energy == pytest.approx(-33.8316934, abs=1e-7)


def test_ground_state_float32():
    op = operators.Ising(hilbert.Spin(0.5, 8), CHAIN8, h=0.7, J=1.3, dtype=jnp.float32)
    result = exact.ground_state(op, tol=1e-6, return_vector=True)
    assert result.vector.dtype == np.float32
    assert result.energy == pytest.approx(exact.tfim_chain_energy(8, 0.7, 1.3), rel=1e-5)


def test_sparse_matrix_bad_input():
    with pytest.raises(TypeError, match="operator must be an nqzoo operator"):
        exact.sparse_matrix(np.eye(4))
    with pytest.raises(ValueError, match="MAX_SPARSE_STATES"):
        exact.sparse_matrix(operators.Ising(hilbert.Spin(0.5, 26), lattice.Chain(26), h=1.0))
    with pytest.raises(ValueError, match="chunk_size"):
        exact.sparse_matrix(SPARSE_CASES["ising"], chunk_size=0)
    # flips leave the total_sz = 0 sector
    with pytest.raises(ValueError, match="outside that"):
        exact.sparse_matrix(Flips(hilbert.Spin(0.5, 6, total_sz=0), seed=0))
    with pytest.raises(ValueError, match="must list x itself first"):
        exact.sparse_matrix(DiagonalLast(hilbert.Spin(0.5, 4), seed=0))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(tol=0.0), "tol"),
        (dict(tol=2.0), "tol"),
        (dict(n_basis=1), "n_basis"),
        (dict(max_matvec=0), "max_matvec"),
    ],
)
def test_ground_state_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        exact.ground_state(SPARSE_CASES["ising"], **kwargs)

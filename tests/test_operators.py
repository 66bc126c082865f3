"""Operators and local energies: NetKet's matrix elements and dense matrices, exact H psi / psi,
NetKet's local energies, padding, dtypes, bad input."""

import collections
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo.hilbert as hilbert
import nqzoo.lattice as lattice
import nqzoo.models as models
import nqzoo.operators as operators

from .helpers import max_rel_err, netket_promotion


def _nk_graph(lat, order=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nk.graph.Grid(list(lat.extent), pbc=list(lat.pbc), max_neighbor_order=order)


def _nk_hilbert(hi):
    if isinstance(hi, hilbert.Fock):
        return nk.hilbert.Fock(n_max=hi.n_max, N=hi.size)
    if isinstance(hi, hilbert.Qubit):
        return nk.hilbert.Qubit(hi.size)
    return nk.hilbert.Spin(hi.s, hi.size, total_sz=hi.total_sz)


def _nk_operator(op):
    """NetKet's operator with the same Hamiltonian."""
    nk_hi = _nk_hilbert(op.hilbert)
    if isinstance(op, operators.Ising):
        return nk.operator.IsingJax(nk_hi, _nk_graph(op.lattice), h=op.h, J=op.J)
    if isinstance(op, operators.BoseHubbard):
        g = _nk_graph(op.lattice)
        return nk.operator.BoseHubbardJax(nk_hi, g, U=op.U, V=op.V, J=op.J, mu=op.mu)
    # NetKet's Heisenberg is a LocalOperator: the numba class compiles once per session, the
    # JAX one once per operator, so the numba one keeps the tests fast (same elements).
    cls = nk.operator.LocalOperatorNumba
    if op.J2 is None:
        g = _nk_graph(op.lattice)
        return nk.operator.Heisenberg(nk_hi, g, J=op.J, sign_rule=op.sign_rule, cls=cls)
    g = _nk_graph(op.lattice, 2)
    J, sign_rule = [op.J, op.J2], [op.sign_rule, False]
    return nk.operator.Heisenberg(nk_hi, g, J=J, sign_rule=sign_rule, cls=cls)


SPIN6, SPIN9 = hilbert.Spin(0.5, 6), hilbert.Spin(0.5, 9)
SPIN8 = hilbert.Spin(0.5, 8)
# small operators: 1D and 2D, periodic and open, J2 on and off, sign rule on and off
OPERATORS = [
    operators.Ising(SPIN6, lattice.Chain(6), h=0.7, J=1.3),
    operators.Ising(SPIN6, lattice.Chain(6, pbc=False), h=-0.4, J=-1.0),
    operators.Ising(SPIN9, lattice.Square(3), h=1.1),
    operators.Ising(SPIN6, lattice.Grid((2, 3), False), h=0.0, J=0.5),
    operators.Ising(hilbert.Qubit(6), lattice.Chain(6), h=0.6, J=0.8),
    operators.Heisenberg(SPIN6, lattice.Chain(6)),  # NetKet's default: sign rule on
    operators.Heisenberg(SPIN6, lattice.Chain(6), J=0.8, sign_rule=False),
    operators.Heisenberg(SPIN6, lattice.Chain(6, pbc=False), J=1.2, J2=0.5, sign_rule=True),
    operators.Heisenberg(SPIN6, lattice.Chain(6), J2=0.3, sign_rule=False),
    operators.Heisenberg(SPIN8, lattice.Grid((2, 4)), J=1.0, J2=0.5, sign_rule=True),
    operators.Heisenberg(SPIN9, lattice.Square(3), J=1.0, J2=0.5),  # not bipartite
    operators.Heisenberg(SPIN9, lattice.Square(3, pbc=False), J2=-0.4, sign_rule=True),
    operators.Heisenberg(hilbert.Spin(0.5, 8, total_sz=0), lattice.Chain(8), sign_rule=True),
    operators.Heisenberg(hilbert.Spin(0.5, 3), lattice.Chain(3), J2=0.7),  # bonds in both orders
    operators.Heisenberg(SPIN6, lattice.Grid((3, 2)), J2=0.7),
    operators.BoseHubbard(hilbert.Fock(3, 4), lattice.Chain(4), U=1.5, V=0.3, J=0.8, mu=0.2),
    operators.BoseHubbard(hilbert.Fock(2, 6), lattice.Grid((2, 3), False), U=-2.0, V=0.5),
    operators.BoseHubbard(hilbert.Fock(2, 4), lattice.Square(2), U=4.0, J=0.0, mu=-0.5),
]
IDS = [
    f"{type(op).__name__}-{op.lattice.extent}-{op.lattice.pbc}-{i}"
    for i, op in enumerate(OPERATORS)
]


def _random_states(hi, shape, seed):
    """Random configurations drawn with numpy (no JAX compilation for each shape)."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.asarray(hi.local_states, dtype=hi.dtype), size=(*shape, hi.size))


def _codes(hi, x):
    """Each configuration as one integer (its index in the unconstrained product space)."""
    powers = hi.local_size ** np.arange(hi.size - 1, -1, -1)
    x = np.asarray(x)
    indices = np.argmax(x[..., None] == np.asarray(hi.local_states), axis=-1)
    return indices.astype(np.int64) @ powers


def _row_sets(hi, x_conn, mels):
    """Per configuration: {code of x': summed element}, without zero elements (orderings,
    padding and repeated x' differ between implementations)."""
    codes = _codes(hi, np.asarray(x_conn))
    out = []
    for cs, ms in zip(codes, np.asarray(mels)):
        row = collections.defaultdict(float)
        for c, m in zip(cs.tolist(), ms.tolist()):
            row[c] += m
        out.append({c: m for c, m in row.items() if abs(m) > 1e-14})
    return out


@pytest.mark.parametrize("op", OPERATORS, ids=IDS)
def test_matrix_elements_match_netket(op):
    """On every configuration: the same connected elements as NetKet's get_conn_padded, and
    our dense matrix equals the one NetKet's elements give."""
    hi, n = op.hilbert, op.hilbert.size
    states = hi.all_states()
    x_conn, mels = op.connected(states)
    assert x_conn.shape == (len(states), op.n_conn, n) and x_conn.dtype == states.dtype
    assert mels.shape == (len(states), op.n_conn) and mels.dtype == op.dtype
    np.testing.assert_array_equal(x_conn[:, 0], states)  # the diagonal element first
    padding = np.asarray(mels[:, 1:] == 0)  # padding rows are x itself
    rows_x = np.broadcast_to(np.asarray(states)[:, None], x_conn[:, 1:].shape)
    np.testing.assert_array_equal(np.asarray(x_conn[:, 1:])[padding], rows_x[padding])
    with netket_promotion():
        nk_conn, nk_mels = _nk_operator(op).get_conn_padded(np.asarray(states))
    ours, theirs = _row_sets(hi, x_conn, mels), _row_sets(hi, nk_conn, nk_mels)
    assert [a.keys() for a in ours] == [b.keys() for b in theirs]
    assert max(abs(a[k] - b[k]) for a, b in zip(ours, theirs) for k in a) <= 1e-12
    # the dense matrix NetKet's elements give, in the basis of all_states()
    index = {c: i for i, c in enumerate(_codes(hi, states).tolist())}
    expected = np.zeros((len(states),) * 2)
    for i, row in enumerate(theirs):
        for c, m in row.items():
            expected[i, index[c]] = m
    dense = op.to_dense()
    assert dense.dtype == np.float64 and np.abs(dense).max() > 0.1
    np.testing.assert_allclose(dense, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(dense, dense.T)  # real symmetric


# One operator per class: NetKet's own to_dense() (its numba operators assemble it fastest)
DENSE_CASES = [OPERATORS[2], OPERATORS[9], OPERATORS[16]]


@pytest.mark.parametrize("op", DENSE_CASES, ids=[IDS[2], IDS[9], IDS[16]])
def test_to_dense_equals_netket_to_dense(op):
    with netket_promotion():
        nk_op = _nk_operator(op)
        if not isinstance(op, operators.Heisenberg):
            nk_op = nk_op.to_numba_operator()
        expected = nk_op.to_dense()
    np.testing.assert_allclose(op.to_dense(), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("op", [OPERATORS[3], OPERATORS[8], OPERATORS[15]], ids=repr)
def test_connected_batch_axes(op):
    x = _random_states(op.hilbert, (2, 5), seed=0)
    x_conn, mels = eqx.filter_jit(lambda o, x: o.connected(x))(op, x)  # inside a user's jit
    assert x_conn.shape == (2, 5, op.n_conn, op.hilbert.size) and mels.shape == (2, 5, op.n_conn)
    flat_conn, flat_mels = op.connected(x.reshape(10, -1))
    np.testing.assert_array_equal(x_conn.reshape(flat_conn.shape), flat_conn)
    np.testing.assert_allclose(mels.reshape(10, -1), flat_mels, rtol=1e-14, atol=1e-14)
    one_conn, one_mels = op.connected(x[1, 2])  # a single configuration: no batch axes
    np.testing.assert_array_equal(one_conn, x_conn[1, 2])
    np.testing.assert_allclose(one_mels, mels[1, 2], rtol=1e-14, atol=1e-14)


def test_n_conn_and_fields():
    chain = lattice.Chain(6)
    assert operators.Ising(SPIN6, chain, h=1.0).n_conn == 7
    assert operators.Ising(SPIN6, chain, h=0.0).n_conn == 1
    assert operators.Heisenberg(SPIN6, chain).n_conn == 7
    assert operators.Heisenberg(SPIN6, chain, J2=0.5).n_conn == 13
    assert operators.Heisenberg(SPIN6, chain, J=0.0, J2=0.5).n_conn == 7
    fock = hilbert.Fock(2, 6)
    assert operators.BoseHubbard(fock, chain, U=1.0).n_conn == 13
    op = operators.Heisenberg(SPIN6, chain, J2=0.5)
    # NetKet's default sign rule: on for a bipartite lattice without J2
    assert op.sign_rule is False and operators.Heisenberg(SPIN6, chain).sign_rule is True
    assert operators.Heisenberg(SPIN9, lattice.Square(3)).sign_rule is False
    # no array leaves: hashable static pytrees, equal when built equal
    assert jax.tree.leaves(op) == []
    assert op == operators.Heisenberg(SPIN6, lattice.Chain(6), J2=0.5)
    assert hash(op) == hash(operators.Heisenberg(SPIN6, lattice.Chain(6), J2=0.5))
    # couplings may be ints or numpy scalars; they are stored as floats
    ising = operators.Ising(SPIN6, chain, h=1, J=np.float32(0.5))
    assert ising == operators.Ising(SPIN6, chain, h=1.0, J=0.5) and type(ising.J) is float
    assert operators.BoseHubbard(fock, chain, U=np.int64(2)).U == 2.0


def test_sign_rule_is_the_marshall_rotation():
    """sign_rule=True is U H U with U = prod over the odd sublattice of sigma^z."""
    lat = lattice.Grid((2, 4))
    hi = hilbert.Spin(0.5, 8)
    plain = operators.Heisenberg(hi, lat, J2=0.4, sign_rule=False).to_dense()
    rotated = operators.Heisenberg(hi, lat, J2=0.4, sign_rule=True).to_dense()
    states = np.asarray(hi.all_states())
    odd = lat.sublattice() == 1
    u = np.prod(np.where(odd, states, 1), axis=-1)  # the eigenvalue of U on each state
    np.testing.assert_allclose(rotated, u[:, None] * plain * u[None, :], atol=1e-14)
    assert not np.allclose(rotated, plain)
    # the unfrustrated chain's ground state is then positive (Perron-Frobenius)
    gs = np.linalg.eigh(operators.Heisenberg(SPIN6, lattice.Chain(6)).to_dense())[1][:, 0]
    gs = gs * np.sign(gs[np.argmax(np.abs(gs))])
    assert np.all(gs > -1e-12)


@pytest.mark.parametrize("op", [OPERATORS[9], OPERATORS[16]], ids=[IDS[9], IDS[16]])
def test_float32(op):
    op32 = type(op)(**{k: getattr(op, k) for k in _init_args(op)}, dtype=jnp.float32)
    x = _random_states(op.hilbert, (16,), seed=1)
    x_conn, mels = op32.connected(x)
    x_conn64, mels64 = op.connected(x)
    assert mels.dtype == jnp.float32 and x_conn.dtype == x.dtype
    np.testing.assert_array_equal(x_conn, x_conn64)
    np.testing.assert_allclose(mels, mels64, rtol=1e-6, atol=1e-6)
    # a float32 model and operator give float32 local energies (no promotion to float64)
    model32 = _rbm(op.hilbert, jnp.float32, seed=2)
    model64 = jax.tree.map(lambda a: a.astype(jnp.float64), model32)
    local32 = operators.local_energy(model32, op32, x)
    assert local32.dtype == jnp.float32
    assert max_rel_err(local32, operators.local_energy(model64, op, x)) <= 1e-5


def _init_args(op):
    return {
        operators.Ising: ("hilbert", "lattice", "h", "J"),
        operators.Heisenberg: ("hilbert", "lattice", "J", "J2", "sign_rule"),
        operators.BoseHubbard: ("hilbert", "lattice", "U", "V", "J", "mu"),
    }[type(op)]


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: operators.Ising(SPIN6, lattice.Chain(5), h=1.0), ValueError,
         r"lattice has 5 sites but the Hilbert space has 6"),
        (lambda: operators.Heisenberg(SPIN9, lattice.Chain(8)), ValueError,
         r"n_sites=8.*size=9"),
        (lambda: operators.BoseHubbard(hilbert.Fock(2, 4), lattice.Square(3), U=1.0),
         ValueError, r"9 sites .* has 4"),
        (lambda: operators.BoseHubbard(SPIN6, lattice.Chain(6), U=1.0), ValueError,
         r"hilbert must be an nqzoo.hilbert.Fock"),
        (lambda: operators.Ising(hilbert.Spin(1, 6), lattice.Chain(6), h=1.0), ValueError,
         r"two local states.*Spin\(s=1"),
        (lambda: operators.Heisenberg(hilbert.Fock(3, 6), lattice.Chain(6)), ValueError,
         r"Heisenberg acts on spins 1/2"),
        (lambda: operators.Ising(hilbert.Spin(0.5, 6, total_sz=0), lattice.Chain(6), h=1.0),
         ValueError, r"constraint"),
        (lambda: operators.Ising(SPIN6, lattice.Chain(6), h=float("nan")), ValueError,
         r"h must be a finite real number, got h=nan"),
        (lambda: operators.Heisenberg(SPIN6, lattice.Chain(6), J2=float("inf")), ValueError,
         r"J2 must be a finite"),
        (lambda: operators.BoseHubbard(hilbert.Fock(2, 6), lattice.Chain(6), U=1.0,
                                       mu=float("-inf")), ValueError, r"mu must be a finite"),
        (lambda: operators.Heisenberg(SPIN9, lattice.Square(3), sign_rule=True), ValueError,
         r"sign_rule=True needs a bipartite lattice"),
        (lambda: operators.Ising(SPIN6, lattice.Chain(6), h=1.0, dtype=jnp.int32), ValueError,
         r"dtype must be a real or complex floating dtype"),
        (lambda: operators.Ising(SPIN6, (6,), h=1.0), TypeError, r"lattice"),
        (lambda: operators.Heisenberg(SPIN6, lattice.Chain(6), J=1j), TypeError, r"J"),
    ],
)  # fmt: skip
def test_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_connected_checks_the_shape():
    op = operators.Ising(SPIN6, lattice.Chain(6), h=1.0)
    with pytest.raises(TypeError, match="hilbert.size=6"):
        op.connected(jnp.ones((3, 5), jnp.int8))


# ---------------------------------------------------------------------------------------
# Local energies
# ---------------------------------------------------------------------------------------


def _zeros(key, shape, dtype):
    return jnp.zeros(shape, dtype)


def _rbm(hi, dtype, seed):
    """An RBM with random parameters (drawn with numpy: no JAX compilation per shape)."""
    model = models.RBM(
        hi, param_dtype=dtype, kernel_init=_zeros, hidden_bias_init=_zeros,
        visible_bias_init=_zeros, key=jax.random.key(0),
    )  # fmt: skip
    rng = np.random.default_rng(seed)

    def draw(a):
        r = rng.normal(scale=0.4, size=a.shape)
        if jnp.iscomplexobj(a):
            r = r + 1j * rng.normal(scale=0.4, size=a.shape)
        return jnp.asarray(r, dtype=a.dtype)

    return jax.tree.map(draw, model)


# (operator, parameter dtype): real and complex RBMs on spins and bosons, 1D and 2D
LOCAL_CASES = [
    (OPERATORS[2], jnp.float64),
    (OPERATORS[7], jnp.complex128),
    (OPERATORS[15], jnp.complex128),
]
LOCAL_IDS = [f"{IDS[i]}-{d.__name__}" for i, (_, d) in zip((2, 7, 15), LOCAL_CASES)]


@pytest.mark.parametrize("op,dtype", LOCAL_CASES, ids=LOCAL_IDS)
def test_local_energy_is_exact_h_psi_over_psi(op, dtype):
    model = _rbm(op.hilbert, dtype, seed=3)
    states = op.hilbert.all_states()
    psi = np.exp(np.asarray(eqx.filter_jit(lambda m, x: m(x))(model, states)))
    expected = (op.to_dense() @ psi) / psi
    local = operators.local_energy(model, op, states)
    assert local.shape == (len(states),) and local.dtype == dtype
    assert max_rel_err(local, expected) <= 1e-11
    # chunks (a ragged last one included) give the same numbers up to the rounding of
    # XLA's matrix products, whose blocking depends on the batch size; batch axes are kept
    grid = states.reshape(2, -1, op.hilbert.size)
    chunked = operators.local_energy(model, op, grid, chunk_size=7)
    assert chunked.shape == grid.shape[:2]
    assert max_rel_err(chunked, local.reshape(2, -1)) <= 1e-14


def test_local_energy_matches_netket():
    """NetKet's local-energy kernel (what MCState.local_estimators runs) on the same samples."""
    from netket.vqs.mc.kernels import local_value_kernel_jax

    op = operators.Heisenberg(SPIN8, lattice.Grid((2, 4)), J2=0.5)
    model = _rbm(op.hilbert, jnp.complex128, seed=4)
    samples = _random_states(op.hilbert, (64,), seed=5)
    with netket_promotion():
        nk_op = _nk_operator(op).to_jax_operator()
        kernel = jax.jit(lambda s: local_value_kernel_jax(lambda _, x: model(x), None, s, nk_op))
        expected = kernel(samples)
    # inside a user's jit, in chunks
    local = eqx.filter_jit(operators.local_energy)(model, op, samples, chunk_size=16)
    assert local.dtype == jnp.complex128
    assert max_rel_err(local, expected) <= 1e-12


_Spin = hilbert.Spin


class _PaddedWithElsewhere(operators.AbstractOperator):
    """sigma^x on site 0, padded with a row (mel 0) where log psi is -inf."""

    hilbert: _Spin = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True, default=np.dtype(np.float64))

    @property
    def n_conn(self):
        return 3

    def _connected(self, x):
        flipped = x.at[..., 0].multiply(-1)
        elsewhere = jnp.full_like(x, -1)
        x_conn = jnp.stack([x, flipped, elsewhere], axis=-2)
        mels = jnp.broadcast_to(jnp.asarray([0.5, 1.0, 0.0]), x.shape[:-1] + (3,))
        return x_conn, mels


def test_local_energy_padding_with_infinite_log_psi():
    hi = hilbert.Spin(0.5, 3)
    op = _PaddedWithElsewhere(hi)
    theta = jnp.asarray(0.3)

    def log_psi(theta, x):  # zero amplitude on the all-down state
        x = jnp.asarray(x, jnp.float64)
        finite = theta * x.sum(-1)
        return jnp.where(jnp.all(x == -1, axis=-1), -jnp.inf, finite)

    x = jnp.asarray([[1, 1, 1], [1, -1, -1]], jnp.int8)
    local = operators.local_energy(lambda s: log_psi(theta, s), op, x)
    # 0.5 + psi(flip)/psi(x); the flip of (1, -1, -1) is the all-down state: ratio 0
    np.testing.assert_allclose(local, [0.5 + np.exp(-2 * 0.3), 0.5], rtol=1e-14)
    grad = jax.grad(lambda t: operators.local_energy(lambda s: log_psi(t, s), op, x).sum())(theta)
    assert np.isfinite(grad) and abs(grad - (-2 * np.exp(-0.6))) < 1e-12


def test_local_energy_refuses_another_hilbert_space():
    model = _rbm(SPIN8, jnp.float64, seed=6)
    op = operators.Ising(SPIN6, lattice.Chain(6), h=1.0)
    x = _random_states(SPIN6, (4,), seed=7)
    with pytest.raises(ValueError, match=r"operator acts on Spin\(s=0.5, N=6.*N=8"):
        operators.local_energy(model, op, x)
    with pytest.raises(ValueError, match="chunk_size"):
        operators.local_energy(_rbm(SPIN6, jnp.float64, seed=8), op, x, chunk_size=0)
    with pytest.raises(TypeError, match="operator"):
        with netket_promotion():
            nk_op = _nk_operator(op)
        operators.local_energy(model, nk_op, x)

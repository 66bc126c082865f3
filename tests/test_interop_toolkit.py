"""nqzoo.interop.netket for the training toolkit: NetKet's discrete operators as nqzoo operators
(operator_from_netket), and NetKet's MCState/VMC sampling autoregressive models through
nqz.sample (NqzooARSampler); NetKet's ARDirectSampler names it when given an nqzoo model."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import max_rel_err, netket_promotion, randomize


nk = pytest.importorskip("netket")
interop = pytest.importorskip("nqzoo.interop.netket")
from nqzoo.interop.netket import (  # noqa: E402
    NetKetOperator,
    NqzooARSampler,
    operator_from_netket,
    to_netket,
)


# --- operators ---------------------------------------------------------------------------------


SPIN6 = nk.hilbert.Spin(0.5, 6)
FOCK = nk.hilbert.Fock(2, 4)


def _grid_j1j2():
    """J1-J2 Heisenberg on an open 2x3 lattice (nearest and next-nearest neighbours)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = nk.graph.Grid([2, 3], pbc=False, max_neighbor_order=2)
    return nk.operator.Heisenberg(SPIN6, graph, J=[1.0, 0.4], sign_rule=[False, False])


def _random_local(hi, n_terms, seed, complex_):
    """A sum of random (non-Hermitian, sparse) two-site LocalOperators on random site pairs."""
    rng = np.random.default_rng(seed)
    d = hi.shape[0] ** 2
    op = nk.operator.LocalOperator(hi, dtype=complex if complex_ else float)
    for _ in range(n_terms):
        sites = [int(s) for s in rng.choice(hi.size, 2, replace=False)]
        matrix = rng.normal(size=(d, d))
        if complex_:
            matrix = matrix + 1j * rng.normal(size=(d, d))
        matrix[rng.random((d, d)) < 0.5] = 0.0  # a varying number of elements per row
        op = op + nk.operator.LocalOperator(hi, matrix, sites)
    return op


def _local_plus_pauli():
    """A complex random LocalOperator plus PauliStrings, whose connected elements put the
    diagonal neither first nor always (a SumDiscreteJaxOperator)."""
    strings, weights = ["XXIIII", "ZIZIII", "IYYIII", "IIIXZI"], [1.0, 0.5, 0.3, -0.7]
    pauli = nk.operator.PauliStrings(SPIN6, strings, weights).to_jax_operator()
    return _random_local(SPIN6, 3, 0, True).to_jax_operator() + pauli


# id -> NetKet operator (built lazily, once: NetKet's JAX operators compile once per operator)
NK_OPERATORS = {
    "ising": lambda: nk.operator.IsingJax(SPIN6, nk.graph.Chain(6), h=0.7, J=1.3),
    "heisenberg-j1j2-grid": _grid_j1j2,
    "local-plus-pauli-complex": _local_plus_pauli,
    "local-fock": lambda: _random_local(FOCK, 3, 1, False),
    "bose-hubbard": lambda: nk.operator.BoseHubbardJax(
        FOCK, nk.graph.Chain(4), U=1.1, V=0.3, J=0.6, mu=0.2
    ),
    "heisenberg-total-sz": lambda: nk.operator.Heisenberg(
        nk.hilbert.Spin(0.5, 6, total_sz=0), nk.graph.Chain(6)
    ),
}
_BUILT = {}


def _operators(name):
    """(NetKet's JAX operator, the bridged one), built once per session."""
    if name not in _BUILT:
        with netket_promotion():
            nk_op = NK_OPERATORS[name]()
            _BUILT[name] = (nk_op.to_jax_operator(), operator_from_netket(nk_op))
    return _BUILT[name]


def _model(hilbert, seed=0):
    """A random complex RBM (Spin) or RBMMultiVal (Fock) on `hilbert`."""
    key = jax.random.key(seed)
    if isinstance(hilbert, nqz.hilbert.Fock):
        model = nqz.models.RBMMultiVal(hilbert, alpha=1, param_dtype=jnp.complex128, key=key)
    else:
        model = nqz.models.RBM(hilbert, alpha=1, param_dtype=jnp.complex128, key=key)
    return randomize(model, jax.random.key(seed + 1), scale=0.3)


@pytest.mark.parametrize("name", NK_OPERATORS)
def test_dense_matrix_equals_netket(name):
    """NetKet's matrix, element for element (its scipy form `to_sparse()`, cheaper to build
    than the JAX `to_dense()`, which holds the same entries: checked once below)."""
    nk_op, op = _operators(name)
    assert isinstance(op, NetKetOperator) and isinstance(op, nqz.operators.AbstractOperator)
    assert op.hilbert == interop.hilbert_from_netket(nk_op.hilbert)
    dense = op.to_dense()
    with netket_promotion():
        expected = nk_op.to_sparse().toarray()
    assert dense.dtype == expected.dtype == op.dtype
    np.testing.assert_allclose(dense, expected, rtol=0, atol=1e-12)


def test_dense_matrix_equals_netket_to_dense():
    nk_op, op = _operators("ising")
    with netket_promotion():
        expected = np.asarray(nk_op.to_dense())
    np.testing.assert_allclose(op.to_dense(), expected, rtol=0, atol=1e-12)


def _check_contract(x, x_conn, mels, op):
    x_conn, mels, x = np.asarray(x_conn), np.asarray(mels), np.asarray(x)
    np.testing.assert_array_equal(x_conn[..., 0, :], x)
    equal_x = np.all(x_conn == x[..., None, :], axis=-1)
    np.testing.assert_array_equal(equal_x[..., 1:], mels[..., 1:] == 0)


@pytest.mark.parametrize("name", NK_OPERATORS)
def test_local_energies_equal_netket(name):
    """E_loc from NetKet's own connected elements and the NetKet twin of the model; and the
    connected-elements contract (diagonal first, padding rows equal to x with element 0)."""
    nk_op, op = _operators(name)
    model = _model(op.hilbert)
    nk_model, variables = to_netket(model)
    x = op.hilbert.all_states()

    @jax.jit
    def netket_local_energies(nk_op, variables, x):
        x_conn, mels = nk_op.get_conn_padded(x)
        log_psi = nk_model.apply(variables, x)
        log_conn = nk_model.apply(variables, x_conn.reshape(-1, x.shape[-1]))
        ratios = jnp.exp(log_conn.reshape(mels.shape) - log_psi[:, None])
        return jnp.sum(mels * ratios, axis=-1)

    with netket_promotion():
        expected = netket_local_energies(nk_op, variables, x)
    energies = nqz.operators.local_energy(model, op, x)
    assert max_rel_err(energies, expected) < 1e-12
    x_conn, mels = op.connected(x)
    assert x_conn.shape == (len(x), op.n_conn, op.hilbert.size) and mels.shape == x_conn.shape[:2]
    assert x_conn.dtype == x.dtype == op.hilbert.dtype and mels.dtype == op.dtype
    _check_contract(x, x_conn, mels, op)


def test_batch_shapes(getkey):
    _, op = _operators("ising")
    states = np.asarray(op.hilbert.all_states())
    x = jnp.asarray(states[np.asarray(jax.random.randint(getkey(), (3, 4), 0, len(states)))])
    x_conn, mels = op.connected(x)
    assert x_conn.shape == (3, 4, op.n_conn, 6) and mels.shape == (3, 4, op.n_conn)
    _check_contract(x, x_conn, mels, op)
    one_conn, one_mels = op.connected(x[1, 2])
    np.testing.assert_array_equal(one_conn, x_conn[1, 2])
    np.testing.assert_array_equal(one_mels, mels[1, 2])


def test_operator_is_a_traced_argument():
    """Inside eqx.filter_jit the NetKet operator's arrays are traced: new couplings of the
    same structure reuse the compiled function, and the results follow the couplings."""
    traces = []

    @eqx.filter_jit
    def energies(model, op, x):
        traces.append(None)
        return nqz.operators.local_energy(model, op, x)

    with netket_promotion():
        nk_ops = [nk.operator.IsingJax(SPIN6, nk.graph.Chain(6), h=h) for h in (0.7, 2.0)]
    ops = [operator_from_netket(nk_op) for nk_op in nk_ops]
    model = _model(ops[0].hilbert)
    x = ops[0].hilbert.all_states()[:16]
    e1, e2 = energies(model, ops[0], x), energies(model, ops[1], x)
    assert len(traces) == 1
    assert not np.allclose(e1, e2)
    assert max_rel_err(e1, nqz.operators.local_energy(model, ops[0], x)) < 1e-12
    assert max_rel_err(e2, nqz.operators.local_energy(model, ops[1], x)) < 1e-12


def test_float32_elements_and_model():
    nk_op, _ = _operators("ising")
    op = operator_from_netket(nk_op, dtype=jnp.float32)
    assert op.dtype == np.float32 and op.connected(op.hilbert.all_states())[1].dtype == np.float32
    key = jax.random.key(3)
    model = nqz.models.RBM(op.hilbert, alpha=1, param_dtype=jnp.float32, key=key)
    x = op.hilbert.all_states()
    energies = nqz.operators.local_energy(model, op, x)
    assert energies.dtype == jnp.float32
    reference = nqz.operators.local_energy(model, operator_from_netket(nk_op), x)
    assert max_rel_err(energies, reference) < 1e-5


def test_bad_operators():
    hi = nk.hilbert.Spin(0.5, 3)
    with netket_promotion():
        heisenberg = nk.operator.Heisenberg(hi, nk.graph.Chain(3))
        liouvillian = nk.operator.LocalLiouvillian(heisenberg, [])
        squared = nk.operator.Squared(heisenberg)
        geometry = nk.experimental.geometry.Cell(d=1, L=(2.0,), pbc=True)
        box = nk.experimental.hilbert.Particle(N=2, geometry=geometry)
        kinetic = nk.operator.KineticEnergy(box, mass=1.0)
        sigma_y = nk.operator.spin.sigmay(hi, 0)
    with pytest.raises(TypeError, match="no JAX form.*to_jax_operator"):
        operator_from_netket(liouvillian)
    with pytest.raises(TypeError, match="no JAX form.*to_jax_operator"):
        operator_from_netket(squared)
    with pytest.raises(TypeError, match="continuous NetKet operator"):
        operator_from_netket(kinetic)
    nqz_ising = nqz.operators.Ising(nqz.hilbert.Spin(0.5, 3), nqz.lattice.Chain(3), h=1.0)
    for not_netket in (nqz_ising, np.eye(8), "H"):
        with pytest.raises(TypeError, match="operator must be a NetKet discrete operator"):
            operator_from_netket(not_netket)
    with pytest.raises(ValueError, match="dtype=float64 is real"):
        operator_from_netket(sigma_y, dtype=jnp.float64)
    with pytest.raises(ValueError, match="dtype must be"):
        operator_from_netket(heisenberg, dtype=jnp.int32)
    assert operator_from_netket(sigma_y).dtype == np.complex128


def test_operator_on_another_space_than_the_model():
    _, op = _operators("ising")
    model = nqz.models.RBM(nqz.hilbert.Qubit(6), alpha=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="operator acts on"):
        nqz.operators.local_energy(model, op, jnp.ones((2, 6), jnp.int8))


# --- NetKet sampling through nqz.sample --------------------------------------------------------

N_SITES = 8
HI = nqz.hilbert.Spin(0.5, N_SITES)
NK_HI = nk.hilbert.Spin(0.5, N_SITES)
N_SAMPLES = 2048


def _arnn(fast, hilbert=HI, seed=0):
    """A randomised ARNN with a non-trivial distribution: (model, state or None)."""
    kwargs = dict(layers=2, features=4, key=jax.random.key(seed))
    if fast:
        model, state = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
            hilbert, kernel_size=3, **kwargs
        )
    else:
        model, state = nqz.models.ARNNDense(hilbert, **kwargs), None
    return randomize(model, jax.random.key(seed + 1), scale=0.8), state


def _hamiltonian():
    return nk.operator.IsingJax(NK_HI, nk.graph.Chain(N_SITES), h=1.0)


def _exact_energy(model, nk_op):
    x = HI.all_states()
    psi = np.exp(np.asarray(model(x)))
    dense = operator_from_netket(nk_op).to_dense()  # equal to NetKet's (tested above)
    return float(np.real(np.vdot(psi, dense @ psi) / np.vdot(psi, psi)))


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
def test_energy_matches_netket_ardirect(fast):
    """The same expectation value (within error bars) as NetKet's ARDirectSampler with the
    converted model, and as the exact one."""
    model, state = _arnn(fast)
    nk_model, variables = to_netket(model)
    H = _hamiltonian()
    exact = _exact_energy(model, H)
    with netket_promotion():
        ours = nk.vqs.MCState(NqzooARSampler(NK_HI, state=state), model,
                              n_samples=N_SAMPLES, seed=1)
        netket = nk.vqs.MCState(nk.sampler.ARDirectSampler(NK_HI), nk_model,
                                variables=variables, n_samples=N_SAMPLES, seed=1)
        assert ours.n_discard_per_chain == 0 and ours.samples.shape == (1, N_SAMPLES, N_SITES)
        e_ours, e_netket = ours.expect(H), netket.expect(H)
    for e in (e_ours, e_netket):
        assert 0 < e.error_of_mean < 0.2
        assert abs(e.mean.real - exact) < 5 * e.error_of_mean
    combined = np.hypot(e_ours.error_of_mean, e_netket.error_of_mean)
    assert abs(e_ours.mean - e_netket.mean) < 5 * combined


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
def test_netket_module_gives_the_same_samples(fast):
    """NqzooARSampler also samples NetKet's own ARNNs (converted with from_netket inside the
    jitted draw): the module of to_netket(model) gives exactly the samples of the model."""
    model, state = _arnn(fast)
    nk_model, variables = to_netket(model)
    with netket_promotion():
        ours = nk.vqs.MCState(NqzooARSampler(NK_HI, state=state), model, n_samples=256,
                              seed=1)
        converted = nk.vqs.MCState(NqzooARSampler(NK_HI), nk_model, variables=variables,
                                   n_samples=256, seed=1)
        np.testing.assert_array_equal(ours.samples, converted.samples)
        assert converted.samples.dtype == ours.samples.dtype == NK_HI._local_states.dtype


def test_samples_follow_psi_squared():
    """Pearson's chi-squared test of MCState's samples (fast model, 8 draws of 2048) against
    |psi|^2 over all 256 states (states of small expected count pooled)."""
    scipy_stats = pytest.importorskip("scipy.stats")
    model, state = _arnn(True)
    with netket_promotion():
        vstate = nk.vqs.MCState(NqzooARSampler(HI, state=state), model, n_samples=N_SAMPLES,
                                seed=2)
        samples = np.concatenate([np.asarray(vstate.sample()).reshape(-1, N_SITES)
                                  for _ in range(8)])
    x = np.asarray(HI.all_states())
    probs = np.exp(2 * np.asarray(model(x)).real)
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)
    powers = 2 ** np.arange(N_SITES)[::-1]
    counts = np.bincount((samples < 0) @ powers, minlength=len(x))[(x < 0) @ powers]
    expected = probs * len(samples)
    small = expected < 5
    pooled = np.append(counts[~small], counts[small].sum())
    pooled_expected = np.append(expected[~small], expected[small].sum())
    assert scipy_stats.chisquare(pooled, pooled_expected).pvalue > 1e-3
    # the distribution is far from uniform, so the test has something to detect
    assert scipy_stats.chisquare(counts).pvalue < 1e-10


def test_log_probabilities_and_chunks():
    model, state = _arnn(True)
    sampler = NqzooARSampler(HI, state=state)
    chunked = NqzooARSampler(HI, state=state, chunk_size=24)
    with netket_promotion():
        vstate = nk.vqs.MCState(sampler, model, n_samples=64, seed=3)
        key_state = sampler.init_state(vstate._model, vstate.variables, seed=7)
        (x, log_prob), _ = sampler.sample(vstate._model, vstate.variables, state=key_state,
                                          chain_length=64, return_log_probabilities=True)
        x_chunked, _ = chunked.sample(vstate._model, vstate.variables,
                                      state=chunked.init_state(vstate._model, vstate.variables,
                                                               seed=7), chain_length=64)
    assert x.shape == (1, 64, N_SITES) and x.dtype == NK_HI._local_states.dtype
    np.testing.assert_array_equal(x, x_chunked)
    expected = 2 * np.asarray(model(x[0])).real
    np.testing.assert_allclose(log_prob[0], expected, rtol=1e-12)


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
def test_vmc_step(fast):
    """One step of NetKet's VMC driver with an nqzoo model sampled by NqzooARSampler."""
    model, state = _arnn(fast)
    H = _hamiltonian()
    with netket_promotion():
        vstate = nk.vqs.MCState(NqzooARSampler(NK_HI, state=state), model,
                                n_samples=N_SAMPLES, seed=4)
        before = jax.tree.leaves(vstate.parameters)
        driver = nk.driver.VMC(H, nk.optimizer.Sgd(learning_rate=0.05), variational_state=vstate)
        log = nk.logging.RuntimeLog()
        driver.run(n_iter=1, out=log, show_progress=False)
    after = jax.tree.leaves(vstate.parameters)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert np.isfinite(log.data["Energy"]["Mean"]).all()
    assert type(vstate.model) is type(model)


@pytest.mark.parametrize("fast", [False, True], ids=["slow", "fast"])
def test_netket_ardirect_names_the_working_sampler(fast):
    """NetKet's ARDirectSampler cannot build a Flax cache for an Equinox model: with nqzoo's
    models it fails with a message naming NqzooARSampler (with state= for a fast one)."""
    model, _ = _arnn(fast)
    with netket_promotion():
        vstate = nk.vqs.MCState(nk.sampler.ARDirectSampler(NK_HI), model, n_samples=16, seed=0)
        fix = "NqzooARSampler(hilbert, state=state)" if fast else "NqzooARSampler(hilbert)"
        with pytest.raises(TypeError, match=fix.replace("(", r"\(").replace(")", r"\)")):
            vstate.samples  # noqa: B018
    # everything else goes through NetKet's Equinox support as before
    assert np.allclose(vstate.log_value(HI.all_states()[:4]), model(HI.all_states()[:4]))


def test_sampler_bad_input():
    fast, _ = _arnn(True)
    slow, _ = _arnn(False)
    with netket_promotion():
        with pytest.raises(TypeError, match=r"state=state"):
            nk.vqs.MCState(NqzooARSampler(NK_HI), fast, n_samples=16)
        rbm = nqz.models.RBM(HI, alpha=1, key=jax.random.key(0))
        with pytest.raises(TypeError, match="MetropolisLocal"):
            nk.vqs.MCState(NqzooARSampler(NK_HI), rbm, n_samples=16)
        with pytest.raises(TypeError, match="NetKet's RBM"):
            nk.vqs.MCState(NqzooARSampler(NK_HI), nk.models.RBM(), n_samples=16)
        with pytest.raises(ValueError, match="build the sampler on the model's space"):
            nk.vqs.MCState(NqzooARSampler(nk.hilbert.Spin(0.5, N_SITES + 1)), slow,
                           n_samples=16)
        with pytest.raises(ValueError, match="unconstrained"):
            NqzooARSampler(nk.hilbert.Spin(0.5, 4, total_sz=0))
        with pytest.raises(ValueError, match="chunk_size"):
            NqzooARSampler(NK_HI, chunk_size=0)
        with pytest.raises(TypeError, match="parameter 'state'"):
            NqzooARSampler(NK_HI, state={"cache": 0})
        with pytest.raises(TypeError, match="hilbert must be"):
            NqzooARSampler(8)

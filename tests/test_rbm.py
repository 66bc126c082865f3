"""RBM, RBMModPhase and RBMMultiVal: NetKet parity, gradients, NetKet states, round trips."""

import io

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.interop.netket import from_netket, hilbert_from_netket, hilbert_to_netket, to_netket

from .helpers import max_rel_err, netket_promotion, randomize


SPIN = nqz.hilbert.Spin(0.5, 6)
FOCK = nqz.hilbert.Fock(2, 4)

# (id, NetKet module, nqzoo Hilbert space)
CASES = [
    ("rbm-real", nk.models.RBM(alpha=2), SPIN),
    ("rbm-complex", nk.models.RBM(alpha=2, param_dtype=jnp.complex128), SPIN),
    ("rbm-nobias", nk.models.RBM(alpha=1.5, use_hidden_bias=False, use_visible_bias=False), SPIN),
    ("rbm-spin1", nk.models.RBM(alpha=1, param_dtype=complex), nqz.hilbert.Spin(1, 4)),
    ("modphase", nk.models.RBMModPhase(alpha=2), SPIN),
    ("modphase-nobias", nk.models.RBMModPhase(alpha=1, use_hidden_bias=False), SPIN),
    ("multival-real", nk.models.RBMMultiVal(n_classes=3, alpha=1), FOCK),
    ("multival-complex", nk.models.RBMMultiVal(n_classes=3, alpha=2, param_dtype=complex), FOCK),
]
IDS = [c[0] for c in CASES]


_call = eqx.filter_jit(lambda model, x: model(x))


def _nk_call(nk_model):
    apply = jax.jit(lambda params, x: nk_model.apply({"params": params}, x))

    def call(params, x):
        with netket_promotion():
            return apply(params, x)

    return call


def _pair(nk_model, hilbert, key):
    """A NetKet module with randomised parameters and the nqzoo model converted from it."""
    x = jnp.asarray(hilbert.all_states()[:2])
    with netket_promotion():
        params = jax.jit(lambda k: randomize(nk_model.init(k, x)["params"], k, scale=0.4))(key)
    return from_netket(nk_model, {"params": params}, hilbert=hilbert), params


@pytest.mark.parametrize("name,nk_model,hilbert", CASES, ids=IDS)
def test_parity_and_round_trip(name, nk_model, hilbert, getkey):
    model, params = _pair(nk_model, hilbert, getkey())
    x = hilbert.random_state(getkey(), (5, 7))  # int8, as NetKet samples
    with netket_promotion():  # shapes and dtypes, traced (not compiled)
        expected = jax.eval_shape(lambda p, x: nk_model.apply({"params": p}, x), params, x)
    out = jax.eval_shape(model, x)
    assert out.shape == (5, 7) and out.dtype == expected.dtype
    # log psi (phases mod 2 pi) and psi, relative to their largest values, to 1e-12
    nqt.assert_netket_parity(model, nk_model, {"params": params}, x=x.reshape(35, -1))

    # round trips copy arrays bit for bit and rebuild an equal NetKet module
    nk_back, variables = to_netket(model)
    assert nk_back == nk_model
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), variables["params"], params)
    assert jax.tree.structure(variables["params"]) == jax.tree.structure(params)
    again = from_netket(nk_back, variables, hilbert=hilbert)
    assert bool(eqx.tree_equal(again, model))


SUBSET = [CASES[1], CASES[7]]
SUBSET_IDS = [c[0] for c in SUBSET]


@pytest.mark.parametrize("name,nk_model,hilbert", SUBSET, ids=SUBSET_IDS)
def test_single_batch_vmap_agree(name, nk_model, hilbert, getkey):
    model, _ = _pair(nk_model, hilbert, getkey())
    x = hilbert.random_state(getkey(), (3, 4))
    batch = _call(model, x)
    single = jnp.stack([jnp.stack([_call(model, x[i, j]) for j in range(4)]) for i in range(3)])
    mapped = eqx.filter_jit(jax.vmap(jax.vmap(model)))(x)
    float_input = _call(model, np.asarray(x, np.float64))
    assert _call(model, x[0, 0]).shape == ()
    for other in (single, mapped, float_input):
        assert max_rel_err(other, batch) <= 1e-14


@pytest.mark.parametrize("name,nk_model,hilbert", CASES[:2] + [CASES[4]], ids=IDS[:2] + [IDS[4]])
def test_gradients_match_netket(name, nk_model, hilbert, getkey):
    model, params = _pair(nk_model, hilbert, getkey())
    x = hilbert.random_state(getkey(), 16)

    def nk_part(part):
        with netket_promotion():
            return jax.jit(jax.grad(lambda p: part(nk_model.apply({"params": p}, x)).sum()))(
                params
            )

    def nq_part(part):
        return eqx.filter_jit(eqx.filter_grad(lambda m: part(m(x)).sum()))(model)

    # one real function of log psi that mixes its real and imaginary parts
    for part in (lambda z: jnp.real(z) + 0.7 * jnp.imag(z),):
        g_nk = from_netket(nk_model, {"params": nk_part(part)}, hilbert=hilbert)
        g_nq = nq_part(part)
        for a, b in zip(jax.tree.leaves(g_nq), jax.tree.leaves(g_nk), strict=True):
            assert max_rel_err(a, b) <= 1e-12

    if name == "rbm-complex":
        # holomorphic derivative d log psi / d theta agrees too
        with netket_promotion():
            g_nk = jax.jit(jax.grad(lambda p: nk_model.apply({"params": p}, x).sum(),
                                    holomorphic=True))(params)
        g_nq = eqx.filter_jit(jax.grad(lambda m: m(x).sum(), holomorphic=True))(model)
        g_nk = from_netket(nk_model, {"params": g_nk}, hilbert=hilbert)
        for a, b in zip(jax.tree.leaves(g_nq), jax.tree.leaves(g_nk), strict=True):
            assert max_rel_err(a, b) <= 1e-12


@pytest.mark.parametrize(
    "name,nk_model,hilbert,model_kind",
    [
        ("rbm-complex", CASES[1][1], SPIN, "heisenberg"),
    ],
)
def test_full_sum_state_energy(name, nk_model, hilbert, model_kind, getkey):
    model, params = _pair(nk_model, hilbert, getkey())
    with netket_promotion():  # NetKet drives the model here
        nk_hi = hilbert_to_netket(hilbert)
        graph = nk.graph.Chain(hilbert.size)
        if model_kind == "heisenberg":
            H = nk.operator.Heisenberg(nk_hi, graph)
        elif model_kind == "ising":
            H = nk.operator.Ising(nk_hi, graph, h=0.7)
        else:
            H = nk.operator.BoseHubbard(nk_hi, graph, U=1.0, J=0.5)
        e_nq = nk.vqs.FullSumState(nk_hi, model).expect(H).mean
        dense = np.asarray(H.to_dense())
    # the exact energy of the NetKet model with the same parameters
    psi = np.exp(np.asarray(_nk_call(nk_model)(params, hilbert.all_states())))
    e_nk = np.vdot(psi, dense @ psi) / np.vdot(psi, psi)
    assert abs(e_nq - e_nk) <= 1e-10 * max(1.0, abs(e_nk))


def test_mcstate_local_energies_match_netket(getkey):
    nk_model = CASES[1][1]
    model, params = _pair(nk_model, SPIN, getkey())
    with netket_promotion():  # NetKet drives the model here
        nk_hi = hilbert_to_netket(SPIN)
        H = nk.operator.Ising(nk_hi, nk.graph.Chain(SPIN.size), h=1.0)
        sampler = nk.sampler.MetropolisLocal(nk_hi, n_chains=8)
        vs = nk.vqs.MCState(sampler, model, n_samples=64, n_discard_per_chain=4, seed=0,
                            sampler_seed=1)
        energy = vs.expect(H)
        samples = np.asarray(vs.samples).reshape(-1, SPIN.size)
        conn, mels = (np.asarray(a) for a in H.get_conn_padded(samples))
        local = np.asarray(vs.local_estimators(H).reshape(-1))
    assert set(np.unique(samples)) <= set(SPIN.local_states)
    # the same local energies from the NetKet model with the same parameters
    log_nk = lambda s: _nk_call(nk_model)(params, s)  # noqa: E731
    e_loc = np.sum(mels * np.exp(log_nk(conn) - log_nk(samples)[:, None]), axis=-1)
    assert max_rel_err(local, e_loc) <= 1e-12
    assert abs(energy.mean - e_loc.mean()) <= 1e-10 * abs(e_loc.mean())


def test_serialise_round_trip(tmp_path, getkey):
    for model in (
        nqz.models.RBM(SPIN, alpha=2, param_dtype=complex, key=getkey()),
        nqz.models.RBMModPhase(SPIN, key=getkey()),
        nqz.models.RBMMultiVal(FOCK, use_visible_bias=False, key=getkey()),
    ):
        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, model)
        buffer.seek(0)
        like = jax.tree.map(jnp.zeros_like, model)
        assert not bool(eqx.tree_equal(like, model))
        loaded = eqx.tree_deserialise_leaves(buffer, like)
        assert bool(eqx.tree_equal(loaded, model))


def test_defaults_match_netket(getkey):
    """NetKet's defaults: alpha=1, both biases, normal(0.01) for everything."""
    model = nqz.models.RBM(nqz.hilbert.Spin(0.5, 50), param_dtype=complex, key=getkey())
    assert model.kernel.shape == (50, 50) and model.kernel.dtype == jnp.complex128
    assert model.hidden_bias.shape == (50,) and model.visible_bias.shape == (50,)
    # complex normal(0.01): E|w|^2 = 1e-4, Re and Im each with variance 0.5e-4
    kernel = np.asarray(model.kernel)
    assert abs(np.mean(np.abs(kernel) ** 2) / 1e-4 - 1) < 0.1
    assert abs(np.var(kernel.real) / 0.5e-4 - 1) < 0.15
    modphase = nqz.models.RBMModPhase(nqz.hilbert.Spin(0.5, 50), key=getkey())
    assert modphase.modulus_kernel.dtype == jnp.float64
    assert abs(np.std(modphase.modulus_kernel) / 0.01 - 1) < 0.1
    assert not jnp.array_equal(modphase.modulus_kernel, modphase.phase_kernel)
    multival = nqz.models.RBMMultiVal(FOCK, alpha=2, key=getkey())
    assert multival.rbm.kernel.shape == (12, 24) and multival.n_classes == 3


def test_from_netket_infers_hilbert(getkey):
    x = SPIN.all_states()[:2]
    xf = FOCK.all_states()[:2]
    mv = nk.models.RBMMultiVal(n_classes=3)
    with netket_promotion():
        variables = nk.models.RBM(alpha=1).init(getkey(), x)
        mv_variables = mv.init(getkey(), xf)
    assert from_netket(nk.models.RBM(alpha=1), variables).hilbert == nqz.hilbert.Spin(0.5, 6)
    assert from_netket(mv, mv_variables).hilbert == FOCK
    with pytest.raises(ValueError, match="size 5"):
        from_netket(nk.models.RBM(alpha=1), variables, hilbert=nqz.hilbert.Spin(0.5, 5))


# --- bad hyperparameters ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [nqz.models.RBM, nqz.models.RBMModPhase, nqz.models.RBMMultiVal])
@pytest.mark.parametrize("alpha", [0, -1, -0.5, float("inf"), float("nan")])
def test_alpha_not_positive(cls, alpha, getkey):
    hi = FOCK if cls is nqz.models.RBMMultiVal else SPIN
    match = rf"alpha must be a finite positive number, got alpha={alpha}"
    with pytest.raises(ValueError, match=match):
        cls(hi, alpha=alpha, key=getkey())


def test_alpha_gives_zero_hidden_units(getkey):
    with pytest.raises(ValueError, match=r"alpha=0.1 with 6 visible units gives .* 0 hidden"):
        nqz.models.RBM(SPIN, alpha=0.1, key=getkey())
    with pytest.raises(ValueError, match=r"alpha=0.05 with 12 visible units"):
        nqz.models.RBMMultiVal(FOCK, alpha=0.05, key=getkey())


def test_alpha_wrong_type(getkey):
    match = r"parameter 'alpha'.*\nActual value: '2'\nExpected type: float \| int"
    with pytest.raises(TypeError, match=match):
        nqz.models.RBM(SPIN, alpha="2", key=getkey())


@pytest.mark.parametrize("hilbert", [nqz.hilbert.Spin(0.5, 4), nqz.hilbert.Spin(1, 4)])
def test_multival_rejects_non_index_local_states(hilbert, getkey):
    with pytest.raises(ValueError, match=r"must be 0, 1, …, C-1.*local_states=\[.*-"):
        nqz.models.RBMMultiVal(hilbert, key=getkey())


def test_multival_accepts_qubit(getkey):
    model = nqz.models.RBMMultiVal(nqz.hilbert.Qubit(3), key=getkey())
    assert model.n_classes == 2 and _call(model, jnp.array([0, 1, 1])).shape == ()


def test_modphase_rejects_complex_dtype(getkey):
    with pytest.raises(ValueError, match="param_dtype must be a real floating dtype"):
        nqz.models.RBMModPhase(SPIN, param_dtype=jnp.complex128, key=getkey())


@pytest.mark.parametrize("cls", [nqz.models.RBM, nqz.models.RBMModPhase, nqz.models.RBMMultiVal])
@pytest.mark.parametrize("hilbert", [nqz.hilbert.Particles(2, (1.0,)), 6])
def test_hilbert_must_be_discrete(cls, hilbert, getkey):
    match = rf"{cls.__name__} needs a discrete nqzoo Hilbert space.*Discrete.*hilbert="
    with pytest.raises(TypeError, match=match) as info:
        cls(hilbert, key=getkey())
    assert "hilbert_from_netket" not in str(info.value)


@pytest.mark.parametrize(
    "cls,nk_space",
    [
        (nqz.models.RBM, nk.hilbert.Spin(0.5, 4)),
        (nqz.models.RBMModPhase, nk.hilbert.Spin(0.5, 4)),
        (nqz.models.RBMMultiVal, nk.hilbert.Fock(2, 4)),
    ],
)
def test_netket_space_points_to_the_converter(cls, nk_space, getkey):
    match = r"NetKet space.*nqzoo\.interop\.netket\.hilbert_from_netket"
    with pytest.raises(TypeError, match=match):
        cls(nk_space, key=getkey())
    converted = hilbert_from_netket(nk_space)
    assert cls(converted, key=getkey()).hilbert == converted


# --- dtypes -----------------------------------------------------------------------------------


DTYPE_CASES = [
    (nqz.models.RBM, SPIN, jnp.float32),
    (nqz.models.RBM, SPIN, jnp.complex64),
    (nqz.models.RBMModPhase, SPIN, jnp.float32),
    (nqz.models.RBMMultiVal, FOCK, jnp.float32),
    (nqz.models.RBMMultiVal, FOCK, jnp.complex64),
]


@pytest.mark.parametrize("cls,hilbert,dtype", DTYPE_CASES)
def test_single_precision_with_x64_on(cls, hilbert, dtype, getkey):
    """float32/complex64 parameters give float32/complex64 outputs and gradients, also for
    float64 input (the model computes in its parameter dtype)."""
    model = cls(hilbert, alpha=2, param_dtype=dtype, key=getkey())
    assert {leaf.dtype for leaf in jax.tree.leaves(model)} == {jnp.dtype(dtype)}
    out_dtype = jnp.complex64 if cls is nqz.models.RBMModPhase else dtype
    x = hilbert.random_state(getkey(), 5)
    out = _call(model, x)
    assert out.dtype == out_dtype and _call(model, x.astype(jnp.float64)).dtype == out_dtype
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.real(m(x)).sum()))(model)
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype(dtype)}
    # the same numbers as the float64 model with the same (rounded) parameters, to float32
    # accuracy (log_cosh(y) = y + log1p(exp(-2y)) - log 2 loses ~1e-7 absolute per unit)
    wide = jnp.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else jnp.float64
    model64 = jax.tree.map(lambda a: a.astype(wide), model)
    np.testing.assert_allclose(out, _call(model64, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [nqz.models.RBM, nqz.models.RBMModPhase, nqz.models.RBMMultiVal])
@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, bool])
def test_integer_param_dtype_refused(cls, dtype, getkey):
    hi = FOCK if cls is nqz.models.RBMMultiVal else SPIN
    with pytest.raises(ValueError, match=r"param_dtype must be a .*floating.*param_dtype="):
        cls(hi, param_dtype=dtype, key=getkey())

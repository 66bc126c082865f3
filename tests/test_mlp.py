"""MLP: NetKet parity, gradients, NetKet states, round trips, bad hyperparameters."""

import io

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz
from nqzoo.interop.netket import from_netket, hilbert_to_netket, to_netket

from .helpers import max_rel_err, randomize


HI = nqz.hilbert.Spin(0.5, 6)
LOG_COSH = nk.nn.activation.log_cosh

CASES = [
    ("linear", nk.models.MLP()),
    ("real", nk.models.MLP(hidden_dims=(7, 5))),
    ("complex", nk.models.MLP(hidden_dims=(7, 5), param_dtype=jnp.complex128)),
    ("per-layer", nk.models.MLP(hidden_dims=(4, 3), hidden_activations=(LOG_COSH, None),
                                output_activation=jnp.tanh, use_hidden_bias=False,
                                use_output_bias=True)),
    ("alpha-no-activation", nk.models.MLP(hidden_dims_alpha=(1.5,), hidden_activations=None,
                                          param_dtype=jnp.complex128)),
]
IDS = [c[0] for c in CASES]

_call = eqx.filter_jit(lambda model, x: model(x))


def _pair(nk_model, key):
    x = HI.all_states()[:2]
    params = jax.jit(lambda k: randomize(nk_model.init(k, x)["params"], k, scale=0.5))(key)
    return from_netket(nk_model, {"params": params}, hilbert=HI), params


@pytest.mark.parametrize("name,nk_model", CASES, ids=IDS)
def test_parity_and_round_trip(name, nk_model, getkey):
    model, params = _pair(nk_model, getkey())
    x = HI.random_state(getkey(), (4, 5))
    expected = jax.jit(lambda p, x: nk_model.apply({"params": p}, x))(params, x)
    out = _call(model, x)
    assert out.shape == (4, 5) and out.dtype == expected.dtype
    assert max_rel_err(out, expected) <= 1e-12
    nk_back, variables = to_netket(model)
    assert nk_back == nk_model
    assert jax.tree.structure(variables["params"]) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, variables["params"], params)
    assert bool(eqx.tree_equal(from_netket(nk_back, variables, hilbert=HI), model))


@pytest.mark.parametrize("name,nk_model", [CASES[2]], ids=IDS[2:3])
def test_single_batch_vmap_and_gradients(name, nk_model, getkey):
    model, params = _pair(nk_model, getkey())
    x = HI.random_state(getkey(), (2, 3))
    batch = _call(model, x)
    assert _call(model, x[0, 0]).shape == ()
    single = jnp.stack([jnp.stack([_call(model, x[i, j]) for j in range(3)]) for i in range(2)])
    mapped = eqx.filter_jit(jax.vmap(jax.vmap(model)))(x)
    assert max_rel_err(single, batch) <= 1e-14 and max_rel_err(mapped, batch) <= 1e-14

    x = x.reshape(6, -1)
    for part in (lambda z: jnp.real(z) + 0.7 * jnp.imag(z),):
        g_nk = jax.jit(jax.grad(lambda p: part(nk_model.apply({"params": p}, x)).sum()))(params)
        g_nq = eqx.filter_jit(eqx.filter_grad(lambda m: part(m(x)).sum()))(model)
        g_nk = from_netket(nk_model, {"params": g_nk}, hilbert=HI)
        for a, b in zip(jax.tree.leaves(g_nq), jax.tree.leaves(g_nk), strict=True):
            assert max_rel_err(a, b) <= 1e-12


def test_full_sum_state_energy(getkey):
    nk_model = CASES[2][1]
    model, params = _pair(nk_model, getkey())
    nk_hi = hilbert_to_netket(HI)
    H = nk.operator.Heisenberg(nk_hi, nk.graph.Chain(HI.size))
    e_nq = nk.vqs.FullSumState(nk_hi, model).expect(H).mean
    # the exact energy of the NetKet model with the same parameters
    apply = jax.jit(lambda p, x: nk_model.apply({"params": p}, x))
    psi = np.exp(np.asarray(apply(params, HI.all_states())))
    e_nk = np.vdot(psi, H.to_dense() @ psi) / np.vdot(psi, psi)
    assert abs(e_nq - e_nk) <= 1e-10 * max(1.0, abs(e_nk))


def test_defaults_match_netket(getkey):
    hi = nqz.hilbert.Spin(0.5, 40)
    model = nqz.models.MLP(hi, hidden_dims_alpha=(7.5,), key=getkey())
    assert model.hidden_dims == (300,)
    hidden, out = model.layers
    assert model.hidden_activations is nqz.nn.gelu and model.output_activation is None
    assert hidden.bias is not None and out.bias is None  # use_output_bias=False
    np.testing.assert_array_equal(hidden.bias, 0.0)
    kernel = np.asarray(hidden.kernel)
    # lecun_normal: truncated normal with variance 1/fan_in, |w| <= 2 / 0.8796 / sqrt(fan_in)
    assert abs(np.var(kernel) * 40 - 1) < 0.05
    assert np.max(np.abs(kernel)) <= 2 / 0.87962566 / np.sqrt(40) + 1e-12


def test_int_hidden_dims_is_one_layer(getkey):
    a = nqz.models.MLP(HI, hidden_dims=5, key=jax.random.key(3))
    b = nqz.models.MLP(HI, hidden_dims=(5,), key=jax.random.key(3))
    assert a.hidden_dims == (5,) and bool(eqx.tree_equal(a, b))


def test_serialise_round_trip(getkey):
    model = nqz.models.MLP(HI, hidden_dims=(4, 3), param_dtype=complex, key=getkey())
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)
    buffer.seek(0)
    like = jax.tree.map(jnp.zeros_like, model)
    assert not bool(eqx.tree_equal(like, model))
    assert bool(eqx.tree_equal(eqx.tree_deserialise_leaves(buffer, like), model))


# --- bad hyperparameters ----------------------------------------------------------------------


def test_hidden_dims_and_alpha_both_given(getkey):
    with pytest.raises(ValueError, match=r"hidden_dims .* or hidden_dims_alpha .*not both"):
        nqz.models.MLP(HI, hidden_dims=(4,), hidden_dims_alpha=(1,), key=getkey())


def test_activation_tuple_wrong_length(getkey):
    with pytest.raises(ValueError, match="hidden_activations has 1 entries but there are 2 hidden"):
        nqz.models.MLP(HI, hidden_dims=(4, 3), hidden_activations=(jnp.tanh,), key=getkey())


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"hidden_dims": (4, 0)}, ValueError, r"hidden_dims must contain positive integers"),
        # caught by the signature's runtime type check, which names the argument
        ({"hidden_dims": (4.5,)}, TypeError, r"parameter 'hidden_dims'"),
        ({"hidden_dims": "64"}, TypeError, r"parameter 'hidden_dims'"),
        ({"hidden_dims_alpha": (0.1,)}, ValueError, r"int\(0.1 \* 6\) = 0 units"),
        ({"hidden_dims_alpha": (-1,)}, ValueError, r"hidden_dims_alpha must contain positive"),
        ({"hidden_dims": (3,), "hidden_activations": "gelu"}, TypeError,
         r"parameter 'hidden_activations'"),
        ({"hidden_dims": (3,), "hidden_activations": (1,)}, TypeError,
         r"parameter 'hidden_activations'"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match, getkey):
    with pytest.raises(error, match=match):
        nqz.models.MLP(HI, **kwargs, key=getkey())

"""SpinFlipSymmetricARNN: an autoregressive model made invariant under the global spin flip.

Exact properties on small spaces: normalisation (also through the fast steps), psi(-x) =
psi(x) with phases, the closed form in terms of the wrapped model, fast == slow, a
chi-squared test of exact samples, and the errors for what cannot be flipped.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.hilbert import Qubit, Spin


def _flip(hilbert, x):
    a, b = hilbert.local_states
    return (a + b) - jnp.asarray(x)


def _fast_conv(hilbert, key, dtype=jnp.float64):
    return eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
        hilbert, layers=2, features=3, kernel_size=3, param_dtype=dtype, key=key
    )


def _fast_gru(hilbert, key, dtype=jnp.float64):
    return eqx.nn.make_with_state(nqz.models.FastGRUNet1D)(
        hilbert, layers=2, features=3, param_dtype=dtype, key=key
    )


def _fast_lstm_2d(hilbert, key, dtype=jnp.float64):
    return eqx.nn.make_with_state(nqz.models.FastLSTMNet)(
        hilbert,
        layers=1,
        features=3,
        graph=nqz.lattice.Grid((2, 3), pbc=False),
        param_dtype=dtype,
        key=key,
    )


def _slow_dense(hilbert, key, dtype=jnp.float64):
    return nqz.models.ARNNDense(hilbert, layers=2, features=3, param_dtype=dtype, key=key), None


CASES = [
    pytest.param(_fast_conv, Spin(0.5, 6), jnp.complex128, id="conv1d-spin-complex"),
    pytest.param(_fast_gru, Spin(0.5, 6, total_sz=0), jnp.float64, id="gru-total_sz=0"),
    pytest.param(_fast_lstm_2d, Spin(0.5, 6), jnp.float64, id="lstm-snake-2x3"),
    pytest.param(_slow_dense, Qubit(5), jnp.float64, id="dense-qubit"),
]


def _randomised(model, key):
    """Random parameters (not the initialisation, whose biases may hide a flipped index)."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    leaves = [
        0.5 * jax.random.normal(k, leaf.shape, leaf.dtype) for k, leaf in zip(keys, leaves)
    ]
    return eqx.combine(jax.tree.unflatten(tree, leaves), static)


@pytest.mark.parametrize("build, hilbert, dtype", CASES)
def test_normalised_symmetric_and_the_closed_form(build, hilbert, dtype, getkey):
    inner, state = build(hilbert, getkey(), dtype)
    inner = _randomised(inner, getkey())
    model = nqz.models.SpinFlipSymmetricARNN(inner)
    assert model.hilbert == hilbert and model.machine_pow == inner.machine_pow
    nqt.assert_normalized(model, state=state)
    x = hilbert.all_states()
    log_psi = np.asarray(model(x))
    # invariant under the flip, phases included
    np.testing.assert_allclose(np.asarray(model(_flip(hilbert, x))), log_psi, atol=1e-12)
    # psi'(x) = 2^{-1/2} psi(y) / psi_s(y_s), y = x flipped so that its first site is up
    first = int(np.asarray(inner.reorder(np.arange(hilbert.size)))[0])
    up = hilbert.local_states[0]
    y = jnp.where(x[:, first : first + 1] == up, x, _flip(hilbert, x))
    first_row = inner.constrain(inner.conditionals_log_psi(y), y)[:, first, 0]
    expected = np.asarray(inner(y) - first_row) - 0.5 * math.log(2)
    np.testing.assert_allclose(log_psi, expected, atol=1e-12)
    # not the wrapped model itself: that one is not symmetric
    assert np.max(np.abs(np.asarray(inner(x)) - np.asarray(inner(_flip(hilbert, x))))) > 1e-3
    if state is not None:
        nqt.assert_fast_matches_slow(model, state, key=getkey())


@pytest.mark.parametrize(
    "build, hilbert", [(_fast_conv, Spin(0.5, 5)), (_fast_gru, Spin(0.5, 6, total_sz=0))]
)
def test_exact_sampling_matches_psi_squared(build, hilbert, getkey):
    inner, state = build(hilbert, getkey())
    model = nqz.models.SpinFlipSymmetricARNN(_randomised(inner, getkey()))
    samples, result = nqt.assert_exact_sampling(model, key=getkey(), state=state, n_samples=8192)
    assert result.dof > 4
    # x and its flip are drawn equally often: the first site is up in half of the samples
    up = np.mean(np.asarray(samples[:, 0]) == hilbert.local_states[0])
    assert abs(up - 0.5) < 4 * 0.5 / math.sqrt(len(samples))


def test_inside_jit_with_gradients(getkey):
    hilbert = Spin(0.5, 6)
    inner, state = _fast_conv(hilbert, getkey())
    model = nqz.models.SpinFlipSymmetricARNN(inner)

    @eqx.filter_jit
    def loss(model, key):
        x = nqz.sample(model, 16, key=key, state=state)
        return eqx.filter_value_and_grad(lambda m: jnp.mean(m(x)))(model)

    value, grads = loss(model, getkey())
    assert np.isfinite(value)
    leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert all(np.all(np.isfinite(g)) for g in leaves) and any(np.any(g != 0) for g in leaves)


def test_shape_checked(getkey):
    inner, _ = _fast_conv(Spin(0.5, 6), getkey())
    nqt.assert_shape_checked(nqz.models.SpinFlipSymmetricARNN(inner))


def test_bad_input(getkey):
    with pytest.raises(TypeError, match="model must be an nqzoo.models.AbstractARNN"):
        nqz.models.SpinFlipSymmetricARNN(nqz.models.RBM(Spin(0.5, 4), key=getkey()))
    with pytest.raises(ValueError, match="local_size=3"):
        nqz.models.SpinFlipSymmetricARNN(_fast_conv(Spin(1, 4), getkey())[0])
    with pytest.raises(ValueError, match="total_sz=0"):
        nqz.models.SpinFlipSymmetricARNN(_fast_gru(Spin(0.5, 4, total_sz=1), getkey())[0])
    model = nqz.models.SpinFlipSymmetricARNN(_fast_conv(Spin(0.5, 4), getkey())[0])
    with pytest.raises(TypeError, match="needs its cache state, got state=NoneType"):
        model.conditional(jnp.ones(4, jnp.int8), 0)

"""Misuse gets a clear error: cache states of another model, a state reused after an eager step,
out-of-range site indices (issue 15, item 4)."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz


SPIN4 = nqz.hilbert.Spin(0.5, 4)
SPIN6 = nqz.hilbert.Spin(0.5, 6)
make = eqx.nn.make_with_state

FAST = [
    (nqz.models.FastARNNDense, SPIN4, dict(layers=2, features=3)),
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=3, features=3, kernel_size=3)),
    (nqz.models.FastARNNConv2D, SPIN6, dict(layers=2, features=3, kernel_size=(2, 3),
                                            lattice_shape=(2, 3))),
]

# --- item 4: cache states of another model ---------------------------------------------------

# (model class, space, kwargs of the model, kwargs of the model whose state is passed)
OTHER_STATES = [
    # another kernel size / dilation: the ring of every conv layer has another length
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3),
     dict(layers=2, features=3, kernel_size=5), r"float64\[2, 1\]"),
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3),
     dict(layers=2, features=3, kernel_size=3, kernel_dilation=2), r"float64\[2, 1\]"),
    # other features: the hidden layer's cache has another width
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=3, features=3, kernel_size=3),
     dict(layers=3, features=4, kernel_size=3), r"float64\[3, 3\]"),
    # more layers: the second cache holds the inputs of a 4-wide layer
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3),
     dict(layers=3, features=3, kernel_size=3), r"float64\[3, 2\]"),
    # fewer layers, or another class: a cache is missing from the state
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3),
     dict(layers=1, features=2, kernel_size=3), r"has no cache for the layer.*caches\[1\]"),
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3),
     "dense", r"has no cache for the layer.*caches\[0\]"),
    # another dtype (a float32 or complex state for a float64 model)
    (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3),
     dict(layers=2, features=3, kernel_size=3, param_dtype=jnp.float32), r"float32\[2, 1\]"),
    (nqz.models.FastARNNDense, SPIN4, dict(layers=2, features=3),
     dict(layers=2, features=3, param_dtype=jnp.complex128), r"complex128\[4, 1\]"),
    # another N for a dense model, another kernel or lattice for a 2D model
    (nqz.models.FastARNNDense, SPIN4, dict(layers=2, features=3),
     ("N6", dict(layers=2, features=3)), r"float64\[6, 1\].*expects float64\[4, 1\]"),
    (nqz.models.FastARNNConv2D, SPIN6, dict(layers=2, features=3, kernel_size=(2, 3),
                                            lattice_shape=(2, 3)),
     dict(layers=2, features=3, kernel_size=(3, 3), lattice_shape=(2, 3)), r"\[3, 5, 1\]"),
    (nqz.models.FastARNNConv2D, SPIN6, dict(layers=2, features=3, kernel_size=(2, 3),
                                            lattice_shape=(2, 3)),
     dict(layers=2, features=3, kernel_size=(2, 3), lattice_shape=(3, 2)), r"\[2, 4, 1\]"),
]


def _other_state(cls, hilbert, other, key):
    if other == "dense":
        return make(nqz.models.FastARNNDense)(hilbert, 2, 3, key=key)[1]
    if isinstance(other, tuple):
        return make(cls)(nqz.hilbert.Spin(0.5, 6), key=key, **other[1])[1]
    return make(cls)(hilbert, key=key, **other)[1]


@pytest.mark.parametrize("cls, hilbert, kwargs, other, match", OTHER_STATES)
def test_state_of_another_model_is_refused(cls, hilbert, kwargs, other, match, getkey):
    """The fast layer checks the cache it reads (shape and dtype, or its presence) and names
    itself and the fix; before, a broadcasting error deep in a layer (or a KeyError, or
    Equinox's 'different structures' on writing back)."""
    model, _ = make(cls)(hilbert, key=getkey(), **kwargs)
    state = _other_state(cls, hilbert, other, getkey())
    x = jnp.ones(hilbert.size, jnp.int8)
    for call in (
        lambda: nqz.sample(model, 3, key=getkey(), state=state),
        lambda: model.conditional(x, 0, state),
    ):
        with pytest.raises(ValueError, match=match) as info:
            call()
        message = str(info.value)
        assert "built for another model" in message and "make_with_state" in message
        assert f"{cls.__name__}.caches[" in message  # which cache of which model


def test_layer_state_of_another_layer_is_refused(getkey):
    conv = nqz.nn.MaskedConv1D(2, 3, kernel_size=3, key=getkey())
    layer, _ = make(nqz.nn.FastMaskedConv1D)(conv)
    wider = nqz.nn.MaskedConv1D(2, 3, kernel_size=4, key=getkey())
    _, state = make(nqz.nn.FastMaskedConv1D)(wider)
    with pytest.raises(ValueError, match=r"holds a cache float64\[4, 2\] for the layer "
                       r"FastMaskedConv1D.*expects float64\[3, 2\]"):
        layer.update_site(jnp.ones(2), 0, state)


@pytest.mark.parametrize("cls, hilbert, kwargs", FAST)
def test_state_stays_usable_after_an_eager_conditional(cls, hilbert, kwargs, getkey):
    """The docs' promise: the state from make_with_state can be passed again and again. An
    eager `conditional` used to retire it (Equinox's 'Attempted to use old state' in the next
    nqz.sample or conditional)."""
    model, state = make(cls)(hilbert, key=getkey(), **kwargs)
    fresh = make(cls)(hilbert, key=getkey(), **kwargs)[1]
    x = hilbert.random_state(getkey())
    p0, after = model.conditional(x, 0, state)
    p1, _ = model.conditional(x, 1, after)
    # the initial state again: the same first step, and the sampler takes it
    p0_again, _ = model.conditional(x, 0, state)
    np.testing.assert_array_equal(p0_again, p0)
    key = getkey()
    samples = nqz.sample(model, 5, key=key, state=state)
    np.testing.assert_array_equal(samples, nqz.sample(model, 5, key=key, state=fresh))
    # and so is every intermediate state (the step after `after` again)
    np.testing.assert_array_equal(model.conditional(x, 1, after)[0], p1)
    # the same steps as the slow model
    expected = model.to_slow().conditionals(x)[:2]
    np.testing.assert_allclose(np.stack([p0, p1]), expected, rtol=1e-12)


def test_retired_state_gets_a_clear_error(getkey):
    """A State retired by the user's own eager `state.set` (Equinox's guard) is named as such."""
    model, state = make(nqz.models.FastARNNConv1D)(SPIN4, 2, 3, 3, key=getkey())
    leaf = state.get(model.caches[0])
    state.set(model.caches[0], leaf)  # retires `state`
    with pytest.raises(ValueError, match=r"state given to FastMaskedConv1D.*was retired.*"
                       r"eager `state.set"):
        model.conditional(jnp.ones(4, jnp.int8), 0, state)


# --- item 4: site indices --------------------------------------------------------------------


@pytest.mark.parametrize("cls, hilbert, kwargs", FAST)
def test_conditional_index_out_of_range(cls, hilbert, kwargs, getkey):
    """A concrete index outside 0..N-1 raises; a traced one gives NaN (the dynamic slices
    would otherwise clamp it and return the conditional of another site)."""
    model, state = make(cls)(hilbert, key=getkey(), **kwargs)
    n = hilbert.size
    x = jnp.ones(n, jnp.int8)
    for index in (-1, n, n + 5, np.int64(n), jnp.int32(-2)):
        with pytest.raises(ValueError, match=rf"index must be a site index in 0\.\.{n - 1} "
                           rf"\({n} sites\), got index={int(index)}\."):
            model.conditional(x, index, state)
    p, _ = model.conditional(x, jnp.int32(n - 1), state)  # concrete and in range: fine
    assert np.all(np.isfinite(p))

    step = eqx.filter_jit(lambda m, i, s: m.conditional(x, i, s)[0])
    assert np.all(np.isnan(step(model, jnp.int32(n), state)))
    assert np.all(np.isnan(step(model, jnp.int32(-1), state)))
    np.testing.assert_array_equal(step(model, jnp.int32(0), state), model.conditional(x, 0,
                                                                                      state)[0])


def test_layer_update_site_index_out_of_range(getkey):
    dense = nqz.nn.MaskedDense1D(4, 1, 2, exclusive=True, key=getkey())
    layer, state = make(nqz.nn.FastMaskedDense1D)(dense)
    with pytest.raises(ValueError, match=r"index must be a site index in 0\.\.3 \(4 sites\)"):
        layer.update_site(jnp.ones(1), 4, state)
    with pytest.raises(ValueError, match=r"index must be a site index in 0\.\.3"):
        dense.site_output(jnp.ones((4, 1)), -1)
    conv2d = nqz.nn.MaskedConv2D(1, 2, (2, 2), exclusive=True, key=getkey())
    layer2, state2 = make(nqz.nn.FastMaskedConv2D)(conv2d, (2, 3))
    with pytest.raises(ValueError, match=r"index must be a site index in 0\.\.5 \(6 sites\)"):
        layer2.update_site(jnp.ones(1), 6, state2)
    # a 1D convolution steps through any number of sites: only a negative index is refused
    conv = nqz.nn.MaskedConv1D(1, 2, 2, exclusive=True, key=getkey())
    layer3, state3 = make(nqz.nn.FastMaskedConv1D)(conv)
    with pytest.raises(ValueError, match=r"index must be a site index >= 0, got index=-1"):
        layer3.update_site(jnp.ones(1), -1, state3)
    assert layer3.update_site(jnp.ones(1), 1000, state3)[0].shape == (2,)

"""Misuse of the fast recurrent models gets a clear error: cache states of another model
(other features, layers, cell, ordering, dtype, class), a state reused after an eager step,
site indices out of range (concrete: ValueError; traced: NaN), as for the fast masked models
(tests/test_bad_input.py)."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz


SPIN4 = nqz.hilbert.Spin(0.5, 4)
SPIN9 = nqz.hilbert.Spin(0.5, 9)
SQUARE3 = nqz.lattice.Square(3)
make = eqx.nn.make_with_state

FAST = [
    (nqz.models.FastLSTMNet, SPIN4, dict(layers=2, features=3)),
    (nqz.models.FastGRUNet1D, SPIN4, dict(layers=3, features=3)),
    (nqz.models.FastRNN, SPIN4, dict(layers=2, features=3)),
    (nqz.models.FastLSTMNet, SPIN9, dict(layers=2, features=3, graph=SQUARE3)),
]

LSTM = (nqz.models.FastLSTMNet, SPIN4, dict(layers=2, features=3))

# (model class, space, kwargs of the model, (class, space, kwargs) of the model whose state
# is passed, expected message)
OTHER_STATES = [
    # other features: the first layer's memories have another width
    (*LSTM, (nqz.models.FastLSTMNet, SPIN4, dict(layers=2, features=4)),
     r"cache \(float64\[4\], float64\[1, 4\]\) for FastLSTMNet.caches\[0\].*expects "
     r"\(float64\[3\], float64\[1, 3\]\)"),
    # more layers: the second layer of the other model is 3 wide, not local_size = 2
    (*LSTM, (nqz.models.FastLSTMNet, SPIN4, dict(layers=3, features=3)),
     r"\(float64\[3\], float64\[1, 3\]\) for FastLSTMNet.caches\[1\]"),
    # fewer layers: a cache is missing (the first layers alike)
    (nqz.models.FastLSTMNet, SPIN4, dict(layers=2, features=(2, 2)),
     (nqz.models.FastLSTMNet, SPIN4, dict(layers=1, features=2)),
     r"has no cache for FastLSTMNet.caches\[1\]"),
    # another cell (class), and a model of another family
    (*LSTM, (nqz.models.FastGRUNet1D, SPIN4, dict(layers=2, features=3)),
     r"has no cache for FastLSTMNet.caches\[0\] \(layer 0, LSTMCell of 3 features\)"),
    (nqz.models.FastGRUNet1D, SPIN4, dict(layers=2, features=3),
     (nqz.models.FastRNN, SPIN4, dict(layers=2, features=3)),
     r"has no cache for FastGRUNet1D.caches\[0\]"),
    (*LSTM, (nqz.models.FastARNNConv1D, SPIN4, dict(layers=2, features=3, kernel_size=3)),
     r"has no cache for FastLSTMNet.caches\[0\]"),
    # another dtype
    (*LSTM, (nqz.models.FastLSTMNet, SPIN4, dict(layers=2, features=3, param_dtype=jnp.float32)),
     r"\(float32\[3\], float32\[1, 3\]\)"),
    (nqz.models.FastRNN, SPIN4, dict(layers=2, features=3),
     (nqz.models.FastRNN, SPIN4, dict(layers=2, features=3, param_dtype=jnp.complex128)),
     r"\(complex128\[3\], complex128\[1, 3\]\)"),
    # another ordering: a 3x3 snake keeps more hidden memories than a chain
    (nqz.models.FastLSTMNet, SPIN9, dict(layers=2, features=3),
     (nqz.models.FastLSTMNet, SPIN9, dict(layers=2, features=3, graph=SQUARE3)),
     r"float64\[4, 3\]\) for FastLSTMNet.caches\[0\].*expects \(float64\[3\], "
     r"float64\[1, 3\]\)"),
]


@pytest.mark.parametrize("cls, hilbert, kwargs, other, match", OTHER_STATES)
def test_state_of_another_model_is_refused(cls, hilbert, kwargs, other, match, getkey):
    """The fast recurrent step checks every layer's memories (presence, shapes and dtype) and
    names the cache and the fix; before, a KeyError, a shape error inside a cell, or
    Equinox's 'different structures' when writing back."""
    model, _ = make(cls)(hilbert, key=getkey(), **kwargs)
    other_cls, other_hilbert, other_kwargs = other
    state = make(other_cls)(other_hilbert, key=getkey(), **other_kwargs)[1]
    x = jnp.ones(hilbert.size, jnp.int8)
    for call in (
        lambda: nqz.sample(model, 3, key=getkey(), state=state),
        lambda: model.conditional(x, 0, state),
        lambda: eqx.filter_jit(model.step)(x, 0, state),
    ):
        with pytest.raises(ValueError, match=match) as info:
            call()
        message = str(info.value)
        assert "built for another model" in message and "make_with_state" in message
        assert f"{cls.__name__}.caches[" in message  # which cache of which model


def test_state_that_is_not_a_state(getkey):
    model, _ = make(nqz.models.FastLSTMNet)(SPIN4, 2, 3, key=getkey())
    x = jnp.ones(4, jnp.int8)
    with pytest.raises(TypeError, match="state"):  # the annotation of `step`
        model.step(x, 0, None)
    with pytest.raises(TypeError, match=r"FastLSTMNet.step needs.*make_with_state"):
        model.read_carries({})


@pytest.mark.parametrize("cls, hilbert, kwargs", FAST)
def test_index_out_of_range(cls, hilbert, kwargs, getkey):
    """A concrete index outside 0..N-1 raises (before: the clamped site's conditional, or a
    wrapped one for -1); a traced one gives NaN, an in-range traced one the eager value."""
    model, state = make(cls)(hilbert, key=getkey(), **kwargs)
    n = hilbert.size
    x = hilbert.random_state(getkey())
    for bad in (-1, n, np.int64(n + 3), jnp.asarray(-2)):
        for call in (model.step, model.conditional):
            with pytest.raises(ValueError, match=rf"index must be a site index in 0\.\.{n - 1}"):
                call(x, bad, state)
    step = eqx.filter_jit(model.conditional)
    for bad in (-1, n, n + 5):
        p, _ = step(x, jnp.int32(bad), state)
        assert p.shape == (2,) and np.all(np.isnan(p)), bad
    first = model.reorder(jnp.arange(n))[0]
    np.testing.assert_array_equal(step(x, first, state)[0], model.conditional(x, first, state)[0])
    # the sampler (a traced index, always in range) is unaffected
    samples = nqz.sample(model, 4, key=getkey(), state=state)
    assert samples.shape == (4, n) and np.all(np.isin(samples, hilbert.local_states))


@pytest.mark.parametrize("cls, hilbert, kwargs", FAST)
def test_state_stays_usable_after_an_eager_conditional(cls, hilbert, kwargs, getkey):
    """An eager step used to retire the state it was given (Equinox's 'Attempted to use old
    state' at the next call); now the state from make_with_state can be passed again."""
    model, state = make(cls)(hilbert, key=getkey(), **kwargs)
    x = hilbert.random_state(getkey())
    order = np.asarray(model.reorder(jnp.arange(hilbert.size)))
    p0, after = model.conditional(x, order[0], state)
    p1, _ = model.conditional(x, order[1], after)
    np.testing.assert_array_equal(model.conditional(x, order[0], state)[0], p0)
    np.testing.assert_array_equal(model.conditional(x, order[1], after)[0], p1)
    key = getkey()
    fresh = make(cls)(hilbert, key=getkey(), **kwargs)[1]
    np.testing.assert_array_equal(
        nqz.sample(model, 5, key=key, state=state), nqz.sample(model, 5, key=key, state=fresh)
    )
    expected = model.to_slow().conditionals(x)[order[:2]]
    np.testing.assert_allclose(np.stack([p0, p1]), expected, rtol=1e-12)


def test_retired_state_is_named(getkey):
    model, state = make(nqz.models.FastGRUNet1D)(SPIN4, 2, 3, key=getkey())
    state.set(model.caches[0], state.get(model.caches[0]))  # retires `state`
    with pytest.raises(ValueError, match=r"FastGRUNet1D.caches\[0\].*was retired"):
        model.conditional(jnp.ones(4, jnp.int8), 0, state)

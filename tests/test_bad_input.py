"""Misuse gets a clear error, edge hyperparameters are refused or work: cache states of another
model, a state reused after an eager step, out-of-range site indices, 1-wide masked kernels,
inf/nan and NumPy numbers as hyperparameters (issue 15, items 4 and 5)."""

import collections.abc
import dataclasses
import inspect
import types
import typing

import equinox as eqx
import jax
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


# --- item 5: 1-wide masked kernels -----------------------------------------------------------


def test_one_wide_exclusive_kernels_are_refused(getkey):
    """An exclusive 1-wide kernel has no tap (NetKet: ZeroDivisionError at init for Conv1D,
    NaN for Conv2D): refused at construction, naming kernel_size."""
    with pytest.raises(ValueError, match=r"kernel_size=1 with exclusive=True leaves the kernel "
                       r"no tap.*kernel_size >= 2"):
        nqz.nn.MaskedConv1D(1, 2, kernel_size=1, exclusive=True, key=getkey())
    with pytest.raises(ValueError, match=r"kernel_size=\(1, 1\) with exclusive=True"):
        nqz.nn.MaskedConv2D(1, 2, kernel_size=(1, 1), exclusive=True, key=getkey())
    for cls in (nqz.models.ARNNConv1D, nqz.models.FastARNNConv1D):
        with pytest.raises(ValueError, match=r"ARNNConv1D needs kernel_size >= 2, got "
                           r"kernel_size=1"):
            make(cls)(SPIN4, 2, 3, kernel_size=1, key=getkey())
    for cls in (nqz.models.ARNNConv2D, nqz.models.FastARNNConv2D):
        for kernel_size in (1, (1, 1), np.int64(1)):
            with pytest.raises(ValueError, match=r"ARNNConv2D needs a kernel larger than "
                               r"\(1, 1\), got kernel_size=\(1, 1\)"):
                make(cls)(SPIN6, 2, 3, kernel_size, lattice_shape=(2, 3), key=getkey())


def test_one_wide_non_exclusive_kernels_are_pointwise(getkey):
    """Without exclusion a 1-wide kernel is one tap, the site itself: y_j = x_j W + b."""
    x = jax.random.normal(getkey(), (5, 2))
    conv = nqz.nn.MaskedConv1D(2, 3, kernel_size=1, key=getkey())
    bias = jax.random.normal(getkey(), (3,))
    conv = eqx.tree_at(lambda c: c.bias, conv, bias)
    np.testing.assert_allclose(conv(x), x @ conv.kernel[0] + bias[None], rtol=1e-14)
    conv2 = nqz.nn.MaskedConv2D(2, 3, kernel_size=1, key=getkey())
    x2 = x.reshape(5, 1, 2)
    np.testing.assert_allclose(conv2(x2), x2 @ conv2.kernel[0, 0], rtol=1e-14)
    for wrapper, layer, args, xs in (
        (nqz.nn.FastMaskedConv1D, conv, (), x),
        (nqz.nn.FastMaskedConv2D, conv2, ((5, 1),), x2),
    ):
        fast, state = make(wrapper)(layer, *args)
        flat = xs.reshape(5, 2)
        for j in range(5):
            out, state = fast.update_site(flat[j], j, state)
            np.testing.assert_allclose(out, layer(xs).reshape(5, 3)[j], rtol=1e-13)


@pytest.mark.parametrize("kernel_size", [(1, 3), (2, 1), 2])
def test_conv2d_kernels_one_wide_along_one_axis_work(kernel_size, getkey):
    """(1, kw) sees the sites to the left in the row, (kh, 1) the site above: normalised over
    the whole space, and the fast steps give the slow conditionals."""
    fast, state = make(nqz.models.FastARNNConv2D)(
        SPIN6, 2, 3, kernel_size, lattice_shape=(2, 3), key=getkey()
    )
    slow = fast.to_slow()
    slow = eqx.combine(
        jax.tree.map(lambda a: 0.5 * jax.random.normal(jax.random.key(1), a.shape, a.dtype),
                     eqx.filter(slow, eqx.is_inexact_array)),
        eqx.filter(slow, eqx.is_inexact_array, inverse=True),
    )
    fast = eqx.tree_at(lambda f: f.arnn, fast, slow)
    states = SPIN6.all_states()
    np.testing.assert_allclose(jnp.sum(jnp.exp(2 * slow(states).real)), 1.0, rtol=1e-12)

    @eqx.filter_jit
    def steps(fast, state, x):
        def step(state, index):
            p, state = fast.conditional(x, index, state)
            return state, p

        return jax.lax.scan(step, state, jnp.arange(SPIN6.size))[1]

    x = states[11]
    np.testing.assert_allclose(steps(fast, state, x), slow.conditionals(x), rtol=1e-12)


# --- item 5: inf, nan, NumPy numbers -----------------------------------------------------


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_inf_and_nan_sizes_are_refused_with_the_argument_name(value, getkey):
    """A scalar is caught by the signature's type check (naming the parameter), an entry of a
    sequence by the validator (naming the entry): both every time."""
    key = getkey()
    cases = [
        (lambda: nqz.models.ARNNDense(SPIN4, value, 3, key=key), r"parameter 'layers'"),
        (lambda: nqz.models.ARNNDense(SPIN4, 2, value, key=key), r"parameter 'features'"),
        (lambda: nqz.models.ARNNDense(SPIN4, 3, (3, value, 2), key=key),
         r"features\[1\] must be a positive integer, got features\[1\]=(inf|nan)"),
        (lambda: nqz.models.ARNNConv1D(SPIN4, 2, 3, value, key=key), r"parameter 'kernel_size'"),
        (lambda: nqz.models.ARNNConv1D(SPIN4, 2, 3, 2, kernel_dilation=value, key=key),
         r"parameter 'kernel_dilation'"),
        (lambda: nqz.models.ARNNConv2D(SPIN6, 2, 3, (2, value), lattice_shape=(2, 3), key=key),
         r"kernel_size must be a pair of positive integers.*kernel_size=\(2, (inf|nan)\)"),
        (lambda: nqz.models.ARNNConv2D(SPIN6, 2, 3, (2, 2), lattice_shape=(value, 3), key=key),
         r"lattice_shape must be a pair of positive integers.*lattice_shape=\((inf|nan), 3\)"),
        (lambda: nqz.nn.MaskedDense1D(value, 1, 2, True, key=key), r"parameter 'n_sites'"),
        (lambda: nqz.nn.MaskedConv2D(1, 2, (value, 2), key=key), r"kernel_size must be a pair"),
        (lambda: nqz.models.DeepSetMLP(2, (3, value), key=key),
         r"features_phi must be a positive integer or a sequence.*features_phi=\(3, (inf|nan)\)"),
    ]
    for build, match in cases:
        for _ in range(4):  # a type check that samples one entry would pass some of the time
            with pytest.raises((TypeError, ValueError), match=match):
                build()


@pytest.mark.parametrize("value", [float("inf"), float("nan"), np.float32("inf"), -1.0, 0])
def test_inf_and_nan_numbers_are_refused_with_the_argument_name(value, getkey):
    key = getkey()
    box = nqz.hilbert.Particles(2, (1.0,))
    for build, name in [
        (lambda: nqz.models.RBM(SPIN4, alpha=value, key=key), "alpha"),
        (lambda: nqz.models.RBMModPhase(SPIN4, alpha=value, key=key), "alpha"),
        (lambda: nqz.models.RBMMultiVal(nqz.hilbert.Fock(2, 3), alpha=value, key=key), "alpha"),
        (lambda: nqz.models.MLP(SPIN4, hidden_dims_alpha=(1, value), key=key),
         r"hidden_dims_alpha\[1\]"),
        (lambda: nqz.models.ARNNDense(SPIN4, 2, 3, machine_pow=value, key=key), "machine_pow"),
        (lambda: make(nqz.models.FastARNNConv1D)(SPIN4, 2, 3, 2, machine_pow=value, key=key),
         "machine_pow"),
        (lambda: nqz.models.DeepSetRelDistance(box, 1, 1, 2, 1, cusp_exponent=value, key=key),
         "cusp_exponent"),
    ]:
        with pytest.raises(ValueError, match=rf"{name} must be a finite positive number"):
            build()


def test_integer_param_dtype_is_refused_by_the_masked_layers(getkey):
    """Before: `uniform` complained about its dtype from inside the initialiser."""
    key = getkey()
    for build in (
        lambda dtype: nqz.nn.MaskedDense1D(3, 1, 2, True, param_dtype=dtype, key=key),
        lambda dtype: nqz.nn.MaskedConv1D(1, 2, 2, param_dtype=dtype, key=key),
        lambda dtype: nqz.nn.MaskedConv2D(1, 2, (2, 2), param_dtype=dtype, key=key),
        lambda dtype: nqz.models.ARNNConv1D(SPIN4, 2, 3, 2, param_dtype=dtype, key=key),
        lambda dtype: make(nqz.models.FastARNNConv2D)(
            SPIN6, 2, 3, (2, 2), lattice_shape=(2, 3), param_dtype=dtype, key=key
        ),
    ):
        for dtype in (jnp.int32, bool):
            with pytest.raises(ValueError, match=r"param_dtype must be a floating or complex"):
                build(dtype)


def _no_numpy_scalars(obj) -> bool:
    """No NumPy scalar anywhere in the fields of a module (static hyperparameters included)."""
    if isinstance(obj, np.generic):
        return False
    if isinstance(obj, tuple | list):
        return all(map(_no_numpy_scalars, obj))
    if isinstance(obj, eqx.Module):
        return all(_no_numpy_scalars(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return True


def test_numpy_numbers_are_accepted(getkey):
    """NumPy integers for sizes (as nqz.sample takes them) and NumPy floats for densities and
    powers give the same model as Python numbers, with Python numbers in its static fields."""
    i64, i32, key = np.int64, np.int32, getkey()
    pairs = [
        (nqz.models.ARNNDense(SPIN4, i64(2), i32(3), machine_pow=i64(2), key=key),
         nqz.models.ARNNDense(SPIN4, 2, 3, key=key)),
        (nqz.models.ARNNDense(SPIN4, i64(2), [i64(3), i32(2)], key=key),
         nqz.models.ARNNDense(SPIN4, 2, (3, 2), key=key)),
        (nqz.models.ARNNConv1D(SPIN4, i64(2), i64(3), i32(3), i64(2), key=key),
         nqz.models.ARNNConv1D(SPIN4, 2, 3, 3, 2, key=key)),
        (nqz.models.ARNNConv2D(SPIN6, i64(2), 3, (i64(2), i32(3)), i64(1),
                               lattice_shape=[i64(2), i64(3)], key=key),
         nqz.models.ARNNConv2D(SPIN6, 2, 3, (2, 3), (1, 1), lattice_shape=(2, 3), key=key)),
        (make(nqz.models.FastARNNConv2D)(SPIN6, 2, 3, i64(2), lattice_shape=(2, 3), key=key)[0],
         make(nqz.models.FastARNNConv2D)(SPIN6, 2, 3, (2, 2), lattice_shape=(2, 3), key=key)[0]),
        (nqz.nn.MaskedDense1D(i64(3), i32(1), i64(2), True, key=key),
         nqz.nn.MaskedDense1D(3, 1, 2, True, key=key)),
        (nqz.nn.MaskedConv1D(i64(1), i64(2), i64(2), i64(1), key=key),
         nqz.nn.MaskedConv1D(1, 2, 2, 1, key=key)),
        (nqz.models.RBM(SPIN4, alpha=np.float32(1.5), key=key),
         nqz.models.RBM(SPIN4, alpha=1.5, key=key)),
        (nqz.models.RBMModPhase(SPIN4, alpha=i64(2), key=key),
         nqz.models.RBMModPhase(SPIN4, alpha=2, key=key)),
        (nqz.models.RBMMultiVal(nqz.hilbert.Fock(2, 3), alpha=i64(1), key=key),
         nqz.models.RBMMultiVal(nqz.hilbert.Fock(2, 3), alpha=1, key=key)),
        (nqz.models.MLP(SPIN4, hidden_dims_alpha=(np.float64(1.0), i64(2)), key=key),
         nqz.models.MLP(SPIN4, hidden_dims_alpha=(1.0, 2), key=key)),
        (nqz.models.DeepSetRelDistance(nqz.hilbert.Particles(2, (1.0,)), 1, 1, 2, 1,
                                       cusp_exponent=i64(5), key=key),
         nqz.models.DeepSetRelDistance(nqz.hilbert.Particles(2, (1.0,)), 1, 1, 2, 1,
                                       cusp_exponent=5, key=key)),
    ]
    for model, plain in pairs:
        assert bool(eqx.tree_equal(model, plain)), type(plain).__name__
        assert _no_numpy_scalars(model), type(plain).__name__
    layer = nqz.nn.MaskedConv2D(1, 2, (2, 2), key=key)
    fast = nqz.nn.FastMaskedConv2D(layer, (i64(2), i64(3)))
    assert fast.lattice_shape == (2, 3) and type(fast.lattice_shape[0]) is int


def test_slow_conditional_index_out_of_range(getkey):
    # the recomputing default step: a concrete index out of range raises, a traced one gives
    # NaN probabilities instead of the conditional of the clamped site
    hi = nqz.hilbert.Spin(0.5, 4)
    model = nqz.models.ARNNDense(hi, layers=1, features=2, key=getkey())
    x = hi.all_states()[3]
    for index in (-1, 4):
        with pytest.raises(ValueError, match="index"):
            model.conditional(x, index)
    step = eqx.filter_jit(lambda m, x, i: m.conditional(x, i))
    p, _ = step(model, x, jnp.asarray(4))
    assert bool(jnp.isnan(p).all())
    p, _ = step(model, x, jnp.asarray(3))
    assert bool(jnp.isfinite(p).all()) and float(p.sum()) == pytest.approx(1.0)


# --- item 3: values outside the local states ---------------------------------------------------

FOCK2 = nqz.hilbert.Fock(2, 4)
SPIN4_SZ0 = nqz.hilbert.Spin(0.5, 4, total_sz=0)


class _Markov(nqz.models.AbstractARNN):
    """A user subclass: the conditional of site i depends on site i-1 only."""

    hilbert: nqz.hilbert.AbstractDiscreteHilbert = eqx.field(static=True)
    table: jax.Array
    machine_pow: int = eqx.field(static=True, default=2)

    def __init__(self, hilbert, key):
        self.hilbert = hilbert
        self.table = jax.random.normal(key, (hilbert.local_size + 1, hilbert.local_size))

    def conditionals_log_psi(self, x):
        idx = self.hilbert.states_to_local_indices(x)
        prev = jnp.concatenate([jnp.full((*idx.shape[:-1], 1), self.hilbert.local_size),
                                idx[..., :-1]], axis=-1)
        logits = self.table[jnp.clip(prev, 0, self.hilbert.local_size)]
        return nqz.models.normalize_log_conditionals(logits, self.machine_pow)


# (build(key) -> model, hilbert, bad values); every model indexes its input by local state
INDEXED = [
    ("ARNNDense", lambda k: nqz.models.ARNNDense(SPIN4, layers=2, features=3, key=k),
     SPIN4, [0.0, 0.5, 3.0, np.nan]),
    ("ARNNConv1D-Fock", lambda k: nqz.models.ARNNConv1D(FOCK2, layers=2, features=3,
                                                        kernel_size=2, key=k),
     FOCK2, [3.0, -1.0, 0.5, np.nan]),
    ("FastARNNConv1D", lambda k: make(nqz.models.FastARNNConv1D)(
        SPIN4, layers=2, features=3, kernel_size=2, key=k)[0], SPIN4, [0.0, 0.5, np.nan]),
    ("LSTMNet", lambda k: nqz.models.LSTMNet(SPIN4, layers=1, features=3, key=k),
     SPIN4, [0.0, 3.0, np.nan]),
    ("ARNNDense-total_sz", lambda k: nqz.models.ARNNDense(SPIN4_SZ0, layers=2, features=3,
                                                          key=k), SPIN4_SZ0, [0.0, np.nan]),
    ("user subclass", lambda k: _Markov(FOCK2, k), FOCK2, [3.0, 0.5, np.nan]),
    ("RBMMultiVal", lambda k: nqz.models.RBMMultiVal(FOCK2, alpha=1, key=k),
     FOCK2, [3.0, -1.0, 0.5, np.nan]),
]


@pytest.mark.parametrize("name, build, hilbert, bad", INDEXED, ids=[c[0] for c in INDEXED])
def test_values_outside_the_local_states_give_nan(name, build, hilbert, bad, getkey):
    # a row holding a value that is not a local state is NaN, eager and jitted; the other
    # rows of the batch keep their amplitudes (before the fix the row got the amplitude of
    # the state its index rounds or wraps to)
    model = build(getkey())
    x = np.asarray(hilbert.all_states()[:2], dtype=np.float64)
    reference = np.asarray(model(jnp.asarray(x)))
    assert np.isfinite(reference).all()
    jitted = eqx.filter_jit(lambda m, x: m(x))
    for value in bad:
        y = x.copy()
        y[1, 2] = value
        for call in (model, lambda x: jitted(model, x)):
            out = np.asarray(call(jnp.asarray(y)))
            assert np.isnan(out[1]), (name, value, out)
            assert out[0] == reference[0], (name, value)


def test_is_local_state():
    assert np.asarray(SPIN4.is_local_state(jnp.array([1.0, -1.0, 0.0, 0.5]))).tolist() == [
        True, True, False, False]
    assert np.asarray(FOCK2.is_local_state(jnp.array([0, 2, 3, -1]))).tolist() == [
        True, True, False, False]
    assert not bool(FOCK2.is_local_state(jnp.array([0.0, 1.0, jnp.nan, 2.0]))[2])


@pytest.mark.parametrize(
    "build",
    [
        lambda k: nqz.models.RBM(SPIN4, alpha=1, key=k),
        lambda k: nqz.models.MLP(SPIN4, key=k),
        lambda k: nqz.models.ARNNDense(SPIN4, layers=2, features=3, key=k),
        lambda k: nqz.models.LSTMNet(SPIN4, layers=1, features=3, key=k),
        lambda k: nqz.models.RBMMultiVal(FOCK2, alpha=1, key=k),
    ],
)
def test_complex_configurations_are_refused(build, getkey):
    # before, MLP and the autoregressive models dropped the imaginary part without a word
    model = build(getkey())
    x = jnp.asarray(model.hilbert.all_states()[0], dtype=jnp.complex128)
    with pytest.raises(TypeError, match="parameter 'x'"):
        model(x)


# --- item 3 for the newer models ---------------------------------------------------------------

CHAIN4 = nqz.lattice.Chain(4)
GROUP4 = CHAIN4.translation_group()

# models that index by local state: the MPS picks a tensor per local value, the Transformers
# embed the local index, the spin-flip wrapper flips by index
INDEXED_NEW = [
    ("MPSOpen", lambda k: nqz.models.MPSOpen(SPIN4, 2, key=k), SPIN4, [0.0, 0.5, 3.0, np.nan]),
    ("MPSPeriodic-Fock", lambda k: nqz.models.MPSPeriodic(FOCK2, 2, key=k), FOCK2,
     [3.0, -1.0, 0.5, np.nan]),
    ("ARTransformer", lambda k: nqz.models.ARTransformer(SPIN4, 1, 4, 2, mlp_ratio=1, key=k),
     SPIN4, [0.0, 3.0, np.nan]),
    ("FastARTransformer", lambda k: make(nqz.models.FastARTransformer)(
        SPIN4, 1, 4, 2, mlp_ratio=1, key=k)[0], SPIN4, [0.0, np.nan]),
    ("SpinFlipSymmetricARNN", lambda k: nqz.models.SpinFlipSymmetricARNN(
        nqz.models.ARNNDense(SPIN4, 1, 2, key=k)), SPIN4, [0.0, 0.5, np.nan]),
    ("MarshallSignARNN", lambda k: nqz.models.MarshallSignARNN(
        nqz.models.ARNNDense(SPIN4, 1, 2, key=k), CHAIN4), SPIN4, [0.0, np.nan]),
]


@pytest.mark.parametrize("name, build, hilbert, bad", INDEXED_NEW,
                         ids=[c[0] for c in INDEXED_NEW])
def test_values_outside_the_local_states_give_nan_newer_models(name, build, hilbert, bad,
                                                                getkey):
    test_values_outside_the_local_states_give_nan(name, build, hilbert, bad, getkey)


@pytest.mark.parametrize(
    "build",
    [
        lambda k: nqz.models.Jastrow(SPIN4, key=k),
        lambda k: nqz.models.RBMSymm(SPIN4, GROUP4, key=k),
        lambda k: nqz.models.MPSOpen(SPIN4, 2, key=k),
        lambda k: nqz.models.MPSPeriodic(SPIN4, 2, key=k),
        lambda k: nqz.models.GCNN(SPIN4, GROUP4, layers=1, features=2, key=k),
        lambda k: nqz.models.Symmetrized(nqz.models.RBM(SPIN4, key=k), GROUP4),
        lambda k: nqz.models.ViT(SPIN4, lattice=CHAIN4, d_model=4, heads=2, layers=1, key=k),
        lambda k: nqz.models.ARTransformer(SPIN4, 1, 4, 2, key=k),
        lambda k: nqz.models.SpinFlipSymmetricARNN(nqz.models.ARNNDense(SPIN4, 1, 2, key=k)),
    ],
    ids=["Jastrow", "RBMSymm", "MPSOpen", "MPSPeriodic", "GCNN", "Symmetrized", "ViT",
         "ARTransformer", "SpinFlipSymmetricARNN"],
)
def test_complex_configurations_are_refused_newer_models(build, getkey):
    model = build(getkey())
    x = jnp.asarray(model.hilbert.all_states()[:2], dtype=jnp.complex128)
    with pytest.raises(TypeError, match="parameter 'x'"):
        model(x)


# --- item 5 for the newer models ---------------------------------------------------------------


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_inf_and_nan_sizes_of_newer_models_are_refused(value, getkey):
    """Every time the same error, naming the argument (a type check that samples one entry
    of a sequence passes some of the time, and then the validator names it: both must)."""
    key = getkey()
    cases = [
        (lambda: nqz.models.MLP(SPIN4, hidden_dims=(4, value), key=key), "hidden_dims"),
        (lambda: nqz.models.MLP(SPIN4, hidden_dims=value, key=key), "hidden_dims"),
        (lambda: nqz.models.RBMSymm(SPIN4, GROUP4, alpha=value, key=key), "alpha"),
        (lambda: nqz.models.MPSOpen(SPIN4, value, key=key), "bond_dim"),
        (lambda: nqz.models.MPSPeriodic(SPIN4, 2, value, key=key), "symperiod"),
        (lambda: nqz.models.GCNN(SPIN4, GROUP4, layers=value, features=2, key=key), "layers"),
        (lambda: nqz.models.GCNN(SPIN4, GROUP4, layers=2, features=(2, value), key=key),
         "features"),
        (lambda: nqz.models.ARTransformer(SPIN4, value, 4, 2, key=key), "layers"),
        (lambda: nqz.models.ARTransformer(SPIN4, 1, value, 2, key=key), "d_model"),
        (lambda: nqz.models.ARTransformer(SPIN4, 1, 4, value, key=key), "heads"),
        (lambda: nqz.models.ARTransformer(SPIN4, 1, 4, 2, mlp_ratio=value, key=key),
         "mlp_ratio"),
        (lambda: nqz.models.ARTransformer(SPIN4, 1, 4, 2, lattice_shape=(2, value), key=key),
         "lattice_shape"),
        (lambda: nqz.models.ViT(SPIN4, lattice=CHAIN4, d_model=value, key=key), "d_model"),
        (lambda: nqz.models.ViT(SPIN4, lattice=CHAIN4, heads=value, key=key), "heads"),
        (lambda: nqz.models.ViT(SPIN4, lattice=CHAIN4, layers=value, key=key), "layers"),
        (lambda: nqz.models.ViT(SPIN4, lattice=CHAIN4, patch_size=value, key=key),
         "patch_size"),
        (lambda: nqz.models.RNN(SPIN4, 2, (2, value), key=key), "features"),
        (lambda: nqz.nn.DenseSymm(GROUP4, value, key=key), "features"),
        (lambda: nqz.nn.FactoredAttention((2, value), 4, 2, key=key), "patch_grid"),
        (lambda: nqz.nn.LayerNorm(value), "features"),
    ]
    for build, name in cases:
        seen = set()
        for _ in range(6):
            with pytest.raises((TypeError, ValueError)) as info:
                build()
            message = str(info.value)
            assert f"parameter '{name}'" in message or f"{name} must be" in message or (
                f"{name}[1] must be" in message), (name, message[:300])
            seen.add(type(info.value))
        assert len(seen) == 1, (name, seen)  # deterministic


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 1e300, 1001])
def test_machine_pow_of_newer_models_is_refused(value, getkey):
    """inf/nan/negative, and powers too large for the normalisation (1e300 gave all-zero
    conditionals), for every autoregressive family."""
    key = getkey()
    for build in (
        lambda: nqz.models.ARTransformer(SPIN4, 1, 4, 2, machine_pow=value, key=key),
        lambda: make(nqz.models.FastARTransformer)(SPIN4, 1, 4, 2, machine_pow=value, key=key),
        lambda: nqz.models.RNN(SPIN4, 1, 2, machine_pow=value, key=key),
        lambda: nqz.models.ARNNDense(SPIN4, 1, 2, machine_pow=value, key=key),
    ):
        with pytest.raises(ValueError, match=r"machine_pow must be (a finite positive number|"
                           r"at most 1000)"):
            build()


def test_largest_machine_pow_is_normalised(getkey):
    """machine_pow=1000, the largest accepted, still gives normalised conditionals."""
    model = nqz.models.ARNNDense(SPIN4, 1, 2, machine_pow=1000, key=getkey())
    p = model.conditionals(SPIN4.all_states())
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-10)


def test_numpy_numbers_accepted_by_newer_models(getkey):
    i64, key = np.int64, getkey()
    pairs = [
        (lambda a: nqz.models.MPSOpen(SPIN4, a(2), key=key), "MPSOpen"),
        (lambda a: nqz.models.MPSPeriodic(SPIN4, a(2), a(2), key=key), "MPSPeriodic"),
        (lambda a: nqz.models.RBMSymm(SPIN4, GROUP4, alpha=a(1), key=key), "RBMSymm"),
        (lambda a: nqz.models.GCNN(SPIN4, GROUP4, layers=a(2), features=(a(2), a(3)), key=key),
         "GCNN"),
        (lambda a: nqz.models.ARTransformer(SPIN4, a(1), a(4), a(2), mlp_ratio=a(1),
                                            lattice_shape=(a(2), a(2)), machine_pow=a(2),
                                            key=key), "ARTransformer"),
        (lambda a: nqz.models.ViT(SPIN4, lattice=CHAIN4, patch_size=a(2), d_model=a(4),
                                  heads=a(2), layers=a(1), mlp_ratio=a(1), key=key), "ViT"),
        (lambda a: nqz.models.RNN(SPIN4, a(2), (a(3), a(2)), machine_pow=a(2), key=key), "RNN"),
        (lambda a: nqz.models.LSTMNet(SPIN4, a(1), a(2), key=key), "LSTMNet"),
        (lambda a: nqz.nn.DenseSymm(GROUP4, a(2), in_features=a(1), key=key), "DenseSymm"),
        (lambda a: nqz.nn.DenseEquivariant(GROUP4, a(2), a(1), key=key), "DenseEquivariant"),
        (lambda a: nqz.nn.SimpleRNNCell(a(1), a(2), a(1), key=key), "SimpleRNNCell"),
        (lambda a: nqz.nn.ViTEncoderBlock(a(2), a(4), a(2), a(1), key=key), "ViTEncoderBlock"),
    ]
    failures = []
    for build, name in pairs:
        try:
            model = build(i64)
        except (TypeError, ValueError) as e:
            failures.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[1:2]}")
            continue
        if not (eqx.tree_equal(model, build(int)) and _no_numpy_scalars(model)):
            failures.append(f"{name}: not the model built from Python ints")
    assert not failures, "\n".join(failures)


def test_particles_take_numpy_lengths_and_refuse_bools():
    for L in ((np.float32(1.0),), np.float64(2.0), [np.int64(1), 2.5], (1.0, np.float16(2))):
        box = nqz.hilbert.Particles(np.int64(2), L)
        assert all(type(ext) is float for ext in box.L) and type(box.N) is int
    for L in (True, (1.0, True), (np.inf,), (np.float32("nan"),), ()):
        with pytest.raises((TypeError, ValueError), match="L"):
            nqz.hilbert.Particles(2, L)
    assert nqz.hilbert.Particles(2, (1.0, 2.0), pbc=np.bool_(False)).pbc == (False, False)


def test_random_state_shapes():
    """A batch shape: NumPy ints accepted, floats, bools and negative sizes refused by name."""
    key = jax.random.key(0)
    for space in (SPIN4, SPIN4_SZ0, nqz.hilbert.Particles(2, (1.0,))):
        assert space.random_state(key, np.int64(3)).shape == (3, space.size)
        assert space.random_state(key, (np.int32(2), 1)).shape == (2, 1, space.size)
        for bad in (True, (2, -1), (2, 1.0)):
            with pytest.raises((TypeError, ValueError), match="shape"):
                space.random_state(key, bad)


# --- item 2 for the newer converters -----------------------------------------------------------


def _netket_twin(name, key):
    from nqzoo.interop.netket import to_netket

    model = {
        "Jastrow": lambda: nqz.models.Jastrow(SPIN4, key=key),
        "RBMSymm": lambda: nqz.models.RBMSymm(SPIN4, GROUP4, key=key),
        "MPSOpen": lambda: nqz.models.MPSOpen(SPIN4, 2, key=key),
        "MPSPeriodic": lambda: nqz.models.MPSPeriodic(SPIN4, 2, key=key),
        "GCNN-fft": lambda: nqz.models.GCNN(SPIN4, GROUP4, layers=2, features=2, key=key),
        "GCNN-irreps": lambda: nqz.models.GCNN(SPIN4, GROUP4, layers=2, features=2,
                                               mode="irreps", key=key),
        "Symmetrized": lambda: nqz.models.Symmetrized(nqz.models.RBM(SPIN4, key=key), GROUP4),
    }[name]()
    module, variables = to_netket(model)
    return model, module, variables["params"]


def _edited(params, path, value=None):
    """A copy of the nested dict `params` with `path` deleted (value None) or set."""
    params = {k: _edited(v, (), None) if hasattr(v, "items") else v for k, v in params.items()}
    if path:
        node = params
        for key in path[:-1]:
            node = node[key]
        if value is None:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return params


def _paths(params, prefix=()):
    for key, value in params.items():
        if hasattr(value, "items"):
            yield from _paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


CONVERTED = ["Jastrow", "RBMSymm", "MPSOpen", "MPSPeriodic", "GCNN-fft", "GCNN-irreps",
             "Symmetrized"]
FLAGS = {"RBMSymm": ["use_visible_bias", "use_hidden_bias"], "GCNN-fft": ["use_bias"],
         "GCNN-irreps": ["use_bias"]}


@pytest.mark.parametrize("name", CONVERTED)
def test_newer_converters_are_strict(name, getkey):
    """A missing parameter, an unexpected one (at the top or next to a real one) and a flag
    that contradicts the parameters raise a ValueError naming the parameter's full path in
    the variables given (params/module/... inside a SymmExpSum)."""
    from nqzoo.interop.netket import from_netket

    model, module, params = _netket_twin(name, getkey())
    assert bool(eqx.tree_equal(from_netket(module, {"params": params}), model))
    for path in _paths(params):
        shown = "/".join(("params", *path))
        with pytest.raises(ValueError, match=rf"missing parameter {shown}\b"):
            from_netket(module, {"params": _edited(params, path)})
        extra = (*path[:-1], "extra")
        for where in (("extra",), extra):
            shown = "/".join(("params", *where))
            with pytest.raises(ValueError, match=rf"unexpected parameter {shown}\b"):
                from_netket(module, {"params": _edited(params, where, np.ones(1))})
    for flag in FLAGS.get(name, []):
        with pytest.raises(ValueError, match=rf"{flag}=False.*unexpected parameter params/"):
            from_netket(module.clone(**{flag: False}), {"params": params})


# --- item 5, the class behind it: annotations that decide the error ---------------------------


def _union(hint):
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return set(typing.get_args(hint))
    return {hint}


def _narrow_annotations(hint):
    """What in `hint` makes the signature's type check, not the validator, judge a size:
    - an integer inside a sequence annotation without float (beartype checks one random
      entry of a sequence, so `(4, inf)` gives a TypeError or the validator's ValueError
      at random);
    - `int` without `np.integer` (NumPy integers refused, unlike by nqz.sample)."""
    found = []
    members = _union(hint)
    numpy_ints = any(isinstance(m, type) and issubclass(np.integer, m) for m in members)
    if int in members and not numpy_ints:
        found.append("int without np.integer")
    for member in members:
        origin, args = typing.get_origin(member), typing.get_args(member)
        if origin in (collections.abc.Sequence, tuple, list) and args:
            entries = set().union(*(_union(a) for a in args if a is not Ellipsis))
            if int in entries and float not in entries:
                found.append(f"{member} (an entry of a sequence is sampled)")
    return found


def _public_constructors():
    for module in (nqz.models, nqz.nn, nqz.hilbert):
        for name, obj in sorted(vars(module).items()):
            if inspect.isclass(obj) and not name.startswith(("_", "Abstract")):
                yield f"{module.__name__}.{name}", obj


def test_sizes_are_judged_by_the_validators():
    """No public constructor lets its annotation decide a size: every size parameter accepts
    NumPy integers, and a sequence of sizes is annotated with float entries too, so that the
    validator (which checks every entry and names the argument) always gives the error."""
    bad = []
    for qualname, cls in _public_constructors():
        try:
            hints = typing.get_type_hints(cls.__init__)
        except Exception:  # noqa: BLE001 - a constructor without resolvable hints
            continue
        for arg, hint in hints.items():
            if arg in ("return", "self", "key"):
                continue
            for problem in _narrow_annotations(hint):
                bad.append(f"{qualname}({arg}): {problem}")
    assert not bad, "\n".join(bad)

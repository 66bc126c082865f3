"""Misuse gets a clear error, edge hyperparameters are refused or work: cache states of another
model, a state reused after an eager step, out-of-range site indices, 1-wide masked kernels,
inf/nan and NumPy numbers as hyperparameters (issue 15, items 4 and 5)."""

import dataclasses

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

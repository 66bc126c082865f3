"""Masked layers: causal dependency patterns, mask-corrected init, fast steps == slow layers."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import randomize


# Independent statements of NetKet's dependency rules (NETKET_REFERENCE.md, section 3.3).


def dense_deps(n, exclusive):
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return i <= j - int(exclusive)


def conv1d_deps(n, k, d, exclusive):
    deps = np.zeros((n, n), bool)
    taps = k - int(exclusive)
    for j in range(n):
        for m in range(taps):
            s = j - (d if exclusive else 0) - d * (taps - 1 - m)
            if s >= 0:
                deps[s, j] = True
    return deps


def conv2d_deps(rows, cols, kernel_size, dilation, exclusive):
    (kh, kw), (dh, dw) = kernel_size, dilation
    n = rows * cols
    deps = np.zeros((n, n), bool)
    for r in range(rows):
        for c in range(cols):
            for p in range(kh):
                for q in range(kw):
                    last_row = p == kh - 1
                    if last_row and q >= kw // 2 + (0 if exclusive else 1):
                        continue
                    rr, cc = r - (kh - 1 - p) * dh, c + (q - kw // 2) * dw
                    if 0 <= rr < rows and 0 <= cc < cols:
                        deps[rr * cols + cc, r * cols + c] = True
    return deps


def _randomized(layer, key):
    """Every parameter random, masked kernel entries included (so the mask must be applied)."""
    params, static = eqx.partition(layer, eqx.is_inexact_array)
    return eqx.combine(randomize(params, key, scale=1.0), static)


def _jacobian_pattern(fn, x):
    jac = eqx.filter_jit(lambda f, x: jax.jacfwd(f)(x))(
        fn, x
    )  # (n_out..., F_out, n_in..., F_in) flattened below
    n = math.prod(x.shape[:-1])
    jac = np.abs(np.asarray(jac)).reshape(n, -1, n, x.shape[-1]).sum(axis=(1, 3))
    return (jac > 1e-12).T  # [input site, output site]


LAYER_CASES = [
    ("dense", dict(), False),
    ("dense", dict(), True),
    ("conv1d", dict(kernel_size=3, kernel_dilation=1), True),
    ("conv1d", dict(kernel_size=3, kernel_dilation=2), True),
    ("conv1d", dict(kernel_size=2, kernel_dilation=2), False),
    ("conv1d", dict(kernel_size=4, kernel_dilation=1), False),
    ("conv2d", dict(kernel_size=(2, 3), kernel_dilation=(1, 1)), True),
    ("conv2d", dict(kernel_size=(3, 3), kernel_dilation=(1, 2)), False),
    ("conv2d", dict(kernel_size=(2, 2), kernel_dilation=(2, 1)), True),
    ("conv2d", dict(kernel_size=(3, 2), kernel_dilation=(2, 2)), False),
]

ROWS, COLS = 4, 3
N1D = 9


def _make(kind, kw, exclusive, fast, f_in, f_out, dtype, key):
    """The slow layer, or (fast=True) its fast wrapper."""
    if kind == "dense":
        layer = nqz.nn.MaskedDense1D(N1D, f_in, f_out, exclusive, param_dtype=dtype, key=key)
        return nqz.nn.FastMaskedDense1D(layer) if fast else layer
    if kind == "conv1d":
        layer = nqz.nn.MaskedConv1D(
            f_in, f_out, exclusive=exclusive, param_dtype=dtype, key=key, **kw
        )
        return nqz.nn.FastMaskedConv1D(layer) if fast else layer
    layer = nqz.nn.MaskedConv2D(f_in, f_out, exclusive=exclusive, param_dtype=dtype, key=key, **kw)
    return nqz.nn.FastMaskedConv2D(layer, (ROWS, COLS)) if fast else layer


def _expected(kind, kw, exclusive):
    if kind == "dense":
        return dense_deps(N1D, exclusive)
    if kind == "conv1d":
        return conv1d_deps(N1D, kw["kernel_size"], kw["kernel_dilation"], exclusive)
    return conv2d_deps(ROWS, COLS, kw["kernel_size"], kw["kernel_dilation"], exclusive)


def _input_shape(kind, f_in):
    return (ROWS, COLS, f_in) if kind == "conv2d" else (N1D, f_in)


@pytest.mark.parametrize("kind, kw, exclusive", LAYER_CASES)
def test_dependency_pattern(kind, kw, exclusive, getkey):
    layer = _randomized(_make(kind, kw, exclusive, False, 2, 2, jnp.float64, getkey()), getkey())
    x = jax.random.normal(getkey(), _input_shape(kind, 2))
    pattern = _jacobian_pattern(layer, x)
    np.testing.assert_array_equal(pattern, _expected(kind, kw, exclusive))


@pytest.mark.parametrize("f_in, f_out", [(3, 2), (2, 3)])
@pytest.mark.parametrize(
    "kind, kw, exclusive, dtype",
    [(*case, (jnp.float64, jnp.complex128)[i % 2]) for i, case in enumerate(LAYER_CASES)]
    + [(*LAYER_CASES[i], jnp.float64) for i in (3, 7)],
)
def test_fast_steps_equal_slow(kind, kw, exclusive, dtype, f_in, f_out, getkey):
    """update_site over all sites (a lax.scan, traced index) reproduces the slow layer.

    Narrowing (3 -> 2) and widening (2 -> 3) layers: a narrowing Conv1D keeps partial sums of
    its next outputs instead of its past inputs."""
    fast, state = eqx.nn.make_with_state(_make)(
        kind, kw, exclusive, True, f_in, f_out, dtype, getkey()
    )
    fast = _randomized(fast, getkey())
    cache = state.get(fast.cache)
    assert cache.dtype == jnp.dtype(dtype)
    x = jax.random.normal(getkey(), _input_shape(kind, f_in), dtype)

    @eqx.filter_jit
    def run(fast, state, x):
        flat = x.reshape(-1, f_in)

        def step(state, index):
            inputs = flat[jnp.maximum(index - int(exclusive), 0)]
            out, state = fast.update_site(inputs, index, state)
            return state, out

        new_state, out = jax.lax.scan(step, state, jnp.arange(flat.shape[0]))
        return new_state, out, fast(x).reshape(-1, f_out)

    new_state, out, expected = run(fast, state, x)
    shapes = [(a.shape, a.dtype) for a in jax.tree.leaves(new_state)]
    assert shapes == [(a.shape, a.dtype) for a in jax.tree.leaves(state)]
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize("f_in, f_out", [(3, 2), (2, 3)])
@pytest.mark.parametrize("kind, kw, exclusive", [LAYER_CASES[i] for i in (1, 3, 8)])
def test_update_site_takes_any_integer_index(kind, kw, exclusive, f_in, f_out, getkey):
    """Python ints, int32 and int64 indices (traced or not) give the same steps."""
    fast, state = eqx.nn.make_with_state(_make)(
        kind, kw, exclusive, True, f_in, f_out, jnp.float64, getkey()
    )
    fast = _randomized(fast, getkey())
    flat = jax.random.normal(getkey(), _input_shape(kind, f_in)).reshape(-1, f_in)
    n = flat.shape[0]

    def steps(indices):
        st, outs = jax.tree.map(jnp.copy, state), []  # eager `set` retires the state it is given
        for index in indices:
            inputs = flat[max(int(index) - int(exclusive), 0)]
            out, st = fast.update_site(inputs, index, st)
            outs.append(out)
        return np.stack(outs)

    expected = steps(range(n))
    np.testing.assert_array_equal(steps([jnp.int32(i) for i in range(n)]), expected)
    np.testing.assert_array_equal(steps([jnp.int64(i) for i in range(n)]), expected)

    @eqx.filter_jit
    def scanned(fast, state, indices):
        def step(st, index):
            out, st = fast.update_site(flat[jnp.maximum(index - int(exclusive), 0)], index, st)
            return st, out

        return jax.lax.scan(step, state, indices)[1]

    for dtype in (jnp.int32, jnp.int64):
        out = scanned(fast, state, jnp.arange(n, dtype=dtype))
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("kind, kw, exclusive", LAYER_CASES[::3] + LAYER_CASES[1::3])
def test_mask_corrected_init(kind, kw, exclusive, getkey):
    """kernel = sqrt(mask.size / mask.sum()) * mask * kernel_init(...) (NetKet's correction)."""
    ones = nqz.nn.initializers.ones
    if kind == "dense":
        layer = nqz.nn.MaskedDense1D(N1D, 2, 3, exclusive, kernel_init=ones, key=getkey())
        mask = np.kron(dense_deps(N1D, exclusive), np.ones((2, 3)))
    elif kind == "conv1d":
        layer = nqz.nn.MaskedConv1D(
            2, 3, exclusive=exclusive, kernel_init=ones, key=getkey(), **kw
        )
        mask = np.ones((kw["kernel_size"] - int(exclusive), 2, 3))
    else:
        layer = nqz.nn.MaskedConv2D(
            2, 3, exclusive=exclusive, kernel_init=ones, key=getkey(), **kw
        )
        kh, kw_ = kw["kernel_size"]
        mask2 = np.ones((kh, kw_))
        mask2[kh - 1, kw_ // 2 + (0 if exclusive else 1) :] = 0
        mask = np.broadcast_to(mask2[:, :, None, None], (kh, kw_, 2, 3))
    corr = math.sqrt(mask.size / mask.sum())
    np.testing.assert_allclose(layer.kernel, corr * mask, rtol=1e-15)
    np.testing.assert_array_equal(layer.bias, 0)


def test_lecun_statistics_of_masked_dense(getkey):
    """Surviving entries have variance (1/fan_in) * mask.size / mask.sum() (truncation aside)."""
    n, f = 40, 3
    layer = nqz.nn.MaskedDense1D(n, f, f, exclusive=True, key=getkey())
    kernel = np.asarray(layer.kernel)
    mask = np.kron(dense_deps(n, True), np.ones((f, f))).astype(bool)
    assert np.all(kernel[~mask] == 0)
    expected_var = (1 / (n * f)) * mask.size / mask.sum()
    # jax's lecun_normal is a truncated normal rescaled to the target variance
    assert abs(kernel[mask].var() / expected_var - 1) < 0.1


def test_layer_rejects_wrong_width(getkey):
    layer = nqz.nn.MaskedConv1D(2, 3, kernel_size=3, key=getkey())
    with pytest.raises(TypeError):
        layer(jnp.ones((5, 4)))
    layer2 = nqz.nn.MaskedConv2D(2, 3, kernel_size=(2, 3), key=getkey())
    with pytest.raises(TypeError):
        layer2(jnp.ones((3, 3, 1)))


@pytest.mark.parametrize("exclusive, n_unmasked", [(True, 4), (False, 5)])
def test_conv2d_contract_takes_only_unmasked_taps(exclusive, n_unmasked, getkey):
    """`contract` reads the unmasked taps in raster order; the full (kh, kw) window is a
    shape error naming the axis."""
    layer = nqz.nn.MaskedConv2D(2, 3, kernel_size=(2, 3), exclusive=exclusive, key=getkey())
    assert layer.unmasked_taps == ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1))[:n_unmasked]
    assert layer.n_unmasked == n_unmasked
    assert layer.contract(jnp.ones((7, n_unmasked, 2))).shape == (7, 3)
    with pytest.raises(TypeError, match="n_unmasked"):
        layer.contract(jnp.ones((7, 2, 3, 2)))


def test_update_site_needs_state(getkey):
    conv = nqz.nn.MaskedConv1D(1, 2, 3, key=getkey())
    layer, state = eqx.nn.make_with_state(nqz.nn.FastMaskedConv1D)(conv)
    with pytest.raises(TypeError, match="make_with_state"):
        layer.update_site(jnp.ones(1), 0, None)


@pytest.mark.parametrize("kind, kw, exclusive", [LAYER_CASES[i] for i in (0, 2, 6)])
def test_fast_layer_wraps_its_slow_layer(kind, kw, exclusive, getkey):
    """The wrapper holds the layer it was given and its forward pass is that layer's."""
    layer = _make(kind, kw, exclusive, False, 2, 3, jnp.float64, getkey())
    wrapper = {
        "dense": nqz.nn.FastMaskedDense1D,
        "conv1d": nqz.nn.FastMaskedConv1D,
        "conv2d": nqz.nn.FastMaskedConv2D,
    }[kind]
    args = ((ROWS, COLS),) if kind == "conv2d" else ()
    fast, state = eqx.nn.make_with_state(wrapper)(layer, *args)
    assert eqx.tree_equal(fast.layer, layer)
    x = jax.random.normal(getkey(), _input_shape(kind, 2))
    np.testing.assert_array_equal(fast(x), layer(x))
    assert [leaf.shape for leaf in jax.tree.leaves(state)] == [state.get(fast.cache).shape]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=0), "kernel_size"),
        (dict(kernel_size=3, kernel_dilation=0), "kernel_dilation"),
        (dict(kernel_size=-2), "kernel_size"),
    ],
)
def test_conv1d_bad_hyperparameters(kwargs, match, getkey):
    with pytest.raises(ValueError, match=match):
        nqz.nn.MaskedConv1D(1, 2, key=getkey(), **kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=(0, 3)), "kernel_size"),
        (dict(kernel_size=(2, 3), kernel_dilation=(1, 0)), "kernel_dilation"),
        (dict(kernel_size=(2, 3, 4)), "kernel_size"),
    ],
)
def test_conv2d_bad_hyperparameters(kwargs, match, getkey):
    with pytest.raises((ValueError, TypeError), match=match):
        nqz.nn.MaskedConv2D(1, 2, key=getkey(), **kwargs)


def test_complex_input_to_a_real_layer_stays_complex(getkey):
    """A real layer keeps an imaginary input part (computing in the complex dtype of its
    precision) instead of dropping it. (Under JAX's standard promotion: the complex-times-real
    kernel product is still an implicit promotion.)"""
    layer = nqz.nn.MaskedConv1D(1, 2, kernel_size=3, key=getkey())
    x = jax.lax.complex(jnp.arange(5.0)[:, None], jnp.ones((5, 1)))
    with jax.numpy_dtype_promotion("standard"):
        y = layer(x)
    assert y.dtype == jnp.complex128
    # linear up to the bias: y(a + ib) = y(a) + i (y(b) - y(0))
    bias_free = np.asarray(layer(x.imag)) - np.asarray(layer(jnp.zeros((5, 1))))
    expected = np.asarray(layer(x.real)) + 1j * bias_free
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)

"""Activations and initialisers against NetKet/JAX."""

import math

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import netket_promotion


def _netket_rules(fn):
    """`fn` called under the promotion rules NetKet's code is written for."""

    def call(*args):
        with netket_promotion():
            return fn(*args)

    return call


nk_log_cosh = _netket_rules(jax.jit(nk.nn.activation.log_cosh))
nk_reim_selu = _netket_rules(nk.nn.activation.reim_selu)
nq_log_cosh = jax.jit(nqz.nn.log_cosh)


def test_log_cosh_real_matches_netket_and_is_stable():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=2000) * 3, [0.0, -0.0, 1e-300, 800.0, -1e4, 1e4]])
    out = np.asarray(nq_log_cosh(x))
    np.testing.assert_allclose(out, nk_log_cosh(x), rtol=1e-15, atol=0)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[-2:], 1e4 - math.log(2), rtol=1e-15)
    small = np.abs(x) < 5
    np.testing.assert_allclose(out[small], np.log(np.cosh(x[small])), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "re_scale,im_scale", [(1, 1), (3, 10), (1e-3, 100), (1e-8, 3), (50, 1e4), (1e4, 1e4)]
)
def test_log_cosh_complex_same_branch_as_netket(re_scale, im_scale):
    rng = np.random.default_rng(1)
    z = rng.normal(size=20000) * re_scale + 1j * rng.normal(size=20000) * im_scale
    out, expected = np.asarray(nq_log_cosh(z)), np.asarray(nk_log_cosh(z))
    assert np.all(np.isfinite(out))
    # the same numbers, imaginary part included (no 2 pi k differences)
    err = np.abs(out - expected) / np.maximum(np.abs(expected), 1)
    assert err.max() <= 1e-12
    # and it is a logarithm of cosh
    moderate = np.abs(z.real) < 20
    np.testing.assert_allclose(np.exp(out[moderate]), np.cosh(z[moderate]), rtol=1e-11)


def test_log_cosh_complex_branch_edges():
    """Im z near (k + 1/2) pi, where tan b changes sign, and Re z = +-0."""
    b = (np.arange(-40, 40) + 0.5) * np.pi
    b = np.concatenate([b, np.nextafter(b, np.inf), np.nextafter(b, -np.inf), b + 1e-9, b - 1e-9])
    for a in (0.3, -0.3, 1e-3, -2.0):
        z = a + 1j * b
        np.testing.assert_allclose(nq_log_cosh(z), nk_log_cosh(z), rtol=1e-12, atol=1e-12)
    z = np.array([0.0 + 1j, -0.0 + 1j, 0.0 - 2j, -0.0 - 2j, 1e4 + 1e4j, -1e4 - 3j])
    np.testing.assert_allclose(nq_log_cosh(z), nk_log_cosh(z), rtol=1e-14, atol=1e-15)


def test_log_cosh_derivative_is_tanh():
    rng = np.random.default_rng(2)
    x = rng.normal(size=500) * 4
    g = jax.jit(jax.vmap(jax.grad(nqz.nn.log_cosh)))(x)
    np.testing.assert_allclose(g, np.tanh(x), rtol=1e-14, atol=1e-16)
    z = x + 1j * rng.normal(size=500) * 4
    g = jax.jit(jax.vmap(jax.grad(nqz.nn.log_cosh, holomorphic=True)))(z)
    np.testing.assert_allclose(g, np.tanh(z), rtol=1e-12)
    # the same gradients as differentiating NetKet's formula, real and imaginary parts
    for part in (jnp.real, jnp.imag):
        ours = jax.jit(jax.vmap(jax.grad(lambda z: part(nqz.nn.log_cosh(z)))))(z)
        theirs = _netket_rules(
            jax.jit(jax.vmap(jax.grad(lambda z: part(nk.nn.activation.log_cosh(z)))))
        )(z)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_reim_selu_matches_netket():
    rng = np.random.default_rng(3)
    x = rng.normal(size=1000) * 3
    z = x + 1j * rng.normal(size=1000) * 3
    np.testing.assert_allclose(nqz.nn.reim_selu(x), nk_reim_selu(x), rtol=1e-15)
    np.testing.assert_allclose(nqz.nn.reim_selu(z), nk_reim_selu(z), rtol=1e-15)
    assert nqz.nn.reim_selu(z).dtype == jnp.complex128


def test_gelu_is_the_tanh_form():
    x = np.linspace(-6, 6, 101)
    tanh_form = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(nqz.nn.gelu(x), tanh_form, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(nqz.nn.gelu(x), jax.nn.gelu(x))  # NetKet's default
    assert abs(float(nqz.nn.gelu(1.0)) - float(jax.nn.gelu(1.0, approximate=False))) > 1e-4


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_initializers_equal_jax(dtype):
    """nqzoo's initialisers draw exactly what NetKet's (JAX's) draw for the same key."""
    key, shape = jax.random.key(7), (30, 20)
    init = nqz.nn.initializers
    np.testing.assert_array_equal(
        init.lecun_normal()(key, shape, dtype),
        jax.nn.initializers.lecun_normal()(key, shape, dtype),
    )
    np.testing.assert_array_equal(
        init.normal(0.01)(key, shape, dtype), jax.nn.initializers.normal(0.01)(key, shape, dtype)
    )
    z, o = init.zeros(key, shape, dtype), init.ones(key, shape, dtype)
    assert z.dtype == o.dtype == dtype and not z.any() and bool((o == 1).all())
    w = np.asarray(init.lecun_normal()(key, (400, 300), dtype))
    # truncation at 2 sigma of the untruncated normal (modulus for complex)
    bound = 2 / (0.87962566 if dtype == jnp.float64 else 0.95311164) / np.sqrt(400)
    assert np.abs(w).max() <= bound * (1 + 1e-12)
    assert abs(np.mean(np.abs(w) ** 2) * 400 - 1) < 0.03


def test_log_cosh_complex_huge_imaginary_part():
    """Beyond the polynomial path's argument reduction (|Im z| > 8e5) XLA's tan/atan take over."""
    rng = np.random.default_rng(4)
    z = rng.normal(size=1000) + 1j * rng.uniform(1e6, 1e8, size=1000)
    out, expected = np.asarray(nq_log_cosh(z)), np.asarray(nk_log_cosh(z))
    assert np.all(np.isfinite(out))
    assert np.max(np.abs(out - expected) / np.abs(expected)) <= 1e-12


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64, jnp.float64, jnp.complex128])
@pytest.mark.parametrize("activation", [nqz.nn.log_cosh, nqz.nn.reim_selu, nqz.nn.gelu])
def test_activations_keep_the_dtype(activation, dtype):
    """With x64 on, float32/complex64 input stays float32/complex64, derivatives included
    (no float64 constant promotes it), and the values agree with the float64 evaluation."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=64) * 3
    if jnp.issubdtype(dtype, jnp.complexfloating):
        x = x + 1j * rng.normal(size=64) * 3
    x32 = jnp.asarray(x, dtype)
    out = jax.jit(activation)(x32)
    assert out.dtype == dtype
    grad = jax.jit(jax.vmap(jax.grad(lambda t: jnp.real(activation(t)))))(x32)
    assert grad.dtype == dtype
    wide = jnp.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else jnp.float64
    exact = activation(x32.astype(wide))
    np.testing.assert_allclose(out, exact, rtol=100 * np.finfo(dtype).eps, atol=1e-6)

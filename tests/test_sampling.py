"""Tests of the exact autoregressive sampler `nqz.sample`.

The sampler is tested first on two small hand-written autoregressive models defined here (a
logistic model written with only `conditionals_log_psi`, and a fast twin with a trivial cache),
so these tests exercise the user extension story and do not depend on the library's ARNNs;
the library's ARNNs are covered further down.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.models import AbstractFastARNN

from .helpers import FastLogistic, Logistic, randomize_numpy


# Hand-written models: `Logistic`, written with only `conditionals_log_psi`, and its fast twin
# `FastLogistic` with a trivial cache (tests/helpers.py)


SPACES = {
    "spin-half-8": nqz.hilbert.Spin(0.5, 8),
    "spin-one-5": nqz.hilbert.Spin(1, 5),
    "fock-2-5": nqz.hilbert.Fock(2, 5),
}


def _toy(hilbert, fast, machine_pow=2, dtype=jnp.float64, seed=0):
    slow = Logistic(hilbert, machine_pow, dtype, key=jax.random.key(seed))
    if not fast:
        return slow, None
    return eqx.nn.make_with_state(FastLogistic)(slow)


# One compiled sampler per (model structure, n_samples, chunk_size): the tests below reuse
# the same n_samples and flags so that most calls hit the compilation cache.
_sample = eqx.filter_jit(nqz.sample)
N = 20_000
KEY = jax.random.key(1234)


def draw(model, state, *, key=KEY, chunk_size=None):
    return _sample(model, N, key=key, state=state, chunk_size=chunk_size, return_log_prob=True)


# --------------------------------------------------------------------------------------------
# Chi-squared goodness of fit


# nqzoo.testing's chi-squared check: with a fixed seed deterministic; a correct sampler fails
# it with probability nqt.ALPHA = 1e-4 over seeds.


def check_samples(model, samples, log_prob):
    """Samples in the space, with the right dtype, distribution and log-probabilities, from a
    normalised model."""
    hilbert = model.hilbert
    assert samples.shape == (N, hilbert.size)
    assert samples.dtype == hilbert.dtype == jnp.int8
    assert set(np.unique(np.asarray(samples))) == set(hilbert.local_states)
    nqt.assert_normalized(model)  # sum_x |psi(x)|^p = 1 to 1e-10
    # every sample a state, chi-squared p-value >= 1e-4, log_prob = p Re log psi to 1e-12
    nqt.assert_samples_match(model, samples, log_prob=log_prob, alpha=nqt.ALPHA)


@pytest.mark.parametrize("space", list(SPACES))
@pytest.mark.parametrize(
    "fast, machine_pow, dtype",
    [(False, 2, jnp.float64), (True, 1, jnp.complex128)],
    ids=["slow-mp2-real", "fast-mp1-complex"],
)
def test_toy_distribution(space, fast, machine_pow, dtype):
    model, state = _toy(SPACES[space], fast, machine_pow, dtype)
    check_samples(model, *draw(model, state))


def test_chi2_rejects_wrong_distribution():
    """The chi-squared check has power: it rejects a plausible sampler bug (wrong machine_pow)."""
    hilbert = SPACES["spin-half-8"]
    right, _ = _toy(hilbert, False, machine_pow=2)
    wrong, _ = _toy(hilbert, False, machine_pow=1)  # same parameters, |psi|^1 instead of |psi|^2
    samples, _ = draw(wrong, None)
    nqt.assert_normalized(right)
    with pytest.raises(AssertionError, match=r"do not follow .* < alpha=0.0001"):
        nqt.assert_samples_match(right, samples, alpha=nqt.ALPHA)
    # and it accepts the right pairing at the same sample size
    nqt.assert_samples_match(wrong, samples, alpha=nqt.ALPHA)


# --------------------------------------------------------------------------------------------
# Key protocol: fast = slow, chunk invariance, per-sample keys


def test_fast_slow_identical_and_chunk_invariance():
    hilbert = SPACES["spin-half-8"]
    slow, _ = _toy(hilbert, False)
    fast, state = _toy(hilbert, True)
    xs, lps = draw(slow, None)
    xf, lpf = draw(fast, state)
    np.testing.assert_array_equal(xs, xf)
    np.testing.assert_allclose(lpf, lps, rtol=1e-12, atol=1e-12)
    # chunk_size not dividing n_samples: same samples and log-probabilities, bit for bit
    for model, st, x, lp in [(slow, None, xs, lps), (fast, state, xf, lpf)]:
        xc, lpc = draw(model, st, chunk_size=6_000)
        np.testing.assert_array_equal(xc, x)
        np.testing.assert_array_equal(lpc, lp)
    # a different key gives different samples
    assert not np.array_equal(draw(slow, None, key=jax.random.key(8))[0], xs)


def test_key_protocol_and_state_values_unused():
    """Sample s uses row s of `1 - uniform(key, (n_samples, N))`; the state's values are unused."""
    hilbert = SPACES["spin-half-8"]
    model, state = _toy(hilbert, True)
    key = jax.random.key(11)
    samples, _ = draw(model, state, key=key)
    # A state that is not all zeros (e.g. left over from stepping by hand) changes nothing.
    dirty = jax.tree.map(lambda leaf: leaf + 1.0, state)
    np.testing.assert_array_equal(draw(model, dirty, key=key)[0], samples)
    # The documented key protocol, replayed in NumPy for a few samples: site i of sample s
    # inverts the CDF of its conditional at u[s, i].
    u = 1.0 - np.asarray(jax.random.uniform(key, (N, hilbert.size)))
    for s in [0, 5, N - 1]:
        x = np.full(hilbert.size, hilbert.local_states[0], dtype=np.int8)
        for i in range(hilbert.size):
            c = np.cumsum(np.asarray(model.conditionals(x))[i])
            x[i] = hilbert.local_states[int(np.sum(c < c[-1] * u[s, i]))]
        np.testing.assert_array_equal(samples[s], x)
    # prefix stability (partitionable Threefry, JAX's default): fewer samples, same prefix
    np.testing.assert_array_equal(_sample(model, 300, key=key, state=state), samples[:300])


def test_filter_jit_vmap_and_legacy_keys():
    hilbert = SPACES["spin-half-8"]
    model, state = _toy(hilbert, True)
    keys = jax.random.split(jax.random.key(5), 3)

    @eqx.filter_jit
    def run(model, state, key):
        return nqz.sample(model, 32, key=key, state=state)

    batched = jax.vmap(run, in_axes=(None, None, 0))(model, state, keys)
    assert batched.shape == (3, 32, hilbert.size)
    for b in range(3):
        np.testing.assert_array_equal(batched[b], run(model, state, keys[b]))
    assert not np.array_equal(batched[0], batched[1])
    # old-style uint32 keys work too and give the same samples as the wrapped new-style key
    raw = jax.random.PRNGKey(5)
    np.testing.assert_array_equal(
        run(model, state, raw), run(model, state, jax.random.wrap_key_data(raw))
    )


# --------------------------------------------------------------------------------------------
# The library's ARNNs: distribution, log-probabilities, fast == slow twin


ARNN_CASES = {
    # name: (fast class, hilbert, hyperparameters, param_dtype, machine_pow)
    "Conv1D-spin-half-8-real-mp2-d2": (
        nqz.models.FastARNNConv1D,
        nqz.hilbert.Spin(0.5, 8),
        dict(layers=2, features=4, kernel_size=3, kernel_dilation=2),
        jnp.float64,
        2,
    ),
    "Conv2D-spin-one-2x3-complex-mp1": (
        nqz.models.FastARNNConv2D,
        nqz.hilbert.Spin(1, 6),
        dict(layers=2, features=4, kernel_size=(2, 3), lattice_shape=(2, 3)),
        jnp.complex128,
        1,
    ),
    "Dense-fock-2-5-complex-mp2": (
        nqz.models.FastARNNDense,
        nqz.hilbert.Fock(2, 5),
        dict(layers=3, features=4),
        jnp.complex128,
        2,
    ),
}


def _arnn(name):
    """A fast ARNN with randomised parameters (not init values), its state and slow twin."""
    cls, hilbert, hyper, dtype, machine_pow = ARNN_CASES[name]
    # jitted construction: one compilation instead of one per eager initialiser op
    fast, state = eqx.filter_jit(eqx.nn.make_with_state(cls))(
        hilbert, param_dtype=dtype, machine_pow=machine_pow, key=jax.random.key(0), **hyper
    )
    fast = randomize_numpy(fast, seed=1)
    return fast, state, fast.to_slow()


@pytest.mark.parametrize("name", list(ARNN_CASES))
def test_arnn_distribution_and_fast_slow_twins(name):
    fast, state, slow = _arnn(name)
    assert isinstance(fast, AbstractFastARNN) and not isinstance(slow, AbstractFastARNN)
    x_fast, lp_fast = draw(fast, state)
    check_samples(fast, x_fast, lp_fast)
    x_slow, lp_slow = draw(slow, None)
    np.testing.assert_array_equal(x_slow, x_fast)
    np.testing.assert_allclose(lp_slow, lp_fast, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------
# Bad input


def test_bad_inputs():
    hilbert = SPACES["spin-half-8"]
    slow, _ = _toy(hilbert, False)
    fast, state = _toy(hilbert, True)
    key = jax.random.key(0)
    rbm = nqz.models.RBM(hilbert, key=key)
    with pytest.raises(TypeError, match="AbstractARNN"):
        nqz.sample(rbm, 10, key=key)
    for bad in [0, -3]:
        with pytest.raises(ValueError, match="n_samples"):
            nqz.sample(slow, bad, key=key)
    with pytest.raises(TypeError, match="n_samples"):
        nqz.sample(slow, 2.5, key=key)
    for bad in [0, -1]:
        with pytest.raises(ValueError, match="chunk_size"):
            nqz.sample(slow, 10, key=key, chunk_size=bad)
    with pytest.raises(TypeError, match="make_with_state"):
        nqz.sample(fast, 10, key=key)
    # constrained spaces are sampled inside the constraint (tests/test_constrained.py)
    x = nqz.sample(Logistic(nqz.hilbert.Spin(0.5, 4, total_sz=0), key=key), 10, key=key)
    assert (np.asarray(x, int).sum(-1) == 0).all()
    # a state is accepted (and ignored) for a slow model, so generic code can always pass one
    np.testing.assert_array_equal(draw(slow, state)[0], draw(slow, None)[0])


# --------------------------------------------------------------------------------------------
# Sharding over 4 virtual CPU devices (a subprocess: XLA_FLAGS must be set before JAX starts)


_SHARDING_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    jax.config.update("jax_enable_x64", True)
    import equinox as eqx, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    sys.path.insert(0, {root!r})
    import nqzoo as nqz
    from tests.test_sampling import SPACES, _toy

    assert len(jax.devices()) == 4
    mesh = jax.make_mesh((4,), ("samples",), axis_types=(jax.sharding.AxisType.Auto,))
    sharding = NamedSharding(mesh, P("samples"))
    key = jax.random.key(42)
    for fast, chunk_size in [(False, None), (True, 12)]:
        model, state = _toy(SPACES["spin-one-5"], fast)
        def run(model, state, key):
            x, lp = nqz.sample(model, 96, key=key, state=state, chunk_size=chunk_size,
                               return_log_prob=True)
            return x, lp
        ref = eqx.filter_jit(run)(model, state, key)
        sharded = jax.jit(run, out_shardings=(sharding, sharding))
        compiled = sharded.lower(model, state, key).compile()
        out = compiled(model, state, key)
        assert out[0].sharding.is_equivalent_to(sharding, 2), out[0].sharding
        np.testing.assert_array_equal(out[0], ref[0])
        np.testing.assert_array_equal(out[1], ref[1])
        # the work is really split: the compiled program holds 96/4 samples per device
        hlo = compiled.as_text()
        per_device = 96 // 4 if chunk_size is None else chunk_size // 4
        assert f"s8[{{per_device}},5]" in hlo, "sampling was not partitioned"
    print("SHARDING-OK")
    """
)


def test_sharding_invariance(tmp_path):
    script = tmp_path / "sharded.py"
    script.write_text(_SHARDING_SCRIPT.format(root=str(pathlib.Path(__file__).parent.parent)))
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SHARDING-OK" in result.stdout

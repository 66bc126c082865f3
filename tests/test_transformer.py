"""The autoregressive Transformer: fast == slow at every step, normalisation (constrained
spaces too), a transcription of the equations, the causal mask (flips and the Jacobian),
gradients, sampling (chi-squared), float32, the cache layout, shapes and bad input.

Small sizes (4 to 6 sites) and one compilation per test: the properties do not depend on
the size, and the whole file runs in well under a minute."""

import math

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt

from .helpers import randomize


# space, lattice_shape, order, positional (DTYPE_POW: dtype and machine_pow): together they
# cover the chain and a lattice in snake order, both positional encodings, a constrained
# space, real and complex parameters and machine_pow 1 and 2 (the complex transcription is
# in the gradient test)
CASES = {
    "spin4-2x2-snake-2d": (nqz.hilbert.Spin(0.5, 4), (2, 2), "snake", "2d"),
    "fock4n3-chain-learned": (nqz.hilbert.Fock(2, 4, n_particles=3), None, "snake", "learned"),
}
DTYPE_POW = {"spin4": (jnp.float64, 2), "fock4n3": (jnp.complex128, 1)}


def _random_fast(hilbert, *, seed=0, layers=2, d_model=4, heads=2, **kwargs):
    """A FastARTransformer with random parameters (not init values: LayerNorm scales, biases
    and all) and its state."""
    fast, state = eqx.nn.make_with_state(nqz.models.FastARTransformer)(
        hilbert, layers, d_model, heads, key=jax.random.key(seed), **kwargs
    )
    params, static = eqx.partition(fast, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    params = unravel(randomize(flat, jax.random.key(seed + 1), scale=0.7))
    return eqx.combine(params, static), state


@eqx.filter_jit
def _log_psi(model, x):
    return model(x)


@eqx.filter_jit
def _log_psi_and_reference(model, x):
    return model(x), jax.vmap(lambda s: _reference_log_psi(model, s))(x)


# ------------------------------------------------------------------------------------------
# A transcription of the equations, in plain jnp (Vaswani et al. 2017; pre-norm blocks as
# GPT-2 / Xiong et al. 2020), reading the parameters by name
# ------------------------------------------------------------------------------------------


def _reference_log_psi(model, x):
    """log psi(x) of ONE configuration x (N,), written from the equations, loops over heads
    and explicit matrices: no code shared with the package (NumPy broadcasting and promotion
    allowed)."""
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        return _reference(model, x)


def _reference(model, x):
    hilbert = model.hilbert
    n, d, n_heads = hilbert.size, model.d_model, model.heads
    dk = d // n_heads
    local_states = np.asarray(hilbert.local_states)
    idx = jnp.argmax(jnp.asarray(x)[:, None] == local_states[None, :], axis=1)
    # the autoregressive order
    if (
        model.lattice_shape is not None
        and len(model.lattice_shape) == 2
        and (model.order == "snake")
    ):
        rows, cols = model.lattice_shape
        grid = np.arange(n).reshape(rows, cols)
        order = np.concatenate([grid[r] if r % 2 == 0 else grid[r, ::-1] for r in range(rows)])
    else:
        order = np.arange(n)
    # positional encodings of the positions
    if model.positional == "2d":
        coords = np.array(np.unravel_index(order, model.lattice_shape)).T
        pos = sum(model.positional_tables[a][coords[:, a]] for a in range(coords.shape[1]))
    else:
        pos = model.positional_tables[0]

    def layer_norm(v, gamma, beta, eps=1e-5):
        mu = jnp.mean(v, axis=-1, keepdims=True)
        var = jnp.mean(jnp.abs(v - mu) ** 2, axis=-1, keepdims=True)
        return (v - mu) / jnp.sqrt(var + eps) * gamma + beta

    def gelu(v):
        g = lambda t: 0.5 * t * (1 + jnp.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t**3)))
        return g(v.real) + 1j * g(v.imag) if jnp.iscomplexobj(v) else g(v)

    rows = [model.start] + [model.embedding[idx[order[k - 1]]] for k in range(1, n)]
    X = jnp.stack(rows) + pos
    mask = np.where(np.arange(n)[None, :] <= np.arange(n)[:, None], 0.0, -np.inf)
    for block in model.blocks:
        att = block.attention
        W = att.qkv_kernel  # (d, 3, H, dk)
        b = att.qkv_bias
        Y = layer_norm(X, block.attention_norm.scale, block.attention_norm.bias)
        outputs = []
        for h in range(n_heads):
            Q = Y @ W[:, 0, h, :] + b[0, h]
            K = Y @ W[:, 1, h, :] + b[1, h]
            V = Y @ W[:, 2, h, :] + b[2, h]
            scores = jnp.real(Q @ jnp.conj(K).T) / math.sqrt(dk) + mask
            A = jnp.exp(scores - scores.max(axis=1, keepdims=True))
            A = A / A.sum(axis=1, keepdims=True)
            outputs.append(A @ V)
        concat = jnp.concatenate(outputs, axis=1)  # heads side by side
        X = X + concat @ att.out_kernel.reshape(d, d) + att.out_bias
        Y = layer_norm(X, block.mlp_norm.scale, block.mlp_norm.bias)
        X = (
            X
            + gelu(Y @ block.mlp_in_kernel + block.mlp_in_bias) @ block.mlp_out_kernel
            + (block.mlp_out_bias)
        )
    Z = layer_norm(X, model.final_norm.scale, model.final_norm.bias) @ model.head_kernel
    Z = Z + model.head_bias  # (N positions, local_size)
    p = model.machine_pow
    log_norm = jnp.log(jnp.sum(jnp.exp(p * Z.real), axis=1)) / p
    picked = Z[np.arange(n), idx[order]] - log_norm
    return jnp.sum(picked)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_fast_matches_slow_normalised_and_transcribed(case):
    hilbert, shape, order, positional = CASES[case]
    dtype, mp = DTYPE_POW[case.split("-")[0]]
    fast, state = _random_fast(
        hilbert, lattice_shape=shape, order=order, positional=positional, param_dtype=dtype,
        machine_pow=mp,
    )  # fmt: skip
    slow = fast.to_slow()
    states = hilbert.all_states()
    # fast steps along the model's order == slow conditionals (and complex log-conditionals)
    # at every step and every configuration
    nqt.assert_fast_matches_slow(fast, state, states, slow=slow, atol=1e-12)
    # sum_x |psi(x)|^p = 1 (and no weight outside a constrained space); the fast steps give
    # the same conditionals, to 1e-12
    nqt.assert_normalized(slow, rtol=1e-12)
    if not hilbert.constrained:  # the equations, transcribed in the test
        log_psi, reference = _log_psi_and_reference(slow, states)
        assert log_psi.dtype == dtype
        np.testing.assert_allclose(log_psi, reference, rtol=1e-12, atol=1e-12)


def test_causal_by_flips_order_and_jacobian():
    """Site i never depends on the sites generated at or after it: flips of every site
    (three local values, the snake order of a 2x3 lattice), and the Jacobian of the blocks'
    outputs with respect to their inputs, zero exactly above the diagonal."""
    hilbert = nqz.hilbert.Spin(1, 6)
    fast, _ = _random_fast(hilbert, lattice_shape=(2, 3), order="snake", positional="2d")
    slow = fast.to_slow()
    np.testing.assert_array_equal(
        slow.reorder(jnp.arange(6)), nqz.lattice.Grid((2, 3)).snake_order()
    )
    nqt.assert_autoregressive(slow, key=jax.random.key(0), n_configs=4, atol=0.0)

    def network(h):  # the residual stream of every position -> the raw outputs
        for block in slow.blocks:
            h = block(h)
        return slow.output(h)

    h = jax.random.normal(jax.random.key(1), (6, slow.d_model))
    jac = np.asarray(jax.jit(jax.jacfwd(network))(h))  # (position i, k, position j, d)
    size = np.max(np.abs(jac), axis=(1, 3))
    later = np.triu(np.ones((6, 6), bool), 1)  # j > i
    assert np.all(size[later] == 0)
    assert np.all(size[~later] > 1e-6)  # and every earlier position is read


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_gradients_equal_the_transcription(dtype):
    hilbert = nqz.hilbert.Spin(0.5, 4)
    fast, _ = _random_fast(
        hilbert, layers=1, lattice_shape=(2, 2), positional="2d", param_dtype=dtype
    )
    slow = fast.to_slow()
    x = hilbert.all_states()[::3]

    @eqx.filter_jit
    def grads(model):
        g = eqx.filter_grad(lambda m: jnp.sum(m(x).real))(model)
        ref = eqx.filter_grad(
            lambda m: jnp.sum(jax.vmap(lambda s: _reference_log_psi(m, s))(x).real)
        )(model)
        return g, ref, model(x), jax.vmap(lambda s: _reference_log_psi(model, s))(x)

    g, ref, log_psi, reference = grads(slow)
    # the values too (the complex transcription; the real one is in the parity test)
    assert log_psi.dtype == dtype
    np.testing.assert_allclose(log_psi, reference, rtol=1e-12, atol=1e-12)
    g_leaves, ref_leaves = jax.tree.leaves(g), jax.tree.leaves(ref)
    assert len(g_leaves) == len(ref_leaves) == len(jax.tree.leaves(eqx.filter(slow, eqx.is_array)))
    for a, b in zip(g_leaves, ref_leaves):
        assert a.dtype == dtype and np.all(np.isfinite(np.asarray(a)))
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_sampling_chi2():
    """Exact samples of a constrained space on a 2x3 lattice (snake order, complex
    parameters) follow |psi|^2 (their log-probabilities too), and the test has the power
    to reject |psi|^1."""
    hilbert = nqz.hilbert.Spin(0.5, 6, total_sz=0)
    fast, state = _random_fast(
        hilbert, lattice_shape=(2, 3), positional="2d", param_dtype=jnp.complex128
    )
    samples, _ = nqt.assert_exact_sampling(fast, key=jax.random.key(5), state=state, n_samples=8192)
    log_psi = np.asarray(_log_psi(fast.to_slow(), hilbert.all_states())).real
    wrong = nqt.chi2_test(nqt.histogram(hilbert, samples), np.exp(log_psi))
    assert wrong.pvalue < 1e-8


def test_float32_end_to_end():
    hilbert = nqz.hilbert.Spin(0.5, 4)
    fast, state = _random_fast(hilbert, layers=1, param_dtype=jnp.float32, lattice_shape=(2, 2))
    leaves = jax.tree.leaves(eqx.filter(fast, eqx.is_inexact_array))
    assert {leaf.dtype for leaf in leaves} == {jnp.dtype(jnp.float32)}
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(jnp.float32)}
    states = hilbert.all_states()

    @eqx.filter_jit
    def run(fast, state):
        slow = fast.to_slow()
        grad = eqx.filter_grad(lambda m: jnp.sum(m(states)))(slow)
        samples, log_prob = nqz.sample(
            fast, 64, key=jax.random.key(0), state=state, return_log_prob=True
        )
        return slow(states), slow.conditionals(states), grad, samples, log_prob, slow(samples)

    log_psi, cond, grad, samples, log_prob, log_psi_samples = run(fast, state)
    assert log_psi.dtype == jnp.float32 and cond.dtype == jnp.float32
    assert abs(float(jnp.sum(jnp.exp(2 * log_psi.astype(jnp.float64)))) - 1) < 1e-5
    assert {g.dtype for g in jax.tree.leaves(grad)} == {jnp.dtype(jnp.float32)}
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grad))
    assert samples.shape == (64, 4) and log_prob.dtype == jnp.float32
    np.testing.assert_allclose(log_prob, 2 * log_psi_samples, atol=1e-5)


def test_cache_layout_and_memory():
    _, state = eqx.filter_eval_shape(
        eqx.nn.make_with_state(nqz.models.FastARTransformer),
        nqz.hilbert.Spin(0.5, 100), 2, 16, 2, key=jax.random.key(0),
    )  # fmt: skip
    leaves = jax.tree.leaves(state)
    # per block: keys and values, (heads, head_dim, N)
    assert len(leaves) == 4 and all(leaf.shape == (2, 8, 100) for leaf in leaves)
    assert {leaf.dtype for leaf in leaves} == {jnp.dtype(jnp.float64)}
    # the bytes per sample quoted in docs/transformers.md: 2 L N d * 8
    nbytes = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in leaves)
    assert nbytes == 2 * 2 * 100 * 16 * 8 == 51200


# ------------------------------------------------------------------------------------------
# Shapes and bad input
# ------------------------------------------------------------------------------------------


SPIN4 = nqz.hilbert.Spin(0.5, 4)


def test_shape_checks():
    fast, state = _random_fast(SPIN4)
    slow = fast.to_slow()
    with pytest.raises(TypeError, match=r"parameter 'x'(.|\n)*\{self\.hilbert\.size\}") as info:
        slow(jnp.ones((3, 5), jnp.int8))
    assert "self.hilbert.size=4" in str(info.value)
    with pytest.raises(TypeError, match=r"parameter 'x'"):
        fast.conditional(jnp.ones((5,), jnp.int8), 0, state)
    # a field of the wrong shape swapped in with tree_at is caught at the call
    bad = eqx.tree_at(lambda m: m.blocks[0].attention.qkv_kernel, slow, jnp.ones((4, 3, 2, 3)))
    with pytest.raises(
        TypeError, match=r"CausalSelfAttention\.qkv_kernel is float64\[4, 3, 2, 3\]"
    ):
        bad(jnp.ones((2, 4), jnp.int8))
    bad = eqx.tree_at(lambda m: m.embedding, slow, jnp.ones((3, 4)))
    with pytest.raises(TypeError, match=r"ARTransformer\.embedding is float64\[3, 4\]"):
        bad(jnp.ones((2, 4), jnp.int8))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(d_model=10, heads=4),
            ValueError,
            r"d_model must be a multiple of heads.*d_model=10, heads=4",
        ),
        (dict(d_model=0), ValueError, r"d_model must be a positive integer"),
        (dict(heads=0), ValueError, r"heads must be a positive integer"),
        (dict(layers=0), ValueError, r"layers must be a positive integer"),
        (dict(mlp_ratio=0), ValueError, r"mlp_ratio must be a positive integer"),
        (dict(lattice_shape=(2, 3)), ValueError, r"lattice_shape=\(2, 3\) has 6 sites.*N=4"),
        (dict(order="spiral"), ValueError, r"order must be one of .*order='spiral'"),
        (dict(positional="sinusoidal"), ValueError, r"positional must be one of"),
        (dict(param_dtype=jnp.int32), ValueError, r"param_dtype must be a floating"),
        (dict(machine_pow=0), ValueError, r"machine_pow must be a finite positive"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match):
    args = dict(layers=1, d_model=8, heads=2) | kwargs
    with pytest.raises(error, match=match):
        nqz.models.ARTransformer(SPIN4, key=jax.random.key(0), **args)


def test_bad_hilbert_and_attention_heads():
    with pytest.raises(TypeError, match=r"discrete"):
        nqz.models.ARTransformer(nqz.hilbert.Particles(2, (1.0,)), 1, 8, 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"d_model must be a multiple of heads.*d_model=6"):
        nqz.nn.CausalSelfAttention(6, 4, key=jax.random.key(0))


def test_bad_cache_state():
    fast, state = _random_fast(SPIN4)
    x = jnp.ones((4,), jnp.int8)
    conditional = eqx.filter_jit(lambda m, x, i, s: m.conditional(x, i, s))  # i static
    # a state from another model: no key-value cache for this one
    _, other = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
        SPIN4, layers=2, features=4, kernel_size=3, key=jax.random.key(0)
    )
    with pytest.raises(
        ValueError, match=r"no key-value cache for the layer FastCausalSelfAttention"
    ):
        conditional(fast, x, 0, other)
    # another Transformer's state: other widths
    _, narrow = eqx.nn.make_with_state(nqz.models.FastARTransformer)(
        SPIN4, 2, 2, 2, key=jax.random.key(0)
    )
    with pytest.raises(ValueError, match=r"holds the key-value cache \[float64\[2, 1, 4\]"):
        conditional(fast, x, 0, narrow)
    # this model's structure, other shapes (e.g. a state of another N)
    wrong = jax.tree.map(lambda leaf: leaf[..., :-1], state)
    with pytest.raises(
        ValueError,
        match=r"holds the key-value cache \[float64\[2, 2, 3\], float64\[2, 2, 3\]\].*"
        r"expects \(keys, values\), each float64\[2, 2, 4\]",
    ):
        conditional(fast, x, 0, wrong)
    with pytest.raises(TypeError, match=r"needs its cache state"):
        conditional(fast, x, 0, None)
    with pytest.raises(ValueError, match=r"index must be a site index in 0..3"):
        conditional(fast, x, 4, state)
    # the state passed in stays usable (a value), and a fresh pass starts from it
    p0, _ = conditional(fast, x, 0, state)
    p1, _ = conditional(fast, x, 0, state)
    np.testing.assert_array_equal(p0, p1)

"""The autoregressive Transformer: fast == slow at every step, normalisation (constrained
spaces too), the causal property, a transcription of the papers' equations, gradients,
sampling (chi-squared), orderings, float32, shapes and bad input."""

import math

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import randomize


SPACES = {
    "spin6": nqz.hilbert.Spin(0.5, 6),
    "fock6": nqz.hilbert.Fock(2, 6),
    "spin6_sz0": nqz.hilbert.Spin(0.5, 6, total_sz=0),
    "fock6_n4": nqz.hilbert.Fock(2, 6, n_particles=4),
}

# space, lattice_shape, order, positional, dtype, machine_pow
CASES = [
    ("spin6", None, "snake", "learned", jnp.float64, 2),
    ("fock6_n4", None, "snake", "learned", jnp.complex128, 1),
    ("spin6", (2, 3), "snake", "2d", jnp.float64, 2),
    ("spin6", (3, 2), "row-major", "learned", jnp.complex128, 2),
    ("spin6_sz0", (2, 3), "snake", "2d", jnp.float64, 2),
]


def _case_id(case):
    space, shape, order, positional, dtype, mp = case
    lattice = "chain" if shape is None else "x".join(map(str, shape)) + "-" + order
    return f"{space}-{lattice}-{positional}-{jnp.dtype(dtype).name}-mp{mp}"


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
def _fast_conditionals(model, state, x):
    """Probabilities of every site from `conditional` steps along the model's order (a
    lax.scan, vmapped over x), in site order."""
    order = model.reorder(jnp.arange(model.hilbert.size))

    def one(config):
        def step(state, index):
            p, state = model.conditional(config, index, state)
            return state, p

        return model.inverse_reorder(jax.lax.scan(step, state, order)[1], axis=0)

    return jax.vmap(one)(x)


@eqx.filter_jit
def _slow(model, x):
    return model(x), model.conditionals(x), model.conditionals_log_psi(x)


@eqx.filter_jit
def _evaluate(fast, state, x, reference):
    """Everything the parity test computes, in one compilation: the slow model's log psi,
    conditionals and network conditionals, the fast steps' conditionals and (if
    `reference`) the transcription's log psi."""
    slow = fast.to_slow()
    ref = jax.vmap(lambda s: _reference_log_psi(slow, s))(x) if reference else None
    return _slow(slow, x), _fast_conditionals(fast, state, x), ref


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


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_fast_slow_normalisation_reference(case):
    space, shape, order, positional, dtype, mp = case
    hilbert = SPACES[space]
    fast, state = _random_fast(
        hilbert, lattice_shape=shape, order=order, positional=positional, param_dtype=dtype,
        machine_pow=mp,
    )  # fmt: skip
    slow = fast.to_slow()
    states = hilbert.all_states()
    (log_psi, cond, log_cond), fast_cond, reference = _evaluate(
        fast, state, states, not hilbert.constrained
    )
    assert log_psi.dtype == dtype and cond.dtype == jnp.finfo(dtype).dtype

    # fast steps along the model's order == slow conditionals, at every step
    np.testing.assert_allclose(fast_cond, cond, rtol=0, atol=1e-12)

    # sum_x |psi(x)|^p = 1 over the (constrained) space, every conditional normalised
    assert abs(float(jnp.sum(jnp.exp(mp * log_psi.real))) - 1) < 1e-12
    np.testing.assert_allclose(cond.sum(-1), 1.0, rtol=0, atol=1e-12)
    if hilbert.constrained:  # outside the space: zero amplitude
        full = nqz.hilbert.Spin(0.5, 6) if space.startswith("spin") else nqz.hilbert.Fock(2, 6)
        everything = full.all_states()
        members = set(map(tuple, np.asarray(states).tolist()))
        inside = np.array([tuple(s) in members for s in np.asarray(everything).tolist()])
        assert np.all(np.isneginf(np.asarray(_slow(slow, everything)[0].real)[~inside]))
    else:
        # the network's own conditionals are the constrained ones
        np.testing.assert_allclose(jnp.exp(mp * log_cond.real), cond, rtol=0, atol=1e-14)
        # the paper's equations, transcribed in the test
        np.testing.assert_allclose(log_psi, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_gradients_equal_the_transcription(dtype):
    hilbert = SPACES["spin6"]
    fast, _ = _random_fast(
        hilbert, layers=1, lattice_shape=(2, 3), positional="2d", param_dtype=dtype
    )
    slow = fast.to_slow()
    x = hilbert.all_states()[::5]

    @eqx.filter_jit
    def grads(model):
        g = eqx.filter_grad(lambda m: jnp.sum(m(x).real))(model)
        ref = eqx.filter_grad(
            lambda m: jnp.sum(jax.vmap(lambda s: _reference_log_psi(m, s))(x).real)
        )(model)
        return g, ref

    g, ref = grads(slow)
    g_leaves, ref_leaves = jax.tree.leaves(g), jax.tree.leaves(ref)
    assert len(g_leaves) == len(ref_leaves) == len(jax.tree.leaves(eqx.filter(slow, eqx.is_array)))
    for a, b in zip(g_leaves, ref_leaves):
        assert a.dtype == dtype and np.all(np.isfinite(np.asarray(a)))
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape, order", [(None, "snake"), ((2, 3), "snake")])
def test_causal_flip_test_and_order(shape, order):
    """Changing the site generated at position k changes no conditional of positions <= k
    (site i never depends on sites generated at or after it), and does change the next one."""
    hilbert = nqz.hilbert.Spin(1, 6)  # three local values
    fast, _ = _random_fast(hilbert, lattice_shape=shape, order=order, positional="2d")
    slow = fast.to_slow()
    sites = np.asarray(slow.reorder(jnp.arange(6)))
    if shape is not None and order == "snake":
        np.testing.assert_array_equal(sites, nqz.lattice.Grid(shape).snake_order())
    else:
        np.testing.assert_array_equal(sites, np.arange(6))
    x = np.asarray(hilbert.random_state(jax.random.key(0), 4))
    flipped = []
    for k, site in enumerate(sites):
        for shift in (1, 2):
            y = x.copy()
            values = np.asarray(hilbert.local_states)
            pos = np.argmax(y[:, site, None] == values[None, :], axis=1)
            y[:, site] = values[(pos + shift) % 3]
            flipped.append((k, y))
    cond = np.asarray(_slow(slow, np.concatenate([x] + [y for _, y in flipped]))[1])
    base, rest = cond[:4], cond[4:].reshape(len(flipped), 4, 6, 3)
    for (k, _), c in zip(flipped, rest):
        before = sites[: k + 1]  # positions <= k: unchanged, exactly
        np.testing.assert_array_equal(c[:, before], base[:, before])
        if k + 1 < 6:  # the next position reads the flipped site
            assert np.max(np.abs(c[:, sites[k + 1]] - base[:, sites[k + 1]])) > 1e-6


# ------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------


def _chi2_pvalue(states, samples, probs) -> float:
    """Pearson's chi-squared p-value of `samples` against `probs` over `states`, bins of
    expected count < 5 merged."""
    codes = {tuple(s): i for i, s in enumerate(np.asarray(states).tolist())}
    rows = [codes[tuple(s)] for s in np.asarray(samples).tolist()]  # KeyError: not a state
    counts = np.bincount(rows, minlength=len(codes))
    expected = len(samples) * np.asarray(probs)
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    obs, exp = obs[exp > 0], exp[exp > 0]
    stat = np.sum((obs - exp) ** 2 / exp)
    return float(jax.scipy.special.gammaincc((obs.size - 1) / 2, stat / 2))


N_SAMPLES = 8192


@pytest.mark.parametrize(
    "space, kwargs, twin",
    [
        ("spin6", dict(lattice_shape=(2, 3), positional="2d", machine_pow=2), True),
        ("spin6_sz0", dict(param_dtype=jnp.complex128, machine_pow=2), False),
    ],
)
def test_sampling_chi2(space, kwargs, twin):
    hilbert = SPACES[space]
    fast, state = _random_fast(hilbert, **kwargs)
    samples, log_prob = nqz.sample(
        fast, N_SAMPLES, key=jax.random.key(5), state=state, return_log_prob=True
    )
    assert samples.shape == (N_SAMPLES, 6) and samples.dtype == hilbert.dtype
    states = hilbert.all_states()
    log_psi = np.asarray(_log_psi(fast.to_slow(), jnp.concatenate([states, samples]))).real
    probs = np.exp(fast.machine_pow * log_psi[: len(states)])
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-12)
    assert _chi2_pvalue(states, samples, probs) > 1e-4
    np.testing.assert_allclose(log_prob, fast.machine_pow * log_psi[len(states) :], atol=1e-12)
    # and the test has power: |psi|^1 instead of |psi|^2 is rejected
    wrong = np.exp(log_psi[: len(states)])
    assert _chi2_pvalue(states, samples, wrong / wrong.sum()) < 1e-4
    if twin:  # the slow twin (recomputing every step) draws the same samples
        slow_samples = nqz.sample(fast.to_slow(), N_SAMPLES, key=jax.random.key(5))
        np.testing.assert_array_equal(slow_samples, samples)


@eqx.filter_jit
def _log_psi(model, x):
    return model(x)


def test_float32_end_to_end():
    hilbert = SPACES["spin6"]
    fast, state = _random_fast(hilbert, param_dtype=jnp.float32, lattice_shape=(2, 3))
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
        return slow(states), slow.conditionals(states), grad, samples, log_prob

    log_psi, cond, grad, samples, log_prob = run(fast, state)
    assert log_psi.dtype == jnp.float32 and cond.dtype == jnp.float32
    assert abs(float(jnp.sum(jnp.exp(2 * log_psi.astype(jnp.float64)))) - 1) < 1e-5
    assert {g.dtype for g in jax.tree.leaves(grad)} == {jnp.dtype(jnp.float32)}
    assert samples.shape == (64, 6) and log_prob.dtype == jnp.float32
    np.testing.assert_allclose(log_prob, 2 * _log_psi(fast, samples), atol=1e-5)


def test_cache_layout_and_memory():
    _, state = eqx.filter_eval_shape(
        eqx.nn.make_with_state(nqz.models.FastARTransformer),
        nqz.hilbert.Spin(0.5, 100), 2, 16, 2, key=jax.random.key(0),
    )  # fmt: skip
    leaves = jax.tree.leaves(state)
    # per block: keys and values, heads first
    assert len(leaves) == 4 and all(leaf.shape == (2, 100, 8) for leaf in leaves)
    # the bytes per sample quoted in docs/transformers.md: 2 L N d * 8
    nbytes = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in leaves)
    assert nbytes == 2 * 2 * 100 * 16 * 8 == 51200


# ------------------------------------------------------------------------------------------
# Shapes and bad input
# ------------------------------------------------------------------------------------------


def test_shape_checks():
    fast, state = _random_fast(SPACES["spin6"])
    slow = fast.to_slow()
    with pytest.raises(TypeError, match=r"parameter 'x'(.|\n)*\{self\.hilbert\.size\}") as info:
        slow(jnp.ones((3, 5), jnp.int8))
    assert "self.hilbert.size=6" in str(info.value)
    with pytest.raises(TypeError, match=r"parameter 'x'"):
        fast.conditional(jnp.ones((5,), jnp.int8), 0, state)
    # a field of the wrong shape swapped in with tree_at is caught at the call
    bad = eqx.tree_at(lambda m: m.blocks[0].attention.qkv_kernel, slow, jnp.ones((4, 3, 2, 3)))
    with pytest.raises(
        TypeError, match=r"CausalSelfAttention\.qkv_kernel is float64\[4, 3, 2, 3\]"
    ):
        bad(jnp.ones((2, 6), jnp.int8))
    bad = eqx.tree_at(lambda m: m.embedding, slow, jnp.ones((3, 4)))
    with pytest.raises(TypeError, match=r"ARTransformer\.embedding is float64\[3, 4\]"):
        bad(jnp.ones((2, 6), jnp.int8))


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
        (dict(lattice_shape=(2, 2)), ValueError, r"lattice_shape=\(2, 2\) has 4 sites.*N=6"),
        (dict(order="spiral"), ValueError, r"order must be one of .*order='spiral'"),
        (dict(positional="sinusoidal"), ValueError, r"positional must be one of"),
        (dict(param_dtype=jnp.int32), ValueError, r"param_dtype must be a floating"),
        (dict(machine_pow=0), ValueError, r"machine_pow must be a finite positive"),
    ],
)
def test_bad_hyperparameters(kwargs, error, match):
    args = dict(layers=1, d_model=8, heads=2) | kwargs
    with pytest.raises(error, match=match):
        nqz.models.ARTransformer(SPACES["spin6"], key=jax.random.key(0), **args)
    with pytest.raises(TypeError, match=r"discrete"):
        nqz.models.ARTransformer(nqz.hilbert.Particles(2, (1.0,)), 1, 8, 2, key=jax.random.key(0))


def test_bad_cache_state():
    hilbert = SPACES["spin6"]
    fast, state = _random_fast(hilbert)
    x = jnp.ones((6,), jnp.int8)
    # a state from another model: no key-value cache for this one
    _, other = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
        hilbert, layers=2, features=4, kernel_size=3, key=jax.random.key(0)
    )
    with pytest.raises(
        ValueError, match=r"no key-value cache for the layer FastCausalSelfAttention"
    ):
        fast.conditional(x, 0, other)
    # another Transformer's state: other widths
    _, narrow = eqx.nn.make_with_state(nqz.models.FastARTransformer)(
        hilbert, 2, 2, 2, key=jax.random.key(0)
    )
    with pytest.raises(ValueError, match=r"holds the key-value cache \[float64\[2, 6, 1\]"):
        fast.conditional(x, 0, narrow)
    # this model's structure, other shapes (e.g. a state of another N or width)
    wrong = jax.tree.map(lambda leaf: leaf[:, :-1], state)
    with pytest.raises(
        ValueError,
        match=r"holds the key-value cache \[float64\[2, 5, 2\], float64\[2, 5, 2\]\].*"
        r"expects \(keys, values\), each float64\[2, 6, 2\]",
    ):
        fast.conditional(x, 0, wrong)
    with pytest.raises(TypeError, match=r"needs its cache state"):
        fast.conditional(x, 0, None)
    with pytest.raises(ValueError, match=r"index must be a site index in 0..5"):
        fast.conditional(x, 6, state)
    # the state passed in stays usable (a value), and a fresh pass starts from it
    p0, _ = fast.conditional(x, 0, state)
    p1, _ = fast.conditional(x, 0, state)
    np.testing.assert_array_equal(p0, p1)

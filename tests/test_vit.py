"""The Vision Transformer wave function: the papers' equations transcribed independently,
exact invariance under translations by whole patches, gradients, shapes, dtypes, bad input
and a short exact-expectation optimisation."""

import math

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt

from .helpers import max_rel_err, randomize


# (extent, patch_size, d_model, heads, layers, mlp_ratio, output_norm): chains and
# square/rectangular lattices, one and several heads, one and two blocks, both heads
CASES = {
    "chain12-b2": ((12,), 2, 8, 2, 2, 2, False),
    "chain9-b3-norm": ((9,), 3, 6, 3, 1, 1, True),
    "square4-b2": ((4, 4), 2, 8, 4, 2, 2, False),
    "rect6x4-b2-norm": ((6, 4), 2, 6, 2, 1, 3, True),
}


@eqx.filter_jit
def _call(model, x):
    return model(x)


def _model(case, key, dtype=jnp.float64, scale=0.4):
    """A ViT of `case` with random parameters (not the initial ones)."""
    extent, b, d, h, layers, mlp, norm = CASES[case]
    hi = nqz.hilbert.Spin(0.5, math.prod(extent))
    k1, k2 = jax.random.split(key)
    model = nqz.models.ViT(
        hi,
        lattice=nqz.lattice.Grid(extent),
        patch_size=b,
        d_model=d,
        heads=h,
        layers=layers,
        mlp_ratio=mlp,
        output_norm=norm,
        param_dtype=dtype,
        key=k1,
    )
    params, static = eqx.partition(model, eqx.is_inexact_array)
    return eqx.combine(randomize(params, k2, scale=scale), static)


# ------------------------------------------------------------------------------------------
# The papers' equations, written out with loops over patches, heads and units
# ------------------------------------------------------------------------------------------


def _ln(v, scale, bias, eps=1e-5):
    mu = sum(v) / len(v)
    var = sum((t - mu) ** 2 for t in v) / len(v)
    return (v - mu) / np.sqrt(var + eps) * scale + bias


def _gelu(t):
    return 0.5 * t * (1 + np.tanh(math.sqrt(2 / math.pi) * (t + 0.044715 * t**3)))


def _reference_log_psi(model, sigma):
    """log psi of one configuration, from the equations of the docstring (Viteritti, Rende,
    Becca 2023; Rende et al. 2024), in NumPy with explicit loops."""
    P = jax.tree.map(np.asarray, model)  # every parameter as a NumPy array
    extent, b = model.extent, model.patch_size
    sigma = np.asarray(sigma, dtype=np.float64)
    # patches: b consecutive sites of a chain, b x b squares of a lattice (row-major)
    if len(extent) == 1:
        coords = [(p,) for p in range(extent[0] // b)]
        patches = [sigma[p * b : (p + 1) * b] for (p,) in coords]
    else:
        grid = sigma.reshape(extent)
        coords = [(p, q) for p in range(extent[0] // b) for q in range(extent[1] // b)]
        patches = [grid[p * b : (p + 1) * b, q * b : (q + 1) * b].reshape(-1) for p, q in coords]
    n, d, heads = len(patches), model.d_model, model.heads
    dh = d // heads
    grid_shape = model.patch_grid
    x = [p @ P.embedding.kernel + P.embedding.bias for p in patches]
    for block in P.blocks:
        att = block.attention
        alpha = att.alpha.reshape(heads, *grid_shape)
        normed = [_ln(xi, block.norm1.scale, block.norm1.bias) for xi in x]
        values = [v @ att.value.kernel + att.value.bias for v in normed]
        mixed = []
        for i in range(n):
            head_outputs = []
            for h in range(heads):
                acc = np.zeros(dh)
                for j in range(n):
                    shift = tuple(
                        (ci - cj) % g for ci, cj, g in zip(coords[i], coords[j], grid_shape)
                    )
                    acc = acc + alpha[(h, *shift)] * values[j][h * dh : (h + 1) * dh]
                head_outputs.append(acc)
            mixed.append(np.concatenate(head_outputs) @ att.output.kernel + att.output.bias)
        x = [x[i] + mixed[i] for i in range(n)]
        out = []
        for xi in x:
            t = _ln(xi, block.norm2.scale, block.norm2.bias)
            t = _gelu(t @ block.hidden.kernel + block.hidden.bias) @ block.out.kernel
            out.append(xi + t + block.out.bias)
        x = out
    z = sum(x)
    if P.output_norms is None:  # the papers' complex layer
        w = P.output_kernel_real + 1j * P.output_kernel_imag
        c = P.output_bias_real + 1j * P.output_bias_imag
        theta = [z @ w[:, k] + c[k] for k in range(model.output_features)]
    else:  # LN(z), then LN of the real and of the imaginary pre-activations
        nz, na, nb = P.output_norms
        z = _ln(z, nz.scale, nz.bias)
        re = _ln(z @ P.output_kernel_real + P.output_bias_real, na.scale, na.bias)
        im = _ln(z @ P.output_kernel_imag + P.output_bias_imag, nb.scale, nb.bias)
        theta = [re[k] + 1j * im[k] for k in range(model.output_features)]
    return complex(sum(np.log(np.cosh(t)) for t in theta))


def _same_mod_2pi_i(a, b, tol):
    """log psi agree: real parts, and imaginary parts modulo 2 pi (the branch of log)."""
    d_re = abs(a.real - b.real)
    d_im = abs((a.imag - b.imag + np.pi) % (2 * np.pi) - np.pi)
    return max(d_re, d_im) <= tol * max(abs(b), 1.0)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_transcription_of_the_papers(case, getkey):
    model = _model(case, getkey())
    x = model.hilbert.random_state(getkey(), (3,))
    log_psi = np.asarray(_call(model, x))
    for s in range(3):
        expected = _reference_log_psi(model, x[s])
        assert _same_mod_2pi_i(log_psi[s], expected, 1e-12), (log_psi[s], expected)


# ------------------------------------------------------------------------------------------
# Symmetry
# ------------------------------------------------------------------------------------------


def _translate(x, extent, shift):
    lattice = x.reshape(*x.shape[:-1], *extent)
    axes = tuple(range(x.ndim - 1, x.ndim - 1 + len(extent)))
    return jnp.roll(lattice, shift, axis=axes).reshape(x.shape)


@pytest.mark.parametrize("case", list(CASES))
def test_invariant_under_translations_by_whole_patches(case, getkey):
    model = _model(case, getkey())
    extent, b = model.extent, model.patch_size
    x = model.hilbert.random_state(getkey(), (16,))
    sites = jnp.arange(model.hilbert.size)
    shifts = [(b,), (2 * b,), (-b,)] if len(extent) == 1 else [(b, 0), (0, b), (b, -b)]
    perms = np.stack([_translate(sites, extent, shift) for shift in shifts])
    nqt.assert_symmetric(model, perms, x=x, rtol=1e-13)  # psi(T x) = psi(x), T by patches
    # and not, generically, under translations by a fraction of a patch: the test can fail
    one = (1,) if len(extent) == 1 else (0, 1)
    with pytest.raises(AssertionError, match="is not symmetric"):
        nqt.assert_symmetric(model, _translate(sites, extent, one), x=x, rtol=1e-6)


def test_attention_is_equivariant(getkey):
    """One FactoredAttention layer commutes with translations of the patch lattice."""
    layer = nqz.nn.FactoredAttention((3, 2), 8, 2, key=getkey())
    params, static = eqx.partition(layer, eqx.is_inexact_array)
    layer = eqx.combine(randomize(params, getkey()), static)
    x = jax.random.normal(getkey(), (5, 6, 8))

    def shift(t):
        return jnp.roll(t.reshape(5, 3, 2, 8), (1, 1), axis=(1, 2)).reshape(5, 6, 8)

    assert max_rel_err(layer(shift(x)), shift(layer(x))) < 1e-13
    a = layer.weights()
    assert a.shape == (2, 6, 6)
    # A[h, i, j] depends only on r_i - r_j: a circulant (block-circulant in 2D) matrix
    assert jnp.array_equal(a[:, 0, 0], a[:, 5, 5]) and jnp.array_equal(a[:, 1, 0], a[:, 0, 1])


# ------------------------------------------------------------------------------------------
# Gradients, shapes, dtypes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["chain9-b3-norm", "square4-b2"])
def test_gradient_matches_finite_differences(case, getkey):
    model = _model(case, getkey())
    x = model.hilbert.random_state(getkey(), (4,))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)

    @jax.jit
    def f(theta):
        m = eqx.combine(unravel(theta), static)
        out = m(x)
        return jnp.sum(out.real) + 0.3 * jnp.sum(jnp.sin(out.imag))

    grad = jax.jit(jax.grad(f))(flat)
    assert jnp.all(jnp.isfinite(grad)) and jnp.any(grad != 0)
    for _ in range(3):
        v = jax.random.normal(getkey(), flat.shape, flat.dtype)
        v = v / jnp.linalg.norm(v)
        eps = 1e-5
        fd = (f(flat + eps * v) - f(flat - eps * v)) / (2 * eps)
        assert abs(fd - grad @ v) <= 1e-7 * max(1.0, abs(fd)), (fd, grad @ v)
    # every parameter gets a gradient
    tree = unravel(grad)
    for leaf in jax.tree.leaves(tree):
        assert jnp.any(leaf != 0)


def test_shapes_of_fields_and_calls(getkey):
    model = _model("square4-b2", getkey())  # 4x4, b=2, d=8, heads=4, 2 layers, mlp 2
    assert model.patch_grid == (2, 2) and model.n_patches == 4 and model.patch_volume == 4
    assert model.layers == 2 and model.output_features == 8
    assert model.embedding.kernel.shape == (4, 8) and model.embedding.bias.shape == (8,)
    for block in model.blocks:
        assert block.attention.alpha.shape == (4, 4)
        assert block.attention.value.kernel.shape == (8, 8)
        assert block.attention.output.kernel.shape == (8, 8)
        assert block.norm1.scale.shape == block.norm2.bias.shape == (8,)
        assert block.hidden.kernel.shape == (8, 16) and block.out.kernel.shape == (16, 8)
    assert model.output_kernel_real.shape == model.output_kernel_imag.shape == (8, 8)
    assert model.output_bias_real.shape == model.output_bias_imag.shape == (8,)
    assert model.output_norms is None
    normed = _model("rect6x4-b2-norm", getkey())
    assert [n.scale.shape for n in normed.output_norms] == [(6,), (6,), (6,)]
    x = model.hilbert.random_state(getkey(), (2, 3))
    assert model(x).shape == (2, 3)  # eager, checked
    assert _call(model, x[0, 0]).shape == ()
    assert model.patches(x).shape == (2, 3, 4, 4)
    assert eqx.filter_jit(lambda m, t: m.hidden(t))(model, x).shape == (2, 3, 8)
    # a patch is a 2 x 2 square of the lattice, row-major
    config = jnp.arange(16.0) % 2 * 2 - 1
    p = np.asarray(model.patches(config))
    np.testing.assert_array_equal(p[1], np.asarray(config)[[2, 3, 6, 7]])
    np.testing.assert_array_equal(p[2], np.asarray(config)[[8, 9, 12, 13]])
    # vmap and jit give the same numbers
    flat = x.reshape(6, 16)
    np.testing.assert_allclose(eqx.filter_vmap(_call, in_axes=(None, 0))(model, flat),
                               model(x).reshape(6), rtol=1e-13)


def test_wrong_input_size_names_the_axis(getkey):
    model = _model("square4-b2", getkey())
    with pytest.raises(jaxtyping.TypeCheckError, match=r"self\.hilbert\.size") as info:
        model(jnp.ones((3, 36)))  # a 6x6 configuration for a 4x4 model
    assert "self.hilbert.size=16" in str(info.value)


def test_wrong_field_shape_via_tree_at(getkey):
    model = _model("square4-b2", getkey())
    bad = eqx.tree_at(lambda m: m.blocks[0].attention.alpha, model, jnp.zeros((4, 5)))
    with pytest.raises(TypeError, match=r"FactoredAttention\.alpha is float64\[4, 5\]"):
        bad(jnp.ones(16))
    bad = eqx.tree_at(lambda m: m.output_bias_imag, model, jnp.zeros(3))
    with pytest.raises(TypeError, match=r"ViT\.output_bias_imag is float64\[3\]"):
        eqx.filter_jit(lambda m, t: m(t))(bad, jnp.ones(16))


@pytest.mark.parametrize(
    "dtype,cdtype", [(jnp.float32, jnp.complex64), (jnp.float64, jnp.complex128)]
)
def test_dtypes_follow_param_dtype(dtype, cdtype, getkey):
    key = getkey()
    model = _model("square4-b2", key, dtype=dtype)
    for leaf in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)):
        assert leaf.dtype == dtype
    x = model.hilbert.random_state(getkey(), (4,)).astype(jnp.int8)
    out = _call(model, x)
    assert out.dtype == cdtype
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: m(x).real.sum()))(model)
    for leaf in jax.tree.leaves(grads):
        assert leaf.dtype == dtype and jnp.all(jnp.isfinite(leaf))
    if dtype == jnp.float32:  # close to the same model in float64
        model64 = jax.tree.map(lambda t: t.astype(jnp.float64) if eqx.is_inexact_array(t) else t,
                               model)
        assert max_rel_err(out, _call(model64, x)) < 1e-4


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------


def test_bad_hyperparameters(getkey):
    hi = nqz.hilbert.Spin(0.5, 16)
    sq = nqz.lattice.Square(4)
    with pytest.raises(ValueError, match=r"patch_size=3 must divide .*extent=\(4, 4\)"):
        nqz.models.ViT(hi, lattice=sq, patch_size=3, key=getkey())
    with pytest.raises(ValueError, match=r"patch_size=4 must divide .*extent=\(6,\)"):
        nqz.models.ViT(nqz.hilbert.Spin(0.5, 6), patch_size=4, key=getkey())
    with pytest.raises(ValueError, match=r"divisible by heads.*d_model=10 and heads=4"):
        nqz.models.ViT(hi, lattice=sq, d_model=10, heads=4, key=getkey())
    with pytest.raises(ValueError, match=r"lattice=.*36 sites .*N=16"):
        nqz.models.ViT(hi, lattice=nqz.lattice.Square(6), key=getkey())
    with pytest.raises(ValueError, match=r"lattice must be .* 1 or 2 axes"):
        nqz.models.ViT(nqz.hilbert.Spin(0.5, 8), lattice=nqz.lattice.Hypercube(2, 3), key=getkey())
    with pytest.raises(ValueError, match=r"param_dtype must be a real floating dtype.*complex128"):
        nqz.models.ViT(hi, lattice=sq, param_dtype=jnp.complex128, key=getkey())
    for name in ("layers", "d_model", "heads", "mlp_ratio", "patch_size", "output_features"):
        with pytest.raises(ValueError, match=rf"{name} must be a positive integer"):
            nqz.models.ViT(hi, lattice=sq, **{name: 0}, key=getkey())
    with pytest.raises(TypeError, match="discrete nqzoo Hilbert space"):
        nqz.models.ViT(nqz.hilbert.Particles(N=2, L=(1.0,), pbc=True), key=getkey())
    with pytest.raises(TypeError, match=r"output_norm"):  # the signature check
        nqz.models.ViT(hi, lattice=sq, output_norm=1, key=getkey())
    with pytest.raises(ValueError, match=r"d_model=6 and heads=4"):
        nqz.nn.FactoredAttention(2, 6, 4, key=getkey())


# ------------------------------------------------------------------------------------------
# A short optimisation: exact expectations (all states), stochastic reconfiguration
# ------------------------------------------------------------------------------------------


def test_short_exact_optimisation_heisenberg_chain(getkey):
    """Heisenberg ring of 8 sites (Pauli matrices), sum over the 70 states of zero
    magnetisation, no sign rule (the ViT's phase learns it): 40 SR steps reach 2e-3 (they
    reach 4e-4; 50 steps 1e-4)."""
    lattice = nqz.lattice.Chain(8)
    hi = nqz.hilbert.Spin(0.5, 8, total_sz=0)
    op = nqz.operators.Heisenberg(hi, lattice, J=1.0)
    exact = nqz.exact.ground_state(op).energy
    model = nqz.models.ViT(hi, lattice=lattice, patch_size=2, d_model=8, heads=2, layers=1,
                           output_norm=True, key=jax.random.key(1))
    states = hi.all_states()

    @eqx.filter_jit
    def step(model):
        log_psi = model(states)
        p = jnp.exp(2 * (log_psi.real - log_psi.real.max()))
        p = p / p.sum()
        e_loc = nqz.operators.local_energy(model, op, states)
        energy, delta = nqz.vmc.natural_gradient(model, states, e_loc, 1e-3, weights=p)
        return eqx.apply_updates(model, jax.tree.map(lambda g: -0.02 * g, delta)), energy.real

    for _ in range(40):
        model, energy = step(model)
    assert abs(energy - exact) / abs(exact) < 2e-3, (energy, exact)

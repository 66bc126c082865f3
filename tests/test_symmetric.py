"""Jastrow, RBMSymm and Symmetrized: NetKet parity on random parameters (values and
gradients), round trips, exact invariance and covariance under every group element, -inf
images, output dtypes, float32, shapes, bad input.

Random numbers come from NumPy and models are built with zero initialisers where the
initialiser is not under test, so that the file compiles little."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from netket.utils import HashableArray

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.interop.netket import from_netket, to_netket
from nqzoo.symmetry import PermutationGroup

from .helpers import max_rel_err, netket_promotion


CHAIN = nk.graph.Chain(6)
SQUARE = nk.graph.Square(3)
HI6 = nqz.hilbert.Spin(0.5, 6)
HI9 = nqz.hilbert.Spin(0.5, 9)
TRANS6 = np.asarray(CHAIN.translation_group())  # (6, 6)
SPACE6 = np.asarray(CHAIN.space_group())  # (12, 6): translations and the reflection
TRANS9 = np.asarray(SQUARE.translation_group())  # (9, 9)
SPACE9 = np.asarray(SQUARE.space_group())  # (72, 9): translations x C4v
KEY = jax.random.key(0)
ZEROS = nqz.nn.initializers.zeros
RBM_ZEROS = dict(kernel_init=ZEROS, hidden_bias_init=ZEROS, visible_bias_init=ZEROS, key=KEY)

_call = eqx.filter_jit(lambda model, x: model(x))
RNG = np.random.default_rng(1234)


def _spins(shape, n):
    """Random spin-1/2 configurations (NumPy: nothing to compile)."""
    return RNG.choice(np.array([-1, 1], np.int8), size=(*np.atleast_1d(shape), n))


def random_params(model, scale=0.4):
    """`model` with every inexact array replaced by NumPy normal numbers of its dtype."""

    def draw(leaf):
        if not eqx.is_inexact_array(leaf):
            return leaf
        value = RNG.normal(size=leaf.shape)
        if jnp.iscomplexobj(leaf):
            value = value + 1j * RNG.normal(size=leaf.shape)
        return jnp.asarray(scale * value, leaf.dtype)

    return jax.tree.map(draw, model)


def _nk_call(nk_model, params, x):
    with netket_promotion():
        return jax.jit(lambda p, x: nk_model.apply({"params": p}, x))(params, x)


def _pair(model, nk_model):
    """`model` with random parameters and its NetKet twin's parameters, checked to be equal
    to `nk_model` and to have the tree NetKet's own init gives (by abstract evaluation)."""
    model = random_params(model)
    nk_back, variables = to_netket(model)
    assert nk_back == nk_model
    x = np.ones((2, model.hilbert.size), np.int8)
    with netket_promotion():
        shapes = jax.eval_shape(nk_model.init, KEY, x)["params"]
    spec = lambda a: (a.shape, jnp.dtype(a.dtype))  # noqa: E731
    assert jax.tree.map(spec, shapes) == jax.tree.map(spec, variables["params"])
    # and back: NetKet's parameters give the same nqzoo model
    assert bool(eqx.tree_equal(from_netket(nk_model, variables, hilbert=model.hilbert), model))
    return model, variables["params"]


def _grad_parity(model, nk_model, params, x):
    """Gradients of a real function mixing Re and Im of log psi agree with NetKet's."""

    def part(z):
        return (jnp.real(z) + 0.7 * jnp.imag(z)).sum()

    with netket_promotion():
        g_nk = jax.jit(jax.grad(lambda p: part(nk_model.apply({"params": p}, x))))(params)
    g_nq = eqx.filter_jit(eqx.filter_grad(lambda m: part(m(x))))(model)
    g_nk = from_netket(nk_model, {"params": g_nk}, hilbert=model.hilbert)
    leaves = jax.tree.leaves(g_nq)
    assert leaves
    for a, b in zip(leaves, jax.tree.leaves(g_nk), strict=True):
        assert max_rel_err(a, b) <= 1e-12


# -- Jastrow -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.complex128, jnp.float64])
def test_jastrow_parity(dtype):
    model = nqz.models.Jastrow(HI6, param_dtype=dtype, kernel_init=ZEROS, key=KEY)
    nk_model = nk.models.Jastrow(param_dtype=dtype)
    model, params = _pair(model, nk_model)
    x = _spins((4, 5), 6)
    out = jax.eval_shape(model, x)
    assert out.shape == (4, 5) and out.dtype == dtype
    nqt.assert_netket_parity(model, nk_model, {"params": params}, x=x.reshape(-1, 6), rtol=1e-12)
    if dtype == jnp.complex128:
        _grad_parity(model, nk_model, params, x.reshape(-1, 6))


def test_jastrow_formula_and_defaults():
    model = nqz.models.Jastrow(HI6, key=KEY)
    assert model.kernel.shape == (15,) and model.kernel.dtype == jnp.complex128  # NetKet's
    assert 0.003 < np.std(np.asarray(model.kernel)) < 0.03  # normal(0.01), 15 draws
    w = np.asarray(model.matrix())
    assert np.all(np.triu(w) == 0)  # strictly lower triangular
    rows, cols = np.tril_indices(6, -1)
    np.testing.assert_array_equal(w[rows, cols], model.kernel)
    x = _spins(3, 6).astype(np.float64)
    explicit = [sum(w[i, j] * s[i] * s[j] for i in range(6) for j in range(i)) for s in x]
    assert max_rel_err(model(x), np.array(explicit)) <= 1e-14
    assert model(x[0]).shape == ()


# -- RBMSymm -------------------------------------------------------------------------------

RBM_SYMM_CASES = [
    # id, hilbert, perms, nqzoo/NetKet keyword arguments
    ("trans-real", HI9, TRANS9, dict(alpha=2)),
    ("space-complex", HI6, SPACE6, dict(alpha=4, param_dtype=jnp.complex128)),
    ("nobias", HI6, TRANS6, dict(use_hidden_bias=False, use_visible_bias=False)),
]


@pytest.mark.parametrize("name,hilbert,perms,kwargs", RBM_SYMM_CASES,
                         ids=[c[0] for c in RBM_SYMM_CASES])
def test_rbm_symm_parity(name, hilbert, perms, kwargs):
    model = nqz.models.RBMSymm(hilbert, perms, **kwargs, **RBM_ZEROS)
    nk_model = nk.models.RBMSymm(symmetries=HashableArray(perms), **kwargs)
    model, params = _pair(model, nk_model)
    x = _spins((3, 7), hilbert.size)
    out = jax.eval_shape(model, x)
    assert out.shape == (3, 7) and out.dtype == kwargs.get("param_dtype", jnp.float64)
    nqt.assert_netket_parity(model, nk_model, {"params": params}, x=x.reshape(21, -1),
                             rtol=1e-12)  # NetKet: 2D input only
    if name == "space-complex":
        _grad_parity(model, nk_model, params, x.reshape(-1, hilbert.size))


def test_rbm_symm_netket_group_object_and_truncated_alpha():
    """NetKet's own PermutationGroup as `symmetries` converts; a NetKet alpha whose
    alpha N / |G| NetKet truncates becomes the alpha of the features the kernel has."""
    nk_model = nk.models.RBMSymm(symmetries=SQUARE.space_group(), alpha=12, param_dtype=complex)
    x = np.ones((2, 9), np.int8)
    with netket_promotion():
        params = jax.tree.map(jnp.zeros_like, jax.eval_shape(nk_model.init, KEY, x)["params"])
    params = jax.tree.map(lambda a: jnp.asarray(RNG.normal(size=a.shape) + 1j, a.dtype), params)
    model = from_netket(nk_model, {"params": params}, hilbert=HI9)
    assert model.features == 1 and model.alpha == 8 and model.symmetries.n_elements == 72
    nqt.assert_netket_parity(model, nk_model, {"params": params}, x=_spins(16, 9), rtol=1e-12)


def test_rbm_symm_invariance_and_defaults():
    model = random_params(nqz.models.RBMSymm(HI9, SPACE9, alpha=16, param_dtype=complex,
                                             **RBM_ZEROS), 0.5)
    assert model.kernel.shape == (2, 1, 9) and model.visible_bias.shape == (1,)
    x = _spins(5, 9)
    nqt.assert_symmetric(model, SPACE9, x=x, rtol=1e-13)
    assert np.ptp(np.asarray(_call(model, x).real)) > 0.1  # ... and not a constant function
    # NetKet's initialiser normal(0.1)
    fresh = nqz.models.RBMSymm(nqz.hilbert.Spin(0.5, 100), np.arange(100)[None], alpha=10,
                               key=KEY)
    assert fresh.kernel.shape == (1000, 1, 100) and fresh.kernel.dtype == jnp.float64
    assert abs(np.std(np.asarray(fresh.kernel)) / 0.1 - 1) < 0.05
    # a group object and its array give the same model; features = alpha N / |G|
    same = nqz.models.RBMSymm(HI9, PermutationGroup(TRANS9), alpha=3, **RBM_ZEROS)
    assert same.features == 3
    assert bool(eqx.tree_equal(same, nqz.models.RBMSymm(HI9, TRANS9, alpha=3, **RBM_ZEROS)))


# -- Symmetrized ---------------------------------------------------------------------------


def _one_dim_characters(group):
    """The 1D rows of the group's character table."""
    return [row for row in group.character_table() if np.allclose(np.abs(row), 1)]


def _brute_force(model, group, chi, x):
    """(1/|G|) sum_g chi_g psi(g x), from the exponentials (no log-sum-exp)."""
    psi = np.exp(np.asarray(model(x[..., group.perms]), np.complex128))
    return (psi * chi).mean(axis=-1)


def _scale(model, group, x):
    """The largest amplitude of the unsymmetrised model on the images: the scale of the
    terms of the projection (which can cancel to nearly nothing)."""
    return np.max(np.abs(np.exp(np.asarray(model(x[..., group.perms]), np.complex128))))


def _assert_projection(sym, chi, x):
    """The value is the brute-force projection, to 1e-12 of the scale of its terms."""
    expected = _brute_force(sym.model, sym.symmetries, chi, x)
    error = np.max(np.abs(np.exp(np.asarray(sym(x), np.complex128)) - expected))
    assert error <= 1e-12 * _scale(sym.model, sym.symmetries, x)


def _assert_covariant(sym, chi, x, call=lambda m, x: m(x)):
    """psi(g x) = conj(chi_g) psi(x) for every element g, i.e. T_g psi = chi_g psi with
    (T_g psi)(x) = psi(g^-1 x) (amplitudes, so that configurations where the projection
    vanishes count too). Eager calls by default: the characters are static,
    so a jitted call compiles once per sector."""
    perms = sym.symmetries.perms
    psi = np.exp(np.asarray(call(sym, x), np.complex128))
    images = np.exp(np.asarray(call(sym, x[:, perms]), np.complex128))
    scale = _scale(sym.model, sym.symmetries, x)
    np.testing.assert_allclose(images, np.conj(chi) * psi[:, None], rtol=0, atol=1e-12 * scale)
    assert np.max(np.abs(psi)) > 1e-3 * scale  # not all (nearly) zero


def test_symmetrized_rbm_every_sector():
    """Every 1D irrep of the chain's space group (momenta 0 and pi times parity): the value
    is the brute-force projection and it transforms with the characters."""
    group = PermutationGroup(SPACE6)
    rbm = random_params(nqz.models.RBM(HI6, alpha=2, **RBM_ZEROS), 0.5)
    x = np.asarray(HI6.all_states())  # on 6 sites most configurations vanish in some sectors
    sectors = _one_dim_characters(group)
    assert len(sectors) == 4
    for chi in sectors:
        sym = nqz.models.Symmetrized(rbm, group, chi)
        assert sym(x[:1]).dtype == (jnp.float64 if sym.is_trivial else jnp.complex128)
        _assert_projection(sym, chi, x)
        _assert_covariant(sym, chi, x)


def test_symmetrized_complex_momentum():
    """A complex character: momentum 2 pi / 6 on the chain's translations, the group's own
    characters() and by hand (element g moves the configuration by r_g = -perms[g, 0])."""
    lattice = nqz.lattice.Chain(6)
    group = lattice.translation_group()
    assert np.array_equal(group.perms, TRANS6)
    chi = group.characters(momentum=(2 * np.pi / 6,))
    np.testing.assert_allclose(chi, np.exp(-2j * np.pi * -group.perms[:, 0] / 6), atol=1e-14)
    rbm = random_params(nqz.models.RBM(HI6, alpha=1, **RBM_ZEROS), 0.5)
    sym = nqz.models.Symmetrized(rbm, group, chi)
    x = _spins(4, 6)
    _assert_projection(sym, chi, x)
    _assert_covariant(sym, chi, x)
    with pytest.raises(AssertionError):  # the conjugate sector transforms the other way
        _assert_covariant(nqz.models.Symmetrized(rbm, group, chi.conj()), chi, x)


def test_symmetrized_dtypes_shapes_float32():
    group = PermutationGroup(SPACE6)
    odd = _one_dim_characters(group)[-1]
    x = _spins((2, 3), 6)
    real_rbm = random_params(nqz.models.RBM(HI6, **RBM_ZEROS), 0.5)
    trivial = nqz.models.Symmetrized(real_rbm, group)
    out = _call(trivial, x)
    assert trivial.is_trivial and out.dtype == jnp.float64 and out.shape == (2, 3)  # real
    assert _call(trivial, x[0, 0]).shape == ()
    signed = _call(nqz.models.Symmetrized(real_rbm, group, odd), x)
    assert signed.dtype == jnp.complex128
    assert set(np.round(np.asarray(signed.imag) / np.pi, 12).ravel()) <= {0.0, 1.0}
    # an already invariant model is unchanged by the trivial projection (the 1/|G|)
    symm = random_params(nqz.models.RBMSymm(HI6, group, alpha=2, **RBM_ZEROS), 0.5)
    assert max_rel_err(_call(nqz.models.Symmetrized(symm, group), x), _call(symm, x)) <= 1e-13
    # float32 stays float32 / complex64
    f32 = nqz.models.RBM(HI6, param_dtype=jnp.float32, **RBM_ZEROS)
    assert _call(nqz.models.Symmetrized(f32, group), x).dtype == jnp.float32
    assert _call(nqz.models.Symmetrized(f32, group, odd), x).dtype == jnp.complex64


class ZeroWhereFirstDown(eqx.Module):
    """An RBM times a projector: psi(x) = 0 (log psi = -inf, through jnp.where) when site 0
    is down, as a constrained model's mask is."""

    rbm: nqz.models.RBM

    @property
    def hilbert(self):
        return self.rbm.hilbert

    def __call__(self, x):
        return jnp.where(x[..., 0] > 0, self.rbm(x), -jnp.inf)


def test_symmetrized_minus_inf_images_values_and_gradients():
    group = PermutationGroup(TRANS6)
    rbm = random_params(nqz.models.RBM(HI6, param_dtype=complex, **RBM_ZEROS), 0.5)
    sym = nqz.models.Symmetrized(ZeroWhereFirstDown(rbm), group)
    # some images -inf, all images -inf, some
    x = np.array([[1, -1, -1, 1, -1, 1], [-1, -1, -1, -1, -1, -1], [1, 1, 1, 1, 1, -1]],
                 np.int8)
    out = np.asarray(_call(sym, x))
    assert np.isneginf(out[1].real) and np.all(np.isfinite(out[[0, 2]]))
    images = x[..., group.perms]
    keep = images[..., 0] > 0
    assert 0 < keep[0].sum() < 6  # the first configuration has both kinds of images
    expected = np.where(keep, np.exp(np.asarray(rbm(images))), 0).mean(axis=-1)
    assert max_rel_err(np.exp(out), expected) <= 1e-12

    # gradients: finite (no NaN from the -inf images nor from the all -inf row) and equal to
    # those of the sum over the finite images written out by hand
    def loss(m):
        z = m(x)
        return jnp.sum(jnp.where(jnp.isfinite(z.real), z.real + 0.3 * z.imag, 0.0))

    def reference(rbm):
        psi = jnp.where(keep[[0, 2]], jnp.exp(rbm(images[[0, 2]])), 0).mean(axis=-1)
        z = jnp.log(psi)
        return jnp.sum(z.real + 0.3 * z.imag)

    grad = jax.jit(jax.grad(loss))(sym)
    leaves = jax.tree.leaves(grad)
    assert leaves and all(np.all(np.isfinite(leaf)) for leaf in leaves)
    expected = jax.jit(jax.grad(reference))(rbm)
    for a, b in zip(jax.tree.leaves(grad.model.rbm), jax.tree.leaves(expected), strict=True):
        assert max_rel_err(a, b) <= 1e-12


def test_symmetrized_constrained_autoregressive():
    """An ARNN on the total_sz = 0 space: log psi = -inf outside it. Inside, the images stay
    inside; outside, every image is -inf, the result -inf with zero gradients (no NaN)."""
    hi = nqz.hilbert.Spin(0.5, 6, total_sz=0)
    arnn = random_params(nqz.models.ARNNDense(hi, layers=2, features=4, kernel_init=ZEROS,
                                              key=KEY))
    group = PermutationGroup(SPACE6)
    chi = _one_dim_characters(group)[1]
    sym = nqz.models.Symmetrized(arnn, group, chi)
    inside = np.array([[1, -1, -1, 1, 1, -1], [1, 1, 1, -1, -1, -1], [-1, 1, -1, 1, -1, 1]],
                      np.int8)
    x = np.concatenate([inside, np.array([[1, 1, 1, 1, -1, 1]], np.int8)])
    out = np.asarray(_call(sym, x))
    assert np.all(np.isfinite(out[:3])) and np.isneginf(out[3].real)
    _assert_covariant(sym, chi, x, _call)  # (the last row: zero = chi_g * zero)

    def loss(m, x):
        z = m(x)
        return jnp.sum(jnp.where(jnp.isfinite(z.real), z.real, 0.0))

    grad = eqx.filter_jit(eqx.filter_grad(loss))
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(grad(sym, x)))
    outside = jax.tree.leaves(grad(sym, x[[3, 3, 3, 3]]))
    assert outside and all(np.all(leaf == 0) for leaf in outside)


def test_symmetrized_netket_parity_round_trip():
    """NetKet's SymmExpSum sums chi_g psi(g x) / |G| as Symmetrized does."""
    nk_group = CHAIN.space_group()
    group = PermutationGroup(np.asarray(nk_group))
    odd = _one_dim_characters(group)[-1].real
    x = _spins(8, 6)
    for chi in (None, odd):
        rbm = nqz.models.RBM(HI6, param_dtype=complex, **RBM_ZEROS)
        model = random_params(nqz.models.Symmetrized(rbm, group, chi))
        nk_model, variables = to_netket(model)
        assert isinstance(nk_model, nk.nn.blocks.SymmExpSum)
        assert np.array_equal(np.asarray(nk_model.symm_group), np.asarray(nk_group))
        expected = np.exp(np.asarray(_nk_call(nk_model, variables["params"], x)))
        error = np.max(np.abs(np.exp(np.asarray(model(x))) - expected))
        assert error <= 1e-12 * _scale(model.model, group, x)  # (odd sector: cancellations)
        # NetKet's own module (its group object) converts back to the same model
        own = nk.nn.blocks.SymmExpSum(
            module=nk.models.RBM(param_dtype=complex), symm_group=nk_group,
            characters=None if chi is None else HashableArray(chi),
        )
        assert bool(eqx.tree_equal(from_netket(own, variables, hilbert=HI6), model))
    # a complex character (momentum 2 pi / 6): NetKet's module built from nqzoo's group
    group = nqz.lattice.Chain(6).translation_group()
    chi = group.characters(momentum=(2 * np.pi / 6,))
    rbm = nqz.models.RBM(HI6, param_dtype=complex, **RBM_ZEROS)
    model = random_params(nqz.models.Symmetrized(rbm, group, chi))
    nk_model, variables = to_netket(model)
    expected = np.exp(np.asarray(_nk_call(nk_model, variables["params"], x)))
    error = np.max(np.abs(np.exp(np.asarray(model(x))) - expected))
    assert error <= 1e-12 * _scale(model.model, group, x)
    assert bool(eqx.tree_equal(from_netket(nk_model, variables, hilbert=HI6), model))


# -- bad input -----------------------------------------------------------------------------


def test_bad_input():
    rbm = nqz.models.RBM(HI6, **RBM_ZEROS)
    with pytest.raises(ValueError, match=r"symmetries permutes 9 sites.*6 sites"):
        nqz.models.RBMSymm(HI6, TRANS9, **RBM_ZEROS)
    with pytest.raises(ValueError, match=r"symmetries permutes 9 sites"):
        nqz.models.Symmetrized(rbm, TRANS9)
    with pytest.raises(ValueError, match=r"symmetries must contain the identity"):
        nqz.models.Symmetrized(rbm, TRANS6[1:])
    with pytest.raises(ValueError, match=r"alpha=1 .*0\.5 features per group element"):
        nqz.models.RBMSymm(HI6, SPACE6, **RBM_ZEROS)
    with pytest.raises(ValueError, match=r"alpha=1\.5 .*1\.5 features.*alpha=1 \(F = 1\)"):
        nqz.models.RBMSymm(HI6, TRANS6, alpha=1.5, **RBM_ZEROS)
    with pytest.raises(ValueError, match=r"alpha must be a finite positive number"):
        nqz.models.RBMSymm(HI6, TRANS6, alpha=0, **RBM_ZEROS)
    with pytest.raises(ValueError, match=r"characters must have one entry per group element"):
        nqz.models.Symmetrized(rbm, SPACE6, np.ones(6))
    with pytest.raises(ValueError, match=r"characters is not a one-dimensional representation"):
        nqz.models.Symmetrized(rbm, TRANS6, np.array([1, -1, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"characters must be the characters of a one-dim"):
        nqz.models.Symmetrized(rbm, TRANS6, 2 * np.ones(6))
    with pytest.raises(TypeError, match=r"Symmetrized needs a model with a `hilbert`"):
        nqz.models.Symmetrized(lambda x: x.sum(-1), TRANS6)
    with pytest.raises(TypeError, match=r"NetKet group"):
        nqz.models.RBMSymm(HI6, CHAIN.translation_group(), **RBM_ZEROS)
    nqt.assert_shape_checked(nqz.models.RBMSymm(HI6, TRANS6, **RBM_ZEROS))
    nqt.assert_shape_checked(nqz.models.Jastrow(HI6, kernel_init=ZEROS, key=KEY))
    nqt.assert_shape_checked(nqz.models.Symmetrized(rbm, TRANS6))
    with pytest.raises(ValueError, match=r"param_dtype must be a floating or complex"):
        nqz.models.Jastrow(HI6, param_dtype=jnp.int32, key=KEY)


def test_float32():
    x = _spins(4, 6)
    jastrow = random_params(nqz.models.Jastrow(HI6, param_dtype=jnp.complex64, kernel_init=ZEROS,
                                               key=KEY))
    rbm = random_params(nqz.models.RBMSymm(HI6, TRANS6, alpha=2, param_dtype=jnp.float32,
                                           **RBM_ZEROS))
    assert _call(jastrow, x).dtype == jnp.complex64
    assert _call(rbm, x).dtype == jnp.float32
    g = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.sum(m(x))))(rbm, x)
    assert g.kernel.dtype == jnp.float32 and g.visible_bias.dtype == jnp.float32
    # the same numbers as the float64 model, to float32 precision
    rbm64 = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, rbm)
    assert max_rel_err(_call(rbm, x), _call(rbm64, x)) <= 1e-5

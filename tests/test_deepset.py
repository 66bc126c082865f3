"""DeepSetMLP and DeepSetRelDistance: NetKet parity, symmetries, batching, coincident particles,
bad input."""

import copy

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.models import DeepSetMLP, DeepSetRelDistance

from .helpers import max_rel_err, netket_promotion, randomize, tree_allclose


nk = pytest.importorskip("netket")
interop = pytest.importorskip("nqzoo.interop.netket")

# Everything is evaluated under jit: one compilation per shape instead of many eager ops.
_call = eqx.filter_jit(lambda m, x: m(x))
_grad_sum = eqx.filter_jit(lambda m, x: jax.grad(lambda m: m(x).sum())(m))

N = 5
LAYERS = dict(layers_phi=2, layers_rho=3, features_phi=(6, 7), features_rho=(5, 4, 1))


def _replace(model, **static):
    """A copy of `model` with static fields (hyperparameters) replaced."""
    model = copy.copy(model)
    for name, value in static.items():
        object.__setattr__(model, name, value)
    return model


def _netket_pair(box, cusp, key, param_dtype=jnp.float64, **kwargs):
    """A NetKet DeepSetRelDistance with randomised parameters and the nqzoo copy of it."""
    nk_model = nk.models.DeepSetRelDistance(
        hilbert=interop.hilbert_to_netket(box),
        cusp_exponent=cusp,
        param_dtype=param_dtype,
        **{**LAYERS, **kwargs},
    )
    k1, k2 = jax.random.split(key)
    with netket_promotion():
        variables = nk_model.init(k1, jnp.zeros((1, box.size)))
    variables = randomize(variables, k2)
    # A positive cusp parameter b, as in physical use (b < 0 makes psi blow up at contact).
    params = dict(variables["params"])
    params["cusp"] = (0.5 + jnp.abs(params["cusp"])).astype(param_dtype)
    variables = {"params": params}
    return nk_model, variables, interop.from_netket(nk_model, variables)


CASES = [
    (1, (5.0,), None, jnp.float64),
    (2, (5.0, 6.5), 3, jnp.complex128),
    (3, (4.0, 5.0, 6.0), 5, jnp.float64),
]


@pytest.mark.parametrize("d, L, cusp, dtype", CASES)
def test_parity_with_netket(d, L, cusp, dtype, getkey):
    box = nqz.hilbert.Particles(N, L)
    nk_model, variables, model = _netket_pair(box, cusp, getkey(), dtype)
    assert model.cusp.dtype == dtype and model.hilbert == box
    x = box.random_state(getkey(), (7,))
    # Chunked evaluation, 7 = 3 + 3 + 1 padded (test_batch_shapes_and_vmap checks that the
    # unchunked path agrees).
    chunked = _replace(model, chunk_size=3)
    nqt.assert_netket_parity(chunked, nk_model, variables, x=x, rtol=1e-12)
    # Exact round trips in both directions.
    module, back = interop.to_netket(model)
    assert tree_allclose(back, variables, rtol=0)
    assert tree_allclose(interop.from_netket(module, back), model, rtol=0)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return

    # Gradients with respect to every parameter, through the chunked path.
    with netket_promotion():
        nk_grad = jax.jit(jax.grad(lambda v: nk_model.apply(v, x).sum()))(variables)
    grad = _grad_sum(chunked, x)
    _, grad_as_nk = interop.to_netket(grad)
    nk_leaves = jax.tree.leaves(nk_grad)
    assert len(nk_leaves) == len(jax.tree.leaves(grad_as_nk))
    scale = max(float(jnp.max(jnp.abs(g))) for g in nk_leaves)
    for ours, theirs in zip(jax.tree.leaves(grad_as_nk), nk_leaves):
        assert np.max(np.abs(np.asarray(ours) - np.asarray(theirs))) < 1e-12 * scale
    if d == 3:
        # Position Hessians (the kinetic energy in continuous-space VMC): forward over reverse.
        hess = eqx.filter_jit(lambda m, x: jax.vmap(jax.hessian(m))(x))(model, x[:2])
        nk_hess = jax.jit(jax.vmap(jax.hessian(lambda y: nk_model.apply(variables, y[None])[0])))
        with netket_promotion():
            expected_hess = nk_hess(x[:2])
        assert max_rel_err(hess, expected_hess) < 1e-12


def test_param_tree_matches_netket(getkey):
    box = nqz.hilbert.Particles(4, (5.0, 6.0))
    model = DeepSetRelDistance(box, 2, 3, (8, 9), (7, 6, 1), cusp_exponent=5, key=getkey())
    # NetKet 3.23's tree (the parity tests check the round trip against a real NetKet init).
    _, variables = interop.to_netket(model)
    inner = variables["params"]["deepset"]["DeepSetMLP_0"]
    assert variables["params"]["cusp"].shape == (1,)
    assert [inner["ds_phi"][f"Dense_{k}"]["kernel"].shape for k in range(2)] == [(2, 8), (8, 9)]
    assert [inner["ds_rho"][f"Dense_{k}"]["bias"].shape for k in range(4)] == [
        (7,),
        (6,),
        (1,),
        (1,),
    ]
    # rho has layers_rho + 1 layers: the extra 1 -> 1 layer is NetKet's quirk.
    assert [(lay.in_features, lay.out_features) for lay in model.deepset.rho] == [
        (9, 7),
        (7, 6),
        (6, 1),
        (1, 1),
    ]
    # The cusp parameter exists even without a cusp, initialised to 1.
    plain = DeepSetRelDistance(box, 2, 3, 8, 7, key=getkey())
    assert plain.cusp.shape == (1,) and float(plain.cusp[0]) == 1.0
    assert plain.features_phi == (8, 8) and plain.features_rho == (7, 7, 1)
    assert "cusp" in interop.to_netket(plain)[1]["params"]


@pytest.mark.parametrize(
    "features_phi, features_rho, use_bias",
    [((4, 5), (3,), True), (3, None, False)],
)
def test_deepset_mlp_parity_and_round_trip(features_phi, features_rho, use_bias, getkey):
    nk_model = nk.models.DeepSetMLP(
        features_phi=features_phi, features_rho=features_rho, use_bias=use_bias
    )
    x = jax.random.normal(getkey(), (2, 3, 6, 2))
    with netket_promotion():
        variables = randomize(nk_model.init(getkey(), x), getkey())
    model = interop.from_netket(nk_model, variables)
    out = model(x)
    assert out.shape == (2, 3)
    module, back = interop.to_netket(model)
    with netket_promotion():
        expected, back_out = nk_model.apply(variables, x), module.apply(back, x)
    assert max_rel_err(out, expected) < 1e-12
    assert tree_allclose(back, variables, rtol=0)
    assert max_rel_err(back_out, out) < 1e-12


def test_deepset_mlp_features_conventions(getkey):
    m = DeepSetMLP(3, features_phi=4, features_rho=5, key=getkey())
    assert m.features_phi == (4,) and m.features_rho == (5,)
    assert [lay.out_features for lay in m.rho] == [5, 1]
    m = DeepSetMLP(3, key=getkey())
    assert m.phi == () and len(m.rho) == 1 and m.rho[0].kernel.shape == (3, 1)
    x = jax.random.normal(getkey(), (6, 3))
    # Pooling over the set axis: permuting the set leaves the value unchanged.
    m = DeepSetMLP(3, (4, 4), (3,), pooling=jnp.max, key=getkey())
    assert jnp.allclose(m(x), m(x[::-1]), rtol=1e-14)
    assert m(x).shape == ()


# --- symmetries ------------------------------------------------------------------------------

_BOX = nqz.hilbert.Particles(4, (3.0, 4.5))
_MODEL = randomize(
    DeepSetRelDistance(_BOX, **LAYERS, cusp_exponent=5, key=jax.random.key(7)),
    jax.random.key(8),
)
_MODEL = eqx.tree_at(lambda m: m.cusp, _MODEL, jnp.abs(_MODEL.cusp))
_EVAL = eqx.filter_jit(lambda m, x: m(x))

_coords = st.lists(
    st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False), min_size=8, max_size=8
)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    coords=_coords,
    perm=st.permutations(range(4)),
    shift=st.tuples(st.floats(-10, 10), st.floats(-10, 10)),
    images=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=4, max_size=4),
)
def test_invariances(coords, perm, shift, images):
    L = np.asarray(_BOX.L)
    pos = np.asarray(coords).reshape(4, 2) * L
    variants = [
        pos,
        pos[list(perm)],  # particle permutation
        pos + np.asarray(shift),  # global translation
        pos + np.asarray(images) * L,  # each particle moved by whole periods, per component
    ]
    out = np.asarray(_EVAL(_MODEL, jnp.asarray(np.stack(variants).reshape(4, -1))))
    if not np.all(np.isfinite(out)):  # coincident particles: all variants coincide too
        assert np.all(out == out[0])
        return
    np.testing.assert_allclose(out, out[0], rtol=1e-10, atol=1e-10)


def test_batch_shapes_and_vmap(getkey):
    model = _replace(_MODEL, chunk_size=2)
    x = _BOX.random_state(getkey(), (2, 3))
    out = _call(model, x)
    assert out.shape == (2, 3)
    single = jnp.stack([jnp.stack([_call(model, x[i, j]) for j in range(3)]) for i in range(2)])
    assert single.shape == (2, 3) and _call(model, x[0, 0]).shape == ()
    assert max_rel_err(out, single) < 1e-13
    vmapped = eqx.filter_jit(lambda m, x: jax.vmap(jax.vmap(m))(x))(model, x)
    assert max_rel_err(vmapped, single) < 1e-13
    unchunked = _replace(_MODEL, chunk_size=None)
    assert max_rel_err(_call(unchunked, x), out) < 1e-13
    assert model(x[0, :0]).shape == (0,)


# --- coincident particles --------------------------------------------------------------------


def _with_b(model, b):
    return eqx.tree_at(lambda m: m.cusp, model, jnp.asarray([b], model.cusp.dtype))


def test_coincident_particles(getkey):
    model = _replace(_MODEL, chunk_size=2)
    x = _BOX.random_state(getkey(), (4,))
    x = x.at[1, 2:4].set(x[1, 0:2])  # configuration 1: particles 0 and 1 at the same point
    bad = np.array([False, True, False, False])
    # A periodic image of a coincidence is a coincidence (test_periodic_images_coincide).
    image = x[0].at[2:4].set(x[0, 0:2] + jnp.asarray(_BOX.L) * jnp.asarray([1.0, -2.0]))
    xs = jnp.concatenate([x, image[None]])

    out = _call(model, xs)
    assert out[1] == -np.inf  # b > 0: psi = 0
    assert np.all(np.isfinite(out[:4][~bad]))
    assert out[4] == -np.inf
    assert _call(_with_b(model, -0.7), xs)[1] == np.inf  # b < 0: the formula's limit
    no_cusp = _call(_replace(model, cusp_exponent=None), xs)
    zero_b = _call(_with_b(model, 0.0), xs)  # b = 0: no cusp term at all (NetKet gives NaN)
    assert max_rel_err(zero_b, no_cusp) < 1e-13

    @eqx.filter_jit
    def gradients(m, x):
        weights = jnp.asarray(~bad, float)
        masked = jax.grad(lambda m: jnp.sum(weights * jnp.where(bad, 0.0, m(x))))(m)
        clean = jax.grad(lambda m: jnp.sum(m(x[~bad])))(m)
        every = jax.grad(lambda m: jnp.sum(m(x)))(m)
        single_bad = jax.grad(lambda m: m(x[1]))(m)
        positions = jax.vmap(jax.grad(m))(x)
        return masked, clean, every, single_bad, positions

    g_masked, g_clean, g_all, g_bad, gx = gradients(model, x)
    # The coincident configuration leaves the others untouched and adds no NaN.
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(g_masked))
    assert tree_allclose(g_masked, g_clean, rtol=1e-12, atol=1e-14)
    # Its -inf value is a constant in b; the phi/rho part keeps its ordinary gradient.
    assert float(g_bad.cusp[0]) == 0.0
    assert np.any(np.asarray(g_bad.deepset.phi[0].kernel) != 0)
    assert tree_allclose(g_all, jax.tree.map(jnp.add, g_clean, g_bad), rtol=1e-12, atol=1e-14)
    # Per-configuration position gradients (kinetic energy) stay finite everywhere.
    assert np.all(np.isfinite(gx))
    assert np.all(gx[1, 4:] != 0)  # the phi/rho part still depends on the other particles


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_periodic_images_coincide(dtype, getkey):
    """x_j = x_i + k L (k up to 5 boxes, per axis) is exact coincidence: log psi = -inf with
    the cusp (not the ~-1e79 of sin(pi k) ~ 1e-16), and the value of x_j = x_i without it."""
    box = nqz.hilbert.Particles(3, (2.7, 1.3))  # lengths that are not powers of two
    model = DeepSetRelDistance(box, **LAYERS, cusp_exponent=5, param_dtype=dtype, key=getkey())
    model = eqx.tree_at(lambda m: m.cusp, model, jnp.ones(1, dtype))
    no_cusp = _replace(model, cusp_exponent=None)
    L = np.asarray(box.L, np.dtype(dtype))
    shifts = np.asarray([[1, 0], [0, -1], [1, 1], [-2, 3], [4, -4], [5, -5]], np.dtype(dtype))
    base = np.asarray(box.random_state(getkey(), (len(shifts),)), np.dtype(dtype))
    same = base.copy()
    same[:, 2:4] = base[:, 0:2]  # particle 1 on particle 0
    images = same.copy()
    images[:, 2:4] = base[:, 0:2] + shifts * L  # ... or on one of its periodic images
    assert np.all(np.any(images[:, 2:4] != same[:, 2:4], axis=1))
    out = np.asarray(_call(model, jnp.asarray(np.concatenate([same, images]))))
    assert np.all(out == -np.inf)
    expected = _call(no_cusp, jnp.asarray(same))
    rtol = 1e-12 if dtype == jnp.float64 else 1e-5
    assert max_rel_err(_call(no_cusp, jnp.asarray(images)), expected) < rtol
    # Separated particles stay finite, also at exactly half a box (the farthest image).
    apart = same.copy()
    apart[:, 2:4] = base[:, 0:2] + L * np.asarray([0.5, 0.0], np.dtype(dtype))
    assert np.all(np.isfinite(np.asarray(_call(model, jnp.asarray(apart)))))


def test_nearest_image():
    """delta - L round(delta / L) in [-L/2, L/2], equal to delta modulo L; only rounding-level
    remainders of multiples of L are set to 0."""
    from nqzoo.models._deepset_rel import _nearest_image

    rng = np.random.default_rng(0)
    L = np.asarray([[2.7, 0.3]])  # (1, d): the model's rank (no implicit rank promotion)
    delta = np.concatenate([rng.uniform(-20, 20, (500, 2)), rng.uniform(-1e-9, 1e-9, (50, 2))])
    out = np.asarray(_nearest_image(jnp.asarray(delta), jnp.asarray(L)))
    assert np.all(np.abs(out) <= L / 2 * (1 + 1e-15))
    turns = (delta - out) / L
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-13)
    np.testing.assert_array_equal(out[500:], delta[500:])  # small separations are kept
    multiples = np.asarray([[-3.0, 1.0], [2.0, -4.0]]) * L
    assert np.all(np.asarray(_nearest_image(jnp.asarray(multiples), jnp.asarray(L))) == 0)


# --- bad input -------------------------------------------------------------------------------


def test_bad_hyperparameters(getkey):
    box = nqz.hilbert.Particles(3, (5.0, 5.0))
    with pytest.raises(ValueError, match="periodic"):
        DeepSetRelDistance(
            nqz.hilbert.Particles(3, (5.0, 5.0), pbc=(True, False)), **LAYERS, key=getkey()
        )
    with pytest.raises(ValueError, match="features_phi.*layers_phi=3"):
        DeepSetRelDistance(box, 3, 3, (6, 7), (5, 4, 1), key=getkey())
    with pytest.raises(ValueError, match="features_rho.*layers_rho=2"):
        DeepSetRelDistance(box, 2, 2, (6, 7), (5, 4, 1), key=getkey())
    with pytest.raises(ValueError, match="last entry of features_rho must be 1"):
        DeepSetRelDistance(box, 2, 3, (6, 7), (5, 4, 2), key=getkey())
    for exponent in (-1, 0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"cusp_exponent must be a finite positive number"):
            DeepSetRelDistance(box, **LAYERS, cusp_exponent=exponent, key=getkey())
    with pytest.raises(ValueError, match=r"chunk_size must be a positive integer, 'auto' or None"):
        DeepSetRelDistance(box, **LAYERS, chunk_size=0, key=getkey())
    with pytest.raises(TypeError, match=r"needs an nqzoo.hilbert.Particles box.*hilbert=Spin"):
        DeepSetRelDistance(nqz.hilbert.Spin(0.5, 6), **LAYERS, key=getkey())
    with pytest.raises(ValueError, match=r"features_phi must be a positive integer .*\(3, 0\)"):
        DeepSetMLP(2, features_phi=(3, 0), key=getkey())
    with pytest.raises(ValueError, match=r"layers_rho must be an integer >= 1, got layers_rho=0"):
        DeepSetRelDistance(box, 2, 0, (6, 7), (), key=getkey())
    for make in (
        lambda dtype: DeepSetRelDistance(box, **LAYERS, param_dtype=dtype, key=getkey()),
        lambda dtype: DeepSetMLP(2, 3, param_dtype=dtype, key=getkey()),
    ):
        with pytest.raises(ValueError, match=r"param_dtype must be a floating.*param_dtype=int32"):
            make(jnp.int32)


def test_netket_space_points_to_the_converter(getkey):
    cell = nk.experimental.geometry.Cell(d=2, L=(5.0, 5.0), pbc=True)
    nk_box = nk.experimental.hilbert.Particle(N=3, geometry=cell)
    match = r"NetKet space.*nqzoo\.interop\.netket\.hilbert_from_netket"
    with pytest.raises(TypeError, match=match):
        DeepSetRelDistance(nk_box, **LAYERS, key=getkey())
    box = interop.hilbert_from_netket(nk_box)
    assert DeepSetRelDistance(box, **LAYERS, key=getkey()).hilbert == box


def test_numpy_integer_hyperparameters(getkey):
    box = nqz.hilbert.Particles(3, (5.0, 5.0))
    ints = dict(layers_phi=np.int64(2), layers_rho=np.int32(3), features_phi=np.int64(6),
                features_rho=(np.int64(5), 4, 1), chunk_size=np.int64(4))
    model = DeepSetRelDistance(box, **ints, key=jax.random.key(0))
    plain = DeepSetRelDistance(box, 2, 3, 6, (5, 4, 1), chunk_size=4, key=jax.random.key(0))
    assert bool(eqx.tree_equal(model, plain)) and type(model.chunk_size) is int
    assert model.features_phi == (6, 6) and model.layers_phi == 2


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
def test_single_precision_with_x64_on(dtype, getkey):
    """float32/complex64 parameters give float32/complex64 outputs and gradients with x64 on,
    from float64 positions (cast to the parameters' real dtype), chunked or not."""
    box = nqz.hilbert.Particles(4, (3.0, 4.5))
    model = DeepSetRelDistance(box, **LAYERS, cusp_exponent=5, param_dtype=dtype, chunk_size=2,
                               key=getkey())
    assert {leaf.dtype for leaf in jax.tree.leaves(model)} == {jnp.dtype(dtype)}
    x = box.random_state(getkey(), (5,))
    assert x.dtype == jnp.float64
    out = _call(model, x)
    assert out.dtype == dtype and _call(_replace(model, chunk_size=None), x).dtype == dtype
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.real(m(x)).sum()))(model)
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype(dtype)}
    assert jax.vmap(jax.grad(lambda y: jnp.real(model(y))))(x).dtype == jnp.float64
    wide = jnp.complex128 if jnp.issubdtype(dtype, jnp.complexfloating) else jnp.float64
    model64 = jax.tree.map(lambda a: a.astype(wide), model)
    np.testing.assert_allclose(out, _call(model64, x), rtol=1e-4)

    ds = DeepSetMLP(2, (4, 5), (3,), param_dtype=dtype, key=getkey())
    sets = jax.random.normal(getkey(), (3, 6, 2), jnp.float64)
    assert _call(ds, sets).dtype == dtype
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.real(m(sets)).sum()))(ds)
    assert {leaf.dtype for leaf in jax.tree.leaves(grads)} == {jnp.dtype(dtype)}


def test_bad_input_shape(getkey):
    box = nqz.hilbert.Particles(3, (5.0, 5.0))
    model = DeepSetRelDistance(box, **LAYERS, key=getkey())
    with pytest.raises(TypeError, match="hilbert.size|6"):
        model(jnp.zeros((4, 5)))
    ds = DeepSetMLP(2, 3, key=getkey())
    with pytest.raises(TypeError):
        ds(jnp.zeros((4, 5, 3)))


def test_vectorised_sine_matches_libm():
    """On the reduced arguments it gets (|t| <= pi/2, see _nearest_image), 2 ulp."""
    from nqzoo.models._deepset_rel import _sin

    rng = np.random.default_rng(0)
    half = np.pi / 2
    t = np.concatenate(
        [
            rng.uniform(-1e-6, 1e-6, 2000),
            rng.uniform(-half, half, 4000),
            half - rng.uniform(0, 1e-6, 100),
            np.asarray([0.0, -0.0, half, -half, np.nextafter(half, 4.0), 5e-324]),
        ]
    )
    ours, libm = np.asarray(jax.jit(_sin)(jnp.asarray(t))), np.sin(t)
    assert np.all(np.abs(ours - libm) <= 2 * np.spacing(np.abs(libm)))
    assert _sin(jnp.asarray(t, jnp.float32)).dtype == jnp.float32


def test_no_phi_no_bias_round_trip(getkey):
    box = nqz.hilbert.Particles(4, (5.0, 6.0))
    model = DeepSetRelDistance(
        box,
        0,
        2,
        (),
        4,
        cusp_exponent=2,
        use_bias=False,
        pooling=jnp.mean,
        output_activation=jnp.tanh,
        key=getkey(),
    )
    model = randomize(model, getkey())
    assert model.deepset.phi == () and model.deepset.rho[0].bias is None
    module, variables = interop.to_netket(model)
    x = box.random_state(getkey(), (3,))
    nqt.assert_netket_parity(model, module, variables, x=x, rtol=1e-12)
    assert tree_allclose(interop.from_netket(module, variables), model, rtol=0)

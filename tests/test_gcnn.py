"""GCNN and the symmetric layers: parity with NetKet (both forms), gradients, invariance,
round trips, shapes, float32 and bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.interop.netket import from_netket, to_netket

from .helpers import max_rel_err, netket_promotion, randomize


LATTICES = {
    "chain6": ((6,), nk.graph.Chain(6)),
    "chain5": ((5,), nk.graph.Chain(5)),  # odd: one self-conjugate momentum
    "square3": ((3, 3), nk.graph.Square(3)),  # 72 elements (the 4x4 torus has 128: slower)
}


def _netket_gcnn(name, mode, layers, features, dtype, key, **kwargs):
    shape, graph = LATTICES[name]
    module = nk.models.GCNN(
        symmetries=graph, layers=layers, features=features, mode=mode, param_dtype=dtype,
        **kwargs,
    )
    x = _configs(graph.n_nodes, 5, key)
    with netket_promotion():
        variables = module.init(jax.random.key(0), x[:1])
    params = randomize(variables["params"], key, scale=0.4)
    return module, {"params": params}, x


def _configs(n, batch, key):
    return np.asarray(jax.random.choice(key, jnp.array([-1.0, 1.0]), (batch, n)))


CASES = [
    ("chain6", "fft", 1, 3, jnp.float64),  # the lift only
    ("chain6", "irreps", 2, (3, 2), jnp.complex128),
    ("chain5", "fft", 2, (2, 3), jnp.float64),
    ("square3", "fft", 3, (2, 3, 2), jnp.complex128),
    ("square3", "irreps", 2, (2, 3), jnp.float64),
]


@pytest.mark.parametrize("name,mode,layers,features,dtype", CASES)
def test_parity_and_gradient(name, mode, layers, features, dtype, getkey):
    module, variables, x = _netket_gcnn(name, mode, layers, features, dtype, getkey())
    model = from_netket(module, variables)
    assert model.mode == mode
    assert jax.eval_shape(model, x).dtype == jnp.complex128
    nqt.assert_netket_parity(model, module, variables, x=x, rtol=1e-12)

    # gradients of a real function of log psi, with respect to every parameter
    def nk_loss(params):
        v = module.apply({"params": params}, x)
        return jnp.sum(v.real * np.cos(np.arange(5)) + v.imag * np.sin(np.arange(5)))

    def nq_loss(m):
        v = m(x)
        return jnp.sum(v.real * np.cos(np.arange(5)) + v.imag * np.sin(np.arange(5)))

    with netket_promotion():
        g_nk = jax.jit(jax.grad(nk_loss))(variables["params"])
    g_nq = eqx.filter_jit(eqx.filter_grad(nq_loss))(model)
    _, g_nq_tree = to_netket(g_nq)
    for path in [("dense_symm", "kernel"), ("dense_symm", "bias")] + [
        (f"equivariant_layers_{l}", "kernel") for l in range(layers - 1)  # noqa: E741
    ]:
        a = np.asarray(g_nq_tree["params"][path[0]][path[1]])
        b = np.asarray(g_nk[path[0]][path[1]])
        assert max_rel_err(a, b) < 1e-11, path


@pytest.mark.parametrize("mode", ["fft", "irreps"])
def test_round_trip(mode, getkey):
    module, variables, x = _netket_gcnn("square3", mode, 2, (2, 3), jnp.float64, getkey())
    model = from_netket(module, variables)
    module2, variables2 = to_netket(model)
    assert type(module2) is type(module)
    assert jax.tree.all(jax.tree.map(lambda a, b: np.array_equal(a, b), variables2, variables))
    with netket_promotion():
        assert max_rel_err(module2.apply(variables2, x), module.apply(variables, x)) < 1e-13
    again = from_netket(module2, variables2)
    assert jax.tree.all(
        jax.tree.map(
            np.array_equal, eqx.filter(again, eqx.is_array), eqx.filter(model, eqx.is_array)
        )
    )
    assert again.mode == model.mode and again.shape == model.shape


def test_fft_equals_irreps_and_nqzoo_groups(getkey):
    """A model built from nqzoo's lattice: both modes give one function; the group is NetKet's."""
    grid = nqz.lattice.Square(4)
    hi = nqz.hilbert.Spin(0.5, 16)
    fft = nqz.models.GCNN(hi, grid, layers=2, features=(2, 3), key=getkey())
    assert (fft.mode, fft.shape) == ("fft", (4, 4))
    fft = randomize(fft, getkey())
    irreps = nqz.models.GCNN(hi, grid.space_group(), layers=2, features=(2, 3), mode="irreps",
                             key=getkey())
    irreps = eqx.tree_at(
        lambda m: [l.kernel for l in [m.dense_symm, *m.equivariant_layers]],  # noqa: E741
        irreps,
        [l.kernel for l in [fft.dense_symm, *fft.equivariant_layers]],  # noqa: E741
    )
    irreps = eqx.tree_at(
        lambda m: [l.bias for l in [m.dense_symm, *m.equivariant_layers]],  # noqa: E741
        irreps,
        [l.bias for l in [fft.dense_symm, *fft.equivariant_layers]],  # noqa: E741
    )
    x = _configs(16, 6, getkey())
    call = eqx.filter_jit(lambda m, x: m(x))
    assert max_rel_err(call(fft, x), call(irreps, x)) < 1e-12
    nqt.assert_netket_parity(fft, *to_netket(fft), x=x, rtol=1e-12)
    assert set(map(tuple, np.asarray(nk.graph.Square(4).space_group()))) == set(
        map(tuple, fft.symmetries.perms)
    )


@pytest.mark.parametrize("mode,dtype", [("fft", jnp.float64), ("irreps", jnp.complex128)])
def test_invariance_every_element(mode, dtype, getkey):
    """psi(g x) = chi_g psi(x) for every g (NetKet's GCNN convention: the conjugate of the sector
    Symmetrized(model, group, chi) projects on), for the symmetric sector, momentum pi with odd
    reflection parity, and a complex momentum sector of the translations."""
    grid = nqz.lattice.Chain(6)
    space, translations = grid.space_group(), grid.translation_group()
    hi = nqz.hilbert.Spin(0.5, 6)
    for group, chi in [
        (space, None),
        (space, space.characters(momentum=(np.pi,), point_irrep="A2")),
        (translations, translations.characters(momentum=(2 * np.pi / 3,))),
    ]:
        model = nqz.models.GCNN(hi, group, layers=2, features=(3, 2), characters=chi, mode=mode,
                                param_dtype=dtype, key=getkey())
        model = randomize(model, getkey())
        x = _configs(6, 8, getkey())
        nqt.assert_symmetric(model, group.perms, chi, x=x, rtol=1e-11)
        with pytest.raises(AssertionError, match="is not symmetric"):  # the check can fail
            nqt.assert_symmetric(model, group.perms, -np.ones(len(group)) if chi is None
                                 else -np.asarray(chi), x=x)


def test_layers_against_netket(getkey):
    """DenseSymm and DenseEquivariant (both forms) in NetKet's layout, with masks."""
    graph = nk.graph.Square(3)
    sg = graph.space_group()
    group = nqz.symmetry.PermutationGroup(np.asarray(sg))
    x = np.asarray(jax.random.normal(getkey(), (2, 3, 2, 9)))
    mask = np.arange(9) % 3 != 0
    lift = nqz.nn.DenseSymm(group, 4, in_features=2, mask=mask, key=getkey())
    lift = randomize(lift, getkey())
    nk_lift = nk.nn.DenseSymm(graph, mode="matrix", features=4, mask=mask)
    with netket_promotion():
        ref = nk_lift.apply({"params": {"kernel": lift.kernel, "bias": lift.bias}}, x)
    assert lift(x).shape == (2, 3, 4, 72)
    assert max_rel_err(lift(x), ref) < 1e-12
    h = np.asarray(jax.random.normal(getkey(), (2, 3, 4, 72)))
    hidden_mask = np.arange(72) % 5 != 1
    for mode, kw in [("fft", dict(shape=(3, 3))), ("irreps", {})]:
        conv = nqz.nn.DenseEquivariant(group, 2, 4, mode=mode, mask=hidden_mask, key=getkey(),
                                       **kw)
        conv = randomize(conv, getkey())
        nk_conv = nk.nn.DenseEquivariant(graph, features=2, mode=mode, mask=hidden_mask)
        with netket_promotion():
            ref = nk_conv.apply({"params": {"kernel": conv.kernel, "bias": conv.bias}}, h)
        assert max_rel_err(conv(h), ref) < 1e-12


def test_masks_and_options_parity(getkey):
    module, variables, x = _netket_gcnn(
        "chain6", "fft", 2, (3, 2), jnp.float64, getkey(),
        input_mask=np.array([1, 1, 0, 1, 0, 0]), hidden_mask=np.arange(12) % 4 != 3,
        equal_amplitudes=True, use_bias=False, output_activation=nk.nn.activation.log_cosh,
    )
    model = from_netket(module, variables)
    assert model.dense_symm.kernel.shape == (3, 1, 3) and model.dense_symm.bias is None
    with netket_promotion():
        expected = module.apply(variables, x)
    assert max_rel_err(model(x), expected) < 1e-12
    assert np.all(model(x).real == 0)


def test_batch_shapes_jit_and_float32(getkey):
    """Every call jitted (one compilation per model structure): eager GCNN calls dispatch op
    by op and dominated this file's time."""
    grid = nqz.lattice.Chain(6)
    hi = nqz.hilbert.Spin(0.5, 6)
    call = eqx.filter_jit(lambda m, x: m(x))
    grad = eqx.filter_jit(eqx.filter_grad(lambda m, x: m(x).real.sum()))
    model = randomize(nqz.models.GCNN(hi, grid, layers=2, features=3, key=getkey()), getkey())
    x = _configs(6, 6, getkey()).reshape(2, 3, 6)
    out = call(model, x)
    assert out.shape == (2, 3)
    assert call(model, x[1, 2]).shape == ()
    np.testing.assert_allclose(out[1, 2], call(model, x[1, 2]), rtol=1e-13)
    vmapped = eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(model, x.reshape(6, 6))
    np.testing.assert_allclose(out, vmapped.reshape(2, 3), rtol=1e-13)
    nqt.assert_shape_checked(model)
    wide = {jnp.dtype(jnp.float32): jnp.float64, jnp.dtype(jnp.complex64): jnp.complex128}
    for dtype, out_dtype in [(jnp.float32, jnp.complex64), (jnp.complex64, jnp.complex64)]:
        m32 = nqz.models.GCNN(hi, grid, layers=3, features=2, param_dtype=dtype, key=getkey())
        m32 = randomize(m32, getkey())
        assert m32.dense_symm.kernel.dtype == dtype
        y = call(m32, x.astype(np.int8))
        assert y.dtype == out_dtype
        # the same parameters in double precision: the same numbers to single precision
        m64 = jax.tree.map(lambda a: a.astype(wide[a.dtype]) if eqx.is_array(a) else a, m32)
        assert m64.dense_symm.kernel.dtype == wide[jnp.dtype(dtype)]
        assert max_rel_err(y, call(m64, x)) < 1e-5
        g = grad(m32, x)
        assert g.dense_symm.kernel.dtype == dtype
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(g))
    real = nqz.models.GCNN(hi, grid, layers=2, features=2, complex_output=False, key=getkey())
    assert jax.eval_shape(real, x).dtype == jnp.float64


def test_bad_input(getkey):
    hi = nqz.hilbert.Spin(0.5, 6)
    group = nqz.lattice.Chain(6).space_group()
    key = getkey()

    def make(**kw):
        args = dict(symmetries=group, layers=2, features=2, key=key)
        args.update(kw)
        return nqz.models.GCNN(hi, **args)

    with pytest.raises(ValueError, match="symmetries"):
        make(symmetries=nqz.lattice.Chain(8).space_group())
    with pytest.raises(ValueError, match="symmetries"):
        make(symmetries=np.array([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 5]]))
    with pytest.raises(ValueError, match="characters"):
        make(characters=np.ones(5))
    with pytest.raises(ValueError, match="characters"):
        make(characters=np.where(np.arange(12) == 1, -1.0, 1.0))  # not a representation
    with pytest.raises(ValueError, match="layers"):
        make(layers=0)
    with pytest.raises(ValueError, match="features"):
        make(features=(2, 2, 2))
    with pytest.raises(ValueError, match="features"):
        make(features=(2, 0))
    with pytest.raises(ValueError, match="mode"):
        make(mode="matrix")
    with pytest.raises(ValueError, match="shape"):
        make(symmetries=group.perms, mode="fft")
    with pytest.raises(ValueError, match=r"shape=\(3,\) does not match the group.*\(6,\)"):
        make(mode="fft", shape=(3,))
    with pytest.raises(ValueError, match=r"shape=\(4,\) does not match the group"):
        make(mode="fft", shape=(4,))
    # a bare permutation array (no lattice attached): the group's structure decides
    with pytest.raises(ValueError, match=r"shape=\(4,\) has 4 translations.*6 sites"):
        make(symmetries=group.perms, mode="fft", shape=(4,))
    with pytest.raises(ValueError, match=r"shape=\(12,\) has 12 translations.*6 sites"):
        make(symmetries=group.perms, mode="fft", shape=(12,))
    with pytest.raises(ValueError, match="complex_output"):
        make(complex_output=False, characters=group.characters(point_irrep="A2"))
    with pytest.raises(ValueError, match="param_dtype"):
        make(param_dtype=jnp.int32)
    with pytest.raises(ValueError, match="input_mask"):
        make(input_mask=np.ones(5))

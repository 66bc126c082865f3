"""Matrix product states: NetKet parity on random parameters (values and gradients), round
trips, the contraction against explicit matrix products, the period's translation invariance,
dtypes, shapes, a long chain, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.interop.netket import from_netket, hilbert_to_netket, to_netket

from .helpers import max_rel_err, netket_promotion


TN = nk.models.tensor_networks
KEY = jax.random.key(0)
ZEROS = nqz.nn.initializers.zeros
RNG = np.random.default_rng(4321)
_call = eqx.filter_jit(lambda model, x: model(x))


def random_params(model, scale=0.3):
    """`model` with every inexact array replaced by NumPy normal numbers of its dtype."""

    def draw(leaf):
        if not eqx.is_inexact_array(leaf):
            return leaf
        value = RNG.normal(size=leaf.shape)
        if jnp.iscomplexobj(leaf):
            value = value + 1j * RNG.normal(size=leaf.shape)
        return jnp.asarray(scale * value, leaf.dtype)

    return jax.tree.map(draw, model)


def _states(hilbert, shape):
    return RNG.choice(np.asarray(hilbert.local_states, np.int8), size=(*shape, hilbert.size))


CASES = [
    # id, nqzoo class, hilbert, bond_dim, symperiod, dtype
    ("open-real", "MPSOpen", nqz.hilbert.Spin(0.5, 7), 4, None, jnp.float64),
    ("open-complex-spin1", "MPSOpen", nqz.hilbert.Spin(1, 5), 3, None, jnp.complex128),
    ("periodic-real", "MPSPeriodic", nqz.hilbert.Spin(0.5, 6), 3, None, jnp.float64),
    ("periodic-complex-period2", "MPSPeriodic", nqz.hilbert.Spin(0.5, 6), 4, 2, jnp.complex128),
]


def _build(cls, hilbert, bond_dim, symperiod, dtype):
    kwargs = dict(param_dtype=dtype, kernel_init=ZEROS, key=KEY)
    if cls == "MPSPeriodic":
        kwargs["symperiod"] = symperiod
    return random_params(getattr(nqz.models, cls)(hilbert, bond_dim, **kwargs))


@pytest.mark.parametrize("name,cls,hilbert,bond_dim,symperiod,dtype", CASES,
                         ids=[c[0] for c in CASES])
def test_parity_round_trip_gradients(name, cls, hilbert, bond_dim, symperiod, dtype):
    model = _build(cls, hilbert, bond_dim, symperiod, dtype)
    nk_model, variables = to_netket(model)
    expected_module = getattr(TN, cls)(
        hilbert=hilbert_to_netket(hilbert), bond_dim=bond_dim, param_dtype=dtype,
        **({"symperiod": symperiod} if cls == "MPSPeriodic" else {}),
    )
    assert nk_model == expected_module
    params = variables["params"]
    x = _states(hilbert, (3, 5))
    with netket_promotion():
        shapes = jax.eval_shape(nk_model.init, KEY, x[0])["params"]
        expected = jax.jit(lambda p, x: nk_model.apply({"params": p}, x))(params, x)
    spec = lambda a: (a.shape, jnp.dtype(a.dtype))  # noqa: E731
    assert jax.tree.map(spec, shapes) == jax.tree.map(spec, params)  # NetKet's own tree
    out = _call(model, x)
    assert out.shape == (3, 5) and out.dtype == expected.dtype == jnp.complex128
    nqt.assert_netket_parity(model, nk_model, variables, x=x.reshape(15, -1), rtol=1e-12)
    assert max_rel_err(np.exp(out), np.exp(expected)) <= 1e-12  # the amplitudes too
    # round trip, bit for bit
    again = from_netket(nk_model, variables)
    assert bool(eqx.tree_equal(again, model))
    back, variables2 = to_netket(again)
    assert back == nk_model
    jax.tree.map(np.testing.assert_array_equal, variables2["params"], params)
    if name in ("open-real", "periodic-complex-period2"):
        y = x.reshape(-1, hilbert.size)

        def part(z):
            return (z.real + 0.7 * z.imag).sum()

        with netket_promotion():
            g_nk = jax.jit(jax.grad(lambda p: part(nk_model.apply({"params": p}, y))))(params)
        g_nq = eqx.filter_jit(eqx.filter_grad(lambda m: part(m(y))))(model)
        g_nk = from_netket(nk_model, {"params": g_nk})
        for a, b in zip(jax.tree.leaves(g_nq), jax.tree.leaves(g_nk), strict=True):
            assert max_rel_err(a, b) <= 1e-12


def test_contraction_is_the_matrix_product():
    """psi from explicit NumPy products of the tensors (identity / ones added)."""
    hi = nqz.hilbert.Spin(1, 5)
    x = _states(hi, (4,))
    idx = np.asarray(hi.states_to_local_indices(x))
    open_ = _build("MPSOpen", hi, 3, None, jnp.complex128)
    left = np.asarray(open_.left_tensors) + 1
    right = np.asarray(open_.right_tensors) + 1
    middle = np.asarray(open_.middle_tensors) + np.eye(3)
    periodic = _build("MPSPeriodic", hi, 3, None, jnp.float64)
    tensors = np.asarray(periodic.tensors) + np.eye(3)
    for b in range(4):
        v = left[idx[b, 0]]
        for i in range(1, 4):
            v = v @ middle[i - 1, idx[b, i]]
        psi_open = v @ right[idx[b, 4]]
        m = np.eye(3)
        for i in range(5):
            m = m @ tensors[i, idx[b, i]]
        assert abs(np.exp(_call(open_, x[b])) - psi_open) <= 1e-13 * abs(psi_open)
        assert abs(np.exp(_call(periodic, x[b])) - np.trace(m)) <= 1e-13 * abs(np.trace(m))
    np.testing.assert_allclose(open_.amplitude(jnp.asarray(idx)),
                               np.exp(_call(open_, x)), rtol=1e-13)


def test_symperiod_translation_invariance_and_defaults():
    hi = nqz.hilbert.Spin(0.5, 8)
    model = _build("MPSPeriodic", hi, 3, 2, jnp.float64)
    assert model.tensors.shape == (2, 2, 3, 3)
    x = _states(hi, (6,))
    shifted = np.concatenate([np.roll(x, 2, axis=-1), np.roll(x, 1, axis=-1)])
    out = _call(model, np.concatenate([x, x]))
    moved = _call(model, shifted)
    assert max_rel_err(moved[:6], out[:6]) <= 1e-13  # translation by the period: invariant
    assert max_rel_err(moved[6:], out[6:]) > 1e-3  # by one site: not
    # NetKet's defaults: float64, symperiod = N, normal(0.01) deviations
    fresh = nqz.models.MPSPeriodic(hi, 4, key=KEY)
    assert fresh.symperiod == 8 and fresh.tensors.shape == (8, 2, 4, 4)
    assert fresh.tensors.dtype == jnp.float64 and 0.008 < np.std(fresh.tensors) < 0.012
    fresh_open = nqz.models.MPSOpen(hi, 4, key=KEY)
    assert fresh_open.middle_tensors.shape == (6, 2, 4, 4)
    assert fresh_open.left_tensors.shape == fresh_open.right_tensors.shape == (2, 4)


def test_shapes_long_chain_float32():
    hi = nqz.hilbert.Spin(0.5, 200)  # a scan over sites: the program does not grow with N
    model = _build("MPSOpen", hi, 2, None, jnp.float32)
    model = jax.tree.map(lambda a: a * 0.01 if eqx.is_inexact_array(a) else a, model)
    x = _states(hi, (2, 3))
    out = _call(model, x)
    assert out.shape == (2, 3) and out.dtype == jnp.complex64
    single = _call(model, x[0, 0])
    assert single.shape == () and abs(single - out[0, 0]) <= 1e-5 * abs(out[0, 0])
    g = eqx.filter_jit(eqx.filter_grad(lambda m, x: jnp.sum(m(x).real)))(model, x)
    assert g.middle_tensors.dtype == jnp.float32 and np.all(np.isfinite(g.middle_tensors))
    nqt.assert_shape_checked(model)


def test_bad_input():
    hi = nqz.hilbert.Spin(0.5, 6)
    nqt.assert_shape_checked(nqz.models.MPSPeriodic(hi, 2, key=KEY))
    for cls in (nqz.models.MPSOpen, nqz.models.MPSPeriodic):
        with pytest.raises(ValueError, match=r"bond_dim must be a positive integer.*bond_dim=0"):
            cls(hi, 0, key=KEY)
        with pytest.raises(ValueError, match=r"bond_dim must be a positive integer"):
            cls(hi, np.int64(-1), key=KEY)
        with pytest.raises(TypeError, match=r"parameter 'bond_dim'"):
            cls(hi, 2.5, key=KEY)
    with pytest.raises(ValueError, match=r"symperiod must divide the number of sites 6.*"
                                         r"symperiod=4; allowed: \[1, 2, 3, 6\]"):
        nqz.models.MPSPeriodic(hi, 2, 4, key=KEY)
    with pytest.raises(ValueError, match=r"symperiod must be a positive integer"):
        nqz.models.MPSPeriodic(hi, 2, 0, key=KEY)
    with pytest.raises(ValueError, match=r"MPSOpen needs at least 2 sites"):
        nqz.models.MPSOpen(nqz.hilbert.Spin(0.5, 1), 2, key=KEY)
    with pytest.raises(TypeError, match=r"This is a NetKet space"):
        nqz.models.MPSOpen(nk.hilbert.Spin(0.5, 6), 2, key=KEY)
    with pytest.raises(ValueError, match=r"param_dtype must be a floating or complex"):
        nqz.models.MPSOpen(hi, 2, param_dtype=jnp.int32, key=KEY)

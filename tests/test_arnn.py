"""Autoregressive networks: NetKet parity, fast == slow, normalisation, causality, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo as nqz
import nqzoo.testing as nqt
from nqzoo.interop.netket import from_netket, to_netket

from .helpers import netket_promotion, randomize, tree_allclose
from .test_arnn_layers import conv1d_deps, conv2d_deps, dense_deps


HILBERTS = {
    "spin_half": (lambda n: nqz.hilbert.Spin(0.5, n), lambda n: nk.hilbert.Spin(0.5, n)),
    "spin_one": (lambda n: nqz.hilbert.Spin(1, n), lambda n: nk.hilbert.Spin(1.0, n)),
    "fock": (lambda n: nqz.hilbert.Fock(2, n), lambda n: nk.hilbert.Fock(2, n)),
}

# A covering subset of {model} x {hilbert} x {dtype} x {machine_pow} x {dilation} x {layers}:
# every pair of values of any two of these factors appears in some case.
CASES = [
    # kind, hilbert, dtype, machine_pow, dilation, layers
    ("Conv1D", "spin_half", jnp.float64, 2, 1, 3),
    ("Conv1D", "spin_one", jnp.complex128, 1, 2, 2),
    ("Conv1D", "fock", jnp.float64, 1, 2, 1),
    ("Conv2D", "spin_half", jnp.complex128, 1, 2, 1),
    ("Conv2D", "spin_one", jnp.float64, 2, 1, 3),
    ("Conv2D", "fock", jnp.complex128, 2, 1, 2),
    ("Dense", "spin_half", jnp.complex128, 2, 1, 2),
    ("Dense", "spin_one", jnp.float64, 1, 1, 1),
    ("Dense", "fock", jnp.complex128, 1, 1, 3),
]

N_1D, N_2D = 6, 9


def _n_sites(kind):
    return N_2D if kind == "Conv2D" else N_1D


def _hyper(kind, dilation):
    if kind == "Conv1D":
        return dict(kernel_size=3, kernel_dilation=dilation)
    if kind == "Conv2D":
        return dict(kernel_size=(2, 3), kernel_dilation=(dilation, 1))
    return {}


def _case_id(case):
    kind, hil, dtype, mp, dil, layers = case
    return f"{kind}-{hil}-{jnp.dtype(dtype).name}-mp{mp}-d{dil}-L{layers}"


@eqx.filter_jit
def _log_psi(model, x):
    return model(x)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_netket_parity_fast_slow_and_normalisation(case, getkey):
    kind, hil, dtype, mp, dil, layers = case
    n = _n_sites(kind)
    hi, nk_hi = HILBERTS[hil][0](n), HILBERTS[hil][1](n)
    kwargs = dict(hilbert=nk_hi, layers=layers, features=3, param_dtype=dtype, machine_pow=mp)
    kwargs.update(_hyper(kind, dil))
    nk_slow = getattr(nk.models, f"ARNN{kind}")(**kwargs)
    nk_fast = getattr(nk.models, f"FastARNN{kind}")(**kwargs)
    x = hi.random_state(getkey(), 8)
    with netket_promotion():
        params = randomize(nk_slow.init(getkey(), x)["params"], getkey(), scale=0.5)
    variables = {"params": params}

    slow = from_netket(nk_slow, variables)
    fast, state = from_netket(nk_fast, variables)
    assert type(slow).__name__ == f"ARNN{kind}" and type(fast).__name__ == f"FastARNN{kind}"
    assert tree_allclose(fast.to_slow(), slow, rtol=0)

    # parity with NetKet on the whole space: log psi, amplitudes (phases mod 2 pi) and
    # conditionals, to 1e-12
    nqt.assert_netket_parity(slow, nk_slow, variables, x=hi.all_states(), rtol=1e-12)

    # sum_x |psi(x)|^mp = 1 over the whole space
    nqt.assert_normalized(slow, rtol=1e-10)

    # fast step-by-step conditionals (and amplitudes) == slow conditionals
    nqt.assert_fast_matches_slow(fast, state, x, slow=slow, atol=1e-13)

    # and back to NetKet: the same module and the same parameters, bit for bit
    for model, nk_model in ((slow, nk_slow), (fast, nk_fast)):
        nk_back, variables_back = to_netket(model)
        assert tuple(nk_back.features) == (3,) * (layers - 1) + (hi.local_size,)
        assert nk_back.clone(features=nk_model.features, parent=None) == nk_model
        assert tree_allclose(variables_back, variables, rtol=0)


def _layer_deps(kind, hyper, n, exclusive, lattice_shape):
    if kind == "Dense":
        return dense_deps(n, exclusive)
    if kind == "Conv1D":
        return conv1d_deps(n, hyper["kernel_size"], hyper["kernel_dilation"], exclusive)
    return conv2d_deps(*lattice_shape, hyper["kernel_size"], hyper["kernel_dilation"], exclusive)


@pytest.mark.parametrize(
    "kind, hyper, layers, lattice_shape",
    [
        ("Dense", {}, 2, None),
        ("Conv1D", dict(kernel_size=3, kernel_dilation=2), 2, None),
        ("Conv1D", dict(kernel_size=2, kernel_dilation=1), 3, None),
        ("Conv2D", dict(kernel_size=(2, 3), kernel_dilation=(1, 2)), 2, (3, 4)),
        ("Conv2D", dict(kernel_size=(3, 2), kernel_dilation=(2, 1)), 3, (4, 3)),
    ],
)
def test_autoregressive_jacobian(kind, hyper, layers, lattice_shape, getkey):
    """d conditionals_i / d x_j != 0 exactly where the composed layer masks allow it."""
    n = 12 if kind == "Conv2D" else 8
    hi = nqz.hilbert.Spin(0.5, n)
    extra = dict(lattice_shape=lattice_shape) if lattice_shape else {}
    cls = getattr(nqz.models, f"ARNN{kind}")
    model = cls(hi, layers=layers, features=3, key=getkey(), **hyper, **extra)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    model = eqx.combine(randomize(params, getkey(), scale=1.0), static)
    x = jax.random.normal(getkey(), (n,))
    jac = eqx.filter_jit(lambda m, x: jax.jacfwd(lambda y: m.conditionals_log_psi(y).real)(x))(
        model, x
    )
    pattern = (np.abs(np.asarray(jac)).sum(axis=1) > 1e-12).T  # [input site, output site]
    reach = _layer_deps(kind, hyper, n, True, lattice_shape).astype(int)
    for _ in range(layers - 1):
        reach = reach @ _layer_deps(kind, hyper, n, False, lattice_shape).astype(int)
    np.testing.assert_array_equal(pattern, reach > 0)
    assert not np.any(np.tril(pattern))  # output i never sees inputs at sites >= i


@pytest.mark.parametrize(
    "lattice_shape, kernel_size, dilation, dtype",
    [((2, 3), (2, 3), (1, 2), jnp.float64), ((3, 2), (3, 3), (1, 1), jnp.complex128)],
)
def test_rectangular_conv2d(lattice_shape, kernel_size, dilation, dtype, getkey):
    hi = nqz.hilbert.Spin(1, 6)
    fast, state = eqx.nn.make_with_state(nqz.models.FastARNNConv2D)(
        hi,
        2,
        3,
        kernel_size,
        dilation,
        param_dtype=dtype,
        lattice_shape=lattice_shape,
        key=getkey(),
    )
    params, static = eqx.partition(fast, eqx.is_inexact_array)
    fast = eqx.combine(randomize(params, getkey(), scale=1.0), static)
    nqt.assert_normalized(fast, rtol=1e-10)
    x = hi.all_states()[::37]
    nqt.assert_fast_matches_slow(fast, state, x, slow=fast.to_slow(), atol=1e-13)


def test_batch_axes(getkey):
    hi = nqz.hilbert.Spin(0.5, 5)
    model = nqz.models.ARNNConv1D(hi, 2, 3, kernel_size=2, key=getkey())
    x = hi.random_state(getkey(), (2, 3))
    out = _log_psi(model, x)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.reshape(-1), _log_psi(model, x.reshape(6, 5)), rtol=1e-14)
    single = _log_psi(model, x[0, 0])
    assert single.shape == ()
    np.testing.assert_allclose(single, out[0, 0], rtol=1e-14)
    assert jax.eval_shape(model.conditionals, x).shape == (2, 3, 5, 2)


# ------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------

SPIN4 = nqz.hilbert.Spin(0.5, 4)


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (nqz.models.ARNNDense, dict(layers=2, features=(3, 3, 2)), "layers=2"),
        (nqz.models.FastARNNDense, dict(layers=2, features=(3, 4)), "local_size=2"),
        (nqz.models.ARNNDense, dict(layers=0, features=3), "layers"),
        (nqz.models.ARNNConv1D, dict(layers=2, features=3, kernel_size=0), "kernel_size"),
        (
            nqz.models.FastARNNConv1D,
            dict(layers=2, features=3, kernel_size=2, kernel_dilation=0),
            "kernel_dilation",
        ),
        (nqz.models.ARNNConv2D, dict(layers=2, features=3, kernel_size=(2, -1)), "kernel_size"),
        (
            nqz.models.FastARNNConv2D,
            dict(layers=2, features=3, kernel_size=(2, 2), kernel_dilation=(0, 1)),
            "kernel_dilation",
        ),
        (
            nqz.models.ARNNConv2D,
            dict(layers=2, features=3, kernel_size=(2, 2), lattice_shape=(3, 2)),
            "lattice_shape",
        ),
        (
            nqz.models.ARNNConv1D,
            dict(layers=2, features=3, kernel_size=2, machine_pow=0),
            "machine_pow",
        ),
    ],
)
def test_bad_hyperparameters(cls, kwargs, match, getkey):
    with pytest.raises(ValueError, match=match):
        eqx.nn.make_with_state(cls)(SPIN4, key=getkey(), **kwargs)


def test_conv2d_needs_lattice_shape_when_not_square(getkey):
    with pytest.raises(ValueError, match="lattice_shape"):
        nqz.models.ARNNConv2D(nqz.hilbert.Spin(0.5, 6), 2, 3, (2, 2), key=getkey())


@pytest.mark.parametrize("cls", [nqz.models.ARNNDense, nqz.models.FastARNNDense])
def test_constrained_and_continuous_spaces(cls, getkey):
    # sum constraints are enforced by the AR base (tests/test_constrained.py)
    hilbert = nqz.hilbert.Spin(0.5, 4, total_sz=0)
    model, _ = eqx.nn.make_with_state(cls)(hilbert, 2, 3, key=getkey())
    assert model.hilbert.constrained
    with pytest.raises(TypeError, match="discrete"):
        cls(nqz.hilbert.Particles(3, 2.0), 2, 3, key=getkey())


def test_conditional_without_state(getkey):
    model, state = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(SPIN4, 2, 3, 2, key=getkey())
    x = jnp.ones(4, jnp.int8)
    with pytest.raises(TypeError, match="make_with_state"):
        model.conditional(x, 0, None)
    p, state = model.conditional(x, 0, state)
    assert p.shape == (2,)


def test_wrong_input_width(getkey):
    model = nqz.models.ARNNConv1D(SPIN4, 2, 3, 2, key=getkey())
    with pytest.raises(TypeError):
        model(jnp.ones((3, 5)))
    with pytest.raises(TypeError):
        model.conditionals(jnp.ones((5,)))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64])
@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (nqz.models.FastARNNDense, {}),
        (nqz.models.FastARNNConv1D, dict(kernel_size=3)),
        (nqz.models.FastARNNConv2D, dict(kernel_size=(2, 3))),
    ],
)
def test_single_precision_stays_single(cls, kwargs, dtype, getkey):
    """With x64 on, float32/complex64 parameters give float32/complex64 parameters, caches,
    log-amplitudes, conditionals, gradients and sampler log-probabilities: nothing promotes."""
    real = jnp.finfo(dtype).dtype
    fast, state = eqx.nn.make_with_state(cls)(
        SPIN4, 2, 3, param_dtype=dtype, key=getkey(), **kwargs
    )
    params = jax.tree.leaves(eqx.filter(fast, eqx.is_inexact_array))
    assert {p.dtype for p in params} == {jnp.dtype(dtype)}
    assert {leaf.dtype for leaf in jax.tree.leaves(state)} == {jnp.dtype(dtype)}
    x = SPIN4.random_state(getkey(), 5)
    for model in (fast, fast.to_slow()):
        assert model(x).dtype == dtype
        assert model.conditionals(x).dtype == real
        grads = eqx.filter_grad(lambda m: jnp.sum(m(x).real))(model)
        assert {g.dtype for g in jax.tree.leaves(grads)} == {jnp.dtype(dtype)}
    p, _ = fast.conditional(x[0], 1, jax.tree.map(jnp.copy, state))  # eager set retires it
    assert p.dtype == real
    samples, log_prob = nqz.sample(fast, 7, key=getkey(), state=state, return_log_prob=True)
    assert log_prob.dtype == real
    np.testing.assert_allclose(log_prob, 2 * fast(samples).real, rtol=1e-5)


@pytest.mark.parametrize("cls", [nqz.models.ARNNConv1D, nqz.models.FastARNNConv1D])
def test_netket_space_names_its_converter(cls, getkey):
    import netket as nk

    with pytest.raises(TypeError, match="hilbert_from_netket"):
        cls(nk.hilbert.Spin(0.5, 4), 2, 3, 3, key=getkey())

"""VMC estimators: the gradient is the exact gradient (autodiff and finite differences of the
exact energy) for real, holomorphic and non-holomorphic parameters; the natural gradient
equals a dense (S + eps)^-1 g in both forms and NetKet's SR update; float32 models solve in
float64; non-finite samples are reported; the sample axis can be sharded; bad input."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest

import nqzoo.hilbert as hilbert
import nqzoo.lattice as lattice
import nqzoo.models as models
import nqzoo.operators as operators
import nqzoo.vmc as vmc
from nqzoo.interop.netket import to_netket

from .helpers import netket_promotion


class NonHolomorphic(eqx.Module):
    """A complex model that is not holomorphic in its parameters:
    log ψ = Σ log cosh(x W) + 0.1 Σ |x W|^2."""

    kernel: jax.Array

    def __call__(self, x):
        theta = jnp.asarray(x).astype(self.kernel.dtype) @ self.kernel
        return jnp.sum(jnp.log(jnp.cosh(theta)) + 0.1 * jnp.abs(theta).astype(theta.dtype) ** 2, -1)


class NaNAt(eqx.Module):
    """The wrapped model, NaN where the first two spins are up."""

    model: eqx.Module

    def __call__(self, x):
        bad = (x[..., 0] > 0) & (x[..., 1] > 0)
        log_psi = self.model(x)
        return jnp.where(bad, jnp.full_like(log_psi, jnp.nan), log_psi)


N = 4
HI = hilbert.Spin(0.5, N)
H = operators.Ising(HI, lattice.Chain(N), h=0.8, J=1.0)
X_ALL = HI.all_states()


def _samples(n, seed):
    """n random configurations (NumPy: no compilation per sample count)."""
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.choice(np.array([1, -1], np.int8), size=(n, N)))


def _randomize(model, seed, scale):
    """Random parameters (NumPy: no compilation per shape)."""
    rng = np.random.default_rng(seed)

    def leaf(p):
        if not eqx.is_inexact_array(p):
            return p
        values = rng.normal(size=p.shape) + (
            1j * rng.normal(size=p.shape) if jnp.iscomplexobj(p) else 0
        )
        return jnp.asarray(scale * values, p.dtype)

    return jax.tree.map(leaf, model)


def _zeros(key, shape, dtype):
    return jnp.zeros(shape, dtype)


def _model(kind, seed=0):
    """A small model with random parameters (set by NumPy: no compilation per shape)."""
    key, zero = jax.random.key(seed), {"kernel_init": _zeros, "hidden_bias_init": _zeros}
    rbm = dict(zero, visible_bias_init=_zeros)
    if kind == "real":
        model = models.RBM(HI, alpha=2, key=key, **rbm)
    elif kind == "float32":
        model = models.RBM(HI, alpha=2, param_dtype=jnp.float32, key=key, **rbm)
    elif kind == "holomorphic":
        model = models.RBM(HI, alpha=2, param_dtype=jnp.complex128, key=key, **rbm)
    elif kind == "modphase":  # real parameters, complex log ψ
        model = models.RBMModPhase(HI, alpha=1, key=key, **zero)
    elif kind == "nonholomorphic":
        model = NonHolomorphic(jnp.zeros((N, 3), jnp.complex128))
    return _randomize(model, seed, 0.4)


def _real_view(model):
    """The parameters as one real vector (complex leaves as real and imaginary parts) and
    `log ψ` as a function of it: an implementation independent of nqzoo.vmc's."""
    params, static = eqx.partition(model, eqx.is_inexact_array)
    split = jax.tree.map(lambda p: (p.real, p.imag) if jnp.iscomplexobj(p) else p, params)
    flat, unravel = jax.flatten_util.ravel_pytree(split)
    is_pair = lambda p: isinstance(p, tuple)  # noqa: E731

    def log_psi(vec, x):
        tree = jax.tree.map(
            lambda p: jax.lax.complex(*p) if is_pair(p) else p, unravel(vec), is_leaf=is_pair
        )
        return eqx.combine(tree, static)(x)

    def flatten(tree):  # a pytree like params -> the real vector
        tree = jax.tree.map(lambda p: (p.real, p.imag) if jnp.iscomplexobj(p) else p, tree)
        return np.asarray(jax.flatten_util.ravel_pytree(tree)[0])

    return np.asarray(flat), log_psi, flatten


@pytest.mark.parametrize("kind", ["real", "holomorphic", "modphase", "nonholomorphic"])
def test_energy_and_grad_is_the_exact_gradient(kind):
    """With x = every state and weights |ψ|^2 the estimate is the exact energy, and its
    gradient (dE/da + i dE/db for a complex leaf a + ib) the derivative of the exact energy:
    central finite differences along random directions of the real parameters."""
    model = _model(kind)

    @eqx.filter_jit
    def estimate(m, chunk_size):
        weights = jnp.exp(2 * m(X_ALL).real)
        weights = weights / weights.sum()
        e_loc = operators.local_energy(m, H, X_ALL)
        return vmc.energy_and_grad(m, X_ALL, e_loc, weights, chunk_size=chunk_size)

    energy, grads = estimate(model, None)
    # 16 states in chunks of 5: the last chunk is padded
    if kind in ("real", "nonholomorphic"):
        for g, gc in zip(jax.tree.leaves(grads), jax.tree.leaves(estimate(model, 5)[1])):
            np.testing.assert_allclose(gc, g, rtol=1e-12, atol=1e-14)
    params = eqx.filter(model, eqx.is_inexact_array)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params)):
        assert g.dtype == p.dtype and g.shape == p.shape
    # Finite differences of the exact energy along random directions: the real vector g
    # (complex leaves split) has dE = g . dθ.
    flat, log_psi, flatten = _real_view(model)
    dense = jnp.asarray(H.to_dense())

    @jax.jit
    def energies_at(vecs):
        psi = jnp.exp(jax.vmap(lambda v: log_psi(v, X_ALL))(vecs).astype(jnp.complex128))
        h_psi = psi @ dense.astype(psi.dtype)  # H is real symmetric
        return jnp.sum(psi.conj() * h_psi, -1).real / jnp.sum(jnp.abs(psi) ** 2, -1)

    g = flatten(grads)
    v = np.random.default_rng(0).normal(size=(2,) + flat.shape)
    step = 1e-5
    vecs = np.concatenate([flat[None], flat + step * v, flat - step * v])
    e = np.asarray(energies_at(jnp.asarray(vecs)))
    assert float(energy.real) == pytest.approx(e[0], rel=1e-12)
    assert abs(float(energy.imag)) < 1e-12
    fd = (e[1:3] - e[3:]) / (2 * step)
    np.testing.assert_allclose(fd, v @ g, rtol=1e-6, atol=1e-8)  # O(step^2) error


def _reference_sr(model, x, e_loc, diag_shift, weights=None):
    """(S + eps)^-1 g over the real parameters, from a forward-mode Jacobian."""
    flat, log_psi, _ = _real_view(model)
    jacobian = jax.jit(jax.jacfwd(lambda v: log_psi(v, x).astype(jnp.complex128)))
    o = np.asarray(jacobian(jnp.asarray(flat)))
    w = np.full(len(x), 1 / len(x)) if weights is None else np.asarray(weights)
    e_loc = np.asarray(e_loc)
    do = o - w @ o
    de = e_loc - w @ e_loc
    s = (do.conj().T * w) @ do
    g = 2 * ((do.conj().T * w) @ de).real
    return np.linalg.solve(s.real + diag_shift * np.eye(len(flat)), g)


SR_CASES = [  # (model, holomorphic, method, samples, chunk_size, weighted); P = 44 or 88
    ("real", False, "sr", 64, None, False),
    ("real", False, "auto", 8, 3, True),  # minSR
    ("holomorphic", True, "minsr", 12, None, True),
    ("holomorphic", False, "auto", 64, 5, False),  # 128 rows > 88: SR
    ("modphase", False, "minsr", 12, None, False),
    ("nonholomorphic", False, "sr", 10, None, False),
    ("real", False, "cg", 8, 3, True),
    ("modphase", False, "cg", 12, None, False),
]


@pytest.mark.parametrize("case", SR_CASES, ids=lambda c: "-".join(map(str, c)))
def test_natural_gradient_equals_dense_reference(case):
    kind, holomorphic, method, n_samples, chunk_size, weighted = case
    model = _model(kind, seed=3)
    x = _samples(n_samples, 4)
    e_loc = operators.local_energy(model, H, x)
    weights = None
    if weighted:
        weights = jnp.asarray(np.random.default_rng(5).uniform(0.1, 1.1, n_samples))
        weights = weights / weights.sum()
    diag_shift = 1e-2
    cg = {"cg_tol": 1e-12} if method == "cg" else {}
    energy, delta, info = vmc.natural_gradient(
        model, x, e_loc, diag_shift, chunk_size,
        weights=weights, method=method, holomorphic=holomorphic, return_info=True, **cg,
    )  # fmt: skip
    assert (int(info.n_iterations) > 0) == (method == "cg")
    expected = _reference_sr(model, x, e_loc, diag_shift, weights)
    w = np.full(n_samples, 1 / n_samples) if weights is None else np.asarray(weights)
    assert complex(energy) == pytest.approx(complex(w @ np.asarray(e_loc)), rel=1e-12)
    _, _, flatten = _real_view(model)
    np.testing.assert_allclose(flatten(delta), expected, rtol=1e-9, atol=1e-11)
    if method == "cg":  # from the solution, nothing left to do
        _, again, info = vmc.natural_gradient(
            model, x, e_loc, diag_shift, chunk_size, weights=weights, method="cg",
            cg_tol=1e-8, x0=delta, return_info=True,
        )  # fmt: skip
        assert int(info.n_iterations) == 0
        np.testing.assert_array_equal(flatten(again), flatten(delta))
    params = eqx.filter(model, eqx.is_inexact_array)
    assert jax.tree.structure(delta) == jax.tree.structure(params)
    for d, p in zip(jax.tree.leaves(delta), jax.tree.leaves(params)):
        assert d.dtype == p.dtype and d.shape == p.shape


@pytest.mark.parametrize("kind", ["real", "holomorphic"])
def test_natural_gradient_equals_netket_sr(kind):
    """NetKet's VMC driver with the SR preconditioner applies `SR(vstate, grad)` to the
    gradient of `expect_and_grad`: the same computation on the same samples."""
    model = _model(kind, seed=7)
    n_samples, diag_shift = 32, 1e-2  # 32 samples < 44 parameters: minSR on nqzoo's side
    x = _samples(n_samples, 8)
    module, variables = to_netket(model)
    nk_hi = nk.hilbert.Spin(0.5, N)
    nk_h = nk.operator.IsingJax(nk_hi, nk.graph.Chain(N), h=0.8, J=1.0)
    e_loc = operators.local_energy(model, H, x)
    energy, grads = vmc.energy_and_grad(model, x, e_loc)
    with netket_promotion():
        sampler = nk.sampler.MetropolisLocal(nk_hi, n_chains=n_samples)
        state = nk.vqs.MCState(sampler, module, variables=variables, n_samples=n_samples)
        state._samples = jnp.asarray(x, jnp.float64).reshape(n_samples, 1, N)  # fixed samples
        nk_energy, nk_grad = state.expect_and_grad(nk_h)
    assert complex(energy) == pytest.approx(complex(nk_energy.mean), rel=1e-12)
    paths = {"kernel": ("Dense", "kernel"), "hidden_bias": ("Dense", "bias"),
             "visible_bias": ("visible_bias",)}  # fmt: skip

    def leaf(tree, path):
        for key in path:
            tree = tree[key]
        return tree

    for name, path in paths.items():
        np.testing.assert_allclose(getattr(grads, name), leaf(nk_grad, path), rtol=1e-11,
                                   atol=1e-13)  # fmt: skip
    for holomorphic in (False, True) if kind == "holomorphic" else (False,):
        with netket_promotion():
            sr = nk.optimizer.SR(
                nk.optimizer.qgt.QGTJacobianDense,
                solver=nk.optimizer.solver.cholesky,
                diag_shift=diag_shift,
                holomorphic=holomorphic,
            )
            nk_delta = sr(state, nk_grad)
        _, delta = vmc.natural_gradient(model, x, e_loc, diag_shift, holomorphic=holomorphic)
        for name, path in paths.items():
            np.testing.assert_allclose(getattr(delta, name), leaf(nk_delta, path), rtol=1e-9,
                                       atol=1e-11)  # fmt: skip


class Twin(eqx.Module):
    """log ψ = x·(c a + d b) with float32 constants c = 0.1, d = 0.3: a Jacobian (c x, d x)
    computed exactly in float32 and a singular S (along d a - c b), so that only a float64
    solve gets the shifted system right."""

    a: jax.Array
    b: jax.Array

    def __call__(self, x):
        x = jnp.asarray(x).astype(self.a.dtype)
        return jnp.float32(0.1) * (x @ self.a) + jnp.float32(0.3) * (x @ self.b)


def test_float32_model_solves_in_float64():
    model = _model("float32", seed=9)
    x = _samples(16, 10)
    e_loc = operators.local_energy(model, H, x)
    assert e_loc.dtype == jnp.float64  # float64 matrix elements promote
    energy, grads = vmc.energy_and_grad(model, x, e_loc.astype(jnp.float32))
    assert energy.dtype == jnp.float32
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))

    twin = Twin(jnp.full(N, 0.1, jnp.float32), jnp.full(N, -0.2, jnp.float32))
    e_loc = jnp.arange(16, dtype=jnp.float32) / 4 - 2  # exact in float32
    diag_shift = 1e-8
    for method in ("sr", "minsr"):
        _, delta = vmc.natural_gradient(twin, x, e_loc, diag_shift, method=method)
        assert delta.a.dtype == jnp.float32
        x64 = np.asarray(x, np.float64)
        o = np.concatenate([np.float32(0.1) * x64, np.float32(0.3) * x64], axis=1)
        do = o - o.mean(0)
        de = np.asarray(e_loc, np.float64) - np.asarray(e_loc, np.float64).mean()
        s = do.T @ do / len(x) + diag_shift * np.eye(2 * N)
        expected = np.linalg.solve(s, 2 * do.T @ de / len(x))
        got = np.concatenate([delta.a, delta.b])
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * abs(expected).max())
    # ... which a float32 solve does not reach
    in_float32 = np.linalg.solve(s.astype(np.float32), (2 * do.T @ de / len(x)).astype(np.float32))
    assert np.abs(in_float32 - expected).max() > 1e-3 * np.abs(expected).max()


def test_nonfinite_samples_are_reported():
    model = NaNAt(_model("real", seed=11))
    x = X_ALL
    nan_log_psi = np.asarray((x[:, 0] > 0) & (x[:, 1] > 0))  # 4 of the 16 states
    e_loc = operators.local_energy(model, H, x)  # NaN there and at their neighbours
    bad = ~np.isfinite(np.asarray(e_loc))
    assert bad[nan_log_psi].all()
    n_bad = int(bad.sum())
    message = f"{n_bad} of 16 samples have a non-finite"
    # eager calls raise
    with pytest.raises(ValueError, match=message):
        vmc.energy_and_grad(model, x, e_loc)
    with pytest.raises(ValueError, match=message):
        vmc.natural_gradient(model, x, e_loc, 1e-2)
    # under jit: NaN energy and gradient, and the count
    gradient = eqx.filter_jit(lambda m, x, e: vmc.energy_and_grad(m, x, e, return_info=True))
    natural = eqx.filter_jit(lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-2, return_info=True))
    for estimator in (gradient, natural):
        energy, update, info = estimator(model, x, e_loc)
        assert np.isnan(float(energy)) and int(info.n_nonfinite) == n_bad
        assert all(np.isnan(np.asarray(u)).all() for u in jax.tree.leaves(update))
        # finite local energies do not hide a NaN log ψ
        e_finite = jnp.where(jnp.asarray(bad), 0.0, e_loc)
        assert int(estimator(model, x, e_finite)[-1].n_nonfinite) == 4
    # samples of weight 0 are left out: the estimate over the others is finite
    weights = jnp.where(jnp.asarray(bad), 0.0, 1.0 / (~bad).sum())
    energy, grads, info = vmc.energy_and_grad(model, x, e_loc, weights, return_info=True)
    assert int(info.n_nonfinite) == 0
    assert float(energy) == pytest.approx(float(np.mean(np.asarray(e_loc)[~bad])), rel=1e-12)
    _, delta = vmc.natural_gradient(model, x, e_loc, 1e-2, weights=weights)
    assert all(np.isfinite(np.asarray(u)).all() for u in jax.tree.leaves((grads, delta)))


@pytest.mark.parametrize(
    "call,error,match",
    [
        (lambda m, x, e: vmc.natural_gradient(m, x, e, -1e-3), ValueError, "diag_shift"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, float("nan")), ValueError, "diag_shift"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, True), ValueError, "diag_shift"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e[:-1], 1e-3), TypeError, "e_loc"),
        (lambda m, x, e: vmc.energy_and_grad(m, x, e[:-1]), TypeError, "e_loc"),
        (lambda m, x, e: vmc.energy_and_grad(m, x, e, e[:-1].real), TypeError, "weights"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-3, method="lu"), TypeError, "method"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-3, holomorphic=True), ValueError,
         r"holomorphic=True\) needs every parameter complex"),
        (lambda m, x, e: vmc.energy_and_grad(m, x, e, chunk_size=0), ValueError, "chunk_size"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-3, x0=m), ValueError, "x0 is the"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-3, method="cg", x0=_model("modphase")),
         ValueError, "x0 must be a pytree like"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-3, method="cg", cg_tol=0.0),
         ValueError, "cg_tol"),
        (lambda m, x, e: vmc.natural_gradient(m, x, e, 1e-3, method="cg", cg_maxiter=0),
         ValueError, "cg_maxiter"),
    ],
)  # fmt: skip
def test_bad_input(call, error, match):
    model = _model("real")
    x = _samples(8, 0)
    e_loc = jnp.linspace(-1.0, 1.0, 8)
    with pytest.raises(error, match=match):
        call(model, x, e_loc)


def test_bad_lengths_without_annotation_checks():
    import jaxtyping

    model = _model("real")
    x = _samples(8, 0)
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        with pytest.raises(ValueError, match=r"e_loc must have one entry per sample, shape \(8,\)"):
            vmc.natural_gradient(model, x, jnp.zeros(7), 1e-3)
    finally:
        jaxtyping.config.update("jaxtyping_disable", False)


# Two host devices: x and e_loc sharded along the sample axis (NamedSharding), the estimators
# jitted, compared with the unsharded results in the same process.
SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, equinox as eqx
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import nqzoo as nqz
    from tests.helpers import randomize

    assert jax.device_count() == 2
    hi = nqz.hilbert.Spin(0.5, 8)
    H = nqz.operators.Ising(hi, nqz.lattice.Chain(8), h=0.8)
    # a complex model with the real-imaginary split (2 x 64 rows < 304 parameters: minSR)
    model = nqz.models.RBM(hi, alpha=2, param_dtype=jnp.complex128, key=jax.random.key(0))
    model = randomize(model, jax.random.key(1), 0.3)
    x = hi.random_state(jax.random.key(2), 64)
    e_loc = nqz.operators.local_energy(model, H, x)
    mesh = Mesh(np.array(jax.devices()), ("samples",))
    rows = NamedSharding(mesh, P("samples"))
    xs, es = jax.device_put(x, rows), jax.device_put(e_loc, rows)
    assert not xs.sharding.is_fully_replicated

    @eqx.filter_jit
    def step(m, x, e):
        return (nqz.vmc.energy_and_grad(m, x, e, chunk_size=16),
                nqz.vmc.natural_gradient(m, x, e, 1e-2, 16))

    plain = step(model, x, e_loc)
    sharded = step(model, xs, es)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(sharded)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10 * np.abs(a).max())
    print("OK")
    """
)


def test_sharded_sample_axis_equals_unsharded():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", SHARDED], env=env, cwd=root, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "OK", result.stderr[-3000:]

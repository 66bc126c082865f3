"""The examples: TFIM local and exact energies, training steps, the README command."""

import functools
import pathlib
import subprocess
import sys

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nqzoo as nqz

from .helpers import netket_promotion


EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import tfim  # noqa: E402


# ------------------------------------------------------------------------------------
# An independent dense TFIM: Kronecker products of Pauli matrices, neighbours listed by
# hand.
# ------------------------------------------------------------------------------------

SX = np.array([[0.0, 1.0], [1.0, 0.0]])
# NetKet's order: local index 0 is spin +1, so sigma^z = diag(+1, -1).
SZ = np.diag([1.0, -1.0])


def _site_op(op, i, n):
    return functools.reduce(np.kron, [op if k == i else np.eye(2) for k in range(n)])


def _dense_tfim(n, neighbours, h, J=1.0):
    H = np.zeros((2**n, 2**n))
    for i, j in neighbours:
        H -= J * _site_op(SZ, i, n) @ _site_op(SZ, j, n)
    for i in range(n):
        H -= h * _site_op(SX, i, n)
    return H


def _chain_neighbours(n):
    return sorted({tuple(sorted((i, (i + 1) % n))) for i in range(n)})


def _lattice_neighbours(rows, cols):
    out = set()
    for r in range(rows):
        for c in range(cols):
            here = r * cols + c
            for other in (((r + 1) % rows) * cols + c, r * cols + (c + 1) % cols):
                if other != here:
                    out.add(tuple(sorted((here, other))))
    return sorted(out)


def _all_states(n):
    bits = (np.arange(2**n)[:, None] >> np.arange(n - 1, -1, -1)) & 1
    return (1 - 2 * bits).astype(np.int8)


# ------------------------------------------------------------------------------------
# Exact energies
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [4, 7, 10])
@pytest.mark.parametrize("h", [0.5, 1.0, 2.5])
def test_closed_form_matches_exact_diagonalisation(n, h):
    model = tfim.TFIM(lattice=(n,), h=h)
    closed = tfim.exact_energy_chain(n, h)
    lanczos = tfim.exact_energy_lanczos(model)
    assert abs(closed - lanczos) < 1e-9 * abs(closed)
    if n <= 7:
        dense = np.linalg.eigvalsh(_dense_tfim(n, _chain_neighbours(n), h))[0]
        assert abs(closed - dense) < 1e-9 * abs(closed)


@pytest.mark.parametrize("lattice", [(2, 3)])
def test_lanczos_matches_dense_on_lattices(lattice):
    h = 1.7
    model = tfim.TFIM(lattice=lattice, h=h)
    assert sorted(model.bonds) == _lattice_neighbours(*lattice)
    dense = np.linalg.eigvalsh(_dense_tfim(model.n_sites, _lattice_neighbours(*lattice), h))[0]
    assert abs(tfim.exact_energy_lanczos(model) - dense) < 1e-9 * abs(dense)
    assert tfim.exact_energy(model) == pytest.approx(dense, rel=1e-9)


def test_exact_energy_unknown_above_twenty_sites():
    assert tfim.exact_energy(tfim.TFIM(lattice=(5, 5), h=3.0)) is None
    # Chains always have the closed form, and the README's number is reproduced.
    assert tfim.exact_energy(tfim.TFIM(lattice=(20,), h=1.0)) == pytest.approx(
        -25.4909896864, abs=1e-9
    )


def test_parse_lattice():
    assert tfim.parse_lattice("20") == (20,)
    assert tfim.parse_lattice("4x5") == (4, 5)
    for bad in ("1", "4x", "2x2x2", "ax3"):
        with pytest.raises(ValueError, match="lattice"):
            tfim.parse_lattice(bad)


# ------------------------------------------------------------------------------------
# Local energy against a dense matrix, for a random wave function
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lattice, neighbours",
    [((8,), _chain_neighbours(8)), ((2, 4), _lattice_neighbours(2, 4))],
)
def test_local_energy_matches_dense(lattice, neighbours, getkey):
    n = int(np.prod(lattice))
    h = 0.7
    H = _dense_tfim(n, neighbours, h)
    # A random complex wave function given as a table over the 2^n configurations.
    k1, k2 = jax.random.split(getkey())
    re, im = 0.5 * jax.random.normal(k1, (2**n,)), 6 * jax.random.uniform(k2, (2**n,))
    table = jax.lax.complex(re, im)

    def log_psi(x):
        bits = (1 - jnp.asarray(x, jnp.int32)) // 2
        index = bits @ 2 ** jnp.arange(n - 1, -1, -1, dtype=jnp.int32)
        return table[index]

    x = _all_states(n)
    psi = np.exp(np.asarray(table))
    expected = (H @ psi) / psi
    model = tfim.TFIM(lattice=lattice, h=h)
    e_loc = jax.jit(model.local_energy, static_argnums=(0, 2))(log_psi, x, None)
    np.testing.assert_allclose(np.asarray(e_loc), expected, rtol=1e-10, atol=1e-10)
    chunked = model.local_energy(log_psi, x, chunk_size=64)
    np.testing.assert_allclose(np.asarray(chunked), expected, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------------
# Gradient estimator: exact when the samples are every configuration weighted by |psi|^2
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_gradient_estimator_is_the_exact_gradient(dtype, getkey):
    n, h = 5, 0.8
    hamiltonian = tfim.TFIM(lattice=(n,), h=h)
    H = jnp.asarray(_dense_tfim(n, _chain_neighbours(n), h))
    hi = nqz.hilbert.Spin(s=0.5, N=n)
    model, _ = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
        hi, layers=2, features=3, kernel_size=3, param_dtype=dtype, key=getkey()
    )
    model = jax.tree.map(
        lambda p: (
            p + 0.3 * jax.random.normal(getkey(), p.shape, p.dtype)
            if eqx.is_inexact_array(p)
            else p
        ),
        model,
    )
    x = jnp.asarray(_all_states(n))

    def exact_energy(m):
        psi = jnp.exp(m(x))
        return (jnp.vdot(psi, H.astype(psi.dtype) @ psi) / jnp.vdot(psi, psi)).real

    @eqx.filter_jit
    def estimator(m, chunk_size):
        weights = jnp.exp(2 * m(x).real)
        e_loc = hamiltonian.local_energy(m, x)
        return nqz.vmc.energy_and_grad(m, x, e_loc, weights=weights, chunk_size=chunk_size)

    energy, grads = estimator(model, None)
    _, grads_chunked = estimator(model, 7)  # 32 states: the last chunk is padded
    exact, exact_grad = eqx.filter_jit(eqx.filter_value_and_grad(exact_energy))(model)
    assert energy.real == pytest.approx(float(exact), rel=1e-12)
    # Descent direction for a complex parameter a + ib is dE/da + i dE/db =
    # conj(jax.grad).
    expected = jax.tree.map(jnp.conj, exact_grad)
    for g, gc, e in zip(*map(jax.tree.leaves, (grads, grads_chunked, expected))):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(gc), np.asarray(e), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_samples", [8, 96])  # fewer / more samples than parameters
def test_natural_gradient_solves_the_sr_equations(n_samples, getkey):
    n, diag_shift = 5, 1e-2
    hi = nqz.hilbert.Spin(s=0.5, N=n)
    model, _ = eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
        hi, layers=2, features=3, kernel_size=3, key=getkey()
    )
    x = hi.random_state(getkey(), n_samples)
    e_loc = jax.random.normal(getkey(), (n_samples,))
    natural_gradient = eqx.filter_jit(nqz.vmc.natural_gradient)
    energy, delta = natural_gradient(model, x, e_loc, diag_shift)
    _, delta_chunked = natural_gradient(model, x, e_loc, diag_shift, chunk_size=5)

    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    assert 8 < flat.size < 96
    o = jax.jacfwd(lambda f: eqx.combine(unravel(f), static)(x))(flat)  # (B, P)
    o = np.asarray(o) - np.asarray(o).mean(axis=0)
    centred = np.asarray(e_loc - e_loc.mean())
    s = o.T @ o / n_samples + diag_shift * np.eye(flat.size)
    f = o.T @ centred / n_samples
    expected = np.linalg.solve(s, f)
    assert float(energy) == pytest.approx(float(e_loc.mean()), rel=1e-12)
    for d in (delta, delta_chunked):
        got = np.asarray(jax.flatten_util.ravel_pytree(d)[0])
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


# ------------------------------------------------------------------------------------
# Short training runs lower the energy
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sr_diag_shift", [None, 1e-3])
def test_ground_state_training_lowers_energy(sr_diag_shift):
    import ground_state

    n = 6
    hamiltonian = tfim.TFIM(lattice=(n,), h=1.0)
    H = jnp.asarray(_dense_tfim(n, _chain_neighbours(n), 1.0))
    model, state = ground_state.build_model(
        (n,),
        layers=2,
        features=4,
        kernel_size=3,
        dilation=1,
        param_dtype=jnp.float64,
        key=jax.random.key(1),
    )
    x = jnp.asarray(_all_states(n))

    def exact_energy(m):
        psi = jnp.exp(m(x))
        return float((jnp.vdot(psi, H @ psi) / jnp.vdot(psi, psi)).real)

    optimiser = optax.adam(2e-2) if sr_diag_shift is None else optax.sgd(0.1)
    opt_state = tfim.init_optimiser(optimiser, model)
    step = tfim.make_train_step(hamiltonian, optimiser, 256, sr_diag_shift=sr_diag_shift)
    before = exact_energy(model)
    key = jax.random.key(2)
    with netket_promotion():  # optax's updates rely on implicit promotion
        for _ in range(25):
            key, sub = jax.random.split(key)
            model, opt_state, stats = step(model, state, opt_state, sub)
    after = exact_energy(model)
    e0 = tfim.exact_energy(hamiltonian)
    assert np.isfinite(float(stats["energy"]))
    assert after < before - 0.1 * abs(before - e0), (before, after, e0)
    assert after >= e0 - 1e-9  # variational bound


def test_netket_vmc_lowers_energy():
    pytest.importorskip("netket")
    import netket_vmc

    with netket_promotion():
        driver, vstate, hamiltonian, exact = netket_vmc.build(
            L=6, n_samples=512, lr=0.05, diag_shift=0.05, seed=3
        )
        H = hamiltonian.to_sparse()

        def exact_energy():
            psi = vstate.to_array()
            return float((psi.conj() @ (H @ psi)).real)

        before = exact_energy()
        driver.run(n_iter=15, show_progress=False)
        after = exact_energy()
    assert after < before - 0.2 * abs(before - exact), (before, after, exact)
    assert after >= exact - 1e-9


def test_helium_steps_run():
    pytest.importorskip("netket")
    import helium

    with netket_promotion():
        model = helium.make_model(seed=0)
        driver, vstate, hamiltonian = helium.build(
            "nqzoo", model, n_samples=32, n_chains=16, n_discard=2
        )
        driver.run(n_iter=2, show_progress=False)
        energy = vstate.expect(hamiltonian)
    assert np.isfinite(energy.mean.real) and np.isfinite(energy.error_of_mean)
    # The parameters moved, and the model stayed an nqzoo model.
    assert isinstance(vstate.model, nqz.models.DeepSetRelDistance)
    moved = jax.tree.map(
        lambda a, b: bool(jnp.any(a != b)),
        eqx.filter(vstate.model, eqx.is_array),
        eqx.filter(model, eqx.is_array),
    )
    assert any(jax.tree.leaves(moved))


# ------------------------------------------------------------------------------------
# The README's main command starts
# ------------------------------------------------------------------------------------


def test_ground_state_script_runs():
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "ground_state.py"),
            "--lattice",
            "4",
            "--steps",
            "3",
            "--samples",
            "64",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    final = [line for line in lines if line.startswith("final energy:")]
    assert len(final) == 1 and "±" in final[0]
    assert any(line.startswith("exact energy: ") for line in lines)
    assert any(line.startswith("relative error: ") for line in lines)

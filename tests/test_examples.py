"""The examples: the ground-state script on every Hamiltonian, model and sampler it offers
(short runs, in this process), its command line, the README command, the NetKet examples."""

import pathlib
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nqzoo as nqz

from .helpers import netket_promotion


EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import ground_state  # noqa: E402


def _run(*argv):
    with netket_promotion():  # optax's updates rely on implicit promotion
        return ground_state.main(list(argv))


def test_parse_lattice():
    assert ground_state.parse_lattice("20") == (20,)
    assert ground_state.parse_lattice("4x5") == (4, 5)
    for bad in ("1", "4x", "2x2x2", "ax3"):
        with pytest.raises(ValueError, match="lattice"):
            ground_state.parse_lattice(bad)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "rbm", "--sampler", "exact"], "autoregressive"),
        (["--model", "rbm", "--samples", "100", "--chains", "16"], "multiple of --chains"),
    ],
)
def test_parse_args_refuses(argv, message, capsys):
    with pytest.raises(SystemExit):
        ground_state.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, rel_tol",
    [
        # the default run (flip-symmetric RBMSymm, Metropolis, SR) on a short chain
        (["--lattice", "6", "--steps", "40", "--samples", "256"], 1e-2),
        # the fast ARNN with exact sampling
        (["--lattice", "6", "--model", "arnn", "--steps", "40", "--samples", "256"], 1e-2),
        # RBM and Metropolis exchange on the Heisenberg chain (magnetisation zero)
        (
            [
                "--hamiltonian",
                "heisenberg",
                "--lattice",
                "6",
                "--model",
                "rbm",
                "--steps",
                "40",
                "--samples",
                "256",
            ],
            1e-2,
        ),
        # J1-J2 on a small periodic lattice, MLP with Metropolis exchange up to d = 2
        (
            [
                "--hamiltonian",
                "j1j2",
                "--lattice",
                "2x4",
                "--model",
                "mlp",
                "--steps",
                "5",
                "--samples",
                "64",
            ],
            None,
        ),
    ],
)
def test_ground_state_runs_and_converges(argv, rel_tol, capsys):
    energy, error, exact = _run(*argv)
    out = capsys.readouterr().out
    assert exact is not None and np.isfinite(energy) and np.isfinite(error) and error > 0
    assert any(line.startswith("relative error: ") for line in out.splitlines())
    if rel_tol is not None:
        # close to the ground state, and not below it by more than the statistics allow
        assert abs(energy - exact) < rel_tol * abs(exact), (energy, exact)
        assert energy > exact - 5 * error - 1e-9, (energy, error, exact)


def test_default_models_and_presets():
    tfim = ground_state.parse_args(["--lattice", "32"])
    assert (tfim.model, tfim.sampler, tfim.alpha, tfim.spin_flip) == (
        "rbmsymm",
        "metropolis",
        4,
        True,
    )
    assert (tfim.samples, tfim.chains, tfim.warmup) == (2048, 256, 30)
    # fewer samples than the preset's chains: as many chains as divide them
    assert ground_state.parse_args(["--samples", "96"]).chains == 32
    with pytest.raises(SystemExit):  # an explicit --chains is never changed
        ground_state.parse_args(["--samples", "96", "--chains", "64"])
    heisenberg = ground_state.parse_args(["--hamiltonian", "heisenberg"])
    assert (heisenberg.model, heisenberg.sampler, heisenberg.alpha) == ("arnn", "exact", 2)


def test_flip_symmetric_rbmsymm_is_invariant():
    args = ground_state.parse_args(["--lattice", "8"])
    operator = ground_state.build_hamiltonian("tfim", nqz.lattice.Chain(8), h=1.0, j2=0.0)
    model, _ = ground_state.build_model("rbmsymm", operator.hilbert, (8,), args, jax.random.key(2))
    assert model.visible_bias is None and model.hidden_bias is None
    x = operator.hilbert.all_states()
    log_psi = model(x)
    np.testing.assert_allclose(model(-x), log_psi, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(model(jnp.roll(x, 3, axis=1)), log_psi, rtol=1e-13, atol=1e-13)
    # with the biases (--no-spin-flip) the flip is no longer a symmetry
    args = ground_state.parse_args(["--lattice", "8", "--no-spin-flip"])
    biased, _ = ground_state.build_model("rbmsymm", operator.hilbert, (8,), args, jax.random.key(2))
    assert not np.allclose(biased(-x), biased(x))


def test_ground_state_exact_energies_are_the_references():
    lattice = nqz.lattice.Chain(20)
    tfim = ground_state.build_hamiltonian("tfim", lattice, h=1.0, j2=0.0)
    # the README's number: the closed form of the periodic chain
    assert ground_state.exact_energy("tfim", tfim)[0] == pytest.approx(-25.4909896864, abs=1e-9)
    heisenberg = ground_state.build_hamiltonian("heisenberg", nqz.lattice.Chain(12), h=0, j2=0)
    assert heisenberg.hilbert.constrained and heisenberg.sign_rule
    dense = np.linalg.eigvalsh(heisenberg.to_dense())[0]
    assert ground_state.exact_energy("heisenberg", heisenberg)[0] == pytest.approx(dense, rel=1e-10)


def test_ground_state_saves_the_model(tmp_path, capsys):
    path = tmp_path / "model.eqx"
    _run("--lattice", "4", "--steps", "2", "--samples", "32", "--save", str(path))
    args = ground_state.parse_args(["--lattice", "4"])
    operator = ground_state.build_hamiltonian("tfim", nqz.lattice.Chain(4), h=1.0, j2=0.0)
    like, _ = ground_state.build_model(args.model, operator.hilbert, (4,), args, jax.random.key(5))
    loaded = eqx.tree_deserialise_leaves(path, like)
    x = operator.hilbert.all_states()
    assert jnp.isfinite(loaded(x)).all()
    assert not jnp.allclose(loaded(x), like(x))  # the trained parameters, not the template


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

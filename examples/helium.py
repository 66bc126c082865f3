"""1D helium-4 with nqzoo's DeepSetRelDistance in NetKet's continuous-space machinery.

NetKet's helium setup: N = 10 atoms on a periodic line at density 0.3 / Å, lengths
in units of the Aziz minimum r_m = 2.9673 Å (so the box is L = N / (0.3 r_m)), the
Aziz (HFDHE2) pair potential, kinetic energy with mass 1, a DeepSetRelDistance with a
two-body cusp of exponent 5, Metropolis moves with Gaussian steps, VMC with stochastic
reconfiguration.

The same run is made twice from the same parameters: once with the nqzoo model
(an Equinox module handed to `nk.vqs.MCState` as it is) and once with NetKet's own
`nk.models.DeepSetRelDistance` obtained from it with `nqzoo.interop.netket.to_netket`.

    python examples/helium.py                      # both models, 100 steps each
    python examples/helium.py --model nqzoo --steps 500
"""

import argparse
import time

import jax


jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import netket as nk  # noqa: E402

import nqzoo as nqz  # noqa: E402
from nqzoo.interop.netket import to_netket  # noqa: E402


N_ATOMS = 10
DENSITY = 0.3  # atoms per Å
R_M = 2.9673  # Å, position of the minimum of the Aziz potential
BOX = N_ATOMS / (DENSITY * R_M)  # box length in units of r_m

# Aziz et al. (HFDHE2) parameters, in NetKet's units (lengths in r_m).
AZIZ = dict(
    eps=7.846373,
    A=0.544850e6,
    alpha=13.353384,
    c6=1.37332412,
    c8=0.4253785,
    c10=0.178100,
    D=1.241314,
)


def pair_distances(x: jax.Array, box: float = BOX) -> jax.Array:
    """Minimum-image distances |x_i - x_j|, i < j, of one 1D configuration."""
    n = x.shape[-1]
    i, j = jnp.triu_indices(n, 1)
    dx = x[i] - x[j]
    dx = dx - box * jnp.round(dx / box)
    return jnp.abs(dx)


def aziz(r: jax.Array) -> jax.Array:
    r"""Aziz pair potential $V(r) = \epsilon\,[A e^{-\alpha r} - F(r)\,(c_6 r^{-6}
    + c_8 r^{-8} + c_{10} r^{-10})]$ with the damping $F(r) = e^{-(D/r - 1)^2}$ for
    $r < D$ and 1 beyond ($r$ in units of $r_m$)."""
    p = AZIZ
    damping = jnp.where(r < p["D"], jnp.exp(-((p["D"] / r - 1.0) ** 2)), 1.0)
    dispersion = p["c6"] / r**6 + p["c8"] / r**8 + p["c10"] / r**10
    return p["eps"] * (p["A"] * jnp.exp(-p["alpha"] * r) - damping * dispersion)


def potential_energy(x: jax.Array) -> jax.Array:
    """Total Aziz energy of one configuration `x` of shape `(N,)`."""
    return jnp.sum(aziz(pair_distances(x)))


def make_model(seed: int = 0) -> nqz.models.DeepSetRelDistance:
    """nqzoo's DeepSetRelDistance with the layer sizes of NetKet's helium example."""
    box = nqz.hilbert.Particles(N=N_ATOMS, L=(BOX,), pbc=True)
    return nqz.models.DeepSetRelDistance(
        box,
        layers_phi=2,
        layers_rho=3,
        features_phi=(16, 16),
        features_rho=(16, 16, 1),
        cusp_exponent=5,
        key=jax.random.key(seed),
    )


def build(
    kind: str,
    model: nqz.models.DeepSetRelDistance,
    *,
    n_samples: int = 1024,
    n_chains: int = 16,
    n_discard: int = 32,
    lr: float = 1e-3,
    diag_shift: float = 0.01,
    seed: int = 0,
):
    """The VMC driver, variational state and Hamiltonian for `kind` = "nqzoo" or
    "netket".

    Both kinds start from the parameters of `model`: "nqzoo" uses it directly, "netket"
    converts it with `to_netket`. The sampler seed and every setting are the same.
    """
    nk_module, variables = to_netket(model)
    hilbert = nk_module.hilbert  # NetKet's Particle space equal to model.hilbert
    sampler = nk.sampler.MetropolisGaussian(hilbert, sigma=0.05, n_chains=n_chains)
    hamiltonian = nk.operator.KineticEnergy(hilbert, mass=1.0) + nk.operator.PotentialEnergy(
        hilbert, potential_energy
    )
    common = dict(
        n_samples=n_samples,
        n_discard_per_chain=n_discard,
        seed=seed,
        sampler_seed=seed + 1,
    )
    if kind == "nqzoo":
        vstate = nk.vqs.MCState(sampler, model, **common)
    elif kind == "netket":
        vstate = nk.vqs.MCState(sampler, nk_module, variables=variables, **common)
    else:
        raise ValueError(f"kind must be 'nqzoo' or 'netket', got {kind!r}.")
    driver = nk.driver.VMC(
        hamiltonian,
        nk.optimizer.Sgd(lr),
        variational_state=vstate,
        preconditioner=nk.optimizer.SR(diag_shift=diag_shift),
    )
    return driver, vstate, hamiltonian


def run(
    kind: str,
    model,
    steps: int,
    *,
    eval_samples: int = 8192,
    show_progress=True,
    **kwargs,
):
    """Train for `steps` and return `(energy, error, seconds)` of a final estimate with
    `eval_samples` samples."""
    driver, vstate, hamiltonian = build(kind, model, **kwargs)
    start = time.perf_counter()
    driver.run(n_iter=steps, show_progress=show_progress)
    vstate.n_samples = eval_samples
    stats = vstate.expect(hamiltonian)
    return (
        float(stats.mean.real),
        float(stats.error_of_mean),
        time.perf_counter() - start,
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["both", "nqzoo", "netket"], default="both")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--eval-samples", type=int, default=4096)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--diag-shift", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    model = make_model(args.seed)
    kinds = ["nqzoo", "netket"] if args.model == "both" else [args.model]
    print(
        f"1D helium: N={N_ATOMS}, L={BOX:.6f} r_m, DeepSetRelDistance (cusp 5), "
        f"{args.samples} samples/step, {args.steps} steps of SGD({args.lr}) + "
        f"SR({args.diag_shift}), seed {args.seed}"
    )
    results = {}
    for kind in kinds:
        energy, error, seconds = run(
            kind,
            model,
            args.steps,
            eval_samples=args.eval_samples,
            n_samples=args.samples,
            lr=args.lr,
            diag_shift=args.diag_shift,
            seed=args.seed,
        )
        results[kind] = (energy, error)
        print(
            f"{kind:>6} model: final energy {energy:.5f} ± {error:.5f} "
            f"(per atom {energy / N_ATOMS:.5f}), {seconds:.1f} s"
        )
    if len(results) == 2:
        (e1, s1), (e2, s2) = results["nqzoo"], results["netket"]
        print(f"difference: {e1 - e2:+.5f} ± {(s1**2 + s2**2) ** 0.5:.5f}")
    return results


if __name__ == "__main__":
    main()

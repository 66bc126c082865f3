"""An nqzoo RBM trained by NetKet: MCState, MetropolisLocal, Heisenberg, VMC with SR.

nqzoo models are Equinox modules with a batched `__call__`, which is all NetKet
needs: the model goes into `nk.vqs.MCState` as it is (NetKet takes its array leaves as
the parameters).

    python examples/netket_vmc.py               # Heisenberg chain, 16 sites, 300 steps
    python examples/netket_vmc.py --L 10 --steps 100
"""

import argparse
import time

import jax


jax.config.update("jax_enable_x64", True)

import netket as nk  # noqa: E402

import nqzoo as nqz  # noqa: E402


def build(
    L: int = 16,
    alpha: int = 1,
    n_samples: int = 1008,
    lr: float = 0.05,
    diag_shift: float = 0.01,
    seed: int = 0,
):
    """The Heisenberg chain, an nqzoo RBM in an MCState and NetKet's VMC driver with SR.

    **Returns:** `(driver, vstate, hamiltonian, exact)`, `exact` the Lanczos
    ground-state energy for `L <= 16`, else `None`.
    """
    graph = nk.graph.Chain(L, pbc=True)
    # The sampler needs a NetKet Hilbert space; the nqzoo model its nqzoo twin (the same
    # local states, [+1, -1]).
    nk_hilbert = nk.hilbert.Spin(s=0.5, N=L)
    # NetKet's Heisenberg applies the Marshall sign rule on a bipartite chain, so the
    # ground
    # state is positive and a real RBM can represent it.
    hamiltonian = nk.operator.Heisenberg(nk_hilbert, graph)
    model = nqz.models.RBM(nqz.hilbert.Spin(s=0.5, N=L), alpha=alpha, key=jax.random.key(seed))
    sampler = nk.sampler.MetropolisLocal(nk_hilbert, n_chains=16)
    vstate = nk.vqs.MCState(
        sampler,
        model,
        n_samples=n_samples,
        n_discard_per_chain=16,
        seed=seed,
        sampler_seed=seed + 1,
    )
    driver = nk.driver.VMC(
        hamiltonian,
        nk.optimizer.Sgd(lr),
        variational_state=vstate,
        preconditioner=nk.optimizer.SR(diag_shift=diag_shift),
    )
    exact = float(nk.exact.lanczos_ed(hamiltonian, k=1)[0]) if L <= 16 else None
    return driver, vstate, hamiltonian, exact


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--L", type=int, default=16, help="chain length")
    p.add_argument("--alpha", type=int, default=1, help="RBM hidden-unit density")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--samples", type=int, default=1008)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--diag-shift", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    driver, vstate, hamiltonian, exact = build(
        args.L, args.alpha, args.samples, args.lr, args.diag_shift, args.seed
    )
    print(
        f"Heisenberg chain L={args.L}: nqzoo {type(vstate.model).__name__} "
        f"(alpha={args.alpha}, {vstate.n_parameters} parameters) in NetKet's MCState"
    )
    start = time.perf_counter()
    driver.run(n_iter=args.steps, show_progress=True)
    energy = vstate.expect(hamiltonian)
    print(
        f"final energy: {energy.mean.real:.6f} ± {energy.error_of_mean:.6f} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    if exact is not None:
        print(f"exact energy: {exact:.10f} (Lanczos)")
        print(f"relative error: {abs(energy.mean.real - exact) / abs(exact):.2e}")
    return energy, exact


if __name__ == "__main__":
    main()

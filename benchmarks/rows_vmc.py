"""One VMC step with Metropolis sampling: nqzoo in a user's `eqx.filter_jit` step against
NetKet's `VMC` driver, and where nqzoo's time goes.

The problem of issue 11's speed target: the Heisenberg chain of N = 100 sites (periodic,
Pauli matrices, Marshall's sign rule as NetKet's default, total_sz = 0), a real RBM with
alpha = 2, Metropolis exchange moves along the bonds with 16 chains, 1024 samples a step
(64 per chain, one sweep of N steps between samples, 5 discarded sweeps per chain and
step), float64. Both sides start from the same parameters (NetKet's model is nqzoo's
converted with `to_netket`) and take one optimiser step per call:

- `VMC step`: the plain energy gradient and `optax.sgd`; NetKet: `nk.driver.VMC` with the
  identity preconditioner.
- `VMC step (SR, CG)`: the gradient preconditioned by stochastic reconfiguration
  (diag_shift 0.01) solved by conjugate gradients with on-the-fly products
  (`natural_gradient(..., method="cg")`); NetKet: `VMC` with its `SR` preconditioner (its
  default on-the-fly QGT and CG).
- `VMC step (minSR) vs VMC_SR`: the direct sample-space solve (`method="auto"` picks it:
  1024 samples against 20 300 parameters) against NetKet's `VMC_SR` driver.

A NetKet step is what `driver.run` does per iteration without its logging:
`reset_step()`, `compute_loss_and_update()`, `update_parameters(dp)`.

The breakdown rows time nqzoo's parts alone (NetKet column empty): the sampling, the local
energies, the energy gradient and the SR solve, each a jitted function on the samples of
one step.

Targets (issue 11): each VMC step at least 2x faster than NetKet (NetKet measured here
before: 745 ms plain, 987 ms with SR).
"""

import equinox as eqx
import jax
import netket as nk
import optax
from _harness import Row

import nqzoo as nqz
from nqzoo.interop.netket import to_netket


N, ALPHA, N_CHAINS, N_SAMPLES, N_DISCARD = 100, 2, 16, 1024, 5
LR, DIAG_SHIFT = 1e-2, 1e-2


def _problem():
    lattice = nqz.lattice.Chain(N)
    hi = nqz.hilbert.Spin(0.5, N, total_sz=0)
    operator = nqz.operators.Heisenberg(hi, lattice)
    model = nqz.models.RBM(hi, alpha=ALPHA, key=jax.random.key(0))
    # away from the initialisation's near-zero weights, so that the chains mix as in training
    model = jax.tree.map(
        lambda p: p + 0.05 * jax.random.normal(jax.random.key(1), p.shape, p.dtype)
        if eqx.is_inexact_array(p)
        else p,
        model,
    )
    sampler = nqz.mcmc.MetropolisExchange(hi, lattice=lattice, n_chains=N_CHAINS)
    return lattice, hi, operator, model, sampler


def _nqzoo_step(sr: bool, method: str = "cg"):
    _, _, operator, model, sampler = _problem()
    optimiser = optax.sgd(LR)

    @eqx.filter_jit
    def step(model, chains, opt_state):
        x, chains, _ = sampler.sample(model, chains, N_SAMPLES, n_discard=N_DISCARD)
        e_loc = nqz.operators.local_energy(model, operator, x)
        if sr:
            energy, grads = nqz.vmc.natural_gradient(model, x, e_loc, DIAG_SHIFT, method=method)
        else:
            energy, grads = nqz.vmc.energy_and_grad(model, x, e_loc)
        updates, opt_state = optimiser.update(grads, opt_state)
        return eqx.apply_updates(model, updates), chains, opt_state, energy

    carry = {
        "model": model,
        "chains": sampler.init(model, jax.random.key(2)),
        "opt": optimiser.init(eqx.filter(model, eqx.is_inexact_array)),
    }

    def run():
        carry["model"], carry["chains"], carry["opt"], energy = step(
            carry["model"], carry["chains"], carry["opt"]
        )
        return energy

    return run


def _netket_step(kind: str):
    """`kind`: "plain" (VMC), "sr" (VMC + SR preconditioner) or "vmc_sr" (VMC_SR driver)."""
    _, _, _, model, _ = _problem()
    module, variables = to_netket(model)
    hi = nk.hilbert.Spin(0.5, N, total_sz=0)
    graph = nk.graph.Chain(N, pbc=True)
    hamiltonian = nk.operator.Heisenberg(hi, graph)
    sampler = nk.sampler.MetropolisExchange(hi, graph=graph, n_chains=N_CHAINS)
    vstate = nk.vqs.MCState(
        sampler,
        module,
        variables=variables,
        n_samples=N_SAMPLES,
        n_discard_per_chain=N_DISCARD,
        seed=0,
        sampler_seed=2,
    )
    optimiser = optax.sgd(LR)
    if kind == "vmc_sr":
        driver = nk.driver.VMC_SR(
            hamiltonian, optimiser, diag_shift=DIAG_SHIFT, variational_state=vstate
        )
    else:
        preconditioner = (
            nk.optimizer.SR(diag_shift=DIAG_SHIFT)
            if kind == "sr"
            else nk.optimizer.identity_preconditioner
        )
        driver = nk.driver.VMC(
            hamiltonian, optimiser, variational_state=vstate, preconditioner=preconditioner
        )

    def run():
        driver.reset_step()
        loss, dp = driver.compute_loss_and_update()
        driver.update_parameters(dp)
        return loss.mean, jax.tree.leaves(vstate.parameters)

    return run


def _breakdown() -> list[Row]:
    """nqzoo's step in parts, on one step's samples."""
    _, _, operator, model, sampler = _problem()
    chains = sampler.init(model, jax.random.key(2))
    draw = eqx.filter_jit(
        lambda m, c: sampler.sample(m, c, N_SAMPLES, n_discard=N_DISCARD)[:2]
    )
    x, chains = draw(model, chains)
    # a few hundred sweeps, so that the timed parts see thermalised samples
    for _ in range(4):
        x, chains = draw(model, chains)
    e_loc_fn = eqx.filter_jit(lambda m, x: nqz.operators.local_energy(m, operator, x))
    e_loc = e_loc_fn(model, x)
    grad_fn = eqx.filter_jit(nqz.vmc.energy_and_grad)
    sr_fn = eqx.filter_jit(
        lambda m, x, e, shift: nqz.vmc.natural_gradient(m, x, e, shift, method="cg")
    )
    state = {"chains": chains}

    def sample():
        out, state["chains"] = draw(model, state["chains"])
        return out

    note = f"RBM α={ALPHA}, N={N}, {N_SAMPLES} samples"
    return [
        Row("  part: sampling (exchange)", sample, None, note=note),
        Row("  part: local energies", lambda: e_loc_fn(model, x), None, note=note),
        Row("  part: energy gradient", lambda: grad_fn(model, x, e_loc), None, note=note),
        Row("  part: SR (CG solve)", lambda: sr_fn(model, x, e_loc, DIAG_SHIFT), None,
            note=note),
    ]


def rows() -> list[Row]:
    note = (
        f"Heisenberg chain N={N}, RBM α={ALPHA}, exchange, {N_CHAINS} chains, "
        f"{N_SAMPLES} samples"
    )
    return [
        Row("VMC step", _nqzoo_step(False), _netket_step("plain"), note=note,
            extra={"target": ">= 2x"}),
        Row("VMC step (SR, CG)", _nqzoo_step(True, "cg"), _netket_step("sr"),
            note=note + ", NetKet VMC + SR (on-the-fly CG, both)", extra={"target": ">= 2x"}),
        Row("VMC step (minSR) vs VMC_SR", _nqzoo_step(True, "auto"), _netket_step("vmc_sr"),
            note=note + ", sample-space solve, both", extra={"target": ">= 2x"}),
        *_breakdown(),
    ]

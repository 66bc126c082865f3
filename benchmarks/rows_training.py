"""One VMC training step: examples/ground_state.py against NetKet's VMC driver.

Both sides do the same work per step on the same model, parameters, sample count and
optimiser: exact samples of a fast autoregressive network (nqzoo: `nqz.sample`;
NetKet: `ARDirectSampler`), local energies of the transverse-field Ising model
(h = 1, periodic), the energy gradient, one optimiser update (adam; the last row uses
SR + sgd, the example's default, against NetKet's `SR` preconditioner). NetKet's model
is nqzoo's converted with `to_netket`; its step is `driver.reset_step()`,
`driver.compute_loss_and_update()` and `driver.update_parameters(dp)`, i.e. what
`driver.run` does per iteration without the logging.

Target (issue 5): nqzoo at least 2x faster per step.
"""

import pathlib
import sys

import equinox as eqx
import jax
import netket as nk
import optax
from _harness import Row

from nqzoo.interop.netket import to_netket


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "examples"))

import ground_state  # noqa: E402

import nqzoo as nqz  # noqa: E402


N_SAMPLES = 1024
LR = 1e-3
DIAG_SHIFT = 1e-3


def _row(lattice: tuple[int, ...], sr: bool = False) -> Row:
    args = ground_state.parse_args(["--samples", str(N_SAMPLES)])
    chain = len(lattice) == 1
    operator = ground_state.build_hamiltonian(
        "tfim", nqz.lattice.Grid(lattice, pbc=True), h=1.0, j2=0.0
    )
    model, state = ground_state.build_model(
        "arnn", operator.hilbert, lattice, args, jax.random.key(0)
    )
    n_sites = operator.hilbert.size

    # nqzoo: the example's jitted step; model and optimiser state threaded across calls.
    optimiser = optax.sgd(LR) if sr else optax.adam(LR)
    _, draw = ground_state.build_sampler("exact", operator, args)
    step = ground_state.make_train_step(
        operator,
        optimiser,
        draw,
        diag_shift=DIAG_SHIFT if sr else None,
        chunk_size=max(1, 2**18 // n_sites**3),
        n_chains=args.chains,
    )
    nq = {"model": model, "opt": optimiser.init(eqx.filter(model, eqx.is_inexact_array))}
    keys = iter(jax.random.split(jax.random.key(1), 10_000))

    def nqzoo_step():
        nq["model"], nq["opt"], _, stats = step(nq["model"], nq["opt"], state, next(keys))
        return stats["energy"]

    # NetKet: the same parameters, Hamiltonian (same bonds) and optimiser.
    nk_module, variables = to_netket(model)
    nk_hilbert = nk.hilbert.Spin(s=0.5, N=n_sites)
    graph = nk.graph.Graph(edges=operator.lattice.edges().tolist())
    # NetKet's Ising is -h sum sx + J sum sz sz: J = -1 is our ferromagnet.
    nk_hamiltonian = nk.operator.Ising(nk_hilbert, graph, h=1.0, J=-1.0)
    vstate = nk.vqs.MCState(
        nk.sampler.ARDirectSampler(nk_hilbert),
        nk_module,
        variables=variables,
        n_samples=N_SAMPLES,
        seed=0,
        sampler_seed=1,
    )
    # For the SR row NetKet's `VMC` with its `SR` preconditioner (the QGT form, ~7 s a step
    # here). Its recommended `VMC_SR` driver (sample-space NTK form, like the example's) was
    # much slower on this model: ~85 s a step, with or without `on_the_fly`.
    driver = nk.driver.VMC(
        nk_hamiltonian,
        optax.sgd(LR) if sr else optax.adam(LR),
        variational_state=vstate,
        preconditioner=nk.optimizer.SR(diag_shift=DIAG_SHIFT)
        if sr
        else nk.optimizer.identity_preconditioner,
    )

    def netket_step():
        # One iteration of driver.run without callbacks and logging: fresh samples,
        # energy and gradient (preconditioned), parameter update.
        driver.reset_step()
        loss, dp = driver.compute_loss_and_update()
        driver.update_parameters(dp)
        return loss.mean, jax.tree.leaves(vstate.parameters)

    name = ("chain " if chain else "lattice ") + "x".join(map(str, lattice))
    return Row(
        f"VMC step{' (SR)' if sr else ''}, TFIM {name}",
        nqzoo_step,
        netket_step,
        note=f"{type(model).__name__} layers={args.layers} "
        f"features={args.features} kernel={model.arnn.kernel_size}, "
        f"{N_SAMPLES} samples, {'SR + sgd' if sr else 'adam'}",
        extra={"target": ">= 2x"},
    )


def rows() -> list[Row]:
    return [_row((20,)), _row((40,)), _row((6, 6)), _row((20,), sr=True)]

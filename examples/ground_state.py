"""Ground state of the transverse-field Ising model with a fast autoregressive network.

Variational Monte Carlo in a plain `eqx.filter_jit` training step: exact samples from
`nqz.sample` (FastARNNConv1D on a chain, FastARNNConv2D on a lattice), TFIM local
energies, the energy gradient preconditioned by stochastic reconfiguration (or plain,
with adam), an optax optimiser.

    python examples/ground_state.py                        # chain of 20 sites at h = 1
    python examples/ground_state.py --lattice 4x4 --h 3.0 --plot energy.png

The reusable pieces (Hamiltonian, exact energies, training step) live in `tfim.py`
beside this file.
"""

import argparse
import pathlib
import sys
import time

import jax


jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from tqdm import tqdm  # noqa: E402


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import tfim  # noqa: E402

import nqzoo as nqz  # noqa: E402


def build_model(
    lattice: tuple[int, ...],
    *,
    layers: int,
    features: int,
    kernel_size: int,
    dilation: int,
    param_dtype,
    key,
):
    """A fast ARNN and its cache state: Conv1D on a chain, Conv2D on a lattice."""
    hi = nqz.hilbert.Spin(s=0.5, N=int(np.prod(lattice)))
    if len(lattice) == 1:
        return eqx.nn.make_with_state(nqz.models.FastARNNConv1D)(
            hi,
            layers=layers,
            features=features,
            kernel_size=kernel_size,
            kernel_dilation=dilation,
            param_dtype=param_dtype,
            key=key,
        )
    return eqx.nn.make_with_state(nqz.models.FastARNNConv2D)(
        hi,
        layers=layers,
        features=features,
        kernel_size=(kernel_size, kernel_size),
        kernel_dilation=(dilation, dilation),
        lattice_shape=lattice,
        param_dtype=param_dtype,
        key=key,
    )


def default_kernel_size(lattice: tuple[int, ...], layers: int) -> int:
    """On a chain, the smallest kernel whose receptive field covers the chain: the last
    site depends on all others (`layers * (K - 1) >= N - 1`); 3 on a lattice."""
    if len(lattice) == 1:
        return 1 + -(-(lattice[0] - 1) // layers)
    return 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lattice", default="20", help="'L' for a chain, 'L1xL2' for a lattice")
    p.add_argument("--h", type=float, default=1.0, help="transverse field (J = 1)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--samples", type=int, default=512, help="exact samples per step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--optimizer",
        choices=["sr", "adam"],
        default="sr",
        help="sr: stochastic reconfiguration (natural gradient) + optax.sgd with a "
        "cosine-decayed rate; adam: the plain energy gradient + optax.adam",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: 0.05 for sr, 0.01 for adam)",
    )
    p.add_argument("--diag-shift", type=float, default=1e-3, help="SR diagonal shift")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--features", type=int, default=10)
    p.add_argument(
        "--kernel-size",
        type=int,
        default=None,
        help="conv kernel size (default: on a chain the smallest that lets the last "
        "site see the whole chain, 1 + ceil((N - 1) / layers); 3 on a lattice)",
    )
    p.add_argument(
        "--dilation",
        type=int,
        default=1,
        help="kernel dilation (with d > 1, site i sees only sites i - d, i - 2d, ...: "
        "keep 1 for nearest-neighbour models)",
    )
    p.add_argument("--complex", action="store_true", help="complex128 parameters")
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help="samples per chunk of the local energies (default: max(1, 2**18 // N**3); 0: all)",
    )
    p.add_argument(
        "--eval-samples",
        type=int,
        default=None,
        help="fresh samples for the final energy (default: 8 x --samples)",
    )
    p.add_argument("--plot", default=None, metavar="PATH", help="write energy vs step (PNG)")
    p.add_argument(
        "--save",
        default=None,
        metavar="PATH",
        help="save the trained model with eqx.tree_serialise_leaves",
    )
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    lattice = tfim.parse_lattice(args.lattice)
    chain = len(lattice) == 1
    hamiltonian = tfim.TFIM(lattice=lattice, h=args.h)
    sr = args.optimizer == "sr"
    lr = args.lr if args.lr is not None else (0.05 if sr else 0.01)
    kernel_size = args.kernel_size or default_kernel_size(lattice, args.layers)
    dilation = args.dilation

    key = jax.random.key(args.seed)
    key, model_key = jax.random.split(key)
    model, state = build_model(
        lattice,
        layers=args.layers,
        features=args.features,
        kernel_size=kernel_size,
        dilation=dilation,
        param_dtype=jnp.complex128 if args.complex else jnp.float64,
        key=model_key,
    )
    if sr:
        if args.complex:
            raise SystemExit("--optimizer sr supports real parameters only; use adam.")
        schedule = optax.cosine_decay_schedule(lr, args.steps, alpha=0.2)
        optimiser = optax.sgd(schedule)
    else:
        optimiser = optax.adam(lr)
    opt_state = tfim.init_optimiser(optimiser, model)
    train_step = tfim.make_train_step(
        hamiltonian,
        optimiser,
        args.samples,
        "auto" if args.chunk_size is None else args.chunk_size or None,
        sr_diag_shift=args.diag_shift if sr else None,
    )

    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    name = "x".join(map(str, lattice))
    print(
        f"TFIM on a periodic {'chain' if chain else 'lattice'} {name} "
        f"(N={hamiltonian.n_sites}), "
        f"h={args.h}; {type(model).__name__} with {n_params} parameters; "
        f"{args.samples} samples/step, {'SR + sgd' if sr else 'adam'} lr={lr}"
    )

    start = time.perf_counter()
    history = np.zeros((args.steps, 2))
    bar = tqdm(range(args.steps), desc="VMC", dynamic_ncols=True)
    for i in bar:
        key, step_key = jax.random.split(key)
        model, opt_state, stats = train_step(model, state, opt_state, step_key)
        history[i] = float(stats["energy"]), float(stats["error"])
        bar.set_postfix(E=f"{history[i, 0]:.5f} ± {history[i, 1]:.5f}", refresh=False)
    bar.close()

    n_eval = args.eval_samples or 8 * args.samples
    estimate = tfim.make_estimate(
        hamiltonian, n_eval, "auto" if args.chunk_size is None else args.chunk_size or None
    )
    key, eval_key = jax.random.split(key)
    energy, error = map(float, estimate(model, state, eval_key))
    elapsed = time.perf_counter() - start

    exact = tfim.exact_energy(hamiltonian)
    print(f"final energy: {energy:.6f} ± {error:.6f} ({n_eval} fresh samples)")
    if exact is None:
        print("exact energy: unknown (no closed form; too large for ED)")
    else:
        method = "closed form" if chain else "Lanczos"
        print(f"exact energy: {exact:.10f} ({method})")
        print(f"relative error: {abs(energy - exact) / abs(exact):.2e}")
    print(f"time: {elapsed:.1f} s for {args.steps} steps (compilation included)")

    if args.save:
        eqx.tree_serialise_leaves(args.save, model)
        print(f"saved the model to {args.save}")
    if args.plot:
        kind = "chain" if chain else "lattice"
        plot(args.plot, history, exact, title=f"TFIM {kind} {name}, h={args.h}")
        print(f"wrote {args.plot}")
    return energy, error, exact


def plot(path, history, exact, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(history) + 1)
    fig, (ax, ax_rel) = plt.subplots(1, 2, figsize=(10, 4))
    ax.plot(steps, history[:, 0], lw=1, label="VMC energy")
    ax.fill_between(
        steps,
        history[:, 0] - history[:, 1],
        history[:, 0] + history[:, 1],
        alpha=0.3,
        lw=0,
    )
    if exact is not None:
        ax.axhline(exact, color="k", ls="--", lw=1, label=f"exact {exact:.4f}")
        rel = np.abs(history[:, 0] - exact) / abs(exact)
        ax_rel.semilogy(steps, rel, lw=1)
        ax_rel.axhline(1e-3, color="r", ls=":", lw=1, label="1e-3")
        ax_rel.set_ylabel("|E - E0| / |E0|")
        ax_rel.legend()
    ax_rel.set_xlabel("step")
    ax.set_xlabel("step")
    ax.set_ylabel("energy")
    lo = exact if exact is not None else history[:, 0].min()
    ax.set_ylim(lo - 0.02 * abs(lo), lo + 0.15 * abs(lo))
    ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

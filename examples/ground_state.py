"""Ground states of lattice spin models by variational Monte Carlo with nqzoo.

One plain `eqx.filter_jit` training step: samples (exact, from an autoregressive model with
`nqz.sample`, or from a Metropolis chain with `nqz.mcmc`), local energies of an
`nqz.operators` Hamiltonian, the energy gradient preconditioned by stochastic
reconfiguration (`nqz.vmc.natural_gradient`; or plain, with adam), an optax optimiser. The
exact energy comes from `nqz.exact` (the TFIM chain's closed form, or Lanczos).

    python examples/ground_state.py                  # TFIM chain of 20 sites at h = 1, RBMSymm
    python examples/ground_state.py --lattice 4x4 --h 3.0 --plot energy.png
    python examples/ground_state.py --hamiltonian heisenberg --lattice 20 --model rbm \\
        --sampler metropolis
    python examples/ground_state.py --hamiltonian j1j2 --j2 0.5 --lattice 4x4 --model rbm

Only what is specific to this problem lives here: the choice of Hamiltonian, model and
sampler from the command line, the training loop and the report.
"""

import argparse
import math
import time

import jax


jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from tqdm import tqdm  # noqa: E402

import nqzoo as nqz  # noqa: E402


HAMILTONIANS = ("tfim", "heisenberg", "j1j2")
AUTOREGRESSIVE = ("arnn", "lstm", "gru", "rnn", "transformer")
MODELS = AUTOREGRESSIVE + ("rbm", "rbmsymm", "mlp", "vit", "gcnn")
SAMPLERS = ("exact", "metropolis")
# What a flag left out means: the model's own entry, then DEFAULTS. `features` is the
# embedding width d_model of the Transformers; `diag_shift` None picks 1e-3 with exact samples
# and 1e-2 with Metropolis, whose correlated samples make the geometric tensor noisier.
DEFAULTS = {
    "layers": 3,
    "features": 10,
    "steps": 150,
    "samples": 512,
    "lr": None,
    "diag_shift": None,
    "spin_flip": False,
    "warmup": 0,
    "alpha": 2,
    "chains": 16,
    "discard": 64,
}
# The default model of each Hamiltonian (the TFIM ground state is positive, so a real
# translation-invariant RBM fits it; the Heisenberg models need a sign)
DEFAULT_MODEL = {"tfim": "rbmsymm", "heisenberg": "arnn", "j1j2": "arnn"}
PRESETS = {
    # rbmsymm: translations, 4 features, flip-symmetric (no biases); many short chains and a
    # warm-up (lr 0.05 from the first step collapses the 4x4 lattice at h = 3 onto a
    # polarised state). TFIM N=32: 1.5e-5 in 56 s; N=20: 1e-6 in 17 s
    "rbmsymm": {
        "alpha": 4,
        "spin_flip": True,
        "samples": 2048,
        "chains": 256,
        "discard": 100,
        "steps": 300,
        "lr": 0.05,
        "warmup": 30,
    },
    # arnn: flip-symmetric, 150 steps per 20 sites (N=32: 2.8e-4 with 300 steps at lr 0.05,
    # 6.8e-4 with 150 at 0.025); gru: 2 layers of 32 (heisenberg N=20: 2.1e-4, 3.4e-4 untuned)
    "arnn": {"spin_flip": True, "lr": 0.05, "steps": lambda n: 150 * -(-n // 20)},
    "gru": {"spin_flip": True, "layers": 2, "features": 32, "lr": 0.05, "steps": 450},
    "lstm": {"spin_flip": True},
    "transformer": {"layers": 2, "features": 16},
    # ViT: 2x2 patches, d_model 16, 4 heads; the normalised head of the authors' code (the
    # papers' plain head collapses under SR), a feed-forward width of 2 d_model
    "vit": {
        "layers": 2,
        "features": 16,
        "steps": 300,
        "lr": 0.02,
        "diag_shift": 1e-3,
        "mlp_ratio": 2,
        "output_norm": True,
    },
    # GCNN on the full space group, zero momentum and A1 (the 4x4 ground state's sector);
    # real parameters and a real log psi: the Marshall-rotated ground state is positive
    "gcnn": {"layers": 4, "features": 4, "steps": 150, "lr": 0.02, "diag_shift": 1e-3},
}


# ------------------------------------------------------------------------------------
# The problem: lattice, Hilbert space, Hamiltonian
# ------------------------------------------------------------------------------------


def parse_lattice(text: str) -> tuple[int, ...]:
    """`"20"` -> `(20,)` (a periodic chain), `"4x4"` -> `(4, 4)` (a periodic lattice)."""
    try:
        dims = tuple(int(t) for t in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) not in (1, 2) or any(d < 2 for d in dims):
        raise ValueError(
            f"--lattice must be 'L' (a chain of L >= 2 sites) or 'L1xL2' (a periodic "
            f"rectangular lattice, both >= 2), got {text!r}."
        )
    return dims


def build_hamiltonian(name: str, lattice: nqz.lattice.Grid, *, h: float, j2: float):
    """The Hamiltonian on `lattice`, with Pauli matrices.

    - `tfim`: $-\\sum_{\\langle ij\\rangle}\\sigma^z_i\\sigma^z_j - h\\sum_i\\sigma^x_i$
      (NetKet's `Ising` with `J = -1`), on the full spin space;
    - `heisenberg`: $\\sum_{\\langle ij\\rangle}\\vec\\sigma_i\\cdot\\vec\\sigma_j$, and
    - `j1j2`: the same plus $J_2$ on the next-nearest neighbours, both in the sector of zero
      magnetisation and rotated by Marshall's sign rule (on the J1 bonds), which leaves the
      spectrum unchanged and makes the unfrustrated ground state positive: a real model can
      then represent it.
    """
    n = lattice.n_sites
    if name == "tfim":
        hi = nqz.hilbert.Spin(0.5, n)
        return nqz.operators.Ising(hi, lattice, h=h, J=-1.0)
    if n % 2:
        raise SystemExit(f"--hamiltonian {name} works at total_sz = 0: N must be even, got {n}.")
    hi = nqz.hilbert.Spin(0.5, n, total_sz=0)
    sign_rule = lattice.is_bipartite
    if name == "heisenberg":
        return nqz.operators.Heisenberg(hi, lattice, J=1.0, sign_rule=sign_rule)
    return nqz.operators.Heisenberg(hi, lattice, J=1.0, J2=j2, sign_rule=sign_rule)


def exact_energy(name: str, operator) -> tuple[float | None, str]:
    """The exact ground-state energy and how it was obtained (or `None` if out of reach)."""
    lattice = operator.lattice
    if name == "tfim" and lattice.n_dim == 1:
        return nqz.exact.tfim_chain_energy(lattice.n_sites, operator.h, operator.J), "closed form"
    if operator.hilbert.n_states <= 2**22:
        return nqz.exact.ground_state(operator).energy, "Lanczos"
    return None, ""


# ------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------


def default_kernel_size(lattice: tuple[int, ...], layers: int) -> int:
    """On a chain, the smallest kernel whose receptive field covers the chain: the last
    site depends on all others (`layers * (K - 1) >= N - 1`); 3 on a lattice."""
    if len(lattice) == 1:
        return 1 + -(-(lattice[0] - 1) // layers)
    return 3


def build_model(name: str, hilbert, extent: tuple[int, ...], args, key):
    """The model `name` on `hilbert` and its cache state (`None` for models without one).

    `arnn` is a fast masked convolutional network (Conv1D on a chain, Conv2D on a lattice),
    `lstm`/`gru`/`rnn` fast recurrent networks (in the snake order on a lattice), `rbm` an
    RBM with `--alpha` hidden units per site, `mlp` a two-layer perceptron.
    """
    if args.spin_flip and name in AUTOREGRESSIVE:
        plain = argparse.Namespace(**{**vars(args), "spin_flip": False})
        model, state = build_model(name, hilbert, extent, plain, key)
        return nqz.models.SpinFlipSymmetricARNN(model), state
    dtype = jnp.complex128 if args.complex else jnp.float64
    if name == "rbm":
        return nqz.models.RBM(hilbert, alpha=args.alpha, param_dtype=dtype, key=key), None
    if name == "rbmsymm":
        group = nqz.lattice.Grid(extent, pbc=True).translation_group()
        return (
            nqz.models.RBMSymm(
                hilbert,
                group,
                alpha=args.alpha,
                # no biases: log cosh is even, so psi(-x) = psi(x) exactly
                use_visible_bias=not args.spin_flip,
                use_hidden_bias=not args.spin_flip,
                param_dtype=dtype,
                key=key,
            ),
            None,
        )
    if name == "mlp":
        return (
            nqz.models.MLP(
                hilbert, hidden_dims_alpha=(args.alpha, args.alpha), param_dtype=dtype, key=key
            ),
            None,
        )
    if name == "arnn":
        kernel = args.kernel_size or default_kernel_size(extent, args.layers)
        if len(extent) == 1:
            cls, shape = nqz.models.FastARNNConv1D, {}
            kernel_args = {"kernel_size": kernel, "kernel_dilation": args.dilation}
        else:
            cls, shape = nqz.models.FastARNNConv2D, {"lattice_shape": extent}
            kernel_args = {
                "kernel_size": (kernel, kernel),
                "kernel_dilation": (args.dilation, args.dilation),
            }
        return eqx.nn.make_with_state(cls)(
            hilbert,
            layers=args.layers,
            features=args.features,
            param_dtype=dtype,
            key=key,
            **kernel_args,
            **shape,
        )
    if name == "transformer":
        shape = {} if len(extent) == 1 else {"lattice_shape": extent}
        return eqx.nn.make_with_state(nqz.models.FastARTransformer)(
            hilbert,
            layers=args.layers,
            d_model=args.features,
            heads=args.heads,
            param_dtype=dtype,
            key=key,
            **shape,
        )
    if name == "vit":
        # real parameters: the papers' head gives a complex log psi from them
        return (
            nqz.models.ViT(
                hilbert,
                lattice=nqz.lattice.Grid(extent, pbc=True),
                patch_size=args.patch_size,
                d_model=args.features,
                heads=args.heads,
                layers=args.layers,
                mlp_ratio=getattr(args, "mlp_ratio", 4),
                output_norm=getattr(args, "output_norm", False),
                key=key,
            ),
            None,
        )
    if name == "gcnn":
        group = nqz.lattice.Grid(extent, pbc=True).space_group()
        return (
            nqz.models.GCNN(
                hilbert,
                group,
                layers=args.layers,
                features=args.features,
                characters=group.characters(momentum=None, point_irrep="A1"),
                param_dtype=dtype,
                # with real parameters and the trivial sector log psi is real: no imaginary
                # rows in the SR matrix
                complex_output=bool(args.complex),
                key=key,
            ),
            None,
        )
    cls = {"lstm": "FastLSTMNet", "gru": "FastGRUNet1D", "rnn": "FastRNN"}[name]
    if not hasattr(nqz.models, cls):
        raise SystemExit(f"--model {name} needs nqz.models.{cls}, which this nqzoo lacks.")
    kwargs = {}
    if len(extent) > 1:
        if name == "gru":
            raise SystemExit("--model gru is one-dimensional (GRUNet1D): use lstm on a lattice.")
        kwargs["graph"] = nqz.lattice.Grid(extent, pbc=True)
    return eqx.nn.make_with_state(getattr(nqz.models, cls))(
        hilbert, layers=args.layers, features=args.features, param_dtype=dtype, key=key, **kwargs
    )


# ------------------------------------------------------------------------------------
# Sampling and the training step
# ------------------------------------------------------------------------------------


def build_sampler(name: str, operator, args):
    """`(init, draw)`: `init(model, state, key)` gives the sampler's carry, `draw(model,
    carry, key) -> (samples (n, N), carry, acceptance)` draws `args.samples` samples.

    `exact` samples an autoregressive model directly (its carry is the model's cache
    state); `metropolis` runs `args.chains` Markov chains with single-spin flips for the
    TFIM and exchanges along the lattice's bonds for the Heisenberg models (which keep the
    magnetisation), carrying the chains from one step to the next.
    """
    hilbert, n_samples = operator.hilbert, args.samples
    if name == "exact":

        def init(model, state, key):
            del model, key
            return state

        def draw(model, state, key):
            return nqz.sample(model, n_samples, key=key, state=state), state, jnp.ones(())

        return init, draw

    if isinstance(operator, nqz.operators.Ising):
        rule = nqz.mcmc.LocalRule()
    else:
        rule = nqz.mcmc.ExchangeRule(lattice=operator.lattice, d_max=2 if operator.J2 else 1)
    sampler = nqz.mcmc.MetropolisSampler(hilbert, rule, n_chains=args.chains)

    def init(model, state, key):
        del state
        chains = sampler.init(model, key)
        # thermalise: a few hundred sweeps before the first step
        _, chains, _ = sampler.sample(model, chains, args.chains, n_discard=args.discard)
        return chains

    def draw(model, chains, key):
        del key  # the chains carry their own key
        x, chains, info = sampler.sample(model, chains, n_samples)
        return x, chains, info.acceptance

    return init, draw


def make_train_step(operator, optimiser, draw, *, diag_shift, chunk_size, n_chains):
    """The jitted VMC step `step(model, opt_state, carry, key) -> (model, opt_state,
    carry, stats)`: samples, local energies, the (SR-preconditioned) gradient, the update.

    `stats` holds the energy, its error of the mean (with the chains' autocorrelation) and
    the variance of the local energy, all from this step's samples.
    """

    @eqx.filter_jit
    def step(model, opt_state, carry, key):
        x, carry, acceptance = draw(model, carry, key)
        e_loc = nqz.operators.local_energy(model, operator, x, chunk_size)
        if diag_shift is None:
            energy, grads = nqz.vmc.energy_and_grad(model, x, e_loc)
        else:
            energy, grads = nqz.vmc.natural_gradient(model, x, e_loc, diag_shift)
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        model = eqx.apply_updates(model, updates)
        stats = nqz.mcmc.statistics(e_loc.real.reshape(n_chains, -1))
        return (
            model,
            opt_state,
            carry,
            {
                "energy": energy.real,
                "error": stats.error_of_mean,
                "variance": stats.variance,
                "acceptance": acceptance,
            },
        )

    return step


def make_estimate(operator, draw, *, chunk_size, n_chains, repeats):
    """A jitted final estimate: `repeats` fresh batches of samples, their mean energy and
    its error (chains' autocorrelation included)."""

    @eqx.filter_jit
    def estimate(model, carry, key):
        def one(carry, key):
            x, carry, _ = draw(model, carry, key)
            return carry, nqz.operators.local_energy(model, operator, x, chunk_size).real

        carry, e_loc = jax.lax.scan(one, carry, jax.random.split(key, repeats))
        # (repeats, n_chains * per_chain) -> (n_chains, repeats * per_chain), chain order kept
        e_loc = e_loc.reshape(repeats, n_chains, -1).transpose(1, 0, 2).reshape(n_chains, -1)
        stats = nqz.mcmc.statistics(e_loc)
        return stats.mean, stats.error_of_mean

    return estimate


# ------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hamiltonian", choices=HAMILTONIANS, default="tfim")
    p.add_argument("--lattice", default="20", help="'L' for a chain, 'L1xL2' for a lattice")
    p.add_argument("--h", type=float, default=1.0, help="TFIM transverse field (J = 1)")
    p.add_argument("--j2", type=float, default=0.5, help="J1-J2: next-nearest coupling (J1 = 1)")
    p.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="default: rbmsymm (translation-invariant RBM) for tfim, arnn otherwise",
    )
    p.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="exact (autoregressive models; the default for them) or metropolis (the "
        "default for the others)",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="VMC steps (default: 150; arnn 150 per 20 sites, gru 450, rbmsymm 300)",
    )
    p.add_argument(
        "--samples", type=int, default=None, help="samples per step (default: 512; rbmsymm 2048)"
    )
    p.add_argument(
        "--chains", type=int, default=None, help="Metropolis: number of chains (default: 16)"
    )
    p.add_argument(
        "--discard",
        type=int,
        default=None,
        help="Metropolis: thermalisation sweeps (default: 64)",
    )
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
        help="learning rate (default: 0.025 sr, arnn/gru 0.05; 0.01 adam)",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="sr: steps over which the rate rises linearly from 0 (default: 0; rbmsymm 30)",
    )
    p.add_argument(
        "--diag-shift",
        type=float,
        default=None,
        help="SR diagonal shift (default: 1e-3 with exact samples, 1e-2 with Metropolis, whose "
        "correlated samples make the geometric tensor noisier)",
    )
    p.add_argument(
        "--layers",
        type=int,
        default=None,
        help="layers (default: 3; transformer, vit, gru 2; gcnn 4)",
    )
    p.add_argument(
        "--features",
        type=int,
        default=None,
        help="features per layer, the embedding width of transformer/vit (default: 10; "
        "transformer, vit 16; gru 32; gcnn 4)",
    )
    p.add_argument("--heads", type=int, default=4, help="transformer/vit: attention heads")
    p.add_argument("--patch-size", type=int, default=2, help="vit: patch side b")
    p.add_argument(
        "--alpha",
        type=int,
        default=None,
        help="rbm/mlp: hidden units per site; rbmsymm: features (default: 2; rbmsymm 4)",
    )
    p.add_argument(
        "--kernel-size",
        type=int,
        default=None,
        help="arnn: conv kernel size (default: on a chain the smallest that lets the last "
        "site see the whole chain, 1 + ceil((N - 1) / layers); 3 on a lattice)",
    )
    p.add_argument("--dilation", type=int, default=1, help="arnn: kernel dilation")
    p.add_argument("--complex", action="store_true", help="complex128 parameters")
    p.add_argument(
        "--spin-flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="autoregressive models and rbmsymm: make the state invariant under the global "
        "spin flip (nqz.models.SpinFlipSymmetricARNN; rbmsymm without biases), as the ground "
        "states of tfim and heisenberg are (default: on for arnn, gru, lstm and rbmsymm on "
        "those two, off otherwise)",
    )
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
        "--save", default=None, metavar="PATH", help="save the model (eqx.tree_serialise_leaves)"
    )
    args = p.parse_args(argv)
    if args.model is None:
        args.model = DEFAULT_MODEL[args.hamiltonian]
    chains_given = args.chains is not None
    preset = {**DEFAULTS, **PRESETS.get(args.model, {})}
    if args.spin_flip is None:  # the preset's, where the ground state is flip-invariant
        args.spin_flip = preset["spin_flip"] and args.hamiltonian != "j1j2"
    for name, value in preset.items():
        if getattr(args, name, None) is None:  # keys without a flag are set too
            # a callable preset is a function of the number of sites
            n_sites = np.prod(parse_lattice(args.lattice)) if callable(value) else None
            setattr(args, name, value(int(n_sites)) if callable(value) else value)
    if args.sampler is None:
        args.sampler = "exact" if args.model in AUTOREGRESSIVE else "metropolis"
    if args.spin_flip and args.model not in AUTOREGRESSIVE + ("rbmsymm",):
        p.error(f"--spin-flip needs rbmsymm or an autoregressive model: {AUTOREGRESSIVE}.")
    if args.sampler == "exact" and args.model not in AUTOREGRESSIVE:
        p.error(f"--sampler exact needs an autoregressive model ({', '.join(AUTOREGRESSIVE)}).")
    if args.diag_shift is None:
        args.diag_shift = 1e-3 if args.sampler == "exact" else 1e-2
    if args.sampler == "exact":
        args.chains = args.samples  # independent samples: one "chain" each
    elif not chains_given:  # the preset's number of chains, or fewer that divide --samples
        args.chains = math.gcd(args.chains, args.samples)
    if args.samples % args.chains:
        p.error(f"--samples ({args.samples}) must be a multiple of --chains ({args.chains}).")
    return args


def main(argv=None):
    args = parse_args(argv)
    extent = parse_lattice(args.lattice)
    lattice = nqz.lattice.Grid(extent, pbc=True)
    operator = build_hamiltonian(args.hamiltonian, lattice, h=args.h, j2=args.j2)
    n = lattice.n_sites
    sr = args.optimizer == "sr"
    lr = args.lr if args.lr is not None else (0.025 if sr else 0.01)
    chunk_size = max(1, 2**18 // n**3) if args.chunk_size is None else args.chunk_size or None

    key = jax.random.key(args.seed)
    key, model_key, chain_key = jax.random.split(key, 3)
    model, state = build_model(args.model, operator.hilbert, extent, args, model_key)
    init, draw = build_sampler(args.sampler, operator, args)
    carry = init(model, state, chain_key)

    if not sr:
        schedule = lr
    elif warmup := min(args.warmup, args.steps // 2):
        # linear from 0 to lr over the first steps (at most half of them), then the cosine
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, lr, warmup, args.steps, end_value=0.2 * lr
        )
    else:
        schedule = optax.cosine_decay_schedule(lr, args.steps, alpha=0.2)
    optimiser = optax.sgd(schedule) if sr else optax.adam(lr)
    opt_state = optimiser.init(eqx.filter(model, eqx.is_inexact_array))
    step = make_train_step(
        operator,
        optimiser,
        draw,
        diag_shift=args.diag_shift if sr else None,
        chunk_size=chunk_size,
        n_chains=args.chains,
    )

    n_params = sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
    name = "x".join(map(str, extent))
    title = f"{args.hamiltonian} on a periodic {'chain' if len(extent) == 1 else 'lattice'} {name}"
    problem = {"tfim": f"h={args.h}", "heisenberg": "J=1", "j1j2": f"J2={args.j2}"}
    print(
        f"{title} (N={n}), {problem[args.hamiltonian]}; {type(model).__name__} with "
        f"{n_params} parameters; {args.sampler} sampling, {args.samples} samples/step, "
        f"{'SR + sgd' if sr else 'adam'} lr={lr}"
    )

    start = time.perf_counter()
    history = np.zeros((args.steps, 2))
    bar = tqdm(range(args.steps), desc="VMC", dynamic_ncols=True)
    for i in bar:
        key, step_key = jax.random.split(key)
        model, opt_state, carry, stats = step(model, opt_state, carry, step_key)
        history[i] = float(stats["energy"]), float(stats["error"])
        bar.set_postfix(E=f"{history[i, 0]:.5f} ± {history[i, 1]:.5f}", refresh=False)
    bar.close()

    repeats = max(1, (args.eval_samples or 8 * args.samples) // args.samples)
    estimate = make_estimate(
        operator, draw, chunk_size=chunk_size, n_chains=args.chains, repeats=repeats
    )
    key, eval_key = jax.random.split(key)
    energy, error = map(float, estimate(model, carry, eval_key))
    elapsed = time.perf_counter() - start

    print(f"final energy: {energy:.6f} ± {error:.6f} ({repeats * args.samples} fresh samples)")
    exact, method = exact_energy(args.hamiltonian, operator)
    if exact is None:
        print("exact energy: unknown (no closed form; too large for Lanczos)")
    else:
        print(f"exact energy: {exact:.10f} ({method})")
        print(f"relative error: {abs(energy - exact) / abs(exact):.2e}")
    print(f"time: {elapsed:.1f} s for {args.steps} steps (compilation included)")

    if args.save:
        eqx.tree_serialise_leaves(args.save, model)
        print(f"saved the model to {args.save}")
    if args.plot:
        plot(args.plot, history, exact, title=f"{title}, {problem[args.hamiltonian]}")
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
        steps, history[:, 0] - history[:, 1], history[:, 0] + history[:, 1], alpha=0.3, lw=0
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

r"""The Metropolis-Hastings sampler: chain state, sweeps, acceptance counting."""

import numbers
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Shaped

from .._misc import (
    check_hilbert,
    int_at_least,
    positive_int,
    positive_number,
    tree_where,
)
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert
from ..models import AbstractLookupModel
from ._rules import AbstractRule, ExchangeRule, GaussianRule, LocalRule


class ChainState(eqx.Module):
    r"""The state of the Markov chains: what
    [`MetropolisSampler.sample`][nqzoo.mcmc.MetropolisSampler.sample] takes and returns. A
    pytree (an Equinox module with array fields only), so it can be
    carried through a training loop, jitted, vmapped, sharded along the chain axis and
    saved like any other array tree.

    **Fields:**

    - `x`: the current configuration of every chain, `(n_chains, N)`.
    - `log_prob`: $p\,\mathrm{Re}\log\psi(x)$ of those configurations under the model
      they were sampled with, `(n_chains,)` (`p` the sampler's `machine_pow`).
    - `key`: the PRNG key of the next call.
    - `n_accepted`: accepted moves of every chain since `init`, `(n_chains,)` int32.
    - `n_steps`: moves proposed to every chain since `init`, a scalar int32.
    """

    x: Shaped[Array, "n_chains n_sites"]
    log_prob: Float[Array, " n_chains"]
    key: PRNGKeyArray
    n_accepted: Int[Array, " n_chains"]
    n_steps: Int[Array, ""]

    def __check_init__(self):
        check_fields(self)

    @property
    def acceptance(self) -> Float[Array, ""]:
        """The fraction of the moves accepted since `init`, over all chains."""
        total = self.n_steps.astype(self.log_prob.dtype) * self.n_accepted.shape[0]
        return self.n_accepted.sum().astype(self.log_prob.dtype) / total


class SampleInfo(eqx.Module):
    r"""What one [`MetropolisSampler.sample`][nqzoo.mcmc.MetropolisSampler.sample] call did
    (discarded sweeps included, as NetKet's acceptance does).

    **Fields:**

    - `acceptance`: accepted moves over proposed moves, over all chains (a scalar).
    - `n_accepted`: accepted moves of every chain, `(n_chains,)` int32.
    - `n_steps`: moves proposed to every chain, `(n_discard + n_samples / n_chains) *
      sweep_size` (a scalar int32).
    - `n_nan`: proposals of every chain at which the model gave NaN, `(n_chains,)` int32;
      they are rejected, and a non-zero count says the model has a problem.
    - `log_prob`: $p\,\mathrm{Re}\log\psi$ of every returned sample, `(n_samples,)`, in the
      samples' order.
    """

    acceptance: Float[Array, ""]
    n_accepted: Int[Array, " n_chains"]
    n_steps: Int[Array, ""]
    n_nan: Int[Array, " n_chains"]
    log_prob: Float[Array, " n_samples"]

    def __check_init__(self):
        check_fields(self)


def _default_float() -> np.dtype:
    return jnp.zeros((), dtype=float).dtype


def _real_param_dtype(model: Callable) -> np.dtype:
    """The real dtype of the model's first inexact array leaf (the default float if none)."""
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return jnp.finfo(leaves[0].dtype).dtype if leaves else _default_float()


class MetropolisSampler(eqx.Module):
    r"""Metropolis-Hastings Markov chains targeting $P(x) \propto |\psi(x)|^p$.

    At every step each chain proposes $x' \sim q(x' \mid x)$ with its rule and accepts it
    with probability

    $$A(x \to x') = \min\Big(1,\ \frac{P(x')\,q(x \mid x')}{P(x)\,q(x' \mid x)}\Big),$$

    with $\log P = p\,\mathrm{Re}\log\psi$ ($p$ = `machine_pow`). A *sweep* is `sweep_size`
    steps; one sample per chain is kept after every sweep. The model is any callable mapping
    configurations `(*batch, N)` to $\log\psi$ `(*batch,)`, real or complex: an nqzoo model
    ([`nqzoo.models.RBM`][], [`nqzoo.models.MLP`][], [`nqzoo.models.DeepSetMLP`][], ...) or
    a function.

    The sampler is pure and explicit: it holds only static hyperparameters (so it hashes by
    value and is a static argument of `eqx.filter_jit`), and the chains live in a
    [`ChainState`][nqzoo.mcmc.ChainState] that [`init`][nqzoo.mcmc.MetropolisSampler.init]
    creates and [`sample`][nqzoo.mcmc.MetropolisSampler.sample] advances and returns.

    **Log-probabilities.** $\log P$ of the current configurations is carried along the
    chains: each step evaluates the model once, on the proposals. A proposal with
    $\log P = -\infty$ (outside the model's support) is never accepted, and a chain at
    $-\infty$ accepts any finite proposal, so chains started outside the support move into
    it. A proposal at which the model gives NaN is never accepted and is counted in
    [`SampleInfo.n_nan`][nqzoo.mcmc.SampleInfo]; a chain whose current value is NaN is
    treated as being at $-\infty$.

    **Randomness.** All the random numbers of a sweep (the moves and the acceptance
    uniforms, `sweep_size * n_chains` of each) are drawn at once from one key; a step draws
    none. With JAX's partitionable Threefry (the default), sharding the chain axis over
    devices gives the same numbers, hence the same samples.

    **Dtypes.** Discrete configurations have the Hilbert space's dtype (int8); positions in
    a box the real dtype of the model's parameters. $\log P$ and the uniforms have the real
    dtype of the model's output, so a float32 model samples in float32.

    Use [`MetropolisLocal`][nqzoo.mcmc.MetropolisLocal],
    [`MetropolisExchange`][nqzoo.mcmc.MetropolisExchange] or
    [`MetropolisGaussian`][nqzoo.mcmc.MetropolisGaussian] to build one with NetKet's names.
    """

    hilbert: AbstractHilbert = eqx.field(static=True)
    rule: AbstractRule = eqx.field(static=True)
    n_chains: int = eqx.field(static=True)
    sweep_size: int = eqx.field(static=True)
    machine_pow: int | float = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        rule: object,
        *,
        n_chains: numbers.Integral = 16,
        sweep_size: numbers.Integral | None = None,
        machine_pow: numbers.Real = 2,
    ):
        r"""**Arguments:**

        - `hilbert`: the space to sample, an nqzoo Hilbert space.
        - `rule`: the transition rule, an [`AbstractRule`][nqzoo.mcmc.AbstractRule]
          ([`LocalRule`][nqzoo.mcmc.LocalRule], [`ExchangeRule`][nqzoo.mcmc.ExchangeRule],
          [`GaussianRule`][nqzoo.mcmc.GaussianRule] or your own).
        - `n_chains`: the number of independent chains (NetKet's default, 16).
        - `sweep_size`: steps between two kept samples of a chain; default `hilbert.size`
          (NetKet's default).
        - `machine_pow`: the power $p$ of $|\psi|^p$ (default 2).

        **Raises:** `TypeError` naming `hilbert` or `rule` for objects of the wrong kind or
        a rule that cannot act on the space (local moves on particles, Gaussian moves on
        spins); `ValueError` naming `n_chains`, `sweep_size` or `machine_pow` if they are
        not positive, or naming `hilbert`/`lattice` when the rule does not fit the space
        (local moves on a constrained space, a lattice of another size).
        """
        hilbert = check_hilbert(
            hilbert, AbstractHilbert, "hilbert must be an nqzoo Hilbert space (nqzoo.hilbert)"
        )
        if not isinstance(rule, AbstractRule):
            raise TypeError(
                "rule must be an nqzoo.mcmc.AbstractRule (LocalRule(), ExchangeRule(...), "
                f"GaussianRule(...)), got rule={rule!r}."
            )
        rule.check(hilbert)
        self.hilbert = hilbert
        self.rule = rule
        self.n_chains = positive_int(n_chains, "n_chains")
        self.sweep_size = (
            hilbert.size if sweep_size is None else positive_int(sweep_size, "sweep_size")
        )
        self.machine_pow = positive_number(machine_pow, "machine_pow")

    # -- helpers ----------------------------------------------------------------------------

    def _check_model(self, model: object) -> None:
        if not callable(model):
            raise TypeError(
                "model must be a callable mapping configurations (*batch, N) to log psi "
                f"(*batch,) (an nqzoo model or a function), got model={model!r}."
            )
        model_hilbert = getattr(model, "hilbert", None)
        if isinstance(model_hilbert, AbstractHilbert) and model_hilbert != self.hilbert:
            raise ValueError(
                f"model is defined on {model_hilbert!r} but the sampler samples "
                f"{self.hilbert!r}; build the sampler on the model's Hilbert space "
                "(model.hilbert)."
            )

    def _config_dtype(self, model: Callable) -> np.dtype:
        if isinstance(self.hilbert, AbstractDiscreteHilbert):
            return self.hilbert.dtype
        return _real_param_dtype(model)

    def _log_prob(self, model: Callable, x: Array) -> Array:
        log_psi = jnp.asarray(model(x))
        if log_psi.shape != x.shape[:-1]:
            raise ValueError(
                f"model must map configurations of shape {x.shape} to log psi of shape "
                f"{x.shape[:-1]}, got shape {log_psi.shape}."
            )
        if not jnp.issubdtype(log_psi.dtype, jnp.inexact):
            raise TypeError(
                f"model must return floating or complex log psi, got dtype {log_psi.dtype}."
            )
        return jnp.real(log_psi) * self.machine_pow

    # -- public API ---------------------------------------------------------------------------

    def init(
        self,
        model: Callable,
        key: PRNGKeyArray,
        x: Shaped[ArrayLike, "{self.n_chains} {self.hilbert.size}"] | None = None,
    ) -> ChainState:
        r"""Start the chains.

        **Arguments:**

        - `model`: the log-amplitude $\log\psi$ (only used for $\log P$ of the starting
          configurations).
        - `key`: a JAX PRNG key.
        - `x`: optional starting configurations `(n_chains, N)`; by default
          `hilbert.random_state` (uniform, within the constraint of a constrained space).

        **Returns:** a [`ChainState`][nqzoo.mcmc.ChainState] with zero counters.

        **Raises:** `ValueError` naming `model` if its `hilbert` differs from the sampler's.
        """
        self._check_model(model)
        return _init(self, model, key, None if x is None else jnp.asarray(x))

    def sample(
        self,
        model: Callable,
        state: ChainState,
        n_samples: numbers.Integral,
        *,
        n_discard: numbers.Integral = 5,
    ) -> tuple[Shaped[Array, "{n_samples} {self.hilbert.size}"], ChainState, SampleInfo]:
        r"""Advance the chains and return `n_samples` samples, `n_samples / n_chains` per
        chain.

        Each chain first runs `n_discard` sweeps whose samples are dropped (NetKet's
        `n_discard_per_chain`, default 5), then keeps its configuration after each of the
        next `n_samples / n_chains` sweeps. Chains fresh from `init` start at random
        configurations: give the first call a larger `n_discard` (a burn-in). $\log P$ of
        the starting configurations is computed once with `model` (it may differ from the
        model of the previous call, as in a training loop) and then carried. One
        `jax.lax.scan` over sweeps, each a `jax.lax.scan` over steps; jitted, and usable
        inside `eqx.filter_jit` (with the model a traced argument), under `jax.vmap` and
        with the chain axis of `state` sharded over devices.

        **Sample order.** Chain-major: sample `s = c * n_per_chain + t` is chain `c` after
        its `t`-th kept sweep. So `samples` feeds
        [`nqzoo.operators.local_energy`][] and the estimators of `nqzoo.vmc` directly, and
        `values.reshape(n_chains, -1)` (or [`by_chain`][nqzoo.mcmc.MetropolisSampler.by_chain])
        gives the `(n_chains, n_per_chain)` layout of [`nqzoo.mcmc.statistics`][] and
        NetKet's `nk.stats.statistics`.

        **Arguments:**

        - `model`: the log-amplitude $\log\psi$, a callable `(*batch, N) -> (*batch,)`.
          Under `eqx.filter_jit` a function (not a Module) is a static argument: pass the
          same object each time, or an `eqx.Module`, to avoid recompiling.
        - `state`: the [`ChainState`][nqzoo.mcmc.ChainState] from `init` or a previous call.
        - `n_samples`: the number of samples, a positive multiple of `n_chains`.
        - `n_discard`: sweeps per chain to discard first, a non-negative integer.

        **Returns:** `(samples, state, info)`: the samples `(n_samples, N)` (chain-major),
        the advanced [`ChainState`][nqzoo.mcmc.ChainState] and a
        [`SampleInfo`][nqzoo.mcmc.SampleInfo] (acceptance rate, counts of accepted and NaN
        proposals, $\log P$ of the samples).

        **Raises:** `ValueError` naming `n_samples` if it is not a positive multiple of
        `n_chains`, naming `n_discard` if it is negative, naming `model` if its `hilbert`
        differs from the sampler's; `TypeError` naming `state` if it is not a `ChainState`
        of `n_chains` chains of this space.
        """
        self._check_model(model)
        n_samples = positive_int(n_samples, "n_samples")
        if n_samples % self.n_chains:
            lower = max(self.n_chains, n_samples - n_samples % self.n_chains)
            raise ValueError(
                f"n_samples must be a multiple of n_chains={self.n_chains} (every chain "
                f"contributes n_samples / n_chains samples), got n_samples={n_samples}; use "
                f"e.g. n_samples={lower} or {lower + self.n_chains}."
            )
        n_discard = int_at_least(n_discard, "n_discard", 0)
        if not isinstance(state, ChainState) or state.x.shape[-2:] != (
            self.n_chains,
            self.hilbert.size,
        ):
            shown = state.x.shape if isinstance(state, ChainState) else type(state).__name__
            raise TypeError(
                "state must be the ChainState of this sampler (from sampler.init(model, key)) "
                f"with configurations of shape ({self.n_chains}, {self.hilbert.size}), got "
                f"state={shown}."
            )
        return _sample(self, model, state, n_samples // self.n_chains, n_discard)

    def by_chain(
        self,
        values: Shaped[ArrayLike, "n_samples *rest"],  # noqa: F821
    ) -> Shaped[Array, "{self.n_chains} n_per_chain *rest"]:
        """Values of the samples (samples themselves, local energies, ...) in the
        `(n_chains, n_per_chain, ...)` layout of NetKet's samples and of
        [`nqzoo.mcmc.statistics`][], from the chain-major order of `sample`.

        **Arguments:**

        - `values`: an array whose leading axis is the samples of one `sample` call.

        **Returns:** `values.reshape(n_chains, n_samples // n_chains, *rest)`.

        **Raises:** `ValueError` naming `values` if its leading axis is not a multiple of
        `n_chains`.
        """
        values = jnp.asarray(values)
        if values.ndim == 0 or values.shape[0] % self.n_chains:
            raise ValueError(
                f"values must have a leading sample axis that is a multiple of "
                f"n_chains={self.n_chains}, got values of shape {values.shape}."
            )
        return values.reshape(self.n_chains, -1, *values.shape[1:])


@eqx.filter_jit
def _init(sampler: MetropolisSampler, model: Callable, key: PRNGKeyArray, x: Array | None):
    key_x, key_chain = jax.random.split(key)
    if x is None:
        x = sampler.hilbert.random_state(key_x, sampler.n_chains)
    x = x.astype(sampler._config_dtype(model))
    log_prob = sampler._log_prob(model, x)
    return ChainState(
        x=x,
        log_prob=log_prob,
        key=key_chain,
        n_accepted=jnp.zeros((sampler.n_chains,), jnp.int32),
        n_steps=jnp.zeros((), jnp.int32),
    )


@eqx.filter_jit
def _sample(
    sampler: MetropolisSampler,
    model: Callable,
    state: ChainState,
    n_per_chain: int,
    n_discard: int,
):
    hilbert, rule = sampler.hilbert, sampler.rule
    n_chains, sweep_size = sampler.n_chains, sampler.sweep_size
    x = state.x.astype(sampler._config_dtype(model))
    log_prob = sampler._log_prob(model, x)
    log_prob = jnp.where(jnp.isnan(log_prob), -jnp.inf, log_prob)
    dtype = log_prob.dtype
    move_dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else dtype
    aux = rule.init_aux(hilbert, x)
    zeros = jnp.zeros((n_chains,), jnp.int32)
    # With a lookup table (an RBM) and a rule that changes a bounded number of sites, a
    # proposal updates the table (O(k M)) instead of evaluating the model (O(N M)). The table
    # is recomputed at the start of every sweep, so rounding does not accumulate.
    use_lookup = isinstance(model, AbstractLookupModel) and rule.max_changed is not None

    def from_table(table):
        log_psi = jnp.asarray(model.fast_log_psi_from_lookup(table))
        return (jnp.real(log_psi) * sampler.machine_pow).astype(dtype)

    def step(carry, randoms):
        x, log_prob, aux, table, n_accepted, n_nan = carry
        move, uniform = randoms
        if use_lookup:
            x_new, log_correction, aux_new, changes = rule.propose_changes(
                hilbert, x, aux, move
            )
            table_new = model.update_lookup(table, *changes)
            log_prob_new = from_table(table_new)
        else:
            x_new, log_correction, aux_new = rule.propose(hilbert, x, aux, move)
            table_new = None
            log_prob_new = sampler._log_prob(model, x_new).astype(dtype)
        delta = log_prob_new - log_prob
        if log_correction is not None:
            delta = delta + log_correction.astype(dtype)
        # exp(+inf) = inf accepts (a chain at -inf moves to any finite proposal); a NaN
        # delta (a NaN proposal, or -inf to -inf) compares false and rejects
        accept = uniform < jnp.exp(delta)
        x = jnp.where(accept[:, None], x_new, x)
        log_prob = jnp.where(accept, log_prob_new, log_prob)
        aux = tree_where(accept, aux_new, aux)
        table = tree_where(accept, table_new, table)
        n_accepted = n_accepted + accept.astype(jnp.int32)
        n_nan = n_nan + jnp.isnan(log_prob_new).astype(jnp.int32)
        return (x, log_prob, aux, table, n_accepted, n_nan), None

    def sweep(carry, _):
        (x, log_prob, aux, _, n_accepted, n_nan), key = carry
        table = None
        if use_lookup:
            table = model.lookup(x)
            fresh = from_table(table)  # log_prob up to rounding; a -inf chain stays -inf
            log_prob = jnp.where(jnp.isnan(fresh), -jnp.inf, fresh)
        chains = (x, log_prob, aux, table, n_accepted, n_nan)
        key, key_move, key_accept = jax.random.split(key, 3)
        moves = rule.random(hilbert, key_move, sweep_size, n_chains, move_dtype)
        uniforms = jax.random.uniform(key_accept, (sweep_size, n_chains), dtype)
        (x, log_prob, aux, _, n_accepted, n_nan), _ = jax.lax.scan(
            step, chains, (moves, uniforms)
        )
        return ((x, log_prob, aux, None, n_accepted, n_nan), key), (x, log_prob)

    chains = (x, log_prob, aux, None, zeros, zeros)
    ((x, log_prob, _, _, n_accepted, n_nan), key), (xs, log_probs) = jax.lax.scan(
        sweep, (chains, state.key), None, length=n_discard + n_per_chain
    )
    # (sweeps, n_chains, ...) -> chain-major (n_chains * n_per_chain, ...)
    samples = jnp.swapaxes(xs[n_discard:], 0, 1).reshape(n_chains * n_per_chain, hilbert.size)
    sample_log_prob = jnp.swapaxes(log_probs[n_discard:], 0, 1).reshape(-1)
    n_steps = (n_discard + n_per_chain) * sweep_size
    steps = jnp.asarray(n_steps, jnp.int32)
    new_state = ChainState(
        x=x,
        log_prob=log_prob,
        key=key,
        n_accepted=state.n_accepted + n_accepted,
        n_steps=state.n_steps + steps,
    )
    acceptance = n_accepted.sum().astype(dtype) / (n_chains * n_steps)
    info = SampleInfo(
        acceptance=acceptance,
        n_accepted=n_accepted,
        n_steps=steps,
        n_nan=n_nan,
        log_prob=sample_log_prob,
    )
    return samples, new_state, info


# -- NetKet-named constructors ---------------------------------------------------------------


def MetropolisLocal(
    hilbert: object,
    *,
    n_chains: numbers.Integral = 16,
    sweep_size: numbers.Integral | None = None,
    machine_pow: numbers.Real = 2,
) -> MetropolisSampler:
    """A [`MetropolisSampler`][nqzoo.mcmc.MetropolisSampler] with local moves
    ([`LocalRule`][nqzoo.mcmc.LocalRule]): one site changed to a different local state (a
    spin flip), as NetKet's `nk.sampler.MetropolisLocal`.

    **Arguments:**

    - `hilbert`: an unconstrained discrete space (`Spin`, `Qubit`, `Fock`).
    - `n_chains`, `sweep_size`, `machine_pow`: as in
      [`MetropolisSampler`][nqzoo.mcmc.MetropolisSampler].

    **Returns:** the sampler.

    **Raises:** `TypeError` naming `hilbert` for a continuous space, `ValueError` for a
    constrained one, and the errors of `MetropolisSampler`.
    """
    return MetropolisSampler(
        hilbert, LocalRule(), n_chains=n_chains, sweep_size=sweep_size, machine_pow=machine_pow
    )


def MetropolisExchange(
    hilbert: object,
    *,
    lattice: object = None,
    d_max: numbers.Integral = 1,
    edges: Shaped[ArrayLike, "n_edges 2"] | Sequence[Sequence[int]] | None = None,
    n_chains: numbers.Integral = 16,
    sweep_size: numbers.Integral | None = None,
    machine_pow: numbers.Real = 2,
) -> MetropolisSampler:
    """A [`MetropolisSampler`][nqzoo.mcmc.MetropolisSampler] with exchange moves
    ([`ExchangeRule`][nqzoo.mcmc.ExchangeRule]): the values at the ends of a random edge
    swapped, conserving the total magnetisation or particle number, as NetKet's
    `nk.sampler.MetropolisExchange(hilbert, graph=..., d_max=...)` (`clusters=` is `edges=`
    here).

    **Arguments:**

    - `hilbert`: a discrete space, constrained (`Spin(0.5, N, total_sz=0)`) or not.
    - `lattice`: an nqzoo lattice of `hilbert.size` sites; the swapped pairs are those at
      graph distance at most `d_max`.
    - `d_max`: the largest graph distance of a swapped pair (1: nearest neighbours).
    - `edges`: instead of `lattice`, an explicit `(n_edges, 2)` array of site pairs.
    - `n_chains`, `sweep_size`, `machine_pow`: as in
      [`MetropolisSampler`][nqzoo.mcmc.MetropolisSampler].

    **Returns:** the sampler.

    **Raises:** `ValueError` naming `edges` when neither `lattice` nor `edges` (or both) is
    given, naming `lattice` when its size differs from the space's; `TypeError` naming
    `hilbert` for a continuous space; the errors of `MetropolisSampler`.
    """
    rule = ExchangeRule(lattice=lattice, d_max=d_max, edges=edges)
    return MetropolisSampler(
        hilbert, rule, n_chains=n_chains, sweep_size=sweep_size, machine_pow=machine_pow
    )


def MetropolisGaussian(
    hilbert: object,
    sigma: numbers.Real = 1.0,
    *,
    n_chains: numbers.Integral = 16,
    sweep_size: numbers.Integral | None = None,
    machine_pow: numbers.Real = 2,
) -> MetropolisSampler:
    """A [`MetropolisSampler`][nqzoo.mcmc.MetropolisSampler] with Gaussian moves of all
    coordinates ([`GaussianRule`][nqzoo.mcmc.GaussianRule]), wrapped into the box along its
    periodic axes, as NetKet's `nk.sampler.MetropolisGaussian`.

    **Arguments:**

    - `hilbert`: a box of particles, [`nqzoo.hilbert.Particles`][].
    - `sigma`: the standard deviation of the step of each coordinate.
    - `n_chains`, `sweep_size`, `machine_pow`: as in
      [`MetropolisSampler`][nqzoo.mcmc.MetropolisSampler] (`sweep_size` defaults to
      `hilbert.size = N * d`).

    **Returns:** the sampler.

    **Raises:** `TypeError` naming `hilbert` for a discrete space, `ValueError` naming
    `sigma` if it is not a finite positive number; the errors of `MetropolisSampler`.
    """
    return MetropolisSampler(
        hilbert,
        GaussianRule(sigma),
        n_chains=n_chains,
        sweep_size=sweep_size,
        machine_pow=machine_pow,
    )

r"""Exact sampling of autoregressive models.

[`nqzoo.sample`][] draws independent configurations from $|\psi(x)|^p$ (`p` the model's
`machine_pow`) one site at a time, $x_i \sim |\psi_i(\cdot \mid x_{<i})|^p$, with a
`jax.lax.scan` over the sites. Every step calls the model's `conditional`: models with a
cache ([`nqzoo.models.AbstractFastARNN`][]) advance one site through it; the default of
every other [`nqzoo.models.AbstractARNN`][] recomputes its conditionals on the partially
filled configurations. On a constrained space (`total_sz`, `n_particles`) only the
configurations of the space are drawn, from the constrained $|\psi|^p$.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Num, PRNGKeyArray

from ._misc import chunked_map, positive_int
from .models import AbstractARNN
from .models._autoreg import accepts_index_sum


__all__ = ["sample"]


def _uniform_dtype() -> np.dtype:
    # float64 when x64 is on, float32 otherwise.
    return jnp.zeros((), dtype=float).dtype


def _log_prob_dtype(model: eqx.Module) -> np.dtype:
    """The real dtype of the model's parameters (the default float if it has none)."""
    params = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return jnp.finfo(params[0].dtype).dtype if params else _uniform_dtype()


def _choose(
    p: Float[Array, "batch local_size"], u: Float[Array, " batch"]
) -> tuple[Int[Array, " batch"], Float[Array, " batch"]]:
    """Inverse-CDF choice of one index per row of `p` (not necessarily normalised).

    `u` must lie in `(0, 1]`: then the chosen index `k` satisfies `c[k-1] < u·c[-1] <= c[k]`
    with `c` the cumulative sum, so an index of zero probability is never chosen. Returns the
    index and the log of its normalised probability.
    """
    c = jnp.cumsum(p, axis=-1)
    total = c[:, -1]
    r = total * u.astype(c.dtype)
    k = jnp.sum(c < r[:, None], axis=-1).astype(jnp.int32)
    p_k = jnp.take_along_axis(p, k[:, None], axis=-1)[:, 0]
    return k, jnp.log(p_k) - jnp.log(total)


def _sample_chunk(
    model: AbstractARNN,
    state: eqx.nn.State | None,
    u: Float[Array, "batch {model.hilbert.size}"],
    return_log_prob: bool,
):
    """Sample one chunk of chains, site by site, through `model.conditional` (the cached
    step of a fast model, the recomputing default of any other).

    On a constrained space every chain also carries the sum of the local indices sampled so
    far, which gives the allowed values of the next site without re-reading `x`: it is
    handed to `conditional` (whose probabilities are then already constrained) and the
    probabilities are masked once more here, so a hand-written `conditional` that knows
    nothing of the constraint cannot produce a configuration outside it either."""
    hilbert = model.hilbert
    batch = u.shape[0]
    table = jnp.asarray(hilbert.local_states, dtype=hilbert.dtype)
    # A fresh cache for every chain: all-zero leaves with a leading chain axis (None stays None).
    cache = jax.tree.map(lambda leaf: jnp.zeros((batch, *jnp.shape(leaf)), leaf.dtype), state)
    x = jnp.full((batch, hilbert.size), hilbert.local_states[0], dtype=hilbert.dtype)
    constrained = hilbert.constrained
    pass_sum = constrained and accepts_index_sum(model)

    def step(carry, inputs):
        x, cache, log_prob, index_sum = carry
        position, index = inputs  # the position-th site generated is site `index`
        # a column of u per step rather than scanning over u.T: the (N, batch) transpose of
        # the uniforms costs as much XLA compile time as a model layer
        u_i = jax.lax.dynamic_index_in_dim(u, index, axis=1, keepdims=False)
        if pass_sum:
            p, cache = jax.vmap(
                lambda x, c, s: model.conditional(x, index, c, index_sum=s)
            )(x, cache, index_sum)
        else:
            p, cache = jax.vmap(model.conditional, in_axes=(0, None, 0))(x, index, cache)
        if constrained:
            allowed = hilbert.allowed_local_indices(position, index_sum)
            p = jnp.where(allowed, p, 0)
            # A hand-written conditional whose allowed weights all underflowed to 0: choose
            # uniformly among the allowed values rather than outside the constraint. (The
            # base classes renormalise relative to the largest allowed weight, so their
            # allowed weights never all vanish.)
            empty = ~jnp.any(p > 0, axis=-1, keepdims=True)
            p = jnp.where(empty, allowed.astype(p.dtype), p)
        k, log_p = _choose(p, u_i)
        x = jax.lax.dynamic_update_index_in_dim(x, table[k], index, axis=1)
        if return_log_prob:
            log_prob = log_prob + log_p.astype(log_prob.dtype)
        if constrained:
            index_sum = index_sum + k
        return (x, cache, log_prob, index_sum), None

    log_prob = jnp.zeros((batch,), dtype=_log_prob_dtype(model))
    # the running sum of local indices per chain (constrained spaces only)
    index_sum = jnp.zeros((batch,), dtype=jnp.int32) if constrained else None
    positions = jnp.arange(hilbert.size, dtype=jnp.int32)
    sites = model.reorder(positions)  # the autoregressive order (0, 1, …, N-1 by default)
    carry = (x, cache, log_prob, index_sum)
    (x, _, log_prob, _), _ = jax.lax.scan(step, carry, (positions, sites))
    return x, log_prob


@eqx.filter_jit
def _sample_jit(
    model: AbstractARNN,
    state: eqx.nn.State | None,
    key: PRNGKeyArray,
    n_samples: int,
    chunk_size: int | None,
    return_log_prob: bool,
):
    # Jitted as a whole so that an eager call compiles one program, cached across calls;
    # inside a user's jit this simply inlines.
    def sample_chunk(u):
        return _sample_chunk(model, state, u, return_log_prob)

    # All the randomness, drawn once for the whole call (so chunking and sharding cannot change
    # it): row s holds the N uniforms of sample s, in (0, 1]. With JAX's default partitionable
    # Threefry, entry (s, i) depends only on the key and (s, i), not on n_samples.
    n_sites = model.hilbert.size
    # Drawn flat and reshaped: the same numbers (the counter of entry (s, i) is s N + i), and
    # a one-dimensional draw compiles to a much smaller Threefry kernel.
    flat = jax.random.uniform(key, (n_samples * n_sites,), _uniform_dtype())
    u = 1.0 - flat.reshape(n_samples, n_sites)
    # Sample s goes to map iteration s mod n_chunks (see chunked_map): every iteration then
    # touches every contiguous block of the sample axis, so sharding the sample axis shards
    # the work of each iteration instead of serialising the devices.
    return chunked_map(sample_chunk, u, chunk_size)


def sample(
    model: eqx.Module,
    n_samples: int | np.integer,
    *,
    key: PRNGKeyArray,
    state: eqx.nn.State | None = None,
    chunk_size: int | np.integer | None = None,
    return_log_prob: bool = False,
) -> (
    Num[Array, "{n_samples} {model.hilbert.size}"]
    | tuple[Num[Array, "{n_samples} {model.hilbert.size}"], Float[Array, " {n_samples}"]]
):
    r"""Draw exact, independent samples from $|\psi(x)|^p$ of an autoregressive model.

    Sites are sampled in the model's autoregressive order, `model.reorder(jnp.arange(N))`
    ($0, 1, \dots, N-1$ except for models with their own order, such as the recurrent
    networks on a 2D lattice), with a `jax.lax.scan`: at step $i$ every
    chain draws $x_i$ from the conditional $|\psi_i(\cdot \mid x_{<i})|^p$ by inverting its
    cumulative distribution at a uniform random number. Every step calls the model's
    `conditional(x, index, state)`, vmapped over chains: fast models
    ([`nqzoo.models.AbstractFastARNN`][]) step their caches (each chain starts from its own
    all-zero cache); the default of [`nqzoo.models.AbstractARNN`][] recomputes the
    conditionals of the partially filled configuration.

    **Constrained spaces** (`Spin(s, N, total_sz=M)`, `Fock(n_max, N, n_particles=K)`):
    every chain carries the sum of the local indices drawn so far, so that the values of
    site $i$ after which the constraint can no longer be met get zero probability and the
    others are renormalised (the model's `conditional` receives the count as `index_sum`).
    Every sample lies in the constrained space, drawn from the model's constrained
    $|\psi(x)|^p$, which sums to 1 over that space.

    **Reproducibility.** All random numbers are drawn at once,
    `u = 1 - jax.random.uniform(key, (n_samples, N))`, and sample `s` uses only row `u[s]`
    (`u[s, i]` for site `i`). The samples therefore depend only on `key`, the model and
    `n_samples`: they are identical for every `chunk_size` and when the computation is sharded
    over devices (see the sampling guide for the sharding recipe).

    Works inside `eqx.filter_jit` (`n_samples` and `chunk_size` must be static Python ints,
    which `eqx.filter_jit` does by default) and under `jax.vmap` over keys.

    **Arguments:**

    - `model`: an [`nqzoo.models.AbstractARNN`][] (any subclass, including your own).
    - `n_samples`: number of samples, a positive int.
    - `key`: a JAX PRNG key.
    - `state`: the `eqx.nn.State` of a fast model, as returned by
      `eqx.nn.make_with_state(...)`. Required for fast models (only its structure, shapes and
      dtypes are used: every chain starts from an all-zero cache); other models return it
      unchanged, so generic code may always pass one.
    - `chunk_size`: if given, at most this many samples are processed at once
      (`jax.lax.map` over chunks), bounding the memory of caches and activations. The last
      chunk is padded when `chunk_size` does not divide `n_samples`. (The output and the
      random numbers, 8 bytes per site and sample, are still allocated for all samples.)
    - `return_log_prob`: also return $\log|\psi(x)|^p = p\,\operatorname{Re}\log\psi(x)$ of
      every sample, accumulated during sampling at no extra cost.

    **Returns:** samples of shape `(n_samples, N)` with dtype `model.hilbert.dtype`, whose
    entries are the Hilbert space's local states; with `return_log_prob=True`, the tuple
    `(samples, log_prob)` with `log_prob` of shape `(n_samples,)`.

    **Raises:**

    - `TypeError` if `model` is not an `AbstractARNN`.
    - `TypeError` if a fast model is given without `state` (raised by its `conditional`).
    - `ValueError` if `n_samples` or `chunk_size` is not a positive int.
    """
    if not isinstance(model, AbstractARNN):
        raise TypeError(
            "sample() draws exact samples from autoregressive models only: model must be an "
            f"nqzoo.models.AbstractARNN, got {type(model).__name__}. For other models use a "
            "Markov-chain sampler (e.g. NetKet's MetropolisSampler)."
        )
    n_samples = positive_int(n_samples, "n_samples")
    if chunk_size is not None:
        chunk_size = positive_int(chunk_size, "chunk_size")
    if state is not None:
        try:
            jax.tree.leaves(state)
        except ValueError as err:  # Equinox's "Attempted to use old state"
            raise ValueError(
                "state is an eqx.nn.State retired by an eager `state.set(...)`: pass the state "
                "from eqx.nn.make_with_state (nqz.sample reads only its structure)."
            ) from err
    x, log_prob = _sample_jit(model, state, key, n_samples, chunk_size, return_log_prob)
    if return_log_prob:
        return x, log_prob
    return x

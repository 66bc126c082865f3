r"""Monte Carlo statistics with NetKet's conventions (`nk.stats.statistics`)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact, Num


#: Blocks and chains are trusted for the error of the mean only when there are at least this
#: many of them (NetKet's `batch_size` of its default estimator).
MIN_BATCHES = 32


class Stats(NamedTuple):
    r"""Statistics of Markov-chain data, as NetKet's `nk.stats.Stats` (a pytree).

    **Fields:**

    - `mean`: the mean over all samples (complex for complex data).
    - `error_of_mean`: the Monte Carlo standard error of the mean.
    - `variance`: the variance of the samples, $\langle|v - \bar v|^2\rangle$.
    - `tau_corr`: the integrated autocorrelation time, in samples (steps of a chain).
    - `R_hat`: the split-$\hat R$ convergence diagnostic (NaN for a single chain).
    """

    mean: Inexact[Array, ""]
    error_of_mean: Float[Array, ""]
    variance: Float[Array, ""]
    tau_corr: Float[Array, ""]
    R_hat: Float[Array, ""]


def _var(a: Array) -> Array:
    """The biased variance, real for complex data."""
    return jnp.mean(jnp.abs(a - jnp.mean(a)) ** 2)


def statistics(values: Num[ArrayLike, "*n_chains n_per_chain"]) -> Stats:
    r"""The mean of Markov-chain data with its error, variance, autocorrelation time and
    split-$\hat R$, with the estimators of NetKet's default `nk.stats.statistics`.

    `values[c, t]` is the value at step `t` of chain `c` (independent chains, correlated
    along each chain); a one-dimensional array is one chain. From a sampler's chain-major
    samples this is `values.reshape(n_chains, -1)` (see
    [`MetropolisSampler.by_chain`][nqzoo.mcmc.MetropolisSampler.by_chain]). With $C$ chains
    of $T$ steps, $n = CT$, $\bar v$ the mean and $\sigma^2$ the (biased) variance of all
    values:

    - **Chains as batches**: $\sigma_C^2$ the variance of the $C$ chain means,
      $\tau_C = \frac12\big(T\sigma_C^2/\sigma^2 - 1\big)$.
    - **Blocks**: each chain cut into blocks of $\ell = \max(1, \lfloor T/32\rfloor)$ steps
      (a remainder dropped), $B$ blocks in all, $\sigma_B^2$ the variance of the block means,
      $\tau_B = \frac12\big(n\sigma_B^2/(B\sigma^2) - 1\big)$.
    - The error of the mean is $\sqrt{\sigma_C^2/C}$ and $\tau = \max(0, \tau_C)$ if
      $C \ge 32$ and $\tau_C < 6T$; otherwise $\sqrt{\sigma_B^2/B}$ and
      $\tau = \max(0, \tau_B)$ if $B \ge 32$ and $\tau_B < 6\ell$; otherwise both NaN.
    - **Split-$\hat R$** ($C \ge 2$): each chain split into halves (its last value dropped
      when $T$ is odd), $\sigma_{2C}^2$ the variance of the $2C$ half-chain means,
      $\hat R = \sqrt{(T-1)/T + \sigma_{2C}^2/\sigma^2}$.

    Jittable (the shape is static); real and complex values.

    **Arguments:**

    - `values`: `(n_chains, n_per_chain)`, or `(n,)` for a single chain. Integer values are
      converted to the default float dtype.

    **Returns:** a [`Stats`][nqzoo.mcmc.Stats]: `mean` in the dtype of the values (complex
    for complex values), the other fields in its real dtype.

    **Raises:** `ValueError` naming `values` if it has more than two axes or no values.
    """
    values = jnp.asarray(values)
    if values.ndim > 2 or values.size == 0:
        raise ValueError(
            "values must be (n_chains, n_per_chain) or (n,) for one chain, with at least one "
            f"value, got values of shape {values.shape}; flat samples from a sampler are "
            "values.reshape(n_chains, -1) (sampler.by_chain(values))."
        )
    return _statistics(values)


@jax.jit
def _statistics(values: Array) -> Stats:
    if not jnp.issubdtype(values.dtype, jnp.inexact):
        values = values.astype(float)
    data = values.reshape(1, -1) if values.ndim < 2 else values
    n_chains, length = data.shape
    n = n_chains * length
    real = jnp.finfo(data.dtype).dtype
    nan = jnp.full((), jnp.nan, real)

    mean = jnp.mean(data)
    variance = _var(data)

    chain_var = _var(jnp.mean(data, axis=1))
    tau_chains = ((n / n_chains) * chain_var / variance - 1) * 0.5

    block = max(1, length // MIN_BATCHES)
    per_chain = length // block
    n_blocks = n_chains * per_chain
    block_means = data[:, : per_chain * block].reshape(n_blocks, block).mean(axis=1)
    block_var = _var(block_means)
    tau_blocks = ((n / n_blocks) * block_var / variance - 1) * 0.5

    chains_good = (tau_chains < 6 * length) & (n_chains >= MIN_BATCHES)
    blocks_good = (tau_blocks < 6 * block) & (n_blocks >= MIN_BATCHES)
    error_of_mean = jnp.where(
        chains_good,
        jnp.sqrt(chain_var / n_chains),
        jnp.where(blocks_good, jnp.sqrt(block_var / n_blocks), nan),
    )
    tau_corr = jnp.where(
        chains_good,
        jnp.maximum(tau_chains, 0),
        jnp.where(blocks_good, jnp.maximum(tau_blocks, 0), nan),
    )

    if n_chains > 1:
        half = length // 2
        halves = data[:, : 2 * half].reshape(2 * n_chains, half)
        split_var = _var(jnp.mean(halves, axis=1))
        R_hat = jnp.sqrt((length - 1) / length + split_var / variance)
    else:
        R_hat = nan
    return Stats(
        mean=mean,
        error_of_mean=error_of_mean.astype(real),
        variance=variance.astype(real),
        tau_corr=tau_corr.astype(real),
        R_hat=jnp.asarray(R_hat, real),
    )

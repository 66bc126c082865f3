"""Lookup tables: models whose log-amplitude is updated cheaply when a few sites change."""

import abc
import math
from typing import Any

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Inexact, Int, Real


def log_cosh_sum(theta: Float[ArrayLike, "*batch M"]) -> Float[Array, "*batch"]:
    r"""$\sum_j \log\cosh\theta_j$ over the last axis of a real array, fast: as

    $$\sum_j |\theta_j| + \log \prod_j \big(1 + e^{-2|\theta_j|}\big) - M \log 2,$$

    one `exp` per entry and one `log` per block of entries, where
    [`nqzoo.nn.log_cosh`][] takes an `exp` and a `log1p` per entry (on CPU a float64 `exp`
    is vectorised and a `log` is not: this is three to four times faster). Every factor
    lies in $(1, 2]$, and the product runs over blocks small enough never to overflow (1000
    entries in float64, 120 in float32), so it is as stable as `log_cosh`; the result
    differs from `log_cosh(theta).sum(-1)` by rounding only (relative 1e-16 in float64 for
    a few hundred entries). Used for the ratios of the samplers and the local energies, not
    differentiated.

    **Arguments:**

    - `theta`: a real array, `(*batch, M)`.

    **Returns:** the sums, `(*batch,)`, in the dtype of `theta`.
    """
    theta = jnp.asarray(theta)
    m = theta.shape[-1]
    y = jnp.abs(theta)
    factors = 1 + jnp.exp(-2 * y)
    # a product of n factors is at most 2^n: blocks of at most maxexp - 8 factors
    cap = jnp.finfo(theta.dtype).maxexp - 8
    n_blocks = -(-m // cap)
    block = -(-m // n_blocks)
    if n_blocks * block > m:
        pad = [(0, 0)] * (theta.ndim - 1) + [(0, n_blocks * block - m)]
        factors = jnp.pad(factors, pad, constant_values=1)
    products = jnp.prod(factors.reshape(*theta.shape[:-1], n_blocks, block), axis=-1)
    log_products = jnp.log(products)
    log_products = log_products[..., 0] if n_blocks == 1 else log_products.sum(axis=-1)
    return y.sum(axis=-1) + log_products - np.asarray(m * math.log(2.0), theta.dtype)


class AbstractLookupModel(eqx.Module):
    r"""A model that keeps, per configuration, a *lookup table* from which $\log\psi(x)$ is
    read and which is updated in $O(k)$ rather than $O(N)$ work when $k$ sites of $x$
    change (for an RBM the pre-activations $\theta = xW + b$ of the hidden units: changing
    site $i$ by $\delta$ adds $\delta W_{i\cdot}$).

    The Metropolis samplers ([`nqzoo.mcmc.MetropolisSampler`][], with a rule that changes a
    known number of sites) and the local energies ([`nqzoo.operators.local_energy`][], with
    an operator that lists the sites each connected element changes) use the table instead
    of evaluating the model on every proposal or connected configuration. A subclass
    implements the three methods below, with `__call__(x)` equal to
    `log_psi_from_lookup(lookup(x))`.

    The updated table differs from a recomputed one by rounding only; the sampler recomputes
    the table at the start of every sweep, so the difference does not accumulate.
    """

    @abc.abstractmethod
    def lookup(self, x: Real[ArrayLike, "*batch N"]) -> Any:
        """The lookup table of `x`: a pytree whose leaves have leading axes `*batch`."""

    @abc.abstractmethod
    def log_psi_from_lookup(self, table: Any) -> Inexact[Array, "*batch"]:
        """`log ψ` of the configurations whose table is `table`."""

    def fast_log_psi_from_lookup(self, table: Any) -> Inexact[Array, "*batch"]:
        """`log ψ` from the table the cheapest way, for the ratios `ψ(x') / ψ(x)` of the
        Metropolis samplers and the local energies (not to be differentiated): equal to
        [`log_psi_from_lookup`][nqzoo.models.AbstractLookupModel.log_psi_from_lookup] up to
        rounding. The RBMs with real pre-activations sum `log cosh` here with one `exp` per
        hidden unit and one `log` per configuration (instead of an `exp` and a `log1p` per
        hidden unit), about three times faster on CPU. By default,
        `log_psi_from_lookup(table)`."""
        return self.log_psi_from_lookup(table)

    @abc.abstractmethod
    def update_lookup(
        self,
        table: Any,
        sites: Int[ArrayLike, "*batch k"],
        old: Real[ArrayLike, "*batch k"],
        new: Real[ArrayLike, "*batch k"],
    ) -> Any:
        """The table after the values at `sites` change from `old` to `new`.

        **Arguments:**

        - `table`: the table of the configurations before the change.
        - `sites`: `k` distinct sites per configuration (a site listed with `old == new`
          changes nothing, which pads a change of fewer sites).
        - `old`, `new`: the values at `sites` before and after.

        All four broadcast against each other along the batch axes (the local energies pass a
        table of shape `(m, 1, ...)` with sites `(1, n_conn, k)`).

        **Returns:** the table of the changed configurations.
        """

"""Lookup tables: models whose log-amplitude is updated cheaply when a few sites change."""

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, ArrayLike, Inexact, Int, Real


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

"""The autoregressive bases: normalised conditionals, log-amplitudes, one sampling step."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Inexact, Int, Num

from .._misc import check_hilbert, positive_number
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert


def check_autoregressive_hilbert(hilbert: object) -> AbstractDiscreteHilbert:
    """Check that `hilbert` is a discrete, homogeneous and unconstrained space.

    **Raises:** `TypeError` for anything that is not an
    [`nqzoo.hilbert.AbstractDiscreteHilbert`][] (e.g. a continuous
    [`nqzoo.hilbert.Particles`][] box, or a NetKet space); `ValueError` for constrained spaces
    (e.g. `Spin(0.5, N, total_sz=0)`), whose product-of-conditionals would put weight outside
    the space.
    """
    continuous = " (a continuous space was given)" if isinstance(hilbert, AbstractHilbert) else ""
    check_hilbert(
        hilbert,
        AbstractDiscreteHilbert,
        "Autoregressive networks need a discrete nqzoo Hilbert space (Spin, Qubit, Fock) whose "
        f"sites all take the same local values{continuous}",
    )
    if hilbert.constrained:
        raise ValueError(
            f"Autoregressive networks need an unconstrained Hilbert space, got hilbert="
            f"{hilbert!r}; drop the constraint (e.g. total_sz=None)."
        )
    return hilbert


def check_machine_pow(machine_pow: object) -> int | float:
    """Check that `machine_pow` is a finite positive number (an int such as 2 or a float)."""
    return positive_number(machine_pow, "machine_pow", " (2 samples |psi|^2)")


def normalize_log_conditionals(
    z: Inexact[Array, "*batch local_size"], machine_pow: int | float
) -> Inexact[Array, "*batch local_size"]:
    r"""Normalise raw log-conditionals over the last axis (NetKet's rule).

    $\log\psi_i(k) = z_{ik} - \frac{1}{p}\operatorname{logsumexp}_k(p\,\operatorname{Re} z_{ik})$
    with $p$ = `machine_pow`, so that $\sum_k |\psi_i(k)|^p = 1$ at every site. The imaginary
    part (the phase) is carried through unchanged.
    """
    lse = jax.nn.logsumexp(machine_pow * z.real, axis=-1, keepdims=True)
    return z - (lse / machine_pow).astype(z.dtype)


class AbstractARNN(eqx.Module):
    r"""An autoregressive neural quantum state.

    $\psi(x) = \prod_i \psi_i(x_i \mid x_{<i})$ with normalised conditionals
    $\sum_k |\psi_i(k \mid x_{<i})|^p = 1$, $p$ = `machine_pow`, so that
    $\sum_x |\psi(x)|^p = 1$ exactly and $|\psi|^p$ can be sampled directly with
    [`nqzoo.sample`][].

    Subclasses provide `hilbert` (a homogeneous, unconstrained discrete space), `machine_pow`
    and [`conditionals_log_psi`][nqzoo.models.AbstractARNN.conditionals_log_psi], which must
    return *normalised* log-conditionals (use [`nqzoo.models.normalize_log_conditionals`][]).
    Everything else (log-amplitudes, probabilities, the sampling step
    [`conditional`][nqzoo.models.AbstractARNN.conditional], sampling) follows.
    """

    hilbert: eqx.AbstractVar[AbstractDiscreteHilbert]
    machine_pow: eqx.AbstractVar[int | float]

    def __check_init__(self):
        check_fields(self)
        check_autoregressive_hilbert(self.hilbert)
        check_machine_pow(self.machine_pow)

    @abc.abstractmethod
    def conditionals_log_psi(
        self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Normalised log-conditionals `log ψ_i(k | x_<i)` at every site.

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`; entry `[..., i, k]` is the log-amplitude of
        site `i` taking `hilbert.local_states[k]` given `x[..., :i]`.
        """

    def conditionals(
        self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Float[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Conditional probabilities `|ψ_i(k | x_<i)|^machine_pow`.

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`; each row sums to 1.
        """
        return jnp.exp(self.machine_pow * self.conditionals_log_psi(x).real)

    def conditional(
        self,
        x: Num[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """One sampling step: the probabilities of site `index` given `x[:index]`.

        This default recomputes the conditionals of the whole configuration and reads row
        `index` (a cost that grows with `N`); models with a cache
        ([`nqzoo.models.AbstractFastARNN`][]) override it with a step whose cost does not.
        [`nqzoo.sample`][] calls it for `index = 0, 1, …, N-1`, mapped over chains.

        **Arguments:**

        - `x`: one configuration `(N,)`; only sites before `index` are read.
        - `index`: the site to sample (a traced integer is fine).
        - `state`: the cache state of a fast model; `None` (and returned unchanged) here.

        **Returns:** `(probabilities (local_size,), state)`, the probabilities being
        `|ψ_index(k | x_<index)|^machine_pow`.
        """
        log_psi = self.conditionals_log_psi(x)
        row = jax.lax.dynamic_index_in_dim(log_psi, index, axis=0, keepdims=False)
        return jnp.exp(self.machine_pow * row.real), state

    def __call__(
        self, x: Num[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """Normalised `log ψ(x)`, shape `(*batch,)`."""
        log_psi_cond = self.conditionals_log_psi(x)
        idx: Int[Array, "*batch {self.hilbert.size}"] = self.hilbert.states_to_local_indices(x)
        picked = jnp.take_along_axis(log_psi_cond, idx[..., None], axis=-1)[..., 0]
        return picked.sum(axis=-1)


class AbstractFastARNN(AbstractARNN):
    """An autoregressive network with a cache for sampling steps whose cost does not grow
    with `N`.

    Built with `eqx.nn.make_with_state`; the cache lives in an `eqx.nn.State`, per
    configuration (no batch axis; samplers `vmap` over chains). A state whose caches are all
    zeros is the initial state of a sampling pass. Subclasses implement
    [`step`][nqzoo.models.AbstractFastARNN.step]; `conditional` checks the state and calls it.
    """

    def conditional(
        self,
        x: Num[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """One sampling step from the cache: the probabilities of site `index` given
        `x[:index]`.

        Call it for `index = 0, 1, …, N-1` in order, starting from the state returned by
        `eqx.nn.make_with_state` (or any state whose leaves are all zero).
        `jax.vmap(model.conditional, in_axes=(0, None, 0))` steps many chains at once.

        **Arguments:**

        - `x`: one configuration `(N,)`; sites `< index` must hold the sampled values.
        - `index`: the site to sample (a traced integer is fine).
        - `state`: the cache state (required).

        **Returns:** `(probabilities (local_size,), new state)`.

        **Raises:** `TypeError` if `state` is not an `eqx.nn.State`.
        """
        if not isinstance(state, eqx.nn.State):
            name = type(self).__name__
            raise TypeError(
                f"{name} is a fast autoregressive model and needs its cache state, got "
                f"state={type(state).__name__}: build it with `model, state = "
                f"eqx.nn.make_with_state({name})(...)` and pass `state` (to nqz.sample or "
                "conditional; a state whose leaves are all zero starts a new configuration)."
            )
        log_psi, state = self.step(x, index, state)
        return jnp.exp(self.machine_pow * log_psi.real), state

    @abc.abstractmethod
    def step(
        self,
        x: Num[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """The normalised log-conditional `log ψ_index(· | x_<index)` from the cache.

        **Arguments:** as [`conditional`][nqzoo.models.AbstractFastARNN.conditional].

        **Returns:** `(log-conditional (local_size,), new state)`.
        """

r"""Global spin-flip symmetry for any autoregressive model on two-level sites, still
autoregressive and exactly sampleable."""

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Inexact, Int, Real

from ..hilbert import AbstractDiscreteHilbert
from ._autoreg import AbstractARNN, AbstractARNNWrapper, AbstractFastARNN


__all__ = ["SpinFlipSymmetricARNN"]


def _check_flippable(model: object) -> AbstractDiscreteHilbert:
    """`model` is an autoregressive model on two-level sites whose constraint, if any, is
    invariant under the global flip."""
    if not isinstance(model, AbstractARNN):
        raise TypeError(
            "SpinFlipSymmetricARNN wraps autoregressive models: model must be an "
            f"nqzoo.models.AbstractARNN, got model={type(model).__name__}. For another model "
            "use nqzoo.models.Symmetrized with the flip as a group element, or a Markov chain."
        )
    hilbert = model.hilbert
    if hilbert.local_size != 2:
        raise ValueError(
            "The global spin flip exchanges the two local states of every site: the model's "
            f"space must have two local states (Spin(0.5, N), Qubit(N)), got "
            f"hilbert={hilbert!r} with local_size={hilbert.local_size}."
        )
    target = hilbert.index_sum_constraint
    if target is not None and 2 * target != hilbert.size:
        raise ValueError(
            f"The global spin flip maps the constrained space hilbert={hilbert!r} (index sum "
            f"{target}) onto another one (index sum {hilbert.size - target}): only the sector "
            "of zero magnetisation (total_sz=0, or N/2 particles of Fock(1, N)) is invariant. "
            "Use that sector or an unconstrained space."
        )
    return hilbert


class SpinFlipSymmetricARNN(AbstractARNNWrapper):
    r"""An autoregressive model made invariant under the global spin flip
    $x \mapsto \bar x$ (both local states exchanged at every site), still autoregressive.

    With $s$ the first site of the wrapped model's autoregressive order (site 0 on a chain)
    and $y(x)$ the configuration flipped so that its site $s$ holds the first local state
    (spin up, $+1$, of `Spin(0.5, N)`; 0 of `Qubit(N)`), i.e. $y = x$ or $y = \bar x$:

    $$\psi'_s(k) = 2^{-1/p}, \qquad
    \psi'_i(x_i \mid x_{<i}) = \psi_i(y_i \mid y_{<i}) \quad (i \neq s),$$

    so that $\psi'(x) = 2^{-1/p}\,\psi(y(x)) / \psi_s(y_s)$ ($p$ = `machine_pow`). Then
    $\psi'(\bar x) = \psi'(x)$ exactly (phases included), and
    $|\psi'(x)|^p = \tfrac12 |\psi(y \mid y_s)|^p$: the wrapped model's distribution
    conditioned on its first site being up, spread evenly over $x$ and $\bar x$. The
    conditionals are normalised, so $\sum_x|\psi'(x)|^p = 1$ and [`nqzoo.sample`][] draws
    exact samples. One evaluation of the wrapped model per configuration (no sum over the
    two images), and a fast model keeps its cache: pass its `state` to `nqz.sample`.

    Every flip-invariant state (such as the positive ground state of the transverse-field
    Ising model, or of the Heisenberg model at zero magnetisation after the Marshall
    rotation) has this form, so the network spends no capacity on learning the symmetry.

    On a constrained space only the sector of zero magnetisation is invariant under the
    flip; it is masked as for every autoregressive model (the base class's constraint).
    """

    model: AbstractARNN
    first: int = eqx.field(static=True)

    def __init__(self, model: eqx.Module):
        """**Arguments:**

        - `model`: an autoregressive model ([`nqzoo.models.AbstractARNN`][], fast or slow)
          on two-level sites: `Spin(0.5, N)`, `Qubit(N)`, or their sector of zero
          magnetisation (`Spin(0.5, N, total_sz=0)`).

        **Raises:** `TypeError` if `model` is not autoregressive; `ValueError` for a space
        without two local states or with a constraint the flip does not preserve.
        """
        hilbert = _check_flippable(model)
        self.model = model
        order = np.asarray(model.reorder(np.arange(hilbert.size)))
        self.first = int(order[0])

    def flipped(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> tuple[Real[Array, "*batch {self.hilbert.size}"], Bool[Array, "*batch"]]:
        """`(y, f)`: `y` is `x` with every site flipped where `f`, i.e. where the first site
        of the order holds the second local state, so that `y` always starts with the first
        local state."""
        x = jnp.asarray(x)
        a, b = self.hilbert.local_states
        f = x[..., self.first] == b
        return jnp.where(f[..., None], (a + b) - x, x), f

    def _first_row(self, dtype) -> Array:
        return jnp.full((2,), -math.log(2) / self.machine_pow, dtype)

    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """The wrapped model's log-conditionals of `y(x)`, with the local states exchanged
        where `x` was flipped, and $-\\log(2)/p$ for both values of the first site."""
        y, f = self.flipped(x)
        log_psi = self.model.conditionals_log_psi(y)
        log_psi = jnp.where(f[..., None, None], log_psi[..., ::-1], log_psi)
        return log_psi.at[..., self.first, :].set(self._first_row(log_psi.dtype))

    def step(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """The wrapped model's `step` on `y(x)` (its cache, if it is a fast model, holds
        the flipped configuration), the two values exchanged where `x` was flipped; the
        constant $-\\log(2)/p$ at the first site (whose wrapped step still runs, for the
        cache)."""
        y, f = self.flipped(x)
        log_psi, state = self.model.step(y, index, state)
        log_psi = jnp.where(f, log_psi[::-1], log_psi)
        return jnp.where(index == self.first, self._first_row(log_psi.dtype), log_psi), state

    def conditional(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
        *,
        index_sum: Int[ArrayLike, ""] | None = None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """One sampling step, as [`AbstractARNN.conditional`][nqzoo.models.AbstractARNN.conditional]
        (through `step`, then the constraint).

        **Raises:** `TypeError` if the wrapped model is fast and `state` is not its
        `eqx.nn.State`.
        """
        if isinstance(self.model, AbstractFastARNN) and not isinstance(state, eqx.nn.State):
            name = type(self.model).__name__
            raise TypeError(
                f"SpinFlipSymmetricARNN wraps the fast model {name}, which needs its cache "
                f"state, got state={type(state).__name__}: pass the state from "
                f"`eqx.nn.make_with_state({name})(...)` (to nqz.sample or conditional)."
            )
        return super().conditional(x, index, state, index_sum=index_sum)

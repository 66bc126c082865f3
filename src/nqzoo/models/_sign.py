r"""Marshall's sign rule as a wrapper that any model can wear.

$\psi'(x) = U(x)\,\psi(x)$ with $U = \prod_{i \in B} \sigma^z_i$ on the odd sublattice $B$
of a bipartite lattice: $\psi'(x) = (-1)^{n_\downarrow^B(x)}\,\psi(x)$. The sign factorises
over the sites, so on an autoregressive model it is a per-site phase of the conditionals and
the wrapped model stays autoregressive (and exactly sampleable).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Inexact, Int, Real

from ..hilbert import AbstractDiscreteHilbert
from ..lattice import Grid
from ._autoreg import AbstractARNN, AbstractARNNWrapper, accepts_index_sum


__all__ = ["MarshallSign", "MarshallSignARNN", "marshall_sign"]


def _check_sign_rule(model: object, lattice: object) -> None:
    """The model has a two-level discrete `hilbert` of the lattice's size, on a bipartite
    lattice."""
    hilbert = getattr(model, "hilbert", None)
    if not isinstance(hilbert, AbstractDiscreteHilbert) or hilbert.local_size != 2:
        raise TypeError(
            "Marshall's sign rule acts on two-level sites: model must have a `hilbert` "
            "attribute with two local states (Spin(0.5, N) or Qubit(N)), got "
            f"{type(model).__name__} with hilbert={hilbert!r}."
        )
    if not isinstance(lattice, Grid):
        raise TypeError(
            "lattice must be an nqzoo lattice (nqzoo.lattice.Chain, Square, Hypercube or "
            f"Grid), got lattice={lattice!r}."
        )
    if lattice.n_sites != hilbert.size:
        raise ValueError(
            f"lattice={lattice!r} has {lattice.n_sites} sites but the model's Hilbert space "
            f"has N={hilbert.size}; use a lattice of N sites."
        )
    if not lattice.is_bipartite:
        raise ValueError(
            f"Marshall's sign rule needs a bipartite lattice, but lattice={lattice!r} has a "
            "periodic axis of odd length; use even periodic lengths or open boundaries."
        )


def _with_phase(log_psi: Inexact[Array, "*shape"], phase: Float[Array, "*shape"]) -> Array:
    """`log_psi + i phase`, complex (of the real dtype of `log_psi`)."""
    real = log_psi.real
    return jax.lax.complex(real, jnp.imag(log_psi) + phase.astype(real.dtype))


class MarshallSign(eqx.Module):
    r"""Any model with Marshall's sign rule: $\log\psi'(x) = \log\psi(x) + i\pi\,
    n_\downarrow^B(x)$.

    $\psi'(x) = (-1)^{n_\downarrow^B(x)}\,\psi(x)$, where $n_\downarrow^B$ counts the sites of
    the odd sublattice $B$ (`lattice.sublattice() == 1`) holding the second local state
    (spin down, $-1$, for `Spin(0.5, N)`; 1 for `Qubit(N)`). That is $\psi' = U\psi$ with
    $U = \prod_{i \in B}\sigma^z_i$, the rotation of
    [`nqzoo.operators.Heisenberg`][] with `sign_rule=True`:
    $\langle\psi'|H|\psi'\rangle = \langle\psi|U H U|\psi\rangle$. On a sector of fixed
    magnetisation it equals Marshall's $(-1)^{n_\uparrow^A}$ up to a global sign.

    The log-amplitude is complex (the real dtype of the wrapped model's). For an
    autoregressive model use [`nqzoo.models.marshall_sign`][], which returns a
    [`nqzoo.models.MarshallSignARNN`][] that can still be sampled with [`nqzoo.sample`][].
    """

    model: eqx.Module
    lattice: Grid = eqx.field(static=True)

    def __init__(self, model: eqx.Module, lattice: Grid):
        """**Arguments:**

        - `model`: any model with a `hilbert` attribute of two-level sites (`Spin(0.5, N)`,
          `Qubit(N)`) and `model(x) -> log ψ(x)`.
        - `lattice`: a bipartite nqzoo lattice of `N` sites.

        **Raises:** `TypeError` for a model without a two-level discrete `hilbert`;
        `ValueError` for a lattice of the wrong size or that is not bipartite.
        """
        _check_sign_rule(model, lattice)
        self.model = model
        self.lattice = lattice

    @property
    def hilbert(self) -> AbstractDiscreteHilbert:
        return self.model.hilbert

    def sign_sites(self) -> Bool[np.ndarray, "{self.hilbert.size}"]:  # noqa: F821
        """The sites of sublattice $B$, where a down spin flips the sign: `(N,)` bools."""
        return np.asarray(self.lattice.sublattice()) == 1

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """`log ψ'(x) = log ψ(x) + iπ n_down^B(x)`, complex, shape `(*batch,)`."""
        x = jnp.asarray(x)
        log_psi = self.model(x)
        down = self.hilbert.states_to_local_indices(x) == 1
        n_down = jnp.sum(down & jnp.broadcast_to(self.sign_sites(), down.shape), axis=-1)
        return _with_phase(log_psi, jnp.pi * (n_down % 2).astype(log_psi.real.dtype))


class MarshallSignARNN(AbstractARNNWrapper):
    r"""An autoregressive model with Marshall's sign rule, still autoregressive.

    The sign $(-1)^{n_\downarrow^B(x)}$ of [`nqzoo.models.MarshallSign`][] is a product of
    one factor per site, so it is a phase of the conditionals:
    $\log\psi'_i(k \mid x_{<i}) = \log\psi_i(k \mid x_{<i}) + i\pi\,[i \in B,\ k = 1]$.
    The probabilities $|\psi'_i|^p$ are those of the wrapped model, so `conditional` is the
    wrapped model's (its cache and state, if it is a fast model; pass its `state` to
    [`nqzoo.sample`][]), and the constraint of a constrained space applies as usual.
    Build it with [`nqzoo.models.marshall_sign`][].
    """

    model: AbstractARNN
    lattice: Grid = eqx.field(static=True)

    def __init__(self, model: AbstractARNN, lattice: Grid):
        """**Arguments:**

        - `model`: an autoregressive model on `Spin(0.5, N)` or `Qubit(N)` (optionally
          constrained).
        - `lattice`: a bipartite nqzoo lattice of `N` sites.

        **Raises:** as [`nqzoo.models.MarshallSign`][]; `TypeError` if `model` is not an
        [`nqzoo.models.AbstractARNN`][].
        """
        if not isinstance(model, AbstractARNN):
            raise TypeError(
                f"MarshallSignARNN wraps autoregressive models, got model="
                f"{type(model).__name__}; use nqzoo.models.MarshallSign for other models."
            )
        _check_sign_rule(model, lattice)
        self.model = model
        self.lattice = lattice

    def phases(self) -> Float[np.ndarray, "{self.hilbert.size} 2"]:  # noqa: F821
        """The phase added to each log-conditional: `π` at `[i, 1]` for `i` in sublattice
        $B$, 0 elsewhere; `(N, 2)`."""
        table = np.zeros((self.hilbert.size, 2))
        table[:, 1] = np.pi * (np.asarray(self.lattice.sublattice()) == 1)
        return table

    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """The wrapped model's log-conditionals plus the sign's phases (complex)."""
        log_psi = self.model.conditionals_log_psi(x)
        phase = jnp.broadcast_to(jnp.asarray(self.phases(), log_psi.real.dtype), log_psi.shape)
        return _with_phase(log_psi, phase)

    def step(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """The wrapped model's `step` plus the phase of site `index`."""
        log_psi, state = self.model.step(x, index, state)
        row = jax.lax.dynamic_index_in_dim(
            jnp.asarray(self.phases(), log_psi.real.dtype), index, axis=0, keepdims=False
        )
        return _with_phase(log_psi, row), state

    def conditional(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
        *,
        index_sum: Int[ArrayLike, ""] | None = None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """The wrapped model's `conditional` (a sign leaves the probabilities unchanged), so
        its fast step and state carry over.

        **Arguments:** as [`conditional`][nqzoo.models.AbstractARNN.conditional].

        **Returns:** `(probabilities (local_size,), state)`.
        """
        if accepts_index_sum(self.model):
            return self.model.conditional(x, index, state, index_sum=index_sum)
        # a hand-written `conditional` without the running count (nqz.sample masks it)
        return self.model.conditional(x, index, state)


def marshall_sign(model: eqx.Module, lattice: Grid) -> MarshallSign | MarshallSignARNN:
    r"""Put Marshall's sign rule on a model: $\psi'(x) = (-1)^{n_\downarrow^B(x)}\,\psi(x)$.

    **Arguments:**

    - `model`: any model on two-level sites (`Spin(0.5, N)`, `Qubit(N)`).
    - `lattice`: a bipartite nqzoo lattice of `N` sites.

    **Returns:** a [`nqzoo.models.MarshallSignARNN`][] if `model` is an
    [`nqzoo.models.AbstractARNN`][] (still autoregressive, sampled with [`nqzoo.sample`][]
    and the wrapped model's `state`), else a [`nqzoo.models.MarshallSign`][].

    **Raises:** as [`nqzoo.models.MarshallSign`][].
    """
    if isinstance(model, AbstractARNN):
        return MarshallSignARNN(model, lattice)
    return MarshallSign(model, lattice)

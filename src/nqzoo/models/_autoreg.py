"""The autoregressive bases: normalised conditionals, log-amplitudes, one sampling step."""

import abc
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Inexact, Int, Real

from .._misc import check_hilbert, positive_number, site_index
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert


def check_autoregressive_hilbert(hilbert: object) -> AbstractDiscreteHilbert:
    """Check that `hilbert` is a discrete, homogeneous space whose constraint, if any,
    autoregressive conditionals can enforce site by site.

    Unconstrained spaces and fixed sums of local values (`Spin(s, N, total_sz=M)`,
    `Fock(n_max, N, n_particles=K)`, see
    `hilbert.index_sum_constraint`) are
    accepted.

    **Raises:** `TypeError` for anything that is not an
    [`nqzoo.hilbert.AbstractDiscreteHilbert`][] (e.g. a continuous
    [`nqzoo.hilbert.Particles`][] box, or a NetKet space); `ValueError` for a space with any
    other constraint, which the conditionals cannot mask (sampling it would put weight
    outside the space).
    """
    continuous = " (a continuous space was given)" if isinstance(hilbert, AbstractHilbert) else ""
    check_hilbert(
        hilbert,
        AbstractDiscreteHilbert,
        "Autoregressive networks need a discrete nqzoo Hilbert space (Spin, Qubit, Fock) whose "
        f"sites all take the same local values{continuous}",
    )
    if hilbert.constrained and hilbert.index_sum_constraint is None:
        raise ValueError(
            f"Autoregressive networks enforce a constraint by masking their conditionals site "
            f"by site, which works for a fixed sum of local values only (Spin total_sz, Fock "
            f"n_particles); hilbert={hilbert!r} has another constraint (its "
            f"index_sum_constraint is None). Use an unconstrained space or a sum constraint."
        )
    return hilbert


def accepts_index_sum(model: "AbstractARNN") -> bool:
    """Whether `model.conditional` takes the running `index_sum` keyword (the base classes'
    do; a hand-written override may not, and is then masked by its caller)."""
    try:
        return "index_sum" in inspect.signature(model.conditional).parameters
    except (TypeError, ValueError):  # pragma: no cover - a callable without a signature
        return False


#: The largest `machine_pow` accepted. Normalising `|ψ_i|^p` divides by
#: `logsumexp(p Re z) / p`, whose rounding error `p * eps * |z|` the probabilities
#: `exp(p Re log ψ_i)` then carry in their exponent: near `p = 1e300` every probability
#: comes out 0 (or inf) without a warning, and already at `p = 1e6` float32 conditionals are
#: no longer normalised. Up to 1000 both precisions are exact to their rounding, and
#: `|ψ|^1000` already puts all the weight on the largest amplitude wherever amplitudes differ
#: by more than a percent: a larger power is a mistake, not a sharper distribution.
MAX_MACHINE_POW = 1000


def check_machine_pow(machine_pow: object) -> int | float:
    """Check that `machine_pow` is a finite positive number (an int such as 2 or a float)
    no larger than `MAX_MACHINE_POW` (1000)."""
    value = positive_number(machine_pow, "machine_pow", " (2 samples |psi|^2)")
    if value > MAX_MACHINE_POW:
        raise ValueError(
            f"machine_pow must be at most {MAX_MACHINE_POW}, got machine_pow={machine_pow!r}: "
            "the conditionals |psi_i|^machine_pow are normalised to within "
            "machine_pow * eps, which for larger powers loses all precision (every "
            "probability 0 or inf). Use machine_pow=2 for the Born distribution |psi|^2."
        )
    return value


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


def mask_log_conditionals(
    log_psi: Inexact[Array, "*batch local_size"],
    allowed: Bool[Array, "*batch local_size"],
    machine_pow: int | float,
) -> Inexact[Array, "*batch local_size"]:
    r"""Restrict log-conditionals to the allowed local values and renormalise over them.

    $\log\psi'_i(k) = \log\psi_i(k) - \frac1p \log\sum_{k' \text{ allowed}}
    |\psi_i(k')|^p$ for allowed $k$ and $-\infty$ otherwise, so that
    $\sum_k |\psi'_i(k)|^p = 1$ over the allowed values ($p$ = `machine_pow`); the phases
    are carried through. A row without any allowed value (a prefix that already violates the
    constraint) is all $-\infty$, without NaNs in values or gradients.
    """
    none = ~jnp.any(allowed, axis=-1, keepdims=True)
    # rows with nothing allowed normalise over everything (finite, then masked): no -inf - -inf
    weights = jnp.where(allowed | none, machine_pow * log_psi.real, -jnp.inf)
    lse = jax.nn.logsumexp(weights, axis=-1, keepdims=True)
    return jnp.where(allowed, log_psi - (lse / machine_pow).astype(log_psi.dtype), -jnp.inf)


class AbstractARNN(eqx.Module):
    r"""An autoregressive neural quantum state.

    $\psi(x) = \prod_i \psi_i(x_i \mid x_{<i})$ with normalised conditionals
    $\sum_k |\psi_i(k \mid x_{<i})|^p = 1$, $p$ = `machine_pow`, so that
    $\sum_x |\psi(x)|^p = 1$ exactly and $|\psi|^p$ can be sampled directly with
    [`nqzoo.sample`][].

    Subclasses provide `hilbert` (a homogeneous discrete space), `machine_pow` and
    [`conditionals_log_psi`][nqzoo.models.AbstractARNN.conditionals_log_psi], which must
    return *normalised* log-conditionals (use [`nqzoo.models.normalize_log_conditionals`][]).
    Everything else (log-amplitudes, probabilities, the sampling step
    [`conditional`][nqzoo.models.AbstractARNN.conditional], sampling) follows.

    **Constrained spaces.** On `Spin(s, N, total_sz=M)` or `Fock(n_max, N, n_particles=K)`
    the base class enforces the constraint, for every subclass: at site $i$ the local values
    after which the constraint can no longer be met (given $x_{<i}$ and the $N - 1 - i$ sites
    left, see
    `hilbert.allowed_local_indices`)
    get zero weight and the others are renormalised
    (`nqzoo.models.mask_log_conditionals`). Then $\sum_x |\psi(x)|^p = 1$ over the
    constrained space and $\log\psi(x) = -\infty$ outside it. The two hooks a subclass
    implements, `conditionals_log_psi` and `step`, return the *network's* conditionals,
    normalised over all local values; the public methods `__call__`, `conditionals`,
    `conditional` and [`nqzoo.sample`][] return the constrained ones (on an unconstrained
    space both are the same).
    """

    hilbert: eqx.AbstractVar[AbstractDiscreteHilbert]
    machine_pow: eqx.AbstractVar[int | float]

    def __check_init__(self):
        check_fields(self)
        check_autoregressive_hilbert(self.hilbert)
        check_machine_pow(self.machine_pow)

    @abc.abstractmethod
    def conditionals_log_psi(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """The network's normalised log-conditionals `log ψ_i(k | x_<i)` at every site.

        On a constrained space these are not masked yet (the hook a subclass implements);
        `__call__` and `conditionals` apply the constraint.

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`; entry `[..., i, k]` is the log-amplitude of
        site `i` taking `hilbert.local_states[k]` given `x[..., :i]`.
        """

    def reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """`x` with its site axis in the autoregressive order: entry `k` is the `k`-th site
        generated (NetKet's `reorder`). The identity here, where site `i` comes `i`-th;
        a model with another order (e.g. a snake on a 2D lattice) overrides it together with
        `inverse_reorder`. [`nqzoo.sample`][] visits the sites
        `model.reorder(jnp.arange(N))` in turn, and the constraint of a constrained space
        counts the sites in this order.
        """
        return jnp.asarray(x)

    def inverse_reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """The inverse of `reorder`: from the autoregressive order back to site order."""
        return jnp.asarray(x)

    def constrain(
        self,
        log_psi: Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"],
        x: Real[ArrayLike, "*batch {self.hilbert.size}"],
    ) -> Inexact[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Apply the Hilbert space's constraint to the log-conditionals of every site of `x`.

        The identity on an unconstrained space; otherwise
        `nqzoo.models.mask_log_conditionals` with the allowed values of every site given
        the local indices of the sites generated before it (one cumulative sum in the
        autoregressive order).

        **Arguments:**

        - `log_psi`: normalised log-conditionals, as returned by `conditionals_log_psi(x)`.
        - `x`: the configurations they were computed for.

        **Returns:** the constrained log-conditionals, same shape.
        """
        hilbert = self.hilbert
        if not hilbert.constrained:
            return log_psi
        ordered = self.reorder(hilbert.states_to_local_indices(x))
        before = jnp.cumsum(ordered, axis=-1, dtype=jnp.int32) - ordered  # earlier sites' sum
        positions = jnp.broadcast_to(jnp.arange(hilbert.size, dtype=jnp.int32), ordered.shape)
        allowed = self.inverse_reorder(hilbert.allowed_local_indices(positions, before), -2)
        return mask_log_conditionals(log_psi, allowed, self.machine_pow)

    def conditionals(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Float[Array, "*batch {self.hilbert.size} {self.hilbert.local_size}"]:
        """Conditional probabilities `|ψ_i(k | x_<i)|^machine_pow` (constrained).

        **Arguments:**

        - `x`: configurations `(*batch, N)` of local values.

        **Returns:** `(*batch, N, local_size)`; each row sums to 1 (over the allowed values
        on a constrained space; a row after a prefix that already breaks the constraint is 0).
        """
        log_psi = self.constrain(self.conditionals_log_psi(x), x)
        return jnp.exp(self.machine_pow * log_psi.real)

    def step(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """The network's normalised log-conditional `log ψ_index(· | x_<index)` of one site.

        This default recomputes the conditionals of the whole configuration and reads row
        `index` (a cost that grows with `N`); a model with a cheaper step overrides it (fast
        models, [`nqzoo.models.AbstractFastARNN`][], must). Like `conditionals_log_psi` it is
        not masked by a constraint: [`conditional`][nqzoo.models.AbstractARNN.conditional]
        does that.

        **Arguments:** as [`conditional`][nqzoo.models.AbstractARNN.conditional].

        **Returns:** `(log-conditional (local_size,), state)`.
        """
        traced = isinstance(index, jax.core.Tracer)
        index = site_index(index, self.hilbert.size)  # a concrete index out of range raises
        log_psi = self.conditionals_log_psi(x)
        row = jax.lax.dynamic_index_in_dim(log_psi, index, axis=0, keepdims=False)
        if traced:  # out of range: NaN rather than the conditional of the clamped site
            in_range = (index >= 0) & (index < self.hilbert.size)
            row = jnp.where(in_range, row, jnp.full((), jnp.nan, row.dtype))
        return row, state

    def conditional(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
        *,
        index_sum: Int[ArrayLike, ""] | None = None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State | None]:
        """One sampling step: the (constrained) probabilities of site `index` given
        `x[:index]`.

        `step` (by default a recomputation of the whole
        configuration, whose cost grows with `N`; cheaper in fast models), then the
        constraint of a constrained space.
        [`nqzoo.sample`][] calls it for `index = 0, 1, …, N-1`, mapped over chains.

        **Arguments:**

        - `x`: one configuration `(N,)`; only sites before `index` (in the autoregressive
          order, see `reorder`) are read.
        - `index`: the site to sample (a traced integer is fine).
        - `state`: the cache state of a fast model; `None` (and returned unchanged) here.
        - `index_sum`: on a constrained space, the sum of the local indices of the sites
          before `index` if the caller keeps count (the sampler carries it through its
          scan); by default it is summed from `x`. Ignored on an unconstrained space.

        **Returns:** `(probabilities (local_size,), state)`, the probabilities being
        `|ψ_index(k | x_<index)|^machine_pow`, zero for values that break the constraint.
        """
        log_psi, state = self.step(x, index, state)
        hilbert = self.hilbert
        if not hilbert.constrained:
            return jnp.exp(self.machine_pow * log_psi.real), state
        # the position of site `index` in the autoregressive order (`index` itself by default)
        positions = self.inverse_reorder(jnp.arange(hilbert.size, dtype=jnp.int32))
        position = jax.lax.dynamic_index_in_dim(positions, index, keepdims=False)
        if index_sum is None:
            idx = hilbert.states_to_local_indices(x)
            index_sum = jnp.sum(jnp.where(positions < position, idx, 0))
        allowed = hilbert.allowed_local_indices(position, index_sum)
        # Renormalised over the allowed values relative to the largest of them (which is
        # exp(0) = 1 before the division, so the weights cannot all underflow). In the
        # sampler's inner loop this costs a fraction of a logsumexp.
        w = jnp.where(allowed, self.machine_pow * log_psi.real, -jnp.inf)
        top = jnp.max(w, axis=-1, keepdims=True)
        p = jnp.exp(w - jnp.where(top > -jnp.inf, top, 0))  # nothing allowed: all 0
        total = jnp.sum(p, axis=-1, keepdims=True)
        return p / jnp.where(total > 0, total, 1), state

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """Normalised `log ψ(x)`, shape `(*batch,)`.

        `-inf` (in the real part) for a configuration outside a constrained space, and NaN
        for one holding a value that is not one of `hilbert.local_states` (NaN, 0.5 on a
        Spin-1/2 space, 3 on `Fock(2, N)`: see
        [`is_local_state`][nqzoo.hilbert.AbstractDiscreteHilbert.is_local_state]), whether
        or not the call is traced.
        """
        log_psi_cond = self.constrain(self.conditionals_log_psi(x), x)
        idx: Int[Array, "*batch {self.hilbert.size}"] = self.hilbert.states_to_local_indices(x)
        idx = jnp.clip(idx, 0, self.hilbert.local_size - 1)  # invalid rows are NaN below
        picked = jnp.take_along_axis(log_psi_cond, idx[..., None], axis=-1)[..., 0]
        log_psi = picked.sum(axis=-1)
        valid = jnp.all(self.hilbert.is_local_state(x), axis=-1)
        return jnp.where(valid, log_psi, jnp.full((), jnp.nan, log_psi.dtype))


class AbstractARNNWrapper(AbstractARNN):
    """An autoregressive model that wraps another (`model`) and keeps its space, power and
    order: the shared frame of [`nqzoo.models.MarshallSignARNN`][] and
    [`nqzoo.models.SpinFlipSymmetricARNN`][]."""

    model: eqx.AbstractVar[AbstractARNN]

    @property
    def hilbert(self) -> AbstractDiscreteHilbert:
        return self.model.hilbert

    @property
    def machine_pow(self) -> int | float:
        return self.model.machine_pow

    def reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """The wrapped model's autoregressive order."""
        return self.model.reorder(x, axis)

    def inverse_reorder(self, x: ArrayLike, axis: int = -1) -> Array:
        """The wrapped model's inverse order."""
        return self.model.inverse_reorder(x, axis)


class AbstractFastARNN(AbstractARNN):
    """An autoregressive network with a cache for sampling steps whose cost does not grow
    with `N`.

    Built with `eqx.nn.make_with_state`; the cache lives in an `eqx.nn.State`, per
    configuration (no batch axis; samplers `vmap` over chains). A state whose caches are all
    zeros is the initial state of a sampling pass. Subclasses implement
    [`step`][nqzoo.models.AbstractFastARNN.step] (the network's log-conditional from the
    cache); `conditional` checks the state, calls it and applies the constraint of a
    constrained space.
    """

    def conditional(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State | None = None,
        *,
        index_sum: Int[ArrayLike, ""] | None = None,
    ) -> tuple[Float[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """One sampling step from the cache: the (constrained) probabilities of site `index`
        given `x[:index]`.

        Call it for `index = 0, 1, …, N-1` in order, starting from the state returned by
        `eqx.nn.make_with_state` (or any state whose leaves are all zero).
        `jax.vmap(model.conditional, in_axes=(0, None, 0))` steps many chains at once.

        **Arguments:**

        - `x`: one configuration `(N,)`; sites `< index` must hold the sampled values.
        - `index`: the site to sample (a traced integer is fine).
        - `state`: the cache state (required).
        - `index_sum`: on a constrained space, the sum of the local indices of the sites
          before `index` (summed from `x` if not given), as in
          [`AbstractARNN.conditional`][nqzoo.models.AbstractARNN.conditional].

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
        return super().conditional(x, index, state, index_sum=index_sum)

    @abc.abstractmethod
    def step(
        self,
        x: Real[ArrayLike, " {self.hilbert.size}"],
        index: Int[ArrayLike, ""],
        state: eqx.nn.State,
    ) -> tuple[Inexact[Array, " {self.hilbert.local_size}"], eqx.nn.State]:
        """The network's normalised log-conditional `log ψ_index(· | x_<index)` from the
        cache (not masked by a constraint: `conditional` does that).

        **Arguments:** as [`conditional`][nqzoo.models.AbstractFastARNN.conditional].

        **Returns:** `(log-conditional (local_size,), new state)`.
        """

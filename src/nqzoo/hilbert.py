"""Hilbert spaces: discrete lattices of local degrees of freedom and a periodic particle box.

Hilbert spaces are immutable and hashable (frozen dataclasses), so they can be static fields of
models. Discrete spaces follow NetKet's local-state conventions: Spin-1/2 is `[+1, -1]`, Spin-1 is
`[2, 0, -2]` (the values are 2m), Qubit is `[0, 1]` and Fock is `[0, …, n_max]`; samples are int8.
"""

import abc
import dataclasses
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Num, PRNGKeyArray, Real

from ._misc import batch_shape, int_at_least, positive_int, positive_number, RealNumber


__all__ = [
    "AbstractHilbert",
    "AbstractDiscreteHilbert",
    "Spin",
    "Qubit",
    "Fock",
    "Particles",
    "MAX_ENUMERABLE_STATES",
]

#: `all_states()` refuses spaces with more states than this.
MAX_ENUMERABLE_STATES = 2**24


class AbstractHilbert(abc.ABC):
    """Base class of every Hilbert space: a configuration is a vector of `size` numbers."""

    @property
    @abc.abstractmethod
    def size(self) -> int:
        """Length of one configuration vector."""


class AbstractDiscreteHilbert(AbstractHilbert):
    """A lattice of `N` sites, each taking one of the same `local_size` values.

    The local values form an arithmetic progression `start, start + step, …` (this covers Spin,
    Qubit and Fock), so mapping values to indices is affine, exactly as in NetKet.
    """

    N: int

    @property
    @abc.abstractmethod
    def local_states(self) -> tuple[int, ...]:
        """The values a site can take, in NetKet's order (index 0 first)."""

    @property
    def constrained(self) -> bool:
        """Whether only a subset of the product space is allowed (e.g. fixed total Sz)."""
        return False

    @property
    def index_sum_constraint(self) -> int | None:
        r"""The constraint as a fixed sum of local indices, or `None`.

        `Spin(s, N, total_sz=M)` and `Fock(n_max, N, n_particles=K)` allow exactly the
        configurations with $\sum_i \mathrm{idx}(x_i) = T$, $\mathrm{idx}$ the position of a
        value in `local_states`: $T = sN - M$ for spins (index 0 is $m = s$) and $T = K$ for
        Fock spaces. This is the form in which autoregressive models enforce a constraint
        site by site (see
        [`allowed_local_indices`][nqzoo.hilbert.AbstractDiscreteHilbert.allowed_local_indices]).
        `None` for unconstrained spaces and for any other kind of constraint.
        """
        return None

    def allowed_local_indices(
        self, position: Int[ArrayLike, "*#batch"], index_sum: Int[ArrayLike, "*#batch"]
    ) -> Bool[Array, "*batch {self.local_size}"]:
        r"""Which local values the next site may take so that the constraint stays reachable.

        Sites are filled in one at a time (in order `0, 1, …` or in an autoregressive
        model's own order); `position` sites have been filled, their local indices summing
        to `index_sum`. With $T$ the
        [`index_sum_constraint`][nqzoo.hilbert.AbstractDiscreteHilbert.index_sum_constraint],
        $S$ = `index_sum` and $r = N - 1 - $ `position` sites left after this one, local
        index $k$ is allowed iff the remainder can still be placed:
        $0 \le T - S - k \le r\,(\text{local\_size} - 1)$
        (for spins: the remaining magnetisation is reachable with the remaining spins; for
        bosons: the remaining particles fit in the remaining sites and are not negative).
        Unconstrained spaces allow every value.

        **Arguments:**

        - `position`: the number of sites filled before this one (the site index when the
          sites are filled in order), broadcast against `index_sum`.
        - `index_sum`: the sum of the local indices of those sites.

        **Returns:** a boolean array `(*batch, local_size)`.

        **Raises:** `ValueError` for a constrained space whose constraint is not a sum.
        """
        position, index_sum = jnp.broadcast_arrays(jnp.asarray(position), jnp.asarray(index_sum))
        k = jnp.arange(self.local_size, dtype=jnp.int32).reshape(
            (1,) * position.ndim + (self.local_size,)
        )
        if not self.constrained:
            return jnp.broadcast_to(k >= 0, (*position.shape, self.local_size))
        target = self.index_sum_constraint
        if target is None:
            raise ValueError(
                f"hilbert={self!r} has a constraint that is not a fixed sum of local values, "
                "so it cannot be enforced site by site."
            )
        remaining = (self.N - 1 - position.astype(jnp.int32)) * (self.local_size - 1)
        left = (target - index_sum.astype(jnp.int32))[..., None] - k
        return (left >= 0) & (left <= remaining[..., None])

    @property
    def size(self) -> int:
        return self.N

    @property
    def local_size(self) -> int:
        """Number of values a site can take."""
        return len(self.local_states)

    @property
    def n_states(self) -> int:
        """Number of configurations in the (unconstrained) product space."""
        return self.local_size**self.N

    @property
    def dtype(self) -> np.dtype:
        """Dtype of configurations (int8, as NetKet's samples, when the values fit)."""
        lo, hi = min(self.local_states), max(self.local_states)
        return np.dtype(np.int8) if -128 <= lo and hi <= 127 else np.dtype(np.int32)

    def states_to_local_indices(
        self, x: Real[ArrayLike, "*batch {self.N}"]
    ) -> Int[Array, "*batch {self.N}"]:
        """Map local values to their indices in `local_states` (affine, like NetKet).

        **Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** int32 indices of the same shape.
        """
        start = self.local_states[0]
        step = self.local_states[1] - start if self.local_size > 1 else 1
        x = jnp.asarray(x)
        return jnp.round((x - start) / step).astype(jnp.int32)

    def is_local_state(
        self, x: Real[ArrayLike, "*batch {self.N}"]
    ) -> Bool[Array, "*batch {self.N}"]:
        """Which entries of `x` are one of `local_states`.

        `False` for NaN, for a value between two local states (0 or 0.5 on a Spin-1/2 space)
        and for a value beyond them (3 on `Fock(2, N)`). Models that index by local state
        (autoregressive models, [`nqzoo.models.RBMMultiVal`][]) give `log ψ = NaN` to a
        configuration holding such a value, instead of the amplitude of the state its index
        rounds to.

        **Arguments:**

        - `x`: configurations, `(*batch, N)`.

        **Returns:** a boolean array of the same shape.
        """
        x = jnp.asarray(x)
        idx = self.states_to_local_indices(x)
        inside = (idx >= 0) & (idx < self.local_size)
        table = jnp.asarray(self.local_states, dtype=x.dtype)
        return inside & (table[jnp.clip(idx, 0, self.local_size - 1)] == x)

    def local_indices_to_states(
        self, idx: Int[ArrayLike, "*batch {self.N}"]
    ) -> Num[Array, "*batch {self.N}"]:
        """Inverse of
        [`states_to_local_indices`][nqzoo.hilbert.AbstractDiscreteHilbert.states_to_local_indices].
        """
        table = jnp.asarray(self.local_states, dtype=self.dtype)
        return table[jnp.asarray(idx)]

    def all_states(self) -> Num[Array, "n_states {self.N}"]:
        """Every configuration, last site fastest and local index 0 first (NetKet's order).

        Constrained spaces (e.g. `Spin(..., total_sz=0)`) list their states in ascending
        lexicographic order of the values, as NetKet does.

        **Raises:** `ValueError` when the space has more than
        [`MAX_ENUMERABLE_STATES`][nqzoo.hilbert.MAX_ENUMERABLE_STATES] states.
        """
        if self.n_states > MAX_ENUMERABLE_STATES:
            raise ValueError(
                f"{self!r} has {self.local_size}^{self.N} = {self.n_states} states, more than "
                f"all_states() enumerates (MAX_ENUMERABLE_STATES = {MAX_ENUMERABLE_STATES})."
            )
        powers = self.local_size ** np.arange(self.N - 1, -1, -1)
        idx = (np.arange(self.n_states)[:, None] // powers) % self.local_size
        states = np.asarray(self.local_states, dtype=self.dtype)[idx]
        states = states[self._allowed(states)]
        if self.constrained:
            # NetKet lists the states of a constrained space in ascending lexicographic order
            # of the values (first site slowest), not in local-index order.
            states = states[np.lexsort(states.T[::-1])]
        return jnp.asarray(states)

    def _allowed(self, states: np.ndarray) -> np.ndarray:
        return np.ones(states.shape[0], dtype=bool)

    def random_state(
        self, key: PRNGKeyArray, shape: int | np.integer | Sequence[RealNumber] = ()
    ) -> Num[Array, "..."]:
        """Uniformly random configurations of shape `(*shape, N)`: uniform over the allowed
        configurations of a constrained space (`total_sz`, `n_particles`).

        **Arguments:**

        - `key`: a JAX PRNG key.
        - `shape`: batch shape (an int or a tuple).
        """
        shape = batch_shape(shape)
        if self.constrained:
            return self._random_index_sum_state(key, shape)
        idx = jax.random.randint(key, (*shape, self.N), 0, self.local_size)
        return self.local_indices_to_states(idx)

    def _random_index_sum_state(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Array:
        """Configurations drawn uniformly from a sum-constrained space, site by site: site
        `i` takes index `k` with probability proportional to the number of completions."""
        target, n, local_size = self.index_sum_constraint, self.N, self.local_size
        if target is None:
            raise ValueError(
                f"random_state is only implemented for unconstrained spaces and fixed sums of "
                f"local values (total_sz, n_particles), got hilbert={self!r}."
            )
        # log_counts[r, m]: log of the number of r-site configurations whose indices sum to m
        log_counts = np.full((n + 1, target + 1), -np.inf)
        log_counts[0, 0] = 0.0
        for r in range(1, n + 1):
            shifted = np.full((local_size, target + 1), -np.inf)
            for k in range(local_size):
                shifted[k, k:] = log_counts[r - 1, : target + 1 - k]
            log_counts[r] = np.logaddexp.reduce(shifted, axis=0)
        table = jnp.asarray(log_counts, dtype=jnp.zeros((), dtype=float).dtype)
        ks = jnp.arange(local_size, dtype=jnp.int32)

        def one(key):
            def site(carry, inputs):
                index_sum = carry
                i, subkey = inputs
                left = target - index_sum - ks
                logits = jnp.where(left >= 0, table[n - 1 - i, jnp.clip(left, 0)], -jnp.inf)
                k = jax.random.categorical(subkey, logits).astype(jnp.int32)
                return index_sum + k, k

            sites = jnp.arange(n, dtype=jnp.int32)
            _, idx = jax.lax.scan(site, jnp.int32(0), (sites, jax.random.split(key, n)))
            return idx

        keys = jax.random.split(key, math.prod(shape)) if shape else key[None]
        idx = jax.vmap(one)(keys).reshape(*shape, n)
        return self.local_indices_to_states(idx)


@dataclasses.dataclass(frozen=True)
class Spin(AbstractDiscreteHilbert):
    """`N` spins of spin `s` (any positive half-integer).

    Local values are `2m` for `m = s, s-1, …, -s`: `[1, -1]` for s=1/2 and `[2, 0, -2]` for s=1,
    as in NetKet ≥ 3.16. With `total_sz` the space is restricted to configurations with
    `Σ m_i = total_sz`: `all_states()` and `random_state` list and draw only those, and
    autoregressive models sample only those (see the sampling guide).

    **Arguments:**

    - `s`: the spin, a positive multiple of 1/2.
    - `N`: number of sites.
    - `total_sz`: optional constraint on the total magnetisation.
    """

    s: RealNumber
    N: int | np.integer = 1
    total_sz: RealNumber | None = None

    def __post_init__(self):
        for name in ("s", "total_sz"):  # NumPy numbers stored as Python ones
            value = getattr(self, name)
            if isinstance(value, np.generic) and not isinstance(value, np.bool_):
                object.__setattr__(self, name, value.item())
        s = self.s
        if isinstance(s, bool) or not (math.isfinite(s) and s > 0 and float(2 * s).is_integer()):
            raise ValueError(
                f"Spin s must be a positive multiple of 1/2 (0.5, 1, 1.5, …), got s={s!r}."
            )
        two_s = 2 * s
        object.__setattr__(self, "N", positive_int(self.N, "N"))
        if self.total_sz is not None:
            m2 = 2 * self.total_sz
            if not math.isfinite(m2) or m2 != round(m2) or abs(self.total_sz) > s * self.N:
                raise ValueError(
                    f"total_sz={self.total_sz!r} is not reachable with N={self.N} spins of "
                    f"s={self.s}."
                )
            if (round(m2) - round(two_s) * self.N) % 2:
                raise ValueError(
                    f"total_sz={self.total_sz!r} has the wrong parity for N={self.N} spins of "
                    f"s={self.s}."
                )

    @property
    def local_states(self) -> tuple[int, ...]:
        two_s = round(2 * self.s)
        return tuple(range(two_s, -two_s - 1, -2))

    @property
    def constrained(self) -> bool:
        return self.total_sz is not None

    @property
    def index_sum_constraint(self) -> int | None:
        if self.total_sz is None:
            return None
        return round(self.s * self.N - self.total_sz)

    def _allowed(self, states: np.ndarray) -> np.ndarray:
        if self.total_sz is None:
            return super()._allowed(states)
        return states.astype(np.int64).sum(-1) == round(2 * self.total_sz)

    def random_state(
        self, key: PRNGKeyArray, shape: int | np.integer | Sequence[RealNumber] = ()
    ) -> Num[Array, "..."]:
        if self.total_sz is None or self.s != 0.5:
            return super().random_state(key, shape)
        shape = batch_shape(shape)
        n_up = (self.N + round(2 * self.total_sz)) // 2
        base = jnp.where(jnp.arange(self.N) < n_up, 1, -1).astype(self.dtype)
        keys = jax.random.split(key, math.prod(shape)) if shape else key[None]
        out = jax.vmap(lambda k: jax.random.permutation(k, base))(keys)
        return out.reshape(*shape, self.N)


@dataclasses.dataclass(frozen=True)
class Qubit(AbstractDiscreteHilbert):
    """`N` qubits with local values `[0, 1]`.

    **Arguments:**

    - `N`: number of sites.
    """

    N: int | np.integer = 1

    def __post_init__(self):
        object.__setattr__(self, "N", positive_int(self.N, "N"))

    @property
    def local_states(self) -> tuple[int, ...]:
        return (0, 1)


@dataclasses.dataclass(frozen=True)
class Fock(AbstractDiscreteHilbert):
    """`N` bosonic modes with occupations `[0, 1, …, n_max]`, optionally with a fixed total
    number of particles `Σ n_i = n_particles` (NetKet's `Fock(n_max, N, n_particles)`).

    **Arguments:**

    - `n_max`: largest occupation per site (at least 1). `None` is allowed with
      `n_particles` and means `n_max = n_particles`, as in NetKet.
    - `N`: number of sites.
    - `n_particles`: optional constraint on the total number of particles, an integer
      `0 <= n_particles <= n_max * N`.
    """

    n_max: int | np.integer | None
    N: int | np.integer = 1
    n_particles: int | np.integer | None = None

    def __post_init__(self):
        object.__setattr__(self, "N", positive_int(self.N, "N"))
        n_particles = self.n_particles
        if n_particles is not None:
            n_particles = int_at_least(n_particles, "n_particles", 0)
            object.__setattr__(self, "n_particles", n_particles)
        if self.n_max is None:
            if n_particles is None:
                raise ValueError(
                    "Fock needs n_max (the largest occupation per site), got n_max=None "
                    "without n_particles; unbounded occupations are not supported."
                )
            if n_particles < 1:
                raise ValueError(
                    "n_max=None means n_max = n_particles, which must then be >= 1, got "
                    f"n_particles={n_particles}; pass n_max explicitly."
                )
            object.__setattr__(self, "n_max", n_particles)
        object.__setattr__(self, "n_max", int_at_least(self.n_max, "n_max", 1))
        if n_particles is not None and n_particles > self.n_max * self.N:
            raise ValueError(
                f"n_particles={n_particles} is not reachable with N={self.N} sites of at "
                f"most n_max={self.n_max} particles each (at most {self.n_max * self.N})."
            )

    @property
    def local_states(self) -> tuple[int, ...]:
        return tuple(range(self.n_max + 1))

    @property
    def constrained(self) -> bool:
        return self.n_particles is not None

    @property
    def index_sum_constraint(self) -> int | None:
        return self.n_particles

    def _allowed(self, states: np.ndarray) -> np.ndarray:
        if self.n_particles is None:
            return super()._allowed(states)
        return states.astype(np.int64).sum(-1) == self.n_particles


@dataclasses.dataclass(frozen=True)
class Particles(AbstractHilbert):
    """`N` particles in a box of extent `L` in `d = len(L)` dimensions.

    A configuration is the flat vector of positions, particle-major:
    `(x1_1, …, x1_d, x2_1, …)`, so `size = N * d`.

    **Arguments:**

    - `N`: number of particles.
    - `L`: box extent per dimension (a tuple; a number means d = 1).
    - `pbc`: periodic boundary conditions, one bool for all dimensions or one per dimension.
    """

    N: int
    L: tuple[float, ...]
    pbc: bool | tuple[bool, ...] = True

    def __init__(
        self,
        N: int | np.integer,
        L: RealNumber | Sequence[RealNumber],
        pbc: bool | np.bool_ | Sequence[bool | np.bool_] = True,
    ):
        N = positive_int(N, "N")
        extents = (L,) if isinstance(L, RealNumber) else tuple(L)
        try:  # a bool is an int but not a length
            extents = tuple(float(positive_number(ext, "L")) for ext in extents)
        except ValueError:
            extents = ()
        if not extents:
            raise ValueError(f"L must be one or more positive finite box extents, got L={L!r}.")
        d = len(extents)
        pbc = (bool(pbc),) * d if isinstance(pbc, bool | np.bool_) else tuple(bool(p) for p in pbc)
        if len(pbc) != d:
            raise ValueError(
                f"pbc has {len(pbc)} entries but the box has d={d} dimensions (L={L!r})."
            )
        object.__setattr__(self, "N", N)
        object.__setattr__(self, "L", extents)
        object.__setattr__(self, "pbc", pbc)

    @property
    def d(self) -> int:
        """Number of spatial dimensions."""
        return len(self.L)

    @property
    def size(self) -> int:
        return self.N * self.d

    def random_state(
        self, key: PRNGKeyArray, shape: int | np.integer | Sequence[RealNumber] = ()
    ) -> Float[Array, "..."]:
        """Positions drawn uniformly in the box, shape `(*shape, N*d)`."""
        shape = batch_shape(shape)
        u = jax.random.uniform(key, (*shape, self.N, self.d))
        L = jnp.asarray(self.L, u.dtype).reshape((1,) * (u.ndim - 1) + (self.d,))
        return (u * L).reshape(*shape, self.size)

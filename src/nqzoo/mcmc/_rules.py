r"""Transition rules of the Metropolis-Hastings samplers: local, exchange and Gaussian moves.

A rule proposes $x' \sim q(x' \mid x)$ for every chain at once and returns the Hastings
correction $\log q(x \mid x') - \log q(x' \mid x)$ (or `None` for a symmetric proposal). All
the random numbers of a sweep are drawn at once by
[`random`][nqzoo.mcmc.AbstractRule.random], then consumed one step at a time by
[`propose`][nqzoo.mcmc.AbstractRule.propose], so a step costs no random-number generation.
"""

import abc
import functools
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, PRNGKeyArray, Shaped

from .._misc import changed_sites, check_hilbert, positive_int, positive_number
from ..hilbert import AbstractDiscreteHilbert, AbstractHilbert, Particles
from ..lattice import Grid


class AbstractRule(eqx.Module):
    r"""A Metropolis-Hastings transition rule: proposes $x'$ from $x$ for every chain.

    A rule holds only static hyperparameters (no array leaves), so samplers built on it hash
    by value and pass through `eqx.filter_jit` as static arguments. A new rule subclasses this
    class and implements the four methods below; every array they receive and return has a
    leading chain axis (`n_chains`). The sampler calls, per `sample` call,
    `aux = init_aux(hilbert, x)` and then, per sweep, `r = random(hilbert, key, sweep_size,
    n_chains, dtype)` and, per step `t`, `propose(hilbert, x, aux, r[t])`.

    A rule whose proposals change at most a fixed number of sites says so in `max_changed`;
    the sampler then updates the lookup table of a model that has one
    ([`nqzoo.models.AbstractLookupModel`][], e.g. the RBMs) instead of evaluating the model
    on every proposal, calling `propose_changes` (which by default compares the proposals
    with `x`; a rule that knows the sites it changes overrides it, as the built-in rules do).
    """

    #: The largest number of sites a proposal changes, or `None` if it is not bounded.
    max_changed: ClassVar[int | None] = None

    @abc.abstractmethod
    def check(self, hilbert: AbstractHilbert) -> None:
        """Raise a `TypeError` or `ValueError` (naming `hilbert`) if the rule cannot act on
        `hilbert`. Called once, when the sampler is built."""

    @abc.abstractmethod
    def random(
        self,
        hilbert: AbstractHilbert,
        key: PRNGKeyArray,
        n_steps: int,
        n_chains: int,
        dtype: np.dtype,
    ) -> Any:
        """The random numbers of `n_steps` proposals of `n_chains` chains: a pytree whose
        leaves have leading axes `(n_steps, n_chains)`. `dtype` is the dtype of the
        configurations (continuous spaces) or of the log-probabilities (discrete spaces)."""

    def init_aux(self, hilbert: AbstractHilbert, x: Array) -> Any:
        """Per-chain data the rule carries along the chains (updated with the accepted
        proposals), computed from the configurations `x` `(n_chains, N)`; `None` by default."""
        return None

    @abc.abstractmethod
    def propose(
        self, hilbert: AbstractHilbert, x: Array, aux: Any, random: Any
    ) -> tuple[Array, Array | None, Any]:
        r"""One proposal per chain.

        **Arguments:**

        - `hilbert`: the sampler's Hilbert space.
        - `x`: the current configurations `(n_chains, N)`.
        - `aux`: the rule's carried data for `x` (see `init_aux`).
        - `random`: one step of what `random` drew (leading axis `n_chains`).

        **Returns:** `(x_new, log_correction, aux_new)`: the proposals `(n_chains, N)` in the
        dtype of `x`; $\log q(x \mid x') - \log q(x' \mid x)$ `(n_chains,)` or `None` for a
        symmetric proposal ($-\infty$ marks a proposal that must be rejected); the carried
        data of the proposals.
        """

    def propose_changes(
        self, hilbert: AbstractHilbert, x: Array, aux: Any, random: Any
    ) -> tuple[Array, Array | None, Any, tuple[Array, Array, Array]]:
        r"""[`propose`][nqzoo.mcmc.AbstractRule.propose], and the sites the proposals
        change: what the sampler updates a lookup table with (only called for rules with a
        `max_changed`).

        **Returns:** `(x_new, log_correction, aux_new, (sites, old, new))`: the first three as
        `propose` returns them, and `max_changed` sites per chain with their values in `x`
        and `x_new` (`(n_chains, max_changed)` each; a listed site with `old == new` changes
        nothing). By default the sites are found by comparing `x_new` with `x` (`O(N)` per
        chain); a rule that knows them overrides this.
        """
        x_new, log_correction, aux_new = self.propose(hilbert, x, aux, random)
        return x_new, log_correction, aux_new, changed_sites(x, x_new, self.max_changed)


def _discrete(hilbert: object, rule: str) -> AbstractDiscreteHilbert:
    return check_hilbert(
        hilbert,
        AbstractDiscreteHilbert,
        f"{rule} acts on discrete spaces (nqzoo.hilbert.Spin, Qubit, Fock)"
        + (
            "; for particles in a box use nqzoo.mcmc.GaussianRule (MetropolisGaussian)"
            if isinstance(hilbert, Particles)
            else ""
        ),
    )


def _local_index(hilbert: AbstractDiscreteHilbert, values: Array) -> Array:
    """The local index of each value (a comparison per local state: exact for any dtype)."""
    table = np.asarray(hilbert.local_states)
    idx = jnp.zeros(values.shape, jnp.int32)
    for k in range(1, len(table)):
        idx = jnp.where(values == table[k].astype(values.dtype), k, idx)
    return idx


class LocalRule(AbstractRule):
    r"""Change one site to a different local state, both chosen uniformly (NetKet's
    `LocalRule`, used by `MetropolisLocal`).

    A site $i$ is drawn uniformly among the $N$ sites and its new value uniformly among the
    $m - 1$ other local states ($m$ = `local_size`): a spin flip for Spin-1/2 and Qubit, a new
    occupation for Fock. The proposal is symmetric, $q(x' \mid x) = 1 / (N (m-1))$. It changes
    the total magnetisation or particle number, so constrained spaces are refused (use
    [`ExchangeRule`][nqzoo.mcmc.ExchangeRule]).
    """

    max_changed: ClassVar[int | None] = 1

    def check(self, hilbert: AbstractHilbert) -> None:
        hilbert = _discrete(hilbert, "LocalRule (MetropolisLocal)")
        if hilbert.constrained:
            raise ValueError(
                f"LocalRule changes one site at a time and would leave the constrained space "
                f"hilbert={hilbert!r}; use exchange moves (nqzoo.mcmc.MetropolisExchange) to "
                "conserve total_sz or n_particles."
            )

    def random(self, hilbert, key, n_steps, n_chains, dtype):
        # one integer per move: site * (m - 1) + (offset - 1), offset in 1 .. m-1
        n_moves = hilbert.size * (hilbert.local_size - 1)
        return jax.random.randint(key, (n_steps, n_chains), 0, n_moves, dtype=jnp.int32)

    def propose(self, hilbert, x, aux, random):
        return self.propose_changes(hilbert, x, aux, random)[:3]

    def propose_changes(self, hilbert, x, aux, random):
        m = hilbert.local_size
        site = random // (m - 1) if m > 2 else random
        rows = jnp.arange(x.shape[0])
        old = x[rows, site]
        if m == 2:
            table = np.asarray(hilbert.local_states)
            # the other of the two values: a + b - old
            new = (int(table.sum()) - old.astype(jnp.int32)).astype(x.dtype)
        else:
            offset = random % (m - 1) + 1
            table = jnp.asarray(hilbert.local_states, dtype=x.dtype)
            new = table[(_local_index(hilbert, old) + offset) % m]
        changes = (site[:, None], old[:, None], new[:, None])
        return x.at[rows, site].set(new), None, None, changes


def _edges_within(lattice: Grid, d_max: int) -> np.ndarray:
    """The pairs `i < j` at graph distance `1 .. d_max` on the nearest-neighbour graph."""
    nn = lattice.edges(1)
    if d_max == 1:
        return np.asarray(nn)
    n = lattice.n_sites
    neighbours = [[] for _ in range(n)]
    for i, j in nn:
        neighbours[i].append(j)
        neighbours[j].append(i)
    degree = max(len(v) for v in neighbours)
    # padded neighbour table: a site pads with itself (reaching yourself changes nothing)
    table = np.array([v + [s] * (degree - len(v)) for s, v in enumerate(neighbours)])
    reached = np.eye(n, dtype=bool)  # reached[s, v]: v within the current distance of s
    frontier = reached
    within = np.zeros((n, n), dtype=bool)
    for _ in range(d_max):
        frontier = frontier[:, table].any(axis=-1) & ~reached
        reached = reached | frontier
        within |= frontier
    i, j = np.nonzero(np.triu(within, k=1))
    return np.stack([i, j], axis=-1)


@functools.cache
def _touching(edges: tuple[tuple[int, int], ...]) -> np.ndarray | None:
    """Row `e`: the edges that share an end with edge `e` (itself included), padded with
    the row's first entry; `None` when some edge touches more than half of them (then
    recomputing every edge is as cheap)."""
    by_site: dict[int, list[int]] = {}
    for e, (i, j) in enumerate(edges):
        by_site.setdefault(i, []).append(e)
        by_site.setdefault(j, []).append(e)
    rows = [sorted(set(by_site[i]) | set(by_site[j])) for i, j in edges]
    width = max(len(r) for r in rows)
    if 2 * width > len(edges):
        return None
    return np.array([r + [r[0]] * (width - len(r)) for r in rows], dtype=np.int32)


class ExchangeRule(AbstractRule):
    r"""Swap the values at the two ends of a random edge (NetKet's `ExchangeRule`, used by
    `MetropolisExchange`).

    Among the edges $(i, j)$ whose two ends hold different values (the only swaps that change
    $x$), one is drawn uniformly and $x_i, x_j$ are exchanged. With $n(x)$ such edges the
    proposal probability is $1/n(x)$, so the Hastings correction is
    $\log n(x) - \log n(x')$. Swaps conserve the total magnetisation and particle number:
    this is the rule for constrained spaces (`Spin(0.5, N, total_sz=0)`), and it is not
    ergodic across sectors on unconstrained ones. A configuration with no such edge cannot
    move: its steps are rejected.

    Each step finds the $k$-th of the $n(x)$ differing edges with two levels of block counts
    (blocks of about $\sqrt{E}$ edges), so a step costs $O(E)$ for $E$ edges and one random
    integer per chain.
    """

    max_changed: ClassVar[int | None] = 2
    edges: tuple[tuple[int, int], ...] = eqx.field(static=True, repr=False)
    n_sites: int | None = eqx.field(static=True)

    def __init__(
        self,
        *,
        lattice: object = None,
        d_max: numbers.Integral = 1,
        edges: Shaped[ArrayLike, "n_edges 2"] | Sequence[Sequence[int]] | None = None,
    ):
        """Give exactly one of `lattice` and `edges`.

        **Arguments:**

        - `lattice`: an [`nqzoo.lattice`](lattice.md) lattice; the swaps act on the pairs of
          sites at graph distance at most `d_max` (NetKet's `graph` and `d_max`): with
          `d_max=1` the nearest-neighbour edges `lattice.edges()`, with `d_max=2` also the
          pairs two bonds apart (on a chain the next-nearest neighbours; on a square lattice
          the diagonals and the straight pairs two sites apart).
        - `d_max`: the largest graph distance of a swapped pair, a positive integer.
        - `edges`: an explicit `(n_edges, 2)` array of site pairs (NetKet's `clusters`);
          each row is one possible swap (a repeated row is drawn proportionally more often).

        **Raises:** `ValueError` naming `edges` if neither or both are given, if `edges` is
        not a non-empty `(n_edges, 2)` integer array of distinct pairs of non-negative sites;
        `TypeError` naming `lattice` if it is not an nqzoo lattice; `ValueError` naming
        `d_max` if it is not a positive integer.
        """
        if (lattice is None) == (edges is None):
            raise ValueError(
                "ExchangeRule (MetropolisExchange) needs the pairs of sites to swap: give "
                "either lattice= (an nqzoo.lattice lattice, with d_max) or edges= (an "
                f"(n_edges, 2) array of sites), not {'both' if lattice is not None else 'neither'}"
                f"; got lattice={lattice!r}, edges={'None' if edges is None else '...'}."
            )
        if lattice is not None:
            if not isinstance(lattice, Grid):
                hint = ""
                if type(lattice).__module__.split(".")[0] == "netket":
                    hint = (
                        " This is a NetKet graph: build the same lattice with "
                        "nqzoo.lattice.Grid(extent, pbc=...)."
                    )
                raise TypeError(
                    "lattice must be an nqzoo lattice (nqzoo.lattice.Grid, Chain, Square, "
                    f"Hypercube), got lattice={lattice!r}.{hint}"
                )
            d_max = positive_int(d_max, "d_max")
            pairs = _edges_within(lattice, d_max)
            if pairs.shape[0] == 0:
                raise ValueError(
                    f"lattice={lattice!r} has no edges to swap along; use a lattice with at "
                    "least two sites or explicit edges=."
                )
            self.n_sites = lattice.n_sites
        else:
            array = np.asarray(edges)
            if (
                array.ndim != 2
                or array.shape[1] != 2
                or array.shape[0] == 0
                or not np.issubdtype(array.dtype, np.integer)
            ):
                raise ValueError(
                    "edges must be a non-empty (n_edges, 2) integer array of site pairs, got "
                    f"edges with shape {array.shape} and dtype {array.dtype}."
                )
            if np.any(array < 0) or np.any(array[:, 0] == array[:, 1]):
                bad = array[(array < 0).any(axis=1) | (array[:, 0] == array[:, 1])][0]
                raise ValueError(
                    "edges must join two different sites with non-negative indices, got the "
                    f"pair {bad.tolist()} in edges."
                )
            pairs = array
            self.n_sites = None
        self.edges = tuple((int(i), int(j)) for i, j in pairs)

    @property
    def n_edges(self) -> int:
        """The number of pairs the rule swaps along."""
        return len(self.edges)

    def check(self, hilbert: AbstractHilbert) -> None:
        hilbert = _discrete(hilbert, "ExchangeRule (MetropolisExchange)")
        if self.n_sites is not None and self.n_sites != hilbert.size:
            raise ValueError(
                f"lattice has {self.n_sites} sites but the Hilbert space has {hilbert.size}: "
                f"build the exchange sampler on a lattice of hilbert.size sites (got "
                f"hilbert={hilbert!r})."
            )
        top = max(max(e) for e in self.edges)
        if top >= hilbert.size:
            raise ValueError(
                f"edges refer to site {top} but hilbert={hilbert!r} has sites 0 .. "
                f"{hilbert.size - 1}."
            )

    def _blocks(self) -> tuple[int, int]:
        n = self.n_edges
        block = max(1, int(np.ceil(np.sqrt(n))))
        return block, -(-n // block)

    def _differ(self, x: Array) -> Array:
        e = np.asarray(self.edges)
        return x[:, e[:, 0]] != x[:, e[:, 1]]

    def random(self, hilbert, key, n_steps, n_chains, dtype):
        return jax.random.bits(key, (n_steps, n_chains), jnp.uint32)

    def init_aux(self, hilbert, x):
        return self._differ(x)

    def propose(self, hilbert, x, aux, random):
        return self.propose_changes(hilbert, x, aux, random)[:3]

    def propose_changes(self, hilbert, x, aux, random):
        n_chains = x.shape[0]
        block, n_blocks = self._blocks()
        pad = block * n_blocks - self.n_edges
        differ = aux
        cells = jnp.pad(differ, ((0, 0), (0, pad))).reshape(n_chains, n_blocks, block)
        counts = cells.sum(axis=-1, dtype=jnp.int32)  # (n_chains, n_blocks)
        upto = np.tril(np.ones((1, n_blocks, n_blocks), dtype=bool))  # upto[0, b, c]: c <= b
        inclusive = jnp.where(upto, counts[:, None, :], 0).sum(axis=-1, dtype=jnp.int32)
        total = inclusive[:, -1]
        # the k-th differing edge (0-based), k = bits mod total: uniform in 0 .. total-1 up to
        # a relative bias below n_edges / 2^32
        k = (random % jnp.maximum(total, 1).astype(jnp.uint32)).astype(jnp.int32)
        b = jnp.minimum((inclusive <= k[:, None]).sum(axis=-1, dtype=jnp.int32), n_blocks - 1)
        before = jnp.take_along_axis(inclusive - counts, b[:, None], axis=1)[:, 0]
        row = jnp.take_along_axis(cells, b[:, None, None], axis=1)[:, 0]  # (n_chains, block)
        upto = np.tril(np.ones((1, block, block), dtype=bool))
        within = jnp.where(upto, row[:, None, :], False).sum(axis=-1, dtype=jnp.int32)
        c = jnp.minimum((within <= (k - before)[:, None]).sum(axis=-1, dtype=jnp.int32), block - 1)
        edge = jnp.minimum(b * block + c, self.n_edges - 1)
        e = jnp.asarray(np.asarray(self.edges, dtype=np.int32))
        i, j = e[edge, 0], e[edge, 1]
        rows = jnp.arange(n_chains)
        xi, xj = x[rows, i], x[rows, j]
        x_new = x.at[rows, i].set(xj).at[rows, j].set(xi)
        touching = _touching(self.edges)
        if touching is None:
            differ_new = self._differ(x_new)
        else:  # only the edges that share an end with the swapped one can change
            t = jnp.asarray(touching)[edge]  # (n_chains, n_touching)
            ends = [jnp.take_along_axis(x_new, e[:, k][t], axis=1) for k in (0, 1)]
            differ_new = differ.at[rows[:, None], t].set(ends[0] != ends[1])
        total_new = differ_new.sum(axis=-1, dtype=jnp.int32)
        # log n(x) - log n(x'); -inf (always rejected) when nothing can move
        log_correction = jnp.where(
            total > 0, jnp.log(total.astype(float)) - jnp.log(total_new.astype(float)), -jnp.inf
        )
        # (no differing edge: the swap of two equal values changes nothing, and is rejected)
        changes = (jnp.stack([i, j], axis=-1), jnp.stack([xi, xj], axis=-1),
                   jnp.stack([xj, xi], axis=-1))
        return x_new, log_correction, differ_new, changes


class GaussianRule(AbstractRule):
    r"""Move every coordinate by a Gaussian step, $x' = x + \sigma\,\eta$ with
    $\eta \sim \mathcal N(0, 1)^{Nd}$ (NetKet's `GaussianRule`, used by `MetropolisGaussian`).

    Along a periodic axis of the box the new coordinate is wrapped back into $[0, L)$, as
    NetKet does: the wrapped proposal is still symmetric, and it is the right move for a
    wavefunction that is periodic with period $L$. Along an open axis NetKet leaves $x'$
    unwrapped and lets it leave the box; here the box is the space (its Hilbert space is
    that of $[0, L]$, hard walls), so a proposal outside it is rejected (the density is zero
    there; the proposal stays symmetric).
    """

    sigma: float = eqx.field(static=True)

    def __init__(self, sigma: numbers.Real = 1.0):
        """**Arguments:**

        - `sigma`: the standard deviation of the step of each coordinate, a finite positive
          number (in the units of the box `L`).

        **Raises:** `ValueError` naming `sigma` if it is not a finite positive number.
        """
        self.sigma = float(positive_number(sigma, "sigma"))

    def check(self, hilbert: AbstractHilbert) -> None:
        check_hilbert(
            hilbert,
            Particles,
            "GaussianRule (MetropolisGaussian) moves particles in a box "
            "(nqzoo.hilbert.Particles); for discrete spaces use nqzoo.mcmc.LocalRule "
            "(MetropolisLocal) or ExchangeRule (MetropolisExchange)",
        )

    def random(self, hilbert, key, n_steps, n_chains, dtype):
        return jax.random.normal(key, (n_steps, n_chains, hilbert.size), dtype)

    def propose(self, hilbert, x, aux, random):
        dtype = x.dtype
        L = np.tile(np.asarray(hilbert.L, dtype=dtype), hilbert.N)[None]
        periodic = np.tile(np.asarray(hilbert.pbc, dtype=bool), hilbert.N)[None]
        moved = x + random.astype(dtype) * np.asarray(self.sigma, dtype=dtype)
        wrapped = jnp.mod(moved, L)
        # rounding can give exactly L for a tiny negative coordinate: that point is 0
        wrapped = jnp.where(wrapped >= L, jnp.zeros((), dtype), wrapped)
        x_new = jnp.where(periodic, wrapped, moved)
        log_correction = None
        if not periodic.all():
            inside = ((moved >= 0) & (moved <= L)) | periodic
            log_correction = jnp.where(inside.all(axis=-1), 0.0, -jnp.inf).astype(dtype)
        return x_new, log_correction, None

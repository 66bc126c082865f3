import numbers

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..hilbert import AbstractDiscreteHilbert, Fock
from ..lattice import Grid
from ._base import AbstractOperator, check_lattice, finite_real, operator_dtype, with_batch_axes


class BoseHubbard(AbstractOperator):
    r"""The extended Bose-Hubbard model on a Fock space, as NetKet's `nk.operator.BoseHubbardJax`:

    $$H = \frac{U}{2} \sum_i n_i (n_i - 1) - \mu \sum_i n_i
        + V \sum_{\langle ij \rangle} n_i n_j
        - J \sum_{\langle ij \rangle} \left(b^\dagger_i b_j + b^\dagger_j b_i\right),$$

    over the nearest-neighbour edges, with occupations truncated at `hilbert.n_max`
    ($b^\dagger$ annihilates a site holding `n_max` bosons). The hopping element is
    $-J\sqrt{n_i (n_j + 1)}$ for moving a boson from $i$ to $j$.

    Connected elements: the diagonal, then the hops $i \to j$ of every edge, then the hops
    $j \to i$ (`n_conn = 1 + 2 n_edges`; `1` when `J == 0`); a hop out of an empty site or
    into a full one gives a padding row.

    The couplings are static floats (a new value recompiles a jitted function).
    """

    hilbert: Fock = eqx.field(static=True)
    lattice: Grid = eqx.field(static=True)
    U: float = eqx.field(static=True)
    V: float = eqx.field(static=True)
    J: float = eqx.field(static=True)
    mu: float = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractDiscreteHilbert,
        lattice: Grid,
        U: numbers.Real,
        V: numbers.Real = 0.0,
        J: numbers.Real = 1.0,
        mu: numbers.Real = 0.0,
        dtype: object = None,
    ):
        """**Arguments:**

        - `hilbert`: a Fock space (`nqzoo.hilbert.Fock(n_max, N)`).
        - `lattice`: the lattice whose nearest-neighbour edges carry the hopping and `V`; it
          must have `hilbert.size` sites.
        - `U`: the on-site interaction; `V`: the nearest-neighbour density interaction; `J`:
          the hopping amplitude; `mu`: the chemical potential. Finite real numbers of any
          sign (the truncated space keeps even an attractive model bounded).
        - `dtype`: dtype of the matrix elements (default: JAX's default float, float64 with
          x64 as in NetKet).
        """
        if not isinstance(hilbert, Fock):
            raise ValueError(
                f"BoseHubbard acts on bosons: hilbert must be an nqzoo.hilbert.Fock space, got "
                f"hilbert={hilbert!r}."
            )
        check_lattice(hilbert, lattice)
        self.hilbert = hilbert
        self.lattice = lattice
        self.U = finite_real(U, "U")
        self.V = finite_real(V, "V")
        self.J = finite_real(J, "J")
        self.mu = finite_real(mu, "mu")
        self.dtype = operator_dtype(dtype)

    @property
    def n_conn(self) -> int:
        return 1 if self.J == 0 else 1 + 2 * len(self.lattice.edges(1))

    @property
    def changed_sites(self) -> np.ndarray:
        """The diagonal element changes nothing (site 0 twice), a hop along bond `(i, j)`
        (either way) sites `i, j`."""
        edges = self.lattice.edges(1) if self.J != 0 else np.zeros((0, 2), np.int32)
        return np.concatenate([np.zeros((1, 2)), edges, edges[:, ::-1]]).astype(np.int32)

    def _connected(self, x: Array) -> tuple[Array, Array]:
        edges = self.lattice.edges(1)
        i, j = edges[:, 0], edges[:, 1]
        n = x.astype(self.dtype)
        n_i, n_j = n[..., i], n[..., j]
        diag = (
            0.5 * self.U * jnp.sum(n * (n - 1), axis=-1)
            - self.mu * jnp.sum(n, axis=-1)
            + self.V * jnp.sum(n_i * n_j, axis=-1)
        )
        if self.J == 0:
            return x[..., None, :], diag[..., None]
        n_max = self.hilbert.n_max
        sites = np.arange(self.hilbert.size)
        move = (sites == j[:, None]).astype(np.int8) - (sites == i[:, None]).astype(np.int8)
        move = np.concatenate([move, -move])  # (2 n_bonds, N): i -> j, then j -> i
        src = np.concatenate([i, j])
        dst = np.concatenate([j, i])
        n_src, n_dst = x[..., src], x[..., dst]
        allowed = (n_src > 0) & (n_dst < n_max)
        hopped = x[..., None, :] + jnp.asarray(with_batch_axes(move, x), dtype=x.dtype)
        hopped = jnp.where(allowed[..., None], hopped, x[..., None, :])
        amplitude = -self.J * jnp.sqrt(n[..., src] * (n[..., dst] + 1))
        off = jnp.where(allowed, amplitude, 0).astype(self.dtype)
        x_conn = jnp.concatenate([x[..., None, :], hopped], axis=-2)
        mels = jnp.concatenate([diag[..., None], off], axis=-1)
        return x_conn, mels

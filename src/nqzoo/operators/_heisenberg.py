import numbers

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..hilbert import AbstractDiscreteHilbert
from ..lattice import Grid
from ._base import (
    AbstractOperator,
    check_lattice,
    check_two_level,
    finite_real,
    operator_dtype,
    with_batch_axes,
)


class Heisenberg(AbstractOperator):
    r"""The Heisenberg (J1-J2) model with Pauli matrices, as NetKet's `nk.operator.Heisenberg`:

    $$H = J \sum_{\langle ij \rangle} \vec\sigma_i \cdot \vec\sigma_j
        + J_2 \sum_{\langle\langle ij \rangle\rangle} \vec\sigma_i \cdot \vec\sigma_j,$$

    over the nearest-neighbour (order-1) and next-nearest-neighbour (order-2) edges of the
    lattice. $\vec\sigma_i\cdot\vec\sigma_j$ has $\sigma^z_i\sigma^z_j$ on the diagonal and
    the exchange element 2 between anti-aligned configurations that differ by swapping $i$
    and $j$.

    With `sign_rule=True` the operator is rotated by Marshall's sign rule, $U H U^\dagger$ with
    $U = \prod_{i \in B} \sigma^z_i$ on the odd sublattice $B$ of a bipartite lattice: the
    exchange element changes sign on every bond between the two sublattices (all the J1
    bonds) and keeps it within a sublattice (the J2 bonds of a hypercubic lattice). The
    spectrum is unchanged; for the unfrustrated model the ground state becomes positive.
    This equals NetKet's `sign_rule=True` without J2 and `sign_rule=[True, False]` with it.

    Connected elements: the diagonal, then one exchange per bond, J1 bonds first (`n_conn =
    1 + n_bonds`; a bond whose two spins are aligned gives a padding row).

    The couplings are static floats (a new value recompiles a jitted function).
    """

    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    lattice: Grid = eqx.field(static=True)
    J: float = eqx.field(static=True)
    J2: float | None = eqx.field(static=True)
    sign_rule: bool = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractDiscreteHilbert,
        lattice: Grid,
        J: numbers.Real = 1.0,
        J2: numbers.Real | None = None,
        sign_rule: bool | None = None,
        dtype: object = None,
    ):
        """**Arguments:**

        - `hilbert`: a space of two-level sites (`Spin(0.5, N)`, optionally with `total_sz`,
          which the model conserves, or `Qubit(N)`), as NetKet.
        - `lattice`: the lattice, with `hilbert.size` sites.
        - `J`: the nearest-neighbour coupling, a finite real number (any sign).
        - `J2`: the next-nearest-neighbour coupling, or `None` for none.
        - `sign_rule`: apply Marshall's sign rule (needs a bipartite lattice). The default
          `None` is NetKet's: on when the lattice is bipartite and `J2` is `None`, off
          otherwise.
        - `dtype`: dtype of the matrix elements (default: JAX's default float, float64 with
          x64 as in NetKet).
        """
        check_two_level(hilbert, "Heisenberg", allow_constrained=True)
        check_lattice(hilbert, lattice)
        self.hilbert = hilbert
        self.lattice = lattice
        self.J = finite_real(J, "J")
        self.J2 = None if J2 is None else finite_real(J2, "J2")
        if sign_rule is None:
            sign_rule = lattice.is_bipartite and J2 is None
        if not isinstance(sign_rule, bool):
            raise ValueError(
                f"sign_rule must be True, False or None (NetKet's default), got "
                f"sign_rule={sign_rule!r}."
            )
        if sign_rule and not lattice.is_bipartite:
            raise ValueError(
                f"sign_rule=True needs a bipartite lattice, but lattice={lattice!r} has a "
                "periodic axis of odd length; use sign_rule=False."
            )
        self.sign_rule = sign_rule
        self.dtype = operator_dtype(dtype)

    def bonds(self) -> tuple[np.ndarray, np.ndarray]:
        """The bonds and their exchange couplings.

        **Returns:** `(edges, couplings)`: `(n_bonds, 2)` site pairs, J1 bonds then J2 bonds
        (a coupling of 0 contributes none), and the `(n_bonds,)` coupling of each.
        """
        parts = [(self.lattice.edges(1), self.J)]
        if self.J2 is not None:
            parts.append((self.lattice.edges(2), self.J2))
        parts = [(e, c) for e, c in parts if c != 0]
        if not parts:
            return np.zeros((0, 2), dtype=np.int64), np.zeros((0,))
        edges = np.concatenate([e for e, _ in parts])
        couplings = np.concatenate([np.full(len(e), c) for e, c in parts])
        return edges, couplings

    @property
    def n_conn(self) -> int:
        return 1 + len(self.bonds()[0])

    @property
    def changed_sites(self) -> np.ndarray:
        """The diagonal element changes nothing (site 0 twice), bond `(i, j)` sites `i, j`."""
        return np.concatenate([np.zeros((1, 2), np.int32), self.bonds()[0].astype(np.int32)])

    def _connected(self, x: Array) -> tuple[Array, Array]:
        edges, couplings = self.bonds()
        i, j = edges[:, 0], edges[:, 1]
        exchange = 2 * couplings
        if self.sign_rule:
            parity = self.lattice.sublattice()
            exchange = np.where(parity[i] != parity[j], -exchange, exchange)
        up = self.hilbert.local_states[0]
        z = jnp.where(x == up, 1.0, -1.0).astype(self.dtype)
        diag = (z[..., i] * z[..., j]) @ jnp.asarray(couplings, dtype=self.dtype)
        xi, xj = x[..., i, None], x[..., j, None]  # (*batch, n_bonds, 1)
        n = self.hilbert.size
        at_i = with_batch_axes(np.arange(n) == i[:, None], x)  # (..., n_bonds, N)
        at_j = with_batch_axes(np.arange(n) == j[:, None], x)
        # Swapping aligned spins gives x itself, the padding row.
        swapped = jnp.where(at_i, xj, jnp.where(at_j, xi, x[..., None, :]))
        exchange = jnp.asarray(with_batch_axes(exchange, x), dtype=self.dtype)
        off = jnp.where(xi[..., 0] != xj[..., 0], exchange, 0).astype(self.dtype)
        x_conn = jnp.concatenate([x[..., None, :], swapped], axis=-2)
        mels = jnp.concatenate([diag[..., None], off], axis=-1)
        return x_conn, mels

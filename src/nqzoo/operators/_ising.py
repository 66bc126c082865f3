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


class Ising(AbstractOperator):
    r"""The transverse-field Ising model, with Pauli matrices and NetKet's sign convention
    (`nk.operator.IsingJax`):

    $$H = -h \sum_i \sigma^x_i + J \sum_{\langle ij \rangle} \sigma^z_i \sigma^z_j,$$

    the second sum over the nearest-neighbour edges of the lattice. `J > 0` is
    antiferromagnetic; the ferromagnetic chain is `J=-1`. $\sigma^z = +1$ on local index 0
    (spin up, `+1` for `Spin(0.5)`, `0` for `Qubit`).

    Connected elements: the diagonal, then the `N` single-spin flips (`n_conn = N + 1`;
    `n_conn = 1` when `h == 0`).

    The couplings are static floats (a new value recompiles a jitted function).
    """

    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    lattice: Grid = eqx.field(static=True)
    h: float = eqx.field(static=True)
    J: float = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)

    def __init__(
        self,
        hilbert: AbstractDiscreteHilbert,
        lattice: Grid,
        h: numbers.Real,
        J: numbers.Real = 1.0,
        dtype: object = None,
    ):
        r"""**Arguments:**

        - `hilbert`: a space of two-level sites (`Spin(0.5, N)` or `Qubit(N)`), as NetKet.
        - `lattice`: the lattice whose nearest-neighbour edges carry the $\sigma^z\sigma^z$
          terms; it must have `hilbert.size` sites.
        - `h`: the transverse field, a finite real number (any sign).
        - `J`: the Ising coupling, a finite real number (any sign).
        - `dtype`: dtype of the matrix elements (default: JAX's default float, float64 with
          x64 as in NetKet).
        """
        check_two_level(hilbert, "Ising", allow_constrained=False)
        check_lattice(hilbert, lattice)
        self.hilbert = hilbert
        self.lattice = lattice
        self.h = finite_real(h, "h")
        self.J = finite_real(J, "J")
        self.dtype = operator_dtype(dtype)

    @property
    def n_conn(self) -> int:
        return 1 if self.h == 0 else self.hilbert.size + 1

    @property
    def changed_sites(self) -> np.ndarray:
        """The diagonal element changes nothing (site 0), flip `k` site `k`."""
        n = 0 if self.h == 0 else self.hilbert.size
        return np.concatenate([[0], np.arange(n)]).astype(np.int32)[:, None]

    def _connected(self, x: Array) -> tuple[Array, Array]:
        up, down = self.hilbert.local_states
        edges = self.lattice.edges(1)
        z = jnp.where(x == up, 1.0, -1.0).astype(self.dtype)
        diag = self.J * jnp.sum(z[..., edges[:, 0]] * z[..., edges[:, 1]], axis=-1)
        if self.h == 0:
            return x[..., None, :], diag[..., None]
        n = self.hilbert.size
        flipped = jnp.asarray(up + down - x, dtype=x.dtype)
        eye = with_batch_axes(np.eye(n, dtype=bool), x)
        flips = jnp.where(eye, flipped[..., None, :], x[..., None, :])
        x_conn = jnp.concatenate([x[..., None, :], flips], axis=-2)
        off = jnp.full((*x.shape[:-1], n), -self.h, dtype=self.dtype)
        mels = jnp.concatenate([diag[..., None], off], axis=-1)
        return x_conn, mels

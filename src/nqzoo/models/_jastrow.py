"""NetKet's Jastrow wave function: a quadratic form in the configuration."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, PRNGKeyArray, Real

from .._custom_types import Initializer
from .._misc import check_hilbert, inexact_dtype
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import initializers


def _pair_positions(n_sites: int) -> np.ndarray:
    """`(N, N)` ints: entry `[i, j]` is `1 + p` for the pair `p` of NetKet's strictly lower
    triangle (`i > j`, row-major: `np.tril_indices(N, -1)`), and 0 on and above the diagonal
    (where the gathered matrix takes a zero)."""
    positions = np.zeros((n_sites, n_sites), dtype=np.int32)
    rows, cols = np.tril_indices(n_sites, -1)
    positions[rows, cols] = 1 + np.arange(len(rows), dtype=np.int32)
    return positions


class Jastrow(eqx.Module):
    r"""Jastrow wave function: a two-body correlator.

    $$\log\psi(x) = \sum_{i > j} W_{ij}\, x_i x_j ,$$

    one weight per pair of sites. As in NetKet's `nk.models.Jastrow`, `kernel` holds the
    $N(N-1)/2$ weights of the strictly lower triangle of $W$ in row-major order (the pairs
    `np.tril_indices(N, -1)`: $(1,0), (2,0), (2,1), (3,0), \dots$); with a symmetric matrix
    $V$ with zero diagonal, $\sum_{i>j} W_{ij} x_i x_j = \frac12 x^\top V x$ for
    $V = W + W^\top$. NetKet's defaults: complex parameters, initialised
    `normal(0.01)`. With complex parameters the model is holomorphic in them.

    ??? cite "Reference"

        ```bibtex
        @article{jastrow1955many,
          title={Many-body problem with strong forces},
          author={Jastrow, Robert},
          journal={Physical Review}, volume={98}, number={5}, pages={1479}, year={1955}
        }
        ```
    """

    kernel: Inexact[Array, "{self.n_pairs}"]  # noqa: F821
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        *,
        param_dtype: jnp.dtype | type = jnp.complex128,
        kernel_init: Initializer = initializers.normal(0.01),
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space (only its `size` `N` enters the formula).
        - `param_dtype`: dtype of the weights (NetKet's default complex128; real works too).
        - `kernel_init`: initialiser `init(key, shape, dtype)` of the `(N(N-1)/2,)` weights
          (NetKet's default `normal(0.01)`).
        - `key`: a JAX PRNG key.
        """
        self.hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "Jastrow needs a discrete nqzoo Hilbert space (an "
            "nqzoo.hilbert.AbstractDiscreteHilbert: Spin, Qubit, Fock)",
        )
        param_dtype = inexact_dtype(param_dtype)
        self.kernel = kernel_init(key, (self.n_pairs,), param_dtype)

    def __check_init__(self):
        check_fields(self)

    @property
    def n_pairs(self) -> int:
        """Number of weights, `N (N - 1) / 2`."""
        n = self.hilbert.size
        return n * (n - 1) // 2

    def matrix(self) -> Inexact[Array, "{self.hilbert.size} {self.hilbert.size}"]:
        """The strictly lower-triangular `(N, N)` matrix `W` holding `kernel`.

        **Returns:** `W` with `W[i, j] = kernel[p]` for the `p`-th pair `(i, j)`, `i > j`, of
        `np.tril_indices(N, -1)`, and zeros elsewhere.
        """
        check_fields(self)
        # A gather (whose gradient is a segment sum) rather than NetKet's scatter.
        padded = jnp.concatenate([jnp.zeros((1,), self.kernel.dtype), self.kernel])
        return padded[_pair_positions(self.hilbert.size)]

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Inexact[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)` (any real dtype; cast to the real dtype of the
          parameters).

        **Returns:** `log ψ(x) = Σ_{i>j} W_ij x_i x_j`, shape `(*batch,)`, in the parameter
        dtype.
        """
        check_fields(self)
        w = self.matrix()
        x = jnp.asarray(x).astype(jnp.finfo(w.dtype).dtype)

        def quadratic(m: Array) -> Array:  # Σ_i x_i (W x)_i, one real matmul
            return jnp.sum(x * (x @ m.T), axis=-1)

        if jnp.iscomplexobj(w):  # real x: the real and imaginary parts separately
            return jax.lax.complex(quadratic(w.real), quadratic(w.imag))
        return quadratic(w)

"""Matrix product states: NetKet's MPSOpen and MPSPeriodic."""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Complex, Inexact, Int, PRNGKeyArray, Real

from .._custom_types import Initializer
from .._misc import check_hilbert, inexact_dtype, positive_int
from .._typecheck import check_fields
from ..hilbert import AbstractDiscreteHilbert
from ..nn import initializers


def _complex_dtype(dtype: jnp.dtype) -> np.dtype:
    """The complex dtype of `dtype`'s precision (complex64 for float32)."""
    return np.result_type(np.dtype(dtype), np.complex64)


def _identities(tensors: Inexact[Array, "*rest bond bond"]) -> Inexact[Array, "*rest bond bond"]:
    """Identity matrices of the shape and dtype of a stack of square `tensors`."""
    eye = jnp.eye(tensors.shape[-1], dtype=tensors.dtype)
    return jnp.broadcast_to(eye, tensors.shape)


def _select(
    products: Inexact[Array, "batch local_size *rest"], index: Int[Array, " batch"]
) -> Inexact[Array, "batch *rest"]:  # noqa: F821
    """`products[b, index[b]]` for every `b`, as a masked sum over the (small) local axis."""
    local_size = products.shape[1]
    hit = index[:, None] == jnp.arange(local_size, dtype=index.dtype)[None]  # (batch, d)
    hit = hit.reshape(*hit.shape, *(1,) * (products.ndim - 2))
    return jnp.sum(jnp.where(hit, products, 0), axis=1)


def _right_multiply(
    edges: Inexact[Array, "batch *rows bond"],
    tensor: Inexact[Array, "local_size bond bond_out"],
    index: Int[Array, " batch"],
) -> Inexact[Array, "batch *rows bond_out"]:
    """`edges[b] @ tensor[index[b]]` for every `b`: one matrix product with the tensors of all
    local values side by side, `(batch * rows, D) @ (D, local_size * D')`, then a selection.
    For the small local dimensions of spins this dense product is faster than multiplying by
    a gathered `(batch, D, D')` stack (and its gradient avoids a scatter)."""
    d, bond, bond_out = tensor.shape
    batch, rows = edges.shape[0], edges.shape[1:-1]
    side_by_side = jnp.transpose(tensor, (1, 0, 2)).reshape(bond, d * bond_out)
    products = edges.reshape(-1, bond) @ side_by_side  # (batch * rows, d * D')
    products = products.reshape(batch, *rows, d, bond_out)
    products = jnp.moveaxis(products, -2, 1)  # (batch, d, *rows, D')
    return _select(products, index)


class AbstractMPS(eqx.Module):
    """What [`nqzoo.models.MPSOpen`][] and [`nqzoo.models.MPSPeriodic`][] share: the Hilbert
    space, the bond dimension and the contraction of a batch with `lax.scan` over sites."""

    hilbert: eqx.AbstractVar[AbstractDiscreteHilbert]
    bond_dim: eqx.AbstractVar[int]

    def __check_init__(self):
        check_fields(self)

    @abc.abstractmethod
    def amplitude(
        self, indices: Int[Array, "batch {self.hilbert.size}"]
    ) -> Inexact[Array, " batch"]:
        """The amplitudes `ψ` of configurations given by their local indices."""

    def __call__(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> Complex[Array, "*batch"]:
        """**Arguments:**

        - `x`: configurations, `(*batch, N)`, values in `hilbert.local_states`.

        **Returns:** `log ψ(x)`, complex of the parameters' precision (as NetKet's: a real
        MPS can have negative amplitudes, whose logarithm has imaginary part π), shape
        `(*batch,)`.
        """
        check_fields(self)
        x = jnp.asarray(x)
        batch = x.shape[:-1]
        indices = self.hilbert.states_to_local_indices(x).reshape(-1, self.hilbert.size)
        psi = self.amplitude(indices.astype(jnp.int32))
        return jnp.log(psi.astype(_complex_dtype(psi.dtype))).reshape(batch)


def _scan_sites(
    edges: Array, tensors: Array, indices: Int[Array, "batch sites"]
) -> Array:
    """`edges[b] @ tensors[0][indices[b, 0]] @ tensors[1][indices[b, 1]] @ …` for every `b`,
    a `lax.scan` over the sites (the compiled program does not grow with their number)."""

    def step(edges, site):
        tensor, index = site
        return _right_multiply(edges, tensor, index), None

    edges, _ = jax.lax.scan(step, edges, (tensors, indices.T))
    return edges


class MPSOpen(AbstractMPS):
    r"""Matrix product state with open boundaries.

    $$\psi(x) = u[x_1]^\top A_2[x_2] \cdots A_{N-1}[x_{N-1}]\, v[x_N],$$

    with vectors $u[s], v[s] \in \mathbb{R}^D$ (or $\mathbb{C}^D$) at the two ends and
    $D \times D$ matrices $A_i[s]$ in between, one for each local value $s$ ($D$ =
    `bond_dim`). As in NetKet's `nk.models.tensor_networks.MPSOpen` the parameters are the
    deviations from a reference state: $u = 1 + $ `left_tensors`, $v = 1 + $
    `right_tensors` (all-ones vectors) and $A_i = \mathbb{1} + $ `middle_tensors[i - 2]`,
    initialised `normal(0.01)`, so that a freshly initialised MPS is close to the uniform
    superposition. The contraction runs left to right, `(batch, D)` vectors times matrices,
    in a `lax.scan` over the sites.

    ??? cite "Reference"

        ```bibtex
        @article{schollwock2011density,
          title={The density-matrix renormalization group in the age of matrix product
                 states},
          author={Schollw{\"o}ck, Ulrich},
          journal={Annals of Physics}, volume={326}, number={1}, pages={96--192}, year={2011}
        }
        ```
    """

    left_tensors: Inexact[Array, "{self.hilbert.local_size} {self.bond_dim}"]
    right_tensors: Inexact[Array, "{self.hilbert.local_size} {self.bond_dim}"]
    middle_tensors: Inexact[
        Array, "{self.hilbert.size-2} {self.hilbert.local_size} {self.bond_dim} {self.bond_dim}"
    ]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    bond_dim: int = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        bond_dim: int | np.integer,
        *,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.normal(0.01),
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space, at least 2 sites.
        - `bond_dim`: the bond dimension `D`, a positive integer.
        - `param_dtype`: dtype of the tensors (real or complex; NetKet's default float64).
        - `kernel_init`: initialiser of the deviations from the reference tensors (NetKet's
          default `normal(0.01)`).
        - `key`: a JAX PRNG key.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "MPSOpen needs a discrete nqzoo Hilbert space (an "
            "nqzoo.hilbert.AbstractDiscreteHilbert: Spin, Qubit, Fock)",
        )
        if hilbert.size < 2:
            raise ValueError(
                f"MPSOpen needs at least 2 sites (a left and a right end), got hilbert="
                f"{hilbert!r} with {hilbert.size} site; use MPSPeriodic for a single site."
            )
        bond_dim = positive_int(bond_dim, "bond_dim")
        param_dtype = inexact_dtype(param_dtype)
        d, n = hilbert.local_size, hilbert.size
        lkey, rkey, mkey = jax.random.split(key, 3)
        self.hilbert = hilbert
        self.bond_dim = bond_dim
        self.left_tensors = kernel_init(lkey, (d, bond_dim), param_dtype)
        self.right_tensors = kernel_init(rkey, (d, bond_dim), param_dtype)
        self.middle_tensors = kernel_init(mkey, (n - 2, d, bond_dim, bond_dim), param_dtype)

    def amplitude(
        self, indices: Int[Array, "batch {self.hilbert.size}"]
    ) -> Inexact[Array, " batch"]:
        """The amplitudes `ψ(x)` (not their logarithm) from the local indices of `x`.

        **Arguments:**

        - `indices`: `(batch, N)` local indices (`hilbert.states_to_local_indices(x)`).

        **Returns:** `ψ`, shape `(batch,)`, in the parameter dtype.
        """
        check_fields(self)
        left = self.left_tensors + 1
        right = self.right_tensors + 1
        middle = self.middle_tensors + _identities(self.middle_tensors)
        edges = left[indices[:, 0]]  # (batch, D)
        edges = _scan_sites(edges, middle, indices[:, 1:-1])
        return jnp.sum(edges * right[indices[:, -1]], axis=-1)


class MPSPeriodic(AbstractMPS):
    r"""Matrix product state with periodic boundaries.

    $$\psi(x) = \operatorname{Tr}\big[A_1[x_1] A_2[x_2] \cdots A_N[x_N]\big],$$

    with $D \times D$ matrices $A_i[s]$, one for each site and local value ($D$ =
    `bond_dim`). With `symperiod` $= P$ the tensors repeat with period $P$ along the chain,
    $A_{i + P} = A_i$ (translation invariance by $P$ sites; $P = N$ by default, all
    tensors independent). As in NetKet's `nk.models.tensor_networks.MPSPeriodic`,
    `tensors` holds the deviations from the identity, $A_i = \mathbb{1} + $
    `tensors[i mod P]`, initialised `normal(0.01)`. The contraction multiplies
    `(batch, D, D)` matrices site by site in a `lax.scan`.
    """

    tensors: Inexact[
        Array, "{self.symperiod} {self.hilbert.local_size} {self.bond_dim} {self.bond_dim}"
    ]
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    bond_dim: int = eqx.field(static=True)
    symperiod: int = eqx.field(static=True)

    def __init__(
        self,
        hilbert: object,
        bond_dim: int | np.integer,
        symperiod: int | np.integer | None = None,
        *,
        param_dtype: jnp.dtype | type = jnp.float64,
        kernel_init: Initializer = initializers.normal(0.01),
        key: PRNGKeyArray,
    ):
        """**Arguments:**

        - `hilbert`: the discrete Hilbert space.
        - `bond_dim`: the bond dimension `D`, a positive integer.
        - `symperiod`: the period `P` of the tensors along the chain, a divisor of the number
          of sites; `None` (default) for `P = N`.
        - `param_dtype`: dtype of the tensors (real or complex; NetKet's default float64).
        - `kernel_init`: initialiser of the deviations from the identity (NetKet's default
          `normal(0.01)`).
        - `key`: a JAX PRNG key.
        """
        hilbert = check_hilbert(
            hilbert,
            AbstractDiscreteHilbert,
            "MPSPeriodic needs a discrete nqzoo Hilbert space (an "
            "nqzoo.hilbert.AbstractDiscreteHilbert: Spin, Qubit, Fock)",
        )
        bond_dim = positive_int(bond_dim, "bond_dim")
        n = hilbert.size
        symperiod = n if symperiod is None else positive_int(symperiod, "symperiod")
        if n % symperiod:
            divisors = [p for p in range(1, n + 1) if n % p == 0]
            raise ValueError(
                f"symperiod must divide the number of sites {n} (the tensors repeat every "
                f"symperiod sites), got symperiod={symperiod}; allowed: {divisors}."
            )
        param_dtype = inexact_dtype(param_dtype)
        self.hilbert = hilbert
        self.bond_dim = bond_dim
        self.symperiod = symperiod
        shape = (symperiod, hilbert.local_size, bond_dim, bond_dim)
        self.tensors = kernel_init(key, shape, param_dtype)

    def amplitude(
        self, indices: Int[Array, "batch {self.hilbert.size}"]
    ) -> Inexact[Array, " batch"]:
        """The amplitudes `ψ(x)` (not their logarithm) from the local indices of `x`.

        **Arguments:**

        - `indices`: `(batch, N)` local indices (`hilbert.states_to_local_indices(x)`).

        **Returns:** `ψ`, shape `(batch,)`, in the parameter dtype.
        """
        check_fields(self)
        cell = self.tensors + _identities(self.tensors)
        tensors = cell[np.arange(self.hilbert.size) % self.symperiod]  # (N, d, D, D)
        edges = tensors[0][indices[:, 0]]  # (batch, D, D)
        edges = _scan_sites(edges, tensors[1:], indices[:, 1:])
        return jnp.trace(edges, axis1=-2, axis2=-1)

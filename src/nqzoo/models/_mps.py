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


def _one_hot(
    indices: Int[Array, "batch sites"], local_size: int, dtype: jnp.dtype
) -> Inexact[Array, "sites local_size batch"]:
    """`out[i, s, b] = (indices[b, i] == s)`, in `dtype` (sites first, batch last)."""
    values = jnp.arange(local_size, dtype=indices.dtype)
    return (indices.T[:, None, :] == values[None, :, None]).astype(dtype)


def _pick(
    tensor: Inexact[Array, "local_size *rest"],  # noqa: F821
    one_hot: Inexact[Array, "local_size batch"],
) -> Inexact[Array, "*rest batch"]:  # noqa: F821
    """`tensor[index[b]]` for every `b`, with the batch axis last, from the one-hot encoding
    of `index`: a sum over the (small) local axis, elementwise with the batch in the vector
    lanes (faster than a gather, or a select, in the fused loop that uses it)."""
    rest = (1,) * (tensor.ndim - 1)
    out = tensor[0][..., None] * one_hot[0].reshape(*rest, -1)
    for s in range(1, tensor.shape[0]):
        out = out + tensor[s][..., None] * one_hot[s].reshape(*rest, -1)
    return out


def _times(
    edges: Inexact[Array, "*rows bond batch"], matrices: Inexact[Array, "bond bond_out batch"]
) -> Inexact[Array, "*rows bond_out batch"]:
    """`edges[..., b] @ matrices[..., b]` for every `b`, batch axis last: a sum of `bond`
    broadcast products, one elementwise fusion vectorised over the batch. For small bond
    dimensions this beats a batched matrix product of `(batch, D, D)` stacks (a loop of tiny
    products) and a dense product with every local value (twice the work, then a select)."""
    rows = (1,) * (edges.ndim - 2)
    out = edges[..., 0, None, :] * matrices[0].reshape(*rows, *matrices.shape[1:])
    for j in range(1, matrices.shape[0]):
        out = out + edges[..., j, None, :] * matrices[j].reshape(*rows, *matrices.shape[1:])
    return out


def _scan_sites(
    edges: Inexact[Array, "*rows bond batch"],
    tensors: Inexact[Array, "sites local_size bond bond"],
    one_hot: Inexact[Array, "sites local_size batch"],
) -> Inexact[Array, "*rows bond batch"]:
    """`edges[..., b] @ tensors[0][x_0] @ tensors[1][x_1] @ …` for every `b` (with `x_i` the
    local index that `one_hot[i, :, b]` encodes), a `lax.scan` over the sites (the compiled
    program does not grow with their number)."""

    def step(edges, site):
        tensor, site_one_hot = site
        return _times(edges, _pick(tensor, site_one_hot)), None

    edges, _ = jax.lax.scan(step, edges, (tensors, one_hot))
    return edges


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
        log_psi = jnp.log(psi.astype(_complex_dtype(psi.dtype))).reshape(batch)
        valid = jnp.all(self.hilbert.is_local_state(x), axis=-1)  # else NaN, not another state
        return jnp.where(valid, log_psi, jnp.full((), jnp.nan, log_psi.dtype))


class MPSOpen(AbstractMPS):
    r"""Matrix product state with open boundaries.

    $$\psi(x) = u[x_1]^\top A_2[x_2] \cdots A_{N-1}[x_{N-1}]\, v[x_N],$$

    with vectors $u[s], v[s] \in \mathbb{R}^D$ (or $\mathbb{C}^D$) at the two ends and
    $D \times D$ matrices $A_i[s]$ in between, one for each local value $s$ ($D$ =
    `bond_dim`). As in NetKet's `nk.models.tensor_networks.MPSOpen` the parameters are the
    deviations from a reference state: $u = 1 + $ `left_tensors`, $v = 1 + $
    `right_tensors` (all-ones vectors) and $A_i = \mathbb{1} + $ `middle_tensors[i - 2]`,
    initialised `normal(0.01)`, so that a freshly initialised MPS is close to the uniform
    superposition. The contraction runs left to right, `(D, batch)` vectors times matrices
    (batch axis last, elementwise over the batch), in a `lax.scan` over the sites.

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
        one_hot = _one_hot(indices, self.hilbert.local_size, left.dtype)
        edges = _pick(left, one_hot[0])  # (D, batch)
        edges = _scan_sites(edges, middle, one_hot[1:-1])
        return jnp.sum(edges * _pick(right, one_hot[-1]), axis=0)


class MPSPeriodic(AbstractMPS):
    r"""Matrix product state with periodic boundaries.

    $$\psi(x) = \operatorname{Tr}\big[A_1[x_1] A_2[x_2] \cdots A_N[x_N]\big],$$

    with $D \times D$ matrices $A_i[s]$, one for each site and local value ($D$ =
    `bond_dim`). With `symperiod` $= P$ the tensors repeat with period $P$ along the chain,
    $A_{i + P} = A_i$ (translation invariance by $P$ sites; $P = N$ by default, all
    tensors independent). As in NetKet's `nk.models.tensor_networks.MPSPeriodic`,
    `tensors` holds the deviations from the identity, $A_i = \mathbb{1} + $
    `tensors[i mod P]`, initialised `normal(0.01)`. The contraction multiplies
    `(D, D, batch)` matrices (batch axis last, elementwise over the batch) site by site in a
    `lax.scan`.
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
        tensors = jnp.tile(cell, (self.hilbert.size // self.symperiod, 1, 1, 1))  # (N, d, D, D)
        one_hot = _one_hot(indices, self.hilbert.local_size, cell.dtype)
        edges = _pick(tensors[0], one_hot[0])  # (D, D, batch)
        edges = _scan_sites(edges, tensors[1:], one_hot[1:])
        return jnp.trace(edges, axis1=0, axis2=1)

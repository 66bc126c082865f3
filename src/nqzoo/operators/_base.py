"""The operator interface and the checks its concrete classes share."""

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Num, Real

from ..hilbert import AbstractDiscreteHilbert
from ..lattice import Grid


#: [`AbstractOperator.to_dense`][nqzoo.operators.AbstractOperator.to_dense] refuses spaces
#: with more states than this (a float64 matrix of this side takes 2 GiB).
MAX_DENSE_STATES = 2**14


class AbstractOperator(eqx.Module):
    r"""A Hermitian operator on a discrete Hilbert space, given by its connected elements.

    For a configuration $x$, [`connected`][nqzoo.operators.AbstractOperator.connected] lists
    a fixed number `n_conn` of configurations $x'_k$ with the matrix elements
    $H_{x x'_k}$: the diagonal element first ($x'_0 = x$), then the off-diagonal ones, padded
    with rows equal to $x$ with element 0 where $x$ has fewer. The number is static, so the
    method is jittable and its output has a fixed shape.

    The operators of this package keep their Hilbert space, lattice and couplings in static
    fields: they have no array leaves, so they pass through `eqx.filter_jit` as static
    arguments (a new coupling recompiles). A new operator subclasses this class with
    `hilbert` and `dtype` fields, an `n_conn` property and a `_connected(x)` method returning
    what `connected` documents; `connected` (checked and jitted) and `to_dense` come from here.
    """

    hilbert: eqx.AbstractVar[AbstractDiscreteHilbert]
    dtype: eqx.AbstractVar[np.dtype]

    @property
    @abc.abstractmethod
    def n_conn(self) -> int:
        """The number of connected elements per configuration (padding included)."""

    def connected(
        self, x: Real[ArrayLike, "*batch {self.hilbert.size}"]
    ) -> tuple[
        Num[Array, "*batch {self.n_conn} {self.hilbert.size}"],
        Inexact[Array, "*batch {self.n_conn}"],
    ]:
        """The configurations connected to `x` and the matrix elements.

        Jitted (once per operator and input shape; inlined inside a caller's jit), so eager
        calls are cheap after the first.

        **Arguments:**

        - `x`: configurations `(*batch, N)` with values in `hilbert.local_states`.

        **Returns:** `(x_conn, mels)`: `x_conn` of shape `(*batch, n_conn, N)` in the dtype of
        `x`, with `x_conn[..., 0, :] == x`, and `mels` of shape `(*batch, n_conn)` in the
        operator's `dtype`, `mels[..., k]` $= H_{x, x'_k}$ (0 for padding rows).
        """
        return _jitted_connected(self, jnp.asarray(x))

    @property
    def changed_sites(self) -> np.ndarray | None:
        """The sites each connected element may change: an integer array `(n_conn, k)` with
        `x_conn[..., c, :]` equal to `x` outside `changed_sites[c]`, or `None` (the default)
        if the operator does not say.

        [`local_energy`][nqzoo.operators.local_energy] uses it with a model that has a
        lookup table ([`nqzoo.models.AbstractLookupModel`][]): each connected amplitude is
        then an update of the sample's table instead of a new evaluation.
        """
        return None

    @abc.abstractmethod
    def _connected(self, x: Array) -> tuple[Array, Array]:
        """What [`connected`][nqzoo.operators.AbstractOperator.connected] returns, for an
        array `x` of any batch shape: the method a subclass implements (it is traced, not
        called eagerly, and its output is checked by `connected`)."""

    def to_dense(self) -> Inexact[np.ndarray, "n_states n_states"]:
        r"""The dense matrix in the basis of `hilbert.all_states()` (small spaces only).

        **Returns:** a numpy array `(n_states, n_states)` in the operator's `dtype`, with
        `H[a, b]` $= \langle a | H | b \rangle$ for the `a`-th and `b`-th state of
        `all_states()` (NetKet's order, so it compares with NetKet's `to_dense()`).

        **Raises:** `ValueError` for a space with more than
        [`MAX_DENSE_STATES`][nqzoo.operators.MAX_DENSE_STATES] states, or if the operator
        connects a state to one outside a constrained space.
        """
        n_states = self.hilbert.n_states
        if n_states > MAX_DENSE_STATES:
            raise ValueError(
                f"to_dense() builds a dense matrix for at most MAX_DENSE_STATES = "
                f"{MAX_DENSE_STATES} states; {self.hilbert!r} has {n_states}."
            )
        states = np.asarray(self.hilbert.all_states())
        x_conn, mels = self.connected(states)
        x_conn, mels = np.asarray(x_conn), np.asarray(mels)
        local_size = self.hilbert.local_size
        powers = local_size ** np.arange(self.hilbert.size - 1, -1, -1, dtype=np.int64)

        local_states = np.asarray(self.hilbert.local_states)

        def codes(x):  # numpy: no JAX dispatch for each new shape
            indices = np.argmax(x[..., None] == local_states, axis=-1)
            return indices.astype(np.int64) @ powers

        state_codes = codes(states)
        order = np.argsort(state_codes)
        rows, ks = np.nonzero(mels)
        conn_codes = codes(x_conn[rows, ks])
        pos = np.clip(np.searchsorted(state_codes, conn_codes, sorter=order), 0, len(order) - 1)
        cols = order[pos]
        if np.any(state_codes[cols] != conn_codes):
            raise ValueError(
                f"{type(self).__name__} connects states of {self.hilbert!r} to configurations "
                "outside that (constrained) space; to_dense() needs an operator that keeps it."
            )
        dense = np.zeros((len(states), len(states)), dtype=self.dtype)
        np.add.at(dense, (rows, cols), mels[rows, ks])
        return dense


@eqx.filter_jit
def _jitted_connected(operator: AbstractOperator, x: Array) -> tuple[Array, Array]:
    return operator._connected(x)


def with_batch_axes(array: np.ndarray, x: Array) -> np.ndarray:
    """`array` with as many leading axes of size 1 as `x` has batch axes (`x.ndim - 1`), so
    that it broadcasts against per-configuration arrays without rank promotion."""
    return np.reshape(array, (1,) * (x.ndim - 1) + np.shape(array))


def check_lattice(hilbert: object, lattice: object) -> None:
    """Refuse a lattice that is not a [`Grid`][nqzoo.lattice.Grid] or whose number of sites
    differs from the Hilbert space's."""
    if not isinstance(lattice, Grid):
        raise TypeError(
            f"lattice must be an nqzoo lattice (nqzoo.lattice.Grid, Chain, Square, Hypercube), "
            f"got lattice={lattice!r}."
        )
    if lattice.n_sites != hilbert.size:
        raise ValueError(
            f"lattice has {lattice.n_sites} sites but the Hilbert space has {hilbert.size}: "
            f"got lattice={lattice!r} (n_sites={lattice.n_sites}) and hilbert={hilbert!r} "
            f"(size={hilbert.size})."
        )


def check_two_level(hilbert: object, operator: str, *, allow_constrained: bool) -> None:
    r"""Refuse anything but a discrete space of two local states (Spin-1/2, Qubit), as NetKet
    does; local index 0 is the $\sigma^z = +1$ state."""
    if not isinstance(hilbert, AbstractDiscreteHilbert) or hilbert.local_size != 2:
        raise ValueError(
            f"{operator} acts on spins 1/2: hilbert must be a discrete space with two local "
            f"states (nqzoo.hilbert.Spin(0.5, N) or Qubit(N)), got hilbert={hilbert!r}."
        )
    if hilbert.constrained and not allow_constrained:
        raise ValueError(
            f"{operator} does not conserve the constraint of hilbert={hilbert!r}; use the "
            "unconstrained space."
        )


def finite_real(value: object, argname: str) -> float:
    """`value` as a Python float, refusing bools, complex numbers, NaN and infinities."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(value)
    ):
        raise ValueError(f"{argname} must be a finite real number, got {argname}={value!r}.")
    return float(value)


def operator_dtype(dtype: object) -> np.dtype:
    """The matrix-element dtype: `None` gives JAX's default float (float64 with x64, as NetKet);
    otherwise a real or complex floating dtype, canonicalised for the current x64 setting."""
    if dtype is None:
        return np.dtype(jnp.result_type(float))
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or not np.issubdtype(resolved, np.inexact):
        raise ValueError(
            f"dtype must be a real or complex floating dtype (float32, float64, complex128, "
            f"...), got dtype={dtype!r}."
        )
    return np.dtype(jax.dtypes.canonicalize_dtype(resolved))

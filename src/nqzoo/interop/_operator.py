"""NetKet's discrete operators (in their JAX form) as nqzoo operators."""

import contextlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..hilbert import AbstractDiscreteHilbert
from ..operators import AbstractOperator
from ..operators._base import operator_dtype
from ._hilbert import hilbert_from_netket


class NetKetOperator(AbstractOperator):
    r"""A NetKet discrete operator, in its JAX form, as an nqzoo operator.

    It holds NetKet's operator (an `nk.operator.DiscreteJaxOperator` such as `IsingJax`,
    `LocalOperatorJax`, `PauliStringsJax`, `BoseHubbardJax` or a sum of them) and gives its
    connected elements in nqzoo's form: for a configuration $x$, NetKet's
    `get_conn_padded(x)` lists `max_conn_size` configurations $x'_k$ and elements
    $H_{x x'_k}$, in an order of its own (the diagonal may come anywhere, several times, or
    not at all). Here the diagonal element $H_{xx} = \sum_{k:\, x'_k = x} H_{x x'_k}$ comes
    first, followed by NetKet's rows with the diagonal ones (and every row whose element is 0)
    turned into padding, rows equal to $x$ with element 0: `n_conn = max_conn_size + 1`.
    The matrix is NetKet's, row for row, so [`to_dense`][nqzoo.operators.AbstractOperator.to_dense]
    equals NetKet's `to_dense()`.

    Unlike nqzoo's own operators (e.g. [`nqzoo.operators.Ising`][]), this one has array
    leaves (NetKet's operator is a pytree of arrays, kept as the field `operator`): it goes
    through `eqx.filter_jit` as a traced argument, so new couplings of the same structure do
    not recompile. NetKet's code runs with JAX's standard dtype promotion (which it needs);
    its outputs are cast explicitly, the configurations to the dtype of `x` and the elements
    to `dtype`, so nothing is promoted silently around it.

    The extra row costs one more evaluation of $\log\psi$ per sample in a local energy
    (`max_conn_size + 1` instead of `max_conn_size`).

    Build it with [`nqzoo.interop.netket.operator_from_netket`][] (or this class directly).
    """

    operator: Any
    hilbert: AbstractDiscreteHilbert = eqx.field(static=True)
    dtype: np.dtype = eqx.field(static=True)
    max_conn_size: int = eqx.field(static=True)

    def __init__(self, operator: Any, *, dtype: object = None):
        """**Arguments:**

        - `operator`: a NetKet discrete operator with a JAX form: a
          `nk.operator.DiscreteJaxOperator`, or an operator with a `to_jax_operator()` method
          (e.g. `nk.operator.Heisenberg`, `LocalOperator`, `PauliStrings`, `Ising`), which is
          called. Its Hilbert space must have an nqzoo equivalent
          ([`nqzoo.interop.netket.hilbert_from_netket`][]: Spin, possibly with `total_sz`,
          Qubit, Fock).
        - `dtype`: dtype of the matrix elements; default NetKet's `operator.dtype`. A real
          dtype for a complex operator is refused (it would drop the imaginary parts).

        **Raises:** `TypeError` naming `operator` for something that is not a NetKet operator,
        a continuous operator (no connected elements), or a discrete operator without a JAX
        form (`to_jax_operator`); `ValueError` for a Hilbert space nqzoo does not have, or a
        real `dtype` for a complex operator.
        """
        with _netket_promotion():  # NetKet's own code relies on implicit promotion
            jax_operator = _jax_form(operator)
            # Reading max_conn_size also finishes NetKet's lazy set-up (LocalOperatorJax
            # packs its arrays on first use), so the pytree is complete before it is stored.
            max_conn_size = int(jax_operator.max_conn_size)
        self.operator = jax_operator
        self.hilbert = hilbert_from_netket(jax_operator.hilbert)
        native = np.dtype(jax.dtypes.canonicalize_dtype(jax_operator.dtype))
        self.dtype = native if dtype is None else operator_dtype(dtype)
        if np.issubdtype(native, np.complexfloating) and not np.issubdtype(
            self.dtype, np.complexfloating
        ):
            raise ValueError(
                f"dtype={self.dtype.name} is real but the operator has complex matrix "
                f"elements ({native.name}); give a complex dtype or none."
            )
        self.max_conn_size = max_conn_size

    @property
    def n_conn(self) -> int:
        """`max_conn_size + 1`: the diagonal row, then NetKet's `max_conn_size` rows."""
        return self.max_conn_size + 1

    def _connected(self, x: Array) -> tuple[Array, Array]:
        n = self.hilbert.size
        flat = x.reshape(-1, n)
        with _netket_promotion():
            x_nk, mels_nk = self.operator.get_conn_padded(flat)
        x_nk = jnp.asarray(x_nk).astype(x.dtype)  # exact: NetKet's values are local states
        mels_nk = jnp.asarray(mels_nk).astype(self.dtype)
        here = flat[:, None, :]
        diagonal = jnp.all(x_nk == here, axis=-1)  # (b, max_conn)
        diag = jnp.sum(jnp.where(diagonal, mels_nk, 0), axis=-1)
        off = jnp.where(diagonal, 0, mels_nk)
        x_off = jnp.where((off == 0)[..., None], here, x_nk)
        x_conn = jnp.concatenate([here, x_off], axis=1)
        mels = jnp.concatenate([diag[:, None], off], axis=1)
        batch = x.shape[:-1]
        return x_conn.reshape(*batch, self.n_conn, n), mels.reshape(*batch, self.n_conn)


@contextlib.contextmanager
def _netket_promotion():
    """JAX's standard promotion rules, under which NetKet's code is written (it mixes int8
    configurations with float couplings): NetKet runs inside, nqzoo's code outside."""
    with jax.numpy_dtype_promotion("standard"), jax.numpy_rank_promotion("allow"):
        yield


def _jax_form(operator: Any) -> Any:
    """NetKet's JAX form of `operator`, or a `TypeError` saying why there is none."""
    import netket as nk

    if isinstance(operator, nk.operator.DiscreteJaxOperator):
        return operator
    name = type(operator).__name__
    if not isinstance(operator, nk.operator.AbstractOperator):
        raise TypeError(
            "operator must be a NetKet discrete operator with a JAX form (e.g. "
            "nk.operator.IsingJax, Heisenberg, LocalOperator, PauliStrings), got "
            f"operator={operator!r} of type {name}."
        )
    if isinstance(operator, nk.operator.ContinuousOperator):
        raise TypeError(
            f"operator={operator!r} is a continuous NetKet operator ({name}); only discrete "
            "operators have connected elements (nqzoo's operators act on discrete spaces)."
        )
    convert = getattr(operator, "to_jax_operator", None)
    if convert is None:
        raise TypeError(
            f"operator={operator!r} ({name}) has no JAX form: NetKet gives it no "
            "to_jax_operator() method. Build the Hamiltonian from operators that have one "
            "(LocalOperator, PauliStrings, Ising, BoseHubbard, FermionOperator2nd and their "
            "sums and products)."
        )
    try:
        jax_operator = convert()
    except NotImplementedError as error:
        raise TypeError(
            f"operator={operator!r} ({name}) has no JAX form: its to_jax_operator() raised "
            f"NotImplementedError ({error})."
        ) from error
    if not isinstance(jax_operator, nk.operator.DiscreteJaxOperator):
        raise TypeError(
            f"{name}.to_jax_operator() gave {type(jax_operator).__name__}, not a NetKet "
            "DiscreteJaxOperator."
        )
    return jax_operator


def operator_from_netket(operator: Any, *, dtype: object = None) -> NetKetOperator:
    r"""The nqzoo operator equal to a NetKet discrete operator (through its JAX form).

    ```python
    H = operator_from_netket(nk.operator.Heisenberg(nk_hilbert, graph))
    e_loc = nqz.operators.local_energy(model, H, x)    # eagerly or inside eqx.filter_jit
    ```

    The same as [`nqzoo.interop.netket.NetKetOperator`][]`(operator, dtype=dtype)`: the
    result is an [`nqzoo.operators.AbstractOperator`][] on
    `hilbert_from_netket(operator.hilbert)`, with NetKet's matrix elements.

    **Arguments:**

    - `operator`: a NetKet discrete operator with a JAX form (`DiscreteJaxOperator`, or
      anything with `to_jax_operator()`).
    - `dtype`: dtype of the matrix elements (default: NetKet's `operator.dtype`).

    **Returns:** a [`nqzoo.interop.netket.NetKetOperator`][].

    **Raises:** as [`NetKetOperator`][nqzoo.interop.netket.NetKetOperator].
    """
    return NetKetOperator(operator, dtype=dtype)

r"""Exact references: ground states by Lanczos on an operator's connected elements, and the
closed form of the transverse-field Ising chain.

[`sparse_matrix`][nqzoo.exact.sparse_matrix] turns any
[`AbstractOperator`][nqzoo.operators.AbstractOperator] into a
[`SparseMatrix`][nqzoo.exact.SparseMatrix] over the states of its Hilbert space (constrained
spaces included), built from `connected` in chunks;
[`ground_state`][nqzoo.exact.ground_state] runs a thick-restart Lanczos iteration on it;
[`tfim_chain_energy`][nqzoo.exact.tfim_chain_energy] is the Jordan-Wigner solution of the
periodic Ising chain.
"""

import functools
import math
import numbers
import typing

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Inexact, Int32, UInt8

from ._misc import positive_int
from ._typecheck import check_fields
from .hilbert import AbstractDiscreteHilbert
from .operators import AbstractOperator


__all__ = [
    "MAX_SPARSE_STATES",
    "GroundState",
    "SparseMatrix",
    "ground_state",
    "sparse_matrix",
    "tfim_chain_energy",
]

#: [`sparse_matrix`][nqzoo.exact.sparse_matrix] refuses spaces with more states than this
#: (2^25: a 25-site spin-1/2 chain; the matrix of a 24-site Ising chain takes 2 GB).
MAX_SPARSE_STATES = 2**25

# Distinct off-diagonal matrix elements stored as one-byte codes into a table; an operator
# with more distinct values keeps them in its dtype.
_TABLE_SIZE = 256


class SparseMatrix(eqx.Module):
    r"""An operator as a sparse matrix over the states of its Hilbert space.

    Row $a$ holds the diagonal element $H_{aa}$ and `n_off` off-diagonal entries
    $H_{a, c_{ka}}$ in columns $c_{ka}$ (`columns[k, a]`), one per off-diagonal connected
    element of the operator (a padding element is stored as column $a$ with value 0). The
    states are those of `hilbert.all_states()`, in that order (for an unconstrained space the
    index of a state is its code: its local indices read as digits, last site fastest).

    The off-diagonal values of a real operator with at most 256 distinct elements (the lattice
    Hamiltonians: $-h$, $\pm 2J$, ...) are stored as one-byte `codes` into a `table`; otherwise
    in `values`, in the operator's dtype. Memory: `n_states * (8 + 5 n_off)` bytes with codes
    (float64), `n_states * (8 + 12 n_off)` without.

    Build it with [`sparse_matrix`][nqzoo.exact.sparse_matrix]; `matrix @ v` is the product.
    """

    diagonal: Inexact[Array, " n_states"]
    columns: Int32[Array, "n_off n_states"]
    codes: UInt8[Array, "n_off n_states"] | None
    table: Inexact[Array, " n_values"] | None
    values: Inexact[Array, "n_off n_states"] | None

    def __check_init__(self):
        check_fields(self)
        if (self.values is None) == (self.codes is None or self.table is None):
            raise ValueError(
                "SparseMatrix stores its off-diagonal elements either as codes and a table or "
                "as values: pass codes and table, or values."
            )

    @property
    def n_states(self) -> int:
        """The number of states (the side of the matrix)."""
        return self.diagonal.shape[0]

    @property
    def n_off(self) -> int:
        """The number of off-diagonal entries stored per row (padding included)."""
        return self.columns.shape[0]

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the matrix elements."""
        return self.diagonal.dtype

    @property
    def nbytes(self) -> int:
        """The memory the matrix takes, in bytes."""
        arrays = (self.diagonal, self.columns, self.codes, self.table, self.values)
        return sum(a.nbytes for a in arrays if a is not None)

    def __matmul__(
        self, v: Inexact[Array, " {self.n_states}"]
    ) -> Inexact[Array, " {self.n_states}"]:
        r"""The product $H v$ (jitted; one pass over the stored entries, without
        temporaries of the matrix's size).

        **Arguments:**

        - `v`: a vector over the states, in the matrix's dtype (or a complex vector for a real
          matrix).

        **Returns:** $Hv$, in the dtype of `v`.
        """
        return _matvec(self, v)


@jax.jit
def _matvec(matrix: SparseMatrix, v: Array) -> Array:
    # One gather of `v` per off-diagonal slot, accumulated in a scan: each slot is a
    # contiguous row of `columns`, so XLA fuses gather, product and sum into one loop and
    # never materialises an (n_off, n_states) array.
    dtype = v.dtype

    def add_slot(acc, slot):
        cols, stored = slot
        value = stored if matrix.values is not None else matrix.table[stored]
        return acc + value.astype(dtype) * v.at[cols].get(mode="promise_in_bounds"), None

    stored = matrix.values if matrix.values is not None else matrix.codes
    start = matrix.diagonal.astype(dtype) * v
    return jax.lax.scan(add_slot, start, (matrix.columns, stored))[0]


def sparse_matrix(operator: object, *, chunk_size: numbers.Integral | None = None) -> SparseMatrix:
    r"""The sparse matrix of an operator over the states of its Hilbert space, from its
    connected elements.

    The states are enumerated (from their codes for an unconstrained space, from
    `hilbert.all_states()` for a constrained one such as `Spin(0.5, N, total_sz=0)`), their
    connected elements computed `chunk_size` states at a time, and every connected
    configuration located by its code (an index for an unconstrained space, a binary search in
    the sorted codes of the allowed states for a constrained one). Peak memory is the matrix
    plus one chunk: see [`SparseMatrix`][nqzoo.exact.SparseMatrix].

    **Arguments:**

    - `operator`: an [`AbstractOperator`][nqzoo.operators.AbstractOperator] on a discrete
      space with at most [`MAX_SPARSE_STATES`][nqzoo.exact.MAX_SPARSE_STATES] states.
    - `chunk_size`: states per chunk (default: about $2^{22}$ connected sites per chunk).

    **Returns:** a [`SparseMatrix`][nqzoo.exact.SparseMatrix], rows and columns in the order
    of `operator.hilbert.all_states()`.

    **Raises:** `TypeError` if `operator` is not an nqzoo operator on a discrete space;
    `ValueError` for a space with too many states, a `chunk_size` that is not a positive
    integer, an operator with non-finite elements, or one that connects a state to a
    configuration outside a constrained space.
    """
    if not isinstance(operator, AbstractOperator):
        raise TypeError(
            f"operator must be an nqzoo operator (nqzoo.operators.AbstractOperator), got "
            f"operator={operator!r}."
        )
    hilbert = operator.hilbert
    if not isinstance(hilbert, AbstractDiscreteHilbert):
        raise TypeError(
            f"sparse_matrix needs an operator on a discrete Hilbert space, got "
            f"operator.hilbert={hilbert!r}."
        )
    n_sites, local_size = hilbert.size, hilbert.local_size
    n_product = local_size**n_sites
    if n_product > MAX_SPARSE_STATES and not hilbert.constrained:
        raise ValueError(
            f"sparse_matrix builds matrices of at most MAX_SPARSE_STATES = {MAX_SPARSE_STATES} "
            f"states; operator.hilbert={hilbert!r} has {local_size}^{n_sites} = {n_product}."
        )
    wide = n_product > np.iinfo(np.int32).max
    if wide and not jax.config.jax_enable_x64:
        raise ValueError(
            f"the {local_size}^{n_sites} configurations of operator.hilbert={hilbert!r} are "
            "indexed by 64-bit codes: enable them with "
            'jax.config.update("jax_enable_x64", True).'
        )
    code_dtype = np.int64 if wide else np.int32
    powers = (local_size ** np.arange(n_sites - 1, -1, -1, dtype=np.int64)).astype(code_dtype)
    if hilbert.constrained:
        states = np.asarray(hilbert.all_states())
        if len(states) > MAX_SPARSE_STATES:
            raise ValueError(
                f"sparse_matrix builds matrices of at most MAX_SPARSE_STATES = "
                f"{MAX_SPARSE_STATES} states; operator.hilbert={hilbert!r} has {len(states)}."
            )
        local_states = np.asarray(hilbert.local_states)
        codes = np.argmax(states[..., None] == local_states, axis=-1).astype(code_dtype) @ powers
        order = np.argsort(codes).astype(np.int32)
        lookup = (jnp.asarray(codes[order]), jnp.asarray(order))
        n_states = len(states)
    else:
        states, lookup, n_states = None, None, n_product

    n_conn = operator.n_conn
    if chunk_size is None:
        chunk_size = max(1, 2**22 // (n_conn * n_sites))
    else:
        chunk_size = positive_int(chunk_size, "chunk_size")
    chunk_size = min(chunk_size, n_states)
    n_off = n_conn - 1
    dtype = np.dtype(operator.dtype)
    coded = not jnp.issubdtype(dtype, jnp.complexfloating)
    table = [0.0]  # code 0: the padding value

    params, static = eqx.partition(operator, eqx.is_array)
    diagonal = jnp.zeros((n_states,), dtype)
    columns = jnp.zeros((n_off, n_states), np.int32)
    store = jnp.zeros((n_off, n_states), np.uint8 if coded else dtype)
    stop = 0
    while stop < n_states:
        # Every chunk has `chunk_size` states (one compilation): the last one overlaps the
        # one before, whose rows it rewrites with the same values.
        start = min(stop, n_states - chunk_size)
        stop = start + chunk_size
        chunk = None if states is None else states[start:stop]
        diag, cols, off, n_outside, n_not_first = _chunk_elements(
            params, static, hilbert, powers, start, chunk_size, chunk, lookup
        )
        if int(n_not_first):
            raise ValueError(
                f"operator={type(operator).__name__}.connected(x) must list x itself first "
                f"(with the diagonal element), as AbstractOperator documents; it does not for "
                f"{int(n_not_first)} states of {hilbert!r}."
            )
        if int(n_outside):
            raise ValueError(
                f"operator={type(operator).__name__} connects states of {hilbert!r} to "
                "configurations outside that (constrained) space; sparse_matrix needs an "
                "operator that keeps it."
            )
        off = np.asarray(off)
        if not (np.all(np.isfinite(off)) and np.all(np.isfinite(np.asarray(diag)))):
            raise ValueError(
                f"operator={type(operator).__name__} has non-finite matrix elements (NaN or "
                f"inf) on states {start} to {stop - 1} of {hilbert!r}."
            )
        while coded:
            stored, n_missing = _codes(off, np.asarray(table, dtype))
            if not n_missing:
                break
            # New off-diagonal values (in the first chunk, or a rarer element further on):
            # extend the table, or store values from now on once it would overflow.
            values = np.unique(off)
            new = values[~np.isin(values, np.asarray(table, dtype))]
            if len(table) + len(new) <= _TABLE_SIZE:
                table.extend(new.tolist())
                continue
            store = _decode(store, jnp.asarray(table, dtype))
            coded = False
        if not coded:
            stored = off
        diagonal, columns, store = _write(diagonal, columns, store, diag, cols, stored, start)
    if coded:
        return SparseMatrix(diagonal, columns, store, jnp.asarray(table, dtype), None)
    return SparseMatrix(diagonal, columns, None, None, store)


@functools.partial(jax.jit, static_argnames=("static", "hilbert", "size"))
def _chunk_elements(params, static, hilbert, powers, start, size, chunk, lookup):
    """Connected elements of the states `start .. start + size`: the diagonal `(size,)`,
    the off-diagonal columns and values `(n_off, size)` (padding: the state's own column,
    value 0), how many connected configurations with a nonzero element fall outside a
    constrained space, and how many states are not their own first connected element."""
    operator = eqx.combine(params, static)
    rows = start + jnp.arange(size, dtype=np.int32)
    if chunk is None:
        digits = (rows[:, None].astype(powers.dtype) // powers[None, :]) % hilbert.local_size
        x = hilbert.local_indices_to_states(digits.astype(np.int32))
    else:
        x = chunk
    x_conn, mels = operator.connected(x)  # (size, n_conn, N), (size, n_conn)
    idx = hilbert.states_to_local_indices(x_conn[:, 1:]).astype(powers.dtype)
    codes = jnp.sum(idx * powers[None, None, :], axis=-1, dtype=powers.dtype)  # (size, n_off)
    off = mels[:, 1:]
    keep = off != 0
    if lookup is None:
        cols, outside = codes.astype(np.int32), jnp.zeros((), np.int32)
    else:
        sorted_codes, order = lookup
        pos = jnp.clip(jnp.searchsorted(sorted_codes, codes), 0, sorted_codes.shape[0] - 1)
        found = sorted_codes[pos] == codes
        cols = order[pos]
        outside = jnp.sum(keep & ~found, dtype=np.int32)
    cols = jnp.where(keep, cols, rows[:, None])
    not_first = jnp.sum(jnp.any(x_conn[:, 0] != x, axis=-1), dtype=np.int32)
    return mels[:, 0], cols.T, jnp.where(keep, off, 0).T, outside, not_first


def _codes(off: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, int]:
    """The code of each value in `table` (its index), and how many values are missing."""
    if len(table) <= 16:  # a few values (the common case): one comparison each
        code, found = np.zeros(off.shape, np.uint8), np.zeros(off.shape, bool)
        for t, value in enumerate(table):
            hit = off == value
            code[hit], found = t, found | hit
    else:
        order = np.argsort(table, kind="stable")
        pos = np.clip(np.searchsorted(table[order], off), 0, len(table) - 1)
        code, found = order[pos].astype(np.uint8), table[order][pos] == off
    return code, int(np.sum(~found))


@functools.partial(jax.jit, donate_argnums=0)
def _decode(codes: Array, table: Array) -> Array:
    return table[codes]


@functools.partial(jax.jit, donate_argnums=(0, 1, 2))
def _write(diagonal, columns, store, diag, cols, stored, start):
    diagonal = jax.lax.dynamic_update_slice(diagonal, diag.astype(diagonal.dtype), (start,))
    columns = jax.lax.dynamic_update_slice(columns, cols, (0, start))
    store = jax.lax.dynamic_update_slice(store, stored.astype(store.dtype), (0, start))
    return diagonal, columns, store


class GroundState(typing.NamedTuple):
    """The result of [`ground_state`][nqzoo.exact.ground_state]."""

    energy: float
    """The lowest eigenvalue."""
    vector: Array | None
    """The normalised eigenvector over `hilbert.all_states()` (its largest component real and
    positive), or `None` unless `return_vector=True`."""
    residual: float
    r"""$\|H v - E v\|$ of the Ritz pair at convergence (the eigenvalue error is at most
    this, and typically its square over the spectral gap)."""
    n_matvec: int
    """The number of products with the matrix."""


def ground_state(
    operator: object,
    *,
    return_vector: bool = False,
    tol: numbers.Real = 1e-12,
    n_basis: numbers.Integral | None = None,
    max_matvec: numbers.Integral = 10_000,
    seed: numbers.Integral = 0,
    chunk_size: numbers.Integral | None = None,
) -> GroundState:
    r"""The ground state of an operator by thick-restart Lanczos on its sparse matrix.

    From a random start vector, each step multiplies the newest Lanczos vector by $H$ and
    orthogonalises the result against the whole basis (classical Gram-Schmidt, twice: full
    reorthogonalisation), recording the coefficients in the projected matrix
    $T = V^\dagger H V$. When the basis holds `n_basis` vectors it restarts from the
    `n_basis // 2` lowest Ritz vectors and the residual direction (Wu and Simon's thick
    restart: $T$ becomes their Ritz values plus one coupling row), so memory stays at
    `n_basis + 1` vectors while convergence stays close to unrestarted Lanczos. It stops when
    the residual $\|Hu - \theta u\| = \beta\,|y_\mathrm{last}|$ of the lowest Ritz pair is
    below `tol` times the largest Ritz value in magnitude, or when the Krylov space is
    invariant. The products run in JAX in the operator's dtype (float64 with x64 enabled;
    in float32 the energy is good to about 1e-6 only).

    Memory: the matrix (see [`SparseMatrix`][nqzoo.exact.SparseMatrix]) and
    `n_basis + 1` vectors of `n_states` elements.

    ??? cite "Reference"

        ```bibtex
        @article{wu2000thick,
          title={Thick-restart Lanczos method for large symmetric eigenvalue problems},
          author={Wu, Kesheng and Simon, Horst},
          journal={SIAM Journal on Matrix Analysis and Applications},
          volume={22}, number={2}, pages={602--616}, year={2000}
        }
        ```

    **Arguments:**

    - `operator`: a Hermitian [`AbstractOperator`][nqzoo.operators.AbstractOperator] (its
      matrix is built with [`sparse_matrix`][nqzoo.exact.sparse_matrix]) or a
      [`SparseMatrix`][nqzoo.exact.SparseMatrix] built before.
    - `return_vector`: also return the eigenvector.
    - `tol`: relative tolerance on the residual (the energy converges faster: its error is
      about the residual squared over the gap).
    - `n_basis`: the largest basis (default: 32 vectors, fewer when `n_states` is large so
      that the basis takes at most 2 GiB; at least 4).
    - `max_matvec`: the most products with the matrix before giving up.
    - `seed`: seed of the random start vector.
    - `chunk_size`: passed to [`sparse_matrix`][nqzoo.exact.sparse_matrix].

    **Returns:** a [`GroundState`][nqzoo.exact.GroundState] `(energy, vector, residual,
    n_matvec)`.

    **Raises:** what [`sparse_matrix`][nqzoo.exact.sparse_matrix] raises; `ValueError` for a
    `tol` outside (0, 1), `n_basis < 2`, a `max_matvec` that is not a positive integer;
    `RuntimeError` if the residual is still above `tol` after
    `max_matvec` products.
    """
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 < tol < 1:
        raise ValueError(f"tol must be a number in (0, 1), got tol={tol!r}.")
    max_matvec = positive_int(max_matvec, "max_matvec")
    matrix = (
        operator
        if isinstance(operator, SparseMatrix)
        else sparse_matrix(operator, chunk_size=chunk_size)
    )
    n = matrix.n_states
    dtype = np.dtype(matrix.dtype)
    if n_basis is None:
        n_basis = min(32, max(4, 2**31 // (n * dtype.itemsize)))
    elif isinstance(n_basis, bool) or not isinstance(n_basis, numbers.Integral) or n_basis < 2:
        raise ValueError(f"n_basis must be an integer >= 2, got n_basis={n_basis!r}.")
    m = min(int(n_basis), n)
    n_keep = max(1, m // 2)

    # The iteration runs in NumPy (BLAS for the projections, no compilation per size); only
    # the products with the matrix run in JAX.
    rng = np.random.default_rng(int(seed))
    basis = np.zeros((m + 1, n), dtype)
    basis[0] = rng.standard_normal(n)
    if np.iscomplexobj(basis):
        basis[0] += 1j * rng.standard_normal(n)
    basis[0] /= np.linalg.norm(basis[0])
    t = np.zeros((m, m), dtype)
    j, n_matvec, first = 0, 0, 0  # first: the first Lanczos vector after the kept ones
    while True:
        h, beta = _lanczos_step(matrix, basis, j, local=j > first)
        n_matvec += 1
        t[: j + 1, j] = h
        t[j, : j + 1] = np.conj(h)
        t[j, j] = h[j].real
        theta, y = np.linalg.eigh(t[: j + 1, : j + 1])
        residual = abs(beta * y[j, 0])
        scale = max(float(np.abs(theta).max()), np.finfo(dtype).tiny)
        invariant = beta <= 10 * np.finfo(dtype).eps * scale or j + 1 == n
        if residual <= tol * scale or invariant:
            break
        if n_matvec >= max_matvec:
            raise RuntimeError(
                f"ground_state did not converge in max_matvec={max_matvec} products: the "
                f"residual is {residual:.3g}, above tol={tol} times {scale:.3g}. Raise "
                "max_matvec or n_basis, or loosen tol."
            )
        if j + 1 < m:
            t[j + 1, j] = t[j, j + 1] = beta
            j += 1
            continue
        # Thick restart: keep the n_keep lowest Ritz vectors and the residual direction.
        basis[:n_keep] = y[:, :n_keep].T.astype(dtype) @ basis[:m]
        basis[n_keep] = basis[m]
        basis[n_keep + 1 :] = 0
        t[:] = 0
        t[np.arange(n_keep), np.arange(n_keep)] = theta[:n_keep]
        t[n_keep, :n_keep] = beta * y[m - 1, :n_keep]
        t[:n_keep, n_keep] = np.conj(t[n_keep, :n_keep])
        j = first = n_keep
    vector = None
    if return_vector:
        v = y[:, 0].astype(dtype) @ basis[: j + 1]
        v /= np.linalg.norm(v)
        top = v[np.argmax(np.abs(v))]
        vector = jnp.asarray(v * (np.conj(top) / abs(top)))
    return GroundState(float(theta[0]), vector, float(residual), n_matvec)


def _lanczos_step(matrix: SparseMatrix, basis: np.ndarray, j: int, local: bool):
    """`H v_j` orthogonalised against `v_0 .. v_j`, normalised and stored in `basis` as
    `v_{j+1}`; returns the projections `<v_i | H v_j>` and the norm before normalising.

    With `local` (`v_j` and `v_{j-1}` are Lanczos vectors, not kept Ritz vectors), `H v_j`
    lies in their span up to rounding: it is projected on those two first, then on the
    whole basis once (the reorthogonalisation); otherwise on the whole basis twice
    (classical Gram-Schmidt twice: full reorthogonalisation)."""
    w = np.array(_matvec(matrix, jnp.asarray(basis[j])))
    active = basis[: j + 1]
    h = np.zeros(j + 1, basis.dtype)
    for rows in ([[j - 1, j]] if local else [slice(None)]) + [slice(None)]:
        vectors = active[rows]
        coefficients = np.conj(vectors @ np.conj(w))  # <v_i | w>
        w -= coefficients @ vectors
        h[rows] += coefficients
    beta = float(np.linalg.norm(w))
    basis[j + 1] = w / (beta if beta > 0 else 1.0)
    return h, beta


def tfim_chain_energy(n_sites: numbers.Integral, h: numbers.Real, J: numbers.Real = 1.0) -> float:
    r"""The ground-state energy of the periodic transverse-field Ising chain, in closed form.

    The chain is [`nqzoo.operators.Ising`][] on `Chain(n_sites)` (NetKet's convention, Pauli
    matrices):

    $$H = -h \sum_{i=1}^{N} \sigma^x_i + J \sum_{i=1}^{N} \sigma^z_i \sigma^z_{i+1},
      \qquad \sigma_{N+1} = \sigma_1,$$

    so `J < 0` is the ferromagnet ($-|J|\sum\sigma^z\sigma^z$; `examples/ground_state.py`
    builds its TFIM with `J = -1`). A Jordan-Wigner transformation maps
    each parity sector to free fermions with
    $\varepsilon_k = 2\sqrt{h^2 + J^2 + 2hJ\cos k}$: antiperiodic momenta
    $k = \pi(2m+1)/N$ in the even sector, periodic $k = 2\pi m/N$ in the odd one. Each pair
    $\pm k$ contributes $-\varepsilon_k$; the unpaired modes $k = 0, \pi$ have the signed
    energies $2(h \pm J)$ and are filled or emptied as the sector's parity requires. The
    ground energy is the lower of the two sectors; for even $N$ and $J < 0$ it is the
    familiar $-\sum_{k\,\mathrm{antiperiodic}} \sqrt{h^2 + J^2 + 2hJ\cos k}$. Valid for
    any signs of `h` and `J` and any $N \ge 3$ (odd $N$ with $J > 0$ is frustrated).

    **Arguments:**

    - `n_sites`: the number of sites $N \ge 3$ (a periodic chain of 2 sites has one bond).
    - `h`: the transverse field; `J`: the Ising coupling (finite real numbers).

    **Returns:** the ground-state energy, a Python float.

    **Raises:** `ValueError` naming the argument for `n_sites < 3` or a non-finite `h` or `J`.
    """
    if isinstance(n_sites, bool) or not isinstance(n_sites, numbers.Integral) or n_sites < 3:
        raise ValueError(
            f"n_sites must be an integer >= 3 (a periodic chain of 2 sites has a single bond), "
            f"got n_sites={n_sites!r}."
        )
    for name, value in (("h", h), ("J", J)):
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite real number, got {name}={value!r}.")
    n, h, g = int(n_sites), float(h), -float(J)  # g: the ferromagnetic coupling
    energies = []
    for momenta, parity in (
        (np.pi * (2 * np.arange(n) + 1) / n, 0),  # even sector: antiperiodic fermions
        (2 * np.pi * np.arange(n) / n, 1),  # odd sector: periodic fermions
    ):
        cos = np.cos(momenta)
        half = np.sqrt(np.maximum(h * h + g * g - 2 * h * g * cos, 0.0))  # eps_k / 2
        # Without the parity constraint every pair sits in its vacuum and each unpaired mode
        # (k = 0, pi) is filled if its energy 2 (h - g cos k) is negative: -sum of eps_k / 2.
        unpaired = np.isclose(np.abs(cos), 1.0, rtol=0.0, atol=1e-12)
        filled = int(np.sum(2 * (h - g * cos[unpaired]) < 0))
        energy = -np.sum(half)
        if filled % 2 != parity:
            # The cheapest change of parity: one mode (a filled or emptied unpaired mode, or
            # a pair broken into one fermion) costs eps_k.
            energy += 2 * np.min(half)
        energies.append(energy)
    return float(min(energies))

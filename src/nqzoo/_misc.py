"""Helpers shared across nqzoo: argument validators and the chunked map.

Every validator takes the value and the argument's name, returns the value in its canonical
form (a Python `int`, a tuple, ...) and raises a `ValueError` (or `TypeError` for a value of
the wrong kind) whose message names the argument, the value given and what is allowed.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, ArrayLike


#: The real scalars `positive_number` accepts (Python and NumPy floats and integers), for
#: signatures: a sequence of sizes is annotated `Sequence[RealNumber]` so that its validator,
#: which checks every entry and names the argument, also sees an `inf` or `2.5` entry (the
#: signature's type check samples one entry of a sequence).
RealNumber = float | int | np.floating | np.integer


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def positive_int(value: object, argname: str) -> int:
    """`value` as a Python int `>= 1` (numpy integers accepted, bools refused)."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{argname} must be a positive integer, got {argname}={value!r}.")
    return int(value)


def int_at_least(value: object, argname: str, minimum: int) -> int:
    """`value` as a Python int `>= minimum`."""
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{argname} must be an integer >= {minimum}, got {argname}={value!r}.")
    return int(value)


def positive_int_pair(value: object, argname: str) -> tuple[int, int]:
    """A pair of positive ints `(height, width)`; a single int `k` gives `(k, k)`."""
    if _is_int(value):
        value = (value, value)
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(_is_int(v) and v >= 1 for v in value)
    ):
        shown = tuple(value) if isinstance(value, list) else value
        raise ValueError(
            f"{argname} must be a pair of positive integers (height, width), got "
            f"{argname}={shown!r}."
        )
    return int(value[0]), int(value[1])


def positive_ints(value: object, argname: str) -> tuple[int, ...]:
    """A tuple of positive ints from one int or a sequence of them."""
    if _is_int(value) and value >= 1:
        return (int(value),)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if all(_is_int(v) and v >= 1 for v in value):
            return tuple(int(v) for v in value)
    raise ValueError(
        f"{argname} must be a positive integer or a sequence of positive integers, "
        f"got {argname}={value!r}."
    )


def batch_shape(value: object, argname: str = "shape") -> tuple[int, ...]:
    """A batch shape: a tuple of ints `>= 0` from one int or a sequence of them (NumPy
    integers accepted; floats, bools and negative sizes refused)."""
    if _is_int(value):
        value = (value,)
    if isinstance(value, Sequence) and not isinstance(value, str):
        if all(_is_int(v) and v >= 0 for v in value):
            return tuple(int(v) for v in value)
    raise ValueError(
        f"{argname} must be an integer >= 0 or a tuple of them (a batch shape), got "
        f"{argname}={value!r}."
    )


def positive_number(value: object, argname: str, hint: str = "") -> int | float:
    """A finite real number `> 0` (an int stays an int); `hint` is appended to the message."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(value)
        or not value > 0
    ):
        raise ValueError(
            f"{argname} must be a finite positive number{hint}, got {argname}={value!r}."
        )
    return int(value) if _is_int(value) else float(value)


def as_index(index: ArrayLike) -> Array:
    """A site index as an int32 scalar, so that every start index of a step has one dtype."""
    return lax.convert_element_type(jnp.asarray(index), np.int32)


def site_index(index: ArrayLike, n_sites: int | None, argname: str = "index") -> Array:
    """`index` as an int32 scalar (as `as_index`), checked when it is concrete.

    A concrete index (a Python or NumPy integer, or a JAX array outside a trace) must lie in
    `0..n_sites-1` (`>= 0` when `n_sites` is None); a traced index cannot be checked here.

    **Raises:** `ValueError` naming `argname` for a concrete index out of range.
    """
    if not isinstance(index, jax.core.Tracer):
        value = int(index)
        if value < 0 or (n_sites is not None and value >= n_sites):
            allowed = ">= 0" if n_sites is None else f"in 0..{n_sites - 1} ({n_sites} sites)"
            raise ValueError(f"{argname} must be a site index {allowed}, got {argname}={value}.")
    return as_index(index)


def chunked_map(
    fn: Callable[[Any], Any], xs: Any, chunk_size: int | None, *, checkpoint: bool = False
) -> Any:
    """`fn(xs)` for a function acting row by row on the leading axis of the pytree `xs`,
    evaluated `chunk_size` rows at a time (`jax.lax.map`) so that memory is bounded by a chunk.

    The leading axis is padded to whole chunks with copies of its first rows, whose results
    are dropped. Row `s` goes to map iteration `s mod n_chunks`: every iteration then touches
    every contiguous block of the leading axis, so when that axis is sharded over devices each
    iteration's work is sharded too instead of the devices taking turns. With
    `checkpoint=True` the body is rematerialised in the backward pass (a gradient then stores
    one chunk's intermediates, not every chunk's).

    **Arguments:**

    - `fn`: maps a pytree whose leaves have a leading axis `m` to one whose leaves do too.
    - `xs`: the input pytree; all leaves share the leading length `n`.
    - `chunk_size`: rows per chunk, or `None` (or `>= n`) for a single call `fn(xs)`.
    - `checkpoint`: rematerialise `fn` in the backward pass.

    **Returns:** the pytree `fn(xs)` would give, with leading axis `n`.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    if chunk_size is None or chunk_size >= n:
        return fn(xs)
    if checkpoint:
        fn = jax.checkpoint(fn, prevent_cse=False)
    n_chunks = -(-n // chunk_size)
    n_padded = n_chunks * chunk_size

    def split(leaf):
        if n_padded > n:
            leaf = jnp.concatenate([leaf, leaf[: n_padded - n]])
        return leaf.reshape(chunk_size, n_chunks, *leaf.shape[1:]).swapaxes(0, 1)

    def merge(leaf):
        return leaf.swapaxes(0, 1).reshape(n_padded, *leaf.shape[2:])[:n]

    out = jax.lax.map(fn, jax.tree.map(split, xs))
    return jax.tree.map(merge, out)


def check_hilbert(hilbert: object, kind: type | tuple[type, ...], needs: str) -> Any:
    """`hilbert` if it is an instance of `kind`, else a `TypeError` saying what `needs` are.

    A NetKet Hilbert space gets a message naming its converter,
    `nqzoo.interop.netket.hilbert_from_netket` (models do not import NetKet).
    """
    if isinstance(hilbert, kind):
        return hilbert
    hint = ""
    if type(hilbert).__module__.split(".")[0] == "netket":
        hint = (
            " This is a NetKet space: convert it with "
            "`nqzoo.interop.netket.hilbert_from_netket(space)`."
        )
    raise TypeError(f"{needs}; got hilbert={hilbert!r}.{hint}")


def inexact_dtype(
    value: object, argname: str = "param_dtype", *, real: bool = False, hint: str = ""
) -> np.dtype:
    """`value` as a floating (or, unless `real`, complex) NumPy dtype; integer and boolean
    dtypes (and `None`) are refused. `hint` is appended to the message (e.g. why only real
    dtypes)."""
    try:
        dtype = None if value is None else np.dtype(value)
    except TypeError:
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating if real else jnp.inexact):
        if real:
            kinds = "a real floating dtype (float32, float64)"
        else:
            kinds = "a floating or complex dtype (float32, float64, complex64, complex128)"
        shown = repr(value) if dtype is None else dtype.name
        raise (TypeError if dtype is None else ValueError)(
            f"{argname} must be {kinds}{hint}, got {argname}={shown}."
        )
    return dtype


def units_from_density(
    value: object, argname: str, n_in: int, *, inputs: str = "inputs", units: str = "units"
) -> int:
    """`int(value * n_in)` for a finite positive density `value` (an RBM's `alpha`, an MLP's
    `hidden_dims_alpha` entry), which must give at least one unit. `inputs` and `units` name
    what `n_in` counts and what is counted in the message."""
    value = positive_number(value, argname)
    count = int(value * n_in)
    if count < 1:
        raise ValueError(
            f"{argname}={value!r} with {n_in} {inputs} gives int({value!r} * {n_in}) = 0 "
            f"{units}; use {argname} >= {1 / n_in:.3g}."
        )
    return count


# -- lookup tables (nqzoo.models.AbstractLookupModel) ----------------------------------------


def add_rows(
    base: Array, matrix: Array, sites: Array, delta: Array
) -> Array:
    """`base + Σ_k delta[..., k] * matrix[sites[..., k]]`, one term per changed site (a few
    fused elementwise products instead of a matmul over all sites)."""
    out = base
    for k in range(sites.shape[-1]):
        rows = matrix[sites[..., k]]
        out = out + delta[..., k, None].astype(rows.dtype) * rows
    return out


def changed_sites(
    x: Array, x_new: Array, k: int
) -> tuple[Array, Array, Array]:
    """The sites where `x_new` differs from `x` (at most `k` per row), with the old and new
    values there: `(sites, old, new)`, each `(*batch, k)`. Rows that change fewer sites are
    padded with site 0 and `old == new` (a change of nothing)."""
    changed = x_new != x
    n = x.shape[-1]
    positions = jnp.arange(n, dtype=jnp.int32).reshape((1,) * (x.ndim - 1) + (n,))
    sites, old, new = [], [], []
    for _ in range(k):
        site = jnp.argmax(changed, axis=-1).astype(jnp.int32)
        found = jnp.take_along_axis(changed, site[..., None], axis=-1)[..., 0]
        before = jnp.take_along_axis(x, site[..., None], axis=-1)[..., 0]
        after = jnp.take_along_axis(x_new, site[..., None], axis=-1)[..., 0]
        sites.append(site)
        old.append(before)
        new.append(jnp.where(found, after, before))
        changed = changed & (positions != site[..., None])
    return tuple(jnp.stack(v, axis=-1) for v in (sites, old, new))


def tree_where(condition: Array, new: Any, old: Any) -> Any:
    """Per batch entry, `new` where `condition` else `old` (leaves with leading batch axes
    `condition.shape`)."""

    def pick(a, b):
        c = condition.reshape(condition.shape + (1,) * (a.ndim - condition.ndim))
        return jnp.where(c, a, b)

    return jax.tree.map(pick, new, old)

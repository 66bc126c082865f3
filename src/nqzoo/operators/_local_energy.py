import numbers
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Inexact, Real

from .._misc import chunked_map, positive_int
from ..hilbert import AbstractHilbert
from ..models import AbstractLookupModel
from ._base import AbstractOperator


# table entries updated at once by the lookup path of the local energies (~1 MB of float64)
_BLOCK_ENTRIES = 2**17


def local_energy(
    log_psi: Callable,
    operator: AbstractOperator,
    x: Real[ArrayLike, "*batch {operator.hilbert.size}"],
    chunk_size: numbers.Integral | None = None,
) -> Inexact[Array, "*batch"]:
    r"""The local energies of a wavefunction,

    $$E_\mathrm{loc}(x) = \sum_y H_{xy} \frac{\psi(y)}{\psi(x)}
        = \sum_k H_{x x'_k}\, e^{\log\psi(x'_k) - \log\psi(x)},$$

    over the connected elements $x'_k$ of `operator`. Terms with a zero matrix element
    (padding) are dropped with `where`, so a padding row at which $\log\psi = -\infty$ (a
    configuration outside a model's support) gives neither NaN nor a NaN gradient.

    The samples are processed `chunk_size` at a time (with `jax.lax.map`), so memory is
    bounded by `chunk_size * n_conn` evaluations of `log_psi`; every chunk size gives the same
    numbers (up to the rounding of matrix products, which XLA blocks by batch size). Jitted
    (eager calls compile once per model, operator and shape) and usable inside
    `eqx.filter_jit`, with the operator and `chunk_size` static.

    **Arguments:**

    - `log_psi`: a callable `(*batch, N) -> (*batch,)` giving $\log\psi$, real or complex (an
      nqzoo model, or a closure). If it has a `hilbert` attribute (nqzoo models do), it must
      equal `operator.hilbert`.
    - `operator`: the Hamiltonian, an [`AbstractOperator`][nqzoo.operators.AbstractOperator].
    - `x`: the samples, `(*batch, N)`.
    - `chunk_size`: samples per chunk, or `None` for all at once.

    **Returns:** `(*batch,)` local energies, in the dtype that the matrix elements and
    $\log\psi$ promote to (complex for a complex wavefunction).

    **Raises:** `ValueError` naming `operator` if its Hilbert space differs from the model's,
    or naming `chunk_size` if it is not a positive integer.
    """
    if not isinstance(operator, AbstractOperator):
        raise TypeError(
            f"operator must be an nqzoo operator (nqzoo.operators.AbstractOperator), got "
            f"operator={operator!r}."
        )
    model_hilbert = getattr(log_psi, "hilbert", None)
    if isinstance(model_hilbert, AbstractHilbert) and model_hilbert != operator.hilbert:
        raise ValueError(
            f"operator acts on {operator.hilbert!r} but log_psi (the model) is defined on "
            f"{model_hilbert!r}; build the operator on the model's Hilbert space."
        )
    if chunk_size is not None:
        chunk_size = positive_int(chunk_size, "chunk_size")
    return _local_energy(log_psi, operator, jnp.asarray(x), chunk_size)


@eqx.filter_jit
def _local_energy(log_psi, operator, x, chunk_size):
    # Jitted here too, so that eager calls (outside a user's jit) compile once and hit the
    # cache afterwards; inside a user's `eqx.filter_jit` this is inlined.
    sites = operator.changed_sites
    use_lookup = isinstance(log_psi, AbstractLookupModel) and sites is not None

    def connected_log_psi(xs, table):
        """log psi of every connected element of `xs` from the samples' `table`."""
        x_conn, mels = operator.connected(xs)  # (m, n_conn, N), (m, n_conn)
        at = jnp.asarray(sites)[None]  # (1, n_conn, k)
        old = jnp.take_along_axis(xs[:, None, :], at, axis=-1)  # (m, n_conn, k)
        new = jnp.take_along_axis(x_conn, jnp.broadcast_to(at, old.shape), axis=-1)
        table = jax.tree.map(lambda t: t[:, None], table)  # (m, 1, ...)
        updated = log_psi.update_lookup(table, at, old, new)
        return mels, log_psi.fast_log_psi_from_lookup(updated)

    def kernel(xs):
        if use_lookup:  # each connected amplitude updates the sample's table
            table = log_psi.lookup(xs)
            lp = log_psi.fast_log_psi_from_lookup(table)[..., None]
            # The updated tables of a block of samples (block * n_conn * table entries)
            # stay in the cache: evaluated for the whole chunk at once they would go to
            # memory and back, several times slower. Elementwise, so the block size does
            # not change the numbers.
            width = sum(t.size for t in jax.tree.leaves(table)) // max(xs.shape[0], 1)
            block = max(1, _BLOCK_ENTRIES // max(1, operator.n_conn * width))
            mels, lp_conn = chunked_map(lambda a: connected_log_psi(*a), (xs, table), block)
        else:
            x_conn, mels = operator.connected(xs)  # (m, n_conn, N), (m, n_conn)
            lp = log_psi(xs)[..., None]
            lp_conn = log_psi(x_conn)
        keep = mels != 0
        # Padding rows get log psi(x) instead, so that neither exp nor its gradient sees an
        # infinite or NaN value there.
        ratio = jnp.exp(jnp.where(keep, lp_conn, lp) - lp)
        dtype = np.promote_types(mels.dtype, ratio.dtype)
        terms = jnp.where(keep, mels.astype(dtype) * ratio.astype(dtype), 0)
        return terms.sum(axis=-1)

    flat = x.reshape(-1, x.shape[-1])
    return chunked_map(kernel, flat, chunk_size).reshape(x.shape[:-1])

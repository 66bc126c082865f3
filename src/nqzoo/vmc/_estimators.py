r"""The energy and its gradient from samples, and what the estimators share.

Every estimator works for any model (an `eqx.Module` mapping `(*batch, N)` to `log ψ`,
`(*batch,)`), with real or complex parameters, bounds its memory with `chunk_size` (the
forward and backward passes run over chunks of samples through
[`nqzoo._misc.chunked_map`][]), and reports non-finite samples instead of averaging them in.
"""

import numbers
import typing

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Inexact, Int, Real

from .._misc import chunked_map, positive_int


class EstimatorInfo(typing.NamedTuple):
    """What an estimator reports besides its result (returned with `return_info=True`).

    A pytree of arrays, so it can leave a jitted function.
    """

    n_nonfinite: Int[Array, ""]
    """The number of samples (with a nonzero weight) whose local energy, `log ψ` or its
    gradient is NaN or infinite. When it is positive the energy and every entry of the
    gradient are NaN."""
    n_iterations: Int[Array, ""]
    """The iterations of an iterative solve (`natural_gradient(method="cg")`; 0 for the
    direct solves and for `energy_and_grad`). Equal to `cg_maxiter` when the tolerance was
    not reached."""


def check_samples(x: object, e_loc: object, weights: object, caller: str) -> None:
    """Refuse samples, local energies and weights whose lengths disagree (the annotations
    catch this too, unless jaxtyping is disabled)."""
    shape = getattr(x, "shape", ())
    if len(shape) != 2:
        raise ValueError(
            f"{caller}: x must be a batch of configurations (n_samples, n_sites), got x of "
            f"shape {shape}."
        )
    for name, value in (("e_loc", e_loc), ("weights", weights)):
        if value is not None and tuple(getattr(value, "shape", ())) != shape[:1]:
            raise ValueError(
                f"{caller}: {name} must have one entry per sample, shape ({shape[0]},) like "
                f"x's first axis, got {name} of shape {tuple(getattr(value, 'shape', ()))}."
            )


def check_chunk_size(chunk_size: object) -> int | None:
    return None if chunk_size is None else positive_int(chunk_size, "chunk_size")


def raise_if_nonfinite(info: EstimatorInfo, n_samples: int, caller: str) -> None:
    """Outside a trace (an eager call), refuse a result that non-finite samples made NaN.
    Under `jit` nothing can be raised: the result is NaN and `info.n_nonfinite` counts."""
    if isinstance(info.n_nonfinite, jax.core.Tracer):
        return
    n_bad = int(info.n_nonfinite)
    if n_bad:
        raise ValueError(
            f"{caller}: {n_bad} of {n_samples} samples have a non-finite local energy e_loc, "
            "log ψ or gradient of log ψ (the model returns NaN or inf there); their energy "
            "cannot be averaged in. Check the model and the samples x (under jit the energy "
            "comes out NaN and info.n_nonfinite counts these samples)."
        )


def sample_weights(weights: Array | None, n: int, dtype: jnp.dtype) -> Array:
    """The weights in the real dtype `dtype`: `1/n` each when not given."""
    if weights is None:
        return jnp.full((n,), 1.0 / n, dtype)
    return jnp.asarray(weights).astype(dtype)


def poison(tree: typing.Any, bad: Array) -> typing.Any:
    """Every inexact leaf of `tree` replaced by NaN where the scalar `bad` is true."""

    def leaf(a):
        if not eqx.is_inexact_array(a):
            return a
        return jnp.where(bad, jnp.full_like(a, jnp.nan), a)

    return jax.tree.map(leaf, tree)


def energy_and_grad(
    model: eqx.Module,
    x: Real[ArrayLike, "n_samples n_sites"],
    e_loc: Inexact[ArrayLike, " n_samples"],
    weights: Real[ArrayLike, " n_samples"] | None = None,
    chunk_size: numbers.Integral | None = None,
    *,
    return_info: bool = False,
) -> tuple[Inexact[Array, ""], eqx.Module] | tuple[Inexact[Array, ""], eqx.Module, EstimatorInfo]:
    r"""The energy and its gradient from samples of $|\psi|^2$ and their local energies.

    For samples $x_s$ drawn from $|\psi|^2$ (exact samples of a normalised autoregressive
    model, or Markov-chain samples of any model), $E = \mathbb{E}[E_\mathrm{loc}]$ and, for a
    real parameter $\theta$,

    $$\partial_\theta E = 2\,\mathrm{Re}\;\mathbb{E}\big[(E_\mathrm{loc} - E)\,
      \partial_\theta \log\psi^*\big]
      = 2\,\mathrm{Re}\;\mathbb{E}\big[(E_\mathrm{loc} - E)^*\,\partial_\theta\log\psi\big]$$

    (the normalisation drops out, so the model need not be normalised): the gradient of the
    surrogate $2\,\mathrm{Re}\,\mathbb{E}[\,\mathrm{sg}(E_\mathrm{loc} - E)^*\log\psi_\theta]$,
    which is what is differentiated. For a complex parameter $\theta = a + ib$ the returned
    entry is $\partial_a E + i\,\partial_b E$ (holomorphic or not): what optax expects (a
    step `θ - lr g` is gradient descent on the pair $(a, b)$), and NetKet's convention
    (`force_to_grad`: twice the force $\mathbb{E}[\Delta O^* (E_\mathrm{loc} - E)]$ of a
    holomorphic model). It is the complex conjugate of what `jax.grad` returns.

    **Non-finite samples.** A sample with a nonzero weight whose local energy or `log ψ` is
    NaN or infinite is never averaged in: the energy and every gradient entry come out NaN.
    An eager call then raises a `ValueError`; inside `jit` nothing can be raised, so pass
    `return_info=True` to get the count in `info.n_nonfinite`. Samples with weight 0 are
    left out (a configuration outside a model's support may carry `log ψ = -inf` there).

    **Arguments:**

    - `model`: the model (its inexact array leaves are differentiated).
    - `x`: samples `(B, N)`.
    - `e_loc`: local energies `(B,)` (constants: no gradient flows through them).
    - `weights`: optional probabilities `(B,)` summing to one, replacing the sample mean
      (with `x` = every configuration and `weights` = $|\psi|^2 / \langle\psi|\psi\rangle$
      this is the exact energy and gradient).
    - `chunk_size`: if given, `log ψ` and its backward pass run this many samples at a time
      (rematerialised), bounding the memory of the network's intermediates.
    - `return_info`: also return an [`EstimatorInfo`][nqzoo.vmc.EstimatorInfo].

    **Returns:** `(energy, grads)` (or `(energy, grads, info)`): the energy in the dtype of
    `e_loc`, and `grads`, a pytree like `model` with the gradient in each inexact leaf (in
    that leaf's dtype) and `None` elsewhere.

    **Raises:** `ValueError` naming the argument if the lengths of `x`, `e_loc` and
    `weights` differ or `chunk_size` is not a positive integer, and (eager calls) if some
    samples are non-finite.
    """
    check_samples(x, e_loc, weights, "energy_and_grad")
    chunk_size = check_chunk_size(chunk_size)
    x, e_loc = jnp.asarray(x), jnp.asarray(e_loc)
    weights = None if weights is None else jnp.asarray(weights)
    energy, grads, info = _energy_and_grad(model, x, e_loc, weights, chunk_size)
    raise_if_nonfinite(info, x.shape[0], "energy_and_grad")
    return (energy, grads, info) if return_info else (energy, grads)


@eqx.filter_jit
def _energy_and_grad(model, x, e_loc, weights, chunk_size):
    e_loc = jax.lax.stop_gradient(e_loc)
    real = jnp.finfo(e_loc.dtype).dtype
    w = sample_weights(weights, e_loc.shape[0], real)
    active = w != 0
    e_active = jnp.where(active, e_loc, 0)
    energy = jnp.sum(w.astype(e_loc.dtype) * e_active)
    coeff = 2 * w.astype(e_loc.dtype) * jnp.conj(e_active - energy)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def surrogate(p):
        log_psi = chunked_map(lambda xc: eqx.combine(p, static)(xc), x, chunk_size, checkpoint=True)
        dtype = jnp.promote_types(coeff.dtype, log_psi.dtype)
        terms = coeff.astype(dtype) * jnp.where(active, log_psi, 0).astype(dtype)
        return jnp.sum(terms).real, log_psi

    grads, log_psi = jax.grad(surrogate, has_aux=True)(params)
    finite = jnp.isfinite(e_loc) & jnp.isfinite(log_psi)
    n_bad = jnp.sum(~jnp.isfinite(w) | (active & ~finite), dtype=jnp.int32)
    # Descent direction of a complex leaf a + ib: dE/da + i dE/db = conj(jax.grad).
    grads = jax.tree.map(lambda g: jnp.conj(g) if jnp.iscomplexobj(g) else g, grads)
    energy, grads = poison((energy, grads), n_bad > 0)
    return energy, grads, EstimatorInfo(n_bad, jnp.zeros((), jnp.int32))
